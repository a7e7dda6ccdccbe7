/* SPDX-License-Identifier: MIT */
/*
 * Runs a fuzz target once over every file of the directories it is given:
 * in the ordinary build (gcc, no libFuzzer) the seed corpora become a
 * regression test, so a target that no longer builds, or an input that
 * once crashed, fails the test suite and not only the fuzz stage.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path) {
	FILE *f = fopen(path, "rbe");
	uint8_t *buf = NULL;
	long n;

	if (!f)
		return -1;
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0 ||
	    !(buf = malloc((size_t)n + 1)) || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fclose(f);
		free(buf);
		return -1;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, (size_t)n);
	free(buf);
	return 0;
}

int main(int argc, char **argv) {
	size_t files = 0;

	for (int i = 1; i < argc; i++) {
		DIR *d = opendir(argv[i]);
		struct dirent *e;

		if (!d) {
			fprintf(stderr, "%s: cannot open the corpus directory\n", argv[i]);
			return 1;
		}
		while ((e = readdir(d))) {
			char path[4096];
			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
			if (run_file(path) < 0) {
				fprintf(stderr, "%s: cannot read\n", path);
				closedir(d);
				return 1;
			}
			files++;
		}
		closedir(d);
	}
	if (files == 0) {
		fprintf(stderr, "no corpus files: the test would prove nothing\n");
		return 1;
	}
	fprintf(stderr, "%zu corpus files run\n", files);
	return 0;
}
