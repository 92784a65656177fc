/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the compiler benchmarks (compile_cost.c, compile_add.c) share:
 * stand-in map operations that only count what the compiler writes, and
 * their timing helpers.
 */
#ifndef SLUICE_BENCH_COMPILE_BENCH_H
#define SLUICE_BENCH_COMPILE_BENCH_H

#include <stddef.h>
#include <time.h>

#include "compile.h"

static int count_update(void *ctx, enum compile_map m, const void *k, const void *v)
{
	(void)m;
	(void)k;
	(void)v;
	(*(size_t *)ctx)++;
	return 0;
}

static int count_del(void *ctx, enum compile_map m, const void *k)
{
	(void)m;
	(void)k;
	(*(size_t *)ctx)++;
	return 0;
}

static double ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

#endif /* SLUICE_BENCH_COMPILE_BENCH_H */
