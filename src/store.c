/* SPDX-License-Identifier: MIT */
/*
 * Storage: the SQLite database and its storage thread. See store.h for the
 * contract and the schema.
 *
 * Locking. One mutex (s->lock) protects s->pending (the queue the loop
 * thread appends to), the flags that steer the thread (kick, stop) and
 * s->stats. It is held only to append to or swap a buffer and to copy
 * counters, never across an SQLite call or I/O. Everything else belongs to
 * exactly one thread at a time: the connection and its statements to the
 * thread that opened the store until pthread_create(), then to the storage
 * thread, then again to the closing thread after pthread_join(); the
 * in-flight batch (s->inflight) only to the storage thread. The points read
 * at open are cached so that store_load_points() never touches the
 * connection while the storage thread owns it.
 *
 * SQLite result codes become negative errno values in sqlite_to_errno()
 * and nowhere else: the rules' read-only restore maps its codes through it
 * too (store_sqlite_errno).
 */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "log.h"
#include "util.h"

/* Busy timeout while opening: another m2md or m2mctl may hold a lock briefly. */
#define OPEN_BUSY_TIMEOUT_MS 2000
/*
 * Busy timeout on the storage thread: short, so that a foreign writer makes
 * a commit fail fast and the thread goes back to its backoff and counters
 * instead of sitting inside SQLite.
 */
#define COMMIT_BUSY_TIMEOUT_MS 100
#define BACKOFF_MIN_US (100 * 1000)
#define BACKOFF_MAX_US (5 * 1000 * 1000)
/* Events are rare; the bound only stops a runaway producer. */
#define EVENTS_LIMIT 10000
#define DROP_LOG_INTERVAL_US (10 * 1000 * 1000)
#define MAINT_INTERVAL_US (1000 * 1000)
/* Time one maintenance run may take in total; each step is far shorter. */
#define MAINT_BUDGET_US (50 * 1000)
/* Rows per retention step: a few milliseconds of write lock at most. */
#define RETENTION_STEP_ROWS 2000
/* Pages one PRAGMA incremental_vacuum may give back. */
#define VACUUM_STEP_PAGES 256
#define QUEUE_MIN_CAPACITY 1024
/*
 * Payload sequence numbers reserved durably at open: a crashed or
 * power-cut run used fewer than this many numbers past its last
 * confirmed reservation, because the MQTT side asks for the next block
 * long before it reaches the bound.
 */
#define OUTBOX_SEQ_BLOCK 1000000

#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)

/*
 * Schema migrations: migrations[i] takes the schema from version i to
 * i + 1. They run in one transaction together with the version update.
 * Append only: a released step is never edited, because databases in the
 * field were made by it.
 */
static const char *const migrations[] = {
	/* 0 -> 1 */
	"CREATE TABLE meta(key TEXT PRIMARY KEY, value);"
	"CREATE TABLE points(id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL,"
	" unit TEXT, kind TEXT, created_us INTEGER);"
	"CREATE TABLE readings(point INTEGER NOT NULL, ts INTEGER NOT NULL,"
	" value REAL, quality INTEGER NOT NULL);"
	/*
	 * Readings are appended in arrival order and indexed by time only: both
	 * B-trees grow at their end, so a commit writes about as many pages as it
	 * adds rows. An index on (point, ts) would spread every commit over one
	 * leaf page per point (4 KiB rewritten for each 24-byte row with 1,000
	 * points), 8x the CPU and far more SD-card wear. History of one point is
	 * a range scan on ts filtered by point.
	 */
	"CREATE INDEX readings_ts ON readings(ts);"
	"CREATE TABLE events(id INTEGER PRIMARY KEY, ts INTEGER NOT NULL,"
	" kind TEXT NOT NULL, source TEXT, point INTEGER, value REAL,"
	" from_state TEXT, to_state TEXT, text TEXT);"
	"CREATE TABLE outbox(seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL,"
	" topic TEXT NOT NULL, payload BLOB, qos INTEGER NOT NULL,"
	" retain INTEGER NOT NULL);",
	/*
	 * 2: the newest transition of each rule and point is the state an
	 * alarm is restored from; retention keeps it and finds it by this.
	 */
	"CREATE INDEX events_rule_last ON events(source, point, id) WHERE kind = 'rule';",
};
#define SCHEMA_VERSION ((int64_t)ELEMENTSOF(migrations))

enum xrec_kind { XREC_TEXT, XREC_EVENT, XREC_POINT, XREC_OUTBOX, XREC_OUTBOX_DEL, XREC_SEQ };

/*
 * A queued row that is not a numeric reading: a text reading, an event or
 * a points row. One allocation holds the record and its strings.
 */
struct xrec {
	struct xrec *next;
	enum xrec_kind kind;
	uint32_t point;
	uint16_t quality;
	int64_t ts;
	double value;
	/*
	 * Text: str[0] = text. Event: kind, source, from_state, to_state,
	 * text. Point: name, unit, kind. Outbox: topic, payload (LEN bytes).
	 * NULL where the caller gave NULL.
	 */
	const char *str[5];
	int64_t key;       /* outbox key, or the reserved sequence bound */
	size_t len;        /* outbox payload length */
	char data[];
};

/* Rows waiting to be written: numeric readings in an array, others in a list. */
struct batch {
	struct m2m_reading *r;
	size_t n, cap;
	struct xrec *head, *tail;
	size_t text_rows; /* XREC_TEXT records: they count as readings */
	size_t events;    /* XREC_EVENT records */
	bool has_seq;     /* carries a sequence reservation: commit with synchronous=FULL */
};

struct cached_point {
	uint32_t id;
	char *name;
};

struct store {
	struct store_opts opts;
	char *path;
	char *quarantined_to;
	bool created, unclean;

	sqlite3 *db;
	sqlite3_stmt *st_begin, *st_commit, *st_rollback;
	sqlite3_stmt *st_reading, *st_event, *st_point_free_id, *st_point;
	sqlite3_stmt *st_age_readings, *st_age_events, *st_size_readings;
	sqlite3_stmt *st_page_count, *st_freelist;
	sqlite3_stmt *st_ob_insert, *st_ob_delete, *st_ob_seq, *st_ob_nth, *st_ob_first_young;
	sqlite3_stmt *st_ob_drop_before, *st_ob_fetch, *st_max_rowid;
	int64_t page_size;
	bool incremental_vacuum;

	struct cached_point *points;
	size_t n_points;

	pthread_t thread;
	bool thread_started;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool lock_init, cond_init;
	/* Protected by lock. */
	struct batch *pending;
	int64_t pending_since_us; /* mono time the pending queue became non-empty */
	int64_t sleep_until_us;    /* the thread's wait ends then (INT64_MAX: none); 0: awake */
	size_t events_queued;      /* pending and in flight */
	bool full_signalled;       /* commit_rows reached, thread already woken */
	bool kick, stop;
	int64_t stop_deadline_us;
	struct store_stats stats;
	/* The outbox's side of the state, also protected by lock. */
	struct {
		void (*notify)(void *arg);
		void *notify_arg;
		struct store_outbox_state st; /* what poll hands out */
		struct store_outbox_row *tail;
		uint64_t max_messages;
		int64_t max_age_us;
		int64_t seq_next_clean;       /* 0: not set */
		bool fetch_requested;
		int64_t fetch_after, fetch_upto;
		size_t fetch_max;
	} ob;
	struct store_outbox_info ob_info; /* found at open; immutable since */
	/* Loop thread only. */
	int64_t ob_put_max_key;           /* highest key put */
	uint64_t ob_puts;                 /* outbox inserts put, since open */
	bool staging;                     /* outbox inserts wait in staged */
	struct xrec *staged_head, *staged_tail;

	/* Storage thread only. */
	struct {
		bool reopen;              /* the connection must be opened again */
		bool fs_suspect;          /* the failure may be the file system's */
		bool fs_failed;           /* and the probe saw the directory refuse writes */
		int64_t next_probe_us;    /* mono time of the next readiness check */
		int64_t next_dir_probe_us; /* and of the next write to the directory */
		uint64_t fsize_limit;     /* RLIMIT_FSIZE when EFBIG began */
		int64_t last_rowid;       /* max(rowid) of readings at the last commit */
	} rec;
	uint64_t ob_count;                /* rows in the outbox table */
	int64_t ob_max_key;               /* highest key committed */
	struct batch *inflight;
	struct batch batches[2];
};

/*
 * The one place where SQLite result codes become errno values. Where SQLite
 * kept the errno of the failing system call (a missing directory, a file
 * size limit), that is the more precise answer.
 */
static int sqlite_to_errno(sqlite3 *db, int rc) {
	int sys = db ? sqlite3_system_errno(db) : 0;

	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return 0;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_INTERRUPT:
		return -EINTR;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_CANTOPEN:
		return sys > 0 ? -sys : -EACCES;
	case SQLITE_IOERR:
		return sys > 0 && sys != EINTR ? -sys : -EIO;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return M2M_ECORRUPT;
	case SQLITE_PROTOCOL:
		return -EPROTO;
	case SQLITE_TOOBIG:
		return -E2BIG;
	case SQLITE_RANGE:
		return -ERANGE;
	case SQLITE_CONSTRAINT:
	case SQLITE_MISMATCH:
	case SQLITE_MISUSE:
	case SQLITE_ERROR:
		return -EINVAL;
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EPERM;
	case SQLITE_NOLFS:
		return -EFBIG;
	default:
		return -EIO;
	}
}

int store_sqlite_errno(struct sqlite3 *db, int rc) {
	return sqlite_to_errno(db, rc);
}

/*
 * Errors that a row carries with it (a constraint, a value SQLite refuses):
 * retrying cannot help, so such a row is skipped and counted instead of
 * blocking every row behind it forever.
 */
static bool error_is_permanent(int r) {
	return r == -EINVAL || r == -ERANGE || r == -E2BIG;
}

static int db_exec(sqlite3 *db, const char *sql) {
	return sqlite_to_errno(db, sqlite3_exec(db, sql, NULL, NULL, NULL));
}

/* Steps a statement that returns no rows (or whose rows don't matter) once. */
static int stmt_run(sqlite3 *db, sqlite3_stmt *st) {
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : sqlite_to_errno(db, rc);
}

/* Runs a prepared single-value query. -ENODATA when it returns no row. */
static int stmt_int64(sqlite3 *db, sqlite3_stmt *st, int64_t *ret) {
	int rc = sqlite3_step(st);
	int r = 0;

	if (rc == SQLITE_ROW)
		*ret = sqlite3_column_int64(st, 0);
	else if (rc == SQLITE_DONE)
		r = -ENODATA;
	else
		r = sqlite_to_errno(db, rc);
	sqlite3_reset(st);
	return r;
}

static int query_int64(sqlite3 *db, const char *sql, int64_t *ret) {
	sqlite3_stmt *st = NULL;
	int rc, r;

	rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return sqlite_to_errno(db, rc);
	r = stmt_int64(db, st, ret);
	sqlite3_finalize(st);
	return r;
}

/* First column of the first row as text into BUF ("" when NULL). */
static int query_text(sqlite3 *db, const char *sql, char *buf, size_t n) {
	sqlite3_stmt *st = NULL;
	int rc, r = 0;

	rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return sqlite_to_errno(db, rc);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(st, 0);
		snprintf(buf, n, "%s", t ? (const char *)t : "");
	} else if (rc == SQLITE_DONE) {
		r = -ENODATA;
	} else {
		r = sqlite_to_errno(db, rc);
	}
	sqlite3_finalize(st);
	return r;
}

static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **ret) {
	int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, ret, NULL);

	return sqlite_to_errno(db, rc);
}

static int64_t max64(int64_t a, int64_t b) {
	return a > b ? a : b;
}

static int64_t min64(int64_t a, int64_t b) {
	return a < b ? a : b;
}

/* ---- queue buffers ---- */

static void batch_clear(struct batch *b) {
	struct xrec *x = b->head;

	while (x) {
		struct xrec *next = x->next;
		free(x);
		x = next;
	}
	b->head = b->tail = NULL;
	b->n = 0;
	b->text_rows = 0;
	b->events = 0;
	b->has_seq = false;
}

static void batch_free(struct batch *b) {
	batch_clear(b);
	free(b->r);
	b->r = NULL;
	b->cap = 0;
}

static bool batch_empty(const struct batch *b) {
	return b->n == 0 && !b->head;
}

/* Rows that count against queue_limit. */
static size_t batch_rows(const struct batch *b) {
	return b->n + b->text_rows;
}

/* Grows the readings array to hold at least WANT rows; never beyond LIMIT. */
static size_t batch_reserve(struct batch *b, size_t want, size_t limit) {
	struct m2m_reading *r;
	size_t cap;

	if (want <= b->cap)
		return b->cap;
	cap = b->cap ? b->cap : QUEUE_MIN_CAPACITY;
	while (cap < want)
		cap *= 2;
	if (cap > limit)
		cap = limit;
	r = realloc(b->r, cap * sizeof(*r));
	if (!r)
		return b->cap;
	b->r = r;
	b->cap = cap;
	return cap;
}

static void batch_append_x(struct batch *b, struct xrec *x) {
	x->next = NULL;
	if (b->tail)
		b->tail->next = x;
	else
		b->head = x;
	b->tail = x;
}

/* One allocation for the record and copies of its N strings. */
static struct xrec *xrec_new(enum xrec_kind kind, const char *const *strs, size_t n) {
	size_t len = 0;
	struct xrec *x;
	char *p;

	for (size_t i = 0; i < n; i++)
		if (strs[i])
			len += strlen(strs[i]) + 1;
	x = calloc(1, sizeof(*x) + len);
	if (!x)
		return NULL;
	x->kind = kind;
	p = x->data;
	for (size_t i = 0; i < n; i++) {
		if (!strs[i])
			continue;
		size_t l = strlen(strs[i]) + 1;
		memcpy(p, strs[i], l);
		x->str[i] = p;
		p += l;
	}
	return x;
}

/* ---- loop-thread side ---- */

static void unstage_locked(store *s);

void store_opts_default(struct store_opts *o) {
	*o = (struct store_opts){
		.path = NULL,
		.synchronous = STORE_SYNC_NORMAL,
		.commit_interval_us = 100 * 1000,
		.commit_rows = 5000,
		.queue_limit = 100000,
		.retention_age_us = 0,
		.retention_size = 0,
		.on_corrupt = STORE_CORRUPT_QUARANTINE,
		.cache_kib = 512,
	};
}

/* Called with the lock held after rows were appended to the pending queue. */
static void wake_if_needed(store *s, bool was_empty) {
	/*
	 * The thread sleeps without a deadline while nothing is queued, so the
	 * first row must wake it to start the commit_interval clock; a full
	 * batch must wake it at once. Both happen once per batch, not per row.
	 * A thread that is awake, or wakes within commit_interval anyway (the
	 * end of the interval after its last commit, while rows keep coming),
	 * commits the row in time without it: no wake-up then.
	 */
	if (was_empty) {
		s->pending_since_us = mono_us();
		if (s->sleep_until_us > s->pending_since_us + s->opts.commit_interval_us)
			pthread_cond_signal(&s->cond);
	} else if (!s->full_signalled && batch_rows(s->pending) >= s->opts.commit_rows) {
		s->full_signalled = true;
		pthread_cond_signal(&s->cond);
	}
}

void store_stage_begin(store *s) {
	if (s)
		s->staging = true;
}

void store_stage_end(store *s) {
	if (!s || !s->staging)
		return;
	s->staging = false;
	if (!s->staged_head)
		return;
	pthread_mutex_lock(&s->lock);
	unstage_locked(s);
	pthread_mutex_unlock(&s->lock);
}

size_t store_queue_room(store *s) {
	size_t room;

	if (!s)
		return SIZE_MAX;
	pthread_mutex_lock(&s->lock);
	room = s->stats.queued < s->opts.queue_limit ? s->opts.queue_limit - s->stats.queued : 0;
	pthread_mutex_unlock(&s->lock);
	return room;
}

void store_count_dropped(store *s, size_t n) {
	if (!s || n == 0)
		return;
	pthread_mutex_lock(&s->lock);
	s->stats.rows_dropped += n;
	pthread_mutex_unlock(&s->lock);
}

size_t store_put_readings(store *s, const struct m2m_reading *r, size_t n) {
	size_t room, take;
	bool was_empty;

	if (!s)
		return 0;
	if (n == 0) {
		store_stage_end(s);
		return 0;
	}
	pthread_mutex_lock(&s->lock);
	/* Staged messages and the readings they were made of go into one transaction. */
	s->staging = false;
	unstage_locked(s);
	room = s->stats.queued < s->opts.queue_limit ? s->opts.queue_limit - s->stats.queued : 0;
	take = n < room ? n : room;
	if (take > 0) {
		/* The queue never needs more than queue_limit slots. */
		size_t cap = batch_reserve(s->pending, s->pending->n + take, s->opts.queue_limit);
		if (cap < s->pending->n + take)
			take = cap - s->pending->n;
	}
	if (take > 0) {
		was_empty = batch_empty(s->pending);
		memcpy(s->pending->r + s->pending->n, r, take * sizeof(*r));
		s->pending->n += take;
		s->stats.queued += take;
		wake_if_needed(s, was_empty);
	}
	s->stats.rows_dropped += n - take;
	pthread_mutex_unlock(&s->lock);
	return take;
}

/* Moves the staged outbox inserts to the pending queue. Called with the lock held. */
static void unstage_locked(store *s) {
	struct xrec *x = s->staged_head, *next;
	bool was_empty;

	if (!x)
		return;
	was_empty = batch_empty(s->pending);
	for (; x; x = next) {
		next = x->next;
		batch_append_x(s->pending, x);
	}
	s->staged_head = s->staged_tail = NULL;
	wake_if_needed(s, was_empty);
}

/* Appends a record made by the caller, or frees it and returns false. */
static bool put_xrec(store *s, struct xrec *x) {
	bool ok = true, was_empty;

	if (s->staging && x->kind == XREC_OUTBOX) {
		/* Loop thread only: no lock until the readings come. */
		x->next = NULL;
		if (s->staged_tail)
			s->staged_tail->next = x;
		else
			s->staged_head = x;
		s->staged_tail = x;
		return true;
	}
	pthread_mutex_lock(&s->lock);
	if (s->staging && x->kind == XREC_TEXT) {
		/* The text row and the messages made of it go into one transaction. */
		s->staging = false;
		unstage_locked(s);
	}
	if (x->kind == XREC_TEXT && s->stats.queued >= s->opts.queue_limit) {
		s->stats.rows_dropped++;
		ok = false;
	} else if (x->kind == XREC_EVENT && s->events_queued >= EVENTS_LIMIT) {
		s->stats.events_dropped++;
		ok = false;
	} else {
		was_empty = batch_empty(s->pending);
		batch_append_x(s->pending, x);
		if (x->kind == XREC_TEXT) {
			s->pending->text_rows++;
			s->stats.queued++;
		} else if (x->kind == XREC_EVENT) {
			s->pending->events++;
			s->events_queued++;
		} else if (x->kind == XREC_SEQ) {
			s->pending->has_seq = true;
		}
		wake_if_needed(s, was_empty);
	}
	pthread_mutex_unlock(&s->lock);
	if (!ok)
		free(x);
	return ok;
}

size_t store_put_text(store *s, uint32_t point, int64_t ts_us, const char *text,
                      uint16_t quality) {
	const char *strs[1] = { text ? text : "" };
	struct xrec *x;

	if (!s)
		return 0;
	/* Allocated outside the lock: the mutex covers only the append. */
	x = xrec_new(XREC_TEXT, strs, ELEMENTSOF(strs));
	if (!x) {
		pthread_mutex_lock(&s->lock);
		s->stats.rows_dropped++;
		pthread_mutex_unlock(&s->lock);
		return 0;
	}
	x->point = point;
	x->ts = ts_us;
	x->quality = quality;
	return put_xrec(s, x) ? 1 : 0;
}

int store_put_event(store *s, const struct store_event *e) {
	const char *strs[5];
	struct xrec *x;

	if (!s || !e || !e->kind)
		return -EINVAL;
	strs[0] = e->kind;
	strs[1] = e->source;
	strs[2] = e->from_state;
	strs[3] = e->to_state;
	strs[4] = e->text;
	x = xrec_new(XREC_EVENT, strs, ELEMENTSOF(strs));
	if (!x) {
		pthread_mutex_lock(&s->lock);
		s->stats.events_dropped++;
		pthread_mutex_unlock(&s->lock);
		return -ENOMEM;
	}
	x->ts = e->ts_us;
	x->point = e->point;
	x->value = e->value;
	return put_xrec(s, x) ? 0 : -ENOBUFS;
}

int store_put_point(store *s, uint32_t id, const char *name, const char *unit,
                    const char *kind) {
	const char *strs[3] = { name, unit, kind };
	struct xrec *x;

	if (!s || !name || !*name)
		return -EINVAL;
	x = xrec_new(XREC_POINT, strs, ELEMENTSOF(strs));
	if (!x)
		return -ENOMEM;
	x->point = id;
	x->ts = now_us();
	/* Points are bounded by the configuration, so they are never dropped. */
	put_xrec(s, x);
	return 0;
}

void store_get_stats(store *s, struct store_stats *ret) {
	if (!s) {
		memset(ret, 0, sizeof(*ret));
		return;
	}
	pthread_mutex_lock(&s->lock);
	*ret = s->stats;
	pthread_mutex_unlock(&s->lock);
}

void store_get_open_info(store *s, struct store_open_info *ret) {
	if (!s) {
		*ret = (struct store_open_info){ .created = false };
		return;
	}
	/* Written only before the storage thread started; immutable since. */
	*ret = (struct store_open_info){
		.created = s->created,
		.unclean = s->unclean,
		.quarantined_to = s->quarantined_to,
	};
}

void store_kick(store *s) {
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->kick = true;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

int store_load_points(store *s, void (*cb)(void *arg, uint32_t id, const char *name),
                      void *arg) {
	if (!s || !cb)
		return -EINVAL;
	/* From the cache made at open: the connection belongs to the storage thread. */
	for (size_t i = 0; i < s->n_points; i++)
		cb(arg, s->points[i].id, s->points[i].name);
	return (int)s->n_points;
}

/* ---- outbox, loop-thread side ---- */

void store_outbox_get_info(store *s, struct store_outbox_info *ret) {
	if (!s) {
		*ret = (struct store_outbox_info){ .seq_next = 1 };
		return;
	}
	*ret = s->ob_info;
	/*
	 * A later client of the same run (a reload removed [mqtt] and another
	 * added it back) continues where the last one stopped, not where the
	 * file was at open.
	 */
	pthread_mutex_lock(&s->lock);
	ret->count = s->ob.st.count;
	if (s->ob.seq_next_clean > ret->seq_next)
		ret->seq_next = s->ob.seq_next_clean;
	if (s->ob.st.seq_reserved > ret->seq_reserved)
		ret->seq_reserved = s->ob.st.seq_reserved;
	ret->puts_committed = s->ob.st.puts_committed;
	pthread_mutex_unlock(&s->lock);
	if (s->ob_put_max_key > ret->max_key)
		ret->max_key = s->ob_put_max_key;
}

int store_outbox_put(store *s, const struct store_outbox_msg *m) {
	size_t tlen, len;
	struct xrec *x;
	char *p;

	if (!s || !m || !m->topic || (!m->payload && m->len > 0))
		return -EINVAL;
	tlen = strlen(m->topic) + 1;
	len = m->len;
	/* Record, topic and payload in one allocation, like xrec_new. */
	x = calloc(1, sizeof(*x) + tlen + len + 1);
	if (!x)
		return -ENOMEM;
	x->kind = XREC_OUTBOX;
	x->key = m->key;
	s->ob_puts++;
	if (m->key > s->ob_put_max_key)
		s->ob_put_max_key = m->key;
	x->ts = m->ts_us;
	x->len = len;
	x->quality = (uint16_t)m->qos;
	x->point = m->retain;
	p = x->data;
	memcpy(p, m->topic, tlen);
	x->str[0] = p;
	p += tlen;
	if (len)
		memcpy(p, m->payload, len);
	x->str[1] = p;
	/* The MQTT side bounds the outbox: these are never dropped here. */
	put_xrec(s, x);
	return 0;
}

uint64_t store_outbox_puts(store *s) {
	return s ? s->ob_puts : 0;
}

/* Queues a record that is only keys: a delete (KEY..KEY2) or a reservation (KEY). */
static int put_keyed(store *s, enum xrec_kind kind, int64_t key, int64_t key2) {
	struct xrec *x;

	if (!s)
		return -EINVAL;
	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->kind = kind;
	x->key = key;
	x->ts = key2;
	put_xrec(s, x);
	return 0;
}

int store_outbox_delete(store *s, int64_t key) {
	return put_keyed(s, XREC_OUTBOX_DEL, key, key);
}

int store_outbox_delete_range(store *s, int64_t first, int64_t last) {
	if (last < first)
		return -EINVAL;
	return put_keyed(s, XREC_OUTBOX_DEL, first, last);
}

int store_outbox_reserve_seq(store *s, int64_t upto) {
	return put_keyed(s, XREC_SEQ, upto, 0);
}

void store_outbox_set_seq_next(store *s, int64_t next) {
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->ob.seq_next_clean = next;
	pthread_mutex_unlock(&s->lock);
}

void store_outbox_set_bounds(store *s, uint64_t max_messages, int64_t max_age_us) {
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->ob.max_messages = max_messages;
	s->ob.max_age_us = max_age_us;
	/* A tighter bound applies at the next commit, not at the next insert. */
	s->kick = true;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

int store_outbox_fetch(store *s, int64_t after, int64_t upto, size_t max) {
	int r = 0;

	if (!s || max == 0)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	if (s->ob.fetch_requested || s->ob.st.fetch_done) {
		r = -EBUSY;
	} else {
		s->ob.fetch_requested = true;
		s->ob.fetch_after = after;
		s->ob.fetch_upto = upto;
		s->ob.fetch_max = max;
		pthread_cond_signal(&s->cond);
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

void store_outbox_set_notify(store *s, void (*fn)(void *arg), void *arg) {
	if (!s)
		return;
	/* The thread calls FN with the lock held, so after this it cannot be running. */
	pthread_mutex_lock(&s->lock);
	s->ob.notify = fn;
	s->ob.notify_arg = arg;
	pthread_mutex_unlock(&s->lock);
}

void store_outbox_poll(store *s, struct store_outbox_state *ret) {
	if (!s) {
		memset(ret, 0, sizeof(*ret));
		return;
	}
	pthread_mutex_lock(&s->lock);
	*ret = s->ob.st;
	s->ob.st.fetch_done = false;
	s->ob.st.fetch_error = 0;
	s->ob.st.fetched = NULL;
	s->ob.st.n_fetched = 0;
	s->ob.tail = NULL;
	pthread_mutex_unlock(&s->lock);
}

void store_outbox_rows_free(struct store_outbox_row *r) {
	while (r) {
		struct store_outbox_row *next = r->next;
		free(r);
		r = next;
	}
}

/* ---- storage thread ---- */

struct commit_result {
	uint64_t rows, events, skipped_rows, skipped_events, points;
	uint64_t ob_inserted, ob_deleted, ob_skipped, ob_puts;
	int64_t ob_max_key;      /* highest outbox key in the batch, 0 if none */
	int64_t seq_reserved;    /* reservation in the batch, 0 if none */
	int64_t last_rowid;      /* rowid of the batch's last reading, 0 if none */
	char skipped_text[128];
};

/* Executes ST for one row; a permanent error skips the row and is counted. */
static int step_row(store *s, sqlite3_stmt *st, uint64_t *skipped, struct commit_result *res) {
	int rc = sqlite3_step(st);
	int r;

	if (rc == SQLITE_DONE) {
		sqlite3_reset(st);
		return 0;
	}
	r = sqlite_to_errno(s->db, rc);
	if (error_is_permanent(r)) {
		snprintf(res->skipped_text, sizeof(res->skipped_text), "%s", sqlite3_errmsg(s->db));
		(*skipped)++;
		r = 1;
	}
	/* reset after errmsg: the message belongs to the step that failed. */
	sqlite3_reset(st);
	return r;
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *t) {
	if (t)
		sqlite3_bind_text(st, i, t, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

/*
 * Writes batch B in one transaction. On failure rolls back and returns the
 * error with SQLite's message in ERRTEXT; B is left untouched for a retry.
 */
static int commit_batch(store *s, const struct batch *b, struct commit_result *res,
                        char *errtext, size_t errlen) {
	sqlite3_stmt *st = s->st_reading;
	int r;

	memset(res, 0, sizeof(*res));
	/*
	 * A sequence reservation must survive a power cut (numbers below it
	 * get used as soon as the loop hears of it), so its transaction is
	 * synced even under synchronous=NORMAL. That is one fsync per block.
	 */
	if (b->has_seq && s->opts.synchronous != STORE_SYNC_FULL) {
		r = db_exec(s->db, "PRAGMA synchronous = FULL");
		if (r < 0)
			goto fail;
	}
	r = stmt_run(s->db, s->st_begin);
	if (r < 0)
		goto fail;

	for (size_t i = 0; i < b->n; i++) {
		const struct m2m_reading *rd = &b->r[i];

		sqlite3_bind_int64(st, 1, rd->point);
		sqlite3_bind_int64(st, 2, rd->ts_us);
		/* SQLite stores a NaN as NULL, which is what a missing value is. */
		sqlite3_bind_double(st, 3, rd->value);
		sqlite3_bind_int(st, 4, rd->quality);
		r = step_row(s, st, &res->skipped_rows, res);
		if (r < 0)
			goto fail;
		if (r == 0) {
			res->rows++;
			res->last_rowid = sqlite3_last_insert_rowid(s->db);
		}
	}

	for (const struct xrec *x = b->head; x; x = x->next) {
		switch (x->kind) {
		case XREC_TEXT:
			/*
			 * The column has REAL affinity (the schema is shared with
			 * numeric readings), so a text that looks like a number is
			 * stored as that number: "007" reads back as 7.0.
			 */
			sqlite3_bind_int64(st, 1, x->point);
			sqlite3_bind_int64(st, 2, x->ts);
			sqlite3_bind_text(st, 3, x->str[0], -1, SQLITE_STATIC);
			sqlite3_bind_int(st, 4, x->quality);
			r = step_row(s, st, &res->skipped_rows, res);
			if (r == 0) {
				res->rows++;
				res->last_rowid = sqlite3_last_insert_rowid(s->db);
			}
			break;
		case XREC_EVENT: {
			sqlite3_stmt *e = s->st_event;
			sqlite3_bind_int64(e, 1, x->ts);
			bind_text_or_null(e, 2, x->str[0]);
			bind_text_or_null(e, 3, x->str[1]);
			if (x->point)
				sqlite3_bind_int64(e, 4, x->point);
			else
				sqlite3_bind_null(e, 4);
			sqlite3_bind_double(e, 5, x->value);
			bind_text_or_null(e, 6, x->str[2]);
			bind_text_or_null(e, 7, x->str[3]);
			bind_text_or_null(e, 8, x->str[4]);
			r = step_row(s, e, &res->skipped_events, res);
			if (r == 0)
				res->events++;
			break;
		}
		case XREC_OUTBOX: {
			sqlite3_stmt *o = s->st_ob_insert;
			sqlite3_bind_int64(o, 1, x->key);
			sqlite3_bind_int64(o, 2, x->ts);
			sqlite3_bind_text(o, 3, x->str[0], -1, SQLITE_STATIC);
			sqlite3_bind_blob64(o, 4, x->str[1], x->len, SQLITE_STATIC);
			sqlite3_bind_int(o, 5, x->quality);
			sqlite3_bind_int(o, 6, x->point ? 1 : 0);
			r = step_row(s, o, &res->ob_skipped, res);
			if (r == 0)
				res->ob_inserted++;
			res->ob_puts++;
			if (x->key > res->ob_max_key)
				res->ob_max_key = x->key;
			break;
		}
		case XREC_OUTBOX_DEL: {
			uint64_t ignored = 0;
			sqlite3_bind_int64(s->st_ob_delete, 1, x->key);
			sqlite3_bind_int64(s->st_ob_delete, 2, x->ts);
			r = step_row(s, s->st_ob_delete, &ignored, res);
			if (r == 0)
				res->ob_deleted += (uint64_t)sqlite3_changes64(s->db);
			break;
		}
		case XREC_SEQ: {
			uint64_t ignored = 0;
			sqlite3_bind_int64(s->st_ob_seq, 1, x->key);
			r = step_row(s, s->st_ob_seq, &ignored, res);
			if (r == 0 && x->key > res->seq_reserved)
				res->seq_reserved = x->key;
			break;
		}
		case XREC_POINT: {
			/*
			 * The caller's id wins: a row that holds this id under
			 * another name is stale (the registry keeps ids stable, so
			 * this happens only after a manual edit) and goes first,
			 * so that the upsert on name cannot hit the primary key.
			 */
			sqlite3_stmt *f = s->st_point_free_id, *p = s->st_point;
			uint64_t ignored = 0;
			sqlite3_bind_int64(f, 1, x->point);
			sqlite3_bind_text(f, 2, x->str[0], -1, SQLITE_STATIC);
			r = step_row(s, f, &ignored, res);
			if (r < 0)
				break;
			sqlite3_bind_int64(p, 1, x->point);
			sqlite3_bind_text(p, 2, x->str[0], -1, SQLITE_STATIC);
			bind_text_or_null(p, 3, x->str[1]);
			bind_text_or_null(p, 4, x->str[2]);
			sqlite3_bind_int64(p, 5, x->ts);
			r = step_row(s, p, &ignored, res);
			if (r == 0)
				res->points++;
			break;
		}
		}
		if (r < 0)
			goto fail;
	}

	r = stmt_run(s->db, s->st_commit);
	if (r < 0)
		goto fail;
	if (b->has_seq && s->opts.synchronous != STORE_SYNC_FULL)
		(void)db_exec(s->db, "PRAGMA synchronous = NORMAL");
	return 0;

fail:
	snprintf(errtext, errlen, "%s", sqlite3_errmsg(s->db));
	if (!sqlite3_get_autocommit(s->db))
		(void)stmt_run(s->db, s->st_rollback);
	if (b->has_seq && s->opts.synchronous != STORE_SYNC_FULL)
		(void)db_exec(s->db, "PRAGMA synchronous = NORMAL");
	return r;
}

/* Wakes the loop's side of the outbox. Called with the lock held. */
static void outbox_notify(store *s) {
	if (s->ob.notify)
		s->ob.notify(s->ob.notify_arg);
}

/*
 * Enforces the outbox bounds: deletes the oldest rows beyond max_messages
 * and, when AGE, those older than max_age. Rows are keyed in the order
 * they were queued, so both come down to "every key below K", which is
 * what the loop hears (dropped_before) and applies to its window.
 */
static void outbox_enforce(store *s, bool age) {
	uint64_t max_messages, n;
	int64_t max_age_us, cut = 0, k = 0;
	int r;

	pthread_mutex_lock(&s->lock);
	max_messages = s->ob.max_messages;
	max_age_us = s->ob.max_age_us;
	pthread_mutex_unlock(&s->lock);

	if (max_messages > 0 && s->ob_count > max_messages) {
		sqlite3_bind_int64(s->st_ob_nth, 1, (int64_t)(s->ob_count - max_messages));
		r = stmt_int64(s->db, s->st_ob_nth, &k);
		if (r == 0)
			cut = k;
		else if (r == -ENODATA)
			cut = s->ob_max_key + 1; /* the count was off: everything is beyond */
	}
	if (age && max_age_us > 0 && s->ob_count > 0) {
		sqlite3_bind_int64(s->st_ob_first_young, 1, now_us() - max_age_us);
		r = stmt_int64(s->db, s->st_ob_first_young, &k);
		if (r == -ENODATA)
			k = s->ob_max_key + 1; /* every row is too old */
		if ((r == 0 || r == -ENODATA) && k > cut)
			cut = k;
	}
	if (cut <= 0)
		return;
	sqlite3_bind_int64(s->st_ob_drop_before, 1, cut);
	r = stmt_run(s->db, s->st_ob_drop_before);
	if (r < 0) {
		log_debug("%s: outbox bound enforcement failed: %s", s->path, m2m_strerror(r));
		return;
	}
	n = (uint64_t)sqlite3_changes64(s->db);
	s->ob_count = s->ob_count > n ? s->ob_count - n : 0;
	pthread_mutex_lock(&s->lock);
	s->ob.st.dropped += n;
	if (cut > s->ob.st.dropped_before)
		s->ob.st.dropped_before = cut;
	s->ob.st.count = s->ob_count;
	if (n > 0)
		outbox_notify(s);
	pthread_mutex_unlock(&s->lock);
}

/* Reads the rows a fetch asked for and hands them to the loop. */
static void outbox_fetch_run(store *s, int64_t after, int64_t upto, size_t max) {
	struct store_outbox_row *head = NULL, **tailp = &head, *last = NULL;
	sqlite3_stmt *st = s->st_ob_fetch;
	size_t n = 0;
	int rc, r = 0;

	sqlite3_bind_int64(st, 1, after);
	sqlite3_bind_int64(st, 2, upto);
	sqlite3_bind_int64(st, 3, (int64_t)max);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *topic = sqlite3_column_text(st, 2);
		const void *payload = sqlite3_column_blob(st, 3);
		size_t tlen = topic ? strlen((const char *)topic) + 1 : 1;
		size_t len = (size_t)sqlite3_column_bytes(st, 3);
		struct store_outbox_row *row = calloc(1, sizeof(*row) + tlen + len + 1);

		if (!row) {
			r = -ENOMEM;
			break;
		}
		row->key = sqlite3_column_int64(st, 0);
		row->ts_us = sqlite3_column_int64(st, 1);
		row->topic = row->data;
		memcpy(row->topic, topic ? (const char *)topic : "", tlen);
		row->payload = row->data + tlen;
		if (len)
			memcpy(row->payload, payload, len);
		row->len = len;
		row->qos = sqlite3_column_int(st, 4);
		row->retain = sqlite3_column_int(st, 5) != 0;
		*tailp = row;
		tailp = &row->next;
		last = row;
		n++;
	}
	if (r == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
		r = sqlite_to_errno(s->db, rc);
	sqlite3_reset(st);

	pthread_mutex_lock(&s->lock);
	/* Appended: the loop may not have polled the previous rows yet. */
	if (s->ob.tail)
		s->ob.tail->next = head;
	else
		s->ob.st.fetched = head;
	if (last)
		s->ob.tail = last;
	s->ob.st.n_fetched += n;
	s->ob.st.fetch_done = true;
	s->ob.st.fetch_error = r;
	outbox_notify(s);
	pthread_mutex_unlock(&s->lock);
}

/*
 * Retention by age, one step: deletes what is older than CUTOFF among the
 * RETENTION_STEP_ROWS oldest rows by rowid. Rows are inserted in
 * acquisition order, so rowid order is time order up to small reorderings
 * (a batch with a late driver, a clock step). A row whose timestamp is
 * ahead of its neighbours therefore waits until the rows before it are
 * gone, and a run of them stops the step early; that keeps each step an
 * index-free rowid range scan instead of a full scan for "ts < cutoff".
 */
static int retention_step(store *s, sqlite3_stmt *st, const int64_t *cutoff,
                          uint64_t *ret_deleted) {
	int r;

	if (cutoff)
		sqlite3_bind_int64(st, 1, *cutoff);
	r = stmt_run(s->db, st);
	if (r < 0)
		return r;
	*ret_deleted = (uint64_t)sqlite3_changes64(s->db);
	return 0;
}

static int db_size(store *s, int64_t *ret_pages, int64_t *ret_free) {
	int r = stmt_int64(s->db, s->st_page_count, ret_pages);

	if (r < 0)
		return r;
	return stmt_int64(s->db, s->st_freelist, ret_free);
}

/*
 * Retention and size bookkeeping between commits. Each step is its own
 * short transaction, so the write lock is released between steps; the
 * whole run stops after MAINT_BUDGET_US and continues a second later.
 */
static void maintenance(store *s) {
	int64_t start = mono_us(), pages = 0, freepages = 0;
	uint64_t deleted_total = 0, n = 0;
	int r = 0;

	if (s->opts.retention_age_us > 0) {
		int64_t cutoff = now_us() - s->opts.retention_age_us;
		sqlite3_stmt *tables[2] = { s->st_age_readings, s->st_age_events };

		for (size_t t = 0; t < ELEMENTSOF(tables) && r >= 0; t++)
			do {
				r = retention_step(s, tables[t], &cutoff, &n);
				if (r < 0)
					break;
				deleted_total += n;
			} while (n >= RETENTION_STEP_ROWS && mono_us() - start < MAINT_BUDGET_US);
	}

	if (s->opts.retention_size > 0 && r >= 0) {
		while (mono_us() - start < MAINT_BUDGET_US) {
			int64_t used;

			r = db_size(s, &pages, &freepages);
			if (r < 0)
				break;
			/*
			 * Without incremental auto-vacuum (a database made before it
			 * was set) free pages never leave the file; count only used
			 * pages then, or retention would delete everything.
			 */
			used = (s->incremental_vacuum ? pages : pages - freepages) * s->page_size;
			if (used <= (int64_t)s->opts.retention_size)
				break;
			if (s->incremental_vacuum && freepages > 0) {
				char sql[64];
				snprintf(sql, sizeof(sql), "PRAGMA incremental_vacuum(%" PRId64 ")",
				         min64(freepages, VACUUM_STEP_PAGES));
				r = db_exec(s->db, sql);
			} else {
				r = retention_step(s, s->st_size_readings, NULL, &n);
				if (r >= 0 && n == 0)
					break; /* Nothing left to delete: other tables hold the space. */
				deleted_total += n;
			}
			if (r < 0)
				break;
		}
	}

	if (r >= 0)
		outbox_enforce(s, true);
	if (r < 0)
		/* Retention is retried every second; a busy or full disk passes. */
		log_debug("%s: retention step failed: %s", s->path, m2m_strerror(r));

	if (db_size(s, &pages, &freepages) < 0)
		pages = -1;
	pthread_mutex_lock(&s->lock);
	s->stats.retention_deleted += deleted_total;
	if (pages >= 0)
		s->stats.db_bytes = (uint64_t)(pages * s->page_size);
	pthread_mutex_unlock(&s->lock);
}

/* Marks the clean shutdown and leaves a small, checkpointed file behind. */
static void shutdown_db(store *s) {
	int r;

	int64_t seq_next;

	if (!s->db)
		return; /* a reopen failed: nothing can be written */

	pthread_mutex_lock(&s->lock);
	seq_next = s->ob.seq_next_clean;
	pthread_mutex_unlock(&s->lock);
	if (seq_next > 0) {
		/* Exact, so that a clean restart continues without a gap. */
		char sql[128];
		snprintf(sql, sizeof(sql),
		         "INSERT OR REPLACE INTO meta(key, value) VALUES ('mqtt_seq_next', %" PRId64 ")",
		         seq_next);
		r = db_exec(s->db, sql);
		if (r < 0)
			log_warning("%s: cannot save the MQTT sequence number: %s", s->path,
			            m2m_strerror(r));
	}
	r = db_exec(s->db, "UPDATE meta SET value = 1 WHERE key = 'clean_shutdown'");
	if (r < 0) {
		log_warning("%s: cannot mark clean shutdown: %s", s->path, m2m_strerror(r));
		return;
	}
	/* analysis_limit keeps optimize from reading a large table in full. */
	(void)db_exec(s->db, "PRAGMA analysis_limit = 400; PRAGMA optimize");
	(void)db_exec(s->db, "PRAGMA wal_checkpoint(TRUNCATE)");
}

static void cond_wait_until(store *s, int64_t deadline_mono_us) {
	struct timespec ts;

	if (deadline_mono_us == INT64_MAX) {
		pthread_cond_wait(&s->cond, &s->lock);
		return;
	}
	ts.tv_sec = (time_t)(deadline_mono_us / 1000000);
	ts.tv_nsec = (long)(deadline_mono_us % 1000000) * 1000;
	pthread_cond_timedwait(&s->cond, &s->lock, &ts);
}

/* ---- recovery from a failing disk ---- */

static int db_open(store *s, bool reopen, char **ret_error);
static void db_close(store *s);
static int quick_check(sqlite3 *db, char *detail, size_t n);

/* Errors after which the connection is not trusted again: it is closed and opened anew. */
static bool error_needs_reopen(int r) {
	return r == -EROFS || r == -EIO || r == -ENXIO || r == -ENODEV || r == -ESTALE || r == -EBADF;
}

static uint64_t fsize_limit(void) {
	struct rlimit rl;

	if (getrlimit(RLIMIT_FSIZE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
		return UINT64_MAX;
	return (uint64_t)rl.rlim_cur;
}

/*
 * The cheap checks (free space, the file size limit) run every commit
 * interval, so that space is found within one of coming back; the
 * directory probe only once a second, since it writes and syncs a file.
 */
static int64_t probe_interval(const store *s) {
	return s->opts.commit_interval_us;
}

/* Called when a run of failed commits begins with error R. */
static void recovery_begin(store *s, int r) {
	/* Without a connection (a reopen found no file yet) the file system is still the suspect. */
	s->rec.fs_suspect = error_needs_reopen(r) || !s->db;
	s->rec.fsize_limit = fsize_limit();
	s->rec.next_probe_us = mono_us() + probe_interval(s);
}

static void db_dir(const store *s, char *buf, size_t n) {
	const char *slash = strrchr(s->path, '/');

	if (!slash)
		snprintf(buf, n, ".");
	else if (slash == s->path)
		snprintf(buf, n, "/");
	else
		snprintf(buf, n, "%.*s", (int)(slash - s->path), s->path);
}

/*
 * Whether DIR takes a small file for real: created, written, synced and
 * removed. The file is named and removed through one fd of the directory,
 * so that a file system mounted over DIR in between (an operator mending
 * it) cannot leave the probe hidden under the mount point.
 */
static bool dir_writable(const char *dir) {
	char name[64];
	int dfd, fd;
	bool ok;

	snprintf(name, sizeof(name), ".m2md-probe-%d", (int)getpid());
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return false;
	fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		close(dfd);
		return false;
	}
	ok = write(fd, "x", 1) == 1 && fsync(fd) == 0;
	close(fd);
	if (unlinkat(dfd, name, 0) < 0)
		ok = false;
	close(dfd);
	return ok;
}

/*
 * Whether what made commits fail with R looks mended, from cheap checks,
 * so that the next attempt comes now instead of after the backoff. ROWS
 * is the size of the waiting batch.
 */
static bool recovery_ready(store *s, int r, size_t rows) {
	char dir[PATH_MAX];
	struct statvfs sv;

	db_dir(s, dir, sizeof(dir));
	/* A raised file size limit shows as EFBIG or, from a short write, as EIO. */
	if (fsize_limit() > s->rec.fsize_limit)
		return true;
	if (r == -ENOSPC) {
		/* Room for the batch's WAL frames, with a margin. */
		uint64_t need = (uint64_t)rows * 128 > 1048576 ? (uint64_t)rows * 128 : 1048576;
		return statvfs(dir, &sv) == 0 && (uint64_t)sv.f_bavail * sv.f_frsize >= need;
	}
	if (s->rec.fs_suspect && mono_us() >= s->rec.next_dir_probe_us) {
		s->rec.next_dir_probe_us = mono_us() + MAINT_INTERVAL_US;
		/*
		 * The connection is opened again only once the directory was
		 * seen refusing writes and then taking them: a file system that
		 * failed and came back. An I/O error in a directory that takes
		 * writes all along (a bad sector, a per-file limit) is retried
		 * on the same connection.
		 */
		if (!dir_writable(dir)) {
			s->rec.fs_failed = true;
			return false;
		}
		if (!s->rec.fs_failed || access(s->path, F_OK) < 0)
			return false;
		s->rec.reopen = true;
		return true;
	}
	return false;
}

static int64_t readings_max_rowid(store *s) {
	int64_t v = 0;

	if (stmt_int64(s->db, s->st_max_rowid, &v) < 0)
		return -1;
	return v;
}

/*
 * Opens the connection again after the file system failed under it,
 * checks the file, and counts the readings committed before the failure
 * that are gone now (what synchronous = NORMAL had not synced when the
 * file system stopped). Storage thread.
 */
static int db_reopen(store *s, char *errtext, size_t n) {
	char detail[256], *err = NULL;
	int64_t max_rowid;
	uint64_t lost;
	int r;

	/*
	 * The connection goes because its file system failed, and the path may
	 * now lead to another one (the operator mounted it again). Closing the
	 * last connection checkpoints and then deletes -wal and -shm by name,
	 * judging "not moved" by inode numbers, which e2fsck keeps: without
	 * the checkpoint SQLite deletes nothing, and the next open recovers
	 * the WAL as it is.
	 */
	if (s->db)
		sqlite3_db_config(s->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)NULL);
	db_close(s);
	r = db_open(s, true, &err);
	if (r < 0) {
		snprintf(errtext, n, "%s", err ? err : m2m_strerror(r));
		free(err);
		db_close(s);
		return r;
	}
	r = quick_check(s->db, detail, sizeof(detail));
	if (r < 0) {
		snprintf(errtext, n, "quick_check after reopening: %.90s", detail);
		db_close(s);
		return r;
	}
	max_rowid = readings_max_rowid(s);
	lost = max_rowid >= 0 && s->rec.last_rowid > max_rowid ? (uint64_t)(s->rec.last_rowid - max_rowid) : 0;
	if (max_rowid >= 0)
		s->rec.last_rowid = max_rowid;
	pthread_mutex_lock(&s->lock);
	s->stats.reopens++;
	s->stats.rows_lost += lost;
	pthread_mutex_unlock(&s->lock);
	if (lost)
		log_error("%s: database reopened; %" PRIu64 " readings committed before the file system failed"
		          " are not in it (synchronous = \"normal\" does not sync each commit; \"full\" does)",
		          s->path, lost);
	else
		log_notice("%s: database reopened; nothing committed was lost", s->path);
	s->rec.reopen = false;
	s->rec.fs_suspect = s->rec.fs_failed = false;
	return 0;
}

static void *store_thread(void *arg) {
	store *s = arg;
	struct batch *b;
	int64_t now = mono_us();
	int64_t next_maint = now + MAINT_INTERVAL_US, next_retry = 0, backoff = 0;
	/* commit_interval after the last commit of rows: the next commit, if rows come by then. */
	int64_t tick = INT64_MAX;
	int64_t next_drop_log = 0, stop_deadline = 0;
	uint64_t fail_count = 0, logged_rows_dropped = 0, logged_events_dropped = 0;
	int fail_err = 0;
	bool stopping = false;
	/* A fetch taken with the batch it must follow; run once that batch is committed. */
	bool fetch = false;
	int64_t fetch_after = 0, fetch_upto = 0;
	size_t fetch_max = 0;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		bool kick, stop, more_pending, failing = !batch_empty(s->inflight);
		uint64_t rows_dropped, events_dropped;

		/* Wait until a commit, a retry or maintenance is due. */
		for (;;) {
			int64_t deadline;

			now = mono_us();
			if (s->stop && !stopping) {
				stopping = true;
				stop_deadline = s->stop_deadline_us;
				/* One more attempt right away, then backoff until the deadline. */
				next_retry = now;
			}
			if (failing)
				deadline = s->kick ? now : min64(next_retry, s->rec.next_probe_us);
			else if (s->kick || s->stop || s->full_signalled || s->ob.fetch_requested ||
			         batch_rows(s->pending) >= s->opts.commit_rows)
				deadline = now;
			else if (!batch_empty(s->pending))
				deadline = min64(s->pending_since_us + s->opts.commit_interval_us, tick);
			else {
				/* Nothing came by the tick: sleep until something does. */
				if (now >= tick)
					tick = INT64_MAX;
				deadline = tick;
			}
			if (stopping && failing)
				deadline = min64(deadline, stop_deadline);
			deadline = min64(deadline, next_maint);
			if (now >= deadline)
				break;
			s->sleep_until_us = deadline;
			cond_wait_until(s, deadline);
			s->sleep_until_us = 0;
		}

		kick = s->kick;
		s->kick = false;
		stop = s->stop;
		if (!failing && !batch_empty(s->pending)) {
			/* Swap buffers: the loop keeps appending to the empty one. */
			b = s->pending;
			s->pending = s->inflight;
			s->inflight = b;
			s->full_signalled = false;
			tick = now + s->opts.commit_interval_us;
		}
		if (!failing && !fetch && s->ob.fetch_requested) {
			/*
			 * Taken together with the swap: every insert queued before
			 * the request is in the batch about to be committed.
			 */
			fetch = true;
			s->ob.fetch_requested = false;
			fetch_after = s->ob.fetch_after;
			fetch_upto = s->ob.fetch_upto;
			fetch_max = s->ob.fetch_max;
		}
		more_pending = !batch_empty(s->pending);
		rows_dropped = s->stats.rows_dropped;
		events_dropped = s->stats.events_dropped;
		pthread_mutex_unlock(&s->lock);

		b = s->inflight;
		if (failing && now >= s->rec.next_probe_us) {
			if (recovery_ready(s, fail_err, batch_rows(b)))
				next_retry = now;
			s->rec.next_probe_us = now + probe_interval(s);
		}
		if (!batch_empty(b) && (!failing || kick || now >= next_retry)) {
			struct commit_result res;
			char errtext[sizeof(s->stats.last_error_text)];
			int r = 0;

			memset(&res, 0, sizeof(res));
			if (s->rec.reopen || !s->db)
				r = db_reopen(s, errtext, sizeof(errtext));
			if (r == 0)
				r = commit_batch(s, b, &res, errtext, sizeof(errtext));

			pthread_mutex_lock(&s->lock);
			if (r >= 0) {
				s->stats.rows_written += res.rows;
				s->stats.events_written += res.events;
				s->stats.rows_dropped += res.skipped_rows;
				s->stats.events_dropped += res.skipped_events;
				s->stats.queued -= batch_rows(b);
				s->events_queued -= b->events;
				s->stats.commits++;
				s->stats.failing = false;
				s->ob_count += res.ob_inserted;
				s->ob_count = s->ob_count > res.ob_deleted ? s->ob_count - res.ob_deleted : 0;
				if (res.ob_max_key > s->ob_max_key)
					s->ob_max_key = res.ob_max_key;
				s->ob.st.count = s->ob_count;
				if (res.ob_max_key > s->ob.st.committed_key)
					s->ob.st.committed_key = res.ob_max_key;
				s->ob.st.puts_committed += res.ob_puts;
				if (res.seq_reserved > s->ob.st.seq_reserved)
					s->ob.st.seq_reserved = res.seq_reserved;
				/* A commit of deletes only still changes the count the loop shows. */
				if (res.ob_max_key || res.seq_reserved || res.ob_deleted)
					outbox_notify(s);
			} else {
				s->stats.errors++;
				s->stats.failing = true;
				s->stats.last_error = r;
				snprintf(s->stats.last_error_text, sizeof(s->stats.last_error_text),
				         "%s", errtext);
			}
			pthread_mutex_unlock(&s->lock);

			if (r >= 0) {
				if (fail_count > 0)
					log_notice("%s: storage recovered after %" PRIu64
					           " failed commits, %" PRIu64 " rows written",
					           s->path, fail_count, res.rows);
				if (res.skipped_rows + res.skipped_events > 0)
					log_warning("%s: skipped %" PRIu64 " rows SQLite refused: %s",
					            s->path, res.skipped_rows + res.skipped_events,
					            res.skipped_text);
				batch_clear(b);
				fail_count = 0;
				fail_err = 0;
				backoff = 0;
				s->rec.fs_suspect = s->rec.fs_failed = false;
				/*
				 * A new row's rowid is max(rowid) + 1 (readings has no
				 * AUTOINCREMENT and never nears 2^63), so the last one
				 * inserted is the max(rowid) a query would find.
				 */
				if (res.rows > 0)
					s->rec.last_rowid = res.last_rowid;
			} else {
				fail_count++;
				/* Once per state change, not once per retry. */
				if (r != fail_err)
					log_error("%s: cannot write %zu readings and %zu events: %s (%s);"
					          " keeping them and retrying",
					          s->path, batch_rows(b), b->events, m2m_strerror(r), errtext);
				if (fail_count == 1 || r != fail_err)
					recovery_begin(s, r);
				fail_err = r;
				backoff = backoff ? min64(backoff * 2, BACKOFF_MAX_US) : BACKOFF_MIN_US;
				next_retry = mono_us() + backoff;
			}
		}

		if (batch_empty(b) && s->db) {
			/* Committed (or nothing to commit): the outbox is consistent on disk. */
			outbox_enforce(s, false);
			if (fetch) {
				outbox_fetch_run(s, fetch_after, fetch_upto, fetch_max);
				fetch = false;
			}
		}

		now = mono_us();
		if (now >= next_drop_log &&
		    (rows_dropped > logged_rows_dropped || events_dropped > logged_events_dropped)) {
			log_warning("%s: storage queue full: %" PRIu64 " readings and %" PRIu64
			            " events dropped so far (queue_limit %" PRIu32 ")",
			            s->path, rows_dropped, events_dropped, s->opts.queue_limit);
			logged_rows_dropped = rows_dropped;
			logged_events_dropped = events_dropped;
			next_drop_log = now + DROP_LOG_INTERVAL_US;
		}

		if (stop) {
			if (batch_empty(b) && !more_pending)
				break;
			if (!batch_empty(b) && now >= stop_deadline) {
				size_t rows, events;

				pthread_mutex_lock(&s->lock);
				rows = (size_t)s->stats.queued;
				events = s->events_queued;
				s->stats.rows_dropped += s->stats.queued;
				s->stats.events_dropped += s->events_queued;
				s->stats.queued = 0;
				s->events_queued = 0;
				batch_clear(s->pending);
				pthread_mutex_unlock(&s->lock);
				batch_clear(b);
				log_error("%s: storage still failing at shutdown (%s); dropped %zu readings"
				          " and %zu events",
				          s->path, m2m_strerror(fail_err), rows, events);
				break;
			}
		} else if (now >= next_maint) {
			if (batch_empty(b) && s->db)
				maintenance(s);
			next_maint = mono_us() + MAINT_INTERVAL_US;
		}
		pthread_mutex_lock(&s->lock);
	}

	shutdown_db(s);
	return NULL;
}

/* ---- open and close ---- */

static void db_close(store *s) {
	sqlite3_stmt **stmts[] = {
		&s->st_begin, &s->st_commit, &s->st_rollback, &s->st_reading, &s->st_event,
		&s->st_point_free_id, &s->st_point, &s->st_age_readings, &s->st_age_events,
		&s->st_size_readings, &s->st_page_count, &s->st_freelist, &s->st_ob_insert,
		&s->st_ob_delete, &s->st_ob_seq, &s->st_ob_nth, &s->st_ob_first_young,
		&s->st_ob_drop_before, &s->st_ob_fetch, &s->st_max_rowid,
	};

	for (size_t i = 0; i < ELEMENTSOF(stmts); i++) {
		sqlite3_finalize(*stmts[i]);
		*stmts[i] = NULL;
	}
	/* sqlite3_close() fails only while statements are alive; all are finalized. */
	sqlite3_close(s->db);
	s->db = NULL;
}

static void store_free(store *s) {
	if (!s)
		return;
	db_close(s);
	for (struct xrec *x = s->staged_head, *next; x; x = next) {
		next = x->next;
		free(x);
	}
	for (size_t i = 0; i < ELEMENTSOF(s->batches); i++)
		batch_free(&s->batches[i]);
	for (size_t i = 0; i < s->n_points; i++)
		free(s->points[i].name);
	free(s->points);
	if (s->cond_init)
		pthread_cond_destroy(&s->cond);
	if (s->lock_init)
		pthread_mutex_destroy(&s->lock);
	free(s->quarantined_to);
	free(s->path);
	free(s);
}

/* The one line store_open returns for error R; DETAIL is SQLite's text. */
static char *open_message(const char *path, const char *what, int r, const char *detail) {
	switch (r) {
	case -EBUSY:
		return strdup_printf("%s: database is locked by another process", path);
	case M2M_ECORRUPT:
		return strdup_printf("%s: database is corrupt (%s)", path, detail);
	case -ENOENT:
	case -EACCES:
	case -EPERM:
	case -EROFS:
	case -ENOTDIR:
		return strdup_printf("%s: %s: %s (directory missing or not writable)", path, what,
		                     detail);
	default:
		return strdup_printf("%s: %s: %s", path, what, detail);
	}
}

/*
 * Runs PRAGMA quick_check. Returns 0 when it says "ok", M2M_ECORRUPT with
 * its first complaint in DETAIL otherwise, or another error.
 */
static int quick_check(sqlite3 *db, char *detail, size_t n) {
	int r = query_text(db, "PRAGMA quick_check", detail, n);

	if (r == M2M_ECORRUPT)
		snprintf(detail, n, "%s", sqlite3_errmsg(db));
	if (r < 0)
		return r;
	if (strcmp(detail, "ok") == 0)
		return 0;
	/* The error goes into one log line: drop the banner, join the lines. */
	if (startswith(detail, "*** in database main ***\n"))
		memmove(detail, detail + 25, strlen(detail + 25) + 1);
	for (char *p = detail; *p; p++)
		if (*p == '\n')
			*p = ' ';
	return M2M_ECORRUPT;
}

static int read_meta(sqlite3 *db, const char *key, int64_t *ret) {
	sqlite3_stmt *st = NULL;
	int rc, r;

	rc = sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = ?1", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return sqlite_to_errno(db, rc);
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	r = stmt_int64(db, st, ret);
	sqlite3_finalize(st);
	return r;
}

/*
 * Checks and migrates the schema and marks the database in use, in one
 * write transaction (taking the write lock also tells us whether another
 * process holds the database).
 */
static int db_migrate(store *s, char **ret_error) {
	char detail[256] = "";
	int64_t version = 0, clean = 1, n;
	const char *what = "cannot read schema";
	int r;

	r = db_exec(s->db, "BEGIN IMMEDIATE");
	if (r < 0)
		goto fail_sqlite;
	r = query_int64(s->db,
	                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
	                &n);
	if (r < 0)
		goto fail_sqlite;
	if (n > 0) {
		r = read_meta(s->db, "schema_version", &version);
		if (r == -ENODATA)
			version = 0;
		else if (r < 0)
			goto fail_sqlite;
		r = read_meta(s->db, "clean_shutdown", &clean);
		if (r == -ENODATA)
			clean = 0;
		else if (r < 0)
			goto fail_sqlite;
	}
	if (version > SCHEMA_VERSION) {
		r = -EPROTO;
		*ret_error = strdup_printf("%s: database schema version %" PRId64
		                          " was created by a newer m2md (this one knows up to %" PRId64 ")",
		                          s->path, version, SCHEMA_VERSION);
		goto fail;
	}
	if (!clean) {
		/* The last run died with the database open: check before trusting it. */
		s->unclean = true;
		r = quick_check(s->db, detail, sizeof(detail));
		if (r < 0) {
			what = "quick_check failed";
			goto fail_detail;
		}
	}
	what = "cannot migrate schema";
	for (int64_t v = version; v < SCHEMA_VERSION; v++) {
		r = db_exec(s->db, migrations[v]);
		if (r < 0)
			goto fail_sqlite;
	}
	/* clean_shutdown stays 0 while the database is open; store_close sets 1. */
	{
		char sql[128];
		snprintf(sql, sizeof(sql),
		         "INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', %" PRId64
		         "), ('clean_shutdown', 0)", SCHEMA_VERSION);
		r = db_exec(s->db, sql);
		if (r < 0)
			goto fail_sqlite;
	}
	what = "cannot commit schema";
	r = db_exec(s->db, "COMMIT");
	if (r < 0)
		goto fail_sqlite;
	return 0;

fail_sqlite:
	snprintf(detail, sizeof(detail), "%s", sqlite3_errmsg(s->db));
fail_detail:
	*ret_error = open_message(s->path, what, r, detail);
fail:
	if (!sqlite3_get_autocommit(s->db))
		(void)db_exec(s->db, "ROLLBACK");
	return r;
}

static int db_prepare_all(store *s) {
	const struct {
		sqlite3_stmt **st;
		const char *sql;
	} stmts[] = {
		{ &s->st_begin, "BEGIN IMMEDIATE" },
		{ &s->st_commit, "COMMIT" },
		{ &s->st_rollback, "ROLLBACK" },
		{ &s->st_reading, "INSERT INTO readings(point, ts, value, quality) VALUES (?1, ?2, ?3, ?4)" },
		{ &s->st_event, "INSERT INTO events(ts, kind, source, point, value, from_state, to_state,"
		                " text) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)" },
		{ &s->st_point_free_id, "DELETE FROM points WHERE id = ?1 AND name <> ?2" },
		{ &s->st_point, "INSERT INTO points(id, name, unit, kind, created_us)"
		                " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(name) DO UPDATE SET"
		                " id = excluded.id, unit = excluded.unit, kind = excluded.kind" },
		{ &s->st_age_readings, "DELETE FROM readings WHERE rowid IN (SELECT rowid FROM readings"
		                       " ORDER BY rowid LIMIT " STRINGIFY(RETENTION_STEP_ROWS)
		                       ") AND ts < ?1" },
		/*
		 * An active alarm must outlive retention: the newest transition
		 * of each rule and point stays, however old (see events_rule_last).
		 */
		{ &s->st_age_events, "DELETE FROM events WHERE id IN (SELECT id FROM events e"
		                     " WHERE e.kind <> 'rule' OR EXISTS (SELECT 1 FROM events n"
		                     " WHERE n.kind = 'rule' AND n.source IS e.source"
		                     " AND n.point IS e.point AND n.id > e.id)"
		                     " ORDER BY id LIMIT " STRINGIFY(RETENTION_STEP_ROWS)
		                     ") AND ts < ?1" },
		{ &s->st_size_readings, "DELETE FROM readings WHERE rowid IN (SELECT rowid FROM readings"
		                        " ORDER BY rowid LIMIT " STRINGIFY(RETENTION_STEP_ROWS) ")" },
		{ &s->st_page_count, "PRAGMA page_count" },
		{ &s->st_freelist, "PRAGMA freelist_count" },
		{ &s->st_ob_insert, "INSERT INTO outbox(seq, ts, topic, payload, qos, retain)"
		                    " VALUES (?1, ?2, ?3, ?4, ?5, ?6)" },
		{ &s->st_ob_delete, "DELETE FROM outbox WHERE seq BETWEEN ?1 AND ?2" },
		{ &s->st_ob_seq, "INSERT OR REPLACE INTO meta(key, value) VALUES ('mqtt_seq_reserved', ?1)" },
		{ &s->st_ob_nth, "SELECT seq FROM outbox ORDER BY seq LIMIT 1 OFFSET ?1" },
		{ &s->st_ob_first_young, "SELECT seq FROM outbox WHERE ts >= ?1 ORDER BY seq LIMIT 1" },
		{ &s->st_ob_drop_before, "DELETE FROM outbox WHERE seq < ?1" },
		{ &s->st_ob_fetch, "SELECT seq, ts, topic, payload, qos, retain FROM outbox"
		                   " WHERE seq > ?1 AND seq <= ?2 ORDER BY seq LIMIT ?3" },
		{ &s->st_max_rowid, "SELECT coalesce(max(rowid), 0) FROM readings" },
	};
	int r;

	for (size_t i = 0; i < ELEMENTSOF(stmts); i++) {
		r = prepare(s->db, stmts[i].sql, stmts[i].st);
		if (r < 0)
			return r;
	}
	return 0;
}

static int db_cache_points(store *s) {
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int rc, r = 0;

	rc = sqlite3_prepare_v2(s->db, "SELECT id, name FROM points ORDER BY id", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return sqlite_to_errno(s->db, rc);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *name = sqlite3_column_text(st, 1);
		int64_t id = sqlite3_column_int64(st, 0);

		if (!name || id < 0 || id > UINT32_MAX)
			continue;
		if (s->n_points == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct cached_point *p = realloc(s->points, ncap * sizeof(*p));
			if (!p) {
				r = -ENOMEM;
				goto out;
			}
			s->points = p;
			cap = ncap;
		}
		s->points[s->n_points].name = strdup((const char *)name);
		if (!s->points[s->n_points].name) {
			r = -ENOMEM;
			goto out;
		}
		s->points[s->n_points++].id = (uint32_t)id;
	}
	if (rc != SQLITE_DONE)
		r = sqlite_to_errno(s->db, rc);
out:
	sqlite3_finalize(st);
	return r;
}

/*
 * Reads what the outbox holds and reserves the first block of payload
 * sequence numbers, durably (synchronous=FULL for this one transaction):
 * the loop uses numbers below the reservation from its first message on.
 */
static int db_outbox_open(store *s) {
	struct store_outbox_info *i = &s->ob_info;
	int64_t v, next = 0, reserved = 0;
	char sql[256];
	int r;

	r = query_int64(s->db, "SELECT count(*) FROM outbox", &v);
	if (r < 0)
		return r;
	i->count = (uint64_t)v;
	r = query_int64(s->db, "SELECT coalesce(min(seq), 0) FROM outbox", &i->min_key);
	if (r < 0)
		return r;
	r = query_int64(s->db, "SELECT coalesce(max(seq), 0) FROM outbox", &i->max_key);
	if (r < 0)
		return r;
	r = read_meta(s->db, "mqtt_seq_next", &next);
	if (r < 0 && r != -ENODATA)
		return r;
	r = read_meta(s->db, "mqtt_seq_reserved", &reserved);
	if (r < 0 && r != -ENODATA)
		return r;
	/*
	 * After a clean shutdown the exact next number is known. Otherwise the
	 * last run may have used any number below its reservation, and a
	 * power cut may have lost the record of anything after it: start at
	 * the reservation, so numbers are never repeated (a gap, not a lie).
	 */
	i->seq_next = !s->unclean && next > 0 ? next : max64(next, reserved);
	if (i->seq_next < 1)
		i->seq_next = 1;
	i->seq_reserved = i->seq_next + OUTBOX_SEQ_BLOCK;
	snprintf(sql, sizeof(sql),
	         "PRAGMA synchronous = FULL;"
	         " INSERT OR REPLACE INTO meta(key, value) VALUES ('mqtt_seq_reserved', %" PRId64 "),"
	         " ('mqtt_seq_next', 0);"
	         " PRAGMA synchronous = %s",
	         i->seq_reserved, s->opts.synchronous == STORE_SYNC_FULL ? "FULL" : "NORMAL");
	r = db_exec(s->db, sql);
	if (r < 0)
		return r;
	s->ob_count = i->count;
	s->ob_max_key = i->max_key;
	s->ob.st.count = i->count;
	s->ob.st.committed_key = i->max_key;
	s->ob.st.seq_reserved = i->seq_reserved;
	/* Unchanged unless the MQTT side used numbers: a clean restart continues here. */
	s->ob.seq_next_clean = i->seq_next;
	return 0;
}

/*
 * Opens the connection and brings the database to a usable state. Returns
 * M2M_ECORRUPT (with the message in *ret_error) for a file the caller may
 * quarantine.
 */
static int db_open(store *s, bool reopen, char **ret_error) {
	char detail[256], mode[32];
	const char *what = "cannot open database";
	int64_t tables, v;
	int rc, r;

	/*
	 * NOMUTEX: the connection is only ever used by one thread at a time
	 * (handed over by pthread_create and pthread_join), so SQLite's own
	 * per-call mutex would be pure cost. SQLite opens the database, WAL
	 * and shm files with O_CLOEXEC itself.
	 */
	/*
	 * A reopen never creates: a missing file then means the file system
	 * is not back yet (an empty mount point shows its own directory), and
	 * a new database there would be written under the mount.
	 */
	rc = sqlite3_open_v2(s->path, &s->db,
	                     SQLITE_OPEN_READWRITE | (reopen ? 0 : SQLITE_OPEN_CREATE) | SQLITE_OPEN_NOMUTEX,
	                     NULL);
	if (rc != SQLITE_OK) {
		r = sqlite_to_errno(s->db, rc);
		goto fail_sqlite;
	}
	if (sqlite3_db_readonly(s->db, "main") == 1) {
		*ret_error = strdup_printf("%s: cannot open database: file is not writable", s->path);
		return -EROFS;
	}
	sqlite3_busy_timeout(s->db, OPEN_BUSY_TIMEOUT_MS);

	/* The first read parses the header: garbage fails here as NOTADB. */
	what = "cannot read database";
	r = query_int64(s->db, "SELECT count(*) FROM sqlite_master", &tables);
	if (r == M2M_ECORRUPT) {
		/* Ask quick_check for a better account of the damage, if it can. */
		if (quick_check(s->db, detail, sizeof(detail)) != M2M_ECORRUPT)
			snprintf(detail, sizeof(detail), "%s", sqlite3_errmsg(s->db));
		goto fail_detail;
	}
	if (r < 0)
		goto fail_sqlite;
	s->created = tables == 0;
	if (s->created) {
		/* Only possible before the first table exists. */
		r = db_exec(s->db, "PRAGMA auto_vacuum = INCREMENTAL");
		if (r < 0)
			goto fail_sqlite;
	}

	what = "cannot enable WAL";
	r = query_text(s->db, "PRAGMA journal_mode = WAL", mode, sizeof(mode));
	if (r < 0)
		goto fail_sqlite;
	if (strcmp(mode, "wal") != 0) {
		/* Readers (m2mctl) and a non-blocking writer depend on WAL. */
		*ret_error = strdup_printf("%s: cannot enable WAL journal mode (still \"%s\");"
		                          " is the file system local?", s->path, mode);
		return -EOPNOTSUPP;
	}

	what = "cannot configure database";
	{
		char sql[256];
		snprintf(sql, sizeof(sql),
		         "PRAGMA synchronous = %s; PRAGMA cache_size = %" PRId64 ";"
		         " PRAGMA temp_store = MEMORY; PRAGMA journal_size_limit = 67108864",
		         s->opts.synchronous == STORE_SYNC_FULL ? "FULL" : "NORMAL",
		         -max64(s->opts.cache_kib, 64));
		r = db_exec(s->db, sql);
		if (r < 0)
			goto fail_sqlite;
	}

	r = db_migrate(s, ret_error);
	if (r < 0)
		return r;

	what = "cannot prepare statements";
	r = db_prepare_all(s);
	if (r < 0)
		goto fail_sqlite;
	r = query_int64(s->db, "PRAGMA page_size", &s->page_size);
	if (r < 0)
		goto fail_sqlite;
	r = query_int64(s->db, "PRAGMA auto_vacuum", &v);
	if (r < 0)
		goto fail_sqlite;
	s->incremental_vacuum = v == 2;
	r = query_int64(s->db, "PRAGMA page_count", &v);
	if (r < 0)
		goto fail_sqlite;
	s->stats.db_bytes = (uint64_t)(v * s->page_size);
	if (!reopen) {
		/* A reopen keeps what the first open found: the loop already holds it. */
		what = "cannot read points";
		r = db_cache_points(s);
		if (r < 0)
			goto fail_sqlite;
		what = "cannot read the outbox";
		r = db_outbox_open(s);
		if (r < 0)
			goto fail_sqlite;
	}

	sqlite3_busy_timeout(s->db, COMMIT_BUSY_TIMEOUT_MS);
	return 0;

fail_sqlite:
	snprintf(detail, sizeof(detail), "%s",
	         s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(SQLITE_NOMEM));
fail_detail:
	*ret_error = open_message(s->path, what, r, detail);
	return r;
}

/* Moves PATH (and its -wal and -shm) to PATH.corrupt-<unix seconds>. */
static int quarantine(store *s) {
	static const char *const suffixes[] = { "", "-wal", "-shm" };
	long long t = (long long)(now_us() / 1000000);
	int r = 0;

	s->quarantined_to = strdup_printf("%s.corrupt-%lld", s->path, t);
	if (!s->quarantined_to)
		return -ENOMEM;
	for (size_t i = 0; i < ELEMENTSOF(suffixes); i++) {
		char *from = strdup_printf("%s%s", s->path, suffixes[i]);
		char *to = strdup_printf("%s%s", s->quarantined_to, suffixes[i]);

		if (!from || !to)
			r = -ENOMEM;
		else if (rename(from, to) < 0 && errno != ENOENT)
			r = -errno;
		free(from);
		free(to);
		if (r < 0)
			return r;
	}
	return 0;
}

static int start_thread(store *s) {
	sigset_t all, old;
	int r;

	/*
	 * The storage thread takes no process signals: they belong to the loop
	 * (libuv's handlers). Synchronous faults are delivered regardless.
	 */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = -pthread_create(&s->thread, NULL, store_thread, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0)
		return r;
	s->thread_started = true;
	return 0;
}

int store_open(const struct store_opts *opts, store **ret, char **ret_error) {
	pthread_condattr_t cattr;
	char *err = NULL;
	store *s;
	int r;

	if (ret_error)
		*ret_error = NULL;
	if (!opts || !opts->path || !*opts->path || opts->commit_interval_us <= 0 ||
	    opts->commit_rows == 0 || opts->queue_limit == 0) {
		if (ret_error)
			*ret_error = strdup_printf("%s: invalid storage options",
			                           opts && opts->path ? opts->path : "(no path)");
		return -EINVAL;
	}

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->opts = *opts;
	s->path = strdup(opts->path);
	if (!s->path) {
		r = -ENOMEM;
		goto fail;
	}
	s->opts.path = s->path;
	s->pending = &s->batches[0];
	s->inflight = &s->batches[1];

	r = -pthread_mutex_init(&s->lock, NULL);
	if (r < 0)
		goto fail;
	s->lock_init = true;
	/* The thread sleeps on monotonic deadlines: a clock step must not stall it. */
	r = -pthread_condattr_init(&cattr);
	if (r < 0)
		goto fail;
	r = -pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
	if (r == 0)
		r = -pthread_cond_init(&s->cond, &cattr);
	pthread_condattr_destroy(&cattr);
	if (r < 0)
		goto fail;
	s->cond_init = true;

	r = db_open(s, false, &err);
	if (r == M2M_ECORRUPT) {
		db_close(s);
		if (s->opts.on_corrupt != STORE_CORRUPT_QUARANTINE) {
			char *msg = strdup_printf("%s; on_corrupt = \"fail\", not starting",
			                          err ? err : s->path);
			free(err);
			err = msg;
			goto fail;
		}
		r = quarantine(s);
		if (r < 0) {
			char *msg = strdup_printf("%s; cannot move it aside: %s",
			                          err ? err : s->path, m2m_strerror(r));
			free(err);
			err = msg;
			goto fail;
		}
		log_error("%s; moved it to %s and starting with an empty database",
		          err ? err : s->path, s->quarantined_to);
		free(err);
		err = NULL;
		s->unclean = false;
		r = db_open(s, false, &err);
	}
	if (r < 0)
		goto fail;

	/* What a reopen after a file system failure compares with, from the first commit on. */
	s->rec.last_rowid = readings_max_rowid(s);
	if (s->rec.last_rowid < 0)
		s->rec.last_rowid = 0;
	r = start_thread(s);
	if (r < 0) {
		err = strdup_printf("%s: cannot start storage thread: %s", s->path, m2m_strerror(r));
		goto fail;
	}
	*ret = s;
	return 0;

fail:
	if (ret_error)
		*ret_error = err;
	else
		free(err);
	store_free(s);
	return r;
}

void store_stop(store *s, int64_t timeout_us) {
	if (!s || !s->thread_started)
		return;
	pthread_mutex_lock(&s->lock);
	s->stop = true;
	s->stop_deadline_us = mono_us() + max64(timeout_us, 0);
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->thread, NULL);
	s->thread_started = false;
}

void store_close(store *s, int64_t timeout_us) {
	if (!s)
		return;
	store_stop(s, timeout_us);
	store_free(s);
}
