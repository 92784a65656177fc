// SPDX-License-Identifier: Apache-2.0
/*
 * Building the desired state: sets of map entries, and from the whole
 * world view the contents of every map (endpoints, ipcache, allow and
 * deny: build_state, the full build), with the pieces the incremental
 * sync builds from too (ipBlock prefixes, the ipcache's entries, one
 * endpoint's rules). What is built is sized and applied by the syncs
 * (compile_sync.c).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bpf/bpf.h>

#include "compile_int.h"
#include "log.h"

const size_t key_size[CMAP_N] = {
	sizeof(struct sluice_endpoint_key), sizeof(struct sluice_ipcache_key),
	sizeof(struct sluice_policy_key), sizeof(struct sluice_policy_key),
};
const size_t val_size[CMAP_N] = {
	sizeof(struct sluice_endpoint), sizeof(struct sluice_ipcache_value),
	sizeof(struct sluice_policy_value), sizeof(struct sluice_policy_value),
};

/* ---- sets of map entries ------------------------------------------- */

void set_init(struct entry_set *s, size_t ksz, size_t vsz)
{
	*s = (struct entry_set){ .ksz = ksz, .vsz = vsz };
}

void set_free(struct entry_set *s)
{
	free(s->data);
	s->data = NULL;
	s->n = s->cap = 0;
}

int set_add(struct entry_set *s, const void *key, const void *val)
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

unsigned char *set_at(const struct entry_set *s, size_t i)
{
	return s->data + i * (s->ksz + s->vsz);
}

/* Sort by key, stable, and keep the first of equal keys: the order entries
 * were added in says which of two for one key wins (an ipBlock /32 over a
 * pod's address, a local pod over a remote one). A merge sort, not qsort:
 * qsort promises no stability. */
int set_sort_unique(struct entry_set *s)
{
	size_t esz = s->ksz + s->vsz, out = 0;
	unsigned char *a = s->data, *t, *tmp, *x;

	if (s->n < 2)
		return 0;
	tmp = malloc(s->n * esz);
	if (!tmp)
		return -ENOMEM;
	t = tmp;
	for (size_t w = 1; w < s->n; w *= 2) {
		for (size_t lo = 0; lo < s->n; lo += 2 * w) {
			size_t mid = lo + w < s->n ? lo + w : s->n;
			size_t hi = lo + 2 * w < s->n ? lo + 2 * w : s->n;
			size_t i = lo, j = mid, k = lo;

			while (i < mid && j < hi) {
				/* <= keeps the earlier of equal keys first */
				if (memcmp(a + i * esz, a + j * esz, s->ksz) <= 0)
					memcpy(t + k++ * esz, a + i++ * esz, esz);
				else
					memcpy(t + k++ * esz, a + j++ * esz, esz);
			}
			memcpy(t + k * esz, a + i * esz, (mid - i) * esz);
			k += mid - i;
			memcpy(t + k * esz, a + j * esz, (hi - j) * esz);
		}
		x = a;
		a = t;
		t = x;
	}
	if (a != s->data)
		memcpy(s->data, a, s->n * esz);
	free(tmp);
	for (size_t i = 1; i < s->n; i++)
		if (memcmp(set_at(s, i), set_at(s, out), s->ksz))
			memmove(set_at(s, ++out), set_at(s, i), esz);
	s->n = out + 1;
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

static int within(const struct cidr4 *inner, const struct cidr4 *outer)
{
	return inner->prefix >= outer->prefix && cidr4_contains(outer, inner->net);
}

int cmp_prefix(const void *a, const void *b)
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

int collect_prefixes(struct build *b)
{
	size_t cap = 0, out = 0;

	for (size_t i = 0; i < b->w->npol; i++) {
		const struct pol_policy *p = b->w->pol[i];

		if (b->excluded[i])
			continue;
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
		/* 0: the CIDR range is exhausted; the policies naming this
		 * prefix are left out (compiler_sync), never given a number
		 * from the label range. */
		b->prefixes[out].id = identity_of_cidr(b->ids, &b->prefixes[i].c);
		out++;
	}
	b->nprefixes = out;
	return 0;
}

/* The CIDR identity of a whole prefix: the most specific ipBlock prefix
 * that holds it, or world. */
static uint32_t lpm_find(const struct lpm4 *l, const struct cidr4 *q)
{
	for (int len = q->prefix; len >= 0; len--) {
		uint32_t key = len ? q->net & (~0u << (32 - len)) : 0;
		size_t lo = 0, hi = l->n[len];

		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (l->net[len][mid] < key)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < l->n[len] && l->net[len][lo] == key)
			return l->id[len][lo];
	}
	return SLUICE_ID_WORLD;
}

void lpm_free(struct lpm4 *l)
{
	for (int i = 0; i <= 32; i++) {
		free(l->net[i]);
		free(l->id[i]);
	}
	memset(l, 0, sizeof(*l));
}

/* p sorted by (net, prefix) and unique: each length's nets come sorted. */
int lpm_build(struct lpm4 *l, const struct prefix *p, size_t n)
{
	size_t count[33] = { 0 };

	memset(l, 0, sizeof(*l));
	for (size_t i = 0; i < n; i++)
		count[p[i].c.prefix] += p[i].id != 0;
	for (int len = 0; len <= 32; len++) {
		if (!count[len])
			continue;
		l->net[len] = calloc(count[len], sizeof(uint32_t));
		l->id[len] = calloc(count[len], sizeof(uint32_t));
		if (!l->net[len] || !l->id[len]) {
			lpm_free(l);
			return -ENOMEM;
		}
	}
	for (size_t i = 0; i < n; i++) {
		int len = p[i].c.prefix;

		if (!p[i].id)
			continue;
		l->net[len][l->n[len]] = len ? p[i].c.net & (~0u << (32 - len)) : 0;
		l->id[len][l->n[len]++] = p[i].id;
	}
	return 0;
}

static uint32_t cidr_identity_of(const struct build *b, const struct cidr4 *q)
{
	int best = -1;

	if (b->lpm)
		return lpm_find(b->lpm, q);

	for (size_t i = 0; i < b->nprefixes; i++)
		if (b->prefixes[i].id && within(q, &b->prefixes[i].c) &&
		    (best < 0 || b->prefixes[i].c.prefix > b->prefixes[best].c.prefix))
			best = (int)i;
	return best < 0 ? SLUICE_ID_WORLD : b->prefixes[best].id;
}

uint32_t cidr_identity(const struct build *b, uint32_t ip)
{
	struct cidr4 host = { .net = ip, .prefix = 32 };

	return cidr_identity_of(b, &host);
}

/* ---- nodes by pod CIDR --------------------------------------------- */

static uint32_t cidr_first(const struct cidr4 *c)
{
	return c->prefix ? c->net & (~0u << (32 - c->prefix)) : 0;
}

static uint32_t cidr_last(const struct cidr4 *c)
{
	return c->prefix ? cidr_first(c) | ~(~0u << (32 - c->prefix)) : ~0u;
}

const struct compile_node *node_scan_find(const struct compile_node *nodes, size_t n,
					  const struct cidr4 *q)
{
	for (size_t i = 0; i < n; i++)
		if (within(q, &nodes[i].pod_cidr))
			return &nodes[i];
	return NULL;
}

/* qsort has no context argument: sort (start, position) pairs instead. */
struct node_start {
	uint32_t start;
	size_t pos;
};

static int cmp_node_start(const void *a, const void *b)
{
	const struct node_start *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return (x->pos > y->pos) - (x->pos < y->pos);
}

int node_index_build(struct node_index *x, const struct compile_node *nodes, size_t n)
{
	struct node_start *tmp = NULL;
	int err = 0;

	*x = (struct node_index){ .nodes = nodes, .n = n };
	if (n < 2)
		goto cleanup;	/* nothing to gain */
	tmp = calloc(n, sizeof(*tmp));
	x->by_start = calloc(n, sizeof(*x->by_start));
	if (!tmp || !x->by_start) {
		err = -ENOMEM;
		goto cleanup;
	}
	for (size_t i = 0; i < n; i++)
		tmp[i] = (struct node_start){ .start = cidr_first(&nodes[i].pod_cidr), .pos = i };
	qsort(tmp, n, sizeof(*tmp), cmp_node_start);
	for (size_t i = 0; i < n; i++) {
		x->by_start[i] = tmp[i].pos;
		/* Overlap: the order of the nodes decides, keep the scan. */
		if (i && tmp[i].start <= cidr_last(&nodes[tmp[i - 1].pos].pod_cidr)) {
			free(x->by_start);
			x->by_start = NULL;
			goto cleanup;
		}
	}
cleanup:
	free(tmp);
	if (err)
		node_index_free(x);
	return err;
}

void node_index_free(struct node_index *x)
{
	free(x->by_start);
	x->by_start = NULL;
}

const struct compile_node *node_index_find(const struct node_index *x, const struct cidr4 *q)
{
	size_t lo = 0, hi = x->n;
	const struct compile_node *nd;

	if (!x->by_start)
		return node_scan_find(x->nodes, x->n, q);
	/* Disjoint ranges: only the last one starting at or before q can
	 * hold it. lo = the first starting after q. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (cidr_first(&x->nodes[x->by_start[mid]].pod_cidr) <= q->net)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo)
		return NULL;
	nd = &x->nodes[x->by_start[lo - 1]];
	return within(q, &nd->pod_cidr) ? nd : NULL;
}

/* The node (other than this one) whose pods live in q, or 0. */
static uint32_t tunnel_endpoint(const struct build *b, const struct cidr4 *q)
{
	const struct compile_node *nd = node_index_find(&b->node_idx, q);

	return nd ? nd->ip : 0;
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

	return set_add(&b->out[CMAP_IPCACHE], &k, &v);
}

int ipcache_add(struct build *b, uint32_t ip, int prefix, uint32_t id, uint32_t cidr_id)
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

/* One address's holders, to pick the one whose entry it gets. */
struct holder {
	uint32_t ip;
	bool local;
	const struct pol_pod *pod;
	uint32_t id;
};

/* An address held by two pods (a reused one, before the old holder's
 * object is gone) goes to the same one whatever order the store lists
 * them in, and the same one the incremental sync picks. */
static int cmp_holder(const void *a, const void *b)
{
	const struct holder *x = a, *y = b;

	if (x->ip != y->ip)
		return x->ip < y->ip ? -1 : 1;
	return cindex_holder_cmp(x->local, x->pod, y->local, y->pod);
}

int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)*(const void *const *)a, y = (uintptr_t)*(const void *const *)b;

	return (x > y) - (x < y);
}

static int pod_entries(struct build *b)
{
	const struct pol_pod **local = calloc(b->neps + 1, sizeof(*local));
	struct holder *h = calloc(b->w->npods + 1, sizeof(*h));
	size_t n = 0;
	int err = 0;

	if (!local || !h) {
		err = -ENOMEM;
		goto cleanup;
	}
	for (size_t i = 0; i < b->neps; i++)
		local[i] = b->eps[i].pod;
	qsort(local, b->neps, sizeof(*local), cmp_ptr);
	for (size_t i = 0; i < b->w->npods; i++) {
		const struct pol_pod *pod = b->w->pods[i];

		if (pod->ip)
			h[n++] = (struct holder){
				.ip = pod->ip, .pod = pod, .id = b->pod_ids[i],
				.local = bsearch(&pod, local, b->neps, sizeof(*local), cmp_ptr) != NULL };
	}
	qsort(h, n, sizeof(*h), cmp_holder);
	for (size_t i = 0; i < n; i++)
		if ((!i || h[i].ip != h[i - 1].ip) &&
		    ipcache_add(b, h[i].ip, 32, h[i].id, cidr_identity(b, h[i].ip))) {
			err = -ENOMEM;
			goto cleanup;
		}
cleanup:
	free(local);
	free(h);
	return err;
}

/* The other entries of the ipcache, which pods' entries never override
 * (a /32 of theirs wins over a pod's, set_sort_unique keeping the first). */
int ipc_statics(struct build *b)
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
		if (b->prefixes[i].id &&
		    ipcache_add(b, b->prefixes[i].c.net, b->prefixes[i].c.prefix, SLUICE_ID_WORLD,
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
	return 0;
}

static int build_ipcache(struct build *b)
{
	if (ipc_statics(b))
		return -ENOMEM;
	if (pod_entries(b))
		return -ENOMEM;
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

/* Whether pods a and b give the rule's named ports the same numbers. */
static bool same_named_ports(const struct pol_rule *r, const struct pol_pod *a,
			     const struct pol_pod *b)
{
	static const uint8_t protos[] = { IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP };

	for (size_t i = 0; i < r->nports; i++) {
		if (r->ports[i].kind != PORT_NAMED)
			continue;
		for (size_t pi = 0; pi < sizeof(protos); pi++) {
			uint16_t alo = 0, ahi = 0, blo = 0, bhi = 0;
			bool x = pol_port_range(&r->ports[i], a, protos[pi], &alo, &ahi);
			bool y = pol_port_range(&r->ports[i], b, protos[pi], &blo, &bhi);

			if (x != y || alo != blo || ahi != bhi)
				return false;
		}
	}
	return true;
}

/* A group's members: the build's own groups, or the index's (slot g). */
static size_t members(const struct build *b, size_t g)
{
	return b->ix ? cindex_group_size(b->ix, g) : b->groups[g].n;
}

static const struct pol_pod *member(const struct build *b, size_t g, size_t k)
{
	return b->ix ? cindex_group_member(b->ix, g, k)
		     : b->w->pods[b->order[b->groups[g].first + k]];
}

static uint32_t group_id(const struct build *b, size_t g)
{
	return b->ix ? cindex_group_id(b->ix, g) : b->groups[g].id;
}

static size_t group_slots(const struct build *b)
{
	return b->ix ? cindex_group_slots(b->ix) : b->ngroups;
}

/* The pods of group g to emit for: its first pod, or with named ports one
 * pod per distinct set of numbers the names stand for. */
static int group_push(struct build *b, size_t g, const struct pol_rule *r, bool named)
{
	size_t start = b->nid, n = members(b, g);

	if (!named)
		return peer_push(b, group_id(b, g), member(b, g, 0));
	for (size_t k = 0; k < n; k++) {
		const struct pol_pod *pod = member(b, g, k);
		bool seen = false;

		for (size_t j = start; j < b->nid && !seen; j++)
			seen = same_named_ports(r, b->podbuf[j], pod);
		if (!seen && peer_push(b, group_id(b, g), pod))
			return -ENOMEM;
	}
	return 0;
}

/* Identities (and a pod behind each, for named ports) a rule's peers
 * match, into b->idbuf / b->podbuf: one per identity (per identity and
 * port numbers with named ports), so the cost grows with identities. */
static int rule_peers(struct build *b, const struct pol_policy *p, enum pol_dir dir, size_t ri,
		      bool named)
{
	const struct pol_rule *r = dir == POL_INGRESS ? &p->in[ri] : &p->eg[ri];

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
				if (!excluded && b->prefixes[k].id && peer_push(b, b->prefixes[k].id, NULL))
					return -ENOMEM;
			}
			continue;
		}
		if (b->ix) {
			const size_t *gs;
			size_t n;

			const void *handle;

			if (cindex_peer_groups(b->ix, b->w, p, dir, ri, i, &gs, &n, &handle))
				return -ENOMEM;
			if (b->nrefs == b->caprefs) {
				size_t cap = b->caprefs ? b->caprefs * 2 : 16;
				const void **r = realloc(b->refs, cap * sizeof(*r));

				if (!r)
					return -ENOMEM;
				b->refs = r;
				b->caprefs = cap;
			}
			b->refs[b->nrefs++] = handle;
			for (size_t k = 0; k < n; k++)
				if (group_push(b, gs[k], r, named))
					return -ENOMEM;
			continue;
		}
		for (size_t g = 0; g < b->ngroups; g++)
			if (pol_peer_matches_pod(peer, p, b->w, member(b, g, 0)) &&
			    group_push(b, g, r, named))
				return -ENOMEM;
	}
	return 0;
}

static int cmp_by_identity(const void *a, const void *b, void *ids)
{
	const uint32_t *id = ids;
	size_t i = *(const size_t *)a, j = *(const size_t *)b;

	if (id[i] != id[j])
		return id[i] < id[j] ? -1 : 1;
	return i < j ? -1 : 1;
}

static int group_pods(struct build *b)
{
	size_t n = 0;

	b->order = calloc(b->w->npods + 1, sizeof(*b->order));
	b->groups = calloc(b->w->npods + 1, sizeof(*b->groups));
	if (!b->order || !b->groups)
		return -ENOMEM;
	for (size_t i = 0; i < b->w->npods; i++)
		if (b->pod_ids[i] != SLUICE_ID_UNKNOWN)
			b->order[n++] = i;
	qsort_r(b->order, n, sizeof(*b->order), cmp_by_identity, b->pod_ids);
	for (size_t i = 0; i < n; i++) {
		if (!b->ngroups || b->groups[b->ngroups - 1].id != b->pod_ids[b->order[i]])
			b->groups[b->ngroups++] = (struct group){ .id = b->pod_ids[b->order[i]],
								  .first = i };
		b->groups[b->ngroups - 1].n++;
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
		enum compile_map m = rules[r].action == POL_DENY ? CMAP_DENY : CMAP_ALLOW;
		struct entry_set *s = &b->out[m];
		uint32_t ref = (uint32_t)((pol_index + 1) << 12 | (r & 0xfff));
		size_t before = s->n;

		bool named = rule_has_named_port(&rules[r]);

		b->named_egress |= dir == POL_EGRESS && named;
		b->all_groups |= dir == POL_EGRESS && named && rules[r].any_peer;

		if (rule_peers(b, p, dir, r, dir == POL_EGRESS && named))
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
		if (dir == POL_EGRESS && rules[r].any_peer && named) {
			b->nid = 0;
			for (size_t g = 0; g < group_slots(b); g++)
				if (group_id(b, g) && group_push(b, g, &rules[r], true))
					return -ENOMEM;
			for (size_t i = 0; i < b->nid; i++)
				if (emit_ports(s, e->ifindex, b->idbuf[i], dir_tier, &rules[r],
					       b->podbuf[i], ref, true))
					return -ENOMEM;
		}
		b->count[m][pol_index] += s->n - before;
	}
	return 0;
}

static uint32_t pod_identity(const struct build *b, const struct pol_pod *pod)
{
	uint32_t id;

	if (!pod || pod->labels_unknown)
		return SLUICE_ID_UNKNOWN;
	/* Already numbered in this round (or by the index): a lookup, not an
	 * allocation. */
	id = b->ix ? cindex_pod_identity(b->ix, pod->ns, pod->name)
		   : identity_of_pod(b->ids, pod->ns, &pod->labels);
	return id ? id : SLUICE_ID_UNKNOWN;
}

size_t pol_ns_slot(const struct pol_index *x, const char *ns)
{
	uint64_t h = 1469598103934665603ull;

	for (const char *c = ns; *c; c++)
		h = (h ^ (unsigned char)*c) * 1099511628211ull;
	for (h &= x->nslots - 1; x->ns[h] && strcmp(x->ns[h], ns); h = (h + 1) & (x->nslots - 1))
		;
	return (size_t)h;
}

void pol_index_free(struct pol_index *x)
{
	free(x->ns);
	free(x->head);
	free(x->next);
	free(x->cluster);
	memset(x, 0, sizeof(*x));
}

int pol_index_build(struct pol_index *x, const struct pol_world *w)
{
	memset(x, 0, sizeof(*x));
	x->nslots = 16;
	while (x->nslots < 2 * w->npol + 2)
		x->nslots *= 2;
	x->ns = calloc(x->nslots, sizeof(*x->ns));
	x->head = calloc(x->nslots, sizeof(*x->head));
	x->next = calloc(w->npol + 1, sizeof(*x->next));
	x->cluster = calloc(w->npol + 1, sizeof(*x->cluster));
	if (!x->ns || !x->head || !x->next || !x->cluster) {
		pol_index_free(x);
		return -ENOMEM;
	}
	/* Backwards, each pushed in front: chains come out ascending. */
	for (size_t i = w->npol; i-- > 0;) {
		const struct pol_policy *p = w->pol[i];
		size_t h;

		x->next[i] = SIZE_MAX;
		if (p->kind == POL_SLUICE_CLUSTER || !p->ns)
			continue;	/* a namespaced one without a namespace selects nothing */
		h = pol_ns_slot(x, p->ns);
		if (!x->ns[h]) {
			x->ns[h] = p->ns;
			x->head[h] = SIZE_MAX;
		}
		x->next[i] = x->head[h];
		x->head[h] = i;
	}
	for (size_t i = 0; i < w->npol; i++)
		if (w->pol[i]->kind == POL_SLUICE_CLUSTER)
			x->cluster[x->ncluster++] = i;
	return 0;
}

static bool rules_deny(const struct pol_rule *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (r[i].action == POL_DENY)
			return true;
	return false;
}

/* The policies that can select pod, in ascending position (the order
 * rules are numbered and win ties in): into b->cand. */
static size_t candidates(struct build *b, const struct pol_pod *pod)
{
	const struct pol_index *x = b->pidx;
	size_t n = 0, c = 0, i = SIZE_MAX;

	if (!x) {
		for (size_t k = 0; k < b->w->npol; k++)
			b->cand[n++] = k;
		return n;
	}
	if (x->nslots) {
		size_t h = pol_ns_slot(x, pod->ns);

		i = x->ns[h] ? x->head[h] : SIZE_MAX;
	}
	/* Merge the namespace's chain with the cluster-scoped ones. */
	while (i != SIZE_MAX || c < x->ncluster) {
		if (c < x->ncluster && (i == SIZE_MAX || x->cluster[c] < i)) {
			b->cand[n++] = x->cluster[c++];
		} else {
			b->cand[n++] = i;
			i = x->next[i];
		}
	}
	return n;
}

int build_endpoint(struct build *b, const struct compile_ep *e)
{
	/* The pod's bandwidth limits are the endpoint's, not policy's. */
	struct sluice_endpoint v = { .ifindex = (__u32)e->ifindex, .flags = e->bw_flags };
	size_t ncand;
	struct sluice_endpoint_key k = { .ip4 = htonl(e->ip) };

	memcpy(v.pod_mac, e->pod_mac, 6);
	memcpy(v.lxc_mac, e->host_mac, 6);
	v.identity = pod_identity(b, e->pod);
	if (v.identity == SLUICE_ID_UNKNOWN) {
		/* Labels not known yet (or no identity left): no policy can be
		 * judged, so nothing in or out until they are. */
		v.identity = SLUICE_ID_UNKNOWN;
		v.flags |= SLUICE_EP_F_ISO_INGRESS | SLUICE_EP_F_ISO_EGRESS;
		return set_add(&b->out[CMAP_ENDPOINTS], &k, &v);
	}
	ncand = candidates(b, e->pod);
	for (int d = POL_INGRESS; d <= POL_EGRESS; d++) {
		int enforce = 0, audit = 0;
		bool closed = false;

		for (size_t c = 0; c < ncand; c++) {
			size_t i = b->cand[c];
			const struct pol_policy *p = b->w->pol[i];

			if (!(d == POL_INGRESS ? p->ingress : p->egress) ||
			    !pol_selects_pod(p, b->w, e->pod))
				continue;
			if (p->audit)
				audit = 1;
			else
				enforce = 1;
			/* A left-out policy's Deny rules would override other
			 * policies' allows: without them, allow nothing. */
			if (b->excluded[i] && !p->audit &&
			    (rules_deny(p->in, p->nin) || rules_deny(p->eg, p->neg)))
				closed = true;
		}
		if (enforce)
			v.flags |= d == POL_INGRESS ? SLUICE_EP_F_ISO_INGRESS : SLUICE_EP_F_ISO_EGRESS;
		if (audit)
			v.flags |= d == POL_INGRESS ? SLUICE_EP_F_AUDIT_ISO_INGRESS
						    : SLUICE_EP_F_AUDIT_ISO_EGRESS;
		for (size_t c = 0; (enforce || audit) && c < ncand; c++) {
			size_t i = b->cand[c];
			const struct pol_policy *p = b->w->pol[i];

			if (b->excluded[i] || !(d == POL_INGRESS ? p->ingress : p->egress) ||
			    !pol_selects_pod(p, b->w, e->pod))
				continue;
			/* Tier 0: enforcing policies. Tier 1 (only with Audit
			 * policies present): enforcing and Audit together. */
			if (!p->audit && enforce && !closed && emit_policy(b, e, i, (enum pol_dir)d, 0))
				return -ENOMEM;
			if (audit && emit_policy(b, e, i, (enum pol_dir)d, 1))
				return -ENOMEM;
		}
	}
	return set_add(&b->out[CMAP_ENDPOINTS], &k, &v);
}

void build_free(struct build *b)
{
	node_index_free(&b->node_idx);
	free(b->pod_ids);
	free(b->prefixes);
	free(b->idbuf);
	free(b->podbuf);
	free(b->order);
	free(b->groups);
	free(b->cand);
	free(b->refs);
	for (int m = 0; m < CMAP_N; m++) {
		free(b->count[m]);
		set_free(&b->out[m]);
	}
	memset(b, 0, sizeof(*b));
}

/* What every build needs: the outputs, per-policy flags and counters,
 * the nodes by pod CIDR. */
int build_init(struct build *b, const struct pol_world *w, const struct compile_ep *eps,
	       size_t neps, const struct compile_node *nodes, size_t nnodes,
	       struct identities *ids, const bool *excluded)
{
	*b = (struct build){ .w = w, .ids = ids, .nodes = nodes, .nnodes = nnodes,
			     .excluded = excluded, .eps = eps, .neps = neps };
	for (int m = 0; m < CMAP_N; m++)
		set_init(&b->out[m], key_size[m], val_size[m]);
	b->count[CMAP_ALLOW] = calloc(w->npol + 1, sizeof(size_t));
	b->count[CMAP_DENY] = calloc(w->npol + 1, sizeof(size_t));
	b->cand = calloc(w->npol + 1, sizeof(*b->cand));
	if (!b->count[CMAP_ALLOW] || !b->count[CMAP_DENY] || !b->cand ||
	    node_index_build(&b->node_idx, nodes, nnodes))
		return -ENOMEM;
	return 0;
}

/* The desired state of every map, leaving out the policies in excluded. */
int build_state(struct build *b, const struct pol_world *w, const struct compile_ep *eps,
		size_t neps, const struct compile_node *nodes, size_t nnodes,
		struct identities *ids, const bool *excluded)
{
	if (build_init(b, w, eps, neps, nodes, nnodes, ids, excluded))
		return -ENOMEM;
	b->pod_ids = calloc(w->npods + 1, sizeof(*b->pod_ids));
	if (!b->pod_ids)
		return -ENOMEM;
	for (size_t i = 0; i < w->npods; i++) {
		if (w->pods[i]->labels_unknown) {
			b->pod_ids[i] = SLUICE_ID_UNKNOWN;
			continue;
		}
		b->pod_ids[i] = identity_of_pod(ids, w->pods[i]->ns, &w->pods[i]->labels);
		if (!b->pod_ids[i]) {
			/* The label range is exhausted: this pod fails closed. */
			pr_err("no identity left for pod %s/%s: it is isolated and matches no "
			       "policy peer", w->pods[i]->ns, w->pods[i]->name);
			b->pod_ids[i] = SLUICE_ID_UNKNOWN;
		}
	}
	if (group_pods(b) || collect_prefixes(b) || build_ipcache(b))
		return -ENOMEM;
	for (size_t i = 0; i < neps; i++)
		if (build_endpoint(b, &eps[i]))
			return -ENOMEM;
	for (int m = 0; m < CMAP_N; m++)
		set_sort_unique(&b->out[m]);
	return 0;
}
