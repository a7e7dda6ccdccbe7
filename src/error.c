/* SPDX-License-Identifier: MIT */
#include "error.h"

#include <string.h>

const char *m2m_strerror(int err) {
	switch (err) {
#define XX(name, code, text) \
	case code:           \
		return text;
		M2M_ERRNO_MAP(XX)
#undef XX
	default:
		break;
	}
	if (err < 0 && err > -4000)
		return strerror(-err);
	return "unknown error";
}
