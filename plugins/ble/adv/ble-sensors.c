/* SPDX-License-Identifier: MIT */
/*
 * ble-sensors.c - sensor formats with a fixed layout: Ruuvi data format 5
 * (RAWv2, manufacturer data of Ruuvi Innovations, 0x0499) and the custom
 * firmware of Xiaomi thermometers on service 0x181A, ATC1441 (13 bytes,
 * big endian) and pvvx (15 bytes, little endian). Written from the formats'
 * public descriptions (docs.ruuvi.com, the ATC_MiThermometer and pvvx
 * firmware READMEs).
 */
#include "ble-adv-int.h"

#include <errno.h>

/*
 * Ruuvi RAWv2, 24 bytes after the company id, big endian: format (5),
 * temperature int16 0.005 degC, humidity uint16 0.0025 %, pressure uint16
 * Pa above 50000, acceleration x/y/z int16 mG, power info uint16 (11 bits
 * battery mV above 1600, 5 bits tx power 2 dBm steps above -40), movement
 * counter uint8, measurement sequence uint16, MAC (6). The largest value
 * of each (the smallest of the signed ones) means "not available".
 */
int ble_dec_ruuvi5(struct ble_dec_args *a, struct ble_sink *s) {
	static const char *const acc[3] = {"acceleration_x", "acceleration_y", "acceleration_z"};
	const struct ble_mfr *m = ble_find_mfr(a->adv, BLE_COMPANY_RUUVI);
	const uint8_t *p;
	uint64_t v;
	int r = 0;

	if (!m || m->len == 0 || m->data[0] != 5)
		return ble_fail(s, -ENOMSG, "no Ruuvi data format 5");
	if (m->len != 24)
		return ble_fail(s, -EBADMSG, "Ruuvi data format 5 of %zu bytes (needs 24)", m->len);
	p = m->data;
	v = ble_get_be(p + 16, 2);
	if (v != 0xffff && ble_seen_seq(a->st, (uint32_t)v))
		return 1;
	if (v != 0xffff) {
		a->next.has_seq = true;
		a->next.seq = (uint32_t)v;
	}
	if ((v = ble_get_be(p + 1, 2)) != 0x8000)
		r |= ble_put_num(s, "temperature", (double)ble_sign(v, 2) * 5 / 1000);
	if ((v = ble_get_be(p + 3, 2)) != 0xffff)
		r |= ble_put_num(s, "humidity", (double)v * 25 / 10000);
	if ((v = ble_get_be(p + 5, 2)) != 0xffff)
		r |= ble_put_num(s, "pressure", ((double)v + 50000) / 100);
	for (int i = 0; i < 3; i++)
		if ((v = ble_get_be(p + 7 + 2 * i, 2)) != 0x8000)
			r |= ble_put_num(s, acc[i], (double)ble_sign(v, 2) / 1000);
	v = ble_get_be(p + 13, 2);
	if (v >> 5 != 0x7ff)
		r |= ble_put_num(s, "voltage", (double)((v >> 5) + 1600) / 1000);
	if ((v & 0x1f) != 0x1f)
		r |= ble_put_num(s, "tx_power", (double)(v & 0x1f) * 2 - 40);
	if (p[15] != 0xff)
		r |= ble_put_num(s, "movement_counter", p[15]);
	if ((v = ble_get_be(p + 16, 2)) != 0xffff)
		r |= ble_put_num(s, "measurement_sequence", (double)v);
	if (ble_get_be(p + 18, 6) != 0xffffffffffffull) {
		char mac[BLE_ADDR_STRLEN];

		ble_addr_format(p + 18, mac);
		r |= ble_put_text(s, "mac", mac, BLE_ADDR_STRLEN - 1);
	}
	return r < 0 ? -EBADMSG : 0;
}

/* The Xiaomi custom firmware's values, however each format lays them out. */
struct xiaomi {
	double temperature, humidity, voltage;
	unsigned battery, counter;
	int flags;   /* -1: the format has none */
};

static int put_xiaomi(struct ble_dec_args *a, struct ble_sink *s, const struct xiaomi *x) {
	int r = 0;

	if (ble_seen_seq(a->st, x->counter))
		return 1;
	a->next.has_seq = true;
	a->next.seq = x->counter;
	r |= ble_put_num(s, "temperature", x->temperature);
	r |= ble_put_num(s, "humidity", x->humidity);
	r |= ble_put_num(s, "battery", x->battery);
	r |= ble_put_num(s, "voltage", x->voltage);
	if (x->flags >= 0)
		r |= ble_put_num(s, "flags", x->flags);
	return r < 0 ? -EBADMSG : 0;
}

/*
 * The service data of a LEN-byte format; the other format's length is "not
 * this format": the pvvx firmware can send both formats in turn.
 */
static const struct ble_svc *xiaomi_data(struct ble_sink *s, const struct ble_adv *adv, size_t len,
                                         const char *name, int *ret) {
	const struct ble_svc *sv = ble_find_svc16(adv, BLE_UUID_ENVIRONMENTAL);

	if (!sv)
		*ret = ble_fail(s, -ENOMSG, "no service data of UUID 0x181a");
	else if (sv->len != len && (sv->len == 13 || sv->len == 15))
		*ret = ble_fail(s, -ENOMSG, "%s data, not %s", sv->len == 13 ? "ATC1441" : "pvvx", name);
	else if (sv->len != len)
		*ret = ble_fail(s, -EBADMSG, "%s data of %zu bytes (needs %zu)", name, sv->len, len);
	else
		return sv;
	return NULL;
}

/*
 * ATC1441, 13 bytes, big endian: MAC (6, as printed), temperature int16
 * 0.1 degC, humidity uint8 %, battery uint8 %, battery uint16 mV, frame
 * counter uint8.
 */
int ble_dec_atc1441(struct ble_dec_args *a, struct ble_sink *s) {
	struct xiaomi x = {.flags = -1};
	const struct ble_svc *sv;
	const uint8_t *p;
	int r;

	if (!(sv = xiaomi_data(s, a->adv, 13, "ATC1441", &r)))
		return r;
	p = sv->data;
	x.temperature = (double)ble_sign(ble_get_be(p + 6, 2), 2) / 10;
	x.humidity = p[8];
	x.battery = p[9];
	x.voltage = (double)ble_get_be(p + 10, 2) / 1000;
	x.counter = p[12];
	return put_xiaomi(a, s, &x);
}

/*
 * pvvx custom format, 15 bytes, little endian: MAC (6, least significant
 * first), temperature int16 0.01 degC, humidity uint16 0.01 %, battery
 * uint16 mV, battery uint8 %, measurement counter uint8, flags uint8.
 */
int ble_dec_pvvx(struct ble_dec_args *a, struct ble_sink *s) {
	struct xiaomi x;
	const struct ble_svc *sv;
	const uint8_t *p;
	int r;

	if (!(sv = xiaomi_data(s, a->adv, 15, "pvvx", &r)))
		return r;
	p = sv->data;
	x.temperature = (double)ble_sign(ble_get_le(p + 6, 2), 2) / 100;
	x.humidity = (double)ble_get_le(p + 8, 2) / 100;
	x.voltage = (double)ble_get_le(p + 10, 2) / 1000;
	x.battery = p[12];
	x.counter = p[13];
	x.flags = p[14];
	return put_xiaomi(a, s, &x);
}
