/* SPDX-License-Identifier: MIT */
/*
 * The service manager's notification protocol (sd_notify(3)): one datagram
 * of "KEY=VALUE" lines to the AF_UNIX socket named by $NOTIFY_SOCKET, and
 * the watchdog interval from $WATCHDOG_USEC/$WATCHDOG_PID. The protocol is
 * systemd's documented, stable interface, which sd_notify(3) invites
 * programs to speak without libsystemd; m2md speaks it itself so that the
 * daemon does not map libsystemd and the libraries it pulls in (about 1 MiB
 * of RSS, docs/operations.md) for two calls. Loop thread.
 */
#pragma once

#include <stdint.h>

/*
 * Sends STATE (e.g. "READY=1") to the service manager. Returns 1 when sent,
 * 0 when there is no manager to tell ($NOTIFY_SOCKET unset), or a negative
 * errno: -EAFNOSUPPORT for a socket that is not a Unix path or abstract
 * name, -EAGAIN when the manager's queue is full (the socket never blocks
 * the loop; the caller loses one message, as it would with a busy manager).
 */
int notify_send(const char *state);

/*
 * The watchdog interval in microseconds: 1 with *ret_usec set when the
 * service manager asks this process for keep-alives ($WATCHDOG_USEC, and
 * $WATCHDOG_PID, when set, is our pid), 0 when it does not, -EINVAL for a
 * value that is not a positive number.
 */
int notify_watchdog_usec(uint64_t *ret_usec);
