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
#include "compile_index.h"
#include "log.h"

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
};

/* One local endpoint's entries and what they depend on besides it. */
struct epc {
	int ifindex;
	uint32_t ip;
	unsigned char mac[12];
	char *key;			/* its pod's "ns\0name" */
	struct entry_set out[CMAP_N];	/* ENDPOINTS, ALLOW, DENY */
	const void **refs;		/* selector cache entries it read */
	size_t nrefs;
	bool named_egress, all_groups;
};

static const size_t key_size[CMAP_N] = {
	sizeof(struct sluice_endpoint_key), sizeof(struct sluice_ipcache_key),
	sizeof(struct sluice_policy_key), sizeof(struct sluice_policy_key),
};
static const size_t val_size[CMAP_N] = {
	sizeof(struct sluice_endpoint), sizeof(struct sluice_ipcache_value),
	sizeof(struct sluice_policy_value), sizeof(struct sluice_policy_value),
};

const char *compile_map_name(enum compile_map m)
{
	switch (m) {
	case CMAP_ENDPOINTS: return "endpoints (sluice_ep_v2)";
	case CMAP_IPCACHE: return "ipcache (sluice_ipc_v2)";
	case CMAP_ALLOW: return "allow rules (sluice_pol_v1)";
	default: return "deny rules (sluice_deny_v1)";
	}
}

/* The agent setting that sizes each map. */
static const char *const map_setting[CMAP_N] = {
	"the pod CIDR", "--ipcache-map-size", "--policy-map-size", "--policy-map-size",
};

static int map_update(struct compiler *c, enum compile_map m, const void *k, const void *v)
{
	if (c->m.update)
		return c->m.update(c->m.ctx, m, k, v);
	return bpf_map_update_elem(c->m.fd[m], k, v, BPF_ANY) ? -errno : 0;
}

static int map_delete(struct compiler *c, enum compile_map m, const void *k)
{
	if (c->m.del)
		return c->m.del(c->m.ctx, m, k);
	if (bpf_map_delete_elem(c->m.fd[m], k) && errno != ENOENT)
		return -errno;
	return 0;
}

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

/* Sort by key, stable, and keep the first of equal keys: the order entries
 * were added in says which of two for one key wins (an ipBlock /32 over a
 * pod's address, a local pod over a remote one). A merge sort, not qsort:
 * qsort promises no stability. */
static int set_sort_unique(struct entry_set *s)
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
	return set_sort_unique(s);
}

enum phase { PHASE_UPDATE, PHASE_DELETE };

/* Bring map m from old to new: updates (new keys, changed values) in
 * PHASE_UPDATE, deletions in PHASE_DELETE. Both sets are sorted. Correct
 * also when the map holds a mix of old and new (a rollback). */
static int set_apply(struct compiler *cp, enum compile_map m, const struct entry_set *old,
		     const struct entry_set *new, enum phase phase, size_t *ops)
{
	int ret;
	size_t i = 0, j = 0;
	int c;

	while (i < old->n || j < new->n) {
		const unsigned char *o = i < old->n ? set_at(old, i) : NULL;
		const unsigned char *n = j < new->n ? set_at(new, j) : NULL;

		c = !o ? 1 : !n ? -1 : memcmp(o, n, old->ksz);
		if (c < 0) {
			if (phase == PHASE_DELETE) {
				ret = map_delete(cp, m, o);
				if (ret)
					return ret;
				(*ops)++;
			}
			i++;
		} else if (c > 0 || memcmp(o + old->ksz, n + new->ksz, new->vsz)) {
			if (phase == PHASE_UPDATE) {
				ret = map_update(cp, m, n, n + new->ksz);
				if (ret)
					return ret;
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

/* How many distinct keys old and new hold together: what the map holds
 * between the additions and the removals. */
static size_t set_union_count(const struct entry_set *old, const struct entry_set *new)
{
	size_t i = 0, j = 0, n = 0;

	while (i < old->n || j < new->n) {
		int c = i == old->n ? 1 : j == new->n ? -1
			: memcmp(set_at(old, i), set_at(new, j), old->ksz);

		i += c <= 0;
		j += c >= 0;
		n++;
	}
	return n;
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
	bool *has_deny;			/* per w->pol[i]: holds a Deny rule */
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

static void lpm_free(struct lpm4 *l)
{
	for (int i = 0; i <= 32; i++) {
		free(l->net[i]);
		free(l->id[i]);
	}
	memset(l, 0, sizeof(*l));
}

/* p sorted by (net, prefix) and unique: each length's nets come sorted. */
static int lpm_build(struct lpm4 *l, const struct prefix *p, size_t n)
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

static uint32_t cidr_identity(const struct build *b, uint32_t ip)
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

/* One address's holders, to pick the one whose entry it gets. */
struct holder {
	uint32_t ip;
	bool local;
	const struct pol_pod *pod;
	uint32_t id;
};

/* An address held by two pods (a reused one, before the old holder's
 * object is gone) goes to a local pod first, then to the least
 * namespace/name: the same one whatever order the store lists them in
 * (compile_index.c picks alike). */
static int cmp_holder(const void *a, const void *b)
{
	const struct holder *x = a, *y = b;
	int c;

	if (x->ip != y->ip)
		return x->ip < y->ip ? -1 : 1;
	if (x->local != y->local)
		return x->local ? -1 : 1;
	c = strcmp(x->pod->ns, y->pod->ns);
	return c ? c : strcmp(x->pod->name, y->pod->name);
}

static int cmp_ptr(const void *a, const void *b)
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
static int ipc_statics(struct build *b)
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

static size_t pol_ns_slot(const struct pol_index *x, const char *ns)
{
	uint64_t h = 1469598103934665603ull;

	for (const char *c = ns; *c; c++)
		h = (h ^ (unsigned char)*c) * 1099511628211ull;
	for (h &= x->nslots - 1; x->ns[h] && strcmp(x->ns[h], ns); h = (h + 1) & (x->nslots - 1))
		;
	return (size_t)h;
}

static void pol_index_free(struct pol_index *x)
{
	free(x->ns);
	free(x->head);
	free(x->next);
	free(x->cluster);
	memset(x, 0, sizeof(*x));
}

static int pol_index_build(struct pol_index *x, const struct pol_world *w)
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

static int build_endpoint(struct build *b, const struct compile_ep *e)
{
	struct sluice_endpoint v = { .ifindex = (__u32)e->ifindex };
	size_t ncand;
	struct sluice_endpoint_key k = { .ip4 = htonl(e->ip) };

	memcpy(v.pod_mac, e->pod_mac, 6);
	memcpy(v.lxc_mac, e->host_mac, 6);
	v.identity = pod_identity(b, e->pod);
	if (v.identity == SLUICE_ID_UNKNOWN) {
		/* Labels not known yet (or no identity left): no policy can be
		 * judged, so nothing in or out until they are. */
		v.identity = SLUICE_ID_UNKNOWN;
		v.flags = SLUICE_EP_F_ISO_INGRESS | SLUICE_EP_F_ISO_EGRESS;
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
			if (b->excluded[i] && !p->audit && b->has_deny[i])
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

static void build_free(struct build *b)
{
	node_index_free(&b->node_idx);
	free(b->pod_ids);
	free(b->prefixes);
	free(b->idbuf);
	free(b->podbuf);
	free(b->has_deny);
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

static bool rules_deny(const struct pol_rule *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (r[i].action == POL_DENY)
			return true;
	return false;
}

/* What every build needs: the outputs, per-policy flags and counters,
 * the nodes by pod CIDR. */
static int build_init(struct build *b, const struct pol_world *w, const struct compile_ep *eps,
		      size_t neps, const struct compile_node *nodes, size_t nnodes,
		      struct identities *ids, const bool *excluded)
{
	*b = (struct build){ .w = w, .ids = ids, .nodes = nodes, .nnodes = nnodes,
			     .excluded = excluded, .eps = eps, .neps = neps };
	for (int m = 0; m < CMAP_N; m++)
		set_init(&b->out[m], key_size[m], val_size[m]);
	b->has_deny = calloc(w->npol + 1, sizeof(*b->has_deny));
	b->count[CMAP_ALLOW] = calloc(w->npol + 1, sizeof(size_t));
	b->count[CMAP_DENY] = calloc(w->npol + 1, sizeof(size_t));
	b->cand = calloc(w->npol + 1, sizeof(*b->cand));
	if (!b->has_deny || !b->count[CMAP_ALLOW] || !b->count[CMAP_DENY] || !b->cand ||
	    node_index_build(&b->node_idx, nodes, nnodes))
		return -ENOMEM;
	for (size_t i = 0; i < w->npol; i++)
		b->has_deny[i] = rules_deny(w->pol[i]->in, w->pol[i]->nin) ||
				 rules_deny(w->pol[i]->eg, w->pol[i]->neg);
	return 0;
}

/* The desired state of every map, leaving out the policies in excluded. */
static int build_state(struct build *b, const struct pol_world *w, const struct compile_ep *eps,
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

static bool prefix_unnumbered(const struct build *b, const struct cidr4 *c)
{
	for (size_t i = 0; i < b->nprefixes; i++)
		if (!b->prefixes[i].id && b->prefixes[i].c.net == c->net &&
		    b->prefixes[i].c.prefix == c->prefix)
			return true;
	return false;
}

static bool rules_unnumbered(const struct build *b, const struct pol_rule *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < r[i].npeers; j++) {
			const struct pol_peer *p = &r[i].peers[j];

			if (!p->is_ipblock)
				continue;
			if (prefix_unnumbered(b, &p->cidr))
				return true;
			for (size_t k = 0; k < p->nexcept; k++)
				if (prefix_unnumbered(b, &p->except[k]))
					return true;
		}
	return false;
}

/* A policy naming an ipBlock prefix that got no CIDR identity (the range
 * is exhausted): without it an except would not be carved out. */
static int unnumbered_policy(const struct build *b, const bool *excluded)
{
	for (size_t i = 0; i < b->w->npol; i++)
		if (!excluded[i] && (rules_unnumbered(b, b->w->pol[i]->in, b->w->pol[i]->nin) ||
				     rules_unnumbered(b, b->w->pol[i]->eg, b->w->pol[i]->neg)))
			return (int)i;
	return -1;
}

static void policy_object(const struct pol_policy *p, char *buf, size_t len)
{
	snprintf(buf, len, "%s %s%s%s",
		 p->kind == POL_K8S ? "NetworkPolicy"
		 : p->kind == POL_SLUICE ? "SluiceNetworkPolicy" : "SluiceClusterNetworkPolicy",
		 p->ns ? p->ns : "", p->ns ? "/" : "", p->name);
}

/* Which policy to leave out when map m overflows: the one adding the most
 * entries to it; of equals, the last by kind, namespace and name. -1 when
 * no policy adds any. */
static int pick_victim(const struct build *b, enum compile_map m, const bool *excluded)
{
	int best = -1;

	for (size_t i = 0; i < b->w->npol; i++) {
		char x[600], y[600];

		if (excluded[i] || !b->count[m][i])
			continue;
		if (best >= 0 && b->count[m][i] < b->count[m][best])
			continue;
		if (best >= 0 && b->count[m][i] == b->count[m][best]) {
			policy_object(b->w->pol[i], x, sizeof(x));
			policy_object(b->w->pol[best], y, sizeof(y));
			if (strcmp(x, y) < 0)
				continue;
		}
		best = (int)i;
	}
	return best;
}

static bool was_excluded(const struct compiler *c, const char *object)
{
	for (size_t i = 0; i < c->nexcl; i++)
		if (!strcmp(c->excl[i].object, object))
			return true;
	return false;
}

/* The forward order: additions and changes everywhere first, endpoint flags
 * last among them (rules are in place before an endpoint becomes isolated),
 * then removals. */
static const struct step {
	enum compile_map m;
	enum phase phase;
	const char *what;
} steps[] = {
	{ CMAP_IPCACHE, PHASE_UPDATE, "update the ipcache" },
	{ CMAP_ALLOW, PHASE_UPDATE, "update the allow rules" },
	{ CMAP_DENY, PHASE_UPDATE, "update the deny rules" },
	{ CMAP_ENDPOINTS, PHASE_UPDATE, "update the endpoints" },
	{ CMAP_ENDPOINTS, PHASE_DELETE, "remove stale endpoints" },
	{ CMAP_ALLOW, PHASE_DELETE, "remove stale allow rules" },
	{ CMAP_DENY, PHASE_DELETE, "remove stale deny rules" },
	{ CMAP_IPCACHE, PHASE_DELETE, "remove stale ipcache entries" },
};

/* Put every map back to c->cur after a failed apply of want: endpoints
 * first (their flags back before the rules they refer to change), then
 * each map's removals (to make room) before its re-additions. */
static int rollback(struct compiler *c, const struct entry_set *old, const struct entry_set *want,
		    const char **what)
{
	static const enum compile_map order[] = { CMAP_ENDPOINTS, CMAP_ALLOW, CMAP_DENY,
						  CMAP_IPCACHE };
	size_t ops = 0;
	int ret;

	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		enum compile_map m = order[i];

		*what = compile_map_name(m);
		ret = set_apply(c, m, &want[m], &old[m], PHASE_DELETE, &ops);
		if (!ret)
			ret = set_apply(c, m, &want[m], &old[m], PHASE_UPDATE, &ops);
		if (ret)
			return ret;
	}
	return 0;
}

/* old: what the maps hold of the keys concerned, c->cur (everything) or
 * the part a change touches (then want is the same part as it must be). */
static int apply_state(struct compiler *c, const struct entry_set *old,
		       const struct entry_set *want, size_t *ops_up, size_t *ops_del, char *err,
		       size_t errlen)
{
	bool early[CMAP_N] = { false };
	const char *rb_what = "";
	int ret = 0, rb;
	size_t i;

	/* A map too full to hold old and new together between the steps
	 * removes its stale entries first: those are not enforced after the
	 * change anyway. */
	for (int m = 0; m < CMAP_N; m++)
		early[m] = c->cur[m].n + want[m].n > c->m.cap[m] &&
			   (&old[m] != &c->cur[m] ||
			    set_union_count(&c->cur[m], &want[m]) > c->m.cap[m]);
	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		const struct step *s = &steps[i];

		if (s->phase == PHASE_UPDATE && early[s->m])
			ret = set_apply(c, s->m, &old[s->m], &want[s->m], PHASE_DELETE, ops_del);
		if (!ret && !(s->phase == PHASE_DELETE && early[s->m]))
			ret = set_apply(c, s->m, &old[s->m], &want[s->m], s->phase,
					s->phase == PHASE_UPDATE ? ops_up : ops_del);
		if (ret)
			break;
	}
	if (!ret)
		return 0;
	rb = rollback(c, old, want, &rb_what);
	if (!rb) {
		snprintf(err, errlen, "cannot %s: %s; the previous state was restored and stays "
				      "enforced", steps[i].what, strerror(-ret));
		return ret;
	}
	snprintf(err, errlen, "cannot %s: %s; restoring the previous state failed too (%s: %s): "
			      "the maps are partly updated until the next sync rewrites them",
		 steps[i].what, strerror(-ret), rb_what, strerror(-rb));
	/* Start the next sync from what the maps really hold. */
	for (int m = 0; m < CMAP_N && !c->m.update; m++) {
		set_free(&c->cur[m]);
		set_load(&c->cur[m], c->m.fd[m]);
	}
	return ret;
}

/* What a sync that started at t0 left and did, into st (may be NULL). */
static void sync_stats(const struct compiler *c, struct compile_stats *st, size_t ops_up,
		       size_t ops_del, const struct timespec *t0)
{
	struct timespec t1;

	if (!st)
		return;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	*st = (struct compile_stats){
		.endpoints = c->cur[CMAP_ENDPOINTS].n, .ipcache = c->cur[CMAP_IPCACHE].n,
		.allow = c->cur[CMAP_ALLOW].n, .deny = c->cur[CMAP_DENY].n,
		.updated = ops_up, .removed = ops_del,
		.ms = (double)(t1.tv_sec - t0->tv_sec) * 1e3 +
		      (double)(t1.tv_nsec - t0->tv_nsec) / 1e6,
	};
}

int compiler_sync(struct compiler *c, const struct pol_world *w, const struct compile_ep *eps,
		  size_t neps, const struct compile_node *nodes, size_t nnodes,
		  struct identities *ids, unsigned flags, struct compile_stats *st, char *err,
		  size_t errlen)
{
	struct build b = { 0 };
	struct compile_excluded *excl = NULL;
	size_t nexcl = 0, ops_up = 0, ops_del = 0;
	struct timespec t0;
	bool *excluded = NULL;
	int ret = -ENOMEM;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	snprintf(err, errlen, "cannot build the policy state: out of memory");
	identities_begin(ids);
	excluded = calloc(w->npol + 1, sizeof(*excluded));
	excl = calloc(w->npol + 1, sizeof(*excl));
	if (!excluded || !excl)
		goto cleanup;
	/* Size before writing: leave out policies until the rules fit. */
	for (;;) {
		enum compile_map over = CMAP_N;
		int victim;

		ret = build_state(&b, w, eps, neps, nodes, nnodes, ids, excluded);
		if (ret)
			goto cleanup;
		victim = unnumbered_policy(&b, excluded);
		if (victim >= 0) {
			excluded[victim] = true;
			policy_object(w->pol[victim], excl[nexcl].object,
				      sizeof(excl[nexcl].object));
			snprintf(excl[nexcl].why, sizeof(excl[nexcl].why),
				 "names an ipBlock prefix that got no CIDR identity: all %u are in "
				 "use or in their grace period",
				 SLUICE_ID_END_CIDR - SLUICE_ID_FIRST_CIDR);
			nexcl++;
			build_free(&b);
			continue;
		}
		for (int m = 0; m < CMAP_N && over == CMAP_N; m++)
			if (b.out[m].n > c->m.cap[m])
				over = (enum compile_map)m;
		if (over == CMAP_N)
			break;
		victim = over == CMAP_ALLOW || over == CMAP_DENY ? pick_victim(&b, over, excluded)
								 : -1;
		if (victim < 0) {
			snprintf(err, errlen, "the state needs %zu entries in the %s map, which holds "
					      "%zu: raise %s; the previous state stays enforced",
				 b.out[over].n, compile_map_name(over), c->m.cap[over],
				 map_setting[over]);
			ret = -ENOSPC;
			goto cleanup;
		}
		excluded[victim] = true;
		policy_object(w->pol[victim], excl[nexcl].object, sizeof(excl[nexcl].object));
		snprintf(excl[nexcl].why, sizeof(excl[nexcl].why),
			 "needs %zu entries in the %s map, %zu in all with the rest, over its "
			 "capacity %zu: raise %s",
			 b.count[over][victim], compile_map_name(over), b.out[over].n,
			 c->m.cap[over], map_setting[over]);
		nexcl++;
		build_free(&b);
	}
	if (flags & COMPILE_STRICT)
		for (size_t i = 0; i < nexcl; i++)
			if (!was_excluded(c, excl[i].object)) {
				snprintf(err, errlen, "%s does not fit: it %s; nothing was changed "
						      "and the previous state stays enforced",
					 excl[i].object, excl[i].why);
				ret = -ENOSPC;
				goto cleanup;
			}
	ret = apply_state(c, c->cur, b.out, &ops_up, &ops_del, err, errlen);
	if (ret)
		goto cleanup;
	for (int m = 0; m < CMAP_N; m++) {
		set_free(&c->cur[m]);
		c->cur[m] = b.out[m];
		memset(&b.out[m], 0, sizeof(b.out[m]));
	}
	for (size_t i = 0; i < nexcl; i++)
		if (!was_excluded(c, excl[i].object))
			pr_err("%s is not enforced: it %s; the pods it selects are isolated in its "
			       "directions without its allows", excl[i].object, excl[i].why);
	free(c->excl);
	c->excl = excl;
	c->nexcl = nexcl;
	excl = NULL;
	/* Only now no map refers to an identity the new state dropped. */
	ret = identities_end(ids);
	if (ret)
		pr_warn("cannot save identities: %s", strerror(-ret));
	ret = 0;
	sync_stats(c, st, ops_up, ops_del, &t0);
	err[0] = '\0';
cleanup:
	build_free(&b);
	free(excluded);
	free(excl);
	return ret;
}

/* ---- incremental syncs ---------------------------------------------- */

static int set_copy(struct entry_set *dst, const struct entry_set *src)
{
	size_t esz = src->ksz + src->vsz;
	unsigned char *d = malloc(src->n * esz + 1);

	if (!d)
		return -ENOMEM;
	if (src->n)
		memcpy(d, src->data, src->n * esz);
	free(dst->data);
	*dst = *src;
	dst->data = d;
	dst->cap = src->n;
	return 0;
}

/* The first entry whose key is not below key (s sorted), and whether it
 * is key's. */
static size_t set_lower(const struct entry_set *s, const void *key, bool *found)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (memcmp(set_at(s, mid), key, s->ksz) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < s->n && !memcmp(set_at(s, lo), key, s->ksz);
	return lo;
}

/* Put (key, val) in sorted s, or take key out (val NULL). */
static int set_put(struct entry_set *s, const void *key, const void *val)
{
	size_t esz = s->ksz + s->vsz;
	bool found;
	size_t i = set_lower(s, key, &found);

	if (!val) {
		if (found) {
			memmove(set_at(s, i), set_at(s, i + 1), (s->n - i - 1) * esz);
			s->n--;
		}
		return 0;
	}
	if (!found) {
		if (set_add(s, key, val))	/* grows; the entry moves into place */
			return -ENOMEM;
		memmove(set_at(s, i + 1), set_at(s, i), (s->n - 1 - i) * esz);
		memcpy(set_at(s, i), key, s->ksz);
	}
	memcpy(set_at(s, i) + s->ksz, val, s->vsz);
	return 0;
}

/* ---- per-endpoint state, and applying a part of the maps ------------ */

static void epc_free(struct epc *x)
{
	free(x->key);
	free(x->refs);
	for (int m = 0; m < CMAP_N; m++)
		set_free(&x->out[m]);
	memset(x, 0, sizeof(*x));
}

static bool epc_same_ep(const struct epc *x, const struct compile_ep *e)
{
	return x->key && e->pod && x->ifindex == e->ifindex && x->ip == e->ip &&
	       !memcmp(x->mac, e->pod_mac, 6) && !memcmp(x->mac + 6, e->host_mac, 6) &&
	       !strcmp(x->key, e->pod->ns) && !strcmp(x->key + strlen(x->key) + 1, e->pod->name);
}

/* Whether e's entries may differ from x's: e itself changed, or a group
 * or selector its rules read did. */
static bool epc_dirty(const struct compiler *c, const struct epc *x, const struct compile_ep *e)
{
	bool members;

	if (!x || !epc_same_ep(x, e) || cindex_pod_changed(c->ix, e->pod->ns, e->pod->name))
		return true;
	if (x->all_groups && cindex_groups_changed(c->ix))
		return true;
	for (size_t i = 0; i < x->nrefs; i++)
		if (cindex_entry_changed(c->ix, x->refs[i], &members) || (members && x->named_egress))
			return true;
	return false;
}

/* e's entries, from b (built for it alone), into x. */
static int epc_take(struct epc *x, struct build *b, const struct compile_ep *e)
{
	const char *ns = e->pod ? e->pod->ns : "", *name = e->pod ? e->pod->name : "";
	size_t a = strlen(ns), n = strlen(name);

	memset(x, 0, sizeof(*x));
	x->ifindex = e->ifindex;
	x->ip = e->ip;
	memcpy(x->mac, e->pod_mac, 6);
	memcpy(x->mac + 6, e->host_mac, 6);
	x->key = malloc(a + n + 2);
	x->refs = calloc(b->nrefs + 1, sizeof(*x->refs));
	if (!x->key || !x->refs) {
		epc_free(x);
		return -ENOMEM;
	}
	memcpy(x->key, ns, a + 1);
	memcpy(x->key + a + 1, name, n + 1);
	if (b->nrefs)
		memcpy(x->refs, b->refs, b->nrefs * sizeof(*x->refs));
	x->nrefs = b->nrefs;
	x->named_egress = b->named_egress;
	x->all_groups = b->all_groups;
	for (int m = 0; m < CMAP_N; m++) {
		set_init(&x->out[m], key_size[m], val_size[m]);
		if (m == CMAP_IPCACHE)
			continue;
		if (set_sort_unique(&b->out[m]) || set_copy(&x->out[m], &b->out[m])) {
			epc_free(x);
			return -ENOMEM;
		}
		b->out[m].n = 0;
	}
	return 0;
}

/* Append every entry of src to dst. */
static int set_append(struct entry_set *dst, const struct entry_set *src)
{
	for (size_t i = 0; i < src->n; i++)
		if (set_add(dst, set_at(src, i), set_at(src, i) + src->ksz))
			return -ENOMEM;
	return 0;
}

/* cur without the keys of del, with the entries of add (all sorted). */
static int set_patch(struct entry_set *cur, const struct entry_set *del,
		     const struct entry_set *add)
{
	size_t esz = cur->ksz + cur->vsz, i = 0, j = 0, k = 0, n = 0;
	unsigned char *out = malloc((cur->n + add->n + 1) * esz);

	if (!out)
		return -ENOMEM;
	while (i < cur->n || j < add->n) {
		int c = i == cur->n ? 1 : j == add->n ? -1
			: memcmp(set_at(cur, i), set_at(add, j), cur->ksz);

		if (c < 0) {
			while (k < del->n && memcmp(set_at(del, k), set_at(cur, i), cur->ksz) < 0)
				k++;
			if (k == del->n || memcmp(set_at(del, k), set_at(cur, i), cur->ksz))
				memcpy(out + n++ * esz, set_at(cur, i), esz);
			i++;
			continue;
		}
		memcpy(out + n++ * esz, set_at(add, j), esz);
		i += c == 0;
		j++;
	}
	free(cur->data);
	cur->data = out;
	cur->n = n;
	cur->cap = cur->n + add->n + 1;
	return 0;
}

/* The ipcache entries of the addresses that changed, as the maps hold
 * them (old) and as they must be (now). */
static int ipc_part(const struct compiler *c, const uint32_t *ips, size_t n,
		    struct entry_set *old, struct entry_set *now)
{
	struct entry_set keys;
	int ret = 0;

	set_init(&keys, key_size[CMAP_IPCACHE], 0);
	for (size_t i = 0; i < n && !ret; i++) {
		struct sluice_ipcache_key k = { .prefixlen = 32, .ip = htonl(ips[i]) };

		ret = set_add(&keys, &k, &k);	/* no value */
	}
	if (!ret)
		ret = set_sort_unique(&keys);
	for (size_t i = 0; i < keys.n && !ret; i++) {
		bool found;
		size_t at = set_lower(&c->cur[CMAP_IPCACHE], set_at(&keys, i), &found);

		if (found)
			ret = set_add(old, set_at(&c->cur[CMAP_IPCACHE], at),
				      set_at(&c->cur[CMAP_IPCACHE], at) + old->ksz);
		at = set_lower(&c->ipc_want, set_at(&keys, i), &found);
		if (found && !ret)
			ret = set_add(now, set_at(&c->ipc_want, at), set_at(&c->ipc_want, at) + now->ksz);
	}
	set_free(&keys);
	return ret;
}

/* The policy an entry of the selector cache belongs to, through the
 * per-sync index. */
static const struct pol_policy *find_policy(void *ctx, int kind, const char *ns, const char *name)
{
	const struct build *b = ctx;
	const struct pol_index *x = b->pidx;
	size_t h, i;

	if (!ns) {
		for (i = 0; i < x->ncluster; i++)
			if (!strcmp(b->w->pol[x->cluster[i]]->name, name))
				return b->w->pol[x->cluster[i]];
		return NULL;
	}
	h = pol_ns_slot(x, ns);
	for (i = x->ns[h] ? x->head[h] : SIZE_MAX; i != SIZE_MAX; i = x->next[i])
		if ((int)b->w->pol[i]->kind == kind && !strcmp(b->w->pol[i]->name, name))
			return b->w->pol[i];
	return NULL;
}


static int ipc_pod(void *ctx, uint32_t ip, uint32_t id)
{
	struct build *b = ctx;

	return ipcache_add(b, ip, 32, id, cidr_identity(b, ip));
}

/* The whole ipcache from the index, into c->ipc_want. */
static int ipc_rebuild(struct compiler *c, struct build *b)
{
	struct entry_set *s = &b->out[CMAP_IPCACHE];
	int ret;

	s->n = 0;
	ret = ipc_statics(b);
	if (!ret)
		ret = cindex_for_each_ip(c->ix, ipc_pod, b);
	for (size_t i = 0; !ret && i < b->w->nnode_ips; i++)
		ret = ipcache_add(b, b->w->node_ips[i], 32, SLUICE_ID_HOST,
				  cidr_identity(b, b->w->node_ips[i]));
	if (!ret)
		ret = set_sort_unique(s);
	if (ret)
		return ret;
	set_free(&c->ipc_want);
	c->ipc_want = *s;
	set_init(s, key_size[CMAP_IPCACHE], val_size[CMAP_IPCACHE]);
	return 0;
}

/* One address's /32 entry again: a static one stays, else its pod's, else
 * this node's own address, else none. */
static int ipc_update(struct compiler *c, struct build *b, uint32_t ip)
{
	struct sluice_ipcache_key k = { .prefixlen = 32, .ip = htonl(ip) };
	struct entry_set *one = &b->out[CMAP_IPCACHE];
	uint32_t id;
	int ret;

	for (size_t i = 0; i < b->nnodes; i++)
		if (b->nodes[i].ip == ip || (b->nodes[i].pod_cidr.prefix == 32 &&
					     b->nodes[i].pod_cidr.net == ip))
			return 0;
	for (size_t i = 0; i < b->nprefixes; i++)
		if (b->prefixes[i].c.prefix == 32 && b->prefixes[i].c.net == ip && b->prefixes[i].id)
			return 0;
	one->n = 0;
	if (cindex_ip_holder(c->ix, ip, &id)) {
		ret = ipcache_add(b, ip, 32, id, cidr_identity(b, ip));
	} else {
		ret = 0;
		for (size_t i = 0; i < b->w->nnode_ips && !one->n; i++)
			if (b->w->node_ips[i] == ip)
				ret = ipcache_add(b, ip, 32, SLUICE_ID_HOST, cidr_identity(b, ip));
	}
	if (ret)
		return ret;
	return set_put(&c->ipc_want, &k, one->n ? set_at(one, 0) + one->ksz : NULL);
}

static int dead_push(struct compiler *c, uint32_t id)
{
	if (c->ndead == c->capdead) {
		size_t cap = c->capdead ? c->capdead * 2 : 64;
		uint32_t *v = realloc(c->dead, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		c->dead = v;
		c->capdead = cap;
	}
	c->dead[c->ndead++] = id;
	return 0;
}

/* The policies' prefixes again (after a policy change): numbered, by
 * length; the numbers of prefixes gone wait for release. -ERANGE: one got
 * no number (the full sync leaves its policy out). */
static int prefixes_refresh(struct compiler *c, const struct pol_world *w, struct identities *ids)
{
	struct build pb = { .w = w, .ids = ids };
	bool *none = calloc(w->npol + 1, sizeof(*none));
	struct lpm4 lpm;
	int ret = -ENOMEM;

	if (!none)
		return -ENOMEM;
	pb.excluded = none;
	if (collect_prefixes(&pb))
		goto cleanup;
	for (size_t i = 0; i < pb.nprefixes; i++)
		if (!pb.prefixes[i].id) {
			ret = -ERANGE;
			goto cleanup;
		}
	if (c->prefixes_valid && pb.nprefixes == c->nprefixes &&
	    !memcmp(pb.prefixes, c->prefixes, pb.nprefixes * sizeof(*pb.prefixes))) {
		ret = 0;
		goto cleanup;
	}
	if (lpm_build(&lpm, pb.prefixes, pb.nprefixes))
		goto cleanup;
	for (size_t i = 0, j = 0; i < c->nprefixes; i++) {
		while (j < pb.nprefixes && cmp_prefix(&pb.prefixes[j], &c->prefixes[i]) < 0)
			j++;
		if ((j == pb.nprefixes || cmp_prefix(&pb.prefixes[j], &c->prefixes[i])) &&
		    dead_push(c, c->prefixes[i].id)) {
			lpm_free(&lpm);
			goto cleanup;
		}
	}
	free(c->prefixes);
	lpm_free(&c->lpm);
	c->prefixes = pb.prefixes;
	c->nprefixes = pb.nprefixes;
	c->lpm = lpm;
	pb.prefixes = NULL;
	c->prefixes_valid = true;
	c->ipc_valid = false;
	ret = 0;
cleanup:
	free(pb.prefixes);
	free(none);
	return ret;
}

/* Whether the other nodes or this node's addresses differ from the last
 * round's; keeps a copy of the new ones. */
static int nodes_changed(struct compiler *c, const struct pol_world *w,
			 const struct compile_node *nodes, size_t nnodes, bool *changed)
{
	struct compile_node *nc;
	uint32_t *ni;

	*changed = nnodes != c->nnodes || w->nnode_ips != c->nnode_ips ||
		   (nnodes && memcmp(nodes, c->nodes, nnodes * sizeof(*nodes))) ||
		   (w->nnode_ips && memcmp(w->node_ips, c->node_ips, w->nnode_ips * sizeof(uint32_t)));
	if (!*changed)
		return 0;
	nc = calloc(nnodes + 1, sizeof(*nc));
	ni = calloc(w->nnode_ips + 1, sizeof(*ni));
	if (!nc || !ni) {
		free(nc);
		free(ni);
		return -ENOMEM;
	}
	if (nnodes)
		memcpy(nc, nodes, nnodes * sizeof(*nodes));
	if (w->nnode_ips)
		memcpy(ni, w->node_ips, w->nnode_ips * sizeof(*ni));
	free(c->nodes);
	free(c->node_ips);
	c->nodes = nc;
	c->nnodes = nnodes;
	c->node_ips = ni;
	c->nnode_ips = w->nnode_ips;
	return 0;
}

/* Bring the index in line with the world: every pod of w, or the changed
 * ones. */
static int index_round(struct compiler *c, const struct pol_world *w,
		       const struct compile_changes *ch, const struct compile_ep *eps, size_t neps,
		       struct identities *ids, bool all)
{
	const uint32_t *dead;
	size_t ndead;
	int ret = 0;

	if (all || ch->namespaces)
		cindex_forget_all(c->ix);
	for (size_t i = 0; !all && i < ch->npolicies; i++)
		cindex_forget_policy(c->ix, ch->policies[i].ns, ch->policies[i].name);
	cindex_begin(c->ix, all);
	if (all) {
		const struct pol_pod **local = calloc(neps + 1, sizeof(*local));

		if (!local)
			return -ENOMEM;
		for (size_t i = 0; i < neps; i++)
			local[i] = eps[i].pod;
		qsort(local, neps, sizeof(*local), cmp_ptr);
		for (size_t i = 0; !ret && i < w->npods; i++) {
			const struct pol_pod *pod = w->pods[i];
			bool is_local = bsearch(&pod, local, neps, sizeof(*local), cmp_ptr) != NULL;

			ret = cindex_pod_set(c->ix, ids, pod->ns, pod->name, pod, is_local);
		}
		free(local);
	} else {
		for (size_t i = 0; !ret && i < ch->npods; i++)
			ret = cindex_pod_set(c->ix, ids, ch->pods[i].ns, ch->pods[i].name,
					     ch->pods[i].pod, ch->pods[i].local);
	}
	if (!ret)
		ret = cindex_end(c->ix);
	ndead = cindex_dead_ids(c->ix, &dead);
	for (size_t i = 0; !ret && i < ndead; i++)
		ret = dead_push(c, dead[i]);
	return ret;
}

/* After a sync was applied: numbers nothing uses any more start their
 * grace period (unless their label set or prefix came back meanwhile). */
static void release_dead(struct compiler *c, struct identities *ids)
{
	size_t k = 0;
	int ret;

	for (size_t i = 0; i < c->ndead; i++) {
		bool live = cindex_id_live(c->ix, c->dead[i]);

		for (size_t j = 0; !live && j < c->nprefixes; j++)
			live = c->prefixes[j].id == c->dead[i];
		if (!live)
			c->dead[k++] = c->dead[i];
	}
	struct timespec now;

	ret = identities_release(ids, c->dead, k);
	if (!ret)
		c->ndead = 0;
	/* The end of a round passes over every identity (expiring the
	 * released ones, saving): once a second is soon enough. */
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!ret && now.tv_sec == c->ids_end_at)
		return;
	c->ids_end_at = now.tv_sec;
	ret = ret ? ret : identities_end(ids);
	if (ret)
		pr_warn("cannot save identities: %s", strerror(-ret));
}

int compiler_sync_changes(struct compiler *c, const struct pol_world *w,
			  const struct compile_changes *ch, const struct compile_ep *eps,
			  size_t neps, const struct compile_node *nodes, size_t nnodes,
			  struct identities *ids, unsigned flags, struct compile_stats *st, char *err,
			  size_t errlen)
{
	struct entry_set want[CMAP_N], old[CMAP_N], part_old[CMAP_N] = { 0 }, part_new[CMAP_N] = { 0 };
	struct build b = { 0 };
	struct pol_index pidx = { 0 };
	struct timespec t0;
	bool all = ch->all || !c->ix || cindex_broken(c->ix), nchanged = false, *none = NULL;
	bool ipc_whole, all_dirty, *taken = NULL;
	struct epc *nepc = NULL;
	size_t ops_up = 0, ops_del = 0, ndirty, total[CMAP_N];
	const uint32_t *dirty;
	int ret;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	snprintf(err, errlen, "cannot build the policy state: out of memory");
	if (all && ch->lean) {
		snprintf(err, errlen, "a rebuild needs every pod");
		return -EAGAIN;
	}
	if (all) {
		/* A fresh index: nothing of a broken one is trusted. */
		cindex_free(c->ix);
		c->ix = NULL;
		c->ipc_valid = false;
		c->prefixes_valid = false;
		ret = cindex_new(&c->ix);
		if (ret)
			goto cleanup;
	}
	ret = index_round(c, w, ch, eps, neps, ids, all);
	if (ret)
		goto cleanup;
	if (all || ch->npolicies || !c->prefixes_valid) {
		ret = prefixes_refresh(c, w, ids);
		if (ret == -ERANGE)
			goto full;
		if (ret)
			goto cleanup;
	}
	ret = nodes_changed(c, w, nodes, nnodes, &nchanged);
	if (ret)
		goto cleanup;
	if (nchanged)
		c->ipc_valid = false;
	/* Left-out policies are chosen by what all of them add: only the full
	 * build knows. */
	if (c->nexcl)
		goto full;
	none = calloc(w->npol + 1, sizeof(*none));
	ret = -ENOMEM;
	if (!none || build_init(&b, w, eps, neps, nodes, nnodes, ids, none) ||
	    pol_index_build(&pidx, w))
		goto cleanup;
	b.ix = c->ix;
	b.lpm = &c->lpm;
	b.pidx = &pidx;
	b.prefixes = c->prefixes;	/* borrowed: not freed with b */
	b.nprefixes = c->nprefixes;
	ndirty = cindex_dirty_ips(c->ix, &dirty);
	/* Past a few thousand addresses one sort beats as many moves. */
	ipc_whole = !c->ipc_valid || ndirty > 4096 || c->ipc_full_next;
	if (!c->ipc_valid || ndirty > 4096) {
		ret = ipc_rebuild(c, &b);
		c->ipc_valid = !ret;
	} else {
		ret = 0;
		for (size_t i = 0; !ret && i < ndirty; i++)
			ret = ipc_update(c, &b, dirty[i]);
		if (ret)
			c->ipc_valid = false;
	}
	if (ret)
		goto cleanup;
	b.out[CMAP_IPCACHE].n = 0;

	/* The local endpoints: only those whose entries may have changed are
	 * built again; the rest keep theirs (and the selector cache entries
	 * they read). */
	all_dirty = !c->epc_valid || all || ch->npolicies || ch->namespaces ||
		    c->epc_epoch != cindex_epoch(c->ix);
	ret = -ENOMEM;
	nepc = calloc(neps + 1, sizeof(*nepc));
	taken = calloc(c->nepc + 1, sizeof(*taken));
	if (!nepc || !taken)
		goto cleanup;
	if (!all_dirty && cindex_cache_refresh(c->ix, w, find_policy, &b))
		goto cleanup;
	for (int m = 0; m < CMAP_N; m++) {
		set_init(&part_old[m], key_size[m], val_size[m]);
		set_init(&part_new[m], key_size[m], val_size[m]);
	}
	for (size_t i = 0; i < neps; i++) {
		struct epc *x = NULL;

		for (size_t k = 0; k < c->nepc && !x; k++)
			if (!taken[k] && c->epc[k].ifindex == eps[i].ifindex) {
				x = &c->epc[k];
				taken[k] = true;
			}
		if (!all_dirty && x && eps[i].pod && !epc_dirty(c, x, &eps[i])) {
			nepc[i] = *x;
			memset(x, 0, sizeof(*x));
			for (size_t r = 0; r < nepc[i].nrefs; r++)
				cindex_entry_keep(nepc[i].refs[r]);
			c->ep_kept++;
			continue;
		}
		b.nrefs = 0;
		b.named_egress = b.all_groups = false;
		c->ep_built++;
		if (build_endpoint(&b, &eps[i]) || epc_take(&nepc[i], &b, &eps[i]))
			goto cleanup;
		/* Built again: its old entries go, its new ones come. */
		if (x && (set_append(&part_old[CMAP_ALLOW], &x->out[CMAP_ALLOW]) ||
			  set_append(&part_old[CMAP_DENY], &x->out[CMAP_DENY])))
			goto cleanup;
		if (set_append(&part_new[CMAP_ALLOW], &nepc[i].out[CMAP_ALLOW]) ||
		    set_append(&part_new[CMAP_DENY], &nepc[i].out[CMAP_DENY]))
			goto cleanup;
	}
	/* Endpoints gone: their entries go. */
	for (size_t k = 0; k < c->nepc; k++)
		if (!taken[k] && (set_append(&part_old[CMAP_ALLOW], &c->epc[k].out[CMAP_ALLOW]) ||
				  set_append(&part_old[CMAP_DENY], &c->epc[k].out[CMAP_DENY])))
			goto cleanup;
	/* The endpoints map whole (a few entries), in the endpoints' order:
	 * the first of two with one address wins, as in the full build. */
	for (size_t i = 0; i < neps; i++)
		if (set_append(&part_new[CMAP_ENDPOINTS], &nepc[i].out[CMAP_ENDPOINTS]))
			goto cleanup;
	for (int m = 0; m < CMAP_N; m++)
		if (set_sort_unique(&part_old[m]) || set_sort_unique(&part_new[m]))
			goto cleanup;
	if (!ipc_whole && (ipc_part(c, dirty, ndirty, &part_old[CMAP_IPCACHE],
				    &part_new[CMAP_IPCACHE])))
		goto cleanup;
	cindex_cache_sweep(c->ix);

	/* What to apply: the whole of a map against what it holds, or the
	 * part that changed against the same part of it. */
	for (int m = 0; m < CMAP_N; m++) {
		bool whole = m == CMAP_ENDPOINTS || (m == CMAP_IPCACHE ? ipc_whole : all_dirty);

		old[m] = whole ? c->cur[m] : part_old[m];
		want[m] = m == CMAP_IPCACHE && whole ? c->ipc_want : part_new[m];
		total[m] = whole ? want[m].n : c->cur[m].n - part_old[m].n + part_new[m].n;
		if (total[m] > c->m.cap[m])
			goto full_after;	/* the full build leaves policies out */
	}
	ret = apply_state(c, old, want, &ops_up, &ops_del, err, errlen);
	if (ret) {
		/* The maps are back as they were (or re-read): the next sync
		 * compares all of them again. */
		c->epc_valid = false;
		c->ipc_full_next = true;
		goto keep_epc;
	}
	ret = 0;
	for (int m = 0; m < CMAP_N && !ret; m++) {
		bool whole = m == CMAP_ENDPOINTS || (m == CMAP_IPCACHE ? ipc_whole : all_dirty);

		if (!whole)
			ret = set_patch(&c->cur[m], &part_old[m], &part_new[m]);
		else
			ret = set_copy(&c->cur[m], m == CMAP_IPCACHE ? &c->ipc_want : &part_new[m]);
	}
	if (ret) {
		/* Applied, but not remembered: read back what the maps hold. */
		for (int m = 0; m < CMAP_N && !c->m.update; m++) {
			set_free(&c->cur[m]);
			set_load(&c->cur[m], c->m.fd[m]);
		}
		c->epc_valid = false;
		c->ipc_full_next = true;
	} else {
		c->epc_valid = true;
		c->ipc_full_next = false;
	}
	c->epc_epoch = cindex_epoch(c->ix);
keep_epc:
	for (size_t k = 0; k < c->nepc; k++)
		epc_free(&c->epc[k]);
	free(c->epc);
	c->epc = nepc;
	c->nepc = neps;
	nepc = NULL;
	if (ret)
		goto cleanup;
	release_dead(c, ids);
	c->incremental++;
	sync_stats(c, st, ops_up, ops_del, &t0);
	err[0] = '\0';
	ret = 0;
	goto cleanup;
full_after:
	/* Built, but it does not fit: the full build decides what to leave
	 * out. The endpoints' state is not what it writes. */
	c->epc_valid = false;
full:
	if (ch->lean) {
		snprintf(err, errlen, "the full build needs every pod");
		ret = -EAGAIN;
		goto cleanup;
	}
	/* The index stays in line with the world; what the full build wrote
	 * (policies left out) is not what the incremental state says, so the
	 * next incremental round starts its ipcache over. */
	b.prefixes = NULL;
	build_free(&b);
	c->ipc_valid = false;
	c->full++;
	ret = compiler_sync(c, w, eps, neps, nodes, nnodes, ids, flags, st, err, errlen);
	if (!ret)
		c->ndead = 0;	/* the full round released what it did not use */
cleanup:
	if (ret == -ENOMEM && c->ix && !cindex_broken(c->ix) && !all) {
		c->ipc_valid = false;
		c->epc_valid = false;
	}
	for (size_t i = 0; nepc && i < neps; i++)
		epc_free(&nepc[i]);
	free(nepc);
	free(taken);
	for (int m = 0; m < CMAP_N; m++) {
		set_free(&part_old[m]);
		set_free(&part_new[m]);
	}
	b.prefixes = NULL;
	build_free(&b);
	pol_index_free(&pidx);
	free(none);
	return ret;
}

/* Every identity number the maps hold, as read at open. */
int compiler_reserve_identities(const struct compiler *c, struct identities *ids)
{
	size_t n = 0, cap = c->cur[CMAP_ENDPOINTS].n + 2 * c->cur[CMAP_IPCACHE].n +
			     c->cur[CMAP_ALLOW].n + c->cur[CMAP_DENY].n + 1;
	uint32_t *v = malloc(cap * sizeof(*v));
	int ret;

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < c->cur[CMAP_ENDPOINTS].n; i++) {
		const struct entry_set *s = &c->cur[CMAP_ENDPOINTS];
		const struct sluice_endpoint *e = (const void *)(set_at(s, i) + s->ksz);

		v[n++] = e->identity;
	}
	for (size_t i = 0; i < c->cur[CMAP_IPCACHE].n; i++) {
		const struct entry_set *s = &c->cur[CMAP_IPCACHE];
		const struct sluice_ipcache_value *e = (const void *)(set_at(s, i) + s->ksz);

		v[n++] = e->identity;
		v[n++] = e->cidr_identity;
	}
	for (int m = CMAP_ALLOW; m <= CMAP_DENY; m++)
		for (size_t i = 0; i < c->cur[m].n; i++)
			v[n++] = ((const struct sluice_policy_key *)set_at(&c->cur[m], i))->identity;
	ret = identities_reserve(ids, v, n);
	free(v);
	return ret;
}

size_t compiler_identity_pods(const struct compiler *c, uint32_t id)
{
	size_t g;

	if (!c->ix || (g = cindex_id_group(c->ix, id)) == SIZE_MAX)
		return 0;
	return cindex_group_size(c->ix, g);
}

const struct pol_pod *compiler_identity_pod(const struct compiler *c, uint32_t id, size_t k)
{
	return cindex_group_member(c->ix, cindex_id_group(c->ix, id), k);
}

bool compiler_wants_world(const struct compiler *c)
{
	return !c->ix || cindex_broken(c->ix) || c->nexcl;
}

size_t compiler_gone_ips(const struct compiler *c, const uint32_t **ips)
{
	if (!c->ix) {
		*ips = NULL;
		return 0;
	}
	return cindex_gone_ips(c->ix, ips);
}

void compiler_counts(const struct compiler *c, struct compile_counts *out)
{
	*out = (struct compile_counts){
		.incremental = c->incremental, .full = c->full,
		.pods = c->ix ? cindex_pods(c->ix) : 0,
		.groups = c->ix ? cindex_groups_live(c->ix) : 0,
		.selector_cache = c->ix ? cindex_cache_entries(c->ix) : 0,
		.prefixes = c->nprefixes,
		.endpoints_built = c->ep_built, .endpoints_kept = c->ep_kept,
	};
}

int compiler_check(struct compiler *c, const struct pol_world *w, const struct compile_ep *eps,
		   size_t neps, const struct compile_node *nodes, size_t nnodes,
		   struct identities *ids, char *err, size_t errlen)
{
	struct build b = { 0 };
	bool *none = calloc(w->npol + 1, sizeof(*none));
	int ret = -ENOMEM;

	snprintf(err, errlen, "out of memory");
	if (!none)
		goto cleanup;
	/* The policies the last sync left out stay out: that is no
	 * difference of the incremental state. */
	for (size_t i = 0; i < w->npol && c->nexcl; i++) {
		char object[600];

		policy_object(w->pol[i], object, sizeof(object));
		none[i] = was_excluded(c, object);
	}
	if (build_state(&b, w, eps, neps, nodes, nnodes, ids, none))
		goto cleanup;
	ret = 0;
	err[0] = '\0';
	for (int m = 0; m < CMAP_N && !ret; m++) {
		const struct entry_set *x = &b.out[m], *y = &c->cur[m];
		size_t esz = x->ksz + x->vsz, i = 0;

		while (i < x->n && i < y->n && !memcmp(set_at(x, i), set_at(y, i), esz))
			i++;
		if (i == x->n && i == y->n)
			continue;
		ret = 1;
		snprintf(err, errlen, "%s: the full build has %zu entries, the maps %zu; they "
				      "differ from entry %zu on (%s)", compile_map_name(m), x->n, y->n, i,
			 i < x->n && i < y->n ? "both" : i < x->n ? "missing in the maps"
							     : "only in the maps");
	}
cleanup:
	build_free(&b);
	free(none);
	return ret;
}

size_t compiler_excluded(const struct compiler *c, const struct compile_excluded **out)
{
	*out = c->excl;
	return c->nexcl;
}

int compiler_open_maps(struct compiler **out, const struct compile_maps *m, char *err,
		       size_t errlen)
{
	struct compiler *c = calloc(1, sizeof(*c));
	int ret = 0;

	if (!c)
		return -ENOMEM;
	c->m = *m;
	set_init(&c->ipc_want, key_size[CMAP_IPCACHE], val_size[CMAP_IPCACHE]);
	for (int i = 0; i < CMAP_N; i++) {
		set_init(&c->cur[i], key_size[i], val_size[i]);
		if (!ret && !m->update)
			ret = set_load(&c->cur[i], m->fd[i]);
	}
	if (ret) {
		snprintf(err, errlen, "cannot read the pinned maps: %s", strerror(-ret));
		compiler_close(c);
		return ret;
	}
	*out = c;
	return 0;
}

static size_t map_capacity(int fd)
{
	struct bpf_map_info info = { 0 };
	__u32 len = sizeof(info);

	return bpf_obj_get_info_by_fd(fd, &info, &len) ? 0 : info.max_entries;
}

int compiler_open(struct compiler **out, struct datapath *dp, char *err, size_t errlen)
{
	struct compile_maps m = {
		.fd = {
			[CMAP_ENDPOINTS] = datapath_endpoint_map_fd(dp),
			[CMAP_IPCACHE] = datapath_ipcache_map_fd(dp),
			[CMAP_ALLOW] = datapath_policy_map_fd(dp),
			[CMAP_DENY] = datapath_deny_map_fd(dp),
		},
	};

	/* The size of the map as it is, pinned by an earlier agent or not:
	 * that is what an update can fill. */
	for (int i = 0; i < CMAP_N; i++) {
		m.cap[i] = map_capacity(m.fd[i]);
		if (!m.cap[i]) {
			/* Unknown: let the kernel say when it is full (a failed
			 * write is still rolled back). */
			pr_warn("cannot read the size of the %s map", compile_map_name(i));
			m.cap[i] = SIZE_MAX;
		}
	}
	return compiler_open_maps(out, &m, err, errlen);
}

void compiler_close(struct compiler *c)
{
	if (!c)
		return;
	cindex_free(c->ix);
	free(c->prefixes);
	lpm_free(&c->lpm);
	free(c->nodes);
	free(c->node_ips);
	set_free(&c->ipc_want);
	free(c->dead);
	for (size_t i = 0; i < c->nepc; i++)
		epc_free(&c->epc[i]);
	free(c->epc);
	for (int i = 0; i < CMAP_N; i++)
		set_free(&c->cur[i]);
	free(c->excl);
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
		if (!bpf_map_lookup_elem(c->m.fd[CMAP_DENY], &k, &v))
			return DP_DENY_RULE;
	}
	for (int i = 0; i < 3; i++) {
		k.identity = ids[i];
		if (!bpf_map_lookup_elem(c->m.fd[CMAP_ALLOW], &k, &v))
			return DP_ALLOW;
	}
	return DP_NO_RULE;
}

static struct sluice_ipcache_value dp_ipcache(struct compiler *c, uint32_t ip)
{
	struct sluice_ipcache_key k = { .prefixlen = 32, .ip = htonl(ip) };
	struct sluice_ipcache_value v = { .identity = SLUICE_ID_WORLD, .cidr_identity = SLUICE_ID_WORLD };

	bpf_map_lookup_elem(c->m.fd[CMAP_IPCACHE], &k, &v);
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
	if (!bpf_map_lookup_elem(c->m.fd[CMAP_ENDPOINTS], &(struct sluice_endpoint_key){ .ip4 = htonl(saddr) }, &src)) {
		peer = dp_ipcache(c, daddr);
		dp_decide(c, &src, SLUICE_DIR_EGRESS, &peer, proto, port, egress);
	}
	if (!bpf_map_lookup_elem(c->m.fd[CMAP_ENDPOINTS], &(struct sluice_endpoint_key){ .ip4 = htonl(daddr) }, &dst)) {
		peer = dp_ipcache(c, saddr);
		if (peer.identity != SLUICE_ID_HOST && saddr != daddr)
			dp_decide(c, &dst, SLUICE_DIR_INGRESS, &peer, proto, port, ingress);
	}
	return 0;
}
