/* SPDX-License-Identifier: MIT */
/*
 * The baseline for the ingest benchmark: the plainest fast way to put the
 * same rows into the same schema. One prepared INSERT, one transaction per
 * batch, the pragmas m2md's storage uses (WAL, synchronous=NORMAL, the
 * same cache size). The schema is copied from a database m2md created, so
 * both write to exactly the same tables and indexes.
 *
 * Usage: bench-sqlite-baseline SCHEMA_DB OUT_DB ROWS POINTS BATCH
 * Prints: rows=N wall_s=W cpu_s=C rows_per_s=R
 */
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

static double mono(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu(void) {
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void die(sqlite3 *db, const char *what) {
	fprintf(stderr, "%s: %s\n", what, db ? sqlite3_errmsg(db) : "failed");
	exit(1);
}

int main(int argc, char **argv) {
	sqlite3 *src, *db;
	sqlite3_stmt *st, *ins;
	long rows, points, batch;
	double t0, c0, t1, c1;
	int64_t ts;

	if (argc != 6) {
		fprintf(stderr, "usage: %s SCHEMA_DB OUT_DB ROWS POINTS BATCH\n", argv[0]);
		return 2;
	}
	rows = strtol(argv[3], NULL, 10);
	points = strtol(argv[4], NULL, 10);
	batch = strtol(argv[5], NULL, 10);
	if (rows <= 0 || points <= 0 || batch <= 0)
		return 2;

	if (sqlite3_open_v2(argv[1], &src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		die(src, argv[1]);
	if (sqlite3_open(argv[2], &db) != SQLITE_OK)
		die(db, argv[2]);
	if (sqlite3_exec(db, "PRAGMA auto_vacuum = INCREMENTAL; PRAGMA journal_mode = WAL;"
	                     "PRAGMA synchronous = NORMAL; PRAGMA cache_size = -512;"
	                     "PRAGMA temp_store = MEMORY; PRAGMA journal_size_limit = 67108864",
	                 NULL, NULL, NULL) != SQLITE_OK)
		die(db, "pragmas");
	if (sqlite3_prepare_v2(src, "SELECT sql FROM sqlite_master WHERE sql NOT NULL "
	                            "AND name NOT LIKE 'sqlite_%' ORDER BY rowid", -1, &st, NULL) != SQLITE_OK)
		die(src, "schema");
	while (sqlite3_step(st) == SQLITE_ROW)
		if (sqlite3_exec(db, (const char *)sqlite3_column_text(st, 0), NULL, NULL, NULL) != SQLITE_OK)
			die(db, "create");
	sqlite3_finalize(st);
	sqlite3_close(src);

	if (sqlite3_prepare_v2(db, "INSERT INTO readings(point, ts, value, quality) VALUES (?1, ?2, ?3, ?4)",
	                       -1, &ins, NULL) != SQLITE_OK)
		die(db, "prepare");
	ts = 1700000000000000LL;
	t0 = mono();
	c0 = cpu();
	for (long i = 0; i < rows;) {
		sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
		for (long j = 0; j < batch && i < rows; j++, i++) {
			sqlite3_bind_int64(ins, 1, 1 + i % points);
			sqlite3_bind_int64(ins, 2, ts + i / points * 1000);
			sqlite3_bind_double(ins, 3, (double)(i % 1000) * 0.25);
			sqlite3_bind_int(ins, 4, 0);
			if (sqlite3_step(ins) != SQLITE_DONE)
				die(db, "insert");
			sqlite3_reset(ins);
		}
		if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
			die(db, "commit");
	}
	t1 = mono();
	c1 = cpu();
	sqlite3_finalize(ins);
	sqlite3_close(db);
	printf("rows=%ld wall_s=%.3f cpu_s=%.3f rows_per_s=%.0f\n", rows, t1 - t0, c1 - c0,
	       (double)rows / (t1 - t0));
	return 0;
}
