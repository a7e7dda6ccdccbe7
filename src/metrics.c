/* SPDX-License-Identifier: MIT */
#include "metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fmt.h"
#include "util.h"

struct series {
	struct series *next;
	const void *owner;
	struct metric_source src;
	char *values[];            /* one per label, in the same allocation */
};

struct metric_family {
	struct metric_family *next; /* registration order */
	char *name, *help, *labels, *json;
	char *exposed;             /* the name with the suffix of its type */
	enum metric_type type;
	size_t n_labels;
	char *label[METRICS_MAX_LABELS]; /* into label_buf */
	char *label_buf;
	unsigned json_used;        /* bit i: the json path uses label i */
	struct series *series, **series_tail;
};

struct refresh {
	struct refresh *next;
	const void *owner;
	void (*fn)(void *arg);
	void *arg;
};

struct metrics {
	struct metric_family *families, **families_tail;
	struct refresh *refresh, **refresh_tail;
};

/* A value as read from its source: u64 sources stay exact. */
struct value {
	bool is_u64;
	uint64_t u;
	double d;
};

int metrics_new(metrics **ret) {
	metrics *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	m->families_tail = &m->families;
	m->refresh_tail = &m->refresh;
	*ret = m;
	return 0;
}

static void family_free(struct metric_family *f) {
	struct series *s, *next;

	if (!f)
		return;
	for (s = f->series; s; s = next) {
		next = s->next;
		free(s);
	}
	free(f->name);
	free(f->help);
	free(f->labels);
	free(f->json);
	free(f->exposed);
	free(f->label_buf);
	free(f);
}

void metrics_free(metrics *m) {
	struct metric_family *f, *fnext;
	struct refresh *r, *rnext;

	if (!m)
		return;
	for (f = m->families; f; f = fnext) {
		fnext = f->next;
		family_free(f);
	}
	for (r = m->refresh; r; r = rnext) {
		rnext = r->next;
		free(r);
	}
	free(m);
}

/* --- validation --- */

static bool is_alpha_(char c) {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(char c) {
	return c >= '0' && c <= '9';
}

static bool endswith(const char *s, const char *suffix) {
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* The exposition's metric name grammar; the suffixes are the registry's own rule. */
static bool valid_metric_name(const char *s) {
	if (!s || !(is_alpha_(s[0]) || s[0] == ':'))
		return false;
	for (const char *p = s + 1; *p; p++)
		if (!is_alpha_(*p) && !is_digit(*p) && *p != ':')
			return false;
	return !endswith(s, "_total") && !endswith(s, "_info");
}

/* A label name of N bytes at S; "__" names are reserved for Prometheus itself. */
static bool valid_label_name(const char *s, size_t n) {
	if (n == 0 || !is_alpha_(s[0]) || (n >= 2 && s[0] == '_' && s[1] == '_'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!is_alpha_(s[i]) && !is_digit(s[i]))
			return false;
	return true;
}

static int label_index(const struct metric_family *f, const char *s, size_t n) {
	for (size_t i = 0; i < f->n_labels; i++)
		if (strlen(f->label[i]) == n && memcmp(f->label[i], s, n) == 0)
			return (int)i;
	return -1;
}

/* Splits the copy of the label list into F's label names. */
static int parse_labels(struct metric_family *f) {
	char *p = f->label_buf;

	if (!p || !*p)
		return 0;
	for (;;) {
		char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);

		if (f->n_labels == METRICS_MAX_LABELS || !valid_label_name(p, n) ||
		    label_index(f, p, n) >= 0)
			return -EINVAL;
		f->label[f->n_labels++] = p;
		if (!comma)
			return 0;
		*comma = '\0';
		p = comma + 1;
	}
}

/* --- json paths --- */

/* The longest member name a selector key[member=label] may use, with its NUL. */
#define JSON_MEMBER_MAX 64

/* One segment of a json path: KEY (a template), and for key[member=label] the rest. */
struct seg {
	const char *key;
	size_t key_len;
	const char *member;        /* NULL: an object member */
	size_t member_len;
	int label;                 /* index of the selecting label */
};

/*
 * Parses the segment at *P (advancing it past the segment and its '/').
 * Returns 1 and *SEG, 0 at the end of the path, or -EINVAL.
 */
static int next_seg(const struct metric_family *f, const char **p, struct seg *seg) {
	const char *s = *p, *end = strchr(s, '/'), *br;

	if (!*s)
		return 0;
	if (!end)
		end = s + strlen(s);
	*seg = (struct seg){ .key = s, .key_len = (size_t)(end - s), .label = -1 };
	br = memchr(s, '[', (size_t)(end - s));
	if (br) {
		const char *eq = memchr(br, '=', (size_t)(end - br));
		if (!eq || end[-1] != ']' || eq == br + 1)
			return -EINVAL;
		seg->key_len = (size_t)(br - s);
		seg->member = br + 1;
		seg->member_len = (size_t)(eq - br - 1);
		seg->label = label_index(f, eq + 1, (size_t)(end - 1 - eq - 1));
		if (seg->label < 0)
			return -EINVAL;
	}
	if (seg->key_len == 0)
		return -EINVAL;
	*p = *end ? end + 1 : end;
	return 1;
}

/*
 * Expands the key template of SEG for series S: {label} and {.label}.
 * With S NULL only checks it, marking the labels used in *USED. Returns a
 * malloc'd string (S given), or NULL with *ERR set (-EINVAL, -ENOMEM); in
 * check mode a successful return is NULL with *ERR 0.
 */
static char *expand(const struct metric_family *f, const struct seg *seg, const struct series *s,
                    unsigned *used, int *err) {
	size_t cap = seg->key_len + 1, len = 0;
	char *out = s ? malloc(cap) : NULL;
	const char *k = seg->key, *end = seg->key + seg->key_len;

	*err = 0;
	if (s && !out)
		goto nomem;
	while (k < end) {
		const char *piece = k, *close;
		size_t n = 1;
		bool dot = false;
		int li;

		if (*k == '{') {
			close = memchr(k, '}', (size_t)(end - k));
			if (!close)
				goto invalid;
			dot = k[1] == '.';
			li = label_index(f, k + 1 + dot, (size_t)(close - k - 1 - dot));
			if (li < 0)
				goto invalid;
			if (used)
				*used |= 1u << li;
			k = close + 1;
			if (!s)
				continue;
			piece = s->values[li];
			n = strlen(piece);
			if (n == 0)
				continue;
			if (dot) {
				/* The '.' goes first: one more byte than the value. */
				if (len + 1 + n + 1 > cap) {
					char *p = realloc(out, cap = len + 1 + n + 1 + cap);
					if (!p)
						goto nomem;
					out = p;
				}
				out[len++] = '.';
			}
		} else if (*k == '}') {
			goto invalid;
		} else {
			k++;
		}
		if (!s)
			continue;
		if (len + n + 1 > cap) {
			char *p = realloc(out, cap = len + n + 1 + cap);
			if (!p)
				goto nomem;
			out = p;
		}
		memcpy(out + len, piece, n);
		len += n;
	}
	if (!s)
		return NULL;
	out[len] = '\0';
	return out;

invalid:
	free(out);
	*err = -EINVAL;
	return NULL;
nomem:
	free(out);
	*err = -ENOMEM;
	return NULL;
}

/* Checks F's json path and notes which labels it uses. */
static int check_json(struct metric_family *f) {
	const char *p = f->json;
	struct seg seg = { 0 };
	int r, err, n = 0;

	if (!p)
		return 0;
	while ((r = next_seg(f, &p, &seg)) > 0) {
		n++;
		expand(f, &seg, NULL, &f->json_used, &err);
		if (err < 0)
			return err;
		if (seg.member && seg.member_len >= JSON_MEMBER_MAX)
			return -EINVAL;
		if (seg.label >= 0)
			f->json_used |= 1u << seg.label;
	}
	if (r < 0)
		return r;
	/* A number needs a member to go into; an info may fill the root. */
	if (f->type != METRIC_INFO && (n == 0 || seg.member))
		return -EINVAL;
	/* A '/' at the start or the end, or two together, is an empty segment. */
	if (f->json[0] == '/' || (f->json[0] && f->json[strlen(f->json) - 1] == '/') ||
	    strstr(f->json, "//"))
		return -EINVAL;
	return 0;
}

/* --- families and series --- */

static bool same_str(const char *a, const char *b) {
	return (!a || !*a) ? (!b || !*b) : (b && strcmp(a, b) == 0);
}

metric_family *metrics_find(metrics *m, const char *name) {
	for (struct metric_family *f = m->families; f; f = f->next)
		if (strcmp(f->name, name) == 0)
			return f;
	return NULL;
}

static int family_build(const struct metric_desc *d, struct metric_family **ret) {
	static const char *const suffix[] = {
		[METRIC_COUNTER] = "_total", [METRIC_GAUGE] = "", [METRIC_INFO] = "_info",
	};
	struct metric_family *f = calloc(1, sizeof(*f));
	int err;

	if (!f)
		return -ENOMEM;
	f->type = d->type;
	f->series_tail = &f->series;
	f->name = strdup(d->name);
	f->help = strdup(d->help);
	f->labels = strdup(d->labels ? d->labels : "");
	f->label_buf = strdup(f->labels ? f->labels : "");
	f->json = d->json ? strdup(d->json) : NULL;
	f->exposed = strdup_printf("%s%s", d->name, suffix[d->type]);
	if (!f->name || !f->help || !f->labels || !f->label_buf || (d->json && !f->json) ||
	    !f->exposed) {
		err = -ENOMEM;
		goto fail;
	}
	err = parse_labels(f);
	if (err < 0)
		goto fail;
	err = check_json(f);
	if (err < 0)
		goto fail;
	*ret = f;
	return 0;
fail:
	family_free(f);
	return err;
}

int metrics_family(metrics *m, const struct metric_desc *desc, metric_family **ret) {
	struct metric_family *f;
	int err;

	if (!desc || !valid_metric_name(desc->name) || !desc->help || !desc->help[0] ||
	    (desc->type != METRIC_COUNTER && desc->type != METRIC_GAUGE && desc->type != METRIC_INFO))
		return -EINVAL;
	f = metrics_find(m, desc->name);
	if (f) {
		if (f->type != desc->type || strcmp(f->help, desc->help) != 0 ||
		    !same_str(f->labels, desc->labels) || !same_str(f->json, desc->json))
			return -EEXIST;
		*ret = f;
		return 0;
	}
	/*
	 * Exposed names cannot collide: base names are unique and none ends in
	 * a suffix the registry adds.
	 */
	err = family_build(desc, &f);
	if (err < 0)
		return err;
	*m->families_tail = f;
	m->families_tail = &f->next;
	*ret = f;
	return 0;
}

static bool same_values(const struct metric_family *f, const struct series *s,
                        const char *const *values) {
	for (size_t i = 0; i < f->n_labels; i++)
		if (strcmp(s->values[i], values[i]) != 0)
			return false;
	return true;
}

int metrics_add(metrics *m, metric_family *f, const void *owner, const char *const *values,
                const struct metric_source *src) {
	struct series *s;
	size_t size = sizeof(*s) + f->n_labels * sizeof(char *);
	char *p;

	if (f->type != METRIC_INFO) {
		int set = 0;
		if (!src)
			return -EINVAL;
		set = !!src->u64 + !!src->f64 + !!src->get_u64 + !!src->get_f64;
		if (set != 1)
			return -EINVAL;
	}
	for (size_t i = 0; i < f->n_labels; i++) {
		if (!values || !values[i])
			return -EINVAL;
		size += strlen(values[i]) + 1;
	}
	for (s = f->series; s; s = s->next)
		if (same_values(f, s, values))
			return -EEXIST;
	s = calloc(1, size);
	if (!s)
		return -ENOMEM;
	s->owner = owner;
	if (f->type != METRIC_INFO)
		s->src = *src;
	p = (char *)&s->values[f->n_labels];
	for (size_t i = 0; i < f->n_labels; i++) {
		size_t n = strlen(values[i]) + 1;
		memcpy(p, values[i], n);
		s->values[i] = p;
		p += n;
	}
	*f->series_tail = s;
	f->series_tail = &s->next;
	return 0;
}

int metrics_add_u64(metrics *m, metric_family *fam, const void *owner, const char *const *values,
                    const uint64_t *v) {
	return metrics_add(m, fam, owner, values, &(struct metric_source){ .u64 = v });
}

int metrics_add_double(metrics *m, metric_family *fam, const void *owner,
                       const char *const *values, const double *v) {
	return metrics_add(m, fam, owner, values, &(struct metric_source){ .f64 = v });
}

int metrics_add_list(metrics *m, const void *owner, const struct metric_entry *list, size_t n) {
	for (size_t i = 0; i < n; i++) {
		const char *values[1] = { list[i].label };
		metric_family *f;
		int err = metrics_family(m, &list[i].desc, &f);

		if (err >= 0)
			err = metrics_add(m, f, owner, list[i].label ? values : NULL, &list[i].src);
		if (err < 0)
			return err;
	}
	return 0;
}

int metrics_add_refresh(metrics *m, const void *owner, void (*fn)(void *arg), void *arg) {
	struct refresh *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	*r = (struct refresh){ .owner = owner, .fn = fn, .arg = arg };
	*m->refresh_tail = r;
	m->refresh_tail = &r->next;
	return 0;
}

size_t metrics_remove_owner(metrics *m, const void *owner) {
	size_t removed = 0;

	for (struct metric_family *f = m->families; f; f = f->next) {
		struct series **pp = &f->series;
		while (*pp) {
			struct series *s = *pp;
			if (s->owner == owner) {
				*pp = s->next;
				free(s);
				removed++;
			} else {
				pp = &s->next;
			}
		}
		f->series_tail = pp;
	}
	for (struct refresh **pp = &m->refresh; *pp;) {
		struct refresh *r = *pp;
		if (r->owner == owner) {
			*pp = r->next;
			free(r);
		} else {
			pp = &r->next;
		}
	}
	m->refresh_tail = &m->refresh;
	while (*m->refresh_tail)
		m->refresh_tail = &(*m->refresh_tail)->next;
	return removed;
}

/* --- values --- */

static void run_refresh(metrics *m) {
	for (struct refresh *r = m->refresh; r; r = r->next)
		r->fn(r->arg);
}

static struct value read_value(const struct metric_family *f, const struct series *s) {
	const struct metric_source *src = &s->src;

	if (f->type == METRIC_INFO)
		return (struct value){ .is_u64 = true, .u = 1, .d = 1 };
	if (src->u64)
		return (struct value){ .is_u64 = true, .u = *src->u64, .d = (double)*src->u64 };
	if (src->get_u64) {
		uint64_t u = src->get_u64(src->arg);
		return (struct value){ .is_u64 = true, .u = u, .d = (double)u };
	}
	return (struct value){ .d = src->f64 ? *src->f64 : src->get_f64(src->arg) };
}

/*
 * The sum of F's series (those whose label LABEL is VALUE, when LABEL is
 * not negative); exact while every source is a u64 and the sum fits.
 */
static struct value family_sum(const struct metric_family *f, int label, const char *value,
                               size_t value_len) {
	struct value sum = { .is_u64 = true };

	for (const struct series *s = f->series; s; s = s->next) {
		struct value v;

		if (label >= 0 && (strlen(s->values[label]) != value_len ||
		                   memcmp(s->values[label], value, value_len) != 0))
			continue;
		v = read_value(f, s);
		if (sum.is_u64 && v.is_u64 && sum.u + v.u >= sum.u) {
			sum.u += v.u;
			sum.d = (double)sum.u;
		} else {
			sum.is_u64 = false;
			sum.d += v.d;
		}
	}
	return sum;
}

double metrics_sum(metrics *m, const metric_family *fam) {
	run_refresh(m);
	return family_sum(fam, -1, NULL, 0).d;
}

/* VALUE as the exposition and the stats line write it. Returns the length, as snprintf does. */
static int format_value(struct value v, int decimals, char *buf, size_t n) {
	if (v.is_u64 && decimals < 0)
		return snprintf(buf, n, "%" PRIu64, v.u);
	if (isnan(v.d))
		return snprintf(buf, n, "NaN");
	if (isinf(v.d))
		return snprintf(buf, n, v.d > 0 ? "+Inf" : "-Inf");
	if (decimals >= 0)
		return snprintf(buf, n, "%.*f", decimals, v.d);
	return fmt_double(v.d, buf, n);
}

/* --- JSON --- */

/* The object member KEY of PARENT as an object or array (TYPE), created when absent. */
static cJSON *child(cJSON *parent, const char *key, int type, int *err) {
	cJSON *c = cJSON_GetObjectItemCaseSensitive(parent, key);

	if (c)
		return (c->type & 0xff) == type ? c : (*err = -EINVAL, NULL);
	c = type == cJSON_Array ? cJSON_CreateArray() : cJSON_CreateObject();
	if (!c || !cJSON_AddItemToObject(parent, key, c)) {
		cJSON_Delete(c);
		*err = -ENOMEM;
		return NULL;
	}
	return c;
}

/* The element of the array A whose string MEMBER is VALUE, appended when absent. */
static cJSON *element(cJSON *a, const char *member, const char *value, int *err) {
	cJSON *e;

	cJSON_ArrayForEach(e, a) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, member);
		if (cJSON_IsString(v) && strcmp(v->valuestring, value) == 0)
			return e;
	}
	e = cJSON_CreateObject();
	if (!e || !cJSON_AddStringToObject(e, member, value) || !cJSON_AddItemToArray(a, e)) {
		cJSON_Delete(e);
		*err = -ENOMEM;
		return NULL;
	}
	return e;
}

/* Sets member KEY of O to ITEM (taken over), replacing what was there. */
static int put(cJSON *o, const char *key, cJSON *item) {
	if (!item)
		return -ENOMEM;
	if (cJSON_GetObjectItemCaseSensitive(o, key))
		return cJSON_ReplaceItemInObjectCaseSensitive(o, key, item) ? 0 : (cJSON_Delete(item), -ENOMEM);
	return cJSON_AddItemToObject(o, key, item) ? 0 : (cJSON_Delete(item), -ENOMEM);
}

static int json_series(cJSON *root, const struct metric_family *f, const struct series *s) {
	const char *p = f->json;
	cJSON *o = root;
	char *key = NULL;
	struct seg seg = { 0 };
	int r, err = 0;

	/* Each segment but the last names an object on the way; the last one the leaf. */
	while ((r = next_seg(f, &p, &seg)) > 0) {
		free(key);
		key = expand(f, &seg, s, NULL, &err);
		if (!key)
			return err;
		if (!*p && !seg.member && f->type != METRIC_INFO)
			break;
		if (seg.member) {
			char member[JSON_MEMBER_MAX];
			cJSON *a = child(o, key, cJSON_Array, &err);
			if (!a)
				goto out;
			/* check_json() kept it short enough. */
			memcpy(member, seg.member, seg.member_len);
			member[seg.member_len] = '\0';
			o = element(a, member, s->values[seg.label], &err);
		} else {
			o = child(o, key, cJSON_Object, &err);
		}
		if (!o)
			goto out;
	}
	if (f->type == METRIC_INFO) {
		for (size_t i = 0; i < f->n_labels && !err; i++)
			if (!(f->json_used & (1u << i)))
				err = put(o, f->label[i], cJSON_CreateString(s->values[i]));
	} else {
		err = put(o, key, cJSON_CreateNumber(read_value(f, s).d));
	}
out:
	free(key);
	return err;
}

int metrics_json(metrics *m, cJSON *root) {
	run_refresh(m);
	for (const struct metric_family *f = m->families; f; f = f->next) {
		if (!f->json)
			continue;
		for (const struct series *s = f->series; s; s = s->next) {
			int err = json_series(root, f, s);
			if (err < 0)
				return err;
		}
	}
	return 0;
}

/* --- the stats line --- */

/* Appends S (N bytes) at *LEN of BUF (CAP bytes), as far as it fits. */
static void append(char *buf, size_t cap, size_t *len, const char *s, size_t n) {
	if (*len < cap) {
		size_t k = n < cap - *len ? n : cap - *len;
		memcpy(buf + *len, s, k);
	}
	*len += n;
}

/* A placeholder of the stats line: name[label=value]:.N, the selector and the digits optional. */
struct placeholder {
	char name[128];
	const char *label, *value;
	size_t label_len, value_len;
	int decimals;              /* -1: as the value is */
};

/* Parses the placeholder of N bytes at S. */
static int parse_placeholder(const char *s, size_t n, struct placeholder *ph) {
	const char *end = s + n, *colon, *br, *eq, *close;
	size_t k;

	*ph = (struct placeholder){ .decimals = -1 };
	/* A metric name may hold ':', but one in a template starts the digits. */
	colon = memchr(s, ':', n);
	if (colon) {
		if (end - colon != 3 || colon[1] != '.' || !is_digit(colon[2]))
			return -EINVAL;
		ph->decimals = colon[2] - '0';
		end = colon;
	}
	br = memchr(s, '[', (size_t)(end - s));
	k = (size_t)((br ? br : end) - s);
	if (k == 0 || k >= sizeof(ph->name))
		return -EINVAL;
	memcpy(ph->name, s, k);
	ph->name[k] = '\0';
	if (br) {
		eq = memchr(br, '=', (size_t)(end - br));
		close = end - 1;
		if (!eq || *close != ']' || eq == br + 1)
			return -EINVAL;
		ph->label = br + 1;
		ph->label_len = (size_t)(eq - br - 1);
		ph->value = eq + 1;
		ph->value_len = (size_t)(close - eq - 1);
	}
	return 0;
}

int metrics_line(metrics *m, const char *tpl, char *buf, size_t n) {
	size_t len = 0;

	run_refresh(m);
	for (const char *p = tpl; *p;) {
		const char *open = strchr(p, '{'), *close;
		struct placeholder ph;
		const struct metric_family *f;
		char num[64];
		int label = -1, k, err;

		if (!open) {
			append(buf, n, &len, p, strlen(p));
			break;
		}
		append(buf, n, &len, p, (size_t)(open - p));
		close = strchr(open, '}');
		if (!close)
			return -EINVAL;
		err = parse_placeholder(open + 1, (size_t)(close - open - 1), &ph);
		if (err < 0)
			return err;
		f = metrics_find(m, ph.name);
		if (!f)
			return -ENOENT;
		if (ph.label) {
			label = label_index(f, ph.label, ph.label_len);
			if (label < 0)
				return -ENOENT;
		}
		k = format_value(family_sum(f, label, ph.value, ph.value_len), ph.decimals, num,
		                 sizeof(num));
		append(buf, n, &len, num, (size_t)k);
		p = close + 1;
	}
	if (n)
		buf[len < n ? len : n - 1] = '\0';
	if (len >= n)
		return -ENOBUFS;
	return (int)len;
}

/* --- Prometheus text format 0.0.4 --- */

/* S with \ and newline escaped, and " too when QUOTE (label values). */
static void put_escaped(FILE *out, const char *s, bool quote) {
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\\\", out);
		else if (*s == '\n')
			fputs("\\n", out);
		else if (*s == '"' && quote)
			fputs("\\\"", out);
		else
			fputc(*s, out);
	}
}

static void put_family(FILE *out, const struct metric_family *f) {
	static const char *const type_name[] = {
		[METRIC_COUNTER] = "counter", [METRIC_GAUGE] = "gauge", [METRIC_INFO] = "gauge",
	};
	char num[64];

	fprintf(out, "# HELP %s ", f->exposed);
	put_escaped(out, f->help, false);
	fprintf(out, "\n# TYPE %s %s\n", f->exposed, type_name[f->type]);
	for (const struct series *s = f->series; s; s = s->next) {
		fputs(f->exposed, out);
		for (size_t i = 0; i < f->n_labels; i++) {
			fprintf(out, "%s%s=\"", i ? "," : "{", f->label[i]);
			put_escaped(out, s->values[i], true);
			fputc('"', out);
		}
		format_value(read_value(f, s), -1, num, sizeof(num));
		fprintf(out, "%s %s\n", f->n_labels ? "}" : "", num);
	}
}

static int by_exposed_name(const void *a, const void *b) {
	const struct metric_family *fa = *(const struct metric_family *const *)a;
	const struct metric_family *fb = *(const struct metric_family *const *)b;

	return strcmp(fa->exposed, fb->exposed);
}

int metrics_prometheus(metrics *m, FILE *out) {
	struct metric_family **sorted;
	size_t n = 0, i = 0;

	run_refresh(m);
	for (struct metric_family *f = m->families; f; f = f->next)
		n += f->series != NULL;
	sorted = calloc(n ? n : 1, sizeof(*sorted));
	if (!sorted)
		return -ENOMEM;
	for (struct metric_family *f = m->families; f; f = f->next)
		if (f->series)
			sorted[i++] = f;
	/* Names are unique, so the order is total and the same on every call. */
	qsort(sorted, n, sizeof(*sorted), by_exposed_name);
	for (i = 0; i < n; i++)
		put_family(out, sorted[i]);
	free(sorted);
	return ferror(out) ? -EIO : 0;
}
