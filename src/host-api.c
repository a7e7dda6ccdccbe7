/* SPDX-License-Identifier: MIT */
/*
 * The m2m_host_api table and its trampolines: what a plugin can ask of the
 * host. Each h_* function checks what the ABI promises (only during
 * create, loop thread, ids this instance declared) and hands the work to
 * the core: the registry, storage, the sinks, the loop and the bus threads.
 */
#include "host-api.h"

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
int host_submit(m2m_host *drv, const struct m2m_reading *r, size_t n) {
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

/* What plugins call: big submits reach host_submit in chunks (submit-queue.h). */
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

void host_event(m2m_host *drv, const char *device, const char *kind, const char *text) {
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

static size_t stat_index(const struct m2m_host *drv, const char *name) {
	for (size_t i = 0; i < drv->n_stats; i++)
		if (strcmp(drv->stats[i].name, name) == 0)
			return i;
	return SIZE_MAX;
}

static void h_stat(m2m_host *drv, const char *name, double value) {
	size_t i = stat_index(drv, name);
	struct driver_stat *v;

	if (i != SIZE_MAX) {
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
	v[drv->n_stats].kind = M2M_STAT_GAUGE;
	drv->n_stats++;
}

/* True for a statistic's name: [a-z0-9_], 1..63 bytes, as Prometheus takes it. */
static bool stat_name_valid(const char *name) {
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n >= sizeof(((struct driver_stat *)0)->name))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
		      name[i] == '_'))
			return false;
	return true;
}

static int h_stat_declare(m2m_host *drv, const char *name, const char *device, int kind,
                          const char *help, m2m_stat **ret) {
	char full[2 * sizeof(((struct driver_stat *)0)->name)];
	struct m2m_stat *st;

	if (!stat_name_valid(name) || (kind != M2M_STAT_COUNTER && kind != M2M_STAT_GAUGE) ||
	    (device && !*device))
		return -EINVAL;
	for (st = drv->declared_stats; st; st = st->next)
		if (strcmp(st->base, name) == 0 &&
		    (st->device ? device && strcmp(st->device, device) == 0 : !device)) {
			*ret = st;
			return 0;
		}
	/* Shown as "name.device" beside the 1.0 statistics, which status already lists that way. */
	if ((size_t)snprintf(full, sizeof(full), device ? "%s.%s" : "%s", name, device) >=
	    sizeof(((struct driver_stat *)0)->name))
		return -ENAMETOOLONG;
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->drv = drv;
	st->kind = kind;
	snprintf(st->base, sizeof(st->base), "%s", name);
	st->device = device ? strdup(device) : NULL;
	st->help = strdup(help ? help : "");
	if ((device && !st->device) || !st->help)
		goto nomem;
	h_stat(drv, full, 0);
	st->index = stat_index(drv, full);
	if (st->index == SIZE_MAX) /* the bound of h_stat, or no memory */
		goto nomem;
	drv->stats[st->index].kind = kind;
	st->next = drv->declared_stats;
	drv->declared_stats = st;
	*ret = st;
	return 0;
nomem:
	free(st->device);
	free(st->help);
	free(st);
	return -ENOMEM;
}

static void h_stat_set(m2m_stat *st, double value) {
	if (st)
		st->drv->stats[st->index].value = value;
}

static struct device_status *device_find(struct m2m_host *drv, const char *device, bool add) {
	struct device_status *v;

	for (size_t i = 0; i < drv->n_devices; i++)
		if ((!device && !drv->devices[i].name) ||
		    (device && drv->devices[i].name && strcmp(drv->devices[i].name, device) == 0))
			return &drv->devices[i];
	/* A bound, as for statistics: a driver cannot grow the host without end. */
	if (!add || drv->n_devices >= 4096)
		return NULL;
	v = realloc(drv->devices, (drv->n_devices + 1) * sizeof(*v));
	if (!v)
		return NULL;
	drv->devices = v;
	v = &drv->devices[drv->n_devices];
	memset(v, 0, sizeof(*v));
	v->state = -1;
	if (device && !(v->name = strdup(device)))
		return NULL;
	drv->n_devices++;
	return v;
}

static void h_device_state(m2m_host *drv, const char *device, int state, const char *reason) {
	struct device_status *ds;
	const char *word;

	if (state != M2M_DEVICE_ONLINE && state != M2M_DEVICE_OFFLINE)
		return;
	ds = device_find(drv, device, true);
	if (!ds)
		return;
	if (state == M2M_DEVICE_ONLINE)
		reason = NULL;
	if (ds->state == state && strcmp(ds->reason, reason ? reason : "") == 0)
		return;
	ds->state = state;
	snprintf(ds->reason, sizeof(ds->reason), "%s", reason ? reason : "");
	ds->since_us = now_us();
	word = state == M2M_DEVICE_ONLINE ? "online" : "offline";
	host_event(drv, device, word, reason);
}

void host_state_free(struct m2m_host *drv) {
	struct m2m_stat *st;

	while ((st = drv->declared_stats)) {
		drv->declared_stats = st->next;
		free(st->device);
		free(st->help);
		free(st);
	}
	for (size_t i = 0; i < drv->n_devices; i++)
		free(drv->devices[i].name);
	free(drv->devices);
	drv->devices = NULL;
	drv->n_devices = 0;
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

static int h_timer_update(m2m_timer *tm, uint64_t timeout_ms, uint64_t repeat_ms) {
	if (!tm)
		return -EINVAL;
	return uv_timer_start(&tm->t, on_timer, timeout_ms, repeat_ms);
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

	if (status < 0) {
		/*
		 * POLLERR: libuv has stopped the watch. A driver that asked for ERR
		 * learns it as such; a 1.0 driver sees it as readable, and its read
		 * returns the error.
		 */
		ev |= (io->events & M2M_IO_ERR) ? M2M_IO_ERR : M2M_IO_READ;
	}
	if (events & UV_DISCONNECT)
		ev |= (io->events & M2M_IO_HUP) ? M2M_IO_HUP : M2M_IO_READ;
	if (events & UV_READABLE)
		ev |= M2M_IO_READ;
	if (events & UV_WRITABLE)
		ev |= M2M_IO_WRITE;
	/* Only what the driver asked for, so a READ-less watch is not woken by a hang-up. */
	ev &= io->events | M2M_IO_ERR | M2M_IO_HUP;
	if (ev)
		io->cb(io, ev, io->arg);
}

static int uv_events(int events) {
	/* A hang-up is asked of libuv whenever the driver reads or asked for HUP. */
	return ((events & M2M_IO_READ) ? UV_READABLE : 0) | ((events & M2M_IO_WRITE) ? UV_WRITABLE : 0) |
	       ((events & (M2M_IO_READ | M2M_IO_HUP)) ? UV_DISCONNECT : 0);
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

static int h_io_update(m2m_io *io, int events) {
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

void host_fail_writes(struct m2m_host *drv, int status) {
	/* A write the plugin never completed is answered, so no caller waits forever. */
	while (drv->writes) {
		struct m2m_write *w = drv->writes;
		w->completed = true;
		w->status = status;
		write_finish(w);
	}
}
