/* SPDX-License-Identifier: MIT */
/*
 * serial-nmea.h - NMEA 0183 sentences, one frame at a time, without a device.
 *
 * nmea_parse() checks one sentence ("$GNRMC,...*hh" or "!AIVDM,...", the
 * line ending and any bytes before the '$' or '!' ignored) and splits it
 * into fields. Sentences of up to NMEA_MAX_LEN bytes from the start
 * character to the checksum are accepted: the standard's 82 include the
 * line ending, and real receivers exceed them. The talker (GP, GN, GL, GA,
 * BD, GB, QZ, II, IN, ...) is kept apart from the sentence type, so that
 * "RMC" matches every talker and "GPRMC" only one (nmea_match()).
 *
 * Named fields exist for RMC, GGA, GLL, VTG, GSA, GSV, ZDA, GNS, HDT, MWV,
 * DBT, DPT, MTW (nmea_field_name()); XDR readings are found by transducer
 * name (nmea_xdr()); any sentence's fields by index (nmea_raw()).
 * Latitudes and longitudes come as signed decimal degrees (south and west
 * negative), times and dates as UTC microseconds. An empty field has no
 * value (-ENODATA), never zero. Numbers are read without the C locale.
 *
 * Pure functions over the caller's struct, callable from any thread.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Start character to the end of the checksum, line ending not counted. */
#define NMEA_MAX_LEN 102
#define NMEA_MAX_FIELDS 64

enum nmea_checksum {
	NMEA_CHECKSUM_REQUIRED, /* the default: a sentence without "*hh" is refused */
	NMEA_CHECKSUM_OPTIONAL, /* checked when present */
	NMEA_CHECKSUM_IGNORE,   /* never checked (a receiver known to get it wrong) */
	NMEA_CHECKSUM_COUNT
};

/* NULL-terminated, indexed by enum nmea_checksum ("required", "optional", "ignore"). */
extern const char *const nmea_checksum_names[];

struct nmea_sentence {
	char start;     /* '$' or '!' (encapsulated, AIS) */
	char talker[3]; /* "GN"; "P" for a proprietary sentence */
	char type[16];  /* "RMC"; a proprietary sentence's maker and type ("GRME") */
	bool has_checksum;
	unsigned nfields; /* after the address field */
	/* Private: the sentence's copy, fields NUL-terminated in place. */
	char buf_[NMEA_MAX_LEN + 1];
	/* Private: what the parser knows of the type, looked up once; NULL if nothing. */
	const struct nmea_sentence_def *def_;
	uint8_t off_[NMEA_MAX_FIELDS];
};

/*
 * Parses frame[0..len) into *ret. Returns 0, or:
 *   -EINVAL    no '$'/'!', a bad address field, or a byte that is not
 *              printable ASCII
 *   -EMSGSIZE  longer than NMEA_MAX_LEN, or more than NMEA_MAX_FIELDS fields
 *   -ENOMSG    no checksum under NMEA_CHECKSUM_REQUIRED
 *   -EBADMSG   a checksum that does not match (upper or lower case hex are
 *              both accepted), or a '*' not followed by two hex digits
 * *ret is set only on success.
 */
int nmea_parse(const uint8_t *frame, size_t len, enum nmea_checksum policy,
               struct nmea_sentence *ret);

/*
 * Whether the sentence is what a config names: "RMC" (any talker), "GPRMC"
 * (that talker only), "PGRME" (proprietary). Case-sensitive.
 */
bool nmea_match(const struct nmea_sentence *s, const char *name);

/* Field i (0 = the first after the address) as text, "" when empty; NULL past the last. */
const char *nmea_raw(const struct nmea_sentence *s, unsigned i);

/* Field i as a number: 0, -ENODATA (empty or missing), -EINVAL (not a number). */
int nmea_number(const struct nmea_sentence *s, unsigned i, double *ret);

enum nmea_kind {
	NMEA_KIND_NUMBER, /* a number, maybe scaled (speed_kmh from knots) */
	NMEA_KIND_LAT,    /* ddmm.mmmm and N/S in the next field */
	NMEA_KIND_LON,    /* dddmm.mmmm and E/W in the next field */
	NMEA_KIND_TIME,   /* hhmmss[.sss]: microseconds since midnight UTC */
	NMEA_KIND_DATE,   /* ddmmyy: microseconds since 1970 at midnight UTC */
	NMEA_KIND_TEXT,   /* status and mode letters, station ids */
};

struct nmea_value {
	enum nmea_kind kind;
	double number;    /* NUMBER, LAT, LON; TIME and DATE as microseconds too */
	const char *text; /* the field as sent (every kind), "" never: empty is -ENODATA */
};

/*
 * The named field of a sentence type ("RMC", talker not included): 0 and
 * *ret, -ENODATA when the field is empty or missing (a receiver without a
 * fix), -EINVAL when it does not read as its kind (minutes of 60, a
 * hemisphere of 'X'), -ENOENT when the type has no such field (a config
 * error: check names with nmea_field_kind() first).
 */
int nmea_get(const struct nmea_sentence *s, const char *name, struct nmea_value *ret);

/* The kind of a named field of a sentence type, or -ENOENT: for config checks. */
int nmea_field_kind(const char *type, const char *name);

/* Name i of a sentence type's named fields, NULL past the last (and for a type without names). */
const char *nmea_field_name(const char *type, unsigned i);

/*
 * Whether a position from this sentence may be used: RMC status A, GGA fix
 * quality not 0, GLL status A, GNS a mode other than N, GSA a 2D or 3D fix,
 * VTG and MWV not flagged invalid. Sentences without a validity field are
 * valid. An empty flag is not valid.
 */
bool nmea_valid(const struct nmea_sentence *s);

/*
 * The UTC time the sentence carries, in microseconds since 1970: RMC and
 * ZDA have a date; GGA, GLL, GNS and others only a time of day, which is
 * put on the day (of ref_us, the day before or after) nearest to ref_us, so
 * that a sentence from 23:59:59 read just after midnight keeps its day.
 * Returns 0, -ENODATA (no time in the sentence or the fields empty), or
 * -EINVAL (a field that is not a time or date).
 */
int nmea_timestamp(const struct nmea_sentence *s, int64_t ref_us, int64_t *ret_us);

struct nmea_xdr {
	char type;        /* 'C' temperature, 'P' pressure, 'H' humidity, 'A' angle, ... */
	bool has_value;   /* false for an empty measurement */
	double value;
	char unit;        /* 'C', 'B' (bar), 'P' (percent, pascal), 'D' (degrees), ... */
	const char *name; /* the transducer's name */
};

/* The number of measurements (groups of type, value, unit, name) in an XDR sentence. */
unsigned nmea_xdr_count(const struct nmea_sentence *s);

/* Measurement i of an XDR sentence: 0, -ENOENT past the last, -EINVAL for a bad value. */
int nmea_xdr_at(const struct nmea_sentence *s, unsigned i, struct nmea_xdr *ret);

/* The measurement of the transducer called name: 0, -ENOENT (none), -EINVAL (bad value). */
int nmea_xdr(const struct nmea_sentence *s, const char *name, struct nmea_xdr *ret);
