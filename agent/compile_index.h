/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The policy compiler's memory of the world between syncs, so that a change
 * costs what it affects rather than what the cluster holds:
 *
 *   - pods by namespace/name, each with its identity and address (its own
 *     copy of what policy uses: the store's objects move when it grows);
 *   - pods by address (a reused address has several holders; the datapath
 *     entry is the winner's, see cindex_ip_holder);
 *   - identity groups: the pods of one (namespace, label set), which a peer
 *     selector matches as one; groups by namespace;
 *   - per selector peer of a rule, the groups it matches (the selector
 *     cache), filed by the namespaces it can match, so that a group born,
 *     gone or changed is tested against the entries that could hold it
 *     only; dropped when its policy or any Namespace changes;
 *   - what the last round of changes did: addresses whose ipcache entry
 *     must be recomputed, addresses other nodes' pods gave up (their flows
 *     are purged), identities no group uses any more.
 *
 * It mirrors the world, not the maps: a sync whose map writes fail leaves
 * it correct, and the next sync diffs again against what the maps hold.
 */
#ifndef SLUICE_COMPILE_INDEX_H
#define SLUICE_COMPILE_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "identity.h"
#include "policy.h"

struct cindex;

int cindex_new(struct cindex **out);
void cindex_free(struct cindex *ix);

/* A round of changes. begin forgets the previous round's outputs (dirty
 * addresses, gone addresses, dead identities); with all, every pod is
 * unseen until cindex_pod_set names it, and cindex_end removes the unseen
 * ones (a rebuild from the whole world that still reports what changed). */
void cindex_begin(struct cindex *ix, bool all);
/* The pod ns/name is now pod (NULL: gone); local: one of this node's
 * endpoints (its stand-in, with the endpoint's address). What policy uses
 * of pod is copied. Returns 0 or -ENOMEM (the index is then unusable until
 * a round with all: cindex_broken). */
int cindex_pod_set(struct cindex *ix, struct identities *ids, const char *ns, const char *name,
		   const struct pol_pod *pod, bool local);
int cindex_end(struct cindex *ix);
bool cindex_broken(const struct cindex *ix);

/* What this round changed: addresses whose holders changed (ipcache
 * entries to recompute), addresses an other node's pod gave up, and the
 * identities of groups that died (still numbered: the caller releases them
 * once no map refers to them, unless cindex_id_live says one came back). */
size_t cindex_dirty_ips(const struct cindex *ix, const uint32_t **ips);
size_t cindex_gone_ips(const struct cindex *ix, const uint32_t **ips);
size_t cindex_dead_ids(const struct cindex *ix, const uint32_t **ids);
bool cindex_id_live(const struct cindex *ix, uint32_t id);

size_t cindex_pods(const struct cindex *ix);
size_t cindex_groups_live(const struct cindex *ix);

/* The pod's identity as the index numbered it (SLUICE_ID_UNKNOWN: labels
 * unknown or no number left); 0 when the pod is not in the index. */
uint32_t cindex_pod_identity(const struct cindex *ix, const char *ns, const char *name);

/* Of two pods holding one address, which gets its ipcache entry: < 0 the
 * first (a local pod before others, then the least namespace, then name),
 * > 0 the second. The full build sorts by it too. */
int cindex_holder_cmp(bool a_local, const struct pol_pod *a, bool b_local,
		      const struct pol_pod *b);

/* The holder of an address whose ipcache entry it gets (cindex_holder_cmp).
 * false: none. */
bool cindex_ip_holder(const struct cindex *ix, uint32_t ip, uint32_t *identity);
/* Every address with a holder, and its holder's identity (any order). */
typedef int (*cindex_ip_fn)(void *ctx, uint32_t ip, uint32_t identity);
int cindex_for_each_ip(const struct cindex *ix, cindex_ip_fn fn, void *ctx);

/* The group of identity id (a slot), or SIZE_MAX. */
size_t cindex_id_group(const struct cindex *ix, uint32_t id);
/* Groups: slots 0..cindex_group_slots()-1, dead ones with identity 0. */
size_t cindex_group_slots(const struct cindex *ix);
uint32_t cindex_group_id(const struct cindex *ix, size_t g);
size_t cindex_group_size(const struct cindex *ix, size_t g);
const struct pol_pod *cindex_group_member(const struct cindex *ix, size_t g, size_t k);

/* The selector cache. A new version of a policy, or any Namespace change,
 * must be told (cindex_forget_policy, cindex_forget_all) before the next
 * query. cindex_peer_groups: the live groups that peer (peers[pi] of rule ri
 * of p in direction dir; not an ipBlock) matches, into *out (valid until
 * the next call), in no particular order. */
void cindex_forget_policy(struct cindex *ix, const char *ns, const char *name);
void cindex_forget_all(struct cindex *ix);
int cindex_peer_groups(struct cindex *ix, const struct pol_world *w, const struct pol_policy *p,
		       enum pol_dir dir, size_t ri, size_t pi, const size_t **out, size_t *n,
		       const void **handle);

/*
 * What a round changed, for the compiler to redo only the endpoints it
 * affects. handle: a cache entry from cindex_peer_groups, valid while
 * cindex_epoch stays the same (a forget frees entries) and the entry is
 * used or kept (cindex_entry_keep) in every round. cindex_cache_refresh
 * brings every entry up to date with the round's groups (find: the policy
 * an entry belongs to, NULL when gone); then cindex_entry_changed says
 * whether its groups changed this round (members: one of them changed
 * members or their ports).
 */
typedef const struct pol_policy *(*cindex_policy_fn)(void *ctx, int kind, const char *ns,
						     const char *name);
int cindex_cache_refresh(struct cindex *ix, const struct pol_world *w, cindex_policy_fn find,
			 void *ctx);
bool cindex_entry_changed(const struct cindex *ix, const void *handle, bool *members);
void cindex_entry_keep(const void *handle);
uint64_t cindex_epoch(const struct cindex *ix);
/* A group was born, died or changed members this round. */
bool cindex_groups_changed(const struct cindex *ix);
/* The pod changed this round (or is not in the index). */
bool cindex_pod_changed(const struct cindex *ix, const char *ns, const char *name);
/* Drop cache entries no query used since the previous sweep. */
void cindex_cache_sweep(struct cindex *ix);
size_t cindex_cache_entries(const struct cindex *ix);
/* Peers tested against a group to keep the cache up to date (births,
 * deaths, member changes), since the index was made. */
size_t cindex_selector_tests(const struct cindex *ix);

#endif /* SLUICE_COMPILE_INDEX_H */
