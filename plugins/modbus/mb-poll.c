/* SPDX-License-Identifier: MIT */
/*
 * mb-poll.c - the Modbus driver's loop thread: the poll timers, what a
 * finished cycle means (readings, device online or offline, statistics,
 * remembered splits) and writes from ops.write to write_done.
 *
 * Everything here runs on the loop thread. A group's fields written by the
 * bus thread (readings, texts, cyc, new_breaks) are read only in the done
 * callback, after the hand-off back (see modbus.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mb-driver.h"

/* --- statistics --- */

/*
 * Declares each device's statistics, typed and labelled by device (ABI
 * 1.1; on a 1.0 host the kit turns them into "name.device" stats, the
 * names m2mctl and status showed before). requests_per_cycle is one gauge
 * per device, or one per poll group, labelled "<device>@<interval>", when
 * the device's points have several intervals: groups of different
 * intervals run different cycles, and their sum is no cycle the device
 * ever sees. Statistics are not worth failing create over: a declaration
 * the host refuses falls back to the 1.0 stat and is logged.
 */
static void declare_stat(struct mb_driver *drv, struct m2m_stat_slot *slot, const char *name,
                         const char *label, int kind, const char *help)
{
	int r = m2m_stat_slot_declare(slot, drv->api, drv->host, name, label, kind, help);

	if (r < 0)
		drv->api->log(drv->host, M2M_LOG_WARNING, "declaring statistic %s of \"%s\" failed: %s",
		              name, label, strerror(-r));
}

void mb_declare_stats(struct mb_driver *drv)
{
	/* One help per name: every instance and group shares the family (docs/metrics.md). */
	static const char per_cycle_help[] = "Read requests in one poll cycle of a poll group.";

	for (size_t i = 0; i < drv->n_devices; i++) {
		struct mb_device *dev = &drv->devices[i];
		struct mb_dev_stats *st = &dev->st;

		declare_stat(drv, &st->polls, "polls", dev->name, M2M_STAT_COUNTER,
		             "Poll cycles run.");
		declare_stat(drv, &st->requests, "requests", dev->name, M2M_STAT_COUNTER,
		             "Read requests sent.");
		declare_stat(drv, &st->errors, "errors", dev->name, M2M_STAT_COUNTER,
		             "Requests that failed.");
		declare_stat(drv, &st->skipped, "skipped", dev->name, M2M_STAT_COUNTER,
		             "Poll ticks skipped because the previous cycle was still queued.");
		declare_stat(drv, &st->bad_answers, "bad_answers", dev->name, M2M_STAT_COUNTER,
		             "Answers that did not match the request.");
		declare_stat(drv, &st->online, "online", dev->name, M2M_STAT_GAUGE,
		             "1 while the device answers, else 0.");
		if (dev->n_groups == 1)
			declare_stat(drv, &st->requests_per_cycle, "requests_per_cycle", dev->name,
			             M2M_STAT_GAUGE, per_cycle_help);
	}
	for (size_t i = 0; i < drv->n_groups; i++) {
		struct mb_group *g = &drv->groups[i];
		char label[96], t[32];

		if (g->dev->n_groups == 1)
			continue;
		snprintf(label, sizeof(label), "%s@%s", g->dev->name,
		         m2m_format_us(g->interval_us, t, sizeof(t)));
		declare_stat(drv, &g->requests_per_cycle, "requests_per_cycle", label,
		             M2M_STAT_GAUGE, per_cycle_help);
	}
}

void mb_update_requests_per_cycle(struct mb_driver *drv, struct mb_device *dev)
{
	unsigned n = 0;

	for (size_t i = 0; i < drv->n_groups; i++) {
		const struct mb_group *g = &drv->groups[i];
		unsigned k = 0;

		if (g->dev != dev)
			continue;
		for (int tb = 0; tb < MB_TABLE_COUNT; tb++)
			k += (unsigned)g->plans[tb].n_blocks;
		n += k;
		if (dev->n_groups > 1)
			m2m_stat_slot_set(&g->requests_per_cycle, k);
	}
	dev->requests_per_cycle = n;
	if (dev->n_groups == 1)
		m2m_stat_slot_set(&dev->st.requests_per_cycle, n);
}

/* --- results --- */

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
		mb_plan_table(tp);
		drv->api->log(drv->host, M2M_LOG_INFO,
		              "device \"%s\" refused a merged read of %ss with exception 02; "
		              "reading them in %zu requests from now on",
		              g->dev->name, mb_table_names[t], tp->n_blocks);
	}
	mb_update_requests_per_cycle(drv, g->dev);
}

static void device_up(struct mb_driver *drv, struct mb_device *dev)
{
	if (dev->state != DEV_ONLINE) {
		m2m_device_state(drv->api, drv->host, dev->name, M2M_DEVICE_ONLINE, NULL);
		m2m_stat_slot_set(&dev->st.online, 1);
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
		         m2m_format_us(dev->timeout_us, t, sizeof(t)), dev->retries + 1,
		         dev->retries ? "s" : "");
	else
		mb_describe_error(c->fail_err, reason, n);
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
		m2m_device_state(drv->api, drv->host, dev->name, M2M_DEVICE_OFFLINE,
		                 down_reason(dev, c, reason, sizeof(reason)));
		m2m_stat_slot_set(&dev->st.online, 0);
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

/*
 * Submits what the running cycle of G made final up to N_READINGS reading
 * slots and N_TEXTS text slots, past what was submitted before.
 */
static void submit_ready(struct mb_group *g, uint32_t n_readings, uint32_t n_texts)
{
	struct mb_driver *drv = g->drv;
	const struct m2m_host_api *api = drv->api;
	int r = 0;

	if (n_readings > g->handed_readings)
		r = api->submit(drv->host, g->readings + g->handed_readings,
		                n_readings - g->handed_readings);
	for (uint32_t i = g->handed_texts; i < n_texts && r >= 0; i++) {
		const struct mb_text *t = &g->texts[i];

		r = api->submit_text(drv->host, t->point, t->ts_us, t->value, t->quality, t->detail);
	}
	if (n_readings == g->handed_readings && n_texts == g->handed_texts)
		return;
	g->handed_readings = n_readings;
	g->handed_texts = n_texts;
	if (r < 0 && !drv->submit_failed)
		api->log(drv->host, M2M_LOG_WARNING, "submitting readings of \"%s\" failed: %s",
		         g->dev->name, strerror(-r));
	drv->submit_failed = r < 0;
}

/*
 * The bus thread finished a block of a cycle that goes on: its readings go
 * to the core now, while the next block is read, instead of waiting for
 * the whole cycle (a cycle of 80 blocks takes tens of milliseconds).
 */
void mb_poll_wake(m2m_io *io, int events, void *arg)
{
	struct mb_driver *drv = arg;
	uint64_t count;

	(void)io;
	(void)events;
	/* One read takes every wake-up so far; the counts say what is ready. */
	if (read(drv->wake_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		return;
	if (!drv->running)
		return;
	for (size_t i = 0; i < drv->n_groups; i++) {
		struct mb_group *g = &drv->groups[i];
		uint64_t ready;

		if (!g->busy)
			continue;
		ready = atomic_load_explicit(&g->ready, memory_order_acquire);
		submit_ready(g, (uint32_t)(ready >> 32), (uint32_t)ready);
	}
}

void mb_poll_done(int status, void *arg)
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
	/* The rest of the cycle: every slot is final once the work has returned. */
	submit_ready(g, (uint32_t)g->n_readings, (uint32_t)g->n_texts);

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
		m2m_stat_slot_set(&dev->st.bad_answers, (double)dev->bad_answers);

	m2m_stat_slot_set(&dev->st.polls, (double)dev->polls);
	m2m_stat_slot_set(&dev->st.requests, (double)dev->requests);
	if (c->failed_requests)
		m2m_stat_slot_set(&dev->st.errors, (double)dev->errors);
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

void mb_write_done(int status, void *arg)
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
		         mb_describe_error(op->err, what, sizeof(what)));
		api->write_done(op->req, mb_error_status(op->err), text);
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

/* --- scheduling and writes --- */

void mb_poll_tick(m2m_timer *timer, void *arg)
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
		m2m_stat_slot_set(&dev->st.skipped, (double)dev->skipped);
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
	/* The group is ours until bus_submit() hands it over (its lock orders these). */
	g->handed_readings = g->handed_texts = 0;
	atomic_store_explicit(&g->ready, 0, memory_order_relaxed);
	r = drv->api->bus_submit(drv->bus, 0, mb_poll_work, mb_poll_done, g);
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

int mb_write(void *driver, uint32_t point, double raw_value, m2m_write *req)
{
	struct mb_driver *drv = driver;
	const struct m2m_host_api *api = drv->api;
	struct mb_index key = { .id = point }, *found;
	const struct mb_point *p;
	struct mb_write_op *op;
	char text[160];
	int r;

	found = bsearch(&key, drv->index, drv->n_points, sizeof(*drv->index), mb_index_cmp);
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
	r = api->bus_submit(drv->bus, M2M_BUS_URGENT, mb_write_work, mb_write_done, op);
	if (r < 0) {
		free(op);
		api->write_done(req, r, "queueing the write failed");
		return 0;
	}
	drv->inflight++;
	return 0;
}
