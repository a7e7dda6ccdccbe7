/* SPDX-License-Identifier: MIT */
/*
 * The point registry and normalization. Loop thread only.
 *
 * A point is "device/point", interned to a small integer id that stays the
 * same for the life of the database (ids are loaded from the points table
 * at start and new ones are appended). The registry also holds the latest
 * value of every point and the state the deadband needs.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "m2m/plugin.h"

typedef struct config config;
struct m2m_host;

enum point_kind { POINT_NUMBER = 0, POINT_BOOL = 1, POINT_STRING = 2 };

/* Generic attributes, parsed by the core from a point's config table. */
struct point_attrs {
	char *unit;        /* "" when none */
	char *description; /* "" when none */
	int kind;          /* enum point_kind */
	bool writable;
	double min, max;   /* NAN when not set; engineering units */
	double scale, offset;
	double deadband;          /* absolute, engineering units; 0 = off */
	double deadband_percent;  /* of the last stored value; 0 = off */
};

struct point {
	uint32_t id;
	char *name;            /* "device/point" */
	struct point_attrs a;
	struct m2m_host *owner; /* the driver instance that declared it, or NULL */
	bool declared;         /* declared by the running config */

	/* Latest value as normalized (what rules and status see). */
	int64_t ts_us;
	double value;
	uint16_t quality;
	uint16_t detail;
	bool has_value;
	char *text;        /* latest value of a string point, or NULL */

	/* What was last stored, for the deadband. */
	double stored_value;
	uint16_t stored_quality;
	bool has_stored;

	uint64_t readings; /* count since start */
};

typedef struct registry registry;

int registry_new(registry **ret);
void registry_free(registry *r);

/* Adds a name with a known id (from the database). */
int registry_seed(registry *r, uint32_t id, const char *name);
/* Returns the id of NAME, adding it with the next free id when new. *ret_new tells. */
int registry_intern(registry *r, const char *name, uint32_t *ret_id, bool *ret_new);
struct point *registry_get(registry *r, uint32_t id);
struct point *registry_find(registry *r, const char *name);
/* Highest id + 1; ids run from 1. */
uint32_t registry_end(const registry *r);

/*
 * Parses the generic keys from OBJ into ATTRS (which the caller frees with
 * point_attrs_done). Reads: unit, kind, writable, min, max, scale, offset,
 * deadband, deadband_percent, description.
 */
int point_attrs_parse(config *c, const struct cJSON *obj, struct point_attrs *ret);
void point_attrs_done(struct point_attrs *a);

/* True when a point name is "device/point" with valid characters. */
bool point_name_valid(const char *name);

/*
 * Normalizes one raw reading in place (engineering value, limits →
 * quality), updates the latest value and returns true when the reading
 * passes the deadband and must be stored.
 */
bool point_normalize(struct point *p, struct m2m_reading *r);

/* Turns an engineering value into raw for a write: (v - offset) / scale. */
double point_to_raw(const struct point *p, double value);

/* Name of a quality code ("good", "timeout", ...). */
const char *quality_name(int quality);

/*
 * The reason's detail of a bad reading in words, into BUF: a device's
 * exception code with its name ("illegal data address (2)"), a transport
 * errno as text; "" for a good reading or detail 0. Not thread-safe
 * (strerror); loop thread and m2mctl.
 */
const char *quality_detail(int quality, unsigned detail, char *buf, size_t n);
