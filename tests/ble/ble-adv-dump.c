/* SPDX-License-Identifier: MIT */
/*
 * ble-adv-dump: decodes advertisements given as text lines on stdin and
 * prints what the decoder emits, one line each, for the Python tests:
 *
 *   in:  FORMAT [key=HEX] addr=AA:BB:.. svc=UUID:HEX mfr=COMPANY:HEX
 *   out: RESULT<TAB>field=n:NUMBER<TAB>field=s:TEXT ...  (or RESULT<TAB>err=MESSAGE)
 *        and <TAB>@id=s:ID when the format carries a stable id
 *
 * RESULT is ble_adv_decode's return value. Each address keeps its own
 * state (packet id, counter) for the whole run, as the plugin keeps it
 * per device.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "adv-text.h"
#include "ble-adv.h"

#define MAX_DEVICES 256

struct device {
	uint8_t addr[6];
	struct ble_dev_state st;
};

static struct ble_dev_state *state_of(struct device *devs, size_t *n, const uint8_t addr[6]) {
	for (size_t i = 0; i < *n; i++)
		if (memcmp(devs[i].addr, addr, 6) == 0)
			return &devs[i].st;
	if (*n == MAX_DEVICES)
		return NULL;
	memcpy(devs[*n].addr, addr, 6);
	memset(&devs[*n].st, 0, sizeof(devs[*n].st));
	return &devs[(*n)++].st;
}

int main(void) {
	static struct device devs[MAX_DEVICES];
	static char line[8192];
	static uint8_t buf[8192];
	static struct got g;
	size_t n_devs = 0;

	while (fgets(line, sizeof(line), stdin)) {
		char *p = line, *sp = strchr(line, ' '), err[256], id[BLE_STABLE_ID_MAX];
		enum ble_format fmt;
		struct ble_key key;
		struct ble_adv adv;
		bool has_key = false;
		int r;

		if (!sp)
			return 2;
		*sp = 0;
		if (ble_format_parse(p, &fmt) < 0)
			return 2;
		p = sp + 1;
		if (strncmp(p, "key=", 4) == 0) {
			char k[33] = "";

			memcpy(k, p + 4, strnlen(p + 4, 32));
			if (ble_key_parse(k, &key) < 0)
				return 2;
			has_key = true;
			p += 4 + 32;
		}
		if (adv_from_text(p, &adv, buf, sizeof(buf)) < 0) {
			fprintf(stderr, "bad line: %s", p);
			return 2;
		}
		r = ble_adv_decode(fmt, &adv, has_key ? &key : NULL, state_of(devs, &n_devs, adv.addr),
		                   NULL, 0, got_emit, &g, err, sizeof(err));
		printf("%d", r);
		if (r < 0)
			printf("\terr=%s", err);
		if (ble_adv_stable_id(fmt, &adv, id, sizeof(id)) == 0)
			printf("\t@id=s:%s", id);
		for (int i = 0; i < g.n; i++)
			if (g.v[i].is_text)
				printf("\t%s=s:%s", g.v[i].field, g.v[i].text);
			else
				printf("\t%s=n:%.17g", g.v[i].field, g.v[i].value);
		printf("\n");
		fflush(stdout);
		g.n = 0;
	}
	return 0;
}
