/* SPDX-License-Identifier: MIT */
/*
 * Writes, from the request to the completion. core_write() makes every
 * check before anything can reach a device; a refusal and a completion
 * each end as one log line, one counter and one event row (kind "write",
 * the origin as source, to_state refused/ok/error), whoever asked.
 */
#include "write.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "driver.h"
#include "error.h"
#include "fmt.h"
#include "host-api.h"
#include "log.h"
#include "util.h"

void write_finish(struct m2m_write *w) {
	struct m2m_host *drv = w->drv;
	struct core *c = drv->core;
	const char *text = w->error_text ? w->error_text : (w->status < 0 ? m2m_strerror(w->status) : NULL);
	struct store_event e = {
		.ts_us = now_us(),
		.kind = "write",
		.source = w->origin,
		.point = w->point,
		.value = w->value,
		.to_state = w->status < 0 ? "error" : "ok",
		.text = text,
	};
	struct point *p = registry_get(c->reg, w->point);

	LIST_REMOVE(drv->writes, w);
	if (w->status < 0) {
		c->writes_failed++;
		log_warning("write %s = %g from %s failed: %s", p ? p->name : "?", w->value, w->origin,
		            text);
	} else {
		c->writes_ok++;
		log_info("write %s = %g from %s: ok", p ? p->name : "?", w->value, w->origin);
	}
	core_event(c, &e);
	if (w->cb)
		w->cb(w->status, text, w->arg);
	free(w->origin);
	free(w->error_text);
	free(w);
}

/* Hands a checked write to the instance; the result arrives through CB. */
static int send_write(struct m2m_host *drv, const char *origin, struct point *p, double value,
                      write_cb cb, void *arg) {
	const struct m2m_driver_ops *ops = drv->plugin->desc->ops;
	struct m2m_write *w;
	int err;

	/* core_write has checked the driver's state and that it can write. */
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->origin = strdup(origin ? origin : "unknown");
	if (!w->origin) {
		free(w);
		return -ENOMEM;
	}
	w->drv = drv;
	w->point = p->id;
	w->value = value;
	w->cb = cb;
	w->arg = arg;
	LIST_PREPEND(drv->writes, w);

	w->in_call = true;
	err = ops->write(drv->impl, p->id, point_to_raw(p, value), w);
	w->in_call = false;
	if (!w->completed) {
		if (err >= 0)
			return 0; /* completes later */
		w->completed = true;
		w->status = err;
	}
	write_finish(w);
	return 0;
}

/*
 * Why a write of VALUE to NAME (the point P, NULL when unknown) was
 * refused with ERR, in words a person acts on: "unknown point 'x/y'",
 * "value 500 is above max 90". Into BUF; returns BUF.
 */
static const char *refusal_text(const struct point *p, const char *name, double value, int err,
                                char *buf, size_t n) {
	const struct m2m_host *drv = p ? p->owner : NULL;
	char v[FMT_DOUBLE_MAX], lim[FMT_DOUBLE_MAX];

	if (isfinite(value))
		fmt_double(value, v, sizeof(v));
	else
		snprintf(v, sizeof(v), "%g", value);
	if (!p || err == -ENOENT)
		snprintf(buf, n, "unknown point '%s'", name);
	else if (err == M2M_ENOTWRITABLE)
		snprintf(buf, n, "point '%s' is not writable (writable = true in its config)", name);
	else if (err == -EOPNOTSUPP && p->a.kind == POINT_STRING)
		snprintf(buf, n, "point '%s' holds text; writes carry a number", name);
	else if (err == -EOPNOTSUPP)
		snprintf(buf, n, "driver '%s' cannot write", drv ? drv->name : "?");
	else if (err == -EINVAL && p->a.kind == POINT_BOOL && isfinite(value))
		snprintf(buf, n, "value %s for the bool point '%s': expected 0 or 1 (false/true)", v, name);
	else if (err == -EINVAL)
		snprintf(buf, n, "value %s is not a finite number", v);
	else if (err == M2M_ELIMIT && !isnan(p->a.min) && value < p->a.min)
		snprintf(buf, n, "value %s is below min %s of '%s'", v,
		         (fmt_double(p->a.min, lim, sizeof(lim)), lim), name);
	else if (err == M2M_ELIMIT)
		snprintf(buf, n, "value %s is above max %s of '%s'", v,
		         (fmt_double(p->a.max, lim, sizeof(lim)), lim), name);
	else if (err == M2M_EDRIVERDOWN)
		snprintf(buf, n, "driver '%s' of '%s' is %s", drv ? drv->name : "?", name,
		         drv ? driver_state_name(drv->state) : "not running");
	else
		snprintf(buf, n, "%s", m2m_strerror(err));
	return buf;
}

const char *core_write_refusal(struct core *c, const char *name, double value, int err,
                               char *buf, size_t n) {
	struct point *p = registry_find(c->reg, name);

	return refusal_text(p && p->declared ? p : NULL, name, value, err, buf, n);
}

static int refuse(struct core *c, const char *origin, struct point *p, const char *name,
                  double value, int err) {
	char why[256];
	struct store_event e = {
		.ts_us = now_us(),
		.kind = "write",
		.source = origin,
		.point = p ? p->id : 0,
		.value = value,
		.to_state = "refused",
		.text = refusal_text(p, name, value, err, why, sizeof(why)),
	};

	c->writes_refused++;
	log_warning("write %s from %s refused: %s", name, origin, why);
	core_event(c, &e);
	return err;
}

int core_write(struct core *c, const char *origin, const char *name, double value, write_cb cb,
               void *arg) {
	struct point *p = registry_find(c->reg, name);
	struct m2m_host *drv;

	if (!origin)
		origin = "unknown";
	if (!p || !p->declared)
		return refuse(c, origin, NULL, name, value, -ENOENT);
	/* Every check happens here, before anything can reach a device. */
	if (!p->a.writable)
		return refuse(c, origin, p, name, value, M2M_ENOTWRITABLE);
	if (p->a.kind == POINT_STRING)
		return refuse(c, origin, p, name, value, -EOPNOTSUPP);
	if (!isfinite(value) || (p->a.kind == POINT_BOOL && value != 0 && value != 1))
		return refuse(c, origin, p, name, value, -EINVAL);
	if ((!isnan(p->a.min) && value < p->a.min) || (!isnan(p->a.max) && value > p->a.max))
		return refuse(c, origin, p, name, value, M2M_ELIMIT);
	drv = p->owner;
	if (!drv || drv->state != DRIVER_RUNNING)
		return refuse(c, origin, p, name, value, M2M_EDRIVERDOWN);
	if (!drv->plugin->desc->ops->write)
		return refuse(c, origin, p, name, value, -EOPNOTSUPP);
	return send_write(drv, origin, p, value, cb, arg);
}

void write_fail_pending(struct m2m_host *drv, int status) {
	/* A write the plugin never completed is answered, so no caller waits forever. */
	while (drv->writes) {
		struct m2m_write *w = drv->writes;
		w->completed = true;
		w->status = status;
		write_finish(w);
	}
}
