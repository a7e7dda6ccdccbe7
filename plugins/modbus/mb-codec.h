/* SPDX-License-Identifier: MIT */
/*
 * mb-codec.h - Modbus data types and word/byte orders, without a device.
 *
 * Registers are the 16-bit values libmodbus hands over, in address order.
 * A value of N registers is read as 2N bytes; the order names where the
 * bytes of the value (A = most significant) sit:
 *
 *   ABCD  big-endian words, big-endian bytes (the Modbus convention)
 *   CDAB  least significant word first, big-endian bytes in each word
 *   BADC  most significant word first, bytes swapped in each word
 *   DCBA  fully little-endian
 *
 * The same two rules (word order reversed? bytes swapped?) extend to 64-bit
 * values: ABCD is ABCDEFGH, CDAB is GHEFCDAB, BADC is BADCFEHG and DCBA is
 * HGFEDCBA. For a 16-bit value only the byte swap applies. A string keeps
 * its characters in address order; ABCD puts the first character in the
 * high byte of each register, BADC in the low byte.
 *
 * Pure functions, callable from any thread and from a fuzzer.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum mb_table {
	MB_COIL,
	MB_DISCRETE_INPUT,
	MB_INPUT_REGISTER,
	MB_HOLDING_REGISTER,
	MB_TABLE_COUNT
};

enum mb_type {
	MB_BOOL,
	MB_INT16,
	MB_UINT16,
	MB_INT32,
	MB_UINT32,
	MB_INT64,
	MB_UINT64,
	MB_FLOAT32,
	MB_FLOAT64,
	MB_STRING,
	MB_TYPE_COUNT
};

enum mb_order {
	MB_ABCD,
	MB_CDAB,
	MB_BADC,
	MB_DCBA,
	MB_ORDER_COUNT
};

/* NULL-terminated name lists indexed by the enums, for config parsing. */
extern const char *const mb_table_names[];
extern const char *const mb_type_names[];
extern const char *const mb_order_names[];

/* The longest string a point may hold, in registers (one read request). */
#define MB_STRING_MAX_REGISTERS 125

/* True for coils and discrete inputs, whose items are single bits. */
bool mb_table_is_bits(enum mb_table table);
/* True for coils and holding registers, the tables a master may write. */
bool mb_table_is_writable(enum mb_table table);

/*
 * Registers a value of TYPE occupies: 1 for bool (a bit of one register)
 * and the 16-bit types, 2 or 4 for the wider ones, LENGTH for a string.
 */
unsigned mb_type_registers(enum mb_type type, unsigned length);

/* True when ORDER means something for TYPE (CDAB/DCBA do not for strings). */
bool mb_order_valid(enum mb_type type, enum mb_order order);

/*
 * Decodes a number of TYPE (not bool, not string) from REGS, which holds
 * mb_type_registers(TYPE, 0) registers. 64-bit integers beyond 2^53 lose
 * precision in the double, as every reading does.
 */
double mb_decode(enum mb_type type, enum mb_order order, const uint16_t *regs);

/* Bit BIT (0 = least significant) of REG, as 0.0 or 1.0. */
double mb_decode_bit(uint16_t reg, unsigned bit);

/*
 * Encodes VALUE as TYPE (not string) into REGS (mb_type_registers(TYPE, 0)
 * registers). Bool takes only 0 and 1 and yields one register holding it.
 * Returns 0, or -ERANGE when TYPE cannot represent VALUE: out of range, not
 * an integer, NaN or infinite for an integer type, finite but too large for
 * a float32. Nothing is written to REGS then.
 */
int mb_encode(enum mb_type type, enum mb_order order, double value, uint16_t *regs);

/*
 * The raw value to encode for a write of VALUE as TYPE. The core divides
 * an engineering value by the point's scale, which leaves a setpoint of
 * 0.3 with scale 0.1 as 2.9999999999999996: for the integer types (and
 * bool), a VALUE within rounding error of an integer (relative 1e-9)
 * becomes that integer. Anything else comes back unchanged, so that
 * mb_encode() still refuses a real fraction such as 2.5.
 */
double mb_snap_integer(enum mb_type type, double value);

/*
 * Decodes a string of N registers into BUF (SIZE bytes, NUL-terminated).
 * The string ends at the first NUL byte; trailing spaces are dropped (the
 * usual padding) and bytes outside printable ASCII become '?', so that the
 * text is safe in JSON, SQL and logs. Returns the length written.
 */
size_t mb_decode_string(const uint16_t *regs, unsigned n, enum mb_order order, char *buf,
                        size_t size);

/*
 * Encodes TEXT into N registers, padded with NUL bytes. Returns 0, or
 * -ERANGE when TEXT is longer than 2N bytes. For tests and simulators: the
 * write ABI carries numbers only.
 */
int mb_encode_string(const char *text, unsigned n, enum mb_order order, uint16_t *regs);
