/* SPDX-License-Identifier: MIT */
/*
 * Configuration: files are read here, parsed into cJSON by config-toml.cc,
 * and merged. Two side tables make good messages possible:
 *
 * - the source map, keyed by cJSON item pointer, says for every item its
 *   file, line and TOML type (cJSON cannot tell 1 from 1.0);
 * - the known set, keyed by (table pointer, key), records every key a
 *   getter asked for, present or not, so that config_check_unknown() can
 *   call everything else a typo and suggest the key that was meant.
 *
 * Both are open-addressing hash tables with linear probing, never full so
 * that probes always end at an empty slot: the known set at most half
 * full, the source map (one entry per item, thousands for a large gateway,
 * kept for as long as the configuration runs) at most three quarters.
 *
 * The source map is what a running configuration costs beside its tree,
 * so an entry is 16 bytes: key paths are not stored but found when an
 * error needs one (by a walk from the root: errors are rare, items many),
 * and an integer's exact value only when its double is not exact. The
 * known set is only needed until the check for unknown keys, and is
 * dropped by config_settle().
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config-toml.h"
#include "config.h"
#include "fmt.h"
#include "util.h"

/*
 * A configuration file larger than this is a mistake (a log or a database
 * named *.toml), and parsing it would cost a small gateway its memory.
 */
#define CONFIG_MAX_FILE_SIZE (16u * 1024u * 1024u)

/* Keys longer than this get no "did you mean" hint; typos are short. */
#define HINT_MAX_KEY 64

struct source {
	const cJSON *item; /* NULL: empty slot */
	uint32_t line;
	uint16_t file; /* index into config.files */
	uint8_t type;  /* enum config_toml_type */
	bool big;      /* an integer whose double is not exact: its value is in config.bigints */
};

/* Beyond 2^53 a double no longer holds every integer. */
#define EXACT_INT_MAX (INT64_C(1) << 53)

struct bigint {
	const cJSON *item;
	int64_t v;
};

/* Files beyond this many are refused: struct source keeps a 16-bit index. */
#define CONFIG_MAX_FILES UINT16_MAX

/*
 * The known set is per table: the names a getter asked for in one table,
 * as pointers into a pool of interned names (a configuration uses a few
 * dozen distinct key names over thousands of tables).
 */
struct known {
	const cJSON *obj; /* NULL: empty slot */
	const char **keys;
	uint32_t n_keys, cap_keys;
};

struct config {
	cJSON *root;

	char **files;
	size_t n_files;

	struct source *sources;
	size_t n_sources, cap_sources;
	struct bigint *bigints; /* the few integers beyond EXACT_INT_MAX, unordered */
	size_t n_bigints;

	struct known *known;
	size_t n_known, cap_known;
	char **names; /* interned key names; NULL: empty slot */
	size_t n_names, cap_names;
	/* A key could not be recorded: the unknown-key check cannot be trusted. */
	bool known_oom;
	/* config_settle() ran: keys asked for are no longer recorded. */
	bool settled;

	char *error;
	/* An error happened but its message could not be allocated. */
	bool error_oom;
};

/* The murmur3 finalizer: allocator addresses differ in few bits. */
static uint64_t mix64(uint64_t x) {
	x ^= x >> 33;
	x *= UINT64_C(0xff51afd7ed558ccd);
	x ^= x >> 33;
	x *= UINT64_C(0xc4ceb9fe1a85ec53);
	x ^= x >> 33;
	return x;
}

static uint64_t hash_ptr(const void *p) {
	return mix64((uint64_t)(uintptr_t)p);
}

static uint64_t hash_name(const char *key) {
	uint64_t h = UINT64_C(0xcbf29ce484222325);

	for (const char *p = key; *p; p++) {
		h ^= (unsigned char)*p;
		h *= UINT64_C(0x100000001b3);
	}
	return mix64(h);
}

/* --- source map --------------------------------------------------------- */

static struct source *source_find(const config *c, const cJSON *item) {
	size_t mask;

	if (!c || !item || c->cap_sources == 0)
		return NULL;
	mask = c->cap_sources - 1;
	for (size_t i = hash_ptr(item) & mask;; i = (i + 1) & mask) {
		if (!c->sources[i].item)
			return NULL;
		if (c->sources[i].item == item)
			return &c->sources[i];
	}
}

static struct source *source_slot(struct source *tab, size_t cap, const cJSON *item) {
	size_t mask = cap - 1, i = hash_ptr(item) & mask;

	while (tab[i].item && tab[i].item != item)
		i = (i + 1) & mask;
	return &tab[i];
}

static int source_grow(config *c) {
	size_t cap = c->cap_sources ? c->cap_sources * 2 : 256;
	struct source *tab;

	if (cap < c->cap_sources)
		return -ENOMEM;
	tab = calloc(cap, sizeof(*tab));
	if (!tab)
		return -ENOMEM;
	for (size_t i = 0; i < c->cap_sources; i++)
		if (c->sources[i].item)
			*source_slot(tab, cap, c->sources[i].item) = c->sources[i];
	free(c->sources);
	c->sources = tab;
	c->cap_sources = cap;
	return 0;
}

static struct bigint *bigint_find(const config *c, const cJSON *item) {
	for (size_t i = 0; i < c->n_bigints; i++)
		if (c->bigints[i].item == item)
			return &c->bigints[i];
	return NULL;
}

static void bigint_remove(config *c, const cJSON *item) {
	struct bigint *b = bigint_find(c, item);

	if (b)
		*b = c->bigints[--c->n_bigints];
}

static int source_add(config *c, const cJSON *item, uint16_t file, uint32_t line,
                      enum config_toml_type type, int64_t ival) {
	bool big = type == CONFIG_TOML_INTEGER && (ival > EXACT_INT_MAX || ival < -EXACT_INT_MAX);
	struct source *s;
	int r;

	if ((c->n_sources + 1) * 4 > c->cap_sources * 3) {
		r = source_grow(c);
		if (r < 0)
			return r;
	}
	if (big && !bigint_find(c, item)) {
		struct bigint *t = realloc(c->bigints, (c->n_bigints + 1) * sizeof(*t));

		if (!t)
			return -ENOMEM;
		c->bigints = t;
		c->bigints[c->n_bigints++] = (struct bigint){ .item = item };
	}
	s = source_slot(c->sources, c->cap_sources, item);
	if (!s->item)
		c->n_sources++;
	else if (s->big && !big)
		bigint_remove(c, item);
	if (big)
		bigint_find(c, item)->v = ival;
	*s = (struct source){ .item = item, .line = line, .file = file, .type = (uint8_t)type, .big = big };
	return 0;
}

/*
 * Removes ITEM's entry. Later entries of the same probe run move back into
 * the hole (backward-shift deletion), so lookups never need tombstones.
 */
static void source_remove(config *c, const cJSON *item) {
	struct source *s = source_find(c, item);
	size_t mask, i, j;

	if (!s)
		return;
	if (s->big)
		bigint_remove(c, item);
	c->n_sources--;
	mask = c->cap_sources - 1;
	i = (size_t)(s - c->sources);
	for (j = (i + 1) & mask; c->sources[j].item; j = (j + 1) & mask) {
		size_t home = hash_ptr(c->sources[j].item) & mask;

		/* The entry at J may fill the hole at I when its home is not in (I, J]. */
		if (i <= j ? (home <= i || home > j) : (home <= i && home > j)) {
			c->sources[i] = c->sources[j];
			i = j;
		}
	}
	c->sources[i] = (struct source){ 0 };
}

/*
 * Forgets ITEM and everything below it before they are freed, so that an
 * address the allocator hands out again never finds a stale entry.
 */
static void source_remove_tree(config *c, const cJSON *item) {
	const cJSON *child;

	cJSON_ArrayForEach(child, item)
		source_remove_tree(c, child);
	source_remove(c, item);
}

struct record_ctx {
	config *c;
	uint16_t file;
};

/* PATH is not kept: config_path() finds it again from the tree. */
static int record_item(void *userdata, const cJSON *item, uint32_t line,
                       enum config_toml_type type, int64_t ival, const char *path) {
	struct record_ctx *ctx = userdata;

	(void)path;
	return source_add(ctx->c, item, ctx->file, line, type, ival);
}

/* --- known keys --------------------------------------------------------- */

/* The slot of NAME in the pool, or the empty slot where it would go. */
static char **name_slot(char **tab, size_t cap, const char *name) {
	size_t mask = cap - 1;

	for (size_t i = hash_name(name) & mask;; i = (i + 1) & mask)
		if (!tab[i] || strcmp(tab[i], name) == 0)
			return &tab[i];
}

/* A zeroed open-addressing table twice as large as *CAP (which it updates), or NULL. */
static void *table_double(size_t *cap, size_t size) {
	size_t n = *cap ? *cap * 2 : 64;
	void *t = n > *cap ? calloc(n, size) : NULL;

	if (t)
		*cap = n;
	return t;
}

/* The interned copy of NAME, or NULL when it is not in the pool (ADD false) or on OOM. */
static const char *name_intern(config *c, const char *name, bool add) {
	char **slot, **old = c->names;
	size_t old_cap = c->cap_names;

	if (c->cap_names > 0 && *(slot = name_slot(c->names, c->cap_names, name)))
		return *slot;
	if (!add)
		return NULL;
	if ((c->n_names + 1) * 2 > c->cap_names) {
		if (!(c->names = table_double(&c->cap_names, sizeof(*c->names)))) {
			c->names = old;
			return NULL;
		}
		for (size_t i = 0; i < old_cap; i++)
			if (old[i])
				*name_slot(c->names, c->cap_names, old[i]) = old[i];
		free(old);
	}
	slot = name_slot(c->names, c->cap_names, name);
	if (!(*slot = strdup(name)))
		return NULL;
	c->n_names++;
	return *slot;
}

static struct known *known_slot(struct known *tab, size_t cap, const cJSON *obj) {
	size_t mask = cap - 1;

	for (size_t i = hash_ptr(obj) & mask;; i = (i + 1) & mask)
		if (!tab[i].obj || tab[i].obj == obj)
			return &tab[i];
}

static const struct known *known_find(const config *c, const cJSON *obj) {
	const struct known *k;

	if (c->cap_known == 0)
		return NULL;
	k = known_slot(c->known, c->cap_known, obj);
	return k->obj ? k : NULL;
}

static bool known_has(config *c, const cJSON *obj, const char *key) {
	const struct known *k = known_find(c, obj);
	const char *name = k ? name_intern(c, key, false) : NULL;

	for (uint32_t i = 0; name && i < k->n_keys; i++)
		if (k->keys[i] == name)
			return true;
	return false;
}

static void known_free(config *c) {
	for (size_t i = 0; i < c->cap_known; i++)
		free(c->known[i].keys);
	free(c->known);
	c->known = NULL;
	c->n_known = c->cap_known = 0;
	for (size_t i = 0; i < c->cap_names; i++)
		free(c->names[i]);
	free(c->names);
	c->names = NULL;
	c->n_names = c->cap_names = 0;
}

static void known_add(config *c, const cJSON *obj, const char *key) {
	const char *name;
	struct known *k, *old = c->known;
	size_t old_cap = c->cap_known;

	if (c->settled)
		return;
	name = name_intern(c, key, true);
	if (!name)
		goto oom;
	if (c->cap_known == 0 || !known_slot(c->known, c->cap_known, obj)->obj) {
		if ((c->n_known + 1) * 2 > c->cap_known) {
			if (!(c->known = table_double(&c->cap_known, sizeof(*c->known)))) {
				c->known = old;
				goto oom;
			}
			for (size_t i = 0; i < old_cap; i++)
				if (old[i].obj)
					*known_slot(c->known, c->cap_known, old[i].obj) = old[i];
			free(old);
		}
		k = known_slot(c->known, c->cap_known, obj);
		*k = (struct known){ .obj = obj };
		c->n_known++;
	}
	k = known_slot(c->known, c->cap_known, obj);
	for (uint32_t i = 0; i < k->n_keys; i++)
		if (k->keys[i] == name)
			return;
	if (k->n_keys == k->cap_keys) {
		uint32_t cap = k->cap_keys ? k->cap_keys * 2 : 8;
		const char **keys = realloc(k->keys, cap * sizeof(*keys));

		if (!keys)
			goto oom;
		k->keys = keys;
		k->cap_keys = cap;
	}
	k->keys[k->n_keys++] = name;
	return;

oom:
	/* Reported by config_check_unknown(), which is where it matters. */
	c->known_oom = true;
}

/* --- describing values -------------------------------------------------- */

/* The TOML type of ITEM, also for items that did not come from a file. */
static int item_type(const config *c, const cJSON *item) {
	const struct source *s = source_find(c, item);

	if (s)
		return (int)s->type;
	if (cJSON_IsObject(item))
		return CONFIG_TOML_TABLE;
	if (cJSON_IsArray(item))
		return CONFIG_TOML_ARRAY;
	if (cJSON_IsString(item))
		return CONFIG_TOML_STRING;
	if (cJSON_IsBool(item))
		return CONFIG_TOML_BOOLEAN;
	if (cJSON_IsNumber(item))
		return item->valuedouble == floor(item->valuedouble) &&
		                       fabs(item->valuedouble) < 9007199254740992.0
		               ? CONFIG_TOML_INTEGER
		               : CONFIG_TOML_FLOAT;
	return -1;
}

static int64_t item_int(const config *c, const cJSON *item) {
	const struct source *s = source_find(c, item);
	const struct bigint *b = s && s->big ? bigint_find(c, item) : NULL;

	return b ? b->v : (int64_t)item->valuedouble;
}

/* "a string", "an integer": what the user wrote, in TOML's words. */
static const char *type_name(const config *c, const cJSON *item) {
	switch (item_type(c, item)) {
	case CONFIG_TOML_TABLE:
		return "a table";
	case CONFIG_TOML_ARRAY:
		return "an array";
	case CONFIG_TOML_STRING:
		return "a string";
	case CONFIG_TOML_INTEGER:
		return "an integer";
	case CONFIG_TOML_FLOAT:
		return "a float";
	case CONFIG_TOML_BOOLEAN:
		return "a boolean";
	case CONFIG_TOML_DATE:
		return "a date";
	case CONFIG_TOML_TIME:
		return "a time";
	case CONFIG_TOML_DATETIME:
		return "a datetime";
	default:
		return "null";
	}
}

static void format_double(double d, char *buf, size_t n) {
	if (isnan(d))
		snprintf(buf, n, "nan");
	else if (isinf(d))
		snprintf(buf, n, "%sinf", d < 0 ? "-" : "");
	else {
		fmt_double(d, buf, n);
	}
}

/*
 * Writes ITEM as TOML would show it, for "got X": a string quoted with
 * escapes (so the message stays on one line) and cut when long.
 */
static const char *describe(const config *c, const cJSON *item, char *buf, size_t n) {
	size_t o = 0;

	switch (item_type(c, item)) {
	case CONFIG_TOML_STRING:
		if (n < 16)
			return type_name(c, item);
		buf[o++] = '"';
		for (const unsigned char *p = (const unsigned char *)item->valuestring; *p; p++) {
			/* Room for the longest escape, "...", the quote and the NUL. */
			if (o + 12 > n) {
				memcpy(buf + o, "...", 3);
				o += 3;
				break;
			}
			if (*p == '"' || *p == '\\') {
				buf[o++] = '\\';
				buf[o++] = (char)*p;
			} else if (*p < 0x20 || *p == 0x7f)
				o += (size_t)snprintf(buf + o, n - o, "\\u%04x", *p);
			else
				buf[o++] = (char)*p;
		}
		buf[o++] = '"';
		buf[o] = '\0';
		return buf;
	case CONFIG_TOML_INTEGER:
		snprintf(buf, n, "%" PRId64, item_int(c, item));
		return buf;
	case CONFIG_TOML_FLOAT:
		format_double(item->valuedouble, buf, n);
		return buf;
	case CONFIG_TOML_BOOLEAN:
		snprintf(buf, n, "%s", cJSON_IsTrue(item) ? "true" : "false");
		return buf;
	case CONFIG_TOML_DATE:
	case CONFIG_TOML_TIME:
	case CONFIG_TOML_DATETIME:
		snprintf(buf, n, "%s", item->valuestring);
		return buf;
	default:
		return type_name(c, item);
	}
}

/* --- key paths --------------------------------------------------------- */

/* Deeper than the parser accepts (128): an item this deep gets no path. */
#define PATH_MAX_DEPTH 512

/*
 * Fills CHAIN with the items from NODE down to ITEM and returns how many,
 * or 0 when ITEM is not NODE nor below it.
 */
static size_t path_chain(const cJSON *node, const cJSON *item, const cJSON **chain, size_t depth) {
	const cJSON *child;

	if (depth >= PATH_MAX_DEPTH)
		return 0;
	chain[depth] = node;
	if (node == item)
		return depth + 1;
	if (!cJSON_IsObject(node) && !cJSON_IsArray(node))
		return 0;
	cJSON_ArrayForEach(child, node) {
		size_t n = path_chain(child, item, chain, depth + 1);
		if (n)
			return n;
	}
	return 0;
}

/* A key as config-toml.cc writes it in paths: bare, or quoted as TOML would. */
static void path_put_key(FILE *f, const char *key) {
	bool bare = key[0] != '\0';

	for (const char *p = key; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		      *p == '_' || *p == '-'))
			bare = false;
	if (bare) {
		fputs(key, f);
		return;
	}
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

/*
 * ITEM's key path ("drivers.plc1.points[3].type", "" for the root and for
 * an item not in the tree) as a malloc'd string, or NULL on OOM. The
 * same text the parser gave when it recorded ITEM: tables merge key by key
 * and anything else replaces whole, so an item's place in the merged tree
 * is its place in its file.
 */
static char *path_new(const config *c, const cJSON *item) {
	const cJSON **chain = calloc(PATH_MAX_DEPTH, sizeof(*chain));
	size_t n = chain && c->root ? path_chain(c->root, item, chain, 0) : 0, len = 0;
	char *text = NULL;
	FILE *f;

	if (n == 0) {
		free(chain);
		return chain ? strdup("") : NULL;
	}
	f = open_memstream(&text, &len);
	if (!f) {
		free(chain);
		return NULL;
	}
	for (size_t i = 1; i < n; i++) {
		if (cJSON_IsArray(chain[i - 1])) {
			size_t index = 0;

			for (const cJSON *e = chain[i - 1]->child; e && e != chain[i]; e = e->next)
				index++;
			fprintf(f, "[%zu]", index);
		} else {
			if (i > 1)
				fputc('.', f);
			path_put_key(f, chain[i]->string ? chain[i]->string : "");
		}
	}
	free(chain);
	if (fclose(f) != 0 || !text) {
		free(text);
		return NULL;
	}
	return text;
}

/* --- errors ------------------------------------------------------------- */

static int config_errorv(config *c, const cJSON *item, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

static int config_errorv(config *c, const cJSON *item, const char *fmt, va_list ap) {
	const struct source *s;
	char *msg = NULL, *full;
	char line[16] = "";

	if (!c || c->error || c->error_oom)
		return -EINVAL;
	if (vasprintf(&msg, fmt, ap) < 0) {
		c->error_oom = true;
		return -EINVAL;
	}
	s = source_find(c, item);
	if (s) {
		char *path = path_new(c, item);

		if (s->line > 0)
			snprintf(line, sizeof(line), ":%" PRIu32, s->line);
		full = path ? strdup_printf("%s%s%s%s: %s", c->files[s->file], line, path[0] ? ": " : "",
		                            path, msg[0] ? msg : "invalid value")
		            : NULL;
		free(path);
		free(msg);
	} else if (msg[0])
		full = msg;
	else {
		free(msg);
		full = strdup("invalid configuration");
	}
	if (!full) {
		c->error_oom = true;
		return -EINVAL;
	}
	/* One error, one line, whatever a caller's format put in it. */
	for (char *p = full; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	c->error = full;
	return -EINVAL;
}

int config_error(config *c, const cJSON *item, const char *fmt, ...) {
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = config_errorv(c, item, fmt, ap);
	va_end(ap);
	return r;
}

const char *config_last_error(const config *c) {
	if (!c)
		return NULL;
	if (c->error)
		return c->error;
	return c->error_oom ? "out of memory while formatting a configuration error" : NULL;
}

/* --- life cycle and loading --------------------------------------------- */

static config *config_new(void) {
	config *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	if (source_grow(c) < 0) {
		config_free(c);
		return NULL;
	}
	return c;
}

void config_free(config *c) {
	if (!c)
		return;
	cJSON_Delete(c->root);
	free(c->sources);
	free(c->bigints);
	known_free(c);
	for (size_t i = 0; i < c->n_files; i++)
		free(c->files[i]);
	free(c->files);
	free(c->error);
	free(c);
}

const cJSON *config_root(const config *c) {
	return c ? c->root : NULL;
}

/*
 * Keeps NAME for the life of C, where every source entry of the file finds
 * it by the index this returns; -ENOMEM, or -EMFILE beyond CONFIG_MAX_FILES.
 */
static int config_add_file(config *c, const char *name) {
	char **files;
	char *copy;

	if (c->n_files >= CONFIG_MAX_FILES)
		return -EMFILE;
	files = realloc(c->files, (c->n_files + 1) * sizeof(*files));
	if (!files)
		return -ENOMEM;
	c->files = files;
	copy = strdup(name);
	if (!copy)
		return -ENOMEM;
	c->files[c->n_files] = copy;
	return (int)c->n_files++;
}

/* Sets *ret_error to "NAME: out of memory" or, failing that, NULL. */
static int oom_error(const char *name, char **ret_error) {
	*ret_error = strdup_printf("%s: out of memory", name);
	return -ENOMEM;
}

static int parse_text(config *c, const char *text, size_t len, const char *name,
                      cJSON **ret_tree, char **ret_error) {
	struct record_ctx ctx = { .c = c };
	char *error = NULL;
	int r;

	r = config_add_file(c, name);
	if (r == -EMFILE) {
		*ret_error = strdup_printf("%s: more than %u configuration files", name, CONFIG_MAX_FILES);
		return r;
	}
	if (r < 0)
		return oom_error(name, ret_error);
	ctx.file = (uint16_t)r;
	r = config_toml_parse(text, len, c->files[ctx.file], record_item, &ctx, ret_tree, &error);
	if (r < 0) {
		if (error)
			*ret_error = error;
		else if (r == -ENOMEM)
			oom_error(name, ret_error);
		else
			*ret_error = strdup_printf("%s: %s", name, strerror(-r));
		return r;
	}
	return 0;
}

/*
 * Reads NAME relative to DIR_FD (or AT_FDCWD) whole. DISPLAY is the name
 * for messages. A size limit guards against a misnamed huge file; it is
 * checked while reading too, since the file may grow or lie in st_size.
 */
static int read_file(int dir_fd, const char *name, const char *display, char **ret_text,
                     size_t *ret_len, char **ret_error) {
	size_t len = 0, cap = 0;
	char *text = NULL;
	struct stat st;
	int fd, r;

	fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		r = -errno;
		goto fail;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto fail;
	}
	if (S_ISDIR(st.st_mode)) {
		r = -EISDIR;
		goto fail;
	}
	if (S_ISREG(st.st_mode) && st.st_size > CONFIG_MAX_FILE_SIZE) {
		r = -EFBIG;
		goto fail;
	}
	cap = S_ISREG(st.st_mode) && st.st_size > 0 && st.st_size < CONFIG_MAX_FILE_SIZE
	              ? (size_t)st.st_size + 1
	              : 4096;
	for (;;) {
		ssize_t n;

		if (len + 1 >= cap) {
			char *t;

			cap *= 2;
			t = realloc(text, cap);
			if (!t) {
				r = -ENOMEM;
				goto fail;
			}
			text = t;
		} else if (!text) {
			text = malloc(cap);
			if (!text) {
				r = -ENOMEM;
				goto fail;
			}
		}
		n = read(fd, text + len, cap - len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > CONFIG_MAX_FILE_SIZE) {
			r = -EFBIG;
			goto fail;
		}
	}
	close(fd);
	text[len] = '\0';
	*ret_text = text;
	*ret_len = len;
	return 0;

fail:
	if (fd >= 0)
		close(fd);
	free(text);
	if (r == -EFBIG)
		*ret_error = strdup_printf("%s: cannot read: file is larger than %u MiB", display,
		                           CONFIG_MAX_FILE_SIZE / 1024 / 1024);
	else
		*ret_error = strdup_printf("%s: cannot read: %s", display, strerror(-r));
	return r;
}

static int load_file(config *c, int dir_fd, const char *name, const char *display,
                     cJSON **ret_tree, char **ret_error) {
	char *text = NULL;
	size_t len = 0;
	int r;

	r = read_file(dir_fd, name, display, &text, &len, ret_error);
	if (r < 0)
		return r;
	r = parse_text(c, text, len, display, ret_tree, ret_error);
	free(text);
	return r;
}

/*
 * Merges SRC into DST and empties SRC: tables merge key by key, anything
 * else in SRC replaces what DST had. Items move without being copied, so
 * each keeps its own source entry (file and line); only what is dropped is
 * forgotten. Cannot fail: it allocates nothing.
 */
static void merge_tables(config *c, cJSON *dst, cJSON *src) {
	cJSON *item;

	while ((item = src->child)) {
		cJSON *old;

		cJSON_DetachItemViaPointer(src, item);
		old = cJSON_GetObjectItemCaseSensitive(dst, item->string);
		if (old && cJSON_IsObject(old) && cJSON_IsObject(item)) {
			merge_tables(c, old, item);
			source_remove_tree(c, item);
			cJSON_Delete(item);
		} else if (old) {
			source_remove_tree(c, old);
			cJSON_ReplaceItemViaPointer(dst, old, item);
		} else
			/* Appending as an array element keeps item->string: no copy. */
			cJSON_AddItemToArray(dst, item);
	}
}

static int cmp_names(const void *a, const void *b) {
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Whether NAME in conf.d is read: "*.toml", not hidden. Hidden files are
 * skipped like systemd does, which also skips editors' lock files such as
 * Emacs' ".#10-mqtt.toml".
 */
static bool is_confd_name(const char *name) {
	size_t n = strlen(name);

	return name[0] != '.' && n > 5 && strcmp(name + n - 5, ".toml") == 0;
}

/* The directory part of PATH followed by "/conf.d". */
static char *default_confd(const char *path) {
	const char *slash = strrchr(path, '/');

	if (!slash)
		return strdup("conf.d");
	if (slash == path)
		return strdup("/conf.d");
	return strdup_printf("%.*s/conf.d", (int)(slash - path), path);
}

static void free_names(char **names, size_t n) {
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/*
 * Lists DIR's conf.d files in strcmp order. A missing DIR is an empty
 * list; any other failure is an error, since silently ignoring an
 * unreadable directory would run with half a configuration.
 */
static int list_confd(const char *dir, DIR **ret_dir, char ***ret_names, size_t *ret_n,
                      char **ret_error) {
	char **names = NULL;
	size_t n = 0, cap = 0;
	DIR *d = NULL;
	int fd, r;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT) {
			*ret_dir = NULL;
			*ret_names = NULL;
			*ret_n = 0;
			return 0;
		}
		r = -errno;
		goto fail;
	}
	d = fdopendir(fd);
	if (!d) {
		r = -errno;
		close(fd);
		goto fail;
	}
	for (;;) {
		struct dirent *de;

		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno != 0) {
				r = -errno;
				goto fail;
			}
			break;
		}
		if (!is_confd_name(de->d_name))
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			char **t = realloc(names, ncap * sizeof(*t));

			if (!t) {
				r = -ENOMEM;
				goto fail;
			}
			names = t;
			cap = ncap;
		}
		names[n] = strdup(de->d_name);
		if (!names[n]) {
			r = -ENOMEM;
			goto fail;
		}
		n++;
	}
	if (n > 0)
		qsort(names, n, sizeof(*names), cmp_names);
	*ret_dir = d;
	*ret_names = names;
	*ret_n = n;
	return 0;

fail:
	free_names(names, n);
	if (d)
		closedir(d);
	if (r == -ENOMEM)
		return oom_error(dir, ret_error);
	*ret_error = strdup_printf("%s: cannot read: %s", dir, strerror(-r));
	return r;
}

int config_load(const char *path, const char *confd_dir, config **ret, char **ret_error) {
	char *error = NULL, *dir_alloc = NULL, **names = NULL;
	size_t n_names = 0;
	DIR *d = NULL;
	config *c;
	int r;

	c = config_new();
	if (!c) {
		r = oom_error(path, &error);
		goto fail;
	}
	r = load_file(c, AT_FDCWD, path, path, &c->root, &error);
	if (r < 0)
		goto fail;

	if (!confd_dir) {
		dir_alloc = default_confd(path);
		if (!dir_alloc) {
			r = oom_error(path, &error);
			goto fail;
		}
		confd_dir = dir_alloc;
	}
	r = list_confd(confd_dir, &d, &names, &n_names, &error);
	if (r < 0)
		goto fail;
	for (size_t i = 0; i < n_names; i++) {
		size_t dl = strlen(confd_dir);
		cJSON *tree = NULL;
		char *display;

		display = strdup_printf("%s%s%s", confd_dir,
		                        dl > 0 && confd_dir[dl - 1] == '/' ? "" : "/", names[i]);
		if (!display) {
			r = oom_error(names[i], &error);
			goto fail;
		}
		r = load_file(c, dirfd(d), names[i], display, &tree, &error);
		free(display);
		if (r < 0)
			goto fail;
		merge_tables(c, c->root, tree);
		source_remove(c, tree);
		cJSON_Delete(tree);
	}

	free_names(names, n_names);
	if (d)
		closedir(d);
	free(dir_alloc);
	*ret = c;
	return 0;

fail:
	free_names(names, n_names);
	if (d)
		closedir(d);
	free(dir_alloc);
	config_free(c);
	if (ret_error)
		*ret_error = error;
	else
		free(error);
	return r;
}

int config_load_string(const char *text, const char *name, config **ret, char **ret_error) {
	char *error = NULL;
	config *c;
	int r;

	if (!name)
		name = "<string>";
	c = config_new();
	if (!c) {
		r = oom_error(name, &error);
		goto fail;
	}
	r = parse_text(c, text, strlen(text), name, &c->root, &error);
	if (r < 0)
		goto fail;
	*ret = c;
	return 0;

fail:
	config_free(c);
	if (ret_error)
		*ret_error = error;
	else
		free(error);
	return r;
}

/* --- where items come from ---------------------------------------------- */

const char *config_file_line(const config *c, const cJSON *item, char *buf, size_t n) {
	const struct source *s = source_find(c, item);

	if (!buf || n == 0)
		return "";
	if (!s)
		buf[0] = '\0';
	else if (s->line > 0)
		snprintf(buf, n, "%s:%" PRIu32, c->files[s->file], s->line);
	else
		snprintf(buf, n, "%s", c->files[s->file]);
	return buf;
}

const char *config_path(const config *c, const cJSON *item, char *buf, size_t n) {
	char *path;

	if (!buf || n == 0)
		return "";
	path = source_find(c, item) ? path_new(c, item) : NULL;
	snprintf(buf, n, "%s", path ? path : "");
	free(path);
	return buf;
}

/* --- getters ------------------------------------------------------------ */

/* Marks KEY known in OBJ and returns its item, or NULL when absent. */
static const cJSON *lookup(config *c, const cJSON *obj, const char *key) {
	if (!c || !obj || !key || !cJSON_IsObject(obj))
		return NULL;
	known_add(c, obj, key);
	return cJSON_GetObjectItemCaseSensitive(obj, key);
}

void config_mark(config *c, const cJSON *obj, const char *key) {
	(void)lookup(c, obj, key);
}

int config_string(config *c, const cJSON *obj, const char *key, const char *def,
                  const char **ret) {
	const cJSON *item = lookup(c, obj, key);

	if (!item) {
		*ret = def;
		return 0;
	}
	if (item_type(c, item) != CONFIG_TOML_STRING)
		return config_error(c, item, "expected a string, got %s", type_name(c, item));
	*ret = item->valuestring;
	return 1;
}

int config_int(config *c, const cJSON *obj, const char *key, int64_t def, int64_t min,
               int64_t max, int64_t *ret) {
	const cJSON *item = lookup(c, obj, key);
	char got[32];
	int64_t v;

	if (!item) {
		*ret = def;
		return 0;
	}
	if (item_type(c, item) != CONFIG_TOML_INTEGER)
		return config_error(c, item, "expected an integer, got %s", type_name(c, item));
	v = item_int(c, item);
	if (v >= min && v <= max) {
		*ret = v;
		return 1;
	}
	describe(c, item, got, sizeof(got));
	if (min == INT64_MIN)
		return config_error(c, item, "expected an integer of at most %" PRId64 ", got %s",
		                    max, got);
	if (max == INT64_MAX)
		return config_error(c, item, "expected an integer of at least %" PRId64 ", got %s",
		                    min, got);
	return config_error(c, item, "expected an integer from %" PRId64 " to %" PRId64 ", got %s",
	                    min, max, got);
}

int config_double(config *c, const cJSON *obj, const char *key, double def, double *ret) {
	const cJSON *item = lookup(c, obj, key);
	char got[32];
	double v;

	if (!item) {
		*ret = def;
		return 0;
	}
	switch (item_type(c, item)) {
	case CONFIG_TOML_INTEGER:
		v = (double)item_int(c, item);
		break;
	case CONFIG_TOML_FLOAT:
		v = item->valuedouble;
		if (!isfinite(v))
			return config_error(c, item, "expected a finite number, got %s",
			                    describe(c, item, got, sizeof(got)));
		break;
	default:
		return config_error(c, item, "expected a number, got %s", type_name(c, item));
	}
	*ret = v;
	return 1;
}

int config_bool(config *c, const cJSON *obj, const char *key, bool def, bool *ret) {
	const cJSON *item = lookup(c, obj, key);

	if (!item) {
		*ret = def;
		return 0;
	}
	if (item_type(c, item) != CONFIG_TOML_BOOLEAN)
		return config_error(c, item, "expected a boolean, got %s", type_name(c, item));
	*ret = cJSON_IsTrue(item);
	return 1;
}

int config_duration(config *c, const cJSON *obj, const char *key, int64_t def_us,
                    int64_t *ret_us) {
	static const char expected[] = "expected a duration like \"250ms\", \"5s\" or \"7d\"";
	const cJSON *item = lookup(c, obj, key);
	char got[96];
	int64_t v;
	int r;

	if (!item) {
		*ret_us = def_us;
		return 0;
	}
	switch (item_type(c, item)) {
	case CONFIG_TOML_STRING:
		r = parse_duration(item->valuestring, &v);
		if (r == -ERANGE)
			return config_error(c, item, "%s, got %s, which is too long", expected,
			                    describe(c, item, got, sizeof(got)));
		if (r < 0)
			return config_error(c, item, "%s, got %s", expected,
			                    describe(c, item, got, sizeof(got)));
		break;
	case CONFIG_TOML_INTEGER:
		/* Zero is zero in any unit; any other bare number needs one. */
		if (item_int(c, item) != 0)
			return config_error(c, item, "%s, got %s", expected,
			                    describe(c, item, got, sizeof(got)));
		v = 0;
		break;
	default:
		return config_error(c, item, "%s, got %s", expected, type_name(c, item));
	}
	*ret_us = v;
	return 1;
}

int config_size(config *c, const cJSON *obj, const char *key, uint64_t def, uint64_t *ret) {
	static const char expected[] = "expected a size like \"512MiB\" or a number of bytes";
	const cJSON *item = lookup(c, obj, key);
	char got[96];
	uint64_t v;
	int64_t i;
	int r;

	if (!item) {
		*ret = def;
		return 0;
	}
	switch (item_type(c, item)) {
	case CONFIG_TOML_STRING:
		r = parse_size(item->valuestring, &v);
		if (r == -ERANGE)
			return config_error(c, item, "%s, got %s, which is too large", expected,
			                    describe(c, item, got, sizeof(got)));
		if (r < 0)
			return config_error(c, item, "%s, got %s", expected,
			                    describe(c, item, got, sizeof(got)));
		break;
	case CONFIG_TOML_INTEGER:
		i = item_int(c, item);
		if (i < 0)
			return config_error(c, item, "%s, got %s", expected,
			                    describe(c, item, got, sizeof(got)));
		v = (uint64_t)i;
		break;
	default:
		return config_error(c, item, "%s, got %s", expected, type_name(c, item));
	}
	*ret = v;
	return 1;
}

/* Builds "one of \"a\", \"b\", \"c\"" for enum messages; NULL on OOM. */
static char *format_names(const char *const *names) {
	size_t len = sizeof("one of");
	char *s, *p;

	for (size_t i = 0; names[i]; i++)
		len += strlen(names[i]) + 4;
	s = malloc(len);
	if (!s)
		return NULL;
	p = stpcpy(s, "one of");
	for (size_t i = 0; names[i]; i++)
		p += sprintf(p, "%s\"%s\"", i > 0 ? ", " : " ", names[i]);
	return s;
}

int config_enum(config *c, const cJSON *obj, const char *key, const char *const *names,
                int def, int *ret) {
	const cJSON *item = lookup(c, obj, key);
	char got[96], *expected;
	int r;

	if (!item) {
		*ret = def;
		return 0;
	}
	if (item_type(c, item) == CONFIG_TOML_STRING)
		for (int i = 0; names[i]; i++)
			if (strcmp(item->valuestring, names[i]) == 0) {
				*ret = i;
				return 1;
			}
	expected = format_names(names);
	if (item_type(c, item) == CONFIG_TOML_STRING)
		describe(c, item, got, sizeof(got));
	else
		snprintf(got, sizeof(got), "%s", type_name(c, item));
	r = config_error(c, item, "expected %s, got %s", expected ? expected : "a known name",
	                 got);
	free(expected);
	return r;
}

const cJSON *config_item(config *c, const cJSON *obj, const char *key, int type, int *ret_err) {
	const cJSON *item = lookup(c, obj, key);
	bool ok;

	if (!item)
		return NULL;
	ok = type == cJSON_Object ? cJSON_IsObject(item) : cJSON_IsArray(item);
	if (ok)
		return item;
	config_error(c, item, "expected %s, got %s", type == cJSON_Object ? "a table" : "an array",
	             type_name(c, item));
	if (ret_err)
		*ret_err = -EINVAL;
	return NULL;
}

/* --- unknown keys ------------------------------------------------------- */

/*
 * Optimal string alignment distance: edits, with a swap of two neighbours
 * ("nmae" for "name") counting as one, the typo people make most. Returns
 * SIZE_MAX for keys too long to bother with.
 */
static size_t edit_distance(const char *a, const char *b) {
	size_t la = strlen(a), lb = strlen(b);
	size_t rows[3][HINT_MAX_KEY + 1];
	size_t *pp, *p, *cur;

	if (la > HINT_MAX_KEY || lb > HINT_MAX_KEY)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		rows[1][j] = j;
	pp = rows[0];
	p = rows[1];
	cur = rows[2];
	for (size_t i = 1; i <= la; i++) {
		size_t *t;

		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t cost = a[i - 1] != b[j - 1], v = p[j - 1] + cost;

			if (p[j] + 1 < v)
				v = p[j] + 1;
			if (cur[j - 1] + 1 < v)
				v = cur[j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    pp[j - 2] + 1 < v)
				v = pp[j - 2] + 1;
			cur[j] = v;
		}
		t = pp;
		pp = p;
		p = cur;
		cur = t;
	}
	return p[lb];
}

static int report_unknown(config *c, const cJSON *obj, const cJSON *item) {
	const char *key = item->string, *best = NULL;
	size_t best_d = SIZE_MAX, len = strlen(key);
	const struct known *k = known_find(c, obj);

	/*
	 * The candidates are the names asked for in this table. Ties go to
	 * the smallest name so the hint does not depend on the order they
	 * were asked in. A hint must be closer than the key is long: "id"
	 * for "ab" would only confuse.
	 */
	for (uint32_t i = 0; k && i < k->n_keys; i++) {
		size_t d = edit_distance(key, k->keys[i]);

		if (d > 2 || d >= len)
			continue;
		if (d < best_d || (d == best_d && strcmp(k->keys[i], best) < 0)) {
			best = k->keys[i];
			best_d = d;
		}
	}
	if (best)
		return config_error(c, item, "unknown key '%s' (did you mean '%s'?)", key, best);
	return config_error(c, item, "unknown key '%s'", key);
}

static int check_value(config *c, const cJSON *item);

static int check_table(config *c, const cJSON *obj) {
	const cJSON *child;
	int r;

	cJSON_ArrayForEach(child, obj) {
		if (!child->string)
			continue;
		/* An unknown table is reported as a whole, not key by key. */
		if (!known_has(c, obj, child->string))
			return report_unknown(c, obj, child);
		r = check_value(c, child);
		if (r < 0)
			return r;
	}
	return 0;
}

static int check_value(config *c, const cJSON *item) {
	const cJSON *elem;
	int r;

	if (cJSON_IsObject(item))
		return check_table(c, item);
	if (cJSON_IsArray(item))
		cJSON_ArrayForEach(elem, item) {
			r = check_value(c, elem);
			if (r < 0)
				return r;
		}
	return 0;
}

int config_check_unknown(config *c, const cJSON *obj) {
	if (!c || !obj)
		return 0;
	if (c->settled)
		/* The keys asked for are gone: everything would look unknown. */
		return config_error(c, obj, "internal error: the configuration was checked already");
	if (c->known_oom) {
		/* Some key asked for went unrecorded: a report could be false. */
		config_error(c, obj, "out of memory while tracking configuration keys");
		return -ENOMEM;
	}
	return check_value(c, obj);
}

void config_settle(config *c) {
	if (!c)
		return;
	known_free(c);
	c->settled = true;
}
