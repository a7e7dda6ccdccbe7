/* SPDX-License-Identifier: MIT */
/* The loop-lag histogram: quantiles within the bucket resolution, and a live loop. */
#include <unistd.h>

#include "loop-lag.h"
#include "test.h"

static void test_quantiles(void) {
	static struct lag_histogram h;

	ASSERT_EQ(lag_histogram_quantile(&h, 0.99), 0);
	/* 1..10000 µs, once each: p50 ~ 5000, p99 ~ 9900, within the 1/16 bucket width. */
	for (int64_t v = 1; v <= 10000; v++)
		lag_histogram_add(&h, v);
	ASSERT_EQ(h.n, 10000);
	ASSERT_EQ(h.max_us, 10000);
	int64_t p50 = lag_histogram_quantile(&h, 0.5), p99 = lag_histogram_quantile(&h, 0.99);
	ASSERT(p50 >= 5000 && p50 <= 5000 * 1.07);
	ASSERT(p99 >= 9900 && p99 <= 10000);
	ASSERT_EQ(lag_histogram_quantile(&h, 1.0), 10000);
	/* Negative lateness (a timer that fired early) counts as zero. */
	lag_histogram_add(&h, -50);
	ASSERT_EQ(h.counts[0], 1);
	/* Huge values land in the last bucket instead of past the array. */
	lag_histogram_add(&h, INT64_MAX / 2);
	ASSERT_EQ(h.max_us, INT64_MAX / 2);
}

static void block_loop(uv_timer_t *t) {
	/* A callback that hogs the loop thread: the lag timer must see it. */
	usleep(30000);
}

static void stop_loop(uv_timer_t *t) {
	uv_stop(t->loop);
}

static void test_live(void) {
	uv_loop_t loop;
	uv_timer_t hog, stop;
	static struct loop_lag lag;

	ASSERT_OK(uv_loop_init(&loop));
	ASSERT_OK(loop_lag_start(&lag, &loop, 5));
	uv_timer_init(&loop, &hog);
	uv_timer_init(&loop, &stop);
	uv_timer_start(&hog, block_loop, 50, 50);
	uv_timer_start(&stop, stop_loop, 500, 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	ASSERT_GE(lag.total.n, 20);
	/* Each 30 ms hog delays the lag timer by up to 30 ms. */
	ASSERT_GE(lag.total.max_us, 15000);
	ASSERT_LE(lag_histogram_quantile(&lag.total, 0.5), 30000);
	loop_lag_stop(&lag);
	uv_close((uv_handle_t *)&hog, NULL);
	uv_close((uv_handle_t *)&stop, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	ASSERT_OK(uv_loop_close(&loop));
}

int main(void) {
	RUN_TEST(test_quantiles);
	RUN_TEST(test_live);
	return 0;
}
