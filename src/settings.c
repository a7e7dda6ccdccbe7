/* SPDX-License-Identifier: MIT */
#include "settings.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "m2m-build.h"
#include "plugin-loader.h"
#include "util.h"

/* --- config references --- */

struct config_ref *config_ref_new(config *c) {
	struct config_ref *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->c = c;
	r->refs = 1;
	return r;
}

struct config_ref *config_ref_get(struct config_ref *r) {
	if (r)
		r->refs++;
	return r;
}

void config_ref_put(struct config_ref *r) {
	if (!r || --r->refs > 0)
		return;
	config_free(r->c);
	free(r);
}

/* --- settings --- */

/* Gateway ids and driver names: letters, digits, '_', '-' and '.'. */
static bool id_valid(const char *s, size_t max) {
	return name_valid(s, max, NAME_ALNUM, "_-.");
}

void settings_done(struct settings *s) {
	if (!s)
		return;
	for (size_t i = 0; i < s->n_drivers; i++) {
		free(s->drivers[i].name);
		free(s->drivers[i].plugin);
	}
	free(s->drivers);
	free(s->gateway_id);
	free(s->plugin_dir);
	free(s->store_path);
	memset(s, 0, sizeof(*s));
}

/*
 * The plugin directory when the config names none: the installed one, or
 * the build's plugins/ when this is the binary of the build tree itself
 * (its /proc/self/exe lies in the build's src/), so that a first run from a
 * clone works as the README shows. The trusted-directory checks apply to
 * either when the plugins load.
 */
static const char *default_plugin_dir(void) {
	char exe[PATH_MAX], src[PATH_MAX], *slash;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n <= 0)
		return M2M_PLUGIN_DIR;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (!slash)
		return M2M_PLUGIN_DIR;
	*slash = '\0';
	if (!realpath(M2M_BUILD_SRC_DIR, src) || strcmp(exe, src) != 0 ||
	    access(M2M_BUILD_PLUGIN_DIR, F_OK) < 0)
		return M2M_PLUGIN_DIR;
	return M2M_BUILD_PLUGIN_DIR;
}

int settings_parse(config *c, const char *config_path, struct settings *s) {
	static const char *const levels[] = { "error", "warning", "notice", "info", "debug", NULL };
	static const char *const syncs[] = { "normal", "full", NULL };
	static const char *const corrupt[] = { "quarantine", "fail", NULL };
	const cJSON *root = config_root(c), *gw, *st, *drivers, *item;
	const char *id, *dir, *path;
	char host[HOST_NAME_MAX + 1];
	int64_t v;
	uint64_t size;
	int err = 0, level;

	memset(s, 0, sizeof(*s));
	store_opts_default(&s->store);
	s->log_level = -1;

	if (!cJSON_IsObject(root))
		return config_error(c, root, "expected a table at the top level");
	gw = config_item(c, root, "gateway", cJSON_Object, &err);
	if (err < 0)
		return err;
	st = config_item(c, root, "storage", cJSON_Object, &err);
	if (err < 0)
		return err;
	drivers = config_item(c, root, "drivers", cJSON_Object, &err);
	if (err < 0)
		return err;

	if (gethostname(host, sizeof(host)) < 0 || !id_valid(host, 64))
		snprintf(host, sizeof(host), "m2md");
	if ((err = config_string(c, gw, "id", host, &id)) < 0)
		return err;
	if (!id_valid(id, 64))
		return config_error(c, cJSON_GetObjectItemCaseSensitive(gw, "id"),
		                    "expected a gateway id of 1 to 64 letters, digits, '_', '-' or '.', "
		                    "got \"%s\"", id);
	if ((err = config_string(c, gw, "plugin_dir", default_plugin_dir(), &dir)) < 0)
		return err;
	if ((err = config_enum(c, gw, "log_level", levels, -1, &level)) < 0)
		return err;
	if (level >= 0)
		s->log_level = LOG_ERR + level;
	if ((err = config_duration(c, gw, "stats_interval", 15 * 60 * 1000000LL,
	                           &s->stats_interval_us)) < 0)
		return err;

	if ((err = config_string(c, st, "path", M2M_DB_FILE, &path)) < 0 ||
	    (err = config_enum(c, st, "synchronous", syncs, STORE_SYNC_NORMAL, &s->store.synchronous)) < 0 ||
	    (err = config_duration(c, st, "commit_interval", s->store.commit_interval_us,
	                           &s->store.commit_interval_us)) < 0)
		return err;
	if (s->store.commit_interval_us < 1000 || s->store.commit_interval_us > 10000000)
		return config_error(c, cJSON_GetObjectItemCaseSensitive(st, "commit_interval"),
		                    "expected a duration from 1ms to 10s");
	if ((err = config_int(c, st, "commit_rows", s->store.commit_rows, 1, 1000000, &v)) < 0)
		return err;
	s->store.commit_rows = (uint32_t)v;
	if ((err = config_int(c, st, "queue_limit", s->store.queue_limit, 100, 100000000, &v)) < 0)
		return err;
	s->store.queue_limit = (uint32_t)v;
	if ((err = config_duration(c, st, "retention_age", s->store.retention_age_us,
	                           &s->store.retention_age_us)) < 0 ||
	    (err = config_size(c, st, "retention_size", s->store.retention_size,
	                       &s->store.retention_size)) < 0 ||
	    (err = config_enum(c, st, "on_corrupt", corrupt, s->store.on_corrupt,
	                       &s->store.on_corrupt)) < 0 ||
	    (err = config_size(c, st, "cache_size", (uint64_t)s->store.cache_kib * 1024, &size)) < 0)
		return err;
	if (s->store.retention_size != 0 && s->store.retention_size < 1024 * 1024)
		return config_error(c, cJSON_GetObjectItemCaseSensitive(st, "retention_size"),
		                    "expected 0 (unbounded) or at least 1MiB");
	if (size < 64 * 1024 || size > (1ULL << 34))
		return config_error(c, cJSON_GetObjectItemCaseSensitive(st, "cache_size"),
		                    "expected a cache size from 64KiB to 16GiB");
	s->store.cache_kib = (int64_t)(size / 1024);

	s->gateway_id = strdup(id);
	s->plugin_dir = path_relative_to(config_path, dir);
	s->store_path = path_relative_to(config_path, path);
	if (!s->gateway_id || !s->plugin_dir || !s->store_path)
		return -ENOMEM;
	s->store.path = s->store_path;

	cJSON_ArrayForEach(item, drivers) {
		struct driver_conf *dc, *v2;
		const char *plugin;

		config_mark(c, drivers, item->string);
		if (!id_valid(item->string, 64) || strchr(item->string, '.'))
			return config_error(c, item, "expected a driver name of 1 to 64 letters, digits, "
			                    "'_' or '-', got \"%s\"", item->string);
		if (!cJSON_IsObject(item))
			return config_error(c, item, "expected a table [drivers.%s]", item->string);
		v2 = realloc(s->drivers, (s->n_drivers + 1) * sizeof(*v2));
		if (!v2)
			return -ENOMEM;
		s->drivers = v2;
		dc = &s->drivers[s->n_drivers];
		memset(dc, 0, sizeof(*dc));
		if ((err = config_string(c, item, "plugin", NULL, &plugin)) < 0)
			return err;
		if (err == 0)
			return config_error(c, item, "missing key 'plugin' (the driver plugin, e.g. \"modbus\")");
		if (!plugin_name_valid(plugin))
			return config_error(c, cJSON_GetObjectItemCaseSensitive(item, "plugin"),
			                    "expected a plugin name of lower-case letters, digits, '_' or '-', "
			                    "got \"%s\"", plugin);
		if ((err = config_duration(c, item, "restart_backoff", 1000000, &dc->restart_min_us)) < 0 ||
		    (err = config_duration(c, item, "restart_backoff_max", 300 * 1000000LL,
		                           &dc->restart_max_us)) < 0)
			return err;
		if (dc->restart_min_us < 10000 || dc->restart_max_us < dc->restart_min_us)
			return config_error(c, cJSON_GetObjectItemCaseSensitive(item, "restart_backoff"),
			                    "expected restart_backoff >= 10ms and <= restart_backoff_max");
		dc->name = strdup(item->string);
		dc->plugin = strdup(plugin);
		s->n_drivers++;
		if (!dc->name || !dc->plugin)
			return -ENOMEM;
		dc->section = item;
		dc->plugin_dir = s->plugin_dir;
	}
	return 0;
}
