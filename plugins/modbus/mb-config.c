/* SPDX-License-Identifier: MIT */
/*
 * mb-config.c - the Modbus driver's create(): the bus section, its devices
 * and points, checked against each other and against the protocol's
 * limits, then grouped by device and interval and planned into requests.
 *
 * Only during create, on the loop thread. Every key is read through the
 * host's getters (or the kit's, m2m/plugin-util.h), so that the host can
 * report any key the driver did not ask for; keys that do not apply (a
 * baud rate on TCP) stay unread on purpose.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "mb-driver.h"

static const char *const transport_names[] = { "tcp", "rtu", NULL };
static const char *const parity_names[] = { "none", "even", "odd", NULL };

/* The item of KEY for an error's location, or OBJ when the key is absent. */
static const cJSON *key_item(struct mb_driver *drv, const cJSON *obj, const char *key)
{
	return m2m_cfg_key_item(drv->api, drv->host, obj, key);
}

int mb_index_cmp(const void *a, const void *b)
{
	const struct mb_index *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

size_t mb_plan_table(struct mb_table_plan *tp)
{
	tp->n_blocks = tp->n_spans ? mb_plan(tp->spans, tp->n_spans, tp->breaks, tp->max_gap,
	                                     tp->max_count, tp->blocks)
	                           : 0;
	return tp->n_blocks;
}

static bool baud_supported(int64_t baud)
{
	static const int rates[] = { 110, 300, 600, 1200, 2400, 4800, 9600, 19200, 38400,
		                     57600, 115200, 230400, 460800, 500000, 576000, 921600,
		                     1000000, 1152000, 1500000, 2000000, 2500000, 3000000,
		                     3500000, 4000000 };

	for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++)
		if (rates[i] == baud)
			return true;
	return false;
}

/* Bus-wide settings; devices take the request settings as defaults. */
struct mb_defaults {
	int64_t timeout_us;
	int retries;
	int64_t delay_us;
	unsigned max_gap;
	unsigned max_gap_bits;
};

static int parse_bus(struct mb_driver *drv, const cJSON *config, struct mb_defaults *d)
{
	const struct m2m_host_api *api = drv->api;
	m2m_host *host = drv->host;
	int r;

	r = api->cfg_enum(host, config, "transport", transport_names, TRANSPORT_TCP,
	                  &drv->transport);
	if (r < 0)
		return r;

	if (drv->transport == TRANSPORT_TCP) {
		r = m2m_cfg_strdup(api, host, config, "host", "the server's address or name", &drv->tcp_host);
		if (r == 0)
			r = m2m_cfg_int_range(api, host, config, "port", 502, 1, 65535, &drv->tcp_port);
		if (r < 0)
			return r;
		if (asprintf(&drv->bus_name, "tcp:%s:%d", drv->tcp_host, drv->tcp_port) < 0) {
			drv->bus_name = NULL;
			return -ENOMEM;
		}
		d->delay_us = 0;
	} else {
		int64_t baud;
		double char_us;

		r = m2m_cfg_strdup(api, host, config, "device", "the serial device, e.g. /dev/ttyUSB0",
		                   &drv->serial);
		if (r < 0)
			return r;
		if (drv->serial[0] != '/')
			return M2M_CFG_ERROR(drv, key_item(drv, config, "device"),
			                     "'device' must be an absolute path, not \"%s\"",
			                     drv->serial);
		r = api->cfg_int(host, config, "baud", 9600, 50, 4000000, &baud);
		if (r < 0)
			return r;
		if (!baud_supported(baud))
			return M2M_CFG_ERROR(drv, key_item(drv, config, "baud"), "%" PRId64 " is not a standard rate "
			                     "(1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, ...)",
			                     baud);
		drv->baud = (int)baud;
		/* The Modbus serial line spec's default is even parity. */
		r = api->cfg_enum(host, config, "parity", parity_names, 1, &drv->parity);
		if (r == 0 || r == 1)
			r = m2m_cfg_int_range(api, host, config, "data_bits", 8, 5, 8, &drv->data_bits);
		if (r == 0)
			r = m2m_cfg_int_range(api, host, config, "stop_bits", 1, 1, 2, &drv->stop_bits);
		if (r == 0)
			r = m2m_cfg_flag(api, host, config, "rs485", false, &drv->rs485);
		if (r < 0)
			return r;
		if (asprintf(&drv->bus_name, "rtu:%s", drv->serial) < 0) {
			drv->bus_name = NULL;
			return -ENOMEM;
		}
		/*
		 * The silent interval (3.5 characters of 11 bits, 1.75ms above
		 * 19200 baud) that tells the next device a frame starts.
		 */
		char_us = 11.0 * 1e6 / (double)drv->baud;
		d->delay_us = drv->baud > 19200 ? 1750 : (int64_t)ceil(3.5 * char_us);
	}

	r = m2m_cfg_duration_range(api, host, config, "timeout", 500 * US_PER_MS, US_PER_MS, 60 * US_PER_S,
	                           &d->timeout_us);
	if (r == 0)
		r = m2m_cfg_int_range(api, host, config, "retries", 1, 0, 10, &d->retries);
	if (r == 0)
		r = m2m_cfg_duration_range(api, host, config, "inter_request_delay", d->delay_us, 0,
		                           10 * US_PER_S, &d->delay_us);
	if (r == 0)
		r = m2m_cfg_duration_range(api, host, config, "backoff_max", 30 * US_PER_S, 100 * US_PER_MS,
		                           3600 * US_PER_S, &drv->backoff_max_us);
	if (r == 0)
		r = m2m_cfg_uint(api, host, config, "max_gap", 16, 0, MB_MAX_READ_REGISTERS - 2,
		                 &d->max_gap);
	if (r == 0)
		r = m2m_cfg_uint(api, host, config, "max_gap_bits", 64, 0, MB_MAX_READ_BITS - 2,
		                 &d->max_gap_bits);
	return r;
}

static int parse_device(struct mb_driver *drv, const cJSON *obj, const struct mb_defaults *d,
                        struct mb_device *dev)
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
			return M2M_CFG_ERROR(drv, key_item(drv, obj, "name"), "a second device named \"%s\" on this bus",
			                     dev->name);

	if (drv->transport == TRANSPORT_TCP) {
		/* libmodbus takes 0..247 and 255 ("the server itself") over TCP. */
		r = m2m_cfg_int_range(api, host, obj, "unit_id", 1, 0, 255, &dev->unit_id);
		if (r == 0 && dev->unit_id > 247 && dev->unit_id != 255)
			return M2M_CFG_ERROR(drv, key_item(drv, obj, "unit_id"), "expected 0..247 or 255, got %d",
			                     dev->unit_id);
	} else {
		r = m2m_cfg_int_range(api, host, obj, "unit_id", 1, 1, 247, &dev->unit_id);
	}
	if (r < 0)
		return r;
	for (size_t i = 0; &drv->devices[i] != dev; i++)
		if (drv->devices[i].unit_id == dev->unit_id)
			return M2M_CFG_ERROR(drv, key_item(drv, obj, "unit_id"),
			                     "unit_id %d is already device \"%s\" on this bus",
			                     dev->unit_id, drv->devices[i].name);

	r = m2m_cfg_duration_range(api, host, obj, "interval", US_PER_S, US_PER_MS, 24 * 3600 * US_PER_S,
	                           &dev->interval_us);
	if (r == 0)
		r = m2m_cfg_duration_range(api, host, obj, "timeout", d->timeout_us, US_PER_MS, 60 * US_PER_S,
		                           &dev->timeout_us);
	if (r == 0)
		r = m2m_cfg_int_range(api, host, obj, "retries", d->retries, 0, 10, &dev->retries);
	if (r == 0)
		r = m2m_cfg_duration_range(api, host, obj, "inter_request_delay", d->delay_us, 0, 10 * US_PER_S,
		                           &dev->delay_us);
	if (r == 0)
		r = m2m_cfg_uint(api, host, obj, "max_registers", MB_MAX_READ_REGISTERS, 1,
		                 MB_MAX_READ_REGISTERS, &dev->max_registers);
	if (r == 0)
		r = m2m_cfg_uint(api, host, obj, "max_bits", MB_MAX_READ_BITS, 1, MB_MAX_READ_BITS,
		                 &dev->max_bits);
	if (r == 0)
		r = m2m_cfg_uint(api, host, obj, "max_gap", d->max_gap, 0, MB_MAX_READ_REGISTERS - 2,
		                 &dev->max_gap);
	if (r == 0)
		r = m2m_cfg_uint(api, host, obj, "max_gap_bits", d->max_gap_bits, 0, MB_MAX_READ_BITS - 2,
		                 &dev->max_gap_bits);
	if (r == 0)
		r = m2m_cfg_flag(api, host, obj, "write_multiple", false, &dev->write_multiple);
	if (r < 0)
		return r;
	if (dev->interval_us % US_PER_MS)
		return M2M_CFG_ERROR(drv, key_item(drv, obj, "interval"),
		                     "expected a whole number of milliseconds");
	return 0;
}

/* True when OBJ's KEY is the string VALUE; reads without marking the key as known. */
static bool key_is(const cJSON *obj, const char *key, const char *value)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsString(item) && strcmp(item->valuestring, value) == 0;
}

/*
 * Declares the point of OBJ. A coil, a discrete input or a point of type
 * "bool" is a bool without kind = "bool" being written: it holds a bit,
 * and MQTT must send true/false. The host reads the kind from the point's
 * table and ABI 1.0 has no other way to tell it, so a "kind" item is put
 * into the table for the call and taken out again: the tree is as it was
 * (reload compares it), and the item carries no position, so no message
 * can point at it. Only during create, on the loop thread.
 */
static int declare(struct mb_driver *drv, struct mb_device *dev, const cJSON *obj, uint32_t *ret)
{
	bool implied = !cJSON_GetObjectItemCaseSensitive(obj, "kind") &&
	               (key_is(obj, "table", "coil") || key_is(obj, "table", "discrete_input") ||
	                key_is(obj, "type", "bool"));
	cJSON *table = (cJSON *)obj, *kind = NULL;
	int r;

	if (implied) {
		kind = cJSON_CreateString("bool");
		if (!kind || !cJSON_AddItemToObject(table, "kind", kind)) {
			cJSON_Delete(kind);
			return -ENOMEM;
		}
	}
	r = drv->api->declare_point(drv->host, dev->name, obj, ret);
	if (kind)
		cJSON_Delete(cJSON_DetachItemViaPointer(table, kind));
	return r;
}

static int parse_point(struct mb_driver *drv, const cJSON *obj, struct mb_device *dev,
                       struct mb_point *p)
{
	const struct m2m_host_api *api = drv->api;
	m2m_host *host = drv->host;
	const char *kind = NULL;
	bool bits, is_string_kind;
	int64_t address;
	unsigned max;
	int r;

	p->dev = dev;
	p->bit = -1;
	p->order = MB_ABCD;
	r = declare(drv, dev, obj, &p->id);
	if (r < 0)
		return r;

	r = api->cfg_enum(host, obj, "table", mb_table_names, -1, &p->table);
	if (r < 0)
		return r;
	if (r == 0)
		return M2M_CFG_ERROR(drv, obj, "missing key 'table' (coil, discrete_input, "
		                     "input_register or holding_register)");
	bits = mb_table_is_bits(p->table);
	r = api->cfg_int(host, obj, "address", -1, 0, 65535, &address);
	if (r < 0)
		return r;
	if (r == 0)
		return M2M_CFG_ERROR(drv, obj, "missing key 'address' (0..65535, the protocol "
		                     "address, not the 4xxxx register number)");
	p->address = (uint32_t)address;

	r = api->cfg_enum(host, obj, "type", mb_type_names, bits ? MB_BOOL : MB_UINT16, &p->type);
	if (r < 0)
		return r;
	if (bits && p->type != MB_BOOL)
		return M2M_CFG_ERROR(drv, key_item(drv, obj, "type"), "type %s does not fit table %s: coils and discrete "
		                     "inputs hold single bits (type = \"bool\")",
		                     mb_type_names[p->type], mb_table_names[p->table]);

	if (!bits && p->type == MB_BOOL) {
		r = m2m_cfg_int_range(api, host, obj, "bit", -1, 0, 15, &p->bit);
		if (r < 0)
			return r;
		if (p->bit < 0)
			return M2M_CFG_ERROR(drv, obj, "a bool in a register needs 'bit' (0..15, 0 = the "
			                     "least significant)");
	}

	max = bits ? dev->max_bits : dev->max_registers;
	if (p->type == MB_STRING) {
		int length;

		r = m2m_cfg_int_range(api, host, obj, "length", 0, 0, MB_STRING_MAX_REGISTERS, &length);
		if (r < 0)
			return r;
		if (length <= 0)
			return M2M_CFG_ERROR(drv, obj, "a string needs 'length', its size in registers "
			                     "(1..%d)", MB_STRING_MAX_REGISTERS);
		p->nregs = (uint32_t)length;
	} else {
		p->nregs = mb_type_registers(p->type, 0);
	}
	if (p->nregs > max)
		return M2M_CFG_ERROR(drv, obj, "a %s of %" PRIu32 " registers does not fit in one "
		                     "request of device \"%s\" (max_registers = %u)",
		                     mb_type_names[p->type], p->nregs, dev->name, max);
	if (p->address + p->nregs > 65536)
		return M2M_CFG_ERROR(drv, key_item(drv, obj, "address"),
		                     "a %s at address %" PRIu32 " runs past address 65535",
		                     mb_type_names[p->type], p->address);

	if (!bits && p->type != MB_BOOL) {
		r = api->cfg_enum(host, obj, "order", mb_order_names, MB_ABCD, &p->order);
		if (r < 0)
			return r;
		if (!mb_order_valid(p->type, p->order))
			return M2M_CFG_ERROR(drv, key_item(drv, obj, "order"), "order %s does not apply to a string: its "
			                     "characters are in address order (ABCD or BADC)",
			                     mb_order_names[p->order]);
	}

	r = m2m_cfg_duration_range(api, host, obj, "interval", dev->interval_us, US_PER_MS,
	                           24 * 3600 * US_PER_S, &p->interval_us);
	if (r < 0)
		return r;
	if (p->interval_us % US_PER_MS)
		return M2M_CFG_ERROR(drv, key_item(drv, obj, "interval"),
		                     "expected a whole number of milliseconds");

	/*
	 * The host parses these generic keys itself; reading them again here
	 * only checks that they agree with the Modbus address.
	 */
	r = m2m_cfg_flag(api, host, obj, "writable", false, &p->writable);
	if (r < 0)
		return r;
	if (p->writable && !mb_table_is_writable(p->table))
		return M2M_CFG_ERROR(drv, key_item(drv, obj, "writable"), "table %s is read-only; only coils "
		                     "and holding registers are writable", mb_table_names[p->table]);
	if (p->writable && p->type == MB_STRING)
		return M2M_CFG_ERROR(drv, key_item(drv, obj, "writable"), "string points cannot be writable "
		                     "(writes carry a number)");
	r = m2m_cfg_flag(api, host, obj, "verify", false, &p->verify);
	if (r < 0)
		return r;
	if (p->verify && !p->writable)
		return M2M_CFG_ERROR(drv, key_item(drv, obj, "verify"), "'verify' (read back after a write) needs "
		                     "writable = true");
	r = api->cfg_string(host, obj, "kind", NULL, &kind);
	if (r < 0)
		return r;
	is_string_kind = kind && strcmp(kind, "string") == 0;
	if (p->type == MB_STRING && !is_string_kind)
		return M2M_CFG_ERROR(drv, obj, "a point of type string needs kind = \"string\"");
	if (p->type != MB_STRING && is_string_kind)
		return M2M_CFG_ERROR(drv, obj, "kind = \"string\" needs type = \"string\" and 'length'");
	return 0;
}

/* Sort key of the overlap check and the spans: device, table, address, bit. */
static int point_cmp(const void *a, const void *b, void *arg)
{
	const struct mb_driver *drv = arg;
	const struct mb_point *x = &drv->points[*(const uint32_t *)a];
	const struct mb_point *y = &drv->points[*(const uint32_t *)b];

	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	if (x->table != y->table)
		return x->table < y->table ? -1 : 1;
	if (x->address != y->address)
		return x->address < y->address ? -1 : 1;
	return x->bit < y->bit ? -1 : x->bit > y->bit;
}

/* "10", "10..11" or "10 bit 3", for messages. */
static const char *describe_range(const struct mb_point *p, char *buf, size_t size)
{
	if (p->bit >= 0)
		snprintf(buf, size, "%" PRIu32 " bit %d", p->address, p->bit);
	else if (p->nregs > 1)
		snprintf(buf, size, "%" PRIu32 "..%" PRIu32, p->address, p->address + p->nregs - 1);
	else
		snprintf(buf, size, "%" PRIu32, p->address);
	return buf;
}

/*
 * Rejects points that read the same addresses of one device and table,
 * except bool points on different bits of one register.
 */
static int check_overlaps(struct mb_driver *drv, const uint32_t *sorted,
                          const cJSON *const *items, const char *const *names)
{
	const struct mb_point *holder = NULL; /* the point reaching furthest so far */
	uint32_t holder_idx = 0;

	for (size_t i = 0; i < drv->n_points; i++) {
		uint32_t idx = sorted[i];
		const struct mb_point *p = &drv->points[idx];

		if (holder && (holder->dev != p->dev || holder->table != p->table))
			holder = NULL;
		if (holder && p->address < holder->address + holder->nregs) {
			bool bits_of_one_register = holder->bit >= 0 && p->bit >= 0 &&
			                            holder->address == p->address;

			char a[48], b[48];

			if (!bits_of_one_register || holder->bit == p->bit)
				return M2M_CFG_ERROR(drv, items[idx],
				                     "point \"%s\" (%s %s) overlaps point \"%s\" (%s %s) "
				                     "of device \"%s\"",
				                     names[idx], mb_table_names[p->table],
				                     describe_range(p, a, sizeof(a)), names[holder_idx],
				                     mb_table_names[holder->table],
				                     describe_range(holder, b, sizeof(b)), p->dev->name);
		}
		if (!holder || p->address + p->nregs > holder->address + holder->nregs ||
		    p->bit >= 0) {
			holder = p;
			holder_idx = idx;
		}
	}
	return 0;
}

/* Builds the spans of one table of group G from its members in sorted order. */
static int build_plan(struct mb_driver *drv, struct mb_group *g, int table,
                      const uint32_t *sorted)
{
	struct mb_table_plan *tp = &g->plans[table];
	const struct mb_device *dev = g->dev;
	size_t n = 0, s = 0;

	for (size_t i = 0; i < drv->n_points; i++) {
		const struct mb_point *p = &drv->points[sorted[i]];

		if (p->group == g && p->table == table)
			n++;
	}
	if (n == 0)
		return 0;
	tp->spans = calloc(n, sizeof(*tp->spans));
	tp->span_first = calloc(n + 1, sizeof(*tp->span_first));
	tp->members = calloc(n, sizeof(*tp->members));
	tp->breaks = calloc(n, sizeof(*tp->breaks));
	tp->new_breaks = calloc(n, sizeof(*tp->new_breaks));
	tp->blocks = calloc(n, sizeof(*tp->blocks));
	if (!tp->spans || !tp->span_first || !tp->members || !tp->breaks || !tp->new_breaks ||
	    !tp->blocks)
		return -ENOMEM;

	n = 0;
	for (size_t i = 0; i < drv->n_points; i++) {
		const struct mb_point *p = &drv->points[sorted[i]];

		if (p->group != g || p->table != table)
			continue;
		/* Bits of one register share its span. */
		if (s == 0 || p->address != tp->spans[s - 1].start || p->bit < 0) {
			tp->spans[s] = (struct mb_span){ .start = p->address, .count = p->nregs };
			tp->span_first[s] = (uint32_t)n;
			s++;
		}
		tp->members[n++] = sorted[i];
	}
	tp->span_first[s] = (uint32_t)n;
	tp->n_spans = s;
	tp->max_count = mb_table_is_bits(table) ? dev->max_bits : dev->max_registers;
	tp->max_gap = mb_table_is_bits(table) ? dev->max_gap_bits : dev->max_gap;
	if (mb_plan_table(tp) == 0)
		return -EINVAL; /* parse_point and check_overlaps make this impossible */
	return 0;
}

/*
 * Numbers the slots of G's points in the order a cycle reads them (table
 * by table, span by span), so that every block, however often it is split
 * later, owns one run of reading slots and one of text slots: the bus
 * thread hands a cycle's results over as a growing prefix (mb_group.ready).
 */
static void assign_slots(struct mb_driver *drv, struct mb_group *g)
{
	uint32_t n_readings = 0, n_texts = 0;

	for (int t = 0; t < MB_TABLE_COUNT; t++) {
		const struct mb_table_plan *tp = &g->plans[t];

		for (uint32_t m = 0; m < (tp->n_spans ? tp->span_first[tp->n_spans] : 0); m++) {
			struct mb_point *p = &drv->points[tp->members[m]];

			p->slot = p->type == MB_STRING ? n_texts++ : n_readings++;
		}
	}
}

/* One group per device and interval, with its buffers allocated now. */
static int build_groups(struct mb_driver *drv, const uint32_t *sorted)
{
	int r;

	drv->groups = calloc(drv->n_points, sizeof(*drv->groups));
	if (!drv->groups)
		return -ENOMEM;
	for (size_t i = 0; i < drv->n_points; i++) {
		struct mb_point *p = &drv->points[i];
		size_t gi;

		for (gi = 0; gi < drv->n_groups; gi++)
			if (drv->groups[gi].dev == p->dev &&
			    drv->groups[gi].interval_us == p->interval_us)
				break;
		if (gi == drv->n_groups) {
			drv->groups[gi] = (struct mb_group){
				.drv = drv,
				.dev = p->dev,
				.interval_us = p->interval_us,
			};
			drv->n_groups++;
			p->dev->n_groups++;
		}
		p->group = &drv->groups[gi];
		p->slot = (uint32_t)(p->type == MB_STRING ? p->group->n_texts++
		                                          : p->group->n_readings++);
	}
	for (size_t gi = 0; gi < drv->n_groups; gi++) {
		struct mb_group *g = &drv->groups[gi];

		g->readings = calloc(g->n_readings ? g->n_readings : 1, sizeof(*g->readings));
		g->texts = calloc(g->n_texts ? g->n_texts : 1, sizeof(*g->texts));
		if (!g->readings || !g->texts)
			return -ENOMEM;
		if (!g->dev->min_interval_us || g->interval_us < g->dev->min_interval_us)
			g->dev->min_interval_us = g->interval_us;
		for (int t = 0; t < MB_TABLE_COUNT; t++) {
			r = build_plan(drv, g, t, sorted);
			if (r < 0)
				return r;
		}
		assign_slots(drv, g);
	}
	for (size_t i = 0; i < drv->n_points; i++) {
		const struct mb_point *p = &drv->points[i];

		if (p->type == MB_STRING)
			p->group->texts[p->slot].point = p->id;
		else
			p->group->readings[p->slot] = (struct m2m_reading){ .point = p->id };
	}
	return 0;
}

static int build_index(struct mb_driver *drv)
{
	drv->index = calloc(drv->n_points, sizeof(*drv->index));
	if (!drv->index)
		return -ENOMEM;
	for (size_t i = 0; i < drv->n_points; i++)
		drv->index[i] = (struct mb_index){ .id = drv->points[i].id, .idx = (uint32_t)i };
	qsort(drv->index, drv->n_points, sizeof(*drv->index), mb_index_cmp);
	return 0;
}

/* Counts the point tables of every device, checking the arrays' shapes. */
static int count_points(struct mb_driver *drv, const cJSON *devices, size_t *ret)
{
	const cJSON *dobj;
	size_t n = 0;

	cJSON_ArrayForEach(dobj, devices) {
		const cJSON *points = cJSON_GetObjectItemCaseSensitive(dobj, "points");

		if (!cJSON_IsObject(dobj))
			return M2M_CFG_ERROR(drv, dobj, "expected a device table ([[drivers.NAME.devices]])");
		/* The getter marks the key; this only sizes the arrays. */
		if (cJSON_IsArray(points))
			n += (size_t)cJSON_GetArraySize(points);
	}
	*ret = n;
	return 0;
}

static int parse_devices(struct mb_driver *drv, const cJSON *devices,
                         const struct mb_defaults *d, const cJSON **items, const char **names)
{
	const struct m2m_host_api *api = drv->api;
	const cJSON *dobj;
	size_t np = 0;
	int r;

	cJSON_ArrayForEach(dobj, devices) {
		struct mb_device *dev = &drv->devices[drv->n_devices++];
		const cJSON *points, *pobj;

		r = parse_device(drv, dobj, d, dev);
		if (r < 0)
			return r;
		points = api->cfg_item(drv->host, dobj, "points");
		if (!points || !cJSON_IsArray(points) || cJSON_GetArraySize(points) == 0)
			return M2M_CFG_ERROR(drv, points ? points : dobj,
			                     "device \"%s\" needs 'points', a non-empty array of point "
			                     "tables ([[drivers.NAME.devices.points]])", dev->name);
		cJSON_ArrayForEach(pobj, points) {
			struct mb_point *p = &drv->points[np];

			if (!cJSON_IsObject(pobj))
				return M2M_CFG_ERROR(drv, pobj, "expected a point table");
			items[np] = pobj;
			r = api->cfg_string(drv->host, pobj, "name", NULL, &names[np]);
			if (r < 0)
				return r;
			if (!names[np])
				names[np] = "?";
			r = parse_point(drv, pobj, dev, p);
			if (r < 0)
				return r;
			drv->n_points = ++np;
		}
	}
	return 0;
}

int mb_create(m2m_host *host, const struct m2m_host_api *api, const struct cJSON *config,
              void **ret_driver)
{
	struct mb_defaults d = { 0 };
	const cJSON *devices;
	const cJSON **items = NULL;
	const char **names = NULL;
	uint32_t *sorted = NULL;
	struct mb_driver *drv;
	size_t n_points = 0;
	int r;

	/* Every host function used here is in ABI 1.0; check the table has them. */
	if (!api || !M2M_HAS_FIELD(struct m2m_host_api, api->struct_size, write_done))
		return -EPROTO;
	drv = calloc(1, sizeof(*drv));
	if (!drv)
		return -ENOMEM;
	drv->host = host;
	drv->api = api;
	drv->io = &mb_io_libmodbus;
	drv->wake_fd = -1;

	r = parse_bus(drv, config, &d);
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
	items = calloc(n_points ? n_points : 1, sizeof(*items));
	names = calloc(n_points ? n_points : 1, sizeof(*names));
	sorted = calloc(n_points ? n_points : 1, sizeof(*sorted));
	if (!drv->devices || !drv->points || !items || !names || !sorted)
		goto fail;

	r = parse_devices(drv, devices, &d, items, names);
	if (r < 0)
		goto fail;
	for (size_t i = 0; i < drv->n_points; i++)
		sorted[i] = (uint32_t)i;
	qsort_r(sorted, drv->n_points, sizeof(*sorted), point_cmp, drv);
	r = check_overlaps(drv, sorted, items, names);
	if (r < 0)
		goto fail;
	r = build_groups(drv, sorted);
	if (r < 0)
		goto fail;
	r = build_index(drv);
	if (r < 0)
		goto fail;
	mb_declare_stats(drv);

	free(items);
	free(names);
	free(sorted);
	*ret_driver = drv;
	return 0;

fail:
	free(items);
	free(names);
	free(sorted);
	mb_free(drv);
	return r < 0 ? r : -EINVAL;
}
