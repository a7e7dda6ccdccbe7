/* SPDX-License-Identifier: MIT */
/*
 * mb-tcp.h - Modbus TCP framing (the MBAP header) of read requests and the
 * checks of their answers, without a socket.
 *
 * libmodbus 3.1.6 frames an answer by its function code and byte count and
 * ignores the MBAP length field and the unit id: an answer whose length
 * field lies, or that another device sent, passes as good. The driver
 * therefore builds its TCP read requests itself and checks every field of
 * the answer here; libmodbus still does the waiting and the reading.
 *
 * Pure functions, callable from any thread and from a fuzzer.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* The largest Modbus TCP frame: a 7-byte MBAP header and a 253-byte PDU. */
#define MB_TCP_MAX_ADU 260
/* The size of a read request. */
#define MB_TCP_READ_REQUEST 12

/*
 * Writes the read request (function code FC 1..4, COUNT items from ADDR of
 * unit UNIT, transaction TID) into OUT. Returns its length.
 */
size_t mb_tcp_read_request(uint8_t out[MB_TCP_READ_REQUEST], uint16_t tid, uint8_t unit,
                           uint8_t fc, uint16_t addr, uint16_t count);

/*
 * Checks the answer ADU (LEN bytes, the MBAP header first) to the read
 * request (TID, UNIT, FC, COUNT). Returns 0 when it is a good answer (its
 * data, COUNT registers or bits, starts at ADU + 9), 1 when it is an
 * exception (*RET_EXCEPTION is the code), or -EBADMSG with what was wrong
 * in WHY ("transaction id 8, expected 7").
 */
int mb_tcp_check_answer(const uint8_t *adu, size_t len, uint16_t tid, uint8_t unit, uint8_t fc,
                        uint16_t count, int *ret_exception, char *why, size_t n);

/* The data of a good answer: COUNT big-endian registers, or COUNT bits (LSB first). */
void mb_tcp_unpack_registers(const uint8_t *data, unsigned count, uint16_t *regs);
void mb_tcp_unpack_bits(const uint8_t *data, unsigned count, uint8_t *bits);
