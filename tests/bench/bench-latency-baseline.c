/* SPDX-License-Identifier: MIT */
/*
 * The baseline of the latency benchmark: what a minimal gateway does, in
 * one loop on one thread and with nothing stored. Every INTERVAL ms it
 * reads REGISTERS holding registers with libmodbus in blocks of 125 and
 * publishes each register of a block, as soon as the block is read, at
 * QoS 0 with libmosquitto (default socket options) in a payload shaped
 * like m2md's telemetry. It runs until SIGTERM or SIGINT.
 *
 * Usage: bench-latency-baseline MODBUS-PORT MQTT-PORT REGISTERS INTERVAL-MS
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <modbus.h>
#include <mosquitto.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
	(void)sig;
	stop = 1;
}

static int64_t mono_ns(void) {
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int publish_block(struct mosquitto *mosq, int first, int n, const uint16_t *regs) {
	char topic[64], payload[160];
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	for (int i = 0; i < n; i++) {
		int len = snprintf(payload, sizeof(payload),
		                   "{\"ts\":\"%ld.%06ld\",\"value\":%u,\"unit\":\"\",\"quality\":\"good\"}",
		                   (long)ts.tv_sec, ts.tv_nsec / 1000, regs[i]);
		int rc;

		snprintf(topic, sizeof(topic), "bench/base/r%d", first + i);
		rc = mosquitto_publish(mosq, NULL, topic, len, payload, 0, false);
		if (rc != MOSQ_ERR_SUCCESS) {
			fprintf(stderr, "publish: %s\n", mosquitto_strerror(rc));
			return -1;
		}
	}
	return 0;
}

int main(int argc, char **argv) {
	struct sigaction sa = { .sa_handler = on_signal };
	uint16_t regs[125];
	struct mosquitto *mosq;
	modbus_t *ctx;
	int64_t next, interval_ns;
	int registers, rc;

	if (argc != 5) {
		fprintf(stderr, "usage: %s MODBUS-PORT MQTT-PORT REGISTERS INTERVAL-MS\n", argv[0]);
		return 2;
	}
	registers = (int)strtol(argv[3], NULL, 10);
	interval_ns = strtol(argv[4], NULL, 10) * 1000000;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	ctx = modbus_new_tcp("127.0.0.1", (int)strtol(argv[1], NULL, 10));
	if (!ctx || modbus_connect(ctx) < 0) {
		fprintf(stderr, "modbus connect: %s\n", modbus_strerror(errno));
		return 1;
	}
	mosquitto_lib_init();
	mosq = mosquitto_new(NULL, true, NULL);
	if (!mosq)
		return 1;
	rc = mosquitto_connect(mosq, "127.0.0.1", (int)strtol(argv[2], NULL, 10), 60);
	if (rc != MOSQ_ERR_SUCCESS) {
		fprintf(stderr, "mqtt connect: %s\n", mosquitto_strerror(rc));
		return 1;
	}
	next = mono_ns();
	while (!stop) {
		for (int a = 0; a < registers && !stop; a += 125) {
			int n = registers - a < 125 ? registers - a : 125;

			if (modbus_read_registers(ctx, a, n, regs) != n) {
				fprintf(stderr, "read: %s\n", modbus_strerror(errno));
				return 1;
			}
			if (publish_block(mosq, a, n, regs) < 0)
				return 1;
		}
		/* The rest of the interval in the MQTT loop: acks, pings, pending writes. */
		next += interval_ns;
		for (int64_t left; !stop && (left = next - mono_ns()) > 0;) {
			rc = mosquitto_loop(mosq, (int)(left / 1000000) + 1, 1);
			if (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_ERRNO) {
				fprintf(stderr, "mqtt loop: %s\n", mosquitto_strerror(rc));
				return 1;
			}
		}
	}
	mosquitto_disconnect(mosq);
	mosquitto_destroy(mosq);
	mosquitto_lib_cleanup();
	modbus_close(ctx);
	modbus_free(ctx);
	return 0;
}
