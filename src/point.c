/* SPDX-License-Identifier: MIT */
#include "point.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "util.h"

/*
 * Points live in an array indexed by id (ids start at 1, 0 means "none")
 * and in an open-addressing hash table from name to id. Both only grow:
 * an id once given to a name is never reused while the process runs, and
 * the database keeps it across restarts.
 */
struct registry {
	struct point **by_id; /* [0] unused */
	uint32_t n_ids;       /* highest id + 1 */
	uint32_t cap_ids;
	uint32_t *slots;      /* hash table of ids; 0 = empty */
	uint32_t n_slots;     /* power of two */
	uint32_t used;
};

static uint64_t hash_name(const char *s) {
	/* FNV-1a: names are short and this is not exposed to hostile keys at scale. */
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

int registry_new(registry **ret) {
	registry *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->n_slots = 64;
	r->slots = calloc(r->n_slots, sizeof(*r->slots));
	r->n_ids = 1;
	if (!r->slots) {
		free(r);
		return -ENOMEM;
	}
	*ret = r;
	return 0;
}

void point_attrs_done(struct point_attrs *a) {
	if (!a)
		return;
	free(a->unit);
	free(a->description);
	a->unit = a->description = NULL;
}

void registry_free(registry *r) {
	if (!r)
		return;
	for (uint32_t i = 1; i < r->n_ids; i++) {
		if (!r->by_id[i])
			continue;
		point_attrs_done(&r->by_id[i]->a);
		free(r->by_id[i]->name);
		free(r->by_id[i]->text);
		free(r->by_id[i]);
	}
	free(r->by_id);
	free(r->slots);
	free(r);
}

static uint32_t *find_slot(registry *r, const char *name) {
	uint32_t mask = r->n_slots - 1;
	uint32_t i = (uint32_t)hash_name(name) & mask;

	for (;;) {
		uint32_t id = r->slots[i];
		if (id == 0 || strcmp(r->by_id[id]->name, name) == 0)
			return &r->slots[i];
		i = (i + 1) & mask;
	}
}

static int grow_slots(registry *r) {
	uint32_t n = r->n_slots * 2, mask = n - 1;
	uint32_t *slots = calloc(n, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	for (uint32_t i = 0; i < r->n_slots; i++) {
		uint32_t id = r->slots[i], j;
		if (id == 0)
			continue;
		j = (uint32_t)hash_name(r->by_id[id]->name) & mask;
		while (slots[j])
			j = (j + 1) & mask;
		slots[j] = id;
	}
	free(r->slots);
	r->slots = slots;
	r->n_slots = n;
	return 0;
}

static int add(registry *r, uint32_t id, const char *name) {
	struct point *p;
	uint32_t *slot;

	if (id == 0 || id >= UINT32_MAX / 2)
		return -ERANGE;
	if ((r->used + 1) * 4 >= r->n_slots * 3 && grow_slots(r) < 0)
		return -ENOMEM;
	if (id >= r->cap_ids) {
		uint32_t cap = r->cap_ids ? r->cap_ids : 64;
		struct point **v;
		while (cap <= id)
			cap *= 2;
		v = realloc(r->by_id, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		memset(v + r->cap_ids, 0, (cap - r->cap_ids) * sizeof(*v));
		r->by_id = v;
		r->cap_ids = cap;
	}
	if (r->by_id[id])
		return -EEXIST;
	slot = find_slot(r, name);
	if (*slot)
		return -EEXIST;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->name = strdup(name);
	if (!p->name) {
		free(p);
		return -ENOMEM;
	}
	p->id = id;
	p->a.scale = 1;
	p->a.min = p->a.max = NAN;
	r->by_id[id] = p;
	*slot = id;
	r->used++;
	if (id >= r->n_ids)
		r->n_ids = id + 1;
	return 0;
}

int registry_seed(registry *r, uint32_t id, const char *name) {
	return add(r, id, name);
}

int registry_intern(registry *r, const char *name, uint32_t *ret_id, bool *ret_new) {
	uint32_t *slot = find_slot(r, name), id;
	int err;

	if (*slot) {
		*ret_id = *slot;
		if (ret_new)
			*ret_new = false;
		return 0;
	}
	id = r->n_ids;
	err = add(r, id, name);
	if (err < 0)
		return err;
	*ret_id = id;
	if (ret_new)
		*ret_new = true;
	return 0;
}

struct point *registry_get(registry *r, uint32_t id) {
	return id > 0 && id < r->n_ids ? r->by_id[id] : NULL;
}

struct point *registry_find(registry *r, const char *name) {
	uint32_t id = *find_slot(r, name);
	return id ? r->by_id[id] : NULL;
}

uint32_t registry_end(const registry *r) {
	return r->n_ids;
}

bool point_name_valid(const char *name) {
	const char *slash = strchr(name, '/');

	/* Exactly one '/', with a non-empty device and point on either side. */
	if (!slash || slash == name || slash[1] == '\0' || strchr(slash + 1, '/'))
		return false;
	if (!name_valid(name, SIZE_MAX, NAME_ALNUM, "_-./"))
		return false;
	/* MQTT topics are built from names; wildcards and '+'/'#' are excluded above. */
	return true;
}

int point_attrs_parse(config *c, const struct cJSON *obj, struct point_attrs *ret) {
	static const char *const kinds[] = { "number", "bool", "string", NULL };
	struct point_attrs a = { .scale = 1, .min = NAN, .max = NAN };
	const char *unit, *description;
	int err;

	if ((err = config_string(c, obj, "unit", "", &unit)) < 0 ||
	    (err = config_string(c, obj, "description", "", &description)) < 0 ||
	    (err = config_enum(c, obj, "kind", kinds, POINT_NUMBER, &a.kind)) < 0 ||
	    (err = config_bool(c, obj, "writable", false, &a.writable)) < 0 ||
	    (err = config_double(c, obj, "min", NAN, &a.min)) < 0 ||
	    (err = config_double(c, obj, "max", NAN, &a.max)) < 0 ||
	    (err = config_double(c, obj, "scale", 1, &a.scale)) < 0 ||
	    (err = config_double(c, obj, "offset", 0, &a.offset)) < 0 ||
	    (err = config_double(c, obj, "deadband", 0, &a.deadband)) < 0 ||
	    (err = config_double(c, obj, "deadband_percent", 0, &a.deadband_percent)) < 0)
		return err;
	if (a.scale == 0)
		return config_error(c, cJSON_GetObjectItemCaseSensitive(obj, "scale"),
		                    "expected a non-zero scale (writes divide by it)");
	if (!isnan(a.min) && !isnan(a.max) && a.min > a.max)
		return config_error(c, cJSON_GetObjectItemCaseSensitive(obj, "min"),
		                    "expected min <= max, got min %g > max %g", a.min, a.max);
	if (a.deadband < 0)
		return config_error(c, cJSON_GetObjectItemCaseSensitive(obj, "deadband"),
		                    "expected a deadband >= 0, got %g", a.deadband);
	if (a.deadband_percent < 0 || a.deadband_percent > 100)
		return config_error(c, cJSON_GetObjectItemCaseSensitive(obj, "deadband_percent"),
		                    "expected a percentage from 0 to 100, got %g", a.deadband_percent);
	a.unit = strdup(unit);
	a.description = strdup(description);
	if (!a.unit || !a.description) {
		point_attrs_done(&a);
		return -ENOMEM;
	}
	*ret = a;
	return 0;
}

bool point_normalize(struct point *p, struct m2m_reading *r) {
	const struct point_attrs *a = &p->a;
	double v = r->value, threshold;
	bool store;

	if (r->quality == M2M_QUALITY_GOOD) {
		if (a->kind == POINT_BOOL)
			v = v != 0;
		else
			v = v * a->scale + a->offset;
		/* NaN is what the device said; it is kept (stored as NULL) and never in range. */
		if ((!isnan(a->min) && !(v >= a->min)) || (!isnan(a->max) && !(v <= a->max)))
			if (!isnan(v))
				r->quality = M2M_QUALITY_OUT_OF_RANGE;
	} else if (a->kind != POINT_BOOL && isfinite(v)) {
		v = v * a->scale + a->offset;
	}
	r->value = v;

	p->ts_us = r->ts_us;
	p->value = v;
	p->quality = r->quality;
	p->detail = r->detail;
	p->has_value = true;
	p->readings++;

	/*
	 * The deadband only holds back good readings that moved less than the
	 * larger of the absolute and the relative band; a change of quality is
	 * always stored, so a gap in the data always has its reason next to it.
	 */
	if (!p->has_stored || r->quality != p->stored_quality || r->quality != M2M_QUALITY_GOOD ||
	    (a->deadband == 0 && a->deadband_percent == 0))
		store = true;
	else {
		threshold = a->deadband;
		if (a->deadband_percent > 0 && fabs(p->stored_value) * a->deadband_percent / 100 > threshold)
			threshold = fabs(p->stored_value) * a->deadband_percent / 100;
		store = isnan(v) != isnan(p->stored_value) || fabs(v - p->stored_value) > threshold;
	}
	if (store) {
		p->stored_value = v;
		p->stored_quality = r->quality;
		p->has_stored = true;
	}
	return store;
}

double point_to_raw(const struct point *p, double value) {
	if (p->a.kind == POINT_BOOL)
		return value != 0;
	return (value - p->a.offset) / p->a.scale;
}

const char *quality_name(int quality) {
	static const char *const names[] = {
		[M2M_QUALITY_GOOD] = "good",
		[M2M_QUALITY_TIMEOUT] = "timeout",
		[M2M_QUALITY_COMM_ERROR] = "comm_error",
		[M2M_QUALITY_DECODE_ERROR] = "decode_error",
		[M2M_QUALITY_OUT_OF_RANGE] = "out_of_range",
		[M2M_QUALITY_STALE] = "stale",
		[M2M_QUALITY_DEVICE_ERROR] = "device_error",
		[M2M_QUALITY_DRIVER_DOWN] = "driver_down",
	};
	if (quality < 0 || (size_t)quality >= ELEMENTSOF(names) || !names[quality])
		return "unknown";
	return names[quality];
}

const char *quality_detail(int quality, unsigned detail, char *buf, size_t n) {
	/*
	 * The device codes drivers report are Modbus exception codes (the
	 * numbering other field protocols borrowed too); a code without a name
	 * is shown as a number.
	 */
	static const char *const exceptions[] = {
		[1] = "illegal function",
		[2] = "illegal data address",
		[3] = "illegal data value",
		[4] = "server device failure",
		[5] = "acknowledge",
		[6] = "server device busy",
		[7] = "negative acknowledge",
		[8] = "memory parity error",
		[10] = "gateway path unavailable",
		[11] = "gateway target device failed to respond",
	};

	buf[0] = '\0';
	if (detail == 0 || quality == M2M_QUALITY_GOOD)
		return buf;
	if (quality == M2M_QUALITY_DEVICE_ERROR && detail < ELEMENTSOF(exceptions) && exceptions[detail])
		snprintf(buf, n, "%s (%u)", exceptions[detail], detail);
	else if (quality == M2M_QUALITY_DEVICE_ERROR)
		snprintf(buf, n, "device code %u", detail);
	else if (quality == M2M_QUALITY_COMM_ERROR)
		/* The errno of the transport failure. */
		snprintf(buf, n, "%s", strerror((int)detail));
	else
		snprintf(buf, n, "detail %u", detail);
	return buf;
}
