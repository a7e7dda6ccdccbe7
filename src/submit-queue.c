/* SPDX-License-Identifier: MIT */
#include "submit-queue.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The loop thread's CPU clock: what its own work took, not the time others had the core. */
static int64_t thread_cpu_ns(void) {
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void submit_queue_init(struct submit_queue *q, uv_loop_t *loop, submit_fn fn, m2m_host *drv) {
	memset(q, 0, sizeof(*q));
	q->loop = loop;
	q->fn = fn;
	q->drv = drv;
	q->cpu_ns = thread_cpu_ns;
}

/* Hands over the oldest N of what waits (N <= len). */
static void hand_over(struct submit_queue *q, size_t n) {
	const struct m2m_reading *r = q->buf + q->head;

	q->head += n;
	q->len -= n;
	if (q->len == 0)
		q->head = 0;
	(void)q->fn(q->drv, r, n);
}

static void hand_chunk(struct submit_queue *q) {
	hand_over(q, q->len < SUBMIT_CHUNK ? q->len : SUBMIT_CHUNK);
}

/*
 * One loop iteration's share: pieces until they have taken SUBMIT_BUDGET_US
 * of the thread's CPU. A count alone bounds the turn only as well as the
 * cost per reading is known, and that varies with what the readings
 * trigger (rules, sinks, the formatter) and with the machine. Wall time
 * would not do: a turn preempted by another process would hand over one
 * piece and the next turns as little, each paying the iteration's fixed
 * costs (a poll, the MQTT cork) for fewer readings.
 */
static void on_idle(uv_idle_t *h) {
	struct submit_queue *q = h->data;
	int64_t end = q->cpu_ns() + SUBMIT_BUDGET_US * 1000;

	do
		hand_over(q, q->len < SUBMIT_PIECE ? q->len : SUBMIT_PIECE);
	while (q->len && q->cpu_ns() < end);
	if (q->len == 0)
		uv_idle_stop(h);
}

/* Room for N more behind what waits: compacts, or grows, when the tail is short. */
static int reserve(struct submit_queue *q, size_t n) {
	size_t cap;
	struct m2m_reading *nb;

	if (q->head + q->len + n <= q->cap)
		return 0;
	if (q->head) {
		memmove(q->buf, q->buf + q->head, q->len * sizeof(*q->buf));
		q->head = 0;
	}
	if (q->len + n <= q->cap)
		return 0;
	cap = q->cap ? q->cap : SUBMIT_CHUNK * 4;
	while (cap < q->len + n)
		cap *= 2;
	nb = realloc(q->buf, cap * sizeof(*nb));
	if (!nb)
		return -ENOMEM;
	q->buf = nb;
	q->cap = cap;
	return 0;
}

static int start_idle(struct submit_queue *q) {
	int err;

	if (!q->idle) {
		q->idle = malloc(sizeof(*q->idle));
		if (!q->idle)
			return -ENOMEM;
		err = uv_idle_init(q->loop, q->idle);
		if (err < 0) {
			free(q->idle);
			q->idle = NULL;
			return err;
		}
		q->idle->data = q;
	}
	return uv_idle_start(q->idle, on_idle);
}

int submit_queue_put(struct submit_queue *q, const struct m2m_reading *r, size_t n) {
	size_t total = n;
	int first = 0;

	if (q->len + n > SUBMIT_QUEUE_MAX) {
		/*
		 * Far behind: the oldest go now, as many as arrive, so that the
		 * wait stays bounded, nothing is lost, and the loop is held no
		 * longer than it was for a submit without the queue.
		 */
		while (q->len && q->len + n > SUBMIT_QUEUE_MAX)
			hand_chunk(q);
		if (q->len == 0 && n > SUBMIT_QUEUE_MAX)
			return q->fn(q->drv, r, n);
	}
	if (q->len == 0 && (n <= SUBMIT_CHUNK || !q->loop))
		return q->fn(q->drv, r, n);
	if (q->len == 0) {
		first = q->fn(q->drv, r, SUBMIT_CHUNK);
		if (first < 0 && first != -EINVAL)
			return first; /* not running, or no memory: the rest would fail alike */
		r += SUBMIT_CHUNK;
		n -= SUBMIT_CHUNK;
	}
	if (reserve(q, n) < 0 || start_idle(q) < 0) {
		/* No room to wait in: hand it all over now rather than lose it. */
		submit_queue_flush(q);
		return q->fn(q->drv, r, n);
	}
	memcpy(q->buf + q->head + q->len, r, n * sizeof(*r));
	q->len += n;
	q->deferred += n;
	return first == -EINVAL ? -EINVAL : (int)total;
}

void submit_queue_flush(struct submit_queue *q) {
	while (q->len)
		hand_chunk(q);
	if (q->idle)
		uv_idle_stop(q->idle);
}

static void idle_closed(uv_handle_t *h) {
	free(h);
}

void submit_queue_done(struct submit_queue *q) {
	if (q->idle)
		uv_close((uv_handle_t *)q->idle, idle_closed);
	free(q->buf);
	memset(q, 0, sizeof(*q));
}
