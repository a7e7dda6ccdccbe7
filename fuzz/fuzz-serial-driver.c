/* SPDX-License-Identifier: MIT */
/*
 * The serial driver's own frame handling on the bytes of a line: the
 * driver is created on the fake host (tests/plugin/fake-host.h) from one of
 * four configurations (NMEA with named, index, XDR, bool and text points;
 * a regex scale with a polled request and an acknowledged write; a
 * delimited sensor; fixed columns in STX/ETX telegrams with an idle gap),
 * and the input's bytes go through ser_on_bytes(), the path a read takes:
 * the framer, the NMEA resynchronisation on the last '$', the format, each
 * point's extraction and conversion, the answer matching of a request or
 * a write that the input puts in flight, and the readings' submit.
 *
 * Invariants: every reading is of a declared point (the fake host checks
 * it), at most one per point and frame, and a good one is finite; no
 * reading is left unsubmitted; the framer never holds more than
 * max_length bytes; the statistics only grow.
 *
 * Input: a configuration byte, then chunks: a length byte, a flags byte
 * (bit 0: put the request in flight, bit 1: a write awaiting its
 * acknowledgement, bit 2: a pause of 60 ms before the chunk), the bytes.
 */
#include <math.h>
#include <stdbool.h>
#include <stddef.h>

#include "fake-host.h"
#include "fuzz-input.h"
#include "serial-driver.h"

static const char *const configs[] = {
	"{\"port\":\"/dev/null\",\"device\":\"gps\",\"format\":\"nmea\",\"checksum\":\"optional\","
	"\"timestamp\":\"sentence\",\"points\":["
	"{\"name\":\"lat\",\"sentence\":\"RMC\",\"field\":\"latitude\"},"
	"{\"name\":\"lon\",\"sentence\":\"GNRMC\",\"field\":\"longitude\"},"
	"{\"name\":\"alt\",\"sentence\":\"GGA\",\"field\":\"altitude\"},"
	"{\"name\":\"f3\",\"sentence\":\"GSV\",\"index\":3},"
	"{\"name\":\"air\",\"sentence\":\"XDR\",\"xdr\":\"TempAir\"},"
	"{\"name\":\"ok\",\"sentence\":\"RMC\",\"field\":\"status\",\"kind\":\"bool\",\"on\":\"A\"},"
	"{\"name\":\"mode\",\"sentence\":\"RMC\",\"field\":\"mode\",\"kind\":\"string\"}]}",

	"{\"port\":\"/dev/null\",\"device\":\"scale\",\"format\":\"regex\",\"max_length\":64,"
	"\"requests\":[{\"name\":\"w\",\"command\":\"W\\r\",\"response\":\"^(ST|US),\"}],"
	"\"points\":["
	"{\"name\":\"w\",\"request\":\"w\",\"pattern\":\"^(?<s>ST|US),GS,(?<w>[-+ ]?[0-9.]+)kg$\","
	"\"group\":\"w\"},"
	"{\"name\":\"st\",\"request\":\"w\",\"kind\":\"bool\",\"on\":\"ST\",\"off\":\"US\","
	"\"pattern\":\"^(?<s>ST|US),GS,(?<w>[-+ ]?[0-9.]+)kg$\",\"group\":\"s\"},"
	"{\"name\":\"t\",\"kind\":\"string\",\"pattern\":\"^(a|b|ab)*+c(.*)$\",\"group\":2},"
	"{\"name\":\"sp\",\"writable\":true,\"write\":\"SP{value:.1f}\\r\",\"ack\":\"^OK\","
	"\"nak\":\"^ERR\",\"pattern\":\"^SP=(.*)$\"}]}",

	"{\"port\":\"/dev/null\",\"device\":\"env\",\"format\":\"delimited\",\"separator\":\";\","
	"\"decimal\":\",\",\"max_length\":48,\"end\":\"\\r\\n\",\"points\":["
	"{\"name\":\"a\",\"field\":0},{\"name\":\"b\",\"field\":1},"
	"{\"name\":\"c\",\"field\":2,\"kind\":\"string\"},"
	"{\"name\":\"d\",\"field\":9,\"kind\":\"bool\",\"on\":\"1\"}]}",

	"{\"port\":\"/dev/null\",\"device\":\"m\",\"format\":\"fixed\",\"framing\":\"start_end\","
	"\"start\":\"\\\\x02\",\"end\":\"\\\\x03\",\"idle\":\"20ms\",\"max_length\":24,\"points\":["
	"{\"name\":\"e\",\"start\":0,\"width\":8},{\"name\":\"p\",\"start\":8,\"width\":6},"
	"{\"name\":\"id\",\"start\":14,\"width\":10,\"kind\":\"string\"}]}",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	m2m_host *h = fake_host_new();
	struct ser_driver *drv = NULL;
	struct m2m_write w = { 0 };
	uint64_t before[SER_STAT_COUNT] = { 0 };
	void *d = NULL;

	FUZZ_ASSERT(fake_host_create(h, &ser_driver_ops, fake_host_api(1),
	                             configs[fuzz_u8(&in) % 4], &d) == 0);
	drv = d;
	/* Running without a port: what start() would do but open the tty. */
	drv->running = true;
	while (in.n > 0) {
		size_t len = fuzz_u8(&in), n0 = h->n_readings;
		uint8_t flags = fuzz_u8(&in);
		uint64_t frames0;

		if (len > in.n)
			len = in.n;
		if ((flags & 1) && drv->n_requests && drv->txn == SER_TXN_NONE) {
			drv->txn = SER_TXN_REQUEST;
			drv->cur = &drv->requests[0];
		}
		if ((flags & 2) && drv->txn == SER_TXN_NONE) {
			for (size_t i = 0; i < drv->n_points; i++)
				if (drv->points[i].tpl) {
					w = (struct m2m_write){ 0 };
					drv->cur_write = (struct ser_write){ .p = &drv->points[i], .req = &w };
					drv->txn = SER_TXN_WRITE;
					break;
				}
		}
		if (flags & 4)
			fake_host_advance(h, 60 * US_PER_MS);
		frames0 = drv->framer.stats.frames;
		ser_on_bytes(drv, in.p, len);
		in.p += len;
		in.n -= len;
		FUZZ_ASSERT(drv->n_rd == 0);
		FUZZ_ASSERT(drv->framer.len <= drv->fcfg.max_len + SF_DELIM_MAX);
		FUZZ_ASSERT(h->n_readings - n0 <=
		            drv->n_points * (drv->framer.stats.frames - frames0 + 1));
		FUZZ_ASSERT(w.calls <= 1);
		ser_publish_stats(drv);
		for (int i = 0; i < SER_STAT_COUNT; i++) {
			FUZZ_ASSERT(drv->counts[i] >= before[i]);
			before[i] = drv->counts[i];
		}
	}
	for (size_t i = 0; i < h->n_readings; i++)
		FUZZ_ASSERT(h->readings[i].quality != M2M_QUALITY_GOOD ||
		            isfinite(h->readings[i].value));
	/* A write the input left waiting is completed by the stop, exactly once. */
	ser_driver_ops.destroy(drv);
	FUZZ_ASSERT(w.calls <= 1);
	fake_host_free(h);
	return 0;
}
