// SPDX-License-Identifier: Apache-2.0
/*
 * sluicectl describe KIND [NAME…]: one object in words. A policy: what it
 * selects, its rules and the pods each admits, enforced or audit, its
 * status; a pod: identity, address, the policies that select it per
 * direction, its endpoint and counters; a node. Built from get, list and
 * the agent's describe (a policy's rules, docs/API.md).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "bwconf.h"
#include "cli.h"
#include "yamlout.h"

/* One request; the answer's result in *result (to free). An exit code. */
static int call(const struct opts *o, json_t *req, json_t **result)
{
	json_t *resp = NULL;
	char err[512];
	int ret;

	*result = NULL;
	if (!req) {
		fprintf(stderr, "sluicectl: out of memory\n");
		return EXIT_FAIL;
	}
	if (api_call(o->socket_path, req, &resp, TIMEOUT_MS, err, sizeof(err))) {
		fprintf(stderr, "sluicectl: %s\n", err);
		ret = EXIT_UNREACHABLE;
	} else if (!json_is_true(json_object_get(resp, "ok"))) {
		print_agent_error(resp);
		ret = EXIT_FAIL;
	} else {
		*result = json_incref(json_object_get(resp, "result"));
		ret = EXIT_OK;
	}
	json_decref(req);
	json_decref(resp);
	return ret;
}

/* Every item of a kind, in every namespace. */
static int all_of(const struct opts *o, const char *kind, json_t **items)
{
	struct cmd c = { .kind = CMD_GET, .kind_of = kind_lookup(kind) };
	struct opts all = *o;
	struct get_filter f;
	int ret;

	all.all_namespaces = true;
	all.namespace = NULL;
	all.selector = NULL;
	ret = get_items(&c, &all, &f, items);
	if (!ret)
		get_filter_free(&f);
	return ret;
}

static void print_list(const char *label, const json_t *names, json_int_t count)
{
	const json_t *n;
	size_t i;

	printf("%s", label);
	if (!json_array_size(names))
		printf("none\n");
	json_array_foreach(names, i, n)
		printf("%s%s", i ? (i % 4 ? ", " : ",\n               ") : "", json_string_value(n));
	if (count > (json_int_t)json_array_size(names))
		printf(", … (%lld in all)", (long long)count);
	if (json_array_size(names))
		printf("\n");
}

static void describe_rule(const json_t *r)
{
	const bool ingress = !strcmp(str(r, "direction"), "Ingress");
	const json_t *v;
	size_t i;

	printf("  %lld: %s %s ", (long long)json_integer_value(json_object_get(r, "index")),
	       strcmp(str(r, "action"), "Deny") ? "allow" : "deny", ingress ? "from" : "to");
	if (json_is_true(json_object_get(r, "anyPeer")))
		printf("anywhere (every pod and address)");
	json_array_foreach(json_object_get(r, "peers"), i, v)
		printf("%s%s", i ? "; or " : "", json_string_value(v));
	printf(", on ");
	if (json_is_true(json_object_get(r, "anyPort")) &&
	    !json_array_size(json_object_get(r, "ports")))
		printf("every port and protocol");
	json_array_foreach(json_object_get(r, "ports"), i, v)
		printf("%s%s", i ? ", " : "", json_string_value(v));
	printf("\n");
	print_list(ingress ? "     admits:   " : "     reaches:  ", json_object_get(r, "pods"),
		   json_integer_value(json_object_get(r, "podsCount")));
}

static int describe_policy(const struct opts *o, const json_t *it)
{
	const char *ns = json_string_value(json_object_get(it, "namespace"));
	const json_t *types = json_object_get(it, "policyTypes"), *t, *r;
	json_t *res = NULL;
	bool audit = !strcmp(str(it, "mode"), "Audit");
	char *status = status_text(it);
	size_t i;
	int ret;

	printf("Name:          %s\n", str(it, "name"));
	printf("Namespace:     %s\n", ns && *ns ? ns : "(cluster-wide)");
	printf("Kind:          %s\n", str(it, "kind"));
	printf("Mode:          %s\n", audit ? "Audit: what it would deny is logged and counted, "
					      "nothing is dropped"
					    : "Enforce: what no rule allows is dropped");
	printf("Status:        %s\n", status ? status : "-");
	free(status);
	if (json_string_value(json_object_get(it, "note")))
		printf("Note:          %s\n", str(it, "note"));
	print_list("Selects:       ", json_object_get(it, "selectedPods"),
		   json_integer_value(json_object_get(it, "selectedPodsCount")));
	printf("Isolates:      ");
	json_array_foreach(types, i, t)
		printf("%s%s", i ? " and " : "", !strcmp(json_string_value(t) ?: "", "Ingress")
							 ? "ingress (what reaches them)"
							 : "egress (what they reach)");
	printf("%s\n", json_array_size(types) ? " of those pods" : "nothing");
	ret = call(o, json_pack("{s:s, s:s, s:s, s:s, s:s}", "op", "describe", "what", "policy",
				"kind", str(it, "kind"), "namespace", ns ? ns : "", "name",
				str(it, "name")),
		   &res);
	if (ret)
		return ret;
	for (int dir = 0; dir < 2; dir++) {
		const char *want = dir ? "Egress" : "Ingress";
		size_t n = 0;
		bool isolated = false;

		json_array_foreach(types, i, t)
			isolated |= !strcmp(json_string_value(t) ?: "", want);
		if (!isolated)
			continue;
		printf("%s rules:\n", want);
		json_array_foreach(json_object_get(res, "rules"), i, r)
			if (!strcmp(str(r, "direction"), want)) {
				describe_rule(r);
				n++;
			}
		if (!n)
			printf("  none: every %s of the selected pods is denied\n",
			       dir ? "egress" : "ingress");
	}
	json_decref(res);
	return EXIT_OK;
}

/* The policies whose SELECTED names the pod, per direction. */
static void pod_policies(const json_t *policies, const char *key)
{
	for (int dir = 0; dir < 2; dir++) {
		const char *want = dir ? "Egress" : "Ingress";
		const json_t *p, *t, *n;
		size_t i, j, k, count = 0;

		printf("%s       ", dir ? "  Egress: " : "  Ingress:");
		json_array_foreach(policies, i, p) {
			bool dir_ok = false, selects = false;

			json_array_foreach(json_object_get(p, "policyTypes"), j, t)
				dir_ok |= !strcmp(json_string_value(t) ?: "", want);
			json_array_foreach(json_object_get(p, "selectedPods"), k, n)
				selects |= !strcmp(json_string_value(n) ?: "", key);
			if (!dir_ok || !selects)
				continue;
			printf("%s%s %s%s%s (%s)", count++ ? ",\n                 " : "",
			       str(p, "kind"), *str(p, "namespace") != '-' ? str(p, "namespace") : "",
			       *str(p, "namespace") != '-' ? "/" : "", str(p, "name"),
			       str(p, "mode"));
		}
		printf("%s\n", count ? "" : "none: not isolated, everything allowed");
	}
}

static void pod_endpoint(const json_t *e)
{
	const json_t *bw = json_object_get(e, "bandwidth");
	char rate[2][16];

	printf("Endpoint:      container %s, %s, host side %s (ifindex %lld), %s\n",
	       str(e, "containerId"), str(e, "ifname"), str(e, "hostIfname"),
	       (long long)json_integer_value(json_object_get(e, "hostIfindex")), str(e, "state"));
	if (!bw)
		return;
	bw_format_rate((uint64_t)json_integer_value(json_object_get(bw, "egressRate")), rate[0],
		       sizeof(rate[0]));
	bw_format_rate((uint64_t)json_integer_value(json_object_get(bw, "ingressRate")), rate[1],
		       sizeof(rate[1]));
	printf("Bandwidth:     egress %s, ingress %s (bit/s)\n", rate[0], rate[1]);
	for (int dir = 0; dir < 2; dir++) {
		const json_t *c = json_object_get(bw, dir ? "ingress" : "egress");

		if (c)
			printf("  %s: %lld packets (%lld bytes) passed, %lld (%lld bytes) "
			       "dropped\n", dir ? "ingress" : "egress ",
			       (long long)json_integer_value(json_object_get(c, "passedPackets")),
			       (long long)json_integer_value(json_object_get(c, "passedBytes")),
			       (long long)json_integer_value(json_object_get(c, "droppedPackets")),
			       (long long)json_integer_value(json_object_get(c, "droppedBytes")));
	}
}

static int describe_pod(const struct opts *o, const json_t *it)
{
	json_t *policies = NULL, *eps = NULL;
	const json_t *e;
	char key[512], *labels = labels_text(json_object_get(it, "labels"));
	size_t i, n = 0;
	int ret;

	snprintf(key, sizeof(key), "%s/%s", str(it, "namespace"), str(it, "name"));
	printf("Name:          %s\n", str(it, "name"));
	printf("Namespace:     %s\n", str(it, "namespace"));
	printf("Labels:        %s\n", labels ? labels : "?");
	free(labels);
	printf("IP:            %s\n", str(it, "ip"));
	printf("Identity:      %lld\n", (long long)json_integer_value(json_object_get(it, "identity")));
	printf("On this node:  %s\n", json_is_true(json_object_get(it, "local")) ? "yes" : "no");
	ret = all_of(o, "policies", &policies);
	if (ret)
		return ret;
	printf("Policies:\n");
	pod_policies(policies, key);
	json_decref(policies);
	ret = call(o, json_pack("{s:s}", "op", "list"), &eps);
	if (ret)
		return ret;
	json_array_foreach(json_object_get(eps, "endpoints"), i, e)
		if (!strcmp(str(e, "namespace"), str(it, "namespace")) &&
		    !strcmp(str(e, "pod"), str(it, "name"))) {
			pod_endpoint(e);
			n++;
		}
	if (!n)
		printf("Endpoint:      none on this node\n");
	json_decref(eps);
	return EXIT_OK;
}

static int describe_node(const struct opts *o, const json_t *it)
{
	json_t *pods = NULL;
	const json_t *p;
	size_t i, n = 0;
	int ret;

	printf("Name:          %s\n", str(it, "name"));
	printf("Pod CIDR:      %s\n", str(it, "podCIDR"));
	printf("Address:       %s\n", str(it, "address"));
	printf("State:         %s\n", str(it, "state"));
	if (!json_is_true(json_object_get(it, "local")))
		return EXIT_OK;
	ret = all_of(o, "pods", &pods);
	if (ret)
		return ret;
	printf("Pods here:     ");
	json_array_foreach(pods, i, p)
		if (json_is_true(json_object_get(p, "local")))
			printf("%s%s/%s", n++ ? ", " : "", str(p, "namespace"), str(p, "name"));
	printf("%s\n", n ? "" : "none");
	json_decref(pods);
	return EXIT_OK;
}

int run_describe(const struct cmd *c, struct opts *o)
{
	struct get_filter f;
	json_t *items = NULL;
	const json_t *it;
	size_t i;
	int ret;

	ret = get_items(c, o, &f, &items);
	if (ret)
		return ret;
	json_array_foreach(items, i, it) {
		if (i)
			printf("\n");
		switch (c->kind_of->what) {
		case GET_POLICIES:
			ret = describe_policy(o, it);
			break;
		case GET_PODS:
			ret = describe_pod(o, it);
			break;
		case GET_NODES:
			ret = describe_node(o, it);
			break;
		default:
			/* the kinds without a page of their own: their fields */
			ret = yaml_print_json(stdout, it) ? EXIT_FAIL : EXIT_OK;
			break;
		}
		if (ret)
			break;
	}
	for (i = 0; !ret && i < c->nnames; i++)
		if (!f.found[i]) {
			fprintf(stderr, "Error: %s \"%s\" not found%s%s\n", c->kind_of->names[0],
				c->names[i], f.ns && c->kind_of->namespaced &&
				!strchr(c->names[i], '/') ? " in namespace " : "",
				f.ns && c->kind_of->namespaced && !strchr(c->names[i], '/') ? f.ns : "");
			ret = EXIT_FAIL;
		}
	if (!ret && !json_array_size(items) && !c->nnames)
		fprintf(stderr, "No resources found%s%s.\n", f.ns ? " in namespace " : "",
			f.ns ? f.ns : "");
	get_filter_free(&f);
	json_decref(items);
	return ret;
}
