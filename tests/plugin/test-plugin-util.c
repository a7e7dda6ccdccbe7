/* SPDX-License-Identifier: MIT */
/*
 * The plugin kit (m2m/plugin-util.h) against the fake host: the config
 * helpers and their errors, the formats, and each ABI 1.1 wrapper on a 1.1
 * table and on a 1.0 table, where it must fall back to what drivers did
 * before 1.1. Also the fake host's own rules that the driver tests lean
 * on: the unknown-key check, HUP and ERR on watches, timers.
 */
#include "test.h"

#include <errno.h>
#include <math.h>

#include "fake-host.h"
#include "m2m/plugin-util.h"

/* What a driver keeps, for M2M_CFG_ERROR. */
struct drv {
	m2m_host *host;
	const struct m2m_host_api *api;
};

/* A host inside create() with CONFIG as the section. */
static m2m_host *creating(const char *json)
{
	m2m_host *h = fake_host_new();

	h->config = cJSON_Parse(json);
	ASSERT(h->config);
	h->creating = true;
	return h;
}

static void test_cfg(void)
{
	m2m_host *h = creating("{\"port\":502,\"big\":70000,\"gap\":3,\"t\":\"5s\",\"long\":\"2m\","
	                       "\"on\":true,\"x\":1.5,\"host\":\"plc\",\"empty\":\"\"}");
	const struct m2m_host_api *api = fake_host_api(1);
	struct drv d = { h, api };
	const cJSON *c = h->config;
	char *s = NULL;
	unsigned u = 0;
	int64_t us = 0;
	double x = 0;
	bool b = false;
	int i = 0;

	ASSERT_OK(m2m_cfg_int_range(api, h, c, "port", 1, 1, 65535, &i));
	ASSERT_EQ(i, 502);
	ASSERT_OK(m2m_cfg_int_range(api, h, c, "absent", 7, 1, 65535, &i));
	ASSERT_EQ(i, 7);
	ASSERT_EQ(m2m_cfg_int_range(api, h, c, "big", 1, 1, 65535, &i), -EINVAL);
	ASSERT_EQ(h->errors, 1);
	ASSERT_OK(m2m_cfg_uint(api, h, c, "gap", 16, 0, 123, &u));
	ASSERT_EQ(u, 3);
	ASSERT_OK(m2m_cfg_duration_range(api, h, c, "t", 0, M2M_US_PER_MS, 60 * M2M_US_PER_S, &us));
	ASSERT_EQ(us, 5 * M2M_US_PER_S);
	/* Out of range names the range as a user writes it. */
	ASSERT_EQ(m2m_cfg_duration_range(api, h, c, "long", 0, M2M_US_PER_MS, 60 * M2M_US_PER_S,
	                                 &us), -EINVAL);
	ASSERT_EQ(us, 5 * M2M_US_PER_S);
	ASSERT_EQ(h->errors, 2);
	ASSERT_OK(m2m_cfg_flag(api, h, c, "on", false, &b));
	ASSERT(b);
	ASSERT_OK(m2m_cfg_number(api, h, c, "x", 0, &x));
	ASSERT_DOUBLE_EQ(x, 1.5, 0);
	ASSERT_OK(m2m_cfg_strdup(api, h, c, "host", "the server", &s));
	ASSERT_STR_EQ(s, "plc");
	free(s);
	s = NULL;
	ASSERT_EQ(m2m_cfg_strdup(api, h, c, "empty", "the server", &s), -EINVAL);
	ASSERT(s == NULL);
	ASSERT_EQ(M2M_CFG_ERROR(&d, c, "a %s error", "driver's"), -EINVAL);
	ASSERT_EQ(h->errors, 4);
	ASSERT_STR_CONTAINS(h->error, "'big'");
	/* The key item of a present key, the table itself for an absent one. */
	ASSERT(m2m_cfg_key_item(api, h, c, "port") == cJSON_GetObjectItemCaseSensitive(c, "port"));
	ASSERT(m2m_cfg_key_item(api, h, c, "nothing") == c);
	/* Everything was asked for. */
	ASSERT_EQ(fake_host_unknown_keys(h), 0);
	fake_host_free(h);

	/* The messages of the kit's own checks. */
	h = creating("{\"long\":\"2m\"}");
	ASSERT_EQ(m2m_cfg_duration_range(api, h, h->config, "long", 0, M2M_US_PER_MS,
	                                 60 * M2M_US_PER_S, &us), -EINVAL);
	ASSERT_STR_EQ(h->error, "expected a duration from 1ms to 60s");
	fake_host_free(h);
	h = creating("{}");
	ASSERT_EQ(m2m_cfg_strdup(api, h, h->config, "host", "the server", &s), -EINVAL);
	ASSERT_STR_EQ(h->error, "missing key 'host' (the server)");
	fake_host_free(h);
}

static void test_format(void)
{
	char buf[32];
	char *s;

	ASSERT_STR_EQ(m2m_format_us(250 * M2M_US_PER_MS, buf, sizeof(buf)), "250ms");
	ASSERT_STR_EQ(m2m_format_us(5 * M2M_US_PER_S, buf, sizeof(buf)), "5s");
	ASSERT_STR_EQ(m2m_format_us(24 * 3600 * M2M_US_PER_S, buf, sizeof(buf)), "24h");
	ASSERT_STR_EQ(m2m_format_us(1500, buf, sizeof(buf)), "1500us");
	ASSERT_STR_EQ(m2m_format_us(0, buf, sizeof(buf)), "0ms");
	/* 90 s is not a whole number of hours, and minutes are not a unit here. */
	ASSERT_STR_EQ(m2m_format_us(90 * M2M_US_PER_S, buf, sizeof(buf)), "90s");
	s = m2m_strdup("copy");
	ASSERT_STR_EQ(s, "copy");
	free(s);
}

static void test_device_state(void)
{
	m2m_host *h = fake_host_new();

	m2m_device_state(fake_host_api(1), h, "plc1", M2M_DEVICE_OFFLINE, "timeout");
	ASSERT_EQ(h->n_states, 1);
	ASSERT_EQ(fake_host_state(h, "plc1")->state, M2M_DEVICE_OFFLINE);
	ASSERT_STR_EQ(fake_host_state(h, "plc1")->reason, "timeout");
	ASSERT_EQ(h->n_events, 0);

	/* A 1.0 host: the events drivers sent before ABI 1.1. */
	m2m_device_state(fake_host_api(0), h, "plc1", M2M_DEVICE_ONLINE, NULL);
	m2m_device_state(fake_host_api(0), h, "plc1", M2M_DEVICE_OFFLINE, "connection refused");
	ASSERT_EQ(h->n_states, 1);
	ASSERT_EQ(fake_host_events(h, "plc1", "online"), 1);
	ASSERT_EQ(fake_host_events(h, "plc1", "offline"), 1);
	ASSERT_STR_EQ(h->events[1].text, "connection refused");
	fake_host_free(h);
}

static void test_stats(void)
{
	m2m_host *h = fake_host_new();
	struct m2m_stat_slot polls, online, whole, legacy, never = { 0 };
	const struct m2m_stat *s;

	ASSERT_OK(m2m_stat_slot_declare(&polls, fake_host_api(1), h, "polls", "plc1",
	                                M2M_STAT_COUNTER, "poll cycles"));
	ASSERT_OK(m2m_stat_slot_declare(&online, fake_host_api(1), h, "online", "plc1",
	                                M2M_STAT_GAUGE, "1 while online"));
	ASSERT_OK(m2m_stat_slot_declare(&whole, fake_host_api(1), h, "queued", NULL,
	                                M2M_STAT_GAUGE, "work queued"));
	m2m_stat_slot_set(&polls, 3);
	m2m_stat_slot_set(&online, 1);
	m2m_stat_slot_set(&online, 0);
	m2m_stat_slot_set(&whole, 2);
	m2m_stat_slot_set(&never, 5); /* a slot never declared does nothing */
	s = fake_host_stat(h, "polls", "plc1");
	ASSERT(s && s->declared);
	ASSERT_EQ(s->kind, M2M_STAT_COUNTER);
	ASSERT_STR_EQ(s->help, "poll cycles");
	ASSERT_DOUBLE_EQ(s->value, 3, 0);
	ASSERT_DOUBLE_EQ(fake_host_stat_value(h, "online", "plc1"), 0, 0);
	ASSERT_DOUBLE_EQ(fake_host_stat_value(h, "queued", NULL), 2, 0);
	ASSERT_EQ(h->n_stats, 3);

	/* A 1.0 host: the "name.device" gauge of the 1.0 stat(). */
	ASSERT_OK(m2m_stat_slot_declare(&legacy, fake_host_api(0), h, "requests", "plc1",
	                                M2M_STAT_COUNTER, "requests"));
	m2m_stat_slot_set(&legacy, 9);
	s = fake_host_stat(h, "requests", "plc1");
	ASSERT(s && !s->declared);
	ASSERT_STR_EQ(s->name, "requests.plc1");
	ASSERT_DOUBLE_EQ(s->value, 9, 0);
	fake_host_free(h);
}

static void count_cb(m2m_timer *t, void *arg)
{
	(void)t;
	(*(int *)arg)++;
}

static void test_timers(void)
{
	m2m_host *h = fake_host_new();
	const struct m2m_host_api *api = fake_host_api(1);
	m2m_timer *t = NULL, *before;
	int fired = 0;

	ASSERT_OK(api->timer_start(h, 100, 0, count_cb, &fired, &t));
	fake_host_advance(h, 99 * 1000);
	ASSERT_EQ(fired, 0);
	fake_host_advance(h, 1000);
	ASSERT_EQ(fired, 1);
	fake_host_advance(h, 1000 * 1000);
	ASSERT_EQ(fired, 1); /* a one-shot */

	/* 1.1: rearmed in place. */
	before = t;
	ASSERT_OK(m2m_timer_rearm(api, h, &t, 10, 20, count_cb, &fired));
	ASSERT(t == before);
	fake_host_advance(h, 50 * 1000); /* at 10, 30 and 50 ms */
	ASSERT_EQ(fired, 4);
	ASSERT_EQ(h->timers_started, 1);

	/* 1.0: stopped and started again. */
	ASSERT_OK(m2m_timer_rearm(fake_host_api(0), h, &t, 5, 0, count_cb, &fired));
	ASSERT_EQ(h->timers_started, 2);
	ASSERT_EQ(h->timers_stopped, 1);
	ASSERT_EQ(fake_host_timers(h), 1);
	fake_host_advance(h, 5 * 1000);
	ASSERT_EQ(fired, 5);
	api->timer_stop(t);
	ASSERT_EQ(fake_host_timers(h), 0);
	fake_host_free(h);
}

static void io_cb(m2m_io *io, int events, void *arg)
{
	(void)io;
	*(int *)arg |= events;
}

static void test_io(void)
{
	m2m_host *h = fake_host_new();
	const struct m2m_host_api *api = fake_host_api(1);
	m2m_io *old = NULL, *hup = NULL;
	int got_old = 0, got_hup = 0;

	ASSERT_OK(api->io_start(h, 5, M2M_IO_READ, io_cb, &got_old, &old));
	ASSERT_OK(api->io_start(h, 6, M2M_IO_READ | M2M_IO_HUP | M2M_IO_ERR, io_cb, &got_hup, &hup));
	ASSERT(fake_host_io(h, 6) == hup);
	/* A watch that did not ask for HUP sees it as READ (ABI 1.0). */
	fake_host_io_fire(h, old, M2M_IO_HUP);
	ASSERT_EQ(got_old, M2M_IO_READ);
	fake_host_io_fire(h, hup, M2M_IO_HUP);
	ASSERT_EQ(got_hup, M2M_IO_HUP);
	/* ERR stops the watch until io_update. */
	got_hup = 0;
	fake_host_io_fire(h, hup, M2M_IO_ERR);
	ASSERT_EQ(got_hup, M2M_IO_ERR);
	got_hup = 0;
	fake_host_io_fire(h, hup, M2M_IO_READ);
	ASSERT_EQ(got_hup, 0);
	ASSERT_OK(api->io_update(hup, M2M_IO_READ));
	fake_host_io_fire(h, hup, M2M_IO_READ);
	ASSERT_EQ(got_hup, M2M_IO_READ);
	api->io_stop(old);
	api->io_stop(hup);
	ASSERT(fake_host_io(h, 5) == NULL);
	fake_host_free(h);
}

/* The real host's rule: a key nobody asked for is an error; a table counts once. */
static void test_unknown_keys(void)
{
	m2m_host *h = creating("{\"plugin\":\"x\",\"a\":1,\"typo\":2,\"t\":{\"b\":1,\"c\":2},"
	                       "\"lost\":{\"d\":1,\"e\":2},\"arr\":[{\"f\":1}]}");
	const struct m2m_host_api *api = fake_host_api(1);
	const cJSON *t, *arr;
	int64_t v;

	ASSERT_EQ(api->cfg_int(h, h->config, "a", 0, 0, 9, &v), 1);
	t = api->cfg_item(h, h->config, "t");
	ASSERT_EQ(api->cfg_int(h, t, "b", 0, 0, 9, &v), 1);
	arr = api->cfg_item(h, h->config, "arr");
	ASSERT_EQ(api->cfg_int(h, cJSON_GetArrayItem(arr, 0), "f", 0, 0, 9, &v), 1);
	/* Asked for but absent: known, as in src/config.c. */
	ASSERT_EQ(api->cfg_int(h, h->config, "absent", 0, 0, 9, &v), 0);
	h->creating = false;
	/* typo, t.c and the table lost as a whole. */
	ASSERT_EQ(fake_host_unknown_keys(h), 3);
	ASSERT_STR_EQ(h->unknown, "typo");
	/* The getters work only during create. */
	ASSERT_EQ(api->cfg_int(h, h->config, "a", 0, 0, 9, &v), -EPERM);
	fake_host_free(h);
}

int main(void)
{
	RUN_TEST(test_cfg);
	RUN_TEST(test_format);
	RUN_TEST(test_device_state);
	RUN_TEST(test_stats);
	RUN_TEST(test_timers);
	RUN_TEST(test_io);
	RUN_TEST(test_unknown_keys);
	return 0;
}
