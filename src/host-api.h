/* SPDX-License-Identifier: MIT */
/*
 * The host's side of the plugin ABI: the m2m_host_api table every plugin
 * gets, its trampolines (host-api.c), and the handles a plugin holds
 * (timers, fd watches, buses, pending writes). driver.c owns the instance
 * life cycle and reclaims these handles through the functions below. Loop
 * thread only, unless a function says otherwise.
 */
#pragma once

#include "driver.h"

struct m2m_timer {
	uv_timer_t t;
	struct m2m_host *drv;
	m2m_timer_cb cb;
	void *arg;
	struct m2m_timer *prev, *next;
};

struct m2m_io {
	uv_poll_t p;
	struct m2m_host *drv;
	m2m_io_cb cb;
	void *arg;
	int events; /* what the driver asked for (enum m2m_io_events) */
	struct m2m_io *prev, *next;
};

/* A statistic declared with stat_declare: its value lives in drv->stats[index]. */
struct m2m_stat {
	struct m2m_host *drv;
	size_t index;
	char base[64]; /* the name without the device */
	char *device;  /* NULL: the whole instance */
	char *help;
	int kind;      /* enum m2m_stat_kind */
	struct m2m_stat *next;
};

struct host_bus {
	m2m_bus *bus;
	struct host_bus *next;
};

struct m2m_write {
	struct m2m_host *drv;
	struct m2m_write *prev, *next;
	uint32_t point;
	double value; /* engineering units, for the event row */
	char *origin;
	daemon_write_cb cb;
	void *arg;
	bool in_call;   /* inside ops->write() */
	bool completed; /* write_done() was called */
	int status;
	char *error_text;
};

/* Doubly linked lists of timers, watches and writes, so stop can reclaim them. */
#define LIST_PREPEND(head, item)          \
	do {                              \
		(item)->prev = NULL;      \
		(item)->next = (head);    \
		if (head)                 \
			(head)->prev = (item); \
		(head) = (item);          \
	} while (0)
#define LIST_REMOVE(head, item)                         \
	do {                                            \
		if ((item)->prev)                       \
			(item)->prev->next = (item)->next; \
		else                                    \
			(head) = (item)->next;          \
		if ((item)->next)                       \
			(item)->next->prev = (item)->prev; \
		(item)->prev = (item)->next = NULL;     \
	} while (0)

/* The host function table given to every plugin. */
extern const struct m2m_host_api host_api;

/*
 * The core's side of submit(): checks, normalizes and hands the readings on.
 * The submit queue calls it in chunks (submit-queue.h).
 */
int host_submit(struct m2m_host *drv, const struct m2m_reading *r, size_t n);

/* Records an event of the instance (or of DEVICE) in the log and the events table. */
void host_event(struct m2m_host *drv, const char *device, const char *kind, const char *text);

/* Takes back the timers and fd watches a stopped plugin still holds. */
void host_reclaim_handles(struct m2m_host *drv);

/* Answers every write still pending with STATUS (the instance is going away). */
void host_fail_writes(struct m2m_host *drv, int status);

/* Frees what the ABI 1.1 calls (device_state, stat_declare) recorded. */
void host_state_free(struct m2m_host *drv);
