/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A randomised, seeded world for the compiler's tests: namespaces, pods,
 * policies (generated as JSON and read by pol_parse / pol_parse_api, so
 * they are what the agent would hold), other nodes, this node's addresses
 * and local endpoints, plus one random mutation at a time (wg_step).
 *
 * It is meant to find the corners an incremental compiler gets wrong, so
 * the vocabularies are small (selectors match often), pod addresses come
 * from a small range (two pods share an address, a local one and a remote
 * one among them; some pods have none yet), node pod CIDRs may overlap,
 * some local endpoints have no Pod object yet (labels_unknown) and some
 * policies are degraded (read fail-closed by pol_parse_api).
 *
 * Everything follows from the seed: the same seed and parameters give the
 * same world and the same sequence of changes. No global state; each
 * struct wg_world owns everything it points to (wg_free releases it).
 *
 * Rules the generator keeps (tests/unit/test_world_gen.c checks them):
 * unique namespace names, pod ns/name, policy kind/ns/name, node names,
 * endpoint ifindex and address; every endpoint's pod is in pods[], with
 * the endpoint's address (never 0); a labels_unknown pod is always local.
 * A pod that is local is never removed, and its address never changes,
 * while it is local: first it stops being local (WG_LOCAL, removed).
 * Pods may live in a namespace that does not exist (it was removed, or
 * arrives later), as in a watch.
 */
#ifndef SLUICE_WORLD_GEN_H
#define SLUICE_WORLD_GEN_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <jansson.h>

#include "compile.h"
#include "policy.h"

/* Sizes of the initial world; wg_step pulls each count back towards its
 * initial value and keeps it at most twice that plus one (pods: plus the
 * ones that arrived without labels as local endpoints). */
struct wg_params {
	size_t nns, npods, npol, nnodes, neps;
};

#define WG_PARAMS_DEFAULT                                                                  \
	((struct wg_params){ .nns = 6, .npods = 60, .npol = 12, .nnodes = 3, .neps = 8 })

enum wg_kind { WG_POD, WG_NAMESPACE, WG_POLICY, WG_NODE, WG_LOCAL, WG_NODE_IPS, WG_NKINDS };

enum wg_op { WG_ADDED, WG_REMOVED, WG_UPDATED };

/* The mutations wg_step draws from (weights in wg_weights). */
enum wg_mut {
	WG_M_POD_ADD,
	WG_M_POD_DEL,
	WG_M_POD_LABELS,	/* also: a labels_unknown pod's object arrives */
	WG_M_POD_IP,		/* a pod that is not local; may become 0 */
	WG_M_POD_PORTS,
	WG_M_NS_ADD,
	WG_M_NS_DEL,
	WG_M_NS_LABELS,
	WG_M_POL_ADD,
	WG_M_POL_DEL,
	WG_M_POL_EDIT,		/* a new version of the same kind/ns/name */
	WG_M_NODE_ADD,
	WG_M_NODE_DEL,
	WG_M_NODE_CIDR,
	WG_M_LOCAL_ADD,
	WG_M_LOCAL_DEL,
	WG_M_NODE_IPS,
	WG_M_N
};

/*
 * What one step changed. ns and name point into the world and stay valid
 * until the next wg_step or wg_free:
 * - WG_POD: the pod's ns/name.
 * - WG_NAMESPACE, WG_NODE: name; ns is NULL.
 * - WG_POLICY: ns (NULL for a SluiceClusterNetworkPolicy) and name; the
 *   kind in pol_kind.
 * - WG_LOCAL: the pod's ns/name. ADDED: the pod became local; one whose
 *   address is not a free local one (10.0.0.1-30) gets one in the
 *   same step, or a new pod with labels_unknown is created in pods[] with its
 *   endpoint. REMOVED: the endpoint is gone; the pod stays in pods[] (not
 *   local any more), except a labels_unknown one, which goes with it.
 * - WG_NODE_IPS: ns and name NULL.
 */
struct wg_change {
	enum wg_kind kind;
	enum wg_op op;
	enum wg_mut mut;
	enum pol_kind pol_kind;
	const char *ns;
	const char *name;
};

struct wg_world {
	struct wg_params prm;
	uint64_t rng;
	/* Owned objects, each allocated on its own: a pointer stays valid
	 * until the object is removed or replaced. */
	struct pol_namespace **ns;
	size_t nns;
	struct pol_pod **pods;
	size_t npods;
	struct pol_policy **pol;
	size_t npol;
	struct compile_node *nodes;
	char (*node_names)[16];	/* nodes[i]'s name */
	size_t nnodes;
	uint32_t node_ips[4];
	size_t nnode_ips;
	struct compile_ep *eps;	/* eps[i].pod is one of pods[] */
	size_t neps;
	int next_ifindex;
	size_t cap_ns, cap_pods, cap_pol, cap_nodes, cap_eps;
	/* wg_view's arrays, rebuilt on every call. */
	const struct pol_namespace **v_ns;
	const struct pol_pod **v_pods;
	const struct pol_policy **v_pol;
	struct pol_ns_ref *v_idx;
	/* wg_change's names. */
	char ch_ns[64], ch_name[64];
	unsigned long steps;
	unsigned long count[WG_M_N];	/* mutations done, by kind */
	bool oom;			/* a JSON builder call failed */
	char err[512];			/* why the last call failed */
};

/* ---- the PRNG: xorshift64*, seeded through splitmix64 so that any seed
 * (0 too) gives a well-mixed non-zero state ---------------------------- */

static inline void wg_seed(struct wg_world *w, uint64_t seed)
{
	uint64_t z = seed + 0x9e3779b97f4a7c15ull;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	w->rng = z ? z : 0x2545f4914f6cdd1dull;
}

static inline uint64_t wg_rand(struct wg_world *w)
{
	uint64_t x = w->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	w->rng = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* Uniform in [0, n); 0 when n is 0. */
static inline uint32_t wg_below(struct wg_world *w, uint32_t n)
{
	return n ? (uint32_t)((wg_rand(w) >> 11) % n) : 0;
}

static inline bool wg_chance(struct wg_world *w, unsigned pct)
{
	return wg_below(w, 100) < pct;
}

#define WG_IP(a, b, c, d) (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((c) << 8) | (d))

/* ---- vocabularies ----------------------------------------------------- */

struct wg_key {
	const char *key;
	unsigned nval;
	const char *val[3];
};

static const struct wg_key wg_pod_keys[] = {
	{ "app", 3, { "web", "db", "cache" } },
	{ "tier", 2, { "front", "back" } },
	{ "env", 2, { "prod", "dev" } },
};

static const struct wg_key wg_ns_keys[] = {
	{ "team", 2, { "red", "blue" } },
	{ "env", 2, { "prod", "dev" } },
};

/* Container port names, each with its usual number and protocol; a pod
 * may give the same name another number, so a named port resolves
 * differently per pod. */
static const struct {
	const char *name;
	uint16_t port;
	uint8_t proto;
} wg_port_names[] = {
	{ "http", 80, IPPROTO_TCP },
	{ "metrics", 9090, IPPROTO_TCP },
	{ "dns", 53, IPPROTO_UDP },
	{ "grpc", 8080, IPPROTO_TCP },
};

static const uint16_t wg_port_numbers[] = { 80, 443, 53, 8080, 8443, 9090 };

/* ipBlocks and the excepts strictly inside each. */
static const struct {
	const char *cidr;
	const char *except[2];
} wg_blocks[] = {
	{ "10.0.0.0/16", { "10.0.0.0/24", "10.0.2.0/25" } },
	{ "10.0.1.0/24", { "10.0.1.0/28", NULL } },
	{ "10.0.0.0/24", { "10.0.0.16/28", "10.0.0.1/32" } },
	{ "0.0.0.0/0", { "10.0.0.0/8", NULL } },
	{ "192.168.0.0/24", { "192.168.0.100/30", NULL } },
	{ "10.0.3.7/32", { NULL, NULL } },
};

/* This node's own addresses are drawn from these: one is a local pod's
 * address range, one is inside another node's pod CIDR. */
static const uint32_t wg_node_ip_vocab[] = {
	WG_IP(192, 168, 0, 100), WG_IP(192, 168, 0, 101), WG_IP(10, 0, 0, 1), WG_IP(10, 0, 1, 5),
};

#define WG_N(a) (sizeof(a) / sizeof((a)[0]))
/* Local endpoints' addresses: 10.0.0.1 - 10.0.0.WG_LOCAL_IPS (this
 * node's pod CIDR). */
#define WG_LOCAL_IPS 30u

/* ---- JSON builders: a failed call sets w->oom, checked once at the end */

static inline void wg_jset(struct wg_world *w, json_t *o, const char *key, json_t *v)
{
	if (!o || !v) {
		json_decref(v);
		w->oom = true;
		return;
	}
	if (json_object_set_new(o, key, v))
		w->oom = true;
}

static inline void wg_jadd(struct wg_world *w, json_t *a, json_t *v)
{
	if (!a || !v) {
		json_decref(v);
		w->oom = true;
		return;
	}
	if (json_array_append_new(a, v))
		w->oom = true;
}

static inline int wg_grow(void **arr, size_t *cap, size_t n, size_t size)
{
	void *p;
	size_t c;

	if (n < *cap)
		return 0;
	c = *cap ? 2 * *cap : 16;
	p = realloc(*arr, c * size);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = c;
	return 0;
}

/* Remove entry i of an array keeping the order (the store keeps its
 * order too; the compiler must not depend on it, but the first of two
 * overlapping node CIDRs wins, so order matters for nodes). */
static inline void wg_cut(void *arr, size_t *n, size_t i, size_t size)
{
	char *a = arr;

	memmove(a + i * size, a + (i + 1) * size, (*n - i - 1) * size);
	(*n)--;
}

/* ---- lookups ----------------------------------------------------------- */

static inline long wg_find_ns(const struct wg_world *w, const char *name)
{
	for (size_t i = 0; i < w->nns; i++)
		if (!strcmp(w->ns[i]->name, name))
			return (long)i;
	return -1;
}

static inline long wg_find_pod(const struct wg_world *w, const char *ns, const char *name)
{
	for (size_t i = 0; i < w->npods; i++)
		if (!strcmp(w->pods[i]->ns, ns) && !strcmp(w->pods[i]->name, name))
			return (long)i;
	return -1;
}

/* ns NULL: a cluster policy. */
static inline long wg_find_pol(const struct wg_world *w, enum pol_kind kind, const char *ns,
			       const char *name)
{
	for (size_t i = 0; i < w->npol; i++) {
		const struct pol_policy *p = w->pol[i];

		if (p->kind == kind && !strcmp(p->name, name) &&
		    (!ns ? !p->ns : p->ns && !strcmp(p->ns, ns)))
			return (long)i;
	}
	return -1;
}

static inline long wg_find_node(const struct wg_world *w, const char *name)
{
	for (size_t i = 0; i < w->nnodes; i++)
		if (!strcmp(w->node_names[i], name))
			return (long)i;
	return -1;
}

/* The endpoint of pod, or -1. */
static inline long wg_find_ep(const struct wg_world *w, const struct pol_pod *pod)
{
	for (size_t i = 0; i < w->neps; i++)
		if (w->eps[i].pod == pod)
			return (long)i;
	return -1;
}

static inline long wg_find_ep_ip(const struct wg_world *w, uint32_t ip)
{
	for (size_t i = 0; i < w->neps; i++)
		if (w->eps[i].ip == ip)
			return (long)i;
	return -1;
}

/* A random pod's position; local_ok false: only pods that are not local.
 * -1 if there is none. */
static inline long wg_pick_pod(struct wg_world *w, bool local_ok)
{
	uint32_t start = wg_below(w, (uint32_t)w->npods + 1);

	for (size_t i = 0; i < w->npods; i++) {
		size_t at = (start + i) % w->npods;

		if (local_ok || wg_find_ep(w, w->pods[at]) < 0)
			return (long)at;
	}
	return -1;
}

/* ---- objects ------------------------------------------------------------ */

static inline void wg_pod_free(struct pol_pod *p)
{
	if (!p)
		return;
	free(p->ns);
	free(p->name);
	pol_labels_free(&p->labels);
	for (size_t i = 0; i < p->nports; i++)
		free(p->ports[i].name);
	free(p->ports);
	free(p);
}

static inline void wg_ns_free(struct pol_namespace *n)
{
	if (!n)
		return;
	free(n->name);
	pol_labels_free(&n->labels);
	free(n);
}

/* Labels from a vocabulary; ns_name set: a namespace, which also carries
 * kubernetes.io/metadata.name as the API server sets it. */
static inline int wg_labels(struct wg_world *w, const char *ns_name, struct pol_labels *out)
{
	const struct wg_key *keys = ns_name ? wg_ns_keys : wg_pod_keys;
	size_t nkeys = ns_name ? WG_N(wg_ns_keys) : WG_N(wg_pod_keys);
	json_t *o = json_object();
	int ret;

	for (size_t i = 0; i < nkeys; i++)
		if (wg_chance(w, 70))
			wg_jset(w, o, keys[i].key,
				json_string(keys[i].val[wg_below(w, keys[i].nval)]));
	if (ns_name)
		wg_jset(w, o, "kubernetes.io/metadata.name", json_string(ns_name));
	ret = w->oom ? -ENOMEM : pol_labels_parse(o, "labels", out, w->err, sizeof(w->err));
	json_decref(o);
	return ret;
}

/* New labels for an object, different from the old ones. Returns 1 when
 * none were found (the caller draws another mutation). */
static inline int wg_relabel(struct wg_world *w, const char *ns_name, struct pol_labels *l)
{
	for (int tries = 0; tries < 32; tries++) {
		struct pol_labels nl = { 0 };
		int ret = wg_labels(w, ns_name, &nl);

		if (ret)
			return ret;
		if (!pol_labels_equal(&nl, l)) {
			pol_labels_free(l);
			*l = nl;
			return 0;
		}
		pol_labels_free(&nl);
	}
	return 1;
}

static inline int wg_ports(struct wg_world *w, struct pol_pod *p)
{
	size_t n = wg_below(w, 4);
	bool used[WG_N(wg_port_names)] = { false };

	p->nports = 0;
	p->ports = n ? calloc(n, sizeof(*p->ports)) : NULL;
	if (n && !p->ports)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct pol_container_port *cp = &p->ports[p->nports];
		unsigned k = wg_below(w, WG_N(wg_port_names));

		cp->proto = wg_port_names[k].proto;
		cp->port = wg_port_names[k].port;
		if (wg_chance(w, 30))
			cp->port = wg_port_numbers[wg_below(w, WG_N(wg_port_numbers))];
		if (wg_chance(w, 10))
			cp->proto = cp->proto == IPPROTO_TCP ? IPPROTO_UDP : IPPROTO_TCP;
		/* Names are unique in a pod; a second use stays unnamed. */
		if (!used[k] && wg_chance(w, 80)) {
			used[k] = true;
			cp->name = strdup(wg_port_names[k].name);
			if (!cp->name)
				return -ENOMEM;
		}
		p->nports++;
	}
	return 0;
}

/* A pod address: sometimes none yet, sometimes one another pod has (a
 * stale object, or a reused address), sometimes a node's (hostNetwork),
 * else from a small range spanning this node's and the other nodes' pod
 * CIDRs. */
static inline uint32_t wg_pod_ip(struct wg_world *w)
{
	unsigned r = wg_below(w, 100);

	if (r < 12)
		return 0;
	if (r < 30 && w->npods) {
		uint32_t ip = w->pods[wg_below(w, (uint32_t)w->npods)]->ip;

		if (ip)
			return ip;
	}
	/* A hostNetwork pod: this node's or another node's address. */
	if (r < 36 && w->nnode_ips && (!w->nnodes || wg_chance(w, 50)))
		return w->node_ips[wg_below(w, (uint32_t)w->nnode_ips)];
	if (r < 36 && w->nnodes)
		return w->nodes[wg_below(w, (uint32_t)w->nnodes)].ip;
	return WG_IP(10, 0, wg_below(w, (uint32_t)w->prm.nnodes + 2), 1 + wg_below(w, WG_LOCAL_IPS));
}

/* A local address no endpoint uses, or 0 when all are taken. */
static inline uint32_t wg_local_ip(struct wg_world *w)
{
	uint32_t start = wg_below(w, WG_LOCAL_IPS);

	for (uint32_t i = 0; i < WG_LOCAL_IPS; i++) {
		uint32_t ip = WG_IP(10, 0, 0, 1 + (start + i) % WG_LOCAL_IPS);

		if (wg_find_ep_ip(w, ip) < 0)
			return ip;
	}
	return 0;
}

/* A namespace name for a new object: mostly one that exists. */
static inline void wg_pick_ns(struct wg_world *w, char *buf, size_t len)
{
	if (w->nns && wg_chance(w, 90))
		snprintf(buf, len, "%s", w->ns[wg_below(w, (uint32_t)w->nns)]->name);
	else
		snprintf(buf, len, "ns-%u", wg_below(w, 2 * (uint32_t)w->prm.nns + 1));
}

static inline int wg_add_pod(struct wg_world *w, const char *ns, const char *name,
			     bool unknown, uint32_t ip, struct pol_pod **out)
{
	struct pol_pod *p = calloc(1, sizeof(*p));
	int ret = -ENOMEM;

	if (!p)
		return -ENOMEM;
	p->ns = strdup(ns);
	p->name = strdup(name);
	if (!p->ns || !p->name)
		goto cleanup;
	p->ip = ip;
	p->labels_unknown = unknown;
	if (!unknown) {
		ret = wg_labels(w, NULL, &p->labels);
		if (ret)
			goto cleanup;
		ret = wg_ports(w, p);
		if (ret)
			goto cleanup;
	}
	ret = wg_grow((void **)&w->pods, &w->cap_pods, w->npods, sizeof(*w->pods));
	if (ret)
		goto cleanup;
	w->pods[w->npods++] = p;
	if (out)
		*out = p;
	return 0;
cleanup:
	wg_pod_free(p);
	return ret;
}

/* A pod name free in ns; 1 when none was found. */
static inline int wg_pod_name(struct wg_world *w, const char *ns, char *buf, size_t len)
{
	for (int tries = 0; tries < 64; tries++) {
		snprintf(buf, len, "pod-%u", wg_below(w, 3 * (uint32_t)w->prm.npods + 3));
		if (wg_find_pod(w, ns, buf) < 0)
			return 0;
	}
	return 1;
}

static inline int wg_add_ns(struct wg_world *w, const char *name)
{
	struct pol_namespace *n = calloc(1, sizeof(*n));
	int ret = -ENOMEM;

	if (!n)
		return -ENOMEM;
	n->name = strdup(name);
	if (!n->name)
		goto cleanup;
	ret = wg_labels(w, name, &n->labels);
	if (ret)
		goto cleanup;
	ret = wg_grow((void **)&w->ns, &w->cap_ns, w->nns, sizeof(*w->ns));
	if (ret)
		goto cleanup;
	w->ns[w->nns++] = n;
	return 0;
cleanup:
	wg_ns_free(n);
	return ret;
}

/* ---- policies ------------------------------------------------------------ */

static inline json_t *wg_selector(struct wg_world *w, bool for_ns)
{
	const struct wg_key *keys = for_ns ? wg_ns_keys : wg_pod_keys;
	uint32_t nkeys = for_ns ? WG_N(wg_ns_keys) : WG_N(wg_pod_keys);
	json_t *s = json_object(), *ml, *exprs, *e, *vals;
	static const char *const ops[] = { "In", "NotIn", "Exists", "DoesNotExist" };
	unsigned op;

	if (wg_chance(w, 20))
		return s; /* {}: everything */
	if (for_ns && wg_chance(w, 20)) {
		char name[32];

		snprintf(name, sizeof(name), "ns-%u", wg_below(w, 2 * (uint32_t)w->prm.nns + 1));
		ml = json_object();
		wg_jset(w, ml, "kubernetes.io/metadata.name", json_string(name));
		wg_jset(w, s, "matchLabels", ml);
		return s;
	}
	if (wg_chance(w, 75)) {
		ml = json_object();
		for (unsigned i = 0, n = 1 + wg_below(w, 2); i < n; i++) {
			const struct wg_key *k = &keys[wg_below(w, nkeys)];

			wg_jset(w, ml, k->key, json_string(k->val[wg_below(w, k->nval)]));
		}
		wg_jset(w, s, "matchLabels", ml);
	}
	if (wg_chance(w, 35)) {
		const struct wg_key *k = &keys[wg_below(w, nkeys)];

		exprs = json_array();
		e = json_object();
		op = wg_below(w, WG_N(ops));
		wg_jset(w, e, "key", json_string(k->key));
		wg_jset(w, e, "operator", json_string(ops[op]));
		if (op < 2) {
			vals = json_array();
			wg_jadd(w, vals, json_string(k->val[wg_below(w, k->nval)]));
			if (wg_chance(w, 40))
				wg_jadd(w, vals, json_string(k->val[wg_below(w, k->nval)]));
			wg_jset(w, e, "values", vals);
		}
		wg_jadd(w, exprs, e);
		wg_jset(w, s, "matchExpressions", exprs);
	}
	return s;
}

static inline json_t *wg_peer(struct wg_world *w)
{
	json_t *p = json_object(), *ib, *ex;
	unsigned r = wg_below(w, 100), b;

	if (r < 35) {
		wg_jset(w, p, "podSelector", wg_selector(w, false));
	} else if (r < 60) {
		wg_jset(w, p, "namespaceSelector", wg_selector(w, true));
	} else if (r < 80) {
		wg_jset(w, p, "podSelector", wg_selector(w, false));
		wg_jset(w, p, "namespaceSelector", wg_selector(w, true));
	} else {
		b = wg_below(w, WG_N(wg_blocks));
		ib = json_object();
		wg_jset(w, ib, "cidr", json_string(wg_blocks[b].cidr));
		if (wg_blocks[b].except[0] && wg_chance(w, 60)) {
			ex = json_array();
			wg_jadd(w, ex, json_string(wg_blocks[b].except[0]));
			if (wg_blocks[b].except[1] && wg_chance(w, 50))
				wg_jadd(w, ex, json_string(wg_blocks[b].except[1]));
			wg_jset(w, ib, "except", ex);
		}
		wg_jset(w, p, "ipBlock", ib);
	}
	return p;
}

static inline json_t *wg_port(struct wg_world *w)
{
	static const char *const protos[] = { "TCP", "UDP", "SCTP" };
	json_t *p = json_object();
	unsigned r = wg_below(w, 100);

	if (wg_chance(w, 40))
		wg_jset(w, p, "protocol", json_string(protos[wg_below(w, WG_N(protos))]));
	if (r < 40) {
		wg_jset(w, p, "port",
			json_integer(wg_port_numbers[wg_below(w, WG_N(wg_port_numbers))]));
	} else if (r < 60) {
		unsigned lo = wg_chance(w, 50) ? 80 : 8000;

		wg_jset(w, p, "port", json_integer(lo));
		wg_jset(w, p, "endPort", json_integer(lo + wg_below(w, 400)));
	} else if (r < 90) {
		wg_jset(w, p, "port",
			json_string(wg_port_names[wg_below(w, WG_N(wg_port_names))].name));
	}
	/* else: a protocol alone, every port of it */
	return p;
}

static inline json_t *wg_rule(struct wg_world *w, bool sluice, bool ingress)
{
	json_t *r = json_object(), *list;

	if (sluice && wg_chance(w, 30))
		wg_jset(w, r, "action", json_string("Deny"));
	else if (sluice && wg_chance(w, 20))
		wg_jset(w, r, "action", json_string("Allow"));
	if (wg_chance(w, 75)) {
		list = json_array();
		/* An empty list reads as every peer, like none. */
		for (unsigned i = 0, n = wg_chance(w, 5) ? 0 : 1 + wg_below(w, 2); i < n; i++)
			wg_jadd(w, list, wg_peer(w));
		wg_jset(w, r, ingress ? "from" : "to", list);
	}
	if (wg_chance(w, 65)) {
		list = json_array();
		for (unsigned i = 0, n = 1 + wg_below(w, 2); i < n; i++)
			wg_jadd(w, list, wg_port(w));
		wg_jset(w, r, "ports", list);
	}
	if (sluice && wg_chance(w, 15)) {
		json_t *ic = json_object();

		list = json_array();
		wg_jset(w, ic, "type", json_integer(wg_chance(w, 50) ? 8 : 3));
		if (wg_chance(w, 30))
			wg_jset(w, ic, "code", json_integer(4));
		wg_jadd(w, list, ic);
		wg_jset(w, r, "icmp", list);
	}
	return r;
}

/*
 * A policy of kind called ns/name (ns ignored for a cluster policy), as
 * JSON and then parsed. About one in ten carries a port the API server
 * would accept but sluice cannot represent, read by pol_parse_api into a
 * degraded policy; the rest must pass pol_parse.
 */
static inline int wg_policy(struct wg_world *w, enum pol_kind kind, const char *ns,
			    const char *name, struct pol_policy **out)
{
	bool sluice = kind != POL_K8S, degraded = wg_chance(w, 10);
	json_t *o = json_object(), *meta = json_object(), *spec = json_object(), *types, *list;
	static const char *const kinds[] = { "NetworkPolicy", "SluiceNetworkPolicy",
					     "SluiceClusterNetworkPolicy" };
	unsigned t;
	int ret;

	*out = NULL;
	wg_jset(w, o, "apiVersion",
		json_string(sluice ? "sluice.io/v1alpha1" : "networking.k8s.io/v1"));
	wg_jset(w, o, "kind", json_string(kinds[kind]));
	wg_jset(w, meta, "name", json_string(name));
	if (kind != POL_SLUICE_CLUSTER)
		wg_jset(w, meta, "namespace", json_string(ns));
	wg_jset(w, o, "metadata", json_incref(meta));
	wg_jset(w, spec, "podSelector", wg_selector(w, false));
	if (kind == POL_SLUICE_CLUSTER && wg_chance(w, 70))
		wg_jset(w, spec, "namespaceSelector", wg_selector(w, true));
	if (sluice && wg_chance(w, 25))
		wg_jset(w, spec, "mode", json_string("Audit"));
	else if (sluice && wg_chance(w, 10))
		wg_jset(w, spec, "mode", json_string("Enforce"));
	t = wg_below(w, 4);
	if (t) {
		types = json_array();
		if (t & 1)
			wg_jadd(w, types, json_string("Ingress"));
		if (t & 2)
			wg_jadd(w, types, json_string("Egress"));
		wg_jset(w, spec, "policyTypes", types);
	}
	if (wg_chance(w, 80) || degraded) {
		list = json_array();
		for (unsigned i = 0, n = wg_below(w, 3); i < n; i++)
			wg_jadd(w, list, wg_rule(w, sluice, true));
		if (degraded) {
			json_t *r = wg_rule(w, sluice, true), *ports = json_array(), *bad;

			bad = json_object();
			wg_jset(w, bad, "port", json_integer(70000));
			wg_jadd(w, ports, bad);
			wg_jset(w, r, "ports", ports);
			wg_jadd(w, list, r);
		}
		wg_jset(w, spec, "ingress", list);
	}
	if (wg_chance(w, 60)) {
		list = json_array();
		for (unsigned i = 0, n = wg_below(w, 3); i < n; i++)
			wg_jadd(w, list, wg_rule(w, sluice, false));
		wg_jset(w, spec, "egress", list);
	}
	wg_jset(w, o, "spec", json_incref(spec));
	if (w->oom)
		ret = -ENOMEM;
	else if (degraded)
		ret = pol_parse_api(o, out, w->err, sizeof(w->err));
	else
		ret = pol_parse(o, out, w->err, sizeof(w->err));
	if (ret && !w->oom) {
		char *text = json_dumps(o, JSON_COMPACT);

		/* The generator's JSON must be valid: say which object. */
		snprintf(w->err + strlen(w->err), sizeof(w->err) - strlen(w->err), " in %.300s",
			 text ? text : "(policy)");
		free(text);
	}
	json_decref(meta);
	json_decref(spec);
	json_decref(o);
	return ret;
}

/* A policy name free for kind in ns; 1 when none was found. */
static inline int wg_pol_name(struct wg_world *w, enum pol_kind kind, const char *ns, char *buf,
			      size_t len)
{
	static const char *const prefix[] = { "np", "snp", "cnp" };

	for (int tries = 0; tries < 64; tries++) {
		snprintf(buf, len, "%s-%u", prefix[kind], wg_below(w, 3 * (uint32_t)w->prm.npol + 3));
		if (wg_find_pol(w, kind, kind == POL_SLUICE_CLUSTER ? NULL : ns, buf) < 0)
			return 0;
	}
	return 1;
}

static inline int wg_add_policy(struct wg_world *w, struct pol_policy **out)
{
	enum pol_kind kind;
	struct pol_policy *p = NULL;
	char ns[32], name[32];
	unsigned r = wg_below(w, 10);
	int ret;

	kind = r < 5 ? POL_K8S : r < 8 ? POL_SLUICE : POL_SLUICE_CLUSTER;
	wg_pick_ns(w, ns, sizeof(ns));
	if (wg_pol_name(w, kind, ns, name, sizeof(name)))
		return 1;
	ret = wg_policy(w, kind, ns, name, &p);
	if (ret)
		return ret;
	ret = wg_grow((void **)&w->pol, &w->cap_pol, w->npol, sizeof(*w->pol));
	if (ret) {
		pol_free(p);
		return ret;
	}
	w->pol[w->npol++] = p;
	if (out)
		*out = p;
	return 0;
}

/* ---- nodes ----------------------------------------------------------- */

/* Node k's name, pod CIDR 10.0.(k+1).0/24 and address 192.168.0.(k+1). */
static inline int wg_add_node(struct wg_world *w, uint32_t k)
{
	int ret;

	ret = wg_grow((void **)&w->nodes, &w->cap_nodes, w->nnodes, sizeof(*w->nodes));
	if (ret)
		return ret;
	/* node_names grows with nodes: same capacity, grown only if needed. */
	{
		char(*nn)[16] = realloc(w->node_names, w->cap_nodes * sizeof(*w->node_names));

		if (!nn)
			return -ENOMEM;
		w->node_names = nn;
	}
	snprintf(w->node_names[w->nnodes], sizeof(w->node_names[0]), "node-%u", k);
	w->nodes[w->nnodes] = (struct compile_node){
		.pod_cidr = { .net = WG_IP(10, 0, k + 1, 0), .prefix = 24 },
		.ip = WG_IP(192, 168, 0, k + 1),
	};
	w->nnodes++;
	return 0;
}

static inline uint32_t wg_node_vocab(const struct wg_world *w)
{
	return 2 * (uint32_t)w->prm.nnodes + 2;
}

/* A node number no node uses, or -1. */
static inline long wg_free_node(struct wg_world *w)
{
	uint32_t n = wg_node_vocab(w), start = wg_below(w, n);
	char name[16];

	for (uint32_t i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "node-%u", (start + i) % n);
		if (wg_find_node(w, name) < 0)
			return (long)((start + i) % n);
	}
	return -1;
}

static inline void wg_draw_node_ips(struct wg_world *w, uint32_t *ips, size_t *n)
{
	*n = 1 + wg_below(w, 2);
	ips[0] = wg_node_ip_vocab[wg_below(w, WG_N(wg_node_ip_vocab))];
	if (*n == 2) {
		ips[1] = wg_node_ip_vocab[wg_below(w, WG_N(wg_node_ip_vocab))];
		if (ips[1] == ips[0])
			*n = 1;
	}
}

/* ---- local endpoints ------------------------------------------------- */

static inline int wg_add_ep(struct wg_world *w, struct pol_pod *p)
{
	struct compile_ep *ep;
	int ret;

	ret = wg_grow((void **)&w->eps, &w->cap_eps, w->neps, sizeof(*w->eps));
	if (ret)
		return ret;
	ep = &w->eps[w->neps++];
	*ep = (struct compile_ep){ .ip = p->ip, .ifindex = w->next_ifindex++, .pod = p };
	/* Locally administered MACs derived from the ifindex. */
	ep->pod_mac[0] = 0x0a;
	ep->host_mac[0] = 0x0e;
	for (int i = 0; i < 4; i++)
		ep->pod_mac[2 + i] = ep->host_mac[2 + i] =
			(unsigned char)((unsigned)ep->ifindex >> (8 * (3 - i)));
	return 0;
}

/*
 * Make a pod local. One in four (every one with unknown set) is a new pod
 * whose object has not arrived (labels_unknown); otherwise a pod that is
 * not local yet, given a free local address unless it has one already. Returns 1 when nothing could be made local.
 */
static inline int wg_make_local(struct wg_world *w, bool unknown, struct pol_pod **out)
{
	uint32_t ip = wg_local_ip(w);
	struct pol_pod *p = NULL;
	char ns[32], name[32];
	int ret;

	if (!ip)
		return 1;
	if (wg_chance(w, 25) || unknown) {
		wg_pick_ns(w, ns, sizeof(ns));
		if (wg_pod_name(w, ns, name, sizeof(name)))
			return 1;
		ret = wg_add_pod(w, ns, name, true, ip, &p);
		if (ret)
			return ret;
	} else {
		uint32_t start = wg_below(w, (uint32_t)w->npods + 1);

		for (size_t i = 0; i < w->npods && !p; i++) {
			struct pol_pod *c = w->pods[(start + i) % w->npods];

			if (wg_find_ep(w, c) < 0)
				p = c;
		}
		if (!p)
			return 1;
		if (p->ip < WG_IP(10, 0, 0, 1) || p->ip > WG_IP(10, 0, 0, WG_LOCAL_IPS) ||
		    wg_find_ep_ip(w, p->ip) >= 0)
			p->ip = ip;
	}
	*out = p;
	return wg_add_ep(w, p);
}

static inline void wg_remove_pod_at(struct wg_world *w, size_t i)
{
	wg_pod_free(w->pods[i]);
	wg_cut(w->pods, &w->npods, i, sizeof(*w->pods));
}

/* ---- the world -------------------------------------------------------- */

static inline void wg_free(struct wg_world *w)
{
	for (size_t i = 0; i < w->nns; i++)
		wg_ns_free(w->ns[i]);
	for (size_t i = 0; i < w->npods; i++)
		wg_pod_free(w->pods[i]);
	for (size_t i = 0; i < w->npol; i++)
		pol_free(w->pol[i]);
	free(w->ns);
	free(w->pods);
	free(w->pol);
	free(w->nodes);
	free(w->node_names);
	free(w->eps);
	free(w->v_ns);
	free(w->v_pods);
	free(w->v_pol);
	free(w->v_idx);
	memset(w, 0, sizeof(*w));
}

/*
 * A world of prm's sizes from seed. Returns 0, -ENOMEM, or -EINVAL when a
 * generated policy does not parse (a bug here; w->err says which). On
 * failure the world is freed.
 */
static inline int wg_init(struct wg_world *w, uint64_t seed, const struct wg_params *prm)
{
	char ns[32], name[32];
	int ret = 0;

	memset(w, 0, sizeof(*w));
	w->prm = prm ? *prm : WG_PARAMS_DEFAULT;
	wg_seed(w, seed);
	w->next_ifindex = 100;
	while (w->nns < w->prm.nns && !ret) {
		snprintf(ns, sizeof(ns), "ns-%u", wg_below(w, 2 * (uint32_t)w->prm.nns + 1));
		if (wg_find_ns(w, ns) < 0)
			ret = wg_add_ns(w, ns);
	}
	for (size_t i = 0; i < w->prm.npods && ret >= 0; i++) {
		wg_pick_ns(w, ns, sizeof(ns));
		if (!wg_pod_name(w, ns, name, sizeof(name)))
			ret = wg_add_pod(w, ns, name, false, wg_pod_ip(w), NULL);
	}
	for (size_t i = 0; i < w->prm.npol && ret >= 0; i++)
		ret = wg_add_policy(w, NULL);
	for (size_t i = 0; i < w->prm.nnodes && ret >= 0; i++) {
		long k = wg_free_node(w);

		ret = k < 0 ? 1 : wg_add_node(w, (uint32_t)k);
	}
	if (ret >= 0)
		wg_draw_node_ips(w, w->node_ips, &w->nnode_ips);
	for (size_t i = 0; i < w->prm.neps && ret >= 0; i++) {
		struct pol_pod *p;

		/* The first endpoint has no Pod object yet. */
		ret = wg_make_local(w, i == 0, &p);
	}
	/* The corners from the start, not only by chance: a pod that is not
	 * local with a local endpoint's address, and a pod without one. */
	if (ret >= 0 && w->neps && w->npods > w->neps + 1) {
		long a = wg_pick_pod(w, false), b;

		w->pods[a]->ip = w->eps[wg_below(w, (uint32_t)w->neps)].ip;
		do
			b = wg_pick_pod(w, false);
		while (b == a);
		w->pods[b]->ip = 0;
	}
	/* 1 (no free name, node or address) only means a smaller world. */
	if (ret > 0)
		ret = 0;
	if (ret)
		wg_free(w);
	return ret;
}

/* Relative weights of the mutations: labels and policy edits are what a
 * cluster does most. An add and its removal share their summed weight
 * (wg_bound decides which by the count). */
static const unsigned wg_weights[WG_M_N] = {
	[WG_M_POD_ADD] = 10,	[WG_M_POD_DEL] = 8,	[WG_M_POD_LABELS] = 12,
	[WG_M_POD_IP] = 6,	[WG_M_POD_PORTS] = 5,	[WG_M_NS_ADD] = 3,
	[WG_M_NS_DEL] = 2,	[WG_M_NS_LABELS] = 4,	[WG_M_POL_ADD] = 6,
	[WG_M_POL_DEL] = 4,	[WG_M_POL_EDIT] = 8,	[WG_M_NODE_ADD] = 2,
	[WG_M_NODE_DEL] = 2,	[WG_M_NODE_CIDR] = 2,	[WG_M_LOCAL_ADD] = 4,
	[WG_M_LOCAL_DEL] = 3,	[WG_M_NODE_IPS] = 1,
};

static inline enum wg_mut wg_draw(struct wg_world *w)
{
	unsigned total = 0, r;

	for (int m = 0; m < WG_M_N; m++)
		total += wg_weights[m];
	r = wg_below(w, total);
	for (int m = 0; m < WG_M_N; m++) {
		if (r < wg_weights[m])
			return (enum wg_mut)m;
		r -= wg_weights[m];
	}
	return WG_M_NODE_IPS;
}

/* An add or a removal of one kind: add with probability (cap - n) / cap,
 * cap = 2 * target + 1, so the count drifts back to its initial size and
 * stays within [0, cap]. */
static inline enum wg_mut wg_pull(struct wg_world *w, size_t n, size_t target, enum wg_mut add,
				  enum wg_mut del)
{
	return wg_below(w, 2 * (uint32_t)target + 1) >= n ? add : del;
}

static inline enum wg_mut wg_bound(struct wg_world *w, enum wg_mut m)
{
	const struct wg_params *p = &w->prm;

	switch (m) {
	case WG_M_POD_ADD:
	case WG_M_POD_DEL:
		return wg_pull(w, w->npods, p->npods, WG_M_POD_ADD, WG_M_POD_DEL);
	case WG_M_NS_ADD:
	case WG_M_NS_DEL:
		return wg_pull(w, w->nns, p->nns, WG_M_NS_ADD, WG_M_NS_DEL);
	case WG_M_POL_ADD:
	case WG_M_POL_DEL:
		return wg_pull(w, w->npol, p->npol, WG_M_POL_ADD, WG_M_POL_DEL);
	case WG_M_NODE_ADD:
	case WG_M_NODE_DEL:
		return wg_pull(w, w->nnodes, p->nnodes, WG_M_NODE_ADD, WG_M_NODE_DEL);
	case WG_M_LOCAL_ADD:
	case WG_M_LOCAL_DEL:
		return wg_pull(w, w->neps, p->neps, WG_M_LOCAL_ADD, WG_M_LOCAL_DEL);
	default:
		return m;
	}
}

static inline void wg_note(struct wg_world *w, struct wg_change *ch, enum wg_kind kind,
			   enum wg_op op, const char *ns, const char *name)
{
	ch->kind = kind;
	ch->op = op;
	snprintf(w->ch_ns, sizeof(w->ch_ns), "%s", ns ? ns : "");
	snprintf(w->ch_name, sizeof(w->ch_name), "%s", name ? name : "");
	ch->ns = ns ? w->ch_ns : NULL;
	ch->name = name ? w->ch_name : NULL;
}

/* One mutation m; 1 when it is impossible in this world (wg_step draws
 * again). */
static inline int wg_apply(struct wg_world *w, enum wg_mut m, struct wg_change *ch)
{
	char ns[32], name[32];
	struct pol_pod *p;
	long i;
	int ret;

	switch (m) {
	case WG_M_POD_ADD:
		wg_pick_ns(w, ns, sizeof(ns));
		if (wg_pod_name(w, ns, name, sizeof(name)))
			return 1;
		ret = wg_add_pod(w, ns, name, false, wg_pod_ip(w), &p);
		if (!ret)
			wg_note(w, ch, WG_POD, WG_ADDED, p->ns, p->name);
		return ret;
	case WG_M_POD_DEL:
		i = wg_pick_pod(w, false);
		if (i < 0)
			return 1;
		wg_note(w, ch, WG_POD, WG_REMOVED, w->pods[i]->ns, w->pods[i]->name);
		wg_remove_pod_at(w, (size_t)i);
		return 0;
	case WG_M_POD_LABELS:
		i = wg_pick_pod(w, true);
		if (i < 0)
			return 1;
		p = w->pods[i];
		if (p->labels_unknown) {
			/* The Pod object arrives. */
			ret = wg_labels(w, NULL, &p->labels);
			if (!ret)
				ret = wg_ports(w, p);
			if (ret)
				return ret;
			p->labels_unknown = false;
		} else {
			ret = wg_relabel(w, NULL, &p->labels);
			if (ret)
				return ret;
		}
		wg_note(w, ch, WG_POD, WG_UPDATED, p->ns, p->name);
		return 0;
	case WG_M_POD_IP: {
		uint32_t ip;

		i = wg_pick_pod(w, false);
		if (i < 0)
			return 1;
		p = w->pods[i];
		ip = wg_pod_ip(w);
		if (ip == p->ip)
			return 1;
		p->ip = ip;
		wg_note(w, ch, WG_POD, WG_UPDATED, p->ns, p->name);
		return 0;
	}
	case WG_M_POD_PORTS: {
		struct pol_pod np = { 0 };

		i = wg_pick_pod(w, true);
		if (i < 0 || w->pods[i]->labels_unknown)
			return 1;
		p = w->pods[i];
		ret = wg_ports(w, &np);
		if (!ret && pol_ports_equal(&np, p))
			ret = 1;
		if (ret) {
			for (size_t k = 0; k < np.nports; k++)
				free(np.ports[k].name);
			free(np.ports);
			return ret;
		}
		for (size_t k = 0; k < p->nports; k++)
			free(p->ports[k].name);
		free(p->ports);
		p->ports = np.ports;
		p->nports = np.nports;
		wg_note(w, ch, WG_POD, WG_UPDATED, p->ns, p->name);
		return 0;
	}
	case WG_M_NS_ADD:
		for (int tries = 0; tries < 16; tries++) {
			snprintf(ns, sizeof(ns), "ns-%u",
				 wg_below(w, 2 * (uint32_t)w->prm.nns + 1));
			if (wg_find_ns(w, ns) < 0) {
				ret = wg_add_ns(w, ns);
				if (!ret)
					wg_note(w, ch, WG_NAMESPACE, WG_ADDED, NULL, ns);
				return ret;
			}
		}
		return 1;
	case WG_M_NS_DEL:
		if (!w->nns)
			return 1;
		i = (long)wg_below(w, (uint32_t)w->nns);
		wg_note(w, ch, WG_NAMESPACE, WG_REMOVED, NULL, w->ns[i]->name);
		wg_ns_free(w->ns[i]);
		wg_cut(w->ns, &w->nns, (size_t)i, sizeof(*w->ns));
		return 0;
	case WG_M_NS_LABELS:
		if (!w->nns)
			return 1;
		i = (long)wg_below(w, (uint32_t)w->nns);
		ret = wg_relabel(w, w->ns[i]->name, &w->ns[i]->labels);
		if (!ret)
			wg_note(w, ch, WG_NAMESPACE, WG_UPDATED, NULL, w->ns[i]->name);
		return ret;
	case WG_M_POL_ADD: {
		struct pol_policy *np = NULL;

		ret = wg_add_policy(w, &np);
		if (ret)
			return ret;
		ch->pol_kind = np->kind;
		wg_note(w, ch, WG_POLICY, WG_ADDED, np->ns, np->name);
		return 0;
	}
	case WG_M_POL_DEL:
		if (!w->npol)
			return 1;
		i = (long)wg_below(w, (uint32_t)w->npol);
		ch->pol_kind = w->pol[i]->kind;
		wg_note(w, ch, WG_POLICY, WG_REMOVED, w->pol[i]->ns, w->pol[i]->name);
		pol_free(w->pol[i]);
		wg_cut(w->pol, &w->npol, (size_t)i, sizeof(*w->pol));
		return 0;
	case WG_M_POL_EDIT: {
		struct pol_policy *np = NULL, *old;

		if (!w->npol)
			return 1;
		i = (long)wg_below(w, (uint32_t)w->npol);
		old = w->pol[i];
		ret = wg_policy(w, old->kind, old->ns, old->name, &np);
		if (ret)
			return ret;
		w->pol[i] = np;
		pol_free(old);
		ch->pol_kind = np->kind;
		wg_note(w, ch, WG_POLICY, WG_UPDATED, np->ns, np->name);
		return 0;
	}
	case WG_M_NODE_ADD: {
		long k = wg_free_node(w);

		if (k < 0)
			return 1;
		ret = wg_add_node(w, (uint32_t)k);
		if (!ret)
			wg_note(w, ch, WG_NODE, WG_ADDED, NULL, w->node_names[w->nnodes - 1]);
		return ret;
	}
	case WG_M_NODE_DEL:
		if (!w->nnodes)
			return 1;
		i = (long)wg_below(w, (uint32_t)w->nnodes);
		wg_note(w, ch, WG_NODE, WG_REMOVED, NULL, w->node_names[i]);
		memmove(&w->node_names[i], &w->node_names[i + 1],
			(w->nnodes - (size_t)i - 1) * sizeof(*w->node_names));
		wg_cut(w->nodes, &w->nnodes, (size_t)i, sizeof(*w->nodes));
		return 0;
	case WG_M_NODE_CIDR: {
		struct cidr4 c;

		if (!w->nnodes)
			return 1;
		i = (long)wg_below(w, (uint32_t)w->nnodes);
		/* Another node's /24 at times: overlapping CIDRs, first wins. */
		c.prefix = wg_chance(w, 70) ? 24 : 25;
		c.net = WG_IP(10, 0, 1 + wg_below(w, wg_node_vocab(w)), 0);
		if (c.net == w->nodes[i].pod_cidr.net && c.prefix == w->nodes[i].pod_cidr.prefix)
			return 1;
		w->nodes[i].pod_cidr = c;
		wg_note(w, ch, WG_NODE, WG_UPDATED, NULL, w->node_names[i]);
		return 0;
	}
	case WG_M_LOCAL_ADD:
		ret = wg_make_local(w, false, &p);
		if (!ret)
			wg_note(w, ch, WG_LOCAL, WG_ADDED, p->ns, p->name);
		return ret;
	case WG_M_LOCAL_DEL:
		if (!w->neps)
			return 1;
		i = (long)wg_below(w, (uint32_t)w->neps);
		p = (struct pol_pod *)w->eps[i].pod;
		wg_note(w, ch, WG_LOCAL, WG_REMOVED, p->ns, p->name);
		wg_cut(w->eps, &w->neps, (size_t)i, sizeof(*w->eps));
		if (p->labels_unknown)
			wg_remove_pod_at(w, (size_t)wg_find_pod(w, p->ns, p->name));
		return 0;
	case WG_M_NODE_IPS: {
		uint32_t ips[4];
		size_t n;

		wg_draw_node_ips(w, ips, &n);
		if (n == w->nnode_ips && !memcmp(ips, w->node_ips, n * sizeof(ips[0])))
			return 1;
		memcpy(w->node_ips, ips, n * sizeof(ips[0]));
		w->nnode_ips = n;
		wg_note(w, ch, WG_NODE_IPS, WG_UPDATED, NULL, NULL);
		return 0;
	}
	default:
		return 1;
	}
}

/*
 * One random mutation of the world, described in ch. Pointers into the
 * world taken before (wg_view's arrays, a removed or replaced object) may
 * be stale afterwards: call wg_view again. Returns 0, -ENOMEM, or -EINVAL
 * when a generated policy does not parse (w->err says which).
 */
static inline int wg_step(struct wg_world *w, struct wg_change *ch)
{
	int ret = 1;

	memset(ch, 0, sizeof(*ch));
	/* Some mutation is always possible (this node's addresses can always
	 * change), so the loop ends; 64 draws make it all but certain. */
	for (int tries = 0; tries < 64 && ret > 0; tries++) {
		ch->mut = wg_bound(w, wg_draw(w));
		ret = wg_apply(w, ch->mut, ch);
	}
	while (ret > 0) {
		ch->mut = WG_M_NODE_IPS;
		ret = wg_apply(w, ch->mut, ch);
	}
	if (ret)
		return ret;
	w->count[ch->mut]++;
	w->steps++;
	return 0;
}

/*
 * The world as the compiler takes it: out gets borrowed arrays of pods,
 * namespaces (indexed with pol_world_index_ns), policies and this node's
 * addresses; eps and nodes (either may be NULL) the endpoints and other
 * nodes. Everything stays valid until the next wg_step, wg_view or
 * wg_free. Returns 0 or -ENOMEM.
 */
static inline int wg_view(struct wg_world *w, struct pol_world *out,
			  const struct compile_ep **eps, size_t *neps,
			  const struct compile_node **nodes, size_t *nnodes)
{
	free(w->v_ns);
	free(w->v_pods);
	free(w->v_pol);
	free(w->v_idx);
	w->v_ns = calloc(w->nns + 1, sizeof(*w->v_ns));
	w->v_pods = calloc(w->npods + 1, sizeof(*w->v_pods));
	w->v_pol = calloc(w->npol + 1, sizeof(*w->v_pol));
	w->v_idx = calloc(w->nns + 1, sizeof(*w->v_idx));
	if (!w->v_ns || !w->v_pods || !w->v_pol || !w->v_idx)
		return -ENOMEM;
	for (size_t i = 0; i < w->nns; i++)
		w->v_ns[i] = w->ns[i];
	for (size_t i = 0; i < w->npods; i++)
		w->v_pods[i] = w->pods[i];
	for (size_t i = 0; i < w->npol; i++)
		w->v_pol[i] = w->pol[i];
	*out = (struct pol_world){
		.nns = w->nns,
		.ns = w->v_ns,
		.npods = w->npods,
		.pods = w->v_pods,
		.npol = w->npol,
		.pol = w->v_pol,
		.nnode_ips = w->nnode_ips,
		.node_ips = w->node_ips,
	};
	pol_world_index_ns(out, w->v_idx);
	if (eps)
		*eps = w->eps;
	if (neps)
		*neps = w->neps;
	if (nodes)
		*nodes = w->nodes;
	if (nnodes)
		*nnodes = w->nnodes;
	return 0;
}

static inline const char *wg_kind_name(enum wg_kind k)
{
	static const char *const names[] = { "pod", "namespace", "policy", "node", "local",
					     "node-ips" };

	return k < WG_NKINDS ? names[k] : "?";
}

static inline const char *wg_mut_name(enum wg_mut m)
{
	static const char *const names[] = {
		"pod-add",    "pod-del",   "pod-labels", "pod-ip",	   "pod-ports",
		"ns-add",     "ns-del",	   "ns-labels",	 "policy-add",	   "policy-del",
		"policy-edit", "node-add", "node-del",	 "node-cidr",	   "local-add",
		"local-del",  "node-ips",
	};

	return m < WG_M_N ? names[m] : "?";
}

#endif /* SLUICE_WORLD_GEN_H */
