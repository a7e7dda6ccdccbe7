/* SPDX-License-Identifier: MIT */
/*
 * The control protocol, shared by the daemon's control socket and m2mctl.
 *
 * Newline-delimited JSON over a Unix stream socket: one request per line,
 * one reply per request, in order.
 *
 *   request  {"id":1,"cmd":"status"}
 *            {"id":2,"cmd":"write","point":"boiler1/setpoint","value":21.5}
 *   reply    {"id":1,"ok":true,"result":{...}}
 *            {"id":2,"ok":false,"code":"EACCES","error":"point is read-only"}
 *   tail     {"id":3,"ok":true,"result":"streaming"} and then one line per
 *            reading: {"point":"a/b","ts":...,"value":...,"quality":"good"}
 *
 * "id" is any JSON number the client chose, echoed back; "code" names the
 * errno class of a failure so scripts need not parse English. Nothing here
 * touches libuv or the daemon: these are plain functions any thread may call.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

/* The default control socket path and the request size cap both sides assume. */
#define CTL_DEFAULT_SOCKET "/run/m2md/m2md.sock"
#define CTL_DEFAULT_MAX_REQUEST (64u * 1024u)

/* A parsed request. Strings point into the cJSON tree REQ, which owns them. */
struct ctl_request {
	cJSON *req;       /* the whole request; ctl_request_done() frees it */
	double id;        /* echoed back; 0 when the client sent none */
	bool has_id;
	const char *cmd;  /* never NULL after a successful parse */
	const char *point;  /* "point" or NULL */
	const char *device; /* "device" or NULL */
	const char *rule;   /* "rule" or NULL */
	double value;       /* "value" when has_value */
	bool has_value;
	bool all;           /* "all": true (rules: normal ones too) */
};

/*
 * Parses one request line (without its newline) of LEN bytes. On failure
 * returns -EINVAL (not JSON, not an object, missing or non-string "cmd",
 * wrongly typed fields) with *ret_error pointing at a static message; *ret
 * is then left with whatever "id" could be recovered so the error reply
 * can echo it. Call ctl_request_done() in every case.
 */
int ctl_request_parse(const char *line, size_t len, struct ctl_request *ret,
                      const char **ret_error);
void ctl_request_done(struct ctl_request *r);

/*
 * Builds a request line (with its trailing newline); malloc'd, caller
 * frees; NULL when out of memory. ARGS (may be NULL) is an object whose
 * members are copied into the request beside "id" and "cmd".
 */
char *ctl_request_format(double id, const char *cmd, const cJSON *args);

/*
 * Builds a reply line with its trailing newline: success with RESULT
 * (taken over, may be NULL for "ok" without result), or failure with the
 * errno ERR (negative) and TEXT. malloc'd, caller frees; NULL when out of
 * memory. LEN (may be NULL) receives the length.
 */
char *ctl_reply_ok(const struct ctl_request *r, cJSON *result, size_t *ret_len);
char *ctl_reply_error(const struct ctl_request *r, int err, const char *text, size_t *ret_len);

/* Prints a cJSON value compactly with a trailing newline; malloc'd. */
char *ctl_line(const cJSON *item, size_t *ret_len);

/*
 * The short errno name used in the "code" member ("EACCES"), and back.
 * Unknown values map to "EIO" / -EIO.
 */
const char *ctl_errno_name(int err);
int ctl_errno_from_name(const char *name);
