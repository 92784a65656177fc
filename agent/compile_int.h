/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The policy compiler's insides, shared by its files, which depend one way:
 * compile_sync.c (the syncs) on compile_maps.c (applying to the maps) on
 * compile.c (building what the maps should hold), and on compile_index.c.
 * Not for other files: they use compile.h.
 */
#ifndef SLUICE_COMPILE_INT_H
#define SLUICE_COMPILE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "compile.h"
#include "compile_index.h"

/* A set of map entries, each stored as key bytes then value bytes. */
struct entry_set {
	unsigned char *data;
	size_t n, cap;
	size_t ksz, vsz;
};

struct prefix {
	struct cidr4 c;
	uint32_t id;
};

/* ipBlock prefixes by length: the most specific one holding an address in
 * at most 33 binary searches, where a scan of 512 prefixes per pod was a
 * tenth of the agent's time at 50 000 pods. Only numbered prefixes. */
struct lpm4 {
	uint32_t *net[33];	/* sorted */
	uint32_t *id[33];
	size_t n[33];
};

/* Namespaced policies by namespace (chains in ascending position) and the
 * cluster ones: the policies that can select a pod, without a look at the
 * rest. */
struct pol_index {
	const char **ns;	/* open addressing: namespace, or NULL */
	size_t *head;		/* its first policy */
	size_t nslots;
	size_t *next;		/* per policy: the next of its namespace, or SIZE_MAX */
	size_t *cluster;
	size_t ncluster;
};

struct compiler {
	struct compile_maps m;
	/* What the maps hold, as of the last sync (or as read at open). */
	struct entry_set cur[CMAP_N];
	/* Policies the last sync left out (they did not fit). */
	struct compile_excluded *excl;
	size_t nexcl;
	/* compiler_sync_changes: the world as of the last round (NULL until
	 * the first), the policies' ipBlock prefixes (sorted, numbered) and
	 * by length, the other nodes and own addresses they were made for,
	 * and the ipcache they make (valid: in line with all of those). */
	struct cindex *ix;
	struct prefix *prefixes;
	size_t nprefixes;
	bool prefixes_valid;
	struct lpm4 lpm;
	struct compile_node *nodes;
	size_t nnodes;
	uint32_t *node_ips;
	size_t nnode_ips;
	struct entry_set ipc_want;
	bool ipc_valid;
	/* Identities the world stopped using, released once a sync that no
	 * longer writes them has been applied. */
	uint32_t *dead;
	size_t ndead, capdead;
	size_t incremental, full;	/* syncs of each kind */
	size_t ep_built, ep_kept;	/* endpoints built again, kept, in them */
	long ids_end_at;		/* monotonic second of the last identities_end */
	/* Per local endpoint, what it wrote at the last incremental sync and
	 * what that depended on (epc_valid: the allow and deny maps hold
	 * exactly the union of them, as of cindex epoch epc_epoch). The
	 * ipcache's part of a sync is only its changed addresses unless
	 * ipc_full_next (a failed apply lost them). */
	struct epc *epc;
	size_t nepc;
	bool epc_valid;
	uint64_t epc_epoch;
	bool ipc_full_next;
	/* The policy index of the last incremental sync, for the policies
	 * (pidx_pol, in the world's order) it was made from: kept while a
	 * sync changes no policy and the world lists the same ones (10 000
	 * policies: 0.8 ms of every CNI ADD's sync to make again). */
	struct pol_index pidx;
	const struct pol_policy **pidx_pol;
	size_t pidx_npol;
	bool pidx_valid;
	/* The policies of the last successful sync, in the world's order:
	 * what a map entry's rule reference ((index + 1) << 12 | rule)
	 * names (compiler_policy_ref; flow records quote it). */
	struct compile_polref *polrefs;
	size_t npolrefs;
};

/* One local endpoint's entries and what they depend on besides it. */
struct epc {
	int ifindex;
	uint32_t ip;
	unsigned char mac[12];
	uint32_t bw_flags;
	char *key;			/* its pod's "ns\0name" */
	struct entry_set out[CMAP_N];	/* ENDPOINTS, ALLOW, DENY */
	const void **refs;		/* selector cache entries it read */
	size_t nrefs;
	bool named_egress, all_groups;
};

extern const size_t key_size[CMAP_N];
extern const size_t val_size[CMAP_N];

struct build {
	const struct pol_world *w;
	const struct compile_ep *eps;		/* this node's */
	size_t neps;
	const struct compile_node *nodes;	/* other nodes */
	size_t nnodes;
	struct node_index node_idx;		/* nodes by pod CIDR */
	struct identities *ids;
	uint32_t *pod_ids;		/* per w->pods[i] */
	struct prefix *prefixes;	/* every ipBlock cidr and except, unique */
	size_t nprefixes;
	uint32_t *idbuf;		/* scratch: identities a rule's peers match */
	const struct pol_pod **podbuf;	/* scratch: the pod behind each, or NULL */
	size_t nid, capid;
	/* Pods grouped by identity (labels unknown left out): a peer
	 * selector is judged once per identity, on its first pod. */
	size_t *order;			/* indices into w->pods, by identity */
	struct group { uint32_t id; size_t first, n; } *groups;
	size_t ngroups;
	const bool *excluded;		/* per w->pol[i]: left out, fails closed */
	size_t *count[CMAP_N];		/* per w->pol[i]: entries it adds (allow, deny) */
	struct entry_set out[CMAP_N];
	/* Incremental builds (compiler_sync_changes): the pods, groups and
	 * selector cache, the prefixes by length, policies by namespace. */
	struct cindex *ix;
	const struct lpm4 *lpm;
	const struct pol_index *pidx;
	size_t *cand;			/* scratch: policies that may select an endpoint */
	/* What the endpoint being built depends on besides itself (for the
	 * per-endpoint cache): the selector cache entries it read, whether
	 * an egress rule names ports (its peers' members count), whether one
	 * does so for any peer (every group counts). */
	const void **refs;
	size_t nrefs, caprefs;
	bool named_egress, all_groups;
};

/* ---- compile_maps.c: the maps ----------------------------------------- */

/* A map read into a set (sorted). */
int set_load(struct entry_set *s, int fd);
/* old: what the maps hold of the keys concerned (c->cur, or the part a
 * change touches); additions, flags, removals, and the rollback. */
int apply_state(struct compiler *c, const struct entry_set *old,
		const struct entry_set *want, size_t *ops_up, size_t *ops_del, char *err,
		size_t errlen);

/* ---- compile.c: what the maps should hold ---------------------------- */

/* Sets of map entries, sorted by key (set_sort_unique: stable, the first
 * of equal keys kept). */
void set_init(struct entry_set *s, size_t ksz, size_t vsz);
void set_free(struct entry_set *s);
int set_add(struct entry_set *s, const void *key, const void *val);
unsigned char *set_at(const struct entry_set *s, size_t i);
int set_sort_unique(struct entry_set *s);

/* ipBlock prefixes: collected from the policies (numbered), by length. */
int cmp_prefix(const void *a, const void *b);
int collect_prefixes(struct build *b);
void lpm_free(struct lpm4 *l);
int lpm_build(struct lpm4 *l, const struct prefix *p, size_t n);
uint32_t cidr_identity(const struct build *b, uint32_t ip);

/* The ipcache: one entry, and the statics pods' entries never override. */
int ipcache_add(struct build *b, uint32_t ip, int prefix, uint32_t id, uint32_t cidr_id);
int ipc_statics(struct build *b);

/* Policies by namespace, for the policies that can select a pod. */
size_t pol_ns_slot(const struct pol_index *x, const char *ns);
void pol_index_free(struct pol_index *x);
int pol_index_build(struct pol_index *x, const struct pol_world *w);

/* Builds: common set-up, one endpoint's entries, everything (the full
 * build), release. */
int build_init(struct build *b, const struct pol_world *w, const struct compile_ep *eps,
	       size_t neps, const struct compile_node *nodes, size_t nnodes,
	       struct identities *ids, const bool *excluded);
int build_state(struct build *b, const struct pol_world *w, const struct compile_ep *eps,
		size_t neps, const struct compile_node *nodes, size_t nnodes,
		struct identities *ids, const bool *excluded);
int build_endpoint(struct build *b, const struct compile_ep *e);
void build_free(struct build *b);

/* Pointers in address order (qsort, bsearch). */
int cmp_ptr(const void *a, const void *b);

#endif /* SLUICE_COMPILE_INT_H */
