/* SPDX-License-Identifier: MIT */
/* Tests of the configuration subsystem: src/config.c and src/config-toml.cc. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "test.h"

static const char *const point_types[] = { "int16", "uint16", "float32", NULL };

/* Loads TEXT as "t.toml" and fails the test when it does not parse. */
static config *load(const char *text) {
	config *c = NULL;
	char *err = NULL;
	int r = config_load_string(text, "t.toml", &c, &err);

	if (r < 0)
		TEST_FAIL("cannot load: %s", err ? err : "(no message)");
	ASSERT(c);
	ASSERT(!err);
	return c;
}

/* Loads TEXT, expects a parse failure, and returns the message. */
static char *load_error(const char *text) {
	config *c = NULL;
	char *err = NULL;
	int r = config_load_string(text, "t.toml", &c, &err);

	ASSERT_EQ(r, -EINVAL);
	ASSERT(!c);
	ASSERT(err);
	ASSERT(!strchr(err, '\n'));
	return err;
}

static void write_file(const char *path, const char *text) {
	FILE *f = fopen(path, "we");

	ASSERT(f);
	ASSERT_EQ(fputs(text, f) >= 0, 1);
	ASSERT_OK(fclose(f));
}

/* A fresh directory under M2M_TEST_TMPDIR for one test. */
static char *make_dir(const char *name) {
	const char *tmp = getenv("M2M_TEST_TMPDIR");
	char *dir, *cmd;

	if (!tmp)
		tmp = "/tmp";
	ASSERT(asprintf(&dir, "%s/test-config-%s-%d", tmp, name, (int)getpid()) > 0);
	ASSERT(asprintf(&cmd, "rm -rf '%s'", dir) > 0);
	ASSERT_OK(system(cmd));
	free(cmd);
	ASSERT_OK(mkdir(dir, 0700));
	return dir;
}

static void remove_dir(char *dir) {
	char *cmd;

	ASSERT(asprintf(&cmd, "rm -rf '%s'", dir) > 0);
	ASSERT_OK(system(cmd));
	free(cmd);
	free(dir);
}

static void test_getters_present(void) {
	config *c = load("s = \"hello\"\n"
	                 "i = -42\n"
	                 "f = 1.5\n"
	                 "b = true\n"
	                 "d = \"250ms\"\n"
	                 "z = \"512MiB\"\n"
	                 "e = \"uint16\"\n"
	                 "[t]\n"
	                 "x = 1\n"
	                 "[[arr]]\n");
	const cJSON *root = config_root(c), *t, *arr;
	const char *s;
	int64_t i, d;
	uint64_t z;
	double f;
	bool b;
	int e, err = 0;

	ASSERT_EQ(config_string(c, root, "s", NULL, &s), 1);
	ASSERT_STR_EQ(s, "hello");
	ASSERT_EQ(config_int(c, root, "i", 0, -100, 100, &i), 1);
	ASSERT_EQ(i, -42);
	ASSERT_EQ(config_double(c, root, "f", 0, &f), 1);
	ASSERT_DOUBLE_EQ(f, 1.5, 0);
	ASSERT_EQ(config_bool(c, root, "b", false, &b), 1);
	ASSERT(b);
	ASSERT_EQ(config_duration(c, root, "d", 0, &d), 1);
	ASSERT_EQ(d, 250000);
	ASSERT_EQ(config_size(c, root, "z", 0, &z), 1);
	ASSERT_EQ(z, 512 * 1024 * 1024);
	ASSERT_EQ(config_enum(c, root, "e", point_types, 0, &e), 1);
	ASSERT_EQ(e, 1);
	t = config_item(c, root, "t", cJSON_Object, &err);
	ASSERT(t && cJSON_IsObject(t));
	arr = config_item(c, root, "arr", cJSON_Array, &err);
	ASSERT(arr && cJSON_GetArraySize(arr) == 1);
	ASSERT_EQ(err, 0);
	config_mark(c, t, "x");
	ASSERT_OK(config_check_unknown(c, root));
	ASSERT(!config_last_error(c));
	config_free(c);
}

static void test_getters_absent(void) {
	config *c = load("[t]\n");
	const cJSON *root = config_root(c), *t;
	const char *s = NULL;
	int64_t i, d;
	uint64_t z;
	double f;
	bool b;
	int e, err = 0;

	ASSERT_EQ(config_string(c, root, "s", "def", &s), 0);
	ASSERT_STR_EQ(s, "def");
	ASSERT_EQ(config_int(c, root, "i", 7, 0, 10, &i), 0);
	ASSERT_EQ(i, 7);
	ASSERT_EQ(config_double(c, root, "f", 2.5, &f), 0);
	ASSERT_DOUBLE_EQ(f, 2.5, 0);
	ASSERT_EQ(config_bool(c, root, "b", true, &b), 0);
	ASSERT(b);
	ASSERT_EQ(config_duration(c, root, "d", 5000000, &d), 0);
	ASSERT_EQ(d, 5000000);
	ASSERT_EQ(config_size(c, root, "z", 99, &z), 0);
	ASSERT_EQ(z, 99);
	ASSERT_EQ(config_enum(c, root, "e", point_types, 2, &e), 0);
	ASSERT_EQ(e, 2);
	ASSERT(!config_item(c, root, "nope", cJSON_Object, &err));
	ASSERT_EQ(err, 0);

	/* An absent section: every getter says absent. */
	ASSERT_EQ(config_string(c, NULL, "s", "x", &s), 0);
	ASSERT_STR_EQ(s, "x");
	ASSERT_EQ(config_int(c, NULL, "i", 3, 0, 10, &i), 0);
	ASSERT_EQ(i, 3);
	ASSERT(!config_item(c, NULL, "t", cJSON_Object, NULL));
	config_mark(c, NULL, "x");

	t = config_item(c, root, "t", cJSON_Object, NULL);
	ASSERT(t);
	ASSERT_OK(config_check_unknown(c, root));
	ASSERT_OK(config_check_unknown(c, NULL));
	ASSERT(!config_last_error(c));
	config_free(c);
}

/*
 * Each getter on a value of the wrong type: -EINVAL and the exact message.
 * A fresh config per case, since only the first error is kept.
 */
enum getter { G_STRING, G_INT, G_DOUBLE, G_BOOL, G_DURATION, G_SIZE, G_ENUM, G_TABLE, G_ARRAY };

static void expect_getter_error(const char *text, enum getter g, const char *expected) {
	config *c = load(text);
	const cJSON *root = config_root(c);
	const char *s = "untouched";
	int64_t i = 77;
	uint64_t z = 77;
	double f = 77;
	bool b = true;
	int e = 77, r = 0, err = 0;

	switch (g) {
	case G_STRING:
		r = config_string(c, root, "v", "def", &s);
		ASSERT_STR_EQ(s, "untouched");
		break;
	case G_INT:
		r = config_int(c, root, "v", 0, 1, 10, &i);
		ASSERT_EQ(i, 77);
		break;
	case G_DOUBLE:
		r = config_double(c, root, "v", 0, &f);
		ASSERT_DOUBLE_EQ(f, 77, 0);
		break;
	case G_BOOL:
		r = config_bool(c, root, "v", false, &b);
		ASSERT(b);
		break;
	case G_DURATION:
		r = config_duration(c, root, "v", 0, &i);
		ASSERT_EQ(i, 77);
		break;
	case G_SIZE:
		r = config_size(c, root, "v", 0, &z);
		ASSERT_EQ(z, 77);
		break;
	case G_ENUM:
		r = config_enum(c, root, "v", point_types, 0, &e);
		ASSERT_EQ(e, 77);
		break;
	case G_TABLE:
		ASSERT(!config_item(c, root, "v", cJSON_Object, &err));
		r = err;
		break;
	case G_ARRAY:
		ASSERT(!config_item(c, root, "v", cJSON_Array, &err));
		r = err;
		break;
	}
	ASSERT_EQ(r, -EINVAL);
	ASSERT_STR_EQ(config_last_error(c), expected);
	config_free(c);
}

static void test_getters_wrong_type(void) {
	expect_getter_error("v = 1\n", G_STRING, "t.toml:1: v: expected a string, got an integer");
	expect_getter_error("\nv = 1979-05-27\n", G_STRING,
	                    "t.toml:2: v: expected a string, got a date");
	expect_getter_error("v = 1.0\n", G_INT, "t.toml:1: v: expected an integer, got a float");
	expect_getter_error("v = \"5\"\n", G_INT, "t.toml:1: v: expected an integer, got a string");
	expect_getter_error("v = true\n", G_DOUBLE, "t.toml:1: v: expected a number, got a boolean");
	expect_getter_error("v = nan\n", G_DOUBLE, "t.toml:1: v: expected a finite number, got nan");
	expect_getter_error("v = -inf\n", G_DOUBLE,
	                    "t.toml:1: v: expected a finite number, got -inf");
	expect_getter_error("v = \"yes\"\n", G_BOOL, "t.toml:1: v: expected a boolean, got a string");
	expect_getter_error("v = [1]\n", G_ENUM,
	                    "t.toml:1: v: expected one of \"int16\", \"uint16\", \"float32\", "
	                    "got an array");
	/* Values are quoted with escapes, so a message stays one line. */
	expect_getter_error("v = \"a\\\"b\\nc\"\n", G_ENUM,
	                    "t.toml:1: v: expected one of \"int16\", \"uint16\", \"float32\", "
	                    "got \"a\\\"b\\u000ac\"");
	{
		char text[400], expect[400];

		snprintf(text, sizeof(text), "v = \"%0200d\"\n", 7);
		snprintf(expect, sizeof(expect),
		         "t.toml:1: v: expected one of \"int16\", \"uint16\", \"float32\", got \"%084d...\"", 0);
		expect_getter_error(text, G_ENUM, expect);
	}
	expect_getter_error("v = 1\n", G_TABLE, "t.toml:1: v: expected a table, got an integer");
	expect_getter_error("[v]\n", G_ARRAY, "t.toml:1: v: expected an array, got a table");
}

static void test_int_range(void) {
	config *c;
	int64_t i;

	expect_getter_error("v = 42\n", G_INT, "t.toml:1: v: expected an integer from 1 to 10, got 42");
	expect_getter_error("v = 0\n", G_INT, "t.toml:1: v: expected an integer from 1 to 10, got 0");

	c = load("a = 5\nb = -5\nbig = 9007199254740993\nneg = -9223372036854775808\n");
	ASSERT_EQ(config_int(c, config_root(c), "a", 0, INT64_MIN, 4, &i), -EINVAL);
	ASSERT_STR_EQ(config_last_error(c), "t.toml:1: a: expected an integer of at most 4, got 5");
	config_free(c);

	c = load("a = 5\nb = -5\nbig = 9007199254740993\nneg = -9223372036854775808\n");
	ASSERT_EQ(config_int(c, config_root(c), "b", 0, 0, INT64_MAX, &i), -EINVAL);
	ASSERT_STR_EQ(config_last_error(c), "t.toml:2: b: expected an integer of at least 0, got -5");
	/* Integers keep every bit, beyond what a double can hold. */
	ASSERT_EQ(config_int(c, config_root(c), "big", 0, INT64_MIN, INT64_MAX, &i), 1);
	ASSERT(i == INT64_C(9007199254740993));
	ASSERT_EQ(config_int(c, config_root(c), "neg", 0, INT64_MIN, INT64_MAX, &i), 1);
	ASSERT(i == INT64_MIN);
	config_free(c);
}

/* TOML tells 1 from 1.0; cJSON alone cannot, the source map does. */
static void test_int_vs_float(void) {
	config *c = load("i = 1\nf = 1.0\ne = 1e3\n");
	const cJSON *root = config_root(c);
	int64_t i;
	double d;

	ASSERT_EQ(config_double(c, root, "i", 0, &d), 1);
	ASSERT_DOUBLE_EQ(d, 1.0, 0);
	ASSERT_EQ(config_double(c, root, "f", 0, &d), 1);
	ASSERT_DOUBLE_EQ(d, 1.0, 0);
	ASSERT_EQ(config_double(c, root, "e", 0, &d), 1);
	ASSERT_DOUBLE_EQ(d, 1000.0, 0);
	ASSERT_EQ(config_int(c, root, "i", 0, 0, 10, &i), 1);
	ASSERT_EQ(i, 1);
	ASSERT_EQ(config_int(c, root, "e", 0, 0, 10000, &i), -EINVAL);
	ASSERT_STR_EQ(config_last_error(c), "t.toml:3: e: expected an integer, got a float");
	config_free(c);
}

static void test_durations(void) {
	static const struct {
		const char *text;
		int64_t us;
	} ok[] = {
		{ "v = \"250ms\"", 250000 },     { "v = \"5s\"", 5000000 },
		{ "v = \"7d\"", 7 * 86400000000LL }, { "v = \"1.5h\"", 5400000000LL },
		{ "v = \"100us\"", 100 },        { "v = 0", 0 },
		{ "v = \"0\"", 0 },              { "v = \"2min\"", 120000000 },
	};

	for (size_t k = 0; k < sizeof(ok) / sizeof(ok[0]); k++) {
		config *c = load(ok[k].text);
		int64_t us = -1;

		ASSERT_EQ(config_duration(c, config_root(c), "v", 0, &us), 1);
		ASSERT_EQ(us, ok[k].us);
		config_free(c);
	}
	expect_getter_error("v = \"5 sec\"\n", G_DURATION,
	                    "t.toml:1: v: expected a duration like \"250ms\", \"5s\" or \"7d\", "
	                    "got \"5 sec\"");
	expect_getter_error("v = 5\n", G_DURATION,
	                    "t.toml:1: v: expected a duration like \"250ms\", \"5s\" or \"7d\", got 5");
	expect_getter_error("v = 1.5\n", G_DURATION,
	                    "t.toml:1: v: expected a duration like \"250ms\", \"5s\" or \"7d\", "
	                    "got a float");
	expect_getter_error("v = \"-5s\"\n", G_DURATION,
	                    "t.toml:1: v: expected a duration like \"250ms\", \"5s\" or \"7d\", "
	                    "got \"-5s\"");
}

static void test_sizes(void) {
	static const struct {
		const char *text;
		uint64_t bytes;
	} ok[] = {
		{ "v = \"512MiB\"", 536870912 }, { "v = \"1KB\"", 1000 }, { "v = \"2GiB\"", 2147483648ULL },
		{ "v = 1024", 1024 },            { "v = 0", 0 },         { "v = \"77\"", 77 },
	};

	for (size_t k = 0; k < sizeof(ok) / sizeof(ok[0]); k++) {
		config *c = load(ok[k].text);
		uint64_t z = 1;

		ASSERT_EQ(config_size(c, config_root(c), "v", 0, &z), 1);
		ASSERT(z == ok[k].bytes);
		config_free(c);
	}
	expect_getter_error("v = -5\n", G_SIZE,
	                    "t.toml:1: v: expected a size like \"512MiB\" or a number of bytes, got -5");
	expect_getter_error("v = \"12 parsecs\"\n", G_SIZE,
	                    "t.toml:1: v: expected a size like \"512MiB\" or a number of bytes, "
	                    "got \"12 parsecs\"");
	expect_getter_error("v = 1.5\n", G_SIZE,
	                    "t.toml:1: v: expected a size like \"512MiB\" or a number of bytes, "
	                    "got a float");
}

static void test_enum_in_nested_array(void) {
	config *c = load("[drivers.plc1]\n"
	                 "[[drivers.plc1.points]]\n"
	                 "type = \"int16\"\n"
	                 "[[drivers.plc1.points]]\n"
	                 "type = \"flaot32\"\n");
	const cJSON *drivers, *plc1, *points, *p;
	int e, n = 0, r = 0;

	drivers = config_item(c, config_root(c), "drivers", cJSON_Object, NULL);
	plc1 = config_item(c, drivers, "plc1", cJSON_Object, NULL);
	points = config_item(c, plc1, "points", cJSON_Array, NULL);
	ASSERT(points);
	cJSON_ArrayForEach(p, points) {
		r = config_enum(c, p, "type", point_types, 0, &e);
		if (n++ == 0) {
			ASSERT_EQ(r, 1);
			ASSERT_EQ(e, 0);
		}
	}
	ASSERT_EQ(r, -EINVAL);
	ASSERT_STR_EQ(config_last_error(c),
	              "t.toml:5: drivers.plc1.points[1].type: expected one of \"int16\", "
	              "\"uint16\", \"float32\", got \"flaot32\"");
	config_free(c);
}

static void test_paths(void) {
	config *c = load("[[a.b]]\n"
	                 "[[a.b]]\n"
	                 "[[a.b]]\n"
	                 "c = 1\n"
	                 "m = [[1, 2], [3, [4]]]\n"
	                 "\"x.y\" = { \"k 1\" = true }\n");
	const cJSON *root = config_root(c), *a, *b, *c2, *m, *q;
	char buf[64];

	a = cJSON_GetObjectItem(root, "a");
	b = cJSON_GetObjectItem(a, "b");
	c2 = cJSON_GetObjectItem(cJSON_GetArrayItem(b, 2), "c");
	ASSERT_STR_EQ(config_path(c, c2, buf, sizeof(buf)), "a.b[2].c");
	ASSERT_STR_EQ(config_file_line(c, c2, buf, sizeof(buf)), "t.toml:4");
	ASSERT_STR_EQ(config_path(c, cJSON_GetArrayItem(b, 1), buf, sizeof(buf)), "a.b[1]");
	ASSERT_STR_EQ(config_file_line(c, cJSON_GetArrayItem(b, 1), buf, sizeof(buf)), "t.toml:2");
	m = cJSON_GetObjectItem(cJSON_GetArrayItem(b, 2), "m");
	ASSERT_STR_EQ(config_path(c, cJSON_GetArrayItem(cJSON_GetArrayItem(cJSON_GetArrayItem(m, 1), 1), 0), buf, sizeof(buf)),
	              "a.b[2].m[1][1][0]");
	q = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(b, 2), "x.y"), "k 1");
	ASSERT_STR_EQ(config_path(c, q, buf, sizeof(buf)), "a.b[2].\"x.y\".\"k 1\"");
	ASSERT_STR_EQ(config_file_line(c, q, buf, sizeof(buf)), "t.toml:6");

	/* The root and foreign items. */
	ASSERT_STR_EQ(config_path(c, root, buf, sizeof(buf)), "");
	ASSERT_STR_EQ(config_file_line(c, root, buf, sizeof(buf)), "t.toml");
	{
		cJSON *foreign = cJSON_CreateNumber(1);

		ASSERT(foreign);
		ASSERT_STR_EQ(config_path(c, foreign, buf, sizeof(buf)), "");
		ASSERT_STR_EQ(config_file_line(c, foreign, buf, sizeof(buf)), "");
		cJSON_Delete(foreign);
	}
	config_free(c);
}

static void test_key_order(void) {
	config *c = load("z = 1\na = 2\n[m]\n[b]\nq = 1\n[b.c]\n[b.a]\n");
	const char *expect[] = { "z", "a", "m", "b" };
	const cJSON *it, *b;
	size_t n = 0;

	cJSON_ArrayForEach(it, config_root(c)) {
		ASSERT(n < 4);
		ASSERT_STR_EQ(it->string, expect[n]);
		n++;
	}
	ASSERT_EQ(n, 4);
	b = cJSON_GetObjectItem(config_root(c), "b");
	ASSERT_STR_EQ(b->child->string, "q");
	ASSERT_STR_EQ(b->child->next->string, "c");
	ASSERT_STR_EQ(b->child->next->next->string, "a");
	config_free(c);
}

static void test_syntax_errors(void) {
	char *err;

	err = load_error("a = 1\nb = \n");
	ASSERT_STR_CONTAINS(err, "t.toml:2:5: ");
	ASSERT(strncmp(err, "t.toml:2:5: ", 12) == 0);
	free(err);

	err = load_error("a = 1\n\n  [x\n");
	ASSERT(strncmp(err, "t.toml:3:5: ", 12) == 0);
	free(err);

	err = load_error("a = 1\na = 2\n");
	ASSERT(strncmp(err, "t.toml:2:", 9) == 0);
	ASSERT_STR_CONTAINS(err, "'a'");
	free(err);

	/* toml++ 3.3 trips over its own checks here; still just an error. */
	err = load_error("a = [1,}\n");
	ASSERT(strncmp(err, "t.toml:", 7) == 0);
	free(err);
	err = load_error("[[[1]]]\n");
	ASSERT(strncmp(err, "t.toml:", 7) == 0);
	free(err);

	/* Invalid UTF-8. */
	err = load_error("s = \"\xff\xfe\"\n");
	ASSERT(strncmp(err, "t.toml:1:", 9) == 0);
	free(err);

	/* cJSON strings end at NUL: a NUL inside one is refused, not cut. */
	err = load_error("\ns = \"a\\u0000b\"\n");
	ASSERT_STR_EQ(err, "t.toml:2: s: a string cannot contain a NUL character (\\u0000)");
	free(err);
	err = load_error("[t]\n\"a\\u0000b\" = 1\n");
	ASSERT_STR_EQ(err, "t.toml:2: t.\"a\\u0000b\": a key cannot contain a NUL character (\\u0000)");
	free(err);
}

static void test_deep_nesting(void) {
	size_t n = 5000;
	char *text = malloc(n * 2 + 16), *p = text, *err;

	ASSERT(text);
	/* Dotted keys nest without a limit in TOML itself. */
	for (size_t k = 0; k < n; k++) {
		*p++ = 'a';
		*p++ = '.';
	}
	strcpy(p, "b = 1\n");
	err = load_error(text);
	ASSERT_STR_CONTAINS(err, "nest deeper than 128 levels");
	ASSERT_LT(strlen(err), 400);
	free(err);

	p = text;
	p += sprintf(p, "x = ");
	for (size_t k = 0; k < 1000; k++)
		*p++ = '[';
	strcpy(p, "\n");
	err = load_error(text);
	ASSERT(strncmp(err, "t.toml:1:", 9) == 0);
	free(err);
	free(text);

	/* Past the converter's limit but not the pre-scan's. */
	text = malloc(1024);
	ASSERT(text);
	p = text;
	for (size_t k = 0; k < 140; k++) {
		*p++ = 'a';
		*p++ = '.';
	}
	strcpy(p, "b = 1\n");
	err = load_error(text);
	ASSERT(strncmp(err, "t.toml:1: a.a.a.", 16) == 0);
	ASSERT_STR_CONTAINS(err, "...: tables and arrays nest deeper than 128 levels");
	free(err);
	free(text);

	/* Moderate nesting is fine, and dots elsewhere are not keys. */
	{
		size_t m = 300;
		char *doc = malloc(m * 8 + 256), *q = doc;
		config *c;

		ASSERT(doc);
		q += sprintf(q, "a.b.c.d.e.f.g.h = [[[[1]]]]\n# ");
		for (size_t k = 0; k < m; k++)
			*q++ = '.';
		q += sprintf(q, "\ns = \"");
		for (size_t k = 0; k < m; k++)
			*q++ = '.';
		q += sprintf(q, "\"\nml = '''\n");
		for (size_t k = 0; k < m; k++)
			*q++ = '.';
		q += sprintf(q, "'''\nf = [");
		for (size_t k = 0; k < m; k++)
			q += sprintf(q, "%s1.5", k ? "," : "");
		q += sprintf(q, "]\n");
		c = load(doc);
		ASSERT_EQ(cJSON_GetArraySize(cJSON_GetObjectItem(config_root(c), "f")), m);
		config_free(c);
		free(doc);
	}
}

static void test_empty(void) {
	config *c = load("");

	ASSERT(cJSON_IsObject(config_root(c)));
	ASSERT(!config_root(c)->child);
	ASSERT_OK(config_check_unknown(c, config_root(c)));
	config_free(c);

	c = load("# only a comment\n\n");
	ASSERT(!config_root(c)->child);
	config_free(c);
}

static void test_datetime(void) {
	config *c = load("odt = 1979-05-27T07:32:00Z\n"
	                 "off = 1979-05-27T00:32:00.999999-07:00\n"
	                 "ldt = 1979-05-27T07:32:00\n"
	                 "ld = 1979-05-27\n"
	                 "lt = 07:32:00\n");
	const cJSON *root = config_root(c);
	const char *s;

	ASSERT_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItem(root, "odt")), "1979-05-27T07:32:00Z");
	ASSERT_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItem(root, "off")),
	              "1979-05-27T00:32:00.999999-07:00");
	ASSERT_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItem(root, "ldt")), "1979-05-27T07:32:00");
	ASSERT_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItem(root, "ld")), "1979-05-27");
	ASSERT_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItem(root, "lt")), "07:32:00");
	/* A datetime is not a string, even though cJSON holds it as one. */
	ASSERT_EQ(config_string(c, root, "odt", NULL, &s), -EINVAL);
	ASSERT_STR_EQ(config_last_error(c), "t.toml:1: odt: expected a string, got a datetime");
	config_free(c);
}

static void test_unknown_keys(void) {
	config *c = load("name = \"x\"\n"
	                 "[drivers.plc1]\n"
	                 "plugin = \"modbus\"\n"
	                 "nmae = \"y\"\n");
	const cJSON *root = config_root(c), *drivers, *plc1;
	const char *s;

	ASSERT_EQ(config_string(c, root, "name", NULL, &s), 1);
	drivers = config_item(c, root, "drivers", cJSON_Object, NULL);
	plc1 = config_item(c, drivers, "plc1", cJSON_Object, NULL);
	ASSERT_EQ(config_string(c, plc1, "plugin", NULL, &s), 1);
	/* Asked for but absent: still a candidate for the hint. */
	ASSERT_EQ(config_string(c, plc1, "name", NULL, &s), 0);
	ASSERT_EQ(config_check_unknown(c, root), -EINVAL);
	ASSERT_STR_EQ(config_last_error(c),
	              "t.toml:4: drivers.plc1.nmae: unknown key 'nmae' (did you mean 'name'?)");
	config_free(c);

	/* No hint when nothing known is close. */
	c = load("port = 1\nzzzzzz = 2\n");
	config_mark(c, config_root(c), "port");
	ASSERT_EQ(config_check_unknown(c, config_root(c)), -EINVAL);
	ASSERT_STR_EQ(config_last_error(c), "t.toml:2: zzzzzz: unknown key 'zzzzzz'");
	config_free(c);

	/* An unknown table is reported itself; its keys are not looked at. */
	c = load("[mqtt]\nhost = \"h\"\n[mqt]\nhost = \"h\"\n");
	config_mark(c, config_item(c, config_root(c), "mqtt", cJSON_Object, NULL), "host");
	ASSERT_EQ(config_check_unknown(c, config_root(c)), -EINVAL);
	ASSERT_STR_EQ(config_last_error(c), "t.toml:3: mqt: unknown key 'mqt' (did you mean 'mqtt'?)");
	config_free(c);

	/* Tables inside arrays of tables are checked too. */
	c = load("[[p]]\nid = 1\n[[p]]\nid = 2\nidd = 3\n");
	{
		const cJSON *p, *e;
		int64_t i;

		p = config_item(c, config_root(c), "p", cJSON_Array, NULL);
		cJSON_ArrayForEach(e, p)
			ASSERT_EQ(config_int(c, e, "id", 0, 0, 10, &i), 1);
	}
	ASSERT_EQ(config_check_unknown(c, config_root(c)), -EINVAL);
	ASSERT_STR_EQ(config_last_error(c), "t.toml:5: p[1].idd: unknown key 'idd' (did you mean 'id'?)");
	config_free(c);

	/* Checking only a subtree leaves the rest alone. */
	c = load("other = 1\n[sec]\na = 1\n");
	{
		const cJSON *sec = config_item(c, config_root(c), "sec", cJSON_Object, NULL);

		config_mark(c, sec, "a");
		ASSERT_OK(config_check_unknown(c, sec));
	}
	config_free(c);
}

static void test_first_error_wins(void) {
	config *c = load("a = 1\nb = \"x\"\n");
	const cJSON *root = config_root(c);
	const char *s;
	int64_t i;

	ASSERT(!config_last_error(c));
	ASSERT_EQ(config_string(c, root, "a", NULL, &s), -EINVAL);
	ASSERT_EQ(config_int(c, root, "b", 0, 0, 1, &i), -EINVAL);
	ASSERT_EQ(config_error(c, NULL, "third"), -EINVAL);
	ASSERT_STR_EQ(config_last_error(c), "t.toml:1: a: expected a string, got an integer");
	config_free(c);

	/* The parts that are unknown are left out, never the message. */
	c = load("a = 1\n");
	ASSERT_EQ(config_error(c, config_root(c), "root is %s", "wrong"), -EINVAL);
	ASSERT_STR_EQ(config_last_error(c), "t.toml: root is wrong");
	config_free(c);

	c = load("a = 1\n");
	ASSERT_EQ(config_error(c, NULL, "no item\nsecond line"), -EINVAL);
	ASSERT_STR_EQ(config_last_error(c), "no item second line");
	config_free(c);
}

static void test_load_files(void) {
	char *dir = make_dir("load"), *main_path, *confd, *err = NULL, buf[512], *expect;
	const cJSON *root, *mqtt, *drivers;
	config *c = NULL;
	const char *s;
	int64_t i;
	int r;

	ASSERT(asprintf(&main_path, "%s/m2md.toml", dir) > 0);
	ASSERT(asprintf(&confd, "%s/conf.d", dir) > 0);

	/* A missing main file. */
	r = config_load(main_path, NULL, &c, &err);
	ASSERT_EQ(r, -ENOENT);
	ASSERT(!c);
	ASSERT(asprintf(&expect, "%s: cannot read: %s", main_path, strerror(ENOENT)) > 0);
	ASSERT_STR_EQ(err, expect);
	free(expect);
	free(err);
	err = NULL;

	/* No conf.d at all is fine. */
	write_file(main_path, "[mqtt]\n"
	                      "host = \"a\"\n"
	                      "port = 1883\n"
	                      "[drivers.x]\n"
	                      "plugin = \"sim\"\n"
	                      "list = [1, 2, 3]\n"
	                      "[drivers.y]\n"
	                      "plugin = \"sim\"\n");
	ASSERT_OK(config_load(main_path, NULL, &c, &err));
	ASSERT(!err);
	config_free(c);
	c = NULL;

	ASSERT_OK(mkdir(confd, 0700));
	ASSERT(snprintf(buf, sizeof(buf), "%s/20-b.toml", confd) > 0);
	write_file(buf, "mqtt.host = \"c\"\n"
	                "drivers.x.list = [9]\n"
	                "drivers.y = \"gone\"\n");
	ASSERT(snprintf(buf, sizeof(buf), "%s/10-a.toml", confd) > 0);
	write_file(buf, "[mqtt]\nhost = \"b\"\nuser = \"u\"\n");
	/* Not read: other suffixes and hidden files. */
	ASSERT(snprintf(buf, sizeof(buf), "%s/README", confd) > 0);
	write_file(buf, "this is not toml");
	ASSERT(snprintf(buf, sizeof(buf), "%s/.#30-c.toml", confd) > 0);
	write_file(buf, "this is not toml");
	ASSERT(snprintf(buf, sizeof(buf), "%s/30-c.toml.bak", confd) > 0);
	write_file(buf, "this is not toml");

	ASSERT_OK(config_load(main_path, NULL, &c, &err));
	ASSERT(!err);
	root = config_root(c);
	mqtt = cJSON_GetObjectItem(root, "mqtt");
	ASSERT_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItem(mqtt, "host")), "c");
	ASSERT_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItem(mqtt, "user")), "u");
	ASSERT_EQ(cJSON_GetObjectItem(mqtt, "port")->valuedouble, 1883);
	/* Each item keeps its own file and line. */
	ASSERT(asprintf(&expect, "%s/20-b.toml:1", confd) > 0);
	ASSERT_STR_EQ(config_file_line(c, cJSON_GetObjectItem(mqtt, "host"), buf, sizeof(buf)), expect);
	free(expect);
	ASSERT(asprintf(&expect, "%s/10-a.toml:3", confd) > 0);
	ASSERT_STR_EQ(config_file_line(c, cJSON_GetObjectItem(mqtt, "user"), buf, sizeof(buf)), expect);
	free(expect);
	ASSERT(asprintf(&expect, "%s:3", main_path) > 0);
	ASSERT_STR_EQ(config_file_line(c, cJSON_GetObjectItem(mqtt, "port"), buf, sizeof(buf)), expect);
	free(expect);
	ASSERT_STR_EQ(config_path(c, cJSON_GetObjectItem(mqtt, "user"), buf, sizeof(buf)), "mqtt.user");
	/* Merged keys keep their order; new ones come last. */
	ASSERT_STR_EQ(mqtt->child->string, "host");
	ASSERT_STR_EQ(mqtt->child->next->string, "port");
	ASSERT_STR_EQ(mqtt->child->next->next->string, "user");
	/* Arrays are replaced, not appended to; a table can be replaced too. */
	drivers = cJSON_GetObjectItem(root, "drivers");
	ASSERT_EQ(cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(drivers, "x"), "list")), 1);
	ASSERT_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItem(drivers, "y")), "gone");
	/* Errors name the file the value came from. */
	ASSERT_EQ(config_int(c, mqtt, "host", 0, 0, 1, &i), -EINVAL);
	ASSERT(asprintf(&expect, "%s/20-b.toml:1: mqtt.host: expected an integer, got a string", confd) > 0);
	ASSERT_STR_EQ(config_last_error(c), expect);
	free(expect);
	ASSERT_EQ(config_string(c, mqtt, "port", NULL, &s), -EINVAL);
	config_free(c);
	c = NULL;

	/* An explicit conf.d directory, with a trailing slash. */
	{
		char *other, *confd2;

		ASSERT(asprintf(&other, "%s/other", dir) > 0);
		ASSERT(asprintf(&confd2, "%s/", other) > 0);
		ASSERT_OK(mkdir(other, 0700));
		ASSERT(snprintf(buf, sizeof(buf), "%s/x.toml", other) > 0);
		write_file(buf, "[mqtt]\nhost = \"z\"\nport = \"bad\"\n");
		ASSERT_OK(config_load(main_path, confd2, &c, &err));
		mqtt = cJSON_GetObjectItem(config_root(c), "mqtt");
		ASSERT_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItem(mqtt, "host")), "z");
		ASSERT(!cJSON_GetObjectItem(mqtt, "user"));
		ASSERT_EQ(config_int(c, mqtt, "port", 0, 0, 65535, &i), -EINVAL);
		ASSERT(asprintf(&expect, "%s/x.toml:3: mqtt.port: expected an integer, got a string",
		                other) > 0);
		ASSERT_STR_EQ(config_last_error(c), expect);
		free(expect);
		config_free(c);
		c = NULL;
		free(confd2);
		free(other);
	}

	/* A syntax error in a conf.d file names that file, line and column. */
	ASSERT(snprintf(buf, sizeof(buf), "%s/15-bad.toml", confd) > 0);
	write_file(buf, "ok = 1\n\nbroken =\n");
	r = config_load(main_path, NULL, &c, &err);
	ASSERT_EQ(r, -EINVAL);
	ASSERT(!c);
	ASSERT(asprintf(&expect, "%s/15-bad.toml:3:9: ", confd) > 0);
	ASSERT(strncmp(err, expect, strlen(expect)) == 0);
	free(expect);
	free(err);
	err = NULL;
	ASSERT_OK(unlink(buf));

	/* A conf.d file that cannot be read is an error, not skipped. */
	ASSERT(snprintf(buf, sizeof(buf), "%s/16-dir.toml", confd) > 0);
	ASSERT_OK(mkdir(buf, 0700));
	r = config_load(main_path, NULL, &c, &err);
	ASSERT_EQ(r, -EISDIR);
	ASSERT(asprintf(&expect, "%s/16-dir.toml: cannot read: %s", confd, strerror(EISDIR)) > 0);
	ASSERT_STR_EQ(err, expect);
	free(expect);
	free(err);
	err = NULL;
	ASSERT_OK(rmdir(buf));

	/* A conf.d that is not a directory is an error. */
	r = config_load(main_path, main_path, &c, &err);
	ASSERT_EQ(r, -ENOTDIR);
	ASSERT(asprintf(&expect, "%s: cannot read: %s", main_path, strerror(ENOTDIR)) > 0);
	ASSERT_STR_EQ(err, expect);
	free(expect);
	free(err);
	err = NULL;

	free(main_path);
	free(confd);
	remove_dir(dir);
}

static void test_huge_file(void) {
	char *dir = make_dir("huge"), *path, *err = NULL;
	config *c = NULL;
	int fd;

	ASSERT(asprintf(&path, "%s/huge.toml", dir) > 0);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ASSERT_GE(fd, 0);
	ASSERT_OK(ftruncate(fd, 17 * 1024 * 1024));
	ASSERT_OK(close(fd));
	ASSERT_EQ(config_load(path, NULL, &c, &err), -EFBIG);
	ASSERT_STR_CONTAINS(err, "huge.toml: cannot read: file is larger than 16 MiB");
	free(err);
	free(path);
	remove_dir(dir);
}

/* Many keys: the hash tables grow and every item still has its source. */
static void test_many_keys(void) {
	size_t n = 5000, len = 0;
	char *text = malloc(n * 32), *p = text;
	const cJSON *root, *it;
	config *c;
	char key[32];

	ASSERT(text);
	for (size_t k = 0; k < n; k++)
		p += sprintf(p, "k%zu = %zu\n", k, k);
	c = load(text);
	free(text);
	root = config_root(c);
	for (size_t k = 0; k < n; k += 2) {
		int64_t v;

		snprintf(key, sizeof(key), "k%zu", k);
		ASSERT_EQ(config_int(c, root, key, -1, 0, INT64_MAX, &v), 1);
		ASSERT_EQ(v, (int64_t)k);
	}
	cJSON_ArrayForEach(it, root) {
		char buf[32];

		snprintf(key, sizeof(key), "t.toml:%zu", len + 1);
		ASSERT_STR_EQ(config_file_line(c, it, buf, sizeof(buf)), key);
		len++;
	}
	ASSERT_EQ(len, n);
	ASSERT_EQ(config_check_unknown(c, root), -EINVAL);
	ASSERT_STR_EQ(config_last_error(c), "t.toml:2: k1: unknown key 'k1' (did you mean 'k0'?)");
	config_free(c);
}

/*
 * Paths are found from the tree when asked for, and must read as the
 * parser wrote them: quoting, escapes and array indexes, also for the
 * messages of errors.
 */
static void test_paths_on_demand(void) {
	config *c = load("[t]\n"
	                 "\"a\\tb\\\\c\\\"\" = 1\n"
	                 "[[t.list]]\n"
	                 "[[t.list]]\n"
	                 "v = \"x\"\n");
	const cJSON *t = cJSON_GetObjectItem(config_root(c), "t"), *odd, *v;
	char buf[128];
	int64_t i;

	odd = cJSON_GetObjectItem(t, "a\tb\\c\"");
	ASSERT(odd);
	ASSERT_STR_EQ(config_path(c, odd, buf, sizeof(buf)), "t.\"a\\u0009b\\\\c\\\"\"");
	v = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(t, "list"), 1), "v");
	ASSERT_STR_EQ(config_path(c, v, buf, sizeof(buf)), "t.list[1].v");
	/* A short buffer truncates; it never overflows. */
	ASSERT_STR_EQ(config_path(c, v, buf, 5), "t.li");
	ASSERT_EQ(config_int(c, cJSON_GetArrayItem(cJSON_GetObjectItem(t, "list"), 1), "v", 0, 0, 9, &i),
	          -EINVAL);
	ASSERT_STR_EQ(config_last_error(c), "t.toml:5: t.list[1].v: expected an integer, got a string");
	config_free(c);
}

/*
 * Settling drops the record of keys asked for: the getters go on working
 * (a driver restarted later reads its section again), errors still say
 * file, line and path, and a second check for unknown keys is refused
 * rather than passed or failed on an empty record.
 */
static void test_settle(void) {
	config *c = load("[a]\nx = 1\ny = \"s\"\n");
	const cJSON *a = config_item(c, config_root(c), "a", cJSON_Object, NULL);
	const char *str;
	int64_t i;

	ASSERT_EQ(config_int(c, a, "x", 0, 0, 9, &i), 1);
	ASSERT_EQ(config_string(c, a, "y", NULL, &str), 1);
	ASSERT_EQ(config_check_unknown(c, config_root(c)), 0);
	config_settle(c);
	ASSERT_EQ(config_int(c, a, "x", 0, 0, 9, &i), 1);
	ASSERT_EQ(i, 1);
	ASSERT_EQ(config_int(c, a, "y", 0, 0, 9, &i), -EINVAL);
	ASSERT_STR_EQ(config_last_error(c), "t.toml:3: a.y: expected an integer, got a string");
	config_free(c);

	c = load("[a]\nx = 1\n");
	config_settle(c);
	ASSERT_EQ(config_check_unknown(c, config_root(c)), -EINVAL);
	config_free(c);
}

int main(void) {
	RUN_TEST(test_getters_present);
	RUN_TEST(test_getters_absent);
	RUN_TEST(test_getters_wrong_type);
	RUN_TEST(test_int_range);
	RUN_TEST(test_int_vs_float);
	RUN_TEST(test_durations);
	RUN_TEST(test_sizes);
	RUN_TEST(test_enum_in_nested_array);
	RUN_TEST(test_paths);
	RUN_TEST(test_paths_on_demand);
	RUN_TEST(test_settle);
	RUN_TEST(test_key_order);
	RUN_TEST(test_syntax_errors);
	RUN_TEST(test_deep_nesting);
	RUN_TEST(test_empty);
	RUN_TEST(test_datetime);
	RUN_TEST(test_unknown_keys);
	RUN_TEST(test_first_error_wins);
	RUN_TEST(test_load_files);
	RUN_TEST(test_huge_file);
	RUN_TEST(test_many_keys);
	return 0;
}
