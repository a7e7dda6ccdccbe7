/* SPDX-License-Identifier: MIT */
/*
 * hello.c - a complete, small m2md driver plugin, built out of tree.
 *
 * It reports the system load averages and a tick counter as points:
 *
 *   [drivers.host]
 *   plugin = "hello"
 *   device = "gateway"        # optional, default "host"
 *   interval = "10s"          # optional, default "5s"
 *
 *   [[drivers.host.points]]
 *   name = "load1"            # the point is "gateway/load1"
 *   source = "load1"          # load1, load5, load15 or counter
 *
 *   [[drivers.host.points]]
 *   name = "ticks"
 *   source = "counter"
 *   writable = true           # a write sets the counter
 *
 * Everything a driver does is here: version negotiation, config through
 * the host's getters, point declaration, a timer, one submit per tick,
 * bad quality when the source fails, and writes.
 */
#define _DEFAULT_SOURCE /* getloadavg() */

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include <cJSON.h>
#include <m2m/plugin.h>

enum hello_source { SRC_LOAD1, SRC_LOAD5, SRC_LOAD15, SRC_COUNTER };

static const char *const source_names[] = { "load1", "load5", "load15", "counter", NULL };

struct hello {
	m2m_host *host;
	const struct m2m_host_api *api;
	uint64_t interval_ms;
	m2m_timer *timer;         /* NULL while stopped */
	double counter;
	size_t n;
	int *sources;             /* enum hello_source of each point */
	struct m2m_reading *buf;  /* one reading per point, reused by every tick */
};

static void hello_destroy(void *driver)
{
	struct hello *h = driver;

	if (!h)
		return;
	h->api->timer_stop(h->timer); /* NULL is fine */
	free(h->sources);
	free(h->buf);
	free(h);
}

static int hello_create(m2m_host *host, const struct m2m_host_api *api,
                        const struct cJSON *config, void **ret_driver)
{
	const struct cJSON *points, *obj;
	const char *device;
	struct hello *h;
	int64_t interval_us;
	size_t i = 0;
	int r;

	/* Only ABI 1.0 functions are used; make sure the host's table has them. */
	if (!M2M_HAS_FIELD(struct m2m_host_api, api->struct_size, write_done))
		return -EPROTO;

	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->host = host;
	h->api = api;

	/*
	 * Read every key through the host: that marks it as known, and any
	 * key left unread is reported as unknown after create() returns.
	 */
	r = api->cfg_string(host, config, "device", "host", &device);
	if (r < 0)
		goto fail;
	r = api->cfg_duration(host, config, "interval", 5000000, &interval_us);
	if (r < 0)
		goto fail;
	if (interval_us < 1000) {
		api->cfg_error(host, config, "'interval' must be at least 1ms");
		r = -EINVAL;
		goto fail;
	}
	h->interval_ms = (uint64_t)interval_us / 1000;

	points = api->cfg_item(host, config, "points");
	if (!cJSON_IsArray(points) || cJSON_GetArraySize(points) == 0) {
		api->cfg_error(host, points ? points : config,
		               "expected 'points', a non-empty array of tables");
		r = -EINVAL;
		goto fail;
	}
	h->n = (size_t)cJSON_GetArraySize(points);
	h->sources = calloc(h->n, sizeof(*h->sources));
	h->buf = calloc(h->n, sizeof(*h->buf));
	if (!h->sources || !h->buf) {
		r = -ENOMEM;
		goto fail;
	}

	cJSON_ArrayForEach(obj, points) {
		uint32_t id;

		/* The host reads name, unit, kind, writable, limits, scale... */
		r = api->declare_point(host, device, obj, &id);
		if (r < 0)
			goto fail;
		/* ...and the driver reads its own keys from the same table. */
		r = api->cfg_enum(host, obj, "source", source_names, -1, &h->sources[i]);
		if (r < 0)
			goto fail;
		if (r == 0) {
			api->cfg_error(host, obj, "missing key 'source' "
			               "(load1, load5, load15 or counter)");
			r = -EINVAL;
			goto fail;
		}
		h->buf[i].point = id;
		i++;
	}

	*ret_driver = h;
	return 0;

fail:
	hello_destroy(h);
	return r;
}

/* Runs on the loop thread, every interval: must be quick and not block. */
static void hello_tick(m2m_timer *timer, void *arg)
{
	struct hello *h = arg;
	double load[3];
	int nload = getloadavg(load, 3);
	int64_t now = h->api->now_us(h->host);
	int r;

	(void)timer;
	for (size_t i = 0; i < h->n; i++) {
		struct m2m_reading *rd = &h->buf[i];
		int src = h->sources[i];

		rd->ts_us = now;
		rd->detail = 0;
		if (src == SRC_COUNTER) {
			rd->value = h->counter;
			rd->quality = M2M_QUALITY_GOOD;
		} else if (src < nload) {
			rd->value = load[src];
			rd->quality = M2M_QUALITY_GOOD;
		} else {
			/* Still submitted: a gap in the data always has a reason. */
			rd->value = 0;
			rd->quality = M2M_QUALITY_DEVICE_ERROR;
		}
	}
	/* Counted after reporting, so that a written value is the next reading. */
	h->counter += 1;

	r = h->api->submit(h->host, h->buf, h->n);
	if (r < 0)
		h->api->log(h->host, M2M_LOG_WARNING, "submit failed (%d)", r);
}

static int hello_start(void *driver)
{
	struct hello *h = driver;

	if (h->timer)
		return 0;
	/* First tick right away, then every interval. */
	return h->api->timer_start(h->host, 0, h->interval_ms, hello_tick, h, &h->timer);
}

static void hello_stop(void *driver)
{
	struct hello *h = driver;

	if (!h)
		return;
	h->api->timer_stop(h->timer);
	h->timer = NULL;
}

static int hello_write(void *driver, uint32_t point, double raw_value, m2m_write *req)
{
	struct hello *h = driver;

	for (size_t i = 0; i < h->n; i++) {
		if (h->buf[i].point != point)
			continue;
		if (h->sources[i] != SRC_COUNTER) {
			h->api->write_done(req, -EROFS, "a load average cannot be written");
			return 0;
		}
		/* Done at once: there is no device to wait for. */
		h->counter = raw_value;
		h->api->write_done(req, 0, NULL);
		return 0;
	}
	h->api->write_done(req, -ENOENT, "not a point of this driver");
	return 0;
}

static const struct m2m_driver_ops hello_ops = {
	.struct_size = sizeof(struct m2m_driver_ops),
	.create = hello_create,
	.start = hello_start,
	.stop = hello_stop,
	.destroy = hello_destroy,
	.write = hello_write,
};

static const struct m2m_plugin hello_plugin = {
	.struct_size = sizeof(struct m2m_plugin),
	.abi_major = M2M_ABI_MAJOR,
	.abi_minor = 0, /* the lowest minor it needs: nothing after 1.0 */
	.name = "hello",
	.version = "1.0.0",
	.description = "system load averages and a counter (example plugin)",
	.ops = &hello_ops,
};

/* A prototype first (for -Wmissing-prototypes); the macro starts the definition. */

M2M_PLUGIN_ENTRY
{
	(void)host_abi_minor;
	if (host_abi_major != M2M_ABI_MAJOR)
		return NULL; /* refuse a host with another major */
	return &hello_plugin;
}
