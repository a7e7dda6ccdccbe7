/* SPDX-License-Identifier: MIT */
/*
 * The subscriber of the latency benchmark: subscribes to TOPIC on a local
 * broker and stamps the arrival (CLOCK_REALTIME, ns) of every message that
 * carries a numeric "value". On SIGTERM or SIGINT it writes "VALUE NS"
 * lines to OUT-FILE and exits.
 *
 * Usage: bench-latency-sub PORT TOPIC OUT-FILE
 * Prints "READY" once subscribed.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mosquitto.h>

struct arrival {
	int64_t ns;
	double value;
};

struct state {
	struct arrival *a;
	size_t n, cap;
	bool subscribed, failed;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
	(void)sig;
	stop = 1;
}

static void on_subscribe(struct mosquitto *mosq, void *obj, int mid, int n, const int *granted) {
	struct state *st = obj;

	(void)mosq, (void)mid, (void)n, (void)granted;
	st->subscribed = true;
}

static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg) {
	struct state *st = obj;
	struct timespec ts;
	char buf[256], *v, *end;
	double value;

	(void)mosq;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (msg->payloadlen <= 0 || (size_t)msg->payloadlen >= sizeof(buf))
		return;
	memcpy(buf, msg->payload, (size_t)msg->payloadlen);
	buf[msg->payloadlen] = '\0';
	v = strstr(buf, "\"value\":");
	if (!v)
		return;
	value = strtod(v + 8, &end);
	if (end == v + 8)
		return;
	if (st->n == st->cap) {
		size_t cap = st->cap ? 2 * st->cap : 1 << 20;
		struct arrival *na = realloc(st->a, cap * sizeof(*na));
		if (!na) {
			st->failed = true;
			return;
		}
		st->a = na;
		st->cap = cap;
	}
	st->a[st->n++] = (struct arrival){ (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec, value };
}

int main(int argc, char **argv) {
	struct sigaction sa = { .sa_handler = on_signal };
	struct state st = { 0 };
	struct mosquitto *mosq;
	bool ready = false;
	FILE *out;
	int rc;

	if (argc != 4) {
		fprintf(stderr, "usage: %s PORT TOPIC OUT-FILE\n", argv[0]);
		return 2;
	}
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	mosquitto_lib_init();
	mosq = mosquitto_new(NULL, true, &st);
	if (!mosq)
		return 1;
	mosquitto_subscribe_callback_set(mosq, on_subscribe);
	mosquitto_message_callback_set(mosq, on_message);
	rc = mosquitto_connect(mosq, "127.0.0.1", (int)strtol(argv[1], NULL, 10), 60);
	if (rc == MOSQ_ERR_SUCCESS)
		rc = mosquitto_subscribe(mosq, NULL, argv[2], 0);
	if (rc != MOSQ_ERR_SUCCESS) {
		fprintf(stderr, "connect/subscribe: %s\n", mosquitto_strerror(rc));
		return 1;
	}
	while (!stop && !st.failed) {
		rc = mosquitto_loop(mosq, 100, 1000);
		if (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_ERRNO) {
			fprintf(stderr, "loop: %s\n", mosquitto_strerror(rc));
			return 1;
		}
		if (st.subscribed && !ready) {
			printf("READY\n");
			fflush(stdout);
			ready = true;
		}
	}
	out = fopen(argv[3], "w");
	if (!out)
		return 1;
	for (size_t i = 0; i < st.n; i++)
		fprintf(out, "%.0f %" PRId64 "\n", st.a[i].value, st.a[i].ns);
	fclose(out);
	mosquitto_destroy(mosq);
	mosquitto_lib_cleanup();
	return st.failed;
}
