/* SPDX-License-Identifier: MIT */
/*
 * The advertisement decoders against the formats' published examples and
 * test vectors (the BTHome specification's, including its encrypted
 * example; Ruuvi's data format 5 vectors: valid, maximum, minimum and
 * invalid), and hand-built packets for the layouts that publish none;
 * then truncated and over-long packets, sentinels, duplicates, replays,
 * wrong keys and plaintext where a key is configured. A failed decode
 * must emit nothing.
 */
#include <errno.h>
#include <string.h>

#include "adv-text.h"
#include "ble-adv.h"
#include "test.h"

/* The BTHome specification's encryption example. */
#define SPEC_MAC "addr=54:48:E6:8F:80:A5 "
#define SPEC_KEY "231d39c1d7cc1ab1aee224cd096db932"
#define SPEC_ENC "41a47266c95f730011223378237214"

static uint8_t buf[4096];

static int decode_ex(enum ble_format fmt, const char *line, const char *key, struct ble_dev_state *st,
                     const struct ble_raw_field *raw, size_t n_raw, struct got *g, char *err) {
	struct ble_adv adv;
	struct ble_key k;
	char e[256];
	int r;

	ASSERT_OK(adv_from_text(line, &adv, buf, sizeof(buf)));
	if (key)
		ASSERT_OK(ble_key_parse(key, &k));
	memset(g, 0, sizeof(*g));
	r = ble_adv_decode(fmt, &adv, key ? &k : NULL, st, raw, n_raw, got_emit, g, e, sizeof(e));
	if (r <= 0)
		ASSERT_EQ(g->n, 0);
	else
		ASSERT_EQ(g->n, r);
	if (r < 0)
		ASSERT(e[0]); /* every failure says why */
	/* The plugin refuses a field not in the list: every emitted one must be in it. */
	for (int i = 0; i < g->n; i++)
		if (!ble_format_field_known(fmt, g->v[i].field))
			TEST_FAIL("%s emitted \"%s\", which ble_format_field_known() does not list",
			          ble_format_name(fmt), g->v[i].field);
	if (err)
		strcpy(err, e);
	return r;
}

static int decode(enum ble_format fmt, const char *line, const char *key, struct ble_dev_state *st,
                  struct got *g) {
	return decode_ex(fmt, line, key, st, NULL, 0, g, NULL);
}

static int find(const struct got *g, const char *field) {
	for (int i = 0; i < g->n; i++)
		if (strcmp(g->v[i].field, field) == 0)
			return i;
	return -1;
}

static double num(const struct got *g, const char *field) {
	int i = find(g, field);

	if (i < 0 || g->v[i].is_text)
		TEST_FAIL("no number %s", field);
	return g->v[i].value;
}

static const char *text(const struct got *g, const char *field) {
	int i = find(g, field);

	if (i < 0 || !g->v[i].is_text)
		TEST_FAIL("no text %s", field);
	return g->v[i].text;
}

#define ASSERT_NUM(g, field, want) ASSERT_DOUBLE_EQ(num(g, field), want, 1e-9 * (1 + fabs((double)(want))))

/* One BTHome object (plaintext, no packet id) and the number it must give. */
static void bthome_one(const char *objects, const char *field, double want) {
	char line[512];
	struct got g;

	snprintf(line, sizeof(line), "svc=fcd2:40%s", objects);
	ASSERT_EQ(decode(BLE_FMT_BTHOME, line, NULL, NULL, &g), 1);
	ASSERT_STR_EQ(g.v[0].field, field);
	ASSERT_DOUBLE_EQ(g.v[0].value, want, 1e-9 * (1 + fabs(want)));
}

static void test_bthome_objects(void) {
	/* the examples of the specification's object table */
	bthome_one("0161", "battery", 97);
	bthome_one("02ca09", "temperature", 25.06);
	bthome_one("03bf13", "humidity", 50.55);
	bthome_one("04138a01", "pressure", 1008.83);
	bthome_one("05138a14", "illuminance", 13460.67);
	bthome_one("065e1f", "mass_kg", 80.3);
	bthome_one("073e1d", "mass_lb", 74.86);
	bthome_one("08ca06", "dewpoint", 17.38);
	bthome_one("0960", "count", 96);
	bthome_one("0a138a14", "energy", 1346.067);
	bthome_one("0b021b00", "power", 69.14);
	bthome_one("0c020c", "voltage", 3.074);
	bthome_one("0d120c", "pm2_5", 3090);
	bthome_one("0e021c", "pm10", 7170);
	bthome_one("0f01", "generic", 1);
	bthome_one("1001", "power_on", 1);
	bthome_one("1100", "opening", 0);
	bthome_one("12e204", "co2", 1250);
	bthome_one("133301", "tvoc", 307);
	bthome_one("14020c", "moisture", 30.74);
	bthome_one("1501", "battery_low", 1);
	bthome_one("2101", "motion", 1);
	bthome_one("2d01", "window", 1);
	bthome_one("2e23", "humidity", 35);
	bthome_one("2f23", "moisture", 35);
	bthome_one("3d0960", "count", 24585);
	bthome_one("3e2a2c0960", "count", 1611213866);
	bthome_one("3f020c", "rotation", 307.4);
	bthome_one("400c00", "distance_mm", 12);
	bthome_one("414e00", "distance_m", 7.8);
	bthome_one("424e3400", "duration", 13.39);
	bthome_one("434e34", "current", 13.39);
	bthome_one("444e34", "speed", 133.9);
	bthome_one("451101", "temperature", 27.3);
	bthome_one("4632", "uv_index", 5.0);
	bthome_one("478756", "volume", 2215.1);
	bthome_one("48dc87", "volume_ml", 34780);
	bthome_one("49dc87", "volume_flow_rate", 34.78);
	bthome_one("4a020c", "voltage", 307.4);
	bthome_one("4b138a14", "gas", 1346.067);
	bthome_one("4c41018a01", "gas", 25821.505);
	bthome_one("4d12138a14", "energy", 344593.17);
	bthome_one("4e87562a01", "volume", 19551.879);
	bthome_one("4f87562a01", "water", 19551.879);
	bthome_one("505d396164", "timestamp", 1684093277);
	bthome_one("518756", "acceleration", 22.151);
	bthome_one("528756", "gyroscope", 22.151);
	bthome_one("5587562a01", "volume_storage", 19551.879);
	bthome_one("560c02", "conductivity", 524);
	bthome_one("57ea", "temperature", -22);
	bthome_one("5824", "temperature", 12.6);
	bthome_one("59ea", "count", -22);
	bthome_one("5aeaea", "count", -5398);
	bthome_one("5beaeaeaea", "count", -353703190);
	bthome_one("5c02fbffff", "power", -12.78);
	bthome_one("5d02ea", "current", -5.63);
	bthome_one("5ed7a0", "direction", 411.75);
	bthome_one("5f3f01", "precipitation", 31.9);
	bthome_one("6008", "channel", 8);
	bthome_one("61a00c", "rotational_speed", 3232);
	bthome_one("62806967ff", "speed", -10);
	bthome_one("63a0860100", "acceleration", 0.1);
	bthome_one("6405", "light_level", 5);
	bthome_one("f00100", "device_type_id", 1);
}

/*
 * Every object id of the specification at its size, and no other: each id
 * with zero bytes, then a battery object that must read 97 % (a wrong size
 * shifts it); every id not listed fails.
 */
static void test_bthome_sizes(void) {
	static const struct {
		uint8_t size;
		const char *ids;
	} sizes[] = {
		{1, "00 01 09 0f 10 11 15 16 17 18 19 1a 1b 1c 1d 1e 1f 20 21 22 23 24 25 26 27 28 29 2a 2b 2c 2d"
		    " 2e 2f 3a 46 57 58 59 60 64"},
		{2, "02 03 06 07 08 0c 0d 0e 12 13 14 3c 3d 3f 40 41 43 44 45 47 48 49 4a 51 52 56 5a 5d 5e 5f 61 f0"},
		{3, "04 05 0a 0b 42 4b f2"},
		{4, "3e 4c 4d 4e 4f 50 55 5b 5c 62 63 f1"},
	};
	bool listed[256] = {false};
	char line[64];
	struct got g;

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		for (const char *p = sizes[i].ids; *p; p += p[2] ? 3 : 2) {
			unsigned id = (unsigned)strtoul(p, NULL, 16);
			int r;

			listed[id] = true;
			snprintf(line, sizeof(line), "svc=fcd2:40%02x%.*s0161", id, 2 * sizes[i].size, "00000000");
			r = decode(BLE_FMT_BTHOME, line, NULL, NULL, &g);
			ASSERT_EQ(r, id == 0x00 ? 1 : id == 0x3c ? 3 : 2);
			ASSERT(strncmp(g.v[r - 1].field, "battery", 7) == 0);
			ASSERT_DOUBLE_EQ(g.v[r - 1].value, 97, 0);
		}
	/* text and raw: a length byte, then that many bytes */
	ASSERT_EQ(decode(BLE_FMT_BTHOME, "svc=fcd2:405300540201020161", NULL, NULL, &g), 3);
	ASSERT_STR_EQ(text(&g, "text"), "");
	ASSERT_NUM(&g, "battery", 97);
	listed[0x53] = listed[0x54] = true;
	for (unsigned id = 0; id < 256; id++) {
		if (listed[id])
			continue;
		snprintf(line, sizeof(line), "svc=fcd2:40%02x000000000161", id);
		ASSERT_EQ(decode(BLE_FMT_BTHOME, line, NULL, NULL, &g), -EBADMSG);
	}
}

static void test_bthome_text_events(void) {
	struct got g;

	ASSERT_EQ(decode(BLE_FMT_BTHOME, "svc=fcd2:40530c48656c6c6f20576f726c6421", NULL, NULL, &g), 1);
	ASSERT_STR_EQ(text(&g, "text"), "Hello World!");
	ASSERT_EQ(decode(BLE_FMT_BTHOME, "svc=fcd2:40540c48656c6c6f20576f726c6421", NULL, NULL, &g), 1);
	ASSERT_STR_EQ(text(&g, "raw"), "48656c6c6f20576f726c6421");
	/* not UTF-8, and a NUL inside */
	ASSERT_EQ(decode(BLE_FMT_BTHOME, "svc=fcd2:405302c328", NULL, NULL, &g), -EBADMSG);
	ASSERT_EQ(decode(BLE_FMT_BTHOME, "svc=fcd2:4053026100", NULL, NULL, &g), -EBADMSG);
	ASSERT_EQ(decode(BLE_FMT_BTHOME, "svc=fcd2:405303e282ac", NULL, NULL, &g), 1);
	ASSERT_STR_EQ(text(&g, "text"), "\xe2\x82\xac");

	/* a remote with four buttons: each its own field, "none" for the idle ones */
	ASSERT_EQ(decode(BLE_FMT_BTHOME, "svc=fcd2:403a003a013a043a80", NULL, NULL, &g), 4);
	ASSERT_STR_EQ(text(&g, "button"), "none");
	ASSERT_STR_EQ(text(&g, "button_2"), "press");
	ASSERT_STR_EQ(text(&g, "button_3"), "long_press");
	ASSERT_STR_EQ(text(&g, "button_4"), "hold_press");
	ASSERT_EQ(decode(BLE_FMT_BTHOME, "svc=fcd2:403a06", NULL, NULL, &g), 1);
	ASSERT_STR_EQ(text(&g, "button"), "long_triple_press");
	ASSERT_EQ(decode(BLE_FMT_BTHOME, "svc=fcd2:403a07", NULL, NULL, &g), 1);
	ASSERT_STR_EQ(text(&g, "button"), "0x07");
	ASSERT_EQ(decode(BLE_FMT_BTHOME, "svc=fcd2:403c0103", NULL, NULL, &g), 2);
	ASSERT_STR_EQ(text(&g, "dimmer"), "rotate_left");
	ASSERT_NUM(&g, "dimmer_steps", 3);
	ASSERT_EQ(decode(BLE_FMT_BTHOME, "svc=fcd2:403c0205", NULL, NULL, &g), 2);
	ASSERT_STR_EQ(text(&g, "dimmer"), "rotate_right");

	ASSERT_EQ(decode(BLE_FMT_BTHOME, "svc=fcd2:40f100010204", NULL, NULL, &g), 1);
	ASSERT_STR_EQ(text(&g, "firmware_version"), "4.2.1.0");
	ASSERT_EQ(decode(BLE_FMT_BTHOME, "svc=fcd2:40f2000106", NULL, NULL, &g), 1);
	ASSERT_STR_EQ(text(&g, "firmware_version"), "6.1.0");
}

static void test_bthome_spec_examples(void) {
	struct ble_dev_state st = {0};
	struct got g;

	/* the specification's first example: temperature and humidity, no packet id */
	ASSERT_EQ(decode(BLE_FMT_BTHOME, "svc=fcd2:4002ca0903bf13", NULL, &st, &g), 2);
	ASSERT_NUM(&g, "temperature", 25.06);
	ASSERT_NUM(&g, "humidity", 50.55);
	ASSERT(!st.trigger && !st.encrypted && !st.has_seq);

	/* repeated ids: temperature, temperature_2; the 0x45 temperature counts as the same field */
	ASSERT_EQ(decode(BLE_FMT_BTHOME, "svc=fcd2:4002ca0902bf13451101", NULL, NULL, &g), 3);
	ASSERT_NUM(&g, "temperature", 25.06);
	ASSERT_NUM(&g, "temperature_2", 50.55);
	ASSERT_NUM(&g, "temperature_3", 27.3);

	/* trigger based device (bit 2) */
	ASSERT_EQ(decode(BLE_FMT_BTHOME, "svc=fcd2:442101", NULL, &st, &g), 1);
	ASSERT(st.trigger);

	/* version 1 on this UUID, or no version: malformed */
	ASSERT_EQ(decode(BLE_FMT_BTHOME, "svc=fcd2:2002ca09", NULL, NULL, &g), -EBADMSG);
	ASSERT_EQ(decode(BLE_FMT_BTHOME, "svc=fcd2:", NULL, NULL, &g), -ENOMSG);
	ASSERT_EQ(decode(BLE_FMT_BTHOME, "svc=181c:4002ca09", NULL, NULL, &g), -ENOMSG);
	/* only a packet id: nothing to emit, not an error */
	ASSERT_EQ(decode(BLE_FMT_BTHOME, "svc=fcd2:400001", NULL, NULL, &g), 0);
}

static void test_bthome_packet_id(void) {
	struct ble_dev_state st = {0};
	struct got g;

	ASSERT_EQ(decode(BLE_FMT_BTHOME, "svc=fcd2:40000902ca09", NULL, &st, &g), 1);
	ASSERT(st.has_seq);
	ASSERT_EQ(st.seq, 9);
	/* the same packet again (BlueZ reports every copy with DuplicateData) */
	ASSERT_EQ(decode(BLE_FMT_BTHOME, "svc=fcd2:40000902ca09", NULL, &st, &g), 0);
	ASSERT_EQ(decode(BLE_FMT_BTHOME, "svc=fcd2:40000a02cb09", NULL, &st, &g), 1);
	ASSERT_NUM(&g, "temperature", 25.07);
	ASSERT_EQ(st.seq, 10);
	/* without state, nothing is a duplicate */
	ASSERT_EQ(decode(BLE_FMT_BTHOME, "svc=fcd2:40000a02cb09", NULL, NULL, &g), 1);
	/* a malformed packet leaves the state alone */
	ASSERT_EQ(decode(BLE_FMT_BTHOME, "svc=fcd2:40000b02cb", NULL, &st, &g), -EBADMSG);
	ASSERT_EQ(st.seq, 10);
}

static void test_bthome_malformed(void) {
	static const char *const full = "svc=fcd2:40000902ca0903bf130c020c530548656c6c6f";
	struct got g;
	char line[256], err[256];
	size_t n = strlen(full);

	/* object boundaries are at 2+1, +3, +3, +3, +7 bytes: a cut inside an object is malformed */
	static const size_t ends[] = {1, 3, 6, 9, 12, 19};
	for (size_t cut = 1; cut <= (n - 9) / 2; cut++) {
		bool boundary = false;
		int r;

		for (size_t i = 0; i < sizeof(ends) / sizeof(ends[0]); i++)
			boundary |= ends[i] == cut;
		snprintf(line, sizeof(line), "%.*s", (int)(9 + 2 * cut), full);
		r = decode(BLE_FMT_BTHOME, line, NULL, NULL, &g);
		if (boundary)
			ASSERT_GE(r, 0);
		else
			ASSERT_EQ(r, -EBADMSG);
	}
	/* an id the specification does not define: its size is unknown */
	ASSERT_EQ(decode_ex(BLE_FMT_BTHOME, "svc=fcd2:4002ca0965aa", NULL, NULL, NULL, 0, &g, err), -EBADMSG);
	ASSERT_STR_CONTAINS(err, "0x65");
	ASSERT_EQ(decode(BLE_FMT_BTHOME, "svc=fcd2:4053", NULL, NULL, &g), -EBADMSG);
	ASSERT_EQ(decode(BLE_FMT_BTHOME, "svc=fcd2:405305414243", NULL, NULL, &g), -EBADMSG);
}

static void test_bthome_encrypted(void) {
	struct ble_dev_state st = {0};
	struct got g;
	char err[256];

	ASSERT_EQ(decode(BLE_FMT_BTHOME, SPEC_MAC "svc=fcd2:" SPEC_ENC, SPEC_KEY, &st, &g), 2);
	ASSERT_NUM(&g, "temperature", 25.06);
	ASSERT_NUM(&g, "humidity", 50.55);
	ASSERT(st.encrypted && st.has_counter);
	ASSERT_EQ(st.counter, 0x33221100);
	/* the same packet: a duplicate */
	ASSERT_EQ(decode(BLE_FMT_BTHOME, SPEC_MAC "svc=fcd2:" SPEC_ENC, SPEC_KEY, &st, &g), 0);
	/* a counter below the last accepted one: a replay */
	st.counter = 0x33221101;
	ASSERT_EQ(decode_ex(BLE_FMT_BTHOME, SPEC_MAC "svc=fcd2:" SPEC_ENC, SPEC_KEY, &st, NULL, 0, &g, err),
	          -ESTALE);
	ASSERT_STR_CONTAINS(err, "counter");
	ASSERT_EQ(st.counter, 0x33221101);

	/* the specification's second example: motion */
	ASSERT_EQ(decode(BLE_FMT_BTHOME, SPEC_MAC "svc=fcd2:4187b90011223372b0231f", SPEC_KEY, NULL, &g), 1);
	ASSERT_NUM(&g, "motion", 1);

	/* a wrong key, another device's address (the nonce), an altered byte, MIC or counter */
	ASSERT_EQ(decode_ex(BLE_FMT_BTHOME, SPEC_MAC "svc=fcd2:" SPEC_ENC, "814aac74c4f17b6c1581e1ab87816b99",
	                    NULL, NULL, 0, &g, err), -EACCES);
	ASSERT_STR_CONTAINS(err, "key");
	ASSERT_EQ(decode(BLE_FMT_BTHOME, "addr=54:48:E6:8F:80:A6 svc=fcd2:" SPEC_ENC, SPEC_KEY, NULL, &g),
	          -EACCES);
	ASSERT_EQ(decode(BLE_FMT_BTHOME, SPEC_MAC "svc=fcd2:41a57266c95f730011223378237214", SPEC_KEY, NULL, &g),
	          -EACCES);
	ASSERT_EQ(decode(BLE_FMT_BTHOME, SPEC_MAC "svc=fcd2:41a47266c95f730011223378237215", SPEC_KEY, NULL, &g),
	          -EACCES);
	ASSERT_EQ(decode(BLE_FMT_BTHOME, SPEC_MAC "svc=fcd2:41a47266c95f730111223378237214", SPEC_KEY, NULL, &g),
	          -EACCES);
	/* the device info byte is in the nonce too: the trigger bit set afterwards fails */
	ASSERT_EQ(decode(BLE_FMT_BTHOME, SPEC_MAC "svc=fcd2:45a47266c95f730011223378237214", SPEC_KEY, NULL, &g),
	          -EACCES);

	/* plaintext once a key is configured; encrypted without a key */
	ASSERT_EQ(decode_ex(BLE_FMT_BTHOME, SPEC_MAC "svc=fcd2:4002ca0903bf13", SPEC_KEY, NULL, NULL, 0, &g, err),
	          -EACCES);
	ASSERT_STR_CONTAINS(err, "plaintext");
	ASSERT_EQ(decode(BLE_FMT_BTHOME, SPEC_MAC "svc=fcd2:" SPEC_ENC, NULL, NULL, &g), -EACCES);

	/* every truncation fails: the MIC no longer matches, or there is no room for one */
	for (size_t cut = 1; cut < strlen(SPEC_ENC) / 2; cut++) {
		char line[128];

		snprintf(line, sizeof(line), SPEC_MAC "svc=fcd2:%.*s", (int)(2 * cut), SPEC_ENC);
		int r = decode(BLE_FMT_BTHOME, line, SPEC_KEY, NULL, &g);
		ASSERT(r == -EACCES || r == -EBADMSG);
		snprintf(line, sizeof(line), SPEC_MAC "svc=fcd2:%s%.*s", SPEC_ENC, (int)(2 * cut), "0011223344556677889900112233");
		r = decode(BLE_FMT_BTHOME, line, SPEC_KEY, NULL, &g);
		ASSERT_EQ(r, -EACCES);
	}
}

/* Ruuvi's data format 5 test vectors (docs.ruuvi.com). */
static void test_ruuvi_vectors(void) {
	struct ble_dev_state st = {0};
	struct ble_adv adv;
	struct got g;
	char id[BLE_STABLE_ID_MAX];

	ASSERT_EQ(decode(BLE_FMT_RUUVI5, "mfr=0499:0512FC5394C37C0004FFFC040CAC364200CDCBB8334C884F", NULL, &st, &g), 11);
	ASSERT_NUM(&g, "temperature", 24.3);
	ASSERT_NUM(&g, "pressure", 1000.44);
	ASSERT_NUM(&g, "humidity", 53.49);
	ASSERT_NUM(&g, "acceleration_x", 0.004);
	ASSERT_NUM(&g, "acceleration_y", -0.004);
	ASSERT_NUM(&g, "acceleration_z", 1.036);
	ASSERT_NUM(&g, "tx_power", 4);
	ASSERT_NUM(&g, "voltage", 2.977);
	ASSERT_NUM(&g, "movement_counter", 66);
	ASSERT_NUM(&g, "measurement_sequence", 205);
	ASSERT_STR_EQ(text(&g, "mac"), "CB:B8:33:4C:88:4F");
	ASSERT(st.has_seq);
	ASSERT_EQ(st.seq, 205);
	ASSERT_OK(adv_from_text("mfr=0499:0512FC5394C37C0004FFFC040CAC364200CDCBB8334C884F", &adv, buf, sizeof(buf)));
	ASSERT_OK(ble_adv_stable_id(BLE_FMT_RUUVI5, &adv, id, sizeof(id)));
	ASSERT_STR_EQ(id, "CB:B8:33:4C:88:4F");
	ASSERT_EQ(ble_adv_stable_id(BLE_FMT_RUUVI5, &adv, id, 10), -ENOBUFS);
	/* the same measurement sequence again */
	ASSERT_EQ(decode(BLE_FMT_RUUVI5, "mfr=0499:0512FC5394C37C0004FFFC040CAC364200CDCBB8334C884F", NULL, &st, &g), 0);

	ASSERT_EQ(decode(BLE_FMT_RUUVI5, "mfr=0499:057FFFFFFEFFFE7FFF7FFF7FFFFFDEFEFFFECBB8334C884F", NULL, &st, &g), 11);
	ASSERT_NUM(&g, "temperature", 163.835);
	ASSERT_NUM(&g, "pressure", 1155.34);
	ASSERT_NUM(&g, "humidity", 163.835);
	ASSERT_NUM(&g, "acceleration_x", 32.767);
	ASSERT_NUM(&g, "acceleration_y", 32.767);
	ASSERT_NUM(&g, "acceleration_z", 32.767);
	ASSERT_NUM(&g, "tx_power", 20);
	ASSERT_NUM(&g, "voltage", 3.646);
	ASSERT_NUM(&g, "movement_counter", 254);
	ASSERT_NUM(&g, "measurement_sequence", 65534);

	ASSERT_EQ(decode(BLE_FMT_RUUVI5, "mfr=0499:058001000000008001800180010000000000CBB8334C884F", NULL, &st, &g), 11);
	ASSERT_NUM(&g, "temperature", -163.835);
	ASSERT_NUM(&g, "pressure", 500);
	ASSERT_NUM(&g, "humidity", 0);
	ASSERT_NUM(&g, "acceleration_x", -32.767);
	ASSERT_NUM(&g, "acceleration_y", -32.767);
	ASSERT_NUM(&g, "acceleration_z", -32.767);
	ASSERT_NUM(&g, "tx_power", -40);
	ASSERT_NUM(&g, "voltage", 1.6);
	ASSERT_NUM(&g, "movement_counter", 0);
	ASSERT_NUM(&g, "measurement_sequence", 0);

	/* every field "not available": no reading at all, and no stable id */
	ASSERT_EQ(decode(BLE_FMT_RUUVI5, "mfr=0499:058000FFFFFFFF800080008000FFFFFFFFFFFFFFFFFFFFFF", NULL, &st, &g), 0);
	ASSERT_EQ(st.seq, 0);
	ASSERT_OK(adv_from_text("mfr=0499:058000FFFFFFFF800080008000FFFFFFFFFFFFFFFFFFFFFF", &adv, buf, sizeof(buf)));
	ASSERT_EQ(ble_adv_stable_id(BLE_FMT_RUUVI5, &adv, id, sizeof(id)), -ENOMSG);
	/* ... and twice is no duplicate: there is no sequence number to compare */
	ASSERT_EQ(decode(BLE_FMT_RUUVI5, "mfr=0499:058000FFFFFFFF800080008000FFFFFFFFFFFFFFFFFFFFFF", NULL, &st, &g), 0);
}

static void test_ruuvi_malformed(void) {
	static const char *const v = "0512FC5394C37C0004FFFC040CAC364200CDCBB8334C884F";
	char line[128];
	struct got g;

	for (size_t len = 0; len < 24; len++) {
		snprintf(line, sizeof(line), "mfr=0499:%.*s", (int)(2 * len), v);
		ASSERT_EQ(decode(BLE_FMT_RUUVI5, line, NULL, NULL, &g), len == 0 ? -ENOMSG : -EBADMSG);
	}
	snprintf(line, sizeof(line), "mfr=0499:%s00", v);
	ASSERT_EQ(decode(BLE_FMT_RUUVI5, line, NULL, NULL, &g), -EBADMSG);
	/* data format 3, or another company */
	ASSERT_EQ(decode(BLE_FMT_RUUVI5, "mfr=0499:03291A1ECE1EFC18F94202CA0B53", NULL, NULL, &g), -ENOMSG);
	ASSERT_EQ(decode(BLE_FMT_RUUVI5, "mfr=0498:0512FC5394C37C0004FFFC040CAC364200CDCBB8334C884F", NULL, NULL, &g), -ENOMSG);
}

/*
 * ATC1441 and pvvx publish no vectors: these are built from the layouts,
 * A4:C1:38:11:22:33 at 22.5 / 22.57 degC, 48 / 48.12 %, 87 %, 2950 mV.
 */
#define ATC "svc=181a:A4C13811223300E130570B8612"

static void test_xiaomi(void) {
	struct ble_dev_state st = {0};
	struct ble_adv adv;
	struct got g;
	char id[BLE_STABLE_ID_MAX];
	enum ble_format f;

	ASSERT_EQ(decode(BLE_FMT_ATC1441, ATC, NULL, &st, &g), 4);
	ASSERT_NUM(&g, "temperature", 22.5);
	ASSERT_NUM(&g, "humidity", 48);
	ASSERT_NUM(&g, "battery", 87);
	ASSERT_NUM(&g, "voltage", 2.95);
	ASSERT_EQ(decode(BLE_FMT_ATC1441, ATC, NULL, &st, &g), 0);
	ASSERT_EQ(decode(BLE_FMT_ATC1441, "svc=181a:A4C138112233FFCB30570B8613", NULL, &st, &g), 4);
	ASSERT_NUM(&g, "temperature", -5.3);
	ASSERT_OK(adv_from_text(ATC, &adv, buf, sizeof(buf)));
	ASSERT_OK(ble_adv_detect(&adv, &f));
	ASSERT_EQ(f, BLE_FMT_ATC1441);
	ASSERT_OK(ble_adv_stable_id(BLE_FMT_ATC1441, &adv, id, sizeof(id)));
	ASSERT_STR_EQ(id, "A4:C1:38:11:22:33");

	ASSERT_EQ(decode(BLE_FMT_PVVX, "svc=181a:33221138C1A4D108CC12860B571205", NULL, &st, &g), 5);
	ASSERT_NUM(&g, "temperature", 22.57);
	ASSERT_NUM(&g, "humidity", 48.12);
	ASSERT_NUM(&g, "battery", 87);
	ASSERT_NUM(&g, "voltage", 2.95);
	ASSERT_NUM(&g, "flags", 5);
	ASSERT_EQ(decode(BLE_FMT_PVVX, "svc=181a:33221138C1A4D108CC12860B571205", NULL, &st, &g), 0);
	ASSERT_EQ(decode(BLE_FMT_PVVX, "svc=181a:33221138C1A4F5FFCC12860B571305", NULL, &st, &g), 5);
	ASSERT_NUM(&g, "temperature", -0.11);
	ASSERT_OK(adv_from_text("svc=181a:33221138C1A4D108CC12860B571205", &adv, buf, sizeof(buf)));
	ASSERT_OK(ble_adv_detect(&adv, &f));
	ASSERT_EQ(f, BLE_FMT_PVVX);
	ASSERT_OK(ble_adv_stable_id(BLE_FMT_PVVX, &adv, id, sizeof(id)));
	ASSERT_STR_EQ(id, "A4:C1:38:11:22:33");

	/* each length but its own is malformed, but the other's: pvvx firmware may send both in turn */
	for (size_t len = 0; len < 20; len++) {
		char line[128];
		static const char hex[] = "33221138C1A4D108CC12860B5712050102030405";

		snprintf(line, sizeof(line), "svc=181a:%.*s", (int)(2 * len), hex);
		ASSERT_EQ(decode(BLE_FMT_ATC1441, line, NULL, NULL, &g), len == 13 ? 4 : len == 15 ? -ENOMSG : -EBADMSG);
		ASSERT_EQ(decode(BLE_FMT_PVVX, line, NULL, NULL, &g), len == 15 ? 5 : len == 13 ? -ENOMSG : -EBADMSG);
	}
	ASSERT_EQ(decode(BLE_FMT_PVVX, "svc=181b:33221138C1A4D108CC12860B571205", NULL, NULL, &g), -ENOMSG);
}

static void test_ibeacon(void) {
	static const char *const line = "mfr=004c:0215E2C56DB5DFFB48D2B060D0F5A71096E000010002C5";
	struct ble_adv adv;
	struct got g;
	char id[BLE_STABLE_ID_MAX], l[128];
	enum ble_format f;

	ASSERT_EQ(decode(BLE_FMT_IBEACON, line, NULL, NULL, &g), 4);
	ASSERT_NUM(&g, "present", 1);
	ASSERT_NUM(&g, "tx_power", -59);
	ASSERT_NUM(&g, "major", 1);
	ASSERT_NUM(&g, "minor", 2);
	ASSERT_OK(adv_from_text(line, &adv, buf, sizeof(buf)));
	ASSERT_OK(ble_adv_detect(&adv, &f));
	ASSERT_EQ(f, BLE_FMT_IBEACON);
	ASSERT_OK(ble_adv_stable_id(BLE_FMT_IBEACON, &adv, id, sizeof(id)));
	ASSERT_STR_EQ(id, "e2c56db5-dffb-48d2-b060-d0f5a71096e0/1/2");
	snprintf(l, sizeof(l), "%.*s", (int)strlen(line) - 2, line);
	ASSERT_EQ(decode(BLE_FMT_IBEACON, l, NULL, NULL, &g), -EBADMSG);
	snprintf(l, sizeof(l), "%s00", line);
	ASSERT_EQ(decode(BLE_FMT_IBEACON, l, NULL, NULL, &g), -EBADMSG);
	/* other Apple advertisements are not iBeacons */
	ASSERT_EQ(decode(BLE_FMT_IBEACON, "mfr=004c:1005031c1e2f4a", NULL, NULL, &g), -ENOMSG);
	ASSERT_EQ(decode(BLE_FMT_IBEACON, "mfr=004c:02", NULL, NULL, &g), -ENOMSG);
}

static void test_eddystone(void) {
	struct ble_dev_state st = {0};
	struct ble_adv adv;
	struct got g;
	char id[BLE_STABLE_ID_MAX];

	/* UID, with and without the two reserved bytes */
	ASSERT_EQ(decode(BLE_FMT_EDDYSTONE, "svc=feaa:00E800112233445566778899AABBCCDDEEFF0000", NULL, NULL, &g), 4);
	ASSERT_NUM(&g, "tx_power", -24);
	ASSERT_STR_EQ(text(&g, "namespace"), "00112233445566778899");
	ASSERT_STR_EQ(text(&g, "instance"), "aabbccddeeff");
	ASSERT_OK(adv_from_text("svc=feaa:00E800112233445566778899AABBCCDDEEFF", &adv, buf, sizeof(buf)));
	ASSERT_OK(ble_adv_stable_id(BLE_FMT_EDDYSTONE, &adv, id, sizeof(id)));
	ASSERT_STR_EQ(id, "00112233445566778899/aabbccddeeff");
	ASSERT_EQ(decode(BLE_FMT_EDDYSTONE, "svc=feaa:00E800112233445566778899AABBCCDDEE", NULL, NULL, &g), -EBADMSG);

	/* URL: https://www. + "google" + .com/ */
	ASSERT_EQ(decode(BLE_FMT_EDDYSTONE, "svc=feaa:10EB01676f6f676c6500", NULL, NULL, &g), 3);
	ASSERT_STR_EQ(text(&g, "url"), "https://www.google.com/");
	ASSERT_NUM(&g, "tx_power", -21);
	ASSERT_EQ(decode(BLE_FMT_EDDYSTONE, "svc=feaa:10EB03612e6263072f78", NULL, NULL, &g), 3);
	ASSERT_STR_EQ(text(&g, "url"), "https://a.bc.com/x");
	ASSERT_EQ(decode(BLE_FMT_EDDYSTONE, "svc=feaa:10EB04676f", NULL, NULL, &g), -EBADMSG);
	ASSERT_EQ(decode(BLE_FMT_EDDYSTONE, "svc=feaa:10EB01676f20", NULL, NULL, &g), -EBADMSG);
	ASSERT_EQ(decode(BLE_FMT_EDDYSTONE, "svc=feaa:10EB", NULL, NULL, &g), -EBADMSG);

	/* TLM: 3000 mV, 23.5 degC, 256 frames, 1000 s */
	ASSERT_EQ(decode(BLE_FMT_EDDYSTONE, "svc=feaa:20000BB817800000010000002710", NULL, &st, &g), 5);
	ASSERT_NUM(&g, "battery_voltage", 3.0);
	ASSERT_NUM(&g, "temperature", 23.5);
	ASSERT_NUM(&g, "adv_count", 256);
	ASSERT_NUM(&g, "uptime", 1000);
	ASSERT_EQ(decode(BLE_FMT_EDDYSTONE, "svc=feaa:20000BB817800000010000002710", NULL, &st, &g), 0);
	/* no battery, no temperature measured; a negative temperature */
	ASSERT_EQ(decode(BLE_FMT_EDDYSTONE, "svc=feaa:2000000080000000010100002710", NULL, &st, &g), 3);
	ASSERT(find(&g, "battery_voltage") < 0 && find(&g, "temperature") < 0);
	ASSERT_EQ(decode(BLE_FMT_EDDYSTONE, "svc=feaa:20000BB8FF800000010200002710", NULL, &st, &g), 5);
	ASSERT_NUM(&g, "temperature", -0.5);
	ASSERT_EQ(decode(BLE_FMT_EDDYSTONE, "svc=feaa:20000BB8178000000100000027", NULL, NULL, &g), -EBADMSG);
	/* encrypted TLM is not read */
	ASSERT_EQ(decode(BLE_FMT_EDDYSTONE, "svc=feaa:2001000102030405060708090a0b0c0d0e0f", NULL, NULL, &g), -EBADMSG);
	/* EID, and an unknown frame type */
	ASSERT_EQ(decode(BLE_FMT_EDDYSTONE, "svc=feaa:30F00102030405060708", NULL, NULL, &g), 3);
	ASSERT_STR_EQ(text(&g, "eid"), "0102030405060708");
	ASSERT_EQ(decode(BLE_FMT_EDDYSTONE, "svc=feaa:50F0", NULL, NULL, &g), -EBADMSG);
	ASSERT_EQ(decode(BLE_FMT_EDDYSTONE, "svc=feaa:", NULL, NULL, &g), -EBADMSG);
	ASSERT_EQ(decode(BLE_FMT_EDDYSTONE, "svc=feab:00", NULL, NULL, &g), -ENOMSG);
}

static struct ble_raw_field raw_field(const char *name, const char *type, const char *order, size_t offset) {
	struct ble_raw_field f = {.name = name, .source = BLE_RAW_MFR, .company = 0xffff, .offset = offset};

	ASSERT_OK(ble_raw_type_parse(type, &f.type));
	ASSERT_OK(ble_raw_order_parse(order, &f.order));
	return f;
}

static double raw1(const char *type, const char *order, size_t offset, const char *hex) {
	struct ble_raw_field f = raw_field("x", type, order, offset);
	uint8_t data[64];
	long n = adv_hex(hex, data, sizeof(data));
	double v;

	ASSERT_GE(n, 0);
	ASSERT_OK(ble_raw_value(&f, data, (size_t)n, &v));
	return v;
}

static void test_raw_types(void) {
	static const char *const d = "0102030405060708";

	ASSERT_DOUBLE_EQ(raw1("uint8", "ABCD", 1, d), 2, 0);
	ASSERT_DOUBLE_EQ(raw1("int8", "ABCD", 0, "ff"), -1, 0);
	ASSERT_DOUBLE_EQ(raw1("uint16", "ABCD", 0, d), 0x0102, 0);
	ASSERT_DOUBLE_EQ(raw1("uint16", "BADC", 0, d), 0x0201, 0);
	ASSERT_DOUBLE_EQ(raw1("uint16", "DCBA", 0, d), 0x0201, 0);
	ASSERT_DOUBLE_EQ(raw1("uint16", "little", 0, d), 0x0201, 0);
	ASSERT_DOUBLE_EQ(raw1("uint16", "CDAB", 0, d), 0x0102, 0);
	ASSERT_DOUBLE_EQ(raw1("int16", "big", 0, "fffe"), -2, 0);
	ASSERT_DOUBLE_EQ(raw1("uint24", "ABCD", 0, d), 0x010203, 0);
	ASSERT_DOUBLE_EQ(raw1("uint24", "DCBA", 0, d), 0x030201, 0);
	ASSERT_DOUBLE_EQ(raw1("int24", "DCBA", 0, "feffff"), -2, 0);
	ASSERT_DOUBLE_EQ(raw1("uint32", "ABCD", 0, d), 0x01020304, 0);
	ASSERT_DOUBLE_EQ(raw1("uint32", "CDAB", 0, d), 0x03040102, 0);
	ASSERT_DOUBLE_EQ(raw1("uint32", "BADC", 0, d), 0x02010403, 0);
	ASSERT_DOUBLE_EQ(raw1("uint32", "DCBA", 0, d), 0x04030201, 0);
	ASSERT_DOUBLE_EQ(raw1("int32", "ABCD", 0, "fffffffe"), -2, 0);
	ASSERT_DOUBLE_EQ(raw1("uint64", "ABCD", 0, d), (double)0x0102030405060708ull, 0);
	ASSERT_DOUBLE_EQ(raw1("uint64", "CDAB", 0, d), (double)0x0708050603040102ull, 0);
	ASSERT_DOUBLE_EQ(raw1("uint64", "BADC", 0, d), (double)0x0201040306050807ull, 0);
	ASSERT_DOUBLE_EQ(raw1("uint64", "DCBA", 0, d), (double)0x0807060504030201ull, 0);
	ASSERT_DOUBLE_EQ(raw1("int64", "ABCD", 0, "fffffffffffffffe"), -2, 0);
	ASSERT_DOUBLE_EQ(raw1("float32", "ABCD", 0, "41c80000"), 25.0, 0);
	ASSERT_DOUBLE_EQ(raw1("float32", "DCBA", 0, "0000c841"), 25.0, 0);
	ASSERT_DOUBLE_EQ(raw1("float32", "CDAB", 0, "000041c8"), 25.0, 0);
	ASSERT_DOUBLE_EQ(raw1("float64", "ABCD", 0, "4039000000000000"), 25.0, 0);
	ASSERT_DOUBLE_EQ(raw1("float64", "DCBA", 0, "0000000000003940"), 25.0, 0);

	struct ble_raw_field f = raw_field("b", "bool", "ABCD", 1);
	uint8_t data[] = {0x00, 0x84, 0x7f, 0xc0, 0x00, 0x00};
	double v;

	f.bit = 2;
	ASSERT_OK(ble_raw_value(&f, data, 2, &v));
	ASSERT_DOUBLE_EQ(v, 1, 0);
	f.bit = 7;
	f.scale = 10; /* not applied to a bit */
	ASSERT_OK(ble_raw_value(&f, data, 2, &v));
	ASSERT_DOUBLE_EQ(v, 1, 0);
	f.bit = 1;
	ASSERT_OK(ble_raw_value(&f, data, 2, &v));
	ASSERT_DOUBLE_EQ(v, 0, 0);
	f.bit = 8;
	ASSERT_EQ(ble_raw_value(&f, data, 2, &v), -EINVAL);

	/* scale and offset; too short; past the end; NaN */
	f = raw_field("t", "int16", "DCBA", 0);
	f.scale = 0.01;
	f.add = -40;
	uint8_t t[] = {0xc4, 0x09};
	ASSERT_OK(ble_raw_value(&f, t, 2, &v));
	ASSERT_DOUBLE_EQ(v, 25.0 - 40, 1e-12);
	ASSERT_EQ(ble_raw_value(&f, t, 1, &v), -EBADMSG);
	f.offset = 3;
	ASSERT_EQ(ble_raw_value(&f, t, 2, &v), -EBADMSG);
	f = raw_field("n", "float32", "ABCD", 2);
	ASSERT_EQ(ble_raw_value(&f, data, sizeof(data), &v), -EBADMSG);
	f = raw_field("n", "uint24", "CDAB", 0);
	ASSERT_EQ(ble_raw_value(&f, data, sizeof(data), &v), -EINVAL);
	ASSERT(!ble_raw_order_valid(BLE_RAW_INT24, BLE_RAW_BADC));

	enum ble_raw_type ty;
	enum ble_raw_order o;
	ASSERT_EQ(ble_raw_type_parse("int12", &ty), -EINVAL);
	ASSERT_EQ(ble_raw_order_parse("middle", &o), -EINVAL);
	for (int i = 0; i < BLE_RAW_TYPE_COUNT; i++) {
		ASSERT_OK(ble_raw_type_parse(ble_raw_type_names[i], &ty));
		ASSERT_EQ(ty, i);
	}
	ASSERT(ble_raw_type_names[BLE_RAW_TYPE_COUNT] == NULL);
}

static void test_raw_decode(void) {
	struct ble_raw_field f[3];
	struct got g;
	char err[256];

	f[0] = raw_field("temp", "int16", "little", 0);
	f[0].company = 0x0969;
	f[0].scale = 0.1;
	f[1] = raw_field("level", "uint8", "ABCD", 2);
	f[1].company = 0x0969;
	f[2] = raw_field("flow", "uint16", "ABCD", 1);
	f[2].source = BLE_RAW_SVC;
	ble_uuid16(0x1234, f[2].uuid);

	ASSERT_EQ(decode_ex(BLE_FMT_RAW, "mfr=0969:fa0063 svc=1234:000100", NULL, NULL, f, 3, &g, err), 3);
	ASSERT_NUM(&g, "temp", 25.0);
	ASSERT_NUM(&g, "level", 0x63);
	ASSERT_NUM(&g, "flow", 0x0100);
	/* a source that is absent this time is left out; none present: not this format */
	ASSERT_EQ(decode_ex(BLE_FMT_RAW, "mfr=0969:fa0063", NULL, NULL, f, 3, &g, err), 2);
	ASSERT_EQ(decode_ex(BLE_FMT_RAW, "mfr=0968:fa0063", NULL, NULL, f, 3, &g, err), -ENOMSG);
	/* one field too short: nothing at all */
	ASSERT_EQ(decode_ex(BLE_FMT_RAW, "mfr=0969:fa00 svc=1234:000100", NULL, NULL, f, 3, &g, err), -EBADMSG);
	ASSERT_STR_CONTAINS(err, "level");
	/* a full UUID as service */
	ASSERT_OK(ble_uuid_parse("6e400001-b5a3-f393-e0a9-e50e24dcca9e", f[2].uuid));
	ASSERT_EQ(decode_ex(BLE_FMT_RAW, "svc=6e400001-b5a3-f393-e0a9-e50e24dcca9e:000200", NULL, NULL, f + 2, 1,
	                    &g, err), 1);
	ASSERT_NUM(&g, "flow", 0x0200);
	/* a long configured name comes out whole */
	static const char long_name[] = "a_point_name_much_longer_than_any_of_the_decoders_own_field_names";
	f[2].name = long_name;
	ASSERT_EQ(decode_ex(BLE_FMT_RAW, "svc=6e400001-b5a3-f393-e0a9-e50e24dcca9e:000200", NULL, NULL, f + 2, 1,
	                    &g, err), 1);
	ASSERT_NUM(&g, long_name, 0x0200);
}

static void test_detect_and_names(void) {
	static const struct {
		const char *line;
		int want;
	} cases[] = {
		{"svc=fcd2:4002ca09", BLE_FMT_BTHOME},
		{"svc=fcd2:2002ca09", -ENOMSG},
		{"mfr=0499:0512FC5394C37C0004FFFC040CAC364200CDCBB8334C884F", BLE_FMT_RUUVI5},
		{"mfr=0499:03291A1ECE1EFC18F94202CA0B53", -ENOMSG},
		{ATC, BLE_FMT_ATC1441},
		{"svc=181a:00", -ENOMSG},
		{"mfr=004c:0215E2C56DB5DFFB48D2B060D0F5A71096E000010002C5", BLE_FMT_IBEACON},
		{"mfr=004c:1005031c1e2f4a", -ENOMSG},
		{"svc=feaa:10EB01676f6f676c6500", BLE_FMT_EDDYSTONE},
		/* several: BTHome wins */
		{"mfr=004c:0215E2C56DB5DFFB48D2B060D0F5A71096E000010002C5 svc=fcd2:4002ca09", BLE_FMT_BTHOME},
		{"mfr=0006:0102", -ENOMSG},
		{"", -ENOMSG},
	};
	struct ble_adv adv;
	enum ble_format f;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r;

		ASSERT_OK(adv_from_text(cases[i].line, &adv, buf, sizeof(buf)));
		r = ble_adv_detect(&adv, &f);
		if (cases[i].want < 0) {
			ASSERT_EQ(r, cases[i].want);
		} else {
			ASSERT_OK(r);
			ASSERT_EQ(f, cases[i].want);
		}
	}
	for (int i = 0; i < BLE_FMT_COUNT; i++) {
		ASSERT_OK(ble_format_parse(ble_format_name((enum ble_format)i), &f));
		ASSERT_EQ(f, i);
	}
	ASSERT_EQ(ble_format_parse("ruuvi3", &f), -EINVAL);
	ASSERT_STR_EQ(ble_format_name(BLE_FMT_RUUVI5), "ruuvi");

	uint8_t u[16], a[6];
	char s[BLE_ADDR_STRLEN];
	ASSERT_OK(ble_uuid_parse("0xFCD2", u));
	ASSERT_EQ(ble_uuid_short(u), 0xfcd2);
	ASSERT_OK(ble_uuid_parse("0000fcd2-0000-1000-8000-00805f9b34fb", u));
	ASSERT_EQ(ble_uuid_short(u), 0xfcd2);
	ASSERT_OK(ble_uuid_parse("6e400001-b5a3-f393-e0a9-e50e24dcca9e", u));
	ASSERT_EQ(ble_uuid_short(u), -1);
	ASSERT_EQ(ble_uuid_parse("6e400001b5a3-f393-e0a9-e50e24dcca9e", u), -EINVAL);
	ASSERT_EQ(ble_uuid_parse("fcd", u), -EINVAL);
	ASSERT_OK(ble_addr_parse("a4:c1:38:0A:0b:FF", a));
	ble_addr_format(a, s);
	ASSERT_STR_EQ(s, "A4:C1:38:0A:0B:FF");
	ASSERT_EQ(ble_addr_parse("a4:c1:38:0A:0b", a), -EINVAL);
	ASSERT_EQ(ble_addr_parse("a4:c1:38:0A:0b:FF:", a), -EINVAL);
	ASSERT_EQ(ble_addr_parse("a4-c1-38-0A-0b-FF", a), -EINVAL);

	struct ble_key k;
	ASSERT_OK(ble_key_parse("  231d39c1d7cc1ab1aee224cd096db932\n", &k));
	ASSERT_EQ(k.key[0], 0x23);
	ASSERT_EQ(k.key[15], 0x32);
	ASSERT_EQ(ble_key_parse("231d39c1d7cc1ab1aee224cd096db9", &k), -EINVAL);
	ASSERT_EQ(ble_key_parse("231d39c1d7cc1ab1aee224cd096db93200", &k), -EINVAL);
}

/* An over-full packet: more values than the decoder holds is an error, not a truncation. */
static void test_too_many(void) {
	char line[1024] = "svc=fcd2:40";
	struct got g;

	for (int i = 0; i < 200; i++)
		strcat(line, "2101");
	ASSERT_EQ(decode(BLE_FMT_BTHOME, line, NULL, NULL, &g), -EBADMSG);
	line[strlen("svc=fcd2:40") + 4 * 100] = 0;
	ASSERT_EQ(decode(BLE_FMT_BTHOME, line, NULL, NULL, &g), 100);
	ASSERT_NUM(&g, "motion_100", 1);
}

int main(void) {
	RUN_TEST(test_bthome_objects);
	RUN_TEST(test_bthome_sizes);
	RUN_TEST(test_bthome_text_events);
	RUN_TEST(test_bthome_spec_examples);
	RUN_TEST(test_bthome_packet_id);
	RUN_TEST(test_bthome_malformed);
	RUN_TEST(test_bthome_encrypted);
	RUN_TEST(test_ruuvi_vectors);
	RUN_TEST(test_ruuvi_malformed);
	RUN_TEST(test_xiaomi);
	RUN_TEST(test_ibeacon);
	RUN_TEST(test_eddystone);
	RUN_TEST(test_raw_types);
	RUN_TEST(test_raw_decode);
	RUN_TEST(test_detect_and_names);
	RUN_TEST(test_too_many);
	return 0;
}
