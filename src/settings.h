/* SPDX-License-Identifier: MIT */
/*
 * The core's own sections of the configuration: [gateway], [storage] and
 * the list of [drivers] (not the driver sections' contents, which belong
 * to the plugins), and the reference-counted loaded configuration that
 * driver instances share. Modules parse their own sections (module.h).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

#include "config.h"
#include "store.h"

/* A loaded configuration, shared by the driver instances created from it. */
struct config_ref {
	config *c;
	unsigned refs;
};

struct driver_conf {
	char *name;                /* the key under [drivers] */
	char *plugin;
	const cJSON *section;      /* inside the config_ref's tree */
	const char *plugin_dir;    /* the settings' plugin_dir */
	int64_t restart_min_us;    /* backoff after a failed start */
	int64_t restart_max_us;
};

/* The core settings parsed from [gateway] and [storage]. */
struct settings {
	char *gateway_id;
	char *plugin_dir;
	int log_level;             /* -1: not set in the file */
	int64_t stats_interval_us; /* 0: no periodic stats line */
	struct store_opts store;
	char *store_path;          /* owns store.path */
	struct driver_conf *drivers;
	size_t n_drivers;
};

/*
 * Parses [gateway], [storage] and [drivers] of C into S (not the driver
 * sections' contents, which belong to the plugins). Returns 0 or -EINVAL
 * with the error recorded in C.
 */
int settings_parse(config *c, const char *config_path, struct settings *s);
void settings_done(struct settings *s);

struct config_ref *config_ref_new(config *c);
struct config_ref *config_ref_get(struct config_ref *r);
void config_ref_put(struct config_ref *r);

