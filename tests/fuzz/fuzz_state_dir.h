/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A scratch state directory for the fuzz targets that run a real store:
 * made once per process under /dev/shm (libFuzzer runs every input in it),
 * emptied after each input, removed at exit. Included by one target each.
 */
#ifndef SLUICE_FUZZ_STATE_DIR_H
#define SLUICE_FUZZ_STATE_DIR_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* One per fuzzer process, filled in by fuzz_state_dir_init. */
static char fuzz_state_dir[64];

static void fuzz_state_dir_empty(void)
{
	DIR *d = opendir(fuzz_state_dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
}

static void fuzz_state_dir_remove(void)
{
	fuzz_state_dir_empty();
	rmdir(fuzz_state_dir);
}

/* For LLVMFuzzerInitialize: logging quiet, the directory made (exits on
 * failure, naming it). */
static void fuzz_state_dir_init(const char *target)
{
	log_init(target, LOG_ERROR);
	snprintf(fuzz_state_dir, sizeof(fuzz_state_dir), "/dev/shm/sluice-%s.XXXXXX", target);
	if (!mkdtemp(fuzz_state_dir)) {
		fprintf(stderr, "%s: mkdtemp %s: ", target, fuzz_state_dir);
		perror(NULL);
		exit(1);
	}
	atexit(fuzz_state_dir_remove);
}

#endif /* SLUICE_FUZZ_STATE_DIR_H */
