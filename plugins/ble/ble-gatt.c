/* SPDX-License-Identifier: MIT */
/*
 * ble-gatt.c - devices with connect = true: their GATT characteristics
 * read on an interval, notified, and written.
 *
 * One device connects at a time, with discovery paused meanwhile (many
 * controllers cannot scan and initiate a connection at once, and BlueZ
 * advises stopping discovery first). After Connect succeeds the driver
 * waits for ServicesResolved; by then BlueZ has announced the service and
 * characteristic objects (InterfacesAdded, or GetManagedObjects), and each
 * point's characteristic UUID is mapped to its object path. Paths change
 * from one connection to the next, so they are forgotten on every
 * disconnect, and the connection is made again after a backoff.
 *
 * Notifications arrive as PropertiesChanged of the characteristic's Value
 * after StartNotify (ble-scan.c routes them here). Writes are WriteValue
 * with type "request": BlueZ's reply is the device's write response, and
 * completes the write of the core's write path.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ble-driver.h"

#define BLE_RESOLVE_TIMEOUT_US (30 * US_PER_S)

/* One write from ops.write to write_done. */
struct ble_write_op {
	struct ble_driver *drv;
	struct ble_point *p;
	m2m_write *req;
	sd_bus_slot *slot;
	struct ble_write_op *next;
};

static struct ble_device *device_of_path(struct ble_driver *drv, const char *path)
{
	uint8_t a[6];
	struct ble_device *dev;

	if (ble_dbus_path_addr(path, drv->adapter_path, a, NULL) < 0)
		return NULL;
	dev = ble_find_device(drv, a);
	return dev && dev->connect ? dev : NULL;
}

static void forget_paths(struct ble_device *dev)
{
	for (size_t i = 0; i < dev->n_points; i++) {
		struct ble_point *p = &dev->points[i];

		free(p->chr_path);
		p->chr_path = NULL;
		p->slot = sd_bus_slot_unref(p->slot);
		p->reading = p->notifying = false;
	}
}

/* Pending writes of DEV (or of every device, DEV NULL) fail with ERR. */
static void fail_writes(struct ble_driver *drv, struct ble_device *dev, int err, const char *text)
{
	struct ble_write_op **pp = &drv->writes;

	while (*pp) {
		struct ble_write_op *w = *pp;

		if (dev && w->p->dev != dev) {
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		w->slot = sd_bus_slot_unref(w->slot);
		drv->api->write_done(w->req, err, text);
		free(w);
	}
}

static void schedule_connect(struct ble_device *dev, int64_t now)
{
	struct ble_driver *drv = dev->drv;

	dev->backoff_us = dev->backoff_us ? dev->backoff_us * 2 : US_PER_S;
	if (dev->backoff_us > drv->backoff_max_us)
		dev->backoff_us = drv->backoff_max_us;
	dev->next_connect_us = now + dev->backoff_us;
}

void ble_gatt_device_gone(struct ble_device *dev, const char *why)
{
	struct ble_driver *drv = dev->drv;
	bool was_connecting = dev->link == BLE_LINK_CONNECTING;

	if (dev->link == BLE_LINK_IDLE)
		return;
	dev->connect_slot = sd_bus_slot_unref(dev->connect_slot);
	forget_paths(dev);
	fail_writes(drv, dev, -ENOTCONN, why);
	dev->link = BLE_LINK_IDLE;
	schedule_connect(dev, drv->api->mono_us(drv->host));
	m2m_device_state(drv->api, drv->host, dev->name, M2M_DEVICE_OFFLINE, why);
	drv->api->log(drv->host, M2M_LOG_NOTICE, "device \"%s\": %s; connecting again in %llds",
	              dev->name, why, (long long)(dev->backoff_us / US_PER_S));
	if (was_connecting)
		ble_discovery_pause(drv, false);
}

void ble_gatt_reset(struct ble_driver *drv)
{
	fail_writes(drv, NULL, -ECANCELED, "the connection to BlueZ was reset");
	for (size_t i = 0; i < drv->n_devices; i++) {
		struct ble_device *dev = &drv->devices[i];

		if (!dev->connect)
			continue;
		dev->connect_slot = sd_bus_slot_unref(dev->connect_slot);
		forget_paths(dev);
		dev->link = BLE_LINK_IDLE;
	}
}

static void submit_value(struct ble_point *p, const uint8_t *data, size_t len)
{
	struct ble_driver *drv = p->dev->drv;
	struct m2m_reading rd = { .ts_us = drv->api->now_us(drv->host), .point = p->id };
	double v;

	if (ble_raw_value(&p->raw, data, len, &v) < 0) {
		rd.quality = M2M_QUALITY_DECODE_ERROR;
	} else {
		rd.value = v;
		rd.quality = M2M_QUALITY_GOOD;
	}
	drv->api->submit(drv->host, &rd, 1);
	ble_device_seen(p->dev, drv->api->mono_us(drv->host));
}

void ble_gatt_value_changed(struct ble_driver *drv, const char *path, const uint8_t *data,
                            size_t len)
{
	struct ble_device *dev = device_of_path(drv, path);

	if (!dev || dev->link != BLE_LINK_READY)
		return;
	for (size_t i = 0; i < dev->n_points; i++) {
		struct ble_point *p = &dev->points[i];

		if (p->src == BLE_SRC_GATT && p->notify && p->chr_path && strcmp(p->chr_path, path) == 0)
			submit_value(p, data, len);
	}
}

static bool not_connected(const sd_bus_error *e)
{
	return sd_bus_error_has_name(e, "org.bluez.Error.NotConnected") ||
	       sd_bus_error_has_name(e, SD_BUS_ERROR_UNKNOWN_OBJECT) ||
	       sd_bus_error_has_name(e, SD_BUS_ERROR_UNKNOWN_METHOD);
}

static int on_read(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	struct ble_point *p = userdata;
	struct ble_driver *drv = p->dev->drv;
	const void *data;
	size_t len;
	char buf[192];

	(void)ret_error;
	p->slot = sd_bus_slot_unref(p->slot);
	p->reading = false;
	if (sd_bus_message_is_method_error(m, NULL)) {
		struct m2m_reading rd = {
			.ts_us = drv->api->now_us(drv->host), .point = p->id,
			.quality = M2M_QUALITY_COMM_ERROR,
		};

		drv->api->submit(drv->host, &rd, 1);
		if (not_connected(sd_bus_message_get_error(m))) {
			snprintf(buf, sizeof(buf), "read failed: ");
			ble_dbus_error_text(m, buf + strlen(buf), sizeof(buf) - strlen(buf));
			ble_gatt_device_gone(p->dev, buf);
		}
		return 0;
	}
	if (sd_bus_message_read_array(m, 'y', &data, &len) >= 0)
		submit_value(p, data, len);
	return 0;
}

static void read_point(struct ble_point *p)
{
	struct ble_driver *drv = p->dev->drv;
	sd_bus_message *m = NULL;
	int r;

	r = sd_bus_message_new_method_call(drv->bus, &m, BLUEZ_SERVICE, p->chr_path, BLUEZ_GATT_CHR,
	                                   "ReadValue");
	if (r >= 0)
		r = sd_bus_message_append(m, "a{sv}", 0);
	if (r >= 0)
		r = sd_bus_call_async(drv->bus, &p->slot, m, on_read, p, 0);
	sd_bus_message_unref(m);
	if (r >= 0)
		p->reading = true;
}

static int on_notify(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	struct ble_point *p = userdata;
	struct ble_driver *drv = p->dev->drv;
	char buf[192];

	(void)ret_error;
	p->slot = sd_bus_slot_unref(p->slot);
	if (sd_bus_message_is_method_error(m, NULL)) {
		drv->api->log(drv->host, M2M_LOG_WARNING, "device \"%s\": StartNotify on %s failed: %s",
		              p->dev->name, p->field, ble_dbus_error_text(m, buf, sizeof(buf)));
		return 0;
	}
	p->notifying = true;
	return 0;
}

/* ServicesResolved: every characteristic object is known; map, subscribe, read. */
static void services_resolved(struct ble_device *dev)
{
	struct ble_driver *drv = dev->drv;
	int64_t now = drv->api->mono_us(drv->host);
	char u[40];

	dev->link = BLE_LINK_READY;
	dev->backoff_us = 0;
	m2m_device_state(drv->api, drv->host, dev->name, M2M_DEVICE_ONLINE, "connected");
	ble_device_seen(dev, now);
	for (size_t i = 0; i < dev->n_points; i++) {
		struct ble_point *p = &dev->points[i];

		if (p->src != BLE_SRC_GATT)
			continue;
		if (!p->chr_path) {
			snprintf(u, sizeof(u), "%02x%02x%02x%02x-...", p->chr_uuid[0], p->chr_uuid[1],
			         p->chr_uuid[2], p->chr_uuid[3]);
			drv->api->log(drv->host, M2M_LOG_WARNING, "device \"%s\": no characteristic %s "
			              "for point \"%s\"", dev->name, u, p->field);
			continue;
		}
		p->next_read_us = now;
		if (p->notify)
			sd_bus_call_method_async(drv->bus, &p->slot, BLUEZ_SERVICE, p->chr_path,
			                         BLUEZ_GATT_CHR, "StartNotify", on_notify, p, "");
	}
}

void ble_gatt_chr_added(struct ble_driver *drv, const char *path, const struct ble_dbus_props *p)
{
	struct ble_device *dev = device_of_path(drv, path);

	if (!dev || !p->has_uuid)
		return;
	for (size_t i = 0; i < dev->n_points; i++) {
		struct ble_point *pt = &dev->points[i];

		if (pt->src == BLE_SRC_GATT && memcmp(pt->chr_uuid, p->uuid, 16) == 0) {
			char *copy = m2m_strdup(path);

			if (copy) {
				free(pt->chr_path);
				pt->chr_path = copy;
			}
		}
	}
}

void ble_gatt_device_props(struct ble_device *dev, const struct ble_dbus_props *p)
{
	if (p->has_connected && !p->connected && dev->link != BLE_LINK_IDLE &&
	    dev->link != BLE_LINK_CONNECTING) {
		ble_gatt_device_gone(dev, "disconnected");
		return;
	}
	if (p->has_resolved && p->resolved && dev->link == BLE_LINK_RESOLVING)
		services_resolved(dev);
	else if (p->has_resolved && p->resolved)
		dev->resolved = true;
}

static int on_connected(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	struct ble_device *dev = userdata;
	struct ble_driver *drv = dev->drv;
	char buf[160], why[200];

	(void)ret_error;
	dev->connect_slot = sd_bus_slot_unref(dev->connect_slot);
	ble_discovery_pause(drv, false);
	if (sd_bus_message_is_method_error(m, NULL) &&
	    !sd_bus_error_has_name(sd_bus_message_get_error(m), "org.bluez.Error.AlreadyConnected")) {
		snprintf(why, sizeof(why), "connect failed: %s", ble_dbus_error_text(m, buf, sizeof(buf)));
		ble_gatt_device_gone(dev, why);
		return 0;
	}
	dev->link = BLE_LINK_RESOLVING;
	dev->resolve_deadline_us = drv->api->mono_us(drv->host) + BLE_RESOLVE_TIMEOUT_US;
	if (dev->resolved)
		services_resolved(dev);
	return 0;
}

static void connect_device(struct ble_device *dev)
{
	struct ble_driver *drv = dev->drv;
	int r;

	ble_discovery_pause(drv, true);
	dev->resolved = false;
	forget_paths(dev);
	r = sd_bus_call_method_async(drv->bus, &dev->connect_slot, BLUEZ_SERVICE, dev->path,
	                             BLUEZ_DEVICE, "Connect", on_connected, dev, "");
	if (r < 0) {
		ble_discovery_pause(drv, false);
		schedule_connect(dev, drv->api->mono_us(drv->host));
		return;
	}
	dev->link = BLE_LINK_CONNECTING;
	drv->api->log(drv->host, M2M_LOG_INFO, "device \"%s\": connecting", dev->name);
}

void ble_gatt_tick(struct ble_driver *drv, int64_t now)
{
	bool connecting = false;

	for (size_t i = 0; i < drv->n_devices; i++)
		connecting |= drv->devices[i].link == BLE_LINK_CONNECTING;
	for (size_t i = 0; i < drv->n_devices; i++) {
		struct ble_device *dev = &drv->devices[i];

		if (!dev->connect)
			continue;
		if (dev->link == BLE_LINK_IDLE && !connecting && dev->path && drv->powered &&
		    drv->bluez && now >= dev->next_connect_us) {
			connect_device(dev);
			connecting = true;
		} else if (dev->link == BLE_LINK_RESOLVING && now >= dev->resolve_deadline_us) {
			ble_gatt_device_gone(dev, "services not resolved within 30s");
		} else if (dev->link == BLE_LINK_READY) {
			for (size_t k = 0; k < dev->n_points; k++) {
				struct ble_point *p = &dev->points[k];

				if (p->src == BLE_SRC_GATT && p->chr_path && p->interval_us && !p->reading &&
				    !p->slot && now >= p->next_read_us) {
					p->next_read_us = now + p->interval_us;
					read_point(p);
				}
			}
		}
	}
}

/* RAW as the bytes of P's type and order, into OUT; returns the length or -ERANGE. */
static int encode(const struct ble_point *p, double raw, uint8_t out[8])
{
	size_t n = ble_raw_type_size(p->raw.type);
	uint8_t be[8];
	uint64_t u = 0;

	if (p->raw.type == BLE_RAW_FLOAT32) {
		float f = (float)raw;
		uint32_t x;

		memcpy(&x, &f, 4);
		u = x;
	} else if (p->raw.type == BLE_RAW_FLOAT64) {
		memcpy(&u, &raw, 8);
	} else {
		double r = nearbyint(raw);
		bool sign = p->raw.type == BLE_RAW_INT8 || p->raw.type == BLE_RAW_INT16 ||
		            p->raw.type == BLE_RAW_INT24 || p->raw.type == BLE_RAW_INT32 ||
		            p->raw.type == BLE_RAW_INT64;
		double lim = ldexp(1.0, (int)(8 * n) - (sign ? 1 : 0));

		if (p->raw.type == BLE_RAW_BOOL)
			r = raw != 0 ? 1 : 0;
		else if (r >= lim || r < (sign ? -lim : 0))
			return -ERANGE;
		u = sign ? (uint64_t)(int64_t)r : (uint64_t)r;
		if (p->raw.type == BLE_RAW_BOOL)
			u <<= p->raw.bit;
	}
	for (size_t i = 0; i < n; i++)
		be[i] = (uint8_t)(u >> (8 * (n - 1 - i)));
	for (size_t i = 0; i < n; i++) {
		size_t k = i;

		/* The Modbus meanings: DCBA reversed, BADC bytes of each word swapped, CDAB words reversed. */
		if (p->raw.order == BLE_RAW_DCBA)
			k = n - 1 - i;
		else if (p->raw.order == BLE_RAW_BADC && (i ^ 1) < n)
			k = i ^ 1;
		else if (p->raw.order == BLE_RAW_CDAB && n % 2 == 0)
			k = (n / 2 - 1 - i / 2) * 2 + (i & 1);
		out[i] = be[k];
	}
	return (int)n;
}

static int on_written(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	struct ble_write_op *w = userdata;
	struct ble_driver *drv = w->drv;
	struct ble_write_op **pp;
	char buf[192];

	(void)ret_error;
	for (pp = &drv->writes; *pp && *pp != w; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = w->next;
	w->slot = sd_bus_slot_unref(w->slot);
	if (sd_bus_message_is_method_error(m, NULL))
		drv->api->write_done(w->req, -EIO, ble_dbus_error_text(m, buf, sizeof(buf)));
	else
		drv->api->write_done(w->req, 0, NULL);
	free(w);
	return 0;
}

int ble_gatt_write(void *driver, uint32_t point, double raw_value, m2m_write *req)
{
	struct ble_driver *drv = driver;
	struct ble_point *p = NULL;
	struct ble_write_op *w;
	sd_bus_message *m = NULL;
	uint8_t bytes[8];
	int n, r;

	for (size_t i = 0; i < drv->n_points && !p; i++)
		if (drv->points[i].id == point)
			p = &drv->points[i];
	if (!p || p->src != BLE_SRC_GATT || !p->writable) {
		drv->api->write_done(req, -EROFS, "not a writable characteristic");
		return 0;
	}
	if (!drv->bus || p->dev->link != BLE_LINK_READY || !p->chr_path) {
		drv->api->write_done(req, -ENOTCONN, "the device is not connected");
		return 0;
	}
	n = encode(p, raw_value, bytes);
	if (n < 0) {
		drv->api->write_done(req, -ERANGE, "the value does not fit the characteristic's type");
		return 0;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		drv->api->write_done(req, -ENOMEM, NULL);
		return 0;
	}
	*w = (struct ble_write_op){ .drv = drv, .p = p, .req = req };
	r = sd_bus_message_new_method_call(drv->bus, &m, BLUEZ_SERVICE, p->chr_path, BLUEZ_GATT_CHR,
	                                   "WriteValue");
	if (r >= 0)
		r = sd_bus_message_append_array(m, 'y', bytes, (size_t)n);
	/* "request": a write with response, so that the reply means the device took it. */
	if (r >= 0)
		r = sd_bus_message_append(m, "a{sv}", 1, "type", "s", "request");
	if (r >= 0)
		r = sd_bus_call_async(drv->bus, &w->slot, m, on_written, w, 0);
	sd_bus_message_unref(m);
	if (r < 0) {
		free(w);
		drv->api->write_done(req, r, "cannot send WriteValue");
		return 0;
	}
	w->next = drv->writes;
	drv->writes = w;
	ble_bus_kick(drv);
	return 0;
}
