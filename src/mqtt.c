/* SPDX-License-Identifier: MIT */
/*
 * MQTT north side (see mqtt.h and docs/mqtt.md).
 *
 * One libmosquitto instance per connection attempt, in non-threaded mode:
 * the loop watches mosquitto_socket() with a uv_poll and calls
 * mosquitto_loop_read/write when the socket is ready and
 * mosquitto_loop_misc once a second. A fresh instance per attempt means
 * libmosquitto never keeps (or re-sends) a message across a reconnect: the
 * window of outbox messages below is the only record of what is owed to
 * the broker, and it is re-sent from its start, in order, after a
 * reconnect.
 *
 * Durable messages (QoS 1 and 2) are keyed by their payload sequence
 * number. Each is queued to the SQLite outbox first, published once the
 * storage thread reports its insert committed, and its row deleted when
 * the PUBACK (PUBCOMP) arrives. A window of the oldest rows is kept in
 * memory; beyond it rows live only in the database and are fetched back
 * as the window drains.
 *
 * libmosquitto is never destroyed from inside one of its callbacks:
 * callbacks record what happened and the code that called into the
 * library acts on it afterwards (after_io).
 */
#include "mqtt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>
#include <mqtt_protocol.h>

#include "config.h"
#include "error.h"
#include "fmt.h"
#include "log.h"
#include "mqtt-command.h"
#include "mqtt-cork.h"
#include "point.h"
#include "store.h"
#include "util.h"

/*
 * Messages in flight by libmosquitto's message id: chained buckets, as many
 * as max_inflight rounded up to a power of two. A table of every id (65,535)
 * became 512 KiB of resident memory once the ids had gone round once.
 */
#define MID_BUCKETS_MIN 64
/* Sequence numbers are reserved durably in blocks; a new block is asked for at half. */
#define SEQ_BLOCK 1000000
/* QoS 0 messages libmosquitto holds unwritten before new ones are dropped. */
#define QOS0_MAX_PENDING 10000
#define MISC_INTERVAL_MS 1000
/* How long a clean stop waits for the PUBACK of the "offline" status. */
#define STOP_TIMEOUT_MS 2000
#define PAYLOAD_MAX 2048
#define MAX_ADDRS 8
/*
 * Durable messages queued to storage and not yet committed. Beyond this the
 * disk is failing or far behind: new ones are dropped and counted, since
 * the storage queue must not grow without bound.
 */
#define UNCOMMITTED_MAX 200000

enum payload_kind { PAYLOAD_JSON, PAYLOAD_VALUE };
enum telemetry_mode { MODE_READING, MODE_BATCH };
static const char *const payload_names[] = { "json", "value", NULL };
static const char *const mode_names[] = { "reading", "batch", NULL };
static const char *const unstored_names[] = { "drop", "publish", NULL };
static const char *const protocol_names[] = { "3.1.1", "5", NULL };

struct mqtt_conf {
	/* Connection: a change of any of these needs a reconnect. */
	char *url, *host;
	int port;
	bool tls, tls_verify;
	int protocol; /* MQTT_PROTOCOL_V311 or MQTT_PROTOCOL_V5 */
	char *client_id, *username, *password;
	char *ca_file, *cert_file, *key_file;
	int64_t keepalive_us, connect_timeout_us;
	char *prefix, *gateway, *status_topic;
	bool commands;
	int command_qos;
	/* Applied without reconnecting. */
	int64_t reconnect_min_us, reconnect_max_us;
	size_t command_max_payload;
	bool telemetry;
	char *topic_tpl, *batch_topic_tpl;
	int qos;
	bool retain;
	int payload;
	int mode;
	bool publish_unstored; /* QoS 0 only: readings storage did not take are still sent */
	int64_t interval_us;
	uint64_t max_messages;
	int64_t max_age_us;
	int64_t drain_rate;
	int64_t max_inflight;
	int64_t memory_messages;
};

/* One durable message of the window. One allocation with its topic and payload. */
struct omsg {
	struct omsg *next;
	int64_t key; /* = its payload sequence number */
	int mid;     /* libmosquitto's message id while in flight, else 0 */
	struct omsg *mid_next; /* in its bucket of mqtt.mids, while in flight */
	bool acked, sent;
	uint8_t qos;
	bool retain;
	size_t len;
	char *topic;
	char *payload;
	char data[];
};

/* A command waiting for its write's result. */
struct command {
	struct command *next, **pprev;
	mqtt *m; /* NULL once the client is gone */
	char *reply_topic;
	cJSON *id;
	void *corr;
	uint16_t corr_len;
};

/* Batch mode: the latest reading of each point, grouped by device. */
struct bslot {
	int32_t dev;
	bool set;
	int64_t ts_us;
	double value;
	uint16_t quality;
	char *text;
};
struct bdev {
	char *name;
	uint32_t *dirty;
	size_t n_dirty, cap;
};

struct conn_poll {
	uv_poll_t h;
	mqtt *m;
};

enum conn_state { ST_WAITING, ST_RESOLVING, ST_CONNECTING, ST_CONNECTED, ST_STOPPED };
static const char *const state_names[] = { "disconnected", "resolving", "connecting",
	                                          "connected", "stopped" };

struct mqtt {
	struct mqtt_env env;
	mqtt_conf *conf;
	struct mosquitto *mosq;
	struct conn_poll *poll;
	int poll_events;
	uv_timer_t timer, pump_timer, batch_timer;
	uv_async_t async;
	struct mqtt_cork *cork;     /* NULL: writes go uncoalesced */
	uv_getaddrinfo_t gai;
	bool gai_active;
	char addrs[MAX_ADDRS][INET6_ADDRSTRLEN]; /* the broker's, from the last lookup */
	int n_addrs, addr_next;
	int open_handles;
	enum conn_state state;
	bool in_cb, lost, refused;
	bool tcp_up;        /* the socket of the current attempt connected */
	int lost_rc;
	char lib_error[160];
	char last_error[200];
	int attempt;
	uint64_t rng;
	int64_t connected_since_us;
	int64_t ts_sec;     /* the second ts_prefix shows */
	char ts_prefix[32];

	/* Stopping. */
	bool stopping, stop_finishing, offline_acked;
	int offline_mid;
	void (*on_stopped)(void *arg);
	void *stopped_arg;

	/* Sequence numbers and the outbox window. */
	int64_t seq_next, seq_reserved, seq_requested;
	int64_t committed_key, dropped_before, last_put_key, tail_key;
	uint64_t puts_committed; /* the store's count at the last poll */
	bool spilled, fetch_pending;
	int64_t fetch_upto;
	size_t fetch_max;
	struct omsg *head, *tail, *cursor;
	size_t n_window, n_inflight;
	struct omsg **mids;         /* in flight, by mid & (n_mid_buckets - 1) */
	size_t n_mid_buckets;
	int64_t del_first, del_last; /* acknowledged keys whose delete is not queued yet; 0: none */
	double tokens;
	int64_t tokens_us;
	uint64_t outbox_count, outbox_dropped, outbox_dropped_logged;
	int64_t drop_log_next_us, reject_log_next_us;
	uint64_t unstored;          /* dropped because storage was not committing */
	uint64_t unstored_skipped;   /* readings storage did not take, not published */
	uint64_t unstored_published; /* the same, published at QoS 0 */
	int64_t unstored_log_next_us;

	/* Counters. */
	uint64_t connects, connect_failures, disconnects;
	uint64_t sent, acked, resent, rejected, seq_exhausted;
	uint64_t qos0_sent, qos0_dropped, qos0_pending;
	uint64_t cmd_received, cmd_ok, cmd_failed, cmd_invalid;
	int64_t cmd_log_next_us;

	struct command *commands;
	char **topics; /* telemetry topic per point id */
	size_t n_topics;
	struct bslot *slots;
	size_t n_slots;
	struct bdev *devs;
	size_t n_devs;
};

/* ---- small helpers ---- */

/* The one place where libmosquitto result codes become errno values. */
static int mosq_errno(int rc) {
	switch (rc) {
	case MOSQ_ERR_SUCCESS:
	case MOSQ_ERR_CONN_PENDING:
		return 0;
	case MOSQ_ERR_NOMEM:
		return -ENOMEM;
	case MOSQ_ERR_INVAL:
		return -EINVAL;
	case MOSQ_ERR_NO_CONN:
		return -ENOTCONN;
	case MOSQ_ERR_CONN_REFUSED:
		return -ECONNREFUSED;
	case MOSQ_ERR_CONN_LOST:
		return -ECONNRESET;
	case MOSQ_ERR_TLS:
	case MOSQ_ERR_TLS_HANDSHAKE:
	case MOSQ_ERR_PROTOCOL:
	case MOSQ_ERR_MALFORMED_PACKET:
		return -EPROTO;
	case MOSQ_ERR_PAYLOAD_SIZE:
	case MOSQ_ERR_OVERSIZE_PACKET:
		return -EMSGSIZE;
	case MOSQ_ERR_NOT_SUPPORTED:
	case MOSQ_ERR_QOS_NOT_SUPPORTED:
	case MOSQ_ERR_RETAIN_NOT_SUPPORTED:
		return -EOPNOTSUPP;
	case MOSQ_ERR_AUTH:
	case MOSQ_ERR_ACL_DENIED:
		return -EACCES;
	case MOSQ_ERR_ERRNO:
		return errno > 0 ? -errno : -EIO;
	case MOSQ_ERR_EAI:
	case MOSQ_ERR_LOOKUP:
		return -EHOSTUNREACH;
	case MOSQ_ERR_KEEPALIVE:
	case MOSQ_ERR_TIMEOUT:
		return -ETIMEDOUT;
	default:
		return -EIO;
	}
}

/* libmosquitto's text for RC, where it has one. */
static const char *mosq_error_text(int rc) {
	switch (rc) {
	case MOSQ_ERR_KEEPALIVE:
		return "keepalive timeout: the broker stopped answering";
	case MOSQ_ERR_TIMEOUT:
		return "timed out";
	default:
		return mosquitto_strerror(rc);
	}
}

static uint64_t rng_next(mqtt *m) {
	/* xorshift64: jitter needs spread, not secrecy. */
	m->rng ^= m->rng << 13;
	m->rng ^= m->rng >> 7;
	m->rng ^= m->rng << 17;
	return m->rng;
}

static size_t json_escape(const char *s, char *out, size_t n) {
	size_t o = 0;

	for (; *s && o + 7 < n; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\') {
			out[o++] = '\\';
			out[o++] = (char)ch;
		} else if (ch < 0x20) {
			o += (size_t)snprintf(out + o, n - o, "\\u%04x", ch);
		} else {
			out[o++] = (char)ch;
		}
	}
	out[o] = '\0';
	return o;
}

static int format_number(double v, char *buf, size_t n) {
	return fmt_double(v, buf, n);
}

static int format_ts(int64_t us, char *buf, size_t n) {
	int len = format_utc(us, 6, buf, n);

	return len >= 0 ? len : snprintf(buf, n, "1970-01-01T00:00:00.000000Z");
}

/*
 * Expands {prefix}, {gateway}, {device} and {point} of TPL into BUF.
 * Returns the length, or -ENAMETOOLONG.
 */
static int expand(const mqtt_conf *mc, const char *tpl, const char *device, size_t device_len,
                  const char *point, char *buf, size_t n) {
	size_t o = 0;

	for (const char *s = tpl; *s;) {
		const char *v = NULL;
		size_t vl = 0;
		if (*s == '{') {
			if (startswith(s, "{prefix}"))
				v = mc->prefix, vl = strlen(v), s += 8;
			else if (startswith(s, "{gateway}"))
				v = mc->gateway, vl = strlen(v), s += 9;
			else if (startswith(s, "{device}"))
				v = device ? device : "", vl = device ? device_len : 0, s += 8;
			else if (startswith(s, "{point}"))
				v = point ? point : "", vl = strlen(v), s += 7;
		}
		if (!v) {
			v = s++;
			vl = 1;
		}
		if (o + vl + 1 > n)
			return -ENAMETOOLONG;
		memcpy(buf + o, v, vl);
		o += vl;
	}
	buf[o] = '\0';
	return (int)o;
}

/* ---- configuration ---- */

void mqtt_conf_free(mqtt_conf *mc) {
	if (!mc)
		return;
	free(mc->url);
	free(mc->host);
	free(mc->client_id);
	free(mc->username);
	if (mc->password) {
		explicit_bzero(mc->password, strlen(mc->password));
		free(mc->password);
	}
	free(mc->ca_file);
	free(mc->cert_file);
	free(mc->key_file);
	free(mc->prefix);
	free(mc->gateway);
	free(mc->status_topic);
	free(mc->topic_tpl);
	free(mc->batch_topic_tpl);
	free(mc);
}

static int dup_opt(const char *s, char **ret) {
	*ret = NULL;
	if (!s)
		return 0;
	*ret = strdup(s);
	return *ret ? 0 : -ENOMEM;
}

static int parse_url(config *c, const cJSON *item, const char *url, mqtt_conf *mc) {
	const char *h, *end, *colon;
	int64_t port;

	if (startswith(url, "mqtt://")) {
		h = url + 7;
		mc->tls = false;
	} else if (startswith(url, "mqtts://")) {
		h = url + 8;
		mc->tls = true;
	} else {
		return config_error(c, item, "expected a URL mqtt://HOST[:PORT] or mqtts://HOST[:PORT], got \"%s\"", url);
	}
	if (*h == '[') {
		end = strchr(h, ']');
		if (!end)
			return config_error(c, item, "unterminated IPv6 address in \"%s\"", url);
		mc->host = strndup(h + 1, (size_t)(end - h - 1));
		colon = end[1] == ':' ? end + 1 : NULL;
		if (end[1] && !colon)
			return config_error(c, item, "unexpected text after the address in \"%s\"", url);
	} else {
		colon = strchr(h, ':');
		end = colon ? colon : h + strlen(h);
		mc->host = strndup(h, (size_t)(end - h));
	}
	if (!mc->host)
		return -ENOMEM;
	if (!mc->host[0] || strpbrk(mc->host, "/?#@ "))
		return config_error(c, item, "expected a host name or address in \"%s\"", url);
	mc->port = mc->tls ? 8883 : 1883;
	if (colon) {
		if (parse_int64(colon + 1, &port) < 0 || port < 1 || port > 65535)
			return config_error(c, item, "expected a port from 1 to 65535 in \"%s\"", url);
		mc->port = (int)port;
	}
	return 0;
}

/* A template may use only the placeholders listed in ALLOWED, and no wildcard. */
static int check_template(config *c, const cJSON *item, const char *tpl, bool allow_point) {
	if (!*tpl || strpbrk(tpl, "+#"))
		return config_error(c, item, "expected a topic without wildcards ('+', '#'), got \"%s\"", tpl);
	for (const char *s = strchr(tpl, '{'); s; s = strchr(s + 1, '{')) {
		if (startswith(s, "{prefix}") || startswith(s, "{gateway}") || startswith(s, "{device}") ||
		    (allow_point && startswith(s, "{point}")))
			continue;
		return config_error(c, item, "unknown placeholder in \"%s\"; expected {prefix}, {gateway}, "
		                    "{device}%s", tpl, allow_point ? " or {point}" : "");
	}
	if (allow_point && !strstr(tpl, "{point}"))
		return config_error(c, item, "expected {point} in \"%s\": every point needs its own topic", tpl);
	if (!strstr(tpl, "{device}"))
		return config_error(c, item, "expected {device} in \"%s\"", tpl);
	return 0;
}

static int readable_file(config *c, const cJSON *t, const char *key, char **ret) {
	const char *path;
	int r;

	*ret = NULL;
	if ((r = config_string(c, t, key, NULL, &path)) <= 0)
		return r;
	if (path[0] != '/')
		return config_error(c, cJSON_GetObjectItemCaseSensitive(t, key),
		                    "expected an absolute path, got \"%s\"", path);
	if (access(path, R_OK) < 0)
		return config_error(c, cJSON_GetObjectItemCaseSensitive(t, key), "cannot read \"%s\": %s",
		                    path, strerror(errno));
	return dup_opt(path, ret);
}

static int read_password(config *c, const cJSON *t, mqtt_conf *mc) {
	char *path = NULL, buf[512];
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(t, "password_file");
	FILE *f;
	size_t n;
	int r;

	r = readable_file(c, t, "password_file", &path);
	if (r < 0 || !path)
		return r;
	f = fopen(path, "re");
	if (!f) {
		r = config_error(c, item, "cannot open \"%s\": %s", path, strerror(errno));
		free(path);
		return r;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The first line is the password; a trailing newline is not part of it. */
	buf[strcspn(buf, "\r\n")] = '\0';
	if (!buf[0]) {
		r = config_error(c, item, "\"%s\" holds no password on its first line", path);
		free(path);
		return r;
	}
	free(path);
	mc->password = strdup(buf);
	explicit_bzero(buf, sizeof(buf));
	return mc->password ? 0 : -ENOMEM;
}

int mqtt_conf_parse(config *c, const cJSON *root, const char *gateway_id, mqtt_conf **ret) {
	const cJSON *t, *tel, *ob, *cmd;
	const char *url, *s, *topic, *batch_topic;
	int64_t v;
	uint64_t size;
	int err = 0, r, proto, v2;
	mqtt_conf *mc;

	*ret = NULL;
	t = config_item(c, root, "mqtt", cJSON_Object, &err);
	if (err < 0)
		return err;
	if (!t)
		return 0;
	mc = calloc(1, sizeof(*mc));
	if (!mc)
		return -ENOMEM;

	if ((r = config_string(c, t, "url", NULL, &url)) < 0)
		goto fail;
	if (!url) {
		r = config_error(c, t, "missing key 'url' (mqtt://HOST[:PORT] or mqtts://HOST[:PORT])");
		goto fail;
	}
	if ((r = dup_opt(url, &mc->url)) < 0 ||
	    (r = parse_url(c, cJSON_GetObjectItemCaseSensitive(t, "url"), url, mc)) < 0)
		goto fail;
	if ((r = config_enum(c, t, "protocol", protocol_names, 0, &proto)) < 0)
		goto fail;
	mc->protocol = proto == 1 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311;
	if ((r = config_string(c, t, "client_id", gateway_id, &s)) < 0 || (r = dup_opt(s, &mc->client_id)) < 0)
		goto fail;
	if (!mc->client_id || !mc->client_id[0] || strlen(mc->client_id) > 65535) {
		r = config_error(c, t, "expected a non-empty client_id");
		goto fail;
	}
	if ((r = config_string(c, t, "username", NULL, &s)) < 0 || (r = dup_opt(s, &mc->username)) < 0)
		goto fail;
	if ((r = read_password(c, t, mc)) < 0)
		goto fail;
	if (mc->password && !mc->username) {
		r = config_error(c, cJSON_GetObjectItemCaseSensitive(t, "password_file"),
		                 "a password needs a username");
		goto fail;
	}
	if ((r = readable_file(c, t, "ca_file", &mc->ca_file)) < 0 ||
	    (r = readable_file(c, t, "cert_file", &mc->cert_file)) < 0 ||
	    (r = readable_file(c, t, "key_file", &mc->key_file)) < 0 ||
	    (r = config_bool(c, t, "tls_verify", true, &mc->tls_verify)) < 0)
		goto fail;
	if (!mc->tls && (mc->ca_file || mc->cert_file || mc->key_file)) {
		r = config_error(c, cJSON_GetObjectItemCaseSensitive(t, "url"),
		                 "TLS files are set but the URL is not mqtts://");
		goto fail;
	}
	if (!mc->cert_file != !mc->key_file) {
		r = config_error(c, t, "cert_file and key_file go together");
		goto fail;
	}
	if ((r = config_duration(c, t, "keepalive", 30 * 1000000LL, &mc->keepalive_us)) < 0 ||
	    (r = config_duration(c, t, "connect_timeout", 10 * 1000000LL, &mc->connect_timeout_us)) < 0 ||
	    (r = config_duration(c, t, "reconnect_min", 1000000LL, &mc->reconnect_min_us)) < 0 ||
	    (r = config_duration(c, t, "reconnect_max", 120 * 1000000LL, &mc->reconnect_max_us)) < 0)
		goto fail;
	if (mc->keepalive_us < 5000000 || mc->keepalive_us > 65535 * 1000000LL ||
	    mc->keepalive_us % 1000000 != 0) {
		r = config_error(c, cJSON_GetObjectItemCaseSensitive(t, "keepalive"),
		                 "expected whole seconds from 5s to 65535s");
		goto fail;
	}
	if (mc->connect_timeout_us < 100000) {
		r = config_error(c, cJSON_GetObjectItemCaseSensitive(t, "connect_timeout"), "expected at least 100ms");
		goto fail;
	}
	if (mc->reconnect_min_us < 10000 || mc->reconnect_max_us < mc->reconnect_min_us) {
		r = config_error(c, cJSON_GetObjectItemCaseSensitive(t, "reconnect_max"),
		                 "expected reconnect_min >= 10ms and reconnect_max >= reconnect_min");
		goto fail;
	}
	if ((r = config_string(c, t, "topic_prefix", "m2m", &s)) < 0 || (r = dup_opt(s, &mc->prefix)) < 0)
		goto fail;
	if (!s[0] || strpbrk(s, "+#{}") || s[0] == '/' || s[strlen(s) - 1] == '/') {
		r = config_error(c, cJSON_GetObjectItemCaseSensitive(t, "topic_prefix"),
		                 "expected a non-empty topic prefix without wildcards, braces or an outer '/', got \"%s\"", s);
		goto fail;
	}
	if ((r = dup_opt(gateway_id ? gateway_id : "gateway", &mc->gateway)) < 0)
		goto fail;
	mc->status_topic = strdup_printf("%s/%s/status", mc->prefix, mc->gateway);
	if (!mc->status_topic) {
		r = -ENOMEM;
		goto fail;
	}

	tel = config_item(c, t, "telemetry", cJSON_Object, &err);
	if (err < 0) {
		r = err;
		goto fail;
	}
	if ((r = config_bool(c, tel, "enabled", true, &mc->telemetry)) < 0 ||
	    (r = config_string(c, tel, "topic", "{prefix}/{gateway}/{device}/{point}", &topic)) < 0 ||
	    (r = config_string(c, tel, "batch_topic", "{prefix}/{gateway}/{device}", &batch_topic)) < 0 ||
	    (r = config_int(c, tel, "qos", 1, 0, 2, &v)) < 0)
		goto fail;
	mc->qos = (int)v;
	if ((r = config_bool(c, tel, "retain", false, &mc->retain)) < 0 ||
	    (r = config_enum(c, tel, "payload", payload_names, PAYLOAD_JSON, &mc->payload)) < 0 ||
	    (r = config_enum(c, tel, "mode", mode_names, MODE_READING, &mc->mode)) < 0 ||
	    (r = config_duration(c, tel, "interval", 1000000LL, &mc->interval_us)) < 0)
		goto fail;
	if ((r = check_template(c, tel ? cJSON_GetObjectItemCaseSensitive(tel, "topic") : t, topic, true)) < 0 ||
	    (r = check_template(c, tel ? cJSON_GetObjectItemCaseSensitive(tel, "batch_topic") : t, batch_topic, false)) < 0 ||
	    (r = dup_opt(topic, &mc->topic_tpl)) < 0 || (r = dup_opt(batch_topic, &mc->batch_topic_tpl)) < 0)
		goto fail;
	if (mc->interval_us < 10000) {
		r = config_error(c, cJSON_GetObjectItemCaseSensitive(tel, "interval"), "expected at least 10ms");
		goto fail;
	}
	/*
	 * The durable stream carries exactly what was committed, so QoS 1 and
	 * 2 never publish a reading that storage did not take; QoS 0 is a
	 * live view and by default goes on while storage fails.
	 */
	if ((r = config_enum(c, tel, "unstored", unstored_names, mc->qos == 0 ? 1 : 0, &v2)) < 0)
		goto fail;
	mc->publish_unstored = v2 == 1;
	if (mc->publish_unstored && mc->qos > 0) {
		r = config_error(c, cJSON_GetObjectItemCaseSensitive(tel, "unstored"),
		                 "QoS %d telemetry carries only committed readings: expected \"drop\" or qos = 0",
		                 mc->qos);
		goto fail;
	}
	if (mc->mode == MODE_BATCH && mc->payload == PAYLOAD_VALUE) {
		r = config_error(c, cJSON_GetObjectItemCaseSensitive(tel, "payload"),
		                 "mode = \"batch\" publishes one JSON object per device: expected payload = \"json\"");
		goto fail;
	}

	ob = config_item(c, t, "outbox", cJSON_Object, &err);
	if (err < 0) {
		r = err;
		goto fail;
	}
	if ((r = config_int(c, ob, "max_messages", 1000000, 0, INT64_MAX, &v)) < 0)
		goto fail;
	mc->max_messages = (uint64_t)v;
	if ((r = config_duration(c, ob, "max_age", 7 * 86400 * 1000000LL, &mc->max_age_us)) < 0 ||
	    (r = config_int(c, ob, "drain_rate", 20000, 0, 10000000, &mc->drain_rate)) < 0 ||
	    (r = config_int(c, ob, "max_inflight", 100, 1, 65535, &mc->max_inflight)) < 0 ||
	    (r = config_int(c, ob, "memory_messages", 20000, 100, 10000000, &mc->memory_messages)) < 0)
		goto fail;

	cmd = config_item(c, t, "commands", cJSON_Object, &err);
	if (err < 0) {
		r = err;
		goto fail;
	}
	if ((r = config_bool(c, cmd, "enabled", false, &mc->commands)) < 0 ||
	    (r = config_int(c, cmd, "qos", 1, 0, 2, &v)) < 0)
		goto fail;
	mc->command_qos = (int)v;
	if ((r = config_size(c, cmd, "max_payload", 4096, &size)) < 0)
		goto fail;
	if (size < 16 || size > 1024 * 1024) {
		r = config_error(c, cJSON_GetObjectItemCaseSensitive(cmd, "max_payload"),
		                 "expected a size from 16B to 1MiB");
		goto fail;
	}
	mc->command_max_payload = (size_t)size;
	*ret = mc;
	return 0;

fail:
	mqtt_conf_free(mc);
	return r < 0 ? r : -EINVAL;
}

static bool str_eq(const char *a, const char *b) {
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

bool mqtt_conf_same_connection(const mqtt_conf *a, const mqtt_conf *b) {
	return str_eq(a->url, b->url) && a->protocol == b->protocol && str_eq(a->client_id, b->client_id) &&
	       str_eq(a->username, b->username) && str_eq(a->password, b->password) &&
	       str_eq(a->ca_file, b->ca_file) && str_eq(a->cert_file, b->cert_file) &&
	       str_eq(a->key_file, b->key_file) && a->tls_verify == b->tls_verify &&
	       a->keepalive_us == b->keepalive_us && a->connect_timeout_us == b->connect_timeout_us &&
	       str_eq(a->prefix, b->prefix) && str_eq(a->gateway, b->gateway) &&
	       a->commands == b->commands && a->command_qos == b->command_qos;
}

/* ---- events and errors ---- */

static void record_event(mqtt *m, const char *to_state, const char *text) {
	struct store_event e = {
		.ts_us = now_us(),
		.kind = "mqtt",
		.source = m->conf->url,
		.value = NAN,
		.to_state = to_state,
		.text = text,
	};

	if (m->env.event)
		m->env.event(m->env.ctx, &e);
}

static void on_log(struct mosquitto *mosq, void *obj, int level, const char *str) {
	mqtt *m = obj;
	size_t n;

	/* libmosquitto says why TLS failed only here; keep it for the error message. */
	if (!(level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING)))
		return;
	/*
	 * A certificate for another host logs "host name verification failed"
	 * and then OpenSSL's "certificate verify failed", the only line an
	 * untrusted CA gets: while connecting, every line counts, in order.
	 */
	n = m->state == ST_CONNECTED ? 0 : strlen(m->lib_error);
	if (n == 0)
		snprintf(m->lib_error, sizeof(m->lib_error), "%s", str);
	else if (n + 2 < sizeof(m->lib_error))
		snprintf(m->lib_error + n, sizeof(m->lib_error) - n, "; %s", str);
}

static void set_error(mqtt *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(mqtt *m, const char *fmt, ...) {
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(m->last_error, sizeof(m->last_error), fmt, ap);
	va_end(ap);
}

/* ---- the window of durable messages ---- */

static struct omsg *omsg_new(int64_t key, const char *topic, const void *payload, size_t len, int qos,
                             bool retain) {
	size_t tlen = strlen(topic) + 1;
	struct omsg *o = malloc(sizeof(*o) + tlen + len + 1);

	if (!o)
		return NULL;
	memset(o, 0, sizeof(*o));
	o->key = key;
	o->qos = (uint8_t)qos;
	o->retain = retain;
	o->len = len;
	o->topic = o->data;
	memcpy(o->topic, topic, tlen);
	o->payload = o->data + tlen;
	if (len)
		memcpy(o->payload, payload, len);
	o->payload[len] = '\0';
	return o;
}

static void window_append(mqtt *m, struct omsg *o) {
	if (m->tail)
		m->tail->next = o;
	else
		m->head = o;
	m->tail = o;
	if (!m->cursor)
		m->cursor = o;
	m->n_window++;
	m->tail_key = o->key;
}

static struct omsg **mid_bucket(mqtt *m, int mid) {
	return &m->mids[(size_t)mid & (m->n_mid_buckets - 1)];
}

/* The message in flight with MID, or NULL. */
static struct omsg *mid_find(mqtt *m, int mid) {
	struct omsg *o = *mid_bucket(m, mid);

	while (o && o->mid != mid)
		o = o->mid_next;
	return o;
}

static void forget_mid(mqtt *m, struct omsg *o) {
	struct omsg **pp;

	if (o->mid) {
		for (pp = mid_bucket(m, o->mid); *pp && *pp != o; pp = &(*pp)->mid_next)
			;
		if (*pp) {
			*pp = o->mid_next;
			m->n_inflight--;
		}
	}
	o->mid = 0;
	o->mid_next = NULL;
}

/* Frees acknowledged messages at the head (acks may come out of order). */
static void window_trim(mqtt *m) {
	struct omsg *o;

	while ((o = m->head) && (o->acked || o->key < m->dropped_before)) {
		forget_mid(m, o);
		m->head = o->next;
		if (m->cursor == o)
			m->cursor = o->next;
		if (m->tail == o)
			m->tail = NULL;
		m->n_window--;
		free(o);
	}
}

static void window_free(mqtt *m) {
	struct omsg *o, *next;

	for (o = m->head; o; o = next) {
		next = o->next;
		free(o);
	}
	m->head = m->tail = m->cursor = NULL;
	m->n_window = m->n_inflight = 0;
	if (m->mids)
		memset(m->mids, 0, m->n_mid_buckets * sizeof(*m->mids));
}

/* After a connection ends, everything not acknowledged is owed again, from the start. */
static void window_rewind(mqtt *m) {
	for (struct omsg *o = m->head; o; o = o->next)
		forget_mid(m, o);
	memset(m->mids, 0, m->n_mid_buckets * sizeof(*m->mids));
	m->n_inflight = 0;
	m->cursor = m->head;
}

/* Takes the next payload sequence number, or -ENOSPC when none is durably reserved. */
static int64_t next_seq(mqtt *m) {
	if (m->seq_next >= m->seq_reserved) {
		m->seq_exhausted++;
		return -ENOSPC;
	}
	if (m->env.store && m->seq_reserved - m->seq_next < SEQ_BLOCK / 2 &&
	    m->seq_requested <= m->seq_reserved) {
		m->seq_requested = m->seq_reserved + SEQ_BLOCK;
		if (store_outbox_reserve_seq(m->env.store, m->seq_requested) < 0)
			m->seq_requested = 0;
	}
	return m->seq_next++;
}

static void pump(mqtt *m);
static void after_io(mqtt *m, int rc);

/* Queues the deletes of acknowledged rows, one statement per run of consecutive keys. */
static void flush_deletes(mqtt *m) {
	if (m->del_first && m->env.store)
		store_outbox_delete_range(m->env.store, m->del_first, m->del_last);
	m->del_first = m->del_last = 0;
}

static void row_done(mqtt *m, int64_t key) {
	if (m->del_first && key == m->del_last + 1) {
		m->del_last = key;
		return;
	}
	flush_deletes(m);
	m->del_first = m->del_last = key;
}

/* Queues a durable message: into the outbox, and into the window while it has room. */
static int outbox_add(mqtt *m, int64_t seq, const char *topic, const char *payload, size_t len,
                      int qos, bool retain) {
	struct store_outbox_msg sm = {
		.key = seq, .ts_us = now_us(), .topic = topic, .payload = payload, .len = len,
		.qos = qos, .retain = retain,
	};
	struct omsg *o;
	int r;

	if (m->env.store) {
		/*
		 * Counted, not derived from keys: sequence numbers jump at a
		 * restart (a reserved block) while the outbox may hold old rows
		 * or none, so a difference of keys says nothing about what waits.
		 */
		uint64_t waiting = store_outbox_puts(m->env.store) - m->puts_committed;
		if (waiting >= UNCOMMITTED_MAX) {
			m->unstored++;
			if (mono_us() >= m->unstored_log_next_us) {
				log_error("mqtt: storage is not committing the outbox (%" PRIu64 " messages waiting); "
				          "%" PRIu64 " QoS 1/2 messages dropped so far", waiting, m->unstored);
				m->unstored_log_next_us = mono_us() + 10000000;
			}
			return -ENOBUFS;
		}
		r = store_outbox_put(m->env.store, &sm);
		if (r < 0)
			return r;
	}
	m->last_put_key = seq;
	if (!m->env.store)
		m->committed_key = seq;
	if (m->spilled || m->n_window >= (size_t)m->conf->memory_messages) {
		/* The row is in the database; it is read back when the window has room. */
		m->spilled = true;
		return 0;
	}
	o = omsg_new(seq, topic, payload, len, qos, retain);
	if (!o) {
		m->spilled = true;
		return 0;
	}
	window_append(m, o);
	if (!m->env.store)
		pump(m);
	return 0;
}

static void maybe_fetch(mqtt *m) {
	size_t room, max;
	int r;

	if (!m->spilled || m->fetch_pending || !m->env.store || m->stopping)
		return;
	room = (size_t)m->conf->memory_messages > m->n_window ? (size_t)m->conf->memory_messages - m->n_window : 0;
	max = room < 10000 ? room : 10000;
	if (max == 0 || (max < 1000 && m->n_window > 0))
		return;
	if (m->committed_key <= m->tail_key)
		return; /* The next rows are not committed yet: the next notification brings them. */
	r = store_outbox_fetch(m->env.store, m->tail_key, m->committed_key, max);
	if (r < 0)
		return;
	m->fetch_pending = true;
	m->fetch_upto = m->committed_key;
	m->fetch_max = max;
}

static void take_fetched(mqtt *m, const struct store_outbox_state *st) {
	struct store_outbox_row *row, *rows = st->fetched;
	int64_t last = 0;

	m->fetch_pending = false;
	if (st->fetch_error < 0) {
		log_warning("mqtt: cannot read the outbox back: %s; retrying", m2m_strerror(st->fetch_error));
		store_outbox_rows_free(rows);
		return;
	}
	for (row = rows; row; row = row->next) {
		struct omsg *o;
		last = row->key;
		if (row->key <= m->tail_key || row->key < m->dropped_before)
			continue;
		o = omsg_new(row->key, row->topic, row->payload, row->len, row->qos, row->retain);
		if (!o)
			break;
		window_append(m, o);
	}
	store_outbox_rows_free(rows);
	/* A short answer means every committed row up to the fetch's bound is here now. */
	if (st->n_fetched >= m->fetch_max)
		m->tail_key = last > m->tail_key ? last : m->tail_key;
	else if (m->fetch_upto > m->tail_key)
		m->tail_key = m->fetch_upto;
	if (m->tail_key >= m->last_put_key)
		m->spilled = false;
}

/* Collects what the storage thread reported. */
static void outbox_poll(mqtt *m) {
	struct store_outbox_state st;

	if (!m->env.store)
		return;
	store_outbox_poll(m->env.store, &st);
	if (st.committed_key > m->committed_key)
		m->committed_key = st.committed_key;
	if (st.puts_committed > m->puts_committed)
		m->puts_committed = st.puts_committed;
	if (st.seq_reserved > m->seq_reserved)
		m->seq_reserved = st.seq_reserved;
	m->outbox_count = st.count;
	m->outbox_dropped = st.dropped;
	if (st.dropped_before > m->dropped_before) {
		m->dropped_before = st.dropped_before;
		window_trim(m);
		if (m->tail_key < m->dropped_before - 1 && !m->head)
			m->tail_key = m->dropped_before - 1;
	}
	/* A long outage drops at every commit: one line (and event) per 10 s says it. */
	if (m->outbox_dropped > m->outbox_dropped_logged && mono_us() >= m->drop_log_next_us) {
		char text[128];
		snprintf(text, sizeof(text), "%" PRIu64 " outbox messages dropped (oldest first) by max_messages/max_age",
		         m->outbox_dropped - m->outbox_dropped_logged);
		log_warning("mqtt: %s; %" PRIu64 " dropped since start", text, m->outbox_dropped);
		record_event(m, "dropped", text);
		m->outbox_dropped_logged = m->outbox_dropped;
		m->drop_log_next_us = mono_us() + 10000000;
	}
	if (st.fetch_done)
		take_fetched(m, &st);
	else
		store_outbox_rows_free(st.fetched);
}

static void on_async(uv_async_t *a) {
	mqtt *m = a->data;

	outbox_poll(m);
	pump(m);
}

static void notify_from_store(void *arg) {
	mqtt *m = arg;

	uv_async_send(&m->async);
}

/* ---- publishing ---- */

/* MQTT 5 only: the sequence number as a user property, for payloads that cannot carry it. */
static mosquitto_property *seq_props(mqtt *m, int64_t seq) {
	mosquitto_property *props = NULL;
	char buf[24];

	if (m->conf->protocol != MQTT_PROTOCOL_V5 || seq <= 0)
		return NULL;
	snprintf(buf, sizeof(buf), "%" PRId64, seq);
	if (mosquitto_property_add_string_pair(&props, MQTT_PROP_USER_PROPERTY, "seq", buf) != MOSQ_ERR_SUCCESS)
		return NULL;
	return props;
}

static int publish_raw(mqtt *m, int *mid, const char *topic, const void *payload, size_t len, int qos,
                       bool retain, const mosquitto_property *props) {
	if (len > INT32_MAX)
		return MOSQ_ERR_PAYLOAD_SIZE;
	mqtt_cork_hold(m->cork, mosquitto_socket(m->mosq));
	return mosquitto_publish_v5(m->mosq, mid, topic, (int)len, payload, qos, retain, props);
}

static void refill_tokens(mqtt *m) {
	int64_t now = mono_us();
	double cap;

	if (m->conf->drain_rate <= 0)
		return;
	cap = (double)m->conf->drain_rate / 20 + 1;
	m->tokens += (double)(now - m->tokens_us) * (double)m->conf->drain_rate / 1e6;
	if (m->tokens > cap)
		m->tokens = cap;
	m->tokens_us = now;
}

static void on_pump_timer(uv_timer_t *t) {
	mqtt *m = t->data;

	pump(m);
}

/*
 * Sends what the window owes: committed messages, in order, within the
 * in-flight bound and the drain rate.
 */
static void pump(mqtt *m) {
	int rc = MOSQ_ERR_SUCCESS;

	if (m->state != ST_CONNECTED || m->stopping || m->lost) {
		flush_deletes(m);
		maybe_fetch(m);
		return;
	}
	refill_tokens(m);
	while (m->cursor && m->n_inflight < (size_t)m->conf->max_inflight) {
		struct omsg *o = m->cursor, *old;
		mosquitto_property *props;
		int mid = 0;

		if (o->acked) {
			m->cursor = o->next;
			continue;
		}
		if (o->key > m->committed_key)
			break;
		if (m->conf->drain_rate > 0 && m->tokens < 1) {
			if (!uv_is_active((uv_handle_t *)&m->pump_timer))
				uv_timer_start(&m->pump_timer, on_pump_timer, 5, 0);
			break;
		}
		props = o->payload[0] == '{' ? NULL : seq_props(m, o->key);
		rc = publish_raw(m, &mid, o->topic, o->payload, o->len, o->qos, o->retain, props);
		mosquitto_property_free_all(&props);
		if (rc == MOSQ_ERR_PAYLOAD_SIZE || rc == MOSQ_ERR_OVERSIZE_PACKET || rc == MOSQ_ERR_QOS_NOT_SUPPORTED ||
		    rc == MOSQ_ERR_RETAIN_NOT_SUPPORTED || rc == MOSQ_ERR_INVAL) {
			/* This message can never go: say so and let the rest through. */
			m->rejected++;
			if (mono_us() >= m->reject_log_next_us) {
				log_error("mqtt: message %" PRId64 " to \"%s\" refused: %s; deleting it"
				          " (%" PRIu64 " refused so far)", o->key, o->topic, mosquitto_strerror(rc),
				          m->rejected);
				m->reject_log_next_us = mono_us() + 10000000;
			}
			o->acked = true;
			row_done(m, o->key);
			m->cursor = o->next;
			rc = MOSQ_ERR_SUCCESS;
			continue;
		}
		if (rc != MOSQ_ERR_SUCCESS)
			break;
		if ((old = mid_find(m, mid)) && old != o) {
			/* An old message still holds this id: start the connection over, cleanly. */
			forget_mid(m, old);
			m->lost = true;
			m->lost_rc = MOSQ_ERR_PROTOCOL;
		}
		if (old == o)
			forget_mid(m, o); /* counted once below */
		o->mid = mid;
		o->mid_next = *mid_bucket(m, mid);
		*mid_bucket(m, mid) = o;
		m->n_inflight++;
		if (o->sent)
			m->resent++;
		o->sent = true;
		m->sent++;
		m->cursor = o->next;
		m->tokens -= 1;
	}
	window_trim(m);
	maybe_fetch(m);
	flush_deletes(m);
	if (!m->in_cb)
		after_io(m, rc);
	else if (rc != MOSQ_ERR_SUCCESS)
		m->lost = true, m->lost_rc = rc;
}

/* Publishes at QoS 0 right away, or drops and counts when that is impossible. */
static void publish_qos0(mqtt *m, int64_t seq, const char *topic, const char *payload, size_t len, bool retain) {
	mosquitto_property *props;
	int mid = 0, rc;

	if (m->state != ST_CONNECTED || m->lost || m->qos0_pending >= QOS0_MAX_PENDING) {
		m->qos0_dropped++;
		return;
	}
	props = payload[0] == '{' ? NULL : seq_props(m, seq);
	rc = publish_raw(m, &mid, topic, payload, len, 0, retain, props);
	mosquitto_property_free_all(&props);
	if (rc != MOSQ_ERR_SUCCESS) {
		m->qos0_dropped++;
		if (!m->in_cb)
			after_io(m, rc);
		return;
	}
	/* A message id that an old, unacknowledged QoS 1 message still holds: start over cleanly. */
	if (mid_find(m, mid)) {
		m->lost = true;
		m->lost_rc = MOSQ_ERR_PROTOCOL;
	}
	m->qos0_sent++;
	m->qos0_pending++;
	if (!m->in_cb)
		after_io(m, MOSQ_ERR_SUCCESS);
}

static int emit(mqtt *m, int64_t seq, const char *topic, const char *payload, size_t len, int qos,
                bool retain) {
	if (qos == 0) {
		publish_qos0(m, seq, topic, payload, len, retain);
		return 0;
	}
	return outbox_add(m, seq, topic, payload, len, qos, retain);
}

int mqtt_publish(mqtt *m, const char *topic, const char *payload, int qos, bool retain) {
	cJSON *o = NULL;
	char *with_seq = NULL;
	int64_t seq;
	int r;

	if (!m || m->stopping)
		return -ESHUTDOWN;
	if (!topic || !*topic || strpbrk(topic, "+#") || !payload || qos < 0 || qos > 2)
		return -EINVAL;
	seq = next_seq(m);
	if (seq < 0)
		return (int)seq;
	/* A JSON object gets the sequence number like telemetry does; other text cannot carry it. */
	if (payload[0] == '{' && (o = cJSON_Parse(payload)) && cJSON_IsObject(o) &&
	    !cJSON_GetObjectItemCaseSensitive(o, "seq") && cJSON_AddNumberToObject(o, "seq", (double)seq))
		with_seq = json_print(o, false);
	cJSON_Delete(o);
	if (with_seq)
		payload = with_seq;
	r = emit(m, seq, topic, payload, strlen(payload), qos, retain);
	free(with_seq);
	return r;
}

/* ---- telemetry ---- */

static const char *point_topic(mqtt *m, const struct point *p) {
	const char *slash;
	char buf[1024];
	int n;

	if (p->id >= m->n_topics) {
		size_t cap = p->id + 64;
		char **t = realloc(m->topics, cap * sizeof(*t));
		if (!t)
			return NULL;
		memset(t + m->n_topics, 0, (cap - m->n_topics) * sizeof(*t));
		m->topics = t;
		m->n_topics = cap;
	}
	if (m->topics[p->id])
		return m->topics[p->id];
	slash = strchr(p->name, '/');
	if (!slash)
		return NULL;
	n = expand(m->conf, m->conf->topic_tpl, p->name, (size_t)(slash - p->name), slash + 1, buf, sizeof(buf));
	if (n < 0)
		return NULL;
	m->topics[p->id] = strdup(buf);
	return m->topics[p->id];
}

static void topics_clear(mqtt *m) {
	for (size_t i = 0; i < m->n_topics; i++)
		free(m->topics[i]);
	free(m->topics);
	m->topics = NULL;
	m->n_topics = 0;
}

/* Appends to a fixed buffer; a payload that does not fit is dropped whole. */
struct out {
	char *p, *end;
};

static void put(struct out *o, const char *s, size_t n) {
	if ((size_t)(o->end - o->p) <= n) {
		o->p = o->end; /* overflow: stays full */
		return;
	}
	memcpy(o->p, s, n);
	o->p += n;
}

static void put_str(struct out *o, const char *s) {
	put(o, s, strlen(s));
}

/* Digits of V (>= 0), at least WIDTH of them. */
static void put_uint(struct out *o, uint64_t v, int width) {
	char buf[24];
	int i = sizeof(buf);

	do {
		buf[--i] = (char)('0' + v % 10);
		v /= 10;
		width--;
	} while (v || width > 0);
	put(o, buf + i, sizeof(buf) - (size_t)i);
}

/* The timestamp as ISO 8601 UTC with µs; the date and time part is formatted once a second. */
static void put_ts(mqtt *m, struct out *o, int64_t us) {
	int64_t sec = us / 1000000, frac = us % 1000000;

	if (frac < 0) {
		frac += 1000000;
		sec--;
	}
	if (sec != m->ts_sec || !m->ts_prefix[0]) {
		char buf[64];
		format_ts(sec * 1000000, buf, sizeof(buf));
		/* "YYYY-MM-DDTHH:MM:SS" without ".000000Z". */
		snprintf(m->ts_prefix, sizeof(m->ts_prefix), "%.*s", (int)(strlen(buf) - 8), buf);
		m->ts_sec = sec;
	}
	put_str(o, m->ts_prefix);
	put(o, ".", 1);
	put_uint(o, (uint64_t)frac, 6);
	put(o, "Z", 1);
}

/*
 * One reading as {"ts":...,"value":...,"unit":...,"quality":...,"seq":N},
 * or the bare value. The hot path of telemetry: no printf but for numbers.
 */
static int format_reading(mqtt *m, const struct point *p, const struct m2m_reading *r, const char *text,
                          int64_t seq, char *buf, size_t n) {
	struct out o = { buf, buf + n };
	char val[600];
	bool good = r->quality == M2M_QUALITY_GOOD;

	if (text) {
		val[0] = '"';
		json_escape(text, val + 1, sizeof(val) - 2);
		strcat(val, "\"");
	} else if (!good && isnan(r->value)) {
		snprintf(val, sizeof(val), "null");
	} else if (p->a.kind == POINT_BOOL && m->conf->payload == PAYLOAD_JSON) {
		snprintf(val, sizeof(val), "%s", r->value != 0 ? "true" : "false");
	} else {
		format_number(r->value, val, sizeof(val));
	}
	if (m->conf->payload == PAYLOAD_VALUE) {
		/* The bare value: a string point's text as is, without JSON quotes. */
		return snprintf(buf, n, "%s", text ? text : val);
	}
	put_str(&o, "{\"ts\":\"");
	put_ts(m, &o, r->ts_us);
	put_str(&o, "\",\"value\":");
	put_str(&o, val);
	put_str(&o, ",\"unit\":\"");
	if (p->a.unit && p->a.unit[0]) {
		char unit[200];
		put_str(&o, json_escape(p->a.unit, unit, sizeof(unit)) ? unit : "");
	}
	put_str(&o, "\",\"quality\":\"");
	put_str(&o, quality_name(r->quality));
	put_str(&o, "\",\"seq\":");
	put_uint(&o, (uint64_t)seq, 1);
	put(&o, "}", 1);
	if (o.p >= o.end)
		return -ENOBUFS;
	*o.p = '\0';
	return (int)(o.p - buf);
}

static int batch_add(mqtt *m, const struct point *p, const struct m2m_reading *r, const char *text) {
	struct bslot *s;
	struct bdev *dv;
	const char *slash = strchr(p->name, '/');

	if (!slash)
		return -EINVAL;
	if (p->id >= m->n_slots) {
		size_t cap = p->id + 64;
		struct bslot *ns = realloc(m->slots, cap * sizeof(*ns));
		if (!ns)
			return -ENOMEM;
		for (size_t i = m->n_slots; i < cap; i++)
			ns[i] = (struct bslot){ .dev = -1 };
		m->slots = ns;
		m->n_slots = cap;
	}
	s = &m->slots[p->id];
	if (s->dev < 0) {
		size_t dl = (size_t)(slash - p->name), i;
		for (i = 0; i < m->n_devs; i++)
			if (strlen(m->devs[i].name) == dl && memcmp(m->devs[i].name, p->name, dl) == 0)
				break;
		if (i == m->n_devs) {
			struct bdev *nd = realloc(m->devs, (m->n_devs + 1) * sizeof(*nd));
			if (!nd)
				return -ENOMEM;
			m->devs = nd;
			nd[i] = (struct bdev){ .name = strndup(p->name, dl) };
			if (!nd[i].name)
				return -ENOMEM;
			m->n_devs++;
		}
		s->dev = (int32_t)i;
	}
	dv = &m->devs[s->dev];
	if (!s->set) {
		if (dv->n_dirty == dv->cap) {
			size_t cap = dv->cap ? dv->cap * 2 : 16;
			uint32_t *nd = realloc(dv->dirty, cap * sizeof(*nd));
			if (!nd)
				return -ENOMEM;
			dv->dirty = nd;
			dv->cap = cap;
		}
		dv->dirty[dv->n_dirty++] = p->id;
		s->set = true;
	}
	s->ts_us = r->ts_us;
	s->value = r->value;
	s->quality = r->quality;
	free(s->text);
	s->text = NULL;
	if (text && !(s->text = strdup(text)))
		return -ENOMEM;
	return 0;
}

/* Publishes one JSON object per device that had readings since the last cycle. */
static void batch_flush(mqtt *m) {
	for (size_t d = 0; d < m->n_devs; d++) {
		struct bdev *dv = &m->devs[d];
		cJSON *o, *pts;
		char topic[1024], ts[64], *payload;
		int64_t seq;

		if (dv->n_dirty == 0)
			continue;
		o = cJSON_CreateObject();
		pts = o ? cJSON_AddObjectToObject(o, "points") : NULL;
		for (size_t i = 0; i < dv->n_dirty; i++) {
			struct bslot *s = &m->slots[dv->dirty[i]];
			struct point *p = registry_get(m->env.reg, dv->dirty[i]);
			cJSON *pj;
			s->set = false;
			if (!pts || !p || !(pj = cJSON_AddObjectToObject(pts, strchr(p->name, '/') + 1)))
				continue;
			format_ts(s->ts_us, ts, sizeof(ts));
			cJSON_AddStringToObject(pj, "ts", ts);
			if (s->text)
				cJSON_AddStringToObject(pj, "value", s->text);
			else if (!isfinite(s->value))
				cJSON_AddNullToObject(pj, "value");
			else if (p->a.kind == POINT_BOOL)
				cJSON_AddBoolToObject(pj, "value", s->value != 0);
			else
				cJSON_AddNumberToObject(pj, "value", s->value);
			cJSON_AddStringToObject(pj, "unit", p->a.unit ? p->a.unit : "");
			cJSON_AddStringToObject(pj, "quality", quality_name(s->quality));
			free(s->text);
			s->text = NULL;
		}
		dv->n_dirty = 0;
		seq = o ? next_seq(m) : -ENOMEM;
		if (seq < 0) {
			cJSON_Delete(o);
			continue;
		}
		format_ts(now_us(), ts, sizeof(ts));
		cJSON_AddStringToObject(o, "ts", ts);
		cJSON_AddNumberToObject(o, "seq", (double)seq);
		payload = json_print(o, false);
		cJSON_Delete(o);
		if (payload && expand(m->conf, m->conf->batch_topic_tpl, dv->name, strlen(dv->name), NULL, topic,
		                      sizeof(topic)) >= 0)
			emit(m, seq, topic, payload, strlen(payload), m->conf->qos, m->conf->retain);
		free(payload);
	}
}

static void on_batch_timer(uv_timer_t *t) {
	batch_flush(t->data);
}

static void batch_free(mqtt *m) {
	for (size_t i = 0; i < m->n_slots; i++)
		free(m->slots[i].text);
	free(m->slots);
	for (size_t i = 0; i < m->n_devs; i++) {
		free(m->devs[i].name);
		free(m->devs[i].dirty);
	}
	free(m->devs);
	m->slots = NULL;
	m->devs = NULL;
	m->n_slots = m->n_devs = 0;
}

void mqtt_on_reading(mqtt *m, const struct point *p, const struct m2m_reading *r, const char *text,
                     bool stored) {
	char payload[PAYLOAD_MAX];
	const char *topic;
	int64_t seq;
	int n;

	if (!m || !m->conf->telemetry || m->stopping)
		return;
	if (!stored) {
		if (!m->conf->publish_unstored) {
			m->unstored_skipped++;
			return;
		}
		m->unstored_published++;
	}
	if (m->conf->mode == MODE_BATCH) {
		batch_add(m, p, r, text);
		return;
	}
	topic = point_topic(m, p);
	if (!topic)
		return;
	seq = next_seq(m);
	if (seq < 0)
		return;
	n = format_reading(m, p, r, text, seq, payload, sizeof(payload));
	if (n < 0 || (size_t)n >= sizeof(payload))
		return;
	emit(m, seq, topic, payload, (size_t)n, m->conf->qos, m->conf->retain);
}

/* ---- commands ---- */

static void command_free(struct command *cmd) {
	if (!cmd)
		return;
	if (cmd->pprev) {
		*cmd->pprev = cmd->next;
		if (cmd->next)
			cmd->next->pprev = cmd->pprev;
	}
	cJSON_Delete(cmd->id);
	free(cmd->corr);
	free(cmd->reply_topic);
	free(cmd);
}

static void command_reply(mqtt *m, struct command *cmd, int status, const char *error_text) {
	mosquitto_property *props = NULL;
	cJSON *o = cJSON_CreateObject();
	char *payload;
	int rc;

	if (status < 0)
		m->cmd_failed++;
	else
		m->cmd_ok++;
	if (!o)
		return;
	if (cmd->id)
		cJSON_AddItemToObject(o, "id", cJSON_Duplicate(cmd->id, true));
	cJSON_AddBoolToObject(o, "ok", status >= 0);
	if (status < 0)
		cJSON_AddStringToObject(o, "error", error_text && *error_text ? error_text : m2m_strerror(status));
	payload = json_print(o, false);
	cJSON_Delete(o);
	if (!payload)
		return;
	if (cmd->corr && m->conf->protocol == MQTT_PROTOCOL_V5)
		mosquitto_property_add_binary(&props, MQTT_PROP_CORRELATION_DATA, cmd->corr, cmd->corr_len);
	if (m->state == ST_CONNECTED && !m->lost) {
		rc = publish_raw(m, NULL, cmd->reply_topic, payload, strlen(payload), m->conf->command_qos, false, props);
		if (rc != MOSQ_ERR_SUCCESS)
			log_warning("mqtt: cannot send the reply to \"%s\": %s", cmd->reply_topic, mosquitto_strerror(rc));
		else if (!m->in_cb)
			after_io(m, rc);
	} else {
		log_warning("mqtt: reply to \"%s\" lost: not connected", cmd->reply_topic);
	}
	mosquitto_property_free_all(&props);
	free(payload);
}

static void on_write_done(int status, const char *error_text, void *arg) {
	struct command *cmd = arg;

	if (cmd->m)
		command_reply(cmd->m, cmd, status, error_text);
	command_free(cmd);
}

static void handle_command(mqtt *m, const struct mosquitto_message *msg, const mosquitto_property *props);

static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg,
                       const mosquitto_property *props) {
	mqtt *m = obj;

	m->in_cb = true;
	handle_command(m, msg, props);
	m->in_cb = false;
}

static void handle_command(mqtt *m, const struct mosquitto_message *msg, const mosquitto_property *props) {
	struct command *cmd;
	const char *t = msg->topic, *err = NULL;
	char point[256];
	double value = NAN;
	void *corr = NULL;
	uint16_t corr_len = 0;
	int r;

	if (mqtt_command_topic(t, m->conf->prefix, m->conf->gateway, point, sizeof(point)) < 0)
		return;
	m->cmd_received++;
	cmd = calloc(1, sizeof(*cmd));
	if (!cmd)
		return;
	cmd->m = m;
	cmd->reply_topic = strdup_printf("%s/result", t);
	if (props)
		mosquitto_property_read_binary(props, MQTT_PROP_CORRELATION_DATA, &corr, &corr_len, false);
	cmd->corr = corr;
	cmd->corr_len = corr_len;
	if (!cmd->reply_topic) {
		command_free(cmd);
		return;
	}
	if ((size_t)msg->payloadlen > m->conf->command_max_payload)
		err = "payload too large";
	else if (msg->payloadlen <= 0)
		err = "malformed payload: empty";
	else
		err = mqtt_command_parse(msg->payload, (size_t)msg->payloadlen, &value, &cmd->id);
	/* Parsed first all the same: the refusal echoes the request's id. */
	if (msg->retain)
		err = "retained commands are refused: a command must not repeat at every connect";
	if (!err && !point_name_valid(point))
		err = "unknown point";
	if (err) {
		m->cmd_invalid++;
		/* Anyone who may publish can send these: at most one line a second in the log. */
		if (mono_us() >= m->cmd_log_next_us) {
			log_warning("mqtt: command on \"%s\" refused: %s (%" PRIu64 " refused so far)", t, err,
			            m->cmd_invalid);
			m->cmd_log_next_us = mono_us() + 1000000;
		}
		command_reply(m, cmd, -EINVAL, err);
		command_free(cmd);
		return;
	}
	if (!m->env.write) {
		command_reply(m, cmd, -EOPNOTSUPP, NULL);
		command_free(cmd);
		return;
	}
	cmd->pprev = &m->commands;
	cmd->next = m->commands;
	if (cmd->next)
		cmd->next->pprev = &cmd->next;
	m->commands = cmd;
	/* The core checks writable, kind and limits, and records the event. */
	r = m->env.write(m->env.ctx, "mqtt", point, value, on_write_done, cmd);
	if (r < 0) {
		command_reply(m, cmd, r, r == -ENOENT ? "unknown point" : m2m_strerror(r));
		command_free(cmd);
	}
}

/* ---- the connection ---- */

static void on_timer(uv_timer_t *t);
static void start_connect(mqtt *m);

static int64_t backoff_us(mqtt *m) {
	int64_t d = m->conf->reconnect_min_us;

	for (int i = 0; i < m->attempt && d < m->conf->reconnect_max_us; i++)
		d *= 2;
	if (d > m->conf->reconnect_max_us)
		d = m->conf->reconnect_max_us;
	/* Equal jitter: half fixed, half random, so a fleet does not reconnect in step. */
	return d / 2 + (int64_t)(rng_next(m) % (uint64_t)(d / 2 + 1));
}

static void poll_closed(uv_handle_t *h) {
	free(h->data);
}

static void poll_close(mqtt *m) {
	if (!m->poll)
		return;
	uv_poll_stop(&m->poll->h);
	m->poll->h.data = m->poll;
	uv_close((uv_handle_t *)&m->poll->h, poll_closed);
	m->poll = NULL;
	m->poll_events = 0;
}

static void finish_stop(mqtt *m);
static void connect_next_addr(mqtt *m);

/*
 * A connection that failed on a write or a socket error may still have
 * the broker's last packets unread (a PUBACK that refuses a message, sent
 * just before the broker closed): they are acted on before the rewind, or
 * a refused message would be sent again at every connection.
 */
static void read_remains(mqtt *m) {
	m->lost = true; /* what the callbacks do now must not publish */
	for (int i = 0; i < 1000 && mosquitto_socket(m->mosq) >= 0; i++) {
		errno = 0;
		if (mosquitto_loop_read(m->mosq, 1) != MOSQ_ERR_SUCCESS || errno == EAGAIN || errno == EWOULDBLOCK)
			break;
	}
}

/* The connection ended (or never came up): clean up and wait for the next attempt. */
static void connection_lost(mqtt *m, int rc) {
	bool was_connected = m->state == ST_CONNECTED;
	int saved_errno = errno; /* for MOSQ_ERR_ERRNO; cleaning up below may change errno */
	char why[200], delay[32];
	int64_t wait;

	if (was_connected && m->mosq)
		read_remains(m);
	poll_close(m);
	if (m->mosq) {
		mosquitto_destroy(m->mosq);
		m->mosq = NULL;
	}
	if (!was_connected && !m->stopping && !m->refused && m->addr_next < m->n_addrs) {
		log_debug("mqtt: %s: cannot connect to %s: %s; trying the next address", m->conf->url,
		          m->addrs[m->addr_next - 1], mosquitto_strerror(rc));
		m->lib_error[0] = '\0';
		connect_next_addr(m);
		return;
	}
	window_rewind(m);
	m->qos0_pending = 0;
	m->lost = false;
	errno = saved_errno;
	if (m->refused)
		snprintf(why, sizeof(why), "%s", m->last_error);
	else if (m->lib_error[0] && (rc == MOSQ_ERR_TLS || rc == MOSQ_ERR_TLS_HANDSHAKE || rc == MOSQ_ERR_PROTOCOL))
		snprintf(why, sizeof(why), "%s (%s)", mosquitto_strerror(rc), m->lib_error);
	else if (rc == MOSQ_ERR_ERRNO || rc == MOSQ_ERR_CONN_LOST || rc == MOSQ_ERR_NO_CONN)
		snprintf(why, sizeof(why), "%s", m2m_strerror(mosq_errno(rc)));
	else if (rc != MOSQ_ERR_SUCCESS)
		snprintf(why, sizeof(why), "%s", mosq_error_text(rc));
	else
		snprintf(why, sizeof(why), "connection closed");
	m->refused = false;
	m->lib_error[0] = '\0';
	flush_deletes(m);
	if (m->stopping) {
		m->state = ST_STOPPED;
		finish_stop(m);
		return;
	}
	m->state = ST_WAITING;
	wait = backoff_us(m);
	m->attempt++;
	set_error(m, "%s", why);
	if (was_connected) {
		m->disconnects++;
		log_warning("mqtt: connection to %s lost: %s; reconnecting in %s", m->conf->url, why,
		            format_duration(wait, delay, sizeof(delay)));
		record_event(m, "disconnected", why);
	} else {
		m->connect_failures++;
		log_warning("mqtt: cannot connect to %s: %s; retrying in %s", m->conf->url, why,
		            format_duration(wait, delay, sizeof(delay)));
		if (m->connect_failures == 1 || m->attempt == 1)
			record_event(m, "connect_failed", why);
	}
	uv_timer_start(&m->timer, on_timer, (uint64_t)(wait + 999) / 1000, 0);
}

static void on_poll(uv_poll_t *h, int status, int events);

static void update_poll(mqtt *m) {
	int fd, want = UV_READABLE;

	if (!m->mosq)
		return;
	fd = mosquitto_socket(m->mosq);
	if (fd < 0)
		return;
	if (mosquitto_want_write(m->mosq) || (m->state == ST_CONNECTING && !m->tcp_up))
		want |= UV_WRITABLE;
	if (m->state == ST_CONNECTING)
		want |= UV_DISCONNECT;
	if (!m->poll) {
		m->poll = calloc(1, sizeof(*m->poll));
		if (!m->poll)
			return;
		m->poll->m = m;
		if (uv_poll_init_socket(m->env.loop, &m->poll->h, fd) < 0) {
			free(m->poll);
			m->poll = NULL;
			return;
		}
		m->poll->h.data = m->poll;
		m->poll_events = 0;
	}
	if (want != m->poll_events) {
		uv_poll_start(&m->poll->h, want, on_poll);
		m->poll_events = want;
	}
}

/* Acts on what a call into libmosquitto (and its callbacks) reported. */
static void after_io(mqtt *m, int rc) {
	if (!m->mosq)
		return;
	if (m->lost || mosquitto_socket(m->mosq) < 0 ||
	    (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_CONN_PENDING)) {
		connection_lost(m, m->lost && m->lost_rc ? m->lost_rc : rc);
		return;
	}
	update_poll(m);
}

/* The pending error of socket FD (and clears it), or 0. */
static int socket_error(int fd) {
	socklen_t len = sizeof(int);
	int err = 0;

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return errno;
	return err;
}

static void on_poll(uv_poll_t *h, int status, int events) {
	struct conn_poll *cp = h->data;
	mqtt *m = cp->m;
	int rc = MOSQ_ERR_SUCCESS;

	if (m->poll != cp || !m->mosq)
		return;
	/* libuv reports a socket error (POLLERR) as UV_EBADF; the socket knows the real one. */
	if (status < 0 || m->state == ST_CONNECTING) {
		int err = socket_error(mosquitto_socket(m->mosq));
		if (err || status < 0) {
			errno = err ? err : ECONNRESET;
			after_io(m, MOSQ_ERR_ERRNO);
			return;
		}
	}
	/*
	 * Connected, what the broker sent is read before anything is written: a
	 * broker that refuses a message and then closes (mosquitto does) has
	 * its refusal in our receive buffer, and a write that fails first makes
	 * libmosquitto close the socket unread, so the refused message would be
	 * sent again at every connection, for ever. (Readable is not always
	 * reported with writable: the read is tried either way.)
	 */
	if (m->state == ST_CONNECTED)
		rc = mosquitto_loop_read(m->mosq, 1);
	if (rc == MOSQ_ERR_SUCCESS && !m->lost && mosquitto_socket(m->mosq) >= 0 && (events & UV_WRITABLE)) {
		/* The socket connected: from now on, writable only when libmosquitto has something. */
		m->tcp_up = true;
		mqtt_cork_hold(m->cork, m->state == ST_CONNECTED ? mosquitto_socket(m->mosq) : -1);
		rc = mosquitto_loop_write(m->mosq, 1);
	}
	if (rc == MOSQ_ERR_SUCCESS && !m->lost && mosquitto_socket(m->mosq) >= 0 && m->state != ST_CONNECTED &&
	    (events & UV_READABLE || m->state == ST_CONNECTING))
		rc = mosquitto_loop_read(m->mosq, 1);
	after_io(m, rc);
	if (m->mosq && m->state == ST_CONNECTING && (events & UV_DISCONNECT)) {
		/*
		 * The peer closed while connecting and libmosquitto read what there
		 * was (a CONNACK that says no is handled above) without ending the
		 * attempt: its TLS handshake takes a closed TCP connection for one
		 * still in progress and would be called again and again until
		 * connect_timeout. Without a peer the connect itself failed.
		 */
		struct sockaddr_storage peer;
		socklen_t len = sizeof(peer);
		errno = getpeername(mosquitto_socket(m->mosq), (struct sockaddr *)&peer, &len) < 0 ? ECONNREFUSED
		                                                                                 : ECONNRESET;
		after_io(m, MOSQ_ERR_ERRNO);
		return;
	}
	if (m->stopping && m->offline_acked && m->state == ST_CONNECTED)
		finish_stop(m);
	else if (m->state == ST_CONNECTED && m->mosq)
		pump(m);
}

static void publish_birth(mqtt *m) {
	cJSON *o = cJSON_CreateObject(), *drivers;
	char ts[64], *payload;

	if (!o)
		return;
	cJSON_AddStringToObject(o, "state", "online");
	cJSON_AddStringToObject(o, "gateway", m->conf->gateway);
	cJSON_AddStringToObject(o, "version", m->env.version ? m->env.version : "");
	drivers = m->env.drivers_json ? m->env.drivers_json(m->env.ctx) : NULL;
	cJSON_AddItemToObject(o, "drivers", drivers ? drivers : cJSON_CreateArray());
	format_ts(now_us(), ts, sizeof(ts));
	cJSON_AddStringToObject(o, "ts", ts);
	payload = json_print(o, false);
	cJSON_Delete(o);
	if (payload)
		publish_raw(m, NULL, m->conf->status_topic, payload, strlen(payload), 1, true, NULL);
	free(payload);
}

/* The retained "offline" status (the same text as the will); its message id goes to offline_mid. */
static int publish_offline(mqtt *m, const char *topic, const char *gateway) {
	char payload[300];

	snprintf(payload, sizeof(payload), "{\"state\":\"offline\",\"gateway\":\"%s\"}", gateway);
	return publish_raw(m, &m->offline_mid, topic, payload, strlen(payload), 1, true, NULL);
}

static void on_connect(struct mosquitto *mosq, void *obj, int rc, int flags, const mosquitto_property *props) {
	mqtt *m = obj;
	char topic[1024];

	m->in_cb = true;
	if (rc != 0) {
		/* The broker answered and said no: bad credentials, client id, protocol. */
		m->refused = true;
		set_error(m, "broker refused the connection: %s",
		          m->conf->protocol == MQTT_PROTOCOL_V5 ? mosquitto_reason_string(rc) : mosquitto_connack_string(rc));
		m->in_cb = false;
		return;
	}
	m->state = ST_CONNECTED;
	m->attempt = 0;
	m->connects++;
	m->connected_since_us = now_us();
	m->last_error[0] = '\0';
	uv_timer_start(&m->timer, on_timer, MISC_INTERVAL_MS, MISC_INTERVAL_MS);
	log_notice("mqtt: connected to %s as \"%s\" (MQTT %s)%s", m->conf->url, m->conf->client_id,
	           m->conf->protocol == MQTT_PROTOCOL_V5 ? "5" : "3.1.1", m->n_window || m->spilled ? "; sending the outbox" : "");
	record_event(m, "connected", NULL);
	publish_birth(m);
	/*
	 * Under MQTT 5, retain-as-published keeps the retain flag on commands
	 * published while we are subscribed, so that a retained one is refused
	 * at once and not only at the next connect. MQTT 3.1.1 has no such
	 * option: its broker clears the flag on live messages (docs/mqtt.md).
	 */
	if (m->conf->commands && snprintf(topic, sizeof(topic), "%s/%s/+/+/set", m->conf->prefix, m->conf->gateway) < (int)sizeof(topic))
		mosquitto_subscribe_v5(mosq, NULL, topic, m->conf->command_qos,
		                       m->conf->protocol == MQTT_PROTOCOL_V5 ? MQTT_SUB_OPT_RETAIN_AS_PUBLISHED : 0, NULL);
	m->tokens = 1;
	m->tokens_us = mono_us();
	pump(m);
	m->in_cb = false;
}

static void on_disconnect(struct mosquitto *mosq, void *obj, int rc, const mosquitto_property *props) {
	mqtt *m = obj;

	m->lost = true;
	if (!m->lost_rc || rc != MOSQ_ERR_SUCCESS)
		m->lost_rc = rc ? rc : MOSQ_ERR_CONN_LOST;
}

static void on_publish(struct mosquitto *mosq, void *obj, int mid, int reason, const mosquitto_property *props) {
	mqtt *m = obj;
	struct omsg *o;

	if (mid > 0 && (o = mid_find(m, mid))) {
		forget_mid(m, o);
		if (reason >= 0x80) {
			/* The broker refused this message (ACL, quota): it will not take it later either. */
			m->rejected++;
			if (mono_us() >= m->reject_log_next_us) {
				log_error("mqtt: broker refused message %" PRId64 " to \"%s\": %s; deleting it"
				          " (%" PRIu64 " refused so far)", o->key, o->topic, mosquitto_reason_string(reason),
				          m->rejected);
				m->reject_log_next_us = mono_us() + 10000000;
			}
		} else {
			m->acked++;
		}
		o->acked = true;
		row_done(m, o->key);
		return;
	}
	if (m->stopping && mid == m->offline_mid) {
		m->offline_acked = true;
		return;
	}
	if (m->qos0_pending > 0)
		m->qos0_pending--;
}

static struct mosquitto *make_client(mqtt *m) {
	const mqtt_conf *mc = m->conf;
	struct mosquitto *mosq = mosquitto_new(mc->client_id, true, m);
	char will[256];

	if (!mosq)
		return NULL;
	mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION, mc->protocol);
	mosquitto_int_option(mosq, MOSQ_OPT_SEND_MAXIMUM, (int)mc->max_inflight);
	mosquitto_connect_v5_callback_set(mosq, on_connect);
	mosquitto_disconnect_v5_callback_set(mosq, on_disconnect);
	mosquitto_publish_v5_callback_set(mosq, on_publish);
	mosquitto_message_v5_callback_set(mosq, on_message);
	mosquitto_log_callback_set(mosq, on_log);
	if (mc->username && mosquitto_username_pw_set(mosq, mc->username, mc->password) != MOSQ_ERR_SUCCESS)
		goto fail;
	snprintf(will, sizeof(will), "{\"state\":\"offline\",\"gateway\":\"%s\"}", mc->gateway);
	if (mosquitto_will_set_v5(mosq, mc->status_topic, (int)strlen(will), will, 1, true, NULL) != MOSQ_ERR_SUCCESS)
		goto fail;
	if (mc->tls) {
		if (!mc->ca_file)
			mosquitto_int_option(mosq, MOSQ_OPT_TLS_USE_OS_CERTS, 1);
		int rc = mosquitto_tls_set(mosq, mc->ca_file, mc->ca_file ? NULL : "/etc/ssl/certs", mc->cert_file,
		                           mc->key_file, NULL);
		if (rc != MOSQ_ERR_SUCCESS) {
			/* The files were readable when the config was checked; not any more. */
			snprintf(m->lib_error, sizeof(m->lib_error), "TLS files: %s", mosquitto_strerror(rc));
			goto fail;
		}
		if (!mc->tls_verify) {
			mosquitto_tls_opts_set(mosq, 0, NULL, NULL);
			mosquitto_tls_insecure_set(mosq, true);
		}
	}
	return mosq;
fail:
	mosquitto_destroy(mosq);
	return NULL;
}

/* BIND: NULL, or the wildcard address that picks libmosquitto's address family. */
static void do_connect(mqtt *m, const char *addr, const char *bind) {
	int rc;

	m->mosq = make_client(m);
	if (!m->mosq) {
		m->state = ST_CONNECTING;
		set_error(m, "cannot set up the client: %s", m->lib_error[0] ? m->lib_error : "out of memory");
		m->refused = true;
		connection_lost(m, MOSQ_ERR_NOMEM);
		return;
	}
	m->state = ST_CONNECTING;
	m->lost = false;
	m->lost_rc = 0;
	m->tcp_up = false;
	uv_timer_start(&m->timer, on_timer, (uint64_t)m->conf->connect_timeout_us / 1000, 0);
	errno = 0;
	rc = mosquitto_connect_bind_async(m->mosq, addr, m->conf->port, (int)(m->conf->keepalive_us / 1000000), bind);
	if (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_CONN_PENDING) {
		connection_lost(m, rc);
		return;
	}
	after_io(m, MOSQ_ERR_SUCCESS);
}

/*
 * libmosquitto resolves a name itself, blocking; an address keeps that off
 * the loop. TLS needs the name for its certificate check: there the lookup
 * just made has warmed the resolver's cache, and libmosquitto takes the
 * first address it can bind to. Binding to the wildcard address of one
 * family chooses the family, so an IPv6 broker address that refuses (::1
 * first for "localhost" on Debian) moves on to the IPv4 one.
 */
static void connect_next_addr(mqtt *m) {
	const char *addr = m->addrs[m->addr_next++];

	if (m->conf->tls)
		do_connect(m, m->conf->host, strchr(addr, ':') ? "::" : "0.0.0.0");
	else
		do_connect(m, addr, NULL);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
	mqtt *m = req->data;

	m->gai_active = false;
	m->open_handles--;
	if (m->stopping) {
		uv_freeaddrinfo(res);
		finish_stop(m);
		return;
	}
	if (status < 0 || !res) {
		m->state = ST_RESOLVING;
		set_error(m, "cannot resolve \"%s\": %s", m->conf->host, uv_strerror(status));
		m->refused = true;
		uv_freeaddrinfo(res);
		connection_lost(m, MOSQ_ERR_EAI);
		return;
	}
	/*
	 * Every address, in the resolver's order: a refused one moves on to the
	 * next at once. With TLS only the first of each family (what
	 * libmosquitto, resolving again, picks; see connect_next_addr).
	 */
	m->n_addrs = m->addr_next = 0;
	bool have4 = false, have6 = false;
	for (struct addrinfo *ai = res; ai && m->n_addrs < MAX_ADDRS; ai = ai->ai_next) {
		char *a = m->addrs[m->n_addrs];
		bool *have = ai->ai_family == AF_INET6 ? &have6 : &have4;
		if (m->conf->tls && *have)
			continue;
		*have = true;
		if (ai->ai_family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, a, INET6_ADDRSTRLEN);
		else if (ai->ai_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, a, INET6_ADDRSTRLEN);
		else
			continue;
		m->n_addrs++;
	}
	uv_freeaddrinfo(res);
	if (m->n_addrs == 0) {
		m->state = ST_RESOLVING;
		set_error(m, "\"%s\" has no IPv4 or IPv6 address", m->conf->host);
		m->refused = true;
		connection_lost(m, MOSQ_ERR_EAI);
		return;
	}
	connect_next_addr(m);
}

static void start_connect(mqtt *m) {
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM };
	unsigned char buf[sizeof(struct in6_addr)];

	m->n_addrs = m->addr_next = 0;
	if (inet_pton(AF_INET, m->conf->host, buf) == 1 || inet_pton(AF_INET6, m->conf->host, buf) == 1) {
		do_connect(m, m->conf->host, NULL);
		return;
	}
	m->state = ST_RESOLVING;
	m->gai.data = m;
	uv_timer_start(&m->timer, on_timer, (uint64_t)m->conf->connect_timeout_us / 1000, 0);
	if (uv_getaddrinfo(m->env.loop, &m->gai, on_resolved, m->conf->host, NULL, &hints) < 0) {
		set_error(m, "cannot resolve \"%s\"", m->conf->host);
		m->refused = true;
		connection_lost(m, MOSQ_ERR_EAI);
		return;
	}
	m->gai_active = true;
	m->open_handles++;
}

static void on_timer(uv_timer_t *t) {
	mqtt *m = t->data;
	int rc;

	switch (m->state) {
	case ST_WAITING:
		start_connect(m);
		break;
	case ST_RESOLVING:
	case ST_CONNECTING:
		if (m->stopping) {
			/* The offline status never went out; stop anyway. */
			if (m->mosq)
				connection_lost(m, MOSQ_ERR_SUCCESS);
			break;
		}
		if (m->gai_active) {
			/* The lookup answers later (cancelled or not); it starts nothing then. */
			uv_cancel((uv_req_t *)&m->gai);
			set_error(m, "timed out resolving \"%s\"", m->conf->host);
			return;
		}
		set_error(m, "no answer within %" PRId64 "ms", m->conf->connect_timeout_us / 1000);
		m->refused = true;
		connection_lost(m, MOSQ_ERR_TIMEOUT);
		break;
	case ST_CONNECTED:
		if (m->stopping) {
			finish_stop(m);
			break;
		}
		rc = mosquitto_loop_misc(m->mosq);
		after_io(m, rc == MOSQ_ERR_NO_CONN ? MOSQ_ERR_CONN_LOST : rc);
		break;
	case ST_STOPPED:
		break;
	}
}

/* ---- life cycle ---- */

int mqtt_new(const struct mqtt_env *env, mqtt_conf *conf, mqtt **ret) {
	struct store_outbox_info info;
	mqtt *m = calloc(1, sizeof(*m));

	if (m) {
		m->n_mid_buckets = MID_BUCKETS_MIN;
		while (m->n_mid_buckets < (size_t)conf->max_inflight)
			m->n_mid_buckets *= 2;
	}
	if (!m || !(m->mids = calloc(m->n_mid_buckets, sizeof(*m->mids)))) {
		free(m);
		mqtt_conf_free(conf);
		return -ENOMEM;
	}
	m->env = *env;
	m->conf = conf;
	m->rng = (uint64_t)now_us() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)m;
	if (!m->rng)
		m->rng = 1;
	m->offline_mid = -1;

	store_outbox_get_info(env->store, &info);
	/* Keys are sequence numbers: the next one is above every row already there. */
	m->seq_next = info.seq_next > info.max_key ? info.seq_next : info.max_key + 1;
	m->seq_reserved = info.seq_reserved;
	m->committed_key = info.max_key;
	m->last_put_key = info.max_key;
	m->puts_committed = info.puts_committed;
	if (info.max_key > 0 && env->store) {
		/* Rows of an earlier run (or client) wait in the database: read them back in order. */
		m->spilled = true;
		m->tail_key = 0;
	}

	uv_timer_init(env->loop, &m->timer);
	uv_timer_init(env->loop, &m->pump_timer);
	uv_timer_init(env->loop, &m->batch_timer);
	uv_async_init(env->loop, &m->async, on_async);
	if (mqtt_cork_new(env->loop, &m->cork) < 0)
		m->cork = NULL;
	m->timer.data = m->pump_timer.data = m->batch_timer.data = m->async.data = m;
	m->open_handles = 4;
	if (env->store) {
		store_outbox_set_bounds(env->store, conf->max_messages, conf->max_age_us);
		store_outbox_set_notify(env->store, notify_from_store, m);
	}
	if (conf->mode == MODE_BATCH)
		uv_timer_start(&m->batch_timer, on_batch_timer, (uint64_t)conf->interval_us / 1000,
		               (uint64_t)conf->interval_us / 1000);
	if (info.count > 0)
		log_info("mqtt: %" PRIu64 " messages wait in the outbox", info.count);
	outbox_poll(m);
	start_connect(m);
	*ret = m;
	return 0;
}

int mqtt_reconfigure(mqtt *m, mqtt_conf *conf) {
	mqtt_conf *old = m->conf;
	bool reconnect = !mqtt_conf_same_connection(old, conf);
	char old_status_topic[512], old_gateway[256];

	snprintf(old_status_topic, sizeof(old_status_topic), "%s", old->status_topic);
	snprintf(old_gateway, sizeof(old_gateway), "%s", old->gateway);
	if (m->stopping) {
		mqtt_conf_free(conf);
		return -ESHUTDOWN;
	}
	if (old->mode == MODE_BATCH)
		batch_flush(m);
	m->conf = conf;
	mqtt_conf_free(old);
	topics_clear(m);
	batch_free(m);
	uv_timer_stop(&m->batch_timer);
	if (conf->mode == MODE_BATCH)
		uv_timer_start(&m->batch_timer, on_batch_timer, (uint64_t)conf->interval_us / 1000,
		               (uint64_t)conf->interval_us / 1000);
	if (m->env.store)
		store_outbox_set_bounds(m->env.store, conf->max_messages, conf->max_age_us);
	if (reconnect) {
		log_notice("mqtt: connection settings changed; reconnecting to %s", conf->url);
		uv_timer_stop(&m->timer);
		if (m->gai_active) {
			uv_cancel((uv_req_t *)&m->gai);
		} else {
			if (m->mosq) {
				/* The old broker keeps the retained status: leave it saying offline. */
				if (m->state == ST_CONNECTED) {
					publish_offline(m, old_status_topic, old_gateway);
					mosquitto_disconnect(m->mosq);
				}
				poll_close(m);
				mosquitto_destroy(m->mosq);
				m->mosq = NULL;
			}
			window_rewind(m);
			m->attempt = 0;
			start_connect(m);
		}
	} else if (m->state == ST_CONNECTED) {
		/* The drivers may have changed: say so in the retained status. */
		publish_birth(m);
		after_io(m, MOSQ_ERR_SUCCESS);
	}
	return 0;
}

static void handle_closed(uv_handle_t *h) {
	mqtt *m = h->data;

	m->open_handles--;
	if (m->open_handles == 0 && m->on_stopped) {
		void (*cb)(void *) = m->on_stopped;
		m->on_stopped = NULL;
		cb(m->stopped_arg);
	}
}

/* Disconnects (if still connected) and closes every handle; on_stopped runs when they are closed. */
static void finish_stop(mqtt *m) {
	if (m->stop_finishing || m->gai_active)
		return;
	m->stop_finishing = true;
	flush_deletes(m);
	if (m->mosq) {
		if (m->state == ST_CONNECTED && !m->lost) {
			mosquitto_disconnect_v5(m->mosq, MQTT_RC_NORMAL_DISCONNECTION, NULL);
			mosquitto_loop_write(m->mosq, 1);
		}
		poll_close(m);
		mosquitto_destroy(m->mosq);
		m->mosq = NULL;
	}
	m->state = ST_STOPPED;
	if (m->env.store)
		store_outbox_set_notify(m->env.store, NULL, NULL);
	uv_close((uv_handle_t *)&m->timer, handle_closed);
	uv_close((uv_handle_t *)&m->pump_timer, handle_closed);
	uv_close((uv_handle_t *)&m->batch_timer, handle_closed);
	uv_close((uv_handle_t *)&m->async, handle_closed);
	mqtt_cork_free(m->cork);
	m->cork = NULL;
}

void mqtt_stop(mqtt *m, void (*on_stopped)(void *arg), void *arg) {
	int rc;

	if (m->stopping)
		return;
	if (m->conf->mode == MODE_BATCH)
		batch_flush(m);
	m->stopping = true;
	m->on_stopped = on_stopped;
	m->stopped_arg = arg;
	/* Exact, so that the next start continues without a gap. */
	if (m->env.store)
		store_outbox_set_seq_next(m->env.store, m->seq_next);
	uv_timer_stop(&m->batch_timer);
	uv_timer_stop(&m->pump_timer);
	if (m->state == ST_CONNECTED && m->mosq && !m->lost) {
		rc = publish_offline(m, m->conf->status_topic, m->conf->gateway);
		if (rc == MOSQ_ERR_SUCCESS) {
			uv_timer_start(&m->timer, on_timer, STOP_TIMEOUT_MS, 0);
			after_io(m, rc);
			if (m->state == ST_CONNECTED)
				return;
			/* after_io found the connection gone and finished the stop already. */
			return;
		}
	}
	if (m->gai_active) {
		uv_cancel((uv_req_t *)&m->gai);
		return;
	}
	uv_timer_stop(&m->timer);
	finish_stop(m);
}

void mqtt_free(mqtt *m) {
	if (!m)
		return;
	for (struct command *c = m->commands; c; c = c->next) {
		/* Their write results arrive later: they free themselves then. */
		c->m = NULL;
		c->pprev = NULL;
	}
	if (m->mosq)
		mosquitto_destroy(m->mosq);
	mqtt_cork_free(m->cork);
	window_free(m);
	free(m->mids);
	topics_clear(m);
	batch_free(m);
	mqtt_conf_free(m->conf);
	free(m);
}

const char *mqtt_topic_prefix(const mqtt *m) {
	return m->conf->prefix;
}

static uint64_t outbox_uncommitted(void *arg) {
	const mqtt *m = arg;

	/* Put and not yet committed: exact, counted by the store. */
	return store_outbox_puts(m->env.store) - m->puts_committed;
}

static uint64_t outbox_max(void *arg) {
	const mqtt *m = arg;

	return (uint64_t)m->conf->max_messages;
}

static double seq_next(void *arg) {
	const mqtt *m = arg;

	return (double)m->seq_next;
}

static uint64_t window_count(void *arg) {
	const mqtt *m = arg;

	return m->n_window;
}

static uint64_t inflight_count(void *arg) {
	const mqtt *m = arg;

	return m->n_inflight;
}

static uint64_t is_connected(void *arg) {
	const mqtt *m = arg;

	return m->state == ST_CONNECTED;
}

int mqtt_metrics_add(mqtt *m, metrics *reg, const void *owner) {
#define C(n, h, j, f) { .desc = { .name = "m2md_mqtt_" n, .help = h, .type = METRIC_COUNTER, \
                                  .json = "mqtt/" j }, .src = { .u64 = &m->f } }
#define G(n, h, j, f) { .desc = { .name = "m2md_mqtt_" n, .help = h, .type = METRIC_GAUGE, \
                                  .json = "mqtt/" j }, .src = { .u64 = &m->f } }
#define RESULT(r) { { .name = "m2md_mqtt_command_results", .type = METRIC_COUNTER, \
                      .help = "Command messages by their result.", .labels = "result", \
                      .json = "mqtt/commands/{result}" }, { .u64 = &m->cmd_##r }, #r }
	const struct metric_entry list[] = {
		{ .desc = { .name = "m2md_mqtt_connected", .help = "1 while connected to the broker.",
		            .type = METRIC_GAUGE },
		  .src = { .get_u64 = is_connected, .arg = m } },
		C("connects", "Connections established.", "connects", connects),
		C("connect_failures", "Connection attempts that failed.", "connect_failures",
		  connect_failures),
		C("disconnects", "Connections lost or closed.", "disconnects", disconnects),
		C("sent", "QoS 1 messages sent, first sends.", "sent", sent),
		C("acked", "QoS 1 messages acknowledged by the broker.", "acked", acked),
		/* Messages sent again after a reconnect: the most a subscriber can see twice. */
		C("resent", "Messages sent again after a reconnect.", "resent", resent),
		C("rejected", "Messages the broker refused.", "rejected", rejected),
		C("qos0_sent", "QoS 0 messages sent.", "qos0_sent", qos0_sent),
		C("qos0_dropped", "QoS 0 messages dropped while not connected.", "qos0_dropped",
		  qos0_dropped),
		{ .desc = { .name = "m2md_mqtt_sequence_next", .type = METRIC_GAUGE,
		            .help = "The sequence number of the next message.", .json = "mqtt/seq_next" },
		  .src = { .get_f64 = seq_next, .arg = m } },
		C("sequence_exhausted", "Messages not sent because no sequence number was left.",
		  "seq_exhausted", seq_exhausted),
		/* Readings the storage queue had no room for (storage failing or far behind). */
		C("unstored_published", "Readings storage did not take, published at QoS 0.",
		  "telemetry/unstored_published", unstored_published),
		C("unstored_skipped", "Readings storage did not take, not published.",
		  "telemetry/unstored_skipped", unstored_skipped),
		G("outbox_queued", "Messages in the durable outbox.", "outbox/queued", outbox_count),
		{ .desc = { .name = "m2md_mqtt_outbox_in_memory", .type = METRIC_GAUGE,
		            .help = "Outbox messages held in memory.", .json = "mqtt/outbox/in_memory" },
		  .src = { .get_u64 = window_count, .arg = m } },
		{ .desc = { .name = "m2md_mqtt_outbox_inflight", .type = METRIC_GAUGE,
		            .help = "Messages sent and not yet acknowledged.",
		            .json = "mqtt/outbox/inflight" },
		  .src = { .get_u64 = inflight_count, .arg = m } },
		C("outbox_dropped", "Outbox messages dropped, oldest first, at its size or age limit.",
		  "outbox/dropped", outbox_dropped),
		C("outbox_dropped_unstored", "Messages dropped because storage was not committing.",
		  "outbox/dropped_unstored", unstored),
		{ .desc = { .name = "m2md_mqtt_outbox_uncommitted", .type = METRIC_GAUGE,
		            .help = "Outbox messages put and not yet committed.",
		            .json = "mqtt/outbox/uncommitted" },
		  .src = { .get_u64 = outbox_uncommitted, .arg = m } },
		{ .desc = { .name = "m2md_mqtt_outbox_max_messages", .type = METRIC_GAUGE,
		            .help = "The outbox's configured size limit.",
		            .json = "mqtt/outbox/max_messages" },
		  .src = { .get_u64 = outbox_max, .arg = m } },
		C("commands_received", "Command messages received.", "commands/received", cmd_received),
		RESULT(ok), RESULT(failed), RESULT(invalid),
	};
#undef C
#undef G
#undef RESULT
	static const struct metric_desc info = {
		.name = "m2md_mqtt", .help = "The broker and the session.", .type = METRIC_INFO,
		.labels = "url,client_id,protocol",
	};
	const char *values[] = { m->conf->url, m->conf->client_id,
	                         m->conf->protocol == MQTT_PROTOCOL_V5 ? "5" : "3.1.1" };
	metric_family *f;
	int err = metrics_family(reg, &info, &f);

	if (err >= 0)
		err = metrics_add(reg, f, owner, values, NULL);
	return err < 0 ? err : metrics_add_list(reg, owner, list, ELEMENTSOF(list));
}

cJSON *mqtt_status_json(const mqtt *m) {
	cJSON *o = cJSON_CreateObject(), *tel, *cmd;

	if (!o)
		return NULL;
	/* The figures are the registry's (mqtt_metrics_add); these are the words. */
	cJSON_AddStringToObject(o, "state", state_names[m->state]);
	cJSON_AddStringToObject(o, "url", m->conf->url);
	cJSON_AddStringToObject(o, "client_id", m->conf->client_id);
	cJSON_AddStringToObject(o, "protocol", m->conf->protocol == MQTT_PROTOCOL_V5 ? "5" : "3.1.1");
	cJSON_AddStringToObject(o, "last_error", m->last_error);
	tel = cJSON_AddObjectToObject(o, "telemetry");
	if (tel)
		cJSON_AddStringToObject(tel, "unstored", m->conf->publish_unstored ? "publish" : "drop");
	cJSON_AddObjectToObject(o, "outbox");
	cmd = cJSON_AddObjectToObject(o, "commands");
	if (cmd)
		cJSON_AddBoolToObject(cmd, "enabled", m->conf->commands);
	return o;
}
