/* SPDX-License-Identifier: MIT */
/*
 * can-dbc.h - the DBC file format (Vector's CAN database), parsed into
 * messages and signals, without a device.
 *
 * What is read: BO_ (messages; bit 31 of the id marks a 29-bit id), SG_
 * (signals: start bit, length, byte order @1 Intel / @0 Motorola, sign,
 * factor, offset, min, max, unit, receivers, the multiplexer indicator M,
 * mN or mNM), SIG_VALTYPE_ (1 = IEEE float, 2 = double), VAL_ and
 * VAL_TABLE_ (value descriptions), SG_MUL_VAL_ (extended multiplexing),
 * CM_ on messages and signals, and of the attributes (BA_DEF_,
 * BA_DEF_DEF_, BA_) only VFrameFormat (CAN FD, J1939), ProtocolType
 * (J1939), GenMsgCycleTime and GenSigStartValue. Every other section
 * (VERSION, NS_, BS_, BU_, EV_, BO_TX_BU_, SIG_GROUP_, other attributes,
 * ...) is skipped. Numbers are read the same under every locale.
 *
 * Pure code over a buffer: callable from any thread and from a fuzzer. It
 * never logs; problems a file can live with (duplicate or overlapping
 * signals, a signal outside its message) become warnings in the result.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest DBC text can_dbc_parse() takes; real files are a few MiB at most. */
#define CAN_DBC_MAX_BYTES (64u << 20)
/* Warnings kept in a result; the rest are only counted. */
#define CAN_DBC_MAX_WARNINGS 64
/* The largest payload of a frame (CAN FD), in bytes. */
#define CAN_MAX_PAYLOAD 64

enum can_value_type {
	CAN_VALUE_INTEGER, /* signed or unsigned by can_signal.is_signed */
	CAN_VALUE_FLOAT,   /* SIG_VALTYPE_ 1: IEEE 754 binary32, 32 bits */
	CAN_VALUE_DOUBLE,  /* SIG_VALTYPE_ 2: IEEE 754 binary64, 64 bits */
};

/* One value description ("VAL_ 100 Gear 0 \"park\" 1 \"reverse\" ;"). */
struct can_value_desc {
	double value; /* the raw value it names */
	char *text;
};

/* An inclusive range of a multiplexer's raw value (SG_MUL_VAL_ "2-5"). */
struct can_mux_range {
	uint64_t lo, hi;
};

struct can_signal {
	char *name;
	unsigned line;      /* of its SG_, for messages */
	uint16_t start_bit; /* as the DBC writes it: the LSB for Intel, the MSB (sawtooth) for
	                       Motorola */
	uint8_t length;     /* 1..64 bits */
	bool big_endian;    /* @0, Motorola */
	bool is_signed;     /* '-' */
	enum can_value_type type;
	double factor, offset, min, max;
	char *unit;
	char **receivers;
	size_t n_receivers;

	/*
	 * Multiplexing. A multiplexer ('M', or 'mNM' for one that is itself
	 * multiplexed) selects by its raw value which multiplexed signals
	 * ('mN', 'mNM') the frame carries. mux_parent is the index in the
	 * message of the multiplexer this signal depends on (-1: none, the
	 * signal is always there); the signal is present when the parent is
	 * present and the parent's raw value lies in one of mux_ranges (the
	 * SG_MUL_VAL_ ranges, or the one value N).
	 */
	bool is_multiplexer;
	bool is_multiplexed;
	int mux_parent;
	struct can_mux_range *mux_ranges;
	size_t n_mux_ranges;

	struct can_value_desc *values; /* sorted by value */
	size_t n_values;
	char *comment;        /* CM_ SG_, or NULL */
	bool has_start_value; /* GenSigStartValue, given or defaulted */
	double start_value;   /* raw, as the attribute is defined */
};

struct can_message {
	char *name;
	unsigned line;
	uint32_t id;           /* 11 or 29 bits, without the DBC's bit 31 */
	bool extended;         /* a 29-bit id */
	uint8_t size;          /* payload bytes, 0..64 */
	char *sender;          /* the transmitting node ("Vector__XXX" when none) */
	bool fd;               /* VFrameFormat is a CAN FD format */
	bool j1939;            /* VFrameFormat J1939PG, or ProtocolType "J1939" */
	int64_t cycle_time_ms; /* GenMsgCycleTime, 0 when not given */
	char *comment;
	struct can_signal *signals;
	size_t n_signals;
};

struct can_dbc {
	struct can_message *messages; /* in file order */
	size_t n_messages;
	/* "FILE:LINE: what" for things a file can live with, at most CAN_DBC_MAX_WARNINGS. */
	char **warnings;
	size_t n_warnings;
	size_t n_warnings_dropped;
	/* Private: message indexes sorted by id, for lookups. */
	size_t *by_id;
};

/*
 * Parses LEN bytes of DBC text (not NUL-terminated; NUL bytes are errors).
 * NAME is the file name used in messages. On success returns 0 and a
 * malloc'd *RET (can_dbc_free). On failure returns -EINVAL (malformed:
 * *RET_ERROR is one malloc'd line "NAME:LINE: expected ..."), -EFBIG
 * (longer than CAN_DBC_MAX_BYTES) or -ENOMEM; *RET_ERROR is then set if
 * memory allowed. Memory is bounded by a small multiple of LEN.
 */
int can_dbc_parse(const char *text, size_t len, const char *name, struct can_dbc **ret,
                  char **ret_error);

/* Frees what can_dbc_parse() returned; NULL is fine. */
void can_dbc_free(struct can_dbc *dbc);

/* The message with ID (11 or 29 bits) and EXTENDED, or NULL. */
const struct can_message *can_dbc_message(const struct can_dbc *dbc, uint32_t id, bool extended);

/* The signal of M named NAME, or NULL. */
const struct can_signal *can_message_signal(const struct can_message *m, const char *name);

/* The text for raw value RAW of S (its value descriptions), or NULL. */
const char *can_signal_value_text(const struct can_signal *s, double raw);
