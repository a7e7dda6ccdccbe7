/* SPDX-License-Identifier: MIT */
/*
 * The m2m_host_api table and its trampolines: what a plugin can ask of the
 * host. Each h_* function checks what the ABI promises (only during
 * create, loop thread, ids this instance declared) and hands the work to
 * the core: the registry, ingest (readings), write.c (write completions),
 * the loop and the bus threads.
 */
#include "host-api.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "ingest.h"
#include "error.h"
#include "log.h"
#include "util.h"

/* --- logging and time --- */

int host_state_init(struct m2m_host *drv) {
	return -pthread_mutex_init(&drv->last_error_lock, NULL);
}

void host_set_last_error(struct m2m_host *drv, const char *text, bool if_empty) {
	pthread_mutex_lock(&drv->last_error_lock);
	if (!if_empty || !drv->last_error[0])
		snprintf(drv->last_error, sizeof(drv->last_error), "%s", text);
	pthread_mutex_unlock(&drv->last_error_lock);
}

const char *host_last_error(struct m2m_host *drv, char *buf, size_t n) {
	pthread_mutex_lock(&drv->last_error_lock);
	snprintf(buf, n, "%s", drv->last_error);
	pthread_mutex_unlock(&drv->last_error_lock);
	return buf;
}

/*
 * Any thread: a bus thread logs while the loop thread renders status. The
 * lock is held only for the copy, never across the log write.
 */
static void h_log(m2m_host *drv, int level, const char *fmt, ...) {
	char msg[sizeof(drv->last_error)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* The last error a driver logged is what status shows as its last error. */
	if (level <= M2M_LOG_ERR)
		host_set_last_error(drv, msg, false);
	log_msg(level, "driver %s: %s", drv->name, msg);
}

static int64_t h_now_us(m2m_host *drv) {
	return now_us();
}

static int64_t h_mono_us(m2m_host *drv) {
	return mono_us();
}

/* --- configuration --- */

static config *creating_config(m2m_host *drv) {
	return drv->creating ? drv->cfg->c : NULL;
}

static int h_cfg_string(m2m_host *drv, const cJSON *obj, const char *key, const char *def,
                        const char **ret) {
	config *c = creating_config(drv);
	return c ? config_string(c, obj, key, def, ret) : -EPERM;
}

static int h_cfg_int(m2m_host *drv, const cJSON *obj, const char *key, int64_t def, int64_t min,
                     int64_t max, int64_t *ret) {
	config *c = creating_config(drv);
	return c ? config_int(c, obj, key, def, min, max, ret) : -EPERM;
}

static int h_cfg_double(m2m_host *drv, const cJSON *obj, const char *key, double def,
                        double *ret) {
	config *c = creating_config(drv);
	return c ? config_double(c, obj, key, def, ret) : -EPERM;
}

static int h_cfg_bool(m2m_host *drv, const cJSON *obj, const char *key, int def, int *ret) {
	config *c = creating_config(drv);
	bool b;
	int r;

	if (!c)
		return -EPERM;
	r = config_bool(c, obj, key, def != 0, &b);
	if (r >= 0)
		*ret = b;
	return r;
}

static int h_cfg_duration(m2m_host *drv, const cJSON *obj, const char *key, int64_t def_us,
                          int64_t *ret_us) {
	config *c = creating_config(drv);
	return c ? config_duration(c, obj, key, def_us, ret_us) : -EPERM;
}

static int h_cfg_enum(m2m_host *drv, const cJSON *obj, const char *key,
                      const char *const *names, int def, int *ret) {
	config *c = creating_config(drv);
	return c ? config_enum(c, obj, key, names, def, ret) : -EPERM;
}

static const cJSON *h_cfg_item(m2m_host *drv, const cJSON *obj, const char *key) {
	config *c = creating_config(drv);

	if (!c || !obj)
		return NULL;
	config_mark(c, obj, key);
	return cJSON_GetObjectItemCaseSensitive(obj, key);
}

static int h_cfg_error(m2m_host *drv, const cJSON *item, const char *fmt, ...) {
	config *c = drv->cfg->c;
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return config_error(c, item, "%s", msg);
}

/* --- points and readings --- */

static int h_declare_point(m2m_host *drv, const char *device, const cJSON *obj,
                           uint32_t *ret_id) {
	config *c = creating_config(drv);
	struct declared_point *v;
	struct point_attrs attrs;
	const char *name;
	char full[256];
	struct point *p;
	bool is_new;
	uint32_t id;
	int r;

	if (!c)
		return -EPERM;
	if (!cJSON_IsObject(obj))
		return config_error(c, obj, "expected a table describing a point");
	r = config_string(c, obj, "name", NULL, &name);
	if (r < 0)
		return r;
	if (r == 0)
		return config_error(c, obj, "missing key 'name' (the point's name)");
	if (device) {
		if (strchr(name, '/'))
			return config_error(c, cJSON_GetObjectItemCaseSensitive(obj, "name"),
			                    "expected a point name without '/' (the device is \"%s\"), got \"%s\"",
			                    device, name);
		r = snprintf(full, sizeof(full), "%s/%s", device, name);
	} else
		r = snprintf(full, sizeof(full), "%s", name);
	if (r < 0 || (size_t)r >= sizeof(full) || !point_name_valid(full))
		return config_error(c, cJSON_GetObjectItemCaseSensitive(obj, "name"),
		                    "expected a point name \"device/point\" of letters, digits, '_', '-' "
		                    "and '.', got \"%s\"", full);
	r = point_attrs_parse(c, obj, &attrs);
	if (r < 0)
		return r;
	r = registry_intern(drv->reg, full, &id, &is_new);
	if (r < 0)
		goto fail;
	for (size_t i = 0; i < drv->n_points; i++)
		if (drv->points[i].id == id) {
			r = config_error(c, cJSON_GetObjectItemCaseSensitive(obj, "name"),
			                 "point \"%s\" is declared twice in this driver", full);
			goto fail;
		}
	p = registry_get(drv->reg, id);
	if (drv->validating) {
		/* The scratch registry holds only the new config: a second owner is a clash. */
		if (p->owner && p->owner != drv) {
			r = config_error(c, cJSON_GetObjectItemCaseSensitive(obj, "name"),
			                 "point \"%s\" is already declared by driver \"%s\"", full,
			                 ((struct m2m_host *)p->owner)->name);
			goto fail;
		}
		p->owner = drv;
		/* Rules are checked against the new config's attributes (writable, limits). */
		point_attrs_done(&p->a);
		p->a = attrs;
		p->a.unit = strdup(attrs.unit);
		p->a.description = strdup(attrs.description);
		if (!p->a.unit || !p->a.description) {
			r = -ENOMEM;
			goto fail;
		}
	}
	v = realloc(drv->points, (drv->n_points + 1) * sizeof(*v));
	if (!v) {
		r = -ENOMEM;
		goto fail;
	}
	drv->points = v;
	drv->points[drv->n_points].id = id;
	drv->points[drv->n_points].attrs = attrs;
	drv->n_points++;
	*ret_id = id;
	return 0;
fail:
	point_attrs_done(&attrs);
	return r;
}

/* What plugins call: big submits reach ingest_submit in chunks (submit-queue.h). */
static int h_submit_chunked(m2m_host *drv, const struct m2m_reading *r, size_t n) {
	return submit_queue_put(&drv->submits, r, n);
}

static int h_submit_text(m2m_host *drv, uint32_t id, int64_t ts_us, const char *text,
                         uint16_t quality, uint16_t detail) {
	return ingest_text(drv, id, ts_us, text, quality, detail);
}

/* --- status --- */

/* One event row and its log line; FROM and TO are the states of a change, or NULL. */
static void put_event(struct m2m_host *drv, const char *device, const char *kind, const char *from,
                      const char *to, const char *text) {
	struct store_event e = {
		.ts_us = now_us(),
		.kind = kind ? kind : "device",
		.source = device ? device : drv->name,
		.value = NAN,
		.from_state = from,
		.to_state = to,
		.text = text,
	};

	log_notice("driver %s: %s%s%s%s%s", drv->name, device ? device : "", device ? " " : "",
	           e.kind, text ? ": " : "", text ? text : "");
	core_event(drv->core, &e);
}

void host_event(m2m_host *drv, const char *device, const char *kind, const char *text) {
	put_event(drv, device, kind, NULL, NULL, text);
}

static size_t stat_index(const struct m2m_host *drv, const char *name) {
	for (size_t i = 0; i < drv->n_stats; i++)
		if (strcmp(drv->stats[i].name, name) == 0)
			return i;
	return SIZE_MAX;
}

/*
 * Statistics of one instance at most: a bound, so that a driver that
 * invents names per reading cannot grow us without end, and room for the
 * per-device statistics of a large instance (200 BLE sensors declare 1,400).
 */
#define STATS_MAX 16384

/* The index of statistic NAME, added as a gauge set to 0 when new; SIZE_MAX when full. */
static size_t stat_add(struct m2m_host *drv, const char *name) {
	size_t i = stat_index(drv, name);
	struct driver_stat *v;

	if (i != SIZE_MAX)
		return i;
	if (drv->n_stats >= STATS_MAX)
		return SIZE_MAX;
	v = realloc(drv->stats, (drv->n_stats + 1) * sizeof(*v));
	if (!v)
		return SIZE_MAX;
	drv->stats = v;
	v = &drv->stats[drv->n_stats];
	memset(v, 0, sizeof(*v));
	snprintf(v->name, sizeof(v->name), "%s", name);
	snprintf(v->base, sizeof(v->base), "%s", name);
	v->kind = M2M_STAT_GAUGE;
	return drv->n_stats++;
}

/* --- statistics as metrics --- */

static double stat_value(void *arg) {
	const struct m2m_stat *st = arg;

	return st->drv->stats[st->index].value;
}

/*
 * The family of statistic I: a declared one is m2md_<plugin>_<name>{driver,
 * device} of its kind and help, a 1.0 one the gauge m2md_driver_stat{driver,
 * stat}. Both keep their status key drivers[name=…]/stats/<name as shown>.
 */
static int stat_family(struct m2m_host *drv, const struct driver_stat *ds, metric_family **ret) {
	char name[160], json[128];
	struct metric_desc desc = { .type = ds->kind == M2M_STAT_COUNTER ? METRIC_COUNTER : METRIC_GAUGE };
	size_t n;

	if (!ds->help) {
		desc = (struct metric_desc){ .name = "m2md_driver_stat",
		                             .help = "Statistic reported by the plugin",
		                             .type = METRIC_GAUGE, .labels = "driver,stat",
		                             .json = "drivers[name=driver]/stats/{stat}" };
		return metrics_family(drv->core->metrics, &desc, ret);
	}
	n = (size_t)snprintf(name, sizeof(name), "m2md_%s_%s", drv->plugin->name, ds->base);
	/* A plugin's file name may hold what a metric name may not ("my-plugin"). */
	for (size_t i = 0; i < n && i < sizeof(name); i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z') ||
		      (name[i] >= '0' && name[i] <= '9') || name[i] == '_'))
			name[i] = '_';
	snprintf(json, sizeof(json), "drivers[name=driver]/stats/%s{.device}", ds->base);
	desc.name = name;
	desc.help = *ds->help ? ds->help : "Statistic declared by the plugin";
	desc.labels = "driver,device";
	desc.json = json;
	return metrics_family(drv->core->metrics, &desc, ret);
}

/* Registers statistic I of a started instance, again when it changed from 1.0 to declared. */
static int stat_register(struct m2m_host *drv, size_t i) {
	struct driver_stat *ds = &drv->stats[i];
	const char *values[2] = { drv->name, ds->help ? (ds->device ? ds->device : "") : ds->name };
	metric_family *f;
	int err;

	if (!drv->metrics_on)
		return 0;
	if (!ds->metric) {
		ds->metric = calloc(1, sizeof(*ds->metric));
		if (!ds->metric)
			return -ENOMEM;
		*ds->metric = (struct m2m_stat){ .drv = drv, .index = i };
	}
	metrics_remove_owner(drv->core->metrics, ds->metric);
	err = stat_family(drv, ds, &f);
	if (err >= 0)
		err = metrics_add(drv->core->metrics, f, ds->metric, values,
		                  &(struct metric_source){ .get_f64 = stat_value, .arg = ds->metric });
	if (err < 0)
		log_warning("driver %s: statistic %s not shown in metrics: %s", drv->name, ds->name,
		            m2m_strerror(err));
	return err;
}

static uint64_t drv_points(void *arg) {
	const struct m2m_host *drv = arg;

	return drv->n_points;
}

static uint64_t drv_starts(void *arg) {
	const struct m2m_host *drv = arg;

	return drv->starts;
}

static uint64_t drv_failures(void *arg) {
	const struct m2m_host *drv = arg;

	return drv->failures;
}

static uint64_t drv_running(void *arg) {
	const struct m2m_host *drv = arg;

	return drv->state == DRIVER_RUNNING;
}

int host_metrics_add(struct m2m_host *drv) {
#define DRV(n, t, h, j, src) { { .name = "m2md_driver_" n, .help = h, .type = t, \
	                         .labels = "driver", .json = j }, src, drv->name }
	const struct metric_entry list[] = {
		DRV("running", METRIC_GAUGE, "1 while the instance runs.", NULL,
		    ((struct metric_source){ .get_u64 = drv_running, .arg = drv })),
		DRV("points", METRIC_GAUGE, "Points the instance declared.", "drivers[name=driver]/points",
		    ((struct metric_source){ .get_u64 = drv_points, .arg = drv })),
		DRV("readings", METRIC_COUNTER, "Readings the instance submitted.",
		    "drivers[name=driver]/readings", ((struct metric_source){ .u64 = &drv->readings })),
		DRV("starts", METRIC_COUNTER, "Starts of the instance, retries included.",
		    "drivers[name=driver]/starts",
		    ((struct metric_source){ .get_u64 = drv_starts, .arg = drv })),
		/* Not a counter: a start that works sets it back to 0. */
		DRV("failures", METRIC_GAUGE, "Starts that failed in a row; 0 once the instance runs.",
		    "drivers[name=driver]/failures",
		    ((struct metric_source){ .get_u64 = drv_failures, .arg = drv })),
	};
#undef DRV
	static const struct metric_desc info = {
		.name = "m2md_driver", .help = "A driver instance and its plugin.", .type = METRIC_INFO,
		.labels = "driver,plugin",
	};
	const char *values[] = { drv->name, drv->plugin->name };
	metric_family *f;
	int err;

	if (!drv->core->metrics || drv->metrics_on)
		return 0;
	err = metrics_family(drv->core->metrics, &info, &f);
	if (err >= 0)
		err = metrics_add(drv->core->metrics, f, drv, values, NULL);
	if (err >= 0)
		err = core_metrics_add(drv->core, drv, list, ELEMENTSOF(list));
	if (err < 0) {
		metrics_remove_owner(drv->core->metrics, drv);
		return err;
	}
	drv->metrics_on = true;
	for (size_t i = 0; i < drv->n_stats; i++)
		stat_register(drv, i);
	return 0;
}

void host_metrics_remove(struct m2m_host *drv) {
	if (!drv->metrics_on)
		return;
	metrics_remove_owner(drv->core->metrics, drv);
	for (size_t i = 0; i < drv->n_stats; i++)
		if (drv->stats[i].metric)
			metrics_remove_owner(drv->core->metrics, drv->stats[i].metric);
	drv->metrics_on = false;
}

static void h_stat(m2m_host *drv, const char *name, double value) {
	size_t i = name ? stat_index(drv, name) : SIZE_MAX;

	if (name && i == SIZE_MAX && (i = stat_add(drv, name)) != SIZE_MAX)
		stat_register(drv, i);
	if (i != SIZE_MAX)
		drv->stats[i].value = value;
}

/* True for a statistic's name: [a-z0-9_], 1..63 bytes, as Prometheus takes it. */
static bool stat_name_valid(const char *name) {
	return name && name_valid(name, sizeof(((struct driver_stat *)0)->base) - 1,
	                          NAME_LOWER | NAME_DIGIT, "_");
}

static int h_stat_declare(m2m_host *drv, const char *name, const char *device, int kind,
                          const char *help, m2m_stat **ret) {
	char full[sizeof(((struct driver_stat *)0)->name)];
	struct driver_stat *ds;
	struct m2m_stat *st;
	size_t i;
	int n;

	if (!ret || !stat_name_valid(name) || (kind != M2M_STAT_COUNTER && kind != M2M_STAT_GAUGE) ||
	    (device && !*device))
		return -EINVAL;
	for (st = drv->declared_stats; st; st = st->next) {
		ds = &drv->stats[st->index];
		if (strcmp(ds->base, name) == 0 &&
		    (ds->device ? device && strcmp(ds->device, device) == 0 : !device)) {
			*ret = st;
			return 0;
		}
	}
	/* Shown as "name.device" beside the 1.0 statistics, which status already lists that way. */
	n = device ? snprintf(full, sizeof(full), "%s.%s", name, device)
	           : snprintf(full, sizeof(full), "%s", name);
	if (n < 0 || (size_t)n >= sizeof(full))
		return -ENAMETOOLONG;
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	/* A 1.0 stat() of the same name keeps its value and becomes this declared one. */
	i = stat_add(drv, full);
	if (i == SIZE_MAX) {
		free(st);
		return drv->n_stats >= STATS_MAX ? -ENOSPC : -ENOMEM;
	}
	ds = &drv->stats[i];
	free(ds->device);
	free(ds->help);
	ds->device = device ? strdup(device) : NULL;
	ds->help = strdup(help ? help : "");
	if ((device && !ds->device) || !ds->help) {
		free(st);
		return -ENOMEM;
	}
	snprintf(ds->base, sizeof(ds->base), "%s", name);
	ds->kind = kind;
	stat_register(drv, i);
	st->drv = drv;
	st->index = i;
	st->next = drv->declared_stats;
	drv->declared_stats = st;
	*ret = st;
	return 0;
}

static void h_stat_set(m2m_stat *st, double value) {
	if (st)
		st->drv->stats[st->index].value = value;
}

static struct device_status *device_find(struct m2m_host *drv, const char *device, bool add) {
	struct device_status *v;
	char *name = NULL;

	for (size_t i = 0; i < drv->n_devices; i++)
		if ((!device && !drv->devices[i].name) ||
		    (device && drv->devices[i].name && strcmp(drv->devices[i].name, device) == 0))
			return &drv->devices[i];
	/* A bound, as for statistics: a driver cannot grow the host without end. */
	if (!add || drv->n_devices >= 4096)
		return NULL;
	if (device && !(name = strdup(device)))
		return NULL;
	v = realloc(drv->devices, (drv->n_devices + 1) * sizeof(*v));
	if (!v) {
		free(name);
		return NULL;
	}
	drv->devices = v;
	v = &drv->devices[drv->n_devices++];
	memset(v, 0, sizeof(*v));
	v->name = name;
	v->state = -1; /* not reported yet */
	return v;
}

static const char *device_state_name(int state) {
	return state == M2M_DEVICE_ONLINE ? "online" : state == M2M_DEVICE_OFFLINE ? "offline" : NULL;
}

/*
 * Loop thread. Only a change of state is an event (kind "online" or
 * "offline", as drivers wrote them before ABI 1.1, with from_state and
 * to_state set); a new reason while offline replaces the old one in status
 * without an event, so a driver may report on every failed poll.
 */
static void h_device_state(m2m_host *drv, const char *device, int state, const char *reason) {
	struct device_status *ds;
	const char *from;

	if (!device_state_name(state) || (device && !*device))
		return;
	ds = device_find(drv, device, true);
	if (!ds)
		return;
	snprintf(ds->reason, sizeof(ds->reason), "%s",
	         state == M2M_DEVICE_OFFLINE && reason ? reason : "");
	if (ds->state == state)
		return;
	from = device_state_name(ds->state);
	ds->state = state;
	ds->since_us = now_us();
	/* An online report may say why ("answering again"): the event keeps it, status needs none. */
	put_event(drv, device, device_state_name(state), from, device_state_name(state), reason);
	/* The sinks learn it too (availability, Sparkplug DDEATH). */
	core_device_state(drv->core, drv->name, device, state, ds->reason[0] ? ds->reason : NULL);
}

static cJSON *device_json(const struct device_status *ds) {
	cJSON *o = cJSON_CreateObject();

	if (!o)
		return NULL;
	/* null: the whole instance, as the driver said with device NULL. */
	if (ds->name)
		cJSON_AddStringToObject(o, "name", ds->name);
	else
		cJSON_AddNullToObject(o, "name");
	cJSON_AddStringToObject(o, "state", device_state_name(ds->state));
	cJSON_AddStringToObject(o, "reason", ds->reason);
	cJSON_AddNumberToObject(o, "since_us", (double)ds->since_us);
	return o;
}

void host_status_json(struct m2m_host *drv, cJSON *obj) {
	char last[sizeof(drv->last_error)];
	cJSON *devices;

	cJSON_AddStringToObject(obj, "last_error", host_last_error(drv, last, sizeof(last)));
	devices = cJSON_AddArrayToObject(obj, "devices");
	for (size_t i = 0; devices && i < drv->n_devices; i++)
		if (device_state_name(drv->devices[i].state))
			cJSON_AddItemToArray(devices, device_json(&drv->devices[i]));
}

/*
 * The state that applies to the point NAME: the whole instance's when it
 * is offline (every device behind it is then unreachable), else that of the
 * point's device ("dev" for "dev/temp"), else the instance's; NULL when the
 * driver reported none.
 */
static const struct device_status *point_device(const struct m2m_host *drv, const char *name) {
	const struct device_status *inst = NULL, *dev = NULL;

	for (size_t i = 0; i < drv->n_devices; i++) {
		const struct device_status *ds = &drv->devices[i];
		size_t n = ds->name ? strlen(ds->name) : 0;

		if (!device_state_name(ds->state))
			continue;
		if (!ds->name)
			inst = ds;
		else if (strncmp(name, ds->name, n) == 0 && name[n] == '/' &&
		         (!dev || n > strlen(dev->name)))
			dev = ds;
	}
	if (inst && inst->state == M2M_DEVICE_OFFLINE)
		return inst;
	return dev ? dev : inst;
}

void host_point_json(const struct point *p, cJSON *obj) {
	const struct m2m_host *drv = p->owner;
	const struct device_status *ds = drv ? point_device(drv, p->name) : NULL;

	if (ds)
		cJSON_AddItemToObject(obj, "device", device_json(ds));
}

void host_state_free(struct m2m_host *drv) {
	struct m2m_stat *st;

	while ((st = drv->declared_stats)) {
		drv->declared_stats = st->next;
		free(st);
	}
	host_metrics_remove(drv);
	for (size_t i = 0; i < drv->n_stats; i++) {
		free(drv->stats[i].device);
		free(drv->stats[i].help);
		free(drv->stats[i].metric);
	}
	for (size_t i = 0; i < drv->n_devices; i++)
		free(drv->devices[i].name);
	free(drv->devices);
	drv->devices = NULL;
	drv->n_devices = 0;
	pthread_mutex_destroy(&drv->last_error_lock);
}

/* --- timers and fd watches --- */

static void timer_free(uv_handle_t *h) {
	free(h->data);
}

static void on_timer(uv_timer_t *t) {
	struct m2m_timer *tm = t->data;

	/* A timer_stop in the callback frees TM only in uv_close's callback, later. */
	tm->in_cb = true;
	tm->cb(tm, tm->arg);
	tm->in_cb = false;
}

static int h_timer_start(m2m_host *drv, uint64_t timeout_ms, uint64_t repeat_ms, m2m_timer_cb cb,
                         void *arg, m2m_timer **ret) {
	struct m2m_timer *tm;
	int err;

	/* create() parses only; timers, watches and buses belong to start(). */
	if (!cb || !drv->core->loop || drv->creating)
		return -EINVAL;
	tm = calloc(1, sizeof(*tm));
	if (!tm)
		return -ENOMEM;
	err = uv_timer_init(drv->core->loop, &tm->t);
	if (err < 0) {
		free(tm);
		return err;
	}
	tm->t.data = tm;
	tm->drv = drv;
	tm->cb = cb;
	tm->arg = arg;
	err = uv_timer_start(&tm->t, on_timer, timeout_ms, repeat_ms);
	if (err < 0) {
		uv_close((uv_handle_t *)&tm->t, timer_free);
		return err;
	}
	LIST_PREPEND(drv->timers, tm);
	*ret = tm;
	return 0;
}

/*
 * uv_timer_start stops a running timer first and starts a fired or stopped
 * one again, on the same handle: no free, no uv_close, no calloc. A timer
 * may rearm itself from its own callback, but before libuv 1.48 one rearmed
 * there with timeout 0 runs again at once in the same pass over the timers,
 * for ever (uv__run_timers compares with a loop time it does not update):
 * it then waits for the next loop iteration's millisecond instead.
 */
static int h_timer_update(m2m_timer *tm, uint64_t timeout_ms, uint64_t repeat_ms) {
	if (!tm)
		return -EINVAL;
	if (tm->in_cb && timeout_ms == 0)
		timeout_ms = 1;
	return uv_timer_start(&tm->t, on_timer, timeout_ms, repeat_ms);
}

static void h_timer_stop(m2m_timer *tm) {
	if (!tm)
		return;
	LIST_REMOVE(tm->drv->timers, tm);
	uv_timer_stop(&tm->t);
	uv_close((uv_handle_t *)&tm->t, timer_free);
}

/* True when FD reports a hang-up now (POLLHUP, POLLRDHUP): the one syscall an error costs. */
static bool hung_up(const uv_poll_t *p) {
	struct pollfd pfd = { .events = POLLIN | POLLRDHUP };

	if (uv_fileno((const uv_handle_t *)p, &pfd.fd) < 0)
		return false;
	return poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLHUP | POLLRDHUP));
}

/*
 * libuv reports POLLRDHUP (and a POLLHUP that comes alone) as UV_DISCONNECT,
 * which the host asks for only when the driver asked for HUP. POLLERR
 * arrives as status UV_EBADF with the watch already stopped; a hung-up tty
 * reports POLLERR and POLLHUP together, so then the fd itself is asked
 * whether it hung up.
 */
static void on_poll(uv_poll_t *p, int status, int events) {
	struct m2m_io *io = p->data;
	int ev = 0;

	if (status < 0) {
		if ((io->events & M2M_IO_HUP) && hung_up(p))
			ev |= M2M_IO_HUP;
		/* ABI 1.0: an error is reported as readable, and the driver's read sees it. */
		ev |= (io->events & M2M_IO_ERR) ? M2M_IO_ERR : M2M_IO_READ;
	} else {
		if (events & UV_READABLE)
			ev |= M2M_IO_READ;
		if (events & UV_WRITABLE)
			ev |= M2M_IO_WRITE;
		if (events & UV_DISCONNECT)
			ev |= M2M_IO_HUP;
		ev &= io->events;
	}
	if (ev)
		io->cb(io, ev, io->arg);
}

static int uv_events(int events) {
	return ((events & M2M_IO_READ) ? UV_READABLE : 0) | ((events & M2M_IO_WRITE) ? UV_WRITABLE : 0) |
	       ((events & M2M_IO_HUP) ? UV_DISCONNECT : 0);
}

/*
 * What a watch may ask for: ERR only beside something libuv can watch
 * (libuv starts no watch for ERR alone). 0 is allowed for io_update (pause).
 */
static bool io_events_valid(int events) {
	const int all = M2M_IO_READ | M2M_IO_WRITE | M2M_IO_HUP | M2M_IO_ERR;

	return (events & ~all) == 0 && (events == 0 || (events & (all & ~M2M_IO_ERR)));
}

static int h_io_start(m2m_host *drv, int fd, int events, m2m_io_cb cb, void *arg, m2m_io **ret) {
	struct m2m_io *io;
	int err;

	if (!cb || fd < 0 || !drv->core->loop || drv->creating || !io_events_valid(events))
		return -EINVAL;
	io = calloc(1, sizeof(*io));
	if (!io)
		return -ENOMEM;
	err = uv_poll_init(drv->core->loop, &io->p, fd);
	if (err < 0) {
		free(io);
		return err;
	}
	io->p.data = io;
	io->drv = drv;
	io->cb = cb;
	io->arg = arg;
	io->events = events;
	err = uv_poll_start(&io->p, uv_events(events), on_poll);
	if (err < 0) {
		uv_close((uv_handle_t *)&io->p, timer_free);
		return err;
	}
	LIST_PREPEND(drv->ios, io);
	*ret = io;
	return 0;
}

/* Also starts a watch again that an error stopped (M2M_IO_ERR). */
static int h_io_update(m2m_io *io, int events) {
	if (!io || !io_events_valid(events))
		return -EINVAL;
	io->events = events;
	if (events == 0)
		return uv_poll_stop(&io->p);
	return uv_poll_start(&io->p, uv_events(events), on_poll);
}

static void h_io_stop(m2m_io *io) {
	if (!io)
		return;
	LIST_REMOVE(io->drv->ios, io);
	uv_poll_stop(&io->p);
	uv_close((uv_handle_t *)&io->p, timer_free);
}

/* --- bus threads --- */

static int h_bus_open(m2m_host *drv, const char *name, m2m_bus **ret) {
	struct host_bus *hb;
	int err;

	if (!name || !*name || !drv->core->loop || drv->creating || drv->state == DRIVER_STOPPING)
		return -EINVAL;
	for (hb = drv->buses; hb; hb = hb->next)
		if (strcmp(bus_name(hb->bus), name) == 0) {
			*ret = hb->bus;
			return 0;
		}
	hb = calloc(1, sizeof(*hb));
	if (!hb)
		return -ENOMEM;
	err = bus_new(drv->core->loop, name, &hb->bus);
	if (err < 0) {
		free(hb);
		return err;
	}
	hb->next = drv->buses;
	drv->buses = hb;
	*ret = hb->bus;
	return 0;
}

/* --- writes (write.c) --- */

static void h_write_done(m2m_write *w, int status, const char *error_text) {
	if (!w || w->completed) {
		log_error("a driver completed a write twice; ignoring the second completion");
		return;
	}
	w->completed = true;
	w->status = status > 0 ? 0 : status;
	if (error_text)
		w->error_text = strdup(error_text);
	if (!w->in_call)
		write_finish(w);
}

const struct m2m_host_api host_api = {
	.struct_size = sizeof(struct m2m_host_api),
	.abi_major = M2M_ABI_MAJOR,
	.abi_minor = M2M_ABI_MINOR,
	.log = h_log,
	.now_us = h_now_us,
	.mono_us = h_mono_us,
	.cfg_string = h_cfg_string,
	.cfg_int = h_cfg_int,
	.cfg_double = h_cfg_double,
	.cfg_bool = h_cfg_bool,
	.cfg_duration = h_cfg_duration,
	.cfg_enum = h_cfg_enum,
	.cfg_item = h_cfg_item,
	.cfg_error = h_cfg_error,
	.declare_point = h_declare_point,
	.submit = h_submit_chunked,
	.submit_text = h_submit_text,
	.event = host_event,
	.stat = h_stat,
	.timer_start = h_timer_start,
	.timer_stop = h_timer_stop,
	.io_start = h_io_start,
	.io_update = h_io_update,
	.io_stop = h_io_stop,
	.bus_open = h_bus_open,
	.bus_submit = bus_submit,
	.bus_pending = bus_pending,
	.write_done = h_write_done,
	.timer_update = h_timer_update,
	.device_state = h_device_state,
	.stat_declare = h_stat_declare,
	.stat_set = h_stat_set,
};

void host_reclaim_handles(struct m2m_host *drv) {
	/* A well-behaved plugin holds nothing after stop(). */
	while (drv->timers)
		h_timer_stop(drv->timers);
	while (drv->ios)
		h_io_stop(drv->ios);
}
