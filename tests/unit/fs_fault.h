/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Storage faults for the unit tests (they run as root): a tiny tmpfs that
 * can be filled up or remounted read-only. A test that cannot mount skips.
 */
#ifndef SLUICE_TEST_FS_FAULT_H
#define SLUICE_TEST_FS_FAULT_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

/* Mount a tmpfs of size bytes on a fresh directory (its path in dir);
 * 0, or -1 when mounting is not allowed here. */
static inline int fs_tiny_mount(char *dir, size_t dirlen, size_t size)
{
	char opts[64];

	snprintf(dir, dirlen, "/tmp/sluice-fs-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(opts, sizeof(opts), "size=%zu,mode=0700", size);
	if (mount("tmpfs", dir, "tmpfs", 0, opts)) {
		rmdir(dir);
		return -1;
	}
	return 0;
}

static inline void fs_tiny_umount(const char *dir)
{
	umount2(dir, MNT_DETACH);
	rmdir(dir);
}

/* Fill the file system holding dir up to the last byte (a file named
 * "filler" in dir). */
static inline void fs_fill(const char *dir)
{
	static char block[4096];
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/filler", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	while (write(fd, block, sizeof(block)) > 0)
		;
	while (write(fd, block, 1) > 0)
		;
	close(fd);
}

static inline int fs_set_readonly(const char *dir, int ro)
{
	return mount(NULL, dir, NULL, MS_REMOUNT | (ro ? MS_RDONLY : 0), NULL);
}

/* How many entries of dir start with prefix. */
static inline int fs_count(const char *dir, const char *prefix)
{
	char cmd[512];
	FILE *p;
	int n = -1;

	snprintf(cmd, sizeof(cmd), "ls -A '%s' | grep -c '^%s' || true", dir, prefix);
	p = popen(cmd, "r");
	if (p) {
		if (fscanf(p, "%d", &n) != 1)
			n = -1;
		pclose(p);
	}
	return n;
}

#endif /* SLUICE_TEST_FS_FAULT_H */
