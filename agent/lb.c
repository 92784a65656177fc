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

#include <bpf/bpf.h>

#include "lb.h"

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
};

/* What the maps hold: each array sorted as work_read sorts it. fds: the
 * maps it is of (another datapath: read again). */
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

static int cmp_backend(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct sluice_lb4_backend));
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

void lb_ids_free(struct lb_ids *ids)
{
	shadow_free(ids->shadow);
	ids->shadow = NULL;
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
	qsort(w->svc, w->nsvc, sizeof(*w->svc), cmp_svc);
	qsort(w->be, w->nbe, sizeof(*w->be), cmp_backend);
	qsort(w->rn, w->nrn, sizeof(*w->rn), cmp_rn);
	return 0;
}

static struct sluice_lb4_backend backend_of(const struct svc_backend *b, uint8_t proto)
{
	return (struct sluice_lb4_backend){ .addr = htonl(b->ip), .port = htons(b->port),
					    .proto = proto };
}

/* New flows go to ready endpoints; when none is ready, to those still
 * serving while terminating (kube-proxy's fallback). */
static int backend_for_new_flows(const struct svc_backend *b, int any_ready)
{
	return any_ready ? b->ready : b->serving && b->terminating;
}

/* The frontends and backends the view wants. */
static int work_want(const struct svc_view *v, struct lb_work *w)
{
	size_t nfe = 0, nb = 0;

	for (size_t i = 0; v && i < v->n; i++) {
		if (!lb_service_translated(&v->v[i]))
			continue;
		for (size_t f = 0; f < v->v[i].nfrontends; f++) {
			nfe++;
			nb += v->v[i].ports[v->v[i].frontends[f].port_index].nbackends;
		}
	}
	w->fe = calloc(nfe + 1, sizeof(*w->fe));
	w->pool = calloc(nb + 1, sizeof(*w->pool));
	w->keep = calloc(nb + 1, sizeof(*w->keep));
	if (!w->fe || !w->pool || !w->keep)
		return -ENOMEM;
	for (size_t i = 0; v && i < v->n; i++) {
		const struct svc_view_service *vs = &v->v[i];

		if (!lb_service_translated(vs))
			continue;
		for (size_t f = 0; f < vs->nfrontends; f++) {
			const struct svc_frontend *fe = &vs->frontends[f];
			const struct svc_view_port *vp = &vs->ports[fe->port_index];
			struct want_fe *x;
			int any_ready = 0;

			if (fe->kind == SVC_FE_NODE_PORT ||
			    (fe->proto != IPPROTO_TCP && fe->proto != IPPROTO_UDP))
				continue;
			x = &w->fe[w->nfe++];
			x->k = (struct sluice_lb4_key){ .addr = htonl(fe->ip), .port = htons(fe->port),
							.proto = fe->proto,
							.scope = SLUICE_LB_SCOPE_INT };
			x->bes = &w->pool[w->npool];
			for (size_t b = 0; b < vp->nbackends; b++)
				any_ready |= vp->backends[b].ready;
			for (size_t b = 0; b < vp->nbackends; b++) {
				const struct svc_backend *be = &vp->backends[b];

				if (backend_for_new_flows(be, any_ready)) {
					w->pool[w->npool++] = backend_of(be, fe->proto);
					x->nbes++;
				}
				/* Established flows keep a terminating
				 * backend while its endpoint exists. */
				if (be->ready || be->serving || be->terminating)
					w->keep[w->nkeep++] = backend_of(be, fe->proto);
			}
		}
	}
	qsort(w->fe, w->nfe, sizeof(*w->fe), cmp_fe);
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

/* ids: the backend ids in the map, sorted (a scan per new backend was
 * quadratic in the number of backends). */
static int be_id_used(const uint32_t *ids, size_t n, uint32_t id)
{
	return bsearch(&id, ids, n, sizeof(*ids), cmp_u32) != NULL;
}

static int rn_used(const struct lb_work *w, uint32_t idx)
{
	if (rn_find(w, idx))
		return 1;
	for (size_t i = 0; i < w->nfe; i++)
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

/* Delete k; *gone: the map no longer holds it (deleted, or was not
 * there). A delete that failed otherwise stays in the shadow and is tried
 * again at the next sync. */
static void del(int fd, const void *k, struct lb_stats *st, bool *gone)
{
	if (!bpf_map_delete_elem(fd, k)) {
		st->deleted++;
		*gone = true;
	} else if (errno == ENOENT) {
		*gone = true;
	}
}

int lb_sync(struct datapath *dp, const struct svc_view *v, struct lb_ids *ids,
	    struct lb_stats *st, char *err, size_t errlen)
{
	int svc_fd = datapath_lb_svc_map_fd(dp), be_fd = datapath_lb_be_map_fd(dp);
	int rn_fd = datapath_lb_rnat_map_fd(dp);
	struct be_entry *nbe = NULL;
	struct lb_work w = { 0 };
	/* What this sync writes and deletes, for the shadow. */
	struct svc_entry *wsvc = NULL;
	struct rn_entry *wrn = NULL;
	bool *dsvc = NULL, *dbe = NULL, *drn = NULL;
	uint32_t *beids = NULL, *fern = NULL;
	size_t nwsvc = 0, nwrn = 0;
	uint32_t max_id = 0, max_rn = 0;
	size_t nnew = 0;
	int fds[3];
	int ret;

	memset(st, 0, sizeof(*st));
	shadow_fds(dp, fds);
	if (ids->shadow && memcmp(ids->shadow->fds, fds, sizeof(fds)))
		lb_ids_free(ids);
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
		ret = work_want(v, &w);
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
	wsvc = calloc(w.npool + w.nfe + 1, sizeof(*wsvc));
	wrn = calloc(w.nfe + 1, sizeof(*wrn));
	dsvc = calloc(w.nsvc + 1, sizeof(*dsvc));
	dbe = calloc(w.nbe + 1, sizeof(*dbe));
	drn = calloc(w.nrn + 1, sizeof(*drn));
	beids = calloc(w.nbe + 1, sizeof(*beids));
	fern = calloc(w.nfe + 1, sizeof(*fern));
	if (!nbe || !wsvc || !wrn || !dsvc || !dbe || !drn || !beids || !fern) {
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
			known = !memcmp(&nbe[j].b, b, sizeof(*b));
		if (known)
			continue;
		while (!ids->next_backend || be_id_used(beids, w.nbe, ids->next_backend))
			ids->next_backend++;
		nbe[nnew] = (struct be_entry){ .b = *b, .id = ids->next_backend++ };
		ret = put(be_fd, &nbe[nnew].id, &nbe[nnew].b, SLUICE_MAP_LB_BE, st, err, errlen);
		if (ret)
			goto cleanup;
		nnew++;
	}
	/* 2. Rev-NAT entries: a frontend keeps its index. */
	for (size_t i = 0; i < w.nfe; i++) {
		struct want_fe *fe = &w.fe[i];
		const struct sluice_lb4_value *cur = svc_find(&w, &fe->k);
		struct sluice_lb4_revnat r = { .addr = fe->k.addr, .port = fe->k.port };
		const struct rn_entry *have;

		if (cur && cur->rev_nat) {
			fe->rev_nat = cur->rev_nat;
		} else {
			while (ids->next_rev_nat > 0xffff || !ids->next_rev_nat ||
			       rn_used(&w, ids->next_rev_nat))
				ids->next_rev_nat = ids->next_rev_nat > 0xffff ? 1 : ids->next_rev_nat + 1;
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
	/* 3. Slots 1..n, then 4. slot 0: the new set is live. */
	for (size_t i = 0; i < w.nfe; i++) {
		const struct want_fe *fe = &w.fe[i];
		struct sluice_lb4_key k = fe->k;
		struct sluice_lb4_value val;
		const struct svc_entry *cur;

		for (size_t s = 0; s < fe->nbes; s++) {
			const struct be_entry *e = be_find(&w, &fe->bes[s]);
			uint32_t id = e ? e->id : 0;

			for (size_t j = 0; !id && j < nnew; j++)
				if (!memcmp(&nbe[j].b, &fe->bes[s], sizeof(fe->bes[s])))
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
		}
		k.slot = 0;
		val = (struct sluice_lb4_value){ .count = (uint16_t)fe->nbes,
						 .rev_nat = (uint16_t)fe->rev_nat };
		cur = svc_find_entry(&w, &k);
		if (cur && !memcmp(&cur->v, &val, sizeof(val)))
			continue;
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
	/* 6. Rev-NAT entries and backends nothing uses any more. */
	for (size_t i = 0; i < w.nfe; i++)
		fern[i] = w.fe[i].rev_nat;
	qsort(fern, w.nfe, sizeof(*fern), cmp_u32);
	for (size_t i = 0; i < w.nrn; i++)
		if (!bsearch(&w.rn[i].idx, fern, w.nfe, sizeof(*fern), cmp_u32))
			del(rn_fd, &w.rn[i].idx, st, &drn[i]);
	for (size_t i = 0; i < w.nbe; i++)
		if (!bsearch(&w.be[i].b, w.keep, w.nkeep, sizeof(*w.keep), cmp_backend))
			del(be_fd, &w.be[i].id, st, &dbe[i]);
	st->frontends = w.nfe;
	st->backends = w.nbe + nnew;
	for (size_t i = 0; i < w.nbe; i++)
		if (!bsearch(&w.be[i].b, w.keep, w.nkeep, sizeof(*w.keep), cmp_backend))
			st->backends--;
	/* The shadow: what the maps hold now. Out of memory, it goes (the
	 * next sync reads the maps). */
	if (!ids->shadow && (ids->shadow = calloc(1, sizeof(*ids->shadow))))
		memcpy(ids->shadow->fds, fds, sizeof(fds));
	if (!ids->shadow ||
	    shadow_next(ids->shadow, &w, wsvc, nwsvc, dsvc, nbe, nnew, dbe, wrn, nwrn, drn))
		lb_ids_free(ids);
	ret = 0;
cleanup:
	/* A sync that stopped half way: the maps are read again next time. */
	if (ret)
		lb_ids_free(ids);
	free(nbe);
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
