/* SPDX-License-Identifier: MIT */
/*
 * The Modbus codec on the registers of a device's answer.
 *
 * Input: one byte of type, one of word/byte order, one of bit number (bool)
 * or length in registers (string), then the registers as the answer's data
 * bytes carry them (big-endian pairs). Besides what the sanitizers see, it
 * checks the codec's promise that encoding what was decoded gives back the
 * same registers, and that a decoded string is printable and stable.
 */
#include <math.h>
#include <stdbool.h>

#include "fuzz-input.h"
#include "mb-codec.h"

/* What the driver keeps of a string point (MB_TEXT_MAX in modbus.c). */
#define TEXT_MAX 256

static void check_number(enum mb_type type, enum mb_order order, const uint16_t *regs) {
	unsigned n = mb_type_registers(type, 0);
	uint16_t back[4] = {0};
	double v = mb_decode(type, order, regs);

	FUZZ_ASSERT(n >= 1 && n <= 4);
	if (type == MB_FLOAT32 || type == MB_FLOAT64) {
		/* A NaN's payload need not survive the trip through a double. */
		if (isnan(v))
			return;
	} else {
		FUZZ_ASSERT(isfinite(v) && v == trunc(v));
		FUZZ_ASSERT(mb_snap_integer(type, v) == v);
		/* Past 2^53 the double has lost the low bits: nothing to compare. */
		if (fabs(v) >= 9007199254740992.0)
			return;
	}
	FUZZ_ASSERT(mb_encode(type, order, v, back) == 0);
	FUZZ_ASSERT(memcmp(back, regs, n * sizeof(*regs)) == 0);
}

static void check_string(const uint16_t *regs, unsigned n, enum mb_order order) {
	char text[TEXT_MAX], again[TEXT_MAX];
	uint16_t enc[MB_STRING_MAX_REGISTERS];
	size_t len = mb_decode_string(regs, n, order, text, sizeof(text));

	FUZZ_ASSERT(len < sizeof(text) && len <= 2 * (size_t)n && strlen(text) == len);
	for (size_t i = 0; i < len; i++)
		FUZZ_ASSERT(text[i] >= 0x20 && text[i] < 0x7f);
	FUZZ_ASSERT(len == 0 || text[len - 1] != ' ');
	FUZZ_ASSERT(mb_encode_string(text, n, order, enc) == 0);
	FUZZ_ASSERT(mb_decode_string(enc, n, order, again, sizeof(again)) == len);
	FUZZ_ASSERT(strcmp(text, again) == 0);
	/* A short buffer truncates, and still terminates. */
	FUZZ_ASSERT(mb_decode_string(regs, n, order, again, 5) < 5);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	struct fuzz_in in = {data, size};
	enum mb_type type = (enum mb_type)(fuzz_u8(&in) % MB_TYPE_COUNT);
	enum mb_order order = (enum mb_order)(fuzz_u8(&in) % MB_ORDER_COUNT);
	unsigned arg = fuzz_u8(&in);
	uint16_t regs[MB_STRING_MAX_REGISTERS] = {0};
	unsigned n = 0;

	while (in.n >= 2 && n < MB_STRING_MAX_REGISTERS)
		regs[n++] = fuzz_u16(&in);
	if (!mb_order_valid(type, order))
		return 0;
	switch (type) {
	case MB_BOOL:
		/* A bool in a register: bits 0..15; the driver refuses others at config time. */
		FUZZ_ASSERT(mb_decode_bit(regs[0], arg % 16) == ((regs[0] >> (arg % 16)) & 1u));
		FUZZ_ASSERT(mb_decode_bit(regs[0], 16 + arg) == 0.0);
		FUZZ_ASSERT(mb_decode(MB_BOOL, order, regs) == (regs[0] != 0));
		break;
	case MB_STRING:
		if (arg == 0 || arg > MB_STRING_MAX_REGISTERS)
			arg = n ? n : 1;
		check_string(regs, arg, order);
		break;
	default:
		if (n < mb_type_registers(type, 0))
			return 0; /* libmodbus hands over exactly the registers asked for */
		check_number(type, order, regs);
		break;
	}
	return 0;
}
