// SPDX-License-Identifier: Apache-2.0
#include <dirent.h>
#include <signal.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "statefile.h"

#define TMP_PREFIX ".sf-tmp-"

int sf_sync_dir(int dirfd)
{
	return fsync(dirfd) ? -errno : 0;
}

static int write_full(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		if (!w)
			return -EIO;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* This process's mark in its temporary names, so sf_remove_temporaries
 * tells its own files in flight from a dead process's, also when a new
 * process got the dead one's pid (a restarted container's pid 1). Set once;
 * process-wide by nature. */
static unsigned process_token(void)
{
	static atomic_uint token;
	unsigned t = atomic_load(&token);

	if (!t) {
		struct timespec now;
		unsigned want;

		clock_gettime(CLOCK_REALTIME, &now);
		want = (unsigned)(now.tv_nsec ^ now.tv_sec ^ ((long)getpid() << 16)) | 1u;
		if (!atomic_compare_exchange_strong(&token, &t, want))
			return t;
		t = want;
	}
	return t;
}

/* A fresh temporary file in dirfd holding buf, synced; its name in tmp. */
static int write_tmp(int dirfd, const void *buf, size_t len, mode_t mode, char *tmp,
		     size_t tmplen)
{
	/* Temporary names differ across threads and processes (pid, token,
	 * counter); the counter holds nothing but uniqueness. */
	static atomic_uint seq;
	int fd, ret;

	snprintf(tmp, tmplen, TMP_PREFIX "%d.%x-%u", (int)getpid(), process_token(),
		 atomic_fetch_add(&seq, 1));
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	ret = write_full(fd, buf, len);
	if (!ret && fsync(fd))
		ret = -errno;
	if (close(fd) && !ret)
		ret = -errno;
	if (ret)
		unlinkat(dirfd, tmp, 0);
	return ret;
}

int sf_write_atomic(int dirfd, const char *name, const void *buf, size_t len, mode_t mode)
{
	char tmp[64];
	int ret = write_tmp(dirfd, buf, len, mode, tmp, sizeof(tmp));

	if (ret)
		return ret;
	if (renameat(dirfd, tmp, dirfd, name)) {
		ret = -errno;
		unlinkat(dirfd, tmp, 0);
		return ret;
	}
	return sf_sync_dir(dirfd);
}

int sf_create_exclusive(int dirfd, const char *name, const void *buf, size_t len, mode_t mode)
{
	char tmp[64];
	int ret = write_tmp(dirfd, buf, len, mode, tmp, sizeof(tmp));

	if (ret)
		return ret;
	if (linkat(dirfd, tmp, dirfd, name, 0))
		ret = -errno;
	unlinkat(dirfd, tmp, 0);
	return ret ? ret : sf_sync_dir(dirfd);
}

int sf_remove(int dirfd, const char *name)
{
	if (unlinkat(dirfd, name, 0))
		return errno == ENOENT ? 0 : -errno;
	return sf_sync_dir(dirfd);
}

int sf_read(int dirfd, const char *name, size_t max, char **out, size_t *len)
{
	struct stat st;
	char *buf = NULL;
	size_t n = 0;
	int fd, ret = 0;

	*out = NULL;
	*len = 0;
	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		ret = -errno;
		goto cleanup;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = -EINVAL;
		goto cleanup;
	}
	if ((unsigned long long)st.st_size > max) {
		ret = -EFBIG;
		goto cleanup;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		ret = -ENOMEM;
		goto cleanup;
	}
	/* The size can change under us (a writer not using these helpers):
	 * read what is there, up to the size seen. */
	while (n < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			ret = -errno;
			goto cleanup;
		}
		if (!r)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	buf = NULL;
cleanup:
	free(buf);
	close(fd);
	return ret;
}

int sf_is_temporary(const char *name)
{
	return !strncmp(name, TMP_PREFIX, sizeof(TMP_PREFIX) - 1);
}

/* Was temporary file name left by a process that is gone? Not when this
 * process made it (in flight), nor when its pid is alive and another's
 * (another process writing in the same directory). */
static int temporary_is_stale(const char *name)
{
	unsigned token = 0;
	int pid = 0;

	if (sscanf(name + sizeof(TMP_PREFIX) - 1, "%d.%x", &pid, &token) != 2 || pid <= 0)
		return 1;
	if (token == process_token())
		return 0;
	if (pid == (int)getpid())
		return 1;
	return kill(pid, 0) && errno == ESRCH;
}

DIR *sf_opendir(int dirfd)
{
	int fd = dup(dirfd), saved;
	DIR *d;

	if (fd < 0)
		return NULL;
	d = fdopendir(fd);
	if (!d) {
		saved = errno;
		close(fd);
		errno = saved;
		return NULL;
	}
	/* The duplicate shares the file offset with dirfd: start over. */
	rewinddir(d);
	return d;
}

int sf_remove_temporaries(int dirfd)
{
	struct dirent *de;
	int n = 0;
	DIR *d = sf_opendir(dirfd);

	if (!d)
		return -errno;
	while ((de = readdir(d)))
		if (sf_is_temporary(de->d_name) && temporary_is_stale(de->d_name) &&
		    !unlinkat(dirfd, de->d_name, 0))
			n++;
	closedir(d);
	if (n)
		sf_sync_dir(dirfd);
	return n;
}

int sf_write_path(const char *path, const void *buf, size_t len, mode_t mode)
{
	const char *slash = strrchr(path, '/');
	char dir[4096];
	int dirfd, ret;

	if (!slash) {
		snprintf(dir, sizeof(dir), ".");
	} else if ((size_t)(slash - path) >= sizeof(dir)) {
		return -ENAMETOOLONG;
	} else {
		memcpy(dir, path, (size_t)(slash - path));
		dir[slash - path] = '\0';
		if (!dir[0])
			snprintf(dir, sizeof(dir), "/");
	}
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return -errno;
	ret = sf_write_atomic(dirfd, slash ? slash + 1 : path, buf, len, mode);
	close(dirfd);
	return ret;
}

int sf_quarantine(int dirfd, const char *name)
{
	char aside[300];

	if (snprintf(aside, sizeof(aside), "%s.corrupt", name) >= (int)sizeof(aside))
		return -ENAMETOOLONG;
	if (renameat(dirfd, name, dirfd, aside))
		return errno == ENOENT ? 0 : -errno;
	return sf_sync_dir(dirfd);
}

int sf_storage_error(const char *dir, int err, char *buf, size_t len)
{
	const char *state, *fix;

	err = err < 0 ? -err : err;
	switch (err) {
	case ENOSPC:
		state = "full";
		fix = "free space on it";
		break;
	case EDQUOT:
		state = "over its quota";
		fix = "raise the quota or free space on it";
		break;
	case EROFS:
		state = "read-only";
		fix = "mount it read-write";
		break;
	case EACCES:
	case EPERM:
		state = "not writable";
		fix = "give the agent write access to it";
		break;
	case EIO:
		state = "failing";
		fix = "check the disk";
		break;
	default:
		return 0;
	}
	snprintf(buf, len, "state directory %s is %s (%s): %s", dir, state, strerror(err), fix);
	return 1;
}
