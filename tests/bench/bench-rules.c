/* SPDX-License-Identifier: MIT */
/*
 * Cost of the rules engine per reading, in process, beside a baseline
 * measured in the same run: the same readings through normalization alone.
 *
 *   A: 10,000 threshold rules over 10,000 points (one rule per point, with
 *      hysteresis and a raise delay; about 1% of readings cross).
 *   B: stale detection over 100,000 points (one pattern rule), the clock
 *      moving 1 s per round; 1% of the points go silent and turn stale.
 *
 * Each runs twice: readings in point order (a driver's poll delivers a
 * device's points together) and in a shuffled order, which defeats the
 * prefetcher on the engine's arrays (the worst case for the cache).
 *
 * Prints wall and CPU nanoseconds per reading and the difference to the
 * baseline. Target: at most 200 ns added per reading. The figures are what
 * matters; the exit status is 0 unless the engine misbehaves. Logging is
 * set to warnings: the transitions' info lines would flood the output
 * (event rows are still produced, through a counting callback).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "config.h"
#include "log.h"
#include "point.h"
#include "rules.h"
#include "store.h"

#define SEC 1000000LL

struct ctx {
	uint64_t events;
};

static void on_event(void *arg, const struct store_event *e) {
	(void)e;
	((struct ctx *)arg)->events++;
}

static double wall_s(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void) {
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       (double)ru.ru_stime.tv_usec / 1e6;
}

static registry *make_points(uint32_t n) {
	registry *reg;
	char name[64];

	if (registry_new(&reg) < 0)
		abort();
	for (uint32_t i = 0; i < n; i++) {
		uint32_t id;
		struct point *p;
		snprintf(name, sizeof(name), "dev%05u/temp", i);
		if (registry_intern(reg, name, &id, NULL) < 0 || !(p = registry_get(reg, id)))
			abort();
		p->declared = true;
		p->a.scale = 1;
		p->a.min = p->a.max = NAN;
		p->a.unit = strdup("");
		p->a.description = strdup("");
	}
	return reg;
}

static rules *make_rules(registry *reg, const char *toml, struct ctx *cx, int64_t now) {
	struct rules_env env = { .ctx = cx, .reg = reg, .event = on_event, .gateway_id = "bench" };
	rules_conf *rc = NULL;
	char *error = NULL;
	config *c;
	rules *r;

	if (config_load_string(toml, "bench.toml", &c, &error) < 0 ||
	    rules_conf_parse(c, config_root(c), reg, &rc) < 0 || !rc) {
		fprintf(stderr, "config: %s\n", error ? error : config_last_error(c));
		exit(1);
	}
	config_free(c);
	if (rules_new(&env, rc, now, &r) < 0)
		abort();
	return r;
}

struct run {
	double wall, cpu;
};

/* One pass over every point (in ORDER, ids 1..N), ROUNDS times; R NULL is the baseline. */
static struct run pass(registry *reg, rules *r, const uint32_t *order, uint32_t n, int rounds, int64_t *mono,
                       int64_t step, double (*value)(uint32_t id, int round), uint32_t silent_every) {
	double w0 = wall_s(), c0 = cpu_s();

	for (int k = 0; k < rounds; k++) {
		for (uint32_t i = 0; i < n; i++) {
			uint32_t id = order[i];
			struct point *p = registry_get(reg, id);
			struct m2m_reading rd = { .ts_us = 1700000000 * SEC + *mono, .point = id };
			if (silent_every && id % silent_every == 0)
				continue;
			rd.value = value(id, k);
			point_normalize(p, &rd);
			if (r)
				rules_on_reading(r, p, &rd, *mono);
		}
		*mono += step;
		if (r)
			rules_advance(r, *mono);
	}
	return (struct run){ wall_s() - w0, cpu_s() - c0 };
}

/* Mostly below 85; every 100th point swings above it now and then. */
static double value_a(uint32_t id, int round) {
	double base = 60 + (double)(id % 17);
	if (id % 100 == 0 && round % 4 >= 2)
		return 90;
	return base + (double)(round % 3);
}

static double value_b(uint32_t id, int round) {
	return (double)(id + (uint32_t)round);
}

static void report(const char *what, struct run base, struct run with, double readings) {
	double bw = base.wall / readings * 1e9, ww = with.wall / readings * 1e9;
	double bc = base.cpu / readings * 1e9, wc = with.cpu / readings * 1e9;

	printf("%s\n", what);
	printf("  baseline (normalize only): %7.1f ns/reading wall, %7.1f ns CPU\n", bw, bc);
	printf("  with rules:                %7.1f ns/reading wall, %7.1f ns CPU\n", ww, wc);
	printf("  added by rules:            %7.1f ns/reading wall, %7.1f ns CPU (ratio %.2f)  target <= 200 ns\n",
	       ww - bw, wc - bc, bw > 0 ? ww / bw : 0);
}

static struct run best(struct run a, struct run b) {
	return a.wall < b.wall ? a : b;
}

/* Ids 1..N in order, or shuffled (a fixed seed: every run sees the same order). */
static uint32_t *make_order(uint32_t n, bool shuffled) {
	uint32_t *v = malloc(n * sizeof(*v));
	uint64_t x = 0x9e3779b97f4a7c15u;

	if (!v)
		abort();
	for (uint32_t i = 0; i < n; i++)
		v[i] = i + 1;
	for (uint32_t i = n - 1; shuffled && i > 0; i--) {
		uint32_t j, t;
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		j = (uint32_t)(x % (i + 1));
		t = v[i];
		v[i] = v[j];
		v[j] = t;
	}
	return v;
}

/* Best of REPS for the baseline and the engine, interleaved so both see the same machine. */
static void measure(const char *what, registry *reg, rules *r, uint32_t n, int rounds, bool shuffled,
                    int64_t *mono, double (*value)(uint32_t id, int round), uint32_t silent_every) {
	struct run base = { 1e9, 0 }, with = { 1e9, 0 };
	uint32_t *order = make_order(n, shuffled);
	double readings = (double)n * rounds * (silent_every ? 1.0 - 1.0 / silent_every : 1.0);

	for (int k = 0; k < 3; k++) {
		int64_t idle = *mono; /* the baseline's clock must not age the engine */
		base = best(base, pass(reg, NULL, order, n, rounds, &idle, SEC, value, silent_every));
		with = best(with, pass(reg, r, order, n, rounds, mono, SEC, value, silent_every));
	}
	report(what, base, with, readings);
	free(order);
}

int main(void) {
	const uint32_t na = 10000, nb = 100000;
	const int rounds_a = 100, rounds_b = 20;
	struct ctx cx = { 0 };
	struct rules_stats st;
	int64_t mono = 1000 * SEC;
	char *toml;
	size_t len = 0, cap = (size_t)na * 160 + 1;
	registry *ra, *rb;
	rules *r;
	double t0;

	log_set_max_level(LOG_WARNING);

	/* A: one rule per point. */
	ra = make_points(na);
	toml = malloc(cap);
	if (!toml)
		abort();
	for (uint32_t i = 0; i < na; i++)
		len += (size_t)snprintf(toml + len, cap - len,
		                        "[[rules]]\nname = \"r%05u\"\npoint = \"dev%05u/temp\"\ncondition = \">\"\n"
		                        "value = 85\nclear = 80\nfor = \"1s\"\n",
		                        i, i);
	t0 = wall_s();
	r = make_rules(ra, toml, &cx, mono);
	printf("A: %u rules over %u points, loaded in %.2f s\n", na, na, wall_s() - t0);
	free(toml);
	measure("A: 10,000 threshold rules, 10,000 points, readings in point order", ra, r, na, rounds_a, false,
	        &mono, value_a, 0);
	measure("A': the same, readings in shuffled order", ra, r, na, rounds_a, true, &mono, value_a, 0);
	rules_get_stats(r, &st);
	printf("  %llu evaluations, %llu transitions, %zu alarms not normal now\n",
	       (unsigned long long)st.evaluations, (unsigned long long)st.transitions, st.active);
	if (st.transitions == 0)
		return 1;
	rules_free(r);
	registry_free(ra);

	/* B: stale detection over 100,000 points. */
	rb = make_points(nb);
	t0 = wall_s();
	r = make_rules(rb, "[[rules]]\nname = \"quiet\"\npoint = \"*/temp\"\ncondition = \"stale\"\n"
	                   "stale_after = \"5s\"\n",
	               &cx, mono);
	printf("B: stale rule over %u points, loaded in %.2f s\n", nb, wall_s() - t0);
	measure("B: stale detection, 100,000 points (1% silent), readings in point order", rb, r, nb, rounds_b,
	        false, &mono, value_b, 100);
	measure("B': the same, readings in shuffled order", rb, r, nb, rounds_b, true, &mono, value_b, 100);
	rules_get_stats(r, &st);
	printf("  %zu instances, %zu stale now (expected %u), %llu transitions\n", st.instances, st.active,
	       nb / 100, (unsigned long long)st.transitions);
	if (st.active != nb / 100)
		return 1;
	rules_free(r);
	registry_free(rb);
	return 0;
}
