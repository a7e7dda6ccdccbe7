/* SPDX-License-Identifier: MIT */
/*
 * The DBC parser (plugins/can/can-dbc.c): every statement it reads, the
 * ones it skips, CRLF, locales, warnings and errors with file:line.
 */
#include "test.h"

#include <errno.h>
#include <locale.h>
#include <unistd.h>

#include "can-dbc.h"
#include "can-signal.h"

/* A file in the shape Vector's tools write, with a bit of everything. */
static const char sample[] =
	"VERSION \"1.0\"\n"                                               /* 1 */
	"\n"
	"NS_ :\n"
	"\tNS_DESC_\n"
	"\tCM_\n"                                                         /* 5 */
	"\tBA_DEF_\n"
	"\tVAL_\n"
	"\n"
	"BS_:\n"
	"\n"                                                              /* 10 */
	"BU_: ECU1 ECU2 Gateway\n"
	"VAL_TABLE_ OnOff 1 \"on\" 0 \"off\" ;\n"
	"\n"
	"BO_ 256 Engine: 8 ECU1\n"
	" SG_ Speed : 0|16@1+ (0.1,0) [0|6553.5] \"km/h\" ECU2,Gateway\n" /* 15 */
	" SG_ Temp : 23|12@0- (0.5,-40) [-1064|983.5] \"degC\" ECU2\n"
	" SG_ Flag : 63|1@1+ (1,0) [0|1] \"\"  Vector__XXX\n"
	"\n"
	"BO_ 2565866496 EEC1: 8 Vector__XXX\n" /* 0x98F00400: bit 31, id 0x18F00400 */
	" SG_ EngineSpeed : 24|16@1+ (0.125,0) [0|8031.875] \"rpm\" Vector__XXX\n" /* 20 */
	"\n"
	"BO_ 1024 Fd: 64 ECU2\n"
	" SG_ Level : 7|32@0+ (1,0) [0|0] \"\" ECU1\n"
	" SG_ Precise : 448|64@1- (1,0) [0|0] \"m\" ECU1\n"
	"\n"                                                              /* 25 */
	"BO_ 512 Muxed: 8 ECU1\n"
	" SG_ Mode M : 0|8@1+ (1,0) [0|255] \"\" ECU2\n"
	" SG_ A m1 : 8|16@1+ (1,0) [0|65535] \"\" ECU2\n"
	" SG_ B m2 : 8|8@1- (1,0) [-128|127] \"\" ECU2\n"
	" SG_ Sub m2M : 16|8@1+ (1,0) [0|255] \"\" ECU2\n"               /* 30 */
	" SG_ Deep m0 : 24|8@1+ (1,0) [0|255] \"\" ECU2\n"
	"\n"
	"EV_ Env1: 0 [0|100] \"\" 0 1 DUMMY_NODE_VECTOR0 Vector__XXX;\n"
	"BO_TX_BU_ 256 : ECU1,Gateway;\n"
	"CM_ \"the network; with a ; inside\";\n"                          /* 35 */
	"CM_ BU_ ECU1 \"engine controller\";\n"
	"CM_ BO_ 256 \"engine data\";\n"
	"CM_ SG_ 256 Speed \"vehicle speed,\n"
	"over two lines with a \\\"quote\\\"\";\n"
	"BA_DEF_ BO_ \"GenMsgCycleTime\" INT 0 65535;\n"                   /* 40 */
	"BA_DEF_ SG_ \"GenSigStartValue\" FLOAT -1e9 1e9;\n"
	"BA_DEF_ BO_ \"VFrameFormat\" ENUM \"StandardCAN\",\"ExtendedCAN\",\"reserved\",\"J1939PG\",\"StandardCAN_FD\";\n"
	"BA_DEF_ \"ProtocolType\" STRING ;\n"
	"BA_DEF_ BU_ \"NodeLayerModules\" STRING ;\n"
	"BA_DEF_DEF_ \"GenMsgCycleTime\" 100;\n"                           /* 45 */
	"BA_DEF_DEF_ \"GenSigStartValue\" 0;\n"
	"BA_DEF_DEF_ \"VFrameFormat\" \"StandardCAN\";\n"
	"BA_DEF_DEF_ \"NodeLayerModules\" \"\";\n"
	"BA_ \"ProtocolType\" \"J1939\";\n"
	"BA_ \"GenMsgCycleTime\" BO_ 256 20;\n"                           /* 50 */
	"BA_ \"GenMsgCycleTime\" BO_ 512 0;\n"
	"BA_ \"VFrameFormat\" BO_ 2565866496 3;\n"
	"BA_ \"VFrameFormat\" BO_ 1024 4;\n"
	"BA_ \"GenSigStartValue\" SG_ 256 Speed 123.5;\n"
	"BA_ \"NodeLayerModules\" BU_ ECU1 \"x.dll\";\n"                   /* 55 */
	"VAL_ 512 Mode 0 \"zero\" 1 \"one\" 2 \"two\" ;\n"
	"VAL_ 256 Flag OnOff ;\n"
	"VAL_ Env1 0 \"a\" ;\n"
	"SIG_VALTYPE_ 1024 Level : 1;\n"
	"SIG_VALTYPE_ 1024 Precise : 2;\n"                                /* 60 */
	"SG_MUL_VAL_ 512 Deep Sub 3-5, 7-7;\n"
	"SIG_GROUP_ 256 G 1 : Speed Temp;\n";

static struct can_dbc *parse_ok(const char *text, size_t len) {
	struct can_dbc *d = NULL;
	char *err = NULL;
	int r = can_dbc_parse(text, len, "t.dbc", &d, &err);

	if (r < 0)
		TEST_FAIL("parse failed: %d %s", r, err ? err : "(no message)");
	ASSERT(err == NULL);
	return d;
}

static const struct can_signal *find_sig(const struct can_dbc *d, uint32_t id, bool ext, const char *name) {
	const struct can_message *m = can_dbc_message(d, id, ext);

	ASSERT(m != NULL);
	ASSERT(can_message_signal(m, name) != NULL);
	return can_message_signal(m, name);
}

static void check_sample(const struct can_dbc *d) {
	const struct can_message *m;
	const struct can_signal *s;

	ASSERT_EQ(d->n_messages, 4);
	ASSERT_EQ(d->n_warnings, 0);

	m = can_dbc_message(d, 256, false);
	ASSERT_STR_EQ(m->name, "Engine");
	ASSERT_EQ(m->line, 14);
	ASSERT_EQ(m->size, 8);
	ASSERT_STR_EQ(m->sender, "ECU1");
	ASSERT_STR_EQ(m->comment, "engine data");
	ASSERT_EQ(m->cycle_time_ms, 20);
	ASSERT(!m->fd && !m->j1939 && !m->extended);
	ASSERT_EQ(m->n_signals, 3);
	s = &m->signals[0];
	ASSERT_STR_EQ(s->name, "Speed");
	ASSERT_EQ(s->line, 15);
	ASSERT(s->start_bit == 0 && s->length == 16 && !s->big_endian && !s->is_signed);
	ASSERT_DOUBLE_EQ(s->factor, 0.1, 0);
	ASSERT_DOUBLE_EQ(s->max, 6553.5, 0);
	ASSERT_STR_EQ(s->unit, "km/h");
	ASSERT_EQ(s->n_receivers, 2);
	ASSERT_STR_EQ(s->receivers[0], "ECU2");
	ASSERT_STR_EQ(s->receivers[1], "Gateway");
	ASSERT_STR_EQ(s->comment, "vehicle speed,\nover two lines with a \"quote\"");
	ASSERT(s->has_start_value);
	ASSERT_DOUBLE_EQ(s->start_value, 123.5, 0);
	s = &m->signals[1];
	ASSERT(s->start_bit == 23 && s->length == 12 && s->big_endian && s->is_signed);
	ASSERT_DOUBLE_EQ(s->offset, -40, 0);
	ASSERT_DOUBLE_EQ(s->min, -1064, 0);
	ASSERT(s->has_start_value); /* the default */
	ASSERT_DOUBLE_EQ(s->start_value, 0, 0);
	s = &m->signals[2];
	ASSERT_STR_EQ(s->unit, "");
	ASSERT_EQ(s->n_receivers, 1);
	ASSERT_STR_EQ(can_signal_value_text(s, 1), "on");
	ASSERT_STR_EQ(can_signal_value_text(s, 0), "off");
	ASSERT(can_signal_value_text(s, 2) == NULL);

	/* Bit 31 marks the 29-bit id; VFrameFormat 3 is "J1939PG", ProtocolType says so too. */
	ASSERT(can_dbc_message(d, 0x18f00400, false) == NULL);
	m = can_dbc_message(d, 0x18f00400, true);
	ASSERT(m != NULL);
	ASSERT_STR_EQ(m->name, "EEC1");
	ASSERT(m->extended && m->j1939 && !m->fd);
	ASSERT_EQ(m->cycle_time_ms, 100);
	ASSERT_EQ(can_j1939_pgn(m->id), 61444);

	/* VFrameFormat 4 is "StandardCAN_FD"; SIG_VALTYPE_ makes a float and a double. */
	m = can_dbc_message(d, 1024, false);
	ASSERT(m->fd && m->size == 64);
	ASSERT(!m->j1939); /* a J1939 network's 11-bit frame is no parameter group */
	s = find_sig(d, 1024, false, "Level");
	ASSERT_EQ(s->type, CAN_VALUE_FLOAT);
	s = find_sig(d, 1024, false, "Precise");
	ASSERT_EQ(s->type, CAN_VALUE_DOUBLE);
	ASSERT(s->start_bit == 448 && s->length == 64);

	m = can_dbc_message(d, 512, false);
	ASSERT_EQ(m->cycle_time_ms, 0); /* BA_ 0 beats the default of 100 */
	ASSERT(m->signals[0].is_multiplexer && !m->signals[0].is_multiplexed);
	ASSERT_STR_EQ(can_signal_value_text(&m->signals[0], 2), "two");
	ASSERT(m->signals[1].is_multiplexed && m->signals[1].mux_parent == 0);
	ASSERT(m->signals[1].n_mux_ranges == 1 && m->signals[1].mux_ranges[0].lo == 1);
	ASSERT(m->signals[3].is_multiplexed && m->signals[3].is_multiplexer && m->signals[3].mux_parent == 0);
	/* SG_MUL_VAL_ puts Deep under Sub, for 3..5 and 7 (its m0 no longer counts). */
	s = &m->signals[4];
	ASSERT_EQ(s->mux_parent, 3);
	ASSERT_EQ(s->n_mux_ranges, 2);
	ASSERT(s->mux_ranges[0].lo == 3 && s->mux_ranges[0].hi == 5 && s->mux_ranges[1].lo == 7);
}

/* Decoding frames through the parsed sample: multiplexing as the DBC says. */
static void check_sample_decode(const struct can_dbc *d) {
	const struct can_message *m = can_dbc_message(d, 512, false);
	uint8_t f[8] = {2, 0xfe, 4, 0x2a, 0, 0, 0, 0};
	double v;

	ASSERT_EQ(can_signal_decode(m, 1, f, 8, &v, NULL), -ENOENT); /* A is m1 */
	ASSERT_OK(can_signal_decode(m, 2, f, 8, &v, NULL));
	ASSERT_DOUBLE_EQ(v, -2, 0); /* B: 0xFE signed */
	ASSERT_OK(can_signal_decode(m, 4, f, 8, &v, NULL));
	ASSERT_DOUBLE_EQ(v, 42, 0); /* Sub = 4 is in 3-5 */
	f[2] = 6;
	ASSERT_EQ(can_signal_decode(m, 4, f, 8, &v, NULL), -ENOENT);
	f[2] = 7;
	ASSERT_OK(can_signal_decode(m, 4, f, 8, &v, NULL));
	f[0] = 1; /* Sub itself is m2: Deep goes with it */
	ASSERT_EQ(can_signal_decode(m, 4, f, 8, &v, NULL), -ENOENT);

	/* Temp: Motorola signed 12 bits from bit 23: byte 2 (0xF9) then byte 3 high nibble (0xC): 0xF9C = -100, *0.5-40 = -90. */
	m = can_dbc_message(d, 256, false);
	uint8_t e[8] = {0x10, 0x27, 0xf9, 0xc0, 0, 0, 0, 0x80};
	ASSERT_OK(can_signal_decode(m, 1, e, 8, &v, NULL));
	ASSERT_DOUBLE_EQ(v, -90, 0);
	ASSERT_OK(can_signal_decode(m, 0, e, 8, &v, NULL));
	ASSERT_DOUBLE_EQ(v, 1000, 1e-9); /* 0x2710 * 0.1 */
	ASSERT_OK(can_signal_decode(m, 2, e, 8, &v, NULL));
	ASSERT_DOUBLE_EQ(v, 1, 0);
}

static void test_sample(void) {
	struct can_dbc *d = parse_ok(sample, sizeof(sample) - 1);

	check_sample(d);
	check_sample_decode(d);
	can_dbc_free(d);
}

/* The same file with CRLF line ends parses to the same thing, lines and all. */
static void test_crlf(void) {
	char *crlf = malloc(2 * sizeof(sample));
	size_t n = 0;
	struct can_dbc *d;

	ASSERT(crlf);
	for (const char *p = sample; *p; p++) {
		if (*p == '\n')
			crlf[n++] = '\r';
		crlf[n++] = *p;
	}
	d = parse_ok(crlf, n);
	check_sample(d);
	can_dbc_free(d);
	free(crlf);
}

/*
 * Under a locale whose decimal separator is a comma, "0.1" is still a
 * tenth. The locale is built from Debian's sources (package locales) into
 * a directory of the test's own, so that no system setting matters.
 */
static void test_locale(void) {
	char dir[] = "/tmp/can-dbc-locale-XXXXXX", cmd[256];
	struct can_dbc *d;

	ASSERT(mkdtemp(dir) != NULL);
	snprintf(cmd, sizeof(cmd), "localedef -i de_DE -f UTF-8 %s/de_DE.UTF-8 2>/dev/null", dir);
	if (system(cmd) != 0)
		TEST_FAIL("localedef could not build de_DE.UTF-8 (install the package locales)");
	setenv("LOCPATH", dir, 1);
	ASSERT(setlocale(LC_ALL, "de_DE.UTF-8") != NULL);
	ASSERT_DOUBLE_EQ(strtod("0,5", NULL), 0.5, 0); /* the locale is really in force */
	d = parse_ok(sample, sizeof(sample) - 1);
	check_sample(d);
	can_dbc_free(d);
	setlocale(LC_ALL, "C");
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ASSERT_OK(system(cmd));
}

static void check_error(const char *text, const char *expect) {
	struct can_dbc *d = NULL;
	char *err = NULL;

	ASSERT_EQ(can_dbc_parse(text, strlen(text), "bad.dbc", &d, &err), -EINVAL);
	ASSERT(d == NULL);
	ASSERT_STR_CONTAINS(err, expect);
	free(err);
}

static void test_errors(void) {
	check_error("BO_ 1 M: 8 E\n SG_ S : 0|8@2+ (1,0) [0|1] \"\" E\n",
	            "bad.dbc:2: expected the byte order, @0 (Motorola) or @1 (Intel), found '2+");
	check_error("\n\nBO_ 1 M: 65 E\n", "bad.dbc:3: expected a payload size of 0 to 64 bytes");
	check_error("BO_ 1 M: 8 E\n SG_ S : 0|65@1+ (1,0) [0|1] \"\" E\n", "bad.dbc:2: expected a length of 1 to 64 bits");
	check_error("BO_ 1 M: 8 E\n SG_ S : 0|0@1+ (1,0) [0|1] \"\" E\n", "bad.dbc:2: signal \"S\": expected a length of 1 to 64 bits, found 0");
	check_error("BO_ 1 M: 8 E\n SG_ S : 500|16@1+ (1,0) [0|1] \"\" E\n", "expected a signal within 64 bytes");
	check_error("BO_ 1 M: 8 E\n SG_ S : 0|8@1+ (1;0) [0|1] \"\" E\n", "bad.dbc:2: expected ',' after the factor, found ';0)");
	check_error("BO_ 1 M: 8 E\n SG_ S : 0|8@1+ (1,0) [0|1] \"unit E\n", "expected the '\"' that ends the string");
	check_error("BO_ 1 M: 8 E\n SG_ S : 0|8@1+ (x,0) [0|1] \"\" E\n", "bad.dbc:2: expected a factor, found 'x,0)");
	check_error("BO_ 1 M: 8 E\n SG_ S X : 0|8@1+ (1,0) [0|1] \"\" E\n", "expected ':' or a multiplexer indicator");
	check_error("BO_ 1 M: 8 E\n SG_ S m1X : 0|8@1+ (1,0) [0|1] \"\" E\n", "expected M, mN or mNM");
	check_error("BO_ 99999999999 M: 8 E\n", "bad.dbc:1: expected a message id");
	check_error("BO_ 1 M 8 E\n", "expected ':' after the message name");
	check_error("VERSION \"\"\n\n$$$\n", "bad.dbc:3: expected a keyword such as BO_ or SG_, found '$$$'");
	check_error("BA_DEF_ BO_ \"GenMsgCycleTime\" INT 0 100\n", "expected ';', found the end of the file");
	check_error("CM_ BO_ 1 \"x\"\n", "expected ';' after the comment");
	check_error("BO_ 1 M: 8 E\n SG_ S m1 : 0|8@1+ (1,0) [0|1] \"\" E\n SG_ T m1 : 8|8@1+ (1,0) [0|1] \"\" E\n"
	            "SG_MUL_VAL_ 1 S T 1-1;\nSG_MUL_VAL_ 1 T S 1-1;\n",
	            "bad.dbc:2: signal \"S\": its multiplexers form a cycle");
	check_error("BO_ 1 M: 8 E\n SG_ S m1 : 0|8@1+ (1,0) [0|1] \"\" E\nSG_MUL_VAL_ 1 S Nope 1-1;\n",
	            "bad.dbc:3: signal \"S\": expected a multiplexer of message \"M\", found \"Nope\"");
	check_error("BO_ 1 M: 8 E\n SG_ S m1 : 0|8@1+ (1,0) [0|1] \"\" E\n SG_ T M : 8|8@1+ (1,0) [0|1] \"\" E\n"
	            "SG_MUL_VAL_ 1 S T 5-2;\n", "bad.dbc:4: expected a range with lo <= hi, found 5-2");
}

/* A NUL byte is no text: its line is named. */
static void test_nul(void) {
	const char text[] = "BO_ 1 M: 8 E\n\nBO_ 2 N: 8 E\0garbage";
	struct can_dbc *d = NULL;
	char *err = NULL;

	ASSERT_EQ(can_dbc_parse(text, sizeof(text) - 1, "n.dbc", &d, &err), -EINVAL);
	ASSERT_STR_CONTAINS(err, "n.dbc:3: expected text, found a NUL byte");
	free(err);
}

static void check_warning(const struct can_dbc *d, const char *expect) {
	for (size_t i = 0; i < d->n_warnings; i++)
		if (strstr(d->warnings[i], expect))
			return;
	TEST_FAIL("no warning \"%s\" among %zu", expect, d->n_warnings);
}

static void test_warnings(void) {
	static const char text[] =
		"BO_ 1 M: 2 E\n"
		" SG_ A : 0|8@1+ (1,0) [0|1] \"\" E\n"
		" SG_ A : 8|8@1+ (1,0) [0|1] \"\" E\n"       /* 3: the second A */
		" SG_ B : 4|8@1+ (1,0) [0|1] \"\" E\n"       /* 4: overlaps A */
		" SG_ C : 16|8@1+ (0,0) [0|1] \"\" E\n"      /* 5: beyond 2 bytes, factor 0 */
		" SG_ X m1 : 0|8@1+ (1,0) [0|1] \"\" E\n"    /* 6: no multiplexer */
		"BO_ 1 Again: 8 E\n"                        /* 7: the id of M */
		"BO_ 2 Mux: 8 E\n"
		" SG_ K M : 0|8@1+ (1,0) [0|1] \"\" E\n"
		" SG_ P m1 : 8|8@1+ (1,0) [0|1] \"\" E\n"   /* 10 */
		" SG_ Q m2 : 8|8@1+ (1,0) [0|1] \"\" E\n"   /* shares P's bits, never its frame */
		" SG_ R m1 : 12|8@1+ (1,0) [0|1] \"\" E\n"  /* 12: in P's frame and bits */
		"BO_ 3221225472 VECTOR__INDEPENDENT_SIG_MSG: 0 Vector__XXX\n"
		" SG_ Lost : 0|8@1+ (1,0) [0|1] \"\" E\n"
		"BO_ 3000 Std: 8 E\n"                       /* 15: 11 bits cannot hold 3000 */
		"BA_ \"GenMsgCycleTime\" BO_ 77 10;\n"       /* 16: no such message */
		"SIG_VALTYPE_ 1 A : 1;\n"                   /* 17: 8 bits are no float */
		"VAL_ 1 Nope 1 \"x\" ;\n"                    /* 18 */
		"VAL_ 1 A NoTable ;\n";                     /* 19 */
	struct can_dbc *d = parse_ok(text, sizeof(text) - 1);
	const struct can_message *m = can_dbc_message(d, 1, false);

	ASSERT_STR_EQ(m->name, "M");
	ASSERT_EQ(m->n_signals, 4);
	ASSERT_EQ(m->signals[0].start_bit, 0); /* the first A */
	check_warning(d, "t.dbc:3: signal \"A\" is defined twice in message \"M\"; the first is used");
	check_warning(d, "t.dbc:4: signal \"B\" overlaps \"A\" in message \"M\"");
	check_warning(d, "t.dbc:5: signal \"C\" needs 3 bytes, message \"M\" has 2");
	check_warning(d, "t.dbc:5: signal \"C\": factor 0");
	check_warning(d, "t.dbc:6: signal \"X\" is multiplexed but message \"M\" has no multiplexer");
	check_warning(d, "t.dbc:7: message \"Again\" has the id of \"M\" (line 1), which is used");
	check_warning(d, "t.dbc:12: signal \"R\" overlaps \"P\" in message \"Mux\"");
	check_warning(d, "t.dbc:15: message \"Std\": id 3000 is above 0x7ff without bit 31");
	check_warning(d, "t.dbc:16: no message with id 77");
	check_warning(d, "t.dbc:17: signal \"A\": a float needs 32 bits");
	check_warning(d, "t.dbc:18: no signal \"Nope\" in message \"M\"");
	check_warning(d, "t.dbc:19: no value table \"NoTable\"");
	check_warning(d, "t.dbc:6: signal \"X\" overlaps \"A\" in message \"M\"");
	check_warning(d, "t.dbc:6: signal \"X\" overlaps \"B\" in message \"M\"");
	/* Nothing else: Q and P share bits but never a frame, R and Q neither. */
	ASSERT_EQ(d->n_warnings, 14);
	ASSERT_EQ(m->signals[0].type, CAN_VALUE_INTEGER);
	ASSERT(can_dbc_message(d, 3000, true) != NULL);
	ASSERT_EQ(d->n_messages, 4); /* the pseudo message is not one */
	can_dbc_free(d);
}

/* Many warnings are kept up to the bound and counted beyond it. */
static void test_warning_bound(void) {
	size_t cap = 200 * 64 + 64, n = 0;
	char *text = malloc(cap);
	struct can_dbc *d;

	ASSERT(text);
	n += (size_t)snprintf(text + n, cap - n, "BO_ 1 M: 8 E\n");
	for (int i = 0; i < 100; i++)
		n += (size_t)snprintf(text + n, cap - n, " SG_ S : 0|8@1+ (1,0) [0|1] \"\" E\n");
	d = parse_ok(text, n);
	ASSERT_EQ(d->n_warnings, CAN_DBC_MAX_WARNINGS);
	ASSERT_EQ(d->n_warnings_dropped, 99 - CAN_DBC_MAX_WARNINGS);
	can_dbc_free(d);
	free(text);
}

/* Lenient forms real files have: no sender, no receivers, a BOM, // comments, an empty file. */
static void test_lenient(void) {
	static const char text[] =
		"\xef\xbb\xbf// written by hand\n"
		"BO_ 5 M: 8\n"
		" SG_ S : 0|8@1+ (1,0) [0|1] \"\"\n"
		" SG_ T : 8|8@1+ (+1.5e1,-.5) [-1E2|1e+2] \"x\" A B,C\n";
	struct can_dbc *d = parse_ok(text, sizeof(text) - 1);
	const struct can_message *m = can_dbc_message(d, 5, false);

	ASSERT_STR_EQ(m->sender, "Vector__XXX");
	ASSERT_EQ(m->n_signals, 2);
	ASSERT_EQ(m->signals[0].n_receivers, 0);
	ASSERT_DOUBLE_EQ(m->signals[1].factor, 15, 0);
	ASSERT_DOUBLE_EQ(m->signals[1].offset, -0.5, 0);
	ASSERT_DOUBLE_EQ(m->signals[1].min, -100, 0);
	ASSERT_EQ(m->signals[1].n_receivers, 3);
	ASSERT_EQ(m->signals[0].has_start_value, 0);
	can_dbc_free(d);
	d = parse_ok("", 0);
	ASSERT_EQ(d->n_messages, 0);
	ASSERT(can_dbc_message(d, 1, false) == NULL);
	can_dbc_free(d);
}

int main(void) {
	RUN_TEST(test_sample);
	RUN_TEST(test_crlf);
	RUN_TEST(test_errors);
	RUN_TEST(test_nul);
	RUN_TEST(test_warnings);
	RUN_TEST(test_warning_bound);
	RUN_TEST(test_lenient);
	RUN_TEST(test_locale);
	return 0;
}
