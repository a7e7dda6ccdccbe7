/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the Modbus driver on the fake host (tests/plugin/fake-host.h),
 * without a device: the test links the driver's own objects (the ones
 * modbus.so is linked from) and puts a scripted device in libmodbus's
 * place through the driver's I/O table (struct mb_io, mb-driver.h).
 * Everything above that table is the real driver: config parsing, the
 * plan, the bus work that turns answers into readings, the loop side with
 * device states, statistics and writes.
 *
 * What a real device does on the wire (framing, timeouts, retries, RTU) is
 * tested against pymodbus by tests/modbus/test_modbus_*.py.
 */
#include "test.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stddef.h>

#include "fake-host.h"
#include "mb-driver.h"

/* One Modbus device on the bus, as the test scripts it. */
struct device {
	uint16_t regs[65536];   /* holding registers */
	uint16_t inputs[65536]; /* input registers */
	uint8_t coils[65536];
	bool bad[65536];        /* addresses that answer exception 02 */
	int fail;               /* a negative errno every request gets, or 0 */
	bool ignore_writes;     /* answer writes, change nothing */
};

/* A request the device saw. */
struct seen {
	int unit, fc, addr, count;
};

/* The scripted bus: the I/O table first, so that drv->io leads back to it. */
struct script {
	struct mb_io io;
	struct device dev[4]; /* by unit id 1..3 */
	struct seen seen[256];
	size_t n_seen;
	int selected;          /* unit id of the last select */
	int opens, closes;
	/*
	 * Plays the loop thread between two requests of a cycle: before each
	 * request, HOST delivers the driver's wake-up watch when its fd is
	 * readable, as the loop would while the bus thread waits for the
	 * answer, and what was submitted by then is noted in submitted[] and
	 * texts[].
	 */
	m2m_host *host;
	size_t submitted[256], texts[256];
	size_t fail_after;     /* when not 0: requests past this many time out */
};

static struct script *script_of(struct mb_driver *drv)
{
	return (struct script *)(void *)((char *)(uintptr_t)drv->io - offsetof(struct script, io));
}

static int s_open(struct mb_driver *drv)
{
	script_of(drv)->opens++;
	return 0;
}

static void s_close(struct mb_driver *drv)
{
	script_of(drv)->closes++;
}

static void s_select(struct mb_driver *drv, const struct mb_device *dev)
{
	script_of(drv)->selected = dev->unit_id;
}

static int s_request(struct mb_driver *drv, const struct mb_device *mdev,
                     const struct mb_request *rq, unsigned *requests)
{
	struct script *s = script_of(drv);
	struct device *d;

	ASSERT_EQ(s->selected, mdev->unit_id);
	ASSERT(mdev->unit_id >= 1 && mdev->unit_id <= 3);
	d = &s->dev[mdev->unit_id];
	ASSERT(s->n_seen < sizeof(s->seen) / sizeof(s->seen[0]));
	if (s->host) {
		struct pollfd pfd = { .fd = drv->wake_fd, .events = POLLIN };

		/* The loop wakes only when the bus thread said so. */
		if (poll(&pfd, 1, 0) == 1)
			fake_host_io_fire(s->host, fake_host_io(s->host, drv->wake_fd), M2M_IO_READ);
		s->submitted[s->n_seen] = s->host->n_readings;
		s->texts[s->n_seen] = s->host->n_texts;
	}
	s->seen[s->n_seen++] = (struct seen){ mdev->unit_id, rq->fc, rq->addr, rq->count };
	(*requests)++;
	if (d->fail)
		return d->fail;
	if (s->fail_after && s->n_seen > s->fail_after)
		return -ETIMEDOUT;
	for (int i = 0; i < rq->count; i++)
		if (d->bad[rq->addr + i])
			return -EMBXILADD;
	for (int i = 0; i < rq->count; i++) {
		int a = rq->addr + i;

		switch (rq->fc) {
		case FC_READ_COILS:
			rq->bits[i] = d->coils[a];
			break;
		case FC_READ_HOLDING_REGISTERS:
			rq->regs[i] = d->regs[a];
			break;
		case FC_READ_INPUT_REGISTERS:
			rq->regs[i] = d->inputs[a];
			break;
		case FC_WRITE_COIL:
		case FC_WRITE_COILS:
			if (!d->ignore_writes)
				d->coils[a] = rq->bits[i];
			break;
		case FC_WRITE_REGISTER:
		case FC_WRITE_REGISTERS:
			if (!d->ignore_writes)
				d->regs[a] = rq->regs[i];
			break;
		default:
			TEST_FAIL("function code %d", rq->fc);
		}
	}
	return 0;
}

static struct script *script_new(void)
{
	struct script *s = calloc(1, sizeof(*s));

	ASSERT(s);
	s->io = (struct mb_io){ .open = s_open, .close = s_close, .select = s_select,
		                .request = s_request };
	return s;
}

/* Creates the driver from JSON on H and puts S on its bus. */
static struct mb_driver *create(m2m_host *h, const struct m2m_host_api *api, const char *json,
                                struct script *s)
{
	void *d = NULL;

	ASSERT_OK(fake_host_create(h, &mb_driver_ops, api, json, &d));
	ASSERT(d);
	ASSERT_EQ(h->errors, 0);
	ASSERT_EQ(fake_host_unknown_keys(h), 0);
	((struct mb_driver *)d)->io = &s->io;
	return d;
}

static void expect_error(const char *json, const char *msg)
{
	m2m_host *h = fake_host_new();
	void *d = NULL;

	ASSERT_EQ(fake_host_create(h, &mb_driver_ops, fake_host_api(1), json, &d), -EINVAL);
	ASSERT(d == NULL);
	ASSERT_STR_CONTAINS(h->error, msg);
	fake_host_free(h);
}

#define BUS "\"transport\":\"tcp\",\"host\":\"127.0.0.1\",\"port\":1502,"
#define DEV(points) "{" BUS "\"devices\":[{\"name\":\"dev\",\"unit_id\":1,\"points\":[" points "]}]}"

static void test_config_errors(void)
{
	expect_error("{\"devices\":[]}", "missing key 'host'");
	expect_error("{" BUS "\"devices\":[]}", "expected 'devices', a non-empty array");
	expect_error("{\"host\":\"h\",\"port\":70000,\"devices\":[]}", "'port'");
	expect_error("{" BUS "\"timeout\":\"2m\",\"devices\":[]}",
	             "expected a duration from 1ms to 60s");
	expect_error("{" BUS "\"devices\":[{\"name\":\"a/b\",\"points\":[]}]}", "must not contain '/'");
	expect_error("{" BUS "\"devices\":[{\"name\":\"a\",\"points\":[]}]}", "needs 'points'");
	expect_error("{" BUS "\"devices\":[{\"name\":\"a\",\"unit_id\":250,\"points\":[]}]}",
	             "expected 0..247 or 255");
	expect_error("{" BUS "\"devices\":["
	             "{\"name\":\"a\",\"unit_id\":1,\"points\":[{\"name\":\"p\",\"table\":\"coil\",\"address\":1}]},"
	             "{\"name\":\"b\",\"unit_id\":1,\"points\":[{\"name\":\"p\",\"table\":\"coil\",\"address\":1}]}]}",
	             "unit_id 1 is already device \"a\"");
	expect_error(DEV("{\"name\":\"p\",\"address\":1}"), "missing key 'table'");
	expect_error(DEV("{\"name\":\"p\",\"table\":\"coil\"}"), "missing key 'address'");
	expect_error(DEV("{\"name\":\"p\",\"table\":\"coil\",\"address\":1,\"type\":\"int16\"}"),
	             "does not fit table coil");
	expect_error(DEV("{\"name\":\"p\",\"table\":\"holding_register\",\"address\":1,\"type\":\"bool\"}"),
	             "needs 'bit'");
	expect_error(DEV("{\"name\":\"p\",\"table\":\"holding_register\",\"address\":1,"
	                 "\"type\":\"string\",\"kind\":\"string\"}"), "needs 'length'");
	expect_error(DEV("{\"name\":\"p\",\"table\":\"input_register\",\"address\":1,\"writable\":true}"),
	             "read-only");
	expect_error(DEV("{\"name\":\"p\",\"table\":\"holding_register\",\"address\":1,\"verify\":true}"),
	             "needs writable = true");
	expect_error(DEV("{\"name\":\"p\",\"table\":\"holding_register\",\"address\":1,"
	                 "\"interval\":\"1500us\"}"), "whole number of milliseconds");
	expect_error(DEV("{\"name\":\"p\",\"table\":\"holding_register\",\"address\":65535,"
	                 "\"type\":\"uint32\"}"), "runs past address 65535");
	expect_error(DEV("{\"name\":\"p\",\"table\":\"holding_register\",\"address\":1,\"type\":\"uint32\"},"
	                 "{\"name\":\"q\",\"table\":\"holding_register\",\"address\":2}"),
	             "point \"q\" (holding_register 2) overlaps point \"p\"");
}

/* A key that does not apply stays unread, so that the host reports it. */
static void test_unread_keys(void)
{
	m2m_host *h = fake_host_new();
	void *d = NULL;

	ASSERT_OK(fake_host_create(h, &mb_driver_ops, fake_host_api(1),
	                           "{" BUS "\"baud\":9600,\"devices\":[{\"name\":\"dev\",\"points\":["
	                           "{\"name\":\"p\",\"table\":\"coil\",\"address\":1,\"order\":\"CDAB\"}]}]}",
	                           &d));
	ASSERT_EQ(fake_host_unknown_keys(h), 2); /* baud on TCP, order of a coil */
	ASSERT_STR_EQ(h->unknown, "baud");
	/* A coil is a bool without kind = "bool" being written. */
	ASSERT_STR_EQ(h->points[0].kind, "bool");
	mb_driver_ops.destroy(d);
	fake_host_free(h);
}

static const char plant[] = "{" BUS "\"timeout\":\"200ms\",\"retries\":2,\"devices\":["
	"{\"name\":\"dev\",\"unit_id\":1,\"interval\":\"1s\",\"points\":["
	"{\"name\":\"a\",\"table\":\"holding_register\",\"address\":0},"
	"{\"name\":\"b\",\"table\":\"holding_register\",\"address\":2,\"type\":\"int16\"},"
	"{\"name\":\"t\",\"table\":\"holding_register\",\"address\":10,\"type\":\"float32\"},"
	"{\"name\":\"bit3\",\"table\":\"holding_register\",\"address\":12,\"type\":\"bool\",\"bit\":3},"
	"{\"name\":\"far\",\"table\":\"holding_register\",\"address\":200,\"writable\":true},"
	"{\"name\":\"sn\",\"table\":\"input_register\",\"address\":0,\"type\":\"string\","
	" \"length\":4,\"kind\":\"string\"},"
	"{\"name\":\"run\",\"table\":\"coil\",\"address\":7,\"writable\":true,\"verify\":true}]},"
	"{\"name\":\"other\",\"unit_id\":2,\"points\":["
	"{\"name\":\"x\",\"table\":\"holding_register\",\"address\":5}]}]}";

/* The plan, a poll's answers decoded into submits, and the statistics. */
static void test_poll(const struct m2m_host_api *api)
{
	m2m_host *h = fake_host_new();
	struct script *s = script_new();
	struct mb_driver *drv = create(h, api, plant, s);
	struct device *d1 = &s->dev[1];
	const struct m2m_reading *r;

	d1->regs[0] = 1234;
	d1->regs[2] = (uint16_t)-5;
	ASSERT_OK(mb_encode(MB_FLOAT32, MB_ABCD, 21.5, &d1->regs[10]));
	d1->regs[12] = 1u << 3;
	d1->regs[200] = 7;
	ASSERT_OK(mb_encode_string("SN42", 4, MB_ABCD, &d1->inputs[0]));
	d1->coils[7] = 1;
	s->dev[2].regs[5] = 99;

	ASSERT_EQ(h->timers_started, 0);
	ASSERT_OK(mb_driver_ops.start(drv));
	ASSERT_EQ(s->opens, 1);
	ASSERT_EQ(fake_host_timers(h), 2); /* one per device and interval */
	/* The first poll is right away. */
	fake_host_advance(h, 0);
	/* dev: 0..12 in one read (gaps up to 16), 200 alone, the string, the coil. */
	ASSERT_EQ(s->n_seen, 5);
	ASSERT_EQ(s->seen[0].fc, FC_READ_COILS);
	ASSERT_EQ(s->seen[0].addr, 7);
	ASSERT_EQ(s->seen[1].fc, FC_READ_INPUT_REGISTERS);
	ASSERT_EQ(s->seen[1].count, 4);
	ASSERT_EQ(s->seen[2].fc, FC_READ_HOLDING_REGISTERS);
	ASSERT_EQ(s->seen[2].addr, 0);
	ASSERT_EQ(s->seen[2].count, 13);
	ASSERT_EQ(s->seen[3].addr, 200);
	ASSERT_EQ(s->seen[3].count, 1);
	ASSERT_EQ(s->seen[4].unit, 2);
	ASSERT_DOUBLE_EQ(fake_host_stat_value(h, "requests_per_cycle", "dev"), 4, 0);
	ASSERT_DOUBLE_EQ(fake_host_stat_value(h, "requests_per_cycle", "other"), 1, 0);

	/* One submit per group, every value decoded from its offset. */
	ASSERT_EQ(h->submits, 2);
	r = fake_host_reading(h, fake_host_point(h, "dev/a"));
	ASSERT(r && r->quality == M2M_QUALITY_GOOD);
	ASSERT_DOUBLE_EQ(r->value, 1234, 0);
	ASSERT_EQ(r->ts_us, h->now_us);
	ASSERT_DOUBLE_EQ(fake_host_reading(h, fake_host_point(h, "dev/b"))->value, -5, 0);
	ASSERT_DOUBLE_EQ(fake_host_reading(h, fake_host_point(h, "dev/t"))->value, 21.5, 0);
	ASSERT_DOUBLE_EQ(fake_host_reading(h, fake_host_point(h, "dev/bit3"))->value, 1, 0);
	ASSERT_DOUBLE_EQ(fake_host_reading(h, fake_host_point(h, "dev/far"))->value, 7, 0);
	ASSERT_DOUBLE_EQ(fake_host_reading(h, fake_host_point(h, "dev/run"))->value, 1, 0);
	ASSERT_DOUBLE_EQ(fake_host_reading(h, fake_host_point(h, "other/x"))->value, 99, 0);
	ASSERT_STR_EQ(fake_host_text(h, fake_host_point(h, "dev/sn"))->text, "SN42");

	/* Both devices answered: online, and counted. */
	if (api->struct_size > offsetof(struct m2m_host_api, device_state)) {
		ASSERT_EQ(fake_host_state(h, "dev")->state, M2M_DEVICE_ONLINE);
		ASSERT_EQ(fake_host_state(h, "other")->state, M2M_DEVICE_ONLINE);
		ASSERT(fake_host_stat(h, "polls", "dev")->declared);
		ASSERT_EQ(fake_host_stat(h, "polls", "dev")->kind, M2M_STAT_COUNTER);
		ASSERT_EQ(fake_host_stat(h, "requests_per_cycle", "dev")->kind, M2M_STAT_GAUGE);
		ASSERT_EQ(h->n_events, 0);
	} else {
		/* A 1.0 host: events and "name.device" stats, as before ABI 1.1. */
		ASSERT_EQ(h->n_states, 0);
		ASSERT_EQ(fake_host_events(h, "dev", "online"), 1);
		ASSERT(!fake_host_stat(h, "polls", "dev")->declared);
		ASSERT_STR_EQ(fake_host_stat(h, "polls", "dev")->name, "polls.dev");
	}
	ASSERT_DOUBLE_EQ(fake_host_stat_value(h, "online", "dev"), 1, 0);
	ASSERT_DOUBLE_EQ(fake_host_stat_value(h, "polls", "dev"), 1, 0);
	ASSERT_DOUBLE_EQ(fake_host_stat_value(h, "requests", "dev"), 4, 0);
	ASSERT_DOUBLE_EQ(fake_host_stat_value(h, "errors", "dev"), -1, 0);

	/* The next poll after the interval, not before. */
	fake_host_advance(h, 999 * 1000);
	ASSERT_EQ(h->submits, 2);
	d1->regs[0] = 4321;
	fake_host_advance(h, 1000);
	ASSERT_EQ(h->submits, 4);
	ASSERT_DOUBLE_EQ(fake_host_reading(h, fake_host_point(h, "dev/a"))->value, 4321, 0);
	ASSERT_DOUBLE_EQ(fake_host_stat_value(h, "polls", "dev"), 2, 0);

	mb_driver_ops.stop(drv);
	ASSERT_EQ(fake_host_timers(h), 0);
	mb_driver_ops.destroy(drv);
	ASSERT_EQ(s->closes, 1);
	free(s);
	fake_host_free(h);
}

static void test_poll_1_1(void)
{
	test_poll(fake_host_api(1));
}

static void test_poll_1_0(void)
{
	test_poll(fake_host_api(0));
}

/* A device that stops answering: offline with why, backoff, online again. */
static void test_offline(void)
{
	m2m_host *h = fake_host_new();
	struct script *s = script_new();
	struct mb_driver *drv = create(h, fake_host_api(1), plant, s);
	uint32_t a = fake_host_point(h, "dev/a");
	const struct fake_state *st;
	size_t seen;

	ASSERT_OK(mb_driver_ops.start(drv));
	fake_host_advance(h, 0);
	ASSERT_EQ(fake_host_state(h, "dev")->state, M2M_DEVICE_ONLINE);

	s->dev[1].fail = -ETIMEDOUT;
	fake_host_advance(h, 1000 * 1000);
	st = fake_host_state(h, "dev");
	ASSERT_EQ(st->state, M2M_DEVICE_OFFLINE);
	ASSERT_STR_EQ(st->reason, "timeout: no answer within 200ms (3 attempts)");
	ASSERT_EQ(fake_host_reading(h, a)->quality, M2M_QUALITY_TIMEOUT);
	ASSERT(isnan(fake_host_reading(h, a)->value));
	/* The first failure ends the cycle: one request, the rest fail with it. */
	ASSERT_EQ(fake_host_reading(h, fake_host_point(h, "dev/run"))->quality, M2M_QUALITY_TIMEOUT);
	ASSERT_DOUBLE_EQ(fake_host_stat_value(h, "online", "dev"), 0, 0);
	ASSERT_DOUBLE_EQ(fake_host_stat_value(h, "errors", "dev"), 1, 0);
	/* The other device on the bus is not affected. */
	ASSERT_EQ(fake_host_state(h, "other")->state, M2M_DEVICE_ONLINE);

	/* Backoff: the next probe after the device's interval, then twice that. */
	seen = s->n_seen;
	fake_host_advance(h, 1000 * 1000);
	ASSERT_EQ(s->n_seen, seen + 2); /* a probe of dev, a poll of other */
	fake_host_advance(h, 1000 * 1000);
	ASSERT_EQ(s->n_seen, seen + 3); /* only other: dev backs off 2 s now */
	ASSERT_GE(drv->devices[0].backoff_skips, 1);
	/* Repeating the state costs nothing: no new state while it lasts. */
	ASSERT_EQ(h->n_states, 3);

	s->dev[1].fail = 0;
	fake_host_advance(h, 2000 * 1000);
	ASSERT_EQ(fake_host_state(h, "dev")->state, M2M_DEVICE_ONLINE);
	ASSERT_EQ(fake_host_reading(h, a)->quality, M2M_QUALITY_GOOD);
	ASSERT_DOUBLE_EQ(fake_host_stat_value(h, "online", "dev"), 1, 0);
	ASSERT_EQ(h->n_states, 4);

	/* A refused connection says so. */
	s->dev[1].fail = -ECONNREFUSED;
	fake_host_advance(h, 1000 * 1000);
	st = fake_host_state(h, "dev");
	ASSERT_EQ(st->state, M2M_DEVICE_OFFLINE);
	ASSERT_STR_CONTAINS(st->reason, "refused");
	ASSERT_EQ(fake_host_reading(h, a)->quality, M2M_QUALITY_COMM_ERROR);
	ASSERT_EQ(fake_host_reading(h, a)->detail, ECONNREFUSED);
	mb_driver_ops.destroy(drv);
	free(s);
	fake_host_free(h);
}

/*
 * A device that is dead from the start is offline at once, never online;
 * one that answers only garbage is offline with what was wrong.
 */
static void test_never_online(void)
{
	m2m_host *h = fake_host_new();
	struct script *s = script_new();
	struct mb_driver *drv = create(h, fake_host_api(1), plant, s);

	s->dev[1].fail = -ETIMEDOUT;
	s->dev[2].fail = -EMBBADDATA;
	ASSERT_OK(mb_driver_ops.start(drv));
	fake_host_advance(h, 0);
	ASSERT_EQ(h->n_states, 2);
	ASSERT_EQ(fake_host_state(h, "dev")->state, M2M_DEVICE_OFFLINE);
	ASSERT_EQ(fake_host_state(h, "other")->state, M2M_DEVICE_OFFLINE);
	ASSERT_STR_CONTAINS(fake_host_state(h, "other")->reason, "decode error: ");
	ASSERT_EQ(fake_host_reading(h, fake_host_point(h, "other/x"))->quality,
	          M2M_QUALITY_DECODE_ERROR);
	ASSERT_DOUBLE_EQ(fake_host_stat_value(h, "bad_answers", "other"), 1, 0);
	mb_driver_ops.destroy(drv);
	free(s);
	fake_host_free(h);
}

/* Exception 02 for a merged read: bisected now, remembered for the next cycle. */
static void test_split(void)
{
	m2m_host *h = fake_host_new();
	struct script *s = script_new();
	struct mb_driver *drv = create(h, fake_host_api(1), DEV(
		"{\"name\":\"p0\",\"table\":\"holding_register\",\"address\":0},"
		"{\"name\":\"p1\",\"table\":\"holding_register\",\"address\":1},"
		"{\"name\":\"p2\",\"table\":\"holding_register\",\"address\":2},"
		"{\"name\":\"p3\",\"table\":\"holding_register\",\"address\":3}"), s);
	const struct m2m_reading *r;

	s->dev[1].bad[3] = true;
	s->dev[1].regs[0] = 10;
	ASSERT_OK(mb_driver_ops.start(drv));
	ASSERT_DOUBLE_EQ(fake_host_stat_value(h, "requests_per_cycle", "dev"), 1, 0);
	fake_host_advance(h, 0);
	/* 0..3 refused, then 0..1 and 2..3, then 2 and 3. */
	ASSERT_EQ(s->n_seen, 5);
	ASSERT_DOUBLE_EQ(fake_host_reading(h, fake_host_point(h, "dev/p0"))->value, 10, 0);
	ASSERT_EQ(fake_host_reading(h, fake_host_point(h, "dev/p2"))->quality, M2M_QUALITY_GOOD);
	r = fake_host_reading(h, fake_host_point(h, "dev/p3"));
	ASSERT_EQ(r->quality, M2M_QUALITY_DEVICE_ERROR);
	ASSERT_EQ(r->detail, 2);
	/* A refusal is an answer: the device is online. */
	ASSERT_EQ(fake_host_state(h, "dev")->state, M2M_DEVICE_ONLINE);
	ASSERT_EQ(fake_host_logged(h, M2M_LOG_INFO, "refused a merged read"), 1);
	ASSERT_DOUBLE_EQ(fake_host_stat_value(h, "requests_per_cycle", "dev"), 3, 0);
	/* The next cycle reads in the remembered shape. */
	fake_host_advance(h, 1000 * 1000);
	ASSERT_EQ(s->n_seen, 8);
	mb_driver_ops.destroy(drv);
	free(s);
	fake_host_free(h);
}

/*
 * Points of one device at two intervals: requests_per_cycle per group,
 * beside a device with one, under one name, kind and help.
 */
static void test_group_stats(void)
{
	m2m_host *h = fake_host_new();
	struct script *s = script_new();
	struct mb_driver *drv = create(h, fake_host_api(1), "{" BUS "\"devices\":["
		"{\"name\":\"dev\",\"unit_id\":1,\"points\":["
		"{\"name\":\"fast\",\"table\":\"holding_register\",\"address\":0,\"interval\":\"200ms\"},"
		"{\"name\":\"slow\",\"table\":\"holding_register\",\"address\":100,\"interval\":\"1h\"}]},"
		"{\"name\":\"other\",\"unit_id\":2,\"points\":["
		"{\"name\":\"x\",\"table\":\"holding_register\",\"address\":5}]}]}", s);

	ASSERT_OK(mb_driver_ops.start(drv));
	ASSERT_DOUBLE_EQ(fake_host_stat_value(h, "requests_per_cycle", "dev@200ms"), 1, 0);
	ASSERT_DOUBLE_EQ(fake_host_stat_value(h, "requests_per_cycle", "dev@1h"), 1, 0);
	ASSERT(fake_host_stat(h, "requests_per_cycle", "dev") == NULL);
	/* A device with one interval keeps the plain label, in the same family. */
	ASSERT_DOUBLE_EQ(fake_host_stat_value(h, "requests_per_cycle", "other"), 1, 0);
	fake_host_advance(h, 1000 * 1000);
	ASSERT_EQ(fake_host_count(h, fake_host_point(h, "dev/fast")), 6);
	ASSERT_EQ(fake_host_count(h, fake_host_point(h, "dev/slow")), 1);
	mb_driver_ops.destroy(drv);
	free(s);
	fake_host_free(h);
}

/*
 * Each block's readings reach the host as soon as the block is read, before
 * the next request goes out, while the cycle goes on; a cycle that fails
 * half-way has submitted its good blocks and ends with the rest bad.
 */
static void test_per_block(void)
{
	m2m_host *h = fake_host_new();
	struct script *s = script_new();
	struct mb_driver *drv = create(h, fake_host_api(1), DEV(
		"{\"name\":\"c\",\"table\":\"coil\",\"address\":3},"
		"{\"name\":\"a\",\"table\":\"holding_register\",\"address\":0},"
		"{\"name\":\"a1\",\"table\":\"holding_register\",\"address\":1},"
		"{\"name\":\"sn\",\"table\":\"holding_register\",\"address\":100,"
		" \"type\":\"string\",\"length\":4,\"kind\":\"string\"},"
		"{\"name\":\"b\",\"table\":\"holding_register\",\"address\":200}"), s);
	uint32_t c = fake_host_point(h, "dev/c"), a = fake_host_point(h, "dev/a");
	uint32_t b = fake_host_point(h, "dev/b");
	size_t base;

	s->dev[1].coils[3] = 1;
	s->dev[1].regs[0] = 11;
	s->dev[1].regs[200] = 22;
	ASSERT_OK(mb_encode_string("AB12", 4, MB_ABCD, &s->dev[1].regs[100]));
	/* The loop runs between requests, the bus only when the test says. */
	h->bus_inline = false;
	s->host = h;
	ASSERT_OK(mb_driver_ops.start(drv));
	ASSERT(fake_host_io(h, drv->wake_fd));
	fake_host_advance(h, 0);
	ASSERT_EQ(h->n_work, 1); /* one work item per cycle, as before */
	ASSERT_EQ(fake_host_bus_run(h, 1), 1);
	/* Coil 3; registers 0..1; the string at 100; register 200. */
	ASSERT_EQ(s->n_seen, 4);
	ASSERT_EQ(s->submitted[0], 0);
	ASSERT_EQ(s->submitted[1], 1); /* the coil, before registers 0..1 were read */
	ASSERT_EQ(h->readings[0].point, c);
	ASSERT_DOUBLE_EQ(h->readings[0].value, 1, 0);
	ASSERT_EQ(s->submitted[2], 3); /* then 0..1, before the string */
	ASSERT_EQ(h->readings[1].point, a);
	ASSERT_DOUBLE_EQ(h->readings[1].value, 11, 0);
	ASSERT_EQ(s->texts[2], 0);
	ASSERT_EQ(s->submitted[3], 3); /* the string block holds no reading... */
	ASSERT_EQ(s->texts[3], 1);     /* ...but its text went before 200 was read */
	ASSERT_STR_EQ(h->texts[0].text, "AB12");
	/* The last block comes with the done callback: each reading once. */
	ASSERT_EQ(h->n_readings, 4);
	ASSERT_EQ(h->readings[3].point, b);
	ASSERT_DOUBLE_EQ(h->readings[3].value, 22, 0);
	ASSERT_EQ(fake_host_count(h, a), 1);
	ASSERT_EQ(h->submits, 3);
	ASSERT_EQ(fake_host_state(h, "dev")->state, M2M_DEVICE_ONLINE);

	/* A cycle that times out after its first block: good first, the rest bad. */
	s->n_seen = 0;
	s->fail_after = 1; /* the coil answers, then the device goes silent */
	base = h->n_readings;
	fake_host_advance(h, 1000 * 1000);
	ASSERT_EQ(fake_host_bus_run(h, 1), 1);
	ASSERT_EQ(s->n_seen, 2); /* the timeout ends the cycle's requests */
	ASSERT_EQ(s->submitted[1], base + 1);
	ASSERT_EQ(h->readings[base].point, c);
	ASSERT_EQ(h->readings[base].quality, M2M_QUALITY_GOOD);
	ASSERT_EQ(h->n_readings, base + 4);
	ASSERT_EQ(fake_host_reading(h, a)->quality, M2M_QUALITY_TIMEOUT);
	ASSERT_EQ(fake_host_reading(h, b)->quality, M2M_QUALITY_TIMEOUT);
	ASSERT_EQ(h->n_texts, 2);
	ASSERT_EQ(h->texts[1].quality, M2M_QUALITY_TIMEOUT);
	ASSERT_EQ(fake_host_state(h, "dev")->state, M2M_DEVICE_OFFLINE);
	/* A wake-up after the cycle ended submits nothing twice. */
	fake_host_io_fire(h, fake_host_io(h, drv->wake_fd), M2M_IO_READ);
	ASSERT_EQ(h->n_readings, base + 4);

	mb_driver_ops.stop(drv);
	ASSERT(fake_host_io(h, drv->wake_fd) == NULL);
	mb_driver_ops.destroy(drv);
	free(s);
	fake_host_free(h);
}

/* A write's completion, for each way it can end. */
static void test_write(void)
{
	m2m_host *h = fake_host_new();
	struct script *s = script_new();
	struct mb_driver *drv = create(h, fake_host_api(1), plant, s);
	uint32_t far = fake_host_point(h, "dev/far"), run = fake_host_point(h, "dev/run");
	struct m2m_write w = { 0 };

	/* Not running: refused at once, answered exactly once. */
	ASSERT_OK(mb_driver_ops.write(drv, far, 1, &w));
	ASSERT_EQ(w.calls, 1);
	ASSERT_EQ(w.status, -ENOTCONN);

	h->bus_inline = false;
	ASSERT_OK(mb_driver_ops.start(drv));
	fake_host_advance(h, 0); /* two polls queued */
	ASSERT_EQ(h->n_work, 2);
	w = (struct m2m_write){ 0 };
	ASSERT_OK(mb_driver_ops.write(drv, far, 42, &w));
	ASSERT_EQ(w.calls, 0);
	/* A write goes ahead of the queued polls. */
	ASSERT_EQ(fake_host_bus_run(h, 1), 1);
	ASSERT_EQ(w.calls, 1);
	ASSERT_EQ(w.status, 0);
	ASSERT_EQ(s->seen[0].fc, FC_WRITE_REGISTER);
	ASSERT_EQ(s->dev[1].regs[200], 42);
	fake_host_bus_run(h, SIZE_MAX);
	h->bus_inline = true;

	/* A value the type cannot hold never reaches the wire. */
	w = (struct m2m_write){ 0 };
	ASSERT_OK(mb_driver_ops.write(drv, far, 70000, &w));
	ASSERT_EQ(w.status, -ERANGE);
	ASSERT_STR_CONTAINS(w.text, "does not fit uint16");
	/* Not a point of this driver. */
	w = (struct m2m_write){ 0 };
	ASSERT_OK(mb_driver_ops.write(drv, 4242, 1, &w));
	ASSERT_EQ(w.status, -ENOENT);
	/* Not writable (the host checks first; the driver still answers). */
	w = (struct m2m_write){ 0 };
	ASSERT_OK(mb_driver_ops.write(drv, fake_host_point(h, "dev/a"), 1, &w));
	ASSERT_EQ(w.status, -EPERM);

	/* A coil with read-back: a device that ignores the write is caught. */
	s->dev[1].coils[7] = 1;
	s->dev[1].ignore_writes = true;
	w = (struct m2m_write){ 0 };
	ASSERT_OK(mb_driver_ops.write(drv, run, 0, &w));
	fake_host_bus_run(h, SIZE_MAX);
	ASSERT_EQ(w.status, -EIO);
	ASSERT_STR_CONTAINS(w.text, "read-back of coil 7 of \"dev\" differs: wrote 0, read 1");
	s->dev[1].ignore_writes = false;
	w = (struct m2m_write){ 0 };
	ASSERT_OK(mb_driver_ops.write(drv, run, 0, &w));
	fake_host_bus_run(h, SIZE_MAX);
	ASSERT_EQ(w.status, 0);
	ASSERT_EQ(s->dev[1].coils[7], 0);

	/* A device that does not answer. */
	s->dev[1].fail = -ETIMEDOUT;
	w = (struct m2m_write){ 0 };
	ASSERT_OK(mb_driver_ops.write(drv, far, 1, &w));
	fake_host_bus_run(h, SIZE_MAX);
	ASSERT_EQ(w.status, -ETIMEDOUT);
	ASSERT_STR_CONTAINS(w.text, "writing holding_register 200 of \"dev\" failed: timeout");

	/* Queued work of a stopped driver is cancelled by the host; a write still gets its answer. */
	s->dev[1].fail = 0;
	h->bus_inline = false;
	w = (struct m2m_write){ 0 };
	ASSERT_OK(mb_driver_ops.write(drv, far, 3, &w));
	mb_driver_ops.stop(drv);
	ASSERT_EQ(fake_host_bus_cancel(h), 1);
	ASSERT_EQ(w.status, -ECANCELED);
	ASSERT_EQ(drv->inflight, 0);
	/* And a start after that is a new run. */
	ASSERT_OK(mb_driver_ops.start(drv));
	mb_driver_ops.destroy(drv);
	free(s);
	fake_host_free(h);
}

int main(void)
{
	RUN_TEST(test_config_errors);
	RUN_TEST(test_unread_keys);
	RUN_TEST(test_poll_1_1);
	RUN_TEST(test_poll_1_0);
	RUN_TEST(test_offline);
	RUN_TEST(test_never_online);
	RUN_TEST(test_split);
	RUN_TEST(test_group_stats);
	RUN_TEST(test_per_block);
	RUN_TEST(test_write);
	return 0;
}
