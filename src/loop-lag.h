/* SPDX-License-Identifier: MIT */
/*
 * Loop lag: how late the loop thread gets to a timer's due time, measured
 * all the time and kept in log-linear histograms (about 3% resolution from
 * 1 µs to hours), so percentiles cost no sorting.
 *
 * The samples come first from the loop's own timers: each time the loop
 * sleeps until a timer is due, the check phase after the poll records how
 * late it got there. A probe timer fills in when no such sample was taken
 * for its interval (50 ms in m2md), and only then wakes the loop itself;
 * once the loop has done nothing but sleep to its timers for 20 samples,
 * its interval doubles up to 4 times. Each sample weighs the time from
 * the one before to its due time, and the time it was late counts at the
 * lateness each due time in it would have had: the percentiles are shares
 * of time (the weights are µs), whether samples come dense or sparse.
 *
 * Beside it, the CPU time of each loop turn (from one prepare phase to the
 * next, read from the thread's CPU clock): what m2md itself holds the loop
 * for. Lag beyond it is time the thread waited for a core.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#define LAG_BUCKETS (64 * 16)

struct lag_histogram {
	uint64_t counts[LAG_BUCKETS]; /* the weight of each bucket */
	uint64_t n;                   /* samples */
	uint64_t weight;              /* the sum of counts */
	int64_t max_us;
};

struct loop_lag {
	uv_timer_t timer;          /* the probe */
	uv_prepare_t prepare;      /* ends one turn and starts the next, notes the poll's deadline */
	uv_check_t check;          /* after the poll: how late it came back */
	uint64_t base_ms;          /* the probe's interval while the loop works */
	uint64_t interval_ms;      /* its interval now: up to 4 * base_ms while the loop idles */
	int64_t expected_us;       /* monotonic time the probe should fire */
	int64_t last_sample_us;    /* when the last sample was taken: the next one's weight */
	int64_t turn_start_us;     /* the last check phase: the loop's clock is read after it */
	int64_t deadline_us;       /* when this turn's poll is due back (a timer is due), or -1 */
	uint64_t turns;            /* turns since the last sample */
	unsigned quiet;            /* quiet samples in a row (one turn, held briefly) */
	int64_t held_us;           /* the longest a turn held the loop before its poll, since */
	bool probe_due;            /* this turn's deadline is the probe's */
	uint64_t timer_samples;    /* samples of the check phase: a due time passed in the poll */
	uint64_t probe_wakeups;    /* of those, at the probe's own due time */
	uint64_t probe_samples;    /* samples of the probe's callback (no turn slept to its time) */
	int64_t turn_cpu_us;       /* the thread's CPU clock when this turn began */
	struct lag_histogram total;       /* since start */
	struct lag_histogram window;      /* since the last lag_window_reset */
	struct lag_histogram turn_total;  /* CPU µs per turn, since start */
	struct lag_histogram turn_window; /* the same since the last lag_window_reset */
};

/* One sample of weight 1. */
void lag_histogram_add(struct lag_histogram *h, int64_t us);
void lag_histogram_add_weighted(struct lag_histogram *h, int64_t us, uint64_t weight);
/* Weight 1 at each of 0 .. US - 1 (the due times of a late span of US µs), no sample. */
void lag_histogram_add_span(struct lag_histogram *h, int64_t us);
/* Q in [0, 1] of the weight; returns an upper bound of the bucket holding that quantile. */
int64_t lag_histogram_quantile(const struct lag_histogram *h, double q);

int loop_lag_start(struct loop_lag *l, uv_loop_t *loop, uint64_t interval_ms);
void loop_lag_stop(struct loop_lag *l);
void lag_window_reset(struct loop_lag *l);
