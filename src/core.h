/* SPDX-License-Identifier: MIT */
/*
 * The core: what every subsystem around it shares (the loop, the point
 * registry, storage, the gateway id, the counters and the sinks of the
 * running modules), and the narrow API that modules use. The daemon owns
 * one struct core and fills it; drivers reach it through their instance,
 * modules through the functions below. Loop thread only.
 *
 * The fields are the core's own (core.c, ingest.c, write.c, driver.c,
 * host-api.c) and the daemon's, which fills them; a module uses the
 * functions, so that the core can change without touching them.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include <cJSON.h>

#include "metrics.h"
#include "plugin-loader.h"
#include "point.h"
#include "sink.h"
#include "store.h"
#include "write.h"

struct m2m_host;

/* The most modules that may run at once (module.h); a build-time bound. */
#define CORE_SINKS_MAX 16

struct core_sink {
	const struct sink_ops *ops;
	void *m;
};

/* What the MQTT module offers others (rule actions); NULL functions when none runs. */
struct core_publisher {
	int (*publish)(void *m, const char *topic, const char *payload, int qos, bool retain);
	const char *(*topic_prefix)(void *m);
	void *m;
};

/* What the rules module offers others (the control socket's rules and ack). */
struct core_alarms {
	cJSON *(*status)(void *m, bool all);
	int (*ack)(void *m, const char *rule, const char *point);
	void *m;
};

struct core {
	uv_loop_t *loop;            /* NULL when only validating (--check) */
	registry *reg;
	store *store;               /* NULL in --check mode */
	const char *gateway_id;     /* the running [gateway].id */
	const char *db_path;        /* storage.path of the open database */
	struct plugin_set plugins;
	struct m2m_host *drivers;   /* running instances, a list */
	bool starting;              /* the daemon is starting, not reloading */
	bool stopping;

	uint64_t readings_in;       /* readings submitted by drivers */
	uint64_t readings_stored;   /* passed the deadband and queued */
	uint64_t readings_rejected; /* unknown or foreign point ids */
	uint64_t writes_ok, writes_failed, writes_refused;

	/* The sinks of the running modules in table order, split for the hot path. */
	struct core_sink sinks[CORE_SINKS_MAX];   /* all of them */
	struct core_sink stored[CORE_SINKS_MAX];  /* SINK_STORED */
	struct core_sink all[CORE_SINKS_MAX];     /* SINK_ALL */
	size_t n_sinks, n_stored, n_all;

	/*
	 * The one metrics registry: every subsystem registers its counters here
	 * once, where it starts, under itself as owner, and removes them when it
	 * stops; status, the stats line and the exposition render it. NULL when
	 * only validating.
	 */
	metrics *metrics;

	struct core_publisher publisher;
	struct core_alarms alarms;

	/* The daemon's side, for the control socket: the status object and a reload. */
	cJSON *(*status_json)(struct core *c);
	void (*reload)(struct core *c);

	/* Scratch buffer for one submit() call's readings on their way to storage. */
	struct m2m_reading *batch;
	size_t batch_cap;
};

static inline uv_loop_t *core_loop(struct core *c) {
	return c->loop;
}
static inline registry *core_registry(struct core *c) {
	return c->reg;
}
static inline store *core_store(struct core *c) {
	return c->store;
}
static inline const char *core_gateway_id(const struct core *c) {
	return c->gateway_id ? c->gateway_id : "";
}
static inline const char *core_db_path(const struct core *c) {
	return c->db_path;
}
/* The metrics registry (metrics.h), NULL in --check mode. */
static inline metrics *core_metrics(struct core *c) {
	return c->metrics;
}
/* True while the daemon starts (not on a reload): a module restores saved state then. */
static inline bool core_starting(const struct core *c) {
	return c->starting;
}

/* Records an event row (storage may be absent: then nothing). */
void core_event(struct core *c, const struct store_event *e);

/*
 * core_write and core_event with the core as a void *CTX: what the engines'
 * env structs take (rules_env, mqtt_env, ctl_env), so that every module
 * hands them the same two functions.
 */
int core_write_ctx(void *ctx, const char *origin, const char *name, double value, write_cb cb,
                   void *arg);
void core_event_ctx(void *ctx, const struct store_event *e);

/* Names of the running drivers, a JSON array (MQTT's birth message); caller frees. */
cJSON *core_drivers_json(struct core *c);

/* One point with its latest value; caller frees. */
cJSON *core_point_json(struct core *c, const struct point *p);
/* The declared points, optionally of one DEVICE only, an array; caller frees. */
cJSON *core_points_json(struct core *c, const char *device);

/* Publishes through the MQTT module; -ENOTCONN when none runs. */
int core_publish(struct core *c, const char *topic, const char *payload, int qos, bool retain);
/* [mqtt] topic_prefix, "" without MQTT. */
const char *core_topic_prefix(struct core *c);

/*
 * metrics_add_list() into the core's registry: the one call a module needs
 * to show its counters in status and the exposition; it removes them with
 * metrics_remove_owner(core_metrics(c), OWNER) when it stops. Does nothing
 * without a registry (--check).
 */
int core_metrics_add(struct core *c, const void *owner, const struct metric_entry *list, size_t n);

/* Replaces the sinks (the daemon calls it when a module starts or is gone). */
void core_set_sinks(struct core *c, const struct core_sink *sinks, size_t n);

/* Tells the sinks that DEVICE of DRIVER changed state (host-api.c, device_state). */
void core_device_state(struct core *c, const char *driver, const char *device, int state,
                       const char *reason);
/* Tells the sinks the declared point set changed (after a reload). */
void core_points_changed(struct core *c);
