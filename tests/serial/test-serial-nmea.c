/* SPDX-License-Identifier: MIT */
/*
 * NMEA 0183 sentences as receivers of several talkers send them (GPS, GNSS
 * multi-constellation, GLONASS, Galileo, BeiDou, QZSS, marine instruments,
 * AIS), with no fix, with bad, lowercase and missing checksums, at the
 * length limit, and XDR with several transducers.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "serial-nmea.h"
#include "test.h"

#define EPS 1e-9

static struct nmea_sentence parse_ok(const char *text) {
	struct nmea_sentence s;
	int r = nmea_parse((const uint8_t *)text, strlen(text), NMEA_CHECKSUM_REQUIRED, &s);

	if (r != 0)
		TEST_FAIL("\"%s\": %d", text, r);
	return s;
}

/* Without a checksum, for the fields' own errors. */
static struct nmea_sentence parse_loose(const char *text) {
	struct nmea_sentence s;

	ASSERT_OK(nmea_parse((const uint8_t *)text, strlen(text), NMEA_CHECKSUM_IGNORE, &s));
	return s;
}

static int parse(const char *text, enum nmea_checksum policy) {
	struct nmea_sentence s;

	return nmea_parse((const uint8_t *)text, strlen(text), policy, &s);
}

static double num(const struct nmea_sentence *s, const char *name) {
	struct nmea_value v;
	int r = nmea_get(s, name, &v);

	if (r != 0)
		TEST_FAIL("%s%s %s: %d", s->talker, s->type, name, r);
	return v.number;
}

static int get_r(const struct nmea_sentence *s, const char *name) {
	struct nmea_value v;

	return nmea_get(s, name, &v);
}

static const char *text(const struct nmea_sentence *s, const char *name) {
	struct nmea_value v;

	ASSERT_OK(nmea_get(s, name, &v));
	return v.text;
}

static void test_gga_rmc_classic(void) {
	struct nmea_sentence s =
		parse_ok("$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\r\n");
	int64_t t;

	ASSERT_EQ(s.start, '$');
	ASSERT_STR_EQ(s.talker, "GP");
	ASSERT_STR_EQ(s.type, "GGA");
	ASSERT(s.has_checksum);
	ASSERT_EQ(s.nfields, 14);
	ASSERT_DOUBLE_EQ(num(&s, "latitude"), 48 + 7.038 / 60, EPS);
	ASSERT_DOUBLE_EQ(num(&s, "longitude"), 11 + 31.0 / 60, EPS);
	ASSERT_DOUBLE_EQ(num(&s, "fix_quality"), 1, 0);
	ASSERT_DOUBLE_EQ(num(&s, "satellites"), 8, 0);
	ASSERT_DOUBLE_EQ(num(&s, "hdop"), 0.9, 0);
	ASSERT_DOUBLE_EQ(num(&s, "altitude"), 545.4, 0);
	ASSERT_DOUBLE_EQ(num(&s, "geoid_separation"), 46.9, 0);
	ASSERT_DOUBLE_EQ(num(&s, "time"), (12 * 3600 + 35 * 60 + 19) * 1e6, 0);
	ASSERT_EQ(get_r(&s, "dgps_age"), -ENODATA);
	ASSERT_EQ(get_r(&s, "speed_knots"), -ENOENT);
	ASSERT(nmea_valid(&s));
	/* Only a time of day: the day comes from the reference. */
	ASSERT_OK(nmea_timestamp(&s, INT64_C(764426119000000) + 3600000000, &t));
	ASSERT_EQ(t, INT64_C(764426119000000));

	s = parse_ok("$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A");
	ASSERT_STR_EQ(text(&s, "status"), "A");
	ASSERT(nmea_valid(&s));
	ASSERT_DOUBLE_EQ(num(&s, "speed_knots"), 22.4, 0);
	ASSERT_DOUBLE_EQ(num(&s, "speed_kmh"), 22.4 * 1.852, EPS);
	ASSERT_DOUBLE_EQ(num(&s, "speed_ms"), 22.4 * 1852 / 3600, EPS);
	ASSERT_DOUBLE_EQ(num(&s, "course"), 84.4, 0);
	ASSERT_DOUBLE_EQ(num(&s, "magnetic_variation"), 3.1, 0);
	ASSERT_OK(nmea_timestamp(&s, 0, &t));
	ASSERT_EQ(t, INT64_C(764426119000000));
	ASSERT_EQ(get_r(&s, "mode"), -ENODATA);
}

static void test_no_fix(void) {
	struct nmea_sentence s = parse_ok("$GPRMC,,V,,,,,,,,,,N*53");
	int64_t t;

	ASSERT(!nmea_valid(&s));
	ASSERT_EQ(get_r(&s, "latitude"), -ENODATA);
	ASSERT_EQ(get_r(&s, "speed_knots"), -ENODATA);
	ASSERT_EQ(nmea_timestamp(&s, 0, &t), -ENODATA);
	ASSERT_STR_EQ(text(&s, "mode"), "N");

	s = parse_ok("$GPGGA,,,,,,0,00,99.99,,,,,,*48");
	ASSERT(!nmea_valid(&s));
	ASSERT_DOUBLE_EQ(num(&s, "fix_quality"), 0, 0);
	ASSERT_DOUBLE_EQ(num(&s, "hdop"), 99.99, 0);
	ASSERT_EQ(get_r(&s, "latitude"), -ENODATA);
	ASSERT_EQ(get_r(&s, "altitude"), -ENODATA);

	s = parse_ok("$GPGLL,,,,,,V,N*64");
	ASSERT(!nmea_valid(&s));
	ASSERT_EQ(get_r(&s, "longitude"), -ENODATA);
}

static void test_gnss_talkers(void) {
	struct nmea_sentence s = parse_ok(
	    "$GPGGA,235959.00,3351.1234,S,15112.5678,E,2,12,0.7,12.3,M,22.1,M,1.2,0042*67");
	int64_t t;

	ASSERT_DOUBLE_EQ(num(&s, "latitude"), -(33 + 51.1234 / 60), EPS);
	ASSERT_DOUBLE_EQ(num(&s, "longitude"), 151 + 12.5678 / 60, EPS);
	ASSERT_DOUBLE_EQ(num(&s, "dgps_age"), 1.2, 0);
	ASSERT_STR_EQ(text(&s, "dgps_station"), "0042");
	/* 23:59:59 read ten seconds after midnight belongs to the day before. */
	ASSERT_OK(nmea_timestamp(&s, INT64_C(1796169610000000), &t));
	ASSERT_EQ(t, INT64_C(1796169599000000));

	s = parse_ok("$GNRMC,001500.123,A,5130.00000,N,12000.00000,W,12.345,359.9,010126,,,D*54");
	ASSERT_STR_EQ(s.talker, "GN");
	ASSERT_DOUBLE_EQ(num(&s, "latitude"), 51.5, EPS);
	ASSERT_DOUBLE_EQ(num(&s, "longitude"), -120.0, EPS);
	ASSERT_OK(nmea_timestamp(&s, 0, &t));
	ASSERT_EQ(t, INT64_C(1767226500123000));
	ASSERT(nmea_match(&s, "RMC"));
	ASSERT(nmea_match(&s, "GNRMC"));
	ASSERT(!nmea_match(&s, "GPRMC"));
	ASSERT(!nmea_match(&s, "GGA"));

	s = parse_ok("$GNRMC,083559.00,A,4717.11437,N,00833.91522,E,0.004,77.52,091202,,,A*49");
	ASSERT_DOUBLE_EQ(num(&s, "longitude"), 8 + 33.91522 / 60, EPS);
	s = parse_ok("$GNGGA,092725.00,4717.11399,N,00833.91590,E,1,08,1.01,499.6,M,48.0,M,,*45");
	ASSERT_DOUBLE_EQ(num(&s, "latitude"), 47 + 17.11399 / 60, EPS);

	s = parse_ok("$GNGNS,112257.00,3844.24011,N,00908.43828,W,AN,03,10.5,,,,*49");
	ASSERT(nmea_valid(&s));
	ASSERT_STR_EQ(text(&s, "mode"), "AN");
	ASSERT_DOUBLE_EQ(num(&s, "longitude"), -(9 + 8.43828 / 60), EPS);
	ASSERT_DOUBLE_EQ(num(&s, "satellites"), 3, 0);
	ASSERT_DOUBLE_EQ(num(&s, "hdop"), 10.5, 0);
	ASSERT_EQ(get_r(&s, "altitude"), -ENODATA);

	s = parse_ok("$GNGSA,A,3,10,12,25,32,,,,,,,,,1.45,0.83,1.19,1*07");
	ASSERT(nmea_valid(&s));
	ASSERT_DOUBLE_EQ(num(&s, "prn1"), 10, 0);
	ASSERT_EQ(get_r(&s, "prn5"), -ENODATA);
	ASSERT_DOUBLE_EQ(num(&s, "pdop"), 1.45, 0);
	ASSERT_DOUBLE_EQ(num(&s, "vdop"), 1.19, 0);
	ASSERT_DOUBLE_EQ(num(&s, "system_id"), 1, 0);
	s = parse_ok("$GPGSA,A,3,04,05,,09,12,,,24,,,,,2.5,1.3,2.1*39");
	ASSERT_EQ(get_r(&s, "prn3"), -ENODATA);
	ASSERT_DOUBLE_EQ(num(&s, "prn4"), 9, 0);
	ASSERT_EQ(get_r(&s, "system_id"), -ENODATA);
}

static void test_gsv_every_constellation(void) {
	static const struct {
		const char *sentence, *talker;
		double prn1, snr1;
	} cases[] = {
	    {"$GPGSV,3,1,11,03,03,111,00,04,15,270,00,06,01,010,00,13,06,292,00*74", "GP", 3, 0},
	    {"$GLGSV,2,1,07,65,29,044,32,66,70,116,38,67,38,188,35,72,16,268,25,1*7B", "GL", 65,
	     32},
	    {"$GAGSV,1,1,03,02,45,097,40,11,20,300,33,12,61,180,44,7*45", "GA", 2, 40},
	    {"$BDGSV,1,1,02,201,50,120,39,206,33,240,36,0*7E", "BD", 201, 39},
	    {"$QZGSV,1,1,01,193,75,160,41,1*72", "QZ", 193, 41},
	    {"$GBGSV,1,1,01,19,40,050,37,1*4A", "GB", 19, 37},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct nmea_sentence s = parse_ok(cases[i].sentence);

		ASSERT_STR_EQ(s.talker, cases[i].talker);
		ASSERT(nmea_match(&s, "GSV"));
		ASSERT_EQ(nmea_match(&s, "GPGSV"), i == 0);
		ASSERT_DOUBLE_EQ(num(&s, "prn1"), cases[i].prn1, 0);
		ASSERT_DOUBLE_EQ(num(&s, "snr1"), cases[i].snr1, 0);
	}
	{
		struct nmea_sentence s = parse_ok(cases[0].sentence);

		ASSERT_DOUBLE_EQ(num(&s, "messages"), 3, 0);
		ASSERT_DOUBLE_EQ(num(&s, "satellites_in_view"), 11, 0);
		ASSERT_DOUBLE_EQ(num(&s, "azimuth4"), 292, 0);
		ASSERT_EQ(get_r(&s, "signal_id"), -ENODATA);
		/* After the one satellite sent comes the signal id, not a second satellite. */
		s = parse_ok(cases[4].sentence);
		ASSERT_EQ(get_r(&s, "prn2"), -ENODATA);
		ASSERT_DOUBLE_EQ(num(&s, "signal_id"), 1, 0);
	}
}

static void test_other_sentences(void) {
	struct nmea_sentence s = parse_ok("$GPVTG,054.7,T,034.4,M,005.5,N,010.2,K*48");
	int64_t t;

	ASSERT_DOUBLE_EQ(num(&s, "course"), 54.7, 0);
	ASSERT_DOUBLE_EQ(num(&s, "course_magnetic"), 34.4, 0);
	ASSERT_DOUBLE_EQ(num(&s, "speed_knots"), 5.5, 0);
	ASSERT_DOUBLE_EQ(num(&s, "speed_kmh"), 10.2, 0);
	ASSERT(nmea_valid(&s));

	s = parse_ok("$GPGLL,4916.45,N,12311.12,W,225444,A,*1D");
	ASSERT(nmea_valid(&s));
	ASSERT_DOUBLE_EQ(num(&s, "latitude"), 49 + 16.45 / 60, EPS);
	ASSERT_DOUBLE_EQ(num(&s, "longitude"), -(123 + 11.12 / 60), EPS);

	s = parse_ok("$GPZDA,201530.00,04,07,2002,00,00*60");
	ASSERT_OK(nmea_timestamp(&s, 0, &t));
	ASSERT_EQ(t, INT64_C(1025813730000000));
	s = parse_ok("$GNZDA,235959.50,31,12,2026,00,00*7B");
	ASSERT_OK(nmea_timestamp(&s, 0, &t));
	ASSERT_EQ(t, INT64_C(1798761599500000));
	ASSERT_DOUBLE_EQ(num(&s, "year"), 2026, 0);

	s = parse_ok("$INHDT,93.1,T*1E");
	ASSERT_STR_EQ(s.talker, "IN");
	ASSERT_DOUBLE_EQ(num(&s, "heading"), 93.1, 0);
	s = parse_ok("$IIMWV,045.0,R,12.5,N,A*0A");
	ASSERT(nmea_valid(&s));
	ASSERT_DOUBLE_EQ(num(&s, "wind_angle"), 45, 0);
	ASSERT_DOUBLE_EQ(num(&s, "wind_speed"), 12.5, 0);
	ASSERT_STR_EQ(text(&s, "reference"), "R");
	ASSERT_STR_EQ(text(&s, "wind_speed_units"), "N");
	s = parse_ok("$SDDBT,36.9,f,11.2,M,6.1,F*0F");
	ASSERT_DOUBLE_EQ(num(&s, "depth_meters"), 11.2, 0);
	ASSERT_DOUBLE_EQ(num(&s, "depth_fathoms"), 6.1, 0);
	s = parse_ok("$SDDPT,11.2,0.5,100*7D");
	ASSERT_DOUBLE_EQ(num(&s, "offset"), 0.5, 0);
	ASSERT_DOUBLE_EQ(num(&s, "range"), 100, 0);
	s = parse_ok("$YXMTW,17.5,C*11");
	ASSERT_DOUBLE_EQ(num(&s, "temperature"), 17.5, 0);
	ASSERT_EQ(nmea_timestamp(&s, 0, &t), -ENODATA);
}

static void test_xdr(void) {
	struct nmea_sentence s = parse_ok("$IIXDR,C,19.52,C,TempAir,P,1.02481,B,Barometer,"
	                                  "H,62.1,P,Humidity,C,,C,TempWater*3D");
	struct nmea_xdr x;

	ASSERT_EQ(nmea_xdr_count(&s), 4);
	ASSERT_OK(nmea_xdr(&s, "Barometer", &x));
	ASSERT_EQ(x.type, 'P');
	ASSERT_EQ(x.unit, 'B');
	ASSERT(x.has_value);
	ASSERT_DOUBLE_EQ(x.value, 1.02481, 0);
	ASSERT_OK(nmea_xdr(&s, "TempAir", &x));
	ASSERT_DOUBLE_EQ(x.value, 19.52, 0);
	ASSERT_OK(nmea_xdr(&s, "Humidity", &x));
	ASSERT_DOUBLE_EQ(x.value, 62.1, 0);
	ASSERT_OK(nmea_xdr(&s, "TempWater", &x));
	ASSERT(!x.has_value);
	ASSERT_EQ(nmea_xdr(&s, "tempair", &x), -ENOENT);
	ASSERT_OK(nmea_xdr_at(&s, 3, &x));
	ASSERT_STR_EQ(x.name, "TempWater");
	ASSERT_EQ(nmea_xdr_at(&s, 4, &x), -ENOENT);
	s = parse_ok("$YXMTW,17.5,C*11");
	ASSERT_EQ(nmea_xdr_count(&s), 0);
}

static void test_any_sentence_by_index(void) {
	struct nmea_sentence s = parse_ok("!AIVDM,1,1,,B,177KQJ5000G?tO`K>RA1wUbN0TKH,0*5C");
	double v;

	ASSERT_EQ(s.start, '!');
	ASSERT_STR_EQ(s.talker, "AI");
	ASSERT_STR_EQ(s.type, "VDM");
	ASSERT_STR_EQ(nmea_raw(&s, 2), "");
	ASSERT_STR_EQ(nmea_raw(&s, 4), "177KQJ5000G?tO`K>RA1wUbN0TKH");
	ASSERT(nmea_raw(&s, 6) == NULL);
	ASSERT_OK(nmea_number(&s, 0, &v));
	ASSERT_DOUBLE_EQ(v, 1, 0);
	ASSERT_EQ(nmea_number(&s, 2, &v), -ENODATA);
	ASSERT_EQ(nmea_number(&s, 3, &v), -EINVAL);
	ASSERT_EQ(nmea_number(&s, 9, &v), -ENODATA);
	ASSERT(nmea_valid(&s));

	s = parse_ok("$PGRME,15.0,M,45.0,M,25.0,M*1C");
	ASSERT_STR_EQ(s.talker, "P");
	ASSERT_STR_EQ(s.type, "GRME");
	ASSERT(nmea_match(&s, "PGRME"));
	ASSERT(!nmea_match(&s, "GRME"));
	ASSERT_OK(nmea_number(&s, 2, &v));
	ASSERT_DOUBLE_EQ(v, 45, 0);

	s = parse_ok("$GPTXT,01,01,02,u-blox ag - www.u-blox.com*50");
	ASSERT_STR_EQ(nmea_raw(&s, 3), "u-blox ag - www.u-blox.com");
}

static void test_checksums(void) {
	const char *good = "$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A";

	ASSERT_OK(parse(good, NMEA_CHECKSUM_REQUIRED));
	ASSERT_OK(parse("$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6a",
	                NMEA_CHECKSUM_REQUIRED));
	ASSERT_EQ(parse("$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6B",
	                NMEA_CHECKSUM_REQUIRED), -EBADMSG);
	/* One flipped digit in the data. */
	ASSERT_EQ(parse("$GPRMC,123519,A,4807.039,N,01131.000,E,022.4,084.4,230394,003.1,W*6A",
	                NMEA_CHECKSUM_OPTIONAL), -EBADMSG);
	ASSERT_OK(parse("$GPRMC,123519,A,4807.039,N,01131.000,E,022.4,084.4,230394,003.1,W*6A",
	                NMEA_CHECKSUM_IGNORE));
	ASSERT_EQ(parse("$GPHDT,274.07,T", NMEA_CHECKSUM_REQUIRED), -ENOMSG);
	ASSERT_OK(parse("$GPHDT,274.07,T", NMEA_CHECKSUM_OPTIONAL));
	ASSERT_OK(parse("$GPHDT,274.07,T", NMEA_CHECKSUM_IGNORE));
	ASSERT_EQ(parse("$GPHDT,274.07,T*0", NMEA_CHECKSUM_REQUIRED), -EBADMSG);
	ASSERT_EQ(parse("$GPHDT,274.07,T*0G", NMEA_CHECKSUM_REQUIRED), -EBADMSG);
	ASSERT_EQ(parse("$GPHDT,274.07,T*001", NMEA_CHECKSUM_REQUIRED), -EBADMSG);
	ASSERT_EQ(parse("$GPHDT,2*74.07,T*00", NMEA_CHECKSUM_REQUIRED), -EBADMSG);
	ASSERT_EQ(parse(good, NMEA_CHECKSUM_COUNT), -EINVAL);
	ASSERT_STR_EQ(nmea_checksum_names[NMEA_CHECKSUM_OPTIONAL], "optional");
}

/* A $GPTXT sentence of exactly len bytes with its checksum. */
static void make_sentence(char *out, size_t len) {
	unsigned sum = 0;
	size_t body;

	strcpy(out, "$GPTXT,01,01,02,");
	body = strlen(out);
	while (body < len - 3)
		out[body++] = 'x';
	out[body] = 0;
	for (size_t i = 1; i < body; i++)
		sum ^= (unsigned char)out[i];
	snprintf(out + body, 4, "*%02X", sum);
	ASSERT_EQ(strlen(out), len);
}

static void test_framing_and_bad_input(void) {
	char s102[128], s103[128];
	struct nmea_sentence s;

	make_sentence(s102, NMEA_MAX_LEN);
	make_sentence(s103, NMEA_MAX_LEN + 1);
	ASSERT_OK(parse(s102, NMEA_CHECKSUM_REQUIRED));
	strcat(s102, "\r\n");
	ASSERT_OK(parse(s102, NMEA_CHECKSUM_REQUIRED));
	ASSERT_EQ(parse(s103, NMEA_CHECKSUM_REQUIRED), -EMSGSIZE);
	/* \r\r\n endings, and noise before the start character. */
	ASSERT_OK(parse("$INHDT,93.1,T*1E\r\r\n", NMEA_CHECKSUM_REQUIRED));
	ASSERT_OK(nmea_parse((const uint8_t *)"\xff\x00\x13$INHDT,93.1,T*1E", 19,
	                     NMEA_CHECKSUM_REQUIRED, &s));
	ASSERT_STR_EQ(s.type, "HDT");
	ASSERT_EQ(nmea_parse((const uint8_t *)"$INHDT,9\x003.1,T*1E", 17, NMEA_CHECKSUM_IGNORE, &s),
	          -EINVAL);
	ASSERT_EQ(parse("$INHDT,93.1,T\x80*1E", NMEA_CHECKSUM_IGNORE), -EINVAL);
	ASSERT_EQ(parse("", NMEA_CHECKSUM_IGNORE), -EINVAL);
	ASSERT_EQ(parse("GPHDT,1,T", NMEA_CHECKSUM_IGNORE), -EINVAL);
	ASSERT_EQ(parse("$", NMEA_CHECKSUM_IGNORE), -EINVAL);
	ASSERT_EQ(parse("$gphdt,1,T", NMEA_CHECKSUM_IGNORE), -EINVAL);
	ASSERT_EQ(parse("$GP,1", NMEA_CHECKSUM_IGNORE), -EINVAL);
	ASSERT_EQ(parse("$P,1", NMEA_CHECKSUM_IGNORE), -EINVAL);
	ASSERT_EQ(parse("$GPABCDEFGHIJKLMNOPQ,1", NMEA_CHECKSUM_IGNORE), -EINVAL);
	/* More fields than NMEA_MAX_FIELDS. */
	{
		char many[NMEA_MAX_LEN + 1] = "$GPXYZ";

		memset(many + 6, ',', NMEA_MAX_FIELDS);
		ASSERT_OK(parse(many, NMEA_CHECKSUM_IGNORE));
		many[6 + NMEA_MAX_FIELDS] = ',';
		ASSERT_EQ(parse(many, NMEA_CHECKSUM_IGNORE), -EMSGSIZE);
	}
}

static void test_bad_values(void) {
	struct nmea_sentence s;

	s = parse_loose("$GPGGA,256000,4860.000,N,01131.000,X,1,08,x,,M,,M,,");
	ASSERT_EQ(get_r(&s, "time"), -EINVAL);
	ASSERT_EQ(get_r(&s, "latitude"), -EINVAL);
	ASSERT_EQ(get_r(&s, "longitude"), -EINVAL);
	ASSERT_EQ(get_r(&s, "hdop"), -EINVAL);
	s = parse_loose("$GPRMC,120000,A,9100.000,N,18100.000,E,,,320126,,");
	ASSERT_EQ(get_r(&s, "latitude"), -EINVAL);
	ASSERT_EQ(get_r(&s, "longitude"), -EINVAL);
	ASSERT_EQ(get_r(&s, "date"), -EINVAL);
	/* A hemisphere without its coordinate, and the other way round. */
	s = parse_loose("$GPGLL,,N,4916.45,,225444,A");
	ASSERT_EQ(get_r(&s, "latitude"), -ENODATA);
	ASSERT_EQ(get_r(&s, "longitude"), -ENODATA);
	/* 29 February only in leap years. */
	s = parse_loose("$GPRMC,120000,A,,,,,,,290224,,");
	ASSERT_OK(get_r(&s, "date"));
	s = parse_loose("$GPRMC,120000,A,,,,,,,290225,,");
	ASSERT_EQ(get_r(&s, "date"), -EINVAL);
}

static void test_field_names(void) {
	ASSERT_EQ(nmea_field_kind("RMC", "latitude"), NMEA_KIND_LAT);
	ASSERT_EQ(nmea_field_kind("GGA", "longitude"), NMEA_KIND_LON);
	ASSERT_EQ(nmea_field_kind("ZDA", "time"), NMEA_KIND_TIME);
	ASSERT_EQ(nmea_field_kind("RMC", "altitude"), -ENOENT);
	ASSERT_EQ(nmea_field_kind("XYZ", "time"), -ENOENT);
	ASSERT_STR_EQ(nmea_field_name("GGA", 0), "time");
	ASSERT(nmea_field_name("GGA", 100) == NULL);
	ASSERT(nmea_field_name("XDR", 0) == NULL);
	/* Every sentence type the header names has fields. */
	static const char *const types[] = {"RMC", "GGA", "GLL", "VTG", "GSA", "GSV", "ZDA",
	                                    "GNS", "HDT", "MWV", "DBT", "DPT", "MTW"};
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		ASSERT(nmea_field_name(types[i], 0) != NULL);
}

int main(void) {
	RUN_TEST(test_gga_rmc_classic);
	RUN_TEST(test_no_fix);
	RUN_TEST(test_gnss_talkers);
	RUN_TEST(test_gsv_every_constellation);
	RUN_TEST(test_other_sentences);
	RUN_TEST(test_xdr);
	RUN_TEST(test_any_sentence_by_index);
	RUN_TEST(test_checksums);
	RUN_TEST(test_framing_and_bad_input);
	RUN_TEST(test_bad_values);
	RUN_TEST(test_field_names);
	return 0;
}
