/* SPDX-License-Identifier: MIT */
/*
 * [[rules]] as a module: the engine of rules.c wired to the core, with the
 * one uv timer the engine asks for (rules_next_deadline). Its sink sees
 * every numeric reading; it offers the core the alarm states and the ack
 * for the control socket.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "error.h"
#include "log.h"
#include "module.h"
#include "rules.h"
#include "util.h"

struct rules_module {
	struct core *core;
	rules *r;
	uv_timer_t timer;     /* fires at rules_next_deadline() */
	int64_t timer_due;    /* monotonic µs the timer is set for, or INT64_MAX */
	bool stopping;
	void (*done)(void *arg);
	void *done_arg;
	struct rules_stats stats; /* the engine's counters at the last rendering */
	uint64_t n_rules, n_instances, n_active; /* its sizes, as the registry reads them */
};

static int conf_parse(config *c, const cJSON *root, const struct module_parse_env *env,
                      void **ret) {
	return rules_conf_parse(c, root, env->points, (rules_conf **)ret);
}

static void conf_free(void *conf) {
	rules_conf_free(conf);
}

static void schedule(struct rules_module *rm);

static void on_timer(uv_timer_t *t) {
	struct rules_module *rm = t->data;

	rm->timer_due = INT64_MAX;
	rules_advance(rm->r, mono_us());
	schedule(rm);
}

/* Keeps the timer at the engine's next deadline. */
static void schedule(struct rules_module *rm) {
	int64_t due = rules_next_deadline(rm->r), delay;

	if (due == rm->timer_due || rm->stopping)
		return;
	rm->timer_due = due;
	if (due == INT64_MAX) {
		uv_timer_stop(&rm->timer);
		return;
	}
	delay = due - mono_us();
	/* Round up: firing a millisecond early would find nothing due yet. */
	uv_timer_start(&rm->timer, on_timer, delay > 0 ? (uint64_t)(delay + 999) / 1000 : 0, 0);
}

static int on_publish(void *ctx, const char *topic, const char *payload, int qos, bool retain) {
	return core_publish(ctx, topic, payload, qos, retain);
}

static const char *on_topic_prefix(void *ctx) {
	return core_topic_prefix(ctx);
}

static cJSON *alarms_status(void *m, bool all) {
	struct rules_module *rm = m;

	return rules_status_json(rm->r, all);
}

static int alarms_ack(void *m, const char *rule, const char *point) {
	struct rules_module *rm = m;
	int r;

	/* The engine's clock moves with readings and timers; an ack must see now. */
	rules_advance(rm->r, mono_us());
	r = rules_ack(rm->r, rule, point);
	/* An ack that ends a latched alarm may defer an on_clear write. */
	schedule(rm);
	return r;
}

static void refresh_stats(void *arg) {
	struct rules_module *rm = arg;

	rules_get_stats(rm->r, &rm->stats);
	rm->n_rules = rm->stats.rules;
	rm->n_instances = rm->stats.instances;
	rm->n_active = rm->stats.active;
}

/* Shown by the exposition only: status shows the alarms themselves. */
static int add_metrics(struct rules_module *rm) {
#define C(n, h, f) { .desc = { .name = "m2md_rules_" n, .help = h, .type = METRIC_COUNTER }, \
                     .src = { .u64 = &rm->f } }
#define G(n, h, f) { .desc = { .name = "m2md_rules_" n, .help = h, .type = METRIC_GAUGE }, \
                     .src = { .u64 = &rm->f } }
#define ACTIONS(r) { { .name = "m2md_rules_actions", .help = "Rule actions by their result.", \
                       .type = METRIC_COUNTER, .labels = "result" }, \
                     { .u64 = &rm->stats.actions_##r }, #r }
	const struct metric_entry list[] = {
		G("configured", "Rules in the running set.", n_rules),
		G("instances", "Rule and point pairs watched.", n_instances),
		G("instances_active", "Rule and point pairs not normal.", n_active),
		C("evaluations", "Evaluations of a rule on a point.", stats.evaluations),
		C("transitions", "Alarm state changes.", stats.transitions),
		ACTIONS(ok), ACTIONS(failed),
		C("writes_deferred", "Write actions deferred by their rate limit.",
		  stats.writes_deferred),
	};
#undef C
#undef G
#undef ACTIONS
	int err = core_metrics(rm->core) ? metrics_add_refresh(core_metrics(rm->core), rm,
	                                                       refresh_stats, rm) : 0;

	return err < 0 ? err : core_metrics_add(rm->core, rm, list, ELEMENTSOF(list));
}

static int start(struct core *c, void *conf, void **ret) {
	struct rules_env env = {
		.ctx = c,
		.reg = core_registry(c),
		.event = core_event_ctx,
		.write = core_write_ctx,
		.publish = on_publish,
		.gateway_id = core_gateway_id(c),
		.topic_prefix = on_topic_prefix,
	};
	struct rules_module *rm = calloc(1, sizeof(*rm));
	int err;

	if (!rm) {
		rules_conf_free(conf);
		err = -ENOMEM;
		goto fail;
	}
	rm->core = c;
	rm->timer_due = INT64_MAX;
	err = rules_new(&env, conf, mono_us(), &rm->r);
	if (err < 0) {
		free(rm);
		goto fail;
	}
	uv_timer_init(core_loop(c), &rm->timer);
	rm->timer.data = rm;
	/* Alarm states come back from the events table before the first reading. */
	if (core_starting(c) && (err = rules_restore(rm->r, core_db_path(c))) < 0)
		log_warning("cannot restore alarm states from %s: %s", core_db_path(c),
		            m2m_strerror(err));
	c->alarms = (struct core_alarms){ .status = alarms_status, .ack = alarms_ack, .m = rm };
	if ((err = add_metrics(rm)) < 0)
		log_warning("rules: their figures are not in the metrics: %s", m2m_strerror(err));
	/* A restored pending alarm resumes its raise delay: the timer must know. */
	schedule(rm);
	*ret = rm;
	return 0;
fail:
	log_error("cannot install the rules: %s", m2m_strerror(err));
	return err;
}

/*
 * A running engine is reconfigured even to no rules at all (CONF NULL):
 * ending the alarms of removed rules (transition, on_clear, deferred
 * writes) is its job, and the writes it sends must still find it.
 */
static int reconfigure(void *m, void *conf) {
	struct rules_module *rm = m;
	/* The engine keeps its env on reload, but [gateway].id may have changed. */
	int err = rules_reconfigure(rm->r, conf, mono_us());

	if (err == 0)
		err = rules_set_gateway_id(rm->r, core_gateway_id(rm->core));
	if (err < 0)
		log_error("cannot install the rules: %s", m2m_strerror(err));
	schedule(rm);
	return err;
}

static void on_timer_closed(uv_handle_t *h) {
	struct rules_module *rm = h->data;

	rm->done(rm->done_arg);
}

static void stop(void *m, void (*done)(void *arg), void *arg) {
	struct rules_module *rm = m;

	rm->stopping = true;
	rm->done = done;
	rm->done_arg = arg;
	uv_close((uv_handle_t *)&rm->timer, on_timer_closed);
}

static void module_free(void *m) {
	struct rules_module *rm = m;

	if (!rm)
		return;
	if (rm->core->alarms.m == rm)
		rm->core->alarms = (struct core_alarms){ 0 };
	if (core_metrics(rm->core))
		metrics_remove_owner(core_metrics(rm->core), rm);
	rules_free(rm->r);
	free(rm);
}

static void on_reading(void *m, const struct point *p, const struct reading *r) {
	struct rules_module *rm = m;

	/* Rules watch numbers and bools; text has no threshold. */
	if (!r->text)
		rules_on_reading(rm->r, p, &r->r, r->mono_us);
}

static void on_submit_end(void *m) {
	schedule(m);
}

static cJSON *status_json(void *m) {
	struct rules_module *rm = m;

	/* Always present, empty without rules: scripts need not test for it. */
	return rules_status_json(rm ? rm->r : NULL, false);
}

static const struct sink_ops sink = {
	.flags = SINK_ALL,
	.on_reading = on_reading,
	.on_submit_end = on_submit_end,
};

const struct module_ops rules_module = {
	.name = "rules",
	.flags = MODULE_AFTER_DRIVERS,
	.conf_parse = conf_parse,
	.conf_free = conf_free,
	.start = start,
	.reconfigure = reconfigure,
	.stop = stop,
	.free = module_free,
	.sink = &sink,
	.status_key = "alarms",
	.status_json = status_json,
};
