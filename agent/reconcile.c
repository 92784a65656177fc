// SPDX-License-Identifier: Apache-2.0
/*
 * The reconcile step: from the store's objects and this node's endpoints to
 * the world view, through the policy compiler to the maps, and on to the
 * other nodes' routes. The API server, the Kubernetes event loop and start-up
 * all call agent_policy_sync after a change.
 */
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <poll.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bandwidth.h"
#include "flows.h"
#include "log.h"
#include "reconcile.h"

/*
 * Another node's pod went, or its address went to another pod: this node's
 * connection-tracking, NAT and fragment entries of the address belong to
 * the old pod, and a new holder of the address must not inherit them (a
 * tracked flow a pod here started to the old pod would take the new one's
 * packets as replies, past this pod's ingress policy). The pod's own node
 * purges its side at DEL; this purges every other node's. Addresses of
 * pods that went while this agent was not running are not caught here:
 * their entries expire by their timeouts.
 */
static void purge_gone_holders(struct agent *a)
{
	struct flows_purge_stats st = { 0 };
	const uint32_t *gone;
	size_t ngone = compiler_gone_ips(a->compiler, &gone);
	uint32_t *ips;
	char err[256];

	if (!ngone)
		return;
	ips = malloc(ngone * sizeof(*ips));	/* sorted in place by the purge */
	if (!ips) {
		pr_warn("cannot remove the flows of %zu address(es) of other nodes' pods that "
			"went: out of memory", ngone);
		return;
	}
	memcpy(ips, gone, ngone * sizeof(*ips));
	if (flows_purge_addrs(a->dp, ips, ngone, &st, err, sizeof(err)))
		pr_warn("cannot remove the flows of %zu address(es) of other nodes' pods that "
			"went: %s", ngone, err);
	else if (st.removed)
		pr_info("removed %zu flow entries of %zu address(es) of other nodes' pods that "
			"went or changed hands", st.removed, ngone);
	free(ips);
}

/* The pods this node runs, for the store's view. Names borrowed from the
 * endpoints; valid until the next ADD, DEL or GC. */
struct store_local *agent_local_pods(struct agent *a, size_t *n)
{
	size_t count = endpoints_count(a->eps), k = 0;
	struct store_local *l = calloc(count + 1, sizeof(*l));

	for (size_t i = 0; l && i < count; i++) {
		const struct endpoint *ep = endpoints_at(a->eps, i);

		if (ep->state != EP_READY)
			continue;
		l[k].ns = ep->k8s_namespace[0] ? ep->k8s_namespace : "default";
		l[k].name = ep->k8s_pod[0] ? ep->k8s_pod : ep->container_id;
		l[k].ip = ep->ip;
		l[k].need_object = a->kube != NULL;
		k++;
	}
	*n = k;
	return l;
}

/* Build the store's view of the world, with this node's pods and its own
 * addresses: the router address and the node's address on its device (what
 * kubelet's probes and kube-proxy's masquerade come from). */
static int view_build(struct agent *a, bool lean, struct store_view *v,
		      struct store_local **locals, size_t *nlocals, uint32_t node_ips[2])
{
	size_t n = 0;

	node_ips[n++] = ipam_router(a->ipam);
	if (a->net && a->net->node_ip && a->net->node_ip != node_ips[0])
		node_ips[n++] = a->net->node_ip;
	*locals = agent_local_pods(a, nlocals);
	if (!*locals)
		return -ENOMEM;
	if ((lean ? store_view_build_lean : store_view_build)(a->store, *locals, *nlocals,
							      node_ips, n, v)) {
		free(*locals);
		*locals = NULL;
		return -ENOMEM;
	}
	return 0;
}

int agent_view_build(struct agent *a, struct store_view *v, struct store_local **locals,
		     size_t *nlocals, uint32_t node_ips[2])
{
	return view_build(a, false, v, locals, nlocals, node_ips);
}

int agent_view_build_lean(struct agent *a, struct store_view *v, struct store_local **locals,
			  size_t *nlocals, uint32_t node_ips[2])
{
	return view_build(a, true, v, locals, nlocals, node_ips);
}

/* The other nodes that have a pod CIDR and an address. */
static struct compile_node *remote_nodes(struct agent *a, const struct store_view *v, size_t *n)
{
	struct compile_node *r = calloc(v->nnodes + 1, sizeof(*r));

	*n = 0;
	for (size_t i = 0; r && i < v->nnodes; i++) {
		const struct store_node *sn = v->nodes[i];

		/* A refused Node (store.c nodes_check) gets no route, no tunnel
		 * and no ipcache entry: its range could hijack pods' or nodes'
		 * addresses. */
		if (!strcmp(sn->name, a->node_name) || !sn->has_pod_cidr || !sn->ip || sn->refused)
			continue;
		r[(*n)++] = (struct compile_node){ .pod_cidr = sn->pod_cidr, .ip = sn->ip };
	}
	return r;
}

/* CLOCK_MONOTONIC in milliseconds, with fractions. */
static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* "ns\0name" keys, to sort and compare locals by. */
static int cmp_key(const void *a, const void *b)
{
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;
	int c = strcmp(x, y);

	return c ? c : strcmp(x + strlen(x) + 1, y + strlen(y) + 1);
}

/* A pod by namespace and name against a "ns\0name" key: the change log's
 * pods are looked up among the locals without making a key of each. */
struct pod_name {
	const char *ns, *name;
};

static int cmp_name_key(const void *a, const void *b)
{
	const struct pod_name *x = a;
	const char *y = *(const char *const *)b;
	int c = strcmp(x->ns, y);

	return c ? c : strcmp(x->name, y + strlen(y) + 1);
}

static char *local_key(const char *ns, const char *name)
{
	size_t a = strlen(ns), b = strlen(name);
	char *k = malloc(a + b + 2);

	if (k) {
		memcpy(k, ns, a + 1);
		memcpy(k + a + 1, name, b + 1);
	}
	return k;
}

static void keys_free(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

/*
 * What changed since the last sync, for compiler_sync_changes: the store's
 * change log (pods, policies, namespaces), every local pod (their stand-ins
 * carry the endpoint's address, and there are few), and the pods that
 * stopped being local. *keys: this sync's locals, sorted, for the next.
 */
struct sync_changes {
	struct compile_changes ch;
	struct compile_pod_change *pods;
	struct compile_policy_ref *pols;
	struct store_change *log;
	size_t nlog;
	char **keys;
	size_t nkeys;
};

static void sync_changes_free(struct sync_changes *x)
{
	free(x->pods);
	free(x->pols);
	store_changes_free(x->log, x->nlog);
	keys_free(x->keys, x->nkeys);
	memset(x, 0, sizeof(*x));
}

static int sync_changes_take(struct agent *a, const struct store_local *locals, size_t nlocals,
			     struct sync_changes *x)
{
	bool all = store_changes_take(a->store, &x->log, &x->nlog) || a->compile_all;
	size_t np = 0, nq = 0, j = 0;

	x->ch.all = all;
	x->keys = calloc(nlocals + 1, sizeof(*x->keys));
	x->pods = calloc(x->nlog + nlocals + a->nprev_locals + 1, sizeof(*x->pods));
	x->pols = calloc(x->nlog + 1, sizeof(*x->pols));
	if (!x->keys || !x->pods || !x->pols)
		return -ENOMEM;
	for (size_t i = 0; i < nlocals; i++) {
		x->keys[i] = local_key(locals[i].ns, locals[i].name);
		if (!x->keys[i])
			return -ENOMEM;
		x->nkeys++;
	}
	qsort(x->keys, x->nkeys, sizeof(*x->keys), cmp_key);
	for (size_t i = 0; i < x->nlog; i++) {
		const struct store_change *c = &x->log[i];

		if (c->kind == STORE_K_SERVICE || c->kind == STORE_K_SLICE || c->kind == STORE_K_NODE)
			a->services_dirty = true;
		if (c->kind == STORE_K_PREFILTER || c->kind == STORE_K_NODE)
			a->prefilter_dirty = true;
		if (c->kind == STORE_K_NAMESPACE)
			x->ch.namespaces = true;
		if (c->kind == STORE_K_POLICY)
			x->pols[nq++] = (struct compile_policy_ref){ .ns = *c->ns ? c->ns : NULL,
								     .name = c->name };
		if (c->kind != STORE_K_POD)
			continue;
		/* A local pod's state is its stand-in's, set below. */
		if (!bsearch(&(struct pod_name){ c->ns, c->name }, x->keys, x->nkeys,
			     sizeof(*x->keys), cmp_name_key))
			x->pods[np++] = (struct compile_pod_change){
				.ns = c->ns, .name = c->name, .pod = store_pod(a->store, c->ns, c->name) };
	}
	/* No longer local: what the store says of it now, as anyone's pod. */
	for (size_t i = 0; i < a->nprev_locals; i++) {
		const char *ns = a->prev_locals[i], *name = ns + strlen(ns) + 1;

		while (j < x->nkeys && cmp_key(&x->keys[j], &a->prev_locals[i]) < 0)
			j++;
		if (j < x->nkeys && !cmp_key(&x->keys[j], &a->prev_locals[i]))
			continue;
		x->pods[np++] = (struct compile_pod_change){ .ns = ns, .name = name,
							     .pod = store_pod(a->store, ns, name) };
	}
	for (size_t i = 0; i < nlocals; i++)
		x->pods[np++] = (struct compile_pod_change){ .ns = locals[i].ns, .name = locals[i].name,
							     .pod = locals[i].pod, .local = true };
	if (all)
		a->services_dirty = a->prefilter_dirty = true;
	x->ch.pods = x->pods;
	x->ch.npods = np;
	x->ch.policies = x->pols;
	x->ch.npolicies = nq;
	return 0;
}

static int policy_sync(struct agent *a, unsigned flags, char *err, size_t errlen, bool lean)
{
	struct compile_node *remote = NULL;
	size_t nremote = 0;
	struct compile_ep *ceps = NULL;
	struct store_local *locals = NULL;
	struct compile_stats st = { 0 };
	struct sync_changes x = { 0 };
	struct store_view v;
	size_t nlocals = 0, k = 0, npol;
	uint32_t node_ips[2];
	double t0 = now_ms(), t_view = t0;
	int ret;

	a->policy_syncs++;
	/* An incremental sync reads no pod but this node's from the view: the
	 * lean one spares a pointer to every pod (2 ms at 100 000). A rebuild,
	 * the full build and the check need them all. */
	lean = lean && !a->compile_all && !a->compile_check && !store_changes_all(a->store) &&
	       !compiler_wants_world(a->compiler);
	ret = (lean ? agent_view_build_lean : agent_view_build)(a, &v, &locals, &nlocals, node_ips);
	if (ret) {
		snprintf(err, errlen, "out of memory");
		return ret;
	}
	t_view = now_ms();
	ceps = calloc(nlocals + 1, sizeof(*ceps));
	remote = remote_nodes(a, &v, &nremote);
	if (!ceps || !remote || sync_changes_take(a, locals, nlocals, &x)) {
		ret = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto cleanup;
	}
	for (size_t i = 0; i < endpoints_count(a->eps); i++) {
		const struct endpoint *ep = endpoints_at(a->eps, i);

		if (ep->state != EP_READY)
			continue;
		ceps[k] = (struct compile_ep){ .ip = ep->ip, .ifindex = ep->host_ifindex,
					       .bw_flags = bw_ep_flags(&ep->bw), .pod = locals[k].pod };
		memcpy(ceps[k].pod_mac, ep->pod_mac, 6);
		memcpy(ceps[k].host_mac, ep->host_mac, 6);
		k++;
	}
	x.ch.lean = lean;
	ret = compiler_sync_changes(a->compiler, &v.w, &x.ch, ceps, k, remote, nremote, a->ids,
				    flags, &st, err, errlen);
	if (ret == -EAGAIN && lean) {
		/* It needs every pod: once more from all of them (the log is
		 * taken; all rebuilds the index from the store). */
		a->compile_all = true;
		sync_changes_free(&x);
		free(remote);
		free(ceps);
		store_view_free(&v);
		free(locals);
		a->policy_syncs--;
		return policy_sync(a, flags, err, errlen, false);
	}
	/* What the log said is consumed: after a failure, start over from
	 * every object (the index itself stays in line; this is cheap
	 * insurance against a change taken and not applied). */
	a->compile_all = ret != 0;
	if (!ret) {
		keys_free(a->prev_locals, a->nprev_locals);
		a->prev_locals = x.keys;
		a->nprev_locals = x.nkeys;
		x.keys = NULL;
		x.nkeys = 0;
	}
	if (!ret && a->compile_check) {
		char why[512];
		int c = compiler_check(a->compiler, &v.w, ceps, k, remote, nremote, a->ids, why,
				       sizeof(why));

		if (c < 0)
			pr_warn("compile check: skipped: out of memory");
		if (c > 0) {
			/* A difference is a bug in the incremental compiler: in
			 * this test mode the agent stops, so that no test run can
			 * pass over it. */
			pr_err("compile check: the incremental state differs from a full build: %s",
			       why);
			abort();
		}
	}
	if (!ret && a->net)
		ret = node_net_sync_routes(a->net, remote, nremote, err, errlen);
	if (!ret && a->net)
		node_net_keep_neighs(a->net, remote, nremote);
	if (!ret && a->net && a->net->masquerade)
		ret = node_net_sync_nomasq(a->net, a->dp, ipam_range(a->ipam), remote, nremote, err,
					   errlen);
	/* After the compile: an entry made from now on is judged against maps
	 * that no longer know the old holder. */
	if (!ret)
		purge_gone_holders(a);
	if (!ret)
		pr_debug("policy sync: %zu endpoints, %zu ipcache, %zu allow, %zu deny entries; "
			 "%zu updated, %zu removed in %.2f ms; view %.2f ms, whole %.2f ms",
			 st.endpoints, st.ipcache, st.allow, st.deny, st.updated, st.removed, st.ms,
			 t_view - t0, now_ms() - t0);
cleanup:
	sync_changes_free(&x);
	free(remote);
	free(ceps);
	npol = v.w.npol;
	store_view_free(&v);
	free(locals);
	a->last_policy_sync = (struct agent_sync_info){
		.at = time(NULL), .ms = now_ms() - t0,
		.entries = st.endpoints + st.ipcache + st.allow + st.deny,
		.written = st.updated, .removed = st.removed, .policies = npol,
		.failed = ret != 0 };
	prom_hist_observe(&a->metrics.policy_sync, a->last_policy_sync.ms / 1e3);
	a->metrics.policy_sync_failures += ret != 0;
	a->metrics.policy_entries_written += st.updated;
	a->metrics.policy_entries_removed += st.removed;
	if (!ret) {
		a->metrics.policy_counts_known = true;
		a->metrics.policy_allow = st.allow;
		a->metrics.policy_deny = st.deny;
		a->metrics.ipcache = st.ipcache;
	}
	return ret;
}

bool agent_changes_touch_policy(const json_t *changes)
{
	const json_t *c;
	size_t i;

	/* Services and EndpointSlices select no pod and are in no map yet:
	 * an endpoint flapping costs no policy sync. */
	json_array_foreach(changes, i, c) {
		const char *kind = json_string_value(json_object_get(c, "kind")) ?: "";

		if (strcmp(kind, "Service") && strcmp(kind, "EndpointSlice"))
			return true;
	}
	return false;
}

/* Apply what the Kubernetes watchers queued and bring the datapath in line. */
void agent_kube_apply(struct agent *a)
{
	json_t *changes = json_array(), *c;
	char err[512] = "";
	size_t i;
	int ret;

	if (!changes)
		return;
	/* Whatever a batch window held is taken now. */
	a->batch_open = false;
	ret = kube_drain(a->kube, a->store, changes);
	if (ret)
		pr_err("kubernetes: cannot apply events: %s", strerror(-ret));
	json_array_foreach(changes, i, c) {
		const char *ns = json_string_value(json_object_get(c, "namespace"));

		log_msg(json_array_size(changes) > 20 ? LOG_DEBUG : LOG_INFO, "kubernetes: %s %s%s%s %s",
			json_string_value(json_object_get(c, "kind")), ns ? ns : "",
			ns && *ns ? "/" : "", json_string_value(json_object_get(c, "name")),
			json_string_value(json_object_get(c, "action")));
	}
	if (json_array_size(changes) > 20)
		pr_info("kubernetes: %zu object(s) changed", json_array_size(changes));
	if (agent_changes_touch_policy(changes) && a->dp) {
		ret = agent_policy_sync(a, err, sizeof(err));
		if (ret)
			pr_err("kubernetes: the datapath is not in line with the objects: %s", err);
	} else if (json_array_size(changes) && a->dp) {
		ret = agent_services_sync(a, err, sizeof(err));
		if (ret)
			pr_err("kubernetes: the Service maps are not in line with the objects: %s",
			       err);
	}
	/* Events from now on wait for the window after this sync
	 * (agent_kube_wakeup). */
	if (json_array_size(changes) && a->dp)
		a->batch_due_ms = now_ms() + a->sync_batch_ms;
	ret = store_flush(a->store);
	if (ret)
		pr_warn("cannot save objects: %s", strerror(-ret));
	/* A list's transient JSON is gone now: give the freed pages back
	 * (every arena; measured with bench/kube.sh, 2000 pods: 34 -> 19 MiB
	 * private dirty). */
	if (json_array_size(changes) > 100)
		malloc_trim(0);
	json_decref(changes);
}

void agent_kube_wakeup(struct agent *a)
{
	/* After a quiet spell the events are applied at once; within
	 * sync_batch_ms of the last sync they stay queued (the store and
	 * the maps as they were, for every reader) until that time is up,
	 * and what came meanwhile is applied and synced together. A stream
	 * of events moves no deadline: one sync per window. */
	if (!a->sync_batch_ms || now_ms() >= a->batch_due_ms)
		agent_kube_apply(a);
	else
		a->batch_open = true;
}

int agent_kube_batch_timeout_ms(const struct agent *a)
{
	double left;

	if (!a->batch_open)
		return -1;
	left = a->batch_due_ms - now_ms();
	return left > 0 ? (int)left + 1 : 0;
}

void agent_wait_for_pod(struct agent *a, const char *ns, const char *name)
{
	struct timespec start, now;
	long waited = 0;

	if (!a->kube || !ns || !*ns || !name || !*name)
		return;
	clock_gettime(CLOCK_MONOTONIC, &start);
	/* The loop is the agent's only thread: keep applying the API's
	 * events while waiting, or the Pod could never arrive. */
	while (!store_has_pod(a->store, ns, name) && waited < (long)a->pod_wait_ms) {
		struct pollfd pfd = { .fd = kube_fd(a->kube), .events = POLLIN };
		int left = (int)((long)a->pod_wait_ms - waited);

		if (poll(&pfd, 1, left < 100 ? left : 100) > 0)
			agent_kube_apply(a);
		clock_gettime(CLOCK_MONOTONIC, &now);
		waited = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
	}
	if (!store_has_pod(a->store, ns, name))
		pr_warn("pod %s/%s: no Pod object from the Kubernetes API after %ld ms; it is "
			"isolated both ways until its labels are known", ns, name, waited);
	else if (waited)
		pr_debug("pod %s/%s: its Pod object arrived after %ld ms", ns, name, waited);
}

/* The host ports of the pods attached here (their endpoints: saved in the
 * state files, so a restarted agent has them again) as frontends: on the
 * hostIP, or without one on the node's address on --device (none known:
 * not programmed). *out is malloc'ed. */
static int hostports_collect(struct agent *a, struct lb_hostport **out, size_t *n)
{
	size_t neps = a->eps ? endpoints_count(a->eps) : 0, cap = 0;
	uint32_t node_ip = a->net ? a->net->node_ip : 0;

	*n = 0;
	for (size_t i = 0; i < neps; i++)
		cap += endpoints_at(a->eps, i)->nports;
	*out = calloc(cap + 1, sizeof(**out));
	if (!*out)
		return -ENOMEM;
	for (size_t i = 0; i < neps; i++) {
		const struct endpoint *ep = endpoints_at(a->eps, i);

		if (ep->state != EP_READY)
			continue;
		for (size_t p = 0; p < ep->nports; p++) {
			const struct hostport *h = &ep->ports[p];
			uint32_t fe = h->host_ip ? h->host_ip : node_ip;

			if (fe && (h->proto == IPPROTO_TCP || h->proto == IPPROTO_UDP))
				(*out)[(*n)++] = (struct lb_hostport){ .fe_ip = fe, .fe_port = h->host_port,
								       .be_ip = ep->ip,
								       .be_port = h->container_port,
								       .proto = h->proto };
		}
	}
	return 0;
}

int agent_services_sync(struct agent *a, char *err, size_t errlen)
{
	struct svc_view v = { 0 };
	struct lb_node node = { 0 };
	struct lb_hostport *hp = NULL;
	size_t nhp = 0;
	double t0 = now_ms();
	bool many;
	int ret;

	a->services_syncs++;

	if (!a->dp)
		return 0;
	if (a->net)
		node.node_ip = a->net->node_ip;
	if (a->ipam && ipam_range(a->ipam))
		node.pod_cidr = *ipam_range(a->ipam);
	/* Host ports are translated with the Services: both need
	 * --kube-proxy-replacement (without it, chain the portmap plugin). */
	if (a->kube_proxy_replacement && (store_services_view(a->store, a->node_name, false, &v) ||
					  hostports_collect(a, &hp, &nhp))) {
		svc_view_free(&v);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	ret = lb_sync_with(a->dp, a->kube_proxy_replacement ? &v : NULL, &node, hp, nhp,
			   &a->lb_ids, &a->lb_stats, err, errlen);
	a->last_services_sync = (struct agent_sync_info){
		.at = time(NULL), .ms = now_ms() - t0,
		.entries = a->lb_stats.frontends + a->lb_stats.ext_entries + a->lb_stats.backends,
		.written = a->lb_stats.written, .removed = a->lb_stats.deleted, .failed = ret != 0 };
	free(hp);
	/* Health checks follow the view, whatever the maps said: they only
	 * read it. */
	if (a->health)
		a->health_listeners = health_sync(a->health, a->kube_proxy_replacement ? &v : NULL,
						  &node);
	if (!ret && (a->lb_stats.written || a->lb_stats.deleted))
		pr_debug("services sync: %zu frontends, %zu backends; %zu written, %zu deleted",
			 a->lb_stats.frontends, a->lb_stats.backends, a->lb_stats.written,
			 a->lb_stats.deleted);
	many = v.n > 1000;
	svc_view_free(&v);
	/* The view and lb_sync's work grow with the Services (10 000: some
	 * 7 MB), and glibc keeps such freed memory resident: give it back
	 * (malloc_trim costs about a millisecond here). */
	if (many)
		malloc_trim(0);
	return ret;
}

/* What the Services sync takes from this node's endpoints: their host
 * ports (and the node's address they default to), as one number. */
static uint64_t hostports_sig(struct agent *a)
{
	uint64_t h = 1469598103934665603ull;
	size_t neps = a->eps ? endpoints_count(a->eps) : 0;

#define MIX(x) (h = (h ^ (uint64_t)(x)) * 1099511628211ull)
	MIX(a->net ? a->net->node_ip : 0);
	for (size_t i = 0; i < neps; i++) {
		const struct endpoint *ep = endpoints_at(a->eps, i);

		if (ep->state != EP_READY || !ep->nports)
			continue;
		MIX(ep->ip);
		for (size_t p = 0; p < ep->nports; p++) {
			MIX(ep->ports[p].host_ip);
			MIX((uint32_t)ep->ports[p].host_port << 16 | ep->ports[p].container_port);
			MIX(ep->ports[p].proto);
		}
	}
#undef MIX
	return h;
}

/*
 * The SluicePrefilter objects into the uplink's prefilter maps, for this
 * node's labels, with what no entry may lock out (prefilter_sync.c). Entries
 * that would are left out and logged: `sluicectl apply` refused them
 * already, so they come from the API or a Node that appeared since.
 */
int agent_prefilter_sync(struct agent *a, char *err, size_t errlen)
{
	const struct store_node *self = store_node(a->store, a->node_name);
	const struct pf_object **objs = NULL;
	struct pf_guards g = { 0 };
	struct pf_sync_stats st;
	bool *kube = NULL;
	const char *p;
	size_t n;
	int ret;

	if (!a->prefilter)
		return 0;
	n = store_prefilters(a->store, &objs, &kube);
	if (n == SIZE_MAX || store_prefilter_guards(a->store, &g)) {
		ret = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto cleanup;
	}
	ret = pf_sync_apply(a->prefilter, objs, kube, n, self ? &self->labels : NULL, &g, &st,
			    err, errlen);
	if (!ret) {
		a->last_prefilter_sync = st;
		a->prefilter_dirty = false;
		a->prefilter_error[0] = '\0';
		for (size_t i = 0; (p = pf_sync_problem(a->prefilter, i)); i++)
			pr_warn("prefilter: %s", p);
		pr_debug("prefilter sync: %zu prefixes, %zu written, %zu removed in %.2f ms "
			 "(compile %.2f ms)", st.prefixes, st.written, st.removed, st.ms,
			 st.compile_ms);
	} else {
		snprintf(a->prefilter_error, sizeof(a->prefilter_error), "%s", err);
	}
cleanup:
	pf_guards_free(&g);
	free(objs);
	free(kube);
	return ret;
}

static int sync_and_note(struct agent *a, unsigned flags, char *err, size_t errlen)
{
	uint64_t sig;
	int ret = policy_sync(a, flags, err, errlen, true);

	/* Services after policy: a backend's first translated packet meets
	 * the policy of the state just compiled. Only when something they use
	 * changed: a label change on a cluster of 10 000 Services cost a
	 * Services sync of them all. */
	sig = hostports_sig(a);
	if (!ret && (a->services_dirty || sig != a->hostports_sig ||
		     a->last_services_sync.failed || !a->last_services_sync.at)) {
		ret = agent_services_sync(a, err, errlen);
		if (!ret) {
			a->services_dirty = false;
			a->hostports_sig = sig;
		}
	}

	/* The prefilter does not depend on policy: a policy that does not fit
	 * keeps no prefilter change out of the maps, except when the explicit
	 * change is about to be undone. */
	if (a->prefilter_dirty && (!ret || !(flags & COMPILE_STRICT))) {
		char why[512];
		int r = agent_prefilter_sync(a, why, sizeof(why));

		if (r && !ret) {
			ret = r;
			snprintf(err, errlen, "%s", why);
		}
	}

	/* A refused explicit change leaves the previous state in force: that
	 * is no lasting failure of the node. */
	if (!ret)
		a->sync_error[0] = '\0';
	else if (!(flags & COMPILE_STRICT))
		snprintf(a->sync_error, sizeof(a->sync_error), "%s", err);
	return ret;
}

int agent_policy_sync(struct agent *a, char *err, size_t errlen)
{
	return sync_and_note(a, 0, err, errlen);
}

int agent_policy_sync_strict(struct agent *a, char *err, size_t errlen)
{
	return sync_and_note(a, COMPILE_STRICT, err, errlen);
}

json_t *agent_policy_status_json(struct agent *a)
{
	const struct compile_excluded *ex;
	size_t n = a->compiler ? compiler_excluded(a->compiler, &ex) : 0;
	json_t *arr = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, json_pack("{s:s, s:s}", "object", ex[i].object, "reason",
						     ex[i].why));
	return json_pack("{s:o, s:s?}", "notEnforced", arr, "lastSyncError",
			 a->sync_error[0] ? a->sync_error : NULL);
}

const char *agent_policy_not_enforced(struct agent *a, const char *object)
{
	const struct compile_excluded *ex;
	size_t n = a->compiler ? compiler_excluded(a->compiler, &ex) : 0;

	for (size_t i = 0; i < n; i++)
		if (!strcmp(ex[i].object, object))
			return ex[i].why;
	return NULL;
}
