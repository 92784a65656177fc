/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The policy compiler: from the world view (pods, namespaces, policies)
 * and this node's endpoints to the contents of the datapath's maps
 * (endpoints, ipcache, allow and deny tries), applied as a difference
 * against what the maps hold so that nothing allowed before and after a
 * change is ever dropped in between: additions first, then endpoint flags,
 * then removals.
 */
#ifndef SLUICE_COMPILE_H
#define SLUICE_COMPILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "identity.h"
#include "loader.h"
#include "policy.h"

struct compiler;

enum compile_map { CMAP_ENDPOINTS, CMAP_IPCACHE, CMAP_ALLOW, CMAP_DENY, CMAP_N };

/* Where the compiler writes: the datapath's maps, or stand-ins (tests and
 * benchmarks set update and del; fd is then unused and the maps start
 * empty). cap is each map's max_entries: a state that does not fit is never
 * written. */
struct compile_maps {
	int fd[CMAP_N];
	size_t cap[CMAP_N];
	int (*update)(void *ctx, enum compile_map m, const void *key, const void *val);
	int (*del)(void *ctx, enum compile_map m, const void *key);
	void *ctx;
};

/* Read what the pinned maps hold now (a previous agent's work), so the
 * first sync only changes what differs. */
int compiler_open(struct compiler **out, struct datapath *dp, char *err, size_t errlen);
int compiler_open_maps(struct compiler **out, const struct compile_maps *m, char *err,
		       size_t errlen);
void compiler_close(struct compiler *c);
/* "allow rules (sluice_pol_v1)" and the like, for messages. */
const char *compile_map_name(enum compile_map m);

struct compile_ep {
	uint32_t ip;		/* host order */
	int ifindex;		/* host veth */
	unsigned char pod_mac[6];
	unsigned char host_mac[6];
	uint32_t bw_flags;	/* SLUICE_EP_F_BW_*: its bandwidth limits (agent/bandwidth.c) */
	const struct pol_pod *pod;
};

/* Another node: its pods' CIDR and its address (the tunnel endpoint). */
struct compile_node {
	struct cidr4 pod_cidr;
	uint32_t ip;		/* host order */
};

/* The nodes' pod CIDRs by start address, to find the node whose pods live
 * in a prefix in O(log n). Node pod CIDRs do not overlap in a sane
 * cluster; if two do, the first in the nodes' order must win, and the
 * index is left out (by_start NULL): node_index_find scans. */
struct node_index {
	const struct compile_node *nodes;
	size_t n;
	size_t *by_start;	/* positions in nodes; owned */
};

int node_index_build(struct node_index *x, const struct compile_node *nodes, size_t n);
void node_index_free(struct node_index *x);
/* The first node (in the nodes' order) whose pod CIDR holds q, or NULL:
 * the same answer as node_scan_find. */
const struct compile_node *node_index_find(const struct node_index *x, const struct cidr4 *q);
const struct compile_node *node_scan_find(const struct compile_node *nodes, size_t n,
					  const struct cidr4 *q);

struct compile_stats {
	size_t endpoints, ipcache, allow, deny;	/* entries after the sync */
	size_t updated, removed;		/* map operations done */
	double ms;
};

/* A policy left out of the maps because its entries do not fit. The pods
 * it selects stay isolated in its directions without any allow from it
 * (and without any allow at all in a direction where it has Deny rules). */
struct compile_excluded {
	char object[600];	/* "NetworkPolicy ns/name" */
	char why[400];		/* entries, capacity, the setting to raise */
};

/*
 * Bring the maps in line with the world. Nothing is written unless the
 * whole state fits every map; policies whose entries overflow the allow or
 * deny map are left out, largest first (ties: the last by kind, namespace,
 * name), and listed by compiler_excluded. A map write that fails midway is
 * undone: the maps hold the previous state again and err names the step.
 *
 * COMPILE_STRICT (an apply from sluicectl): a policy that would be left out
 * and was not left out before fails the sync instead, and nothing is
 * written. Returns 0 or a negative errno (-ENOSPC: does not fit).
 */
#define COMPILE_STRICT 1u

int compiler_sync(struct compiler *c, const struct pol_world *w, const struct compile_ep *eps,
		  size_t neps, const struct compile_node *nodes, size_t nnodes,
		  struct identities *ids, unsigned flags, struct compile_stats *st, char *err,
		  size_t errlen);

/*
 * The same, computing only what changed: the compiler keeps an index of
 * the world (compile_index.h) and is told what changed since its last
 * call. A pod change names the pod and gives its state now (pod NULL:
 * gone; local: one of eps, its stand-in); a policy change names the
 * policy (any kind) so its selector cache is dropped; any Namespace change
 * drops them all; all (the first call, a relist, a lost change log)
 * rebuilds the index from every pod of w. Nodes and this node's
 * addresses are compared with the last call's. The result is what
 * compiler_sync would write (compiler_check compares); when policies must
 * be left out, it is compiler_sync that runs.
 */
struct compile_pod_change {
	const char *ns, *name;
	const struct pol_pod *pod;
	bool local;
};

struct compile_policy_ref {
	const char *ns;		/* NULL: cluster-scoped */
	const char *name;
};

struct compile_changes {
	bool all;
	const struct compile_pod_change *pods;
	size_t npods;
	const struct compile_policy_ref *policies;
	size_t npolicies;
	bool namespaces;
	/* w->pods holds this node's pods only (a lean view: an incremental
	 * sync reads no other pod from it). Where the whole world is needed
	 * (all, or the full build) the sync returns -EAGAIN, having changed
	 * nothing in the maps: call again with every pod and all. */
	bool lean;
};

int compiler_sync_changes(struct compiler *c, const struct pol_world *w,
			  const struct compile_changes *ch, const struct compile_ep *eps,
			  size_t neps, const struct compile_node *nodes, size_t nnodes,
			  struct identities *ids, unsigned flags, struct compile_stats *st, char *err,
			  size_t errlen);

/* Hold back the identity numbers the maps held at open that ids does not
 * know (identities_reserve): call once, after compiler_open. */
int compiler_reserve_identities(const struct compiler *c, struct identities *ids);

/* The pods of identity id as of the last incremental sync (0 when none),
 * and the k-th of them (valid until the next sync). */
size_t compiler_identity_pods(const struct compiler *c, uint32_t id);
const struct pol_pod *compiler_identity_pod(const struct compiler *c, uint32_t id, size_t k);

/* Whether the next compiler_sync_changes needs every pod in w (no lean
 * view): the first, after a broken index, while policies are left out. */
bool compiler_wants_world(const struct compiler *c);

/* Addresses another node's pod gave up in the last compiler_sync_changes
 * (removed, moved, or now a pod of this node): their flows belong to the
 * old holder. Valid until the next sync. */
size_t compiler_gone_ips(const struct compiler *c, const uint32_t **ips);

/* The full build of w compared with what the last sync wrote: 0 equal, 1
 * different (err says where), or -ENOMEM. A debug and test mode
 * (--compile-check): it costs a full build. */
int compiler_check(struct compiler *c, const struct pol_world *w, const struct compile_ep *eps,
		   size_t neps, const struct compile_node *nodes, size_t nnodes,
		   struct identities *ids, char *err, size_t errlen);

struct compile_counts {
	size_t incremental, full;	/* syncs of each kind */
	size_t pods, groups, selector_cache, prefixes;
	/* In incremental syncs: local endpoints whose entries were computed
	 * again, and those kept as they were (nothing they depend on changed). */
	size_t endpoints_built, endpoints_kept;
	/* Selector cache entries tested against a group born, gone or
	 * changed (the index's, since it was last made). */
	size_t selector_tests;
};
void compiler_counts(const struct compiler *c, struct compile_counts *out);

/* A policy as the last successful sync numbered it: the rule references
 * in the allow and deny maps ((index + 1) << 12 | rule index, emit_policy)
 * name one of these. */
struct compile_polref {
	enum pol_kind kind;
	char *ns;		/* NULL: cluster-scoped */
	char *name;
	bool ingress, egress, audit;
};
#define COMPILE_REF_RULE_BITS 12
/* The policy behind ref (sluice_policy_value.rule, a flow record's
 * policy_rule) and its rule index in *rule; NULL when ref names none
 * (0, SLUICE_FLOW_RULE_DEFAULT, out of range). Valid until the next sync. */
const struct compile_polref *compiler_policy_ref(const struct compiler *c, uint32_t ref,
						 unsigned *rule);

/* The policies the last successful sync left out. */
size_t compiler_excluded(const struct compiler *c, const struct compile_excluded **out);

/* Split [lo, hi] into prefix-aligned blocks: fills starts[] and bits[]
 * (number of leading bits that are fixed, 16 = one port). Returns the
 * number of blocks (at most 32). */
int port_range_blocks(uint16_t lo, uint16_t hi, uint16_t *starts, uint8_t *bits);

/* What the maps say about one new flow, computed the way the BPF programs
 * do (without connection tracking): `explain` shows it next to the
 * reference decision, so a disagreement is visible. */
enum dp_verdict { DP_ALLOW = 0, DP_NO_RULE, DP_DENY_RULE };

struct dp_side {
	bool checked;		/* the side is a local endpoint whose policy applies */
	bool isolated;
	enum dp_verdict verdict;
	bool audit_would_drop;
};

int compiler_datapath_verdict(struct compiler *c, uint32_t saddr, uint32_t daddr, uint8_t proto,
			      uint16_t port, struct dp_side *egress, struct dp_side *ingress);

#endif /* SLUICE_COMPILE_H */
