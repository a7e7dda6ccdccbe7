/* SPDX-License-Identifier: MIT */
/*
 * Bluetooth LE advertisements: every decoder of plugins/ble/adv on one
 * advertisement, with and without a BTHome bind key, twice with the same
 * device state; detection, stable ids and raw fields too.
 *
 * Input: a flags byte (bit 0: a key of 16 bytes follows), the device
 * address (6), the raw fields (a count 0-3, then 6 bytes each: source and
 * company or UUID16 (3), offset, type, order + bit), then sections of
 * type (0: service data of a 16-bit UUID, 1: of a 128-bit UUID, 2:
 * manufacturer data), id (2 or 16 bytes), length and data, each in a
 * buffer of exactly its length. Checked besides what the sanitizers see:
 * only the documented results, nothing emitted on failure and exactly the
 * count on success, an error text with every failure, finite numbers,
 * text within bounds; a packet that recorded a sequence or a counter is a
 * duplicate the second time; plaintext BTHome with a key and encrypted
 * BTHome without one are refused; what detection names decodes as that
 * format (or fails as malformed), never as "not this format".
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>

#include "ble-adv.h"
#include "fuzz-input.h"

struct count {
	int n;
	enum ble_format fmt;
};

static void check_value(void *ctx, const char *field, double value, const char *text) {
	struct count *c = ctx;

	FUZZ_ASSERT(field && field[0] && strlen(field) < 48);
	/* The plugin refuses fields not listed: what a decoder emits must be listed. */
	FUZZ_ASSERT(ble_format_field_known(c->fmt, field));
	if (text)
		FUZZ_ASSERT(strlen(text) <= 2 * 255 + 1 && value == 0);
	else
		FUZZ_ASSERT(isfinite(value));
	c->n++;
}

static int decode(enum ble_format fmt, const struct ble_adv *adv, const struct ble_key *key,
                  struct ble_dev_state *st, const struct ble_raw_field *raw, size_t n_raw) {
	struct count c = { .fmt = fmt };
	char err[128];
	int r = ble_adv_decode(fmt, adv, key, st, raw, n_raw, check_value, &c, err, sizeof(err));

	FUZZ_ASSERT(r >= 0 || r == -ENOMSG || r == -EBADMSG || r == -EACCES || r == -ESTALE ||
	            (fmt == BLE_FMT_RAW && r == -EINVAL));
	FUZZ_ASSERT(r > 0 ? c.n == r : c.n == 0);
	FUZZ_ASSERT(r >= 0 || (err[0] && strlen(err) < sizeof(err)));
	return r;
}

static void run_format(enum ble_format fmt, const struct ble_adv *adv, const struct ble_key *key,
                       const struct ble_raw_field *raw, size_t n_raw) {
	struct ble_dev_state st = {0}, before;
	int r1, r2;

	r1 = decode(fmt, adv, key, &st, raw, n_raw);
	FUZZ_ASSERT(r1 == decode(fmt, adv, key, NULL, raw, n_raw));
	before = st;
	r2 = decode(fmt, adv, key, &st, raw, n_raw);
	if (r1 > 0 && (st.has_seq || st.has_counter))
		FUZZ_ASSERT(r2 == 0);
	else
		FUZZ_ASSERT(r2 == r1);
	FUZZ_ASSERT(before.has_seq == st.has_seq && before.seq == st.seq);
	FUZZ_ASSERT(before.has_counter == st.has_counter && before.counter == st.counter);
}

static void check_detect(const struct ble_adv *adv, const struct ble_key *key) {
	char id[BLE_STABLE_ID_MAX];
	enum ble_format f;

	for (int i = 0; i < BLE_FMT_COUNT; i++) {
		int r = ble_adv_stable_id((enum ble_format)i, adv, id, sizeof(id));

		FUZZ_ASSERT(r == 0 || r == -ENOMSG);
		if (r == 0)
			FUZZ_ASSERT(id[0] && strlen(id) < sizeof(id));
	}
	if (ble_adv_detect(adv, &f) < 0)
		return;
	FUZZ_ASSERT(f != BLE_FMT_RAW && (unsigned)f < BLE_FMT_COUNT);
	FUZZ_ASSERT(decode(f, adv, key, NULL, NULL, 0) != -ENOMSG);
}

static void check_bthome_keys(const struct ble_adv *adv, const struct ble_key *key) {
	for (size_t i = 0; i < adv->n_svc; i++)
		if (ble_uuid_short(adv->svc[i].uuid) == 0xfcd2) {
			const struct ble_svc *sv = &adv->svc[i];

			if (sv->len == 0 || sv->data[0] >> 5 != 2)
				return;
			if (sv->data[0] & 1)
				FUZZ_ASSERT(decode(BLE_FMT_BTHOME, adv, NULL, NULL, NULL, 0) == -EACCES);
			else if (key)
				FUZZ_ASSERT(decode(BLE_FMT_BTHOME, adv, key, NULL, NULL, 0) == -EACCES);
			return;
		}
}

static size_t read_raw(struct fuzz_in *in, struct ble_raw_field *raw) {
	size_t n = fuzz_u8(in) % 4;

	for (size_t i = 0; i < n; i++) {
		struct ble_raw_field *f = &raw[i];
		uint8_t src = fuzz_u8(in), ob;

		memset(f, 0, sizeof(*f));
		f->name = i == 0 ? "a" : i == 1 ? "b" : "c";
		f->source = src & 1 ? BLE_RAW_SVC : BLE_RAW_MFR;
		f->company = fuzz_u16(in);
		ble_uuid16(f->company, f->uuid);
		f->offset = fuzz_u8(in);
		f->type = (enum ble_raw_type)(fuzz_u8(in) % (BLE_RAW_TYPE_COUNT + 1));
		ob = fuzz_u8(in);
		f->order = (enum ble_raw_order)(ob % (BLE_RAW_ORDER_COUNT + 1));
		f->bit = ob >> 4;
		f->scale = src >> 1 & 1 ? 0.5 : 0;
		f->add = src >> 2 & 1 ? -3 : 0;
	}
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	struct fuzz_in in = {data, size};
	uint8_t *bufs[BLE_ADV_MAX_MFR + BLE_ADV_MAX_SVC];
	struct ble_raw_field raw[3];
	struct ble_adv adv = {0};
	struct ble_key key;
	size_t n_bufs = 0, n_raw;
	uint8_t flags = fuzz_u8(&in);
	bool has_key = flags & 1;

	if (has_key)
		for (int i = 0; i < 16; i++)
			key.key[i] = fuzz_u8(&in);
	for (int i = 0; i < 6; i++)
		adv.addr[i] = fuzz_u8(&in);
	n_raw = read_raw(&in, raw);
	while (in.n > 0 && n_bufs < sizeof(bufs) / sizeof(bufs[0])) {
		uint8_t type = fuzz_u8(&in) % 3, id[16];
		size_t len;
		uint8_t *buf;

		if (type == 1)
			for (int i = 0; i < 16; i++)
				id[i] = fuzz_u8(&in);
		else
			ble_uuid16(fuzz_u16(&in), id);
		len = fuzz_u8(&in);
		if (len > in.n)
			len = in.n;
		buf = malloc(len ? len : 1);
		if (!buf)
			break;
		memcpy(buf, in.p, len);
		in.p += len, in.n -= len;
		bufs[n_bufs++] = buf;
		if (type == 2 && adv.n_mfr < BLE_ADV_MAX_MFR) {
			adv.mfr[adv.n_mfr++] = (struct ble_mfr){(uint16_t)(id[2] << 8 | id[3]), buf, len};
		} else if (type != 2 && adv.n_svc < BLE_ADV_MAX_SVC) {
			memcpy(adv.svc[adv.n_svc].uuid, id, 16);
			adv.svc[adv.n_svc].data = buf;
			adv.svc[adv.n_svc++].len = len;
		}
	}

	for (int f = 0; f < BLE_FMT_COUNT; f++) {
		run_format((enum ble_format)f, &adv, NULL, raw, n_raw);
		if (has_key)
			run_format((enum ble_format)f, &adv, &key, raw, n_raw);
	}
	check_detect(&adv, has_key ? &key : NULL);
	check_bthome_keys(&adv, has_key ? &key : NULL);
	for (size_t i = 0; i < n_raw; i++)
		for (size_t b = 0; b < adv.n_svc; b++) {
			double v;
			int r = ble_raw_value(&raw[i], adv.svc[b].data, adv.svc[b].len, &v);

			FUZZ_ASSERT(r == 0 || r == -EBADMSG || r == -EINVAL);
			FUZZ_ASSERT(r < 0 || isfinite(v));
		}
	for (size_t i = 0; i < n_bufs; i++)
		free(bufs[i]);
	return 0;
}
