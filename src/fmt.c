/* SPDX-License-Identifier: MIT */
#include "fmt.h"

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The reference method: the first of 15, 16 and 17 digits that reads back.
 * No decimal of fewer than 15 digits reads back when %.15g's does not, for
 * normal doubles; subnormal ones hold fewer digits, and start from one.
 */
static int shortest_by_trial(double v, char *buf, size_t n) {
	int len = 0;

	for (int digits = fabs(v) < DBL_MIN ? 1 : 15; digits <= 17; digits++) {
		len = snprintf(buf, n, "%.*g", digits, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	return len;
}

/*
 * Writes the P significant digits D (D[0] nonzero) times 10^X, negative
 * when NEG, as printf's %.Pg does: fixed notation for -4 <= X < P, else
 * d.ddde+XX; trailing zeros of the fraction dropped.
 */
static int put_g(bool neg, const char *d, int p, int x, char *buf, size_t n) {
	char s[48], *o = s;
	int used = p;
	size_t len;

	while (used > 1 && d[used - 1] == '0')
		used--;
	if (neg)
		*o++ = '-';
	if (x < -4 || x >= p) {
		int ax = x < 0 ? -x : x;

		*o++ = d[0];
		if (used > 1) {
			*o++ = '.';
			memcpy(o, d + 1, (size_t)used - 1);
			o += used - 1;
		}
		*o++ = 'e';
		*o++ = x < 0 ? '-' : '+';
		if (ax >= 100)
			*o++ = (char)('0' + ax / 100);
		*o++ = (char)('0' + ax / 10 % 10);
		*o++ = (char)('0' + ax % 10);
	} else if (x >= 0) {
		/* X < P: the integer part is all digits; what is left is the fraction. */
		memcpy(o, d, (size_t)x + 1);
		o += x + 1;
		if (used > x + 1) {
			*o++ = '.';
			memcpy(o, d + x + 1, (size_t)(used - x - 1));
			o += used - x - 1;
		}
	} else {
		*o++ = '0';
		*o++ = '.';
		for (int i = 0; i < -x - 1; i++)
			*o++ = '0';
		memcpy(o, d, (size_t)used);
		o += used;
	}
	/* As snprintf: truncated to N, the length it would have. */
	len = (size_t)(o - s);
	if (n > 0) {
		size_t k = len < n - 1 ? len : n - 1;
		memcpy(buf, s, k);
		buf[k] = '\0';
	}
	return (int)len;
}

/* Significant digits of the one conversion; three more than 17 keep the ties rare. */
#define DIGITS 20

/*
 * Rounds the DIGITS digits D (times 10^X) to P into C, and their exponent
 * into *RET_X. Returns how far the rounded value is from D in units of
 * D's last digit, or -1 when D lies exactly halfway: then rounding D is
 * not rounding the double, which D only approximates.
 */
static int64_t round_digits(const char *d, int x, int p, char *c, int *ret_x) {
	int64_t tail = 0, range = 1;

	for (int i = p; i < DIGITS; i++) {
		tail = tail * 10 + (d[i] - '0');
		range *= 10;
	}
	if (tail * 2 == range)
		return -1;
	memcpy(c, d, (size_t)p);
	*ret_x = x;
	if (tail * 2 < range)
		return tail;
	for (int i = p - 1; i >= 0; i--) {
		if (c[i] != '9') {
			c[i]++;
			return range - tail;
		}
		c[i] = '0';
	}
	c[0] = '1';
	(*ret_x)++;
	return range - tail;
}

int fmt_double(double v, char *buf, size_t n) {
	char e[48], d[DIGITS], c[17], tmp[FMT_DOUBLE_MAX];
	double h_lo = 0, h_hi = 0, f;
	const char *s;
	bool neg, fast;
	int x = 0, bexp;

	if (!isfinite(v))
		return snprintf(buf, n, "null");
	/* 2^63 is exact as a double; everything integral below it fits int64_t. */
	if (v == floor(v) && fabs(v) < 9223372036854775808.0)
		return snprintf(buf, n, "%" PRId64, (int64_t)v);
	if (fabs(v) < DBL_MIN)
		return shortest_by_trial(v, buf, n);
	/*
	 * Trying 15, 16 and 17 digits with snprintf and strtod costs up to six
	 * conversions, and a ramp's phase or a register times 0.1 mostly needs
	 * 16 or 17. Here one snprintf makes 20 digits; 15, 16 and 17 are
	 * rounded from them, and whether one reads back is told by its
	 * distance from V, known to half a unit of the 20th digit, against
	 * half the gap to V's neighbours. strtod decides only the close calls
	 * and exact ties, so the text is the one the trials give.
	 */
	snprintf(e, sizeof(e), "%.*e", DIGITS - 1, v);
	neg = e[0] == '-';
	s = e + neg;
	/* "d.ddd...de+XX": the digits, then the exponent. */
	d[0] = s[0];
	memcpy(d + 1, s + 2, DIGITS - 1);
	for (const char *t = s + DIGITS + 3; *t; t++)
		x = x * 10 + (*t - '0');
	if (s[DIGITS + 2] == '-')
		x = -x;
	f = frexp(fabs(v), &bexp);
	/* Far from the ends of the range, where 10^(DIGITS - 1 - X) is a double. */
	fast = x > -280 && x < 280;
	if (fast) {
		/* Half of V's last-bit weight 2^(BEXP - 53), in units of the 20th digit. */
		h_hi = ldexp(pow(10.0, DIGITS - 1 - x), bexp - 54);
		/* Below a power of two the gap is half as wide. */
		h_lo = f == 0.5 ? h_hi / 2 : h_hi;
	}
	for (int p = 15; p <= 17; p++) {
		int64_t dist;
		int cx;
		bool back;

		dist = round_digits(d, x, p, c, &cx);
		if (dist < 0)
			return shortest_by_trial(v, buf, n);
		/* 17 digits always read back. The margins cover pow()'s and ldexp's rounding. */
		if (p == 17 || (fast && (double)dist + 0.5 < h_lo * (1 - 1e-9)))
			return put_g(neg, c, p, cx, buf, n);
		if (fast && (double)dist - 0.5 > h_hi * (1 + 1e-9))
			continue;
		put_g(neg, c, p, cx, tmp, sizeof(tmp));
		back = strtod(tmp, NULL) == v;
		if (back)
			return put_g(neg, c, p, cx, buf, n);
	}
	return -EINVAL; /* not reached: 17 digits return above */
}

struct out {
	char *s;
	size_t len, cap;
	bool failed;
};

static void put(struct out *o, const char *s, size_t n) {
	char *p;
	size_t cap;

	if (o->failed)
		return;
	if (o->len + n + 1 > o->cap) {
		cap = o->cap ? o->cap : 256;
		while (cap < o->len + n + 1)
			cap *= 2;
		p = realloc(o->s, cap);
		if (!p) {
			o->failed = true;
			return;
		}
		o->s = p;
		o->cap = cap;
	}
	memcpy(o->s + o->len, s, n);
	o->len += n;
	o->s[o->len] = '\0';
}

static void puts_(struct out *o, const char *s) {
	put(o, s, strlen(s));
}

/* A JSON string: quotes, backslash and control characters escaped; UTF-8 as is. */
static void put_string(struct out *o, const char *s) {
	const char *run = s;
	char esc[8];

	put(o, "\"", 1);
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		const char *e = NULL;

		switch (c) {
		case '"': e = "\\\""; break;
		case '\\': e = "\\\\"; break;
		case '\b': e = "\\b"; break;
		case '\f': e = "\\f"; break;
		case '\n': e = "\\n"; break;
		case '\r': e = "\\r"; break;
		case '\t': e = "\\t"; break;
		default:
			if (c < 0x20) {
				snprintf(esc, sizeof(esc), "\\u%04x", c);
				e = esc;
			}
		}
		if (!e)
			continue;
		put(o, run, (size_t)(s - run));
		puts_(o, e);
		run = s + 1;
	}
	if (s)
		put(o, run, (size_t)(s - run));
	put(o, "\"", 1);
}

static void indent(struct out *o, int depth) {
	for (int i = 0; i < depth; i++)
		put(o, "\t", 1);
}

/* Recursion depth is that of the tree, which cJSON_Parse bounds (CJSON_NESTING_LIMIT). */
static void put_item(struct out *o, const cJSON *item, bool formatted, int depth) {
	char num[FMT_DOUBLE_MAX];
	const cJSON *c;
	bool object;

	switch (item->type & 0xff) {
	case cJSON_False:
		puts_(o, "false");
		return;
	case cJSON_True:
		puts_(o, "true");
		return;
	case cJSON_NULL:
		puts_(o, "null");
		return;
	case cJSON_Number:
		fmt_double(item->valuedouble, num, sizeof(num));
		puts_(o, num);
		return;
	case cJSON_String:
		put_string(o, item->valuestring);
		return;
	case cJSON_Raw:
		puts_(o, item->valuestring ? item->valuestring : "null");
		return;
	case cJSON_Array:
	case cJSON_Object:
		break;
	default:
		o->failed = true;
		return;
	}
	object = (item->type & 0xff) == cJSON_Object;
	put(o, object ? "{" : "[", 1);
	if (formatted && object && item->child)
		put(o, "\n", 1);
	for (c = item->child; c; c = c->next) {
		if (formatted && object)
			indent(o, depth + 1);
		if (object) {
			put_string(o, c->string);
			puts_(o, formatted ? ":\t" : ":");
		}
		put_item(o, c, formatted, depth + 1);
		if (c->next)
			puts_(o, formatted && !object ? ", " : ",");
		if (formatted && object)
			put(o, "\n", 1);
	}
	if (formatted && object && item->child)
		indent(o, depth);
	put(o, object ? "}" : "]", 1);
}

char *json_print(const cJSON *item, bool formatted) {
	struct out o = { 0 };

	if (!item)
		return NULL;
	put_item(&o, item, formatted, 0);
	if (o.failed || !o.s) {
		free(o.s);
		return NULL;
	}
	return o.s;
}
