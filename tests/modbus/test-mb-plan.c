/* SPDX-License-Identifier: MIT */
/* Unit tests of the Modbus block-read planner. */
#include <stdbool.h>

#include "mb-plan.h"
#include "test.h"

#define MAX_SPANS 2000

static struct mb_span spans[MAX_SPANS];
static struct mb_block blocks[MAX_SPANS];
static bool breaks[MAX_SPANS];

/* N contiguous spans of WIDTH addresses from START. */
static size_t contiguous(uint32_t start, size_t n, uint32_t width)
{
	for (size_t i = 0; i < n; i++)
		spans[i] = (struct mb_span){ .start = start + (uint32_t)i * width, .count = width };
	return n;
}

/* Every span is covered by exactly one block, in order, within the rules. */
static void check_plan(size_t n, size_t nb, unsigned max_gap, unsigned max_count)
{
	uint32_t next = 0;

	ASSERT_GT(nb, 0);
	for (size_t b = 0; b < nb; b++) {
		const struct mb_block *k = &blocks[b];
		const struct mb_span *last = &spans[k->first + k->n - 1];

		ASSERT_EQ(k->first, next);
		ASSERT_GE(k->n, 1);
		ASSERT_EQ(k->start, spans[k->first].start);
		ASSERT_EQ(k->start + k->count, last->start + last->count);
		ASSERT_LE(k->count, max_count);
		for (uint32_t i = k->first + 1; i < k->first + k->n; i++) {
			ASSERT_LE(spans[i].start - (spans[i - 1].start + spans[i - 1].count), max_gap);
			ASSERT(!breaks[i]);
		}
		next = k->first + k->n;
	}
	ASSERT_EQ(next, n);
}

static size_t plan(size_t n, unsigned max_gap, unsigned max_count)
{
	size_t nb = mb_plan(spans, n, breaks, max_gap, max_count, blocks);

	check_plan(n, nb, max_gap, max_count);
	return nb;
}

static void test_contiguous(void)
{
	/* The benchmark: 1,000 registers in exactly 8 requests. */
	ASSERT_EQ(plan(contiguous(0, 1000, 1), 16, 125), 8);
	for (int b = 0; b < 8; b++) {
		ASSERT_EQ(blocks[b].start, 125 * b);
		ASSERT_EQ(blocks[b].count, 125);
	}
	/* 100 registers in one. */
	ASSERT_EQ(plan(contiguous(0, 100, 1), 16, 125), 1);
	/* float32s never straddle: 62 per request. */
	ASSERT_EQ(plan(contiguous(0, 500, 2), 16, 125), 9);
	ASSERT_EQ(blocks[0].count, 124);
	/* 2000 coils in one request, 2001 in two. */
	ASSERT_EQ(plan(contiguous(0, 2000, 1), 64, 2000), 1);
	/* A device that takes at most 10 registers. */
	ASSERT_EQ(plan(contiguous(100, 95, 1), 16, 10), 10);
	/* The top of the address space. */
	ASSERT_EQ(plan(contiguous(65536 - 250, 250, 1), 0, 125), 2);
	ASSERT_EQ(blocks[1].start + blocks[1].count, 65536);
}

static void test_gaps(void)
{
	spans[0] = (struct mb_span){ 0, 1 };
	spans[1] = (struct mb_span){ 10, 2 };  /* gap 9 */
	spans[2] = (struct mb_span){ 30, 4 };  /* gap 18 */
	spans[3] = (struct mb_span){ 34, 1 };  /* gap 0 */
	ASSERT_EQ(plan(4, 16, 125), 2);
	ASSERT_EQ(blocks[0].count, 12);
	ASSERT_EQ(blocks[1].start, 30);
	ASSERT_EQ(blocks[1].count, 5);
	ASSERT_EQ(plan(4, 18, 125), 1);
	ASSERT_EQ(blocks[0].count, 35);
	ASSERT_EQ(plan(4, 0, 125), 3);
	/* The maximum count wins over the gap. */
	ASSERT_EQ(plan(4, 100, 34), 2);
	/* Sparse registers far apart: one request each. */
	for (size_t i = 0; i < 10; i++)
		spans[i] = (struct mb_span){ (uint32_t)i * 1000, 1 };
	ASSERT_EQ(plan(10, 16, 125), 10);
}

static void test_breaks(void)
{
	size_t n = contiguous(0, 100, 1);

	breaks[50] = true;
	ASSERT_EQ(plan(n, 16, 125), 2);
	ASSERT_EQ(blocks[1].first, 50);
	breaks[50] = false;
}

/* Splitting a block bisects it and leaves the others alone. */
static void test_split(void)
{
	size_t n = contiguous(0, 300, 1), nb;
	uint32_t mid;

	ASSERT_EQ(plan(n, 16, 125), 3); /* 0-124, 125-249, 250-299 */
	mid = mb_plan_split(&blocks[1], breaks, n);
	ASSERT_EQ(mid, 125 + 62);
	nb = plan(n, 16, 125);
	ASSERT_EQ(nb, 4);
	ASSERT_EQ(blocks[0].count, 125);
	ASSERT_EQ(blocks[1].start, 125);
	ASSERT_EQ(blocks[1].count, 62);
	ASSERT_EQ(blocks[2].start, 187);
	ASSERT_EQ(blocks[2].count, 63);
	ASSERT_EQ(blocks[3].start, 250);
	ASSERT_EQ(blocks[3].count, 50);

	/* Isolating one bad address takes at most log2 splits. */
	{
		uint32_t bad = 200;
		int splits = 0;

		for (;;) {
			size_t b;

			nb = plan(n, 16, 125);
			for (b = 0; b < nb; b++)
				if (blocks[b].start <= bad && bad < blocks[b].start + blocks[b].count)
					break;
			ASSERT_LT(b, nb);
			if (blocks[b].n == 1)
				break;
			ASSERT_NE(mb_plan_split(&blocks[b], breaks, n), 0);
			splits++;
		}
		ASSERT_LE(splits, 7);
		/* The rest is still read in few requests. */
		ASSERT_LE(nb, 3 + 2 * 7);
	}
	/* A single span cannot be split. */
	ASSERT_EQ(mb_plan_split(&(struct mb_block){ .first = 3, .n = 1 }, breaks, n), 0);
	for (size_t i = 0; i < n; i++)
		breaks[i] = false;
}

static void test_invalid(void)
{
	spans[0] = (struct mb_span){ 10, 2 };
	spans[1] = (struct mb_span){ 11, 1 }; /* overlaps */
	ASSERT_EQ(mb_plan(spans, 2, NULL, 16, 125, blocks), 0);
	spans[1] = (struct mb_span){ 5, 1 }; /* unsorted */
	ASSERT_EQ(mb_plan(spans, 2, NULL, 16, 125, blocks), 0);
	spans[1] = (struct mb_span){ 20, 126 }; /* too long */
	ASSERT_EQ(mb_plan(spans, 2, NULL, 16, 125, blocks), 0);
	spans[1] = (struct mb_span){ 65535, 2 }; /* past the address space */
	ASSERT_EQ(mb_plan(spans, 2, NULL, 16, 125, blocks), 0);
	spans[1] = (struct mb_span){ 20, 0 };
	ASSERT_EQ(mb_plan(spans, 2, NULL, 16, 125, blocks), 0);
	ASSERT_EQ(mb_plan(spans, 1, NULL, 16, 0, blocks), 0);
	ASSERT_EQ(mb_plan(spans, 0, NULL, 16, 125, blocks), 0);
}

/* The fewest blocks, by dynamic programming over span prefixes. */
static size_t optimal(size_t n, unsigned max_gap, unsigned max_count)
{
	size_t best[64];

	best[0] = 0;
	for (size_t j = 1; j <= n; j++) {
		best[j] = SIZE_MAX;
		/* The last block covers spans i .. j-1. */
		for (size_t i = j; i-- > 0;) {
			bool ok = spans[j - 1].start + spans[j - 1].count - spans[i].start <= max_count;

			for (size_t k = i + 1; ok && k < j; k++)
				ok = spans[k].start - (spans[k - 1].start + spans[k - 1].count) <= max_gap;
			if (!ok)
				break;
			if (best[i] + 1 < best[j])
				best[j] = best[i] + 1;
		}
	}
	return best[n];
}

static void test_random_against_optimal(void)
{
	uint32_t x = 12345;

	for (int round = 0; round < 2000; round++) {
		size_t n = 1 + round % 40;
		uint32_t addr = 0;
		unsigned max_gap, max_count;

		for (size_t i = 0; i < n; i++) {
			x = x * 1103515245u + 12345u;
			addr += (x >> 16) % 20;
			spans[i] = (struct mb_span){ addr, 1 + (x >> 8) % 4 };
			addr += spans[i].count;
		}
		x = x * 1103515245u + 12345u;
		max_gap = (x >> 16) % 24;
		max_count = 4 + (x >> 4) % 60;
		ASSERT_EQ(plan(n, max_gap, max_count), optimal(n, max_gap, max_count));
	}
}

int main(void)
{
	RUN_TEST(test_contiguous);
	RUN_TEST(test_gaps);
	RUN_TEST(test_breaks);
	RUN_TEST(test_split);
	RUN_TEST(test_invalid);
	RUN_TEST(test_random_against_optimal);
	return 0;
}
