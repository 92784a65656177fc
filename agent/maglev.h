/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and Reliable
 * Software Network Load Balancer", NSDI 2016, section 3.4): the lookup
 * table of one Service for --lb-algorithm maglev. The datapath hashes a
 * flow (include/sluice/lbhash.h) and takes the backend in entry
 * hash % M; the agent builds the table here and writes it to the
 * Service's table map.
 *
 * What makes every node build the same table from the same backends:
 *  - a backend is known only by its identity, (address, port): its place
 *    in the table comes from two hashes of that identity under the
 *    cluster-wide seed, never from a pointer or the order it arrived in;
 *  - backends are populated in identity order (address, then port), so
 *    the same set given in any order yields the same backend in every
 *    entry (the indices into the caller's array differ, the backends
 *    they name do not);
 *  - a duplicate identity is one backend: its first occurrence in the
 *    caller's array takes the entries, the others take none.
 */
#ifndef SLUICE_MAGLEV_H
#define SLUICE_MAGLEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sluice/lbhash.h>

/* The agent setting that sizes every Maglev table, for error messages. */
#define MAGLEV_SIZE_SETTING "--lb-maglev-table-size"

/* Table sizes: a prime in [MAGLEV_SIZE_MIN, MAGLEV_SIZE_MAX]. The paper
 * asks for M well above the backend count (each backend's share is M/N
 * entries give or take one, so M >= 100 N keeps the shares within 1 %).
 * The default is the smallest size measured to keep the bound,
 * <= 1 % of the other flows move when one backend of 100 goes: at 16381
 * the worst is 1.63 % (tests/unit/test_maglev.c). The datapath's own
 * default (SLUICE_MAGLEV_M_DEFAULT) is the same number. The ceiling
 * bounds one table map to 512 KiB. */
#define MAGLEV_SIZE_DEFAULT 32771u
#define MAGLEV_SIZE_MIN 3u
#define MAGLEV_SIZE_MAX 131071u

/* Entry of a table built from no backend: the datapath finds no backend
 * (the Service rejects the flow). Equal to SLUICE_MAGLEV_NONE. */
#define MAGLEV_NONE UINT32_MAX

/* Salts that turn the one seed into the two independent hashes the
 * algorithm needs (offset and skip). Part of the table's definition: a
 * change moves flows, like a seed change. */
#define MAGLEV_SALT_OFFSET 0x0ff5e7a1u
#define MAGLEV_SALT_SKIP   0x5c1bb00du

struct maglev_backend {
	uint32_t addr;	/* IPv4 address, host byte order */
	uint16_t port;	/* the backend's port (targetPort), host byte order */
};

/* m is a prime within [MAGLEV_SIZE_MIN, MAGLEV_SIZE_MAX]. */
bool maglev_prime_ok(uint32_t m);

/* m is prime (any m; trial division, for settings and tests). */
bool maglev_is_prime(uint32_t m);

/*
 * A table of m entries can be built for n backends: m is a usable prime
 * and m > n. Returns 0, or -EINVAL with a sentence in err naming
 * MAGLEV_SIZE_SETTING and the nearest usable primes.
 */
int maglev_check(uint32_t m, size_t n, char *err, size_t errlen);

/* The backend's place in the table: its first preferred entry and its
 * step (1..m-1) through the others, from its identity and the seed. */
void maglev_permutation(const struct maglev_backend *b, uint32_t m, uint32_t seed,
			uint32_t *offset, uint32_t *skip);

/*
 * Fill table (m entries) with indices into b[0..n-1]: every entry names a
 * backend, and each distinct backend gets m / (distinct backends) entries
 * give or take one. n == 0 fills every entry with MAGLEV_NONE.
 * Returns the number of distinct backends (0 for an empty table), or
 * -EINVAL (bad m or n, message in err) or -ENOMEM.
 */
int maglev_build(const struct maglev_backend *b, size_t n, uint32_t m, uint32_t seed,
		 uint32_t *table, char *err, size_t errlen);

/* The datapath's choice for a flow hash: table[hash % m]. */
static inline uint32_t maglev_lookup(const uint32_t *table, uint32_t m, uint32_t hash)
{
	return table[hash % m];
}

#endif /* SLUICE_MAGLEV_H */
