/* SPDX-License-Identifier: MIT */
#include "fmt.h"

#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int fmt_double(double v, char *buf, size_t n) {
	int len = 0;

	if (!isfinite(v))
		return snprintf(buf, n, "null");
	/* 2^63 is exact as a double; everything integral below it fits int64_t. */
	if (v == floor(v) && fabs(v) < 9223372036854775808.0)
		return snprintf(buf, n, "%" PRId64, (int64_t)v);
	/* 15 digits read best; 17 always give the double back. */
	for (int digits = 15; digits <= 17; digits++) {
		len = snprintf(buf, n, "%.*g", digits, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	return len;
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
