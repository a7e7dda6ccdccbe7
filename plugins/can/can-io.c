/* SPDX-License-Identifier: MIT */
/*
 * can-io.c - the CAN driver's sockets: a non-blocking CAN_RAW socket bound
 * to the interface by name, with kernel filters for the selected messages,
 * error frames, kernel timestamps and the receive queue's drop counter, and
 * a CAN_BCM socket for writes that repeat.
 *
 * Loop thread only. Each readable callback reads at most CAN_RX_CALLS
 * batches of CAN_RX_BATCH frames with recvmmsg and returns: a flooded bus
 * cannot hold the loop, and the watch fires again for the rest.
 *
 * Timestamps: SO_TIMESTAMP_NEW (Linux 5.1) carries 64-bit seconds on every
 * architecture; SO_TIMESTAMP_OLD carries the kernel's native long, which is
 * 32 bits on armhf whatever _TIME_BITS the program was built with. The
 * driver asks for the new one and falls back to the old, and reads either
 * by its cmsg type, never by the libc's struct timeval.
 */
#include <errno.h>
#include <inttypes.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <linux/can.h>
#include <linux/can/bcm.h>
#include <linux/can/error.h>
#include <linux/can/j1939.h>
#include <linux/can/raw.h>
#include <linux/sock_diag.h>

#include "can-driver.h"

#ifndef SO_TIMESTAMP_OLD
#define SO_TIMESTAMP_OLD 29
#endif
#ifndef SO_TIMESTAMP_NEW
#define SO_TIMESTAMP_NEW 63
#endif
#ifndef SO_RXQ_OVFL
#define SO_RXQ_OVFL 40
#endif

/* The kernel's struct __kernel_sock_timeval and its old, native-long timeval. */
struct ts_new {
	int64_t sec, usec;
};
struct ts_old {
	long sec, usec;
};

static int set_filters(struct can_driver *drv, int fd)
{
	struct can_filter *f;
	size_t n = 0;
	int r = 0;

	/* Past the kernel's limit, every frame comes in and the lookup sorts them out. */
	if (drv->n_rx > CAN_MAX_FILTERS)
		return 0;
	f = calloc(drv->n_rx ? drv->n_rx : 1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	for (size_t i = 0; i < drv->n_rx; i++) {
		bool eff = drv->rx[i].key & CAN_EFF_FLAG;

		/* J1939 messages (can_j1939_key) come through the CAN_J1939 socket. */
		if (drv->rx[i].key & CAN_RTR_FLAG)
			continue;
		/* The flags in the mask: an RTR frame or the other id length never matches. */
		f[n].can_id = drv->rx[i].key;
		f[n++].can_mask = (eff ? CAN_EFF_MASK : CAN_SFF_MASK) | CAN_EFF_FLAG | CAN_RTR_FLAG;
	}
	if (setsockopt(fd, SOL_CAN_RAW, CAN_RAW_FILTER, f, (socklen_t)(n * sizeof(*f))) < 0)
		r = -errno;
	free(f);
	return r;
}

static int set_options(struct can_driver *drv, int fd)
{
	can_err_mask_t err_mask = CAN_ERR_MASK;
	int one = 1;

	if (drv->fd && setsockopt(fd, SOL_CAN_RAW, CAN_RAW_FD_FRAMES, &one, sizeof(one)) < 0)
		return -errno;
	if (setsockopt(fd, SOL_CAN_RAW, CAN_RAW_ERR_FILTER, &err_mask, sizeof(err_mask)) < 0)
		return -errno;
	/* Our own frames come back with MSG_CONFIRM: that is how a write completes. */
	if (setsockopt(fd, SOL_CAN_RAW, CAN_RAW_RECV_OWN_MSGS, &one, sizeof(one)) < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof(one)) < 0)
		return -errno;
	/*
	 * Room for the frames of a loop that is late: SO_RCVBUFFORCE passes
	 * net.core.rmem_max with CAP_NET_ADMIN; without it SO_RCVBUF is capped
	 * there (212992 bytes by default, about 280 frames: 35ms at 8,000
	 * frames/s). Either way the drops are counted.
	 */
	if (drv->rcvbuf > 0 &&
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &drv->rcvbuf, sizeof(drv->rcvbuf)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &drv->rcvbuf, sizeof(drv->rcvbuf));
	drv->ts_new = setsockopt(fd, SOL_SOCKET, SO_TIMESTAMP_NEW, &one, sizeof(one)) == 0;
	if (!drv->ts_new && setsockopt(fd, SOL_SOCKET, SO_TIMESTAMP_OLD, &one, sizeof(one)) < 0)
		return -errno;
	return set_filters(drv, fd);
}

/*
 * READ, and ERR on an ABI 1.1 host; a 1.0 host reports an error as READ,
 * and the next recvmmsg returns it.
 */
int can_io_watch_events(const struct can_driver *drv)
{
	return M2M_IO_READ | (M2M_HOST_HAS(drv->api, timer_update) ? M2M_IO_ERR : 0);
}

/* --- J1939 --- */

static void j1939_readable(m2m_io *io, int events, void *arg);
static int64_t cmsg_time(const struct can_driver *drv, struct msghdr *mh, uint32_t *ovfl,
                         bool *have_ovfl);

/*
 * A CAN_J1939 socket that sees every message on the interface: the kernel
 * reassembles multi-packet messages (BAM and RTS/CTS) for it. PROMISC shows
 * what is addressed to others, BROADCAST what goes to all. It sends
 * nothing: J1939 writes and address claims go out on a socket bound to our
 * address (can-j1939.c), whose messages this one sees like any other.
 */
static int j1939_open(struct can_driver *drv, unsigned idx)
{
	struct sockaddr_can addr;
	int one = 1, fd, r;

	/* memset: the kernel reads the union's padding too, and an initializer leaves it. */
	memset(&addr, 0, sizeof(addr));
	addr.can_family = AF_CAN;
	addr.can_ifindex = (int)idx;
	addr.can_addr.j1939.name = J1939_NO_NAME;
	addr.can_addr.j1939.pgn = J1939_NO_PGN;
	addr.can_addr.j1939.addr = J1939_NO_ADDR;

	fd = socket(PF_CAN, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, CAN_J1939);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_CAN_J1939, SO_J1939_PROMISC, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, drv->ts_new ? SO_TIMESTAMP_NEW : SO_TIMESTAMP_OLD, &one,
	               sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	r = drv->api->io_start(drv->host, fd, can_io_watch_events(drv), j1939_readable, drv,
	                       &drv->io_j1939);
	if (r < 0) {
		drv->io_j1939 = NULL;
		close(fd);
		return r;
	}
	drv->fd_j1939 = fd;
	return 0;
}

/* A received J1939 message's destination address (J1939_NO_ADDR: to all). */
static uint8_t cmsg_dest(struct msghdr *mh)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c))
		if (c->cmsg_level == SOL_CAN_J1939 && c->cmsg_type == SCM_J1939_DEST_ADDR &&
		    c->cmsg_len >= CMSG_LEN(1))
			return *CMSG_DATA(c);
	return J1939_NO_ADDR;
}

static void j1939_readable(m2m_io *io, int events, void *arg)
{
	struct can_driver *drv = arg;

	(void)io;
	if (events & M2M_IO_ERR) {
		/* The raw socket reports the same link; just clear the error and watch again. */
		int err = 0;
		socklen_t len = sizeof(err);

		getsockopt(drv->fd_j1939, SOL_SOCKET, SO_ERROR, &err, &len);
		drv->api->io_update(drv->io_j1939, can_io_watch_events(drv));
	}
	for (int i = 0; i < CAN_RX_BATCH * CAN_RX_CALLS && drv->fd_j1939 >= 0; i++) {
		uint8_t data[CAN_MAX_PAYLOAD];
		struct sockaddr_can src;
		struct iovec iov = { .iov_base = data, .iov_len = sizeof(data) };
		/* The timestamp, and the destination address, NAME and priority. */
		_Alignas(struct cmsghdr) char ctl[CMSG_SPACE(sizeof(struct ts_new)) + 128];
		struct msghdr mh = {
			.msg_name = &src, .msg_namelen = sizeof(src),
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = ctl, .msg_controllen = sizeof(ctl),
		};
		uint32_t ovfl = 0;
		bool have_ovfl = false;
		struct can_rx *rx;
		int64_t ts;
		/* A longer message is cut to the 64 bytes the codec decodes (MSG_TRUNC). */
		ssize_t n = recvmsg(drv->fd_j1939, &mh, MSG_DONTWAIT);

		if (n < 0) {
			/* A failure that is not "nothing more" would repeat: stop watching. */
			if (errno != EAGAIN && errno != EINTR) {
				drv->api->log(drv->host, M2M_LOG_ERR, "%s: J1939 receive failed: %s",
				              drv->ifname, strerror(errno));
				drv->api->io_update(drv->io_j1939, 0);
			}
			break;
		}
		ts = cmsg_time(drv, &mh, &ovfl, &have_ovfl);
		if (!ts)
			ts = drv->api->now_us(drv->host);
		drv->frames++;
		if (src.can_addr.j1939.pgn == J1939_PGN_ADDRESS_CLAIMED ||
		    src.can_addr.j1939.pgn == J1939_PGN_REQUEST)
			can_j1939_network(drv, src.can_addr.j1939.pgn, src.can_addr.j1939.addr,
			                  cmsg_dest(&mh), src.can_addr.j1939.name, data,
			                  (size_t)n < sizeof(data) ? (size_t)n : sizeof(data));
		rx = can_rx_find(drv, can_j1939_key(src.can_addr.j1939.pgn, src.can_addr.j1939.addr));
		if (!rx) {
			drv->unknown++;
			continue;
		}
		can_frame_received(drv, rx, data, (size_t)n < sizeof(data) ? (size_t)n : sizeof(data), ts,
		                   drv->api->mono_us(drv->host));
	}
	can_flush_readings(drv);
}

int can_io_open(struct can_driver *drv)
{
	struct sockaddr_can addr = { .can_family = AF_CAN };
	unsigned idx;
	int fd, r;

	idx = if_nametoindex(drv->ifname);
	if (idx == 0)
		return -errno;
	fd = socket(PF_CAN, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, CAN_RAW);
	if (fd < 0)
		return -errno;
	r = set_options(drv, fd);
	if (r < 0)
		goto fail;
	addr.can_ifindex = (int)idx;
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		r = -errno;
		goto fail;
	}
	drv->fd_raw = fd;
	drv->ovfl_last = 0;
	r = drv->api->io_start(drv->host, fd, can_io_watch_events(drv), can_io_readable, drv, &drv->io);
	if (r < 0) {
		drv->io = NULL;
		drv->fd_raw = -1;
		goto fail;
	}
	/* The claim needs to see the other ECUs' claims and requests. */
	if (drv->n_j1939 || drv->j1939.claim) {
		r = j1939_open(drv, idx);
		if (r < 0) {
			can_io_close(drv);
			return r;
		}
	}
	r = can_j1939_open(drv);
	if (r < 0) {
		can_io_close(drv);
		return r;
	}
	return 0;

fail:
	close(fd);
	return r;
}

void can_io_close(struct can_driver *drv)
{
	can_j1939_close(drv);
	drv->api->io_stop(drv->io);
	drv->io = NULL;
	drv->api->io_stop(drv->io_j1939);
	drv->io_j1939 = NULL;
	if (drv->fd_j1939 >= 0)
		close(drv->fd_j1939);
	drv->fd_j1939 = -1;
	if (drv->fd_raw >= 0)
		close(drv->fd_raw);
	drv->fd_raw = -1;
	/* Closing the BCM socket ends its cyclic transmissions. */
	if (drv->fd_bcm >= 0)
		close(drv->fd_bcm);
	drv->fd_bcm = -1;
	for (size_t i = 0; i < drv->n_rx; i++)
		drv->rx[i].bcm_active = false;
}

/* 1 when the interface is up, 0 when down, a negative errno when it is gone. */
int can_io_link_up(const struct can_driver *drv)
{
	struct ifreq ifr = { 0 };
	int fd = drv->fd_raw, r;

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", drv->ifname);
	if (fd < 0)
		return -EBADF;
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) {
		r = -errno;
		return r;
	}
	return (ifr.ifr_flags & IFF_UP) ? 1 : 0;
}

/* --- error frames --- */

static void error_frame(struct can_driver *drv, const struct canfd_frame *f, int64_t ts_us)
{
	int state = drv->bus_state;

	drv->error_frames++;
	if (f->can_id & CAN_ERR_CRTL) {
		uint8_t c = f->data[1];

		if (c & (CAN_ERR_CRTL_RX_OVERFLOW | CAN_ERR_CRTL_TX_OVERFLOW))
			drv->overruns++;
		if (c & (CAN_ERR_CRTL_RX_PASSIVE | CAN_ERR_CRTL_TX_PASSIVE))
			state = CAN_BUS_ERROR_PASSIVE;
		else if (c & (CAN_ERR_CRTL_RX_WARNING | CAN_ERR_CRTL_TX_WARNING))
			state = CAN_BUS_ERROR_WARNING;
		else if (c & CAN_ERR_CRTL_ACTIVE)
			state = CAN_BUS_ERROR_ACTIVE;
	}
	if (f->can_id & CAN_ERR_BUSOFF) {
		state = CAN_BUS_OFF;
		drv->bus_off++;
	}
	if (f->can_id & CAN_ERR_RESTARTED)
		state = CAN_BUS_ERROR_ACTIVE;
	if (f->can_id & CAN_ERR_CNT) {
		m2m_stat_slot_set(&drv->st.tx_errors, f->data[6]);
		m2m_stat_slot_set(&drv->st.rx_errors, f->data[7]);
	}
	if (state != drv->bus_state) {
		static const char *const names[] = { "error-active", "error-warning",
			                             "error-passive", "bus-off" };
		struct m2m_reading rd = {
			.ts_us = ts_us, .value = state, .point = drv->bus_state_point,
		};

		drv->api->log(drv->host, state > drv->bus_state ? M2M_LOG_WARNING : M2M_LOG_NOTICE,
		              "%s: bus state %s (was %s)", drv->ifname, names[state],
		              names[drv->bus_state]);
		drv->bus_state = state;
		drv->api->submit(drv->host, &rd, 1);
	}
}

/* --- receiving --- */

static int64_t cmsg_time(const struct can_driver *drv, struct msghdr *mh, uint32_t *ovfl,
                         bool *have_ovfl)
{
	int64_t ts = 0;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET)
			continue;
		if (c->cmsg_type == SO_TIMESTAMP_NEW && c->cmsg_len >= CMSG_LEN(sizeof(struct ts_new))) {
			struct ts_new t;

			memcpy(&t, CMSG_DATA(c), sizeof(t));
			ts = t.sec * M2M_US_PER_S + t.usec;
		} else if (c->cmsg_type == SO_TIMESTAMP_OLD &&
		           c->cmsg_len >= CMSG_LEN(sizeof(struct ts_old))) {
			struct ts_old t;

			memcpy(&t, CMSG_DATA(c), sizeof(t));
			ts = (int64_t)t.sec * M2M_US_PER_S + t.usec;
		} else if (c->cmsg_type == SO_RXQ_OVFL && c->cmsg_len >= CMSG_LEN(sizeof(uint32_t))) {
			memcpy(ovfl, CMSG_DATA(c), sizeof(*ovfl));
			*have_ovfl = true;
		}
	}
	(void)drv;
	return ts;
}

/* A frame of ours came back: the write waiting for it is done. */
static void own_frame(struct can_driver *drv, const struct canfd_frame *f, size_t len)
{
	for (size_t i = 0; i < drv->n_writes; i++) {
		struct can_write *w = &drv->writes[i];

		if (w->j1939 || !w->sent || w->rx->key != (f->can_id & (CAN_EFF_MASK | CAN_EFF_FLAG)) ||
		    w->len != len || memcmp(w->data, f->data, len) != 0)
			continue;
		drv->api->write_done(w->req, 0, NULL);
		drv->writes[i] = drv->writes[--drv->n_writes];
		return;
	}
}

void can_io_frame(struct can_driver *drv, const struct canfd_frame *f, size_t mtu, int flags,
                  int64_t ts_us, int64_t mono_us)
{
	struct can_rx *rx;
	uint32_t key;
	size_t len;

	if (mtu != CAN_MTU && mtu != CANFD_MTU)
		return;
	len = f->len;
	if (len > (mtu == CAN_MTU ? CAN_MAX_DLEN : CANFD_MAX_DLEN))
		len = mtu == CAN_MTU ? CAN_MAX_DLEN : CANFD_MAX_DLEN;
	if (f->can_id & CAN_ERR_FLAG) {
		error_frame(drv, f, ts_us);
		return;
	}
	drv->frames++;
	/* A frame is news that the link is up, sooner than the tick's check. */
	if (drv->iface_down && !drv->iface_gone)
		can_link_came_up(drv);
	if (f->can_id & CAN_RTR_FLAG)
		return;
	if (flags & MSG_CONFIRM)
		own_frame(drv, f, len);
	key = f->can_id & (CAN_EFF_FLAG | ((f->can_id & CAN_EFF_FLAG) ? CAN_EFF_MASK : CAN_SFF_MASK));
	rx = can_rx_find(drv, key);
	if (!rx) {
		drv->unknown++;
		return;
	}
	/* A cyclic write's frames come back from the BCM socket, not with MSG_CONFIRM. */
	if (drv->n_writes && !(flags & MSG_CONFIRM))
		own_frame(drv, f, len);
	can_frame_received(drv, rx, f->data, len, ts_us, mono_us);
}

/*
 * OVFL is the socket's drop counter (sk_drops) as of some moment: a frame's
 * SO_RXQ_OVFL gives it as it was when that frame was queued, SO_MEMINFO as
 * it is now. It wraps, and older frames may carry older values.
 */
void can_io_count_drops(struct can_driver *drv, uint32_t ovfl)
{
	int32_t d = (int32_t)(ovfl - drv->ovfl_last);

	if (d > 0) {
		if (drv->drops == 0)
			drv->api->log(drv->host, M2M_LOG_WARNING,
			              "%s: the receive queue overflowed: %" PRIu32 " frames dropped",
			              drv->ifname, (uint32_t)d);
		drv->drops += (uint32_t)d;
		drv->ovfl_last = ovfl;
	}
}

static int read_batch(struct can_driver *drv)
{
	struct canfd_frame frames[CAN_RX_BATCH];
	struct mmsghdr msgs[CAN_RX_BATCH];
	struct iovec iov[CAN_RX_BATCH];
	/* cmsghdr ends in a flexible array: aligned bytes, not a union with it. */
	_Alignas(struct cmsghdr) char ctl[CAN_RX_BATCH]
		[CMSG_SPACE(sizeof(struct ts_new)) + CMSG_SPACE(sizeof(uint32_t))];
	int64_t mono = drv->api->mono_us(drv->host);
	int n;

	for (int i = 0; i < CAN_RX_BATCH; i++) {
		iov[i] = (struct iovec){ .iov_base = &frames[i], .iov_len = sizeof(frames[i]) };
		msgs[i] = (struct mmsghdr){
			.msg_hdr = {
				.msg_iov = &iov[i],
				.msg_iovlen = 1,
				.msg_control = ctl[i],
				.msg_controllen = sizeof(ctl[i]),
			},
		};
	}
	n = recvmmsg(drv->fd_raw, msgs, CAN_RX_BATCH, MSG_DONTWAIT, NULL);
	if (n < 0)
		return -errno;
	/* The batch's readings are submitted together (can_flush_readings). */
	for (int i = 0; i < n; i++) {
		uint32_t ovfl = 0;
		bool have_ovfl = false;
		int64_t ts = cmsg_time(drv, &msgs[i].msg_hdr, &ovfl, &have_ovfl);

		if (have_ovfl)
			can_io_count_drops(drv, ovfl);
		if (!ts)
			ts = drv->api->now_us(drv->host);
		can_io_frame(drv, &frames[i], msgs[i].msg_len, msgs[i].msg_hdr.msg_flags, ts, mono);
		/* A callback may have closed the socket (a link gone). */
		if (drv->fd_raw < 0)
			break;
	}
	can_flush_readings(drv);
	return drv->fd_raw < 0 ? 0 : n;
}

void can_io_readable(m2m_io *io, int events, void *arg)
{
	struct can_driver *drv = arg;
	int r = 0;

	(void)io;
	if (events & M2M_IO_ERR) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(drv->fd_raw, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		/* The host stopped the watch: start it again, unless the link is gone. */
		if (err)
			can_link_down(drv, -err);
		if (drv->io)
			drv->api->io_update(drv->io, can_io_watch_events(drv));
		if (!err)
			r = 1;
		if (drv->fd_raw < 0)
			return;
	}
	for (int i = 0; i < CAN_RX_CALLS && drv->fd_raw >= 0; i++) {
		r = read_batch(drv);
		if (r == -EAGAIN || r == -EINTR || (r >= 0 && r < CAN_RX_BATCH))
			break;
		if (r < 0) {
			can_link_down(drv, r);
			break;
		}
	}
	can_io_publish_stats(drv);
}

/*
 * Frames queued before an overflow carry the count from before it, so
 * after a burst the drops show only with the next frame; the tick asks the
 * socket directly, and drops are counted even when the bus falls silent.
 */
void can_io_poll_drops(struct can_driver *drv)
{
	uint32_t mem[SK_MEMINFO_VARS];
	socklen_t len = sizeof(mem);

	if (drv->fd_raw >= 0 && getsockopt(drv->fd_raw, SOL_SOCKET, SO_MEMINFO, mem, &len) == 0 &&
	    len > SK_MEMINFO_DROPS * sizeof(uint32_t))
		can_io_count_drops(drv, mem[SK_MEMINFO_DROPS]);
}

void can_io_publish_stats(struct can_driver *drv)
{
	m2m_stat_slot_set(&drv->st.frames, (double)drv->frames);
	m2m_stat_slot_set(&drv->st.error_frames, (double)drv->error_frames);
	m2m_stat_slot_set(&drv->st.drops, (double)drv->drops);
	m2m_stat_slot_set(&drv->st.overruns, (double)drv->overruns);
	m2m_stat_slot_set(&drv->st.decode_errors, (double)drv->decode_errors);
	m2m_stat_slot_set(&drv->st.unknown, (double)drv->unknown);
	m2m_stat_slot_set(&drv->st.tx_frames, (double)drv->tx_frames);
	m2m_stat_slot_set(&drv->st.tx_retries, (double)drv->tx_retries);
	m2m_stat_slot_set(&drv->st.bus_off, (double)drv->bus_off);
}

/* --- sending --- */

static int bcm_open(struct can_driver *drv)
{
	struct sockaddr_can addr = { .can_family = AF_CAN };
	int fd;

	if (drv->fd_bcm >= 0)
		return 0;
	addr.can_ifindex = (int)if_nametoindex(drv->ifname);
	if (addr.can_ifindex == 0)
		return -errno;
	fd = socket(PF_CAN, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, CAN_BCM);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	drv->fd_bcm = fd;
	return 0;
}

/* Sets up (or updates) the cyclic transmission of W's frame: CAN_BCM's TX_SETUP. */
static int bcm_send(struct can_driver *drv, struct can_write *w)
{
	/* bcm_msg_head ends in a flexible array of frames: one frame after it. */
	_Alignas(struct bcm_msg_head) char buf[sizeof(struct bcm_msg_head) +
	                                      sizeof(struct canfd_frame)] = { 0 };
	struct bcm_msg_head head = { 0 };
	struct canfd_frame frame = { 0 };
	int64_t us = w->rx->tx_cycle_us;
	size_t size;
	int r = bcm_open(drv);

	if (r < 0)
		return r;
	head.opcode = TX_SETUP;
	/* Once running, new data goes out from the next cycle on, and the timer runs on. */
	head.flags = w->rx->bcm_active ? 0 : SETTIMER | STARTTIMER;
	head.ival2.tv_sec = us / M2M_US_PER_S;
	head.ival2.tv_usec = us % M2M_US_PER_S;
	head.can_id = w->rx->key;
	head.nframes = 1;
	frame.can_id = w->rx->key;
	frame.len = w->len;
	memcpy(frame.data, w->data, w->len);
	if (w->rx->m->fd) {
		head.flags |= CAN_FD_FRAME;
		frame.flags = CANFD_BRS;
		size = sizeof(head) + sizeof(struct canfd_frame);
	} else {
		size = sizeof(head) + sizeof(struct can_frame);
	}
	memcpy(buf, &head, sizeof(head));
	memcpy(buf + sizeof(head), &frame, size - sizeof(head));
	if (write(drv->fd_bcm, buf, size) < 0)
		return -errno;
	w->rx->bcm_active = true;
	return 0;
}

/* Sends W's frame once, or hands it to the BCM; -ENOBUFS and -EAGAIN are retried by the caller. */
int can_io_send(struct can_driver *drv, struct can_write *w)
{
	struct canfd_frame f = { 0 };
	size_t size;
	ssize_t n;

	if (drv->fd_raw < 0)
		return -ENETDOWN;
	if (w->j1939)
		return can_j1939_send(drv, w);
	if (w->cyclic) {
		int r = bcm_send(drv, w);

		if (r == 0)
			drv->tx_frames++;
		return r;
	}
	f.can_id = w->rx->key;
	f.len = w->len;
	memcpy(f.data, w->data, w->len);
	if (w->rx->m->fd) {
		f.flags = CANFD_BRS;
		size = CANFD_MTU;
	} else {
		size = CAN_MTU;
	}
	n = write(drv->fd_raw, &f, size);
	if (n < 0)
		return -errno;
	drv->tx_frames++;
	return 0;
}
