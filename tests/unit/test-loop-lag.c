/* SPDX-License-Identifier: MIT */
/*
 * The loop-lag histogram: quantiles within the bucket resolution, weighted
 * samples and late spans, a live loop, samples from the loop's own timers, the probe
 * stretched while the loop idles, and the CPU time of its turns.
 */
#include <time.h>
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

static void test_weighted(void) {
	static struct lag_histogram h;

	/* 90 samples of 100 µs that stand for 1 µs each, one of 10 ms for 100 µs: the median is 10 ms. */
	for (int i = 0; i < 90; i++)
		lag_histogram_add(&h, 100);
	ASSERT_EQ(lag_histogram_quantile(&h, 0.5), 100);
	lag_histogram_add_weighted(&h, 10000, 100);
	ASSERT_EQ(h.n, 91);
	ASSERT_EQ(h.weight, 190);
	ASSERT_EQ(lag_histogram_quantile(&h, 0.5), 10000);
	ASSERT_GE(lag_histogram_quantile(&h, 0.4), 100);
	ASSERT_LE(lag_histogram_quantile(&h, 0.4), 107);
}

static void test_span(void) {
	static struct lag_histogram h;

	/* A sample 1 ms late with nothing before it: the due times of that ms, late by 1000 .. 1 µs. */
	lag_histogram_add_weighted(&h, 1000, 0);
	lag_histogram_add_span(&h, 1000);
	ASSERT_EQ(h.n, 1);
	ASSERT_EQ(h.weight, 1000);
	ASSERT_EQ(h.max_us, 1000);
	int64_t p50 = lag_histogram_quantile(&h, 0.5), p90 = lag_histogram_quantile(&h, 0.9);
	ASSERT(p50 >= 500 && p50 <= 500 * 1.07);
	ASSERT(p90 >= 900 && p90 <= 900 * 1.07);
	for (unsigned b = 0; b < 16; b++)
		ASSERT_EQ(h.counts[b], 1);
	lag_histogram_add_span(&h, 0);
	lag_histogram_add_span(&h, -5);
	ASSERT_EQ(h.weight, 1000);
}

static void block_loop(uv_timer_t *t) {
	/* A callback that hogs the loop thread: the lag timer must see it. */
	usleep(30000);
}

static void stop_loop(uv_timer_t *t) {
	uv_stop(t->loop);
}

/* Half a second of a loop measured by LAG, with HOG run every PERIOD ms from 50 ms on. */
static void run_hogged(struct loop_lag *lag, uv_timer_cb hog_cb, uint64_t period) {
	uv_loop_t loop;
	uv_timer_t hog, stop;

	ASSERT_OK(uv_loop_init(&loop));
	ASSERT_OK(loop_lag_start(lag, &loop, 5));
	uv_timer_init(&loop, &hog);
	uv_timer_init(&loop, &stop);
	uv_timer_start(&hog, hog_cb, 50, period);
	uv_timer_start(&stop, stop_loop, 500, 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	loop_lag_stop(lag);
	uv_close((uv_handle_t *)&hog, NULL);
	uv_close((uv_handle_t *)&stop, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	ASSERT_OK(uv_loop_close(&loop));
}

static void test_live(void) {
	static struct loop_lag lag;

	run_hogged(&lag, block_loop, 50);
	ASSERT_GE(lag.total.n, 20);
	/* Each 30 ms hog delays the lag timer by up to 30 ms. */
	ASSERT_GE(lag.total.max_us, 15000);
	ASSERT_LE(lag_histogram_quantile(&lag.total, 0.5), 30000);
	/* Sleeping holds the loop but costs no CPU: the turns say it was not m2md's work. */
	ASSERT_GE(lag.turn_total.n, lag.total.n);
	ASSERT_LT(lag.turn_total.max_us, 15000);
	/* The samples came after polls that slept to a due time, and the probe never stretched between hogs. */
	ASSERT_GE(lag.timer_samples, lag.total.n / 2);
	ASSERT_EQ(lag.interval_ms, 5);
}

static void tick(uv_timer_t *t) {
	(void)t;
}

static void test_timer_samples(void) {
	static struct loop_lag lag;
	uv_loop_t loop;
	uv_timer_t other, stop;
	uint64_t t0;
	int64_t s0;

	/* A timer of the loop every 10 ms: it gives the samples, the 50 ms probe never wakes the loop. */
	ASSERT_OK(uv_loop_init(&loop));
	ASSERT_OK(loop_lag_start(&lag, &loop, 50));
	s0 = lag.last_sample_us;
	uv_timer_init(&loop, &other);
	uv_timer_init(&loop, &stop);
	uv_timer_start(&other, tick, 10, 10);
	uv_timer_start(&stop, stop_loop, 500, 0);
	t0 = uv_hrtime();
	uv_run(&loop, UV_RUN_DEFAULT);
	loop_lag_stop(&lag);
	uv_close((uv_handle_t *)&other, NULL);
	uv_close((uv_handle_t *)&stop, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	ASSERT_OK(uv_loop_close(&loop));
	ASSERT_GE(lag.timer_samples, 20);
	ASSERT_EQ(lag.probe_wakeups, 0);
	ASSERT_LT(lag.probe_samples, lag.timer_samples / 4);
	ASSERT_EQ(lag.total.n, lag.timer_samples + lag.probe_samples);
	/* Each stands for the due times since the sample before: together, the run to the last one. */
	ASSERT_EQ(lag.total.weight, (uint64_t)(lag.last_sample_us - s0));
	ASSERT_LE(lag.total.weight, (uv_hrtime() - t0) / 1000);
}

struct idle_run {
	struct loop_lag lag;
	uv_async_t async;
	uv_thread_t thread;
	volatile int sending;
	uint64_t n_idle, interval_idle, n_busy, interval_busy;
};

/* Another thread wakes the loop through I/O every 2 ms: work other than the probe. */
static void send_asyncs(void *arg) {
	struct idle_run *r = arg;

	while (r->sending) {
		uv_async_send(&r->async);
		usleep(2000);
	}
}

static void on_async(uv_async_t *a) {
	(void)a;
}

static void end_idle(uv_timer_t *t) {
	struct idle_run *r = t->data;

	r->n_idle = r->lag.total.n;
	r->interval_idle = r->lag.interval_ms;
	r->sending = 1;
	ASSERT_OK(uv_thread_create(&r->thread, send_asyncs, r));
}

static void end_busy(uv_timer_t *t) {
	struct idle_run *r = t->data;

	r->n_busy = r->lag.total.n - r->n_idle;
	r->interval_busy = r->lag.interval_ms;
	r->sending = 0;
	uv_thread_join(&r->thread);
	uv_stop(t->loop);
}

static void test_idle_stretch(void) {
	static struct idle_run r;
	uv_loop_t loop;
	uv_timer_t idle, busy;

	ASSERT_OK(uv_loop_init(&loop));
	ASSERT_OK(loop_lag_start(&r.lag, &loop, 5));
	ASSERT_OK(uv_async_init(&loop, &r.async, on_async));
	uv_timer_init(&loop, &idle);
	uv_timer_init(&loop, &busy);
	idle.data = busy.data = &r;
	uv_timer_start(&idle, end_idle, 1500, 0);
	uv_timer_start(&busy, end_busy, 1800, 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	loop_lag_stop(&r.lag);
	uv_close((uv_handle_t *)&r.async, NULL);
	uv_close((uv_handle_t *)&idle, NULL);
	uv_close((uv_handle_t *)&busy, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	ASSERT_OK(uv_loop_close(&loop));
	/* Idle: 20 samples at 5 ms, then the interval doubles to 20 ms: not the 300 of a fixed probe. */
	ASSERT_GE(r.n_idle, 20);
	ASSERT_LE(r.n_idle, 150);
	ASSERT_GT(r.interval_idle, 5);
	/* Woken by I/O, the loop is sampled at the base interval again (60 in 300 ms). */
	ASSERT_EQ(r.interval_busy, 5);
	ASSERT_GE(r.n_busy, 15);
}

static int64_t cpu_us(void) {
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void spin_loop(uv_timer_t *t) {
	int64_t end = cpu_us() + 20000;

	(void)t;
	/* 20 ms of the thread's CPU, however long a busy machine makes that. */
	while (cpu_us() < end)
		;
}

static void test_turn_cpu(void) {
	static struct loop_lag lag;

	run_hogged(&lag, spin_loop, 100);
	ASSERT_GE(lag.turn_window.max_us, 20000);
	ASSERT_EQ(lag.turn_window.max_us, lag.turn_total.max_us);
	/* Most turns are the lag timer's alone; a few hold a spin. */
	ASSERT_LT(lag_histogram_quantile(&lag.turn_total, 0.5), 5000);
	lag_window_reset(&lag);
	ASSERT_EQ(lag.turn_window.n, 0);
	ASSERT_GE(lag.turn_total.n, 4);
}

int main(void) {
	RUN_TEST(test_quantiles);
	RUN_TEST(test_weighted);
	RUN_TEST(test_span);
	RUN_TEST(test_live);
	RUN_TEST(test_timer_samples);
	RUN_TEST(test_idle_stretch);
	RUN_TEST(test_turn_cpu);
	return 0;
}
