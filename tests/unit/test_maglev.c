// SPDX-License-Identifier: Apache-2.0
/*
 * Maglev tables (agent/maglev.c) and the flow hash every node shares
 * (include/sluice/lbhash.h): table sizes, full tables, even shares, the
 * same table from the same backends in any order, duplicates, how many
 * flows move when a backend goes or comes, and known answers the BPF port
 * of the hash must reproduce.
 *
 * "The same input" below means the same set of backend identities
 * (address, port), the same table size and the same seed; the order of the
 * caller's array and duplicates in it do not matter.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "maglev.h"

#define SEED SLUICE_LB_SEED_DEFAULT

/* Test-local PRNG (xorshift32) with fixed seeds: the same shuffles and
 * flows every run. */
static uint32_t rnd(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* n backends 10.244.(i / 200).(i % 200 + 10), ports 8080 or 9090. */
static struct maglev_backend *backends(size_t n)
{
	struct maglev_backend *b = calloc(n ? n : 1, sizeof(*b));

	assert_non_null(b);
	for (size_t i = 0; i < n; i++) {
		b[i].addr = 0x0af40000u | (uint32_t)(i / 200) << 8 | (uint32_t)(i % 200 + 10);
		b[i].port = i % 3 ? 8080 : 9090;
	}
	return b;
}

static uint32_t *build(const struct maglev_backend *b, size_t n, uint32_t m, int want)
{
	uint32_t *t = malloc(m * sizeof(*t));
	char err[256] = "";
	int ret;

	assert_non_null(t);
	ret = maglev_build(b, n, m, SEED, t, err, sizeof(err));
	if (ret != want)
		fail_msg("maglev_build(n=%zu, m=%u) = %d, want %d: %s", n, m, ret, want, err);
	return t;
}

static uint64_t ident(const struct maglev_backend *b)
{
	return (uint64_t)b->addr << 16 | b->port;
}

/* ---- table sizes ------------------------------------------------------- */

static void test_primes(void **state)
{
	static const uint32_t ok[] = { 3, 5, 13, 251, 1021, 16381, 65537, 131071 };
	static const uint32_t bad[] = { 0, 1, 2, 4, 9, 16380, 16383, 65536, 131070,
					131101 /* prime, above the maximum */, 1000003 };

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (!maglev_prime_ok(ok[i]))
			fail_msg("%u refused", ok[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (maglev_prime_ok(bad[i]))
			fail_msg("%u accepted", bad[i]);
	assert_true(maglev_is_prime(2));
	assert_true(maglev_is_prime(131101));
	assert_false(maglev_is_prime(4294967295u));
	assert_true(maglev_is_prime(4294967291u));	/* largest 32-bit prime */
}

static void test_size_errors(void **state)
{
	struct maglev_backend *b = backends(101);
	uint32_t t[101];
	char err[256];

	(void)state;
	err[0] = '\0';
	assert_int_equal(maglev_build(b, 10, 16380, SEED, t, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "--lb-maglev-table-size 16380 is not a prime"));
	assert_non_null(strstr(err, "16369 or 16381"));

	err[0] = '\0';
	assert_int_equal(maglev_check(1000003, 10, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "--lb-maglev-table-size 1000003 is out of range"));
	err[0] = '\0';
	assert_int_equal(maglev_check(0, 0, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "out of range"));

	/* m must exceed the backend count. */
	err[0] = '\0';
	assert_int_equal(maglev_build(b, 101, 101, SEED, t, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "--lb-maglev-table-size 101 is too small for 101 backends"));
	assert_non_null(strstr(err, "e.g. 10103"));	/* first prime above 100 * 101 */
	assert_int_equal(maglev_check(101, 100, err, sizeof(err)), 0);
	free(b);
}

static void test_empty(void **state)
{
	uint32_t *t = build(NULL, 0, 16381, 0);

	(void)state;
	for (uint32_t i = 0; i < 16381; i++)
		assert_int_equal(t[i], MAGLEV_NONE);
	assert_int_equal(maglev_lookup(t, 16381, 12345), MAGLEV_NONE);
	free(t);
}

/* ---- full tables, even shares ------------------------------------------ */

/* Every entry names a backend; each backend's count is m / n give or take
 * one (the population is round-robin), so max/min -> 1 as m/n grows. */
static void check_shares(size_t n, uint32_t m)
{
	struct maglev_backend *b = backends(n);
	uint32_t *t = build(b, n, m, (int)n);
	uint32_t *cnt = calloc(n, sizeof(*cnt));
	uint32_t lo = UINT32_MAX, hi = 0;

	assert_non_null(cnt);
	for (uint32_t i = 0; i < m; i++) {
		if (t[i] >= n)
			fail_msg("m=%u n=%zu: entry %u is %u, not a backend", m, n, i, t[i]);
		cnt[t[i]]++;
	}
	for (size_t i = 0; i < n; i++) {
		lo = cnt[i] < lo ? cnt[i] : lo;
		hi = cnt[i] > hi ? cnt[i] : hi;
	}
	print_message("  shares m=%u n=%zu: min %u max %u entries, max/min %.4f\n", m, n, lo, hi,
		      (double)hi / lo);
	assert_true(lo >= m / n);
	assert_true(hi <= m / n + 1);
	free(cnt);
	free(t);
	free(b);
}

static void test_shares(void **state)
{
	(void)state;
	check_shares(1, 16381);
	check_shares(10, 16381);
	check_shares(100, 16381);
	check_shares(1000, 16381);
	check_shares(1000, 65537);
	check_shares(12, 13);	/* n = m - 1: one backend gets two entries */
}

/* ---- determinism ------------------------------------------------------- */

static void shuffle(struct maglev_backend *b, size_t n, uint32_t seed)
{
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = rnd(&seed) % (i + 1);
		struct maglev_backend x = b[i];

		b[i] = b[j];
		b[j] = x;
	}
}

/* The same backends in another order: every entry names the same backend
 * (by identity; the indices follow the caller's array). */
static void test_order_independent(void **state)
{
	const size_t n = 100;
	const uint32_t m = 16381;
	struct maglev_backend *a = backends(n), *b = backends(n);
	uint32_t *ta = build(a, n, m, (int)n), *tb;
	size_t same_index = 0;

	(void)state;
	shuffle(b, n, 0x1234567u);
	tb = build(b, n, m, (int)n);
	for (uint32_t i = 0; i < m; i++) {
		if (ident(&a[ta[i]]) != ident(&b[tb[i]]))
			fail_msg("entry %u: backend %zu in order A, %zu in shuffled order", i,
				 (size_t)ta[i], (size_t)tb[i]);
		same_index += ta[i] == tb[i];
	}
	/* The shuffle did move the backends in the array. */
	assert_true(same_index < m / 2);
	free(ta);
	free(tb);
	free(a);
	free(b);
}

/* Duplicates: one backend, its first occurrence named, in any order. */
static void test_duplicates(void **state)
{
	const size_t n = 50;
	const uint32_t m = 16381;
	struct maglev_backend *u = backends(n), *d = calloc(3 * n, sizeof(*d));
	uint32_t *tu = build(u, n, m, (int)n), *td;
	uint32_t first[3 * 50];

	(void)state;
	assert_non_null(d);
	/* Each backend three times, shuffled. */
	for (size_t i = 0; i < 3 * n; i++)
		d[i] = u[i % n];
	shuffle(d, 3 * n, 0xabcdefu);
	for (size_t i = 0; i < 3 * n; i++) {
		size_t j = 0;

		while (ident(&d[j]) != ident(&d[i]))
			j++;
		first[i] = (uint32_t)j;
	}
	td = build(d, 3 * n, m, (int)n);
	for (uint32_t i = 0; i < m; i++) {
		if (ident(&d[td[i]]) != ident(&u[tu[i]]))
			fail_msg("entry %u differs from the table without duplicates", i);
		if (first[td[i]] != td[i])
			fail_msg("entry %u names duplicate %u, not the first occurrence %u", i, td[i],
				 first[td[i]]);
	}
	free(tu);
	free(td);
	free(u);
	free(d);
}

/* The seed is part of the table: another seed, another table. */
static void test_seed_matters(void **state)
{
	struct maglev_backend *b = backends(10);
	uint32_t *t1 = build(b, 10, 251, 10), t2[251];
	char err[128];
	size_t diff = 0;

	(void)state;
	assert_int_equal(maglev_build(b, 10, 251, SEED + 1, t2, err, sizeof(err)), 10);
	for (uint32_t i = 0; i < 251; i++)
		diff += t1[i] != t2[i];
	assert_true(diff > 251 / 2);
	free(t1);
	free(b);
}

/* ---- disruption -------------------------------------------------------- */

/*
 * Entries that changed backend although their old backend is still there
 * (removal) or their new backend is not the added one (addition): the flows
 * consistent hashing should not have moved. The removed backend's own ~1/N
 * move whatever the algorithm; what Maglev adds on top shrinks as M/N
 * grows. Measured with this implementation, N=100, every backend removed in
 * turn: mean 1.29 %, worst 1.63 % at M=16381; mean 0.84 %, worst 0.94 % at
 * 32771 (the default); 0.57 % / 0.62 % at 65537. So the "<= 1 %
 * of flows move when one backend of 100 is removed" holds from M=32771,
 * which is why that is the default; at 16381 the bound asserted is the
 * measured worst, rounded up.
 */
static double disruption_remove(size_t n, uint32_t m, size_t victim, double *total)
{
	struct maglev_backend *a = backends(n), *b = calloc(n, sizeof(*b));
	uint32_t *ta, *tb;
	size_t moved = 0, changed = 0;

	assert_non_null(b);
	for (size_t i = 0, k = 0; i < n; i++)
		if (i != victim)
			b[k++] = a[i];
	ta = build(a, n, m, (int)n);
	tb = build(b, n - 1, m, (int)n - 1);
	for (uint32_t i = 0; i < m; i++) {
		if (ident(&a[ta[i]]) == ident(&b[tb[i]]))
			continue;
		changed++;
		moved += ta[i] != victim;
	}
	*total = 100.0 * changed / m;
	free(ta);
	free(tb);
	free(a);
	free(b);
	return 100.0 * moved / m;
}

/* Every one of n backends removed in turn; the worst is asserted. */
static void check_remove(size_t n, uint32_t m, size_t step, double bound)
{
	double worst = 0, sum = 0, total, worst_total = 0, pct;
	size_t runs = 0;

	for (size_t v = 0; v < n; v += step, runs++) {
		pct = disruption_remove(n, m, v, &total);
		sum += pct;
		worst = pct > worst ? pct : worst;
		worst_total = total > worst_total ? total : worst_total;
	}
	print_message("  remove 1 of %zu, m=%u (%zu victims): moved beyond its own entries "
		      "mean %.3f %%, worst %.3f %% (bound %.2f %%); changed in all, worst %.3f %%\n",
		      n, m, runs, sum / runs, worst, bound, worst_total);
	if (worst > bound)
		fail_msg("m=%u n=%zu: %.3f %% of entries moved beyond the removed backend's, over %.2f %%",
			 m, n, worst, bound);
}

static void test_disruption_remove(void **state)
{
	(void)state;
	check_remove(100, 16381, 1, 1.75);
	/* The bound, at the default size. */
	assert_int_equal(MAGLEV_SIZE_DEFAULT, 32771);
	check_remove(100, MAGLEV_SIZE_DEFAULT, 1, 1.0);
	check_remove(100, 65537, 7, 1.0);
	check_remove(1000, 65537, 97, 1.0);
	check_remove(10, 16381, 1, 1.0);
}

static void check_add(size_t n, uint32_t m, double bound)
{
	struct maglev_backend *b = backends(n + 1);
	uint32_t *ta, *tb;
	size_t moved = 0, changed = 0;

	ta = build(b, n, m, (int)n);
	tb = build(b, n + 1, m, (int)n + 1);
	for (uint32_t i = 0; i < m; i++) {
		if (ta[i] == tb[i])
			continue;
		changed++;
		moved += tb[i] != n;
	}
	print_message("  add 1 to %zu, m=%u: %.3f %% of entries moved among old backends (bound "
		      "%.2f %%), %.3f %% changed in all\n", n, m, 100.0 * moved / m, bound,
		      100.0 * changed / m);
	assert_true(100.0 * moved / m <= bound);
	/* The new backend did take its share. */
	assert_true(changed - moved >= m / (n + 1));
	free(ta);
	free(tb);
	free(b);
}

static void test_disruption_add(void **state)
{
	(void)state;
	check_add(100, 16381, 1.5);
	check_add(100, 32771, 1.0);
	check_add(100, 65537, 1.0);
}

/* The same measure on flows: a million tuples through the flow hash, the
 * way the datapath picks; flows of surviving backends that move. */
static void check_flows(uint32_t m, double bound)
{
	const size_t n = 100, victim = 42, flows = 1000000;
	struct maglev_backend *a = backends(n), *b = calloc(n, sizeof(*b));
	uint32_t *ta, *tb, s = 0xfeedu;
	size_t moved = 0, on_victim = 0;

	assert_non_null(b);
	for (size_t i = 0, k = 0; i < n; i++)
		if (i != victim)
			b[k++] = a[i];
	ta = build(a, n, m, (int)n);
	tb = build(b, n - 1, m, (int)n - 1);
	for (size_t f = 0; f < flows; f++) {
		uint32_t saddr = htonl(0x0af40000u | (rnd(&s) & 0xffff));
		uint16_t sport = htons((uint16_t)(32768 + rnd(&s) % 28232));
		uint32_t h = sluice_lb_flow_hash4(saddr, htonl(0x0a60000au), sport, htons(80),
						  IPPROTO_TCP, SEED);
		uint32_t x = maglev_lookup(ta, m, h), y = maglev_lookup(tb, m, h);

		if (x == victim) {
			on_victim++;
			continue;
		}
		moved += ident(&a[x]) != ident(&b[y]);
	}
	print_message("  1e6 flows, remove 1 of 100, m=%u: %.3f %% of flows were on it, %.3f %% of "
		      "the others moved (bound %.2f %%)\n", m, 100.0 * on_victim / flows,
		      100.0 * moved / (flows - on_victim), bound);
	assert_true(100.0 * moved / (flows - on_victim) <= bound);
	/* The victim's share of flows is about 1/n. */
	assert_true(on_victim > flows / n / 2 && on_victim < flows / n * 2);
	free(ta);
	free(tb);
	free(a);
	free(b);
}

static void test_disruption_flows(void **state)
{
	(void)state;
	check_flows(16381, 1.5);
	check_flows(MAGLEV_SIZE_DEFAULT, 1.0);
	check_flows(65537, 1.0);
}

/* ---- the hash ---------------------------------------------------------- */

/* Jenkins' own vectors for lookup3's hashlittle() ("Four score and seven
 * years ago", 30 bytes, initval 0 and 1), composed here from the header's
 * mix and final on little-endian words: the header's rounds are lookup3's. */
static uint32_t hashlittle_aligned(const char *text, uint32_t initval)
{
	uint32_t k[12] = { 0 }, a, b, c;
	size_t len = strlen(text);
	const uint32_t *p = k;

	assert_true(len < sizeof(k));
	memcpy(k, text, len);
	a = b = c = SLUICE_LB_HASH_INIT + (uint32_t)len + initval;
	while (len > 12) {
		a += p[0];
		b += p[1];
		c += p[2];
		sluice_lb_mix(&a, &b, &c);
		len -= 12;
		p += 3;
	}
	/* The tail's bytes past len are zero in k, as lookup3's masks make them. */
	a += p[0];
	b += len > 4 ? p[1] : 0;
	c += len > 8 ? p[2] : 0;
	sluice_lb_final(&a, &b, &c);
	return c;
}

static void test_lookup3_vectors(void **state)
{
	(void)state;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	assert_int_equal(hashlittle_aligned("Four score and seven years ago", 0), 0x17770551u);
	assert_int_equal(hashlittle_aligned("Four score and seven years ago", 1), 0xcd628161u);
#else
	skip();
#endif
}

/* The flow hash's definition: network-order fields, host-order words. */
static void test_flow_hash_definition(void **state)
{
	(void)state;
	assert_int_equal(sluice_lb_flow_hash4(htonl(0x0a000001u), htonl(0x0a60000au), htons(40000),
					      htons(80), IPPROTO_TCP, SEED),
			 sluice_lb_hash4(0x0a000001u, 0x0a60000au, 40000u << 16 | 80, IPPROTO_TCP,
					 SEED));
	/* Every field counts. */
	assert_int_not_equal(sluice_lb_flow_hash4(1, 2, 3, 4, 6, SEED),
			     sluice_lb_flow_hash4(1, 2, 3, 4, 17, SEED));
	assert_int_not_equal(sluice_lb_flow_hash4(1, 2, 3, 4, 6, SEED),
			     sluice_lb_flow_hash4(1, 2, 4, 3, 6, SEED));
	assert_int_not_equal(sluice_lb_flow_hash4(1, 2, 3, 4, 6, SEED),
			     sluice_lb_flow_hash4(2, 1, 3, 4, 6, SEED));
}

/*
 * Known answers. The BPF side's port of sluice_lb_flow_hash4 (and any other
 * implementation) must give exactly these; a change here moves every flow
 * of every Maglev Service in a mixed-version cluster.
 */
struct flow_vector {
	const char *saddr, *daddr;
	uint16_t sport, dport;
	uint8_t proto;
	uint32_t seed, hash;
};

static void test_flow_hash_known_answers(void **state)
{
	static const struct flow_vector v[] = {
		{ "10.0.0.1", "10.96.0.10", 40000, 80, IPPROTO_TCP, SEED, 0x89db10a7u },
		{ "192.168.1.2", "10.96.0.1", 12345, 443, IPPROTO_TCP, SEED, 0xe4bc6ad0u },
		{ "10.244.1.5", "10.96.0.10", 53000, 53, IPPROTO_UDP, SEED, 0x91f1985cu },
		{ "0.0.0.0", "0.0.0.0", 0, 0, 0, 0, 0xbaf9078cu },
		{ "255.255.255.255", "255.255.255.255", 65535, 65535, 255, 0xffffffffu, 0xaac15888u },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		struct in_addr s, d;
		uint32_t h;

		assert_int_equal(inet_pton(AF_INET, v[i].saddr, &s), 1);
		assert_int_equal(inet_pton(AF_INET, v[i].daddr, &d), 1);
		h = sluice_lb_flow_hash4(s.s_addr, d.s_addr, htons(v[i].sport), htons(v[i].dport),
					 v[i].proto, v[i].seed);
		if (h != v[i].hash)
			fail_msg("vector %zu: %s:%u -> %s:%u/%u seed 0x%08x hashes to 0x%08x, want 0x%08x",
				 i, v[i].saddr, v[i].sport, v[i].daddr, v[i].dport, v[i].proto,
				 v[i].seed, h, v[i].hash);
	}
}

/* A whole small table, pinned: the backend hashes (offset, skip) and the
 * population order together. */
static void test_table_known_answer(void **state)
{
	static const struct maglev_backend b[] = {
		{ 0x0af4010au, 8080 },	/* 10.244.1.10:8080 */
		{ 0x0af40214u, 8080 },	/* 10.244.2.20:8080 */
		{ 0x0af4031eu, 9090 },	/* 10.244.3.30:9090 */
	};
	static const uint32_t want[13] = { 2, 0, 0, 1, 2, 1, 1, 1, 2, 0, 2, 0, 0 };
	static const uint32_t want_perm[3][2] = { { 2, 12 }, { 7, 12 }, { 0, 10 } };
	uint32_t t[13], off, skip;
	char err[128];

	(void)state;
	/* The identity hashes themselves, for another implementation. */
	assert_int_equal(sluice_lb_hash2(0x0af4010au, 8080, SEED ^ MAGLEV_SALT_OFFSET), 0x8edd74cfu);
	assert_int_equal(sluice_lb_hash2(0x0af4010au, 8080, SEED ^ MAGLEV_SALT_SKIP), 0xf6d5882bu);
	assert_int_equal(sluice_lb_hash2(0, 0, 0), 0x58c184bfu);
	for (size_t i = 0; i < 3; i++) {
		maglev_permutation(&b[i], 13, SEED, &off, &skip);
		assert_int_equal(off, want_perm[i][0]);
		assert_int_equal(skip, want_perm[i][1]);
	}
	assert_int_equal(maglev_build(b, 3, 13, SEED, t, err, sizeof(err)), 3);
	assert_memory_equal(t, want, sizeof(want));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_primes),
		cmocka_unit_test(test_size_errors),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_shares),
		cmocka_unit_test(test_order_independent),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_seed_matters),
		cmocka_unit_test(test_disruption_remove),
		cmocka_unit_test(test_disruption_add),
		cmocka_unit_test(test_disruption_flows),
		cmocka_unit_test(test_lookup3_vectors),
		cmocka_unit_test(test_flow_hash_definition),
		cmocka_unit_test(test_flow_hash_known_answers),
		cmocka_unit_test(test_table_known_answer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
