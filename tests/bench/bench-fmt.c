/* SPDX-License-Identifier: MIT */
/*
 * fmt_double, the formatter of every number in MQTT payloads and control
 * replies, beside the plain method (the first of %.15g, %.16g and %.17g
 * that strtod reads back) in the same run: ns per number for a ramp's
 * phase in [0, 1), registers scaled by 0.1, and random bit patterns.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fmt.h"

#define N 1000000

static int plain(double v, char *buf, size_t n) {
	int len = 0;

	for (int digits = 15; digits <= 17; digits++) {
		len = snprintf(buf, n, "%.*g", digits, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	return len;
}

static double now_ns(void) {
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static double run(int (*fn)(double, char *, size_t), const double *v, size_t *sink) {
	char buf[FMT_DOUBLE_MAX];
	double t0 = now_ns();

	for (int i = 0; i < N; i++)
		*sink += (size_t)fn(v[i], buf, sizeof(buf));
	return (now_ns() - t0) / N;
}

int main(void) {
	static const char *const names[] = { "ramp phase [0,1)", "register * 0.1", "random bits" };
	double *v = malloc(N * sizeof(*v));
	uint64_t rng = 88172645463325252u;
	size_t sink = 0;

	if (!v)
		return 1;
	for (int set = 0; set < 3; set++) {
		for (int i = 0; i < N; i++) {
			rng ^= rng << 13;
			rng ^= rng >> 7;
			rng ^= rng << 17;
			if (set == 0)
				v[i] = (double)(rng >> 11) * 0x1p-53;
			else if (set == 1)
				v[i] = (double)(int)(rng % 200001 - 100000) * 0.1;
			else
				memcpy(&v[i], &rng, sizeof(v[i]));
			if (!isfinite(v[i]))
				v[i] = 0.5;
		}
		/* Best of three, each method in turn, so that both see the same machine. */
		double best_f = INFINITY, best_p = INFINITY;
		for (int k = 0; k < 3; k++) {
			best_f = fmin(best_f, run(fmt_double, v, &sink));
			best_p = fmin(best_p, run(plain, v, &sink));
		}
		printf("%-18s fmt_double %6.0f ns | plain %6.0f ns | ratio %.2f\n", names[set],
		       best_f, best_p, best_f / best_p);
	}
	free(v);
	return sink == 0;
}
