/* SPDX-License-Identifier: MIT */
/*
 * The plugin loader. Plugins load only from the configured plugin
 * directory, by a plain name ("modbus" -> DIR/modbus.so); the directory and
 * the file must not be writable by group or others and must belong to root
 * or to the user m2md runs as. The file is checked through an open fd and
 * its identity (device and inode) checked again after dlopen(), so a file
 * swapped between the check and the load is refused.
 */
#pragma once

#include "m2m/plugin.h"

struct plugin {
	char *name;
	char *path;
	void *dl;
	const struct m2m_plugin *desc;
	unsigned refs;
	struct plugin *next;
};

/* A set of loaded plugins, each loaded once however many instances use it. */
struct plugin_set {
	struct plugin *list;
};

/*
 * Returns the loaded plugin NAME from DIR, loading it on first use (and
 * taking a reference). On failure returns a negative errno and one line in
 * *ret_error (malloc'd) naming the file and what is wrong.
 */
int plugin_get(struct plugin_set *set, const char *dir, const char *name, struct plugin **ret,
               char **ret_error);
/* Drops a reference; the last one unloads the plugin. */
void plugin_put(struct plugin_set *set, struct plugin *p);

/* True when NAME is a plain plugin name: [a-z0-9_-], 1..32 bytes. */
int plugin_name_valid(const char *name);

