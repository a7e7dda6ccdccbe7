/* SPDX-License-Identifier: MIT */
/*
 * serial-nmea.c - NMEA 0183 sentences. See serial-nmea.h.
 *
 * A sentence is checked as a whole first (length, bytes, checksum), then
 * copied with its commas turned into NULs, so that every field is a C
 * string and nothing is allocated. What the named fields of a sentence
 * type mean is one table (sentences[]), read by the lookups and the
 * validity and time rules alike.
 */
#include "serial-nmea.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "serial-number.h"

const char *const nmea_checksum_names[] = {
	[NMEA_CHECKSUM_REQUIRED] = "required",
	[NMEA_CHECKSUM_OPTIONAL] = "optional",
	[NMEA_CHECKSUM_IGNORE] = "ignore",
	[NMEA_CHECKSUM_COUNT] = NULL,
};

struct field_def {
	const char *name;
	unsigned char index;
	unsigned char kind;
	double scale; /* NUMBER: the factor from the unit sent (0 means 1) */
};

#define KNOT_KMH 1.852
#define KNOT_MS (1852.0 / 3600.0)

static const struct field_def rmc_fields[] = {
	{"time", 0, NMEA_KIND_TIME, 0},
	{"status", 1, NMEA_KIND_TEXT, 0},
	{"latitude", 2, NMEA_KIND_LAT, 0},
	{"longitude", 4, NMEA_KIND_LON, 0},
	{"speed_knots", 6, NMEA_KIND_NUMBER, 0},
	{"speed_kmh", 6, NMEA_KIND_NUMBER, KNOT_KMH},
	{"speed_ms", 6, NMEA_KIND_NUMBER, KNOT_MS},
	{"course", 7, NMEA_KIND_NUMBER, 0},
	{"date", 8, NMEA_KIND_DATE, 0},
	{"magnetic_variation", 9, NMEA_KIND_NUMBER, 0},
	{"mode", 11, NMEA_KIND_TEXT, 0},
	{NULL, 0, 0, 0},
};

static const struct field_def gga_fields[] = {
	{"time", 0, NMEA_KIND_TIME, 0},
	{"latitude", 1, NMEA_KIND_LAT, 0},
	{"longitude", 3, NMEA_KIND_LON, 0},
	{"fix_quality", 5, NMEA_KIND_NUMBER, 0},
	{"satellites", 6, NMEA_KIND_NUMBER, 0},
	{"hdop", 7, NMEA_KIND_NUMBER, 0},
	{"altitude", 8, NMEA_KIND_NUMBER, 0},
	{"geoid_separation", 10, NMEA_KIND_NUMBER, 0},
	{"dgps_age", 12, NMEA_KIND_NUMBER, 0},
	{"dgps_station", 13, NMEA_KIND_TEXT, 0},
	{NULL, 0, 0, 0},
};

static const struct field_def gll_fields[] = {
	{"latitude", 0, NMEA_KIND_LAT, 0},
	{"longitude", 2, NMEA_KIND_LON, 0},
	{"time", 4, NMEA_KIND_TIME, 0},
	{"status", 5, NMEA_KIND_TEXT, 0},
	{"mode", 6, NMEA_KIND_TEXT, 0},
	{NULL, 0, 0, 0},
};

static const struct field_def vtg_fields[] = {
	{"course", 0, NMEA_KIND_NUMBER, 0},
	{"course_magnetic", 2, NMEA_KIND_NUMBER, 0},
	{"speed_knots", 4, NMEA_KIND_NUMBER, 0},
	{"speed_kmh", 6, NMEA_KIND_NUMBER, 0},
	{"mode", 8, NMEA_KIND_TEXT, 0},
	{NULL, 0, 0, 0},
};

static const struct field_def gsa_fields[] = {
	{"selection", 0, NMEA_KIND_TEXT, 0},
	{"fix_type", 1, NMEA_KIND_NUMBER, 0},
	{"prn1", 2, NMEA_KIND_NUMBER, 0},
	{"prn2", 3, NMEA_KIND_NUMBER, 0},
	{"prn3", 4, NMEA_KIND_NUMBER, 0},
	{"prn4", 5, NMEA_KIND_NUMBER, 0},
	{"prn5", 6, NMEA_KIND_NUMBER, 0},
	{"prn6", 7, NMEA_KIND_NUMBER, 0},
	{"prn7", 8, NMEA_KIND_NUMBER, 0},
	{"prn8", 9, NMEA_KIND_NUMBER, 0},
	{"prn9", 10, NMEA_KIND_NUMBER, 0},
	{"prn10", 11, NMEA_KIND_NUMBER, 0},
	{"prn11", 12, NMEA_KIND_NUMBER, 0},
	{"prn12", 13, NMEA_KIND_NUMBER, 0},
	{"pdop", 14, NMEA_KIND_NUMBER, 0},
	{"hdop", 15, NMEA_KIND_NUMBER, 0},
	{"vdop", 16, NMEA_KIND_NUMBER, 0},
	{"system_id", 17, NMEA_KIND_NUMBER, 0},
	{NULL, 0, 0, 0},
};

#define GSV_SAT(n)                                                                                 \
	{"prn" #n, 3 + 4 * (n - 1), NMEA_KIND_NUMBER, 0},                                          \
	{"elevation" #n, 4 + 4 * (n - 1), NMEA_KIND_NUMBER, 0},                                    \
	{"azimuth" #n, 5 + 4 * (n - 1), NMEA_KIND_NUMBER, 0},                                      \
	{"snr" #n, 6 + 4 * (n - 1), NMEA_KIND_NUMBER, 0}

/* NMEA 4.10 puts a signal id after the last satellite, wherever that is. */
#define GSV_SIGNAL_ID 255

static const struct field_def gsv_fields[] = {
	{"messages", 0, NMEA_KIND_NUMBER, 0},
	{"message", 1, NMEA_KIND_NUMBER, 0},
	{"satellites_in_view", 2, NMEA_KIND_NUMBER, 0},
	{"signal_id", GSV_SIGNAL_ID, NMEA_KIND_NUMBER, 0},
	GSV_SAT(1),
	GSV_SAT(2),
	GSV_SAT(3),
	GSV_SAT(4),
	{NULL, 0, 0, 0},
};

static const struct field_def zda_fields[] = {
	{"time", 0, NMEA_KIND_TIME, 0},
	{"day", 1, NMEA_KIND_NUMBER, 0},
	{"month", 2, NMEA_KIND_NUMBER, 0},
	{"year", 3, NMEA_KIND_NUMBER, 0},
	{"zone_hours", 4, NMEA_KIND_NUMBER, 0},
	{"zone_minutes", 5, NMEA_KIND_NUMBER, 0},
	{NULL, 0, 0, 0},
};

static const struct field_def gns_fields[] = {
	{"time", 0, NMEA_KIND_TIME, 0},
	{"latitude", 1, NMEA_KIND_LAT, 0},
	{"longitude", 3, NMEA_KIND_LON, 0},
	{"mode", 5, NMEA_KIND_TEXT, 0},
	{"satellites", 6, NMEA_KIND_NUMBER, 0},
	{"hdop", 7, NMEA_KIND_NUMBER, 0},
	{"altitude", 8, NMEA_KIND_NUMBER, 0},
	{"geoid_separation", 9, NMEA_KIND_NUMBER, 0},
	{"dgps_age", 10, NMEA_KIND_NUMBER, 0},
	{"dgps_station", 11, NMEA_KIND_TEXT, 0},
	{"nav_status", 12, NMEA_KIND_TEXT, 0},
	{NULL, 0, 0, 0},
};

static const struct field_def hdt_fields[] = {
	{"heading", 0, NMEA_KIND_NUMBER, 0},
	{NULL, 0, 0, 0},
};

static const struct field_def mwv_fields[] = {
	{"wind_angle", 0, NMEA_KIND_NUMBER, 0},
	{"reference", 1, NMEA_KIND_TEXT, 0},
	{"wind_speed", 2, NMEA_KIND_NUMBER, 0},
	{"wind_speed_units", 3, NMEA_KIND_TEXT, 0},
	{"status", 4, NMEA_KIND_TEXT, 0},
	{NULL, 0, 0, 0},
};

static const struct field_def dbt_fields[] = {
	{"depth_feet", 0, NMEA_KIND_NUMBER, 0},
	{"depth_meters", 2, NMEA_KIND_NUMBER, 0},
	{"depth_fathoms", 4, NMEA_KIND_NUMBER, 0},
	{NULL, 0, 0, 0},
};

static const struct field_def dpt_fields[] = {
	{"depth", 0, NMEA_KIND_NUMBER, 0},
	{"offset", 1, NMEA_KIND_NUMBER, 0},
	{"range", 2, NMEA_KIND_NUMBER, 0},
	{NULL, 0, 0, 0},
};

static const struct field_def mtw_fields[] = {
	{"temperature", 0, NMEA_KIND_NUMBER, 0},
	{NULL, 0, 0, 0},
};

/* How a type's validity flag reads (nmea_valid()). */
enum valid_rule {
	VALID_ALWAYS,
	VALID_IS_A,      /* the field is "A" */
	VALID_NONZERO,   /* a number other than 0 */
	VALID_2D_3D,     /* "2" or "3" */
	VALID_NOT_N,     /* empty or missing is fine, "N" is not */
	VALID_MODE_FIX,  /* some letter other than N */
};

/* Where a type's time and date are (nmea_timestamp()); -1: none. */
struct nmea_sentence_def {
	const char *type;
	const struct field_def *fields;
	enum valid_rule valid;
	signed char valid_index;
	signed char time_index;
	signed char date_index; /* ddmmyy; ZDA has its own three fields */
};

static const struct nmea_sentence_def sentences[] = {
	{"RMC", rmc_fields, VALID_IS_A, 1, 0, 8},
	{"GGA", gga_fields, VALID_NONZERO, 5, 0, -1},
	{"GLL", gll_fields, VALID_IS_A, 5, 4, -1},
	{"VTG", vtg_fields, VALID_NOT_N, 8, -1, -1},
	{"GSA", gsa_fields, VALID_2D_3D, 1, -1, -1},
	{"GSV", gsv_fields, VALID_ALWAYS, -1, -1, -1},
	{"ZDA", zda_fields, VALID_ALWAYS, -1, 0, -1},
	{"GNS", gns_fields, VALID_MODE_FIX, 5, 0, -1},
	{"HDT", hdt_fields, VALID_ALWAYS, -1, -1, -1},
	{"MWV", mwv_fields, VALID_IS_A, 4, -1, -1},
	{"DBT", dbt_fields, VALID_ALWAYS, -1, -1, -1},
	{"DPT", dpt_fields, VALID_ALWAYS, -1, -1, -1},
	{"MTW", mtw_fields, VALID_ALWAYS, -1, -1, -1},
};

static const struct nmea_sentence_def *find_sentence(const char *type) {
	for (size_t i = 0; i < sizeof(sentences) / sizeof(sentences[0]); i++)
		if (strcmp(sentences[i].type, type) == 0)
			return &sentences[i];
	return NULL;
}

static const struct field_def *def_field(const struct nmea_sentence_def *sd, const char *name) {
	if (!sd)
		return NULL;
	for (const struct field_def *f = sd->fields; f->name; f++)
		if (strcmp(f->name, name) == 0)
			return f;
	return NULL;
}

static int hex_value(char c) {
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/*
 * Checks the "*hh" at the end of body[0..*len) (the sentence after its
 * start character) and cuts it off.
 */
static int check_checksum(const char *body, size_t *len, enum nmea_checksum policy,
                          bool *ret_has) {
	const char *star = memchr(body, '*', *len);
	size_t n = *len;
	unsigned sum = 0;
	int hi, lo;

	*ret_has = false;
	if (!star)
		return policy == NMEA_CHECKSUM_REQUIRED ? -ENOMSG : 0;
	*len = (size_t)(star - body);
	if (policy == NMEA_CHECKSUM_IGNORE)
		return 0;
	/* '*' is reserved: it appears once, two hex digits before the end. */
	if (*len + 3 != n)
		return -EBADMSG;
	hi = hex_value(star[1]);
	lo = hex_value(star[2]);
	if (hi < 0 || lo < 0)
		return -EBADMSG;
	for (size_t i = 0; i < *len; i++)
		sum ^= (unsigned char)body[i];
	if (sum != (unsigned)(hi << 4 | lo))
		return -EBADMSG;
	*ret_has = true;
	return 0;
}

static bool is_upper_or_digit(char c) {
	return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* The address field: two letters of talker and the type, or P and a maker's type. */
static int split_address(const char *addr, struct nmea_sentence *s) {
	size_t n = strlen(addr);

	for (size_t i = 0; i < n; i++)
		if (!is_upper_or_digit(addr[i]))
			return -EINVAL;
	if (n >= 2 && addr[0] == 'P') {
		if (n - 1 >= sizeof(s->type))
			return -EINVAL;
		strcpy(s->talker, "P");
		memcpy(s->type, addr + 1, n);
		return 0;
	}
	if (n < 3 || n - 2 >= sizeof(s->type))
		return -EINVAL;
	memcpy(s->talker, addr, 2);
	s->talker[2] = 0;
	memcpy(s->type, addr + 2, n - 1);
	return 0;
}

static int split_fields(struct nmea_sentence *s, size_t len) {
	unsigned n = 0;

	for (size_t i = 0; i < len; i++) {
		if (s->buf_[i] != ',')
			continue;
		if (n == NMEA_MAX_FIELDS)
			return -EMSGSIZE;
		s->buf_[i] = 0;
		s->off_[n++] = (uint8_t)(i + 1);
	}
	s->nfields = n;
	return 0;
}

int nmea_parse(const uint8_t *frame, size_t len, enum nmea_checksum policy,
               struct nmea_sentence *ret) {
	struct nmea_sentence s;
	const uint8_t *p = frame;
	size_t n = len, body_len;
	int r;

	if ((unsigned)policy >= NMEA_CHECKSUM_COUNT)
		return -EINVAL;
	/* Noise before the start character, and any line ending after the sentence. */
	while (n > 0 && *p != '$' && *p != '!') {
		p++;
		n--;
	}
	while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == '\n' || p[n - 1] == ' '))
		n--;
	if (n == 0)
		return -EINVAL;
	if (n > NMEA_MAX_LEN)
		return -EMSGSIZE;
	for (size_t i = 0; i < n; i++)
		if (p[i] < 0x20 || p[i] > 0x7e)
			return -EINVAL;
	memset(&s, 0, sizeof(s));
	s.start = (char)p[0];
	body_len = n - 1;
	r = check_checksum((const char *)p + 1, &body_len, policy, &s.has_checksum);
	if (r < 0)
		return r;
	memcpy(s.buf_, p + 1, body_len);
	s.buf_[body_len] = 0;
	r = split_fields(&s, body_len);
	if (r < 0)
		return r;
	r = split_address(s.buf_, &s);
	if (r < 0)
		return r;
	/* A proprietary sentence has no fields of ours, whatever its letters. */
	s.def_ = strcmp(s.talker, "P") ? find_sentence(s.type) : NULL;
	*ret = s;
	return 0;
}

bool nmea_match(const struct nmea_sentence *s, const char *name) {
	size_t tl;

	/*
	 * Every point asks for every sentence, and most name another one: a
	 * match starts with the type's first letter or the talker's (either
	 * is '\0' when empty), which turns those away without a call.
	 */
	if (name[0] != s->type[0] && name[0] != s->talker[0])
		return false;
	if (!(s->talker[0] == 'P' && s->talker[1] == '\0') && strcmp(name, s->type) == 0)
		return true;
	tl = strlen(s->talker);
	return strncmp(name, s->talker, tl) == 0 && strcmp(name + tl, s->type) == 0;
}

const char *nmea_raw(const struct nmea_sentence *s, unsigned i) {
	if (i >= s->nfields)
		return NULL;
	return s->buf_ + s->off_[i];
}

int nmea_number(const struct nmea_sentence *s, unsigned i, double *ret) {
	const char *f = nmea_raw(s, i);

	if (!f)
		return -ENODATA;
	return sn_double(f, strlen(f), '.', ret);
}

/* "ddmm.mmmm" (deg_digits = 2) or "dddmm.mmmm" (3); fewer degree digits are accepted too. */
static int parse_coordinate(const char *f, const char *hemi, int deg_digits, double *ret) {
	const char *dot = strchr(f, '.');
	size_t ilen = dot ? (size_t)(dot - f) : strlen(f);
	double deg, min, v;
	uint64_t d;
	int r;

	if (!*f || !hemi || !*hemi)
		return -ENODATA;
	if (ilen < 3 || ilen > (size_t)deg_digits + 2 || f[0] == '+' || f[0] == '-')
		return -EINVAL;
	r = sn_uint(f, ilen - 2, 999, &d);
	if (r < 0)
		return -EINVAL;
	deg = (double)d;
	r = sn_double(f + ilen - 2, strlen(f) - (ilen - 2), '.', &min);
	if (r < 0 || min >= 60.0 || f[ilen - 2] == '+' || f[ilen - 2] == '-')
		return -EINVAL;
	v = deg + min / 60.0;
	if (v > (deg_digits == 2 ? 90.0 : 180.0) || hemi[1])
		return -EINVAL;
	switch (hemi[0]) {
	case 'N':
	case 'E':
		if ((hemi[0] == 'N') != (deg_digits == 2))
			return -EINVAL;
		*ret = v;
		return 0;
	case 'S':
	case 'W':
		if ((hemi[0] == 'S') != (deg_digits == 2))
			return -EINVAL;
		*ret = -v;
		return 0;
	default:
		return -EINVAL;
	}
}

static int digits2(const char *p, unsigned *ret) {
	if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9')
		return -EINVAL;
	*ret = (unsigned)(p[0] - '0') * 10 + (unsigned)(p[1] - '0');
	return 0;
}

/* hhmmss[.f...]: microseconds since midnight; digits past microseconds are cut. */
static int parse_time(const char *f, int64_t *ret) {
	unsigned h, m, sec;
	int64_t us = 0, scale = 100000;
	size_t n = strlen(f);

	if (n == 0)
		return -ENODATA;
	if (n < 6 || digits2(f, &h) < 0 || digits2(f + 2, &m) < 0 || digits2(f + 4, &sec) < 0)
		return -EINVAL;
	if (h > 23 || m > 59 || sec > 60)
		return -EINVAL;
	if (n > 6) {
		if (f[6] != '.' || n == 7)
			return -EINVAL;
		for (size_t i = 7; i < n; i++) {
			if (f[i] < '0' || f[i] > '9')
				return -EINVAL;
			us += (f[i] - '0') * scale;
			scale /= 10;
		}
	}
	*ret = ((int64_t)h * 3600 + m * 60 + sec) * 1000000 + us;
	return 0;
}

/* Days since 1970-01-01 of a civil date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static int date_us(int64_t y, unsigned m, unsigned d, int64_t *ret) {
	static const unsigned char mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	if (m < 1 || m > 12 || d < 1 || d > mdays[m - 1] || (m == 2 && d == 29 && !leap))
		return -EINVAL;
	*ret = days_from_civil(y, m, d) * 86400 * INT64_C(1000000);
	return 0;
}

/* ddmmyy; two-digit years as strptime's %y reads them (69..99: 1900s), as receivers mean them. */
static int parse_date(const char *f, int64_t *ret) {
	unsigned d, m, y;

	if (!*f)
		return -ENODATA;
	if (strlen(f) != 6 || digits2(f, &d) < 0 || digits2(f + 2, &m) < 0 ||
	    digits2(f + 4, &y) < 0)
		return -EINVAL;
	return date_us(y < 69 ? 2000 + y : 1900 + y, m, d, ret);
}

static int get_value(const struct nmea_sentence *s, const struct field_def *fd,
                     struct nmea_value *ret) {
	const char *f = nmea_raw(s, fd->index);
	struct nmea_value v = {.kind = (enum nmea_kind)fd->kind, .number = NAN, .text = f};
	int64_t us;
	int r = 0;

	if (!f || !*f)
		return -ENODATA;
	switch (fd->kind) {
	case NMEA_KIND_NUMBER:
		r = sn_double(f, strlen(f), '.', &v.number);
		if (r == 0 && fd->scale != 0)
			v.number *= fd->scale;
		break;
	case NMEA_KIND_LAT:
	case NMEA_KIND_LON:
		r = parse_coordinate(f, nmea_raw(s, fd->index + 1u),
		                     fd->kind == NMEA_KIND_LAT ? 2 : 3, &v.number);
		break;
	case NMEA_KIND_TIME:
	case NMEA_KIND_DATE:
		r = fd->kind == NMEA_KIND_TIME ? parse_time(f, &us) : parse_date(f, &us);
		v.number = (double)us;
		break;
	default:
		break;
	}
	if (r < 0)
		return r;
	*ret = v;
	return 0;
}

/*
 * A GSV sentence carries one to four satellites and maybe a signal id
 * behind them: a satellite past the last one sent has no value, whatever
 * field sits at its index.
 */
static int gsv_value(const struct nmea_sentence *s, const struct field_def *fd,
                     struct nmea_value *ret) {
	unsigned sats = s->nfields >= 3 ? (s->nfields - 3) / 4 : 0;
	struct field_def at = *fd;

	if (fd->index == GSV_SIGNAL_ID) {
		if (s->nfields < 3 || (s->nfields - 3) % 4 != 1)
			return -ENODATA;
		at.index = (unsigned char)(s->nfields - 1);
	} else if (fd->index >= 3 && (fd->index - 3u) / 4 >= sats) {
		return -ENODATA;
	}
	return get_value(s, &at, ret);
}

int nmea_get(const struct nmea_sentence *s, const char *name, struct nmea_value *ret) {
	const struct field_def *fd = def_field(s->def_, name);

	if (!fd)
		return -ENOENT;
	if (strcmp(s->type, "GSV") == 0)
		return gsv_value(s, fd, ret);
	return get_value(s, fd, ret);
}

int nmea_field_kind(const char *type, const char *name) {
	const struct field_def *fd = def_field(find_sentence(type), name);

	return fd ? fd->kind : -ENOENT;
}

const char *nmea_field_name(const char *type, unsigned i) {
	const struct nmea_sentence_def *sd = find_sentence(type);

	if (!sd)
		return NULL;
	for (unsigned k = 0; sd->fields[k].name; k++)
		if (k == i)
			return sd->fields[k].name;
	return NULL;
}

bool nmea_valid(const struct nmea_sentence *s) {
	const struct nmea_sentence_def *sd = s->def_;
	const char *f;
	double v;

	if (!sd || sd->valid == VALID_ALWAYS)
		return true;
	f = nmea_raw(s, (unsigned)sd->valid_index);
	switch (sd->valid) {
	case VALID_IS_A:
		return f && strcmp(f, "A") == 0;
	case VALID_NONZERO:
		return f && sn_double(f, strlen(f), '.', &v) == 0 && v != 0;
	case VALID_2D_3D:
		return f && (strcmp(f, "2") == 0 || strcmp(f, "3") == 0);
	case VALID_NOT_N:
		return !f || strcmp(f, "N") != 0;
	case VALID_MODE_FIX:
		if (!f || !*f)
			return false;
		for (; *f; f++)
			if (*f != 'N')
				return true;
		return false;
	default:
		return true;
	}
}

/* ZDA: day, month and four-digit year in fields 1..3. */
static int zda_date(const struct nmea_sentence *s, int64_t *ret) {
	uint64_t d, m, y;
	const char *fd = nmea_raw(s, 1), *fm = nmea_raw(s, 2), *fy = nmea_raw(s, 3);

	if (!fd || !fm || !fy || !*fd || !*fm || !*fy)
		return -ENODATA;
	if (sn_uint(fd, strlen(fd), 31, &d) < 0 || sn_uint(fm, strlen(fm), 12, &m) < 0 ||
	    sn_uint(fy, strlen(fy), 9999, &y) < 0)
		return -EINVAL;
	return date_us((int64_t)y, (unsigned)m, (unsigned)d, ret);
}

/* A time of day on the day (of ref, the one before or after) nearest to ref. */
static int64_t nearest_day(int64_t tod, int64_t ref_us) {
	const int64_t day = 86400 * INT64_C(1000000);
	int64_t base = (ref_us >= 0 ? ref_us / day : (ref_us - day + 1) / day) * day;
	int64_t best = base + tod;

	for (int k = -1; k <= 1; k += 2) {
		int64_t t = base + k * day + tod;

		if (llabs(t - ref_us) < llabs(best - ref_us))
			best = t;
	}
	return best;
}

int nmea_timestamp(const struct nmea_sentence *s, int64_t ref_us, int64_t *ret_us) {
	const struct nmea_sentence_def *sd = s->def_;
	const char *ft;
	int64_t tod, date;
	int r;

	if (!sd || sd->time_index < 0)
		return -ENODATA;
	ft = nmea_raw(s, (unsigned)sd->time_index);
	if (!ft)
		return -ENODATA;
	r = parse_time(ft, &tod);
	if (r < 0)
		return r;
	if (strcmp(sd->type, "ZDA") == 0)
		r = zda_date(s, &date);
	else if (sd->date_index >= 0 && nmea_raw(s, (unsigned)sd->date_index))
		r = parse_date(nmea_raw(s, (unsigned)sd->date_index), &date);
	else
		r = -ENODATA;
	if (r == -ENODATA) {
		*ret_us = nearest_day(tod, ref_us);
		return 0;
	}
	if (r < 0)
		return r;
	*ret_us = date + tod;
	return 0;
}

unsigned nmea_xdr_count(const struct nmea_sentence *s) {
	if (strcmp(s->type, "XDR") != 0 || strcmp(s->talker, "P") == 0)
		return 0;
	return s->nfields / 4;
}

int nmea_xdr_at(const struct nmea_sentence *s, unsigned i, struct nmea_xdr *ret) {
	const char *type, *value, *unit;
	struct nmea_xdr x = {0};
	int r;

	if (i >= nmea_xdr_count(s))
		return -ENOENT;
	type = nmea_raw(s, 4 * i);
	value = nmea_raw(s, 4 * i + 1);
	unit = nmea_raw(s, 4 * i + 2);
	x.name = nmea_raw(s, 4 * i + 3);
	x.type = type[0];
	x.unit = unit[0];
	r = sn_double(value, strlen(value), '.', &x.value);
	if (r == -EINVAL)
		return r;
	x.has_value = r == 0;
	if (!x.has_value)
		x.value = NAN;
	*ret = x;
	return 0;
}

int nmea_xdr(const struct nmea_sentence *s, const char *name, struct nmea_xdr *ret) {
	unsigned n = nmea_xdr_count(s);

	for (unsigned i = 0; i < n; i++)
		if (strcmp(nmea_raw(s, 4 * i + 3), name) == 0)
			return nmea_xdr_at(s, i, ret);
	return -ENOENT;
}
