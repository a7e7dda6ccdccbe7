/* SPDX-License-Identifier: MIT */
/*
 * One normalized reading on its way from ingest to the sinks: a number or
 * a text, with what ingest decided about it. Built on the stack per reading
 * (ingest.c); a sink that keeps anything copies it. Loop thread.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "m2m/plugin.h"

struct reading {
	struct m2m_reading r; /* normalized: engineering value, quality, time */
	const char *text;     /* a string point's text; NULL for numbers and bools */
	int64_t mono_us;      /* monotonic time of the submit, for engines that time things */
	/*
	 * Passed the deadband and storage took it. False for a reading the
	 * storage queue had no room for (it reaches SINK_STORED sinks anyway,
	 * which may publish it unstored) and, in SINK_ALL sinks, for one the
	 * deadband held back.
	 */
	bool stored;
};
