/* SPDX-License-Identifier: MIT */
/*
 * Writes: every check a write to a device passes (known point, writable,
 * kind, limits, the driver running and able to write), the refusal with
 * its reason in words, the hand-off to the driver and the completion. Each
 * write and each refusal is one log line and one event row with the origin
 * that asked: one audit trail for m2mctl, rules and MQTT commands alike.
 * Loop thread only.
 */
#pragma once

#include <stddef.h>

struct core;
struct m2m_host;
struct m2m_write;

/* The result of a write: STATUS 0 or a negative errno, with the driver's words if any. */
typedef void (*write_cb)(int status, const char *error_text, void *arg);

/*
 * Writes VALUE (engineering units) to the point NAME: refused unless the
 * point is writable, the value within its limits (and 0/1 for a bool) and
 * its driver running. CB runs exactly once with the result, on the loop
 * thread, possibly before this returns. A refusal is returned at once
 * (negative errno, CB not called). ORIGIN says who asked ("mqtt",
 * "rule:boiler_high", "ctl:uid=1000"); every write and every refusal is an
 * event row with it.
 */
int core_write(struct core *c, const char *origin, const char *name, double value, write_cb cb,
               void *arg);

/*
 * Why core_write refused VALUE for NAME with ERR, in words ("unknown point
 * 'x/y'", "value 500 is above max 90 of 'boiler1/setpoint'"), into BUF.
 */
const char *core_write_refusal(struct core *c, const char *name, double value, int err,
                               char *buf, size_t n);

/* Completes W: counts it, logs it, records its event row and answers its caller. */
void write_finish(struct m2m_write *w);

/* Answers every write of DRV still pending with STATUS (the instance is going away). */
void write_fail_pending(struct m2m_host *drv, int status);
