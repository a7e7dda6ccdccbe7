/* SPDX-License-Identifier: MIT */
/*
 * Linked with the whole of one layer and only the layers below it
 * (src/meson.build): it builds only when that layer calls nothing above it.
 */
int main(void) {
	return 0;
}
