/* SPDX-License-Identifier: MIT */
/*
 * The service manager protocol, against a real AF_UNIX datagram socket in
 * the role of the manager: a path socket and an abstract one, what the
 * manager receives byte for byte, and the environment's corner cases.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "notify.h"
#include "test.h"

/* A manager's socket bound at NAME ("/path" or "@abstract"). */
static int manager(const char *name) {
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name));
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	ASSERT(fd >= 0);
	memcpy(sa.sun_path, name, strlen(name));
	if (name[0] == '@')
		sa.sun_path[0] = '\0';
	else
		len++;
	ASSERT_OK(bind(fd, (struct sockaddr *)&sa, len));
	return fd;
}

static void expect_datagram(int fd, const char *want) {
	char buf[256];
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

	ASSERT_EQ(n, (ssize_t)strlen(want));
	buf[n] = '\0';
	ASSERT_STR_EQ(buf, want);
}

static void test_path_socket(void) {
	const char *dir = getenv("M2M_TEST_TMPDIR");
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/notify-%d.sock", dir ? dir : "/tmp", (int)getpid());
	unlink(path);
	fd = manager(path);
	setenv("NOTIFY_SOCKET", path, 1);
	ASSERT_EQ(notify_send("READY=1"), 1);
	expect_datagram(fd, "READY=1");
	ASSERT_EQ(notify_send("STATUS=2 of 3 drivers running"), 1);
	expect_datagram(fd, "STATUS=2 of 3 drivers running");
	close(fd);
	/* The manager went away: an error, never a hang or a signal. */
	ASSERT_EQ(notify_send("WATCHDOG=1"), -ECONNREFUSED);
	unlink(path);
	ASSERT_EQ(notify_send("WATCHDOG=1"), -ENOENT);
}

static void test_abstract_socket(void) {
	char name[64];
	int fd;

	snprintf(name, sizeof(name), "@m2md-test-notify-%d", (int)getpid());
	fd = manager(name);
	setenv("NOTIFY_SOCKET", name, 1);
	ASSERT_EQ(notify_send("STOPPING=1"), 1);
	expect_datagram(fd, "STOPPING=1");
	close(fd);
}

static void test_no_manager(void) {
	char longpath[200];

	unsetenv("NOTIFY_SOCKET");
	ASSERT_EQ(notify_send("READY=1"), 0);
	setenv("NOTIFY_SOCKET", "", 1);
	ASSERT_EQ(notify_send("READY=1"), 0);
	/* Newer managers also offer vsock: not a Unix socket, said so. */
	setenv("NOTIFY_SOCKET", "vsock:2:1234", 1);
	ASSERT_EQ(notify_send("READY=1"), -EAFNOSUPPORT);
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	setenv("NOTIFY_SOCKET", longpath, 1);
	ASSERT_EQ(notify_send("READY=1"), -ENAMETOOLONG);
	unsetenv("NOTIFY_SOCKET");
}

static void test_watchdog(void) {
	char pid[32];
	uint64_t usec = 0;

	unsetenv("WATCHDOG_PID");
	unsetenv("WATCHDOG_USEC");
	ASSERT_EQ(notify_watchdog_usec(&usec), 0);
	setenv("WATCHDOG_USEC", "30000000", 1);
	ASSERT_EQ(notify_watchdog_usec(&usec), 1);
	ASSERT_EQ(usec, 30000000);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("WATCHDOG_PID", pid, 1);
	ASSERT_EQ(notify_watchdog_usec(&usec), 1);
	/* Meant for another process (we are a child of the one it was set for). */
	snprintf(pid, sizeof(pid), "%d", (int)getpid() + 1);
	setenv("WATCHDOG_PID", pid, 1);
	ASSERT_EQ(notify_watchdog_usec(&usec), 0);
	setenv("WATCHDOG_PID", "x", 1);
	ASSERT_EQ(notify_watchdog_usec(&usec), -EINVAL);
	unsetenv("WATCHDOG_PID");
	setenv("WATCHDOG_USEC", "0", 1);
	ASSERT_EQ(notify_watchdog_usec(&usec), -EINVAL);
	setenv("WATCHDOG_USEC", "30s", 1);
	ASSERT_EQ(notify_watchdog_usec(&usec), -EINVAL);
	unsetenv("WATCHDOG_USEC");
}

int main(void) {
	RUN_TEST(test_path_socket);
	RUN_TEST(test_abstract_socket);
	RUN_TEST(test_no_manager);
	RUN_TEST(test_watchdog);
	return 0;
}
