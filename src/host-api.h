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
	bool in_cb; /* its callback is running (timer_update) */
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

/*
 * The handle stat_declare returns: an index, because drv->stats grows by
 * realloc. Name, device, kind, help and value live in drv->stats[index].
 */
struct m2m_stat {
	struct m2m_host *drv;
	size_t index;
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
	write_cb cb;
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

/* Records an event of the instance (or of DEVICE) in the log and the events table. */
void host_event(struct m2m_host *drv, const char *device, const char *kind, const char *text);

/* Takes back the timers and fd watches a stopped plugin still holds. */
void host_reclaim_handles(struct m2m_host *drv);

/*
 * Makes what the host keeps beside an instance (the lock of last_error),
 * right after the instance is allocated. Returns 0 or a negative errno.
 */
int host_state_init(struct m2m_host *drv);

/* Frees what host_state_init made and what device_state and stat_declare recorded. */
void host_state_free(struct m2m_host *drv);

/*
 * The instance's last error, copied into BUF (N bytes) under its lock:
 * a plugin may be logging one from a bus thread. Returns BUF. Any thread.
 */
const char *host_last_error(struct m2m_host *drv, char *buf, size_t n);

/* Sets the last error to TEXT ("" clears it); with IF_EMPTY only when none is set. Any thread. */
void host_set_last_error(struct m2m_host *drv, const char *text, bool if_empty);

/*
 * Registers the instance's series in the core's metrics registry (its
 * info, state, points, readings, starts and failures, and every statistic
 * of the plugin), owned by the instance; statistics the plugin adds later
 * are registered as they come. Called when the instance starts, after the
 * instance it replaces is gone, so that one driver label has one set of
 * series. Nothing without a registry. Returns 0 or a negative errno.
 */
int host_metrics_add(struct m2m_host *drv);

/* Takes the instance's series out of the registry (it is being destroyed). */
void host_metrics_remove(struct m2m_host *drv);

/*
 * Adds the instance's "last_error" and "devices" to its status object OBJ:
 *   "devices": [{"name": "plc1", "state": "offline", "reason": "timeout: ...",
 *                "since_us": 1764590000000000}, ...]
 * every device the driver reported with device_state, in the order first
 * reported; "name" is null for the whole instance, "reason" is "" online.
 */
void host_status_json(struct m2m_host *drv, struct cJSON *obj);

/*
 * Adds "device" to the point object OBJ when the point's driver reported
 * the state of the point's device or of the whole instance, in the shape
 * of one "devices" entry above; an offline instance wins over its devices.
 */
void host_point_json(const struct point *p, struct cJSON *obj);
