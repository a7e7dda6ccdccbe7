/* SPDX-License-Identifier: MIT */
/*
 * mb-plan.h - the block-read planner, without a device.
 *
 * The points of one device, table and interval become spans: disjoint
 * address ranges sorted by address (the bits of one register that several
 * bool points read are one span). The planner merges neighbouring spans
 * into read requests ("blocks") with the fewest requests such that
 *
 *  - the gap between two merged spans is at most MAX_GAP addresses,
 *  - no block is longer than MAX_COUNT addresses (125 registers or 2000
 *    bits in one request, or less for a device that takes less),
 *  - a block starts at every span marked in BREAKS.
 *
 * Greedy extension is optimal here: whatever a plan does, the greedy plan's
 * k-th block ends at least as far right as that plan's k-th block.
 *
 * BREAKS is how a split is remembered: when a device answers exception 02
 * (illegal data address) for a merged block, the caller bisects it with
 * mb_plan_split(), which marks breaks in the block's middle and at its end,
 * and plans again. Every other block keeps its shape, and a bad address
 * ends up in a block of its own after at most log2(n) splits.
 *
 * Pure functions, callable from any thread and from a fuzzer.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Addresses run 0..65535; an end (start + count) may be 65536. */
struct mb_span {
	uint32_t start;
	uint32_t count;
};

struct mb_block {
	uint32_t start; /* first address to read */
	uint32_t count; /* addresses to read */
	uint32_t first; /* index of the first span it covers */
	uint32_t n;     /* spans it covers, first .. first + n - 1 */
};

/*
 * Plans N spans (sorted, disjoint, each no longer than MAX_COUNT) into
 * BLOCKS, which has room for N blocks. BREAKS (N flags) may be NULL.
 * Returns the number of blocks, or 0 when the input breaks the rules above
 * (unsorted or overlapping spans, a span longer than MAX_COUNT, MAX_COUNT 0).
 */
size_t mb_plan(const struct mb_span *spans, size_t n, const bool *breaks, unsigned max_gap,
               unsigned max_count, struct mb_block *blocks);

/*
 * Marks BREAKS (N flags) so that the next mb_plan() splits BLOCK into two
 * halves by span count and leaves the blocks after it as they were.
 * Returns the index of the first span of the second half, or 0 when BLOCK
 * covers one span and cannot be split.
 */
uint32_t mb_plan_split(const struct mb_block *block, bool *breaks, size_t n);
