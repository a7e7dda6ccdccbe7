/* SPDX-License-Identifier: MIT */
/*
 * Tests of the storage subsystem against real SQLite files in
 * $M2M_TEST_TMPDIR. A second, plain sqlite3 connection checks what the
 * store wrote and plays "another process" (locks, edits to meta).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "store.h"
#include "test.h"
#include "util.h"

#define SEC 1000000LL

/* RUN_TEST for tests that take the context. */
#define RUN(fn)                                      \
	do {                                         \
		fprintf(stderr, "-- %s\n", #fn);     \
		fn(&c);                              \
	} while (0)

struct ctx {
	char dir[512];
};

/* Builds DIR/NAME in BUF and removes any leftover database files there. */
static const char *db_path(const struct ctx *c, const char *name, char *buf, size_t n) {
	char side[600];

	snprintf(buf, n, "%s/%s", c->dir, name);
	unlink(buf);
	snprintf(side, sizeof(side), "%s-wal", buf);
	unlink(side);
	snprintf(side, sizeof(side), "%s-shm", buf);
	unlink(side);
	return buf;
}

static void opts_for(struct store_opts *o, const char *path) {
	store_opts_default(o);
	o->path = path;
}

static store *open_ok(const struct store_opts *o) {
	char *err = NULL;
	store *s = NULL;
	int r = store_open(o, &s, &err);

	if (r < 0)
		TEST_FAIL("store_open(%s): %s: %s", o->path, m2m_strerror(r), err ? err : "?");
	ASSERT(s);
	ASSERT(!err);
	return s;
}

static sqlite3 *sql_open(const char *path) {
	sqlite3 *db = NULL;

	ASSERT_EQ(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	return db;
}

static void sql_exec(sqlite3 *db, const char *sql) {
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		TEST_FAIL("%s: %s", sql, msg ? msg : "?");
}

static int64_t sql_int(sqlite3 *db, const char *sql) {
	sqlite3_stmt *st = NULL;
	int64_t v;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		TEST_FAIL("%s: %s", sql, sqlite3_errmsg(db));
	ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* One query on a fresh connection, for checks after store_close. */
static int64_t file_int(const char *path, const char *sql) {
	sqlite3 *db = sql_open(path);
	int64_t v = sql_int(db, sql);

	sqlite3_close(db);
	return v;
}

static void sleep_us(int64_t us) {
	struct timespec ts = { .tv_sec = us / SEC, .tv_nsec = (us % SEC) * 1000 };

	nanosleep(&ts, NULL);
}

enum stat_field { ROWS_WRITTEN, ERRORS, RETENTION_DELETED, EVENTS_WRITTEN };

static uint64_t stat_of(store *s, enum stat_field f) {
	struct store_stats st;

	store_get_stats(s, &st);
	switch (f) {
	case ROWS_WRITTEN:
		return st.rows_written;
	case ERRORS:
		return st.errors;
	case RETENTION_DELETED:
		return st.retention_deleted;
	case EVENTS_WRITTEN:
		return st.events_written;
	}
	return 0;
}

/* Polls a counter until it reaches WANT; fails the test after TIMEOUT. */
static int64_t wait_stat(store *s, enum stat_field f, uint64_t want, int64_t timeout_us) {
	int64_t start = mono_us();

	while (stat_of(s, f) < want) {
		if (mono_us() - start > timeout_us)
			TEST_FAIL("stat %d stuck at %" PRIu64 ", wanted %" PRIu64, (int)f, stat_of(s, f),
			          want);
		sleep_us(2000);
	}
	return mono_us() - start;
}

static void fill(struct m2m_reading *r, size_t n, uint32_t first, int64_t ts) {
	for (size_t i = 0; i < n; i++)
		r[i] = (struct m2m_reading){
			.ts_us = ts + (int64_t)i,
			.value = (double)(first + i) * 0.5,
			.point = (uint32_t)((first + i) % 10 + 1),
			.quality = (uint16_t)((first + i) % 3),
		};
}

/* Creates a database with a few rows through the store and closes it. */
static void make_db(const char *path) {
	struct m2m_reading r[100];
	struct store_opts o;
	store *s;

	opts_for(&o, path);
	s = open_ok(&o);
	fill(r, ELEMENTSOF(r), 0, now_us());
	ASSERT_EQ(store_put_readings(s, r, ELEMENTSOF(r)), ELEMENTSOF(r));
	store_close(s, SEC);
}

static void test_roundtrip(const struct ctx *c) {
	struct m2m_reading r[1000];
	struct store_opts o;
	struct store_open_info info;
	struct store_stats st;
	char path[600];
	sqlite3 *db;
	double sum = 0;
	store *s;

	opts_for(&o, db_path(c, "roundtrip.db", path, sizeof(path)));
	s = open_ok(&o);
	store_get_open_info(s, &info);
	ASSERT(info.created);
	ASSERT(!info.unclean);
	ASSERT(!info.quarantined_to);

	fill(r, ELEMENTSOF(r), 0, 1700000000000000LL);
	r[10].value = NAN; /* stored as NULL, must not upset anything */
	for (size_t i = 0; i < ELEMENTSOF(r); i++)
		if (i != 10)
			sum += r[i].value;
	ASSERT_EQ(store_put_readings(s, r, 600), 600);
	ASSERT_EQ(store_put_readings(s, r + 600, 400), 400);
	store_kick(s);
	wait_stat(s, ROWS_WRITTEN, 1000, 5 * SEC);

	/* WAL lets a reader see committed rows while the store is open. */
	db = sql_open(path);
	ASSERT_EQ(sql_int(db, "SELECT count(*) FROM readings"), 1000);
	ASSERT_EQ(sql_int(db, "SELECT count(*) FROM readings WHERE value IS NULL"), 1);
	ASSERT_EQ(sql_int(db, "SELECT value IS NULL FROM readings WHERE ts = 1700000000000010"), 1);
	ASSERT_EQ(sql_int(db, "SELECT quality FROM readings WHERE ts = 1700000000000005"), 2);
	ASSERT_EQ(sql_int(db, "SELECT point FROM readings WHERE ts = 1700000000000005"), 6);
	{
		sqlite3_stmt *q;
		ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT sum(value) FROM readings", -1, &q, NULL),
		          SQLITE_OK);
		ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
		ASSERT_DOUBLE_EQ(sqlite3_column_double(q, 0), sum, 1e-6);
		sqlite3_finalize(q);
	}
	ASSERT_EQ(sql_int(db, "SELECT value FROM meta WHERE key = 'clean_shutdown'"), 0);
	ASSERT_EQ(sql_int(db, "SELECT value FROM meta WHERE key = 'schema_version'"), 2);
	ASSERT_EQ(sql_int(db, "PRAGMA auto_vacuum"), 2);
	{
		sqlite3_stmt *q;
		ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
		ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
		ASSERT_STR_EQ((const char *)sqlite3_column_text(q, 0), "wal");
		sqlite3_finalize(q);
	}
	sqlite3_close(db);

	store_get_stats(s, &st);
	ASSERT_EQ(st.rows_written, 1000);
	ASSERT_EQ(st.rows_dropped, 0);
	ASSERT_EQ(st.queued, 0);
	ASSERT_EQ(st.errors, 0);
	ASSERT_GE(st.commits, 1);
	ASSERT_GT(st.db_bytes, 0);
	ASSERT(!st.failing);
	store_close(s, SEC);

	ASSERT_EQ(file_int(path, "SELECT value FROM meta WHERE key = 'clean_shutdown'"), 1);
	store_close(NULL, 0);
}

static void test_commit_without_kick(const struct ctx *c) {
	struct m2m_reading r[100];
	struct store_opts o;
	char path[600];
	int64_t took;
	store *s;

	/* By time: a handful of rows, no kick, default 100 ms interval. */
	opts_for(&o, db_path(c, "interval.db", path, sizeof(path)));
	s = open_ok(&o);
	fill(r, 5, 0, now_us());
	ASSERT_EQ(store_put_readings(s, r, 5), 5);
	took = wait_stat(s, ROWS_WRITTEN, 5, 5 * SEC);
	fprintf(stderr, "   5 rows committed after %" PRId64 " ms (interval 100 ms)\n", took / 1000);
	ASSERT_LT(took, 2 * SEC);
	store_close(s, SEC);

	/* By count: a long interval, commit_rows reached. */
	opts_for(&o, db_path(c, "commit-rows.db", path, sizeof(path)));
	o.commit_interval_us = 60 * SEC;
	o.commit_rows = 100;
	s = open_ok(&o);
	fill(r, 100, 0, now_us());
	ASSERT_EQ(store_put_readings(s, r, 100), 100);
	took = wait_stat(s, ROWS_WRITTEN, 100, 5 * SEC);
	ASSERT_LT(took, 2 * SEC);
	store_close(s, SEC);
}

static void test_queue_limit(const struct ctx *c) {
	struct m2m_reading r[100];
	struct store_opts o;
	struct store_stats st;
	struct store_event ev = { .ts_us = 1, .kind = "storage", .value = NAN };
	char path[600];
	size_t accepted = 0;
	sqlite3 *other;
	store *s;

	opts_for(&o, db_path(c, "queue.db", path, sizeof(path)));
	o.queue_limit = 1000;
	o.commit_interval_us = 20 * 1000;
	s = open_ok(&o);

	/* Another connection holds the write lock: every commit fails BUSY. */
	other = sql_open(path);
	sql_exec(other, "BEGIN EXCLUSIVE");

	for (int i = 0; i < 15; i++) {
		fill(r, ELEMENTSOF(r), (uint32_t)(i * 100), 1000000 + i * 100);
		accepted += store_put_readings(s, r, ELEMENTSOF(r));
		sleep_us(10 * 1000);
	}
	ASSERT_EQ(accepted, 1000);
	ASSERT_EQ(store_put_text(s, 1, 5, "over the limit", 0), 0);
	/* Events have their own bound of 10000 queued. */
	for (int i = 0; i < 10005; i++) {
		int er = store_put_event(s, &ev);
		ASSERT(i < 10000 ? er == 0 : er == -ENOBUFS);
	}
	wait_stat(s, ERRORS, 1, 5 * SEC);

	store_get_stats(s, &st);
	ASSERT_EQ(st.rows_dropped, 501);
	ASSERT_EQ(st.queued, 1000);
	ASSERT_EQ(st.rows_written, 0);
	ASSERT(st.failing);
	ASSERT_EQ(st.last_error, -EBUSY);
	ASSERT_EQ(st.events_dropped, 5);
	ASSERT_STR_CONTAINS(st.last_error_text, "locked");

	sql_exec(other, "COMMIT");
	sqlite3_close(other);
	store_kick(s);
	wait_stat(s, ROWS_WRITTEN, 1000, 10 * SEC);
	wait_stat(s, EVENTS_WRITTEN, 10000, 5 * SEC);
	store_get_stats(s, &st);
	ASSERT_EQ(st.rows_written, 1000);
	ASSERT_EQ(st.rows_dropped, 501);
	ASSERT_EQ(st.queued, 0);
	ASSERT(!st.failing);
	store_close(s, SEC);

	/* Exactly the accepted rows, the first 1000 in order. */
	ASSERT_EQ(file_int(path, "SELECT count(*) FROM readings"), 1000);
	ASSERT_EQ(file_int(path, "SELECT max(ts) FROM readings"), 1000000 + 999);
}

static void test_close_while_failing(const struct ctx *c) {
	struct m2m_reading r[50];
	struct store_opts o;
	char path[600];
	sqlite3 *other;
	int64_t start;
	store *s;

	opts_for(&o, db_path(c, "close-failing.db", path, sizeof(path)));
	s = open_ok(&o);
	other = sql_open(path);
	sql_exec(other, "BEGIN EXCLUSIVE");
	fill(r, ELEMENTSOF(r), 0, 1);
	ASSERT_EQ(store_put_readings(s, r, ELEMENTSOF(r)), ELEMENTSOF(r));
	start = mono_us();
	/* Must give up after the timeout, logging the 50 dropped rows. */
	store_close(s, 300 * 1000);
	ASSERT_LT(mono_us() - start, 3 * SEC);
	sql_exec(other, "COMMIT");
	ASSERT_EQ(sql_int(other, "SELECT count(*) FROM readings"), 0);
	ASSERT_EQ(sql_int(other, "SELECT value FROM meta WHERE key = 'clean_shutdown'"), 0);
	sqlite3_close(other);
}

/* Runs in a child: a file size limit makes every write fail, then lifts. */
static void disk_full_child(const char *path) {
	struct m2m_reading r[100];
	struct store_opts o;
	struct store_stats st;
	struct rlimit orig, lim;
	store *s;

	opts_for(&o, path);
	s = open_ok(&o);
	fill(r, ELEMENTSOF(r), 0, 1000);
	ASSERT_EQ(store_put_readings(s, r, ELEMENTSOF(r)), ELEMENTSOF(r));
	store_kick(s);
	wait_stat(s, ROWS_WRITTEN, 100, 5 * SEC);

	ASSERT_OK(getrlimit(RLIMIT_FSIZE, &orig));
	lim = orig;
	lim.rlim_cur = 1024; /* every WAL frame lies beyond */
	ASSERT_OK(setrlimit(RLIMIT_FSIZE, &lim));

	fill(r, ELEMENTSOF(r), 100, 2000);
	ASSERT_EQ(store_put_readings(s, r, ELEMENTSOF(r)), ELEMENTSOF(r));
	store_kick(s);
	wait_stat(s, ERRORS, 2, 10 * SEC);
	store_get_stats(s, &st);
	ASSERT(st.failing);
	ASSERT_NE(st.last_error, 0);
	fprintf(stderr, "   while full: %s (%s)\n", m2m_strerror(st.last_error),
	        st.last_error_text);
	ASSERT_EQ(st.rows_written, 100);

	/* The thread is alive: it keeps queueing and retrying. */
	fill(r, ELEMENTSOF(r), 200, 3000);
	ASSERT_EQ(store_put_readings(s, r, ELEMENTSOF(r)), ELEMENTSOF(r));
	wait_stat(s, ERRORS, st.errors + 1, 10 * SEC);
	store_get_stats(s, &st);
	ASSERT_EQ(st.queued, 200);

	ASSERT_OK(setrlimit(RLIMIT_FSIZE, &orig));
	store_kick(s);
	wait_stat(s, ROWS_WRITTEN, 300, 10 * SEC);
	store_get_stats(s, &st);
	ASSERT(!st.failing);
	ASSERT_EQ(st.queued, 0);
	store_close(s, SEC);
}

static void test_disk_full(const struct ctx *c) {
	char path[600];
	int status;
	pid_t pid;

	db_path(c, "full.db", path, sizeof(path));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		disk_full_child(path);
		_exit(0);
	}
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT(WIFEXITED(status));
	ASSERT_EQ(WEXITSTATUS(status), 0);
	ASSERT_EQ(file_int(path, "SELECT count(*) FROM readings"), 300);
	ASSERT_EQ(file_int(path, "SELECT count(DISTINCT ts) FROM readings"), 300);
}

/*
 * Space that comes back is found by the probe within about one commit
 * interval, not at the end of a backoff that has grown to seconds.
 */
static void space_returns_child(const char *path) {
	struct m2m_reading r[100];
	struct store_opts o;
	struct rlimit orig, lim;
	int64_t took;
	store *s;

	opts_for(&o, path);
	s = open_ok(&o);
	fill(r, ELEMENTSOF(r), 0, 1000);
	ASSERT_EQ(store_put_readings(s, r, ELEMENTSOF(r)), ELEMENTSOF(r));
	wait_stat(s, ROWS_WRITTEN, 100, 5 * SEC);

	ASSERT_OK(getrlimit(RLIMIT_FSIZE, &orig));
	lim = orig;
	lim.rlim_cur = 1024;
	ASSERT_OK(setrlimit(RLIMIT_FSIZE, &lim));
	fill(r, ELEMENTSOF(r), 100, 2000);
	ASSERT_EQ(store_put_readings(s, r, ELEMENTSOF(r)), ELEMENTSOF(r));
	/* Six failures: the backoff is 3.2 s now and the next retry 5 s away. */
	wait_stat(s, ERRORS, 6, 30 * SEC);
	ASSERT_OK(setrlimit(RLIMIT_FSIZE, &orig));
	took = wait_stat(s, ROWS_WRITTEN, 200, 30 * SEC);
	fprintf(stderr, "   space back: written %" PRId64 " ms later (commit interval 100 ms,"
	        " backoff 3.2 s)\n", took / 1000);
	ASSERT_LT(took, 2 * SEC);
	store_close(s, SEC);
}

static void test_space_returns(const struct ctx *c) {
	char path[600];
	int status;
	pid_t pid;

	db_path(c, "space.db", path, sizeof(path));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		space_returns_child(path);
		_exit(0);
	}
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT(WIFEXITED(status));
	ASSERT_EQ(WEXITSTATUS(status), 0);
	ASSERT_EQ(file_int(path, "SELECT count(*) FROM readings"), 200);
}

struct points_seen {
	uint32_t id[16];
	char name[16][64];
	size_t n;
};

static void collect_point(void *arg, uint32_t id, const char *name) {
	struct points_seen *p = arg;

	ASSERT_LT(p->n, 16);
	p->id[p->n] = id;
	snprintf(p->name[p->n], sizeof(p->name[0]), "%s", name);
	p->n++;
}

static void test_points_reopen(const struct ctx *c) {
	struct points_seen seen = { .n = 0 };
	struct store_opts o;
	struct store_open_info info;
	char path[600];
	store *s;

	opts_for(&o, db_path(c, "points.db", path, sizeof(path)));
	s = open_ok(&o);
	ASSERT_EQ(store_load_points(s, collect_point, &seen), 0);
	ASSERT_OK(store_put_point(s, 1, "boiler1/temperature", "°C", "number"));
	ASSERT_OK(store_put_point(s, 2, "boiler1/pressure", "bar", "number"));
	ASSERT_OK(store_put_point(s, 7, "pump/on", NULL, "bool"));
	ASSERT_EQ(store_put_point(s, 8, NULL, NULL, NULL), -EINVAL);
	store_close(s, SEC);

	s = open_ok(&o);
	store_get_open_info(s, &info);
	ASSERT(!info.created);
	ASSERT(!info.unclean);
	ASSERT_EQ(store_load_points(s, collect_point, &seen), 3);
	ASSERT_EQ(seen.n, 3);
	ASSERT_EQ(seen.id[0], 1);
	ASSERT_STR_EQ(seen.name[0], "boiler1/temperature");
	ASSERT_EQ(seen.id[1], 2);
	ASSERT_STR_EQ(seen.name[1], "boiler1/pressure");
	ASSERT_EQ(seen.id[2], 7);
	ASSERT_STR_EQ(seen.name[2], "pump/on");

	/* Update in place, move a name to a new id, and take over an id. */
	ASSERT_OK(store_put_point(s, 1, "boiler1/temperature", "K", "number"));
	ASSERT_OK(store_put_point(s, 9, "pump/on", NULL, "bool"));
	ASSERT_OK(store_put_point(s, 2, "boiler2/pressure", "bar", "number"));
	store_close(s, SEC);

	ASSERT_EQ(file_int(path, "SELECT count(*) FROM points"), 3);
	ASSERT_EQ(file_int(path, "SELECT unit = 'K' FROM points WHERE id = 1"), 1);
	ASSERT_EQ(file_int(path, "SELECT id FROM points WHERE name = 'pump/on'"), 9);
	ASSERT_EQ(file_int(path, "SELECT name = 'boiler2/pressure' FROM points WHERE id = 2"), 1);
	ASSERT_EQ(file_int(path, "SELECT unit IS NULL FROM points WHERE id = 9"), 1);
	ASSERT_EQ(file_int(path, "SELECT count(*) FROM points WHERE created_us > 0"), 3);
}

static void test_unclean_shutdown(const struct ctx *c) {
	struct store_opts o;
	struct store_open_info info;
	char path[600], byte;
	int status, ready[2];
	pid_t pid;
	store *s;

	opts_for(&o, db_path(c, "unclean.db", path, sizeof(path)));
	ASSERT_OK(pipe2(ready, O_CLOEXEC));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		struct m2m_reading r[500];
		store *cs = open_ok(&o);

		fill(r, ELEMENTSOF(r), 0, 5000);
		ASSERT_EQ(store_put_readings(cs, r, ELEMENTSOF(r)), ELEMENTSOF(r));
		ASSERT_OK(store_put_point(cs, 3, "a/b", NULL, NULL));
		store_kick(cs);
		wait_stat(cs, ROWS_WRITTEN, 500, 5 * SEC);
		ASSERT_EQ(write(ready[1], "x", 1), 1);
		for (;;)
			pause();
	}
	close(ready[1]);
	/*
	 * The child dies with the database open, by kill -9 from outside (as
	 * a crash would; and nothing of it runs afterwards, not even
	 * valgrind's leak check, which would count the open store).
	 */
	ASSERT_EQ(read(ready[0], &byte, 1), 1);
	close(ready[0]);
	ASSERT_OK(kill(pid, SIGKILL));
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT(WIFSIGNALED(status));
	ASSERT_EQ(WTERMSIG(status), SIGKILL);
	ASSERT_EQ(file_int(path, "SELECT value FROM meta WHERE key = 'clean_shutdown'"), 0);

	s = open_ok(&o);
	store_get_open_info(s, &info);
	ASSERT(info.unclean);
	ASSERT(!info.created);
	ASSERT(!info.quarantined_to);
	store_close(s, SEC);
	ASSERT_EQ(file_int(path, "SELECT count(*) FROM readings"), 500);
	ASSERT_EQ(file_int(path, "SELECT count(*) FROM points"), 1);

	s = open_ok(&o);
	store_get_open_info(s, &info);
	ASSERT(!info.unclean);
	store_close(s, SEC);
}

static void overwrite(const char *path, off_t off, size_t len, unsigned char seed) {
	unsigned char buf[4096];
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	ASSERT_GE(fd, 0);
	ASSERT_LE(len, sizeof(buf));
	for (size_t i = 0; i < len; i++)
		buf[i] = (unsigned char)(seed + i * 131 + (i >> 3));
	ASSERT_EQ(pwrite(fd, buf, len, off), (ssize_t)len);
	close(fd);
}

static bool file_exists(const char *path) {
	struct stat stbuf;

	return stat(path, &stbuf) == 0;
}

static void test_corrupt(const struct ctx *c) {
	struct store_opts o;
	struct store_open_info info;
	char path[600], *err = NULL;
	store *s = NULL;
	int r;

	/* Garbage over the header: refused with on_corrupt = fail. */
	opts_for(&o, db_path(c, "corrupt.db", path, sizeof(path)));
	make_db(path);
	overwrite(path, 0, 100, 0x5a);
	o.on_corrupt = STORE_CORRUPT_FAIL;
	r = store_open(&o, &s, &err);
	ASSERT_EQ(r, M2M_ECORRUPT);
	ASSERT(!s);
	fprintf(stderr, "   %s\n", err);
	ASSERT_STR_CONTAINS(err, path);
	ASSERT_STR_CONTAINS(err, "corrupt");
	free(err);
	ASSERT(file_exists(path));

	/* ... and moved aside with quarantine, with a fresh database. */
	o.on_corrupt = STORE_CORRUPT_QUARANTINE;
	s = open_ok(&o);
	store_get_open_info(s, &info);
	ASSERT(info.created);
	ASSERT(info.quarantined_to);
	ASSERT_STR_CONTAINS(info.quarantined_to, ".corrupt-");
	ASSERT(file_exists(info.quarantined_to));
	{
		char q[700];
		snprintf(q, sizeof(q), "%s", info.quarantined_to);
		store_close(s, SEC);
		unlink(q);
	}
	ASSERT_EQ(file_int(path, "SELECT count(*) FROM readings"), 0);

	/* A file that never was a database counts as corrupt too. */
	db_path(c, "random.db", path, sizeof(path));
	{
		int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		ASSERT_GE(fd, 0);
		close(fd);
	}
	for (int i = 0; i < 4; i++)
		overwrite(path, i * 4096, 4096, (unsigned char)(i * 7 + 1));
	o.path = path;
	s = open_ok(&o);
	store_get_open_info(s, &info);
	ASSERT(info.quarantined_to);
	{
		char q[700];
		snprintf(q, sizeof(q), "%s", info.quarantined_to);
		store_close(s, SEC);
		ASSERT(file_exists(q));
		unlink(q);
	}

	/*
	 * Damage deep inside, found only by quick_check after an unclean
	 * shutdown: the header is fine, a b-tree page is not.
	 */
	db_path(c, "deep.db", path, sizeof(path));
	o.path = path;
	s = open_ok(&o);
	for (int i = 0; i < 50; i++) {
		struct m2m_reading rr[400];
		fill(rr, ELEMENTSOF(rr), (uint32_t)(i * 400), i * 400);
		ASSERT_EQ(store_put_readings(s, rr, ELEMENTSOF(rr)), ELEMENTSOF(rr));
	}
	store_close(s, SEC);
	{
		sqlite3 *db = sql_open(path);
		sql_exec(db, "UPDATE meta SET value = 0 WHERE key = 'clean_shutdown'");
		sql_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
		ASSERT_GT(sql_int(db, "PRAGMA page_count"), 20);
		sqlite3_close(db);
	}
	overwrite(path, 10 * 4096, 4096, 0x33);
	o.on_corrupt = STORE_CORRUPT_FAIL;
	err = NULL;
	s = NULL;
	r = store_open(&o, &s, &err);
	ASSERT_EQ(r, M2M_ECORRUPT);
	fprintf(stderr, "   %s\n", err);
	ASSERT_STR_CONTAINS(err, "corrupt");
	free(err);
}

static void test_locked(const struct ctx *c) {
	struct store_opts o;
	char path[600], *err = NULL;
	sqlite3 *other;
	store *s = NULL;
	int r;

	opts_for(&o, db_path(c, "locked.db", path, sizeof(path)));
	make_db(path);
	other = sql_open(path);
	sql_exec(other, "BEGIN EXCLUSIVE");
	r = store_open(&o, &s, &err);
	ASSERT_EQ(r, -EBUSY);
	ASSERT(!s);
	fprintf(stderr, "   %s\n", err);
	ASSERT_STR_CONTAINS(err, path);
	ASSERT_STR_CONTAINS(err, "database is locked by another process");
	free(err);
	sql_exec(other, "ROLLBACK");
	sqlite3_close(other);

	s = open_ok(&o);
	store_close(s, SEC);
}

static void test_missing_dir(const struct ctx *c) {
	struct store_opts o;
	char path[600], *err = NULL;
	store *s = NULL;
	int r;

	snprintf(path, sizeof(path), "%s/no-such-dir/m2md.db", c->dir);
	opts_for(&o, path);
	r = store_open(&o, &s, &err);
	ASSERT_LT(r, 0);
	ASSERT(!s);
	fprintf(stderr, "   %s\n", err);
	ASSERT_STR_CONTAINS(err, path);
	ASSERT_STR_CONTAINS(err, "cannot open database");
	ASSERT_STR_CONTAINS(err, "directory missing or not writable");
	free(err);
}

static void test_newer_schema(const struct ctx *c) {
	struct store_opts o;
	char path[600], *err = NULL;
	sqlite3 *db;
	store *s = NULL;
	int r;

	opts_for(&o, db_path(c, "newer.db", path, sizeof(path)));
	make_db(path);
	db = sql_open(path);
	sql_exec(db, "UPDATE meta SET value = 99 WHERE key = 'schema_version'");
	sqlite3_close(db);
	r = store_open(&o, &s, &err);
	ASSERT_EQ(r, -EPROTO);
	ASSERT(!s);
	fprintf(stderr, "   %s\n", err);
	ASSERT_STR_CONTAINS(err, "created by a newer m2md");
	free(err);
	/* Refused without touching it. */
	ASSERT_EQ(file_int(path, "SELECT value FROM meta WHERE key = 'schema_version'"), 99);
}

/* A version 1 database (before events_rule_last) is migrated in place at open. */
static void test_migrate_v1(const struct ctx *c) {
	struct store_opts o;
	char path[600];
	sqlite3 *db;

	opts_for(&o, db_path(c, "v1.db", path, sizeof(path)));
	make_db(path);
	db = sql_open(path);
	sql_exec(db, "DROP INDEX events_rule_last");
	sql_exec(db, "UPDATE meta SET value = 1 WHERE key = 'schema_version'");
	sqlite3_close(db);
	store_close(open_ok(&o), SEC);
	ASSERT_EQ(file_int(path, "SELECT value FROM meta WHERE key = 'schema_version'"), 2);
	ASSERT_EQ(file_int(path, "SELECT count(*) FROM sqlite_master WHERE name = 'events_rule_last'"),
	          1);
}

static void test_retention_age(const struct ctx *c) {
	struct m2m_reading r[1000];
	struct store_opts o;
	char path[600], sql[128];
	int64_t now = now_us();
	store *s;

	opts_for(&o, db_path(c, "age.db", path, sizeof(path)));
	o.retention_age_us = 3600 * SEC;
	s = open_ok(&o);
	/* 5000 old rows (more than one step) first, as acquisition order would have it. */
	for (int i = 0; i < 5; i++) {
		fill(r, ELEMENTSOF(r), 0, now - 7200 * SEC + i * 1000);
		ASSERT_EQ(store_put_readings(s, r, ELEMENTSOF(r)), ELEMENTSOF(r));
	}
	fill(r, ELEMENTSOF(r), 0, now);
	ASSERT_EQ(store_put_readings(s, r, ELEMENTSOF(r)), ELEMENTSOF(r));
	/*
	 * Old events go, except the newest transition of each rule and point:
	 * r1 on point 1 is still in the state it entered 7100 s ago.
	 */
	for (size_t i = 0; i < 5; i++) {
		static const struct { int64_t age_s; const char *kind, *source; uint32_t point; } ev[] = {
			{ 7200, "rule", "r1", 1 }, { 7100, "rule", "r1", 1 }, { 7200, "rule", "r2", 2 },
			{ 0, "rule", "r2", 2 },    { 7200, "driver", "sim", 0 },
		};
		ASSERT_OK(store_put_event(s, &(struct store_event){
		                                 .ts_us = now - ev[i].age_s * SEC, .kind = ev[i].kind,
		                                 .source = ev[i].source, .point = ev[i].point,
		                                 .value = NAN }));
	}
	store_kick(s);
	wait_stat(s, ROWS_WRITTEN, 6000, 5 * SEC);
	wait_stat(s, RETENTION_DELETED, 5003, 10 * SEC);
	store_close(s, SEC);

	ASSERT_EQ(file_int(path, "SELECT count(*) FROM readings"), 1000);
	snprintf(sql, sizeof(sql), "SELECT min(ts) >= %" PRId64 " FROM readings", now);
	ASSERT_EQ(file_int(path, sql), 1);
	ASSERT_EQ(file_int(path, "SELECT count(*) FROM events"), 2);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM events WHERE source = 'r1' AND ts = %" PRId64,
	         now - 7100 * (int64_t)SEC);
	ASSERT_EQ(file_int(path, sql), 1);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM events WHERE source = 'r2' AND ts = %" PRId64,
	         now);
	ASSERT_EQ(file_int(path, sql), 1);
}

static void test_retention_size(const struct ctx *c) {
	const uint64_t bound = 256 * 1024;
	struct m2m_reading r[1000];
	struct store_opts o;
	struct store_stats st;
	struct stat stbuf;
	char path[600];
	int64_t start;
	store *s;

	opts_for(&o, db_path(c, "size.db", path, sizeof(path)));
	o.retention_size = bound;
	s = open_ok(&o);
	for (int i = 0; i < 12; i++) {
		fill(r, ELEMENTSOF(r), (uint32_t)(i * 1000), 1000 + i * 1000);
		ASSERT_EQ(store_put_readings(s, r, ELEMENTSOF(r)), ELEMENTSOF(r));
	}
	store_kick(s);
	wait_stat(s, ROWS_WRITTEN, 12000, 10 * SEC);
	start = mono_us();
	for (;;) {
		store_get_stats(s, &st);
		if (st.retention_deleted > 0 && st.db_bytes <= bound)
			break;
		if (mono_us() - start > 30 * SEC)
			TEST_FAIL("db_bytes %" PRIu64 " > %" PRIu64, st.db_bytes, bound);
		sleep_us(10 * 1000);
	}
	fprintf(stderr, "   %" PRIu64 " rows deleted, %" PRIu64 " bytes left, after %" PRId64 " ms\n",
	        st.retention_deleted, st.db_bytes, (mono_us() - start) / 1000);
	store_close(s, SEC);

	ASSERT_LE(file_int(path, "SELECT (SELECT page_count FROM pragma_page_count) *"
	                         " (SELECT page_size FROM pragma_page_size)"), (int64_t)bound);
	ASSERT_EQ(stat(path, &stbuf), 0);
	ASSERT_LE(stbuf.st_size, (off_t)bound);
	/* The newest rows are the ones kept. */
	ASSERT_EQ(file_int(path, "SELECT max(ts) FROM readings"), 1000 + 11 * 1000 + 999);
	ASSERT_EQ(file_int(path, "SELECT count(*) FROM readings"),
	          12000 - (int64_t)st.retention_deleted);
}

static void test_events_and_text(const struct ctx *c) {
	struct store_opts o;
	char path[600];
	sqlite3 *db;
	sqlite3_stmt *q;
	store *s;

	opts_for(&o, db_path(c, "events.db", path, sizeof(path)));
	s = open_ok(&o);
	ASSERT_OK(store_put_event(s, &(struct store_event){
	                                     .ts_us = 100,
	                                     .kind = "rule",
	                                     .source = "overheat",
	                                     .point = 4,
	                                     .value = 93.5,
	                                     .from_state = "pending",
	                                     .to_state = "active",
	                                     .text = "boiler1/temperature 93.5 > 90",
	                             }));
	ASSERT_OK(store_put_event(s, &(struct store_event){ .ts_us = 200, .kind = "driver",
	                                                     .value = NAN }));
	ASSERT_EQ(store_put_event(s, &(struct store_event){ .ts_us = 1 }), -EINVAL);
	ASSERT_EQ(store_put_text(s, 5, 300, "hello", 0), 1);
	ASSERT_EQ(store_put_text(s, 5, 301, "", 3), 1);
	store_close(s, SEC);

	db = sql_open(path);
	ASSERT_EQ(sql_int(db, "SELECT count(*) FROM events"), 2);
	ASSERT_EQ(sqlite3_prepare_v2(db,
	                             "SELECT kind, source, point, value, from_state, to_state, text"
	                             " FROM events ORDER BY id", -1, &q, NULL), SQLITE_OK);
	ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
	ASSERT_STR_EQ((const char *)sqlite3_column_text(q, 0), "rule");
	ASSERT_STR_EQ((const char *)sqlite3_column_text(q, 1), "overheat");
	ASSERT_EQ(sqlite3_column_int(q, 2), 4);
	ASSERT_DOUBLE_EQ(sqlite3_column_double(q, 3), 93.5, 0);
	ASSERT_STR_EQ((const char *)sqlite3_column_text(q, 4), "pending");
	ASSERT_STR_EQ((const char *)sqlite3_column_text(q, 5), "active");
	ASSERT_STR_EQ((const char *)sqlite3_column_text(q, 6), "boiler1/temperature 93.5 > 90");
	ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
	ASSERT_STR_EQ((const char *)sqlite3_column_text(q, 0), "driver");
	for (int i = 1; i < 7; i++)
		ASSERT_EQ(sqlite3_column_type(q, i), SQLITE_NULL);
	sqlite3_finalize(q);

	ASSERT_EQ(sql_int(db, "SELECT count(*) FROM readings WHERE typeof(value) = 'text'"), 2);
	ASSERT_EQ(sql_int(db, "SELECT value = 'hello' FROM readings WHERE ts = 300"), 1);
	ASSERT_EQ(sql_int(db, "SELECT quality FROM readings WHERE ts = 301"), 3);
	sqlite3_close(db);
}

/*
 * Not a pass/fail test: compares the store with a plain prepared-statement
 * loop on the same schema (M2M_STORE_BENCH=1 to run).
 */
static void bench(const struct ctx *c) {
	enum { N = 500000, CHUNK = 1000 };
	struct m2m_reading *r = malloc(sizeof(*r) * CHUNK);
	struct store_opts o;
	struct timespec c0, c1;
	char path[600];
	int64_t t0, t_store, t_plain;
	double cpu;
	sqlite3 *db;
	sqlite3_stmt *ins;
	store *s;

	ASSERT(r);
	opts_for(&o, db_path(c, "bench.db", path, sizeof(path)));
	o.queue_limit = N;
	s = open_ok(&o);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
	t0 = mono_us();
	for (int i = 0; i < N / CHUNK; i++) {
		fill(r, CHUNK, (uint32_t)(i * CHUNK), (int64_t)i * CHUNK);
		ASSERT_EQ(store_put_readings(s, r, CHUNK), CHUNK);
	}
	store_close(s, SEC);
	t_store = mono_us() - t0;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
	cpu = (double)(c1.tv_sec - c0.tv_sec) * 1e6 + (double)(c1.tv_nsec - c0.tv_nsec) / 1e3;

	/* Same schema and pragmas, one prepared INSERT, 5000 rows per transaction. */
	db_path(c, "bench-plain.db", path, sizeof(path));
	ASSERT_EQ(sqlite3_open(path, &db), SQLITE_OK);
	sql_exec(db, "PRAGMA auto_vacuum = INCREMENTAL; PRAGMA journal_mode = WAL;"
	             " PRAGMA synchronous = NORMAL; PRAGMA cache_size = -2048;"
	             "CREATE TABLE readings(point INTEGER NOT NULL, ts INTEGER NOT NULL,"
	             " value REAL, quality INTEGER NOT NULL);"
	             "CREATE INDEX readings_ts ON readings(ts);");
	ASSERT_EQ(sqlite3_prepare_v2(db, "INSERT INTO readings VALUES (?1, ?2, ?3, ?4)", -1, &ins,
	                             NULL), SQLITE_OK);
	t0 = mono_us();
	for (int i = 0; i < N / CHUNK; i++) {
		fill(r, CHUNK, (uint32_t)(i * CHUNK), (int64_t)i * CHUNK);
		if (i % 5 == 0)
			sql_exec(db, "BEGIN");
		for (int j = 0; j < CHUNK; j++) {
			sqlite3_bind_int64(ins, 1, r[j].point);
			sqlite3_bind_int64(ins, 2, r[j].ts_us);
			sqlite3_bind_double(ins, 3, r[j].value);
			sqlite3_bind_int(ins, 4, r[j].quality);
			ASSERT_EQ(sqlite3_step(ins), SQLITE_DONE);
			sqlite3_reset(ins);
		}
		if (i % 5 == 4)
			sql_exec(db, "COMMIT");
	}
	t_plain = mono_us() - t0;
	sqlite3_finalize(ins);
	sqlite3_close(db);
	free(r);
	fprintf(stderr, "   store: %d rows in %" PRId64 " ms (%.2f us CPU/row); plain loop: %" PRId64
	        " ms; store at %.0f%% of plain\n", N, t_store / 1000, cpu / N, t_plain / 1000,
	        100.0 * (double)t_plain / (double)t_store);
}

static void put_msg(store *s, int64_t key) {
	struct store_outbox_msg m = { .key = key, .ts_us = key, .topic = "t", .payload = "{}", .len = 2,
	                              .qos = 1 };

	ASSERT_OK(store_outbox_put(s, &m));
}

static uint64_t wait_puts_committed(store *s, uint64_t want) {
	struct store_outbox_state st;
	int64_t start = mono_us();

	for (;;) {
		store_outbox_poll(s, &st);
		store_outbox_rows_free(st.fetched);
		if (st.puts_committed >= want)
			return st.puts_committed;
		if (mono_us() - start > 5 * SEC)
			TEST_FAIL("puts_committed stuck at %" PRIu64 ", wanted %" PRIu64, st.puts_committed, want);
		sleep_us(2000);
	}
}

/*
 * Staged outbox inserts wait for the readings they were made of and are
 * committed with them; the count of uncommitted inserts is exact whatever
 * the keys are (they jump by a reserved block after a restart).
 */
static void test_outbox_staging(const struct ctx *c) {
	struct m2m_reading r[10];
	struct store_opts o;
	struct store_stats st;
	char path[600];
	store *s;

	opts_for(&o, db_path(c, "staging.db", path, sizeof(path)));
	o.commit_interval_us = 10 * 1000;
	o.queue_limit = 100;
	s = open_ok(&o);
	ASSERT_EQ(store_queue_room(s), 100);
	ASSERT_EQ(store_outbox_puts(s), 0);

	store_stage_begin(s);
	put_msg(s, 5);
	put_msg(s, 2000005);
	ASSERT_EQ(store_outbox_puts(s), 2);
	/* Staged: a kick and several commit intervals do not write them. */
	store_kick(s);
	sleep_us(100 * 1000);
	ASSERT_EQ(file_int(path, "SELECT count(*) FROM outbox"), 0);
	fill(r, ELEMENTSOF(r), 0, 1000);
	ASSERT_EQ(store_put_readings(s, r, ELEMENTSOF(r)), ELEMENTSOF(r));
	wait_stat(s, ROWS_WRITTEN, ELEMENTSOF(r), 5 * SEC);
	ASSERT_EQ(wait_puts_committed(s, 2), 2);
	ASSERT_EQ(file_int(path, "SELECT count(*) FROM outbox"), 2);
	ASSERT_EQ(file_int(path, "SELECT count(*) FROM readings"), ELEMENTSOF(r));

	/* Without readings, store_stage_end() queues what is staged. */
	store_stage_begin(s);
	put_msg(s, 2000006);
	store_stage_end(s);
	ASSERT_EQ(wait_puts_committed(s, 3), 3);

	/* A text row takes the staged messages along too. */
	store_stage_begin(s);
	put_msg(s, 2000007);
	ASSERT_EQ(store_put_text(s, 3, 2000, "on", 0), 1);
	ASSERT_EQ(wait_puts_committed(s, 4), 4);
	ASSERT_EQ(file_int(path, "SELECT count(*) FROM outbox"), 4);

	store_count_dropped(s, 7);
	store_get_stats(s, &st);
	ASSERT_EQ(st.rows_dropped, 7);
	store_close(s, SEC);
}

int main(void) {
	const char *tmp = getenv("M2M_TEST_TMPDIR");
	struct ctx c;

	/* As main() does in the daemon: a file size limit must give EFBIG, not death. */
	signal(SIGXFSZ, SIG_IGN);
	snprintf(c.dir, sizeof(c.dir), "%s/test-store.%d", tmp ? tmp : "/tmp", (int)getpid());
	ASSERT_OK(mkdir(c.dir, 0700));

	RUN(test_roundtrip);
	RUN(test_commit_without_kick);
	RUN(test_queue_limit);
	RUN(test_close_while_failing);
	RUN(test_disk_full);
	RUN(test_space_returns);
	RUN(test_points_reopen);
	RUN(test_unclean_shutdown);
	RUN(test_corrupt);
	RUN(test_locked);
	RUN(test_missing_dir);
	RUN(test_newer_schema);
	RUN(test_migrate_v1);
	RUN(test_retention_age);
	RUN(test_retention_size);
	RUN(test_events_and_text);
	RUN(test_outbox_staging);
	if (getenv("M2M_STORE_BENCH"))
		RUN(bench);

	/* Leave nothing behind on success. */
	{
		char cmd[700];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", c.dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", c.dir);
	}
	fprintf(stderr, "all store tests passed\n");
	return 0;
}
