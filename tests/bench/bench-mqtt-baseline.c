/* SPDX-License-Identifier: MIT */
/*
 * The baseline of the MQTT benchmark: a plain libmosquitto publisher loop,
 * what mosquitto_pub does for many messages. It publishes COUNT messages of
 * the same size and shape as m2md's telemetry, at QoS 0 or at QoS 1 with
 * at most INFLIGHT unacknowledged (as m2md's max_inflight), and prints one
 * JSON line: messages, wall seconds, CPU seconds (getrusage).
 *
 * Usage: bench-mqtt-baseline PORT QOS COUNT [INFLIGHT]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <mosquitto.h>

struct state {
	long acked;
};

static double now_s(void) {
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

static void on_publish(struct mosquitto *mosq, void *obj, int mid) {
	struct state *st = obj;

	st->acked++;
}

int main(int argc, char **argv) {
	struct state st = { 0 };
	struct mosquitto *mosq;
	long count, inflight = 100, sent = 0;
	int port, qos, rc;
	double t0, c0;
	char topic[64], payload[160];

	if (argc < 4) {
		fprintf(stderr, "usage: %s PORT QOS COUNT [INFLIGHT]\n", argv[0]);
		return 2;
	}
	port = (int)strtol(argv[1], NULL, 10);
	qos = (int)strtol(argv[2], NULL, 10);
	count = strtol(argv[3], NULL, 10);
	if (argc > 4)
		inflight = strtol(argv[4], NULL, 10);
	mosquitto_lib_init();
	mosq = mosquitto_new("bench-baseline", true, &st);
	if (!mosq)
		return 1;
	mosquitto_int_option(mosq, MOSQ_OPT_SEND_MAXIMUM, (int)inflight);
	mosquitto_publish_callback_set(mosq, on_publish);
	rc = mosquitto_connect(mosq, "127.0.0.1", port, 30);
	if (rc != MOSQ_ERR_SUCCESS) {
		fprintf(stderr, "connect: %s\n", mosquitto_strerror(rc));
		return 1;
	}
	/* Wait for the CONNACK. */
	for (int i = 0; i < 100; i++)
		mosquitto_loop(mosq, 10, 1);

	t0 = now_s();
	c0 = cpu_s();
	st.acked = 0;
	while (sent < count || st.acked < count) {
		/* QoS 0 "acks" when written, so both wait until every message left. */
		while (sent < count && (sent - st.acked < inflight)) {
			int n = snprintf(payload, sizeof(payload),
			                 "{\"ts\":\"2026-01-01T00:00:00.%06ldZ\",\"value\":%.6f,\"unit\":\"kW\","
			                 "\"quality\":\"good\",\"seq\":%ld}",
			                 sent % 1000000, (double)sent * 0.001, sent + 1);
			snprintf(topic, sizeof(topic), "m2m/bench/line/p%ld", sent % 100);
			rc = mosquitto_publish(mosq, NULL, topic, n, payload, qos, false);
			if (rc != MOSQ_ERR_SUCCESS) {
				fprintf(stderr, "publish: %s\n", mosquitto_strerror(rc));
				return 1;
			}
			sent++;
		}
		rc = mosquitto_loop(mosq, 100, 1);
		if (rc != MOSQ_ERR_SUCCESS) {
			fprintf(stderr, "loop: %s\n", mosquitto_strerror(rc));
			return 1;
		}
	}
	printf("{\"messages\": %ld, \"wall_s\": %.6f, \"cpu_s\": %.6f}\n", count, now_s() - t0, cpu_s() - c0);
	mosquitto_disconnect(mosq);
	mosquitto_destroy(mosq);
	mosquitto_lib_cleanup();
	return 0;
}
