/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pages of `get` answers: at most `limit` items and at most max_bytes of
 * JSON, in key order, resumed after the key a continue token names
 * (docs/API.md, "Pages"). Tokens are "WHAT:KEY" (KEY: "NS/NAME" for pods,
 * "NS/NAME/KIND" for policies, the item's own key for other kinds); only
 * the agent reads them.
 */
#ifndef SLUICE_AGENT_PAGE_H
#define SLUICE_AGENT_PAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "store.h"

/* A page is cut before it passes this many bytes (one item alone may),
 * well under SLUICE_API_MAX_MSG for the answer around it. */
#define PAGE_MAX_BYTES (3u << 20)
#define PAGE_DEFAULT_LIMIT 500
/* Pods tested against policies for one page of `get policies` before it
 * is cut (one policy always fits, so a page may pass it by one policy's
 * pods): on a cluster of 100 000 pods a page of cluster-scoped policies
 * stops after 3 of them, 50 to 150 ms of the agent's one thread on a
 * shared 2-core machine, instead of 500 x 100 000 tests. */
#define PAGE_MAX_WORK (1u << 18)
/* The names a policy item lists in selectedPods, the first in key order;
 * selectedPodsCount counts them all. 1000 names are at most ~320 KB, so
 * one item never nears the page's or the answer's bound. */
#define PAGE_SELECTED_MAX 1000

struct page {
	const char *what;	/* "pods", "policies", … */
	size_t limit, max_bytes;
	json_t *items;
	size_t bytes;
	size_t work, max_work;	/* pods tested so far, and the bound */
	size_t max_selected;	/* names in a policy's selectedPods */
	char *after;		/* the token's key (NULL: from the start) */
	char *last;		/* key of the last item taken */
	char *next;		/* continue token once the page is full */
};

/*
 * Start a page of what after token (NULL or "": the first page). Returns
 * 0, -EINVAL with err naming the problem (a token of another kind, or not
 * one of the agent's) or -ENOMEM.
 */
int page_init(struct page *pg, const char *what, size_t limit, const char *token, char *err,
	      size_t errlen);
void page_free(struct page *pg);

/*
 * Offer the next item in key order (taken over, also on failure). 1: added;
 * 0: the page is full, the item is dropped and pg->next is set: stop
 * offering; -ENOMEM.
 */
int page_add(struct page *pg, json_t *item, const char *key);

/*
 * Whether the page is full before the next item is made: limit items
 * taken, or max_work spent (the caller adds to pg->work); then pg->next
 * is set (left NULL only when out of memory: the caller must not answer
 * the page as the last one). An empty page is never full.
 */
bool page_full(struct page *pg);

/* Split a pod key "NS/NAME" or a policy key "NS/NAME/KIND" (KIND a number
 * 0-2, see store_order) in place. Returns 0 or -EINVAL. */
int page_split_key(char *key, bool with_kind, const char **ns, const char **name, int *kind);

/* A pod as `get pods` shows it, and how this node's pods are merged in. */
typedef uint32_t (*page_identity_fn)(void *ctx, const struct pol_pod *p);

/*
 * Fill pg with pods after its key: the store's Pod objects merged with
 * this node's (locals, any order: sorted here), a local pod shown with its
 * endpoint's address and, without a Pod object, without labels, as in
 * store_view_build. Costs O(log pods + limit + locals log locals) once the
 * store's order is sorted (store_order). Returns 0 or -ENOMEM.
 */
int page_pods(struct page *pg, struct store *s, struct store_local *locals, size_t nlocals,
	      page_identity_fn identity, void *ctx);

/* Start the policies after pg's key: their position in store_order, or
 * a negative errno. */
ssize_t page_policies_start(struct page *pg, struct store *s);

/* This node's pods in a view (v->synthetic, with the endpoints'
 * addresses) in key order, each once: an array to free, NULL when out of
 * memory. */
const struct pol_pod **page_locals_sorted(const struct store_view *v, size_t *n);

/*
 * The pods of namespace ns (NULL: every namespace) in key order: the
 * store's Pods merged with locals (page_locals_sorted), a local pod being
 * its copy rather than the Pod object. Init sorts the store's order if it
 * changed (store_order) and finds ns in it in O(log pods); -ENOMEM.
 */
struct page_pod_iter {
	struct store *s;
	size_t i, hi;			/* store_order positions */
	const struct pol_pod *const *loc;
	size_t j, nloc;			/* locals positions */
};
int page_pod_iter_init(struct page_pod_iter *it, struct store *s,
		       const struct pol_pod *const *locals, size_t nlocals, const char *ns);
const struct pol_pod *page_pod_iter_next(struct page_pod_iter *it);
/* Skip the rest of namespace ns (the one of the pod last returned). */
void page_pod_iter_skip_ns(struct page_pod_iter *it, const char *ns);

/*
 * The pods policy p selects, for `get policies`: names, "ns/name" of the
 * first cap in key order (a JSON array to release); count, all of them;
 * tested, the pods tested against its selectors; namespaces, the
 * namespaces a cluster policy's namespaceSelector was asked about. A
 * namespaced policy looks at its namespace only (O(log pods + its pods));
 * a SluiceClusterNetworkPolicy at every namespace, and at the pods of
 * those its namespaceSelector matches. w gives namespaces' labels; locals
 * as page_pod_iter_init. Returns 0 or -ENOMEM.
 */
struct page_selected {
	json_t *names;
	size_t count, tested, namespaces;
};
int page_policy_pods(struct store *s, const struct pol_world *w,
		     const struct pol_pod *const *locals, size_t nlocals,
		     const struct pol_policy *p, size_t cap, struct page_selected *out);

/* A policy as `get policies` shows it, given the pods it selects (sel
 * borrowed: take a reference to keep sel->names); NULL when out of
 * memory. */
typedef json_t *(*page_policy_fn)(void *ctx, const struct pol_policy *p,
				  struct page_selected *sel);

/*
 * Fill pg with policies after its key (page_policies_start), each with
 * its selectedPods (page_policy_pods, at most pg->max_selected names) from
 * view v (store_view_build_lean is enough: its namespaces and this node's
 * pods). The page is also cut once pg->max_work pods were tested
 * (page_full): O(log pods + the pods of the page's policies' namespaces),
 * a cluster-scoped policy every pod. Returns 0, -EINVAL (a bad token) or
 * -ENOMEM.
 */
int page_policies(struct page *pg, struct store *s, const struct store_view *v,
		  page_policy_fn item, void *ctx);

#endif /* SLUICE_AGENT_PAGE_H */
