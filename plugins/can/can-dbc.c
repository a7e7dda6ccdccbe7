/* SPDX-License-Identifier: MIT */
/*
 * can-dbc.c - the DBC parser. See can-dbc.h.
 *
 * A cursor over the text with one function per statement; newlines are
 * ordinary white space except where DBC makes them matter (the receivers
 * that end an SG_ line, the keyword list of NS_, and skipped statements,
 * which end at a ';' or at the end of their line). Everything that refers
 * to something else (BA_ to a message, SG_MUL_VAL_ to a multiplexer) is
 * resolved as it is read, since DBC writes definitions first; what needs
 * the whole file (multiplexer chains, overlaps, attribute defaults) is
 * done once at the end, in finish().
 *
 * Memory: every object comes from text of at least a few bytes, so the
 * result is a bounded multiple of the input, which is itself capped.
 */
#include "can-dbc.h"

#include <errno.h>
#include <inttypes.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "can-signal.h"

/* The longest name (message, signal, node, attribute) accepted. */
#define NAME_MAX_LEN 1024
/* Signals in one message: far more than 64 bytes can hold without multiplexing. */
#define MAX_SIGNALS 4096
/* The id of Vector's pseudo message that holds signals of no message. */
#define PSEUDO_MESSAGE_ID UINT32_C(0xc0000000)

enum attr {
	ATTR_FRAME_FORMAT, /* VFrameFormat, BO_ */
	ATTR_PROTOCOL,     /* ProtocolType, network or BO_ */
	ATTR_CYCLE_TIME,   /* GenMsgCycleTime, BO_ */
	ATTR_START_VALUE,  /* GenSigStartValue, SG_ */
	ATTR_COUNT
};

static const char *const attr_names[ATTR_COUNT] = {
    [ATTR_FRAME_FORMAT] = "VFrameFormat",
    [ATTR_PROTOCOL] = "ProtocolType",
    [ATTR_CYCLE_TIME] = "GenMsgCycleTime",
    [ATTR_START_VALUE] = "GenSigStartValue",
};

/* An attribute value as written: a number (an ENUM's index, too) or a string. */
struct attr_value {
	bool set;
	bool is_string;
	double number;
	char *string;
};

struct attr_def {
	char **enums; /* ENUM "a","b",...: BA_ may give the index */
	size_t n_enums;
	struct attr_value def; /* BA_DEF_DEF_ */
};

struct value_table {
	char *name;
	struct can_value_desc *values;
	size_t n_values;
};

/* What BA_ set explicitly on a message, so that defaults fill only the rest. */
enum {
	SET_FRAME_FORMAT = 1,
	SET_PROTOCOL = 2,
	SET_CYCLE_TIME = 4,
};

struct parser {
	const char *p, *end;
	const char *name;
	unsigned line;
	locale_t c_locale;
	struct can_dbc *dbc;
	char *error;
	struct can_message *msg; /* the BO_ whose SG_ lines follow, or NULL */
	size_t sorted;           /* messages covered by dbc->by_id */
	unsigned char *msg_set;  /* SET_* per message, parallel to dbc->messages */
	struct attr_def defs[ATTR_COUNT];
	struct attr_value network_protocol;
	struct value_table *tables;
	size_t n_tables;
};

/* --- memory --- */

/* Makes room for element N of *ARR (which holds N), doubling from 4. */
static int grow(void *arr, size_t n, size_t size) {
	void **a = arr, *q;
	size_t cap;

	if (n >= 4 ? (n & (n - 1)) != 0 : n != 0)
		return 0;
	cap = n ? 2 * n : 4;
	if (cap > SIZE_MAX / size)
		return -ENOMEM;
	q = realloc(*a, cap * size);
	if (!q)
		return -ENOMEM;
	*a = q;
	return 0;
}

static void free_values(struct can_value_desc *v, size_t n) {
	for (size_t i = 0; i < n; i++)
		free(v[i].text);
	free(v);
}

static void free_signal(struct can_signal *s) {
	free(s->name);
	free(s->unit);
	for (size_t i = 0; i < s->n_receivers; i++)
		free(s->receivers[i]);
	free(s->receivers);
	free(s->mux_ranges);
	free_values(s->values, s->n_values);
	free(s->comment);
}

static void free_message(struct can_message *m) {
	free(m->name);
	free(m->sender);
	free(m->comment);
	for (size_t i = 0; i < m->n_signals; i++)
		free_signal(&m->signals[i]);
	free(m->signals);
}

void can_dbc_free(struct can_dbc *dbc) {
	if (!dbc)
		return;
	for (size_t i = 0; i < dbc->n_messages; i++)
		free_message(&dbc->messages[i]);
	free(dbc->messages);
	for (size_t i = 0; i < dbc->n_warnings; i++)
		free(dbc->warnings[i]);
	free(dbc->warnings);
	free(dbc->by_id);
	free(dbc);
}

/* --- messages to the caller --- */

/* The text at the cursor, for "found ...". */
static void describe_here(const struct parser *ps, char *buf, size_t n) {
	size_t i = 0;

	if (ps->p >= ps->end) {
		snprintf(buf, n, "the end of the file");
		return;
	}
	if (*ps->p == '\n' || *ps->p == '\r') {
		snprintf(buf, n, "the end of the line");
		return;
	}
	buf[i++] = '\'';
	for (const char *q = ps->p; q < ps->end && i + 5 < n && i < 21; q++) {
		if (*q == '\n' || *q == '\r')
			break;
		buf[i++] = (*q >= 0x20 && *q < 0x7f) ? *q : '?';
	}
	buf[i++] = '\'';
	buf[i] = '\0';
}

/* Records the first error, "NAME:LINE: expected WHAT, found ...", and yields -EINVAL. */
static int expected(struct parser *ps, const char *what) {
	char here[32];

	if (!ps->error) {
		describe_here(ps, here, sizeof(here));
		if (asprintf(&ps->error, "%s:%u: expected %s, found %s", ps->name, ps->line, what,
		             here) < 0)
			ps->error = NULL;
	}
	return -EINVAL;
}

/* Records the first error with a text of its own. */
__attribute__((format(printf, 3, 4))) static int fail_at(struct parser *ps, unsigned line,
                                                         const char *fmt, ...) {
	char *msg = NULL;
	va_list ap;

	if (ps->error)
		return -EINVAL;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (msg && asprintf(&ps->error, "%s:%u: %s", ps->name, line, msg) < 0)
		ps->error = NULL;
	free(msg);
	return -EINVAL;
}

__attribute__((format(printf, 3, 4))) static int warn_at(struct parser *ps, unsigned line,
                                                         const char *fmt, ...) {
	struct can_dbc *d = ps->dbc;
	char *msg = NULL, *w = NULL;
	va_list ap;

	if (d->n_warnings >= CAN_DBC_MAX_WARNINGS) {
		d->n_warnings_dropped++;
		return 0;
	}
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (!msg || asprintf(&w, "%s:%u: %s", ps->name, line, msg) < 0 ||
	    grow(&d->warnings, d->n_warnings, sizeof(*d->warnings)) < 0) {
		free(msg);
		free(w);
		return -ENOMEM;
	}
	free(msg);
	d->warnings[d->n_warnings++] = w;
	return 0;
}

/* --- the cursor --- */

static bool is_name_char(char c) {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_';
}

static bool is_digit(char c) {
	return c >= '0' && c <= '9';
}

/* Spaces, tabs and carriage returns: CRLF files read like LF files. */
static void skip_inline(struct parser *ps) {
	while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\r'))
		ps->p++;
}

static void skip_line(struct parser *ps) {
	while (ps->p < ps->end && *ps->p != '\n')
		ps->p++;
}

/* White space including newlines, and // comments, which some tools write. */
static void skip_space(struct parser *ps) {
	for (;;) {
		skip_inline(ps);
		if (ps->p >= ps->end)
			return;
		if (*ps->p == '\n') {
			ps->p++;
			ps->line++;
		} else if (*ps->p == '/' && ps->p + 1 < ps->end && ps->p[1] == '/') {
			skip_line(ps);
		} else {
			return;
		}
	}
}

static bool at_eol(const struct parser *ps) {
	return ps->p >= ps->end || *ps->p == '\n';
}

/* True (and past it) when the next character is C. */
static bool accept(struct parser *ps, char c) {
	skip_space(ps);
	if (ps->p < ps->end && *ps->p == c) {
		ps->p++;
		return true;
	}
	return false;
}

static int expect(struct parser *ps, char c, const char *what) {
	return accept(ps, c) ? 0 : expected(ps, what);
}

/* The length of the name at the cursor (0 when there is none). */
static size_t name_len(const struct parser *ps) {
	size_t n = 0;

	while (ps->p + n < ps->end && is_name_char(ps->p[n]))
		n++;
	return n;
}

/* True (and past it) when the next word is exactly WORD. */
static bool accept_word(struct parser *ps, const char *word) {
	size_t n;

	skip_space(ps);
	n = name_len(ps);
	if (n == strlen(word) && memcmp(ps->p, word, n) == 0) {
		ps->p += n;
		return true;
	}
	return false;
}

static int read_name(struct parser *ps, const char *what, char **ret) {
	size_t n;

	skip_space(ps);
	n = name_len(ps);
	if (n == 0 || n > NAME_MAX_LEN)
		return expected(ps, what);
	*ret = strndup(ps->p, n);
	if (!*ret)
		return -ENOMEM;
	ps->p += n;
	return 0;
}

/* A "..." string; \" and \\ are escapes. It may span lines. */
static int read_string(struct parser *ps, const char *what, char **ret) {
	const char *q;
	char *s, *o;

	if (!accept(ps, '"'))
		return expected(ps, what);
	for (q = ps->p; q < ps->end && *q != '"'; q++)
		if (*q == '\\' && q + 1 < ps->end)
			q++;
	if (q >= ps->end)
		return expected(ps, "the '\"' that ends the string");
	s = o = malloc((size_t)(q - ps->p) + 1);
	if (!s)
		return -ENOMEM;
	for (; ps->p < q; ps->p++) {
		if (*ps->p == '\\' && ps->p + 1 < q && (ps->p[1] == '"' || ps->p[1] == '\\'))
			ps->p++;
		if (*ps->p == '\n')
			ps->line++;
		/* A line break in a string reads the same from a CRLF file. */
		if (*ps->p == '\r' && ps->p + 1 < q && ps->p[1] == '\n')
			continue;
		*o++ = *ps->p;
	}
	*o = '\0';
	ps->p++;
	*ret = s;
	return 0;
}

/*
 * A decimal number: [+-]digits[.digits][(e|E)[+-]digits]. Only that syntax
 * reaches strtod_l, under the "C" locale whatever the process's is, so
 * "1.5" is one and a half in a German locale too (and hex or "inf" never
 * pass).
 */
static int read_number(struct parser *ps, const char *what, double *ret) {
	const char *q, *s;
	char buf[80];
	size_t digits = 0;

	skip_space(ps);
	q = s = ps->p;
	if (q < ps->end && (*q == '+' || *q == '-'))
		q++;
	for (; q < ps->end && is_digit(*q); q++)
		digits++;
	if (q < ps->end && *q == '.')
		for (q++; q < ps->end && is_digit(*q); q++)
			digits++;
	if (digits == 0)
		return expected(ps, what);
	if (q < ps->end && (*q == 'e' || *q == 'E')) {
		const char *e = q + 1;

		if (e < ps->end && (*e == '+' || *e == '-'))
			e++;
		if (e < ps->end && is_digit(*e)) {
			while (e < ps->end && is_digit(*e))
				e++;
			q = e;
		}
	}
	if ((size_t)(q - s) >= sizeof(buf))
		return expected(ps, what);
	memcpy(buf, s, (size_t)(q - s));
	buf[q - s] = '\0';
	*ret = strtod_l(buf, NULL, ps->c_locale);
	ps->p = q;
	return 0;
}

static int read_uint(struct parser *ps, const char *what, uint64_t max, uint64_t *ret) {
	uint64_t v = 0;

	skip_space(ps);
	if (ps->p >= ps->end || !is_digit(*ps->p))
		return expected(ps, what);
	for (; ps->p < ps->end && is_digit(*ps->p); ps->p++) {
		unsigned d = (unsigned)(*ps->p - '0');

		if (v > (max - d) / 10)
			return expected(ps, what);
		v = v * 10 + d;
	}
	*ret = v;
	return 0;
}

/*
 * Skips to the end of a statement: past its ';', or to the end of its line
 * for the statements that have none (BU_, VERSION, BS_). Quoted text may
 * hold either and span lines.
 */
static void skip_statement(struct parser *ps) {
	while (ps->p < ps->end && *ps->p != '\n') {
		char c = *ps->p++;

		if (c == ';')
			return;
		if (c == '"') {
			for (; ps->p < ps->end && *ps->p != '"'; ps->p++) {
				if (*ps->p == '\\' && ps->p + 1 < ps->end && ps->p[1] != '\n')
					ps->p++;
				else if (*ps->p == '\n')
					ps->line++;
			}
			if (ps->p < ps->end)
				ps->p++;
		}
	}
}

/* Skips to past the ';' of a statement that has one, over quoted text. */
static int skip_to_semicolon(struct parser *ps) {
	for (;;) {
		skip_space(ps);
		if (ps->p >= ps->end)
			return expected(ps, "';'");
		if (*ps->p == ';') {
			ps->p++;
			return 0;
		}
		if (*ps->p == '"') {
			char *s;
			int r = read_string(ps, "a string", &s);

			if (r < 0)
				return r;
			free(s);
		} else {
			ps->p++;
		}
	}
}

/* --- lookups --- */

static int cmp_index(const void *a, const void *b, void *arg) {
	const struct can_message *m = arg;
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	uint64_t ki = (uint64_t)m[i].extended << 32 | m[i].id,
	         kj = (uint64_t)m[j].extended << 32 | m[j].id;

	if (ki != kj)
		return ki < kj ? -1 : 1;
	return i < j ? -1 : i > j; /* the first in the file wins */
}

static int sort_messages(struct parser *ps) {
	struct can_dbc *d = ps->dbc;
	size_t *idx;

	if (ps->sorted == d->n_messages && d->by_id)
		return 0;
	idx = realloc(d->by_id, (d->n_messages ? d->n_messages : 1) * sizeof(*idx));
	if (!idx)
		return -ENOMEM;
	for (size_t i = 0; i < d->n_messages; i++)
		idx[i] = i;
	qsort_r(idx, d->n_messages, sizeof(*idx), cmp_index, d->messages);
	d->by_id = idx;
	ps->sorted = d->n_messages;
	return 0;
}

static struct can_message *find_message(const struct can_dbc *d, uint32_t id, bool extended) {
	size_t lo = 0, hi = d->n_messages;
	uint64_t key = (uint64_t)extended << 32 | id;

	if (!d->by_id)
		return NULL;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct can_message *m = &d->messages[d->by_id[mid]];
		uint64_t k = (uint64_t)m->extended << 32 | m->id;

		if (k < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < d->n_messages) {
		struct can_message *m = &d->messages[d->by_id[lo]];

		if (m->id == id && m->extended == extended)
			return m;
	}
	return NULL;
}

const struct can_message *can_dbc_message(const struct can_dbc *dbc, uint32_t id, bool extended) {
	return find_message(dbc, id, extended);
}

const struct can_signal *can_message_signal(const struct can_message *m, const char *name) {
	for (size_t i = 0; i < m->n_signals; i++)
		if (strcmp(m->signals[i].name, name) == 0)
			return &m->signals[i];
	return NULL;
}

const char *can_signal_value_text(const struct can_signal *s, double raw) {
	size_t lo = 0, hi = s->n_values;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->values[mid].value < raw)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < s->n_values && s->values[lo].value == raw ? s->values[lo].text : NULL;
}

/* The DBC's 32-bit id as an id and a frame format. */
static void split_id(uint64_t raw, uint32_t *ret_id, bool *ret_extended) {
	*ret_extended = (raw & UINT32_C(0x80000000)) != 0;
	*ret_id = (uint32_t)raw & UINT32_C(0x7fffffff);
}

/*
 * The message a statement names by its DBC id, or NULL (with a warning:
 * real files keep statements about messages that were deleted).
 */
static int lookup_message(struct parser *ps, uint64_t raw, unsigned line,
                          struct can_message **ret) {
	uint32_t id;
	bool ext;
	int r = sort_messages(ps);

	if (r < 0)
		return r;
	split_id(raw, &id, &ext);
	*ret = find_message(ps->dbc, id, ext);
	if (!*ret && raw != PSEUDO_MESSAGE_ID)
		return warn_at(ps, line, "no message with id %" PRIu64 " (skipped)", raw);
	return 0;
}

static int lookup_signal(struct parser *ps, struct can_message *m, const char *name, unsigned line,
                         struct can_signal **ret) {
	*ret = m ? (struct can_signal *)can_message_signal(m, name) : NULL;
	if (m && !*ret)
		return warn_at(ps, line, "no signal \"%s\" in message \"%s\" (skipped)", name,
		               m->name);
	return 0;
}

/* Reads "ID SIGNAL" and finds them; *RET is NULL when they do not exist. */
static int read_signal_ref(struct parser *ps, struct can_signal **ret,
                           struct can_message **ret_msg) {
	unsigned line = ps->line;
	struct can_message *m;
	uint64_t raw;
	char *name;
	int r = read_uint(ps, "a message id", UINT32_MAX, &raw);

	if (r < 0 || (r = read_name(ps, "a signal name", &name)) < 0)
		return r;
	r = lookup_message(ps, raw, line, &m);
	if (r >= 0)
		r = lookup_signal(ps, m, name, line, ret);
	free(name);
	if (ret_msg)
		*ret_msg = m;
	return r;
}

/* --- BO_ and SG_ --- */

static int parse_message(struct parser *ps) {
	struct can_dbc *d = ps->dbc;
	struct can_message m = {.line = ps->line};
	uint64_t raw, size;
	int r;

	ps->msg = NULL;
	if ((r = read_uint(ps, "a message id", UINT32_MAX, &raw)) < 0 ||
	    (r = read_name(ps, "a message name", &m.name)) < 0 ||
	    (r = expect(ps, ':', "':' after the message name")) < 0 ||
	    (r = read_uint(ps, "a payload size of 0 to 64 bytes", CAN_MAX_PAYLOAD, &size)) < 0)
		goto fail;
	m.size = (uint8_t)size;
	skip_inline(ps);
	if (at_eol(ps))
		m.sender = strdup("Vector__XXX");
	else
		r = read_name(ps, "the sending node", &m.sender);
	if (r < 0 || !m.sender) {
		r = r < 0 ? r : -ENOMEM;
		goto fail;
	}
	split_id(raw, &m.id, &m.extended);
	if (!m.extended && m.id > 0x7ff && m.id <= 0x1fffffff) {
		r = warn_at(ps, m.line,
		            "message \"%s\": id %" PRIu32
		            " is above 0x7ff without bit 31; taken as a 29-bit id",
		            m.name, m.id);
		m.extended = true;
	}
	if (m.id > 0x1fffffff) {
		/* Vector's VECTOR__INDEPENDENT_SIG_MSG: signals that belong to no frame. */
		if (raw != PSEUDO_MESSAGE_ID)
			r = warn_at(ps, m.line,
			            "message \"%s\": id %" PRIu64 " is beyond 29 bits (skipped)",
			            m.name, raw);
		free_message(&m);
		return r;
	}
	if (r < 0 || (r = grow(&d->messages, d->n_messages, sizeof(*d->messages))) < 0 ||
	    (r = grow(&ps->msg_set, d->n_messages, 1)) < 0)
		goto fail;
	ps->msg_set[d->n_messages] = 0;
	d->messages[d->n_messages] = m;
	ps->msg = &d->messages[d->n_messages++];
	return 0;
fail:
	free_message(&m);
	return r;
}

/* The multiplexer indicator between a signal's name and its ':'. */
static int parse_mux_indicator(struct parser *ps, struct can_signal *s) {
	size_t n;
	const char *q;
	uint64_t v = 0;

	skip_space(ps);
	n = name_len(ps);
	q = ps->p;
	if (n == 1 && *q == 'M') {
		s->is_multiplexer = true;
	} else if (n >= 2 && *q == 'm' && is_digit(q[1])) {
		size_t i = 1;

		for (; i < n && is_digit(q[i]); i++) {
			if (v > (UINT64_MAX - 9) / 10)
				return expected(ps, "a multiplexer value that fits in 64 bits");
			v = v * 10 + (uint64_t)(q[i] - '0');
		}
		if (i < n && !(i + 1 == n && q[i] == 'M'))
			return expected(ps, "M, mN or mNM");
		s->is_multiplexed = true;
		s->is_multiplexer = i < n;
		s->mux_ranges = malloc(sizeof(*s->mux_ranges));
		if (!s->mux_ranges)
			return -ENOMEM;
		s->mux_ranges[0] = (struct can_mux_range){v, v};
		s->n_mux_ranges = 1;
	} else {
		return expected(ps, "':' or a multiplexer indicator (M, mN or mNM)");
	}
	ps->p += n;
	return 0;
}

static int parse_receivers(struct parser *ps, struct can_signal *s) {
	for (;;) {
		int r;

		skip_inline(ps);
		if (at_eol(ps) || *ps->p == ';')
			return 0;
		if (*ps->p == ',') {
			ps->p++;
			continue;
		}
		if ((r = grow(&s->receivers, s->n_receivers, sizeof(*s->receivers))) < 0 ||
		    (r = read_name(ps, "a receiving node or the end of the line",
		                   &s->receivers[s->n_receivers])) < 0)
			return r;
		s->n_receivers++;
	}
}

static int parse_signal_body(struct parser *ps, struct can_signal *s) {
	uint64_t start, length;
	int r;

	if ((r = read_name(ps, "a signal name", &s->name)) < 0)
		return r;
	skip_space(ps);
	if (ps->p < ps->end && *ps->p != ':' && (r = parse_mux_indicator(ps, s)) < 0)
		return r;
	if ((r = expect(ps, ':', "':' after the signal name")) < 0 ||
	    (r = read_uint(ps, "a start bit", 8 * CAN_MAX_PAYLOAD - 1, &start)) < 0 ||
	    (r = expect(ps, '|', "'|' after the start bit")) < 0 ||
	    (r = read_uint(ps, "a length of 1 to 64 bits", 64, &length)) < 0)
		return r;
	if (length == 0)
		return fail_at(ps, ps->line,
		               "signal \"%s\": expected a length of 1 to 64 bits, found 0",
		               s->name);
	if ((r = expect(ps, '@', "'@' after the length")) < 0)
		return r;
	if (ps->p >= ps->end || (*ps->p != '0' && *ps->p != '1'))
		return expected(ps, "the byte order, @0 (Motorola) or @1 (Intel)");
	s->big_endian = *ps->p++ == '0';
	if (ps->p >= ps->end || (*ps->p != '+' && *ps->p != '-'))
		return expected(ps, "'+' (unsigned) or '-' (signed) after the byte order");
	s->is_signed = *ps->p++ == '-';
	s->start_bit = (uint16_t)start;
	s->length = (uint8_t)length;
	if (!can_signal_layout(s->start_bit, s->length, s->big_endian, NULL))
		return fail_at(ps, ps->line,
		               "signal \"%s\": expected a signal within 64 bytes, found start bit "
		               "%u and length %u",
		               s->name, s->start_bit, s->length);
	if ((r = expect(ps, '(', "'(' before the factor")) < 0 ||
	    (r = read_number(ps, "a factor", &s->factor)) < 0 ||
	    (r = expect(ps, ',', "',' after the factor")) < 0 ||
	    (r = read_number(ps, "an offset", &s->offset)) < 0 ||
	    (r = expect(ps, ')', "')' after the offset")) < 0 ||
	    (r = expect(ps, '[', "'[' before the minimum")) < 0 ||
	    (r = read_number(ps, "a minimum", &s->min)) < 0 ||
	    (r = expect(ps, '|', "'|' after the minimum")) < 0 ||
	    (r = read_number(ps, "a maximum", &s->max)) < 0 ||
	    (r = expect(ps, ']', "']' after the maximum")) < 0 ||
	    (r = read_string(ps, "the unit in quotes", &s->unit)) < 0)
		return r;
	return parse_receivers(ps, s);
}

static int parse_signal(struct parser *ps) {
	struct can_signal s = {.line = ps->line, .mux_parent = -1, .type = CAN_VALUE_INTEGER};
	struct can_message *m = ps->msg;
	int r = parse_signal_body(ps, &s);

	if (r < 0)
		goto out;
	if (s.factor == 0)
		r = warn_at(ps, s.line,
		            "signal \"%s\": factor 0 (every frame decodes to the offset)", s.name);
	if (r < 0 || !m)
		goto out; /* a signal of no message, or of a skipped one */
	if (can_message_signal(m, s.name)) {
		r = warn_at(ps, s.line,
		            "signal \"%s\" is defined twice in message \"%s\"; the first is used",
		            s.name, m->name);
		goto out;
	}
	if (m->n_signals >= MAX_SIGNALS) {
		r = fail_at(ps, s.line, "message \"%s\": more than %d signals", m->name,
		            MAX_SIGNALS);
		goto out;
	}
	if ((r = grow(&m->signals, m->n_signals, sizeof(*m->signals))) < 0)
		goto out;
	m->signals[m->n_signals++] = s;
	return 0;
out:
	free_signal(&s);
	return r;
}

/* --- value descriptions --- */

static int cmp_value(const void *a, const void *b) {
	double x = ((const struct can_value_desc *)a)->value,
	       y = ((const struct can_value_desc *)b)->value;

	return x < y ? -1 : x > y;
}

/* "value "text" value "text" ... ;" */
static int read_value_list(struct parser *ps, struct can_value_desc **ret, size_t *ret_n) {
	struct can_value_desc *v = NULL;
	size_t n = 0;
	int r = 0;

	while (!accept(ps, ';')) {
		double x;
		char *t;

		if ((r = read_number(ps, "a value or ';'", &x)) < 0 ||
		    (r = read_string(ps, "the value's description in quotes", &t)) < 0)
			goto fail;
		if ((r = grow(&v, n, sizeof(*v))) < 0) {
			free(t);
			goto fail;
		}
		v[n++] = (struct can_value_desc){x, t};
	}
	if (n > 0)
		qsort(v, n, sizeof(*v), cmp_value);
	*ret = v;
	*ret_n = n;
	return 0;
fail:
	free_values(v, n);
	return r;
}

static int parse_value_table(struct parser *ps) {
	struct value_table t = {0};
	int r;

	if ((r = read_name(ps, "a value table name", &t.name)) < 0 ||
	    (r = read_value_list(ps, &t.values, &t.n_values)) < 0 ||
	    (r = grow(&ps->tables, ps->n_tables, sizeof(*ps->tables))) < 0) {
		free(t.name);
		free_values(t.values, t.n_values);
		return r;
	}
	ps->tables[ps->n_tables++] = t;
	return 0;
}

static int copy_table(struct parser *ps, const char *name, struct can_value_desc **ret,
                      size_t *ret_n) {
	for (size_t i = 0; i < ps->n_tables; i++) {
		const struct value_table *t = &ps->tables[i];

		if (strcmp(t->name, name) != 0)
			continue;
		*ret = calloc(t->n_values ? t->n_values : 1, sizeof(**ret));
		if (!*ret)
			return -ENOMEM;
		for (size_t j = 0; j < t->n_values; j++) {
			(*ret)[j].value = t->values[j].value;
			if (!((*ret)[j].text = strdup(t->values[j].text))) {
				free_values(*ret, j);
				return -ENOMEM;
			}
		}
		*ret_n = t->n_values;
		return 0;
	}
	return 1;
}

/* VAL_ ID SIGNAL list ; or VAL_ ID SIGNAL TABLE ; (VAL_ of an environment variable is skipped). */
static int parse_values(struct parser *ps) {
	unsigned line = ps->line;
	struct can_signal *s;
	struct can_value_desc *v = NULL;
	size_t n = 0;
	int r;

	skip_space(ps);
	if (ps->p < ps->end && !is_digit(*ps->p))
		return skip_to_semicolon(ps);
	if ((r = read_signal_ref(ps, &s, NULL)) < 0)
		return r;
	skip_space(ps);
	if (ps->p < ps->end && !is_digit(*ps->p) && name_len(ps) > 0) {
		char *name;

		if ((r = read_name(ps, "a value table name", &name)) < 0)
			return r;
		r = copy_table(ps, name, &v, &n);
		if (r > 0)
			r = warn_at(ps, line, "no value table \"%s\"", name);
		free(name);
		if (r >= 0)
			r = expect(ps, ';', "';'");
	} else {
		r = read_value_list(ps, &v, &n);
	}
	if (r < 0 || !s) {
		free_values(v, n);
		return r;
	}
	free_values(s->values, s->n_values);
	s->values = v;
	s->n_values = n;
	return 0;
}

/* SIG_VALTYPE_ ID SIGNAL : 0|1|2 ; */
static int parse_valtype(struct parser *ps) {
	unsigned line = ps->line;
	struct can_signal *s;
	uint64_t t;
	int r;

	if ((r = read_signal_ref(ps, &s, NULL)) < 0)
		return r;
	(void)accept(ps, ':');
	if ((r = read_uint(ps, "a value type (0, 1 = float, 2 = double)", 2, &t)) < 0 ||
	    (r = expect(ps, ';', "';'")) < 0 || !s)
		return r;
	if ((t == 1 && s->length != 32) || (t == 2 && s->length != 64))
		return warn_at(
		    ps, line,
		    "signal \"%s\": a %s needs %d bits, the signal has %u (left an integer)",
		    s->name, t == 1 ? "float" : "double", t == 1 ? 32 : 64, s->length);
	s->type = t == 1 ? CAN_VALUE_FLOAT : t == 2 ? CAN_VALUE_DOUBLE : CAN_VALUE_INTEGER;
	return 0;
}

/* SG_MUL_VAL_ ID SIGNAL MULTIPLEXER lo-hi, lo-hi ... ; */
static int parse_mux_values(struct parser *ps) {
	unsigned line = ps->line;
	struct can_message *m;
	struct can_signal *s, *mux;
	struct can_mux_range *v = NULL;
	size_t n = 0;
	char *name = NULL;
	int r;

	if ((r = read_signal_ref(ps, &s, &m)) < 0 ||
	    (r = read_name(ps, "the multiplexer's name", &name)) < 0)
		goto out;
	do {
		struct can_mux_range x;

		if ((r = read_uint(ps, "a range such as 3-5", UINT64_MAX, &x.lo)) < 0 ||
		    (r = expect(ps, '-', "'-' in the range")) < 0 ||
		    (r = read_uint(ps, "the range's upper end", UINT64_MAX, &x.hi)) < 0)
			goto out;
		if (x.lo > x.hi) {
			r = fail_at(ps, ps->line,
			            "expected a range with lo <= hi, found %" PRIu64 "-%" PRIu64,
			            x.lo, x.hi);
			goto out;
		}
		if ((r = grow(&v, n, sizeof(*v))) < 0)
			goto out;
		v[n++] = x;
	} while (accept(ps, ','));
	if ((r = expect(ps, ';', "',' or ';'")) < 0 || !s)
		goto out;
	mux = (struct can_signal *)can_message_signal(m, name);
	if (!mux || mux == s) {
		r = fail_at(ps, line,
		            "signal \"%s\": expected a multiplexer of message \"%s\", found \"%s\"",
		            s->name, m->name, name);
		goto out;
	}
	if (!s->is_multiplexed) {
		r = warn_at(
		    ps, line,
		    "signal \"%s\" has SG_MUL_VAL_ but no mN indicator (taken as multiplexed)",
		    s->name);
		s->is_multiplexed = true;
	}
	mux->is_multiplexer = true;
	s->mux_parent = (int)(mux - m->signals);
	free(s->mux_ranges);
	s->mux_ranges = v;
	s->n_mux_ranges = n;
	v = NULL;
out:
	free(v);
	free(name);
	return r;
}

/* --- CM_ --- */

static int parse_comment(struct parser *ps) {
	unsigned line = ps->line;
	struct can_message *m = NULL;
	struct can_signal *s = NULL;
	char **target = NULL, *text;
	uint64_t raw;
	int r = 0;

	if (accept_word(ps, "BO_")) {
		if ((r = read_uint(ps, "a message id", UINT32_MAX, &raw)) < 0 ||
		    (r = lookup_message(ps, raw, line, &m)) < 0)
			return r;
		target = m ? &m->comment : NULL;
	} else if (accept_word(ps, "SG_")) {
		if ((r = read_signal_ref(ps, &s, NULL)) < 0)
			return r;
		target = s ? &s->comment : NULL;
	} else if (accept_word(ps, "BU_") || accept_word(ps, "EV_")) {
		char *name;

		if ((r = read_name(ps, "a name", &name)) < 0)
			return r;
		free(name);
	}
	if ((r = read_string(ps, "the comment in quotes", &text)) < 0)
		return r;
	if ((r = expect(ps, ';', "';' after the comment")) < 0) {
		free(text);
		return r;
	}
	if (target) {
		free(*target);
		*target = text;
	} else {
		free(text);
	}
	return 0;
}

/* --- attributes --- */

static int find_attr(const char *name) {
	for (int i = 0; i < ATTR_COUNT; i++)
		if (strcmp(attr_names[i], name) == 0)
			return i;
	return -1;
}

/*
 * Reads an attribute's name: 1 and *RET_ATTR for one that matters, 0 when
 * the rest of the statement was skipped (any other attribute), or an error.
 */
static int read_attr_name(struct parser *ps, int *ret_attr) {
	char *name;
	int r = read_string(ps, "the attribute's name in quotes", &name);

	if (r < 0)
		return r;
	*ret_attr = find_attr(name);
	free(name);
	if (*ret_attr < 0)
		return skip_to_semicolon(ps);
	return 1;
}

static void clear_value(struct attr_value *v) {
	free(v->string);
	*v = (struct attr_value){0};
}

static int read_attr_value(struct parser *ps, struct attr_value *ret) {
	int r;

	clear_value(ret);
	skip_space(ps);
	if (ps->p < ps->end && *ps->p == '"') {
		ret->is_string = true;
		r = read_string(ps, "a value", &ret->string);
	} else {
		r = read_number(ps, "a number or a string in quotes", &ret->number);
	}
	ret->set = r >= 0;
	return r;
}

/* The text of a value: a string, or an ENUM's entry for its index. */
static const char *attr_text(const struct parser *ps, int a, const struct attr_value *v) {
	const struct attr_def *d = &ps->defs[a];

	if (v->is_string)
		return v->string;
	if (v->number >= 0 && v->number < (double)d->n_enums)
		return d->enums[(size_t)v->number];
	return NULL;
}

/* BA_DEF_ [BU_|BO_|SG_|EV_] "NAME" TYPE ... ; keeping the ENUM lists of the attributes that matter.
 */
static int parse_attr_def(struct parser *ps) {
	struct attr_def *d;
	char *type = NULL;
	int r, a;

	(void)(accept_word(ps, "BU_") || accept_word(ps, "BO_") || accept_word(ps, "SG_") ||
	       accept_word(ps, "EV_"));
	if ((r = read_attr_name(ps, &a)) <= 0)
		return r;
	if ((r = read_name(ps, "an attribute type", &type)) < 0)
		return r;
	d = &ps->defs[a];
	if (strcmp(type, "ENUM") == 0 && d->n_enums == 0) {
		do {
			if ((r = grow(&d->enums, d->n_enums, sizeof(*d->enums))) < 0 ||
			    (r = read_string(ps, "an ENUM value in quotes",
			                     &d->enums[d->n_enums])) < 0)
				break;
			d->n_enums++;
		} while (accept(ps, ','));
	}
	free(type);
	return r < 0 ? r : skip_to_semicolon(ps);
}

static int parse_attr_default(struct parser *ps) {
	int r, a;

	if ((r = read_attr_name(ps, &a)) <= 0)
		return r;
	if ((r = read_attr_value(ps, &ps->defs[a].def)) < 0)
		return r;
	return expect(ps, ';', "';'");
}

static void apply_message_attr(struct parser *ps, int a, struct can_message *m,
                               const struct attr_value *v) {
	const char *t = attr_text(ps, a, v);

	switch (a) {
	case ATTR_FRAME_FORMAT:
		m->fd = t && strstr(t, "FD") != NULL;
		if (t && strstr(t, "J1939"))
			m->j1939 = true;
		break;
	case ATTR_PROTOCOL:
		if (t && strcmp(t, "J1939") == 0)
			m->j1939 = true;
		break;
	case ATTR_CYCLE_TIME:
		if (!v->is_string && v->number >= 0 && v->number < 1e12)
			m->cycle_time_ms = (int64_t)v->number;
		break;
	default:
		break;
	}
}

/* BA_ "NAME" [BU_ node | BO_ id | SG_ id signal | EV_ name] value ; */
static int parse_attr(struct parser *ps) {
	unsigned line = ps->line;
	struct attr_value v = {0};
	struct can_message *m = NULL;
	struct can_signal *s = NULL;
	bool network = false;
	char *name;
	uint64_t raw;
	int r, a;

	if ((r = read_attr_name(ps, &a)) <= 0)
		return r;
	if (accept_word(ps, "BO_")) {
		if ((r = read_uint(ps, "a message id", UINT32_MAX, &raw)) < 0 ||
		    (r = lookup_message(ps, raw, line, &m)) < 0)
			return r;
	} else if (accept_word(ps, "SG_")) {
		if ((r = read_signal_ref(ps, &s, NULL)) < 0)
			return r;
	} else if (accept_word(ps, "BU_") || accept_word(ps, "EV_")) {
		if ((r = read_name(ps, "a name", &name)) < 0)
			return r;
		free(name);
	} else {
		network = true;
	}
	if ((r = read_attr_value(ps, &v)) < 0 || (r = expect(ps, ';', "';'")) < 0)
		goto out;
	if (m) {
		apply_message_attr(ps, a, m, &v);
		ps->msg_set[m - ps->dbc->messages] |= a == ATTR_FRAME_FORMAT ? SET_FRAME_FORMAT
		                                      : a == ATTR_PROTOCOL   ? SET_PROTOCOL
		                                      : a == ATTR_CYCLE_TIME ? SET_CYCLE_TIME
		                                                             : 0;
	} else if (s && a == ATTR_START_VALUE && !v.is_string) {
		s->has_start_value = true;
		s->start_value = v.number;
	} else if (network && a == ATTR_PROTOCOL) {
		clear_value(&ps->network_protocol);
		ps->network_protocol = v;
		v = (struct attr_value){0};
	}
out:
	clear_value(&v);
	return r;
}

/* --- NS_ --- */

/* NS_ : then one keyword per line, which must not be read as statements. */
static int parse_new_symbols(struct parser *ps) {
	(void)accept(ps, ':');
	for (;;) {
		const char *save = ps->p;
		unsigned line = ps->line;

		skip_space(ps);
		if (name_len(ps) == 0)
			goto back;
		ps->p += name_len(ps);
		skip_inline(ps);
		if (!at_eol(ps))
			goto back;
		continue;
	back:
		ps->p = save;
		ps->line = line;
		return 0;
	}
}

/* --- the file --- */

static bool ranges_meet(const struct can_signal *a, const struct can_signal *b) {
	for (size_t i = 0; i < a->n_mux_ranges; i++)
		for (size_t j = 0; j < b->n_mux_ranges; j++)
			if (a->mux_ranges[i].lo <= b->mux_ranges[j].hi &&
			    b->mux_ranges[j].lo <= a->mux_ranges[i].hi)
				return true;
	return false;
}

/* True when A and B may be in one frame: not two branches of one multiplexer. */
static bool may_coexist(const struct can_signal *a, const struct can_signal *b) {
	if (a->is_multiplexed && b->is_multiplexed && a->mux_parent == b->mux_parent)
		return ranges_meet(a, b);
	return true;
}

/* A signal's bits, and the bytes they lie in (at most nine), for overlap checks. */
struct bits {
	uint8_t mask[CAN_MAX_PAYLOAD];
	unsigned lo, hi;
};

static int check_overlaps(struct parser *ps, const struct can_message *m) {
	struct bits *b;
	int r = 0;

	if (m->n_signals < 2)
		return 0;
	b = malloc(m->n_signals * sizeof(*b));
	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < m->n_signals; i++) {
		can_signal_mask(&m->signals[i], b[i].mask);
		for (b[i].lo = 0; b[i].mask[b[i].lo] == 0; b[i].lo++)
			;
		for (b[i].hi = CAN_MAX_PAYLOAD - 1; b[i].mask[b[i].hi] == 0; b[i].hi--)
			;
	}
	for (size_t i = 0; i < m->n_signals && r >= 0; i++) {
		for (size_t j = i + 1; j < m->n_signals && r >= 0; j++) {
			unsigned k = b[i].lo > b[j].lo ? b[i].lo : b[j].lo;
			unsigned end = b[i].hi < b[j].hi ? b[i].hi : b[j].hi;
			bool meet = false;

			for (; k <= end && !meet; k++)
				meet = (b[i].mask[k] & b[j].mask[k]) != 0;
			if (meet && may_coexist(&m->signals[i], &m->signals[j]))
				r = warn_at(ps, m->signals[j].line,
				            "signal \"%s\" overlaps \"%s\" in message \"%s\"",
				            m->signals[j].name, m->signals[i].name, m->name);
		}
	}
	free(b);
	return r;
}

/* Gives each mN signal without SG_MUL_VAL_ the message's multiplexer, and refuses cycles. */
static int resolve_mux(struct parser *ps, struct can_message *m) {
	int simple = -1, r;

	for (size_t i = 0; i < m->n_signals; i++)
		if (m->signals[i].is_multiplexer && !m->signals[i].is_multiplexed) {
			simple = (int)i;
			break;
		}
	for (size_t i = 0; i < m->n_signals; i++) {
		struct can_signal *s = &m->signals[i];

		if (!s->is_multiplexed || s->mux_parent >= 0)
			continue;
		if (simple < 0) {
			r = warn_at(ps, s->line,
			            "signal \"%s\" is multiplexed but message \"%s\" has no "
			            "multiplexer (never decoded)",
			            s->name, m->name);
			if (r < 0)
				return r;
			continue;
		}
		s->mux_parent = simple;
	}
	for (size_t i = 0; i < m->n_signals; i++) {
		size_t at = i, steps = 0;

		while (m->signals[at].is_multiplexed && m->signals[at].mux_parent >= 0) {
			at = (size_t)m->signals[at].mux_parent;
			if (++steps > m->n_signals)
				return fail_at(ps, m->signals[i].line,
				               "signal \"%s\": its multiplexers form a cycle",
				               m->signals[i].name);
		}
		if (m->signals[i].is_multiplexer && m->signals[i].type != CAN_VALUE_INTEGER)
			return fail_at(
			    ps, m->signals[i].line,
			    "signal \"%s\": expected an integer multiplexer, found a float",
			    m->signals[i].name);
	}
	return 0;
}

static int finish_message(struct parser *ps, size_t index) {
	struct can_message *m = &ps->dbc->messages[index];
	unsigned char set = ps->msg_set[index];
	const struct attr_value *sv = &ps->defs[ATTR_START_VALUE].def;
	int r;

	if (!(set & SET_FRAME_FORMAT) && ps->defs[ATTR_FRAME_FORMAT].def.set)
		apply_message_attr(ps, ATTR_FRAME_FORMAT, m, &ps->defs[ATTR_FRAME_FORMAT].def);
	if (!(set & SET_PROTOCOL) && ps->network_protocol.set)
		apply_message_attr(ps, ATTR_PROTOCOL, m, &ps->network_protocol);
	else if (!(set & SET_PROTOCOL) && ps->defs[ATTR_PROTOCOL].def.set)
		apply_message_attr(ps, ATTR_PROTOCOL, m, &ps->defs[ATTR_PROTOCOL].def);
	if (!(set & SET_CYCLE_TIME) && ps->defs[ATTR_CYCLE_TIME].def.set)
		apply_message_attr(ps, ATTR_CYCLE_TIME, m, &ps->defs[ATTR_CYCLE_TIME].def);
	/* J1939 parameter groups are 29-bit frames; an 11-bit frame of such a bus is not one. */
	if (!m->extended)
		m->j1939 = false;
	for (size_t i = 0; i < m->n_signals; i++) {
		struct can_signal *s = &m->signals[i];
		unsigned need;

		if (!s->has_start_value && sv->set && !sv->is_string) {
			s->has_start_value = true;
			s->start_value = sv->number;
		}
		(void)can_signal_layout(s->start_bit, s->length, s->big_endian, &need);
		if (need > m->size &&
		    (r = warn_at(ps, s->line, "signal \"%s\" needs %u bytes, message \"%s\" has %u",
		                 s->name, need, m->name, m->size)) < 0)
			return r;
	}
	if ((r = resolve_mux(ps, m)) < 0)
		return r;
	return check_overlaps(ps, m);
}

static int finish(struct parser *ps) {
	struct can_dbc *d = ps->dbc;
	int r = sort_messages(ps);

	for (size_t i = 1; i < d->n_messages && r >= 0; i++) {
		const struct can_message *a = &d->messages[d->by_id[i - 1]],
		                         *b = &d->messages[d->by_id[i]];

		if (a->id == b->id && a->extended == b->extended)
			r = warn_at(ps, b->line,
			            "message \"%s\" has the id of \"%s\" (line %u), which is used",
			            b->name, a->name, a->line);
	}
	for (size_t i = 0; i < d->n_messages && r >= 0; i++)
		r = finish_message(ps, i);
	return r;
}

static const struct {
	const char *keyword;
	int (*parse)(struct parser *ps);
} statements[] = {
    {"BO_", parse_message},
    {"SG_", parse_signal},
    {"CM_", parse_comment},
    {"VAL_", parse_values},
    {"VAL_TABLE_", parse_value_table},
    {"SIG_VALTYPE_", parse_valtype},
    {"SG_MUL_VAL_", parse_mux_values},
    {"BA_DEF_", parse_attr_def},
    {"BA_DEF_DEF_", parse_attr_default},
    {"BA_", parse_attr},
    {"NS_", parse_new_symbols},
};

static int parse_statements(struct parser *ps) {
	for (;;) {
		size_t n, i;
		int r;

		skip_space(ps);
		if (ps->p >= ps->end)
			return 0;
		n = name_len(ps);
		if (n == 0)
			return expected(ps, "a keyword such as BO_ or SG_");
		for (i = 0; i < sizeof(statements) / sizeof(statements[0]); i++)
			if (strlen(statements[i].keyword) == n &&
			    memcmp(statements[i].keyword, ps->p, n) == 0)
				break;
		ps->p += n;
		if (i == sizeof(statements) / sizeof(statements[0])) {
			/* VERSION, BS_, BU_, EV_, BO_TX_BU_, SIG_GROUP_, ... */
			skip_statement(ps);
			continue;
		}
		if (strcmp(statements[i].keyword, "BO_") != 0 &&
		    strcmp(statements[i].keyword, "SG_") != 0)
			ps->msg = NULL; /* SG_ lines belong to the BO_ right above them */
		r = statements[i].parse(ps);
		if (r < 0)
			return r;
	}
}

static void free_parser(struct parser *ps) {
	for (int a = 0; a < ATTR_COUNT; a++) {
		for (size_t i = 0; i < ps->defs[a].n_enums; i++)
			free(ps->defs[a].enums[i]);
		free(ps->defs[a].enums);
		clear_value(&ps->defs[a].def);
	}
	clear_value(&ps->network_protocol);
	for (size_t i = 0; i < ps->n_tables; i++) {
		free(ps->tables[i].name);
		free_values(ps->tables[i].values, ps->tables[i].n_values);
	}
	free(ps->tables);
	free(ps->msg_set);
	if (ps->c_locale)
		freelocale(ps->c_locale);
}

int can_dbc_parse(const char *text, size_t len, const char *name, struct can_dbc **ret,
                  char **ret_error) {
	struct parser ps = {.p = text, .end = text + len, .name = name ? name : "(dbc)", .line = 1};
	const char *nul;
	int r;

	*ret_error = NULL;
	if (len > CAN_DBC_MAX_BYTES) {
		if (asprintf(ret_error, "%s: larger than %u MiB", ps.name,
		             CAN_DBC_MAX_BYTES >> 20) < 0)
			*ret_error = NULL;
		return -EFBIG;
	}
	ps.dbc = calloc(1, sizeof(*ps.dbc));
	ps.c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
	if (!ps.dbc || !ps.c_locale) {
		r = -ENOMEM;
		goto out;
	}
	/* A C string inside cannot hold a NUL: name its line rather than cut the text. */
	nul = memchr(text, '\0', len);
	if (nul)
		ps.end = nul;
	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		ps.p += 3; /* a UTF-8 byte order mark */
	r = parse_statements(&ps);
	if (r >= 0 && nul) {
		unsigned line = 1;

		for (const char *q = text; q < nul; q++)
			line += *q == '\n';
		r = fail_at(&ps, line, "expected text, found a NUL byte");
	}
	if (r >= 0)
		r = finish(&ps);
out:
	if (r < 0) {
		can_dbc_free(ps.dbc);
		*ret_error = ps.error;
		ps.error = NULL;
	} else {
		*ret = ps.dbc;
	}
	free(ps.error);
	free_parser(&ps);
	return r;
}
