/* SPDX-License-Identifier: MIT */
/*
 * Loop lag: how late the loop thread runs a timer, measured all the time
 * with a light periodic timer and kept in a log-linear histogram (about 3%
 * resolution from 1 µs to hours), so percentiles cost no sorting.
 *
 * Beside it, the CPU time of each loop turn (from one prepare phase to the
 * next, read from the thread's CPU clock): what m2md itself holds the loop
 * for. Lag beyond it is time the thread waited for a core.
 */
#pragma once

#include <stdint.h>
#include <uv.h>

#define LAG_BUCKETS (64 * 16)

struct lag_histogram {
	uint32_t counts[LAG_BUCKETS];
	uint64_t n;
	int64_t max_us;
};

struct loop_lag {
	uv_timer_t timer;
	uint64_t interval_ms;
	int64_t expected_us; /* monotonic time the timer should fire */
	struct lag_histogram total;  /* since start */
	struct lag_histogram window; /* since the last lag_window_reset */
	uv_prepare_t prepare;        /* ends one turn and starts the next */
	int64_t turn_cpu_us;         /* the thread's CPU clock when this turn began */
	struct lag_histogram turn_total;  /* CPU µs per turn, since start */
	struct lag_histogram turn_window; /* the same since the last lag_window_reset */
};

void lag_histogram_add(struct lag_histogram *h, int64_t us);
/* Q in [0, 1]; returns an upper bound of the bucket holding that quantile. */
int64_t lag_histogram_quantile(const struct lag_histogram *h, double q);

int loop_lag_start(struct loop_lag *l, uv_loop_t *loop, uint64_t interval_ms);
void loop_lag_stop(struct loop_lag *l);
void lag_window_reset(struct loop_lag *l);
