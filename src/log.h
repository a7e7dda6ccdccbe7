/* SPDX-License-Identifier: MIT */
/*
 * Logging to stderr with sd-daemon priority prefixes ("<3>...") so that
 * journald keeps the level. The level threshold is the one process-wide
 * setting (like systemd's log_max_level); it is set once from main.
 */
#pragma once

#include <stdarg.h>
#include <syslog.h>

void log_set_max_level(int level);
int log_get_max_level(void);
/* Parses "err", "error", "warning", "notice", "info", "debug". */
int log_parse_level(const char *s, int *ret_level);

/* Safe to call from any thread: one write(2) per line. */
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_msgv(int level, const char *fmt, va_list ap);

#define log_error(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
