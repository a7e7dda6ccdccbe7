/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the serial driver on the fake host (tests/plugin/fake-host.h):
 * the driver's own objects, the ones serial.so is linked from, on a real
 * pty that the test opens (posix_openpt) and whose master side plays the
 * device. The fake host's clock drives the polls, timeouts, staleness and
 * reopening, so nothing here waits for real time; the fd watch is fired
 * by the test after it wrote the master side.
 *
 * Also the command templates and escapes (serial-template.h), pure code.
 * The real daemon against socat ptys is tests/serial/test_serial_*.py.
 */
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include "fake-host.h"
#include "serial-driver.h"

/* --- templates and escapes --- */

static void expect_render(const char *tpl, double v, const char *want)
{
	uint8_t out[SER_CMD_MAX + 1];
	int n = ser_template_render((const uint8_t *)tpl, strlen(tpl), v, out, SER_CMD_MAX, NULL, 0);

	ASSERT_GE(n, 0);
	out[n] = 0;
	ASSERT_STR_EQ((char *)out, want);
}

static void expect_render_error(const char *tpl, double v, int err)
{
	uint8_t out[64];
	char msg[160] = "";

	ASSERT_EQ(ser_template_render((const uint8_t *)tpl, strlen(tpl), v, out, sizeof(out), msg,
	                              sizeof(msg)), err);
}

static void test_templates(void)
{
	uint8_t out[16];
	char err[128];

	expect_render("SP{value:.1f}\r", 42.25, "SP42.2\r");
	expect_render("SP{value:.1f}\r", 42.26, "SP42.3\r");
	expect_render("{value}", 0.1, "0.1");
	expect_render("{value}", 1e21, "1e+21");
	expect_render("{value}", -3, "-3");
	expect_render("A{value:05d}B", 42, "A00042B");
	expect_render("#{value:04X}", 255, "#00FF");
	expect_render("{value:+.2e}", 1234.5, "+1.23e+03");
	expect_render("{{{value:d}}}", 7, "{7}");
	expect_render("no value", 1, "no value");
	expect_render_error("{value:d}", 1.5, -ERANGE);
	expect_render_error("{value:x}", -1, -ERANGE);
	expect_render_error("{value}", NAN, -ERANGE);
	expect_render_error("{value:.1s}", 1, -EINVAL);
	expect_render_error("{value:%f}", 1, -EINVAL);
	expect_render_error("{value:123f}", 1, -EINVAL);
	expect_render_error("{val}", 1, -EINVAL);
	expect_render_error("{value", 1, -EINVAL);
	expect_render_error("a}b", 1, -EINVAL);
	expect_render_error("{value:.3f}{value:.3f}{value:.3f}", 1e60, -E2BIG);
	ASSERT_EQ(ser_template_check((const uint8_t *)"{value:q}", 9, err, sizeof(err)), -EINVAL);
	ASSERT_STR_CONTAINS(err, "bad placeholder format");

	ASSERT_EQ(ser_unescape("\\x02W\\r\\n\\t\\\\\\0", out, sizeof(out), err, sizeof(err)), 7);
	ASSERT(memcmp(out, "\x02W\r\n\t\\\0", 7) == 0);
	ASSERT_EQ(ser_unescape("\xc3\xa9\\xff", out, sizeof(out), err, sizeof(err)), 3);
	ASSERT_EQ(out[2], 0xff);
	ASSERT_EQ(ser_unescape("\\q", out, sizeof(out), err, sizeof(err)), -EINVAL);
	ASSERT_STR_CONTAINS(err, "unknown escape at offset 0");
	ASSERT_EQ(ser_unescape("\\x4", out, sizeof(out), err, sizeof(err)), -EINVAL);
	ASSERT_EQ(ser_unescape("0123456789abcdefg", out, sizeof(out), err, sizeof(err)), -E2BIG);
}

/* --- the driver --- */

struct pty {
	int master;
	char path[64];
};

static void pty_open(struct pty *p)
{
	p->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	ASSERT(p->master >= 0);
	ASSERT_OK(grantpt(p->master));
	ASSERT_OK(unlockpt(p->master));
	ASSERT_OK(ptsname_r(p->master, p->path, sizeof(p->path)));
}

static void pty_write(struct pty *p, const char *s)
{
	ASSERT_EQ(write(p->master, s, strlen(s)), (ssize_t)strlen(s));
}

/* What the driver wrote, after a short wait for the pty to pass it on. */
static size_t pty_read(struct pty *p, char *buf, size_t size)
{
	struct pollfd pfd = { .fd = p->master, .events = POLLIN };
	ssize_t n;

	if (poll(&pfd, 1, 1000) != 1)
		return 0;
	n = read(p->master, buf, size - 1);
	ASSERT(n >= 0);
	buf[n] = 0;
	return (size_t)n;
}

/* Fires the port's watch once the bytes written to the master can be read. */
static void deliver(m2m_host *h, struct ser_driver *drv)
{
	struct pollfd pfd = { .fd = drv->fd, .events = POLLIN };

	ASSERT_EQ(poll(&pfd, 1, 1000), 1);
	fake_host_io_fire(h, fake_host_io(h, drv->fd), M2M_IO_READ);
}

static struct ser_driver *create(m2m_host *h, const struct m2m_host_api *api, const char *json)
{
	void *d = NULL;

	ASSERT_OK(fake_host_create(h, &ser_driver_ops, api, json, &d));
	ASSERT(d);
	ASSERT_EQ(h->errors, 0);
	ASSERT_EQ(fake_host_unknown_keys(h), 0);
	return d;
}

static void expect_error(const char *json, const char *msg)
{
	m2m_host *h = fake_host_new();
	void *d = NULL;

	ASSERT_EQ(fake_host_create(h, &ser_driver_ops, fake_host_api(1), json, &d), -EINVAL);
	ASSERT(d == NULL);
	ASSERT_STR_CONTAINS(h->error, msg);
	fake_host_free(h);
}

#define PORT "\"port\":\"/dev/ttyUSB9\",\"device\":\"d\","
#define POINT "\"points\":[{\"name\":\"p\",\"sentence\":\"RMC\",\"field\":\"course\"}]"
#define NMEA(points) "{" PORT "\"format\":\"nmea\",\"points\":[" points "]}"

static void test_config_errors(void)
{
	expect_error("{\"format\":\"nmea\",\"points\":[]}", "missing key 'port'");
	expect_error("{\"port\":\"ttyUSB0\",\"format\":\"nmea\"}", "must be an absolute path");
	expect_error("{" PORT "\"points\":[]}", "missing key 'format'");
	expect_error("{" PORT "\"format\":\"nmea\"}", "expected 'points'");
	expect_error("{" PORT "\"format\":\"nmea\",\"baud\":9601,\"points\":[]}", "9601 is not a rate");
	expect_error("{" PORT "\"format\":\"nmea\",\"data_bits\":9,\"points\":[]}", "'data_bits'");
	expect_error("{\"port\":\"/dev/x\",\"format\":\"nmea\",\"device\":\"a/b\",\"points\":[]}",
	             "without '/'");
	expect_error("{" PORT "\"format\":\"regex\",\"pattern\":\"(\",\"max_length\":9,\"points\":[]}",
	             "bad regular expression");
	expect_error("{" PORT "\"format\":\"regex\",\"pattern\":\"(a)\",\"points\":[]}",
	             "missing key 'max_length'");
	expect_error("{" PORT "\"format\":\"nmea\",\"end\":\"\",\"points\":[]}", "empty end delimiter");
	expect_error("{" PORT "\"format\":\"nmea\",\"end\":\"\\\\q\",\"points\":[]}", "unknown escape");
	expect_error("{" PORT "\"format\":\"nmea\",\"framing\":\"start_end\",\"points\":[]}",
	             "needs 'start'");
	expect_error("{" PORT "\"format\":\"nmea\",\"framing\":\"fixed\",\"start\":\"$\",\"points\":[]}",
	             "needs 'length'");
	expect_error("{" PORT "\"format\":\"delimited\",\"separator\":\";;\",\"max_length\":9,"
	             "\"points\":[]}", "expected one byte");
	expect_error(NMEA("{\"name\":\"p\"}"), "missing key 'sentence'");
	expect_error(NMEA("{\"name\":\"p\",\"sentence\":\"rmc\",\"field\":\"course\"}"),
	             "upper-case letters");
	expect_error(NMEA("{\"name\":\"p\",\"sentence\":\"RMC\"}"), "needs one of 'field'");
	expect_error(NMEA("{\"name\":\"p\",\"sentence\":\"RMC\",\"field\":\"course\",\"index\":3}"),
	             "needs one of 'field'");
	expect_error(NMEA("{\"name\":\"p\",\"sentence\":\"XDR\",\"field\":\"x\"}"), "use 'xdr'");
	expect_error(NMEA("{\"name\":\"p\",\"sentence\":\"XDR\"}"), "needs one of 'xdr'");
	expect_error(NMEA("{\"name\":\"p\",\"sentence\":\"XDR\",\"xdr\":\"T\",\"kind\":\"string\"}"),
	             "an XDR measurement is a number");
	expect_error(NMEA("{\"name\":\"p\",\"sentence\":\"TXT\",\"field\":\"text\"}"),
	             "has no named fields");
	expect_error(NMEA("{\"name\":\"p\",\"sentence\":\"GGA\",\"field\":\"alt\"}"),
	             "GGA has no field \"alt\" (time, latitude");
	expect_error(NMEA("{\"name\":\"p\",\"sentence\":\"RMC\",\"field\":\"mode\"}"), "not a number");
	expect_error(NMEA("{\"name\":\"p\",\"sentence\":\"RMC\",\"field\":\"status\",\"kind\":\"bool\"}"),
	             "needs 'on'");
	expect_error(NMEA("{\"name\":\"p\",\"sentence\":\"RMC\",\"field\":\"course\",\"write\":\"x\"}"),
	             "'write' needs writable = true");
	expect_error(NMEA("{\"name\":\"p\",\"sentence\":\"RMC\",\"field\":\"course\",\"writable\":true,"
	                  "\"write\":\"C{value:z}\"}"), "bad placeholder format");
	expect_error(NMEA("{\"name\":\"p\",\"sentence\":\"RMC\",\"field\":\"status\",\"kind\":\"string\","
	                  "\"writable\":true,\"write\":\"C{value}\"}"), "cannot be writable");
	expect_error("{" PORT "\"format\":\"nmea\",\"requests\":[{\"name\":\"a\",\"command\":\"x\"},"
	             "{\"name\":\"a\",\"command\":\"y\"}]," POINT "}", "a second request named");
	expect_error("{" PORT "\"format\":\"nmea\",\"requests\":[{\"name\":\"a\"}]," POINT "}",
	             "missing key 'command'");
}

/* Keys that do not apply to the format stay unread, so the host refuses them. */
static void test_unread_keys(void)
{
	m2m_host *h = fake_host_new();
	void *d = NULL;

	ASSERT_OK(fake_host_create(h, &ser_driver_ops, fake_host_api(1),
	                           NMEA("{\"name\":\"p\",\"sentence\":\"RMC\",\"field\":\"course\","
	                                "\"group\":1}"), &d));
	ASSERT_EQ(fake_host_unknown_keys(h), 1);
	ASSERT_STR_EQ(h->unknown, "group");
	ser_free(d);
	fake_host_free(h);
	h = fake_host_new();
	d = NULL;
	ASSERT_OK(fake_host_create(h, &ser_driver_ops, fake_host_api(1),
	                           "{" PORT "\"format\":\"nmea\",\"separator\":\";\","
	                           "\"rs485_delay_after\":\"1ms\",\"points\":[{\"name\":\"p\",\"sentence\":\"RMC\","
	                           "\"field\":\"course\"}]}", &d));
	ASSERT_EQ(fake_host_unknown_keys(h), 2);
	ser_free(d);
	fake_host_free(h);
}

static const char *scale_json(const char *port)
{
	static char json[2048];

	snprintf(json, sizeof(json),
	         "{\"port\":\"%s\",\"device\":\"scale\",\"format\":\"regex\",\"max_length\":40,"
	         "\"stale\":\"5s\",\"backoff_max\":\"400ms\","
	         "\"requests\":[{\"name\":\"w\",\"command\":\"W\\\\r\",\"interval\":\"100ms\","
	         "\"timeout\":\"50ms\",\"retries\":1,\"response\":\"^W \"}],"
	         "\"points\":["
	         "{\"name\":\"weight\",\"request\":\"w\",\"pattern\":\"^W (-?[0-9.]+)$\"},"
	         "{\"name\":\"door\",\"kind\":\"string\",\"pattern\":\"^D (\\\\w+)$\"},"
	         "{\"name\":\"sp\",\"writable\":true,\"write\":\"S{value:.1f}\\r\",\"ack\":\"^OK$\","
	         "\"write_timeout\":\"80ms\",\"pattern\":\"^S=(.*)$\"}]}",
	         port);
	return json;
}

static void test_poll_write_and_loss(int minor)
{
	m2m_host *h = fake_host_new();
	struct m2m_write w1 = { 0 }, w2 = { 0 }, w3 = { 0 };
	struct pty p;
	struct ser_driver *drv;
	const struct m2m_reading *r;
	uint32_t weight, door, sp;
	char buf[256];

	pty_open(&p);
	drv = create(h, fake_host_api(minor), scale_json(p.path));
	weight = fake_host_point(h, "scale/weight");
	door = fake_host_point(h, "scale/door");
	sp = fake_host_point(h, "scale/sp");
	ASSERT_OK(ser_driver_ops.start(drv));
	ASSERT(drv->fd >= 0);
	if (minor)
		ASSERT_EQ(fake_host_state(h, "")->state, M2M_DEVICE_ONLINE);

	/* The first poll goes out at once; the answer gives the weight. */
	ASSERT_GT(pty_read(&p, buf, sizeof(buf)), 0);
	ASSERT_STR_EQ(buf, "W\r");
	pty_write(&p, "D open\r\nW 12.5\r\n");
	deliver(h, drv);
	r = fake_host_reading(h, weight);
	ASSERT(r && r->quality == M2M_QUALITY_GOOD);
	ASSERT_DOUBLE_EQ(r->value, 12.5, 0);
	ASSERT_STR_EQ(fake_host_text(h, door)->text, "open");

	/* A write goes out when the line is free and ends with the acknowledgement. */
	fake_host_advance(h, 100 * US_PER_MS);
	ASSERT_STR_EQ((pty_read(&p, buf, sizeof(buf)), buf), "W\r");
	ASSERT_OK(ser_driver_ops.write(drv, sp, 3.25, &w1));
	ASSERT_EQ(w1.calls, 0); /* behind the poll in flight */
	pty_write(&p, "W 13\r\n");
	deliver(h, drv);
	ASSERT_STR_EQ((pty_read(&p, buf, sizeof(buf)), buf), "S3.2\r");
	ASSERT_EQ(w1.calls, 0);
	pty_write(&p, "OK\r\n");
	deliver(h, drv);
	ASSERT_EQ(w1.calls, 1);
	ASSERT_EQ(w1.status, 0);

	/* No acknowledgement: the write times out; the point's value is not touched. */
	ASSERT_OK(ser_driver_ops.write(drv, sp, 1, &w2));
	ASSERT_STR_EQ((pty_read(&p, buf, sizeof(buf)), buf), "S1.0\r");
	fake_host_advance(h, 80 * US_PER_MS);
	ASSERT_EQ(w2.calls, 1);
	ASSERT_EQ(w2.status, -ETIMEDOUT);
	ASSERT_STR_CONTAINS(w2.text, "no acknowledgement within 80ms");
	ASSERT(fake_host_reading(h, sp) == NULL);

	/* A silent device: one retry, then timeout quality and the device offline. */
	fake_host_advance(h, 30 * US_PER_MS);
	ASSERT_STR_EQ((pty_read(&p, buf, sizeof(buf)), buf), "W\r");
	fake_host_advance(h, 50 * US_PER_MS);
	ASSERT_STR_EQ((pty_read(&p, buf, sizeof(buf)), buf), "W\r");
	fake_host_advance(h, 50 * US_PER_MS);
	r = fake_host_reading(h, weight);
	ASSERT_EQ(r->quality, M2M_QUALITY_TIMEOUT);
	if (minor) {
		ASSERT_EQ(fake_host_state(h, "scale")->state, M2M_DEVICE_OFFLINE);
		ASSERT_STR_CONTAINS(fake_host_state(h, "scale")->reason,
		                    "no answer to request \"w\" within 50ms (2 attempts)");
		ASSERT_EQ(fake_host_stat_value(h, "timeouts", NULL), 2);
	} else {
		ASSERT_GE(fake_host_events(h, "scale", "offline"), 1);
	}
	/* Unsolicited frames are parsed while nothing is in flight. */
	pty_write(&p, "D shut\r\n");
	deliver(h, drv);
	ASSERT_STR_EQ(fake_host_text(h, door)->text, "shut");

	/* The device side goes away: a hang-up, COMM_ERROR readings, offline, reopening. */
	ASSERT_OK(ser_driver_ops.write(drv, sp, 2, &w3));
	close(p.master);
	fake_host_io_fire(h, fake_host_io(h, drv->fd), M2M_IO_HUP | M2M_IO_ERR);
	ASSERT_EQ(drv->fd, -1);
	ASSERT_EQ(w3.calls, 1);
	ASSERT_EQ(w3.status, -ENOTCONN);
	r = fake_host_reading(h, weight);
	ASSERT_EQ(r->quality, M2M_QUALITY_COMM_ERROR);
	if (minor) {
		ASSERT_EQ(fake_host_state(h, "")->state, M2M_DEVICE_OFFLINE);
		ASSERT_EQ(fake_host_stat_value(h, "port_losses", NULL), 1);
	}
	ASSERT_GE(fake_host_logged(h, M2M_LOG_ERR, "the port"), 1);
	/* The pty is gone for good: each retry fails, logged once, backing off to 400ms. */
	fake_host_advance(h, 2000 * US_PER_MS);
	ASSERT_EQ(drv->fd, -1);
	ASSERT_EQ(drv->backoff_us, 400 * US_PER_MS);
	ASSERT_EQ(fake_host_logged(h, M2M_LOG_ERR, "is not there"), 1);
	/* Reported once per change, not per retry or per answer (a 1.0 host makes events of them). */
	if (minor == 0) {
		ASSERT_EQ(fake_host_events(h, "", "offline"), 2);
		ASSERT_EQ(fake_host_events(h, "scale", "online"), 1);
		ASSERT_EQ(fake_host_events(h, "scale", "offline"), 1);
	} else {
		ASSERT_EQ(h->n_states, 5);
	}
	ser_driver_ops.stop(drv);
	ASSERT_EQ(fake_host_timers(h), 0);
	ser_driver_ops.destroy(drv);
	fake_host_free(h);
}

static void test_nmea_frames(void)
{
	m2m_host *h = fake_host_new();
	struct pty p;
	struct ser_driver *drv;
	char json[1024];
	uint32_t lat, alt, fixq, valid;

	pty_open(&p);
	snprintf(json, sizeof(json),
	         "{\"port\":\"%s\",\"device\":\"gps\",\"format\":\"nmea\",\"checksum\":\"optional\","
	         "\"points\":[{\"name\":\"lat\",\"sentence\":\"RMC\",\"field\":\"latitude\"},"
	         "{\"name\":\"alt\",\"sentence\":\"GNGGA\",\"field\":\"altitude\"},"
	         "{\"name\":\"fix\",\"sentence\":\"GGA\",\"index\":5},"
	         "{\"name\":\"valid\",\"sentence\":\"RMC\",\"field\":\"status\",\"kind\":\"bool\","
	         "\"on\":\"A\"}]}",
	         p.path);
	drv = create(h, fake_host_api(1), json);
	lat = fake_host_point(h, "gps/lat");
	alt = fake_host_point(h, "gps/alt");
	fixq = fake_host_point(h, "gps/fix");
	valid = fake_host_point(h, "gps/valid");
	ASSERT_OK(ser_driver_ops.start(drv));
	/* No checksum is fine under "optional"; a talker pinned to GN skips GP. */
	pty_write(&p, "$GPRMC,225446,A,4916.45,N,12311.12,W,000.5,054.7,191194,020.3,E\r\r\n"
	              "$GPGGA,225446,4916.45,N,12311.12,W,2,11,0.8,38.2,M,-17.1,M,3.2,0120\r\n");
	deliver(h, drv);
	ASSERT_DOUBLE_EQ(fake_host_reading(h, lat)->value, 49.0 + 16.45 / 60, 1e-12);
	ASSERT_EQ(fake_host_count(h, alt), 0);
	ASSERT_DOUBLE_EQ(fake_host_reading(h, fixq)->value, 2, 0);
	ASSERT_DOUBLE_EQ(fake_host_reading(h, valid)->value, 1, 0);
	/* Status V: no position, the bool says false. A wrong checksum is counted. */
	pty_write(&p, "$GNRMC,083600.00,V,4717.11500,N,00833.91600,E,,,091202,,,N*5b\r\n"
	              "$GNGGA,,,,,,0,00,99.99,,,,,,*00\r\n");
	deliver(h, drv);
	ASSERT_EQ(fake_host_count(h, lat), 1);
	ASSERT_DOUBLE_EQ(fake_host_reading(h, valid)->value, 0, 0);
	ASSERT_EQ(fake_host_count(h, fixq), 1);
	ser_publish_stats(drv);
	ASSERT_EQ(fake_host_stat_value(h, "checksum_errors", NULL), 1);
	ser_driver_ops.destroy(drv);
	close(p.master);
	fake_host_free(h);
}

/* An answer that does not read as the format is a decode error of the request's points. */
static void test_bad_answer(void)
{
	m2m_host *h = fake_host_new();
	struct pty p;
	struct ser_driver *drv;
	char json[1024], buf[64];
	uint32_t a, b;

	pty_open(&p);
	snprintf(json, sizeof(json),
	         "{\"port\":\"%s\",\"device\":\"m\",\"format\":\"delimited\",\"separator\":\";\","
	         "\"max_length\":40,\"requests\":[{\"name\":\"q\",\"command\":\"Q\\r\","
	         "\"interval\":\"1s\",\"response\":\"^R;\"}],"
	         "\"points\":[{\"name\":\"a\",\"request\":\"q\",\"field\":1},"
	         "{\"name\":\"b\",\"field\":1}]}",
	         p.path);
	drv = create(h, fake_host_api(1), json);
	a = fake_host_point(h, "m/a");
	b = fake_host_point(h, "m/b");
	ASSERT_OK(ser_driver_ops.start(drv));
	ASSERT_STR_EQ((pty_read(&p, buf, sizeof(buf)), buf), "Q\r");
	/* Unsolicited: only the point without a request takes it. */
	pty_write(&p, "X;5\r\n");
	deliver(h, drv);
	ASSERT_EQ(fake_host_count(h, a), 0);
	ASSERT_DOUBLE_EQ(fake_host_reading(h, b)->value, 5, 0);
	pty_write(&p, "R;\"open\r\n");
	deliver(h, drv);
	ASSERT_EQ(fake_host_reading(h, a)->quality, M2M_QUALITY_DECODE_ERROR);
	ASSERT_EQ(fake_host_count(h, b), 1);
	fake_host_advance(h, US_PER_S);
	ASSERT_STR_EQ((pty_read(&p, buf, sizeof(buf)), buf), "Q\r");
	pty_write(&p, "R;7\r\n");
	deliver(h, drv);
	ASSERT_EQ(fake_host_reading(h, a)->quality, M2M_QUALITY_GOOD);
	ASSERT_DOUBLE_EQ(fake_host_reading(h, a)->value, 7, 0);
	ser_driver_ops.destroy(drv);
	close(p.master);
	fake_host_free(h);
}

/* Requests in turn, with the turnaround an RS-485 line needs between answer and command. */
static void test_turnaround(void)
{
	m2m_host *h = fake_host_new();
	struct pty p;
	struct ser_driver *drv;
	char json[1024], buf[64];
	struct pollfd pfd;

	pty_open(&p);
	snprintf(json, sizeof(json),
	         "{\"port\":\"%s\",\"format\":\"regex\",\"max_length\":40,"
	         "\"inter_request_delay\":\"30ms\",\"requests\":["
	         "{\"name\":\"a\",\"device\":\"a\",\"command\":\"#1\\r\",\"response\":\"^1=\"},"
	         "{\"name\":\"b\",\"device\":\"b\",\"command\":\"#2\\r\",\"response\":\"^2=\"}],"
	         "\"points\":[{\"name\":\"a/v\",\"request\":\"a\",\"pattern\":\"^1=(.*)$\"},"
	         "{\"name\":\"b/v\",\"request\":\"b\",\"pattern\":\"^2=(.*)$\"}]}",
	         p.path);
	drv = create(h, fake_host_api(1), json);
	ASSERT_OK(ser_driver_ops.start(drv));
	/* Both are queued when the port opens; only the first goes out. */
	ASSERT_STR_EQ((pty_read(&p, buf, sizeof(buf)), buf), "#1\r");
	pty_write(&p, "2=9\r\n");
	deliver(h, drv);
	ASSERT_EQ(fake_host_count(h, fake_host_point(h, "b/v")), 0); /* not b's turn */
	pty_write(&p, "1=4\r\n");
	deliver(h, drv);
	ASSERT_DOUBLE_EQ(fake_host_reading(h, fake_host_point(h, "a/v"))->value, 4, 0);
	fake_host_advance(h, 29 * US_PER_MS);
	pfd = (struct pollfd){ .fd = p.master, .events = POLLIN };
	ASSERT_EQ(poll(&pfd, 1, 50), 0); /* still in the turnaround */
	fake_host_advance(h, 1 * US_PER_MS);
	ASSERT_STR_EQ((pty_read(&p, buf, sizeof(buf)), buf), "#2\r");
	pty_write(&p, "2=5\r\n");
	deliver(h, drv);
	ASSERT_DOUBLE_EQ(fake_host_reading(h, fake_host_point(h, "b/v"))->value, 5, 0);
	ASSERT_EQ(fake_host_state(h, "a")->state, M2M_DEVICE_ONLINE);
	ASSERT_EQ(fake_host_state(h, "b")->state, M2M_DEVICE_ONLINE);
	ser_driver_ops.destroy(drv);
	close(p.master);
	fake_host_free(h);
}

/* A line that takes no more output: writes fail, each exactly once, and nothing is lost track of. */
static void test_output_blocked(void)
{
	m2m_host *h = fake_host_new();
	static struct m2m_write w[400];
	struct pty p;
	struct ser_driver *drv;
	char json[2048], tpl[600];
	uint32_t sp;
	int blocked = -1;

	pty_open(&p);
	memset(tpl, 'X', 490);
	tpl[490] = 0;
	snprintf(json, sizeof(json),
	         "{\"port\":\"%s\",\"device\":\"d\",\"format\":\"regex\",\"max_length\":40,"
	         "\"points\":[{\"name\":\"sp\",\"pattern\":\"^(x)$\",\"writable\":true,"
	         "\"write\":\"%s{value}\\r\",\"ack\":\"^OK$\",\"write_timeout\":\"10ms\"},"
	         "{\"name\":\"sq\",\"pattern\":\"^(y)$\",\"writable\":true,"
	         "\"write\":\"%s{value}\\r\"}]}",
	         p.path, tpl, tpl);
	drv = create(h, fake_host_api(1), json);
	sp = fake_host_point(h, "d/sp");
	ASSERT_OK(ser_driver_ops.start(drv));
	/* Nobody reads the master: the pty fills, then the driver's own buffer. */
	for (int i = 0; i < 400 && blocked < 0; i++) {
		ASSERT_OK(ser_driver_ops.write(drv, sp, i, &w[i]));
		fake_host_advance(h, 10 * US_PER_MS);
		ASSERT_EQ(w[i].calls, 1);
		if (w[i].status == -ENOBUFS)
			blocked = i;
		else
			ASSERT_EQ(w[i].status, -ETIMEDOUT);
	}
	ASSERT_GT(blocked, 0);
	ASSERT_STR_CONTAINS(w[blocked].text, "does not take output");
	ASSERT(drv->fd >= 0); /* a full line is no lost port */
	/* Without an acknowledgement to wait for, a refused write must not hold the line. */
	memset(w, 0, sizeof(w));
	ASSERT_OK(ser_driver_ops.write(drv, fake_host_point(h, "d/sq"), 1, &w[0]));
	ASSERT_EQ(w[0].calls, 1);
	ASSERT_EQ(w[0].status, -ENOBUFS);
	ASSERT_EQ(drv->txn, SER_TXN_NONE);
	ser_driver_ops.destroy(drv);
	close(p.master);
	fake_host_free(h);
}

int main(void)
{
	test_templates();
	test_config_errors();
	test_unread_keys();
	test_poll_write_and_loss(1);
	test_poll_write_and_loss(0);
	test_nmea_frames();
	test_bad_answer();
	test_turnaround();
	test_output_blocked();
	printf("serial-driver: ok\n");
	return 0;
}
