// SPDX-License-Identifier: Apache-2.0
/* The Prometheus text format writer (prom.h). */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prom.h"

const double prom_latency_bounds[] = { 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
				       0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 };
const size_t prom_latency_nbounds = sizeof(prom_latency_bounds) / sizeof(prom_latency_bounds[0]);

void prom_buf_free(struct prom_buf *b)
{
	free(b->s);
	*b = (struct prom_buf){ 0 };
}

static bool reserve(struct prom_buf *b, size_t more)
{
	size_t cap;
	char *s;

	if (b->oom)
		return false;
	if (b->len + more + 1 <= b->cap)
		return true;
	cap = b->cap ? b->cap : 4096;
	while (cap < b->len + more + 1)
		cap *= 2;
	s = realloc(b->s, cap);
	if (!s) {
		b->oom = true;
		return false;
	}
	b->s = s;
	b->cap = cap;
	return true;
}

static void vappend(struct prom_buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0 || !reserve(b, (size_t)n))
		return;
	vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

void prom_printf(struct prom_buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vappend(b, fmt, ap);
	va_end(ap);
}

static void putc_buf(struct prom_buf *b, char c)
{
	if (!reserve(b, 1))
		return;
	b->s[b->len++] = c;
	b->s[b->len] = '\0';
}

/* HELP text escapes \ and newline; label values also ". */
static void escaped(struct prom_buf *b, const char *s, bool quote)
{
	for (; *s; s++) {
		if (*s == '\\')
			prom_printf(b, "\\\\");
		else if (*s == '\n')
			prom_printf(b, "\\n");
		else if (quote && *s == '"')
			prom_printf(b, "\\\"");
		else
			putc_buf(b, *s);
	}
}

void prom_family(struct prom_buf *b, const char *name, const char *type, const char *help)
{
	prom_printf(b, "# HELP %s ", name);
	escaped(b, help, false);
	prom_printf(b, "\n# TYPE %s %s\n", name, type);
}

/* name{labels[,le="..."]} without the value. */
static void series(struct prom_buf *b, const char *name, const char *suffix,
		   const char *const *labels, const char *le)
{
	bool any = false;

	prom_printf(b, "%s%s", name, suffix);
	for (size_t i = 0; labels && labels[i] && labels[i + 1]; i += 2) {
		prom_printf(b, "%s%s=\"", any ? "," : "{", labels[i]);
		escaped(b, labels[i + 1], true);
		putc_buf(b, '"');
		any = true;
	}
	if (le) {
		prom_printf(b, "%sle=\"%s\"", any ? "," : "{", le);
		any = true;
	}
	if (any)
		putc_buf(b, '}');
}

/* The shortest of %.15g and %.17g that reads back as v (0.0001, not
 * 0.00010000000000000000479). */
static void fmt_double(char *out, size_t len, double v)
{
	snprintf(out, len, "%.15g", v);
	if (strtod(out, NULL) != v)
		snprintf(out, len, "%.17g", v);
}

static void value(struct prom_buf *b, double v)
{
	char num[32];

	if (isnan(v))
		prom_printf(b, " NaN\n");
	else if (isinf(v))
		prom_printf(b, " %sInf\n", v > 0 ? "+" : "-");
	else {
		fmt_double(num, sizeof(num), v);
		prom_printf(b, " %s\n", num);
	}
}

void prom_sample(struct prom_buf *b, const char *name, const char *const *labels, double v)
{
	series(b, name, "", labels, NULL);
	value(b, v);
}

void prom_sample_u64(struct prom_buf *b, const char *name, const char *const *labels, uint64_t v)
{
	series(b, name, "", labels, NULL);
	prom_printf(b, " %" PRIu64 "\n", v);
}

void prom_hist_write(struct prom_buf *b, const char *name, const char *const *labels,
		     const struct prom_hist *h)
{
	uint64_t cum = 0;
	char le[32];

	for (size_t i = 0; i <= h->nbounds; i++) {
		cum += h->counts[i];
		if (i < h->nbounds)
			fmt_double(le, sizeof(le), h->bounds[i]);
		else
			snprintf(le, sizeof(le), "+Inf");
		series(b, name, "_bucket", labels, le);
		prom_printf(b, " %" PRIu64 "\n", cum);
	}
	series(b, name, "_sum", labels, NULL);
	value(b, h->sum);
	series(b, name, "_count", labels, NULL);
	prom_printf(b, " %" PRIu64 "\n", h->count);
}
