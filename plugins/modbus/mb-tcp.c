/* SPDX-License-Identifier: MIT */
/* mb-tcp.c - Modbus TCP framing of reads and the checks of answers. See mb-tcp.h. */
#include "mb-tcp.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

size_t mb_tcp_read_request(uint8_t out[MB_TCP_READ_REQUEST], uint16_t tid, uint8_t unit,
                           uint8_t fc, uint16_t addr, uint16_t count)
{
	put16(out, tid);
	put16(out + 2, 0);  /* protocol id: Modbus */
	put16(out + 4, 6);  /* unit id + PDU */
	out[6] = unit;
	out[7] = fc;
	put16(out + 8, addr);
	put16(out + 10, count);
	return MB_TCP_READ_REQUEST;
}

static int bad(char *why, size_t n, const char *what, unsigned got, unsigned want)
{
	snprintf(why, n, "%s %u, expected %u", what, got, want);
	return -EBADMSG;
}

int mb_tcp_check_answer(const uint8_t *adu, size_t len, uint16_t tid, uint8_t unit, uint8_t fc,
                        uint16_t count, int *ret_exception, char *why, size_t n)
{
	bool bits = fc == 1 || fc == 2;
	unsigned want_bytes = bits ? (count + 7u) / 8u : 2u * count;

	if (len < 9) {
		snprintf(why, n, "an answer of %zu bytes, shorter than any Modbus TCP answer", len);
		return -EBADMSG;
	}
	if (len > MB_TCP_MAX_ADU)
		return bad(why, n, "a frame of", (unsigned)len, MB_TCP_MAX_ADU);
	/* In the order a reader of a capture checks them: whose, what, how long. */
	if (be16(adu) != tid)
		return bad(why, n, "transaction id", be16(adu), tid);
	if (be16(adu + 2) != 0)
		return bad(why, n, "protocol id", be16(adu + 2), 0);
	if (be16(adu + 4) != len - 6)
		return bad(why, n, "MBAP length field", be16(adu + 4), (unsigned)(len - 6));
	if (adu[6] != unit)
		return bad(why, n, "unit id", adu[6], unit);
	if (adu[7] == (fc | 0x80)) {
		if (len != 9)
			return bad(why, n, "exception answer of length", (unsigned)len, 9);
		*ret_exception = adu[8];
		return 1;
	}
	if (adu[7] != fc)
		return bad(why, n, "function code", adu[7], fc);
	if (adu[8] != want_bytes)
		return bad(why, n, "byte count", adu[8], want_bytes);
	if (len != 9 + want_bytes)
		return bad(why, n, "answer length", (unsigned)len, 9 + want_bytes);
	return 0;
}

void mb_tcp_unpack_registers(const uint8_t *data, unsigned count, uint16_t *regs)
{
	for (unsigned i = 0; i < count; i++)
		regs[i] = be16(data + 2 * i);
}

void mb_tcp_unpack_bits(const uint8_t *data, unsigned count, uint8_t *bits)
{
	for (unsigned i = 0; i < count; i++)
		bits[i] = (uint8_t)((data[i / 8] >> (i % 8)) & 1);
}
