/* SPDX-License-Identifier: MIT */
/* mb-plan.c - the block-read planner. See mb-plan.h. */
#include "mb-plan.h"

static bool spans_valid(const struct mb_span *spans, size_t n, unsigned max_count)
{
	if (max_count == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (spans[i].count == 0 || spans[i].count > max_count ||
		    spans[i].start + spans[i].count > 65536)
			return false;
		if (i > 0 && spans[i].start < spans[i - 1].start + spans[i - 1].count)
			return false;
	}
	return true;
}

size_t mb_plan(const struct mb_span *spans, size_t n, const bool *breaks, unsigned max_gap,
               unsigned max_count, struct mb_block *blocks)
{
	size_t nb = 0;

	if (n == 0 || n > UINT32_MAX || !spans_valid(spans, n, max_count))
		return 0;
	for (size_t i = 0; i < n;) {
		struct mb_block *b = &blocks[nb++];
		uint32_t end = spans[i].start + spans[i].count;

		b->start = spans[i].start;
		b->first = (uint32_t)i;
		for (i++; i < n; i++) {
			uint32_t s = spans[i].start, e = s + spans[i].count;

			if ((breaks && breaks[i]) || s - end > max_gap || e - b->start > max_count)
				break;
			end = e;
		}
		b->count = end - b->start;
		b->n = (uint32_t)i - b->first;
	}
	return nb;
}

uint32_t mb_plan_split(const struct mb_block *block, bool *breaks, size_t n)
{
	uint32_t mid, end;

	if (block->n < 2)
		return 0;
	mid = block->first + block->n / 2;
	end = block->first + block->n;
	breaks[mid] = true;
	if (end < n)
		breaks[end] = true;
	return mid;
}
