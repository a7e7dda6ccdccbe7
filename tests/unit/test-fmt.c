/* SPDX-License-Identifier: MIT */
/*
 * fmt_double over millions of doubles: each reads back, is as short as any
 * that reads back, and is the very text the plain method gives (the first
 * of %.15g, %.16g, %.17g that strtod turns back into the double).
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmt.h"
#include "test.h"

static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint64_t next(void) {
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static double uniform(void) {
	return (double)(next() >> 11) * 0x1p-53;
}

static void reference(double v, char *buf, size_t n) {
	if (!isfinite(v)) {
		snprintf(buf, n, "null");
		return;
	}
	if (v == floor(v) && fabs(v) < 9223372036854775808.0) {
		snprintf(buf, n, "%lld", (long long)v);
		return;
	}
	for (int digits = fabs(v) < DBL_MIN ? 1 : 15; digits <= 17; digits++) {
		snprintf(buf, n, "%.*g", digits, v);
		if (strtod(buf, NULL) == v)
			return;
	}
}

/* Significant digits of a %g text. */
static int significant(const char *s) {
	int n = 0;
	bool lead = true;

	for (; *s && *s != 'e'; s++) {
		if (*s < '0' || *s > '9')
			continue;
		if (lead && *s == '0')
			continue;
		lead = false;
		n++;
	}
	return n;
}

static unsigned long checked;
/* Under valgrind (M2M_TEST_SLOW > 1) the random sets are cut down by that factor. */
static long slow = 1;

static void check(double v) {
	char got[FMT_DOUBLE_MAX], want[FMT_DOUBLE_MAX], shorter[FMT_DOUBLE_MAX];
	int len = fmt_double(v, got, sizeof(got)), digits;

	checked++;
	reference(v, want, sizeof(want));
	if (strcmp(got, want) != 0)
		TEST_FAIL("fmt_double(%a) = \"%s\", the plain method gives \"%s\"", v, got, want);
	ASSERT_EQ(len, (int)strlen(got));
	if (!isfinite(v))
		return;
	if (strtod(got, NULL) != v)
		TEST_FAIL("fmt_double(%a) = \"%s\" reads back as %a", v, got, strtod(got, NULL));
	if (v == floor(v) && fabs(v) < 9223372036854775808.0)
		return; /* integers are written in full by design */
	digits = significant(got);
	ASSERT_LE(digits, 17);
	/* The nearest decimal of one digit less is the best candidate: it must not read back. */
	if (digits > 1) {
		snprintf(shorter, sizeof(shorter), "%.*g", digits - 1, v);
		if (strtod(shorter, NULL) == v)
			TEST_FAIL("fmt_double(%a) = \"%s\", but \"%s\" reads back too", v, got,
			          shorter);
	}
}

static void test_fixed(void) {
	static const double values[] = {
		0.1, 0.2, 0.3, 0.1 + 0.2, 51.4, 51.400000000000006, 5.0000000000000009, -0.5,
		1e300, 1e-300, 1e22, 1e23, 123456789012345.6, 0.000123456, 1.5e-5, 1e-4, 1e-5,
		9.999999999999999e-5, 99999999999999.99, 999999999999999.9, 9999999999999998.0,
		DBL_MAX, -DBL_MAX, DBL_MIN, DBL_MIN / 3, DBL_TRUE_MIN, 2.2250738585072009e-308,
		0x1p-1022, 0x1p+1023, 0x1.fffffffffffffp+62, 9223372036854775808.0, 1e16 + 2,
		M_PI, M_E, -M_PI * 1e200, 5e-324, 1.7976931348623157e308, 4.35, 0.3 * 3, 2.675,
		NAN, INFINITY, -INFINITY, 0.0, -0.0,
	};
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++)
		check(values[i]);
}

static void test_random_bits(void) {
	/* Every exponent and mantissa alike. */
	for (int i = 0; i < 200000 / slow; i++) {
		uint64_t b = next();
		double v;

		memcpy(&v, &b, sizeof(v));
		check(v);
	}
}

static void test_random_ranges(void) {
	for (int i = 0; i < 100000 / slow; i++) {
		double u = uniform();

		check(u);                          /* a ramp's phase */
		check(u * 1000.0 - 500.0);         /* a scaled sensor */
		check(ldexp(u, (int)(next() % 200) - 100));
	}
}

static void test_sensor_steps(void) {
	/* Registers scaled by 0.1, 0.01 and 1/3, with offsets: the common case. */
	for (long raw = -70000; raw <= 70000; raw += slow) {
		check(raw * 0.1);
		check(raw * 0.01 + 273.15);
		check(raw / 3.0);
	}
	/* Decimals read from text, and their neighbours. */
	for (int i = 0; i < 100000 / slow; i++) {
		char s[32];
		double v;

		snprintf(s, sizeof(s), "%d.%06de%d", (int)(next() % 100000),
		         (int)(next() % 1000000), (int)(next() % 40) - 20);
		v = strtod(s, NULL);
		check(v);
		check(nextafter(v, INFINITY));
		check(nextafter(v, -INFINITY));
	}
}

static void test_edges(void) {
	/* Powers of two and ten, where the gap below is half the gap above, and their neighbours.
	 */
	for (int e = -1074; e <= 1023; e++) {
		double v = ldexp(1.0, e);

		check(v);
		check(nextafter(v, 0));
		check(nextafter(v, INFINITY));
		check(-v);
	}
	for (int e = -323; e <= 308; e++) {
		char s[16];
		double v;

		snprintf(s, sizeof(s), "1e%d", e);
		v = strtod(s, NULL);
		check(v);
		check(nextafter(v, 0));
		check(nextafter(v, INFINITY));
	}
}

int main(void) {
	const char *env = getenv("M2M_TEST_SLOW");
	char *end;

	if (env) {
		long v = strtol(env, &end, 10);
		if (*end == '\0' && v > 1 && v < 1000)
			slow = v;
	}
	RUN_TEST(test_fixed);
	RUN_TEST(test_random_bits);
	RUN_TEST(test_random_ranges);
	RUN_TEST(test_sensor_steps);
	RUN_TEST(test_edges);
	fprintf(stderr, "%lu doubles checked\n", checked);
	return 0;
}
