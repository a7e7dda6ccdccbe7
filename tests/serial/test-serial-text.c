/* SPDX-License-Identifier: MIT */
/*
 * The generic text parsers: delimited fields with quotes, fixed columns,
 * PCRE2 matches with named and numbered groups and their limits, and the
 * number, boolean and text conversions (locale-independent numbers).
 */
#include <errno.h>
#include <locale.h>
#include <string.h>

#include "serial-number.h"
#include "serial-text.h"
#include "test.h"

static struct st_field fld(const char *s) {
	return (struct st_field){s, strlen(s)};
}

static void expect_field(struct st_field f, const char *want) {
	if (!f.p || f.len != strlen(want) || memcmp(f.p, want, f.len) != 0)
		TEST_FAIL("field \"%.*s\" vs \"%s\"", f.p ? (int)f.len : 6, f.p ? f.p : "(null)",
		          want);
}

static void test_split(void) {
	struct st_delimited csv = {.separator = ',', .quote = '"'};
	const char *line = "23.5,\"a,b\",\"say \"\"hi\"\"\",,\"\"";
	char buf[128];
	struct st_field f[8];

	ASSERT_EQ(st_split(line, strlen(line), &csv, buf, f, 8), 5);
	expect_field(f[0], "23.5");
	expect_field(f[1], "a,b");
	expect_field(f[2], "say \"hi\"");
	expect_field(f[3], "");
	expect_field(f[4], "");
	/* A trailing separator is one more, empty field; an empty frame is one field. */
	ASSERT_EQ(st_split("a,b,", 4, &csv, buf, f, 8), 3);
	expect_field(f[2], "");
	ASSERT_EQ(st_split("", 0, &csv, buf, f, 8), 1);
	expect_field(f[0], "");
	/* Too many fields, an open quote, junk after a closing quote. */
	ASSERT_EQ(st_split("a,b,c", 5, &csv, buf, f, 2), -E2BIG);
	ASSERT_EQ(st_split("a,\"b", 4, &csv, buf, f, 8), -EINVAL);
	ASSERT_EQ(st_split("\"a\"x,b", 6, &csv, buf, f, 8), -EINVAL);
	/* Without quoting a quote is data. */
	csv.quote = 0;
	ASSERT_EQ(st_split("\"a,b\"", 5, &csv, buf, f, 8), 2);
	expect_field(f[0], "\"a");
	/* Semicolons and trimming; a quoted field keeps its spaces. */
	struct st_delimited semi = {.separator = ';', .quote = '"', .trim = true};
	line = " ST ; GS ;  +0012.34 kg ; \" x \" ";
	ASSERT_EQ(st_split(line, strlen(line), &semi, buf, f, 8), 4);
	expect_field(f[0], "ST");
	expect_field(f[1], "GS");
	expect_field(f[2], "+0012.34 kg");
	expect_field(f[3], " x ");
	/* Tab-separated with trim: the tab stays a separator. */
	struct st_delimited tab = {.separator = '\t', .trim = true};
	ASSERT_EQ(st_split("1\t 2 \t\t3", 8, &tab, buf, f, 8), 4);
	expect_field(f[1], "2");
	expect_field(f[2], "");
	expect_field(f[3], "3");
}

static void test_columns(void) {
	/* A scale: "ST,GS,  12.345kg" in fixed columns. */
	const char *line = "ST,GS,  12.345kg";
	struct st_field f;
	double v;

	ASSERT_OK(st_column(line, strlen(line), 0, 2, false, &f));
	expect_field(f, "ST");
	ASSERT_OK(st_column(line, strlen(line), 6, 8, true, &f));
	expect_field(f, "12.345");
	ASSERT_OK(st_number(f, '.', &v));
	ASSERT_DOUBLE_EQ(v, 12.345, 0);
	ASSERT_OK(st_column(line, strlen(line), 14, 10, false, &f));
	expect_field(f, "kg");
	ASSERT_EQ(st_column(line, strlen(line), 16, 2, false, &f), -ENODATA);
	ASSERT_EQ(st_column(line, strlen(line), 0, 0, false, &f), -ENODATA);
	ASSERT_OK(st_column(line, strlen(line), 6, 2, true, &f));
	expect_field(f, "");
}

static void test_numbers(void) {
	double v;
	uint64_t u;

	ASSERT_OK(st_number(fld(" -12.5 "), '.', &v));
	ASSERT_DOUBLE_EQ(v, -12.5, 0);
	ASSERT_OK(st_number(fld("+0012.340"), '.', &v));
	ASSERT_DOUBLE_EQ(v, 12.34, 0);
	ASSERT_OK(st_number(fld("1,5"), ',', &v));
	ASSERT_DOUBLE_EQ(v, 1.5, 0);
	ASSERT_EQ(st_number(fld("1,5"), '.', &v), -EINVAL);
	ASSERT_OK(st_number(fld("6.02e23"), '.', &v));
	ASSERT_DOUBLE_EQ(v, 6.02e23, 6.02e23 * 1e-15);
	ASSERT_OK(st_number(fld("1E-3"), '.', &v));
	ASSERT_DOUBLE_EQ(v, 0.001, 0);
	ASSERT_OK(st_number(fld(".5"), '.', &v));
	ASSERT_DOUBLE_EQ(v, 0.5, 0);
	ASSERT_OK(st_number(fld("5."), '.', &v));
	ASSERT_DOUBLE_EQ(v, 5, 0);
	ASSERT_OK(st_number(fld("0.000000000000000000000000001"), '.', &v));
	ASSERT_DOUBLE_EQ(v, 1e-27, 1e-40);
	ASSERT_OK(st_number(fld("123456789012345678901234567890"), '.', &v));
	ASSERT_DOUBLE_EQ(v, 1.2345678901234568e29, 1e15);
	ASSERT_OK(st_number(fld("1e999999999"), '.', &v));
	ASSERT(isinf(v));
	ASSERT_EQ(st_number(fld("   "), '.', &v), -ENODATA);
	ASSERT_EQ(st_number((struct st_field){NULL, 0}, '.', &v), -ENODATA);
	ASSERT_EQ(st_number(fld("12 kg"), '.', &v), -EINVAL);
	ASSERT_EQ(st_number(fld("."), '.', &v), -EINVAL);
	ASSERT_EQ(st_number(fld("-"), '.', &v), -EINVAL);
	ASSERT_EQ(st_number(fld("1e"), '.', &v), -EINVAL);
	ASSERT_EQ(st_number(fld("1.2.3"), '.', &v), -EINVAL);
	ASSERT_EQ(st_number(fld("nan"), '.', &v), -EINVAL);
	ASSERT_EQ(st_number(fld("0x10"), '.', &v), -EINVAL);
	/* Exact for every decimal with up to 15 digits, as strtod in the C locale. */
	ASSERT_OK(sn_double("0.1", 3, '.', &v));
	ASSERT(v == 0.1);
	ASSERT_OK(sn_double("4807.038", 8, '.', &v));
	ASSERT(v == 4807.038);
	ASSERT_OK(sn_double("-0.000123456789012345", 21, '.', &v));
	ASSERT(v == -0.000123456789012345);
	/* A decimal-comma locale does not change what "3.5" means. */
	if (setlocale(LC_NUMERIC, "de_DE.UTF-8") || setlocale(LC_NUMERIC, "fr_FR.UTF-8")) {
		ASSERT_OK(st_number(fld("3.5"), '.', &v));
		ASSERT_DOUBLE_EQ(v, 3.5, 0);
		setlocale(LC_NUMERIC, "C");
	}
	ASSERT_OK(sn_uint("0042", 4, 100, &u));
	ASSERT_EQ(u, 42);
	ASSERT_EQ(sn_uint("101", 3, 100, &u), -ERANGE);
	ASSERT_EQ(sn_uint("18446744073709551616", 20, UINT64_MAX, &u), -ERANGE);
	ASSERT_OK(sn_uint("18446744073709551615", 20, UINT64_MAX, &u));
	ASSERT(u == UINT64_MAX);
	ASSERT_EQ(sn_uint("5", 1, 3, &u), -ERANGE);
	ASSERT_EQ(sn_uint("", 0, 3, &u), -ENODATA);
	ASSERT_EQ(sn_uint("-1", 2, 3, &u), -EINVAL);
}

static void test_bools(void) {
	bool b = false;

	ASSERT_OK(st_bool(fld(" ON "), "on", "off", &b));
	ASSERT(b);
	ASSERT_OK(st_bool(fld("Off"), "on", "off", &b));
	ASSERT(!b);
	ASSERT_EQ(st_bool(fld("maybe"), "on", "off", &b), -EINVAL);
	ASSERT_OK(st_bool(fld("maybe"), "on", NULL, &b));
	ASSERT(!b);
	ASSERT_EQ(st_bool(fld(""), "on", NULL, &b), -ENODATA);
	ASSERT_OK(st_bool(fld("ST"), "ST", "US", &b));
	ASSERT(b);
}

static void test_text(void) {
	char out[16];

	ASSERT_EQ(st_text(fld("  hello  "), out, sizeof(out)), 5);
	ASSERT_STR_EQ(out, "hello");
	ASSERT_EQ(st_text(fld("a\x01" "b\x7f"), out, sizeof(out)), 4);
	ASSERT_STR_EQ(out, "a?b?");
	/* Valid UTF-8 stays; a lone continuation, an overlong form, a surrogate do not. */
	st_text(fld("25\xc2\xb0" "C"), out, sizeof(out));
	ASSERT_STR_EQ(out, "25\xc2\xb0" "C");
	st_text(fld("\x80" "\xc0\xaf" "\xed\xa0\x80"), out, sizeof(out));
	ASSERT_STR_EQ(out, "??????");
	/* Cut to fit, never inside a character. */
	ASSERT_EQ(st_text(fld("abcd\xc2\xb0"), out, 6), 4);
	ASSERT_STR_EQ(out, "abcd");
	ASSERT_EQ(st_text(fld("abcdefghijklmnopqrstuvwxyz"), out, sizeof(out)), 15);
	ASSERT_EQ(st_text((struct st_field){NULL, 0}, out, sizeof(out)), 0);
	ASSERT_STR_EQ(out, "");
	ASSERT_EQ(st_text(fld("x"), out, 0), 0);
}

static void test_regex(void) {
	st_regex *re = NULL;
	struct st_field g[8];
	char err[200];
	const char *line = "ST,GS,+0012.34 kg";
	double v;

	ASSERT_OK(st_regex_compile("^(?<state>ST|US),(GS|NT),(?<weight>[-+ ]?[0-9.]+) ?(kg|g)?$", 0,
	                           0, &re, err, sizeof(err)));
	ASSERT_EQ(st_regex_groups(re), 4);
	ASSERT_EQ(st_regex_group(re, "state"), 1);
	ASSERT_EQ(st_regex_group(re, "weight"), 3);
	ASSERT_EQ(st_regex_group(re, "2"), 2);
	ASSERT_EQ(st_regex_group(re, "0"), 0);
	ASSERT_EQ(st_regex_group(re, "5"), -ENOENT);
	ASSERT_EQ(st_regex_group(re, "tare"), -ENOENT);
	ASSERT_EQ(st_regex_match(re, line, strlen(line), g, 8), 5);
	expect_field(g[0], line);
	expect_field(g[1], "ST");
	expect_field(g[3], "+0012.34");
	expect_field(g[4], "kg");
	ASSERT_OK(st_number(g[3], '.', &v));
	ASSERT_DOUBLE_EQ(v, 12.34, 0);
	/* An optional group that did not take part; fewer slots than groups. */
	ASSERT_EQ(st_regex_match(re, "US,NT,-3", 8, g, 8), 5);
	ASSERT(g[4].p == NULL);
	ASSERT_EQ(st_regex_match(re, "US,NT,-3", 8, g, 2), 2);
	expect_field(g[1], "US");
	ASSERT_EQ(st_regex_match(re, "XX,GS,1", 7, g, 8), -ENOMSG);
	/* The length counts, not a NUL: bytes past it are not seen, a NUL inside is a byte. */
	ASSERT_EQ(st_regex_match(re, "US,NT,-3kg", 8, g, 8), 5);
	expect_field(g[3], "-3");
	ASSERT_EQ(st_regex_match(re, "US,NT,\0003", 8, g, 8), -ENOMSG);
	st_regex_free(re);

	/* Catastrophic backtracking stops at the match limit instead of stalling. */
	ASSERT_OK(st_regex_compile("^(a+)+$", 10000, 0, &re, err, sizeof(err)));
	ASSERT_EQ(st_regex_match(re, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab", 40, g, 8),
	          -ERANGE);
	ASSERT_EQ(st_regex_match(re, "aaaa", 4, g, 8), 2);
	st_regex_free(re);
	/* And deep recursion at the depth limit. */
	ASSERT_OK(st_regex_compile("^(?:(a)|b)*$", 0, 10, &re, err, sizeof(err)));
	{
		char many[400];

		memset(many, 'a', sizeof(many));
		ASSERT_EQ(st_regex_match(re, many, sizeof(many), g, 8), -ERANGE);
	}
	st_regex_free(re);

	ASSERT_EQ(st_regex_compile("(unclosed", 0, 0, &re, err, sizeof(err)), -EINVAL);
	ASSERT_STR_CONTAINS(err, "offset 9");
	ASSERT_EQ(st_regex_compile("a{2,1}", 0, 0, &re, NULL, 0), -EINVAL);
	st_regex_free(NULL);
}

int main(void) {
	RUN_TEST(test_split);
	RUN_TEST(test_columns);
	RUN_TEST(test_numbers);
	RUN_TEST(test_bools);
	RUN_TEST(test_text);
	RUN_TEST(test_regex);
	return 0;
}
