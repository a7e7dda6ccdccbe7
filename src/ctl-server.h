/* SPDX-License-Identifier: MIT */
/*
 * The control socket: a Unix stream socket (default /run/m2md/m2md.sock,
 * mode 0660, group m2md) speaking newline-delimited JSON, one request per
 * line, one reply per request (and a stream of readings for "tail").
 * Peer credentials (SO_PEERCRED) are checked on accept. Loop thread only.
 * The request and reply formats live in ctl-proto.h, shared with m2mctl.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include <cJSON.h>

#include "metrics.h"

#include "m2m/plugin.h"
#include "write.h"

typedef struct config config;
struct point;

/* The parsed [control] table; immutable once parsed. */
typedef struct ctl_conf ctl_conf;

/*
 * Parses [control] of ROOT (absent: defaults). A relative socket path is
 * relative to the directory of CONFIG_FILE, like every path of the config.
 * Never NULL on success.
 */
int ctl_conf_parse(config *c, const cJSON *root, const char *config_file, ctl_conf **ret);
void ctl_conf_free(ctl_conf *cc);
/* The socket's path, absolute or as given beside a config without a directory. */
const char *ctl_conf_socket(const ctl_conf *cc);

/* What the server needs from the daemon; all called on the loop thread. */
struct ctl_env {
	void *ctx;
	uv_loop_t *loop;
	/* The whole status object (the daemon's); caller frees. */
	cJSON *(*status)(void *ctx);
	/* Points with their latest values, optionally of one device; caller frees. */
	cJSON *(*points)(void *ctx, const char *device);
	/* One point's latest value, or NULL when unknown; caller frees. */
	cJSON *(*read)(void *ctx, const char *point);
	/* A write through every check (core_write). */
	int (*write)(void *ctx, const char *origin, const char *point, double value, write_cb cb,
	             void *arg);
	/* Words for a write that WRITE refused with ERR, into BUF (NULL: errno text). */
	const char *(*write_refusal)(void *ctx, const char *point, double value, int err, char *buf,
	                             size_t n);
	/* Rule states (ALL: normal ones too); NULL when there are no rules; caller frees. */
	cJSON *(*rules)(void *ctx, bool all);
	/* Acknowledges a latched alarm; returns how many, or a negative errno. */
	int (*ack)(void *ctx, const char *rule, const char *point);
	/* Starts a reload, as SIGHUP does. */
	void (*reload)(void *ctx);
	/* The Prometheus text exposition of every metric, malloc'd; NULL on failure. */
	char *(*metrics)(void *ctx);
};

typedef struct ctl_server ctl_server;

/* Creates the socket and starts listening; takes over CONF. */
int ctl_server_new(const struct ctl_env *env, ctl_conf *conf, ctl_server **ret);

/*
 * Registers the server's counters (connections, requests, tail lines) in
 * REG under OWNER, who removes them before the server is freed.
 */
int ctl_server_metrics_add(ctl_server *s, metrics *reg, const void *owner);

/* Live readings for "tail" clients: called for every normalized reading. */
void ctl_server_on_reading(ctl_server *s, const struct point *p, const struct m2m_reading *r,
                           const char *text);

/* Closes every connection and the socket (and unlinks it); ON_CLOSED(arg) runs when done. */
void ctl_server_close(ctl_server *s, void (*on_closed)(void *arg), void *arg);
void ctl_server_free(ctl_server *s);
