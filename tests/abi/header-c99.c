/* Compiled with -std=c99 -pedantic -Werror: the public headers must need nothing more. */
#include "m2m/plugin.h"
#include "m2m/plugin-util.h"

static const struct m2m_driver_ops ops = { sizeof(ops), 0, 0, 0, 0, 0 };
static const struct m2m_plugin desc = { sizeof(desc), M2M_ABI_MAJOR, M2M_ABI_MINOR,
	                                    "c99", "1", "header test", &ops };

M2M_PLUGIN_ENTRY {
	(void)host_abi_major;
	(void)host_abi_minor;
	return &desc;
}
