/* SPDX-License-Identifier: MIT */
/*
 * can-signal.h - signals in a frame's payload: decode, encode, multiplexer
 * resolution, and the fields of a J1939 id.
 *
 * Bit numbering is DBC's: bit b is bit b % 8 (0 = least significant) of
 * byte b / 8. An Intel (little-endian) signal starts at its least
 * significant bit and goes up through the bytes. A Motorola (big-endian)
 * signal's start bit is its most significant bit; going towards the least
 * significant bit it goes down within a byte and from bit 0 of a byte on
 * to bit 7 of the next ("sawtooth" numbering).
 *
 * Pure functions, callable from any thread and from a fuzzer. Payloads are
 * up to CAN_MAX_PAYLOAD (64) bytes; a frame shorter than a signal needs
 * gives -ENODATA for that signal, never a read past LEN.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "can-dbc.h"

/*
 * Checks that a signal of LENGTH bits (1..64) at START_BIT in the given
 * byte order fits in a CAN FD payload (64 bytes). Returns true and sets
 * *RET_BYTES to the payload length it needs (the index of its last byte
 * plus one).
 */
bool can_signal_layout(unsigned start_bit, unsigned length, bool big_endian, unsigned *ret_bytes);

/*
 * Sets in MASK (CAN_MAX_PAYLOAD bytes) the bits the signal occupies, for
 * overlap checks. The layout must be valid (can_signal_layout).
 */
void can_signal_mask(const struct can_signal *s, uint8_t mask[CAN_MAX_PAYLOAD]);

/* The signal's raw bits from DATA (LEN bytes): 0, or -ENODATA when LEN is too short. */
int can_signal_get_raw(const struct can_signal *s, const uint8_t *data, size_t len,
                       uint64_t *ret_raw);

/* Puts RAW's low bits into DATA (LEN bytes), leaving the other bits: 0 or -ENODATA. */
int can_signal_put_raw(const struct can_signal *s, uint64_t raw, uint8_t *data, size_t len);

/*
 * The number raw bits stand for, before factor and offset: the unsigned
 * or sign-extended integer, or the IEEE float or double.
 */
double can_signal_raw_number(const struct can_signal *s, uint64_t raw);

/* The physical value of raw bits: raw_number * factor + offset. */
double can_signal_physical(const struct can_signal *s, uint64_t raw);

/*
 * The raw bits for physical value V: (V - offset) / factor rounded to the
 * nearest integer, or the float/double. Returns 0, -EDOM for a NaN or
 * infinity (for an integer signal), -ERANGE when the integer does not fit
 * in the signal's bits (a float signal takes any double, as a float rounds).
 */
int can_signal_to_raw(const struct can_signal *s, double v, uint64_t *ret_raw);

/*
 * Whether signal INDEX of M is in the frame DATA (LEN bytes): 1 when it is
 * not multiplexed, or when each multiplexer above it (nested for extended
 * multiplexing) is present and its raw value selects it; 0 when a
 * multiplexer selects something else; -ENODATA when a multiplexer the
 * answer depends on lies beyond LEN.
 */
int can_signal_present(const struct can_message *m, size_t index, const uint8_t *data, size_t len);

/*
 * Decodes signal INDEX of M from DATA (LEN bytes) into the physical value
 * *RET (and the raw bits in *RET_RAW when not NULL). Returns 0, -ENOENT
 * when the multiplexer leaves the signal out of this frame, or -ENODATA
 * when the frame is too short for it.
 */
int can_signal_decode(const struct can_message *m, size_t index, const uint8_t *data, size_t len,
                      double *ret, uint64_t *ret_raw);

/*
 * Encodes physical value V into signal INDEX of M in DATA (LEN bytes),
 * leaving the other bits, and sets the multiplexers above it to a value
 * that selects it (the lowest of each range). Returns 0, the errors of
 * can_signal_to_raw, -ENODATA when LEN is too short for the signal or a
 * multiplexer above it, or -ENOENT when a multiplexed signal has no
 * multiplexer; DATA is unchanged on failure.
 */
int can_signal_encode(const struct can_message *m, size_t index, double v, uint8_t *data,
                      size_t len);

/*
 * J1939 (SAE J1939-21) fields of a 29-bit id. The PGN is 18 bits: the
 * extended data page, the data page, the PDU format (PF) and, only when PF
 * >= 240 (PDU2, broadcast), the PDU specific byte (PS). When PF < 240
 * (PDU1) PS is the destination address and not part of the PGN.
 */
uint32_t can_j1939_pgn(uint32_t id);
/* The destination address: PS for PDU1, 0xff (global) for PDU2. */
uint8_t can_j1939_destination(uint32_t id);
uint8_t can_j1939_source(uint32_t id);
/* 0 (highest) to 7. */
unsigned can_j1939_priority(uint32_t id);
