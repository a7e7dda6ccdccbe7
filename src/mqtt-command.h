/* SPDX-License-Identifier: MIT */
/*
 * MQTT command messages without a connection: which point a command topic
 * names, and which value its payload carries. Anyone allowed to publish on
 * the broker reaches these with bytes of their choosing, so they are pure
 * functions over bytes that a unit test and a fuzzer call directly
 * (fuzz/fuzz-mqtt-command.c). Any thread.
 */
#pragma once

#include <stddef.h>

#include <cJSON.h>

/*
 * Matches TOPIC against {PREFIX}/{GATEWAY}/{device}/{point}/set and copies
 * "device/point" into POINT (SIZE bytes, NUL-terminated). The name is not
 * validated here (point_name_valid() does that). Returns 0, -EINVAL when
 * TOPIC is not a command topic of this gateway, or -ENAMETOOLONG when the
 * name does not fit into POINT.
 */
int mqtt_command_topic(const char *topic, const char *prefix, const char *gateway, char *point,
                       size_t size);

/*
 * Reads a command payload of LEN bytes (not NUL-terminated): a bare number,
 * true/false, or an object with "value" (number or bool) and an optional
 * "id" (string or number). Returns NULL with *ret_value set, or an error
 * text for the reply (static). In both cases *ret_id is a copy of "id" when
 * one could be read, so that an error reply echoes it too (caller frees;
 * NULL when absent).
 */
const char *mqtt_command_parse(const char *payload, size_t len, double *ret_value, cJSON **ret_id);
