/* SPDX-License-Identifier: MIT */
/*
 * bench-can-decode: the signal decoder's cost per signal, in process. A
 * message of eight signals (Intel and Motorola, signed and unsigned, odd
 * start bits and lengths, a float) is decoded from a ring of random frames;
 * the figure is CPU ns per decoded signal (getrusage), beside the cost of
 * copying the frames alone, measured in the same run. A program, not a
 * timed test: it prints figures and fails only when the decoder does.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "can-dbc.h"
#include "can-signal.h"

static const char dbc[] =
	"BO_ 256 Bench: 8 ECU\n"
	" SG_ a : 0|8@1+ (1,0) [0|0] \"\" X\n"
	" SG_ b : 8|12@1- (0.1,-40) [0|0] \"\" X\n"
	" SG_ c : 20|4@1+ (1,0) [0|0] \"\" X\n"
	" SG_ d : 31|16@0+ (0.25,0) [0|0] \"\" X\n"
	" SG_ e : 39|3@0+ (1,0) [0|0] \"\" X\n"
	" SG_ f : 36|5@1- (1,0) [0|0] \"\" X\n"
	" SG_ g : 41|7@1+ (2,1) [0|0] \"\" X\n"
	" SG_ h : 48|16@1+ (0.01,0) [0|0] \"\" X\n";

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

int main(void)
{
	enum { FRAMES = 4096, ROUNDS = 2000 };
	static uint8_t frames[FRAMES][8];
	const struct can_message *m;
	struct can_dbc *d = NULL;
	char *err = NULL;
	volatile double sink = 0;
	double t0, t_copy, t_decode;
	uint8_t copy[8];

	if (can_dbc_parse(dbc, sizeof(dbc) - 1, "bench.dbc", &d, &err) < 0) {
		fprintf(stderr, "%s\n", err ? err : "parse failed");
		return 1;
	}
	m = can_dbc_message(d, 256, false);
	if (!m || m->n_signals != 8) {
		fprintf(stderr, "the bench message is not as written\n");
		return 1;
	}
	srand(1414);
	for (size_t i = 0; i < FRAMES; i++)
		for (size_t j = 0; j < 8; j++)
			frames[i][j] = (uint8_t)rand();

	t0 = cpu_s();
	for (int r = 0; r < ROUNDS; r++)
		for (size_t i = 0; i < FRAMES; i++) {
			memcpy(copy, frames[i], sizeof(copy));
			sink += copy[r & 7];
		}
	t_copy = cpu_s() - t0;

	t0 = cpu_s();
	for (int r = 0; r < ROUNDS; r++)
		for (size_t i = 0; i < FRAMES; i++)
			for (size_t s = 0; s < m->n_signals; s++) {
				double v;
				uint64_t raw;

				if (can_signal_decode(m, s, frames[i], 8, &v, &raw) < 0)
					return 1;
				sink += v;
			}
	t_decode = cpu_s() - t0;

	printf("CAN decode: %d frames x 8 signals\n", FRAMES * ROUNDS);
	printf("  decode            %.1f ns per signal (target <= 30 ns), %.1f ns per frame\n",
	       t_decode * 1e9 / ((double)FRAMES * ROUNDS * 8), t_decode * 1e9 / ((double)FRAMES * ROUNDS));
	printf("  baseline          %.1f ns per frame to copy it alone\n",
	       t_copy * 1e9 / ((double)FRAMES * ROUNDS));
	can_dbc_free(d);
	return sink == 12345.678 ? 2 : 0;
}
