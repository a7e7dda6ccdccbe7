/* SPDX-License-Identifier: MIT */
/*
 * ble-adv.c - the format table and the entry points of the decoders.
 */
#include "ble-adv.h"

#include <errno.h>
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

int ble_format_parse(const char *name, enum ble_format *out)
{
	for (int i = 0; i < BLE_FMT_COUNT; i++)
		if (strcmp(name, format_names[i]) == 0) {
			*out = (enum ble_format)i;
			return 0;
		}
	return -EINVAL;
}

const char *ble_format_name(enum ble_format fmt)
{
	return (unsigned)fmt < BLE_FMT_COUNT ? format_names[fmt] : "?";
}

int ble_adv_detect(const struct ble_adv *adv, enum ble_format *out)
{
	(void)adv;
	(void)out;
	return -ENOMSG;
}

int ble_adv_decode(enum ble_format fmt, const struct ble_adv *adv, const struct ble_key *key,
                   struct ble_dev_state *st, const struct ble_raw_field *raw, size_t n_raw,
                   ble_emit_fn *emit, void *ctx, char *err, size_t errlen)
{
	(void)fmt, (void)adv, (void)key, (void)st, (void)raw, (void)n_raw;
	(void)emit, (void)ctx, (void)err, (void)errlen;
	return -ENOMSG;
}
