/* SPDX-License-Identifier: MIT */
/*
 * The module table: every module the daemon runs, one line each, in the
 * order they start, reload, show their status and see readings. MQTT
 * comes before the rules so that a reload reconfigures the client before
 * the rules end their alarms, whose on_clear actions may publish.
 *
 * X(name) stands for the module_ops NAME_module that the module's file
 * defines; the line both declares it and lists it.
 */
#include "module.h"

#ifdef M2M_TEST_MODULES
/* Only in the test build of the daemon (tests/module/meson.build). */
#define TEST_MODULES(X) X(count) /* tests/module/count-module.c */
#else
#define TEST_MODULES(X)
#endif

#define MODULES(X) \
	X(mqtt)    \
	X(rules)   \
	X(ctl)     \
	TEST_MODULES(X)

#define DECLARE(name) extern const struct module_ops name##_module;
#define ENTRY(name) &name##_module,

MODULES(DECLARE)

static const struct module_ops *const modules[] = { MODULES(ENTRY) };

_Static_assert(sizeof(modules) / sizeof(modules[0]) <= CORE_SINKS_MAX,
               "more modules than CORE_SINKS_MAX");

const struct module_ops *const *modules_table(size_t *ret_n) {
	*ret_n = sizeof(modules) / sizeof(modules[0]);
	return modules;
}
