/* SPDX-License-Identifier: MIT */
/*
 * uml-ptrace.c - preloaded into user-mode Linux (linux.uml) by uml-run, so
 * that its guest processes run on hosts with a large XSAVE area.
 *
 * Debian 12's user-mode Linux (6.1) saves and restores a guest process's
 * FPU state with PTRACE_GETREGSET/SETREGSET NT_X86_XSTATE and a buffer of
 * its own fixed size. A host kernel whose XSAVE area is larger (CPUs with
 * AVX-512 or AMX) refuses that SETREGSET with EFAULT ("ptrace set fp regs
 * failed, errno = 14") and the guest's init dies at once. Refusing the
 * XSTATE requests makes the guest kernel fall back on PTRACE_GETFPREGS and
 * SETFPREGS (the x87 and SSE state, which every host accepts); uml-run also
 * tells the guest's glibc not to use AVX (GLIBC_TUNABLES), whose upper
 * register halves that fallback does not carry across context switches.
 * Nothing else of ptrace changes.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <sys/ptrace.h>
#include <sys/types.h>

#define NT_X86_XSTATE 0x202

/* Exported: the project builds with hidden visibility. */
__attribute__((visibility("default"))) long ptrace(enum __ptrace_request request, ...);

__attribute__((visibility("default"))) long ptrace(enum __ptrace_request request, ...)
{
	static long (*real)(enum __ptrace_request, pid_t, void *, void *);
	va_list ap;
	pid_t pid;
	void *addr, *data;

	va_start(ap, request);
	pid = va_arg(ap, pid_t);
	addr = va_arg(ap, void *);
	data = va_arg(ap, void *);
	va_end(ap);
	if ((request == PTRACE_GETREGSET || request == PTRACE_SETREGSET) &&
	    (unsigned long)addr == NT_X86_XSTATE) {
		errno = EIO;
		return -1;
	}
	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "ptrace");
	if (!real) {
		errno = ENOSYS;
		return -1;
	}
	return real(request, pid, addr, data);
}
