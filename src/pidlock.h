/* SPDX-License-Identifier: MIT */
/*
 * One m2md per database and per control socket: an exclusive flock(2) on a
 * lock file beside each ("m2md.db.lock"), holding the pid of its owner.
 * The kernel drops the lock when the process dies, however it dies, so a
 * stale file never blocks a restart. Loop thread (start only).
 */
#pragma once

#include <sys/types.h>

/*
 * Takes the lock of PATH (the file locked is PATH + ".lock") and writes our
 * pid into it. Returns the open descriptor (kept open to hold the lock;
 * O_CLOEXEC, so plugins' children never inherit it), -EWOULDBLOCK with
 * *ret_owner set to the pid of the holder (0 when it cannot be read), or
 * another negative errno.
 */
int pidlock_take(const char *path, pid_t *ret_owner);

/* Releases a lock taken by pidlock_take (closes FD; the file stays). FD < 0 is ignored. */
void pidlock_release(int fd);
