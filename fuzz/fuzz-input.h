/* SPDX-License-Identifier: MIT */
/*
 * Reading a fuzzer's input as a stream of small fields, and the invariant
 * check every target uses. A field past the end of the input reads as 0,
 * so that every input, however short, is a complete case.
 */
#pragma once

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fuzz_in {
	const uint8_t *p;
	size_t n;
};

static inline uint8_t fuzz_u8(struct fuzz_in *in) {
	uint8_t v = 0;

	if (in->n > 0) {
		v = in->p[0];
		in->p++;
		in->n--;
	}
	return v;
}

/* Big-endian, as Modbus puts a register on the wire. */
static inline uint16_t fuzz_u16(struct fuzz_in *in) {
	uint16_t hi = fuzz_u8(in);

	return (uint16_t)(hi << 8 | fuzz_u8(in));
}

/*
 * A broken invariant is a crash for libFuzzer: it saves the input and the
 * run fails, the same as for a sanitizer report.
 */
#define FUZZ_ASSERT(cond)                                                                          \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__,       \
			        #cond);                                                            \
			abort();                                                                   \
		}                                                                                  \
	} while (0)
