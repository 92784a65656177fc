// SPDX-License-Identifier: Apache-2.0
/*
 * The compiler's part of a CNI ADD on a large cluster: the world of
 * bench/controlplane_gen.py (PODS pods in PODS/100 namespaces labelled
 * team=t0..t2, PODS/10 NetworkPolicies each with a pod, a namespace and an
 * ipBlock peer, PODS/100 nodes), compiled into stand-in maps (no kernel)
 * the way the agent does it: one sync from every pod, then per ADD an
 * incremental sync of a lean world (this node's pods only) told that every
 * local pod changed. Timed:
 *
 *   - the 20 ADDs of the benchmark's cni pods (ns0, app=a0: ten policies
 *     select them, none of whose selector cache entries exist before the
 *     first ADD);
 *   - endpoints in 50 namespaces (the policies of each), then ADDs of pods
 *     with a label set new to the cluster (a new identity group, tested
 *     against the selector cache entries there are).
 *
 *   build/bench-compile-add [PODS...]     (default 1000 100000)
 *
 * Each figure is the median and the largest of its ADDs, in ms.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compile.h"
#include "compile_bench.h"
#include "identity.h"
#include "log.h"
#include "policy.h"

#define CNI 20
#define SPREAD 50
#define FRESH 20

static int labels(struct pol_labels *l, const char *json)
{
	json_t *o = json_loads(json, 0, NULL);
	char err[256];
	int ret = o ? pol_labels_parse(o, "labels", l, err, sizeof(err)) : -EINVAL;

	json_decref(o);
	return ret;
}

static int make_pod(struct pol_pod *p, const char *ns, const char *name, uint32_t ip,
		    const char *lbl)
{
	p->ns = strdup(ns);
	p->name = strdup(name);
	p->ip = ip;
	p->nports = 1;
	p->ports = calloc(1, sizeof(*p->ports));
	if (!p->ns || !p->name || !p->ports)
		return -ENOMEM;
	p->ports[0] = (struct pol_container_port){ .name = "http", .proto = 6, .port = 80 };
	return labels(&p->labels, lbl);
}

static uint32_t node_ip(size_t node, size_t k)
{
	/* 10.(64 + node / 256).(node % 256).k */
	return (10u << 24) | ((uint32_t)(64 + node / 256) << 16) | ((uint32_t)(node % 256) << 8) |
	       (uint32_t)k;
}

struct run {
	struct compiler *c;
	struct identities *ids;
	struct pol_world w;		/* every pod */
	const struct pol_pod **locals;	/* this node's, stand-ins with addresses */
	struct compile_ep *eps;
	size_t neps;
	struct compile_node *nodes;
	size_t nnodes;
	uint32_t router;
};

/* One ADD: eps[neps] joins (its stand-in locals[neps]), synced as the agent
 * does. Returns the sync's ms, or < 0. */
static double add_one(struct run *r)
{
	struct compile_pod_change ch[SPREAD + CNI + FRESH];
	struct compile_changes c = { .pods = ch, .lean = true };
	struct pol_world lean = r->w;
	struct timespec t0;
	char err[512];

	r->neps++;
	for (size_t i = 0; i < r->neps; i++)
		ch[i] = (struct compile_pod_change){ .ns = r->locals[i]->ns,
						     .name = r->locals[i]->name,
						     .pod = r->locals[i], .local = true };
	c.npods = r->neps;
	lean.pods = r->locals;
	lean.npods = r->neps;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (compiler_sync_changes(r->c, &lean, &c, r->eps, r->neps, r->nodes, r->nnodes, r->ids, 0,
				  NULL, err, sizeof(err))) {
		fprintf(stderr, "sync: %s\n", err);
		return -1;
	}
	return ms_since(&t0);
}

static void report(const char *what, size_t n, double *v, size_t k)
{
	double first = v[0];

	qsort(v, k, sizeof(*v), cmp_double);
	printf("%7zu pods: %-44s first %6.2f, median %6.2f, largest %6.2f ms\n", n, what, first,
	       v[k / 2], v[k - 1]);
}

static int run_size(size_t n)
{
	size_t nns = n / 100 > 2 ? n / 100 : 2, nnodes = nns, npol = n / 10, ops = 0;
	size_t regular = n - SPREAD - CNI - 1, np = 0, *used = calloc(nnodes, sizeof(size_t));
	struct compile_maps maps = { .update = count_update, .del = count_del, .ctx = &ops };
	struct pol_pod *pods = calloc(n + FRESH, sizeof(*pods));
	const struct pol_pod **podp = calloc(n + FRESH, sizeof(*podp));
	struct pol_namespace *ns = calloc(nns, sizeof(*ns));
	const struct pol_namespace **nsp = calloc(nns, sizeof(*nsp));
	struct pol_ns_ref *nsidx = calloc(nns, sizeof(*nsidx));
	struct pol_policy **pol = calloc(npol, sizeof(*pol));
	struct pol_pod *stand = calloc(SPREAD + CNI + FRESH, sizeof(*stand));
	struct compile_changes all = { .all = true };
	struct run r = { 0 };
	double t[SPREAD + CNI + FRESH];
	char name[64], lbl[128], err[512];
	uint32_t router;
	int ret = 1;

	r.locals = calloc(SPREAD + CNI + FRESH, sizeof(*r.locals));
	r.eps = calloc(SPREAD + CNI + FRESH, sizeof(*r.eps));
	r.nodes = calloc(nnodes, sizeof(*r.nodes));
	if (!used || !pods || !podp || !ns || !nsp || !nsidx || !pol || !stand || !r.locals ||
	    !r.eps || !r.nodes)
		return 1;
	for (int m = 0; m < CMAP_N; m++)
		maps.cap[m] = 1u << 26;
	if (identities_open(&r.ids, NULL, err, sizeof(err)) ||
	    compiler_open_maps(&r.c, &maps, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	for (size_t i = 0; i < nns; i++) {
		snprintf(name, sizeof(name), "ns%zu", i);
		snprintf(lbl, sizeof(lbl), "{\"team\":\"t%zu\"}", i % 3);
		ns[i].name = strdup(name);
		if (!ns[i].name || labels(&ns[i].labels, lbl))
			return 1;
		nsp[i] = &ns[i];
	}
	for (size_t k = 1; k < nnodes; k++)
		r.nodes[r.nnodes++] = (struct compile_node){
			.pod_cidr = { .net = node_ip(k, 0), .prefix = 24 },
			.ip = (192u << 24) | (168u << 16) | (uint32_t)(k / 250) << 8 |
			      (uint32_t)(10 + k % 240) };
	/* The cni pods first: their stand-ins are made from them. */
	for (size_t j = 0; j < CNI; j++) {
		snprintf(name, sizeof(name), "cni%zu", j);
		if (make_pod(&pods[np++], "ns0", name, 0, "{\"app\":\"a0\",\"tier\":\"t1\"}"))
			return 1;
	}
	for (size_t j = 0; j < SPREAD; j++) {
		char nsn[32];

		snprintf(name, sizeof(name), "local%zu", j);
		snprintf(nsn, sizeof(nsn), "ns%zu", j % nns);
		snprintf(lbl, sizeof(lbl), "{\"app\":\"a%zu\",\"tier\":\"t%zu\"}", j % 50, j % 4);
		if (make_pod(&pods[np++], nsn, name, node_ip(0, 100 + j), lbl))
			return 1;
	}
	if (make_pod(&pods[np++], "ns0", "probe", node_ip(1, 250),
		     "{\"app\":\"probe\",\"tier\":\"t0\"}"))
		return 1;
	for (size_t i = 0; i < regular; i++) {
		size_t node = 1 + i % (nnodes - 1);
		char nsn[32];

		used[node]++;
		snprintf(name, sizeof(name), "p%zu", i);
		snprintf(nsn, sizeof(nsn), "ns%zu", i % nns);
		snprintf(lbl, sizeof(lbl), "{\"app\":\"a%zu\",\"tier\":\"t%zu\"}", i % 50, i % 4);
		if (make_pod(&pods[np++], nsn, name, node_ip(node, used[node] % 254 + 1), lbl))
			return 1;
	}
	for (size_t k = 0; k < npol; k++) {
		char buf[1024];
		json_t *o;

		snprintf(buf, sizeof(buf),
			 "{\"apiVersion\":\"networking.k8s.io/v1\",\"kind\":\"NetworkPolicy\","
			 "\"metadata\":{\"namespace\":\"ns%zu\",\"name\":\"np%zu\"},\"spec\":{"
			 "\"podSelector\":{\"matchLabels\":{\"app\":\"a%zu\"}},"
			 "\"ingress\":[{\"from\":["
			 "{\"podSelector\":{\"matchLabels\":{\"tier\":\"t%zu\"}}},"
			 "{\"namespaceSelector\":{\"matchLabels\":{\"team\":\"t%zu\"}}},"
			 "{\"ipBlock\":{\"cidr\":\"172.16.%zu.0/24\",\"except\":[\"172.16.%zu.128/25\"]}}],"
			 "\"ports\":[{\"port\":80,\"protocol\":\"TCP\"}]}]}}",
			 k % nns, k, k % 50, k % 4, 1 + k % 2, k % 256, k % 256);
		o = json_loads(buf, 0, NULL);
		if (!o || pol_parse(o, &pol[k], err, sizeof(err))) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
		json_decref(o);
	}
	for (size_t i = 0; i < np; i++)
		podp[i] = &pods[i];
	r.w = (struct pol_world){ .nns = nns, .ns = nsp, .npods = np, .pods = podp, .npol = npol,
				  .pol = (const struct pol_policy *const *)pol };
	pol_world_index_ns(&r.w, nsidx);
	router = node_ip(0, 1);
	r.router = router;
	r.w.node_ips = &r.router;
	r.w.nnode_ips = 1;
	if (compiler_sync_changes(r.c, &r.w, &all, NULL, 0, r.nodes, r.nnodes, r.ids, 0, NULL, err,
				  sizeof(err))) {
		fprintf(stderr, "first sync: %s\n", err);
		return 1;
	}

	/* The benchmark's ADDs: the cni pods, in ns0. */
	for (size_t j = 0; j < CNI; j++) {
		stand[j] = pods[j];
		stand[j].ip = node_ip(0, 2 + j);
		r.locals[j] = &stand[j];
		r.eps[j] = (struct compile_ep){ .ip = stand[j].ip, .ifindex = 100 + (int)j,
						.pod = &stand[j] };
		if ((t[j] = add_one(&r)) < 0)
			goto out;
	}
	report("ADD of the cni pods (ns0, one label set)", n, t, CNI);

	/* Endpoints of the pods local0..: policies of 50 namespaces in the
	 * selector cache. */
	for (size_t j = 0; j < SPREAD; j++) {
		size_t e = CNI + j;

		stand[e] = pods[CNI + j];
		r.locals[e] = &stand[e];
		r.eps[e] = (struct compile_ep){ .ip = stand[e].ip, .ifindex = 100 + (int)e,
						.pod = &stand[e] };
		if ((t[j] = add_one(&r)) < 0)
			goto out;
	}
	report("ADD of a pod in each of 50 namespaces", n, t, SPREAD);

	/* Pods of a label set new to the cluster (a new group), in those
	 * namespaces: added to the world (as the Pod's event would), then
	 * attached. */
	for (size_t j = 0; j < FRESH; j++) {
		size_t e = CNI + SPREAD + j;
		char nsn[32];
		struct compile_pod_change pc;
		struct compile_changes one = { .pods = &pc, .npods = 1, .lean = true };
		struct pol_world lean = r.w;

		snprintf(name, sizeof(name), "fresh%zu", j);
		snprintf(nsn, sizeof(nsn), "ns%zu", j % nns);
		snprintf(lbl, sizeof(lbl), "{\"app\":\"a%zu\",\"tier\":\"t%zu\",\"v\":\"%zu\"}",
			 j % 50, j % 4, j);
		if (make_pod(&pods[np], nsn, name, 0, lbl))
			return 1;
		podp[np] = &pods[np];
		/* the Pod's event (no address yet): a group born */
		pc = (struct compile_pod_change){ .ns = pods[np].ns, .name = pods[np].name,
						  .pod = &pods[np] };
		lean.pods = r.locals;
		lean.npods = r.neps;
		if (compiler_sync_changes(r.c, &lean, &one, r.eps, r.neps, r.nodes, r.nnodes, r.ids, 0,
					  NULL, err, sizeof(err))) {
			fprintf(stderr, "%s\n", err);
			goto out;
		}
		stand[e] = pods[np];
		stand[e].ip = node_ip(0, 200 + j);
		np++;
		r.w.npods = np;
		r.locals[e] = &stand[e];
		r.eps[e] = (struct compile_ep){ .ip = stand[e].ip, .ifindex = 100 + (int)e,
						.pod = &stand[e] };
		if ((t[j] = add_one(&r)) < 0)
			goto out;
	}
	report("ADD of a pod with a new label set", n, t, FRESH);
	{
		struct compile_counts cc;

		compiler_counts(r.c, &cc);
		printf("%7zu pods: %zu groups, %zu selector cache entries, %zu incremental syncs\n",
		       n, cc.groups, cc.selector_cache, cc.incremental);
	}
	ret = 0;
out:
	compiler_close(r.c);
	identities_close(r.ids);
	return ret;
}

int main(int argc, char **argv)
{
	log_init("bench-compile-add", LOG_WARN);
	if (argc < 2)
		return run_size(1000) || run_size(100000);
	for (int i = 1; i < argc; i++)
		if (run_size(strtoul(argv[i], NULL, 10)))
			return 1;
	return 0;
}
