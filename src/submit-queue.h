/* SPDX-License-Identifier: MIT */
#ifndef M2M_SUBMIT_QUEUE_H
#define M2M_SUBMIT_QUEUE_H

/*
 * Readings a driver submits, handed to the core in bounded chunks.
 *
 * A poll cycle of 10,000 registers arrives on the loop in one submit; the
 * core's work per reading (normalize, publish, rules, store) done for all
 * of them at once would hold the loop for tens of milliseconds. The queue
 * passes up to SUBMIT_CHUNK readings to the core at once (a Modbus block
 * of 125 goes straight through), and the rest from an idle handle, in
 * pieces of SUBMIT_PIECE for SUBMIT_BUDGET_US of the loop thread's CPU in
 * each loop iteration, so timers, the MQTT socket and the control socket
 * are served between them whatever a reading costs. (Pieces of 32 cost
 * about a tenth more CPU per reading at 100,000 readings/s: each hand-over
 * has fixed costs, the storage queue's lock and wake-up among them.) Order is kept: while
 * readings wait, new ones queue behind them. The copy is
 * bounded (SUBMIT_QUEUE_MAX readings): a submit that would pass the bound
 * first hands over as many of the oldest as it brings, which holds the
 * loop as long as that submit did without the queue, and loses nothing.
 *
 * Everything here runs on the loop thread.
 */
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "m2m/plugin.h"

#define SUBMIT_CHUNK 128
#define SUBMIT_PIECE SUBMIT_CHUNK
#define SUBMIT_BUDGET_US 500
#define SUBMIT_QUEUE_MAX (1u << 17)

typedef int (*submit_fn)(m2m_host *drv, const struct m2m_reading *r, size_t n);

struct submit_queue {
	uv_loop_t *loop;
	submit_fn fn;              /* the core's submit, called with chunks */
	m2m_host *drv;
	uv_idle_t *idle;           /* allocated on first need; frees itself when closed */
	struct m2m_reading *buf;
	size_t head, len, cap;     /* waiting: buf[head .. head + len) */
	uint64_t deferred;         /* readings that waited for a later iteration */
	int64_t (*cpu_ns)(void);   /* the budget's clock: the thread's CPU time (a test's own clock) */
};

/* Sets up an empty queue that hands readings of DRV to FN. Allocates nothing. */
void submit_queue_init(struct submit_queue *q, uv_loop_t *loop, submit_fn fn, m2m_host *drv);

/*
 * Takes N readings (copied when they must wait). Returns what FN returned
 * when all N went through at once, else N: the readings that wait are
 * counted by the core when they are handed over (rejected ones included).
 */
int submit_queue_put(struct submit_queue *q, const struct m2m_reading *r, size_t n);

/* Hands over everything that waits, now (before the driver stops). */
void submit_queue_flush(struct submit_queue *q);

/* Drops what waits and releases the queue; the idle handle frees itself. */
void submit_queue_done(struct submit_queue *q);

#endif
