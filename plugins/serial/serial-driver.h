/* SPDX-License-Identifier: MIT */
/*
 * serial-driver.h - the serial driver's own header: the structs its files
 * share. Never installed. Everything here belongs to the loop thread: the
 * driver has no thread of its own and uses no bus thread (see serial.c).
 *
 *   serial.c         entry, ops, life cycle, frames into readings
 *   serial-config.c  create(): the port, framing, format, requests, points
 *   serial-port.c    the tty: open, termios, RS-485, reads, writes, reopen
 *   serial-poll.c    requests and writes: one transaction on the line at a time
 *   serial-framer.c, serial-nmea.c, serial-text.c, serial-number.c,
 *   serial-template.c  pure code over bytes (the serial-codec library)
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "m2m/plugin.h"
#include "m2m/plugin-util.h"
#include "serial-framer.h"
#include "serial-nmea.h"
#include "serial-template.h"
#include "serial-text.h"

#define SER_VERSION "1.0.0"
#define US_PER_MS M2M_US_PER_MS
#define US_PER_S M2M_US_PER_S

/* Writes waiting for the line beyond this are refused with -EBUSY. */
#define SER_WRITE_QUEUE 8
/*
 * Bytes read per wake-up at most, so that a flood cannot hold the loop: the
 * watch fires again on the loop's next turn. They are parsed SER_FEED_PIECE
 * at a time, and after SER_SLICE_US of parsing the rest waits for the next
 * turn too (serial-port.c).
 */
#define SER_READ_BUDGET 4096
#define SER_FEED_PIECE 64
#define SER_SLICE_US 1000
#define SER_BATCH 256
/* The PCRE2 match limit of the driver's patterns unless 'match_limit' says otherwise. */
#define SER_MATCH_LIMIT 10000
/* The first reopen delay; it doubles up to backoff_max. */
#define SER_BACKOFF_MIN_US (100 * US_PER_MS)
/* Fields of a delimited frame at most. */
#define SER_MAX_FIELDS 256

enum ser_format { SER_NMEA, SER_REGEX, SER_DELIMITED, SER_FIXED, SER_FORMAT_COUNT };
enum ser_parity { SER_PARITY_NONE, SER_PARITY_EVEN, SER_PARITY_ODD };
enum ser_flow { SER_FLOW_NONE, SER_FLOW_RTSCTS, SER_FLOW_XONXOFF };
enum ser_kind { SER_KIND_NUMBER, SER_KIND_BOOL, SER_KIND_TEXT };

/* The statistics, declared once (serial.c has their names and helps). */
enum ser_stat {
	SER_ST_BYTES,
	SER_ST_FRAMES,
	SER_ST_GARBAGE,
	SER_ST_OVERLONG,
	SER_ST_PARTIAL,
	SER_ST_DROPPED,
	SER_ST_CHECKSUM,
	SER_ST_INVALID,
	SER_ST_UNUSED,
	SER_ST_REGEX_LIMIT,
	SER_ST_TIMEOUTS,
	SER_ST_REOPENS,
	SER_STAT_COUNT
};

/* One distinct regular expression, matched at most once per frame. */
struct ser_pattern {
	char *text;
	st_regex *re;
	uint64_t seq;             /* the frame it was last matched against */
	int matched;              /* that match's result: groups filled, or < 0 */
	struct st_field *groups;  /* st_regex_groups() + 1 entries */
	unsigned n_groups;
};

struct ser_driver;

struct ser_request {
	struct ser_driver *drv;
	char *name;
	char *device;             /* for device_state; NULL: the whole port */
	uint8_t cmd[SER_CMD_MAX];
	size_t cmd_len;
	char *cmd_text;           /* as configured, for messages */
	int64_t interval_us, timeout_us;
	int retries;
	struct ser_pattern *response; /* NULL: the first frame after the command */
	m2m_timer *timer;
	bool queued;
	bool failing;             /* its last attempt timed out */
	bool answered;            /* it was answered since the port opened */
};

struct ser_point {
	uint32_t id;
	char *name;               /* "device/point", for messages */
	enum ser_kind kind;
	/* NMEA */
	char *sentence;           /* "RMC", "GNRMC" */
	char *field;              /* a named field, or NULL */
	int index;                /* a field by index, or -1 */
	char *xdr;                /* an XDR transducer's name, or NULL */
	bool valid_only;          /* only when the sentence's validity flag says so */
	/* regex */
	struct ser_pattern *pattern;
	int group;
	/* delimited: field index; fixed: columns */
	unsigned column;
	size_t start, width;
	/* bool by match */
	char *on, *off;
	/* where the value comes from: NULL, any frame; else only this request's answers */
	struct ser_request *request;
	/* writes */
	uint8_t *tpl;
	size_t tpl_len;
	struct ser_pattern *ack;
	struct ser_pattern *nak;
	int64_t write_timeout_us;
	/* state */
	int64_t last_us;          /* mono time of the last good value, 0: none yet */
	bool stale;               /* a stale reading was sent since */
	bool got;                 /* a value from the current frame */
};

struct ser_write {
	struct ser_point *p;
	m2m_write *req;
	uint8_t cmd[SER_CMD_MAX];
	size_t len;
};

enum ser_txn { SER_TXN_NONE, SER_TXN_REQUEST, SER_TXN_WRITE };

struct ser_driver {
	m2m_host *host;
	const struct m2m_host_api *api;

	/* Config (create). */
	char *port;
	int baud, data_bits, stop_bits;
	int parity;               /* enum ser_parity */
	int flow;                 /* enum ser_flow */
	bool rs485;
	bool rs485_rts_on_send;
	int64_t rs485_delay_before_us, rs485_delay_after_us;
	bool exclusive;
	char *device;             /* the default device of the points, or NULL */
	int format;               /* enum ser_format */
	int checksum;             /* enum nmea_checksum */
	bool sentence_time;       /* NMEA: the sentence's time is the reading's */
	char decimal;
	struct st_delimited delim;
	struct sf_config fcfg;
	int64_t stale_us;         /* 0: no staleness */
	int64_t backoff_max_us;
	int64_t delay_us;         /* inter_request_delay */
	unsigned match_limit;
	struct ser_point *points;
	size_t n_points;
	struct ser_pattern *patterns;
	size_t n_patterns;
	struct ser_request *requests;
	size_t n_requests;

	/* Run time. */
	bool running;
	int fd;
	m2m_io *io;
	int io_events;
	m2m_timer *reopen_timer, *idle_timer, *stale_timer, *txn_timer, *resume_timer;
	int64_t backoff_us;
	bool online;              /* the port is open and has not gone silent */
	bool silent;              /* offline because nothing arrived for stale_us */
	bool down_reported;       /* COMM_ERROR readings sent for this outage */
	char open_error[160];     /* the last open failure, logged once per change */
	int64_t last_frame_us;    /* mono */
	struct sf framer;
	uint64_t seq;             /* frames so far */
	/*
	 * Readings not yet submitted: those of every frame of one read go in
	 * one submit (ser_flush), as each submit costs the core two locks of
	 * the storage queue and a pass over the sinks. n_points + SER_BATCH
	 * slots; a frame gives at most one reading per point.
	 */
	struct m2m_reading *rd;
	size_t n_rd;
	char *split_buf;          /* delimited: max_len bytes for unquoted fields */
	struct st_field *fields;  /* delimited: SER_MAX_FIELDS */
	int64_t start_us;         /* mono time of start, for staleness before any value */

	/* The line: one transaction at a time. */
	int txn;                  /* enum ser_txn */
	int64_t txn_end_us;       /* mono time the last transaction ended, 0: none yet */
	struct ser_request *cur;
	int attempt;
	struct ser_write cur_write;
	struct ser_request **rq_queue; /* n_requests slots, a ring */
	size_t rq_head, rq_len;
	struct ser_write wq[SER_WRITE_QUEUE];
	size_t wq_head, wq_len;
	uint8_t pend[SER_READ_BUDGET]; /* the last read, pend_off bytes of it parsed */
	size_t pend_off, pend_len;
	bool resume_hup;          /* the port hung up while bytes were left to parse */
	uint8_t out[2 * SER_CMD_MAX];
	size_t out_len;

	uint64_t counts[SER_STAT_COUNT];
	uint64_t published[SER_STAT_COUNT]; /* what the host was last given (it starts at 0) */
	uint64_t line_garbage;    /* NMEA: bytes before the start of a sentence */
	struct m2m_stat_slot stats[SER_STAT_COUNT];
};

extern const struct m2m_driver_ops ser_driver_ops;

/* serial-config.c */
int ser_create(m2m_host *host, const struct m2m_host_api *api, const struct cJSON *config,
               void **ret_driver);
/* serial.c */
void ser_free(struct ser_driver *drv);
void ser_publish_stats(struct ser_driver *drv);
void ser_feed(struct ser_driver *drv, const uint8_t *data, size_t n, int64_t mono);
void ser_on_bytes(struct ser_driver *drv, const uint8_t *data, size_t n);
void ser_flush(struct ser_driver *drv);
void ser_submit_all(struct ser_driver *drv, int quality);
void ser_port_up(struct ser_driver *drv);
void ser_port_down(struct ser_driver *drv, const char *reason);
int ser_pattern_match(struct ser_pattern *pat, const uint8_t *frame, size_t len, uint64_t seq);
/* serial-port.c */
int ser_port_open(struct ser_driver *drv, char *err, size_t errsize);
void ser_port_close(struct ser_driver *drv);
void ser_port_try_open(struct ser_driver *drv);
void ser_port_lost(struct ser_driver *drv, const char *reason);
void ser_port_schedule_reopen(struct ser_driver *drv);
int ser_port_send(struct ser_driver *drv, const uint8_t *data, size_t len);
/* serial-poll.c */
void ser_poll_tick(m2m_timer *timer, void *arg);
void ser_poll_next(struct ser_driver *drv);
void ser_poll_all(struct ser_driver *drv);
void ser_poll_frame(struct ser_driver *drv, const uint8_t *frame, size_t len,
                    struct ser_request **ret_answered);
void ser_poll_abort(struct ser_driver *drv, int status, const char *why);
int ser_write(void *driver, uint32_t point, double raw_value, m2m_write *req);
