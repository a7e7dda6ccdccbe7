/* SPDX-License-Identifier: MIT */
/*
 * serial-text.c - delimited, fixed-column and regex fields, and their
 * conversions. See serial-text.h.
 *
 * PCRE2 is used in its byte mode: a serial line carries whatever the
 * device and the noise make of it, and UTF mode would refuse a line with
 * one bad byte rather than match the ASCII parts. The match data and the
 * match context are made once per pattern, so a match allocates nothing
 * (PCRE2's heap frames aside, bounded by the heap limit).
 */
#include "serial-text.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "serial-number.h"

/* PCRE2's heap limit is in KiB: a match may use at most 1 MiB for its frames. */
#define ST_REGEX_HEAP_LIMIT_KIB 1024

struct st_regex {
	pcre2_code *code;
	pcre2_match_data *md;
	pcre2_match_context *mctx;
	uint32_t groups;
};

static bool is_blank(char c, char keep) {
	return (c == ' ' || c == '\t') && c != keep;
}

static struct st_field trimmed(const char *p, size_t len, char keep) {
	while (len > 0 && is_blank(p[0], keep)) {
		p++;
		len--;
	}
	while (len > 0 && is_blank(p[len - 1], keep))
		len--;
	return (struct st_field){p, len};
}

/* A quoted field from frame[*i] (the opening quote); *bpos moves along buf. */
static int split_quoted(const char *frame, size_t len, const struct st_delimited *cfg, size_t *i,
                        char *buf, size_t *bpos, struct st_field *ret) {
	size_t start = *bpos;

	for ((*i)++; *i < len; (*i)++) {
		if (frame[*i] != cfg->quote) {
			buf[(*bpos)++] = frame[*i];
			continue;
		}
		if (*i + 1 < len && frame[*i + 1] == cfg->quote) {
			buf[(*bpos)++] = cfg->quote;
			(*i)++;
			continue;
		}
		(*i)++;
		if (cfg->trim)
			while (*i < len && is_blank(frame[*i], cfg->separator))
				(*i)++;
		if (*i < len && frame[*i] != cfg->separator)
			return -EINVAL;
		*ret = (struct st_field){buf + start, *bpos - start};
		return 0;
	}
	return -EINVAL;
}

int st_split(const char *frame, size_t len, const struct st_delimited *cfg, char *buf,
             struct st_field *fields, unsigned max) {
	size_t i = 0, bpos = 0;
	unsigned n = 0;

	for (;;) {
		struct st_field f;
		size_t start;

		if (cfg->trim)
			while (i < len && is_blank(frame[i], cfg->separator))
				i++;
		if (n == max)
			return -E2BIG;
		if (cfg->quote && i < len && frame[i] == cfg->quote) {
			int r = split_quoted(frame, len, cfg, &i, buf, &bpos, &f);

			if (r < 0)
				return r;
		} else {
			start = i;
			while (i < len && frame[i] != cfg->separator)
				i++;
			f = (struct st_field){frame + start, i - start};
			if (cfg->trim)
				f = trimmed(f.p, f.len, cfg->separator);
		}
		fields[n++] = f;
		if (i >= len)
			return (int)n;
		i++; /* the separator */
	}
}

int st_column(const char *frame, size_t len, size_t start, size_t width, bool trim,
              struct st_field *ret) {
	size_t end;

	if (start >= len || width == 0)
		return -ENODATA;
	end = width > len - start ? len : start + width;
	*ret = trim ? trimmed(frame + start, end - start, 0)
	            : (struct st_field){frame + start, end - start};
	return 0;
}

int st_number(struct st_field f, char decimal, double *ret) {
	struct st_field t = trimmed(f.p, f.len, 0);

	if (!f.p)
		return -ENODATA;
	return sn_double(t.p, t.len, decimal, ret);
}

static bool field_is(struct st_field f, const char *word) {
	return strlen(word) == f.len && strncasecmp(f.p, word, f.len) == 0;
}

int st_bool(struct st_field f, const char *on, const char *off, bool *ret) {
	struct st_field t;

	if (!f.p)
		return -ENODATA;
	t = trimmed(f.p, f.len, 0);
	if (t.len == 0)
		return -ENODATA;
	if (field_is(t, on)) {
		*ret = true;
		return 0;
	}
	if (!off || field_is(t, off)) {
		*ret = false;
		return 0;
	}
	return -EINVAL;
}

/* The length of the valid UTF-8 sequence at p[0..n), or 0 (RFC 3629's table). */
static size_t utf8_len(const unsigned char *p, size_t n) {
	unsigned char lo = 0x80, hi = 0xbf;
	size_t need;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		need = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		need = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		need = 4;
	else
		return 0;
	if (p[0] == 0xe0)
		lo = 0xa0;
	else if (p[0] == 0xed)
		hi = 0x9f;
	else if (p[0] == 0xf0)
		lo = 0x90;
	else if (p[0] == 0xf4)
		hi = 0x8f;
	if (n < need || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < need; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return need;
}

size_t st_text(struct st_field f, char *out, size_t size) {
	struct st_field t;
	size_t o = 0;

	if (size == 0)
		return 0;
	t = f.p ? trimmed(f.p, f.len, 0) : (struct st_field){"", 0};
	for (size_t i = 0; i < t.len;) {
		const unsigned char *p = (const unsigned char *)t.p + i;
		size_t n = utf8_len(p, t.len - i);

		if (n == 0 || p[0] < 0x20 || p[0] == 0x7f) {
			if (o + 1 >= size)
				break;
			out[o++] = '?';
			i++;
			continue;
		}
		if (o + n >= size)
			break;
		memcpy(out + o, p, n);
		o += n;
		i += n;
	}
	out[o] = 0;
	return o;
}

void st_regex_free(st_regex *re) {
	if (!re)
		return;
	pcre2_match_context_free(re->mctx);
	pcre2_match_data_free(re->md);
	pcre2_code_free(re->code);
	free(re);
}

int st_regex_compile(const char *pattern, uint32_t match_limit, uint32_t depth_limit,
                     st_regex **ret, char *err, size_t errsize) {
	st_regex *re = calloc(1, sizeof(*re));
	PCRE2_SIZE offset;
	int code;

	if (!re)
		return -ENOMEM;
	re->code =
	    pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, 0, &code, &offset, NULL);
	if (!re->code) {
		PCRE2_UCHAR msg[160];

		if (pcre2_get_error_message(code, msg, sizeof(msg)) < 0)
			snprintf((char *)msg, sizeof(msg), "error %d", code);
		if (err && errsize)
			snprintf(err, errsize, "%s at offset %zu", (const char *)msg,
			         (size_t)offset);
		free(re);
		if (code == PCRE2_ERROR_HEAPLIMIT || code == PCRE2_ERROR_NOMEMORY)
			return -ENOMEM;
		return -EINVAL;
	}
	re->md = pcre2_match_data_create_from_pattern(re->code, NULL);
	re->mctx = pcre2_match_context_create(NULL);
	if (!re->md || !re->mctx) {
		st_regex_free(re);
		return -ENOMEM;
	}
	pcre2_set_match_limit(re->mctx, match_limit ? match_limit : ST_REGEX_MATCH_LIMIT);
	pcre2_set_depth_limit(re->mctx, depth_limit ? depth_limit : ST_REGEX_DEPTH_LIMIT);
	pcre2_set_heap_limit(re->mctx, ST_REGEX_HEAP_LIMIT_KIB);
	pcre2_pattern_info(re->code, PCRE2_INFO_CAPTURECOUNT, &re->groups);
	*ret = re;
	return 0;
}

unsigned st_regex_groups(const st_regex *re) {
	return re->groups;
}

int st_regex_group(const st_regex *re, const char *name) {
	uint64_t n;
	int r;

	if (sn_uint(name, strlen(name), UINT32_MAX, &n) == 0)
		return n <= re->groups ? (int)n : -ENOENT;
	r = pcre2_substring_number_from_name(re->code, (PCRE2_SPTR)name);
	return r >= 0 ? r : -ENOENT;
}

int st_regex_match(st_regex *re, const char *frame, size_t len, struct st_field *groups,
                   unsigned max) {
	int rc = pcre2_match(re->code, (PCRE2_SPTR)frame, len, 0, 0, re->md, re->mctx);
	PCRE2_SIZE *ov;
	unsigned n;

	if (rc == PCRE2_ERROR_NOMATCH)
		return -ENOMSG;
	if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
	    rc == PCRE2_ERROR_HEAPLIMIT)
		return -ERANGE;
	if (rc < 0)
		return rc == PCRE2_ERROR_NOMEMORY ? -ENOMEM : -EINVAL;
	ov = pcre2_get_ovector_pointer(re->md);
	n = re->groups + 1 < max ? re->groups + 1 : max;
	for (unsigned i = 0; i < n; i++) {
		if ((int)i >= rc || ov[2 * i] == PCRE2_UNSET)
			groups[i] = (struct st_field){NULL, 0};
		else if (ov[2 * i + 1] < ov[2 * i]) /* \K can put the start past the end */
			groups[i] = (struct st_field){frame + ov[2 * i], 0};
		else
			groups[i] = (struct st_field){frame + ov[2 * i], ov[2 * i + 1] - ov[2 * i]};
	}
	return (int)n;
}
