/* SPDX-License-Identifier: MIT */
/*
 * A module built only in the test suite: it counts what its sink sees and
 * shows the counts as the "count" block of the status object. It runs when
 * the config has a [count] table. Registered by one line in the table of
 * src/modules.c (under M2M_TEST_MODULES), it is the proof that a module is
 * one file and one line.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "config.h"
#include "module.h"

struct count {
	uint64_t readings, stored, text, submits, device_states, offline, points_changed, reloads;
};

static int conf_parse(config *c, const cJSON *root, const struct module_parse_env *env,
                      void **ret) {
	int err = 0;
	const cJSON *t = config_item(c, root, "count", cJSON_Object, &err);

	*ret = NULL;
	if (err < 0 || !t)
		return err;
	/* The section has no keys; the module needs a non-NULL conf to run. */
	*ret = calloc(1, 1);
	return *ret ? 0 : -ENOMEM;
}

static void conf_free(void *conf) {
	free(conf);
}

static int start(struct core *c, void *conf, void **ret) {
	free(conf);
	*ret = calloc(1, sizeof(struct count));
	return *ret ? 0 : -ENOMEM;
}

static int reconfigure(void *m, void *conf) {
	struct count *n = m;

	if (!conf)
		return MODULE_STOP;
	free(conf);
	n->reloads++;
	return 0;
}

static void stop(void *m, void (*done)(void *arg), void *arg) {
	done(arg);
}

static void on_reading(void *m, const struct point *p, const struct reading *r) {
	struct count *n = m;

	n->readings++;
	n->stored += r->stored;
	n->text += r->text != NULL;
}

static void on_submit_end(void *m) {
	((struct count *)m)->submits++;
}

static void on_device_state(void *m, const char *driver, const char *device, int state,
                            const char *reason) {
	struct count *n = m;

	n->device_states++;
	n->offline += state == M2M_DEVICE_OFFLINE;
}

static void on_points_changed(void *m) {
	((struct count *)m)->points_changed++;
}

static cJSON *status_json(void *m) {
	const struct count *n = m;
	cJSON *o;

	if (!n || !(o = cJSON_CreateObject()))
		return NULL;
	cJSON_AddNumberToObject(o, "readings", (double)n->readings);
	cJSON_AddNumberToObject(o, "stored", (double)n->stored);
	cJSON_AddNumberToObject(o, "text", (double)n->text);
	cJSON_AddNumberToObject(o, "submits", (double)n->submits);
	cJSON_AddNumberToObject(o, "device_states", (double)n->device_states);
	cJSON_AddNumberToObject(o, "offline", (double)n->offline);
	cJSON_AddNumberToObject(o, "points_changed", (double)n->points_changed);
	cJSON_AddNumberToObject(o, "reloads", (double)n->reloads);
	return o;
}

static const struct sink_ops sink = {
	.flags = SINK_ALL,
	.on_reading = on_reading,
	.on_submit_end = on_submit_end,
	.on_device_state = on_device_state,
	.on_points_changed = on_points_changed,
};

const struct module_ops count_module = {
	.name = "count",
	.conf_parse = conf_parse,
	.conf_free = conf_free,
	.start = start,
	.reconfigure = reconfigure,
	.stop = stop,
	.free = free,
	.sink = &sink,
	.status_key = "count",
	.status_json = status_json,
};
