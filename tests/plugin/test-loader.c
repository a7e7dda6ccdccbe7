/* SPDX-License-Identifier: MIT */
/* The plugin loader against fixture plugins built for each way loading can fail. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plugin-loader.h"
#include "test.h"

static char *fixture[8];
static int n_fixtures;
static char dir[512];

static const char *fixture_path(const char *name) {
	char want[64];

	snprintf(want, sizeof(want), "%s.so", name);
	for (int i = 0; i < n_fixtures; i++) {
		const char *slash = strrchr(fixture[i], '/');
		if (strcmp(slash ? slash + 1 : fixture[i], want) == 0)
			return fixture[i];
	}
	TEST_FAIL("fixture %s not passed on the command line", name);
}

/* Copies a fixture into the test's plugin directory as NAME.so with MODE. */
static void install(const char *fixture_name, const char *name, mode_t mode) {
	char dst[600], buf[65536];
	int in, out;
	ssize_t n;

	snprintf(dst, sizeof(dst), "%s/%s.so", dir, name);
	unlink(dst);
	in = open(fixture_path(fixture_name), O_RDONLY | O_CLOEXEC);
	ASSERT(in >= 0);
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ASSERT(out >= 0);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		ASSERT_EQ(write(out, buf, (size_t)n), n);
	close(in);
	close(out);
	/* chmod, not the umask-filtered create mode: the test needs the exact bits. */
	ASSERT_OK(chmod(dst, mode));
}

static int load(const char *name, struct plugin_set *set, struct plugin **p, char **error) {
	*error = NULL;
	return plugin_get(set, dir, name, p, error);
}

static void expect_error(const char *name, int err, const char *text) {
	struct plugin_set set = { 0 };
	struct plugin *p = NULL;
	char *error;
	int r = load(name, &set, &p, &error);

	fprintf(stderr, "   %s: %d %s\n", name, r, error ? error : "(no message)");
	ASSERT_EQ(r, err);
	ASSERT_STR_CONTAINS(error, text);
	ASSERT(set.list == NULL);
	free(error);
}

static void test_good(void) {
	struct plugin_set set = { 0 };
	struct plugin *p, *p2;
	char *error;

	install("good", "good", 0644);
	ASSERT_OK(load("good", &set, &p, &error));
	ASSERT(error == NULL);
	ASSERT_STR_EQ(p->desc->name, "fixture");
	ASSERT_EQ(p->desc->abi_major, M2M_ABI_MAJOR);
	/* Loaded once, shared by every instance. */
	ASSERT_OK(load("good", &set, &p2, &error));
	ASSERT(p == p2);
	ASSERT_EQ(p->refs, 2);
	plugin_put(&set, p);
	ASSERT(set.list == p);
	plugin_put(&set, p2);
	ASSERT(set.list == NULL);
}

/*
 * Two different plugins loaded one after the other must be two objects,
 * however the loader opens them (a loader that dlopen()s /proc/self/fd/N
 * gets the first one back for the second when the fd number is reused).
 */
static void test_distinct(void) {
	struct plugin_set set = { 0 };
	struct plugin *a, *b;
	char *error;

	install("good", "first", 0644);
	install("fail-start", "second", 0644);
	ASSERT_OK(load("first", &set, &a, &error));
	ASSERT_OK(load("second", &set, &b, &error));
	ASSERT(a != b);
	ASSERT(a->dl != b->dl);
	ASSERT(a->desc != b->desc);
	plugin_put(&set, a);
	plugin_put(&set, b);
}

static void test_abi(void) {
	install("wrong-major", "major", 0644);
	expect_error("major", -EPROTO, "built for ABI 2.1, this m2md provides ABI 1.1");
	install("newer-minor", "minor", 0644);
	expect_error("minor", -EPROTO, "built for ABI 1.99, this m2md provides ABI 1.1");
	install("refuses", "refuses", 0644);
	expect_error("refuses", -EPROTO, "plugin refused this m2md");
	install("no-entry", "noentry", 0644);
	expect_error("noentry", -ENOEXEC, "does not export m2m_plugin_entry()");
}

static void test_untrusted(void) {
	char sub[600];

	install("good", "gw", 0664);
	expect_error("gw", -EPERM, "the plugin file is writable by group");
	install("good", "ow", 0646);
	expect_error("ow", -EPERM, "the plugin file is writable by others");

	/* A directory others may write to could be given any file: nothing loads from it. */
	ASSERT_OK(chmod(dir, 0777));
	install("good", "good", 0644);
	expect_error("good", -EPERM, "the plugin directory is writable by others");
	ASSERT_OK(chmod(dir, 0700));

	snprintf(sub, sizeof(sub), "%s/sub.so", dir);
	mkdir(sub, 0700);
	expect_error("sub", -EINVAL, "not a regular file");
}

static void test_names(void) {
	expect_error("missing", -ENOENT, "no such plugin \"missing\"");
	/* A name can never be a path. */
	expect_error("../good", -EINVAL, "invalid plugin name");
	expect_error("good.so", -EINVAL, "invalid plugin name");
	expect_error("/tmp/x", -EINVAL, "invalid plugin name");
	expect_error("", -EINVAL, "invalid plugin name");
	expect_error("Good", -EINVAL, "invalid plugin name");
}

static void test_bad_dir(void) {
	struct plugin_set set = { 0 };
	struct plugin *p;
	char *error = NULL;
	int r = plugin_get(&set, "/nonexistent/plugins", "good", &p, &error);

	ASSERT_EQ(r, -ENOENT);
	ASSERT_STR_CONTAINS(error, "/nonexistent/plugins: cannot use plugin directory");
	free(error);
}

int main(int argc, char **argv) {
	const char *tmp = getenv("M2M_TEST_TMPDIR");

	for (int i = 1; i < argc && n_fixtures < 8; i++)
		fixture[n_fixtures++] = argv[i];
	snprintf(dir, sizeof(dir), "%s/loader-XXXXXX", tmp ? tmp : "/tmp");
	ASSERT(mkdtemp(dir));

	RUN_TEST(test_good);
	RUN_TEST(test_distinct);
	RUN_TEST(test_abi);
	RUN_TEST(test_untrusted);
	RUN_TEST(test_names);
	RUN_TEST(test_bad_dir);
	return 0;
}
