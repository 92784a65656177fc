/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Prometheus text exposition format (version 0.0.4), written into a
 * growing buffer: a family's HELP and TYPE lines, then its samples, label
 * values escaped; histograms as cumulative _bucket{le} lines, _sum and
 * _count. Histograms are plain structs updated by the thread that owns
 * them (prom_hist_observe is inline, so kube.c and tests need no more
 * than this header for it).
 */
#ifndef SLUICE_AGENT_PROM_H
#define SLUICE_AGENT_PROM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct prom_buf {
	char *s;
	size_t len, cap;
	bool oom;	/* an allocation failed: the text is incomplete */
};

void prom_buf_free(struct prom_buf *b);
/* Append raw text (printf). */
void prom_printf(struct prom_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "# HELP name help" (help escaped) and "# TYPE name type". */
void prom_family(struct prom_buf *b, const char *name, const char *type, const char *help);
/*
 * One sample: name{l1="v1",...} value. labels: name, value pairs ending
 * with NULL (NULL itself: no labels). Values are escaped (\\, \", \n).
 */
void prom_sample(struct prom_buf *b, const char *name, const char *const *labels, double value);
/* The same, for a counter kept as an integer (exact past 2^53). */
void prom_sample_u64(struct prom_buf *b, const char *name, const char *const *labels,
		     uint64_t value);

/* Upper bounds of a histogram's buckets, ascending; +Inf is implied. */
#define PROM_HIST_MAX_BOUNDS 32
struct prom_hist {
	const double *bounds;
	size_t nbounds;
	uint64_t counts[PROM_HIST_MAX_BOUNDS + 1];	/* per bucket, not cumulative; last: +Inf */
	uint64_t count;
	double sum;
};

static inline void prom_hist_init(struct prom_hist *h, const double *bounds, size_t n)
{
	*h = (struct prom_hist){ .bounds = bounds,
				 .nbounds = n > PROM_HIST_MAX_BOUNDS ? PROM_HIST_MAX_BOUNDS : n };
}

static inline void prom_hist_observe(struct prom_hist *h, double v)
{
	size_t i = 0;

	while (i < h->nbounds && v > h->bounds[i])
		i++;
	h->counts[i]++;
	h->count++;
	h->sum += v;
}

/* name_bucket{labels...,le="b"} (cumulative), name_sum, name_count. */
void prom_hist_write(struct prom_buf *b, const char *name, const char *const *labels,
		     const struct prom_hist *h);

/* Bucket bounds in seconds shared by the agent's latency histograms:
 * 100 us to 10 s. */
extern const double prom_latency_bounds[];
extern const size_t prom_latency_nbounds;

#endif /* SLUICE_AGENT_PROM_H */
