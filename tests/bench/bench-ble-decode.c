/* SPDX-License-Identifier: MIT */
/*
 * The BLE decoders' share of an advert's cost (issue 16's benchmark): ns to
 * decode one pvvx advert of 200 devices, each with the next measurement
 * counter (so none is a duplicate), and one encrypted BTHome advert, beside
 * the copy of the same bytes into a struct ble_adv alone (what the plugin
 * does before it decodes) in the same run. bench-ble.py prints the figure
 * next to the daemon's CPU per advert. One line: "decode_ns=... bthome_ns=...
 * copy_ns=...".
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ble-adv.h"

#define DEVICES 200
#define ROUNDS 5000

struct sink {
	double sum;
	unsigned n;
};

static void emit(void *ctx, const char *field, double value, const char *text) {
	struct sink *s = ctx;

	(void)field;
	(void)text;
	s->sum += value;
	s->n++;
}

static double now_ns(void) {
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* A pvvx advert of device I (address 10:00:00:00:HH:LL) with counter C. */
static void pvvx(struct ble_adv *adv, uint8_t data[15], unsigned i, unsigned c) {
	int16_t t = (int16_t)(2150 + c % 50);

	memset(adv, 0, sizeof(*adv));
	adv->addr[0] = 0x10;
	adv->addr[4] = (uint8_t)(i >> 8);
	adv->addr[5] = (uint8_t)i;
	for (int k = 0; k < 6; k++)
		data[k] = adv->addr[5 - k];
	data[6] = (uint8_t)t, data[7] = (uint8_t)(t >> 8);
	data[8] = 0x94, data[9] = 0x11;   /* 45.00 % */
	data[10] = 0x86, data[11] = 0x0b; /* 2950 mV */
	data[12] = 87;
	data[13] = (uint8_t)c;
	data[14] = 0;
	adv->has_rssi = true;
	adv->rssi = -60;
	adv->n_svc = 1;
	ble_uuid16(0x181a, adv->svc[0].uuid);
	adv->svc[0].data = data;
	adv->svc[0].len = 15;
}

int main(void) {
	static struct ble_dev_state st[DEVICES];
	struct ble_adv adv, copy;
	uint8_t data[15];
	struct sink s = { 0 };
	double t0, decode, copy_ns, bthome;
	char err[128];
	unsigned bad = 0;
	/* The BTHome specification's encrypted example, decoded with a fresh state each time. */
	static const uint8_t enc[] = { 0x41, 0xa4, 0x72, 0x66, 0xc9, 0x5f, 0x73, 0x00,
		                       0x11, 0x22, 0x33, 0x78, 0x23, 0x72, 0x14 };
	struct ble_key key;

	t0 = now_ns();
	for (unsigned r = 0; r < ROUNDS; r++)
		for (unsigned i = 0; i < DEVICES; i++) {
			pvvx(&adv, data, i, r);
			if (ble_adv_decode(BLE_FMT_PVVX, &adv, NULL, &st[i], NULL, 0, emit, &s, err,
			                   sizeof(err)) <= 0)
				bad++;
		}
	decode = (now_ns() - t0) / ((double)ROUNDS * DEVICES);

	/* The same adverts built and copied, not decoded: the loop's own cost, subtracted. */
	t0 = now_ns();
	for (unsigned r = 0; r < ROUNDS; r++)
		for (unsigned i = 0; i < DEVICES; i++) {
			pvvx(&adv, data, i, r);
			memcpy(&copy, &adv, sizeof(copy));
			s.sum += copy.svc[0].data[13];
		}
	copy_ns = (now_ns() - t0) / ((double)ROUNDS * DEVICES);

	if (ble_key_parse("231d39c1d7cc1ab1aee224cd096db932", &key) < 0)
		return 1;
	memset(&adv, 0, sizeof(adv));
	ble_addr_parse("54:48:E6:8F:80:A5", adv.addr);
	adv.n_svc = 1;
	ble_uuid16(0xfcd2, adv.svc[0].uuid);
	adv.svc[0].data = enc;
	adv.svc[0].len = sizeof(enc);
	t0 = now_ns();
	for (unsigned r = 0; r < ROUNDS * 20; r++) {
		struct ble_dev_state fresh = { 0 };

		if (ble_adv_decode(BLE_FMT_BTHOME, &adv, &key, &fresh, NULL, 0, emit, &s, err, sizeof(err)) <= 0)
			bad++;
	}
	bthome = (now_ns() - t0) / (ROUNDS * 20.0);

	printf("decode_ns=%.1f bthome_ns=%.1f copy_ns=%.1f values=%u failed=%u (checksum %g)\n",
	       decode - copy_ns, bthome, copy_ns, s.n, bad, s.sum);
	return bad ? 1 : 0;
}
