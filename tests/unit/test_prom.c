// SPDX-License-Identifier: Apache-2.0
/*
 * The Prometheus text format writer (agent/prom.c): HELP and TYPE lines,
 * label values and help text escaped as the format wants (a label value
 * from an object name must not break out of its quotes or its line),
 * counters exact past 2^53, histograms with cumulative buckets, +Inf,
 * _sum and _count, and values on bucket bounds going into that bucket.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "prom.h"

static void test_family_and_samples(void **state)
{
	struct prom_buf b = { 0 };

	(void)state;
	prom_family(&b, "sluice_x_total", "counter", "Packets\nwith a \\ in the help");
	prom_sample_u64(&b, "sluice_x_total", (const char *[]){ "reason", "pass", "direction",
								"egress", NULL },
			18446744073709551615ull);
	prom_sample(&b, "sluice_y", NULL, 0.5);
	prom_sample(&b, "sluice_y", NULL, 0.0001);
	prom_sample(&b, "sluice_y", NULL, INFINITY);
	prom_sample(&b, "sluice_y", NULL, NAN);
	assert_false(b.oom);
	assert_string_equal(b.s,
			    "# HELP sluice_x_total Packets\\nwith a \\\\ in the help\n"
			    "# TYPE sluice_x_total counter\n"
			    "sluice_x_total{reason=\"pass\",direction=\"egress\"} 18446744073709551615\n"
			    "sluice_y 0.5\n"
			    "sluice_y 0.0001\n"
			    "sluice_y +Inf\n"
			    "sluice_y NaN\n");
	prom_buf_free(&b);
}

/* An attacker-chosen object name as a label value stays one value. */
static void test_label_escaping(void **state)
{
	struct prom_buf b = { 0 };

	(void)state;
	prom_sample_u64(&b, "m", (const char *[]){ "prefilter", "a\"} 1\nevil{x=\"\\", NULL }, 7);
	assert_string_equal(b.s, "m{prefilter=\"a\\\"} 1\\nevil{x=\\\"\\\\\"} 7\n");
	/* One line: the newline was escaped. */
	assert_int_equal(strchr(b.s, '\n') - b.s, (long)strlen(b.s) - 1);
	prom_buf_free(&b);
}

static void test_histogram(void **state)
{
	static const double bounds[] = { 0.1, 1, 10 };
	struct prom_hist h;
	struct prom_buf b = { 0 };

	(void)state;
	prom_hist_init(&h, bounds, 3);
	prom_hist_observe(&h, 0.05);
	prom_hist_observe(&h, 0.1);	/* on a bound: le="0.1" counts it */
	prom_hist_observe(&h, 0.5);
	prom_hist_observe(&h, 5);
	prom_hist_observe(&h, 5);
	prom_hist_observe(&h, 100);	/* past the last bound: +Inf only */
	prom_hist_write(&b, "lat_seconds", (const char *[]){ "command", "ADD", NULL }, &h);
	assert_false(b.oom);
	assert_string_equal(b.s,
			    "lat_seconds_bucket{command=\"ADD\",le=\"0.1\"} 2\n"
			    "lat_seconds_bucket{command=\"ADD\",le=\"1\"} 3\n"
			    "lat_seconds_bucket{command=\"ADD\",le=\"10\"} 5\n"
			    "lat_seconds_bucket{command=\"ADD\",le=\"+Inf\"} 6\n"
			    "lat_seconds_sum{command=\"ADD\"} 110.65\n"
			    "lat_seconds_count{command=\"ADD\"} 6\n");
	prom_buf_free(&b);
}

static void test_histogram_no_labels_empty(void **state)
{
	struct prom_hist h;
	struct prom_buf b = { 0 };

	(void)state;
	prom_hist_init(&h, prom_latency_bounds, prom_latency_nbounds);
	prom_hist_write(&b, "s", NULL, &h);
	assert_non_null(strstr(b.s, "s_bucket{le=\"0.0001\"} 0\n"));
	assert_non_null(strstr(b.s, "s_bucket{le=\"10\"} 0\n"));
	assert_non_null(strstr(b.s, "s_bucket{le=\"+Inf\"} 0\ns_sum 0\ns_count 0\n"));
	prom_buf_free(&b);
}

/* Buckets stay cumulative and +Inf equals _count whatever comes. */
static void test_histogram_cumulative(void **state)
{
	struct prom_hist h;
	struct prom_buf b = { 0 };
	unsigned long long prev = 0, v, count = 0, inf = 0;
	uint32_t x = 12345;
	char *line, *save = NULL;

	(void)state;
	prom_hist_init(&h, prom_latency_bounds, prom_latency_nbounds);
	for (int i = 0; i < 10000; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		prom_hist_observe(&h, (double)(x % 20000) / 1000.0);
	}
	prom_hist_write(&b, "h", NULL, &h);
	for (line = strtok_r(b.s, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(line, "h_bucket", 8)) {
			v = strtoull(strrchr(line, ' ') + 1, NULL, 10);
			assert_true(v >= prev);
			prev = v;
			if (strstr(line, "+Inf"))
				inf = v;
		} else if (!strncmp(line, "h_count", 7)) {
			count = strtoull(strrchr(line, ' ') + 1, NULL, 10);
		}
	}
	assert_int_equal(count, 10000);
	assert_int_equal(inf, count);
	prom_buf_free(&b);
}

static void test_large_output(void **state)
{
	struct prom_buf b = { 0 };

	(void)state;
	for (int i = 0; i < 20000; i++)
		prom_sample_u64(&b, "sluice_many", (const char *[]){ "n", "x", NULL }, (uint64_t)i);
	assert_false(b.oom);
	assert_int_equal(b.len, strlen(b.s));
	assert_non_null(strstr(b.s, "sluice_many{n=\"x\"} 19999\n"));
	prom_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_family_and_samples),
		cmocka_unit_test(test_label_escaping),
		cmocka_unit_test(test_histogram),
		cmocka_unit_test(test_histogram_no_labels_empty),
		cmocka_unit_test(test_histogram_cumulative),
		cmocka_unit_test(test_large_output),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
