// SPDX-License-Identifier: Apache-2.0
/* lib/statefile: a write or creation replaces a file whole or not at all,
 * leaves no temporary behind when the storage fails (full, read-only), an
 * exclusive creation never overwrites, start-up removes a crash's
 * temporaries, and storage errors name the directory and the fix. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "fs_fault.h"
#include "statefile.h"

struct fixture {
	char dir[64];
	int dirfd;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/sluice-sf-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->dirfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(f->dirfd >= 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	close(f->dirfd);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd))
		return -1;
	free(f);
	return 0;
}

static void assert_content(int dirfd, const char *name, const char *want)
{
	char *buf;
	size_t len;

	assert_int_equal(sf_read(dirfd, name, 1 << 20, &buf, &len), 0);
	assert_int_equal(len, strlen(want));
	assert_string_equal(buf, want);
	free(buf);
}

static void test_write_replace(void **state)
{
	struct fixture *f = *state;
	struct stat st;

	assert_int_equal(sf_write_atomic(f->dirfd, "a", "one\n", 4, 0600), 0);
	assert_content(f->dirfd, "a", "one\n");
	assert_int_equal(sf_write_atomic(f->dirfd, "a", "second\n", 7, 0640), 0);
	assert_content(f->dirfd, "a", "second\n");
	assert_int_equal(fstatat(f->dirfd, "a", &st, 0), 0);
	assert_int_equal(st.st_size, 7);
	assert_int_equal(fs_count(f->dir, ".sf-tmp-"), 0);
	assert_int_equal(sf_write_path("/nonexistent-dir/x", "x", 1, 0600), -ENOENT);
}

static void test_create_exclusive(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(sf_create_exclusive(f->dirfd, "r", "mine\n", 5, 0600), 0);
	assert_int_equal(sf_create_exclusive(f->dirfd, "r", "yours\n", 6, 0600), -EEXIST);
	assert_content(f->dirfd, "r", "mine\n");
	assert_int_equal(fs_count(f->dir, ".sf-tmp-"), 0);
	assert_int_equal(sf_remove(f->dirfd, "r"), 0);
	assert_int_equal(sf_remove(f->dirfd, "r"), 0); /* missing: success */
	assert_int_equal(faccessat(f->dirfd, "r", F_OK, 0), -1);
}

static void test_remove_temporaries(void **state)
{
	struct fixture *f = *state;
	int fd;

	/* A dead process's (no such pid), an unparsable one, one of pid 1
	 * (alive: another process writing, kept). */
	static const char *const names[] = { ".sf-tmp-4194303.1234-0", ".sf-tmp-x",
					     ".sf-tmp-4194303.1234-1", ".sf-tmp-1.1234-0" };

	for (int i = 0; i < 4; i++) {
		const char *name = names[i];

		fd = openat(f->dirfd, name, O_WRONLY | O_CREAT, 0600);
		assert_true(fd >= 0);
		close(fd);
	}
	assert_int_equal(sf_write_atomic(f->dirfd, "keep", "k", 1, 0600), 0);
	assert_true(sf_is_temporary(".sf-tmp-1-2"));
	assert_false(sf_is_temporary("keep"));
	assert_int_equal(sf_remove_temporaries(f->dirfd), 3);
	assert_int_equal(fs_count(f->dir, ".sf-tmp-"), 1);
	assert_int_equal(faccessat(f->dirfd, ".sf-tmp-1.1234-0", F_OK, 0), 0);
	assert_content(f->dirfd, "keep", "k");
}

static void test_read_limits(void **state)
{
	struct fixture *f = *state;
	char *buf;
	size_t len;

	assert_int_equal(sf_write_atomic(f->dirfd, "big", "0123456789", 10, 0600), 0);
	assert_int_equal(sf_read(f->dirfd, "big", 9, &buf, &len), -EFBIG);
	assert_null(buf);
	assert_int_equal(sf_read(f->dirfd, "missing", 9, &buf, &len), -ENOENT);
	assert_int_equal(sf_write_atomic(f->dirfd, "empty", "", 0, 0600), 0);
	assert_content(f->dirfd, "empty", "");
}

static void test_quarantine(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(sf_write_atomic(f->dirfd, "torn", "{\"a\":", 5, 0600), 0);
	assert_int_equal(sf_quarantine(f->dirfd, "torn"), 0);
	assert_int_equal(faccessat(f->dirfd, "torn", F_OK, 0), -1);
	assert_content(f->dirfd, "torn.corrupt", "{\"a\":");
	assert_int_equal(sf_quarantine(f->dirfd, "torn"), 0); /* gone: nothing to do */
}

/* A full file system: the write fails with ENOSPC, the old content stays,
 * no temporary is left. */
static void test_full(void **state)
{
	char dir[64], big[8192];
	int dirfd;

	(void)state;
	if (fs_tiny_mount(dir, sizeof(dir), 64 * 1024))
		skip();
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dirfd >= 0);
	assert_int_equal(sf_write_atomic(dirfd, "state", "old\n", 4, 0600), 0);
	fs_fill(dir);
	memset(big, 'x', sizeof(big));
	assert_int_equal(sf_write_atomic(dirfd, "state", big, sizeof(big), 0600), -ENOSPC);
	assert_int_equal(sf_create_exclusive(dirfd, "new", big, sizeof(big), 0600), -ENOSPC);
	assert_content(dirfd, "state", "old\n");
	assert_int_equal(faccessat(dirfd, "new", F_OK, 0), -1);
	assert_int_equal(fs_count(dir, ".sf-tmp-"), 0);
	close(dirfd);
	fs_tiny_umount(dir);
}

/* A read-only file system: every change fails with EROFS, nothing changes. */
static void test_readonly(void **state)
{
	char dir[64];
	int dirfd;

	(void)state;
	if (fs_tiny_mount(dir, sizeof(dir), 64 * 1024))
		skip();
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dirfd >= 0);
	assert_int_equal(sf_write_atomic(dirfd, "state", "old\n", 4, 0600), 0);
	assert_int_equal(fs_set_readonly(dir, 1), 0);
	assert_int_equal(sf_write_atomic(dirfd, "state", "new\n", 4, 0600), -EROFS);
	assert_int_equal(sf_create_exclusive(dirfd, "r", "x\n", 2, 0600), -EROFS);
	assert_int_equal(sf_remove(dirfd, "state"), -EROFS);
	assert_content(dirfd, "state", "old\n");
	assert_int_equal(fs_set_readonly(dir, 0), 0);
	close(dirfd);
	fs_tiny_umount(dir);
}

static void test_storage_error(void **state)
{
	char buf[256];

	(void)state;
	assert_int_equal(sf_storage_error("/var/lib/sluice", -ENOSPC, buf, sizeof(buf)), 1);
	assert_string_equal(buf, "state directory /var/lib/sluice is full (No space left on "
				 "device): free space on it");
	assert_int_equal(sf_storage_error("/s", EROFS, buf, sizeof(buf)), 1);
	assert_non_null(strstr(buf, "/s is read-only"));
	assert_int_equal(sf_storage_error("/s", -EDQUOT, buf, sizeof(buf)), 1);
	assert_int_equal(sf_storage_error("/s", -EACCES, buf, sizeof(buf)), 1);
	assert_int_equal(sf_storage_error("/s", -EEXIST, buf, sizeof(buf)), 0);
	assert_int_equal(sf_storage_error("/s", -EADDRNOTAVAIL, buf, sizeof(buf)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_write_replace, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_exclusive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove_temporaries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quarantine, setup, teardown),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_readonly),
		cmocka_unit_test(test_storage_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
