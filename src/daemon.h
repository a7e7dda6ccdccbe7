/* SPDX-License-Identifier: MIT */
/*
 * The daemon: the loop, its configuration, the core (registry, storage,
 * driver instances) and the modules of modules.c. It starts, reloads and
 * stops the drivers and, by looping over the module table, the modules.
 * Everything here is owned by the loop thread.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "core.h"
#include "loop-lag.h"
#include "module.h"
#include "settings.h"

struct m2m_host;

/* One entry of the module table and its running instance. */
struct module_slot {
	const struct module_ops *ops;
	void *m;                   /* the running instance, or NULL */
	bool stopping;             /* stop called, its completion not yet */
	bool stopped;              /* stopped at shutdown, freed after the loop */
	struct daemon *d;
};

/*
 * What a loop lag series reads: the lag's or the turns' CPU (TURN), the
 * window's or the whole histogram, a quantile or (Q < 0) the max.
 */
struct lag_source {
	struct daemon *d;
	bool turn;
	bool total;
	double q;
};

struct daemon {
	struct core core;          /* loop, registry, storage, running drivers, counters, sinks */
	char *config_path;
	const char *confd_dir;     /* NULL: next to config_path */
	struct config_ref *cfg;    /* the running configuration */
	struct settings settings;
	bool check_only;

	struct m2m_host *retired;   /* stopping instances not yet destroyed */
	struct m2m_host *pending;   /* created by a reload, started when the old ones are gone */

	uv_signal_t sig_term, sig_int, sig_hup;
	uv_timer_t stats_timer, watchdog_timer, shutdown_timer;
	bool notify_failed; /* a notification failed and was logged */
	struct loop_lag lag;
	struct module_slot mods[CORE_SINKS_MAX]; /* the module table's entries, in its order */
	size_t n_mods;
	/* Drivers running / configured when the stop began, for the final stats line. */
	unsigned stop_running, stop_total;
	bool reload_busy;          /* old instances of a reload are still stopping */
	bool reload_again;         /* a SIGHUP came during a reload */
	unsigned retiring;         /* instances being stopped */
	int log_level_override;    /* from the command line, or -1 */
	int exit_code;
	int lock_fds[2];           /* pidlock of the database and of the socket, or -1 */

	struct lag_source lag_src[12]; /* p50, p99, max of the window, then of the whole; lag, then turns */
	struct store_stats ss;     /* the storage's counters at the last rendering */

	int64_t started_us;        /* monotonic */
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
};

/*
 * Loads the config at PATH, validates everything (including loading each
 * plugin and letting it parse its section into a throw-away registry) and
 * returns it. On failure returns a negative errno and one line in *ret_error.
 */
int daemon_check(const char *path, const char *confd_dir, char **ret_error);

/* Runs the daemon until SIGTERM/SIGINT; returns the process exit code. */
int daemon_run(const char *path, const char *confd_dir, int log_level_override);

/* Writes one JSON object of the daemon's state (for status and the stats line). */
struct cJSON *daemon_status_json(struct daemon *d);
