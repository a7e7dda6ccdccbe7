/* SPDX-License-Identifier: MIT */
/*
 * serial-framer.c - cutting a byte stream into frames. See serial-framer.h.
 *
 * Bytes go through one small state machine, one at a time, so that where
 * the reads happen to split the stream never changes the frames that come
 * out (the unit test splits every input at every position). Delimiters are
 * matched against the tail of the buffer, not with a running count, which
 * would miss a delimiter that overlaps itself ("\x10\x10\x02").
 */
#include "serial-framer.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const sf_mode_names[] = {
	[SF_END] = "end",
	[SF_START_END] = "start_end",
	[SF_IDLE] = "idle",
	[SF_FIXED] = "fixed",
	[SF_MODE_COUNT] = NULL,
};

enum {
	ST_HUNT,    /* looking for the start delimiter; buf is a window of start_len */
	ST_FRAME,   /* collecting a frame */
	ST_DISCARD, /* SF_END after an overlong frame: a window of end_len, up to the next end */
	ST_DISCARD_IDLE, /* SF_IDLE after an overlong frame: everything up to the next pause */
};

static int fail(char *err, size_t errsize, const char *fmt, ...) {
	va_list ap;

	if (err && errsize) {
		va_start(ap, fmt);
		vsnprintf(err, errsize, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static int check_config(const struct sf_config *c, char *err, size_t errsize) {
	if ((unsigned)c->mode >= SF_MODE_COUNT)
		return fail(err, errsize, "unknown framing mode %d", (int)c->mode);
	if (c->max_len < 1 || c->max_len > SF_FRAME_MAX)
		return fail(err, errsize, "max_len must be 1..%d bytes", SF_FRAME_MAX);
	if (c->start_len > SF_DELIM_MAX || c->end_len > SF_DELIM_MAX)
		return fail(err, errsize, "a delimiter has at most %d bytes", SF_DELIM_MAX);
	switch (c->mode) {
	case SF_END:
		if (c->end_len == 0)
			return fail(err, errsize, "end framing needs an end delimiter");
		if (c->start_len)
			return fail(err, errsize, "a start delimiter needs start_end framing");
		break;
	case SF_START_END:
		if (c->start_len == 0 || c->end_len == 0)
			return fail(err, errsize,
			            "start_end framing needs a start and an end delimiter");
		break;
	case SF_IDLE:
		if (c->idle_us == 0)
			return fail(err, errsize, "idle framing needs an idle gap");
		if (c->start_len || c->end_len)
			return fail(err, errsize, "idle framing takes no delimiters");
		break;
	case SF_FIXED:
		if (c->fixed_len < 1 || c->fixed_len > c->max_len)
			return fail(err, errsize,
			            "fixed framing needs a length of 1..max_len (%zu)", c->max_len);
		if (c->end_len)
			return fail(err, errsize, "fixed framing takes no end delimiter");
		break;
	default:
		break;
	}
	return 0;
}

static int initial_state(const struct sf_config *c) {
	return c->start_len ? ST_HUNT : ST_FRAME;
}

int sf_init(struct sf *f, const struct sf_config *cfg, char *err, size_t errsize) {
	int r = check_config(cfg, err, errsize);

	if (r < 0)
		return r;
	memset(f, 0, sizeof(*f));
	/* Room for a frame of max_len, the end delimiter behind it and a NUL. */
	f->buf = malloc(cfg->max_len + SF_DELIM_MAX + 1);
	if (!f->buf)
		return -ENOMEM;
	f->cfg = *cfg;
	f->state = initial_state(cfg);
	return 0;
}

void sf_free(struct sf *f) {
	free(f->buf);
	f->buf = NULL;
	f->len = 0;
}

static bool tail_is(const struct sf *f, const uint8_t *delim, size_t n) {
	return f->len >= n && memcmp(f->buf + f->len - n, delim, n) == 0;
}

static void emit(struct sf *f, size_t len, uint64_t time_us, sf_frame_fn fn, void *arg) {
	f->buf[len] = 0;
	f->stats.frames++;
	fn(arg, f->buf, len, time_us);
	f->len = 0;
	f->state = initial_state(&f->cfg);
}

static void drop_partial(struct sf *f) {
	f->stats.partial++;
	f->stats.dropped_bytes += f->len;
	f->len = 0;
}

/* Shifts a window of delimiter length along by one byte. */
static void window_shift(struct sf *f, uint64_t *count) {
	memmove(f->buf, f->buf + 1, f->len - 1);
	f->len--;
	(*count)++;
}

static void overlong(struct sf *f) {
	const struct sf_config *c = &f->cfg;

	f->stats.overlong++;
	switch (c->mode) {
	case SF_END:
		/* Keep what may be the start of the end delimiter: it resynchronises. */
		f->stats.dropped_bytes += f->len - (c->end_len - 1);
		memmove(f->buf, f->buf + f->len - (c->end_len - 1), c->end_len - 1);
		f->len = c->end_len - 1;
		f->state = ST_DISCARD;
		break;
	case SF_IDLE:
		f->stats.dropped_bytes += f->len;
		f->len = 0;
		f->state = ST_DISCARD_IDLE;
		break;
	default:
		/* Start framing: the next start delimiter begins the next frame. */
		f->stats.dropped_bytes += f->len;
		f->len = 0;
		f->state = ST_HUNT;
		break;
	}
}

static void push_frame(struct sf *f, uint8_t b, uint64_t now_us, sf_frame_fn fn, void *arg) {
	const struct sf_config *c = &f->cfg;

	f->buf[f->len++] = b;
	switch (c->mode) {
	case SF_END:
	case SF_START_END:
		if (tail_is(f, c->end, c->end_len)) {
			emit(f, f->len - c->end_len, now_us, fn, arg);
			return;
		}
		if (c->mode == SF_START_END && tail_is(f, c->start, c->start_len)) {
			/* A new start inside a frame: the frame before it was cut off. */
			f->len -= c->start_len;
			drop_partial(f);
			return;
		}
		if (f->len >= c->max_len + c->end_len)
			overlong(f);
		return;
	case SF_FIXED:
		if (f->len == c->fixed_len)
			emit(f, f->len, now_us, fn, arg);
		return;
	case SF_IDLE:
		if (f->len > c->max_len)
			overlong(f);
		return;
	default:
		return;
	}
}

static void push(struct sf *f, uint8_t b, uint64_t now_us, sf_frame_fn fn, void *arg) {
	const struct sf_config *c = &f->cfg;

	switch (f->state) {
	case ST_HUNT:
		if (f->len == c->start_len)
			window_shift(f, &f->stats.garbage_bytes);
		f->buf[f->len++] = b;
		if (tail_is(f, c->start, c->start_len)) {
			f->len = 0;
			f->state = ST_FRAME;
		}
		return;
	case ST_FRAME:
		push_frame(f, b, now_us, fn, arg);
		return;
	case ST_DISCARD:
		f->buf[f->len++] = b;
		if (tail_is(f, c->end, c->end_len)) {
			f->stats.dropped_bytes += f->len;
			f->len = 0;
			f->state = initial_state(c);
		} else if (f->len == c->end_len) {
			window_shift(f, &f->stats.dropped_bytes);
		}
		return;
	default: /* ST_DISCARD_IDLE */
		f->stats.dropped_bytes++;
		return;
	}
}

static bool pending(const struct sf *f) {
	switch (f->state) {
	case ST_FRAME:
		/* After a start delimiter a frame is open even while still empty. */
		return f->len > 0 || f->cfg.start_len > 0;
	case ST_DISCARD:
	case ST_DISCARD_IDLE:
		return true;
	default:
		return false;
	}
}

uint64_t sf_deadline(const struct sf *f) {
	if (f->cfg.idle_us == 0 || !f->have_time || !pending(f))
		return 0;
	return f->last_us + f->cfg.idle_us;
}

void sf_idle(struct sf *f, uint64_t now_us, sf_frame_fn fn, void *arg) {
	uint64_t deadline = sf_deadline(f);

	if (deadline == 0 || now_us < deadline)
		return;
	if (f->state == ST_FRAME && f->cfg.mode == SF_IDLE) {
		emit(f, f->len, f->last_us, fn, arg);
		return;
	}
	if (f->state == ST_FRAME)
		drop_partial(f);
	else
		f->stats.dropped_bytes += f->len;
	f->len = 0;
	f->state = initial_state(&f->cfg);
}

/*
 * Inside a frame of end framing, the bytes before the next one that may
 * complete the end delimiter (its last byte) and before the frame would
 * be over-long do nothing but append: they are copied at once. Returns
 * how many of DATA's N were taken.
 */
static size_t take_body(struct sf *f, const uint8_t *data, size_t n) {
	const struct sf_config *c = &f->cfg;
	size_t room, k;
	const uint8_t *q;

	if (f->state != ST_FRAME || c->mode != SF_END)
		return 0;
	/* push_frame() calls a frame over-long once it holds max_len + end_len bytes. */
	room = c->max_len + c->end_len - 1 - f->len;
	if (n > room)
		n = room;
	q = memchr(data, c->end[c->end_len - 1], n);
	k = q ? (size_t)(q - data) : n;
	memcpy(f->buf + f->len, data, k);
	f->len += k;
	return k;
}

void sf_feed(struct sf *f, const uint8_t *data, size_t n, uint64_t now_us, sf_frame_fn fn,
             void *arg) {
	if (n == 0)
		return;
	sf_idle(f, now_us, fn, arg);
	f->stats.bytes += n;
	for (size_t i = 0; i < n; i++) {
		i += take_body(f, data + i, n - i);
		if (i == n)
			break;
		push(f, data[i], now_us, fn, arg);
	}
	f->last_us = now_us;
	f->have_time = true;
}

void sf_reset(struct sf *f) {
	if (f->state == ST_FRAME && (f->len > 0 || f->cfg.start_len > 0))
		drop_partial(f);
	else if (f->state == ST_HUNT)
		f->stats.garbage_bytes += f->len;
	else
		f->stats.dropped_bytes += f->len;
	f->len = 0;
	f->state = initial_state(&f->cfg);
}
