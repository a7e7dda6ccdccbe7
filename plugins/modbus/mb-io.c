/* SPDX-License-Identifier: MIT */
/*
 * mb-io.c - the Modbus driver's bus thread: libmodbus, one request at a
 * time, and the work items that read a poll group or do a write.
 *
 * Every function here but the error descriptions runs on the bus thread,
 * on what modbus.c's hand-off gave it: a group's plan, readings and cycle
 * results, or one write. The wire is reached through drv->io (mb-driver.h);
 * mb_io_libmodbus below is the real one.
 *
 * libmodbus error codes are translated in exactly one place,
 * mb_classify_error().
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
#include <unistd.h>

#include "mb-driver.h"
#include "mb-tcp.h"

static const char parity_chars[] = { 'N', 'E', 'O' };

/* --- errors --- */

/* True when ERR (a positive errno from libmodbus) is a Modbus exception. */
bool mb_is_exception(int err)
{
	return err > MODBUS_ENOBASE && err <= EMBXGTAR;
}

/*
 * The one place that translates libmodbus errors: into a reading quality
 * and detail (the exception code, or the errno of a transport failure),
 * and whether the failure means the device (or the link) is down rather
 * than one request being refused.
 */
void mb_classify_error(int err, uint16_t *ret_quality, uint16_t *ret_detail,
                           bool *ret_device_down)
{
	*ret_detail = 0;
	*ret_device_down = false;
	if (mb_is_exception(err)) {
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
int mb_error_status(int err)
{
	if (mb_is_exception(err))
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
const char *mb_describe_error(int err, char *buf, size_t size)
{
	if (mb_is_exception(err))
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

/* --- the bus thread: libmodbus --- */

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
		if (mb_is_exception(err))
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

static int libmodbus_open(struct mb_driver *drv)
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

/* Every bus callback has run: the bus thread is done with the context. */
static void libmodbus_close(struct mb_driver *drv)
{
	if (!drv->ctx)
		return;
	modbus_close(drv->ctx);
	modbus_free(drv->ctx);
	drv->ctx = NULL;
	drv->connected = false;
}

const struct mb_io mb_io_libmodbus = {
	.open = libmodbus_open,
	.close = libmodbus_close,
	.select = bus_select,
	.request = bus_request,
};

/* --- the work items: a poll group's cycle, a write --- */

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
	r = drv->io->request(drv, g->dev, &rq, &c->requests);
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
	mb_classify_error(-r, &quality, &detail, &down);
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

/*
 * Hands the slots of block B of TP over to the loop: they follow the ones
 * handed before (mb-config.c numbers slots in reading order), so the new
 * totals are published with release order, and the loop is woken unless
 * this was the cycle's last block, which the done callback hands over.
 */
static void hand_block(struct mb_group *g, const struct mb_table_plan *tp,
                       const struct mb_block *b, uint32_t *n_readings, uint32_t *n_texts,
                       bool last)
{
	struct mb_driver *drv = g->drv;
	uint64_t one = 1;

	for (uint32_t m = tp->span_first[b->first]; m < tp->span_first[b->first + b->n]; m++) {
		if (drv->points[tp->members[m]].type == MB_STRING)
			(*n_texts)++;
		else
			(*n_readings)++;
	}
	atomic_store_explicit(&g->ready, (uint64_t)*n_readings << 32 | *n_texts,
	                      memory_order_release);
	if (!last && drv->wake_fd >= 0) {
		ssize_t w = write(drv->wake_fd, &one, sizeof(one));

		(void)w; /* a wake-up that failed only leaves this block to the done callback */
	}
}

int mb_poll_work(void *arg)
{
	struct mb_group *g = arg;
	uint32_t n_readings = 0, n_texts = 0;
	size_t blocks = 0, done = 0;

	memset(&g->cyc, 0, sizeof(g->cyc));
	g->drv->io->select(g->drv, g->dev);
	for (int t = 0; t < MB_TABLE_COUNT; t++)
		blocks += g->plans[t].n_blocks;
	for (int t = 0; t < MB_TABLE_COUNT; t++) {
		struct mb_table_plan *tp = &g->plans[t];

		for (size_t b = 0; b < tp->n_blocks; b++) {
			read_range(g, t, tp, tp->blocks[b].first, tp->blocks[b].n);
			hand_block(g, tp, &tp->blocks[b], &n_readings, &n_texts, ++done == blocks);
		}
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
	int r = drv->io->request(drv, p->dev, &rq, requests);

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

int mb_write_work(void *arg)
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

	drv->io->select(drv, dev);
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

		r = drv->io->request(drv, dev, &rd, &requests);
		if (r < 0)
			goto out;
		reg = (uint16_t)(bit ? reg | (1u << p->bit) : reg & ~(1u << p->bit));
		rq.regs = &reg;
		rq.count = 1;
		rq.fc = dev->write_multiple ? FC_WRITE_REGISTERS : FC_WRITE_REGISTER;
	} else {
		rq.fc = p->nregs > 1 || dev->write_multiple ? FC_WRITE_REGISTERS : FC_WRITE_REGISTER;
	}
	r = drv->io->request(drv, dev, &rq, &requests);
	if (r == 0 && p->verify)
		r = verify_write(op, &requests);
out:
	op->err = r < 0 ? -r : 0;
	return r;
}
