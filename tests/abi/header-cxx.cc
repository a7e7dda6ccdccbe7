// Compiled as C++: the public headers must be usable from C++ plugins.
#include "m2m/plugin.h"
#include "m2m/plugin-util.h"

static const m2m_driver_ops ops = { sizeof(ops), nullptr, nullptr, nullptr, nullptr, nullptr };
static const m2m_plugin desc = { sizeof(desc), M2M_ABI_MAJOR, M2M_ABI_MINOR,
	                             "cxx", "1", "header test", &ops };

M2M_PLUGIN_ENTRY {
	(void)host_abi_major;
	(void)host_abi_minor;
	return &desc;
}
