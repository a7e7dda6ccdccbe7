/* SPDX-License-Identifier: MIT */
/* Small checked helpers shared by the daemon, m2mctl and the tests. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

/* Wall-clock µs since the Unix epoch, and monotonic µs. Any thread. */
int64_t now_us(void);
int64_t mono_us(void);

/*
 * Parses a duration: an integer or decimal number followed by one of
 * us, ms, s, m (or min), h, d, w ("250ms", "5s", "1.5h", "7d"). A bare "0"
 * is accepted. Returns 0 and *ret_us, or -EINVAL / -ERANGE.
 */
int parse_duration(const char *s, int64_t *ret_us);

/*
 * Parses a size: an integer followed by B, K/KB (1000), KiB (1024), MB,
 * MiB, GB, GiB, TB, TiB ("512MiB"), or a bare byte count.
 */
int parse_size(const char *s, uint64_t *ret);

/* Whole-string checked parsers: no trailing junk, no overflow. */
int parse_int64(const char *s, int64_t *ret);
int parse_uint64(const char *s, uint64_t *ret);
int parse_double(const char *s, double *ret);

/*
 * Formats µs as "5s", "250ms", "1500us" into BUF, exactly when the value is
 * a whole number of a unit; from 10ms up otherwise rounded to the
 * millisecond ("458ms" for 457924µs), for messages people read. Returns BUF.
 */
const char *format_duration(int64_t us, char *buf, size_t n);

/*
 * The one formatter of wall-clock times: US (µs since the epoch) as RFC 3339
 * UTC, "2040-02-29T13:14:15.123Z", with DIGITS (0 to 6) digits of the
 * second's fraction, rounded down (times before 1970 too). Returns the
 * length, -EOVERFLOW when the time has no calendar date here, or -ENOBUFS
 * when BUF is too small (BUF then holds a truncated string). Any thread.
 */
int format_utc(int64_t us, int digits, char *buf, size_t n);

/*
 * Parses a UTC date and time, as m2mctl's --since/--until take them:
 * "2040-02-29T13:14:15Z", "2040-02-29T13:14:15", "2040-02-29 13:14:15",
 * "2040-02-29 13:14" or "2040-02-29". Returns 0 and *ret_us (µs since the
 * epoch), -EINVAL, or -ERANGE for a date beyond what µs in 64 bits hold.
 */
int parse_utc(const char *s, int64_t *ret_us);

/* strdup/malloc that the caller must check; here for symmetry with free(). */
char *strdup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* True when S starts with PREFIX. */
bool startswith(const char *s, const char *prefix);

/*
 * P as seen from the directory of the file FILE: relative paths in a config
 * file are relative to that file's directory. Absolute P (or FILE without a
 * directory) is returned as is. malloc'd; NULL when out of memory.
 */
char *path_relative_to(const char *file, const char *p);

/* The characters name_valid() takes besides those listed in its EXTRA argument. */
enum name_chars {
	NAME_LOWER = 1, /* a-z */
	NAME_UPPER = 2, /* A-Z */
	NAME_DIGIT = 4, /* 0-9 */
	NAME_ALNUM = NAME_LOWER | NAME_UPPER | NAME_DIGIT,
};

/*
 * True when S is 1 to MAX bytes of the classes in CHARS (enum name_chars)
 * and the characters of EXTRA: one loop for every kind of name (gateway
 * ids, drivers, plugins, rules, points, statistics).
 */
bool name_valid(const char *s, size_t max, unsigned chars, const char *extra);
