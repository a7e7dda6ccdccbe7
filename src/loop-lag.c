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

void lag_histogram_add_weighted(struct lag_histogram *h, int64_t us, uint64_t weight) {
	unsigned b;

	if (us < 0)
		us = 0;
	b = bucket_of((uint64_t)us);
	if (b >= LAG_BUCKETS)
		b = LAG_BUCKETS - 1;
	h->counts[b] += weight;
	h->weight += weight;
	h->n++;
	if (us > h->max_us)
		h->max_us = us;
}

void lag_histogram_add_span(struct lag_histogram *h, int64_t us) {
	uint64_t lo = 0, len = us > 0 ? (uint64_t)us : 0;

	/* Bucket b holds the values after bucket b - 1's upper bound up to its own. */
	for (unsigned b = 0; lo < len; b++) {
		uint64_t hi = b < LAG_BUCKETS - 1 ? bucket_upper(b) + 1 : len;

		if (hi > len)
			hi = len;
		if (hi > lo) {
			h->counts[b] += hi - lo;
			h->weight += hi - lo;
			lo = hi;
		}
	}
}

void lag_histogram_add(struct lag_histogram *h, int64_t us) {
	lag_histogram_add_weighted(h, us, 1);
}

int64_t lag_histogram_quantile(const struct lag_histogram *h, double q) {
	uint64_t rank, seen = 0;

	if (h->weight == 0)
		return 0;
	rank = (uint64_t)(q * (double)h->weight);
	if (rank >= h->weight)
		rank = h->weight - 1;
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
 * Why samples come from the loop's own timers first, and how.
 *
 * A probe of its own wakes an idle loop at its every interval: 20 times a
 * second at 50 ms, most of what an idle m2md costs (CPU, and power on a
 * small board). When the loop sleeps until one of its timers is due
 * anyway, that wake-up measures the same thing the probe would: how late
 * after its due time the loop ran. So the prepare phase notes when the
 * poll is due back (uv_backend_timeout: the next timer's due time, or
 * none when the loop waits for I/O only or does not sleep at all), and
 * the check phase right after the poll takes the sample when that time
 * has passed, whether the poll slept to it or I/O came first and its
 * callbacks ran past it: the timer due runs after them. The probe's due
 * time then moves one interval on; it wakes the loop only when no sample
 * was taken for an interval, and its callback is left to sample a loop
 * that does not sleep (the poll timeout is 0 while work waits).
 *
 * The deadline is counted from this turn's start (our last check phase:
 * libuv reads its clock right after it, and computes the poll timeout
 * from that reading), not from the prepare phase: what the turn's own
 * callbacks took before the poll delays a timer due in the meantime, and
 * is lag. libuv's clock counts whole milliseconds; counting from our own
 * microsecond reading instead of its truncated one keeps up to 1 ms of
 * rounding out of the samples, as the probe's arm time did.
 *
 * I/O wake-ups give no sample: nothing says when the bytes arrived, and
 * the time from the wake-up to the callbacks leaves out the wait for a
 * core, the larger part of the lag on a busy machine. A loop woken by I/O
 * alone therefore keeps its probe at the base interval. Timer slack
 * (PR_SET_TIMERSLACK) was not taken: the kernel would let every timer of
 * the loop thread expire that much later, which is lag the samples would
 * then show (or hide, if subtracted), and it folds our wake-up only into
 * other timers', not into the I/O wake-ups an NMEA line gives.
 *
 * Samples come dense (a 5 ms timer of the MQTT client) or sparse (the
 * probe, stretched while idle), and dense ones cluster where the loop
 * works: each weighs the time from the sample before to its due time, and
 * the time it was late is spread over the lateness that due times in it
 * would have had (see sample), so a quantile is the share of time the
 * loop was that late, however the samples came, instead of the share of
 * samples.
 *
 * Once the loop has done nothing but sleep to its timers (one turn
 * between samples, its callbacks holding it under LAG_QUIET_US) for
 * LAG_QUIET_SAMPLES samples in a row, the probe's interval doubles with
 * each further such sample, up to LAG_STRETCH_MAX times the base: an idle
 * m2md is sampled 5 times a second instead of 20, the same thing at a
 * lower rate, and the weights keep its share of time. Not further: Linux
 * lets a poll's timeout expire later by 0.1% of its length (at least the
 * thread's 50 µs of timer slack), so an idle probe of 1 s measured 1.1 ms
 * where one of 50 ms measures 0.14; at 200 ms that slack is 0.2 ms, and
 * it is lag a timer of that length does have. Any turn of other work, or a callback
 * that held the loop, brings the base interval back at once. A late
 * sample alone does not: a loop that did nothing was kept waiting by the
 * machine, which the stretched probe samples as well (on this 2-core
 * machine, shared with builds, an idle loop is 1 to 50 ms late a few
 * times a minute; resetting on that kept the probe at 8 wake-ups a second
 * instead of 1). Not stretching sooner matters: after a callback
 * that held the loop, libuv computes the next poll timeout from its clock
 * read before that callback, so every timer due until the next wake-up is
 * late by the callback's time; a probe stretched between such callbacks
 * would make that span (and its share of time) longer.
 */
#define LAG_QUIET_US 1000
#define LAG_QUIET_SAMPLES 20
#define LAG_STRETCH_MAX 4

static void arm(struct loop_lag *l, int64_t now_us) {
	l->expected_us = now_us + (int64_t)l->interval_ms * 1000;
	uv_timer_start(&l->timer, on_tick_cb, l->interval_ms, 0);
}

/*
 * A sample weighs the due times it stands for: from the last sample to its
 * own due time, at its lateness. The due times after it, up to now, would
 * all have run now: each late by what is left to now, from the sample's
 * lateness down to zero, spread so. Together the weights are the whole
 * time since the start, every due time once. Leaving that span out (as a
 * probe re-armed when it fires does) counts late stretches short, the
 * more so the denser the samples: with timers every 5 ms running 7 ms
 * late, it would count them 5 ms in 12.
 */
static void sample(struct loop_lag *l, int64_t now_us, int64_t late_us) {
	int64_t due = now_us - (late_us > 0 ? late_us : 0);
	/* A due time before the last sample (a turn stalled between them) was counted by it. */
	int64_t from = due > l->last_sample_us ? due : l->last_sample_us;
	uint64_t w = (uint64_t)(from - l->last_sample_us);

	lag_histogram_add_weighted(&l->total, late_us, w);
	lag_histogram_add_weighted(&l->window, late_us, w);
	lag_histogram_add_span(&l->total, now_us - from);
	lag_histogram_add_span(&l->window, now_us - from);
	if (l->turns <= 1 && l->held_us < LAG_QUIET_US) {
		if (++l->quiet >= LAG_QUIET_SAMPLES && l->interval_ms < l->base_ms * LAG_STRETCH_MAX)
			l->interval_ms = l->interval_ms * 2 < l->base_ms * LAG_STRETCH_MAX
			                         ? l->interval_ms * 2
			                         : l->base_ms * LAG_STRETCH_MAX;
	} else {
		l->quiet = 0;
		l->interval_ms = l->base_ms;
	}
	l->turns = 0;
	l->held_us = 0;
	l->last_sample_us = now_us;
	arm(l, now_us);
}

/*
 * Reached only when no turn slept to the probe's due time: the lag is how
 * much later than asked the loop ran it, from the exact monotonic time it
 * was armed plus its interval. libuv keeps timers on a millisecond clock
 * that it truncates, so a timer may fire up to 1 ms early by that
 * measure; early counts as zero lag.
 */
static void on_tick_cb(uv_timer_t *t) {
	struct loop_lag *l = t->data;
	int64_t now = (int64_t)(uv_hrtime() / 1000);

	l->probe_samples++;
	sample(l, now, now - l->expected_us);
}

/* A syscall, not the vDSO: about 0.2 µs a turn, against turns of 10 µs and more. */
static int64_t thread_cpu_us(void) {
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void on_prepare(uv_prepare_t *h) {
	struct loop_lag *l = h->data;
	int64_t c = thread_cpu_us(), now;
	int timeout;

	lag_histogram_add(&l->turn_total, c - l->turn_cpu_us);
	lag_histogram_add(&l->turn_window, c - l->turn_cpu_us);
	l->turn_cpu_us = c;
	/* How long this turn's callbacks held the loop before the poll (a vDSO call). */
	now = (int64_t)(uv_hrtime() / 1000);
	if (l->turn_start_us > 0 && now - l->turn_start_us > l->held_us)
		l->held_us = now - l->turn_start_us;
	/* Work other than the probe while it is stretched: back to the base interval from now. */
	if ((++l->turns > 1 || l->held_us >= LAG_QUIET_US) && l->interval_ms > l->base_ms) {
		l->quiet = 0;
		l->interval_ms = l->base_ms;
		arm(l, now);
	}
	/*
	 * Ours is the first prepare handle started, so it runs last (libuv
	 * runs the latest started first): no prepare callback after it moves
	 * a timer. A loop clock read well after our last check (uv_run called
	 * anew, or uv_update_time in a callback) leaves the turn's start
	 * unknown: no deadline then.
	 */
	l->deadline_us = -1;
	l->probe_due = false;
	timeout = uv_backend_timeout(h->loop);
	if (timeout > 0 && l->turn_start_us > 0 &&
	    (int64_t)uv_now(h->loop) * 1000 <= l->turn_start_us + 1000) {
		l->deadline_us = l->turn_start_us + (int64_t)timeout * 1000;
		l->probe_due = (int64_t)uv_timer_get_due_in(&l->timer) == timeout;
	}
}

static void on_check(uv_check_t *h) {
	struct loop_lag *l = h->data;
	int64_t now = (int64_t)(uv_hrtime() / 1000);

	if (l->deadline_us >= 0 && now >= l->deadline_us) {
		l->timer_samples++;
		l->probe_wakeups += l->probe_due;
		sample(l, now, now - l->deadline_us);
	}
	l->deadline_us = -1;
	l->turn_start_us = now;
}

int loop_lag_start(struct loop_lag *l, uv_loop_t *loop, uint64_t interval_ms) {
	int err;

	memset(&l->total, 0, sizeof(l->total));
	memset(&l->window, 0, sizeof(l->window));
	memset(&l->turn_total, 0, sizeof(l->turn_total));
	memset(&l->turn_window, 0, sizeof(l->turn_window));
	l->base_ms = l->interval_ms = interval_ms;
	l->turn_start_us = 0;
	l->deadline_us = -1;
	l->turns = l->quiet = 0;
	l->held_us = 0;
	l->probe_due = false;
	l->timer_samples = l->probe_wakeups = l->probe_samples = 0;
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
	err = uv_check_init(loop, &l->check);
	if (err < 0) {
		uv_close((uv_handle_t *)&l->timer, NULL);
		uv_close((uv_handle_t *)&l->prepare, NULL);
		return err;
	}
	l->check.data = l;
	uv_unref((uv_handle_t *)&l->check);
	l->turn_cpu_us = thread_cpu_us();
	uv_prepare_start(&l->prepare, on_prepare);
	uv_check_start(&l->check, on_check);
	l->last_sample_us = (int64_t)(uv_hrtime() / 1000);
	arm(l, l->last_sample_us);
	return 0;
}

void loop_lag_stop(struct loop_lag *l) {
	uv_timer_stop(&l->timer);
	uv_prepare_stop(&l->prepare);
	uv_check_stop(&l->check);
	if (!uv_is_closing((uv_handle_t *)&l->check))
		uv_close((uv_handle_t *)&l->check, NULL);
	if (!uv_is_closing((uv_handle_t *)&l->prepare))
		uv_close((uv_handle_t *)&l->prepare, NULL);
	if (!uv_is_closing((uv_handle_t *)&l->timer))
		uv_close((uv_handle_t *)&l->timer, NULL);
}

void lag_window_reset(struct loop_lag *l) {
	memset(&l->window, 0, sizeof(l->window));
	memset(&l->turn_window, 0, sizeof(l->turn_window));
}
