/* SPDX-License-Identifier: MIT */
#include "daemon.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "driver.h"
#include "error.h"
#include "host-api.h"
#include "log.h"
#include "m2m-build.h"
#include "notify.h"
#include "pidlock.h"
#include "util.h"

/* How long shutdown waits for drivers whose bus is stuck in a blocking call. */
#define SHUTDOWN_DRIVERS_TIMEOUT_MS 10000
#define SHUTDOWN_STORE_TIMEOUT_US (5 * 1000000LL)
/*
 * The longest the loop goes without a lag sample while it works (its own
 * timers give most samples; the probe fills in, up to 4x this while idle).
 */
#define LAG_INTERVAL_MS 50

/* --- lists of instances --- */

static void list_append(struct m2m_host **head, struct m2m_host *drv) {
	drv->next = NULL;
	while (*head)
		head = &(*head)->next;
	*head = drv;
}

static void list_remove(struct m2m_host **head, struct m2m_host *drv) {
	for (; *head; head = &(*head)->next)
		if (*head == drv) {
			*head = drv->next;
			drv->next = NULL;
			return;
		}
}

static void discard_all(struct m2m_host **head) {
	struct m2m_host *drv;

	while ((drv = *head)) {
		*head = drv->next;
		driver_discard(drv);
	}
}

/* --- validation, shared by --check, start and reload --- */

/* Everything a validated configuration consists of. */
struct loaded {
	struct config_ref *cfg;
	struct settings s;
	void *conf[CORE_SINKS_MAX]; /* each module's section, by table index; NULL: absent */
};

static void loaded_done(struct loaded *l) {
	size_t n;
	const struct module_ops *const *mods = modules_table(&n);

	for (size_t i = 0; i < n; i++)
		if (l->conf[i])
			mods[i]->conf_free(l->conf[i]);
	settings_done(&l->s);
	config_ref_put(l->cfg);
	memset(l, 0, sizeof(*l));
}

/* Parses the sections of the modules whose MODULE_AFTER_DRIVERS flag is AFTER. */
static int parse_modules(config *c, const struct module_parse_env *env, bool after,
                         struct loaded *l) {
	size_t n;
	const struct module_ops *const *mods = modules_table(&n);

	for (size_t i = 0; i < n; i++) {
		int err;
		if (!!(mods[i]->flags & MODULE_AFTER_DRIVERS) != after)
			continue;
		err = mods[i]->conf_parse(c, config_root(c), env, &l->conf[i]);
		if (err < 0)
			return err;
	}
	return 0;
}

/*
 * Loads the config and checks all of it: the core's keys, the modules'
 * sections, then every driver's section by creating a throw-away instance
 * of its plugin into a scratch registry, then the modules that need them
 * (the rules) against the points the drivers declared, then unknown keys
 * anywhere. Nothing runs.
 */
static int load_validated(struct daemon *d, struct loaded *ret, char **ret_error) {
	struct loaded l = { 0 };
	struct m2m_host *created = NULL;
	struct module_parse_env env = { .config_path = d->config_path };
	registry *scratch = NULL;
	config *c = NULL;
	int err;

	*ret_error = NULL;
	err = config_load(d->config_path, d->confd_dir, &c, ret_error);
	if (err < 0)
		return err;
	l.cfg = config_ref_new(c);
	if (!l.cfg) {
		config_free(c);
		return -ENOMEM;
	}
	err = settings_parse(c, d->config_path, &l.s);
	if (err < 0)
		goto fail;
	env.gateway_id = l.s.gateway_id;
	err = parse_modules(c, &env, false, &l);
	if (err < 0)
		goto fail;
	err = registry_new(&scratch);
	if (err < 0)
		goto fail;
	/* All instances live until the end, so a point's owner can be named in a clash. */
	for (size_t i = 0; i < l.s.n_drivers; i++) {
		struct m2m_host *drv;
		err = driver_create(&d->core, scratch, true, l.cfg, &l.s.drivers[i], &drv, ret_error);
		if (err < 0)
			goto fail;
		list_append(&created, drv);
	}
	/* Rules are checked against the points (and attributes) the drivers just declared. */
	env.points = scratch;
	err = parse_modules(c, &env, true, &l);
	if (err < 0)
		goto fail;
	err = config_check_unknown(c, config_root(c));
	if (err < 0)
		goto fail;
	/* Checked: what only the check needed goes, for as long as this configuration runs. */
	config_settle(c);
	discard_all(&created);
	registry_free(scratch);
	*ret = l;
	return 0;

fail:
	if (!*ret_error)
		*ret_error = strdup(config_last_error(c) ? config_last_error(c) : m2m_strerror(err));
	discard_all(&created);
	registry_free(scratch);
	loaded_done(&l);
	return err < 0 ? err : -EINVAL;
}

int daemon_check(const char *path, const char *confd_dir, char **ret_error) {
	struct daemon d = { .config_path = (char *)path, .confd_dir = confd_dir };
	struct loaded l;
	int err;

	err = load_validated(&d, &l, ret_error);
	if (err < 0)
		return err;
	loaded_done(&l);
	return 0;
}

/* --- status --- */

static double ms(int64_t us) {
	return (double)us / 1000.0;
}

/* Rates over at least this long, so that two quick status requests do not show noise. */
#define RATE_MIN_WINDOW_US (2 * 1000000LL)

static double per_s(uint64_t now, uint64_t then, double window_s) {
	/* A reload replaces a driver and its counter starts again from zero. */
	return now >= then && window_s > 0 ? (double)(now - then) / window_s : 0.0;
}

/* Updates the status rates when the last sample is old enough; bounded by the number of drivers. */
static void sample_rates(struct daemon *d, const struct store_stats *ss) {
	int64_t now = mono_us(), since = d->rate.t_us ? d->rate.t_us : d->started_us;
	double w = (double)(now - since) / 1e6;

	if (now - since < RATE_MIN_WINDOW_US && d->rate.t_us)
		return;
	d->rate.readings_per_s = per_s(d->core.readings_in, d->rate.readings_in, w);
	d->rate.rows_per_s = per_s(ss->rows_written, d->rate.rows_written, w);
	d->rate.window_s = w;
	d->rate.readings_in = d->core.readings_in;
	d->rate.rows_written = ss->rows_written;
	d->rate.t_us = now;
	for (struct m2m_host *drv = d->core.drivers; drv; drv = drv->next) {
		drv->readings_per_s = per_s(drv->readings, drv->rate_readings, w);
		drv->rate_readings = drv->readings;
	}
}

/* --- metrics --- */

static double lag_value(void *arg) {
	const struct lag_source *ls = arg;
	const struct loop_lag *l = &ls->d->lag;
	const struct lag_histogram *h = ls->turn ? (ls->total ? &l->turn_total : &l->turn_window)
	                                         : (ls->total ? &l->total : &l->window);

	return ms(ls->q < 0 ? h->max_us : lag_histogram_quantile(h, ls->q));
}

static double uptime_s(void *arg) {
	const struct daemon *d = arg;

	return (double)(mono_us() - d->started_us) / 1e6;
}

/* Drivers configured and running; at stop, those of when the stop began (the final line). */
static uint64_t drivers_count(struct daemon *d, bool running) {
	uint64_t n = 0;

	if (d->core.stopping)
		return running ? d->stop_running : d->stop_total;
	for (struct m2m_host *drv = d->core.drivers; drv; drv = drv->next)
		n += !running || drv->state == DRIVER_RUNNING;
	return n;
}

static uint64_t drivers_total(void *arg) {
	return drivers_count(arg, false);
}

static uint64_t drivers_running(void *arg) {
	return drivers_count(arg, true);
}

/* One snapshot of the storage thread's counters per rendering, so that they belong together. */
static void refresh_store(void *arg) {
	struct daemon *d = arg;

	if (d->core.store)
		store_get_stats(d->core.store, &d->ss);
}

static double store_failing(void *arg) {
	const struct daemon *d = arg;

	return d->ss.failing ? 1 : 0;
}

#define COUNTER(n, h, j) { .name = n, .help = h, .type = METRIC_COUNTER, .json = j }
#define GAUGE(n, h, j) { .name = n, .help = h, .type = METRIC_GAUGE, .json = j }

/* The daemon's own figures and the storage's, for as long as the daemon runs. */
static int register_metrics(struct daemon *d) {
	static const char lag_window_help[] = "Loop lag since the last stats line.",
	                  lag_total_help[] = "Loop lag since m2md started.",
	                  turn_window_help[] = "CPU time of a loop turn, since the last stats line.",
	                  turn_total_help[] = "CPU time of a loop turn, since m2md started.";
	static const struct { const char *name, *help, *json; } series[] = {
		{ "m2md_loop_lag_window_milliseconds", lag_window_help, "loop_lag_ms/{stat}" },
		{ "m2md_loop_lag_milliseconds", lag_total_help, "loop_lag_ms/{stat}_total" },
		{ "m2md_loop_turn_cpu_window_milliseconds", turn_window_help, "loop_turn_cpu_ms/{stat}" },
		{ "m2md_loop_turn_cpu_milliseconds", turn_total_help, "loop_turn_cpu_ms/{stat}_total" },
	};
	static const struct { const char *label; double q; } lag[] = {
		{ "p50", 0.5 }, { "p99", 0.99 }, { "max", -1 },
	};
	const struct store_stats *ss = &d->ss;
	struct metric_entry list[] = {
		{ .desc = GAUGE("m2md_uptime_seconds", "Seconds since m2md started.", "uptime_s"),
		  .src = { .get_f64 = uptime_s, .arg = d } },
		{ .desc = COUNTER("m2md_readings_received", "Readings submitted by drivers.", "readings_in"),
		  .src = { .u64 = &d->core.readings_in } },
		{ .desc = COUNTER("m2md_readings_stored",
		          "Readings that passed the deadband and were queued for storage.",
		          "readings_stored"),
		  .src = { .u64 = &d->core.readings_stored } },
		{ .desc = COUNTER("m2md_readings_rejected",
		          "Readings for a point id that is unknown or belongs to another driver.",
		          "readings_rejected"),
		  .src = { .u64 = &d->core.readings_rejected } },
#define WRITES(r) \
		{ { .name = "m2md_writes", .help = "Writes to points by their result.", \
		    .type = METRIC_COUNTER, .labels = "result", .json = "writes_{result}" }, \
		  .src = { .u64 = &d->core.writes_##r }, #r }
		WRITES(ok), WRITES(failed), WRITES(refused),
#undef WRITES
		{ .desc = COUNTER("m2md_reloads", "Configuration reloads that took effect.", "reloads"),
		  .src = { .u64 = &d->reloads } },
		{ .desc = COUNTER("m2md_reloads_failed",
		          "Configuration reloads refused; the running configuration stayed.",
		          "reloads_failed"),
		  .src = { .u64 = &d->reloads_failed } },
		{ .desc = GAUGE("m2md_drivers", "Driver instances configured.", NULL),
		  .src = { .get_u64 = drivers_total, .arg = d } },
		{ .desc = GAUGE("m2md_drivers_running", "Driver instances running.", NULL),
		  .src = { .get_u64 = drivers_running, .arg = d } },
#define STORE(kind, n, h, f) \
		{ .desc = kind("m2md_storage_" n, h, "storage/" #f), .src = { .u64 = &ss->f } }
		STORE(COUNTER, "rows_written", "Readings committed to the database.", rows_written),
		STORE(COUNTER, "rows_dropped", "Readings dropped because the storage queue was full.",
		      rows_dropped),
		STORE(COUNTER, "events_written", "Events committed to the database.", events_written),
		STORE(COUNTER, "events_dropped", "Events dropped because the storage queue was full.",
		      events_dropped),
		STORE(COUNTER, "commits", "Transactions committed.", commits),
		STORE(COUNTER, "errors", "Commits that failed (disk full, I/O error, busy).", errors),
		STORE(COUNTER, "retention_deleted", "Readings deleted by retention.", retention_deleted),
		STORE(GAUGE, "queued", "Readings waiting for the storage thread.", queued),
		STORE(GAUGE, "database_bytes", "Size of the database file at the last check.",
		      db_bytes),
		STORE(COUNTER, "reopens",
		      "Database connections opened again after a file system failure.", reopens),
		STORE(COUNTER, "rows_lost",
		      "Committed readings found missing when the database was reopened.", rows_lost),
#undef STORE
		{ .desc = GAUGE("m2md_storage_failing", "1 while the last commit failed, else 0.", NULL),
		  .src = { .get_f64 = store_failing, .arg = d } },
	};
	int err = metrics_add_refresh(d->core.metrics, d, refresh_store, d);

	if (err >= 0)
		err = core_metrics_add(&d->core, d, list, ELEMENTSOF(list));
	for (size_t i = 0; err >= 0 && i < ELEMENTSOF(series) * ELEMENTSOF(lag); i++) {
		size_t k = i / ELEMENTSOF(lag);
		/* The status keys of earlier releases: "p99" in the window, "p99_total" since start. */
		struct metric_entry m = {
			{ .name = series[k].name, .help = series[k].help, .type = METRIC_GAUGE,
			  .labels = "stat", .json = series[k].json },
			{ .get_f64 = lag_value, .arg = &d->lag_src[i] },
			lag[i % ELEMENTSOF(lag)].label,
		};
		d->lag_src[i] = (struct lag_source){ .d = d, .turn = k >= 2, .total = k % 2 == 1,
		                                     .q = lag[i % ELEMENTSOF(lag)].q };
		err = core_metrics_add(&d->core, d, &m, 1);
	}
	return err;
}

/* The version and the gateway id, again after a reload (the id may change). */
static int register_info(struct daemon *d) {
	const char *values[] = { M2M_VERSION, d->settings.gateway_id ? d->settings.gateway_id : "" };
	static const struct metric_desc desc = {
		.name = "m2md", .help = "The m2md version and the gateway id.", .type = METRIC_INFO,
		.labels = "version,gateway", .json = "",
	};
	metric_family *f;
	int err = metrics_family(d->core.metrics, &desc, &f);

	metrics_remove_owner(d->core.metrics, &d->settings);
	return err < 0 ? err : metrics_add(d->core.metrics, f, &d->settings, values, NULL);
}

#undef COUNTER
#undef GAUGE

struct cJSON *daemon_status_json(struct daemon *d) {
	cJSON *o = cJSON_CreateObject(), *st, *drivers;

	if (!o)
		return NULL;
	/* The structured parts first (names, states, rates); the registry fills in the figures. */
	refresh_store(d);
	sample_rates(d, &d->ss);
	cJSON_AddObjectToObject(o, "loop_lag_ms");
	cJSON_AddObjectToObject(o, "loop_turn_cpu_ms");
	cJSON_AddNumberToObject(o, "pid", (double)getpid());
	cJSON_AddNumberToObject(o, "readings_per_s", d->rate.readings_per_s);
	cJSON_AddNumberToObject(o, "rate_window_s", d->rate.window_s);
	st = cJSON_AddObjectToObject(o, "storage");
	if (st) {
		cJSON_AddStringToObject(st, "path", d->settings.store_path ? d->settings.store_path : "");
		cJSON_AddNumberToObject(st, "rows_per_s", d->rate.rows_per_s);
		cJSON_AddBoolToObject(st, "failing", d->ss.failing);
		cJSON_AddStringToObject(st, "last_error", d->ss.last_error_text);
	}
	/* Each module's block ("alarms" is always present, empty without rules). */
	for (size_t i = 0; i < d->n_mods; i++) {
		const struct module_ops *ops = d->mods[i].ops;
		cJSON *block = ops->status_json ? ops->status_json(d->mods[i].m) : NULL;
		if (block)
			cJSON_AddItemToObject(o, ops->status_key, block);
	}
	drivers = cJSON_AddArrayToObject(o, "drivers");
	for (int pass = 0; drivers && pass < 3; pass++) {
		struct m2m_host *drv = pass == 0 ? d->core.drivers : pass == 1 ? d->retired : d->pending;
		for (; drv; drv = drv->next) {
			cJSON *dj = cJSON_CreateObject();
			if (!dj)
				break;
			cJSON_AddItemToArray(drivers, dj);
			cJSON_AddStringToObject(dj, "name", drv->name);
			cJSON_AddStringToObject(dj, "plugin", drv->plugin->name);
			cJSON_AddStringToObject(dj, "state", driver_state_name(drv->state));
			host_status_json(drv, dj);
			cJSON_AddNumberToObject(dj, "readings_per_s", pass == 0 ? drv->readings_per_s : 0.0);
			cJSON_AddObjectToObject(dj, "stats");
		}
	}
	if (metrics_json(d->core.metrics, o) < 0) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* The periodic line and the final one, the same template over the window's or the whole lag. */
static void log_stats(struct daemon *d, const char *label, bool total) {
	static const char window[] =
		"uptime={m2md_uptime_seconds:.0}s readings_in={m2md_readings_received}"
		" stored={m2md_readings_stored} rejected={m2md_readings_rejected}"
		" written={m2md_storage_rows_written} dropped={m2md_storage_rows_dropped}"
		" queued={m2md_storage_queued} storage_errors={m2md_storage_errors}"
		" loop_lag_p50={m2md_loop_lag_window_milliseconds[stat=p50]:.3}ms"
		" loop_lag_p99={m2md_loop_lag_window_milliseconds[stat=p99]:.3}ms"
		" loop_lag_max={m2md_loop_lag_window_milliseconds[stat=max]:.3}ms"
		" loop_turn_cpu_p99={m2md_loop_turn_cpu_window_milliseconds[stat=p99]:.3}ms"
		" drivers={m2md_drivers_running}/{m2md_drivers}";
	static const char whole[] =
		"uptime={m2md_uptime_seconds:.0}s readings_in={m2md_readings_received}"
		" stored={m2md_readings_stored} rejected={m2md_readings_rejected}"
		" written={m2md_storage_rows_written} dropped={m2md_storage_rows_dropped}"
		" queued={m2md_storage_queued} storage_errors={m2md_storage_errors}"
		" loop_lag_p50={m2md_loop_lag_milliseconds[stat=p50]:.3}ms"
		" loop_lag_p99={m2md_loop_lag_milliseconds[stat=p99]:.3}ms"
		" loop_lag_max={m2md_loop_lag_milliseconds[stat=max]:.3}ms"
		" loop_turn_cpu_p99={m2md_loop_turn_cpu_milliseconds[stat=p99]:.3}ms"
		" drivers={m2md_drivers_running}/{m2md_drivers}";
	char line[512];
	int n = metrics_line(d->core.metrics, total ? whole : window, line, sizeof(line));

	if (n < 0)
		log_error("%s: cannot render: %s", label, m2m_strerror(n));
	else
		log_info("%s: %s", label, line);
}

static void on_stats(uv_timer_t *t) {
	struct daemon *d = t->data;

	log_stats(d, "stats", false);
	lag_window_reset(&d->lag);
}

/*
 * Tells the service manager STATE. A failure is logged once: a manager that
 * never hears READY=1 kills the service at its start timeout, and the log
 * must say why.
 */
static void notify(struct daemon *d, const char *state) {
	int r = notify_send(state);

	if (r < 0 && !d->notify_failed) {
		d->notify_failed = true;
		log_warning("cannot notify the service manager at $NOTIFY_SOCKET (%s): %s",
		            getenv("NOTIFY_SOCKET"), m2m_strerror(r));
	}
}

static void on_watchdog(uv_timer_t *t) {
	notify(t->data, "WATCHDOG=1");
}

static void notify_status(struct daemon *d) {
	char line[128];

	if (metrics_line(d->core.metrics, "STATUS={m2md_drivers_running} of {m2md_drivers} drivers running",
	                 line, sizeof(line)) >= 0)
		notify(d, line);
}

static void retire_done(struct daemon *d);
static void finish_reload(struct daemon *d);
static void reload(struct daemon *d);

/* --- modules --- */

/* The core's sinks are those of the modules that run (or are still stopping). */
static void update_sinks(struct daemon *d) {
	struct core_sink sinks[CORE_SINKS_MAX];
	size_t n = 0;

	for (size_t i = 0; i < d->n_mods; i++)
		if (d->mods[i].m && !d->mods[i].stopped && d->mods[i].ops->sink)
			sinks[n++] = (struct core_sink){ .ops = d->mods[i].ops->sink, .m = d->mods[i].m };
	core_set_sinks(&d->core, sinks, n);
}

/* Starts a module with CONF (taken over); a failure is the module's to log. */
static void module_start(struct daemon *d, struct module_slot *ms, void *conf) {
	if (ms->ops->start(&d->core, conf, &ms->m) < 0)
		ms->m = NULL;
	update_sinks(d);
}

/*
 * A module has wound down: it sees no more readings. One a reload removed
 * is freed now; at shutdown all are freed after the loop, since a driver
 * that is still stopping may yet answer a write the module asked for.
 */
static void on_module_stopped(void *arg) {
	struct module_slot *ms = arg;
	struct daemon *d = ms->d;
	void *m = ms->m;

	ms->stopping = false;
	if (d->core.stopping) {
		ms->stopped = true;
		update_sinks(d);
	} else {
		ms->m = NULL;
		update_sinks(d);
		ms->ops->free(m);
	}
	retire_done(d);
}

/* Counted like a retiring driver, so shutdown and reload wait for it. */
static void module_stop(struct daemon *d, struct module_slot *ms) {
	if (!ms->m || ms->stopping || ms->stopped)
		return;
	ms->stopping = true;
	d->retiring++;
	ms->ops->stop(ms->m, on_module_stopped, ms);
}

/* Installs the modules' sections of a reloaded config (taken over from L). */
static void reload_modules(struct daemon *d, struct loaded *l) {
	for (size_t i = 0; i < d->n_mods; i++) {
		struct module_slot *ms = &d->mods[i];
		void *conf = l->conf[i];

		l->conf[i] = NULL;
		if ((ms->ops->flags & MODULE_START_ONLY) || ms->stopping) {
			if (conf)
				ms->ops->conf_free(conf);
		} else if (ms->m) {
			if (ms->ops->reconfigure(ms->m, conf) == MODULE_STOP)
				module_stop(d, ms);
		} else if (conf) {
			module_start(d, ms, conf);
		}
	}
}

static struct daemon *daemon_of(struct core *c) {
	return (struct daemon *)((char *)c - offsetof(struct daemon, core));
}

static cJSON *core_status(struct core *c) {
	return daemon_status_json(daemon_of(c));
}

static void core_reload(struct core *c) {
	reload(daemon_of(c));
}

/* --- start, reload, stop --- */

static void apply_log_level(struct daemon *d) {
	if (d->log_level_override >= 0)
		log_set_max_level(d->log_level_override);
	else if (d->settings.log_level >= 0)
		log_set_max_level(d->settings.log_level);
	else
		log_set_max_level(LOG_INFO);
}


static void finish_reload(struct daemon *d) {
	struct m2m_host *drv;
	unsigned started = 0;

	while ((drv = d->pending)) {
		d->pending = drv->next;
		list_append(&d->core.drivers, drv);
		driver_start(drv);
		started++;
	}
	core_points_changed(&d->core);
	d->reload_busy = false;
	d->reloads++;
	log_notice("configuration reloaded: %u driver(s) (re)started", started);
	{
		struct store_event e = { .ts_us = now_us(), .kind = "reload", .value = NAN,
		                         .text = "configuration reloaded" };
		if (d->core.store)
			store_put_event(d->core.store, &e);
	}
	notify(d, "READY=1");
	notify_status(d);
	if (d->reload_again && !d->core.stopping) {
		d->reload_again = false;
		reload(d);
	}
}

/* One retiring driver (or module) is gone. */
static void retire_done(struct daemon *d) {
	if (--d->retiring > 0)
		return;
	if (d->core.stopping) {
		uv_timer_stop(&d->shutdown_timer);
		uv_close((uv_handle_t *)&d->shutdown_timer, NULL);
	} else if (d->reload_busy)
		finish_reload(d);
}

static void on_retired(struct m2m_host *drv, void *arg) {
	struct daemon *d = arg;

	list_remove(&d->retired, drv);
	retire_done(d);
}

static bool drivers_equal(const struct m2m_host *drv, const struct driver_conf *dc, bool dir_same) {
	return dir_same && strcmp(drv->plugin->name, dc->plugin) == 0 &&
	       drv->restart_min_us == dc->restart_min_us && drv->restart_max_us == dc->restart_max_us &&
	       cJSON_Compare(drv->section, dc->section, true);
}

static void reload(struct daemon *d) {
	struct m2m_host *drv, *next, *created = NULL;
	struct loaded l;
	char *error = NULL;
	bool *matched = NULL, dir_same;
	int err;

	if (d->core.stopping)
		return;
	if (d->reload_busy) {
		d->reload_again = true;
		return;
	}
	notify(d, "RELOADING=1");
	log_notice("reloading configuration from %s", d->config_path);
	err = load_validated(d, &l, &error);
	if (err < 0) {
		struct store_event e = { .ts_us = now_us(), .kind = "reload", .value = NAN,
		                         .to_state = "failed", .text = error };
		d->reloads_failed++;
		log_error("reload failed, keeping the running configuration: %s",
		          error ? error : m2m_strerror(err));
		if (d->core.store)
			store_put_event(d->core.store, &e);
		free(error);
		notify(d, "READY=1");
		return;
	}
	/* Storage and the control socket stay open across a reload; their settings need a restart. */
	if (strcmp(l.s.store_path, d->settings.store_path) != 0)
		log_warning("storage.path changed to %s: takes effect after a restart; still writing %s",
		            l.s.store_path, d->settings.store_path);
	matched = calloc(l.s.n_drivers ? l.s.n_drivers : 1, sizeof(*matched));
	if (!matched) {
		err = -ENOMEM;
		goto fail;
	}
	dir_same = strcmp(l.s.plugin_dir, d->settings.plugin_dir) == 0;

	/* Create the new instances first: if one fails, nothing has been stopped yet. */
	for (drv = d->core.drivers; drv; drv = drv->next)
		for (size_t i = 0; i < l.s.n_drivers; i++)
			if (!matched[i] && strcmp(drv->name, l.s.drivers[i].name) == 0 &&
			    drivers_equal(drv, &l.s.drivers[i], dir_same))
				matched[i] = true;
	for (size_t i = 0; i < l.s.n_drivers; i++) {
		struct m2m_host *n;
		if (matched[i])
			continue;
		err = driver_create(&d->core, d->core.reg, false, l.cfg, &l.s.drivers[i], &n, &error);
		if (err < 0) {
			if (!error && config_last_error(l.cfg->c))
				error = strdup(config_last_error(l.cfg->c));
			goto fail;
		}
		list_append(&created, n);
	}

	/* Retire what changed or went away; unchanged instances keep running untouched. */
	for (drv = d->core.drivers; drv; drv = next) {
		bool keep = false;
		next = drv->next;
		for (size_t i = 0; i < l.s.n_drivers && !keep; i++)
			keep = strcmp(drv->name, l.s.drivers[i].name) == 0 &&
			       drivers_equal(drv, &l.s.drivers[i], dir_same);
		if (keep)
			continue;
		list_remove(&d->core.drivers, drv);
		list_append(&d->retired, drv);
		d->retiring++;
	}
	d->pending = created;
	free(matched);

	{
		/* The store options that matter stay those of the open database. */
		struct store_opts keep_store = d->settings.store;
		char *keep_path = d->settings.store_path;
		d->settings.store_path = NULL;
		settings_done(&d->settings);
		d->settings = l.s;
		free(d->settings.store_path);
		d->settings.store_path = keep_path;
		d->settings.store = keep_store;
		d->settings.store.path = keep_path;
		memset(&l.s, 0, sizeof(l.s));
	}
	d->core.gateway_id = d->settings.gateway_id;
	register_info(d);
	config_ref_put(d->cfg);
	d->cfg = l.cfg;
	l.cfg = NULL;
	apply_log_level(d);
	reload_modules(d, &l);
	loaded_done(&l);
	d->reload_busy = true;
	/* Counted so that the loop below cannot finish the reload before it has run. */
	d->retiring++;
	for (drv = d->retired; drv; drv = next) {
		next = drv->next;
		if (drv->state != DRIVER_STOPPING)
			driver_stop(drv, on_retired, d);
	}
	retire_done(d);
	return;

fail:
	d->reloads_failed++;
	log_error("reload failed, keeping the running configuration: %s",
	          error ? error : m2m_strerror(err));
	discard_all(&created);
	free(error);
	free(matched);
	loaded_done(&l);
	notify(d, "READY=1");
}

static void on_sighup(uv_signal_t *s, int signum) {
	reload(s->data);
}

static void close_handles(struct daemon *d) {
	uv_handle_t *hs[] = {
		(uv_handle_t *)&d->sig_term, (uv_handle_t *)&d->sig_int, (uv_handle_t *)&d->sig_hup,
		(uv_handle_t *)&d->stats_timer, (uv_handle_t *)&d->watchdog_timer,
	};
	for (size_t i = 0; i < ELEMENTSOF(hs); i++)
		if (!uv_is_closing(hs[i]))
			uv_close(hs[i], NULL);
	loop_lag_stop(&d->lag);
}

static void on_shutdown_timeout(uv_timer_t *t) {
	struct daemon *d = t->data;

	log_warning("%u driver(s) did not stop within %d s; exiting without them", d->retiring,
	            SHUTDOWN_DRIVERS_TIMEOUT_MS / 1000);
	uv_stop(d->core.loop);
}

static void on_stop_signal(uv_signal_t *s, int signum) {
	struct daemon *d = s->data;
	struct m2m_host *drv, *next;

	if (d->core.stopping) {
		log_warning("second %s: exiting now", strsignal(signum));
		uv_stop(d->core.loop);
		return;
	}
	for (drv = d->core.drivers; drv; drv = drv->next, d->stop_total++)
		d->stop_running += drv->state == DRIVER_RUNNING;
	d->core.stopping = true;
	log_notice("received %s, stopping", strsignal(signum));
	notify(d, "STOPPING=1");
	while ((drv = d->pending)) {
		d->pending = drv->next;
		driver_discard(drv);
	}
	while ((drv = d->core.drivers)) {
		d->core.drivers = drv->next;
		list_append(&d->retired, drv);
		d->retiring++;
	}
	close_handles(d);
	/* Modules stop alongside the drivers: MQTT says "offline" and flushes within its own bound. */
	for (size_t i = 0; i < d->n_mods; i++)
		module_stop(d, &d->mods[i]);
	if (d->retiring == 0)
		return;
	uv_timer_init(d->core.loop, &d->shutdown_timer);
	d->shutdown_timer.data = d;
	uv_timer_start(&d->shutdown_timer, on_shutdown_timeout, SHUTDOWN_DRIVERS_TIMEOUT_MS, 0);
	/* driver_stop() may destroy the instance at once (no buses): keep the next one first. */
	for (drv = d->retired; drv; drv = next) {
		next = drv->next;
		if (drv->state != DRIVER_STOPPING)
			driver_stop(drv, on_retired, d);
	}
}

static void seed_point(void *arg, uint32_t id, const char *name) {
	struct daemon *d = arg;

	if (registry_seed(d->core.reg, id, name) < 0)
		log_warning("points table: ignoring duplicate row %u \"%s\"", id, name);
}

/*
 * Locks the database and the control socket for this process; logs one line
 * naming the running instance when another m2md holds either.
 */
static int take_locks(struct daemon *d, const struct loaded *l) {
	const char *paths[2] = { d->settings.store_path, NULL };

	/* The second lock is a module's own path: the control socket. */
	for (size_t i = 0; i < d->n_mods && !paths[1]; i++)
		if (d->mods[i].ops->lock_path && l->conf[i])
			paths[1] = d->mods[i].ops->lock_path(l->conf[i]);

	for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
		pid_t owner = 0;
		int fd;

		if (!paths[i])
			continue;
		fd = pidlock_take(paths[i], &owner);
		if (fd == -EWOULDBLOCK) {
			if (owner > 0)
				log_error("%s is in use by another m2md (pid %ld); not starting a second one",
				          paths[i], (long)owner);
			else
				log_error("%s is in use by another m2md; not starting a second one", paths[i]);
			return fd;
		}
		if (fd < 0 && i == 1) {
			/* No lock where no socket can be made either: the control socket reports it. */
			log_debug("cannot lock %s.lock: %s", paths[i], m2m_strerror(fd));
			continue;
		}
		if (fd < 0) {
			log_error("%s: cannot open: cannot create the lock file %s.lock: %s%s", paths[i],
			          paths[i], m2m_strerror(fd),
			          fd == -EACCES || fd == -EPERM || fd == -EROFS || fd == -ENOENT ||
			                  fd == -ENOTDIR ? " (directory missing or not writable)" : "");
			return fd;
		}
		d->lock_fds[i] = fd;
	}
	return 0;
}

int daemon_run(const char *path, const char *confd_dir, int log_level_override) {
	const struct module_ops *const *mods;
	struct daemon *d;
	uv_loop_t loop;
	struct loaded l = { 0 };
	char *error = NULL;
	uint64_t wd_usec = 0;
	int err, code = EXIT_FAILURE;

	d = calloc(1, sizeof(*d));
	if (!d)
		return EXIT_FAILURE;
	mods = modules_table(&d->n_mods);
	for (size_t i = 0; i < d->n_mods; i++)
		d->mods[i] = (struct module_slot){ .ops = mods[i], .d = d };
	d->core.status_json = core_status;
	d->core.reload = core_reload;
	d->config_path = strdup(path);
	d->confd_dir = confd_dir;
	d->log_level_override = log_level_override;
	d->started_us = mono_us();
	d->lock_fds[0] = d->lock_fds[1] = -1;
	if (!d->config_path)
		goto out_free;

	err = load_validated(d, &l, &error);
	if (err < 0) {
		log_error("%s", error ? error : m2m_strerror(err));
		code = EXIT_CONFIG;
		goto out_free;
	}
	d->cfg = l.cfg;
	d->settings = l.s;
	l.cfg = NULL;
	memset(&l.s, 0, sizeof(l.s));
	apply_log_level(d);
	d->core.gateway_id = d->settings.gateway_id;
	d->core.db_path = d->settings.store_path;
	if ((err = registry_new(&d->core.reg)) < 0 || (err = metrics_new(&d->core.metrics)) < 0)
		goto out_free;
	/* Before anything touches the database or the socket: a second m2md on them stops here. */
	if (take_locks(d, &l) < 0)
		goto out_free;
	err = store_open(&d->settings.store, &d->core.store, &error);
	if (err < 0) {
		log_error("%s", error ? error : m2m_strerror(err));
		goto out_free;
	}
	{
		struct store_open_info info;
		store_get_open_info(d->core.store, &info);
		if (info.unclean && !info.quarantined_to)
			log_warning("%s: the last shutdown was unclean; quick_check found the database intact",
			            d->settings.store_path);
		if (info.created)
			log_info("%s: created a new database", d->settings.store_path);
	}
	if ((err = store_load_points(d->core.store, seed_point, d)) < 0) {
		log_error("%s: cannot read the points table: %s", d->settings.store_path, m2m_strerror(err));
		goto out_store;
	}
	if ((err = uv_loop_init(&loop)) < 0) {
		log_error("cannot create the event loop: %s", uv_strerror(err));
		goto out_store;
	}
	d->core.loop = &loop;
	if ((err = register_metrics(d)) < 0 || (err = register_info(d)) < 0) {
		log_error("cannot register the metrics: %s", m2m_strerror(err));
		goto out_loop;
	}

	log_info("plugins from %s", d->settings.plugin_dir);
	for (size_t i = 0; i < d->settings.n_drivers; i++) {
		struct m2m_host *drv;
		err = driver_create(&d->core, d->core.reg, false, d->cfg, &d->settings.drivers[i], &drv,
		                    &error);
		if (err < 0) {
			/* Validated a moment ago; only a plugin file changed under us gets here. */
			log_error("%s", error ? error : config_last_error(d->cfg->c));
			code = EXIT_CONFIG;
			goto out_loop;
		}
		list_append(&d->core.drivers, drv);
	}

	uv_signal_init(d->core.loop, &d->sig_term);
	uv_signal_init(d->core.loop, &d->sig_int);
	uv_signal_init(d->core.loop, &d->sig_hup);
	d->sig_term.data = d->sig_int.data = d->sig_hup.data = d;
	uv_signal_start(&d->sig_term, on_stop_signal, SIGTERM);
	uv_signal_start(&d->sig_int, on_stop_signal, SIGINT);
	uv_signal_start(&d->sig_hup, on_sighup, SIGHUP);
	loop_lag_start(&d->lag, d->core.loop, LAG_INTERVAL_MS);
	uv_timer_init(d->core.loop, &d->stats_timer);
	uv_timer_init(d->core.loop, &d->watchdog_timer);
	d->stats_timer.data = d->watchdog_timer.data = d;
	/* Modules restore what they saved (alarm states) before the first reading. */
	d->core.starting = true;
	for (size_t i = 0; i < d->n_mods; i++)
		if (l.conf[i]) {
			module_start(d, &d->mods[i], l.conf[i]);
			l.conf[i] = NULL;
		}
	d->core.starting = false;
	if (d->settings.stats_interval_us > 0) {
		uint64_t every = (uint64_t)(d->settings.stats_interval_us / 1000);
		uv_timer_start(&d->stats_timer, on_stats, every, every);
		uv_unref((uv_handle_t *)&d->stats_timer);
	}
	/* The watchdog is fed from the loop thread, so a stuck loop stops feeding it. */
	err = notify_watchdog_usec(&wd_usec);
	if (err < 0)
		log_warning("ignoring WATCHDOG_USEC=%s: not a positive number of microseconds",
		            getenv("WATCHDOG_USEC"));
	if (err > 0 && wd_usec >= 2000) {
		uv_timer_start(&d->watchdog_timer, on_watchdog, wd_usec / 2000, wd_usec / 2000);
		uv_unref((uv_handle_t *)&d->watchdog_timer);
	}

	for (struct m2m_host *drv = d->core.drivers; drv; drv = drv->next)
		driver_start(drv);
	log_notice("m2md %s started: gateway \"%s\", %zu driver(s), database %s", M2M_VERSION,
	           d->settings.gateway_id, d->settings.n_drivers, d->settings.store_path);
	notify(d, "READY=1");
	notify_status(d);

	uv_run(d->core.loop, UV_RUN_DEFAULT);

	/* Flush first, so that the last line counts what reached the disk. */
	store_stop(d->core.store, SHUTDOWN_STORE_TIMEOUT_US);
	log_stats(d, "final stats", true);
	code = EXIT_SUCCESS;
out_loop:
	if (!d->core.stopping) {
		/* Start failed: instances were created but never started. */
		struct m2m_host *drv;
		while ((drv = d->core.drivers)) {
			d->core.drivers = drv->next;
			driver_discard(drv);
		}
	}
	/* Let close callbacks run; a bus stuck past the shutdown bound keeps its handle. */
	uv_run(d->core.loop, UV_RUN_NOWAIT);
	if (uv_loop_close(d->core.loop) < 0)
		log_debug("event loop still had handles at exit");
out_store:
	store_close(d->core.store, SHUTDOWN_STORE_TIMEOUT_US);
	d->core.store = NULL;
out_free:
	free(error);
	free(d->core.batch);
	loaded_done(&l);
	/* Stopped modules, and what did not stop within the shutdown bound, go with the loop. */
	for (size_t i = 0; i < d->n_mods; i++)
		if (d->mods[i].m)
			d->mods[i].ops->free(d->mods[i].m);
	if (d->retired == NULL && d->core.drivers == NULL) {
		registry_free(d->core.reg);
		metrics_free(d->core.metrics);
		settings_done(&d->settings);
		config_ref_put(d->cfg);
	}
	/* Last: until the database is closed, no second m2md may open it. */
	for (size_t i = 0; i < ELEMENTSOF(d->lock_fds); i++)
		pidlock_release(d->lock_fds[i]);
	free(d->config_path);
	free(d);
	return code;
}
