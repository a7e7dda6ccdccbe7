/* SPDX-License-Identifier: MIT */
/*
 * m2md-toml NAME: parses the TOML document on standard input (NAME is the
 * file name for messages) and writes the result in the format of
 * config-toml-wire.h on standard output. The daemon runs it for every
 * configuration it loads, so that the C++ parser and its runtime
 * (libstdc++, toml++: 1.4 MiB of RSS) are mapped only while a file is
 * parsed, and a parser that dies on some input takes down only itself.
 * Not meant to be run by hand; exit status 0 when the document or the
 * parser's error was written, 1 when that could not be done.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config-toml-wire.h"
#include "config-toml.h"

/* What the parser said about each item, in the order it created them. */
struct item_info {
	const cJSON *item;
	uint32_t line;
	enum config_toml_type type;
	int64_t ival;
	char *path;
};

struct infos {
	struct item_info *v;
	size_t n, cap, next;
};

static int record(void *userdata, const cJSON *item, uint32_t line, enum config_toml_type type,
                  int64_t ival, const char *path) {
	struct infos *in = userdata;

	if (in->n == in->cap) {
		size_t cap = in->cap ? in->cap * 2 : 256;
		struct item_info *v = realloc(in->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		in->v = v;
		in->cap = cap;
	}
	in->v[in->n] = (struct item_info){ item, line, type, ival, strdup(path) };
	if (!in->v[in->n].path)
		return -ENOMEM;
	in->n++;
	return 0;
}

static int put(FILE *f, const void *p, size_t n) {
	return n == 0 || fwrite(p, n, 1, f) == 1 ? 0 : -EIO;
}

static int put_u32(FILE *f, uint32_t v) {
	return put(f, &v, sizeof(v));
}

static int put_text(FILE *f, const char *s) {
	size_t n = strlen(s);

	return n > UINT32_MAX || put_u32(f, (uint32_t)n) < 0 ? -EIO : put(f, s, n);
}

/*
 * Writes ITEM and its children. The walk visits items in the order the
 * parser recorded them (parents first, children in document order), which
 * is checked, so the record of each one is the next in line.
 */
static int put_node(FILE *f, struct infos *in, const cJSON *item, bool member) {
	const struct item_info *info;
	const cJSON *child;
	uint8_t type, b;
	size_t count = 0;
	int r;

	if (in->next >= in->n || in->v[in->next].item != item)
		return -EPROTO;
	info = &in->v[in->next++];
	type = (uint8_t)info->type;
	if ((r = put(f, &type, 1)) < 0 || (r = put_u32(f, info->line)) < 0 ||
	    (r = put(f, &info->ival, sizeof(info->ival))) < 0)
		return r;
	if (member && (r = put_text(f, item->string)) < 0)
		return r;
	if ((r = put_text(f, info->path)) < 0)
		return r;
	switch (info->type) {
	case CONFIG_TOML_STRING:
	case CONFIG_TOML_DATE:
	case CONFIG_TOML_TIME:
	case CONFIG_TOML_DATETIME:
		return put_text(f, item->valuestring);
	case CONFIG_TOML_FLOAT:
		return put(f, &item->valuedouble, sizeof(item->valuedouble));
	case CONFIG_TOML_BOOLEAN:
		b = cJSON_IsTrue(item);
		return put(f, &b, 1);
	case CONFIG_TOML_INTEGER:
		return 0;
	case CONFIG_TOML_TABLE:
	case CONFIG_TOML_ARRAY:
		cJSON_ArrayForEach(child, item)
			count++;
		if (count > UINT32_MAX || (r = put_u32(f, (uint32_t)count)) < 0)
			return -EIO;
		cJSON_ArrayForEach(child, item)
			if ((r = put_node(f, in, child, info->type == CONFIG_TOML_TABLE)) < 0)
				return r;
		return 0;
	}
	return -EPROTO;
}

/* Reads all of standard input. */
static char *read_all(size_t *ret_len) {
	size_t len = 0, cap = 64 * 1024;
	char *buf = malloc(cap), *p;
	ssize_t n;

	while (buf) {
		if (len == cap) {
			p = realloc(buf, cap * 2);
			if (!p)
				break;
			buf = p;
			cap *= 2;
		}
		n = read(STDIN_FILENO, buf + len, cap - len);
		if (n == 0) {
			*ret_len = len;
			return buf;
		}
		if (n < 0 && errno != EINTR)
			break;
		if (n > 0)
			len += (size_t)n;
	}
	free(buf);
	return NULL;
}

int main(int argc, char **argv) {
	struct infos in = { 0 };
	uint32_t magic = CONFIG_TOML_WIRE_MAGIC;
	uint8_t status;
	cJSON *root = NULL;
	char *text, *error = NULL;
	size_t len = 0;
	int r, rc = 1;

	if (argc != 2 || isatty(STDIN_FILENO)) {
		fprintf(stderr, "m2md-toml: run by m2md to parse its configuration, not by hand\n");
		return 2;
	}
	text = read_all(&len);
	if (!text) {
		fprintf(stderr, "m2md-toml: cannot read the document: %s\n", strerror(errno));
		return 1;
	}
	r = config_toml_parse(text, len, argv[1], record, &in, &root, &error);
	if (put_u32(stdout, magic) < 0)
		goto out;
	if (r >= 0) {
		status = CONFIG_TOML_WIRE_TREE;
		if (put(stdout, &status, 1) < 0)
			goto out;
		r = put_node(stdout, &in, root, false);
		if (r < 0) {
			fprintf(stderr, "m2md-toml: cannot write the document: %s\n", strerror(-r));
			goto out;
		}
	} else {
		int32_t err = r;

		status = CONFIG_TOML_WIRE_ERROR;
		if (put(stdout, &status, 1) < 0 || put(stdout, &err, sizeof(err)) < 0 ||
		    put_text(stdout, error ? error : "") < 0)
			goto out;
	}
	if (fflush(stdout) == 0)
		rc = 0;
out:
	cJSON_Delete(root);
	for (size_t i = 0; i < in.n; i++)
		free(in.v[i].path);
	free(in.v);
	free(error);
	free(text);
	return rc;
}
