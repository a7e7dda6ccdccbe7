/* SPDX-License-Identifier: MIT */
/* m2md: the M2M edge gateway daemon. */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "error.h"
#include "log.h"
#include "m2m-build.h"

static void help(void) {
	printf("Usage: m2md [OPTIONS]\n"
	       "\n"
	       "The m2md edge gateway: polls field devices through driver plugins, stores\n"
	       "their readings in SQLite and acts on them.\n"
	       "\n"
	       "  -c, --config FILE     configuration file (default %s);\n"
	       "                        FILE's directory/conf.d/*.toml are merged in name order\n"
	       "      --conf-dir DIR    merge DIR/*.toml instead of FILE's conf.d\n"
	       "      --check           validate the configuration (and load every plugin) and exit:\n"
	       "                        0 when valid, %d with one error line when not\n"
	       "      --log-level LEVEL error, warning, notice, info or debug (overrides the file)\n"
	       "      --version         print the version and the plugin ABI version\n"
	       "  -h, --help            print this help\n"
	       "\n"
	       "Signals: SIGTERM/SIGINT stop, SIGHUP reloads the configuration.\n",
	       M2M_CONFIG_FILE, EXIT_CONFIG);
}

int main(int argc, char **argv) {
	enum { OPT_CHECK = 256, OPT_LOG_LEVEL, OPT_VERSION, OPT_CONF_DIR };
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "conf-dir", required_argument, NULL, OPT_CONF_DIR },
		{ "check", no_argument, NULL, OPT_CHECK },
		{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *config_path = M2M_CONFIG_FILE, *confd = NULL;
	int opt, level = -1;
	bool check = false;

	while ((opt = getopt_long(argc, argv, "c:h", options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config_path = optarg;
			break;
		case OPT_CONF_DIR:
			confd = optarg;
			break;
		case OPT_CHECK:
			check = true;
			break;
		case OPT_LOG_LEVEL:
			if (log_parse_level(optarg, &level) < 0) {
				fprintf(stderr, "m2md: invalid --log-level \"%s\": expected error, warning, "
				                "notice, info or debug\n", optarg);
				return EXIT_FAILURE;
			}
			log_set_max_level(level);
			break;
		case OPT_VERSION:
			printf("m2md %s (plugin ABI %d.%d)\n", M2M_VERSION, M2M_ABI_MAJOR, M2M_ABI_MINOR);
			return EXIT_SUCCESS;
		case 'h':
			help();
			return EXIT_SUCCESS;
		default:
			fprintf(stderr, "Try 'm2md --help'.\n");
			return EXIT_FAILURE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "m2md: unexpected argument \"%s\"; try 'm2md --help'\n", argv[optind]);
		return EXIT_FAILURE;
	}

	/*
	 * A peer that goes away must not kill us with SIGPIPE, and a file-size
	 * limit must show up as an error from write(2) that storage handles.
	 */
	signal(SIGPIPE, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN);
	/*
	 * One malloc arena: the storage and bus threads allocate little, and a
	 * 64 MiB arena per thread costs resident memory on a small board for no
	 * gain in speed here.
	 */
	mallopt(M_ARENA_MAX, 1);

	if (check) {
		char *error = NULL;
		int err = daemon_check(config_path, confd, &error);
		if (err < 0) {
			/* One line, without a priority prefix: this is for a person at a terminal. */
			fprintf(stderr, "%s\n", error ? error : m2m_strerror(err));
			free(error);
			return EXIT_CONFIG;
		}
		printf("%s: configuration is valid\n", config_path);
		return EXIT_SUCCESS;
	}
	return daemon_run(config_path, confd, level);
}
