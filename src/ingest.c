/* SPDX-License-Identifier: MIT */
/*
 * The hot path. Every reading passes here once; the cost per reading is an
 * id lookup, the normalization, the deadband, a copy into the storage
 * batch and one call per sink. The sinks are two small arrays (core.h)
 * walked in module table order: first those that take only what passes
 * the deadband (SINK_STORED, inside the storage stage), then those that
 * take every reading (SINK_ALL).
 */
#include "ingest.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "driver.h"
#include "util.h"

static struct m2m_reading *batch_reserve(struct core *c, size_t n) {
	if (n > c->batch_cap) {
		struct m2m_reading *b = realloc(c->batch, n * sizeof(*b));
		if (!b)
			return NULL;
		c->batch = b;
		c->batch_cap = n;
	}
	return c->batch;
}

static void submit_end(struct core *c) {
	for (size_t k = 0; k < c->n_sinks; k++)
		if (c->sinks[k].ops->on_submit_end)
			c->sinks[k].ops->on_submit_end(c->sinks[k].m);
}

int ingest_submit(struct m2m_host *drv, const struct m2m_reading *r, size_t n) {
	struct core *c = drv->core;
	const struct core_sink *stored_sinks = c->stored, *all_sinks = c->all;
	size_t n_stored_sinks = c->n_stored, n_all_sinks = c->n_all;
	struct m2m_reading *batch;
	size_t stored = 0, rejected = 0, unstored = 0, room;
	int64_t ts = 0, mono;

	if (drv->state != DRIVER_RUNNING)
		return -ESHUTDOWN;
	if (n == 0)
		return 0;
	if (n > INT32_MAX)
		return -E2BIG;
	batch = batch_reserve(c, n);
	if (!batch)
		return -ENOMEM;
	mono = n_all_sinks ? mono_us() : 0;
	/*
	 * What the queue takes is decided before anything is published, and
	 * the durable messages are staged to be queued with their readings:
	 * the QoS 1 stream then carries exactly the readings that commit.
	 */
	room = store_queue_room(c->store);
	store_stage_begin(c->store);
	for (size_t i = 0; i < n; i++) {
		struct point *p = registry_get(c->reg, r[i].point);
		struct reading rd = { .r = r[i], .mono_us = mono };

		if (!p || p->owner != drv || p->a.kind == POINT_STRING) {
			rejected++;
			continue;
		}
		if (rd.r.ts_us == 0)
			rd.r.ts_us = ts ? ts : (ts = now_us());
		if (point_normalize(p, &rd.r)) {
			rd.stored = stored < room;
			if (rd.stored)
				batch[stored++] = rd.r;
			else
				unstored++;
			/* What is stored is what is published: one deadband for both. */
			for (size_t k = 0; k < n_stored_sinks; k++)
				stored_sinks[k].ops->on_reading(stored_sinks[k].m, p, &rd);
		}
		/* Rules and the live tail see every reading, not only what the deadband lets through. */
		for (size_t k = 0; k < n_all_sinks; k++)
			all_sinks[k].ops->on_reading(all_sinks[k].m, p, &rd);
	}
	submit_end(c);
	c->readings_in += n - rejected;
	drv->readings += n - rejected;
	if (c->store) {
		store_put_readings(c->store, batch, stored);
		store_count_dropped(c->store, unstored);
	}
	c->readings_stored += stored;
	if (rejected) {
		c->readings_rejected += rejected;
		return -EINVAL;
	}
	return (int)n;
}

int ingest_text(struct m2m_host *drv, uint32_t id, int64_t ts_us, const char *text,
                uint16_t quality, uint16_t detail) {
	struct core *c = drv->core;
	struct point *p = registry_get(c->reg, id);
	bool changed;
	char *copy;

	if (drv->state != DRIVER_RUNNING)
		return -ESHUTDOWN;
	if (!p || p->owner != drv || p->a.kind != POINT_STRING || !text) {
		c->readings_rejected++;
		return -EINVAL;
	}
	copy = strndup(text, 255);
	if (!copy)
		return -ENOMEM;
	if (ts_us == 0)
		ts_us = now_us();
	changed = !p->text || strcmp(p->text, copy) != 0 || p->quality != quality || !p->has_value;
	free(p->text);
	p->text = copy;
	p->ts_us = ts_us;
	p->quality = quality;
	p->detail = detail;
	p->value = NAN;
	p->has_value = true;
	p->readings++;
	c->readings_in++;
	drv->readings++;
	/* A text point has no deadband: it is stored, published and shown when it changes. */
	if (changed) {
		struct reading rd = {
			.r = { .ts_us = ts_us, .value = NAN, .point = id, .quality = quality,
			       .detail = detail },
			.text = copy,
			/* As for numbers: the message is staged and queued with its row. */
			.stored = store_queue_room(c->store) > 0,
		};
		if (c->n_all)
			rd.mono_us = mono_us();
		store_stage_begin(c->store);
		for (size_t k = 0; k < c->n_stored; k++)
			c->stored[k].ops->on_reading(c->stored[k].m, p, &rd);
		if (rd.stored && c->store)
			store_put_text(c->store, id, ts_us, copy, quality);
		store_stage_end(c->store);
		if (!rd.stored)
			store_count_dropped(c->store, 1);
		for (size_t k = 0; k < c->n_all; k++)
			c->all[k].ops->on_reading(c->all[k].m, p, &rd);
		if (rd.stored)
			c->readings_stored++;
	}
	return 1;
}
