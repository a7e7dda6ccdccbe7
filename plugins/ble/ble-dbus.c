/* SPDX-License-Identifier: MIT */
/*
 * ble-dbus.c - BlueZ's D-Bus shapes read into struct ble_dbus_props.
 *
 * BlueZ gives ManufacturerData as a{qv} and ServiceData as a{sv} whose
 * variants hold an ay (doc/org.bluez.Device.rst); RSSI is an n, Address
 * an s. A value of any other type is counted and skipped rather than
 * failing the whole message, so that one odd property (or a BlueZ that
 * wraps a variant once more) does not hide the rest.
 */
#include "ble-dbus.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Reads the ay inside the variant at M's position. */
static int read_variant_bytes(sd_bus_message *m, const uint8_t **data, size_t *len)
{
	const void *p = NULL;
	int r = sd_bus_message_enter_container(m, 'v', "ay");

	if (r <= 0)
		return r < 0 ? r : -ENXIO;
	r = sd_bus_message_read_array(m, 'y', &p, len);
	if (r < 0)
		return r;
	*data = p;
	return sd_bus_message_exit_container(m);
}

/* ManufacturerData: the variant of an a{qv}. */
static int read_mfr(sd_bus_message *m, struct ble_dbus_props *p)
{
	int r = sd_bus_message_enter_container(m, 'v', "a{qv}");

	if (r <= 0)
		return r < 0 ? r : -ENXIO;
	r = sd_bus_message_enter_container(m, 'a', "{qv}");
	if (r < 0)
		return r;
	while ((r = sd_bus_message_enter_container(m, 'e', "qv")) > 0) {
		struct ble_mfr *e = &p->adv.mfr[p->adv.n_mfr];
		uint16_t company;
		const uint8_t *data;
		size_t len;

		r = sd_bus_message_read(m, "q", &company);
		if (r < 0)
			return r;
		r = read_variant_bytes(m, &data, &len);
		if (r == -ENXIO) {
			p->bad++;
			r = sd_bus_message_skip(m, "v");
		} else if (r >= 0 && p->adv.n_mfr < BLE_ADV_MAX_MFR) {
			*e = (struct ble_mfr){ .company = company, .data = data, .len = len };
			p->adv.n_mfr++;
		}
		if (r < 0)
			return r;
		r = sd_bus_message_exit_container(m);
		if (r < 0)
			return r;
	}
	if (r < 0)
		return r;
	r = sd_bus_message_exit_container(m);
	if (r >= 0)
		r = sd_bus_message_exit_container(m);
	p->has_mfr = r >= 0;
	return r;
}

/* ServiceData: the variant of an a{sv}, keyed by the UUID as text. */
static int read_svc(sd_bus_message *m, struct ble_dbus_props *p)
{
	int r = sd_bus_message_enter_container(m, 'v', "a{sv}");

	if (r <= 0)
		return r < 0 ? r : -ENXIO;
	r = sd_bus_message_enter_container(m, 'a', "{sv}");
	if (r < 0)
		return r;
	while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
		struct ble_svc *e = &p->adv.svc[p->adv.n_svc];
		const char *uuid;
		uint8_t u[16];
		const uint8_t *data;
		size_t len;

		r = sd_bus_message_read(m, "s", &uuid);
		if (r < 0)
			return r;
		r = read_variant_bytes(m, &data, &len);
		if (r == -ENXIO || (r >= 0 && ble_uuid_parse(uuid, u) < 0)) {
			p->bad++;
			r = r == -ENXIO ? sd_bus_message_skip(m, "v") : 0;
		} else if (r >= 0 && p->adv.n_svc < BLE_ADV_MAX_SVC) {
			memcpy(e->uuid, u, 16);
			e->data = data;
			e->len = len;
			p->adv.n_svc++;
		}
		if (r < 0)
			return r;
		r = sd_bus_message_exit_container(m);
		if (r < 0)
			return r;
	}
	if (r < 0)
		return r;
	r = sd_bus_message_exit_container(m);
	if (r >= 0)
		r = sd_bus_message_exit_container(m);
	p->has_svc = r >= 0;
	return r;
}

/* Reads a variant holding one basic value of TYPE into RET. */
static int read_basic(sd_bus_message *m, char type, void *ret)
{
	char sig[2] = { type, 0 };
	int r = sd_bus_message_enter_container(m, 'v', sig);

	if (r <= 0)
		return r < 0 ? r : -ENXIO;
	r = sd_bus_message_read_basic(m, type, ret);
	if (r < 0)
		return r;
	return sd_bus_message_exit_container(m);
}

static int read_bool(sd_bus_message *m, bool *has, bool *value)
{
	int b = 0, r = read_basic(m, 'b', &b);

	if (r >= 0) {
		*has = true;
		*value = b != 0;
	}
	return r;
}

static int read_flags(sd_bus_message *m, struct ble_dbus_props *p)
{
	static const struct {
		const char *name;
		unsigned flag;
	} names[] = {
		{ "read", BLE_CHR_READ },
		{ "write", BLE_CHR_WRITE },
		{ "write-without-response", BLE_CHR_WRITE_NO_RESPONSE },
		{ "notify", BLE_CHR_NOTIFY },
		{ "indicate", BLE_CHR_INDICATE },
	};
	const char *s;
	int r = sd_bus_message_enter_container(m, 'v', "as");

	if (r <= 0)
		return r < 0 ? r : -ENXIO;
	r = sd_bus_message_enter_container(m, 'a', "s");
	if (r < 0)
		return r;
	while ((r = sd_bus_message_read_basic(m, 's', &s)) > 0)
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (strcmp(s, names[i].name) == 0)
				p->flags |= names[i].flag;
	if (r < 0)
		return r;
	r = sd_bus_message_exit_container(m);
	return r < 0 ? r : sd_bus_message_exit_container(m);
}

static int read_one(sd_bus_message *m, const char *key, struct ble_dbus_props *p)
{
	const char *s;
	int16_t rssi;
	int r;

	if (strcmp(key, "ManufacturerData") == 0)
		return read_mfr(m, p);
	if (strcmp(key, "ServiceData") == 0)
		return read_svc(m, p);
	if (strcmp(key, "RSSI") == 0) {
		r = read_basic(m, 'n', &rssi);
		if (r >= 0) {
			p->adv.has_rssi = true;
			p->adv.rssi = rssi;
		}
		return r;
	}
	if (strcmp(key, "Address") == 0) {
		r = read_basic(m, 's', &s);
		if (r >= 0 && ble_addr_parse(s, p->addr) == 0) {
			p->has_addr = true;
			memcpy(p->adv.addr, p->addr, 6);
		}
		return r;
	}
	if (strcmp(key, "Name") == 0 || (strcmp(key, "Alias") == 0 && !p->name))
		return read_basic(m, 's', &p->name);
	if (strcmp(key, "Connected") == 0)
		return read_bool(m, &p->has_connected, &p->connected);
	if (strcmp(key, "ServicesResolved") == 0)
		return read_bool(m, &p->has_resolved, &p->resolved);
	if (strcmp(key, "Powered") == 0)
		return read_bool(m, &p->has_powered, &p->powered);
	if (strcmp(key, "Discovering") == 0)
		return read_bool(m, &p->has_discovering, &p->discovering);
	if (strcmp(key, "Notifying") == 0)
		return read_bool(m, &p->has_notifying, &p->notifying);
	if (strcmp(key, "Value") == 0) {
		r = read_variant_bytes(m, &p->value, &p->value_len);
		p->has_value = r >= 0;
		return r;
	}
	if (strcmp(key, "UUID") == 0) {
		r = read_basic(m, 's', &s);
		if (r >= 0 && ble_uuid_parse(s, p->uuid) == 0)
			p->has_uuid = true;
		return r;
	}
	if (strcmp(key, "Flags") == 0)
		return read_flags(m, p);
	return sd_bus_message_skip(m, "v");
}

int ble_dbus_read_props(sd_bus_message *m, struct ble_dbus_props *p)
{
	int r;

	memset(p, 0, sizeof(*p));
	r = sd_bus_message_enter_container(m, 'a', "{sv}");
	if (r < 0)
		return r;
	while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
		const char *key;

		r = sd_bus_message_read_basic(m, 's', &key);
		if (r < 0)
			return r;
		r = read_one(m, key, p);
		if (r == -ENXIO) {
			/* Not the type BlueZ documents: skip this value, keep the rest. */
			p->bad++;
			r = sd_bus_message_skip(m, "v");
		}
		if (r < 0)
			return r;
		r = sd_bus_message_exit_container(m);
		if (r < 0)
			return r;
	}
	if (r < 0)
		return r;
	return sd_bus_message_exit_container(m);
}

static int hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int ble_dbus_path_addr(const char *path, const char *adapter_path, uint8_t addr[6],
                       const char **ret_rest)
{
	size_t n = strlen(adapter_path);
	const char *s;

	if (strncmp(path, adapter_path, n) != 0 || strncmp(path + n, "/dev_", 5) != 0)
		return -EINVAL;
	s = path + n + 5;
	for (int i = 0; i < 6; i++) {
		int hi = hex(s[0]), lo = hi >= 0 ? hex(s[1]) : -1;

		if (lo < 0 || (i < 5 && s[2] != '_'))
			return -EINVAL;
		addr[i] = (uint8_t)(hi << 4 | lo);
		s += i < 5 ? 3 : 2;
	}
	if (*s && *s != '/')
		return -EINVAL;
	if (ret_rest)
		*ret_rest = s;
	return 0;
}

const char *ble_dbus_error_text(sd_bus_message *m, char *buf, size_t size)
{
	const sd_bus_error *e = sd_bus_message_get_error(m);

	if (!e)
		snprintf(buf, size, "no error");
	else if (e->message && *e->message)
		snprintf(buf, size, "%s: %s", e->name ? e->name : "error", e->message);
	else
		snprintf(buf, size, "%s", e->name ? e->name : "error");
	return buf;
}

int ble_dbus_append_filter(sd_bus_message *m)
{
	/*
	 * DuplicateData: BlueZ otherwise reports a device's data once per
	 * discovery session and drops the repeats, and a sensor's next
	 * readings would never arrive.
	 */
	return sd_bus_message_append(m, "a{sv}", 2, "Transport", "s", "le", "DuplicateData", "b", 1);
}
