/* SPDX-License-Identifier: MIT */
/*
 * mb-driver.h - the Modbus driver's own header: the structs its files share.
 *
 * The driver is four files along its seams, the layout a new driver copies:
 *
 *   modbus.c     the plugin entry, the ops, start/stop and the life cycle
 *   mb-config.c  create(): the config sections, points, groups and plans
 *   mb-io.c      the bus thread: libmodbus, requests, poll and write work
 *   mb-poll.c    the loop thread: timers, results, device up/down, writes
 *
 * beside the pure code (mb-codec.c, mb-plan.c, mb-tcp.c) that a unit test
 * and a fuzzer link without a device. Ownership between the threads is
 * described in modbus.c; each field below says which thread owns it.
 *
 * Nothing here is an ABI: these names stay inside modbus.so (hidden
 * visibility), and the unit test links the same objects.
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <modbus.h>

#include "m2m/plugin-util.h"
#include "m2m/plugin.h"
#include "mb-codec.h"
#include "mb-plan.h"

#define MB_VERSION "1.0.0"

#define US_PER_MS M2M_US_PER_MS
#define US_PER_S M2M_US_PER_S

/* Protocol limits of one read request (Modbus application protocol 1.1b3). */
#define MB_MAX_READ_REGISTERS 125
#define MB_MAX_READ_BITS 2000

/* A bad state that persists is logged again at most this often. */
#define MB_REPORT_INTERVAL_US (60 * US_PER_S)

/* What m2m_host_api keeps of a string value. */
#define MB_TEXT_MAX 256

enum { TRANSPORT_TCP, TRANSPORT_RTU };

enum dev_state { DEV_UNKNOWN, DEV_ONLINE, DEV_OFFLINE };

struct mb_driver;
struct mb_group;

/* A device's statistics, declared at create (see mb_declare_stats). */
struct mb_dev_stats {
	struct m2m_stat_slot polls, requests, errors, skipped, bad_answers, online;
	struct m2m_stat_slot requests_per_cycle; /* only when it has one group */
};

struct mb_device {
	struct mb_driver *drv;
	char *name;
	int unit_id;
	int64_t timeout_us;
	int retries;
	int64_t delay_us;        /* inter-request delay before each request */
	unsigned max_registers;  /* per read request */
	unsigned max_bits;
	unsigned max_gap;        /* registers */
	unsigned max_gap_bits;
	bool write_multiple;     /* FC 15/16 even for one coil or register */
	int64_t interval_us;     /* default for its points */
	int64_t min_interval_us; /* of its groups: the first backoff step */
	size_t n_groups;         /* poll groups (intervals) of its points */

	/* Loop thread. */
	int state;               /* enum dev_state */
	bool probing;            /* an offline device's one probe is under way */
	int64_t backoff_us;
	int64_t next_try_us;     /* mono; while offline, no polls before it */
	uint64_t polls, requests, errors, skipped, backoff_skips;
	uint64_t bad_answers;    /* answers that failed the checks (decode errors) */
	uint64_t reported_bad;   /* bad_answers when they were last reported */
	int64_t report_us;       /* mono; when a bad state was last logged */
	unsigned requests_per_cycle;
	struct mb_dev_stats st;
};

struct mb_point {
	uint32_t id;
	uint32_t address;
	uint32_t nregs;     /* addresses it occupies: 1 for a bit */
	int table;          /* enum mb_table */
	int type;           /* enum mb_type */
	int order;          /* enum mb_order */
	int bit;            /* 0..15 for a bool in a register, -1 otherwise */
	bool writable;
	bool verify;
	int64_t interval_us;
	struct mb_device *dev;
	struct mb_group *group;
	/*
	 * Index into the group's readings, or texts for strings. Slots follow
	 * the order the cycle reads them (table by table, block by block), so
	 * that what one block read is one run of slots (see mb_group.ready).
	 */
	uint32_t slot;
};

/* The latest value of a string point, decoded on the bus thread. */
struct mb_text {
	int64_t ts_us;
	uint32_t point;
	uint16_t quality;
	uint16_t detail;
	char value[MB_TEXT_MAX];
};

/* The points of one group in one table, and how they are read. */
struct mb_table_plan {
	size_t n_spans;
	struct mb_span *spans;
	uint32_t *span_first;   /* n_spans + 1 offsets into members */
	uint32_t *members;      /* point indexes, span by span */
	bool *breaks;           /* remembered splits */
	bool *new_breaks;       /* splits found by the running cycle */
	size_t n_blocks;
	struct mb_block *blocks;
	unsigned max_gap;
	unsigned max_count;
};

/* What a poll cycle found, written by the bus thread for the done callback. */
struct mb_cycle {
	unsigned requests;
	unsigned failed_requests;
	bool good;              /* the device answered, passing every check */
	unsigned decode_errors; /* answers that did not */
	char bad_what[96];      /* what was wrong with the last of them */
	bool split;             /* new_breaks has marks */
	uint16_t fail_quality;  /* a device-level failure stopped the cycle */
	uint16_t fail_detail;
	int fail_err;           /* its errno, for the event text */
};

/* The points of one device with one interval: one timer, one work item. */
struct mb_group {
	struct mb_driver *drv;
	struct mb_device *dev;
	int64_t interval_us;
	m2m_timer *timer;
	struct mb_table_plan plans[MB_TABLE_COUNT];
	struct m2m_reading *readings;
	size_t n_readings;
	struct mb_text *texts;
	size_t n_texts;
	bool busy;              /* a cycle is queued or running */
	bool probe;             /* that cycle probes an offline device */
	struct mb_cycle cyc;
	/*
	 * The hand-off of a running cycle's results block by block: the bus
	 * thread stores, with release order, how many reading slots (high 32
	 * bits) and text slots (low 32 bits) are final, then wakes the loop
	 * (drv->wake_fd); the loop loads it with acquire order and owns those
	 * slots from then on, while the bus thread goes on past them. Reset
	 * by the loop before the cycle is queued.
	 */
	_Atomic uint64_t ready;
	uint32_t handed_readings; /* loop thread: slots already submitted */
	uint32_t handed_texts;
	/* requests_per_cycle of this group, when its device has several */
	struct m2m_stat_slot requests_per_cycle;
};

/* One write, from ops.write to write_done. */
struct mb_write_op {
	struct mb_driver *drv;
	const struct mb_point *p;
	m2m_write *req;
	double value;
	uint16_t regs[4];   /* encoded value; regs[0] is the bit for a bool */
	uint16_t back[4];   /* what the read-back found */
	int err;            /* positive errno of the failure, 0 when done */
	bool mismatch;      /* the read-back differed */
};

struct mb_index {
	uint32_t id;
	uint32_t idx;
};

/* One request on the wire. */
enum mb_fc {
	FC_READ_COILS = 1,
	FC_READ_DISCRETE_INPUTS = 2,
	FC_READ_HOLDING_REGISTERS = 3,
	FC_READ_INPUT_REGISTERS = 4,
	FC_WRITE_COIL = 5,
	FC_WRITE_REGISTER = 6,
	FC_WRITE_COILS = 15,
	FC_WRITE_REGISTERS = 16
};

struct mb_request {
	int fc;
	int addr;
	int count;
	uint16_t *regs;
	uint8_t *bits;
};

/*
 * The bus thread's way to the wire, a table so that the unit test and the
 * fuzzer put a scripted device in libmodbus's place (mb-io.c has the real
 * one, mb_io_libmodbus). Everything above it, from the plan to the
 * readings, is the driver's real code.
 */
struct mb_io {
	/* Loop thread, in start(): makes what the requests need (a context). */
	int (*open)(struct mb_driver *drv);
	/* After every bus callback has run: frees it. */
	void (*close)(struct mb_driver *drv);
	/* Bus thread: sets what every request of DEV shares (unit id, timeout). */
	void (*select)(struct mb_driver *drv, const struct mb_device *dev);
	/*
	 * Bus thread: one request for DEV with its retries. Returns 0 when the
	 * answer had rq->count items, or a negative errno (libmodbus's, possibly
	 * above MODBUS_ENOBASE), with drv->why saying what was wrong with a bad
	 * answer when it knows. *REQUESTS counts what went on the wire.
	 */
	int (*request)(struct mb_driver *drv, const struct mb_device *dev,
	               const struct mb_request *rq, unsigned *requests);
};

struct mb_driver {
	m2m_host *host;
	const struct m2m_host_api *api;
	const struct mb_io *io;

	/* Bus settings. */
	int transport;
	char *tcp_host;
	int tcp_port;
	char *serial;
	int baud;
	int parity;
	int data_bits;
	int stop_bits;
	bool rs485;
	int64_t backoff_max_us;
	char *bus_name;

	struct mb_device *devices;
	size_t n_devices;
	struct mb_point *points;
	size_t n_points;
	struct mb_index *index;  /* by point id, for writes */
	struct mb_group *groups;
	size_t n_groups;

	/* Loop thread. */
	m2m_bus *bus;
	bool running;
	size_t inflight;         /* work items queued or running */
	bool submit_failed;      /* so that a failing submit logs once */
	/*
	 * An eventfd the bus thread writes after each block but a cycle's
	 * last, so that the loop submits that block's readings while the next
	 * one is read (-1: none, results wait for the cycle's end). Opened at
	 * the first start, closed in mb_free once no work can run.
	 */
	int wake_fd;
	m2m_io *wake_io;

	/* Bus thread (handed over with each work item). */
	modbus_t *ctx;
	bool connected;
	bool connect_failing;    /* so that a failing connect logs once */
	int64_t last_io_us;      /* mono end of the last request */
	uint16_t tid;            /* transaction id of our last TCP read */
	char why[96];            /* what was wrong with the last answer, or "" */
	union {
		uint16_t regs[MB_MAX_READ_REGISTERS];
		uint8_t bits[MB_MAX_READ_BITS];
	} buf;
};

/* modbus.c: the ops (hidden: modbus.so exports only its entry), and freeing. */
extern const struct m2m_driver_ops mb_driver_ops;
void mb_free(struct mb_driver *drv);

/* mb-config.c: the body of create(), and what the loop side shares with it. */
int mb_create(m2m_host *host, const struct m2m_host_api *api, const struct cJSON *config,
              void **ret_driver);
size_t mb_plan_table(struct mb_table_plan *tp);
int mb_index_cmp(const void *a, const void *b); /* struct mb_index by id */

/* mb-io.c: errors (the one place libmodbus codes are translated). */
extern const struct mb_io mb_io_libmodbus;
bool mb_is_exception(int err);
void mb_classify_error(int err, uint16_t *ret_quality, uint16_t *ret_detail,
                       bool *ret_device_down);
int mb_error_status(int err);
const char *mb_describe_error(int err, char *buf, size_t size);
/* mb-io.c: bus thread work; the done callbacks are in mb-poll.c. */
int mb_poll_work(void *arg);
int mb_write_work(void *arg);

/* mb-poll.c: the loop thread. */
void mb_poll_tick(m2m_timer *timer, void *arg);
void mb_poll_wake(m2m_io *io, int events, void *arg);
void mb_poll_done(int status, void *arg);
void mb_write_done(int status, void *arg);
int mb_write(void *driver, uint32_t point, double raw_value, m2m_write *req);
void mb_update_requests_per_cycle(struct mb_driver *drv, struct mb_device *dev);
void mb_declare_stats(struct mb_driver *drv);
