// SPDX-License-Identifier: Apache-2.0
/* sluicectl get: the tables of the agent's objects, in pages. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "api.h"

/* A Service's BACKENDS cell: address:port state local|remote, for each
 * port's backends; "<none>" for none. */
static char *backends_text(const json_t *ports)
{
	const json_t *p, *b;
	char *out = NULL;
	size_t i, j, len, n = 0;
	FILE *f = open_memstream(&out, &len);

	if (!f)
		return NULL;
	json_array_foreach(ports, i, p)
		json_array_foreach(json_object_get(p, "backends"), j, b)
			fprintf(f, "%s%s:%lld %s %s", n++ ? "," : "", str(b, "address"),
				(long long)json_integer_value(json_object_get(b, "port")),
				str(b, "state"),
				json_is_true(json_object_get(b, "local")) ? "local" : "remote");
	if (!n)
		fputs("<none>", f);
	if (fclose(f)) {
		free(out);
		return NULL;
	}
	return out;
}

static char *frontends_text(const json_t *fes)
{
	json_t *arr = json_array(), *f;
	char *out;
	size_t i;

	json_array_foreach(fes, i, f) {
		char buf[64];

		/* A nodePort as this node has it: its address, not "*". */
		if (json_string_value(json_object_get(f, "nodeAddress")) &&
		    !strcmp(str(f, "kind"), "NodePort")) {
			snprintf(buf, sizeof(buf), "%s:%lld/%s", str(f, "nodeAddress"),
				 (long long)json_integer_value(json_object_get(f, "port")),
				 str(f, "protocol"));
			json_array_append_new(arr, json_string(buf));
		} else {
			json_array_append_new(arr, json_string(str(f, "frontend")));
		}
	}
	out = join_text(arr);
	json_decref(arr);
	return out;
}

/* A prefilter's STATUS cell: why it is not applied, and its entries left
 * out with their reasons (detail answers), or how many. */
static char *prefilter_status_text(const json_t *it)
{
	const json_t *left = json_object_get(it, "leftOut"), *l;
	json_int_t nleft = json_integer_value(json_object_get(it, "leftOutEntries"));
	char *out = NULL;
	size_t i, len;
	FILE *f = open_memstream(&out, &len);

	if (!f)
		return NULL;
	if (json_string_value(json_object_get(it, "reason")))
		fputs(str(it, "reason"), f);
	json_array_foreach(left, i, l)
		fprintf(f, "%s%s: left out", ftell(f) ? "; " : "", str(l, "reason"));
	if (nleft && !json_array_size(left))
		fprintf(f, "%s%lld entries left out (see get prefilter NAME)", ftell(f) ? "; " : "",
			(long long)nleft);
	if (!ftell(f))
		fputs("ok", f);
	if (fclose(f)) {
		free(out);
		return NULL;
	}
	return out;
}

/* The rows of one answer, after the header when header is set. */
int print_items_h(const json_t *r, enum get_what what, bool header)
{
	static const char *const heads[][9] = {
		[GET_NAMESPACES] = { "NAME", "LABELS" },
		[GET_PODS] = { "NAMESPACE", "NAME", "IP", "IDENTITY", "LOCAL", "LABELS" },
		[GET_POLICIES] = { "KIND", "NAMESPACE", "NAME", "TYPES", "MODE", "SELECTED",
				   "STATUS" },
		[GET_IDENTITIES] = { "ID", "NAMESPACE", "LABELS", "PODS" },
		[GET_NODES] = { "NAME", "POD-CIDR", "ADDRESS", "STATE" },
		[GET_SERVICES] = { "NAMESPACE", "NAME", "TYPE", "FRONTENDS", "BACKENDS", "TRAFFIC",
				   "AFFINITY", "TRANSLATED", "STATUS" },
		[GET_PREFILTERS] = { "NAME", "ENTRIES", "APPLIED", "DROPPED PACKETS",
				     "NODE SELECTOR MATCH", "STATUS" },
	};
	static const size_t ncols[] = { [GET_NAMESPACES] = 2, [GET_PODS] = 6,
					[GET_POLICIES] = 7, [GET_IDENTITIES] = 4,
					[GET_NODES] = 4, [GET_SERVICES] = 9,
					[GET_PREFILTERS] = 6 };
	struct table t = { .ncol = ncols[what] };
	const json_t *items = json_object_get(r, "items"), *it;
	char *cells[9];
	size_t i, c;
	int ret;

	ret = 0;
	if (header) {
		for (c = 0; c < t.ncol; c++)
			cells[c] = strdup(heads[what][c]);
		ret = table_row(&t, cells);
	}
	json_array_foreach(items, i, it) {
		if (ret)
			break;
		switch (what) {
		case GET_NAMESPACES:
			cells[0] = dup_str(it, "name");
			cells[1] = labels_text(json_object_get(it, "labels"));
			break;
		case GET_PODS:
			cells[0] = dup_str(it, "namespace");
			cells[1] = dup_str(it, "name");
			cells[2] = dup_str(it, "ip");
			cells[3] = int_text(json_object_get(it, "identity"));
			cells[4] = strdup(json_is_true(json_object_get(it, "local")) ? "yes" : "no");
			cells[5] = labels_text(json_object_get(it, "labels"));
			break;
		case GET_POLICIES:
			cells[0] = dup_str(it, "kind");
			cells[1] = dup_str(it, "namespace");
			cells[2] = dup_str(it, "name");
			cells[3] = join_text(json_object_get(it, "policyTypes"));
			cells[4] = dup_str(it, "mode");
			cells[5] = selected_text(it);
			cells[6] = status_text(it);
			break;
		case GET_IDENTITIES:
			cells[0] = int_text(json_object_get(it, "id"));
			cells[1] = dup_str(it, "namespace");
			cells[2] = labels_text(json_object_get(it, "labels"));
			cells[3] = join_text(json_object_get(it, "pods"));
			break;
		case GET_NODES:
			cells[0] = dup_str(it, "name");
			cells[1] = dup_str(it, "podCIDR");
			cells[2] = dup_str(it, "address");
			cells[3] = dup_str(it, "state");
			break;
		case GET_SERVICES:
			cells[0] = dup_str(it, "namespace");
			cells[1] = dup_str(it, "name");
			cells[2] = dup_str(it, "type");
			cells[3] = frontends_text(json_object_get(it, "frontends"));
			cells[4] = backends_text(json_object_get(it, "ports"));
			if (asprintf(&cells[5], "eTP=%s,iTP=%s", str(it, "externalTrafficPolicy"),
				     str(it, "internalTrafficPolicy")) < 0)
				cells[5] = NULL;
			if (strcmp(str(it, "sessionAffinity"), "ClientIP"))
				cells[6] = dup_str(it, "sessionAffinity");
			else if (asprintf(&cells[6], "ClientIP(%llds)",
					  (long long)json_integer_value(
						  json_object_get(it, "affinityTimeoutSeconds"))) < 0)
				cells[6] = NULL;
			/* translated by this node's datapath, or left to kube-proxy */
			cells[7] = strdup(json_is_true(json_object_get(it, "translated"))
						  ? "yes" : "no");
			cells[8] = status_text(it);
			break;
		case GET_PREFILTERS:
			cells[0] = dup_str(it, "name");
			if (json_integer_value(json_object_get(it, "leftOutEntries"))) {
				if (asprintf(&cells[1], "%lld (%lld left out)",
					     (long long)json_integer_value(json_object_get(it, "entries")),
					     (long long)json_integer_value(
						     json_object_get(it, "leftOutEntries"))) < 0)
					cells[1] = NULL;
			} else {
				cells[1] = int_text(json_object_get(it, "entries"));
			}
			cells[2] = strdup(json_is_true(json_object_get(it, "applied")) ? "yes" : "no");
			cells[3] = int_text(json_object_get(json_object_get(it, "dropped"), "packets"));
			if (!json_string_value(json_object_get(it, "nodeSelector")) ||
			    !*json_string_value(json_object_get(it, "nodeSelector")))
				cells[4] = strdup(json_is_true(json_object_get(it, "nodeSelectorMatch"))
							  ? "yes (all nodes)" : "no");
			else if (asprintf(&cells[4], "%s (%s)",
					  json_is_true(json_object_get(it, "nodeSelectorMatch")) ? "yes"
												   : "no",
					  str(it, "nodeSelector")) < 0)
				cells[4] = NULL;
			cells[5] = prefilter_status_text(it);
			break;
		}
		ret = table_row(&t, cells);
	}
	if (!ret)
		table_print(&t);
	table_free(&t);
	return ret;
}

int print_items(const json_t *r, enum get_what what)
{
	return print_items_h(r, what, true);
}

int print_namespaces(const json_t *r) { return print_items(r, GET_NAMESPACES); }
int print_pods(const json_t *r) { return print_items(r, GET_PODS); }
int print_policies(const json_t *r) { return print_items(r, GET_POLICIES); }
int print_identities(const json_t *r) { return print_items(r, GET_IDENTITIES); }
int print_nodes(const json_t *r) { return print_items(r, GET_NODES); }
int print_prefilters(const json_t *r) { return print_items(r, GET_PREFILTERS); }

/* get prefilter NAME: the table row, then each deny entry with its drops. */
int print_prefilter(const json_t *r)
{
	json_t *wrap = json_pack("{s:[O]}", "items", r);
	const json_t *e;
	size_t i;
	int ret;

	if (!wrap)
		return -ENOMEM;
	ret = print_items(wrap, GET_PREFILTERS);
	json_decref(wrap);
	if (ret)
		return ret;
	printf("\n%-20s %-8s %12s %14s\n", "DENY", "APPLIED", "PACKETS", "BYTES");
	json_array_foreach(json_object_get(r, "deny"), i, e)
		printf("%-20s %-8s %12lld %14lld\n", str(e, "cidr"),
		       json_is_true(json_object_get(e, "applied")) ? "yes" : "no",
		       (long long)json_integer_value(
			       json_object_get(json_object_get(e, "dropped"), "packets")),
		       (long long)json_integer_value(
			       json_object_get(json_object_get(e, "dropped"), "bytes")));
	return 0;
}

int print_services(const json_t *r)
{
	int ret = print_items(r, GET_SERVICES);

	if (!ret && json_string_value(json_object_get(r, "note")))
		printf("\nNote: %s.\n", json_string_value(json_object_get(r, "note")));
	return ret;
}

static enum get_what get_what_of(const char *what)
{
	static const char *const names[] = {
		[GET_NAMESPACES] = "namespaces", [GET_PODS] = "pods",
		[GET_POLICIES] = "policies", [GET_IDENTITIES] = "identities",
		[GET_NODES] = "nodes", [GET_SERVICES] = "services",
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(what, names[i]))
			break;
	return (enum get_what)i;
}

/*
 * get in pages of o->chunk_size: each page printed as it arrives, so
 * sluicectl holds one page, never the whole list. With -o json the pages
 * make one object {"items": […], and the last answer's other members}.
 * An agent without pages answers everything at once, without "continue":
 * that is the one page.
 */
int get_pages(const struct cmd *c, const struct opts *o, json_t *req)
{
	enum get_what what = get_what_of(c->what);
	json_t *resp = NULL;
	const json_t *result = NULL, *items, *it, *v;
	const char *next, *key;
	size_t page = 0, count = 0, i;
	char err[512];
	int ret;

	if (json_object_set_new(req, "limit", json_integer(o->chunk_size))) {
		ret = EXIT_FAIL;
		fprintf(stderr, "sluicectl: out of memory\n");
		goto cleanup;
	}
	for (;; page++) {
		if (api_call(o->socket_path, req, &resp, TIMEOUT_MS, err, sizeof(err))) {
			fprintf(stderr, "sluicectl: %s%s\n", err,
				page ? " (the list printed so far is incomplete)" : "");
			ret = EXIT_UNREACHABLE;
			goto cleanup;
		}
		if (!json_is_true(json_object_get(resp, "ok"))) {
			if (o->json_out && !page) {
				json_dumpf(resp, stdout, JSON_INDENT(2));
				putchar('\n');
			}
			print_agent_error(resp);
			if (page)
				fprintf(stderr, "  (at page %zu: the list printed so far is "
					"incomplete)\n", page + 1);
			ret = EXIT_FAIL;
			goto cleanup;
		}
		result = json_object_get(resp, "result");
		items = json_object_get(result, "items");
		if (o->json_out) {
			if (!page)
				printf("{\n  \"items\": [");
			json_array_foreach(items, i, it) {
				printf("%s\n    ", count + i ? "," : "");
				if (print_json_at(it, 4)) {
					ret = EXIT_FAIL;
					fprintf(stderr, "sluicectl: out of memory\n");
					goto cleanup;
				}
			}
		} else if (print_items_h(result, what, !page)) {
			ret = EXIT_FAIL;
			fprintf(stderr, "sluicectl: out of memory\n");
			goto cleanup;
		}
		count += json_array_size(items);
		fflush(stdout);
		next = json_string_value(json_object_get(result, "continue"));
		if (!next || !*next)
			break;
		if (json_object_set_new(req, "continue", json_string(next))) {
			ret = EXIT_FAIL;
			fprintf(stderr, "sluicectl: out of memory\n");
			goto cleanup;
		}
		json_decref(resp);
		resp = NULL;
	}
	/* The last answer's other members (services: "note", "translated"). */
	if (o->json_out) {
		printf("%s]", count ? "\n  " : "");
		json_object_foreach((json_t *)result, key, v) {
			if (!strcmp(key, "items") || !strcmp(key, "continue"))
				continue;
			printf(",\n  \"%s\": ", key);
			if (print_json_at(v, 2)) {
				ret = EXIT_FAIL;
				fprintf(stderr, "sluicectl: out of memory\n");
				goto cleanup;
			}
		}
		printf("\n}\n");
	} else if (what == GET_SERVICES && json_string_value(json_object_get(result, "note"))) {
		printf("\nNote: %s.\n", json_string_value(json_object_get(result, "note")));
	}
	ret = EXIT_OK;
cleanup:
	json_decref(resp);
	return ret;
}
