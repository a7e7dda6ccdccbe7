/* SPDX-License-Identifier: MIT */
/*
 * [mqtt] as a module: the client of mqtt.c wired to the core. Its sink
 * takes what passes the deadband (what is stored is what is published),
 * and it offers the core a publisher for rule actions.
 */
#include <errno.h>
#include <stdlib.h>

#include "error.h"
#include "log.h"
#include "m2m-build.h"
#include "module.h"
#include "mqtt.h"

struct mqtt_module {
	struct core *core;
	mqtt *m;
};

static int conf_parse(config *c, const cJSON *root, const struct module_parse_env *env,
                      void **ret) {
	return mqtt_conf_parse(c, root, env->gateway_id, (mqtt_conf **)ret);
}

static void conf_free(void *conf) {
	mqtt_conf_free(conf);
}

static cJSON *drivers_json(void *ctx) {
	return core_drivers_json(ctx);
}

static int publish(void *m, const char *topic, const char *payload, int qos, bool retain) {
	return mqtt_publish(m, topic, payload, qos, retain);
}

static const char *topic_prefix(void *m) {
	return mqtt_topic_prefix(m);
}

static int start(struct core *c, void *conf, void **ret) {
	struct mqtt_env env = {
		.ctx = c,
		.loop = core_loop(c),
		.store = core_store(c),
		.reg = core_registry(c),
		.gateway_id = core_gateway_id(c),
		.version = M2M_VERSION,
		.drivers_json = drivers_json,
		.write = core_write_ctx,
		.event = core_event_ctx,
	};
	struct mqtt_module *mm = calloc(1, sizeof(*mm));
	int err = mm ? mqtt_new(&env, conf, &mm->m) : (mqtt_conf_free(conf), -ENOMEM);

	if (err < 0) {
		log_error("cannot start MQTT: %s", m2m_strerror(err));
		free(mm);
		return err;
	}
	mm->core = c;
	if (core_metrics(c) && (err = mqtt_metrics_add(mm->m, core_metrics(c), mm)) < 0)
		log_warning("MQTT: its figures are not in the metrics: %s", m2m_strerror(err));
	/* Rule actions publish through the running client until it is freed. */
	c->publisher = (struct core_publisher){ .publish = publish, .topic_prefix = topic_prefix,
	                                        .m = mm->m };
	*ret = mm;
	return 0;
}

static int reconfigure(void *p, void *conf) {
	struct mqtt_module *mm = p;
	int err;

	if (!conf)
		return MODULE_STOP;
	err = mqtt_reconfigure(mm->m, conf);
	if (err < 0)
		log_error("cannot start MQTT: %s", m2m_strerror(err));
	/* The broker's info series carries the URL and client id, which a reload may change. */
	if (core_metrics(mm->core)) {
		int r;
		metrics_remove_owner(core_metrics(mm->core), mm);
		if ((r = mqtt_metrics_add(mm->m, core_metrics(mm->core), mm)) < 0)
			log_warning("MQTT: its figures are not in the metrics: %s", m2m_strerror(r));
	}
	return err;
}

/* The client says "offline" and flushes within its own bound before DONE. */
static void stop(void *p, void (*done)(void *arg), void *arg) {
	struct mqtt_module *mm = p;

	mqtt_stop(mm->m, done, arg);
}

static void module_free(void *p) {
	struct mqtt_module *mm = p;

	if (!mm)
		return;
	if (core_metrics(mm->core))
		metrics_remove_owner(core_metrics(mm->core), mm);
	if (mm->core->publisher.m == mm->m)
		mm->core->publisher = (struct core_publisher){ 0 };
	mqtt_free(mm->m);
	free(mm);
}

static void on_reading(void *p, const struct point *pt, const struct reading *r) {
	struct mqtt_module *mm = p;

	mqtt_on_reading(mm->m, pt, &r->r, r->text, r->stored);
}

static cJSON *status_json(void *p) {
	struct mqtt_module *mm = p;

	return mm ? mqtt_status_json(mm->m) : NULL;
}

static const struct sink_ops sink = {
	.flags = SINK_STORED,
	.on_reading = on_reading,
};

const struct module_ops mqtt_module = {
	.name = "mqtt",
	.conf_parse = conf_parse,
	.conf_free = conf_free,
	.start = start,
	.reconfigure = reconfigure,
	.stop = stop,
	.free = module_free,
	.sink = &sink,
	.status_key = "mqtt",
	.status_json = status_json,
};
