/* SPDX-License-Identifier: MIT */
/*
 * m2mctl: the local command line of m2md.
 *
 * Everything live (status, points, read, write, rules, ack, reload, tail)
 * goes through the daemon's control socket with the protocol of
 * ctl-proto.h; history and events read the SQLite file directly, read-only,
 * so they work while the daemon is down. Human tables by default, --json
 * for scripts; the exit status says what kind of failure happened (see
 * help()).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>
#include <sqlite3.h>

#include "config.h"
#include "ctl-proto.h"
#include "error.h"
#include "fmt.h"
#include "m2m-build.h"
#include "point.h"
#include "util.h"

/* Exit statuses; documented in help() and docs/m2mctl.md. */
enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,      /* the daemon tried and failed (a device error), or anything else */
	EXIT_USAGE = 2,     /* unknown command or option, a value that does not parse */
	EXIT_DOWN = 3,      /* the daemon is not running: no socket, nobody listening */
	EXIT_DENIED = 4,    /* the socket or the daemon refused this user */
	EXIT_NOTFOUND = 5,  /* unknown point, rule or device */
	EXIT_REFUSED = 6,   /* the write was refused: read-only, outside limits, driver down */
	EXIT_TIMEOUT = 7,   /* no answer in time */
	EXIT_DB = 8,        /* the database cannot be read (history, events) */
};

/* The largest reply line m2mctl accepts; a status of thousands of drivers fits. */
#define MAX_REPLY (64u * 1024u * 1024u)
#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_WATCH_S 2.0
#define DEFAULT_EVENTS 50

/* The command line, parsed once; read-only afterwards. */
struct opts {
	const char *socket;
	const char *config;
	bool json;
	bool csv;
	bool watch;
	double interval_s;
	int timeout_ms;
	const char *device;
	bool all;
	const char *since;
	const char *until;
	int64_t limit;
};

/* One connection to the daemon. */
struct conn {
	int fd;
	char *buf;
	size_t len, cap;
	double next_id;
};

static void help(void) {
	printf("Usage: m2mctl [OPTIONS] COMMAND [ARGS]\n"
	       "\n"
	       "Controls and inspects the m2md gateway on this machine.\n"
	       "\n"
	       "Commands:\n"
	       "  status [--watch [--interval S]]  version, uptime, loop lag, drivers, MQTT,\n"
	       "                                   storage and active alarms\n"
	       "  points [--device D]              points with their latest values\n"
	       "  read POINT                       one point's latest value\n"
	       "  write POINT VALUE                write to an actuator (number, true/false, on/off)\n"
	       "  rules [--all]                    alarms that are not normal (--all: every\n"
	       "                                   rule and point, normal ones too)\n"
	       "  ack RULE [POINT]                 acknowledge a latched alarm\n"
	       "  reload                           reload the configuration (as SIGHUP)\n"
	       "  tail [PATTERN]                   live readings, optionally of points matching a\n"
	       "                                   shell pattern (\"boiler1/*\")\n"
	       "  history POINT [--since 1h] [--until T] [--limit N] [--csv]\n"
	       "                                   stored readings, read from the database\n"
	       "  events [--since 1h] [--limit N]  stored events (alarms, writes, reloads)\n"
	       "  metrics                          every counter and gauge in the Prometheus\n"
	       "                                   text format\n"
	       "\n"
	       "Options:\n"
	       "  -s, --socket PATH   control socket (default: $M2M_SOCKET, the config's\n"
	       "                      [control] socket with -c, else %s)\n"
	       "  -c, --config FILE   m2md's configuration, for the socket and database paths\n"
	       "                      (default %s when it is readable)\n"
	       "      --json          machine-readable output, one JSON document (tail: one per line)\n"
	       "      --timeout S     wait at most S seconds for an answer (default %d)\n"
	       "      --version       print the version\n"
	       "  -h, --help          print this help\n"
	       "\n"
	       "Times for --since and --until: a duration back from now (\"90s\", \"1h\", \"7d\"),\n"
	       "or a UTC time \"2024-05-01T12:00:00Z\" (or \"2024-05-01 12:00:00\").\n"
	       "\n"
	       "Exit status:\n"
	       "  0  success\n"
	       "  1  failure (the daemon tried and the device or the daemon failed)\n"
	       "  2  usage: unknown command or option, a value that does not parse\n"
	       "  3  m2md is not running (no socket, or nobody listening on it)\n"
	       "  4  permission denied (by the socket's mode or the daemon's peer check)\n"
	       "  5  unknown point, rule or device\n"
	       "  6  write refused: read-only point, value outside its limits, driver down\n"
	       "  7  no answer in time\n"
	       "  8  the database cannot be read\n",
	       CTL_DEFAULT_SOCKET, M2M_CONFIG_FILE, DEFAULT_TIMEOUT_MS / 1000);
}

/* Every failure ends in exactly one line on stderr and an exit status. */
static int fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(int code, const char *fmt, ...) {
	va_list ap;

	fputs("m2mctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

/* --- configuration: where the socket and the database are --- */

struct paths {
	char *socket; /* from [control] socket, or NULL */
	char *db;     /* from [storage] path, or NULL */
};

/*
 * Reads the two paths m2mctl needs from m2md's config. Only these keys are
 * read: validating the rest is m2md --check's job, and a config with a
 * plugin section m2mctl knows nothing about must not stop it.
 */
static int read_config_paths(const char *path, struct paths *ret, char **ret_error) {
	const cJSON *root, *t, *v;
	config *c = NULL;
	int r;

	r = config_load(path, NULL, &c, ret_error);
	if (r < 0)
		return r;
	root = config_root(c);
	t = cJSON_GetObjectItemCaseSensitive(root, "control");
	v = cJSON_GetObjectItemCaseSensitive(t, "socket");
	if (cJSON_IsString(v) && v->valuestring[0])
		ret->socket = path_relative_to(path, v->valuestring);
	t = cJSON_GetObjectItemCaseSensitive(root, "storage");
	v = cJSON_GetObjectItemCaseSensitive(t, "path");
	ret->db = path_relative_to(path, cJSON_IsString(v) && v->valuestring[0] ? v->valuestring
	                                                                        : M2M_DB_FILE);
	config_free(c);
	return ret->db ? 0 : -ENOMEM;
}

/* --- the socket --- */

static int exit_for_errno(int err) {
	switch (err) {
	case -ENOENT:
		return EXIT_NOTFOUND;
	case -EACCES:
	case -EPERM:
		return EXIT_DENIED;
	case -ETIMEDOUT:
		return EXIT_TIMEOUT;
	case M2M_ENOTWRITABLE:
	case M2M_ELIMIT:
	case M2M_EDRIVERDOWN:
	case -EOPNOTSUPP:
	case -EINVAL:
	case -ERANGE:
		return EXIT_REFUSED;
	default:
		return EXIT_FAIL;
	}
}

static void conn_done(struct conn *c) {
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
	c->fd = -1;
	c->buf = NULL;
}

/* Connects to PATH; on failure prints the one line and returns the exit status. */
static int conn_open(const char *path, struct conn *ret) {
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	*ret = (struct conn){ .fd = -1, .next_id = 1 };
	if (strlen(path) >= sizeof(sa.sun_path))
		return fail(EXIT_USAGE, "socket path too long: %s", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail(EXIT_FAIL, "cannot create a socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		switch (e) {
		case ENOENT:
			return fail(EXIT_DOWN, "m2md is not running (no socket at %s)", path);
		case ECONNREFUSED:
			return fail(EXIT_DOWN, "m2md is not running (nobody listening on %s)", path);
		case EACCES:
		case EPERM:
			return fail(EXIT_DENIED, "permission denied on %s (members of the socket's group "
			            "may use it: see 'ls -l %s')", path, path);
		default:
			return fail(EXIT_DOWN, "cannot connect to %s: %s", path, strerror(e));
		}
	}
	ret->fd = fd;
	return EXIT_OK;
}

static int send_all(int fd, const char *p, size_t n) {
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * Reads one line into *ret (malloc'd, without the newline). TIMEOUT_MS < 0
 * waits forever. 0, -ETIMEDOUT, -ECONNRESET (the daemon closed), -EMSGSIZE
 * or another negative errno.
 */
static int conn_read_line(struct conn *c, int timeout_ms, char **ret) {
	int64_t deadline = timeout_ms < 0 ? INT64_MAX : mono_us() + (int64_t)timeout_ms * 1000;

	for (;;) {
		char *nl = c->len ? memchr(c->buf, '\n', c->len) : NULL;
		if (nl) {
			size_t n = (size_t)(nl - c->buf);
			char *line = malloc(n + 1);
			if (!line)
				return -ENOMEM;
			memcpy(line, c->buf, n);
			line[n] = '\0';
			memmove(c->buf, nl + 1, c->len - n - 1);
			c->len -= n + 1;
			*ret = line;
			return 0;
		}
		if (c->len == c->cap) {
			size_t cap = c->cap ? c->cap * 2 : 4096;
			char *p;
			if (c->cap >= MAX_REPLY)
				return -EMSGSIZE;
			p = realloc(c->buf, cap);
			if (!p)
				return -ENOMEM;
			c->buf = p;
			c->cap = cap;
		}
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
		int64_t left = deadline == INT64_MAX ? -1 : (deadline - mono_us()) / 1000;
		if (deadline != INT64_MAX && left <= 0)
			return -ETIMEDOUT;
		int r = poll(&pfd, 1, left > INT32_MAX ? INT32_MAX : (int)left);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -ETIMEDOUT;
		ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		if (n == 0)
			return -ECONNRESET;
		c->len += (size_t)n;
	}
}

/*
 * Sends CMD with ARGS (may be NULL) and waits for the reply. On success
 * returns EXIT_OK with *ret_result (may be NULL; caller frees). On failure
 * prints one line and returns the exit status.
 */
static int call(struct conn *c, const struct opts *o, const char *cmd, const cJSON *args,
                cJSON **ret_result) {
	double id = c->next_id++;
	char *line = ctl_request_format(id, cmd, args), *reply = NULL;
	const cJSON *rid, *ok, *code, *err;
	cJSON *j;
	int r;

	if (!line)
		return fail(EXIT_FAIL, "out of memory");
	r = send_all(c->fd, line, strlen(line));
	free(line);
	/* A refused peer may be told so and cut off before it even sent: read that answer. */
	if (r < 0 && r != -EPIPE && r != -ECONNRESET)
		return fail(EXIT_DOWN, "cannot send to m2md: %s", strerror(-r));
	r = conn_read_line(c, o->timeout_ms, &reply);
	if (r == -ETIMEDOUT)
		return fail(EXIT_TIMEOUT, "no answer from m2md within %.1fs", o->timeout_ms / 1000.0);
	if (r == -ECONNRESET || r == -EPIPE)
		return fail(EXIT_DOWN, "m2md closed the connection without answering");
	if (r < 0)
		return fail(EXIT_FAIL, "cannot read the answer of m2md: %s", strerror(-r));
	j = cJSON_Parse(reply);
	free(reply);
	if (!cJSON_IsObject(j)) {
		cJSON_Delete(j);
		return fail(EXIT_FAIL, "m2md answered something that is not a JSON object");
	}
	ok = cJSON_GetObjectItemCaseSensitive(j, "ok");
	rid = cJSON_GetObjectItemCaseSensitive(j, "id");
	if (!cJSON_IsTrue(ok)) {
		code = cJSON_GetObjectItemCaseSensitive(j, "code");
		err = cJSON_GetObjectItemCaseSensitive(j, "error");
		int e = ctl_errno_from_name(cJSON_IsString(code) ? code->valuestring : NULL);
		/* An answer to no request (id null) is about the connection: the peer check. */
		bool conn_level = !cJSON_IsNumber(rid);
		int status = conn_level && e == -EACCES ? EXIT_DENIED
		           : conn_level && e == -EBUSY ? EXIT_DOWN : exit_for_errno(e);
		fail(status, "%s", cJSON_IsString(err) ? err->valuestring : m2m_strerror(e));
		cJSON_Delete(j);
		return status;
	}
	if (!cJSON_IsNumber(rid) || rid->valuedouble != id) {
		cJSON_Delete(j);
		return fail(EXIT_FAIL, "m2md answered another request (id mismatch)");
	}
	if (ret_result)
		*ret_result = cJSON_DetachItemFromObjectCaseSensitive(j, "result");
	cJSON_Delete(j);
	return EXIT_OK;
}

/* Connects, calls once, disconnects. */
static int call_once(const struct opts *o, const char *cmd, const cJSON *args, cJSON **ret) {
	struct conn c;
	int r = conn_open(o->socket, &c);

	if (r == EXIT_OK)
		r = call(&c, o, cmd, args, ret);
	conn_done(&c);
	return r;
}

/* --- formatting --- */

static double num(const cJSON *o, const char *key) {
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static const char *str(const cJSON *o, const char *key, const char *def) {
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) && v->valuestring ? v->valuestring : def;
}

static int print_json(const cJSON *j) {
	char *s = json_print(j, true);

	if (!s)
		return fail(EXIT_FAIL, "out of memory");
	puts(s);
	free(s);
	return EXIT_OK;
}

/* Display width of S, counted in UTF-8 code points ("°C" is 2, not 3). */
static size_t text_width(const char *s) {
	size_t n = 0;

	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

/*
 * Prints S in a column of WIDTH code points, left aligned (right when
 * RIGHT), cut with "…" when longer, so one long value cannot shift the
 * columns after it. The full text is in --json and --csv.
 */
static void print_cell(const char *s, size_t width, bool right) {
	size_t w = text_width(s);

	if (w > width) {
		size_t keep = width ? width - 1 : 0, i = 0;
		const char *p = s;

		/* Cut at a code point boundary. */
		for (; *p; p++) {
			if (((unsigned char)*p & 0xc0) != 0x80 && i++ == keep)
				break;
		}
		fwrite(s, 1, (size_t)(p - s), stdout);
		if (width)
			fputs("…", stdout);
		return;
	}
	if (right)
		printf("%*s", (int)(width - w), "");
	fputs(s, stdout);
	if (!right)
		printf("%*s", (int)(width - w), "");
}

/*
 * One table row: WIDTHS[i] > 0 is a left-aligned column of that many code
 * points, < 0 a right-aligned one, 0 the last column, printed whole.
 * Columns are separated by one space.
 */
static void print_row(const int *widths, const char *const *cells, size_t n) {
	for (size_t i = 0; i < n; i++) {
		if (i)
			putchar(' ');
		if (widths[i] == 0)
			fputs(cells[i], stdout);
		else
			print_cell(cells[i], (size_t)abs(widths[i]), widths[i] < 0);
	}
	putchar('\n');
}

/* "2024-05-01T12:00:00.123Z" for µs since the epoch. */
static const char *format_time(int64_t us, char *buf, size_t n) {
	if (us < 0 || format_utc(us, 3, buf, n) < 0)
		snprintf(buf, n, "-");
	return buf;
}

static const char *format_age(double ts_us, char *buf, size_t n) {
	if (!isfinite(ts_us)) {
		snprintf(buf, n, "-");
		return buf;
	}
	int64_t age = now_us() - (int64_t)ts_us;
	return format_duration(age < 0 ? 0 : age - age % 1000, buf, n);
}

static const char *format_uptime(double s, char *buf, size_t n) {
	uint64_t t = isfinite(s) && s > 0 ? (uint64_t)s : 0;

	if (t >= 86400)
		snprintf(buf, n, "%" PRIu64 "d %02" PRIu64 "h%02" PRIu64 "m", t / 86400, t / 3600 % 24,
		         t / 60 % 60);
	else if (t >= 3600)
		snprintf(buf, n, "%" PRIu64 "h%02" PRIu64 "m", t / 3600, t / 60 % 60);
	else
		snprintf(buf, n, "%" PRIu64 "m%02" PRIu64 "s", t / 60, t % 60);
	return buf;
}

static const char *format_bytes(double b, char *buf, size_t n) {
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	size_t u = 0;

	while (b >= 1024 && u + 1 < ELEMENTSOF(units)) {
		b /= 1024;
		u++;
	}
	snprintf(buf, n, u ? "%.1f %s" : "%.0f %s", b, units[u]);
	return buf;
}

/* A value as a person reads it: integers without ".0", others with up to 6 digits. */
static const char *format_value(const cJSON *v, char *buf, size_t n) {
	/* The text itself: a copy into BUF would cut a long one, maybe inside a character. */
	if (cJSON_IsString(v))
		return v->valuestring;
	if (cJSON_IsNumber(v))
		snprintf(buf, n, "%.6g", v->valuedouble);
	else
		snprintf(buf, n, "-");
	return buf;
}

/* When a rule's state began; "-" for a rule that never left normal (since_us 0). */
static const char *format_since(const cJSON *rule, char *buf, size_t n) {
	double since = num(rule, "since_us");

	if (!isfinite(since) || since <= 0) {
		snprintf(buf, n, "-");
		return buf;
	}
	return format_time((int64_t)since, buf, n);
}

/*
 * A reading's quality, with the reason's detail when there is one:
 * "device_error: illegal data address (2)".
 */
static const char *format_quality(const cJSON *p, char *buf, size_t n) {
	const char *q = str(p, "quality", "-"), *why = str(p, "detail", "");

	if (why[0])
		snprintf(buf, n, "%s: %s", q, why);
	else
		snprintf(buf, n, "%s", q);
	return buf;
}

/*
 * A driver's statistics summed per name over its devices, in the order the
 * daemon lists them. Whatever the plugin declares is shown; m2mctl knows no
 * plugin's names.
 */
struct stat_total {
	char name[64];
	double sum;
};

#define STAT_TOTALS_MAX 32

/* Adds VALUE to the total of NAME (LEN bytes); counts what the table has no room for in *MORE. */
static void stat_add(struct stat_total *t, size_t *n, size_t *more, const char *name, size_t len,
                     double value) {
	size_t i;

	if (len == 0 || len >= sizeof(t->name) || !isfinite(value))
		return;
	for (i = 0; i < *n; i++)
		if (strlen(t[i].name) == len && memcmp(t[i].name, name, len) == 0)
			break;
	if (i == *n) {
		if (*n == STAT_TOTALS_MAX) {
			(*more)++;
			return;
		}
		memcpy(t[i].name, name, len);
		t[i].name[len] = '\0';
		t[i].sum = 0;
		(*n)++;
	}
	t[i].sum += value;
}

/*
 * Totals of DRV's statistics. Two shapes: "metrics", a list of
 * {"name", "device", "kind", "value"} (typed statistics), and the older
 * "stats" object of "name.device": value ("name" for the whole instance).
 * When a daemon sends both, "metrics" is the whole truth.
 */
static size_t stat_totals(const cJSON *drv, struct stat_total *t, size_t *more) {
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(drv, "metrics");
	const cJSON *v;
	size_t n = 0;

	*more = 0;
	if (cJSON_IsArray(list)) {
		cJSON_ArrayForEach(v, list) {
			const char *name = str(v, "name", "");
			stat_add(t, &n, more, name, strlen(name), num(v, "value"));
		}
		return n;
	}
	cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(drv, "stats")) {
		const char *dot;

		if (!v->string || !cJSON_IsNumber(v))
			continue;
		dot = strchr(v->string, '.');
		stat_add(t, &n, more, v->string, dot ? (size_t)(dot - v->string) : strlen(v->string),
		         v->valuedouble);
	}
	return n;
}

/* One "name value" item of a statistics line, wrapped before 100 columns. */
static void stats_item(const char *item, size_t *col) {
	size_t len = strlen(item);

	if (*col && *col + 3 + len > 100) {
		putchar('\n');
		*col = 0;
	}
	printf(*col ? "   %s" : "  %s", item);
	*col += (*col ? 3 : 2) + len;
}

/* "polls 1234   errors 0   online 2" under the driver's row. */
static void print_driver_stats(const cJSON *drv) {
	struct stat_total t[STAT_TOTALS_MAX];
	size_t more, n = stat_totals(drv, t, &more), col = 0;

	for (size_t i = 0; i < n; i++) {
		char item[96];

		/* Counters are integers; a gauge may not be. Either way no exponent below 10^15. */
		if (t[i].sum == floor(t[i].sum) && fabs(t[i].sum) < 1e15)
			snprintf(item, sizeof(item), "%.63s %.0f", t[i].name, t[i].sum);
		else
			snprintf(item, sizeof(item), "%.63s %.6g", t[i].name, t[i].sum);
		stats_item(item, &col);
	}
	if (more)
		stats_item("(more in --json)", &col);
	if (col)
		putchar('\n');
}

/* A count, or "-" when the daemon did not report it. */
static const char *format_count(double v, char *buf, size_t n) {
	if (isnan(v))
		snprintf(buf, n, "-");
	else
		snprintf(buf, n, "%.0f", v);
	return buf;
}

/*
 * "device deva offline for 1m02s: connection refused" for a device entry of
 * status or points (name null: "all devices", the whole instance); NULL
 * when the device is not offline.
 */
static const char *format_offline(const cJSON *dev, char *buf, size_t n) {
	const char *name = str(dev, "name", NULL), *why = str(dev, "reason", "");
	char age[64];

	if (strcmp(str(dev, "state", ""), "offline") != 0)
		return NULL;
	snprintf(buf, n, "%s%s offline for %s%s%s", name ? "device " : "all devices", name ? name : "",
	         format_age(num(dev, "since_us"), age, sizeof(age)), why[0] ? ": " : "", why);
	return buf;
}

/* Under a driver's row of status, or under read's line: each device that is offline. */
static void print_offline(const cJSON *devices) {
	const cJSON *dev;
	char line[320];

	if (cJSON_IsObject(devices)) {
		if (format_offline(devices, line, sizeof(line)))
			printf("  %s\n", line);
		return;
	}
	cJSON_ArrayForEach(dev, devices) {
		if (format_offline(dev, line, sizeof(line)))
			printf("  %s\n", line);
	}
}

/*
 * The QUALITY cell of points: the reading's quality, then, when the point's
 * device is offline, since when and why, so that an old value reads as old.
 */
static const char *format_point_state(const cJSON *p, char *buf, size_t n) {
	char q[128], off[320];

	format_quality(p, q, sizeof(q));
	if (format_offline(cJSON_GetObjectItemCaseSensitive(p, "device"), off, sizeof(off)))
		snprintf(buf, n, "%s  (%s)", q, off);
	else
		snprintf(buf, n, "%s", q);
	return buf;
}

static void print_status(const cJSON *s) {
	const cJSON *lag = cJSON_GetObjectItemCaseSensitive(s, "loop_lag_ms");
	const cJSON *drivers = cJSON_GetObjectItemCaseSensitive(s, "drivers");
	const cJSON *mqtt = cJSON_GetObjectItemCaseSensitive(s, "mqtt");
	const cJSON *st = cJSON_GetObjectItemCaseSensitive(s, "storage");
	const cJSON *alarms = cJSON_GetObjectItemCaseSensitive(s, "alarms");
	const cJSON *x;
	char b1[64], b2[64], b3[64];

	printf("m2md %s   gateway %s   pid %.0f   up %s\n", str(s, "version", "?"),
	       str(s, "gateway", "?"), num(s, "pid"), format_uptime(num(s, "uptime_s"), b1, sizeof(b1)));
	printf("loop lag   p50 %.2f ms   p99 %.2f ms   max %.2f ms   readings %.0f (%.1f/s)\n",
	       num(lag, "p50"), num(lag, "p99"), num(lag, "max"), num(s, "readings_in"),
	       num(s, "readings_per_s"));
	static const int widths[] = { 16, 8, 10, -6, -10, 0 };
	static const char *const head[] = { "DRIVER", "PLUGIN", "STATE", "POINTS", "READINGS/S",
		                            " LAST ERROR" };

	putchar('\n');
	print_row(widths, head, ELEMENTSOF(head));
	cJSON_ArrayForEach(x, drivers) {
		const char *e = str(x, "last_error", "");
		char points[32], rate[32], last[256];
		const char *cells[] = {
			str(x, "name", "?"), str(x, "plugin", "?"), str(x, "state", "?"), points, rate, last,
		};

		snprintf(points, sizeof(points), "%.0f", num(x, "points"));
		snprintf(rate, sizeof(rate), "%.1f", num(x, "readings_per_s"));
		snprintf(last, sizeof(last), " %s", e[0] ? e : "-");
		print_row(widths, cells, ELEMENTSOF(cells));
		print_offline(cJSON_GetObjectItemCaseSensitive(x, "devices"));
		print_driver_stats(x);
	}
	if (cJSON_GetArraySize(drivers) == 0)
		printf("(no drivers configured)\n");

	printf("\nMQTT       ");
	if (!cJSON_IsObject(mqtt))
		printf("not configured\n");
	else {
		/* The outbox counts store-and-forward messages; older daemons put them at the top. */
		const cJSON *ob = cJSON_GetObjectItemCaseSensitive(mqtt, "outbox");
		const char *e = str(mqtt, "last_error", "");
		printf("%s %s   queued %s   sent %s   dropped %s%s%s\n", str(mqtt, "state", "-"),
		       str(mqtt, "url", ""),
		       format_count(cJSON_IsObject(ob) ? num(ob, "queued") : num(mqtt, "queued"), b1, sizeof(b1)),
		       format_count(num(mqtt, "sent"), b2, sizeof(b2)),
		       format_count(cJSON_IsObject(ob) ? num(ob, "dropped") : num(mqtt, "dropped"), b3, sizeof(b3)),
		       e[0] ? "   last error: " : "", e);
	}
	printf("STORAGE    rows %.0f (%.1f/s)   size %s   dropped %.0f   queued %.0f%s%s\n",
	       num(st, "rows_written"), num(st, "rows_per_s"),
	       format_bytes(num(st, "db_bytes"), b1, sizeof(b1)), num(st, "rows_dropped"),
	       num(st, "queued"), cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(st, "failing"))
	                              ? "   FAILING: " : "",
	       cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(st, "failing"))
	               ? str(st, "last_error", "") : "");
	if (num(st, "reopens") > 0)
		printf("           reopened %.0f times after file system failures; %.0f committed readings lost\n",
		       num(st, "reopens"), num(st, "rows_lost"));
	printf("ALARMS     %d active\n", cJSON_GetArraySize(alarms));
	cJSON_ArrayForEach(x, alarms) {
		printf("  %-20s %-28s %-8s %-9s %10s  since %s\n", str(x, "rule", "?"),
		       str(x, "point", "?"), str(x, "state", "?"), str(x, "severity", "?"),
		       format_value(cJSON_GetObjectItemCaseSensitive(x, "value"), b1, sizeof(b1)),
		       format_since(x, b2, sizeof(b2)));
	}
}

/* --- commands --- */

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig) {
	interrupted = 1;
}

static int cmd_status(const struct opts *o) {
	cJSON *res = NULL;
	int r;

	if (!o->watch) {
		r = call_once(o, "status", NULL, &res);
		if (r == EXIT_OK)
			r = o->json ? print_json(res) : (print_status(res), EXIT_OK);
		cJSON_Delete(res);
		return r;
	}
	/* --watch runs until Ctrl-C and rides out a daemon restart. */
	struct sigaction sa = { .sa_handler = on_interrupt };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	while (!interrupted) {
		struct timespec ts;
		char when[64];
		res = NULL;
		if (!o->json)
			printf("\033[H\033[2J");
		fflush(stdout);
		r = call_once(o, "status", NULL, &res);
		if (r == EXIT_OK) {
			if (o->json) {
				char *line = json_print(res, false);
				if (line)
					puts(line);
				free(line);
			} else {
				print_status(res);
				printf("\n%s   every %.1fs, Ctrl-C to quit\n",
				       format_time(now_us(), when, sizeof(when)), o->interval_s);
			}
		}
		cJSON_Delete(res);
		fflush(stdout);
		ts.tv_sec = (time_t)o->interval_s;
		ts.tv_nsec = (long)((o->interval_s - (double)ts.tv_sec) * 1e9);
		nanosleep(&ts, NULL);
	}
	return EXIT_OK;
}

static int cmd_points(const struct opts *o) {
	cJSON *args = cJSON_CreateObject(), *res = NULL;
	const cJSON *p;
	char b1[64], b2[64], b3[512];
	int r;

	if (!args)
		return fail(EXIT_FAIL, "out of memory");
	if (o->device)
		cJSON_AddStringToObject(args, "device", o->device);
	r = call_once(o, "points", args, &res);
	cJSON_Delete(args);
	if (r != EXIT_OK || o->json) {
		if (r == EXIT_OK)
			r = print_json(res);
		cJSON_Delete(res);
		return r;
	}
	/* Quality last: with its reason ("device_error: illegal data address (2)") it has no fixed width. */
	static const int widths[] = { 32, -14, 8, -9, 1, 0 };
	static const char *const head[] = { "POINT", "VALUE", "UNIT", "AGE", "W", "QUALITY" };

	print_row(widths, head, ELEMENTSOF(head));
	cJSON_ArrayForEach(p, res) {
		const char *cells[] = {
			str(p, "name", "?"),
			format_value(cJSON_GetObjectItemCaseSensitive(p, "value"), b1, sizeof(b1)),
			str(p, "unit", ""),
			format_age(num(p, "ts"), b2, sizeof(b2)),
			cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "writable")) ? "w" : "",
			format_point_state(p, b3, sizeof(b3)),
		};
		print_row(widths, cells, ELEMENTSOF(cells));
	}
	cJSON_Delete(res);
	return EXIT_OK;
}

static int cmd_read(const struct opts *o, const char *point) {
	cJSON *args = cJSON_CreateObject(), *res = NULL;
	char b1[64], b2[64], b3[128];
	int r;

	if (!args || !cJSON_AddStringToObject(args, "point", point)) {
		cJSON_Delete(args);
		return fail(EXIT_FAIL, "out of memory");
	}
	r = call_once(o, "read", args, &res);
	cJSON_Delete(args);
	if (r == EXIT_OK && o->json)
		r = print_json(res);
	else if (r == EXIT_OK) {
		const char *unit = str(res, "unit", "");
		if (!cJSON_GetObjectItemCaseSensitive(res, "ts"))
			printf("%s: no value yet\n", point);
		else
			printf("%s %s%s%s (%s, %s ago)\n", str(res, "name", point),
			       format_value(cJSON_GetObjectItemCaseSensitive(res, "value"), b1, sizeof(b1)),
			       unit[0] ? " " : "", unit, format_quality(res, b3, sizeof(b3)),
			       format_age(num(res, "ts"), b2, sizeof(b2)));
		print_offline(cJSON_GetObjectItemCaseSensitive(res, "device"));
	}
	cJSON_Delete(res);
	return r;
}

/* "21.5", "1e3", "true"/"false", "on"/"off". */
static int parse_value(const char *s, double *ret) {
	if (strcmp(s, "true") == 0 || strcmp(s, "on") == 0) {
		*ret = 1;
		return 0;
	}
	if (strcmp(s, "false") == 0 || strcmp(s, "off") == 0) {
		*ret = 0;
		return 0;
	}
	if (parse_double(s, ret) < 0 || !isfinite(*ret))
		return -EINVAL;
	return 0;
}

static int cmd_write(const struct opts *o, const char *point, const char *text) {
	cJSON *args, *res = NULL;
	double v;
	int r;

	if (parse_value(text, &v) < 0)
		return fail(EXIT_USAGE, "cannot parse value \"%s\": expected a number, true/false or on/off",
		            text);
	args = cJSON_CreateObject();
	if (!args || !cJSON_AddStringToObject(args, "point", point) ||
	    !cJSON_AddNumberToObject(args, "value", v)) {
		cJSON_Delete(args);
		return fail(EXIT_FAIL, "out of memory");
	}
	r = call_once(o, "write", args, &res);
	cJSON_Delete(args);
	if (r == EXIT_OK) {
		if (o->json)
			r = print_json(res);
		else
			printf("%s = %.6g written\n", point, v);
	}
	cJSON_Delete(res);
	return r;
}

static int cmd_rules(const struct opts *o) {
	static const int widths[] = { 20, 28, 8, 9, 5, -10, 0 };
	static const char *const head[] = { "RULE", "POINT", "STATE", "SEVERITY", "LATCH", "VALUE",
		                            "SINCE" };
	cJSON *res = NULL;
	const cJSON *x;
	char b1[64], b2[64];
	cJSON *args = cJSON_CreateObject();
	int r;

	if (!args || (o->all && !cJSON_AddTrueToObject(args, "all"))) {
		cJSON_Delete(args);
		return fail(EXIT_FAIL, "out of memory");
	}
	r = call_once(o, "rules", args, &res);
	cJSON_Delete(args);
	if (r == EXIT_OK && o->json)
		r = print_json(res);
	else if (r == EXIT_OK) {
		if (cJSON_GetArraySize(res) == 0)
			printf(o->all ? "no rules\n" : "no alarms: every rule is normal\n");
		else
			print_row(widths, head, ELEMENTSOF(head));
		cJSON_ArrayForEach(x, res) {
			const char *cells[] = {
				str(x, "rule", "?"), str(x, "point", "?"), str(x, "state", "?"),
				str(x, "severity", "?"),
				cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(x, "latch")) ? "yes" : "no",
				format_value(cJSON_GetObjectItemCaseSensitive(x, "value"), b1, sizeof(b1)),
				format_since(x, b2, sizeof(b2)),
			};
			print_row(widths, cells, ELEMENTSOF(cells));
		}
	}
	cJSON_Delete(res);
	return r;
}

static int cmd_ack(const struct opts *o, const char *rule, const char *point) {
	cJSON *args = cJSON_CreateObject(), *res = NULL;
	int r;

	if (!args || !cJSON_AddStringToObject(args, "rule", rule) ||
	    (point && !cJSON_AddStringToObject(args, "point", point))) {
		cJSON_Delete(args);
		return fail(EXIT_FAIL, "out of memory");
	}
	r = call_once(o, "ack", args, &res);
	cJSON_Delete(args);
	if (r == EXIT_OK && o->json)
		r = print_json(res);
	else if (r == EXIT_OK)
		printf("%s: %.0f alarm(s) acknowledged\n", rule, num(res, "acknowledged"));
	cJSON_Delete(res);
	return r;
}

static int cmd_reload(const struct opts *o) {
	cJSON *res = NULL;
	int r = call_once(o, "reload", NULL, &res);

	if (r == EXIT_OK && o->json)
		r = print_json(res);
	else if (r == EXIT_OK)
		printf("reload started; its result is in the journal and in 'm2mctl events'\n");
	cJSON_Delete(res);
	return r;
}

/* The daemon's Prometheus text exposition as it is (--json: the reply's string). */
static int cmd_metrics(const struct opts *o) {
	cJSON *res = NULL;
	int r = call_once(o, "metrics", NULL, &res);

	if (r == EXIT_OK && o->json)
		r = print_json(res);
	else if (r == EXIT_OK && cJSON_IsString(res))
		fputs(res->valuestring, stdout);
	else if (r == EXIT_OK)
		r = fail(EXIT_FAIL, "metrics: the daemon answered something else than text");
	cJSON_Delete(res);
	return r;
}

static int cmd_tail(const struct opts *o, const char *pattern) {
	cJSON *args = cJSON_CreateObject(), *res = NULL;
	struct conn c;
	int r;

	if (!args || (pattern && !cJSON_AddStringToObject(args, "point", pattern))) {
		cJSON_Delete(args);
		return fail(EXIT_FAIL, "out of memory");
	}
	r = conn_open(o->socket, &c);
	if (r == EXIT_OK)
		r = call(&c, o, "tail", args, &res);
	cJSON_Delete(args);
	cJSON_Delete(res);
	/* Line-buffered even into a pipe: tail is watched live, often through grep. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	while (r == EXIT_OK) {
		char *line = NULL, b1[64], b2[64];
		cJSON *j;
		int e = conn_read_line(&c, -1, &line);

		if (e < 0) {
			r = e == -ECONNRESET ? fail(EXIT_DOWN, "m2md closed the connection")
			                     : fail(EXIT_FAIL, "reading from m2md: %s", strerror(-e));
			break;
		}
		if (o->json) {
			puts(line);
			free(line);
			continue;
		}
		j = cJSON_Parse(line);
		free(line);
		if (cJSON_GetObjectItemCaseSensitive(j, "dropped"))
			printf("(%.0f readings dropped: this terminal did not keep up)\n", num(j, "dropped"));
		else if (j) {
			static const int widths[] = { 24, 32, -14, 8, 0 };
			const char *cells[] = {
				format_time((int64_t)num(j, "ts"), b1, sizeof(b1)), str(j, "point", "?"),
				format_value(cJSON_GetObjectItemCaseSensitive(j, "value"), b2, sizeof(b2)),
				str(j, "unit", ""), str(j, "quality", "?"),
			};
			print_row(widths, cells, ELEMENTSOF(cells));
		}
		cJSON_Delete(j);
	}
	conn_done(&c);
	return r;
}

/* --- the database: history and events --- */

/* --since/--until: a duration back from now, or a UTC date and time; µs since the epoch. */
static int parse_time(const char *s, int64_t *ret) {
	int64_t d;

	if (parse_duration(s, &d) == 0) {
		*ret = now_us() - d;
		return 0;
	}
	return parse_utc(s, ret);
}

/*
 * Opens the database read-only. While m2md runs (or after it stopped
 * cleanly) WAL mode lets a reader in without a lock on the writer. A user
 * who may read the file but not write its directory cannot create the
 * -shm file a WAL reader needs: when m2md is down (no -wal file left)
 * immutable=1 reads it anyway.
 */
static int db_open(const char *path, sqlite3 **ret) {
	char *uri, *wal;
	struct stat st;
	sqlite3 *db = NULL;
	int r;

	if (stat(path, &st) < 0)
		return fail(EXIT_DB, "cannot open the database %s: %s", path, strerror(errno));
	uri = sqlite3_mprintf("file:%s?mode=ro", path);
	if (!uri)
		return fail(EXIT_FAIL, "out of memory");
	r = sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL);
	sqlite3_free(uri);
	if (r == SQLITE_OK)
		r = sqlite3_exec(db, "PRAGMA busy_timeout = 5000; SELECT count(*) FROM points;", NULL,
		                 NULL, NULL);
	wal = sqlite3_mprintf("%s-wal", path);
	if (r == SQLITE_CANTOPEN && wal && access(wal, F_OK) < 0) {
		sqlite3_close(db);
		db = NULL;
		uri = sqlite3_mprintf("file:%s?mode=ro&immutable=1", path);
		r = uri ? sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL)
		        : SQLITE_NOMEM;
		sqlite3_free(uri);
	}
	sqlite3_free(wal);
	if (r != SQLITE_OK) {
		int code = fail(EXIT_DB, "cannot read the database %s: %s", path,
		                db ? sqlite3_errmsg(db) : sqlite3_errstr(r));
		sqlite3_close(db);
		return code;
	}
	*ret = db;
	return EXIT_OK;
}

static int db_fail(sqlite3 *db, const char *what) {
	return fail(EXIT_DB, "%s: %s", what, sqlite3_errmsg(db));
}

/* CSV quoting for a text field (RFC 4180). */
static void csv_text(const char *s) {
	if (!s)
		return;
	if (!strpbrk(s, ",\"\r\n")) {
		fputs(s, stdout);
		return;
	}
	putchar('"');
	for (; *s; s++) {
		if (*s == '"')
			putchar('"');
		putchar(*s);
	}
	putchar('"');
}

static int cmd_history(const struct opts *o, const char *db_path, const char *point) {
	int64_t since, until = INT64_MAX, id, n = 0;
	const char *unit = "";
	char *unit_copy = NULL;
	bool is_string;
	sqlite3_stmt *st = NULL;
	sqlite3 *db;
	int r;

	if (parse_time(o->since ? o->since : "1h", &since) < 0)
		return fail(EXIT_USAGE, "cannot parse --since \"%s\": expected a duration like \"1h\" or "
		            "a UTC time like \"2024-05-01T12:00:00Z\"", o->since);
	if (o->until && parse_time(o->until, &until) < 0)
		return fail(EXIT_USAGE, "cannot parse --until \"%s\": expected a duration like \"1h\" or "
		            "a UTC time like \"2024-05-01T12:00:00Z\"", o->until);
	r = db_open(db_path, &db);
	if (r != EXIT_OK)
		return r;
	if (sqlite3_prepare_v2(db, "SELECT id, unit, kind FROM points WHERE name = ?", -1, &st, NULL)) {
		r = db_fail(db, db_path);
		goto out;
	}
	sqlite3_bind_text(st, 1, point, -1, SQLITE_STATIC);
	r = sqlite3_step(st);
	if (r != SQLITE_ROW) {
		r = r == SQLITE_DONE ? fail(EXIT_NOTFOUND, "unknown point '%s' (not in %s)", point, db_path)
		                     : db_fail(db, db_path);
		goto out;
	}
	id = sqlite3_column_int64(st, 0);
	if (sqlite3_column_text(st, 1))
		unit = unit_copy = strdup((const char *)sqlite3_column_text(st, 1));
	if (!unit)
		unit = "";
	/* A string point's readings hold its text (or NULL when bad), not a number. */
	is_string = sqlite3_column_text(st, 2) &&
	            strcmp((const char *)sqlite3_column_text(st, 2), "string") == 0;
	sqlite3_finalize(st);
	st = NULL;
	/* The ts index bounds the scan to the time range; the point filter runs inside it. */
	if (sqlite3_prepare_v2(db, "SELECT ts, value, quality FROM readings "
	                       "WHERE ts >= ? AND ts <= ? AND point = ? ORDER BY ts LIMIT ?",
	                       -1, &st, NULL)) {
		r = db_fail(db, db_path);
		goto out;
	}
	sqlite3_bind_int64(st, 1, since);
	sqlite3_bind_int64(st, 2, until);
	sqlite3_bind_int64(st, 3, id);
	sqlite3_bind_int64(st, 4, o->limit > 0 ? o->limit : INT64_MAX);
	if (o->json)
		printf("[");
	else if (o->csv)
		printf("time,ts_us,value,unit,quality\n");
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t ts = sqlite3_column_int64(st, 0);
		bool null = sqlite3_column_type(st, 1) == SQLITE_NULL;
		double v = sqlite3_column_double(st, 1);
		const char *text = is_string && !null ? (const char *)sqlite3_column_text(st, 1) : NULL;
		const char *q = quality_name(sqlite3_column_int(st, 2));
		char b[64], num[FMT_DOUBLE_MAX];

		format_time(ts, b, sizeof(b));
		fmt_double(null ? NAN : v, num, sizeof(num));
		if (o->json) {
			cJSON *row = cJSON_CreateObject();
			char *line;

			if (!row || !cJSON_AddStringToObject(row, "time", b) ||
			    !cJSON_AddNumberToObject(row, "ts", (double)ts) ||
			    !(text ? cJSON_AddStringToObject(row, "value", text)
			           : cJSON_AddRawToObject(row, "value", num)) ||
			    !cJSON_AddStringToObject(row, "quality", q) || !(line = json_print(row, false))) {
				cJSON_Delete(row);
				r = fail(EXIT_FAIL, "out of memory");
				goto out;
			}
			printf("%s\n%s", n ? "," : "", line);
			free(line);
			cJSON_Delete(row);
		} else if (o->csv) {
			printf("%s,%" PRId64 ",", b, ts);
			if (text)
				csv_text(text);
			else if (!null)
				fputs(num, stdout);
			putchar(',');
			csv_text(unit);
			printf(",%s\n", q);
		} else {
			if (n == 0)
				printf("%-24s %14s %-8s %s\n", "TIME", "VALUE", "UNIT", "QUALITY");
			printf("%-24s ", b);
			if (text)
				print_cell(text, 14, false);
			else
				printf("%14.6g", null ? NAN : v);
			putchar(' ');
			print_cell(unit, 8, false);
			printf(" %s\n", q);
		}
		n++;
	}
	if (r != SQLITE_DONE) {
		r = db_fail(db, db_path);
		goto out;
	}
	if (o->json)
		printf("%s]\n", n ? "\n" : "");
	else if (!o->csv && n == 0)
		printf("no readings of %s in that time range\n", point);
	r = EXIT_OK;
out:
	free(unit_copy);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return r;
}

static int cmd_events(const struct opts *o, const char *db_path) {
	int64_t since = INT64_MIN;
	sqlite3_stmt *st = NULL;
	cJSON *arr = NULL;
	sqlite3 *db;
	int r;

	if (o->since && parse_time(o->since, &since) < 0)
		return fail(EXIT_USAGE, "cannot parse --since \"%s\": expected a duration like \"1h\" or "
		            "a UTC time like \"2024-05-01T12:00:00Z\"", o->since);
	r = db_open(db_path, &db);
	if (r != EXIT_OK)
		return r;
	/* The newest LIMIT events of the range, shown oldest first. */
	if (sqlite3_prepare_v2(db, "SELECT * FROM (SELECT e.id, e.ts, e.kind, e.source, p.name, "
	                       "e.value, e.from_state, e.to_state, e.text FROM events e "
	                       "LEFT JOIN points p ON p.id = e.point WHERE e.ts >= ? "
	                       "ORDER BY e.id DESC LIMIT ?) ORDER BY id",
	                       -1, &st, NULL)) {
		r = db_fail(db, db_path);
		goto out;
	}
	sqlite3_bind_int64(st, 1, since);
	sqlite3_bind_int64(st, 2, o->limit > 0 ? o->limit : o->since ? INT64_MAX : DEFAULT_EVENTS);
	if (o->json && !(arr = cJSON_CreateArray())) {
		r = fail(EXIT_FAIL, "out of memory");
		goto out;
	}
	if (!o->json)
		printf("%-24s %-8s %-20s %-28s %10s  %s\n", "TIME", "KIND", "SOURCE", "POINT", "VALUE",
		       "CHANGE");
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		const char *col[9];
		char b[64], vb[64];
		bool has_value = sqlite3_column_type(st, 5) != SQLITE_NULL;
		double v = sqlite3_column_double(st, 5);

		for (int i = 0; i < 9; i++)
			col[i] = (const char *)sqlite3_column_text(st, i);
		format_time(sqlite3_column_int64(st, 1), b, sizeof(b));
		if (o->json) {
			cJSON *e = cJSON_CreateObject();
			if (!e || !cJSON_AddItemToArray(arr, e)) {
				cJSON_Delete(e);
				r = fail(EXIT_FAIL, "out of memory");
				goto out;
			}
			cJSON_AddNumberToObject(e, "id", (double)sqlite3_column_int64(st, 0));
			cJSON_AddStringToObject(e, "time", b);
			cJSON_AddNumberToObject(e, "ts", (double)sqlite3_column_int64(st, 1));
			static const char *const names[] = { NULL, NULL, "kind", "source", "point", NULL,
			                                     "from", "to", "text" };
			for (int i = 2; i < 9; i++) {
				if (!names[i])
					continue;
				if (col[i])
					cJSON_AddStringToObject(e, names[i], col[i]);
				else
					cJSON_AddNullToObject(e, names[i]);
			}
			if (has_value && isfinite(v))
				cJSON_AddNumberToObject(e, "value", v);
			else
				cJSON_AddNullToObject(e, "value");
			continue;
		}
		if (has_value && isfinite(v))
			snprintf(vb, sizeof(vb), "%.6g", v);
		else
			snprintf(vb, sizeof(vb), "-");
		printf("%-24s %-8s %-20s %-28s %10s  %s%s%s%s%s\n", b, col[2] ? col[2] : "-",
		       col[3] ? col[3] : "-", col[4] ? col[4] : "-", vb, col[6] ? col[6] : "",
		       col[6] || col[7] ? " -> " : "", col[7] ? col[7] : "",
		       col[8] && (col[6] || col[7]) ? ": " : "", col[8] ? col[8] : "");
	}
	if (r != SQLITE_DONE) {
		r = db_fail(db, db_path);
		goto out;
	}
	r = o->json ? print_json(arr) : EXIT_OK;
out:
	cJSON_Delete(arr);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return r;
}

/* --- main --- */

static const struct command {
	const char *name;
	int min_args, max_args;
	const char *usage;
} commands[] = {
	{ "status", 0, 0, "no arguments (options: --watch, --interval S)" },
	{ "points", 0, 0, "no arguments (option: --device D)" },
	{ "read", 1, 1, "POINT" },
	{ "write", 2, 2, "POINT VALUE" },
	{ "rules", 0, 0, "no arguments (option: --all)" },
	{ "ack", 1, 2, "RULE [POINT]" },
	{ "reload", 0, 0, "no arguments" },
	{ "metrics", 0, 0, "no arguments" },
	{ "tail", 0, 1, "[PATTERN]" },
	{ "history", 1, 1, "POINT (options: --since, --until, --limit, --csv)" },
	{ "events", 0, 0, "no arguments (options: --since, --limit)" },
};

/* Known command with the right number of arguments, or one line and EXIT_USAGE. */
static int check_args(const char *cmd, int n) {
	for (size_t i = 0; i < ELEMENTSOF(commands); i++) {
		if (strcmp(commands[i].name, cmd) != 0)
			continue;
		if (n < commands[i].min_args || n > commands[i].max_args)
			return fail(EXIT_USAGE, "%s: expected %s", cmd, commands[i].usage);
		return EXIT_OK;
	}
	return fail(EXIT_USAGE, "unknown command \"%s\"; try 'm2mctl --help'", cmd);
}

int main(int argc, char **argv) {
	enum { OPT_JSON = 256, OPT_CSV, OPT_WATCH, OPT_INTERVAL, OPT_TIMEOUT, OPT_DEVICE, OPT_SINCE,
	       OPT_UNTIL, OPT_LIMIT, OPT_VERSION, OPT_ALL };
	static const struct option options[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "csv", no_argument, NULL, OPT_CSV },
		{ "watch", no_argument, NULL, OPT_WATCH },
		{ "interval", required_argument, NULL, OPT_INTERVAL },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "device", required_argument, NULL, OPT_DEVICE },
		{ "all", no_argument, NULL, OPT_ALL },
		{ "since", required_argument, NULL, OPT_SINCE },
		{ "until", required_argument, NULL, OPT_UNTIL },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct opts o = { .interval_s = DEFAULT_WATCH_S, .timeout_ms = DEFAULT_TIMEOUT_MS };
	struct paths paths = { 0 };
	const char *cmd, *env;
	char *db_path = NULL;
	double d;
	int opt, r, nargs;
	char **args;

	/* Options may come before or after the command ("m2mctl history x --since 1h"). */
	while ((opt = getopt_long(argc, argv, "s:c:h", options, NULL)) != -1) {
		switch (opt) {
		case 's':
			o.socket = optarg;
			break;
		case 'c':
			o.config = optarg;
			break;
		case OPT_JSON:
			o.json = true;
			break;
		case OPT_CSV:
			o.csv = true;
			break;
		case OPT_WATCH:
			o.watch = true;
			break;
		case OPT_INTERVAL:
			if (parse_double(optarg, &d) < 0 || !(d >= 0.1 && d <= 3600))
				return fail(EXIT_USAGE, "invalid --interval \"%s\": expected seconds between "
				            "0.1 and 3600", optarg);
			o.interval_s = d;
			break;
		case OPT_TIMEOUT:
			if (parse_double(optarg, &d) < 0 || !(d > 0 && d <= 3600))
				return fail(EXIT_USAGE, "invalid --timeout \"%s\": expected seconds between "
				            "0 and 3600", optarg);
			o.timeout_ms = (int)(d * 1000);
			break;
		case OPT_DEVICE:
			o.device = optarg;
			break;
		case OPT_ALL:
			o.all = true;
			break;
		case OPT_SINCE:
			o.since = optarg;
			break;
		case OPT_UNTIL:
			o.until = optarg;
			break;
		case OPT_LIMIT:
			if (parse_int64(optarg, &o.limit) < 0 || o.limit < 1)
				return fail(EXIT_USAGE, "invalid --limit \"%s\": expected a positive integer",
				            optarg);
			break;
		case OPT_VERSION:
			printf("m2mctl %s\n", M2M_VERSION);
			return EXIT_OK;
		case 'h':
			help();
			return EXIT_OK;
		default:
			fprintf(stderr, "Try 'm2mctl --help'.\n");
			return EXIT_USAGE;
		}
	}
	if (optind >= argc)
		return fail(EXIT_USAGE, "no command given; try 'm2mctl --help'");
	cmd = argv[optind];
	args = argv + optind + 1;
	nargs = argc - optind - 1;
	if (o.json && o.csv)
		return fail(EXIT_USAGE, "--json and --csv exclude each other");
	r = check_args(cmd, nargs);
	if (r != EXIT_OK)
		return r;

	/* Only history and events need the config; the others need it only for the socket. */
	if (o.config || access(M2M_CONFIG_FILE, R_OK) == 0) {
		const char *path = o.config ? o.config : M2M_CONFIG_FILE;
		char *error = NULL;
		bool needed = o.config || strcmp(cmd, "history") == 0 || strcmp(cmd, "events") == 0;
		r = read_config_paths(path, &paths, &error);
		if (r < 0 && needed) {
			r = fail(o.config ? EXIT_USAGE : EXIT_DB, "%s", error ? error : m2m_strerror(r));
			free(error);
			return r;
		}
		free(error);
	}
	/* The command line first, then the environment, then the installed config. */
	env = getenv("M2M_SOCKET");
	if (!o.socket && o.config && paths.socket)
		o.socket = paths.socket;
	if (!o.socket && env && env[0])
		o.socket = env;
	if (!o.socket)
		o.socket = paths.socket ? paths.socket : CTL_DEFAULT_SOCKET;
	db_path = paths.db;

	if ((strcmp(cmd, "history") == 0 || strcmp(cmd, "events") == 0) && !db_path &&
	    !(db_path = paths.db = strdup(M2M_DB_FILE))) {
		r = fail(EXIT_FAIL, "out of memory");
		goto out;
	}
	if (strcmp(cmd, "status") == 0)
		r = cmd_status(&o);
	else if (strcmp(cmd, "points") == 0)
		r = cmd_points(&o);
	else if (strcmp(cmd, "read") == 0)
		r = cmd_read(&o, args[0]);
	else if (strcmp(cmd, "write") == 0)
		r = cmd_write(&o, args[0], args[1]);
	else if (strcmp(cmd, "rules") == 0)
		r = cmd_rules(&o);
	else if (strcmp(cmd, "ack") == 0)
		r = cmd_ack(&o, args[0], nargs > 1 ? args[1] : NULL);
	else if (strcmp(cmd, "reload") == 0)
		r = cmd_reload(&o);
	else if (strcmp(cmd, "metrics") == 0)
		r = cmd_metrics(&o);
	else if (strcmp(cmd, "tail") == 0)
		r = cmd_tail(&o, nargs ? args[0] : NULL);
	else if (strcmp(cmd, "history") == 0)
		r = cmd_history(&o, db_path, args[0]);
	else
		r = cmd_events(&o, db_path);
out:
	free(paths.socket);
	free(paths.db);
	return r;
}
