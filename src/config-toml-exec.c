/* SPDX-License-Identifier: MIT */
/*
 * config_toml_parse() for the daemon: the document is parsed by the
 * m2md-toml process (m2md-toml.c), and the tree it writes back is rebuilt
 * here item by item, recorded in the same order as the in-process parser
 * does. Linked into m2md before the static m2mconfig library, whose
 * config-toml.cc member then is never pulled in: the daemon does not map
 * libstdc++ or toml++ at all (docs/operations.md, Footprint).
 *
 * It runs where the configuration is loaded: at start and on a reload, on
 * the loop thread, which the parse already held for as long as it took;
 * the process adds its start, about a millisecond.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config-toml-wire.h"
#include "config-toml.h"
#include "m2m-build.h"
#include "util.h"

extern char **environ;

/* Never more than this from the parser: the input is at most 16 MiB. */
#define WIRE_MAX (1024u * 1024u * 1024u)
/* Deeper than the parser's own limit (config-toml.cc), so never the one that refuses. */
#define WIRE_MAX_DEPTH 512

/*
 * The parser: the one beside this binary (the build tree's src/, or a copy
 * of both put somewhere together), the build tree's own for the build's
 * other binaries (tests/module), else the installed one. Each of these is
 * as trusted as the binary itself.
 */
static const char *parser_path(char *buf, size_t size) {
	char exe[PATH_MAX], root[PATH_MAX], *slash;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	size_t len;

	if (n <= 0)
		return M2M_TOML_HELPER;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (slash && snprintf(buf, size, "%.*s/m2md-toml", (int)(slash - exe), exe) < (int)size &&
	    access(buf, X_OK) == 0)
		return buf;
	if (realpath(M2M_BUILD_ROOT, root)) {
		len = strlen(root);
		if (strncmp(exe, root, len) == 0 && exe[len] == '/' &&
		    snprintf(buf, size, "%s/src/m2md-toml", root) < (int)size && access(buf, X_OK) == 0)
			return buf;
	}
	return M2M_TOML_HELPER;
}

struct wire {
	const uint8_t *p, *end;
	config_toml_record_fn record;
	void *userdata;
};

static int take(struct wire *w, void *out, size_t n) {
	if ((size_t)(w->end - w->p) < n)
		return -EPROTO;
	memcpy(out, w->p, n);
	w->p += n;
	return 0;
}

/* A length-prefixed text, copied into a NUL-terminated malloc'd string. */
static int take_text(struct wire *w, char **ret) {
	uint32_t n;
	char *s;

	if (take(w, &n, sizeof(n)) < 0 || (size_t)(w->end - w->p) < n)
		return -EPROTO;
	s = malloc((size_t)n + 1);
	if (!s)
		return -ENOMEM;
	memcpy(s, w->p, n);
	s[n] = '\0';
	w->p += n;
	*ret = s;
	return 0;
}

/* Rebuilds one node and its children into *RET, recording each item before its children. */
static int take_node(struct wire *w, bool member, unsigned depth, char **ret_key, cJSON **ret) {
	char *key = NULL, *path = NULL, *text = NULL;
	uint8_t type, b;
	uint32_t line, count;
	int64_t ival;
	double d;
	cJSON *item = NULL, *child;
	int r;

	if (depth > WIRE_MAX_DEPTH)
		return -EPROTO;
	if ((r = take(w, &type, 1)) < 0 || (r = take(w, &line, sizeof(line))) < 0 ||
	    (r = take(w, &ival, sizeof(ival))) < 0 || (member && (r = take_text(w, &key)) < 0) ||
	    (r = take_text(w, &path)) < 0)
		goto out;
	switch (type) {
	case CONFIG_TOML_STRING:
	case CONFIG_TOML_DATE:
	case CONFIG_TOML_TIME:
	case CONFIG_TOML_DATETIME:
		if ((r = take_text(w, &text)) < 0)
			goto out;
		item = cJSON_CreateString(text);
		break;
	case CONFIG_TOML_INTEGER:
		item = cJSON_CreateNumber((double)ival);
		break;
	case CONFIG_TOML_FLOAT:
		if ((r = take(w, &d, sizeof(d))) < 0)
			goto out;
		item = cJSON_CreateNumber(d);
		break;
	case CONFIG_TOML_BOOLEAN:
		if ((r = take(w, &b, 1)) < 0)
			goto out;
		item = cJSON_CreateBool(b);
		break;
	case CONFIG_TOML_TABLE:
		item = cJSON_CreateObject();
		break;
	case CONFIG_TOML_ARRAY:
		item = cJSON_CreateArray();
		break;
	default:
		r = -EPROTO;
		goto out;
	}
	r = -ENOMEM;
	if (!item)
		goto out;
	r = w->record(w->userdata, item, line, (enum config_toml_type)type, ival, path);
	if (r < 0 || (type != CONFIG_TOML_TABLE && type != CONFIG_TOML_ARRAY))
		goto out;
	if ((r = take(w, &count, sizeof(count))) < 0)
		goto out;
	for (uint32_t i = 0; i < count; i++) {
		char *ckey = NULL;

		r = take_node(w, type == CONFIG_TOML_TABLE, depth + 1, &ckey, &child);
		if (r < 0)
			goto out;
		if (type == CONFIG_TOML_TABLE ? !cJSON_AddItemToObject(item, ckey, child)
		                              : !cJSON_AddItemToArray(item, child)) {
			free(ckey);
			cJSON_Delete(child);
			r = -ENOMEM;
			goto out;
		}
		free(ckey);
	}
out:
	free(path);
	free(text);
	if (r < 0) {
		cJSON_Delete(item);
		free(key);
		return r;
	}
	*ret = item;
	if (ret_key)
		*ret_key = key;
	else
		free(key);
	return 0;
}

/* Runs the parser on TEXT; its whole output in *RET_OUT, or a negative errno and *RET_ERROR. */
static int run_parser(const char *text, size_t len, const char *name, uint8_t **ret_out,
                      size_t *ret_len, char **ret_error) {
	char pathbuf[PATH_MAX];
	const char *exe = parser_path(pathbuf, sizeof(pathbuf));
	char *argv[] = { (char *)"m2md-toml", (char *)name, NULL };
	posix_spawn_file_actions_t fa;
	uint8_t *out = NULL, *p;
	size_t n = 0, cap = 0;
	int in_fd, pipefd[2] = { -1, -1 }, status, r;
	pid_t pid;
	ssize_t k;

	/* The document goes in as a file: the parser reads it whole before it writes. */
	in_fd = memfd_create("m2md-config", MFD_CLOEXEC);
	if (in_fd < 0)
		return -errno;
	for (size_t off = 0; off < len; off += (size_t)k) {
		k = write(in_fd, text + off, len - off);
		if (k < 0 && errno != EINTR) {
			r = -errno;
			close(in_fd);
			return r;
		}
		if (k < 0)
			k = 0;
	}
	if (lseek(in_fd, 0, SEEK_SET) < 0 || pipe2(pipefd, O_CLOEXEC) < 0) {
		r = -errno;
		close(in_fd);
		return r;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in_fd, STDIN_FILENO);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
	/* Nothing else of ours (a plugin's descriptor opened without O_CLOEXEC) reaches the parser. */
	posix_spawn_file_actions_addclosefrom_np(&fa, STDERR_FILENO + 1);
	r = -posix_spawn(&pid, exe, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(in_fd);
	close(pipefd[1]);
	if (r < 0) {
		close(pipefd[0]);
		*ret_error = strdup_printf("%s: cannot run the configuration parser %s: %s", name, exe,
		                           strerror(-r));
		return r;
	}
	for (;;) {
		if (n == cap) {
			cap = cap ? cap * 2 : 64 * 1024;
			p = cap <= WIRE_MAX ? realloc(out, cap) : NULL;
			if (!p) {
				r = -ENOMEM;
				break;
			}
			out = p;
		}
		k = read(pipefd[0], out + n, cap - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			r = k < 0 ? -errno : 0;
			break;
		}
		n += (size_t)k;
	}
	close(pipefd[0]);
	/* A parser whose output was cut off may still be writing: it must not outlive us. */
	if (r < 0)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			status = -1;
			break;
		}
	if (r == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
		r = -EIO;
		if (status != -1 && WIFSIGNALED(status))
			*ret_error = strdup_printf("%s: the configuration parser %s was killed by signal %d (%s)",
			                           name, exe, WTERMSIG(status), strsignal(WTERMSIG(status)));
		else if (status != -1 && WEXITSTATUS(status) == 127 && n == 0)
			/*
			 * Where posix_spawn cannot report a failed exec (a vfork it
			 * cannot do, as under qemu-user), the child exits 127, as a
			 * shell does for a command it cannot run.
			 */
			*ret_error = strdup_printf("%s: cannot run the configuration parser %s (exit status "
			                           "127: missing or not executable)", name, exe);
		else
			*ret_error = strdup_printf("%s: the configuration parser %s failed (exit status %d)",
			                           name, exe, status != -1 ? WEXITSTATUS(status) : -1);
	}
	if (r < 0) {
		free(out);
		return r;
	}
	*ret_out = out;
	*ret_len = n;
	return 0;
}

int config_toml_parse(const char *text, size_t len, const char *name,
                      config_toml_record_fn record, void *userdata, cJSON **ret_root,
                      char **ret_error) {
	struct wire w = { .record = record, .userdata = userdata };
	uint8_t *out = NULL, status;
	uint32_t magic;
	int32_t err;
	size_t n = 0;
	int r;

	*ret_error = NULL;
	r = run_parser(text, len, name, &out, &n, ret_error);
	if (r < 0)
		return r;
	w.p = out;
	w.end = out + n;
	r = -EPROTO;
	if (take(&w, &magic, sizeof(magic)) < 0 || magic != CONFIG_TOML_WIRE_MAGIC ||
	    take(&w, &status, 1) < 0)
		goto out;
	if (status == CONFIG_TOML_WIRE_TREE) {
		r = take_node(&w, false, 0, NULL, ret_root);
		if (r == 0 && w.p != w.end) {
			cJSON_Delete(*ret_root);
			*ret_root = NULL;
			r = -EPROTO;
		}
	} else if (status == CONFIG_TOML_WIRE_ERROR && take(&w, &err, sizeof(err)) == 0 && err < 0) {
		r = take_text(&w, ret_error);
		if (r == 0) {
			r = err;
			/* An empty message: config.c then says what the errno means. */
			if (!**ret_error) {
				free(*ret_error);
				*ret_error = NULL;
			}
		}
	}
out:
	if (r == -EPROTO && !*ret_error)
		*ret_error = strdup_printf("%s: the configuration parser's answer is malformed", name);
	free(out);
	return r;
}
