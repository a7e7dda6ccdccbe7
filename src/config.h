/* SPDX-License-Identifier: MIT */
/*
 * Configuration: TOML files read into one cJSON tree, with a source map so
 * that every error names file, line, key path and what was expected, and
 * with tracking of which keys were read so that unknown keys are errors.
 *
 * A config is built and read on one thread (the loop thread, or main before
 * the loop runs); it is not shared between threads.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <cJSON.h>

typedef struct config config;

/*
 * Loads PATH and then every *.toml file of the conf.d directory next to
 * PATH (or of CONFD_DIR when not NULL) in name order, merged: tables merge
 * key by key, any other value in a later file replaces the earlier one.
 * On failure returns a negative errno and, in *ret_error (malloc'd, caller
 * frees), one line such as "/etc/m2md/m2md.toml:12:5: expected '=' after
 * key".
 */
int config_load(const char *path, const char *confd_dir, config **ret, char **ret_error);

/* Parses TOML text (for tests and for m2mctl); NAME is used in messages. */
int config_load_string(const char *text, const char *name, config **ret, char **ret_error);

void config_free(config *c);

const cJSON *config_root(const config *c);

/*
 * Where ITEM came from: "file:line" (or "file" when the line is unknown)
 * and its key path ("drivers.plc1.points[3].type"). Never NULL; "" when
 * the item is not from this config.
 */
const char *config_file_line(const config *c, const cJSON *item, char *buf, size_t n);
const char *config_path(const config *c, const cJSON *item, char *buf, size_t n);

/*
 * Records an error about ITEM: "file:line: path: message". Only the first
 * error is kept (it is the one the user fixes first). Returns -EINVAL.
 */
int config_error(config *c, const cJSON *item, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The first recorded error, or NULL. */
const char *config_last_error(const config *c);

/*
 * Typed getters. Each looks up KEY in the table OBJ and marks KEY as known
 * in OBJ. Return 1 when present and valid (*ret set), 0 when absent
 * (*ret = def), -EINVAL after config_error() on a wrong type or value.
 * OBJ may be NULL (absent section): then they return 0.
 */
int config_string(config *c, const cJSON *obj, const char *key, const char *def,
                  const char **ret);
int config_int(config *c, const cJSON *obj, const char *key, int64_t def, int64_t min,
               int64_t max, int64_t *ret);
/* Accepts TOML integers and floats. */
int config_double(config *c, const cJSON *obj, const char *key, double def, double *ret);
int config_bool(config *c, const cJSON *obj, const char *key, bool def, bool *ret);
int config_duration(config *c, const cJSON *obj, const char *key, int64_t def_us,
                    int64_t *ret_us);
int config_size(config *c, const cJSON *obj, const char *key, uint64_t def, uint64_t *ret);
int config_enum(config *c, const cJSON *obj, const char *key, const char *const *names,
                int def, int *ret);
/*
 * Returns KEY's item of type TYPE (cJSON_Object or cJSON_Array), marking it
 * known; NULL when absent. When present with another type, records an error
 * and sets *ret_err = -EINVAL (ret_err may be NULL).
 */
const cJSON *config_item(config *c, const cJSON *obj, const char *key, int type, int *ret_err);

/* Marks KEY in OBJ as known without reading it. */
void config_mark(config *c, const cJSON *obj, const char *key);

/*
 * Checks OBJ and everything below it: the first key that no getter asked
 * for is an error "unknown key 'x'" (with a hint when a known key is close).
 * Returns 0 or -EINVAL.
 */
int config_check_unknown(config *c, const cJSON *obj);

/*
 * Drops what only config_check_unknown() needs, the keys every getter
 * asked for, once that check passed and the configuration is going to run
 * (about 180 bytes a point). The getters still work, and record nothing;
 * config_check_unknown() is an error from then on.
 */
void config_settle(config *c);
