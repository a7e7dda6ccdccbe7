/* SPDX-License-Identifier: MIT */
/*
 * bench-modbus-raw - the baseline of bench-modbus.py: the same Modbus
 * reads as the gateway makes (COUNT holding registers from address 0 of
 * units 1..UNITS, 125 per request, every INTERVAL_MS), with bare libmodbus
 * and nothing else: no decoding, no storage, no scheduling beyond a sleep.
 * It prints the CPU seconds it used per 1,000 registers read, so that the
 * benchmark can report the gateway's cost as a ratio measured in the same
 * run on the same machine.
 *
 *   bench-modbus-raw HOST PORT UNITS COUNT INTERVAL_MS SECONDS
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <modbus.h>

static int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int parse(const char *s, long min, long max, long *ret)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

int main(int argc, char **argv)
{
	long port, units, count, interval_ms, seconds;
	uint16_t regs[125];
	uint64_t readings = 0, errors = 0;
	int64_t next, end;
	double cpu0;
	modbus_t *ctx;

	if (argc != 7 || parse(argv[2], 1, 65535, &port) < 0 || parse(argv[3], 1, 247, &units) < 0 ||
	    parse(argv[4], 1, 65536, &count) < 0 || parse(argv[5], 1, 60000, &interval_ms) < 0 ||
	    parse(argv[6], 1, 3600, &seconds) < 0) {
		fprintf(stderr, "usage: %s HOST PORT UNITS COUNT INTERVAL_MS SECONDS\n", argv[0]);
		return 2;
	}
	ctx = modbus_new_tcp(argv[1], (int)port);
	if (!ctx || modbus_connect(ctx) < 0) {
		fprintf(stderr, "connecting to %s:%ld failed: %s\n", argv[1], port,
		        modbus_strerror(errno));
		return 1;
	}
	cpu0 = cpu_s();
	next = mono_us();
	end = next + seconds * 1000000;
	while (mono_us() < end) {
		for (long u = 1; u <= units; u++) {
			modbus_set_slave(ctx, (int)u);
			for (long a = 0; a < count; a += 125) {
				int n = (int)(count - a < 125 ? count - a : 125);

				if (modbus_read_registers(ctx, (int)a, n, regs) == n)
					readings += (uint64_t)n;
				else
					errors++;
			}
		}
		next += interval_ms * 1000;
		for (int64_t now = mono_us(); now < next; now = mono_us()) {
			struct timespec ts = { 0, (long)((next - now) * 1000) };

			nanosleep(&ts, NULL);
		}
	}
	{
		double used = cpu_s() - cpu0;

		printf("raw readings=%" PRIu64 " errors=%" PRIu64 " cpu_s=%.3f cpu_s_per_1000=%.6f\n",
		       readings, errors, used, readings ? used / ((double)readings / 1000.0) : 0.0);
	}
	modbus_close(ctx);
	modbus_free(ctx);
	return 0;
}
