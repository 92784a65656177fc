// SPDX-License-Identifier: Apache-2.0
/*
 * What building one Service's Maglev table costs the agent
 * (agent/maglev.c), for the default table size and Katran's 65537, with
 * 10, 100 and 1000 backends, next to a baseline measured in the same run:
 * filling the same table with the same backends in a random permutation
 * (round-robin, then a Fisher-Yates shuffle), the least any balanced
 * table of m entries costs to write. The ratio is what Maglev's
 * consistency costs on top.
 *
 *   build/bench-maglev [ROUNDS]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "maglev.h"

static double now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return (a > b) - (a < b);
}

/* xorshift32: the baseline's shuffle, fixed seed. */
static uint32_t rnd(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static void random_fill(uint32_t *t, uint32_t m, size_t n, uint32_t seed)
{
	for (uint32_t i = 0; i < m; i++)
		t[i] = (uint32_t)(i % n);
	for (uint32_t i = m - 1; i > 0; i--) {
		uint32_t j = rnd(&seed) % (i + 1), x = t[i];

		t[i] = t[j];
		t[j] = x;
	}
}

int main(int argc, char **argv)
{
	static const uint32_t sizes[] = { MAGLEV_SIZE_DEFAULT, 65537 };
	static const size_t counts[] = { 10, 100, 1000 };
	int rounds = argc > 1 ? atoi(argv[1]) : 21;
	struct maglev_backend *b = NULL;
	double *mg = NULL, *rf = NULL;
	uint32_t *t = NULL, sink = 0;
	char err[256];
	int ret = 1;

	if (rounds < 1 || rounds > 10000) {
		fprintf(stderr, "bench-maglev: ROUNDS must be 1..10000, got '%s'\n", argv[1]);
		return 2;
	}
	b = calloc(1000, sizeof(*b));
	t = calloc(65537, sizeof(*t));
	mg = calloc((size_t)rounds, sizeof(*mg));
	rf = calloc((size_t)rounds, sizeof(*rf));
	if (!b || !t || !mg || !rf) {
		fprintf(stderr, "bench-maglev: out of memory\n");
		goto cleanup;
	}
	for (size_t i = 0; i < 1000; i++) {
		b[i].addr = 0x0af40000u | (uint32_t)(i / 200) << 8 | (uint32_t)(i % 200 + 10);
		b[i].port = 8080;
	}

	printf("\n%-44s %12s %12s %8s\n", "Maglev table build (median of rounds)", "maglev us",
	       "random us", "ratio");
	for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
		for (size_t ci = 0; ci < sizeof(counts) / sizeof(counts[0]); ci++) {
			uint32_t m = sizes[si];
			size_t n = counts[ci];
			char label[64];

			/* Alternate the two so both see the same machine. */
			for (int r = 0; r < rounds; r++) {
				double t0 = now_us();

				if (maglev_build(b, n, m, SLUICE_LB_SEED_DEFAULT, t, err, sizeof(err)) < 0) {
					fprintf(stderr, "bench-maglev: %s\n", err);
					goto cleanup;
				}
				mg[r] = now_us() - t0;
				sink ^= t[r % m];
				t0 = now_us();
				random_fill(t, m, n, 0x9e3779b9u + (uint32_t)r);
				rf[r] = now_us() - t0;
				sink ^= t[r % m];
			}
			qsort(mg, (size_t)rounds, sizeof(*mg), cmp_double);
			qsort(rf, (size_t)rounds, sizeof(*rf), cmp_double);
			snprintf(label, sizeof(label), "m=%u, %zu backends", m, n);
			printf("%-44s %12.1f %12.1f %8.2f\n", label, mg[rounds / 2], rf[rounds / 2],
			       mg[rounds / 2] / rf[rounds / 2]);
		}
	}
	printf("ratio maglev / random-permutation fill of the same table; %d rounds (check %u)\n",
	       rounds, sink & 1);
	ret = 0;
cleanup:
	free(b);
	free(t);
	free(mg);
	free(rf);
	return ret;
}
