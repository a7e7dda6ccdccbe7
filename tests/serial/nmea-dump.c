/* SPDX-License-Identifier: MIT */
/*
 * Prints what the NMEA codec reads from every line of stdin, one line out
 * per line in, for test_nmea_oracle.py to hold against pynmea2:
 *
 *   ok TALKER TYPE valid=0|1 ts=US|-|!ERR NAME=VALUE ... xdrI=T,VALUE,U,NAME ...
 *   err ERRNO
 *
 * Numbers are printed with 17 digits, text fields as sent; "-" is a field
 * without a value, "!N" a field that failed with -N.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "serial-nmea.h"

static void print_field(const struct nmea_sentence *s, const char *name) {
	struct nmea_value v;
	int r = nmea_get(s, name, &v);

	if (r == -ENODATA)
		printf(" %s=-", name);
	else if (r < 0)
		printf(" %s=!%d", name, -r);
	else if (v.kind == NMEA_KIND_TEXT)
		printf(" %s=%s", name, v.text);
	else
		printf(" %s=%.17g", name, v.number);
}

static void print_sentence(const struct nmea_sentence *s) {
	struct nmea_xdr x;
	const char *name;
	int64_t ts;
	int r;

	printf("ok %s %s valid=%d", s->talker, s->type, nmea_valid(s));
	r = nmea_timestamp(s, 0, &ts);
	if (r == 0)
		printf(" ts=%lld", (long long)ts);
	else
		printf(" ts=%s%d", r == -ENODATA ? "-" : "!", r == -ENODATA ? 0 : -r);
	for (unsigned i = 0; (name = nmea_field_name(s->type, i)); i++)
		print_field(s, name);
	for (unsigned i = 0; i < nmea_xdr_count(s); i++) {
		r = nmea_xdr_at(s, i, &x);
		if (r < 0)
			printf(" xdr%u=!%d", i, -r);
		else if (x.has_value)
			printf(" xdr%u=%c,%.17g,%c,%s", i, x.type ? x.type : '-', x.value,
			       x.unit ? x.unit : '-', x.name);
		else
			printf(" xdr%u=%c,-,%c,%s", i, x.type ? x.type : '-', x.unit ? x.unit : '-',
			       x.name);
	}
	putchar('\n');
}

int main(void) {
	char line[512];

	while (fgets(line, sizeof(line), stdin)) {
		struct nmea_sentence s;
		int r = nmea_parse((const uint8_t *)line, strlen(line), NMEA_CHECKSUM_REQUIRED, &s);

		if (r < 0)
			printf("err %d\n", -r);
		else
			print_sentence(&s);
	}
	return 0;
}
