/* SPDX-License-Identifier: MIT */
/*
 * ble-adv.c - the format table, detection, stable ids, the shared helpers
 * (UUIDs, addresses, keys, byte readers, the sink) and the entry point
 * that runs one decoder and emits its values only once all of them decoded.
 */
#include "ble-adv-int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *const format_names[BLE_FMT_COUNT] = {
	[BLE_FMT_BTHOME] = "bthome",
	[BLE_FMT_RUUVI5] = "ruuvi",
	[BLE_FMT_ATC1441] = "atc1441",
	[BLE_FMT_PVVX] = "pvvx",
	[BLE_FMT_IBEACON] = "ibeacon",
	[BLE_FMT_EDDYSTONE] = "eddystone",
	[BLE_FMT_RAW] = "raw",
};

typedef int ble_dec_fn(struct ble_dec_args *a, struct ble_sink *s);
static ble_dec_fn *const decoders[BLE_FMT_COUNT] = {
	[BLE_FMT_BTHOME] = ble_dec_bthome,
	[BLE_FMT_RUUVI5] = ble_dec_ruuvi5,
	[BLE_FMT_ATC1441] = ble_dec_atc1441,
	[BLE_FMT_PVVX] = ble_dec_pvvx,
	[BLE_FMT_IBEACON] = ble_dec_ibeacon,
	[BLE_FMT_EDDYSTONE] = ble_dec_eddystone,
	[BLE_FMT_RAW] = ble_dec_raw,
};

int ble_format_parse(const char *name, enum ble_format *out) {
	for (int i = 0; i < BLE_FMT_COUNT; i++)
		if (strcmp(name, format_names[i]) == 0) {
			*out = (enum ble_format)i;
			return 0;
		}
	return -EINVAL;
}

const char *ble_format_name(enum ble_format fmt) {
	return (unsigned)fmt < BLE_FMT_COUNT ? format_names[fmt] : "?";
}

/* 0000xxxx-0000-1000-8000-00805f9b34fb */
static const uint8_t base_uuid[16] = {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00,
                                      0x80, 0x00, 0x00, 0x80, 0x5f, 0x9b, 0x34, 0xfb};

void ble_uuid16(uint16_t shortid, uint8_t uuid[16]) {
	memcpy(uuid, base_uuid, 16);
	uuid[2] = (uint8_t)(shortid >> 8);
	uuid[3] = (uint8_t)shortid;
}

int ble_uuid_short(const uint8_t uuid[16]) {
	if (uuid[0] || uuid[1] || memcmp(uuid + 4, base_uuid + 4, 12) != 0)
		return -1;
	return uuid[2] << 8 | uuid[3];
}

static int hex_digit(int c) {
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Reads N bytes of hex digits from TEXT, skipping a '-' or ':' at the positions in SEP. */
static const char *hex_bytes(const char *text, uint8_t *out, size_t n, char sep, uint32_t sep_after) {
	for (size_t i = 0; i < n; i++) {
		int hi = hex_digit((unsigned char)text[0]);
		int lo = hi < 0 ? -1 : hex_digit((unsigned char)text[1]);

		if (lo < 0)
			return NULL;
		out[i] = (uint8_t)(hi << 4 | lo);
		text += 2;
		if (sep && i + 1 < n && (sep_after >> i & 1)) {
			if (*text != sep)
				return NULL;
			text++;
		}
	}
	return text;
}

int ble_uuid_parse(const char *text, uint8_t uuid[16]) {
	uint8_t u[16], s[2];
	const char *end;

	if (strncmp(text, "0x", 2) == 0 || strncmp(text, "0X", 2) == 0)
		text += 2;
	if (strlen(text) == 4) {
		end = hex_bytes(text, s, 2, 0, 0);
		if (!end || *end)
			return -EINVAL;
		ble_uuid16((uint16_t)(s[0] << 8 | s[1]), uuid);
		return 0;
	}
	/* 8-4-4-4-12: a dash after bytes 4, 6, 8 and 10 */
	end = hex_bytes(text, u, 16, '-', 1u << 3 | 1u << 5 | 1u << 7 | 1u << 9);
	if (!end || *end)
		return -EINVAL;
	memcpy(uuid, u, 16);
	return 0;
}

int ble_addr_parse(const char *text, uint8_t addr[6]) {
	uint8_t a[6];
	const char *end = hex_bytes(text, a, 6, ':', 0x1f);

	if (!end || *end)
		return -EINVAL;
	memcpy(addr, a, 6);
	return 0;
}

void ble_addr_format(const uint8_t addr[6], char *buf) {
	snprintf(buf, BLE_ADDR_STRLEN, "%02X:%02X:%02X:%02X:%02X:%02X", addr[0], addr[1], addr[2],
	         addr[3], addr[4], addr[5]);
}

int ble_key_parse(const char *text, struct ble_key *out) {
	uint8_t k[16];
	const char *end;

	while (isspace((unsigned char)*text))
		text++;
	end = hex_bytes(text, k, 16, 0, 0);
	if (!end)
		return -EINVAL;
	while (isspace((unsigned char)*end))
		end++;
	if (*end)
		return -EINVAL;
	memcpy(out->key, k, 16);
	return 0;
}

const struct ble_svc *ble_find_svc(const struct ble_adv *adv, const uint8_t uuid[16]) {
	for (size_t i = 0; i < adv->n_svc && i < BLE_ADV_MAX_SVC; i++)
		if (memcmp(adv->svc[i].uuid, uuid, 16) == 0)
			return &adv->svc[i];
	return NULL;
}

const struct ble_svc *ble_find_svc16(const struct ble_adv *adv, uint16_t uuid16) {
	uint8_t uuid[16];

	ble_uuid16(uuid16, uuid);
	return ble_find_svc(adv, uuid);
}

const struct ble_mfr *ble_find_mfr(const struct ble_adv *adv, uint16_t company) {
	for (size_t i = 0; i < adv->n_mfr && i < BLE_ADV_MAX_MFR; i++)
		if (adv->mfr[i].company == company)
			return &adv->mfr[i];
	return NULL;
}

uint64_t ble_get_le(const uint8_t *p, size_t n) {
	uint64_t v = 0;

	for (size_t i = n; i-- > 0;)
		v = v << 8 | p[i];
	return v;
}

uint64_t ble_get_be(const uint8_t *p, size_t n) {
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

int64_t ble_sign(uint64_t v, size_t n) {
	if (n >= 8)
		return (int64_t)v;
	uint64_t m = 1ull << (8 * n - 1);
	return (int64_t)((v ^ m) - m);
}

bool ble_seen_seq(const struct ble_dev_state *st, uint32_t seq) {
	return st && st->has_seq && st->seq == seq;
}

int ble_fail(struct ble_sink *s, int code, const char *fmt, ...) {
	va_list ap;

	if (s->err && s->errlen) {
		va_start(ap, fmt);
		vsnprintf(s->err, s->errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}

/* What each decoder emits; BTHome's table is its own, and raw's names are the configuration's. */
static const char *const fields_ruuvi5[] = {
	"temperature", "humidity", "pressure", "acceleration_x", "acceleration_y", "acceleration_z",
	"voltage", "tx_power", "movement_counter", "measurement_sequence", "mac", NULL,
};
static const char *const fields_xiaomi[] = {
	"temperature", "humidity", "battery", "voltage", "flags", NULL,
};
static const char *const fields_ibeacon[] = { "present", "tx_power", "major", "minor", NULL };
static const char *const fields_eddystone[] = {
	"present", "tx_power", "url", "namespace", "instance", "eid", "battery_voltage", "temperature",
	"adv_count", "uptime", NULL,
};

bool ble_format_field_known(enum ble_format fmt, const char *field) {
	const char *const *names = NULL;
	char base[64];
	const char *us;

	switch (fmt) {
	case BLE_FMT_BTHOME:
		/* "temperature_2" is the second temperature object of a packet. */
		us = strrchr(field, '_');
		if (us && us[1] >= '1' && us[1] <= '9' && strspn(us + 1, "0123456789") == strlen(us + 1) &&
		    strcmp(us + 1, "1") != 0 && (size_t)(us - field) < sizeof(base)) {
			memcpy(base, field, (size_t)(us - field));
			base[us - field] = '\0';
			if (ble_bthome_field_known(base))
				return true;
		}
		return ble_bthome_field_known(field);
	case BLE_FMT_RUUVI5:
		names = fields_ruuvi5;
		break;
	case BLE_FMT_ATC1441:
	case BLE_FMT_PVVX:
		names = fields_xiaomi;
		break;
	case BLE_FMT_IBEACON:
		names = fields_ibeacon;
		break;
	case BLE_FMT_EDDYSTONE:
		names = fields_eddystone;
		break;
	case BLE_FMT_RAW:
		return true;
	case BLE_FMT_COUNT:
		return false;
	}
	for (; names && *names; names++)
		if (strcmp(*names, field) == 0)
			return true;
	return false;
}

int ble_put(struct ble_sink *s, const char *base, bool repeat, double value, const char *text, size_t tlen) {
	struct ble_value *v;
	unsigned same = 0;

	if (s->n == BLE_SINK_MAX)
		return ble_fail(s, -EBADMSG, "more than %d values", BLE_SINK_MAX);
	if (text && s->text_used + tlen + 1 > sizeof(s->text))
		return ble_fail(s, -EBADMSG, "more than %d bytes of text", BLE_SINK_TEXT);
	if (repeat)
		for (size_t i = 0; i < s->n; i++)
			same += strcmp(s->v[i].base, base) == 0;
	v = &s->v[s->n++];
	v->base = base;
	v->name = base;
	if (same) {
		/* only the decoders' own names repeat, and they are short */
		snprintf(v->repeated, sizeof(v->repeated), "%s_%u", base, same + 1);
		v->name = v->repeated;
	}
	v->value = text ? 0 : value;
	v->text = -1;
	if (text) {
		v->text = (int)s->text_used;
		memcpy(s->text + s->text_used, text, tlen);
		s->text_used += tlen;
		s->text[s->text_used++] = 0;
	}
	return 0;
}

int ble_put_hex(struct ble_sink *s, const char *base, bool repeat, const uint8_t *data, size_t len) {
	char hex[2 * 255 + 1];

	if (len > 255)
		return ble_fail(s, -EBADMSG, "%zu bytes of %s", len, base);
	for (size_t i = 0; i < len; i++)
		snprintf(hex + 2 * i, 3, "%02x", data[i]);
	return ble_put(s, base, repeat, 0, hex, 2 * len);
}

int ble_adv_detect(const struct ble_adv *adv, enum ble_format *out) {
	const struct ble_svc *sv;
	const struct ble_mfr *m;
	enum ble_format f;

	/* BTHome first: a device that sends it says what it measures. */
	if ((sv = ble_find_svc16(adv, BLE_UUID_BTHOME)) && sv->len >= 1 && (sv->data[0] >> 5) == 2)
		f = BLE_FMT_BTHOME;
	else if ((m = ble_find_mfr(adv, BLE_COMPANY_RUUVI)) && m->len >= 1 && m->data[0] == 5)
		f = BLE_FMT_RUUVI5;
	else if ((sv = ble_find_svc16(adv, BLE_UUID_ENVIRONMENTAL)) && sv->len == 13)
		f = BLE_FMT_ATC1441;
	else if (sv && sv->len == 15)
		f = BLE_FMT_PVVX;
	else if ((m = ble_find_mfr(adv, BLE_COMPANY_APPLE)) && m->len >= 2 && m->data[0] == 0x02 &&
	         m->data[1] == 0x15)
		f = BLE_FMT_IBEACON;
	else if (ble_find_svc16(adv, BLE_UUID_EDDYSTONE))
		f = BLE_FMT_EDDYSTONE;
	else
		return -ENOMSG;
	*out = f;
	return 0;
}

static void hex_text(char *buf, const uint8_t *p, size_t n) {
	for (size_t i = 0; i < n; i++)
		sprintf(buf + 2 * i, "%02x", p[i]);
}

int ble_adv_stable_id(enum ble_format fmt, const struct ble_adv *adv, char *buf, size_t n) {
	char id[BLE_STABLE_ID_MAX], ns[21], inst[13], u[33];
	const struct ble_mfr *m;
	const struct ble_svc *sv;
	uint8_t mac[6];

	switch (fmt) {
	case BLE_FMT_RUUVI5:
		m = ble_find_mfr(adv, BLE_COMPANY_RUUVI);
		if (!m || m->len != 24 || m->data[0] != 5)
			return -ENOMSG;
		/* all ones is Ruuvi's "not available" */
		if (ble_get_be(m->data + 18, 6) == 0xffffffffffffull)
			return -ENOMSG;
		ble_addr_format(m->data + 18, id);
		break;
	case BLE_FMT_ATC1441:
	case BLE_FMT_PVVX:
		sv = ble_find_svc16(adv, BLE_UUID_ENVIRONMENTAL);
		if (!sv || sv->len != (fmt == BLE_FMT_ATC1441 ? 13u : 15u))
			return -ENOMSG;
		for (int i = 0; i < 6; i++)
			mac[i] = fmt == BLE_FMT_ATC1441 ? sv->data[i] : sv->data[5 - i];
		ble_addr_format(mac, id);
		break;
	case BLE_FMT_IBEACON:
		m = ble_find_mfr(adv, BLE_COMPANY_APPLE);
		if (!m || m->len != 23 || m->data[0] != 0x02 || m->data[1] != 0x15)
			return -ENOMSG;
		hex_text(u, m->data + 2, 16);
		snprintf(id, sizeof(id), "%.8s-%.4s-%.4s-%.4s-%.12s/%u/%u", u, u + 8, u + 12, u + 16,
		         u + 20, (unsigned)ble_get_be(m->data + 18, 2),
		         (unsigned)ble_get_be(m->data + 20, 2));
		break;
	case BLE_FMT_EDDYSTONE:
		sv = ble_find_svc16(adv, BLE_UUID_EDDYSTONE);
		if (!sv || (sv->len != 18 && sv->len != 20) || sv->data[0] != 0x00)
			return -ENOMSG;
		hex_text(ns, sv->data + 2, 10);
		hex_text(inst, sv->data + 12, 6);
		snprintf(id, sizeof(id), "%s/%s", ns, inst);
		break;
	default:
		return -ENOMSG;
	}
	if (strlen(id) >= n)
		return -ENOBUFS;
	strcpy(buf, id);
	return 0;
}

int ble_adv_decode(enum ble_format fmt, const struct ble_adv *adv, const struct ble_key *key,
                   struct ble_dev_state *st, const struct ble_raw_field *raw, size_t n_raw,
                   ble_emit_fn *emit, void *ctx, char *err, size_t errlen) {
	struct ble_sink s;
	struct ble_dec_args a = {
		.adv = adv, .key = key, .st = st, .raw = raw, .n_raw = n_raw,
	};
	int r;

	if (err && errlen)
		err[0] = 0;
	if ((unsigned)fmt >= BLE_FMT_COUNT || !adv || !emit)
		return -EINVAL;
	s.n = 0;
	s.text_used = 0;
	s.err = err;
	s.errlen = errlen;
	if (st)
		a.next = *st;
	r = decoders[fmt](&a, &s);
	if (r < 0)
		return r;
	if (r == 1)
		return 0;
	if (st)
		*st = a.next;
	for (size_t i = 0; i < s.n; i++)
		emit(ctx, s.v[i].name, s.v[i].value, s.v[i].text < 0 ? NULL : s.text + s.v[i].text);
	return (int)s.n;
}
