/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The object store: Namespaces, Pods, Nodes, Services, EndpointSlices and
 * policies as applied by `sluicectl apply` and from the Kubernetes API
 * watch. It keeps each object's parsed form and its JSON as given (a Pod
 * from the API: its parsed form only, its JSON made from that), saves
 * the set under the state directory, and builds the policy world view the
 * compiler and `explain` work from, and the Services view. Where objects
 * come from is not its business.
 */
#ifndef SLUICE_STORE_H
#define SLUICE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>

#include "policy.h"
#include "service.h"

struct store;

#define STORE_NODE_ADDRS 4

/* A v1 Node: where its pods live and how to reach it. */
struct store_node {
	char *name;
	bool has_pod_cidr;
	struct cidr4 pod_cidr;	/* spec.podCIDR (or podCIDRs[0]) */
	uint32_t ip;		/* status.addresses InternalIP, host order; 0 if none */
	/* Its IPv4 InternalIP and ExternalIP addresses (the first
	 * STORE_NODE_ADDRS), host order: none of them may be locked out by
	 * a SluicePrefilter. */
	uint32_t addrs[STORE_NODE_ADDRS];
	uint8_t naddrs;
	struct pol_labels labels;	/* metadata.labels: prefilters' nodeSelector */
	char created[40];	/* metadata.creationTimestamp; "" when absent */
	/* Not trusted for routes, tunnels or the ipcache: its range or address
	 * conflicts with this node's or with a node trusted before it (older
	 * creationTimestamp first, then name). why says how, naming the other
	 * node (on the heap, NULL when not refused: a buffer here made every
	 * stored object, in a union with this, 184 bytes larger). */
	bool refused;
	char *why;
};

int store_open(struct store **out, const char *state_dir, char *err, size_t errlen);
/*
 * This node: its name, and once known its pod CIDR (NULL: not yet; the Node
 * object's is used) and address (0: the Node object's). Other Node objects
 * are checked against them: see store_apply and struct store_node.refused.
 */
int store_set_self(struct store *s, const char *name, const struct cidr4 *pod_cidr,
		   uint32_t node_ip);
void store_close(struct store *s);

/*
 * Apply objects (a JSON array); sources[i] names where objects[i] came
 * from. All or nothing: every object is validated before any is stored.
 * A Node whose pod CIDR is /0, overlaps this node's or another node's, or
 * holds a node address (or whose address is inside a pod CIDR) is refused.
 * Appends {"kind","namespace","name","action"} to changes. Returns 0 or a
 * CNI error code with the reason in err.
 */
int store_apply(struct store *s, const json_t *objects, const json_t *sources, json_t *changes,
		char *err, size_t errlen);
/*
 * What store_apply would do, doing none of it: the same checks and errors,
 * and the same changes ({"kind","namespace","name","action"}, no "note":
 * notes need the objects in), with "live": the object as stored now when
 * live is set and it exists. The store, its files and the maps are left
 * as they are.
 */
int store_apply_dry_run(struct store *s, const json_t *objects, const json_t *sources, bool live,
			json_t *changes, char *err, size_t errlen);
int store_delete(struct store *s, const json_t *objects, const json_t *sources,
		 bool ignore_not_found, json_t *changes, char *err, size_t errlen);

/* Undo for an apply or delete: store_snapshot records how each of objects
 * is stored now (or that it is not); store_restore puts them back so. */
json_t *store_snapshot(struct store *s, const json_t *objects);
int store_restore(struct store *s, const json_t *objects, const json_t *snapshot);

/*
 * Objects from the Kubernetes API (agent/kube.c). They are marked as the
 * API's, saved with that mark, and only they are removed by a relist;
 * nothing is saved until store_flush.
 *
 * store_kube_event applies one watch event: type ADDED, MODIFIED or
 * DELETED. store_kube_replace makes the API's objects of one kind exactly
 * items (a list response, each item with apiVersion and kind): what is new
 * or changed is put in, what is gone is removed. A policy is read with
 * pol_parse_api: never skipped, it fails closed (logged, and counted by
 * store_degraded). Any other object sluice cannot read is logged and
 * skipped; the store keeps its last readable version. A Node that
 * conflicts with others is kept but refused (struct store_node).
 * Both append {"kind","namespace","name","action"} to changes for what
 * actually changed. Return 0 or -ENOMEM (-EINVAL for an unknown kind).
 */
int store_kube_event(struct store *s, const char *type, const json_t *obj, json_t *changes);
int store_kube_replace(struct store *s, const char *api_version, const char *kind,
		       const json_t *items, json_t *changes);
/*
 * A list in pages, as the API serves it, so that no whole list is ever in
 * memory: store_kube_list_begin, store_kube_list_page for each page in
 * order (its objects put in at once, each marked as listed), then
 * store_kube_list_end, which removes the kind's API objects that no page
 * named. A list abandoned midway (store_kube_list_abort, or a begin again)
 * removes nothing; the objects its pages put in stay, as watch events would
 * have left them, and a list begun again starts over (store_kube_replace is
 * the three in one). Every put and removal is in the change log
 * (store_changes_take) and, unless changes is NULL, in changes. A page or
 * end without a begin returns -EINVAL. store_flush waits for the end of
 * every list begun.
 */
int store_kube_list_begin(struct store *s, const char *api_version, const char *kind);
int store_kube_list_page(struct store *s, const char *api_version, const char *kind,
			 const json_t *items, json_t *changes);
int store_kube_list_end(struct store *s, const char *api_version, const char *kind,
			json_t *changes);
int store_kube_list_abort(struct store *s, const char *api_version, const char *kind);
/* Save what changed since the last save, if anything: records appended to
 * <state-dir>/objects.journal, now and then folded into objects.json (see
 * docs/ARCHITECTURE.md, "Saved objects"). store_apply, store_delete and
 * store_restore save before they return. Not while a list is begun and not
 * ended (see store_kube_list_begin): its end saves. */
int store_flush(struct store *s);

/* A pod running on this node, as the endpoints know it. */
struct store_local {
	const char *ns;		/* K8S_POD_NAMESPACE, or "default" */
	const char *name;	/* K8S_POD_NAME, or the container id */
	uint32_t ip;		/* host order */
	/* Kubernetes mode: without its Pod object the pod's labels are
	 * unknown (isolated both ways), not empty. */
	bool need_object;
	const struct pol_pod *pod;	/* set by store_view_build */
};

/* Everything policy needs, borrowed from the store plus synthetic pods for
 * local endpoints that have no Pod object yet (no labels). Valid until the
 * store changes. */
struct store_view {
	struct pol_world w;
	const struct pol_namespace **ns;
	struct pol_ns_ref *ns_by_name;	/* w.ns_by_name */
	const struct pol_pod **pods;
	const struct pol_policy **pol;
	bool *pod_local;		/* per w.pods[i] */
	struct pol_pod *synthetic;	/* owned */
	size_t nsynthetic;
	const struct store_node **nodes;
	size_t nnodes;
	struct store *store;		/* borrowed from, for lookups by name */
};

/*
 * store_view_build: every pod in w.pods, this node's first (a pass over
 * the store, O(objects + locals)): what the compiler needs.
 * store_view_build_lean: the same but w.pods holds this node's pods only,
 * for readers that look pods up by name (store_view_pod, O(locals + 1))
 * or walk them in store_order: `get`, `policy explain`. Both still pass
 * over the objects' kinds once to collect namespaces, policies and nodes.
 */
int store_view_build(struct store *s, struct store_local *locals, size_t nlocals,
		     const uint32_t *node_ips, size_t nnode_ips, struct store_view *v);
int store_view_build_lean(struct store *s, struct store_local *locals, size_t nlocals,
			  const uint32_t *node_ips, size_t nnode_ips, struct store_view *v);
void store_view_free(struct store_view *v);

/* Whether the store holds the Pod ns/name. */
bool store_has_pod(struct store *s, const char *ns, const char *name);
/* The Pod ns/name (O(1)), or NULL; valid until the store changes. */
const struct pol_pod *store_pod(struct store *s, const char *ns, const char *name);

/*
 * What changed: every object put in (created or replaced, even with equal
 * content through sluicectl apply) or removed since the last take, by kind
 * and name, in order, duplicates possible. store_changes_take hands the
 * log over (free it with store_changes_free) and starts a new one. It
 * returns true when the log cannot say (a new store, more than
 * STORE_CHANGES_MAX changes, out of memory): everything may have changed,
 * and *n is 0.
 */
enum store_kind {
	STORE_K_NAMESPACE, STORE_K_POD, STORE_K_NODE, STORE_K_SERVICE, STORE_K_SLICE,
	STORE_K_POLICY,	/* any of the three policy kinds */
	STORE_K_PREFILTER,
};

struct store_change {
	enum store_kind kind;
	char *ns;	/* "" for cluster-scoped kinds */
	char *name;
};

#define STORE_CHANGES_MAX (1u << 18)

bool store_changes_take(struct store *s, struct store_change **out, size_t *n);
void store_changes_free(struct store_change *v, size_t n);
/* Whether the next take will say "everything" (without taking). */
bool store_changes_all(const struct store *s);

/*
 * SluicePrefilter: the stored objects (*out, and per object whether it
 * came from the Kubernetes API in *kube if kube is not NULL; both the
 * caller's to free; pointers valid until the store changes), their count
 * or SIZE_MAX out of memory. store_prefilter_guards adds to g what no
 * entry may lock out: every Node's addresses and pod CIDR, this node's
 * (store_set_self) and the API server's address (store_set_apiserver).
 * `sluicectl apply` of an object with an entry that would is refused.
 */
struct pf_object;
struct pf_guards;
size_t store_prefilters(const struct store *s, const struct pf_object ***out, bool **kube);
int store_prefilter_guards(const struct store *s, struct pf_guards *g);
void store_set_apiserver(struct store *s, uint32_t ip);

/* The Node object called name, or NULL. */
const struct store_node *store_node(const struct store *s, const char *name);

/* Policies in the store that had to fail closed (pol_policy.degraded), and
 * Node objects refused for routing. */
size_t store_degraded(const struct store *s);
size_t store_refused_nodes(const struct store *s);

/* Services that cannot be used: from the API with a field sluice cannot
 * read (struct svc_service.invalid), or refused because an older Service
 * keeps one of their frontends (.refused). EndpointSlices kept but not
 * used (IPv6, FQDN, no service-name label, unreadable). */
size_t store_refused_services(const struct store *s);
size_t store_unused_slices(const struct store *s);

/*
 * The Services for the datapath (all false: those kube-proxy would handle,
 * not refused or invalid) or for `sluicectl get services` (all true: every
 * Service, status saying why one is not handled), with frontends and
 * backends joined from the EndpointSlices; see svc_view_build. A backend
 * is local when its nodeName is this_node or, this_node being the store's
 * own node (store_set_self), its address is in this node's pod range. The
 * view borrows from the store: valid until it changes. Returns 0 or -ENOMEM.
 */
int store_services_view(const struct store *s, const char *this_node, bool all,
			struct svc_view *out);

/* The stored objects of one sort, as JSON summaries for `sluicectl get`. */
json_t *store_namespaces_json(const struct store *s);

/*
 * Pods (STORE_PODS) or policies (STORE_POLICIES) in key order, for paging
 * `sluicectl get` (agent/page.c): by namespace ("" for cluster-scoped),
 * then name, then (policies) kind in the order NetworkPolicy,
 * SluiceNetworkPolicy, SluiceClusterNetworkPolicy (0, 1, 2). store_order
 * sorts them when objects were added or removed since its last call
 * (O(n log n)), else it costs nothing, and returns how many there are (or
 * -ENOMEM). Until the store changes: store_order_after gives the position
 * of the first one after the key (ns, name, kind) in O(log n) (ns NULL:
 * 0), store_order_pod and store_order_policy the one at a position (NULL
 * past the end).
 */
enum store_order { STORE_PODS = 0, STORE_POLICIES = 1 };
ssize_t store_order(struct store *s, enum store_order which);
size_t store_order_after(const struct store *s, enum store_order which, const char *ns,
			 const char *name, int kind);
const struct pol_pod *store_order_pod(const struct store *s, size_t pos);
/* The positions [*lo, *hi) of namespace ns in the order (store_order
 * first), O(log n): the pods a namespaced policy can select. */
void store_order_ns_range(const struct store *s, enum store_order which, const char *ns,
			  size_t *lo, size_t *hi);
const struct pol_policy *store_order_policy(const struct store *s, size_t pos);

/* {"kinds": {"Pod": n, …every kind}, "objects": n, "bytes": b}: bytes is
 * what the store holds for its objects (their JSON text, names and the
 * object table and index; for a Pod from the API, kept without its text,
 * its labels and ports), not counting the other parsed forms. */
json_t *store_counts_json(const struct store *s);

/* The pod "ns/name" as a view sees it (a local pod: its copy with the
 * endpoint's address): this node's pods, then the store's index, O(locals
 * + 1) in either kind of view; NULL if there is none. */
const struct pol_pod *store_view_pod(const struct store_view *v, const char *ns_name);
/* The pod with address ip (host order) as the view sees it: this node's
 * pods first, else a scan of the store's Pods (O(objects), no allocation);
 * NULL if none (or ip 0). */
const struct pol_pod *store_view_pod_by_ip(const struct store_view *v, uint32_t ip);

#endif /* SLUICE_STORE_H */
