/* SPDX-License-Identifier: MIT */
/*
 * The module table: every module the daemon runs, one line each, in the
 * order they start, reload, show their status and see readings. MQTT
 * comes before the rules so that a reload reconfigures the client before
 * the rules end their alarms, whose on_clear actions may publish.
 */
#include "module.h"

extern const struct module_ops mqtt_module, rules_module, ctl_module;
#ifdef M2M_TEST_MODULES
extern const struct module_ops count_module;
#endif

static const struct module_ops *const modules[] = {
	&mqtt_module,
	&rules_module,
	&ctl_module,
#ifdef M2M_TEST_MODULES
	&count_module, /* tests/module/count-module.c */
#endif
};

_Static_assert(sizeof(modules) / sizeof(modules[0]) <= CORE_SINKS_MAX,
               "more modules than CORE_SINKS_MAX");

const struct module_ops *const *modules_table(size_t *ret_n) {
	*ret_n = sizeof(modules) / sizeof(modules[0]);
	return modules;
}
