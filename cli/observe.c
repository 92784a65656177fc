// SPDX-License-Identifier: Apache-2.0
/* sluicectl observe and top: the agent's flows and round trips. */
#include <time.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "api.h"
#include "flowfmt.h"

/* --since: "30s", "5m", "2h", "1d" or plain seconds; -1 when invalid. */
double parse_duration(const char *s)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || v <= 0)
		return -1;
	if (!*end || !strcmp(end, "s"))
		return v;
	if (!strcmp(end, "ms"))
		return v / 1000;
	if (!strcmp(end, "m"))
		return v * 60;
	if (!strcmp(end, "h"))
		return v * 3600;
	if (!strcmp(end, "d"))
		return v * 86400;
	return -1;
}

/* Add one filter value to the request's member key (an array). */
int add_filter(json_t *filters, const char *key, const char *val)
{
	json_t *a = json_object_get(filters, key);

	if (!a) {
		a = json_array();
		if (json_object_set_new(filters, key, a))
			return -1;
	}
	return json_array_append_new(a, json_string(val));
}

static void print_flows(const json_t *flows, bool json_out, bool *header)
{
	size_t i;
	const json_t *f;
	char line[4096];

	json_array_foreach(flows, i, f) {
		if (json_out) {
			json_dumpf(f, stdout, JSON_COMPACT);
			putchar('\n');
			continue;
		}
		if (!*header) {
			puts(flowfmt_header());
			*header = true;
		}
		flowfmt_line(f, line, sizeof(line));
		puts(line);
	}
	fflush(stdout);
}

/* observe: one answer, or with --follow the new flows every 200 ms (the
 * agent's sequence numbers: none is printed twice, none missed while it
 * is in the buffer). */
int observe(const struct opts *o, json_t *req)
{
	const struct timespec pause = { 0, 200 * 1000000L };
	json_t *resp = NULL;
	const json_t *result;
	bool header = false, first = true;
	json_int_t after = -1;
	char err[512];
	int ret = EXIT_OK;

	if (json_object_update(req, o->filters)) {
		fprintf(stderr, "sluicectl: out of memory\n");
		return EXIT_FAIL;
	}
	/* Following without --last: only flows from now on. */
	if (o->follow && !json_object_get(req, "last"))
		json_object_set_new(req, "after", json_integer(INT64_MAX));
	for (;;) {
		if (after >= 0)
			json_object_set_new(req, "after", json_integer(after));
		if (after >= 0 || !first)
			json_object_del(req, "last");
		first = false;
		if (api_call(o->socket_path, req, &resp, TIMEOUT_MS, err, sizeof(err))) {
			fprintf(stderr, "sluicectl: %s\n", err);
			ret = EXIT_UNREACHABLE;
			break;
		}
		if (!json_is_true(json_object_get(resp, "ok"))) {
			print_agent_error(resp);
			ret = EXIT_FAIL;
			break;
		}
		result = json_object_get(resp, "result");
		print_flows(json_object_get(result, "flows"), o->output == OUT_JSON, &header);
		if (!o->follow) {
			json_int_t t = json_integer_value(json_object_get(result, "truncated"));

			if (t > 0)
				fprintf(stderr, "sluicectl: %lld older matching flows not shown (at "
					"most %zu per answer); narrow the filters or use --last\n",
					(long long)t, json_array_size(json_object_get(result, "flows")));
			break;
		}
		after = json_integer_value(json_object_get(result, "lastSeq"));
		if (!json_is_true(json_object_get(result, "more")))
			nanosleep(&pause, NULL);
		json_decref(resp);
		resp = NULL;
	}
	json_decref(resp);
	return ret;
}

void print_top(const char *what, const json_t *r)
{
	const json_t *x;
	size_t i;
	char src[300], dst[300];

	if (!strcmp(what, "flows")) {
		printf("%-34s  -> %-32s  %-10s  %9s  %9s  %8s  %s\n", "SOURCE", "DESTINATION",
		       "PROTO/PORT", "SRTT-US", "MIN-US", "RETRANS", "VERDICT");
		json_array_foreach(json_object_get(r, "flows"), i, x) {
			const json_t *rt = json_object_get(x, "retransmits");
			char pp[32];

			flowfmt_peer(json_object_get(x, "source"), src, sizeof(src));
			flowfmt_peer(json_object_get(x, "destination"), dst, sizeof(dst));
			snprintf(pp, sizeof(pp), "%s/%lld", str(x, "protocol"),
				 json_integer_value(json_object_get(json_object_get(x, "destination"),
								    "port")));
			printf("%-34s  -> %-32s  %-10s  %9lld  %9lld  %8lld  %s\n", src, dst, pp,
			       json_integer_value(json_object_get(x, "rttSmoothedUs")),
			       json_integer_value(json_object_get(x, "rttMinUs")),
			       json_integer_value(json_object_get(rt, "forward")) +
				       json_integer_value(json_object_get(rt, "reply")),
			       str(x, "verdict"));
		}
		return;
	}
	for (int k = 0; k < 2; k++) {
		const char *key = k ? "namespacePairs" : "podPairs";

		printf("%s%-40s  %-40s  %8s  %8s  %8s  %8s\n", k ? "\n" : "",
		       k ? "SOURCE-NAMESPACE" : "SOURCE-POD",
		       k ? "DESTINATION-NAMESPACE" : "DESTINATION-POD", "SAMPLES", "P50-US",
		       "P99-US", "RETRANS");
		json_array_foreach(json_object_get(r, key), i, x)
			printf("%-40s  %-40s  %8lld  %8lld  %8lld  %8lld\n", str(x, "source"),
			       str(x, "destination"), json_integer_value(json_object_get(x, "samples")),
			       json_integer_value(json_object_get(x, "p50Us")),
			       json_integer_value(json_object_get(x, "p99Us")),
			       json_integer_value(json_object_get(x, "retransmits")));
	}
	printf("\n(round trips in power-of-two buckets: a quantile is its bucket's upper "
	       "bound)\n");
}
