/* SPDX-License-Identifier: MIT */
/*
 * boiler-sim: a simulated boiler PLC served over Modbus TCP, the field
 * device of the demo (tools/demo) and of its test (tests/demo).
 *
 * Register map (protocol addresses, 0-based):
 *
 *   coil 0                burner, read/write; on at start
 *   discrete input 0      flame: the burner is firing
 *   input registers 0-1   water temperature, float32, ABCD (big-endian), °C
 *   input register 2      pressure, int16, bar x 100 (m2md: scale = 0.01)
 *   input registers 3-4   burner starts, uint32, CDAB (low word first), a count
 *
 * The register types are chosen to show what m2md decodes: an IEEE float,
 * a scaled 16-bit integer and a 32-bit counter in the word order many PLCs
 * use.
 *
 * Physics: the water loses heat to the room in proportion to the
 * difference (Newton: dT/dt = -(T - ambient) / tau) and the burner adds a
 * constant heat rate while it is on (dT/dt += heat). Between two updates
 * the burner state is constant, so the exact solution is used:
 *
 *   T(t + dt) = Teq + (T(t) - Teq) * exp(-dt / tau),
 *   Teq = ambient + heat * tau (burner on) or ambient (burner off).
 *
 * With the defaults (heat 1.5 °C/s, tau 120 s, ambient 20 °C) the water
 * warms by about 1 °C/s near 80 °C with the burner on and cools by about
 * 0.5 °C/s near 85 °C with it off. --time-scale multiplies simulated time.
 * The pressure follows the temperature (1.0 bar at ambient, +0.012 bar/°C).
 *
 * One thread: select() over the listening socket, every client and a
 * signalfd for SIGINT/SIGTERM, which end the program cleanly (exit 0).
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <modbus.h>

#include "util.h"

#define MAX_CLIENTS 16

enum {
	COIL_BURNER = 0,
	DI_FLAME = 0,
	IR_TEMPERATURE = 0,
	IR_PRESSURE = 2,
	IR_STARTS = 3,
	N_COILS = 1,
	N_DISCRETE = 1,
	N_INPUT_REGS = 5,
};

struct options {
	const char *bind;
	int port;
	double time_scale;
	double heat;    /* °C/s the burner adds */
	double tau;     /* s, time constant of the losses */
	double ambient; /* °C */
	double start;   /* °C at start */
	bool burner;    /* burner state at start */
	bool quiet;
};

struct boiler {
	double temperature;
	double pressure;
	uint32_t starts;
	bool burner;
	int64_t last_us; /* monotonic time of the last update */
};

struct server {
	modbus_t *ctx;
	modbus_mapping_t *map;
	int listen_fd;
	int signal_fd;
	int clients[MAX_CLIENTS];
	int n_clients;
};

static void help(void) {
	printf("Usage: boiler-sim [OPTIONS]\n"
	       "\n"
	       "A simulated boiler PLC served over Modbus TCP: the water temperature rises\n"
	       "while the burner (coil 0) is on and falls toward the room temperature while\n"
	       "it is off. See the top of tools/boiler-sim.c or docs/demo.md for the\n"
	       "register map.\n"
	       "\n"
	       "  -b, --bind ADDR        address to listen on (default 127.0.0.1)\n"
	       "  -p, --port PORT        TCP port; 0 picks a free one (default 1502)\n"
	       "  -s, --time-scale X     simulated seconds per real second (default 1)\n"
	       "      --heat RATE        °C/s the burner adds (default 1.5)\n"
	       "      --tau SECONDS      time constant of the heat losses (default 120)\n"
	       "      --ambient TEMP     room temperature, °C (default 20)\n"
	       "      --start TEMP       water temperature at start, °C (default 60)\n"
	       "      --burner-off       start with the burner off\n"
	       "  -q, --quiet            do not print burner changes\n"
	       "  -h, --help             print this help\n"
	       "\n"
	       "Prints \"listening on ADDR:PORT\" once it accepts connections.\n"
	       "SIGINT and SIGTERM stop it.\n");
}

/* Returns 0 to run, 1 when --help was printed, or -EINVAL after printing why. */
static int parse_args(int argc, char **argv, struct options *o) {
	enum { OPT_HEAT = 256, OPT_TAU, OPT_AMBIENT, OPT_START, OPT_BURNER_OFF };
	static const struct option options[] = {
		{ "bind", required_argument, NULL, 'b' },
		{ "port", required_argument, NULL, 'p' },
		{ "time-scale", required_argument, NULL, 's' },
		{ "heat", required_argument, NULL, OPT_HEAT },
		{ "tau", required_argument, NULL, OPT_TAU },
		{ "ambient", required_argument, NULL, OPT_AMBIENT },
		{ "start", required_argument, NULL, OPT_START },
		{ "burner-off", no_argument, NULL, OPT_BURNER_OFF },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int opt;

	while ((opt = getopt_long(argc, argv, "b:p:s:qh", options, NULL)) != -1) {
		int64_t port;
		double *target = NULL;
		const char *what = NULL;

		switch (opt) {
		case 'b':
			o->bind = optarg;
			break;
		case 'p':
			if (parse_int64(optarg, &port) < 0 || port < 0 || port > 65535) {
				fprintf(stderr,
				        "boiler-sim: invalid --port \"%s\": expected 0..65535\n",
				        optarg);
				return -EINVAL;
			}
			o->port = (int)port;
			break;
		case 's':
			target = &o->time_scale;
			what = "time-scale";
			break;
		case OPT_HEAT:
			target = &o->heat;
			what = "heat";
			break;
		case OPT_TAU:
			target = &o->tau;
			what = "tau";
			break;
		case OPT_AMBIENT:
			target = &o->ambient;
			what = "ambient";
			break;
		case OPT_START:
			target = &o->start;
			what = "start";
			break;
		case OPT_BURNER_OFF:
			o->burner = false;
			break;
		case 'q':
			o->quiet = true;
			break;
		case 'h':
			help();
			return 1;
		default:
			fprintf(stderr, "Try 'boiler-sim --help'.\n");
			return -EINVAL;
		}
		if (target && (parse_double(optarg, target) < 0 || !isfinite(*target))) {
			fprintf(stderr, "boiler-sim: invalid --%s \"%s\": expected a number\n",
			        what, optarg);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "boiler-sim: unexpected argument \"%s\"; try 'boiler-sim --help'\n",
		        argv[optind]);
		return -EINVAL;
	}
	if (o->time_scale <= 0 || o->time_scale > 1000) {
		fprintf(stderr,
		        "boiler-sim: invalid --time-scale %g: expected more than 0, at most 1000\n",
		        o->time_scale);
		return -EINVAL;
	}
	if (o->tau <= 0 || o->heat < 0) {
		fprintf(stderr, "boiler-sim: --tau must be more than 0 and --heat at least 0\n");
		return -EINVAL;
	}
	return 0;
}

/* Advances the physics to NOW_US (monotonic) with the burner as it was since the last update. */
static void boiler_advance(struct boiler *b, const struct options *o, int64_t now_us) {
	double dt = (double)(now_us - b->last_us) / 1e6 * o->time_scale;
	double teq = o->ambient + (b->burner ? o->heat * o->tau : 0.0);

	if (dt <= 0)
		return;
	b->temperature = teq + (b->temperature - teq) * exp(-dt / o->tau);
	b->pressure = 1.0 + 0.012 * (b->temperature - o->ambient);
	b->last_us = now_us;
}

/* Writes the boiler's state into the Modbus tables that clients read. */
static void boiler_publish(const struct boiler *b, modbus_mapping_t *map) {
	double p = round(b->pressure * 100.0);
	float t = (float)b->temperature;
	uint32_t bits;

	map->tab_bits[COIL_BURNER] = b->burner;
	map->tab_input_bits[DI_FLAME] = b->burner;
	/* By hand: modbus_set_float_abcd() of libmodbus 3.1.6 (Debian 12) swaps bytes here. */
	memcpy(&bits, &t, sizeof(bits));
	map->tab_input_registers[IR_TEMPERATURE] = (uint16_t)(bits >> 16);
	map->tab_input_registers[IR_TEMPERATURE + 1] = (uint16_t)(bits & 0xffff);
	p = p > INT16_MAX ? INT16_MAX : p < INT16_MIN ? INT16_MIN : p;
	map->tab_input_registers[IR_PRESSURE] = (uint16_t)(int16_t)p;
	/* CDAB: the low word at the lower address. */
	map->tab_input_registers[IR_STARTS] = (uint16_t)(b->starts & 0xffff);
	map->tab_input_registers[IR_STARTS + 1] = (uint16_t)(b->starts >> 16);
}

/* Takes the burner coil as a client may have written it. */
static void boiler_take_writes(struct boiler *b, const struct options *o,
                               const modbus_mapping_t *map) {
	bool burner = map->tab_bits[COIL_BURNER] != 0;

	if (burner == b->burner)
		return;
	b->burner = burner;
	if (burner)
		b->starts++;
	if (!o->quiet) {
		printf("boiler-sim: burner %s at %.3f °C\n", burner ? "on" : "off", b->temperature);
		fflush(stdout);
	}
}

static void client_close(struct server *s, int i) {
	close(s->clients[i]);
	s->clients[i] = s->clients[--s->n_clients];
}

static void client_accept(struct server *s) {
	int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	if (s->n_clients == MAX_CLIENTS) {
		fprintf(stderr, "boiler-sim: more than %d clients, closing the new one\n",
		        MAX_CLIENTS);
		close(fd);
		return;
	}
	s->clients[s->n_clients++] = fd;
}

/* Answers one request of client I; closes it on EOF or a broken request. */
static void client_serve(struct server *s, struct boiler *b, const struct options *o, int i) {
	uint8_t req[MODBUS_TCP_MAX_ADU_LENGTH];
	int n;

	modbus_set_socket(s->ctx, s->clients[i]);
	n = modbus_receive(s->ctx, req);
	if (n < 0) {
		client_close(s, i);
		return;
	}
	if (n == 0)
		return;
	/* Fresh values for a read, and a write applies from this instant on. */
	boiler_advance(b, o, mono_us());
	boiler_publish(b, s->map);
	if (modbus_reply(s->ctx, req, n, s->map) < 0) {
		client_close(s, i);
		return;
	}
	boiler_take_writes(b, o, s->map);
	boiler_publish(b, s->map);
}

static int server_open(struct server *s, const struct options *o) {
	struct sockaddr_in addr;
	socklen_t len = sizeof(addr);
	sigset_t mask;

	s->listen_fd = s->signal_fd = -1;
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0 ||
	    (s->signal_fd = signalfd(-1, &mask, SFD_CLOEXEC)) < 0) {
		fprintf(stderr, "boiler-sim: signalfd: %s\n", strerror(errno));
		return -errno;
	}
	s->ctx = modbus_new_tcp(o->bind, o->port);
	if (!s->ctx) {
		fprintf(stderr, "boiler-sim: %s\n", modbus_strerror(errno));
		return -EINVAL;
	}
	/* A client that sends half a request must not stall the others forever. */
	modbus_set_indication_timeout(s->ctx, 1, 0);
	s->map = modbus_mapping_new(N_COILS, N_DISCRETE, 0, N_INPUT_REGS);
	if (!s->map) {
		fprintf(stderr, "boiler-sim: %s\n", modbus_strerror(errno));
		return -ENOMEM;
	}
	s->listen_fd = modbus_tcp_listen(s->ctx, MAX_CLIENTS);
	if (s->listen_fd < 0) {
		fprintf(stderr, "boiler-sim: cannot listen on %s:%d: %s\n", o->bind, o->port,
		        modbus_strerror(errno));
		return -EADDRINUSE;
	}
	if (getsockname(s->listen_fd, (struct sockaddr *)&addr, &len) < 0) {
		fprintf(stderr, "boiler-sim: getsockname: %s\n", strerror(errno));
		return -errno;
	}
	printf("boiler-sim: listening on %s:%u\n", o->bind, (unsigned)ntohs(addr.sin_port));
	fflush(stdout);
	return 0;
}

static void server_close(struct server *s) {
	while (s->n_clients > 0)
		client_close(s, 0);
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	if (s->signal_fd >= 0)
		close(s->signal_fd);
	modbus_mapping_free(s->map);
	if (s->ctx) {
		/* The listening socket and the clients are closed above, not by libmodbus. */
		modbus_set_socket(s->ctx, -1);
		modbus_free(s->ctx);
	}
}

static int serve(struct server *s, struct boiler *b, const struct options *o) {
	for (;;) {
		struct timeval tv = { .tv_sec = 0, .tv_usec = 200000 };
		fd_set rd;
		int maxfd = s->listen_fd > s->signal_fd ? s->listen_fd : s->signal_fd;
		int r;

		FD_ZERO(&rd);
		FD_SET(s->listen_fd, &rd);
		FD_SET(s->signal_fd, &rd);
		for (int i = 0; i < s->n_clients; i++) {
			FD_SET(s->clients[i], &rd);
			if (s->clients[i] > maxfd)
				maxfd = s->clients[i];
		}
		r = select(maxfd + 1, &rd, NULL, NULL, &tv);
		if (r < 0 && errno != EINTR) {
			fprintf(stderr, "boiler-sim: select: %s\n", strerror(errno));
			return -errno;
		}
		boiler_advance(b, o, mono_us());
		boiler_publish(b, s->map);
		if (r <= 0)
			continue;
		if (FD_ISSET(s->signal_fd, &rd)) {
			struct signalfd_siginfo si;

			if (read(s->signal_fd, &si, sizeof(si)) == (ssize_t)sizeof(si) && !o->quiet)
				printf("boiler-sim: %s, stopping\n", strsignal((int)si.ssi_signo));
			return 0;
		}
		/* Backwards: serving may close a client and move the last one into its slot. */
		for (int i = s->n_clients - 1; i >= 0; i--)
			if (FD_ISSET(s->clients[i], &rd))
				client_serve(s, b, o, i);
		if (FD_ISSET(s->listen_fd, &rd))
			client_accept(s);
	}
}

int main(int argc, char **argv) {
	struct options o = {
		.bind = "127.0.0.1",
		.port = 1502,
		.time_scale = 1.0,
		.heat = 1.5,
		.tau = 120.0,
		.ambient = 20.0,
		.start = 60.0,
		.burner = true,
	};
	struct server s = { 0 };
	struct boiler b = { 0 };
	int r;

	r = parse_args(argc, argv, &o);
	if (r != 0)
		return r < 0 ? 2 : EXIT_SUCCESS;
	b.temperature = o.start;
	b.burner = o.burner;
	b.last_us = mono_us();
	b.pressure = 1.0 + 0.012 * (b.temperature - o.ambient);

	r = server_open(&s, &o);
	if (r == 0) {
		boiler_publish(&b, s.map);
		r = serve(&s, &b, &o);
	}
	server_close(&s);
	fflush(stdout);
	return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
