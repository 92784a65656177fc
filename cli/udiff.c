// SPDX-License-Identifier: Apache-2.0
/* A unified diff by longest common subsequence (see udiff.h). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "udiff.h"

struct line {
	const char *p;
	size_t n;	/* without the '\n' */
};

struct text {
	struct line *v;
	size_t n;
};

/* One step of the edit script: ' ' both, '-' a's line ai, '+' b's line bi. */
struct op {
	char kind;
	size_t ai, bi;
};

static int split(const char *s, struct text *t)
{
	size_t cap = 0;

	t->v = NULL;
	t->n = 0;
	while (*s) {
		const char *nl = strchr(s, '\n');
		size_t n = nl ? (size_t)(nl - s) : strlen(s);

		if (t->n == cap) {
			struct line *v = realloc(t->v, (cap = cap ? cap * 2 : 64) * sizeof(*v));

			if (!v) {
				free(t->v);
				return -ENOMEM;
			}
			t->v = v;
		}
		t->v[t->n++] = (struct line){ s, n };
		s += n + (nl ? 1 : 0);
	}
	return 0;
}

static int same(const struct line *x, const struct line *y)
{
	return x->n == y->n && !memcmp(x->p, y->p, x->n);
}

/*
 * The edit script of a[lo_a, hi_a) against b[lo_b, hi_b) appended to ops
 * (room for (hi_a - lo_a) + (hi_b - lo_b) more): by an LCS table of
 * suffixes when it fits UDIFF_MAX_CELLS, else all removed then all added.
 */
static int middle(const struct text *a, const struct text *b, size_t lo_a, size_t hi_a,
		  size_t lo_b, size_t hi_b, struct op *ops, size_t *nops)
{
	size_t n = hi_a - lo_a, m = hi_b - lo_b, i = 0, j = 0;
	uint32_t *t;

	if ((uint64_t)(n + 1) * (m + 1) > UDIFF_MAX_CELLS) {
		for (; i < n; i++)
			ops[(*nops)++] = (struct op){ '-', lo_a + i, lo_b };
		for (; j < m; j++)
			ops[(*nops)++] = (struct op){ '+', hi_a, lo_b + j };
		return 0;
	}
	t = calloc((n + 1) * (m + 1), sizeof(*t));
	if (!t)
		return -ENOMEM;
#define T(x, y) t[(x) * (m + 1) + (y)]
	for (size_t x = n; x-- > 0;)
		for (size_t y = m; y-- > 0;)
			T(x, y) = same(&a->v[lo_a + x], &b->v[lo_b + y])
					  ? T(x + 1, y + 1) + 1
					  : (T(x + 1, y) >= T(x, y + 1) ? T(x + 1, y) : T(x, y + 1));
	while (i < n || j < m) {
		if (i < n && j < m && same(&a->v[lo_a + i], &b->v[lo_b + j])) {
			ops[(*nops)++] = (struct op){ ' ', lo_a + i, lo_b + j };
			i++;
			j++;
		} else if (i < n && (j == m || T(i + 1, j) >= T(i, j + 1))) {
			ops[(*nops)++] = (struct op){ '-', lo_a + i, lo_b + j };
			i++;
		} else {
			ops[(*nops)++] = (struct op){ '+', lo_a + i, lo_b + j };
			j++;
		}
	}
#undef T
	free(t);
	return 0;
}

/* "start,count" of a hunk's side as diff -u writes it: 1-based, the count
 * left out when it is 1, and an empty side starts at the line before. */
static void range(FILE *f, size_t start0, size_t count)
{
	if (count == 1)
		fprintf(f, "%zu", start0 + 1);
	else
		fprintf(f, "%zu,%zu", count ? start0 + 1 : start0, count);
}

static void hunk(FILE *f, const struct text *a, const struct text *b, const struct op *ops,
		 size_t from, size_t to)
{
	size_t na = 0, nb = 0;

	for (size_t k = from; k < to; k++) {
		na += ops[k].kind != '+';
		nb += ops[k].kind != '-';
	}
	fputs("@@ -", f);
	range(f, ops[from].ai, na);
	fputs(" +", f);
	range(f, ops[from].bi, nb);
	fputs(" @@\n", f);
	for (size_t k = from; k < to; k++) {
		const struct line *l = ops[k].kind == '+' ? &b->v[ops[k].bi] : &a->v[ops[k].ai];

		fputc(ops[k].kind, f);
		fwrite(l->p, 1, l->n, f);
		fputc('\n', f);
	}
}

int udiff_print(FILE *f, const char *a_text, const char *b_text, const char *la, const char *lb,
		unsigned ctx)
{
	struct text a = { 0 }, b = { 0 };
	struct op *ops = NULL;
	size_t head = 0, tail = 0, nops = 0, k;
	int ret;

	if (split(a_text, &a) || split(b_text, &b)) {
		ret = -ENOMEM;
		goto cleanup;
	}
	while (head < a.n && head < b.n && same(&a.v[head], &b.v[head]))
		head++;
	while (tail < a.n - head && tail < b.n - head &&
	       same(&a.v[a.n - 1 - tail], &b.v[b.n - 1 - tail]))
		tail++;
	if (head == a.n && head == b.n) {
		ret = 0;
		goto cleanup;
	}
	ops = malloc((a.n + b.n) * sizeof(*ops));
	if (!ops) {
		ret = -ENOMEM;
		goto cleanup;
	}
	for (k = 0; k < head; k++)
		ops[nops++] = (struct op){ ' ', k, k };
	ret = middle(&a, &b, head, a.n - tail, head, b.n - tail, ops, &nops);
	if (ret)
		goto cleanup;
	for (k = tail; k > 0; k--)
		ops[nops++] = (struct op){ ' ', a.n - k, b.n - k };
	fprintf(f, "--- %s\n+++ %s\n", la, lb);
	/* Hunks: each change with ctx lines around it; changes closer than
	 * 2 * ctx share one. */
	for (k = 0; k < nops;) {
		size_t start, end, last;

		if (ops[k].kind == ' ') {
			k++;
			continue;
		}
		start = k > ctx ? k - ctx : 0;
		last = k;
		for (end = k; end < nops; end++) {
			if (ops[end].kind != ' ')
				last = end;
			else if (end - last > 2 * (size_t)ctx)
				break;
		}
		end = last + 1 + ctx < nops ? last + 1 + ctx : nops;
		hunk(f, &a, &b, ops, start, end);
		k = end;
	}
	ret = 1;
cleanup:
	free(a.v);
	free(b.v);
	free(ops);
	return ret;
}
