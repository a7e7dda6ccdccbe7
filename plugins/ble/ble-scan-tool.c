/* SPDX-License-Identifier: MIT */
/*
 * m2md-ble-scan - lists the BLE devices BlueZ hears for a few seconds, with
 * the format m2md would decode them as and the fields they carry, and
 * prints a config snippet for the ble driver.
 *
 * The ble driver declares its points at create (ABI 1.x), so devices have
 * to be configured before m2md runs; this tool is how one finds what to
 * configure. It is a program of its own rather than a mode of the daemon:
 * it needs nothing of m2md but the decoders and talks to BlueZ directly,
 * with the same discovery filter as the driver, beside a running m2md
 * (BlueZ runs one discovery for all its clients). Blocking sd-bus calls
 * are fine here: there is no loop to stall.
 *
 *   m2md-ble-scan [--adapter hci0] [--seconds 10] [--driver ble] [--all]
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ble-adv.h"
#include "ble-dbus.h"

#define MAX_DEVICES 512
#define MAX_FIELDS 32

struct seen {
	uint8_t addr[6];
	char name[64];
	int rssi;
	bool has_rssi;
	unsigned adverts;
	bool known;                   /* a format m2md decodes */
	enum ble_format fmt;
	char id[BLE_STABLE_ID_MAX];
	int decode;                   /* the last decode's result */
	size_t n_fields;
	struct {
		char name[48];
		bool text;
	} fields[MAX_FIELDS];
};

struct scan {
	const char *adapter_path;
	struct seen seen[MAX_DEVICES];
	size_t n_seen;
	unsigned dropped;
};

static struct seen *lookup(struct scan *s, const uint8_t addr[6])
{
	for (size_t i = 0; i < s->n_seen; i++)
		if (memcmp(s->seen[i].addr, addr, 6) == 0)
			return &s->seen[i];
	if (s->n_seen == MAX_DEVICES) {
		s->dropped++;
		return NULL;
	}
	memset(&s->seen[s->n_seen], 0, sizeof(s->seen[0]));
	memcpy(s->seen[s->n_seen].addr, addr, 6);
	return &s->seen[s->n_seen++];
}

static void collect(void *ctx, const char *field, double value, const char *text)
{
	struct seen *d = ctx;

	(void)value;
	for (size_t i = 0; i < d->n_fields; i++)
		if (strcmp(d->fields[i].name, field) == 0)
			return;
	if (d->n_fields < MAX_FIELDS) {
		snprintf(d->fields[d->n_fields].name, sizeof(d->fields[0].name), "%s", field);
		d->fields[d->n_fields++].text = text != NULL;
	}
}

static void device(struct scan *s, const char *path, sd_bus_message *m)
{
	struct ble_dbus_props p;
	struct seen *d;
	enum ble_format fmt;

	if (ble_dbus_read_props(m, &p) < 0)
		return;
	if (!p.has_addr && ble_dbus_path_addr(path, s->adapter_path, p.addr, NULL) < 0)
		return;
	if (!p.has_mfr && !p.has_svc && !p.adv.has_rssi)
		return;
	memcpy(p.adv.addr, p.addr, 6);
	d = lookup(s, p.addr);
	if (!d)
		return;
	d->adverts++;
	if (p.name)
		snprintf(d->name, sizeof(d->name), "%s", p.name);
	if (p.adv.has_rssi) {
		d->rssi = p.adv.rssi;
		d->has_rssi = true;
	}
	if ((p.has_mfr || p.has_svc) && ble_adv_detect(&p.adv, &fmt) == 0) {
		d->known = true;
		d->fmt = fmt;
		if (ble_adv_stable_id(fmt, &p.adv, d->id, sizeof(d->id)) < 0)
			d->id[0] = 0;
		d->decode = ble_adv_decode(fmt, &p.adv, NULL, NULL, NULL, 0, collect, d, NULL, 0);
	}
}

static int on_signal(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	struct scan *s = userdata;
	const char *path, *iface;

	(void)ret_error;
	if (sd_bus_message_is_signal(m, "org.freedesktop.DBus.ObjectManager", "InterfacesAdded")) {
		if (sd_bus_message_read_basic(m, 'o', &path) < 0 ||
		    sd_bus_message_enter_container(m, 'a', "{sa{sv}}") < 0)
			return 0;
		while (sd_bus_message_enter_container(m, 'e', "sa{sv}") > 0) {
			if (sd_bus_message_read_basic(m, 's', &iface) < 0)
				return 0;
			if (strcmp(iface, BLUEZ_DEVICE) == 0)
				device(s, path, m);
			else if (sd_bus_message_skip(m, "a{sv}") < 0)
				return 0;
			if (sd_bus_message_exit_container(m) < 0)
				return 0;
		}
	} else if (sd_bus_message_is_signal(m, "org.freedesktop.DBus.Properties", "PropertiesChanged")) {
		path = sd_bus_message_get_path(m);
		if (path && sd_bus_message_read_basic(m, 's', &iface) >= 0 &&
		    strcmp(iface, BLUEZ_DEVICE) == 0)
			device(s, path, m);
	}
	return 0;
}

/* A point name from a field name: the decoders' names are valid ones already. */
static void print_device(const struct seen *d, const char *driver)
{
	char a[BLE_ADDR_STRLEN], name[32];

	ble_addr_format(d->addr, a);
	snprintf(name, sizeof(name), "%s_%02x%02x%02x", ble_format_name(d->fmt), d->addr[3],
	         d->addr[4], d->addr[5]);
	printf("\n[[drivers.%s.devices]]\n", driver);
	printf("name = \"%s\"\n", name);
	printf("address = \"%s\"    # %s%s%s", a, d->name[0] ? "\"" : "", d->name,
	       d->name[0] ? "\", " : "");
	if (d->has_rssi)
		printf("%d dBm, ", d->rssi);
	printf("%u adverts\n", d->adverts);
	if (d->id[0])
		printf("# or, for a device whose address changes: id = \"%s\"\n", d->id);
	printf("format = \"%s\"\n", ble_format_name(d->fmt));
	if (d->decode == -EACCES)
		printf("# encrypted: put its bind key into the driver's key_file\n");
	else if (d->decode < 0)
		printf("# its last advertisement did not decode (%s)\n", strerror(-d->decode));
	for (size_t i = 0; i < d->n_fields; i++) {
		printf("[[drivers.%s.devices.points]]\nname = \"%s\"\n", driver, d->fields[i].name);
		if (d->fields[i].text)
			printf("kind = \"string\"\n");
	}
	printf("[[drivers.%s.devices.points]]\nname = \"rssi\"\nunit = \"dBm\"\n", driver);
}

static int call(sd_bus *bus, const char *path, const char *member, bool filter)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus_message *m = NULL, *reply = NULL;
	int r;

	r = sd_bus_message_new_method_call(bus, &m, BLUEZ_SERVICE, path, BLUEZ_ADAPTER, member);
	if (r >= 0 && filter)
		r = ble_dbus_append_filter(m);
	if (r >= 0)
		r = sd_bus_call(bus, m, 10 * 1000000, &e, &reply);
	if (r < 0 && !sd_bus_error_has_name(&e, "org.bluez.Error.InProgress"))
		fprintf(stderr, "m2md-ble-scan: %s on %s: %s\n", member, path,
		        e.message ? e.message : strerror(-r));
	else
		r = 0;
	sd_bus_error_free(&e);
	sd_bus_message_unref(m);
	sd_bus_message_unref(reply);
	return r;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: m2md-ble-scan [--adapter NAME] [--seconds N] [--driver NAME] [--all]\n"
	           "Lists the BLE devices heard for N seconds (default 10) and prints a\n"
	           "[[drivers.NAME.devices]] snippet for those m2md can decode.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "adapter", required_argument, NULL, 'a' },
		{ "seconds", required_argument, NULL, 's' },
		{ "driver", required_argument, NULL, 'd' },
		{ "all", no_argument, NULL, 'A' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *adapter = "hci0", *driver = "ble";
	char path[128], match[256];
	struct scan *s;
	struct timespec t0, t;
	long seconds = 10;
	bool all = false;
	sd_bus *bus = NULL;
	size_t known = 0;
	int c, r;

	while ((c = getopt_long(argc, argv, "a:s:d:Ah", opts, NULL)) != -1) {
		char *end;

		switch (c) {
		case 'a': adapter = optarg; break;
		case 'd': driver = optarg; break;
		case 'A': all = true; break;
		case 's':
			errno = 0;
			seconds = strtol(optarg, &end, 10);
			if (errno || *end || seconds < 1 || seconds > 3600) {
				fprintf(stderr, "m2md-ble-scan: --seconds takes 1..3600, not \"%s\"\n", optarg);
				return 2;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	snprintf(path, sizeof(path), "/org/bluez/%s", adapter);
	s = calloc(1, sizeof(*s));
	if (!s)
		return 1;
	s->adapter_path = path;
	r = sd_bus_open_system(&bus);
	if (r < 0) {
		fprintf(stderr, "m2md-ble-scan: cannot connect to the system bus: %s\n", strerror(-r));
		return 1;
	}
	snprintf(match, sizeof(match), "type='signal',sender='org.bluez',path_namespace='%s',"
	         "interface='org.freedesktop.DBus.Properties',member='PropertiesChanged'", path);
	r = sd_bus_add_match(bus, NULL, match, on_signal, s);
	if (r >= 0)
		r = sd_bus_add_match(bus, NULL, "type='signal',sender='org.bluez',path='/',"
		                     "interface='org.freedesktop.DBus.ObjectManager',"
		                     "member='InterfacesAdded'", on_signal, s);
	if (r < 0) {
		fprintf(stderr, "m2md-ble-scan: cannot watch BlueZ's signals: %s\n", strerror(-r));
		return 1;
	}
	if (call(bus, path, "SetDiscoveryFilter", true) < 0 || call(bus, path, "StartDiscovery", false) < 0)
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		long left;

		do
			r = sd_bus_process(bus, NULL);
		while (r > 0);
		if (r < 0) {
			fprintf(stderr, "m2md-ble-scan: the bus failed: %s\n", strerror(-r));
			return 1;
		}
		clock_gettime(CLOCK_MONOTONIC, &t);
		left = seconds * 1000 - ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
		if (left <= 0)
			break;
		sd_bus_wait(bus, (uint64_t)left * 1000);
	}
	call(bus, path, "StopDiscovery", false);

	for (size_t i = 0; i < s->n_seen; i++)
		known += s->seen[i].known;
	printf("# m2md-ble-scan: %zu devices heard on %s in %lds, %zu in a format m2md decodes\n",
	       s->n_seen, adapter, seconds, known);
	if (s->dropped)
		printf("# (%u more not listed: more than %d devices)\n", s->dropped, MAX_DEVICES);
	for (size_t i = 0; i < s->n_seen; i++) {
		const struct seen *d = &s->seen[i];
		char a[BLE_ADDR_STRLEN];

		if (d->known) {
			print_device(d, driver);
		} else if (all) {
			ble_addr_format(d->addr, a);
			printf("\n# %s%s%s: no known format (raw fields: format = \"raw\")\n", a,
			       d->name[0] ? " " : "", d->name);
		}
	}
	sd_bus_flush_close_unref(bus);
	free(s);
	return 0;
}
