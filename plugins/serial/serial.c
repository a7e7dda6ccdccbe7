/* SPDX-License-Identifier: MIT */
/*
 * serial.c - the serial line driver: NMEA 0183 and the text protocols of
 * scales, meters and sensors, read and polled over a tty.
 *
 * One instance drives one port. The port is an fd on the loop (no thread,
 * no bus thread: a tty never blocks once it is O_NONBLOCK): its bytes go
 * through the framer (serial-framer.h), and each frame is read by the
 * configured format into the points' readings, one submit per frame.
 * Requests that poll the device and writes share the line one transaction
 * at a time (serial-poll.c); frames that are not the awaited answer are
 * still parsed, so a device that talks by itself and is polled too loses
 * nothing.
 *
 * The driver's state has one owner, the loop thread. The files are listed
 * in serial-driver.h; this one holds the entry, the ops, the life cycle and
 * the frames' way into readings.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "serial-driver.h"
#include "serial-number.h"

static const struct {
	const char *name, *help;
} stat_defs[SER_STAT_COUNT] = {
	[SER_ST_BYTES] = { "bytes", "Bytes read from the port" },
	[SER_ST_FRAMES] = { "frames", "Frames the framer cut from the byte stream" },
	[SER_ST_GARBAGE] = { "garbage_bytes", "Bytes outside any frame (line noise, a wrong baud rate)" },
	[SER_ST_OVERLONG] = { "overlong_frames", "Frames dropped for exceeding max_length" },
	[SER_ST_PARTIAL] = { "partial_frames", "Frames dropped unfinished (a pause, a reopen)" },
	[SER_ST_DROPPED] = { "dropped_bytes", "Bytes of the overlong and partial frames" },
	[SER_ST_CHECKSUM] = { "checksum_errors", "NMEA sentences with a wrong or missing checksum" },
	[SER_ST_INVALID] = { "invalid_frames", "Frames that did not read as the format" },
	[SER_ST_UNUSED] = { "unused_frames", "Frames no point took a value from" },
	[SER_ST_REGEX_LIMIT] = { "regex_limit_hits", "Matches stopped by the regex match limits" },
	[SER_ST_TIMEOUTS] = { "timeouts", "Requests and writes that got no answer in time" },
	[SER_ST_REOPENS] = { "port_losses", "Times the port went away (hang-up, EIO) and was reopened" },
};

static void declare_stats(struct ser_driver *drv)
{
	for (int i = 0; i < SER_STAT_COUNT; i++) {
		int r = m2m_stat_slot_declare(&drv->stats[i], drv->api, drv->host, stat_defs[i].name,
		                              NULL, M2M_STAT_COUNTER, stat_defs[i].help);

		if (r < 0)
			drv->api->log(drv->host, M2M_LOG_WARNING, "declaring statistic %s failed: %s",
			              stat_defs[i].name, strerror(-r));
		/* A 1.0 host's stat() exists once set: the first publish sets them all. */
		drv->published[i] = drv->stats[i].stat ? 0 : UINT64_MAX;
	}
}

void ser_publish_stats(struct ser_driver *drv)
{
	const struct sf_stats *fs = &drv->framer.stats;

	drv->counts[SER_ST_BYTES] = fs->bytes;
	drv->counts[SER_ST_FRAMES] = fs->frames;
	drv->counts[SER_ST_GARBAGE] = fs->garbage_bytes + drv->line_garbage;
	drv->counts[SER_ST_OVERLONG] = fs->overlong;
	drv->counts[SER_ST_PARTIAL] = fs->partial;
	drv->counts[SER_ST_DROPPED] = fs->dropped_bytes;
	/*
	 * Only what moved: this runs after every read, where bytes and frames
	 * change and the ten others seldom do, and each set is a call into
	 * the host.
	 */
	for (int i = 0; i < SER_STAT_COUNT; i++)
		if (drv->counts[i] != drv->published[i]) {
			drv->published[i] = drv->counts[i];
			m2m_stat_slot_set(&drv->stats[i], (double)drv->counts[i]);
		}
}

int ser_pattern_match(struct ser_pattern *pat, const uint8_t *frame, size_t len, uint64_t seq)
{
	if (pat->seq != seq || seq == 0) {
		pat->seq = seq;
		pat->matched = st_regex_match(pat->re, (const char *)frame, len, pat->groups,
		                              pat->n_groups + 1);
	}
	return pat->matched;
}

/* --- values out of a frame --- */

/* What one frame offers the points: the format's reading of it. */
struct frame {
	const uint8_t *data;
	size_t len;
	struct nmea_sentence nmea;
	bool nmea_valid;
	int n_fields;             /* delimited: fields, or < 0 */
	int64_t ts_us;
	int64_t mono_us;          /* when its last byte was fed */
	bool regex_limit;
};

static void add_reading(struct ser_driver *drv, struct ser_point *p, int64_t ts, double v,
                        int quality)
{
	drv->rd[drv->n_rd++] = (struct m2m_reading){
		.ts_us = ts, .value = v, .point = p->id, .quality = (uint16_t)quality
	};
}

/*
 * Gives P the value of field F (text), as its kind wants it. NUMBER is the
 * value when the format already read it as a number (NMEA), or NULL.
 */
static void take_field(struct ser_driver *drv, struct ser_point *p, struct st_field f,
                       const double *number, const struct frame *fr)
{
	int64_t ts = fr->ts_us;
	double v = 0;
	bool b = false;
	int r;

	switch (p->kind) {
	case SER_KIND_TEXT: {
		char text[256];

		st_text(f, text, sizeof(text));
		if (!text[0])
			return;
		drv->api->submit_text(drv->host, p->id, ts, text, M2M_QUALITY_GOOD, 0);
		p->got = true;
		p->last_us = fr->mono_us;
		p->stale = false;
		return;
	}
	case SER_KIND_BOOL:
		r = st_bool(f, p->on, p->off, &b);
		v = r == 0 && b;
		break;
	default:
		if (number) {
			v = *number;
			r = 0;
		} else {
			r = st_number(f, drv->decimal, &v);
		}
		break;
	}
	if (r == -ENODATA)
		return;
	p->got = true;
	/* "1e999" reads as infinity, which no device means: a bad value, not a reading. */
	if (r == 0 && !isfinite(v))
		r = -ERANGE;
	if (r < 0) {
		add_reading(drv, p, ts, 0, M2M_QUALITY_DECODE_ERROR);
		return;
	}
	p->last_us = fr->mono_us;
	p->stale = false;
	add_reading(drv, p, ts, v, M2M_QUALITY_GOOD);
}

static struct st_field field_of(const char *s)
{
	return (struct st_field){ s, strlen(s) };
}

static void nmea_point(struct ser_driver *drv, struct ser_point *p, struct frame *fr)
{
	const struct nmea_sentence *s = &fr->nmea;

	if (!nmea_match(s, p->sentence) || (p->valid_only && !fr->nmea_valid))
		return;
	if (p->xdr) {
		struct nmea_xdr x;
		int r = nmea_xdr(s, p->xdr, &x);

		if (r == -ENOENT || (r == 0 && !x.has_value))
			return;
		if (r < 0) {
			p->got = true;
			add_reading(drv, p, fr->ts_us, 0, M2M_QUALITY_DECODE_ERROR);
			return;
		}
		/* The config makes every XDR point a number: the name is not read. */
		take_field(drv, p, field_of(x.name), &x.value, fr);
		return;
	}
	if (p->field) {
		struct nmea_value v;
		int r = nmea_get(s, p->field, &v);

		if (r == -ENODATA || r == -ENOENT)
			return;
		if (r < 0) {
			p->got = true;
			add_reading(drv, p, fr->ts_us, 0, M2M_QUALITY_DECODE_ERROR);
			return;
		}
		take_field(drv, p, field_of(v.text), v.kind == NMEA_KIND_TEXT ? NULL : &v.number, fr);
		return;
	}
	{
		const char *raw = nmea_raw(s, (unsigned)p->index);

		if (!raw || !*raw)
			return;
		take_field(drv, p, field_of(raw), NULL, fr);
	}
}

static void text_point(struct ser_driver *drv, struct ser_point *p, struct frame *fr)
{
	struct st_field f;

	switch (drv->format) {
	case SER_REGEX: {
		int n = ser_pattern_match(p->pattern, fr->data, fr->len, drv->seq);

		if (n == -ERANGE)
			fr->regex_limit = true;
		if (n <= p->group || !p->pattern->groups[p->group].p)
			return;
		f = p->pattern->groups[p->group];
		break;
	}
	case SER_DELIMITED:
		if (fr->n_fields <= (int)p->column)
			return;
		f = drv->fields[p->column];
		break;
	default:
		if (st_column((const char *)fr->data, fr->len, p->start, p->width, true, &f) < 0)
			return;
		break;
	}
	take_field(drv, p, f, NULL, fr);
}

/* Reads the frame as the format; false when it is not one (counted). */
static bool read_frame(struct ser_driver *drv, struct frame *fr)
{
	int r;

	if (drv->format == SER_NMEA) {
		/*
		 * '$' and '!' never occur inside a sentence: a line with two holds
		 * the head of one cut off (a pause, a reopen, noise on the line
		 * eating its end) and then a whole one, which is kept.
		 */
		for (size_t i = fr->len; i-- > 0;)
			if (fr->data[i] == '$' || fr->data[i] == '!') {
				if (memchr(fr->data, '$', i) || memchr(fr->data, '!', i))
					drv->counts[SER_ST_INVALID]++;
				/* Noise before a sentence is garbage, as outside frames. */
				drv->line_garbage += i;
				fr->data += i;
				fr->len -= i;
				break;
			}
		r = nmea_parse(fr->data, fr->len, (enum nmea_checksum)drv->checksum, &fr->nmea);
		if (r == -EBADMSG || r == -ENOMSG)
			drv->counts[SER_ST_CHECKSUM]++;
		else if (r < 0)
			drv->counts[SER_ST_INVALID]++;
		if (r < 0)
			return false;
		fr->nmea_valid = nmea_valid(&fr->nmea);
		/*
		 * Only a valid sentence's time: a receiver without a fix sends
		 * its power-on default (1980, 2080, or the GPS week rolled over).
		 */
		if (drv->sentence_time && fr->nmea_valid) {
			int64_t ts;

			if (nmea_timestamp(&fr->nmea, fr->ts_us, &ts) == 0)
				fr->ts_us = ts;
		}
		return true;
	}
	if (drv->format == SER_DELIMITED) {
		fr->n_fields = st_split((const char *)fr->data, fr->len, &drv->delim, drv->split_buf,
		                        drv->fields, SER_MAX_FIELDS);
		if (fr->n_fields < 0) {
			drv->counts[SER_ST_INVALID]++;
			return false;
		}
	}
	return true;
}

static void on_frame(void *arg, const uint8_t *data, size_t len, uint64_t time_us)
{
	struct ser_driver *drv = arg;
	const struct m2m_host_api *api = drv->api;
	struct ser_request *answered = NULL;
	/* The framer's clock, read once per piece of a read, is the frame's mono time. */
	struct frame fr = { .data = data, .len = len, .mono_us = (int64_t)time_us };
	bool used = false;

	/* "\r\n" and "\r\r\n" line ends leave carriage returns behind "\n" framing. */
	while (fr.len > 0 && fr.data[fr.len - 1] == '\r')
		fr.len--;
	/* An empty line (a blank line between sentences, "\r\n\r\n") is no frame. */
	if (fr.len == 0)
		return;
	drv->seq++;
	drv->last_frame_us = fr.mono_us;
	if (drv->silent) {
		drv->silent = false;
		m2m_device_state(api, drv->host, NULL, M2M_DEVICE_ONLINE, "receiving again");
	}
	fr.ts_us = api->now_us(drv->host);
	ser_poll_frame(drv, fr.data, fr.len, &answered);
	/* Room for one reading per point. */
	if (drv->n_rd >= SER_BATCH)
		ser_flush(drv);
	for (size_t i = 0; i < drv->n_points; i++)
		drv->points[i].got = false;
	if (read_frame(drv, &fr)) {
		for (size_t i = 0; i < drv->n_points; i++) {
			struct ser_point *p = &drv->points[i];

			if (p->request && p->request != answered)
				continue;
			if (drv->format == SER_NMEA)
				nmea_point(drv, p, &fr);
			else
				text_point(drv, p, &fr);
			used |= p->got;
		}
		if (fr.regex_limit)
			drv->counts[SER_ST_REGEX_LIMIT]++;
		if (!used && !answered)
			drv->counts[SER_ST_UNUSED]++;
	}
	/* An answer without the values its points expect is a bad answer. */
	if (answered) {
		for (size_t i = 0; i < drv->n_points; i++) {
			struct ser_point *p = &drv->points[i];

			if (p->request == answered && !p->got) {
				if (p->kind == SER_KIND_TEXT)
					api->submit_text(drv->host, p->id, fr.ts_us, "",
					                 M2M_QUALITY_DECODE_ERROR, 0);
				else
					add_reading(drv, p, fr.ts_us, 0, M2M_QUALITY_DECODE_ERROR);
			}
		}
	}
}

void ser_flush(struct ser_driver *drv)
{
	if (drv->n_rd)
		drv->api->submit(drv->host, drv->rd, drv->n_rd);
	drv->n_rd = 0;
}

static void idle_cb(m2m_timer *timer, void *arg);

static void arm_idle(struct ser_driver *drv)
{
	uint64_t due = sf_deadline(&drv->framer), now;

	if (!due)
		return;
	now = (uint64_t)drv->api->mono_us(drv->host);
	m2m_timer_rearm(drv->api, drv->host, &drv->idle_timer,
	                due > now ? (due - now + US_PER_MS - 1) / US_PER_MS : 0, 0, idle_cb, drv);
}

static void idle_cb(m2m_timer *timer, void *arg)
{
	struct ser_driver *drv = arg;

	(void)timer;
	sf_idle(&drv->framer, (uint64_t)drv->api->mono_us(drv->host), on_frame, drv);
	ser_flush(drv);
	arm_idle(drv);
	ser_publish_stats(drv);
}

/* Frames what a read brought at MONO; their readings wait for ser_flush(). */
void ser_feed(struct ser_driver *drv, const uint8_t *data, size_t n, int64_t mono)
{
	sf_feed(&drv->framer, data, n, (uint64_t)mono, on_frame, drv);
	if (drv->fcfg.idle_us)
		arm_idle(drv);
}

void ser_on_bytes(struct ser_driver *drv, const uint8_t *data, size_t n)
{
	ser_feed(drv, data, n, drv->api->mono_us(drv->host));
	ser_flush(drv);
}

void ser_submit_all(struct ser_driver *drv, int quality)
{
	const struct m2m_host_api *api = drv->api;
	int64_t ts = api->now_us(drv->host);

	/* What came before the loss first, then the loss. */
	ser_flush(drv);
	for (size_t i = 0; i < drv->n_points; i++) {
		struct ser_point *p = &drv->points[i];

		if (p->kind == SER_KIND_TEXT)
			api->submit_text(drv->host, p->id, ts, "", (uint16_t)quality, 0);
		else
			add_reading(drv, p, ts, 0, quality);
	}
	ser_flush(drv);
}

/* --- staleness --- */

static void stale_cb(m2m_timer *timer, void *arg)
{
	struct ser_driver *drv = arg;
	const struct m2m_host_api *api = drv->api;
	int64_t now = api->mono_us(drv->host), ts = api->now_us(drv->host);

	(void)timer;
	if (drv->fd < 0)
		return;
	ser_flush(drv);
	for (size_t i = 0; i < drv->n_points; i++) {
		struct ser_point *p = &drv->points[i];
		int64_t since = p->last_us ? p->last_us : drv->start_us;

		if (p->stale || now - since < drv->stale_us)
			continue;
		p->stale = true;
		if (p->kind == SER_KIND_TEXT)
			api->submit_text(drv->host, p->id, ts, "", M2M_QUALITY_STALE, 0);
		else
			add_reading(drv, p, ts, 0, M2M_QUALITY_STALE);
	}
	ser_flush(drv);
	if (!drv->silent && now - drv->last_frame_us >= drv->stale_us) {
		char reason[96], d[32];

		drv->silent = true;
		snprintf(reason, sizeof(reason), "silent: no frame for %s",
		         m2m_format_us(drv->stale_us, d, sizeof(d)));
		m2m_device_state(api, drv->host, NULL, M2M_DEVICE_OFFLINE, reason);
	}
}

/* --- the port's state --- */

void ser_port_up(struct ser_driver *drv)
{
	const struct m2m_host_api *api = drv->api;
	int64_t now = api->mono_us(drv->host);
	char real[PATH_MAX];

	/* Which tty a /dev/serial/by-id name stands for this time, for whoever reads the log. */
	if (!realpath(drv->port, real) || strcmp(real, drv->port) == 0)
		real[0] = 0;
	api->log(drv->host, drv->open_error[0] ? M2M_LOG_NOTICE : M2M_LOG_INFO,
	         "reading \"%s\"%s%s%s at %d baud (%zu points, %zu requests)", drv->port,
	         real[0] ? " (" : "", real, real[0] ? ")" : "", drv->baud, drv->n_points,
	         drv->n_requests);
	drv->open_error[0] = 0;
	drv->online = true;
	drv->silent = false;
	drv->down_reported = false;
	drv->last_frame_us = now;
	drv->start_us = now;
	for (size_t i = 0; i < drv->n_points; i++) {
		drv->points[i].last_us = 0;
		drv->points[i].stale = false;
	}
	/* A half frame from before the loss is no frame. */
	sf_reset(&drv->framer);
	m2m_device_state(api, drv->host, NULL, M2M_DEVICE_ONLINE, "port open");
	/* The first poll at once, then every interval. */
	ser_poll_all(drv);
}

void ser_port_down(struct ser_driver *drv, const char *reason)
{
	const struct m2m_host_api *api = drv->api;

	drv->online = false;
	ser_poll_abort(drv, -ENOTCONN, reason);
	/*
	 * A port that stays away is logged and reported once, not at every
	 * retry (a 1.0 host makes an event of every device_state call).
	 */
	if (strncmp(drv->open_error, reason, sizeof(drv->open_error) - 1) != 0) {
		api->log(drv->host, M2M_LOG_ERR, "%s", reason);
		snprintf(drv->open_error, sizeof(drv->open_error), "%s", reason);
		m2m_device_state(api, drv->host, NULL, M2M_DEVICE_OFFLINE, reason);
	}
	if (!drv->down_reported) {
		drv->down_reported = true;
		ser_submit_all(drv, M2M_QUALITY_COMM_ERROR);
	}
	ser_publish_stats(drv);
}

/* --- ops --- */

static void ser_stop(void *driver);

static int ser_start(void *driver)
{
	struct ser_driver *drv = driver;
	const struct m2m_host_api *api;
	int r;

	if (!drv)
		return -EINVAL;
	if (drv->running)
		return 0;
	api = drv->api;
	drv->running = true;
	drv->backoff_us = 0;
	declare_stats(drv);
	for (size_t i = 0; i < drv->n_requests; i++) {
		struct ser_request *rq = &drv->requests[i];

		rq->queued = false;
		rq->failing = false;
		rq->answered = false;
		r = api->timer_start(drv->host, (uint64_t)(rq->interval_us / US_PER_MS),
		                     (uint64_t)(rq->interval_us / US_PER_MS), ser_poll_tick, rq,
		                     &rq->timer);
		if (r < 0) {
			rq->timer = NULL;
			ser_stop(drv);
			return r;
		}
	}
	if (drv->stale_us) {
		uint64_t ms = (uint64_t)(drv->stale_us / 4 / US_PER_MS);

		r = api->timer_start(drv->host, ms ? ms : 1, ms ? ms : 1, stale_cb, drv,
		                     &drv->stale_timer);
		if (r < 0) {
			drv->stale_timer = NULL;
			ser_stop(drv);
			return r;
		}
	}
	/* A port that is not there yet is no failure of the instance: it is retried. */
	ser_port_try_open(drv);
	return 0;
}

static void ser_stop(void *driver)
{
	struct ser_driver *drv = driver;
	const struct m2m_host_api *api;

	if (!drv || !drv->running)
		return;
	api = drv->api;
	drv->running = false;
	ser_poll_abort(drv, -ECANCELED, "the driver stopped");
	for (size_t i = 0; i < drv->n_requests; i++) {
		api->timer_stop(drv->requests[i].timer);
		drv->requests[i].timer = NULL;
	}
	api->timer_stop(drv->stale_timer);
	api->timer_stop(drv->idle_timer);
	api->timer_stop(drv->reopen_timer);
	api->timer_stop(drv->txn_timer);
	drv->stale_timer = drv->idle_timer = drv->reopen_timer = drv->txn_timer = NULL;
	ser_port_close(drv);
}

static void pattern_free(struct ser_pattern *pat)
{
	free(pat->text);
	st_regex_free(pat->re);
	free(pat->groups);
}

void ser_free(struct ser_driver *drv)
{
	if (!drv)
		return;
	ser_stop(drv);
	for (size_t i = 0; i < drv->n_points; i++) {
		struct ser_point *p = &drv->points[i];

		free(p->name);
		free(p->sentence);
		free(p->field);
		free(p->xdr);
		free(p->on);
		free(p->off);
		free(p->tpl);
	}
	for (size_t i = 0; i < drv->n_requests; i++) {
		free(drv->requests[i].name);
		free(drv->requests[i].device);
		free(drv->requests[i].cmd_text);
	}
	for (size_t i = 0; i < drv->n_patterns; i++)
		pattern_free(&drv->patterns[i]);
	free(drv->patterns);
	free(drv->points);
	free(drv->requests);
	free(drv->rq_queue);
	free(drv->rd);
	free(drv->split_buf);
	free(drv->fields);
	sf_free(&drv->framer);
	free(drv->device);
	free(drv->port);
	free(drv);
}

static void ser_destroy(void *driver)
{
	ser_free(driver);
}

const struct m2m_driver_ops ser_driver_ops = {
	.struct_size = sizeof(struct m2m_driver_ops),
	.create = ser_create,
	.start = ser_start,
	.stop = ser_stop,
	.destroy = ser_destroy,
	.write = ser_write,
};

static const struct m2m_plugin ser_plugin = {
	.struct_size = sizeof(struct m2m_plugin),
	.abi_major = M2M_ABI_MAJOR,
	/*
	 * ABI 1.1's HUP event is what tells an unplugged port; on a 1.0 host
	 * the same hang-up arrives as READ and read() returns EIO, so the kit's
	 * fallbacks suffice and 1.0 is the lowest minor this plugin needs.
	 */
	.abi_minor = 0,
	.name = "serial",
	.version = SER_VERSION,
	.description = "Serial lines: NMEA 0183 and text protocols (regex, delimited, fixed), "
	               "polled and written",
	.ops = &ser_driver_ops,
};

M2M_PLUGIN_ENTRY
{
	(void)host_abi_minor;
	if (host_abi_major != M2M_ABI_MAJOR)
		return NULL;
	return &ser_plugin;
}
