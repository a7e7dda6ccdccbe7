/* SPDX-License-Identifier: MIT */
/*
 * serial-poll.c - the line's transactions: requests that poll the device
 * and writes, one at a time, because a serial device (and every device of
 * a multi-drop RS-485 line) answers one command at a time and an answer
 * names no request.
 *
 * Each request has its own interval timer; a tick queues the request
 * unless it is still queued or in flight (then the tick is skipped: a slow
 * device never makes the queue grow). Writes go before queued requests.
 * A transaction ends with its answer (the first frame, or the first that
 * matches 'response' or the point's 'ack'), or with its timeout: a
 * request is sent again up to 'retries' times, then its points get a
 * reading of quality timeout and its device goes offline; a write is
 * completed with -ETIMEDOUT. Frames that are not the answer are parsed as
 * unsolicited ones (serial.c).
 *
 * Loop thread only.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "serial-driver.h"

static void txn_timeout(m2m_timer *timer, void *arg);

static void txn_arm(struct ser_driver *drv, int64_t timeout_us)
{
	int r = m2m_timer_rearm(drv->api, drv->host, &drv->txn_timer,
	                        (uint64_t)((timeout_us + US_PER_MS - 1) / US_PER_MS), 0, txn_timeout,
	                        drv);

	if (r < 0)
		drv->api->log(drv->host, M2M_LOG_ERR, "cannot start a timeout timer (%s)", strerror(-r));
}

static void txn_disarm(struct ser_driver *drv)
{
	drv->api->timer_stop(drv->txn_timer);
	drv->txn_timer = NULL;
}

static void send_request(struct ser_driver *drv)
{
	struct ser_request *rq = drv->cur;

	drv->txn = SER_TXN_REQUEST;
	txn_arm(drv, rq->timeout_us);
	/* A failed send loses the port, which aborts this transaction. */
	ser_port_send(drv, rq->cmd, rq->cmd_len);
}

/* The line is free again: the next transaction waits inter_request_delay from now. */
static void txn_end(struct ser_driver *drv)
{
	drv->txn = SER_TXN_NONE;
	drv->cur = NULL;
	drv->txn_end_us = drv->api->mono_us(drv->host);
}

static void finish_write(struct ser_driver *drv, int status, const char *text)
{
	m2m_write *req = drv->cur_write.req;

	txn_end(drv);
	drv->cur_write.req = NULL;
	txn_disarm(drv);
	if (req)
		drv->api->write_done(req, status, text);
}

static void start_write(struct ser_driver *drv)
{
	struct ser_write *w = &drv->cur_write;
	int r;

	*w = drv->wq[drv->wq_head];
	drv->wq_head = (drv->wq_head + 1) % SER_WRITE_QUEUE;
	drv->wq_len--;
	drv->txn = SER_TXN_WRITE;
	if (w->p->ack || w->p->nak)
		txn_arm(drv, w->p->write_timeout_us);
	r = ser_port_send(drv, w->cmd, w->len);
	if (r < 0) {
		/*
		 * A failed write loses the port, which completed the write
		 * already; what is left is output that cannot drain (a line
		 * held by flow control), which completes it here.
		 */
		if (drv->txn == SER_TXN_WRITE && drv->cur_write.req)
			finish_write(drv, r, "the line does not take output (flow control?)");
		return;
	}
	if (!w->p->ack && !w->p->nak)
		finish_write(drv, 0, NULL);
}

void ser_poll_next(struct ser_driver *drv)
{
	/* A write without acknowledgement ends at once, so loop, boundedly. */
	for (int guard = 0; guard <= SER_WRITE_QUEUE; guard++) {
		int64_t gap;

		if (drv->txn != SER_TXN_NONE || drv->fd < 0 || !drv->running)
			return;
		if (!drv->wq_len && !drv->rq_len)
			return;
		/*
		 * The turnaround some devices need between an answer and the
		 * next command (an RS-485 transceiver switching back): the
		 * timeout timer, idle now, calls again when it has passed.
		 */
		gap = drv->txn_end_us + drv->delay_us - drv->api->mono_us(drv->host);
		if (drv->delay_us && drv->txn_end_us && gap > 0) {
			txn_arm(drv, gap);
			return;
		}
		if (drv->wq_len) {
			start_write(drv);
			continue;
		}
		if (drv->rq_len) {
			drv->cur = drv->rq_queue[drv->rq_head];
			drv->rq_head = (drv->rq_head + 1) % drv->n_requests;
			drv->rq_len--;
			drv->cur->queued = false;
			drv->attempt = 0;
			send_request(drv);
		}
		return;
	}
}

/* Queues RQ unless it is queued or in flight already: a slow device skips ticks. */
static void enqueue(struct ser_driver *drv, struct ser_request *rq)
{
	if (rq->queued || (drv->txn == SER_TXN_REQUEST && drv->cur == rq) || drv->fd < 0)
		return;
	drv->rq_queue[(drv->rq_head + drv->rq_len) % drv->n_requests] = rq;
	drv->rq_len++;
	rq->queued = true;
}

void ser_poll_tick(m2m_timer *timer, void *arg)
{
	struct ser_request *rq = arg;

	(void)timer;
	enqueue(rq->drv, rq);
	ser_poll_next(rq->drv);
}

void ser_poll_all(struct ser_driver *drv)
{
	for (size_t i = 0; i < drv->n_requests; i++)
		enqueue(drv, &drv->requests[i]);
	ser_poll_next(drv);
}

static void request_failed(struct ser_driver *drv, struct ser_request *rq)
{
	const struct m2m_host_api *api = drv->api;
	int64_t ts = api->now_us(drv->host);
	char reason[SER_CMD_MAX + 96], d[32];

	ser_flush(drv);
	for (size_t i = 0; i < drv->n_points; i++) {
		struct ser_point *p = &drv->points[i];

		if (p->request != rq)
			continue;
		if (p->kind == SER_KIND_TEXT)
			api->submit_text(drv->host, p->id, ts, "", M2M_QUALITY_TIMEOUT, 0);
		else
			drv->rd[drv->n_rd++] = (struct m2m_reading){
				.ts_us = ts, .point = p->id, .quality = M2M_QUALITY_TIMEOUT
			};
	}
	ser_flush(drv);
	snprintf(reason, sizeof(reason), "timeout: no answer to request \"%s\" within %s (%d %s)",
	         rq->name, m2m_format_us(rq->timeout_us, d, sizeof(d)), rq->retries + 1,
	         rq->retries ? "attempts" : "attempt");
	/*
	 * Said once per outage: a 1.0 host turns every device_state into an
	 * event, and the reason stays the same while the device is mute.
	 */
	if (!rq->failing) {
		api->log(drv->host, M2M_LOG_WARNING, "%s", reason);
		m2m_device_state(api, drv->host, rq->device, M2M_DEVICE_OFFLINE, reason);
	}
	rq->failing = true;
}

static void txn_timeout(m2m_timer *timer, void *arg)
{
	struct ser_driver *drv = arg;

	(void)timer;
	if (drv->txn == SER_TXN_REQUEST) {
		struct ser_request *rq = drv->cur;

		if (drv->attempt < rq->retries) {
			drv->attempt++;
			send_request(drv);
			return;
		}
		drv->counts[SER_ST_TIMEOUTS]++;
		txn_end(drv);
		request_failed(drv, rq);
	} else if (drv->txn == SER_TXN_WRITE) {
		char text[96], d[32];

		drv->counts[SER_ST_TIMEOUTS]++;
		snprintf(text, sizeof(text), "no acknowledgement within %s",
		         m2m_format_us(drv->cur_write.p->write_timeout_us, d, sizeof(d)));
		finish_write(drv, -ETIMEDOUT, text);
	}
	ser_publish_stats(drv);
	ser_poll_next(drv);
}

void ser_poll_frame(struct ser_driver *drv, const uint8_t *frame, size_t len,
                    struct ser_request **ret_answered)
{
	*ret_answered = NULL;
	if (drv->txn == SER_TXN_REQUEST) {
		struct ser_request *rq = drv->cur;

		if (rq->response && ser_pattern_match(rq->response, frame, len, drv->seq) < 0)
			return;
		txn_disarm(drv);
		txn_end(drv);
		if (rq->failing)
			drv->api->log(drv->host, M2M_LOG_NOTICE, "request \"%s\" is answered again",
			              rq->name);
		if (rq->failing || !rq->answered) {
			m2m_device_state(drv->api, drv->host, rq->device, M2M_DEVICE_ONLINE,
			                 rq->failing ? "answering again" : "answering");
		}
		rq->failing = false;
		rq->answered = true;
		*ret_answered = rq;
		ser_poll_next(drv);
	} else if (drv->txn == SER_TXN_WRITE) {
		struct ser_point *p = drv->cur_write.p;

		if (p->nak && ser_pattern_match(p->nak, frame, len, drv->seq) >= 0) {
			finish_write(drv, -EIO, "the device refused the command");
			ser_poll_next(drv);
		} else if (p->ack && ser_pattern_match(p->ack, frame, len, drv->seq) >= 0) {
			finish_write(drv, 0, NULL);
			ser_poll_next(drv);
		}
	}
}

void ser_poll_abort(struct ser_driver *drv, int status, const char *why)
{
	txn_disarm(drv);
	if (drv->txn == SER_TXN_WRITE)
		finish_write(drv, status, why);
	drv->txn = SER_TXN_NONE;
	drv->cur = NULL;
	while (drv->wq_len) {
		m2m_write *req = drv->wq[drv->wq_head].req;

		drv->wq_head = (drv->wq_head + 1) % SER_WRITE_QUEUE;
		drv->wq_len--;
		drv->api->write_done(req, status, why);
	}
	for (size_t i = 0; i < drv->rq_len; i++)
		drv->rq_queue[(drv->rq_head + i) % drv->n_requests]->queued = false;
	drv->rq_len = 0;
}

static struct ser_point *find_point(struct ser_driver *drv, uint32_t id)
{
	for (size_t i = 0; i < drv->n_points; i++)
		if (drv->points[i].id == id)
			return &drv->points[i];
	return NULL;
}

int ser_write(void *driver, uint32_t point, double raw_value, m2m_write *req)
{
	struct ser_driver *drv = driver;
	struct ser_point *p = find_point(drv, point);
	struct ser_write *w;
	char err[160], text[200];
	int n;

	if (!p || !p->tpl) {
		drv->api->write_done(req, -EROFS, "this point has no write command");
		return 0;
	}
	if (drv->fd < 0) {
		drv->api->write_done(req, -ENOTCONN, drv->open_error[0] ? drv->open_error
		                                                        : "the port is not open");
		return 0;
	}
	if (drv->wq_len >= SER_WRITE_QUEUE) {
		drv->api->write_done(req, -EBUSY, "too many writes waiting for the line");
		return 0;
	}
	w = &drv->wq[(drv->wq_head + drv->wq_len) % SER_WRITE_QUEUE];
	err[0] = 0;
	n = ser_template_render(p->tpl, p->tpl_len, raw_value, w->cmd, sizeof(w->cmd), err,
	                        sizeof(err));
	if (n < 0) {
		snprintf(text, sizeof(text), "the value %g does not fit the write command%s%s",
		         raw_value, err[0] ? ": " : "", err);
		drv->api->write_done(req, n == -ERANGE ? -ERANGE : -EINVAL, text);
		return 0;
	}
	w->len = (size_t)n;
	w->p = p;
	w->req = req;
	drv->wq_len++;
	ser_poll_next(drv);
	return 0;
}
