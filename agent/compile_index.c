// SPDX-License-Identifier: Apache-2.0
/*
 * The compiler's index of the world between syncs: see compile_index.h.
 * Hash tables are chained (removal is common: pods come and go), sized to
 * their element count, so a lookup costs O(1) at any cluster size.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/datapath.h>

#include "compile_index.h"

#define NONE SIZE_MAX

struct ipod {
	struct pol_pod pod;	/* ns/name into key, labels the group's, own ports */
	uint32_t id;		/* SLUICE_ID_UNKNOWN: in no group */
	uint32_t nslen;
	bool local;
	bool seen;		/* named in this round (rounds with all) */
	uint64_t changed;	/* the last round that changed it */
	size_t group, gpos;	/* slot and place in its members, or NONE */
	uint64_t hash;
	struct ipod *next;	/* same bucket by name */
	struct ipod *ipnext;	/* same bucket by address */
	char key[];		/* "ns\0name", in the same allocation */
};

struct group {
	uint32_t id;		/* 0: a free slot */
	uint64_t born;		/* when this slot got this group */
	uint64_t mchanged;	/* the last round a member came, went or changed ports */
	struct pol_pod rep;	/* ns (own) and labels (own): what selectors look at */
	struct ipod **m;
	size_t n, cap;
	struct nsgroups *nsg;	/* its namespace's groups */
	size_t nspos;		/* its place there */
};

/* The groups of one namespace, and the selector cache entries whose peer
 * can only match pods there (a podSelector alone, in a namespaced policy). */
struct nsgroups {
	char *ns;
	uint64_t hash;
	size_t idx;		/* its place in ix->nslist */
	size_t *slot;
	size_t n, cap;
	struct centry **own;
	size_t nown, capown;
	struct nsgroups *next;
};

/* A group born: checked against cache entries older than it. */
struct birth {
	size_t slot;
	uint64_t born;
};

/*
 * Which groups an entry's peer can match, so that a group born, gone or
 * changed is tested against those entries only: SCOPE_OWN, the groups of
 * the policy's namespace (a podSelector alone); SCOPE_CLASS, the groups of
 * the namespaces its namespaceSelector matches (entries with equal
 * namespaceSelectors share one class, which remembers those namespaces);
 * SCOPE_ALL, every group (a cluster policy's podSelector alone).
 */
enum scope { SCOPE_OWN, SCOPE_CLASS, SCOPE_ALL };

struct ptrv {
	struct centry **v;
	size_t n, cap;
};

/* The entries of one namespaceSelector (by content), and the namespaces it
 * matches of ix->nslist[0..upto), ascending. Made again after any
 * Namespace change (cindex_forget_all). */
struct nsclass {
	char *key;
	uint64_t hash;
	struct ptrv e;
	size_t *match;
	size_t nmatch, capmatch, upto;
	struct nsclass *next;
};

struct centry {
	int kind;
	char *ns, *name;
	uint8_t dir;
	size_t ri, pi;
	uint64_t hash;
	size_t seen;		/* births[] checked so far (see ix->refreshed) */
	enum scope scope;
	struct nsgroups *own;	/* SCOPE_OWN */
	struct nsclass *cls;	/* SCOPE_CLASS */
	size_t spos;		/* its place in its scope's list */
	struct birth *v;	/* matching groups (some may have died since) */
	size_t n, cap;
	bool used;
	uint64_t changed;	/* the last round its groups changed */
	uint64_t mchanged;	/* ... or one of them changed members */
	struct centry *next;
};

struct u32v {
	uint32_t *v;
	size_t n, cap;
};

/* A group that died this round: what selectors look at, kept until the
 * next round for the cache entries that held it. */
struct grave {
	char *ns;
	struct pol_labels labels;
};

struct cindex {
	struct ipod **byname, **byip;
	size_t nbuckets, npods;
	struct group *g;
	size_t ng, capg, nlive;
	size_t *freeg;
	size_t nfree, capfree;
	size_t *idslot;		/* open addressing id -> slot + 1 */
	size_t nidslot;
	struct nsgroups **nsb;
	size_t nnsb, nns;
	struct nsgroups **nslist;	/* every namespace's, in the order made */
	size_t capnslist;
	uint64_t seq;
	struct birth *births;
	size_t nbirths, capbirths;
	struct centry **cache;
	size_t ncache_b, ncache;
	/* The cache by what its entries can match (enum scope). */
	struct nsclass **cls;
	size_t ncls_b, ncls;
	struct ptrv all_scope;
	/* This round's groups that died and whose members changed (slot and
	 * birth stamp): with the births since ix->refreshed, what
	 * cindex_cache_refresh tests the entries that may hold them against.
	 * events_lost: one was not recorded (out of memory), or a round went
	 * by without a refresh (fresh_round): check every entry instead. */
	struct grave *graves;
	size_t ngraves, capgraves;
	struct birth *mch;
	size_t nmch, capmch;
	size_t refreshed;
	uint64_t fresh_round;
	bool events_lost;
	size_t tests;		/* peers tested against a group in refreshes */
	uint64_t round_seq;	/* seq at this round's start: later births are its */
	size_t *outbuf;
	size_t capout;
	struct u32v dirty, gone, dead;
	bool all, broken;
	/* Rounds (cindex_begin), for what changed in this one: pods, groups'
	 * members, cache entries. epoch counts forgets: a cache entry handle
	 * from an earlier epoch may be freed. */
	uint64_t round, epoch;
	bool groups_changed;	/* a group was born, died or changed members */
};

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ s[i]) * 1099511628211ull;
	return h;
}

static uint64_t name_hash(const char *ns, const char *name)
{
	return fnv(fnv(1469598103934665603ull, ns, strlen(ns) + 1), name, strlen(name));
}

static size_t ip_bucket(const struct cindex *ix, uint32_t ip)
{
	return (size_t)((ip * 2654435761u) ^ (ip >> 16)) & (ix->nbuckets - 1);
}

static int u32_push(struct u32v *v, uint32_t x)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 64;
		uint32_t *p = realloc(v->v, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		v->v = p;
		v->cap = cap;
	}
	v->v[v->n++] = x;
	return 0;
}

static int grow(void **p, size_t *cap, size_t need, size_t esz)
{
	size_t c = *cap ? *cap : 16;
	void *q;

	if (need <= *cap)
		return 0;
	while (c < need)
		c *= 2;
	q = realloc(*p, c * esz);
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = c;
	return 0;
}

int cindex_new(struct cindex **out)
{
	struct cindex *ix = calloc(1, sizeof(*ix));

	if (!ix)
		return -ENOMEM;
	ix->nbuckets = 1024;
	ix->byname = calloc(ix->nbuckets, sizeof(*ix->byname));
	ix->byip = calloc(ix->nbuckets, sizeof(*ix->byip));
	ix->nidslot = 1024;
	ix->idslot = calloc(ix->nidslot, sizeof(*ix->idslot));
	ix->nnsb = 64;
	ix->nsb = calloc(ix->nnsb, sizeof(*ix->nsb));
	ix->ncache_b = 256;
	ix->cache = calloc(ix->ncache_b, sizeof(*ix->cache));
	ix->ncls_b = 64;
	ix->cls = calloc(ix->ncls_b, sizeof(*ix->cls));
	if (!ix->byname || !ix->byip || !ix->idslot || !ix->nsb || !ix->cache || !ix->cls) {
		cindex_free(ix);
		return -ENOMEM;
	}
	*out = ix;
	return 0;
}

/* Label sets and port lists are copied packed: the array and its strings
 * in one allocation (a group's label set of three labels was seven
 * allocations, some 350 bytes with their headers). */
static void labels_free(struct pol_labels *l)
{
	free(l->v);
	*l = (struct pol_labels){ 0 };
}

static int labels_copy(struct pol_labels *dst, const struct pol_labels *src)
{
	size_t len = src->n * sizeof(*dst->v);
	char *p;

	*dst = (struct pol_labels){ 0 };
	if (!src->n)
		return 0;
	for (size_t i = 0; i < src->n; i++)
		len += strlen(src->v[i].key) + strlen(src->v[i].value) + 2;
	dst->v = malloc(len);
	if (!dst->v)
		return -ENOMEM;
	p = (char *)(dst->v + src->n);
	for (size_t i = 0; i < src->n; i++) {
		dst->v[i].key = p;
		p = stpcpy(p, src->v[i].key) + 1;
		dst->v[i].value = p;
		p = stpcpy(p, src->v[i].value) + 1;
	}
	dst->n = src->n;
	return 0;
}

static void ports_free(struct pol_pod *p)
{
	free(p->ports);
	p->ports = NULL;
	p->nports = 0;
}

static int ports_copy(struct pol_pod *dst, const struct pol_pod *src)
{
	size_t len = src->nports * sizeof(*dst->ports);
	char *s;

	dst->ports = NULL;
	dst->nports = 0;
	if (!src->nports)
		return 0;
	for (size_t i = 0; i < src->nports; i++)
		len += src->ports[i].name ? strlen(src->ports[i].name) + 1 : 0;
	dst->ports = malloc(len);
	if (!dst->ports)
		return -ENOMEM;
	s = (char *)(dst->ports + src->nports);
	for (size_t i = 0; i < src->nports; i++) {
		dst->ports[i] = src->ports[i];
		if (src->ports[i].name) {
			dst->ports[i].name = s;
			s = stpcpy(s, src->ports[i].name) + 1;
		}
	}
	dst->nports = src->nports;
	return 0;
}

/* ---- namespaces' groups -------------------------------------------- */

static struct nsgroups *ns_find(struct cindex *ix, const char *ns, bool add)
{
	uint64_t h = fnv(1469598103934665603ull, ns, strlen(ns));
	size_t b = h & (ix->nnsb - 1);
	struct nsgroups *e;

	for (e = ix->nsb[b]; e; e = e->next)
		if (e->hash == h && !strcmp(e->ns, ns))
			return e;
	if (!add)
		return NULL;
	e = calloc(1, sizeof(*e));
	if (!e || !(e->ns = strdup(ns))) {
		free(e);
		return NULL;
	}
	if (grow((void **)&ix->nslist, &ix->capnslist, ix->nns + 1, sizeof(*ix->nslist))) {
		free(e->ns);
		free(e);
		return NULL;
	}
	e->hash = h;
	e->idx = ix->nns;
	ix->nslist[ix->nns] = e;
	e->next = ix->nsb[b];
	ix->nsb[b] = e;
	ix->nns++;
	/* A namespace bucket stays once made (namespaces are few); grow the
	 * table so chains stay short. */
	if (ix->nns > ix->nnsb * 2) {
		size_t nb = ix->nnsb * 4;
		struct nsgroups **t = calloc(nb, sizeof(*t));

		if (t) {
			for (size_t i = 0; i < ix->nnsb; i++)
				while (ix->nsb[i]) {
					struct nsgroups *x = ix->nsb[i];

					ix->nsb[i] = x->next;
					x->next = t[x->hash & (nb - 1)];
					t[x->hash & (nb - 1)] = x;
				}
			free(ix->nsb);
			ix->nsb = t;
			ix->nnsb = nb;
		}
	}
	return e;
}

/* ---- identities to group slots -------------------------------------- */

static size_t id_probe(const struct cindex *ix, uint32_t id)
{
	return (size_t)(id * 2654435761u) & (ix->nidslot - 1);
}

static size_t group_of_id(const struct cindex *ix, uint32_t id)
{
	for (size_t i = id_probe(ix, id);; i = (i + 1) & (ix->nidslot - 1)) {
		size_t s = ix->idslot[i];

		if (!s)
			return NONE;
		if (ix->g[s - 1].id == id)
			return s - 1;
	}
}

static int idslot_rehash(struct cindex *ix, size_t n)
{
	size_t *t = calloc(n, sizeof(*t));

	if (!t)
		return -ENOMEM;
	free(ix->idslot);
	ix->idslot = t;
	ix->nidslot = n;
	for (size_t g = 0; g < ix->ng; g++) {
		size_t i;

		if (!ix->g[g].id)
			continue;
		for (i = id_probe(ix, ix->g[g].id); t[i]; i = (i + 1) & (n - 1))
			;
		t[i] = g + 1;
	}
	return 0;
}

static void idslot_remove(struct cindex *ix, uint32_t id)
{
	size_t i = id_probe(ix, id), j;

	while (ix->idslot[i] && ix->g[ix->idslot[i] - 1].id != id)
		i = (i + 1) & (ix->nidslot - 1);
	if (!ix->idslot[i])
		return;
	/* Backward-shift deletion: later entries of the run move up so no
	 * probe stops early at the hole. */
	ix->idslot[i] = 0;
	for (j = (i + 1) & (ix->nidslot - 1); ix->idslot[j]; j = (j + 1) & (ix->nidslot - 1)) {
		size_t s = ix->idslot[j], home = id_probe(ix, ix->g[s - 1].id);

		if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
			ix->idslot[i] = s;
			ix->idslot[j] = 0;
			i = j;
		}
	}
}

/* ---- groups ---------------------------------------------------------- */

/* A group's members came, went or changed ports this round: noted once a
 * round, for the cache entries that hold it. */
static void group_touch(struct cindex *ix, size_t slot)
{
	struct group *g = &ix->g[slot];

	if (g->mchanged == ix->round)
		return;
	g->mchanged = ix->round;
	if (grow((void **)&ix->mch, &ix->capmch, ix->nmch + 1, sizeof(*ix->mch)))
		ix->events_lost = true;
	else
		ix->mch[ix->nmch++] = (struct birth){ .slot = slot, .born = g->born };
}

static size_t group_new(struct cindex *ix, uint32_t id, const struct pol_pod *pod)
{
	struct nsgroups *nsg = ns_find(ix, pod->ns, true);
	struct group *g;
	size_t slot, i;

	if (!nsg)
		return NONE;
	if ((ix->nlive + 1) * 2 > ix->nidslot && idslot_rehash(ix, ix->nidslot * 2))
		return NONE;
	if (grow((void **)&nsg->slot, &nsg->cap, nsg->n + 1, sizeof(*nsg->slot)) ||
	    grow((void **)&ix->births, &ix->capbirths, ix->nbirths + 1, sizeof(*ix->births)))
		return NONE;
	if (ix->nfree) {
		slot = ix->freeg[--ix->nfree];
	} else {
		if (grow((void **)&ix->g, &ix->capg, ix->ng + 1, sizeof(*ix->g)))
			return NONE;
		slot = ix->ng++;
		ix->g[slot] = (struct group){ 0 };
	}
	g = &ix->g[slot];
	*g = (struct group){ .id = id, .born = ++ix->seq };
	g->rep.ns = strdup(pod->ns);
	g->rep.name = g->rep.ns;
	if (!g->rep.ns || labels_copy(&g->rep.labels, &pod->labels)) {
		free(g->rep.ns);
		*g = (struct group){ 0 };
		if (grow((void **)&ix->freeg, &ix->capfree, ix->nfree + 1, sizeof(*ix->freeg)) == 0)
			ix->freeg[ix->nfree++] = slot;
		return NONE;
	}
	g->nsg = nsg;
	g->nspos = nsg->n;
	nsg->slot[nsg->n++] = slot;
	for (i = id_probe(ix, id); ix->idslot[i]; i = (i + 1) & (ix->nidslot - 1))
		;
	ix->idslot[i] = slot + 1;
	ix->births[ix->nbirths++] = (struct birth){ .slot = slot, .born = g->born };
	ix->nlive++;
	ix->groups_changed = true;
	return slot;
}

static void group_kill(struct cindex *ix, size_t slot)
{
	struct group *g = &ix->g[slot];
	struct nsgroups *nsg = g->nsg;
	size_t last = nsg->slot[--nsg->n];

	if (last != slot) {
		nsg->slot[g->nspos] = last;
		ix->g[last].nspos = g->nspos;
	}
	idslot_remove(ix, g->id);
	u32_push(&ix->dead, g->id);	/* lost when out of memory: the number then
					 * stays taken until a full sync's round */
	/* What it looked like stays for this round's cache refresh. */
	if (ix->ncache && !grow((void **)&ix->graves, &ix->capgraves, ix->ngraves + 1,
				 sizeof(*ix->graves))) {
		ix->graves[ix->ngraves++] = (struct grave){ .ns = g->rep.ns,
							    .labels = g->rep.labels };
	} else {
		if (ix->ncache)
			ix->events_lost = true;
		free(g->rep.ns);
		labels_free(&g->rep.labels);
	}
	free(g->m);
	*g = (struct group){ 0 };
	ix->nlive--;
	ix->groups_changed = true;
	if (grow((void **)&ix->freeg, &ix->capfree, ix->nfree + 1, sizeof(*ix->freeg)) == 0)
		ix->freeg[ix->nfree++] = slot;
}

static int group_join(struct cindex *ix, struct ipod *p, struct identities *ids)
{
	uint32_t id;
	size_t slot;
	struct group *g;

	p->group = NONE;
	p->id = SLUICE_ID_UNKNOWN;
	if (p->pod.labels_unknown)
		return 0;
	id = identity_of_pod(ids, p->pod.ns, &p->pod.labels);
	if (!id)
		return 0;	/* no number left: fails closed, as the full build */
	slot = group_of_id(ix, id);
	if (slot == NONE && (slot = group_new(ix, id, &p->pod)) == NONE)
		return -ENOMEM;
	g = &ix->g[slot];
	if (grow((void **)&g->m, &g->cap, g->n + 1, sizeof(*g->m)))
		return -ENOMEM;
	p->id = id;
	p->group = slot;
	p->gpos = g->n;
	g->m[g->n++] = p;
	group_touch(ix, slot);
	ix->groups_changed = true;
	return 0;
}

static void group_leave(struct cindex *ix, struct ipod *p)
{
	struct group *g;

	if (p->group == NONE)
		return;
	g = &ix->g[p->group];
	g->m[p->gpos] = g->m[--g->n];
	g->m[p->gpos]->gpos = p->gpos;
	group_touch(ix, p->group);
	ix->groups_changed = true;
	if (!g->n)
		group_kill(ix, p->group);
	p->group = NONE;
	p->id = SLUICE_ID_UNKNOWN;
}

/* ---- pods ------------------------------------------------------------ */

static struct ipod *pod_find(const struct cindex *ix, const char *ns, const char *name,
			     uint64_t h)
{
	for (struct ipod *p = ix->byname[h & (ix->nbuckets - 1)]; p; p = p->next)
		if (p->hash == h && !strcmp(p->key, ns) && !strcmp(p->key + p->nslen + 1, name))
			return p;
	return NULL;
}

static void ip_unlink(struct cindex *ix, struct ipod *p)
{
	struct ipod **pp = &ix->byip[ip_bucket(ix, p->pod.ip)];

	while (*pp && *pp != p)
		pp = &(*pp)->ipnext;
	if (*pp)
		*pp = p->ipnext;
	p->ipnext = NULL;
}

static void ip_link(struct cindex *ix, struct ipod *p)
{
	size_t b = ip_bucket(ix, p->pod.ip);

	p->ipnext = ix->byip[b];
	ix->byip[b] = p;
}

static int rehash_pods(struct cindex *ix)
{
	size_t nb = ix->nbuckets * 2;
	struct ipod **byname = calloc(nb, sizeof(*byname)), **byip = calloc(nb, sizeof(*byip));

	if (!byname || !byip) {
		free(byname);
		free(byip);
		return -ENOMEM;
	}
	for (size_t i = 0; i < ix->nbuckets; i++)
		while (ix->byname[i]) {
			struct ipod *p = ix->byname[i];

			ix->byname[i] = p->next;
			p->next = byname[p->hash & (nb - 1)];
			byname[p->hash & (nb - 1)] = p;
		}
	free(ix->byname);
	free(ix->byip);
	ix->byname = byname;
	ix->byip = byip;
	ix->nbuckets = nb;
	for (size_t i = 0; i < nb; i++)
		for (struct ipod *p = byname[i]; p; p = p->next)
			if (p->pod.ip)
				ip_link(ix, p);
	return 0;
}

/* An address changed hands or lost a holder: its entry is recomputed; an
 * other node's pod giving it up also purges its flows. */
static int note_ip(struct cindex *ix, uint32_t ip, bool gone)
{
	if (!ip)
		return 0;
	if (u32_push(&ix->dirty, ip) || (gone && u32_push(&ix->gone, ip)))
		return -ENOMEM;
	return 0;
}

static void pod_destroy(struct cindex *ix, struct ipod *p)
{
	struct ipod **pp = &ix->byname[p->hash & (ix->nbuckets - 1)];

	while (*pp != p)
		pp = &(*pp)->next;
	*pp = p->next;
	if (p->pod.ip)
		ip_unlink(ix, p);
	group_leave(ix, p);
	ports_free(&p->pod);
	free(p);
	ix->npods--;
}

static int pod_remove(struct cindex *ix, struct ipod *p)
{
	int ret = note_ip(ix, p->pod.ip, !p->local);

	pod_destroy(ix, p);
	return ret;
}

int cindex_pod_set(struct cindex *ix, struct identities *ids, const char *ns, const char *name,
		   const struct pol_pod *pod, bool local)
{
	uint64_t h = name_hash(ns, name);
	struct ipod *p = pod_find(ix, ns, name, h);
	size_t nslen = strlen(ns), nlen = strlen(name);
	bool same_labels, was_local;
	uint32_t old_ip;
	int ret;

	if (ix->broken)
		return -ENOMEM;
	if (!pod) {
		ret = p ? pod_remove(ix, p) : 0;
		goto out;
	}
	if (!p) {
		if (ix->npods + 1 > ix->nbuckets && rehash_pods(ix)) {
			ret = -ENOMEM;
			goto out;
		}
		p = calloc(1, sizeof(*p) + nslen + nlen + 2);
		if (!p) {
			ret = -ENOMEM;
			goto out;
		}
		memcpy(p->key, ns, nslen + 1);
		memcpy(p->key + nslen + 1, name, nlen + 1);
		p->nslen = (uint32_t)nslen;
		p->hash = h;
		p->group = NONE;
		p->id = SLUICE_ID_UNKNOWN;
		p->pod.ns = p->key;
		p->pod.name = p->key + nslen + 1;
		p->local = local;
		p->next = ix->byname[h & (ix->nbuckets - 1)];
		ix->byname[h & (ix->nbuckets - 1)] = p;
		ix->npods++;
		p->seen = true;
		p->changed = ix->round;
		p->pod.ip = pod->ip;
		p->pod.labels_unknown = pod->labels_unknown;
		if (pod->ip)
			ip_link(ix, p);
		p->pod.labels = pod->labels;	/* until group_join points at the group's */
		ret = ports_copy(&p->pod, pod);
		if (!ret)
			ret = group_join(ix, p, ids);
		if (!ret)
			ret = note_ip(ix, pod->ip, false);
		if (p->group != NONE)
			p->pod.labels = ix->g[p->group].rep.labels;
		else
			p->pod.labels = (struct pol_labels){ 0 };
		goto out;
	}
	p->seen = true;
	old_ip = p->pod.ip;
	was_local = p->local;
	if (p->pod.labels_unknown || pod->labels_unknown)
		same_labels = p->pod.labels_unknown == pod->labels_unknown;
	else	/* no group: it got no number last time, try again */
		same_labels = p->group != NONE &&
			      pol_labels_equal(&ix->g[p->group].rep.labels, &pod->labels);
	ret = 0;
	if (!same_labels) {
		/* Leave first: a group whose last member goes dies, and a pod
		 * relabelled back to an identity gets that identity's group. */
		group_leave(ix, p);
		p->pod.labels_unknown = pod->labels_unknown;
		p->pod.labels = pod->labels;
		ret = group_join(ix, p, ids);
		p->pod.labels = p->group != NONE ? ix->g[p->group].rep.labels
						 : (struct pol_labels){ 0 };
		if (!ret)
			ret = note_ip(ix, old_ip, false);
	}
	if (!same_labels)
		p->changed = ix->round;
	if (!ret && !pol_ports_equal(&p->pod, pod)) {
		ports_free(&p->pod);
		ret = ports_copy(&p->pod, pod);
		p->changed = ix->round;
		if (p->group != NONE) {
			group_touch(ix, p->group);
			ix->groups_changed = true;
		}
	}
	if (!ret && (old_ip != pod->ip || was_local != local)) {
		/* The old address lost this holder: an other node's pod gave it
		 * up (also when it became local: its flows were the remote
		 * pod's). */
		ret = note_ip(ix, old_ip, !was_local);
		p->changed = ix->round;
		if (old_ip)
			ip_unlink(ix, p);
		p->pod.ip = pod->ip;
		p->local = local;
		if (pod->ip)
			ip_link(ix, p);
		if (!ret)
			ret = note_ip(ix, pod->ip, false);
	}
out:
	if (ret)
		ix->broken = true;
	return ret;
}

static void graves_clear(struct cindex *ix)
{
	for (size_t i = 0; i < ix->ngraves; i++) {
		free(ix->graves[i].ns);
		labels_free(&ix->graves[i].labels);
	}
	ix->ngraves = 0;
}

void cindex_begin(struct cindex *ix, bool all)
{
	ix->round++;
	ix->groups_changed = false;
	ix->dirty.n = ix->gone.n = ix->dead.n = 0;
	graves_clear(ix);
	ix->nmch = 0;
	ix->round_seq = ix->seq;
	ix->all = all;
	if (all) {
		for (size_t i = 0; i < ix->nbuckets; i++)
			for (struct ipod *p = ix->byname[i]; p; p = p->next)
				p->seen = false;
	}
}

int cindex_end(struct cindex *ix)
{
	int ret = 0;

	if (ix->all) {
		for (size_t i = 0; i < ix->nbuckets; i++) {
			struct ipod *p = ix->byname[i];

			while (p) {
				struct ipod *next = p->next;

				if (!p->seen && pod_remove(ix, p))
					ret = -ENOMEM;
				p = next;
			}
		}
		ix->all = false;
	}
	if (ret)
		ix->broken = true;
	return ix->broken ? -ENOMEM : 0;
}

bool cindex_broken(const struct cindex *ix)
{
	return ix->broken;
}

size_t cindex_dirty_ips(const struct cindex *ix, const uint32_t **ips)
{
	*ips = ix->dirty.v;
	return ix->dirty.n;
}

size_t cindex_gone_ips(const struct cindex *ix, const uint32_t **ips)
{
	*ips = ix->gone.v;
	return ix->gone.n;
}

size_t cindex_dead_ids(const struct cindex *ix, const uint32_t **ids)
{
	*ids = ix->dead.v;
	return ix->dead.n;
}

bool cindex_id_live(const struct cindex *ix, uint32_t id)
{
	return group_of_id(ix, id) != NONE;
}

size_t cindex_pods(const struct cindex *ix)
{
	return ix->npods;
}

size_t cindex_groups_live(const struct cindex *ix)
{
	return ix->nlive;
}

uint32_t cindex_pod_identity(const struct cindex *ix, const char *ns, const char *name)
{
	const struct ipod *p = pod_find(ix, ns, name, name_hash(ns, name));

	return p ? p->id : 0;
}

int cindex_holder_cmp(bool a_local, const struct pol_pod *a, bool b_local,
		      const struct pol_pod *b)
{
	int c;

	if (a_local != b_local)
		return a_local ? -1 : 1;
	c = strcmp(a->ns, b->ns);
	return c ? c : strcmp(a->name, b->name);
}

bool cindex_ip_holder(const struct cindex *ix, uint32_t ip, uint32_t *identity)
{
	const struct ipod *best = NULL;

	if (!ip)
		return false;
	for (const struct ipod *p = ix->byip[ip_bucket(ix, ip)]; p; p = p->ipnext)
		if (p->pod.ip == ip &&
		    (!best || cindex_holder_cmp(p->local, &p->pod, best->local, &best->pod) < 0))
			best = p;
	if (best)
		*identity = best->id;
	return best != NULL;
}

int cindex_for_each_ip(const struct cindex *ix, cindex_ip_fn fn, void *ctx)
{
	for (size_t b = 0; b < ix->nbuckets; b++)
		for (const struct ipod *p = ix->byip[b]; p; p = p->ipnext) {
			uint32_t id;
			bool first = true;
			int ret;

			/* Once per address: at its first holder in the chain. */
			for (const struct ipod *q = ix->byip[b]; q != p && first; q = q->ipnext)
				first = q->pod.ip != p->pod.ip;
			if (!first || !cindex_ip_holder(ix, p->pod.ip, &id))
				continue;
			ret = fn(ctx, p->pod.ip, id);
			if (ret)
				return ret;
		}
	return 0;
}

size_t cindex_id_group(const struct cindex *ix, uint32_t id)
{
	return group_of_id(ix, id);
}

size_t cindex_group_slots(const struct cindex *ix)
{
	return ix->ng;
}

uint32_t cindex_group_id(const struct cindex *ix, size_t g)
{
	return ix->g[g].id;
}

size_t cindex_group_size(const struct cindex *ix, size_t g)
{
	return ix->g[g].n;
}

const struct pol_pod *cindex_group_member(const struct cindex *ix, size_t g, size_t k)
{
	return &ix->g[g].m[k]->pod;
}

/* ---- the selector cache ------------------------------------------- */

static uint64_t centry_hash(int kind, const char *ns, const char *name, uint8_t dir, size_t ri,
			    size_t pi)
{
	uint64_t h = fnv(1469598103934665603ull, &kind, sizeof(kind));

	h = fnv(h, ns, strlen(ns) + 1);
	h = fnv(h, name, strlen(name) + 1);
	h = fnv(h, &dir, 1);
	h = fnv(h, &ri, sizeof(ri));
	return fnv(h, &pi, sizeof(pi));
}

static int ptrv_push(struct ptrv *v, struct centry *e, size_t *pos)
{
	if (grow((void **)&v->v, &v->cap, v->n + 1, sizeof(*v->v)))
		return -ENOMEM;
	*pos = v->n;
	v->v[v->n++] = e;
	return 0;
}

static void ptrv_remove(struct ptrv *v, size_t pos)
{
	v->v[pos] = v->v[--v->n];
	v->v[pos]->spos = pos;
}

static void nsclass_free(struct nsclass *c)
{
	free(c->key);
	free(c->e.v);
	free(c->match);
	free(c);
}

static void class_drop(struct cindex *ix, struct nsclass *c)
{
	struct nsclass **pp = &ix->cls[c->hash & (ix->ncls_b - 1)];

	while (*pp != c)
		pp = &(*pp)->next;
	*pp = c->next;
	nsclass_free(c);
	ix->ncls--;
}

/* Take e out of its scope's list; a class left without entries goes. */
static void scope_unlink(struct cindex *ix, struct centry *e)
{
	if (e->scope == SCOPE_OWN && e->own) {
		struct nsgroups *nsg = e->own;

		nsg->own[e->spos] = nsg->own[--nsg->nown];
		nsg->own[e->spos]->spos = e->spos;
	} else if (e->scope == SCOPE_CLASS && e->cls) {
		struct nsclass *c = e->cls;

		ptrv_remove(&c->e, e->spos);
		if (!c->e.n)
			class_drop(ix, c);
	} else if (e->scope == SCOPE_ALL) {
		ptrv_remove(&ix->all_scope, e->spos);
	}
}

static void centry_free(struct centry *e)
{
	free(e->ns);
	free(e->name);
	free(e->v);
	free(e);
}

static void cache_drop_if(struct cindex *ix, const char *ns, const char *name, bool unused)
{
	if (!unused)
		ix->epoch++;
	for (size_t b = 0; b < ix->ncache_b; b++) {
		struct centry **pp = &ix->cache[b];

		while (*pp) {
			struct centry *e = *pp;
			bool drop = unused ? !e->used
				    : !ns || (!strcmp(e->ns, ns) && !strcmp(e->name, name));

			if (drop) {
				*pp = e->next;
				scope_unlink(ix, e);
				centry_free(e);
				ix->ncache--;
			} else {
				if (unused)
					e->used = false;
				pp = &e->next;
			}
		}
	}
	if (!ix->ncache) {
		ix->nbirths = 0;
		ix->refreshed = 0;
	}
}

void cindex_forget_policy(struct cindex *ix, const char *ns, const char *name)
{
	cache_drop_if(ix, ns ? ns : "", name, false);
}

void cindex_forget_all(struct cindex *ix)
{
	/* The classes go with their last entries: a Namespace change makes
	 * what they remember of namespaces wrong. */
	cache_drop_if(ix, NULL, NULL, false);
}

void cindex_cache_sweep(struct cindex *ix)
{
	cache_drop_if(ix, NULL, NULL, true);
	/* The births log only has to reach back to the oldest entry's check:
	 * when it grows past the groups it would tell about, start it over
	 * (every entry is then filled again on its next use). */
	if (ix->nbirths > 4 * ix->nlive + 4096)
		cindex_forget_all(ix);
	/* Every entry left was refreshed this round or used (and so brought
	 * up to date): the next round's refresh needs only its own events. */
	ix->fresh_round = ix->round;
}

size_t cindex_cache_entries(const struct cindex *ix)
{
	return ix->ncache;
}

size_t cindex_selector_tests(const struct cindex *ix)
{
	return ix->tests;
}

static bool alive(const struct cindex *ix, const struct birth *b)
{
	return ix->g[b->slot].id && ix->g[b->slot].born == b->born;
}

static int centry_push(struct centry *e, size_t slot, uint64_t born)
{
	if (grow((void **)&e->v, &e->cap, e->n + 1, sizeof(*e->v)))
		return -ENOMEM;
	e->v[e->n++] = (struct birth){ .slot = slot, .born = born };
	return 0;
}

/* A namespaceSelector as text: selectors with the same text match the
 * same namespaces (label keys and values hold no control characters). */
static char *sel_key(const struct pol_selector *s)
{
	size_t len = 1;
	char *k, *p;

	for (size_t i = 0; i < s->match.n; i++)
		len += strlen(s->match.v[i].key) + strlen(s->match.v[i].value) + 3;
	for (size_t i = 0; i < s->nexpr; i++) {
		len += strlen(s->expr[i].key) + 4;
		for (size_t j = 0; j < s->expr[i].nval; j++)
			len += strlen(s->expr[i].val[j]) + 1;
	}
	k = malloc(len);
	if (!k)
		return NULL;
	p = k;
	for (size_t i = 0; i < s->match.n; i++)
		p += sprintf(p, "=%s\1%s\1", s->match.v[i].key, s->match.v[i].value);
	for (size_t i = 0; i < s->nexpr; i++) {
		p += sprintf(p, "%c%s\1", '0' + (int)s->expr[i].op, s->expr[i].key);
		for (size_t j = 0; j < s->expr[i].nval; j++)
			p += sprintf(p, "%s\2", s->expr[i].val[j]);
		*p++ = '\3';
	}
	*p = '\0';
	return k;
}

static struct nsclass *class_get(struct cindex *ix, const struct pol_selector *sel)
{
	char *key = sel_key(sel);
	uint64_t h;
	struct nsclass *c;

	if (!key)
		return NULL;
	h = fnv(1469598103934665603ull, key, strlen(key));
	for (c = ix->cls[h & (ix->ncls_b - 1)]; c; c = c->next)
		if (c->hash == h && !strcmp(c->key, key)) {
			free(key);
			return c;
		}
	c = calloc(1, sizeof(*c));
	if (!c) {
		free(key);
		return NULL;
	}
	c->key = key;
	c->hash = h;
	c->next = ix->cls[h & (ix->ncls_b - 1)];
	ix->cls[h & (ix->ncls_b - 1)] = c;
	ix->ncls++;
	return c;
}

/* Whether the namespace of nsg matches a peer's namespaceSelector. */
static bool peer_ns_matches(const struct pol_peer *peer, const struct pol_policy *p,
			    const struct pol_world *w, const struct nsgroups *nsg)
{
	struct pol_peer ns_only = *peer;
	struct pol_pod any = { .ns = nsg->ns, .name = nsg->ns };

	ns_only.has_pod_sel = false;
	return pol_peer_matches_pod(&ns_only, p, w, &any);
}

/* The class's namespaces, brought up to every namespace the index knows
 * (peer: one of its entries'). */
static int class_extend(struct cindex *ix, struct nsclass *c, const struct pol_peer *peer,
			const struct pol_policy *p, const struct pol_world *w)
{
	for (; c->upto < ix->nns; c->upto++) {
		if (!peer_ns_matches(peer, p, w, ix->nslist[c->upto]))
			continue;
		if (grow((void **)&c->match, &c->capmatch, c->nmatch + 1, sizeof(*c->match)))
			return -ENOMEM;
		c->match[c->nmatch++] = c->upto;
	}
	return 0;
}

static bool class_has(const struct nsclass *c, size_t idx)
{
	size_t lo = 0, hi = c->nmatch;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->match[mid] < idx)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < c->nmatch && c->match[lo] == idx;
}

/* The pod part of a peer whose namespace part holds. */
static bool pod_part(const struct pol_peer *peer, const struct group *g)
{
	return !peer->has_pod_sel || pol_selector_matches(&peer->pod_sel, &g->rep.labels);
}

static int push_matching(struct cindex *ix, struct centry *e, const struct nsgroups *nsg,
			 const struct pol_peer *peer)
{
	for (size_t k = 0; k < nsg->n; k++) {
		const struct group *g = &ix->g[nsg->slot[k]];

		if (pod_part(peer, g) && centry_push(e, nsg->slot[k], g->born))
			return -ENOMEM;
	}
	return 0;
}

/* A fresh entry: its scope (and its place there), and the groups it starts
 * with, from the namespaces it can match only. */
static int centry_fill(struct cindex *ix, struct centry *e, const struct pol_world *w,
		       const struct pol_policy *p, const struct pol_peer *peer)
{
	int ret = 0;

	e->seen = ix->nbirths;
	if (peer->has_ns_sel) {
		struct nsclass *c = class_get(ix, &peer->ns_sel);

		if (!c)
			return -ENOMEM;
		if (class_extend(ix, c, peer, p, w) || ptrv_push(&c->e, e, &e->spos)) {
			if (!c->e.n)	/* made for e: it goes */
				class_drop(ix, c);
			return -ENOMEM;
		}
		e->scope = SCOPE_CLASS;
		e->cls = c;
		for (size_t i = 0; !ret && i < c->nmatch; i++)
			ret = push_matching(ix, e, ix->nslist[c->match[i]], peer);
		return ret;
	}
	if (p->kind != POL_SLUICE_CLUSTER) {
		struct nsgroups *nsg = ns_find(ix, p->ns ? p->ns : "", true);

		if (!nsg || grow((void **)&nsg->own, &nsg->capown, nsg->nown + 1,
				 sizeof(*nsg->own)))
			return -ENOMEM;
		e->scope = SCOPE_OWN;
		e->own = nsg;
		e->spos = nsg->nown;
		nsg->own[nsg->nown++] = e;
		for (size_t k = 0; k < nsg->n; k++) {
			const struct group *g = &ix->g[nsg->slot[k]];

			if (pol_peer_matches_pod(peer, p, w, &g->rep) &&
			    centry_push(e, nsg->slot[k], g->born))
				return -ENOMEM;
		}
		return 0;
	}
	if (ptrv_push(&ix->all_scope, e, &e->spos))
		return -ENOMEM;
	e->scope = SCOPE_ALL;
	for (size_t i = 0; !ret && i < ix->nns; i++)
		ret = push_matching(ix, e, ix->nslist[i], peer);
	return ret;
}

/* Bring e up to date: the groups born since its last look that match,
 * the dead ones out; stamps what changed. */
static int centry_refresh(struct cindex *ix, struct centry *e, const struct pol_world *w,
			  const struct pol_policy *p, const struct pol_peer *peer)
{
	size_t k = 0;

	/* Births before ix->refreshed were tested by cindex_cache_refresh
	 * against every entry that could match them. */
	if (e->seen < ix->refreshed)
		e->seen = ix->refreshed;
	for (; e->seen < ix->nbirths; e->seen++) {
		const struct birth *bi = &ix->births[e->seen];

		if (!alive(ix, bi))
			continue;
		ix->tests++;
		if (!pol_peer_matches_pod(peer, p, w, &ix->g[bi->slot].rep))
			continue;
		if (centry_push(e, bi->slot, bi->born))
			return -ENOMEM;
		e->changed = ix->round;
	}
	for (size_t i = 0; i < e->n; i++) {
		if (!alive(ix, &e->v[i])) {
			e->changed = ix->round;
			continue;
		}
		if (ix->g[e->v[i].slot].mchanged == ix->round)
			e->mchanged = ix->round;
		e->v[k++] = e->v[i];
	}
	e->n = k;
	return 0;
}

/* The cache's table grows with its entries: chains stay short. */
static void cache_grow(struct cindex *ix)
{
	size_t nb = ix->ncache_b * 4;
	struct centry **t;

	if (ix->ncache <= ix->ncache_b * 2 || !(t = calloc(nb, sizeof(*t))))
		return;
	for (size_t i = 0; i < ix->ncache_b; i++)
		while (ix->cache[i]) {
			struct centry *x = ix->cache[i];

			ix->cache[i] = x->next;
			x->next = t[x->hash & (nb - 1)];
			t[x->hash & (nb - 1)] = x;
		}
	free(ix->cache);
	ix->cache = t;
	ix->ncache_b = nb;
}

int cindex_peer_groups(struct cindex *ix, const struct pol_world *w, const struct pol_policy *p,
		       enum pol_dir dir, size_t ri, size_t pi, const size_t **out, size_t *n,
		       const void **handle)
{
	const struct pol_rule *r = dir == POL_INGRESS ? &p->in[ri] : &p->eg[ri];
	const struct pol_peer *peer = &r->peers[pi];
	const char *ns = p->ns ? p->ns : "";
	uint64_t h = centry_hash((int)p->kind, ns, p->name, (uint8_t)dir, ri, pi);
	struct centry *e;
	size_t k = 0;

	for (e = ix->cache[h & (ix->ncache_b - 1)]; e; e = e->next)
		if (e->hash == h && e->kind == (int)p->kind && e->dir == (uint8_t)dir && e->ri == ri &&
		    e->pi == pi && !strcmp(e->ns, ns) && !strcmp(e->name, p->name))
			break;
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (!e || !(e->ns = strdup(ns)) || !(e->name = strdup(p->name))) {
			if (e)
				centry_free(e);
			return -ENOMEM;
		}
		*e = (struct centry){ .kind = (int)p->kind, .ns = e->ns, .name = e->name,
				      .dir = (uint8_t)dir, .ri = ri, .pi = pi, .hash = h,
				      .spos = SIZE_MAX };
		if (centry_fill(ix, e, w, p, peer)) {
			if (e->spos != SIZE_MAX)
				scope_unlink(ix, e);
			centry_free(e);
			return -ENOMEM;
		}
		e->next = ix->cache[h & (ix->ncache_b - 1)];
		ix->cache[h & (ix->ncache_b - 1)] = e;
		ix->ncache++;
		e->changed = ix->round;
		cache_grow(ix);
	}
	/* Groups born since the last look in; the dead out (a slot reused by
	 * a later group is not this one). */
	if (centry_refresh(ix, e, w, p, peer) ||
	    grow((void **)&ix->outbuf, &ix->capout, e->n + 1, sizeof(*ix->outbuf)))
		return -ENOMEM;
	e->used = true;
	for (size_t i = 0; i < e->n; i++)
		ix->outbuf[k++] = e->v[i].slot;
	*out = ix->outbuf;
	*n = k;
	*handle = e;
	return 0;
}

/* The peer of entry e (NULL: its policy or rule is gone). */
static const struct pol_peer *entry_peer(const struct centry *e, cindex_policy_fn find, void *ctx,
					 const struct pol_policy **pp)
{
	const struct pol_policy *p = find(ctx, e->kind, *e->ns ? e->ns : NULL, e->name);
	const struct pol_rule *r;

	if (!p)
		return NULL;	/* gone: its forget comes with the change */
	if (e->dir == POL_INGRESS ? e->ri >= p->nin : e->ri >= p->neg)
		return NULL;
	r = e->dir == POL_INGRESS ? &p->in[e->ri] : &p->eg[e->ri];
	if (e->pi >= r->npeers)
		return NULL;
	*pp = p;
	return &r->peers[e->pi];
}

/* Every entry, each checked against every birth since its last look and
 * each of its groups (the way of a round whose events are not all known). */
static int refresh_every_entry(struct cindex *ix, const struct pol_world *w,
			       cindex_policy_fn find, void *ctx)
{
	for (size_t b = 0; b < ix->ncache_b; b++)
		for (struct centry *e = ix->cache[b]; e; e = e->next) {
			const struct pol_policy *p;
			const struct pol_peer *peer = entry_peer(e, find, ctx, &p);

			if (peer && centry_refresh(ix, e, w, p, peer))
				return -ENOMEM;
		}
	return 0;
}

enum event { EV_BIRTH, EV_DEATH, EV_MEMBERS };

/* One event of a group (ns and labels: rep) against one entry that may
 * hold it. bi: the birth's place in the log (EV_BIRTH). */
static int entry_event(struct cindex *ix, struct centry *e, const struct pol_world *w,
		       cindex_policy_fn find, void *ctx, enum event ev, const struct pol_pod *rep,
		       size_t bi)
{
	const struct pol_policy *p;
	const struct pol_peer *peer;

	if (ev == EV_BIRTH && e->seen > bi)
		return 0;	/* it looked at this birth itself */
	peer = entry_peer(e, find, ctx, &p);
	if (!peer)
		return 0;
	ix->tests++;
	if (!pol_peer_matches_pod(peer, p, w, rep))
		return 0;
	switch (ev) {
	case EV_BIRTH:
		if (centry_push(e, ix->births[bi].slot, ix->births[bi].born))
			return -ENOMEM;
		/* A group born this round got its members this round too. */
		e->changed = ix->round;
		if (ix->g[ix->births[bi].slot].mchanged == ix->round)
			e->mchanged = ix->round;
		break;
	case EV_DEATH:
		/* Its birth stays in e->v until e is next read (alive() says
		 * it is gone); the endpoints that read e are built again. */
		e->changed = ix->round;
		break;
	case EV_MEMBERS:
		e->mchanged = ix->round;
		break;
	}
	return 0;
}

/* An event of a group in namespace ns against the entries whose peer can
 * match a group there: the namespace's own entries, the classes whose
 * namespaceSelector matches it, the entries that match everywhere. */
static int group_event(struct cindex *ix, const struct pol_world *w, cindex_policy_fn find,
		       void *ctx, enum event ev, const struct pol_pod *rep, size_t bi)
{
	struct nsgroups *nsg = ns_find(ix, rep->ns, false);
	int ret = 0;

	for (size_t i = 0; !ret && nsg && i < nsg->nown; i++)
		ret = entry_event(ix, nsg->own[i], w, find, ctx, ev, rep, bi);
	for (size_t i = 0; !ret && i < ix->all_scope.n; i++)
		ret = entry_event(ix, ix->all_scope.v[i], w, find, ctx, ev, rep, bi);
	for (size_t b = 0; !ret && nsg && b < ix->ncls_b; b++)
		for (struct nsclass *c = ix->cls[b]; !ret && c; c = c->next) {
			const struct pol_policy *p = NULL;
			const struct pol_peer *peer = NULL;

			/* The class's namespaces up to this one, judged with
			 * the peer of any of its entries (all equal there). */
			for (size_t i = 0; !peer && c->upto <= nsg->idx && i < c->e.n; i++)
				peer = entry_peer(c->e.v[i], find, ctx, &p);
			if (peer && class_extend(ix, c, peer, p, w))
				return -ENOMEM;
			if (c->upto <= nsg->idx || !class_has(c, nsg->idx))
				continue;
			for (size_t i = 0; !ret && i < c->e.n; i++)
				ret = entry_event(ix, c->e.v[i], w, find, ctx, ev, rep, bi);
		}
	return ret;
}

int cindex_cache_refresh(struct cindex *ix, const struct pol_world *w, cindex_policy_fn find,
			 void *ctx)
{
	int ret = 0;

	/* A round went by without a refresh (its deaths and member changes
	 * are not known any more), or an event was not recorded. */
	if (ix->events_lost || ix->fresh_round + 1 != ix->round) {
		ret = refresh_every_entry(ix, w, find, ctx);
		if (!ret) {
			ix->refreshed = ix->nbirths;
			ix->events_lost = false;
		}
		return ret;
	}
	for (size_t i = ix->refreshed; !ret && i < ix->nbirths; i++)
		if (alive(ix, &ix->births[i]))
			ret = group_event(ix, w, find, ctx, EV_BIRTH, &ix->g[ix->births[i].slot].rep,
					  i);
	for (size_t i = 0; !ret && i < ix->ngraves; i++) {
		struct pol_pod rep = { .ns = ix->graves[i].ns, .name = ix->graves[i].ns,
				       .labels = ix->graves[i].labels };

		ret = group_event(ix, w, find, ctx, EV_DEATH, &rep, 0);
	}
	/* Groups born this round had their birth's test. */
	for (size_t i = 0; !ret && i < ix->nmch; i++)
		if (alive(ix, &ix->mch[i]) && ix->mch[i].born <= ix->round_seq)
			ret = group_event(ix, w, find, ctx, EV_MEMBERS, &ix->g[ix->mch[i].slot].rep,
					  0);
	if (ret) {
		ix->events_lost = true;
		return ret;
	}
	ix->refreshed = ix->nbirths;
	return 0;
}

bool cindex_entry_changed(const struct cindex *ix, const void *handle, bool *members)
{
	const struct centry *e = handle;

	*members = e->mchanged == ix->round;
	return e->changed == ix->round;
}

void cindex_entry_keep(const void *handle)
{
	((struct centry *)handle)->used = true;
}

uint64_t cindex_epoch(const struct cindex *ix)
{
	return ix->epoch;
}

bool cindex_groups_changed(const struct cindex *ix)
{
	return ix->groups_changed;
}

bool cindex_pod_changed(const struct cindex *ix, const char *ns, const char *name)
{
	const struct ipod *p = pod_find(ix, ns, name, name_hash(ns, name));

	return !p || p->changed == ix->round;
}

void cindex_free(struct cindex *ix)
{
	if (!ix)
		return;
	for (size_t i = 0; ix->byname && i < ix->nbuckets; i++)
		while (ix->byname[i]) {
			struct ipod *p = ix->byname[i];

			ix->byname[i] = p->next;
			ports_free(&p->pod);
			free(p);
		}
	for (size_t g = 0; g < ix->ng; g++)
		if (ix->g[g].id) {
			free(ix->g[g].rep.ns);
			labels_free(&ix->g[g].rep.labels);
			free(ix->g[g].m);
		}
	/* The entries first: they are in their namespaces' lists. */
	if (ix->cache && ix->cls)
		cindex_forget_all(ix);
	for (size_t b = 0; ix->nsb && b < ix->nnsb; b++)
		while (ix->nsb[b]) {
			struct nsgroups *x = ix->nsb[b];

			ix->nsb[b] = x->next;
			free(x->ns);
			free(x->slot);
			free(x->own);
			free(x);
		}
	graves_clear(ix);
	free(ix->byname);
	free(ix->byip);
	free(ix->g);
	free(ix->freeg);
	free(ix->idslot);
	free(ix->nsb);
	free(ix->births);
	free(ix->cache);
	free(ix->cls);
	free(ix->all_scope.v);
	free(ix->graves);
	free(ix->mch);
	free(ix->nslist);
	free(ix->outbuf);
	free(ix->dirty.v);
	free(ix->gone.v);
	free(ix->dead.v);
	free(ix);
}
