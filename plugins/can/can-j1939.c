/* SPDX-License-Identifier: MIT */
/*
 * can-j1939.c - the CAN driver as a J1939 sender: writes of J1939 messages
 * through a CAN_J1939 socket, and the address claim (SAE J1939-81) when the
 * config gives a NAME.
 *
 * Sending: one CAN_J1939 socket bound to the static source address, or to
 * the NAME and the address being claimed. The kernel's J1939 stack does
 * the transport protocol for messages above 8 bytes (BAM to broadcast,
 * RTS/CTS to a destination) and, for a NAME, resolves the source address
 * from the claims it has seen; it sends no claim itself. Each send is one
 * session with a key (SOF_TIMESTAMPING_OPT_ID: 0, 1, 2, ... per socket);
 * SO_J1939_ERRQUEUE reports on the socket's error queue when the session
 * is done (SCM_TSTAMP_ACK, with SOF_TIMESTAMPING_TX_ACK) or aborted
 * (J1939_EE_INFO_TX_ABORT, with the errno), and that completes the write.
 * The socket receives nothing else: its filter matches no PGN; the
 * receiving socket (can-io.c) sees everything, ours too.
 *
 * Claiming: Address Claimed (PGN 0xEE00, the NAME's 8 bytes, little
 * endian) to broadcast from the address; after 250ms without a claim of a
 * lower NAME (a higher priority) for it the address is ours (the kernel
 * waits as long before it maps the NAME to it). A lower NAME's claim of our
 * address, then or later, makes us try the next address of the range; with
 * none left we send Cannot Claim (Address Claimed from the null address
 * 0xFE) and writes are refused. A higher NAME's claim is answered with ours
 * again, as is a Request (PGN 0xEA00) for Address Claimed to all or to us.
 *
 * Loop thread only.
 */
#include <errno.h>
#include <inttypes.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/can.h>
#include <linux/can/j1939.h>
#include <linux/errqueue.h>
#include <linux/net_tstamp.h>

#include "can-driver.h"

/* J1939-81: the time an address claim may be contested. */
#define CLAIM_WAIT_MS 250
/* A claim that could not be sent is tried again after this. */
#define CLAIM_RETRY_MS 1000

static void claim_start(struct can_driver *drv, int addr);

bool can_j1939_sends(const struct can_driver *drv)
{
	return drv->j1939.claim || drv->j1939.address >= 0;
}

static void publish(struct can_driver *drv)
{
	struct can_j1939 *j = &drv->j1939;
	struct m2m_reading rd[2];
	size_t n = 0;

	if (j->addr_point != UINT32_MAX)
		rd[n++] = (struct m2m_reading){ .value = j->cur, .point = j->addr_point };
	if (j->claim_point != UINT32_MAX)
		rd[n++] = (struct m2m_reading){ .value = j->state, .point = j->claim_point };
	if (n)
		drv->api->submit(drv->host, rd, n);
}

/* --- the sending socket --- */

static void complete(struct can_driver *drv, uint32_t key, int err)
{
	char why[128];

	for (size_t i = 0; i < drv->n_writes; i++) {
		struct can_write *w = &drv->writes[i];

		if (!w->j1939 || !w->sent || w->tskey != key)
			continue;
		if (err)
			snprintf(why, sizeof(why), "the J1939 transfer was aborted: %s", strerror(err));
		drv->api->write_done(w->req, err ? -err : 0, err ? why : NULL);
		drv->writes[i] = drv->writes[--drv->n_writes];
		return;
	}
}

/* The error queue: each entry ends a session of ours. */
static void tx_readable(m2m_io *io, int events, void *arg)
{
	struct can_driver *drv = arg;
	struct can_j1939 *j = &drv->j1939;

	(void)io;
	if (events & M2M_IO_ERR) {
		int err = 0;
		socklen_t len = sizeof(err);

		/* A pending socket error (ENETDOWN): the raw socket reports the link. */
		getsockopt(j->fd, SOL_SOCKET, SO_ERROR, &err, &len);
	}
	for (int i = 0; i < CAN_RX_BATCH && j->fd >= 0; i++) {
		uint8_t data[64];
		struct iovec iov = { .iov_base = data, .iov_len = sizeof(data) };
		_Alignas(struct cmsghdr) char ctl[512];
		struct msghdr mh = {
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = ctl, .msg_controllen = sizeof(ctl),
		};
		struct sock_extended_err ee;
		bool have = false;

		if (recvmsg(j->fd, &mh, MSG_ERRQUEUE | MSG_DONTWAIT) < 0)
			break;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
			if (c->cmsg_level == SOL_CAN_J1939 && c->cmsg_type == SCM_J1939_ERRQUEUE &&
			    c->cmsg_len >= CMSG_LEN(sizeof(ee))) {
				memcpy(&ee, CMSG_DATA(c), sizeof(ee));
				have = true;
			}
		if (!have)
			continue;
		if (ee.ee_origin == SO_EE_ORIGIN_TIMESTAMPING && ee.ee_info == SCM_TSTAMP_ACK)
			complete(drv, ee.ee_data, 0);
		else if (ee.ee_origin == SO_EE_ORIGIN_LOCAL && ee.ee_info == J1939_EE_INFO_TX_ABORT)
			complete(drv, ee.ee_data, ee.ee_errno ? (int)ee.ee_errno : EIO);
	}
	/* The filter keeps the receive queue empty; should a kernel ignore it, drop what came. */
	for (int i = 0; i < CAN_RX_BATCH && j->fd >= 0; i++) {
		uint8_t data[64];

		if (recv(j->fd, data, sizeof(data), MSG_DONTWAIT) < 0)
			break;
	}
	if (j->io)
		drv->api->io_update(j->io, can_io_watch_events(drv));
}

/* A socket bound to ADDR (and our NAME, when claiming), its watch, in place of the old one. */
static int tx_bind(struct can_driver *drv, int addr)
{
	struct can_j1939 *j = &drv->j1939;
	/* A PGN no message has: the socket receives nothing but its error queue. */
	struct j1939_filter none = { .pgn = J1939_NO_PGN, .pgn_mask = ~0u };
	unsigned flags = SOF_TIMESTAMPING_TX_ACK | SOF_TIMESTAMPING_OPT_ID;
	struct sockaddr_can sa;
	m2m_io *io = NULL;
	int one = 1, fd, r;

	memset(&sa, 0, sizeof(sa));
	sa.can_family = AF_CAN;
	sa.can_ifindex = (int)if_nametoindex(drv->ifname);
	if (sa.can_ifindex == 0)
		return -errno;
	sa.can_addr.j1939.name = j->claim ? j->name : J1939_NO_NAME;
	sa.can_addr.j1939.pgn = J1939_NO_PGN;
	sa.can_addr.j1939.addr = (uint8_t)addr;
	fd = socket(PF_CAN, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, CAN_J1939);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_CAN_J1939, SO_J1939_ERRQUEUE, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof(flags)) < 0 ||
	    setsockopt(fd, SOL_CAN_J1939, SO_J1939_FILTER, &none, sizeof(none)) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	r = drv->api->io_start(drv->host, fd, can_io_watch_events(drv), tx_readable, drv, &io);
	if (r < 0) {
		close(fd);
		return r;
	}
	/*
	 * The new socket first, then the old one closed: the kernel keeps our
	 * NAME's entry while a socket holds it. Sessions of the old socket end,
	 * and no error queue reports them: their writes fail here.
	 */
	for (size_t i = 0; i < drv->n_writes; i++) {
		struct can_write *w = &drv->writes[i];

		if (!w->j1939 || !w->sent)
			continue;
		drv->api->write_done(w->req, -ECONNRESET, "the J1939 address changed before the "
		                     "transfer was done");
		drv->writes[i--] = drv->writes[--drv->n_writes];
	}
	drv->api->io_stop(j->io);
	if (j->fd >= 0)
		close(j->fd);
	j->fd = fd;
	j->io = io;
	j->next_key = 0;
	return 0;
}

static int send_pgn(struct can_driver *drv, uint32_t pgn, uint8_t da, unsigned prio,
                    const uint8_t *data, size_t len)
{
	struct can_j1939 *j = &drv->j1939;
	struct sockaddr_can to;
	int p = (int)prio;

	if (j->fd < 0)
		return -ENETDOWN;
	memset(&to, 0, sizeof(to));
	to.can_family = AF_CAN;
	to.can_addr.j1939.name = J1939_NO_NAME;
	to.can_addr.j1939.pgn = pgn;
	to.can_addr.j1939.addr = da;
	/* Priorities 0 and 1 need CAP_NET_ADMIN; without it the kernel's default (6) stays. */
	setsockopt(j->fd, SOL_CAN_J1939, SO_J1939_SEND_PRIO, &p, sizeof(p));
	if (sendto(j->fd, data, len, MSG_DONTWAIT, (struct sockaddr *)&to, sizeof(to)) < 0)
		return -errno;
	j->next_key++;
	return 0;
}

/* Address Claimed from the bound address (Cannot Claim from 0xFE), to all. */
static int send_claim(struct can_driver *drv)
{
	struct can_j1939 *j = &drv->j1939;
	uint8_t data[8];
	int r;

	for (int i = 0; i < 8; i++)
		data[i] = (uint8_t)(j->name >> (8 * i));
	r = send_pgn(drv, J1939_PGN_ADDRESS_CLAIMED, J1939_NO_ADDR, 6, data, sizeof(data));
	if (r < 0)
		drv->api->log(drv->host, M2M_LOG_WARNING, "%s: sending Address Claimed for 0x%02x "
		              "failed: %s", drv->ifname, j->cur, strerror(-r));
	return r;
}

int can_j1939_send(struct can_driver *drv, struct can_write *w)
{
	uint32_t key = drv->j1939.next_key;
	uint32_t id = w->rx->m->id;
	int r = send_pgn(drv, can_j1939_pgn(id), w->rx->j1939_da, can_j1939_priority(id), w->data,
	                 w->len);

	if (r < 0)
		return r;
	w->tskey = key;
	drv->tx_frames++;
	return 0;
}

int can_j1939_can_send(const struct can_driver *drv, const char **why)
{
	const struct can_j1939 *j = &drv->j1939;

	if (!can_j1939_sends(drv)) {
		*why = "no J1939 source address: set j1939.address, or j1939.name to claim one";
		return -EADDRNOTAVAIL;
	}
	if (j->fd < 0) {
		*why = "the J1939 socket is closed";
		return -ENETDOWN;
	}
	if (j->claim && j->state == CAN_J1939_CLAIMING) {
		*why = "the J1939 address claim is not done yet";
		return -EAGAIN;
	}
	if (j->claim && j->state == CAN_J1939_CANNOT_CLAIM) {
		*why = "no J1939 address: every address to try is claimed by an ECU with a lower "
		       "NAME (Cannot Claim sent)";
		return -EADDRNOTAVAIL;
	}
	return 0;
}

/* --- the claim --- */

static void claim_timer_cb(m2m_timer *t, void *arg)
{
	struct can_driver *drv = arg;
	struct can_j1939 *j = &drv->j1939;

	(void)t;
	if (j->state != CAN_J1939_CLAIMING)
		return;
	/* The claim did not go out (the link down, the queue full): the 250ms start when it does. */
	if (!j->claim_sent) {
		j->claim_sent = send_claim(drv) == 0;
		if (m2m_timer_rearm(drv->api, drv->host, &j->timer, j->claim_sent ? CLAIM_WAIT_MS
		                    : CLAIM_RETRY_MS, 0, claim_timer_cb, drv) < 0)
			drv->api->log(drv->host, M2M_LOG_ERR, "%s: cannot start the claim timer",
			              drv->ifname);
		return;
	}
	j->state = CAN_J1939_CLAIMED;
	drv->api->log(drv->host, M2M_LOG_NOTICE, "%s: J1939 address 0x%02x claimed (NAME %016" PRIx64
	              ")", drv->ifname, j->cur, j->name);
	publish(drv);
}

/* The addresses to try in order: the preferred one, then the range's. */
static int address_at(const struct can_j1939 *j, int i)
{
	if (j->address >= 0) {
		if (i == 0)
			return j->address;
		i--;
	}
	for (int a = j->have_range ? j->lo : 0; j->have_range && a <= j->hi; a++) {
		if (a == j->address)
			continue;
		if (i-- == 0)
			return a;
	}
	return -1;
}

/* The first address after AFTER (-1: from the start) that no lower NAME holds, or -1. */
static int next_address(const struct can_j1939 *j, int after)
{
	int i = 0, a;

	if (after >= 0)
		while ((a = address_at(j, i++)) >= 0 && a != after)
			;
	while ((a = address_at(j, i++)) >= 0)
		if (!j->held[a] || j->held[a] > j->name)
			return a;
	return -1;
}

static void cannot_claim(struct can_driver *drv)
{
	struct can_j1939 *j = &drv->j1939;
	int r;

	drv->api->timer_stop(j->timer);
	j->timer = NULL;
	j->state = CAN_J1939_CANNOT_CLAIM;
	j->cur = J1939_IDLE_ADDR;
	drv->api->log(drv->host, M2M_LOG_WARNING, "%s: no J1939 address left to claim for NAME %016"
	              PRIx64 ": sending Cannot Claim; J1939 writes are refused", drv->ifname, j->name);
	r = tx_bind(drv, J1939_IDLE_ADDR);
	if (r < 0)
		drv->api->log(drv->host, M2M_LOG_ERR, "%s: J1939 socket: %s", drv->ifname, strerror(-r));
	else
		send_claim(drv);
	publish(drv);
}

static void claim_start(struct can_driver *drv, int addr)
{
	struct can_j1939 *j = &drv->j1939;
	int r;

	if (addr < 0) {
		cannot_claim(drv);
		return;
	}
	r = tx_bind(drv, addr);
	if (r < 0) {
		drv->api->log(drv->host, M2M_LOG_ERR, "%s: J1939 socket for 0x%02x: %s", drv->ifname,
		              addr, strerror(-r));
		return;
	}
	j->cur = addr;
	j->state = CAN_J1939_CLAIMING;
	drv->api->log(drv->host, M2M_LOG_INFO, "%s: claiming J1939 address 0x%02x", drv->ifname, addr);
	j->claim_sent = send_claim(drv) == 0;
	if (m2m_timer_rearm(drv->api, drv->host, &j->timer,
	                    j->claim_sent ? CLAIM_WAIT_MS : CLAIM_RETRY_MS, 0, claim_timer_cb, drv) < 0)
		drv->api->log(drv->host, M2M_LOG_ERR, "%s: cannot start the claim timer", drv->ifname);
	publish(drv);
}

enum can_j1939_verdict can_j1939_decide(struct can_j1939 *j, uint32_t pgn, uint8_t sa, uint8_t da,
                                        const uint8_t *data, size_t len, int *ret_addr)
{
	uint64_t name = 0;

	*ret_addr = -1;
	if (pgn == J1939_PGN_REQUEST) {
		uint32_t req = len >= 3 ? (uint32_t)data[0] | (uint32_t)data[1] << 8 |
		                          (uint32_t)(data[2] & 0x03) << 16 : 0;

		return req == J1939_PGN_ADDRESS_CLAIMED && (da == J1939_NO_ADDR || da == j->cur)
		               ? CAN_J1939_ANSWER
		               : CAN_J1939_NOTHING;
	}
	if (pgn != J1939_PGN_ADDRESS_CLAIMED || len < 8)
		return CAN_J1939_NOTHING;
	for (int i = 0; i < 8; i++)
		name |= (uint64_t)data[i] << (8 * i);
	if (name == j->name)
		return CAN_J1939_NOTHING; /* ours, back from the kernel */
	/* A NAME that claims an address (or none: Cannot Claim) holds no other. */
	for (size_t a = 0; a < sizeof(j->held) / sizeof(j->held[0]); a++)
		if (j->held[a] == name)
			j->held[a] = 0;
	if (sa > J1939_MAX_UNICAST_ADDR)
		return CAN_J1939_NOTHING;
	j->held[sa] = name;
	if (sa != j->cur || j->state == CAN_J1939_CANNOT_CLAIM)
		return CAN_J1939_NOTHING;
	if (name > j->name)
		/* We have the priority: the other one has to move. */
		return CAN_J1939_ANSWER;
	*ret_addr = next_address(j, sa);
	return CAN_J1939_YIELD;
}

void can_j1939_network(struct can_driver *drv, uint32_t pgn, uint8_t sa, uint8_t da,
                       uint64_t src_name, const uint8_t *data, size_t len)
{
	struct can_j1939 *j = &drv->j1939;
	int addr;

	(void)src_name;
	if (!j->claim || j->fd < 0)
		return;
	switch (can_j1939_decide(j, pgn, sa, da, data, len, &addr)) {
	case CAN_J1939_NOTHING:
		break;
	case CAN_J1939_ANSWER:
		send_claim(drv);
		break;
	case CAN_J1939_YIELD:
		drv->api->log(drv->host, M2M_LOG_WARNING, "%s: J1939 address 0x%02x is claimed by NAME %016"
		              PRIx64 ", which has the priority", drv->ifname, sa, j->held[sa]);
		claim_start(drv, addr);
		break;
	}
}

int can_j1939_open(struct can_driver *drv)
{
	struct can_j1939 *j = &drv->j1939;
	int r;

	if (!can_j1939_sends(drv))
		return 0;
	if (!j->claim) {
		r = tx_bind(drv, j->address);
		if (r < 0)
			return r;
		j->cur = j->address;
		publish(drv);
		return 0;
	}
	/* Each bind (start, an interface back) claims from the start: the bus may have changed. */
	memset(j->held, 0, sizeof(j->held));
	claim_start(drv, next_address(j, -1));
	return j->fd >= 0 ? 0 : -ENETDOWN;
}

void can_j1939_close(struct can_driver *drv)
{
	struct can_j1939 *j = &drv->j1939;

	drv->api->timer_stop(j->timer);
	j->timer = NULL;
	drv->api->io_stop(j->io);
	j->io = NULL;
	if (j->fd >= 0)
		close(j->fd);
	j->fd = -1;
}
