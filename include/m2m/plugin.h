/* SPDX-License-Identifier: MIT */
/*
 * m2m/plugin.h - the driver plugin ABI of m2md.
 *
 * This header is the whole contract between the m2md host and a driver
 * plugin. A plugin is a shared object that exports exactly one symbol,
 * M2M_PLUGIN_ENTRY ("m2m_plugin_entry"), and needs nothing but this header,
 * cJSON and its own protocol library.
 *
 * Rules of the ABI:
 *  - The ABI version moves on its own, not with the product version. A new
 *    major breaks old plugins; a new minor only appends.
 *  - Every table that crosses the ABI starts with its size (struct_size).
 *    Tables grow only at their end, and a reader uses a field only when the
 *    size it was given covers that field (see M2M_HAS_FIELD).
 *  - Plain value types (struct m2m_reading) are frozen for a major version;
 *    their layout is pinned by the abi test suite.
 *  - Handles are opaque both ways: the host never looks inside a driver,
 *    the driver never looks inside the host.
 *  - Every host function is called on the loop thread unless its comment
 *    says otherwise. The driver's ops are called on the loop thread.
 *  - Functions return 0 (or a count) on success and a negative errno value
 *    on failure.
 */
#ifndef M2M_PLUGIN_H
#define M2M_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define M2M_ABI_MAJOR 1
#define M2M_ABI_MINOR 1

/* The name of the one symbol a plugin exports. */
#define M2M_PLUGIN_ENTRY_NAME "m2m_plugin_entry"

#if defined(__GNUC__)
#define M2M_EXPORT __attribute__((visibility("default")))
#define M2M_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define M2M_EXPORT
#define M2M_PRINTF(fmt, args)
#endif

/* True when a table of the given size contains the field. */
#define M2M_HAS_FIELD(type, size, field) \
	((size) >= offsetof(type, field) + sizeof(((type *)0)->field))

/* cJSON is used for configuration sections; only pointers cross the ABI. */
struct cJSON;

/* Opaque handles. */
typedef struct m2m_host m2m_host;   /* the host's side of one driver instance */
typedef struct m2m_timer m2m_timer; /* a loop timer owned by a driver */
typedef struct m2m_io m2m_io;       /* an fd watch owned by a driver */
typedef struct m2m_bus m2m_bus;     /* a worker thread for one bus */
typedef struct m2m_write m2m_write; /* one pending write request */
typedef struct m2m_stat m2m_stat;   /* a declared statistic (ABI 1.1) */

/* Log levels, numerically equal to syslog's and sd-daemon's. */
enum m2m_log_level {
	M2M_LOG_ERR = 3,
	M2M_LOG_WARNING = 4,
	M2M_LOG_NOTICE = 5,
	M2M_LOG_INFO = 6,
	M2M_LOG_DEBUG = 7
};

/*
 * Quality of a reading. Anything but M2M_QUALITY_GOOD is bad; the reading
 * is still stored, so that a gap in the data always has a reason.
 */
enum m2m_quality {
	M2M_QUALITY_GOOD = 0,
	M2M_QUALITY_TIMEOUT = 1,       /* the device did not answer in time */
	M2M_QUALITY_COMM_ERROR = 2,    /* transport failed (connection, CRC) */
	M2M_QUALITY_DECODE_ERROR = 3,  /* an answer that could not be decoded */
	M2M_QUALITY_OUT_OF_RANGE = 4,  /* outside the point's configured limits */
	M2M_QUALITY_STALE = 5,         /* no fresh value within the expected time */
	M2M_QUALITY_DEVICE_ERROR = 6,  /* the device refused (detail: its code) */
	M2M_QUALITY_DRIVER_DOWN = 7    /* the driver instance is not running */
};

/*
 * One reading as a driver submits it: the raw value before the core
 * applies scale and offset. Frozen for ABI major 1 (24 bytes).
 */
struct m2m_reading {
	int64_t ts_us;    /* acquisition time, µs since the Unix epoch (UTC);
	                     0 lets the host stamp it on submission */
	double value;     /* raw value; bools are 0 or 1 */
	uint32_t point;   /* id returned by declare_point */
	uint16_t quality; /* enum m2m_quality */
	uint16_t detail;  /* reason detail, e.g. a Modbus exception code */
};

/* Events for fd watches. */
enum m2m_io_events {
	M2M_IO_READ = 1,
	M2M_IO_WRITE = 2,
	/*
	 * ABI 1.1, delivered only to a watch that asked for them, beside READ,
	 * WRITE or HUP (ERR alone cannot be watched: io_start refuses it).
	 * HUP: the peer hung up or the device went away (a socket's peer
	 * closed, a tty unplugged); the watch stays active and fires again
	 * while it lasts, so stop it or drop HUP. ERR: an error is pending on
	 * the fd (read it with SO_ERROR or the next read); the host has stopped
	 * the watch, and io_update starts it again. A hung-up tty reports both.
	 * Without them, an error is reported as READ (and the watch is stopped
	 * likewise), as in ABI 1.0.
	 */
	M2M_IO_HUP = 4,
	M2M_IO_ERR = 8
};

/* A device's state for device_state (ABI 1.1). */
enum m2m_device_state {
	M2M_DEVICE_OFFLINE = 0,
	M2M_DEVICE_ONLINE = 1
};

/* The kind of a declared statistic (ABI 1.1), as in Prometheus. */
enum m2m_stat_kind {
	M2M_STAT_COUNTER = 0, /* only grows (requests, errors); reset by a restart */
	M2M_STAT_GAUGE = 1    /* goes up and down (queue length, requests per cycle) */
};

/* Flags for bus_submit. */
enum m2m_bus_flags {
	/* Run before any queued work that is not urgent (writes ahead of polls). */
	M2M_BUS_URGENT = 1
};

typedef void (*m2m_timer_cb)(m2m_timer *timer, void *arg);
typedef void (*m2m_io_cb)(m2m_io *io, int events, void *arg);
/* Runs on the bus thread; may block. Returns a status for the done callback. */
typedef int (*m2m_bus_work_fn)(void *arg);
/*
 * Runs on the loop thread after the work ran, with the work's status, or
 * with -ECANCELED when the bus was closed before the work could run.
 */
typedef void (*m2m_bus_done_fn)(int status, void *arg);

/*
 * The functions the host offers a plugin. A const table, append-only; the
 * plugin must check struct_size before it uses a field added after ABI 1.0.
 * "host" is the handle the plugin got in create(); it is valid until the
 * host calls destroy().
 */
struct m2m_host_api {
	uint32_t struct_size;
	uint16_t abi_major;
	uint16_t abi_minor;

	/* --- logging and time --- */

	/*
	 * Logs a line prefixed with the driver's name. Any thread: a line at
	 * M2M_LOG_ERR also becomes the instance's last error in status.
	 */
	void (*log)(m2m_host *host, int level, const char *fmt, ...) M2M_PRINTF(3, 4);
	/* Wall-clock time in µs since the Unix epoch. Any thread. */
	int64_t (*now_us)(m2m_host *host);
	/* Monotonic time in µs, for intervals. Any thread. */
	int64_t (*mono_us)(m2m_host *host);

	/* --- configuration (only during create) --- */

	/*
	 * Each getter looks up KEY in the table OBJ of the driver's section and
	 * marks it as a known key: after create() the host reports any key the
	 * driver never asked for as "unknown key", so typos cannot pass. They
	 * return 1 when the key is present and valid (value in *ret), 0 when
	 * absent (*ret = def), and -EINVAL after recording an error that names
	 * file, line, key path and what was expected. A driver returns that
	 * error from create().
	 *
	 * Strings and items returned stay valid until destroy(): the host keeps
	 * the configuration a driver was created from for as long as it lives.
	 */
	int (*cfg_string)(m2m_host *host, const struct cJSON *obj, const char *key,
	                  const char *def, const char **ret);
	int (*cfg_int)(m2m_host *host, const struct cJSON *obj, const char *key,
	               int64_t def, int64_t min, int64_t max, int64_t *ret);
	int (*cfg_double)(m2m_host *host, const struct cJSON *obj, const char *key,
	                  double def, double *ret);
	int (*cfg_bool)(m2m_host *host, const struct cJSON *obj, const char *key,
	                int def, int *ret);
	/* Durations are strings like "250ms", "5s", "7d"; *ret is in µs. */
	int (*cfg_duration)(m2m_host *host, const struct cJSON *obj, const char *key,
	                    int64_t def_us, int64_t *ret_us);
	/* One of NAMES (NULL-terminated); *ret is its index. */
	int (*cfg_enum)(m2m_host *host, const struct cJSON *obj, const char *key,
	                const char *const *names, int def, int *ret);
	/*
	 * Returns the raw item for KEY (a table or an array), marking it known,
	 * or NULL when absent. The driver then reads inside it with the getters.
	 */
	const struct cJSON *(*cfg_item)(m2m_host *host, const struct cJSON *obj,
	                                const char *key);
	/*
	 * Records an error about ITEM (a message naming what was expected);
	 * the host adds file, line and key path. Returns -EINVAL, for
	 * "return api->cfg_error(...)". Only the first error is kept.
	 */
	int (*cfg_error)(m2m_host *host, const struct cJSON *item,
	                 const char *fmt, ...) M2M_PRINTF(3, 4);

	/* --- points and readings --- */

	/*
	 * Declares a point from its config table OBJ. The host reads the generic
	 * keys (name, unit, kind, writable, min, max, scale, offset, deadband,
	 * deadband_percent, description); the driver reads its address keys from
	 * the same table. The point is named DEVICE "/" name, or just name when
	 * DEVICE is NULL (then name must contain the '/'). The id is stable for
	 * the life of the database. Only during create.
	 */
	int (*declare_point)(m2m_host *host, const char *device,
	                     const struct cJSON *obj, uint32_t *ret_id);
	/*
	 * Submits N readings. The host copies them. Returns N, or a negative
	 * errno (-EINVAL for an id this instance did not declare).
	 */
	int (*submit)(m2m_host *host, const struct m2m_reading *readings, size_t n);
	/*
	 * Submits the value of a point declared with kind = "string" (a serial
	 * number, a firmware version). TS_US 0 lets the host stamp it. The host
	 * copies TEXT (at most 255 bytes are kept).
	 */
	int (*submit_text)(m2m_host *host, uint32_t point, int64_t ts_us, const char *text,
	                   uint16_t quality, uint16_t detail);

	/* --- status --- */

	/*
	 * Records an event (a device went offline, a reconnect) in the events
	 * table and the log. KIND is a short word ("online", "offline").
	 */
	void (*event)(m2m_host *host, const char *device, const char *kind,
	              const char *text);
	/*
	 * Sets a named statistic shown by m2mctl status for this driver
	 * ("requests_per_cycle.plc1"). Names up to 63 bytes. ABI 1.0: an
	 * unlabelled gauge; new drivers use stat_declare.
	 */
	void (*stat)(m2m_host *host, const char *name, double value);

	/* --- timers and fd watches --- */

	/* Starts a timer firing after TIMEOUT_MS, then every REPEAT_MS (0: once). */
	int (*timer_start)(m2m_host *host, uint64_t timeout_ms, uint64_t repeat_ms,
	                   m2m_timer_cb cb, void *arg, m2m_timer **ret);
	/* Stops and frees a timer. NULL is fine. */
	void (*timer_stop)(m2m_timer *timer);
	/*
	 * Watches FD for EVENTS (enum m2m_io_events). The fd stays the driver's.
	 * io_update changes EVENTS (0 pauses the watch).
	 */
	int (*io_start)(m2m_host *host, int fd, int events, m2m_io_cb cb, void *arg,
	                m2m_io **ret);
	int (*io_update)(m2m_io *io, int events);
	/* Stops and frees a watch. NULL is fine. */
	void (*io_stop)(m2m_io *io);

	/* --- blocking work on bus threads --- */

	/*
	 * Opens (or shares) the worker thread of the bus NAME ("tcp:host:502",
	 * "rtu:/dev/ttyUSB0") within this driver instance. Work submitted to one
	 * bus runs one item at a time, in order, urgent items first.
	 */
	int (*bus_open)(m2m_host *host, const char *name, m2m_bus **ret);
	int (*bus_submit)(m2m_bus *bus, int flags, m2m_bus_work_fn work,
	                  m2m_bus_done_fn done, void *arg);
	/* Number of work items queued and not yet started. */
	size_t (*bus_pending)(m2m_bus *bus);

	/* --- writes --- */

	/*
	 * Completes a write the host handed to ops.write: STATUS 0 for success
	 * or a negative errno. Exactly once per request.
	 */
	void (*write_done)(m2m_write *req, int status, const char *error_text);

	/* --- ABI 1.1: check M2M_HAS_FIELD(struct m2m_host_api, size, field) --- */

	/*
	 * Rearms a running or fired timer, also from its own callback: first
	 * after TIMEOUT_MS, then every REPEAT_MS (0: once), without freeing it.
	 * For libraries that change their timeout on every iteration (sd-bus,
	 * libmosquitto). A TIMEOUT_MS of 0 from the timer's own callback waits
	 * for the next loop iteration. Returns 0, or -EINVAL for NULL.
	 */
	int (*timer_update)(m2m_timer *timer, uint64_t timeout_ms, uint64_t repeat_ms);
	/*
	 * Says that DEVICE (the name given to declare_point, or NULL for the
	 * whole instance) is online or offline (enum m2m_device_state), with a
	 * short REASON ("connection refused", "no answer for 3 polls"; for
	 * ONLINE an optional note for the event, or NULL). Repeating the current
	 * state is cheap and makes no event; an offline device's reason is
	 * replaced. The host records each change as an event (kind "online" or
	 * "offline", with from_state and to_state), shows offline devices in
	 * status and points, and tells the north side (availability, Sparkplug
	 * DDEATH). The host copies DEVICE and REASON.
	 */
	void (*device_state)(m2m_host *host, const char *device, int state,
	                     const char *reason);
	/*
	 * Declares a statistic NAME (lower case, digits, '_'; up to 63 bytes)
	 * of KIND (enum m2m_stat_kind) for DEVICE (NULL: the whole instance),
	 * with a one-line HELP, as exported to status and metrics (status shows
	 * "name.device"). Usually in create or start, or when a device is
	 * discovered. The handle lives until destroy(). Declaring the same name
	 * and device again returns the same handle. Returns 0, -EINVAL for a
	 * bad name, kind or an empty DEVICE, -ENAMETOOLONG when "name.device"
	 * exceeds 63 bytes, -ENOSPC past 16384 statistics of the instance.
	 */
	int (*stat_declare)(m2m_host *host, const char *name, const char *device, int kind,
	                    const char *help, m2m_stat **ret);
	/* Sets a declared statistic's value. */
	void (*stat_set)(m2m_stat *stat, double value);
};

/*
 * Driver operations. DRIVER is what create() returned. Called on the loop
 * thread.
 */
struct m2m_driver_ops {
	uint32_t struct_size;

	/*
	 * Parses and validates CONFIG (the driver's section) and declares its
	 * points; no I/O yet. Used both to run and for m2md --check.
	 */
	int (*create)(m2m_host *host, const struct m2m_host_api *api,
	              const struct cJSON *config, void **ret_driver);
	/* Starts I/O. A failure is reported and retried with backoff. */
	int (*start)(void *driver);
	/*
	 * Stops I/O: stops timers and watches. Bus work still queued is
	 * cancelled by the host afterwards (done gets -ECANCELED), so the driver
	 * must keep what those callbacks need until destroy().
	 */
	void (*stop)(void *driver);
	/* Frees the driver; called after every bus callback has run. */
	void (*destroy)(void *driver);
	/*
	 * Writes RAW_VALUE (engineering value already turned back into raw by
	 * the host, and checked against writable and limits) to POINT.
	 * Returns 0 when the request is accepted: the driver then calls
	 * api->write_done(req, ...) exactly once, during this call or later.
	 * Returns a negative errno to refuse it at once: then the driver must
	 * not call write_done (the host answers the requester). NULL when the
	 * driver writes nothing.
	 */
	int (*write)(void *driver, uint32_t point, double raw_value, m2m_write *req);
};

/* What a plugin's entry function returns. */
struct m2m_plugin {
	uint32_t struct_size;
	uint16_t abi_major; /* must equal the host's */
	uint16_t abi_minor; /* the lowest host minor the plugin needs: the
	                       host refuses a plugin whose minor exceeds its own */
	const char *name;
	const char *version;
	const char *description;
	const struct m2m_driver_ops *ops;
};

/*
 * The entry function. HOST_ABI_MAJOR/MINOR are the host's; the plugin
 * returns its descriptor, or NULL to refuse a host it cannot work with.
 */
typedef const struct m2m_plugin *(*m2m_plugin_entry_fn)(uint32_t host_abi_major,
                                                         uint32_t host_abi_minor);

#ifdef __cplusplus
#define M2M_PLUGIN_ENTRY_LINKAGE extern "C"
#else
#define M2M_PLUGIN_ENTRY_LINKAGE
#endif

/*
 * The entry function every plugin defines (and the host never does): it is
 * declared here so that plugins compile cleanly with -Wmissing-prototypes.
 */
M2M_EXPORT const struct m2m_plugin *m2m_plugin_entry(uint32_t host_abi_major,
                                                     uint32_t host_abi_minor);

/* Starts the definition of the entry function in a plugin: M2M_PLUGIN_ENTRY { ... } */
#define M2M_PLUGIN_ENTRY                                                   \
	M2M_PLUGIN_ENTRY_LINKAGE M2M_EXPORT const struct m2m_plugin *          \
	m2m_plugin_entry(uint32_t host_abi_major, uint32_t host_abi_minor)

#ifdef __cplusplus
}
#endif

#endif /* M2M_PLUGIN_H */
