/* SPDX-License-Identifier: MIT */
/*
 * The metrics registry: every counter, gauge and info the daemon shows is
 * registered here once, and the status JSON, the periodic stats line and
 * the Prometheus text exposition are renderings of it (HAProxy's one
 * stat_col table behind CSV, JSON and Prometheus).
 *
 * A family is a name, a one-line help, a type and the names of its labels
 * ("driver,device"). A series is one set of label values in a family and
 * a source for its value: a pointer to a uint64_t or a double the owner
 * keeps updating (a counter in its struct stays where it is), or a getter
 * with an argument. Info series have no source: their labels are the
 * information and their value is 1.
 *
 * Every series and refresh hook names an owner, an opaque identity (a
 * driver instance, the MQTT client): metrics_remove_owner() takes all of
 * it away when that owner stops or is reconfigured. Families stay until
 * metrics_free(); a family without series is rendered nowhere.
 *
 * Names. A family is registered under its base name; the exposition adds
 * the suffix its type calls for: a counter "m2md_readings" is exposed as
 * "m2md_readings_total" (HELP, TYPE and samples, as the 0.0.4 text format
 * wants one name throughout), an info "m2md_build" as the gauge
 * "m2md_build_info" with value 1. Base names therefore must not end in
 * "_total" or "_info" themselves. The stats line and metrics_sum() use
 * the base name.
 *
 * Threads: loop thread only, like the state the sources point into. The
 * registry keeps pointers to the sources, label values and owners it was
 * given (strings are copied): a source must stay valid until its series
 * is removed. No globals: the daemon owns one registry.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cJSON.h>

typedef struct metrics metrics;
typedef struct metric_family metric_family;

enum metric_type {
	METRIC_COUNTER, /* only goes up (a restart or a new owner starts again at 0) */
	METRIC_GAUGE,
	METRIC_INFO,    /* constant 1; the labels carry the information */
};

/* Labels a family may have; more is a registration error. */
#define METRICS_MAX_LABELS 8

struct metric_desc {
	/* Base name, [a-zA-Z_:][a-zA-Z0-9_:]*, not ending in _total or _info. */
	const char *name;
	/* One line for people, not empty; \ and newlines are escaped in the exposition. */
	const char *help;
	enum metric_type type;
	/*
	 * Label names, comma-separated ("driver,device"), each
	 * [a-zA-Z_][a-zA-Z0-9_]* and not starting with "__"; NULL or "" for
	 * none.
	 */
	const char *labels;
	/*
	 * Where metrics_json() puts the value, NULL for nowhere. Segments are
	 * separated by '/':
	 *   key               an object member, created when absent;
	 *   key[member=label] an array member KEY; the element is the object
	 *                     whose string MEMBER equals this series' value of
	 *                     LABEL, appended (with MEMBER set) when absent;
	 *   {label}           anywhere in a segment: the series' value of LABEL;
	 *   {.label}          the same after a '.', or nothing when the value
	 *                     is empty ("polls{.device}": "polls.dev", "polls").
	 * The last segment is the member that gets the number. For an info
	 * family the path names the object ("" is the root) and every label the
	 * path does not use becomes a string member of it.
	 * Example: "drivers[name=driver]/stats/polls{.device}".
	 */
	const char *json;
};

/* A series' value: set exactly one of the four. */
struct metric_source {
	const uint64_t *u64;
	const double *f64;
	uint64_t (*get_u64)(void *arg);
	double (*get_f64)(void *arg);
	void *arg;                 /* for the getters */
};

/* An empty registry. Returns 0 or -ENOMEM. */
int metrics_new(metrics **ret);

/* Frees the registry, its families and series; the sources are the owners'. NULL is fine. */
void metrics_free(metrics *m);

/*
 * Registers the family DESC (its strings are copied). Registering a name
 * again with the same help, type, labels and json path returns the family
 * already there, so that every instance of a plugin can register the
 * statistics it declares; with anything different it is -EEXIST, as is a
 * name whose exposed form (with its suffix) another family has. Returns 0
 * and *ret (owned by the registry), -EINVAL for a name, help, label list
 * or json path that is not valid, or -ENOMEM.
 */
int metrics_family(metrics *m, const struct metric_desc *desc, metric_family **ret);

/* The family registered under the base name NAME, or NULL. */
metric_family *metrics_find(metrics *m, const char *name);

/*
 * Adds a series to FAM: VALUES holds one value per label of the family, in
 * its order (NULL when it has none; copied); SRC says where its value comes
 * from (ignored, and may be NULL, for an info family). OWNER identifies who
 * removes it (metrics_remove_owner); it is compared, never dereferenced,
 * and may be NULL for series that live as long as the registry. Returns 0,
 * -EEXIST when FAM has a series with these label values, -EINVAL for a
 * NULL value or a source that sets none or several fields, or -ENOMEM.
 */
int metrics_add(metrics *m, metric_family *fam, const void *owner, const char *const *values,
                const struct metric_source *src);

/* The same with a pointer to a counter or gauge that the owner keeps up to date. */
int metrics_add_u64(metrics *m, metric_family *fam, const void *owner, const char *const *values,
                    const uint64_t *v);
int metrics_add_double(metrics *m, metric_family *fam, const void *owner,
                       const char *const *values, const double *v);

/*
 * One series to register with metrics_add_list: its family, where its value
 * comes from, and the value of the family's one label (NULL when it has
 * none). Several entries of one family make several series of it.
 */
struct metric_entry {
	struct metric_desc desc;
	struct metric_source src;
	const char *label;
};

/*
 * Registers the family and the series of each of the N entries of LIST
 * under OWNER: a subsystem's counters in one table. Returns 0 or the first
 * error of metrics_family or metrics_add (the entries before it stay).
 */
int metrics_add_list(metrics *m, const void *owner, const struct metric_entry *list, size_t n);

/*
 * Calls FN(ARG) once at the start of every rendering (JSON, line,
 * exposition, metrics_sum), before any value is read: for an owner whose
 * figures have to be taken together (a snapshot of the storage thread's
 * counters under their lock) into a struct whose fields are registered as
 * u64 sources. Hooks run in the order added. Returns 0 or -ENOMEM.
 */
int metrics_add_refresh(metrics *m, const void *owner, void (*fn)(void *arg), void *arg);

/*
 * Removes every series and refresh hook of OWNER (not NULL): a driver
 * instance stopped, a module reconfigured. Returns how many series went.
 */
size_t metrics_remove_owner(metrics *m, const void *owner);

/*
 * The sum of FAM's series values (0 when it has none; info series count
 * 1 each), running the refresh hooks first: the stats line's "how many
 * readings in all drivers". Sums of u64 sources are exact up to 2^64.
 */
double metrics_sum(metrics *m, const metric_family *fam);

/*
 * Adds every series of the families that have a json path to ROOT (an
 * object), creating the objects and array elements on the way and
 * replacing a member that is already there: structured parts the caller
 * wrote first (the drivers array with each driver's name) are filled in,
 * not duplicated. Families in registration order, series in the order
 * added. Returns 0, -EINVAL when a path meets an item of another type (an
 * array where it wants an object), or -ENOMEM (ROOT then holds part).
 */
int metrics_json(metrics *m, cJSON *root);

/*
 * The periodic stats line from the template TPL: text is copied and each
 * placeholder {name}, {name[label=value]}, {name:.N} or
 * {name[label=value]:.N} is replaced by the sum of the series of the
 * family of that base name (only those whose LABEL is VALUE, with a
 * selector; 0 when none), integers exactly and other values with
 * fmt_double, or with N digits after the point (0 to 9):
 *   "uptime={m2md_uptime_seconds:.0}s p50={m2md_lag_ms[stat=p50]:.3}ms"
 * A '{' always starts a placeholder. Non-finite values are written NaN,
 * +Inf, -Inf. Runs the refresh hooks first. Returns the length, -ENOENT
 * for a name no family has or a label it does not have, -EINVAL for a
 * malformed placeholder, or -ENOBUFS when BUF (N bytes) is too small (BUF
 * then holds the start).
 */
int metrics_line(metrics *m, const char *tpl, char *buf, size_t n);

/*
 * Writes the Prometheus text exposition format 0.0.4 to OUT: for each
 * family with series, sorted by exposed name, one block of "# HELP",
 * "# TYPE" and the samples, labels in the family's order with \, " and
 * newlines escaped; u64 values exactly, doubles with fmt_double, and NaN,
 * +Inf, -Inf. Returns 0, -ENOMEM, or -EIO when OUT reports a write error.
 */
int metrics_prometheus(metrics *m, FILE *out);
