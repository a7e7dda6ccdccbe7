/* SPDX-License-Identifier: MIT */
/*
 * Control-socket requests, through the real server: the input is what one
 * client sends on the socket. The server (ctl-server.c) runs on its own
 * libuv loop in this process and frames, parses (ctl-proto.c) and answers
 * the bytes as the daemon does; the daemon behind it is a small stand-in
 * (struct ctl_env) with one known device, point and rule, and writes that
 * complete at once, later on the loop, or fail. The client sends
 * everything, ends its side and reads until the server closes the
 * connection; every reply must be a JSON object that says "ok".
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <uv.h>

#include "config.h"
#include "ctl-server.h"
#include "fuzz-input.h"
#include "log.h"

struct pending {
	void (*cb)(int status, const char *error_text, void *arg);
	void *arg;
	int status;
};

/* libFuzzer calls a plain function: the server lives across inputs in this one state. */
static struct harness {
	uv_loop_t loop;
	uv_timer_t timer;
	ctl_server *server;
	char dir[64];
	char socket[128];
	struct pending pending;
	bool has_pending;
} h;

static cJSON *env_status(void *ctx) {
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "state", "running");
	return o;
}

static cJSON *env_points(void *ctx, const char *device) {
	cJSON *a = cJSON_CreateArray();

	if (!device || strcmp(device, "boiler1") == 0)
		cJSON_AddItemToArray(a, cJSON_CreateString("boiler1/temperature"));
	return a;
}

static cJSON *env_read(void *ctx, const char *point) {
	cJSON *o;

	if (strcmp(point, "boiler1/temperature") != 0)
		return NULL;
	o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "value", 21.5);
	return o;
}

static void on_pending(uv_timer_t *t) {
	struct pending p = h.pending;

	h.has_pending = false;
	p.cb(p.status, p.status < 0 ? "the device said no" : NULL, p.arg);
}

/* "boiler1/now" answers inside the call, "boiler1/later" and "boiler1/fail" on the loop. */
static int env_write(void *ctx, const char *origin, const char *point, double value,
                     void (*cb)(int status, const char *error_text, void *arg), void *arg) {
	FUZZ_ASSERT(origin && strncmp(origin, "ctl:uid=", 8) == 0);
	if (strcmp(point, "boiler1/now") == 0) {
		cb(0, NULL, arg);
		return 0;
	}
	if (strcmp(point, "boiler1/later") != 0 && strcmp(point, "boiler1/fail") != 0)
		return strcmp(point, "boiler1/temperature") == 0 ? -EACCES : -ENOENT;
	/* The server answers one request at a time per client, and there is one client. */
	FUZZ_ASSERT(!h.has_pending);
	h.pending = (struct pending){cb, arg, point[8] == 'f' ? -EIO : 0};
	h.has_pending = true;
	uv_timer_start(&h.timer, on_pending, 0, 0);
	return 0;
}

static cJSON *env_rules(void *ctx, bool all) {
	return all ? cJSON_CreateArray() : NULL;
}

static int env_ack(void *ctx, const char *rule, const char *point) {
	if (strcmp(rule, "boiler_high") != 0)
		return -ENOENT;
	return point && strcmp(point, "boiler1/temperature") != 0 ? -ENOENT : 1;
}

static void env_reload(void *ctx) {
}

/* The socket goes when the run ends; a crash leaves it for a look. */
static void cleanup(void) {
	(void)unlink(h.socket);
	(void)rmdir(h.dir);
}

static void setup(void) {
	static const struct ctl_env env = {
	    .status = env_status,
	    .points = env_points,
	    .read = env_read,
	    .write = env_write,
	    .rules = env_rules,
	    .ack = env_ack,
	    .reload = env_reload,
	};
	struct ctl_env e = env;
	char text[512], *error = NULL;
	ctl_conf *cc;
	config *c;

	/* Refusals and oversize requests log a line each; the run's output is libFuzzer's. */
	log_set_max_level(LOG_CRIT);
	snprintf(h.dir, sizeof(h.dir), "/tmp/m2m-fuzz-ctl.XXXXXX");
	FUZZ_ASSERT(mkdtemp(h.dir));
	snprintf(h.socket, sizeof(h.socket), "%s/ctl.sock", h.dir);
	/* The smallest request cap, so that short inputs reach the oversize path too. */
	snprintf(text, sizeof(text),
	         "[control]\nsocket = \"%s\"\ngroup = \"\"\nmax_request = \"256B\"\n"
	         "request_timeout = \"10min\"\nmax_clients = 1\n",
	         h.socket);
	FUZZ_ASSERT(config_load_string(text, "fuzz.toml", &c, &error) == 0);
	FUZZ_ASSERT(ctl_conf_parse(c, config_root(c), "fuzz.toml", &cc) == 0);
	config_free(c);
	FUZZ_ASSERT(uv_loop_init(&h.loop) == 0);
	FUZZ_ASSERT(uv_timer_init(&h.loop, &h.timer) == 0);
	e.loop = &h.loop;
	FUZZ_ASSERT(ctl_server_new(&e, cc, &h.server) == 0);
	atexit(cleanup);
}

/* Each complete reply line must be a JSON object with a boolean "ok". */
static void check_replies(char *buf, size_t *len) {
	char *nl;

	while ((nl = memchr(buf, '\n', *len))) {
		size_t n = (size_t)(nl - buf) + 1;
		cJSON *j = cJSON_ParseWithLength(buf, n - 1);

		FUZZ_ASSERT(cJSON_IsObject(j));
		FUZZ_ASSERT(cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(j, "ok")));
		cJSON_Delete(j);
		memmove(buf, buf + n, *len - n);
		*len -= n;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	static char reply[64 * 1024];
	size_t written = 0, rlen = 0;
	bool shut = false, eof = false;
	int fd;

	if (!h.server)
		setup();
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	FUZZ_ASSERT(fd >= 0);
	memcpy(sa.sun_path, h.socket, strlen(h.socket) + 1);
	FUZZ_ASSERT(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	while (!eof) {
		bool progress = false;
		ssize_t r;

		if (written < size) {
			r = send(fd, data + written, size - written, MSG_NOSIGNAL);
			if (r > 0) {
				written += (size_t)r;
				progress = true;
			} else if (r < 0 && errno != EAGAIN) {
				/* The server closed first (an oversize request): it may. */
				written = size;
			}
		}
		if (written == size && !shut) {
			shutdown(fd, SHUT_WR);
			shut = true;
		}
		uv_run(&h.loop, UV_RUN_NOWAIT);
		r = recv(fd, reply + rlen, sizeof(reply) - rlen, 0);
		if (r > 0) {
			rlen += (size_t)r;
			check_replies(reply, &rlen);
			/* A reply line longer than the buffer would be a bug of its own. */
			FUZZ_ASSERT(rlen < sizeof(reply));
			progress = true;
		} else if (r == 0 || (r < 0 && errno != EAGAIN)) {
			eof = true;
		}
		if (!progress && !eof) {
			struct pollfd p[2] = {{fd, POLLIN, 0}, {uv_backend_fd(&h.loop), POLLIN, 0}};
			int t = uv_backend_timeout(&h.loop);

			poll(p, 2, t < 0 || t > 10 ? 10 : t);
		}
	}
	/* A trailing partial line is a reply cut short: the server ends with whole lines. */
	FUZZ_ASSERT(rlen == 0);
	close(fd);
	/* The connection's handles close, and a write still in flight completes, on the loop. */
	while (h.has_pending)
		uv_run(&h.loop, UV_RUN_ONCE);
	uv_run(&h.loop, UV_RUN_NOWAIT);
	return 0;
}
