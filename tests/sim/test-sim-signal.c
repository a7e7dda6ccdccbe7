/* SPDX-License-Identifier: MIT */
/*
 * Tests of the sim driver's signal math (plugins/sim/sim-signal.c): values
 * at chosen times, seeded randomness, bounds, integrate following its
 * input, and writes. No host is needed: the math takes the time as input.
 */
#include "test.h"

#include "sim-signal.h"

#define S(x) ((int64_t)((x) * 1e6)) /* seconds to µs */
#define EPS 1e-9

static struct sim_signal make(int kind)
{
	struct sim_signal s;

	sim_signal_init(&s, kind);
	return s;
}

static void test_names(void)
{
	ASSERT_STR_EQ(sim_kind_names[SIM_SINE], "sine");
	ASSERT_STR_EQ(sim_kind_names[SIM_RANDOM_WALK], "random_walk");
	ASSERT_STR_EQ(sim_kind_names[SIM_INTEGRATE], "integrate");
	ASSERT(sim_kind_names[SIM_KIND_COUNT] == NULL);
	for (int k = 0; k < SIM_KIND_COUNT; k++)
		ASSERT(sim_kind_names[k] != NULL);
}

static void test_sine(void)
{
	struct sim_signal s = make(SIM_SINE);

	s.base = 10.0;
	s.amplitude = 2.0;
	s.period_us = S(4);
	sim_signal_prepare(&s, 1, "t/sine");
	ASSERT_DOUBLE_EQ(s.value, 10.0, EPS); /* what an input sees before a step */
	ASSERT_DOUBLE_EQ(sim_signal_next(&s, 0, 0), 10.0, EPS);
	ASSERT_DOUBLE_EQ(sim_signal_next(&s, S(1), 0), 12.0, EPS);
	ASSERT_DOUBLE_EQ(sim_signal_next(&s, S(2), 0), 10.0, EPS);
	ASSERT_DOUBLE_EQ(sim_signal_next(&s, S(3), 0), 8.0, EPS);
	ASSERT_DOUBLE_EQ(s.value, 8.0, EPS);
	/* A function of time only: far out and back again gives the same. */
	ASSERT_DOUBLE_EQ(sim_signal_next(&s, S(1) + S(4) * 1000000, 0), 12.0, EPS);
	ASSERT_DOUBLE_EQ(sim_signal_next(&s, S(0.5), 0), 10.0 + 2.0 * sin(M_PI / 4), EPS);
}

static void test_ramp_square(void)
{
	struct sim_signal r = make(SIM_RAMP), q = make(SIM_SQUARE);

	r.base = 5.0;
	r.amplitude = 10.0;
	r.period_us = S(10);
	sim_signal_prepare(&r, 1, "t/ramp");
	ASSERT_DOUBLE_EQ(sim_signal_next(&r, 0, 0), 5.0, EPS);
	ASSERT_DOUBLE_EQ(sim_signal_next(&r, S(2.5), 0), 7.5, EPS);
	ASSERT_DOUBLE_EQ(sim_signal_next(&r, S(9.999), 0), 14.999, 1e-6);
	ASSERT_DOUBLE_EQ(sim_signal_next(&r, S(10), 0), 5.0, EPS);
	ASSERT_DOUBLE_EQ(sim_signal_next(&r, S(25), 0), 10.0, EPS);

	/* Centred on base, high in the first half of the period. */
	q.base = 0.5;
	q.amplitude = 0.5;
	q.period_us = S(2);
	sim_signal_prepare(&q, 1, "t/square");
	ASSERT_DOUBLE_EQ(sim_signal_next(&q, 0, 0), 1.0, EPS);
	ASSERT_DOUBLE_EQ(sim_signal_next(&q, S(0.999), 0), 1.0, EPS);
	ASSERT_DOUBLE_EQ(sim_signal_next(&q, S(1), 0), 0.0, EPS);
	ASSERT_DOUBLE_EQ(sim_signal_next(&q, S(1.5), 0), 0.0, EPS);
	ASSERT_DOUBLE_EQ(sim_signal_next(&q, S(2), 0), 1.0, EPS);
}

static void test_rng(void)
{
	uint64_t a = 42, b = 42;
	double sum = 0;

	for (int i = 0; i < 100000; i++) {
		double x = sim_rng_uniform(&a);

		ASSERT(x >= 0.0 && x < 1.0);
		ASSERT(x == sim_rng_uniform(&b));
		sum += x;
	}
	ASSERT_DOUBLE_EQ(sum / 100000, 0.5, 0.01);
}

static void test_random(void)
{
	struct sim_signal a = make(SIM_RANDOM), b, c, d;
	double lo = 1e9, hi = -1e9, sum = 0;
	int n = 20000, differ = 0, differ_seed = 0;

	a.base = 100.0;
	a.amplitude = 5.0;
	b = c = d = a;
	sim_signal_prepare(&a, 7, "dev/a");
	sim_signal_prepare(&b, 7, "dev/a");
	sim_signal_prepare(&c, 7, "dev/b"); /* same seed, other point */
	sim_signal_prepare(&d, 8, "dev/a"); /* same point, other seed */
	for (int i = 0; i < n; i++) {
		int64_t t = (int64_t)i * 1000;
		double x = sim_signal_next(&a, t, 0);

		/* Reproducible: same seed and name, same sequence. */
		ASSERT(x == sim_signal_next(&b, t, 0));
		differ += x != sim_signal_next(&c, t, 0);
		differ_seed += x != sim_signal_next(&d, t, 0);
		ASSERT(x >= 95.0 && x <= 105.0);
		lo = fmin(lo, x);
		hi = fmax(hi, x);
		sum += x;
	}
	ASSERT_GT(differ, n - 10);
	ASSERT_GT(differ_seed, n - 10);
	ASSERT(lo < 95.1 && hi > 104.9);
	ASSERT_DOUBLE_EQ(sum / n, 100.0, 0.1);

	/* Bounds clamp. */
	a = make(SIM_RANDOM);
	a.base = 0.0;
	a.amplitude = 10.0;
	a.low = -1.0;
	a.high = 2.0;
	sim_signal_prepare(&a, 1, "dev/r");
	for (int i = 0; i < 1000; i++) {
		double x = sim_signal_next(&a, i, 0);

		ASSERT(x >= -1.0 && x <= 2.0);
	}
}

static void test_random_walk(void)
{
	struct sim_signal w = make(SIM_RANDOM_WALK), w2;
	double prev, lo = 1e9, hi = -1e9;

	ASSERT_DOUBLE_EQ(w.step, 0.1, EPS); /* the default largest step */
	w.base = 20.0;
	w.step = 0.5;
	w.low = 18.0;
	w.high = 21.0;
	w2 = w;
	sim_signal_prepare(&w, 3, "room/temp");
	sim_signal_prepare(&w2, 3, "room/temp");
	/* The first reading is the start value. */
	prev = sim_signal_next(&w, 0, 0);
	ASSERT_DOUBLE_EQ(prev, 20.0, EPS);
	ASSERT(sim_signal_next(&w2, 0, 0) == prev);
	for (int i = 1; i < 50000; i++) {
		double x = sim_signal_next(&w, (int64_t)i * 1000, 0);

		ASSERT(x == sim_signal_next(&w2, (int64_t)i * 1000, 0));
		ASSERT(fabs(x - prev) <= 0.5 + EPS);
		ASSERT(x >= 18.0 && x <= 21.0);
		lo = fmin(lo, x);
		hi = fmax(hi, x);
		prev = x;
	}
	/* It does walk: over 50000 steps it reaches both bounds. */
	ASSERT_DOUBLE_EQ(lo, 18.0, EPS);
	ASSERT_DOUBLE_EQ(hi, 21.0, EPS);

	/* A write sets the current value; the next reading shows it. */
	sim_signal_write(&w, 19.25);
	ASSERT_DOUBLE_EQ(w.value, 19.25, EPS);
	ASSERT_DOUBLE_EQ(sim_signal_next(&w, S(100), 0), 19.25, EPS);
	ASSERT(fabs(sim_signal_next(&w, S(101), 0) - 19.25) <= 0.5 + EPS);
}

static void test_counter(void)
{
	struct sim_signal c = make(SIM_COUNTER);
	const double want[] = { 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7, 0 };

	ASSERT_DOUBLE_EQ(c.step, 1.0, EPS);
	c.initial = 5;
	c.low = 0;
	c.high = 7;
	sim_signal_prepare(&c, 1, "m/count");
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		ASSERT_DOUBLE_EQ(sim_signal_next(&c, (int64_t)i * 1000, 0), want[i], EPS);

	/* A 16-bit register: 65535 + 1 wraps to 0. */
	c = make(SIM_COUNTER);
	c.initial = 65534;
	c.low = 0;
	c.high = 65535;
	sim_signal_prepare(&c, 1, "m/reg");
	ASSERT_DOUBLE_EQ(sim_signal_next(&c, 0, 0), 65534, EPS);
	ASSERT_DOUBLE_EQ(sim_signal_next(&c, 1, 0), 65535, EPS);
	ASSERT_DOUBLE_EQ(sim_signal_next(&c, 2, 0), 0, EPS);

	/* Counting down past low wraps to high. */
	c = make(SIM_COUNTER);
	c.initial = 1;
	c.step = -1;
	c.low = 0;
	c.high = 3;
	sim_signal_prepare(&c, 1, "m/down");
	ASSERT_DOUBLE_EQ(sim_signal_next(&c, 0, 0), 1, EPS);
	ASSERT_DOUBLE_EQ(sim_signal_next(&c, 1, 0), 0, EPS);
	ASSERT_DOUBLE_EQ(sim_signal_next(&c, 2, 0), 3, EPS);

	/* Without low, past high restarts at the initial value. */
	c = make(SIM_COUNTER);
	c.initial = 10;
	c.step = 5;
	c.high = 20;
	sim_signal_prepare(&c, 1, "m/up");
	ASSERT_DOUBLE_EQ(sim_signal_next(&c, 0, 0), 10, EPS);
	ASSERT_DOUBLE_EQ(sim_signal_next(&c, 1, 0), 15, EPS);
	ASSERT_DOUBLE_EQ(sim_signal_next(&c, 2, 0), 20, EPS);
	ASSERT_DOUBLE_EQ(sim_signal_next(&c, 3, 0), 10, EPS);

	/* Unbounded; a write is the next reading, then counting goes on. */
	c = make(SIM_COUNTER);
	sim_signal_prepare(&c, 1, "m/free");
	ASSERT_DOUBLE_EQ(sim_signal_next(&c, 0, 0), 0, EPS);
	ASSERT_DOUBLE_EQ(sim_signal_next(&c, 1, 0), 1, EPS);
	sim_signal_write(&c, 100);
	ASSERT_DOUBLE_EQ(sim_signal_next(&c, 2, 0), 100, EPS);
	ASSERT_DOUBLE_EQ(sim_signal_next(&c, 3, 0), 101, EPS);
}

static void test_constant(void)
{
	struct sim_signal c = make(SIM_CONSTANT);

	c.initial = 3.5;
	sim_signal_prepare(&c, 1, "x/c");
	ASSERT_DOUBLE_EQ(c.value, 3.5, EPS);
	for (int i = 0; i < 5; i++)
		ASSERT_DOUBLE_EQ(sim_signal_next(&c, S(i), 0), 3.5, EPS);
	sim_signal_write(&c, 1.0);
	ASSERT_DOUBLE_EQ(c.value, 1.0, EPS); /* an integrate input sees it at once */
	ASSERT_DOUBLE_EQ(sim_signal_next(&c, S(6), 0), 1.0, EPS);
	ASSERT_DOUBLE_EQ(sim_signal_next(&c, S(7), 0), 1.0, EPS);
}

static void test_integrate(void)
{
	struct sim_signal s = make(SIM_INTEGRATE);

	s.initial = 20.0;
	s.rate_on = 0.5;
	s.rate_off = -0.3;
	s.low = 10.0;
	s.high = 25.0;
	sim_signal_prepare(&s, 1, "boiler1/temperature");

	/* The first reading is the initial value; time counts from there. */
	ASSERT_DOUBLE_EQ(sim_signal_next(&s, S(1), 1.0), 20.0, EPS);
	ASSERT_DOUBLE_EQ(sim_signal_next(&s, S(2), 1.0), 20.5, EPS);
	ASSERT_DOUBLE_EQ(sim_signal_next(&s, S(4), 1.0), 21.5, EPS);
	/* Any non-zero input counts as on. */
	ASSERT_DOUBLE_EQ(sim_signal_next(&s, S(5), -2.0), 22.0, EPS);
	ASSERT_DOUBLE_EQ(sim_signal_next(&s, S(6), 0.0), 21.7, EPS);
	ASSERT_DOUBLE_EQ(sim_signal_next(&s, S(16), 0.0), 18.7, EPS);
	/* Clamped at both bounds. */
	ASSERT_DOUBLE_EQ(sim_signal_next(&s, S(1000), 0.0), 10.0, EPS);
	ASSERT_DOUBLE_EQ(sim_signal_next(&s, S(1001), 1.0), 10.5, EPS);
	ASSERT_DOUBLE_EQ(sim_signal_next(&s, S(2000), 1.0), 25.0, EPS);

	/* A write is the next reading; the time before it does not count. */
	sim_signal_write(&s, 15.0);
	ASSERT_DOUBLE_EQ(sim_signal_next(&s, S(2010), 1.0), 15.0, EPS);
	ASSERT_DOUBLE_EQ(sim_signal_next(&s, S(2012), 1.0), 16.0, EPS);

	/* After a restart time counts from the new start, the value is kept. */
	sim_signal_restart(&s);
	ASSERT_DOUBLE_EQ(sim_signal_next(&s, S(2), 1.0), 17.0, EPS);
}

/*
 * The closed loop the sim makes possible: a thermostat (here, the test)
 * writes the burner, a constant, and the temperature integrates it.
 */
static void test_boiler_loop(void)
{
	struct sim_signal burner = make(SIM_CONSTANT), temp = make(SIM_INTEGRATE);
	double lo = 1e9, hi = -1e9;
	int switches = 0;

	burner.initial = 0;
	sim_signal_prepare(&burner, 1, "boiler1/burner");
	temp.initial = 50;
	temp.rate_on = 0.5;
	temp.rate_off = -0.3;
	sim_signal_prepare(&temp, 1, "boiler1/temperature");

	for (int i = 0; i <= 3600; i++) {
		int64_t t = S(i);
		double b = sim_signal_next(&burner, t, 0);
		double v = sim_signal_next(&temp, t, burner.value);

		ASSERT(b == 0.0 || b == 1.0);
		if (i > 300) {
			lo = fmin(lo, v);
			hi = fmax(hi, v);
		}
		if (v < 55.0 && burner.value == 0.0) {
			sim_signal_write(&burner, 1.0);
			switches++;
		} else if (v > 60.0 && burner.value != 0.0) {
			sim_signal_write(&burner, 0.0);
			switches++;
		}
	}
	/* It settles into oscillation between the thresholds. */
	ASSERT_GT(switches, 10);
	ASSERT(lo > 54.0 && lo < 55.0);
	ASSERT(hi > 60.0 && hi < 61.0);
}

static void test_write_base(void)
{
	struct sim_signal s = make(SIM_SINE), r = make(SIM_RANDOM);

	s.period_us = S(4);
	sim_signal_prepare(&s, 1, "w/sine");
	ASSERT_DOUBLE_EQ(sim_signal_next(&s, S(1), 0), 1.0, EPS);
	sim_signal_write(&s, 100.0);
	ASSERT_DOUBLE_EQ(s.base, 100.0, EPS);
	ASSERT_DOUBLE_EQ(sim_signal_next(&s, S(1), 0), 101.0, EPS);

	r.amplitude = 1.0;
	sim_signal_prepare(&r, 1, "w/random");
	sim_signal_write(&r, -50.0);
	for (int i = 0; i < 100; i++) {
		double x = sim_signal_next(&r, i, 0);

		ASSERT(x >= -51.0 && x <= -49.0);
	}
}

int main(void)
{
	RUN_TEST(test_names);
	RUN_TEST(test_sine);
	RUN_TEST(test_ramp_square);
	RUN_TEST(test_rng);
	RUN_TEST(test_random);
	RUN_TEST(test_random_walk);
	RUN_TEST(test_counter);
	RUN_TEST(test_constant);
	RUN_TEST(test_integrate);
	RUN_TEST(test_boiler_loop);
	RUN_TEST(test_write_base);
	return 0;
}
