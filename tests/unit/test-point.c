/* SPDX-License-Identifier: MIT */
/* The point registry and normalization: ids, scale/offset, limits, deadband. */
#include <errno.h>
#include <math.h>

#include "point.h"
#include "test.h"

static void test_registry(void) {
	registry *r;
	uint32_t id, id2;
	bool is_new;
	char name[32];

	ASSERT_OK(registry_new(&r));
	ASSERT_OK(registry_seed(r, 7, "a/seeded"));
	ASSERT_OK(registry_intern(r, "a/one", &id, &is_new));
	ASSERT(is_new);
	ASSERT_EQ(id, 8); /* after the highest seeded id: ids are never reused */
	ASSERT_OK(registry_intern(r, "a/one", &id2, &is_new));
	ASSERT(!is_new);
	ASSERT_EQ(id2, id);
	ASSERT_OK(registry_intern(r, "a/seeded", &id2, &is_new));
	ASSERT_EQ(id2, 7);
	ASSERT_EQ(registry_seed(r, 7, "a/other"), -EEXIST);
	ASSERT_EQ(registry_seed(r, 9, "a/one"), -EEXIST);
	ASSERT(registry_get(r, 0) == NULL);
	ASSERT(registry_get(r, 3) == NULL);
	ASSERT_STR_EQ(registry_find(r, "a/one")->name, "a/one");
	ASSERT(registry_find(r, "a/none") == NULL);

	/* Many names: the hash table grows and every name keeps its id. */
	for (int i = 0; i < 20000; i++) {
		snprintf(name, sizeof(name), "dev%d/p%d", i % 97, i);
		ASSERT_OK(registry_intern(r, name, &id, NULL));
		ASSERT_EQ(id, 9 + (uint32_t)i);
	}
	for (int i = 0; i < 20000; i += 997) {
		snprintf(name, sizeof(name), "dev%d/p%d", i % 97, i);
		ASSERT_EQ(registry_find(r, name)->id, 9 + (uint32_t)i);
	}
	ASSERT_EQ(registry_end(r), 9 + 20000);
	registry_free(r);
	registry_free(NULL);
}

static void test_names(void) {
	ASSERT(point_name_valid("boiler1/temperature"));
	ASSERT(point_name_valid("a-b.c_d/x.y-z"));
	ASSERT(!point_name_valid("temperature"));
	ASSERT(!point_name_valid("/temperature"));
	ASSERT(!point_name_valid("boiler/"));
	ASSERT(!point_name_valid("a/b/c"));
	ASSERT(!point_name_valid("a/b c"));
	ASSERT(!point_name_valid("a/+"));
	ASSERT(!point_name_valid("a/#"));
	ASSERT(!point_name_valid("a/é"));
}

static struct point make_point(void) {
	struct point p = { .id = 1, .a = { .scale = 1, .min = NAN, .max = NAN } };
	return p;
}

static struct m2m_reading reading(double v, int q) {
	struct m2m_reading r = { .ts_us = 1000, .value = v, .point = 1, .quality = (uint16_t)q };
	return r;
}

static void test_scale_offset_limits(void) {
	struct point p = make_point();
	struct m2m_reading r;

	p.a.scale = 0.1;
	p.a.offset = -40;
	p.a.min = -20;
	p.a.max = 100;
	r = reading(650, M2M_QUALITY_GOOD);
	ASSERT(point_normalize(&p, &r));
	ASSERT_DOUBLE_EQ(r.value, 25.0, 1e-9);
	ASSERT_EQ(r.quality, M2M_QUALITY_GOOD);
	ASSERT_DOUBLE_EQ(p.value, 25.0, 1e-9);
	ASSERT(p.has_value);

	r = reading(1500, M2M_QUALITY_GOOD); /* 110 > max */
	point_normalize(&p, &r);
	ASSERT_EQ(r.quality, M2M_QUALITY_OUT_OF_RANGE);
	ASSERT_DOUBLE_EQ(r.value, 110.0, 1e-9); /* the value is kept next to its quality */

	r = reading(100, M2M_QUALITY_GOOD); /* -30 < min */
	point_normalize(&p, &r);
	ASSERT_EQ(r.quality, M2M_QUALITY_OUT_OF_RANGE);

	/* A bad reading keeps its own quality and detail. */
	r = reading(0, M2M_QUALITY_DEVICE_ERROR);
	r.detail = 2;
	ASSERT(point_normalize(&p, &r));
	ASSERT_EQ(p.quality, M2M_QUALITY_DEVICE_ERROR);
	ASSERT_EQ(p.detail, 2);

	/* Writes go back through the inverse. */
	ASSERT_DOUBLE_EQ(point_to_raw(&p, 25.0), 650.0, 1e-9);
}

static void test_bool(void) {
	struct point p = make_point();
	struct m2m_reading r;

	p.a.kind = POINT_BOOL;
	p.a.scale = 10; /* ignored for bools */
	r = reading(5, M2M_QUALITY_GOOD);
	point_normalize(&p, &r);
	ASSERT_DOUBLE_EQ(r.value, 1.0, 0);
	r = reading(0, M2M_QUALITY_GOOD);
	point_normalize(&p, &r);
	ASSERT_DOUBLE_EQ(r.value, 0.0, 0);
	ASSERT_DOUBLE_EQ(point_to_raw(&p, 1), 1.0, 0);
}

static void test_nan(void) {
	struct point p = make_point();
	struct m2m_reading r;

	p.a.max = 10;
	r = reading(NAN, M2M_QUALITY_GOOD);
	ASSERT(point_normalize(&p, &r));
	ASSERT(isnan(r.value));
	ASSERT_EQ(r.quality, M2M_QUALITY_GOOD);
	r = reading(NAN, M2M_QUALITY_GOOD);
	ASSERT(!point_normalize(&p, &r) || p.a.deadband == 0);
}

static void test_deadband(void) {
	struct point p = make_point();
	struct m2m_reading r;
	int stored = 0;
	const double seq[] = { 10, 10.2, 10.4, 10.6, 10.5, 9.9, 9.95, 12 };
	const bool expect[] = { true, false, false, true, false, true, false, true };

	p.a.deadband = 0.5;
	for (size_t i = 0; i < sizeof(seq) / sizeof(seq[0]); i++) {
		r = reading(seq[i], M2M_QUALITY_GOOD);
		bool s = point_normalize(&p, &r);
		if (s != expect[i])
			TEST_FAIL("reading %zu (%g): stored=%d, expected %d", i, seq[i], s, expect[i]);
		stored += s;
		/* The latest value moves with every reading, stored or not. */
		ASSERT_DOUBLE_EQ(p.value, seq[i], 0);
	}
	ASSERT_EQ(stored, 4);

	/* A quality change is always stored, and so is the return to good. */
	r = reading(12, M2M_QUALITY_TIMEOUT);
	ASSERT(point_normalize(&p, &r));
	r = reading(12, M2M_QUALITY_GOOD);
	ASSERT(point_normalize(&p, &r));
	r = reading(12.1, M2M_QUALITY_GOOD);
	ASSERT(!point_normalize(&p, &r));

	/* Percent of the last stored value: 1% of 200 is 2. */
	p = make_point();
	p.a.deadband_percent = 1;
	r = reading(200, M2M_QUALITY_GOOD);
	ASSERT(point_normalize(&p, &r));
	r = reading(201.5, M2M_QUALITY_GOOD);
	ASSERT(!point_normalize(&p, &r));
	r = reading(202.5, M2M_QUALITY_GOOD);
	ASSERT(point_normalize(&p, &r));

	/* No deadband: every reading is stored, even an unchanged one. */
	p = make_point();
	r = reading(1, M2M_QUALITY_GOOD);
	ASSERT(point_normalize(&p, &r));
	r = reading(1, M2M_QUALITY_GOOD);
	ASSERT(point_normalize(&p, &r));
}

static void test_quality_names(void) {
	ASSERT_STR_EQ(quality_name(M2M_QUALITY_GOOD), "good");
	ASSERT_STR_EQ(quality_name(M2M_QUALITY_TIMEOUT), "timeout");
	ASSERT_STR_EQ(quality_name(M2M_QUALITY_DRIVER_DOWN), "driver_down");
	ASSERT_STR_EQ(quality_name(99), "unknown");
	ASSERT_STR_EQ(quality_name(-1), "unknown");
}

int main(void) {
	RUN_TEST(test_registry);
	RUN_TEST(test_names);
	RUN_TEST(test_scale_offset_limits);
	RUN_TEST(test_bool);
	RUN_TEST(test_nan);
	RUN_TEST(test_deadband);
	RUN_TEST(test_quality_names);
	return 0;
}
