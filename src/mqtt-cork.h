/* SPDX-License-Identifier: MIT */
#ifndef M2M_MQTT_CORK_H
#define M2M_MQTT_CORK_H

/*
 * Coalesces the MQTT socket's writes per loop iteration.
 *
 * libmosquitto in non-threaded mode writes each packet from
 * mosquitto_publish() at once. With Nagle's algorithm on, a burst of small
 * packets is held until the broker's ACK, which its delayed ACK can put off
 * by ~40 ms; with TCP_NODELAY alone, each packet is a segment of its own
 * and the broker wakes up for each. So the socket has TCP_NODELAY, and
 * TCP_CORK while the loop runs callbacks that publish: the first write of
 * an iteration sets the cork, and it is pulled before the loop blocks
 * (uv_prepare) and after the I/O callbacks (uv_check). A burst fills
 * segments and leaves within the iteration that made it; nothing waits
 * for an ACK.
 *
 * Loop thread only.
 */
#include <uv.h>

struct mqtt_cork;

/* Returns 0 or a negative errno. */
int mqtt_cork_new(uv_loop_t *loop, struct mqtt_cork **ret);

/*
 * Before writing to the TCP socket FD (ignored when negative): sets
 * TCP_NODELAY on it if not set yet, and corks it until the end of this
 * loop iteration.
 */
void mqtt_cork_hold(struct mqtt_cork *c, int fd);

/* Closes the handles; the object frees itself once they are closed. NULL is fine. */
void mqtt_cork_free(struct mqtt_cork *c);

#endif
