// SPDX-License-Identifier: Apache-2.0
/* sluicectl get: the tables of the agent's objects, one row per item. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "bwconf.h"

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

/* An endpoint's EGRESS-BW or INGRESS-BW cell: the rate in bit/s as
 * runtimeConfig.bandwidth gives it; "-" for none. */
static char *rate_text(const json_t *e, const char *key)
{
	char buf[16];

	bw_format_rate((uint64_t)json_integer_value(json_object_get(json_object_get(e, "bandwidth"),
								      key)),
		       buf, sizeof(buf));
	return strdup(buf);
}

/* A cell cut to max characters (0: whole), as narrow tables have it. */
static char *cut_str(const json_t *obj, const char *key, size_t max)
{
	return max ? strndup(str(obj, key), max) : dup_str(obj, key);
}

int items_table(const json_t *items, enum get_what what, bool header, bool wide)
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
		[GET_ENDPOINTS] = { "CONTAINER", "NAMESPACE/POD", "IFACE", "IP", "HOST-IFACE",
				    "IFINDEX", "EGRESS-BW", "INGRESS-BW", "STATE" },
	};
	static const size_t ncols[] = { [GET_NAMESPACES] = 2, [GET_PODS] = 6,
					[GET_POLICIES] = 7, [GET_IDENTITIES] = 4,
					[GET_NODES] = 4, [GET_SERVICES] = 9,
					[GET_PREFILTERS] = 6, [GET_ENDPOINTS] = 9 };
	/* -o wide: policies also show their NOTE (the first exact reading
	 * worth knowing: a CIDR with host bits, an IPv6 peer) */
	const bool note = wide && what == GET_POLICIES;
	struct table t = { .ncol = ncols[what] + note };
	const json_t *it;
	char *cells[9];
	size_t i, c;
	int ret;

	ret = 0;
	if (header) {
		for (c = 0; c < t.ncol; c++)
			cells[c] = strdup(c < ncols[what] ? heads[what][c] : "NOTE");
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
			if (note)
				cells[7] = dup_str(it, "note");
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
		case GET_ENDPOINTS:
			/* -o wide: container IDs and pods whole */
			cells[0] = cut_str(it, "containerId", wide ? 0 : 20);
			if (asprintf(&cells[1], "%s/%s", str(it, "namespace"), str(it, "pod")) < 0)
				cells[1] = NULL;
			else if (!wide && strlen(cells[1]) > 28)
				cells[1][28] = '\0';
			cells[2] = dup_str(it, "ifname");
			cells[3] = dup_str(it, "ip");
			cells[4] = dup_str(it, "hostIfname");
			cells[5] = int_text(json_object_get(it, "hostIfindex"));
			cells[6] = rate_text(it, "egressRate");
			cells[7] = rate_text(it, "ingressRate");
			cells[8] = dup_str(it, "state");
			break;
		}
		ret = table_row(&t, cells);
	}
	if (!ret)
		table_print(&t);
	table_free(&t);
	return ret;
}

/* A prefilter's deny entries, each with its drops. */
void print_deny_entries(const json_t *r)
{
	const json_t *e;
	size_t i;

	json_array_foreach(json_object_get(r, "deny"), i, e)
		printf("%-20s %-8s %12lld %14lld\n", str(e, "cidr"),
		       json_is_true(json_object_get(e, "applied")) ? "yes" : "no",
		       (long long)json_integer_value(
			       json_object_get(json_object_get(e, "dropped"), "packets")),
		       (long long)json_integer_value(
			       json_object_get(json_object_get(e, "dropped"), "bytes")));
}
