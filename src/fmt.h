/* SPDX-License-Identifier: MIT */
/*
 * The one formatter of numbers for JSON (and for any text a program reads
 * back): m2md's control replies, MQTT payloads, rule templates and m2mctl's
 * --json all print numbers through it, so nothing rounds what another part
 * wrote. Pure functions; any thread.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <cJSON.h>

/* Enough for any output of fmt_double. */
#define FMT_DOUBLE_MAX 32

/*
 * Formats V as the shortest decimal that reads back (strtod) as the same
 * double: "51.400000000000006", "0.1", "21.5". An integral value of
 * magnitude below 2^63 is written as an integer without exponent
 * ("1796113194548450"), so timestamps and counters stay integers. NaN and
 * the infinities, which JSON lacks, are written as "null". Returns the
 * length, as snprintf does.
 */
int fmt_double(double v, char *buf, size_t n);

/*
 * Prints ITEM as JSON (FORMATTED: indented with tabs, as cJSON_Print does;
 * else on one line) with every number through fmt_double. malloc'd; NULL
 * when out of memory.
 */
char *json_print(const cJSON *item, bool formatted);
