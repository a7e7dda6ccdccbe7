/* SPDX-License-Identifier: MIT */
#include "notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "util.h"

int notify_send(const char *state) {
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len;
	socklen_t salen;
	ssize_t n;
	int fd, r;

	if (!path || !*path)
		return 0;
	/* "@name" is an abstract socket: a NUL first byte, and no NUL at the end. */
	if (path[0] != '/' && path[0] != '@')
		return -EAFNOSUPPORT;
	len = strlen(path);
	if (len > sizeof(sa.sun_path) - (path[0] == '/'))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, len);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '/'));

	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
	r = n < 0 ? -errno : 1;
	close(fd);
	return r == -EWOULDBLOCK ? -EAGAIN : r;
}

int notify_watchdog_usec(uint64_t *ret_usec) {
	const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
	int64_t v;

	if (!usec || !*usec)
		return 0;
	/* A manager that set WATCHDOG_PID asks that one process only, not its children. */
	if (pid && *pid) {
		if (parse_int64(pid, &v) < 0 || v <= 0)
			return -EINVAL;
		if (v != (int64_t)getpid())
			return 0;
	}
	if (parse_int64(usec, &v) < 0 || v <= 0)
		return -EINVAL;
	*ret_usec = (uint64_t)v;
	return 1;
}
