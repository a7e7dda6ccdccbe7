/* SPDX-License-Identifier: MIT */
/*
 * NMEA 0183 from a serial line: the framer in end-delimiter mode cuts the
 * stream, the NMEA codec reads each frame as the driver will.
 *
 * Input: one byte of checksum policy and line ending ("\n" or "\r\n"), one
 * of chunk size, then the bytes of the line. Besides what the sanitizers
 * see, it checks the framer's bounds and counters and that whatever the
 * codec accepts reads within its promises: latitudes and longitudes in
 * range, times within a day, no named field that does not exist.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>

#include "fuzz-input.h"
#include "serial-framer.h"
#include "serial-nmea.h"

#define MAX_LEN 120

static void check_field(const struct nmea_sentence *s, const char *name) {
	struct nmea_value v;
	int r = nmea_get(s, name, &v);

	FUZZ_ASSERT(r == 0 || r == -ENODATA || r == -EINVAL);
	if (r < 0)
		return;
	FUZZ_ASSERT(v.text && v.text[0]);
	switch (v.kind) {
	case NMEA_KIND_LAT:
		FUZZ_ASSERT(v.number >= -90.0 && v.number <= 90.0);
		break;
	case NMEA_KIND_LON:
		FUZZ_ASSERT(v.number >= -180.0 && v.number <= 180.0);
		break;
	case NMEA_KIND_TIME:
		FUZZ_ASSERT(v.number >= 0 && v.number < 86401e6);
		break;
	case NMEA_KIND_NUMBER:
		FUZZ_ASSERT(!isnan(v.number));
		break;
	default:
		break;
	}
}

static void check_sentence(const struct nmea_sentence *s) {
	const char *name;
	struct nmea_xdr x;
	int64_t ts;
	int r;

	FUZZ_ASSERT(s->start == '$' || s->start == '!');
	FUZZ_ASSERT(s->talker[0] && s->type[0]);
	FUZZ_ASSERT(nmea_match(s, s->type) || s->talker[0] == 'P');
	for (unsigned i = 0; i < s->nfields; i++)
		FUZZ_ASSERT(strlen(nmea_raw(s, i)) < NMEA_MAX_LEN);
	FUZZ_ASSERT(nmea_raw(s, s->nfields) == NULL);
	/* A proprietary sentence ("$PGSA") has no named fields, whatever its type reads as. */
	for (unsigned i = 0; (name = nmea_field_name(s->type, i)); i++) {
		struct nmea_value v;

		if (s->talker[0] == 'P')
			FUZZ_ASSERT(nmea_get(s, name, &v) == -ENOENT);
		else
			check_field(s, name);
	}
	(void)nmea_valid(s);
	r = nmea_timestamp(s, 1767225600000000, &ts);
	FUZZ_ASSERT(r == 0 || r == -ENODATA || r == -EINVAL);
	for (unsigned i = 0; i < nmea_xdr_count(s); i++) {
		r = nmea_xdr_at(s, i, &x);
		FUZZ_ASSERT(r == 0 || r == -EINVAL);
		if (r == 0)
			FUZZ_ASSERT(nmea_xdr(s, x.name, &x) == 0 ||
			            nmea_xdr(s, x.name, &x) == -EINVAL);
	}
}

struct run {
	enum nmea_checksum policy;
	size_t frames;
};

static void on_frame(void *arg, const uint8_t *frame, size_t len, uint64_t time_us) {
	struct run *run = arg;
	struct nmea_sentence s;
	int r = nmea_parse(frame, len, run->policy, &s);

	FUZZ_ASSERT(len <= MAX_LEN);
	run->frames++;
	FUZZ_ASSERT(r == 0 || r == -EINVAL || r == -EMSGSIZE || r == -ENOMSG || r == -EBADMSG);
	if (r == 0)
		check_sentence(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	struct fuzz_in in = {data, size};
	uint8_t mode = fuzz_u8(&in);
	size_t chunk = fuzz_u8(&in) % 64 + 1;
	struct run run = {.policy = (enum nmea_checksum)(mode % NMEA_CHECKSUM_COUNT)};
	struct sf_config cfg = {.mode = SF_END, .max_len = MAX_LEN};
	struct sf f;
	uint64_t t = 0;

	if (mode & 0x80) {
		memcpy(cfg.end, "\r\n", 2);
		cfg.end_len = 2;
	} else {
		cfg.end[0] = '\n';
		cfg.end_len = 1;
	}
	FUZZ_ASSERT(sf_init(&f, &cfg, NULL, 0) == 0);
	for (size_t off = 0; off < in.n; off += chunk) {
		size_t n = in.n - off < chunk ? in.n - off : chunk;

		sf_feed(&f, in.p + off, n, t += 1000, on_frame, &run);
		FUZZ_ASSERT(f.len <= MAX_LEN + SF_DELIM_MAX);
	}
	FUZZ_ASSERT(f.stats.bytes == in.n && f.stats.frames == run.frames);
	FUZZ_ASSERT(f.stats.garbage_bytes == 0);
	sf_free(&f);
	/* The whole input as one frame too: the codec alone, on any bytes. */
	{
		struct nmea_sentence s;

		if (nmea_parse(in.p, in.n, run.policy, &s) == 0)
			check_sentence(&s);
	}
	return 0;
}
