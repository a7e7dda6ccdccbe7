/* SPDX-License-Identifier: MIT */
/*
 * Tests of the sim plugin through its ABI, with a fake host: the built
 * sim.so is dlopen'ed (path in argv[1]) and driven the way m2md drives it.
 * The fake host implements just enough of the host table: config getters
 * that record which keys were read, declare_point, manual timers, submit
 * and write_done that record what they got.
 */
#include "test.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <time.h>

#include <cJSON.h>

#include "m2m/plugin.h"

#define MAX_KEYS 4096
#define MAX_TIMERS 16

struct m2m_timer {
	struct m2m_host *host; /* timer_stop gets no host */
	m2m_timer_cb cb;
	void *arg;
	uint64_t timeout_ms, repeat_ms;
};

struct m2m_write {
	int calls;
	int status;
};

struct m2m_host {
	int64_t mono_us, now_us;
	/* Keys read through the getters: (table, key) pairs. */
	const cJSON *marked_obj[MAX_KEYS];
	const char *marked_key[MAX_KEYS];
	size_t n_marked;
	char error[512];
	int errors;
	uint32_t next_id;
	char names[2048][64];
	m2m_timer *timers[MAX_TIMERS];
	int timers_started, timers_stopped;
	/* What submit got last, and how often it was called. */
	int submits;
	size_t last_n;
	struct m2m_reading last[2048];
};

static void mark(m2m_host *h, const cJSON *obj, const char *key)
{
	ASSERT(h->n_marked < MAX_KEYS);
	h->marked_obj[h->n_marked] = obj;
	h->marked_key[h->n_marked] = key;
	h->n_marked++;
}

static bool marked(const m2m_host *h, const cJSON *obj, const char *key)
{
	for (size_t i = 0; i < h->n_marked; i++)
		if (h->marked_obj[i] == obj && strcmp(h->marked_key[i], key) == 0)
			return true;
	return false;
}

/* What the real host does after create(): any unread key is an error. */
static int unknown_keys(const m2m_host *h, const cJSON *obj)
{
	const cJSON *it;
	int n = 0;

	cJSON_ArrayForEach(it, obj) {
		if (cJSON_IsObject(obj) && !marked(h, obj, it->string)) {
			fprintf(stderr, "unknown key '%s'\n", it->string);
			n++;
		}
		if (cJSON_IsObject(it) || cJSON_IsArray(it))
			n += unknown_keys(h, it);
	}
	return n;
}

static const cJSON *get(m2m_host *h, const cJSON *obj, const char *key)
{
	const cJSON *it = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;

	if (it)
		mark(h, obj, key);
	return it;
}

M2M_PRINTF(3, 4)
static int fake_cfg_error(m2m_host *h, const struct cJSON *item, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(h->error, sizeof(h->error), fmt, ap);
	va_end(ap);
	h->errors++;
	return -EINVAL;
}

M2M_PRINTF(3, 4)
static void fake_log(m2m_host *h, int level, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "sim[%d]: ", level);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int64_t fake_now(m2m_host *h) { return h->now_us; }
static int64_t fake_mono(m2m_host *h) { return h->mono_us; }

static int fake_string(m2m_host *h, const cJSON *obj, const char *key, const char *def,
                       const char **ret)
{
	const cJSON *it = get(h, obj, key);

	*ret = def;
	if (!it)
		return 0;
	if (!cJSON_IsString(it))
		return fake_cfg_error(h, it, "'%s': expected a string", key);
	*ret = it->valuestring;
	return 1;
}

static int fake_int(m2m_host *h, const cJSON *obj, const char *key, int64_t def,
                    int64_t min, int64_t max, int64_t *ret)
{
	const cJSON *it = get(h, obj, key);

	*ret = def;
	if (!it)
		return 0;
	if (!cJSON_IsNumber(it) || it->valuedouble < (double)min || it->valuedouble > (double)max)
		return fake_cfg_error(h, it, "'%s': expected an integer", key);
	*ret = (int64_t)it->valuedouble;
	return 1;
}

static int fake_double(m2m_host *h, const cJSON *obj, const char *key, double def,
                       double *ret)
{
	const cJSON *it = get(h, obj, key);

	*ret = def;
	if (!it)
		return 0;
	if (!cJSON_IsNumber(it))
		return fake_cfg_error(h, it, "'%s': expected a number", key);
	*ret = it->valuedouble;
	return 1;
}

static int fake_bool(m2m_host *h, const cJSON *obj, const char *key, int def, int *ret)
{
	const cJSON *it = get(h, obj, key);

	*ret = def;
	if (!it)
		return 0;
	if (!cJSON_IsBool(it))
		return fake_cfg_error(h, it, "'%s': expected a boolean", key);
	*ret = cJSON_IsTrue(it);
	return 1;
}

static int fake_duration(m2m_host *h, const cJSON *obj, const char *key, int64_t def_us,
                         int64_t *ret_us)
{
	const cJSON *it = get(h, obj, key);
	char *end;
	double v;

	*ret_us = def_us;
	if (!it)
		return 0;
	if (!cJSON_IsString(it))
		return fake_cfg_error(h, it, "'%s': expected a duration", key);
	v = strtod(it->valuestring, &end);
	if (strcmp(end, "us") == 0)
		*ret_us = (int64_t)v;
	else if (strcmp(end, "ms") == 0)
		*ret_us = (int64_t)(v * 1e3);
	else if (strcmp(end, "s") == 0)
		*ret_us = (int64_t)(v * 1e6);
	else
		return fake_cfg_error(h, it, "'%s': expected a duration", key);
	return 1;
}

static int fake_enum(m2m_host *h, const cJSON *obj, const char *key,
                     const char *const *names, int def, int *ret)
{
	const cJSON *it = get(h, obj, key);

	*ret = def;
	if (!it)
		return 0;
	for (int i = 0; cJSON_IsString(it) && names[i]; i++) {
		if (strcmp(names[i], it->valuestring) == 0) {
			*ret = i;
			return 1;
		}
	}
	return fake_cfg_error(h, it, "'%s': not one of the names", key);
}

static const cJSON *fake_item(m2m_host *h, const cJSON *obj, const char *key)
{
	return get(h, obj, key);
}

static int fake_declare(m2m_host *h, const char *device, const cJSON *obj,
                        uint32_t *ret_id)
{
	static const char *const generic[] = {
		"unit", "kind", "writable", "min", "max", "scale", "offset",
		"deadband", "deadband_percent", "description", NULL,
	};
	const char *name;

	ASSERT(device == NULL);
	if (fake_string(h, obj, "name", NULL, &name) != 1 || !strchr(name, '/'))
		return fake_cfg_error(h, obj, "bad name");
	for (int i = 0; generic[i]; i++)
		if (cJSON_GetObjectItemCaseSensitive(obj, generic[i]))
			mark(h, obj, generic[i]);
	/* Ids are not indexes: start high and step, like stable database ids. */
	ASSERT(h->next_id < 2048);
	snprintf(h->names[h->next_id], sizeof(h->names[0]), "%s", name);
	*ret_id = 1000 + 7 * h->next_id++;
	return 0;
}

static int fake_submit(m2m_host *h, const struct m2m_reading *r, size_t n)
{
	ASSERT(n <= 2048);
	memcpy(h->last, r, n * sizeof(*r));
	h->last_n = n;
	h->submits++;
	return (int)n;
}

static int fake_timer_start(m2m_host *h, uint64_t timeout_ms, uint64_t repeat_ms,
                            m2m_timer_cb cb, void *arg, m2m_timer **ret)
{
	m2m_timer *t = calloc(1, sizeof(*t));

	ASSERT(t);
	*t = (m2m_timer){ h, cb, arg, timeout_ms, repeat_ms };
	for (int i = 0; i < MAX_TIMERS; i++) {
		if (!h->timers[i]) {
			h->timers[i] = t;
			h->timers_started++;
			*ret = t;
			return 0;
		}
	}
	TEST_FAIL("too many timers");
}

static void fake_timer_stop(m2m_timer *t)
{
	if (!t)
		return;
	for (int i = 0; i < MAX_TIMERS; i++)
		if (t->host->timers[i] == t)
			t->host->timers[i] = NULL;
	t->host->timers_stopped++;
	free(t);
}

static void fake_write_done(m2m_write *req, int status, const char *text)
{
	req->calls++;
	req->status = status;
}

static const struct m2m_host_api api = {
	.struct_size = sizeof(struct m2m_host_api),
	.abi_major = M2M_ABI_MAJOR,
	.abi_minor = M2M_ABI_MINOR,
	.log = fake_log,
	.now_us = fake_now,
	.mono_us = fake_mono,
	.cfg_string = fake_string,
	.cfg_int = fake_int,
	.cfg_double = fake_double,
	.cfg_bool = fake_bool,
	.cfg_duration = fake_duration,
	.cfg_enum = fake_enum,
	.cfg_item = fake_item,
	.cfg_error = fake_cfg_error,
	.declare_point = fake_declare,
	.submit = fake_submit,
	.timer_start = fake_timer_start,
	.timer_stop = fake_timer_stop,
	.write_done = fake_write_done,
};

static m2m_host *host_new(void)
{
	m2m_host *h = calloc(1, sizeof(*h));

	ASSERT(h);
	h->mono_us = 5000000000; /* not zero: the driver must count from start() */
	h->now_us = INT64_C(1700000000000000);
	return h;
}

static m2m_timer *timer_with_ms(m2m_host *h, uint64_t ms)
{
	for (int i = 0; i < MAX_TIMERS; i++)
		if (h->timers[i] && h->timers[i]->repeat_ms == ms)
			return h->timers[i];
	TEST_FAIL("no timer of %" PRIu64 " ms", ms);
}

static void fire(m2m_host *h, uint64_t ms)
{
	m2m_timer *t = timer_with_ms(h, ms);

	t->cb(t, t->arg);
}

/* The reading of point ID in the last submit. */
static double last_value(m2m_host *h, uint32_t id)
{
	for (size_t i = 0; i < h->last_n; i++)
		if (h->last[i].point == id)
			return h->last[i].value;
	TEST_FAIL("point %u not in the last submit", (unsigned)id);
}

static int create(const struct m2m_plugin *plugin, m2m_host *h, const char *json,
                  void **ret, cJSON **ret_cfg)
{
	cJSON *cfg = cJSON_Parse(json);
	int r;

	ASSERT(cfg);
	r = plugin->ops->create(h, &api, cfg, ret);
	*ret_cfg = cfg;
	return r;
}

static const struct m2m_plugin *test_entry(m2m_plugin_entry_fn entry)
{
	const struct m2m_plugin *plugin;

	ASSERT(entry(M2M_ABI_MAJOR + 1, 0) == NULL);
	plugin = entry(M2M_ABI_MAJOR, M2M_ABI_MINOR);
	ASSERT(plugin);
	ASSERT_EQ(plugin->abi_major, M2M_ABI_MAJOR);
	ASSERT_LE(plugin->abi_minor, M2M_ABI_MINOR);
	ASSERT_GE(plugin->struct_size, sizeof(struct m2m_plugin));
	ASSERT_STR_EQ(plugin->name, "sim");
	ASSERT(plugin->ops && plugin->ops->create && plugin->ops->write);
	/* Destructors and stop accept NULL. */
	plugin->ops->destroy(NULL);
	plugin->ops->stop(NULL);
	return plugin;
}

static const char boiler[] =
	"{\"plugin\":\"sim\",\"seed\":7,\"points\":["
	"{\"name\":\"boiler1/burner\",\"kind\":\"bool\",\"writable\":true,"
	" \"signal\":\"constant\",\"value\":0},"
	"{\"name\":\"boiler1/temperature\",\"unit\":\"degC\",\"signal\":\"integrate\","
	" \"input\":\"boiler1/burner\",\"value\":50,\"rate_on\":0.5,\"rate_off\":-0.3,"
	" \"low\":10,\"high\":90},"
	"{\"name\":\"boiler1/wave\",\"signal\":\"sine\",\"interval\":\"100ms\","
	" \"period\":\"4s\",\"base\":10,\"amplitude\":2,\"writable\":true},"
	"{\"name\":\"boiler1/noise\",\"signal\":\"random\",\"interval\":\"100ms\","
	" \"amplitude\":0.5}"
	"]}";

static void test_boiler(const struct m2m_plugin *plugin)
{
	m2m_host *h = host_new();
	struct m2m_write w = { 0 };
	uint32_t burner = 1000, temp = 1007, wave = 1014;
	void *d = NULL;
	cJSON *cfg;

	ASSERT_OK(create(plugin, h, boiler, &d, &cfg));
	ASSERT(d);
	ASSERT_EQ(h->errors, 0);
	/* The driver reads every key but 'plugin', which is the host's. */
	mark(h, cfg, "plugin");
	ASSERT_EQ(unknown_keys(h, cfg), 0);
	ASSERT_EQ(h->next_id, 4);
	/* create() starts nothing. */
	ASSERT_EQ(h->timers_started, 0);

	ASSERT_OK(plugin->ops->start(d));
	ASSERT_EQ(h->timers_started, 2); /* one per distinct interval */
	ASSERT_EQ(timer_with_ms(h, 1000)->timeout_ms, 1000);

	/* One submit per tick, with every point of the group. */
	h->mono_us += 1000000;
	fire(h, 1000);
	ASSERT_EQ(h->submits, 1);
	ASSERT_EQ(h->last_n, 2);
	ASSERT_EQ(h->last[0].ts_us, h->now_us);
	ASSERT_EQ(h->last[0].quality, M2M_QUALITY_GOOD);
	ASSERT_DOUBLE_EQ(last_value(h, burner), 0.0, 1e-9);
	ASSERT_DOUBLE_EQ(last_value(h, temp), 50.0, 1e-9);

	h->mono_us += 1000000;
	fire(h, 1000);
	ASSERT_DOUBLE_EQ(last_value(h, temp), 49.7, 1e-9);

	/* Burner on: answered at once, seen by the next tick. */
	ASSERT_OK(plugin->ops->write(d, burner, 1.0, &w));
	ASSERT_EQ(w.calls, 1);
	ASSERT_EQ(w.status, 0);
	h->mono_us += 2000000;
	fire(h, 1000);
	ASSERT_DOUBLE_EQ(last_value(h, burner), 1.0, 1e-9);
	ASSERT_DOUBLE_EQ(last_value(h, temp), 50.7, 1e-9);

	/* The sine group: t = 5 s since start is 1/4 period: base + amplitude. */
	h->mono_us += 1000000;
	fire(h, 100);
	ASSERT_EQ(h->last_n, 2);
	ASSERT_DOUBLE_EQ(last_value(h, wave), 12.0, 1e-9);
	/* A write to a sine moves its base. */
	w = (struct m2m_write){ 0 };
	ASSERT_OK(plugin->ops->write(d, wave, 20.0, &w));
	ASSERT_EQ(w.calls, 1);
	fire(h, 100);
	ASSERT_DOUBLE_EQ(last_value(h, wave), 22.0, 1e-9);

	/* A write to an id that is not ours still gets exactly one answer. */
	w = (struct m2m_write){ 0 };
	ASSERT_OK(plugin->ops->write(d, 4242, 1.0, &w));
	ASSERT_EQ(w.calls, 1);
	ASSERT_EQ(w.status, -ENOENT);

	plugin->ops->stop(d);
	ASSERT_EQ(h->timers_stopped, 2);
	plugin->ops->stop(d);
	ASSERT_EQ(h->timers_stopped, 2);
	/* Start again: time counts from the new start. */
	ASSERT_OK(plugin->ops->start(d));
	ASSERT_EQ(h->timers_started, 4);
	h->mono_us += 1000000;
	fire(h, 100);
	ASSERT_DOUBLE_EQ(last_value(h, wave), 22.0, 1e-9);
	plugin->ops->destroy(d);
	ASSERT_EQ(h->timers_stopped, 4);
	cJSON_Delete(cfg);
	free(h);
}

static void expect_error(const struct m2m_plugin *plugin, const char *json, const char *msg)
{
	m2m_host *h = host_new();
	void *d = NULL;
	cJSON *cfg;
	int r = create(plugin, h, json, &d, &cfg);

	ASSERT_EQ(r, -EINVAL);
	ASSERT(d == NULL);
	ASSERT_GE(h->errors, 1);
	ASSERT_STR_CONTAINS(h->error, msg);
	ASSERT_EQ(h->timers_started, 0);
	cJSON_Delete(cfg);
	free(h);
}

static void test_errors(const struct m2m_plugin *plugin)
{
	expect_error(plugin, "{\"points\":[]}", "non-empty array");
	expect_error(plugin, "{}", "non-empty array");
	expect_error(plugin, "{\"points\":[{\"name\":\"a/b\"}]}", "'signal'");
	expect_error(plugin, "{\"points\":[{\"name\":\"a/b\",\"signal\":\"sin\"}]}", "signal");
	expect_error(plugin, "{\"points\":[{\"name\":\"a/b\",\"signal\":\"integrate\"}]}",
	             "needs 'input'");
	expect_error(plugin, "{\"points\":[{\"name\":\"a/b\",\"signal\":\"integrate\","
	             "\"input\":\"a/c\"}]}", "\"a/c\", which is not a point");
	expect_error(plugin, "{\"points\":[{\"name\":\"a/b\",\"signal\":\"integrate\","
	             "\"input\":\"a/b\"}]}", "itself");
	expect_error(plugin, "{\"points\":[{\"name\":\"a/b\",\"signal\":\"random_walk\","
	             "\"low\":5,\"high\":1}]}", "expected low <= high");
	expect_error(plugin, "{\"points\":[{\"name\":\"a/b\",\"signal\":\"sine\","
	             "\"interval\":\"1500us\"}]}", "whole number of milliseconds");
	expect_error(plugin, "{\"points\":[{\"name\":\"a/b\",\"signal\":\"ramp\","
	             "\"period\":\"0s\"}]}", "expected a period of at least 1ms");
	expect_error(plugin, "{\"points\":[5]}", "point table");
}

/* Keys that do not apply to a signal stay unread, so the host reports them. */
static void test_unread_keys(const struct m2m_plugin *plugin)
{
	m2m_host *h = host_new();
	void *d = NULL;
	cJSON *cfg;

	ASSERT_OK(create(plugin, h, "{\"points\":[{\"name\":\"a/b\",\"signal\":\"counter\","
	                 "\"period\":\"1s\",\"amplitdue\":3}]}", &d, &cfg));
	ASSERT_EQ(unknown_keys(h, cfg), 2);
	plugin->ops->destroy(d);
	cJSON_Delete(cfg);
	free(h);
}

/* The benchmark's shape: 1000 points at 1 ms. A tick must be cheap. */
static void test_many(const struct m2m_plugin *plugin)
{
	m2m_host *h = host_new();
	cJSON *cfg = cJSON_CreateObject(), *pts = cJSON_AddArrayToObject(cfg, "points");
	struct timespec a, b;
	void *d = NULL;
	double ns;

	for (int i = 0; i < 1000; i++) {
		cJSON *p = cJSON_CreateObject();
		char name[32];

		snprintf(name, sizeof(name), "dev%d/p%d", i / 10, i % 10);
		cJSON_AddStringToObject(p, "name", name);
		cJSON_AddStringToObject(p, "signal", i % 2 ? "sine" : "random_walk");
		cJSON_AddStringToObject(p, "interval", "1ms");
		cJSON_AddItemToArray(pts, p);
	}
	ASSERT_OK(plugin->ops->create(h, &api, cfg, &d));
	ASSERT_OK(plugin->ops->start(d));
	ASSERT_EQ(h->timers_started, 1);
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < 1000; i++) {
		h->mono_us += 1000;
		fire(h, 1);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	ASSERT_EQ(h->submits, 1000);
	ASSERT_EQ(h->last_n, 1000);
	ns = (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
	fprintf(stderr, "1000 ticks of 1000 points: %.1f ns per reading\n", ns / 1e6);
	plugin->ops->destroy(d);
	cJSON_Delete(cfg);
	free(h);
}

#define RUN_TEST_P(fn)                               \
	do {                                         \
		fprintf(stderr, "-- %s\n", #fn);     \
		fn(plugin);                          \
	} while (0)

int main(int argc, char **argv)
{
	const struct m2m_plugin *plugin;
	m2m_plugin_entry_fn entry;
	void *so;

	ASSERT(argc == 2);
	so = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (!so)
		TEST_FAIL("dlopen: %s", dlerror());
	*(void **)&entry = dlsym(so, M2M_PLUGIN_ENTRY_NAME);
	ASSERT(entry);

	plugin = test_entry(entry);
	RUN_TEST_P(test_boiler);
	RUN_TEST_P(test_errors);
	RUN_TEST_P(test_unread_keys);
	RUN_TEST_P(test_many);
	dlclose(so);
	return 0;
}
