/* SPDX-License-Identifier: MIT */
#include "driver.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "host-api.h"
#include "error.h"
#include "ingest.h"
#include "log.h"
#include "util.h"

const char *driver_state_name(enum driver_state s) {
	switch (s) {
	case DRIVER_CREATED:
		return "created";
	case DRIVER_RUNNING:
		return "running";
	case DRIVER_FAILED:
		return "failed";
	case DRIVER_STOPPING:
		return "stopping";
	}
	return "unknown";
}

/* --- lifecycle --- */

static void driver_free(struct m2m_host *drv) {
	if (!drv)
		return;
	for (size_t i = 0; i < drv->n_points; i++)
		point_attrs_done(&drv->points[i].attrs);
	submit_queue_done(&drv->submits);
	free(drv->points);
	host_state_free(drv);
	free(drv->stats);
	plugin_put(&drv->core->plugins, drv->plugin);
	config_ref_put(drv->cfg);
	free(drv->name);
	free(drv);
}

int driver_create(struct core *core, registry *reg, bool validating, struct config_ref *cfg,
                  const struct driver_conf *conf, struct m2m_host **ret, char **ret_error) {
	struct m2m_host *drv;
	int err;

	*ret_error = NULL;
	drv = calloc(1, sizeof(*drv));
	if (!drv)
		return -ENOMEM;
	err = host_state_init(drv);
	if (err < 0) {
		free(drv);
		return err;
	}
	drv->core = core;
	drv->reg = reg;
	drv->validating = validating;
	submit_queue_init(&drv->submits, validating ? NULL : core->loop, ingest_submit, drv);
	drv->cfg = config_ref_get(cfg);
	drv->section = conf->section;
	drv->restart_min_us = conf->restart_min_us;
	drv->restart_max_us = conf->restart_max_us;
	drv->name = strdup(conf->name);
	if (!drv->name) {
		driver_free(drv);
		return -ENOMEM;
	}
	err = plugin_get(&core->plugins, conf->plugin_dir, conf->plugin, &drv->plugin, ret_error);
	if (err < 0) {
		/* The plugin's name in the config is where the user looks. */
		if (*ret_error) {
			config_error(cfg->c, cJSON_GetObjectItemCaseSensitive(conf->section, "plugin"), "%s",
			             *ret_error);
			free(*ret_error);
			*ret_error = NULL;
		}
		driver_free(drv);
		return err;
	}
	drv->creating = true;
	err = drv->plugin->desc->ops->create(drv, &host_api, conf->section, &drv->impl);
	drv->creating = false;
	if (err < 0) {
		if (!config_last_error(cfg->c))
			config_error(cfg->c, conf->section, "driver \"%s\" (plugin %s) refused its configuration: %s",
			             conf->name, conf->plugin, m2m_strerror(err));
		driver_free(drv);
		return err;
	}
	drv->state = DRIVER_CREATED;
	*ret = drv;
	return 0;
}

static void schedule_retry(struct m2m_host *drv);

static void on_retry(uv_timer_t *t) {
	struct m2m_host *drv = t->data;

	if (drv->state == DRIVER_FAILED)
		driver_start(drv);
}

static void claim_points(struct m2m_host *drv) {
	struct core *c = drv->core;

	for (size_t i = 0; i < drv->n_points; i++) {
		struct declared_point *dp = &drv->points[i];
		struct point *p = registry_get(c->reg, dp->id);
		static const char *const kinds[] = { "number", "bool", "string" };

		if (!p)
			continue;
		/* The config's attributes become the point's; the instance keeps none. */
		point_attrs_done(&p->a);
		p->a = dp->attrs;
		memset(&dp->attrs, 0, sizeof(dp->attrs));
		p->owner = drv;
		p->declared = true;
		p->has_stored = false;
		if (c->store)
			store_put_point(c->store, p->id, p->name, p->a.unit, kinds[p->a.kind]);
	}
}

void driver_start(struct m2m_host *drv) {
	char delay[32], why[sizeof(drv->last_error)];
	int err;

	if (drv->starts == 0 && drv->failures == 0) {
		claim_points(drv);
		/* Shown from the first start (a throw-away or pending instance shows nothing). */
		if (host_metrics_add(drv) < 0)
			log_warning("driver %s: its figures are not in the metrics", drv->name);
	}
	host_set_last_error(drv, "", false);
	drv->state = DRIVER_RUNNING;
	drv->starts++;
	err = drv->plugin->desc->ops->start(drv->impl);
	if (err >= 0) {
		if (drv->failures)
			log_notice("driver %s: started after %u failed attempts", drv->name, drv->failures);
		else
			log_info("driver %s: started (plugin %s %s)", drv->name, drv->plugin->name,
			         drv->plugin->desc->version ? drv->plugin->desc->version : "");
		drv->failures = 0;
		drv->backoff_us = 0;
		host_event(drv, NULL, "running", NULL);
		return;
	}
	drv->failures++;
	host_set_last_error(drv, m2m_strerror(err), true);
	host_last_error(drv, why, sizeof(why));
	drv->plugin->desc->ops->stop(drv->impl);
	host_reclaim_handles(drv);
	drv->state = DRIVER_FAILED;
	drv->backoff_us = drv->backoff_us ? drv->backoff_us * 2 : drv->restart_min_us;
	if (drv->backoff_us > drv->restart_max_us)
		drv->backoff_us = drv->restart_max_us;
	log_error("driver %s: start failed: %s; retrying in %s", drv->name, why,
	          format_duration(drv->backoff_us, delay, sizeof(delay)));
	host_event(drv, NULL, "failed", why);
	schedule_retry(drv);
}

static void schedule_retry(struct m2m_host *drv) {
	if (!drv->retry_timer_open) {
		if (uv_timer_init(drv->core->loop, &drv->retry_timer) < 0)
			return;
		drv->retry_timer.data = drv;
		drv->retry_timer_open = true;
	}
	uv_timer_start(&drv->retry_timer, on_retry, (uint64_t)(drv->backoff_us / 1000), 0);
}

static void finish_destroy(struct m2m_host *drv) {
	struct core *c = drv->core;

	drv->plugin->desc->ops->destroy(drv->impl);
	drv->impl = NULL;
	/* A write the plugin never completed is answered here, so no caller waits forever. */
	write_fail_pending(drv, M2M_EDRIVERDOWN);
	for (uint32_t id = 1; id < registry_end(c->reg); id++) {
		struct point *p = registry_get(c->reg, id);
		if (p && p->owner == drv) {
			p->owner = NULL;
			p->declared = false;
		}
	}
	/* Before ON_DESTROYED, which may start the instance that takes over its label. */
	host_metrics_remove(drv);
	if (drv->on_destroyed)
		drv->on_destroyed(drv, drv->on_destroyed_arg);
	driver_free(drv);
}

static void on_retry_closed(uv_handle_t *h) {
	finish_destroy(h->data);
}

static void maybe_destroy(struct m2m_host *drv) {
	if (drv->buses_closing > 0)
		return;
	if (drv->retry_timer_open) {
		drv->retry_timer_open = false;
		uv_close((uv_handle_t *)&drv->retry_timer, on_retry_closed);
		return;
	}
	finish_destroy(drv);
}

static void on_bus_closed(void *arg) {
	struct m2m_host *drv = arg;

	drv->buses_closing--;
	maybe_destroy(drv);
}

void driver_stop(struct m2m_host *drv, void (*on_destroyed)(struct m2m_host *, void *), void *arg) {
	struct host_bus *hb;

	drv->on_destroyed = on_destroyed;
	drv->on_destroyed_arg = arg;
	if (drv->state == DRIVER_RUNNING) {
		/* What the driver submitted reaches the core before it stops: a reload loses nothing. */
		submit_queue_flush(&drv->submits);
		drv->plugin->desc->ops->stop(drv->impl);
		host_event(drv, NULL, "stopped", NULL);
	}
	if (drv->retry_timer_open)
		uv_timer_stop(&drv->retry_timer);
	host_reclaim_handles(drv);
	drv->state = DRIVER_STOPPING;
	/* Count first: a bus may report closed before the loop below ends. */
	for (hb = drv->buses; hb; hb = hb->next)
		drv->buses_closing++;
	while ((hb = drv->buses)) {
		drv->buses = hb->next;
		bus_close(hb->bus, on_bus_closed, drv);
		free(hb);
	}
	maybe_destroy(drv);
}

void driver_discard(struct m2m_host *drv) {
	if (!drv)
		return;
	if (drv->impl)
		drv->plugin->desc->ops->destroy(drv->impl);
	driver_free(drv);
}
