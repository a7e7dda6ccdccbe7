/* SPDX-License-Identifier: MIT */
/*
 * Modules: the north-side and control subsystems (MQTT, rules, the control
 * socket, later Sparkplug, Home Assistant, HTTP) behind one interface.
 * Each module is one file that defines a const struct module_ops and is
 * listed once in the table of modules.c; the daemon parses, starts,
 * reloads, stops and shows them by looping over that table. A module sees
 * the core only through core.h. Loop thread only.
 */
#pragma once

#include <stdbool.h>

#include <cJSON.h>

#include "core.h"

typedef struct config config;

/* What a module's section is parsed against. */
struct module_parse_env {
	const char *config_path; /* relative paths of the section are relative to its directory */
	const char *gateway_id;  /* the [gateway].id of this config */
	/* Every point the config's drivers declare, with attributes (MODULE_AFTER_DRIVERS only). */
	registry *points;
};

enum module_flags {
	/* Parsed after the drivers' sections, against the points they declare. */
	MODULE_AFTER_DRIVERS = 1,
	/* Read at start only: a reload leaves the running module alone (its settings need a restart). */
	MODULE_START_ONLY = 2,
};

/* What reconfigure returns when the daemon should stop the module (its section went away). */
#define MODULE_STOP 1

struct module_ops {
	const char *name;       /* "mqtt": in logs */
	unsigned flags;         /* enum module_flags */
	/*
	 * Parses the module's part of ROOT into *RET_CONF: NULL when the config
	 * has none, and then the module does not run. Reads every key with the
	 * config getters, so unknown keys are errors. Returns 0 or -EINVAL with
	 * the error recorded in C. Nothing runs.
	 */
	int (*conf_parse)(config *c, const cJSON *root, const struct module_parse_env *env,
	                  void **ret_conf);
	void (*conf_free)(void *conf);
	/* Optional: a path (a socket) the module needs alone; the daemon locks it before start. */
	const char *(*lock_path)(const void *conf);
	/*
	 * Starts the module with CONF (taken over, also on failure). A failure
	 * is logged by the module, and the gateway runs on without it.
	 */
	int (*start)(struct core *c, void *conf, void **ret);
	/*
	 * Applies a reloaded CONF (taken over; NULL when the section went away).
	 * The module keeps what did not change. Returns 0, MODULE_STOP to be
	 * stopped, or a negative errno (logged by the module; it runs on).
	 */
	int (*reconfigure)(void *m, void *conf);
	/*
	 * Winds down (at shutdown, or after MODULE_STOP): the module may still
	 * see readings until DONE(arg) runs, on the loop thread, possibly before
	 * this returns. Then the daemon frees it: at once after MODULE_STOP, after
	 * the loop at shutdown (write completions may still reach it until then).
	 */
	void (*stop)(void *m, void (*done)(void *arg), void *arg);
	void (*free)(void *m);
	const struct sink_ops *sink; /* optional */
	/*
	 * Optional: its block of the status object under STATUS_KEY. Called
	 * with M NULL when the module does not run; may return NULL for no
	 * block.
	 */
	const char *status_key;
	cJSON *(*status_json)(void *m);
};

/* The module table (modules.c), in the order modules start, reload and see readings. */
const struct module_ops *const *modules_table(size_t *ret_n);
