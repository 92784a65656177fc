// SPDX-License-Identifier: Apache-2.0
/* The kinds sluicectl names (kinds.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kinds.h"
#include "kschema.h"

#define SLUICE_API "sluice.io/v1alpha1"

static const struct kind kinds[] = {
	{ { "namespaces", "namespace", "ns" }, GET_NAMESPACES, "namespaces", false, NULL,
	  "Namespace", "v1" },
	{ { "pods", "pod", "po" }, GET_PODS, "pods", true, NULL, "Pod", "v1" },
	{ { "nodes", "node", "no" }, GET_NODES, "nodes", false, NULL, "Node", "v1" },
	/* sluice's word for the three policy kinds together */
	{ { "policies", "policy", "pol" }, GET_POLICIES, "policies", true, NULL, NULL, NULL },
	{ { "networkpolicies", "networkpolicy", "netpol", "netpols" }, GET_POLICIES, "policies",
	  true, "NetworkPolicy", "NetworkPolicy", "networking.k8s.io/v1" },
	{ { "sluicenetworkpolicies", "sluicenetworkpolicy", "snp" }, GET_POLICIES, "policies",
	  true, "SluiceNetworkPolicy", "SluiceNetworkPolicy", SLUICE_API },
	{ { "sluiceclusternetworkpolicies", "sluiceclusternetworkpolicy", "scnp" }, GET_POLICIES,
	  "policies", false, "SluiceClusterNetworkPolicy", "SluiceClusterNetworkPolicy",
	  SLUICE_API },
	{ { "identities", "identity", "id", "ids" }, GET_IDENTITIES, "identities", true, NULL,
	  NULL, NULL },
	{ { "services", "service", "svc" }, GET_SERVICES, "services", true, NULL, "Service", "v1" },
	{ { "prefilters", "prefilter", "sluiceprefilters", "sluiceprefilter", "spf", "pf" },
	  GET_PREFILTERS, "prefilters", false, NULL, "SluicePrefilter", SLUICE_API },
	{ { "endpoints", "endpoint", "ep" }, GET_ENDPOINTS, NULL, true, NULL, NULL, NULL },
};

#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

const struct kind *kind_lookup(const char *word)
{
	for (size_t i = 0; i < NKINDS; i++)
		for (size_t j = 0; kinds[i].names[j]; j++)
			if (!strcasecmp(word, kinds[i].names[j]))
				return &kinds[i];
	return NULL;
}

const char *kind_suggest(const char *word)
{
	const char *best = NULL;
	size_t bestd = (size_t)-1;
	char lower[64];
	size_t i, j;

	for (i = 0; word[i] && i + 1 < sizeof(lower); i++)
		lower[i] = (char)(word[i] >= 'A' && word[i] <= 'Z' ? word[i] - 'A' + 'a' : word[i]);
	lower[i] = '\0';
	for (i = 0; i < NKINDS; i++)
		for (j = 0; kinds[i].names[j]; j++) {
			size_t d = ks_edit_distance(lower, kinds[i].names[j]);

			if (d < bestd) {
				bestd = d;
				best = kinds[i].names[j];
			}
		}
	/* close: at most a third of the word wrong, and never a guess for
	 * a two-letter word two edits away */
	return best && bestd <= (strlen(lower) + 2) / 3 ? best : NULL;
}

const char *kind_list(void)
{
	return "namespaces (ns), pods (po), nodes (no), policies (pol: the three kinds of policy), "
	       "networkpolicies (netpol), sluicenetworkpolicies (snp), "
	       "sluiceclusternetworkpolicies (scnp), identities (id), services (svc), "
	       "prefilters (spf, pf), endpoints (ep)";
}

const char *kind_item_key(const struct kind *k, const json_t *item, char *buf, size_t len)
{
	const char *s;

	switch (k->what) {
	case GET_IDENTITIES:
		snprintf(buf, len, "%lld", (long long)json_integer_value(json_object_get(item, "id")));
		return buf;
	case GET_ENDPOINTS:
		s = json_string_value(json_object_get(item, "pod"));
		return s ? s : "";
	default:
		s = json_string_value(json_object_get(item, "name"));
		return s ? s : "";
	}
}

char *kind_item_name(const struct kind *k, const json_t *item)
{
	static const struct {
		const char *kind, *resource;
	} policy_resources[] = {
		{ "NetworkPolicy", "networkpolicy.networking.k8s.io" },
		{ "SluiceNetworkPolicy", "sluicenetworkpolicy.sluice.io" },
		{ "SluiceClusterNetworkPolicy", "sluiceclusternetworkpolicy.sluice.io" },
	};
	const char *resource = k->names[1], *kind;
	char buf[32], *out;

	if (k->what == GET_POLICIES) {
		kind = json_string_value(json_object_get(item, "kind"));
		for (size_t i = 0; kind && i < 3; i++)
			if (!strcmp(kind, policy_resources[i].kind))
				resource = policy_resources[i].resource;
	} else if (k->what == GET_PREFILTERS) {
		resource = "sluiceprefilter.sluice.io";
	}
	if (asprintf(&out, "%s/%s", resource, kind_item_key(k, item, buf, sizeof(buf))) < 0)
		return NULL;
	return out;
}
