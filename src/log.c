/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "util.h"

/* The one process-wide logging setting; written once from main. */
static atomic_int log_max_level = LOG_INFO;

void log_set_max_level(int level) {
	atomic_store(&log_max_level, level);
}

int log_get_max_level(void) {
	return atomic_load(&log_max_level);
}

int log_parse_level(const char *s, int *ret_level) {
	static const struct {
		const char *name;
		int level;
	} names[] = {
		{ "err", LOG_ERR },         { "error", LOG_ERR },
		{ "warning", LOG_WARNING }, { "warn", LOG_WARNING },
		{ "notice", LOG_NOTICE },   { "info", LOG_INFO },
		{ "debug", LOG_DEBUG },
	};
	for (size_t i = 0; i < ELEMENTSOF(names); i++)
		if (strcasecmp(s, names[i].name) == 0) {
			*ret_level = names[i].level;
			return 0;
		}
	return -EINVAL;
}

void log_msgv(int level, const char *fmt, va_list ap) {
	char buf[2048];
	int n, m;

	if (level > atomic_load(&log_max_level))
		return;
	n = snprintf(buf, sizeof(buf), "<%d>", level);
	m = vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
	if (m < 0)
		return;
	n += m;
	if ((size_t)n > sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	/* One line per message: a newline inside would split it in the journal. */
	for (int i = 0; i < n; i++)
		if (buf[i] == '\n')
			buf[i] = ' ';
	buf[n++] = '\n';
	/* One write(2) per line keeps lines from several threads whole. */
	(void)!write(STDERR_FILENO, buf, (size_t)n);
}

void log_msg(int level, const char *fmt, ...) {
	va_list ap;

	va_start(ap, fmt);
	log_msgv(level, fmt, ap);
	va_end(ap);
}
