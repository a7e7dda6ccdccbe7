/* SPDX-License-Identifier: MIT */
/*
 * Pins the layout of everything that crosses the plugin ABI. A failure here
 * means a change would break plugins built against ABI 1: append fields at
 * the end of a table (and bump the minor) instead, or bump the major.
 */
#include <stddef.h>

#include "m2m/plugin.h"
#include "test.h"

#define PIN_SIZE(type, size) ASSERT_EQ(sizeof(type), size)
#define PIN_OFFSET(type, field, off) ASSERT_EQ(offsetof(type, field), off)

static void test_versions(void) {
	ASSERT_EQ(M2M_ABI_MAJOR, 1);
	ASSERT_EQ(M2M_ABI_MINOR, 1);
	ASSERT_STR_EQ(M2M_PLUGIN_ENTRY_NAME, "m2m_plugin_entry");
}

static void test_reading(void) {
	PIN_SIZE(struct m2m_reading, 24);
	PIN_OFFSET(struct m2m_reading, ts_us, 0);
	PIN_OFFSET(struct m2m_reading, value, 8);
	PIN_OFFSET(struct m2m_reading, point, 16);
	PIN_OFFSET(struct m2m_reading, quality, 20);
	PIN_OFFSET(struct m2m_reading, detail, 22);
}

static void test_enums(void) {
	ASSERT_EQ(M2M_QUALITY_GOOD, 0);
	ASSERT_EQ(M2M_QUALITY_TIMEOUT, 1);
	ASSERT_EQ(M2M_QUALITY_COMM_ERROR, 2);
	ASSERT_EQ(M2M_QUALITY_DECODE_ERROR, 3);
	ASSERT_EQ(M2M_QUALITY_OUT_OF_RANGE, 4);
	ASSERT_EQ(M2M_QUALITY_STALE, 5);
	ASSERT_EQ(M2M_QUALITY_DEVICE_ERROR, 6);
	ASSERT_EQ(M2M_QUALITY_DRIVER_DOWN, 7);
	ASSERT_EQ(M2M_LOG_ERR, 3);
	ASSERT_EQ(M2M_LOG_DEBUG, 7);
	ASSERT_EQ(M2M_IO_READ, 1);
	ASSERT_EQ(M2M_IO_WRITE, 2);
	ASSERT_EQ(M2M_IO_HUP, 4);
	ASSERT_EQ(M2M_IO_ERR, 8);
	ASSERT_EQ(M2M_DEVICE_OFFLINE, 0);
	ASSERT_EQ(M2M_DEVICE_ONLINE, 1);
	ASSERT_EQ(M2M_STAT_COUNTER, 0);
	ASSERT_EQ(M2M_STAT_GAUGE, 1);
	ASSERT_EQ(M2M_BUS_URGENT, 1);
}

/* Offsets in pointer-sized slots, so the pins hold on 32- and 64-bit targets. */
#define P sizeof(void *)

static void test_host_api(void) {
	typedef struct m2m_host_api T;
	PIN_OFFSET(T, struct_size, 0);
	PIN_OFFSET(T, abi_major, 4);
	PIN_OFFSET(T, abi_minor, 6);
	PIN_OFFSET(T, log, 8);
	PIN_OFFSET(T, now_us, 8 + 1 * P);
	PIN_OFFSET(T, mono_us, 8 + 2 * P);
	PIN_OFFSET(T, cfg_string, 8 + 3 * P);
	PIN_OFFSET(T, cfg_int, 8 + 4 * P);
	PIN_OFFSET(T, cfg_double, 8 + 5 * P);
	PIN_OFFSET(T, cfg_bool, 8 + 6 * P);
	PIN_OFFSET(T, cfg_duration, 8 + 7 * P);
	PIN_OFFSET(T, cfg_enum, 8 + 8 * P);
	PIN_OFFSET(T, cfg_item, 8 + 9 * P);
	PIN_OFFSET(T, cfg_error, 8 + 10 * P);
	PIN_OFFSET(T, declare_point, 8 + 11 * P);
	PIN_OFFSET(T, submit, 8 + 12 * P);
	PIN_OFFSET(T, submit_text, 8 + 13 * P);
	PIN_OFFSET(T, event, 8 + 14 * P);
	PIN_OFFSET(T, stat, 8 + 15 * P);
	PIN_OFFSET(T, timer_start, 8 + 16 * P);
	PIN_OFFSET(T, timer_stop, 8 + 17 * P);
	PIN_OFFSET(T, io_start, 8 + 18 * P);
	PIN_OFFSET(T, io_update, 8 + 19 * P);
	PIN_OFFSET(T, io_stop, 8 + 20 * P);
	PIN_OFFSET(T, bus_open, 8 + 21 * P);
	PIN_OFFSET(T, bus_submit, 8 + 22 * P);
	PIN_OFFSET(T, bus_pending, 8 + 23 * P);
	PIN_OFFSET(T, write_done, 8 + 24 * P);
	/* ABI 1.1 */
	PIN_OFFSET(T, timer_update, 8 + 25 * P);
	PIN_OFFSET(T, device_state, 8 + 26 * P);
	PIN_OFFSET(T, stat_declare, 8 + 27 * P);
	PIN_OFFSET(T, stat_set, 8 + 28 * P);
	PIN_SIZE(T, 8 + 29 * P);
}

static void test_driver_ops(void) {
	typedef struct m2m_driver_ops T;
	PIN_OFFSET(T, struct_size, 0);
	PIN_OFFSET(T, create, P);
	PIN_OFFSET(T, start, 2 * P);
	PIN_OFFSET(T, stop, 3 * P);
	PIN_OFFSET(T, destroy, 4 * P);
	PIN_OFFSET(T, write, 5 * P);
	PIN_SIZE(T, 6 * P);
}

static void test_plugin(void) {
	typedef struct m2m_plugin T;
	PIN_OFFSET(T, struct_size, 0);
	PIN_OFFSET(T, abi_major, 4);
	PIN_OFFSET(T, abi_minor, 6);
	PIN_OFFSET(T, name, 8);
	PIN_OFFSET(T, version, 8 + P);
	PIN_OFFSET(T, description, 8 + 2 * P);
	PIN_OFFSET(T, ops, 8 + 3 * P);
	PIN_SIZE(T, 8 + 4 * P);
}

static void test_has_field(void) {
	/* A plugin given an older, shorter table must see the new fields as absent. */
	size_t old = offsetof(struct m2m_host_api, write_done);
	ASSERT(!M2M_HAS_FIELD(struct m2m_host_api, old, write_done));
	ASSERT(M2M_HAS_FIELD(struct m2m_host_api, sizeof(struct m2m_host_api), write_done));
}

int main(void) {
	RUN_TEST(test_versions);
	RUN_TEST(test_reading);
	RUN_TEST(test_enums);
	RUN_TEST(test_host_api);
	RUN_TEST(test_driver_ops);
	RUN_TEST(test_plugin);
	RUN_TEST(test_has_field);
	return 0;
}
