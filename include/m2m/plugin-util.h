/* SPDX-License-Identifier: MIT */
/*
 * m2m/plugin-util.h - the plugin kit: helpers beside the driver ABI.
 *
 * Everything here is static inline over the host table of m2m/plugin.h, so
 * it adds no symbol, no ABI and nothing a host must implement: a plugin that
 * uses it runs on every host of its ABI major, as SPA's inline wrappers do
 * for PipeWire. Two kinds of helper:
 *
 *  - What every driver would otherwise write again: config getters with a
 *    range and the usual C types, string copies, durations for messages.
 *  - Wrappers for the ABI 1.1 calls that fall back on a 1.0 host (or on a
 *    host that leaves a field NULL): device_state becomes an "online" or
 *    "offline" event, a declared statistic becomes the 1.0 stat() named
 *    "name.device", timer_update becomes a stop and a new start.
 *
 * The config helpers are for create() only, like the getters they wrap;
 * they return 0 or the getter's negative errno (the host has then recorded
 * the error), never the getters' 1/0 for present/absent. The rest run on
 * the loop thread. C99 and C++ compatible, like m2m/plugin.h.
 */
#ifndef M2M_PLUGIN_UTIL_H
#define M2M_PLUGIN_UTIL_H

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "m2m/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

#define M2M_US_PER_MS INT64_C(1000)
#define M2M_US_PER_S INT64_C(1000000)

/* True when API offers FIELD (added after ABI 1.0) and the host filled it in. */
#define M2M_HOST_HAS(api, field) \
	(M2M_HAS_FIELD(struct m2m_host_api, (api)->struct_size, field) && (api)->field != NULL)

/*
 * Records a config error about ITEM and yields -EINVAL (what cfg_error
 * returns), for "return M2M_CFG_ERROR(drv, item, "expected ...", ...)".
 * DRV is the driver's own struct, with the members host and api that every
 * driver keeps from create().
 */
#define M2M_CFG_ERROR(drv, item, ...) \
	((drv)->api->cfg_error((drv)->host, (item), __VA_ARGS__))

/* --- strings and durations --- */

/* A copy of S in malloc'd memory (strdup is not C99), or NULL when out of memory. */
static inline char *m2m_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *copy = (char *)malloc(n);

	if (copy)
		memcpy(copy, s, n);
	return copy;
}

/*
 * Formats a duration in µs for a message, in the largest unit that is
 * exact: "250ms", "5s", "24h", "1500us". The format of config durations,
 * so that a message quotes back what the user can write. Returns BUF.
 */
static inline const char *m2m_format_us(int64_t us, char *buf, size_t size)
{
	if (us % (3600 * M2M_US_PER_S) == 0 && us > 0)
		snprintf(buf, size, "%" PRId64 "h", us / (3600 * M2M_US_PER_S));
	else if (us % M2M_US_PER_S == 0 && us > 0)
		snprintf(buf, size, "%" PRId64 "s", us / M2M_US_PER_S);
	else if (us % M2M_US_PER_MS == 0)
		snprintf(buf, size, "%" PRId64 "ms", us / M2M_US_PER_MS);
	else
		snprintf(buf, size, "%" PRId64 "us", us);
	return buf;
}

/* --- configuration (only during create) --- */

/*
 * The item of KEY in OBJ, for an error's location, or OBJ when the key is
 * absent. Marks KEY as known, which is right once the driver has read it.
 */
static inline const struct cJSON *m2m_cfg_key_item(const struct m2m_host_api *api,
                                                   m2m_host *host, const struct cJSON *obj,
                                                   const char *key)
{
	const struct cJSON *item = api->cfg_item(host, obj, key);

	return item ? item : obj;
}

/* An integer key from MIN to MAX into an int (MIN and MAX must fit one). */
static inline int m2m_cfg_int_range(const struct m2m_host_api *api, m2m_host *host,
                                    const struct cJSON *obj, const char *key, int64_t def,
                                    int64_t min, int64_t max, int *ret)
{
	int64_t v;
	int r = api->cfg_int(host, obj, key, def, min, max, &v);

	if (r < 0)
		return r;
	*ret = (int)v;
	return 0;
}

/* An integer key from MIN to MAX into an unsigned. */
static inline int m2m_cfg_uint(const struct m2m_host_api *api, m2m_host *host,
                               const struct cJSON *obj, const char *key, unsigned def,
                               unsigned min, unsigned max, unsigned *ret)
{
	int64_t v;
	int r = api->cfg_int(host, obj, key, def, min, max, &v);

	if (r < 0)
		return r;
	*ret = (unsigned)v;
	return 0;
}

/* A number key into a double. */
static inline int m2m_cfg_number(const struct m2m_host_api *api, m2m_host *host,
                                 const struct cJSON *obj, const char *key, double def,
                                 double *ret)
{
	int r = api->cfg_double(host, obj, key, def, ret);

	return r < 0 ? r : 0;
}

/* A boolean key into a bool. */
static inline int m2m_cfg_flag(const struct m2m_host_api *api, m2m_host *host,
                               const struct cJSON *obj, const char *key, bool def, bool *ret)
{
	int v, r = api->cfg_bool(host, obj, key, def, &v);

	if (r < 0)
		return r;
	*ret = v != 0;
	return 0;
}

/*
 * A duration key from MIN_US to MAX_US, in µs. Out of range is an error
 * that names the range in the units a user writes ("from 1ms to 60s").
 */
static inline int m2m_cfg_duration_range(const struct m2m_host_api *api, m2m_host *host,
                                         const struct cJSON *obj, const char *key,
                                         int64_t def_us, int64_t min_us, int64_t max_us,
                                         int64_t *ret_us)
{
	char lo[32], hi[32];
	int64_t v;
	int r = api->cfg_duration(host, obj, key, def_us, &v);

	if (r < 0)
		return r;
	if (v < min_us || v > max_us)
		return api->cfg_error(host, m2m_cfg_key_item(api, host, obj, key),
		                      "expected a duration from %s to %s",
		                      m2m_format_us(min_us, lo, sizeof(lo)),
		                      m2m_format_us(max_us, hi, sizeof(hi)));
	*ret_us = v;
	return 0;
}

/*
 * A required, non-empty string key, copied into *RET (the caller frees it).
 * WHAT says what the key is, for the error when it is missing.
 */
static inline int m2m_cfg_strdup(const struct m2m_host_api *api, m2m_host *host,
                                 const struct cJSON *obj, const char *key, const char *what,
                                 char **ret)
{
	const char *s = NULL;
	int r = api->cfg_string(host, obj, key, NULL, &s);

	if (r < 0)
		return r;
	if (r == 0 || !s || !*s)
		return api->cfg_error(host, obj, "missing key '%s' (%s)", key, what);
	*ret = m2m_strdup(s);
	return *ret ? 0 : -ENOMEM;
}

/* --- ABI 1.1 calls that fall back on a 1.0 host --- */

/*
 * Says that DEVICE is online or offline (enum m2m_device_state) with a
 * REASON. A 1.0 host gets an event of kind "online" or "offline" with the
 * reason as its text, which is what drivers sent before ABI 1.1.
 */
static inline void m2m_device_state(const struct m2m_host_api *api, m2m_host *host,
                                    const char *device, int state, const char *reason)
{
	if (M2M_HOST_HAS(api, device_state))
		api->device_state(host, device, state, reason);
	else
		api->event(host, device, state == M2M_DEVICE_ONLINE ? "online" : "offline", reason);
}

/*
 * Rearms *TIMER: first after TIMEOUT_MS, then every REPEAT_MS. A 1.0 host
 * has no timer_update, so the timer is stopped and started again with CB
 * and ARG, which changes *TIMER (NULL when that start failed).
 */
static inline int m2m_timer_rearm(const struct m2m_host_api *api, m2m_host *host,
                                  m2m_timer **timer, uint64_t timeout_ms, uint64_t repeat_ms,
                                  m2m_timer_cb cb, void *arg)
{
	int r;

	if (*timer && M2M_HOST_HAS(api, timer_update))
		return api->timer_update(*timer, timeout_ms, repeat_ms);
	api->timer_stop(*timer);
	*timer = NULL;
	r = api->timer_start(host, timeout_ms, repeat_ms, cb, arg, timer);
	if (r < 0)
		*timer = NULL;
	return r;
}

/*
 * A statistic as the driver keeps it: the ABI 1.1 handle, or, on a 1.0
 * host, the "name.device" string of the 1.0 stat(). Zeroed memory is a slot
 * that was never declared; setting it does nothing.
 */
struct m2m_stat_slot {
	const struct m2m_host_api *api;
	m2m_host *host;
	m2m_stat *stat;  /* NULL on a 1.0 host */
	/* api NULL: the host refused the declaration; setting it does nothing. */
	char name[64];   /* "name.device" (or "name"), for the 1.0 stat() */
};

/*
 * Declares the statistic NAME of KIND (enum m2m_stat_kind) for DEVICE (NULL:
 * the whole instance) with a one-line HELP into SLOT. When the host has no
 * stat_declare, SLOT falls back to the 1.0 stat("name.device"), an
 * unlabelled gauge. When the host refuses the declaration, its error is
 * returned for the driver to log, and setting the slot does nothing. The
 * slot is usable either way. Only during create or start, like
 * stat_declare.
 */
static inline int m2m_stat_slot_declare(struct m2m_stat_slot *slot,
                                        const struct m2m_host_api *api, m2m_host *host,
                                        const char *name, const char *device, int kind,
                                        const char *help)
{
	int r = 0;

	slot->api = api;
	slot->host = host;
	slot->stat = NULL;
	if (device)
		snprintf(slot->name, sizeof(slot->name), "%s.%s", name, device);
	else
		snprintf(slot->name, sizeof(slot->name), "%s", name);
	if (M2M_HOST_HAS(api, stat_declare) && M2M_HOST_HAS(api, stat_set)) {
		r = api->stat_declare(host, name, device, kind, help, &slot->stat);
		if (r < 0) {
			/*
			 * A 1.1 host refused it: setting it through stat() would
			 * only be refused again, after a search of every name.
			 */
			slot->stat = NULL;
			slot->api = NULL;
		}
	}
	return r < 0 ? r : 0;
}

/* Sets the value of the statistic in SLOT. */
static inline void m2m_stat_slot_set(const struct m2m_stat_slot *slot, double value)
{
	if (!slot->api)
		return;
	if (slot->stat)
		slot->api->stat_set(slot->stat, value);
	else
		slot->api->stat(slot->host, slot->name, value);
}

#ifdef __cplusplus
}
#endif

#endif /* M2M_PLUGIN_UTIL_H */
