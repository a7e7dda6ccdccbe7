/* SPDX-License-Identifier: MIT */
/*
 * ble-adv.h - Bluetooth LE advertisement decoders, without an adapter.
 *
 * Pure functions from the bytes of one advertisement (as BlueZ reports its
 * ManufacturerData and ServiceData) to readings: BTHome v2 (plain and
 * AES-CCM encrypted), Ruuvi data format 5, the ATC1441 and pvvx custom
 * firmware of Xiaomi thermometers, iBeacon, Eddystone UID/URL/TLM, and
 * raw fields at byte offsets. Callable from any thread and from a fuzzer;
 * the only state is the caller's struct ble_dev_state per device.
 *
 * Field names are fixed strings, listed in docs/ble-decoders.md.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * One advertisement, as BlueZ reports it on org.bluez.Device1: Address
 * (ble_addr_parse), RSSI, ManufacturerData (a{qv}: company id to bytes)
 * and ServiceData (a{sv}: UUID string, ble_uuid_parse, to bytes). The data
 * pointers are borrowed for the call; entries beyond the 8 of each kind
 * are not looked at.
 */
#define BLE_ADV_MAX_MFR 8
#define BLE_ADV_MAX_SVC 8
struct ble_adv {
	uint8_t addr[6];   /* device address, most significant byte first, as printed */
	bool has_rssi;
	int16_t rssi;
	size_t n_mfr;
	struct ble_mfr {
		uint16_t company;      /* Bluetooth SIG company identifier */
		const uint8_t *data;   /* the bytes after the company id */
		size_t len;
	} mfr[BLE_ADV_MAX_MFR];
	size_t n_svc;
	struct ble_svc {
		uint8_t uuid[16];      /* big endian, as printed; 16-bit UUIDs expanded with the base UUID */
		const uint8_t *data;   /* the bytes after the UUID */
		size_t len;
	} svc[BLE_ADV_MAX_SVC];
};

/* Fills UUID with the 16-bit UUID SHORT expanded with the Bluetooth base UUID. */
void ble_uuid16(uint16_t shortid, uint8_t uuid[16]);
/* The 16-bit UUID in UUID, or -1 when UUID is not on the base UUID. */
int ble_uuid_short(const uint8_t uuid[16]);
/* Parses "0000fcd2-0000-1000-8000-00805f9b34fb" or "fcd2" (also "0xfcd2"). */
int ble_uuid_parse(const char *text, uint8_t uuid[16]);
/* Parses "AA:BB:CC:DD:EE:FF" (either case) into ADDR, most significant first. */
int ble_addr_parse(const char *text, uint8_t addr[6]);
/* Prints ADDR as "AA:BB:CC:DD:EE:FF"; BUF holds at least BLE_ADDR_STRLEN bytes. */
#define BLE_ADDR_STRLEN 18
void ble_addr_format(const uint8_t addr[6], char *buf);

enum ble_format {
	BLE_FMT_BTHOME,
	BLE_FMT_RUUVI5,
	BLE_FMT_ATC1441,
	BLE_FMT_PVVX,
	BLE_FMT_IBEACON,
	BLE_FMT_EDDYSTONE,
	BLE_FMT_RAW,
	BLE_FMT_COUNT
};

/* "bthome", "ruuvi", "atc1441", "pvvx", "ibeacon", "eddystone", "raw"; -EINVAL otherwise. */
int ble_format_parse(const char *name, enum ble_format *out);
const char *ble_format_name(enum ble_format fmt);

/*
 * Whether FMT can emit a value named FIELD (docs/ble-decoders.md), so that
 * a misspelt field is refused when the configuration loads instead of
 * never getting a value. BTHome's repeated objects ("temperature_2") count
 * as their first; for BLE_FMT_RAW the configuration names the fields, so
 * any name is one.
 */
bool ble_format_field_known(enum ble_format fmt, const char *field);

/*
 * For scanning: which known format ADV is (never BLE_FMT_RAW), or -ENOMSG.
 * Looks at the markers only (UUID, company id, header bytes, length), not
 * at whether the payload then decodes.
 */
int ble_adv_detect(const struct ble_adv *adv, enum ble_format *out);

/*
 * The stable id a format carries in its payload, as text into BUF (N
 * bytes): Ruuvi's MAC "AA:BB:CC:DD:EE:FF", iBeacon's
 * "UUID/major/minor", Eddystone UID's "namespace/instance" (hex).
 * -ENOMSG when ADV carries none in FMT, -ENOBUFS when N is too small.
 */
#define BLE_STABLE_ID_MAX 64
int ble_adv_stable_id(enum ble_format fmt, const struct ble_adv *adv, char *buf, size_t n);

/* A BTHome bind key (16 bytes, from a key file). */
struct ble_key {
	uint8_t key[16];
};
/* Parses a key as 32 hex digits (surrounding white space allowed). */
int ble_key_parse(const char *text, struct ble_key *out);

/*
 * Per device: what was last seen, for de-duplication and replay
 * protection. Zero-initialised means "nothing seen". The decoder updates
 * it only for a packet that decoded (not on a failure, not for a
 * duplicate).
 */
struct ble_dev_state {
	bool has_seq;
	uint32_t seq;         /* the format's packet id / sequence number last emitted */
	bool has_counter;
	uint32_t counter;     /* BTHome encryption counter last accepted */
	/* Set by every successful BTHome decode, for the caller: */
	bool trigger;         /* device info bit 2: sends only on events (no regular interval) */
	bool encrypted;       /* the last packet was encrypted */
};

/*
 * Receives each value: FIELD is a fixed name (docs/ble-decoders.md) or the
 * raw field's name; TEXT is NULL for a number, else the text reading (then
 * VALUE is 0). Both are valid only during the call.
 */
typedef void ble_emit_fn(void *ctx, const char *field, double value, const char *text);

/* Types and byte orders of raw fields; the names match the Modbus driver's where they fit. */
enum ble_raw_type {
	BLE_RAW_BOOL,   /* bit BIT of the byte at OFFSET */
	BLE_RAW_INT8,
	BLE_RAW_UINT8,
	BLE_RAW_INT16,
	BLE_RAW_UINT16,
	BLE_RAW_INT24,
	BLE_RAW_UINT24,
	BLE_RAW_INT32,
	BLE_RAW_UINT32,
	BLE_RAW_INT64,
	BLE_RAW_UINT64,
	BLE_RAW_FLOAT32,
	BLE_RAW_FLOAT64,
	BLE_RAW_TYPE_COUNT
};
/* ABCD: big endian; DCBA: little endian; CDAB, BADC: word- or byte-swapped (the Modbus meanings). */
enum ble_raw_order {
	BLE_RAW_ABCD,
	BLE_RAW_CDAB,
	BLE_RAW_BADC,
	BLE_RAW_DCBA,
	BLE_RAW_ORDER_COUNT
};
enum ble_raw_source {
	BLE_RAW_MFR,    /* manufacturer data of COMPANY */
	BLE_RAW_SVC,    /* service data of UUID */
};
/* NULL-terminated name lists indexed by the enums, for config parsing. */
extern const char *const ble_raw_type_names[];
extern const char *const ble_raw_order_names[];
/* Parses "big"/"little" too (as ABCD/DCBA). */
int ble_raw_order_parse(const char *name, enum ble_raw_order *out);
int ble_raw_type_parse(const char *name, enum ble_raw_type *out);
/* Bytes a value of TYPE occupies. */
size_t ble_raw_type_size(enum ble_raw_type type);
/* True when ORDER applies to TYPE (24-bit values: ABCD and DCBA only). */
bool ble_raw_order_valid(enum ble_raw_type type, enum ble_raw_order order);

struct ble_raw_field {
	const char *name;         /* the field name emitted */
	enum ble_raw_source source;
	uint16_t company;         /* BLE_RAW_MFR */
	uint8_t uuid[16];         /* BLE_RAW_SVC */
	size_t offset;            /* byte offset into the data (after the company id or UUID) */
	enum ble_raw_type type;
	enum ble_raw_order order;
	unsigned bit;             /* BLE_RAW_BOOL: 0 = least significant */
	double scale;             /* value = raw * scale + add; 0 is taken as 1 */
	double add;
};

/*
 * Decodes ADV as FMT and calls EMIT for each value. KEY is the device's
 * BTHome bind key, NULL when none is configured. ST is the device's state
 * (NULL: no de-duplication, no replay protection). RAW/N_RAW are the fields
 * of BLE_FMT_RAW (ignored otherwise). On an error, ERR (ERRLEN bytes, may be
 * NULL) says why, and nothing was emitted.
 *
 * > 0: values emitted; 0: a duplicate (same packet id/sequence), nothing
 * emitted; -ENOMSG: not this format; -EBADMSG: malformed; -EACCES: plaintext
 * while a key is configured, encrypted without a key, or authentication
 * failed; -ESTALE: replayed counter.
 */
int ble_adv_decode(enum ble_format fmt, const struct ble_adv *adv, const struct ble_key *key,
                   struct ble_dev_state *st, const struct ble_raw_field *raw, size_t n_raw,
                   ble_emit_fn *emit, void *ctx, char *err, size_t errlen);

/*
 * Decodes raw field F from DATA (LEN bytes), e.g. a GATT characteristic
 * value (F's source is then ignored). -EBADMSG when DATA is too short or
 * the value is a NaN or an infinity; -EINVAL for a bad type, order or bit.
 */
int ble_raw_value(const struct ble_raw_field *f, const uint8_t *data, size_t len, double *out);
