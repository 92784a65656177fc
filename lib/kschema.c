// SPDX-License-Identifier: Apache-2.0
/*
 * Field validation: one schema table per kind (kschema.h). Field names are
 * the Kubernetes API's (k8s.io/api core/v1, networking/v1, discovery/v1,
 * meta/v1 ObjectMeta and LabelSelector) and sluice's CRDs
 * (deploy/crds/sluice-policy-crds.yaml).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kschema.h"

/* An object node lists its fields; a field with a NULL node is not looked
 * into (a scalar, a map of free keys such as labels, or a subtree sluice
 * does not read). A list node checks each item. An open object accepts
 * fields it does not list: a large upstream type (a Pod's spec, a
 * container, a status) of which sluice reads a few fields. */
struct ks_node;
struct ks_field {
	const char *name;
	const struct ks_node *node;
};
struct ks_node {
	bool list;
	bool open;
	const struct ks_field *fields;	/* ends with { NULL } */
	const struct ks_node *items;
};

#define FIELDS(...) ((const struct ks_field[]){ __VA_ARGS__, { NULL, NULL } })
#define OBJECT(...) { .fields = FIELDS(__VA_ARGS__) }
#define OPEN(...) { .open = true, .fields = FIELDS(__VA_ARGS__) }
#define LIST(n) (&(const struct ks_node){ .list = true, .items = (n) })
#define SUB(...) (&(const struct ks_node)OBJECT(__VA_ARGS__))
#define F(name) { name, NULL }

/* ---- shared types (meta/v1) ------------------------------------------- */

static const struct ks_node label_selector =
	OBJECT(F("matchLabels"),
	       { "matchExpressions", LIST(SUB(F("key"), F("operator"), F("values"))) });

static const struct ks_node object_meta =
	OBJECT(F("annotations"), F("creationTimestamp"), F("deletionGracePeriodSeconds"),
	       F("deletionTimestamp"), F("finalizers"), F("generateName"), F("generation"),
	       F("labels"), F("managedFields"), F("name"), F("namespace"),
	       { "ownerReferences", LIST(SUB(F("apiVersion"), F("blockOwnerDeletion"),
					     F("controller"), F("kind"), F("name"), F("uid"))) },
	       F("resourceVersion"), F("selfLink"), F("uid"));

/* ---- NetworkPolicy and sluice's policy kinds -------------------------- */

static const struct ks_node np_peers =
	{ .list = true, .items = SUB({ "podSelector", &label_selector },
				     { "namespaceSelector", &label_selector },
				     { "ipBlock", SUB(F("cidr"), F("except")) }) };
static const struct ks_node np_ports =
	{ .list = true, .items = SUB(F("protocol"), F("port"), F("endPort")) };

static const struct ks_node netpol =
	OBJECT(F("apiVersion"), F("kind"), { "metadata", &object_meta },
	       { "spec", SUB({ "podSelector", &label_selector }, F("policyTypes"),
			     { "ingress", LIST(SUB({ "from", &np_peers }, { "ports", &np_ports })) },
			     { "egress", LIST(SUB({ "to", &np_peers }, { "ports", &np_ports })) }) },
	       F("status"));

/* A sluice rule: a NetworkPolicy rule with action and icmp. */
#define SLUICE_RULES(peers)                                                                 \
	LIST(SUB({ peers, &np_peers }, { "ports", &np_ports }, F("action"),                 \
		 { "icmp", LIST(SUB(F("type"), F("code"))) }))

/* The CRDs have no status. */
static const struct ks_node sluice_netpol =
	OBJECT(F("apiVersion"), F("kind"), { "metadata", &object_meta },
	       { "spec", SUB({ "podSelector", &label_selector }, F("policyTypes"), F("mode"),
			     { "ingress", SLUICE_RULES("from") },
			     { "egress", SLUICE_RULES("to") }) });

static const struct ks_node sluice_cluster_netpol =
	OBJECT(F("apiVersion"), F("kind"), { "metadata", &object_meta },
	       { "spec", SUB({ "podSelector", &label_selector },
			     { "namespaceSelector", &label_selector }, F("policyTypes"),
			     F("mode"), { "ingress", SLUICE_RULES("from") },
			     { "egress", SLUICE_RULES("to") }) });

static const struct ks_node prefilter =
	OBJECT(F("apiVersion"), F("kind"), { "metadata", &object_meta },
	       { "spec", SUB(F("deny"), F("except"),
			     { "ports", LIST(SUB(F("protocol"), F("port"))) },
			     { "nodeSelector", &label_selector }) });

/* ---- core/v1 and discovery/v1 ----------------------------------------- */

static const struct ks_node namespace =
	OBJECT(F("apiVersion"), F("kind"), { "metadata", &object_meta },
	       { "spec", SUB(F("finalizers")) }, F("status"));

/* A Pod: sluice reads the labels, spec.containers[].ports, hostNetwork and
 * status.phase/podIP/podIPs. PodSpec and Container have dozens of fields
 * and gain some in most releases: open. */
static const struct ks_node pod =
	OBJECT(F("apiVersion"), F("kind"), { "metadata", &object_meta },
	       { "spec", &(const struct ks_node)OPEN(
				 { "containers",
				   LIST(&(const struct ks_node)OPEN(
					   { "ports", LIST(SUB(F("containerPort"), F("hostIP"),
							       F("hostPort"), F("name"),
							       F("protocol"))) })) }) },
	       { "status", &(const struct ks_node)OPEN({ "podIPs", LIST(SUB(F("ip"))) }) });

/* A Node: spec (NodeSpec, small) whole; of the status, the addresses. */
static const struct ks_node node =
	OBJECT(F("apiVersion"), F("kind"), { "metadata", &object_meta },
	       { "spec", SUB(F("configSource"), F("externalID"), F("podCIDR"), F("podCIDRs"),
			     F("providerID"), F("taints"), F("unschedulable")) },
	       { "status", &(const struct ks_node)OPEN(
				   { "addresses", LIST(SUB(F("address"), F("type"))) }) });

/* A Service: ServiceSpec whole (sluice reads most of it). */
static const struct ks_node service =
	OBJECT(F("apiVersion"), F("kind"), { "metadata", &object_meta },
	       { "spec", SUB(F("allocateLoadBalancerNodePorts"), F("clusterIP"), F("clusterIPs"),
			     F("externalIPs"), F("externalName"), F("externalTrafficPolicy"),
			     F("healthCheckNodePort"), F("internalTrafficPolicy"),
			     F("ipFamilies"), F("ipFamilyPolicy"), F("loadBalancerClass"),
			     F("loadBalancerIP"), F("loadBalancerSourceRanges"),
			     { "ports", LIST(SUB(F("appProtocol"), F("name"), F("nodePort"),
						 F("port"), F("protocol"), F("targetPort"))) },
			     F("publishNotReadyAddresses"), F("selector"), F("sessionAffinity"),
			     { "sessionAffinityConfig",
			       SUB({ "clientIP", SUB(F("timeoutSeconds")) }) },
			     F("trafficDistribution"), F("type")) },
	       { "status", &(const struct ks_node)OPEN(
				   { "loadBalancer",
				     SUB({ "ingress", LIST(SUB(F("hostname"), F("ip"), F("ipMode"),
							       F("ports"))) }) }) });

static const struct ks_node endpoint_slice =
	OBJECT(F("apiVersion"), F("kind"), { "metadata", &object_meta }, F("addressType"),
	       { "endpoints",
		 LIST(SUB(F("addresses"),
			  { "conditions", SUB(F("ready"), F("serving"), F("terminating")) },
			  F("deprecatedTopology"), { "hints", SUB(F("forNodes"), F("forZones")) },
			  F("hostname"), F("nodeName"),
			  { "targetRef", SUB(F("apiVersion"), F("fieldPath"), F("kind"), F("name"),
					     F("namespace"), F("resourceVersion"), F("uid")) },
			  F("zone"))) },
	       { "ports", LIST(SUB(F("appProtocol"), F("name"), F("port"), F("protocol"))) });

/* The kinds agent/store.c takes (its kinds[]). */
static const struct {
	const char *api_version;
	const char *kind;
	bool namespaced;
	const struct ks_node *schema;
} kinds[] = {
	{ "v1", "Namespace", false, &namespace },
	{ "v1", "Pod", true, &pod },
	{ "v1", "Node", false, &node },
	{ "v1", "Service", true, &service },
	{ "discovery.k8s.io/v1", "EndpointSlice", true, &endpoint_slice },
	{ "sluice.io/v1alpha1", "SluicePrefilter", false, &prefilter },
	{ "networking.k8s.io/v1", "NetworkPolicy", true, &netpol },
	{ "sluice.io/v1alpha1", "SluiceNetworkPolicy", true, &sluice_netpol },
	{ "sluice.io/v1alpha1", "SluiceClusterNetworkPolicy", false, &sluice_cluster_netpol },
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

/* ---- modes ------------------------------------------------------------ */

int ks_mode_parse(const char *s, enum ks_mode *mode)
{
	if (!s)
		return -EINVAL;
	if (!strcmp(s, "strict") || !strcmp(s, "true"))
		*mode = KS_STRICT;
	else if (!strcmp(s, "warn"))
		*mode = KS_WARN;
	else if (!strcmp(s, "ignore") || !strcmp(s, "false"))
		*mode = KS_IGNORE;
	else
		return -EINVAL;
	return 0;
}

const char *ks_mode_name(enum ks_mode mode)
{
	return mode == KS_WARN ? "warn" : mode == KS_IGNORE ? "ignore" : "strict";
}

/* ---- suggestions ------------------------------------------------------ */

#define KS_NAME_MAX 63

size_t ks_edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[KS_NAME_MAX + 1], i, j;

	if (la > KS_NAME_MAX || lb > KS_NAME_MAX)
		return SIZE_MAX;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (j = 1; j <= lb; j++) {
			size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			diag = up;
			row[j] = best;
		}
	}
	return row[lb];
}

/* The known field closest to key, when it is close enough to be a typo:
 * at most 1 edit for names up to 3 characters, 2 up to 7, else 3. */
static const char *suggest(const struct ks_field *fields, const char *key)
{
	const char *best = NULL;
	size_t best_d = SIZE_MAX;

	for (; fields->name; fields++) {
		size_t len = strlen(fields->name), d = ks_edit_distance(key, fields->name);
		size_t max = len <= 3 ? 1 : len <= 7 ? 2 : 3;

		if (d <= max && d < best_d) {
			best = fields->name;
			best_d = d;
		}
	}
	return best;
}

/* ---- the walk --------------------------------------------------------- */

struct walk {
	json_t *out;
	const char *prefix;	/* before each line: "app.yaml: document 2: Kind ns/name: " */
	size_t count;		/* unknown fields found */
	size_t limit;		/* lines appended at most */
	char path[1024];
};

static const struct ks_field *field_of(const struct ks_field *fields, const char *key)
{
	for (; fields->name; fields++)
		if (!strcmp(fields->name, key))
			return fields;
	return NULL;
}

static int report(struct walk *w, size_t plen, const char *key, const struct ks_field *fields)
{
	const char *near = suggest(fields, key);
	int n;
	char *line;

	if (w->count++ >= w->limit)
		return 0;
	w->path[plen] = '\0';
	if (near)
		n = asprintf(&line, "%s%s%s%s: unknown field; did you mean %s%s%s?", w->prefix,
			     w->path, plen ? "." : "", key, w->path, plen ? "." : "", near);
	else
		n = asprintf(&line, "%s%s%s%s: unknown field", w->prefix, w->path,
			     plen ? "." : "", key);
	if (n < 0)
		return -ENOMEM;
	n = json_array_append_new(w->out, json_string(line));
	free(line);
	return n ? -ENOMEM : 0;
}

/* Check v against n; w->path[0..plen) names v. */
static int walk(struct walk *w, const json_t *v, const struct ks_node *n, size_t plen)
{
	const char *key;
	const json_t *e;
	size_t i;
	int ret, len;

	if (n->list) {
		if (!json_is_array(v))
			return 0; /* a wrong type is the parser's to refuse */
		json_array_foreach(v, i, e) {
			len = snprintf(w->path + plen, sizeof(w->path) - plen, "[%zu]", i);
			if (len < 0 || (size_t)len >= sizeof(w->path) - plen)
				return 0;
			ret = walk(w, e, n->items, plen + (size_t)len);
			if (ret)
				return ret;
		}
		return 0;
	}
	if (!json_is_object(v))
		return 0;
	json_object_foreach((json_t *)v, key, e) {
		const struct ks_field *f = field_of(n->fields, key);

		if (!f) {
			ret = n->open ? 0 : report(w, plen, key, n->fields);
			if (ret)
				return ret;
			continue;
		}
		if (!f->node)
			continue;
		len = snprintf(w->path + plen, sizeof(w->path) - plen, "%s%s", plen ? "." : "",
			       key);
		if (len < 0 || (size_t)len >= sizeof(w->path) - plen)
			continue; /* deeper than any schema: nothing to name it by */
		ret = walk(w, e, f->node, plen + (size_t)len);
		if (ret)
			return ret;
	}
	return 0;
}

static int find_kind(const json_t *obj)
{
	const char *api = json_string_value(json_object_get(obj, "apiVersion"));
	const char *kind = json_string_value(json_object_get(obj, "kind"));

	for (size_t i = 0; api && kind && i < NKINDS; i++)
		if (!strcmp(kinds[i].kind, kind) && !strcmp(kinds[i].api_version, api))
			return (int)i;
	return -1;
}

bool ks_kind_known(const json_t *obj)
{
	return find_kind(obj) >= 0;
}

static int check(struct walk *w, const json_t *obj)
{
	int k = find_kind(obj);

	if (k < 0 || !json_is_object(obj))
		return 0;
	w->path[0] = '\0';
	return walk(w, obj, kinds[k].schema, 0);
}

int ks_unknown_fields(const json_t *obj, json_t *out)
{
	struct walk w = { .out = out, .prefix = "", .limit = SIZE_MAX };
	int ret = check(&w, obj);

	return ret ? ret : (int)(w.count > INT32_MAX ? INT32_MAX : w.count);
}

/* "Kind ns/name" (namespace "default" when absent, as kubectl does). */
static void object_label(const json_t *obj, int k, char *buf, size_t len)
{
	const json_t *meta = json_object_get(obj, "metadata");
	const char *name = json_string_value(json_object_get(meta, "name"));
	const char *ns = json_string_value(json_object_get(meta, "namespace"));

	if (!ns || !*ns)
		ns = "default";
	if (!name || !*name)
		name = "(no name)";
	if (kinds[k].namespaced)
		snprintf(buf, len, "%s %s/%s", kinds[k].kind, ns, name);
	else
		snprintf(buf, len, "%s %s", kinds[k].kind, name);
}

int ks_check_objects(const json_t *objects, const json_t *sources, json_t *out)
{
	struct walk w = { .out = out, .limit = KS_MAX_PROBLEMS };
	const json_t *obj;
	char prefix[1024], label[600], src[32];
	size_t i;
	int ret, k;

	json_array_foreach(objects, i, obj) {
		const char *s = json_string_value(json_array_get(sources, i));

		k = find_kind(obj);
		if (k < 0 || !json_is_object(obj))
			continue;
		if (!s) {
			snprintf(src, sizeof(src), "object %zu", i + 1);
			s = src;
		}
		object_label(obj, k, label, sizeof(label));
		snprintf(prefix, sizeof(prefix), "%s: %s: ", s, label);
		w.prefix = prefix;
		ret = check(&w, obj);
		if (ret)
			return ret;
	}
	if (w.count > w.limit) {
		char more[64];

		snprintf(more, sizeof(more), "... and %zu more unknown fields",
			 w.count - w.limit);
		if (json_array_append_new(out, json_string(more)))
			return -ENOMEM;
	}
	return (int)(w.count > INT32_MAX ? INT32_MAX : w.count);
}

int ks_apply_check(const json_t *objects, const json_t *sources, enum ks_mode mode,
		   json_t **warnings, char *err, size_t errlen, char **details)
{
	json_t *found = NULL, *line;
	size_t i, len = 0;
	FILE *f;
	int n, ret = 0;

	*warnings = NULL;
	*details = NULL;
	if (mode == KS_IGNORE)
		return 0;
	found = json_array();
	n = found ? ks_check_objects(objects, sources, found) : -ENOMEM;
	if (n <= 0) {
		ret = n;
		goto cleanup;
	}
	if (mode == KS_WARN) {
		*warnings = found;
		return 0;
	}
	snprintf(err, errlen, "%s%s; nothing was applied",
		 json_string_value(json_array_get(found, 0)),
		 n > 1 ? " (and the unknown fields below)" : "");
	ret = -EINVAL;
	if (n > 1) {
		f = open_memstream(details, &len);
		if (!f) {
			ret = -ENOMEM;
			goto cleanup;
		}
		json_array_foreach(found, i, line)
			fprintf(f, "%s%s", i ? "\n  " : "", json_string_value(line));
		if (fclose(f)) {
			free(*details);
			*details = NULL;
			ret = -ENOMEM;
		}
	}
cleanup:
	json_decref(found);
	return ret;
}
