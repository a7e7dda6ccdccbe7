/* SPDX-License-Identifier: MIT */
/*
 * ble-config.c - the BLE driver's create(): the adapter section, its
 * devices and their points, and the BTHome key file.
 *
 * Only during create, on the loop thread. Every key is read through the
 * host's getters (or the kit's), so that the host reports any key the
 * driver did not ask for; keys that do not apply (an offset on a BTHome
 * point) stay unread on purpose. The key file is read here too, so that
 * m2md --check finds a bad or too open key file before the daemon runs.
 */
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cJSON.h>

#include "ble-driver.h"

static const char *const source_names[] = { "manufacturer", "service", NULL };

static const cJSON *key_item(struct ble_driver *drv, const cJSON *obj, const char *key)
{
	return m2m_cfg_key_item(drv->api, drv->host, obj, key);
}

/* The BLE raw types in the Modbus driver's spelling (int16, float32, bool, ...). */
static int parse_type(struct ble_driver *drv, const cJSON *obj, struct ble_raw_field *f)
{
	const char *type = NULL, *order = NULL;
	int64_t v;
	int r;

	r = drv->api->cfg_string(drv->host, obj, "type", "uint8", &type);
	if (r < 0)
		return r;
	if (ble_raw_type_parse(type, &f->type) < 0)
		return M2M_CFG_ERROR(drv, key_item(drv, obj, "type"),
		                     "unknown type \"%s\" (bool, int8, uint8, int16, uint16, int24, "
		                     "uint24, int32, uint32, int64, uint64, float32, float64)", type);
	r = drv->api->cfg_int(drv->host, obj, "offset", 0, 0, 254, &v);
	if (r < 0)
		return r;
	f->offset = (size_t)v;
	if (f->type == BLE_RAW_BOOL) {
		r = drv->api->cfg_int(drv->host, obj, "bit", 0, 0, 7, &v);
		if (r < 0)
			return r;
		f->bit = (unsigned)v;
	} else if (ble_raw_type_size(f->type) > 1) {
		/* BLE's own formats are little endian, so that is the default here. */
		r = drv->api->cfg_string(drv->host, obj, "order", "little", &order);
		if (r < 0)
			return r;
		if (ble_raw_order_parse(order, &f->order) < 0)
			return M2M_CFG_ERROR(drv, key_item(drv, obj, "order"),
			                     "unknown order \"%s\" (little, big, ABCD, CDAB, BADC, DCBA)",
			                     order);
	}
	/* The core applies scale and offset: the decoder hands over the raw number. */
	f->scale = 1;
	f->add = 0;
	return 0;
}

/* A raw advert field: where in the manufacturer or service data it is. */
static int parse_raw_field(struct ble_driver *drv, const cJSON *obj, struct ble_point *p)
{
	struct ble_raw_field *f = &p->raw;
	const char *uuid = NULL;
	int src, r;
	int64_t v;

	r = drv->api->cfg_enum(drv->host, obj, "source", source_names, -1, &src);
	if (r < 0)
		return r;
	if (r == 0)
		return M2M_CFG_ERROR(drv, obj, "a raw point needs 'source' (\"manufacturer\" with "
		                     "'company', or \"service\" with 'uuid')");
	if (src == 0) {
		f->source = BLE_RAW_MFR;
		r = drv->api->cfg_int(drv->host, obj, "company", -1, 0, 65535, &v);
		if (r < 0)
			return r;
		if (r == 0)
			return M2M_CFG_ERROR(drv, obj, "missing key 'company' (the Bluetooth SIG company "
			                     "id of the manufacturer data, e.g. 0x0499)");
		f->company = (uint16_t)v;
	} else {
		f->source = BLE_RAW_SVC;
		r = drv->api->cfg_string(drv->host, obj, "uuid", NULL, &uuid);
		if (r < 0)
			return r;
		if (!uuid)
			return M2M_CFG_ERROR(drv, obj, "missing key 'uuid' (the service data's UUID, "
			                     "e.g. \"fcd2\")");
		if (ble_uuid_parse(uuid, f->uuid) < 0)
			return M2M_CFG_ERROR(drv, key_item(drv, obj, "uuid"), "expected a UUID (\"fcd2\" or "
			                     "\"0000fcd2-0000-1000-8000-00805f9b34fb\"), got \"%s\"", uuid);
	}
	return parse_type(drv, obj, f);
}

/* A GATT characteristic point of a device with connect = true. */
static int parse_gatt_point(struct ble_driver *drv, const cJSON *obj, struct ble_point *p,
                            const char *uuid)
{
	int r;

	if (ble_uuid_parse(uuid, p->chr_uuid) < 0)
		return M2M_CFG_ERROR(drv, key_item(drv, obj, "characteristic"), "expected a UUID "
		                     "(\"2a6e\" or \"00002a6e-0000-1000-8000-00805f9b34fb\"), got \"%s\"",
		                     uuid);
	p->src = BLE_SRC_GATT;
	r = m2m_cfg_flag(drv->api, drv->host, obj, "notify", false, &p->notify);
	if (r == 0)
		r = m2m_cfg_duration_range(drv->api, drv->host, obj, "interval",
		                           p->notify ? 0 : 60 * US_PER_S, 0, 24 * 3600 * US_PER_S,
		                           &p->interval_us);
	if (r < 0)
		return r;
	if (p->interval_us && p->interval_us < 100 * US_PER_MS)
		return M2M_CFG_ERROR(drv, key_item(drv, obj, "interval"),
		                     "expected 0 (notifications only) or at least 100ms");
	if (!p->notify && !p->interval_us && !p->writable)
		return M2M_CFG_ERROR(drv, obj, "a characteristic point that is neither read "
		                     "('interval'), notified ('notify') nor written ('writable') does nothing");
	p->raw.name = p->field;
	return parse_type(drv, obj, &p->raw);
}

static int parse_point(struct ble_driver *drv, struct ble_device *dev, const cJSON *obj,
                       struct ble_point *p)
{
	const struct m2m_host_api *api = drv->api;
	const char *field = NULL, *name = NULL, *kind = NULL, *chr = NULL;
	int r;

	p->dev = dev;
	r = api->declare_point(drv->host, dev->name, obj, &p->id);
	if (r < 0)
		return r;
	r = api->cfg_string(drv->host, obj, "name", NULL, &name);
	if (r == 0 || r == 1)
		r = api->cfg_string(drv->host, obj, "kind", NULL, &kind);
	if (r == 0 || r == 1)
		r = m2m_cfg_flag(api, drv->host, obj, "writable", false, &p->writable);
	if (r < 0)
		return r;
	p->text = kind && strcmp(kind, "string") == 0;
	if (dev->connect) {
		r = api->cfg_string(drv->host, obj, "characteristic", NULL, &chr);
		if (r < 0)
			return r;
	}
	r = api->cfg_string(drv->host, obj, "field", name, &field);
	if (r < 0)
		return r;
	p->field = m2m_strdup(field ? field : "");
	if (!p->field)
		return -ENOMEM;
	if (chr)
		return parse_gatt_point(drv, obj, p, chr);
	if (p->writable)
		return M2M_CFG_ERROR(drv, key_item(drv, obj, "writable"), "only a GATT characteristic "
		                     "point ('characteristic' on a device with connect = true) is writable");
	if (strcmp(field, "rssi") == 0) {
		p->src = BLE_SRC_RSSI;
		return 0;
	}
	if (strcmp(field, "last_seen") == 0) {
		p->src = BLE_SRC_LAST_SEEN;
		return 0;
	}
	p->src = BLE_SRC_FIELD;
	if (dev->fmt == BLE_FMT_COUNT)
		return M2M_CFG_ERROR(drv, obj, "device \"%s\" has no 'format': its points are "
		                     "characteristics ('characteristic'), rssi or last_seen", dev->name);
	if (dev->fmt == BLE_FMT_RAW) {
		p->raw.name = p->field;
		return parse_raw_field(drv, obj, p);
	}
	/* A misspelt field would never get a value: refused now, not silent forever. */
	if (!ble_format_field_known(dev->fmt, field))
		return M2M_CFG_ERROR(drv, api->cfg_item(drv->host, obj, "field") ? key_item(drv, obj, "field")
		                                                                 : key_item(drv, obj, "name"),
		                     "format %s has no field '%s' (docs/ble-decoders.md lists each format's "
		                     "fields; also rssi and last_seen)", ble_format_name(dev->fmt), field);
	return 0;
}

/* "AA:BB:CC:DD:EE:FF", for messages. */
static const char *addr_text(const uint8_t addr[6], char buf[BLE_ADDR_STRLEN])
{
	ble_addr_format(addr, buf);
	return buf;
}

static int parse_device_ids(struct ble_driver *drv, const cJSON *obj, struct ble_device *dev)
{
	const char *address = NULL, *id = NULL, *format = NULL;
	int r;

	r = drv->api->cfg_string(drv->host, obj, "address", NULL, &address);
	if (r == 0 || r == 1)
		r = drv->api->cfg_string(drv->host, obj, "id", NULL, &id);
	if (r == 0 || r == 1)
		r = drv->api->cfg_string(drv->host, obj, "format", NULL, &format);
	if (r < 0)
		return r;
	if (!address == !id)
		return M2M_CFG_ERROR(drv, obj, "device \"%s\" needs either 'address' (\"AA:BB:CC:DD:EE:FF\") "
		                     "or 'id' (the stable id in its payload), not %s", dev->name,
		                     address ? "both" : "neither");
	if (format) {
		if (ble_format_parse(format, &dev->fmt) < 0)
			return M2M_CFG_ERROR(drv, key_item(drv, obj, "format"), "unknown format \"%s\" "
			                     "(bthome, ruuvi, atc1441, pvvx, ibeacon, eddystone, raw)", format);
	} else if (dev->connect) {
		dev->fmt = BLE_FMT_COUNT; /* a connected device whose adverts are not decoded */
	} else {
		return M2M_CFG_ERROR(drv, obj, "device \"%s\" needs 'format' (bthome, ruuvi, atc1441, "
		                     "pvvx, ibeacon, eddystone, raw)", dev->name);
	}
	if (address) {
		if (ble_addr_parse(address, dev->addr) < 0)
			return M2M_CFG_ERROR(drv, key_item(drv, obj, "address"), "expected an address "
			                     "\"AA:BB:CC:DD:EE:FF\", got \"%s\"", address);
		dev->by_addr = true;
		dev->addr_known = true;
		for (size_t i = 0; &drv->devices[i] != dev; i++) {
			char a[BLE_ADDR_STRLEN];

			if (drv->devices[i].by_addr && memcmp(drv->devices[i].addr, dev->addr, 6) == 0)
				return M2M_CFG_ERROR(drv, key_item(drv, obj, "address"), "address %s is already "
				                     "device \"%s\"", addr_text(dev->addr, a), drv->devices[i].name);
		}
		return 0;
	}
	if (dev->fmt != BLE_FMT_RUUVI5 && dev->fmt != BLE_FMT_IBEACON && dev->fmt != BLE_FMT_EDDYSTONE)
		return M2M_CFG_ERROR(drv, key_item(drv, obj, "id"), "format %s carries no stable id: "
		                     "give the device's 'address' (ids: ruuvi's MAC, ibeacon's "
		                     "\"UUID/major/minor\", eddystone UID's \"namespace/instance\")",
		                     format ? format : "(none)");
	if (dev->connect)
		return M2M_CFG_ERROR(drv, key_item(drv, obj, "connect"), "a device found by 'id' cannot "
		                     "be connected: give its 'address'");
	dev->stable_id = m2m_strdup(id);
	if (!dev->stable_id)
		return -ENOMEM;
	drv->any_by_id = true;
	return 0;
}

struct ble_defaults {
	int64_t stale_us, offline_us, report_us;
};

static int parse_device(struct ble_driver *drv, const cJSON *obj, const struct ble_defaults *d,
                        struct ble_device *dev)
{
	const struct m2m_host_api *api = drv->api;
	m2m_host *host = drv->host;
	int r;

	dev->drv = drv;
	r = m2m_cfg_strdup(api, host, obj, "name", "the device name, the first part of its point names",
	                   &dev->name);
	if (r < 0)
		return r;
	if (strchr(dev->name, '/'))
		return M2M_CFG_ERROR(drv, key_item(drv, obj, "name"), "device name \"%s\" must not contain '/'",
		                     dev->name);
	for (size_t i = 0; &drv->devices[i] != dev; i++)
		if (strcmp(drv->devices[i].name, dev->name) == 0)
			return M2M_CFG_ERROR(drv, key_item(drv, obj, "name"), "a second device named \"%s\"",
			                     dev->name);
	r = m2m_cfg_flag(api, host, obj, "connect", false, &dev->connect);
	if (r == 0)
		r = parse_device_ids(drv, obj, dev);
	if (r == 0)
		r = m2m_cfg_duration_range(api, host, obj, "stale", d->stale_us, US_PER_S,
		                           7 * 24 * 3600 * US_PER_S, &dev->stale_us);
	if (r == 0)
		r = m2m_cfg_duration_range(api, host, obj, "offline",
		                           d->offline_us > dev->stale_us ? d->offline_us : 5 * dev->stale_us,
		                           US_PER_S, 30 * 24 * 3600 * US_PER_S, &dev->offline_us);
	if (r == 0)
		r = m2m_cfg_duration_range(api, host, obj, "report_interval", d->report_us, 0,
		                           24 * 3600 * US_PER_S, &dev->report_us);
	if (r < 0)
		return r;
	if (dev->offline_us < dev->stale_us)
		return M2M_CFG_ERROR(drv, key_item(drv, obj, "offline"), "'offline' must not be shorter "
		                     "than 'stale'");
	if (dev->connect)
		drv->any_connect = true;
	return 0;
}

static int count_points(struct ble_driver *drv, const cJSON *devices, size_t *ret)
{
	const cJSON *dobj;
	size_t n = 0;

	cJSON_ArrayForEach(dobj, devices) {
		const cJSON *points = cJSON_GetObjectItemCaseSensitive(dobj, "points");

		if (!cJSON_IsObject(dobj))
			return M2M_CFG_ERROR(drv, dobj, "expected a device table ([[drivers.NAME.devices]])");
		if (cJSON_IsArray(points))
			n += (size_t)cJSON_GetArraySize(points);
	}
	*ret = n;
	return 0;
}

static int parse_devices(struct ble_driver *drv, const cJSON *devices, const struct ble_defaults *d)
{
	const cJSON *dobj;
	int r;

	cJSON_ArrayForEach(dobj, devices) {
		struct ble_device *dev = &drv->devices[drv->n_devices++];
		const cJSON *points, *pobj;
		size_t n_raw = 0;

		r = parse_device(drv, dobj, d, dev);
		if (r < 0)
			return r;
		points = drv->api->cfg_item(drv->host, dobj, "points");
		if (!points || !cJSON_IsArray(points) || cJSON_GetArraySize(points) == 0)
			return M2M_CFG_ERROR(drv, points ? points : dobj,
			                     "device \"%s\" needs 'points', a non-empty array of point "
			                     "tables ([[drivers.NAME.devices.points]])", dev->name);
		dev->points = &drv->points[drv->n_points];
		cJSON_ArrayForEach(pobj, points) {
			struct ble_point *p = &drv->points[drv->n_points];

			if (!cJSON_IsObject(pobj))
				return M2M_CFG_ERROR(drv, pobj, "expected a point table");
			drv->n_points++;
			dev->n_points++;
			r = parse_point(drv, dev, pobj, p);
			if (r < 0)
				return r;
			if (p->src == BLE_SRC_FIELD && dev->fmt == BLE_FMT_RAW)
				n_raw++;
		}
		if (n_raw) {
			dev->raw = calloc(n_raw, sizeof(*dev->raw));
			if (!dev->raw)
				return -ENOMEM;
			for (size_t i = 0; i < dev->n_points; i++)
				if (dev->points[i].src == BLE_SRC_FIELD)
					dev->raw[dev->n_raw++] = dev->points[i].raw;
		}
	}
	return 0;
}

/*
 * Reads the key file: one device a line, "AA:BB:CC:DD:EE:FF <32 hex digits>",
 * '#' comments and blank lines allowed. The keys decrypt what the sensors
 * say and let anyone forge it, so a file that group or others could read
 * is refused rather than used.
 */
static int read_key_file(struct ble_driver *drv, const cJSON *item)
{
	char line[256];
	struct stat st;
	unsigned lineno = 0;
	FILE *f;
	int fd;

	fd = open(drv->key_file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return M2M_CFG_ERROR(drv, item, "cannot open the key file \"%s\": %s", drv->key_file,
		                     strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return M2M_CFG_ERROR(drv, item, "the key file \"%s\" is not a regular file", drv->key_file);
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		close(fd);
		return M2M_CFG_ERROR(drv, item, "the key file \"%s\" is accessible by group or others "
		                     "(mode %04o): it holds bind keys, make it readable only by its "
		                     "owner (chmod 600)", drv->key_file, (unsigned)(st.st_mode & 07777));
	}
	f = fdopen(fd, "r");
	if (!f) {
		close(fd);
		return -ENOMEM;
	}
	while (fgets(line, sizeof(line), f)) {
		char *s = line, *addr, *key, *rest;
		struct ble_key k;
		uint8_t a[6];
		bool used = false;

		lineno++;
		s[strcspn(s, "#\r\n")] = 0;
		addr = strtok_r(s, " \t", &rest);
		if (!addr)
			continue;
		key = strtok_r(NULL, " \t", &rest);
		if (ble_addr_parse(addr, a) < 0 || !key || ble_key_parse(key, &k) < 0 ||
		    strtok_r(NULL, " \t", &rest)) {
			fclose(f);
			explicit_bzero(line, sizeof(line));
			return M2M_CFG_ERROR(drv, item, "the key file \"%s\", line %u: expected "
			                     "\"AA:BB:CC:DD:EE:FF\" and a key of 32 hex digits",
			                     drv->key_file, lineno);
		}
		for (size_t i = 0; i < drv->n_devices; i++) {
			struct ble_device *dev = &drv->devices[i];

			if (dev->by_addr && memcmp(dev->addr, a, 6) == 0) {
				dev->key = k;
				dev->has_key = true;
				used = true;
			}
		}
		(void)used; /* keys of devices this instance does not have are fine */
		explicit_bzero(&k, sizeof(k));
	}
	explicit_bzero(line, sizeof(line));
	fclose(f);
	return 0;
}

/* The statistics of the instance, and of each device. */
static const struct stat_def {
	size_t offset; /* of the slot in struct ble_driver or struct ble_dev_stats */
	const char *name, *help;
} instance_stats[] = {
	{ offsetof(struct ble_driver, st_adverts), "reports",
	  "advertisement reports BlueZ sent, of any device" },
	{ offsetof(struct ble_driver, st_unknown), "unknown_adverts",
	  "advertisement reports of devices not configured" },
	{ offsetof(struct ble_driver, st_filters), "discovery_filters",
	  "discovery filters set (once per start and each re-arm)" },
	{ offsetof(struct ble_driver, st_starts), "discovery_starts",
	  "discovery sessions started (once per start and each re-arm)" },
}, device_stats[] = {
	{ offsetof(struct ble_dev_stats, adverts), "adverts", "advertisement reports of the device" },
	{ offsetof(struct ble_dev_stats, decoded), "decoded", "advertisements decoded into readings" },
	{ offsetof(struct ble_dev_stats, duplicates), "duplicates",
	  "advertisements dropped as repeats of the same packet id" },
	{ offsetof(struct ble_dev_stats, decode_errors), "decode_errors",
	  "malformed advertisements (no readings)" },
	{ offsetof(struct ble_dev_stats, auth_errors), "auth_errors",
	  "encrypted advertisements refused: wrong or missing key, or plaintext while a key is "
	  "configured" },
	{ offsetof(struct ble_dev_stats, replays), "replays",
	  "encrypted advertisements refused for a replayed counter" },
	{ offsetof(struct ble_dev_stats, other_frames), "other_frames",
	  "advertisements in no form the device's format reads (another frame type, or the wrong "
	  "format configured)" },
};

/* Declares DEFS into the slots at BASE; the first error, or 0. */
static int declare_set(struct ble_driver *drv, void *base, const struct stat_def *defs, size_t n,
                       const char *device)
{
	int r = 0;

	for (size_t i = 0; i < n; i++) {
		struct m2m_stat_slot *slot = (struct m2m_stat_slot *)((char *)base + defs[i].offset);
		int e = m2m_stat_slot_declare(slot, drv->api, drv->host, defs[i].name, device,
		                              M2M_STAT_COUNTER, defs[i].help);

		if (e < 0 && r == 0)
			r = e;
	}
	return r;
}

static void declare_stats(struct ble_driver *drv)
{
	int r = declare_set(drv, drv, instance_stats, sizeof(instance_stats) / sizeof(instance_stats[0]), NULL);

	for (size_t i = 0; i < drv->n_devices; i++) {
		struct ble_device *dev = &drv->devices[i];
		int e = declare_set(drv, &dev->st, device_stats, sizeof(device_stats) / sizeof(device_stats[0]), dev->name);

		if (e < 0 && r == 0)
			r = e;
	}
	/* Statistics are for watching; readings go on without them. */
	if (r < 0)
		drv->api->log(drv->host, M2M_LOG_WARNING, "not every statistic of the %zu device(s) "
		              "could be declared: %s", drv->n_devices, strerror(-r));
}

static int parse_section(struct ble_driver *drv, const cJSON *config, struct ble_defaults *d)
{
	const struct m2m_host_api *api = drv->api;
	m2m_host *host = drv->host;
	const char *adapter = NULL, *key_file = NULL;
	int r;

	r = api->cfg_string(host, config, "adapter", "hci0", &adapter);
	if (r < 0)
		return r;
	if (!*adapter || strspn(adapter, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(adapter))
		return M2M_CFG_ERROR(drv, key_item(drv, config, "adapter"), "expected an adapter name "
		                     "like \"hci0\", got \"%s\"", adapter);
	drv->adapter = m2m_strdup(adapter);
	if (!drv->adapter || asprintf(&drv->adapter_path, "/org/bluez/%s", adapter) < 0) {
		drv->adapter_path = NULL;
		return -ENOMEM;
	}
	r = api->cfg_string(host, config, "key_file", NULL, &key_file);
	if (r < 0)
		return r;
	if (key_file) {
		if (key_file[0] != '/')
			return M2M_CFG_ERROR(drv, key_item(drv, config, "key_file"), "'key_file' must be an "
			                     "absolute path, not \"%s\"", key_file);
		drv->key_file = m2m_strdup(key_file);
		if (!drv->key_file)
			return -ENOMEM;
	}
	r = m2m_cfg_duration_range(api, host, config, "stale", 60 * US_PER_S, US_PER_S,
	                           7 * 24 * 3600 * US_PER_S, &d->stale_us);
	if (r == 0)
		r = m2m_cfg_duration_range(api, host, config, "offline", 0, 0, 30 * 24 * 3600 * US_PER_S,
		                           &d->offline_us);
	if (r == 0)
		r = m2m_cfg_duration_range(api, host, config, "report_interval", 10 * US_PER_S, 0,
		                           24 * 3600 * US_PER_S, &d->report_us);
	if (r == 0)
		r = m2m_cfg_duration_range(api, host, config, "backoff_max", 30 * US_PER_S, US_PER_S,
		                           3600 * US_PER_S, &drv->backoff_max_us);
	if (r < 0)
		return r;
	if (d->offline_us && d->offline_us < d->stale_us)
		return M2M_CFG_ERROR(drv, key_item(drv, config, "offline"), "'offline' must not be "
		                     "shorter than 'stale'");
	return 0;
}

int ble_create(m2m_host *host, const struct m2m_host_api *api, const struct cJSON *config,
               void **ret_driver)
{
	struct ble_defaults d = { 0 };
	const cJSON *devices;
	struct ble_driver *drv;
	size_t n_points = 0;
	int64_t min_stale = 60 * US_PER_S;
	int r;

	if (!api || !M2M_HAS_FIELD(struct m2m_host_api, api->struct_size, write_done))
		return -EPROTO;
	drv = calloc(1, sizeof(*drv));
	if (!drv)
		return -ENOMEM;
	drv->host = host;
	drv->api = api;

	r = parse_section(drv, config, &d);
	if (r < 0)
		goto fail;
	devices = api->cfg_item(host, config, "devices");
	if (!devices || !cJSON_IsArray(devices) || cJSON_GetArraySize(devices) == 0) {
		r = M2M_CFG_ERROR(drv, devices ? devices : config,
		                  "expected 'devices', a non-empty array of device tables "
		                  "([[drivers.NAME.devices]])");
		goto fail;
	}
	r = count_points(drv, devices, &n_points);
	if (r < 0)
		goto fail;
	r = -ENOMEM;
	drv->devices = calloc((size_t)cJSON_GetArraySize(devices), sizeof(*drv->devices));
	drv->points = calloc(n_points ? n_points : 1, sizeof(*drv->points));
	if (!drv->devices || !drv->points)
		goto fail;
	r = parse_devices(drv, devices, &d);
	if (r < 0)
		goto fail;
	if (drv->key_file) {
		r = read_key_file(drv, key_item(drv, config, "key_file"));
		if (r < 0)
			goto fail;
	}
	for (size_t i = 0; i < drv->n_devices; i++)
		if (drv->devices[i].stale_us < min_stale)
			min_stale = drv->devices[i].stale_us;
	/* Stale devices are found within a quarter of their stale time, 1 s at most. */
	drv->tick_us = min_stale / 4 > US_PER_S ? US_PER_S : min_stale / 4;
	if (drv->tick_us < 100 * US_PER_MS)
		drv->tick_us = 100 * US_PER_MS;
	declare_stats(drv);
	*ret_driver = drv;
	return 0;
fail:
	ble_free(drv);
	return r < 0 ? r : -EINVAL;
}
