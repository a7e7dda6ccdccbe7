/* SPDX-License-Identifier: MIT */
/*
 * ble.c - the Bluetooth LE driver: BlueZ over the system D-Bus (sd-bus).
 *
 * One instance drives one adapter (hci0 by default). BlueZ does the radio
 * work: the driver asks it to discover LE devices with duplicate reports
 * kept (SetDiscoveryFilter), reads each device's advertisement data from
 * InterfacesAdded and PropertiesChanged, decodes it with the pure decoders
 * of adv/ and submits the readings (ble-scan.c). Devices with connect =
 * true are connected and their GATT characteristics read, subscribed to
 * and written (ble-gatt.c).
 *
 * There is no thread. The sd-bus connection is driven by the loop: its fd
 * is an fd watch for the events sd_bus_get_events() asks for, its timeout
 * (sd_bus_get_timeout(), the deadline of the earliest pending call) a
 * host timer, and both callbacks run sd_bus_process() until it has nothing
 * left. Every call is asynchronous (sd_bus_call_method_async and friends);
 * a blocking sd_bus_call on the loop thread would stall every driver for
 * up to D-Bus' 25 s timeout when bluetoothd hangs. After anything that may
 * have queued an outgoing message, ble_bus_kick() brings the watch and the
 * timer up to date.
 *
 * BlueZ does not resume anything by itself: when the adapter is powered
 * off and on, when discovery stops, when bluetoothd restarts, the filter
 * and the discovery session are gone. The driver therefore sets them up
 * again on each of these (ble-scan.c), and reconnects to the bus itself
 * when the bus goes away, with backoff.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ble-driver.h"

static void ble_stop(void *driver);
static void bus_close(struct ble_driver *drv);

static int64_t mono_now_us(void)
{
	struct timespec ts;

	/* sd-bus' timeouts are CLOCK_MONOTONIC; the host's mono_us may not be. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * US_PER_S + ts.tv_nsec / 1000;
}

void ble_instance_state(struct ble_driver *drv, const char *reason)
{
	bool online = !reason || !*reason;

	if (online && !drv->state_reason[0] && drv->discovery_ours)
		return;
	if (!online && strcmp(drv->state_reason, reason) == 0)
		return;
	if (online) {
		drv->state_reason[0] = 0;
		m2m_device_state(drv->api, drv->host, NULL, M2M_DEVICE_ONLINE, "discovering");
	} else {
		snprintf(drv->state_reason, sizeof(drv->state_reason), "%s", reason);
		drv->api->log(drv->host, M2M_LOG_WARNING, "%s", reason);
		m2m_device_state(drv->api, drv->host, NULL, M2M_DEVICE_OFFLINE, reason);
	}
}

/* Runs sd_bus_process until it has nothing left, then updates the watches. */
static void bus_pump(struct ble_driver *drv)
{
	int r;

	if (!drv->bus || drv->in_process)
		return;
	drv->in_process = true;
	do {
		r = sd_bus_process(drv->bus, NULL);
	} while (r > 0 && drv->bus);
	drv->in_process = false;
	if (r < 0 && drv->bus) {
		ble_bus_lost(drv, r);
		return;
	}
	ble_bus_kick(drv);
}

static void bus_io_cb(m2m_io *io, int events, void *arg)
{
	struct ble_driver *drv = arg;

	(void)io;
	/*
	 * HUP and ERR show as a failing sd_bus_process. The host stopped the
	 * watch on ERR: the next kick must start it again.
	 */
	if (events & M2M_IO_ERR)
		drv->io_events = 0;
	bus_pump(drv);
}

static void bus_timer_cb(m2m_timer *timer, void *arg)
{
	(void)timer;
	bus_pump(arg);
}

void ble_bus_kick(struct ble_driver *drv)
{
	const struct m2m_host_api *api = drv->api;
	uint64_t deadline = UINT64_MAX, ms;
	int ev, want = drv->io_extra;

	if (!drv->bus || drv->in_process)
		return;
	ev = sd_bus_get_events(drv->bus);
	if (ev < 0) {
		ble_bus_lost(drv, ev);
		return;
	}
	if (ev & POLLIN)
		want |= M2M_IO_READ;
	if (ev & POLLOUT)
		want |= M2M_IO_WRITE;
	if (want != drv->io_events && drv->io) {
		api->io_update(drv->io, want);
		drv->io_events = want;
	}
	/*
	 * Messages may already sit in sd-bus' read queue (read together with
	 * an earlier one): then the fd will not wake us, so process at once.
	 */
	if (sd_bus_get_timeout(drv->bus, &deadline) < 0)
		deadline = UINT64_MAX;
	if (deadline == UINT64_MAX) {
		ms = 60 * 1000; /* nothing pending: a safety net only */
	} else {
		int64_t now = mono_now_us();

		ms = (int64_t)deadline <= now ? 0 : (deadline - (uint64_t)now + 999) / 1000;
	}
	m2m_timer_rearm(api, drv->host, &drv->bus_timer, ms, 0, bus_timer_cb, drv);
}

static int bus_open(struct ble_driver *drv)
{
	const struct m2m_host_api *api = drv->api;
	int fd, r;

	/* Connecting and authenticating are asynchronous: nothing here blocks. */
	r = sd_bus_open_system_with_description(&drv->bus, "m2md-ble");
	if (r < 0) {
		drv->bus = NULL;
		return r;
	}
	fd = sd_bus_get_fd(drv->bus);
	if (fd < 0) {
		r = fd;
		goto fail;
	}
	/* A 1.0 host knows neither HUP nor ERR, and reports both as READ. */
	drv->io_extra = M2M_HOST_HAS(api, device_state) ? M2M_IO_HUP | M2M_IO_ERR : 0;
	drv->io_events = M2M_IO_READ | M2M_IO_WRITE | drv->io_extra;
	r = api->io_start(drv->host, fd, drv->io_events, bus_io_cb, drv, &drv->io);
	if (r < 0) {
		drv->io = NULL;
		goto fail;
	}
	r = ble_scan_add_matches(drv);
	if (r < 0)
		goto fail;
	return 0;
fail:
	bus_close(drv);
	return r;
}

static void bus_close(struct ble_driver *drv)
{
	const struct m2m_host_api *api = drv->api;

	ble_gatt_reset(drv);
	ble_scan_reset(drv);
	drv->match_om = sd_bus_slot_unref(drv->match_om);
	drv->match_props = sd_bus_slot_unref(drv->match_props);
	drv->match_owner = sd_bus_slot_unref(drv->match_owner);
	drv->setup_slot = sd_bus_slot_unref(drv->setup_slot);
	api->io_stop(drv->io);
	drv->io = NULL;
	api->timer_stop(drv->bus_timer);
	drv->bus_timer = NULL;
	/*
	 * Without a flush, which would block: BlueZ ends our discovery
	 * session by itself when our connection goes away.
	 */
	drv->bus = sd_bus_close_unref(drv->bus);
}

static void retry_cb(m2m_timer *timer, void *arg)
{
	struct ble_driver *drv = arg;
	int r;

	(void)timer;
	drv->api->timer_stop(drv->retry);
	drv->retry = NULL;
	if (!drv->running)
		return;
	if (!drv->bus) {
		r = bus_open(drv);
		if (r < 0) {
			char why[128];

			snprintf(why, sizeof(why), "cannot connect to the system bus: %s", strerror(-r));
			ble_retry_later(drv, why);
			return;
		}
	}
	ble_scan_setup(drv);
	ble_bus_kick(drv);
}

void ble_retry_later(struct ble_driver *drv, const char *why)
{
	int64_t us = drv->retry_backoff_us ? drv->retry_backoff_us : US_PER_S;

	if (why)
		ble_instance_state(drv, why);
	if (drv->retry || !drv->running)
		return;
	if (drv->api->timer_start(drv->host, (uint64_t)(us / US_PER_MS), 0, retry_cb, drv,
	                          &drv->retry) < 0)
		drv->retry = NULL;
	drv->retry_backoff_us = us * 2 > drv->backoff_max_us ? drv->backoff_max_us : us * 2;
}

void ble_bus_lost(struct ble_driver *drv, int err)
{
	char why[128];

	snprintf(why, sizeof(why), "lost the system bus: %s", strerror(-err));
	bus_close(drv);
	ble_retry_later(drv, why);
}

static void tick_cb(m2m_timer *timer, void *arg)
{
	struct ble_driver *drv = arg;
	int64_t now = drv->api->mono_us(drv->host);

	(void)timer;
	ble_scan_tick(drv, now);
	if (drv->any_connect && drv->bus)
		ble_gatt_tick(drv, now);
	ble_bus_kick(drv);
}

static int ble_start(void *driver)
{
	struct ble_driver *drv = driver;
	const struct m2m_host_api *api;
	int r;

	if (!drv)
		return -EINVAL;
	if (drv->running)
		return 0;
	api = drv->api;
	drv->start_us = api->mono_us(drv->host);
	drv->retry_backoff_us = 0;
	drv->state_reason[0] = 0;
	for (size_t i = 0; i < drv->n_devices; i++) {
		struct ble_device *dev = &drv->devices[i];

		dev->life = BLE_LIFE_UNSEEN;
		dev->last_seen_us = drv->start_us;
		dev->link = BLE_LINK_IDLE;
		dev->next_connect_us = drv->start_us;
		dev->backoff_us = 0;
	}
	/* No bus means the instance fails now, and the host retries with backoff. */
	r = bus_open(drv);
	if (r < 0)
		return r;
	drv->running = true;
	r = api->timer_start(drv->host, (uint64_t)(drv->tick_us / US_PER_MS),
	                     (uint64_t)(drv->tick_us / US_PER_MS), tick_cb, drv, &drv->tick);
	if (r < 0) {
		drv->tick = NULL;
		ble_stop(drv);
		return r;
	}
	ble_scan_setup(drv);
	ble_bus_kick(drv);
	api->log(drv->host, M2M_LOG_INFO, "%zu devices on adapter %s", drv->n_devices, drv->adapter);
	return 0;
}

static void ble_stop(void *driver)
{
	struct ble_driver *drv = driver;

	if (!drv)
		return;
	drv->running = false;
	drv->api->timer_stop(drv->tick);
	drv->tick = NULL;
	drv->api->timer_stop(drv->retry);
	drv->retry = NULL;
	if (drv->bus)
		bus_close(drv);
}

void ble_free(struct ble_driver *drv)
{
	if (!drv)
		return;
	ble_stop(drv);
	for (size_t i = 0; i < drv->n_points; i++) {
		free(drv->points[i].field);
		free(drv->points[i].chr_path);
	}
	for (size_t i = 0; i < drv->n_devices; i++) {
		struct ble_device *dev = &drv->devices[i];

		free(dev->name);
		free(dev->stable_id);
		free(dev->raw);
		free(dev->path);
	}
	free(drv->points);
	free(drv->devices);
	free(drv->adapter);
	free(drv->adapter_path);
	free(drv->key_file);
	free(drv);
}

static void ble_destroy(void *driver)
{
	ble_free(driver);
}

const struct m2m_driver_ops ble_driver_ops = {
	.struct_size = sizeof(struct m2m_driver_ops),
	.create = ble_create,
	.start = ble_start,
	.stop = ble_stop,
	.destroy = ble_destroy,
	.write = ble_gatt_write,
};

static const struct m2m_plugin ble_plugin = {
	.struct_size = sizeof(struct m2m_plugin),
	.abi_major = M2M_ABI_MAJOR,
	/*
	 * sd-bus changes its timeout on every call: without timer_update each
	 * change would free and allocate a timer, which the kit does on a 1.0
	 * host; nothing else of 1.1 is needed.
	 */
	.abi_minor = 0,
	.name = "ble",
	.version = BLE_VERSION,
	.description = "Bluetooth LE through BlueZ (D-Bus): advertisement decoders, GATT read, notify and write",
	.ops = &ble_driver_ops,
};

M2M_PLUGIN_ENTRY
{
	(void)host_abi_minor;
	if (host_abi_major != M2M_ABI_MAJOR)
		return NULL;
	return &ble_plugin;
}
