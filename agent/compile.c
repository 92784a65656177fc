// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bpf/bpf.h>

#include "compile.h"
#include "log.h"

/* A set of map entries, each stored as key bytes then value bytes. */
struct entry_set {
	unsigned char *data;
	size_t n, cap;
	size_t ksz, vsz;
};

struct compiler {
	struct datapath *dp;
	/* What the maps hold, as of the last sync (or as read at open). */
	struct entry_set eps, ipc, allow, deny;
};

static void set_init(struct entry_set *s, size_t ksz, size_t vsz)
{
	*s = (struct entry_set){ .ksz = ksz, .vsz = vsz };
}

static void set_free(struct entry_set *s)
{
	free(s->data);
	s->data = NULL;
	s->n = s->cap = 0;
}

static int set_add(struct entry_set *s, const void *key, const void *val)
{
	size_t esz = s->ksz + s->vsz;

	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 256;
		unsigned char *d = realloc(s->data, cap * esz);

		if (!d)
			return -ENOMEM;
		s->data = d;
		s->cap = cap;
	}
	memcpy(s->data + s->n * esz, key, s->ksz);
	memcpy(s->data + s->n * esz + s->ksz, val, s->vsz);
	s->n++;
	return 0;
}

static unsigned char *set_at(const struct entry_set *s, size_t i)
{
	return s->data + i * (s->ksz + s->vsz);
}

static int cmp_key(const void *a, const void *b, void *ksz)
{
	return memcmp(a, b, *(size_t *)ksz);
}

/* Sort by key and keep the first of equal keys. */
static void set_sort_unique(struct entry_set *s)
{
	size_t esz = s->ksz + s->vsz, out = 0;

	if (!s->n)
		return;
	qsort_r(s->data, s->n, esz, cmp_key, &s->ksz);
	for (size_t i = 1; i < s->n; i++)
		if (memcmp(set_at(s, i), set_at(s, out), s->ksz))
			memmove(set_at(s, ++out), set_at(s, i), esz);
	s->n = out + 1;
}

/* Read every entry of a map into s (sorted). */
static int set_load(struct entry_set *s, int fd)
{
	unsigned char key[64], next[64], val[64];
	void *prev = NULL;
	int ret;

	while (!(ret = bpf_map_get_next_key(fd, prev, next))) {
		if (!bpf_map_lookup_elem(fd, next, val) && set_add(s, next, val))
			return -ENOMEM;
		memcpy(key, next, s->ksz);
		prev = key;
	}
	if (errno != ENOENT)
		return -errno;
	set_sort_unique(s);
	return 0;
}

enum phase { PHASE_UPDATE, PHASE_DELETE };

/* Bring the map from old to new: updates (new keys, changed values) in
 * PHASE_UPDATE, deletions in PHASE_DELETE. Both sets are sorted. */
static int set_apply(int fd, const struct entry_set *old, const struct entry_set *new,
		     enum phase phase, size_t *ops)
{
	size_t i = 0, j = 0;
	int c;

	while (i < old->n || j < new->n) {
		const unsigned char *o = i < old->n ? set_at(old, i) : NULL;
		const unsigned char *n = j < new->n ? set_at(new, j) : NULL;

		c = !o ? 1 : !n ? -1 : memcmp(o, n, old->ksz);
		if (c < 0) {
			if (phase == PHASE_DELETE) {
				if (bpf_map_delete_elem(fd, o) && errno != ENOENT)
					return -errno;
				(*ops)++;
			}
			i++;
		} else if (c > 0 || memcmp(o + old->ksz, n + new->ksz, new->vsz)) {
			if (phase == PHASE_UPDATE) {
				if (bpf_map_update_elem(fd, n, n + new->ksz, BPF_ANY))
					return -errno;
				(*ops)++;
			}
			if (c == 0)
				i++;
			j++;
		} else {
			i++;
			j++;
		}
	}
	return 0;
}

int port_range_blocks(uint16_t lo, uint16_t hi, uint16_t *starts, uint8_t *bits)
{
	uint32_t cur = lo, end = hi;
	int n = 0;

	while (cur <= end) {
		int k = 0; /* block of 2^k ports */

		while (k < 16 && !(cur & ((1u << (k + 1)) - 1)) && cur + (1u << (k + 1)) - 1 <= end)
			k++;
		starts[n] = (uint16_t)cur;
		bits[n] = (uint8_t)(16 - k);
		n++;
		cur += 1u << k;
	}
	return n;
}

/* ---- building the desired state ------------------------------------- */

struct prefix {
	struct cidr4 c;
	uint32_t id;
};

struct build {
	const struct pol_world *w;
	const struct compile_node *nodes;	/* other nodes */
	size_t nnodes;
	struct identities *ids;
	uint32_t *pod_ids;		/* per w->pods[i] */
	struct prefix *prefixes;	/* every ipBlock cidr and except, unique */
	size_t nprefixes;
	uint32_t *idbuf;		/* scratch: identities a rule's peers match */
	const struct pol_pod **podbuf;	/* scratch: the pod behind each, or NULL */
	size_t nid, capid;
	struct entry_set eps, ipc, allow, deny;
};

static int within(const struct cidr4 *inner, const struct cidr4 *outer)
{
	return inner->prefix >= outer->prefix && cidr4_contains(outer, inner->net);
}

static int cmp_prefix(const void *a, const void *b)
{
	const struct prefix *x = a, *y = b;

	if (x->c.net != y->c.net)
		return x->c.net < y->c.net ? -1 : 1;
	return x->c.prefix - y->c.prefix;
}

static int add_prefix(struct build *b, const struct cidr4 *c, size_t *cap)
{
	if (b->nprefixes == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		struct prefix *p = realloc(b->prefixes, ncap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		b->prefixes = p;
		*cap = ncap;
	}
	b->prefixes[b->nprefixes++] = (struct prefix){ .c = *c };
	return 0;
}

static int collect_rules_prefixes(struct build *b, const struct pol_rule *r, size_t nr, size_t *cap)
{
	for (size_t i = 0; i < nr; i++)
		for (size_t j = 0; j < r[i].npeers; j++) {
			const struct pol_peer *p = &r[i].peers[j];

			if (!p->is_ipblock)
				continue;
			if (add_prefix(b, &p->cidr, cap))
				return -ENOMEM;
			for (size_t k = 0; k < p->nexcept; k++)
				if (add_prefix(b, &p->except[k], cap))
					return -ENOMEM;
		}
	return 0;
}

static int collect_prefixes(struct build *b)
{
	size_t cap = 0, out = 0;

	for (size_t i = 0; i < b->w->npol; i++) {
		const struct pol_policy *p = b->w->pol[i];

		if (collect_rules_prefixes(b, p->in, p->nin, &cap) ||
		    collect_rules_prefixes(b, p->eg, p->neg, &cap))
			return -ENOMEM;
	}
	if (!b->nprefixes)
		return 0;
	qsort(b->prefixes, b->nprefixes, sizeof(*b->prefixes), cmp_prefix);
	for (size_t i = 0; i < b->nprefixes; i++) {
		if (out && !cmp_prefix(&b->prefixes[out - 1], &b->prefixes[i]))
			continue;
		b->prefixes[out] = b->prefixes[i];
		b->prefixes[out].id = identity_of_cidr(b->ids, &b->prefixes[i].c);
		if (!b->prefixes[out].id)
			return -ENOMEM;
		out++;
	}
	b->nprefixes = out;
	return 0;
}

/* The CIDR identity of a whole prefix: the most specific ipBlock prefix
 * that holds it, or world. */
static uint32_t cidr_identity_of(const struct build *b, const struct cidr4 *q)
{
	int best = -1;

	for (size_t i = 0; i < b->nprefixes; i++)
		if (within(q, &b->prefixes[i].c) &&
		    (best < 0 || b->prefixes[i].c.prefix > b->prefixes[best].c.prefix))
			best = (int)i;
	return best < 0 ? SLUICE_ID_WORLD : b->prefixes[best].id;
}

static uint32_t cidr_identity(const struct build *b, uint32_t ip)
{
	struct cidr4 host = { .net = ip, .prefix = 32 };

	return cidr_identity_of(b, &host);
}

/* The node (other than this one) whose pods live in q, or 0. */
static uint32_t tunnel_endpoint(const struct build *b, const struct cidr4 *q)
{
	for (size_t i = 0; i < b->nnodes; i++)
		if (within(q, &b->nodes[i].pod_cidr))
			return b->nodes[i].ip;
	return 0;
}

static int ipcache_add_flags(struct build *b, uint32_t ip, int prefix, uint32_t id,
			     uint32_t cidr_id, uint32_t tunnel, uint32_t flags)
{
	struct sluice_ipcache_key k = { .prefixlen = (__u32)prefix, .ip = htonl(ip) };
	struct sluice_ipcache_value v = {
		.identity = id,
		.cidr_identity = cidr_id,
		.tunnel_endpoint = htonl(tunnel),
		.flags = flags,
	};

	return set_add(&b->ipc, &k, &v);
}

static int ipcache_add(struct build *b, uint32_t ip, int prefix, uint32_t id, uint32_t cidr_id)
{
	struct cidr4 q = { .net = ip, .prefix = prefix };

	return ipcache_add_flags(b, ip, prefix, id, cidr_id, tunnel_endpoint(b, &q), 0);
}

/* Is ip another node's own address? */
static int is_remote_node(const struct build *b, uint32_t ip)
{
	for (size_t i = 0; i < b->nnodes; i++)
		if (b->nodes[i].ip == ip)
			return 1;
	return 0;
}

static int build_ipcache(struct build *b)
{
	/* Other nodes' pod CIDRs: pods there that have no Pod object here
	 * still get to their node. */
	for (size_t i = 0; i < b->nnodes; i++)
		if (ipcache_add(b, b->nodes[i].pod_cidr.net, b->nodes[i].pod_cidr.prefix,
				SLUICE_ID_WORLD, cidr_identity_of(b, &b->nodes[i].pod_cidr)))
			return -ENOMEM;
	for (size_t i = 0; i < b->nprefixes; i++) {
		/* (an ipBlock /32 on a node's address: the node's entry below
		 * carries the same CIDR identity) */
		if (b->prefixes[i].c.prefix == 32 && is_remote_node(b, b->prefixes[i].c.net))
			continue;
		if (ipcache_add(b, b->prefixes[i].c.net, b->prefixes[i].c.prefix, SLUICE_ID_WORLD,
				b->prefixes[i].id))
			return -ENOMEM;
	}
	/*
	 * Other nodes' own addresses: WORLD to policy, as before, but marked
	 * as nodes (the only senders of overlay packets the datapath believes,
	 * see bpf/lib/origin.h) and reached through themselves: in overlay
	 * mode a pod's packets to another node's address are tunnelled to it
	 * like those to its pods, so that no plain packet with a pod's source
	 * ever crosses the underlay (the receiving node drops those as
	 * forged); in native mode they take from_pod's route lookup instead
	 * of the host's forwarding. Either way, the flow's replies come back
	 * the way it went, so it is not the stack's (SLUICE_CT_F_VIA_STACK).
	 */
	for (size_t i = 0; i < b->nnodes; i++) {
		uint32_t ip = b->nodes[i].ip;

		if (ipcache_add_flags(b, ip, 32, SLUICE_ID_WORLD, cidr_identity(b, ip), ip,
				      SLUICE_IPC_F_NODE))
			return -ENOMEM;
	}
	for (size_t i = 0; i < b->w->npods; i++) {
		uint32_t ip = b->w->pods[i]->ip;

		if (ip && ipcache_add(b, ip, 32, b->pod_ids[i], cidr_identity(b, ip)))
			return -ENOMEM;
	}
	for (size_t i = 0; i < b->w->nnode_ips; i++) {
		uint32_t ip = b->w->node_ips[i];

		if (ipcache_add(b, ip, 32, SLUICE_ID_HOST, cidr_identity(b, ip)))
			return -ENOMEM;
	}
	return 0;
}

static int peer_push(struct build *b, uint32_t id, const struct pol_pod *pod)
{
	if (b->nid == b->capid) {
		size_t cap = b->capid ? b->capid * 2 : 64;
		uint32_t *ids = realloc(b->idbuf, cap * sizeof(*ids));
		const struct pol_pod **pods;

		if (!ids)
			return -ENOMEM;
		b->idbuf = ids;
		pods = realloc(b->podbuf, cap * sizeof(*pods));
		if (!pods)
			return -ENOMEM;
		b->podbuf = pods;
		b->capid = cap;
	}
	b->idbuf[b->nid] = id;
	b->podbuf[b->nid++] = pod;
	return 0;
}

/* Identities (and the pod behind each, for named ports) a rule's peers
 * match, into b->idbuf / b->podbuf. */
static int rule_peers(struct build *b, const struct pol_policy *p, const struct pol_rule *r)
{
	b->nid = 0;
	if (r->any_peer)
		return peer_push(b, SLUICE_ID_ANY, NULL);
	for (size_t i = 0; i < r->npeers; i++) {
		const struct pol_peer *peer = &r->peers[i];

		if (peer->is_ipblock) {
			for (size_t k = 0; k < b->nprefixes; k++) {
				const struct cidr4 *c = &b->prefixes[k].c;
				int excluded = !within(c, &peer->cidr);

				for (size_t e = 0; !excluded && e < peer->nexcept; e++)
					excluded = within(c, &peer->except[e]);
				if (!excluded && peer_push(b, b->prefixes[k].id, NULL))
					return -ENOMEM;
			}
			continue;
		}
		for (size_t k = 0; k < b->w->npods; k++)
			if (pol_peer_matches_pod(peer, p, b->w, b->w->pods[k]) &&
			    peer_push(b, b->pod_ids[k], b->w->pods[k]))
				return -ENOMEM;
	}
	return 0;
}

static int policy_add(struct entry_set *s, int ep, uint32_t id, uint8_t dir_tier, uint8_t proto,
		      uint16_t port, int bits, uint32_t rule)
{
	struct sluice_policy_key k = {
		.ep = (__u32)ep,
		.identity = id,
		.dir = dir_tier,
	};
	struct sluice_policy_value v = { .rule = rule };

	if (bits < 0) { /* any protocol */
		k.prefixlen = SLUICE_POLICY_FIXED_BITS;
	} else {
		k.prefixlen = SLUICE_POLICY_FIXED_BITS + 8 + (__u32)bits;
		k.proto = proto;
		k.port = htons(bits ? (uint16_t)(port & (0xffffu << (16 - bits))) : 0);
	}
	return set_add(s, &k, &v);
}

/* Entries for one peer identity of one rule. dst is the pod that receives
 * the traffic (for named ports), NULL when unknown. */
static int emit_ports(struct entry_set *s, int ep, uint32_t id, uint8_t dir_tier,
		      const struct pol_rule *r, const struct pol_pod *dst, uint32_t ref, bool named_only)
{
	static const uint8_t protos[] = { IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP };

	if (r->any_port)
		return named_only ? 0 : policy_add(s, ep, id, dir_tier, 0, 0, -1, ref);
	for (size_t i = 0; i < r->nports; i++) {
		if (named_only && r->ports[i].kind != PORT_NAMED)
			continue;
		for (size_t pi = 0; pi < sizeof(protos); pi++) {
			uint16_t lo, hi, starts[32];
			uint8_t bits[32];
			int n;

			if (!pol_port_range(&r->ports[i], dst, protos[pi], &lo, &hi))
				continue;
			n = port_range_blocks(lo, hi, starts, bits);
			for (int k = 0; k < n; k++)
				if (policy_add(s, ep, id, dir_tier, protos[pi], starts[k], bits[k], ref))
					return -ENOMEM;
		}
	}
	for (size_t i = 0; !named_only && i < r->nicmp; i++) {
		uint16_t port = (uint16_t)(r->icmp[i].type << 8 |
					   (r->icmp[i].code < 0 ? 0 : r->icmp[i].code));

		if (policy_add(s, ep, id, dir_tier, IPPROTO_ICMP, port, r->icmp[i].code < 0 ? 8 : 16,
			       ref))
			return -ENOMEM;
	}
	return 0;
}

static bool rule_has_named_port(const struct pol_rule *r)
{
	for (size_t i = 0; i < r->nports; i++)
		if (r->ports[i].kind == PORT_NAMED)
			return true;
	return false;
}

static int emit_policy(struct build *b, const struct compile_ep *e, size_t pol_index,
		       enum pol_dir dir, int tier)
{
	const struct pol_policy *p = b->w->pol[pol_index];
	const struct pol_rule *rules = dir == POL_INGRESS ? p->in : p->eg;
	size_t nrules = dir == POL_INGRESS ? p->nin : p->neg;
	uint8_t dir_tier = (uint8_t)((dir == POL_INGRESS ? SLUICE_DIR_INGRESS : SLUICE_DIR_EGRESS) |
				     tier << 1);

	for (size_t r = 0; r < nrules; r++) {
		struct entry_set *s = rules[r].action == POL_DENY ? &b->deny : &b->allow;
		uint32_t ref = (uint32_t)((pol_index + 1) << 12 | (r & 0xfff));

		if (rule_peers(b, p, &rules[r]))
			return -ENOMEM;
		for (size_t i = 0; i < b->nid; i++) {
			/* Ports name the receiver's ports: this pod for ingress,
			 * the peer for egress. */
			const struct pol_pod *dst = dir == POL_INGRESS ? e->pod : b->podbuf[i];

			if (emit_ports(s, e->ifindex, b->idbuf[i], dir_tier, &rules[r], dst, ref, false))
				return -ENOMEM;
		}
		/* Egress to any destination on a named port: the name means
		 * something only on pods, and on each pod its own number. */
		if (dir == POL_EGRESS && rules[r].any_peer && rule_has_named_port(&rules[r]))
			for (size_t k = 0; k < b->w->npods; k++)
				if (emit_ports(s, e->ifindex, b->pod_ids[k], dir_tier, &rules[r],
					       b->w->pods[k], ref, true))
					return -ENOMEM;
	}
	return 0;
}

static uint32_t pod_identity(const struct build *b, const struct pol_pod *pod)
{
	for (size_t i = 0; i < b->w->npods; i++)
		if (b->w->pods[i] == pod)
			return b->pod_ids[i];
	return SLUICE_ID_WORLD;
}

static int build_endpoint(struct build *b, const struct compile_ep *e)
{
	struct sluice_endpoint v = { .ifindex = (__u32)e->ifindex };
	struct sluice_endpoint_key k = { .ip4 = htonl(e->ip) };

	memcpy(v.pod_mac, e->pod_mac, 6);
	memcpy(v.lxc_mac, e->host_mac, 6);
	v.identity = pod_identity(b, e->pod);
	for (int d = POL_INGRESS; d <= POL_EGRESS; d++) {
		int enforce = 0, audit = 0;

		for (size_t i = 0; i < b->w->npol; i++) {
			const struct pol_policy *p = b->w->pol[i];

			if (!(d == POL_INGRESS ? p->ingress : p->egress) ||
			    !pol_selects_pod(p, b->w, e->pod))
				continue;
			if (p->audit)
				audit = 1;
			else
				enforce = 1;
		}
		if (enforce)
			v.flags |= d == POL_INGRESS ? SLUICE_EP_F_ISO_INGRESS : SLUICE_EP_F_ISO_EGRESS;
		if (audit)
			v.flags |= d == POL_INGRESS ? SLUICE_EP_F_AUDIT_ISO_INGRESS
						    : SLUICE_EP_F_AUDIT_ISO_EGRESS;
		for (size_t i = 0; (enforce || audit) && i < b->w->npol; i++) {
			const struct pol_policy *p = b->w->pol[i];

			if (!(d == POL_INGRESS ? p->ingress : p->egress) ||
			    !pol_selects_pod(p, b->w, e->pod))
				continue;
			/* Tier 0: enforcing policies. Tier 1 (only with Audit
			 * policies present): enforcing and Audit together. */
			if (!p->audit && enforce && emit_policy(b, e, i, (enum pol_dir)d, 0))
				return -ENOMEM;
			if (audit && emit_policy(b, e, i, (enum pol_dir)d, 1))
				return -ENOMEM;
		}
	}
	return set_add(&b->eps, &k, &v);
}

static void build_free(struct build *b)
{
	free(b->pod_ids);
	free(b->prefixes);
	free(b->idbuf);
	free(b->podbuf);
	set_free(&b->eps);
	set_free(&b->ipc);
	set_free(&b->allow);
	set_free(&b->deny);
}

int compiler_sync(struct compiler *c, const struct pol_world *w, const struct compile_ep *eps,
		  size_t neps, const struct compile_node *nodes, size_t nnodes,
		  struct identities *ids, struct compile_stats *st, char *err, size_t errlen)
{
	struct build b = { .w = w, .ids = ids, .nodes = nodes, .nnodes = nnodes };
	struct timespec t0, t1;
	size_t ops_up = 0, ops_del = 0;
	int ret = -ENOMEM;
	const char *what = "build the policy state";

	clock_gettime(CLOCK_MONOTONIC, &t0);
	set_init(&b.eps, sizeof(struct sluice_endpoint_key), sizeof(struct sluice_endpoint));
	set_init(&b.ipc, sizeof(struct sluice_ipcache_key), sizeof(struct sluice_ipcache_value));
	set_init(&b.allow, sizeof(struct sluice_policy_key), sizeof(struct sluice_policy_value));
	set_init(&b.deny, sizeof(struct sluice_policy_key), sizeof(struct sluice_policy_value));
	identities_begin(ids);
	b.pod_ids = calloc(w->npods + 1, sizeof(*b.pod_ids));
	if (!b.pod_ids)
		goto cleanup;
	for (size_t i = 0; i < w->npods; i++) {
		b.pod_ids[i] = identity_of_pod(ids, w->pods[i]->ns, &w->pods[i]->labels);
		if (!b.pod_ids[i])
			goto cleanup;
	}
	if (collect_prefixes(&b))
		goto cleanup;
	if (build_ipcache(&b))
		goto cleanup;
	for (size_t i = 0; i < neps; i++)
		if (build_endpoint(&b, &eps[i]))
			goto cleanup;
	set_sort_unique(&b.eps);
	set_sort_unique(&b.ipc);
	set_sort_unique(&b.allow);
	set_sort_unique(&b.deny);

	/* Additions and changes everywhere first, endpoint flags last among
	 * them (so rules are in place before an endpoint becomes isolated),
	 * then removals. */
	what = "update the ipcache";
	ret = set_apply(datapath_ipcache_map_fd(c->dp), &c->ipc, &b.ipc, PHASE_UPDATE, &ops_up);
	if (!ret) {
		what = "update the allow rules";
		ret = set_apply(datapath_policy_map_fd(c->dp), &c->allow, &b.allow, PHASE_UPDATE,
				&ops_up);
	}
	if (!ret) {
		what = "update the deny rules";
		ret = set_apply(datapath_deny_map_fd(c->dp), &c->deny, &b.deny, PHASE_UPDATE, &ops_up);
	}
	if (!ret) {
		what = "update the endpoints";
		ret = set_apply(datapath_endpoint_map_fd(c->dp), &c->eps, &b.eps, PHASE_UPDATE,
				&ops_up);
	}
	if (!ret) {
		what = "remove stale entries";
		ret = set_apply(datapath_endpoint_map_fd(c->dp), &c->eps, &b.eps, PHASE_DELETE,
				&ops_del);
	}
	if (!ret)
		ret = set_apply(datapath_policy_map_fd(c->dp), &c->allow, &b.allow, PHASE_DELETE,
				&ops_del);
	if (!ret)
		ret = set_apply(datapath_deny_map_fd(c->dp), &c->deny, &b.deny, PHASE_DELETE,
				&ops_del);
	if (!ret)
		ret = set_apply(datapath_ipcache_map_fd(c->dp), &c->ipc, &b.ipc, PHASE_DELETE,
				&ops_del);
	if (ret) {
		/* The maps are partly updated: forget the shadow so the next
		 * sync rewrites everything it wants. */
		struct entry_set *sets[] = { &c->eps, &c->ipc, &c->allow, &c->deny };

		for (size_t i = 0; i < 4; i++) {
			set_free(sets[i]);
			set_load(sets[i], i == 0 ? datapath_endpoint_map_fd(c->dp)
				 : i == 1 ? datapath_ipcache_map_fd(c->dp)
				 : i == 2 ? datapath_policy_map_fd(c->dp)
					  : datapath_deny_map_fd(c->dp));
		}
		goto cleanup;
	}
	set_free(&c->eps);
	set_free(&c->ipc);
	set_free(&c->allow);
	set_free(&c->deny);
	c->eps = b.eps;
	c->ipc = b.ipc;
	c->allow = b.allow;
	c->deny = b.deny;
	memset(&b.eps, 0, sizeof(b.eps));
	memset(&b.ipc, 0, sizeof(b.ipc));
	memset(&b.allow, 0, sizeof(b.allow));
	memset(&b.deny, 0, sizeof(b.deny));
	ret = identities_end(ids);
	if (ret)
		pr_warn("cannot save identities: %s", strerror(-ret));
	ret = 0;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (st) {
		st->endpoints = c->eps.n;
		st->ipcache = c->ipc.n;
		st->allow = c->allow.n;
		st->deny = c->deny.n;
		st->updated = ops_up;
		st->removed = ops_del;
		st->ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	}
cleanup:
	if (ret)
		snprintf(err, errlen, "cannot %s: %s", what, strerror(-ret));
	build_free(&b);
	return ret;
}

int compiler_open(struct compiler **out, struct datapath *dp, char *err, size_t errlen)
{
	struct compiler *c = calloc(1, sizeof(*c));
	int ret;

	if (!c)
		return -ENOMEM;
	c->dp = dp;
	set_init(&c->eps, sizeof(struct sluice_endpoint_key), sizeof(struct sluice_endpoint));
	set_init(&c->ipc, sizeof(struct sluice_ipcache_key), sizeof(struct sluice_ipcache_value));
	set_init(&c->allow, sizeof(struct sluice_policy_key), sizeof(struct sluice_policy_value));
	set_init(&c->deny, sizeof(struct sluice_policy_key), sizeof(struct sluice_policy_value));
	ret = set_load(&c->eps, datapath_endpoint_map_fd(dp));
	if (!ret)
		ret = set_load(&c->ipc, datapath_ipcache_map_fd(dp));
	if (!ret)
		ret = set_load(&c->allow, datapath_policy_map_fd(dp));
	if (!ret)
		ret = set_load(&c->deny, datapath_deny_map_fd(dp));
	if (ret) {
		snprintf(err, errlen, "cannot read the pinned maps: %s", strerror(-ret));
		compiler_close(c);
		return ret;
	}
	*out = c;
	return 0;
}

void compiler_close(struct compiler *c)
{
	if (!c)
		return;
	set_free(&c->eps);
	set_free(&c->ipc);
	set_free(&c->allow);
	set_free(&c->deny);
	free(c);
}

static enum dp_verdict dp_check(struct compiler *c, uint32_t ep, uint8_t dir_tier,
				const struct sluice_ipcache_value *peer, uint8_t proto, uint16_t port)
{
	struct sluice_policy_key k = {
		.prefixlen = SLUICE_POLICY_KEY_BITS,
		.ep = ep,
		.dir = dir_tier,
		.proto = proto,
		.port = htons(port),
	};
	const uint32_t ids[3] = { peer->identity, peer->cidr_identity, SLUICE_ID_ANY };
	struct sluice_policy_value v;

	for (int i = 0; i < 3; i++) {
		k.identity = ids[i];
		if (!bpf_map_lookup_elem(datapath_deny_map_fd(c->dp), &k, &v))
			return DP_DENY_RULE;
	}
	for (int i = 0; i < 3; i++) {
		k.identity = ids[i];
		if (!bpf_map_lookup_elem(datapath_policy_map_fd(c->dp), &k, &v))
			return DP_ALLOW;
	}
	return DP_NO_RULE;
}

static struct sluice_ipcache_value dp_ipcache(struct compiler *c, uint32_t ip)
{
	struct sluice_ipcache_key k = { .prefixlen = 32, .ip = htonl(ip) };
	struct sluice_ipcache_value v = { .identity = SLUICE_ID_WORLD, .cidr_identity = SLUICE_ID_WORLD };

	bpf_map_lookup_elem(datapath_ipcache_map_fd(c->dp), &k, &v);
	return v;
}

static void dp_decide(struct compiler *c, const struct sluice_endpoint *ep, int dir,
		      const struct sluice_ipcache_value *peer, uint8_t proto, uint16_t port,
		      struct dp_side *out)
{
	uint32_t iso = dir == SLUICE_DIR_INGRESS ? SLUICE_EP_F_ISO_INGRESS : SLUICE_EP_F_ISO_EGRESS;
	uint32_t audit = dir == SLUICE_DIR_INGRESS ? SLUICE_EP_F_AUDIT_ISO_INGRESS
						   : SLUICE_EP_F_AUDIT_ISO_EGRESS;

	out->checked = true;
	out->isolated = ep->flags & iso;
	out->verdict = out->isolated ? dp_check(c, ep->ifindex, (uint8_t)dir, peer, proto, port)
				     : DP_ALLOW;
	out->audit_would_drop = out->verdict == DP_ALLOW && (ep->flags & audit) &&
				dp_check(c, ep->ifindex, (uint8_t)(dir | SLUICE_POLICY_TIER_AUDIT << 1),
					 peer, proto, port) != DP_ALLOW;
}

int compiler_datapath_verdict(struct compiler *c, uint32_t saddr, uint32_t daddr, uint8_t proto,
			      uint16_t port, struct dp_side *egress, struct dp_side *ingress)
{
	struct sluice_endpoint src, dst;
	struct sluice_ipcache_value peer;

	*egress = (struct dp_side){ 0 };
	*ingress = (struct dp_side){ 0 };
	if (!datapath_endpoint_get(c->dp, htonl(saddr), &src)) {
		peer = dp_ipcache(c, daddr);
		dp_decide(c, &src, SLUICE_DIR_EGRESS, &peer, proto, port, egress);
	}
	if (!datapath_endpoint_get(c->dp, htonl(daddr), &dst)) {
		peer = dp_ipcache(c, saddr);
		if (peer.identity != SLUICE_ID_HOST && saddr != daddr)
			dp_decide(c, &dst, SLUICE_DIR_INGRESS, &peer, proto, port, ingress);
	}
	return 0;
}
