/* SPDX-License-Identifier: MIT */
/*
 * The Modbus driver's own code on a device's answers: the input lays out
 * a device's points, the driver is created from them on the fake host
 * (tests/plugin/fake-host.h) with its real config parsing and planner, and
 * a few poll cycles run through its real bus work (mb-io.c: read_range,
 * bisecting on exception 02, decode_span) and loop side (mb-poll.c:
 * submits, remembered splits, device up and down). Only the wire is the
 * input's: each request gets the answer the input says, through the
 * driver's I/O table (struct mb_io) in libmodbus's place.
 *
 * Invariants checked after each cycle: every request is one the protocol
 * allows (1..max items, inside the address space); every point got
 * exactly one reading or text; a good reading's addresses were all inside
 * a request that the device answered in that cycle, so nothing is decoded
 * from outside an answer; integers decode to finite values; and the plan
 * keeps every promise of mb-plan.h.
 *
 * Input: table, max_gap, max_count, point count; per point an address gap,
 * a type, an order and a bit or string length; then, for every request in
 * the order the poll sends them, one status byte and the answer's data
 * (status % 8: 0 exception 02, 1 no answer, 2 another exception, 3..7 an
 * answer; 0xff an answer that fails the checks).
 */
#include <math.h>
#include <stdbool.h>
#include <stddef.h>

#include "fake-host.h"
#include "fuzz-input.h"
#include "mb-driver.h"

#define MAX_POINTS 48
#define MAX_REQUESTS 512

struct layout {
	int table;
	uint32_t address[MAX_POINTS], nregs[MAX_POINTS];
	int type[MAX_POINTS], order[MAX_POINTS], bit[MAX_POINTS];
	size_t n;
	unsigned max_gap, max_count;
};

/* A request the device answered in the current cycle. */
struct answered {
	int fc, addr, count;
};

/* The scripted wire; the I/O table first, so that drv->io leads back here. */
struct wire {
	struct mb_io io;
	struct fuzz_in *in;
	struct answered ok[MAX_REQUESTS];
	size_t n_ok, n_requests;
	unsigned max_count;
	uint16_t image[65536]; /* what this cycle's answers said, by address */
};

static struct wire *wire_of(struct mb_driver *drv) {
	return (struct wire *)(void *)((char *)(uintptr_t)drv->io - offsetof(struct wire, io));
}

static int w_open(struct mb_driver *drv) {
	(void)drv;
	return 0;
}

static void w_close(struct mb_driver *drv) {
	(void)drv;
}

static void w_select(struct mb_driver *drv, const struct mb_device *dev) {
	(void)drv;
	(void)dev;
}

static int w_request(struct mb_driver *drv, const struct mb_device *dev, const struct mb_request *rq,
                     unsigned *requests) {
	struct wire *w = wire_of(drv);
	bool bits = rq->fc == FC_READ_COILS || rq->fc == FC_READ_DISCRETE_INPUTS;
	uint8_t status;

	(void)dev;
	FUZZ_ASSERT(rq->fc >= FC_READ_COILS && rq->fc <= FC_READ_INPUT_REGISTERS);
	FUZZ_ASSERT(rq->count >= 1 && (unsigned)rq->count <= w->max_count);
	FUZZ_ASSERT(rq->addr >= 0 && rq->addr + rq->count <= 65536);
	FUZZ_ASSERT(w->n_requests < MAX_REQUESTS);
	w->n_requests++;
	(*requests)++;
	status = fuzz_u8(w->in);
	if (status == 0xff)
		return -EMBBADDATA;
	switch (status % 8) {
	case 0:
		return -EMBXILADD;
	case 1:
		return -ETIMEDOUT;
	case 2:
		return -EMBXSFAIL;
	default:
		break;
	}
	for (int i = 0; i < rq->count; i++) {
		if (bits) {
			if (i % 8 == 0)
				status = fuzz_u8(w->in);
			rq->bits[i] = (status >> (i % 8)) & 1;
			w->image[rq->addr + i] = rq->bits[i];
		} else {
			rq->regs[i] = fuzz_u16(w->in);
			w->image[rq->addr + i] = rq->regs[i];
		}
	}
	w->ok[w->n_ok++] = (struct answered){rq->fc, rq->addr, rq->count};
	return 0;
}

/* Lays out non-overlapping points in address order, as parse_point and check_overlaps allow. */
static void make_points(struct layout *l, struct fuzz_in *in, size_t n) {
	bool bits = mb_table_is_bits(l->table);
	uint32_t next = fuzz_u16(in) % 1024;

	for (size_t i = 0; i < n; i++) {
		size_t k = l->n;
		uint8_t gap = fuzz_u8(in), t = fuzz_u8(in), o = fuzz_u8(in), arg = fuzz_u8(in);

		l->type[k] = bits ? MB_BOOL : t % MB_TYPE_COUNT;
		l->order[k] = o % MB_ORDER_COUNT;
		if (!mb_order_valid(l->type[k], l->order[k]))
			l->order[k] = MB_ABCD;
		l->bit[k] = !bits && l->type[k] == MB_BOOL ? arg % 16 : -1;
		l->nregs[k] = bits ? 1 : mb_type_registers(l->type[k], 1 + arg % 8);
		/* Bits of one register: a bool whose gap byte is odd joins the previous one's. */
		if (l->bit[k] >= 0 && k > 0 && l->bit[k - 1] >= 0 && l->bit[k - 1] < l->bit[k] && (gap & 1))
			l->address[k] = l->address[k - 1];
		else
			l->address[k] = next + gap % 32;
		if (l->address[k] + l->nregs[k] > 65536)
			return;
		next = l->address[k] + l->nregs[k];
		l->n++;
	}
}

/* The driver's section for the layout: one device, one interval. */
static cJSON *make_config(const struct layout *l) {
	cJSON *c = cJSON_CreateObject(), *devs = cJSON_AddArrayToObject(c, "devices");
	cJSON *dev = cJSON_CreateObject(), *pts;

	cJSON_AddStringToObject(c, "host", "127.0.0.1");
	cJSON_AddStringToObject(c, "backoff_max", "100ms");
	cJSON_AddNumberToObject(c, "max_gap", l->max_gap);
	cJSON_AddNumberToObject(c, "max_gap_bits", l->max_gap);
	cJSON_AddItemToArray(devs, dev);
	cJSON_AddStringToObject(dev, "name", "dev");
	cJSON_AddNumberToObject(dev, mb_table_is_bits(l->table) ? "max_bits" : "max_registers",
	                        l->max_count);
	pts = cJSON_AddArrayToObject(dev, "points");
	for (size_t i = 0; i < l->n; i++) {
		cJSON *p = cJSON_CreateObject();
		char name[24]; /* "p" and any size_t */

		snprintf(name, sizeof(name), "p%zu", i);
		cJSON_AddStringToObject(p, "name", name);
		cJSON_AddStringToObject(p, "table", mb_table_names[l->table]);
		cJSON_AddNumberToObject(p, "address", l->address[i]);
		cJSON_AddStringToObject(p, "type", mb_type_names[l->type[i]]);
		if (l->bit[i] >= 0)
			cJSON_AddNumberToObject(p, "bit", l->bit[i]);
		if (!mb_table_is_bits(l->table) && l->type[i] != MB_BOOL)
			cJSON_AddStringToObject(p, "order", mb_order_names[l->order[i]]);
		if (l->type[i] == MB_STRING) {
			cJSON_AddNumberToObject(p, "length", l->nregs[i]);
			cJSON_AddStringToObject(p, "kind", "string");
		}
		cJSON_AddItemToArray(pts, p);
	}
	return c;
}

/* What mb-plan.h promises about a plan. */
static void check_plan(const struct mb_table_plan *tp) {
	uint32_t next_span = 0;

	FUZZ_ASSERT(tp->n_blocks >= 1 && tp->n_blocks <= tp->n_spans);
	for (size_t b = 0; b < tp->n_blocks; b++) {
		const struct mb_block *k = &tp->blocks[b];
		const struct mb_span *first = &tp->spans[k->first];
		const struct mb_span *last = &tp->spans[k->first + k->n - 1];

		FUZZ_ASSERT(k->first == next_span && k->n >= 1);
		FUZZ_ASSERT(k->first + k->n <= tp->n_spans);
		FUZZ_ASSERT(k->start == first->start);
		FUZZ_ASSERT(k->count == last->start + last->count - first->start);
		FUZZ_ASSERT(k->count >= 1 && k->count <= tp->max_count);
		for (uint32_t s = k->first + 1; s < k->first + k->n; s++) {
			FUZZ_ASSERT(!tp->breaks[s]);
			FUZZ_ASSERT(tp->spans[s].start - (tp->spans[s - 1].start + tp->spans[s - 1].count) <=
			            tp->max_gap);
		}
		/* Greedy: the next span would not have fitted. */
		if (b + 1 < tp->n_blocks) {
			const struct mb_span *nx = &tp->spans[k->first + k->n];

			FUZZ_ASSERT(tp->breaks[k->first + k->n] ||
			            nx->start - (last->start + last->count) > tp->max_gap ||
			            nx->start + nx->count - k->start > tp->max_count);
		}
		next_span = k->first + k->n;
	}
	FUZZ_ASSERT(next_span == tp->n_spans);
}

/* True when P's addresses were all inside one request the device answered. */
static bool answered(const struct wire *w, const struct mb_point *p) {
	for (size_t i = 0; i < w->n_ok; i++) {
		const struct answered *a = &w->ok[i];

		if (p->address >= (uint32_t)a->addr &&
		    p->address + p->nregs <= (uint32_t)(a->addr + a->count))
			return true;
	}
	return false;
}

/* P's value as the codec decodes it from what the device answered. */
static double expected(const struct wire *w, const struct mb_point *p) {
	if (mb_table_is_bits(p->table))
		return w->image[p->address] ? 1.0 : 0.0;
	if (p->type == MB_BOOL)
		return mb_decode_bit(w->image[p->address], (unsigned)p->bit);
	return mb_decode(p->type, p->order, &w->image[p->address]);
}

static bool same(double a, double b) {
	return a == b || (isnan(a) && isnan(b));
}

/*
 * After one cycle: one value per point, each good one from inside an
 * answer and equal to what the codec makes of that answer at the point's
 * address (so a decode from the wrong offset is caught too).
 */
static void check_cycle(const m2m_host *h, const struct mb_driver *drv, const struct wire *w,
                        size_t readings_before, size_t texts_before) {
	for (size_t i = 0; i < drv->n_points; i++) {
		const struct mb_point *p = &drv->points[i];
		size_t n = 0;
		int quality = -1;
		const char *text = NULL;
		char want[MB_TEXT_MAX];
		double v = 0;

		if (p->type == MB_STRING) {
			for (size_t t = texts_before; t < h->n_texts; t++)
				if (h->texts[t].point == p->id) {
					n++;
					quality = h->texts[t].quality;
					text = h->texts[t].text;
				}
		} else {
			for (size_t r = readings_before; r < h->n_readings; r++)
				if (h->readings[r].point == p->id) {
					n++;
					quality = h->readings[r].quality;
					v = h->readings[r].value;
				}
		}
		FUZZ_ASSERT(n == 1);
		if (quality != M2M_QUALITY_GOOD)
			continue;
		FUZZ_ASSERT(answered(w, p));
		if (p->type == MB_STRING) {
			mb_decode_string(&w->image[p->address], p->nregs, p->order, want, sizeof(want));
			FUZZ_ASSERT(strcmp(text, want) == 0);
			continue;
		}
		FUZZ_ASSERT(same(v, expected(w, p)));
		if (p->type != MB_FLOAT32 && p->type != MB_FLOAT64)
			FUZZ_ASSERT(isfinite(v));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	struct fuzz_in in = {data, size};
	struct layout l = {0};
	struct wire *w;
	struct mb_driver *drv;
	m2m_host *h;
	void *d = NULL;
	size_t n;
	int r;

	l.table = fuzz_u8(&in) % MB_TABLE_COUNT;
	l.max_gap = fuzz_u8(&in) % 64;
	n = fuzz_u8(&in);
	l.max_count = mb_table_is_bits(l.table) ? 1 + (n * 8) % MB_MAX_READ_BITS
	                                        : 1 + n % MB_MAX_READ_REGISTERS;
	n = 1 + fuzz_u8(&in) % MAX_POINTS;
	make_points(&l, &in, n);
	if (l.n == 0)
		return 0;
	/* A point longer than a request is refused by the config (max_registers). */
	for (size_t i = 0; i < l.n; i++)
		if (l.nregs[i] > l.max_count)
			l.max_count = l.nregs[i];
	w = calloc(1, sizeof(*w));
	FUZZ_ASSERT(w);
	*w = (struct wire){.io = {w_open, w_close, w_select, w_request}, .in = &in,
	                   .max_count = l.max_count};

	h = fake_host_new();
	r = fake_host_create_tree(h, &mb_driver_ops, fake_host_api(1), make_config(&l), &d);
	/* Whatever make_points lays out, the config accepts, and reads every key of. */
	FUZZ_ASSERT(r == 0);
	FUZZ_ASSERT(fake_host_unknown_keys(h) == 0);
	drv = d;
	drv->io = &w->io;
	FUZZ_ASSERT(drv->n_groups == 1);
	FUZZ_ASSERT(mb_driver_ops.start(drv) == 0);

	/* A few poll cycles: each one's splits shape the next plan. */
	for (int cycle = 0; cycle < 4 && in.n > 0; cycle++) {
		size_t readings = h->n_readings, texts = h->n_texts;
		int ran = h->work_run;

		check_plan(&drv->groups[0].plans[l.table]);
		w->n_ok = 0;
		/* The first poll is due at once, the next after the interval (or the backoff). */
		fake_host_advance(h, cycle ? US_PER_S : 0);
		FUZZ_ASSERT(h->n_work == 0);
		if (h->work_run == ran)
			continue;
		check_cycle(h, drv, w, readings, texts);
	}
	mb_driver_ops.destroy(drv);
	fake_host_free(h);
	free(w);
	return 0;
}
