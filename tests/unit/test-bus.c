/* SPDX-License-Identifier: MIT */
/* Bus threads: order, urgent items first, completions on the loop thread, cancel on close. */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <uv.h>

#include "bus.h"
#include "test.h"

struct job {
	int id;
	int *order;
	int *n_run;
	pthread_t worker;
	int status;
	bool done;
	pthread_t done_thread;
	/* When set: the item says it runs, then holds the thread until the gate opens. */
	sem_t *started, *gate;
};

static int work(void *arg) {
	struct job *j = arg;

	if (j->started) {
		sem_post(j->started);
		while (sem_wait(j->gate) < 0)
			;
	}
	j->worker = pthread_self();
	j->order[(*j->n_run)++] = j->id;
	return j->id * 10;
}

static void done(int status, void *arg) {
	struct job *j = arg;

	j->status = status;
	j->done = true;
	j->done_thread = pthread_self();
}

static bool closed;

static void on_closed(void *arg) {
	closed = true;
	*(int *)arg = 1;
}

static void test_order_and_urgent(void) {
	uv_loop_t loop;
	m2m_bus *bus;
	struct job jobs[6];
	int order[6], n_run = 0, closed_flag = 0;
	sem_t started, gate;

	ASSERT_OK(uv_loop_init(&loop));
	ASSERT_OK(bus_new(&loop, "test:order", &bus));
	ASSERT_STR_EQ(bus_name(bus), "test:order");
	for (int i = 0; i < 6; i++)
		jobs[i] = (struct job){ .id = i, .order = order, .n_run = &n_run };
	/* The first item holds the thread until the rest are queued up behind it. */
	ASSERT_OK(sem_init(&started, 0, 0));
	ASSERT_OK(sem_init(&gate, 0, 0));
	jobs[0].started = &started;
	jobs[0].gate = &gate;
	ASSERT_OK(bus_submit(bus, 0, work, done, &jobs[0]));
	while (sem_wait(&started) < 0)
		;
	ASSERT_OK(bus_submit(bus, 0, work, done, &jobs[1]));
	ASSERT_OK(bus_submit(bus, 0, work, done, &jobs[2]));
	ASSERT_OK(bus_submit(bus, M2M_BUS_URGENT, work, done, &jobs[3]));
	ASSERT_OK(bus_submit(bus, M2M_BUS_URGENT, work, done, &jobs[4]));
	ASSERT_OK(bus_submit(bus, 0, work, done, &jobs[5]));
	ASSERT_EQ(bus_pending(bus), 5);
	sem_post(&gate);
	while (n_run < 6 || !jobs[5].done)
		uv_run(&loop, UV_RUN_ONCE);
	/* Urgent items run ahead of queued ordinary ones, in their own order. */
	const int want[] = { 0, 3, 4, 1, 2, 5 };
	for (int i = 0; i < 6; i++)
		ASSERT_EQ(order[i], want[i]);
	for (int i = 0; i < 6; i++) {
		ASSERT(jobs[i].done);
		ASSERT_EQ(jobs[i].status, i * 10);
		ASSERT(pthread_equal(jobs[i].done_thread, pthread_self()));
		ASSERT(!pthread_equal(jobs[i].worker, pthread_self()));
	}
	ASSERT_EQ(bus_pending(bus), 0);
	bus_close(bus, on_closed, &closed_flag);
	while (!closed_flag)
		uv_run(&loop, UV_RUN_ONCE);
	ASSERT_OK(uv_loop_close(&loop));
	sem_destroy(&started);
	sem_destroy(&gate);
}

static void test_cancel_on_close(void) {
	uv_loop_t loop;
	m2m_bus *bus;
	struct job jobs[4];
	int order[4], n_run = 0, closed_flag = 0;
	sem_t started, gate;

	ASSERT_OK(uv_loop_init(&loop));
	ASSERT_OK(bus_new(&loop, "test:cancel", &bus));
	for (int i = 0; i < 4; i++)
		jobs[i] = (struct job){ .id = i + 1, .order = order, .n_run = &n_run };
	ASSERT_OK(sem_init(&started, 0, 0));
	ASSERT_OK(sem_init(&gate, 0, 0));
	jobs[0].started = &started;
	jobs[0].gate = &gate;
	for (int i = 0; i < 4; i++)
		ASSERT_OK(bus_submit(bus, 0, work, done, &jobs[i]));
	while (sem_wait(&started) < 0)
		;
	/* The running item finishes; the queued ones are cancelled, all without blocking here. */
	closed = false;
	bus_close(bus, on_closed, &closed_flag);
	sem_post(&gate);
	while (!closed_flag)
		uv_run(&loop, UV_RUN_ONCE);
	ASSERT_EQ(n_run, 1);
	ASSERT_EQ(jobs[0].status, 10);
	for (int i = 1; i < 4; i++) {
		ASSERT(jobs[i].done);
		ASSERT_EQ(jobs[i].status, -ECANCELED);
	}
	ASSERT_OK(uv_loop_close(&loop));
	sem_destroy(&started);
	sem_destroy(&gate);
}

static void test_submit_after_close(void) {
	uv_loop_t loop;
	m2m_bus *bus;
	int closed_flag = 0, order[1], n_run = 0;
	struct job j = { .id = 1, .order = order, .n_run = &n_run };

	ASSERT_OK(uv_loop_init(&loop));
	ASSERT_OK(bus_new(&loop, "test:late", &bus));
	bus_close(bus, on_closed, &closed_flag);
	ASSERT_EQ(bus_submit(bus, 0, work, done, &j), -ESHUTDOWN);
	ASSERT_EQ(bus_submit(bus, 0, NULL, done, &j), -EINVAL);
	while (!closed_flag)
		uv_run(&loop, UV_RUN_ONCE);
	ASSERT(!j.done);
	ASSERT_OK(uv_loop_close(&loop));
}

int main(void) {
	RUN_TEST(test_order_and_urgent);
	RUN_TEST(test_cancel_on_close);
	RUN_TEST(test_submit_after_close);
	return 0;
}
