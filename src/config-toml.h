/* SPDX-License-Identifier: MIT */
/*
 * The boundary between config.c and config-toml.cc, the project's one C++
 * translation unit. Only C types cross it, and no C++ exception does: the
 * C++ side catches everything and returns a negative errno.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The TOML type of a value. cJSON alone cannot tell an integer from a float
 * (1 from 1.0), nor a datetime from a string, and messages must say which
 * one the user wrote.
 */
enum config_toml_type {
	CONFIG_TOML_TABLE,
	CONFIG_TOML_ARRAY,
	CONFIG_TOML_STRING,
	CONFIG_TOML_INTEGER,
	CONFIG_TOML_FLOAT,
	CONFIG_TOML_BOOLEAN,
	CONFIG_TOML_DATE,
	CONFIG_TOML_TIME,
	CONFIG_TOML_DATETIME,
};

/*
 * Called once for every cJSON item the conversion creates, parents before
 * their children. LINE is 1-based, 0 when unknown (the root table). IVAL is
 * the exact integer for CONFIG_TOML_INTEGER (cJSON keeps only a double).
 * PATH is the key path ("drivers.plc1.points[3].type", "" for the root) and
 * is only valid during the call. Returns 0 or a negative errno, which
 * aborts the conversion.
 */
typedef int (*config_toml_record_fn)(void *userdata, const cJSON *item, uint32_t line,
                                     enum config_toml_type type, int64_t ival,
                                     const char *path);

/*
 * Parses LEN bytes of TOML TEXT; NAME is the file name used in messages.
 * On success returns 0 and the document as a cJSON object in *ret_root
 * (caller frees with cJSON_Delete). On failure returns a negative errno
 * and, in *ret_error, one malloc'd line such as "NAME:3:7: expected '='"
 * or NULL when even that could not be allocated.
 */
int config_toml_parse(const char *text, size_t len, const char *name,
                      config_toml_record_fn record, void *userdata, cJSON **ret_root,
                      char **ret_error);

#ifdef __cplusplus
}
#endif
