/* SPDX-License-Identifier: MIT */
/*
 * Bus threads: one worker thread per bus (a TCP connection or a serial
 * line) for libraries that block. Work items run one at a time in order,
 * urgent ones first; their completions run on the loop thread through a
 * uv_async. This is the m2m_bus of the plugin ABI.
 */
#pragma once

#include <stddef.h>
#include <uv.h>

#include "m2m/plugin.h"

/*
 * Creates a bus named NAME and starts its thread. ON_CLOSED(arg) runs on
 * the loop thread once the bus has been closed and freed.
 */
int bus_new(uv_loop_t *loop, const char *name, m2m_bus **ret);
const char *bus_name(const m2m_bus *bus);

/* Queues WORK; DONE runs on the loop thread. Loop thread. */
int bus_submit(m2m_bus *bus, int flags, m2m_bus_work_fn work, m2m_bus_done_fn done, void *arg);
size_t bus_pending(m2m_bus *bus);

/*
 * Closes the bus: work not yet started is cancelled (its done gets
 * -ECANCELED), the item running now finishes, then the thread exits, every
 * done callback has run and ON_CLOSED(ARG) is called on the loop thread.
 * Never blocks the loop on the running item.
 */
void bus_close(m2m_bus *bus, void (*on_closed)(void *arg), void *arg);
