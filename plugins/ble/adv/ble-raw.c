/* SPDX-License-Identifier: MIT */
/*
 * ble-raw.c - raw fields: a number at a byte offset of manufacturer or
 * service data (or of a GATT characteristic value), for devices no decoder
 * knows. Types and byte orders are the Modbus driver's (mb-codec.h), read
 * over 16-bit words: CDAB swaps the words, BADC the bytes in each word,
 * DCBA both (little endian); 8-bit values have no order, 24-bit ones only
 * ABCD and DCBA.
 */
#include "ble-adv-int.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <strings.h>

const char *const ble_raw_type_names[] = {
	[BLE_RAW_BOOL] = "bool",
	[BLE_RAW_INT8] = "int8",
	[BLE_RAW_UINT8] = "uint8",
	[BLE_RAW_INT16] = "int16",
	[BLE_RAW_UINT16] = "uint16",
	[BLE_RAW_INT24] = "int24",
	[BLE_RAW_UINT24] = "uint24",
	[BLE_RAW_INT32] = "int32",
	[BLE_RAW_UINT32] = "uint32",
	[BLE_RAW_INT64] = "int64",
	[BLE_RAW_UINT64] = "uint64",
	[BLE_RAW_FLOAT32] = "float32",
	[BLE_RAW_FLOAT64] = "float64",
	[BLE_RAW_TYPE_COUNT] = NULL,
};

const char *const ble_raw_order_names[] = {
	[BLE_RAW_ABCD] = "ABCD",
	[BLE_RAW_CDAB] = "CDAB",
	[BLE_RAW_BADC] = "BADC",
	[BLE_RAW_DCBA] = "DCBA",
	[BLE_RAW_ORDER_COUNT] = NULL,
};

static const uint8_t type_size[BLE_RAW_TYPE_COUNT] = {
	[BLE_RAW_BOOL] = 1, [BLE_RAW_INT8] = 1, [BLE_RAW_UINT8] = 1,
	[BLE_RAW_INT16] = 2, [BLE_RAW_UINT16] = 2, [BLE_RAW_INT24] = 3, [BLE_RAW_UINT24] = 3,
	[BLE_RAW_INT32] = 4, [BLE_RAW_UINT32] = 4, [BLE_RAW_INT64] = 8, [BLE_RAW_UINT64] = 8,
	[BLE_RAW_FLOAT32] = 4, [BLE_RAW_FLOAT64] = 8,
};

int ble_raw_type_parse(const char *name, enum ble_raw_type *out) {
	for (int i = 0; i < BLE_RAW_TYPE_COUNT; i++)
		if (strcmp(name, ble_raw_type_names[i]) == 0) {
			*out = (enum ble_raw_type)i;
			return 0;
		}
	return -EINVAL;
}

int ble_raw_order_parse(const char *name, enum ble_raw_order *out) {
	if (strcasecmp(name, "big") == 0) {
		*out = BLE_RAW_ABCD;
		return 0;
	}
	if (strcasecmp(name, "little") == 0) {
		*out = BLE_RAW_DCBA;
		return 0;
	}
	for (int i = 0; i < BLE_RAW_ORDER_COUNT; i++)
		if (strcmp(name, ble_raw_order_names[i]) == 0) {
			*out = (enum ble_raw_order)i;
			return 0;
		}
	return -EINVAL;
}

size_t ble_raw_type_size(enum ble_raw_type type) {
	return (unsigned)type < BLE_RAW_TYPE_COUNT ? type_size[type] : 0;
}

bool ble_raw_order_valid(enum ble_raw_type type, enum ble_raw_order order) {
	if ((unsigned)order >= BLE_RAW_ORDER_COUNT || (unsigned)type >= BLE_RAW_TYPE_COUNT)
		return false;
	if (type_size[type] == 3)
		return order == BLE_RAW_ABCD || order == BLE_RAW_DCBA;
	return true;
}

/* The N bytes at P in most significant first order, as ORDER says they sit. */
static void to_big_endian(const uint8_t *p, size_t n, enum ble_raw_order order, uint8_t *out) {
	bool swap_words = order == BLE_RAW_CDAB || order == BLE_RAW_DCBA;
	bool swap_bytes = order == BLE_RAW_BADC || order == BLE_RAW_DCBA;

	if (n == 1 || n == 3) {
		for (size_t i = 0; i < n; i++)
			out[i] = order == BLE_RAW_DCBA ? p[n - 1 - i] : p[i];
		return;
	}
	for (size_t w = 0; w < n / 2; w++) {
		const uint8_t *src = p + 2 * (swap_words ? n / 2 - 1 - w : w);

		out[2 * w] = swap_bytes ? src[1] : src[0];
		out[2 * w + 1] = swap_bytes ? src[0] : src[1];
	}
}

int ble_raw_value(const struct ble_raw_field *f, const uint8_t *data, size_t len, double *out) {
	uint8_t b[8];
	size_t n = ble_raw_type_size(f->type);
	double v, scale = f->scale == 0 ? 1 : f->scale;
	uint64_t u;

	if (!n || !ble_raw_order_valid(f->type, f->order) || (f->type == BLE_RAW_BOOL && f->bit > 7))
		return -EINVAL;
	if (f->offset > len || len - f->offset < n)
		return -EBADMSG;
	to_big_endian(data + f->offset, n, f->order, b);
	u = ble_get_be(b, n);
	switch (f->type) {
	case BLE_RAW_BOOL:
		v = (double)(u >> f->bit & 1);
		break;
	case BLE_RAW_INT8:
	case BLE_RAW_INT16:
	case BLE_RAW_INT24:
	case BLE_RAW_INT32:
	case BLE_RAW_INT64:
		v = (double)ble_sign(u, n);
		break;
	case BLE_RAW_FLOAT32: {
		uint32_t u32 = (uint32_t)u;
		float fl;

		memcpy(&fl, &u32, sizeof(fl));
		v = fl;
		break;
	}
	case BLE_RAW_FLOAT64:
		memcpy(&v, &u, sizeof(v));
		break;
	default:
		v = (double)u;
	}
	/* a NaN or an infinity is no reading */
	if (!isfinite(v))
		return -EBADMSG;
	if (f->type != BLE_RAW_BOOL)
		v = v * scale + f->add;
	*out = v;
	return 0;
}

int ble_dec_raw(struct ble_dec_args *a, struct ble_sink *s) {
	size_t found = 0;

	for (size_t i = 0; i < a->n_raw; i++) {
		const struct ble_raw_field *f = &a->raw[i];
		const uint8_t *data;
		size_t len;
		double v;
		int r;

		if (f->source == BLE_RAW_MFR) {
			const struct ble_mfr *m = ble_find_mfr(a->adv, f->company);

			if (!m)
				continue;
			data = m->data, len = m->len;
		} else {
			const struct ble_svc *sv = ble_find_svc(a->adv, f->uuid);

			if (!sv)
				continue;
			data = sv->data, len = sv->len;
		}
		found++;
		r = ble_raw_value(f, data, len, &v);
		if (r == -EINVAL)
			return ble_fail(s, r, "field %s: invalid type, order or bit", f->name);
		if (r < 0)
			return ble_fail(s, r, "field %s: no %s at byte %zu of %zu bytes", f->name,
			                ble_raw_type_names[f->type], f->offset, len);
		if (ble_put_num(s, f->name, v) < 0)
			return -EBADMSG;
	}
	if (!found)
		return ble_fail(s, -ENOMSG, "none of the raw fields' data is in the advertisement");
	return 0;
}
