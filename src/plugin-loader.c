/* SPDX-License-Identifier: MIT */
#include "plugin-loader.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

int plugin_name_valid(const char *name) {
	size_t n = strlen(name);

	if (n == 0 || n > 32)
		return 0;
	for (const char *s = name; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
			return 0;
	return 1;
}

/* A file or directory is trusted when only root or we can change it. */
static int check_trusted(const char *what, const char *path, const struct stat *st, char **ret_error) {
	if (st->st_mode & (S_IWGRP | S_IWOTH)) {
		*ret_error = strdup_printf("%s: refusing to load plugins: %s is writable by %s "
		                           "(run: chmod go-w '%s')",
		                           path, what, (st->st_mode & S_IWOTH) ? "others" : "group", path);
		return -EPERM;
	}
	if (st->st_uid != 0 && st->st_uid != geteuid()) {
		*ret_error = strdup_printf("%s: refusing to load plugins: %s belongs to uid %u, "
		                           "not to root or to the user m2md runs as",
		                           path, what, (unsigned)st->st_uid);
		return -EPERM;
	}
	return 0;
}

static int load(const char *dir, const char *name, struct plugin **ret, char **ret_error) {
	const struct m2m_plugin *desc;
	m2m_plugin_entry_fn entry;
	char *path = NULL;
	struct plugin *p = NULL;
	struct stat st, st2;
	void *dl = NULL;
	int fd = -1, err;

	if (!plugin_name_valid(name)) {
		*ret_error = strdup_printf("invalid plugin name \"%s\": expected lower-case letters, "
		                           "digits, '_' or '-'", name);
		return -EINVAL;
	}
	if (stat(dir, &st) < 0) {
		err = -errno;
		*ret_error = strdup_printf("%s: cannot use plugin directory: %s", dir, strerror(-err));
		return err;
	}
	if (!S_ISDIR(st.st_mode)) {
		*ret_error = strdup_printf("%s: plugin directory is not a directory", dir);
		return -ENOTDIR;
	}
	if ((err = check_trusted("the plugin directory", dir, &st, ret_error)) < 0)
		return err;

	path = strdup_printf("%s/%s.so", dir, name);
	if (!path)
		return -ENOMEM;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		if (err == -ENOENT)
			*ret_error = strdup_printf("%s: no such plugin \"%s\" in %s", path, name, dir);
		else
			*ret_error = strdup_printf("%s: cannot open plugin: %s", path, strerror(-err));
		goto fail;
	}
	if (fstat(fd, &st) < 0) {
		err = -errno;
		*ret_error = strdup_printf("%s: cannot stat plugin: %s", path, strerror(-err));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		err = -EINVAL;
		*ret_error = strdup_printf("%s: plugin is not a regular file", path);
		goto fail;
	}
	if ((err = check_trusted("the plugin file", path, &st, ret_error)) < 0)
		goto fail;

	/*
	 * dlopen() by the real path: glibc identifies loaded objects by name, so
	 * loading through /proc/self/fd/N would hand back whatever plugin was
	 * loaded earlier under the same (reused) fd number. The file must still
	 * be the one checked above; since only root or our own user can change
	 * that directory, a mismatch means someone who already could is racing us.
	 */
	dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!dl) {
		err = -ENOEXEC;
		*ret_error = strdup_printf("%s: cannot load plugin: %s", path, dlerror());
		goto fail;
	}
	if (stat(path, &st2) < 0 || st2.st_dev != st.st_dev || st2.st_ino != st.st_ino) {
		err = -EPERM;
		*ret_error = strdup_printf("%s: plugin file changed while it was being loaded", path);
		goto fail;
	}
	entry = (m2m_plugin_entry_fn)(uintptr_t)dlsym(dl, M2M_PLUGIN_ENTRY_NAME);
	if (!entry) {
		err = -ENOEXEC;
		*ret_error = strdup_printf("%s: not an m2md plugin: it does not export %s()", path,
		                           M2M_PLUGIN_ENTRY_NAME);
		goto fail;
	}
	desc = entry(M2M_ABI_MAJOR, M2M_ABI_MINOR);
	if (!desc) {
		err = -EPROTO;
		*ret_error = strdup_printf("%s: plugin refused this m2md (plugin ABI %d.%d)", path,
		                           M2M_ABI_MAJOR, M2M_ABI_MINOR);
		goto fail;
	}
	if (desc->struct_size < offsetof(struct m2m_plugin, ops) + sizeof(desc->ops)) {
		err = -EPROTO;
		*ret_error = strdup_printf("%s: plugin descriptor too small (%u bytes)", path,
		                           (unsigned)desc->struct_size);
		goto fail;
	}
	if (desc->abi_major != M2M_ABI_MAJOR || desc->abi_minor > M2M_ABI_MINOR) {
		err = -EPROTO;
		*ret_error = strdup_printf("%s: plugin ABI mismatch: plugin \"%s\" was built for ABI "
		                           "%u.%u, this m2md provides ABI %d.%d",
		                           path, desc->name ? desc->name : name, desc->abi_major,
		                           desc->abi_minor, M2M_ABI_MAJOR, M2M_ABI_MINOR);
		goto fail;
	}
	if (!desc->ops ||
	    desc->ops->struct_size < offsetof(struct m2m_driver_ops, write) + sizeof(desc->ops->write) ||
	    !desc->ops->create || !desc->ops->start || !desc->ops->stop || !desc->ops->destroy) {
		err = -EPROTO;
		*ret_error = strdup_printf("%s: plugin driver ops are incomplete", path);
		goto fail;
	}
	p = calloc(1, sizeof(*p));
	if (!p || !(p->name = strdup(name))) {
		err = -ENOMEM;
		goto fail;
	}
	p->path = path;
	p->dl = dl;
	p->desc = desc;
	close(fd);
	*ret = p;
	return 0;

fail:
	if (p)
		free(p->name);
	free(p);
	if (dl)
		dlclose(dl);
	if (fd >= 0)
		close(fd);
	free(path);
	if (err == -ENOMEM && !*ret_error)
		*ret_error = strdup("out of memory");
	return err;
}

int plugin_get(struct plugin_set *set, const char *dir, const char *name, struct plugin **ret,
               char **ret_error) {
	struct plugin *p;
	int err;

	*ret_error = NULL;
	for (p = set->list; p; p = p->next)
		if (strcmp(p->name, name) == 0) {
			p->refs++;
			*ret = p;
			return 0;
		}
	err = load(dir, name, &p, ret_error);
	if (err < 0)
		return err;
	p->refs = 1;
	p->next = set->list;
	set->list = p;
	*ret = p;
	return 0;
}

void plugin_put(struct plugin_set *set, struct plugin *p) {
	struct plugin **pp;

	if (!p || --p->refs > 0)
		return;
	for (pp = &set->list; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	dlclose(p->dl);
	free(p->name);
	free(p->path);
	free(p);
}
