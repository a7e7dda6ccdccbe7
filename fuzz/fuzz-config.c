/* SPDX-License-Identifier: MIT */
/*
 * A configuration file through the path `m2md --check -c FILE` takes:
 * daemon_check() reads the file (config-toml.cc, config.c), parses the
 * core's sections, [mqtt], [control] and the rules, and creates a
 * throw-away instance of every driver, whose plugin parses its own section.
 * The input is written to the config file; what follows a line
 * "#--- conf.d" goes to a drop-in in its conf.d directory instead, so that
 * merging is fuzzed too. A last drop-in points plugin_dir at the plugins of
 * this build, which are instrumented too.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "fuzz-input.h"
#include "log.h"

/* libFuzzer calls a plain function: the file names live across inputs here. */
static struct harness {
	char dir[64];
	char file[96];
	char confd[96];
	char dropin[128];
	char plugins[128];
} h;

#define DROPIN_MARK "\n#--- conf.d\n"

static void write_file(const char *path, const void *data, size_t size) {
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	FUZZ_ASSERT(fd >= 0);
	FUZZ_ASSERT(write(fd, data, size) == (ssize_t)size);
	FUZZ_ASSERT(close(fd) == 0);
}

/* The files go when the run ends; a crash leaves them for a look. */
static void cleanup(void) {
	(void)unlink(h.file);
	(void)unlink(h.dropin);
	(void)unlink(h.plugins);
	(void)rmdir(h.confd);
	(void)rmdir(h.dir);
}

static void setup(void) {
	static const char *const plugins[] = {"sim.so", "modbus.so"};
	char path[512], text[512];

	/* A refused config is logged by nobody here: daemon_check() returns the line. */
	log_set_max_level(LOG_CRIT);
	snprintf(h.dir, sizeof(h.dir), "/tmp/m2m-fuzz-config.XXXXXX");
	FUZZ_ASSERT(mkdtemp(h.dir));
	snprintf(h.file, sizeof(h.file), "%s/m2md.toml", h.dir);
	snprintf(h.confd, sizeof(h.confd), "%s/conf.d", h.dir);
	FUZZ_ASSERT(mkdir(h.confd, 0755) == 0);
	snprintf(h.dropin, sizeof(h.dropin), "%s/50-fuzz.toml", h.confd);
	/* Merged last (name order), so that it wins over both. */
	snprintf(h.plugins, sizeof(h.plugins), "%s/zz-plugins.toml", h.confd);
	snprintf(text, sizeof(text), "[gateway]\nplugin_dir = \"%s\"\n", FUZZ_PLUGIN_DIR);
	write_file(h.plugins, text, strlen(text));
	atexit(cleanup);
	/*
	 * Loaded once for good: the daemon's dlclose() must not unload them,
	 * since libFuzzer keeps pointers to every module's coverage counters.
	 */
	for (size_t i = 0; i < sizeof(plugins) / sizeof(plugins[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", FUZZ_PLUGIN_DIR, plugins[i]);
		FUZZ_ASSERT(dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	const uint8_t *mark = memmem(data, size, DROPIN_MARK, strlen(DROPIN_MARK));
	char *error = NULL;
	int r;

	if (!h.dir[0])
		setup();
	if (mark) {
		size_t main_size = (size_t)(mark - data) + 1;

		write_file(h.file, data, main_size);
		write_file(h.dropin, mark + strlen(DROPIN_MARK),
		           size - main_size - strlen(DROPIN_MARK) + 1);
	} else {
		write_file(h.file, data, size);
		(void)unlink(h.dropin);
	}
	r = daemon_check(h.file, h.confd, &error);
	/* Refused: with a negative errno and one line that says why. */
	if (r < 0) {
		FUZZ_ASSERT(error && error[0] && !strchr(error, '\n'));
	} else {
		FUZZ_ASSERT(r == 0 && !error);
	}
	free(error);
	return 0;
}
