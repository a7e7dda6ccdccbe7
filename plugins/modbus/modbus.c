/* SPDX-License-Identifier: MIT */
/*
 * modbus.c - the Modbus TCP and RTU driver (libmodbus).
 *
 * One instance drives one bus: a TCP connection or a serial line, with
 * several devices (unit ids) on it. The instance owns one libmodbus
 * context, and every libmodbus call runs on the bus thread the host gives
 * it, one request at a time, so that devices on one RS-485 line are
 * serialized by construction. The loop thread only schedules: each device
 * has one poll group per interval, each group one host timer, and a tick
 * queues one work item that reads the group's blocks (see mb-plan.h).
 *
 * Ownership between the threads is by hand-off: a group's plan, readings
 * and cycle results belong to the bus thread from bus_submit() until the
 * done callback runs, and to the loop thread otherwise. A group whose last
 * cycle is still queued or running skips its tick (and counts it), so work
 * never piles up behind a slow device. Writes go to the head of the bus
 * queue (M2M_BUS_URGENT).
 *
 * libmodbus error codes are translated in exactly one place,
 * classify_error().
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>

#include <cJSON.h>
#include <modbus.h>

#include "m2m/plugin.h"
#include "mb-codec.h"
#include "mb-plan.h"
#include "mb-tcp.h"

#define MB_VERSION "1.0.0"

/*
 * Records a config error and yields -EINVAL: the header does not promise
 * what cfg_error returns, and create() must fail with -EINVAL either way.
 */
#define CFG_ERROR(drv, item, ...) \
	((drv)->api->cfg_error((drv)->host, (item), __VA_ARGS__), -EINVAL)

#define US_PER_MS INT64_C(1000)
#define US_PER_S INT64_C(1000000)

/* Protocol limits of one read request (Modbus application protocol 1.1b3). */
#define MB_MAX_READ_REGISTERS 125
#define MB_MAX_READ_BITS 2000

/* A bad state that persists is logged again at most this often. */
#define MB_REPORT_INTERVAL_US (60 * US_PER_S)

/* What m2m_host_api keeps of a string value. */
#define MB_TEXT_MAX 256

enum { TRANSPORT_TCP, TRANSPORT_RTU };
static const char *const transport_names[] = { "tcp", "rtu", NULL };
static const char *const parity_names[] = { "none", "even", "odd", NULL };
static const char parity_chars[] = { 'N', 'E', 'O' };

enum dev_state { DEV_UNKNOWN, DEV_ONLINE, DEV_OFFLINE };

struct mb_driver;
struct mb_group;

struct mb_device {
	struct mb_driver *drv;
	char *name;
	int unit_id;
	int64_t timeout_us;
	int retries;
	int64_t delay_us;        /* inter-request delay before each request */
	unsigned max_registers;  /* per read request */
	unsigned max_bits;
	unsigned max_gap;        /* registers */
	unsigned max_gap_bits;
	bool write_multiple;     /* FC 15/16 even for one coil or register */
	int64_t interval_us;     /* default for its points */
	int64_t min_interval_us; /* of its groups: the first backoff step */

	/* Loop thread. */
	int state;               /* enum dev_state */
	bool probing;            /* an offline device's one probe is under way */
	int64_t backoff_us;
	int64_t next_try_us;     /* mono; while offline, no polls before it */
	uint64_t polls, requests, errors, skipped, backoff_skips;
	uint64_t bad_answers;    /* answers that failed the checks (decode errors) */
	uint64_t reported_bad;   /* bad_answers when they were last reported */
	int64_t report_us;       /* mono; when a bad state was last logged */
	unsigned requests_per_cycle;
};

struct mb_point {
	uint32_t id;
	uint32_t address;
	uint32_t nregs;     /* addresses it occupies: 1 for a bit */
	int table;          /* enum mb_table */
	int type;           /* enum mb_type */
	int order;          /* enum mb_order */
	int bit;            /* 0..15 for a bool in a register, -1 otherwise */
	bool writable;
	bool verify;
	int64_t interval_us;
	struct mb_device *dev;
	struct mb_group *group;
	uint32_t slot;      /* index into the group's readings, or texts for strings */
};

/* The latest value of a string point, decoded on the bus thread. */
struct mb_text {
	int64_t ts_us;
	uint32_t point;
	uint16_t quality;
	uint16_t detail;
	char value[MB_TEXT_MAX];
};

/* The points of one group in one table, and how they are read. */
struct mb_table_plan {
	size_t n_spans;
	struct mb_span *spans;
	uint32_t *span_first;   /* n_spans + 1 offsets into members */
	uint32_t *members;      /* point indexes, span by span */
	bool *breaks;           /* remembered splits */
	bool *new_breaks;       /* splits found by the running cycle */
	size_t n_blocks;
	struct mb_block *blocks;
	unsigned max_gap;
	unsigned max_count;
};

/* What a poll cycle found, written by the bus thread for the done callback. */
struct mb_cycle {
	unsigned requests;
	unsigned failed_requests;
	bool good;              /* the device answered, passing every check */
	unsigned decode_errors; /* answers that did not */
	char bad_what[96];      /* what was wrong with the last of them */
	bool split;             /* new_breaks has marks */
	uint16_t fail_quality;  /* a device-level failure stopped the cycle */
	uint16_t fail_detail;
	int fail_err;           /* its errno, for the event text */
};

/* The points of one device with one interval: one timer, one work item. */
struct mb_group {
	struct mb_driver *drv;
	struct mb_device *dev;
	int64_t interval_us;
	m2m_timer *timer;
	struct mb_table_plan plans[MB_TABLE_COUNT];
	struct m2m_reading *readings;
	size_t n_readings;
	struct mb_text *texts;
	size_t n_texts;
	bool busy;              /* a cycle is queued or running */
	bool probe;             /* that cycle probes an offline device */
	struct mb_cycle cyc;
};

/* One write, from ops.write to write_done. */
struct mb_write_op {
	struct mb_driver *drv;
	const struct mb_point *p;
	m2m_write *req;
	double value;
	uint16_t regs[4];   /* encoded value; regs[0] is the bit for a bool */
	uint16_t back[4];   /* what the read-back found */
	int err;            /* positive errno of the failure, 0 when done */
	bool mismatch;      /* the read-back differed */
};

struct mb_index {
	uint32_t id;
	uint32_t idx;
};

/* One request on the wire. */
enum mb_fc {
	FC_READ_COILS = 1,
	FC_READ_DISCRETE_INPUTS = 2,
	FC_READ_HOLDING_REGISTERS = 3,
	FC_READ_INPUT_REGISTERS = 4,
	FC_WRITE_COIL = 5,
	FC_WRITE_REGISTER = 6,
	FC_WRITE_COILS = 15,
	FC_WRITE_REGISTERS = 16
};

struct mb_request {
	int fc;
	int addr;
	int count;
	uint16_t *regs;
	uint8_t *bits;
};

struct mb_driver {
	m2m_host *host;
	const struct m2m_host_api *api;

	/* Bus settings. */
	int transport;
	char *tcp_host;
	int tcp_port;
	char *serial;
	int baud;
	int parity;
	int data_bits;
	int stop_bits;
	bool rs485;
	int64_t backoff_max_us;
	char *bus_name;

	struct mb_device *devices;
	size_t n_devices;
	struct mb_point *points;
	size_t n_points;
	struct mb_index *index;  /* by point id, for writes */
	struct mb_group *groups;
	size_t n_groups;

	/* Loop thread. */
	m2m_bus *bus;
	bool running;
	size_t inflight;         /* work items queued or running */
	bool submit_failed;      /* so that a failing submit logs once */

	/* Bus thread (handed over with each work item). */
	modbus_t *ctx;
	bool connected;
	bool connect_failing;    /* so that a failing connect logs once */
	int64_t last_io_us;      /* mono end of the last request */
	uint16_t tid;            /* transaction id of our last TCP read */
	char why[96];            /* what was wrong with the last answer, or "" */
	union {
		uint16_t regs[MB_MAX_READ_REGISTERS];
		uint8_t bits[MB_MAX_READ_BITS];
	} buf;
};

static void mb_stop(void *driver);
static const char *format_us(int64_t us, char *buf, size_t size);

/* --- errors --- */

/* True when ERR (a positive errno from libmodbus) is a Modbus exception. */
static bool is_exception(int err)
{
	return err > MODBUS_ENOBASE && err <= EMBXGTAR;
}

/*
 * The one place that translates libmodbus errors: into a reading quality
 * and detail (the exception code, or the errno of a transport failure),
 * and whether the failure means the device (or the link) is down rather
 * than one request being refused.
 */
static void classify_error(int err, uint16_t *ret_quality, uint16_t *ret_detail,
                           bool *ret_device_down)
{
	*ret_detail = 0;
	*ret_device_down = false;
	if (is_exception(err)) {
		int code = err - MODBUS_ENOBASE;

		*ret_quality = M2M_QUALITY_DEVICE_ERROR;
		*ret_detail = (uint16_t)code;
		/* A gateway that cannot reach its target speaks for a dead device. */
		*ret_device_down = code == MODBUS_EXCEPTION_GATEWAY_PATH ||
		                   code == MODBUS_EXCEPTION_GATEWAY_TARGET;
	} else if (err == ETIMEDOUT) {
		*ret_quality = M2M_QUALITY_TIMEOUT;
		*ret_device_down = true;
	} else if (err == EMBBADDATA || err == EMBMDATA || err == EMBBADEXC ||
	           err == EMBUNKEXC || err == EMBBADSLAVE) {
		*ret_quality = M2M_QUALITY_DECODE_ERROR;
	} else {
		/* EMBBADCRC and every system error: the link failed. */
		*ret_quality = M2M_QUALITY_COMM_ERROR;
		*ret_detail = err == EMBBADCRC ? 0 : (uint16_t)(err > 0 && err < 65536 ? err : 0);
		*ret_device_down = true;
	}
}

/* As a negative errno for write_done: one value per class of failure. */
static int error_status(int err)
{
	if (is_exception(err))
		return -EREMOTEIO;
	if (err == EMBBADCRC || err == EMBBADDATA || err == EMBMDATA || err == EMBBADEXC ||
	    err == EMBUNKEXC || err == EMBBADSLAVE)
		return -EBADMSG;
	if (err > 0 && err < MODBUS_ENOBASE)
		return -err;
	return -EIO;
}

static const char *exception_name(int code)
{
	switch (code) {
	case 1: return "illegal function";
	case 2: return "illegal data address";
	case 3: return "illegal data value";
	case 4: return "server device failure";
	case 5: return "acknowledge";
	case 6: return "server device busy";
	case 7: return "negative acknowledge";
	case 8: return "memory parity error";
	case 10: return "gateway path unavailable";
	case 11: return "gateway target device failed to respond";
	default: return "unknown exception";
	}
}

/* Describes ERR into BUF. Loop thread (strerror). */
static const char *describe_error(int err, char *buf, size_t size)
{
	if (is_exception(err))
		snprintf(buf, size, "exception %d (%s)", err - MODBUS_ENOBASE,
		         exception_name(err - MODBUS_ENOBASE));
	else if (err == ETIMEDOUT)
		snprintf(buf, size, "timeout");
	else if (err >= MODBUS_ENOBASE)
		snprintf(buf, size, "%s", modbus_strerror(err));
	else
		snprintf(buf, size, "%s", strerror(err));
	return buf;
}

/* --- the bus thread --- */

static void sleep_us(int64_t us)
{
	struct timespec ts = { .tv_sec = us / US_PER_S, .tv_nsec = (us % US_PER_S) * 1000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void bus_disconnect(struct mb_driver *drv)
{
	if (drv->connected) {
		modbus_close(drv->ctx);
		drv->connected = false;
	}
}

static int bus_connect(struct mb_driver *drv)
{
	const struct m2m_host_api *api = drv->api;
	const char *what = "connecting to";
	int err;

	if (drv->connected)
		return 0;
	if (modbus_connect(drv->ctx) < 0) {
		err = errno;
		goto fail;
	}
	/*
	 * One bus thread per line serializes the requests of this instance;
	 * exclusive mode makes a second opener (another driver instance on the
	 * same line, a terminal program) fail with EBUSY instead of talking
	 * over our frames.
	 */
	if (drv->transport == TRANSPORT_RTU && ioctl(modbus_get_socket(drv->ctx), TIOCEXCL) < 0) {
		err = errno;
		modbus_close(drv->ctx);
		what = "taking exclusive use (TIOCEXCL) of";
		goto fail;
	}
	if (drv->transport == TRANSPORT_RTU && drv->rs485 &&
	    modbus_rtu_set_serial_mode(drv->ctx, MODBUS_RTU_RS485) < 0) {
		err = errno;
		modbus_close(drv->ctx);
		what = "enabling RS-485 mode (rs485 = true) on";
		goto fail;
	}
	drv->connected = true;
	if (drv->connect_failing)
		api->log(drv->host, M2M_LOG_NOTICE, "connected to \"%s\" again", drv->bus_name);
	drv->connect_failing = false;
	return 0;

fail:
	/* Logged once per outage; the device events say the rest. */
	if (!drv->connect_failing)
		api->log(drv->host, M2M_LOG_WARNING, "%s \"%s\" failed: %s", what,
		         drv->bus_name, modbus_strerror(err));
	drv->connect_failing = true;
	return -(err ? err : EIO);
}

/* Sets what every request of DEV shares. */
static void bus_select(struct mb_driver *drv, const struct mb_device *dev)
{
	modbus_set_slave(drv->ctx, dev->unit_id);
	modbus_set_response_timeout(drv->ctx, (uint32_t)(dev->timeout_us / US_PER_S),
	                            (uint32_t)(dev->timeout_us % US_PER_S));
}

static int send_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * A read over TCP, framed and checked by us (mb-tcp.h): libmodbus waits for
 * and reads the answer but would not check its MBAP length or unit id.
 * Returns the count read, or -1 with errno as libmodbus sets it (and
 * drv->why saying what was wrong with a bad answer).
 */
static int tcp_read(struct mb_driver *drv, const struct mb_request *rq)
{
	uint8_t req[MB_TCP_READ_REQUEST], rsp[MB_TCP_MAX_ADU];
	int unit = modbus_get_slave(drv->ctx), exception = 0, n, r;
	size_t len;

	drv->tid++;
	len = mb_tcp_read_request(req, drv->tid, (uint8_t)unit, (uint8_t)rq->fc, (uint16_t)rq->addr,
	                          (uint16_t)rq->count);
	if (send_all(modbus_get_socket(drv->ctx), req, len) < 0)
		return -1;
	n = modbus_receive_confirmation(drv->ctx, rsp);
	if (n < 0) {
		/* The one EMBBADDATA of libmodbus's receive: a byte count past the frame's end. */
		if (errno == EMBBADDATA)
			snprintf(drv->why, sizeof(drv->why), "a frame longer than %d bytes",
			         MB_TCP_MAX_ADU);
		return -1;
	}
	r = mb_tcp_check_answer(rsp, (size_t)n, drv->tid, (uint8_t)unit, (uint8_t)rq->fc,
	                        (uint16_t)rq->count, &exception, drv->why, sizeof(drv->why));
	if (r < 0) {
		errno = EMBBADDATA;
		return -1;
	}
	if (r == 1) {
		if (exception >= 1 && exception <= MODBUS_EXCEPTION_GATEWAY_TARGET) {
			errno = MODBUS_ENOBASE + exception;
		} else {
			snprintf(drv->why, sizeof(drv->why), "exception code %d, which Modbus does not define",
			         exception);
			errno = EMBBADEXC;
		}
		return -1;
	}
	if (rq->fc == FC_READ_COILS || rq->fc == FC_READ_DISCRETE_INPUTS)
		mb_tcp_unpack_bits(rsp + 9, (unsigned)rq->count, rq->bits);
	else
		mb_tcp_unpack_registers(rsp + 9, (unsigned)rq->count, rq->regs);
	return rq->count;
}

static int request_once(struct mb_driver *drv, const struct mb_request *rq)
{
	modbus_t *ctx = drv->ctx;

	if (drv->transport == TRANSPORT_TCP && rq->fc >= FC_READ_COILS &&
	    rq->fc <= FC_READ_INPUT_REGISTERS)
		return tcp_read(drv, rq);
	switch (rq->fc) {
	case FC_READ_COILS:
		return modbus_read_bits(ctx, rq->addr, rq->count, rq->bits);
	case FC_READ_DISCRETE_INPUTS:
		return modbus_read_input_bits(ctx, rq->addr, rq->count, rq->bits);
	case FC_READ_HOLDING_REGISTERS:
		return modbus_read_registers(ctx, rq->addr, rq->count, rq->regs);
	case FC_READ_INPUT_REGISTERS:
		return modbus_read_input_registers(ctx, rq->addr, rq->count, rq->regs);
	case FC_WRITE_COIL:
		return modbus_write_bit(ctx, rq->addr, rq->bits[0]) == 1 ? 1 : -1;
	case FC_WRITE_REGISTER:
		return modbus_write_register(ctx, rq->addr, rq->regs[0]) == 1 ? 1 : -1;
	case FC_WRITE_COILS:
		return modbus_write_bits(ctx, rq->addr, rq->count, rq->bits);
	case FC_WRITE_REGISTERS:
		return modbus_write_registers(ctx, rq->addr, rq->count, rq->regs);
	default:
		errno = EINVAL;
		return -1;
	}
}

/*
 * Runs one request for DEV with its retries: connects when needed, keeps
 * the inter-request delay, and recovers the link after a failure (a TCP
 * connection that timed out is closed, since a late answer would otherwise
 * meet the next request; a serial line is flushed). An exception is an
 * answer and is not retried. Returns 0 or a negative errno (libmodbus's,
 * possibly above MODBUS_ENOBASE). *REQUESTS counts what went on the wire.
 */
static int bus_request(struct mb_driver *drv, const struct mb_device *dev,
                       const struct mb_request *rq, unsigned *requests)
{
	const struct m2m_host_api *api = drv->api;
	int err = EIO;

	for (int attempt = 0; attempt <= dev->retries; attempt++) {
		int n, r;

		r = bus_connect(drv);
		if (r < 0) {
			err = -r;
			continue;
		}
		if (dev->delay_us > 0) {
			int64_t idle = api->mono_us(drv->host) - drv->last_io_us;

			if (idle < dev->delay_us)
				sleep_us(dev->delay_us - idle);
		}
		errno = 0;
		drv->why[0] = '\0';
		n = request_once(drv, rq);
		err = errno;
		drv->last_io_us = api->mono_us(drv->host);
		(*requests)++;
		if (n == rq->count)
			return 0;
		if (n >= 0 || err == 0)
			err = EMBBADDATA; /* a short answer */
		if (is_exception(err))
			return -err;
		if (err == ETIMEDOUT && drv->transport == TRANSPORT_RTU)
			modbus_flush(drv->ctx);
		else if (err == EMBBADCRC || err == EMBBADDATA || err == EMBMDATA ||
		         err == EMBBADEXC || err == EMBUNKEXC || err == EMBBADSLAVE)
			modbus_flush(drv->ctx);
		else
			bus_disconnect(drv);
	}
	return -err;
}

static int read_fc(int table)
{
	static const int fc[MB_TABLE_COUNT] = {
		[MB_COIL] = FC_READ_COILS,
		[MB_DISCRETE_INPUT] = FC_READ_DISCRETE_INPUTS,
		[MB_INPUT_REGISTER] = FC_READ_INPUT_REGISTERS,
		[MB_HOLDING_REGISTER] = FC_READ_HOLDING_REGISTERS,
	};

	return fc[table];
}

/* Stores the readings of span S of plan TP, read into drv->buf from BASE. */
static void decode_span(struct mb_group *g, int table, const struct mb_table_plan *tp,
                        size_t s, uint32_t base, int64_t ts_us)
{
	struct mb_driver *drv = g->drv;

	for (uint32_t m = tp->span_first[s]; m < tp->span_first[s + 1]; m++) {
		const struct mb_point *p = &drv->points[tp->members[m]];
		uint32_t off = p->address - base;
		struct m2m_reading *rd;
		struct mb_text *t;

		if (p->type == MB_STRING) {
			t = &g->texts[p->slot];
			t->ts_us = ts_us;
			t->quality = M2M_QUALITY_GOOD;
			t->detail = 0;
			mb_decode_string(&drv->buf.regs[off], p->nregs, p->order, t->value,
			                 sizeof(t->value));
			continue;
		}
		rd = &g->readings[p->slot];
		rd->ts_us = ts_us;
		rd->quality = M2M_QUALITY_GOOD;
		rd->detail = 0;
		if (mb_table_is_bits(table))
			rd->value = drv->buf.bits[off] ? 1.0 : 0.0;
		else if (p->type == MB_BOOL)
			rd->value = mb_decode_bit(drv->buf.regs[off], (unsigned)p->bit);
		else
			rd->value = mb_decode(p->type, p->order, &drv->buf.regs[off]);
	}
}

/* Marks the points of spans FIRST .. FIRST + N - 1 bad. */
static void fail_spans(struct mb_group *g, const struct mb_table_plan *tp, size_t first,
                       size_t n, uint16_t quality, uint16_t detail, int64_t ts_us)
{
	struct mb_driver *drv = g->drv;

	for (uint32_t m = tp->span_first[first]; m < tp->span_first[first + n]; m++) {
		const struct mb_point *p = &drv->points[tp->members[m]];

		if (p->type == MB_STRING) {
			struct mb_text *t = &g->texts[p->slot];

			t->ts_us = ts_us;
			t->quality = quality;
			t->detail = detail;
			t->value[0] = '\0';
		} else {
			struct m2m_reading *rd = &g->readings[p->slot];

			rd->ts_us = ts_us;
			rd->value = NAN;
			rd->quality = quality;
			rd->detail = detail;
		}
	}
}

/*
 * Reads spans FIRST .. FIRST + N - 1 of one table in one request. When the
 * device answers exception 02 for more than one span, the range is
 * bisected and each half read on its own, now, so that this cycle already
 * has every good value; the split is marked in new_breaks for the done
 * callback to remember. Depth is bounded by log2 of the span count.
 */
static void read_range(struct mb_group *g, int table, struct mb_table_plan *tp, uint32_t first,
                       uint32_t n)
{
	struct mb_driver *drv = g->drv;
	struct mb_cycle *c = &g->cyc;
	uint32_t start = tp->spans[first].start;
	uint32_t end = tp->spans[first + n - 1].start + tp->spans[first + n - 1].count;
	struct mb_request rq = {
		.fc = read_fc(table),
		.addr = (int)start,
		.count = (int)(end - start),
		.regs = drv->buf.regs,
		.bits = drv->buf.bits,
	};
	uint16_t quality, detail;
	bool down;
	int r;

	if (c->fail_quality) {
		fail_spans(g, tp, first, n, c->fail_quality, c->fail_detail,
		           drv->api->now_us(drv->host));
		return;
	}
	r = bus_request(drv, g->dev, &rq, &c->requests);
	if (r == 0) {
		int64_t ts_us = drv->api->now_us(drv->host);

		c->good = true;
		for (uint32_t s = first; s < first + n; s++)
			decode_span(g, table, tp, s, start, ts_us);
		return;
	}
	c->failed_requests++;
	if (-r == EMBXILADD && n > 1) {
		struct mb_block b = { .first = first, .n = n };
		uint32_t mid = mb_plan_split(&b, tp->new_breaks, tp->n_spans);

		c->good = true;
		c->split = true;
		read_range(g, table, tp, first, mid - first);
		read_range(g, table, tp, mid, first + n - mid);
		return;
	}
	classify_error(-r, &quality, &detail, &down);
	if (down) {
		c->fail_quality = quality;
		c->fail_detail = detail;
		c->fail_err = -r;
	} else if (quality == M2M_QUALITY_DECODE_ERROR) {
		/* An answer, but not one to trust: it does not make the device online. */
		c->decode_errors++;
		if (drv->why[0])
			snprintf(c->bad_what, sizeof(c->bad_what), "%s", drv->why);
		else
			snprintf(c->bad_what, sizeof(c->bad_what), "%s", modbus_strerror(-r));
	} else {
		c->good = true;
	}
	fail_spans(g, tp, first, n, quality, detail, drv->api->now_us(drv->host));
}

static int poll_work(void *arg)
{
	struct mb_group *g = arg;

	memset(&g->cyc, 0, sizeof(g->cyc));
	bus_select(g->drv, g->dev);
	for (int t = 0; t < MB_TABLE_COUNT; t++) {
		struct mb_table_plan *tp = &g->plans[t];

		for (size_t b = 0; b < tp->n_blocks; b++)
			read_range(g, t, tp, tp->blocks[b].first, tp->blocks[b].n);
	}
	return g->cyc.fail_quality ? -EIO : 0;
}

/* Reads back what a write put on the device and compares. */
static int verify_write(struct mb_write_op *op, unsigned *requests)
{
	struct mb_driver *drv = op->drv;
	const struct mb_point *p = op->p;
	uint8_t bit = 0;
	struct mb_request rq = {
		.fc = p->table == MB_COIL ? FC_READ_COILS : FC_READ_HOLDING_REGISTERS,
		.addr = (int)p->address,
		.count = (int)p->nregs,
		.regs = op->back,
		.bits = &bit,
	};
	int r = bus_request(drv, p->dev, &rq, requests);

	if (r < 0)
		return r;
	if (p->table == MB_COIL) {
		op->back[0] = bit;
		op->mismatch = (bit != 0) != (op->regs[0] != 0);
	} else if (p->type == MB_BOOL) {
		op->mismatch = mb_decode_bit(op->back[0], (unsigned)p->bit) != op->regs[0];
	} else {
		op->mismatch = memcmp(op->back, op->regs, p->nregs * sizeof(uint16_t)) != 0;
	}
	return 0;
}

static int write_work(void *arg)
{
	struct mb_write_op *op = arg;
	struct mb_driver *drv = op->drv;
	const struct mb_point *p = op->p;
	const struct mb_device *dev = p->dev;
	uint8_t bit = (uint8_t)(op->regs[0] != 0);
	uint16_t reg;
	unsigned requests = 0;
	struct mb_request rq = {
		.addr = (int)p->address,
		.count = (int)p->nregs,
		.regs = op->regs,
		.bits = &bit,
	};
	int r;

	bus_select(drv, dev);
	if (p->table == MB_COIL) {
		rq.fc = dev->write_multiple ? FC_WRITE_COILS : FC_WRITE_COIL;
	} else if (p->type == MB_BOOL) {
		/*
		 * A bit of a register: read, modify, write. The bus serializes this
		 * against every other request of m2md; another master on the same
		 * device could still interleave (see docs/modbus.md).
		 */
		struct mb_request rd = {
			.fc = FC_READ_HOLDING_REGISTERS,
			.addr = (int)p->address,
			.count = 1,
			.regs = &reg,
		};

		r = bus_request(drv, dev, &rd, &requests);
		if (r < 0)
			goto out;
		reg = (uint16_t)(bit ? reg | (1u << p->bit) : reg & ~(1u << p->bit));
		rq.regs = &reg;
		rq.count = 1;
		rq.fc = dev->write_multiple ? FC_WRITE_REGISTERS : FC_WRITE_REGISTER;
	} else {
		rq.fc = p->nregs > 1 || dev->write_multiple ? FC_WRITE_REGISTERS : FC_WRITE_REGISTER;
	}
	r = bus_request(drv, dev, &rq, &requests);
	if (r == 0 && p->verify)
		r = verify_write(op, &requests);
out:
	op->err = r < 0 ? -r : 0;
	return r;
}

/* --- the loop thread: results --- */

static void set_stat(struct mb_driver *drv, const char *what, const struct mb_device *dev,
                     double value)
{
	char name[64];

	snprintf(name, sizeof(name), "%s.%s", what, dev->name);
	drv->api->stat(drv->host, name, value);
}

static size_t plan_table(struct mb_table_plan *tp)
{
	tp->n_blocks = tp->n_spans ? mb_plan(tp->spans, tp->n_spans, tp->breaks, tp->max_gap,
	                                     tp->max_count, tp->blocks)
	                           : 0;
	return tp->n_blocks;
}

/*
 * requests_per_cycle.<device>, or per poll group as
 * requests_per_cycle.<device>@<interval> when the device's points have
 * several intervals: groups of different intervals run different cycles,
 * and their sum is no cycle the device ever sees.
 */
static void update_requests_per_cycle(struct mb_driver *drv, struct mb_device *dev)
{
	unsigned n = 0, groups = 0;

	for (size_t i = 0; i < drv->n_groups; i++)
		groups += drv->groups[i].dev == dev;
	for (size_t i = 0; i < drv->n_groups; i++) {
		const struct mb_group *g = &drv->groups[i];
		unsigned k = 0;
		char name[64], t[32];

		if (g->dev != dev)
			continue;
		for (int tb = 0; tb < MB_TABLE_COUNT; tb++)
			k += (unsigned)g->plans[tb].n_blocks;
		n += k;
		if (groups > 1) {
			snprintf(name, sizeof(name), "requests_per_cycle.%s@%s", dev->name,
			         format_us(g->interval_us, t, sizeof(t)));
			drv->api->stat(drv->host, name, k);
		}
	}
	dev->requests_per_cycle = n;
	if (groups == 1)
		set_stat(drv, "requests_per_cycle", dev, n);
}

/* Makes the splits the last cycle found part of the plan. */
static void apply_splits(struct mb_group *g)
{
	struct mb_driver *drv = g->drv;

	for (int t = 0; t < MB_TABLE_COUNT; t++) {
		struct mb_table_plan *tp = &g->plans[t];
		bool changed = false;

		for (size_t s = 0; s < tp->n_spans; s++) {
			if (tp->new_breaks[s] && !tp->breaks[s]) {
				tp->breaks[s] = true;
				changed = true;
			}
			tp->new_breaks[s] = false;
		}
		if (!changed)
			continue;
		plan_table(tp);
		drv->api->log(drv->host, M2M_LOG_INFO,
		              "device \"%s\" refused a merged read of %ss with exception 02; "
		              "reading them in %zu requests from now on",
		              g->dev->name, mb_table_names[t], tp->n_blocks);
	}
	update_requests_per_cycle(drv, g->dev);
}

static void device_up(struct mb_driver *drv, struct mb_device *dev)
{
	if (dev->state != DEV_ONLINE) {
		drv->api->event(drv->host, dev->name, "online",
		                dev->state == DEV_OFFLINE ? "answering again" : "answering");
		set_stat(drv, "online", dev, 1);
		dev->report_us = 0;
	}
	dev->state = DEV_ONLINE;
	dev->backoff_us = 0;
}

/* Why the cycle C found DEV down, into REASON. */
static const char *down_reason(const struct mb_device *dev, const struct mb_cycle *c, char *reason,
                               size_t n)
{
	char t[32];

	if (!c->fail_quality)
		snprintf(reason, n, "decode error: %s", c->bad_what);
	else if (c->fail_err == ETIMEDOUT)
		snprintf(reason, n, "timeout: no answer within %s (%d attempt%s)",
		         format_us(dev->timeout_us, t, sizeof(t)), dev->retries + 1,
		         dev->retries ? "s" : "");
	else
		describe_error(c->fail_err, reason, n);
	return reason;
}

/*
 * Bad answers of a device that is otherwise online: an event (and its log
 * line) with what was wrong, at most once per MB_REPORT_INTERVAL_US.
 */
static void report_bad_answers(struct mb_driver *drv, struct mb_device *dev,
                               const struct mb_cycle *c)
{
	int64_t now = drv->api->mono_us(drv->host);
	char text[192];

	if (dev->report_us && now - dev->report_us < MB_REPORT_INTERVAL_US)
		return;
	snprintf(text, sizeof(text), "%" PRIu64 " answer%s failed the checks, the last: %s",
	         dev->bad_answers - dev->reported_bad, dev->bad_answers - dev->reported_bad == 1 ? "" : "s",
	         c->bad_what);
	drv->api->event(drv->host, dev->name, "bad_answer", text);
	dev->report_us = now;
	dev->reported_bad = dev->bad_answers;
}

static void device_down(struct mb_driver *drv, struct mb_device *dev, const struct mb_cycle *c)
{
	int64_t now = drv->api->mono_us(drv->host);
	char reason[160];

	if (dev->state != DEV_OFFLINE) {
		drv->api->event(drv->host, dev->name, "offline",
		                down_reason(dev, c, reason, sizeof(reason)));
		set_stat(drv, "online", dev, 0);
		dev->state = DEV_OFFLINE;
		dev->backoff_us = dev->min_interval_us;
		dev->report_us = now;
		dev->reported_bad = dev->bad_answers;
	} else {
		/* Logged once per change, then again only while it lasts, not per probe. */
		if (now - dev->report_us >= MB_REPORT_INTERVAL_US) {
			drv->api->log(drv->host, M2M_LOG_WARNING, "device \"%s\" still offline: %s",
			              dev->name, down_reason(dev, c, reason, sizeof(reason)));
			dev->report_us = now;
			dev->reported_bad = dev->bad_answers;
		}
		/* Exponential backoff, so that a dead device costs its bus little. */
		dev->backoff_us = dev->backoff_us * 2 > drv->backoff_max_us ? drv->backoff_max_us
		                                                            : dev->backoff_us * 2;
	}
	dev->next_try_us = now + dev->backoff_us;
}

static void submit_group(struct mb_group *g)
{
	struct mb_driver *drv = g->drv;
	const struct m2m_host_api *api = drv->api;
	int r = 0;

	if (g->n_readings)
		r = api->submit(drv->host, g->readings, g->n_readings);
	for (size_t i = 0; i < g->n_texts && r >= 0; i++) {
		const struct mb_text *t = &g->texts[i];

		r = api->submit_text(drv->host, t->point, t->ts_us, t->value, t->quality, t->detail);
	}
	if (r < 0 && !drv->submit_failed)
		api->log(drv->host, M2M_LOG_WARNING, "submitting readings of \"%s\" failed: %s",
		         g->dev->name, strerror(-r));
	drv->submit_failed = r < 0;
}

static void poll_done(int status, void *arg)
{
	struct mb_group *g = arg;
	struct mb_driver *drv = g->drv;
	struct mb_device *dev = g->dev;
	const struct mb_cycle *c = &g->cyc;

	drv->inflight--;
	g->busy = false;
	if (g->probe) {
		g->probe = false;
		dev->probing = false;
	}
	if (status == -ECANCELED)
		return;

	dev->polls++;
	dev->requests += c->requests;
	dev->errors += c->failed_requests;
	dev->bad_answers += c->decode_errors;
	if (c->split)
		apply_splits(g);
	if (!drv->running)
		return;
	submit_group(g);

	/*
	 * Online takes an answer that passed every check; a device that only
	 * answers garbage is offline with what was wrong.
	 */
	if (c->fail_quality || (!c->good && c->decode_errors))
		device_down(drv, dev, c);
	else if (c->good)
		device_up(drv, dev);
	if (c->decode_errors && dev->state == DEV_ONLINE)
		report_bad_answers(drv, dev, c);
	if (c->decode_errors)
		set_stat(drv, "bad_answers", dev, (double)dev->bad_answers);

	set_stat(drv, "polls", dev, (double)dev->polls);
	set_stat(drv, "requests", dev, (double)dev->requests);
	if (c->failed_requests)
		set_stat(drv, "errors", dev, (double)dev->errors);
}

/* What a write put or found on the wire, for messages: "0x0001 0x86a0". */
static const char *format_words(const struct mb_write_op *op, const uint16_t *words, char *buf,
                                size_t size)
{
	const struct mb_point *p = op->p;
	unsigned n = p->table == MB_COIL ? 1 : p->nregs;
	size_t len = 0;

	buf[0] = '\0';
	if (p->table == MB_COIL) {
		snprintf(buf, size, "%d", words[0] != 0);
		return buf;
	}
	if (p->type == MB_BOOL) {
		/* regs[0] holds the bit to write, back[0] the whole register read. */
		unsigned v = words == op->back ? (words[0] >> p->bit) & 1u : words[0] != 0;

		snprintf(buf, size, "bit %d = %u", p->bit, v);
		return buf;
	}
	for (unsigned i = 0; i < n && len < size; i++)
		len += (size_t)snprintf(buf + len, size - len, "%s0x%04x", i ? " " : "", words[i]);
	return buf;
}

static void write_done(int status, void *arg)
{
	struct mb_write_op *op = arg;
	struct mb_driver *drv = op->drv;
	const struct m2m_host_api *api = drv->api;
	char text[256], what[96];

	drv->inflight--;
	if (status == -ECANCELED) {
		api->write_done(op->req, -ECANCELED, "the driver stopped before the write ran");
	} else if (op->err) {
		snprintf(text, sizeof(text), "writing %s %" PRIu32 " of \"%s\" failed: %s",
		         mb_table_names[op->p->table], op->p->address, op->p->dev->name,
		         describe_error(op->err, what, sizeof(what)));
		api->write_done(op->req, error_status(op->err), text);
	} else if (op->mismatch) {
		char wrote[32], read[32];

		snprintf(text, sizeof(text), "read-back of %s %" PRIu32 " of \"%s\" differs: wrote %s, read %s",
		         mb_table_names[op->p->table], op->p->address, op->p->dev->name,
		         format_words(op, op->regs, wrote, sizeof(wrote)),
		         format_words(op, op->back, read, sizeof(read)));
		api->write_done(op->req, -EIO, text);
	} else {
		api->write_done(op->req, 0, NULL);
	}
	free(op);
}

/* --- the loop thread: scheduling --- */

static void poll_tick(m2m_timer *timer, void *arg)
{
	struct mb_group *g = arg;
	struct mb_driver *drv = g->drv;
	struct mb_device *dev = g->dev;
	int r;

	(void)timer;
	if (!drv->running)
		return;
	if (g->busy) {
		/* The last cycle has not finished: skip rather than pile up. */
		dev->skipped++;
		set_stat(drv, "skipped", dev, (double)dev->skipped);
		return;
	}
	if (dev->state == DEV_OFFLINE) {
		if (dev->probing || drv->api->mono_us(drv->host) < dev->next_try_us) {
			dev->backoff_skips++;
			return;
		}
		dev->probing = g->probe = true;
	}
	g->busy = true;
	r = drv->api->bus_submit(drv->bus, 0, poll_work, poll_done, g);
	if (r < 0) {
		g->busy = false;
		if (g->probe)
			dev->probing = g->probe = false;
		drv->api->log(drv->host, M2M_LOG_WARNING, "queueing a poll of \"%s\" failed: %s",
		              dev->name, strerror(-r));
		return;
	}
	drv->inflight++;
}

static int index_cmp(const void *a, const void *b)
{
	const struct mb_index *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

static int mb_write(void *driver, uint32_t point, double raw_value, m2m_write *req)
{
	struct mb_driver *drv = driver;
	const struct m2m_host_api *api = drv->api;
	struct mb_index key = { .id = point }, *found;
	const struct mb_point *p;
	struct mb_write_op *op;
	char text[160];
	int r;

	found = bsearch(&key, drv->index, drv->n_points, sizeof(*drv->index), index_cmp);
	if (!found) {
		api->write_done(req, -ENOENT, "not a point of this modbus driver");
		return 0;
	}
	p = &drv->points[found->idx];
	if (!p->writable) {
		/* The host checks this first; a second check costs nothing. */
		api->write_done(req, -EPERM, "the point is not writable");
		return 0;
	}
	if (!drv->running || !drv->bus) {
		api->write_done(req, -ENOTCONN, "the driver is not running");
		return 0;
	}
	op = calloc(1, sizeof(*op));
	if (!op) {
		api->write_done(req, -ENOMEM, "out of memory");
		return 0;
	}
	op->drv = drv;
	op->p = p;
	op->req = req;
	op->value = mb_snap_integer(p->type, raw_value);
	/* Nothing goes on the wire for a value the type cannot hold. */
	r = mb_encode(p->type, p->order, op->value, op->regs);
	if (r < 0) {
		static const char *const ranges[] = {
			[MB_BOOL] = "0 or 1",
			[MB_INT16] = "an integer from -32768 to 32767",
			[MB_UINT16] = "an integer from 0 to 65535",
			[MB_INT32] = "an integer from -2147483648 to 2147483647",
			[MB_UINT32] = "an integer from 0 to 4294967295",
			[MB_INT64] = "a 64-bit signed integer",
			[MB_UINT64] = "a 64-bit unsigned integer",
			[MB_FLOAT32] = "a float32, at most 3.4e38 in magnitude",
			[MB_FLOAT64] = "a finite float64",
		};

		/*
		 * 15 digits: the raw value is the written one through scale and
		 * offset, and 555.49999999999989 says 555.5 less clearly.
		 */
		snprintf(text, sizeof(text), "refused: value %.15g does not fit %s (%s)", raw_value,
		         mb_type_names[p->type],
		         (size_t)p->type < sizeof(ranges) / sizeof(ranges[0]) && ranges[p->type]
		                 ? ranges[p->type] : "out of range");
		free(op);
		api->write_done(req, -ERANGE, text);
		return 0;
	}
	r = api->bus_submit(drv->bus, M2M_BUS_URGENT, write_work, write_done, op);
	if (r < 0) {
		free(op);
		api->write_done(req, r, "queueing the write failed");
		return 0;
	}
	drv->inflight++;
	return 0;
}

static int new_context(struct mb_driver *drv)
{
	char port[16];

	if (drv->ctx)
		return 0;
	if (drv->transport == TRANSPORT_TCP) {
		snprintf(port, sizeof(port), "%d", drv->tcp_port);
		drv->ctx = modbus_new_tcp_pi(drv->tcp_host, port);
	} else {
		drv->ctx = modbus_new_rtu(drv->serial, drv->baud, parity_chars[drv->parity],
		                          drv->data_bits, drv->stop_bits);
	}
	if (!drv->ctx)
		return errno ? -errno : -ENOMEM;
	/* Recovery is ours (bus_request); libmodbus's would sleep on the bus. */
	modbus_set_error_recovery(drv->ctx, MODBUS_ERROR_RECOVERY_NONE);
	return 0;
}

static int mb_start(void *driver)
{
	struct mb_driver *drv = driver;
	const struct m2m_host_api *api;
	int r;

	if (!drv)
		return -EINVAL;
	if (drv->running)
		return 0;
	api = drv->api;
	/*
	 * Work of the last run may still be finishing on a bus the host is
	 * closing; a new bus thread must not share the context with it.
	 */
	if (drv->inflight > 0)
		return -EBUSY;
	r = new_context(drv);
	if (r < 0)
		return r;
	if (!drv->bus) {
		r = api->bus_open(drv->host, drv->bus_name, &drv->bus);
		if (r < 0) {
			drv->bus = NULL;
			return r;
		}
	}
	drv->running = true;
	for (size_t i = 0; i < drv->n_devices; i++) {
		struct mb_device *dev = &drv->devices[i];

		dev->state = DEV_UNKNOWN;
		dev->probing = false;
		update_requests_per_cycle(drv, dev);
	}
	for (size_t i = 0; i < drv->n_groups; i++) {
		struct mb_group *g = &drv->groups[i];
		uint64_t ms = (uint64_t)(g->interval_us / US_PER_MS);

		/* The first poll right away, then every interval. */
		r = api->timer_start(drv->host, 0, ms, poll_tick, g, &g->timer);
		if (r < 0) {
			g->timer = NULL;
			mb_stop(drv);
			return r;
		}
	}
	api->log(drv->host, M2M_LOG_INFO, "polling %zu points of %zu devices on \"%s\"",
	         drv->n_points, drv->n_devices, drv->bus_name);
	return 0;
}

static void mb_stop(void *driver)
{
	struct mb_driver *drv = driver;

	if (!drv || !drv->running)
		return;
	for (size_t i = 0; i < drv->n_groups; i++) {
		drv->api->timer_stop(drv->groups[i].timer);
		drv->groups[i].timer = NULL;
	}
	drv->running = false;
	/* The host closes the bus after stop(); a later start() opens it again. */
	drv->bus = NULL;
}

/* --- configuration --- */

static void plan_free(struct mb_table_plan *tp)
{
	free(tp->spans);
	free(tp->span_first);
	free(tp->members);
	free(tp->breaks);
	free(tp->new_breaks);
	free(tp->blocks);
}

static void mb_free(struct mb_driver *drv)
{
	if (!drv)
		return;
	mb_stop(drv);
	if (drv->ctx) {
		/* Every bus callback has run: the bus thread is done with it. */
		modbus_close(drv->ctx);
		modbus_free(drv->ctx);
	}
	for (size_t i = 0; i < drv->n_groups; i++) {
		for (int t = 0; t < MB_TABLE_COUNT; t++)
			plan_free(&drv->groups[i].plans[t]);
		free(drv->groups[i].readings);
		free(drv->groups[i].texts);
	}
	free(drv->groups);
	for (size_t i = 0; i < drv->n_devices; i++)
		free(drv->devices[i].name);
	free(drv->devices);
	free(drv->points);
	free(drv->index);
	free(drv->tcp_host);
	free(drv->serial);
	free(drv->bus_name);
	free(drv);
}

/* The item of KEY for an error's location, or OBJ when the key is absent. */
static const cJSON *key_item(const cJSON *obj, const char *key)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);

	return item ? item : obj;
}

/* Formats a duration for a message: "250ms", "5s", "24h". */
static const char *format_us(int64_t us, char *buf, size_t size)
{
	if (us % (3600 * US_PER_S) == 0 && us > 0)
		snprintf(buf, size, "%" PRId64 "h", us / (3600 * US_PER_S));
	else if (us % US_PER_S == 0 && us > 0)
		snprintf(buf, size, "%" PRId64 "s", us / US_PER_S);
	else if (us % US_PER_MS == 0)
		snprintf(buf, size, "%" PRId64 "ms", us / US_PER_MS);
	else
		snprintf(buf, size, "%" PRId64 "us", us);
	return buf;
}

/* Reads an int key into an int; returns 0 or the getter's -EINVAL. */
static int get_int(struct mb_driver *drv, const cJSON *obj, const char *key, int64_t def,
                   int64_t min, int64_t max, int *ret)
{
	int64_t v;
	int r = drv->api->cfg_int(drv->host, obj, key, def, min, max, &v);

	if (r < 0)
		return r;
	*ret = (int)v;
	return 0;
}

static int get_unsigned(struct mb_driver *drv, const cJSON *obj, const char *key, unsigned def,
                        unsigned min, unsigned max, unsigned *ret)
{
	int v, r = get_int(drv, obj, key, def, min, max, &v);

	if (r < 0)
		return r;
	*ret = (unsigned)v;
	return 0;
}

static int get_duration(struct mb_driver *drv, const cJSON *obj, const char *key, int64_t def,
                        int64_t min, int64_t max, int64_t *ret)
{
	char lo[32], hi[32];
	int r = drv->api->cfg_duration(drv->host, obj, key, def, ret);

	if (r < 0)
		return r;
	if (*ret < min || *ret > max)
		return CFG_ERROR(drv, key_item(obj, key), "expected a duration from %s to %s",
		                 format_us(min, lo, sizeof(lo)), format_us(max, hi, sizeof(hi)));
	return 0;
}

static int get_bool(struct mb_driver *drv, const cJSON *obj, const char *key, bool def,
                    bool *ret)
{
	int v, r = drv->api->cfg_bool(drv->host, obj, key, def, &v);

	if (r < 0)
		return r;
	*ret = v != 0;
	return 0;
}

/* A required string, copied. */
static int get_string(struct mb_driver *drv, const cJSON *obj, const char *key,
                      const char *what, char **ret)
{
	const char *s;
	int r = drv->api->cfg_string(drv->host, obj, key, NULL, &s);

	if (r < 0)
		return r;
	if (r == 0 || !s || !*s)
		return CFG_ERROR(drv, obj, "missing key '%s' (%s)", key, what);
	*ret = strdup(s);
	return *ret ? 0 : -ENOMEM;
}

static bool baud_supported(int64_t baud)
{
	static const int rates[] = { 110, 300, 600, 1200, 2400, 4800, 9600, 19200, 38400,
		                     57600, 115200, 230400, 460800, 500000, 576000, 921600,
		                     1000000, 1152000, 1500000, 2000000, 2500000, 3000000,
		                     3500000, 4000000 };

	for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++)
		if (rates[i] == baud)
			return true;
	return false;
}

/* Bus-wide settings; devices take the request settings as defaults. */
struct mb_defaults {
	int64_t timeout_us;
	int retries;
	int64_t delay_us;
	unsigned max_gap;
	unsigned max_gap_bits;
};

static int parse_bus(struct mb_driver *drv, const cJSON *config, struct mb_defaults *d)
{
	const struct m2m_host_api *api = drv->api;
	m2m_host *host = drv->host;
	int r;

	r = api->cfg_enum(host, config, "transport", transport_names, TRANSPORT_TCP,
	                  &drv->transport);
	if (r < 0)
		return r;

	if (drv->transport == TRANSPORT_TCP) {
		r = get_string(drv, config, "host", "the server's address or name", &drv->tcp_host);
		if (r == 0)
			r = get_int(drv, config, "port", 502, 1, 65535, &drv->tcp_port);
		if (r < 0)
			return r;
		if (asprintf(&drv->bus_name, "tcp:%s:%d", drv->tcp_host, drv->tcp_port) < 0) {
			drv->bus_name = NULL;
			return -ENOMEM;
		}
		d->delay_us = 0;
	} else {
		int64_t baud;
		double char_us;

		r = get_string(drv, config, "device", "the serial device, e.g. /dev/ttyUSB0",
		               &drv->serial);
		if (r < 0)
			return r;
		if (drv->serial[0] != '/')
			return CFG_ERROR(drv, key_item(config, "device"), "'device' must be an absolute path, not \"%s\"",
			                 drv->serial);
		r = api->cfg_int(host, config, "baud", 9600, 50, 4000000, &baud);
		if (r < 0)
			return r;
		if (!baud_supported(baud))
			return CFG_ERROR(drv, key_item(config, "baud"), "%" PRId64 " is not a standard rate "
			                 "(1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, ...)",
			                 baud);
		drv->baud = (int)baud;
		/* The Modbus serial line spec's default is even parity. */
		r = api->cfg_enum(host, config, "parity", parity_names, 1, &drv->parity);
		if (r == 0 || r == 1)
			r = get_int(drv, config, "data_bits", 8, 5, 8, &drv->data_bits);
		if (r == 0)
			r = get_int(drv, config, "stop_bits", 1, 1, 2, &drv->stop_bits);
		if (r == 0)
			r = get_bool(drv, config, "rs485", false, &drv->rs485);
		if (r < 0)
			return r;
		if (asprintf(&drv->bus_name, "rtu:%s", drv->serial) < 0) {
			drv->bus_name = NULL;
			return -ENOMEM;
		}
		/*
		 * The silent interval (3.5 characters of 11 bits, 1.75ms above
		 * 19200 baud) that tells the next device a frame starts.
		 */
		char_us = 11.0 * 1e6 / (double)drv->baud;
		d->delay_us = drv->baud > 19200 ? 1750 : (int64_t)ceil(3.5 * char_us);
	}

	r = get_duration(drv, config, "timeout", 500 * US_PER_MS, US_PER_MS, 60 * US_PER_S,
	                 &d->timeout_us);
	if (r == 0)
		r = get_int(drv, config, "retries", 1, 0, 10, &d->retries);
	if (r == 0)
		r = get_duration(drv, config, "inter_request_delay", d->delay_us, 0, 10 * US_PER_S,
		                 &d->delay_us);
	if (r == 0)
		r = get_duration(drv, config, "backoff_max", 30 * US_PER_S, 100 * US_PER_MS,
		                 3600 * US_PER_S, &drv->backoff_max_us);
	if (r == 0)
		r = get_unsigned(drv, config, "max_gap", 16, 0, MB_MAX_READ_REGISTERS - 2,
		                 &d->max_gap);
	if (r == 0)
		r = get_unsigned(drv, config, "max_gap_bits", 64, 0, MB_MAX_READ_BITS - 2,
		                 &d->max_gap_bits);
	return r;
}

static int parse_device(struct mb_driver *drv, const cJSON *obj, const struct mb_defaults *d,
                        struct mb_device *dev)
{
	int r;

	dev->drv = drv;
	r = get_string(drv, obj, "name", "the device name, the first part of its point names",
	               &dev->name);
	if (r < 0)
		return r;
	if (strchr(dev->name, '/'))
		return CFG_ERROR(drv, key_item(obj, "name"), "device name \"%s\" must not contain '/'",
		                 dev->name);
	for (size_t i = 0; &drv->devices[i] != dev; i++)
		if (strcmp(drv->devices[i].name, dev->name) == 0)
			return CFG_ERROR(drv, key_item(obj, "name"), "a second device named \"%s\" on this bus",
			                 dev->name);

	if (drv->transport == TRANSPORT_TCP) {
		/* libmodbus takes 0..247 and 255 ("the server itself") over TCP. */
		r = get_int(drv, obj, "unit_id", 1, 0, 255, &dev->unit_id);
		if (r == 0 && dev->unit_id > 247 && dev->unit_id != 255)
			return CFG_ERROR(drv, key_item(obj, "unit_id"), "expected 0..247 or 255, got %d",
			                 dev->unit_id);
	} else {
		r = get_int(drv, obj, "unit_id", 1, 1, 247, &dev->unit_id);
	}
	if (r < 0)
		return r;
	for (size_t i = 0; &drv->devices[i] != dev; i++)
		if (drv->devices[i].unit_id == dev->unit_id)
			return CFG_ERROR(drv, key_item(obj, "unit_id"),
			                 "unit_id %d is already device \"%s\" on this bus",
			                 dev->unit_id, drv->devices[i].name);

	r = get_duration(drv, obj, "interval", US_PER_S, US_PER_MS, 24 * 3600 * US_PER_S,
	                 &dev->interval_us);
	if (r == 0)
		r = get_duration(drv, obj, "timeout", d->timeout_us, US_PER_MS, 60 * US_PER_S,
		                 &dev->timeout_us);
	if (r == 0)
		r = get_int(drv, obj, "retries", d->retries, 0, 10, &dev->retries);
	if (r == 0)
		r = get_duration(drv, obj, "inter_request_delay", d->delay_us, 0, 10 * US_PER_S,
		                 &dev->delay_us);
	if (r == 0)
		r = get_unsigned(drv, obj, "max_registers", MB_MAX_READ_REGISTERS, 1,
		                 MB_MAX_READ_REGISTERS, &dev->max_registers);
	if (r == 0)
		r = get_unsigned(drv, obj, "max_bits", MB_MAX_READ_BITS, 1, MB_MAX_READ_BITS,
		                 &dev->max_bits);
	if (r == 0)
		r = get_unsigned(drv, obj, "max_gap", d->max_gap, 0, MB_MAX_READ_REGISTERS - 2,
		                 &dev->max_gap);
	if (r == 0)
		r = get_unsigned(drv, obj, "max_gap_bits", d->max_gap_bits, 0, MB_MAX_READ_BITS - 2,
		                 &dev->max_gap_bits);
	if (r == 0)
		r = get_bool(drv, obj, "write_multiple", false, &dev->write_multiple);
	if (r < 0)
		return r;
	if (dev->interval_us % US_PER_MS)
		return CFG_ERROR(drv, key_item(obj, "interval"),
		                 "expected a whole number of milliseconds");
	return 0;
}

/* True when OBJ's KEY is the string VALUE; reads without marking the key as known. */
static bool key_is(const cJSON *obj, const char *key, const char *value)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsString(item) && strcmp(item->valuestring, value) == 0;
}

/*
 * Declares the point of OBJ. A coil, a discrete input or a point of type
 * "bool" is a bool without kind = "bool" being written: it holds a bit,
 * and MQTT must send true/false. The host reads the kind from the point's
 * table and ABI 1.0 has no other way to tell it, so a "kind" item is put
 * into the table for the call and taken out again: the tree is as it was
 * (reload compares it), and the item carries no position, so no message
 * can point at it. Only during create, on the loop thread.
 */
static int declare(struct mb_driver *drv, struct mb_device *dev, const cJSON *obj, uint32_t *ret)
{
	bool implied = !cJSON_GetObjectItemCaseSensitive(obj, "kind") &&
	               (key_is(obj, "table", "coil") || key_is(obj, "table", "discrete_input") ||
	                key_is(obj, "type", "bool"));
	cJSON *table = (cJSON *)obj, *kind = NULL;
	int r;

	if (implied) {
		kind = cJSON_CreateString("bool");
		if (!kind || !cJSON_AddItemToObject(table, "kind", kind)) {
			cJSON_Delete(kind);
			return -ENOMEM;
		}
	}
	r = drv->api->declare_point(drv->host, dev->name, obj, ret);
	if (kind)
		cJSON_Delete(cJSON_DetachItemViaPointer(table, kind));
	return r;
}

static int parse_point(struct mb_driver *drv, const cJSON *obj, struct mb_device *dev,
                       struct mb_point *p)
{
	const struct m2m_host_api *api = drv->api;
	m2m_host *host = drv->host;
	const char *kind = NULL;
	bool bits, is_string_kind;
	int64_t address;
	unsigned max;
	int r;

	p->dev = dev;
	p->bit = -1;
	p->order = MB_ABCD;
	r = declare(drv, dev, obj, &p->id);
	if (r < 0)
		return r;

	r = api->cfg_enum(host, obj, "table", mb_table_names, -1, &p->table);
	if (r < 0)
		return r;
	if (r == 0)
		return CFG_ERROR(drv, obj, "missing key 'table' (coil, discrete_input, "
		                 "input_register or holding_register)");
	bits = mb_table_is_bits(p->table);
	r = api->cfg_int(host, obj, "address", -1, 0, 65535, &address);
	if (r < 0)
		return r;
	if (r == 0)
		return CFG_ERROR(drv, obj, "missing key 'address' (0..65535, the protocol "
		                 "address, not the 4xxxx register number)");
	p->address = (uint32_t)address;

	r = api->cfg_enum(host, obj, "type", mb_type_names, bits ? MB_BOOL : MB_UINT16, &p->type);
	if (r < 0)
		return r;
	if (bits && p->type != MB_BOOL)
		return CFG_ERROR(drv, key_item(obj, "type"), "type %s does not fit table %s: coils and discrete "
		                 "inputs hold single bits (type = \"bool\")",
		                 mb_type_names[p->type], mb_table_names[p->table]);

	if (!bits && p->type == MB_BOOL) {
		r = get_int(drv, obj, "bit", -1, 0, 15, &p->bit);
		if (r < 0)
			return r;
		if (p->bit < 0)
			return CFG_ERROR(drv, obj, "a bool in a register needs 'bit' (0..15, 0 = the "
			                 "least significant)");
	}

	max = bits ? dev->max_bits : dev->max_registers;
	if (p->type == MB_STRING) {
		int length;

		r = get_int(drv, obj, "length", 0, 0, MB_STRING_MAX_REGISTERS, &length);
		if (r < 0)
			return r;
		if (length <= 0)
			return CFG_ERROR(drv, obj, "a string needs 'length', its size in registers "
			                 "(1..%d)", MB_STRING_MAX_REGISTERS);
		p->nregs = (uint32_t)length;
	} else {
		p->nregs = mb_type_registers(p->type, 0);
	}
	if (p->nregs > max)
		return CFG_ERROR(drv, obj, "a %s of %" PRIu32 " registers does not fit in one "
		                 "request of device \"%s\" (max_registers = %u)",
		                 mb_type_names[p->type], p->nregs, dev->name, max);
	if (p->address + p->nregs > 65536)
		return CFG_ERROR(drv, key_item(obj, "address"),
		                 "a %s at address %" PRIu32 " runs past address 65535",
		                 mb_type_names[p->type], p->address);

	if (!bits && p->type != MB_BOOL) {
		r = api->cfg_enum(host, obj, "order", mb_order_names, MB_ABCD, &p->order);
		if (r < 0)
			return r;
		if (!mb_order_valid(p->type, p->order))
			return CFG_ERROR(drv, key_item(obj, "order"), "order %s does not apply to a string: its "
			                 "characters are in address order (ABCD or BADC)",
			                 mb_order_names[p->order]);
	}

	r = get_duration(drv, obj, "interval", dev->interval_us, US_PER_MS, 24 * 3600 * US_PER_S,
	                 &p->interval_us);
	if (r < 0)
		return r;
	if (p->interval_us % US_PER_MS)
		return CFG_ERROR(drv, key_item(obj, "interval"),
		                 "expected a whole number of milliseconds");

	/*
	 * The host parses these generic keys itself; reading them again here
	 * only checks that they agree with the Modbus address.
	 */
	r = get_bool(drv, obj, "writable", false, &p->writable);
	if (r < 0)
		return r;
	if (p->writable && !mb_table_is_writable(p->table))
		return CFG_ERROR(drv, key_item(obj, "writable"), "table %s is read-only; only coils "
		                 "and holding registers are writable", mb_table_names[p->table]);
	if (p->writable && p->type == MB_STRING)
		return CFG_ERROR(drv, key_item(obj, "writable"), "string points cannot be writable "
		                 "(writes carry a number)");
	r = get_bool(drv, obj, "verify", false, &p->verify);
	if (r < 0)
		return r;
	if (p->verify && !p->writable)
		return CFG_ERROR(drv, key_item(obj, "verify"), "'verify' (read back after a write) needs "
		                 "writable = true");
	r = api->cfg_string(host, obj, "kind", NULL, &kind);
	if (r < 0)
		return r;
	is_string_kind = kind && strcmp(kind, "string") == 0;
	if (p->type == MB_STRING && !is_string_kind)
		return CFG_ERROR(drv, obj, "a point of type string needs kind = \"string\"");
	if (p->type != MB_STRING && is_string_kind)
		return CFG_ERROR(drv, obj, "kind = \"string\" needs type = \"string\" and 'length'");
	return 0;
}

/* Sort key of the overlap check and the spans: device, table, address, bit. */
static int point_cmp(const void *a, const void *b, void *arg)
{
	const struct mb_driver *drv = arg;
	const struct mb_point *x = &drv->points[*(const uint32_t *)a];
	const struct mb_point *y = &drv->points[*(const uint32_t *)b];

	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	if (x->table != y->table)
		return x->table < y->table ? -1 : 1;
	if (x->address != y->address)
		return x->address < y->address ? -1 : 1;
	return x->bit < y->bit ? -1 : x->bit > y->bit;
}

/* "10", "10..11" or "10 bit 3", for messages. */
static const char *describe_range(const struct mb_point *p, char *buf, size_t size)
{
	if (p->bit >= 0)
		snprintf(buf, size, "%" PRIu32 " bit %d", p->address, p->bit);
	else if (p->nregs > 1)
		snprintf(buf, size, "%" PRIu32 "..%" PRIu32, p->address, p->address + p->nregs - 1);
	else
		snprintf(buf, size, "%" PRIu32, p->address);
	return buf;
}

/*
 * Rejects points that read the same addresses of one device and table,
 * except bool points on different bits of one register.
 */
static int check_overlaps(struct mb_driver *drv, const uint32_t *sorted,
                          const cJSON *const *items, const char *const *names)
{
	const struct mb_point *holder = NULL; /* the point reaching furthest so far */
	uint32_t holder_idx = 0;

	for (size_t i = 0; i < drv->n_points; i++) {
		uint32_t idx = sorted[i];
		const struct mb_point *p = &drv->points[idx];

		if (holder && (holder->dev != p->dev || holder->table != p->table))
			holder = NULL;
		if (holder && p->address < holder->address + holder->nregs) {
			bool bits_of_one_register = holder->bit >= 0 && p->bit >= 0 &&
			                            holder->address == p->address;

			char a[48], b[48];

			if (!bits_of_one_register || holder->bit == p->bit)
				return CFG_ERROR(drv, items[idx],
				                 "point \"%s\" (%s %s) overlaps point \"%s\" (%s %s) "
				                 "of device \"%s\"",
				                 names[idx], mb_table_names[p->table],
				                 describe_range(p, a, sizeof(a)), names[holder_idx],
				                 mb_table_names[holder->table],
				                 describe_range(holder, b, sizeof(b)), p->dev->name);
		}
		if (!holder || p->address + p->nregs > holder->address + holder->nregs ||
		    p->bit >= 0) {
			holder = p;
			holder_idx = idx;
		}
	}
	return 0;
}

/* Builds the spans of one table of group G from its members in sorted order. */
static int build_plan(struct mb_driver *drv, struct mb_group *g, int table,
                      const uint32_t *sorted)
{
	struct mb_table_plan *tp = &g->plans[table];
	const struct mb_device *dev = g->dev;
	size_t n = 0, s = 0;

	for (size_t i = 0; i < drv->n_points; i++) {
		const struct mb_point *p = &drv->points[sorted[i]];

		if (p->group == g && p->table == table)
			n++;
	}
	if (n == 0)
		return 0;
	tp->spans = calloc(n, sizeof(*tp->spans));
	tp->span_first = calloc(n + 1, sizeof(*tp->span_first));
	tp->members = calloc(n, sizeof(*tp->members));
	tp->breaks = calloc(n, sizeof(*tp->breaks));
	tp->new_breaks = calloc(n, sizeof(*tp->new_breaks));
	tp->blocks = calloc(n, sizeof(*tp->blocks));
	if (!tp->spans || !tp->span_first || !tp->members || !tp->breaks || !tp->new_breaks ||
	    !tp->blocks)
		return -ENOMEM;

	n = 0;
	for (size_t i = 0; i < drv->n_points; i++) {
		const struct mb_point *p = &drv->points[sorted[i]];

		if (p->group != g || p->table != table)
			continue;
		/* Bits of one register share its span. */
		if (s == 0 || p->address != tp->spans[s - 1].start || p->bit < 0) {
			tp->spans[s] = (struct mb_span){ .start = p->address, .count = p->nregs };
			tp->span_first[s] = (uint32_t)n;
			s++;
		}
		tp->members[n++] = sorted[i];
	}
	tp->span_first[s] = (uint32_t)n;
	tp->n_spans = s;
	tp->max_count = mb_table_is_bits(table) ? dev->max_bits : dev->max_registers;
	tp->max_gap = mb_table_is_bits(table) ? dev->max_gap_bits : dev->max_gap;
	if (plan_table(tp) == 0)
		return -EINVAL; /* parse_point and check_overlaps make this impossible */
	return 0;
}

/* One group per device and interval, with its buffers allocated now. */
static int build_groups(struct mb_driver *drv, const uint32_t *sorted)
{
	int r;

	drv->groups = calloc(drv->n_points, sizeof(*drv->groups));
	if (!drv->groups)
		return -ENOMEM;
	for (size_t i = 0; i < drv->n_points; i++) {
		struct mb_point *p = &drv->points[i];
		size_t gi;

		for (gi = 0; gi < drv->n_groups; gi++)
			if (drv->groups[gi].dev == p->dev &&
			    drv->groups[gi].interval_us == p->interval_us)
				break;
		if (gi == drv->n_groups) {
			drv->groups[gi] = (struct mb_group){
				.drv = drv,
				.dev = p->dev,
				.interval_us = p->interval_us,
			};
			drv->n_groups++;
		}
		p->group = &drv->groups[gi];
		p->slot = (uint32_t)(p->type == MB_STRING ? p->group->n_texts++
		                                          : p->group->n_readings++);
	}
	for (size_t gi = 0; gi < drv->n_groups; gi++) {
		struct mb_group *g = &drv->groups[gi];

		g->readings = calloc(g->n_readings ? g->n_readings : 1, sizeof(*g->readings));
		g->texts = calloc(g->n_texts ? g->n_texts : 1, sizeof(*g->texts));
		if (!g->readings || !g->texts)
			return -ENOMEM;
		if (!g->dev->min_interval_us || g->interval_us < g->dev->min_interval_us)
			g->dev->min_interval_us = g->interval_us;
		for (int t = 0; t < MB_TABLE_COUNT; t++) {
			r = build_plan(drv, g, t, sorted);
			if (r < 0)
				return r;
		}
	}
	for (size_t i = 0; i < drv->n_points; i++) {
		const struct mb_point *p = &drv->points[i];

		if (p->type == MB_STRING)
			p->group->texts[p->slot].point = p->id;
		else
			p->group->readings[p->slot] = (struct m2m_reading){ .point = p->id };
	}
	return 0;
}

static int build_index(struct mb_driver *drv)
{
	drv->index = calloc(drv->n_points, sizeof(*drv->index));
	if (!drv->index)
		return -ENOMEM;
	for (size_t i = 0; i < drv->n_points; i++)
		drv->index[i] = (struct mb_index){ .id = drv->points[i].id, .idx = (uint32_t)i };
	qsort(drv->index, drv->n_points, sizeof(*drv->index), index_cmp);
	return 0;
}

/* Counts the point tables of every device, checking the arrays' shapes. */
static int count_points(struct mb_driver *drv, const cJSON *devices, size_t *ret)
{
	const cJSON *dobj;
	size_t n = 0;

	cJSON_ArrayForEach(dobj, devices) {
		const cJSON *points = cJSON_GetObjectItemCaseSensitive(dobj, "points");

		if (!cJSON_IsObject(dobj))
			return CFG_ERROR(drv, dobj, "expected a device table ([[drivers.NAME.devices]])");
		/* The getter marks the key; this only sizes the arrays. */
		if (cJSON_IsArray(points))
			n += (size_t)cJSON_GetArraySize(points);
	}
	*ret = n;
	return 0;
}

static int parse_devices(struct mb_driver *drv, const cJSON *devices,
                         const struct mb_defaults *d, const cJSON **items, const char **names)
{
	const struct m2m_host_api *api = drv->api;
	const cJSON *dobj;
	size_t np = 0;
	int r;

	cJSON_ArrayForEach(dobj, devices) {
		struct mb_device *dev = &drv->devices[drv->n_devices++];
		const cJSON *points, *pobj;

		r = parse_device(drv, dobj, d, dev);
		if (r < 0)
			return r;
		points = api->cfg_item(drv->host, dobj, "points");
		if (!points || !cJSON_IsArray(points) || cJSON_GetArraySize(points) == 0)
			return CFG_ERROR(drv, points ? points : dobj,
			                 "device \"%s\" needs 'points', a non-empty array of point "
			                 "tables ([[drivers.NAME.devices.points]])", dev->name);
		cJSON_ArrayForEach(pobj, points) {
			struct mb_point *p = &drv->points[np];

			if (!cJSON_IsObject(pobj))
				return CFG_ERROR(drv, pobj, "expected a point table");
			items[np] = pobj;
			r = api->cfg_string(drv->host, pobj, "name", NULL, &names[np]);
			if (r < 0)
				return r;
			if (!names[np])
				names[np] = "?";
			r = parse_point(drv, pobj, dev, p);
			if (r < 0)
				return r;
			drv->n_points = ++np;
		}
	}
	return 0;
}

static int mb_create(m2m_host *host, const struct m2m_host_api *api, const struct cJSON *config,
                     void **ret_driver)
{
	struct mb_defaults d = { 0 };
	const cJSON *devices;
	const cJSON **items = NULL;
	const char **names = NULL;
	uint32_t *sorted = NULL;
	struct mb_driver *drv;
	size_t n_points = 0;
	int r;

	/* Every host function used here is in ABI 1.0; check the table has them. */
	if (!api || !M2M_HAS_FIELD(struct m2m_host_api, api->struct_size, write_done))
		return -EPROTO;
	drv = calloc(1, sizeof(*drv));
	if (!drv)
		return -ENOMEM;
	drv->host = host;
	drv->api = api;

	r = parse_bus(drv, config, &d);
	if (r < 0)
		goto fail;

	devices = api->cfg_item(host, config, "devices");
	if (!devices || !cJSON_IsArray(devices) || cJSON_GetArraySize(devices) == 0) {
		r = CFG_ERROR(drv, devices ? devices : config,
		              "expected 'devices', a non-empty array of device tables "
		              "([[drivers.NAME.devices]])");
		goto fail;
	}
	r = count_points(drv, devices, &n_points);
	if (r < 0)
		goto fail;
	r = -ENOMEM;
	drv->devices = calloc((size_t)cJSON_GetArraySize(devices), sizeof(*drv->devices));
	drv->points = calloc(n_points ? n_points : 1, sizeof(*drv->points));
	items = calloc(n_points ? n_points : 1, sizeof(*items));
	names = calloc(n_points ? n_points : 1, sizeof(*names));
	sorted = calloc(n_points ? n_points : 1, sizeof(*sorted));
	if (!drv->devices || !drv->points || !items || !names || !sorted)
		goto fail;

	r = parse_devices(drv, devices, &d, items, names);
	if (r < 0)
		goto fail;
	for (size_t i = 0; i < drv->n_points; i++)
		sorted[i] = (uint32_t)i;
	qsort_r(sorted, drv->n_points, sizeof(*sorted), point_cmp, drv);
	r = check_overlaps(drv, sorted, items, names);
	if (r < 0)
		goto fail;
	r = build_groups(drv, sorted);
	if (r < 0)
		goto fail;
	r = build_index(drv);
	if (r < 0)
		goto fail;

	free(items);
	free(names);
	free(sorted);
	*ret_driver = drv;
	return 0;

fail:
	free(items);
	free(names);
	free(sorted);
	mb_free(drv);
	return r < 0 ? r : -EINVAL;
}

static void mb_destroy(void *driver)
{
	mb_free(driver);
}

static const struct m2m_driver_ops mb_ops = {
	.struct_size = sizeof(struct m2m_driver_ops),
	.create = mb_create,
	.start = mb_start,
	.stop = mb_stop,
	.destroy = mb_destroy,
	.write = mb_write,
};

static const struct m2m_plugin mb_plugin = {
	.struct_size = sizeof(struct m2m_plugin),
	.abi_major = M2M_ABI_MAJOR,
	/* The lowest minor this plugin needs: it uses nothing added after 1.0. */
	.abi_minor = 0,
	.name = "modbus",
	.version = MB_VERSION,
	.description = "Modbus TCP and RTU (libmodbus): block reads, every common type, writes",
	.ops = &mb_ops,
};

/* A prototype first: the macro only starts the definition. */
M2M_PLUGIN_ENTRY;

M2M_PLUGIN_ENTRY
{
	(void)host_abi_minor; /* this plugin uses nothing beyond ABI 1.0 */
	if (host_abi_major != M2M_ABI_MAJOR)
		return NULL;
	return &mb_plugin;
}
