/* SPDX-License-Identifier: MIT */
/*
 * serial-port.c - the tty: opening it in raw mode, the line settings and
 * RS-485, reading and writing without blocking, losing it and reopening.
 *
 * The port is an fd watched by the loop: no thread. It is opened
 * O_NONBLOCK (an open of a modem line would otherwise wait for carrier),
 * O_NOCTTY (a tty must never become the daemon's controlling terminal, or
 * its hang-up would send SIGHUP, which reloads m2md) and O_CLOEXEC. Two
 * locks keep a second reader off the line, because two readers split the
 * bytes between them and both see garbage: TIOCEXCL, which the kernel
 * enforces on later opens (except for root), and flock(), the advisory lock
 * that pyserial's exclusive mode takes and tests.
 *
 * An unplugged USB adapter, or the other end of a pty going away, shows as
 * HUP, ERR or EIO: the port is closed, the instance goes offline and the
 * reopen timer tries again, doubling its delay up to backoff_max.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/serial.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "serial-driver.h"

static speed_t speed_of(int baud)
{
	switch (baud) {
	case 50: return B50;
	case 75: return B75;
	case 110: return B110;
	case 134: return B134;
	case 150: return B150;
	case 200: return B200;
	case 300: return B300;
	case 600: return B600;
	case 1200: return B1200;
	case 1800: return B1800;
	case 2400: return B2400;
	case 4800: return B4800;
	case 9600: return B9600;
	case 19200: return B19200;
	case 38400: return B38400;
	case 57600: return B57600;
	case 115200: return B115200;
	case 230400: return B230400;
	case 460800: return B460800;
	case 500000: return B500000;
	case 576000: return B576000;
	case 921600: return B921600;
	case 1000000: return B1000000;
	case 1152000: return B1152000;
	case 1500000: return B1500000;
	case 2000000: return B2000000;
	case 2500000: return B2500000;
	case 3000000: return B3000000;
	case 3500000: return B3500000;
	case 4000000: return B4000000;
	default: return B0; /* the config accepts only the rates above */
	}
}

static int set_line(struct ser_driver *drv, int fd, char *err, size_t errsize)
{
	static const tcflag_t sizes[] = { CS5, CS6, CS7, CS8 };
	struct termios t;
	speed_t speed = speed_of(drv->baud);

	if (tcgetattr(fd, &t) < 0) {
		int e = errno;

		snprintf(err, errsize, "not a tty (%s)", strerror(e));
		return -e;
	}
	cfmakeraw(&t);
	t.c_cflag &= ~(tcflag_t)(CSIZE | PARENB | PARODD | CSTOPB | CRTSCTS | HUPCL);
	t.c_cflag |= sizes[drv->data_bits - 5] | CREAD | CLOCAL;
	if (drv->parity != SER_PARITY_NONE) {
		t.c_cflag |= PARENB;
		if (drv->parity == SER_PARITY_ODD)
			t.c_cflag |= PARODD;
		/* Parity errors arrive as NUL bytes, which no text frame holds. */
		t.c_iflag |= INPCK;
	}
	if (drv->stop_bits == 2)
		t.c_cflag |= CSTOPB;
	t.c_iflag &= ~(tcflag_t)(IXON | IXOFF | IXANY);
	if (drv->flow == SER_FLOW_RTSCTS)
		t.c_cflag |= CRTSCTS;
	else if (drv->flow == SER_FLOW_XONXOFF)
		t.c_iflag |= IXON | IXOFF;
	/*
	 * VMIN 1: with O_NONBLOCK a read then fails with EAGAIN when nothing is
	 * there, and returns 0 only for a hang-up. With VMIN 0 an empty read
	 * would return 0 too, and an unplug would look like silence.
	 */
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	if (cfsetispeed(&t, speed) < 0 || cfsetospeed(&t, speed) < 0 ||
	    tcsetattr(fd, TCSANOW, &t) < 0) {
		int e = errno;

		snprintf(err, errsize, "cannot set %d baud %d%c%d (%s)", drv->baud, drv->data_bits,
		         "NEO"[drv->parity], drv->stop_bits, strerror(e));
		return -e;
	}
	return 0;
}

static int set_rs485(struct ser_driver *drv, int fd, char *err, size_t errsize)
{
	struct serial_rs485 rs = { 0 };

	rs.flags = SER_RS485_ENABLED;
	rs.flags |= drv->rs485_rts_on_send ? SER_RS485_RTS_ON_SEND : SER_RS485_RTS_AFTER_SEND;
	rs.delay_rts_before_send = (uint32_t)(drv->rs485_delay_before_us / US_PER_MS);
	rs.delay_rts_after_send = (uint32_t)(drv->rs485_delay_after_us / US_PER_MS);
	if (ioctl(fd, TIOCSRS485, &rs) < 0) {
		int e = errno;

		/* ENOSYS: an ioctl the emulator does not pass on (qemu-user), as good as ENOTTY. */
		if (e == ENOTTY || e == EINVAL || e == ENOSYS)
			snprintf(err, errsize, "RS-485 mode (rs485 = true) is not supported by this port "
			         "(%s): it needs a UART whose driver does RS-485 (TIOCSRS485); an "
			         "adapter that switches direction by itself needs rs485 = false",
			         strerror(e));
		else
			snprintf(err, errsize, "RS-485 mode failed (%s)", strerror(e));
		return -e;
	}
	return 0;
}

int ser_port_open(struct ser_driver *drv, char *err, size_t errsize)
{
	int fd, r;

	fd = open(drv->port, O_RDWR | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;

		if (e == EBUSY)
			snprintf(err, errsize, "\"%s\" is held by another process (opened exclusively, "
			         "TIOCEXCL)", drv->port);
		else if (e == ENOENT || e == ENODEV || e == ENXIO)
			snprintf(err, errsize, "\"%s\" is not there (%s): unplugged?", drv->port,
			         strerror(e));
		else if (e == EACCES)
			snprintf(err, errsize, "no permission to open \"%s\" (the user needs group "
			         "dialout)", drv->port);
		else
			snprintf(err, errsize, "cannot open \"%s\" (%s)", drv->port, strerror(e));
		return -e;
	}
	if (drv->exclusive) {
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			int e = errno;

			close(fd);
			snprintf(err, errsize, "\"%s\" is held by another process (it holds a lock on "
			         "it; exclusive = false shares the line)", drv->port);
			return e == EWOULDBLOCK ? -EBUSY : -e;
		}
		if (ioctl(fd, TIOCEXCL) < 0) {
			int e = errno;

			close(fd);
			snprintf(err, errsize, "cannot open \"%s\" exclusively (%s)", drv->port,
			         strerror(e));
			return -e;
		}
	}
	r = set_line(drv, fd, err, errsize);
	if (r == 0 && drv->rs485)
		r = set_rs485(drv, fd, err, errsize);
	if (r < 0) {
		close(fd);
		return r;
	}
	/* Bytes from before the open belong to nobody's frame. */
	tcflush(fd, TCIOFLUSH);
	drv->fd = fd;
	return 0;
}

static void on_io(m2m_io *io, int events, void *arg);

/* HUP only for a host that knows it (ABI 1.1); a 1.0 host shows a hang-up as READ and EIO. */
static int watch_events(const struct ser_driver *drv)
{
	return M2M_IO_READ | (M2M_HOST_HAS(drv->api, device_state) ? M2M_IO_HUP : 0);
}

void ser_port_close(struct ser_driver *drv)
{
	drv->api->io_stop(drv->io);
	drv->io = NULL;
	drv->io_events = 0;
	if (drv->fd >= 0) {
		/*
		 * TIOCEXCL stays on the tty while anyone else has it open (the
		 * master of a pty does): let go of it, or the next open by an
		 * unprivileged m2md (a reload, a reopen) would get EBUSY.
		 */
		if (drv->exclusive)
			ioctl(drv->fd, TIOCNXCL);
		close(drv->fd);
	}
	drv->fd = -1;
	drv->out_len = 0;
	/* What the last read brought and was not parsed yet belongs to the old line. */
	drv->pend_off = drv->pend_len = 0;
	drv->api->timer_stop(drv->resume_timer);
	drv->resume_timer = NULL;
}

void ser_port_try_open(struct ser_driver *drv)
{
	char err[256];
	int r;

	r = ser_port_open(drv, err, sizeof(err));
	if (r == 0)
		r = drv->api->io_start(drv->host, drv->fd, watch_events(drv), on_io, drv,
		                       &drv->io);
	if (r < 0) {
		if (drv->fd >= 0) {
			snprintf(err, sizeof(err), "watching the port failed (%s)", strerror(-r));
			drv->io = NULL;
			ser_port_close(drv);
		}
		ser_port_down(drv, err);
		ser_port_schedule_reopen(drv);
		return;
	}
	drv->io_events = watch_events(drv);
	drv->backoff_us = 0;
	ser_port_up(drv);
}

static void reopen_cb(m2m_timer *timer, void *arg)
{
	(void)timer;
	ser_port_try_open(arg);
}

void ser_port_schedule_reopen(struct ser_driver *drv)
{
	const struct m2m_host_api *api = drv->api;
	int r;

	if (!drv->running)
		return;
	drv->backoff_us = drv->backoff_us ? drv->backoff_us * 2 : SER_BACKOFF_MIN_US;
	if (drv->backoff_us > drv->backoff_max_us)
		drv->backoff_us = drv->backoff_max_us;
	r = m2m_timer_rearm(api, drv->host, &drv->reopen_timer,
	                    (uint64_t)(drv->backoff_us / US_PER_MS), 0, reopen_cb, drv);
	if (r < 0)
		api->log(drv->host, M2M_LOG_ERR, "cannot schedule reopening \"%s\" (%s)", drv->port,
		         strerror(-r));
}

/* The port first: open now, or go offline and retry. */
void ser_port_lost(struct ser_driver *drv, const char *reason)
{
	ser_port_close(drv);
	drv->counts[SER_ST_REOPENS]++;
	ser_port_down(drv, reason);
	drv->backoff_us = 0;
	ser_port_schedule_reopen(drv);
}

static void update_events(struct ser_driver *drv)
{
	int want = watch_events(drv) | (drv->out_len ? M2M_IO_WRITE : 0);

	if (drv->io && want != drv->io_events && drv->api->io_update(drv->io, want) == 0)
		drv->io_events = want;
}

static int flush_out(struct ser_driver *drv)
{
	while (drv->out_len) {
		ssize_t n = write(drv->fd, drv->out, drv->out_len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0)
			return -errno;
		memmove(drv->out, drv->out + n, drv->out_len - (size_t)n);
		drv->out_len -= (size_t)n;
	}
	update_events(drv);
	return 0;
}

int ser_port_send(struct ser_driver *drv, const uint8_t *data, size_t len)
{
	int r;

	if (drv->fd < 0)
		return -ENOTCONN;
	if (len > sizeof(drv->out) - drv->out_len)
		return -ENOBUFS;
	memcpy(drv->out + drv->out_len, data, len);
	drv->out_len += len;
	r = flush_out(drv);
	if (r < 0) {
		char why[96];

		snprintf(why, sizeof(why), "write failed (%s)", strerror(-r));
		ser_port_lost(drv, why);
	}
	return r;
}

static void resume_cb(m2m_timer *timer, void *arg);

/* Comes back on the loop's next turn (a timer of 0 ms), whether or not the fd is readable. */
static void schedule_resume(struct ser_driver *drv, bool hup)
{
	drv->resume_hup = hup;
	if (m2m_timer_rearm(drv->api, drv->host, &drv->resume_timer, 0, 0, resume_cb, drv) < 0)
		drv->api->log(drv->host, M2M_LOG_ERR, "cannot schedule the rest of a read");
}

/*
 * Feeds what the last read brought, SER_FEED_PIECE bytes at a time, until
 * it is all in or SER_SLICE_US of the loop is spent: then the rest waits
 * for the loop's next turn. Lines crafted against a loose pattern cost up
 * to its match limit each, and 4 KiB of them would otherwise hold the loop
 * for tens of milliseconds. Returns true when nothing is left.
 */
static bool feed_pending(struct ser_driver *drv, bool hup)
{
	const struct m2m_host_api *api = drv->api;
	int64_t t0 = api->mono_us(drv->host), now = t0;

	while (drv->pend_off < drv->pend_len) {
		size_t n = drv->pend_len - drv->pend_off;

		if (n > SER_FEED_PIECE)
			n = SER_FEED_PIECE;
		ser_feed(drv, drv->pend + drv->pend_off, n, now);
		/* A frame's callback may have lost the port (a failed write). */
		if (drv->fd < 0) {
			ser_flush(drv);
			return true;
		}
		drv->pend_off += n;
		/* One clock read per piece: the slice's and the next piece's time. */
		now = api->mono_us(drv->host);
		if (drv->pend_off < drv->pend_len && now - t0 > SER_SLICE_US) {
			ser_flush(drv);
			schedule_resume(drv, hup);
			return false;
		}
	}
	/* All the frames of the read in one submit. */
	ser_flush(drv);
	drv->pend_off = drv->pend_len = 0;
	return true;
}

/*
 * One read's worth: what is pending first, then at most one read. Returns
 * false when the line is gone (then the caller reports it).
 */
static bool pump_bytes(struct ser_driver *drv, bool hup, char *why, size_t whysize)
{
	ssize_t n;

	if (!feed_pending(drv, hup) || drv->fd < 0)
		return true;
	do
		n = read(drv->fd, drv->pend, sizeof(drv->pend));
	while (n < 0 && errno == EINTR);
	if (n > 0) {
		drv->pend_len = (size_t)n;
		if (feed_pending(drv, hup) && drv->fd >= 0 && hup)
			/* The watch may be stopped now: read on until the hang-up shows. */
			schedule_resume(drv, hup);
		return true;
	}
	if (n < 0 && errno == EAGAIN && !hup)
		return true;
	/* EOF, EIO, or a hang-up with nothing left to read: the line is gone. */
	if (n < 0 && errno != EAGAIN)
		snprintf(why, whysize, "the port went away (%s)", strerror(errno));
	else
		snprintf(why, whysize, "the port hung up");
	return false;
}

static void pump(struct ser_driver *drv, bool hup)
{
	char why[96];

	if (pump_bytes(drv, hup, why, sizeof(why)))
		ser_publish_stats(drv);
	else
		ser_port_lost(drv, why);
}

static void resume_cb(m2m_timer *timer, void *arg)
{
	struct ser_driver *drv = arg;

	(void)timer;
	if (drv->fd >= 0)
		pump(drv, drv->resume_hup);
}

static void on_io(m2m_io *io, int events, void *arg)
{
	struct ser_driver *drv = arg;

	(void)io;
	if ((events & M2M_IO_WRITE) && flush_out(drv) < 0) {
		ser_port_lost(drv, "write failed: the port went away");
		return;
	}
	if (events & (M2M_IO_READ | M2M_IO_HUP | M2M_IO_ERR))
		pump(drv, (events & (M2M_IO_HUP | M2M_IO_ERR)) != 0);
}
