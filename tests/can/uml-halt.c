/* SPDX-License-Identifier: MIT */
/*
 * uml-halt.c - powers the user-mode Linux guest off at the end of uml-run's
 * init: reboot(2) directly, since a minimal root may have no halt(8).
 */
#include <stdio.h>
#include <sys/reboot.h>
#include <unistd.h>

int main(void)
{
	sync();
	reboot(RB_POWER_OFF);
	perror("reboot");
	return 1;
}
