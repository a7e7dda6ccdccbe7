/* SPDX-License-Identifier: MIT */
/*
 * Driver instances: one per configured driver. The m2m_host handle a plugin
 * gets is its instance: struct m2m_host below. Loop thread only.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "daemon.h"
#include "submit-queue.h"

enum driver_state {
	DRIVER_CREATED,  /* parsed, not started */
	DRIVER_RUNNING,
	DRIVER_FAILED,   /* start failed; a retry is scheduled */
	DRIVER_STOPPING, /* stopped; waiting for its buses to drain */
};

struct declared_point {
	uint32_t id;
	struct point_attrs attrs;
};

struct driver_stat {
	char name[64];  /* "name" or "name.device" */
	double value;
	int kind;       /* enum m2m_stat_kind; 1.0 statistics are gauges */
};

/* What a driver said of a device with device_state (ABI 1.1). */
struct device_status {
	char *name;        /* NULL: the whole instance */
	int state;         /* enum m2m_device_state */
	char reason[128];  /* why it is offline; "" when online */
	int64_t since_us;  /* when it entered the state */
};

struct m2m_host {
	struct daemon *d;
	registry *reg;              /* the daemon's, or a scratch one when validating */
	bool validating;            /* created only to check the config */
	struct m2m_host *next;
	char *name;
	struct plugin *plugin;
	struct config_ref *cfg;
	const cJSON *section;
	int64_t restart_min_us, restart_max_us;
	void *impl;                 /* what the plugin's create() returned */

	enum driver_state state;
	bool creating;              /* inside create(): config and declare allowed */
	char last_error[256];
	int64_t backoff_us;
	unsigned starts, failures;
	uv_timer_t retry_timer;
	bool retry_timer_open;

	struct declared_point *points;
	size_t n_points;

	/* Resources the plugin holds, so that stop can always reclaim them. */
	struct m2m_timer *timers;
	struct m2m_io *ios;
	struct host_bus *buses;
	unsigned buses_closing;
	struct m2m_write *writes;   /* in flight */
	struct submit_queue submits; /* readings waiting to reach the core in chunks */

	struct driver_stat *stats;
	size_t n_stats;
	struct m2m_stat *declared_stats; /* handles of stat_declare, into stats */
	struct device_status *devices;
	size_t n_devices;
	uint64_t readings;
	/* For the readings/s of status: the count at the last rate sample, and the rate then. */
	uint64_t rate_readings;
	double readings_per_s;

	void (*on_destroyed)(struct m2m_host *drv, void *arg);
	void *on_destroyed_arg;
};

/*
 * Creates an instance for CONF: loads the plugin and lets it parse its
 * section (declaring points into the daemon's registry). No I/O. On
 * failure the error is recorded in the config (config_last_error) or, for
 * a plugin that cannot be loaded, in *ret_error.
 */
int driver_create(struct daemon *d, registry *reg, bool validating, struct config_ref *cfg,
                  const struct driver_conf *conf, struct m2m_host **ret, char **ret_error);

/* Takes ownership of its points and starts I/O; a failure schedules a retry. */
void driver_start(struct m2m_host *drv);

/*
 * Stops I/O and destroys the instance once every bus has drained; then
 * calls ON_DESTROYED(drv, arg) just before freeing it.
 */
void driver_stop(struct m2m_host *drv, void (*on_destroyed)(struct m2m_host *, void *),
                 void *arg);

/* Frees an instance that was created and never started. */
void driver_discard(struct m2m_host *drv);

const char *driver_state_name(enum driver_state s);

/* Routes a write to the instance; the result arrives through CB. */
int driver_write(struct m2m_host *drv, const char *origin, struct point *p, double value,
                 daemon_write_cb cb, void *arg);
