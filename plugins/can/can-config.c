/* SPDX-License-Identifier: MIT */
/*
 * can-config.c - the CAN driver's create(): the interface, DBC files,
 * inline messages, and the selection of signals that become points.
 *
 * Only during create, on the loop thread. Every key is read through the
 * host's getters (or the kit's), so that the host reports any key the
 * driver did not ask for. A selection names signals as "Message.Signal"
 * with shell globs on both sides ("Engine*.*"); each match becomes the
 * point "device/Signal", the device being the message's name unless the
 * selection gives one. The DBC's factor and offset become the point's scale
 * and offset, so the driver submits the raw number and the core
 * normalizes, as for every driver; its min and max become the limits a
 * write is checked against.
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cJSON.h>
#include <linux/can.h>
#include <linux/can/j1939.h>

#include "can-driver.h"

static const char *const byte_order_names[] = { "intel", "motorola", NULL };
static const char *const type_names[] = { "integer", "float", "double", NULL };

static const cJSON *key_item(struct can_driver *drv, const cJSON *obj, const char *key)
{
	return m2m_cfg_key_item(drv->api, drv->host, obj, key);
}

/* --- DBC files --- */

static int read_file(const char *path, char **ret, size_t *ret_len)
{
	struct stat st;
	size_t len = 0;
	char *buf;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	if ((uint64_t)st.st_size > CAN_DBC_MAX_BYTES) {
		close(fd);
		return -EFBIG;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	*ret = buf;
	*ret_len = len;
	return 0;
}

static int load_dbc(struct can_driver *drv, const cJSON *item, const char *path)
{
	struct can_dbc *dbc = NULL;
	char *text = NULL, *error = NULL;
	size_t len = 0;
	int r;

	if (path[0] != '/')
		return M2M_CFG_ERROR(drv, item, "expected an absolute path to a DBC file, not \"%s\"",
		                     path);
	r = read_file(path, &text, &len);
	if (r < 0)
		return M2M_CFG_ERROR(drv, item, "cannot read DBC file \"%s\": %s", path,
		                     r == -EINVAL ? "not a regular file" : strerror(-r));
	r = can_dbc_parse(text, len, path, &dbc, &error);
	free(text);
	if (r < 0) {
		r = M2M_CFG_ERROR(drv, item, "%s", error ? error : strerror(-r));
		free(error);
		return r;
	}
	for (size_t i = 0; i < dbc->n_warnings; i++)
		drv->api->log(drv->host, M2M_LOG_WARNING, "%s", dbc->warnings[i]);
	if (dbc->n_warnings_dropped)
		drv->api->log(drv->host, M2M_LOG_WARNING, "%s: %zu more warnings", path,
		              dbc->n_warnings_dropped);
	drv->dbc_names[drv->n_dbcs] = m2m_strdup(path);
	drv->dbcs[drv->n_dbcs++] = dbc;
	return drv->dbc_names[drv->n_dbcs - 1] ? 0 : -ENOMEM;
}

static int parse_dbcs(struct can_driver *drv, const cJSON *config)
{
	const cJSON *item = drv->api->cfg_item(drv->host, config, "dbc"), *e;
	int r;

	if (!item)
		return 0;
	if (cJSON_IsString(item)) {
		drv->dbcs = calloc(1, sizeof(*drv->dbcs));
		drv->dbc_names = calloc(1, sizeof(*drv->dbc_names));
		if (!drv->dbcs || !drv->dbc_names)
			return -ENOMEM;
		return load_dbc(drv, item, item->valuestring);
	}
	if (!cJSON_IsArray(item))
		return M2M_CFG_ERROR(drv, item, "expected a DBC file's path or an array of paths");
	drv->dbcs = calloc((size_t)cJSON_GetArraySize(item) + 1, sizeof(*drv->dbcs));
	drv->dbc_names = calloc((size_t)cJSON_GetArraySize(item) + 1, sizeof(*drv->dbc_names));
	if (!drv->dbcs || !drv->dbc_names)
		return -ENOMEM;
	cJSON_ArrayForEach(e, item) {
		if (!cJSON_IsString(e))
			return M2M_CFG_ERROR(drv, e, "expected a DBC file's path (a string)");
		r = load_dbc(drv, e, e->valuestring);
		if (r < 0)
			return r;
	}
	return 0;
}

/* --- inline messages --- */

static int parse_values(struct can_driver *drv, const cJSON *obj, struct can_signal *s)
{
	const cJSON *values = drv->api->cfg_item(drv->host, obj, "values"), *v;
	size_t n = 0;

	if (!values)
		return 0;
	if (!cJSON_IsObject(values))
		return M2M_CFG_ERROR(drv, values, "expected a table of raw values and their texts "
		                     "({ 0 = \"off\", 1 = \"on\" })");
	s->values = calloc((size_t)cJSON_GetArraySize(values) + 1, sizeof(*s->values));
	if (!s->values)
		return -ENOMEM;
	cJSON_ArrayForEach(v, values) {
		const char *text = NULL;
		char *end;
		long long raw;
		int r;

		errno = 0;
		raw = strtoll(v->string, &end, 0);
		if (errno || end == v->string || *end)
			return M2M_CFG_ERROR(drv, v, "expected an integer raw value as the key, not \"%s\"",
			                     v->string);
		r = drv->api->cfg_string(drv->host, values, v->string, NULL, &text);
		if (r < 0)
			return r;
		s->values[n].value = (double)raw;
		s->values[n].text = m2m_strdup(text);
		if (!s->values[n].text)
			return -ENOMEM;
		s->n_values = ++n;
	}
	/* can_signal_value_text() looks values up in sorted order. */
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && s->values[j - 1].value > s->values[j].value; j--) {
			struct can_value_desc t = s->values[j];

			s->values[j] = s->values[j - 1];
			s->values[j - 1] = t;
		}
	return 0;
}

static int parse_inline_signal(struct can_driver *drv, const cJSON *obj, struct can_message *m,
                               struct can_signal *s)
{
	const struct m2m_host_api *api = drv->api;
	m2m_host *host = drv->host;
	const char *unit = NULL;
	unsigned start = 0, length = 0, bytes;
	int order, type, r;
	bool is_signed;
	double sv;

	s->mux_parent = -1;
	r = m2m_cfg_strdup(api, host, obj, "name", "the signal's name", &s->name);
	if (r == 0)
		r = m2m_cfg_uint(api, host, obj, "start_bit", 0, 0, CAN_MAX_PAYLOAD * 8 - 1, &start);
	if (r == 0)
		r = m2m_cfg_uint(api, host, obj, "length", 0, 0, 64, &length);
	if (r == 0)
		r = api->cfg_enum(host, obj, "byte_order", byte_order_names, 0, &order);
	if (r >= 0)
		r = m2m_cfg_flag(api, host, obj, "signed", false, &is_signed);
	if (r == 0)
		r = api->cfg_enum(host, obj, "type", type_names, CAN_VALUE_INTEGER, &type);
	if (r >= 0)
		r = m2m_cfg_number(api, host, obj, "factor", 1, &s->factor);
	if (r == 0)
		r = m2m_cfg_number(api, host, obj, "offset", 0, &s->offset);
	if (r == 0)
		r = m2m_cfg_number(api, host, obj, "min", 0, &s->min);
	if (r == 0)
		r = m2m_cfg_number(api, host, obj, "max", 0, &s->max);
	if (r == 0)
		r = api->cfg_string(host, obj, "unit", "", &unit);
	if (r < 0)
		return r;
	if (length == 0)
		return M2M_CFG_ERROR(drv, key_item(drv, obj, "length"),
		                     "expected 'length', the signal's bits (1..64)");
	if ((type == CAN_VALUE_FLOAT && length != 32) || (type == CAN_VALUE_DOUBLE && length != 64))
		return M2M_CFG_ERROR(drv, key_item(drv, obj, "length"),
		                     "a %s signal is %d bits long", type_names[type],
		                     type == CAN_VALUE_FLOAT ? 32 : 64);
	if (!can_signal_layout(start, length, order == 1, &bytes) || bytes > m->size)
		return M2M_CFG_ERROR(drv, key_item(drv, obj, "start_bit"),
		                     "a %u-bit %s signal at bit %u does not fit in the %u bytes of "
		                     "message \"%s\"", length, byte_order_names[order], start,
		                     m->size, m->name);
	if (s->factor == 0)
		return M2M_CFG_ERROR(drv, key_item(drv, obj, "factor"), "expected a factor other than 0");
	s->start_bit = (uint16_t)start;
	s->length = (uint8_t)length;
	s->big_endian = order == 1;
	s->is_signed = is_signed;
	s->type = (enum can_value_type)type;
	s->unit = m2m_strdup(unit);
	if (!s->unit)
		return -ENOMEM;
	r = api->cfg_double(host, obj, "start_value", 0, &sv);
	if (r < 0)
		return r;
	s->has_start_value = r == 1;
	s->start_value = sv;
	return parse_values(drv, obj, s);
}

static int parse_inline(struct can_driver *drv, const cJSON *obj, struct can_message *m)
{
	const struct m2m_host_api *api = drv->api;
	m2m_host *host = drv->host;
	const cJSON *sigs, *e;
	int64_t id, cycle = 0;
	unsigned size;
	int r;

	r = m2m_cfg_strdup(api, host, obj, "name", "the message's name", &m->name);
	if (r < 0)
		return r;
	r = api->cfg_int(host, obj, "id", -1, 0, CAN_EFF_MASK, &id);
	if (r < 0)
		return r;
	if (r == 0)
		return M2M_CFG_ERROR(drv, obj, "missing key 'id' (the CAN id, 0..0x1fffffff)");
	m->id = (uint32_t)id;
	r = m2m_cfg_flag(api, host, obj, "extended", id > CAN_SFF_MASK, &m->extended);
	if (r == 0)
		r = m2m_cfg_flag(api, host, obj, "fd", false, &m->fd);
	if (r == 0)
		r = m2m_cfg_uint(api, host, obj, "size", 8, 0, CAN_MAX_PAYLOAD, &size);
	if (r == 0)
		r = m2m_cfg_duration_range(api, host, obj, "cycle_time", 0, 0, 3600 * M2M_US_PER_S,
		                           &cycle);
	if (r < 0)
		return r;
	if (!m->extended && id > CAN_SFF_MASK)
		return M2M_CFG_ERROR(drv, key_item(drv, obj, "id"), "an 11-bit id is at most 0x7ff; "
		                     "set extended = true for a 29-bit one");
	if (size > 8 && !m->fd)
		return M2M_CFG_ERROR(drv, key_item(drv, obj, "size"),
		                     "a classic frame holds at most 8 bytes; set fd = true");
	m->size = (uint8_t)size;
	m->cycle_time_ms = cycle / M2M_US_PER_MS;
	sigs = api->cfg_item(host, obj, "signals");
	if (!sigs || !cJSON_IsArray(sigs) || cJSON_GetArraySize(sigs) == 0)
		return M2M_CFG_ERROR(drv, sigs ? sigs : obj, "message \"%s\" needs 'signals', a "
		                     "non-empty array of signal tables", m->name);
	m->signals = calloc((size_t)cJSON_GetArraySize(sigs), sizeof(*m->signals));
	if (!m->signals)
		return -ENOMEM;
	cJSON_ArrayForEach(e, sigs) {
		if (!cJSON_IsObject(e))
			return M2M_CFG_ERROR(drv, e, "expected a signal table");
		r = parse_inline_signal(drv, e, m, &m->signals[m->n_signals]);
		m->n_signals++;
		if (r < 0)
			return r;
		for (size_t i = 0; i + 1 < m->n_signals; i++)
			if (strcmp(m->signals[i].name, m->signals[m->n_signals - 1].name) == 0)
				return M2M_CFG_ERROR(drv, key_item(drv, e, "name"), "a second signal "
				                     "named \"%s\" in message \"%s\"", m->signals[i].name,
				                     m->name);
	}
	return 0;
}

static int parse_inlines(struct can_driver *drv, const cJSON *config)
{
	const cJSON *msgs = drv->api->cfg_item(drv->host, config, "messages"), *e;
	int r;

	if (!msgs)
		return 0;
	if (!cJSON_IsArray(msgs))
		return M2M_CFG_ERROR(drv, msgs, "expected an array of message tables "
		                     "([[drivers.NAME.messages]])");
	drv->inl = calloc((size_t)cJSON_GetArraySize(msgs) + 1, sizeof(*drv->inl));
	if (!drv->inl)
		return -ENOMEM;
	cJSON_ArrayForEach(e, msgs) {
		struct can_message *m = &drv->inl[drv->n_inl].m;

		if (!cJSON_IsObject(e))
			return M2M_CFG_ERROR(drv, e, "expected a message table");
		drv->n_inl++;
		r = parse_inline(drv, e, m);
		if (r < 0)
			return r;
		for (size_t i = 0; i + 1 < drv->n_inl; i++)
			if (drv->inl[i].m.id == m->id && drv->inl[i].m.extended == m->extended)
				return M2M_CFG_ERROR(drv, key_item(drv, e, "id"), "message \"%s\" has the "
				                     "id of message \"%s\"", m->name, drv->inl[i].m.name);
	}
	return 0;
}

/* --- the catalog: every message the DBC files and the config define --- */

struct catalog {
	const struct can_message **msgs;
	size_t n;
};

static int build_catalog(struct can_driver *drv, struct catalog *cat)
{
	size_t n = drv->n_inl;

	for (size_t i = 0; i < drv->n_dbcs; i++)
		n += drv->dbcs[i]->n_messages;
	cat->msgs = calloc(n + 1, sizeof(*cat->msgs));
	if (!cat->msgs)
		return -ENOMEM;
	for (size_t i = 0; i < drv->n_inl; i++)
		cat->msgs[cat->n++] = &drv->inl[i].m;
	for (size_t i = 0; i < drv->n_dbcs; i++)
		for (size_t j = 0; j < drv->dbcs[i]->n_messages; j++) {
			const struct can_message *m = &drv->dbcs[i]->messages[j];
			const struct can_message *first = NULL;

			/* An id defined twice: the config's, or the first file's, wins. */
			for (size_t k = 0; k < cat->n && !first; k++)
				if (cat->msgs[k]->id == m->id && cat->msgs[k]->extended == m->extended)
					first = cat->msgs[k];
			if (first) {
				drv->api->log(drv->host, M2M_LOG_WARNING, "%s:%u: message \"%s\" has the "
				              "id of message \"%s\", defined before; it is skipped",
				              drv->dbc_names[i], m->line, m->name, first->name);
				continue;
			}
			cat->msgs[cat->n++] = m;
		}
	return 0;
}

/* Edit distance of A and B, for "did you mean"; capped for long names. */
static size_t distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), prev[128], cur[128];

	if (la >= 127 || lb >= 127)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
			size_t del = prev[j] + 1, ins = cur[j - 1] + 1;

			cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
		}
		memcpy(prev, cur, (lb + 1) * sizeof(*prev));
	}
	return prev[lb];
}

/* The catalog's "Message.Signal" closest to PATTERN, into BUF ("" when none is close). */
static const char *closest(const struct catalog *cat, const char *pattern, char *buf,
                           size_t size)
{
	size_t best = SIZE_MAX;
	char name[256];

	buf[0] = '\0';
	for (size_t i = 0; i < cat->n; i++)
		for (size_t j = 0; j < cat->msgs[i]->n_signals; j++) {
			const char *sig = cat->msgs[i]->signals[j].name;
			size_t d;

			snprintf(name, sizeof(name), "%s.%s", cat->msgs[i]->name, sig);
			d = strchr(pattern, '.') ? distance(pattern, name) : distance(pattern, sig);
			if (d < best) {
				best = d;
				snprintf(buf, size, "%s", name);
			}
		}
	if (best > 3 && best * 3 > strlen(pattern))
		buf[0] = '\0';
	return buf;
}

/* --- the selection --- */

/* What a [[signals]] table says, beside the pattern. */
struct sel_opts {
	const cJSON *obj;
	const char *device;
	const char *name;
	int64_t min_interval_us;
	bool on_change;
	bool text;
	int64_t stale_us;      /* -1: from GenMsgCycleTime */
	int64_t tx_cycle_us;
	int source;            /* J1939 source address, -1: none given */
	int destination;       /* where J1939 writes of a PDU1 message go, -1: none given */
};

static struct can_rx *rx_for(struct can_driver *drv, const struct can_message *m, uint32_t key,
                             const char *device, size_t *ret_dev)
{
	struct can_rx *rx;
	struct can_device *d;
	size_t di;

	for (size_t i = 0; i < drv->n_rx; i++)
		if (drv->rx[i].key == key)
			return &drv->rx[i];
	for (di = 0; di < drv->n_devices; di++)
		if (strcmp(drv->devices[di].name, device) == 0)
			break;
	if (di == drv->n_devices) {
		d = realloc(drv->devices, (drv->n_devices + 1) * sizeof(*d));
		if (!d)
			return NULL;
		drv->devices = d;
		d[di] = (struct can_device){ .name = m2m_strdup(device), .state = -1 };
		if (!d[di].name)
			return NULL;
		drv->n_devices++;
	}
	rx = realloc(drv->rx, (drv->n_rx + 1) * sizeof(*rx));
	if (!rx)
		return NULL;
	drv->rx = rx;
	rx = &drv->rx[drv->n_rx++];
	*rx = (struct can_rx){ .m = m, .key = key, .stale_us = -1, .j1939_da = J1939_NO_ADDR };
	/* The device index until the array stops moving (link_devices). */
	rx->dev = (struct can_device *)(uintptr_t)di;
	*ret_dev = di;
	drv->devices[di].n_msgs++;
	return rx;
}

/*
 * The point's table as the host reads it: a new object, since the
 * attributes come from the DBC and the selection's table may stand for many
 * signals. It carries no position; errors about the user's keys are found
 * before, on the user's table.
 */
static cJSON *point_object(const struct sel_opts *o, const struct can_signal *s,
                           const char *name, bool text)
{
	static const char *const copied[] = { "writable", "deadband", "deadband_percent", "kind",
		                              "description", "unit", "min", "max", NULL };
	cJSON *p = cJSON_CreateObject();
	bool ok = p && cJSON_AddStringToObject(p, "name", name);

	if (text) {
		ok = ok && cJSON_AddStringToObject(p, "kind", "string");
		return ok ? p : (cJSON_Delete(p), NULL);
	}
	ok = ok && cJSON_AddNumberToObject(p, "scale", s->factor) &&
	     cJSON_AddNumberToObject(p, "offset", s->offset);
	if (s->unit && *s->unit)
		ok = ok && cJSON_AddStringToObject(p, "unit", s->unit);
	if (s->comment)
		ok = ok && cJSON_AddStringToObject(p, "description", s->comment);
	/* DBC files write [0|0] for "no limits". */
	if (s->min < s->max) {
		ok = ok && cJSON_AddNumberToObject(p, "min", s->min) &&
		     cJSON_AddNumberToObject(p, "max", s->max);
	}
	for (size_t i = 0; ok && copied[i]; i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(o->obj, copied[i]);

		if (!v)
			continue;
		cJSON_DeleteItemFromObjectCaseSensitive(p, copied[i]);
		ok = cJSON_AddItemToObject(p, copied[i], cJSON_Duplicate(v, true));
	}
	return ok ? p : (cJSON_Delete(p), NULL);
}

static int declare(struct can_driver *drv, const char *device, cJSON *obj, uint32_t *ret)
{
	int r;

	if (!obj)
		return -ENOMEM;
	r = drv->api->declare_point(drv->host, device, obj, ret);
	cJSON_Delete(obj);
	return r;
}

/*
 * Where writes of J1939 message M go: a PDU1 message (PF < 240) to the
 * selection's destination, a PDU2 one to all. Sent once, by the kernel's
 * J1939 stack: no tx_cycle.
 */
static int j1939_destination(struct can_driver *drv, const struct sel_opts *o,
                             const struct can_message *m, bool writable, struct can_rx *rx)
{
	bool pdu1 = can_j1939_destination(m->id) != J1939_NO_ADDR;

	if (o->tx_cycle_us)
		return M2M_CFG_ERROR(drv, key_item(drv, o->obj, "tx_cycle"), "J1939 message \"%s\" "
		                     "is sent once per write; 'tx_cycle' is for other messages", m->name);
	if (o->destination >= 0 && !pdu1)
		return M2M_CFG_ERROR(drv, key_item(drv, o->obj, "destination"), "message \"%s\" is "
		                     "PDU2 (PF >= 240): it is sent to all, without a destination",
		                     m->name);
	if (!writable || !pdu1)
		return 0;
	if (o->destination < 0)
		return M2M_CFG_ERROR(drv, key_item(drv, o->obj, "writable"), "message \"%s\" is PDU1: "
		                     "a writable selection needs 'destination', the address (0..253) "
		                     "its writes go to", m->name);
	if (rx->j1939_da != J1939_NO_ADDR && rx->j1939_da != o->destination)
		return M2M_CFG_ERROR(drv, key_item(drv, o->obj, "destination"), "message \"%s\" has "
		                     "another destination in an earlier selection", m->name);
	rx->j1939_da = (uint8_t)o->destination;
	return 0;
}

static int add_signal(struct can_driver *drv, const struct sel_opts *o,
                      const struct can_message *m, size_t index)
{
	const struct can_signal *s = &m->signals[index];
	const char *device = o->device ? o->device : m->name;
	const char *name = o->name ? o->name : s->name;
	uint32_t key = m->id | (m->extended ? CAN_EFF_FLAG : 0);
	struct can_sel *sels, *sel;
	struct can_rx *rx;
	char text_name[256], sa_device[8];
	size_t di;
	int r;

	if (m->j1939) {
		if (o->source < 0)
			return M2M_CFG_ERROR(drv, o->obj, "message \"%s\" is J1939: the selection needs "
			                     "'source', the source address (0..253) of its device",
			                     m->name);
		/* One device per source address; the message is matched by its PGN. */
		snprintf(sa_device, sizeof(sa_device), "sa%02x", (unsigned)(o->source & 0xff));
		if (!o->device)
			device = sa_device;
		key = can_j1939_key(can_j1939_pgn(m->id), (uint8_t)o->source);
		drv->n_j1939++;
	} else if (o->source >= 0 || o->destination >= 0) {
		const char *k = o->source >= 0 ? "source" : "destination";

		return M2M_CFG_ERROR(drv, key_item(drv, o->obj, k), "'%s' is for J1939 "
		                     "messages, and \"%s\" is not one", k, m->name);
	}
	rx = rx_for(drv, m, key, device, &di);
	if (!rx)
		return -ENOMEM;
	if (strcmp(drv->devices[(uintptr_t)rx->dev].name, device) != 0)
		return M2M_CFG_ERROR(drv, o->obj, "message \"%s\" is already device \"%s\"; one "
		                     "message belongs to one device", m->name,
		                     drv->devices[(uintptr_t)rx->dev].name);
	for (size_t i = 0; i < rx->n_sels; i++)
		if (rx->sels[i].index == index)
			return M2M_CFG_ERROR(drv, o->obj, "signal \"%s.%s\" is selected twice", m->name,
			                     s->name);
	if (o->stale_us >= 0) {
		if (rx->stale_us >= 0 && rx->stale_us != o->stale_us)
			return M2M_CFG_ERROR(drv, key_item(drv, o->obj, "stale_timeout"),
			                     "message \"%s\" has another stale_timeout in an earlier "
			                     "selection", m->name);
		rx->stale_us = o->stale_us;
	}
	if (o->tx_cycle_us)
		rx->tx_cycle_us = o->tx_cycle_us;
	sels = realloc(rx->sels, (rx->n_sels + 1) * sizeof(*sels));
	if (!sels)
		return -ENOMEM;
	rx->sels = sels;
	sel = &sels[rx->n_sels++];
	*sel = (struct can_sel){
		.index = index,
		.text_point = UINT32_MAX,
		.min_interval_us = o->min_interval_us,
		.on_change = o->on_change,
	};
	r = m2m_cfg_flag(drv->api, drv->host, o->obj, "writable", false, &sel->writable);
	if (r < 0)
		return r;
	if (sel->writable && s->is_multiplexer)
		return M2M_CFG_ERROR(drv, key_item(drv, o->obj, "writable"), "signal \"%s.%s\" is a "
		                     "multiplexer: write the signals it selects", m->name, s->name);
	if (m->j1939) {
		r = j1939_destination(drv, o, m, sel->writable, rx);
		if (r < 0)
			return r;
	}
	r = declare(drv, device, point_object(o, s, name, false), &sel->point);
	if (r < 0)
		return r;
	if (o->text) {
		snprintf(text_name, sizeof(text_name), "%s.text", name);
		r = declare(drv, device, point_object(o, s, text_name, true), &sel->text_point);
	}
	return r;
}

static bool matches(const char *pattern, const struct can_message *m, const char *sig)
{
	const char *dot = strchr(pattern, '.');
	char mpat[256];

	if (!dot)
		return fnmatch(pattern, sig, 0) == 0;
	snprintf(mpat, sizeof(mpat), "%.*s", (int)(dot - pattern), pattern);
	return fnmatch(mpat, m->name, 0) == 0 && fnmatch(dot + 1, sig, 0) == 0;
}

static int parse_sel_opts(struct can_driver *drv, const cJSON *obj, struct sel_opts *o)
{
	const struct m2m_host_api *api = drv->api;
	m2m_host *host = drv->host;
	int r;

	*o = (struct sel_opts){ .obj = obj, .stale_us = -1 };
	r = m2m_cfg_int_range(api, host, obj, "source", -1, 0, J1939_MAX_UNICAST_ADDR, &o->source);
	if (r == 0)
		r = m2m_cfg_int_range(api, host, obj, "destination", -1, 0, J1939_MAX_UNICAST_ADDR,
		                      &o->destination);
	if (r == 0)
		r = api->cfg_string(host, obj, "device", NULL, &o->device);
	if (r >= 0)
		r = api->cfg_string(host, obj, "name", NULL, &o->name);
	if (r >= 0)
		r = m2m_cfg_duration_range(api, host, obj, "min_interval", 0, 0, 3600 * M2M_US_PER_S,
		                           &o->min_interval_us);
	if (r == 0)
		r = m2m_cfg_flag(api, host, obj, "on_change", false, &o->on_change);
	if (r == 0)
		r = m2m_cfg_flag(api, host, obj, "text", false, &o->text);
	if (r == 0 && api->cfg_item(host, obj, "stale_timeout"))
		r = m2m_cfg_duration_range(api, host, obj, "stale_timeout", 0, 0,
		                           24 * 3600 * M2M_US_PER_S, &o->stale_us);
	if (r == 0)
		r = m2m_cfg_duration_range(api, host, obj, "tx_cycle", 0, 0, 3600 * M2M_US_PER_S,
		                           &o->tx_cycle_us);
	if (r < 0)
		return r;
	if (o->device && (!*o->device || strchr(o->device, '/')))
		return M2M_CFG_ERROR(drv, key_item(drv, obj, "device"),
		                     "expected a device name without '/'");
	/* The host reads these from the point tables made for it; they are checked here. */
	api->cfg_item(host, obj, "unit");
	api->cfg_item(host, obj, "description");
	api->cfg_item(host, obj, "kind");
	for (const char *const *k = (const char *const[]){ "deadband", "deadband_percent", "min",
	                                                   "max", NULL }; *k; k++) {
		double v;

		r = api->cfg_double(host, obj, *k, 0, &v);
		if (r < 0)
			return r;
	}
	return 0;
}

static int parse_selection(struct can_driver *drv, const cJSON *obj, const struct catalog *cat)
{
	const char *pattern = NULL;
	size_t n = 0;
	struct sel_opts o;
	char near[256];
	int r;

	r = drv->api->cfg_string(drv->host, obj, "select", NULL, &pattern);
	if (r < 0)
		return r;
	if (!pattern || !*pattern)
		return M2M_CFG_ERROR(drv, obj, "missing key 'select' (\"Message.Signal\", with globs: "
		                     "\"Engine.*\", \"*Temp*\")");
	r = parse_sel_opts(drv, obj, &o);
	if (r < 0)
		return r;
	for (size_t i = 0; i < cat->n; i++) {
		const struct can_message *m = cat->msgs[i];

		for (size_t j = 0; j < m->n_signals; j++) {
			bool text_ok;

			if (!matches(pattern, m, m->signals[j].name))
				continue;
			/* A glob takes what it can: a table-less signal just gets no text point. */
			text_ok = m->signals[j].n_values > 0;
			if (o.text && !text_ok && !strpbrk(pattern, "*?["))
				return M2M_CFG_ERROR(drv, key_item(drv, obj, "text"), "signal \"%s.%s\" "
				                     "has no value descriptions (VAL_) for a text point",
				                     m->name, m->signals[j].name);
			if (++n > 1 && o.name)
				return M2M_CFG_ERROR(drv, key_item(drv, obj, "name"), "'name' needs a "
				                     "selection of one signal, and \"%s\" matches more",
				                     pattern);
			bool text = o.text;

			o.text = text && text_ok;
			r = add_signal(drv, &o, m, j);
			o.text = text;
			if (r < 0)
				return r;
		}
	}
	if (n == 0) {
		closest(cat, pattern, near, sizeof(near));
		return M2M_CFG_ERROR(drv, key_item(drv, obj, "select"), "no signal matches \"%s\"%s%s%s",
		                     pattern, near[0] ? " (did you mean \"" : "", near,
		                     near[0] ? "\"?)" : "");
	}
	return 0;
}

static int rx_cmp(const void *a, const void *b)
{
	const struct can_rx *x = a, *y = b;

	return x->key < y->key ? -1 : x->key > y->key;
}

struct can_rx *can_rx_find(struct can_driver *drv, uint32_t key)
{
	struct can_rx k = { .key = key };

	return bsearch(&k, drv->rx, drv->n_rx, sizeof(*drv->rx), rx_cmp);
}

/* Sorts the messages, points them at their devices, sets their defaults. */
static int finish(struct can_driver *drv)
{
	qsort(drv->rx, drv->n_rx, sizeof(*drv->rx), rx_cmp);
	for (size_t i = 0; i < drv->n_rx; i++) {
		struct can_rx *rx = &drv->rx[i];
		const struct can_message *m = rx->m;

		rx->dev = &drv->devices[(uintptr_t)rx->dev];
		/* Three cycles without the message: one lost frame is not silence. */
		if (rx->stale_us < 0)
			rx->stale_us = m->cycle_time_ms > 0 ? 3 * m->cycle_time_ms * M2M_US_PER_MS : 0;
		if (rx->stale_us && (!drv->min_stale_us || rx->stale_us < drv->min_stale_us))
			drv->min_stale_us = rx->stale_us;
		if (rx->n_sels > drv->max_sels)
			drv->max_sels = rx->n_sels;
		for (size_t j = 0; j < m->n_signals; j++)
			if (m->signals[j].has_start_value) {
				uint64_t raw = (uint64_t)(int64_t)m->signals[j].start_value;

				can_signal_put_raw(&m->signals[j], raw, rx->data, m->size);
			}
	}
	drv->readings = calloc(drv->max_sels + 1, sizeof(*drv->readings));
	/* A receive batch's readings go to the host in one call. */
	drv->cap_pending = (drv->max_sels ? drv->max_sels : 1) * CAN_RX_BATCH;
	drv->pending = calloc(drv->cap_pending, sizeof(*drv->pending));
	return drv->readings && drv->pending ? 0 : -ENOMEM;
}

static int parse_top(struct can_driver *drv, const cJSON *config)
{
	const struct m2m_host_api *api = drv->api;
	m2m_host *host = drv->host;
	const char *bus_device = NULL;
	int r;

	r = m2m_cfg_strdup(api, host, config, "interface", "the CAN interface, e.g. can0",
	                   &drv->ifname);
	if (r < 0)
		return r;
	if (strlen(drv->ifname) >= 16 || strchr(drv->ifname, '/'))
		return M2M_CFG_ERROR(drv, key_item(drv, config, "interface"),
		                     "expected an interface name of at most 15 characters, not \"%s\"",
		                     drv->ifname);
	r = api->cfg_string(host, config, "bus_device", drv->ifname, &bus_device);
	if (r < 0)
		return r;
	drv->bus_device = m2m_strdup(bus_device);
	if (!drv->bus_device)
		return -ENOMEM;
	r = m2m_cfg_flag(api, host, config, "fd", true, &drv->fd);
	if (r == 0)
		r = m2m_cfg_duration_range(api, host, config, "rebind_max", 10 * M2M_US_PER_S,
		                           100 * M2M_US_PER_MS, 3600 * M2M_US_PER_S,
		                           &drv->rebind_max_us);
	if (r == 0)
		r = m2m_cfg_int_range(api, host, config, "receive_buffer", 1 << 20, 0, 64 << 20,
		                      &drv->rcvbuf);
	if (r == 0)
		r = m2m_cfg_duration_range(api, host, config, "write_timeout", M2M_US_PER_S,
		                           10 * M2M_US_PER_MS, 60 * M2M_US_PER_S,
		                           &drv->write_timeout_us);
	return r;
}

/* --- J1939 as a sender: [drivers.NAME.j1939] --- */

/* The NAME's fields (SAE J1939-81), from bit 0 up; bit 48 is reserved. */
static const struct {
	const char *key;
	unsigned shift, bits;
} name_fields[] = {
	{ "identity", 0, 21 },
	{ "manufacturer", 21, 11 },
	{ "ecu_instance", 32, 3 },
	{ "function_instance", 35, 5 },
	{ "function", 40, 8 },
	{ "vehicle_system", 49, 7 },
	{ "vehicle_system_instance", 56, 4 },
	{ "industry_group", 60, 3 },
	{ "arbitrary_address", 63, 1 },
};

static int parse_name(struct can_driver *drv, const cJSON *j, const cJSON *item, uint64_t *ret)
{
	const struct m2m_host_api *api = drv->api;
	uint64_t name = 0;
	int64_t v;
	int r;

	if (cJSON_IsNumber(item)) {
		/* The host's integer, not cJSON's double: a NAME has more than 53 bits. */
		r = api->cfg_int(drv->host, j, "name", 0, 1, INT64_MAX, &v);
		if (r < 0)
			return r;
		*ret = (uint64_t)v;
		return 0;
	}
	if (cJSON_IsString(item)) {
		const char *t = item->valuestring;
		char *end;
		unsigned long long u;

		errno = 0;
		u = strtoull(t, &end, 0);
		if (errno || end == t || *end || *t == '-' || u == 0)
			return M2M_CFG_ERROR(drv, item, "expected a 64-bit J1939 NAME other than 0 "
			                     "(\"0xa00c810c05a0e2d4\"), not \"%s\"", t);
		*ret = u;
		return 0;
	}
	if (!cJSON_IsObject(item))
		return M2M_CFG_ERROR(drv, item, "expected the J1939 NAME: a number, a string "
		                     "(\"0x...\", for all 64 bits) or a table of its fields");
	for (size_t i = 0; i < sizeof(name_fields) / sizeof(name_fields[0]); i++) {
		int64_t max = (INT64_C(1) << name_fields[i].bits) - 1;

		if (name_fields[i].bits == 1) {
			bool b;

			r = m2m_cfg_flag(api, drv->host, item, name_fields[i].key, false, &b);
			v = b;
		} else {
			r = api->cfg_int(drv->host, item, name_fields[i].key, 0, 0, max, &v);
		}
		if (r < 0)
			return r;
		name |= (uint64_t)v << name_fields[i].shift;
	}
	if (name == 0)
		return M2M_CFG_ERROR(drv, item, "a J1939 NAME of 0 is no NAME: give its fields");
	*ret = name;
	return 0;
}

static int parse_range(struct can_driver *drv, const cJSON *item)
{
	struct can_j1939 *j = &drv->j1939;
	int v[2];

	if (!cJSON_IsArray(item) || cJSON_GetArraySize(item) != 2)
		return M2M_CFG_ERROR(drv, item, "expected the first and last address to try, "
		                     "[0x80, 0x87]");
	for (int i = 0; i < 2; i++) {
		const cJSON *e = cJSON_GetArrayItem(item, i);

		if (!cJSON_IsNumber(e) || e->valuedouble != (double)(int)e->valuedouble ||
		    e->valuedouble < 0 || e->valuedouble > J1939_MAX_UNICAST_ADDR)
			return M2M_CFG_ERROR(drv, e, "expected a J1939 address from 0 to 253");
		v[i] = (int)e->valuedouble;
	}
	if (v[0] > v[1])
		return M2M_CFG_ERROR(drv, item, "the range is inverted: its first address (%d) is "
		                     "above its last (%d)", v[0], v[1]);
	j->lo = (uint8_t)v[0];
	j->hi = (uint8_t)v[1];
	j->have_range = true;
	return 0;
}

static int parse_j1939(struct can_driver *drv, const cJSON *config)
{
	const struct m2m_host_api *api = drv->api;
	struct can_j1939 *j = &drv->j1939;
	const cJSON *t = api->cfg_item(drv->host, config, "j1939"), *name, *range;
	int r;

	if (!t)
		return 0;
	if (!cJSON_IsObject(t))
		return M2M_CFG_ERROR(drv, t, "expected a table: [drivers.NAME.j1939] with 'address', "
		                     "'name', 'address_range'");
	r = m2m_cfg_int_range(api, drv->host, t, "address", -1, 0, J1939_MAX_UNICAST_ADDR,
	                      &j->address);
	if (r < 0)
		return r;
	name = api->cfg_item(drv->host, t, "name");
	range = api->cfg_item(drv->host, t, "address_range");
	if (name) {
		r = parse_name(drv, t, name, &j->name);
		if (r < 0)
			return r;
		j->claim = true;
	}
	if (range) {
		if (!name)
			return M2M_CFG_ERROR(drv, range, "'address_range' is for address claiming: "
			                     "give the NAME ('name') too");
		r = parse_range(drv, range);
		if (r < 0)
			return r;
	}
	if (name && j->address < 0 && !j->have_range)
		return M2M_CFG_ERROR(drv, name, "address claiming needs 'address' (the preferred one) "
		                     "or 'address_range'");
	return 0;
}

static int declare_j1939_points(struct can_driver *drv)
{
	struct can_j1939 *j = &drv->j1939;
	static const char *const names[] = { "j1939_address", "j1939_claim" };
	uint32_t *points[] = { &j->addr_point, &j->claim_point };
	int r = 0;

	if (!can_j1939_sends(drv))
		return 0;
	for (size_t i = 0; i < (j->claim ? 2u : 1u) && r == 0; i++) {
		cJSON *p = cJSON_CreateObject();

		if (p && !cJSON_AddStringToObject(p, "name", names[i])) {
			cJSON_Delete(p);
			p = NULL;
		}
		r = declare(drv, drv->bus_device, p, points[i]);
	}
	return r;
}

static int parse_selections(struct can_driver *drv, const cJSON *config)
{
	const cJSON *sigs = drv->api->cfg_item(drv->host, config, "signals"), *e;
	struct catalog cat = { 0 };
	int r;

	if (!sigs || !cJSON_IsArray(sigs) || cJSON_GetArraySize(sigs) == 0)
		return M2M_CFG_ERROR(drv, sigs ? sigs : config, "expected 'signals', a non-empty array "
		                     "of selections ([[drivers.NAME.signals]] select = \"Msg.Signal\")");
	r = build_catalog(drv, &cat);
	if (r < 0)
		return r;
	cJSON_ArrayForEach(e, sigs) {
		if (!cJSON_IsObject(e)) {
			r = M2M_CFG_ERROR(drv, e, "expected a selection table");
			break;
		}
		r = parse_selection(drv, e, &cat);
		if (r < 0)
			break;
	}
	free(cat.msgs);
	return r;
}

int can_create(m2m_host *host, const struct m2m_host_api *api, const struct cJSON *config,
               void **ret_driver)
{
	struct can_driver *drv;
	cJSON *bus;
	int r;

	if (!api || !M2M_HAS_FIELD(struct m2m_host_api, api->struct_size, write_done))
		return -EPROTO;
	drv = calloc(1, sizeof(*drv));
	if (!drv)
		return -ENOMEM;
	drv->host = host;
	drv->api = api;
	drv->fd_raw = drv->fd_bcm = drv->fd_j1939 = -1;
	drv->bus_state_point = UINT32_MAX;
	drv->j1939 = (struct can_j1939){
		.address = -1, .fd = -1, .cur = J1939_IDLE_ADDR,
		.addr_point = UINT32_MAX, .claim_point = UINT32_MAX,
	};

	r = parse_top(drv, config);
	if (r == 0)
		r = parse_j1939(drv, config);
	if (r == 0)
		r = parse_dbcs(drv, config);
	if (r == 0)
		r = parse_inlines(drv, config);
	if (r == 0)
		r = parse_selections(drv, config);
	if (r == 0)
		r = finish(drv);
	if (r < 0)
		goto fail;
	bus = cJSON_CreateObject();
	if (!bus || !cJSON_AddStringToObject(bus, "name", "bus_state")) {
		cJSON_Delete(bus);
		r = -ENOMEM;
		goto fail;
	}
	r = declare(drv, drv->bus_device, bus, &drv->bus_state_point);
	if (r == 0)
		r = declare_j1939_points(drv);
	if (r < 0)
		goto fail;
	*ret_driver = drv;
	return 0;

fail:
	can_free(drv);
	return r < 0 ? r : -EINVAL;
}
