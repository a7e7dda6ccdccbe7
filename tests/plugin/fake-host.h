/* SPDX-License-Identifier: MIT */
/*
 * fake-host.h - a host for driver unit tests: the whole m2m_host_api table
 * (ABI 1.1, or cut to 1.0) in one process, with nothing behind it but
 * memory, so that a test drives a plugin the way m2md does and looks at
 * what it did.
 *
 *  - Config: the getters read a cJSON tree and remember every key asked
 *    for, present or not, as the real host does (src/config.c); after
 *    create(), fake_host_unknown_keys() reports every key the driver never
 *    asked for, so a test catches a key that would be "unknown" in m2md.
 *    The getters refuse to work outside create(), like the real ones.
 *  - A manual clock: now_us and mono_us move only with fake_host_advance(),
 *    which fires the timers that fall due, in order. timer_update rearms.
 *  - fd watches that the test fires (fake_host_io_fire), with HUP and ERR
 *    delivered only to watches that asked for them, as ABI 1.1 says.
 *  - Bus work runs when the test says (fake_host_bus_run), never inside
 *    bus_submit; with bus_inline set (the default), every timer or watch
 *    callback the fake host delivers is followed by the work it queued, so
 *    a poll's results are there when fake_host_advance() returns.
 *  - Everything the driver hands the host is recorded: submits (every
 *    reading, in order), texts, events, statistics (1.0 stat and 1.1
 *    stat_declare/stat_set with kind, device and help), device states, log
 *    lines; write completions land in the struct m2m_write the test owns.
 *
 * Tests fail through tests/test.h (abort with a message) when the driver
 * breaks a rule of the ABI the fake host can see: an id it did not declare,
 * a write completed twice, a stat name the ABI does not allow, one name
 * declared with two kinds or helps, a counter going down. One thread.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

#include "m2m/plugin.h"

#define FAKE_MAX_POINTS 2048
#define FAKE_MAX_TEXTS 1024
#define FAKE_MAX_EVENTS 512
#define FAKE_MAX_STATS 512
#define FAKE_MAX_STATES 512
#define FAKE_MAX_TIMERS 64
#define FAKE_MAX_IOS 16
#define FAKE_MAX_BUSES 8
#define FAKE_MAX_WORK 1024
#define FAKE_MAX_LOGS 512

struct m2m_timer {
	m2m_host *host;
	m2m_timer_cb cb;
	void *arg;
	uint64_t timeout_ms, repeat_ms;
	int64_t due_us;   /* mono time of the next firing */
	bool armed;       /* false after a one-shot fired */
};

struct m2m_io {
	m2m_host *host;
	int fd;
	int events;       /* what the driver asked for */
	m2m_io_cb cb;
	void *arg;
	bool active;      /* false after ERR, until io_update */
};

struct m2m_bus {
	m2m_host *host;
	char name[128];
};

/* A write request: the test owns it and reads the completion from it. */
struct m2m_write {
	int calls;        /* write_done calls: exactly 1 when complete */
	int status;
	char text[256];
};

struct m2m_stat {
	m2m_host *host;
	char name[64];
	char device[96];  /* "" for the whole instance, and for a 1.0 stat */
	int kind;         /* enum m2m_stat_kind; M2M_STAT_GAUGE for a 1.0 stat */
	char help[160];
	bool declared;    /* by stat_declare, not by the 1.0 stat() */
	bool set;
	double value;
};

struct fake_key {
	const cJSON *obj;
	const char *key;
};

struct fake_point {
	uint32_t id;
	char name[128];   /* "device/point" */
	char kind[16];    /* the "kind" key at declaration, or "" */
};

struct fake_text {
	uint32_t point;
	int64_t ts_us;
	uint16_t quality, detail;
	char text[256];
};

struct fake_event {
	char device[96];
	char kind[32];
	char text[256];
};

struct fake_state {
	char device[96];
	int state;        /* enum m2m_device_state */
	char reason[256]; /* "" for NULL */
};

struct fake_work {
	m2m_bus *bus;
	int flags;
	m2m_bus_work_fn work;
	m2m_bus_done_fn done;
	void *arg;
};

struct fake_log {
	int level;
	char text[256];
};

struct m2m_host {
	/* Settings a test may change. */
	int64_t mono_us, now_us;
	bool bus_inline;   /* run queued work after each callback (default true) */

	/* Config (create only). */
	cJSON *config;
	bool creating;
	struct fake_key *marked; /* every (table, key) asked for (malloc'd) */
	size_t n_marked, cap_marked;
	int errors;        /* cfg_error calls */
	char error[512];   /* the first one's text, as the real host keeps it */
	char unknown[64];  /* the first unknown key fake_host_unknown_keys() found */

	struct fake_point points[FAKE_MAX_POINTS];
	size_t n_points;

	/* What the driver submitted, every reading in order (malloc'd). */
	struct m2m_reading *readings;
	size_t n_readings, cap_readings;
	int submits;       /* submit calls */
	size_t last_first, last_n; /* the last submit's readings */
	struct fake_text texts[FAKE_MAX_TEXTS];
	size_t n_texts;

	struct fake_event events[FAKE_MAX_EVENTS];
	size_t n_events;
	struct m2m_stat *stats[FAKE_MAX_STATS];
	size_t n_stats;
	struct fake_state states[FAKE_MAX_STATES];
	size_t n_states;
	struct fake_log logs[FAKE_MAX_LOGS];
	size_t n_logs;

	m2m_timer *timers[FAKE_MAX_TIMERS];
	int timers_started, timers_stopped;
	m2m_io *ios[FAKE_MAX_IOS];
	m2m_bus *buses[FAKE_MAX_BUSES];
	size_t n_buses;
	struct fake_work work[FAKE_MAX_WORK];
	size_t n_work;
	int work_run;      /* work items run so far */
	int writes_done;   /* write_done calls */
};

/* A new host with the clock away from zero. Free it with fake_host_free. */
m2m_host *fake_host_new(void);
/* Frees the host, its timers and watches, and the config; NULL is fine. */
void fake_host_free(m2m_host *h);

/*
 * The host table, with MINOR 1 (everything) or 0 (struct_size cut before
 * the ABI 1.1 fields, as a 1.0 host gives it): a plugin's fallbacks are
 * tested against the second.
 */
const struct m2m_host_api *fake_host_api(int minor);

/*
 * Parses JSON as the driver's section, keeps it (the real host does too)
 * and calls OPS->create with API, inside the create window. Returns what
 * create returned.
 */
int fake_host_create(m2m_host *h, const struct m2m_driver_ops *ops,
                     const struct m2m_host_api *api, const char *json, void **ret_driver);
/* The same with a tree the test built; the host takes CONFIG over. */
int fake_host_create_tree(m2m_host *h, const struct m2m_driver_ops *ops,
                          const struct m2m_host_api *api, cJSON *config, void **ret_driver);
/*
 * Counts the keys of the config that the driver never asked for (key
 * "plugin" is the host's), as m2md would report them after create();
 * h->unknown names the first. Like the real host, a table nobody asked for
 * counts once, as a whole.
 */
int fake_host_unknown_keys(m2m_host *h);

/* Advances both clocks by US, firing each timer as it falls due. */
void fake_host_advance(m2m_host *h, int64_t us);
/* Fires T now, whatever its due time (rearming it as the loop would). */
void fake_host_fire(m2m_host *h, m2m_timer *t);
/* The running timer that repeats every MS (fails the test when none). */
m2m_timer *fake_host_timer_every(m2m_host *h, uint64_t ms);
/* Running timers. */
int fake_host_timers(const m2m_host *h);

/* The watch of FD, or NULL. */
m2m_io *fake_host_io(m2m_host *h, int fd);
/*
 * Delivers EVENTS (enum m2m_io_events) to IO as the real host would: HUP
 * and ERR only when the watch asked for them, else as READ; ERR stops the
 * watch until io_update.
 */
void fake_host_io_fire(m2m_host *h, m2m_io *io, int events);

/* Runs up to N queued work items (urgent first) with their done callbacks. */
int fake_host_bus_run(m2m_host *h, size_t n);
/* Cancels every queued item: done gets -ECANCELED, as after stop(). */
int fake_host_bus_cancel(m2m_host *h);

/* The id of point NAME ("device/point"); fails the test when undeclared. */
uint32_t fake_host_point(const m2m_host *h, const char *name);
/* The latest reading of point ID, or NULL. */
const struct m2m_reading *fake_host_reading(const m2m_host *h, uint32_t id);
/* The latest text of point ID, or NULL. */
const struct fake_text *fake_host_text(const m2m_host *h, uint32_t id);
/* Readings of point ID submitted so far. */
size_t fake_host_count(const m2m_host *h, uint32_t id);

/*
 * The statistic NAME of DEVICE (NULL: the instance): declared with that
 * label, or set by the 1.0 stat() as "NAME.DEVICE". NULL when neither.
 */
const struct m2m_stat *fake_host_stat(const m2m_host *h, const char *name,
                                      const char *device);
/* Its value, or -1 when it was never set. */
double fake_host_stat_value(const m2m_host *h, const char *name, const char *device);

/* The latest state DEVICE was said to be in, or NULL. */
const struct fake_state *fake_host_state(const m2m_host *h, const char *device);
/* Events of DEVICE (NULL: any) of KIND (NULL: any). */
size_t fake_host_events(const m2m_host *h, const char *device, const char *kind);
/* Log lines at LEVEL or more severe (numerically lower) that contain TEXT. */
size_t fake_host_logged(const m2m_host *h, int level, const char *text);
