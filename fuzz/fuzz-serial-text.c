/* SPDX-License-Identifier: MIT */
/*
 * Text protocols from a serial line: the framer in any of its modes cuts
 * the stream, and each frame goes through the delimited, fixed-column or
 * regex parser and the conversions, as the driver will do.
 *
 * Input: a byte of framing mode, one of parser, one of separator, one of
 * options, one of chunk size; for the regex parser a byte of pattern length
 * and the pattern; then the bytes of the line. Besides what the sanitizers
 * see, it checks the framer's bounds and counters, that fields lie within
 * the frame or the caller's buffer, and that text comes out NUL-terminated
 * and printable.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>

#include "fuzz-input.h"
#include "serial-framer.h"
#include "serial-text.h"

#define MAX_LEN 256
#define MAX_FIELDS 16

struct run {
	unsigned parser;
	struct st_delimited delim;
	uint8_t opts;
	st_regex *re;
	size_t frames;
};

static bool inside(const char *p, size_t len, const char *base, size_t n) {
	return p >= base && p + len <= base + n;
}

static void convert(struct st_field f) {
	char text[32];
	double v;
	bool b;
	size_t n;
	int r;

	r = st_number(f, (f.len & 1) ? ',' : '.', &v);
	FUZZ_ASSERT(r == 0 || r == -ENODATA || r == -EINVAL);
	FUZZ_ASSERT(r != 0 || !isnan(v));
	r = st_bool(f, "on", (f.len & 2) ? "off" : NULL, &b);
	FUZZ_ASSERT(r == 0 || r == -ENODATA || r == -EINVAL);
	n = st_text(f, text, sizeof(text));
	FUZZ_ASSERT(n < sizeof(text) && strlen(text) == n);
	for (size_t i = 0; i < n; i++)
		FUZZ_ASSERT((unsigned char)text[i] >= 0x20 && text[i] != 0x7f);
}

static void on_frame(void *arg, const uint8_t *frame, size_t len, uint64_t time_us) {
	struct run *run = arg;
	const char *p = (const char *)frame;
	struct st_field fields[MAX_FIELDS];
	char buf[MAX_LEN + 1];
	int r;

	FUZZ_ASSERT(len <= MAX_LEN);
	run->frames++;
	switch (run->parser) {
	case 0:
		r = st_split(p, len, &run->delim, buf, fields, MAX_FIELDS);
		FUZZ_ASSERT(r > 0 || r == -E2BIG || r == -EINVAL);
		for (int i = 0; i < r; i++) {
			FUZZ_ASSERT(inside(fields[i].p, fields[i].len, p, len) ||
			            inside(fields[i].p, fields[i].len, buf, len));
			convert(fields[i]);
		}
		break;
	case 1:
		for (size_t start = 0; start < len + 2; start += run->opts % 7 + 1) {
			struct st_field f;

			r = st_column(p, len, start, run->opts % 5 + 1, run->opts & 8, &f);
			FUZZ_ASSERT(r == 0 || r == -ENODATA);
			FUZZ_ASSERT(r == -ENODATA || inside(f.p, f.len, p, len));
			if (r == 0)
				convert(f);
		}
		break;
	default:
		if (!run->re)
			break;
		r = st_regex_match(run->re, p, len, fields, MAX_FIELDS);
		FUZZ_ASSERT(r > 0 || r == -ENOMSG || r == -ERANGE);
		for (int i = 0; i < r; i++) {
			if (!fields[i].p)
				continue;
			FUZZ_ASSERT(inside(fields[i].p, fields[i].len, p, len));
			convert(fields[i]);
		}
		break;
	}
}

/* A framing config of each mode, chosen by the input's first byte. */
static struct sf_config framing(uint8_t m) {
	struct sf_config c = {.mode = (enum sf_mode)(m % SF_MODE_COUNT), .max_len = MAX_LEN};

	switch (c.mode) {
	case SF_END:
		c.end_len = m & 0x10 ? 2 : 1;
		memcpy(c.end, "\r\n", 2);
		if (c.end_len == 1)
			c.end[0] = '\n';
		break;
	case SF_START_END:
		c.start[0] = 0x02;
		c.start_len = 1;
		c.end[0] = 0x03;
		c.end_len = 1;
		break;
	case SF_IDLE:
		c.idle_us = 2000;
		break;
	default:
		c.fixed_len = (m >> 4) + 1;
		c.start_len = m & 0x08 ? 1 : 0;
		c.start[0] = '#';
		break;
	}
	if (c.mode != SF_IDLE && (m & 0x40))
		c.idle_us = 5000;
	return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	struct fuzz_in in = {data, size};
	struct sf_config cfg = framing(fuzz_u8(&in));
	struct run run = {.parser = fuzz_u8(&in) % 3};
	size_t chunk;
	struct sf f;
	uint64_t t = 0;

	run.delim.separator = (char)fuzz_u8(&in);
	run.opts = fuzz_u8(&in);
	run.delim.quote = run.opts & 1 ? '"' : 0;
	run.delim.trim = run.opts & 2;
	chunk = fuzz_u8(&in) % 64 + 1;
	if (run.parser == 2) {
		size_t plen = fuzz_u8(&in) % 64;
		char pattern[65];

		if (plen > in.n)
			plen = in.n;
		memcpy(pattern, in.p, plen);
		pattern[plen] = 0;
		in.p += plen;
		in.n -= plen;
		/* Small limits: a hostile pattern and line must stop, and quickly. */
		if (st_regex_compile(pattern, 20000, 200, &run.re, NULL, 0) == 0)
			FUZZ_ASSERT(st_regex_groups(run.re) < 1000);
	}
	FUZZ_ASSERT(sf_init(&f, &cfg, NULL, 0) == 0);
	for (size_t off = 0; off < in.n; off += chunk) {
		size_t n = in.n - off < chunk ? in.n - off : chunk;

		/* Pauses between some chunks, chosen by the chunk's first byte. */
		t += (in.p[off] & 3) * 1500;
		if (sf_deadline(&f) && sf_deadline(&f) <= t)
			sf_idle(&f, t, on_frame, &run);
		sf_feed(&f, in.p + off, n, t, on_frame, &run);
		FUZZ_ASSERT(f.len <= MAX_LEN + SF_DELIM_MAX);
	}
	sf_idle(&f, t + 1000000, on_frame, &run);
	FUZZ_ASSERT(f.stats.bytes == in.n && f.stats.frames == run.frames);
	FUZZ_ASSERT(f.stats.garbage_bytes + f.stats.dropped_bytes <= in.n);
	sf_free(&f);
	st_regex_free(run.re);
	return 0;
}
