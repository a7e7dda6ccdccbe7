/* SPDX-License-Identifier: MIT */
/*
 * The CAN driver's receive path on frames from a hostile bus, on the fake
 * host (tests/plugin/fake-host.h): error frames of every class, remote
 * frames, own frames, unknown ids, lengths past the MTU's, and frames of
 * the selected messages of every shape (Intel, Motorola, signed, float,
 * double, a value table, CAN FD, a 29-bit id), too short or long.
 *
 * Input: a stream of frames, each as one byte choosing the id (a selected
 * message or any id with any flags), one for the MTU and msg_flags, one for
 * the length, then the payload. Besides the sanitizers, it checks that
 * every reading is good or a decode error (the fake host refuses ids that
 * were not declared), that a frame gives at most one reading per selected
 * signal, that the bus state stays one of four, and that the counters add
 * up.
 */
#include <stdbool.h>
#include <sys/socket.h>

#include <linux/can.h>
#include <linux/can/error.h>

#include "can-driver.h"
#include "fake-host.h"
#include "fuzz-input.h"

static const char config[] =
	"{\"interface\": \"can0\","
	" \"messages\": ["
	"  {\"name\": \"A\", \"id\": 256, \"size\": 8, \"cycle_time\": \"100ms\", \"signals\": ["
	"    {\"name\": \"u16\", \"start_bit\": 0, \"length\": 16, \"factor\": 0.25},"
	"    {\"name\": \"m12\", \"start_bit\": 23, \"length\": 12, \"byte_order\": \"motorola\","
	"     \"signed\": true, \"factor\": 0.1, \"offset\": -40},"
	"    {\"name\": \"gear\", \"start_bit\": 32, \"length\": 3,"
	"     \"values\": {\"0\": \"park\", \"3\": \"drive\"}},"
	"    {\"name\": \"bit\", \"start_bit\": 63, \"length\": 1}]},"
	"  {\"name\": \"F\", \"id\": 305419896, \"extended\": true, \"size\": 8, \"signals\": ["
	"    {\"name\": \"f\", \"start_bit\": 0, \"length\": 32, \"type\": \"float\"},"
	"    {\"name\": \"s32\", \"start_bit\": 32, \"length\": 32, \"signed\": true}]},"
	"  {\"name\": \"D\", \"id\": 768, \"size\": 64, \"fd\": true, \"signals\": ["
	"    {\"name\": \"d\", \"start_bit\": 7, \"length\": 64, \"type\": \"double\","
	"     \"byte_order\": \"motorola\"},"
	"    {\"name\": \"tail\", \"start_bit\": 496, \"length\": 16}]}],"
	" \"signals\": ["
	"  {\"select\": \"A.*\", \"text\": true, \"stale_timeout\": \"0\"},"
	"  {\"select\": \"F.*\", \"on_change\": true},"
	"  {\"select\": \"D.*\", \"min_interval\": \"10ms\"}]}";

static const uint32_t ids[] = { 256, 305419896u | CAN_EFF_FLAG, 768 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	struct fuzz_in in = {data, size};
	struct can_driver *drv;
	uint64_t frames = 0, errors = 0;
	m2m_host *h;
	void *d = NULL;
	int r;

	h = fake_host_new();
	r = fake_host_create(h, &can_driver_ops, fake_host_api(1), config, &d);
	FUZZ_ASSERT(r == 0);
	FUZZ_ASSERT(fake_host_unknown_keys(h) == 0);
	drv = d;
	FUZZ_ASSERT(drv->n_rx == 3);

	while (in.n > 0) {
		struct canfd_frame f = { 0 };
		uint8_t pick = fuzz_u8(&in), how = fuzz_u8(&in);
		size_t mtu = (how & 1) ? CANFD_MTU : CAN_MTU, before = h->n_readings;
		int flags = (how & 2) ? MSG_CONFIRM : 0;
		uint32_t id;

		if (pick < 192) {
			id = ids[pick % 3];
		} else {
			id = (uint32_t)fuzz_u8(&in) << 24 | (uint32_t)fuzz_u8(&in) << 16;
			id |= (uint32_t)fuzz_u16(&in);
		}
		if (how & 4)
			id |= CAN_RTR_FLAG;
		if (how & 8)
			mtu = how >> 4; /* a length recvmmsg would never give: ignored */
		f.can_id = id;
		f.len = fuzz_u8(&in);
		for (size_t i = 0; i < sizeof(f.data) && i < f.len && in.n > 0; i++)
			f.data[i] = fuzz_u8(&in);
		can_io_frame(drv, &f, mtu, flags, 1000, 1000 + (int64_t)frames * 1000);
		can_flush_readings(drv);
		if (mtu == CAN_MTU || mtu == CANFD_MTU) {
			if (id & CAN_ERR_FLAG)
				errors++;
			else
				frames++;
		}
		FUZZ_ASSERT(drv->bus_state >= CAN_BUS_ERROR_ACTIVE && drv->bus_state <= CAN_BUS_OFF);
		FUZZ_ASSERT(drv->frames == frames && drv->error_frames == errors);
		/* At most a reading per selected signal, and the bus state. */
		FUZZ_ASSERT(h->n_readings - before <= drv->max_sels + 1);
	}
	/* Good or a decode error: no socket fails here, and nothing goes stale without a tick. */
	for (size_t i = 0; i < h->n_readings; i++)
		FUZZ_ASSERT(h->readings[i].quality == M2M_QUALITY_GOOD ||
		            h->readings[i].quality == M2M_QUALITY_DECODE_ERROR);
	can_driver_ops.destroy(drv);
	fake_host_free(h);
	return 0;
}
