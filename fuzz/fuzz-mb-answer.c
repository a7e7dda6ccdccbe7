/* SPDX-License-Identifier: MIT */
/*
 * The Modbus planner and what a poll does with the answers, without a
 * device: points become spans, spans become read requests (mb_plan), each
 * request gets the answer the input says (registers or bits, exception 02,
 * another exception, or a timeout that fails the rest of the cycle),
 * exception 02 bisects the request (mb_plan_split) as
 * the driver's read_range() does, and every point is decoded from its
 * offset in the answer. The answer buffers are exactly as long as the
 * request, so a point decoded outside its request is a sanitizer report;
 * the next plan must keep every invariant of mb-plan.h.
 *
 * Input: table, max_gap, max_count, point count; per point an address gap,
 * a type, an order and a bit or string length; then, for every request in
 * the order the poll sends them, one status byte and the answer's data.
 */
#include <math.h>
#include <stdbool.h>

#include "fuzz-input.h"
#include "mb-codec.h"
#include "mb-plan.h"

#define MAX_POINTS 48
#define MAX_REGISTERS 125 /* one read request, as the driver asks at most */
#define MAX_BITS 2000

struct point {
	uint32_t address;
	uint32_t nregs;
	enum mb_type type;
	enum mb_order order;
	int bit; /* -1 unless a bool in a register */
	int span;
	bool read; /* decoded or failed in this cycle */
};

struct plan {
	enum mb_table table;
	struct point points[MAX_POINTS];
	size_t n_points;
	struct mb_span spans[MAX_POINTS];
	uint32_t span_first[MAX_POINTS + 1];
	size_t n_spans;
	bool breaks[MAX_POINTS], new_breaks[MAX_POINTS];
	bool down; /* a device-level failure ended the cycle's requests */
	struct mb_block blocks[MAX_POINTS];
	size_t n_blocks;
	unsigned max_gap, max_count;
};

/* Lays out non-overlapping points in address order, as parse_point and check_overlaps allow. */
static void make_points(struct plan *pl, struct fuzz_in *in, size_t n) {
	bool bits = mb_table_is_bits(pl->table);
	uint32_t next = fuzz_u16(in) % 1024;

	for (size_t i = 0; i < n; i++) {
		struct point *p = &pl->points[pl->n_points];
		uint8_t gap = fuzz_u8(in), t = fuzz_u8(in), o = fuzz_u8(in), arg = fuzz_u8(in);
		const struct point *prev = pl->n_points ? p - 1 : NULL;

		p->type = bits ? MB_BOOL : (enum mb_type)(t % MB_TYPE_COUNT);
		p->order = (enum mb_order)(o % MB_ORDER_COUNT);
		if (!mb_order_valid(p->type, p->order))
			p->order = MB_ABCD;
		p->bit = !bits && p->type == MB_BOOL ? arg % 16 : -1;
		p->nregs = bits ? 1 : mb_type_registers(p->type, 1 + arg % 8);
		/* Bits of one register: a bool whose gap byte is odd joins the previous one's
		 * register. */
		if (p->bit >= 0 && prev && prev->bit >= 0 && prev->bit < p->bit && (gap & 1))
			p->address = prev->address;
		else
			p->address = next + gap % 32;
		if (p->address + p->nregs > 65536)
			return;
		next = p->address + p->nregs;
		pl->n_points++;
	}
}

/* Spans as build_plan() makes them: one per point, bits of a register shared. */
static void make_spans(struct plan *pl) {
	size_t s = 0;

	for (size_t i = 0; i < pl->n_points; i++) {
		struct point *p = &pl->points[i];

		if (s == 0 || p->address != pl->spans[s - 1].start || p->bit < 0) {
			pl->spans[s] = (struct mb_span){.start = p->address, .count = p->nregs};
			pl->span_first[s] = (uint32_t)i;
			s++;
		}
		p->span = (int)s - 1;
	}
	pl->span_first[s] = (uint32_t)pl->n_points;
	pl->n_spans = s;
}

/* What mb-plan.h promises about a plan. */
static void check_plan(const struct plan *pl) {
	uint32_t next_span = 0;

	FUZZ_ASSERT(pl->n_blocks >= 1 && pl->n_blocks <= pl->n_spans);
	for (size_t b = 0; b < pl->n_blocks; b++) {
		const struct mb_block *k = &pl->blocks[b];
		const struct mb_span *first = &pl->spans[k->first];
		const struct mb_span *last = &pl->spans[k->first + k->n - 1];

		FUZZ_ASSERT(k->first == next_span && k->n >= 1);
		FUZZ_ASSERT(k->first + k->n <= pl->n_spans);
		FUZZ_ASSERT(k->start == first->start);
		FUZZ_ASSERT(k->count == last->start + last->count - first->start);
		FUZZ_ASSERT(k->count >= 1 && k->count <= pl->max_count);
		for (uint32_t s = k->first + 1; s < k->first + k->n; s++) {
			FUZZ_ASSERT(!pl->breaks[s]);
			FUZZ_ASSERT(pl->spans[s].start -
			                (pl->spans[s - 1].start + pl->spans[s - 1].count) <=
			            pl->max_gap);
		}
		/* Greedy: the next span would not have fitted. */
		if (b + 1 < pl->n_blocks) {
			const struct mb_span *nx = &pl->spans[k->first + k->n];

			FUZZ_ASSERT(pl->breaks[k->first + k->n] ||
			            nx->start - (last->start + last->count) > pl->max_gap ||
			            nx->start + nx->count - k->start > pl->max_count);
		}
		next_span = k->first + k->n;
	}
	FUZZ_ASSERT(next_span == pl->n_spans);
}

/* Decodes the points of spans FIRST .. FIRST + N - 1 from an answer read from BASE. */
static void decode(struct plan *pl, uint32_t first, uint32_t n, uint32_t base, const uint16_t *regs,
                   const uint8_t *bits) {
	char text[256];

	for (uint32_t m = pl->span_first[first]; m < pl->span_first[first + n]; m++) {
		struct point *p = &pl->points[m];
		uint32_t off = p->address - base;
		double v;

		FUZZ_ASSERT(!p->read);
		p->read = true;
		if (bits) {
			FUZZ_ASSERT(bits[off] <= 1);
			continue;
		}
		if (p->type == MB_STRING) {
			mb_decode_string(&regs[off], p->nregs, p->order, text, sizeof(text));
			continue;
		}
		v = p->type == MB_BOOL ? mb_decode_bit(regs[off], (unsigned)p->bit)
		                       : mb_decode(p->type, p->order, &regs[off]);
		FUZZ_ASSERT(p->type == MB_FLOAT32 || p->type == MB_FLOAT64 || isfinite(v));
	}
}

static void fail(struct plan *pl, uint32_t first, uint32_t n) {
	for (uint32_t m = pl->span_first[first]; m < pl->span_first[first + n]; m++) {
		FUZZ_ASSERT(!pl->points[m].read);
		pl->points[m].read = true;
	}
}

/* read_range() of modbus.c, with the input as the device. */
static void read_range(struct plan *pl, struct fuzz_in *in, uint32_t first, uint32_t n) {
	uint32_t start = pl->spans[first].start;
	uint32_t end = pl->spans[first + n - 1].start + pl->spans[first + n - 1].count;
	uint32_t count = end - start;
	uint8_t status;

	FUZZ_ASSERT(count >= 1 && count <= pl->max_count);
	if (pl->down) {
		/* No request after a timeout or a lost connection: the rest fails with it. */
		fail(pl, first, n);
		return;
	}
	status = fuzz_u8(in);
	if (status % 8 == 0 && n > 1) {
		/* Exception 02 for a merged request: bisect it. */
		struct mb_block b = {.first = first, .n = n};
		uint32_t mid = mb_plan_split(&b, pl->new_breaks, pl->n_spans);

		FUZZ_ASSERT(mid > first && mid < first + n);
		read_range(pl, in, first, mid - first);
		read_range(pl, in, mid, first + n - mid);
		return;
	}
	if (status % 8 <= 2) {
		/*
		 * 1: no answer, and the device counts as down for the rest of the
		 * cycle; 2 (or 0 for a single span): an exception for this request.
		 */
		pl->down = status % 8 == 1;
		fail(pl, first, n);
		return;
	}
	/* libmodbus returns exactly COUNT items; the buffer is no larger. */
	if (mb_table_is_bits(pl->table)) {
		uint8_t *bits = malloc(count);

		FUZZ_ASSERT(bits);
		for (uint32_t i = 0; i < count; i += 8) {
			uint8_t byte = fuzz_u8(in);

			for (uint32_t j = 0; j < 8 && i + j < count; j++)
				bits[i + j] = (byte >> j) & 1;
		}
		decode(pl, first, n, start, NULL, bits);
		free(bits);
	} else {
		uint16_t *regs = malloc(count * sizeof(*regs));

		FUZZ_ASSERT(regs);
		for (uint32_t i = 0; i < count; i++)
			regs[i] = fuzz_u16(in);
		decode(pl, first, n, start, regs, NULL);
		free(regs);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	static struct plan zero;
	struct fuzz_in in = {data, size};
	struct plan pl = zero;
	size_t n;

	pl.table = (enum mb_table)(fuzz_u8(&in) % MB_TABLE_COUNT);
	pl.max_gap = fuzz_u8(&in) % 64;
	n = fuzz_u8(&in);
	pl.max_count = mb_table_is_bits(pl.table) ? 1 + (n * 8) % MAX_BITS : 1 + n % MAX_REGISTERS;
	n = 1 + fuzz_u8(&in) % MAX_POINTS;
	make_points(&pl, &in, n);
	if (pl.n_points == 0)
		return 0;
	/* A point longer than a request is refused by the config (max_registers). */
	for (size_t i = 0; i < pl.n_points; i++)
		if (pl.points[i].nregs > pl.max_count)
			pl.max_count = pl.points[i].nregs;
	make_spans(&pl);

	/* A few poll cycles: each one's splits shape the next plan, as apply_splits() does. */
	for (int cycle = 0; cycle < 4 && in.n > 0; cycle++) {
		pl.n_blocks =
		    mb_plan(pl.spans, pl.n_spans, pl.breaks, pl.max_gap, pl.max_count, pl.blocks);
		check_plan(&pl);
		for (size_t i = 0; i < pl.n_points; i++)
			pl.points[i].read = false;
		memset(pl.new_breaks, 0, sizeof(pl.new_breaks));
		pl.down = false;
		for (size_t b = 0; b < pl.n_blocks; b++)
			read_range(&pl, &in, pl.blocks[b].first, pl.blocks[b].n);
		/* Every point got a value or a failure, exactly once. */
		for (size_t i = 0; i < pl.n_points; i++)
			FUZZ_ASSERT(pl.points[i].read);
		for (size_t s = 0; s < pl.n_spans; s++)
			pl.breaks[s] = pl.breaks[s] || pl.new_breaks[s];
	}
	return 0;
}
