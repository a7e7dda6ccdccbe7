/* SPDX-License-Identifier: MIT */
/*
 * The rules engine. See rules.h for the contract and docs/rules.md for the
 * configuration and the semantics.
 *
 * Layout, chosen for the hot path (one reading → the rules that watch its
 * point): every (rule, matched point) pair is an instance in one array
 * sorted by point; start offsets indexed by point id say where each
 * point's instances are, so a reading costs one lookup and the instances
 * that watch it, nothing else.
 *
 * Time: delays, cooldowns, deferred writes and stale checks are deadlines
 * in one 4-ary min-heap of instances keyed by the earliest thing each instance
 * waits for. Stale deadlines are kept lazily: a reading only moves the
 * instance's last-good time (O(1)); the heap key stays where it was and,
 * when it comes due, the instance finds its real deadline later and goes
 * back into the heap (O(log n)). So a point that reports every second
 * with a stale_after of a minute costs one heap operation per minute, and
 * nothing ever scans all points.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "config.h"
#include "error.h"
#include "fmt.h"
#include "log.h"
#include "point.h"
#include "rules.h"
#include "store.h"
#include "util.h"

#define RULE_NAME_MAX 64
#define TEMPLATE_MAX 4096

enum cond {
	C_GT, C_GE, C_LT, C_LE, C_EQ, C_NE, C_OUTSIDE, C_INSIDE,
	C_RATE_ABOVE, C_RATE_BELOW, C_STALE, C_BAD_QUALITY,
};
static const char *const cond_names[] = {
	">", ">=", "<", "<=", "==", "!=", "outside", "inside",
	"rate_above", "rate_below", "stale", "bad_quality", NULL,
};

enum state { S_NORMAL, S_PENDING, S_ACTIVE, S_ACKED, S_LATCHED, S_COUNT };
static const char *const state_names[] = {
	"normal", "pending", "active", "acked", "latched", NULL,
};

static const char *const severity_names[] = { "info", "warning", "critical", NULL };
static const char *const rate_per_names[] = { "s", "min", NULL };

enum field { F_LITERAL = -1, F_RULE, F_POINT, F_VALUE, F_UNIT, F_TS, F_SEVERITY, F_STATE, F_GATEWAY,
             F_PREFIX };
static const char *const field_names[] = {
	"rule", "point", "value", "unit", "ts", "severity", "state", "gateway", "prefix", NULL,
};

/* Keys each condition takes besides the common ones; any other is refused by name. */
enum { K_VALUE = 1, K_CLEAR = 2, K_LOW = 4, K_HIGH = 8, K_HYST = 16, K_RATE = 32, K_RATE_PER = 64,
       K_STALE = 128 };
static const struct {
	const char *key;
	unsigned bit;
} cond_keys[] = {
	{ "value", K_VALUE }, { "clear", K_CLEAR }, { "low", K_LOW }, { "high", K_HIGH },
	{ "hysteresis", K_HYST }, { "rate", K_RATE }, { "rate_per", K_RATE_PER },
	{ "stale_after", K_STALE },
};
static const unsigned cond_allowed[] = {
	[C_GT] = K_VALUE | K_CLEAR, [C_GE] = K_VALUE | K_CLEAR,
	[C_LT] = K_VALUE | K_CLEAR, [C_LE] = K_VALUE | K_CLEAR,
	[C_EQ] = K_VALUE, [C_NE] = K_VALUE,
	[C_OUTSIDE] = K_LOW | K_HIGH | K_HYST, [C_INSIDE] = K_LOW | K_HIGH | K_HYST,
	[C_RATE_ABOVE] = K_RATE | K_RATE_PER | K_CLEAR, [C_RATE_BELOW] = K_RATE | K_RATE_PER | K_CLEAR,
	[C_STALE] = K_STALE, [C_BAD_QUALITY] = 0,
};

/* A template: literal pieces and fields, split once at config load. */
struct tpl_part {
	int field;  /* enum field */
	char *text; /* F_LITERAL only */
	size_t len;
};
/*
 * How field values are inserted: as they are (log lines, payloads that are
 * not JSON), JSON-escaped (a payload that starts with '{' or '[', like the
 * default one: a unit such as 'in"' must not break the document), or with
 * the MQTT wildcards '+' and '#' replaced by '_' (topics must stay valid).
 */
enum tpl_mode { TPL_TEXT, TPL_JSON, TPL_TOPIC };
struct tpl {
	struct tpl_part *parts;
	size_t n;
	int mode;
};

enum action_type { A_LOG, A_MQTT, A_WRITE };

struct action {
	int type;
	struct tpl text;  /* log line, or MQTT payload */
	struct tpl topic; /* MQTT */
	int qos;
	bool retain;
	char *target;     /* write: point name */
	double value;     /* write */
	int64_t rate_limit_us;
	uint32_t slot;    /* write: index of its target among the rule's targets */
};

struct rule_def {
	char *name;
	cJSON *src;       /* the rule's table as written, to tell on reload whether it changed */
	int cond, severity;
	bool latch;
	double value, clear, low, high, hyst, rate; /* rate per second */
	int64_t for_us, clear_for_us, cooldown_us, stale_us;
	struct action *acts[2]; /* on_raise, on_clear */
	size_t n_acts[2];
	char **points;    /* the point names the rule matched at load, in id order of the scratch registry */
	size_t n_points;
	char **targets;   /* distinct write targets; each has a rate-limit slot per instance */
	size_t n_targets;
};

struct rules_conf {
	struct rule_def *rules;
	size_t n;
};

/* Rate limit state of one write target of one instance. */
struct slot {
	int64_t last_us; /* monotonic time of the last write, INT64_MIN when none */
	int64_t due_us;  /* when a deferred write goes out, INT64_MAX when none */
	double value;    /* the deferred value (the last one asked for wins) */
};

/*
 * What a reading touches comes first: instances are 96 bytes, so the first
 * 32 bytes of each lie within one cache line, and a reading that changes
 * no state costs one line of its instance.
 */
struct inst {
	const struct rule_def *rule;
	double value;          /* the last value seen, NAN when none */
	int64_t last_good_us;  /* monotonic time of the last good reading (stale) */
	uint32_t point;
	uint8_t state;
	bool has_prev;
	bool stale;            /* stale rules: no good reading within stale_after */
	int64_t timer_us;      /* raise (pending) or clear delay deadline; INT64_MAX when none */
	int64_t prev_ts;       /* rate: time of the previous good reading (wall, acquisition) */
	double prev_v;
	struct slot *slots;
	int64_t last_raise_us; /* monotonic, for the cooldown; INT64_MIN when never */
	int64_t since_us;      /* wall time of the last transition, 0 when never */
	int64_t heap_due;      /* key in the heap; INT64_MAX when not in it */
	uint32_t heap_pos;
};
_Static_assert(offsetof(struct inst, timer_us) <= 32, "a reading's fields fit in the first 32 bytes");

/* A write in flight; outlives a reload or rules_free (then it is orphaned). */
struct wreq {
	struct wreq *next, *prev;
	rules *r; /* NULL once orphaned */
	uint32_t target_id;
	double value;
	char *rule;
	char *target;
};

struct buf {
	char *p;
	size_t len, cap;
	bool failed;
};

/*
 * A heap entry carries its key, so that sifting compares keys within the
 * heap array and touches an instance only to record its new position: a
 * 4-ary heap of 100,000 instances is 9 levels deep, not 17.
 */
struct hent {
	int64_t due;
	struct inst *x;
};

/*
 * One rule set with its instances, indexes and heap: built whole, then
 * swapped in. Instances are sorted by point, so the instances of point ID
 * are insts[ix_start[id]] to insts[ix_start[id + 1]]: a reading reads one
 * offset and then its instances, with no indirection in between. The
 * per-rule view (ack, restore, reload) goes through by_rule instead.
 */
struct set {
	rules_conf *conf;
	struct inst *insts;
	size_t n_insts;
	size_t *rule_first; /* rule i's instances: by_rule[rule_first[i]] to by_rule[rule_first[i + 1]] */
	uint32_t *by_rule;  /* instance numbers grouped by rule, by point within a rule */
	uint32_t *by_name;  /* rule indices sorted by name, for ack, restore and reload */
	uint32_t n_ix;      /* point ids below this have an index entry */
	uint32_t *ix_start; /* n_ix + 1 offsets into insts */
	struct hent *heap;  /* room for every instance */
	size_t heap_n;
	struct slot *slots; /* the write slots of all instances, one block */
};

struct rules {
	struct rules_env env;
	char *gateway_id;
	int64_t (*wall)(void *ctx);
	void *wall_ctx;
	struct set s;
	struct wreq *writes;
	struct buf b1, b2;
	bool warned_no_mqtt;
	int64_t now_us; /* the latest monotonic time the daemon gave us */
	struct rules_stats st;
};

/* --- small helpers --- */

static int64_t default_wall(void *ctx) {
	struct timespec ts;

	(void)ctx;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t wall_now(const rules *r) {
	return r->wall(r->wall_ctx);
}

static int64_t add_sat(int64_t a, int64_t b) {
	return a > INT64_MAX - b ? INT64_MAX : a + b;
}

static bool rule_name_valid(const char *s) {
	return name_valid(s, RULE_NAME_MAX, NAME_ALNUM, "_-.");
}

/* '*' matches any run of characters within one segment (never a '/'). */
static bool pattern_match(const char *pat, const char *s) {
	while (*pat) {
		if (*pat == '*') {
			pat++;
			for (;;) {
				if (pattern_match(pat, s))
					return true;
				if (*s == '\0' || *s == '/')
					return false;
				s++;
			}
		}
		if (*pat != *s)
			return false;
		pat++;
		s++;
	}
	return *s == '\0';
}

static void buf_reset(struct buf *b) {
	b->len = 0;
	b->failed = false;
	if (b->p)
		b->p[0] = '\0';
}

static void buf_add(struct buf *b, const char *s, size_t n) {
	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *p;
		while (cap < b->len + n + 1)
			cap *= 2;
		if (cap > TEMPLATE_MAX * 4 || !(p = realloc(b->p, cap))) {
			b->failed = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s) {
	buf_add(b, s, strlen(s));
}

/* Appends a field value the way the template's mode wants it. */
static void buf_field(struct buf *b, const char *s, int mode) {
	const char *lit = s;

	if (mode == TPL_TEXT) {
		buf_str(b, s);
		return;
	}
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		char esc[8];

		if (mode == TPL_TOPIC ? (ch != '+' && ch != '#') : (ch >= 0x20 && ch != '"' && ch != '\\'))
			continue;
		buf_add(b, lit, (size_t)(s - lit));
		lit = s + 1;
		if (mode == TPL_TOPIC)
			buf_add(b, "_", 1);
		else if (ch == '"' || ch == '\\')
			buf_add(b, (const char[]){ '\\', (char)ch }, 2);
		else
			buf_add(b, esc, (size_t)snprintf(esc, sizeof(esc), "\\u%04x", ch));
	}
	buf_add(b, lit, (size_t)(s - lit));
}

static void free_strv(char **v, size_t n) {
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* --- templates --- */

static void tpl_done(struct tpl *t) {
	for (size_t i = 0; i < t->n; i++)
		free(t->parts[i].text);
	free(t->parts);
	t->parts = NULL;
	t->n = 0;
}

static int tpl_push(struct tpl *t, int field, const char *text, size_t len) {
	struct tpl_part *p = realloc(t->parts, (t->n + 1) * sizeof(*p));

	if (!p)
		return -ENOMEM;
	t->parts = p;
	p[t->n] = (struct tpl_part){ .field = field, .len = len };
	if (field == F_LITERAL) {
		p[t->n].text = strndup(text, len);
		if (!p[t->n].text)
			return -ENOMEM;
	}
	t->n++;
	return 0;
}

/*
 * A field is '{' + lower-case letters or '_' + '}'; every other brace is
 * literal, so a JSON payload needs no escaping: '{"v":{value}}' has one
 * field. A name that looks like a field but is none is a typo: an error.
 */
static int tpl_parse(config *c, const cJSON *item, const char *rule, const char *s, int mode,
                     struct tpl *ret) {
	struct tpl t = { .mode = mode };
	const char *lit = s;
	int err;

	if (mode == TPL_JSON) {
		const char *first = s + strspn(s, " \t\r\n");
		if (*first != '{' && *first != '[')
			t.mode = TPL_TEXT;
	}

	if (strlen(s) > TEMPLATE_MAX)
		return config_error(c, item, "rule \"%s\": expected a template of at most %d bytes", rule,
		                    TEMPLATE_MAX);
	while (*s) {
		const char *e = s + 1;
		int f = -1;

		if (*s != '{') {
			s++;
			continue;
		}
		while ((*e >= 'a' && *e <= 'z') || *e == '_')
			e++;
		if (*e != '}' || e == s + 1) {
			s++;
			continue;
		}
		for (int i = 0; field_names[i]; i++)
			if (strlen(field_names[i]) == (size_t)(e - s - 1) &&
			    memcmp(field_names[i], s + 1, (size_t)(e - s - 1)) == 0)
				f = i;
		if (f < 0) {
			tpl_done(&t);
			return config_error(c, item,
			                    "rule \"%s\": unknown template field {%.*s}; expected {rule}, {point}, "
			                    "{value}, {unit}, {ts}, {severity}, {state}, {gateway} or {prefix}",
			                    rule, (int)(e - s - 1), s + 1);
		}
		if ((s > lit && (err = tpl_push(&t, F_LITERAL, lit, (size_t)(s - lit))) < 0) ||
		    (err = tpl_push(&t, f, NULL, 0)) < 0) {
			tpl_done(&t);
			return err;
		}
		s = lit = e + 1;
	}
	if (s > lit && (err = tpl_push(&t, F_LITERAL, lit, (size_t)(s - lit))) < 0) {
		tpl_done(&t);
		return err;
	}
	*ret = t;
	return 0;
}

/* --- config --- */

/*
 * Whether the config being checked declares P. The scratch registry of a
 * check holds only the new config's points, each with its owner set; the
 * live registry marks them declared.
 */
static bool in_config(const struct point *p) {
	return p && (p->declared || p->owner);
}

static void action_done(struct action *a) {
	tpl_done(&a->text);
	tpl_done(&a->topic);
	free(a->target);
}

static void rule_def_done(struct rule_def *d) {
	free(d->name);
	cJSON_Delete(d->src);
	for (int k = 0; k < 2; k++) {
		for (size_t i = 0; i < d->n_acts[k]; i++)
			action_done(&d->acts[k][i]);
		free(d->acts[k]);
	}
	free_strv(d->points, d->n_points);
	free_strv(d->targets, d->n_targets);
}

void rules_conf_free(rules_conf *rc) {
	if (!rc)
		return;
	for (size_t i = 0; i < rc->n; i++)
		rule_def_done(&rc->rules[i]);
	free(rc->rules);
	free(rc);
}

static int target_slot(struct rule_def *d, const char *target, uint32_t *ret) {
	char **v, *copy;

	for (size_t i = 0; i < d->n_targets; i++)
		if (strcmp(d->targets[i], target) == 0) {
			*ret = (uint32_t)i;
			return 0;
		}
	copy = strdup(target);
	v = copy ? realloc(d->targets, (d->n_targets + 1) * sizeof(*v)) : NULL;
	if (!v) {
		free(copy);
		return -ENOMEM;
	}
	d->targets = v;
	v[d->n_targets] = copy;
	*ret = (uint32_t)d->n_targets++;
	return 0;
}

static int parse_write(config *c, const cJSON *w, registry *reg, struct rule_def *d,
                       struct action *a) {
	const cJSON *vitem = cJSON_GetObjectItemCaseSensitive(w, "value");
	const char *target;
	struct point *p;
	int err;

	if ((err = config_string(c, w, "point", NULL, &target)) < 0)
		return err;
	if (!target)
		return config_error(c, w, "rule \"%s\": missing key 'point' (the point to write)", d->name);
	if (!vitem)
		return config_error(c, w, "rule \"%s\": missing key 'value' (the value to write)", d->name);
	if (cJSON_IsBool(vitem)) {
		bool b;
		if ((err = config_bool(c, w, "value", false, &b)) < 0)
			return err;
		a->value = b;
	} else if ((err = config_double(c, w, "value", 0, &a->value)) < 0) {
		return err;
	}
	if ((err = config_duration(c, w, "rate_limit", 1000000, &a->rate_limit_us)) < 0)
		return err;
	p = registry_find(reg, target);
	if (!in_config(p))
		return config_error(c, cJSON_GetObjectItemCaseSensitive(w, "point"),
		                    "rule \"%s\": write action to unknown point \"%s\"", d->name, target);
	if (!p->a.writable)
		return config_error(c, cJSON_GetObjectItemCaseSensitive(w, "point"),
		                    "rule \"%s\": write action to read-only point \"%s\" (it is not writable = true)",
		                    d->name, target);
	if (p->a.kind == POINT_STRING)
		return config_error(c, cJSON_GetObjectItemCaseSensitive(w, "point"),
		                    "rule \"%s\": write action to string point \"%s\"", d->name, target);
	if (p->a.kind == POINT_BOOL && a->value != 0 && a->value != 1)
		return config_error(c, vitem, "rule \"%s\": expected 0 or 1 for the bool point \"%s\", got %g",
		                    d->name, target, a->value);
	if ((!isnan(p->a.min) && a->value < p->a.min) || (!isnan(p->a.max) && a->value > p->a.max))
		return config_error(c, vitem, "rule \"%s\": value %g is outside the limits of \"%s\" (min %g, max %g)",
		                    d->name, a->value, target, p->a.min, p->a.max);
	a->target = strdup(target);
	if (!a->target)
		return -ENOMEM;
	return target_slot(d, target, &a->slot);
}

static int parse_mqtt(config *c, const cJSON *m, struct rule_def *d, struct action *a) {
	static const char default_payload[] =
		"{\"gateway\":\"{gateway}\",\"rule\":\"{rule}\",\"point\":\"{point}\",\"state\":\"{state}\","
		"\"severity\":\"{severity}\",\"value\":{value},\"unit\":\"{unit}\",\"ts\":\"{ts}\"}";
	const char *topic, *payload;
	int64_t qos;
	int err;

	if ((err = config_string(c, m, "topic", NULL, &topic)) < 0 ||
	    (err = config_string(c, m, "payload", default_payload, &payload)) < 0 ||
	    (err = config_int(c, m, "qos", 1, 0, 2, &qos)) < 0 ||
	    (err = config_bool(c, m, "retain", false, &a->retain)) < 0)
		return err;
	if (!topic)
		return config_error(c, m, "rule \"%s\": missing key 'topic' (the MQTT topic)", d->name);
	if (!*topic || strpbrk(topic, "+#"))
		return config_error(c, cJSON_GetObjectItemCaseSensitive(m, "topic"),
		                    "rule \"%s\": expected a topic without wildcards ('+', '#'), got \"%s\"",
		                    d->name, topic);
	a->qos = (int)qos;
	if ((err = tpl_parse(c, cJSON_GetObjectItemCaseSensitive(m, "topic"), d->name, topic, TPL_TOPIC,
	                     &a->topic)) < 0)
		return err;
	return tpl_parse(c, cJSON_GetObjectItemCaseSensitive(m, "payload"), d->name, payload, TPL_JSON,
	                 &a->text);
}

static int parse_actions(config *c, const cJSON *rule, const char *key, registry *reg,
                         struct rule_def *d, int k) {
	const cJSON *arr, *it;
	int err = 0;

	arr = config_item(c, rule, key, cJSON_Array, &err);
	if (!arr)
		return err;
	d->acts[k] = calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof(struct action));
	if (!d->acts[k])
		return -ENOMEM;
	cJSON_ArrayForEach(it, arr) {
		struct action *a = &d->acts[k][d->n_acts[k]++];
		const cJSON *body;

		if (!cJSON_IsObject(it) || cJSON_GetArraySize(it) != 1)
			return config_error(c, it, "rule \"%s\": expected an action table with one key: "
			                    "{ log = \"...\" }, { mqtt = { ... } } or { write = { ... } }", d->name);
		if (cJSON_GetObjectItemCaseSensitive(it, "log")) {
			const char *text;
			a->type = A_LOG;
			if ((err = config_string(c, it, "log", NULL, &text)) < 0)
				return err;
			err = tpl_parse(c, cJSON_GetObjectItemCaseSensitive(it, "log"), d->name, text, TPL_TEXT,
			                &a->text);
		} else if ((body = config_item(c, it, "mqtt", cJSON_Object, &err))) {
			a->type = A_MQTT;
			err = parse_mqtt(c, body, d, a);
		} else if (!err && (body = config_item(c, it, "write", cJSON_Object, &err))) {
			a->type = A_WRITE;
			err = parse_write(c, body, reg, d, a);
		} else if (!err) {
			err = config_error(c, it->child, "rule \"%s\": unknown action '%s'; expected log, mqtt or write",
			                   d->name, it->child->string);
		}
		if (err < 0)
			return err;
	}
	return 0;
}

static int match_points(config *c, const cJSON *item, registry *reg, struct rule_def *d,
                        const char *pat) {
	bool wild = strchr(pat, '*') != NULL;
	size_t cap = 0;

	if (!wild) {
		struct point *p = registry_find(reg, pat);
		if (!in_config(p))
			return config_error(c, item, "rule \"%s\": unknown point \"%s\"", d->name, pat);
		if (p->a.kind == POINT_STRING)
			return config_error(c, item, "rule \"%s\": \"%s\" is a string point; rules watch numbers and bools",
			                    d->name, pat);
		if (!(d->points = malloc(sizeof(*d->points))) || !(d->points[0] = strdup(pat)))
			return -ENOMEM;
		d->n_points = 1;
		return 0;
	}
	for (uint32_t id = 1; id < registry_end(reg); id++) {
		struct point *p = registry_get(reg, id);
		if (!in_config(p) || p->a.kind == POINT_STRING || !pattern_match(pat, p->name))
			continue;
		if (d->n_points == cap) {
			char **v = realloc(d->points, (cap = cap ? cap * 2 : 4) * sizeof(*v));
			if (!v)
				return -ENOMEM;
			d->points = v;
		}
		if (!(d->points[d->n_points] = strdup(p->name)))
			return -ENOMEM;
		d->n_points++;
	}
	if (d->n_points == 0)
		return config_error(c, item, "rule \"%s\": the pattern \"%s\" matches no number or bool point",
		                    d->name, pat);
	return 0;
}

/* Reads a number that the condition needs; NAN when absent and optional. */
static int need_number(config *c, const cJSON *rule, const char *key, const char *name,
                       const char *cond, const char *what, double *ret) {
	int r = config_double(c, rule, key, NAN, ret);

	if (r == 0)
		return config_error(c, rule, "rule \"%s\": missing key '%s' (%s for a \"%s\" rule)", name, key,
		                    what, cond);
	return r < 0 ? r : 0;
}

static int parse_rule(config *c, const cJSON *rule, registry *reg, rules_conf *rc,
                      struct rule_def *d) {
	const char *name, *pat, *cn;
	const cJSON *it;
	int err, rate_per = 0;

	d->clear = d->low = d->high = d->value = d->rate = NAN;
	if (!cJSON_IsObject(rule))
		return config_error(c, rule, "expected a table [[rules]]");
	if ((err = config_string(c, rule, "name", NULL, &name)) < 0)
		return err;
	if (!name)
		return config_error(c, rule, "missing key 'name' (the rule's unique name)");
	if (!rule_name_valid(name))
		return config_error(c, cJSON_GetObjectItemCaseSensitive(rule, "name"),
		                    "expected a rule name of 1 to %d letters, digits, '_', '-' or '.', got \"%s\"",
		                    RULE_NAME_MAX, name);
	for (size_t i = 0; &rc->rules[i] != d; i++)
		if (strcmp(rc->rules[i].name, name) == 0)
			return config_error(c, cJSON_GetObjectItemCaseSensitive(rule, "name"),
			                    "rule \"%s\": the name is used by another rule", name);
	if (!(d->name = strdup(name)) || !(d->src = cJSON_Duplicate(rule, true)))
		return -ENOMEM;

	if ((err = config_string(c, rule, "point", NULL, &pat)) < 0)
		return err;
	if (!pat)
		return config_error(c, rule, "rule \"%s\": missing key 'point' (a point name or a pattern like \"*/temperature\")",
		                    name);
	if ((err = config_enum(c, rule, "condition", cond_names, -1, &d->cond)) < 0)
		return err;
	if (d->cond < 0)
		return config_error(c, rule, "rule \"%s\": missing key 'condition'", name);
	cn = cond_names[d->cond];
	for (size_t i = 0; i < ELEMENTSOF(cond_keys); i++)
		if (!(cond_allowed[d->cond] & cond_keys[i].bit) &&
		    (it = cJSON_GetObjectItemCaseSensitive(rule, cond_keys[i].key)))
			return config_error(c, it, "rule \"%s\": '%s' does not apply to a \"%s\" rule", name,
			                    cond_keys[i].key, cn);

	switch (d->cond) {
	case C_GT: case C_GE: case C_LT: case C_LE: case C_EQ: case C_NE:
		if ((err = need_number(c, rule, "value", name, cn, "the threshold", &d->value)) < 0)
			return err;
		break;
	case C_OUTSIDE: case C_INSIDE:
		if ((err = need_number(c, rule, "low", name, cn, "the band's lower end", &d->low)) < 0 ||
		    (err = need_number(c, rule, "high", name, cn, "the band's upper end", &d->high)) < 0 ||
		    (err = config_double(c, rule, "hysteresis", 0, &d->hyst)) < 0)
			return err;
		break;
	case C_RATE_ABOVE: case C_RATE_BELOW:
		if ((err = need_number(c, rule, "rate", name, cn, "the change per second or minute", &d->rate)) < 0 ||
		    (err = config_enum(c, rule, "rate_per", rate_per_names, 0, &rate_per)) < 0)
			return err;
		break;
	case C_STALE:
		if ((err = config_duration(c, rule, "stale_after", 0, &d->stale_us)) < 0)
			return err;
		if (err == 0)
			return config_error(c, rule, "rule \"%s\": missing key 'stale_after' (how long without a good reading)",
			                    name);
		if (d->stale_us <= 0)
			return config_error(c, cJSON_GetObjectItemCaseSensitive(rule, "stale_after"),
			                    "rule \"%s\": expected stale_after > 0", name);
		break;
	default:
		break;
	}
	if (cond_allowed[d->cond] & K_CLEAR && (err = config_double(c, rule, "clear", NAN, &d->clear)) < 0)
		return err;

	/* Bands and clear thresholds that could never raise or never clear are mistakes. */
	it = cJSON_GetObjectItemCaseSensitive(rule, "clear");
	if (!isnan(d->clear)) {
		bool ok = true;
		const char *dir = "";
		double ref = (d->cond == C_RATE_ABOVE || d->cond == C_RATE_BELOW) ? d->rate : d->value;
		switch (d->cond) {
		case C_GT: case C_GE: case C_RATE_ABOVE:
			ok = d->clear <= ref;
			dir = "at or below";
			break;
		default:
			ok = d->clear >= ref;
			dir = "at or above";
			break;
		}
		if (!ok)
			return config_error(c, it, "rule \"%s\": expected clear %s %g for a \"%s\" rule, got %g", name,
			                    dir, ref, cn, d->clear);
	}
	if (d->cond == C_RATE_ABOVE || d->cond == C_RATE_BELOW) {
		if (rate_per == 1) {
			d->rate /= 60;
			d->clear /= 60;
		}
	}
	if (d->cond == C_OUTSIDE || d->cond == C_INSIDE) {
		if (d->hyst < 0)
			return config_error(c, cJSON_GetObjectItemCaseSensitive(rule, "hysteresis"),
			                    "rule \"%s\": expected hysteresis >= 0, got %g", name, d->hyst);
		if (!(d->low < d->high))
			return config_error(c, cJSON_GetObjectItemCaseSensitive(rule, "low"),
			                    "rule \"%s\": impossible band: expected low < high, got low %g, high %g", name,
			                    d->low, d->high);
		if (d->cond == C_OUTSIDE && !(d->low + d->hyst < d->high - d->hyst))
			return config_error(c, cJSON_GetObjectItemCaseSensitive(rule, "hysteresis"),
			                    "rule \"%s\": impossible band: with hysteresis %g the alarm could never clear "
			                    "(low + hysteresis must stay below high - hysteresis)", name, d->hyst);
	}

	if ((err = config_duration(c, rule, "for", 0, &d->for_us)) < 0 ||
	    (err = config_duration(c, rule, "clear_for", 0, &d->clear_for_us)) < 0 ||
	    (err = config_duration(c, rule, "cooldown", 0, &d->cooldown_us)) < 0 ||
	    (err = config_enum(c, rule, "severity", severity_names, 1, &d->severity)) < 0 ||
	    (err = config_bool(c, rule, "latch", false, &d->latch)) < 0)
		return err;
	if ((err = match_points(c, cJSON_GetObjectItemCaseSensitive(rule, "point"), reg, d, pat)) < 0)
		return err;
	if ((err = parse_actions(c, rule, "on_raise", reg, d, 0)) < 0 ||
	    (err = parse_actions(c, rule, "on_clear", reg, d, 1)) < 0)
		return err;
	return 0;
}

int rules_conf_parse(config *c, const cJSON *root, registry *reg, rules_conf **ret) {
	const cJSON *arr, *it;
	rules_conf *rc;
	int err = 0;

	arr = config_item(c, root, "rules", cJSON_Array, &err);
	if (err < 0)
		return err;
	if (!arr || cJSON_GetArraySize(arr) == 0) {
		*ret = NULL;
		return 0;
	}
	rc = calloc(1, sizeof(*rc));
	if (!rc || !(rc->rules = calloc((size_t)cJSON_GetArraySize(arr), sizeof(*rc->rules)))) {
		free(rc);
		return -ENOMEM;
	}
	cJSON_ArrayForEach(it, arr) {
		/* Counted before parsing so that a half-parsed rule is freed with the rest. */
		err = parse_rule(c, it, reg, rc, &rc->rules[rc->n++]);
		if (err < 0) {
			rules_conf_free(rc);
			return err;
		}
	}
	*ret = rc;
	return 0;
}

/* --- the heap of deadlines --- */

static void heap_set(rules *r, size_t i, struct hent e) {
	r->s.heap[i] = e;
	e.x->heap_pos = (uint32_t)i;
}

static void heap_up(rules *r, size_t i) {
	struct hent e = r->s.heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 4;
		if (r->s.heap[parent].due <= e.due)
			break;
		heap_set(r, i, r->s.heap[parent]);
		i = parent;
	}
	heap_set(r, i, e);
}

static void heap_down(rules *r, size_t i) {
	struct hent e = r->s.heap[i];
	size_t n = r->s.heap_n;

	for (;;) {
		size_t c = 4 * i + 1, m = c, end;
		if (c >= n)
			break;
		end = c + 4 < n ? c + 4 : n;
		for (size_t j = c + 1; j < end; j++)
			if (r->s.heap[j].due < r->s.heap[m].due)
				m = j;
		if (r->s.heap[m].due >= e.due)
			break;
		heap_set(r, i, r->s.heap[m]);
		i = m;
	}
	heap_set(r, i, e);
}

static void heap_push(rules *r, struct inst *x) {
	/* The heap array holds every instance, so it never needs to grow. */
	heap_set(r, r->s.heap_n++, (struct hent){ x->heap_due, x });
	heap_up(r, x->heap_pos);
}

static void heap_pop(rules *r) {
	r->s.heap[0].x->heap_due = INT64_MAX;
	if (--r->s.heap_n > 0) {
		heap_set(r, 0, r->s.heap[r->s.heap_n]);
		heap_down(r, 0);
	}
}

/* The earliest thing the instance waits for. */
static int64_t inst_next(const struct inst *x) {
	int64_t due = x->timer_us;

	if (x->rule->cond == C_STALE && !x->stale) {
		int64_t s = add_sat(x->last_good_us, x->rule->stale_us);
		if (s < due)
			due = s;
	}
	for (size_t i = 0; x->slots && i < x->rule->n_targets; i++)
		if (x->slots[i].due_us < due)
			due = x->slots[i].due_us;
	return due;
}

/*
 * Moves the instance's heap key earlier when it now waits for something
 * sooner. A later deadline leaves the key as is: the instance wakes early
 * once and goes back in at its real time (see the top of the file).
 */
static void schedule(rules *r, struct inst *x) {
	int64_t due = inst_next(x);

	if (due >= x->heap_due)
		return;
	if (x->heap_due == INT64_MAX) {
		x->heap_due = due;
		heap_push(r, x);
		return;
	}
	x->heap_due = due;
	r->s.heap[x->heap_pos].due = due;
	heap_up(r, x->heap_pos);
}

/* --- events and actions --- */

static void expand(rules *r, struct buf *b, const struct tpl *t, const struct inst *x, int64_t wall) {
	const struct point *p = registry_get(r->env.reg, x->point);
	char num[64];

	buf_reset(b);
	for (size_t i = 0; i < t->n; i++) {
		const struct tpl_part *part = &t->parts[i];
		switch (part->field) {
		case F_LITERAL:
			buf_add(b, part->text, part->len);
			break;
		case F_RULE:
			buf_field(b, x->rule->name, t->mode);
			break;
		case F_POINT:
			buf_field(b, p ? p->name : "", t->mode);
			break;
		case F_VALUE:
			/*
			 * null, not nan: the default payload is JSON and must stay valid.
			 * 15 digits read well; 17 when needed to give back the exact
			 * double, so a consumer sees the value the events table holds.
			 */
			fmt_double(x->value, num, sizeof(num));
			buf_str(b, num);
			break;
		case F_UNIT:
			buf_field(b, p && p->a.unit ? p->a.unit : "", t->mode);
			break;
		case F_TS:
			if (format_utc(wall, 3, num, sizeof(num)) < 0)
				num[0] = '\0';
			buf_str(b, num);
			break;
		case F_SEVERITY:
			buf_str(b, severity_names[x->rule->severity]);
			break;
		case F_STATE:
			buf_str(b, state_names[x->state]);
			break;
		case F_GATEWAY:
			buf_field(b, r->gateway_id ? r->gateway_id : "", t->mode);
			break;
		case F_PREFIX:
			/* Asked each time: a reload may change [mqtt] topic_prefix. */
			buf_field(b, r->env.topic_prefix ? r->env.topic_prefix(r->env.ctx) : "", t->mode);
			break;
		default:
			break;
		}
	}
}

static void emit(rules *r, const char *kind, const char *source, uint32_t point, double value,
                 const char *from, const char *to, const char *text, int64_t wall) {
	struct store_event e = {
		.ts_us = wall, .kind = kind, .source = source, .point = point, .value = value,
		.from_state = from, .to_state = to, .text = text,
	};

	if (r->env.event)
		r->env.event(r->env.ctx, &e);
}

static void action_result(rules *r, const char *rule, uint32_t point, double value, int status,
                          const char *what, const char *error_text) {
	char text[512];

	if (status < 0) {
		r->st.actions_failed++;
		snprintf(text, sizeof(text), "%s: %s", what, error_text ? error_text : m2m_strerror(status));
	} else {
		r->st.actions_ok++;
		snprintf(text, sizeof(text), "%s: ok", what);
	}
	emit(r, "action", rule, point, value, NULL, status < 0 ? "error" : "ok", text, wall_now(r));
}

static void wreq_free(struct wreq *w) {
	free(w->rule);
	free(w->target);
	free(w);
}

static void on_write_done(int status, const char *error_text, void *arg) {
	struct wreq *w = arg;
	rules *r = w->r;

	if (r) {
		char what[256];
		snprintf(what, sizeof(what), "write %s = %g", w->target, w->value);
		action_result(r, w->rule, w->target_id, w->value, status, what, error_text);
		if (w->prev)
			w->prev->next = w->next;
		else
			r->writes = w->next;
		if (w->next)
			w->next->prev = w->prev;
	}
	wreq_free(w);
}

static void do_write(rules *r, const struct inst *x, const char *target, double value) {
	const struct point *tp = registry_find(r->env.reg, target);
	char origin[RULE_NAME_MAX + 8], what[256];
	struct wreq *w;
	int err;

	snprintf(origin, sizeof(origin), "rule:%s", x->rule->name);
	snprintf(what, sizeof(what), "write %s = %g", target, value);
	w = calloc(1, sizeof(*w));
	if (!w || !(w->rule = strdup(x->rule->name)) || !(w->target = strdup(target))) {
		if (w)
			wreq_free(w);
		action_result(r, x->rule->name, tp ? tp->id : 0, value, -ENOMEM, what, NULL);
		return;
	}
	w->r = r;
	w->value = value;
	w->target_id = tp ? tp->id : 0;
	/* In the list before the call: the callback may run before write() returns. */
	w->next = r->writes;
	if (r->writes)
		r->writes->prev = w;
	r->writes = w;
	err = r->env.write ? r->env.write(r->env.ctx, origin, target, value, on_write_done, w) : -ENOTSUP;
	if (err < 0)
		on_write_done(err, NULL, w);
}

/*
 * Writes now, or defers to the end of the rate limit; the last value asked
 * for wins. IMMEDIATE skips the rate limit: an instance that ends with a
 * reload would never send a deferred write.
 */
static void write_action(rules *r, struct inst *x, const struct action *a, int64_t now, bool immediate) {
	struct slot *s = &x->slots[a->slot];

	if (!immediate && a->rate_limit_us > 0 && s->last_us != INT64_MIN &&
	    now < add_sat(s->last_us, a->rate_limit_us)) {
		const struct point *tp = registry_find(r->env.reg, a->target);
		char text[256];
		s->due_us = add_sat(s->last_us, a->rate_limit_us);
		s->value = a->value;
		r->st.writes_deferred++;
		snprintf(text, sizeof(text), "write %s = %g: deferred by the rate limit", a->target, a->value);
		/* Like the write's own result, the event names the target point. */
		emit(r, "action", x->rule->name, tp ? tp->id : 0, a->value, NULL, "deferred", text, wall_now(r));
		schedule(r, x);
		return;
	}
	s->last_us = now;
	s->due_us = INT64_MAX;
	do_write(r, x, a->target, a->value);
}

static void run_actions(rules *r, struct inst *x, int k, int64_t now, int64_t wall, bool immediate) {
	const struct rule_def *d = x->rule;

	for (size_t i = 0; i < d->n_acts[k]; i++) {
		const struct action *a = &d->acts[k][i];
		switch (a->type) {
		case A_LOG:
			expand(r, &r->b1, &a->text, x, wall);
			log_msg(d->severity == 2 ? LOG_ERR : d->severity == 1 ? LOG_WARNING : LOG_NOTICE, "%s",
			        r->b1.failed ? d->name : r->b1.p);
			break;
		case A_MQTT: {
			int err;
			expand(r, &r->b1, &a->topic, x, wall);
			expand(r, &r->b2, &a->text, x, wall);
			if (r->b1.failed || r->b2.failed) {
				action_result(r, d->name, x->point, x->value, -ENOMEM, "mqtt", NULL);
				break;
			}
			if (!r->env.publish) {
				/* Once per engine: the config is valid, MQTT just is not there (yet). */
				if (!r->warned_no_mqtt)
					log_warning("rule \"%s\": MQTT action to \"%s\" not sent: MQTT is not configured",
					            d->name, r->b1.p);
				r->warned_no_mqtt = true;
				err = -ENOTCONN;
			} else {
				err = r->env.publish(r->env.ctx, r->b1.p, r->b2.p, a->qos, a->retain);
			}
			char what[300];
			snprintf(what, sizeof(what), "mqtt %s", r->b1.p);
			action_result(r, d->name, x->point, x->value, err, what,
			              err == -ENOTCONN && !r->env.publish ? "MQTT is not configured" : NULL);
			break;
		}
		case A_WRITE:
			write_action(r, x, a, now, immediate);
			break;
		default:
			break;
		}
	}
}

static void describe_cond(const struct inst *x, char *buf, size_t n) {
	const struct rule_def *d = x->rule;

	switch (d->cond) {
	case C_OUTSIDE: case C_INSIDE:
		snprintf(buf, n, "%s %g..%g", cond_names[d->cond], d->low, d->high);
		break;
	case C_RATE_ABOVE: case C_RATE_BELOW:
		snprintf(buf, n, "%s %g/s", cond_names[d->cond], d->rate);
		break;
	case C_STALE:
		snprintf(buf, n, "stale after %gs", (double)d->stale_us / 1e6);
		break;
	case C_BAD_QUALITY:
		snprintf(buf, n, "bad quality");
		break;
	default:
		snprintf(buf, n, "%s %g", cond_names[d->cond], d->value);
		break;
	}
}

/* Records a transition; REASON says why when it is not the condition itself. */
static void transition(rules *r, struct inst *x, int to, const char *reason, int64_t wall) {
	const struct point *p = registry_get(r->env.reg, x->point);
	char cond[96], text[256];
	int from = x->state;

	describe_cond(x, cond, sizeof(cond));
	snprintf(text, sizeof(text), "%s: %s (%s)%s%s", severity_names[x->rule->severity],
	         p ? p->name : "?", cond, reason ? ": " : "", reason ? reason : "");
	x->state = (uint8_t)to;
	x->since_us = wall;
	r->st.transitions++;
	if (to == S_NORMAL)
		r->st.active--;
	else if (from == S_NORMAL)
		r->st.active++;
	log_msg(to == S_ACTIVE && from != S_ACKED && from != S_LATCHED ? LOG_NOTICE : LOG_INFO,
	        "rule \"%s\" on %s: %s -> %s (value %g)", x->rule->name, p ? p->name : "?",
	        state_names[from], state_names[to], x->value);
	emit(r, "rule", x->rule->name, x->point, x->value, state_names[from], state_names[to], text, wall);
}

static void do_raise(rules *r, struct inst *x, int64_t now) {
	int64_t wall = wall_now(r);

	x->timer_us = INT64_MAX;
	x->last_raise_us = now;
	transition(r, x, S_ACTIVE, NULL, wall);
	run_actions(r, x, 0, now, wall, false);
}

static void do_clear(rules *r, struct inst *x, int64_t now, const char *reason) {
	int64_t wall = wall_now(r);

	x->timer_us = INT64_MAX;
	if (x->rule->latch && x->state == S_ACTIVE) {
		transition(r, x, S_LATCHED, "condition cleared; waiting for an acknowledgement", wall);
		return;
	}
	transition(r, x, S_NORMAL, reason, wall);
	run_actions(r, x, 1, now, wall, false);
}

/*
 * The state machine, fed with whether the condition holds now. Idempotent:
 * feeding the same value twice changes nothing.
 */
static void step(rules *r, struct inst *x, bool cond, int64_t now) {
	const struct rule_def *d = x->rule;

	switch (x->state) {
	case S_NORMAL: {
		int64_t due;
		if (!cond)
			return;
		/* The cooldown holds a new raise back (in pending) until it has passed. */
		due = add_sat(now, d->for_us);
		if (x->last_raise_us != INT64_MIN && add_sat(x->last_raise_us, d->cooldown_us) > due)
			due = add_sat(x->last_raise_us, d->cooldown_us);
		if (due <= now) {
			do_raise(r, x, now);
			return;
		}
		x->timer_us = due;
		transition(r, x, S_PENDING, NULL, wall_now(r));
		schedule(r, x);
		return;
	}
	case S_PENDING:
		if (cond)
			return;
		x->timer_us = INT64_MAX;
		transition(r, x, S_NORMAL, "condition cleared before the raise delay", wall_now(r));
		return;
	case S_ACTIVE:
	case S_ACKED:
		if (cond) {
			x->timer_us = INT64_MAX; /* a clear delay in progress is cancelled */
			return;
		}
		if (x->timer_us != INT64_MAX)
			return;
		if (d->clear_for_us <= 0) {
			do_clear(r, x, now, NULL);
			return;
		}
		x->timer_us = add_sat(now, d->clear_for_us);
		schedule(r, x);
		return;
	case S_LATCHED:
		if (cond)
			transition(r, x, S_ACTIVE, "condition back before the acknowledgement", wall_now(r));
		return;
	default:
		return;
	}
}

/* Whether the condition holds for value V; ACTIVE selects the clear threshold (hysteresis). */
static bool value_cond(const struct rule_def *d, double v, bool active) {
	double c;

	switch (d->cond) {
	case C_GT:
		return active && !isnan(d->clear) ? v >= d->clear : v > d->value;
	case C_GE:
		return active && !isnan(d->clear) ? v >= d->clear : v >= d->value;
	case C_LT:
		return active && !isnan(d->clear) ? v <= d->clear : v < d->value;
	case C_LE:
		return active && !isnan(d->clear) ? v <= d->clear : v <= d->value;
	case C_EQ:
		return v == d->value;
	case C_NE:
		return v != d->value;
	case C_OUTSIDE:
		c = active ? d->hyst : 0;
		return v < d->low + c || v > d->high - c;
	case C_INSIDE:
		c = active ? d->hyst : 0;
		return v >= d->low - c && v <= d->high + c;
	case C_RATE_ABOVE:
		return active && !isnan(d->clear) ? v >= d->clear : v > d->rate;
	case C_RATE_BELOW:
		return active && !isnan(d->clear) ? v <= d->clear : v < d->rate;
	default:
		return false;
	}
}

static void eval(rules *r, struct inst *x, const struct m2m_reading *rd, int64_t now) {
	const struct rule_def *d = x->rule;
	/* An out-of-range value is still what the device measured: a limit alarm must see it. */
	bool usable = (rd->quality == M2M_QUALITY_GOOD || rd->quality == M2M_QUALITY_OUT_OF_RANGE) &&
	              !isnan(rd->value);
	/*
	 * The clear threshold applies while the alarm is up. A latched alarm
	 * already cleared: it comes back only when the raise condition holds
	 * again, not on a value between the clear and the raise threshold.
	 */
	bool active = x->state == S_ACTIVE || x->state == S_ACKED;

	switch (d->cond) {
	case C_STALE:
		if (rd->quality != M2M_QUALITY_GOOD)
			return;
		x->last_good_us = now;
		x->value = rd->value;
		if (x->stale) {
			/* Alive again: the stale deadline goes back into the heap. */
			x->stale = false;
			step(r, x, false, now);
			schedule(r, x);
		}
		return;
	case C_BAD_QUALITY:
		x->value = rd->value;
		step(r, x, rd->quality != M2M_QUALITY_GOOD, now);
		return;
	case C_RATE_ABOVE:
	case C_RATE_BELOW: {
		double rate;
		if (!usable)
			return;
		if (!x->has_prev || rd->ts_us <= x->prev_ts) {
			x->has_prev = true;
			x->prev_ts = rd->ts_us;
			x->prev_v = rd->value;
			return;
		}
		rate = (rd->value - x->prev_v) * 1e6 / (double)(rd->ts_us - x->prev_ts);
		x->prev_ts = rd->ts_us;
		x->prev_v = rd->value;
		x->value = rd->value;
		step(r, x, value_cond(d, rate, active), now);
		return;
	}
	default:
		if (!usable)
			return;
		x->value = rd->value;
		step(r, x, value_cond(d, rd->value, active), now);
		return;
	}
}

void rules_on_reading(rules *r, const struct point *p, const struct m2m_reading *reading,
                      int64_t now_mono_us) {
	uint32_t id;

	if (!r || !p)
		return;
	r->now_us = now_mono_us;
	if ((id = p->id) >= r->s.n_ix)
		return;
	for (uint32_t i = r->s.ix_start[id], e = r->s.ix_start[id + 1]; i < e; i++) {
		r->st.evaluations++;
		eval(r, &r->s.insts[i], reading, now_mono_us);
	}
}

/* Runs what is due for one instance popped from the heap. */
static void fire(rules *r, struct inst *x, int64_t now) {
	const struct rule_def *d = x->rule;

	for (size_t i = 0; x->slots && i < d->n_targets; i++) {
		struct slot *s = &x->slots[i];
		if (s->due_us <= now) {
			s->due_us = INT64_MAX;
			s->last_us = now;
			do_write(r, x, d->targets[i], s->value);
		}
	}
	if (x->timer_us <= now) {
		if (x->state == S_PENDING)
			do_raise(r, x, now);
		else if (x->state == S_ACTIVE || x->state == S_ACKED)
			do_clear(r, x, now, NULL);
		else
			x->timer_us = INT64_MAX;
	}
	if (d->cond == C_STALE && !x->stale && add_sat(x->last_good_us, d->stale_us) <= now) {
		x->stale = true;
		step(r, x, true, now);
	}
}

void rules_advance(rules *r, int64_t now_mono_us) {
	if (!r)
		return;
	r->now_us = now_mono_us;
	while (r->s.heap_n > 0 && r->s.heap[0].due <= now_mono_us) {
		struct inst *x = r->s.heap[0].x;
		int64_t due;

		heap_pop(r);
		fire(r, x, now_mono_us);
		if (x->heap_due != INT64_MAX) {
			/*
			 * What fire() started (a raise delay after a stale check, a
			 * write deferred by a clear) already put X back through
			 * schedule(): it must not go in twice.
			 */
			if (x->heap_due <= now_mono_us) {
				x->heap_due = now_mono_us + 1;
				r->s.heap[x->heap_pos].due = x->heap_due;
				heap_down(r, x->heap_pos);
			}
			continue;
		}
		due = inst_next(x);
		if (due != INT64_MAX) {
			/* Never due again by NOW: that would spin this loop. */
			x->heap_due = due > now_mono_us ? due : now_mono_us + 1;
			heap_push(r, x);
		}
	}
}

int64_t rules_next_deadline(const rules *r) {
	return r && r->s.heap_n > 0 ? r->s.heap[0].due : INT64_MAX;
}

/* --- building an instance set --- */

static void set_done(struct set *s) {
	free(s->insts);
	free(s->slots);
	free(s->rule_first);
	free(s->by_name);
	free(s->ix_start);
	free(s->by_rule);
	free(s->heap);
	rules_conf_free(s->conf);
	memset(s, 0, sizeof(*s));
}

static int cmp_point(const void *a, const void *b) {
	const struct inst *x = a, *y = b;
	return x->point < y->point ? -1 : x->point > y->point;
}

static int cmp_name(const void *a, const void *b, void *ctx) {
	const rules_conf *rc = ctx;
	return strcmp(rc->rules[*(const uint32_t *)a].name, rc->rules[*(const uint32_t *)b].name);
}

static int find_rule(const struct set *s, const char *name) {
	size_t lo = 0, hi = s->conf ? s->conf->n : 0;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(s->conf->rules[s->by_name[mid]].name, name);
		if (c == 0)
			return (int)s->by_name[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* The instance of rule RULE on POINT in S, or NULL. */
static struct inst *find_inst(const struct set *s, int rule, uint32_t point) {
	size_t lo = s->rule_first[rule], hi = s->rule_first[rule + 1];

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		struct inst *x = &s->insts[s->by_rule[mid]];
		if (x->point == point)
			return x;
		if (x->point < point)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/*
 * Resolves CONF's point names against the live registry and builds the
 * instances, the point index and an empty heap. Takes over CONF.
 */
static int set_build(rules *r, rules_conf *conf, int64_t now, struct set *ret) {
	struct set s = { .conf = conf };
	size_t n = 0, n_slots = 0, k = 0, si = 0;
	uint32_t *fill = NULL;
	struct inst *grouped = NULL;

	for (size_t i = 0; i < conf->n; i++) {
		n += conf->rules[i].n_points;
		n_slots += conf->rules[i].n_points * conf->rules[i].n_targets;
	}
	if (n > UINT32_MAX - 1)
		goto nomem;
	grouped = calloc(n ? n : 1, sizeof(*grouped));
	s.insts = calloc(n ? n : 1, sizeof(*s.insts));
	s.by_rule = calloc(n ? n : 1, sizeof(*s.by_rule));
	s.rule_first = calloc(conf->n + 1, sizeof(*s.rule_first));
	s.by_name = calloc(conf->n ? conf->n : 1, sizeof(*s.by_name));
	s.heap = calloc(n ? n : 1, sizeof(*s.heap));
	s.n_ix = registry_end(r->env.reg);
	s.ix_start = calloc((size_t)s.n_ix + 1, sizeof(*s.ix_start));
	fill = calloc((size_t)s.n_ix + 1, sizeof(*fill));
	s.slots = malloc((n_slots ? n_slots : 1) * sizeof(*s.slots));
	if (!grouped || !s.insts || !s.by_rule || !s.rule_first || !s.by_name || !s.heap || !s.ix_start ||
	    !fill || !s.slots)
		goto nomem;
	for (size_t i = 0; i < n_slots; i++)
		s.slots[i] = (struct slot){ .last_us = INT64_MIN, .due_us = INT64_MAX };
	/* First grouped by rule, by point within a rule: the order of by_rule. */
	for (size_t i = 0; i < conf->n; i++) {
		const struct rule_def *d = &conf->rules[i];
		s.rule_first[i] = k;
		s.by_name[i] = (uint32_t)i;
		for (size_t j = 0; j < d->n_points; j++) {
			const struct point *p = registry_find(r->env.reg, d->points[j]);
			/* Validated against the same config a moment ago; a point gone since is skipped. */
			if (!p || p->id >= s.n_ix)
				continue;
			grouped[k++] = (struct inst){
				.rule = d, .point = p->id, .timer_us = INT64_MAX, .last_good_us = now,
				.last_raise_us = INT64_MIN, .heap_due = INT64_MAX, .value = NAN,
			};
		}
		qsort(grouped + s.rule_first[i], k - s.rule_first[i], sizeof(*grouped), cmp_point);
		for (size_t j = s.rule_first[i]; j < k && d->n_targets > 0; j++) {
			grouped[j].slots = s.slots + si;
			si += d->n_targets;
		}
	}
	s.rule_first[conf->n] = k;
	s.n_insts = k;
	qsort_r(s.by_name, conf->n, sizeof(*s.by_name), cmp_name, conf);

	/* Then moved to their place in point order, a counting sort that keeps the rule order. */
	for (size_t i = 0; i < k; i++)
		s.ix_start[grouped[i].point + 1]++;
	for (uint32_t id = 0; id < s.n_ix; id++)
		s.ix_start[id + 1] += s.ix_start[id];
	for (size_t i = 0; i < k; i++) {
		uint32_t id = grouped[i].point, at = s.ix_start[id] + fill[id]++;
		s.insts[at] = grouped[i];
		s.by_rule[i] = at;
	}
	free(grouped);
	free(fill);
	*ret = s;
	return 0;
nomem:
	free(grouped);
	free(fill);
	/* CONF is the caller's again on failure. */
	s.conf = NULL;
	set_done(&s);
	return -ENOMEM;
}

/* Puts every instance that waits for something (a stale check, a delay) into the heap. */
static void set_schedule_all(rules *r) {
	for (size_t i = 0; i < r->s.n_insts; i++)
		schedule(r, &r->s.insts[i]);
}

int rules_new(const struct rules_env *env, rules_conf *conf, int64_t now_mono_us, rules **ret) {
	rules *r;
	int err;

	if (!env || !env->reg || !conf) {
		rules_conf_free(conf);
		return -EINVAL;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		rules_conf_free(conf);
		return -ENOMEM;
	}
	r->env = *env;
	r->env.gateway_id = NULL; /* the daemon's string may not outlive a reload: we keep a copy */
	r->wall = default_wall;
	r->now_us = now_mono_us;
	if ((err = rules_set_gateway_id(r, env->gateway_id)) < 0 ||
	    (err = set_build(r, conf, now_mono_us, &r->s)) < 0) {
		rules_conf_free(conf);
		rules_free(r);
		return err;
	}
	set_schedule_all(r);
	r->st.rules = conf->n;
	r->st.instances = r->s.n_insts;
	*ret = r;
	return 0;
}

void rules_free(rules *r) {
	if (!r)
		return;
	/* Writes still in flight answer later; they must find no engine then. */
	for (struct wreq *w = r->writes; w; w = w->next)
		w->r = NULL;
	set_done(&r->s);
	free(r->gateway_id);
	free(r->b1.p);
	free(r->b2.p);
	free(r);
}

void rules_set_wall_clock(rules *r, int64_t (*wall)(void *ctx), void *ctx) {
	r->wall = wall ? wall : default_wall;
	r->wall_ctx = ctx;
}

int rules_set_gateway_id(rules *r, const char *gateway_id) {
	char *copy = strdup(gateway_id ? gateway_id : "");

	if (!copy)
		return -ENOMEM;
	free(r->gateway_id);
	r->gateway_id = copy;
	return 0;
}

void rules_get_stats(const rules *r, struct rules_stats *ret) {
	*ret = r->st;
}

/* The runtime state of X but its rate limits carried over into Y (same rule, same point). */
static void carry_state(struct inst *y, const struct inst *x) {
	y->timer_us = x->timer_us;
	y->last_good_us = x->last_good_us;
	y->last_raise_us = x->last_raise_us;
	y->since_us = x->since_us;
	y->prev_ts = x->prev_ts;
	y->prev_v = x->prev_v;
	y->value = x->value;
	y->state = x->state;
	y->has_prev = x->has_prev;
	y->stale = x->stale;
}

/* All the runtime state of X carried over into Y (same rule definition, same point). */
static void carry(struct inst *y, const struct inst *x) {
	carry_state(y, x);
	for (size_t i = 0; y->slots && x->slots && i < y->rule->n_targets; i++)
		y->slots[i] = x->slots[i];
}

/*
 * Whether the alarm of X (active or acked) still holds by D, the changed
 * definition of its rule, judged on what the instance knows now. A rate
 * condition cannot be judged without the next reading: it does not hold.
 */
static bool still_holds(const struct rule_def *d, const struct inst *x, int64_t now) {
	switch (d->cond) {
	case C_STALE:
		return x->stale && add_sat(x->last_good_us, d->stale_us) <= now;
	case C_BAD_QUALITY:
		/* Active with no clear delay running: the last reading was bad. */
		return x->timer_us == INT64_MAX;
	case C_RATE_ABOVE:
	case C_RATE_BELOW:
		return false;
	default:
		return isfinite(x->value) && value_cond(d, x->value, true);
	}
}

/*
 * Keeps the alarm of X in Y, the instance of the changed rule on the same
 * point, when the new definition still holds: clearing and raising it
 * again would pulse the actuators its actions drive (a pump off for a few
 * milliseconds). Rate limits carry over per target name; a write still
 * deferred to a target the new rule no longer writes goes out now.
 * Returns whether Y took X over.
 */
static bool adopt(rules *r, struct inst *y, struct inst *x, int64_t now) {
	const struct rule_def *od = x->rule, *nd = y->rule;
	const struct point *p;

	if ((x->state != S_ACTIVE && x->state != S_ACKED) || od->cond != nd->cond || !still_holds(nd, x, now))
		return false;
	carry_state(y, x);
	y->timer_us = INT64_MAX; /* it holds: a clear delay in progress is cancelled */
	for (size_t j = 0; x->slots && j < od->n_targets; j++) {
		size_t i = 0;
		while (i < nd->n_targets && strcmp(nd->targets[i], od->targets[j]) != 0)
			i++;
		if (i < nd->n_targets)
			y->slots[i] = x->slots[j];
		else if (x->slots[j].due_us != INT64_MAX)
			do_write(r, x, od->targets[j], x->slots[j].value);
	}
	p = registry_get(r->env.reg, x->point);
	log_info("rule \"%s\" on %s: changed by a reload and still holds: stays %s", nd->name, p ? p->name : "?",
	         state_names[y->state]);
	return true;
}

/*
 * Ends an instance whose rule a reload removed or changed. Its alarm ends
 * with a transition to normal, so a restore never brings it back, and with
 * its on_clear actions, so that an actuator the raise switched (a burner
 * turned off) does not stay so with no rule left to switch it back. A write
 * still deferred by the rate limit goes out now for the same reason.
 */
static void end_inst(rules *r, struct inst *x, int64_t now, int64_t wall) {
	const struct rule_def *d = x->rule;
	bool raised = x->state == S_ACTIVE || x->state == S_ACKED || x->state == S_LATCHED;

	for (size_t i = 0; x->slots && i < d->n_targets; i++)
		if (x->slots[i].due_us != INT64_MAX) {
			x->slots[i].due_us = INT64_MAX;
			do_write(r, x, d->targets[i], x->slots[i].value);
		}
	if (x->state == S_NORMAL)
		return;
	x->timer_us = INT64_MAX;
	transition(r, x, S_NORMAL, "rule removed or changed by a reload", wall);
	if (raised)
		run_actions(r, x, 1, now, wall, true);
}

int rules_reconfigure(rules *r, rules_conf *conf, int64_t now_mono_us) {
	struct set s, old;
	int64_t wall;
	size_t active = 0;
	int err;

	/* No rules left is a rule set too: every instance then ends below. */
	if (!conf && !(conf = calloc(1, sizeof(*conf))))
		return -ENOMEM;
	if ((err = set_build(r, conf, now_mono_us, &s)) < 0) {
		rules_conf_free(conf);
		return err;
	}
	wall = wall_now(r);
	r->now_us = now_mono_us;
	for (size_t i = 0; i < conf->n; i++) {
		const struct rule_def *d = &conf->rules[i];
		int o = find_rule(&r->s, d->name);
		bool same;
		if (o < 0)
			continue;
		/* An unchanged definition keeps every state; a changed one only alarms that still hold. */
		same = cJSON_Compare(r->s.conf->rules[o].src, d->src, true);
		for (size_t j = s.rule_first[i]; j < s.rule_first[i + 1]; j++) {
			struct inst *y = &s.insts[s.by_rule[j]], *x = find_inst(&r->s, o, y->point);
			if (!x)
				continue;
			if (same)
				carry(y, x);
			else if (!adopt(r, y, x, now_mono_us))
				continue;
			x->rule = NULL; /* marks it carried */
		}
	}
	/* An instance that does not carry over ends here. */
	for (size_t i = 0; i < r->s.n_insts; i++)
		if (r->s.insts[i].rule)
			end_inst(r, &r->s.insts[i], now_mono_us, wall);
	old = r->s;
	r->s = s;
	set_done(&old);
	for (size_t i = 0; i < r->s.n_insts; i++)
		if (r->s.insts[i].state != S_NORMAL)
			active++;
	r->st.active = active;
	r->st.rules = conf->n;
	r->st.instances = r->s.n_insts;
	set_schedule_all(r);
	return 0;
}

/* --- restore --- */

int rules_restore(rules *r, const char *db_path) {
	static const char sql[] =
		"SELECT e.source, e.point, e.to_state, e.ts FROM events e "
		"JOIN (SELECT max(id) AS id FROM events WHERE kind = 'rule' GROUP BY source, point) m "
		"ON m.id = e.id";
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t wall, now;
	int rc, err = 0, restored = 0;

	if (!r || !db_path)
		return -EINVAL;
	rc = sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL);
	if (rc == SQLITE_CANTOPEN) {
		/* No database yet: nothing to restore. */
		sqlite3_close(db);
		return 0;
	}
	if (rc != SQLITE_OK)
		goto sqlite_fail;
	sqlite3_busy_timeout(db, 2000);
	rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK) {
		/* A database without an events table (never used by m2md) has nothing to restore. */
		if (rc == SQLITE_ERROR && strstr(sqlite3_errmsg(db), "no such table")) {
			sqlite3_close(db);
			return 0;
		}
		goto sqlite_fail;
	}
	wall = wall_now(r);
	now = r->now_us;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *rule = (const char *)sqlite3_column_text(st, 0);
		const char *to = (const char *)sqlite3_column_text(st, 2);
		uint32_t point = (uint32_t)sqlite3_column_int64(st, 1);
		int64_t ts = sqlite3_column_int64(st, 3);
		struct inst *x;
		int ri, state = -1;

		if (!rule || !to || (ri = find_rule(&r->s, rule)) < 0 || !(x = find_inst(&r->s, ri, point)))
			continue;
		for (int i = 0; i < S_COUNT; i++)
			if (strcmp(to, state_names[i]) == 0)
				state = i;
		if (state <= S_NORMAL || x->state != S_NORMAL)
			continue;
		x->state = (uint8_t)state;
		x->since_us = ts;
		/* Active states stay active without their raise actions; a stale alarm waits for data. */
		if (x->rule->cond == C_STALE && state != S_PENDING)
			x->stale = true;
		if (state == S_PENDING) {
			/* The raise delay resumes with what was left of it when the daemon stopped. */
			int64_t left = x->rule->for_us - (wall - ts);
			if (x->rule->cond == C_STALE) {
				x->state = S_NORMAL; /* the stale clock restarts with the daemon */
				continue;
			}
			x->timer_us = add_sat(now, left > 0 ? left : 0);
			schedule(r, x);
		}
		r->st.active++;
		restored++;
	}
	if (rc != SQLITE_DONE)
		goto sqlite_fail;
	sqlite3_finalize(st);
	sqlite3_close(db);
	return restored;

sqlite_fail:
	err = store_sqlite_errno(db, rc);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return err;
}

/* --- ack and status --- */

static int ack_one(rules *r, struct inst *x, int64_t wall) {
	int64_t now;

	if (x->state == S_ACTIVE) {
		transition(r, x, S_ACKED, "acknowledged", wall);
		return 1;
	}
	if (x->state != S_LATCHED)
		return 0;
	/* The condition already cleared: the acknowledgement ends the alarm. */
	now = r->now_us;
	transition(r, x, S_NORMAL, "acknowledged", wall);
	run_actions(r, x, 1, now, wall, false);
	return 1;
}

int rules_ack(rules *r, const char *rule, const char *point) {
	const struct point *p = NULL;
	int ri, n = 0;
	int64_t wall;

	if (!r || !rule)
		return -EINVAL;
	if ((ri = find_rule(&r->s, rule)) < 0)
		return -ENOENT;
	if (point && (!(p = registry_find(r->env.reg, point)) || !find_inst(&r->s, ri, p->id)))
		return -ENOENT;
	wall = wall_now(r);
	for (size_t j = r->s.rule_first[ri]; j < r->s.rule_first[ri + 1]; j++) {
		struct inst *x = &r->s.insts[r->s.by_rule[j]];
		if (!p || x->point == p->id)
			n += ack_one(r, x, wall);
	}
	return n;
}

cJSON *rules_status_json(const rules *r, bool all) {
	cJSON *arr = cJSON_CreateArray();

	if (!arr || !r)
		return arr;
	/* By default only alarms that are not normal: a gateway may run thousands of quiet rules. */
	for (size_t i = 0; i < r->s.n_insts; i++) {
		const struct inst *x = &r->s.insts[i];
		const struct point *p;
		cJSON *o;

		if (x->state == S_NORMAL && !all)
			continue;
		p = registry_get(r->env.reg, x->point);
		o = cJSON_CreateObject();
		if (!o || !cJSON_AddItemToArray(arr, o))
			break;
		cJSON_AddStringToObject(o, "rule", x->rule->name);
		cJSON_AddStringToObject(o, "point", p ? p->name : "");
		cJSON_AddStringToObject(o, "state", state_names[x->state]);
		cJSON_AddStringToObject(o, "severity", severity_names[x->rule->severity]);
		cJSON_AddBoolToObject(o, "latch", x->rule->latch);
		if (isfinite(x->value))
			cJSON_AddNumberToObject(o, "value", x->value);
		else
			cJSON_AddNullToObject(o, "value");
		cJSON_AddNumberToObject(o, "since_us", (double)x->since_us);
	}
	return arr;
}
