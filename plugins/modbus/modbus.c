/* SPDX-License-Identifier: MIT */
/*
 * modbus.c - the Modbus TCP and RTU driver (libmodbus).
 *
 * One instance drives one bus: a TCP connection or a serial line, with
 * several devices (unit ids) on it. The instance owns one libmodbus
 * context, and every libmodbus call runs on the bus thread the host gives
 * it, one request at a time, so that devices on one RS-485 line are
 * serialized by construction. The loop thread only schedules: each device
 * has one poll group per interval, each group one host timer, and a tick
 * queues one work item that reads the group's blocks (see mb-plan.h).
 *
 * Ownership between the threads is by hand-off: a group's plan, readings
 * and cycle results belong to the bus thread from bus_submit() until the
 * done callback runs, and to the loop thread otherwise, with one exception
 * that keeps latency low: after each block but the last, the bus thread
 * hands that block's readings (a run of slots) back with a release store
 * of a counter and wakes the loop through an eventfd, and the loop submits
 * them while the next block is read (mb_poll_wake). A group whose last
 * cycle is still queued or running skips its tick (and counts it), so work
 * never piles up behind a slow device. Writes go to the head of the bus
 * queue (M2M_BUS_URGENT).
 *
 * libmodbus error codes are translated in exactly one place,
 * mb_classify_error() in mb-io.c.
 *
 * The driver is split along these seams (mb-driver.h lists the files): the
 * bus thread's code is mb-io.c, the loop thread's mb-poll.c, create() is
 * mb-config.c, and this file holds the entry, the ops and the life cycle.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "mb-driver.h"

static void mb_stop(void *driver);

/*
 * The bus thread's way to wake the loop after each block (see
 * mb_poll_wake). Without it readings still arrive, at the cycle's end, so
 * a failure is logged and not fatal.
 */
static void open_wake(struct mb_driver *drv)
{
	const struct m2m_host_api *api = drv->api;
	int r;

	if (drv->wake_fd < 0) {
		drv->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (drv->wake_fd < 0) {
			api->log(drv->host, M2M_LOG_WARNING,
			         "eventfd failed (%s): readings wait for the end of each cycle",
			         strerror(errno));
			return;
		}
	}
	r = api->io_start(drv->host, drv->wake_fd, M2M_IO_READ, mb_poll_wake, drv, &drv->wake_io);
	if (r < 0) {
		drv->wake_io = NULL;
		api->log(drv->host, M2M_LOG_WARNING,
		         "watching the wake-up fd failed (%s): readings wait for the end of each cycle",
		         strerror(-r));
		/* The bus thread reads wake_fd only while work runs, and none does now. */
		close(drv->wake_fd);
		drv->wake_fd = -1;
	}
}

static int mb_start(void *driver)
{
	struct mb_driver *drv = driver;
	const struct m2m_host_api *api;
	int r;

	if (!drv)
		return -EINVAL;
	if (drv->running)
		return 0;
	api = drv->api;
	/*
	 * Work of the last run may still be finishing on a bus the host is
	 * closing; a new bus thread must not share the context with it.
	 */
	if (drv->inflight > 0)
		return -EBUSY;
	r = drv->io->open(drv);
	if (r < 0)
		return r;
	if (!drv->bus) {
		r = api->bus_open(drv->host, drv->bus_name, &drv->bus);
		if (r < 0) {
			drv->bus = NULL;
			return r;
		}
	}
	open_wake(drv);
	drv->running = true;
	for (size_t i = 0; i < drv->n_devices; i++) {
		struct mb_device *dev = &drv->devices[i];

		dev->state = DEV_UNKNOWN;
		dev->probing = false;
		mb_update_requests_per_cycle(drv, dev);
	}
	for (size_t i = 0; i < drv->n_groups; i++) {
		struct mb_group *g = &drv->groups[i];
		uint64_t ms = (uint64_t)(g->interval_us / US_PER_MS);

		/* The first poll right away, then every interval. */
		r = api->timer_start(drv->host, 0, ms, mb_poll_tick, g, &g->timer);
		if (r < 0) {
			g->timer = NULL;
			mb_stop(drv);
			return r;
		}
	}
	api->log(drv->host, M2M_LOG_INFO, "polling %zu points of %zu devices on \"%s\"",
	         drv->n_points, drv->n_devices, drv->bus_name);
	return 0;
}

static void mb_stop(void *driver)
{
	struct mb_driver *drv = driver;

	if (!drv || !drv->running)
		return;
	for (size_t i = 0; i < drv->n_groups; i++) {
		drv->api->timer_stop(drv->groups[i].timer);
		drv->groups[i].timer = NULL;
	}
	if (drv->wake_io)
		drv->api->io_stop(drv->wake_io);
	drv->wake_io = NULL;
	drv->running = false;
	/* The host closes the bus after stop(); a later start() opens it again. */
	drv->bus = NULL;
}

/* --- freeing --- */

static void plan_free(struct mb_table_plan *tp)
{
	free(tp->spans);
	free(tp->span_first);
	free(tp->members);
	free(tp->breaks);
	free(tp->new_breaks);
	free(tp->blocks);
}

void mb_free(struct mb_driver *drv)
{
	if (!drv)
		return;
	mb_stop(drv);
	/* Every bus callback has run: the bus thread is done with the context. */
	drv->io->close(drv);
	if (drv->wake_fd >= 0)
		close(drv->wake_fd);
	for (size_t i = 0; i < drv->n_groups; i++) {
		for (int t = 0; t < MB_TABLE_COUNT; t++)
			plan_free(&drv->groups[i].plans[t]);
		free(drv->groups[i].readings);
		free(drv->groups[i].texts);
	}
	free(drv->groups);
	for (size_t i = 0; i < drv->n_devices; i++)
		free(drv->devices[i].name);
	free(drv->devices);
	free(drv->points);
	free(drv->index);
	free(drv->tcp_host);
	free(drv->serial);
	free(drv->bus_name);
	free(drv);
}

static void mb_destroy(void *driver)
{
	mb_free(driver);
}

const struct m2m_driver_ops mb_driver_ops = {
	.struct_size = sizeof(struct m2m_driver_ops),
	.create = mb_create,
	.start = mb_start,
	.stop = mb_stop,
	.destroy = mb_destroy,
	.write = mb_write,
};

static const struct m2m_plugin mb_plugin = {
	.struct_size = sizeof(struct m2m_plugin),
	.abi_major = M2M_ABI_MAJOR,
	/*
	 * The lowest minor this plugin needs: it uses the ABI 1.1 calls only
	 * through the kit (m2m/plugin-util.h), which falls back on a 1.0 host.
	 */
	.abi_minor = 0,
	.name = "modbus",
	.version = MB_VERSION,
	.description = "Modbus TCP and RTU (libmodbus): block reads, every common type, writes",
	.ops = &mb_driver_ops,
};

M2M_PLUGIN_ENTRY
{
	(void)host_abi_minor; /* 1.1 calls are checked by struct_size when used */
	if (host_abi_major != M2M_ABI_MAJOR)
		return NULL;
	return &mb_plugin;
}
