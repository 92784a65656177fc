// SPDX-License-Identifier: Apache-2.0
/*
 * The randomised world generator (world_gen.h) the incremental compiler's
 * equivalence tests stand on: after every step the world is valid and the
 * view matches it, each step changes what it says it changed, every kind
 * of mutation and every corner the generator promises (shared addresses,
 * pods without an address, endpoints without a Pod object, overlapping
 * node CIDRs, Deny, Audit, degraded policies...) shows up, and a seed
 * always gives the same sequence.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "world_gen.h"

#define STEPS 2000

/* ---- a content digest of the world (no pointers), for determinism ---- */

static void fnv(uint64_t *h, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++) {
		*h ^= b[i];
		*h *= 0x100000001b3ull;
	}
}

static void fnv_str(uint64_t *h, const char *s)
{
	fnv(h, s ? s : "\1", s ? strlen(s) + 1 : 1);
}

static void fnv_labels(uint64_t *h, const struct pol_labels *l)
{
	fnv(h, &l->n, sizeof(l->n));
	for (size_t i = 0; i < l->n; i++) {
		fnv_str(h, l->v[i].key);
		fnv_str(h, l->v[i].value);
	}
}

static void fnv_selector(uint64_t *h, const struct pol_selector *s)
{
	fnv_labels(h, &s->match);
	fnv(h, &s->nexpr, sizeof(s->nexpr));
	for (size_t i = 0; i < s->nexpr; i++) {
		fnv_str(h, s->expr[i].key);
		fnv(h, &s->expr[i].op, sizeof(s->expr[i].op));
		for (size_t j = 0; j < s->expr[i].nval; j++)
			fnv_str(h, s->expr[i].val[j]);
	}
}

static void fnv_rules(uint64_t *h, const struct pol_rule *r, size_t n)
{
	fnv(h, &n, sizeof(n));
	for (size_t i = 0; i < n; i++) {
		fnv(h, &r[i].action, sizeof(r[i].action));
		fnv(h, &r[i].any_peer, sizeof(r[i].any_peer));
		fnv(h, &r[i].any_port, sizeof(r[i].any_port));
		for (size_t j = 0; j < r[i].npeers; j++) {
			const struct pol_peer *pe = &r[i].peers[j];

			fnv(h, &pe->has_pod_sel, sizeof(pe->has_pod_sel));
			fnv(h, &pe->has_ns_sel, sizeof(pe->has_ns_sel));
			fnv_selector(h, &pe->pod_sel);
			fnv_selector(h, &pe->ns_sel);
			fnv(h, &pe->is_ipblock, sizeof(pe->is_ipblock));
			fnv(h, &pe->cidr, sizeof(pe->cidr));
			fnv(h, pe->except, pe->nexcept * sizeof(*pe->except));
		}
		for (size_t j = 0; j < r[i].nports; j++) {
			const struct pol_port *pp = &r[i].ports[j];

			fnv(h, &pp->proto, sizeof(pp->proto));
			fnv(h, &pp->kind, sizeof(pp->kind));
			fnv(h, &pp->port, sizeof(pp->port));
			fnv(h, &pp->end_port, sizeof(pp->end_port));
			fnv_str(h, pp->name);
		}
		fnv(h, r[i].icmp, r[i].nicmp * sizeof(*r[i].icmp));
	}
}

static uint64_t digest(const struct wg_world *w)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < w->nns; i++) {
		fnv_str(&h, w->ns[i]->name);
		fnv_labels(&h, &w->ns[i]->labels);
	}
	for (size_t i = 0; i < w->npods; i++) {
		const struct pol_pod *p = w->pods[i];

		fnv_str(&h, p->ns);
		fnv_str(&h, p->name);
		fnv_labels(&h, &p->labels);
		fnv(&h, &p->ip, sizeof(p->ip));
		fnv(&h, &p->labels_unknown, sizeof(p->labels_unknown));
		for (size_t j = 0; j < p->nports; j++) {
			fnv_str(&h, p->ports[j].name);
			fnv(&h, &p->ports[j].port, sizeof(p->ports[j].port));
			fnv(&h, &p->ports[j].proto, sizeof(p->ports[j].proto));
		}
	}
	for (size_t i = 0; i < w->npol; i++) {
		const struct pol_policy *p = w->pol[i];

		fnv(&h, &p->kind, sizeof(p->kind));
		fnv_str(&h, p->ns);
		fnv_str(&h, p->name);
		fnv_selector(&h, &p->pod_sel);
		fnv(&h, &p->has_ns_sel, sizeof(p->has_ns_sel));
		fnv_selector(&h, &p->ns_sel);
		fnv(&h, &p->ingress, sizeof(p->ingress));
		fnv(&h, &p->egress, sizeof(p->egress));
		fnv(&h, &p->audit, sizeof(p->audit));
		fnv(&h, &p->ndegraded, sizeof(p->ndegraded));
		fnv_rules(&h, p->in, p->nin);
		fnv_rules(&h, p->eg, p->neg);
	}
	for (size_t i = 0; i < w->nnodes; i++) {
		fnv_str(&h, w->node_names[i]);
		fnv(&h, &w->nodes[i], sizeof(w->nodes[i]));
	}
	fnv(&h, w->node_ips, w->nnode_ips * sizeof(w->node_ips[0]));
	for (size_t i = 0; i < w->neps; i++) {
		const struct compile_ep *ep = &w->eps[i];

		fnv(&h, &ep->ip, sizeof(ep->ip));
		fnv(&h, &ep->ifindex, sizeof(ep->ifindex));
		fnv(&h, ep->pod_mac, 6);
		fnv(&h, ep->host_mac, 6);
		fnv_str(&h, ep->pod->ns);
		fnv_str(&h, ep->pod->name);
	}
	return h;
}

/* ---- invariants --------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void assert_unique(char **keys, size_t n, const char *what)
{
	qsort(keys, n, sizeof(*keys), cmp_str);
	for (size_t i = 1; i < n; i++)
		if (!strcmp(keys[i - 1], keys[i]))
			fail_msg("two %s called %s", what, keys[i]);
}

/* What the runs saw, over all steps. */
struct seen {
	bool shared_local_remote;	/* a local pod's address on a pod that is not local */
	bool ip0, unknown, orphan_pod, overlap, node_ip_is_pod;
	bool deny, audit, cluster_ns_sel, cluster_all_ns, ipblock_except, named_port,
		port_range, any_peer, any_port, both_sel, degraded, icmp, egress_only;
	unsigned long kinds[WG_NKINDS];
};

static void check_world(const struct wg_world *w, struct seen *seen)
{
	struct pol_world v;
	const struct compile_ep *eps;
	const struct compile_node *nodes;
	size_t neps, nnodes, n = w->npods + w->npol + w->nns + w->nnodes + w->neps + 1;
	char **keys = calloc(n, sizeof(*keys));
	char (*buf)[160] = calloc(n, sizeof(*buf));

	assert_non_null(keys);
	assert_non_null(buf);
	assert_int_equal(wg_view((struct wg_world *)w, &v, &eps, &neps, &nodes, &nnodes), 0);

	/* The view is the world. */
	assert_int_equal(v.nns, w->nns);
	assert_int_equal(v.npods, w->npods);
	assert_int_equal(v.npol, w->npol);
	assert_int_equal(v.nnode_ips, w->nnode_ips);
	assert_true(v.nnode_ips >= 1);
	assert_int_equal(neps, w->neps);
	assert_int_equal(nnodes, w->nnodes);
	assert_ptr_equal(eps, w->eps);
	assert_ptr_equal(nodes, w->nodes);
	for (size_t i = 0; i < w->npods; i++)
		assert_ptr_equal(v.pods[i], w->pods[i]);
	for (size_t i = 0; i < w->npol; i++)
		assert_ptr_equal(v.pol[i], w->pol[i]);
	assert_non_null(v.ns_by_name);
	for (size_t i = 0; i < w->nns; i++)
		assert_ptr_equal(pol_world_ns(&v, w->ns[i]->name), w->ns[i]);

	/* Sizes stay near the parameters (pods that were labels_unknown may
	 * outlive their endpoint, and a few more than twice can pile up). */
	if (w->npods > 2 * (w->prm.npods + w->prm.neps) + 4)
		fail_msg("%zu pods for a world of %zu", w->npods, w->prm.npods);
	assert_true(w->nns <= 2 * w->prm.nns + 1);
	assert_true(w->npol <= 2 * w->prm.npol + 1);
	assert_true(w->neps <= 2 * w->prm.neps + 1);

	/* Unique names per kind. */
	for (size_t i = 0; i < w->nns; i++) {
		snprintf(buf[i], sizeof(buf[i]), "%s", w->ns[i]->name);
		keys[i] = buf[i];
	}
	assert_unique(keys, w->nns, "namespaces");
	for (size_t i = 0; i < w->npods; i++) {
		snprintf(buf[i], sizeof(buf[i]), "%s/%s", w->pods[i]->ns, w->pods[i]->name);
		keys[i] = buf[i];
	}
	assert_unique(keys, w->npods, "pods");
	for (size_t i = 0; i < w->npol; i++) {
		const struct pol_policy *p = w->pol[i];

		assert_true((p->kind == POL_SLUICE_CLUSTER) == !p->ns);
		snprintf(buf[i], sizeof(buf[i]), "%d %s/%s", p->kind, p->ns ? p->ns : "",
			 p->name);
		keys[i] = buf[i];
	}
	assert_unique(keys, w->npol, "policies");
	for (size_t i = 0; i < w->nnodes; i++)
		keys[i] = w->node_names[i];
	assert_unique(keys, w->nnodes, "nodes");
	for (size_t i = 0; i < w->neps; i++) {
		snprintf(buf[i], sizeof(buf[i]), "ifindex %d", w->eps[i].ifindex);
		snprintf(buf[w->neps + i], sizeof(buf[0]), "ip %08x", w->eps[i].ip);
		keys[i] = buf[i];
		keys[w->neps + i] = buf[w->neps + i];
	}
	assert_unique(keys, 2 * w->neps, "endpoints");

	/* Every endpoint's pod is in the world, with the endpoint's address. */
	for (size_t i = 0; i < w->neps; i++) {
		const struct compile_ep *ep = &w->eps[i];
		bool found = false;

		for (size_t j = 0; j < w->npods && !found; j++)
			found = w->pods[j] == ep->pod;
		if (!found)
			fail_msg("endpoint %d: its pod is not in the world", ep->ifindex);
		assert_int_not_equal(ep->ip, 0);
		assert_int_equal(ep->ip, ep->pod->ip);
		seen->unknown |= ep->pod->labels_unknown;
	}
	for (size_t i = 0; i < w->npods; i++) {
		const struct pol_pod *p = w->pods[i];
		bool local = wg_find_ep(w, p) >= 0;

		if (p->labels_unknown && !local)
			fail_msg("pod %s/%s: labels_unknown but not local", p->ns, p->name);
		seen->ip0 |= !p->ip;
		seen->orphan_pod |= wg_find_ns(w, p->ns) < 0;
		if (!local && p->ip && wg_find_ep_ip(w, p->ip) >= 0)
			seen->shared_local_remote = true;
		for (size_t j = 0; j < w->nnode_ips; j++)
			seen->node_ip_is_pod |= p->ip == w->node_ips[j];
	}
	for (size_t i = 0; i < w->nnodes; i++)
		for (size_t j = 0; j < i; j++) {
			const struct cidr4 *a = &w->nodes[i].pod_cidr, *b = &w->nodes[j].pod_cidr;
			int pre = a->prefix < b->prefix ? a->prefix : b->prefix;
			uint32_t mask = pre ? ~0u << (32 - pre) : 0;

			seen->overlap |= (a->net & mask) == (b->net & mask);
		}
	for (size_t i = 0; i < w->npol; i++) {
		const struct pol_policy *p = w->pol[i];

		seen->audit |= p->audit;
		seen->degraded |= p->ndegraded > 0;
		seen->cluster_ns_sel |= p->kind == POL_SLUICE_CLUSTER && p->has_ns_sel;
		seen->cluster_all_ns |= p->kind == POL_SLUICE_CLUSTER && !p->has_ns_sel;
		seen->egress_only |= p->egress && !p->ingress;
		for (int d = 0; d < 2; d++) {
			const struct pol_rule *r = d ? p->eg : p->in;

			for (size_t k = 0; k < (d ? p->neg : p->nin); k++) {
				seen->deny |= r[k].action == POL_DENY;
				seen->any_peer |= r[k].any_peer;
				seen->any_port |= r[k].any_port;
				seen->icmp |= r[k].nicmp > 0;
				for (size_t j = 0; j < r[k].npeers; j++) {
					seen->ipblock_except |= r[k].peers[j].nexcept > 0;
					seen->both_sel |=
						r[k].peers[j].has_pod_sel && r[k].peers[j].has_ns_sel;
				}
				for (size_t j = 0; j < r[k].nports; j++) {
					seen->named_port |= r[k].ports[j].kind == PORT_NAMED;
					seen->port_range |= r[k].ports[j].kind == PORT_NUMBER &&
							    r[k].ports[j].end_port > r[k].ports[j].port;
				}
			}
		}
	}
	free(keys);
	free(buf);
}

/* The change names an object that is (or, removed, is no longer) there. */
static void check_change(const struct wg_world *w, const struct wg_change *ch)
{
	long at = -1;
	bool there;

	switch (ch->kind) {
	case WG_POD:
		assert_non_null(ch->ns);
		assert_non_null(ch->name);
		at = wg_find_pod(w, ch->ns, ch->name);
		break;
	case WG_NAMESPACE:
		assert_null(ch->ns);
		at = wg_find_ns(w, ch->name);
		break;
	case WG_POLICY:
		assert_true((ch->pol_kind == POL_SLUICE_CLUSTER) == !ch->ns);
		at = wg_find_pol(w, ch->pol_kind, ch->ns, ch->name);
		break;
	case WG_NODE:
		assert_null(ch->ns);
		at = wg_find_node(w, ch->name);
		break;
	case WG_LOCAL:
		at = wg_find_pod(w, ch->ns, ch->name);
		if (at >= 0)
			at = wg_find_ep(w, w->pods[at]);
		break;
	case WG_NODE_IPS:
		assert_null(ch->ns);
		assert_null(ch->name);
		assert_int_equal(ch->op, WG_UPDATED);
		return;
	default:
		fail_msg("change of kind %d", ch->kind);
	}
	there = at >= 0;
	if (there != (ch->op != WG_REMOVED))
		fail_msg("step %lu: %s %s %s/%s is %s after the change", w->steps,
			 wg_mut_name(ch->mut), wg_kind_name(ch->kind), ch->ns ? ch->ns : "",
			 ch->name, there ? "there" : "missing");
}

static void run_seed(uint64_t seed)
{
	struct wg_params prm = WG_PARAMS_DEFAULT;
	struct wg_world w;
	struct wg_change ch;
	struct seen seen = { 0 };
	int ret;

	ret = wg_init(&w, seed, &prm);
	if (ret)
		fail_msg("seed %lu: wg_init: %d %s", (unsigned long)seed, ret, w.err);
	assert_int_equal(w.nns, prm.nns);
	assert_int_equal(w.npol, prm.npol);
	assert_int_equal(w.nnodes, prm.nnodes);
	assert_int_equal(w.neps, prm.neps);
	check_world(&w, &seen);
	/* These corners are there from the start. */
	assert_true(seen.shared_local_remote);
	assert_true(seen.ip0);
	assert_true(seen.unknown);
	for (int i = 0; i < STEPS; i++) {
		uint64_t before = digest(&w);
		const struct pol_policy **old = calloc(w.npol + 1, sizeof(*old));
		size_t nold = w.npol;

		assert_non_null(old);
		memcpy(old, w.pol, nold * sizeof(*old));
		ret = wg_step(&w, &ch);
		if (ret)
			fail_msg("seed %lu step %d: %d %s", (unsigned long)seed, i, ret, w.err);
		check_change(&w, &ch);
		check_world(&w, &seen);
		seen.kinds[ch.kind]++;
		/* Every step changes something. A policy edit may happen to give
		 * the same spec (an edit of its annotations would): then it must
		 * at least be a new object, as the store would hold. */
		if (ch.mut == WG_M_POL_EDIT) {
			const struct pol_policy *now =
				w.pol[wg_find_pol(&w, ch.pol_kind, ch.ns, ch.name)];

			for (size_t k = 0; k < nold; k++)
				assert_ptr_not_equal(old[k], now);
		} else if (digest(&w) == before) {
			fail_msg("seed %lu step %d: %s changed nothing", (unsigned long)seed, i,
				 wg_mut_name(ch.mut));
		}
		free(old);
	}
	for (int m = 0; m < WG_M_N; m++)
		if (!w.count[m])
			fail_msg("seed %lu: no %s in %d steps", (unsigned long)seed,
				 wg_mut_name((enum wg_mut)m), STEPS);
	for (int k = 0; k < WG_NKINDS; k++)
		assert_true(seen.kinds[k] > 0);
	assert_int_equal(w.steps, STEPS);
#define SEEN(f)                                                                            \
	do {                                                                               \
		if (!seen.f)                                                               \
			fail_msg("seed %lu: never saw " #f, (unsigned long)seed);          \
	} while (0)
	SEEN(shared_local_remote);
	SEEN(ip0);
	SEEN(unknown);
	SEEN(orphan_pod);
	SEEN(overlap);
	SEEN(node_ip_is_pod);
	SEEN(deny);
	SEEN(audit);
	SEEN(cluster_ns_sel);
	SEEN(cluster_all_ns);
	SEEN(ipblock_except);
	SEEN(named_port);
	SEEN(port_range);
	SEEN(any_peer);
	SEEN(any_port);
	SEEN(both_sel);
	SEEN(degraded);
	SEEN(icmp);
	SEEN(egress_only);
#undef SEEN
	wg_free(&w);
}

static void test_seeds_keep_the_world_valid(void **state)
{
	(void)state;
	run_seed(1);
	run_seed(2);
	run_seed(0xdeadbeef);
}

/* The same seed gives the same world and the same changes; another seed
 * does not. */
static void test_deterministic(void **state)
{
	struct wg_world a, b, c;
	struct wg_change ca, cb, cc;
	bool differs = false;

	(void)state;
	assert_int_equal(wg_init(&a, 42, NULL), 0);
	assert_int_equal(wg_init(&b, 42, NULL), 0);
	assert_int_equal(wg_init(&c, 43, NULL), 0);
	assert_int_equal(digest(&a), digest(&b));
	differs |= digest(&a) != digest(&c);
	for (int i = 0; i < STEPS; i++) {
		assert_int_equal(wg_step(&a, &ca), 0);
		assert_int_equal(wg_step(&b, &cb), 0);
		assert_int_equal(wg_step(&c, &cc), 0);
		assert_int_equal(ca.kind, cb.kind);
		assert_int_equal(ca.op, cb.op);
		assert_int_equal(ca.mut, cb.mut);
		assert_int_equal(ca.pol_kind, cb.pol_kind);
		assert_true(!ca.ns == !cb.ns);
		if (ca.ns)
			assert_string_equal(ca.ns, cb.ns);
		assert_true(!ca.name == !cb.name);
		if (ca.name)
			assert_string_equal(ca.name, cb.name);
		assert_int_equal(digest(&a), digest(&b));
		differs |= ca.mut != cc.mut || digest(&a) != digest(&c);
	}
	assert_true(differs);
	wg_free(&a);
	wg_free(&b);
	wg_free(&c);
}

/* Other sizes work too, down to an empty start. */
static void test_sizes(void **state)
{
	static const struct wg_params sizes[] = {
		{ .nns = 1, .npods = 4, .npol = 1, .nnodes = 1, .neps = 1 },
		{ 0 },
		{ .nns = 20, .npods = 300, .npol = 40, .nnodes = 10, .neps = 12 },
	};
	struct seen seen = { 0 };
	struct wg_world w;
	struct wg_change ch;

	(void)state;
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		assert_int_equal(wg_init(&w, 7 + s, &sizes[s]), 0);
		check_world(&w, &seen);
		for (int i = 0; i < 300; i++) {
			int ret = wg_step(&w, &ch);

			if (ret)
				fail_msg("size %zu step %d: %d %s", s, i, ret, w.err);
			check_change(&w, &ch);
			check_world(&w, &seen);
		}
		wg_free(&w);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seeds_keep_the_world_valid),
		cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_sizes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
