/* SPDX-License-Identifier: MIT */
/*
 * The control socket. Loop thread only.
 *
 * Every client is a uv_pipe_t with a bounded input buffer, a timer for the
 * request in progress and a count of bytes waiting in libuv's write queue.
 * Requests of one client are answered in order, one at a time: while a
 * request is in flight (an actuator write) or while the client does not
 * read its replies, the server stops reading from it, so a client can make
 * it hold at most max_request bytes of input and one reply (or tail_buffer
 * bytes of streamed readings) of output.
 */
#include "ctl-server.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "ctl-proto.h"
#include "error.h"
#include "log.h"
#include "point.h"
#include "util.h"

#define DEFAULT_MODE 0660
#define DEFAULT_GROUP "m2md"
#define DEFAULT_TIMEOUT_US (5 * 1000000LL)
#define DEFAULT_MAX_CLIENTS 64
#define DEFAULT_IDLE_TIMEOUT_US (60 * 1000000LL)
#define DEFAULT_TAIL_BUFFER (256u * 1024u)
#define LISTEN_BACKLOG 64
/* The first read buffer of a client; it doubles up to max_request. */
#define INITIAL_BUFFER 1024
/* Refusals are logged at most this often, so a local flood cannot fill the journal. */
#define REFUSAL_LOG_INTERVAL_US (10 * 1000000LL)

struct ctl_conf {
	char *socket;
	unsigned mode;
	char *group;       /* NULL: leave the socket in the daemon's group */
	gid_t gid;
	bool has_gid;
	bool group_default; /* the default group, which may not exist on this machine */
	uid_t *allow_uids;
	size_t n_allow_uids;
	bool allow_uids_set;
	gid_t *allow_gids;
	size_t n_allow_gids;
	bool allow_groups_set;
	uint64_t max_request;
	int64_t timeout_us;
	int64_t max_clients;
	int64_t idle_timeout_us;
	uint64_t tail_buffer;
};

struct conn;

/* An actuator write in flight; outlives its connection when the client leaves first. */
struct pending_write {
	struct conn *c; /* NULL once the client is gone or gave up waiting */
};

struct conn {
	uv_pipe_t pipe;
	uv_timer_t timer;
	ctl_server *s;
	struct conn *prev, *next;
	int open_handles;

	uid_t uid;
	gid_t gid;
	pid_t pid;

	char *buf;
	size_t len, cap;
	size_t out_bytes; /* queued in uv_write and not yet written */

	/* The request being answered, for replies that come later. */
	struct ctl_request req;
	struct pending_write *pw;

	char *tail_filter; /* fnmatch pattern or NULL for all points */
	uint64_t tail_dropped;

	int64_t active_us; /* mono; the last request began or ended */

	bool reading;
	bool busy;       /* a request is in flight */
	bool timer_armed;
	bool idle_armed; /* ... for idle_timeout, not request_timeout */
	bool tail;
	bool eof;
	bool close_after_write;
	bool closing;
	bool in_process;
};

struct out {
	uv_write_t req;
	struct conn *c;
	size_t len;
	char *data;
};

struct ctl_server {
	struct ctl_env env;
	ctl_conf *conf;
	uv_pipe_t listener;
	bool listener_open;
	dev_t sock_dev;
	ino_t sock_ino;
	uid_t own_uid;
	struct conn *conns;
	size_t n_clients;  /* in the list: accepted and not closing */
	size_t n_allocated; /* connections not yet freed, closing ones included */
	size_t n_tail;
	bool closing;
	void (*on_closed)(void *arg);
	void *on_closed_arg;

	int64_t last_refusal_log_us;
	uint64_t refusals_unlogged;

	/* Counters shown in status under "control". */
	uint64_t accepted, refused, busy_refused, requests, errors, oversize, timeouts;
	uint64_t idle_closed, evicted;
	uint64_t tail_lines, tail_dropped;
};

/* --- configuration --- */

/*
 * The gid of group NAME (GROUP) or the uid of user NAME, with getgrnam_r or
 * getpwnam_r and a growing buffer; 0, -ENOENT or a negative errno.
 */
static int lookup_id(const char *name, bool group, uint32_t *ret) {
	for (size_t n = 1024;; n *= 4) {
		struct group g, *gres = NULL;
		struct passwd pw, *pres = NULL;
		char *buf = malloc(n);
		int r;

		if (!buf)
			return -ENOMEM;
		r = group ? getgrnam_r(name, &g, buf, n, &gres) : getpwnam_r(name, &pw, buf, n, &pres);
		free(buf);
		if (r == ERANGE && n < 1024 * 1024)
			continue;
		if (r != 0)
			return -r;
		if (!gres && !pres)
			return -ENOENT;
		*ret = group ? gres->gr_gid : pres->pw_uid;
		return 0;
	}
}

/* An id given as a TOML integer; names are resolved by the caller. */
static bool item_is_id(const cJSON *v) {
	return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 4294967295.0 &&
	       v->valuedouble == (double)(uint32_t)v->valuedouble;
}

/* Reads allow_uids (users) or allow_groups (groups): arrays of names or numeric ids. */
static int parse_id_list(config *c, const cJSON *t, const char *key, bool groups,
                         uint32_t **ret, size_t *ret_n, bool *ret_set) {
	const cJSON *a, *v;
	uint32_t *ids;
	size_t n = 0;
	int err = 0;

	a = config_item(c, t, key, cJSON_Array, &err);
	if (err < 0)
		return err;
	*ret_set = a != NULL;
	if (!a)
		return 0;
	ids = calloc((size_t)cJSON_GetArraySize(a) + 1, sizeof(*ids));
	if (!ids)
		return -ENOMEM;
	cJSON_ArrayForEach(v, a) {
		int r;
		if (item_is_id(v)) {
			ids[n++] = (uint32_t)v->valuedouble;
			continue;
		}
		if (!cJSON_IsString(v) || !v->valuestring[0]) {
			free(ids);
			return config_error(c, v, "expected a %s name or a numeric id",
			                    groups ? "group" : "user");
		}
		r = lookup_id(v->valuestring, groups, &ids[n]);
		if (r < 0) {
			free(ids);
			if (r == -ENOENT)
				return config_error(c, v, "%s '%s' does not exist", groups ? "group" : "user",
				                    v->valuestring);
			return config_error(c, v, "cannot look up '%s': %s", v->valuestring,
			                    m2m_strerror(r));
		}
		n++;
	}
	*ret = ids;
	*ret_n = n;
	return 0;
}

/* "0660" (or "660"): octal, permission bits only. */
static int parse_mode(const char *s, unsigned *ret) {
	unsigned v = 0;
	size_t n = strlen(s);

	if (n == 0 || n > 4)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '7')
			return -EINVAL;
		v = v * 8 + (unsigned)(s[i] - '0');
	}
	if (v > 0777)
		return -EINVAL;
	*ret = v;
	return 0;
}

int ctl_conf_parse(config *c, const cJSON *root, const char *config_file, ctl_conf **ret) {
	const cJSON *t, *item;
	const char *sock, *mode, *group;
	ctl_conf *cc;
	int err = 0;
	int r;

	t = config_item(c, root, "control", cJSON_Object, &err);
	if (err < 0)
		return err;
	cc = calloc(1, sizeof(*cc));
	if (!cc)
		return -ENOMEM;

	if ((r = config_string(c, t, "socket", CTL_DEFAULT_SOCKET, &sock)) < 0)
		goto fail;
	item = cJSON_GetObjectItemCaseSensitive(t, "socket");
	if (!sock[0]) {
		r = config_error(c, item, "expected a path, got \"\"");
		goto fail;
	}
	cc->socket = path_relative_to(config_file, sock);
	if (!cc->socket) {
		r = -ENOMEM;
		goto fail;
	}
	/*
	 * Short enough for sun_path together with the suffix of the temporary
	 * name the socket is bound under before it is renamed.
	 */
	if (strlen(cc->socket) + 16 > sizeof(((struct sockaddr_un *)NULL)->sun_path)) {
		r = config_error(c, item, "expected a path of at most %zu bytes for a Unix socket",
		                 sizeof(((struct sockaddr_un *)NULL)->sun_path) - 16);
		goto fail;
	}

	if ((r = config_string(c, t, "mode", NULL, &mode)) < 0)
		goto fail;
	cc->mode = DEFAULT_MODE;
	if (mode) {
		item = cJSON_GetObjectItemCaseSensitive(t, "mode");
		if (parse_mode(mode, &cc->mode) < 0) {
			r = config_error(c, item, "expected an octal mode like \"0660\", got \"%s\"", mode);
			goto fail;
		}
		/* The daemon itself never connects, but m2mctl run as the daemon's user must. */
		if ((cc->mode & 0600) != 0600) {
			r = config_error(c, item, "expected a mode that lets the owner read and write "
			                 "(0600 or more), got \"%s\"", mode);
			goto fail;
		}
	}

	if ((r = config_string(c, t, "group", NULL, &group)) < 0)
		goto fail;
	cc->group_default = group == NULL;
	if (!group)
		group = DEFAULT_GROUP;
	if (group[0]) {
		cc->group = strdup(group);
		if (!cc->group) {
			r = -ENOMEM;
			goto fail;
		}
		r = lookup_id(group, true, &cc->gid);
		if (r == 0)
			cc->has_gid = true;
		else if (!cc->group_default) {
			/* A group named in the config must exist: a typo must not widen nor narrow access silently. */
			item = cJSON_GetObjectItemCaseSensitive(t, "group");
			r = r == -ENOENT ? config_error(c, item, "group '%s' does not exist", group)
			                 : config_error(c, item, "cannot look up group '%s': %s", group,
			                                m2m_strerror(r));
			goto fail;
		}
	}

	if ((r = parse_id_list(c, t, "allow_uids", false, &cc->allow_uids, &cc->n_allow_uids,
	                       &cc->allow_uids_set)) < 0)
		goto fail;
	if ((r = parse_id_list(c, t, "allow_groups", true, &cc->allow_gids, &cc->n_allow_gids,
	                       &cc->allow_groups_set)) < 0)
		goto fail;

	if ((r = config_size(c, t, "max_request", CTL_DEFAULT_MAX_REQUEST, &cc->max_request)) < 0)
		goto fail;
	if (cc->max_request < 256 || cc->max_request > 16u * 1024 * 1024) {
		r = config_error(c, cJSON_GetObjectItemCaseSensitive(t, "max_request"),
		                 "expected max_request between 256B and 16MiB");
		goto fail;
	}
	if ((r = config_duration(c, t, "request_timeout", DEFAULT_TIMEOUT_US, &cc->timeout_us)) < 0)
		goto fail;
	if (cc->timeout_us < 100000 || cc->timeout_us > 600 * 1000000LL) {
		r = config_error(c, cJSON_GetObjectItemCaseSensitive(t, "request_timeout"),
		                 "expected request_timeout between 100ms and 10min");
		goto fail;
	}
	if ((r = config_int(c, t, "max_clients", DEFAULT_MAX_CLIENTS, 1, 4096, &cc->max_clients)) < 0)
		goto fail;
	if ((r = config_duration(c, t, "idle_timeout", DEFAULT_IDLE_TIMEOUT_US, &cc->idle_timeout_us)) < 0)
		goto fail;
	if (cc->idle_timeout_us < 100000 || cc->idle_timeout_us > 24 * 3600 * 1000000LL) {
		r = config_error(c, cJSON_GetObjectItemCaseSensitive(t, "idle_timeout"),
		                 "expected idle_timeout between 100ms and 24h");
		goto fail;
	}
	if ((r = config_size(c, t, "tail_buffer", DEFAULT_TAIL_BUFFER, &cc->tail_buffer)) < 0)
		goto fail;
	if (cc->tail_buffer < 4096 || cc->tail_buffer > 64u * 1024 * 1024) {
		r = config_error(c, cJSON_GetObjectItemCaseSensitive(t, "tail_buffer"),
		                 "expected tail_buffer between 4KiB and 64MiB");
		goto fail;
	}
	*ret = cc;
	return 0;

fail:
	ctl_conf_free(cc);
	return r < 0 ? r : -EINVAL;
}

const char *ctl_conf_socket(const ctl_conf *cc) {
	return cc->socket;
}

void ctl_conf_free(ctl_conf *cc) {
	if (!cc)
		return;
	free(cc->socket);
	free(cc->group);
	free(cc->allow_uids);
	free(cc->allow_gids);
	free(cc);
}

/* --- connections: output --- */

static void conn_close(struct conn *c);
static void conn_process(struct conn *c);

static size_t out_limit(const struct conn *c) {
	/* One reply is allowed to be large (status of many drivers); streams are capped. */
	return c->tail ? (size_t)c->s->conf->tail_buffer : 1;
}

static void on_written(uv_write_t *req, int status) {
	struct out *o = req->data;
	struct conn *c = o->c;

	c->out_bytes -= o->len;
	free(o->data);
	free(o);
	if (c->closing)
		return;
	if (status < 0) {
		/* The client went away; nothing to tell it. */
		conn_close(c);
		return;
	}
	if (c->out_bytes == 0 && (c->close_after_write || (c->eof && !c->busy && c->len == 0))) {
		conn_close(c);
		return;
	}
	conn_process(c);
}

/* Queues LINE (taken over, may be NULL when out of memory) on C. */
static int conn_send(struct conn *c, char *line, size_t len) {
	struct out *o;
	uv_buf_t b;
	int r;

	if (!line) {
		conn_close(c);
		return -ENOMEM;
	}
	if (c->closing) {
		free(line);
		return -ESHUTDOWN;
	}
	o = calloc(1, sizeof(*o));
	if (!o) {
		free(line);
		conn_close(c);
		return -ENOMEM;
	}
	o->c = c;
	o->len = len;
	o->data = line;
	o->req.data = o;
	b = uv_buf_init(line, (unsigned)len);
	r = uv_write(&o->req, (uv_stream_t *)&c->pipe, &b, 1, on_written);
	if (r < 0) {
		free(line);
		free(o);
		conn_close(c);
		return -EPIPE;
	}
	c->out_bytes += len;
	return 0;
}

static void reply_ok(struct conn *c, cJSON *result) {
	size_t len = 0;
	char *line = ctl_reply_ok(&c->req, result, &len);

	conn_send(c, line, len);
}

static void reply_error(struct conn *c, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void reply_error(struct conn *c, int err, const char *fmt, ...) {
	char text[512], *line;
	size_t len = 0;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	c->s->errors++;
	/* Built first: LEN is set by the call, and argument order is unspecified. */
	line = ctl_reply_error(&c->req, err, text, &len);
	conn_send(c, line, len);
}

/* --- connections: life cycle --- */

static void maybe_closed(ctl_server *s) {
	void (*cb)(void *arg) = s->on_closed;

	if (!s->closing || s->listener_open || s->n_allocated > 0 || !cb)
		return;
	s->on_closed = NULL;
	cb(s->on_closed_arg);
}

static void on_conn_handle_closed(uv_handle_t *h) {
	struct conn *c = h->data;
	ctl_server *s = c->s;

	if (--c->open_handles > 0)
		return;
	ctl_request_done(&c->req);
	free(c->tail_filter);
	free(c->buf);
	free(c);
	s->n_allocated--;
	maybe_closed(s);
}

static void conn_close(struct conn *c) {
	ctl_server *s = c->s;

	if (c->closing)
		return;
	c->closing = true;
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	s->n_clients--;
	if (c->tail)
		s->n_tail--;
	if (c->pw) {
		c->pw->c = NULL;
		c->pw = NULL;
	}
	uv_close((uv_handle_t *)&c->pipe, on_conn_handle_closed);
	uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

/* The request in progress took longer than request_timeout. */
static void on_timeout(uv_timer_t *t) {
	struct conn *c = t->data;

	c->timer_armed = false;
	if (c->idle_armed) {
		/* Nothing asked for idle_timeout: the slot goes back to the pool. */
		c->idle_armed = false;
		c->s->idle_closed++;
		conn_close(c);
		return;
	}
	c->s->timeouts++;
	if (c->busy) {
		/* The write may still happen: say so, the client must not assume it failed. */
		if (c->pw) {
			c->pw->c = NULL;
			c->pw = NULL;
		}
		c->busy = false;
		reply_error(c, -ETIMEDOUT, "no answer from the driver within %s; the write may still happen",
		            format_duration(c->s->conf->timeout_us, (char[32]){ 0 }, 32));
		ctl_request_done(&c->req);
		conn_process(c);
		return;
	}
	/* A partial request that never ends: a stuck or hostile client. */
	reply_error(c, -ETIMEDOUT, "incomplete request: no newline within %s",
	            format_duration(c->s->conf->timeout_us, (char[32]){ 0 }, 32));
	c->close_after_write = true;
	uv_read_stop((uv_stream_t *)&c->pipe);
	c->reading = false;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
	struct conn *c = h->data;
	size_t max = (size_t)c->s->conf->max_request + 1;

	if (c->len == c->cap && c->cap < max) {
		size_t n = c->cap ? c->cap * 2 : INITIAL_BUFFER;
		char *p;
		if (n > max)
			n = max;
		p = realloc(c->buf, n);
		if (p) {
			c->buf = p;
			c->cap = n;
		}
	}
	/* A zero-length buffer makes libuv report UV_ENOBUFS, handled in on_read. */
	*buf = uv_buf_init(c->buf ? c->buf + c->len : NULL, (unsigned)(c->cap - c->len));
}

static void on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf) {
	struct conn *c = stream->data;

	if (c->closing)
		return;
	if (n == UV_EOF) {
		c->eof = true;
		uv_read_stop(stream);
		c->reading = false;
		if (c->tail) {
			/* A tail client ends the stream by going away. */
			conn_close(c);
			return;
		}
		/* A last request without its newline still counts: "echo -n ... | socat" works. */
		if (c->len > 0 && c->len < c->cap)
			c->buf[c->len++] = '\n';
		conn_process(c);
		return;
	}
	if (n == UV_ENOBUFS) {
		/* Out of memory for the buffer (the size cap is checked below, before this can happen). */
		conn_close(c);
		return;
	}
	if (n < 0) {
		conn_close(c);
		return;
	}
	if (c->tail) {
		/* Input after "tail" is ignored; reading goes on only to notice the client leave. */
		c->len = 0;
		return;
	}
	c->len += (size_t)n;
	conn_process(c);
}

/* Answers "write" later, when the driver has the device's answer. */
static void on_write_done(int status, const char *error_text, void *arg) {
	struct pending_write *pw = arg;
	struct conn *c = pw->c;

	free(pw);
	if (!c)
		return;
	c->pw = NULL;
	c->busy = false;
	if (c->timer_armed) {
		uv_timer_stop(&c->timer);
		c->timer_armed = false;
	}
	/* A driver that refused before anything went on the wire says so: "refused: value ...". */
	if (status < 0 && error_text && startswith(error_text, "refused: "))
		reply_error(c, status, "write %s %s", c->req.point, error_text);
	else if (status < 0)
		reply_error(c, status, "write %s failed: %s", c->req.point,
		            error_text ? error_text : m2m_strerror(status));
	else
		reply_ok(c, cJSON_CreateObject());
	ctl_request_done(&c->req);
	/* The driver may answer inside core_write(), while the request is still being handled. */
	if (!c->in_process)
		conn_process(c);
}

static uint64_t n_clients(void *arg) {
	const ctl_server *s = arg;

	return s->n_clients;
}

static uint64_t n_tailing(void *arg) {
	const ctl_server *s = arg;

	return s->n_tail;
}

int ctl_server_metrics_add(ctl_server *s, metrics *reg, const void *owner) {
#define C(n, h) { .desc = { .name = "m2md_control_" #n, .help = h, .type = METRIC_COUNTER, \
                            .json = "control/" #n }, .src = { .u64 = &s->n } }
#define G(n, h, f) { .desc = { .name = "m2md_control_" #n, .help = h, .type = METRIC_GAUGE, \
                               .json = "control/" #n }, .src = { .get_u64 = f, .arg = s } }
	const struct metric_entry list[] = {
		G(clients, "Connected clients.", n_clients),
		G(tailing, "Clients following readings (m2mctl tail).", n_tailing),
		C(accepted, "Connections accepted."),
		C(refused, "Connections refused by the peer check."),
		C(busy_refused, "Connections refused because all slots were taken."),
		C(requests, "Requests answered."),
		C(errors, "Requests answered with an error."),
		C(oversize, "Requests longer than the limit."),
		C(timeouts, "Clients closed because a request did not complete in time."),
		C(idle_closed, "Idle clients closed."),
		C(evicted, "Idle clients closed to make room for a new one."),
		C(tail_lines, "Lines sent to tailing clients."),
		C(tail_dropped, "Lines not sent to a tailing client that did not keep up."),
	};
#undef C
#undef G
	return metrics_add_list(reg, owner, list, ELEMENTSOF(list));
}

/* The socket's path beside the counters the registry put in the status object. */
static void add_control_socket(ctl_server *s, cJSON *status) {
	cJSON *o = cJSON_GetObjectItemCaseSensitive(status, "control");

	if (!o)
		o = cJSON_AddObjectToObject(status, "control");
	if (o)
		cJSON_AddStringToObject(o, "socket", s->conf->socket);
}

static const char commands_help[] =
	"status, points, read, write, rules, ack, reload, tail, metrics, help";

/* Handles one complete request line (without its newline). */
static void conn_request(struct conn *c, const char *line, size_t n) {
	ctl_server *s = c->s;
	const struct ctl_env *env = &s->env;
	const char *perr;
	cJSON *res;
	int r;

	s->requests++;
	ctl_request_done(&c->req);
	if (ctl_request_parse(line, n, &c->req, &perr) < 0) {
		reply_error(c, -EINVAL, "%s", perr);
		ctl_request_done(&c->req);
		return;
	}
	const char *cmd = c->req.cmd;
	if (strcmp(cmd, "status") == 0) {
		res = env->status(env->ctx);
		if (!res) {
			reply_error(c, -ENOMEM, "out of memory");
			return;
		}
		add_control_socket(s, res);
		reply_ok(c, res);
	} else if (strcmp(cmd, "points") == 0) {
		res = env->points(env->ctx, c->req.device);
		if (!res)
			reply_error(c, -ENOMEM, "out of memory");
		else if (c->req.device && cJSON_GetArraySize(res) == 0) {
			cJSON_Delete(res);
			reply_error(c, -ENOENT, "no points of device '%s'", c->req.device);
		} else
			reply_ok(c, res);
	} else if (strcmp(cmd, "read") == 0) {
		if (!c->req.point) {
			reply_error(c, -EINVAL, "\"read\" needs a \"point\"");
			return;
		}
		res = env->read(env->ctx, c->req.point);
		if (!res)
			reply_error(c, -ENOENT, "unknown point '%s'", c->req.point);
		else
			reply_ok(c, res);
	} else if (strcmp(cmd, "write") == 0) {
		struct pending_write *pw;
		char origin[48];

		if (!c->req.point || !c->req.has_value) {
			reply_error(c, -EINVAL, "\"write\" needs a \"point\" and a \"value\"");
			return;
		}
		pw = calloc(1, sizeof(*pw));
		if (!pw) {
			reply_error(c, -ENOMEM, "out of memory");
			return;
		}
		/* The uid is the kernel's word (SO_PEERCRED), not the client's. */
		snprintf(origin, sizeof(origin), "ctl:uid=%u", (unsigned)c->uid);
		pw->c = c;
		c->pw = pw;
		c->busy = true;
		r = env->write(env->ctx, origin, c->req.point, c->req.value, on_write_done, pw);
		if (r < 0) {
			/* Refused before reaching a device; the callback will not run. */
			free(pw);
			c->pw = NULL;
			c->busy = false;
			char why[256];

			if (r == -ENOENT)
				reply_error(c, r, "unknown point '%s'", c->req.point);
			else
				reply_error(c, r, "write %s refused: %s", c->req.point,
				            env->write_refusal ? env->write_refusal(env->ctx, c->req.point,
				                                                    c->req.value, r, why,
				                                                    sizeof(why))
				                               : m2m_strerror(r));
		}
		/* Otherwise on_write_done answers, possibly already done. */
	} else if (strcmp(cmd, "rules") == 0) {
		res = env->rules ? env->rules(env->ctx, c->req.all) : NULL;
		reply_ok(c, res ? res : cJSON_CreateArray());
	} else if (strcmp(cmd, "ack") == 0) {
		if (!c->req.rule) {
			reply_error(c, -EINVAL, "\"ack\" needs a \"rule\"");
			return;
		}
		r = env->ack ? env->ack(env->ctx, c->req.rule, c->req.point) : -ENOENT;
		if (r == -ENOENT)
			reply_error(c, r, "unknown rule '%s'%s%s%s", c->req.rule,
			            c->req.point ? " or point '" : "", c->req.point ? c->req.point : "",
			            c->req.point ? "'" : "");
		else if (r < 0)
			reply_error(c, r, "ack %s failed: %s", c->req.rule, m2m_strerror(r));
		else {
			res = cJSON_CreateObject();
			if (res)
				cJSON_AddNumberToObject(res, "acknowledged", r);
			reply_ok(c, res);
		}
	} else if (strcmp(cmd, "reload") == 0) {
		res = cJSON_CreateObject();
		if (res)
			cJSON_AddBoolToObject(res, "reloading", true);
		/* The reply goes first: a reload may take a moment and logs its own result. */
		reply_ok(c, res);
		env->reload(env->ctx);
	} else if (strcmp(cmd, "tail") == 0) {
		if (c->req.point) {
			c->tail_filter = strdup(c->req.point);
			if (!c->tail_filter) {
				reply_error(c, -ENOMEM, "out of memory");
				return;
			}
		}
		res = cJSON_CreateObject();
		if (res)
			cJSON_AddBoolToObject(res, "streaming", true);
		reply_ok(c, res);
		c->tail = true;
		s->n_tail++;
		c->len = 0;
	} else if (strcmp(cmd, "metrics") == 0) {
		/* The Prometheus text exposition as one JSON string; m2mctl prints it as it is. */
		char *text = env->metrics ? env->metrics(env->ctx) : NULL;
		if (!text) {
			reply_error(c, env->metrics ? -ENOMEM : -ENOTSUP, "%s",
			            env->metrics ? "cannot render the metrics" : "no metrics");
			return;
		}
		res = cJSON_CreateString(text);
		free(text);
		if (!res)
			reply_error(c, -ENOMEM, "out of memory");
		else
			reply_ok(c, res);
	} else if (strcmp(cmd, "help") == 0) {
		reply_ok(c, cJSON_CreateString(commands_help));
	} else {
		reply_error(c, -EINVAL, "unknown command '%.64s' (commands: %s)", cmd, commands_help);
	}
	if (!c->busy)
		ctl_request_done(&c->req);
}

/* Handles every complete request in the buffer, as far as the client lets us. */
static void conn_process(struct conn *c) {
	ctl_server *s = c->s;
	size_t max = (size_t)s->conf->max_request;

	if (c->in_process || c->closing)
		return;
	c->in_process = true;
	while (!c->closing && !c->busy && !c->tail && !c->close_after_write &&
	       c->out_bytes < out_limit(c) && c->len > 0) {
		char *nl = memchr(c->buf, '\n', c->len);
		size_t n, line_len;

		if (!nl) {
			if (c->len > max) {
				s->oversize++;
				reply_error(c, -EMSGSIZE, "request larger than %zu bytes", max);
				c->close_after_write = true;
			}
			break;
		}
		n = (size_t)(nl - c->buf) + 1;
		line_len = n - 1;
		if (line_len > 0 && c->buf[line_len - 1] == '\r')
			line_len--;
		if (line_len > max) {
			s->oversize++;
			reply_error(c, -EMSGSIZE, "request larger than %zu bytes", max);
			c->close_after_write = true;
			break;
		}
		if (c->timer_armed) {
			uv_timer_stop(&c->timer);
			c->timer_armed = c->idle_armed = false;
		}
		/* Blank lines are keep-alives, not requests. */
		if (line_len > 0)
			conn_request(c, c->buf, line_len);
		if (c->closing)
			break;
		if (c->tail)
			break; /* conn_request emptied the buffer */
		memmove(c->buf, c->buf + n, c->len - n);
		c->len -= n;
	}
	c->in_process = false;
	if (c->closing)
		return;
	if (c->close_after_write || (c->eof && !c->busy && c->len == 0)) {
		if (c->out_bytes == 0)
			conn_close(c);
		else if (c->reading) {
			uv_read_stop((uv_stream_t *)&c->pipe);
			c->reading = false;
		}
		return;
	}
	/*
	 * A request in flight, or one that has begun to arrive, runs against
	 * request_timeout; a client that asks nothing against idle_timeout
	 * (a tail client is never idle: it is being served).
	 */
	if (c->busy || (c->len > 0 && !c->tail)) {
		if (c->idle_armed) {
			uv_timer_stop(&c->timer);
			c->timer_armed = c->idle_armed = false;
		}
		if (!c->timer_armed) {
			uv_timer_start(&c->timer, on_timeout, (uint64_t)(s->conf->timeout_us / 1000), 0);
			c->timer_armed = true;
		}
	} else if (c->tail) {
		if (c->timer_armed) {
			uv_timer_stop(&c->timer);
			c->timer_armed = c->idle_armed = false;
		}
	} else if (!c->idle_armed) {
		c->active_us = mono_us();
		uv_timer_start(&c->timer, on_timeout, (uint64_t)(s->conf->idle_timeout_us / 1000), 0);
		c->timer_armed = c->idle_armed = true;
	}
	/* Backpressure: read more only when the last answer is out and nothing is in flight. */
	bool want = !c->eof && (c->tail || (!c->busy && c->out_bytes < out_limit(c)));
	if (want && !c->reading) {
		if (uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read) == 0)
			c->reading = true;
	} else if (!want && c->reading) {
		uv_read_stop((uv_stream_t *)&c->pipe);
		c->reading = false;
	}
}

/* --- accepting --- */

static bool in_list(const uint32_t *ids, size_t n, uint32_t id) {
	for (size_t i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

/*
 * The users of allow_uids (by default root and the daemon's own user) and
 * members of allow_groups (by default the socket's group) may connect. An
 * explicit allow_uids is the whole list: it can leave out even root, whose
 * m2mctl is then refused like anyone's (root can still edit the config).
 * Supplementary groups come from SO_PEERGROUPS, the kernel's record of the
 * peer at connect time, not from anything the client says.
 */
static bool peer_allowed(ctl_server *s, int fd, const struct ucred *cr) {
	const ctl_conf *cc = s->conf;
	const gid_t *gids = cc->allow_gids;
	size_t n_gids = cc->n_allow_gids;
	gid_t stack[64], *groups = stack;
	socklen_t len = sizeof(stack);
	bool ok = false;

	if (cc->allow_uids_set ? in_list(cc->allow_uids, cc->n_allow_uids, cr->uid)
	                       : cr->uid == 0 || cr->uid == s->own_uid)
		return true;
	if (!cc->allow_groups_set) {
		gids = cc->has_gid ? &cc->gid : NULL;
		n_gids = cc->has_gid ? 1 : 0;
	}
	if (n_gids == 0)
		return false;
	if (in_list(gids, n_gids, cr->gid))
		return true;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0) {
		if (errno != ERANGE)
			return false;
		groups = malloc(len);
		if (!groups || getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0) {
			free(groups);
			return false;
		}
	}
	for (size_t i = 0; !ok && i < len / sizeof(gid_t); i++)
		ok = in_list(gids, n_gids, groups[i]);
	if (groups != stack)
		free(groups);
	return ok;
}

static void log_refusal(ctl_server *s, const struct ucred *cr) {
	int64_t now = mono_us();

	if (s->last_refusal_log_us && now - s->last_refusal_log_us < REFUSAL_LOG_INTERVAL_US) {
		s->refusals_unlogged++;
		return;
	}
	log_warning("control socket: refused uid %u gid %u (pid %d)%s", (unsigned)cr->uid,
	            (unsigned)cr->gid, (int)cr->pid,
	            s->refusals_unlogged ? " and earlier refusals not logged" : "");
	s->last_refusal_log_us = now;
	s->refusals_unlogged = 0;
}

/*
 * Makes room for the new client NEW when every slot is taken: the client
 * idle the longest (no request in flight or arriving, not tailing) is told
 * and closed, so idle connections cannot lock operators out. Returns false
 * when every other client is busy. Bounded by max_clients, and only runs
 * when they are all taken.
 */
static bool evict_idle(ctl_server *s, struct conn *new) {
	struct conn *oldest = NULL;
	int64_t idle;

	for (struct conn *c = s->conns; c; c = c->next)
		if (c != new && c->idle_armed && !c->close_after_write &&
		    (!oldest || c->active_us < oldest->active_us))
			oldest = c;
	if (!oldest)
		return false;
	s->evicted++;
	uv_timer_stop(&oldest->timer);
	oldest->timer_armed = oldest->idle_armed = false;
	/* One that does not even read its replies is closed without a word. */
	if (oldest->out_bytes > 0) {
		conn_close(oldest);
		return true;
	}
	idle = mono_us() - oldest->active_us;
	reply_error(oldest, -EBUSY, "closed after %s idle: every client slot (max_clients = %" PRId64
	            ") was taken", format_duration(idle - idle % 1000, (char[32]){ 0 }, 32),
	            s->conf->max_clients);
	oldest->close_after_write = true;
	return true;
}

static void on_connection(uv_stream_t *listener, int status) {
	ctl_server *s = listener->data;
	struct ucred cr = { 0 };
	socklen_t len = sizeof(cr);
	struct conn *c;
	uv_os_fd_t fd;

	if (status < 0 || s->closing)
		return;
	c = calloc(1, sizeof(*c));
	if (!c)
		return; /* the connection stays in the backlog until memory returns */
	c->s = s;
	uv_pipe_init(s->env.loop, &c->pipe, 0);
	uv_timer_init(s->env.loop, &c->timer);
	c->pipe.data = c->timer.data = c;
	c->open_handles = 2;
	s->n_allocated++;
	s->n_clients++;
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	if (uv_accept(listener, (uv_stream_t *)&c->pipe) < 0 || uv_fileno((uv_handle_t *)&c->pipe, &fd) < 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0) {
		conn_close(c);
		return;
	}
	c->uid = cr.uid;
	c->gid = cr.gid;
	c->pid = cr.pid;
	if (!peer_allowed(s, fd, &cr)) {
		s->refused++;
		log_refusal(s, &cr);
		reply_error(c, -EACCES, "permission denied: uid %u may not use the control socket "
		            "(ask to be added to group '%s')", (unsigned)cr.uid,
		            s->conf->group ? s->conf->group : "m2md");
		c->close_after_write = true;
		return;
	}
	if (s->n_clients > (size_t)s->conf->max_clients && !evict_idle(s, c)) {
		s->busy_refused++;
		reply_error(c, -EBUSY, "too many clients (max_clients = %" PRId64 ")",
		            s->conf->max_clients);
		c->close_after_write = true;
		return;
	}
	s->accepted++;
	conn_process(c);
}

/* --- the listening socket --- */

/*
 * Removes a socket left behind by a daemon that died, but never a live
 * one (another m2md on the same path) nor a file that is not a socket.
 */
static int clear_stale(const char *path) {
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, r;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	r = r < 0 ? -errno : 0;
	close(fd);
	/* EAGAIN: a live listener with a full backlog. */
	if (r == 0 || r == -EAGAIN)
		return -EADDRINUSE;
	if (r != -ECONNREFUSED)
		return r;
	return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
}

/*
 * Binds under a temporary name, sets mode and group, listens, and only then
 * renames into place: nobody can ever connect to the socket while it still
 * has the umask's permissions or the wrong group.
 */
static int bind_socket(ctl_server *s, int *ret_fd) {
	const ctl_conf *cc = s->conf;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char tmp[sizeof(sa.sun_path)];
	struct stat st;
	int fd, r;

	r = snprintf(tmp, sizeof(tmp), "%s.%u~", cc->socket, (unsigned)getpid());
	if (r < 0 || (size_t)r >= sizeof(tmp))
		return -ENAMETOOLONG;
	r = clear_stale(cc->socket);
	if (r == -EADDRINUSE) {
		log_error("control socket %s: another process is listening on it", cc->socket);
		return r;
	}
	if (r == -EEXIST) {
		log_error("control socket %s: exists and is not a socket; not removing it", cc->socket);
		return r;
	}
	if (r < 0) {
		log_error("control socket %s: %s", cc->socket, m2m_strerror(r));
		return r;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	memcpy(sa.sun_path, tmp, strlen(tmp) + 1);
	(void)unlink(tmp);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		log_error("control socket: cannot bind %s: %s", tmp, m2m_strerror(r));
		goto fail_fd;
	}
	if (chmod(tmp, cc->mode) < 0) {
		r = -errno;
		log_error("control socket: cannot set mode %04o on %s: %s", cc->mode, tmp,
		          m2m_strerror(r));
		goto fail_unlink;
	}
	/*
	 * Under systemd the daemon runs as group m2md and the socket already has
	 * it; chown only when it differs, since the unit's system call filter
	 * refuses chown (@privileged) and the call would fail for nothing.
	 */
	if (cc->has_gid && (stat(tmp, &st) < 0 || st.st_gid != cc->gid) &&
	    chown(tmp, (uid_t)-1, cc->gid) < 0) {
		r = -errno;
		log_error("control socket: cannot give %s to group '%s': %s", tmp, cc->group,
		          m2m_strerror(r));
		goto fail_unlink;
	}
	if (listen(fd, LISTEN_BACKLOG) < 0) {
		r = -errno;
		goto fail_unlink;
	}
	if (rename(tmp, cc->socket) < 0) {
		r = -errno;
		log_error("control socket: cannot move %s to %s: %s", tmp, cc->socket, m2m_strerror(r));
		goto fail_unlink;
	}
	/* Remembered so that close unlinks only our own socket, not a successor's. */
	if (stat(cc->socket, &st) == 0) {
		s->sock_dev = st.st_dev;
		s->sock_ino = st.st_ino;
	}
	*ret_fd = fd;
	return 0;

fail_unlink:
	(void)unlink(tmp);
fail_fd:
	close(fd);
	return r;
}

/* A server whose listener failed after uv_pipe_init: it can only go away once the loop closed it. */
static void on_orphan_closed(uv_handle_t *h) {
	ctl_server *s = h->data;

	ctl_server_free(s);
}

int ctl_server_new(const struct ctl_env *env, ctl_conf *conf, ctl_server **ret) {
	ctl_server *s;
	int fd = -1, r;

	s = calloc(1, sizeof(*s));
	if (!s) {
		ctl_conf_free(conf);
		return -ENOMEM;
	}
	s->env = *env;
	s->conf = conf;
	s->own_uid = geteuid();
	if (conf->group && !conf->has_gid)
		log_notice("control socket: group '%s' does not exist; the socket keeps the daemon's group",
		           conf->group);
	r = bind_socket(s, &fd);
	if (r < 0) {
		ctl_server_free(s);
		return r;
	}
	r = uv_pipe_init(env->loop, &s->listener, 0);
	if (r < 0) {
		close(fd);
		(void)unlink(conf->socket);
		ctl_server_free(s);
		return r;
	}
	s->listener.data = s;
	r = uv_pipe_open(&s->listener, fd);
	if (r < 0)
		close(fd);
	else
		r = uv_listen((uv_stream_t *)&s->listener, LISTEN_BACKLOG, on_connection);
	if (r < 0) {
		log_error("control socket %s: cannot listen: %s", conf->socket, uv_strerror(r));
		(void)unlink(conf->socket);
		uv_close((uv_handle_t *)&s->listener, on_orphan_closed);
		return -EIO;
	}
	s->listener_open = true;
	log_info("control socket %s (mode %04o, group %s)", conf->socket, conf->mode,
	         conf->has_gid ? conf->group : "of the daemon");
	*ret = s;
	return 0;
}

/* --- live readings --- */

static cJSON *reading_json(const struct point *p, const struct m2m_reading *r, const char *text) {
	cJSON *o = cJSON_CreateObject();

	if (!o)
		return NULL;
	cJSON_AddStringToObject(o, "point", p->name);
	cJSON_AddNumberToObject(o, "ts", (double)r->ts_us);
	if (text)
		cJSON_AddStringToObject(o, "value", text);
	else if (isfinite(r->value))
		cJSON_AddNumberToObject(o, "value", r->value);
	else
		cJSON_AddNullToObject(o, "value");
	if (p->a.unit && p->a.unit[0])
		cJSON_AddStringToObject(o, "unit", p->a.unit);
	cJSON_AddStringToObject(o, "quality", quality_name(r->quality));
	return o;
}

void ctl_server_on_reading(ctl_server *s, const struct point *p, const struct m2m_reading *r,
                           const char *text) {
	char *line = NULL;
	size_t len = 0;

	/* The common case, nobody tailing, costs one comparison. */
	if (!s || s->n_tail == 0)
		return;
	for (struct conn *c = s->conns, *next; c; c = next) {
		next = c->next;
		if (!c->tail || c->closing)
			continue;
		if (c->tail_filter && fnmatch(c->tail_filter, p->name, 0) != 0)
			continue;
		/* A client that does not keep up loses readings, counted, instead of growing our memory. */
		if (c->out_bytes >= s->conf->tail_buffer) {
			c->tail_dropped++;
			s->tail_dropped++;
			continue;
		}
		if (c->tail_dropped) {
			char note[64];
			int n = snprintf(note, sizeof(note), "{\"dropped\":%" PRIu64 "}\n", c->tail_dropped);
			c->tail_dropped = 0;
			if (conn_send(c, strndup(note, (size_t)n), (size_t)n) < 0)
				continue;
		}
		if (!line) {
			cJSON *o = reading_json(p, r, text);
			line = o ? ctl_line(o, &len) : NULL;
			cJSON_Delete(o);
			if (!line)
				return;
		}
		char *copy = malloc(len + 1);
		if (!copy)
			continue;
		memcpy(copy, line, len + 1);
		s->tail_lines++;
		conn_send(c, copy, len);
	}
	free(line);
}

/* --- shutdown --- */

static void on_listener_closed(uv_handle_t *h) {
	ctl_server *s = h->data;

	s->listener_open = false;
	maybe_closed(s);
}

void ctl_server_close(ctl_server *s, void (*on_closed)(void *arg), void *arg) {
	struct stat st;

	s->closing = true;
	s->on_closed = on_closed;
	s->on_closed_arg = arg;
	while (s->conns)
		conn_close(s->conns);
	if (s->listener_open && !uv_is_closing((uv_handle_t *)&s->listener)) {
		uv_close((uv_handle_t *)&s->listener, on_listener_closed);
		/* Only our own socket: a new daemon may already have taken the path over. */
		if (s->sock_ino && stat(s->conf->socket, &st) == 0 && st.st_dev == s->sock_dev &&
		    st.st_ino == s->sock_ino)
			(void)unlink(s->conf->socket);
	}
	maybe_closed(s);
}

void ctl_server_free(ctl_server *s) {
	if (!s)
		return;
	/* Connections still allocated here belong to a loop that will not run again. */
	ctl_conf_free(s->conf);
	free(s);
}
