/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Policy semantics, independent of the datapath: Kubernetes NetworkPolicy
 * and sluice's own SluiceNetworkPolicy / SluiceClusterNetworkPolicy parsed
 * into plain structs, label selectors, named ports, ipBlocks, and a
 * reference decision procedure. The compiler (agent/compile.c) builds the
 * BPF maps from the same primitives; `sluicectl policy explain` and the unit
 * tests use pol_decide() directly.
 *
 * All strings are owned by the struct that holds them (free with the
 * matching _free function). Label sets are sorted by key, keys unique.
 */
#ifndef SLUICE_POLICY_H
#define SLUICE_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "cidr.h"

/* ---- labels and selectors ------------------------------------------- */

struct pol_label {
	char *key;
	char *value;
};

struct pol_labels {
	size_t n;
	struct pol_label *v; /* sorted by key; v and its strings are one allocation */
};

/* Parse a JSON object of string → string (metadata.labels, matchLabels).
 * NULL or JSON null gives an empty set. path names the field in errors. */
int pol_labels_parse(const json_t *obj, const char *path, struct pol_labels *out, char *err,
		     size_t errlen);
void pol_labels_free(struct pol_labels *l);
/* Value of key, or NULL. */
const char *pol_labels_get(const struct pol_labels *l, const char *key);
bool pol_labels_equal(const struct pol_labels *a, const struct pol_labels *b);

enum pol_sel_op { SEL_IN, SEL_NOT_IN, SEL_EXISTS, SEL_DOES_NOT_EXIST };

struct pol_expr {
	char *key;
	enum pol_sel_op op;
	size_t nval;
	char **val;
};

/* A LabelSelector. No matchLabels and no expressions selects everything. */
struct pol_selector {
	struct pol_labels match;
	size_t nexpr;
	struct pol_expr *expr;
};

int pol_selector_parse(const json_t *obj, const char *path, struct pol_selector *out, char *err,
		       size_t errlen);
void pol_selector_free(struct pol_selector *s);
/* Kubernetes semantics: every matchLabels pair and every expression must
 * hold; NotIn and DoesNotExist match a set that lacks the key. */
bool pol_selector_matches(const struct pol_selector *s, const struct pol_labels *l);

/* ---- objects the semantics look at ---------------------------------- */

struct pol_namespace {
	char *name;
	struct pol_labels labels;
};

struct pol_container_port {
	char *name;	/* NULL when unnamed */
	uint8_t proto;	/* IPPROTO_TCP, IPPROTO_UDP or IPPROTO_SCTP */
	uint16_t port;
};

struct pol_pod {
	char *ns;
	char *name;
	struct pol_labels labels;
	size_t nports;
	struct pol_container_port *ports;
	uint32_t ip;	/* host byte order; 0 while unknown */
	bool labels_unknown;	/* a local endpoint whose Pod object has not
				 * arrived (Kubernetes mode): isolated both
				 * ways, matched by no peer selector */
};

/* The same container ports (protocol, number, name) in the same order. */
bool pol_ports_equal(const struct pol_pod *a, const struct pol_pod *b);

/* A borrowed view of everything the semantics need; the store builds it. */
/* One namespace in pol_world's name index: where it is in ns[]. */
struct pol_ns_ref {
	const char *name;
	size_t pos;
};

struct pol_world {
	size_t nns;
	const struct pol_namespace *const *ns;
	/* ns[] by name, then position (pol_world_index_ns), for a lookup in
	 * O(log n); NULL: pol_world_ns scans ns[]. */
	const struct pol_ns_ref *ns_by_name;
	size_t npods;
	const struct pol_pod *const *pods;
	size_t npol;
	const struct pol_policy *const *pol;
	size_t nnode_ips;	/* the node's own addresses (host order) */
	const uint32_t *node_ips;
};

/* The first namespace in w->ns called name, or NULL: through the index if
 * the world has one, else a scan (pol_world_ns_scan). */
const struct pol_namespace *pol_world_ns(const struct pol_world *w, const char *name);
const struct pol_namespace *pol_world_ns_scan(const struct pol_world *w, const char *name);
/* Fill idx (w->nns entries, the caller's) and point w->ns_by_name at it. */
void pol_world_index_ns(struct pol_world *w, struct pol_ns_ref *idx);

/* ---- policies -------------------------------------------------------- */

enum pol_kind {
	POL_K8S = 0,		/* networking.k8s.io/v1 NetworkPolicy */
	POL_SLUICE,		/* sluice.io/v1alpha1 SluiceNetworkPolicy (namespaced) */
	POL_SLUICE_CLUSTER,	/* sluice.io/v1alpha1 SluiceClusterNetworkPolicy */
};

enum pol_dir { POL_INGRESS = 0, POL_EGRESS = 1 };

enum pol_port_kind { PORT_ANY = 0, PORT_NUMBER, PORT_NAMED };

/* One entry of ports[]. proto is IPPROTO_TCP when the object omits it. */
struct pol_port {
	uint8_t proto;
	enum pol_port_kind kind;
	uint16_t port;		/* PORT_NUMBER */
	uint16_t end_port;	/* PORT_NUMBER: last port of the range; == port when no endPort */
	char *name;		/* PORT_NAMED */
};

/* One entry of icmp[] (sluice CRDs only). code -1: any code. */
struct pol_icmp {
	uint8_t type;
	int16_t code;
};

/*
 * One entry of from[] / to[]. Kubernetes allows either selectors (pod,
 * namespace or both, ANDed) or an ipBlock.
 */
struct pol_peer {
	bool has_pod_sel;
	bool has_ns_sel;
	struct pol_selector pod_sel;
	struct pol_selector ns_sel;
	bool is_ipblock;
	struct cidr4 cidr;
	size_t nexcept;
	struct cidr4 *except;
};

enum pol_action { POL_ALLOW = 0, POL_DENY };

struct pol_rule {
	enum pol_action action;	/* POL_DENY only in sluice CRDs */
	bool any_peer;		/* from/to omitted or empty: every source/destination */
	size_t npeers;
	struct pol_peer *peers;
	bool any_port;		/* ports (and icmp) omitted or empty: every port and protocol */
	size_t nports;
	struct pol_port *ports;
	size_t nicmp;		/* sluice CRDs: ICMP types this rule covers */
	struct pol_icmp *icmp;
};

struct pol_policy {
	enum pol_kind kind;
	char *ns;		/* NULL for SluiceClusterNetworkPolicy */
	char *name;
	struct pol_selector pod_sel;	/* spec.podSelector */
	bool has_ns_sel;		/* cluster policy: spec.namespaceSelector given */
	struct pol_selector ns_sel;	/* cluster policy: namespaces it applies in */
	bool ingress;			/* policyTypes after defaulting */
	bool egress;
	bool audit;			/* sluice CRDs: spec.mode: Audit */
	size_t nin;
	struct pol_rule *in;
	size_t neg;
	struct pol_rule *eg;
	/*
	 * Parsed with pol_parse_api and parts of it could not be represented:
	 * the first part's path and reason, and how many parts. Those parts
	 * were replaced by their fail-closed reading (docs/POLICY.md, "Objects
	 * sluice cannot represent"). NULL / 0 when the object is exact.
	 */
	char *degraded;
	unsigned ndegraded;
	/* Exact readings worth telling the user about (a CIDR with host bits
	 * read as its network, IPv6 peers that match no IPv4 traffic): the
	 * first one, and how many. */
	char *note;
	unsigned nnotes;
	bool from_api;	/* parse mode: fail closed instead of failing */
};

/*
 * Parse a NetworkPolicy, SluiceNetworkPolicy or SluiceClusterNetworkPolicy
 * object (apiVersion/kind decide). Errors name the field with a JSON path
 * ("spec.ingress[0].ports[1].port: ...") and say what is wrong and what is
 * expected. Returns 0 or -EINVAL.
 */
int pol_parse(const json_t *obj, struct pol_policy **out, char *err, size_t errlen);
/*
 * The same parse for objects the Kubernetes API server has already
 * accepted, which sluice cannot refuse: a part that pol_parse would reject
 * is replaced by its fail-closed reading and recorded in degraded (an
 * Allow part contributes no allow; a Deny rule becomes "deny everything";
 * an unreadable podSelector selects every pod of the namespace; unreadable
 * policyTypes isolate both directions). Everything pol_parse accepts comes
 * out identical. Fails only for kind and metadata (the object cannot be
 * named) and out of memory.
 */
int pol_parse_api(const json_t *obj, struct pol_policy **out, char *err, size_t errlen);
void pol_free(struct pol_policy *p);

/* Can p select pods of namespace ns: its own namespace, or for a cluster
 * policy one its namespaceSelector matches (none: every namespace)? */
bool pol_selects_ns(const struct pol_policy *p, const struct pol_world *w, const char *ns);
/* Does p select pod (namespace, pod selector, cluster namespaceSelector)? */
bool pol_selects_pod(const struct pol_policy *p, const struct pol_world *w,
		     const struct pol_pod *pod);
/* Does a selector peer of p match pod? (ipBlock peers: false) */
bool pol_peer_matches_pod(const struct pol_peer *peer, const struct pol_policy *p,
			  const struct pol_world *w, const struct pol_pod *pod);
/* Does an ipBlock peer match ip (host order), honouring except? */
bool pol_peer_matches_ip(const struct pol_peer *peer, uint32_t ip);
/*
 * The port range a ports[] entry allows towards dst (the pod that receives
 * the traffic), for protocol proto. Named ports resolve against dst's
 * container ports (name and protocol both match). Returns true and sets
 * lo/hi when the entry covers proto; false when it does not (other
 * protocol, or a name dst does not have).
 */
bool pol_port_range(const struct pol_port *pp, const struct pol_pod *dst, uint8_t proto,
		    uint16_t *lo, uint16_t *hi);

/* ---- the reference decision ---------------------------------------- */

struct pol_endpoint {
	const struct pol_pod *pod;	/* NULL for a non-pod address */
	uint32_t ip;			/* host order */
};

struct pol_verdict {
	bool allowed;
	bool isolated;			/* some policy selects the subject in this direction */
	const struct pol_policy *policy;	/* the deciding policy, if any */
	enum pol_dir dir;
	int rule;			/* index in in[]/eg[], -1 if none */
	bool denied_by_rule;		/* a CRD deny rule matched */
	bool audit_only;		/* would be denied, but only by Audit-mode policies */
	char reason[512];		/* one sentence for explain */
};

/*
 * Decide one flow src -> dst (proto, dport; for ICMP dport is the type) the
 * way the datapath must: egress of src (when src is a pod) and ingress of
 * dst (when dst is a pod). A pod can always reach itself; the node's own
 * addresses can always reach its pods. Deny rules of sluice CRDs win over
 * any allow. Audit-mode policies never deny; a flow they would deny is
 * allowed with audit_only set.
 */
void pol_decide(const struct pol_world *w, const struct pol_endpoint *src,
		const struct pol_endpoint *dst, uint8_t proto, uint16_t dport,
		struct pol_verdict *v);
/*
 * One side of pol_decide: the egress of src (POL_EGRESS) or the ingress of
 * dst (POL_INGRESS), with the same self, node-address and Audit rules. When
 * that side is not a pod the verdict is allowed and not isolated. `explain`
 * reports both sides with it.
 */
void pol_decide_dir(const struct pol_world *w, enum pol_dir dir, const struct pol_endpoint *src,
		    const struct pol_endpoint *dst, uint8_t proto, uint16_t dport,
		    struct pol_verdict *v);

#endif /* SLUICE_POLICY_H */
