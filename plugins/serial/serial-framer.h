/* SPDX-License-Identifier: MIT */
/*
 * serial-framer.h - cutting a serial byte stream into frames, without a device.
 *
 * A serial line delivers bytes in chunks that have nothing to do with the
 * frames of the protocol: a read may end in the middle of a sentence, start
 * with the tail of one that was cut off, or carry line noise. The framer
 * keeps at most one frame (max_len bytes plus a delimiter) and hands every
 * complete frame to a callback, delimiters removed. Four rules:
 *
 *   SF_END        a frame ends with an end delimiter ("\n", "\r\n", ...)
 *   SF_START_END  a start delimiter, then everything up to the end delimiter;
 *                 bytes outside are garbage, and a start inside a frame
 *                 begins a new frame (the partial one is dropped)
 *   SF_IDLE       a pause of idle_us between bytes ends a frame (Modbus RTU
 *                 style); the caller passes the time of every chunk, and
 *                 sf_deadline() says when a pause would close the pending frame
 *   SF_FIXED      fixed_len bytes, after an optional start delimiter
 *
 * In every mode but SF_IDLE a non-zero idle_us drops a partial frame after a
 * pause, so that a half frame from before an unplug is not glued to the next.
 * Nothing is buffered without bound: a frame longer than max_len is dropped
 * and counted, and the framer resynchronises on the next delimiter (end mode)
 * or start delimiter. The framer allocates once, in sf_init(); feeding never
 * allocates.
 *
 * One framer belongs to one thread at a time; the functions are pure code
 * over the state, callable from a fuzzer.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest delimiter, and the largest max_len a framer accepts. */
#define SF_DELIM_MAX 8
#define SF_FRAME_MAX 65536

enum sf_mode {
	SF_END,
	SF_START_END,
	SF_IDLE,
	SF_FIXED,
	SF_MODE_COUNT
};

/* NULL-terminated, indexed by enum sf_mode ("end", "start_end", "idle", "fixed"). */
extern const char *const sf_mode_names[];

struct sf_config {
	enum sf_mode mode;
	uint8_t start[SF_DELIM_MAX]; /* SF_START_END (required), SF_FIXED (optional) */
	size_t start_len;
	uint8_t end[SF_DELIM_MAX]; /* SF_END, SF_START_END (required) */
	size_t end_len;
	size_t fixed_len; /* SF_FIXED: 1..max_len */
	uint64_t idle_us; /* SF_IDLE: required; others: 0 or the pause that drops a partial frame */
	size_t max_len;   /* always required: 1..SF_FRAME_MAX bytes, delimiters not counted */
};

/* What the framer did with the bytes, for the driver's status. */
struct sf_stats {
	uint64_t bytes;         /* fed */
	uint64_t frames;        /* handed to the callback */
	uint64_t garbage_bytes; /* outside any frame: before a start delimiter */
	uint64_t overlong;      /* frames dropped for being longer than max_len */
	uint64_t partial;       /* frames dropped unfinished (restart, pause) */
	uint64_t dropped_bytes; /* the bytes of the overlong and partial frames */
};

/*
 * Called with every frame: frame[0..len) without delimiters, followed by a
 * NUL that is not part of it (the frame itself may contain NULs); valid only
 * during the call. time_us is the time of the chunk that completed the frame
 * (SF_IDLE: of its last byte). The callback must not feed the same framer.
 */
typedef void (*sf_frame_fn)(void *arg, const uint8_t *frame, size_t len, uint64_t time_us);

struct sf {
	struct sf_config cfg;
	struct sf_stats stats;
	uint8_t *buf; /* capacity: max_len + SF_DELIM_MAX + 1 */
	size_t len;
	int state;
	bool have_time;
	uint64_t last_us; /* time of the last byte buffered */
};

/*
 * Checks the config and sets the framer up. Returns 0, -EINVAL when the
 * config is not complete or not consistent (message in err, if not NULL),
 * or -ENOMEM. On failure nothing is left to free.
 */
int sf_init(struct sf *f, const struct sf_config *cfg, char *err, size_t errsize);

/* Frees the buffer; accepts a zeroed or freed framer. */
void sf_free(struct sf *f);

/*
 * Feeds n bytes that arrived at now_us (a monotonic clock, microseconds) and
 * calls fn for every frame they complete. In SF_IDLE mode (and wherever
 * idle_us is set) a pause since the last byte first closes or drops the
 * pending frame.
 */
void sf_feed(struct sf *f, const uint8_t *data, size_t n, uint64_t now_us, sf_frame_fn fn,
             void *arg);

/*
 * The time at which a pause would close (SF_IDLE) or drop the pending
 * frame, or 0 when nothing is pending or idle_us is 0: the driver arms a
 * timer for it and calls sf_idle() then.
 */
uint64_t sf_deadline(const struct sf *f);

/* A pause: at or past sf_deadline(), the pending frame is closed (SF_IDLE) or dropped. */
void sf_idle(struct sf *f, uint64_t now_us, sf_frame_fn fn, void *arg);

/* Drops whatever is pending (after a reopen), counting it as partial. */
void sf_reset(struct sf *f);
