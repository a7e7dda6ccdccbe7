/* SPDX-License-Identifier: MIT */
/* Checked parsers for numbers, durations and sizes; the error table. */
#include <errno.h>

#include "error.h"
#include "fmt.h"
#include "util.h"
#include "test.h"

static void test_duration(void) {
	int64_t us;

	ASSERT_OK(parse_duration("250ms", &us));
	ASSERT_EQ(us, 250000);
	ASSERT_OK(parse_duration("5s", &us));
	ASSERT_EQ(us, 5000000);
	ASSERT_OK(parse_duration("1.5h", &us));
	ASSERT_EQ(us, 5400000000LL);
	ASSERT_OK(parse_duration("7d", &us));
	ASSERT_EQ(us, 7 * 86400000000LL);
	ASSERT_OK(parse_duration("10min", &us));
	ASSERT_EQ(us, 600000000LL);
	ASSERT_OK(parse_duration("2m", &us));
	ASSERT_EQ(us, 120000000LL);
	ASSERT_OK(parse_duration("100us", &us));
	ASSERT_EQ(us, 100);
	ASSERT_OK(parse_duration("1w", &us));
	ASSERT_OK(parse_duration("0", &us));
	ASSERT_EQ(us, 0);
	ASSERT_EQ(parse_duration("100", &us), -EINVAL); /* a unit is required */
	ASSERT_EQ(parse_duration("", &us), -EINVAL);
	ASSERT_EQ(parse_duration("-5s", &us), -EINVAL);
	ASSERT_EQ(parse_duration("5 s", &us), -EINVAL);
	ASSERT_EQ(parse_duration("5sec", &us), -EINVAL);
	ASSERT_EQ(parse_duration("s", &us), -EINVAL);
	ASSERT_EQ(parse_duration("1e3s", &us), -EINVAL);
	ASSERT_EQ(parse_duration("99999999999999w", &us), -ERANGE);
	ASSERT_EQ(parse_duration(NULL, &us), -EINVAL);
}

static void test_size(void) {
	uint64_t v;

	ASSERT_OK(parse_size("512MiB", &v));
	ASSERT_EQ(v, 512ULL << 20);
	ASSERT_OK(parse_size("1GB", &v));
	ASSERT_EQ(v, 1000000000ULL);
	ASSERT_OK(parse_size("64KiB", &v));
	ASSERT_EQ(v, 65536);
	ASSERT_OK(parse_size("4096", &v));
	ASSERT_EQ(v, 4096);
	ASSERT_OK(parse_size("1.5KiB", &v));
	ASSERT_EQ(v, 1536);
	ASSERT_EQ(parse_size("1.3B", &v), -EINVAL);
	ASSERT_EQ(parse_size("12 parsecs", &v), -EINVAL);
	ASSERT_EQ(parse_size("-1", &v), -EINVAL);
	ASSERT_EQ(parse_size("MiB", &v), -EINVAL);
	ASSERT_EQ(parse_size("99999999TiB", &v), -ERANGE);
}

static void test_numbers(void) {
	int64_t i;
	uint64_t u;
	double d;

	ASSERT_OK(parse_int64("-42", &i));
	ASSERT_EQ(i, -42);
	ASSERT_OK(parse_int64("0x10", &i));
	ASSERT_EQ(i, 16);
	ASSERT_EQ(parse_int64("12a", &i), -EINVAL);
	ASSERT_EQ(parse_int64("", &i), -EINVAL);
	ASSERT_EQ(parse_int64("99999999999999999999", &i), -ERANGE);
	ASSERT_OK(parse_uint64("18446744073709551615", &u));
	ASSERT_EQ(parse_uint64("-1", &u), -EINVAL);
	ASSERT_OK(parse_double("2.5e3", &d));
	ASSERT_DOUBLE_EQ(d, 2500, 0);
	ASSERT_EQ(parse_double("2.5x", &d), -EINVAL);
	ASSERT_EQ(parse_double("1e999", &d), -ERANGE);
}

static void test_format(void) {
	char buf[32];

	ASSERT_STR_EQ(format_duration(250000, buf, sizeof(buf)), "250ms");
	ASSERT_STR_EQ(format_duration(5000000, buf, sizeof(buf)), "5s");
	ASSERT_STR_EQ(format_duration(7 * 86400000000LL, buf, sizeof(buf)), "7d");
	ASSERT_STR_EQ(format_duration(3600000000LL, buf, sizeof(buf)), "1h");
	ASSERT_STR_EQ(format_duration(1500, buf, sizeof(buf)), "1500us");
	ASSERT_STR_EQ(format_duration(457924, buf, sizeof(buf)), "458ms");
	ASSERT_STR_EQ(format_duration(12345678, buf, sizeof(buf)), "12346ms");
	ASSERT_STR_EQ(format_duration(9999, buf, sizeof(buf)), "9999us");
}

static void test_json_numbers(void) {
	char buf[FMT_DOUBLE_MAX], *s;
	cJSON *o;

	fmt_double(51.400000000000006, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "51.400000000000006");
	fmt_double(51.4, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "51.4");
	fmt_double(0.1 + 0.2, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "0.30000000000000004");
	fmt_double(1796113194548450.0, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "1796113194548450");
	fmt_double(1e16, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "10000000000000000");
	fmt_double(-0.5, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "-0.5");
	fmt_double(1e300, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "1e+300");
	fmt_double(NAN, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "null");
	/* 16 digits, where 15 round and 17 are more than needed. */
	fmt_double(5.0000000000000009, buf, sizeof(buf));
	ASSERT(strtod(buf, NULL) == 5.0000000000000009);
	ASSERT_LE(strlen(buf), 18);

	o = cJSON_Parse("{\"ts\":1796113194548450,\"v\":51.400000000000006,\"s\":\"a\\\"\\n°\","
	                "\"a\":[1,2.5,null,true,{}],\"e\":[]}");
	ASSERT(o != NULL);
	s = json_print(o, false);
	ASSERT_STR_EQ(s, "{\"ts\":1796113194548450,\"v\":51.400000000000006,\"s\":\"a\\\"\\n°\","
	                 "\"a\":[1,2.5,null,true,{}],\"e\":[]}");
	free(s);
	/* The formatted form parses back to the same tree. */
	s = json_print(o, true);
	{
		cJSON *back = cJSON_Parse(s);
		ASSERT(back != NULL && cJSON_Compare(o, back, true));
		cJSON_Delete(back);
	}
	free(s);
	cJSON_Delete(o);
}

/*
 * Wall-clock times past 2038 (a signed 32-bit time_t ends on 2038-01-19)
 * and 2106 (an unsigned one), and before 1970: every formatter and parser
 * of m2md goes through these two (the MQTT payload's ts, a rule's {ts},
 * m2mctl's times and --since/--until). Run on armhf too (tools/cross-test).
 */
static void test_utc(void) {
	const int64_t t2040 = 2214134055LL * 1000000 + 123456; /* 2040-02-29T13:14:15.123456Z */
	char buf[40];
	int64_t us;

	ASSERT_EQ(format_utc(t2040, 6, buf, sizeof(buf)), 27);
	ASSERT_STR_EQ(buf, "2040-02-29T13:14:15.123456Z");
	ASSERT_EQ(format_utc(t2040, 3, buf, sizeof(buf)), 24);
	ASSERT_STR_EQ(buf, "2040-02-29T13:14:15.123Z");
	ASSERT_EQ(format_utc(t2040, 0, buf, sizeof(buf)), 20);
	ASSERT_STR_EQ(buf, "2040-02-29T13:14:15Z");
	ASSERT_GT(format_utc(2147483648LL * 1000000, 0, buf, sizeof(buf)), 0);
	ASSERT_STR_EQ(buf, "2038-01-19T03:14:08Z");
	ASSERT_GT(format_utc(4294967296LL * 1000000 + 999999, 3, buf, sizeof(buf)), 0);
	ASSERT_STR_EQ(buf, "2106-02-07T06:28:16.999Z");
	ASSERT_GT(format_utc(-1, 6, buf, sizeof(buf)), 0);
	ASSERT_STR_EQ(buf, "1969-12-31T23:59:59.999999Z");
	ASSERT_GT(format_utc(0, 3, buf, sizeof(buf)), 0);
	ASSERT_STR_EQ(buf, "1970-01-01T00:00:00.000Z");
	ASSERT_EQ(format_utc(t2040, 6, buf, 27), -ENOBUFS);
	ASSERT_EQ(format_utc(t2040, 7, buf, sizeof(buf)), -EINVAL);

	static const struct {
		const char *s;
		int64_t sec;
	} dates[] = {
		{ "2040-02-29T13:14:15Z", 2214134055LL }, { "2040-02-29T13:14:15", 2214134055LL },
		{ "2040-02-29 13:14:15", 2214134055LL },  { "2040-02-29 13:14", 2214134040LL },
		{ "2040-02-29", 2214086400LL },           { "2106-02-07T06:28:16Z", 4294967296LL },
		{ "1969-12-31T23:59:59Z", -1 },           { "9999-12-31T23:59:59Z", 253402300799LL },
	};
	for (size_t i = 0; i < ELEMENTSOF(dates); i++) {
		ASSERT_OK(parse_utc(dates[i].s, &us));
		ASSERT_EQ(us, dates[i].sec * 1000000);
	}
	ASSERT_EQ(parse_utc("2040-02-29T13:14:15+01", &us), -EINVAL);
	ASSERT_EQ(parse_utc("yesterday", &us), -EINVAL);
	ASSERT_EQ(parse_utc("", &us), -EINVAL);
	ASSERT_EQ(parse_utc(NULL, &us), -EINVAL);

	/* What one writes, the other reads back. */
	ASSERT_GT(format_utc(t2040, 0, buf, sizeof(buf)), 0);
	ASSERT_OK(parse_utc(buf, &us));
	ASSERT_EQ(us, t2040 - t2040 % 1000000);
}

static void test_strerror(void) {
	ASSERT_STR_EQ(m2m_strerror(M2M_EABI), "plugin ABI version mismatch");
	ASSERT_STR_EQ(m2m_strerror(M2M_ENOTWRITABLE), "point is not writable");
	ASSERT_STR_EQ(m2m_strerror(-ENOENT), "No such file or directory");
	ASSERT_STR_EQ(m2m_strerror(-99999), "unknown error");
}

int main(void) {
	RUN_TEST(test_duration);
	RUN_TEST(test_size);
	RUN_TEST(test_numbers);
	RUN_TEST(test_json_numbers);
	RUN_TEST(test_format);
	RUN_TEST(test_utc);
	RUN_TEST(test_strerror);
	return 0;
}
