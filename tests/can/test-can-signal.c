/* SPDX-License-Identifier: MIT */
/*
 * The signal codec (plugins/can/can-signal.c) on hand-checked frames.
 *
 * Every vector is derived from the DBC definitions, stated once here:
 * bit b of the payload is bit b % 8 of byte b / 8, bit 0 the least
 * significant. Intel (@1): the start bit is the signal's LSB and the
 * signal's bit i is payload bit start + i. Motorola (@0): the start bit is
 * the signal's MSB; the next less significant bit is start - 1 within the
 * byte, and after bit 0 of byte n comes bit 7 of byte n + 1. A signed
 * signal is two's complement over its length; SIG_VALTYPE_ 1/2 signals are
 * the IEEE 754 bits of a float/double, in the same byte order. The
 * physical value is raw * factor + offset. Each test writes in its
 * comment which payload bits make the raw value.
 */
#include "test.h"

#include <errno.h>

#include "can-signal.h"

static struct can_signal sig(unsigned start, unsigned length, bool big_endian, bool is_signed) {
	return (struct can_signal){
	    .name = "s",
	    .start_bit = (uint16_t)start,
	    .length = (uint8_t)length,
	    .big_endian = big_endian,
	    .is_signed = is_signed,
	    .factor = 1,
	    .mux_parent = -1,
	};
}

static uint64_t raw_of(const struct can_signal *s, const uint8_t *data, size_t len) {
	uint64_t raw = 0;

	ASSERT_OK(can_signal_get_raw(s, data, len, &raw));
	return raw;
}

/*
 * Encoding RAW into a payload of all ones must give EXPECT in the signal's
 * bits and leave every other bit set, and into zeros exactly EXPECT.
 */
static void check_put(const struct can_signal *s, uint64_t raw, const uint8_t *expect, size_t len) {
	uint8_t ones[CAN_MAX_PAYLOAD], zeros[CAN_MAX_PAYLOAD] = {0}, mask[CAN_MAX_PAYLOAD];

	memset(ones, 0xff, sizeof(ones));
	can_signal_mask(s, mask);
	ASSERT_OK(can_signal_put_raw(s, raw, zeros, len));
	ASSERT_OK(can_signal_put_raw(s, raw, ones, len));
	for (size_t i = 0; i < len; i++) {
		ASSERT_EQ(zeros[i], expect[i]);
		ASSERT_EQ(ones[i], (uint8_t)(expect[i] | ~mask[i]));
	}
}

/* Intel 16 bits at 0: byte 0 is bits 0..7 (the low byte), byte 1 bits 8..15. */
static void test_intel_aligned(void) {
	struct can_signal s = sig(0, 16, false, false);
	const uint8_t d[] = {0x34, 0x12};

	ASSERT_EQ(raw_of(&s, d, 2), 0x1234);
	check_put(&s, 0x1234, d, 2);
}

/*
 * Intel 12 bits at 4: signal bits 0..3 are byte 0 bits 4..7 (0xA of 0xA0),
 * bits 4..11 are byte 1 (0xBC): 0xBCA.
 */
static void test_intel_across_bytes(void) {
	struct can_signal s = sig(4, 12, false, false);
	const uint8_t d[] = {0xa0, 0xbc};

	ASSERT_EQ(raw_of(&s, d, 2), 0xbca);
	check_put(&s, 0xbca, d, 2);
	/* Intel 10 bits at 13: byte 1 bits 5..7 (0b111 of 0xE0), byte 2 (0x55) bits 0..6 (0x55):
	 * 0x55 << 3 | 7. */
	s = sig(13, 10, false, false);
	const uint8_t e[] = {0x00, 0xe0, 0x55};
	ASSERT_EQ(raw_of(&s, e, 3), 0x55 << 3 | 7);
	check_put(&s, 0x55 << 3 | 7, e, 3);
}

/* Motorola 16 bits with start (MSB) 7: byte 0 bits 7..0 then byte 1 bits 7..0, big-endian. */
static void test_motorola_aligned(void) {
	struct can_signal s = sig(7, 16, true, false);
	const uint8_t d[] = {0x12, 0x34};

	ASSERT_EQ(raw_of(&s, d, 2), 0x1234);
	check_put(&s, 0x1234, d, 2);
}

/*
 * Motorola 12 bits, MSB at 3: byte 0 bits 3..0 are the top nibble (0xA of
 * 0x0A), then byte 1 bits 7..0 (0xBC): 0xABC. And 9 bits, MSB at 10: byte 1
 * bits 2..0 (0b101 of 0x05), then byte 2 bits 7..2 (0b111111 of 0xFC):
 * 0b101111111.
 */
static void test_motorola_across_bytes(void) {
	struct can_signal s = sig(3, 12, true, false);
	const uint8_t d[] = {0x0a, 0xbc};

	ASSERT_EQ(raw_of(&s, d, 2), 0xabc);
	check_put(&s, 0xabc, d, 2);
	s = sig(10, 9, true, false);
	const uint8_t e[] = {0x00, 0x05, 0xfc};
	ASSERT_EQ(raw_of(&s, e, 3), 0x17f);
	check_put(&s, 0x17f, e, 3);
}

/* One bit at 13 is byte 1 bit 5 (0x20) in both byte orders. */
static void test_one_bit(void) {
	const uint8_t on[] = {0xff, 0x20}, off[] = {0xff, 0xdf};

	for (int be = 0; be <= 1; be++) {
		struct can_signal s = sig(13, 1, be, false);

		ASSERT_EQ(raw_of(&s, on, 2), 1);
		ASSERT_EQ(raw_of(&s, off, 2), 0);
		check_put(&s, 1, (const uint8_t[]){0x00, 0x20}, 2);
		/* Signed, one bit is 0 or -1. */
		s.is_signed = true;
		ASSERT_DOUBLE_EQ(can_signal_physical(&s, 1), -1, 0);
	}
}

/*
 * 64 bits. Intel at 0: bytes 01..08, byte 0 the low byte. Intel at 4 spans
 * nine bytes: byte 0 bits 4..7 are signal bits 0..3, byte 8 bits 0..3 are
 * bits 60..63; 0x10 in byte 0 and 0x0F in byte 8 give 0xF000000000000001.
 * Motorola MSB at 7: bytes 01..08 big-endian. Motorola MSB at 3: byte 0
 * bit 3 is bit 63, byte 8 bit 4 is bit 0 (the LSB is 63 bits further on:
 * 4 in byte 0, 56 in bytes 1..7, then bits 7..4 of byte 8).
 */
static void test_64_bits(void) {
	struct can_signal s = sig(0, 64, false, false);
	const uint8_t d[] = {1, 2, 3, 4, 5, 6, 7, 8};
	const uint8_t nine[] = {0x10, 0, 0, 0, 0, 0, 0, 0, 0x0f};
	const uint8_t nine_be[] = {0x08, 0, 0, 0, 0, 0, 0, 0, 0x10};

	ASSERT(raw_of(&s, d, 8) == UINT64_C(0x0807060504030201));
	check_put(&s, UINT64_C(0x0807060504030201), d, 8);
	s = sig(4, 64, false, false);
	ASSERT(raw_of(&s, nine, 9) == UINT64_C(0xf000000000000001));
	check_put(&s, UINT64_C(0xf000000000000001), nine, 9);
	ASSERT_EQ(can_signal_get_raw(&s, nine, 8, &(uint64_t){0}), -ENODATA);
	s = sig(7, 64, true, false);
	ASSERT(raw_of(&s, d, 8) == UINT64_C(0x0102030405060708));
	check_put(&s, UINT64_C(0x0102030405060708), d, 8);
	s = sig(3, 64, true, false);
	ASSERT(raw_of(&s, nine_be, 9) == UINT64_C(0x8000000000000001));
	check_put(&s, UINT64_C(0x8000000000000001), nine_be, 9);
	/* Signed 64 bits: all ones is -1; unsigned it is 2^64 - 1. */
	s = sig(0, 64, false, true);
	ASSERT_DOUBLE_EQ(can_signal_physical(&s, UINT64_MAX), -1, 0);
	s.is_signed = false;
	ASSERT_DOUBLE_EQ(can_signal_physical(&s, UINT64_MAX), 18446744073709551615.0, 0);
	/* The last bit of a 64-byte CAN FD payload, in both orders. */
	ASSERT(can_signal_layout(511, 1, false, NULL));
	ASSERT(!can_signal_layout(511, 2, false, NULL));
	ASSERT(can_signal_layout(455, 64, true, NULL));  /* byte 56 bit 7 down to byte 63 bit 0 */
	ASSERT(!can_signal_layout(454, 64, true, NULL)); /* from byte 56 bit 6: one bit too many */
	ASSERT(!can_signal_layout(504, 2, true, NULL));  /* byte 63 bit 0, then byte 64 */
}

/*
 * Two's complement over the length: 8 bits 0xFF is -1; Motorola 12 bits
 * 0x800 (byte 0 bit 3 set) is -2048; 0xFFE is -2, times 0.1 is -0.2.
 */
static void test_signed(void) {
	struct can_signal s = sig(0, 8, false, true);

	ASSERT_DOUBLE_EQ(can_signal_physical(&s, raw_of(&s, (const uint8_t[]){0xff}, 1)), -1, 0);
	ASSERT_DOUBLE_EQ(can_signal_physical(&s, 0x7f), 127, 0);
	s = sig(3, 12, true, true);
	ASSERT_DOUBLE_EQ(can_signal_physical(&s, raw_of(&s, (const uint8_t[]){0x08, 0x00}, 2)),
	                 -2048, 0);
	s.factor = 0.1;
	ASSERT_DOUBLE_EQ(can_signal_physical(&s, raw_of(&s, (const uint8_t[]){0x0f, 0xfe}, 2)),
	                 -0.2, 1e-15);
}

/*
 * IEEE bits: 1.5f is 0x3FC00000, little-endian 00 00 C0 3F for Intel, 3F
 * C0 00 00 for Motorola MSB at 7; -2.5 is 0xC004000000000000.
 */
static void test_float(void) {
	struct can_signal s = sig(0, 32, false, false);
	const uint8_t le[] = {0x00, 0x00, 0xc0, 0x3f}, be[] = {0x3f, 0xc0, 0x00, 0x00};
	const uint8_t dle[] = {0, 0, 0, 0, 0, 0, 0x04, 0xc0};
	uint64_t raw;

	s.type = CAN_VALUE_FLOAT;
	ASSERT_DOUBLE_EQ(can_signal_physical(&s, raw_of(&s, le, 4)), 1.5, 0);
	ASSERT_OK(can_signal_to_raw(&s, 1.5, &raw));
	ASSERT_EQ(raw, 0x3fc00000);
	s = sig(7, 32, true, false);
	s.type = CAN_VALUE_FLOAT;
	ASSERT_DOUBLE_EQ(can_signal_physical(&s, raw_of(&s, be, 4)), 1.5, 0);
	s = sig(0, 64, false, false);
	s.type = CAN_VALUE_DOUBLE;
	ASSERT_DOUBLE_EQ(can_signal_physical(&s, raw_of(&s, dle, 8)), -2.5, 0);
	ASSERT_OK(can_signal_to_raw(&s, -2.5, &raw));
	ASSERT(raw == UINT64_C(0xc004000000000000));
	/* A float signal takes the bits as they are, even a NaN's. */
	s = sig(0, 32, false, false);
	s.type = CAN_VALUE_FLOAT;
	ASSERT(isnan(can_signal_physical(&s, 0x7fc00000)));
}

/* raw 100, factor 0.1, offset -40: -30; back again, and the bounds of the raw bits. */
static void test_scale_and_range(void) {
	struct can_signal s = sig(0, 8, false, false);
	uint64_t raw;

	s.factor = 0.1;
	s.offset = -40;
	ASSERT_DOUBLE_EQ(can_signal_physical(&s, 100), -30, 1e-12);
	ASSERT_OK(can_signal_to_raw(&s, -30, &raw));
	ASSERT_EQ(raw, 100);
	ASSERT_OK(can_signal_to_raw(&s, -40 + 25.5, &raw));
	ASSERT_EQ(raw, 255);
	ASSERT_EQ(can_signal_to_raw(&s, -40 + 25.6, &raw), -ERANGE);
	ASSERT_EQ(can_signal_to_raw(&s, -40.1, &raw), -ERANGE);
	ASSERT_EQ(can_signal_to_raw(&s, NAN, &raw), -EDOM);
	s = sig(0, 8, false, true);
	ASSERT_OK(can_signal_to_raw(&s, -128, &raw));
	ASSERT_EQ(raw, 0x80);
	ASSERT_OK(can_signal_to_raw(&s, 127, &raw));
	ASSERT_EQ(raw, 0x7f);
	ASSERT_EQ(can_signal_to_raw(&s, -129, &raw), -ERANGE);
	ASSERT_EQ(can_signal_to_raw(&s, 128, &raw), -ERANGE);
	s = sig(0, 64, false, true);
	ASSERT_OK(can_signal_to_raw(&s, -9223372036854775808.0, &raw));
	ASSERT(raw == UINT64_C(0x8000000000000000));
	ASSERT_EQ(can_signal_to_raw(&s, 9223372036854775808.0, &raw), -ERANGE);
}

/* A frame shorter than the signal: -ENODATA, and nothing read or written past it. */
static void test_short_frame(void) {
	struct can_signal s = sig(8, 16, false, false);
	uint8_t d[2] = {0xaa, 0xbb};
	uint64_t raw = 42;

	ASSERT_EQ(can_signal_get_raw(&s, d, 2, &raw), -ENODATA);
	ASSERT_EQ(raw, 42);
	ASSERT_EQ(can_signal_put_raw(&s, 0, d, 2), -ENODATA);
	ASSERT_EQ(d[0], 0xaa);
	ASSERT_EQ(d[1], 0xbb);
	ASSERT_EQ(can_signal_get_raw(&s, d, 0, &raw), -ENODATA);
}

/*
 * A message by hand: multiplexer M (8 bits at 0), A m1 (8 bits at 8), B m2
 * (16 bits at 8) and C, a nested multiplexer "m2M" (4 bits at 24), with D
 * under C for C in 3..5 (SG_MUL_VAL_ C 3-5).
 */
static void test_mux(void) {
	struct can_mux_range r1 = {1, 1}, r2 = {2, 2}, r35 = {3, 5};
	struct can_signal s[5] = {
	    sig(0, 8, false, false),  sig(8, 8, false, false),  sig(8, 16, false, false),
	    sig(24, 4, false, false), sig(28, 4, false, false),
	};
	struct can_message m = {.name = "m", .size = 8, .signals = s, .n_signals = 5};
	uint8_t d[8] = {1, 0x11, 0x22, 0x34, 0, 0, 0, 0};
	double v;

	s[0].is_multiplexer = true;
	s[1].is_multiplexed = true, s[1].mux_parent = 0, s[1].mux_ranges = &r1,
	s[1].n_mux_ranges = 1;
	s[2].is_multiplexed = true, s[2].mux_parent = 0, s[2].mux_ranges = &r2,
	s[2].n_mux_ranges = 1;
	s[3].is_multiplexed = s[3].is_multiplexer = true, s[3].mux_parent = 0,
	s[3].mux_ranges = &r2, s[3].n_mux_ranges = 1;
	s[4].is_multiplexed = true, s[4].mux_parent = 3, s[4].mux_ranges = &r35,
	s[4].n_mux_ranges = 1;

	/* M = 1: A is 0x11; B, C and D are not in the frame. */
	ASSERT_OK(can_signal_decode(&m, 0, d, 8, &v, NULL));
	ASSERT_DOUBLE_EQ(v, 1, 0);
	ASSERT_OK(can_signal_decode(&m, 1, d, 8, &v, NULL));
	ASSERT_DOUBLE_EQ(v, 0x11, 0);
	ASSERT_EQ(can_signal_decode(&m, 2, d, 8, &v, NULL), -ENOENT);
	ASSERT_EQ(can_signal_present(&m, 3, d, 8), 0);
	ASSERT_EQ(can_signal_present(&m, 4, d, 8), 0);
	/* M = 2: B is 0x2211; C is 4 (byte 3 low nibble), which selects D (3, the high nibble). */
	d[0] = 2;
	ASSERT_OK(can_signal_decode(&m, 2, d, 8, &v, NULL));
	ASSERT_DOUBLE_EQ(v, 0x2211, 0);
	ASSERT_EQ(can_signal_present(&m, 1, d, 8), 0);
	ASSERT_OK(can_signal_decode(&m, 3, d, 8, &v, NULL));
	ASSERT_DOUBLE_EQ(v, 4, 0);
	ASSERT_OK(can_signal_decode(&m, 4, d, 8, &v, NULL));
	ASSERT_DOUBLE_EQ(v, 3, 0);
	/* C = 6 is outside 3..5: D is gone although its own multiplexer is there. */
	d[3] = 0x36;
	ASSERT_EQ(can_signal_decode(&m, 4, d, 8, &v, NULL), -ENOENT);
	/* A frame too short for the multiplexer of the multiplexer. */
	ASSERT_EQ(can_signal_present(&m, 4, d, 3), -ENODATA);
	/* Encoding D sets C to 3 and M to 2, the lowest values that select it. */
	memset(d, 0, sizeof(d));
	ASSERT_OK(can_signal_encode(&m, 4, 9, d, 8));
	ASSERT_EQ(d[0], 2);
	ASSERT_EQ(d[3], 0x93);
	ASSERT_OK(can_signal_decode(&m, 4, d, 8, &v, NULL));
	ASSERT_DOUBLE_EQ(v, 9, 0);
	/* A refused encode leaves the frame alone. */
	ASSERT_EQ(can_signal_encode(&m, 4, 16, d, 8), -ERANGE);
	ASSERT_EQ(can_signal_encode(&m, 4, 1, d, 3), -ENODATA);
	ASSERT_EQ(d[3], 0x93);
	/* A multiplexed signal whose multiplexer is unknown is never present. */
	s[1].mux_parent = -1;
	ASSERT_EQ(can_signal_present(&m, 1, d, 8), 0);
	ASSERT_EQ(can_signal_encode(&m, 1, 1, d, 8), -ENOENT);
}

/*
 * J1939-21: priority = id bits 26..28, EDP and DP bits 25 and 24, PF bits
 * 16..23, PS bits 8..15, SA bits 0..7. PGN = EDP DP PF PS for PF >= 240
 * (PDU2) and EDP DP PF 00 for PF < 240 (PDU1, where PS is the destination).
 */
static void test_j1939(void) {
	/* 0x0CF00400: EEC1, priority 3, PF 0xF0 (PDU2): PGN 0xF004 = 61444, from 0x00. */
	ASSERT_EQ(can_j1939_pgn(0x0cf00400), 61444);
	ASSERT_EQ(can_j1939_priority(0x0cf00400), 3);
	ASSERT_EQ(can_j1939_source(0x0cf00400), 0x00);
	ASSERT_EQ(can_j1939_destination(0x0cf00400), 0xff);
	/* 0x18FEF117: CCVS, priority 6, PGN 0xFEF1 = 65265, from 0x17. */
	ASSERT_EQ(can_j1939_pgn(0x18fef117), 65265);
	ASSERT_EQ(can_j1939_priority(0x18fef117), 6);
	ASSERT_EQ(can_j1939_source(0x18fef117), 0x17);
	/* 0x18EF1234: PF 0xEF = 239 (PDU1, proprietary A): PGN 0xEF00 = 61184 to 0x12 from 0x34. */
	ASSERT_EQ(can_j1939_pgn(0x18ef1234), 61184);
	ASSERT_EQ(can_j1939_destination(0x18ef1234), 0x12);
	ASSERT_EQ(can_j1939_source(0x18ef1234), 0x34);
	/* 0x18EAFFF9: request (PGN 0xEA00 = 59904) to all from 0xF9; the destination is not the
	 * PGN. */
	ASSERT_EQ(can_j1939_pgn(0x18eafff9), 59904);
	ASSERT_EQ(can_j1939_pgn(0x18ea00f9), 59904);
	ASSERT_EQ(can_j1939_destination(0x18ea00f9), 0x00);
	/* The data page (bit 24) and extended data page (bit 25) are PGN bits 16 and 17. */
	ASSERT_EQ(can_j1939_pgn(0x19fef100), 0x1fef1);
	ASSERT_EQ(can_j1939_pgn(0x1bfef100), 0x3fef1);
	/* PF 240 is the first PDU2 format. */
	ASSERT_EQ(can_j1939_pgn(0x00f0ab00), 0xf0ab);
	ASSERT_EQ(can_j1939_priority(0x1cffffff), 7);
}

int main(void) {
	RUN_TEST(test_intel_aligned);
	RUN_TEST(test_intel_across_bytes);
	RUN_TEST(test_motorola_aligned);
	RUN_TEST(test_motorola_across_bytes);
	RUN_TEST(test_one_bit);
	RUN_TEST(test_64_bits);
	RUN_TEST(test_signed);
	RUN_TEST(test_float);
	RUN_TEST(test_scale_and_range);
	RUN_TEST(test_short_frame);
	RUN_TEST(test_mux);
	RUN_TEST(test_j1939);
	return 0;
}
