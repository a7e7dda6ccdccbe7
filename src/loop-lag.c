/* SPDX-License-Identifier: MIT */
#include "loop-lag.h"

#include <string.h>
#include <time.h>

#include "util.h"

static void on_tick_cb(uv_timer_t *t);

/*
 * Bucket b covers values with the same top 4 bits below the leading one:
 * bucket = 16 * (bit length) + next 4 bits. Values below 16 get their own
 * buckets.
 */
static unsigned bucket_of(uint64_t v) {
	unsigned bits;

	if (v < 16)
		return (unsigned)v;
	bits = 64 - (unsigned)__builtin_clzll(v);
	return 16 * (bits - 4) + (unsigned)((v >> (bits - 5)) & 15);
}

static uint64_t bucket_upper(unsigned b) {
	unsigned bits;

	if (b < 16)
		return b;
	bits = b / 16 + 4;
	return ((uint64_t)(16 + (b & 15) + 1) << (bits - 5)) - 1;
}

void lag_histogram_add(struct lag_histogram *h, int64_t us) {
	unsigned b;

	if (us < 0)
		us = 0;
	b = bucket_of((uint64_t)us);
	if (b >= LAG_BUCKETS)
		b = LAG_BUCKETS - 1;
	h->counts[b]++;
	h->n++;
	if (us > h->max_us)
		h->max_us = us;
}

int64_t lag_histogram_quantile(const struct lag_histogram *h, double q) {
	uint64_t rank, seen = 0;

	if (h->n == 0)
		return 0;
	rank = (uint64_t)(q * (double)h->n);
	if (rank >= h->n)
		rank = h->n - 1;
	for (unsigned b = 0; b < LAG_BUCKETS; b++) {
		seen += h->counts[b];
		if (seen > rank) {
			uint64_t up = bucket_upper(b);
			return (int64_t)up < h->max_us ? (int64_t)up : h->max_us;
		}
	}
	return h->max_us;
}

/*
 * The lag is how much later than asked the loop ran the timer: measured
 * from the exact monotonic time the timer was armed plus its interval.
 * libuv keeps timers on a millisecond clock that it truncates, so a timer
 * may fire up to 1 ms early by that measure; early counts as zero lag.
 */
static void arm(struct loop_lag *l) {
	l->expected_us = (int64_t)(uv_hrtime() / 1000) + (int64_t)l->interval_ms * 1000;
	uv_timer_start(&l->timer, on_tick_cb, l->interval_ms, 0);
}

static void on_tick_cb(uv_timer_t *t) {
	struct loop_lag *l = t->data;
	int64_t late = (int64_t)(uv_hrtime() / 1000) - l->expected_us;

	lag_histogram_add(&l->total, late);
	lag_histogram_add(&l->window, late);
	arm(l);
}

/* A syscall, not the vDSO: about 0.2 µs a turn, against turns of 10 µs and more. */
static int64_t thread_cpu_us(void) {
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void on_prepare(uv_prepare_t *h) {
	struct loop_lag *l = h->data;
	int64_t c = thread_cpu_us();

	lag_histogram_add(&l->turn_total, c - l->turn_cpu_us);
	lag_histogram_add(&l->turn_window, c - l->turn_cpu_us);
	l->turn_cpu_us = c;
}

int loop_lag_start(struct loop_lag *l, uv_loop_t *loop, uint64_t interval_ms) {
	int err;

	memset(&l->total, 0, sizeof(l->total));
	memset(&l->window, 0, sizeof(l->window));
	memset(&l->turn_total, 0, sizeof(l->turn_total));
	memset(&l->turn_window, 0, sizeof(l->turn_window));
	l->interval_ms = interval_ms;
	err = uv_timer_init(loop, &l->timer);
	if (err < 0)
		return err;
	l->timer.data = l;
	/* The lag timer alone must not keep the loop alive at shutdown. */
	uv_unref((uv_handle_t *)&l->timer);
	err = uv_prepare_init(loop, &l->prepare);
	if (err < 0) {
		uv_close((uv_handle_t *)&l->timer, NULL);
		return err;
	}
	l->prepare.data = l;
	uv_unref((uv_handle_t *)&l->prepare);
	l->turn_cpu_us = thread_cpu_us();
	uv_prepare_start(&l->prepare, on_prepare);
	arm(l);
	return 0;
}

void loop_lag_stop(struct loop_lag *l) {
	uv_timer_stop(&l->timer);
	uv_prepare_stop(&l->prepare);
	if (!uv_is_closing((uv_handle_t *)&l->prepare))
		uv_close((uv_handle_t *)&l->prepare, NULL);
	if (!uv_is_closing((uv_handle_t *)&l->timer))
		uv_close((uv_handle_t *)&l->timer, NULL);
}

void lag_window_reset(struct loop_lag *l) {
	memset(&l->window, 0, sizeof(l->window));
	memset(&l->turn_window, 0, sizeof(l->turn_window));
}
