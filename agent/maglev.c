// SPDX-License-Identifier: Apache-2.0
/*
 * Maglev table population (NSDI'16, "Pseudocode 1"). Each backend has a
 * preference list over the m entries, permutation[j] = (offset + j * skip)
 * mod m; m prime makes every skip in 1..m-1 visit every entry once. The
 * backends take turns, each claiming its next preferred entry that is still
 * free, until the table is full: so each gets m / N entries give or take
 * one, and a backend removed frees its own entries while most others keep
 * theirs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "maglev.h"

bool maglev_is_prime(uint32_t m)
{
	if (m < 2)
		return false;
	if (m % 2 == 0)
		return m == 2;
	for (uint32_t d = 3; d <= m / d; d += 2)
		if (m % d == 0)
			return false;
	return true;
}

bool maglev_prime_ok(uint32_t m)
{
	return m >= MAGLEV_SIZE_MIN && m <= MAGLEV_SIZE_MAX && maglev_is_prime(m);
}

/* The usable primes nearest to m, below and above (0 when there is none). */
static void nearest_primes(uint32_t m, uint32_t *below, uint32_t *above)
{
	uint32_t p;

	*below = *above = 0;
	for (p = m < MAGLEV_SIZE_MAX ? m : MAGLEV_SIZE_MAX; p >= MAGLEV_SIZE_MIN; p--)
		if (p != m && maglev_is_prime(p)) {
			*below = p;
			break;
		}
	for (p = m > MAGLEV_SIZE_MIN ? m : MAGLEV_SIZE_MIN; p <= MAGLEV_SIZE_MAX; p++)
		if (p != m && maglev_is_prime(p)) {
			*above = p;
			break;
		}
}

int maglev_check(uint32_t m, size_t n, char *err, size_t errlen)
{
	uint32_t below, above;

	if (!maglev_prime_ok(m)) {
		nearest_primes(m, &below, &above);
		if (m < MAGLEV_SIZE_MIN || m > MAGLEV_SIZE_MAX)
			snprintf(err, errlen,
				 "%s %u is out of range: use a prime from %u to %u (default %u)",
				 MAGLEV_SIZE_SETTING, m, MAGLEV_SIZE_MIN, MAGLEV_SIZE_MAX,
				 MAGLEV_SIZE_DEFAULT);
		else
			snprintf(err, errlen,
				 "%s %u is not a prime: Maglev needs a prime table size, e.g. %u or %u (default %u)",
				 MAGLEV_SIZE_SETTING, m, below, above, MAGLEV_SIZE_DEFAULT);
		return -EINVAL;
	}
	if (n >= m) {
		/* Suggest the first prime above 100 n: shares within 1 %. */
		uint32_t want = n < MAGLEV_SIZE_MAX / 100 ? (uint32_t)n * 100 : MAGLEV_SIZE_MAX;

		nearest_primes(want, &below, &above);
		snprintf(err, errlen,
			 "%s %u is too small for %zu backends: it must be larger than the backend "
			 "count, and about 100 times it for even shares, e.g. %u",
			 MAGLEV_SIZE_SETTING, m, n, above ? above : MAGLEV_SIZE_MAX);
		return -EINVAL;
	}
	return 0;
}

void maglev_permutation(const struct maglev_backend *b, uint32_t m, uint32_t seed,
			uint32_t *offset, uint32_t *skip)
{
	*offset = sluice_lb_hash2(b->addr, b->port, seed ^ MAGLEV_SALT_OFFSET) % m;
	*skip = sluice_lb_hash2(b->addr, b->port, seed ^ MAGLEV_SALT_SKIP) % (m - 1) + 1;
}

struct slot {
	uint64_t key;	/* identity: address << 16 | port */
	uint32_t idx;	/* index into the caller's array */
	uint32_t pos;	/* next preferred entry */
	uint32_t skip;
};

static uint64_t identity(const struct maglev_backend *b)
{
	return (uint64_t)b->addr << 16 | b->port;
}

/* Identity order, then the caller's order: the first of duplicates wins. */
static int slot_cmp(const void *x, const void *y)
{
	const struct slot *a = x, *b = y;

	if (a->key != b->key)
		return a->key < b->key ? -1 : 1;
	return a->idx < b->idx ? -1 : a->idx > b->idx;
}

int maglev_build(const struct maglev_backend *b, size_t n, uint32_t m, uint32_t seed,
		 uint32_t *table, char *err, size_t errlen)
{
	struct slot *s = NULL;
	size_t i, k = 0;
	uint32_t filled = 0;
	int ret;

	ret = maglev_check(m, n, err, errlen);
	if (ret)
		return ret;
	for (i = 0; i < m; i++)
		table[i] = MAGLEV_NONE;
	if (n == 0)
		return 0;

	s = calloc(n, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "no memory for a Maglev table of %zu backends", n);
		ret = -ENOMEM;
		goto cleanup;
	}
	for (i = 0; i < n; i++) {
		s[i].key = identity(&b[i]);
		s[i].idx = (uint32_t)i;
	}
	qsort(s, n, sizeof(*s), slot_cmp);
	for (i = 0; i < n; i++) {
		if (k && s[k - 1].key == s[i].key)
			continue;
		s[k] = s[i];
		maglev_permutation(&b[s[k].idx], m, seed, &s[k].pos, &s[k].skip);
		k++;
	}

	/* k < m, so every backend finds a free entry each round until the
	 * table is full; its walk visits every entry (skip and m coprime). */
	for (;;) {
		for (i = 0; i < k; i++) {
			struct slot *c = &s[i];

			while (table[c->pos] != MAGLEV_NONE) {
				c->pos += c->skip;
				if (c->pos >= m)
					c->pos -= m;
			}
			table[c->pos] = c->idx;
			if (++filled == m)
				goto done;
		}
	}
done:
	ret = (int)k;
cleanup:
	free(s);
	return ret;
}
