/* SPDX-License-Identifier: Apache-2.0 */
/* The kinds sluicectl get, describe and delete name: their words as kubectl
 * has them (plural, singular, short names), whether they are namespaced,
 * and what the agent calls them. */
#ifndef SLUICE_CLI_KINDS_H
#define SLUICE_CLI_KINDS_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

enum get_what { GET_NAMESPACES, GET_PODS, GET_POLICIES, GET_IDENTITIES, GET_NODES, GET_SERVICES,
		GET_PREFILTERS, GET_ENDPOINTS };

struct kind {
	const char *names[8];	/* the first is the kind's name; NULL-terminated */
	enum get_what what;
	const char *agent_what;	/* the agent's "what" (NULL: op list) */
	bool namespaced;
	/* policies only: the one policy kind this word means (NULL: all three) */
	const char *policy_kind;
	/* apply's kind and apiVersion, for delete KIND NAME (NULL: not deletable) */
	const char *object_kind, *api_version;
};

/* The kind word names (case-insensitive), or NULL. */
const struct kind *kind_lookup(const char *word);
/* The known kind name closest to word (edit distance), or NULL when none
 * is close. */
const char *kind_suggest(const char *word);
/* "namespaces (ns), pods (po), …" for error messages. */
const char *kind_list(void);
/* -o name's kind/name for an item of kind k: pod/web-0,
 * networkpolicy.networking.k8s.io/deny-all, as kubectl prints it. Returns
 * a string to free, NULL when out of memory. */
char *kind_item_name(const struct kind *k, const json_t *item);
/* An item's name for NAME arguments (the identity's number, the
 * endpoint's container ID). */
const char *kind_item_key(const struct kind *k, const json_t *item, char *buf, size_t len);

#endif
