/* SPDX-License-Identifier: MIT */
/*
 * What a module sees of the data: readings, device states and the point
 * set. A module with a sink gives a const struct sink_ops in its
 * module_ops (module.h); the core calls it on the loop thread, in the order
 * of the module table, for as long as the module runs (until its stop has
 * completed).
 */
#pragma once

#include "reading.h"

struct point;

enum sink_flags {
	/* Every reading a driver submits that passes the id check (rules, live tail). */
	SINK_ALL = 1,
	/*
	 * Only what passes the deadband, at the moment it is staged for
	 * storage: a durable message queued here commits with the reading
	 * (store_stage_begin, store.h). What is stored is what is published.
	 */
	SINK_STORED = 2,
};

struct sink_ops {
	unsigned flags; /* SINK_ALL or SINK_STORED */
	/*
	 * One reading. The hot path: called per reading per sink, so it must be
	 * cheap (format and queue, or evaluate what watches this point). A text
	 * reading reaches the sinks only when its text or quality changed: text
	 * has no deadband, and a repeat says nothing new.
	 */
	void (*on_reading)(void *m, const struct point *p, const struct reading *r);
	/* Optional: once per submit, after its last reading (timers to rearm). */
	void (*on_submit_end)(void *m);
	/*
	 * Optional: a driver said DEVICE (NULL: the whole instance) went
	 * M2M_DEVICE_ONLINE or M2M_DEVICE_OFFLINE, with REASON when offline.
	 * Called on a change only.
	 */
	void (*on_device_state)(void *m, const char *driver, const char *device, int state,
	                        const char *reason);
	/* Optional: a reload changed the declared points; the registry holds the new set. */
	void (*on_points_changed)(void *m);
};
