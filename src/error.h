/* SPDX-License-Identifier: MIT */
/*
 * Error codes: 0 or a count on success, a negative errno value on failure,
 * everywhere. A few conditions that errno has no word for get codes of
 * their own below -4000, all listed in one table (error.c) that also makes
 * m2m_strerror(). Codes of SQLite, libuv and the protocol libraries are
 * translated in exactly one place each.
 */
#pragma once

#define M2M_ERRNO_MAP(XX)                                                     \
	XX(EABI, -4001, "plugin ABI version mismatch")                          \
	XX(ECONFIG, -4002, "invalid configuration")                             \
	XX(ECORRUPT, -4003, "database is corrupt")                              \
	XX(EUNSAFE, -4004, "file or directory is writable by group or others") \
	XX(ENOTWRITABLE, -4005, "point is not writable")                        \
	XX(ELIMIT, -4006, "value outside the point's limits")                   \
	XX(EDRIVERDOWN, -4007, "driver is not running")

enum {
#define XX(name, code, text) M2M_##name = code,
	M2M_ERRNO_MAP(XX)
#undef XX
};

/* Text for a negative error code (errno or M2M_E*). Never NULL. */
const char *m2m_strerror(int err);

/* Exit status for a configuration error (sysexits EX_CONFIG). */
#define EXIT_CONFIG 78
