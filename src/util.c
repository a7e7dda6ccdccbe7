/* SPDX-License-Identifier: MIT */
#include "util.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * µs since 1970 are int64 everywhere in m2md; a 32-bit time_t would turn
 * every date after January 2038 into one in 1901. meson.build adds
 * -D_TIME_BITS=64 where the C library's default time_t is 32-bit.
 */
_Static_assert(sizeof(time_t) >= 8, "time_t must be 64-bit: build with -D_TIME_BITS=64");

int64_t now_us(void) {
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t mono_us(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int parse_int64(const char *s, int64_t *ret) {
	char *end;
	long long v;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	v = strtoll(s, &end, 0);
	if (errno == ERANGE)
		return -ERANGE;
	if (errno != 0 || end == s || *end != '\0')
		return -EINVAL;
	*ret = v;
	return 0;
}

int parse_uint64(const char *s, uint64_t *ret) {
	char *end;
	unsigned long long v;

	/* strtoull() accepts "-1" and wraps it; a size or count never has a sign. */
	if (!s || !*s || strchr(s, '-'))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno == ERANGE)
		return -ERANGE;
	if (errno != 0 || end == s || *end != '\0')
		return -EINVAL;
	*ret = v;
	return 0;
}

int parse_double(const char *s, double *ret) {
	char *end;
	double v;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno == ERANGE && (v == HUGE_VAL || v == -HUGE_VAL))
		return -ERANGE;
	if (end == s || *end != '\0')
		return -EINVAL;
	*ret = v;
	return 0;
}

/* Splits "12.5ms" into the number and the unit; the number must be >= 0. */
static int split_number(const char *s, double *ret_num, const char **ret_unit) {
	const char *p = s;
	char buf[64];
	size_t n;

	if (!s)
		return -EINVAL;
	while ((*p >= '0' && *p <= '9') || *p == '.')
		p++;
	n = (size_t)(p - s);
	if (n == 0 || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (parse_double(buf, ret_num) < 0 || !isfinite(*ret_num))
		return -EINVAL;
	*ret_unit = p;
	return 0;
}

int parse_duration(const char *s, int64_t *ret_us) {
	static const struct {
		const char *unit;
		double us;
	} units[] = {
		{ "us", 1 },          { "ms", 1e3 },          { "s", 1e6 },
		{ "min", 60e6 },      { "m", 60e6 },          { "h", 3600e6 },
		{ "d", 86400e6 },     { "w", 7 * 86400e6 },
	};
	const char *unit;
	double num, v;

	if (split_number(s, &num, &unit) < 0)
		return -EINVAL;
	if (*unit == '\0') {
		/* A bare number is ambiguous; only zero means the same in any unit. */
		if (num != 0)
			return -EINVAL;
		*ret_us = 0;
		return 0;
	}
	for (size_t i = 0; i < ELEMENTSOF(units); i++) {
		if (strcmp(unit, units[i].unit) != 0)
			continue;
		v = num * units[i].us;
		if (v > (double)INT64_MAX / 2)
			return -ERANGE;
		*ret_us = (int64_t)llround(v);
		return 0;
	}
	return -EINVAL;
}

int parse_size(const char *s, uint64_t *ret) {
	static const struct {
		const char *unit;
		double mul;
	} units[] = {
		{ "", 1 },          { "B", 1 },
		{ "K", 1e3 },       { "KB", 1e3 },       { "KiB", 1024.0 },
		{ "M", 1e6 },       { "MB", 1e6 },       { "MiB", 1048576.0 },
		{ "G", 1e9 },       { "GB", 1e9 },       { "GiB", 1073741824.0 },
		{ "T", 1e12 },      { "TB", 1e12 },      { "TiB", 1099511627776.0 },
	};
	const char *unit;
	double num, v;

	if (split_number(s, &num, &unit) < 0)
		return -EINVAL;
	for (size_t i = 0; i < ELEMENTSOF(units); i++) {
		if (strcmp(unit, units[i].unit) != 0)
			continue;
		v = num * units[i].mul;
		if (v >= 18446744073709551615.0)
			return -ERANGE;
		if (v != floor(v))
			return -EINVAL;
		*ret = (uint64_t)v;
		return 0;
	}
	return -EINVAL;
}

const char *format_duration(int64_t us, char *buf, size_t n) {
	if (us % 86400000000LL == 0 && us != 0)
		snprintf(buf, n, "%" PRId64 "d", (int64_t)(us / 86400000000LL));
	else if (us % 3600000000LL == 0 && us != 0)
		snprintf(buf, n, "%" PRId64 "h", (int64_t)(us / 3600000000LL));
	else if (us % 1000000 == 0)
		snprintf(buf, n, "%" PRId64 "s", us / 1000000);
	else if (us % 1000 == 0)
		snprintf(buf, n, "%" PRId64 "ms", us / 1000);
	else if (us >= 10000 || us <= -10000)
		/* A backoff with jitter reads "458ms", not "457924us": a person reads this. */
		snprintf(buf, n, "%" PRId64 "ms", (us + (us < 0 ? -500 : 500)) / 1000);
	else
		snprintf(buf, n, "%" PRId64 "us", us);
	return buf;
}

int format_utc(int64_t us, int digits, char *buf, size_t n) {
	static const int32_t div[] = { 1000000, 100000, 10000, 1000, 100, 10, 1 };
	int64_t sec = us / 1000000, frac = us % 1000000;
	struct tm tm;
	time_t t;
	int len;

	if (digits < 0 || digits > 6)
		return -EINVAL;
	if (frac < 0) {
		frac += 1000000;
		sec--;
	}
	t = (time_t)sec;
	if ((int64_t)t != sec || !gmtime_r(&t, &tm))
		return -EOVERFLOW;
	if (digits > 0)
		len = snprintf(buf, n, "%04d-%02d-%02dT%02d:%02d:%02d.%0*" PRId64 "Z",
		               tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		               tm.tm_sec, digits, frac / div[digits]);
	else
		len = snprintf(buf, n, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
		               tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	if (len < 0)
		return -EOVERFLOW;
	return (size_t)len < n ? len : -ENOBUFS;
}

int parse_utc(const char *s, int64_t *ret_us) {
	static const char *const formats[] = { "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S",
	                                       "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M",
	                                       "%Y-%m-%d" };

	if (!s)
		return -EINVAL;
	for (size_t i = 0; i < ELEMENTSOF(formats); i++) {
		struct tm tm = { 0 };
		const char *end = strptime(s, formats[i], &tm);
		if (!end || *end != '\0')
			continue;
		/* -1 is also 1969-12-31T23:59:59: only errno tells a failure. */
		errno = 0;
		time_t t = timegm(&tm);
		if (t == (time_t)-1 && errno != 0)
			return -ERANGE;
		if (t > INT64_MAX / 1000000 || t < INT64_MIN / 1000000)
			return -ERANGE;
		*ret_us = (int64_t)t * 1000000;
		return 0;
	}
	return -EINVAL;
}

char *strdup_printf(const char *fmt, ...) {
	va_list ap;
	char *s;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&s, fmt, ap);
	va_end(ap);
	return r < 0 ? NULL : s;
}

bool startswith(const char *s, const char *prefix) {
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

char *path_relative_to(const char *file, const char *p) {
	const char *slash;

	if (p[0] == '/' || !file || !(slash = strrchr(file, '/')))
		return strdup(p);
	return strdup_printf("%.*s/%s", (int)(slash - file), file, p);
}

bool name_valid(const char *s, size_t max, unsigned chars, const char *extra) {
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > max)
		return false;
	for (; *s; s++) {
		char ch = *s;
		if (!(((chars & NAME_LOWER) && ch >= 'a' && ch <= 'z') ||
		      ((chars & NAME_UPPER) && ch >= 'A' && ch <= 'Z') ||
		      ((chars & NAME_DIGIT) && ch >= '0' && ch <= '9') || strchr(extra, ch)))
			return false;
	}
	return true;
}
