/* SPDX-License-Identifier: MIT */
#include "bus.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct item {
	struct item *next;
	m2m_bus_work_fn work;
	m2m_bus_done_fn done;
	void *arg;
	int status;
};

struct m2m_bus {
	char *name;
	uv_async_t async; /* wakes the loop when items are done */
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;

	/* Guarded by mu. */
	struct item *queue, *queue_tail, *urgent_tail; /* urgent items lead the queue */
	struct item *done, *done_tail;
	size_t pending;
	bool closing;
	bool exited;

	/* Loop thread only. */
	bool joined;
	void (*on_closed)(void *arg);
	void *on_closed_arg;
};

static void push_done(m2m_bus *b, struct item *it) {
	it->next = NULL;
	if (b->done_tail)
		b->done_tail->next = it;
	else
		b->done = it;
	b->done_tail = it;
}

static void *bus_thread(void *arg) {
	m2m_bus *b = arg;
	struct item *it;

	pthread_mutex_lock(&b->mu);
	for (;;) {
		while (!b->queue && !b->closing)
			pthread_cond_wait(&b->cv, &b->mu);
		if (b->closing)
			break;
		it = b->queue;
		b->queue = it->next;
		if (!b->queue)
			b->queue_tail = NULL;
		if (b->urgent_tail == it)
			b->urgent_tail = NULL;
		b->pending--;
		pthread_mutex_unlock(&b->mu);

		it->status = it->work(it->arg);

		pthread_mutex_lock(&b->mu);
		push_done(b, it);
		uv_async_send(&b->async);
	}
	/* Closing: what never started is cancelled, in order. */
	while ((it = b->queue)) {
		b->queue = it->next;
		it->status = -ECANCELED;
		push_done(b, it);
	}
	b->queue_tail = b->urgent_tail = NULL;
	b->pending = 0;
	b->exited = true;
	pthread_mutex_unlock(&b->mu);
	uv_async_send(&b->async);
	return NULL;
}

static void bus_free(uv_handle_t *h) {
	m2m_bus *b = h->data;
	void (*on_closed)(void *) = b->on_closed;
	void *arg = b->on_closed_arg;

	pthread_mutex_destroy(&b->mu);
	pthread_cond_destroy(&b->cv);
	free(b->name);
	free(b);
	if (on_closed)
		on_closed(arg);
}

static void on_async(uv_async_t *a) {
	m2m_bus *b = a->data;
	struct item *list, *next;
	bool exited;

	pthread_mutex_lock(&b->mu);
	list = b->done;
	b->done = b->done_tail = NULL;
	exited = b->exited;
	pthread_mutex_unlock(&b->mu);

	for (; list; list = next) {
		next = list->next;
		if (list->done)
			list->done(list->status, list->arg);
		free(list);
	}
	if (exited && !b->joined) {
		/* The thread has set exited as its last act; joining it is immediate. */
		pthread_join(b->thread, NULL);
		b->joined = true;
		uv_close((uv_handle_t *)&b->async, bus_free);
	}
}

int bus_new(uv_loop_t *loop, const char *name, m2m_bus **ret) {
	m2m_bus *b = calloc(1, sizeof(*b));
	pthread_attr_t attr;
	int err;

	if (!b)
		return -ENOMEM;
	b->name = strdup(name);
	if (!b->name) {
		free(b);
		return -ENOMEM;
	}
	pthread_mutex_init(&b->mu, NULL);
	pthread_cond_init(&b->cv, NULL);
	err = uv_async_init(loop, &b->async, on_async);
	if (err < 0) {
		pthread_mutex_destroy(&b->mu);
		pthread_cond_destroy(&b->cv);
		free(b->name);
		free(b);
		return err; /* libuv errors are negative errno values on Unix */
	}
	b->async.data = b;
	/* Protocol libraries need little stack; a small one keeps RSS low with many buses. */
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	err = -pthread_create(&b->thread, &attr, bus_thread, b);
	pthread_attr_destroy(&attr);
	if (err < 0) {
		b->exited = b->joined = true;
		uv_close((uv_handle_t *)&b->async, bus_free);
		return err;
	}
	*ret = b;
	return 0;
}

const char *bus_name(const m2m_bus *bus) {
	return bus->name;
}

int bus_submit(m2m_bus *b, int flags, m2m_bus_work_fn work, m2m_bus_done_fn done, void *arg) {
	struct item *it;

	if (!work)
		return -EINVAL;
	it = calloc(1, sizeof(*it));
	if (!it)
		return -ENOMEM;
	it->work = work;
	it->done = done;
	it->arg = arg;

	pthread_mutex_lock(&b->mu);
	if (b->closing) {
		pthread_mutex_unlock(&b->mu);
		free(it);
		return -ESHUTDOWN;
	}
	if (flags & M2M_BUS_URGENT) {
		/* After the urgent items already queued, before every ordinary one. */
		if (b->urgent_tail) {
			it->next = b->urgent_tail->next;
			b->urgent_tail->next = it;
		} else {
			it->next = b->queue;
			b->queue = it;
		}
		b->urgent_tail = it;
		if (!it->next)
			b->queue_tail = it;
	} else {
		if (b->queue_tail)
			b->queue_tail->next = it;
		else
			b->queue = it;
		b->queue_tail = it;
	}
	b->pending++;
	pthread_cond_signal(&b->cv);
	pthread_mutex_unlock(&b->mu);
	return 0;
}

size_t bus_pending(m2m_bus *b) {
	size_t n;

	pthread_mutex_lock(&b->mu);
	n = b->pending;
	pthread_mutex_unlock(&b->mu);
	return n;
}

void bus_close(m2m_bus *b, void (*on_closed)(void *arg), void *arg) {
	if (!b)
		return;
	b->on_closed = on_closed;
	b->on_closed_arg = arg;
	pthread_mutex_lock(&b->mu);
	b->closing = true;
	pthread_cond_signal(&b->cv);
	pthread_mutex_unlock(&b->mu);
}
