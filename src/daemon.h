/* SPDX-License-Identifier: MIT */
/*
 * The daemon: the loop, its configuration, the registry, storage and the
 * driver instances. Everything here is owned by the loop thread.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "loop-lag.h"
#include "plugin-loader.h"
#include "point.h"
#include "ctl-server.h"
#include "mqtt.h"
#include "rules.h"
#include "store.h"

struct m2m_host;

/* A loaded configuration, shared by the driver instances created from it. */
struct config_ref {
	config *c;
	unsigned refs;
};

struct driver_conf {
	char *name;                /* the key under [drivers] */
	char *plugin;
	const cJSON *section;      /* inside the config_ref's tree */
	const char *plugin_dir;    /* the settings' plugin_dir */
	int64_t restart_min_us;    /* backoff after a failed start */
	int64_t restart_max_us;
};

/* The core settings parsed from [gateway] and [storage]. */
struct settings {
	char *gateway_id;
	char *plugin_dir;
	int log_level;             /* -1: not set in the file */
	int64_t stats_interval_us; /* 0: no periodic stats line */
	struct store_opts store;
	char *store_path;          /* owns store.path */
	struct driver_conf *drivers;
	size_t n_drivers;
};

struct daemon {
	uv_loop_t *loop;
	char *config_path;
	const char *confd_dir;     /* NULL: next to config_path */
	struct config_ref *cfg;    /* the running configuration */
	struct settings settings;
	struct plugin_set plugins;
	registry *reg;
	store *store;              /* NULL in --check mode */
	bool check_only;

	struct m2m_host *drivers;  /* running instances, a list */
	struct m2m_host *retired;   /* stopping instances not yet destroyed */
	struct m2m_host *pending;   /* created by a reload, started when the old ones are gone */

	uv_signal_t sig_term, sig_int, sig_hup;
	uv_timer_t stats_timer, watchdog_timer, shutdown_timer;
	struct loop_lag lag;
	rules *rules;              /* NULL when the config has no rules */
	mqtt *mqtt;                /* NULL when the config has no [mqtt] */
	ctl_server *ctl;           /* the control socket */
	uv_timer_t rules_timer;    /* fires at rules_next_deadline() */
	int64_t rules_timer_due;   /* monotonic µs the timer is set for, or INT64_MAX */
	bool stopping;
	/* Drivers running / configured when the stop began, for the final stats line. */
	unsigned stop_running, stop_total;
	bool reload_busy;          /* old instances of a reload are still stopping */
	bool reload_again;         /* a SIGHUP came during a reload */
	unsigned retiring;         /* instances being stopped */
	int log_level_override;    /* from the command line, or -1 */
	int exit_code;
	int lock_fds[2];           /* pidlock of the database and of the socket, or -1 */

	int64_t started_us;        /* monotonic */
	uint64_t readings_in;      /* readings submitted by drivers */
	uint64_t readings_stored;  /* passed the deadband and queued */
	uint64_t readings_rejected;/* unknown or foreign point ids */
	uint64_t writes_ok, writes_failed, writes_refused;
	uint64_t reloads, reloads_failed;

	/*
	 * Rates shown by status, sampled when status is asked for and at least
	 * RATE_MIN_WINDOW after the previous sample: over the time between two
	 * status requests, so no timer runs for them when nobody looks.
	 */
	struct {
		int64_t t_us;          /* monotonic time of the last sample */
		uint64_t readings_in, rows_written;
		double readings_per_s, rows_per_s, window_s;
	} rate;

	/* Scratch buffer for one submit() call's readings on their way to storage. */
	struct m2m_reading *batch;
	size_t batch_cap;
};

/*
 * Parses [gateway], [storage] and [drivers] of C into S (not the driver
 * sections' contents, which belong to the plugins). Returns 0 or -EINVAL
 * with the error recorded in C.
 */
int settings_parse(config *c, const char *config_path, struct settings *s);
void settings_done(struct settings *s);

struct config_ref *config_ref_new(config *c);
struct config_ref *config_ref_get(struct config_ref *r);
void config_ref_put(struct config_ref *r);

/*
 * Loads the config at PATH, validates everything (including loading each
 * plugin and letting it parse its section into a throw-away registry) and
 * returns it. On failure returns a negative errno and one line in *ret_error.
 */
int daemon_check(const char *path, const char *confd_dir, char **ret_error);

/* Runs the daemon until SIGTERM/SIGINT; returns the process exit code. */
int daemon_run(const char *path, const char *confd_dir, int log_level_override);

/* A write request as the core makes it (rules, MQTT commands, m2mctl). */
typedef void (*daemon_write_cb)(int status, const char *error_text, void *arg);

/*
 * Writes VALUE (engineering units) to the point NAME: refused unless the
 * point is writable, the value within its limits (and 0/1 for a bool) and
 * its driver running. CB runs exactly once with the result, on the loop
 * thread, possibly before this returns. A refusal is returned at once
 * (negative errno, CB not called). ORIGIN says who asked ("mqtt",
 * "rule:boiler_high", "ctl:uid=1000"); every write and every refusal is an
 * event row with it.
 */
int daemon_write(struct daemon *d, const char *origin, const char *name, double value,
                 daemon_write_cb cb, void *arg);

/*
 * Why daemon_write refused VALUE for NAME with ERR, in words ("unknown point
 * 'x/y'", "value 500 is above max 90 of 'boiler1/setpoint'"), into BUF.
 */
const char *daemon_write_refusal(struct daemon *d, const char *name, double value, int err,
                                 char *buf, size_t n);

/* Starts a reload as SIGHUP does. Loop thread. */
void daemon_reload(struct daemon *d);

/* Keeps the rules timer at the engine's next deadline. Loop thread. */
void daemon_rules_schedule(struct daemon *d);

/* Writes one JSON object of the daemon's state (for status and the stats line). */
struct cJSON *daemon_status_json(struct daemon *d);
