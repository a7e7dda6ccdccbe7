/* SPDX-License-Identifier: MIT */
/*
 * can-decode FILE.dbc: decodes frames with plugins/can's codec for the
 * oracle test (test_can_oracle.py), which compares the output with an
 * independent decoder. Reads lines from stdin:
 *
 *   F ID EXT HEX    a frame: id (decimal), 1 for a 29-bit id, the payload in hex
 *   J ID            the J1939 fields of a 29-bit id
 *
 * and writes one line for each:
 *
 *   NAME=RAWBITS,NUMBER,PHYSICAL ...   each signal of the message in file order,
 *                                      NAME=- when the multiplexer leaves it out
 *   PGN SOURCE DESTINATION PRIORITY
 *
 * RAWBITS in hex, the numbers with 17 significant digits. A parse error
 * exits 1; warnings go to stderr.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "can-dbc.h"
#include "can-signal.h"

static char *read_file(const char *path, size_t *ret_len) {
	FILE *f = fopen(path, "rbe");
	char *buf = NULL;
	size_t n = 0, cap = 0, got;

	if (!f)
		return NULL;
	do {
		if (n == cap) {
			char *q = realloc(buf, cap = cap ? 2 * cap : 65536);
			if (!q) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = q;
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
	} while (got > 0);
	fclose(f);
	*ret_len = n;
	return buf;
}

static int hex_payload(const char *hex, uint8_t *out, size_t *ret_len) {
	size_t n = strlen(hex);

	if (n % 2 || n / 2 > CAN_MAX_PAYLOAD)
		return -EINVAL;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned b;
		if (sscanf(hex + 2 * i, "%2x", &b) != 1)
			return -EINVAL;
		out[i] = (uint8_t)b;
	}
	*ret_len = n / 2;
	return 0;
}

static int decode_frame(const struct can_dbc *d, uint32_t id, int ext, const char *hex) {
	const struct can_message *m = can_dbc_message(d, id, ext != 0);
	uint8_t data[CAN_MAX_PAYLOAD];
	size_t len;

	if (!m || hex_payload(hex, data, &len) < 0)
		return -EINVAL;
	for (size_t i = 0; i < m->n_signals; i++) {
		const struct can_signal *s = &m->signals[i];
		uint64_t raw;
		double v;
		int r = can_signal_decode(m, i, data, len, &v, &raw);

		if (r == -ENOENT)
			printf("%s%s=-", i ? " " : "", s->name);
		else if (r < 0)
			return r;
		else
			printf("%s%s=%" PRIx64 ",%.17g,%.17g", i ? " " : "", s->name, raw,
			       can_signal_raw_number(s, raw), v);
	}
	putchar('\n');
	return 0;
}

int main(int argc, char **argv) {
	struct can_dbc *d = NULL;
	char *text, *err = NULL, line[512];
	size_t len;
	int r;

	if (argc != 2) {
		fprintf(stderr, "usage: %s FILE.dbc < frames\n", argv[0]);
		return 2;
	}
	text = read_file(argv[1], &len);
	if (!text) {
		fprintf(stderr, "%s: cannot read\n", argv[1]);
		return 1;
	}
	r = can_dbc_parse(text, len, argv[1], &d, &err);
	free(text);
	if (r < 0) {
		fprintf(stderr, "%s\n", err ? err : strerror(-r));
		free(err);
		return 1;
	}
	for (size_t i = 0; i < d->n_warnings; i++)
		fprintf(stderr, "warning: %s\n", d->warnings[i]);
	while (fgets(line, sizeof(line), stdin)) {
		unsigned long id;
		int ext;
		char hex[2 * CAN_MAX_PAYLOAD + 3]; /* %130s: 128 digits, one too many to notice, and the NUL */

		if (sscanf(line, "F %lu %d %130s", &id, &ext, hex) == 3) {
			r = decode_frame(d, (uint32_t)id, ext, hex);
		} else if (sscanf(line, "J %lu", &id) == 1) {
			printf("%" PRIu32 " %u %u %u\n", can_j1939_pgn((uint32_t)id),
			       can_j1939_source((uint32_t)id), can_j1939_destination((uint32_t)id),
			       can_j1939_priority((uint32_t)id));
			r = 0;
		} else {
			r = -EINVAL;
		}
		if (r < 0) {
			fprintf(stderr, "cannot decode: %s", line);
			can_dbc_free(d);
			return 1;
		}
	}
	can_dbc_free(d);
	return 0;
}
