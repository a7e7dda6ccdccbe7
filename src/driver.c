/* SPDX-License-Identifier: MIT */
#include "driver.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "error.h"
#include "log.h"
#include "util.h"

struct m2m_timer {
	uv_timer_t t;
	struct m2m_host *drv;
	m2m_timer_cb cb;
	void *arg;
	struct m2m_timer *prev, *next;
};

struct m2m_io {
	uv_poll_t p;
	struct m2m_host *drv;
	m2m_io_cb cb;
	void *arg;
	struct m2m_io *prev, *next;
};

struct host_bus {
	m2m_bus *bus;
	struct host_bus *next;
};

struct m2m_write {
	struct m2m_host *drv;
	struct m2m_write *prev, *next;
	uint32_t point;
	double value; /* engineering units, for the event row */
	char *origin;
	daemon_write_cb cb;
	void *arg;
	bool in_call;   /* inside ops->write() */
	bool completed; /* write_done() was called */
	int status;
	char *error_text;
};

/* Doubly linked lists of timers, watches and writes, so stop can reclaim them. */
#define LIST_PREPEND(head, item)          \
	do {                              \
		(item)->prev = NULL;      \
		(item)->next = (head);    \
		if (head)                 \
			(head)->prev = (item); \
		(head) = (item);          \
	} while (0)
#define LIST_REMOVE(head, item)                         \
	do {                                            \
		if ((item)->prev)                       \
			(item)->prev->next = (item)->next; \
		else                                    \
			(head) = (item)->next;          \
		if ((item)->next)                       \
			(item)->next->prev = (item)->prev; \
		(item)->prev = (item)->next = NULL;     \
	} while (0)

const char *driver_state_name(enum driver_state s) {
	switch (s) {
	case DRIVER_CREATED:
		return "created";
	case DRIVER_RUNNING:
		return "running";
	case DRIVER_FAILED:
		return "failed";
	case DRIVER_STOPPING:
		return "stopping";
	}
	return "unknown";
}

/* --- logging and time --- */

static void h_log(m2m_host *drv, int level, const char *fmt, ...) {
	char msg[sizeof(drv->last_error)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* The last error a driver logged is what status shows as its last error. */
	if (level <= M2M_LOG_ERR)
		snprintf(drv->last_error, sizeof(drv->last_error), "%s", msg);
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

static struct m2m_reading *batch_reserve(struct daemon *d, size_t n) {
	if (n > d->batch_cap) {
		struct m2m_reading *b = realloc(d->batch, n * sizeof(*b));
		if (!b)
			return NULL;
		d->batch = b;
		d->batch_cap = n;
	}
	return d->batch;
}

/*
 * The hot path: every reading of every driver passes here once. It checks
 * the id, normalizes, and hands what passes the deadband to storage in one
 * call per submit().
 */
static int h_submit(m2m_host *drv, const struct m2m_reading *r, size_t n) {
	struct daemon *d = drv->d;
	struct m2m_reading *batch;
	size_t stored = 0, rejected = 0, unstored = 0, room;
	int64_t ts = 0, mono = 0;

	if (drv->state != DRIVER_RUNNING)
		return -ESHUTDOWN;
	if (n == 0)
		return 0;
	if (n > INT32_MAX)
		return -E2BIG;
	batch = batch_reserve(d, n);
	if (!batch)
		return -ENOMEM;
	if (d->rules)
		mono = mono_us();
	/*
	 * What the queue takes is decided before anything is published, and
	 * the durable messages are staged to be queued with their readings:
	 * the QoS 1 stream then carries exactly the readings that commit.
	 */
	room = store_queue_room(d->store);
	store_stage_begin(d->store);
	for (size_t i = 0; i < n; i++) {
		struct point *p = registry_get(d->reg, r[i].point);
		struct m2m_reading rr = r[i];

		if (!p || p->owner != drv || p->a.kind == POINT_STRING) {
			rejected++;
			continue;
		}
		if (rr.ts_us == 0)
			rr.ts_us = ts ? ts : (ts = now_us());
		if (point_normalize(p, &rr)) {
			bool take = stored < room;
			if (take)
				batch[stored++] = rr;
			else
				unstored++;
			/* What is stored is what is published: one deadband for both. */
			if (d->mqtt)
				mqtt_on_reading(d->mqtt, p, &rr, NULL, take);
		}
		/* Rules see every reading, not only what the deadband lets through. */
		if (d->rules)
			rules_on_reading(d->rules, p, &rr, mono);
		if (d->ctl)
			ctl_server_on_reading(d->ctl, p, &rr, NULL);
	}
	if (d->rules)
		daemon_rules_schedule(d);
	d->readings_in += n - rejected;
	drv->readings += n - rejected;
	if (d->store) {
		store_put_readings(d->store, batch, stored);
		store_count_dropped(d->store, unstored);
	}
	d->readings_stored += stored;
	if (rejected) {
		d->readings_rejected += rejected;
		return -EINVAL;
	}
	return (int)n;
}

/* What plugins call: big submits reach h_submit in chunks (submit-queue.h). */
static int h_submit_chunked(m2m_host *drv, const struct m2m_reading *r, size_t n) {
	return submit_queue_put(&drv->submits, r, n);
}

static int h_submit_text(m2m_host *drv, uint32_t id, int64_t ts_us, const char *text,
                         uint16_t quality, uint16_t detail) {
	struct daemon *d = drv->d;
	struct point *p = registry_get(d->reg, id);
	bool changed;
	char *copy;

	if (drv->state != DRIVER_RUNNING)
		return -ESHUTDOWN;
	if (!p || p->owner != drv || p->a.kind != POINT_STRING || !text) {
		d->readings_rejected++;
		return -EINVAL;
	}
	copy = strndup(text, 255);
	if (!copy)
		return -ENOMEM;
	if (ts_us == 0)
		ts_us = now_us();
	changed = !p->text || strcmp(p->text, copy) != 0 || p->quality != quality || !p->has_value;
	free(p->text);
	p->text = copy;
	p->ts_us = ts_us;
	p->quality = quality;
	p->detail = detail;
	p->value = NAN;
	p->has_value = true;
	p->readings++;
	d->readings_in++;
	drv->readings++;
	/* A text point has no deadband: it is stored when it changes. */
	if (changed) {
		struct m2m_reading r = { .ts_us = ts_us, .value = NAN, .point = id, .quality = quality,
		                         .detail = detail };
		/* As in h_submit: the message is staged and queued with its row. */
		bool take = store_queue_room(d->store) > 0;
		store_stage_begin(d->store);
		if (d->mqtt)
			mqtt_on_reading(d->mqtt, p, &r, copy, take);
		if (take && d->store)
			store_put_text(d->store, id, ts_us, copy, quality);
		store_stage_end(d->store);
		if (!take)
			store_count_dropped(d->store, 1);
		if (d->ctl)
			ctl_server_on_reading(d->ctl, p, &r, copy);
		if (take)
			d->readings_stored++;
	}
	return 1;
}

/* --- status --- */

static void h_event(m2m_host *drv, const char *device, const char *kind, const char *text) {
	struct store_event e = {
		.ts_us = now_us(),
		.kind = kind ? kind : "device",
		.source = device ? device : drv->name,
		.value = NAN,
		.text = text,
	};

	log_notice("driver %s: %s%s%s%s%s", drv->name, device ? device : "", device ? " " : "",
	           e.kind, text ? ": " : "", text ? text : "");
	if (drv->d->store)
		store_put_event(drv->d->store, &e);
}

static void h_stat(m2m_host *drv, const char *name, double value) {
	struct driver_stat *v;

	for (size_t i = 0; i < drv->n_stats; i++)
		if (strcmp(drv->stats[i].name, name) == 0) {
			drv->stats[i].value = value;
			return;
		}
	/* A bound, so a driver that invents names per reading cannot grow us without end. */
	if (drv->n_stats >= 1024)
		return;
	v = realloc(drv->stats, (drv->n_stats + 1) * sizeof(*v));
	if (!v)
		return;
	drv->stats = v;
	snprintf(v[drv->n_stats].name, sizeof(v[drv->n_stats].name), "%s", name);
	v[drv->n_stats].value = value;
	drv->n_stats++;
}

/* --- timers and fd watches --- */

static void timer_free(uv_handle_t *h) {
	free(h->data);
}

static void on_timer(uv_timer_t *t) {
	struct m2m_timer *tm = t->data;
	tm->cb(tm, tm->arg);
}

static int h_timer_start(m2m_host *drv, uint64_t timeout_ms, uint64_t repeat_ms, m2m_timer_cb cb,
                         void *arg, m2m_timer **ret) {
	struct m2m_timer *tm;
	int err;

	/* create() parses only; timers, watches and buses belong to start(). */
	if (!cb || !drv->d->loop || drv->creating)
		return -EINVAL;
	tm = calloc(1, sizeof(*tm));
	if (!tm)
		return -ENOMEM;
	err = uv_timer_init(drv->d->loop, &tm->t);
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

static void h_timer_stop(m2m_timer *tm) {
	if (!tm)
		return;
	LIST_REMOVE(tm->drv->timers, tm);
	uv_timer_stop(&tm->t);
	uv_close((uv_handle_t *)&tm->t, timer_free);
}

static void on_poll(uv_poll_t *p, int status, int events) {
	struct m2m_io *io = p->data;
	int ev = 0;

	/* An error on the fd is reported as readable: the driver's read sees it. */
	if (status < 0 || (events & (UV_READABLE | UV_DISCONNECT)))
		ev |= M2M_IO_READ;
	if (events & UV_WRITABLE)
		ev |= M2M_IO_WRITE;
	io->cb(io, ev, io->arg);
}

static int uv_events(int events) {
	return ((events & M2M_IO_READ) ? UV_READABLE : 0) | ((events & M2M_IO_WRITE) ? UV_WRITABLE : 0);
}

static int h_io_start(m2m_host *drv, int fd, int events, m2m_io_cb cb, void *arg, m2m_io **ret) {
	struct m2m_io *io;
	int err;

	if (!cb || fd < 0 || !drv->d->loop || drv->creating)
		return -EINVAL;
	io = calloc(1, sizeof(*io));
	if (!io)
		return -ENOMEM;
	err = uv_poll_init(drv->d->loop, &io->p, fd);
	if (err < 0) {
		free(io);
		return err;
	}
	io->p.data = io;
	io->drv = drv;
	io->cb = cb;
	io->arg = arg;
	err = uv_poll_start(&io->p, uv_events(events), on_poll);
	if (err < 0) {
		uv_close((uv_handle_t *)&io->p, timer_free);
		return err;
	}
	LIST_PREPEND(drv->ios, io);
	*ret = io;
	return 0;
}

static int h_io_update(m2m_io *io, int events) {
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

	if (!name || !*name || !drv->d->loop || drv->creating || drv->state == DRIVER_STOPPING)
		return -EINVAL;
	for (hb = drv->buses; hb; hb = hb->next)
		if (strcmp(bus_name(hb->bus), name) == 0) {
			*ret = hb->bus;
			return 0;
		}
	hb = calloc(1, sizeof(*hb));
	if (!hb)
		return -ENOMEM;
	err = bus_new(drv->d->loop, name, &hb->bus);
	if (err < 0) {
		free(hb);
		return err;
	}
	hb->next = drv->buses;
	drv->buses = hb;
	*ret = hb->bus;
	return 0;
}

/* --- writes --- */

static void write_finish(struct m2m_write *w) {
	struct m2m_host *drv = w->drv;
	struct daemon *d = drv->d;
	const char *text = w->error_text ? w->error_text : (w->status < 0 ? m2m_strerror(w->status) : NULL);
	struct store_event e = {
		.ts_us = now_us(),
		.kind = "write",
		.source = w->origin,
		.point = w->point,
		.value = w->value,
		.to_state = w->status < 0 ? "error" : "ok",
		.text = text,
	};
	struct point *p = registry_get(d->reg, w->point);

	LIST_REMOVE(drv->writes, w);
	if (w->status < 0) {
		d->writes_failed++;
		log_warning("write %s = %g from %s failed: %s", p ? p->name : "?", w->value, w->origin,
		            text);
	} else {
		d->writes_ok++;
		log_info("write %s = %g from %s: ok", p ? p->name : "?", w->value, w->origin);
	}
	if (d->store)
		store_put_event(d->store, &e);
	if (w->cb)
		w->cb(w->status, text, w->arg);
	free(w->origin);
	free(w->error_text);
	free(w);
}

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

int driver_write(struct m2m_host *drv, const char *origin, struct point *p, double value,
                 daemon_write_cb cb, void *arg) {
	const struct m2m_driver_ops *ops = drv->plugin->desc->ops;
	struct m2m_write *w;
	int err;

	if (drv->state != DRIVER_RUNNING)
		return M2M_EDRIVERDOWN;
	if (!ops->write)
		return -EOPNOTSUPP;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->origin = strdup(origin ? origin : "unknown");
	if (!w->origin) {
		free(w);
		return -ENOMEM;
	}
	w->drv = drv;
	w->point = p->id;
	w->value = value;
	w->cb = cb;
	w->arg = arg;
	LIST_PREPEND(drv->writes, w);

	w->in_call = true;
	err = ops->write(drv->impl, p->id, point_to_raw(p, value), w);
	w->in_call = false;
	if (!w->completed) {
		if (err >= 0)
			return 0; /* completes later */
		w->completed = true;
		w->status = err;
	}
	write_finish(w);
	return 0;
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
	.event = h_event,
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
};

/* --- lifecycle --- */

static void driver_free(struct m2m_host *drv) {
	if (!drv)
		return;
	for (size_t i = 0; i < drv->n_points; i++)
		point_attrs_done(&drv->points[i].attrs);
	submit_queue_done(&drv->submits);
	free(drv->points);
	free(drv->stats);
	plugin_put(&drv->d->plugins, drv->plugin);
	config_ref_put(drv->cfg);
	free(drv->name);
	free(drv);
}

int driver_create(struct daemon *d, registry *reg, bool validating, struct config_ref *cfg,
                  const struct driver_conf *conf, struct m2m_host **ret, char **ret_error) {
	struct m2m_host *drv;
	int err;

	*ret_error = NULL;
	drv = calloc(1, sizeof(*drv));
	if (!drv)
		return -ENOMEM;
	drv->d = d;
	drv->reg = reg;
	drv->validating = validating;
	submit_queue_init(&drv->submits, validating ? NULL : d->loop, h_submit, drv);
	drv->cfg = config_ref_get(cfg);
	drv->section = conf->section;
	drv->restart_min_us = conf->restart_min_us;
	drv->restart_max_us = conf->restart_max_us;
	drv->name = strdup(conf->name);
	if (!drv->name) {
		driver_free(drv);
		return -ENOMEM;
	}
	err = plugin_get(&d->plugins, conf->plugin_dir, conf->plugin, &drv->plugin, ret_error);
	if (err < 0) {
		/* The plugin's name in the config is where the user looks. */
		if (*ret_error) {
			config_error(cfg->c, cJSON_GetObjectItemCaseSensitive(conf->section, "plugin"), "%s",
			             *ret_error);
			free(*ret_error);
			*ret_error = NULL;
		}
		driver_free(drv);
		return err;
	}
	drv->creating = true;
	err = drv->plugin->desc->ops->create(drv, &host_api, conf->section, &drv->impl);
	drv->creating = false;
	if (err < 0) {
		if (!config_last_error(cfg->c))
			config_error(cfg->c, conf->section, "driver \"%s\" (plugin %s) refused its configuration: %s",
			             conf->name, conf->plugin, m2m_strerror(err));
		driver_free(drv);
		return err;
	}
	drv->state = DRIVER_CREATED;
	*ret = drv;
	return 0;
}

/* Takes back what a stopped plugin still holds; a well-behaved one holds nothing. */
static void reclaim_handles(struct m2m_host *drv) {
	while (drv->timers)
		h_timer_stop(drv->timers);
	while (drv->ios)
		h_io_stop(drv->ios);
}

static void schedule_retry(struct m2m_host *drv);

static void on_retry(uv_timer_t *t) {
	struct m2m_host *drv = t->data;

	if (drv->state == DRIVER_FAILED)
		driver_start(drv);
}

static void claim_points(struct m2m_host *drv) {
	struct daemon *d = drv->d;

	for (size_t i = 0; i < drv->n_points; i++) {
		struct declared_point *dp = &drv->points[i];
		struct point *p = registry_get(d->reg, dp->id);
		static const char *const kinds[] = { "number", "bool", "string" };

		if (!p)
			continue;
		/* The config's attributes become the point's; the instance keeps none. */
		point_attrs_done(&p->a);
		p->a = dp->attrs;
		memset(&dp->attrs, 0, sizeof(dp->attrs));
		p->owner = drv;
		p->declared = true;
		p->has_stored = false;
		if (d->store)
			store_put_point(d->store, p->id, p->name, p->a.unit, kinds[p->a.kind]);
	}
}

void driver_start(struct m2m_host *drv) {
	struct daemon *d = drv->d;
	char delay[32];
	int err;

	if (drv->starts == 0 && drv->failures == 0)
		claim_points(drv);
	drv->last_error[0] = '\0';
	drv->state = DRIVER_RUNNING;
	drv->starts++;
	err = drv->plugin->desc->ops->start(drv->impl);
	if (err >= 0) {
		if (drv->failures)
			log_notice("driver %s: started after %u failed attempts", drv->name, drv->failures);
		else
			log_info("driver %s: started (plugin %s %s)", drv->name, drv->plugin->name,
			         drv->plugin->desc->version ? drv->plugin->desc->version : "");
		drv->failures = 0;
		drv->backoff_us = 0;
		h_event(drv, NULL, "running", NULL);
		return;
	}
	drv->failures++;
	if (!drv->last_error[0])
		snprintf(drv->last_error, sizeof(drv->last_error), "%s", m2m_strerror(err));
	drv->plugin->desc->ops->stop(drv->impl);
	reclaim_handles(drv);
	drv->state = DRIVER_FAILED;
	drv->backoff_us = drv->backoff_us ? drv->backoff_us * 2 : drv->restart_min_us;
	if (drv->backoff_us > drv->restart_max_us)
		drv->backoff_us = drv->restart_max_us;
	log_error("driver %s: start failed: %s; retrying in %s", drv->name, drv->last_error,
	          format_duration(drv->backoff_us, delay, sizeof(delay)));
	h_event(drv, NULL, "failed", drv->last_error);
	(void)d;
	schedule_retry(drv);
}

static void schedule_retry(struct m2m_host *drv) {
	if (!drv->retry_timer_open) {
		if (uv_timer_init(drv->d->loop, &drv->retry_timer) < 0)
			return;
		drv->retry_timer.data = drv;
		drv->retry_timer_open = true;
	}
	uv_timer_start(&drv->retry_timer, on_retry, (uint64_t)(drv->backoff_us / 1000), 0);
}

static void finish_destroy(struct m2m_host *drv) {
	struct daemon *d = drv->d;

	drv->plugin->desc->ops->destroy(drv->impl);
	drv->impl = NULL;
	/* A write the plugin never completed is answered here, so no caller waits forever. */
	while (drv->writes) {
		struct m2m_write *w = drv->writes;
		w->completed = true;
		w->status = M2M_EDRIVERDOWN;
		write_finish(w);
	}
	for (uint32_t id = 1; id < registry_end(d->reg); id++) {
		struct point *p = registry_get(d->reg, id);
		if (p && p->owner == drv) {
			p->owner = NULL;
			p->declared = false;
		}
	}
	if (drv->on_destroyed)
		drv->on_destroyed(drv, drv->on_destroyed_arg);
	driver_free(drv);
}

static void on_retry_closed(uv_handle_t *h) {
	finish_destroy(h->data);
}

static void maybe_destroy(struct m2m_host *drv) {
	if (drv->buses_closing > 0)
		return;
	if (drv->retry_timer_open) {
		drv->retry_timer_open = false;
		uv_close((uv_handle_t *)&drv->retry_timer, on_retry_closed);
		return;
	}
	finish_destroy(drv);
}

static void on_bus_closed(void *arg) {
	struct m2m_host *drv = arg;

	drv->buses_closing--;
	maybe_destroy(drv);
}

void driver_stop(struct m2m_host *drv, void (*on_destroyed)(struct m2m_host *, void *), void *arg) {
	struct host_bus *hb;

	drv->on_destroyed = on_destroyed;
	drv->on_destroyed_arg = arg;
	if (drv->state == DRIVER_RUNNING) {
		/* What the driver submitted reaches the core before it stops: a reload loses nothing. */
		submit_queue_flush(&drv->submits);
		drv->plugin->desc->ops->stop(drv->impl);
		h_event(drv, NULL, "stopped", NULL);
	}
	if (drv->retry_timer_open)
		uv_timer_stop(&drv->retry_timer);
	reclaim_handles(drv);
	drv->state = DRIVER_STOPPING;
	/* Count first: a bus may report closed before the loop below ends. */
	for (hb = drv->buses; hb; hb = hb->next)
		drv->buses_closing++;
	while ((hb = drv->buses)) {
		drv->buses = hb->next;
		bus_close(hb->bus, on_bus_closed, drv);
		free(hb);
	}
	maybe_destroy(drv);
}

void driver_discard(struct m2m_host *drv) {
	if (!drv)
		return;
	if (drv->impl)
		drv->plugin->desc->ops->destroy(drv->impl);
	driver_free(drv);
}
