/* SPDX-License-Identifier: MIT */
/*
 * log() may be called from any thread (plugin.h), and an error it logs
 * becomes the instance's last error in status. This test does what a
 * plugin does from its bus thread, in a tight loop, while the loop thread
 * renders status and driver_start clears and sets the last error, all
 * through the real host table (host-api.c).
 *
 * Built with -fsanitize=thread where the toolchain has it (see meson.build):
 * ThreadSanitizer then fails the test on any unsynchronised access to
 * last_error. Without it (the ASan/UBSan build, cross builds) it still
 * checks that status never shows a torn message.
 */
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host-api.h"
#include "log.h"
#include "test.h"

#define LOGGED 20000

static atomic_bool done;

static void *bus_thread(void *arg) {
	struct m2m_host *drv = arg;

	for (int i = 0; i < LOGGED; i++)
		host_api.log(drv, i % 2 ? M2M_LOG_ERR : M2M_LOG_WARNING,
		             "bus \"tcp:127.0.0.1:502\" failed: request %d timed out", i);
	atomic_store(&done, true);
	return NULL;
}

/* Every last error status shows is one whole message: empty, from driver_start, or logged. */
static void check_whole(const char *e) {
	int n, k, end = 0;

	if (!e[0] || strcmp(e, "Connection refused") == 0)
		return;
	n = sscanf(e, "bus \"tcp:127.0.0.1:502\" failed: request %d timed out%n", &k, &end);
	if (n != 1 || end == 0 || e[end] != '\0')
		TEST_FAIL("a torn last error: \"%s\"", e);
}

static void test_log_from_a_bus_thread(void) {
	struct m2m_host *drv = calloc(1, sizeof(*drv));
	char want[256], got[256];
	unsigned reads = 0;
	pthread_t t;

	ASSERT(drv);
	drv->name = "plc1";
	ASSERT_OK(host_state_init(drv));
	ASSERT_OK(pthread_create(&t, NULL, bus_thread, drv));
	while (!atomic_load(&done) || reads == 0) {
		cJSON *o = cJSON_CreateObject();
		char copy[256];

		ASSERT(o);
		/* What daemon_status_json adds for the instance, on the loop thread. */
		host_status_json(drv, o);
		check_whole(cJSON_GetObjectItemCaseSensitive(o, "last_error")->valuestring);
		cJSON_Delete(o);
		/* What driver_start does when the plugin's start fails, or starts again. */
		if (reads % 64 == 0)
			host_set_last_error(drv, reads % 128 ? "" : "Connection refused", false);
		host_set_last_error(drv, "Connection refused", true);
		check_whole(host_last_error(drv, copy, sizeof(copy)));
		reads++;
	}
	ASSERT_OK(pthread_join(t, NULL));
	/* Only errors become the last error; warnings do not. */
	host_set_last_error(drv, "", false);
	host_api.log(drv, M2M_LOG_WARNING, "a warning");
	ASSERT_STR_EQ(host_last_error(drv, want, sizeof(want)), "");
	snprintf(want, sizeof(want), "request %d timed out", LOGGED);
	host_api.log(drv, M2M_LOG_ERR, "request %d timed out", LOGGED);
	ASSERT_STR_EQ(host_last_error(drv, got, sizeof(got)), want);
	fprintf(stderr, "   %d lines logged while status was read %u times\n", LOGGED, reads);
	host_state_free(drv);
	free(drv);
}

int main(void) {
	/* Nothing reaches stderr: the test is about last_error, not about the log's output. */
	log_set_max_level(LOG_CRIT);
	RUN_TEST(test_log_from_a_bus_thread);
	return 0;
}
