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

struct page {
	const char *what;	/* "pods", "policies", … */
	size_t limit, max_bytes;
	json_t *items;
	size_t bytes;
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

#endif /* SLUICE_AGENT_PAGE_H */
