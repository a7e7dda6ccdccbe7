/* SPDX-License-Identifier: MIT */
/*
 * ble-bthome.c - BTHome v2 (service data of UUID 0xFCD2), written from the
 * specification at bthome.io.
 *
 * The service data is a device information byte (bit 0 encrypted, bit 2
 * trigger based, bits 5-7 the version, 2) and then objects: an object id
 * and a value whose size the id fixes (text and raw carry a length byte).
 * Integers are little endian. An id this table does not know ends the
 * parse with an error: its size is unknown, so nothing after it can be
 * read, and a reading half decoded is worse than none.
 *
 * Encrypted: after the device info come the ciphertext of the objects, a
 * 4-byte counter and a 4-byte MIC; AES-128-CCM with the device's bind key,
 * no associated data, and the nonce MAC (6, as printed) + UUID (0xD2 0xFC)
 * + device info (1) + counter (4, as sent).
 */
#include "ble-adv-int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <nettle/ccm.h>
#include <nettle/memops.h>

enum obj_kind {
	OBJ_UINT,
	OBJ_SINT,
	OBJ_PACKET_ID,
	OBJ_BUTTON,
	OBJ_DIMMER,
	OBJ_TEXT,
	OBJ_RAW,
	OBJ_FIRMWARE,   /* version bytes, most significant last, as text "4.2.1.0" */
};

struct obj {
	uint8_t len;       /* value bytes; 0 for text and raw (a length byte follows the id) */
	uint8_t kind;
	uint32_t num, den; /* value = raw * num / den */
	const char *name;
};

#define U(l, n, d, name) {l, OBJ_UINT, n, d, name}
#define S(l, n, d, name) {l, OBJ_SINT, n, d, name}
/* The binary sensors: one byte, 0 = off (normal), 1 = on (problem). */
#define B(name) {1, OBJ_UINT, 1, 1, name}

static const struct obj objects[256] = {
	[0x00] = {1, OBJ_PACKET_ID, 1, 1, "packet_id"},
	[0x01] = U(1, 1, 1, "battery"),
	[0x02] = S(2, 1, 100, "temperature"),
	[0x03] = U(2, 1, 100, "humidity"),
	[0x04] = U(3, 1, 100, "pressure"),
	[0x05] = U(3, 1, 100, "illuminance"),
	[0x06] = U(2, 1, 100, "mass_kg"),
	[0x07] = U(2, 1, 100, "mass_lb"),
	[0x08] = S(2, 1, 100, "dewpoint"),
	[0x09] = U(1, 1, 1, "count"),
	[0x0a] = U(3, 1, 1000, "energy"),
	[0x0b] = U(3, 1, 100, "power"),
	[0x0c] = U(2, 1, 1000, "voltage"),
	[0x0d] = U(2, 1, 1, "pm2_5"),
	[0x0e] = U(2, 1, 1, "pm10"),
	[0x0f] = B("generic"),
	[0x10] = B("power_on"),
	[0x11] = B("opening"),
	[0x12] = U(2, 1, 1, "co2"),
	[0x13] = U(2, 1, 1, "tvoc"),
	[0x14] = U(2, 1, 100, "moisture"),
	[0x15] = B("battery_low"),
	[0x16] = B("battery_charging"),
	[0x17] = B("carbon_monoxide"),
	[0x18] = B("cold"),
	[0x19] = B("connectivity"),
	[0x1a] = B("door"),
	[0x1b] = B("garage_door"),
	[0x1c] = B("gas_detected"),
	[0x1d] = B("heat"),
	[0x1e] = B("light"),
	[0x1f] = B("lock"),
	[0x20] = B("moisture_detected"),
	[0x21] = B("motion"),
	[0x22] = B("moving"),
	[0x23] = B("occupancy"),
	[0x24] = B("plug"),
	[0x25] = B("presence"),
	[0x26] = B("problem"),
	[0x27] = B("running"),
	[0x28] = B("safety"),
	[0x29] = B("smoke"),
	[0x2a] = B("sound"),
	[0x2b] = B("tamper"),
	[0x2c] = B("vibration"),
	[0x2d] = B("window"),
	[0x2e] = U(1, 1, 1, "humidity"),
	[0x2f] = U(1, 1, 1, "moisture"),
	[0x3a] = {1, OBJ_BUTTON, 1, 1, "button"},
	[0x3c] = {2, OBJ_DIMMER, 1, 1, "dimmer"},
	[0x3d] = U(2, 1, 1, "count"),
	[0x3e] = U(4, 1, 1, "count"),
	[0x3f] = S(2, 1, 10, "rotation"),
	[0x40] = U(2, 1, 1, "distance_mm"),
	[0x41] = U(2, 1, 10, "distance_m"),
	[0x42] = U(3, 1, 1000, "duration"),
	[0x43] = U(2, 1, 1000, "current"),
	[0x44] = U(2, 1, 100, "speed"),
	[0x45] = S(2, 1, 10, "temperature"),
	[0x46] = U(1, 1, 10, "uv_index"),
	[0x47] = U(2, 1, 10, "volume"),
	[0x48] = U(2, 1, 1, "volume_ml"),
	[0x49] = U(2, 1, 1000, "volume_flow_rate"),
	[0x4a] = U(2, 1, 10, "voltage"),
	[0x4b] = U(3, 1, 1000, "gas"),
	[0x4c] = U(4, 1, 1000, "gas"),
	[0x4d] = U(4, 1, 1000, "energy"),
	[0x4e] = U(4, 1, 1000, "volume"),
	[0x4f] = U(4, 1, 1000, "water"),
	[0x50] = U(4, 1, 1, "timestamp"),
	[0x51] = U(2, 1, 1000, "acceleration"),
	[0x52] = U(2, 1, 1000, "gyroscope"),
	[0x53] = {0, OBJ_TEXT, 1, 1, "text"},
	[0x54] = {0, OBJ_RAW, 1, 1, "raw"},
	[0x55] = U(4, 1, 1000, "volume_storage"),
	[0x56] = U(2, 1, 1, "conductivity"),
	[0x57] = S(1, 1, 1, "temperature"),
	[0x58] = S(1, 35, 100, "temperature"),
	[0x59] = S(1, 1, 1, "count"),
	[0x5a] = S(2, 1, 1, "count"),
	[0x5b] = S(4, 1, 1, "count"),
	[0x5c] = S(4, 1, 100, "power"),
	[0x5d] = S(2, 1, 1000, "current"),
	[0x5e] = U(2, 1, 100, "direction"),
	[0x5f] = U(2, 1, 10, "precipitation"),
	[0x60] = U(1, 1, 1, "channel"),
	[0x61] = U(2, 1, 1, "rotational_speed"),
	[0x62] = S(4, 1, 1000000, "speed"),
	[0x63] = S(4, 1, 1000000, "acceleration"),
	[0x64] = U(1, 1, 1, "light_level"),
	[0xf0] = U(2, 1, 1, "device_type_id"),
	[0xf1] = {4, OBJ_FIRMWARE, 1, 1, "firmware_version"},
	[0xf2] = {3, OBJ_FIRMWARE, 1, 1, "firmware_version"},
};

static const char *const button_events[] = {
	"none", "press", "double_press", "triple_press", "long_press", "long_double_press",
	"long_triple_press",
};
static const char *const dimmer_events[] = {"none", "rotate_left", "rotate_right"};

/* Strict UTF-8 (no overlong forms, no surrogates) without NUL. */
static bool utf8_valid(const uint8_t *p, size_t n) {
	size_t i = 0;

	while (i < n) {
		uint8_t c = p[i];
		size_t k;
		uint32_t cp;

		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			k = 1, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			k = 2, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			k = 3, cp = c & 0x07;
		else
			return false;
		if (n - i <= k)
			return false;
		for (size_t j = 1; j <= k; j++) {
			if ((p[i + j] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i + j] & 0x3f);
		}
		if ((k == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
		    (k == 3 && (cp < 0x10000 || cp > 0x10ffff)))
			return false;
		i += k + 1;
	}
	return true;
}

bool ble_bthome_field_known(const char *base) {
	if (strcmp(base, "dimmer_steps") == 0)
		return true;
	for (size_t i = 0; i < sizeof(objects) / sizeof(objects[0]); i++)
		if (objects[i].name && objects[i].kind != OBJ_PACKET_ID && strcmp(objects[i].name, base) == 0)
			return true;
	return false;
}

static int put_event(struct ble_sink *s, const char *base, const char *const *names, size_t n,
                     uint8_t code) {
	char unknown[8];

	if (code < n)
		return ble_put(s, base, true, 0, names[code], strlen(names[code]));
	if (names == button_events && code == 0x80)
		return ble_put(s, base, true, 0, "hold_press", strlen("hold_press"));
	/* an event this table does not know yet: say which, keep the others */
	snprintf(unknown, sizeof(unknown), "0x%02x", code);
	return ble_put(s, base, true, 0, unknown, strlen(unknown));
}

static int put_object(struct ble_sink *s, const struct obj *o, const uint8_t *v, size_t len,
                      bool *has_pid, uint8_t *pid) {
	char fw[16];
	uint64_t u;

	switch (o->kind) {
	case OBJ_PACKET_ID:
		*has_pid = true;
		*pid = v[0];
		return 0;
	case OBJ_BUTTON:
		return put_event(s, o->name, button_events, 7, v[0]);
	case OBJ_DIMMER:
		if (put_event(s, o->name, dimmer_events, 3, v[0]) < 0)
			return -EBADMSG;
		return ble_put(s, "dimmer_steps", true, v[1], NULL, 0);
	case OBJ_TEXT:
		if (!utf8_valid(v, len))
			return ble_fail(s, -EBADMSG, "text object is not UTF-8");
		return ble_put(s, o->name, true, 0, (const char *)v, len);
	case OBJ_RAW:
		return ble_put_hex(s, o->name, true, v, len);
	case OBJ_FIRMWARE:
		if (len == 4)
			snprintf(fw, sizeof(fw), "%u.%u.%u.%u", v[3], v[2], v[1], v[0]);
		else
			snprintf(fw, sizeof(fw), "%u.%u.%u", v[2], v[1], v[0]);
		return ble_put(s, o->name, true, 0, fw, strlen(fw));
	case OBJ_SINT:
		u = ble_get_le(v, len);
		return ble_put(s, o->name, true, (double)ble_sign(u, len) * o->num / o->den, NULL, 0);
	default:
		u = ble_get_le(v, len);
		return ble_put(s, o->name, true, (double)u * o->num / o->den, NULL, 0);
	}
}

/* Parses the (plaintext) objects P of N bytes into the sink. */
static int parse_objects(struct ble_sink *s, const uint8_t *p, size_t n, bool *has_pid, uint8_t *pid) {
	size_t i = 0;

	while (i < n) {
		uint8_t id = p[i++];
		const struct obj *o = &objects[id];
		size_t len = o->len;
		int r;

		if (!o->name)
			return ble_fail(s, -EBADMSG, "unknown object id 0x%02x at byte %zu", id, i - 1);
		if (o->kind == OBJ_TEXT || o->kind == OBJ_RAW) {
			if (i == n)
				return ble_fail(s, -EBADMSG, "object 0x%02x has no length byte", id);
			len = p[i++];
		}
		if (n - i < len)
			return ble_fail(s, -EBADMSG, "object 0x%02x needs %zu bytes, %zu left", id, len, n - i);
		r = put_object(s, o, p + i, len, has_pid, pid);
		if (r < 0)
			return r;
		i += len;
	}
	return 0;
}

/* Decrypts and authenticates DATA (the service data, N >= 9) into OUT. */
static int decrypt(struct ble_dec_args *a, struct ble_sink *s, const uint8_t *data, size_t n,
                   uint8_t *out, uint32_t *ret_counter) {
	const uint8_t *counter = data + n - 8, *mic = data + n - 4;
	size_t clen = n - 9;
	uint8_t nonce[13], tag[4];
	struct ccm_aes128_ctx ctx;

	memcpy(nonce, a->adv->addr, 6);
	nonce[6] = BLE_UUID_BTHOME & 0xff;
	nonce[7] = BLE_UUID_BTHOME >> 8;
	nonce[8] = data[0];
	memcpy(nonce + 9, counter, 4);
	ccm_aes128_set_key(&ctx, a->key->key);
	ccm_aes128_set_nonce(&ctx, sizeof(nonce), nonce, 0, clen, sizeof(tag));
	ccm_aes128_decrypt(&ctx, clen, out, data + 1);
	ccm_aes128_digest(&ctx, sizeof(tag), tag);
	if (!memeql_sec(tag, mic, sizeof(tag)))
		return ble_fail(s, -EACCES, "BTHome authentication failed (wrong bind key, or altered)");
	*ret_counter = (uint32_t)ble_get_le(counter, 4);
	return 0;
}

int ble_dec_bthome(struct ble_dec_args *a, struct ble_sink *s) {
	const struct ble_svc *sv = ble_find_svc16(a->adv, BLE_UUID_BTHOME);
	uint8_t plain[256];
	const uint8_t *obj;
	size_t n_obj;
	uint32_t counter = 0;
	bool encrypted, has_pid = false;
	uint8_t info, pid = 0;
	int r;

	if (!sv || sv->len == 0)
		return ble_fail(s, -ENOMSG, "no BTHome service data (UUID 0xfcd2)");
	info = sv->data[0];
	if (info >> 5 != 2)
		return ble_fail(s, -EBADMSG, "BTHome version %u, not 2", info >> 5);
	encrypted = info & 1;
	if (!encrypted && a->key)
		return ble_fail(s, -EACCES, "plaintext BTHome while a bind key is configured");
	if (encrypted) {
		if (!a->key)
			return ble_fail(s, -EACCES, "encrypted BTHome and no bind key configured");
		if (sv->len < 9)
			return ble_fail(s, -EBADMSG, "encrypted BTHome of %zu bytes (needs 9)", sv->len);
		if (sv->len - 9 > sizeof(plain))
			return ble_fail(s, -EBADMSG, "encrypted BTHome of %zu bytes", sv->len);
		r = decrypt(a, s, sv->data, sv->len, plain, &counter);
		if (r < 0)
			return r;
		obj = plain;
		n_obj = sv->len - 9;
	} else {
		obj = sv->data + 1;
		n_obj = sv->len - 1;
	}
	r = parse_objects(s, obj, n_obj, &has_pid, &pid);
	if (r < 0)
		return r;
	if (encrypted && a->st && a->st->has_counter) {
		if (counter < a->st->counter)
			return ble_fail(s, -ESTALE, "BTHome counter %u is below the last accepted %u "
			                "(a replay, or the device restarted its counter)",
			                counter, a->st->counter);
		if (counter == a->st->counter)
			return 1;
	}
	if (has_pid && ble_seen_seq(a->st, pid))
		return 1;
	if (encrypted) {
		a->next.has_counter = true;
		a->next.counter = counter;
	}
	if (has_pid) {
		a->next.has_seq = true;
		a->next.seq = pid;
	}
	a->next.trigger = info & 4;
	a->next.encrypted = encrypted;
	return 0;
}
