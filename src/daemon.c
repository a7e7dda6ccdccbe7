/* SPDX-License-Identifier: MIT */
#include "daemon.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "driver.h"
#include "error.h"
#include "fmt.h"
#include "host-api.h"
#include "log.h"
#include "m2m-build.h"
#include "pidlock.h"
#include "util.h"

/* How long shutdown waits for drivers whose bus is stuck in a blocking call. */
#define SHUTDOWN_DRIVERS_TIMEOUT_MS 10000
#define SHUTDOWN_STORE_TIMEOUT_US (5 * 1000000LL)
#define LAG_INTERVAL_MS 50

/* --- config references --- */

struct config_ref *config_ref_new(config *c) {
	struct config_ref *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->c = c;
	r->refs = 1;
	return r;
}

struct config_ref *config_ref_get(struct config_ref *r) {
	if (r)
		r->refs++;
	return r;
}

void config_ref_put(struct config_ref *r) {
	if (!r || --r->refs > 0)
		return;
	config_free(r->c);
	free(r);
}

/* --- settings --- */

static bool name_valid(const char *s, size_t max) {
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      *s == '_' || *s == '-' || *s == '.'))
			return false;
	return true;
}

void settings_done(struct settings *s) {
	if (!s)
		return;
	for (size_t i = 0; i < s->n_drivers; i++) {
		free(s->drivers[i].name);
		free(s->drivers[i].plugin);
	}
	free(s->drivers);
	free(s->gateway_id);
	free(s->plugin_dir);
	free(s->store_path);
	memset(s, 0, sizeof(*s));
}

/*
 * The plugin directory when the config names none: the installed one, or
 * the build's plugins/ when this is the binary of the build tree itself
 * (its /proc/self/exe lies in the build's src/), so that a first run from a
 * clone works as the README shows. The trusted-directory checks apply to
 * either when the plugins load.
 */
static const char *default_plugin_dir(void) {
	char exe[PATH_MAX], src[PATH_MAX], *slash;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n <= 0)
		return M2M_PLUGIN_DIR;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (!slash)
		return M2M_PLUGIN_DIR;
	*slash = '\0';
	if (!realpath(M2M_BUILD_SRC_DIR, src) || strcmp(exe, src) != 0 ||
	    access(M2M_BUILD_PLUGIN_DIR, F_OK) < 0)
		return M2M_PLUGIN_DIR;
	return M2M_BUILD_PLUGIN_DIR;
}

int settings_parse(config *c, const char *config_path, struct settings *s) {
	static const char *const levels[] = { "error", "warning", "notice", "info", "debug", NULL };
	static const char *const syncs[] = { "normal", "full", NULL };
	static const char *const corrupt[] = { "quarantine", "fail", NULL };
	const cJSON *root = config_root(c), *gw, *st, *drivers, *item;
	const char *id, *dir, *path;
	char host[HOST_NAME_MAX + 1];
	int64_t v;
	uint64_t size;
	int err = 0, level;

	memset(s, 0, sizeof(*s));
	store_opts_default(&s->store);
	s->log_level = -1;

	if (!cJSON_IsObject(root))
		return config_error(c, root, "expected a table at the top level");
	gw = config_item(c, root, "gateway", cJSON_Object, &err);
	if (err < 0)
		return err;
	st = config_item(c, root, "storage", cJSON_Object, &err);
	if (err < 0)
		return err;
	drivers = config_item(c, root, "drivers", cJSON_Object, &err);
	if (err < 0)
		return err;

	if (gethostname(host, sizeof(host)) < 0 || !name_valid(host, 64))
		snprintf(host, sizeof(host), "m2md");
	if ((err = config_string(c, gw, "id", host, &id)) < 0)
		return err;
	if (!name_valid(id, 64))
		return config_error(c, cJSON_GetObjectItemCaseSensitive(gw, "id"),
		                    "expected a gateway id of 1 to 64 letters, digits, '_', '-' or '.', "
		                    "got \"%s\"", id);
	if ((err = config_string(c, gw, "plugin_dir", default_plugin_dir(), &dir)) < 0)
		return err;
	if ((err = config_enum(c, gw, "log_level", levels, -1, &level)) < 0)
		return err;
	if (level >= 0)
		s->log_level = LOG_ERR + level;
	if ((err = config_duration(c, gw, "stats_interval", 15 * 60 * 1000000LL,
	                           &s->stats_interval_us)) < 0)
		return err;

	if ((err = config_string(c, st, "path", M2M_DB_FILE, &path)) < 0 ||
	    (err = config_enum(c, st, "synchronous", syncs, STORE_SYNC_NORMAL, &s->store.synchronous)) < 0 ||
	    (err = config_duration(c, st, "commit_interval", s->store.commit_interval_us,
	                           &s->store.commit_interval_us)) < 0)
		return err;
	if (s->store.commit_interval_us < 1000 || s->store.commit_interval_us > 10000000)
		return config_error(c, cJSON_GetObjectItemCaseSensitive(st, "commit_interval"),
		                    "expected a duration from 1ms to 10s");
	if ((err = config_int(c, st, "commit_rows", s->store.commit_rows, 1, 1000000, &v)) < 0)
		return err;
	s->store.commit_rows = (uint32_t)v;
	if ((err = config_int(c, st, "queue_limit", s->store.queue_limit, 100, 100000000, &v)) < 0)
		return err;
	s->store.queue_limit = (uint32_t)v;
	if ((err = config_duration(c, st, "retention_age", s->store.retention_age_us,
	                           &s->store.retention_age_us)) < 0 ||
	    (err = config_size(c, st, "retention_size", s->store.retention_size,
	                       &s->store.retention_size)) < 0 ||
	    (err = config_enum(c, st, "on_corrupt", corrupt, s->store.on_corrupt,
	                       &s->store.on_corrupt)) < 0 ||
	    (err = config_size(c, st, "cache_size", (uint64_t)s->store.cache_kib * 1024, &size)) < 0)
		return err;
	if (s->store.retention_size != 0 && s->store.retention_size < 1024 * 1024)
		return config_error(c, cJSON_GetObjectItemCaseSensitive(st, "retention_size"),
		                    "expected 0 (unbounded) or at least 1MiB");
	if (size < 64 * 1024 || size > (1ULL << 34))
		return config_error(c, cJSON_GetObjectItemCaseSensitive(st, "cache_size"),
		                    "expected a cache size from 64KiB to 16GiB");
	s->store.cache_kib = (int64_t)(size / 1024);

	s->gateway_id = strdup(id);
	s->plugin_dir = path_relative_to(config_path, dir);
	s->store_path = path_relative_to(config_path, path);
	if (!s->gateway_id || !s->plugin_dir || !s->store_path)
		return -ENOMEM;
	s->store.path = s->store_path;

	cJSON_ArrayForEach(item, drivers) {
		struct driver_conf *dc, *v2;
		const char *plugin;

		config_mark(c, drivers, item->string);
		if (!name_valid(item->string, 64) || strchr(item->string, '.'))
			return config_error(c, item, "expected a driver name of 1 to 64 letters, digits, "
			                    "'_' or '-', got \"%s\"", item->string);
		if (!cJSON_IsObject(item))
			return config_error(c, item, "expected a table [drivers.%s]", item->string);
		v2 = realloc(s->drivers, (s->n_drivers + 1) * sizeof(*v2));
		if (!v2)
			return -ENOMEM;
		s->drivers = v2;
		dc = &s->drivers[s->n_drivers];
		memset(dc, 0, sizeof(*dc));
		if ((err = config_string(c, item, "plugin", NULL, &plugin)) < 0)
			return err;
		if (err == 0)
			return config_error(c, item, "missing key 'plugin' (the driver plugin, e.g. \"modbus\")");
		if (!plugin_name_valid(plugin))
			return config_error(c, cJSON_GetObjectItemCaseSensitive(item, "plugin"),
			                    "expected a plugin name of lower-case letters, digits, '_' or '-', "
			                    "got \"%s\"", plugin);
		if ((err = config_duration(c, item, "restart_backoff", 1000000, &dc->restart_min_us)) < 0 ||
		    (err = config_duration(c, item, "restart_backoff_max", 300 * 1000000LL,
		                           &dc->restart_max_us)) < 0)
			return err;
		if (dc->restart_min_us < 10000 || dc->restart_max_us < dc->restart_min_us)
			return config_error(c, cJSON_GetObjectItemCaseSensitive(item, "restart_backoff"),
			                    "expected restart_backoff >= 10ms and <= restart_backoff_max");
		dc->name = strdup(item->string);
		dc->plugin = strdup(plugin);
		s->n_drivers++;
		if (!dc->name || !dc->plugin)
			return -ENOMEM;
		dc->section = item;
		dc->plugin_dir = s->plugin_dir;
	}
	return 0;
}

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
	rules_conf *rules;
	mqtt_conf *mqtt;
	ctl_conf *ctl;
};

static void loaded_done(struct loaded *l) {
	rules_conf_free(l->rules);
	mqtt_conf_free(l->mqtt);
	ctl_conf_free(l->ctl);
	settings_done(&l->s);
	config_ref_put(l->cfg);
	memset(l, 0, sizeof(*l));
}

/*
 * Loads the config and checks all of it: the core's keys, then every
 * driver's section by creating a throw-away instance of its plugin into a
 * scratch registry, then the rules against the points the drivers declared,
 * then unknown keys anywhere. Nothing runs.
 */
static int load_validated(struct daemon *d, struct loaded *ret, char **ret_error) {
	struct loaded l = { 0 };
	struct m2m_host *created = NULL;
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
	err = mqtt_conf_parse(c, config_root(c), l.s.gateway_id, &l.mqtt);
	if (err < 0)
		goto fail;
	err = ctl_conf_parse(c, config_root(c), d->config_path, &l.ctl);
	if (err < 0)
		goto fail;
	err = registry_new(&scratch);
	if (err < 0)
		goto fail;
	/* All instances live until the end, so a point's owner can be named in a clash. */
	for (size_t i = 0; i < l.s.n_drivers; i++) {
		struct m2m_host *drv;
		err = driver_create(d, scratch, true, l.cfg, &l.s.drivers[i], &drv, ret_error);
		if (err < 0)
			goto fail;
		list_append(&created, drv);
	}
	/* Rules are checked against the points (and attributes) the drivers just declared. */
	err = rules_conf_parse(c, config_root(c), scratch, &l.rules);
	if (err < 0)
		goto fail;
	err = config_check_unknown(c, config_root(c));
	if (err < 0)
		goto fail;
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
	d->rate.readings_per_s = per_s(d->readings_in, d->rate.readings_in, w);
	d->rate.rows_per_s = per_s(ss->rows_written, d->rate.rows_written, w);
	d->rate.window_s = w;
	d->rate.readings_in = d->readings_in;
	d->rate.rows_written = ss->rows_written;
	d->rate.t_us = now;
	for (struct m2m_host *drv = d->drivers; drv; drv = drv->next) {
		drv->readings_per_s = per_s(drv->readings, drv->rate_readings, w);
		drv->rate_readings = drv->readings;
	}
}

struct cJSON *daemon_status_json(struct daemon *d) {
	cJSON *o = cJSON_CreateObject(), *lag, *st, *drivers;
	struct store_stats ss = { 0 };

	if (!o)
		return NULL;
	if (d->store)
		store_get_stats(d->store, &ss);
	sample_rates(d, &ss);
	cJSON_AddStringToObject(o, "version", M2M_VERSION);
	cJSON_AddStringToObject(o, "gateway", d->settings.gateway_id ? d->settings.gateway_id : "");
	cJSON_AddNumberToObject(o, "uptime_s", (double)(mono_us() - d->started_us) / 1e6);
	lag = cJSON_AddObjectToObject(o, "loop_lag_ms");
	if (lag) {
		cJSON_AddNumberToObject(lag, "p50", ms(lag_histogram_quantile(&d->lag.window, 0.5)));
		cJSON_AddNumberToObject(lag, "p99", ms(lag_histogram_quantile(&d->lag.window, 0.99)));
		cJSON_AddNumberToObject(lag, "max", ms(d->lag.window.max_us));
		cJSON_AddNumberToObject(lag, "p99_total", ms(lag_histogram_quantile(&d->lag.total, 0.99)));
		cJSON_AddNumberToObject(lag, "max_total", ms(d->lag.total.max_us));
	}
	cJSON_AddNumberToObject(o, "pid", (double)getpid());
	cJSON_AddNumberToObject(o, "readings_in", (double)d->readings_in);
	cJSON_AddNumberToObject(o, "readings_per_s", d->rate.readings_per_s);
	cJSON_AddNumberToObject(o, "rate_window_s", d->rate.window_s);
	cJSON_AddNumberToObject(o, "readings_stored", (double)d->readings_stored);
	cJSON_AddNumberToObject(o, "readings_rejected", (double)d->readings_rejected);
	cJSON_AddNumberToObject(o, "writes_ok", (double)d->writes_ok);
	cJSON_AddNumberToObject(o, "writes_failed", (double)d->writes_failed);
	cJSON_AddNumberToObject(o, "writes_refused", (double)d->writes_refused);
	cJSON_AddNumberToObject(o, "reloads", (double)d->reloads);
	cJSON_AddNumberToObject(o, "reloads_failed", (double)d->reloads_failed);
	st = cJSON_AddObjectToObject(o, "storage");
	if (st) {
		cJSON_AddStringToObject(st, "path", d->settings.store_path ? d->settings.store_path : "");
		cJSON_AddNumberToObject(st, "rows_written", (double)ss.rows_written);
		cJSON_AddNumberToObject(st, "rows_per_s", d->rate.rows_per_s);
		cJSON_AddNumberToObject(st, "rows_dropped", (double)ss.rows_dropped);
		cJSON_AddNumberToObject(st, "queued", (double)ss.queued);
		cJSON_AddNumberToObject(st, "commits", (double)ss.commits);
		cJSON_AddNumberToObject(st, "errors", (double)ss.errors);
		cJSON_AddNumberToObject(st, "events_written", (double)ss.events_written);
		cJSON_AddNumberToObject(st, "events_dropped", (double)ss.events_dropped);
		cJSON_AddNumberToObject(st, "retention_deleted", (double)ss.retention_deleted);
		cJSON_AddNumberToObject(st, "db_bytes", (double)ss.db_bytes);
		cJSON_AddNumberToObject(st, "reopens", (double)ss.reopens);
		cJSON_AddNumberToObject(st, "rows_lost", (double)ss.rows_lost);
		cJSON_AddBoolToObject(st, "failing", ss.failing);
		cJSON_AddStringToObject(st, "last_error", ss.last_error_text);
	}
	/* Always present, empty without rules: scripts need not test for it. */
	cJSON_AddItemToObject(o, "alarms", rules_status_json(d->rules, false));
	if (d->mqtt)
		cJSON_AddItemToObject(o, "mqtt", mqtt_status_json(d->mqtt));
	drivers = cJSON_AddArrayToObject(o, "drivers");
	for (int pass = 0; drivers && pass < 3; pass++) {
		struct m2m_host *drv = pass == 0 ? d->drivers : pass == 1 ? d->retired : d->pending;
		for (; drv; drv = drv->next) {
			cJSON *dj = cJSON_CreateObject(), *stats;
			if (!dj)
				break;
			cJSON_AddItemToArray(drivers, dj);
			cJSON_AddStringToObject(dj, "name", drv->name);
			cJSON_AddStringToObject(dj, "plugin", drv->plugin->name);
			cJSON_AddStringToObject(dj, "state", driver_state_name(drv->state));
			host_status_json(drv, dj);
			cJSON_AddNumberToObject(dj, "points", (double)drv->n_points);
			cJSON_AddNumberToObject(dj, "readings", (double)drv->readings);
			cJSON_AddNumberToObject(dj, "readings_per_s", pass == 0 ? drv->readings_per_s : 0.0);
			cJSON_AddNumberToObject(dj, "starts", drv->starts);
			cJSON_AddNumberToObject(dj, "failures", drv->failures);
			stats = cJSON_AddObjectToObject(dj, "stats");
			for (size_t i = 0; stats && i < drv->n_stats; i++)
				cJSON_AddNumberToObject(stats, drv->stats[i].name, drv->stats[i].value);
		}
	}
	return o;
}

static void log_stats(struct daemon *d, const char *label, const struct lag_histogram *h) {
	struct store_stats ss = { 0 };
	unsigned running = 0, total = 0;

	if (d->store)
		store_get_stats(d->store, &ss);
	for (struct m2m_host *drv = d->drivers; drv; drv = drv->next, total++)
		running += drv->state == DRIVER_RUNNING;
	if (d->stopping) {
		running = d->stop_running;
		total = d->stop_total;
	}
	log_info("%s: uptime=%.0fs readings_in=%" PRIu64 " stored=%" PRIu64 " rejected=%" PRIu64
	         " written=%" PRIu64 " dropped=%" PRIu64 " queued=%" PRIu64 " storage_errors=%" PRIu64
	         " loop_lag_p50=%.3fms loop_lag_p99=%.3fms loop_lag_max=%.3fms drivers=%u/%u",
	         label, (double)(mono_us() - d->started_us) / 1e6, d->readings_in, d->readings_stored,
	         d->readings_rejected, ss.rows_written, ss.rows_dropped, ss.queued, ss.errors,
	         ms(lag_histogram_quantile(h, 0.5)), ms(lag_histogram_quantile(h, 0.99)), ms(h->max_us),
	         running, total);
}

static void on_stats(uv_timer_t *t) {
	struct daemon *d = t->data;

	log_stats(d, "stats", &d->lag.window);
	lag_window_reset(&d->lag);
}

static void on_watchdog(uv_timer_t *t) {
	sd_notify(0, "WATCHDOG=1");
}

static void notify_status(struct daemon *d) {
	unsigned running = 0, total = 0;

	for (struct m2m_host *drv = d->drivers; drv; drv = drv->next, total++)
		running += drv->state == DRIVER_RUNNING;
	sd_notifyf(0, "STATUS=%u of %u drivers running", running, total);
}

/* --- writes --- */

/*
 * Why a write of VALUE to NAME (the point P, NULL when unknown) was
 * refused with ERR, in words a person acts on: "unknown point 'x/y'",
 * "value 500 is above max 90". Into BUF; returns BUF.
 */
static const char *refusal_text(const struct point *p, const char *name, double value, int err,
                                char *buf, size_t n) {
	const struct m2m_host *drv = p ? p->owner : NULL;
	char v[FMT_DOUBLE_MAX], lim[FMT_DOUBLE_MAX];

	if (isfinite(value))
		fmt_double(value, v, sizeof(v));
	else
		snprintf(v, sizeof(v), "%g", value);
	if (!p || err == -ENOENT)
		snprintf(buf, n, "unknown point '%s'", name);
	else if (err == M2M_ENOTWRITABLE)
		snprintf(buf, n, "point '%s' is not writable (writable = true in its config)", name);
	else if (err == -EOPNOTSUPP && p->a.kind == POINT_STRING)
		snprintf(buf, n, "point '%s' holds text; writes carry a number", name);
	else if (err == -EOPNOTSUPP)
		snprintf(buf, n, "driver '%s' cannot write", drv ? drv->name : "?");
	else if (err == -EINVAL && p->a.kind == POINT_BOOL && isfinite(value))
		snprintf(buf, n, "value %s for the bool point '%s': expected 0 or 1 (false/true)", v, name);
	else if (err == -EINVAL)
		snprintf(buf, n, "value %s is not a finite number", v);
	else if (err == M2M_ELIMIT && !isnan(p->a.min) && value < p->a.min)
		snprintf(buf, n, "value %s is below min %s of '%s'", v,
		         (fmt_double(p->a.min, lim, sizeof(lim)), lim), name);
	else if (err == M2M_ELIMIT)
		snprintf(buf, n, "value %s is above max %s of '%s'", v,
		         (fmt_double(p->a.max, lim, sizeof(lim)), lim), name);
	else if (err == M2M_EDRIVERDOWN)
		snprintf(buf, n, "driver '%s' of '%s' is %s", drv ? drv->name : "?", name,
		         drv ? driver_state_name(drv->state) : "not running");
	else
		snprintf(buf, n, "%s", m2m_strerror(err));
	return buf;
}

const char *daemon_write_refusal(struct daemon *d, const char *name, double value, int err,
                                 char *buf, size_t n) {
	struct point *p = registry_find(d->reg, name);

	return refusal_text(p && p->declared ? p : NULL, name, value, err, buf, n);
}

static int refuse(struct daemon *d, const char *origin, struct point *p, const char *name,
                  double value, int err) {
	char why[256];
	struct store_event e = {
		.ts_us = now_us(),
		.kind = "write",
		.source = origin,
		.point = p ? p->id : 0,
		.value = value,
		.to_state = "refused",
		.text = refusal_text(p, name, value, err, why, sizeof(why)),
	};

	d->writes_refused++;
	log_warning("write %s from %s refused: %s", name, origin, why);
	if (d->store)
		store_put_event(d->store, &e);
	return err;
}

int daemon_write(struct daemon *d, const char *origin, const char *name, double value,
                 daemon_write_cb cb, void *arg) {
	struct point *p = registry_find(d->reg, name);
	struct m2m_host *drv;

	if (!origin)
		origin = "unknown";
	if (!p || !p->declared)
		return refuse(d, origin, NULL, name, value, -ENOENT);
	/* Every check happens here, before anything can reach a device. */
	if (!p->a.writable)
		return refuse(d, origin, p, name, value, M2M_ENOTWRITABLE);
	if (p->a.kind == POINT_STRING)
		return refuse(d, origin, p, name, value, -EOPNOTSUPP);
	if (!isfinite(value) || (p->a.kind == POINT_BOOL && value != 0 && value != 1))
		return refuse(d, origin, p, name, value, -EINVAL);
	if ((!isnan(p->a.min) && value < p->a.min) || (!isnan(p->a.max) && value > p->a.max))
		return refuse(d, origin, p, name, value, M2M_ELIMIT);
	drv = p->owner;
	if (!drv || drv->state != DRIVER_RUNNING)
		return refuse(d, origin, p, name, value, M2M_EDRIVERDOWN);
	if (!drv->plugin->desc->ops->write)
		return refuse(d, origin, p, name, value, -EOPNOTSUPP);
	return driver_write(drv, origin, p, value, cb, arg);
}

static void retire_done(struct daemon *d);
static void finish_reload(struct daemon *d);
static void reload(struct daemon *d);

/* --- rules --- */

static void rules_event(void *ctx, const struct store_event *e) {
	struct daemon *d = ctx;

	if (d->store)
		store_put_event(d->store, e);
}

static int rules_write(void *ctx, const char *origin, const char *point, double value,
                       void (*cb)(int status, const char *error_text, void *arg), void *arg) {
	return daemon_write(ctx, origin, point, value, cb, arg);
}

static int rules_publish(void *ctx, const char *topic, const char *payload, int qos, bool retain) {
	struct daemon *d = ctx;

	if (!d->mqtt)
		return -ENOTCONN;
	return mqtt_publish(d->mqtt, topic, payload, qos, retain);
}

static const char *rules_topic_prefix(void *ctx) {
	struct daemon *d = ctx;

	return d->mqtt ? mqtt_topic_prefix(d->mqtt) : "";
}

static void on_rules_timer(uv_timer_t *t) {
	struct daemon *d = t->data;

	d->rules_timer_due = INT64_MAX;
	if (d->rules) {
		rules_advance(d->rules, mono_us());
		daemon_rules_schedule(d);
	}
}

void daemon_rules_schedule(struct daemon *d) {
	int64_t due = d->rules ? rules_next_deadline(d->rules) : INT64_MAX, delay;

	if (due == d->rules_timer_due || d->stopping)
		return;
	d->rules_timer_due = due;
	if (due == INT64_MAX) {
		uv_timer_stop(&d->rules_timer);
		return;
	}
	delay = due - mono_us();
	/* Round up: firing a millisecond early would find nothing due yet. */
	uv_timer_start(&d->rules_timer, on_rules_timer, delay > 0 ? (uint64_t)(delay + 999) / 1000 : 0, 0);
}

/* Installs the rules of a (re)loaded config; takes over RC (which may be NULL). */
static int apply_rules(struct daemon *d, rules_conf *rc) {
	struct rules_env env = {
		.ctx = d,
		.reg = d->reg,
		.event = rules_event,
		.write = rules_write,
		.publish = rules_publish,
		.gateway_id = d->settings.gateway_id,
		.topic_prefix = rules_topic_prefix,
	};
	int err;

	/* No rules now and none before: no engine. */
	if (!rc && !d->rules)
		return 0;
	/*
	 * A running engine is reconfigured even to no rules at all (RC NULL):
	 * ending the alarms of removed rules (transition, on_clear, deferred
	 * writes) is its job, and the writes it sends must still find it.
	 */
	if (d->rules) {
		/* The engine keeps its env on reload, but [gateway].id may have changed. */
		err = rules_reconfigure(d->rules, rc, mono_us());
		if (err == 0)
			err = rules_set_gateway_id(d->rules, d->settings.gateway_id);
	} else {
		err = rules_new(&env, rc, mono_us(), &d->rules);
	}
	if (err < 0)
		log_error("cannot install the rules: %s", m2m_strerror(err));
	daemon_rules_schedule(d);
	return err;
}

/* --- MQTT --- */

static cJSON *mqtt_drivers_json(void *ctx) {
	struct daemon *d = ctx;
	cJSON *a = cJSON_CreateArray();

	for (struct m2m_host *drv = d->drivers; a && drv; drv = drv->next)
		cJSON_AddItemToArray(a, cJSON_CreateString(drv->name));
	return a;
}

static void on_mqtt_retired(void *arg) {
	struct daemon *d = arg;
	mqtt *m = d->mqtt;

	d->mqtt = NULL;
	mqtt_free(m);
	retire_done(d);
}

/* Installs the [mqtt] of a (re)loaded config; takes over MC (which may be NULL). */
static void apply_mqtt(struct daemon *d, mqtt_conf *mc) {
	struct mqtt_env env = {
		.ctx = d,
		.loop = d->loop,
		.store = d->store,
		.reg = d->reg,
		.gateway_id = d->settings.gateway_id,
		.version = M2M_VERSION,
		.drivers_json = mqtt_drivers_json,
		.write = rules_write,
		.event = rules_event,
	};
	int err;

	if (!mc) {
		if (d->mqtt) {
			/* Counted like a retiring driver, so shutdown and reload wait for it. */
			d->retiring++;
			mqtt_stop(d->mqtt, on_mqtt_retired, d);
		}
		return;
	}
	if (d->mqtt)
		err = mqtt_reconfigure(d->mqtt, mc);
	else
		err = mqtt_new(&env, mc, &d->mqtt);
	if (err < 0)
		log_error("cannot start MQTT: %s", m2m_strerror(err));
}

/* --- control socket --- */

static cJSON *point_json(const struct point *p) {
	cJSON *o = cJSON_CreateObject();

	if (!o)
		return NULL;
	cJSON_AddNumberToObject(o, "id", p->id);
	cJSON_AddStringToObject(o, "name", p->name);
	cJSON_AddStringToObject(o, "unit", p->a.unit ? p->a.unit : "");
	cJSON_AddStringToObject(o, "kind", p->a.kind == POINT_BOOL ? "bool" :
	                                   p->a.kind == POINT_STRING ? "string" : "number");
	cJSON_AddBoolToObject(o, "writable", p->a.writable);
	cJSON_AddStringToObject(o, "driver", p->owner ? ((struct m2m_host *)p->owner)->name : "");
	if (!isnan(p->a.min))
		cJSON_AddNumberToObject(o, "min", p->a.min);
	if (!isnan(p->a.max))
		cJSON_AddNumberToObject(o, "max", p->a.max);
	if (p->has_value) {
		cJSON_AddNumberToObject(o, "ts", (double)p->ts_us);
		if (p->a.kind == POINT_STRING)
			cJSON_AddStringToObject(o, "value", p->text ? p->text : "");
		else if (isfinite(p->value))
			cJSON_AddNumberToObject(o, "value", p->value);
		else
			cJSON_AddNullToObject(o, "value");
		cJSON_AddStringToObject(o, "quality", quality_name(p->quality));
		if (p->quality != M2M_QUALITY_GOOD && p->detail) {
			char why[96];
			cJSON_AddStringToObject(o, "detail", quality_detail(p->quality, p->detail, why,
			                                                    sizeof(why)));
		}
	}
	cJSON_AddNumberToObject(o, "readings", (double)p->readings);
	host_point_json(p, o);
	return o;
}

static cJSON *ctl_points(void *ctx, const char *device) {
	struct daemon *d = ctx;
	size_t n = device ? strlen(device) : 0;
	cJSON *a = cJSON_CreateArray();

	/* Bounded by the number of points, and only on request: not a per-tick scan. */
	for (uint32_t id = 1; a && id < registry_end(d->reg); id++) {
		struct point *p = registry_get(d->reg, id);
		if (!p || !p->declared)
			continue;
		if (device && (strncmp(p->name, device, n) != 0 || p->name[n] != '/'))
			continue;
		cJSON_AddItemToArray(a, point_json(p));
	}
	return a;
}

static cJSON *ctl_read(void *ctx, const char *name) {
	struct daemon *d = ctx;
	struct point *p = registry_find(d->reg, name);

	return p && p->declared ? point_json(p) : NULL;
}

static cJSON *ctl_status(void *ctx) {
	return daemon_status_json(ctx);
}

static cJSON *ctl_rules(void *ctx, bool all) {
	struct daemon *d = ctx;
	return d->rules ? rules_status_json(d->rules, all) : NULL;
}

static int ctl_ack(void *ctx, const char *rule, const char *point) {
	struct daemon *d = ctx;
	int r;

	if (!d->rules)
		return -ENOENT;
	/* The engine's clock moves with readings and timers; an ack must see now. */
	rules_advance(d->rules, mono_us());
	r = rules_ack(d->rules, rule, point);
	/* An ack that ends a latched alarm may defer an on_clear write. */
	daemon_rules_schedule(d);
	return r;
}

static const char *ctl_write_refusal(void *ctx, const char *point, double value, int err,
                                     char *buf, size_t n) {
	return daemon_write_refusal(ctx, point, value, err, buf, n);
}

static void ctl_reload(void *ctx) {
	reload(ctx);
}

static void on_ctl_closed(void *arg) {
	struct daemon *d = arg;

	ctl_server_free(d->ctl);
	d->ctl = NULL;
	retire_done(d);
}

/* Opens the control socket; a failure is logged and the gateway runs on without it. */
static void start_ctl(struct daemon *d, ctl_conf *cc) {
	struct ctl_env env = {
		.ctx = d,
		.loop = d->loop,
		.status = ctl_status,
		.points = ctl_points,
		.read = ctl_read,
		.write = rules_write,
		.write_refusal = ctl_write_refusal,
		.rules = ctl_rules,
		.ack = ctl_ack,
		.reload = ctl_reload,
	};
	int err = ctl_server_new(&env, cc, &d->ctl);

	if (err < 0)
		log_error("control socket unavailable, running without it: %s", m2m_strerror(err));
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
		list_append(&d->drivers, drv);
		driver_start(drv);
		started++;
	}
	d->reload_busy = false;
	d->reloads++;
	log_notice("configuration reloaded: %u driver(s) (re)started", started);
	{
		struct store_event e = { .ts_us = now_us(), .kind = "reload", .value = NAN,
		                         .text = "configuration reloaded" };
		if (d->store)
			store_put_event(d->store, &e);
	}
	sd_notify(0, "READY=1");
	notify_status(d);
	if (d->reload_again && !d->stopping) {
		d->reload_again = false;
		reload(d);
	}
}

/* One retiring driver (or the MQTT client) is gone. */
static void retire_done(struct daemon *d) {
	if (--d->retiring > 0)
		return;
	if (d->stopping) {
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

	if (d->stopping)
		return;
	if (d->reload_busy) {
		d->reload_again = true;
		return;
	}
	sd_notify(0, "RELOADING=1");
	log_notice("reloading configuration from %s", d->config_path);
	err = load_validated(d, &l, &error);
	if (err < 0) {
		struct store_event e = { .ts_us = now_us(), .kind = "reload", .value = NAN,
		                         .to_state = "failed", .text = error };
		d->reloads_failed++;
		log_error("reload failed, keeping the running configuration: %s",
		          error ? error : m2m_strerror(err));
		if (d->store)
			store_put_event(d->store, &e);
		free(error);
		sd_notify(0, "READY=1");
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
	for (drv = d->drivers; drv; drv = drv->next)
		for (size_t i = 0; i < l.s.n_drivers; i++)
			if (!matched[i] && strcmp(drv->name, l.s.drivers[i].name) == 0 &&
			    drivers_equal(drv, &l.s.drivers[i], dir_same))
				matched[i] = true;
	for (size_t i = 0; i < l.s.n_drivers; i++) {
		struct m2m_host *n;
		if (matched[i])
			continue;
		err = driver_create(d, d->reg, false, l.cfg, &l.s.drivers[i], &n, &error);
		if (err < 0) {
			if (!error && config_last_error(l.cfg->c))
				error = strdup(config_last_error(l.cfg->c));
			goto fail;
		}
		list_append(&created, n);
	}

	/* Retire what changed or went away; unchanged instances keep running untouched. */
	for (drv = d->drivers; drv; drv = next) {
		bool keep = false;
		next = drv->next;
		for (size_t i = 0; i < l.s.n_drivers && !keep; i++)
			keep = strcmp(drv->name, l.s.drivers[i].name) == 0 &&
			       drivers_equal(drv, &l.s.drivers[i], dir_same);
		if (keep)
			continue;
		list_remove(&d->drivers, drv);
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
	config_ref_put(d->cfg);
	d->cfg = l.cfg;
	l.cfg = NULL;
	apply_log_level(d);
	apply_mqtt(d, l.mqtt);
	l.mqtt = NULL;
	apply_rules(d, l.rules);
	l.rules = NULL;
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
	sd_notify(0, "READY=1");
}

void daemon_reload(struct daemon *d) {
	reload(d);
}

static void on_sighup(uv_signal_t *s, int signum) {
	reload(s->data);
}

static void close_handles(struct daemon *d) {
	uv_handle_t *hs[] = {
		(uv_handle_t *)&d->sig_term, (uv_handle_t *)&d->sig_int, (uv_handle_t *)&d->sig_hup,
		(uv_handle_t *)&d->stats_timer, (uv_handle_t *)&d->watchdog_timer,
		(uv_handle_t *)&d->rules_timer,
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
	uv_stop(d->loop);
}

static void on_stop_signal(uv_signal_t *s, int signum) {
	struct daemon *d = s->data;
	struct m2m_host *drv, *next;

	if (d->stopping) {
		log_warning("second %s: exiting now", strsignal(signum));
		uv_stop(d->loop);
		return;
	}
	for (drv = d->drivers; drv; drv = drv->next, d->stop_total++)
		d->stop_running += drv->state == DRIVER_RUNNING;
	d->stopping = true;
	log_notice("received %s, stopping", strsignal(signum));
	sd_notify(0, "STOPPING=1");
	while ((drv = d->pending)) {
		d->pending = drv->next;
		driver_discard(drv);
	}
	while ((drv = d->drivers)) {
		d->drivers = drv->next;
		list_append(&d->retired, drv);
		d->retiring++;
	}
	close_handles(d);
	/* MQTT stops alongside the drivers: it says "offline" and flushes within its own bound. */
	if (d->mqtt) {
		d->retiring++;
		mqtt_stop(d->mqtt, on_mqtt_retired, d);
	}
	if (d->ctl) {
		d->retiring++;
		ctl_server_close(d->ctl, on_ctl_closed, d);
	}
	if (d->retiring == 0)
		return;
	uv_timer_init(d->loop, &d->shutdown_timer);
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

	if (registry_seed(d->reg, id, name) < 0)
		log_warning("points table: ignoring duplicate row %u \"%s\"", id, name);
}

/*
 * Locks the database and the control socket for this process; logs one line
 * naming the running instance when another m2md holds either.
 */
static int take_locks(struct daemon *d, const ctl_conf *cc) {
	const char *paths[2] = { d->settings.store_path, cc ? ctl_conf_socket(cc) : NULL };

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
	struct daemon *d;
	uv_loop_t loop;
	struct loaded l = { 0 };
	char *error = NULL;
	uint64_t wd_usec = 0;
	int err, code = EXIT_FAILURE;

	d = calloc(1, sizeof(*d));
	if (!d)
		return EXIT_FAILURE;
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
	if ((err = registry_new(&d->reg)) < 0)
		goto out_free;
	/* Before anything touches the database or the socket: a second m2md on them stops here. */
	if (take_locks(d, l.ctl) < 0)
		goto out_free;
	err = store_open(&d->settings.store, &d->store, &error);
	if (err < 0) {
		log_error("%s", error ? error : m2m_strerror(err));
		goto out_free;
	}
	{
		struct store_open_info info;
		store_get_open_info(d->store, &info);
		if (info.unclean && !info.quarantined_to)
			log_warning("%s: the last shutdown was unclean; quick_check found the database intact",
			            d->settings.store_path);
		if (info.created)
			log_info("%s: created a new database", d->settings.store_path);
	}
	if ((err = store_load_points(d->store, seed_point, d)) < 0) {
		log_error("%s: cannot read the points table: %s", d->settings.store_path, m2m_strerror(err));
		goto out_store;
	}
	if ((err = uv_loop_init(&loop)) < 0) {
		log_error("cannot create the event loop: %s", uv_strerror(err));
		goto out_store;
	}
	d->loop = &loop;

	log_info("plugins from %s", d->settings.plugin_dir);
	for (size_t i = 0; i < d->settings.n_drivers; i++) {
		struct m2m_host *drv;
		err = driver_create(d, d->reg, false, d->cfg, &d->settings.drivers[i], &drv, &error);
		if (err < 0) {
			/* Validated a moment ago; only a plugin file changed under us gets here. */
			log_error("%s", error ? error : config_last_error(d->cfg->c));
			code = EXIT_CONFIG;
			goto out_loop;
		}
		list_append(&d->drivers, drv);
	}

	uv_signal_init(d->loop, &d->sig_term);
	uv_signal_init(d->loop, &d->sig_int);
	uv_signal_init(d->loop, &d->sig_hup);
	d->sig_term.data = d->sig_int.data = d->sig_hup.data = d;
	uv_signal_start(&d->sig_term, on_stop_signal, SIGTERM);
	uv_signal_start(&d->sig_int, on_stop_signal, SIGINT);
	uv_signal_start(&d->sig_hup, on_sighup, SIGHUP);
	loop_lag_start(&d->lag, d->loop, LAG_INTERVAL_MS);
	uv_timer_init(d->loop, &d->stats_timer);
	uv_timer_init(d->loop, &d->watchdog_timer);
	uv_timer_init(d->loop, &d->rules_timer);
	d->stats_timer.data = d->watchdog_timer.data = d->rules_timer.data = d;
	d->rules_timer_due = INT64_MAX;
	start_ctl(d, l.ctl);
	l.ctl = NULL;
	apply_mqtt(d, l.mqtt);
	l.mqtt = NULL;
	/* Alarm states come back from the events table before the first reading. */
	if (l.rules) {
		if (apply_rules(d, l.rules) == 0 &&
		    (err = rules_restore(d->rules, d->settings.store_path)) < 0)
			log_warning("cannot restore alarm states from %s: %s", d->settings.store_path,
			            m2m_strerror(err));
		l.rules = NULL;
		/* A restored pending alarm resumes its raise delay: the timer must know. */
		daemon_rules_schedule(d);
	}
	if (d->settings.stats_interval_us > 0) {
		uint64_t every = (uint64_t)(d->settings.stats_interval_us / 1000);
		uv_timer_start(&d->stats_timer, on_stats, every, every);
		uv_unref((uv_handle_t *)&d->stats_timer);
	}
	/* The watchdog is fed from the loop thread, so a stuck loop stops feeding it. */
	if (sd_watchdog_enabled(0, &wd_usec) > 0 && wd_usec >= 2000) {
		uv_timer_start(&d->watchdog_timer, on_watchdog, wd_usec / 2000, wd_usec / 2000);
		uv_unref((uv_handle_t *)&d->watchdog_timer);
	}

	for (struct m2m_host *drv = d->drivers; drv; drv = drv->next)
		driver_start(drv);
	log_notice("m2md %s started: gateway \"%s\", %zu driver(s), database %s", M2M_VERSION,
	           d->settings.gateway_id, d->settings.n_drivers, d->settings.store_path);
	sd_notify(0, "READY=1");
	notify_status(d);

	uv_run(d->loop, UV_RUN_DEFAULT);

	/* Flush first, so that the last line counts what reached the disk. */
	store_stop(d->store, SHUTDOWN_STORE_TIMEOUT_US);
	log_stats(d, "final stats", &d->lag.total);
	code = EXIT_SUCCESS;
out_loop:
	if (!d->stopping) {
		/* Start failed: instances were created but never started. */
		struct m2m_host *drv;
		while ((drv = d->drivers)) {
			d->drivers = drv->next;
			driver_discard(drv);
		}
	}
	/* Let close callbacks run; a bus stuck past the shutdown bound keeps its handle. */
	uv_run(d->loop, UV_RUN_NOWAIT);
	if (uv_loop_close(d->loop) < 0)
		log_debug("event loop still had handles at exit");
out_store:
	store_close(d->store, SHUTDOWN_STORE_TIMEOUT_US);
	d->store = NULL;
out_free:
	free(error);
	free(d->batch);
	loaded_done(&l);
	rules_free(d->rules);
	mqtt_free(d->mqtt);
	ctl_server_free(d->ctl);
	if (d->retired == NULL && d->drivers == NULL) {
		registry_free(d->reg);
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
