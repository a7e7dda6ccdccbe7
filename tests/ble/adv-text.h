/* SPDX-License-Identifier: MIT */
/*
 * adv-text.h - advertisements written as text, for the tests and the dump
 * tool: "addr=54:48:E6:8F:80:A5 rssi=-60 svc=fcd2:40020c09 mfr=0499:05..."
 * (service UUIDs as 4 hex digits or the full form, company ids as 4 hex
 * digits), and a collector of what a decoder emits.
 */
#pragma once

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ble-adv.h"

static inline int adv_hex_nibble(char c) {
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Hex digits up to the next space or end into OUT (at most MAX bytes); -1 on bad input. */
static inline long adv_hex(const char *p, uint8_t *out, size_t max) {
	size_t n = 0;

	while (*p && *p != ' ' && *p != '\n') {
		int hi = adv_hex_nibble(p[0]), lo = hi < 0 ? -1 : adv_hex_nibble(p[1]);

		if (lo < 0 || n == max)
			return -1;
		out[n++] = (uint8_t)(hi << 4 | lo);
		p += 2;
	}
	return (long)n;
}

/* Fills ADV from LINE; the data live in BUF (SIZE bytes). */
static inline int adv_from_text(const char *line, struct ble_adv *adv, uint8_t *buf, size_t size) {
	size_t used = 0;

	memset(adv, 0, sizeof(*adv));
	while (*line) {
		while (*line == ' ' || *line == '\n')
			line++;
		if (!*line)
			break;
		if (strncmp(line, "addr=", 5) == 0) {
			char a[18] = "";

			memcpy(a, line + 5, strnlen(line + 5, 17));
			if (ble_addr_parse(a, adv->addr) < 0)
				return -EINVAL;
		} else if (strncmp(line, "rssi=", 5) == 0) {
			adv->has_rssi = true;
			adv->rssi = (int16_t)strtol(line + 5, NULL, 10);
		} else if (strncmp(line, "svc=", 4) == 0 || strncmp(line, "mfr=", 4) == 0) {
			const char *colon = strchr(line, ':');
			char id[40] = "";
			long n;

			if (!colon || colon - line - 4 >= (long)sizeof(id))
				return -EINVAL;
			memcpy(id, line + 4, (size_t)(colon - line - 4));
			n = adv_hex(colon + 1, buf + used, size - used);
			if (n < 0)
				return -EINVAL;
			if (line[0] == 's') {
				struct ble_svc *s = &adv->svc[adv->n_svc++];

				if (adv->n_svc > BLE_ADV_MAX_SVC || ble_uuid_parse(id, s->uuid) < 0)
					return -EINVAL;
				s->data = buf + used, s->len = (size_t)n;
			} else {
				struct ble_mfr *m = &adv->mfr[adv->n_mfr++];

				if (adv->n_mfr > BLE_ADV_MAX_MFR || strlen(id) != 4)
					return -EINVAL;
				m->company = (uint16_t)strtoul(id, NULL, 16);
				m->data = buf + used, m->len = (size_t)n;
			}
			used += (size_t)n;
		} else {
			return -EINVAL;
		}
		while (*line && *line != ' ' && *line != '\n')
			line++;
	}
	return 0;
}

#define GOT_MAX 160
struct got {
	int n;
	struct {
		char field[128];
		double value;
		char text[520];
		int is_text;
	} v[GOT_MAX];
};

static inline void got_emit(void *ctx, const char *field, double value, const char *text) {
	struct got *g = ctx;

	if (g->n == GOT_MAX)
		abort();
	snprintf(g->v[g->n].field, sizeof(g->v[g->n].field), "%s", field);
	g->v[g->n].value = value;
	g->v[g->n].is_text = text != NULL;
	snprintf(g->v[g->n].text, sizeof(g->v[g->n].text), "%s", text ? text : "");
	g->n++;
}
