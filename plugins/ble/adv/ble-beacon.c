/* SPDX-License-Identifier: MIT */
/*
 * ble-beacon.c - beacons: Apple's iBeacon (manufacturer data of 0x004C,
 * type 0x02, length 0x15) and Google's Eddystone (service data of 0xFEAA:
 * UID, URL, TLM and EID frames), written from the published formats. A
 * beacon's reading is its presence; the plugin adds the RSSI.
 */
#include "ble-adv-int.h"

#include <errno.h>
#include <string.h>

/* UUID (16), major uint16, minor uint16, measured power int8 (dBm at 1 m), big endian. */
int ble_dec_ibeacon(struct ble_dec_args *a, struct ble_sink *s) {
	const struct ble_mfr *m = ble_find_mfr(a->adv, BLE_COMPANY_APPLE);
	int r = 0;

	if (!m || m->len < 2 || m->data[0] != 0x02 || m->data[1] != 0x15)
		return ble_fail(s, -ENOMSG, "no iBeacon data");
	if (m->len != 23)
		return ble_fail(s, -EBADMSG, "iBeacon data of %zu bytes (needs 23)", m->len);
	r |= ble_put_num(s, "present", 1);
	r |= ble_put_num(s, "tx_power", (int8_t)m->data[22]);
	r |= ble_put_num(s, "major", (double)ble_get_be(m->data + 18, 2));
	r |= ble_put_num(s, "minor", (double)ble_get_be(m->data + 20, 2));
	return r < 0 ? -EBADMSG : 0;
}

static const char *const url_schemes[] = {"http://www.", "https://www.", "http://", "https://"};
static const char *const url_codes[] = {
	".com/", ".org/", ".edu/", ".net/", ".info/", ".biz/", ".gov/",
	".com", ".org", ".edu", ".net", ".info", ".biz", ".gov",
};

/* URL frame: tx power, scheme, then printable ASCII with the codes 0x00-0x0d expanded. */
static int eddystone_url(struct ble_sink *s, const uint8_t *p, size_t n) {
	char url[128];
	size_t len;

	if (n < 3 || n > 20)
		return ble_fail(s, -EBADMSG, "Eddystone URL frame of %zu bytes (3 to 20)", n);
	if (p[2] >= 4)
		return ble_fail(s, -EBADMSG, "Eddystone URL scheme 0x%02x", p[2]);
	len = strlen(url_schemes[p[2]]);
	memcpy(url, url_schemes[p[2]], len);
	for (size_t i = 3; i < n; i++) {
		const char *c;
		size_t k;

		if (p[i] < 14) {
			c = url_codes[p[i]];
			k = strlen(c);
		} else if (p[i] > 0x20 && p[i] < 0x7f) {
			c = (const char *)p + i;
			k = 1;
		} else {
			return ble_fail(s, -EBADMSG, "Eddystone URL byte 0x%02x", p[i]);
		}
		memcpy(url + len, c, k);
		len += k;
	}
	if (ble_put_num(s, "present", 1) < 0 || ble_put_num(s, "tx_power", (int8_t)p[1]) < 0)
		return -EBADMSG;
	return ble_put_text(s, "url", url, len);
}

/*
 * TLM frame (unencrypted, version 0): battery uint16 mV (0: not
 * measured), temperature signed 8.8 fixed point degC (0x8000: not
 * measured), advertisements sent uint32, time since power-up uint32 in
 * 0.1 s; big endian.
 */
static int eddystone_tlm(struct ble_dec_args *a, struct ble_sink *s, const uint8_t *p, size_t n) {
	uint64_t v;
	uint32_t count;
	int r = 0;

	if (n < 2)
		return ble_fail(s, -EBADMSG, "Eddystone TLM frame of %zu bytes", n);
	if (p[1] != 0)
		return ble_fail(s, -EBADMSG, "Eddystone TLM version %u (encrypted TLM is not read)", p[1]);
	if (n != 14)
		return ble_fail(s, -EBADMSG, "Eddystone TLM frame of %zu bytes (needs 14)", n);
	count = (uint32_t)ble_get_be(p + 6, 4);
	if (ble_seen_seq(a->st, count))
		return 1;
	a->next.has_seq = true;
	a->next.seq = count;
	r |= ble_put_num(s, "present", 1);
	if ((v = ble_get_be(p + 2, 2)) != 0)
		r |= ble_put_num(s, "battery_voltage", (double)v / 1000);
	if ((v = ble_get_be(p + 4, 2)) != 0x8000)
		r |= ble_put_num(s, "temperature", (double)ble_sign(v, 2) / 256);
	r |= ble_put_num(s, "adv_count", count);
	r |= ble_put_num(s, "uptime", (double)ble_get_be(p + 10, 4) / 10);
	return r < 0 ? -EBADMSG : 0;
}

int ble_dec_eddystone(struct ble_dec_args *a, struct ble_sink *s) {
	const struct ble_svc *sv = ble_find_svc16(a->adv, BLE_UUID_EDDYSTONE);
	const uint8_t *p;
	int r = 0;

	if (!sv)
		return ble_fail(s, -ENOMSG, "no Eddystone service data (UUID 0xfeaa)");
	if (sv->len == 0)
		return ble_fail(s, -EBADMSG, "empty Eddystone frame");
	p = sv->data;
	switch (p[0]) {
	case 0x00: /* UID: tx power at 0 m, namespace (10), instance (6), 2 reserved bytes */
		if (sv->len != 18 && sv->len != 20)
			return ble_fail(s, -EBADMSG, "Eddystone UID frame of %zu bytes (18 or 20)", sv->len);
		r |= ble_put_num(s, "present", 1);
		r |= ble_put_num(s, "tx_power", (int8_t)p[1]);
		r |= ble_put_hex(s, "namespace", false, p + 2, 10);
		r |= ble_put_hex(s, "instance", false, p + 12, 6);
		break;
	case 0x10:
		return eddystone_url(s, p, sv->len);
	case 0x20:
		return eddystone_tlm(a, s, p, sv->len);
	case 0x30: /* EID: tx power, an 8-byte ephemeral id */
		if (sv->len != 10)
			return ble_fail(s, -EBADMSG, "Eddystone EID frame of %zu bytes (needs 10)", sv->len);
		r |= ble_put_num(s, "present", 1);
		r |= ble_put_num(s, "tx_power", (int8_t)p[1]);
		r |= ble_put_hex(s, "eid", false, p + 2, 8);
		break;
	default:
		return ble_fail(s, -EBADMSG, "Eddystone frame type 0x%02x", p[0]);
	}
	return r < 0 ? -EBADMSG : 0;
}
