/* SPDX-License-Identifier: MIT */
/*
 * ble-driver.h - the Bluetooth LE driver's own header: the structs its
 * files share. Never installed; the names stay inside ble.so.
 *
 *   ble.c         the plugin entry, the ops, the life cycle, the bus
 *                 connection driven by the loop (fd watch and timer)
 *   ble-config.c  create(): the section, devices, points, the key file
 *   ble-scan.c    discovery: BlueZ's objects and signals, adverts to
 *                 readings, stale and offline devices, re-arming
 *   ble-gatt.c    connected devices: characteristics read, notified and
 *                 written
 *   ble-dbus.c    BlueZ's D-Bus shapes parsed into struct ble_adv (shared
 *                 with the scan tool, m2md-ble-scan)
 *
 * Everything runs on the loop thread: sd-bus is driven by an fd watch and
 * a timer, and only asynchronous calls are made.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-bus.h>

#include "ble-adv.h"
#include "ble-dbus.h"
#include "m2m/plugin-util.h"
#include "m2m/plugin.h"

#define BLE_VERSION "1.0.0"

#define US_PER_MS M2M_US_PER_MS
#define US_PER_S M2M_US_PER_S

/* What a point gets from an advertisement besides the decoder's fields. */
enum ble_point_src {
	BLE_SRC_FIELD,     /* a field the decoder emits (or a raw field) */
	BLE_SRC_RSSI,      /* the advert's RSSI in dBm */
	BLE_SRC_LAST_SEEN, /* Unix time in s of the last advert */
	BLE_SRC_GATT,      /* a GATT characteristic (connect = true) */
};

/* Where a device is in its silence. */
enum ble_dev_life {
	BLE_LIFE_UNSEEN,   /* nothing since start */
	BLE_LIFE_FRESH,
	BLE_LIFE_STALE,    /* its points were submitted as stale */
	BLE_LIFE_OFFLINE,  /* and it was reported offline */
};

struct ble_driver;
struct ble_device;
struct ble_write_op;

struct ble_point {
	uint32_t id;
	struct ble_device *dev;
	int src;                    /* enum ble_point_src */
	char *field;                /* the decoder's field name (BLE_SRC_FIELD) */
	bool text;                  /* kind = "string": submitted with submit_text */
	bool writable;
	/* GATT */
	uint8_t chr_uuid[16];
	bool notify;
	int64_t interval_us;        /* read interval; 0: notifications only */
	struct ble_raw_field raw;   /* how the value's bytes decode */
	char *chr_path;             /* the characteristic's object path, once resolved */
	int64_t next_read_us;       /* mono */
	bool reading;               /* a ReadValue is under way */
	bool notifying;             /* StartNotify succeeded on this connection */
	sd_bus_slot *slot;          /* its ReadValue or StartNotify under way */
};

/* A device's statistics, declared at create. */
struct ble_dev_stats {
	struct m2m_stat_slot adverts, decoded, duplicates, decode_errors, auth_errors, replays, other_frames;
};

/* The connection to a device for GATT (ble-gatt.c). */
enum ble_link {
	BLE_LINK_IDLE,      /* not connected; waiting for next_connect_us */
	BLE_LINK_CONNECTING,
	BLE_LINK_RESOLVING, /* connected, waiting for ServicesResolved */
	BLE_LINK_READY,     /* characteristics mapped */
};

struct ble_device {
	struct ble_driver *drv;
	char *name;
	bool by_addr;
	uint8_t addr[6];            /* configured, or learnt from the stable id */
	bool addr_known;
	char *stable_id;            /* id = "...": matched against the payload's id */
	enum ble_format fmt;
	bool has_key;
	struct ble_key key;
	int64_t stale_us;
	int64_t offline_us;
	int64_t report_us;          /* rssi and last_seen at most this often alone */
	bool connect;               /* GATT */
	struct ble_point *points;   /* into drv->points */
	size_t n_points;
	struct ble_raw_field *raw;  /* the raw fields of format raw */
	size_t n_raw;
	struct ble_dev_stats st;

	/* Loop thread. */
	struct ble_dev_state dec;   /* de-duplication and replay protection */
	int life;                   /* enum ble_dev_life */
	int64_t last_seen_us;       /* mono */
	int64_t last_report_us;     /* mono of the last rssi/last_seen submit */
	bool key_error;             /* an authentication failure is being reported */
	bool has_rssi;
	int16_t dec_rssi;           /* the last RSSI BlueZ reported */
	uint64_t adverts, decoded, duplicates, decode_errors, auth_errors, replays, other_frames;
	/* GATT, loop thread */
	int link;                   /* enum ble_link */
	char *path;                 /* the Device1 object path */
	sd_bus_slot *connect_slot;
	int64_t next_connect_us;
	int64_t resolve_deadline_us;
	bool resolved;              /* ServicesResolved seen before Connect replied */
	int64_t backoff_us;
};

/* What one advert turns into, collected by the emit callback. */
#define BLE_MAX_READINGS 64

struct ble_driver {
	m2m_host *host;
	const struct m2m_host_api *api;

	char *adapter;              /* "hci0" */
	char *adapter_path;         /* "/org/bluez/hci0" */
	char *key_file;
	struct ble_device *devices;
	size_t n_devices;
	struct ble_point *points;
	size_t n_points;
	bool any_by_id;             /* some device is matched by its payload's id */
	bool any_connect;
	int64_t tick_us;            /* the housekeeping timer's period */
	int64_t backoff_max_us;

	/* Loop thread. */
	bool running;
	sd_bus *bus;
	m2m_io *io;
	int io_events;
	int io_extra;               /* M2M_IO_HUP | M2M_IO_ERR on a 1.1 host */
	m2m_timer *bus_timer;       /* sd_bus_get_timeout */
	m2m_timer *tick;            /* stale devices, GATT reads and connects */
	m2m_timer *retry;           /* setup again after a failure */
	int64_t retry_backoff_us;
	bool in_process;            /* inside sd_bus_process: do not recurse */
	sd_bus_slot *match_om, *match_props, *match_owner;
	sd_bus_slot *setup_slot;    /* the one setup call under way */
	bool bluez;                 /* org.bluez has an owner, as far as we know */
	bool adapter_present;
	bool powered;
	bool discovering;           /* the adapter says so */
	bool discovery_ours;        /* our StartDiscovery succeeded */
	bool discovery_paused;      /* stopped while a GATT device connects */
	char state_reason[128];     /* why the instance is offline, "" when online */
	int64_t start_us;           /* mono of start() */
	uint64_t adverts, unknown_adverts, filters_set, discovery_starts;
	struct m2m_stat_slot st_adverts, st_unknown, st_filters, st_starts;

	struct ble_write_op *writes; /* WriteValue calls under way */

	/* The readings of the advert being decoded (ble_scan_emit). */
	struct m2m_reading readings[BLE_MAX_READINGS];
	size_t n_readings;
	struct ble_device *emit_dev;
	int64_t emit_ts_us;
};

/* ble.c */
extern const struct m2m_driver_ops ble_driver_ops;
void ble_free(struct ble_driver *drv);
/* Updates the fd watch and the timer after anything queued messages. */
void ble_bus_kick(struct ble_driver *drv);
/* The bus failed: closes it and schedules a reconnect. */
void ble_bus_lost(struct ble_driver *drv, int err);
/* Schedules ble_scan_setup after the backoff. */
void ble_retry_later(struct ble_driver *drv, const char *why);
/* Reports the whole instance online ("" or NULL) or offline with REASON. */
void ble_instance_state(struct ble_driver *drv, const char *reason);

/* ble-config.c */
int ble_create(m2m_host *host, const struct m2m_host_api *api, const struct cJSON *config,
               void **ret_driver);

/* ble-scan.c */
int ble_scan_add_matches(struct ble_driver *drv);
void ble_scan_setup(struct ble_driver *drv);
void ble_scan_tick(struct ble_driver *drv, int64_t now_mono);
void ble_scan_reset(struct ble_driver *drv);
struct ble_device *ble_find_device(struct ble_driver *drv, const uint8_t addr[6]);
void ble_discovery_pause(struct ble_driver *drv, bool pause);
/* DEV advertised or answered: fresh again, online when it was not. */
void ble_device_seen(struct ble_device *dev, int64_t now_mono);

/* ble-gatt.c */
void ble_gatt_tick(struct ble_driver *drv, int64_t now_mono);
void ble_gatt_device_props(struct ble_device *dev, const struct ble_dbus_props *p);
void ble_gatt_chr_added(struct ble_driver *drv, const char *path, const struct ble_dbus_props *p);
void ble_gatt_value_changed(struct ble_driver *drv, const char *path, const uint8_t *data,
                            size_t len);
void ble_gatt_device_gone(struct ble_device *dev, const char *why);
void ble_gatt_reset(struct ble_driver *drv);
int ble_gatt_write(void *driver, uint32_t point, double raw_value, m2m_write *req);
