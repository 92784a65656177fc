// SPDX-License-Identifier: Apache-2.0
/*
 * The incremental compiler against the full one: random worlds
 * (world_gen.h) changed one step at a time, each step synced by
 * compiler_sync_changes told only what changed and by compiler_sync from
 * scratch, into stand-in maps; after every step the four maps must hold
 * the same bytes, and the addresses the incremental side says other
 * nodes' pods gave up must be exactly those a before/after comparison
 * finds.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "compile.h"
#include "identity.h"
#include "policy.h"
#include "world_gen.h"

/* A map as a sorted array of key+value entries. */
struct smap {
	unsigned char *d;
	size_t n, cap, ksz, vsz;
};

struct maps {
	struct smap m[CMAP_N];
};

static const size_t ksz[CMAP_N] = {
	sizeof(struct sluice_endpoint_key), sizeof(struct sluice_ipcache_key),
	sizeof(struct sluice_policy_key), sizeof(struct sluice_policy_key),
};
static const size_t vsz[CMAP_N] = {
	sizeof(struct sluice_endpoint), sizeof(struct sluice_ipcache_value),
	sizeof(struct sluice_policy_value), sizeof(struct sluice_policy_value),
};

static size_t smap_lower(const struct smap *s, const void *k, bool *found)
{
	size_t lo = 0, hi = s->n, esz = s->ksz + s->vsz;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (memcmp(s->d + mid * esz, k, s->ksz) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < s->n && !memcmp(s->d + lo * esz, k, s->ksz);
	return lo;
}

static int smap_update(void *ctx, enum compile_map m, const void *k, const void *v)
{
	struct smap *s = &((struct maps *)ctx)->m[m];
	size_t esz = s->ksz + s->vsz;
	bool found;
	size_t i = smap_lower(s, k, &found);

	if (!found) {
		if (s->n == s->cap) {
			s->cap = s->cap ? s->cap * 2 : 64;
			s->d = realloc(s->d, s->cap * esz);
			assert_non_null(s->d);
		}
		memmove(s->d + (i + 1) * esz, s->d + i * esz, (s->n - i) * esz);
		memcpy(s->d + i * esz, k, s->ksz);
		s->n++;
	}
	memcpy(s->d + i * esz + s->ksz, v, s->vsz);
	return 0;
}

static int smap_del(void *ctx, enum compile_map m, const void *k)
{
	struct smap *s = &((struct maps *)ctx)->m[m];
	size_t esz = s->ksz + s->vsz;
	bool found;
	size_t i = smap_lower(s, k, &found);

	if (found) {
		memmove(s->d + i * esz, s->d + (i + 1) * esz, (s->n - i - 1) * esz);
		s->n--;
	}
	return 0;
}

static struct compiler *open_on(struct maps *mp, size_t allow_cap)
{
	struct compile_maps cm = { .update = smap_update, .del = smap_del, .ctx = mp };
	struct compiler *c = NULL;
	char err[256];

	for (int m = 0; m < CMAP_N; m++) {
		mp->m[m] = (struct smap){ .ksz = ksz[m], .vsz = vsz[m] };
		cm.cap[m] = 1u << 20;
	}
	cm.cap[CMAP_ALLOW] = allow_cap;
	assert_int_equal(compiler_open_maps(&c, &cm, err, sizeof(err)), 0);
	return c;
}

static void maps_free(struct maps *mp)
{
	for (int m = 0; m < CMAP_N; m++)
		free(mp->m[m].d);
}

/* Other nodes' pods' (address, pod) pairs, for the gone addresses. */
struct pair {
	uint32_t ip;
	char who[80];
};

static int cmp_pair(const void *a, const void *b)
{
	const struct pair *x = a, *y = b;

	if (x->ip != y->ip)
		return x->ip < y->ip ? -1 : 1;
	return strcmp(x->who, y->who);
}

static bool is_local(const struct wg_world *w, const struct pol_pod *p)
{
	for (size_t i = 0; i < w->neps; i++)
		if (w->eps[i].pod == p)
			return true;
	return false;
}

static size_t remote_pairs(const struct wg_world *w, struct pair **out)
{
	struct pair *v = calloc(w->npods + 1, sizeof(*v));
	size_t n = 0;

	assert_non_null(v);
	for (size_t i = 0; i < w->npods; i++)
		if (w->pods[i]->ip && !is_local(w, w->pods[i])) {
			v[n].ip = w->pods[i]->ip;
			snprintf(v[n++].who, sizeof(v[0].who), "%s/%s", w->pods[i]->ns,
				 w->pods[i]->name);
		}
	qsort(v, n, sizeof(*v), cmp_pair);
	*out = v;
	return n;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/* The addresses whose (address, pod) pairs of before are not in after. */
static size_t expected_gone(const struct pair *before, size_t nb, const struct pair *after,
			    size_t na, uint32_t *out)
{
	size_t n = 0;

	for (size_t i = 0; i < nb; i++)
		if (!bsearch(&before[i], after, na, sizeof(*after), cmp_pair) &&
		    (!n || out[n - 1] != before[i].ip))
			out[n++] = before[i].ip;
	return n;
}

static void check_gone(const struct compiler *c, const uint32_t *want, size_t nwant,
		       unsigned long step)
{
	const uint32_t *got;
	size_t n = compiler_gone_ips(c, &got);
	uint32_t *g = calloc(n + 1, sizeof(*g));
	size_t k = 0;

	assert_non_null(g);
	if (n)
		memcpy(g, got, n * sizeof(*g));
	qsort(g, n, sizeof(*g), cmp_u32);
	for (size_t i = 0; i < n; i++)
		if (!k || g[k - 1] != g[i])
			g[k++] = g[i];
	if (k != nwant || memcmp(g, want, k * sizeof(*g)))
		fail_msg("step %lu: the incremental side says %zu address(es) changed hands, a "
			 "before/after comparison %zu", step, k, nwant);
	free(g);
}

static void compare_maps(const struct maps *a, const struct maps *b, unsigned long step,
			 const struct wg_change *ch)
{
	for (int m = 0; m < CMAP_N; m++) {
		const struct smap *x = &a->m[m], *y = &b->m[m];
		size_t esz = x->ksz + x->vsz, i = 0;

		while (i < x->n && i < y->n && !memcmp(x->d + i * esz, y->d + i * esz, esz))
			i++;
		if (i == x->n && i == y->n)
			continue;
		fail_msg("step %lu (%s %s/%s): %s differs: incremental %zu entries, full %zu, "
			 "first difference at entry %zu", step, wg_mut_name(ch->mut),
			 ch->ns ? ch->ns : "", ch->name ? ch->name : "", compile_map_name(m), x->n,
			 y->n, i);
	}
}

/* What changed in one step, as the reconcile step would tell it. */
static void changes_of(const struct wg_world *w, const struct wg_change *wc,
		       struct compile_changes *ch, struct compile_pod_change *pc,
		       struct compile_policy_ref *pr, bool every_local)
{
	size_t np = 0;

	*ch = (struct compile_changes){ 0 };
	if (wc->kind == WG_POD || wc->kind == WG_LOCAL) {
		long i = wg_find_pod(w, wc->ns, wc->name);
		const struct pol_pod *p = i >= 0 ? w->pods[i] : NULL;

		pc[np++] = (struct compile_pod_change){ .ns = wc->ns, .name = wc->name, .pod = p,
							.local = p && is_local(w, p) };
	}
	/* The agent names every local pod on every sync; the test does it
	 * half the time, to check that naming only the changed pod is
	 * enough. */
	for (size_t i = 0; every_local && i < w->neps; i++)
		pc[np++] = (struct compile_pod_change){ .ns = w->eps[i].pod->ns,
							.name = w->eps[i].pod->name,
							.pod = w->eps[i].pod, .local = true };
	ch->pods = pc;
	ch->npods = np;
	if (wc->kind == WG_POLICY) {
		pr[0] = (struct compile_policy_ref){ .ns = wc->ns, .name = wc->name };
		ch->policies = pr;
		ch->npolicies = 1;
	}
	ch->namespaces = wc->kind == WG_NAMESPACE;
}

static void run(uint64_t seed, unsigned long steps, size_t allow_cap, const struct wg_params *prm)
{
	struct wg_world w;
	struct maps ma, mb;
	struct compiler *a, *b;
	struct identities *ids;
	struct pair *before = NULL, *after = NULL;
	size_t nb, na;
	struct compile_counts cnt;
	char err[512];

	assert_int_equal(wg_init(&w, seed, prm), 0);
	assert_int_equal(identities_open(&ids, NULL, err, sizeof(err)), 0);
	a = open_on(&ma, allow_cap);
	b = open_on(&mb, allow_cap);
	nb = remote_pairs(&w, &before);
	for (unsigned long s = 0; s <= steps; s++) {
		struct wg_change wc = { .kind = WG_NKINDS };
		struct compile_changes ch;
		struct compile_pod_change *pc;
		struct compile_policy_ref pr[1];
		struct pol_world pw, lean;
		const struct pol_pod **lean_pods = NULL;
		const struct compile_ep *eps;
		const struct compile_node *nodes;
		size_t neps, nnodes, ngone;
		uint32_t *gone;
		int ra, rb;

		if (s)
			assert_int_equal(wg_step(&w, &wc), 0);
		assert_int_equal(wg_view(&w, &pw, &eps, &neps, &nodes, &nnodes), 0);
		pc = calloc(neps + 2, sizeof(*pc));
		assert_non_null(pc);
		changes_of(&w, &wc, &ch, pc, pr, (s & 1) != 0);
		/* The first sync, and now and then a relist: everything. */
		ch.all = s == 0 || s % 397 == 0;
		/* Every third step the agent's lean view: this node's pods
		 * only. A sync that needs them all says so and is called
		 * again with them. */
		ch.lean = s % 3 == 1 && !compiler_wants_world(a);
		if (ch.lean) {
			lean = pw;
			lean_pods = calloc(neps + 1, sizeof(*lean_pods));
			assert_non_null(lean_pods);
			for (size_t i = 0; i < neps; i++)
				lean_pods[i] = eps[i].pod;
			lean.pods = lean_pods;
			lean.npods = neps;
		}
		ra = compiler_sync_changes(a, ch.lean ? &lean : &pw, &ch, eps, neps, nodes, nnodes,
					   ids, 0, NULL, err, sizeof(err));
		if (ra == -EAGAIN && ch.lean) {
			ch.lean = false;
			ch.all = true;
			ra = compiler_sync_changes(a, &pw, &ch, eps, neps, nodes, nnodes, ids, 0, NULL,
						   err, sizeof(err));
		}
		free(lean_pods);
		lean_pods = NULL;
		if (ra)
			fail_msg("seed %llu step %lu: incremental sync: %s", (unsigned long long)seed, s,
				 err);
		rb = compiler_sync(b, &pw, eps, neps, nodes, nnodes, ids, 0, NULL, err, sizeof(err));
		if (rb)
			fail_msg("seed %llu step %lu: full sync: %s", (unsigned long long)seed, s, err);
		compare_maps(&ma, &mb, s, &wc);
		na = remote_pairs(&w, &after);
		gone = calloc(nb + 1, sizeof(*gone));
		assert_non_null(gone);
		ngone = expected_gone(before, nb, after, na, gone);
		if (!ch.all)	/* a rebuild does not know what was before */
			check_gone(a, gone, ngone, s);
		free(gone);
		free(before);
		before = after;
		nb = na;
		if (s % 50 == 0)
			assert_int_equal(compiler_check(a, &pw, eps, neps, nodes, nnodes, ids, err,
							sizeof(err)), 0);
		free(pc);
	}
	compiler_counts(a, &cnt);
	/* Both kinds must have run where the capacity forces the full one. */
	assert_true(cnt.incremental > steps / 2 || allow_cap < 1000);
	/* Endpoints nothing of which changed keep their entries: the cache
	 * must have been used, and been right (the maps compared above). */
	assert_true(cnt.endpoints_kept > 0);
	print_message("seed %llu: %lu steps, %zu incremental and %zu full syncs, endpoints built "
		      "%zu times and kept %zu, %zu groups, %zu selector cache entries at the end\n",
		      (unsigned long long)seed, steps, cnt.incremental, cnt.full,
		      cnt.endpoints_built, cnt.endpoints_kept, cnt.groups, cnt.selector_cache);
	free(before);
	compiler_close(a);
	compiler_close(b);
	maps_free(&ma);
	maps_free(&mb);
	identities_close(ids);
	wg_free(&w);
}

static void test_incremental_equals_full(void **state)
{
	const struct wg_params prm = WG_PARAMS_DEFAULT;

	(void)state;
	for (uint64_t seed = 1; seed <= 3; seed++)
		run(seed, 1500, 1u << 20, &prm);
}

/* Allow rules that do not fit: policies are left out by the full build,
 * which the incremental side must hand over to and come back from. */
static void test_incremental_under_pressure(void **state)
{
	const struct wg_params prm = WG_PARAMS_DEFAULT;

	(void)state;
	run(11, 600, 120, &prm);
}

/* A bigger world: more groups per selector, more reused addresses. */
static void test_incremental_bigger_world(void **state)
{
	const struct wg_params prm = { .nns = 12, .npods = 300, .npol = 30, .nnodes = 5,
				       .neps = 20 };

	(void)state;
	run(23, 500, 1u << 20, &prm);
}

/* ---- the selector cache tests a new group against its candidates only */

static void parse_labels(struct pol_labels *l, const char *json)
{
	json_t *o = json_loads(json, 0, NULL);
	char err[256];

	assert_non_null(o);
	assert_int_equal(pol_labels_parse(o, "labels", l, err, sizeof(err)), 0);
	json_decref(o);
}

static struct pol_policy *parse_policy(const char *json)
{
	json_t *o = json_loads(json, 0, NULL);
	struct pol_policy *p = NULL;
	char err[256];

	assert_non_null(o);
	assert_int_equal(pol_parse(o, &p, err, sizeof(err)), 0);
	json_decref(o);
	return p;
}

/*
 * NNS namespaces, each with a policy admitting its own namespace's
 * clients to its web pod (a local endpoint), and two policies in ns0
 * admitting the namespaces labelled team=b (the odd ones). A pod with a
 * label set new to the cluster in ns0 (team=a) may only be held by ns0's
 * own entry: that is all a sync may test it against, where every entry
 * (NNS + 2 of them) was tested before. One born in ns1 (team=b): its own
 * entry and the two of the class. The maps stay those of the full build.
 */
#define NNS 40
static void test_new_group_tested_against_candidates(void **state)
{
	struct pol_namespace ns[NNS];
	const struct pol_namespace *nsp[NNS];
	struct pol_ns_ref nsidx[NNS];
	struct pol_pod pods[2 * NNS + 2 + 60];
	const struct pol_pod *podp[2 * NNS + 2 + 60];
	struct compile_pod_change many[20];
	struct pol_policy *pol[NNS + 2];
	struct compile_ep eps[NNS];
	struct pol_world w = { 0 };
	struct maps ma = { 0 }, mb = { 0 };
	struct compiler *a = open_on(&ma, 1u << 20), *b = open_on(&mb, 1u << 20);
	struct identities *ids;
	struct compile_counts before, after;
	struct compile_changes all = { .all = true };
	char buf[1024], name[32], err[256];
	size_t np = 0;

	(void)state;
	assert_int_equal(identities_open(&ids, NULL, err, sizeof(err)), 0);
	for (size_t i = 0; i < NNS; i++) {
		snprintf(name, sizeof(name), "ns%zu", i);
		ns[i] = (struct pol_namespace){ .name = strdup(name) };
		parse_labels(&ns[i].labels, i % 2 ? "{\"team\":\"b\"}" : "{\"team\":\"a\"}");
		nsp[i] = &ns[i];
		pods[np] = (struct pol_pod){ .ns = ns[i].name, .name = "web",
					     .ip = 0x0a000100u + (uint32_t)i };
		parse_labels(&pods[np].labels, "{\"app\":\"web\"}");
		eps[i] = (struct compile_ep){ .ip = pods[np].ip, .ifindex = 10 + (int)i,
					      .pod = &pods[np] };
		np++;
		pods[np] = (struct pol_pod){ .ns = ns[i].name, .name = "client",
					     .ip = 0x0a000200u + (uint32_t)i };
		parse_labels(&pods[np].labels, "{\"app\":\"client\"}");
		np++;
		snprintf(buf, sizeof(buf),
			 "{\"apiVersion\":\"networking.k8s.io/v1\",\"kind\":\"NetworkPolicy\","
			 "\"metadata\":{\"namespace\":\"ns%zu\",\"name\":\"web\"},\"spec\":{"
			 "\"podSelector\":{\"matchLabels\":{\"app\":\"web\"}},"
			 "\"ingress\":[{\"from\":[{\"podSelector\":{\"matchLabels\":"
			 "{\"app\":\"client\"}}}]}]}}", i);
		pol[i] = parse_policy(buf);
	}
	for (size_t k = 0; k < 2; k++) {
		snprintf(buf, sizeof(buf),
			 "{\"apiVersion\":\"networking.k8s.io/v1\",\"kind\":\"NetworkPolicy\","
			 "\"metadata\":{\"namespace\":\"ns0\",\"name\":\"from-b-%zu\"},\"spec\":{"
			 "\"podSelector\":{\"matchLabels\":{\"app\":\"web\"}},"
			 "\"ingress\":[{\"from\":[{\"namespaceSelector\":{\"matchLabels\":"
			 "{\"team\":\"b\"}}}]}]}}", k);
		pol[NNS + k] = parse_policy(buf);
	}
	for (size_t i = 0; i < np; i++)
		podp[i] = &pods[i];
	w = (struct pol_world){ .nns = NNS, .ns = nsp, .npods = np, .pods = podp,
				.npol = NNS + 2, .pol = (const struct pol_policy *const *)pol };
	pol_world_index_ns(&w, nsidx);
	assert_int_equal(compiler_sync_changes(a, &w, &all, eps, NNS, NULL, 0, ids, 0, NULL, err,
					       sizeof(err)), 0);
	compiler_counts(a, &before);
	assert_int_equal(before.selector_cache, NNS + 2);

	for (size_t k = 0; k < 2; k++) {
		struct pol_pod *p = &pods[np];
		struct compile_pod_change pc;
		struct compile_changes one = { .pods = &pc, .npods = 1 };
		size_t want = k ? 3 : 1;

		/* k = 0: in ns0 (team=a); k = 1: in ns1 (team=b) */
		*p = (struct pol_pod){ .ns = ns[k].name, .name = "newcomer",
				       .ip = 0x0a000300u + (uint32_t)k };
		parse_labels(&p->labels, "{\"app\":\"client\",\"new\":\"yes\"}");
		podp[np++] = p;
		w.npods = np;
		pc = (struct compile_pod_change){ .ns = p->ns, .name = p->name, .pod = p };
		compiler_counts(a, &before);
		assert_int_equal(compiler_sync_changes(a, &w, &one, eps, NNS, NULL, 0, ids, 0, NULL,
						       err, sizeof(err)), 0);
		compiler_counts(a, &after);
		assert_int_equal(after.selector_tests - before.selector_tests, want);
		assert_int_equal(compiler_sync(b, &w, eps, NNS, NULL, 0, ids, 0, NULL, err,
					       sizeof(err)), 0);
		{
			struct wg_change ch = { .ns = p->ns, .name = p->name };

			compare_maps(&ma, &mb, k, &ch);
		}
	}

	/* Then 20 addresses in one sync (the compiler's copy of the ipcache
	 * merged anew), and 40 one by one (patched in place, past the room
	 * the merge left). */
	for (size_t k = 0; k < 60; k++) {
		struct pol_pod *p = &pods[np];
		struct compile_changes ch = { .pods = many, .npods = 1 };
		struct wg_change wc = { .ns = "ns2", .name = "extra" };

		snprintf(name, sizeof(name), "extra-%zu", k);
		*p = (struct pol_pod){ .ns = ns[2].name, .name = strdup(name),
				       .ip = 0x0a010000u + (uint32_t)k };
		assert_non_null(p->name);
		parse_labels(&p->labels, "{\"app\":\"client\"}");
		podp[np++] = p;
		w.npods = np;
		many[k < 20 ? k : 0] = (struct compile_pod_change){ .ns = p->ns, .name = p->name,
								    .pod = p };
		if (k < 19)
			continue;
		ch.npods = k == 19 ? 20 : 1;
		assert_int_equal(compiler_sync_changes(a, &w, &ch, eps, NNS, NULL, 0, ids, 0, NULL,
						       err, sizeof(err)), 0);
		assert_int_equal(compiler_sync(b, &w, eps, NNS, NULL, 0, ids, 0, NULL, err,
					       sizeof(err)), 0);
		compare_maps(&ma, &mb, k, &wc);
	}
	for (size_t i = 2 * NNS + 2; i < np; i++)
		free(pods[i].name);
	for (size_t i = 0; i < np; i++)
		pol_labels_free(&pods[i].labels);
	for (size_t i = 0; i < NNS; i++) {
		pol_labels_free(&ns[i].labels);
		free(ns[i].name);
	}
	for (size_t i = 0; i < NNS + 2; i++)
		pol_free(pol[i]);
	compiler_close(a);
	compiler_close(b);
	maps_free(&ma);
	maps_free(&mb);
	identities_close(ids);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_incremental_equals_full),
		cmocka_unit_test(test_incremental_under_pressure),
		cmocka_unit_test(test_incremental_bigger_world),
		cmocka_unit_test(test_new_group_tested_against_candidates),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
