/* SPDX-License-Identifier: MIT */
/*
 * Prints a metrics registry with awkward names, help, label values and
 * values as Prometheus text to stdout, for test_metrics_expo.py, which
 * parses it with an independent parser (prometheus_client) and compares
 * what it reads with what this program registered. Exits 1 when a
 * registration fails.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "metrics.h"

struct fixture {
	uint64_t zero, max, exact, seven, removed;
	double tenth, neg, huge, tiny, nan_, inf, ninf, negzero, eighth;
};

static uint64_t getter(void *arg) {
	return *(const uint64_t *)arg + 1;
}

static int family(metrics *m, const char *name, const char *help, enum metric_type type,
                  const char *labels, metric_family **ret) {
	struct metric_desc d = { .name = name, .help = help, .type = type, .labels = labels };

	return metrics_family(m, &d, ret);
}

static int fill(metrics *m, struct fixture *x) {
	metric_family *f;
	int err = 0;

	/* Registered out of order: the exposition sorts. */
	err |= family(m, "zz_last", "Registered first, printed last.", METRIC_GAUGE, NULL, &f);
	err |= metrics_add_double(m, f, NULL, NULL, &x->eighth);

	err |= family(m, "m2md_driver_polls", "Polls \"sent\" \\ per device\nsecond line.",
	              METRIC_COUNTER, "driver,device", &f);
	err |= metrics_add_u64(m, f, NULL, (const char *[]){ "plc", "dev" }, &x->zero);
	err |= metrics_add_u64(m, f, NULL, (const char *[]){ "back\\slash", "quote\"d" }, &x->max);
	err |= metrics_add_u64(m, f, NULL, (const char *[]){ "new\nline", "" }, &x->exact);
	err |= metrics_add_u64(m, f, NULL, (const char *[]){ "caf\xc3\xa9 {a=b,c}", "\\n" }, &x->seven);
	err |= metrics_add(m, f, NULL, (const char *[]){ "getter", "x" },
	                   &(struct metric_source){ .get_u64 = getter, .arg = &x->seven });
	/* This owner stops before the scrape: its series must be gone. */
	err |= metrics_add_u64(m, f, &x->removed, (const char *[]){ "stopped", "dev" }, &x->removed);

	err |= family(m, "m2md:values", "Doubles of every kind.", METRIC_GAUGE, "case", &f);
	err |= metrics_add_double(m, f, NULL, (const char *[]){ "tenth" }, &x->tenth);
	err |= metrics_add_double(m, f, NULL, (const char *[]){ "neg" }, &x->neg);
	err |= metrics_add_double(m, f, NULL, (const char *[]){ "huge" }, &x->huge);
	err |= metrics_add_double(m, f, NULL, (const char *[]){ "tiny" }, &x->tiny);
	err |= metrics_add_double(m, f, NULL, (const char *[]){ "nan" }, &x->nan_);
	err |= metrics_add_double(m, f, NULL, (const char *[]){ "inf" }, &x->inf);
	err |= metrics_add_double(m, f, NULL, (const char *[]){ "ninf" }, &x->ninf);
	err |= metrics_add_double(m, f, NULL, (const char *[]){ "negzero" }, &x->negzero);

	err |= family(m, "m2md_build", "Version and gateway.", METRIC_INFO, "version,gateway", &f);
	err |= metrics_add(m, f, NULL, (const char *[]){ "1.2.3~rc1", "gw \"one\"\n" }, NULL);

	err |= family(m, "_leading_underscore", "A name may start with '_'.", METRIC_COUNTER, NULL, &f);
	err |= metrics_add_u64(m, f, NULL, NULL, &x->seven);

	/* No series: no block at all. */
	err |= family(m, "m2md_empty", "Never has a series.", METRIC_COUNTER, "driver", &f);

	metrics_remove_owner(m, &x->removed);
	return err;
}

int main(void) {
	struct fixture x = {
		.max = UINT64_MAX, .exact = (1ULL << 53) + 1, .seven = 7, .removed = 99,
		.tenth = 0.1, .neg = -2.5, .huge = 1e300, .tiny = 5e-324, .nan_ = NAN,
		.inf = INFINITY, .ninf = -INFINITY, .negzero = -0.0, .eighth = 123456789.125,
	};
	metrics *m;
	int err;

	if (metrics_new(&m) < 0)
		return 1;
	err = fill(m, &x);
	if (err) {
		fprintf(stderr, "metrics-expo: a registration failed\n");
		metrics_free(m);
		return 1;
	}
	err = metrics_prometheus(m, stdout);
	metrics_free(m);
	return err < 0 || fflush(stdout) != 0 ? 1 : 0;
}
