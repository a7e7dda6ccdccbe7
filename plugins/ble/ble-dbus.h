/* SPDX-License-Identifier: MIT */
/*
 * ble-dbus.h - BlueZ's D-Bus shapes, read into plain structs: the
 * properties of Adapter1, Device1 and GattCharacteristic1 objects (an
 * a{sv} as GetManagedObjects, InterfacesAdded and PropertiesChanged carry
 * it) and the device address in an object path. Shared by the plugin and
 * the scan tool; no state, any thread.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-bus.h>

#include "ble-adv.h"

#define BLUEZ_SERVICE "org.bluez"
#define BLUEZ_ADAPTER "org.bluez.Adapter1"
#define BLUEZ_DEVICE "org.bluez.Device1"
#define BLUEZ_GATT_SERVICE "org.bluez.GattService1"
#define BLUEZ_GATT_CHR "org.bluez.GattCharacteristic1"

/* GattCharacteristic1.Flags that matter here. */
enum ble_chr_flag {
	BLE_CHR_READ = 1,
	BLE_CHR_WRITE = 2,
	BLE_CHR_WRITE_NO_RESPONSE = 4,
	BLE_CHR_NOTIFY = 8,
	BLE_CHR_INDICATE = 16,
};

/*
 * The properties of one interface that were present. Pointers (name,
 * data of adv and value) point into the message and live as long as it.
 */
struct ble_dbus_props {
	bool has_addr;
	uint8_t addr[6];
	bool has_mfr, has_svc;
	struct ble_adv adv;        /* has_rssi and rssi included */
	bool has_connected, connected;
	bool has_resolved, resolved;
	bool has_powered, powered;
	bool has_discovering, discovering;
	const char *name;
	bool has_value;
	const uint8_t *value;
	size_t value_len;
	bool has_uuid;
	uint8_t uuid[16];
	unsigned flags;            /* enum ble_chr_flag */
	bool has_notifying, notifying;
	unsigned bad;              /* values that had not the type BlueZ gives them */
};

/*
 * Reads an a{sv} of properties at M's read position into *P (zeroed
 * first); unknown keys are skipped. A value of an unexpected type counts
 * in P->bad and is skipped. Returns 0, or a negative errno when M is not
 * an a{sv} there.
 */
int ble_dbus_read_props(sd_bus_message *m, struct ble_dbus_props *p);

/*
 * The device address in PATH, an object of ADAPTER_PATH
 * ("/org/bluez/hci0/dev_AA_BB_CC_DD_EE_FF[/service0010/char0011]").
 * *RET_REST (may be NULL) points at what follows the device's part ("" or
 * "/service..."). Returns 0, or -EINVAL when PATH is not a device's.
 */
int ble_dbus_path_addr(const char *path, const char *adapter_path, uint8_t addr[6],
                       const char **ret_rest);

/* The D-Bus error of M as a short text ("org.bluez.Error.NotReady: ..."). */
const char *ble_dbus_error_text(sd_bus_message *m, char *buf, size_t size);

/* Appends the discovery filter m2md wants: {Transport: "le", DuplicateData: true}. */
int ble_dbus_append_filter(sd_bus_message *m);
