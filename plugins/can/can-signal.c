/* SPDX-License-Identifier: MIT */
/*
 * can-signal.c - signals in a frame's payload. See can-signal.h.
 *
 * Both byte orders go through one path. A signal covers N consecutive
 * bytes; walking them from the byte that holds its least significant bit
 * (upwards for Intel, downwards for Motorola), byte k contributes its bits
 * from SHIFT up at weight 8k - SHIFT, where SHIFT is the position of the
 * least significant bit in its byte. So a 64-bit signal that starts in
 * the middle of a byte spans 9 bytes and still needs no wider integer than
 * 64 bits (every weight is below 64). Encoding walks the same bytes with
 * the same weights, so decode(encode(x)) == x holds by construction.
 */
#include "can-signal.h"

#include <errno.h>
#include <math.h>
#include <string.h>

/* Where a signal's bytes are: byte k of the walk is data[base + step * k]. */
struct span {
	unsigned base;
	int step;
	unsigned bytes; /* how many the walk visits */
	unsigned shift; /* position of the least significant bit in the first byte visited */
	unsigned need;  /* payload length it needs */
};

static bool span_of(unsigned start, unsigned length, bool big_endian, struct span *ret) {
	if (length < 1 || length > 64 || start >= 8 * CAN_MAX_PAYLOAD)
		return false;
	if (!big_endian) {
		if (start + length > 8 * CAN_MAX_PAYLOAD)
			return false;
		ret->base = start / 8;
		ret->step = 1;
		ret->shift = start % 8;
		ret->need = (start + length - 1) / 8 + 1;
	} else {
		/* Count bits from the most significant bit of byte 0 down: "linear". */
		unsigned msb = start / 8 * 8 + 7 - start % 8, lsb = msb + length - 1;

		if (lsb >= 8 * CAN_MAX_PAYLOAD)
			return false;
		ret->base = lsb / 8;
		ret->step = -1;
		ret->shift = 7 - lsb % 8;
		ret->need = lsb / 8 + 1;
	}
	ret->bytes = (ret->shift + length + 7) / 8;
	return true;
}

static uint64_t mask_of(unsigned length) {
	return length >= 64 ? UINT64_MAX : (UINT64_C(1) << length) - 1;
}

bool can_signal_layout(unsigned start_bit, unsigned length, bool big_endian, unsigned *ret_bytes) {
	struct span sp;

	if (!span_of(start_bit, length, big_endian, &sp))
		return false;
	if (ret_bytes)
		*ret_bytes = sp.need;
	return true;
}

int can_signal_get_raw(const struct can_signal *s, const uint8_t *data, size_t len,
                       uint64_t *ret_raw) {
	struct span sp;
	uint64_t v = 0;

	if (!span_of(s->start_bit, s->length, s->big_endian, &sp) || len < sp.need)
		return -ENODATA;
	for (unsigned k = 0; k < sp.bytes; k++) {
		uint64_t b = data[(int)sp.base + sp.step * (int)k];

		v |= k == 0 ? b >> sp.shift : b << (8 * k - sp.shift);
	}
	*ret_raw = v & mask_of(s->length);
	return 0;
}

int can_signal_put_raw(const struct can_signal *s, uint64_t raw, uint8_t *data, size_t len) {
	struct span sp;
	uint64_t m = mask_of(s->length);

	if (!span_of(s->start_bit, s->length, s->big_endian, &sp) || len < sp.need)
		return -ENODATA;
	raw &= m;
	for (unsigned k = 0; k < sp.bytes; k++) {
		uint8_t *p = &data[(int)sp.base + sp.step * (int)k];
		unsigned w = 8 * k - sp.shift;
		uint8_t bm = (uint8_t)(k == 0 ? m << sp.shift : m >> w);
		uint8_t bv = (uint8_t)(k == 0 ? raw << sp.shift : raw >> w);

		*p = (uint8_t)((*p & ~bm) | bv);
	}
	return 0;
}

void can_signal_mask(const struct can_signal *s, uint8_t mask[CAN_MAX_PAYLOAD]) {
	memset(mask, 0, CAN_MAX_PAYLOAD);
	(void)can_signal_put_raw(s, UINT64_MAX, mask, CAN_MAX_PAYLOAD);
}

double can_signal_raw_number(const struct can_signal *s, uint64_t raw) {
	switch (s->type) {
	case CAN_VALUE_FLOAT: {
		uint32_t u = (uint32_t)raw;
		float f;

		memcpy(&f, &u, sizeof(f));
		return f;
	}
	case CAN_VALUE_DOUBLE: {
		double d;

		memcpy(&d, &raw, sizeof(d));
		return d;
	}
	case CAN_VALUE_INTEGER:
		break;
	}
	if (s->is_signed) {
		if (s->length < 64 && (raw >> (s->length - 1)) & 1)
			raw |= ~mask_of(s->length);
		return (double)(int64_t)raw;
	}
	return (double)raw;
}

double can_signal_physical(const struct can_signal *s, uint64_t raw) {
	return can_signal_raw_number(s, raw) * s->factor + s->offset;
}

int can_signal_to_raw(const struct can_signal *s, double v, uint64_t *ret_raw) {
	double x = (v - s->offset) / s->factor, top;

	if (s->type == CAN_VALUE_FLOAT) {
		float f = (float)x;
		uint32_t u;

		memcpy(&u, &f, sizeof(u));
		*ret_raw = u;
		return 0;
	}
	if (s->type == CAN_VALUE_DOUBLE) {
		memcpy(ret_raw, &x, sizeof(*ret_raw));
		return 0;
	}
	if (!isfinite(x))
		return -EDOM;
	x = round(x);
	if (s->is_signed) {
		top = ldexp(1.0, s->length - 1);
		if (x < -top || x >= top)
			return -ERANGE;
		*ret_raw = (uint64_t)(int64_t)x & mask_of(s->length);
	} else {
		top = ldexp(1.0, s->length);
		if (x < 0 || x >= top)
			return -ERANGE;
		*ret_raw = (uint64_t)x;
	}
	return 0;
}

static bool in_ranges(const struct can_signal *s, uint64_t raw) {
	for (size_t i = 0; i < s->n_mux_ranges; i++)
		if (raw >= s->mux_ranges[i].lo && raw <= s->mux_ranges[i].hi)
			return true;
	return false;
}

int can_signal_present(const struct can_message *m, size_t index, const uint8_t *data, size_t len) {
	/* The parser refuses cycles; the bound makes a walk finite whatever the input. */
	for (size_t steps = 0; steps <= m->n_signals; steps++) {
		const struct can_signal *s = &m->signals[index];
		uint64_t raw;
		int r;

		if (!s->is_multiplexed)
			return 1;
		if (s->mux_parent < 0 || (size_t)s->mux_parent >= m->n_signals)
			return 0;
		r = can_signal_get_raw(&m->signals[s->mux_parent], data, len, &raw);
		if (r < 0)
			return r;
		if (!in_ranges(s, raw))
			return 0;
		index = (size_t)s->mux_parent;
	}
	return 0;
}

int can_signal_decode(const struct can_message *m, size_t index, const uint8_t *data, size_t len,
                      double *ret, uint64_t *ret_raw) {
	const struct can_signal *s = &m->signals[index];
	uint64_t raw;
	int r = can_signal_present(m, index, data, len);

	if (r < 0)
		return r;
	if (r == 0)
		return -ENOENT;
	r = can_signal_get_raw(s, data, len, &raw);
	if (r < 0)
		return r;
	*ret = can_signal_physical(s, raw);
	if (ret_raw)
		*ret_raw = raw;
	return 0;
}

int can_signal_encode(const struct can_message *m, size_t index, double v, uint8_t *data,
                      size_t len) {
	const struct can_signal *s = &m->signals[index];
	uint64_t raw;
	int r = can_signal_to_raw(s, v, &raw);

	if (r < 0)
		return r;
	/* Check the whole chain first, so that a refusal leaves DATA as it was. */
	for (size_t i = index, steps = 0;; i = (size_t)m->signals[i].mux_parent, steps++) {
		const struct can_signal *t = &m->signals[i];
		unsigned need;

		if (!can_signal_layout(t->start_bit, t->length, t->big_endian, &need) || need > len)
			return -ENODATA;
		if (!t->is_multiplexed)
			break;
		if (t->mux_parent < 0 || (size_t)t->mux_parent >= m->n_signals ||
		    t->n_mux_ranges == 0 || steps > m->n_signals)
			return -ENOENT;
	}
	(void)can_signal_put_raw(s, raw, data, len);
	for (size_t i = index; m->signals[i].is_multiplexed; i = (size_t)m->signals[i].mux_parent)
		(void)can_signal_put_raw(&m->signals[m->signals[i].mux_parent],
		                         m->signals[i].mux_ranges[0].lo, data, len);
	return 0;
}

uint32_t can_j1939_pgn(uint32_t id) {
	uint32_t pf = (id >> 16) & 0xff, dp = (id >> 24) & 3; /* extended data page and data page */

	return dp << 16 | pf << 8 | (pf >= 240 ? (id >> 8) & 0xff : 0);
}

uint8_t can_j1939_destination(uint32_t id) {
	return ((id >> 16) & 0xff) < 240 ? (uint8_t)(id >> 8) : 0xff;
}

uint8_t can_j1939_source(uint32_t id) {
	return (uint8_t)id;
}

unsigned can_j1939_priority(uint32_t id) {
	return (id >> 26) & 7;
}
