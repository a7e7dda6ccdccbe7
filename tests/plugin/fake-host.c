/* SPDX-License-Identifier: MIT */
/*
 * fake-host.c - the host table of m2m/plugin.h over memory, for driver unit
 * tests (see fake-host.h). Durations are parsed by the daemon's own
 * parse_duration (src/util.c), so a driver sees the same values as in m2md.
 */
#include "fake-host.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "util.h"

/* --- config --- */

static void mark(m2m_host *h, const cJSON *obj, const char *key)
{
	if (h->n_marked == h->cap_marked) {
		h->cap_marked = h->cap_marked ? 2 * h->cap_marked : 256;
		h->marked = realloc(h->marked, h->cap_marked * sizeof(*h->marked));
		ASSERT(h->marked);
	}
	h->marked[h->n_marked++] = (struct fake_key){ obj, key };
}

static bool marked(const m2m_host *h, const cJSON *obj, const char *key)
{
	for (size_t i = 0; i < h->n_marked; i++)
		if (h->marked[i].obj == obj && strcmp(h->marked[i].key, key) == 0)
			return true;
	return false;
}

/* Looks KEY up and marks it known, present or not, as src/config.c does. */
static const cJSON *lookup(m2m_host *h, const cJSON *obj, const char *key)
{
	if (!obj || !cJSON_IsObject(obj))
		return NULL;
	mark(h, obj, key);
	return cJSON_GetObjectItemCaseSensitive(obj, key);
}

/* Counts unknown keys under ITEM; a table nobody asked for counts once. */
static int count_unknown(m2m_host *h, const cJSON *item)
{
	const cJSON *child;
	int n = 0;

	cJSON_ArrayForEach(child, item) {
		if (cJSON_IsObject(item) && child->string && !marked(h, item, child->string)) {
			if (!h->unknown[0])
				snprintf(h->unknown, sizeof(h->unknown), "%s", child->string);
			fprintf(stderr, "fake host: unknown key '%s'\n", child->string);
			n++;
			continue;
		}
		if (cJSON_IsObject(child) || cJSON_IsArray(child))
			n += count_unknown(h, child);
	}
	return n;
}

int fake_host_unknown_keys(m2m_host *h)
{
	h->unknown[0] = '\0';
	if (!h->config)
		return 0;
	mark(h, h->config, "plugin");
	return count_unknown(h, h->config);
}

M2M_PRINTF(3, 4)
static int h_cfg_error(m2m_host *h, const struct cJSON *item, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	(void)item;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "fake host: config error: %s\n", msg);
	/* The real host keeps the first error. */
	if (h->errors++ == 0)
		snprintf(h->error, sizeof(h->error), "%s", msg);
	return -EINVAL;
}

static int h_cfg_string(m2m_host *h, const cJSON *obj, const char *key, const char *def,
                        const char **ret)
{
	const cJSON *it;

	if (!h->creating)
		return -EPERM;
	it = lookup(h, obj, key);
	*ret = def;
	if (!it)
		return 0;
	if (!cJSON_IsString(it))
		return h_cfg_error(h, it, "'%s': expected a string", key);
	*ret = it->valuestring;
	return 1;
}

static int h_cfg_int(m2m_host *h, const cJSON *obj, const char *key, int64_t def, int64_t min,
                     int64_t max, int64_t *ret)
{
	const cJSON *it;
	double v;

	if (!h->creating)
		return -EPERM;
	it = lookup(h, obj, key);
	*ret = def;
	if (!it)
		return 0;
	v = cJSON_IsNumber(it) ? it->valuedouble : NAN;
	if (!(v == floor(v)) || v < (double)min || v > (double)max)
		return h_cfg_error(h, it, "'%s': expected an integer from %" PRId64 " to %" PRId64,
		                   key, min, max);
	*ret = (int64_t)v;
	return 1;
}

static int h_cfg_double(m2m_host *h, const cJSON *obj, const char *key, double def, double *ret)
{
	const cJSON *it;

	if (!h->creating)
		return -EPERM;
	it = lookup(h, obj, key);
	*ret = def;
	if (!it)
		return 0;
	if (!cJSON_IsNumber(it))
		return h_cfg_error(h, it, "'%s': expected a number", key);
	*ret = it->valuedouble;
	return 1;
}

static int h_cfg_bool(m2m_host *h, const cJSON *obj, const char *key, int def, int *ret)
{
	const cJSON *it;

	if (!h->creating)
		return -EPERM;
	it = lookup(h, obj, key);
	*ret = def;
	if (!it)
		return 0;
	if (!cJSON_IsBool(it))
		return h_cfg_error(h, it, "'%s': expected true or false", key);
	*ret = cJSON_IsTrue(it);
	return 1;
}

static int h_cfg_duration(m2m_host *h, const cJSON *obj, const char *key, int64_t def_us,
                          int64_t *ret_us)
{
	const cJSON *it;
	int64_t v;

	if (!h->creating)
		return -EPERM;
	it = lookup(h, obj, key);
	*ret_us = def_us;
	if (!it)
		return 0;
	if (!cJSON_IsString(it) || parse_duration(it->valuestring, &v) < 0)
		return h_cfg_error(h, it, "'%s': expected a duration such as \"250ms\" or \"5s\"", key);
	*ret_us = v;
	return 1;
}

static int h_cfg_enum(m2m_host *h, const cJSON *obj, const char *key, const char *const *names,
                      int def, int *ret)
{
	const cJSON *it;

	if (!h->creating)
		return -EPERM;
	it = lookup(h, obj, key);
	*ret = def;
	if (!it)
		return 0;
	for (int i = 0; cJSON_IsString(it) && names[i]; i++) {
		if (strcmp(names[i], it->valuestring) == 0) {
			*ret = i;
			return 1;
		}
	}
	return h_cfg_error(h, it, "'%s': expected one of the names (%s, ...)", key, names[0]);
}

static const cJSON *h_cfg_item(m2m_host *h, const cJSON *obj, const char *key)
{
	return h->creating ? lookup(h, obj, key) : NULL;
}

/* --- points and readings --- */

static int h_declare_point(m2m_host *h, const char *device, const cJSON *obj, uint32_t *ret_id)
{
	static const char *const generic[] = {
		"unit", "writable", "min", "max", "scale", "offset", "deadband",
		"deadband_percent", "description", NULL,
	};
	struct fake_point *p;
	const char *name, *kind;
	int r;

	if (!h->creating)
		return -EPERM;
	r = h_cfg_string(h, obj, "name", NULL, &name);
	if (r < 0)
		return r;
	if (r == 0 || !*name)
		return h_cfg_error(h, obj, "missing key 'name'");
	if (device ? strchr(name, '/') != NULL : strchr(name, '/') == NULL)
		return h_cfg_error(h, obj, "point name \"%s\": expected %s", name,
		                   device ? "no '/' (the device is given)" : "device/point");
	r = h_cfg_string(h, obj, "kind", NULL, &kind);
	if (r < 0)
		return r;
	if (kind && strcmp(kind, "number") != 0 && strcmp(kind, "bool") != 0 &&
	    strcmp(kind, "string") != 0)
		return h_cfg_error(h, obj, "kind \"%s\": expected number, bool or string", kind);
	for (int i = 0; generic[i]; i++)
		(void)lookup(h, obj, generic[i]);
	ASSERT(h->n_points < FAKE_MAX_POINTS);
	p = &h->points[h->n_points];
	snprintf(p->name, sizeof(p->name), "%s%s%s", device ? device : "", device ? "/" : "", name);
	for (size_t i = 0; i < h->n_points; i++)
		if (strcmp(h->points[i].name, p->name) == 0)
			return h_cfg_error(h, obj, "a second point named \"%s\"", p->name);
	snprintf(p->kind, sizeof(p->kind), "%s", kind ? kind : "");
	/* Ids are not indexes: start high and step, like stable database ids. */
	p->id = 1000 + 7 * (uint32_t)h->n_points;
	h->n_points++;
	*ret_id = p->id;
	return 0;
}

static const struct fake_point *point_of(const m2m_host *h, uint32_t id)
{
	for (size_t i = 0; i < h->n_points; i++)
		if (h->points[i].id == id)
			return &h->points[i];
	return NULL;
}

static int h_submit(m2m_host *h, const struct m2m_reading *r, size_t n)
{
	ASSERT(!h->creating);
	for (size_t i = 0; i < n; i++)
		if (!point_of(h, r[i].point))
			TEST_FAIL("submit of point id %" PRIu32 ", which was never declared", r[i].point);
	if (h->n_readings + n > h->cap_readings) {
		size_t cap = h->cap_readings ? h->cap_readings : 1024;

		while (cap < h->n_readings + n)
			cap *= 2;
		h->readings = realloc(h->readings, cap * sizeof(*h->readings));
		ASSERT(h->readings);
		h->cap_readings = cap;
	}
	memcpy(&h->readings[h->n_readings], r, n * sizeof(*r));
	h->last_first = h->n_readings;
	h->last_n = n;
	h->n_readings += n;
	h->submits++;
	return (int)n;
}

static int h_submit_text(m2m_host *h, uint32_t point, int64_t ts_us, const char *text,
                         uint16_t quality, uint16_t detail)
{
	struct fake_text *t;

	ASSERT(!h->creating);
	if (!point_of(h, point))
		TEST_FAIL("submit_text of point id %" PRIu32 ", which was never declared", point);
	ASSERT(h->n_texts < FAKE_MAX_TEXTS);
	t = &h->texts[h->n_texts++];
	t->point = point;
	t->ts_us = ts_us ? ts_us : h->now_us;
	t->quality = quality;
	t->detail = detail;
	snprintf(t->text, sizeof(t->text), "%s", text ? text : "");
	return 0;
}

/* --- log, events, statistics, device states --- */

M2M_PRINTF(3, 4)
static void h_log(m2m_host *h, int level, const char *fmt, ...)
{
	struct fake_log *l;
	va_list ap;

	ASSERT(h->n_logs < FAKE_MAX_LOGS);
	l = &h->logs[h->n_logs++];
	l->level = level;
	va_start(ap, fmt);
	vsnprintf(l->text, sizeof(l->text), fmt, ap);
	va_end(ap);
	fprintf(stderr, "fake host: log <%d> %s\n", level, l->text);
}

static int64_t h_now_us(m2m_host *h)
{
	return h->now_us;
}

static int64_t h_mono_us(m2m_host *h)
{
	return h->mono_us;
}

static void h_event(m2m_host *h, const char *device, const char *kind, const char *text)
{
	struct fake_event *e;

	ASSERT(kind && *kind);
	ASSERT(h->n_events < FAKE_MAX_EVENTS);
	e = &h->events[h->n_events++];
	snprintf(e->device, sizeof(e->device), "%s", device ? device : "");
	snprintf(e->kind, sizeof(e->kind), "%s", kind);
	snprintf(e->text, sizeof(e->text), "%s", text ? text : "");
	fprintf(stderr, "fake host: event %s %s: %s\n", e->device, e->kind, e->text);
}

static struct m2m_stat *stat_find(const m2m_host *h, const char *name, const char *device,
                                  bool declared)
{
	for (size_t i = 0; i < h->n_stats; i++) {
		struct m2m_stat *s = h->stats[i];

		if (s->declared == declared && strcmp(s->name, name) == 0 &&
		    strcmp(s->device, device ? device : "") == 0)
			return s;
	}
	return NULL;
}

static struct m2m_stat *stat_add(m2m_host *h, const char *name, const char *device)
{
	struct m2m_stat *s = calloc(1, sizeof(*s));

	ASSERT(s);
	ASSERT(h->n_stats < FAKE_MAX_STATS);
	s->host = h;
	snprintf(s->name, sizeof(s->name), "%s", name);
	snprintf(s->device, sizeof(s->device), "%s", device ? device : "");
	h->stats[h->n_stats++] = s;
	return s;
}

static void h_stat(m2m_host *h, const char *name, double value)
{
	struct m2m_stat *s;

	ASSERT(name && strlen(name) <= 63);
	s = stat_find(h, name, NULL, false);
	if (!s) {
		s = stat_add(h, name, NULL);
		s->kind = M2M_STAT_GAUGE;
	}
	s->set = true;
	s->value = value;
}

/* What the ABI allows as a statistic's name: lower case, digits, '_'. */
static bool stat_name_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
		      name[i] == '_'))
			return false;
	return true;
}

static int h_stat_declare(m2m_host *h, const char *name, const char *device, int kind,
                          const char *help, m2m_stat **ret)
{
	struct m2m_stat *s;

	if (!name || !stat_name_valid(name))
		TEST_FAIL("stat_declare: \"%s\" is not a statistic name", name ? name : "(null)");
	if (kind != M2M_STAT_COUNTER && kind != M2M_STAT_GAUGE)
		TEST_FAIL("stat_declare %s: kind %d", name, kind);
	/* One family per name (docs/metrics.md): the same kind and help for every device. */
	for (size_t i = 0; i < h->n_stats; i++) {
		const struct m2m_stat *o = h->stats[i];

		if (o->declared && strcmp(o->name, name) == 0 &&
		    (o->kind != kind || strcmp(o->help, help ? help : "") != 0))
			TEST_FAIL("stat_declare %s: kind or help differs from an earlier declaration", name);
	}
	s = stat_find(h, name, device, true);
	if (!s) {
		s = stat_add(h, name, device);
		s->declared = true;
		s->kind = kind;
		snprintf(s->help, sizeof(s->help), "%s", help ? help : "");
	}
	ASSERT_EQ(s->kind, kind);
	*ret = s;
	return 0;
}

static void h_stat_set(m2m_stat *s, double value)
{
	ASSERT(s && s->declared);
	/* A counter only grows, until a restart. */
	if (s->kind == M2M_STAT_COUNTER && s->set && value < s->value)
		TEST_FAIL("counter %s.%s went down from %g to %g", s->name, s->device, s->value, value);
	s->set = true;
	s->value = value;
}

static void h_device_state(m2m_host *h, const char *device, int state, const char *reason)
{
	struct fake_state *st;

	ASSERT(state == M2M_DEVICE_ONLINE || state == M2M_DEVICE_OFFLINE);
	ASSERT(h->n_states < FAKE_MAX_STATES);
	st = &h->states[h->n_states++];
	snprintf(st->device, sizeof(st->device), "%s", device ? device : "");
	st->state = state;
	snprintf(st->reason, sizeof(st->reason), "%s", reason ? reason : "");
	fprintf(stderr, "fake host: device %s %s%s%s\n", st->device,
	        state == M2M_DEVICE_ONLINE ? "online" : "offline", reason ? ": " : "",
	        reason ? reason : "");
}

/* --- timers and watches --- */

static int h_timer_start(m2m_host *h, uint64_t timeout_ms, uint64_t repeat_ms, m2m_timer_cb cb,
                         void *arg, m2m_timer **ret)
{
	m2m_timer *t;

	ASSERT(!h->creating);
	t = calloc(1, sizeof(*t));
	ASSERT(t);
	*t = (m2m_timer){ .host = h, .cb = cb, .arg = arg, .timeout_ms = timeout_ms,
		          .repeat_ms = repeat_ms, .due_us = h->mono_us + (int64_t)timeout_ms * 1000,
		          .armed = true };
	for (int i = 0; i < FAKE_MAX_TIMERS; i++) {
		if (!h->timers[i]) {
			h->timers[i] = t;
			h->timers_started++;
			*ret = t;
			return 0;
		}
	}
	TEST_FAIL("more than %d timers", FAKE_MAX_TIMERS);
}

static void h_timer_stop(m2m_timer *t)
{
	if (!t)
		return;
	for (int i = 0; i < FAKE_MAX_TIMERS; i++)
		if (t->host->timers[i] == t)
			t->host->timers[i] = NULL;
	t->host->timers_stopped++;
	free(t);
}

static int h_timer_update(m2m_timer *t, uint64_t timeout_ms, uint64_t repeat_ms)
{
	ASSERT(t);
	t->timeout_ms = timeout_ms;
	t->repeat_ms = repeat_ms;
	t->due_us = t->host->mono_us + (int64_t)timeout_ms * 1000;
	t->armed = true;
	return 0;
}

static int h_io_start(m2m_host *h, int fd, int events, m2m_io_cb cb, void *arg, m2m_io **ret)
{
	m2m_io *io;

	ASSERT(!h->creating);
	if (fd < 0 || !(events & (M2M_IO_READ | M2M_IO_WRITE | M2M_IO_HUP | M2M_IO_ERR)))
		return -EINVAL;
	io = calloc(1, sizeof(*io));
	ASSERT(io);
	*io = (m2m_io){ .host = h, .fd = fd, .events = events, .cb = cb, .arg = arg, .active = true };
	for (int i = 0; i < FAKE_MAX_IOS; i++) {
		if (!h->ios[i]) {
			h->ios[i] = io;
			*ret = io;
			return 0;
		}
	}
	TEST_FAIL("more than %d fd watches", FAKE_MAX_IOS);
}

static int h_io_update(m2m_io *io, int events)
{
	ASSERT(io);
	io->events = events;
	io->active = true;
	return 0;
}

static void h_io_stop(m2m_io *io)
{
	if (!io)
		return;
	for (int i = 0; i < FAKE_MAX_IOS; i++)
		if (io->host->ios[i] == io)
			io->host->ios[i] = NULL;
	free(io);
}

/* --- buses --- */

static int h_bus_open(m2m_host *h, const char *name, m2m_bus **ret)
{
	m2m_bus *b;

	if (!name || !*name || h->creating)
		return -EINVAL;
	for (size_t i = 0; i < h->n_buses; i++) {
		if (strcmp(h->buses[i]->name, name) == 0) {
			*ret = h->buses[i];
			return 0;
		}
	}
	ASSERT(h->n_buses < FAKE_MAX_BUSES);
	b = calloc(1, sizeof(*b));
	ASSERT(b);
	b->host = h;
	snprintf(b->name, sizeof(b->name), "%s", name);
	h->buses[h->n_buses++] = b;
	*ret = b;
	return 0;
}

static int h_bus_submit(m2m_bus *bus, int flags, m2m_bus_work_fn work, m2m_bus_done_fn done,
                        void *arg)
{
	m2m_host *h = bus->host;
	size_t at = h->n_work;

	ASSERT(h->n_work < FAKE_MAX_WORK);
	/* Urgent work goes ahead of everything that is not urgent. */
	if (flags & M2M_BUS_URGENT)
		for (at = 0; at < h->n_work && (h->work[at].flags & M2M_BUS_URGENT); at++)
			;
	memmove(&h->work[at + 1], &h->work[at], (h->n_work - at) * sizeof(h->work[0]));
	h->work[at] = (struct fake_work){ bus, flags, work, done, arg };
	h->n_work++;
	return 0;
}

static size_t h_bus_pending(m2m_bus *bus)
{
	size_t n = 0;

	for (size_t i = 0; i < bus->host->n_work; i++)
		n += bus->host->work[i].bus == bus;
	return n;
}

static struct fake_work take_work(m2m_host *h)
{
	struct fake_work w = h->work[0];

	memmove(&h->work[0], &h->work[1], (h->n_work - 1) * sizeof(h->work[0]));
	h->n_work--;
	return w;
}

int fake_host_bus_run(m2m_host *h, size_t n)
{
	int ran = 0;

	while (n-- > 0 && h->n_work > 0) {
		struct fake_work w = take_work(h);
		int status = w.work(w.arg);

		h->work_run++;
		w.done(status, w.arg);
		ran++;
	}
	return ran;
}

int fake_host_bus_cancel(m2m_host *h)
{
	int n = 0;

	while (h->n_work > 0) {
		struct fake_work w = take_work(h);

		w.done(-ECANCELED, w.arg);
		n++;
	}
	return n;
}

static void after_callback(m2m_host *h)
{
	if (h->bus_inline)
		fake_host_bus_run(h, SIZE_MAX);
}

/* --- writes --- */

static void h_write_done(m2m_write *req, int status, const char *error_text)
{
	ASSERT(req);
	if (req->calls++ > 0)
		TEST_FAIL("write_done called twice for one request");
	req->status = status;
	snprintf(req->text, sizeof(req->text), "%s", error_text ? error_text : "");
}

/* --- the table --- */

/* Every field of ABI 1.0, shared by both tables. */
#define API_1_0_FIELDS                                                     \
	.abi_major = M2M_ABI_MAJOR, .log = h_log, .now_us = h_now_us,        \
	.mono_us = h_mono_us, .cfg_string = h_cfg_string, .cfg_int = h_cfg_int, \
	.cfg_double = h_cfg_double, .cfg_bool = h_cfg_bool,                  \
	.cfg_duration = h_cfg_duration, .cfg_enum = h_cfg_enum,              \
	.cfg_item = h_cfg_item, .cfg_error = h_cfg_error,                    \
	.declare_point = h_declare_point, .submit = h_submit,                \
	.submit_text = h_submit_text, .event = h_event, .stat = h_stat,      \
	.timer_start = h_timer_start, .timer_stop = h_timer_stop,            \
	.io_start = h_io_start, .io_update = h_io_update, .io_stop = h_io_stop, \
	.bus_open = h_bus_open, .bus_submit = h_bus_submit,                  \
	.bus_pending = h_bus_pending, .write_done = h_write_done

static const struct m2m_host_api api_1_1 = {
	.struct_size = sizeof(struct m2m_host_api),
	.abi_minor = M2M_ABI_MINOR,
	API_1_0_FIELDS,
	.timer_update = h_timer_update,
	.device_state = h_device_state,
	.stat_declare = h_stat_declare,
	.stat_set = h_stat_set,
};

/*
 * What a 1.0 host gives a plugin: a table that ends at write_done. A
 * plugin that reads a 1.1 field without checking struct_size finds NULL.
 */
static const struct m2m_host_api api_1_0 = {
	.struct_size = offsetof(struct m2m_host_api, timer_update),
	.abi_minor = 0,
	API_1_0_FIELDS,
};

const struct m2m_host_api *fake_host_api(int minor)
{
	return minor >= 1 ? &api_1_1 : &api_1_0;
}

/* --- life cycle and helpers for tests --- */

m2m_host *fake_host_new(void)
{
	m2m_host *h = calloc(1, sizeof(*h));

	ASSERT(h);
	h->mono_us = INT64_C(5000000000); /* not zero: a driver must count from start() */
	h->now_us = INT64_C(1700000000000000);
	h->bus_inline = true;
	return h;
}

void fake_host_free(m2m_host *h)
{
	if (!h)
		return;
	for (int i = 0; i < FAKE_MAX_TIMERS; i++)
		free(h->timers[i]);
	for (int i = 0; i < FAKE_MAX_IOS; i++)
		free(h->ios[i]);
	for (size_t i = 0; i < h->n_buses; i++)
		free(h->buses[i]);
	for (size_t i = 0; i < h->n_stats; i++)
		free(h->stats[i]);
	cJSON_Delete(h->config);
	free(h->readings);
	free(h->marked);
	free(h);
}

int fake_host_create_tree(m2m_host *h, const struct m2m_driver_ops *ops,
                          const struct m2m_host_api *host_api, cJSON *config, void **ret_driver)
{
	int r;

	ASSERT(config);
	cJSON_Delete(h->config);
	h->config = config;
	h->n_marked = 0; /* the marks were of the old tree */
	h->creating = true;
	r = ops->create(h, host_api, config, ret_driver);
	h->creating = false;
	if (r < 0 && h->errors == 0 && r == -EINVAL)
		TEST_FAIL("create failed with -EINVAL without recording a config error");
	return r;
}

int fake_host_create(m2m_host *h, const struct m2m_driver_ops *ops,
                     const struct m2m_host_api *host_api, const char *json, void **ret_driver)
{
	cJSON *config = cJSON_Parse(json);

	if (!config)
		TEST_FAIL("not JSON: %s", json);
	return fake_host_create_tree(h, ops, host_api, config, ret_driver);
}

static void fire(m2m_host *h, m2m_timer *t)
{
	if (t->repeat_ms) {
		t->due_us += (int64_t)t->repeat_ms * 1000;
		if (t->due_us <= h->mono_us)
			t->due_us = h->mono_us + (int64_t)t->repeat_ms * 1000;
	} else {
		t->armed = false;
	}
	/* The callback may stop (free) T. */
	t->cb(t, t->arg);
	after_callback(h);
}

void fake_host_fire(m2m_host *h, m2m_timer *t)
{
	ASSERT(t && t->host == h);
	fire(h, t);
}

/* The armed timer due first, not later than BY_US, or NULL. */
static m2m_timer *next_due(m2m_host *h, int64_t by_us)
{
	m2m_timer *best = NULL;

	for (int i = 0; i < FAKE_MAX_TIMERS; i++) {
		m2m_timer *t = h->timers[i];

		if (t && t->armed && t->due_us <= by_us && (!best || t->due_us < best->due_us))
			best = t;
	}
	return best;
}

void fake_host_advance(m2m_host *h, int64_t us)
{
	int64_t end = h->mono_us + us, start = h->mono_us;
	m2m_timer *t;

	/* Due timers first (a timer started with timeout 0 fires here). */
	while ((t = next_due(h, end)) != NULL) {
		int64_t at = t->due_us > h->mono_us ? t->due_us : h->mono_us;

		h->now_us += at - h->mono_us;
		h->mono_us = at;
		fire(h, t);
	}
	h->now_us += end - h->mono_us;
	h->mono_us = end;
	ASSERT(h->mono_us - start == us);
}

m2m_timer *fake_host_timer_every(m2m_host *h, uint64_t ms)
{
	for (int i = 0; i < FAKE_MAX_TIMERS; i++)
		if (h->timers[i] && h->timers[i]->repeat_ms == ms)
			return h->timers[i];
	TEST_FAIL("no timer repeating every %" PRIu64 " ms", ms);
}

int fake_host_timers(const m2m_host *h)
{
	int n = 0;

	for (int i = 0; i < FAKE_MAX_TIMERS; i++)
		n += h->timers[i] != NULL;
	return n;
}

m2m_io *fake_host_io(m2m_host *h, int fd)
{
	for (int i = 0; i < FAKE_MAX_IOS; i++)
		if (h->ios[i] && h->ios[i]->fd == fd)
			return h->ios[i];
	return NULL;
}

void fake_host_io_fire(m2m_host *h, m2m_io *io, int events)
{
	int deliver = events & io->events & (M2M_IO_READ | M2M_IO_WRITE);

	ASSERT(io->host == h);
	if (!io->active)
		return;
	/* ABI 1.0 watches see a hang-up or an error as READ. */
	if (events & (M2M_IO_HUP | M2M_IO_ERR)) {
		int asked = io->events & (M2M_IO_HUP | M2M_IO_ERR);

		deliver |= asked ? events & asked : (io->events & M2M_IO_READ);
		if ((events & M2M_IO_ERR) && (io->events & M2M_IO_ERR))
			io->active = false;
	}
	if (deliver)
		io->cb(io, deliver, io->arg);
	after_callback(h);
}

uint32_t fake_host_point(const m2m_host *h, const char *name)
{
	for (size_t i = 0; i < h->n_points; i++)
		if (strcmp(h->points[i].name, name) == 0)
			return h->points[i].id;
	TEST_FAIL("no point \"%s\" was declared", name);
}

const struct m2m_reading *fake_host_reading(const m2m_host *h, uint32_t id)
{
	for (size_t i = h->n_readings; i-- > 0;)
		if (h->readings[i].point == id)
			return &h->readings[i];
	return NULL;
}

const struct fake_text *fake_host_text(const m2m_host *h, uint32_t id)
{
	for (size_t i = h->n_texts; i-- > 0;)
		if (h->texts[i].point == id)
			return &h->texts[i];
	return NULL;
}

size_t fake_host_count(const m2m_host *h, uint32_t id)
{
	size_t n = 0;

	for (size_t i = 0; i < h->n_readings; i++)
		n += h->readings[i].point == id;
	return n;
}

const struct m2m_stat *fake_host_stat(const m2m_host *h, const char *name, const char *device)
{
	char legacy[160];
	const struct m2m_stat *s = stat_find(h, name, device, true);

	if (s)
		return s;
	if (device)
		snprintf(legacy, sizeof(legacy), "%s.%s", name, device);
	else
		snprintf(legacy, sizeof(legacy), "%s", name);
	return stat_find(h, legacy, NULL, false);
}

double fake_host_stat_value(const m2m_host *h, const char *name, const char *device)
{
	const struct m2m_stat *s = fake_host_stat(h, name, device);

	return s && s->set ? s->value : -1;
}

const struct fake_state *fake_host_state(const m2m_host *h, const char *device)
{
	for (size_t i = h->n_states; i-- > 0;)
		if (strcmp(h->states[i].device, device ? device : "") == 0)
			return &h->states[i];
	return NULL;
}

size_t fake_host_events(const m2m_host *h, const char *device, const char *kind)
{
	size_t n = 0;

	for (size_t i = 0; i < h->n_events; i++)
		n += (!device || strcmp(h->events[i].device, device) == 0) &&
		     (!kind || strcmp(h->events[i].kind, kind) == 0);
	return n;
}

size_t fake_host_logged(const m2m_host *h, int level, const char *text)
{
	size_t n = 0;

	for (size_t i = 0; i < h->n_logs; i++)
		n += h->logs[i].level <= level && strstr(h->logs[i].text, text) != NULL;
	return n;
}
