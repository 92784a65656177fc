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

/* The mounts still up: a failed assertion leaves its test before
 * fs_tiny_umount, so the process unmounts what is left at exit. Test-process
 * state only, and single-threaded. */
static char fs_mounted[4][64];

static inline void fs_forget(const char *dir)
{
	for (size_t i = 0; i < sizeof(fs_mounted) / sizeof(fs_mounted[0]); i++)
		if (!strcmp(fs_mounted[i], dir))
			fs_mounted[i][0] = '\0';
}

static inline void fs_tiny_umount(const char *dir)
{
	umount2(dir, MNT_DETACH);
	rmdir(dir);
	fs_forget(dir);
}

static void fs_umount_left(void)
{
	for (size_t i = 0; i < sizeof(fs_mounted) / sizeof(fs_mounted[0]); i++)
		if (fs_mounted[i][0]) {
			umount2(fs_mounted[i], MNT_DETACH);
			rmdir(fs_mounted[i]);
			fs_mounted[i][0] = '\0';
		}
}

/* Mount a tmpfs of size bytes on a fresh directory (its path in dir);
 * 0, or -1 when mounting is not allowed here. */
static inline int fs_tiny_mount(char *dir, size_t dirlen, size_t size)
{
	static int registered;
	char opts[64];
	size_t i;

	for (i = 0; i < sizeof(fs_mounted) / sizeof(fs_mounted[0]) && fs_mounted[i][0]; i++)
		;
	if (i == sizeof(fs_mounted) / sizeof(fs_mounted[0]))
		return -1;
	snprintf(dir, dirlen, "/tmp/sluice-fs-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(opts, sizeof(opts), "size=%zu,mode=0700", size);
	if (mount("tmpfs", dir, "tmpfs", 0, opts)) {
		rmdir(dir);
		return -1;
	}
	snprintf(fs_mounted[i], sizeof(fs_mounted[i]), "%s", dir);
	if (!registered++)
		atexit(fs_umount_left);
	return 0;
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
