/* SPDX-License-Identifier: MIT */
/*
 * ble-scan.c - discovery: BlueZ's objects and signals, advertisements to
 * readings, silent devices, and setting everything up again when BlueZ
 * forgets it.
 *
 * The setup is one chain of asynchronous calls, one at a time (setup_slot):
 * GetManagedObjects (is the adapter there, is it powered), then
 * SetDiscoveryFilter {Transport: le, DuplicateData: true}, then
 * StartDiscovery. The signal matches are installed before the chain
 * starts, so nothing that happens in between is missed. The chain runs
 * again when bluetoothd gets a new owner on the bus (NameOwnerChanged),
 * when the adapter appears or is powered on, when discovery stops, and
 * after a failure with backoff (ble_retry_later).
 *
 * Advertisement data comes from InterfacesAdded (a new device) and from
 * PropertiesChanged on a Device1 (ManufacturerData, ServiceData, RSSI).
 * The Device1 objects GetManagedObjects lists are BlueZ's cache, data of
 * an unknown age: they are not decoded, only their paths are noted.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ble-driver.h"

static void arm_discovery(struct ble_driver *drv);

struct ble_device *ble_find_device(struct ble_driver *drv, const uint8_t addr[6])
{
	for (size_t i = 0; i < drv->n_devices; i++) {
		struct ble_device *dev = &drv->devices[i];

		if (dev->addr_known && memcmp(dev->addr, addr, 6) == 0)
			return dev;
	}
	return NULL;
}

/* A device found by the stable id in its payload learns its current address. */
static struct ble_device *find_by_id(struct ble_driver *drv, const struct ble_adv *adv)
{
	for (size_t i = 0; i < drv->n_devices; i++) {
		struct ble_device *dev = &drv->devices[i];
		char id[BLE_STABLE_ID_MAX];

		if (!dev->stable_id)
			continue;
		if (ble_adv_stable_id(dev->fmt, adv, id, sizeof(id)) == 0 &&
		    strcasecmp(id, dev->stable_id) == 0) {
			char a[BLE_ADDR_STRLEN];

			memcpy(dev->addr, adv->addr, 6);
			dev->addr_known = true;
			ble_addr_format(adv->addr, a);
			drv->api->log(drv->host, M2M_LOG_INFO, "device \"%s\" (id %s) advertises as %s",
			              dev->name, dev->stable_id, a);
			return dev;
		}
	}
	return NULL;
}

static void add_reading(struct ble_driver *drv, uint32_t id, double value, uint16_t quality)
{
	if (drv->n_readings < BLE_MAX_READINGS)
		drv->readings[drv->n_readings++] = (struct m2m_reading){
			.ts_us = drv->emit_ts_us, .value = value, .point = id, .quality = quality
		};
}

static void flush_readings(struct ble_driver *drv)
{
	if (drv->n_readings)
		drv->api->submit(drv->host, drv->readings, drv->n_readings);
	drv->n_readings = 0;
}

/* The decoder's callback: a value for each point that keeps this field. */
static void emit_cb(void *ctx, const char *field, double value, const char *text)
{
	struct ble_driver *drv = ctx;
	struct ble_device *dev = drv->emit_dev;

	for (size_t i = 0; i < dev->n_points; i++) {
		struct ble_point *p = &dev->points[i];

		if (p->src != BLE_SRC_FIELD || strcmp(p->field, field) != 0)
			continue;
		if (text && p->text)
			drv->api->submit_text(drv->host, p->id, drv->emit_ts_us, text, M2M_QUALITY_GOOD, 0);
		else if (!text && !p->text)
			add_reading(drv, p->id, value, M2M_QUALITY_GOOD);
	}
}

/* Bad readings for the decoded points of DEV (not rssi, not last_seen). */
static void bad_fields(struct ble_driver *drv, struct ble_device *dev, uint16_t quality)
{
	for (size_t i = 0; i < dev->n_points; i++) {
		struct ble_point *p = &dev->points[i];

		if (p->src != BLE_SRC_FIELD)
			continue;
		if (p->text)
			drv->api->submit_text(drv->host, p->id, drv->emit_ts_us, "", quality, 0);
		else
			add_reading(drv, p->id, 0, quality);
	}
}

static void count(struct m2m_stat_slot *slot, uint64_t *n)
{
	m2m_stat_slot_set(slot, (double)++*n);
}

/* What a failed decode means for DEV: counted, logged once per episode, bad readings. */
static void decode_failed(struct ble_driver *drv, struct ble_device *dev, int r, const char *err)
{
	const struct m2m_host_api *api = drv->api;

	switch (r) {
	case -EBADMSG:
		count(&dev->st.decode_errors, &dev->decode_errors);
		if (dev->decode_errors == 1 || dev->decode_errors % 1000 == 0)
			api->log(drv->host, M2M_LOG_WARNING, "device \"%s\": malformed %s advertisement "
			         "(%llu so far): %s", dev->name, ble_format_name(dev->fmt),
			         (unsigned long long)dev->decode_errors, err);
		bad_fields(drv, dev, M2M_QUALITY_DECODE_ERROR);
		break;
	case -EACCES:
		count(&dev->st.auth_errors, &dev->auth_errors);
		if (!dev->key_error)
			api->log(drv->host, M2M_LOG_ERR, "device \"%s\": %s%s", dev->name, err,
			         dev->has_key ? "" : " (no key for it in key_file)");
		dev->key_error = true;
		bad_fields(drv, dev, M2M_QUALITY_DEVICE_ERROR);
		break;
	case -ESTALE:
		count(&dev->st.replays, &dev->replays);
		if (dev->replays == 1 || dev->replays % 1000 == 0)
			api->log(drv->host, M2M_LOG_WARNING, "device \"%s\": replayed advertisement "
			         "refused (%llu so far): %s", dev->name, (unsigned long long)dev->replays, err);
		break;
	default:
		/*
		 * -ENOMSG: another frame of the device (a beacon beside its sensor
		 * data), or the wrong format configured: counted, and said once, so
		 * that a device that never decodes shows why.
		 */
		count(&dev->st.other_frames, &dev->other_frames);
		if (dev->other_frames == 1 && dev->decoded == 0)
			api->log(drv->host, M2M_LOG_NOTICE, "device \"%s\": an advertisement in no form "
			         "of format %s (another frame type, or is the device's format another?)",
			         dev->name, ble_format_name(dev->fmt));
		break;
	}
}

void ble_device_seen(struct ble_device *dev, int64_t now)
{
	struct ble_driver *drv = dev->drv;

	dev->last_seen_us = now;
	if (dev->life == BLE_LIFE_FRESH)
		return;
	if (dev->life != BLE_LIFE_STALE)
		m2m_device_state(drv->api, drv->host, dev->name, M2M_DEVICE_ONLINE,
		                 dev->life == BLE_LIFE_OFFLINE ? "advertising again" : "advertising");
	dev->life = BLE_LIFE_FRESH;
}

static void device_advert(struct ble_driver *drv, struct ble_device *dev,
                          const struct ble_dbus_props *p)
{
	const struct m2m_host_api *api = drv->api;
	int64_t now = api->mono_us(drv->host);
	bool fresh = false, first = dev->life == BLE_LIFE_UNSEEN || dev->life == BLE_LIFE_OFFLINE;
	char err[160] = "";

	count(&dev->st.adverts, &dev->adverts);
	ble_device_seen(dev, now);
	drv->emit_dev = dev;
	drv->emit_ts_us = api->now_us(drv->host);
	drv->n_readings = 0;
	if ((p->has_mfr || p->has_svc) && dev->fmt != BLE_FMT_COUNT) {
		int r = ble_adv_decode(dev->fmt, &p->adv, dev->has_key ? &dev->key : NULL, &dev->dec,
		                       dev->raw, dev->n_raw, emit_cb, drv, err, sizeof(err));

		if (r > 0) {
			fresh = true;
			count(&dev->st.decoded, &dev->decoded);
			if (dev->key_error)
				api->log(drv->host, M2M_LOG_NOTICE, "device \"%s\": advertisements "
				         "decode again", dev->name);
			dev->key_error = false;
		} else if (r == 0) {
			count(&dev->st.duplicates, &dev->duplicates);
		} else {
			decode_failed(drv, dev, r, err);
		}
	}
	if (p->adv.has_rssi)
		dev->dec_rssi = p->adv.rssi, dev->has_rssi = true;
	if (fresh || first || now - dev->last_report_us >= dev->report_us) {
		dev->last_report_us = now;
		for (size_t i = 0; i < dev->n_points; i++) {
			const struct ble_point *pt = &dev->points[i];

			if (pt->src == BLE_SRC_RSSI && dev->has_rssi)
				add_reading(drv, pt->id, dev->dec_rssi, M2M_QUALITY_GOOD);
			else if (pt->src == BLE_SRC_LAST_SEEN)
				add_reading(drv, pt->id, (double)drv->emit_ts_us / 1e6, M2M_QUALITY_GOOD);
		}
	}
	flush_readings(drv);
}

/* The properties of a Device1 object of our adapter, from a signal or the object list. */
static void device_props(struct ble_driver *drv, const char *path, const struct ble_dbus_props *p,
                         bool advert)
{
	struct ble_dbus_props q = *p;
	struct ble_device *dev;

	if (!q.has_addr && ble_dbus_path_addr(path, drv->adapter_path, q.addr, NULL) < 0)
		return;
	memcpy(q.adv.addr, q.addr, 6);
	advert = advert && (q.has_mfr || q.has_svc || q.adv.has_rssi);
	if (advert)
		count(&drv->st_adverts, &drv->adverts);
	dev = ble_find_device(drv, q.addr);
	if (!dev && advert && drv->any_by_id && (q.has_mfr || q.has_svc))
		dev = find_by_id(drv, &q.adv);
	if (!dev) {
		if (advert)
			count(&drv->st_unknown, &drv->unknown_adverts);
		return;
	}
	if (!dev->path || strcmp(dev->path, path) != 0) {
		char *copy = m2m_strdup(path);

		if (copy) {
			free(dev->path);
			dev->path = copy;
		}
	}
	if (dev->connect)
		ble_gatt_device_props(dev, &q);
	if (advert)
		device_advert(drv, dev, &q);
}

/* True when PATH is a device of our adapter (or an object below one). */
static bool ours(struct ble_driver *drv, const char *path)
{
	size_t n = strlen(drv->adapter_path);

	return strncmp(path, drv->adapter_path, n) == 0 && path[n] == '/';
}

/*
 * ADDED: the adapter object is new to us (the object list or InterfacesAdded);
 * SIGNAL: it came by a signal, so no setup call of ours is waiting for it.
 */
static void adapter_props(struct ble_driver *drv, const struct ble_dbus_props *p, bool added,
                          bool signal)
{
	char why[128];

	if (added)
		drv->adapter_present = true;
	if (p->has_powered) {
		bool was = drv->powered;

		drv->powered = p->powered;
		if (!p->powered) {
			drv->discovery_ours = false;
			snprintf(why, sizeof(why), "adapter %s is powered off", drv->adapter);
			ble_instance_state(drv, why);
			ble_gatt_reset(drv);
		} else if (!was && !added) {
			drv->api->log(drv->host, M2M_LOG_INFO, "adapter %s powered on: discovery again",
			              drv->adapter);
			arm_discovery(drv);
		}
	}
	if (p->has_discovering) {
		drv->discovering = p->discovering;
		if (!p->discovering && drv->discovery_ours && !drv->discovery_paused && drv->powered) {
			/*
			 * Stopped behind our back (another client's StopDiscovery on
			 * an old BlueZ, a controller reset): nothing comes back by
			 * itself.
			 */
			drv->discovery_ours = false;
			drv->api->log(drv->host, M2M_LOG_NOTICE, "discovery on %s stopped: starting it again",
			              drv->adapter);
			arm_discovery(drv);
		}
	}
	if (added && signal && drv->powered && !drv->discovery_ours)
		arm_discovery(drv);
}

/* One interface's properties of an object, at the a{sv} in M. */
static int object_iface(struct ble_driver *drv, const char *path, const char *iface,
                        sd_bus_message *m, bool advert)
{
	struct ble_dbus_props p;
	int r;

	if (strcmp(iface, BLUEZ_ADAPTER) == 0 && strcmp(path, drv->adapter_path) == 0) {
		r = ble_dbus_read_props(m, &p);
		if (r >= 0)
			adapter_props(drv, &p, true, advert);
		return r;
	}
	if (ours(drv, path) && strcmp(iface, BLUEZ_DEVICE) == 0) {
		r = ble_dbus_read_props(m, &p);
		if (r >= 0)
			device_props(drv, path, &p, advert);
		return r;
	}
	if (ours(drv, path) && drv->any_connect && strcmp(iface, BLUEZ_GATT_CHR) == 0) {
		r = ble_dbus_read_props(m, &p);
		if (r >= 0)
			ble_gatt_chr_added(drv, path, &p);
		return r;
	}
	return sd_bus_message_skip(m, "a{sv}");
}

/* The a{sa{sv}} of one object in M. */
static int object_ifaces(struct ble_driver *drv, const char *path, sd_bus_message *m, bool advert)
{
	int r = sd_bus_message_enter_container(m, 'a', "{sa{sv}}");

	if (r < 0)
		return r;
	while ((r = sd_bus_message_enter_container(m, 'e', "sa{sv}")) > 0) {
		const char *iface;

		r = sd_bus_message_read_basic(m, 's', &iface);
		if (r >= 0)
			r = object_iface(drv, path, iface, m, advert);
		if (r >= 0)
			r = sd_bus_message_exit_container(m);
		if (r < 0)
			return r;
	}
	return r < 0 ? r : sd_bus_message_exit_container(m);
}

static int on_objects(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	struct ble_driver *drv = userdata;
	char buf[192], why[256];
	int r;

	(void)ret_error;
	drv->setup_slot = sd_bus_slot_unref(drv->setup_slot);
	if (sd_bus_message_is_method_error(m, NULL)) {
		const sd_bus_error *e = sd_bus_message_get_error(m);

		if (sd_bus_error_has_name(e, SD_BUS_ERROR_SERVICE_UNKNOWN) ||
		    sd_bus_error_has_name(e, SD_BUS_ERROR_NAME_HAS_NO_OWNER)) {
			drv->bluez = false;
			snprintf(why, sizeof(why), "bluetoothd is not running (%s)",
			         ble_dbus_error_text(m, buf, sizeof(buf)));
		} else {
			snprintf(why, sizeof(why), "BlueZ's object list failed: %s",
			         ble_dbus_error_text(m, buf, sizeof(buf)));
		}
		ble_retry_later(drv, why);
		return 0;
	}
	drv->bluez = true;
	drv->adapter_present = false;
	drv->powered = false;
	r = sd_bus_message_enter_container(m, 'a', "{oa{sa{sv}}}");
	while (r >= 0 && (r = sd_bus_message_enter_container(m, 'e', "oa{sa{sv}}")) > 0) {
		const char *path;

		r = sd_bus_message_read_basic(m, 'o', &path);
		if (r >= 0)
			r = object_ifaces(drv, path, m, false);
		if (r >= 0)
			r = sd_bus_message_exit_container(m);
	}
	if (r < 0) {
		snprintf(why, sizeof(why), "cannot read BlueZ's object list: %s", strerror(-r));
		ble_retry_later(drv, why);
		return 0;
	}
	if (!drv->adapter_present) {
		/* InterfacesAdded tells when it appears. */
		snprintf(why, sizeof(why), "adapter %s not found", drv->adapter);
		ble_instance_state(drv, why);
		return 0;
	}
	if (!drv->powered) {
		snprintf(why, sizeof(why), "adapter %s is powered off", drv->adapter);
		ble_instance_state(drv, why);
		return 0;
	}
	if (!drv->discovery_ours)
		arm_discovery(drv);
	return 0;
}

/* A call of the setup chain to the adapter, with CB for its reply. */
static int adapter_call(struct ble_driver *drv, const char *member, sd_bus_message_handler_t cb,
                        bool filter)
{
	sd_bus_message *m = NULL;
	int r;

	drv->setup_slot = sd_bus_slot_unref(drv->setup_slot);
	r = sd_bus_message_new_method_call(drv->bus, &m, BLUEZ_SERVICE, drv->adapter_path,
	                                   BLUEZ_ADAPTER, member);
	if (r >= 0 && filter)
		r = ble_dbus_append_filter(m);
	if (r >= 0)
		r = sd_bus_call_async(drv->bus, &drv->setup_slot, m, cb, drv, 0);
	sd_bus_message_unref(m);
	return r;
}

static int on_started(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	struct ble_driver *drv = userdata;
	char buf[192], why[256];

	(void)ret_error;
	drv->setup_slot = sd_bus_slot_unref(drv->setup_slot);
	/* InProgress: this client's session is already running. */
	if (sd_bus_message_is_method_error(m, NULL) &&
	    !sd_bus_error_has_name(sd_bus_message_get_error(m), "org.bluez.Error.InProgress")) {
		snprintf(why, sizeof(why), "StartDiscovery on %s failed: %s", drv->adapter,
		         ble_dbus_error_text(m, buf, sizeof(buf)));
		ble_retry_later(drv, why);
		return 0;
	}
	count(&drv->st_starts, &drv->discovery_starts);
	drv->retry_backoff_us = 0;
	ble_instance_state(drv, NULL);
	drv->discovery_ours = true;
	drv->api->log(drv->host, M2M_LOG_INFO, "discovering on %s", drv->adapter);
	return 0;
}

static int on_filter(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	struct ble_driver *drv = userdata;
	char buf[192], why[256];
	int r;

	(void)ret_error;
	drv->setup_slot = sd_bus_slot_unref(drv->setup_slot);
	if (sd_bus_message_is_method_error(m, NULL)) {
		snprintf(why, sizeof(why), "SetDiscoveryFilter on %s failed: %s", drv->adapter,
		         ble_dbus_error_text(m, buf, sizeof(buf)));
		ble_retry_later(drv, why);
		return 0;
	}
	count(&drv->st_filters, &drv->filters_set);
	if (drv->discovery_paused)
		return 0;
	r = adapter_call(drv, "StartDiscovery", on_started, false);
	if (r < 0)
		ble_bus_lost(drv, r);
	return 0;
}

static void arm_discovery(struct ble_driver *drv)
{
	int r;

	if (!drv->bus || drv->discovery_paused)
		return;
	/* The filter belongs to this client's session: set it before every start. */
	r = adapter_call(drv, "SetDiscoveryFilter", on_filter, true);
	if (r < 0)
		ble_bus_lost(drv, r);
}

void ble_discovery_pause(struct ble_driver *drv, bool pause)
{
	sd_bus_message *m = NULL;

	if (pause == drv->discovery_paused || !drv->bus)
		return;
	drv->discovery_paused = pause;
	if (!pause) {
		arm_discovery(drv);
		return;
	}
	drv->discovery_ours = false;
	/* The reply does not matter: a failure leaves discovery running, which only costs air time. */
	if (sd_bus_message_new_method_call(drv->bus, &m, BLUEZ_SERVICE, drv->adapter_path,
	                                   BLUEZ_ADAPTER, "StopDiscovery") >= 0)
		sd_bus_send(drv->bus, m, NULL);
	sd_bus_message_unref(m);
}

void ble_scan_setup(struct ble_driver *drv)
{
	int r;

	if (!drv->bus)
		return;
	drv->discovery_ours = false;
	drv->setup_slot = sd_bus_slot_unref(drv->setup_slot);
	r = sd_bus_call_method_async(drv->bus, &drv->setup_slot, BLUEZ_SERVICE, "/",
	                             "org.freedesktop.DBus.ObjectManager", "GetManagedObjects",
	                             on_objects, drv, "");
	if (r < 0)
		ble_bus_lost(drv, r);
}

static int on_interfaces_added(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	struct ble_driver *drv = userdata;
	const char *path;

	(void)ret_error;
	if (sd_bus_message_read_basic(m, 'o', &path) >= 0)
		object_ifaces(drv, path, m, true);
	return 0;
}

static int on_interfaces_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	struct ble_driver *drv = userdata;
	const char *path, *iface;
	char why[128];

	(void)ret_error;
	if (sd_bus_message_read_basic(m, 'o', &path) < 0 ||
	    sd_bus_message_enter_container(m, 'a', "s") < 0)
		return 0;
	while (sd_bus_message_read_basic(m, 's', &iface) > 0) {
		if (strcmp(iface, BLUEZ_ADAPTER) == 0 && strcmp(path, drv->adapter_path) == 0) {
			drv->adapter_present = drv->powered = drv->discovery_ours = false;
			ble_gatt_reset(drv);
			snprintf(why, sizeof(why), "adapter %s was removed", drv->adapter);
			ble_instance_state(drv, why);
		} else if (strcmp(iface, BLUEZ_DEVICE) == 0 && ours(drv, path)) {
			uint8_t a[6];
			struct ble_device *dev = ble_dbus_path_addr(path, drv->adapter_path, a, NULL) == 0
			                                 ? ble_find_device(drv, a)
			                                 : NULL;

			/* Its silence makes it stale and offline; a connection is gone now. */
			if (dev && dev->connect)
				ble_gatt_device_gone(dev, "BlueZ removed the device");
		}
	}
	return 0;
}

static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	struct ble_driver *drv = userdata;
	const char *path = sd_bus_message_get_path(m), *iface;
	struct ble_dbus_props p;

	(void)ret_error;
	if (!path || sd_bus_message_read_basic(m, 's', &iface) < 0)
		return 0;
	if (strcmp(iface, BLUEZ_ADAPTER) == 0 && strcmp(path, drv->adapter_path) == 0) {
		if (ble_dbus_read_props(m, &p) >= 0)
			adapter_props(drv, &p, false, true);
	} else if (strcmp(iface, BLUEZ_DEVICE) == 0 && ours(drv, path)) {
		if (ble_dbus_read_props(m, &p) >= 0)
			device_props(drv, path, &p, true);
	} else if (strcmp(iface, BLUEZ_GATT_CHR) == 0 && drv->any_connect && ours(drv, path)) {
		if (ble_dbus_read_props(m, &p) >= 0 && p.has_value)
			ble_gatt_value_changed(drv, path, p.value, p.value_len);
	}
	return 0;
}

static int on_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	struct ble_driver *drv = userdata;
	const char *name, *old_owner, *new_owner;

	(void)ret_error;
	if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0 ||
	    strcmp(name, BLUEZ_SERVICE) != 0)
		return 0;
	if (!*new_owner) {
		drv->bluez = drv->adapter_present = drv->powered = drv->discovery_ours = false;
		drv->setup_slot = sd_bus_slot_unref(drv->setup_slot);
		ble_gatt_reset(drv);
		ble_instance_state(drv, "bluetoothd stopped (org.bluez left the bus)");
		return 0;
	}
	/* A new bluetoothd knows nothing of our filter and session. */
	drv->api->log(drv->host, M2M_LOG_INFO, "bluetoothd is back on the bus: setting up again");
	drv->retry_backoff_us = 0;
	drv->api->timer_stop(drv->retry);
	drv->retry = NULL;
	ble_scan_setup(drv);
	return 0;
}

/* One match for both ObjectManager signals. */
static int on_object_manager(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	if (sd_bus_message_is_signal(m, NULL, "InterfacesAdded"))
		return on_interfaces_added(m, userdata, ret_error);
	if (sd_bus_message_is_signal(m, NULL, "InterfacesRemoved"))
		return on_interfaces_removed(m, userdata, ret_error);
	return 0;
}

int ble_scan_add_matches(struct ble_driver *drv)
{
	char props[256];
	int r;

	r = sd_bus_add_match_async(drv->bus, &drv->match_om,
	                           "type='signal',sender='org.bluez',path='/',"
	                           "interface='org.freedesktop.DBus.ObjectManager'",
	                           on_object_manager, NULL, drv);
	if (r < 0)
		return r;
	snprintf(props, sizeof(props),
	         "type='signal',sender='org.bluez',interface='org.freedesktop.DBus.Properties',"
	         "member='PropertiesChanged',path_namespace='%s'", drv->adapter_path);
	r = sd_bus_add_match_async(drv->bus, &drv->match_props, props, on_properties_changed, NULL, drv);
	if (r < 0)
		return r;
	return sd_bus_add_match_async(drv->bus, &drv->match_owner,
	                              "type='signal',sender='org.freedesktop.DBus',"
	                              "interface='org.freedesktop.DBus',member='NameOwnerChanged',"
	                              "arg0='org.bluez'",
	                              on_owner_changed, NULL, drv);
}

void ble_scan_reset(struct ble_driver *drv)
{
	drv->bluez = drv->adapter_present = drv->powered = false;
	drv->discovering = drv->discovery_ours = drv->discovery_paused = false;
}

void ble_scan_tick(struct ble_driver *drv, int64_t now)
{
	const struct m2m_host_api *api = drv->api;
	char why[96], d[32];

	for (size_t i = 0; i < drv->n_devices; i++) {
		struct ble_device *dev = &drv->devices[i];
		int64_t silent = now - dev->last_seen_us;

		if (dev->life == BLE_LIFE_FRESH && silent >= dev->stale_us) {
			drv->emit_dev = dev;
			drv->emit_ts_us = api->now_us(drv->host);
			drv->n_readings = 0;
			for (size_t k = 0; k < dev->n_points; k++)
				if (!dev->points[k].text)
					add_reading(drv, dev->points[k].id, 0, M2M_QUALITY_STALE);
			flush_readings(drv);
			dev->life = BLE_LIFE_STALE;
		}
		if ((dev->life == BLE_LIFE_STALE || dev->life == BLE_LIFE_UNSEEN) &&
		    silent >= dev->offline_us) {
			snprintf(why, sizeof(why), "%s for %s",
			         dev->life == BLE_LIFE_UNSEEN ? "not seen since start" : "no advertisement",
			         m2m_format_us(dev->offline_us, d, sizeof(d)));
			m2m_device_state(api, drv->host, dev->name, M2M_DEVICE_OFFLINE, why);
			dev->life = BLE_LIFE_OFFLINE;
		}
	}
}
