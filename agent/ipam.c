// SPDX-License-Identifier: Apache-2.0
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ipam.h"
#include "fsutil.h"
#include "log.h"

#define RANGE_FILE "range"

struct ipam {
	pthread_mutex_t lock;	/* guards bitmap, used and cursor */
	int dirfd;
	struct cidr4 range;
	uint32_t first, last;	/* allocatable addresses, inclusive */
	uint32_t cursor;	/* where the next search starts */
	unsigned used;
	uint64_t *bitmap;	/* bit (ip - first) set: believed allocated */
	char dir[PATH_MAX];
};

static int bit_test(const struct ipam *p, uint32_t ip)
{
	uint32_t i = ip - p->first;

	return (p->bitmap[i / 64] >> (i % 64)) & 1;
}

static void bit_set(struct ipam *p, uint32_t ip, int on)
{
	uint32_t i = ip - p->first;
	uint64_t m = 1ull << (i % 64);

	if (on && !(p->bitmap[i / 64] & m)) {
		p->bitmap[i / 64] |= m;
		p->used++;
	} else if (!on && (p->bitmap[i / 64] & m)) {
		p->bitmap[i / 64] &= ~m;
		p->used--;
	}
}

static int read_small_file(int dirfd, const char *name, char *buf, size_t len)
{
	ssize_t n;
	int fd, ret = 0;

	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0) {
		ret = -errno;
		goto cleanup;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
cleanup:
	close(fd);
	return ret;
}

/* Write content to a fresh temporary file in the directory and link it to
 * name; -EEXIST when name exists. Nothing is left behind on failure. */
static int publish_file(int dirfd, const char *name, const char *content)
{
	static atomic_uint seq; /* unique temporary names across threads */
	char tmp[64];
	size_t len = strlen(content);
	int fd, ret = 0;

	snprintf(tmp, sizeof(tmp), ".tmp-%d-%u", (int)getpid(), atomic_fetch_add(&seq, 1));
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (write(fd, content, len) != (ssize_t)len) {
		ret = errno ? -errno : -EIO;
		goto cleanup;
	}
	if (linkat(dirfd, tmp, dirfd, name, 0))
		ret = -errno;
cleanup:
	close(fd);
	unlinkat(dirfd, tmp, 0);
	return ret;
}

static int load_allocations(struct ipam *p)
{
	struct dirent *de;
	DIR *d;

	d = opendir_fd(p->dirfd);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		uint32_t ip;

		if (ip4_parse(de->d_name, &ip))
			continue;
		if (ip < p->first || ip > p->last) {
			closedir(d);
			return -ERANGE;
		}
		bit_set(p, ip, 1);
	}
	closedir(d);
	return 0;
}

int ipam_open(struct ipam **out, const char *dir, const char *cidr, char *err, size_t errlen)
{
	char stored[64], want[32];
	struct ipam *p;
	int ret;

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->dirfd = -1;
	pthread_mutex_init(&p->lock, NULL);
	ret = cidr4_parse(cidr, &p->range, err, errlen);
	if (ret)
		goto cleanup;
	if (p->range.prefix < 8 || p->range.prefix > 30) {
		snprintf(err, errlen, "pod CIDR %s: prefix must be between /8 and /30", cidr);
		ret = -EINVAL;
		goto cleanup;
	}
	/* network, router, ..., broadcast */
	p->first = p->range.net + 2;
	p->last = p->range.net + (uint32_t)cidr4_size(&p->range) - 2;
	p->cursor = p->first;
	p->bitmap = calloc((cidr4_size(&p->range) + 63) / 64, sizeof(uint64_t));
	if (!p->bitmap) {
		ret = -ENOMEM;
		goto cleanup;
	}
	snprintf(p->dir, sizeof(p->dir), "%s", dir);
	if (mkdir(dir, 0700) && errno != EEXIST) {
		ret = -errno;
		snprintf(err, errlen, "cannot create IPAM directory %s: %s", dir, strerror(errno));
		goto cleanup;
	}
	p->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (p->dirfd < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot open IPAM directory %s: %s", dir, strerror(errno));
		goto cleanup;
	}
	cidr4_format(&p->range, want, sizeof(want));
	ret = read_small_file(p->dirfd, RANGE_FILE, stored, sizeof(stored));
	if (ret == -ENOENT) {
		char line[40];

		snprintf(line, sizeof(line), "%s\n", want);
		ret = publish_file(p->dirfd, RANGE_FILE, line);
		if (ret == -EEXIST)
			ret = read_small_file(p->dirfd, RANGE_FILE, stored, sizeof(stored));
		else
			snprintf(stored, sizeof(stored), "%s", want);
	}
	if (ret) {
		snprintf(err, errlen, "cannot record the pod CIDR in %s/%s: %s", dir, RANGE_FILE,
			 strerror(-ret));
		goto cleanup;
	}
	if (strcmp(stored, want)) {
		snprintf(err, errlen,
			 "IPAM state in %s belongs to pod CIDR %s, not %s; delete the pods first, or "
			 "point --state-dir elsewhere",
			 dir, stored, want);
		ret = -EEXIST;
		goto cleanup;
	}
	ret = load_allocations(p);
	if (ret) {
		snprintf(err, errlen, "cannot load allocations from %s: %s", dir,
			 ret == -ERANGE ? "an allocation lies outside the pod CIDR" : strerror(-ret));
		goto cleanup;
	}
	*out = p;
	return 0;
cleanup:
	ipam_close(p);
	return ret;
}

void ipam_close(struct ipam *p)
{
	if (!p)
		return;
	if (p->dirfd >= 0)
		close(p->dirfd);
	pthread_mutex_destroy(&p->lock);
	free(p->bitmap);
	free(p);
}

int ipam_allocate(struct ipam *p, const char *owner, uint32_t *out)
{
	uint32_t n = p->last - p->first + 1, ip;
	char name[16], content[IPAM_OWNER_MAX + 2];
	int ret = -ENOSPC;

	if (strlen(owner) > IPAM_OWNER_MAX || strchr(owner, '\n'))
		return -EINVAL;
	snprintf(content, sizeof(content), "%s\n", owner);
	pthread_mutex_lock(&p->lock);
	for (uint32_t tried = 0; tried < n; tried++) {
		ip = p->cursor;
		p->cursor = ip == p->last ? p->first : ip + 1;
		if (bit_test(p, ip))
			continue;
		ip4_format(ip, name, sizeof(name));
		ret = publish_file(p->dirfd, name, content);
		if (ret == -EEXIST) {
			/* Taken by another allocator on the same directory. */
			bit_set(p, ip, 1);
			ret = -ENOSPC;
			continue;
		}
		if (ret)
			break;
		bit_set(p, ip, 1);
		*out = ip;
		break;
	}
	pthread_mutex_unlock(&p->lock);
	return ret;
}

int ipam_owner(struct ipam *p, uint32_t ip, char *buf, size_t len)
{
	char name[16];

	ip4_format(ip, name, sizeof(name));
	return read_small_file(p->dirfd, name, buf, len);
}

int ipam_release(struct ipam *p, uint32_t ip, const char *owner)
{
	char name[16], holder[IPAM_OWNER_MAX + 2];
	int ret;

	if (ip < p->first || ip > p->last)
		return -ENOENT;
	ip4_format(ip, name, sizeof(name));
	pthread_mutex_lock(&p->lock);
	ret = read_small_file(p->dirfd, name, holder, sizeof(holder));
	if (ret)
		goto cleanup;
	if (owner && strcmp(owner, holder)) {
		ret = -EPERM;
		goto cleanup;
	}
	if (unlinkat(p->dirfd, name, 0) && errno != ENOENT) {
		ret = -errno;
		goto cleanup;
	}
	bit_set(p, ip, 0);
cleanup:
	pthread_mutex_unlock(&p->lock);
	return ret;
}

int ipam_foreach(struct ipam *p, int (*cb)(uint32_t ip, const char *owner, void *arg), void *arg)
{
	char owner[IPAM_OWNER_MAX + 2];
	struct dirent *de;
	int ret = 0;
	DIR *d;

	d = opendir_fd(p->dirfd);
	if (!d)
		return -errno;
	while (!ret && (de = readdir(d))) {
		uint32_t ip;

		if (ip4_parse(de->d_name, &ip) || read_small_file(p->dirfd, de->d_name, owner,
								  sizeof(owner)))
			continue;
		ret = cb(ip, owner, arg);
	}
	closedir(d);
	return ret;
}

uint32_t ipam_router(const struct ipam *p)
{
	return p->range.net + 1;
}

const struct cidr4 *ipam_range(const struct ipam *p)
{
	return &p->range;
}

void ipam_usage(struct ipam *p, unsigned *used, unsigned *free_out)
{
	pthread_mutex_lock(&p->lock);
	*used = p->used;
	*free_out = (p->last - p->first + 1) - p->used;
	pthread_mutex_unlock(&p->lock);
}
