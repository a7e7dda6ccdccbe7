/* SPDX-License-Identifier: MIT */
/*
 * Ingest: the one path every reading of every driver takes, numbers and
 * text alike. It checks the id (declared by this instance, of the right
 * kind), normalizes (point.c), applies the deadband, hands what passes to
 * storage in one batch per submit, with the durable MQTT messages of those
 * readings staged under the same lock (store_stage_begin, store.h), and
 * passes every reading to the sinks of the running modules (sink.h). Loop
 * thread only.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "m2m/plugin.h"

struct m2m_host;

/*
 * Submits N readings of the instance DRV. Returns N, -EINVAL when any id
 * was not one of DRV's numeric points (the others are taken), -ESHUTDOWN
 * when DRV is not running. The submit queue calls it in chunks
 * (submit-queue.h).
 */
int ingest_submit(struct m2m_host *drv, const struct m2m_reading *r, size_t n);

/* Submits the text of the string point ID of DRV (at most 255 bytes are kept). Returns 1. */
int ingest_text(struct m2m_host *drv, uint32_t id, int64_t ts_us, const char *text,
                uint16_t quality, uint16_t detail);
