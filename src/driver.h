/* SPDX-License-Identifier: MIT */
/*
 * Driver instances: one per configured driver. The m2m_host handle a plugin
 * gets is its instance: struct m2m_host below. Loop thread only.
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "core.h"
#include "settings.h"
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

/*
 * One statistic of the instance, as status and a metrics registry export
 * it. A 1.0 stat() knows only its name; stat_declare (ABI 1.1) also gives
 * the kind, the device label and a help text.
 */
struct driver_stat {
	char name[64];  /* as status shows it: "name" or "name.device" */
	char base[64];  /* the statistic without its device ("polls"); for 1.0, the name */
	char *device;   /* the device label; NULL: the whole instance, or not known (1.0) */
	char *help;     /* one line; NULL for a 1.0 statistic */
	double value;
	int kind;       /* enum m2m_stat_kind; 1.0 statistics are gauges */
	/* The handle its metrics series reads through and is owned by; NULL: not registered. */
	struct m2m_stat *metric;
};

/* What a driver said of a device with device_state (ABI 1.1). */
struct device_status {
	char *name;        /* NULL: the whole instance */
	int state;         /* enum m2m_device_state */
	char reason[128];  /* why it is offline; "" when online */
	int64_t since_us;  /* wall clock, when it entered the state */
};

struct m2m_host {
	struct core *core;
	registry *reg;              /* the core's, or a scratch one when validating */
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
	/*
	 * The last error the driver logged, shown by status. A plugin may log
	 * from any thread (its bus threads), so last_error is written and read
	 * only under last_error_lock, through host_set_last_error() and
	 * host_last_error(); host_state_init() makes the lock.
	 */
	pthread_mutex_t last_error_lock;
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
	struct device_status *devices;   /* in the order the driver first reported them */
	size_t n_devices;
	uint64_t readings;
	bool metrics_on;            /* its series are in the core's registry (host_metrics_add) */
	/* For the readings/s of status: the count at the last rate sample, and the rate then. */
	uint64_t rate_readings;
	double readings_per_s;

	void (*on_destroyed)(struct m2m_host *drv, void *arg);
	void *on_destroyed_arg;
};

/*
 * Creates an instance for CONF: loads the plugin and lets it parse its
 * section (declaring points into REG: the core's, or a scratch one). No I/O. On
 * failure the error is recorded in the config (config_last_error) or, for
 * a plugin that cannot be loaded, in *ret_error.
 */
int driver_create(struct core *core, registry *reg, bool validating, struct config_ref *cfg,
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

