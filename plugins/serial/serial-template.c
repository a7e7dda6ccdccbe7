/* SPDX-License-Identifier: MIT */
/*
 * serial-template.c - escapes and command templates. See serial-template.h.
 *
 * Values are printed with snprintf: m2md never calls setlocale(), so the
 * C locale's '.' is the decimal separator whatever the environment says.
 */
#include "serial-template.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((format(printf, 4, 5))) static int fail(char *err, size_t errsize, int r,
                                                      const char *fmt, ...) {
	va_list ap;

	if (err && errsize) {
		va_start(ap, fmt);
		vsnprintf(err, errsize, fmt, ap);
		va_end(ap);
	}
	return r;
}

static int hex_digit(char c) {
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int ser_unescape(const char *s, uint8_t *out, size_t size, char *err, size_t errsize) {
	size_t n = 0;

	for (size_t i = 0; s[i]; i++) {
		uint8_t b = (uint8_t)s[i];

		if (s[i] == '\\') {
			int hi, lo;

			switch (s[++i]) {
			case 'r': b = '\r'; break;
			case 'n': b = '\n'; break;
			case 't': b = '\t'; break;
			case '0': b = 0; break;
			case '\\': b = '\\'; break;
			case 'x':
				hi = s[i + 1] ? hex_digit(s[i + 1]) : -1;
				lo = hi >= 0 && s[i + 2] ? hex_digit(s[i + 2]) : -1;
				if (hi < 0 || lo < 0)
					return fail(err, errsize, -EINVAL,
					            "\\x at offset %zu needs two hex digits", i - 1);
				b = (uint8_t)(hi << 4 | lo);
				i += 2;
				break;
			default:
				return fail(err, errsize, -EINVAL,
				            "unknown escape at offset %zu (\\r \\n \\t \\0 \\\\ \\xHH)",
				            i - 1);
			}
		}
		if (n >= size)
			return fail(err, errsize, -E2BIG, "longer than %zu bytes", size);
		out[n++] = b;
	}
	return (int)n;
}

/* The printf spec of a placeholder, checked: "%" flags width precision conv. */
static int parse_spec(const uint8_t *p, size_t len, char *fmt, size_t fmtsize, char *conv) {
	size_t i = 0, o = 0;

	fmt[o++] = '%';
	while (i < len && strchr("+- 0#", p[i]) && o < 8)
		fmt[o++] = (char)p[i++];
	for (int d = 0; i < len && p[i] >= '0' && p[i] <= '9'; d++) {
		if (d >= 2)
			return -EINVAL; /* a width of 100 or more is a mistake */
		fmt[o++] = (char)p[i++];
	}
	if (i < len && p[i] == '.') {
		fmt[o++] = (char)p[i++];
		for (int d = 0; i < len && p[i] >= '0' && p[i] <= '9'; d++) {
			if (d >= 2)
				return -EINVAL;
			fmt[o++] = (char)p[i++];
		}
	}
	if (i + 1 != len || !strchr("fFeEgGdxX", p[i]))
		return -EINVAL;
	*conv = (char)p[i];
	if (*conv == 'd' || *conv == 'x' || *conv == 'X') {
		/* Through a long long, which the template cannot name itself. */
		fmt[o++] = 'l';
		fmt[o++] = 'l';
	}
	fmt[o++] = *conv;
	fmt[o] = 0;
	return o < fmtsize ? 0 : -EINVAL;
}

/*
 * One placeholder's text for value into buf. The format is built by
 * parse_spec() from a checked grammar (flags, two-digit width and
 * precision, one conversion, and "ll" for the integer ones), so that the
 * printf family may take it although it is not a literal.
 */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static int render_value(const uint8_t *spec, size_t len, double value, char *buf, size_t size,
                        char *err, size_t errsize) {
	char fmt[24], conv;
	int n;

	if (len == 0) {
		/* The shortest of %.15g .. %.17g that reads back as the value. */
		for (int prec = 15; prec <= 17; prec++) {
			n = snprintf(buf, size, "%.*g", prec, value);
			if (strtod(buf, NULL) == value)
				break;
		}
		return isfinite(value) ? n : -ERANGE;
	}
	if (parse_spec(spec, len, fmt, sizeof(fmt), &conv) < 0)
		return fail(err, errsize, -EINVAL,
		            "bad placeholder format \"%.*s\" (expected e.g. {value:.1f}, {value:d}, "
		            "{value:04X})",
		            (int)len, (const char *)spec);
	if (!isfinite(value))
		return -ERANGE;
	if (conv == 'd' || conv == 'x' || conv == 'X') {
		if (value != floor(value) || value < -9.2e18 || value > 9.2e18)
			return -ERANGE;
		if (conv != 'd' && value < 0)
			return -ERANGE;
		return snprintf(buf, size, fmt, (long long)value);
	}
	return snprintf(buf, size, fmt, value);
}
#pragma GCC diagnostic pop

int ser_template_render(const uint8_t *tpl, size_t tpl_len, double value, uint8_t *out,
                        size_t size, char *err, size_t errsize) {
	static const char name[] = "value";
	size_t n = 0;

	for (size_t i = 0; i < tpl_len;) {
		char buf[128];
		const uint8_t *spec;
		size_t speclen = 0, j;
		int len;

		if (tpl[i] == '}' || (tpl[i] == '{' && i + 1 < tpl_len && tpl[i + 1] == '{')) {
			if (i + 1 >= tpl_len || tpl[i + 1] != tpl[i])
				return fail(err, errsize, -EINVAL,
				            "a lone '}' at offset %zu (write \"}}\" for a brace)", i);
			if (n >= size)
				return -E2BIG;
			out[n++] = tpl[i];
			i += 2;
			continue;
		}
		if (tpl[i] != '{') {
			if (n >= size)
				return -E2BIG;
			out[n++] = tpl[i++];
			continue;
		}
		for (j = i + 1; j < tpl_len && tpl[j] != '}'; j++)
			;
		if (j >= tpl_len || j - i - 1 < sizeof(name) - 1 ||
		    memcmp(tpl + i + 1, name, sizeof(name) - 1) != 0 ||
		    (j - i - 1 > sizeof(name) - 1 && tpl[i + sizeof(name)] != ':'))
			return fail(err, errsize, -EINVAL,
			            "a placeholder at offset %zu must be {value} or {value:FORMAT} "
			            "(\"{{\" for a brace)",
			            i);
		spec = tpl + i + sizeof(name);
		if (j - i - 1 > sizeof(name) - 1) {
			spec++;
			speclen = j - i - 1 - sizeof(name);
		}
		len = render_value(spec, speclen, value, buf, sizeof(buf), err, errsize);
		if (len < 0)
			return len;
		if ((size_t)len >= sizeof(buf) || n + (size_t)len > size)
			return -E2BIG;
		memcpy(out + n, buf, (size_t)len);
		n += (size_t)len;
		i = j + 1;
	}
	return (int)n;
}

int ser_template_check(const uint8_t *tpl, size_t tpl_len, char *err, size_t errsize) {
	uint8_t out[SER_CMD_MAX];
	int r = ser_template_render(tpl, tpl_len, 0, out, sizeof(out), err, errsize);

	if (r == -E2BIG)
		return fail(err, errsize, -EINVAL, "renders longer than %d bytes", SER_CMD_MAX);
	return r < 0 ? r : 0;
}
