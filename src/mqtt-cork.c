/* SPDX-License-Identifier: MIT */
#include "mqtt-cork.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>

/*
 * Packets a cork holds before it is first pulled and set again within one
 * iteration: the head of a burst (a Modbus block is 125 messages of ~110
 * bytes) then leaves while the loop formats the rest, so the broker works
 * on it meanwhile instead of waiting for the iteration's end. The next
 * pull is after twice as many, so that a long burst still leaves in few,
 * full segments: a pull costs two setsockopt calls, and every segment a
 * read of the broker's.
 */
#define CORK_FIRST_PULL 32

struct mqtt_cork {
	uv_prepare_t prepare;
	uv_check_t check;
	int fd;      /* corked, or -1 */
	int held;    /* packets written under the cork since it was set */
	int pull_at; /* when held reaches it, the cork is pulled and set again */
	int closing; /* handles still to close */
};

static void release(struct mqtt_cork *c) {
	int off = 0;

	if (c->fd < 0)
		return;
	/*
	 * Pulling the cork sends what it held. Should the socket have closed
	 * meanwhile (the connection was lost in the same iteration) this fails
	 * harmlessly, and a new socket under the same number had no cork anyway.
	 */
	(void)setsockopt(c->fd, IPPROTO_TCP, TCP_CORK, &off, sizeof(off));
	c->fd = -1;
	uv_prepare_stop(&c->prepare);
	uv_check_stop(&c->check);
}

static void on_prepare(uv_prepare_t *h) {
	release(h->data);
}

static void on_check(uv_check_t *h) {
	release(h->data);
}

static void on_closed(uv_handle_t *h) {
	struct mqtt_cork *c = h->data;

	if (--c->closing == 0)
		free(c);
}

int mqtt_cork_new(uv_loop_t *loop, struct mqtt_cork **ret) {
	struct mqtt_cork *c = calloc(1, sizeof(*c));
	int err;

	if (!c)
		return -ENOMEM;
	c->fd = -1;
	err = uv_prepare_init(loop, &c->prepare);
	if (err < 0) {
		free(c);
		return err;
	}
	c->prepare.data = c;
	err = uv_check_init(loop, &c->check);
	if (err < 0) {
		/* The prepare handle lives inside c: c goes once it is closed. */
		c->closing = 1;
		uv_close((uv_handle_t *)&c->prepare, on_closed);
		return err;
	}
	c->check.data = c;
	*ret = c;
	return 0;
}

void mqtt_cork_hold(struct mqtt_cork *c, int fd) {
	int on = 1, nodelay = 0;
	socklen_t len = sizeof(nodelay);

	if (!c || fd < 0)
		return;
	if (c->fd == fd) {
		if (++c->held == c->pull_at) {
			int off = 0;

			c->pull_at *= 2;
			/* Pulled and set again: what it holds leaves now, the rest still coalesces. */
			(void)setsockopt(fd, IPPROTO_TCP, TCP_CORK, &off, sizeof(off));
			(void)setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on));
		}
		return;
	}
	release(c);
	/* Asked once per iteration: a new connection may reuse the old socket's number. */
	if (getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &len) == 0 && !nodelay)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	if (setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on)) < 0)
		return; /* not TCP (a Unix socket): nothing to coalesce */
	c->fd = fd;
	c->held = 1;
	c->pull_at = CORK_FIRST_PULL;
	uv_prepare_start(&c->prepare, on_prepare);
	uv_check_start(&c->check, on_check);
}

void mqtt_cork_free(struct mqtt_cork *c) {
	if (!c)
		return;
	release(c);
	c->closing = 2;
	uv_close((uv_handle_t *)&c->prepare, on_closed);
	uv_close((uv_handle_t *)&c->check, on_closed);
}
