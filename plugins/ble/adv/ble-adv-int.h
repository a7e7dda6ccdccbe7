/* SPDX-License-Identifier: MIT */
/*
 * ble-adv-int.h - what the decoders of ble-adv share, not part of the
 * interface: the byte readers and the sink that holds the values of one
 * advertisement until it has decoded completely (a malformed one emits
 * nothing, not its first half).
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ble-adv.h"

#define BLE_SINK_MAX 128
#define BLE_SINK_TEXT 2048
#define BLE_FIELD_MAX 40

struct ble_value {
	const char *base;       /* the fixed name (or a raw field's), for counting repeats */
	const char *name;       /* BASE, or REPEATED for a repeat */
	char repeated[BLE_FIELD_MAX];
	double value;
	int text;               /* offset into the sink's text, or -1 for a number */
};

struct ble_sink {
	size_t n;
	struct ble_value v[BLE_SINK_MAX];
	size_t text_used;
	char text[BLE_SINK_TEXT];
	char *err;
	size_t errlen;
};

/* Formats an error into the sink's ERR and returns CODE. */
int ble_fail(struct ble_sink *s, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * Adds a number (TEXT NULL) or a text of TLEN bytes to the sink. With
 * REPEAT, a second value of the same BASE is named BASE_2, then BASE_3.
 * -EBADMSG (with the error set) when the sink is full.
 */
int ble_put(struct ble_sink *s, const char *base, bool repeat, double value, const char *text, size_t tlen);
static inline int ble_put_num(struct ble_sink *s, const char *base, double value) {
	return ble_put(s, base, false, value, NULL, 0);
}
static inline int ble_put_text(struct ble_sink *s, const char *base, const char *text, size_t tlen) {
	return ble_put(s, base, false, 0, text, tlen);
}
/* Adds LEN bytes as lower-case hex text. */
int ble_put_hex(struct ble_sink *s, const char *base, bool repeat, const uint8_t *data, size_t len);

/* Unsigned and sign-extended integers of N (1..8) bytes, little or big endian. */
uint64_t ble_get_le(const uint8_t *p, size_t n);
uint64_t ble_get_be(const uint8_t *p, size_t n);
int64_t ble_sign(uint64_t v, size_t n);

/* The data of service UUID16 / of manufacturer COMPANY in ADV, or NULL. */
const struct ble_svc *ble_find_svc16(const struct ble_adv *adv, uint16_t uuid16);
const struct ble_svc *ble_find_svc(const struct ble_adv *adv, const uint8_t uuid[16]);
const struct ble_mfr *ble_find_mfr(const struct ble_adv *adv, uint16_t company);

/* Service and company ids the formats use. */
#define BLE_UUID_BTHOME 0xfcd2
#define BLE_UUID_ENVIRONMENTAL 0x181a   /* ATC1441 and pvvx */
#define BLE_UUID_EDDYSTONE 0xfeaa
#define BLE_COMPANY_APPLE 0x004c
#define BLE_COMPANY_RUUVI 0x0499

/*
 * One decoder per format, all with the same contract: values into the
 * sink, the state ST updated only through *RET_SEQ / *RET_COUNTER (the
 * caller stores them once everything has decoded), so that a failed
 * decode leaves ST alone. Returns 0, 1 for a duplicate, or a negative errno.
 */
struct ble_dec_args {
	const struct ble_adv *adv;
	const struct ble_key *key;
	const struct ble_dev_state *st;   /* NULL: no de-duplication */
	const struct ble_raw_field *raw;
	size_t n_raw;
	struct ble_dev_state next;        /* the state after this packet, when it emits */
};
int ble_dec_bthome(struct ble_dec_args *a, struct ble_sink *s);
/* Whether BASE (without a repetition suffix) is a value BTHome emits. */
bool ble_bthome_field_known(const char *base);
int ble_dec_ruuvi5(struct ble_dec_args *a, struct ble_sink *s);
int ble_dec_atc1441(struct ble_dec_args *a, struct ble_sink *s);
int ble_dec_pvvx(struct ble_dec_args *a, struct ble_sink *s);
int ble_dec_ibeacon(struct ble_dec_args *a, struct ble_sink *s);
int ble_dec_eddystone(struct ble_dec_args *a, struct ble_sink *s);
int ble_dec_raw(struct ble_dec_args *a, struct ble_sink *s);

/* True when ST (may be NULL) last emitted sequence number SEQ. */
bool ble_seen_seq(const struct ble_dev_state *st, uint32_t seq);
