/* SPDX-License-Identifier: MIT */
/*
 * can-driver.h - the SocketCAN driver's own header: the structs its files
 * share.
 *
 * The driver follows the Modbus template's seams, without a bus thread:
 *
 *   can.c         the plugin entry, the ops, start/stop, rebinding, stale checks
 *   can-config.c  create(): DBC files, inline messages, the signal selection
 *   can-io.c      the sockets: CAN_RAW receive and send, CAN_BCM, error frames
 *   can-j1939.c   J1939 sends (CAN_J1939, completion from the error queue) and
 *                 address claiming
 *
 * beside the pure codec (can-dbc.c, can-signal.c). Everything runs on the
 * loop thread: the CAN_RAW socket is non-blocking and watched by the host,
 * and each callback drains a bounded number of frames.
 *
 * Nothing here is an ABI: these names stay inside can.so (hidden
 * visibility).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/can.h>
#include <linux/can/j1939.h>

#include "can-dbc.h"
#include "can-signal.h"
#include "m2m/plugin-util.h"
#include "m2m/plugin.h"

#define CAN_VERSION "1.0.0"

/* Frames read per recvmmsg call, and calls per fd callback. */
#define CAN_RX_BATCH 32
#define CAN_RX_CALLS 8
/* The kernel's limit of CAN_RAW_FILTER entries (CAN_RAW_FILTER_MAX). */
#define CAN_MAX_FILTERS 512
/* Writes waiting for their own frame to come back, per instance. */
#define CAN_MAX_PENDING_WRITES 16

/* A bus state point's values, as in the kernel's enum can_state. */
enum can_bus_state {
	CAN_BUS_ERROR_ACTIVE = 0,
	CAN_BUS_ERROR_WARNING = 1,
	CAN_BUS_ERROR_PASSIVE = 2,
	CAN_BUS_OFF = 3,
};

struct can_driver;

/*
 * The lookup key of a J1939 message from source SA: the RTR flag marks it,
 * which no key of a raw frame has (RTR frames are never looked up).
 */
static inline uint32_t can_j1939_key(uint32_t pgn, uint8_t sa)
{
	return 0x40000000u | (pgn << 8) | sa;
}

/* A device: the name before the '/' of its points, with its messages. */
struct can_device {
	char *name;
	size_t n_msgs;
	size_t n_stale;   /* of its messages, stale or never seen since start */
	int state;        /* -1 unknown, else enum m2m_device_state */
};

/* One selected signal of a message, and its point(s). */
struct can_sel {
	size_t index;          /* in the message's signals */
	uint32_t point;
	uint32_t text_point;   /* the ".text" point of its value table, or UINT32_MAX */
	int64_t min_interval_us;
	bool on_change;
	bool writable;
	/* Loop thread. */
	bool have_last;
	uint64_t last_raw;     /* as last submitted */
	int64_t last_mono_us;
};

/* One received message: its definition, device and selected signals. */
struct can_rx {
	const struct can_message *m;
	uint32_t key;          /* can_id as the kernel gives it: id | CAN_EFF_FLAG for 29 bits */
	struct can_device *dev;
	struct can_sel *sels;
	size_t n_sels;
	int64_t stale_us;      /* 0: never stale */
	int64_t tx_cycle_us;   /* writes go out every cycle (CAN_BCM); 0: once */
	uint8_t j1939_da;      /* J1939 writes go to this address (J1939_NO_ADDR: broadcast) */
	/* The frame a write starts from: the last one seen, else the start values. */
	uint8_t data[CAN_MAX_PAYLOAD];
	bool have_data;
	/* Loop thread. */
	int64_t last_mono_us;
	bool stale;
	bool bcm_active;       /* a cyclic transmission is set up */
	bool tx_started;       /* written at least once: a cycle resumes after a rebind */
};

/* A write waiting for its frame to come back from the kernel. */
struct can_write {
	m2m_write *req;
	struct can_rx *rx;
	uint8_t data[CAN_MAX_PAYLOAD];
	uint8_t len;
	bool cyclic;
	bool sent;
	bool j1939;            /* sent on the CAN_J1939 socket, done by its error queue */
	uint32_t tskey;        /* the kernel's key of that transmission (SOF_TIMESTAMPING_OPT_ID) */
	int tries;
	int64_t deadline_mono_us;
};

/* An inline message of the config, owned by the driver (not by a DBC). */
struct can_inline {
	struct can_message m;
};

/* The address claim's states, as the j1939_claim point gives them. */
enum can_j1939_claim {
	CAN_J1939_CLAIMING = 0,     /* Address Claimed sent, the 250ms not over */
	CAN_J1939_CLAIMED = 1,
	CAN_J1939_CANNOT_CLAIM = 2, /* every address of the range is held by a lower NAME */
};

/* J1939 as a sender: a static address, or a NAME that claims one. */
struct can_j1939 {
	bool claim;             /* a NAME is configured: claim an address */
	uint64_t name;
	int address;            /* the static or preferred address, -1: none */
	uint8_t lo, hi;         /* the range to try after the preferred one */
	bool have_range;
	uint32_t addr_point, claim_point;  /* UINT32_MAX when not declared */
	/* Loop thread. */
	int fd;                 /* the sending socket, bound to the address or the NAME */
	m2m_io *io;
	m2m_timer *timer;       /* the 250ms of a claim */
	uint32_t next_key;      /* the kernel's key of the next transmission */
	int cur;                /* the address claimed or being claimed; J1939_IDLE_ADDR: none */
	int state;              /* enum can_j1939_claim */
	bool claim_sent;        /* the claim of cur went out: its 250ms run */
	uint64_t held[J1939_MAX_UNICAST_ADDR + 1];  /* NAMEs seen claiming each address */
};

struct can_stats {
	struct m2m_stat_slot frames, error_frames, drops, overruns, decode_errors, unknown,
		tx_frames, tx_retries, tx_errors, rx_errors, bus_off;
};

struct can_driver {
	m2m_host *host;
	const struct m2m_host_api *api;

	char *ifname;
	char *bus_device;       /* device of the bus points */
	bool fd;                /* CAN FD frames on the socket */
	int64_t rebind_max_us;  /* backoff limit while the interface is gone */
	int64_t write_timeout_us;
	int rcvbuf;             /* the CAN_RAW socket's receive buffer, bytes */

	struct can_dbc **dbcs;
	char **dbc_names;       /* their paths, for messages */
	size_t n_dbcs;
	struct can_inline *inl;
	size_t n_inl;

	struct can_device *devices;
	size_t n_devices;
	struct can_rx *rx;      /* sorted by key */
	size_t n_rx;
	size_t max_sels;        /* of any message, for the readings buffer */
	size_t n_j1939;         /* selected J1939 signals: a CAN_J1939 socket is needed */
	struct m2m_reading *readings;  /* bad readings of one message */
	struct m2m_reading *pending;   /* good ones of a receive batch, not yet submitted */
	size_t n_pending, cap_pending;
	uint32_t bus_state_point;
	int64_t min_stale_us;   /* the smallest stale timeout, 0: none */

	/* Loop thread. */
	bool running;
	int fd_raw;
	int fd_bcm;
	int fd_j1939;
	m2m_io *io;
	m2m_io *io_j1939;
	m2m_timer *tick;        /* stale checks, write timeouts, link polls */
	m2m_timer *rebind;
	int64_t rebind_backoff_us;
	m2m_timer *retry;       /* ENOBUFS backoff of the write queue */
	int64_t retry_backoff_us;
	bool iface_down;        /* the link is down (ENETDOWN) */
	bool iface_gone;        /* the interface was removed: the socket is closed */
	bool ts_new;            /* SO_TIMESTAMP_NEW is on (else _OLD) */
	uint32_t ovfl_last;     /* SO_RXQ_OVFL's count when last seen */
	int bus_state;
	uint64_t frames, error_frames, drops, overruns, decode_errors, unknown, tx_frames,
		tx_retries, bus_off;
	struct can_write writes[CAN_MAX_PENDING_WRITES];
	size_t n_writes;
	struct can_stats st;
	struct can_j1939 j1939;
};

/* can.c: the ops, freeing, and what the socket side calls back into. */
extern const struct m2m_driver_ops can_driver_ops;
void can_free(struct can_driver *drv);
void can_link_down(struct can_driver *drv, int err);
void can_link_came_up(struct can_driver *drv);
uint8_t can_frame_len(const struct can_message *m);
void can_frame_received(struct can_driver *drv, struct can_rx *rx, const uint8_t *data,
                        size_t len, int64_t ts_us, int64_t mono_us);
void can_flush_readings(struct can_driver *drv);

/* can-config.c: the body of create(). */
int can_create(m2m_host *host, const struct m2m_host_api *api, const struct cJSON *config,
               void **ret_driver);
struct can_rx *can_rx_find(struct can_driver *drv, uint32_t key);

/* can-io.c: the sockets. */
int can_io_open(struct can_driver *drv);
/*
 * One frame as recvmmsg gave it (MTU: CAN_MTU or CANFD_MTU, FLAGS: its
 * msg_flags): an error frame, a frame of ours coming back, or a selected
 * message to decode. The fuzz target calls it with a hostile bus's frames.
 */
void can_io_frame(struct can_driver *drv, const struct canfd_frame *f, size_t mtu, int flags,
                  int64_t ts_us, int64_t mono_us);
void can_io_close(struct can_driver *drv);
void can_io_readable(m2m_io *io, int events, void *arg);
int can_io_send(struct can_driver *drv, struct can_write *w);
int can_io_link_up(const struct can_driver *drv);
void can_io_publish_stats(struct can_driver *drv);
void can_io_count_drops(struct can_driver *drv, uint32_t ovfl);
void can_io_poll_drops(struct can_driver *drv);
int can_io_watch_events(const struct can_driver *drv);

/* can-j1939.c: J1939 sends and address claiming. */
bool can_j1939_sends(const struct can_driver *drv);
int can_j1939_open(struct can_driver *drv);
void can_j1939_close(struct can_driver *drv);
/*
 * What a J1939 message from the bus asks of the address claim, without I/O
 * (fuzz/fuzz-j1939-claim.c drives it with any bytes): Address Claimed
 * (0xEE00) updates J's record of the NAMEs holding addresses; a Request
 * (0xEA00) for it to all or to us, or a higher NAME's claim of our address,
 * is answered with our claim; a lower NAME's claim of it makes us yield and
 * claim *RET_ADDR instead (-1: none left, Cannot Claim).
 */
enum can_j1939_verdict {
	CAN_J1939_NOTHING,
	CAN_J1939_ANSWER,
	CAN_J1939_YIELD,
};
enum can_j1939_verdict can_j1939_decide(struct can_j1939 *j, uint32_t pgn, uint8_t sa, uint8_t da,
                                        const uint8_t *data, size_t len, int *ret_addr);
/* A message the receiving CAN_J1939 socket got: the claim looks at 0xEE00 and 0xEA00. */
void can_j1939_network(struct can_driver *drv, uint32_t pgn, uint8_t sa, uint8_t da,
                       uint64_t src_name, const uint8_t *data, size_t len);
/* 0, or why a J1939 write cannot go now (-EADDRNOTAVAIL) with WHY set. */
int can_j1939_can_send(const struct can_driver *drv, const char **why);
int can_j1939_send(struct can_driver *drv, struct can_write *w);
