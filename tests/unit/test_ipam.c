// SPDX-License-Identifier: Apache-2.0
/* IPAM: exhaustion, release, reload from state, no duplicates under
 * concurrency, least recently used order (also across a reopen), quarantine. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "fs_fault.h"
#include "ipam.h"

struct fixture {
	char dir[64];
	char ipam_dir[96];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/sluice-ipam-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->ipam_dir, sizeof(f->ipam_dir), "%s/ipam", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd))
		return -1;
	free(f);
	return 0;
}

static struct ipam *open_ok(struct fixture *f, const char *cidr)
{
	struct ipam *p = NULL;
	char err[256] = "";
	int ret = ipam_open(&p, f->ipam_dir, cidr, err, sizeof(err));

	if (ret)
		fail_msg("ipam_open(%s): %s", cidr, err);
	return p;
}

static void test_reserved_and_exhaustion(void **state)
{
	struct fixture *f = *state;
	struct ipam *p = open_ok(f, "10.9.0.0/29"); /* 8 addresses: .2-.6 usable */
	uint32_t ip, seen[5];
	unsigned used, free_n;
	char owner[32];

	assert_int_equal(ipam_router(p), 0x0a090001);
	for (int i = 0; i < 5; i++) {
		snprintf(owner, sizeof(owner), "c%d/eth0", i);
		assert_int_equal(ipam_allocate(p, owner, &ip), 0);
		/* never network, router or broadcast */
		assert_true(ip >= 0x0a090002 && ip <= 0x0a090006);
		for (int j = 0; j < i; j++)
			assert_int_not_equal(seen[j], ip);
		seen[i] = ip;
	}
	assert_int_equal(ipam_allocate(p, "c9/eth0", &ip), -EADDRNOTAVAIL);
	ipam_usage(p, &used, &free_n);
	assert_int_equal(used, 5);
	assert_int_equal(free_n, 0);
	ipam_close(p);
}

static void test_release(void **state)
{
	struct fixture *f = *state;
	struct ipam *p = open_ok(f, "10.9.0.0/30"); /* one usable address: .2 */
	char owner[IPAM_OWNER_MAX];
	uint32_t ip, ip2;

	assert_int_equal(ipam_allocate(p, "a/eth0", &ip), 0);
	assert_int_equal(ip, 0x0a090002);
	assert_int_equal(ipam_allocate(p, "b/eth0", &ip2), -EADDRNOTAVAIL);
	assert_int_equal(ipam_owner(p, ip, owner, sizeof(owner)), 0);
	assert_string_equal(owner, "a/eth0");
	/* only the owner may release */
	assert_int_equal(ipam_release(p, ip, "b/eth0"), -EPERM);
	assert_int_equal(ipam_release(p, ip, "a/eth0"), 0);
	assert_int_equal(ipam_release(p, ip, "a/eth0"), -ENOENT);
	assert_int_equal(ipam_owner(p, ip, owner, sizeof(owner)), -ENOENT);
	assert_int_equal(ipam_allocate(p, "b/eth0", &ip2), 0);
	assert_int_equal(ip2, ip);
	ipam_close(p);
}

static void test_reload(void **state)
{
	struct fixture *f = *state;
	struct ipam *p = open_ok(f, "10.9.0.0/28");
	uint32_t a, b, c;
	unsigned used, free_n;
	char owner[IPAM_OWNER_MAX], err[256];

	assert_int_equal(ipam_allocate(p, "a/eth0", &a), 0);
	assert_int_equal(ipam_allocate(p, "b/eth0", &b), 0);
	ipam_close(p);

	p = open_ok(f, "10.9.0.0/28");
	ipam_usage(p, &used, &free_n);
	assert_int_equal(used, 2);
	assert_int_equal(free_n, 11);
	assert_int_equal(ipam_owner(p, b, owner, sizeof(owner)), 0);
	assert_string_equal(owner, "b/eth0");
	assert_int_equal(ipam_allocate(p, "c/eth0", &c), 0);
	assert_int_not_equal(c, a);
	assert_int_not_equal(c, b);
	ipam_close(p);

	/* The same state under another CIDR is refused, naming both. */
	p = NULL;
	assert_int_equal(ipam_open(&p, f->ipam_dir, "10.10.0.0/24", err, sizeof(err)), -EEXIST);
	assert_null(p);
	assert_non_null(strstr(err, "10.9.0.0/28"));
	assert_non_null(strstr(err, "10.10.0.0/24"));
}

/* A released address is handed out again only when every other free one
 * has been used, and then the one released longest ago comes first. */
static void test_lru_order(void **state)
{
	struct fixture *f = *state;
	struct ipam *p = open_ok(f, "10.9.0.0/29"); /* .2-.6 */
	uint32_t a, b, c, ip;

	assert_int_equal(ipam_allocate(p, "a/eth0", &a), 0);
	assert_int_equal(ipam_release(p, a, "a/eth0"), 0);
	/* the four never used addresses first, though a is free */
	for (int i = 0; i < 4; i++) {
		char owner[32];

		snprintf(owner, sizeof(owner), "n%d/eth0", i);
		assert_int_equal(ipam_allocate(p, owner, &ip), 0);
		assert_int_not_equal(ip, a);
	}
	assert_int_equal(ipam_allocate(p, "b/eth0", &b), 0);
	assert_int_equal(b, a); /* the only one left */
	/* Release three in an order unlike the addresses': they come back
	 * oldest release first. */
	assert_int_equal(ipam_release(p, 0x0a090005, "n2/eth0"), 0);
	assert_int_equal(ipam_release(p, 0x0a090003, "n0/eth0"), 0);
	assert_int_equal(ipam_release(p, 0x0a090004, "n1/eth0"), 0);
	assert_int_equal(ipam_allocate(p, "c/eth0", &c), 0);
	assert_int_equal(c, 0x0a090005);
	assert_int_equal(ipam_allocate(p, "d/eth0", &c), 0);
	assert_int_equal(c, 0x0a090003);
	/* released again: now the newest */
	assert_int_equal(ipam_release(p, 0x0a090005, "c/eth0"), 0);
	assert_int_equal(ipam_allocate(p, "e/eth0", &c), 0);
	assert_int_equal(c, 0x0a090004);
	assert_int_equal(ipam_allocate(p, "g/eth0", &c), 0);
	assert_int_equal(c, 0x0a090005);
	assert_int_equal(ipam_allocate(p, "h/eth0", &c), -EADDRNOTAVAIL);
	ipam_close(p);
}

/* The order survives a restart: the release times are on disk. */
static void test_lru_across_reopen(void **state)
{
	struct fixture *f = *state;
	struct ipam *p = open_ok(f, "10.9.0.0/29");
	uint32_t ip, got[5];
	char owner[32];

	for (int i = 0; i < 5; i++) {
		snprintf(owner, sizeof(owner), "p%d/eth0", i);
		assert_int_equal(ipam_allocate(p, owner, &got[i]), 0);
	}
	/* .4 released long before .2, .2 just now */
	assert_int_equal(ipam_release(p, 0x0a090004, "p2/eth0"), 0);
	assert_int_equal(ipam_release(p, 0x0a090002, "p0/eth0"), 0);
	ipam_close(p);

	p = open_ok(f, "10.9.0.0/29");
	assert_int_equal(ipam_allocate(p, "q/eth0", &ip), 0);
	assert_int_equal(ip, 0x0a090004);
	assert_int_equal(ipam_release(p, 0x0a090004, "q/eth0"), 0);
	ipam_close(p);

	/* Now .2 is the older release. A restarted allocator with a fresh
	 * cursor used to hand out .2 (the first free address) at once. */
	p = open_ok(f, "10.9.0.0/29");
	assert_int_equal(ipam_allocate(p, "r/eth0", &ip), 0);
	assert_int_equal(ip, 0x0a090002);
	assert_int_equal(ipam_allocate(p, "s/eth0", &ip), 0);
	assert_int_equal(ip, 0x0a090004);
	ipam_close(p);
}

/* A quarantined address is never handed out, survives a reopen, and only a
 * release as IPAM_QUARANTINED frees it. */
static void test_quarantine(void **state)
{
	struct fixture *f = *state;
	struct ipam *p = open_ok(f, "10.9.0.0/30"); /* one address: .2 */
	char owner[IPAM_OWNER_MAX];
	unsigned used, free_n;
	uint32_t ip;

	assert_int_equal(ipam_allocate(p, "a/eth0", &ip), 0);
	assert_int_equal(ipam_quarantine(p, ip, "b/eth0"), -EPERM);
	assert_int_equal(ipam_quarantine(p, ip, "a/eth0"), 0);
	assert_int_equal(ipam_owner(p, ip, owner, sizeof(owner)), 0);
	assert_string_equal(owner, IPAM_QUARANTINED);
	/* the former owner's DEL no longer frees it */
	assert_int_equal(ipam_release(p, ip, "a/eth0"), -EPERM);
	assert_int_equal(ipam_allocate(p, "b/eth0", &ip), -EADDRNOTAVAIL);
	/* no owner can pose as the quarantine */
	assert_int_equal(ipam_allocate(p, IPAM_QUARANTINED, &ip), -EINVAL);
	ipam_close(p);

	p = open_ok(f, "10.9.0.0/30");
	ipam_usage(p, &used, &free_n);
	assert_int_equal(used, 1);
	assert_int_equal(ipam_allocate(p, "b/eth0", &ip), -EADDRNOTAVAIL);
	assert_int_equal(ipam_release(p, 0x0a090002, IPAM_QUARANTINED), 0);
	assert_int_equal(ipam_allocate(p, "b/eth0", &ip), 0);
	assert_int_equal(ip, 0x0a090002);
	ipam_close(p);
}

static void test_bad_cidr(void **state)
{
	struct fixture *f = *state;
	struct ipam *p = NULL;
	char err[256];

	assert_int_equal(ipam_open(&p, f->ipam_dir, "10.9.0.1/24", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "did you mean 10.9.0.0/24"));
	assert_int_equal(ipam_open(&p, f->ipam_dir, "10.9.0.0/31", err, sizeof(err)), -EINVAL);
	assert_int_equal(ipam_open(&p, f->ipam_dir, "banana", err, sizeof(err)), -EINVAL);
	assert_int_equal(ipam_open(&p, f->ipam_dir, "10.9.0.0/33", err, sizeof(err)), -EINVAL);
	assert_null(p);
}

#define THREADS 8
#define PER_THREAD 30

struct worker {
	struct ipam *ipam;
	int id;
	uint32_t got[PER_THREAD];
	int n, errors;
};

static void *allocate_many(void *arg)
{
	struct worker *w = arg;
	char owner[32];

	for (int i = 0; i < PER_THREAD; i++) {
		snprintf(owner, sizeof(owner), "t%d-%d/eth0", w->id, i);
		if (ipam_allocate(w->ipam, owner, &w->got[w->n]))
			w->errors++;
		else
			w->n++;
	}
	return NULL;
}

/* Eight allocators, half sharing one handle and half with a handle each on
 * the same directory (as two processes would), race for a /24. */
static void test_concurrent_no_duplicates(void **state)
{
	struct fixture *f = *state;
	struct ipam *shared = open_ok(f, "10.9.0.0/24"), *own[THREADS];
	struct worker w[THREADS];
	pthread_t t[THREADS];
	static unsigned char seen[256];
	int total = 0;

	memset(seen, 0, sizeof(seen));
	for (int i = 0; i < THREADS; i++) {
		own[i] = i % 2 ? open_ok(f, "10.9.0.0/24") : NULL;
		w[i] = (struct worker){ .ipam = own[i] ? own[i] : shared, .id = i };
		assert_int_equal(pthread_create(&t[i], NULL, allocate_many, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < THREADS; i++) {
		/* 240 requests fit in 253 addresses: none may fail */
		assert_int_equal(w[i].errors, 0);
		for (int j = 0; j < w[i].n; j++) {
			unsigned last = w[i].got[j] & 0xff;

			if (seen[last])
				fail_msg("address .%u handed out twice", last);
			seen[last] = 1;
			total++;
		}
		ipam_close(own[i]);
	}
	assert_int_equal(total, THREADS * PER_THREAD);
	ipam_close(shared);
}

static void write_file(const char *dir, const char *name, const char *content, size_t len)
{
	char path[256];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(content, 1, len, fp), len);
	fclose(fp);
}

struct seen {
	uint32_t ip;
	char owner[IPAM_OWNER_MAX + 2];
};

static int find_cb(uint32_t ip, const char *owner, void *arg)
{
	struct seen *s = arg;

	if (ip != s->ip)
		return 0;
	snprintf(s->owner, sizeof(s->owner), "%s", owner);
	return 1;
}

/* A reservation file a crash left empty, cut short or full of garbage keeps
 * its address reserved (owner IPAM_UNKNOWN) across a reopen: never handed
 * out, until a release settles it. */
static void test_torn_reservations_stay_reserved(void **state)
{
	struct fixture *f = *state;
	struct ipam *p = open_ok(f, "10.9.0.0/29"); /* .2-.6 */
	uint32_t held[3], ip;
	char name[16], owner[IPAM_OWNER_MAX + 2];
	struct seen s;

	for (int i = 0; i < 3; i++) {
		snprintf(owner, sizeof(owner), "c%d/eth0", i);
		assert_int_equal(ipam_allocate(p, owner, &held[i]), 0);
	}
	ipam_close(p);
	ip4_format(held[0], name, sizeof(name));
	write_file(f->ipam_dir, name, "", 0);		/* truncated to 0 bytes */
	ip4_format(held[1], name, sizeof(name));
	write_file(f->ipam_dir, name, "c1/e", 4);	/* cut short: no newline... */
	write_file(f->ipam_dir, name, "c1", 2);		/* ...and no '/' either */
	ip4_format(held[2], name, sizeof(name));
	write_file(f->ipam_dir, name, "\x01\xff\x00garbage", 10);
	p = open_ok(f, "10.9.0.0/29");
	for (int i = 0; i < 3; i++) {
		assert_int_equal(ipam_owner(p, held[i], owner, sizeof(owner)), 0);
		assert_string_equal(owner, IPAM_UNKNOWN);
		s.ip = held[i];
		assert_int_equal(ipam_foreach(p, find_cb, &s), 1);
		assert_string_equal(s.owner, IPAM_UNKNOWN);
	}
	/* Only the two never used addresses are handed out. */
	for (int i = 0; i < 2; i++) {
		assert_int_equal(ipam_allocate(p, "new/eth0", &ip), 0);
		for (int j = 0; j < 3; j++)
			assert_int_not_equal(ip, held[j]);
	}
	assert_int_equal(ipam_allocate(p, "new/eth0", &ip), -EADDRNOTAVAIL);
	/* The repair: one is rewritten for its holder, one released. */
	assert_int_equal(ipam_set_owner(p, held[0], "c0/eth0"), 0);
	assert_int_equal(ipam_owner(p, held[0], owner, sizeof(owner)), 0);
	assert_string_equal(owner, "c0/eth0");
	assert_int_equal(ipam_set_owner(p, held[0], "garbage"), -EINVAL);
	assert_int_equal(ipam_release(p, held[1], "c1/eth0"), -EPERM);
	assert_int_equal(ipam_release(p, held[1], IPAM_UNKNOWN), 0);
	assert_int_equal(ipam_allocate(p, "new/eth0", &ip), 0);
	assert_int_equal(ip, held[1]);
	ipam_close(p);
}

/* A torn range file is rewritten; a crash's temporaries are removed. */
static void test_torn_range_and_temporaries(void **state)
{
	struct fixture *f = *state;
	struct ipam *p = open_ok(f, "10.9.0.0/29");
	char path[160];
	FILE *fp;
	char line[64] = "";

	ipam_close(p);
	write_file(f->ipam_dir, "range", "10.9.0", 6);
	write_file(f->ipam_dir, ".sf-tmp-1-1", "x", 1);
	write_file(f->ipam_dir, ".tmp-1-1", "x", 1);
	p = open_ok(f, "10.9.0.0/29");
	ipam_close(p);
	snprintf(path, sizeof(path), "%s/range", f->ipam_dir);
	fp = fopen(path, "r");
	assert_non_null(fp);
	assert_non_null(fgets(line, sizeof(line), fp));
	fclose(fp);
	assert_string_equal(line, "10.9.0.0/29\n");
	assert_int_equal(fs_count(f->ipam_dir, ".sf-tmp-"), 0);
	assert_int_equal(fs_count(f->ipam_dir, ".tmp-"), 0);
}

/* State on a full or read-only file system: the allocation fails with the
 * storage's error (not "range full") and leaves nothing: no reservation
 * file, no temporary, nothing counted as used. */
static void storage_fault(int readonly)
{
	char dir[64], ipam_dir[96], err[256];
	struct ipam *p = NULL;
	unsigned used, free_n;
	uint32_t ip;

	if (fs_tiny_mount(dir, sizeof(dir), 64 * 1024))
		skip();
	snprintf(ipam_dir, sizeof(ipam_dir), "%s/ipam", dir);
	assert_int_equal(ipam_open(&p, ipam_dir, "10.9.0.0/29", err, sizeof(err)), 0);
	if (readonly)
		assert_int_equal(fs_set_readonly(dir, 1), 0);
	else
		fs_fill(dir);
	assert_int_equal(ipam_allocate(p, "a/eth0", &ip), readonly ? -EROFS : -ENOSPC);
	assert_int_equal(fs_count(ipam_dir, "10.9"), 0);
	assert_int_equal(fs_count(ipam_dir, ".sf-tmp-"), 0);
	ipam_usage(p, &used, &free_n);
	assert_int_equal(used, 0);
	/* Space again: the same allocation works. */
	if (readonly) {
		assert_int_equal(fs_set_readonly(dir, 0), 0);
	} else {
		char filler[128];

		snprintf(filler, sizeof(filler), "%s/filler", dir);
		assert_int_equal(unlink(filler), 0);
	}
	assert_int_equal(ipam_allocate(p, "a/eth0", &ip), 0);
	assert_int_equal(ipam_release(p, ip, "a/eth0"), 0);
	/* A release that cannot remove the file keeps the address allocated. */
	assert_int_equal(ipam_allocate(p, "b/eth0", &ip), 0);
	assert_int_equal(fs_set_readonly(dir, 1), 0);
	assert_int_equal(ipam_release(p, ip, "b/eth0"), -EROFS);
	ipam_usage(p, &used, &free_n);
	assert_int_equal(used, 1);
	assert_int_equal(fs_set_readonly(dir, 0), 0);
	ipam_close(p);
	fs_tiny_umount(dir);
}

static void test_full_state_dir(void **state)
{
	(void)state;
	storage_fault(0);
}

static void test_readonly_state_dir(void **state)
{
	(void)state;
	storage_fault(1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reserved_and_exhaustion, setup, teardown),
		cmocka_unit_test_setup_teardown(test_release, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lru_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lru_across_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quarantine, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_cidr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_no_duplicates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_reservations_stay_reserved, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_range_and_temporaries, setup, teardown),
		cmocka_unit_test(test_full_state_dir),
		cmocka_unit_test(test_readonly_state_dir),
	};

	return cmocka_run_group_tests_name("ipam", tests, NULL, NULL);
}
