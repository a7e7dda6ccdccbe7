/* SPDX-License-Identifier: MIT */
/*
 * The serial framer in every mode: frames, garbage, overlong and partial
 * frames with their counters, and the promise that where the reads split
 * the stream never changes what comes out (every split position, and byte
 * by byte).
 */
#include <errno.h>
#include <string.h>

#include "serial-framer.h"
#include "test.h"

struct out {
	char text[4096]; /* every frame as [bytes] */
	size_t n;
	unsigned frames;
	uint64_t last_time;
};

static void collect(void *arg, const uint8_t *frame, size_t len, uint64_t time_us) {
	struct out *o = arg;

	ASSERT_EQ(frame[len], 0);
	ASSERT_LT(o->n + len + 2, sizeof(o->text));
	o->text[o->n++] = '[';
	memcpy(o->text + o->n, frame, len);
	o->n += len;
	o->text[o->n++] = ']';
	o->text[o->n] = 0;
	o->frames++;
	o->last_time = time_us;
}

static struct sf_config end_cfg(const char *end, size_t max) {
	struct sf_config c = {.mode = SF_END, .max_len = max};

	c.end_len = strlen(end);
	memcpy(c.end, end, c.end_len);
	return c;
}

static struct sf_config start_end_cfg(const char *start, const char *end, size_t max) {
	struct sf_config c = end_cfg(end, max);

	c.mode = SF_START_END;
	c.start_len = strlen(start);
	memcpy(c.start, start, c.start_len);
	return c;
}

static void expect_stats(const struct sf_stats *s, uint64_t frames, uint64_t garbage,
                         uint64_t overlong, uint64_t partial, uint64_t dropped) {
	ASSERT_EQ(s->frames, frames);
	ASSERT_EQ(s->garbage_bytes, garbage);
	ASSERT_EQ(s->overlong, overlong);
	ASSERT_EQ(s->partial, partial);
	ASSERT_EQ(s->dropped_bytes, dropped);
}

/*
 * Feeds input in one piece, split in two at every position, and byte by
 * byte; each time the frames and the counters must be the same.
 */
static void check_splits(const struct sf_config *cfg, const char *input, size_t len,
                         const char *want, uint64_t garbage, uint64_t overlong, uint64_t partial,
                         uint64_t dropped) {
	for (size_t split = 0; split <= len + 1; split++) {
		struct sf f;
		struct out o = {0};

		ASSERT_OK(sf_init(&f, cfg, NULL, 0));
		if (split <= len) {
			sf_feed(&f, (const uint8_t *)input, split, 0, collect, &o);
			sf_feed(&f, (const uint8_t *)input + split, len - split, 0, collect, &o);
		} else {
			for (size_t i = 0; i < len; i++)
				sf_feed(&f, (const uint8_t *)input + i, 1, 0, collect, &o);
		}
		if (strcmp(o.text, want) != 0)
			TEST_FAIL("split at %zu: \"%s\" vs \"%s\"", split, o.text, want);
		ASSERT_EQ(f.stats.bytes, len);
		expect_stats(&f.stats, o.frames, garbage, overlong, partial, dropped);
		sf_free(&f);
	}
}

/* A string literal's bytes, without its NUL. */
#define CHECK(cfg, lit, ...) check_splits(cfg, lit, sizeof(lit) - 1, __VA_ARGS__)

static void test_end_delimiter(void) {
	struct sf_config c = end_cfg("\r\n", 82);
	const char in[] = "$GPGGA,1*00\r\n$GPRMC,2*00\r\n\r\nhalf";

	check_splits(&c, in, strlen(in), "[$GPGGA,1*00][$GPRMC,2*00][]", 0, 0, 0, 0);
	/* A lone \r inside a frame is data, "\r\r\n" leaves one \r for the parser. */
	CHECK(&c, "a\rb\r\r\n", "[a\rb\r]", 0, 0, 0, 0);
	c = end_cfg("\n", 82);
	CHECK(&c, "one\ntwo\n", "[one][two]", 0, 0, 0, 0);
}

static void test_end_max_len(void) {
	struct sf_config c = end_cfg("\n", 5);

	/* Exactly max_len is a frame; one more is dropped up to the next end. */
	CHECK(&c, "abcde\n", "[abcde]", 0, 0, 0, 0);
	CHECK(&c, "abcdefgh\nabc\n", "[abc]", 0, 1, 0, 9);
	/* A two-byte end: the \r of an overlong frame's end still resynchronises. */
	c = end_cfg("\r\n", 3);
	CHECK(&c, "abc\r\n", "[abc]", 0, 0, 0, 0);
	CHECK(&c, "abcd\r\nok\r\n", "[ok]", 0, 1, 0, 6);
	/* The end's last byte alone is data, up to max_len and beyond it. */
	CHECK(&c, "a\nb\r\n", "[a\nb]", 0, 0, 0, 0);
	CHECK(&c, "ab\nc\r\nok\r\n", "[ok]", 0, 1, 0, 6);
	CHECK(&c, "abc\n\r\nok\r\n", "[ok]", 0, 1, 0, 6);
	/* Megabytes without an end stay within the buffer, counted, not kept. */
	{
		struct sf f;
		struct out o = {0};
		static char junk[1 << 20];

		memset(junk, 'x', sizeof(junk));
		ASSERT_OK(sf_init(&f, &c, NULL, 0));
		for (int i = 0; i < 4; i++)
			sf_feed(&f, (const uint8_t *)junk, sizeof(junk), 0, collect, &o);
		sf_feed(&f, (const uint8_t *)"\r\nok\r\n", 6, 0, collect, &o);
		ASSERT_STR_EQ(o.text, "[ok]");
		ASSERT_EQ(f.stats.overlong, 1);
		ASSERT_EQ(f.stats.dropped_bytes, 4 * sizeof(junk) + 2);
		ASSERT_LE(f.len, 3 + 2);
		sf_free(&f);
	}
}

static void test_end_overlapping_delimiter(void) {
	/* "aab" overlaps itself: after "aa" another 'a' must not lose the match. */
	struct sf_config c = end_cfg("aab", 16);

	CHECK(&c, "xaaabyaab", "[xa][y]", 0, 0, 0, 0);
}

static void test_start_end(void) {
	struct sf_config c = start_end_cfg("\x02", "\x03", 16);

	CHECK(&c, "zz\x02" "abc\x03yy\x02" "de\x03", "[abc][de]", 4, 0, 0, 0);
	/* A start inside a frame: the first frame was cut off. */
	CHECK(&c, "\x02" "ab\x02" "cd\x03", "[cd]", 0, 0, 1, 2);
	/* Overlong: dropped, and its end is garbage before the next start. */
	c = start_end_cfg("\x02", "\x03", 3);
	CHECK(&c, "\x02" "abcd\x03\x02" "ok\x03", "[ok]", 1, 1, 0, 4);
	CHECK(&c, "\x02" "abc\x03", "[abc]", 0, 0, 0, 0);
	/* Multi-byte delimiters; a '<' too many before the start is garbage. */
	c = start_end_cfg("<<", ">>", 16);
	CHECK(&c, "a<<<b>>--<<c>>", "[<b][c]", 3, 0, 0, 0);
}

static void test_idle(void) {
	struct sf_config c = {.mode = SF_IDLE, .idle_us = 1000, .max_len = 8};
	struct sf f;
	struct out o = {0};

	ASSERT_OK(sf_init(&f, &c, NULL, 0));
	ASSERT_EQ(sf_deadline(&f), 0);
	sf_feed(&f, (const uint8_t *)"ab", 2, 10000, collect, &o);
	sf_feed(&f, (const uint8_t *)"cd", 2, 10500, collect, &o);
	ASSERT_EQ(o.frames, 0);
	ASSERT_EQ(sf_deadline(&f), 11500);
	sf_idle(&f, 11499, collect, &o);
	ASSERT_EQ(o.frames, 0);
	/* The next chunk after a pause first closes the frame before it. */
	sf_feed(&f, (const uint8_t *)"ef", 2, 13000, collect, &o);
	ASSERT_STR_EQ(o.text, "[abcd]");
	ASSERT_EQ(o.last_time, 10500);
	sf_idle(&f, 14000, collect, &o);
	ASSERT_STR_EQ(o.text, "[abcd][ef]");
	ASSERT_EQ(o.last_time, 13000);
	ASSERT_EQ(sf_deadline(&f), 0);
	/* Overlong: everything up to the next pause is dropped. */
	sf_feed(&f, (const uint8_t *)"123456789", 9, 20000, collect, &o);
	sf_feed(&f, (const uint8_t *)"x", 1, 20100, collect, &o);
	ASSERT_EQ(sf_deadline(&f), 21100);
	sf_idle(&f, 21100, collect, &o);
	sf_feed(&f, (const uint8_t *)"12345678", 8, 30000, collect, &o);
	sf_idle(&f, 40000, collect, &o);
	ASSERT_STR_EQ(o.text, "[abcd][ef][12345678]");
	expect_stats(&f.stats, 3, 0, 1, 0, 10);
	sf_free(&f);
	/* Without pauses the split does not matter either. */
	CHECK(&c, "abcdefgh", "", 0, 0, 0, 0);
}

static void test_fixed(void) {
	struct sf_config c = {.mode = SF_FIXED, .fixed_len = 3, .max_len = 3};
	struct sf f;
	struct out o = {0};

	CHECK(&c, "abcdefg", "[abc][def]", 0, 0, 0, 0);
	c.start[0] = '#';
	c.start_len = 1;
	CHECK(&c, "x#abc#de", "[abc]", 1, 0, 0, 0);
	CHECK(&c, "#a#c#def", "[a#c][def]", 0, 0, 0, 0);
	/* With idle_us, a pause drops a half frame instead of gluing it to the next. */
	c.start_len = 0;
	c.idle_us = 1000;
	ASSERT_OK(sf_init(&f, &c, NULL, 0));
	sf_feed(&f, (const uint8_t *)"ab", 2, 0, collect, &o);
	ASSERT_EQ(sf_deadline(&f), 1000);
	sf_feed(&f, (const uint8_t *)"cde", 3, 5000, collect, &o);
	ASSERT_STR_EQ(o.text, "[cde]");
	expect_stats(&f.stats, 1, 0, 0, 1, 2);
	/* A reopen drops what is pending. */
	sf_feed(&f, (const uint8_t *)"f", 1, 5100, collect, &o);
	sf_reset(&f);
	expect_stats(&f.stats, 1, 0, 0, 2, 3);
	sf_free(&f);
	sf_free(&f); /* twice is harmless */
}

static void test_config_errors(void) {
	struct sf_config c = end_cfg("\n", 0);
	struct sf f;
	char err[128];

	ASSERT_EQ(sf_init(&f, &c, err, sizeof(err)), -EINVAL);
	ASSERT_STR_CONTAINS(err, "max_len");
	c.max_len = SF_FRAME_MAX + 1;
	ASSERT_EQ(sf_init(&f, &c, err, sizeof(err)), -EINVAL);
	c.max_len = 10;
	c.end_len = 0;
	ASSERT_EQ(sf_init(&f, &c, err, sizeof(err)), -EINVAL);
	ASSERT_STR_CONTAINS(err, "end delimiter");
	c.end_len = SF_DELIM_MAX + 1;
	ASSERT_EQ(sf_init(&f, &c, err, sizeof(err)), -EINVAL);
	c = (struct sf_config){.mode = SF_IDLE, .max_len = 10};
	ASSERT_EQ(sf_init(&f, &c, err, sizeof(err)), -EINVAL);
	ASSERT_STR_CONTAINS(err, "idle");
	c = (struct sf_config){.mode = SF_FIXED, .fixed_len = 11, .max_len = 10};
	ASSERT_EQ(sf_init(&f, &c, err, sizeof(err)), -EINVAL);
	c = start_end_cfg("", "\n", 10);
	ASSERT_EQ(sf_init(&f, &c, NULL, 0), -EINVAL);
	c = (struct sf_config){.mode = SF_MODE_COUNT, .max_len = 10};
	ASSERT_EQ(sf_init(&f, &c, NULL, 0), -EINVAL);
	ASSERT_STR_EQ(sf_mode_names[SF_START_END], "start_end");
	ASSERT(sf_mode_names[SF_MODE_COUNT] == NULL);
}

int main(void) {
	RUN_TEST(test_end_delimiter);
	RUN_TEST(test_end_max_len);
	RUN_TEST(test_end_overlapping_delimiter);
	RUN_TEST(test_start_end);
	RUN_TEST(test_idle);
	RUN_TEST(test_fixed);
	RUN_TEST(test_config_errors);
	return 0;
}
