// SPDX-License-Identifier: Apache-2.0
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ipam.h"
#include "log.h"
#include "statefile.h"

#define RANGE_FILE "range"
#define RELEASED_DIR "released"

/* When an address was last released; the queue is oldest first. */
struct release {
	uint64_t when;		/* CLOCK_REALTIME ns: survives reboots, unlike a monotonic clock */
	uint32_t ip;
};

struct ipam {
	pthread_mutex_t lock;	/* guards bitmap, used, cursor, released, queue */
	int dirfd;
	int reldirfd;		/* <dir>/released: one file per address ever released */
	struct cidr4 range;
	uint32_t first, last;	/* allocatable addresses, inclusive */
	uint32_t cursor;	/* where the search for a never used address starts */
	unsigned used;
	uint64_t *bitmap;	/* bit (ip - first) set: believed allocated */
	uint64_t *released;	/* bit (ip - first) set: released at least once */
	struct release *queue;	/* one per address in released, oldest first */
	size_t nqueue, capqueue;
	uint64_t last_when;	/* release times strictly increase */
	char dir[PATH_MAX];
};

static int bits_test(const uint64_t *bits, const struct ipam *p, uint32_t ip)
{
	uint32_t i = ip - p->first;

	return (bits[i / 64] >> (i % 64)) & 1;
}

static int bit_test(const struct ipam *p, uint32_t ip)
{
	return bits_test(p->bitmap, p, ip);
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

/* A reservation file's content: an owner ("containerId/ifname") or
 * IPAM_QUARANTINED. Anything else is a torn or corrupted file. */
static int owner_valid(const char *owner)
{
	if (!strcmp(owner, IPAM_QUARANTINED))
		return 1;
	if (owner[0] == '\0' || owner[0] == '!' || owner[0] == '/' || !strchr(owner, '/'))
		return 0;
	for (const char *c = owner; *c; c++)
		if ((unsigned char)*c < 0x21 || (unsigned char)*c > 0x7e)
			return 0;
	return 1;
}

/* The owner in reservation file name; IPAM_UNKNOWN when it cannot be read
 * or holds no owner (a torn write, a corrupted disk). */
static int read_owner(int dirfd, const char *name, char *buf, size_t len)
{
	int ret = read_small_file(dirfd, name, buf, len);

	if (ret == -ENOENT)
		return ret;
	if (ret || !owner_valid(buf))
		snprintf(buf, len, "%s", IPAM_UNKNOWN);
	return 0;
}

/* Files a crash left behind: sf_* temporaries, and those of the versions
 * before lib/statefile (".tmp-<pid>-<n>"). */
static void remove_temporaries(int dirfd)
{
	struct dirent *de;
	DIR *d;

	sf_remove_temporaries(dirfd);
	d = sf_opendir(dirfd);
	if (!d)
		return;
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, ".tmp-", 5))
			unlinkat(dirfd, de->d_name, 0);
	closedir(d);
}

static int release_cmp(const void *a, const void *b)
{
	const struct release *x = a, *y = b;

	if (x->when != y->when)
		return x->when < y->when ? -1 : 1;
	return x->ip < y->ip ? -1 : x->ip > y->ip;
}

/* Record in memory that ip was released at when (the newest release). */
static int queue_push(struct ipam *p, uint32_t ip, uint64_t when)
{
	uint32_t i = ip - p->first;

	if (p->released[i / 64] & (1ull << (i % 64))) {
		for (size_t j = 0; j < p->nqueue; j++) {
			if (p->queue[j].ip != ip)
				continue;
			memmove(&p->queue[j], &p->queue[j + 1],
				(p->nqueue - j - 1) * sizeof(p->queue[0]));
			p->nqueue--;
			break;
		}
	}
	if (p->nqueue == p->capqueue) {
		size_t cap = p->capqueue ? p->capqueue * 2 : 64;
		struct release *q = realloc(p->queue, cap * sizeof(*q));

		if (!q)
			return -ENOMEM;
		p->queue = q;
		p->capqueue = cap;
	}
	p->queue[p->nqueue++] = (struct release){ .when = when, .ip = ip };
	p->released[i / 64] |= 1ull << (i % 64);
	if (when > p->last_when)
		p->last_when = when;
	return 0;
}

static int load_releases(struct ipam *p)
{
	struct dirent *de;
	int ret = 0;
	DIR *d;

	d = sf_opendir(p->reldirfd);
	if (!d)
		return -errno;
	while (!ret && (de = readdir(d))) {
		char text[32], *end;
		unsigned long long when;
		uint32_t ip;

		if (ip4_parse(de->d_name, &ip) || ip < p->first || ip > p->last ||
		    read_small_file(p->reldirfd, de->d_name, text, sizeof(text)))
			continue;
		errno = 0;
		when = strtoull(text, &end, 10);
		if (errno || *end)
			when = 0; /* unreadable: as if released long ago */
		ret = queue_push(p, ip, when);
	}
	closedir(d);
	if (!ret && p->nqueue)
		qsort(p->queue, p->nqueue, sizeof(p->queue[0]), release_cmp);
	return ret;
}

static int load_allocations(struct ipam *p)
{
	struct dirent *de;
	DIR *d;

	d = sf_opendir(p->dirfd);
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

/* The range file names the pod CIDR the allocations belong to: written
 * on first use, refused when it names another. One that holds no CIDR (torn,
 * garbage) is rewritten: the allocations are checked against the range
 * anyway (load_allocations). */
static int check_range(struct ipam *p, char *err, size_t errlen)
{
	char stored[64], want[32], line[40], why[8];
	struct cidr4 c;
	int ret;

	cidr4_format(&p->range, want, sizeof(want));
	snprintf(line, sizeof(line), "%s\n", want);
	ret = read_small_file(p->dirfd, RANGE_FILE, stored, sizeof(stored));
	if (ret == -ENOENT) {
		ret = sf_create_exclusive(p->dirfd, RANGE_FILE, line, strlen(line), 0600);
		if (ret == -EEXIST)
			ret = read_small_file(p->dirfd, RANGE_FILE, stored, sizeof(stored));
		else
			snprintf(stored, sizeof(stored), "%s", want);
	}
	if (!ret && cidr4_parse(stored, &c, why, sizeof(why))) {
		pr_warn("repair: %s/%s held no pod CIDR (a torn or corrupted file): rewritten with %s",
			p->dir, RANGE_FILE, want);
		ret = sf_write_atomic(p->dirfd, RANGE_FILE, line, strlen(line), 0600);
		snprintf(stored, sizeof(stored), "%s", want);
	}
	if (ret) {
		snprintf(err, errlen, "cannot record the pod CIDR in %s/%s: %s", p->dir, RANGE_FILE,
			 strerror(-ret));
		return ret;
	}
	if (strcmp(stored, want)) {
		snprintf(err, errlen,
			 "IPAM state in %s belongs to pod CIDR %s, not %s; delete the pods first, or "
			 "point --state-dir elsewhere",
			 p->dir, stored, want);
		return -EEXIST;
	}
	return 0;
}

int ipam_open(struct ipam **out, const char *dir, const char *cidr, char *err, size_t errlen)
{
	struct ipam *p;
	int ret;

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->dirfd = -1;
	p->reldirfd = -1;
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
	p->released = calloc((cidr4_size(&p->range) + 63) / 64, sizeof(uint64_t));
	if (!p->bitmap || !p->released) {
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
	remove_temporaries(p->dirfd);
	ret = check_range(p, err, errlen);
	if (ret)
		goto cleanup;
	ret = load_allocations(p);
	if (ret) {
		snprintf(err, errlen, "cannot load allocations from %s: %s", dir,
			 ret == -ERANGE ? "an allocation lies outside the pod CIDR" : strerror(-ret));
		goto cleanup;
	}
	if (mkdirat(p->dirfd, RELEASED_DIR, 0700) && errno != EEXIST) {
		ret = -errno;
		snprintf(err, errlen, "cannot create %s/%s: %s", dir, RELEASED_DIR, strerror(errno));
		goto cleanup;
	}
	p->reldirfd = openat(p->dirfd, RELEASED_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (p->reldirfd < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot open %s/%s: %s", dir, RELEASED_DIR, strerror(errno));
		goto cleanup;
	}
	remove_temporaries(p->reldirfd);
	ret = load_releases(p);
	if (ret) {
		snprintf(err, errlen, "cannot load release times from %s/%s: %s", dir,
			 RELEASED_DIR, strerror(-ret));
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
	if (p->reldirfd >= 0)
		close(p->reldirfd);
	pthread_mutex_destroy(&p->lock);
	free(p->bitmap);
	free(p->released);
	free(p->queue);
	free(p);
}

/* Claim ip for content: 0, -EEXIST (another allocator has it: marked
 * taken), or another error. */
static int try_claim(struct ipam *p, uint32_t ip, const char *content)
{
	char name[16];
	int ret;

	ip4_format(ip, name, sizeof(name));
	ret = sf_create_exclusive(p->dirfd, name, content, strlen(content), 0600);
	if (!ret || ret == -EEXIST)
		bit_set(p, ip, 1);
	return ret;
}

/*
 * Least recently used first: an address that was never released (never
 * used, as far as this directory knows) before any released one, then the
 * one released longest ago. A pod's address stays unused as long as the
 * range allows, so whatever still refers to it elsewhere (other nodes'
 * state, clients that cached it) has the most time to notice it is gone.
 */
int ipam_allocate(struct ipam *p, const char *owner, uint32_t *out)
{
	uint32_t n = p->last - p->first + 1, ip;
	char content[IPAM_OWNER_MAX + 2];
	int ret = -EADDRNOTAVAIL;

	if (strlen(owner) > IPAM_OWNER_MAX || strchr(owner, '\n') || owner[0] == '!')
		return -EINVAL;
	snprintf(content, sizeof(content), "%s\n", owner);
	pthread_mutex_lock(&p->lock);
	for (uint32_t tried = 0; tried < n; tried++) {
		ip = p->cursor;
		p->cursor = ip == p->last ? p->first : ip + 1;
		if (bit_test(p, ip) || bits_test(p->released, p, ip))
			continue;
		ret = try_claim(p, ip, content);
		if (ret != -EEXIST)
			goto done;
		ret = -EADDRNOTAVAIL;
	}
	for (size_t i = 0; i < p->nqueue; i++) {
		ip = p->queue[i].ip;
		if (bit_test(p, ip))
			continue;
		ret = try_claim(p, ip, content);
		if (ret != -EEXIST)
			goto done;
		ret = -EADDRNOTAVAIL;
	}
done:
	if (!ret)
		*out = ip;
	pthread_mutex_unlock(&p->lock);
	return ret;
}

int ipam_owner(struct ipam *p, uint32_t ip, char *buf, size_t len)
{
	char name[16];

	ip4_format(ip, name, sizeof(name));
	return read_owner(p->dirfd, name, buf, len);
}

int ipam_set_owner(struct ipam *p, uint32_t ip, const char *owner)
{
	char name[16], content[IPAM_OWNER_MAX + 2];
	int ret;

	if (ip < p->first || ip > p->last)
		return -ENOENT;
	if (strlen(owner) > IPAM_OWNER_MAX || !owner_valid(owner))
		return -EINVAL;
	ip4_format(ip, name, sizeof(name));
	snprintf(content, sizeof(content), "%s\n", owner);
	pthread_mutex_lock(&p->lock);
	ret = sf_write_atomic(p->dirfd, name, content, strlen(content), 0600);
	if (!ret)
		bit_set(p, ip, 1);
	pthread_mutex_unlock(&p->lock);
	return ret;
}

int ipam_release(struct ipam *p, uint32_t ip, const char *owner)
{
	char name[16], holder[IPAM_OWNER_MAX + 2], when_text[32];
	struct timespec now;
	uint64_t when;
	int ret, timed;

	if (ip < p->first || ip > p->last)
		return -ENOENT;
	ip4_format(ip, name, sizeof(name));
	pthread_mutex_lock(&p->lock);
	ret = read_owner(p->dirfd, name, holder, sizeof(holder));
	if (ret)
		goto cleanup;
	if (owner && strcmp(owner, holder)) {
		ret = -EPERM;
		goto cleanup;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	when = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
	if (when <= p->last_when)
		when = p->last_when + 1;
	/* The time first: a crash in between leaves the address allocated
	 * (released again at start-up), never free without its time. */
	snprintf(when_text, sizeof(when_text), "%llu\n", (unsigned long long)when);
	timed = sf_write_atomic(p->reldirfd, name, when_text, strlen(when_text), 0600);
	ret = sf_remove(p->dirfd, name);
	if (ret)
		goto cleanup;	/* still allocated: the caller says why */
	if (timed)
		pr_warn("cannot record the release time of %s in %s/%s: %s; it may be handed out "
			"again sooner than the least recently used order says", name, p->dir,
			RELEASED_DIR, strerror(-timed));
	bit_set(p, ip, 0);
	ret = queue_push(p, ip, when);
	if (ret)
		ret = 0; /* out of memory: it is free, only missing from the order */
cleanup:
	pthread_mutex_unlock(&p->lock);
	return ret;
}

int ipam_quarantine(struct ipam *p, uint32_t ip, const char *owner)
{
	char name[16], holder[IPAM_OWNER_MAX + 2];
	int ret;

	if (ip < p->first || ip > p->last)
		return -ENOENT;
	ip4_format(ip, name, sizeof(name));
	pthread_mutex_lock(&p->lock);
	ret = read_owner(p->dirfd, name, holder, sizeof(holder));
	if (ret)
		goto cleanup;
	if (owner && strcmp(owner, holder)) {
		ret = -EPERM;
		goto cleanup;
	}
	ret = sf_write_atomic(p->dirfd, name, IPAM_QUARANTINED "\n",
			      sizeof(IPAM_QUARANTINED "\n") - 1, 0600);
	if (!ret)
		bit_set(p, ip, 1);
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

	d = sf_opendir(p->dirfd);
	if (!d)
		return -errno;
	while (!ret && (de = readdir(d))) {
		uint32_t ip;

		if (ip4_parse(de->d_name, &ip) || ip < p->first || ip > p->last ||
		    read_owner(p->dirfd, de->d_name, owner, sizeof(owner)))
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
