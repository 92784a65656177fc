// SPDX-License-Identifier: Apache-2.0
/*
 * The compiler: port-range decomposition into LPM prefix blocks; sizing,
 * fail-closed exclusion and rollback against stand-in maps; identities'
 * release, grace period, reuse and exhaustion; pods with unknown labels.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <arpa/inet.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "compile.h"
#include "identity.h"
#include "policy.h"

/* The blocks must cover exactly [lo, hi], each aligned to its size. */
static void check_exact(uint16_t lo, uint16_t hi)
{
	static unsigned char seen[65536];
	uint16_t starts[32];
	uint8_t bits[32];
	int n = port_range_blocks(lo, hi, starts, bits);

	memset(seen, 0, sizeof(seen));
	assert_true(n >= 1 && n <= 32);
	for (int i = 0; i < n; i++) {
		uint32_t size = 1u << (16 - bits[i]);

		assert_int_equal(starts[i] % size, 0);
		for (uint32_t p = starts[i]; p < starts[i] + size; p++) {
			if (p < lo || p > hi)
				fail_msg("[%u, %u]: block %u/%u covers %u", lo, hi, starts[i], bits[i], p);
			if (seen[p]++)
				fail_msg("[%u, %u]: port %u covered twice", lo, hi, p);
		}
	}
	for (uint32_t p = lo; p <= hi; p++)
		if (!seen[p])
			fail_msg("[%u, %u]: port %u not covered", lo, hi, p);
}

static void test_single_port(void **state)
{
	uint16_t starts[32];
	uint8_t bits[32];

	(void)state;
	assert_int_equal(port_range_blocks(80, 80, starts, bits), 1);
	assert_int_equal(starts[0], 80);
	assert_int_equal(bits[0], 16);
}

static void test_whole_field(void **state)
{
	uint16_t starts[32];
	uint8_t bits[32];

	(void)state;
	assert_int_equal(port_range_blocks(0, 65535, starts, bits), 1);
	assert_int_equal(starts[0], 0);
	assert_int_equal(bits[0], 0);
}

static void test_aligned_block(void **state)
{
	uint16_t starts[32];
	uint8_t bits[32];

	(void)state;
	assert_int_equal(port_range_blocks(8000, 8007, starts, bits), 1);
	assert_int_equal(bits[0], 13);
}

static void test_ranges_exact(void **state)
{
	static const uint16_t cases[][2] = {
		{ 1, 65535 }, { 32000, 32768 }, { 1000, 1999 }, { 65535, 65535 }, { 0, 0 },
		{ 1, 2 }, { 443, 8443 }, { 30000, 32767 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_exact(cases[i][0], cases[i][1]);
	srand(7);
	for (int i = 0; i < 200; i++) {
		uint16_t a = (uint16_t)(rand() & 0xffff), b = (uint16_t)(rand() & 0xffff);

		check_exact(a < b ? a : b, a < b ? b : a);
	}
}

/* ---- stand-in maps: capacity like a BPF map, a write that fails on cue --- */

struct fake_map {
	unsigned char *data;
	size_t n, ksz, vsz, cap;
};

struct fake {
	struct fake_map m[CMAP_N];
	long fail_at;	/* the op (counted from 1) that fails with -EIO; 0 never */
	long ops;
};

static long fake_find(struct fake_map *f, const void *k)
{
	for (size_t i = 0; i < f->n; i++)
		if (!memcmp(f->data + i * (f->ksz + f->vsz), k, f->ksz))
			return (long)i;
	return -1;
}

static int fake_update(void *ctx, enum compile_map m, const void *k, const void *v)
{
	struct fake *fk = ctx;
	struct fake_map *f = &fk->m[m];
	long at;

	if (++fk->ops == fk->fail_at)
		return -EIO;
	at = fake_find(f, k);
	if (at < 0) {
		if (f->n == f->cap)
			return -E2BIG;
		at = (long)f->n++;
		memcpy(f->data + (size_t)at * (f->ksz + f->vsz), k, f->ksz);
	}
	memcpy(f->data + (size_t)at * (f->ksz + f->vsz) + f->ksz, v, f->vsz);
	return 0;
}

static int fake_del(void *ctx, enum compile_map m, const void *k)
{
	struct fake *fk = ctx;
	struct fake_map *f = &fk->m[m];
	size_t esz = f->ksz + f->vsz;
	long at;

	if (++fk->ops == fk->fail_at)
		return -EIO;
	at = fake_find(f, k);
	if (at >= 0) {
		memmove(f->data + (size_t)at * esz, f->data + (size_t)(at + 1) * esz,
			(f->n - (size_t)at - 1) * esz);
		f->n--;
	}
	return 0;
}

static void fake_init(struct fake *fk, size_t policy_cap)
{
	static const size_t ksz[CMAP_N] = { sizeof(struct sluice_endpoint_key),
					    sizeof(struct sluice_ipcache_key),
					    sizeof(struct sluice_policy_key),
					    sizeof(struct sluice_policy_key) };
	static const size_t vsz[CMAP_N] = { sizeof(struct sluice_endpoint),
					    sizeof(struct sluice_ipcache_value),
					    sizeof(struct sluice_policy_value),
					    sizeof(struct sluice_policy_value) };

	memset(fk, 0, sizeof(*fk));
	for (int m = 0; m < CMAP_N; m++) {
		fk->m[m].ksz = ksz[m];
		fk->m[m].vsz = vsz[m];
		fk->m[m].cap = m == CMAP_ALLOW || m == CMAP_DENY ? policy_cap : 1024;
		fk->m[m].data = calloc(fk->m[m].cap, ksz[m] + vsz[m]);
	}
}

static void fake_free(struct fake *fk)
{
	for (int m = 0; m < CMAP_N; m++)
		free(fk->m[m].data);
}

/* A copy of every map's contents, sorted, to compare states. */
static int cmp_entry(const void *a, const void *b, void *sz)
{
	return memcmp(a, b, *(size_t *)sz);
}

static void fake_snapshot(const struct fake *fk, struct fake *out)
{
	*out = *fk;
	for (int m = 0; m < CMAP_N; m++) {
		size_t esz = fk->m[m].ksz + fk->m[m].vsz;

		out->m[m].data = malloc(fk->m[m].cap * esz + 1);
		memcpy(out->m[m].data, fk->m[m].data, fk->m[m].n * esz);
		qsort_r(out->m[m].data, out->m[m].n, esz, cmp_entry, &esz);
	}
}

static void assert_same(const struct fake *a, const struct fake *b)
{
	struct fake x, y;

	fake_snapshot(a, &x);
	fake_snapshot(b, &y);
	for (int m = 0; m < CMAP_N; m++) {
		assert_int_equal(x.m[m].n, y.m[m].n);
		assert_memory_equal(x.m[m].data, y.m[m].data, x.m[m].n * (x.m[m].ksz + x.m[m].vsz));
	}
	fake_free(&x);
	fake_free(&y);
}

static struct compiler *fake_compiler(struct fake *fk)
{
	struct compile_maps m = { .update = fake_update, .del = fake_del, .ctx = fk };
	struct compiler *c = NULL;
	char err[256];

	for (int i = 0; i < CMAP_N; i++)
		m.cap[i] = fk->m[i].cap;
	assert_int_equal(compiler_open_maps(&c, &m, err, sizeof(err)), 0);
	return c;
}

/* ---- a small world: pods and policies from JSON ------------------------- */

struct world {
	struct pol_pod pods[64];
	const struct pol_pod *podp[64];
	struct pol_policy *pol[8];
	const struct pol_policy *polp[8];
	struct pol_namespace ns;
	const struct pol_namespace *nsp[1];
	struct pol_world w;
	struct compile_ep eps[64];
	size_t neps;
};

static void world_pod(struct world *wd, const char *name, const char *labels_json, uint32_t ip,
		      bool local)
{
	struct pol_pod *p = &wd->pods[wd->w.npods];
	json_t *l = json_loads(labels_json, 0, NULL);
	char err[256];

	p->ns = strdup("default");
	p->name = strdup(name);
	assert_int_equal(pol_labels_parse(l, "labels", &p->labels, err, sizeof(err)), 0);
	json_decref(l);
	p->ip = ip;
	wd->podp[wd->w.npods++] = p;
	if (local) {
		wd->eps[wd->neps] = (struct compile_ep){ .ip = ip, .ifindex = 100 + (int)wd->neps,
							.pod = p };
		wd->neps++;
	}
}

static void world_policy(struct world *wd, const char *json)
{
	json_t *o = json_loads(json, 0, NULL);
	char err[256];

	assert_non_null(o);
	if (pol_parse(o, &wd->pol[wd->w.npol], err, sizeof(err)))
		fail_msg("policy: %s", err);
	json_decref(o);
	wd->polp[wd->w.npol] = wd->pol[wd->w.npol];
	wd->w.npol++;
}

static void world_init(struct world *wd)
{
	memset(wd, 0, sizeof(*wd));
	wd->ns.name = strdup("default");
	wd->nsp[0] = &wd->ns;
	wd->w.ns = wd->nsp;
	wd->w.nns = 1;
	wd->w.pods = wd->podp;
	wd->w.pol = wd->polp;
}

static void world_free(struct world *wd)
{
	if (!wd->ns.name)
		return;
	for (size_t i = 0; i < wd->w.npods; i++) {
		free(wd->pods[i].ns);
		free(wd->pods[i].name);
		pol_labels_free(&wd->pods[i].labels);
	}
	for (size_t i = 0; i < wd->w.npol; i++)
		pol_free(wd->pol[i]);
	free(wd->ns.name);
}

/* victim: isolated for ingress, friend allowed on TCP 80. */
#define POL_BASE                                                                           \
	"{\"apiVersion\":\"networking.k8s.io/v1\",\"kind\":\"NetworkPolicy\","           \
	"\"metadata\":{\"namespace\":\"default\",\"name\":\"base\"},"                      \
	"\"spec\":{\"podSelector\":{\"matchLabels\":{\"app\":\"victim\"}},"                \
	"\"ingress\":[{\"from\":[{\"podSelector\":{\"matchLabels\":{\"app\":\"friend\"}}}]," \
	"\"ports\":[{\"protocol\":\"TCP\",\"port\":80}]}]}}"

/* Also selects victim; 40 ports from anyone: too big for 16 entries. */
static char *pol_huge(const char *name, int nports)
{
	char *buf = malloc(8192), *p = buf;

	p += sprintf(p, "{\"apiVersion\":\"networking.k8s.io/v1\",\"kind\":\"NetworkPolicy\","
			"\"metadata\":{\"namespace\":\"default\",\"name\":\"%s\"},"
			"\"spec\":{\"podSelector\":{\"matchLabels\":{\"app\":\"victim\"}},"
			"\"ingress\":[{\"ports\":[", name);
	for (int i = 0; i < nports; i++)
		p += sprintf(p, "%s{\"protocol\":\"TCP\",\"port\":%d}", i ? "," : "", 1001 + 2 * i);
	sprintf(p, "]}]}}");
	return buf;
}

static void base_world(struct world *wd)
{
	world_init(wd);
	world_pod(wd, "victim", "{\"app\":\"victim\"}", 0x0a000002, true);
	world_pod(wd, "friend", "{\"app\":\"friend\"}", 0x0a000003, true);
	world_pod(wd, "attacker", "{\"app\":\"attacker\"}", 0x0a000004, true);
	world_policy(wd, POL_BASE);
}

static int sync_world(struct compiler *c, struct world *wd, struct identities *ids,
		      unsigned flags, char *err, size_t errlen)
{
	return compiler_sync(c, &wd->w, wd->eps, wd->neps, NULL, 0, ids, flags, NULL, err, errlen);
}

static uint32_t ep_flags(struct fake *fk, uint32_t ip)
{
	struct sluice_endpoint_key k = { .ip4 = htonl(ip) };
	long at = fake_find(&fk->m[CMAP_ENDPOINTS], &k);

	assert_true(at >= 0);
	return ((struct sluice_endpoint *)(fk->m[CMAP_ENDPOINTS].data +
					   (size_t)at * (fk->m[CMAP_ENDPOINTS].ksz +
							 fk->m[CMAP_ENDPOINTS].vsz) +
					   fk->m[CMAP_ENDPOINTS].ksz))->flags;
}

static uint32_t ep_identity(struct fake *fk, uint32_t ip)
{
	struct sluice_endpoint_key k = { .ip4 = htonl(ip) };
	long at = fake_find(&fk->m[CMAP_ENDPOINTS], &k);

	assert_true(at >= 0);
	return ((struct sluice_endpoint *)(fk->m[CMAP_ENDPOINTS].data +
					   (size_t)at * (fk->m[CMAP_ENDPOINTS].ksz +
							 fk->m[CMAP_ENDPOINTS].vsz) +
					   fk->m[CMAP_ENDPOINTS].ksz))->identity;
}

/* Allow entries of endpoint ifindex ep. */
static size_t allow_entries(struct fake *fk, int ep)
{
	size_t n = 0;

	for (size_t i = 0; i < fk->m[CMAP_ALLOW].n; i++) {
		const struct sluice_policy_key *k =
			(const void *)(fk->m[CMAP_ALLOW].data +
				       i * (fk->m[CMAP_ALLOW].ksz + fk->m[CMAP_ALLOW].vsz));

		n += k->ep == (uint32_t)ep;
	}
	return n;
}

static void test_oversized_policy_left_out_closed(void **state)
{
	struct fake fk;
	struct world wd;
	struct identities *ids;
	struct compiler *c;
	const struct compile_excluded *ex;
	char err[1024], *huge = pol_huge("huge", 40);

	(void)state;
	fake_init(&fk, 16);
	c = fake_compiler(&fk);
	assert_int_equal(identities_open(&ids, NULL, err, sizeof(err)), 0);
	base_world(&wd);
	world_policy(&wd, huge);
	/* Not strict (Kubernetes events, start-up): the rest is enforced. */
	assert_int_equal(sync_world(c, &wd, ids, 0, err, sizeof(err)), 0);
	assert_int_equal(compiler_excluded(c, &ex), 1);
	assert_string_equal(ex[0].object, "NetworkPolicy default/huge");
	assert_non_null(strstr(ex[0].why, "--policy-map-size"));
	assert_non_null(strstr(ex[0].why, "capacity 16"));
	/* victim stays isolated; only base's one entry (friend, TCP 80). */
	assert_true(ep_flags(&fk, 0x0a000002) & SLUICE_EP_F_ISO_INGRESS);
	assert_int_equal(allow_entries(&fk, 100), 1);
	compiler_close(c);
	identities_close(ids);
	world_free(&wd);
	fake_free(&fk);
	free(huge);
}

static void test_strict_refuses_and_keeps_state(void **state)
{
	struct fake fk, before;
	struct world wd, wd2;
	struct identities *ids;
	struct compiler *c;
	const struct compile_excluded *ex;
	char err[1024], *huge = pol_huge("huge", 40);

	(void)state;
	fake_init(&fk, 16);
	c = fake_compiler(&fk);
	assert_int_equal(identities_open(&ids, NULL, err, sizeof(err)), 0);
	base_world(&wd);
	assert_int_equal(sync_world(c, &wd, ids, COMPILE_STRICT, err, sizeof(err)), 0);
	fake_snapshot(&fk, &before);
	base_world(&wd2);
	world_policy(&wd2, huge);
	assert_int_equal(sync_world(c, &wd2, ids, COMPILE_STRICT, err, sizeof(err)), -ENOSPC);
	assert_non_null(strstr(err, "NetworkPolicy default/huge does not fit"));
	assert_non_null(strstr(err, "previous state stays enforced"));
	assert_same(&fk, &before);
	assert_int_equal(compiler_excluded(c, &ex), 0);
	/* A strict change that leaves out only what was left out already
	 * passes: first let it in unstrictly, then apply something else. */
	assert_int_equal(sync_world(c, &wd2, ids, 0, err, sizeof(err)), 0);
	assert_int_equal(compiler_excluded(c, &ex), 1);
	assert_int_equal(sync_world(c, &wd2, ids, COMPILE_STRICT, err, sizeof(err)), 0);
	compiler_close(c);
	identities_close(ids);
	world_free(&wd);
	world_free(&wd2);
	fake_free(&fk);
	fake_free(&before);
	free(huge);
}

/* Fewer entries than the map holds, but old and new together do not fit
 * between the steps: stale entries go first, and the sync succeeds. */
static void test_full_map_swaps(void **state)
{
	struct fake fk;
	struct world wd, wd2;
	struct identities *ids;
	struct compiler *c;
	char err[1024], *a = pol_huge("huge", 7), *b;

	(void)state;
	fake_init(&fk, 10);
	c = fake_compiler(&fk);
	assert_int_equal(identities_open(&ids, NULL, err, sizeof(err)), 0);
	base_world(&wd);
	world_policy(&wd, a);
	assert_int_equal(sync_world(c, &wd, ids, COMPILE_STRICT, err, sizeof(err)), 0);
	assert_int_equal(allow_entries(&fk, 100), 8);
	b = pol_huge("huge", 8);
	/* other port numbers: shift them */
	for (char *p = strstr(b, "\"port\":"); p; p = strstr(p + 1, "\"port\":"))
		p[7] = '2';
	base_world(&wd2);
	world_policy(&wd2, b);
	assert_int_equal(sync_world(c, &wd2, ids, COMPILE_STRICT, err, sizeof(err)), 0);
	assert_int_equal(allow_entries(&fk, 100), 9);
	compiler_close(c);
	identities_close(ids);
	world_free(&wd);
	world_free(&wd2);
	fake_free(&fk);
	free(a);
	free(b);
}

static void test_write_failure_rolls_back(void **state)
{
	struct fake fk, before;
	struct world wd, wd2;
	struct identities *ids;
	struct compiler *c;
	char err[1024], *more = pol_huge("more", 3);
	long at;

	(void)state;
	fake_init(&fk, 64);
	c = fake_compiler(&fk);
	assert_int_equal(identities_open(&ids, NULL, err, sizeof(err)), 0);
	base_world(&wd);
	assert_int_equal(sync_world(c, &wd, ids, 0, err, sizeof(err)), 0);
	fake_snapshot(&fk, &before);
	/* The new state: more rules, the friend pod gone. */
	world_init(&wd2);
	world_pod(&wd2, "victim", "{\"app\":\"victim\"}", 0x0a000002, true);
	world_pod(&wd2, "attacker", "{\"app\":\"attacker\"}", 0x0a000004, true);
	world_policy(&wd2, POL_BASE);
	world_policy(&wd2, more);
	/* Fail each write in turn: every time, the previous state is back. */
	for (at = 1; at < 100; at++) {
		fk.ops = 0;
		fk.fail_at = at;
		if (!sync_world(c, &wd2, ids, 0, err, sizeof(err)))
			break; /* past the last write: the change went through */
		assert_non_null(strstr(err, "previous state was restored"));
		assert_same(&fk, &before);
		assert_true(ep_flags(&fk, 0x0a000002) & SLUICE_EP_F_ISO_INGRESS);
	}
	/* every write of the change was failed once: adds, removals */
	assert_true(at > 5);
	/* base has no peer left (friend is gone); more's three ports stay */
	assert_int_equal(allow_entries(&fk, 100), 3);
	compiler_close(c);
	identities_close(ids);
	world_free(&wd);
	world_free(&wd2);
	fake_free(&fk);
	fake_free(&before);
	free(more);
}

/* A left-out policy with Deny rules: the pods it selects get no allow at
 * all in that direction (its denies would have overridden them). */
static void test_left_out_deny_policy_allows_nothing(void **state)
{
	struct fake fk;
	struct world wd;
	struct identities *ids;
	struct compiler *c;
	char err[1024], pol[8192], *p = pol;

	(void)state;
	fake_init(&fk, 16);
	c = fake_compiler(&fk);
	assert_int_equal(identities_open(&ids, NULL, err, sizeof(err)), 0);
	base_world(&wd);
	p += sprintf(p, "{\"apiVersion\":\"sluice.io/v1alpha1\",\"kind\":\"SluiceNetworkPolicy\","
			"\"metadata\":{\"namespace\":\"default\",\"name\":\"deny-many\"},"
			"\"spec\":{\"podSelector\":{\"matchLabels\":{\"app\":\"victim\"}},"
			"\"ingress\":[{\"action\":\"Deny\",\"ports\":[");
	for (int i = 0; i < 40; i++)
		p += sprintf(p, "%s{\"protocol\":\"TCP\",\"port\":%d}", i ? "," : "", 2001 + 2 * i);
	sprintf(p, "]}]}}");
	world_policy(&wd, pol);
	assert_int_equal(sync_world(c, &wd, ids, 0, err, sizeof(err)), 0);
	assert_true(ep_flags(&fk, 0x0a000002) & SLUICE_EP_F_ISO_INGRESS);
	assert_int_equal(allow_entries(&fk, 100), 0);
	assert_int_equal(fk.m[CMAP_DENY].n, 0);
	compiler_close(c);
	identities_close(ids);
	world_free(&wd);
	fake_free(&fk);
}

/* A local pod without its Pod object (Kubernetes mode): isolated both
 * ways, no rules, and no peer selector (not even {}) matches it. */
static void test_labels_unknown_isolated(void **state)
{
	struct fake fk;
	struct world wd;
	struct identities *ids;
	struct compiler *c;
	char err[1024];

	(void)state;
	fake_init(&fk, 64);
	c = fake_compiler(&fk);
	assert_int_equal(identities_open(&ids, NULL, err, sizeof(err)), 0);
	world_init(&wd);
	world_pod(&wd, "server", "{\"app\":\"server\"}", 0x0a000002, true);
	world_pod(&wd, "newpod", "{}", 0x0a000005, true);
	wd.pods[1].labels_unknown = true;
	world_policy(&wd, "{\"apiVersion\":\"networking.k8s.io/v1\",\"kind\":\"NetworkPolicy\","
			  "\"metadata\":{\"namespace\":\"default\",\"name\":\"from-all-pods\"},"
			  "\"spec\":{\"podSelector\":{},"
			  "\"ingress\":[{\"from\":[{\"podSelector\":{}}]}]}}");
	assert_int_equal(sync_world(c, &wd, ids, 0, err, sizeof(err)), 0);
	assert_int_equal(ep_flags(&fk, 0x0a000005),
			 SLUICE_EP_F_ISO_INGRESS | SLUICE_EP_F_ISO_EGRESS);
	assert_int_equal(ep_identity(&fk, 0x0a000005), SLUICE_ID_UNKNOWN);
	assert_int_equal(allow_entries(&fk, 101), 0);
	/* server allows its own identity only: one entry, not UNKNOWN's */
	assert_int_equal(allow_entries(&fk, 100), 1);
	for (size_t i = 0; i < fk.m[CMAP_ALLOW].n; i++) {
		const struct sluice_policy_key *k =
			(const void *)(fk.m[CMAP_ALLOW].data +
				       i * (fk.m[CMAP_ALLOW].ksz + fk.m[CMAP_ALLOW].vsz));

		assert_int_not_equal(k->identity, SLUICE_ID_UNKNOWN);
	}
	/* Its labels arrive: the normal policy applies. */
	wd.pods[1].labels_unknown = false;
	assert_int_equal(sync_world(c, &wd, ids, 0, err, sizeof(err)), 0);
	assert_int_equal(ep_flags(&fk, 0x0a000005), SLUICE_EP_F_ISO_INGRESS);
	assert_int_equal(allow_entries(&fk, 101), 2);
	compiler_close(c);
	identities_close(ids);
	world_free(&wd);
	fake_free(&fk);
}

/* A pod's bandwidth flags are its endpoint's (agent/bandwidth.c), next to
 * whatever policy gives it, also while its labels are unknown; a changed
 * limit rewrites the entry at the next sync (a re-ADD). */
static void test_bandwidth_flags(void **state)
{
	const __u32 bw = SLUICE_EP_F_BW_EGRESS | SLUICE_EP_F_BW_INGRESS;
	struct fake fk;
	struct world wd;
	struct identities *ids;
	struct compiler *c;
	char err[1024];

	(void)state;
	fake_init(&fk, 64);
	c = fake_compiler(&fk);
	assert_int_equal(identities_open(&ids, NULL, err, sizeof(err)), 0);
	world_init(&wd);
	world_pod(&wd, "server", "{\"app\":\"server\"}", 0x0a000002, true);
	world_pod(&wd, "newpod", "{}", 0x0a000005, true);
	world_pod(&wd, "plain", "{}", 0x0a000006, true);
	wd.pods[1].labels_unknown = true;
	wd.eps[0].bw_flags = SLUICE_EP_F_BW_EGRESS;
	wd.eps[1].bw_flags = SLUICE_EP_F_BW_INGRESS;
	world_policy(&wd, "{\"apiVersion\":\"networking.k8s.io/v1\",\"kind\":\"NetworkPolicy\","
			  "\"metadata\":{\"namespace\":\"default\",\"name\":\"server\"},"
			  "\"spec\":{\"podSelector\":{\"matchLabels\":{\"app\":\"server\"}},"
			  "\"ingress\":[{\"from\":[{\"podSelector\":{}}]}]}}");
	assert_int_equal(sync_world(c, &wd, ids, 0, err, sizeof(err)), 0);
	assert_int_equal(ep_flags(&fk, 0x0a000002), SLUICE_EP_F_ISO_INGRESS | SLUICE_EP_F_BW_EGRESS);
	assert_int_equal(ep_flags(&fk, 0x0a000005), SLUICE_EP_F_ISO_INGRESS |
			 SLUICE_EP_F_ISO_EGRESS | SLUICE_EP_F_BW_INGRESS);
	assert_int_equal(ep_flags(&fk, 0x0a000006) & bw, 0);
	wd.eps[0].bw_flags = 0;
	wd.eps[2].bw_flags = bw;
	assert_int_equal(sync_world(c, &wd, ids, 0, err, sizeof(err)), 0);
	assert_int_equal(ep_flags(&fk, 0x0a000002), SLUICE_EP_F_ISO_INGRESS);
	assert_int_equal(ep_flags(&fk, 0x0a000006), bw);
	compiler_close(c);
	identities_close(ids);
	world_free(&wd);
	fake_free(&fk);
}

/* Many pods of one identity as peers: one entry per identity and port. */
static void test_one_entry_per_peer_identity(void **state)
{
	struct fake fk;
	struct world wd;
	struct identities *ids;
	struct compiler *c;
	char err[1024], name[32];

	(void)state;
	fake_init(&fk, 64);
	c = fake_compiler(&fk);
	assert_int_equal(identities_open(&ids, NULL, err, sizeof(err)), 0);
	base_world(&wd);
	for (int i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "friend-%d", i);
		world_pod(&wd, name, "{\"app\":\"friend\"}", 0x0a000100 + (uint32_t)i, false);
	}
	assert_int_equal(sync_world(c, &wd, ids, 0, err, sizeof(err)), 0);
	assert_int_equal(allow_entries(&fk, 100), 1);
	compiler_close(c);
	identities_close(ids);
	world_free(&wd);
	fake_free(&fk);
}

/* Every allow entry's rule reference names, through compiler_policy_ref,
 * the policy and rule that made it (what flow records quote); 0 and
 * SLUICE_FLOW_RULE_DEFAULT name none. */
static void test_policy_ref_names_the_rule(void **state)
{
	struct fake fk;
	struct world wd;
	struct identities *ids;
	struct compiler *c;
	char err[1024];
	size_t seen_base = 0, seen_second = 0;

	(void)state;
	fake_init(&fk, 64);
	c = fake_compiler(&fk);
	assert_int_equal(identities_open(&ids, NULL, err, sizeof(err)), 0);
	base_world(&wd);
	world_policy(&wd, "{\"apiVersion\":\"networking.k8s.io/v1\",\"kind\":\"NetworkPolicy\","
			  "\"metadata\":{\"namespace\":\"default\",\"name\":\"second\"},"
			  "\"spec\":{\"podSelector\":{\"matchLabels\":{\"app\":\"victim\"}},"
			  "\"ingress\":[{\"ports\":[{\"port\":1}]},"
			  "{\"ports\":[{\"protocol\":\"UDP\",\"port\":443}]}]}}");
	assert_int_equal(sync_world(c, &wd, ids, 0, err, sizeof(err)), 0);
	for (size_t i = 0; i < fk.m[CMAP_ALLOW].n; i++) {
		const unsigned char *at = fk.m[CMAP_ALLOW].data +
					  i * (fk.m[CMAP_ALLOW].ksz + fk.m[CMAP_ALLOW].vsz);
		const struct sluice_policy_key *k = (const void *)at;
		const struct sluice_policy_value *v = (const void *)(at + fk.m[CMAP_ALLOW].ksz);
		unsigned rule = 99;
		const struct compile_polref *p = compiler_policy_ref(c, v->rule, &rule);

		assert_non_null(p);
		assert_int_equal(p->kind, POL_K8S);
		assert_string_equal(p->ns, "default");
		if (!strcmp(p->name, "base")) {
			assert_int_equal(rule, 0);
			assert_int_equal(ntohs(k->port), 80);
			seen_base++;
		} else {
			assert_string_equal(p->name, "second");
			assert_int_equal(rule, k->proto == IPPROTO_UDP ? 1 : 0);
			assert_int_equal(ntohs(k->port), k->proto == IPPROTO_UDP ? 443 : 1);
			seen_second++;
		}
	}
	assert_true(seen_base > 0);
	assert_true(seen_second >= 2);
	assert_null(compiler_policy_ref(c, 0, NULL));
	assert_null(compiler_policy_ref(c, SLUICE_FLOW_RULE_DEFAULT, NULL));
	assert_null(compiler_policy_ref(c, (3u << 12) | 0, NULL));
	compiler_close(c);
	identities_close(ids);
	world_free(&wd);
	fake_free(&fk);
}

/* Egress to a named port: one entry per distinct number among the peer
 * identity's pods, not per pod. */
static void test_named_port_per_distinct_number(void **state)
{
	static struct pol_container_port http80 = { .name = "http", .proto = 6, .port = 80 };
	static struct pol_container_port http81 = { .name = "http", .proto = 6, .port = 81 };
	struct fake fk;
	struct world wd;
	struct identities *ids;
	struct compiler *c;
	char err[1024], name[32];

	(void)state;
	fake_init(&fk, 64);
	c = fake_compiler(&fk);
	assert_int_equal(identities_open(&ids, NULL, err, sizeof(err)), 0);
	world_init(&wd);
	world_pod(&wd, "client", "{\"app\":\"client\"}", 0x0a000002, true);
	for (int i = 0; i < 30; i++) {
		snprintf(name, sizeof(name), "web-%d", i);
		world_pod(&wd, name, "{\"app\":\"web\"}", 0x0a000100 + (uint32_t)i, false);
		wd.pods[wd.w.npods - 1].nports = 1;
		wd.pods[wd.w.npods - 1].ports = i % 3 ? &http80 : &http81;
	}
	world_policy(&wd, "{\"apiVersion\":\"networking.k8s.io/v1\",\"kind\":\"NetworkPolicy\","
			  "\"metadata\":{\"namespace\":\"default\",\"name\":\"to-web\"},"
			  "\"spec\":{\"podSelector\":{\"matchLabels\":{\"app\":\"client\"}},"
			  "\"policyTypes\":[\"Egress\"],"
			  "\"egress\":[{\"to\":[{\"podSelector\":{\"matchLabels\":{\"app\":\"web\"}}}],"
			  "\"ports\":[{\"protocol\":\"TCP\",\"port\":\"http\"}]}]}}");
	assert_int_equal(sync_world(c, &wd, ids, 0, err, sizeof(err)), 0);
	assert_int_equal(allow_entries(&fk, 100), 2);
	for (size_t i = 0; i < wd.w.npods; i++)
		wd.pods[i].ports = NULL;
	compiler_close(c);
	identities_close(ids);
	world_free(&wd);
	fake_free(&fk);
}

/* ---- identities ------------------------------------------------------- */

static time_t fake_now_v;
static time_t fake_now(void)
{
	return fake_now_v;
}

static void labels_of(struct pol_labels *l, const char *json)
{
	json_t *o = json_loads(json, 0, NULL);
	char err[128];

	assert_int_equal(pol_labels_parse(o, "labels", l, err, sizeof(err)), 0);
	json_decref(o);
}

static void test_identity_release_grace_reuse(void **state)
{
	const struct identity_limits lim = { .label_first = 256, .label_end = 259,
					     .cidr_first = 259, .cidr_end = 261,
					     .grace_s = 300, .now = fake_now };
	struct pol_labels a, b, c, d;
	struct identities *ids;
	uint32_t ia, ib, ic, id;
	size_t released;
	char err[128];

	(void)state;
	fake_now_v = 1000000;
	labels_of(&a, "{\"app\":\"a\"}");
	labels_of(&b, "{\"app\":\"b\"}");
	labels_of(&c, "{\"app\":\"c\"}");
	labels_of(&d, "{\"app\":\"d\"}");
	assert_int_equal(identities_open(&ids, NULL, err, sizeof(err)), 0);
	identities_set_limits(ids, &lim);
	identities_begin(ids);
	ia = identity_of_pod(ids, "default", &a);
	ib = identity_of_pod(ids, "default", &b);
	ic = identity_of_pod(ids, "default", &c);
	assert_int_equal(ia, 256);
	assert_int_equal(ib, 257);
	assert_int_equal(ic, 258);
	/* The label range is full: d fails (closed), never a CIDR number. */
	assert_int_equal(identity_of_pod(ids, "default", &d), 0);
	assert_int_equal(identities_end(ids), 0);

	/* a's last pod goes: released, not reusable yet. */
	identities_begin(ids);
	identity_of_pod(ids, "default", &b);
	identity_of_pod(ids, "default", &c);
	assert_int_equal(identities_end(ids), 0);
	assert_int_equal(identities_count(ids, &released), 2);
	assert_int_equal(released, 1);
	fake_now_v += 299;
	identities_begin(ids);
	identity_of_pod(ids, "default", &b);
	identity_of_pod(ids, "default", &c);
	assert_int_equal(identity_of_pod(ids, "default", &d), 0);
	assert_int_equal(identities_end(ids), 0);

	/* a comes back within its grace period: the same number. */
	identities_begin(ids);
	assert_int_equal(identity_of_pod(ids, "default", &a), ia);
	identity_of_pod(ids, "default", &b);
	identity_of_pod(ids, "default", &c);
	assert_int_equal(identities_end(ids), 0);

	/* a goes again; after the grace period its number serves d. */
	identities_begin(ids);
	identity_of_pod(ids, "default", &b);
	identity_of_pod(ids, "default", &c);
	assert_int_equal(identities_end(ids), 0);
	fake_now_v += 300;
	identities_begin(ids);
	identity_of_pod(ids, "default", &b);
	identity_of_pod(ids, "default", &c);
	assert_int_equal(identities_end(ids), 0); /* the grace ends here */
	identities_begin(ids);
	identity_of_pod(ids, "default", &b);
	identity_of_pod(ids, "default", &c);
	id = identity_of_pod(ids, "default", &d);
	assert_int_equal(id, ia);
	assert_int_equal(identities_end(ids), 0);
	identities_close(ids);
	pol_labels_free(&a);
	pol_labels_free(&b);
	pol_labels_free(&c);
	pol_labels_free(&d);
}

static void test_identity_ranges_never_overlap(void **state)
{
	const struct identity_limits lim = { .label_first = 256, .label_end = 258,
					     .cidr_first = 258, .cidr_end = 260,
					     .grace_s = 300, .now = fake_now };
	struct identities *ids;
	struct cidr4 c[3] = { { .net = 0x0a000000, .prefix = 8 },
			      { .net = 0xc0a80000, .prefix = 16 },
			      { .net = 0xac100000, .prefix = 12 } };
	char err[128];

	(void)state;
	assert_int_equal(identities_open(&ids, NULL, err, sizeof(err)), 0);
	identities_set_limits(ids, &lim);
	identities_begin(ids);
	assert_int_equal(identity_of_cidr(ids, &c[0]), 258);
	assert_int_equal(identity_of_cidr(ids, &c[1]), 259);
	assert_int_equal(identity_of_cidr(ids, &c[2]), 0);
	assert_int_equal(identities_end(ids), 0);
	identities_close(ids);
}

/* The CIDR range exhausted: the policy naming the prefix without a number
 * is left out (its except would not be carved out), the others stay. */
static void test_cidr_exhaustion_fails_policy_closed(void **state)
{
	const struct identity_limits lim = { .label_first = 256, .label_end = 300,
					     .cidr_first = 300, .cidr_end = 301,
					     .grace_s = 300, .now = fake_now };
	struct fake fk;
	struct world wd;
	struct identities *ids;
	struct compiler *c;
	const struct compile_excluded *ex;
	char err[1024];

	(void)state;
	fake_init(&fk, 64);
	c = fake_compiler(&fk);
	assert_int_equal(identities_open(&ids, NULL, err, sizeof(err)), 0);
	identities_set_limits(ids, &lim);
	base_world(&wd);
	world_policy(&wd, "{\"apiVersion\":\"networking.k8s.io/v1\",\"kind\":\"NetworkPolicy\","
			  "\"metadata\":{\"namespace\":\"default\",\"name\":\"net\"},"
			  "\"spec\":{\"podSelector\":{\"matchLabels\":{\"app\":\"victim\"}},"
			  "\"ingress\":[{\"from\":[{\"ipBlock\":{\"cidr\":\"10.0.0.0/8\","
			  "\"except\":[\"10.0.0.0/24\"]}}]}]}}");
	assert_int_equal(sync_world(c, &wd, ids, 0, err, sizeof(err)), 0);
	assert_int_equal(compiler_excluded(c, &ex), 1);
	assert_string_equal(ex[0].object, "NetworkPolicy default/net");
	assert_true(ep_flags(&fk, 0x0a000002) & SLUICE_EP_F_ISO_INGRESS);
	assert_int_equal(allow_entries(&fk, 100), 1);
	compiler_close(c);
	identities_close(ids);
	world_free(&wd);
	fake_free(&fk);
}

/* The node index answers as the scan does: random node pod CIDRs, disjoint
 * (the index) or overlapping (the scan, the first node wins), queried at
 * and around their edges, adjacent ranges, absent ranges and 0/~0. */
static void test_node_index_matches_scan(void **state)
{
	enum { MAXN = 64, QUERIES = 600 };
	struct compile_node nodes[MAXN];
	size_t found = 0, absent = 0, indexed = 0;

	(void)state;
	srand(12);
	for (int round = 0; round < 300; round++) {
		struct node_index x;
		size_t n = (size_t)(rand() % MAXN);
		int overlap = round % 4 == 0;

		for (size_t i = 0; i < n; i++) {
			/* Disjoint rounds: /24s in 10.0.0.0/16 at distinct
			 * slots, often next to each other; else any prefix. */
			int prefix = overlap ? 8 + rand() % 25 : 24;
			uint32_t net = overlap ? (0x0a000000u | ((uint32_t)rand() & 0xffffu) << 8)
					       : 0x0a000000u | (uint32_t)(i * 2 + (size_t)(rand() % 2)) << 8;

			net &= ~0u << (32 - prefix);
			nodes[i] = (struct compile_node){ .pod_cidr = { .net = net, .prefix = prefix },
							  .ip = 0xc0a80000u + (uint32_t)i };
		}
		if (round == 1 && n) /* the whole space */
			nodes[0].pod_cidr = (struct cidr4){ .net = 0, .prefix = 0 };
		assert_int_equal(node_index_build(&x, nodes, n), 0);
		indexed += x.by_start != NULL;
		if (!overlap && round != 1 && n >= 2)
			assert_non_null(x.by_start);
		for (int j = 0; j < QUERIES; j++) {
			struct cidr4 q;
			const struct compile_node *a, *b;

			if (n && j % 3) {
				/* at, just before or just after a node's edges */
				const struct cidr4 *c = &nodes[(size_t)rand() % n].pod_cidr;
				uint32_t size = c->prefix ? 1u << (32 - c->prefix) : 0;
				uint32_t pick[] = { c->net, c->net - 1, c->net + size - 1, c->net + size,
						    c->net + (size ? (uint32_t)rand() % size : (uint32_t)rand()) };

				q.net = pick[rand() % 5];
				q.prefix = 32 - rand() % 3 * 4;	/* a host, a /28, a /24 */
				q.net &= ~0u << (32 - q.prefix);
			} else {
				uint32_t edge[] = { 0, ~0u, 0x0a000000u, (uint32_t)rand() };

				q = (struct cidr4){ .net = edge[rand() % 4], .prefix = 32 };
			}
			a = node_index_find(&x, &q);
			b = node_scan_find(nodes, n, &q);
			if (a != b)
				fail_msg("round %d, %zu nodes: %08x/%d indexed node %td, scan node %td",
					 round, n, q.net, q.prefix, a ? a - nodes : -1, b ? b - nodes : -1);
			found += b != NULL;
			absent += b == NULL;
		}
		node_index_free(&x);
	}
	assert_true(found > 1000 && absent > 1000 && indexed > 100);
}

/* Numbers the pinned maps hold that the table does not know (it was not
 * saved before a crash) are held back; numbers it knows keep their
 * meaning; numbers outside both ranges are ignored. */
static void test_identity_reserve(void **state)
{
	struct pol_labels a = { 0 }, b = { 0 };
	struct identities *ids;
	uint32_t known, nb, unknown;
	size_t released;
	char err[256];
	json_t *all, *it;
	size_t i, reserved = 0, known_seen = 0;

	(void)state;
	assert_int_equal(identities_open(&ids, NULL, err, sizeof(err)), 0);
	known = identity_of_pod(ids, "x", &a);
	assert_true(known >= SLUICE_ID_FIRST_LABEL);
	unknown = known + 5;
	{
		const uint32_t nums[] = { known, unknown, known, unknown, 3, known, 0 };

		assert_int_equal(identities_reserve(ids, nums, sizeof(nums) / sizeof(nums[0])), 0);
	}
	/* One known in use, one held back (released: in its grace period). */
	assert_int_equal(identities_count(ids, &released), 1);
	assert_int_equal(released, 1);
	all = identities_to_json(ids);
	json_array_foreach(all, i, it) {
		json_int_t id = json_integer_value(json_object_get(it, "id"));

		reserved += json_is_true(json_object_get(it, "reserved")) && id == unknown;
		known_seen += id == (json_int_t)known && json_object_get(it, "namespace");
	}
	json_decref(all);
	assert_int_equal(reserved, 1);
	assert_int_equal(known_seen, 1);
	/* The same label set keeps its number; a new one never gets the one
	 * held back (nor any below it: the next number moved past it). */
	assert_int_equal(identity_of_pod(ids, "x", &a), known);
	nb = identity_of_pod(ids, "y", &b);
	assert_true(nb > unknown);
	identities_close(ids);
}

/* A torn identities file (cut in half, emptied) does not stop the agent:
 * it is set aside, and with the pinned maps' numbers reserved no new label
 * set gets a number a live entry still uses. */
static void test_identity_file_torn(void **state)
{
	struct pol_labels a = { 0 }, b = { 0 }, c = { 0 };
	char dir[] = "/tmp/sluice-ids-XXXXXX", path[64], aside[80], err[256], cmd[96];
	struct identities *ids;
	uint32_t ia, ib, nc;
	struct stat st;

	(void)state;
	labels_of(&a, "{\"app\":\"a\"}");
	labels_of(&b, "{\"app\":\"b\"}");
	labels_of(&c, "{\"app\":\"c\"}");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/identities.json", dir);
	snprintf(aside, sizeof(aside), "%s.corrupt", path);
	for (int cut = 0; cut < 2; cut++) {
		assert_int_equal(identities_open(&ids, dir, err, sizeof(err)), 0);
		identities_begin(ids);
		ia = identity_of_pod(ids, "default", &a);
		ib = identity_of_pod(ids, "default", &b);
		assert_int_equal(identities_end(ids), 0);
		identities_close(ids);
		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(truncate(path, cut ? st.st_size / 2 : 0), 0);
		assert_int_equal(identities_open(&ids, dir, err, sizeof(err)), 0);
		assert_int_equal(stat(aside, &st), 0);
		{
			/* what compiler_reserve_identities reads from the maps */
			const uint32_t live[] = { ia, ib };

			assert_int_equal(identities_reserve(ids, live, 2), 0);
		}
		identities_begin(ids);
		nc = identity_of_pod(ids, "default", &c);
		assert_true(nc != 0);
		assert_int_not_equal(nc, ia);
		assert_int_not_equal(nc, ib);
		identities_close(ids);
		unlink(path);
		unlink(aside);
	}
	pol_labels_free(&a);
	pol_labels_free(&b);
	pol_labels_free(&c);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single_port),
		cmocka_unit_test(test_whole_field),
		cmocka_unit_test(test_aligned_block),
		cmocka_unit_test(test_ranges_exact),
		cmocka_unit_test(test_oversized_policy_left_out_closed),
		cmocka_unit_test(test_strict_refuses_and_keeps_state),
		cmocka_unit_test(test_full_map_swaps),
		cmocka_unit_test(test_write_failure_rolls_back),
		cmocka_unit_test(test_left_out_deny_policy_allows_nothing),
		cmocka_unit_test(test_labels_unknown_isolated),
		cmocka_unit_test(test_bandwidth_flags),
		cmocka_unit_test(test_one_entry_per_peer_identity),
		cmocka_unit_test(test_policy_ref_names_the_rule),
		cmocka_unit_test(test_named_port_per_distinct_number),
		cmocka_unit_test(test_identity_release_grace_reuse),
		cmocka_unit_test(test_identity_file_torn),
		cmocka_unit_test(test_identity_ranges_never_overlap),
		cmocka_unit_test(test_cidr_exhaustion_fails_policy_closed),
		cmocka_unit_test(test_node_index_matches_scan),
		cmocka_unit_test(test_identity_reserve),
	};

	return cmocka_run_group_tests_name("compile", tests, NULL, NULL);
}
