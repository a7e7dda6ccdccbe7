/* SPDX-License-Identifier: MIT */
/*
 * serial-number.c - decimal numbers out of text. See serial-number.h.
 *
 * The digits are gathered into an integer and scaled by a power of ten
 * once. When both the integer (below 2^53) and the power (up to 1e22) are
 * exact doubles, one multiplication or division rounds correctly (Clinger's
 * fast path), which covers every number a serial instrument sends.
 */
#include "serial-number.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>

static const double pow10_exact[] = {
	1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

static bool is_digit(char c) {
	return c >= '0' && c <= '9';
}

/* Reads an exponent's digits, saturating: a huge exponent is inf or 0 anyway. */
static int parse_exponent(const char *p, size_t len, size_t *i, long *ret) {
	bool neg = false;
	long e = 0;
	size_t start;

	if (*i < len && (p[*i] == '+' || p[*i] == '-'))
		neg = p[(*i)++] == '-';
	start = *i;
	while (*i < len && is_digit(p[*i])) {
		if (e < 100000)
			e = e * 10 + (p[*i] - '0');
		(*i)++;
	}
	if (*i == start)
		return -EINVAL;
	*ret = neg ? -e : e;
	return 0;
}

static double scale(uint64_t mant, long exp10) {
	double v = (double)mant;

	if (mant == 0)
		return 0.0;
	if (mant <= (UINT64_C(1) << 53) && exp10 >= -22 && exp10 <= 22)
		return exp10 < 0 ? v / pow10_exact[-exp10] : v * pow10_exact[exp10];
	return (double)((long double)mant * powl(10.0L, (long double)exp10));
}

int sn_double(const char *p, size_t len, char decimal, double *ret) {
	uint64_t mant = 0;
	long exp10 = 0, e = 0;
	unsigned sig = 0, digits = 0;
	bool neg = false, point = false;
	size_t i = 0;

	if (len == 0)
		return -ENODATA;
	if (p[0] == '+' || p[0] == '-')
		neg = p[i++] == '-';
	for (; i < len; i++) {
		char c = p[i];

		if (c == decimal && !point) {
			point = true;
			continue;
		}
		if (!is_digit(c))
			break;
		digits++;
		if (sig < 19 && (mant || c != '0')) {
			mant = mant * 10 + (uint64_t)(c - '0');
			sig++;
			if (point)
				exp10--;
		} else if (sig >= 19 && !point) {
			exp10++; /* a digit beyond what the integer holds still counts */
		} else if (sig == 0 && point) {
			exp10--; /* a leading zero after the point: 0.005 */
		}
	}
	if (digits == 0)
		return -EINVAL;
	if (i < len && (p[i] == 'e' || p[i] == 'E')) {
		i++;
		if (parse_exponent(p, len, &i, &e) < 0)
			return -EINVAL;
	}
	if (i != len)
		return -EINVAL;
	*ret = neg ? -scale(mant, exp10 + e) : scale(mant, exp10 + e);
	return 0;
}

int sn_uint(const char *p, size_t len, uint64_t max, uint64_t *ret) {
	uint64_t v = 0;

	if (len == 0)
		return -ENODATA;
	for (size_t i = 0; i < len; i++) {
		if (!is_digit(p[i]))
			return -EINVAL;
		if ((uint64_t)(p[i] - '0') > max || v > (max - (uint64_t)(p[i] - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	*ret = v;
	return 0;
}
