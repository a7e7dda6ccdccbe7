/* SPDX-License-Identifier: MIT */
/*
 * sim-signal.h - the signal math of the sim driver, without a host.
 *
 * Everything here is pure: a signal is advanced by giving it the time since
 * the driver started, so tests (and fuzzers) can call it with chosen times
 * and get the same values the driver would submit. Nothing here allocates,
 * logs or reads a clock. Loop thread only (like the driver), though nothing
 * stops a test from using it anywhere.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* Signal shapes; the order matches sim_kind_names. */
enum sim_kind {
	SIM_SINE = 0,
	SIM_RAMP,
	SIM_SQUARE,
	SIM_RANDOM_WALK,
	SIM_RANDOM,
	SIM_COUNTER,
	SIM_CONSTANT,
	SIM_INTEGRATE,
	SIM_KIND_COUNT
};

/* Config names of the kinds ("sine", ...), NULL-terminated for cfg_enum. */
extern const char *const sim_kind_names[SIM_KIND_COUNT + 1];

/*
 * One simulated signal. The caller fills the parameters (after
 * sim_signal_init() set the defaults), then calls sim_signal_prepare().
 */
struct sim_signal {
	/* Parameters. */
	int kind;            /* enum sim_kind */
	double base;         /* centre (sine, square, random), start (ramp, random_walk) */
	double amplitude;    /* sine, ramp, square, random */
	int64_t period_us;   /* sine, ramp, square; > 0 */
	double step;         /* counter increment; random_walk largest step */
	double low, high;    /* bounds; -INFINITY / +INFINITY when not set */
	double initial;      /* first value of constant, counter, integrate */
	double rate_on;      /* integrate: units per second while input != 0 */
	double rate_off;     /* integrate: units per second while input == 0 */

	/* State. */
	double value;        /* the latest value, or the one written */
	int64_t last_us;     /* integrate: time of the previous step */
	uint64_t rng;        /* xorshift64* state; never 0 */
	bool hold;           /* report value unchanged on the next step */
};

/* Sets KIND and the defaults of every parameter. */
void sim_signal_init(struct sim_signal *s, int kind);

/*
 * Sets the state from the parameters: the first value, and the random
 * generator seeded from SEED and NAME (the point's name), so that a point's
 * sequence depends on the seed and its own name only, not on the order or
 * number of the other points. NAME may be NULL.
 */
void sim_signal_prepare(struct sim_signal *s, uint64_t seed, const char *name);

/*
 * Restarts the signal's clock: the next step's T_US counts from a new
 * start (the driver calls it from start()). The value is kept.
 */
void sim_signal_restart(struct sim_signal *s);

/*
 * Advances the signal to T_US µs since start and returns its value, which
 * is also left in s->value. INPUT is the current value of the integrate
 * signal's input (ignored by the other kinds). Stateful signals (counter,
 * random_walk, integrate, constant) report their first value, and a
 * written value, unchanged on the next step before they move on.
 */
double sim_signal_next(struct sim_signal *s, int64_t t_us, double input);

/*
 * Applies a write: constant, counter, random_walk and integrate take RAW as
 * their current value (reported by the next step); sine, ramp, square and
 * random take it as their new base.
 */
void sim_signal_write(struct sim_signal *s, double raw);

/* True for kinds whose value is state that a write replaces. */
bool sim_kind_is_stateful(int kind);

/* The next number of a xorshift64* generator, uniform in [0, 1). */
double sim_rng_uniform(uint64_t *state);
