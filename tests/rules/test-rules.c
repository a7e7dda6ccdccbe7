/* SPDX-License-Identifier: MIT */
/*
 * The rules engine against a controllable clock: every condition, the
 * dynamics (hysteresis, raise and clear delays, cooldown, latch and ack),
 * stale detection, patterns, actions, restore from a real SQLite events
 * table, reload and config errors. Deterministic: no sleeps, no threads.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "config.h"
#include "point.h"
#include "rules.h"
#include "store.h"
#include "test.h"

#define SEC 1000000LL
#define MAX_REC 256

struct rec {
	char kind[16], source[64], from[16], to[16], text[512];
	uint32_t point;
	double value;
};

struct h {
	registry *reg;
	rules *r;
	int64_t mono, wall;
	struct rec ev[MAX_REC];
	int n_ev;
	/* writes the fake daemon received */
	char wpoint[MAX_REC][64];
	double wvalue[MAX_REC];
	int n_w;
	int write_result;   /* returned at once (refusal) when < 0 */
	bool write_async;   /* else the callback runs before write() returns */
	void (*pending_cb)(int, const char *, void *);
	void *pending_arg;
	/* publishes */
	char topic[MAX_REC][128], payload[MAX_REC][512];
	int n_pub;
};

static void on_event(void *ctx, const struct store_event *e) {
	struct h *h = ctx;
	struct rec *r;

	ASSERT_LT(h->n_ev, MAX_REC);
	r = &h->ev[h->n_ev++];
	snprintf(r->kind, sizeof(r->kind), "%s", e->kind);
	snprintf(r->source, sizeof(r->source), "%s", e->source ? e->source : "");
	snprintf(r->from, sizeof(r->from), "%s", e->from_state ? e->from_state : "");
	snprintf(r->to, sizeof(r->to), "%s", e->to_state ? e->to_state : "");
	snprintf(r->text, sizeof(r->text), "%s", e->text ? e->text : "");
	r->point = e->point;
	r->value = e->value;
	ASSERT_EQ(e->ts_us, h->wall);
}

static int on_write(void *ctx, const char *origin, const char *point, double value,
                    void (*cb)(int, const char *, void *), void *arg) {
	struct h *h = ctx;

	ASSERT(strncmp(origin, "rule:", 5) == 0);
	if (h->write_result < 0)
		return h->write_result;
	ASSERT_LT(h->n_w, MAX_REC);
	snprintf(h->wpoint[h->n_w], sizeof(h->wpoint[0]), "%s", point);
	h->wvalue[h->n_w++] = value;
	if (h->write_async) {
		ASSERT(!h->pending_cb);
		h->pending_cb = cb;
		h->pending_arg = arg;
	} else {
		cb(0, NULL, arg);
	}
	return 0;
}

static int on_publish(void *ctx, const char *topic, const char *payload, int qos, bool retain) {
	struct h *h = ctx;

	ASSERT_LT(h->n_pub, MAX_REC);
	snprintf(h->topic[h->n_pub], sizeof(h->topic[0]), "%s", topic);
	snprintf(h->payload[h->n_pub], sizeof(h->payload[0]), "%s", payload);
	h->n_pub++;
	return 0;
}

static int64_t wall_clock(void *ctx) {
	return ((struct h *)ctx)->wall;
}

static struct point *add_point(registry *reg, const char *name, int kind, bool writable,
                               double min, double max) {
	uint32_t id;
	struct point *p;

	ASSERT_OK(registry_intern(reg, name, &id, NULL));
	p = registry_get(reg, id);
	ASSERT(p);
	p->declared = true;
	p->a.kind = kind;
	p->a.writable = writable;
	p->a.min = min;
	p->a.max = max;
	p->a.scale = 1;
	free(p->a.unit);
	p->a.unit = strdup(kind == POINT_NUMBER ? "degC" : "");
	ASSERT(p->a.unit);
	return p;
}

static registry *make_registry(void) {
	registry *reg;

	ASSERT_OK(registry_new(&reg));
	add_point(reg, "b1/temp", POINT_NUMBER, false, NAN, NAN);
	add_point(reg, "b2/temp", POINT_NUMBER, false, NAN, NAN);
	add_point(reg, "b1/burner", POINT_BOOL, true, NAN, NAN);
	add_point(reg, "b1/valve", POINT_NUMBER, true, 0, 100);
	add_point(reg, "b1/press", POINT_NUMBER, false, NAN, NAN);
	add_point(reg, "b1/serial", POINT_STRING, false, NAN, NAN);
	return reg;
}

/* Parses TOML the way the daemon does: rules, then unknown keys. */
static int parse(registry *reg, const char *toml, rules_conf **ret, char **ret_error) {
	config *c;
	int err;

	*ret_error = NULL;
	err = config_load_string(toml, "test.toml", &c, ret_error);
	if (err < 0)
		return err;
	err = rules_conf_parse(c, config_root(c), reg, ret);
	if (err == 0 && (err = config_check_unknown(c, config_root(c))) < 0) {
		rules_conf_free(*ret);
		*ret = NULL;
	}
	if (err < 0)
		*ret_error = strdup(config_last_error(c) ? config_last_error(c) : "?");
	config_free(c);
	return err;
}

/* EXTRA more number points "sNNN/temp" beside the usual ones. */
static struct h *setup_n(const char *toml, int extra) {
	struct h *h = calloc(1, sizeof(*h));
	rules_conf *rc;
	char *error;

	ASSERT(h);
	h->reg = make_registry();
	for (int i = 0; i < extra; i++) {
		char name[32];
		snprintf(name, sizeof(name), "s%03d/temp", i);
		add_point(h->reg, name, POINT_NUMBER, false, NAN, NAN);
	}
	h->mono = 1000 * SEC;
	h->wall = 1700000000 * SEC;
	if (parse(h->reg, toml, &rc, &error) < 0)
		TEST_FAIL("config: %s", error);
	ASSERT(rc);
	struct rules_env env = {
		.ctx = h, .reg = h->reg, .event = on_event, .write = on_write, .publish = on_publish,
		.gateway_id = "gw-t",
	};
	ASSERT_OK(rules_new(&env, rc, h->mono, &h->r));
	rules_set_wall_clock(h->r, wall_clock, h);
	return h;
}

static struct h *setup(const char *toml) {
	return setup_n(toml, 0);
}

static void teardown(struct h *h) {
	rules_free(h->r);
	registry_free(h->reg);
	free(h);
}

static void feed_q(struct h *h, const char *name, double v, int quality) {
	struct point *p = registry_find(h->reg, name);
	struct m2m_reading rd = { .ts_us = h->wall, .value = v, .point = p->id, .quality = (uint16_t)quality };

	ASSERT(p);
	rules_on_reading(h->r, p, &rd, h->mono);
}

static void feed(struct h *h, const char *name, double v) {
	feed_q(h, name, v, M2M_QUALITY_GOOD);
}

/* Moves both clocks and runs what fell due, as the daemon's timer would. */
static void tick(struct h *h, int64_t us) {
	int64_t end = h->mono + us;

	/* Step through every deadline on the way, at its own time. */
	while (rules_next_deadline(h->r) <= end) {
		int64_t d = rules_next_deadline(h->r);
		if (d > h->mono) {
			h->wall += d - h->mono;
			h->mono = d;
		}
		rules_advance(h->r, h->mono);
	}
	h->wall += end - h->mono;
	h->mono = end;
	rules_advance(h->r, h->mono);
}

/* The state of RULE on POINT: "normal" unless status lists it. */
static const char *state(struct h *h, const char *rule, const char *point) {
	static char buf[16];
	cJSON *arr = rules_status_json(h->r, false), *o;

	snprintf(buf, sizeof(buf), "normal");
	cJSON_ArrayForEach(o, arr) {
		if (strcmp(cJSON_GetObjectItem(o, "rule")->valuestring, rule) == 0 &&
		    strcmp(cJSON_GetObjectItem(o, "point")->valuestring, point) == 0)
			snprintf(buf, sizeof(buf), "%s", cJSON_GetObjectItem(o, "state")->valuestring);
	}
	cJSON_Delete(arr);
	return buf;
}

static int count_kind(struct h *h, const char *kind, const char *to) {
	int n = 0;
	for (int i = 0; i < h->n_ev; i++)
		if (strcmp(h->ev[i].kind, kind) == 0 && (!to || strcmp(h->ev[i].to, to) == 0))
			n++;
	return n;
}

static const struct rec *last(struct h *h, const char *kind) {
	for (int i = h->n_ev - 1; i >= 0; i--)
		if (strcmp(h->ev[i].kind, kind) == 0)
			return &h->ev[i];
	TEST_FAIL("no %s event", kind);
}

#define RULE(name, point, cond, extra) \
	"[[rules]]\nname = \"" name "\"\npoint = \"" point "\"\ncondition = \"" cond "\"\n" extra "\n"

/* One rule, one point: VALUES in order, each expected to leave STATES. */
static void run_cond(const char *extra_toml, const char *cond, const double *values, const char *const *states,
                     int n) {
	char toml[1024];
	struct h *h;

	snprintf(toml, sizeof(toml), RULE("r", "b1/temp", "%s", "%s"), cond, extra_toml);
	h = setup(toml);
	for (int i = 0; i < n; i++) {
		tick(h, SEC);
		feed(h, "b1/temp", values[i]);
		if (strcmp(state(h, "r", "b1/temp"), states[i]) != 0)
			TEST_FAIL("%s %s: after %g expected %s, got %s", cond, extra_toml, values[i], states[i],
			          state(h, "r", "b1/temp"));
	}
	teardown(h);
}

#define RUN(extra, cond, ...)                                                      \
	do {                                                                       \
		const double v_[] = { __VA_ARGS__ };                               \
		run_cond(extra, cond, v_, st_, (int)(sizeof(v_) / sizeof(v_[0]))); \
	} while (0)

static void test_conditions(void) {
	{
		const char *const st_[] = { "normal", "normal", "active", "normal" };
		RUN("value = 85", ">", 10, 85, 85.1, 85);
	}
	{
		const char *const st_[] = { "normal", "active", "active", "normal" };
		RUN("value = 85", ">=", 10, 85, 90, 84.9);
	}
	{
		const char *const st_[] = { "normal", "normal", "active", "normal" };
		RUN("value = 5", "<", 10, 5, 4.9, 5);
	}
	{
		const char *const st_[] = { "normal", "active", "normal" };
		RUN("value = 5", "<=", 10, 5, 5.1);
	}
	{
		const char *const st_[] = { "normal", "active", "normal" };
		RUN("value = 1", "==", 0, 1, 2);
	}
	{
		const char *const st_[] = { "normal", "active", "normal" };
		RUN("value = 1", "!=", 1, 0, 1);
	}
	{
		const char *const st_[] = { "normal", "active", "normal", "active", "normal" };
		RUN("low = 10\nhigh = 20", "outside", 15, 9, 10, 21, 20);
	}
	{
		const char *const st_[] = { "normal", "active", "active", "normal" };
		RUN("low = 10\nhigh = 20", "inside", 9, 10, 20, 20.5);
	}
	{
		/* One reading a second: the rate is the difference. */
		const char *const st_[] = { "normal", "normal", "active", "active", "normal" };
		RUN("rate = 2", "rate_above", 10, 11, 14, 16.5, 17);
	}
	{
		const char *const st_[] = { "normal", "normal", "active" };
		RUN("rate = 60\nrate_per = \"min\"", "rate_above", 0, 1, 3);
	}
	{
		const char *const st_[] = { "normal", "active", "normal" };
		RUN("rate = -1", "rate_below", 10, 8, 8);
	}
	{
		/* Hysteresis: raise above 85, clear only at or below 80... below 80. */
		const char *const st_[] = { "normal", "active", "active", "active", "normal", "normal", "active" };
		RUN("value = 85\nclear = 80", ">", 84, 86, 82, 80, 79.9, 85, 86);
	}
	{
		const char *const st_[] = { "active", "active", "normal" };
		RUN("low = 10\nhigh = 20\nhysteresis = 2", "outside", 21, 19, 17.9);
	}
	{
		const char *const st_[] = { "normal", "active", "normal" };
		RUN("value = 5\nclear = 7", "<", 6, 4, 7.5);
	}
	{
		/* inside with hysteresis: raised within [10, 20], held until outside [8, 22]. */
		const char *const st_[] = { "normal", "active", "active", "active", "normal" };
		RUN("low = 10\nhigh = 20\nhysteresis = 2", "inside", 9, 10, 21, 8, 7.9);
	}
	{
		/* rate_below with a clear rate: raised below -1/s, cleared only above -0.5/s. */
		const char *const st_[] = { "normal", "active", "active", "normal" };
		RUN("rate = -1\nclear = -0.5", "rate_below", 10, 8, 7.4, 7.3);
	}
	{
		/* A latched alarm comes back on the raise condition, not between clear and raise. */
		const char *const st_[] = { "active", "latched", "latched", "active" };
		RUN("value = 85\nclear = 80\nlatch = true", ">", 90, 70, 82, 86);
	}
	{
		/* == holds while equal and only then. */
		const char *const st_[] = { "normal", "active", "active", "normal" };
		RUN("value = 0", "==", 1, 0, 0, 1);
	}
	/* Bad quality: raise while the quality is bad, value ignored by other rules. */
	struct h *h = setup(RULE("q", "b1/temp", "bad_quality", "") RULE("hi", "b1/temp", ">", "value = 50"));
	feed(h, "b1/temp", 10);
	ASSERT_STR_EQ(state(h, "q", "b1/temp"), "normal");
	feed_q(h, "b1/temp", 99, M2M_QUALITY_TIMEOUT);
	ASSERT_STR_EQ(state(h, "q", "b1/temp"), "active");
	ASSERT_STR_EQ(state(h, "hi", "b1/temp"), "normal");
	/* An out-of-range value is still a measurement: limit alarms see it. */
	feed_q(h, "b1/temp", 99, M2M_QUALITY_OUT_OF_RANGE);
	ASSERT_STR_EQ(state(h, "hi", "b1/temp"), "active");
	ASSERT_STR_EQ(state(h, "q", "b1/temp"), "active");
	feed(h, "b1/temp", 10);
	ASSERT_STR_EQ(state(h, "q", "b1/temp"), "normal");
	ASSERT_STR_EQ(state(h, "hi", "b1/temp"), "normal");
	/* NaN with good quality decides nothing. */
	feed(h, "b1/temp", 60);
	feed(h, "b1/temp", NAN);
	ASSERT_STR_EQ(state(h, "hi", "b1/temp"), "active");
	teardown(h);
}

static void test_delays(void) {
	struct h *h = setup(RULE("hi", "b1/temp", ">", "value = 85\nfor = \"10s\"\nclear_for = \"5s\""));
	const struct rec *e;

	ASSERT_EQ(rules_next_deadline(h->r), INT64_MAX);
	feed(h, "b1/temp", 90);
	ASSERT_STR_EQ(state(h, "hi", "b1/temp"), "pending");
	ASSERT_EQ(rules_next_deadline(h->r), h->mono + 10 * SEC);
	e = last(h, "rule");
	ASSERT_STR_EQ(e->from, "normal");
	ASSERT_STR_EQ(e->to, "pending");
	ASSERT_STR_EQ(e->source, "hi");
	ASSERT_EQ(e->point, registry_find(h->reg, "b1/temp")->id);
	ASSERT_DOUBLE_EQ(e->value, 90, 0);
	ASSERT_STR_CONTAINS(e->text, "b1/temp (> 85)");
	tick(h, 5 * SEC);
	feed(h, "b1/temp", 84);
	ASSERT_STR_EQ(state(h, "hi", "b1/temp"), "normal");
	ASSERT_STR_EQ(last(h, "rule")->from, "pending");
	/* The old deadline passes without effect. */
	tick(h, 6 * SEC);
	ASSERT_STR_EQ(state(h, "hi", "b1/temp"), "normal");
	feed(h, "b1/temp", 90);
	tick(h, 10 * SEC - 1);
	ASSERT_STR_EQ(state(h, "hi", "b1/temp"), "pending");
	tick(h, 1);
	ASSERT_STR_EQ(state(h, "hi", "b1/temp"), "active");
	ASSERT_EQ(rules_next_deadline(h->r), INT64_MAX);
	/* Clear delay: cancelled when the condition comes back, completes otherwise. */
	feed(h, "b1/temp", 80);
	ASSERT_EQ(rules_next_deadline(h->r), h->mono + 5 * SEC);
	tick(h, 4 * SEC);
	feed(h, "b1/temp", 90);
	tick(h, 2 * SEC);
	ASSERT_STR_EQ(state(h, "hi", "b1/temp"), "active");
	feed(h, "b1/temp", 80);
	tick(h, 5 * SEC);
	ASSERT_STR_EQ(state(h, "hi", "b1/temp"), "normal");
	ASSERT_EQ(count_kind(h, "rule", "active"), 1);
	ASSERT_EQ(count_kind(h, "rule", "normal"), 2);
	teardown(h);
}

static void test_cooldown(void) {
	struct h *h = setup(RULE("hi", "b1/temp", ">", "value = 85\ncooldown = \"1min\"\n"
	                                               "on_raise = [ { log = \"hot {point}\" } ]"));
	int64_t raised;

	feed(h, "b1/temp", 90);
	raised = h->mono;
	ASSERT_STR_EQ(state(h, "hi", "b1/temp"), "active");
	tick(h, 10 * SEC);
	feed(h, "b1/temp", 80);
	ASSERT_STR_EQ(state(h, "hi", "b1/temp"), "normal");
	tick(h, 10 * SEC);
	/* Back within the cooldown: held in pending until a minute after the last raise. */
	feed(h, "b1/temp", 90);
	ASSERT_STR_EQ(state(h, "hi", "b1/temp"), "pending");
	ASSERT_EQ(rules_next_deadline(h->r), raised + 60 * SEC);
	tick(h, raised + 60 * SEC - h->mono);
	ASSERT_STR_EQ(state(h, "hi", "b1/temp"), "active");
	ASSERT_EQ(count_kind(h, "rule", "active"), 2);
	teardown(h);
}

static void test_latch(void) {
	struct h *h = setup(RULE("hi", "b1/temp", ">", "value = 85\nlatch = true\nseverity = \"critical\"\n"
	                                               "on_clear = [ { write = { point = \"b1/burner\", value = 1, rate_limit = \"0\" } } ]"));

	ASSERT_EQ(rules_ack(h->r, "nope", NULL), -ENOENT);
	ASSERT_EQ(rules_ack(h->r, "hi", "b1/press"), -ENOENT);
	ASSERT_EQ(rules_ack(h->r, "hi", NULL), 0);
	feed(h, "b1/temp", 90);
	ASSERT_STR_EQ(state(h, "hi", "b1/temp"), "active");
	feed(h, "b1/temp", 50);
	ASSERT_STR_EQ(state(h, "hi", "b1/temp"), "latched");
	ASSERT_EQ(h->n_w, 0);
	/* Back while latched: active again, without a second raise. */
	feed(h, "b1/temp", 90);
	ASSERT_STR_EQ(state(h, "hi", "b1/temp"), "active");
	feed(h, "b1/temp", 50);
	ASSERT_EQ(rules_ack(h->r, "hi", "b1/temp"), 1);
	ASSERT_STR_EQ(state(h, "hi", "b1/temp"), "normal");
	ASSERT_STR_EQ(last(h, "rule")->text, "critical: b1/temp (> 85): acknowledged");
	ASSERT_EQ(h->n_w, 1);
	ASSERT_STR_EQ(h->wpoint[0], "b1/burner");
	/* Acknowledged while still active: it clears like an unlatched alarm. */
	feed(h, "b1/temp", 90);
	ASSERT_EQ(rules_ack(h->r, "hi", NULL), 1);
	ASSERT_STR_EQ(state(h, "hi", "b1/temp"), "acked");
	ASSERT_EQ(rules_ack(h->r, "hi", NULL), 0);
	feed(h, "b1/temp", 50);
	ASSERT_STR_EQ(state(h, "hi", "b1/temp"), "normal");
	ASSERT_EQ(h->n_w, 2);
	teardown(h);
}

static void test_stale_and_patterns(void) {
	struct h *h = setup(RULE("quiet", "*/temp", "stale", "stale_after = \"30s\"")
	                    RULE("hot", "*/temp", ">", "value = 85"));

	/* Both instances wait on the heap from the start. */
	ASSERT_EQ(rules_next_deadline(h->r), h->mono + 30 * SEC);
	for (int i = 0; i < 5; i++) {
		tick(h, 10 * SEC);
		feed(h, "b1/temp", 20);
	}
	ASSERT_STR_EQ(state(h, "quiet", "b1/temp"), "normal");
	ASSERT_STR_EQ(state(h, "quiet", "b2/temp"), "active");
	ASSERT_EQ(count_kind(h, "rule", "active"), 1);
	/* The lazy key: b1's real deadline is 30 s after its last reading. */
	tick(h, 29 * SEC);
	ASSERT_STR_EQ(state(h, "quiet", "b1/temp"), "normal");
	tick(h, 1 * SEC);
	ASSERT_STR_EQ(state(h, "quiet", "b1/temp"), "active");
	feed(h, "b2/temp", 20);
	ASSERT_STR_EQ(state(h, "quiet", "b2/temp"), "normal");
	/* A bad reading is no sign of life. */
	tick(h, 20 * SEC);
	feed_q(h, "b2/temp", 20, M2M_QUALITY_TIMEOUT);
	tick(h, 10 * SEC);
	ASSERT_STR_EQ(state(h, "quiet", "b2/temp"), "active");
	/* Patterns keep a state per point. */
	feed(h, "b1/temp", 90);
	ASSERT_STR_EQ(state(h, "hot", "b1/temp"), "active");
	ASSERT_STR_EQ(state(h, "hot", "b2/temp"), "normal");
	ASSERT_STR_EQ(state(h, "quiet", "b1/temp"), "normal");
	teardown(h);
}

/*
 * The deadline heap against a model: 300 points under one stale rule get
 * readings at random times; after every step each point is stale exactly
 * when its last good reading is 10 s old or more.
 */
static void test_stale_model(void) {
	enum { N = 300 };
	struct h *h = setup_n(RULE("quiet", "s*/temp", "stale", "stale_after = \"10s\""), N);
	int64_t last[N];
	uint64_t x = 88172645463325252u;

	for (int i = 0; i < N; i++)
		last[i] = h->mono;
	for (int step = 0; step < 400; step++) {
		cJSON *arr, *o;
		int active = 0, expected = 0;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		tick(h, (int64_t)(x % (3 * SEC)) + 1);
		h->n_ev = 0;
		for (int i = 0; i < N; i++) {
			char name[32];
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			if (x % 8 != 0)
				continue;
			snprintf(name, sizeof(name), "s%03d/temp", i);
			feed(h, name, 1);
			last[i] = h->mono;
		}
		h->n_ev = 0;
		arr = rules_status_json(h->r, false);
		cJSON_ArrayForEach(o, arr) {
			int i = atoi(cJSON_GetObjectItem(o, "point")->valuestring + 1);
			ASSERT_STR_EQ(cJSON_GetObjectItem(o, "state")->valuestring, "active");
			if (h->mono - last[i] < 10 * SEC)
				TEST_FAIL("step %d: s%03d stale %lld us after its last reading", step, i,
				          (long long)(h->mono - last[i]));
			active++;
		}
		cJSON_Delete(arr);
		for (int i = 0; i < N; i++)
			expected += h->mono - last[i] >= 10 * SEC;
		ASSERT_EQ(active, expected);
	}
	teardown(h);
}

static void test_actions(void) {
	struct h *h = setup(
		RULE("hi", "b1/temp", ">", "value = 85\nclear = 80\n"
		     "on_raise = [ { write = { point = \"b1/burner\", value = false, rate_limit = \"10s\" } },\n"
		     "  { mqtt = { topic = \"{gateway}/alarms/{rule}\", qos = 1 } } ]\n"
		     "on_clear = [ { write = { point = \"b1/burner\", value = true, rate_limit = \"10s\" } },\n"
		     "  { mqtt = { topic = \"a/{point}\", payload = '{\"v\":{value},\"u\":\"{unit}\",\"s\":\"{state}\",\"t\":\"{ts}\",\"sev\":\"{severity}\"}', retain = true } } ]"));
	const struct rec *e;

	feed(h, "b1/temp", 90);
	ASSERT_EQ(h->n_w, 1);
	ASSERT_STR_EQ(h->wpoint[0], "b1/burner");
	ASSERT_DOUBLE_EQ(h->wvalue[0], 0, 0);
	ASSERT_EQ(count_kind(h, "action", "ok"), 2);
	ASSERT_EQ(h->n_pub, 1);
	ASSERT_STR_EQ(h->topic[0], "gw-t/alarms/hi");
	ASSERT_STR_EQ(h->payload[0], "{\"gateway\":\"gw-t\",\"rule\":\"hi\",\"point\":\"b1/temp\",\"state\":\"active\","
	                             "\"severity\":\"warning\",\"value\":90,\"unit\":\"degC\",\"ts\":\"2023-11-14T22:13:20.000Z\"}");
	/* Within the rate limit the clear's write is deferred, then sent at the limit. */
	tick(h, 2 * SEC);
	feed(h, "b1/temp", 70);
	ASSERT_EQ(h->n_w, 1);
	ASSERT_EQ(count_kind(h, "action", "deferred"), 1);
	ASSERT_STR_EQ(h->topic[1], "a/b1/temp");
	ASSERT_STR_EQ(h->payload[1], "{\"v\":70,\"u\":\"degC\",\"s\":\"normal\",\"t\":\"2023-11-14T22:13:22.000Z\",\"sev\":\"warning\"}");
	ASSERT_EQ(rules_next_deadline(h->r), h->mono + 8 * SEC);
	tick(h, 8 * SEC);
	ASSERT_EQ(h->n_w, 2);
	ASSERT_DOUBLE_EQ(h->wvalue[1], 1, 0);
	e = last(h, "action");
	ASSERT_STR_EQ(e->to, "ok");
	ASSERT_STR_EQ(e->text, "write b1/burner = 1: ok");
	ASSERT_EQ(e->point, registry_find(h->reg, "b1/burner")->id);
	/* A refusal is recorded as a failed action. */
	h->write_result = -EACCES;
	tick(h, 20 * SEC);
	feed(h, "b1/temp", 90);
	e = last(h, "action");
	ASSERT_STR_EQ(h->ev[h->n_ev - 2].to, "error");
	ASSERT_STR_CONTAINS(h->ev[h->n_ev - 2].text, "write b1/burner = 0: ");
	h->write_result = 0;
	/* An asynchronous write answers later; its result is recorded then. */
	h->write_async = true;
	tick(h, 20 * SEC);
	feed(h, "b1/temp", 70);
	ASSERT(h->pending_cb);
	int before = count_kind(h, "action", "error");
	h->pending_cb(-EIO, "device said no", h->pending_arg);
	h->pending_cb = NULL;
	ASSERT_EQ(count_kind(h, "action", "error"), before + 1);
	ASSERT_STR_EQ(last(h, "action")->text, "write b1/burner = 1: device said no");
	/* One still in flight when the engine goes away must not touch it. */
	tick(h, 20 * SEC);
	feed(h, "b1/temp", 90);
	ASSERT(h->pending_cb);
	rules_free(h->r);
	h->r = NULL;
	h->pending_cb(0, NULL, h->pending_arg);
	teardown(h);
}

static void test_mqtt_missing(void) {
	struct h *h = setup(RULE("hi", "b1/temp", ">", "value = 85\non_raise = [ { mqtt = { topic = \"t\" } } ]"));
	struct rules_env env = { .ctx = h, .reg = h->reg, .event = on_event, .write = on_write };
	rules_conf *rc;
	char *error;

	rules_free(h->r);
	ASSERT_OK(parse(h->reg, RULE("hi", "b1/temp", ">", "value = 85\non_raise = [ { mqtt = { topic = \"t\" } } ]"),
	                &rc, &error));
	ASSERT_OK(rules_new(&env, rc, h->mono, &h->r));
	rules_set_wall_clock(h->r, wall_clock, h);
	feed(h, "b1/temp", 90);
	ASSERT_STR_EQ(state(h, "hi", "b1/temp"), "active");
	ASSERT_STR_EQ(last(h, "action")->to, "error");
	ASSERT_STR_EQ(last(h, "action")->text, "mqtt t: MQTT is not configured");
	teardown(h);
}

/* {ts} after 2038: a 32-bit time_t (Debian's armhf default) would say 1903. */
static void test_ts_after_2038(void) {
	struct h *h = setup(RULE("hi", "b1/temp", ">", "value = 85\n"
	                         "on_raise = [ { mqtt = { topic = \"t\", payload = \"{ts}\" } } ]"));

	h->wall = 2214134055LL * SEC + 123456; /* 2040-02-29T13:14:15.123456Z */
	feed(h, "b1/temp", 90);
	ASSERT_EQ(h->n_pub, 1);
	ASSERT_STR_EQ(h->payload[0], "2040-02-29T13:14:15.123Z");
	teardown(h);
}

static void test_stale_delay_and_cooldown(void) {
	struct h *h = setup(RULE("quiet", "b1/temp", "stale", "stale_after = \"10s\"\nfor = \"5s\"")
	                    RULE("hi", "b1/press", ">", "value = 10\nfor = \"2s\"\ncooldown = \"30s\""));

	/* Stale after 10 s, then 5 s pending before the raise. */
	tick(h, 10 * SEC);
	ASSERT_STR_EQ(state(h, "quiet", "b1/temp"), "pending");
	tick(h, 5 * SEC - 1);
	ASSERT_STR_EQ(state(h, "quiet", "b1/temp"), "pending");
	tick(h, 1);
	ASSERT_STR_EQ(state(h, "quiet", "b1/temp"), "active");
	feed(h, "b1/temp", 1);
	ASSERT_STR_EQ(state(h, "quiet", "b1/temp"), "normal");
	/* A good reading during the delay takes it back to normal. */
	tick(h, 12 * SEC);
	ASSERT_STR_EQ(state(h, "quiet", "b1/temp"), "pending");
	feed(h, "b1/temp", 1);
	ASSERT_STR_EQ(state(h, "quiet", "b1/temp"), "normal");
	ASSERT_EQ(count_kind(h, "rule", "active"), 1);

	/* Raise delay and cooldown together: the later of the two wins. */
	feed(h, "b1/press", 11);
	tick(h, 2 * SEC);
	ASSERT_STR_EQ(state(h, "hi", "b1/press"), "active");
	int64_t raised = h->mono;
	feed(h, "b1/press", 5);
	tick(h, 1 * SEC);
	feed(h, "b1/press", 11);
	ASSERT_STR_EQ(state(h, "hi", "b1/press"), "pending");
	tick(h, raised + 30 * SEC - 1 - h->mono);
	ASSERT_STR_EQ(state(h, "hi", "b1/press"), "pending");
	tick(h, 1);
	ASSERT_STR_EQ(state(h, "hi", "b1/press"), "active");
	/* Long after the cooldown only the raise delay counts. */
	feed(h, "b1/press", 5);
	tick(h, 60 * SEC);
	feed(h, "b1/press", 11);
	tick(h, 2 * SEC - 1);
	ASSERT_STR_EQ(state(h, "hi", "b1/press"), "pending");
	tick(h, 1);
	ASSERT_STR_EQ(state(h, "hi", "b1/press"), "active");
	teardown(h);
}

static void test_ack_pattern(void) {
	struct h *h = setup(RULE("hot", "*/temp", ">", "value = 85\nlatch = true\n"
	                                               "on_clear = [ { write = { point = \"b1/burner\", value = 1 } } ]"));

	feed(h, "b1/temp", 90);
	feed(h, "b2/temp", 90);
	feed(h, "b1/temp", 20);
	ASSERT_STR_EQ(state(h, "hot", "b1/temp"), "latched");
	ASSERT_STR_EQ(state(h, "hot", "b2/temp"), "active");
	/* An ack of the rule covers every point: b1 ends, b2 is acknowledged. */
	ASSERT_EQ(rules_ack(h->r, "hot", NULL), 2);
	ASSERT_STR_EQ(state(h, "hot", "b1/temp"), "normal");
	ASSERT_STR_EQ(state(h, "hot", "b2/temp"), "acked");
	ASSERT_EQ(h->n_w, 1);
	/* Rate limits are per rule and point: b2's clear writes at once. */
	feed(h, "b2/temp", 20);
	ASSERT_STR_EQ(state(h, "hot", "b2/temp"), "normal");
	ASSERT_EQ(h->n_w, 2);
	/* b1's next ack within the 1 s default rate limit: its write is deferred, not lost. */
	feed(h, "b1/temp", 90);
	feed(h, "b1/temp", 20);
	ASSERT_EQ(rules_ack(h->r, "hot", "b1/temp"), 1);
	ASSERT_EQ(h->n_w, 2);
	ASSERT_EQ(last(h, "action")->point, registry_find(h->reg, "b1/burner")->id);
	ASSERT_STR_EQ(last(h, "action")->to, "deferred");
	ASSERT_EQ(rules_next_deadline(h->r), h->mono + SEC);
	tick(h, SEC);
	ASSERT_EQ(h->n_w, 3);
	ASSERT_STR_EQ(h->wpoint[2], "b1/burner");
	teardown(h);
}

static void test_template_escaping(void) {
	struct h *h = setup(
		RULE("hi", "b1/temp", ">", "value = 85\n"
		     "on_raise = [ { mqtt = { topic = \"u/{unit}/{point}\" } },\n"
		     "  { mqtt = { topic = \"t\", payload = \"unit={unit}\" } },\n"
		     "  { mqtt = { topic = \"t\", payload = ' [\"{unit}\", {value}]' } } ]"));
	struct point *p = registry_find(h->reg, "b1/temp");

	free(p->a.unit);
	p->a.unit = strdup("in\"Hg\\+#\n");
	ASSERT(p->a.unit);
	/* A value that 15 digits would round: the payload gives back the exact double. */
	feed(h, "b1/temp", 85.35381999999997);
	ASSERT_EQ(h->n_pub, 3);
	/* Topics never carry a wildcard; JSON payloads stay JSON; other text is as written. */
	ASSERT_STR_EQ(h->topic[0], "u/in\"Hg\\__\n/b1/temp");
	ASSERT_STR_CONTAINS(h->payload[0], "\"unit\":\"in\\\"Hg\\\\+#\\u000a\"");
	cJSON *doc = cJSON_Parse(h->payload[0]);
	ASSERT(doc);
	ASSERT_STR_EQ(cJSON_GetObjectItem(doc, "unit")->valuestring, "in\"Hg\\+#\n");
	cJSON_Delete(doc);
	ASSERT_STR_EQ(h->payload[1], "unit=in\"Hg\\+#\n");
	doc = cJSON_Parse(h->payload[2]);
	ASSERT(doc);
	ASSERT_STR_EQ(cJSON_GetArrayItem(doc, 0)->valuestring, "in\"Hg\\+#\n");
	cJSON_Delete(doc);
	ASSERT_STR_CONTAINS(h->payload[2], ", 85.35381999999997]");
	ASSERT(strtod(strchr(h->payload[2], ',') + 1, NULL) == 85.35381999999997);
	teardown(h);
}

static void test_reconfigure_ends_actions(void) {
	const char *burner = "on_raise = [ { write = { point = \"b1/burner\", value = 0, rate_limit = \"1min\" } } ]\n"
	                     "on_clear = [ { write = { point = \"b1/burner\", value = 1, rate_limit = \"1min\" } } ]";
	char toml[1024], toml2[1024];
	struct h *h;
	rules_conf *rc;
	char *error;

	snprintf(toml, sizeof(toml), RULE("thermo", "b1/temp", ">", "value = 85\n%s") RULE("other", "b2/temp", ">", "value = 85\n%s"),
	         burner, burner);
	h = setup(toml);
	feed(h, "b1/temp", 90);
	feed(h, "b2/temp", 90);
	ASSERT_EQ(h->n_w, 2);
	/* other clears within its rate limit: its write of 1 is deferred. */
	tick(h, SEC);
	feed(h, "b2/temp", 20);
	ASSERT_EQ(h->n_w, 2);
	ASSERT_EQ(count_kind(h, "action", "deferred"), 1);
	/* A reload changes thermo's threshold and removes other. */
	snprintf(toml2, sizeof(toml2), RULE("thermo", "b1/temp", ">", "value = 90\n%s"), burner);
	ASSERT_OK(parse(h->reg, toml2, &rc, &error));
	tick(h, SEC);
	ASSERT_OK(rules_reconfigure(h->r, rc, h->mono));
	/* The burner must not stay off with no rule left to switch it on: both writes go out now. */
	ASSERT_EQ(h->n_w, 4);
	ASSERT_DOUBLE_EQ(h->wvalue[2], 1, 0);
	ASSERT_DOUBLE_EQ(h->wvalue[3], 1, 0);
	ASSERT_STR_EQ(state(h, "thermo", "b1/temp"), "normal");
	ASSERT_STR_EQ(last(h, "rule")->text, "warning: b1/temp (> 85): rule removed or changed by a reload");
	/* Nothing is left in the heap for the old instances. */
	ASSERT_EQ(rules_next_deadline(h->r), INT64_MAX);
	/* The changed rule starts over and raises on its own threshold. */
	feed(h, "b1/temp", 89);
	ASSERT_STR_EQ(state(h, "thermo", "b1/temp"), "normal");
	feed(h, "b1/temp", 91);
	ASSERT_STR_EQ(state(h, "thermo", "b1/temp"), "active");
	ASSERT_EQ(h->n_w, 5);
	ASSERT_DOUBLE_EQ(h->wvalue[4], 0, 0);
	teardown(h);
}

static void test_reconfigure_to_no_rules(void) {
	const char *burner = "on_raise = [ { write = { point = \"b1/burner\", value = 0, rate_limit = \"1min\" } } ]\n"
	                     "on_clear = [ { write = { point = \"b1/burner\", value = 1, rate_limit = \"1min\" } } ]";
	char toml[1024];
	struct rules_stats st;
	cJSON *all;
	struct h *h;

	snprintf(toml, sizeof(toml), RULE("thermo", "b1/temp", ">", "value = 85\n%s") RULE("other", "b2/temp", ">", "value = 85\n%s"),
	         burner, burner);
	h = setup(toml);
	feed(h, "b1/temp", 90);
	feed(h, "b2/temp", 90);
	tick(h, SEC);
	feed(h, "b2/temp", 20);
	ASSERT_EQ(h->n_w, 2);
	ASSERT_EQ(count_kind(h, "action", "deferred"), 1);
	/* A reload to a config without [[rules]]: the same ending as removing both rules. */
	tick(h, SEC);
	ASSERT_OK(rules_reconfigure(h->r, NULL, h->mono));
	ASSERT_EQ(h->n_w, 4);
	ASSERT_DOUBLE_EQ(h->wvalue[2], 1, 0);
	ASSERT_DOUBLE_EQ(h->wvalue[3], 1, 0);
	ASSERT_EQ(count_kind(h, "action", "ok"), 4);
	ASSERT_STR_EQ(last(h, "rule")->text, "warning: b1/temp (> 85): rule removed or changed by a reload");
	ASSERT_EQ(count_kind(h, "rule", "normal"), 2);
	rules_get_stats(h->r, &st);
	ASSERT_EQ(st.rules, 0);
	ASSERT_EQ(st.instances, 0);
	ASSERT_EQ(st.active, 0);
	all = rules_status_json(h->r, true);
	ASSERT_EQ(cJSON_GetArraySize(all), 0);
	cJSON_Delete(all);
	ASSERT_EQ(rules_ack(h->r, "thermo", NULL), -ENOENT);
	ASSERT_EQ(rules_next_deadline(h->r), INT64_MAX);
	feed(h, "b1/temp", 95);
	ASSERT_EQ(h->n_w, 4);
	teardown(h);
}

static void test_reconfigure_keeps_holding_alarm(void) {
	const char *burner = "on_raise = [ { write = { point = \"b1/burner\", value = 0, rate_limit = \"1min\" } } ]\n"
	                     "on_clear = [ { write = { point = \"b1/burner\", value = 1, rate_limit = \"1min\" } } ]";
	char toml[1024];
	struct h *h;
	rules_conf *rc;
	char *error;

	snprintf(toml, sizeof(toml), RULE("thermo", "b1/temp", ">", "value = 85\nclear_for = \"10s\"\n%s"), burner);
	h = setup(toml);
	feed(h, "b1/temp", 90);
	ASSERT_EQ(h->n_w, 1);
	/* A clear delay is running when the reload comes. */
	feed(h, "b1/temp", 82);
	h->n_ev = 0;
	/* Changed (threshold 80, another severity) and 82 still holds by it: no clear, no second raise. */
	snprintf(toml, sizeof(toml), RULE("thermo", "b1/temp", ">", "value = 80\nseverity = \"critical\"\n%s"), burner);
	ASSERT_OK(parse(h->reg, toml, &rc, &error));
	tick(h, SEC);
	ASSERT_OK(rules_reconfigure(h->r, rc, h->mono));
	ASSERT_STR_EQ(state(h, "thermo", "b1/temp"), "active");
	ASSERT_EQ(h->n_ev, 0);
	ASSERT_EQ(h->n_w, 1);
	/* The clear delay of the old definition is gone with it. */
	tick(h, 20 * SEC);
	ASSERT_STR_EQ(state(h, "thermo", "b1/temp"), "active");
	/* The rate limit held across the reload: the clear's write waits for the end of the minute. */
	feed(h, "b1/temp", 70);
	ASSERT_STR_EQ(state(h, "thermo", "b1/temp"), "normal");
	ASSERT_EQ(h->n_w, 1);
	ASSERT_EQ(count_kind(h, "action", "deferred"), 1);
	tick(h, 40 * SEC);
	ASSERT_EQ(h->n_w, 2);
	ASSERT_DOUBLE_EQ(h->wvalue[1], 1, 0);
	teardown(h);
}

static void make_db(const char *path, uint32_t temp_id, uint32_t b2_id, int64_t wall) {
	sqlite3 *db;
	char sql[2048];

	unlink(path);
	ASSERT_EQ(sqlite3_open(path, &db), SQLITE_OK);
	snprintf(sql, sizeof(sql),
	         "CREATE TABLE events(id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, kind TEXT NOT NULL, source TEXT,"
	         " point INTEGER, value REAL, from_state TEXT, to_state TEXT, text TEXT);"
	         "INSERT INTO events(ts, kind, source, point, from_state, to_state) VALUES"
	         " (%lld, 'rule', 'hi', %u, 'normal', 'active'),"
	         " (%lld, 'rule', 'hi', %u, 'active', 'normal'),"
	         " (%lld, 'rule', 'hi', %u, 'normal', 'active'),"
	         " (%lld, 'write', 'rule:hi', %u, NULL, 'ok'),"
	         " (%lld, 'rule', 'slow', %u, 'normal', 'pending'),"
	         " (%lld, 'rule', 'lat', %u, 'active', 'latched'),"
	         " (%lld, 'rule', 'gone', %u, 'normal', 'active');",
	         (long long)(wall - 100 * SEC), temp_id, (long long)(wall - 90 * SEC), temp_id,
	         (long long)(wall - 80 * SEC), temp_id, (long long)(wall - 80 * SEC), temp_id,
	         (long long)(wall - 4 * SEC), b2_id, (long long)(wall - 50 * SEC), temp_id,
	         (long long)(wall - 50 * SEC), temp_id);
	ASSERT_EQ(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static void test_restore(void) {
	const char *dir = getenv("M2M_TEST_TMPDIR");
	char path[512];
	struct h *h = setup(RULE("hi", "*/temp", ">", "value = 85\non_raise = [ { write = { point = \"b1/burner\", value = 0 } } ]")
	                    RULE("slow", "*/temp", ">", "value = 85\nfor = \"10s\"")
	                    RULE("lat", "b1/temp", "<", "value = 0\nlatch = true"));

	snprintf(path, sizeof(path), "%s/rules-restore.db", dir ? dir : ".");
	unlink(path);
	ASSERT_EQ(rules_restore(h->r, path), 0); /* no database yet */
	make_db(path, registry_find(h->reg, "b1/temp")->id, registry_find(h->reg, "b2/temp")->id, h->wall);
	ASSERT_EQ(rules_restore(h->r, path), 3);
	ASSERT_STR_EQ(state(h, "hi", "b1/temp"), "active");
	ASSERT_STR_EQ(state(h, "hi", "b2/temp"), "normal");
	ASSERT_STR_EQ(state(h, "slow", "b2/temp"), "pending");
	ASSERT_STR_EQ(state(h, "lat", "b1/temp"), "latched");
	/* Restoring is silent: no events, no actions. */
	ASSERT_EQ(h->n_ev, 0);
	/* Still active: no second raise, no write. */
	feed(h, "b1/temp", 90);
	ASSERT_EQ(h->n_w, 0);
	for (int i = 0; i < h->n_ev; i++)
		ASSERT(strcmp(h->ev[i].source, "hi") != 0);
	/* The pending one resumes with the 6 s left of its delay. */
	feed(h, "b2/temp", 90);
	ASSERT_EQ(rules_next_deadline(h->r), h->mono + 6 * SEC);
	tick(h, 6 * SEC);
	ASSERT_STR_EQ(state(h, "slow", "b2/temp"), "active");
	/* hi on b2 was normal: the raise fires its write. */
	ASSERT_EQ(h->n_w, 1);
	ASSERT_EQ(rules_ack(h->r, "lat", NULL), 1);
	ASSERT_STR_EQ(state(h, "lat", "b1/temp"), "normal");
	teardown(h);
	unlink(path);
}

static void test_reconfigure(void) {
	struct h *h = setup(RULE("keep", "b1/temp", ">", "value = 85") RULE("change", "b1/temp", ">", "value = 85")
	                    RULE("drop", "b1/temp", ">", "value = 85") RULE("stale", "*/temp", "stale", "stale_after = \"1min\""));
	rules_conf *rc;
	char *error;
	struct rules_stats st;

	feed(h, "b1/temp", 90);
	ASSERT_STR_EQ(state(h, "keep", "b1/temp"), "active");
	ASSERT_STR_EQ(state(h, "change", "b1/temp"), "active");
	ASSERT_STR_EQ(state(h, "drop", "b1/temp"), "active");
	add_point(h->reg, "b3/temp", POINT_NUMBER, false, NAN, NAN);
	ASSERT_OK(parse(h->reg, RULE("keep", "b1/temp", ">", "value = 85") RULE("change", "b1/temp", ">", "value = 86")
	                RULE("stale", "*/temp", "stale", "stale_after = \"1min\"") RULE("new", "b1/temp", ">", "value = 85"),
	                &rc, &error));
	h->n_ev = 0;
	tick(h, 30 * SEC);
	ASSERT_OK(rules_reconfigure(h->r, rc, h->mono));
	ASSERT_STR_EQ(state(h, "keep", "b1/temp"), "active");
	/* Changed, but 90 is still above 86: the alarm stays. */
	ASSERT_STR_EQ(state(h, "change", "b1/temp"), "active");
	ASSERT_STR_EQ(state(h, "drop", "b1/temp"), "normal");
	ASSERT_EQ(count_kind(h, "rule", "normal"), 1);
	rules_get_stats(h->r, &st);
	ASSERT_EQ(st.rules, 4);
	ASSERT_EQ(st.instances, 3 + 3);
	ASSERT_EQ(st.active, 2);
	/* The stale clocks of b1 and b2 were kept; b3's starts now. */
	tick(h, 30 * SEC);
	ASSERT_STR_EQ(state(h, "stale", "b1/temp"), "active");
	ASSERT_STR_EQ(state(h, "stale", "b2/temp"), "active");
	ASSERT_STR_EQ(state(h, "stale", "b3/temp"), "normal");
	tick(h, 30 * SEC);
	ASSERT_STR_EQ(state(h, "stale", "b3/temp"), "active");
	feed(h, "b1/temp", 90);
	ASSERT_STR_EQ(state(h, "new", "b1/temp"), "active");
	ASSERT_STR_EQ(state(h, "change", "b1/temp"), "active");
	ASSERT_OK(rules_set_gateway_id(h->r, "gw-2"));
	teardown(h);
}

static void expect_bad(const char *toml, const char *needle) {
	registry *reg = make_registry();
	rules_conf *rc = NULL;
	char *error = NULL;

	if (parse(reg, toml, &rc, &error) == 0)
		TEST_FAIL("accepted: %s", toml);
	ASSERT(!rc);
	if (!strstr(error, needle))
		TEST_FAIL("expected \"%s\" in \"%s\"", needle, error);
	free(error);
	registry_free(reg);
}

static void test_bad_config(void) {
	expect_bad(RULE("a", "b1/nope", ">", "value = 1"), "rules[0].point: rule \"a\": unknown point \"b1/nope\"");
	expect_bad(RULE("a", "*/nope", ">", "value = 1"), "pattern \"*/nope\" matches no");
	expect_bad(RULE("a", "b1/serial", ">", "value = 1"), "is a string point");
	expect_bad(RULE("a", "b1/temp", ">", "value = 85") RULE("b", "b1/temp", ">", "value = 85\nclear = 90"),
	           "rules[1].clear: rule \"b\": expected clear at or below 85 for a \">\" rule, got 90");
	expect_bad(RULE("a", "b1/temp", "<", "value = 5\nclear = 1"), "expected clear at or above 5");
	expect_bad(RULE("a", "b1/temp", "outside", "low = 20\nhigh = 10"), "impossible band");
	expect_bad(RULE("a", "b1/temp", "outside", "low = 10\nhigh = 20\nhysteresis = 5"), "could never clear");
	expect_bad(RULE("a", "b1/temp", ">", "value = 1\non_raise = [ { write = { point = \"b1/press\", value = 1 } } ]"),
	           "rule \"a\": write action to read-only point \"b1/press\"");
	expect_bad(RULE("a", "b1/temp", ">", "value = 1\non_raise = [ { write = { point = \"b1/valve\", value = 150 } } ]"),
	           "value 150 is outside the limits of \"b1/valve\"");
	expect_bad(RULE("a", "b1/temp", ">", "value = 1\non_raise = [ { write = { point = \"b1/burner\", value = 2 } } ]"),
	           "expected 0 or 1");
	expect_bad(RULE("a", "b1/temp", ">", "value = 1\non_raise = [ { log = \"{rule} at {valeu}\" } ]"),
	           "rule \"a\": unknown template field {valeu}");
	expect_bad(RULE("a", "b1/temp", ">", "value = 1\non_clear = [ { mqtt = { topic = \"x/{nope}\" } } ]"),
	           "unknown template field {nope}");
	expect_bad(RULE("a", "b1/temp", ">", "value = 1\non_clear = [ { mqtt = { topic = \"x/#\" } } ]"), "without wildcards");
	expect_bad(RULE("a", "b1/temp", ">", "value = 1\non_clear = [ { email = \"x\" } ]"), "unknown action 'email'");
	expect_bad(RULE("a", "b1/temp", ">", "value = 1\non_clear = [ { log = \"x\", write = {} } ]"), "one key");
	expect_bad(RULE("a", "b1/temp", ">", "value = 1\non_clear = [ { mqtt = { topic = \"t\", qos = 3 } } ]"), "qos");
	expect_bad(RULE("a", "b1/temp", ">", "value = 1\non_clear = [ { mqtt = { topic = \"t\", qso = 1 } } ]"), "unknown key 'qso'");
	expect_bad(RULE("a", "b1/temp", ">", "value = 1") RULE("a", "b1/temp", ">", "value = 1"), "used by another rule");
	expect_bad(RULE("a", "b1/temp", ">", ""), "missing key 'value'");
	expect_bad(RULE("a", "b1/temp", ">", "low = 1\nvalue = 1"), "'low' does not apply to a \">\" rule");
	expect_bad(RULE("a", "b1/temp", "stale", ""), "missing key 'stale_after'");
	expect_bad(RULE("a", "b1/temp", "around", "value = 1"), "rules[0].condition: expected");
	expect_bad(RULE("a b", "b1/temp", ">", "value = 1"), "expected a rule name");
	expect_bad(RULE("a", "b1/temp", ">", "value = 1\nfor = 10"), "rules[0].for: expected a duration");
	expect_bad(RULE("a", "b1/temp", ">", "value = 1\nseverity = \"huge\""), "rules[0].severity");
	expect_bad(RULE("a", "b1/temp", ">", "value = 1\nlatched = true"), "unknown key 'latched'");
	expect_bad("rules = 5\n", "rules: expected an array");
	expect_bad("[rules]\nx = 1\n", "rules: expected an array");
}

static void test_no_rules(void) {
	registry *reg = make_registry();
	rules_conf *rc = (rules_conf *)1;
	char *error;

	ASSERT_OK(parse(reg, "# no rules\n", &rc, &error));
	ASSERT(!rc);
	registry_free(reg);
}

int main(void) {
	test_conditions();
	test_stale_delay_and_cooldown();
	test_ack_pattern();
	test_template_escaping();
	test_reconfigure_ends_actions();
	test_reconfigure_keeps_holding_alarm();
	test_reconfigure_to_no_rules();
	test_delays();
	test_cooldown();
	test_latch();
	test_stale_and_patterns();
	test_stale_model();
	test_actions();
	test_mqtt_missing();
	test_ts_after_2038();
	test_restore();
	test_reconfigure();
	test_bad_config();
	test_no_rules();
	printf("rules: all tests passed\n");
	return 0;
}
