/* SPDX-License-Identifier: MIT */
/*
 * sim-signal.c - the signal math of the sim driver. See sim-signal.h.
 */
#include "sim-signal.h"

#include <math.h>
#include <stddef.h>

const char *const sim_kind_names[SIM_KIND_COUNT + 1] = {
	[SIM_SINE] = "sine",
	[SIM_RAMP] = "ramp",
	[SIM_SQUARE] = "square",
	[SIM_RANDOM_WALK] = "random_walk",
	[SIM_RANDOM] = "random",
	[SIM_COUNTER] = "counter",
	[SIM_CONSTANT] = "constant",
	[SIM_INTEGRATE] = "integrate",
	[SIM_KIND_COUNT] = NULL,
};

/*
 * splitmix64, used only to turn a seed into a well-mixed generator state:
 * xorshift64* gives poor first numbers from a small seed such as 1.
 */
static uint64_t splitmix64(uint64_t x)
{
	x += UINT64_C(0x9e3779b97f4a7c15);
	x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

/* FNV-1a, so that each point's sequence is tied to its name. */
static uint64_t fnv1a(const char *s)
{
	uint64_t h = UINT64_C(0xcbf29ce484222325);

	for (; s && *s; s++) {
		h ^= (unsigned char)*s;
		h *= UINT64_C(0x100000001b3);
	}
	return h;
}

double sim_rng_uniform(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	/* The top 53 bits fill a double's mantissa exactly: [0, 1). */
	return (double)((x * UINT64_C(0x2545f4914f6cdd1d)) >> 11) * 0x1.0p-53;
}

bool sim_kind_is_stateful(int kind)
{
	return kind == SIM_RANDOM_WALK || kind == SIM_COUNTER || kind == SIM_CONSTANT ||
	       kind == SIM_INTEGRATE;
}

void sim_signal_init(struct sim_signal *s, int kind)
{
	*s = (struct sim_signal){
		.kind = kind,
		.base = 0.0,
		.amplitude = 1.0,
		.period_us = INT64_C(60000000),
		.step = kind == SIM_RANDOM_WALK ? 0.1 : 1.0,
		.low = -INFINITY,
		.high = INFINITY,
		.initial = 0.0,
		.rate_on = 1.0,
		.rate_off = -1.0,
		.rng = 1,
	};
}

static double clamp(const struct sim_signal *s, double v)
{
	if (v < s->low)
		return s->low;
	if (v > s->high)
		return s->high;
	return v;
}

void sim_signal_prepare(struct sim_signal *s, uint64_t seed, const char *name)
{
	s->rng = splitmix64(seed ^ fnv1a(name));
	if (s->rng == 0) /* the one state xorshift never leaves */
		s->rng = UINT64_C(0x9e3779b97f4a7c15);

	switch (s->kind) {
	case SIM_CONSTANT:
	case SIM_COUNTER:
		s->value = s->initial;
		break;
	case SIM_INTEGRATE:
		s->value = clamp(s, s->initial);
		break;
	case SIM_RANDOM_WALK:
		s->value = clamp(s, s->base);
		break;
	default:
		/* What an integrate reading this point sees before its first step. */
		s->value = s->base;
		break;
	}
	s->hold = sim_kind_is_stateful(s->kind);
	s->last_us = 0;
}

void sim_signal_restart(struct sim_signal *s)
{
	s->last_us = 0;
}

/* Where T_US falls in the period, in [0, 1); integer modulo keeps precision. */
static double phase(const struct sim_signal *s, int64_t t_us)
{
	int64_t p = s->period_us > 0 ? s->period_us : 1;
	int64_t r = t_us % p;

	if (r < 0)
		r += p;
	return (double)r / (double)p;
}

double sim_signal_next(struct sim_signal *s, int64_t t_us, double input)
{
	double v = s->value;

	if (s->hold) {
		/*
		 * The first value and a written value are reported as they are;
		 * integration counts from here, so the time before a write does
		 * not move the written value.
		 */
		s->hold = false;
		s->last_us = t_us;
		return v;
	}

	switch (s->kind) {
	case SIM_SINE:
		v = s->base + s->amplitude * sin(2.0 * M_PI * phase(s, t_us));
		break;
	case SIM_RAMP:
		v = s->base + s->amplitude * phase(s, t_us);
		break;
	case SIM_SQUARE:
		v = phase(s, t_us) < 0.5 ? s->base + s->amplitude : s->base - s->amplitude;
		break;
	case SIM_RANDOM_WALK:
		v = clamp(s, v + s->step * (2.0 * sim_rng_uniform(&s->rng) - 1.0));
		break;
	case SIM_RANDOM:
		v = clamp(s, s->base + s->amplitude * (2.0 * sim_rng_uniform(&s->rng) - 1.0));
		break;
	case SIM_COUNTER:
		v += s->step;
		/* A counter wraps like a register: past one bound to the other. */
		if (v > s->high)
			v = isfinite(s->low) ? s->low : s->initial;
		else if (v < s->low)
			v = isfinite(s->high) ? s->high : s->initial;
		break;
	case SIM_INTEGRATE: {
		double dt = (double)(t_us - s->last_us) / 1e6;

		if (dt > 0.0)
			v = clamp(s, v + (input != 0.0 ? s->rate_on : s->rate_off) * dt);
		s->last_us = t_us;
		break;
	}
	case SIM_CONSTANT:
	default:
		break;
	}
	s->value = v;
	return v;
}

void sim_signal_write(struct sim_signal *s, double raw)
{
	if (sim_kind_is_stateful(s->kind)) {
		s->value = raw;
		s->hold = true;
	} else {
		s->base = raw;
	}
}
