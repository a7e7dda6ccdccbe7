/* SPDX-License-Identifier: MIT */
/*
 * The serial benchmark's baseline: what any program reading the same tty
 * must do at the least. It opens PORT raw as m2md does, reads it with
 * poll() into a buffer of m2md's read size and splits the bytes into lines
 * (finds each line end; a line a read cuts ends in the next), nothing else, until
 * it has seen LINES lines; then it prints the lines and its reads, and
 * waits for its stdin to close before it exits, so that the benchmark
 * measures its CPU from outside (schedstat) as it measures m2md's.
 *
 *   bench-serial-raw PORT LINES
 *
 * It prints "READY" once the port is open, so that the writer starts then.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct termios t;
	char buf[4096], *end;
	unsigned long long want, lines = 0, reads = 0;
	int fd;

	if (argc != 3)
		return 2;
	errno = 0;
	want = strtoull(argv[2], &end, 10);
	if (errno || *end || !want)
		return 2;
	fd = open(argv[1], O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 || tcgetattr(fd, &t) < 0)
		return 1;
	cfmakeraw(&t);
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	if (tcsetattr(fd, TCSANOW, &t) < 0)
		return 1;
	printf("READY\n");
	fflush(stdout);
	while (lines < want) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&pfd, 1, 30000) != 1)
			return 1;
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EAGAIN)
			continue;
		if (n <= 0)
			return 1;
		reads++;
		for (char *p = buf; (p = memchr(p, '\n', (size_t)(buf + n - p))) != NULL; p++)
			lines++;
	}
	printf("%llu %llu\n", lines, reads);
	fflush(stdout);
	while (read(0, buf, sizeof(buf)) > 0)
		;
	return 0;
}
