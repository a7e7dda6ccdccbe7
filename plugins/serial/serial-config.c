/* SPDX-License-Identifier: MIT */
/*
 * serial-config.c - the serial driver's create(): the port and its line
 * settings, the framing, the format of the frames, the requests that poll
 * the device, and the points with their addresses in the frames.
 *
 * Only during create, on the loop thread. Every key is read through the
 * host's getters (or the kit's), so that a key the driver never asked for
 * is reported as unknown; keys that do not apply to the chosen format (a
 * 'separator' of an NMEA port) stay unread on purpose, and are refused.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "serial-driver.h"

static const char *const format_names[] = { "nmea", "regex", "delimited", "fixed", NULL };
static const char *const parity_names[] = { "none", "even", "odd", NULL };
static const char *const flow_names[] = { "none", "rtscts", "xonxoff", NULL };
static const char *const kind_names[] = { "number", "bool", "string", NULL };
static const char *const timestamp_names[] = { "receive", "sentence", NULL };

static const cJSON *key_item(struct ser_driver *drv, const cJSON *obj, const char *key)
{
	return m2m_cfg_key_item(drv->api, drv->host, obj, key);
}

static bool baud_supported(int64_t baud)
{
	static const int rates[] = { 50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400,
		                     4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800,
		                     500000, 576000, 921600, 1000000, 1152000, 1500000,
		                     2000000, 2500000, 3000000, 3500000, 4000000 };

	for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++)
		if (rates[i] == baud)
			return true;
	return false;
}

/* An optional string key with escapes decoded into out; *ret_len -1 when absent. */
static int cfg_bytes(struct ser_driver *drv, const cJSON *obj, const char *key, uint8_t *out,
                     size_t size, int *ret_len)
{
	const char *s = NULL;
	char err[128];
	int r = drv->api->cfg_string(drv->host, obj, key, NULL, &s);

	*ret_len = -1;
	if (r <= 0)
		return r;
	r = ser_unescape(s, out, size, err, sizeof(err));
	if (r == -E2BIG)
		return M2M_CFG_ERROR(drv, key_item(drv, obj, key), "at most %zu bytes", size);
	if (r < 0)
		return M2M_CFG_ERROR(drv, key_item(drv, obj, key), "%s", err);
	*ret_len = r;
	return 0;
}

/* A one-byte key (escapes decoded); "" gives 0 when ALLOW_EMPTY. */
static int cfg_byte(struct ser_driver *drv, const cJSON *obj, const char *key, char def,
                    bool allow_empty, char *ret)
{
	const char *s = NULL;
	uint8_t b[2];
	int r = drv->api->cfg_string(drv->host, obj, key, NULL, &s);

	if (r <= 0) {
		*ret = def;
		return r;
	}
	r = ser_unescape(s, b, sizeof(b), NULL, 0);
	if (r == 1 || (r == 0 && allow_empty)) {
		*ret = r ? (char)b[0] : 0;
		return 0;
	}
	return M2M_CFG_ERROR(drv, key_item(drv, obj, key), "expected one byte (\",\", \";\", "
	                     "\"\\t\", \" \")%s", allow_empty ? ", or \"\" for none" : "");
}

/* The pattern of TEXT, compiled once however many keys name it. */
static int pattern_get(struct ser_driver *drv, const cJSON *item, const char *text,
                       struct ser_pattern **ret)
{
	struct ser_pattern *pat;
	char err[160];
	int r;

	for (size_t i = 0; i < drv->n_patterns; i++)
		if (strcmp(drv->patterns[i].text, text) == 0) {
			*ret = &drv->patterns[i];
			return 0;
		}
	pat = &drv->patterns[drv->n_patterns];
	r = st_regex_compile(text, drv->match_limit, 0, &pat->re, err, sizeof(err));
	if (r == -EINVAL)
		return M2M_CFG_ERROR(drv, item, "bad regular expression: %s", err);
	if (r < 0)
		return r;
	drv->n_patterns++;
	pat->n_groups = st_regex_groups(pat->re);
	pat->text = m2m_strdup(text);
	pat->groups = calloc(pat->n_groups + 1, sizeof(*pat->groups));
	if (!pat->text || !pat->groups)
		return -ENOMEM;
	*ret = pat;
	return 0;
}

/* An optional regex key: *ret NULL when absent. */
static int cfg_pattern(struct ser_driver *drv, const cJSON *obj, const char *key,
                       struct ser_pattern **ret)
{
	const char *s = NULL;
	int r = drv->api->cfg_string(drv->host, obj, key, NULL, &s);

	*ret = NULL;
	if (r <= 0)
		return r;
	if (!*s)
		return M2M_CFG_ERROR(drv, key_item(drv, obj, key), "an empty pattern matches everything: "
		                     "leave '%s' out instead", key);
	return pattern_get(drv, key_item(drv, obj, key), s, ret);
}

static int parse_line(struct ser_driver *drv, const cJSON *config)
{
	const struct m2m_host_api *api = drv->api;
	m2m_host *host = drv->host;
	int64_t baud;
	int r;

	r = m2m_cfg_strdup(api, host, config, "port", "the serial device, e.g. /dev/serial/by-id/...",
	                   &drv->port);
	if (r < 0)
		return r;
	if (drv->port[0] != '/')
		return M2M_CFG_ERROR(drv, key_item(drv, config, "port"),
		                     "'port' must be an absolute path, not \"%s\"", drv->port);
	r = api->cfg_int(host, config, "baud", 9600, 1, 4000000, &baud);
	if (r < 0)
		return r;
	if (!baud_supported(baud))
		return M2M_CFG_ERROR(drv, key_item(drv, config, "baud"),
		                     "%" PRId64 " is not a rate the tty layer knows (1200, 2400, 4800, "
		                     "9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600, ... "
		                     "4000000)", baud);
	drv->baud = (int)baud;
	r = m2m_cfg_int_range(api, host, config, "data_bits", 8, 5, 8, &drv->data_bits);
	if (r == 0)
		r = api->cfg_enum(host, config, "parity", parity_names, SER_PARITY_NONE, &drv->parity);
	if (r >= 0)
		r = m2m_cfg_int_range(api, host, config, "stop_bits", 1, 1, 2, &drv->stop_bits);
	if (r == 0)
		r = api->cfg_enum(host, config, "flow_control", flow_names, SER_FLOW_NONE, &drv->flow);
	if (r >= 0)
		r = m2m_cfg_flag(api, host, config, "exclusive", true, &drv->exclusive);
	if (r == 0)
		r = m2m_cfg_flag(api, host, config, "rs485", false, &drv->rs485);
	if (r == 0 && drv->rs485) {
		r = m2m_cfg_flag(api, host, config, "rs485_rts_on_send", true, &drv->rs485_rts_on_send);
		if (r == 0)
			r = m2m_cfg_duration_range(api, host, config, "rs485_delay_before", 0, 0,
			                           100 * US_PER_MS, &drv->rs485_delay_before_us);
		if (r == 0)
			r = m2m_cfg_duration_range(api, host, config, "rs485_delay_after", 0, 0,
			                           100 * US_PER_MS, &drv->rs485_delay_after_us);
	}
	if (r == 0 && drv->rs485 && drv->flow == SER_FLOW_RTSCTS)
		return M2M_CFG_ERROR(drv, key_item(drv, config, "flow_control"),
		                     "RS-485 drives RTS itself: flow_control = \"rtscts\" cannot be used "
		                     "with rs485 = true");
	if (r == 0)
		r = m2m_cfg_duration_range(api, host, config, "backoff_max", 30 * US_PER_S,
		                           100 * US_PER_MS, 3600 * US_PER_S, &drv->backoff_max_us);
	if (r == 0)
		r = m2m_cfg_duration_range(api, host, config, "stale", 0, 0, 24 * 3600 * US_PER_S,
		                           &drv->stale_us);
	if (r == 0)
		r = m2m_cfg_duration_range(api, host, config, "inter_request_delay", 0, 0,
		                           10 * US_PER_S, &drv->delay_us);
	/* Before any pattern is compiled: every one takes it. */
	if (r == 0)
		r = m2m_cfg_uint(api, host, config, "match_limit", SER_MATCH_LIMIT, 100, 10000000,
		                 &drv->match_limit);
	if (r == 0 && drv->stale_us && drv->stale_us < 10 * US_PER_MS)
		return M2M_CFG_ERROR(drv, key_item(drv, config, "stale"),
		                     "expected 0 (off) or at least 10ms");
	return r;
}

static int parse_framing(struct ser_driver *drv, const cJSON *config)
{
	const struct m2m_host_api *api = drv->api;
	m2m_host *host = drv->host;
	struct sf_config *c = &drv->fcfg;
	char err[160];
	int mode = SF_END, len, r;
	int64_t v;

	r = api->cfg_enum(host, config, "framing", sf_mode_names, SF_END, &mode);
	if (r < 0)
		return r;
	c->mode = (enum sf_mode)mode;
	if (c->mode == SF_END || c->mode == SF_START_END) {
		r = cfg_bytes(drv, config, "end", c->end, SF_DELIM_MAX, &len);
		if (r < 0)
			return r;
		if (len == 0)
			return M2M_CFG_ERROR(drv, key_item(drv, config, "end"), "an empty end delimiter");
		if (len < 0) {
			/* Lines: "\r\n" and "\r\r\n" leave '\r's that every format ignores. */
			c->end[0] = '\n';
			len = 1;
		}
		c->end_len = (size_t)len;
	}
	if (c->mode == SF_START_END || c->mode == SF_FIXED) {
		r = cfg_bytes(drv, config, "start", c->start, SF_DELIM_MAX, &len);
		if (r < 0)
			return r;
		if (len == 0 || (len < 0 && c->mode == SF_START_END))
			return M2M_CFG_ERROR(drv, key_item(drv, config, "start"),
			                     "%s framing needs 'start', a delimiter of 1 to %d bytes",
			                     sf_mode_names[c->mode], SF_DELIM_MAX);
		c->start_len = len > 0 ? (size_t)len : 0;
	}
	r = api->cfg_int(host, config, "max_length", drv->format == SER_NMEA ? 128 : -1, 1,
	                 SF_FRAME_MAX, &v);
	if (r < 0)
		return r;
	if (v < 0)
		return M2M_CFG_ERROR(drv, config, "missing key 'max_length' (the longest frame in bytes, "
		                     "1..%d): a frame without a bound could fill memory", SF_FRAME_MAX);
	c->max_len = (size_t)v;
	if (c->mode == SF_FIXED) {
		r = api->cfg_int(host, config, "length", 0, 1, SF_FRAME_MAX, &v);
		if (r < 0)
			return r;
		if (r == 0)
			return M2M_CFG_ERROR(drv, config, "fixed framing needs 'length', the frame's size "
			                     "in bytes");
		c->fixed_len = (size_t)v;
	}
	r = m2m_cfg_duration_range(api, host, config, "idle", 0, 0, 60 * US_PER_S, &v);
	if (r < 0)
		return r;
	if (c->mode == SF_IDLE && v < 100)
		return M2M_CFG_ERROR(drv, key_item(drv, config, "idle"),
		                     "idle framing needs 'idle', the pause that ends a frame "
		                     "(e.g. \"20ms\", at least 100us)");
	c->idle_us = (uint64_t)v;
	r = sf_init(&drv->framer, c, err, sizeof(err));
	if (r == -EINVAL)
		return M2M_CFG_ERROR(drv, config, "framing: %s", err);
	return r;
}

static int parse_format(struct ser_driver *drv, const cJSON *config,
                        struct ser_pattern **ret_default)
{
	const struct m2m_host_api *api = drv->api;
	m2m_host *host = drv->host;
	const char *s;
	int r, v;

	*ret_default = NULL;
	r = api->cfg_enum(host, config, "format", format_names, -1, &drv->format);
	if (r < 0)
		return r;
	if (r == 0)
		return M2M_CFG_ERROR(drv, config, "missing key 'format' (nmea, regex, delimited or "
		                     "fixed)");
	if (drv->format == SER_NMEA) {
		r = api->cfg_enum(host, config, "checksum", nmea_checksum_names,
		                  NMEA_CHECKSUM_REQUIRED, &drv->checksum);
		if (r >= 0)
			r = api->cfg_enum(host, config, "timestamp", timestamp_names, 0, &v);
		if (r < 0)
			return r;
		drv->sentence_time = v == 1;
		return 0;
	}
	r = api->cfg_string(host, config, "decimal", ".", &s);
	if (r < 0)
		return r;
	if (strcmp(s, ".") != 0 && strcmp(s, ",") != 0)
		return M2M_CFG_ERROR(drv, key_item(drv, config, "decimal"),
		                     "expected \".\" or \",\", the decimal separator");
	drv->decimal = s[0];
	if (drv->format == SER_REGEX)
		return cfg_pattern(drv, config, "pattern", ret_default);
	if (drv->format == SER_DELIMITED) {
		r = cfg_byte(drv, config, "separator", ',', false, &drv->delim.separator);
		if (r == 0)
			r = cfg_byte(drv, config, "quote", '"', true, &drv->delim.quote);
		if (r < 0)
			return r;
		if (drv->delim.quote && drv->delim.quote == drv->delim.separator)
			return M2M_CFG_ERROR(drv, key_item(drv, config, "quote"),
			                     "the quote cannot be the separator");
		return m2m_cfg_flag(api, host, config, "trim", true, &drv->delim.trim);
	}
	return 0;
}

static struct ser_request *find_request(struct ser_driver *drv, const char *name)
{
	for (size_t i = 0; i < drv->n_requests; i++)
		if (strcmp(drv->requests[i].name, name) == 0)
			return &drv->requests[i];
	return NULL;
}

static int parse_request(struct ser_driver *drv, const cJSON *obj, struct ser_request *rq)
{
	const struct m2m_host_api *api = drv->api;
	m2m_host *host = drv->host;
	const char *dev = NULL;
	int len, r;

	rq->drv = drv;
	r = m2m_cfg_strdup(api, host, obj, "name", "the request's name, which points refer to",
	                   &rq->name);
	if (r < 0)
		return r;
	for (size_t i = 0; &drv->requests[i] != rq; i++)
		if (strcmp(drv->requests[i].name, rq->name) == 0)
			return M2M_CFG_ERROR(drv, key_item(drv, obj, "name"),
			                     "a second request named \"%s\"", rq->name);
	r = api->cfg_string(host, obj, "device", drv->device, &dev);
	if (r < 0)
		return r;
	if (dev && !(rq->device = m2m_strdup(dev)))
		return -ENOMEM;
	r = m2m_cfg_strdup(api, host, obj, "command", "the bytes sent, e.g. \"W\\r\"", &rq->cmd_text);
	if (r < 0)
		return r;
	r = cfg_bytes(drv, obj, "command", rq->cmd, sizeof(rq->cmd), &len);
	if (r < 0)
		return r;
	rq->cmd_len = (size_t)len;
	r = m2m_cfg_duration_range(api, host, obj, "interval", US_PER_S, 10 * US_PER_MS,
	                           24 * 3600 * US_PER_S, &rq->interval_us);
	if (r == 0)
		r = m2m_cfg_duration_range(api, host, obj, "timeout", US_PER_S, US_PER_MS, 60 * US_PER_S,
		                           &rq->timeout_us);
	if (r == 0)
		r = m2m_cfg_int_range(api, host, obj, "retries", 1, 0, 10, &rq->retries);
	if (r == 0)
		r = cfg_pattern(drv, obj, "response", &rq->response);
	if (r < 0)
		return r;
	if (rq->interval_us % US_PER_MS)
		return M2M_CFG_ERROR(drv, key_item(drv, obj, "interval"),
		                     "expected a whole number of milliseconds");
	return 0;
}

/* The sentence type without its talker: "GNRMC" -> "RMC"; "RMC" and "PGRME" stay. */
static const char *sentence_type(const char *sentence)
{
	return strlen(sentence) == 5 && sentence[0] != 'P' ? sentence + 2 : sentence;
}

/*
 * Positions and what is derived from them mean nothing without a fix; the
 * receiver's own status and counts are good either way.
 */
static bool gated_by_default(int kind, const char *field)
{
	return kind == NMEA_KIND_LAT || kind == NMEA_KIND_LON ||
	       (field && (strcmp(field, "altitude") == 0 || strncmp(field, "speed", 5) == 0 ||
	                  strcmp(field, "course") == 0 || strcmp(field, "geoid_separation") == 0));
}

/* A named field of sentence TYPE: checked against the codec's names and the point's kind. */
static int parse_nmea_field(struct ser_driver *drv, const cJSON *obj, struct ser_point *p,
                            const char *type, const char *field, int *ret_kind)
{
	int fk = nmea_field_kind(type, field);

	if (fk < 0) {
		char names[400] = "";
		size_t n = 0;
		const char *nm;

		for (unsigned i = 0; (nm = nmea_field_name(type, i)) && n < sizeof(names) - 20; i++)
			n += (size_t)snprintf(names + n, sizeof(names) - n, "%s%s", i ? ", " : "", nm);
		if (!n)
			return M2M_CFG_ERROR(drv, key_item(drv, obj, "field"),
			                     "sentence %s has no named fields: use %s", type,
			                     strcmp(type, "XDR") == 0
			                             ? "'xdr' (the transducer's name) or 'index'"
			                             : "'index'");
		return M2M_CFG_ERROR(drv, key_item(drv, obj, "field"), "%s has no field \"%s\" (%s)",
		                     type, field, names);
	}
	if (fk == NMEA_KIND_TEXT && p->kind == SER_KIND_NUMBER)
		return M2M_CFG_ERROR(drv, key_item(drv, obj, "field"),
		                     "field \"%s\" of %s is a letter or a name, not a number: use "
		                     "kind = \"string\", or kind = \"bool\" with 'on'", field, type);
	if (!(p->field = m2m_strdup(field)))
		return -ENOMEM;
	*ret_kind = fk;
	return 0;
}

static int parse_nmea_address(struct ser_driver *drv, const cJSON *obj, struct ser_point *p)
{
	const struct m2m_host_api *api = drv->api;
	m2m_host *host = drv->host;
	const char *type, *field = NULL, *xdr = NULL;
	int64_t index;
	int r, fk;

	r = m2m_cfg_strdup(api, host, obj, "sentence", "the sentence type, e.g. \"RMC\" or \"GPGGA\"",
	                   &p->sentence);
	if (r < 0)
		return r;
	for (const char *c = p->sentence; *c; c++)
		if (!((*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')))
			return M2M_CFG_ERROR(drv, key_item(drv, obj, "sentence"),
			                     "expected upper-case letters and digits (\"RMC\", \"GNGGA\", "
			                     "\"PGRME\"), not \"%s\"", p->sentence);
	type = sentence_type(p->sentence);
	r = api->cfg_string(host, obj, "field", NULL, &field);
	if (r >= 0)
		r = api->cfg_int(host, obj, "index", -1, 0, NMEA_MAX_FIELDS - 1, &index);
	if (r >= 0 && strcmp(type, "XDR") == 0)
		r = api->cfg_string(host, obj, "xdr", NULL, &xdr);
	if (r < 0)
		return r;
	p->index = (int)index;
	if (!!field + (index >= 0) + !!xdr != 1) {
		if (strcmp(type, "XDR") == 0)
			return M2M_CFG_ERROR(drv, obj, "an XDR point needs one of 'xdr' (the transducer's "
			                     "name) or 'index'");
		return M2M_CFG_ERROR(drv, obj, "a point of sentence %s needs one of 'field' (a name) "
		                     "or 'index' (0 = the first field after the address)",
		                     p->sentence);
	}
	if (xdr && p->kind != SER_KIND_NUMBER)
		return M2M_CFG_ERROR(drv, key_item(drv, obj, "xdr"), "an XDR measurement is a number: "
		                     "leave 'kind' out (or use 'index' for the text of a field)");
	if (xdr && !(p->xdr = m2m_strdup(xdr)))
		return -ENOMEM;
	fk = -1;
	if (field) {
		r = parse_nmea_field(drv, obj, p, type, field, &fk);
		if (r < 0)
			return r;
	}
	return m2m_cfg_flag(api, host, obj, "valid_only", gated_by_default(fk, field),
	                    &p->valid_only);
}

static int parse_group(struct ser_driver *drv, const cJSON *obj, struct ser_point *p)
{
	const cJSON *item = drv->api->cfg_item(drv->host, obj, "group");

	if (!item) {
		p->group = p->pattern->n_groups ? 1 : 0;
		return 0;
	}
	if (cJSON_IsNumber(item)) {
		int64_t g;
		int r = drv->api->cfg_int(drv->host, obj, "group", 0, 0, p->pattern->n_groups, &g);

		if (r < 0)
			return r;
		p->group = (int)g;
		return 0;
	}
	if (cJSON_IsString(item)) {
		p->group = st_regex_group(p->pattern->re, item->valuestring);
		if (p->group < 0)
			return M2M_CFG_ERROR(drv, item, "the pattern has no group \"%s\"",
			                     item->valuestring);
		return 0;
	}
	return M2M_CFG_ERROR(drv, item, "expected a group's name or number");
}

static int parse_address(struct ser_driver *drv, const cJSON *obj, struct ser_point *p,
                         struct ser_pattern *def_pattern)
{
	const struct m2m_host_api *api = drv->api;
	m2m_host *host = drv->host;
	int64_t v;
	int r;

	switch (drv->format) {
	case SER_NMEA:
		return parse_nmea_address(drv, obj, p);
	case SER_REGEX:
		r = cfg_pattern(drv, obj, "pattern", &p->pattern);
		if (r < 0)
			return r;
		if (!p->pattern)
			p->pattern = def_pattern;
		if (!p->pattern)
			return M2M_CFG_ERROR(drv, obj, "missing key 'pattern' (here or in the driver's "
			                     "section)");
		return parse_group(drv, obj, p);
	case SER_DELIMITED:
		r = api->cfg_int(host, obj, "field", -1, 0, 255, &v);
		if (r < 0)
			return r;
		if (r == 0)
			return M2M_CFG_ERROR(drv, obj, "missing key 'field' (0 = the first)");
		p->column = (unsigned)v;
		return 0;
	default:
		r = api->cfg_int(host, obj, "start", -1, 0, SF_FRAME_MAX - 1, &v);
		if (r < 0)
			return r;
		if (r == 0)
			return M2M_CFG_ERROR(drv, obj, "missing key 'start' (the first column, 0-based)");
		p->start = (size_t)v;
		r = api->cfg_int(host, obj, "width", -1, 1, SF_FRAME_MAX, &v);
		if (r < 0)
			return r;
		if (r == 0)
			return M2M_CFG_ERROR(drv, obj, "missing key 'width' (the column's bytes)");
		p->width = (size_t)v;
		if (p->start + p->width > drv->fcfg.max_len)
			return M2M_CFG_ERROR(drv, obj, "columns %zu..%zu lie past max_length (%zu)",
			                     p->start, p->start + p->width - 1, drv->fcfg.max_len);
		return 0;
	}
}

static int parse_write(struct ser_driver *drv, const cJSON *obj, struct ser_point *p)
{
	const struct m2m_host_api *api = drv->api;
	m2m_host *host = drv->host;
	uint8_t buf[SER_CMD_MAX];
	char err[160];
	bool writable;
	int len, r;

	r = m2m_cfg_flag(api, host, obj, "writable", false, &writable);
	if (r == 0)
		r = cfg_bytes(drv, obj, "write", buf, sizeof(buf), &len);
	if (r < 0)
		return r;
	if (len < 0 && !writable)
		return 0;
	if (len < 0)
		return M2M_CFG_ERROR(drv, obj, "a writable point needs 'write', the command template "
		                     "(e.g. \"SP{value:.1f}\\r\")");
	if (!writable)
		return M2M_CFG_ERROR(drv, key_item(drv, obj, "write"), "'write' needs writable = true");
	if (p->kind == SER_KIND_TEXT)
		return M2M_CFG_ERROR(drv, key_item(drv, obj, "writable"),
		                     "string points cannot be writable (writes carry a number)");
	if (ser_template_check(buf, (size_t)len, err, sizeof(err)) < 0)
		return M2M_CFG_ERROR(drv, key_item(drv, obj, "write"), "%s", err);
	p->tpl = malloc((size_t)len + 1);
	if (!p->tpl)
		return -ENOMEM;
	memcpy(p->tpl, buf, (size_t)len);
	p->tpl_len = (size_t)len;
	r = cfg_pattern(drv, obj, "ack", &p->ack);
	if (r == 0)
		r = cfg_pattern(drv, obj, "nak", &p->nak);
	if (r == 0)
		r = m2m_cfg_duration_range(api, host, obj, "write_timeout", US_PER_S, US_PER_MS,
		                           60 * US_PER_S, &p->write_timeout_us);
	return r;
}

static int parse_point(struct ser_driver *drv, const cJSON *obj, struct ser_point *p,
                       struct ser_pattern *def_pattern)
{
	const struct m2m_host_api *api = drv->api;
	m2m_host *host = drv->host;
	const char *name = NULL, *rq = NULL, *on = NULL, *off = NULL;
	int kind, r;

	p->index = -1;
	r = api->declare_point(host, drv->device, obj, &p->id);
	if (r < 0)
		return r;
	r = api->cfg_string(host, obj, "name", "?", &name);
	if (r < 0)
		return r;
	if (drv->device)
		r = asprintf(&p->name, "%s/%s", drv->device, name);
	else
		r = asprintf(&p->name, "%s", name);
	if (r < 0) {
		p->name = NULL;
		return -ENOMEM;
	}
	r = api->cfg_enum(host, obj, "kind", kind_names, SER_KIND_NUMBER, &kind);
	if (r < 0)
		return r;
	p->kind = (enum ser_kind)kind;
	r = parse_address(drv, obj, p, def_pattern);
	if (r < 0)
		return r;
	if (p->kind == SER_KIND_BOOL) {
		r = api->cfg_string(host, obj, "on", NULL, &on);
		if (r >= 0)
			r = api->cfg_string(host, obj, "off", NULL, &off);
		if (r < 0)
			return r;
		if (!on || !*on)
			return M2M_CFG_ERROR(drv, obj, "a bool point needs 'on', the text that means true "
			                     "('off', the text for false, is optional)");
		p->on = m2m_strdup(on);
		p->off = off ? m2m_strdup(off) : NULL;
		if (!p->on || (off && !p->off))
			return -ENOMEM;
	}
	r = api->cfg_string(host, obj, "request", NULL, &rq);
	if (r < 0)
		return r;
	if (rq) {
		p->request = find_request(drv, rq);
		if (!p->request)
			return M2M_CFG_ERROR(drv, key_item(drv, obj, "request"),
			                     "no request named \"%s\" in [[drivers.NAME.requests]]", rq);
	}
	return parse_write(drv, obj, p);
}

static int parse_arrays(struct ser_driver *drv, const cJSON *config, struct ser_pattern *def)
{
	const struct m2m_host_api *api = drv->api;
	const cJSON *requests = api->cfg_item(drv->host, config, "requests");
	const cJSON *points = api->cfg_item(drv->host, config, "points");
	const cJSON *obj;
	int r;

	if (requests && !cJSON_IsArray(requests))
		return M2M_CFG_ERROR(drv, requests, "expected an array of request tables "
		                     "([[drivers.NAME.requests]])");
	if (!points || !cJSON_IsArray(points) || cJSON_GetArraySize(points) == 0)
		return M2M_CFG_ERROR(drv, points ? points : config, "expected 'points', a non-empty "
		                     "array of point tables ([[drivers.NAME.points]])");
	drv->requests = calloc((size_t)cJSON_GetArraySize(requests) + 1, sizeof(*drv->requests));
	drv->rq_queue = calloc((size_t)cJSON_GetArraySize(requests) + 1, sizeof(*drv->rq_queue));
	drv->points = calloc((size_t)cJSON_GetArraySize(points), sizeof(*drv->points));
	drv->rd = calloc((size_t)cJSON_GetArraySize(points) + SER_BATCH, sizeof(*drv->rd));
	if (!drv->requests || !drv->rq_queue || !drv->points || !drv->rd)
		return -ENOMEM;
	cJSON_ArrayForEach(obj, requests) {
		if (!cJSON_IsObject(obj))
			return M2M_CFG_ERROR(drv, obj, "expected a request table");
		r = parse_request(drv, obj, &drv->requests[drv->n_requests++]);
		if (r < 0)
			return r;
	}
	cJSON_ArrayForEach(obj, points) {
		if (!cJSON_IsObject(obj))
			return M2M_CFG_ERROR(drv, obj, "expected a point table");
		r = parse_point(drv, obj, &drv->points[drv->n_points++], def);
		if (r < 0)
			return r;
	}
	return 0;
}

int ser_create(m2m_host *host, const struct m2m_host_api *api, const struct cJSON *config,
               void **ret_driver)
{
	struct ser_pattern *def = NULL;
	struct ser_driver *drv;
	const cJSON *requests, *points;
	const char *dev = NULL;
	size_t max_patterns;
	int r;

	if (!api || !M2M_HAS_FIELD(struct m2m_host_api, api->struct_size, write_done))
		return -EPROTO;
	drv = calloc(1, sizeof(*drv));
	if (!drv)
		return -ENOMEM;
	drv->host = host;
	drv->api = api;
	drv->fd = -1;
	drv->decimal = '.';

	/* Every pattern key at most once: the driver's, each request's, three per point. */
	requests = cJSON_GetObjectItemCaseSensitive(config, "requests");
	points = cJSON_GetObjectItemCaseSensitive(config, "points");
	max_patterns = 1 + (size_t)cJSON_GetArraySize(requests) + 3 * (size_t)cJSON_GetArraySize(points);
	drv->patterns = calloc(max_patterns, sizeof(*drv->patterns));
	r = -ENOMEM;
	if (!drv->patterns)
		goto fail;

	r = parse_line(drv, config);
	if (r < 0)
		goto fail;
	r = api->cfg_string(host, config, "device", NULL, &dev);
	if (r < 0)
		goto fail;
	if (dev) {
		if (!*dev || strchr(dev, '/')) {
			r = M2M_CFG_ERROR(drv, key_item(drv, config, "device"),
			                  "expected a device name without '/', the first part of the "
			                  "point names");
			goto fail;
		}
		r = -ENOMEM;
		if (!(drv->device = m2m_strdup(dev)))
			goto fail;
	}
	r = parse_format(drv, config, &def);
	if (r < 0)
		goto fail;
	r = parse_framing(drv, config);
	if (r < 0)
		goto fail;
	if (drv->format == SER_DELIMITED) {
		r = -ENOMEM;
		drv->split_buf = malloc(drv->fcfg.max_len + 1);
		drv->fields = calloc(SER_MAX_FIELDS, sizeof(*drv->fields));
		if (!drv->split_buf || !drv->fields)
			goto fail;
	}
	r = parse_arrays(drv, config, def);
	if (r < 0)
		goto fail;
	*ret_driver = drv;
	return 0;

fail:
	ser_free(drv);
	return r < 0 ? r : -EINVAL;
}
