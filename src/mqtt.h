/* SPDX-License-Identifier: MIT */
/*
 * North side: MQTT through libmosquitto in non-threaded mode, driven by the
 * loop (an fd watch on mosquitto_socket(), mosquitto_loop_read/write/misc,
 * a timer for keepalive and reconnect backoff). QoS 1 messages go through
 * the durable SQLite outbox (written before publishing, deleted on PUBACK).
 * Loop thread only.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include <cJSON.h>

#include "metrics.h"

#include "m2m/plugin.h"
#include "write.h"

typedef struct config config;
typedef struct registry registry;
typedef struct store store;
struct point;
struct store_event;

/* The parsed [mqtt] table of one config; immutable once parsed. */
typedef struct mqtt_conf mqtt_conf;

/*
 * Parses the top-level [mqtt] table of ROOT (absent: *ret = NULL). Reads
 * every key with the config getters (so unknown keys are errors) and
 * checks what can be checked without the network: URL, files readable
 * (password_file, TLS files), templates. GATEWAY_ID fills defaults.
 */
int mqtt_conf_parse(config *c, const cJSON *root, const char *gateway_id, mqtt_conf **ret);
void mqtt_conf_free(mqtt_conf *mc);
/* True when a reload needs no reconnect (same connection settings). */
bool mqtt_conf_same_connection(const mqtt_conf *a, const mqtt_conf *b);

struct mqtt_env {
	void *ctx;
	uv_loop_t *loop;
	store *store;
	registry *reg;
	const char *gateway_id;
	const char *version;
	/* Names of the running drivers, for the birth message (a JSON array). */
	cJSON *(*drivers_json)(void *ctx);
	/* The command topic's writes go through the core's checks (core_write). */
	int (*write)(void *ctx, const char *origin, const char *point, double value, write_cb cb,
	             void *arg);
	/* Records an event row (connection changes, drops, command results). */
	void (*event)(void *ctx, const struct store_event *e);
};

typedef struct mqtt mqtt;

/* Creates the client for CONF (taken over) and starts connecting, asynchronously. */
int mqtt_new(const struct mqtt_env *env, mqtt_conf *conf, mqtt **ret);

/* Applies a reloaded [mqtt] table (taken over); reconnects only when needed. */
int mqtt_reconfigure(mqtt *m, mqtt_conf *conf);

/*
 * Telemetry: called for every reading that passed the deadband (what is
 * stored is what is published), numbers and text alike (TEXT non-NULL for
 * a string point). STORED is false for a reading the storage queue had no
 * room for: it is published only at QoS 0 with unstored = "publish". For
 * a stored reading, call it between store_stage_begin() and the store put
 * of the same reading, so that its durable message commits with it.
 * Cheap: formats and queues or batches.
 */
void mqtt_on_reading(mqtt *m, const struct point *p, const struct m2m_reading *r, const char *text,
                     bool stored);

/* Publishes one message (rule actions). QoS 1 goes through the outbox. */
int mqtt_publish(mqtt *m, const char *topic, const char *payload, int qos, bool retain);

/*
 * Clean shutdown: publishes the retained "offline" status, flushes what it
 * can within a bound and disconnects; ON_STOPPED(arg) runs on the loop
 * thread when every handle is closed. Messages still in the outbox stay
 * there for the next start.
 */
void mqtt_stop(mqtt *m, void (*on_stopped)(void *arg), void *arg);
void mqtt_free(mqtt *m);

/*
 * Registers the client's counters and gauges (and its broker as an info)
 * in REG under OWNER, who removes them before the client is freed or its
 * connection settings change.
 */
int mqtt_metrics_add(mqtt *m, metrics *reg, const void *owner);

/* State, URL, last error...: the words of status; the figures come from the registry. */
cJSON *mqtt_status_json(const mqtt *m);

/* The running [mqtt] topic_prefix ("m2m"), for {prefix} in rule templates. Loop thread. */
const char *mqtt_topic_prefix(const mqtt *m);
