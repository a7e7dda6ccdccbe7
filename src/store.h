/* SPDX-License-Identifier: MIT */
/*
 * Storage: the SQLite database and the thread that owns its write
 * connection.
 *
 * The loop thread hands rows over through bounded in-memory queues (a mutex
 * held only to append or swap a buffer, never across SQLite calls); the
 * storage thread commits one transaction every commit_interval or every
 * commit_rows rows, whichever comes first. When the disk fails or is full,
 * the thread keeps the batch it could not write and retries with backoff;
 * meanwhile the queue fills to queue_limit and further readings are dropped
 * and counted, never silently. Retention (by age and by database size) runs
 * on the storage thread in small steps between commits.
 *
 * Schema (version 1):
 *   meta(key TEXT PRIMARY KEY, value)             schema_version, clean_shutdown
 *   points(id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, unit TEXT,
 *          kind TEXT, created_us INTEGER)
 *   readings(point INTEGER NOT NULL, ts INTEGER NOT NULL, value REAL,
 *            quality INTEGER NOT NULL)  + index readings_ts(ts)
 *   events(id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, kind TEXT NOT NULL,
 *          source TEXT, point INTEGER, value REAL, from_state TEXT,
 *          to_state TEXT, text TEXT)
 *   outbox(seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL, topic TEXT NOT NULL,
 *          payload BLOB, qos INTEGER NOT NULL, retain INTEGER NOT NULL)
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "m2m/plugin.h"

typedef struct store store;

enum store_sync { STORE_SYNC_NORMAL = 0, STORE_SYNC_FULL = 1 };
enum store_on_corrupt { STORE_CORRUPT_QUARANTINE = 0, STORE_CORRUPT_FAIL = 1 };

struct store_opts {
	const char *path;          /* database file */
	int synchronous;           /* enum store_sync */
	int64_t commit_interval_us;/* default 100 ms */
	uint32_t commit_rows;      /* default 5000 */
	uint32_t queue_limit;      /* readings waiting in memory; default 100000 */
	int64_t retention_age_us;  /* 0 = keep forever */
	uint64_t retention_size;   /* bytes; 0 = unbounded */
	int on_corrupt;            /* enum store_on_corrupt */
	int64_t cache_kib;         /* SQLite page cache, KiB; default 512 */
};

void store_opts_default(struct store_opts *o);

struct store_stats {
	uint64_t rows_written;     /* readings committed */
	uint64_t rows_dropped;     /* readings dropped because the queue was full */
	uint64_t events_written;
	uint64_t events_dropped;
	uint64_t commits;
	uint64_t errors;           /* failed commits (disk full, I/O error, busy) */
	uint64_t retention_deleted;
	uint64_t queued;           /* readings waiting now */
	uint64_t db_bytes;         /* page_count * page_size at the last check */
	uint64_t reopens;          /* connections opened again after a file system failure */
	uint64_t rows_lost;        /* committed readings found missing at a reopen */
	int last_error;            /* negative errno of the last failure, 0 if none */
	char last_error_text[128];
	bool failing;              /* the last commit failed */
};

/*
 * Opens (creating if needed) the database at opts->path, applies pragmas
 * (WAL, synchronous, auto_vacuum=INCREMENTAL on creation, busy_timeout),
 * migrates the schema, checks integrity with PRAGMA quick_check when the
 * last shutdown was not clean (a corrupt file is moved aside to
 * PATH.corrupt-<time> when on_corrupt is quarantine, else an error), marks
 * the database in use, and starts the storage thread. Called from main
 * before the loop runs. On failure returns a negative errno and one line
 * in *ret_error (malloc'd) naming the file and the cause.
 */
int store_open(const struct store_opts *opts, store **ret, char **ret_error);

/*
 * Calls CB for every row of the points table (id, name), so that the
 * registry keeps ids stable. Only between store_open and the first put.
 */
int store_load_points(store *s, void (*cb)(void *arg, uint32_t id, const char *name),
                      void *arg);

/* Queues an insert-or-update of a points row. Loop thread. */
int store_put_point(store *s, uint32_t id, const char *name, const char *unit,
                    const char *kind);

/*
 * Queues N normalized readings. Returns the number accepted; the rest were
 * dropped (and counted) because the queue is full. Loop thread; never
 * blocks beyond a short mutex.
 */
size_t store_put_readings(store *s, const struct m2m_reading *r, size_t n);

/*
 * How many readings the queue takes now. Only the loop thread adds to the
 * queue, so until it adds, at least this many are accepted. SIZE_MAX for
 * a NULL store. Loop thread.
 */
size_t store_queue_room(store *s);
/* Counts N readings the caller dropped because the queue had no room. Loop thread. */
void store_count_dropped(store *s, size_t n);

/*
 * Outbox inserts (store_outbox_put) made after store_stage_begin() wait
 * on the loop thread and are queued together with the next
 * store_put_readings() or store_put_text(), under one lock: the storage
 * thread then commits a reading and the MQTT messages made of it in the
 * same transaction, so a crash keeps both or neither. store_stage_end()
 * queues what is staged when no reading follows. Loop thread.
 */
void store_stage_begin(store *s);
void store_stage_end(store *s);

/*
 * Queues one text reading (a string point): stored in readings.value as
 * TEXT. Counts against the same queue limit. Returns 1, or 0 when dropped.
 */
size_t store_put_text(store *s, uint32_t point, int64_t ts_us, const char *text,
                      uint16_t quality);

struct store_event {
	int64_t ts_us;
	const char *kind;       /* "driver", "device", "write", "rule", "storage" ... */
	const char *source;     /* driver, device or rule name; may be NULL */
	uint32_t point;         /* 0 when none */
	double value;           /* NAN when none */
	const char *from_state; /* may be NULL */
	const char *to_state;   /* may be NULL */
	const char *text;       /* may be NULL */
};

/* Queues an event row (copied). Returns 0, or -ENOBUFS when dropped. */
int store_put_event(store *s, const struct store_event *e);

/* Snapshot of the counters. Any thread. */
void store_get_stats(store *s, struct store_stats *ret);

/*
 * What store_open found: for the status output and for tests. The strings
 * belong to the store and live until store_close. Any thread.
 */
struct store_open_info {
	bool created;               /* the file was new (or replaced): empty schema */
	bool unclean;               /* the last shutdown was not clean; quick_check ran */
	const char *quarantined_to; /* where a corrupt file was moved, or NULL */
};
void store_get_open_info(store *s, struct store_open_info *ret);

/*
 * The MQTT outbox (store-and-forward for QoS 1 messages).
 *
 * The loop thread names each row by a key it assigns (strictly increasing;
 * start from store_outbox_get_info().max_key + 1). Inserts, deletes (on
 * PUBACK) and reservations of the per-gateway payload sequence number are
 * queued like readings and committed in the same transactions, in the
 * order they were queued; they are never dropped by queue_limit (the MQTT
 * side bounds them). The loop never waits for SQLite: after a commit (or a
 * fetch, or a bound enforcement) that concerns the outbox, the storage
 * thread calls the notify function, and the loop collects the results with
 * store_outbox_poll(). Rows are read back (after a restart, or when the
 * MQTT side keeps only a window of the outbox in memory) by an
 * asynchronous store_outbox_fetch() whose rows arrive through the same
 * poll.
 */
struct store_outbox_msg {
	int64_t key;         /* assigned by the caller, increasing */
	int64_t ts_us;       /* when it was queued, for max_age */
	const char *topic;
	const void *payload;
	size_t len;
	int qos;
	bool retain;
};

/* A row read back by a fetch. One allocation; free with store_outbox_rows_free. */
struct store_outbox_row {
	struct store_outbox_row *next;
	int64_t key, ts_us;
	char *topic;
	void *payload;
	size_t len;
	int qos;
	bool retain;
	char data[];
};

/* What store_open found in the outbox, for the MQTT side's start. */
struct store_outbox_info {
	uint64_t count;      /* rows */
	int64_t min_key;     /* 0 when empty */
	int64_t max_key;     /* 0 when empty */
	/*
	 * The first payload sequence number this run may use. After a clean
	 * shutdown it is the exact next number; otherwise it is the durably
	 * reserved bound, so that a number is never used twice, even when a
	 * power cut lost transactions (then consumers see a gap, never a
	 * repeat).
	 */
	int64_t seq_next;
	int64_t seq_reserved; /* numbers below this are durably reserved */
	uint64_t puts_committed; /* as in struct store_outbox_state, now */
};
void store_outbox_get_info(store *s, struct store_outbox_info *ret);

/* Queues an insert (copied). Loop thread. 0 or -ENOMEM. */
int store_outbox_put(store *s, const struct store_outbox_msg *m);
/*
 * Outbox inserts put since open, by every client of this store. Minus
 * puts_committed of store_outbox_poll(), it is the exact number of
 * inserts not yet committed. Loop thread.
 */
uint64_t store_outbox_puts(store *s);
/* Queues the delete of one row (its PUBACK arrived). Loop thread. */
int store_outbox_delete(store *s, int64_t key);
/* Queues the delete of the rows FIRST <= key <= LAST, in one statement. Loop thread. */
int store_outbox_delete_range(store *s, int64_t first, int64_t last);
/*
 * Queues a durable reservation of payload sequence numbers below UPTO: the
 * transaction that carries it is committed with synchronous=FULL. The
 * confirmed bound comes back as seq_reserved in store_outbox_poll().
 */
int store_outbox_reserve_seq(store *s, int64_t upto);
/* The exact next sequence number, written at the clean shutdown. Any time. */
void store_outbox_set_seq_next(store *s, int64_t next);
/*
 * Bounds of the table, enforced by the storage thread after commits and
 * once a second: beyond MAX_MESSAGES rows (0 = no bound) or older than
 * MAX_AGE_US (0 = no bound), the oldest rows are deleted and counted.
 */
void store_outbox_set_bounds(store *s, uint64_t max_messages, int64_t max_age_us);
/*
 * Asks for at most MAX rows with AFTER < key <= UPTO, in key order, read
 * after everything queued before this call is committed. One fetch at a
 * time: -EBUSY while one is outstanding.
 */
int store_outbox_fetch(store *s, int64_t after, int64_t upto, size_t max);
/*
 * FN(ARG) is called on the storage thread, with the store's lock held
 * (it must only wake the loop, e.g. uv_async_send), whenever poll has
 * something new. NULL turns it off; once this returns, FN is not running
 * and will not be called again.
 */
void store_outbox_set_notify(store *s, void (*fn)(void *arg), void *arg);

struct store_outbox_state {
	int64_t committed_key;   /* every queued insert with key <= this is committed */
	uint64_t puts_committed; /* outbox inserts committed since open (see store_outbox_puts) */
	int64_t seq_reserved;    /* durably reserved sequence numbers: below this */
	int64_t dropped_before;  /* rows with key < this were deleted by the bounds */
	uint64_t dropped;        /* rows deleted by the bounds, total */
	uint64_t count;          /* rows in the table at the last commit */
	bool fetch_done;         /* the outstanding fetch finished: rows below */
	int fetch_error;         /* its error, 0 if none */
	struct store_outbox_row *fetched; /* taken over by the caller */
	size_t n_fetched;
};
/* Collects what the thread has for the outbox. Loop thread. */
void store_outbox_poll(store *s, struct store_outbox_state *ret);
void store_outbox_rows_free(struct store_outbox_row *r);

/*
 * Asks the thread to commit what is queued now (for tests and reload).
 * Does not wait.
 */
void store_kick(store *s);

/*
 * Commits everything queued, stops the thread, marks a clean shutdown and
 * closes. Waits at most TIMEOUT_US for a failing disk, then drops (and
 * logs the count of) what could not be written. NULL is fine.
 */
void store_close(store *s, int64_t timeout_us);

/*
 * The first half of store_close: commits what is queued and stops the
 * thread, so that the counters are final; store_close then only closes.
 */
void store_stop(store *s, int64_t timeout_us);

/*
 * A SQLite result code as a negative errno (0 for OK, ROW and DONE), as
 * the store maps its own: for code outside the store that reads the
 * database itself (the rules' restore). DB may be NULL. Any thread.
 */
struct sqlite3;
int store_sqlite_errno(struct sqlite3 *db, int rc);
