/* SPDX-License-Identifier: MIT */
/*
 * The device of the latency benchmark: a Modbus TCP server (libmodbus's
 * server API) that stamps every answer. Each request gets the next value of
 * a counter, every register it reads holds that counter (mod 65536), and
 * the time the answer left (CLOCK_REALTIME, ns) is recorded against it, so
 * that a subscriber seeing the value knows when the device answered.
 *
 * Usage: bench-latency-sim REGISTERS STAMPS-FILE
 * Prints "READY PORT" once listening on 127.0.0.1 (a free port); serves one
 * client after another; on SIGTERM or SIGINT writes "COUNTER NS" lines to
 * STAMPS-FILE and exits.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <modbus.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
	(void)sig;
	stop = 1;
}

static int64_t now_ns(void) {
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int main(int argc, char **argv) {
	uint8_t query[MODBUS_TCP_MAX_ADU_LENGTH];
	struct sigaction sa = { .sa_handler = on_signal }; /* no SA_RESTART: recv returns EINTR */
	struct sockaddr_in addr;
	socklen_t alen = sizeof(addr);
	modbus_mapping_t *map;
	modbus_t *ctx;
	int64_t *stamps;
	size_t n = 0, cap = 1 << 16;
	uint32_t counter = 0;
	int regs, s, hdr;
	FILE *out;

	if (argc != 3) {
		fprintf(stderr, "usage: %s REGISTERS STAMPS-FILE\n", argv[0]);
		return 2;
	}
	regs = (int)strtol(argv[1], NULL, 10);
	ctx = modbus_new_tcp("127.0.0.1", 0);
	map = modbus_mapping_new(0, 0, regs, 0);
	stamps = malloc(cap * sizeof(*stamps));
	if (!ctx || !map || !stamps)
		return 1;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	s = modbus_tcp_listen(ctx, 4);
	if (s < 0 || getsockname(s, (struct sockaddr *)&addr, &alen) < 0) {
		fprintf(stderr, "listen: %s\n", modbus_strerror(errno));
		return 1;
	}
	printf("READY %d\n", ntohs(addr.sin_port));
	fflush(stdout);
	hdr = modbus_get_header_length(ctx);
	while (!stop) {
		int c = modbus_tcp_accept(ctx, &s);

		if (c < 0)
			continue;
		while (!stop) {
			int rc = modbus_receive(ctx, query), addr0, count;

			if (rc < 0)
				break;
			if (rc == 0)
				continue;
			counter++;
			addr0 = (query[hdr + 1] << 8) | query[hdr + 2];
			count = (query[hdr + 3] << 8) | query[hdr + 4];
			if (query[hdr] == MODBUS_FC_READ_HOLDING_REGISTERS && addr0 + count <= regs)
				for (int i = addr0; i < addr0 + count; i++)
					map->tab_registers[i] = (uint16_t)counter;
			if (modbus_reply(ctx, query, rc, map) < 0)
				break;
			if (n == cap) {
				int64_t *ns = realloc(stamps, 2 * cap * sizeof(*ns));
				if (!ns)
					return 1;
				stamps = ns;
				cap *= 2;
			}
			stamps[n++] = now_ns();
		}
		close(modbus_get_socket(ctx));
		modbus_set_socket(ctx, -1);
	}
	out = fopen(argv[2], "w");
	if (!out)
		return 1;
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%zu %" PRId64 "\n", i + 1, stamps[i]);
	fclose(out);
	modbus_mapping_free(map);
	modbus_free(ctx);
	return 0;
}
