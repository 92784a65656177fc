// SPDX-License-Identifier: Apache-2.0
/*
 * The flow buffer's lookups in the agent (struct flow_resolver): who an
 * address is (pods of every node, nodes, the world), which policy a rule
 * reference names (the compiler's numbering), which policies isolate a
 * local endpoint, which Service a frontend is.
 *
 * A snapshot of the store's view is taken when a record arrives after a
 * policy or Services sync (the store may have changed; its view borrows
 * from it, so the snapshot copies what it keeps): records between two
 * syncs cost a binary search each.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowres.h"
#include "reconcile.h"

struct res_pod {
	uint32_t ip;
	char *ns, *name, *labels, *node;
	/* Local pods: the policies isolating it, per direction (SLUICE_DIR_*). */
	struct flow_pol *iso[2];
	size_t niso[2];
};

struct res_node {
	uint32_t ip;
	char *name;
};

struct res_fe {
	uint32_t ip;		/* 0: a nodePort (this node's addresses) */
	uint16_t port;
	uint8_t proto;
	char *ns, *name;
};

struct flowres {
	struct agent *a;
	unsigned long long gen;	/* policy_syncs + services_syncs of the snapshot */
	bool have;
	struct res_pod *pods;	/* by ip */
	size_t npods;
	struct res_node *nodes;
	size_t nnodes;
	struct res_fe *fes;
	size_t nfes;
	char buf[160];		/* a label identity's namespace */
};

static const char *kind_name(enum pol_kind k)
{
	return k == POL_K8S ? "NetworkPolicy" : k == POL_SLUICE ? "SluiceNetworkPolicy"
								: "SluiceClusterNetworkPolicy";
}

static void snapshot_free(struct flowres *r)
{
	for (size_t i = 0; i < r->npods; i++) {
		struct res_pod *p = &r->pods[i];

		free(p->ns);
		free(p->name);
		free(p->labels);
		free(p->node);
		for (int d = 0; d < 2; d++) {
			for (size_t k = 0; k < p->niso[d]; k++) {
				free((char *)p->iso[d][k].ns);
				free((char *)p->iso[d][k].name);
			}
			free(p->iso[d]);
		}
	}
	free(r->pods);
	for (size_t i = 0; i < r->nnodes; i++)
		free(r->nodes[i].name);
	free(r->nodes);
	for (size_t i = 0; i < r->nfes; i++) {
		free(r->fes[i].ns);
		free(r->fes[i].name);
	}
	free(r->fes);
	r->pods = NULL;
	r->nodes = NULL;
	r->fes = NULL;
	r->npods = r->nnodes = r->nfes = 0;
}

static char *labels_text(const struct pol_labels *l)
{
	size_t len = 1;
	char *s, *p;

	for (size_t i = 0; i < l->n; i++)
		len += strlen(l->v[i].key) + strlen(l->v[i].value) + 2;
	s = p = malloc(len);
	if (!s)
		return NULL;
	*p = '\0';
	for (size_t i = 0; i < l->n; i++)
		p += sprintf(p, "%s%s=%s", i ? "," : "", l->v[i].key, l->v[i].value);
	return s;
}

static int cmp_pod(const void *x, const void *y)
{
	const struct res_pod *a = x, *b = y;

	return a->ip < b->ip ? -1 : a->ip > b->ip;
}

/* The policies that isolate pod in each direction: the enforcing ones,
 * else (only Audit ones select it) the Audit ones. */
static int isolation(struct res_pod *rp, const struct store_view *v, const struct pol_pod *pod)
{
	for (int d = 0; d < 2; d++) {
		bool ingress = d == SLUICE_DIR_INGRESS;

		for (int audit = 0; audit < 2 && !rp->niso[d]; audit++)
			for (size_t i = 0; i < v->w.npol; i++) {
				const struct pol_policy *p = v->w.pol[i];
				struct flow_pol *n;

				if (p->audit != (bool)audit || !(ingress ? p->ingress : p->egress) ||
				    !pol_selects_pod(p, &v->w, pod))
					continue;
				n = realloc(rp->iso[d], (rp->niso[d] + 1) * sizeof(*n));
				if (!n)
					return -ENOMEM;
				rp->iso[d] = n;
				n[rp->niso[d]] = (struct flow_pol){
					.kind = kind_name(p->kind), .rule = -1,
					.ns = p->ns ? strdup(p->ns) : NULL, .name = strdup(p->name),
				};
				rp->niso[d]++;
				if (!n[rp->niso[d] - 1].name)
					return -ENOMEM;
			}
	}
	return 0;
}

static int snapshot(struct flowres *r)
{
	struct agent *a = r->a;
	struct store_view v = { 0 };
	struct svc_view sv = { 0 };
	struct store_local *locals = NULL;
	size_t nlocals = 0;
	uint32_t node_ips[2];
	int ret;

	snapshot_free(r);
	ret = agent_view_build(a, &v, &locals, &nlocals, node_ips);
	if (ret)
		return ret;
	ret = -ENOMEM;
	r->pods = calloc(v.w.npods + 1, sizeof(*r->pods));
	r->nodes = calloc(v.nnodes + 2, sizeof(*r->nodes));
	if (!r->pods || !r->nodes)
		goto cleanup;
	for (size_t i = 0; i < v.w.npods; i++) {
		const struct pol_pod *p = v.w.pods[i];
		struct res_pod *rp = &r->pods[r->npods];
		const char *node = NULL;

		if (!p->ip)
			continue;
		r->npods++;
		rp->ip = p->ip;
		rp->ns = strdup(p->ns);
		rp->name = strdup(p->name);
		rp->labels = labels_text(&p->labels);
		if (v.pod_local && v.pod_local[i])
			node = a->node_name;
		for (size_t n = 0; !node && n < v.nnodes; n++)
			if (v.nodes[n]->has_pod_cidr && cidr4_contains(&v.nodes[n]->pod_cidr, p->ip))
				node = v.nodes[n]->name;
		rp->node = node ? strdup(node) : NULL;
		if (!rp->ns || !rp->name || !rp->labels || (node && !rp->node))
			goto cleanup;
		if (v.pod_local && v.pod_local[i] && isolation(rp, &v, p))
			goto cleanup;
	}
	qsort(r->pods, r->npods, sizeof(*r->pods), cmp_pod);
	r->nodes[r->nnodes++] = (struct res_node){ node_ips[0], strdup(a->node_name) };
	if (a->net && a->net->node_ip)
		r->nodes[r->nnodes++] = (struct res_node){ a->net->node_ip, strdup(a->node_name) };
	for (size_t n = 0; n < v.nnodes; n++)
		if (v.nodes[n]->ip && strcmp(v.nodes[n]->name, a->node_name))
			r->nodes[r->nnodes++] = (struct res_node){ v.nodes[n]->ip,
								   strdup(v.nodes[n]->name) };
	for (size_t n = 0; n < r->nnodes; n++)
		if (!r->nodes[n].name)
			goto cleanup;
	if (!store_services_view(a->store, a->node_name, false, &sv)) {
		size_t total = 0;

		for (size_t i = 0; i < sv.n; i++)
			total += sv.v[i].nfrontends;
		r->fes = calloc(total + 1, sizeof(*r->fes));
		if (!r->fes)
			goto cleanup;
		for (size_t i = 0; i < sv.n; i++)
			for (size_t f = 0; f < sv.v[i].nfrontends; f++) {
				const struct svc_frontend *x = &sv.v[i].frontends[f];
				struct res_fe *fe = &r->fes[r->nfes++];

				*fe = (struct res_fe){ x->kind == SVC_FE_NODE_PORT ? 0 : x->ip, x->port,
						       x->proto, strdup(sv.v[i].ns),
						       strdup(sv.v[i].name) };
				if (!fe->ns || !fe->name)
					goto cleanup;
			}
	}
	ret = 0;
cleanup:
	svc_view_free(&sv);
	store_view_free(&v);
	free(locals);
	if (ret)
		snapshot_free(r);
	return ret;
}

static void fresh(struct flowres *r)
{
	unsigned long long gen = r->a->policy_syncs + r->a->services_syncs;

	if (r->have && gen == r->gen)
		return;
	r->have = !snapshot(r);
	r->gen = gen;
}

static const struct res_pod *pod_of(const struct flowres *r, uint32_t ip)
{
	size_t lo = 0, hi = r->npods;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (r->pods[mid].ip < ip)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < r->npods && r->pods[lo].ip == ip ? &r->pods[lo] : NULL;
}

static void peer(void *ctx, uint32_t ip, uint32_t identity, struct flow_who *out)
{
	struct flowres *r = ctx;
	const struct res_pod *p;
	const struct pol_pod *ip_pod;

	fresh(r);
	memset(out, 0, sizeof(*out));
	p = pod_of(r, ip);
	if (p) {
		*out = (struct flow_who){ "pod", p->ns, p->name, p->labels, p->node };
		return;
	}
	for (size_t n = 0; n < r->nnodes; n++)
		if (r->nodes[n].ip == ip) {
			*out = (struct flow_who){ .kind = "node", .node = r->nodes[n].name };
			return;
		}
	if (identity == SLUICE_ID_HOST) {
		*out = (struct flow_who){ .kind = "node", .node = r->a->node_name };
	} else if (identity >= SLUICE_ID_FIRST_CIDR && identity < SLUICE_ID_END_CIDR) {
		out->kind = "cidr";
	} else if (identity >= SLUICE_ID_FIRST_LABEL && identity < SLUICE_ID_FIRST_CIDR &&
		   r->a->compiler && compiler_identity_pods(r->a->compiler, identity) &&
		   (ip_pod = compiler_identity_pod(r->a->compiler, identity, 0))) {
		/* An address the snapshot does not know with a label identity:
		 * the identity's namespace (its labels are its pods'). */
		snprintf(r->buf, sizeof(r->buf), "%s", ip_pod->ns);
		*out = (struct flow_who){ .kind = "pod", .ns = r->buf };
	} else {
		out->kind = identity == SLUICE_ID_UNKNOWN ? "unknown" : "world";
	}
}

static bool policy(void *ctx, uint32_t ref, struct flow_pol *out)
{
	struct flowres *r = ctx;
	unsigned rule = 0;
	const struct compile_polref *p = compiler_policy_ref(r->a->compiler, ref, &rule);

	if (!p)
		return false;
	*out = (struct flow_pol){ kind_name(p->kind), p->ns, p->name, (int)rule };
	return true;
}

static size_t iso_of(void *ctx, uint32_t ip, int dir, struct flow_pol *out, size_t max)
{
	struct flowres *r = ctx;
	const struct res_pod *p;

	fresh(r);
	p = pod_of(r, ip);
	if (!p || dir < 0 || dir > 1)
		return 0;
	for (size_t i = 0; i < p->niso[dir] && i < max; i++)
		out[i] = p->iso[dir][i];
	return p->niso[dir];
}

static bool service(void *ctx, uint32_t ip, uint16_t port, uint8_t proto, const char **ns,
		    const char **name)
{
	struct flowres *r = ctx;
	uint32_t node_ip = r->a->net ? r->a->net->node_ip : 0;

	fresh(r);
	for (size_t i = 0; i < r->nfes; i++) {
		const struct res_fe *f = &r->fes[i];

		if (f->port == port && f->proto == proto &&
		    (f->ip ? f->ip == ip : node_ip && ip == node_ip)) {
			*ns = f->ns;
			*name = f->name;
			return true;
		}
	}
	return false;
}

int flowres_open(struct flowres **out, struct agent *a, struct flow_resolver *res)
{
	struct flowres *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->a = a;
	*res = (struct flow_resolver){ r, peer, policy, iso_of, service };
	*out = r;
	return 0;
}

void flowres_close(struct flowres *r)
{
	if (!r)
		return;
	snapshot_free(r);
	free(r);
}
