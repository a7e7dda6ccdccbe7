/* SPDX-License-Identifier: MIT */
/*
 * serial-text.h - the generic parsers of text frames, without a device.
 *
 * Scales, meters and sensors send lines that are either separated values
 * ("23.5;OK;\"a \"\"b\"\"\""), fixed columns, or a shape a regular
 * expression describes. These functions cut one frame into fields; the
 * conversions turn a field into a number, a boolean or a text value. A
 * field is a pointer and a length, never NUL-terminated, and points into the
 * frame or into a buffer the caller owns. Nothing here allocates but
 * st_regex_compile().
 *
 * All pure functions, callable from any thread; a compiled regex is used by
 * one thread at a time (it keeps its match data).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct st_field {
	const char *p; /* NULL: an optional capture group that did not take part */
	size_t len;
};

struct st_delimited {
	char separator; /* ',', ';', '\t', ' ', ... */
	char quote;     /* '"', or 0: no quoting */
	bool trim;      /* strip spaces and tabs around each unquoted field */
};

/*
 * Splits frame[0..len) at the separator into at most max fields. A quoted
 * field may hold separators, and a doubled quote inside it stands for one
 * quote; quoted fields are copied without their quotes into buf, which must
 * have room for len bytes (fields never grow). Returns the number of fields,
 * -E2BIG when there are more than max, -EINVAL for a quote left open or
 * anything but a separator after a closing quote.
 */
int st_split(const char *frame, size_t len, const struct st_delimited *cfg, char *buf,
             struct st_field *fields, unsigned max);

/*
 * The column of width bytes from start (0-based) of frame[0..len), spaces
 * around it trimmed when trim is set; a frame that ends inside the column
 * gives its part of the column. Returns 0, or -ENODATA when the frame ends
 * before start.
 */
int st_column(const char *frame, size_t len, size_t start, size_t width, bool trim,
              struct st_field *ret);

/*
 * A field as a number: spaces around it ignored, the decimal separator
 * given ('.' or ','), an exponent allowed. 0, -ENODATA (empty), -EINVAL.
 */
int st_number(struct st_field f, char decimal, double *ret);

/*
 * A field as a boolean by match: true when it equals on, false when it
 * equals off (or, with off NULL, whenever it is not on). Spaces around the
 * field are ignored, case is not. 0, -ENODATA (empty), -EINVAL (neither).
 */
int st_bool(struct st_field f, const char *on, const char *off, bool *ret);

/*
 * A field as text for submit_text: spaces around it trimmed, control bytes
 * and invalid UTF-8 each replaced by '?', cut at a character boundary to
 * fit size - 1 bytes, always NUL-terminated. Returns the length written.
 */
size_t st_text(struct st_field f, char *out, size_t size);

/* A compiled regular expression (PCRE2) with its match data and limits. */
typedef struct st_regex st_regex;

/*
 * Compiles pattern (PCRE2 syntax, bytes not UTF-8) once. match_limit and
 * depth_limit bound the work of one match (PCRE2's match and depth limits;
 * 0 for the defaults of this file, ST_REGEX_MATCH_LIMIT and
 * ST_REGEX_DEPTH_LIMIT), so that a line crafted against a pattern cannot
 * stall the loop. Returns 0 and *ret, -EINVAL with the error and its
 * offset in err, or -ENOMEM.
 */
#define ST_REGEX_MATCH_LIMIT 100000
#define ST_REGEX_DEPTH_LIMIT 1000
int st_regex_compile(const char *pattern, uint32_t match_limit, uint32_t depth_limit,
                     st_regex **ret, char *err, size_t errsize);

/* Frees a compiled regex; accepts NULL. */
void st_regex_free(st_regex *re);

/* The number of capture groups (group 0, the whole match, not counted). */
unsigned st_regex_groups(const st_regex *re);

/*
 * A capture group by name ("weight" for (?<weight>...)) or number ("2"):
 * its number, or -ENOENT. For config checks.
 */
int st_regex_group(const st_regex *re, const char *name);

/*
 * Matches frame[0..len) and fills groups[0..max) (0: the whole match; a
 * group that did not take part has p NULL). Returns the number of entries
 * filled, -ENOMSG when the frame does not match, -ERANGE when a limit
 * stopped the match (count it: the line was hostile or the pattern too
 * loose), or -EINVAL.
 */
int st_regex_match(st_regex *re, const char *frame, size_t len, struct st_field *groups,
                   unsigned max);
