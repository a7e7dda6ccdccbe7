/* SPDX-License-Identifier: MIT */
#include "pidlock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "util.h"

static pid_t read_owner(int fd) {
	char buf[32];
	int64_t v;
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		return 0;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return parse_int64(buf, &v) == 0 && v > 0 && v <= INT32_MAX ? (pid_t)v : 0;
}

int pidlock_take(const char *path, pid_t *ret_owner) {
	char *lock = strdup_printf("%s.lock", path), pid[32];
	int fd, r, n;

	if (!lock)
		return -ENOMEM;
	/*
	 * Never unlinked: removing a lock file while another process waits on it
	 * would let two owners hold two different files of one name.
	 */
	fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	free(lock);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		r = -errno;
		if (r == -EWOULDBLOCK && ret_owner)
			*ret_owner = read_owner(fd);
		close(fd);
		return r;
	}
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
		r = -errno;
		close(fd);
		return r ? r : -EIO;
	}
	return fd;
}

void pidlock_release(int fd) {
	if (fd >= 0)
		close(fd);
}
