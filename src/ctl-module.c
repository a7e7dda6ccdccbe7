/* SPDX-License-Identifier: MIT */
/*
 * [control] as a module: the control socket of ctl-server.c wired to the
 * core. Its sink feeds "tail" clients every reading. Its section is read
 * at start only: the socket stays open across a reload.
 */
#include "ctl-server.h"
#include "error.h"
#include "log.h"
#include "module.h"

#include <stdlib.h>

struct ctl_module {
	struct core *core;
	ctl_server *s;
};

static int conf_parse(config *c, const cJSON *root, const struct module_parse_env *env,
                      void **ret) {
	return ctl_conf_parse(c, root, env->config_path, (ctl_conf **)ret);
}

static void conf_free(void *conf) {
	ctl_conf_free(conf);
}

static const char *lock_path(const void *conf) {
	return ctl_conf_socket(conf);
}

static cJSON *on_status(void *ctx) {
	struct core *c = ctx;

	return c->status_json ? c->status_json(c) : NULL;
}

static cJSON *on_points(void *ctx, const char *device) {
	return core_points_json(ctx, device);
}

static cJSON *on_read(void *ctx, const char *name) {
	struct point *p = registry_find(core_registry(ctx), name);

	return p && p->declared ? core_point_json(ctx, p) : NULL;
}

static const char *on_write_refusal(void *ctx, const char *point, double value, int err,
                                    char *buf, size_t n) {
	return core_write_refusal(ctx, point, value, err, buf, n);
}

static cJSON *on_rules(void *ctx, bool all) {
	struct core *c = ctx;

	return c->alarms.status ? c->alarms.status(c->alarms.m, all) : NULL;
}

static int on_ack(void *ctx, const char *rule, const char *point) {
	struct core *c = ctx;

	return c->alarms.ack ? c->alarms.ack(c->alarms.m, rule, point) : -ENOENT;
}

static void on_reload(void *ctx) {
	struct core *c = ctx;

	if (c->reload)
		c->reload(c);
}

static char *on_metrics(void *ctx) {
	char *text = NULL;
	size_t n = 0;
	FILE *f = core_metrics(ctx) ? open_memstream(&text, &n) : NULL;
	int err;

	if (!f)
		return NULL;
	err = metrics_prometheus(core_metrics(ctx), f);
	if (fclose(f) != 0 || err < 0) {
		free(text);
		return NULL;
	}
	return text;
}

/* Opens the control socket; a failure is logged and the gateway runs on without it. */
static int start(struct core *c, void *conf, void **ret) {
	struct ctl_env env = {
		.ctx = c,
		.loop = core_loop(c),
		.status = on_status,
		.points = on_points,
		.read = on_read,
		.write = core_write_ctx,
		.write_refusal = on_write_refusal,
		.rules = on_rules,
		.ack = on_ack,
		.reload = on_reload,
		.metrics = on_metrics,
	};
	struct ctl_module *cm = calloc(1, sizeof(*cm));
	int err = cm ? ctl_server_new(&env, conf, &cm->s) : (ctl_conf_free(conf), -ENOMEM);

	if (err < 0) {
		log_error("control socket unavailable, running without it: %s", m2m_strerror(err));
		free(cm);
		return err;
	}
	cm->core = c;
	if (core_metrics(c) && (err = ctl_server_metrics_add(cm->s, core_metrics(c), cm)) < 0)
		log_warning("control socket: its figures are not in the metrics: %s", m2m_strerror(err));
	*ret = cm;
	return 0;
}

/* A reload leaves the socket as it is (MODULE_START_ONLY): never called. */
static int reconfigure(void *m, void *conf) {
	ctl_conf_free(conf);
	return 0;
}

static void stop(void *m, void (*done)(void *arg), void *arg) {
	struct ctl_module *cm = m;

	ctl_server_close(cm->s, done, arg);
}

static void module_free(void *m) {
	struct ctl_module *cm = m;

	if (!cm)
		return;
	if (core_metrics(cm->core))
		metrics_remove_owner(core_metrics(cm->core), cm);
	ctl_server_free(cm->s);
	free(cm);
}

static void on_reading(void *m, const struct point *p, const struct reading *r) {
	struct ctl_module *cm = m;

	ctl_server_on_reading(cm->s, p, &r->r, r->text);
}

static const struct sink_ops sink = {
	.flags = SINK_ALL,
	.on_reading = on_reading,
};

const struct module_ops ctl_module = {
	.name = "control",
	.flags = MODULE_START_ONLY,
	.conf_parse = conf_parse,
	.conf_free = conf_free,
	.lock_path = lock_path,
	.start = start,
	.reconfigure = reconfigure,
	.stop = stop,
	.free = module_free,
	.sink = &sink,
};
