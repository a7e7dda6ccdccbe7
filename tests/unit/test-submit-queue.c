/* SPDX-License-Identifier: MIT */
/*
 * The submit queue: big submits reach the core SUBMIT_CHUNK at once and the
 * rest in pieces, for at most SUBMIT_BUDGET_US (and one piece) of each loop
 * iteration, in order, and none is lost when the queue is flushed or
 * overflows.
 */
#include "submit-queue.h"

#include <errno.h>

#include "test.h"

#define MAX_CALLS 4096

/* What the core's submit saw: the chunks, and every point id in order. */
struct seen {
	size_t calls, total;
	size_t sizes[MAX_CALLS];
	uint64_t iteration[MAX_CALLS];
	uint32_t next_id;   /* the id the next reading must carry */
	uint64_t iter;      /* loop iterations so far (a check handle counts them) */
	int ret;            /* what the submit returns; 0 means N */
	uint64_t cost_ns;   /* what each reading costs the core, on the test clock */
	uint64_t spent_ns[MAX_CALLS]; /* time in the core's submit, by iteration */
};

static struct seen seen;

/* The queue's budget clock in these tests: it moves only by what the core's submit costs. */
static int64_t clock_ns;

static int64_t test_clock(void) {
	return clock_ns;
}

static int core_submit(m2m_host *drv, const struct m2m_reading *r, size_t n) {
	(void)drv;
	ASSERT_LT(seen.calls, MAX_CALLS);
	seen.sizes[seen.calls] = n;
	seen.iteration[seen.calls] = seen.iter;
	seen.calls++;
	for (size_t i = 0; i < n; i++)
		ASSERT_EQ(r[i].point, seen.next_id++);
	seen.total += n;
	if (seen.cost_ns) {
		clock_ns += (int64_t)(n * seen.cost_ns);
		ASSERT_LT(seen.iter, MAX_CALLS);
		seen.spent_ns[seen.iter] += n * seen.cost_ns;
	}
	return seen.ret ? seen.ret : (int)n;
}

static void on_check(uv_check_t *h) {
	(void)h;
	seen.iter++;
}

static struct m2m_reading *readings(uint32_t first, size_t n) {
	struct m2m_reading *r = calloc(n, sizeof(*r));

	ASSERT(r);
	for (size_t i = 0; i < n; i++)
		r[i].point = first + (uint32_t)i;
	return r;
}

static void reset(void) {
	memset(&seen, 0, sizeof(seen));
	seen.next_id = 1;
}

static void test_small_is_synchronous(uv_loop_t *loop) {
	struct submit_queue q;
	struct m2m_reading *r = readings(1, SUBMIT_CHUNK);

	reset();
	submit_queue_init(&q, loop, core_submit, NULL);
	ASSERT_EQ(submit_queue_put(&q, r, SUBMIT_CHUNK), SUBMIT_CHUNK);
	ASSERT_EQ(seen.calls, 1);
	ASSERT_EQ(seen.total, SUBMIT_CHUNK);
	/* An error of the core reaches the driver when nothing waited. */
	seen.ret = -ESHUTDOWN;
	seen.next_id = 1;
	ASSERT_EQ(submit_queue_put(&q, r, 10), -ESHUTDOWN);
	ASSERT(q.idle == NULL); /* nothing ever waited: no handle */
	submit_queue_done(&q);
	free(r);
}

/*
 * COST_NS a reading: each loop iteration hands over pieces until the
 * budget is spent, PER_ITERATION pieces, the first chunk at once.
 */
static void chunks_per_iteration(uv_loop_t *loop, uint64_t cost_ns, size_t per_iteration) {
	struct submit_queue q;
	size_t n = 10 * SUBMIT_CHUNK + 17;
	struct m2m_reading *r = readings(1, n), *more = readings((uint32_t)n + 1, 5);
	uint64_t iterations = 0;

	reset();
	seen.cost_ns = cost_ns;
	submit_queue_init(&q, loop, core_submit, NULL);
	q.cpu_ns = test_clock;
	ASSERT_EQ(submit_queue_put(&q, r, n), (int)n);
	free(r); /* the driver reuses its buffer at once */
	ASSERT_EQ(seen.calls, 1);
	ASSERT_EQ(seen.sizes[0], SUBMIT_CHUNK);
	/* What comes while readings wait queues behind them, even when small. */
	ASSERT_EQ(submit_queue_put(&q, more, 5), 5);
	ASSERT_EQ(seen.calls, 1);
	seen.spent_ns[0] = 0; /* the first chunk was the submit's, before the loop ran */
	uv_run(loop, UV_RUN_DEFAULT);
	ASSERT_EQ(seen.total, n + 5);
	for (size_t i = 1; i < seen.calls; i++)
		ASSERT_LE(seen.sizes[i], SUBMIT_PIECE);
	/*
	 * Each iteration hands over pieces until the budget is spent: at most
	 * the budget and one piece, and the loop serves others in between.
	 */
	for (uint64_t it = 0; it <= seen.iter && it < MAX_CALLS; it++) {
		ASSERT_LE(seen.spent_ns[it], SUBMIT_BUDGET_US * 1000 + SUBMIT_PIECE * seen.cost_ns);
		iterations += seen.spent_ns[it] > 0;
	}
	/* The pieces of one iteration: as many as the budget takes, then the rest next time. */
	for (size_t i = 1; i < seen.calls; i++) {
		size_t same = 0;

		for (size_t j = 1; j < seen.calls; j++)
			same += seen.iteration[j] == seen.iteration[i];
		if (i + per_iteration < seen.calls) /* not the last iteration's */
			ASSERT_EQ(same, per_iteration);
	}
	ASSERT_EQ(iterations, (seen.calls - 1 + per_iteration - 1) / per_iteration);
	ASSERT_GT(iterations, 1);
	ASSERT_EQ(q.deferred, n + 5 - SUBMIT_CHUNK);
	submit_queue_done(&q);
	uv_run(loop, UV_RUN_DEFAULT);
	free(more);
}

static void test_chunks_per_iteration(uv_loop_t *loop) {
	/* 10 µs a reading: a piece takes more than the budget, one a turn. */
	chunks_per_iteration(loop, 10000, 1);
	/* 1 µs: 128 µs a piece, the fourth passes the 500 µs. */
	chunks_per_iteration(loop, 1000, (SUBMIT_BUDGET_US * 1000 + SUBMIT_PIECE * 1000 - 1) / (SUBMIT_PIECE * 1000));
}

static void test_flush_hands_over_all(uv_loop_t *loop) {
	struct submit_queue q;
	size_t n = 3 * SUBMIT_CHUNK;
	struct m2m_reading *r = readings(1, n);

	reset();
	submit_queue_init(&q, loop, core_submit, NULL);
	ASSERT_EQ(submit_queue_put(&q, r, n), (int)n);
	ASSERT_EQ(seen.total, SUBMIT_CHUNK);
	submit_queue_flush(&q);
	ASSERT_EQ(seen.total, n);
	ASSERT_EQ(q.len, 0);
	/* Nothing is left for the loop. */
	uv_run(loop, UV_RUN_NOWAIT);
	ASSERT_EQ(seen.total, n);
	submit_queue_done(&q);
	uv_run(loop, UV_RUN_DEFAULT);
	free(r);
}

static void test_overflow_loses_nothing(uv_loop_t *loop) {
	struct submit_queue q;
	size_t n = SUBMIT_QUEUE_MAX;
	struct m2m_reading *r = readings(1, n), *more = readings((uint32_t)n + 1, 1000);
	/* The whole chunks that make room for 1,000 behind the N - SUBMIT_CHUNK waiting. */
	size_t early = (1000 - SUBMIT_CHUNK + SUBMIT_CHUNK - 1) / SUBMIT_CHUNK * SUBMIT_CHUNK;

	reset();
	submit_queue_init(&q, loop, core_submit, NULL);
	ASSERT_EQ(submit_queue_put(&q, r, n), (int)n);
	ASSERT_EQ(q.len, n - SUBMIT_CHUNK);
	/* Past the bound, the oldest go first, whole chunks, as many as arrive. */
	ASSERT_EQ(submit_queue_put(&q, more, 1000), 1000);
	ASSERT_EQ(seen.total, SUBMIT_CHUNK + early);
	ASSERT_EQ(q.len, n - SUBMIT_CHUNK - early + 1000);
	ASSERT_LE(q.len, SUBMIT_QUEUE_MAX);
	/* More than the bound in one submit, with nothing waiting: straight through. */
	submit_queue_flush(&q);
	ASSERT_EQ(seen.total, n + 1000);
	ASSERT_EQ(q.len, 0);
	free(r);
	r = readings((uint32_t)n + 1001, n + 1);
	ASSERT_EQ(submit_queue_put(&q, r, n + 1), (int)(n + 1));
	ASSERT_EQ(seen.total, 2 * n + 1001);
	ASSERT_EQ(q.len, 0);
	submit_queue_done(&q);
	uv_run(loop, UV_RUN_DEFAULT);
	free(r);
	free(more);
}

static void test_without_loop_is_synchronous(void) {
	struct submit_queue q;
	struct m2m_reading *r = readings(1, 1000);

	reset();
	submit_queue_init(&q, NULL, core_submit, NULL);
	ASSERT_EQ(submit_queue_put(&q, r, 1000), 1000);
	ASSERT_EQ(seen.calls, 1);
	submit_queue_done(&q);
	free(r);
}

int main(void) {
	uv_loop_t loop;
	uv_check_t check;

	ASSERT_EQ(uv_loop_init(&loop), 0);
	ASSERT_EQ(uv_check_init(&loop, &check), 0);
	uv_check_start(&check, on_check);
	uv_unref((uv_handle_t *)&check);
	test_small_is_synchronous(&loop);
	test_chunks_per_iteration(&loop);
	test_flush_hands_over_all(&loop);
	test_overflow_loses_nothing(&loop);
	test_without_loop_is_synchronous();
	uv_close((uv_handle_t *)&check, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	ASSERT_EQ(uv_loop_close(&loop), 0);
	printf("submit-queue: 5 tests passed\n");
	return 0;
}
