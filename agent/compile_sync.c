// SPDX-License-Identifier: Apache-2.0
/*
 * The policy syncs. The full one (compiler_sync): everything built, sized
 * (policies left out until it fits), applied. The incremental one
 * (compiler_sync_changes): the index of the world (compile_index.c)
 * brought in line with what changed, only the local endpoints a change
 * can reach built again, only the changed keys of each map diffed and
 * written; the full build stays the reference (compiler_check). And the
 * compiler's opening and closing.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bpf/bpf.h>

#include "compile_int.h"
#include "log.h"

/* ---- the full sync ------------------------------------------------ */

/* The agent setting that sizes each map. */
static const char *const map_setting[CMAP_N] = {
	"the pod CIDR", "--ipcache-map-size", "--policy-map-size", "--policy-map-size",
};

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

static void polrefs_free(struct compile_polref *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].ns);
		free(v[i].name);
	}
	free(v);
}

/* Remember the policies of a sync that was applied, for
 * compiler_policy_ref. Out of memory keeps the previous list (flows then
 * name policies by the older numbering; nothing is enforced from it). */
static bool polrefs_same(const struct compiler *c, const struct pol_world *w)
{
	if (c->npolrefs != w->npol || !c->polrefs)
		return false;
	for (size_t i = 0; i < w->npol; i++) {
		const struct pol_policy *p = w->pol[i];
		const struct compile_polref *r = &c->polrefs[i];

		if (r->kind != p->kind || r->ingress != p->ingress || r->egress != p->egress ||
		    r->audit != p->audit || !p->name || strcmp(r->name, p->name) ||
		    !p->ns != !r->ns || (p->ns && strcmp(r->ns, p->ns)))
			return false;
	}
	return true;
}

static void polrefs_take(struct compiler *c, const struct pol_world *w)
{
	struct compile_polref *v;

	if (polrefs_same(c, w))
		return;	/* most syncs (a pod came or went): no copying */
	v = calloc(w->npol + 1, sizeof(*v));

	for (size_t i = 0; v && i < w->npol; i++) {
		const struct pol_policy *p = w->pol[i];

		v[i] = (struct compile_polref){ .kind = p->kind, .ingress = p->ingress,
						.egress = p->egress, .audit = p->audit };
		v[i].ns = p->ns ? strdup(p->ns) : NULL;
		v[i].name = strdup(p->name ? p->name : "");
		if ((p->ns && !v[i].ns) || !v[i].name) {
			polrefs_free(v, i + 1);
			return;
		}
	}
	if (!v)
		return;
	polrefs_free(c->polrefs, c->npolrefs);
	c->polrefs = v;
	c->npolrefs = w->npol;
}

const struct compile_polref *compiler_policy_ref(const struct compiler *c, uint32_t ref,
						 unsigned *rule)
{
	uint32_t idx = ref >> COMPILE_REF_RULE_BITS;

	if (!c || ref == SLUICE_FLOW_RULE_DEFAULT || !idx || idx > c->npolrefs)
		return NULL;
	if (rule)
		*rule = ref & ((1u << COMPILE_REF_RULE_BITS) - 1);
	return &c->polrefs[idx - 1];
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
	c->pidx_valid = false;	/* its world may have other policies */
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
	polrefs_take(c, w);
	sync_stats(c, st, ops_up, ops_del, &t0);
	err[0] = '\0';
cleanup:
	build_free(&b);
	free(excluded);
	free(excl);
	return ret;
}

/* ---- incremental syncs ---------------------------------------------- */

/* Room for a few keys more than a set holds: the in-place patch of the
 * next sync adds to it (a full array grows by doubling: copying the 2 MB
 * ipcache copy at the first CNI ADD after start-up, 1 ms). */
static size_t set_slack(size_t n)
{
	return n / 16 + 16;
}

static int set_copy(struct entry_set *dst, const struct entry_set *src)
{
	size_t esz = src->ksz + src->vsz, cap = src->n + set_slack(src->n);
	unsigned char *d = malloc(cap * esz);

	if (!d)
		return -ENOMEM;
	if (src->n)
		memcpy(d, src->data, src->n * esz);
	free(dst->data);
	*dst = *src;
	dst->data = d;
	dst->cap = cap;
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
	       x->bw_flags == e->bw_flags &&
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
	x->bw_flags = e->bw_flags;
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
	size_t esz = cur->ksz + cur->vsz, i = 0, j = 0, k = 0, n = 0, cap;
	unsigned char *out;

	/* A few keys (a CNI ADD's address in an ipcache of 100 000): moved
	 * in place, where a merge copied the whole set (0.4 ms each sync). */
	if (del->n + add->n <= 16) {
		for (i = 0; i < del->n; i++)
			set_put(cur, set_at(del, i), NULL);
		for (i = 0; i < add->n; i++)
			if (set_put(cur, set_at(add, i), set_at(add, i) + add->ksz))
				return -ENOMEM;
		return 0;
	}
	cap = cur->n + add->n + set_slack(cur->n + add->n);
	out = malloc(cap * esz);
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
	cur->cap = cap;
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
	const struct prefix *hit;
	struct prefix q;
	uint32_t id;
	int ret;

	for (size_t i = 0; i < b->nnodes; i++)
		if (b->nodes[i].ip == ip || (b->nodes[i].pod_cidr.prefix == 32 &&
					     b->nodes[i].pod_cidr.net == ip))
			return 0;
	/* The prefixes are sorted and unique (collect_prefixes): a binary
	 * search, where a scan cost 20 000 compares per address at 10 000
	 * policies. */
	q = (struct prefix){ .c = { .net = ip, .prefix = 32 } };
	hit = b->nprefixes ? bsearch(&q, b->prefixes, b->nprefixes, sizeof(*b->prefixes),
				     cmp_prefix) : NULL;
	if (hit && hit->id)
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

/* c->pidx for w's policies: kept while valid (no policy changed since it
 * was made: see compiler_sync_changes) and w lists the same ones in the
 * same order, else made again. Returns 0 or -ENOMEM. */
static int pidx_refresh(struct compiler *c, const struct pol_world *w)
{
	const struct pol_policy **v;

	if (c->pidx_valid && c->pidx_npol == w->npol &&
	    !memcmp(c->pidx_pol, w->pol, w->npol * sizeof(*w->pol)))
		return 0;
	c->pidx_valid = false;
	pol_index_free(&c->pidx);
	v = realloc(c->pidx_pol, (w->npol + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	c->pidx_pol = v;
	if (pol_index_build(&c->pidx, w))
		return -ENOMEM;
	memcpy(v, w->pol, w->npol * sizeof(*v));
	c->pidx_npol = w->npol;
	c->pidx_valid = true;
	return 0;
}

int compiler_sync_changes(struct compiler *c, const struct pol_world *w,
			  const struct compile_changes *ch, const struct compile_ep *eps,
			  size_t neps, const struct compile_node *nodes, size_t nnodes,
			  struct identities *ids, unsigned flags, struct compile_stats *st, char *err,
			  size_t errlen)
{
	struct entry_set want[CMAP_N], old[CMAP_N], part_old[CMAP_N] = { 0 }, part_new[CMAP_N] = { 0 };
	struct build b = { 0 };
	struct timespec t0;
	bool all = ch->all || !c->ix || cindex_broken(c->ix), nchanged = false, *none = NULL;
	bool ipc_whole, all_dirty, *taken = NULL;
	struct epc *nepc = NULL;
	size_t ops_up = 0, ops_del = 0, ndirty, total[CMAP_N];
	const uint32_t *dirty;
	int ret;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	snprintf(err, errlen, "cannot build the policy state: out of memory");
	/* A policy freed may leave its address to another: a sync that
	 * changes policies makes the index again, whichever way it goes. */
	if (all || ch->npolicies)
		c->pidx_valid = false;
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
	    pidx_refresh(c, w))
		goto cleanup;
	b.ix = c->ix;
	b.lpm = &c->lpm;
	b.pidx = &c->pidx;
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
	polrefs_take(c, w);
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
	if (ret)
		c->pidx_valid = false;	/* whatever changed may not be seen again */
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
		.selector_tests = c->ix ? cindex_selector_tests(c->ix) : 0,
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

/* ---- opening and closing ------------------------------------------- */

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
	pol_index_free(&c->pidx);
	free(c->pidx_pol);
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
	polrefs_free(c->polrefs, c->npolrefs);
	free(c);
}
