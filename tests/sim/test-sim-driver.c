/* SPDX-License-Identifier: MIT */
/*
 * Tests of the sim plugin through its ABI, with the fake host
 * (tests/plugin/fake-host.h): the built sim.so is dlopen'ed (path in
 * argv[1]) and driven the way m2md drives it.
 */
#include "test.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <time.h>

#include <cJSON.h>

#include "fake-host.h"
#include "m2m/plugin.h"

static void fire(m2m_host *h, uint64_t ms)
{
	fake_host_fire(h, fake_host_timer_every(h, ms));
}

/* The reading of point ID in the last submit. */
static double last_value(m2m_host *h, uint32_t id)
{
	for (size_t i = h->last_first; i < h->last_first + h->last_n; i++)
		if (h->readings[i].point == id)
			return h->readings[i].value;
	TEST_FAIL("point %u not in the last submit", (unsigned)id);
}

/* The first reading of the last submit. */
static const struct m2m_reading *last_first(m2m_host *h)
{
	ASSERT(h->last_n > 0);
	return &h->readings[h->last_first];
}

static int create(const struct m2m_plugin *plugin, m2m_host *h, const char *json, void **ret)
{
	return fake_host_create(h, plugin->ops, fake_host_api(1), json, ret);
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
	m2m_host *h = fake_host_new();
	struct m2m_write w = { 0 };
	uint32_t burner, temp, wave;
	void *d = NULL;

	ASSERT_OK(create(plugin, h, boiler, &d));
	ASSERT(d);
	ASSERT_EQ(h->errors, 0);
	/* The driver reads every key but 'plugin', which is the host's. */
	ASSERT_EQ(fake_host_unknown_keys(h), 0);
	ASSERT_EQ(h->n_points, 4);
	burner = fake_host_point(h, "boiler1/burner");
	temp = fake_host_point(h, "boiler1/temperature");
	wave = fake_host_point(h, "boiler1/wave");
	ASSERT_STR_EQ(h->points[0].kind, "bool");
	/* create() starts nothing. */
	ASSERT_EQ(h->timers_started, 0);

	ASSERT_OK(plugin->ops->start(d));
	ASSERT_EQ(h->timers_started, 2); /* one per distinct interval */
	ASSERT_EQ(fake_host_timer_every(h, 1000)->timeout_ms, 1000);

	/* One submit per tick, with every point of the group. */
	h->mono_us += 1000000;
	fire(h, 1000);
	ASSERT_EQ(h->submits, 1);
	ASSERT_EQ(h->last_n, 2);
	ASSERT_EQ(last_first(h)->ts_us, h->now_us);
	ASSERT_EQ(last_first(h)->quality, M2M_QUALITY_GOOD);
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
	ASSERT_EQ(fake_host_timers(h), 0);
	fake_host_free(h);
}

static void expect_error(const struct m2m_plugin *plugin, const char *json, const char *msg)
{
	m2m_host *h = fake_host_new();
	void *d = NULL;
	int r = create(plugin, h, json, &d);

	ASSERT_EQ(r, -EINVAL);
	ASSERT(d == NULL);
	ASSERT_GE(h->errors, 1);
	ASSERT_STR_CONTAINS(h->error, msg);
	ASSERT_EQ(h->timers_started, 0);
	fake_host_free(h);
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
	m2m_host *h = fake_host_new();
	void *d = NULL;

	ASSERT_OK(create(plugin, h, "{\"points\":[{\"name\":\"a/b\",\"signal\":\"counter\","
	                 "\"period\":\"1s\",\"amplitdue\":3}]}", &d));
	ASSERT_EQ(fake_host_unknown_keys(h), 2);
	ASSERT_STR_EQ(h->unknown, "period");
	plugin->ops->destroy(d);
	fake_host_free(h);
}

/* The benchmark's shape: 1000 points at 1 ms. A tick must be cheap. */
static void test_many(const struct m2m_plugin *plugin)
{
	m2m_host *h = fake_host_new();
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
	ASSERT_OK(fake_host_create_tree(h, plugin->ops, fake_host_api(1), cfg, &d));
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
	fake_host_free(h);
}

/* sim needs nothing beyond ABI 1.0: it runs on a 1.0 host's table. */
static void test_abi_1_0(const struct m2m_plugin *plugin)
{
	m2m_host *h = fake_host_new();
	void *d = NULL;

	ASSERT_OK(fake_host_create(h, plugin->ops, fake_host_api(0), boiler, &d));
	ASSERT_OK(plugin->ops->start(d));
	h->mono_us += 1000000;
	fire(h, 1000);
	ASSERT_EQ(h->submits, 1);
	ASSERT_EQ(h->last_n, 2);
	plugin->ops->destroy(d);
	ASSERT_EQ(fake_host_timers(h), 0);
	fake_host_free(h);
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
	RUN_TEST_P(test_abi_1_0);
	dlclose(so);
	return 0;
}
