// SPDX-License-Identifier: Apache-2.0
/*
 * Programming the Service maps (agent/lb.h): what the maps hold (read once,
 * then the shadow of what was written), work out what the view wants, and
 * write the difference in the safe order:
 * new backends, rev-NAT entries, slots 1..n, slot 0 (the Service is live),
 * then the slots, frontends, rev-NAT entries and backends nothing uses.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/mman.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "cidr.h"
#include "lb.h"
#include "log.h"
#include "maglev.h"

struct svc_entry {
	struct sluice_lb4_key k;
	struct sluice_lb4_value v;
};

struct be_entry {
	struct sluice_lb4_backend b;
	uint32_t id;
};

struct rn_entry {
	uint32_t idx;
	struct sluice_lb4_revnat r;
};

/* A frontend as the view wants it: slot 0's key, the backends new flows
 * choose from (slots 1..n), its rev-NAT index. */
struct want_fe {
	struct sluice_lb4_key k;
	struct sluice_lb4_backend *bes;
	size_t nbes;
	uint32_t rev_nat;
	uint32_t affinity_timeout;	/* seconds; 0: sessionAffinity None */
	uint16_t flags;			/* slot 0's SLUICE_LB_F_* */
};

/* What sluice_svc4_v1, sluice_be4_v1 and sluice_lbrn4_v1 hold: each array
 * sorted as work_read sorts it. fds: the maps it is of (another datapath:
 * read again). The Maglev tables and the affinity map are not shadowed:
 * maglev_sync keeps signatures of its own, and the affinity map is written
 * by the datapath. */
struct lb_shadow {
	int fds[3];
	struct svc_entry *svc;
	size_t nsvc;
	struct be_entry *be;
	size_t nbe;
	struct rn_entry *rn;
	size_t nrn;
};

struct lb_work {
	/* svc, be and rn: what the maps hold; the shadow's arrays when
	 * borrowed (not freed with the work). */
	bool borrowed;
	struct svc_entry *svc;
	size_t nsvc;
	struct be_entry *be;
	size_t nbe;
	struct rn_entry *rn;
	size_t nrn;
	struct want_fe *fe;
	size_t nfe;
	struct sluice_lb4_backend *keep;	/* every backend of a programmed port */
	size_t nkeep;
	struct sluice_lb4_backend *pool;	/* fe[].bes point into it */
	size_t npool;
};

static int cmp_svc(const void *a, const void *b)
{
	return memcmp(&((const struct svc_entry *)a)->k, &((const struct svc_entry *)b)->k,
		      sizeof(struct sluice_lb4_key));
}

static int cmp_fe(const void *a, const void *b)
{
	return memcmp(&((const struct want_fe *)a)->k, &((const struct want_fe *)b)->k,
		      sizeof(struct sluice_lb4_key));
}

/* A backend's identity: address, port, protocol. Its flags (terminating)
 * change in place, under the same id, which tracking entries name. */
static int cmp_backend(const void *a, const void *b)
{
	return memcmp(a, b, offsetof(struct sluice_lb4_backend, flags));
}

/* cmp_fe, and of two with one key a Service's (no HOSTPORT) first, then
 * (two pods' host ports recorded while they were not checked) the lower
 * backend, so that the same one wins at every sync. */
static int cmp_fe_service_first(const void *a, const void *b)
{
	const struct want_fe *x = a, *y = b;
	int c = cmp_fe(a, b);

	if (c)
		return c;
	c = (x->flags & SLUICE_LB_F_HOSTPORT) - (y->flags & SLUICE_LB_F_HOSTPORT);
	if (c || !(x->flags & SLUICE_LB_F_HOSTPORT))
		return c;
	return cmp_backend(x->bes, y->bes);
}

static int cmp_rn(const void *a, const void *b)
{
	uint32_t x = ((const struct rn_entry *)a)->idx, y = ((const struct rn_entry *)b)->idx;

	return x < y ? -1 : x > y;
}

int lb_service_translated(const struct svc_view_service *vs)
{
	if (vs->status)
		return 0;
	for (size_t f = 0; f < vs->nfrontends; f++)
		if (vs->frontends[f].kind != SVC_FE_NODE_PORT &&
		    (vs->frontends[f].proto == IPPROTO_TCP || vs->frontends[f].proto == IPPROTO_UDP))
			return 1;
	return 0;
}

/* Every entry of the map fd (keys of ksize) into an array
 * of entries of esize holding the key at koff and the value at voff. */
static int read_map(int fd, size_t ksize, size_t esize, size_t koff, size_t voff,
		    void **out, size_t *n)
{
	unsigned char key[16], next[16];
	size_t cap = 0;
	void *prev = NULL;
	char *v = NULL;

	*out = NULL;
	*n = 0;
	while (!bpf_map_get_next_key(fd, prev, next)) {
		if (*n == cap) {
			char *g = realloc(v, (cap = cap ? 2 * cap : 64) * esize);

			if (!g) {
				free(v);
				return -ENOMEM;
			}
			v = g;
		}
		memset(v + *n * esize, 0, esize);
		memcpy(v + *n * esize + koff, next, ksize);
		if (bpf_map_lookup_elem(fd, next, v + *n * esize + voff) == 0)
			(*n)++;
		memcpy(key, next, ksize);
		prev = key;
	}
	*out = v;
	return 0;
}

static void work_free(struct lb_work *w)
{
	if (!w->borrowed) {
		free(w->svc);
		free(w->be);
		free(w->rn);
	}
	free(w->fe);
	free(w->keep);
	free(w->pool);
}

static void shadow_free(struct lb_shadow *sh)
{
	if (!sh)
		return;
	free(sh->svc);
	free(sh->be);
	free(sh->rn);
	free(sh);
}

static void shadow_fds(struct datapath *dp, int fds[3])
{
	fds[0] = datapath_lb_svc_map_fd(dp);
	fds[1] = datapath_lb_be_map_fd(dp);
	fds[2] = datapath_lb_rnat_map_fd(dp);
}

static int work_read(struct datapath *dp, struct lb_work *w)
{
	int ret;

	ret = read_map(datapath_lb_svc_map_fd(dp), sizeof(struct sluice_lb4_key), sizeof(struct svc_entry),
		       offsetof(struct svc_entry, k), offsetof(struct svc_entry, v),
		       (void **)&w->svc, &w->nsvc);
	if (!ret)
		ret = read_map(datapath_lb_be_map_fd(dp), sizeof(uint32_t), sizeof(struct be_entry),
			       offsetof(struct be_entry, id), offsetof(struct be_entry, b),
			       (void **)&w->be, &w->nbe);
	if (!ret)
		ret = read_map(datapath_lb_rnat_map_fd(dp), sizeof(uint32_t), sizeof(struct rn_entry),
			       offsetof(struct rn_entry, idx), offsetof(struct rn_entry, r),
			       (void **)&w->rn, &w->nrn);
	if (ret)
		return ret;
	/* (an empty map reads as NULL, 0: qsort must not see NULL) */
	if (w->nsvc)
		qsort(w->svc, w->nsvc, sizeof(*w->svc), cmp_svc);
	if (w->nbe)
		qsort(w->be, w->nbe, sizeof(*w->be), cmp_backend);
	if (w->nrn)
		qsort(w->rn, w->nrn, sizeof(*w->rn), cmp_rn);
	return 0;
}

int lb_backend_local(const struct svc_backend *b, const struct lb_node *node)
{
	return b->local || (node && node->pod_cidr.prefix > 0 &&
			    cidr4_contains(&node->pod_cidr, b->ip));
}

static struct sluice_lb4_backend backend_of(const struct svc_backend *b, uint8_t proto,
					    const struct lb_node *node)
{
	return (struct sluice_lb4_backend){ .addr = htonl(b->ip), .port = htons(b->port),
					    .proto = proto,
					    .flags = (lb_backend_local(b, node) ? SLUICE_LB_BE_F_LOCAL : 0) |
						     (b->terminating ? SLUICE_LB_BE_F_TERMINATING : 0) };
}

/* New flows go to ready endpoints; when none is ready, to those still
 * serving while terminating (kube-proxy's fallback). */
static int backend_for_new_flows(const struct svc_backend *b, int any_ready)
{
	return any_ready ? b->ready : b->serving && b->terminating;
}

/* One entry (k, scope in k) of a frontend: its backends for new flows,
 * only the local ones when local_only (a traffic policy Local), the
 * fallback to terminating ones judged among those. */
static void want_add(struct lb_work *w, struct sluice_lb4_key k, uint16_t flags, uint32_t aff,
		     const struct svc_view_port *vp, int local_only, const struct lb_node *node)
{
	struct want_fe *x = &w->fe[w->nfe++];
	int any_ready = 0;

	x->k = k;
	x->flags = flags;
	x->affinity_timeout = aff;
	x->bes = &w->pool[w->npool];
	for (size_t b = 0; b < vp->nbackends; b++)
		if (!local_only || lb_backend_local(&vp->backends[b], node))
			any_ready |= vp->backends[b].ready;
	for (size_t b = 0; b < vp->nbackends; b++) {
		const struct svc_backend *be = &vp->backends[b];

		if (local_only && !lb_backend_local(be, node))
			continue;
		if (backend_for_new_flows(be, any_ready)) {
			w->pool[w->npool++] = backend_of(be, k.proto, node);
			x->nbes++;
		}
	}
	/* In identity order: the same set always gives the same slots and
	 * the same Maglev signature. */
	qsort(x->bes, x->nbes, sizeof(*x->bes), cmp_backend);
}

/* The host port h's frontend in scope: one backend, the pod. */
static void want_hostport(struct lb_work *w, const struct lb_hostport *h, uint8_t scope)
{
	struct want_fe *x = &w->fe[w->nfe++];
	struct sluice_lb4_backend b = { .addr = htonl(h->be_ip), .port = htons(h->be_port),
					.proto = h->proto, .flags = SLUICE_LB_BE_F_LOCAL };

	x->k = (struct sluice_lb4_key){ .addr = htonl(h->fe_ip), .port = htons(h->fe_port),
					.proto = h->proto, .scope = scope };
	x->flags = SLUICE_LB_F_HOSTPORT;
	x->bes = &w->pool[w->npool];
	x->nbes = 1;
	w->pool[w->npool++] = b;
	w->keep[w->nkeep++] = b;
}

/*
 * The frontends and backends the view and the host ports want. Per
 * frontend (kube-proxy's semantics): a clusterIP has an INT entry
 * (internalTrafficPolicy Local: local backends only); an externalIP and a
 * load-balancer address an INT entry with every backend (pods reaching
 * them are not external traffic) and an EXT entry (externalTrafficPolicy
 * Local: local backends only, no SNAT); a nodePort, on this node's
 * address, the same two with SLUICE_LB_F_NODEPORT; a host port both, with
 * its pod as the one backend.
 */
static int work_want(const struct svc_view *v, const struct lb_node *node,
		     const struct lb_hostport *hp, size_t nhp, struct lb_work *w)
{
	size_t nfe = 2 * nhp, nb = 2 * nhp, kept = 0;

	for (size_t i = 0; v && i < v->n; i++) {
		if (!lb_service_translated(&v->v[i]))
			continue;
		for (size_t f = 0; f < v->v[i].nfrontends; f++) {
			nfe += 2;
			nb += 2 * v->v[i].ports[v->v[i].frontends[f].port_index].nbackends;
		}
	}
	w->fe = calloc(nfe + 1, sizeof(*w->fe));
	w->pool = calloc(nb + 1, sizeof(*w->pool));
	w->keep = calloc(nb + 1, sizeof(*w->keep));
	if (!w->fe || !w->pool || !w->keep)
		return -ENOMEM;
	for (size_t i = 0; v && i < v->n; i++) {
		const struct svc_view_service *vs = &v->v[i];
		int etp = vs->svc && vs->svc->etp_local, itp = vs->svc && vs->svc->itp_local;
		uint32_t aff = vs->svc && vs->svc->affinity_client_ip ? vs->svc->affinity_timeout : 0;

		if (!lb_service_translated(vs))
			continue;
		for (size_t f = 0; f < vs->nfrontends; f++) {
			const struct svc_frontend *fe = &vs->frontends[f];
			const struct svc_view_port *vp = &vs->ports[fe->port_index];
			struct sluice_lb4_key k = { .addr = htonl(fe->ip), .port = htons(fe->port),
						    .proto = fe->proto,
						    .scope = SLUICE_LB_SCOPE_INT };
			uint16_t np = 0;

			if (fe->proto != IPPROTO_TCP && fe->proto != IPPROTO_UDP)
				continue;
			switch (fe->kind) {
			case SVC_FE_CLUSTER_IP:
				want_add(w, k, itp ? SLUICE_LB_F_INT_LOCAL : 0, aff, vp, itp, node);
				break;
			case SVC_FE_NODE_PORT:
				if (!node || !node->node_ip)
					break;
				k.addr = htonl(node->node_ip);
				np = SLUICE_LB_F_NODEPORT;
				/* fall through */
			case SVC_FE_EXTERNAL_IP:
			case SVC_FE_LOAD_BALANCER:
				want_add(w, k, np, aff, vp, 0, node);
				k.scope = SLUICE_LB_SCOPE_EXT;
				want_add(w, k, np | (etp ? SLUICE_LB_F_EXT_LOCAL : 0), aff, vp, etp,
					 node);
				break;
			}
			/* Established flows keep a terminating backend while
			 * its endpoint exists. */
			for (size_t b = 0; b < vp->nbackends; b++) {
				const struct svc_backend *be = &vp->backends[b];

				if (be->ready || be->serving || be->terminating)
					w->keep[w->nkeep++] = backend_of(be, fe->proto, node);
			}
		}
	}
	for (size_t i = 0; i < nhp; i++) {
		want_hostport(w, &hp[i], SLUICE_LB_SCOPE_INT);
		want_hostport(w, &hp[i], SLUICE_LB_SCOPE_EXT);
	}
	qsort(w->fe, w->nfe, sizeof(*w->fe), cmp_fe_service_first);
	/* One frontend per key: the Service's when a hostPort has it too. */
	for (size_t i = 0; i < w->nfe; i++)
		if (!kept || cmp_fe(&w->fe[kept - 1], &w->fe[i]))
			w->fe[kept++] = w->fe[i];
	w->nfe = kept;
	qsort(w->keep, w->nkeep, sizeof(*w->keep), cmp_backend);
	return 0;
}

static const struct be_entry *be_find(const struct lb_work *w, const struct sluice_lb4_backend *b)
{
	return bsearch(b, w->be, w->nbe, sizeof(*w->be), cmp_backend);
}

static const struct svc_entry *svc_find_entry(const struct lb_work *w,
					      const struct sluice_lb4_key *k)
{
	return bsearch(k, w->svc, w->nsvc, sizeof(*w->svc), cmp_svc);
}

static const struct sluice_lb4_value *svc_find(const struct lb_work *w,
					       const struct sluice_lb4_key *k)
{
	const struct svc_entry *e = svc_find_entry(w, k);

	return e ? &e->v : NULL;
}

static const struct rn_entry *rn_find(const struct lb_work *w, uint32_t idx)
{
	struct rn_entry k = { .idx = idx };

	return bsearch(&k, w->rn, w->nrn, sizeof(*w->rn), cmp_rn);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* ids: sorted (a scan per lookup was quadratic in the number of
 * backends or frontends). */
static int u32_in(const uint32_t *ids, size_t n, uint32_t id)
{
	return bsearch(&id, ids, n, sizeof(*ids), cmp_u32) != NULL;
}

/* idx is in the map, or a frontend has it: kept (sorted) are the indices
 * frontends keep from their slot 0; the ones handed out in this sync are
 * all below idx unless the counter wrapped (a scan per new frontend was
 * quadratic in the frontends at a first sync). */
static int rn_used(const struct lb_work *w, const uint32_t *kept, size_t nkept, int wrapped,
		   uint32_t idx)
{
	if (rn_find(w, idx) || u32_in(kept, nkept, idx))
		return 1;
	for (size_t i = 0; wrapped && i < w->nfe; i++)
		if (w->fe[i].rev_nat == idx)
			return 1;
	return 0;
}

/*
 * The state the maps are in after a sync that wrote wsvc/wbe/wrn (each
 * written entry replaces the one with its key) and deleted the entries of
 * w marked in dsvc/dbe/drn: the shadow's next arrays, sorted as
 * work_read sorts them. Returns 0 or -ENOMEM.
 */
static int shadow_next(struct lb_shadow *sh, const struct lb_work *w,
		       const struct svc_entry *wsvc, size_t nwsvc, const bool *dsvc,
		       const struct be_entry *wbe, size_t nwbe, const bool *dbe,
		       const struct rn_entry *wrn, size_t nwrn, const bool *drn)
{
	struct svc_entry *svc = NULL;
	struct be_entry *be = NULL;
	struct rn_entry *rn = NULL;
	size_t nsvc, nbe, nrn;
	bool same = w->borrowed && !nwsvc && !nwbe && !nwrn;

	/* Nothing written or deleted: the shadow stays as it is. */
	for (size_t i = 0; same && i < w->nsvc; i++)
		same = !dsvc[i];
	for (size_t i = 0; same && i < w->nbe; i++)
		same = !dbe[i];
	for (size_t i = 0; same && i < w->nrn; i++)
		same = !drn[i];
	if (same)
		return 0;
	svc = calloc(w->nsvc + nwsvc + 1, sizeof(*svc));
	be = calloc(w->nbe + nwbe + 1, sizeof(*be));
	rn = calloc(w->nrn + nwrn + 1, sizeof(*rn));
	if (!svc || !be || !rn) {
		free(svc);
		free(be);
		free(rn);
		return -ENOMEM;
	}
	/* Entries replaced are marked in d* like those deleted: each key
	 * comes once. */
	memcpy(svc, wsvc, nwsvc * sizeof(*svc));
	nsvc = nwsvc;
	for (size_t i = 0; i < w->nsvc; i++)
		if (!dsvc[i])
			svc[nsvc++] = w->svc[i];
	memcpy(be, wbe, nwbe * sizeof(*be));
	nbe = nwbe;
	for (size_t i = 0; i < w->nbe; i++)
		if (!dbe[i])
			be[nbe++] = w->be[i];
	memcpy(rn, wrn, nwrn * sizeof(*rn));
	nrn = nwrn;
	for (size_t i = 0; i < w->nrn; i++)
		if (!drn[i])
			rn[nrn++] = w->rn[i];
	qsort(svc, nsvc, sizeof(*svc), cmp_svc);
	qsort(rn, nrn, sizeof(*rn), cmp_rn);
	qsort(be, nbe, sizeof(*be), cmp_backend);
	free(sh->svc);
	free(sh->be);
	free(sh->rn);
	sh->svc = svc;
	sh->nsvc = nsvc;
	sh->be = be;
	sh->nbe = nbe;
	sh->rn = rn;
	sh->nrn = nrn;
	return 0;
}

static int put(int fd, const void *k, const void *v, const char *map, struct lb_stats *st,
	       char *err, size_t errlen)
{
	if (bpf_map_update_elem(fd, k, v, BPF_ANY)) {
		int ret = -errno;

		snprintf(err, errlen, "cannot write a Service entry into %s: %s%s", map,
			 strerror(errno),
			 ret == -E2BIG || ret == -ENOSPC ? " (the map is full: fewer Services, "
							  "or a build with larger SLUICE_LB_*_MAX)" : "");
		return ret;
	}
	st->written++;
	return 0;
}

/* Delete k; *gone (when not NULL): the map no longer holds it (deleted,
 * or was not there). A delete that failed otherwise stays in the shadow
 * and is tried again at the next sync. */
static void del(int fd, const void *k, struct lb_stats *st, bool *gone)
{
	if (!bpf_map_delete_elem(fd, k)) {
		st->deleted++;
		if (gone)
			*gone = true;
	} else if (errno == ENOENT && gone) {
		*gone = true;
	}
}

/* Forget the shadow: the next lb_sync reads the maps. */
static void lb_shadow_drop(struct lb_ids *ids)
{
	shadow_free(ids->shadow);
	ids->shadow = NULL;
}

void lb_ids_free(struct lb_ids *ids)
{
	free(ids->maglev);
	ids->maglev = NULL;
	ids->nmaglev = 0;
	lb_shadow_drop(ids);
}

static int cmp_sig(const void *a, const void *b)
{
	uint32_t x = ((const struct lb_maglev_sig *)a)->rev_nat;
	uint32_t y = ((const struct lb_maglev_sig *)b)->rev_nat;

	return x < y ? -1 : x > y;
}

static struct lb_maglev_sig *sig_find(struct lb_ids *ids, uint32_t rev_nat)
{
	struct lb_maglev_sig k = { .rev_nat = rev_nat };

	return bsearch(&k, ids->maglev, ids->nmaglev, sizeof(k), cmp_sig);
}

static int sig_set(struct lb_ids *ids, uint32_t rev_nat, uint64_t sig)
{
	struct lb_maglev_sig *e = sig_find(ids, rev_nat), *g;

	if (e) {
		e->sig = sig;
		return 0;
	}
	g = realloc(ids->maglev, (ids->nmaglev + 1) * sizeof(*g));
	if (!g)
		return -ENOMEM;
	ids->maglev = g;
	g[ids->nmaglev++] = (struct lb_maglev_sig){ .rev_nat = rev_nat, .sig = sig };
	qsort(g, ids->nmaglev, sizeof(*g), cmp_sig);
	return 0;
}

static void sig_drop(struct lb_ids *ids, uint32_t rev_nat)
{
	struct lb_maglev_sig *e = sig_find(ids, rev_nat);

	if (!e)
		return;
	memmove(e, e + 1, (size_t)(ids->maglev + ids->nmaglev - (e + 1)) * sizeof(*e));
	ids->nmaglev--;
}

/* FNV-1a, 64 bits: only compared with itself, within one agent. */
static uint64_t fnv64(uint64_t h, const void *p, size_t n)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ c[i]) * 0x100000001b3ull;
	return h;
}

/* The table of a frontend: backend ids (ids[i] is bes[i]'s) by Maglev. */
static int maglev_table(const struct sluice_lb4_backend *bes, const uint32_t *ids, size_t n,
			uint32_t m, uint32_t *table, char *err, size_t errlen)
{
	struct maglev_backend *mb = calloc(n + 1, sizeof(*mb));
	int ret;

	if (!mb)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		mb[i] = (struct maglev_backend){ .addr = ntohl(bes[i].addr),
						 .port = ntohs(bes[i].port) };
	ret = maglev_build(mb, n, m, SLUICE_LB_SEED_DEFAULT, table, err, errlen);
	free(mb);
	if (ret < 0)
		return ret;
	for (uint32_t i = 0; i < m; i++)
		table[i] = table[i] == MAGLEV_NONE ? SLUICE_MAGLEV_NONE : ids[table[i]];
	return 0;
}

/* A mapped array keeps each value in an element of 8 bytes (the kernel
 * rounds value sizes up to 8), the value at its start: entry i of a table
 * is the 32-bit word 2 i. */
#define MGL_MMAP_STRIDE 2
#define MGL_MMAP_BYTES(m) ((size_t)(m) * 8)

/* The table the outer map holds for rev_nat equals want (m entries). */
static int maglev_table_is(int outer, uint32_t rev_nat, const uint32_t *want, uint32_t m)
{
	struct bpf_map_info info = { 0 };
	uint32_t inner_id, len = sizeof(info);
	int fd, same = 0;
	void *p;

	if (bpf_map_lookup_elem(outer, &rev_nat, &inner_id))
		return 0;
	fd = bpf_map_get_fd_by_id(inner_id);
	if (fd < 0)
		return 0;
	if (!bpf_obj_get_info_by_fd(fd, &info, &len) && info.max_entries == m) {
		p = mmap(NULL, MGL_MMAP_BYTES(m), PROT_READ, MAP_SHARED, fd, 0);
		if (p != MAP_FAILED) {
			same = 1;
			for (uint32_t i = 0; same && i < m; i++)
				same = ((const uint32_t *)p)[MGL_MMAP_STRIDE * i] == want[i];
			munmap(p, MGL_MMAP_BYTES(m));
		}
	}
	close(fd);
	return same;
}

/* A new inner map holding table, then one update of the outer map: a
 * lookup sees the old table or the new one, whole. */
static int maglev_swap(int outer, uint32_t rev_nat, const uint32_t *table, uint32_t m,
		       char *err, size_t errlen)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_INNER_MAP | BPF_F_MMAPABLE);
	size_t bytes = MGL_MMAP_BYTES(m);
	void *p = MAP_FAILED;
	int fd, ret = 0;

	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "sluice_mgl4_in", sizeof(uint32_t),
			    sizeof(uint32_t), m, &opts);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot create a Maglev table of %u entries for %s: %s", m,
			 SLUICE_MAP_LB_MGL, strerror(errno));
		goto cleanup;
	}
	p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		ret = -errno;
		snprintf(err, errlen, "cannot map a Maglev table for %s: %s", SLUICE_MAP_LB_MGL,
			 strerror(errno));
		goto cleanup;
	}
	for (uint32_t i = 0; i < m; i++)
		((uint32_t *)p)[MGL_MMAP_STRIDE * i] = table[i];
	if (bpf_map_update_elem(outer, &rev_nat, &fd, BPF_ANY)) {
		ret = -errno;
		snprintf(err, errlen, "cannot write rev-NAT index %u's Maglev table into %s: %s%s",
			 rev_nat, SLUICE_MAP_LB_MGL, strerror(errno),
			 errno == EINVAL ? " (a pinned map of an older layout: remove its pin and "
					   "restart the agent)" : "");
		goto cleanup;
	}
cleanup:
	if (p != MAP_FAILED)
		munmap(p, bytes);
	if (fd >= 0)
		close(fd);
	return ret;
}

/* A signature's mark for "too many backends for a table, warned". */
#define SIG_NO_TABLE 1ull

/* The backend id of b among the known and the new ones (0: none). */
static uint32_t id_of(const struct lb_work *w, const struct be_entry *nbe, size_t nnew,
		      const struct sluice_lb4_backend *b)
{
	const struct be_entry *e = be_find(w, b);

	if (e)
		return e->id;
	for (size_t j = 0; j < nnew; j++)
		if (!memcmp(&nbe[j].b, b, sizeof(*b)))
			return nbe[j].id;
	return 0;
}

/* Step 3 for one frontend: its Maglev table, when its backend set (or M)
 * changed since the table in the map was built. Sets SLUICE_LB_F_MAGLEV
 * in fe when the frontend has a table. A table that cannot be built (M not
 * above the backend count) leaves the frontend on random, with a warning. */
static int maglev_sync(struct datapath *dp, struct lb_ids *ids, const struct lb_work *w,
		       const struct be_entry *nbe, size_t nnew, struct want_fe *fe,
		       uint32_t *table, struct lb_stats *st, char *err, size_t errlen)
{
	uint32_t m = datapath_lb_maglev_m(dp), *bid = NULL;
	int outer = datapath_lb_maglev_map_fd(dp), ret = 0;
	const struct lb_maglev_sig *have;
	char why[256];
	uint64_t sig;

	if (!m || fe->nbes < 2)
		return 0;
	bid = calloc(fe->nbes, sizeof(*bid));
	if (!bid) {
		ret = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto cleanup;
	}
	sig = fnv64(0xcbf29ce484222325ull, &m, sizeof(m));
	for (size_t i = 0; i < fe->nbes; i++) {
		bid[i] = id_of(w, nbe, nnew, &fe->bes[i]);
		/* bes is in identity order (work_want); identity and id
		 * both count. */
		sig = fnv64(sig, &fe->bes[i], sizeof(fe->bes[i]));
		sig = fnv64(sig, &bid[i], sizeof(bid[i]));
	}
	have = sig_find(ids, fe->rev_nat);
	if (maglev_check(m, fe->nbes, why, sizeof(why))) {
		char addr[INET_ADDRSTRLEN];

		/* Once per backend set, not on every sync. */
		if (!have || have->sig != (sig ^ SIG_NO_TABLE))
			pr_warn("Service frontend %s:%u has %zu backends: chosen at random, not "
				"by Maglev: %s", inet_ntop(AF_INET, &fe->k.addr, addr, sizeof(addr)),
				ntohs(fe->k.port), fe->nbes, why);
		ret = sig_set(ids, fe->rev_nat, sig ^ SIG_NO_TABLE);
		goto cleanup;
	}
	fe->flags |= SLUICE_LB_F_MAGLEV;
	if (have && have->sig == sig) {
		uint32_t inner;

		/* Still there (nobody removed it behind our back)? */
		if (!bpf_map_lookup_elem(outer, &fe->rev_nat, &inner))
			goto cleanup;
	}
	ret = maglev_table(fe->bes, bid, fe->nbes, m, table, err, errlen);
	if (ret)
		goto cleanup;
	/* After a restart the table in the map may be this one already. */
	if (!have && maglev_table_is(outer, fe->rev_nat, table, m)) {
		ret = sig_set(ids, fe->rev_nat, sig);
		goto cleanup;
	}
	ret = maglev_swap(outer, fe->rev_nat, table, m, err, errlen);
	if (ret)
		goto cleanup;
	st->written++;
	st->maglev_built++;
	ret = sig_set(ids, fe->rev_nat, sig);
cleanup:
	if (ret == -ENOMEM && !err[0])
		snprintf(err, errlen, "out of memory");
	free(bid);
	return ret;
}

int lb_sync(struct datapath *dp, const struct svc_view *v, const struct lb_node *node,
	    struct lb_ids *ids, struct lb_stats *st, char *err, size_t errlen)
{
	return lb_sync_with(dp, v, node, NULL, 0, ids, st, err, errlen);
}

int lb_sync_with(struct datapath *dp, const struct svc_view *v, const struct lb_node *node,
		 const struct lb_hostport *hp, size_t nhp, struct lb_ids *ids, struct lb_stats *st,
		 char *err, size_t errlen)
{
	int svc_fd = datapath_lb_svc_map_fd(dp), be_fd = datapath_lb_be_map_fd(dp);
	int rn_fd = datapath_lb_rnat_map_fd(dp);
	int mgl_fd = datapath_lb_maglev_map_fd(dp), aff_fd = datapath_lb_affinity_map_fd(dp);
	uint32_t max_id = 0, max_rn = 0, *table = NULL, m = datapath_lb_maglev_m(dp);
	struct be_entry *nbe = NULL, *wbe = NULL;
	struct lb_work w = { 0 };
	/* What this sync writes and deletes, for the shadow. */
	struct svc_entry *wsvc = NULL;
	struct rn_entry *wrn = NULL;
	bool *dsvc = NULL, *dbe = NULL, *drn = NULL;
	uint32_t *beids = NULL, *fern = NULL;
	size_t nnew = 0, nwsvc = 0, nwbe = 0, nwrn = 0, nkept = 0;
	int ret, purge_affinity = 0, wrapped = 0;
	int fds[3];

	memset(st, 0, sizeof(*st));
	shadow_fds(dp, fds);
	if (ids->shadow && memcmp(ids->shadow->fds, fds, sizeof(fds)))
		lb_shadow_drop(ids);
	if (ids->shadow) {
		w.borrowed = true;
		w.svc = ids->shadow->svc;
		w.nsvc = ids->shadow->nsvc;
		w.be = ids->shadow->be;
		w.nbe = ids->shadow->nbe;
		w.rn = ids->shadow->rn;
		w.nrn = ids->shadow->nrn;
		ret = 0;
	} else {
		ret = work_read(dp, &w);
	}
	if (!ret)
		ret = work_want(v, node, hp, nhp, &w);
	if (ret) {
		snprintf(err, errlen, "cannot read the Service maps: %s", strerror(-ret));
		goto cleanup;
	}
	/* After a restart, ids continue above what the maps hold. */
	for (size_t i = 0; i < w.nbe; i++)
		max_id = w.be[i].id > max_id ? w.be[i].id : max_id;
	for (size_t i = 0; i < w.nrn; i++)
		max_rn = w.rn[i].idx > max_rn ? w.rn[i].idx : max_rn;
	if (ids->next_backend <= max_id)
		ids->next_backend = max_id + 1;
	if (ids->next_rev_nat <= max_rn)
		ids->next_rev_nat = max_rn + 1;

	nbe = calloc(w.npool + 1, sizeof(*nbe));
	wbe = calloc(w.npool + w.nkeep + 1, sizeof(*wbe));
	/* Slots 1..n and slot 0 of each frontend: npool + nfe at most. */
	wsvc = calloc(w.npool + w.nfe + 1, sizeof(*wsvc));
	wrn = calloc(w.nfe + 1, sizeof(*wrn));
	dsvc = calloc(w.nsvc + 1, sizeof(*dsvc));
	dbe = calloc(w.nbe + 1, sizeof(*dbe));
	drn = calloc(w.nrn + 1, sizeof(*drn));
	beids = calloc(w.nbe + 1, sizeof(*beids));
	fern = calloc(w.nfe + 1, sizeof(*fern));
	if (!nbe || !wbe || !wsvc || !wrn || !dsvc || !dbe || !drn || !beids || !fern) {
		ret = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto cleanup;
	}
	for (size_t i = 0; i < w.nbe; i++)
		beids[i] = w.be[i].id;
	qsort(beids, w.nbe, sizeof(*beids), cmp_u32);

	/* 1. New backends, each once. */
	for (size_t i = 0; i < w.npool; i++) {
		const struct sluice_lb4_backend *b = &w.pool[i];
		int known = be_find(&w, b) != NULL;

		for (size_t j = 0; !known && j < nnew; j++)
			known = !cmp_backend(&nbe[j].b, b);
		if (known)
			continue;
		while (!ids->next_backend || u32_in(beids, w.nbe, ids->next_backend))
			ids->next_backend++;
		nbe[nnew] = (struct be_entry){ .b = *b, .id = ids->next_backend++ };
		ret = put(be_fd, &nbe[nnew].id, &nbe[nnew].b, SLUICE_MAP_LB_BE, st, err, errlen);
		if (ret)
			goto cleanup;
		wbe[nwbe++] = nbe[nnew];
		nnew++;
	}
	/* A backend that starts (or stops) terminating keeps its id: only
	 * its flags change. */
	for (size_t i = 0; i < w.nkeep; i++) {
		const struct be_entry *e = be_find(&w, &w.keep[i]);

		if (i && !cmp_backend(&w.keep[i - 1], &w.keep[i]))
			continue;
		if (!e || e->b.flags == w.keep[i].flags)
			continue;
		ret = put(be_fd, &e->id, &w.keep[i], SLUICE_MAP_LB_BE, st, err, errlen);
		if (ret)
			goto cleanup;
		wbe[nwbe++] = (struct be_entry){ .b = w.keep[i], .id = e->id };
		dbe[e - w.be] = true;
	}
	/* 2. Rev-NAT entries: a frontend keeps its index. fern: those kept,
	 * sorted (refilled at step 6). */
	for (size_t i = 0; i < w.nfe; i++) {
		const struct sluice_lb4_value *cur = svc_find(&w, &w.fe[i].k);

		if (cur && cur->rev_nat)
			fern[nkept++] = cur->rev_nat;
	}
	qsort(fern, nkept, sizeof(*fern), cmp_u32);
	for (size_t i = 0; i < w.nfe; i++) {
		struct want_fe *fe = &w.fe[i];
		const struct sluice_lb4_value *cur = svc_find(&w, &fe->k);
		struct sluice_lb4_revnat r = { .addr = fe->k.addr, .port = fe->k.port };
		const struct rn_entry *have;

		if (cur && cur->rev_nat) {
			fe->rev_nat = cur->rev_nat;
		} else {
			while (ids->next_rev_nat > 0xffff || !ids->next_rev_nat ||
			       rn_used(&w, fern, nkept, wrapped, ids->next_rev_nat)) {
				wrapped |= ids->next_rev_nat > 0xffff;
				ids->next_rev_nat = ids->next_rev_nat > 0xffff ? 1 : ids->next_rev_nat + 1;
			}
			fe->rev_nat = ids->next_rev_nat++;
		}
		have = rn_find(&w, fe->rev_nat);
		if (have && !memcmp(&have->r, &r, sizeof(r)))
			continue;
		ret = put(rn_fd, &fe->rev_nat, &r, SLUICE_MAP_LB_RNAT, st, err, errlen);
		if (ret)
			goto cleanup;
		wrn[nwrn++] = (struct rn_entry){ .idx = fe->rev_nat, .r = r };
		if (have)
			drn[have - w.rn] = true;
	}
	if (m) {
		table = calloc(m, sizeof(*table));
		if (!table) {
			ret = -ENOMEM;
			snprintf(err, errlen, "out of memory");
			goto cleanup;
		}
	}
	/* 3. Slots 1..n, the Maglev table, then 4. slot 0: the new set is
	 * live. */
	for (size_t i = 0; i < w.nfe; i++) {
		struct want_fe *fe = &w.fe[i];
		struct sluice_lb4_key k = fe->k;
		struct sluice_lb4_value val;
		const struct svc_entry *cur;

		for (size_t s = 0; s < fe->nbes; s++) {
			const struct be_entry *e = be_find(&w, &fe->bes[s]);
			uint32_t id = e ? e->id : 0;

			for (size_t j = 0; !id && j < nnew; j++)
				if (!cmp_backend(&nbe[j].b, &fe->bes[s]))
					id = nbe[j].id;
			k.slot = (uint16_t)(s + 1);
			val = (struct sluice_lb4_value){ .backend_id = id };
			cur = svc_find_entry(&w, &k);
			if (cur && !memcmp(&cur->v, &val, sizeof(val)))
				continue;
			ret = put(svc_fd, &k, &val, SLUICE_MAP_LB_SVC, st, err, errlen);
			if (ret)
				goto cleanup;
			wsvc[nwsvc++] = (struct svc_entry){ .k = k, .v = val };
			if (cur)
				dsvc[cur - w.svc] = true;
			/* The set changed: clients of a backend that left it
			 * must not be sent there (it may still exist for
			 * another Service, which is all the datapath checks). */
			purge_affinity |= fe->affinity_timeout != 0;
		}
		ret = maglev_sync(dp, ids, &w, nbe, nnew, fe, table, st, err, errlen);
		if (ret)
			goto cleanup;
		k.slot = 0;
		val = (struct sluice_lb4_value){ .count = (uint16_t)fe->nbes,
						 .rev_nat = (uint16_t)fe->rev_nat,
						 .affinity_timeout = fe->affinity_timeout,
						 .flags = fe->flags };
		cur = svc_find_entry(&w, &k);
		if (cur && !memcmp(&cur->v, &val, sizeof(val)))
			continue;
		/* Affinity turned off or changed: what clients had is
		 * forgotten, so turning it on again starts afresh. A new
		 * count may have cut a backend off the set's end. */
		if (cur && cur->v.affinity_timeout &&
		    (cur->v.affinity_timeout != val.affinity_timeout || cur->v.count != val.count))
			purge_affinity = 1;
		ret = put(svc_fd, &k, &val, SLUICE_MAP_LB_SVC, st, err, errlen);
		if (ret)
			goto cleanup;
		wsvc[nwsvc++] = (struct svc_entry){ .k = k, .v = val };
		if (cur)
			dsvc[cur - w.svc] = true;
	}
	/* 5. Frontends gone lose slot 0 first (they stop answering), then
	 * every slot above their count. */
	for (size_t i = 0; i < w.nsvc; i++) {
		struct want_fe key = { .k = w.svc[i].k };

		if (!w.svc[i].k.slot && !bsearch(&key, w.fe, w.nfe, sizeof(*w.fe), cmp_fe))
			del(svc_fd, &w.svc[i].k, st, &dsvc[i]);
	}
	for (size_t i = 0; i < w.nsvc; i++) {
		struct want_fe key = { .k = w.svc[i].k }, *fe;

		if (!w.svc[i].k.slot)
			continue;
		key.k.slot = 0;
		fe = bsearch(&key, w.fe, w.nfe, sizeof(*w.fe), cmp_fe);
		if (!fe || w.svc[i].k.slot > fe->nbes)
			del(svc_fd, &w.svc[i].k, st, &dsvc[i]);
	}
	/* 6. Rev-NAT entries and backends nothing uses any more. fern: the
	 * frontends' indices, sorted (steps 6 to 8 look them up). */
	for (size_t i = 0; i < w.nfe; i++)
		fern[i] = w.fe[i].rev_nat;
	qsort(fern, w.nfe, sizeof(*fern), cmp_u32);
	for (size_t i = 0; i < w.nrn; i++)
		if (!u32_in(fern, w.nfe, w.rn[i].idx))
			del(rn_fd, &w.rn[i].idx, st, &drn[i]);
	for (size_t i = 0; i < w.nbe; i++)
		if (!bsearch(&w.be[i].b, w.keep, w.nkeep, sizeof(*w.keep), cmp_backend))
			del(be_fd, &w.be[i].id, st, &dbe[i]);
	/* 7. Maglev tables no frontend uses (gone, fewer than 2 backends,
	 * --lb-algorithm random), after slot 0 stopped naming them. */
	{
		uint32_t key, next, *prev = NULL;
		uint32_t *gone = NULL;
		size_t ngone = 0, cap = 0;

		while (!bpf_map_get_next_key(mgl_fd, prev, &next)) {
			int used = 0;

			for (size_t j = 0; !used && j < w.nfe; j++)
				used = w.fe[j].rev_nat == next && (w.fe[j].flags & SLUICE_LB_F_MAGLEV);
			/* (a scan per table: tables are of frontends with 2
			 * backends or more under --lb-algorithm maglev only) */
			if (!used) {
				if (ngone == cap) {
					uint32_t *g = realloc(gone, (cap = cap ? 2 * cap : 16) *
									sizeof(*g));

					if (!g) {
						free(gone);
						ret = -ENOMEM;
						snprintf(err, errlen, "out of memory");
						goto cleanup;
					}
					gone = g;
				}
				gone[ngone++] = next;
			}
			key = next;
			prev = &key;
		}
		for (size_t j = 0; j < ngone; j++) {
			int kept = 0;

			del(mgl_fd, &gone[j], st, NULL);
			/* A frontend still there keeps its signature (its
			 * table is rebuilt when it needs one again: the
			 * signature alone is not trusted without a table). */
			kept = u32_in(fern, w.nfe, gone[j]);
			if (!kept)
				sig_drop(ids, gone[j]);
		}
		free(gone);
		/* Signatures of frontends gone (also those that had none). */
		for (size_t j = ids->nmaglev; j-- > 0;) {
			int kept = u32_in(fern, w.nfe, ids->maglev[j].rev_nat);

			if (!kept)
				sig_drop(ids, ids->maglev[j].rev_nat);
		}
	}
	/* 8. Affinity entries of frontends gone, whose affinity changed, or
	 * that name a backend no longer in their frontend's set. */
	for (size_t i = 0; !purge_affinity && i < w.nrn; i++)
		purge_affinity = !u32_in(fern, w.nfe, w.rn[i].idx);
	if (purge_affinity) {
		struct sluice_lb4_aff_key last, next, *prev = NULL;

		while (!bpf_map_get_next_key(aff_fd, prev, &next)) {
			const struct want_fe *keep = NULL;
			struct sluice_lb4_aff_value av;
			int member = 0;

			for (size_t j = 0; !keep && j < w.nfe; j++)
				if (w.fe[j].rev_nat == next.rev_nat)
					keep = &w.fe[j];
			if (keep && keep->affinity_timeout &&
			    !bpf_map_lookup_elem(aff_fd, &next, &av))
				for (size_t b = 0; !member && b < keep->nbes; b++)
					member = id_of(&w, nbe, nnew, &keep->bes[b]) == av.backend_id;
			if (!member) {
				/* prev stays on the last kept key, so the walk
				 * goes on from there. */
				del(aff_fd, &next, st, NULL);
				continue;
			}
			last = next;
			prev = &last;
		}
	}
	/* Every EXT entry has its INT twin: frontends counts the INT ones. */
	for (size_t i = 0; i < w.nfe; i++) {
		if (w.fe[i].k.scope == SLUICE_LB_SCOPE_INT)
			st->frontends++;
		else
			st->ext_entries++;
	}
	st->backends = w.nbe + nnew;
	for (size_t i = 0; i < w.nbe; i++)
		if (!bsearch(&w.be[i].b, w.keep, w.nkeep, sizeof(*w.keep), cmp_backend))
			st->backends--;
	/* The shadow: what the maps hold now. Out of memory, it goes (the
	 * next sync reads the maps). */
	if (!ids->shadow && (ids->shadow = calloc(1, sizeof(*ids->shadow))))
		memcpy(ids->shadow->fds, fds, sizeof(fds));
	if (!ids->shadow ||
	    shadow_next(ids->shadow, &w, wsvc, nwsvc, dsvc, wbe, nwbe, dbe, wrn, nwrn, drn))
		lb_shadow_drop(ids);
	ret = 0;
cleanup:
	/* A sync that stopped half way: the maps are read again next time
	 * (the Maglev signatures stay: maglev_sync checks the table is
	 * there before it trusts one). */
	if (ret)
		lb_shadow_drop(ids);
	free(table);
	free(nbe);
	free(wbe);
	free(wsvc);
	free(wrn);
	free(dsvc);
	free(dbe);
	free(drn);
	free(beids);
	free(fern);
	work_free(&w);
	return ret;
}

int lb_new_flow_candidate(const struct svc_view_port *vp, size_t b)
{
	int any_ready = 0;

	for (size_t i = 0; i < vp->nbackends; i++)
		any_ready |= vp->backends[i].ready;
	return backend_for_new_flows(&vp->backends[b], any_ready);
}
