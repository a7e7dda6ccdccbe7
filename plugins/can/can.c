/* SPDX-License-Identifier: MIT */
/*
 * can.c - the SocketCAN driver: DBC signals from one CAN interface.
 *
 * One instance reads one interface (can0, vcan0) through a non-blocking
 * CAN_RAW socket that the host watches on the loop: no thread. Frames of
 * the selected messages (kernel filters leave the rest in the kernel) are
 * decoded with the codec (can-signal.h) into readings of the raw numbers;
 * the core applies the DBC's factor and offset, which are the points' scale
 * and offset.
 *
 * Health: error frames set the bus state point; a link that goes down makes
 * every point comm_error and every device offline until frames come again;
 * an interface that disappears (a USB adapter unplugged) closes the socket,
 * and the driver binds again by name, with backoff, when it is back. A
 * message not seen for its stale timeout makes its points stale, and a
 * device all of whose messages are stale goes offline.
 *
 * Writes encode a signal into its message's frame (the other signals from
 * the last frame seen, or from their start values), send it once on the
 * raw socket, or every tx_cycle through CAN_BCM, and complete when the
 * frame comes back from the kernel (own-message loopback): then it was
 * queued to the controller. ENOBUFS (the TX queue full) is retried with
 * backoff until write_timeout. A J1939 message goes through the kernel's
 * J1939 stack instead, from our static or claimed address (can-j1939.c),
 * and completes when the kernel reports its transfer done.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <linux/can.h>

#include "can-driver.h"

static void can_stop(void *driver);
static void rebind_cb(m2m_timer *t, void *arg);

/* --- devices and readings --- */

static void device_set(struct can_driver *drv, struct can_device *d, int state,
                       const char *reason)
{
	if (d->state == state && state == M2M_DEVICE_ONLINE)
		return;
	d->state = state;
	m2m_device_state(drv->api, drv->host, d->name, state, reason);
}

/* Every point of RX with QUALITY (stale, comm_error), no value. */
static void submit_bad(struct can_driver *drv, struct can_rx *rx, uint16_t quality,
                       int64_t ts_us)
{
	size_t n = 0;

	can_flush_readings(drv); /* what came before goes first */
	for (size_t i = 0; i < rx->n_sels; i++) {
		struct can_sel *sel = &rx->sels[i];

		drv->readings[n++] = (struct m2m_reading){
			.ts_us = ts_us, .value = NAN, .point = sel->point, .quality = quality,
		};
		if (sel->text_point != UINT32_MAX)
			drv->api->submit_text(drv->host, sel->text_point, ts_us, "", quality, 0);
		/* The next good frame is news, whatever on_change says. */
		sel->have_last = false;
	}
	if (n)
		drv->api->submit(drv->host, drv->readings, n);
}

static void submit_text(struct can_driver *drv, const struct can_signal *s,
                        const struct can_sel *sel, double raw_number, int64_t ts_us)
{
	const char *text = can_signal_value_text(s, raw_number);
	char num[32];

	if (!text) {
		snprintf(num, sizeof(num), "%.17g", raw_number);
		text = num;
	}
	drv->api->submit_text(drv->host, sel->text_point, ts_us, text, M2M_QUALITY_GOOD, 0);
}

/* Submits the readings of the frames decoded since the last call: one call per batch. */
void can_flush_readings(struct can_driver *drv)
{
	if (drv->n_pending)
		drv->api->submit(drv->host, drv->pending, drv->n_pending);
	drv->n_pending = 0;
}

void can_frame_received(struct can_driver *drv, struct can_rx *rx, const uint8_t *data,
                        size_t len, int64_t ts_us, int64_t mono_us)
{
	const struct can_message *m = rx->m;
	struct m2m_reading *out;
	size_t n = 0;
	bool short_frame = false;

	if (drv->n_pending + rx->n_sels > drv->cap_pending)
		can_flush_readings(drv);
	out = drv->pending + drv->n_pending;

	rx->last_mono_us = mono_us;
	if (rx->stale) {
		rx->stale = false;
		rx->dev->n_stale--;
	}
	if (rx->dev->state != M2M_DEVICE_ONLINE && !drv->iface_down)
		device_set(drv, rx->dev, M2M_DEVICE_ONLINE, NULL);
	memcpy(rx->data, data, len < sizeof(rx->data) ? len : sizeof(rx->data));
	rx->have_data = true;
	for (size_t i = 0; i < rx->n_sels; i++) {
		struct can_sel *sel = &rx->sels[i];
		const struct can_signal *s = &m->signals[sel->index];
		uint64_t raw;
		double phys;
		int r = can_signal_decode(m, sel->index, data, len, &phys, &raw);

		if (r == -ENOENT)
			continue; /* the multiplexer chose other signals for this frame */
		if (r == -ENODATA) {
			short_frame = true;
			out[n++] = (struct m2m_reading){
				.ts_us = ts_us, .value = NAN, .point = sel->point,
				.quality = M2M_QUALITY_DECODE_ERROR, .detail = (uint16_t)len,
			};
			sel->have_last = false;
			continue;
		}
		if (sel->min_interval_us && sel->have_last &&
		    mono_us - sel->last_mono_us < sel->min_interval_us)
			continue;
		if (sel->on_change && sel->have_last && sel->last_raw == raw)
			continue;
		sel->have_last = true;
		sel->last_raw = raw;
		sel->last_mono_us = mono_us;
		out[n++] = (struct m2m_reading){
			.ts_us = ts_us, .value = can_signal_raw_number(s, raw), .point = sel->point,
		};
		if (sel->text_point != UINT32_MAX)
			submit_text(drv, s, sel, can_signal_raw_number(s, raw), ts_us);
	}
	if (short_frame)
		drv->decode_errors++;
	drv->n_pending += n;
}

/* --- the link --- */

static void all_bad(struct can_driver *drv, uint16_t quality, const char *reason)
{
	int64_t now = drv->api->now_us(drv->host);

	for (size_t i = 0; i < drv->n_rx; i++)
		submit_bad(drv, &drv->rx[i], quality, now);
	for (size_t i = 0; i < drv->n_devices; i++)
		device_set(drv, &drv->devices[i], M2M_DEVICE_OFFLINE, reason);
}

/* Completes every pending write with ERR (link gone, stop). */
static void fail_writes(struct can_driver *drv, int err, const char *why)
{
	while (drv->n_writes) {
		struct can_write *w = &drv->writes[--drv->n_writes];

		drv->api->write_done(w->req, err, why);
	}
}

static void schedule_rebind(struct can_driver *drv)
{
	uint64_t ms;

	if (!drv->rebind_backoff_us)
		drv->rebind_backoff_us = 100 * M2M_US_PER_MS;
	ms = (uint64_t)(drv->rebind_backoff_us / M2M_US_PER_MS);
	drv->rebind_backoff_us *= 2;
	if (drv->rebind_backoff_us > drv->rebind_max_us)
		drv->rebind_backoff_us = drv->rebind_max_us;
	if (m2m_timer_rearm(drv->api, drv->host, &drv->rebind, ms, 0, rebind_cb, drv) < 0)
		drv->api->log(drv->host, M2M_LOG_ERR, "%s: cannot start the rebind timer",
		              drv->ifname);
}

/*
 * The socket reported ERR: ENETDOWN is a link that went down (the socket
 * stays bound and works again when it comes up); ENODEV is an interface
 * that was removed, which unbinds the socket for good.
 */
void can_link_down(struct can_driver *drv, int err)
{
	char why[96];

	if (err == -ENETDOWN) {
		if (!drv->iface_down) {
			drv->iface_down = true;
			snprintf(why, sizeof(why), "interface %s is down", drv->ifname);
			drv->api->log(drv->host, M2M_LOG_WARNING, "%s", why);
			all_bad(drv, M2M_QUALITY_COMM_ERROR, why);
		}
		return;
	}
	if (err == -ENODEV || err == -ENXIO) {
		snprintf(why, sizeof(why), "interface %s is gone", drv->ifname);
		drv->api->log(drv->host, M2M_LOG_WARNING, "%s: binding again when it is back", why);
		can_io_close(drv);
		fail_writes(drv, -ENODEV, why);
		drv->iface_gone = true;
		drv->iface_down = true;
		all_bad(drv, M2M_QUALITY_COMM_ERROR, why);
		drv->rebind_backoff_us = 0;
		schedule_rebind(drv);
		return;
	}
	drv->api->log(drv->host, M2M_LOG_WARNING, "%s: receive failed: %s", drv->ifname,
	              strerror(-err));
}

/*
 * Cyclic writes end with the BCM socket when the interface goes away; once
 * it is back, each message that was being sent is set up again with the
 * data it had.
 */
static void resume_cycles(struct can_driver *drv)
{
	for (size_t i = 0; i < drv->n_rx; i++) {
		struct can_rx *rx = &drv->rx[i];
		struct can_write w = { .rx = rx, .cyclic = true };
		int r;

		if (!rx->tx_cycle_us || !rx->tx_started || rx->bcm_active)
			continue;
		w.len = can_frame_len(rx->m);
		memcpy(w.data, rx->data, sizeof(w.data));
		r = can_io_send(drv, &w);
		if (r < 0)
			drv->api->log(drv->host, M2M_LOG_WARNING, "%s: resuming the cycle of \"%s\" "
			              "failed: %s", drv->ifname, rx->m->name, strerror(-r));
	}
}

void can_link_came_up(struct can_driver *drv)
{
	int64_t mono = drv->api->mono_us(drv->host);

	drv->iface_down = false;
	drv->api->log(drv->host, M2M_LOG_NOTICE, "interface %s is up", drv->ifname);
	/* Stale timing starts again: the devices come online with their first frames. */
	for (size_t i = 0; i < drv->n_rx; i++)
		drv->rx[i].last_mono_us = mono;
	resume_cycles(drv);
}

static void rebind_cb(m2m_timer *t, void *arg)
{
	struct can_driver *drv = arg;
	int r;

	(void)t;
	if (!drv->running)
		return;
	r = can_io_open(drv);
	if (r < 0) {
		schedule_rebind(drv);
		return;
	}
	drv->iface_gone = false;
	drv->rebind_backoff_us = 0;
	drv->api->log(drv->host, M2M_LOG_NOTICE, "interface %s is back: bound again", drv->ifname);
	if (can_io_link_up(drv) == 1)
		can_link_came_up(drv);
}

/* --- the tick: stale messages, write timeouts, a down link's state --- */

static void check_stale(struct can_driver *drv, int64_t mono)
{
	int64_t now = drv->api->now_us(drv->host);

	for (size_t i = 0; i < drv->n_rx; i++) {
		struct can_rx *rx = &drv->rx[i];
		char why[96];

		if (!rx->stale_us || rx->stale || mono - rx->last_mono_us < rx->stale_us)
			continue;
		rx->stale = true;
		submit_bad(drv, rx, M2M_QUALITY_STALE, now);
		if (++rx->dev->n_stale == rx->dev->n_msgs) {
			snprintf(why, sizeof(why), "no frames of its messages for %" PRId64 "ms",
			         rx->stale_us / M2M_US_PER_MS);
			device_set(drv, rx->dev, M2M_DEVICE_OFFLINE, why);
		}
	}
}

static void check_writes(struct can_driver *drv, int64_t mono)
{
	for (size_t i = 0; i < drv->n_writes;) {
		struct can_write *w = &drv->writes[i];

		if (mono < w->deadline_mono_us) {
			i++;
			continue;
		}
		drv->api->write_done(w->req, w->sent ? -ETIMEDOUT : -ENOBUFS,
		                     !w->sent ? "the interface's transmit queue stayed full"
		                     : w->j1939 ? "the kernel did not report the J1939 transfer done"
		                                : "the frame did not come back from the interface");
		drv->writes[i] = drv->writes[--drv->n_writes];
	}
}

static void tick_cb(m2m_timer *t, void *arg)
{
	struct can_driver *drv = arg;
	int64_t mono = drv->api->mono_us(drv->host);

	(void)t;
	if (drv->iface_down && !drv->iface_gone) {
		int up = can_io_link_up(drv);

		if (up == 1)
			can_link_came_up(drv);
	}
	if (!drv->iface_down)
		check_stale(drv, mono);
	check_writes(drv, mono);
	can_io_poll_drops(drv);
	can_io_publish_stats(drv);
}

/* --- writes --- */

static void retry_cb(m2m_timer *t, void *arg);

/* Sends every write not yet sent; ENOBUFS waits for the retry timer. */
static void flush_writes(struct can_driver *drv)
{
	for (size_t i = 0; i < drv->n_writes; i++) {
		struct can_write *w = &drv->writes[i];
		int r;

		if (w->sent)
			continue;
		r = can_io_send(drv, w);
		if (r == -ENOBUFS || r == -EAGAIN) {
			uint64_t ms;

			drv->tx_retries++;
			drv->retry_backoff_us = drv->retry_backoff_us ? drv->retry_backoff_us * 2
			                                              : 5 * M2M_US_PER_MS;
			if (drv->retry_backoff_us > 500 * M2M_US_PER_MS)
				drv->retry_backoff_us = 500 * M2M_US_PER_MS;
			ms = (uint64_t)(drv->retry_backoff_us / M2M_US_PER_MS);
			m2m_timer_rearm(drv->api, drv->host, &drv->retry, ms, 0, retry_cb, drv);
			return;
		}
		drv->retry_backoff_us = 0;
		if (r < 0) {
			drv->api->write_done(w->req, r, strerror(-r));
			drv->writes[i--] = drv->writes[--drv->n_writes];
			continue;
		}
		w->sent = true;
	}
}

static void retry_cb(m2m_timer *t, void *arg)
{
	(void)t;
	flush_writes(arg);
}

static struct can_sel *find_point(struct can_driver *drv, uint32_t point, struct can_rx **ret_rx)
{
	for (size_t i = 0; i < drv->n_rx; i++)
		for (size_t j = 0; j < drv->rx[i].n_sels; j++)
			if (drv->rx[i].sels[j].point == point) {
				*ret_rx = &drv->rx[i];
				return &drv->rx[i].sels[j];
			}
	return NULL;
}

/* The payload length of M's frames: CAN FD has only some lengths. */
uint8_t can_frame_len(const struct can_message *m)
{
	static const uint8_t fd_lens[] = { 8, 12, 16, 20, 24, 32, 48, 64 };

	if (!m->fd || m->size <= 8)
		return m->size;
	for (size_t i = 0; i < sizeof(fd_lens); i++)
		if (fd_lens[i] >= m->size)
			return fd_lens[i];
	return 64;
}

static int can_write_op(void *driver, uint32_t point, double raw_value, m2m_write *req)
{
	struct can_driver *drv = driver;
	struct can_rx *rx = NULL;
	struct can_sel *sel = find_point(drv, point, &rx);
	struct can_write *w;
	const struct can_signal *s;
	double phys;
	int r;

	if (!sel || !sel->writable) {
		drv->api->write_done(req, -EPERM, "not a writable CAN signal");
		return 0;
	}
	if (!drv->running || drv->fd_raw < 0 || drv->iface_down) {
		drv->api->write_done(req, -ENETDOWN, "the CAN interface is down");
		return 0;
	}
	if (drv->n_writes == CAN_MAX_PENDING_WRITES) {
		drv->api->write_done(req, -EBUSY, "too many writes waiting for the bus");
		return 0;
	}
	if (rx->m->j1939) {
		const char *why = NULL;

		r = can_j1939_can_send(drv, &why);
		if (r < 0) {
			drv->api->write_done(req, r, why);
			return 0;
		}
	}
	s = &rx->m->signals[sel->index];
	w = &drv->writes[drv->n_writes];
	*w = (struct can_write){
		.req = req,
		.rx = rx,
		.len = can_frame_len(rx->m),
		.cyclic = rx->tx_cycle_us > 0,
		.j1939 = rx->m->j1939,
		.deadline_mono_us = drv->api->mono_us(drv->host) + drv->write_timeout_us,
	};
	memcpy(w->data, rx->data, sizeof(w->data));
	/* The host gives the raw number; the codec takes the physical value. */
	phys = s->type == CAN_VALUE_INTEGER ? round(raw_value) * s->factor + s->offset
	                                    : raw_value * s->factor + s->offset;
	r = can_signal_encode(rx->m, sel->index, phys, w->data, w->len);
	if (r < 0) {
		drv->api->write_done(req, r, r == -ERANGE ? "the value does not fit in the signal's bits"
		                                         : "the value cannot be encoded");
		return 0;
	}
	drv->n_writes++;
	rx->tx_started = true;
	/* The frame is what the next write of this message starts from. */
	memcpy(rx->data, w->data, w->len);
	flush_writes(drv);
	return 0;
}

/* --- life cycle --- */

static void declare_stats(struct can_driver *drv)
{
	static const struct {
		size_t off;
		const char *name;
		int kind;
		const char *help;
	} defs[] = {
		{ offsetof(struct can_stats, frames), "frames", M2M_STAT_COUNTER, "CAN frames received" },
		{ offsetof(struct can_stats, error_frames), "error_frames", M2M_STAT_COUNTER,
		  "error frames received from the controller" },
		{ offsetof(struct can_stats, drops), "drops", M2M_STAT_COUNTER,
		  "frames the kernel dropped: the socket's receive queue was full" },
		{ offsetof(struct can_stats, overruns), "overruns", M2M_STAT_COUNTER,
		  "controller buffer overruns reported in error frames" },
		{ offsetof(struct can_stats, decode_errors), "decode_errors", M2M_STAT_COUNTER,
		  "frames too short for a selected signal" },
		{ offsetof(struct can_stats, unknown), "unknown_frames", M2M_STAT_COUNTER,
		  "frames of messages that are not selected" },
		{ offsetof(struct can_stats, tx_frames), "tx_frames", M2M_STAT_COUNTER,
		  "frames sent for writes" },
		{ offsetof(struct can_stats, tx_retries), "tx_retries", M2M_STAT_COUNTER,
		  "sends retried because the transmit queue was full (ENOBUFS)" },
		{ offsetof(struct can_stats, tx_errors), "tx_error_counter", M2M_STAT_GAUGE,
		  "the controller's transmit error counter (TEC)" },
		{ offsetof(struct can_stats, rx_errors), "rx_error_counter", M2M_STAT_GAUGE,
		  "the controller's receive error counter (REC)" },
		{ offsetof(struct can_stats, bus_off), "bus_off", M2M_STAT_COUNTER,
		  "times the controller went bus-off" },
	};

	for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++) {
		struct m2m_stat_slot *slot = (struct m2m_stat_slot *)((char *)&drv->st + defs[i].off);
		int r = m2m_stat_slot_declare(slot, drv->api, drv->host, defs[i].name,
		                              drv->bus_device, defs[i].kind, defs[i].help);

		if (r < 0)
			drv->api->log(drv->host, M2M_LOG_WARNING, "statistic %s: %s", defs[i].name,
			              strerror(-r));
	}
}

static int can_start(void *driver)
{
	struct can_driver *drv = driver;
	uint64_t tick_ms;
	int64_t mono;
	int r;

	if (!drv)
		return -EINVAL;
	if (drv->running)
		return 0;
	r = can_io_open(drv);
	if (r < 0) {
		drv->api->log(drv->host, M2M_LOG_ERR, "interface \"%s\": %s", drv->ifname,
		              r == -ENODEV ? "no such interface" : strerror(-r));
		return r;
	}
	if (!drv->st.frames.api)
		declare_stats(drv);
	/* Often enough for the smallest stale timeout and the write timeout. */
	tick_ms = (uint64_t)(drv->write_timeout_us / M2M_US_PER_MS / 4);
	if (drv->min_stale_us && (uint64_t)(drv->min_stale_us / M2M_US_PER_MS / 4) < tick_ms)
		tick_ms = (uint64_t)(drv->min_stale_us / M2M_US_PER_MS / 4);
	if (tick_ms < 5)
		tick_ms = 5;
	if (tick_ms > 250)
		tick_ms = 250;
	r = drv->api->timer_start(drv->host, tick_ms, tick_ms, tick_cb, drv, &drv->tick);
	if (r < 0) {
		drv->tick = NULL;
		can_io_close(drv);
		return r;
	}
	drv->running = true;
	drv->iface_down = drv->iface_gone = false;
	drv->bus_state = CAN_BUS_ERROR_ACTIVE;
	mono = drv->api->mono_us(drv->host);
	for (size_t i = 0; i < drv->n_rx; i++) {
		drv->rx[i].last_mono_us = mono;
		drv->rx[i].stale = false;
	}
	for (size_t i = 0; i < drv->n_devices; i++) {
		drv->devices[i].n_stale = 0;
		drv->devices[i].state = -1;
	}
	{
		struct m2m_reading rd = { .value = CAN_BUS_ERROR_ACTIVE, .point = drv->bus_state_point };

		drv->api->submit(drv->host, &rd, 1);
	}
	if (can_io_link_up(drv) == 0)
		can_link_down(drv, -ENETDOWN);
	drv->api->log(drv->host, M2M_LOG_INFO, "reading %zu messages on %s", drv->n_rx,
	              drv->ifname);
	return 0;
}

static void can_stop(void *driver)
{
	struct can_driver *drv = driver;

	if (!drv || !drv->running)
		return;
	drv->running = false;
	drv->api->timer_stop(drv->tick);
	drv->tick = NULL;
	drv->api->timer_stop(drv->rebind);
	drv->rebind = NULL;
	drv->api->timer_stop(drv->retry);
	drv->retry = NULL;
	fail_writes(drv, -ECANCELED, "the driver stopped");
	can_io_close(drv);
}

static void free_message(struct can_message *m)
{
	for (size_t i = 0; i < m->n_signals; i++) {
		struct can_signal *s = &m->signals[i];

		free(s->name);
		free(s->unit);
		for (size_t j = 0; j < s->n_values; j++)
			free(s->values[j].text);
		free(s->values);
	}
	free(m->signals);
	free(m->name);
}

void can_free(struct can_driver *drv)
{
	if (!drv)
		return;
	can_stop(drv);
	for (size_t i = 0; i < drv->n_rx; i++)
		free(drv->rx[i].sels);
	free(drv->rx);
	for (size_t i = 0; i < drv->n_devices; i++)
		free(drv->devices[i].name);
	free(drv->devices);
	for (size_t i = 0; i < drv->n_dbcs; i++) {
		can_dbc_free(drv->dbcs[i]);
		free(drv->dbc_names[i]);
	}
	free(drv->dbcs);
	free(drv->dbc_names);
	for (size_t i = 0; i < drv->n_inl; i++)
		free_message(&drv->inl[i].m);
	free(drv->inl);
	free(drv->readings);
	free(drv->pending);
	free(drv->ifname);
	free(drv->bus_device);
	free(drv);
}

static void can_destroy(void *driver)
{
	can_free(driver);
}

const struct m2m_driver_ops can_driver_ops = {
	.struct_size = sizeof(struct m2m_driver_ops),
	.create = can_create,
	.start = can_start,
	.stop = can_stop,
	.destroy = can_destroy,
	.write = can_write_op,
};

static const struct m2m_plugin can_plugin = {
	.struct_size = sizeof(struct m2m_plugin),
	.abi_major = M2M_ABI_MAJOR,
	/* ABI 1.1 calls go through the kit (m2m/plugin-util.h), which falls back on 1.0. */
	.abi_minor = 0,
	.name = "can",
	.version = CAN_VERSION,
	.description = "SocketCAN: DBC signals, CAN FD, bus errors, writes (CAN_RAW, CAN_BCM), "
	               "J1939 with address claiming",
	.ops = &can_driver_ops,
};

M2M_PLUGIN_ENTRY
{
	(void)host_abi_minor;
	if (host_abi_major != M2M_ABI_MAJOR)
		return NULL;
	return &can_plugin;
}
