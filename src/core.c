/* SPDX-License-Identifier: MIT */
/*
 * The core's small services to modules: events, the point and driver
 * views the control socket and MQTT show, the services one module offers
 * another (publishing, alarms), and the sinks that are not the hot path
 * (device states, the point set). The readings' hot path is ingest.c.
 */
#include "core.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "driver.h"
#include "host-api.h"

void core_event(struct core *c, const struct store_event *e) {
	if (c->store)
		store_put_event(c->store, e);
}

int core_write_ctx(void *ctx, const char *origin, const char *name, double value, write_cb cb,
                   void *arg) {
	return core_write(ctx, origin, name, value, cb, arg);
}

void core_event_ctx(void *ctx, const struct store_event *e) {
	core_event(ctx, e);
}

int core_metrics_add(struct core *c, const void *owner, const struct metric_entry *list, size_t n) {
	return c->metrics ? metrics_add_list(c->metrics, owner, list, n) : 0;
}

cJSON *core_drivers_json(struct core *c) {
	cJSON *a = cJSON_CreateArray();

	for (struct m2m_host *drv = c->drivers; a && drv; drv = drv->next)
		cJSON_AddItemToArray(a, cJSON_CreateString(drv->name));
	return a;
}

cJSON *core_point_json(struct core *c, const struct point *p) {
	cJSON *o = cJSON_CreateObject();

	if (!o)
		return NULL;
	cJSON_AddNumberToObject(o, "id", p->id);
	cJSON_AddStringToObject(o, "name", p->name);
	cJSON_AddStringToObject(o, "unit", p->a.unit ? p->a.unit : "");
	cJSON_AddStringToObject(o, "kind", p->a.kind == POINT_BOOL ? "bool" :
	                                   p->a.kind == POINT_STRING ? "string" : "number");
	cJSON_AddBoolToObject(o, "writable", p->a.writable);
	cJSON_AddStringToObject(o, "driver", p->owner ? p->owner->name : "");
	if (!isnan(p->a.min))
		cJSON_AddNumberToObject(o, "min", p->a.min);
	if (!isnan(p->a.max))
		cJSON_AddNumberToObject(o, "max", p->a.max);
	if (p->has_value) {
		cJSON_AddNumberToObject(o, "ts", (double)p->ts_us);
		if (p->a.kind == POINT_STRING)
			cJSON_AddStringToObject(o, "value", p->text ? p->text : "");
		else if (isfinite(p->value))
			cJSON_AddNumberToObject(o, "value", p->value);
		else
			cJSON_AddNullToObject(o, "value");
		cJSON_AddStringToObject(o, "quality", quality_name(p->quality));
		if (p->quality != M2M_QUALITY_GOOD && p->detail) {
			char why[96];
			cJSON_AddStringToObject(o, "detail", quality_detail(p->quality, p->detail, why,
			                                                    sizeof(why)));
		}
	}
	cJSON_AddNumberToObject(o, "readings", (double)p->readings);
	host_point_json(p, o);
	return o;
}

cJSON *core_points_json(struct core *c, const char *device) {
	size_t n = device ? strlen(device) : 0;
	cJSON *a = cJSON_CreateArray();

	/* Bounded by the number of points, and only on request: not a per-tick scan. */
	for (uint32_t id = 1; a && id < registry_end(c->reg); id++) {
		struct point *p = registry_get(c->reg, id);
		if (!p || !p->declared)
			continue;
		if (device && (strncmp(p->name, device, n) != 0 || p->name[n] != '/'))
			continue;
		cJSON_AddItemToArray(a, core_point_json(c, p));
	}
	return a;
}

int core_publish(struct core *c, const char *topic, const char *payload, int qos, bool retain) {
	if (!c->publisher.publish)
		return -ENOTCONN;
	return c->publisher.publish(c->publisher.m, topic, payload, qos, retain);
}

const char *core_topic_prefix(struct core *c) {
	return c->publisher.topic_prefix ? c->publisher.topic_prefix(c->publisher.m) : "";
}

void core_set_sinks(struct core *c, const struct core_sink *sinks, size_t n) {
	c->n_sinks = c->n_stored = c->n_all = 0;
	for (size_t i = 0; i < n && i < CORE_SINKS_MAX; i++) {
		c->sinks[c->n_sinks++] = sinks[i];
		if (sinks[i].ops->flags & SINK_STORED)
			c->stored[c->n_stored++] = sinks[i];
		else
			c->all[c->n_all++] = sinks[i];
	}
}

void core_device_state(struct core *c, const char *driver, const char *device, int state,
                       const char *reason) {
	for (size_t i = 0; i < c->n_sinks; i++)
		if (c->sinks[i].ops->on_device_state)
			c->sinks[i].ops->on_device_state(c->sinks[i].m, driver, device, state, reason);
}

void core_points_changed(struct core *c) {
	for (size_t i = 0; i < c->n_sinks; i++)
		if (c->sinks[i].ops->on_points_changed)
			c->sinks[i].ops->on_points_changed(c->sinks[i].m);
}
