/* SPDX-License-Identifier: MIT */
/*
 * Rules: threshold alarms evaluated on the loop thread on every reading,
 * indexed by point, with hysteresis, raise and clear delays, cooldown,
 * latching, stale detection and actions (MQTT publish, point write, log).
 *
 * The engine is independent of libuv and of the clock: the daemon feeds it
 * readings and the current monotonic/wall time, and runs one uv timer for
 * rules_next_deadline(). Tests drive it with a controllable clock.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <cJSON.h>

#include "m2m/plugin.h"
#include "write.h"

typedef struct config config;
typedef struct registry registry;
struct point;
struct store_event;

/* The parsed [[rules]] of one config; immutable once parsed. */
typedef struct rules_conf rules_conf;

/*
 * Parses the top-level [[rules]] array of ROOT. Point names and patterns
 * ("*\/temperature") are resolved against REG, which already holds every
 * point the config's drivers declare, with their attributes (unit,
 * writable, limits, kind), so that write actions to read-only points,
 * values outside limits, impossible bands and unknown template fields are
 * rejected here with the rule's name. Returns 0 (with *ret NULL when there
 * are no rules) or -EINVAL with the error in C (config_error).
 */
int rules_conf_parse(config *c, const cJSON *root, registry *reg, rules_conf **ret);
void rules_conf_free(rules_conf *rc);

/* What the engine needs from the daemon; all called on the loop thread. */
struct rules_env {
	void *ctx;
	registry *reg;
	/* Records an event row (rule transitions, action results). */
	void (*event)(void *ctx, const struct store_event *e);
	/*
	 * Writes VALUE to the point NAME through the core's checks; CB runs once
	 * with the result (or the function returns a negative errno at once).
	 */
	int (*write)(void *ctx, const char *origin, const char *point, double value, write_cb cb,
	             void *arg);
	/* Publishes to MQTT; NULL when MQTT is not configured. */
	int (*publish)(void *ctx, const char *topic, const char *payload, int qos, bool retain);
	/* The gateway id, for templates. */
	const char *gateway_id;
	/* [mqtt] topic_prefix for {prefix} in templates ("" without MQTT); may be NULL. */
	const char *(*topic_prefix)(void *ctx);
};

typedef struct rules rules;

/* Creates the engine for CONF (which it takes over). NOW_* are the clocks now. */
int rules_new(const struct rules_env *env, rules_conf *conf, int64_t now_mono_us, rules **ret);
void rules_free(rules *r);

/*
 * Restores alarm states (pending/active/latched, per rule and point) from
 * the events table of the database at DB_PATH, read-only, so that a restart
 * neither re-fires nor forgets an alarm. Called once, before readings flow.
 */
int rules_restore(rules *r, const char *db_path);

/*
 * Replaces the rule set on reload: rules whose definition did not change
 * keep their state; a changed rule keeps only its active or acked alarms
 * that still hold by its new definition (no clear, no second raise), and
 * the others end as a removed rule's do (transition to normal, on_clear
 * actions, deferred writes sent). The engine takes over CONF. CONF NULL
 * is the empty rule set (a reload that removed every rule): the engine
 * stays, with no rules, after ending every alarm as a removed rule's.
 * Loop thread.
 */
int rules_reconfigure(rules *r, rules_conf *conf, int64_t now_mono_us);

/*
 * The hot path: called for every normalized reading (before the deadband
 * decides what is stored). Costs only the rules that watch this point.
 */
void rules_on_reading(rules *r, const struct point *p, const struct m2m_reading *reading,
                      int64_t now_mono_us);

/* Runs delays, cooldowns and stale checks due by NOW. */
void rules_advance(rules *r, int64_t now_mono_us);
/* The monotonic time of the next due delay or stale check, or INT64_MAX. */
int64_t rules_next_deadline(const rules *r);

/* Acknowledges a latched alarm of RULE (all its points when POINT is NULL). */
int rules_ack(rules *r, const char *rule, const char *point);

/*
 * Rule states for status and m2mctl: an array of objects, one per rule and
 * matched point; only those that are not normal unless ALL.
 */
cJSON *rules_status_json(const rules *r, bool all);

/*
 * Replaces the wall clock the engine stamps events and {ts} with (by
 * default CLOCK_REALTIME), so tests control both clocks. Loop thread.
 */
void rules_set_wall_clock(rules *r, int64_t (*now_us)(void *ctx), void *ctx);

/*
 * Replaces the gateway id of {gateway} (copied). The engine copies the id
 * of the env at rules_new; a reload that changes [gateway].id calls this,
 * since rules_reconfigure keeps the env. Returns 0 or -ENOMEM.
 */
int rules_set_gateway_id(rules *r, const char *gateway_id);

/* Counters for status and the benchmark. */
struct rules_stats {
	size_t rules;        /* rules in the running set */
	size_t instances;    /* (rule, point) pairs */
	size_t active;       /* instances not normal */
	uint64_t evaluations;/* instance evaluations since start */
	uint64_t transitions;
	uint64_t actions_ok, actions_failed, writes_deferred;
};
void rules_get_stats(const rules *r, struct rules_stats *ret);
