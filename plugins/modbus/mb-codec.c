/* SPDX-License-Identifier: MIT */
/*
 * mb-codec.c - Modbus data types and word/byte orders. See mb-codec.h.
 *
 * Every type goes through one path: the registers are put into a
 * big-endian integer of up to 64 bits according to the order, and the type
 * then reinterprets that integer. Encoding is the same path backwards, so
 * that decode(encode(x)) == x holds by construction.
 */
#include "mb-codec.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <string.h>

const char *const mb_table_names[] = {
	[MB_COIL] = "coil",
	[MB_DISCRETE_INPUT] = "discrete_input",
	[MB_INPUT_REGISTER] = "input_register",
	[MB_HOLDING_REGISTER] = "holding_register",
	[MB_TABLE_COUNT] = NULL,
};

const char *const mb_type_names[] = {
	[MB_BOOL] = "bool",
	[MB_INT16] = "int16",
	[MB_UINT16] = "uint16",
	[MB_INT32] = "int32",
	[MB_UINT32] = "uint32",
	[MB_INT64] = "int64",
	[MB_UINT64] = "uint64",
	[MB_FLOAT32] = "float32",
	[MB_FLOAT64] = "float64",
	[MB_STRING] = "string",
	[MB_TYPE_COUNT] = NULL,
};

const char *const mb_order_names[] = {
	[MB_ABCD] = "ABCD",
	[MB_CDAB] = "CDAB",
	[MB_BADC] = "BADC",
	[MB_DCBA] = "DCBA",
	[MB_ORDER_COUNT] = NULL,
};

bool mb_table_is_bits(enum mb_table table)
{
	return table == MB_COIL || table == MB_DISCRETE_INPUT;
}

bool mb_table_is_writable(enum mb_table table)
{
	return table == MB_COIL || table == MB_HOLDING_REGISTER;
}

unsigned mb_type_registers(enum mb_type type, unsigned length)
{
	switch (type) {
	case MB_BOOL:
	case MB_INT16:
	case MB_UINT16:
		return 1;
	case MB_INT32:
	case MB_UINT32:
	case MB_FLOAT32:
		return 2;
	case MB_INT64:
	case MB_UINT64:
	case MB_FLOAT64:
		return 4;
	case MB_STRING:
		return length;
	default:
		return 0;
	}
}

static bool word_swapped(enum mb_order order)
{
	return order == MB_CDAB || order == MB_DCBA;
}

static bool byte_swapped(enum mb_order order)
{
	return order == MB_BADC || order == MB_DCBA;
}

bool mb_order_valid(enum mb_type type, enum mb_order order)
{
	if ((unsigned)order >= MB_ORDER_COUNT)
		return false;
	/* Characters stay in address order; only the byte swap is meaningful. */
	if (type == MB_STRING)
		return !word_swapped(order);
	return true;
}

static uint16_t swap16(uint16_t v)
{
	return (uint16_t)((v << 8) | (v >> 8));
}

/* Register I (address order) of an N-register value, as value word order. */
static uint64_t regs_to_u64(const uint16_t *regs, unsigned n, enum mb_order order)
{
	uint64_t u = 0;

	for (unsigned k = 0; k < n; k++) {
		uint16_t w = regs[word_swapped(order) ? n - 1 - k : k];

		if (byte_swapped(order))
			w = swap16(w);
		u = (u << 16) | w;
	}
	return u;
}

static void u64_to_regs(uint64_t u, unsigned n, enum mb_order order, uint16_t *regs)
{
	for (unsigned k = 0; k < n; k++) {
		/* Word k of the value, k = 0 the most significant. */
		uint16_t w = (uint16_t)(u >> (16 * (n - 1 - k)));

		if (byte_swapped(order))
			w = swap16(w);
		regs[word_swapped(order) ? n - 1 - k : k] = w;
	}
}

double mb_decode(enum mb_type type, enum mb_order order, const uint16_t *regs)
{
	unsigned n = mb_type_registers(type, 0);
	uint64_t u = regs_to_u64(regs, n, order);
	uint32_t u32 = (uint32_t)u;
	float f;
	double d;

	switch (type) {
	case MB_BOOL:
		return regs[0] != 0;
	case MB_INT16:
		return (int16_t)(uint16_t)u;
	case MB_UINT16:
		return (uint16_t)u;
	case MB_INT32:
		return (int32_t)u32;
	case MB_UINT32:
		return u32;
	case MB_INT64:
		return (double)(int64_t)u;
	case MB_UINT64:
		return (double)u;
	case MB_FLOAT32:
		memcpy(&f, &u32, sizeof(f));
		return f;
	case MB_FLOAT64:
		memcpy(&d, &u, sizeof(d));
		return d;
	default:
		return NAN;
	}
}

double mb_decode_bit(uint16_t reg, unsigned bit)
{
	return bit < 16 && (reg >> bit) & 1u ? 1.0 : 0.0;
}

/* True when V is an integer in [LO, HI]; the bounds are exact doubles. */
static bool integer_in(double v, double lo, double hi)
{
	return isfinite(v) && v == trunc(v) && v >= lo && v <= hi;
}

int mb_encode(enum mb_type type, enum mb_order order, double value, uint16_t *regs)
{
	unsigned n = mb_type_registers(type, 0);
	uint64_t u;
	float f;
	uint32_t u32;

	switch (type) {
	case MB_BOOL:
		if (value != 0.0 && value != 1.0)
			return -ERANGE;
		regs[0] = value != 0.0;
		return 0;
	case MB_INT16:
		if (!integer_in(value, INT16_MIN, INT16_MAX))
			return -ERANGE;
		u = (uint16_t)(int16_t)value;
		break;
	case MB_UINT16:
		if (!integer_in(value, 0, UINT16_MAX))
			return -ERANGE;
		u = (uint16_t)value;
		break;
	case MB_INT32:
		if (!integer_in(value, INT32_MIN, INT32_MAX))
			return -ERANGE;
		u = (uint32_t)(int32_t)value;
		break;
	case MB_UINT32:
		if (!integer_in(value, 0, UINT32_MAX))
			return -ERANGE;
		u = (uint32_t)value;
		break;
	case MB_INT64:
		/* 2^63 is exact as a double; INT64_MAX is not, so compare below it. */
		if (!integer_in(value, -9223372036854775808.0, 9223372036854775807.0) ||
		    value >= 9223372036854775808.0)
			return -ERANGE;
		u = (uint64_t)(int64_t)value;
		break;
	case MB_UINT64:
		if (!integer_in(value, 0, 18446744073709551615.0) ||
		    value >= 18446744073709551616.0)
			return -ERANGE;
		u = (uint64_t)value;
		break;
	case MB_FLOAT32:
		/* NaN and infinities exist in float32; a finite overflow does not. */
		if (isfinite(value) && fabs(value) > FLT_MAX)
			return -ERANGE;
		f = (float)value;
		memcpy(&u32, &f, sizeof(u32));
		u = u32;
		break;
	case MB_FLOAT64:
		memcpy(&u, &value, sizeof(u));
		break;
	default:
		return -ERANGE;
	}
	u64_to_regs(u, n, order, regs);
	return 0;
}

double mb_snap_integer(enum mb_type type, double value)
{
	double r;

	if (type == MB_FLOAT32 || type == MB_FLOAT64 || type == MB_STRING || !isfinite(value))
		return value;
	r = nearbyint(value);
	return fabs(value - r) <= 1e-9 * fmax(1.0, fabs(r)) ? r : value;
}

size_t mb_decode_string(const uint16_t *regs, unsigned n, enum mb_order order, char *buf,
                        size_t size)
{
	size_t len = 0;

	if (size == 0)
		return 0;
	for (unsigned i = 0; i < n; i++) {
		uint16_t w = byte_swapped(order) ? swap16(regs[i]) : regs[i];
		unsigned char c[2] = { (unsigned char)(w >> 8), (unsigned char)w };

		for (int j = 0; j < 2; j++) {
			if (c[j] == 0 || len + 1 >= size)
				goto out;
			buf[len++] = c[j] >= 0x20 && c[j] < 0x7f ? (char)c[j] : '?';
		}
	}
out:
	while (len > 0 && buf[len - 1] == ' ')
		len--;
	buf[len] = '\0';
	return len;
}

int mb_encode_string(const char *text, unsigned n, enum mb_order order, uint16_t *regs)
{
	size_t len = strlen(text);

	if (len > 2 * (size_t)n)
		return -ERANGE;
	for (unsigned i = 0; i < n; i++) {
		unsigned char hi = 2 * i < len ? (unsigned char)text[2 * i] : 0;
		unsigned char lo = 2 * i + 1 < len ? (unsigned char)text[2 * i + 1] : 0;
		uint16_t w = (uint16_t)(hi << 8 | lo);

		regs[i] = byte_swapped(order) ? swap16(w) : w;
	}
	return 0;
}
