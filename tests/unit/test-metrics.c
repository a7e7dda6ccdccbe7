/* SPDX-License-Identifier: MIT */
/*
 * The metrics registry: registration rules, owners, and the three
 * renderings (status JSON, the stats line, the Prometheus exposition). The
 * exposition is also parsed by an independent parser (prometheus_client)
 * in test_metrics_expo.py.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fmt.h"
#include "metrics.h"
#include "test.h"
#include "util.h"

static metric_family *family(metrics *m, const char *name, enum metric_type type,
                             const char *labels, const char *json) {
	struct metric_desc d = { .name = name, .help = "Some help.", .type = type, .labels = labels,
		                 .json = json };
	metric_family *f = NULL;

	ASSERT_OK(metrics_family(m, &d, &f));
	ASSERT(f);
	return f;
}

static int try_family(metrics *m, const char *name, const char *help, enum metric_type type,
                      const char *labels, const char *json) {
	struct metric_desc d = { .name = name, .help = help, .type = type, .labels = labels,
		                 .json = json };
	metric_family *f = NULL;

	return metrics_family(m, &d, &f);
}

/* An unlabelled family with one series that reads *V. */
static void scalar_u64(metrics *m, const char *name, enum metric_type type, const uint64_t *v) {
	ASSERT_OK(metrics_add_u64(m, family(m, name, type, NULL, NULL), NULL, NULL, v));
}

static void scalar_f64(metrics *m, const char *name, enum metric_type type, const double *v) {
	ASSERT_OK(metrics_add_double(m, family(m, name, type, NULL, NULL), NULL, NULL, v));
}

/* What metrics_prometheus writes, as a malloc'd string. */
static char *exposition(metrics *m) {
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	ASSERT(f);
	ASSERT_OK(metrics_prometheus(m, f));
	ASSERT_OK(fclose(f));
	return text;
}

static void test_names(void) {
	metrics *m;
	char nine[64] = "a,b,c,d,e,f,g,h,i";

	ASSERT_OK(metrics_new(&m));
	/* The exposition's grammar. */
	static const char *const bad_names[] = { "", "1abc", "a-b", "a b", "a.b", "é", "x_total",
		                                 "x_info" };
	for (size_t i = 0; i < ELEMENTSOF(bad_names); i++)
		ASSERT_EQ(try_family(m, bad_names[i], "h", METRIC_GAUGE, NULL, NULL), -EINVAL);
	ASSERT_EQ(try_family(m, NULL, "h", METRIC_GAUGE, NULL, NULL), -EINVAL);
	ASSERT_OK(try_family(m, "_a:b_9", "h", METRIC_GAUGE, NULL, NULL));
	ASSERT_OK(try_family(m, ":colon", "h", METRIC_GAUGE, NULL, NULL));
	ASSERT_OK(try_family(m, "x_totals", "h", METRIC_COUNTER, NULL, NULL));
	/* Help is required: every series an operator sees says what it is. */
	ASSERT_EQ(try_family(m, "nohelp", "", METRIC_GAUGE, NULL, NULL), -EINVAL);
	ASSERT_EQ(try_family(m, "nohelp", NULL, METRIC_GAUGE, NULL, NULL), -EINVAL);
	ASSERT_EQ(try_family(m, "badtype", "h", (enum metric_type)7, NULL, NULL), -EINVAL);
	/* Label names. */
	static const char *const bad_labels[] = { ",", "a,", ",a", "a,,b", "__x", "1a", "a-b", "a,a",
		                                  "a b", "é" };
	for (size_t i = 0; i < ELEMENTSOF(bad_labels); i++)
		ASSERT_EQ(try_family(m, "l", "h", METRIC_GAUGE, bad_labels[i], NULL), -EINVAL);
	ASSERT_EQ(try_family(m, "l", "h", METRIC_GAUGE, nine, NULL), -EINVAL);
	nine[15] = '\0'; /* "a,...,h": eight is the limit */
	ASSERT_OK(try_family(m, "l8", "h", METRIC_GAUGE, nine, NULL));
	ASSERT_OK(try_family(m, "l1", "h", METRIC_GAUGE, "_x,y2", NULL));
	/* JSON paths. */
	static const char *const bad_json[] = { "", "/a", "a/", "a//b", "a[x=nolabel]/b",
		                                "{nolabel}", "a{driver", "a}b", "a[=driver]/b",
		                                "a[name=driver", "[name=driver]/b",
		                                "drivers[name=driver]", "{.}",
		                                "a[m123456789012345678901234567890123456789012345678901234567890123=driver]/b" };
	for (size_t i = 0; i < ELEMENTSOF(bad_json); i++)
		ASSERT_EQ(try_family(m, "j", "h", METRIC_COUNTER, "driver", bad_json[i]), -EINVAL);
	ASSERT_OK(try_family(m, "j", "h", METRIC_COUNTER, "driver,device",
	                     "drivers[name=driver]/stats/polls{.device}"));
	/* An info may fill the root or an array element with its labels. */
	ASSERT_OK(try_family(m, "i1", "h", METRIC_INFO, "version", ""));
	ASSERT_OK(try_family(m, "i2", "h", METRIC_INFO, "driver,plugin", "drivers[name=driver]"));
	metrics_free(m);
}

static void test_register_again(void) {
	metrics *m;
	metric_family *a, *b = NULL;
	struct metric_desc d = { .name = "m2md_polls", .help = "Polls.", .type = METRIC_COUNTER,
		                 .labels = "driver,device", .json = "drivers[name=driver]/polls" };

	ASSERT_OK(metrics_new(&m));
	ASSERT_OK(metrics_family(m, &d, &a));
	/* A second instance of a plugin registers the same family and gets it back. */
	ASSERT_OK(metrics_family(m, &d, &b));
	ASSERT(a == b);
	ASSERT(metrics_find(m, "m2md_polls") == a);
	ASSERT(metrics_find(m, "m2md_polls_total") == NULL);
	d.help = "Other.";
	ASSERT_EQ(metrics_family(m, &d, &b), -EEXIST);
	d.help = "Polls.";
	d.type = METRIC_GAUGE;
	ASSERT_EQ(metrics_family(m, &d, &b), -EEXIST);
	d.type = METRIC_COUNTER;
	d.labels = "driver";
	ASSERT_EQ(metrics_family(m, &d, &b), -EEXIST);
	d.labels = "driver,device";
	d.json = NULL;
	ASSERT_EQ(metrics_family(m, &d, &b), -EEXIST);
	/* NULL and "" are the same empty label list. */
	ASSERT_OK(try_family(m, "nolabels", "h", METRIC_GAUGE, NULL, NULL));
	ASSERT_OK(try_family(m, "nolabels", "h", METRIC_GAUGE, "", NULL));
	metrics_free(m);
}

static uint64_t twice(void *arg) {
	return 2 * *(const uint64_t *)arg;
}

static double half(void *arg) {
	return *(const double *)arg / 2;
}

static void test_series(void) {
	metrics *m;
	metric_family *f, *g;
	uint64_t a = 1, b = 2;
	double x = 3;

	ASSERT_OK(metrics_new(&m));
	f = family(m, "reads", METRIC_COUNTER, "driver,device", NULL);
	ASSERT_OK(metrics_add_u64(m, f, &a, (const char *[]){ "plc", "dev" }, &a));
	ASSERT_EQ(metrics_add_u64(m, f, &b, (const char *[]){ "plc", "dev" }, &b), -EEXIST);
	ASSERT_OK(metrics_add_u64(m, f, &b, (const char *[]){ "plc", "dev2" }, &b));
	ASSERT_EQ(metrics_add_u64(m, f, &b, (const char *[]){ "plc", NULL }, &b), -EINVAL);
	ASSERT_EQ(metrics_add_u64(m, f, &b, NULL, &b), -EINVAL);
	/* Exactly one source. */
	ASSERT_EQ(metrics_add(m, f, NULL, (const char *[]){ "p", "d" }, &(struct metric_source){ 0 }),
	          -EINVAL);
	ASSERT_EQ(metrics_add(m, f, NULL, (const char *[]){ "p", "d" }, NULL), -EINVAL);
	ASSERT_EQ(metrics_add(m, f, NULL, (const char *[]){ "p", "d" },
	                      &(struct metric_source){ .u64 = &a, .f64 = &x }),
	          -EINVAL);
	ASSERT_OK(metrics_add(m, f, NULL, (const char *[]){ "p", "d" },
	                      &(struct metric_source){ .get_u64 = twice, .arg = &b }));
	ASSERT_DOUBLE_EQ(metrics_sum(m, f), 1 + 2 + 4, 0);
	/* The registry reads through the pointers: the owner keeps counting in its struct. */
	a = 10;
	ASSERT_DOUBLE_EQ(metrics_sum(m, f), 10 + 2 + 4, 0);

	g = family(m, "temp", METRIC_GAUGE, NULL, NULL);
	ASSERT_OK(metrics_add(m, g, NULL, NULL, &(struct metric_source){ .get_f64 = half, .arg = &x }));
	ASSERT_EQ(metrics_add_double(m, g, NULL, NULL, &x), -EEXIST);
	ASSERT_DOUBLE_EQ(metrics_sum(m, g), 1.5, 0);

	/* Removing an owner takes its series only; the family stays. */
	ASSERT_EQ(metrics_remove_owner(m, &b), 1);
	ASSERT_EQ(metrics_remove_owner(m, &b), 0);
	ASSERT_DOUBLE_EQ(metrics_sum(m, f), 10 + 4, 0);
	ASSERT_OK(metrics_add_u64(m, f, &b, (const char *[]){ "plc", "dev2" }, &b));
	ASSERT_DOUBLE_EQ(metrics_sum(m, f), 10 + 4 + 2, 0);
	ASSERT_EQ(metrics_remove_owner(m, &a), 1);
	ASSERT_EQ(metrics_remove_owner(m, NULL), 2);
	ASSERT_DOUBLE_EQ(metrics_sum(m, f), 2, 0);
	/* Appending after removals keeps the order (the tail was kept right). */
	ASSERT_OK(metrics_add_u64(m, f, &a, (const char *[]){ "z", "z" }, &a));
	ASSERT_DOUBLE_EQ(metrics_sum(m, f), 12, 0);
	metrics_free(m);
}

/* A subsystem's table: one family per entry, several series of one family, and a bad entry. */
static void test_add_list(void) {
	metrics *m;
	uint64_t sent = 3, ok = 4, failed = 5;
	int owner;
	const struct metric_entry list[] = {
		{ .desc = { .name = "m2md_x_sent", .help = "Sent.", .type = METRIC_COUNTER,
		            .json = "x/sent" },
		  .src = { .u64 = &sent } },
		{ { .name = "m2md_x_results", .help = "By result.", .type = METRIC_COUNTER,
		    .labels = "result", .json = "x/{result}" }, { .u64 = &ok }, "ok" },
		{ { .name = "m2md_x_results", .help = "By result.", .type = METRIC_COUNTER,
		    .labels = "result", .json = "x/{result}" }, { .u64 = &failed }, "failed" },
	};
	const struct metric_entry bad[] = {
		{ .desc = { .name = "m2md_x_more", .help = "More.", .type = METRIC_GAUGE },
		  .src = { .u64 = &sent } },
		{ .desc = { .name = "m2md_x_sent", .help = "Another help.", .type = METRIC_COUNTER },
		  .src = { .u64 = &sent } },
	};
	cJSON *o = cJSON_CreateObject();
	char *text;

	ASSERT_OK(metrics_new(&m));
	ASSERT_OK(metrics_add_list(m, &owner, list, ELEMENTSOF(list)));
	ASSERT_DOUBLE_EQ(metrics_sum(m, metrics_find(m, "m2md_x_results")), 9, 0);
	ASSERT_OK(metrics_json(m, o));
	text = cJSON_PrintUnformatted(o);
	ASSERT_STR_EQ(text, "{\"x\":{\"sent\":3,\"ok\":4,\"failed\":5}}");
	free(text);
	cJSON_Delete(o);
	/* The same family twice in one list is -EEXIST; the entries before it stay. */
	ASSERT_EQ(metrics_add_list(m, &owner, list, ELEMENTSOF(list)), -EEXIST);
	ASSERT_EQ(metrics_add_list(m, &owner, bad, ELEMENTSOF(bad)), -EEXIST);
	ASSERT_DOUBLE_EQ(metrics_sum(m, metrics_find(m, "m2md_x_more")), 3, 0);
	ASSERT_EQ(metrics_remove_owner(m, &owner), 4);
	metrics_free(m);
}

struct snapshot {
	unsigned calls;
	uint64_t source, copy;
};

static void take_snapshot(void *arg) {
	struct snapshot *s = arg;

	s->calls++;
	s->copy = s->source;
}

static void test_refresh(void) {
	metrics *m;
	metric_family *f;
	struct snapshot s = { .source = 5 };
	char line[64];
	cJSON *o = cJSON_CreateObject();
	char *text;

	ASSERT_OK(metrics_new(&m));
	f = family(m, "rows", METRIC_COUNTER, NULL, "storage/rows");
	ASSERT_OK(metrics_add_refresh(m, &s, take_snapshot, &s));
	ASSERT_OK(metrics_add_u64(m, f, &s, NULL, &s.copy));
	/* Every rendering runs the hook once, before it reads the copy. */
	ASSERT_DOUBLE_EQ(metrics_sum(m, f), 5, 0);
	s.source = 6;
	ASSERT_EQ(metrics_line(m, "{rows}", line, sizeof(line)), 1);
	ASSERT_STR_EQ(line, "6");
	s.source = 7;
	ASSERT_OK(metrics_json(m, o));
	ASSERT_DOUBLE_EQ(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "storage"), "rows")->valuedouble,
	                 7, 0);
	s.source = 8;
	text = exposition(m);
	ASSERT_STR_CONTAINS(text, "\nrows_total 8\n");
	free(text);
	ASSERT_EQ(s.calls, 4);
	/* The hook goes with its owner. */
	ASSERT_EQ(metrics_remove_owner(m, &s), 1);
	ASSERT_DOUBLE_EQ(metrics_sum(m, f), 0, 0);
	ASSERT_EQ(s.calls, 4);
	/* And a hook added after a removal still runs (the list's tail is right). */
	ASSERT_OK(metrics_add_refresh(m, &s, take_snapshot, &s));
	ASSERT_DOUBLE_EQ(metrics_sum(m, f), 0, 0);
	ASSERT_EQ(s.calls, 5);
	cJSON_Delete(o);
	metrics_free(m);
}

/*
 * The JSON rendering can fill today's status shape: top-level numbers,
 * nested objects, the drivers array (elements found by name), a driver's
 * "stats" with "name.device" keys, and strings from info labels.
 */
static void test_json(void) {
	metrics *m;
	metric_family *f;
	uint64_t readings_in = 42, rows = 7, plc_readings = 40, sim_readings = 2, polls1 = 3,
	         polls2 = 4, online = 1;
	double per_s = 2.5;
	cJSON *root = cJSON_CreateObject(), *drivers, *d;
	char *text;

	ASSERT_OK(metrics_new(&m));
	f = family(m, "m2md", METRIC_INFO, "version,gateway", "");
	ASSERT_OK(metrics_add(m, f, NULL, (const char *[]){ "1.2.3", "gw \"1\"" }, NULL));
	f = family(m, "m2md_readings_in", METRIC_COUNTER, NULL, "readings_in");
	ASSERT_OK(metrics_add_u64(m, f, NULL, NULL, &readings_in));
	f = family(m, "m2md_readings_per_second", METRIC_GAUGE, NULL, "readings_per_s");
	ASSERT_OK(metrics_add_double(m, f, NULL, NULL, &per_s));
	f = family(m, "m2md_storage_rows_written", METRIC_COUNTER, NULL, "storage/rows_written");
	ASSERT_OK(metrics_add_u64(m, f, NULL, NULL, &rows));
	/* A label inside a key: writes_ok, writes_failed as today. */
	f = family(m, "m2md_writes", METRIC_COUNTER, "result", "writes_{result}");
	ASSERT_OK(metrics_add_u64(m, f, NULL, (const char *[]){ "ok" }, &rows));
	ASSERT_OK(metrics_add_u64(m, f, NULL, (const char *[]){ "failed" }, &readings_in));
	f = family(m, "m2md_not_in_json", METRIC_COUNTER, NULL, NULL);
	ASSERT_OK(metrics_add_u64(m, f, NULL, NULL, &rows));
	f = family(m, "m2md_driver", METRIC_INFO, "driver,plugin", "drivers[name=driver]");
	ASSERT_OK(metrics_add(m, f, &plc_readings, (const char *[]){ "plc", "modbus" }, NULL));
	ASSERT_OK(metrics_add(m, f, &sim_readings, (const char *[]){ "sim", "sim" }, NULL));
	f = family(m, "m2md_driver_readings", METRIC_COUNTER, "driver",
	           "drivers[name=driver]/readings");
	ASSERT_OK(metrics_add_u64(m, f, &plc_readings, (const char *[]){ "plc" }, &plc_readings));
	ASSERT_OK(metrics_add_u64(m, f, &sim_readings, (const char *[]){ "sim" }, &sim_readings));
	f = family(m, "m2md_modbus_polls", METRIC_COUNTER, "driver,device",
	           "drivers[name=driver]/stats/polls{.device}");
	ASSERT_OK(metrics_add_u64(m, f, &plc_readings, (const char *[]){ "plc", "dev" }, &polls1));
	ASSERT_OK(metrics_add_u64(m, f, &plc_readings, (const char *[]){ "plc", "dev@1h" }, &polls2));
	/* An instance-wide statistic (no device) keeps today's key without ".device". */
	f = family(m, "m2md_modbus_online", METRIC_GAUGE, "driver,device",
	           "drivers[name=driver]/stats/{device}/online");
	ASSERT_OK(metrics_add_u64(m, f, &plc_readings, (const char *[]){ "plc", "u1" }, &online));

	/* The status writes its structured parts first; the registry fills them in. */
	cJSON_AddStringToObject(root, "version", "old");
	drivers = cJSON_AddArrayToObject(root, "drivers");
	d = cJSON_CreateObject();
	cJSON_AddStringToObject(d, "name", "sim");
	cJSON_AddStringToObject(d, "state", "running");
	cJSON_AddItemToArray(drivers, d);
	ASSERT_OK(metrics_json(m, root));
	text = json_print(root, false);
	ASSERT_STR_EQ(text,
	              "{\"version\":\"1.2.3\",\"drivers\":["
	              "{\"name\":\"sim\",\"state\":\"running\",\"plugin\":\"sim\",\"readings\":2},"
	              "{\"name\":\"plc\",\"plugin\":\"modbus\",\"readings\":40,"
	              "\"stats\":{\"polls.dev\":3,\"polls.dev@1h\":4,\"u1\":{\"online\":1}}}],"
	              "\"gateway\":\"gw \\\"1\\\"\",\"readings_in\":42,\"readings_per_s\":2.5,"
	              "\"storage\":{\"rows_written\":7},\"writes_ok\":7,\"writes_failed\":42}");
	free(text);
	/* A second rendering into the same tree replaces, never duplicates. */
	readings_in = 43;
	ASSERT_OK(metrics_json(m, root));
	ASSERT_EQ(cJSON_GetArraySize(drivers), 2);
	ASSERT_EQ(cJSON_GetObjectItem(root, "readings_in")->valuedouble, 43);
	cJSON_Delete(root);

	/* An empty device drops the "." with it. */
	ASSERT_EQ(metrics_remove_owner(m, &plc_readings), 5);
	f = metrics_find(m, "m2md_modbus_polls");
	ASSERT_OK(metrics_add_u64(m, f, NULL, (const char *[]){ "plc", "" }, &polls1));
	root = cJSON_CreateObject();
	ASSERT_OK(metrics_json(m, root));
	text = json_print(cJSON_GetObjectItem(root, "drivers"), false);
	ASSERT_STR_EQ(text, "[{\"name\":\"sim\",\"plugin\":\"sim\",\"readings\":2},"
	                    "{\"name\":\"plc\",\"stats\":{\"polls\":3}}]");
	free(text);
	cJSON_Delete(root);

	/* A path through an item of another type is refused, not overwritten. */
	root = cJSON_CreateObject();
	cJSON_AddNumberToObject(root, "storage", 1);
	ASSERT_EQ(metrics_json(m, root), -EINVAL);
	cJSON_Delete(root);
	root = cJSON_CreateObject();
	cJSON_AddObjectToObject(root, "drivers");
	ASSERT_EQ(metrics_json(m, root), -EINVAL);
	cJSON_Delete(root);
	metrics_free(m);
}

/* The periodic stats line as m2md writes it today, from a template. */
static void test_line(void) {
	metrics *m;
	metric_family *f;
	uint64_t readings_in = 720000, stored = 412345, zero = 0, queued = 12, r1 = 3, r2 = 4;
	uint64_t running = 2, drivers = 2, big = UINT64_MAX;
	double uptime = 7200.4, p50 = 0.3125, p99 = 0.92, lag_max = 3.1, nan_ = NAN, inf = INFINITY, tenth = 0.1;
	char buf[512];
	const char *tpl =
		"stats: uptime={m2md_uptime_seconds:.0}s readings_in={m2md_readings_in} "
		"stored={m2md_readings_stored} rejected={m2md_readings_rejected} "
		"written={m2md_storage_rows_written} dropped={m2md_storage_rows_dropped} "
		"queued={m2md_storage_queued} storage_errors={m2md_storage_errors} "
		"loop_lag_p50={m2md_loop_lag_ms[stat=p50]:.3}ms "
		"loop_lag_p99={m2md_loop_lag_ms[stat=p99]:.3}ms "
		"loop_lag_max={m2md_loop_lag_ms[stat=max]:.3}ms "
		"drivers={m2md_drivers_running}/{m2md_drivers}";

	ASSERT_OK(metrics_new(&m));
	scalar_f64(m, "m2md_uptime_seconds", METRIC_GAUGE, &uptime);
	scalar_u64(m, "m2md_readings_in", METRIC_COUNTER, &readings_in);
	scalar_u64(m, "m2md_readings_stored", METRIC_COUNTER, &stored);
	scalar_u64(m, "m2md_readings_rejected", METRIC_COUNTER, &zero);
	/* Labelled families sum over their series: readings written by every driver. */
	f = family(m, "m2md_storage_rows_written", METRIC_COUNTER, "driver", NULL);
	ASSERT_OK(metrics_add_u64(m, f, NULL, (const char *[]){ "a" }, &r1));
	ASSERT_OK(metrics_add_u64(m, f, NULL, (const char *[]){ "b" }, &r2));
	/* A family without series is 0. */
	family(m, "m2md_storage_rows_dropped", METRIC_COUNTER, NULL, NULL);
	scalar_u64(m, "m2md_storage_queued", METRIC_GAUGE, &queued);
	scalar_u64(m, "m2md_storage_errors", METRIC_COUNTER, &zero);
	/* A selector picks one series of a labelled family. */
	f = family(m, "m2md_loop_lag_ms", METRIC_GAUGE, "stat", "loop_lag_ms/{stat}");
	ASSERT_OK(metrics_add_double(m, f, NULL, (const char *[]){ "p50" }, &p50));
	ASSERT_OK(metrics_add_double(m, f, NULL, (const char *[]){ "p99" }, &p99));
	ASSERT_OK(metrics_add_double(m, f, NULL, (const char *[]){ "max" }, &lag_max));
	scalar_u64(m, "m2md_drivers_running", METRIC_GAUGE, &running);
	scalar_u64(m, "m2md_drivers", METRIC_GAUGE, &drivers);
	const char *want =
		"stats: uptime=7200s readings_in=720000 stored=412345 rejected=0 written=7 dropped=0 "
		"queued=12 storage_errors=0 loop_lag_p50=0.312ms loop_lag_p99=0.920ms loop_lag_max=3.100ms "
		"drivers=2/2";
	ASSERT_EQ(metrics_line(m, tpl, buf, sizeof(buf)), (int)strlen(want));
	ASSERT_STR_EQ(buf, want);

	/* Exact u64, shortest doubles, and the spellings of the non-finite. */
	scalar_u64(m, "big", METRIC_COUNTER, &big);
	scalar_f64(m, "nan", METRIC_GAUGE, &nan_);
	scalar_f64(m, "inf", METRIC_GAUGE, &inf);
	scalar_f64(m, "tenth", METRIC_GAUGE, &tenth);
	ASSERT_GT(metrics_line(m, "{big} {nan} {inf} {tenth} {tenth:.2}", buf, sizeof(buf)), 0);
	ASSERT_STR_EQ(buf, "18446744073709551615 NaN +Inf 0.1 0.10");
	/* A sum that overflows u64 goes on as a double. */
	f = metrics_find(m, "m2md_storage_rows_written");
	ASSERT_OK(metrics_add_u64(m, f, NULL, (const char *[]){ "c" }, &big));
	ASSERT_GT(metrics_line(m, "{m2md_storage_rows_written}", buf, sizeof(buf)), 0);
	ASSERT_STR_EQ(buf, "1.8446744073709552e+19");

	ASSERT_EQ(metrics_line(m, "{m2md_loop_lag_ms}", buf, sizeof(buf)), 6);
	ASSERT_STR_EQ(buf, "4.3325");
	ASSERT_EQ(metrics_line(m, "{m2md_loop_lag_ms[stat=p5]}", buf, sizeof(buf)), 1);
	ASSERT_STR_EQ(buf, "0");
	ASSERT_EQ(metrics_line(m, "{m2md_loop_lag_ms[stat=]}", buf, sizeof(buf)), 1);
	ASSERT_EQ(metrics_line(m, "{m2md_loop_lag_ms[nolabel=p50]}", buf, sizeof(buf)), -ENOENT);
	ASSERT_EQ(metrics_line(m, "{m2md_loop_lag_ms[stat]}", buf, sizeof(buf)), -EINVAL);
	ASSERT_EQ(metrics_line(m, "{m2md_loop_lag_ms[=p50]}", buf, sizeof(buf)), -EINVAL);
	ASSERT_EQ(metrics_line(m, "{m2md_loop_lag_ms[stat=p50}", buf, sizeof(buf)), -EINVAL);
	ASSERT_EQ(metrics_line(m, "{[stat=p50]}", buf, sizeof(buf)), -EINVAL);
	ASSERT_EQ(metrics_line(m, "x={nosuch}", buf, sizeof(buf)), -ENOENT);
	ASSERT_EQ(metrics_line(m, "x={big", buf, sizeof(buf)), -EINVAL);
	ASSERT_EQ(metrics_line(m, "x={}", buf, sizeof(buf)), -EINVAL);
	ASSERT_EQ(metrics_line(m, "x={big:3}", buf, sizeof(buf)), -EINVAL);
	ASSERT_EQ(metrics_line(m, "x={big:.}", buf, sizeof(buf)), -EINVAL);
	ASSERT_EQ(metrics_line(m, "x={big:.10}", buf, sizeof(buf)), -EINVAL);
	/* Too small: the start, terminated. */
	ASSERT_EQ(metrics_line(m, "abc {big}", buf, 6), -ENOBUFS);
	ASSERT_STR_EQ(buf, "abc 1");
	ASSERT_EQ(metrics_line(m, "abcdef", buf, 6), -ENOBUFS);
	ASSERT_STR_EQ(buf, "abcde");
	ASSERT_EQ(metrics_line(m, "abcde", buf, 6), 5);
	metrics_free(m);
}

static void test_prometheus(void) {
	metrics *m;
	metric_family *f;
	uint64_t big = UINT64_MAX, exact = (1ULL << 53) + 1, n1 = 1, n2 = 2;
	double tenth = 0.1, neg = -2.5, nan_ = NAN, inf = INFINITY, ninf = -INFINITY, huge = 1e300;
	char *text;
	struct metric_desc esc = { .name = "esc", .help = "Back\\slash and\nnew line \"quoted\".",
		                   .type = METRIC_GAUGE, .labels = "v" };

	ASSERT_OK(metrics_new(&m));
	/* Registered out of order: the exposition sorts by exposed name. */
	f = family(m, "zeta", METRIC_GAUGE, NULL, NULL);
	ASSERT_OK(metrics_add_double(m, f, NULL, NULL, &tenth));
	f = family(m, "m2md_polls", METRIC_COUNTER, "driver,device", NULL);
	ASSERT_OK(metrics_add_u64(m, f, &n1, (const char *[]){ "plc", "dev" }, &n1));
	ASSERT_OK(metrics_add_u64(m, f, &n2, (const char *[]){ "plc", "" }, &n2));
	f = family(m, "m2md_build", METRIC_INFO, "version", NULL);
	ASSERT_OK(metrics_add(m, f, NULL, (const char *[]){ "1.0" }, NULL));
	f = family(m, "values", METRIC_GAUGE, "k", NULL);
	ASSERT_OK(metrics_add_u64(m, f, NULL, (const char *[]){ "big" }, &big));
	ASSERT_OK(metrics_add_u64(m, f, NULL, (const char *[]){ "exact" }, &exact));
	ASSERT_OK(metrics_add_double(m, f, NULL, (const char *[]){ "neg" }, &neg));
	ASSERT_OK(metrics_add_double(m, f, NULL, (const char *[]){ "nan" }, &nan_));
	ASSERT_OK(metrics_add_double(m, f, NULL, (const char *[]){ "inf" }, &inf));
	ASSERT_OK(metrics_add_double(m, f, NULL, (const char *[]){ "ninf" }, &ninf));
	ASSERT_OK(metrics_add_double(m, f, NULL, (const char *[]){ "huge" }, &huge));
	ASSERT_OK(metrics_family(m, &esc, &f));
	ASSERT_OK(metrics_add_u64(m, f, NULL, (const char *[]){ "a\\b\"c\nd" }, &n1));
	/* No series, no block. */
	family(m, "empty", METRIC_COUNTER, NULL, NULL);

	text = exposition(m);
	ASSERT_STR_EQ(text,
	              "# HELP esc Back\\\\slash and\\nnew line \"quoted\".\n"
	              "# TYPE esc gauge\n"
	              "esc{v=\"a\\\\b\\\"c\\nd\"} 1\n"
	              "# HELP m2md_build_info Some help.\n"
	              "# TYPE m2md_build_info gauge\n"
	              "m2md_build_info{version=\"1.0\"} 1\n"
	              "# HELP m2md_polls_total Some help.\n"
	              "# TYPE m2md_polls_total counter\n"
	              "m2md_polls_total{driver=\"plc\",device=\"dev\"} 1\n"
	              "m2md_polls_total{driver=\"plc\",device=\"\"} 2\n"
	              "# HELP values Some help.\n"
	              "# TYPE values gauge\n"
	              "values{k=\"big\"} 18446744073709551615\n"
	              "values{k=\"exact\"} 9007199254740993\n"
	              "values{k=\"neg\"} -2.5\n"
	              "values{k=\"nan\"} NaN\n"
	              "values{k=\"inf\"} +Inf\n"
	              "values{k=\"ninf\"} -Inf\n"
	              "values{k=\"huge\"} 1e+300\n"
	              "# HELP zeta Some help.\n"
	              "# TYPE zeta gauge\n"
	              "zeta 0.1\n");
	free(text);
	/* A stopped owner's series are gone from the next scrape. */
	ASSERT_EQ(metrics_remove_owner(m, &n1), 1);
	text = exposition(m);
	ASSERT(!strstr(text, "device=\"dev\""));
	ASSERT_STR_CONTAINS(text, "m2md_polls_total{driver=\"plc\",device=\"\"} 2\n");
	free(text);
	ASSERT_EQ(metrics_remove_owner(m, &n2), 1);
	text = exposition(m);
	ASSERT(!strstr(text, "m2md_polls"));
	free(text);

	/* An empty registry writes nothing. */
	metrics_free(m);
	ASSERT_OK(metrics_new(&m));
	text = exposition(m);
	ASSERT_STR_EQ(text, "");
	free(text);
	metrics_free(m);
	metrics_free(NULL);
}

int main(void) {
	RUN_TEST(test_names);
	RUN_TEST(test_register_again);
	RUN_TEST(test_series);
	RUN_TEST(test_add_list);
	RUN_TEST(test_refresh);
	RUN_TEST(test_json);
	RUN_TEST(test_line);
	RUN_TEST(test_prometheus);
	return 0;
}
