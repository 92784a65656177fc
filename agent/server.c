// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <malloc.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <netinet/in.h>

#include "api.h"
#include "cidr.h"
#include "delq.h"
#include "describe.h"
#include "kschema.h"
#include "log.h"
#include "page.h"
#include "reconcile.h"
#include "server.h"
#include "sluice_version.h"
#include "version.h"

/* Requests larger than this (bytes) are followed by malloc_trim. */
#define API_TRIM_AFTER (64u << 10)

int api_check_socket_dirs(const char *path, char *err, size_t errlen)
{
	int fd = delq_open(path, "or pass --socket in one", err, errlen);

	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

int api_listen(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	mode_t old_umask;
	int fd, probe, ret;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "socket path %s is longer than %zu bytes", path,
			 sizeof(sun.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	strcpy(sun.sun_path, path);
	ret = api_check_socket_dirs(path, err, errlen);
	if (ret)
		return ret;
	/* A socket file nobody answers on is left over from a dead agent. */
	probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe >= 0 && !connect(probe, (struct sockaddr *)&sun, sizeof(sun))) {
		close(probe);
		snprintf(err, errlen, "another sluice-agent is serving %s; stop it or pass --socket",
			 path);
		return -EADDRINUSE;
	}
	if (probe >= 0)
		close(probe);
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return ret;
	}
	old_umask = umask(0177);
	ret = bind(fd, (struct sockaddr *)&sun, sizeof(sun)) ? -errno : 0;
	umask(old_umask);
	if (!ret && chmod(path, 0600))
		ret = -errno;
	if (!ret && listen(fd, 128))
		ret = -errno;
	if (ret) {
		snprintf(err, errlen, "cannot listen on %s: %s", path, strerror(-ret));
		close(fd);
		return ret;
	}
	return fd;
}

static json_t *ok(json_t *result)
{
	return json_pack("{s:b, s:o}", "ok", 1, "result", result ? result : json_object());
}

/* kB of a "Name:   123 kB" line of /proc/self/status, as bytes; -1 when
 * it cannot be read. */
static json_int_t proc_status_bytes(const char *name)
{
	FILE *f = fopen("/proc/self/status", "re");
	size_t nl = strlen(name);
	json_int_t bytes = -1;
	char line[256];

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, name, nl) && line[nl] == ':') {
			bytes = strtoll(line + nl + 1, NULL, 10) * 1024;
			break;
		}
	fclose(f);
	return bytes;
}

static json_t *sync_json(const struct agent_sync_info *si)
{
	char at[32];
	time_t t = (time_t)si->at;
	struct tm tm;

	if (!si->at)
		return json_null();
	strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
	return json_pack("{s:s, s:f, s:I, s:I, s:I, s:b}", "at", at, "durationMs",
			 (double)(long long)(si->ms * 100 + 0.5) / 100, "entries",
			 (json_int_t)si->entries, "written", (json_int_t)si->written, "removed",
			 (json_int_t)si->removed, "ok", !si->failed);
}

/* What the control plane holds and costs: objects per kind and the bytes
 * the store keeps of them, the agent's resident memory (now and at its
 * peak), and the last policy and Services syncs. */
static json_t *control_plane_json(struct agent *a)
{
	json_t *counts = store_counts_json(a->store), *res;

	res = json_pack("{s:O?, s:I, s:I, s:{s:I, s:I}, s:o, s:o, s:I, s:I, s:I}", "objects",
			 json_object_get(counts, "kinds"), "objectCount",
			 json_integer_value(json_object_get(counts, "objects")), "storeBytes",
			 json_integer_value(json_object_get(counts, "bytes")), "memory",
			 "vmRSS", proc_status_bytes("VmRSS"), "vmHWM", proc_status_bytes("VmHWM"),
			 "lastPolicySync", sync_json(&a->last_policy_sync), "lastServicesSync",
			 sync_json(&a->last_services_sync), "policySyncs", (json_int_t)a->policy_syncs,
			 "servicesSyncs", (json_int_t)a->services_syncs, "syncBatchMs",
			 (json_int_t)a->sync_batch_ms);
	json_decref(counts);
	if (res) {
		/* The heap as malloc sees it (every arena): in use, and held
		 * free; RSS above their sum is code, stacks and maps. */
		struct mallinfo2 mi = mallinfo2();

		json_object_set_new(json_object_get(res, "memory"), "heapInUse",
				    json_integer((json_int_t)mi.uordblks + (json_int_t)mi.hblkhd));
		json_object_set_new(json_object_get(res, "memory"), "heapFree",
				    json_integer((json_int_t)mi.fordblks));
	}
	if (res && a->compiler) {
		struct compile_counts cc;

		compiler_counts(a->compiler, &cc);
		/* How the policy syncs ran: incremental, or the full build
		 * (first sync, left-out policies), and what the index holds. */
		json_object_set_new(res, "compiler",
				    json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
					      "incrementalSyncs", (json_int_t)cc.incremental,
					      "fullSyncs", (json_int_t)cc.full, "pods",
					      (json_int_t)cc.pods, "identityGroups",
					      (json_int_t)cc.groups, "selectorCacheEntries",
					      (json_int_t)cc.selector_cache, "ipBlockPrefixes",
					      (json_int_t)cc.prefixes, "endpointsBuilt",
					      (json_int_t)cc.endpoints_built, "endpointsKept",
					      (json_int_t)cc.endpoints_kept));
	}
	if (res && a->prefilter) {
		const struct pf_sync_stats *ps = &a->last_prefilter_sync;

		/* What the last prefilter sync cost (the 100 000-CIDR case). */
		json_object_set_new(res, "lastPrefilterSync",
				    json_pack("{s:I, s:I, s:I, s:f, s:f, s:s?}", "prefixes",
					      (json_int_t)ps->prefixes, "written",
					      (json_int_t)ps->written, "removed",
					      (json_int_t)ps->removed, "ms", ps->ms, "compileMs",
					      ps->compile_ms, "error",
					      a->prefilter_error[0] ? a->prefilter_error : NULL));
	}
	return res;
}

/*
 * Stage 2 of the XDP program (north-south Services, docs/XDP.md) in
 * status: the packets it sent itself (xdp-tx) and those it left to tc
 * (sluice_xdpft_v1, all causes). Counters that cannot be read count 0.
 */
static json_t *xdp_services_json(struct agent *a)
{
	struct sluice_metric m[SLUICE_METRICS_MAX], ft;
	json_int_t sent = 0, left = 0;

	if (!datapath_metrics_read(a->dp, m))
		sent = (json_int_t)m[SLUICE_METRIC_INDEX(SLUICE_XDP_TX, SLUICE_DIR_INGRESS)].packets;
	for (__u32 c = 0; c < SLUICE_XDP_FT_MAX; c++)
		if (!datapath_xdp_ft_counter(a->dp, c, &ft))
			left += (json_int_t)ft.packets;
	return json_pack("{s:I, s:I}", "sent", sent, "leftToTc", left);
}

static json_t *op_status(struct agent *a)
{
	json_t *res;
	char cidr[24], router[16];
	unsigned used, free_n;

	cidr4_format(ipam_range(a->ipam), cidr, sizeof(cidr));
	ip4_format(ipam_router(a->ipam), router, sizeof(router));
	ipam_usage(a->ipam, &used, &free_n);
	if (!a->ready)
		return api_error(CNI_ERR_NOT_AVAILABLE, "sluice-agent is starting",
				 "endpoint recovery has not finished");
	if (!free_n)
		return api_error(CNI_ERR_NOT_AVAILABLE, "pod CIDR exhausted",
				 "no free addresses are left for new pods on this node");
	if (a->kube && !kube_synced(a->kube)) {
		json_t *k = kube_status_json(a->kube), *r;
		char details[1024] = "";
		size_t i, off = 0;

		json_array_foreach(json_object_get(k, "resources"), i, r) {
			const char *e = json_string_value(json_object_get(r, "lastError"));

			if (json_is_true(json_object_get(r, "synced")) || off >= sizeof(details))
				continue;
			off += (size_t)snprintf(details + off, sizeof(details) - off, "%s%s: %s",
						off ? "; " : "",
						json_string_value(json_object_get(r, "kind")),
						e && *e ? e : "not listed yet");
		}
		json_decref(k);
		return api_error(CNI_ERR_NOT_AVAILABLE,
				 "waiting for the first list of every kind from the Kubernetes API",
				 details);
	}
	res = json_pack("{s:b, s:s, s:s, s:s, s:s, s:s, s:I, s:{s:i, s:i}, s:s}", "ready", 1,
			"node", a->node_name, "podCIDR", cidr, "routerIP", router, "attachMode",
			attach_mode_name(datapath_attach_mode(a->dp)), "routing",
			a->net ? routing_name(a->net->routing) : "native", "endpoints",
			(json_int_t)endpoints_count(a->eps), "ipam", "used", used, "free", free_n,
			"version", SLUICE_VERSION);
	if (res && a->kube)
		json_object_set_new(res, "kubernetes", kube_status_json(a->kube));
	if (res)
		json_object_set_new(res, "policy", agent_policy_status_json(a));
	/* Objects from the API sluice enforces in their fail-closed reading,
	 * and Node objects it does not route to (docs/POLICY.md). */
	if (res)
		json_object_set_new(res, "degradedPolicies",
				    json_integer((json_int_t)store_degraded(a->store)));
	if (res)
		json_object_set_new(res, "refusedNodes",
				    json_integer((json_int_t)store_refused_nodes(a->store)));
	/* Services not used (unreadable, or a frontend conflict) and
	 * EndpointSlices kept but not used (docs/SERVICES.md). */
	if (res)
		json_object_set_new(res, "refusedServices",
				    json_integer((json_int_t)store_refused_services(a->store)));
	if (res)
		json_object_set_new(res, "unusedEndpointSlices",
				    json_integer((json_int_t)store_unused_slices(a->store)));
	if (res)
		json_object_set_new(res, "controlPlane", control_plane_json(a));
	/* Per uplink device (one today): --xdp asked for, what runs, why
	 * best-effort fell back to tc (docs/XDP.md). */
	if (res) {
		json_t *xdp = json_array();

		if (a->has_xdp)
			json_array_append_new(
				xdp, json_pack("{s:s, s:s, s:s, s:s, s:b, s:s, s:o}", "device",
					       a->xdp.device, "driver", a->xdp.driver, "requested",
					       xdp_request_name(a->xdp.requested), "mode",
					       xdp_mode_name(a->xdp.mode), "active",
					       a->xdp.mode != SLUICE_XDP_MODE_OFF, "fallbackReason",
					       a->xdp.reason, "services", xdp_services_json(a)));
		json_object_set_new(res, "xdp", xdp);
	}
	/* What the Service maps held after the last sync (agent/lb.c). */
	if (res)
		json_object_set_new(res, "services",
				    json_pack("{s:b, s:I, s:I, s:I, s:o*}", "kubeProxyReplacement",
					      a->kube_proxy_replacement, "frontends",
					      (json_int_t)a->lb_stats.frontends, "backends",
					      (json_int_t)a->lb_stats.backends, "extEntries",
					      (json_int_t)a->lb_stats.ext_entries, "healthChecks",
					      health_status_json(a->health)));
	/* The start-up replay of the DELs queued while no agent ran. */
	if (res)
		json_object_set_new(res, "delQueue",
				    json_pack("{s:i, s:i, s:i}", "replayed", (int)a->delq.replayed,
					      "failed", (int)a->delq.failed, "malformed",
					      (int)a->delq.malformed));
	/* What the CNI configuration chains after sluice-cni that the
	 * operator should know about (cnichain.h). */
	if (res)
		json_object_set_new(res, "conditions",
				    a->cnichain ? cnichain_conditions_json(
							  a->cnichain,
							  datapath_attach_mode(a->dp) == ATTACH_TC)
						: json_array());
	/* The flow buffer: its size and use, and every loss by stage. */
	if (res && a->flows)
		json_object_set_new(res, "flows", flowlog_status_json(a->flows));
	return ok(res);
}

static json_t *op_metrics(struct agent *a)
{
	struct sluice_metric m[SLUICE_METRICS_MAX], ft;
	json_t *arr, *fts;
	int ret;

	ret = datapath_metrics_read(a->dp, m);
	if (ret)
		return api_error(CNI_ERR_INTERNAL, "cannot read the metrics map", strerror(-ret));
	/* Why the XDP program's stage 2 left Service packets to tc. */
	fts = json_array();
	for (__u32 c = 0; c < SLUICE_XDP_FT_MAX; c++) {
		if (datapath_xdp_ft_counter(a->dp, c, &ft) || !ft.packets)
			continue;
		json_array_append_new(fts, json_pack("{s:s, s:I, s:I}", "cause", sluice_xdp_ft_name(c),
						     "packets", (json_int_t)ft.packets, "bytes",
						     (json_int_t)ft.bytes));
	}
	arr = json_array();
	for (__u32 r = 0; r < SLUICE_REASON_MAX; r++)
		for (__u32 d = 0; d < SLUICE_DIR_MAX; d++) {
			struct sluice_metric *v = &m[SLUICE_METRIC_INDEX(r, d)];

			if (!v->packets)
				continue;
			json_array_append_new(
				arr, json_pack("{s:s, s:s, s:b, s:I, s:I}", "reason", sluice_reason_name(r),
					       "direction", d == SLUICE_DIR_EGRESS ? "egress" : "ingress",
					       "drop", sluice_reason_is_drop(r), "packets",
					       (json_int_t)v->packets, "bytes", (json_int_t)v->bytes));
		}
	if (!a->prefilter)
		return ok(json_pack("{s:o, s:o}", "metrics", arr, "xdpFallThrough", fts));
	return ok(json_pack("{s:o, s:o, s:o}", "metrics", arr, "xdpFallThrough", fts,
			    "prefilters", pf_sync_metrics_json(a->prefilter)));
}

/* Recent flows, filtered (flowlog.h, docs/API.md). */
static json_t *op_flows(struct agent *a, const json_t *req)
{
	char err[512];
	json_t *res;

	if (!a->flows)
		return api_error(CNI_ERR_NOT_AVAILABLE, "this agent keeps no flows",
				 "it runs without the datapath's flow records");
	res = flowlog_query(a->flows, req, err, sizeof(err));
	return res ? ok(res) : api_error(CNI_ERR_INVALID_CONFIG, "bad flows request", err);
}

/* The slowest flows or pod pairs (round trips, retransmissions). */
static json_t *op_top(struct agent *a, const json_t *req)
{
	const json_t *limit = json_object_get(req, "limit");
	char err[512];
	json_t *res;

	if (!a->flows)
		return api_error(CNI_ERR_NOT_AVAILABLE, "this agent keeps no flows",
				 "it runs without the datapath's flow records");
	res = flowlog_top(a->flows, json_string_value(json_object_get(req, "what")),
			  json_is_integer(limit) && json_integer_value(limit) > 0
				  ? (size_t)json_integer_value(limit) : 0, err, sizeof(err));
	return res ? ok(res) : api_error(CNI_ERR_INVALID_CONFIG, "bad top request", err);
}

static json_t *op_cni(struct agent *a, const char *op, const json_t *req)
{
	int need_netns = strcmp(op, "del") != 0, code;
	json_t *result = NULL;
	struct timespec t0, t1;
	struct cni_req cr;
	char err[1024] = "";

	code = request_parse_cni(json_object_get(req, "cni"), need_netns, &cr, err, sizeof(err));
	if (code)
		return api_error(code, err, NULL);
	if (!a->ready && !strcmp(op, "add"))
		return api_error(CNI_ERR_TRY_AGAIN, "sluice-agent is starting", "try again shortly");
	/* Before anything is made: a chained bandwidth plugin that would
	 * fail on sluice's clsact qdisc (cnichain.h). */
	if (!strcmp(op, "add") && a->cnichain &&
	    (code = cnichain_check_add(a->cnichain, cr.network,
				       datapath_attach_mode(a->dp) == ATTACH_TC,
				       cr.bw.ingress_rate || cr.bw.egress_rate, err, sizeof(err)))) {
		pr_warn("add %s/%s (%s/%s) refused: %s", cr.container_id, cr.ifname,
			cr.k8s_namespace[0] ? cr.k8s_namespace : "-",
			cr.k8s_pod[0] ? cr.k8s_pod : "-", err);
		return api_error(code, err, NULL);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (!strcmp(op, "add")) {
		agent_wait_for_pod(a, cr.k8s_namespace, cr.k8s_pod);
		code = endpoints_add(a->eps, &cr, &result, err, sizeof(err));
	}
	else if (!strcmp(op, "del"))
		code = endpoints_del(a->eps, &cr, err, sizeof(err));
	else
		code = endpoints_check(a->eps, &cr, err, sizeof(err));
	/* The new pod's identity and policy are in the maps before ADD
	 * returns, so its first packet already meets them. */
	if (!code && strcmp(op, "check")) {
		char why[512];

		if (agent_policy_sync(a, why, sizeof(why))) {
			snprintf(err, sizeof(err), "cannot install policy state: %s", why);
			code = CNI_ERR_INTERNAL;
			if (!strcmp(op, "add")) {
				char ignored[256];

				json_decref(result);
				result = NULL;
				endpoints_del(a->eps, &cr, ignored, sizeof(ignored));
			}
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (code) {
		pr_warn("%s %s/%s failed: %s", op, cr.container_id, cr.ifname, err);
		return api_error(code, err, NULL);
	}
	pr_info("%s %s/%s (%s/%s) in %.1f ms", op, cr.container_id, cr.ifname,
		cr.k8s_namespace[0] ? cr.k8s_namespace : "-", cr.k8s_pod[0] ? cr.k8s_pod : "-",
		(double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
	return ok(result);
}

static json_t *op_gc(struct agent *a, const json_t *req)
{
	const json_t *gc = json_object_get(req, "gc");
	const char *network = json_string_value(json_object_get(gc, "network"));
	json_t *removed = NULL;
	char err[512];
	int code;

	if (!network)
		return api_error(CNI_ERR_INVALID_CONFIG, "gc request lacks the network name", NULL);
	code = endpoints_gc(a->eps, network, json_object_get(gc, "validAttachments"), &removed, err,
			    sizeof(err));
	if (code)
		return api_error(code, err, NULL);
	if (agent_policy_sync(a, err, sizeof(err)))
		pr_warn("gc: policy sync failed: %s", err);
	return ok(json_pack("{s:o}", "removed", removed));
}

/* An apply's unknown fields (lib/kschema.h), in the request's "validate"
 * mode (strict when absent, as kubectl): an error answer when they refuse
 * it, else NULL with *warnings the fields warn mode reports. */
static json_t *check_fields(const json_t *req, json_t **warnings)
{
	const json_t *v = json_object_get(req, "validate");
	enum ks_mode mode = KS_STRICT;
	char msg[2048], *details = NULL;
	json_t *answer;
	int ret;

	*warnings = NULL;
	if (v && ks_mode_parse(json_string_value(v), &mode))
		return api_error(CNI_ERR_INVALID_CONFIG,
				 "\"validate\" must be \"strict\", \"warn\" or \"ignore\"; "
				 "nothing was applied", NULL);
	ret = ks_apply_check(json_object_get(req, "objects"), json_object_get(req, "sources"),
			     mode, warnings, msg, sizeof(msg), &details);
	if (!ret)
		return NULL;
	answer = ret == -ENOMEM ? api_error(CNI_ERR_INTERNAL, "out of memory checking the "
					    "objects' fields", NULL)
				: api_error(CNI_ERR_INVALID_CONFIG, msg, details);
	free(details);
	return answer;
}

/* The request's "dryRun": absent or "none" 0, "server" 1; else -1. */
static int dry_run_of(const json_t *req)
{
	const json_t *v = json_object_get(req, "dryRun");

	if (!v || (json_is_string(v) && !strcmp(json_string_value(v), "none")))
		return 0;
	return json_is_string(v) && !strcmp(json_string_value(v), "server") ? 1 : -1;
}

/* apply with "dryRun": "server": the checks and the answer of an apply,
 * and nothing else (no store change, no save, no sync). */
static json_t *apply_dry_run(struct agent *a, const json_t *req)
{
	json_t *changes = json_array(), *warnings = NULL, *answer;
	char err[2048];
	int code;

	if (!changes)
		return api_error(CNI_ERR_INTERNAL, "out of memory", NULL);
	if ((answer = check_fields(req, &warnings))) {
		json_decref(changes);
		return answer;
	}
	code = store_apply_dry_run(a->store, json_object_get(req, "objects"),
				   json_object_get(req, "sources"),
				   json_is_true(json_object_get(req, "live")), changes, err,
				   sizeof(err));
	if (code) {
		json_decref(changes);
		json_decref(warnings);
		return api_error(code, err, NULL);
	}
	answer = json_pack("{s:o, s:s}", "changes", changes, "dryRun", "server");
	if (answer && warnings)
		json_object_set_new(answer, "warnings", warnings);
	else
		json_decref(warnings);
	return answer ? ok(answer) : api_error(CNI_ERR_INTERNAL, "out of memory", NULL);
}

static json_t *op_objects(struct agent *a, const json_t *req, int apply)
{
	json_t *changes, *snap, *warnings = NULL, *answer;
	char err[2048];
	int code, dry = dry_run_of(req);

	if (dry < 0 || (dry && !apply))
		return api_error(CNI_ERR_INVALID_CONFIG,
				 apply ? "\"dryRun\" must be \"server\" or \"none\"; nothing was "
					 "applied"
				       : "\"dryRun\" is for apply only; nothing was deleted",
				 NULL);
	if (dry)
		return apply_dry_run(a, req);
	changes = json_array();
	if (apply && (answer = check_fields(req, &warnings))) {
		json_decref(changes);
		return answer;
	}
	/* A change that does not fit the maps is undone whole. */
	snap = store_snapshot(a->store, json_object_get(req, "objects"));
	if (apply)
		code = store_apply(a->store, json_object_get(req, "objects"),
				   json_object_get(req, "sources"), changes, err, sizeof(err));
	else
		code = store_delete(a->store, json_object_get(req, "objects"),
				    json_object_get(req, "sources"),
				    json_is_true(json_object_get(req, "ignoreNotFound")), changes, err,
				    sizeof(err));
	if (code) {
		json_decref(changes);
		json_decref(snap);
		json_decref(warnings);
		return api_error(code, err, NULL);
	}
	/* Answer only once the datapath enforces the new state. */
	code = agent_changes_touch_policy(changes) ? agent_policy_sync_strict(a, err, sizeof(err))
						   : agent_services_sync(a, err, sizeof(err));
	if (code) {
		json_decref(changes);
		json_decref(warnings);
		store_restore(a->store, json_object_get(req, "objects"), snap);
		json_decref(snap);
		return api_error(CNI_ERR_INTERNAL, "not applied: the datapath could not take the "
						   "change, and the previous objects and state stay",
				 err);
	}
	json_decref(snap);
	if (warnings)
		return ok(json_pack("{s:o, s:o}", "changes", changes, "warnings", warnings));
	return ok(json_pack("{s:o}", "changes", changes));
}

static json_t *labels_json(const struct pol_labels *l)
{
	json_t *o = json_object();

	for (size_t i = 0; o && i < l->n; i++)
		json_object_set_new(o, l->v[i].key, json_string(l->v[i].value));
	return o;
}

static const char *kind_name(enum pol_kind k)
{
	return k == POL_K8S ? "NetworkPolicy"
	       : k == POL_SLUICE ? "SluiceNetworkPolicy" : "SluiceClusterNetworkPolicy";
}


static json_t *op_get_nodes(struct agent *a)
{
	struct store_local *locals = NULL;
	json_t *items = json_array();
	struct store_view v;
	size_t nlocals;
	uint32_t node_ips[2];

	if (agent_view_build_lean(a, &v, &locals, &nlocals, node_ips)) {
		json_decref(items);
		return api_error(CNI_ERR_INTERNAL, "out of memory", NULL);
	}
	for (size_t i = 0; i < v.nnodes; i++) {
		const struct store_node *n = v.nodes[i];
		bool local = !strcmp(n->name, a->node_name);
		char cidr[24] = "", ip[16] = "", refused[300];
		const char *state;

		if (n->has_pod_cidr)
			cidr4_format(&n->pod_cidr, cidr, sizeof(cidr));
		if (n->ip)
			ip4_format(n->ip, ip, sizeof(ip));
		snprintf(refused, sizeof(refused), "refused: %s",
			 n->why ? n->why : "(the reason was lost: out of memory)");
		if (n->refused)
			state = refused;
		else if (local)
			state = "local";
		else if (!n->has_pod_cidr || !n->ip)
			state = "unreachable: the Node object lacks spec.podCIDR or an InternalIP";
		else
			state = a->net && a->net->routing == SLUICE_ROUTING_OVERLAY ? "tunnel" : "route";
		json_array_append_new(items, json_pack("{s:s, s:s, s:s, s:b, s:s}", "name", n->name,
						       "podCIDR", cidr, "address", ip, "local", local,
						       "state", state));
	}
	store_view_free(&v);
	free(locals);
	return ok(json_pack("{s:o}", "items", items));
}

/* Said once with `get services`: what this node translates itself. */
#define SERVICES_NOTE_OFF "this node does not translate Services: kube-proxy does " \
			  "(--kube-proxy-replacement off, docs/SERVICES.md)"
#define SERVICES_NOTE_ON "Services are translated here (--kube-proxy-replacement on): pods, " \
			 "the node's own sockets and outside clients (docs/SERVICES.md)"

static json_t *op_get_services(struct agent *a)
{
	struct svc_view v;
	json_t *items;
	char node_ip[16] = "";
	int on = a->kube_proxy_replacement && a->dp;

	if (store_services_view(a->store, a->node_name, true, &v))
		return api_error(CNI_ERR_INTERNAL, "out of memory", NULL);
	items = svc_view_json(&v);
	if (a->net && a->net->node_ip)
		ip4_format(a->net->node_ip, node_ip, sizeof(node_ip));
	/* svc_view_json keeps the view's order: item i is v.v[i], frontend
	 * f is v.v[i].frontends[f]. */
	for (size_t i = 0; items && i < v.n; i++) {
		json_t *it = json_array_get(items, i);

		json_object_set_new(it, "translated",
				    json_boolean(on && lb_service_translated(&v.v[i])));
		/* A nodePort is on every node address ("*"); the one this
		 * node programs is its address on --device. */
		for (size_t f = 0; *node_ip && f < v.v[i].nfrontends; f++)
			if (v.v[i].frontends[f].kind == SVC_FE_NODE_PORT)
				json_object_set_new(json_array_get(json_object_get(it, "frontends"), f),
						    "nodeAddress", json_string(node_ip));
	}
	svc_view_free(&v);
	return ok(json_pack("{s:o, s:s, s:b}", "items", items, "note",
			    on ? SERVICES_NOTE_ON : SERVICES_NOTE_OFF, "translated", on));
}

/* A policy as `get policies` shows it: sel its pods (page_policy_pods,
 * the first names and the count of all). */
static json_t *policy_item(void *ctx, const struct pol_policy *p, struct page_selected *sel)
{
	struct agent *a = ctx;
	json_t *types = json_array();
	char object[600];
	const char *why;

	if (p->ingress)
		json_array_append_new(types, json_string("Ingress"));
	if (p->egress)
		json_array_append_new(types, json_string("Egress"));
	snprintf(object, sizeof(object), "%s %s%s%s", kind_name(p->kind), p->ns ? p->ns : "",
		 p->ns ? "/" : "", p->name);
	why = agent_policy_not_enforced(a, object);
	/* status: "Enforced"; "Degraded" (a policy from the API enforced in
	 * its fail-closed reading, docs/POLICY.md), with the reason; or
	 * "NotEnforced" (left out of the maps: its pods isolated without its
	 * allows), with statusReason. selectedPods names the first
	 * PAGE_SELECTED_MAX in key order, selectedPodsCount counts all. */
	return json_pack("{s:s, s:s, s:s, s:o, s:s, s:O, s:I, s:s, s:s?, s:s?, s:i, s:s?, s:i}",
			 "kind", kind_name(p->kind), "namespace", p->ns ? p->ns : "", "name",
			 p->name, "policyTypes", types, "mode", p->audit ? "Audit" : "Enforce",
			 "selectedPods", sel->names, "selectedPodsCount", (json_int_t)sel->count,
			 "status", why ? "NotEnforced" : p->degraded ? "Degraded" : "Enforced",
			 "statusReason", why, "reason", p->degraded, "degradedParts",
			 (int)p->ndegraded, "note", p->note, "notes", (int)p->nnotes);
}

/* Every policy (no paging), in the store's order, as before pages. */
static json_t *get_all_policies(struct agent *a)
{
	const struct pol_pod **sorted = NULL;
	struct store_local *locals = NULL;
	struct store_view v;
	size_t nlocals, nsorted = 0;
	uint32_t node_ips[2];
	json_t *items = NULL;
	int ret;

	ret = agent_view_build_lean(a, &v, &locals, &nlocals, node_ips);
	if (ret)
		return api_error(CNI_ERR_INTERNAL, "out of memory", NULL);
	sorted = page_locals_sorted(&v, &nsorted);
	items = json_array();
	if (!sorted || !items) {
		ret = -ENOMEM;
		goto cleanup;
	}
	for (size_t i = 0; i < v.w.npol; i++) {
		struct page_selected sel;

		ret = page_policy_pods(a->store, &v.w, sorted, nsorted, v.w.pol[i],
				       PAGE_SELECTED_MAX, &sel);
		if (ret)
			goto cleanup;
		ret = json_array_append_new(items, policy_item(a, v.w.pol[i], &sel)) ? -ENOMEM : 0;
		json_decref(sel.names);
		if (ret)
			goto cleanup;
	}
cleanup:
	free(sorted);
	store_view_free(&v);
	free(locals);
	if (ret) {
		json_decref(items);
		return api_error(CNI_ERR_INTERNAL, "out of memory", NULL);
	}
	return ok(json_pack("{s:o}", "items", items));
}

static uint32_t pod_identity(void *ctx, const struct pol_pod *p)
{
	struct agent *a = ctx;

	return p->labels_unknown ? SLUICE_ID_UNKNOWN : identity_of_pod(a->ids, p->ns, &p->labels);
}


/* The whole list of what (no paging), as before pages existed. */
/* Strings, NULL (out of memory) last. */
static int cmp_str(const void *a, const void *b)
{
	const char *x = *(char *const *)a, *y = *(char *const *)b;

	return !x || !y ? (x == NULL) - (y == NULL) : strcmp(x, y);
}

static json_t *get_all(struct agent *a, const char *what)
{
	struct store_local *locals = NULL;
	json_t *items = NULL;
	struct store_view v;
	size_t nlocals;
	uint32_t node_ips[2];

	if (!strcmp(what, "namespaces"))
		return ok(json_pack("{s:o}", "items", store_namespaces_json(a->store)));
	if (!strcmp(what, "nodes"))
		return op_get_nodes(a);
	if (!strcmp(what, "services"))
		return op_get_services(a);
	if (!strcmp(what, "policies"))
		return get_all_policies(a);
	if (agent_view_build(a, &v, &locals, &nlocals, node_ips))
		return api_error(CNI_ERR_INTERNAL, "out of memory", NULL);
	items = json_array();
	if (!strcmp(what, "pods")) {
		identities_begin(a->ids);
		for (size_t i = 0; i < v.w.npods; i++) {
			const struct pol_pod *p = v.w.pods[i];
			char ip[16] = "";

			if (p->ip)
				ip4_format(p->ip, ip, sizeof(ip));
			json_array_append_new(
				items, json_pack("{s:s, s:s, s:o, s:s, s:I, s:b}", "namespace", p->ns,
						 "name", p->name, "labels", labels_json(&p->labels), "ip",
						 ip, "identity", (json_int_t)pod_identity(a, p),
						 "local", v.pod_local[i]));
		}
	} else if (!strcmp(what, "identities")) {
		json_t *all = identities_to_json(a->ids), *id;
		size_t i;

		/* Each identity's pods from the compiler's groups: a lookup, not
		 * every pod against every identity (10^9 tests at 50 000 pods,
		 * and a lookup that could number label sets as a side effect). */
		json_array_foreach(all, i, id) {
			json_t *pods = json_array();
			uint32_t num = (uint32_t)json_integer_value(json_object_get(id, "id"));
			size_t n = compiler_identity_pods(a->compiler, num);
			char **names = calloc(n + 1, sizeof(*names));

			for (size_t k = 0; names && k < n; k++) {
				const struct pol_pod *p = compiler_identity_pod(a->compiler, num, k);

				if (asprintf(&names[k], "%s/%s", p->ns, p->name) < 0)
					names[k] = NULL;
			}
			if (names)
				qsort(names, n, sizeof(*names), cmp_str);
			for (size_t k = 0; names && k < n; k++)
				if (names[k])
					json_array_append_new(pods, json_string(names[k]));
			for (size_t k = 0; names && k < n; k++)
				free(names[k]);
			free(names);
			json_object_set_new(id, "pods", pods);
		}
		json_decref(items);
		items = all;
	}
	store_view_free(&v);
	free(locals);
	if (!items)
		return api_error(CNI_ERR_INTERNAL, "out of memory", NULL);
	return ok(json_pack("{s:o}", "items", items));
}

/* The sort key of an item of the small kinds, paged from their whole list:
 * a namespace or node name, "NS NAME" for a Service (a space sorts before
 * any character of a name, so the order is by namespace, then name), an
 * identity's number zero-padded. */
static char *item_key(const char *what, const json_t *it)
{
	const char *ns = json_string_value(json_object_get(it, "namespace")) ?: "";
	const char *name = json_string_value(json_object_get(it, "name")) ?: "";
	char *key;

	if (!strcmp(what, "identities"))
		return asprintf(&key, "%020lld",
				(long long)json_integer_value(json_object_get(it, "id"))) < 0
			       ? NULL : key;
	if (!strcmp(what, "services"))
		return asprintf(&key, "%s %s", ns, name) < 0 ? NULL : key;
	return strdup(name);
}

struct keyed {
	char *key;
	json_t *item;
};

static int keyed_cmp(const void *a, const void *b)
{
	return strcmp(((const struct keyed *)a)->key, ((const struct keyed *)b)->key);
}

/* A page of a kind without an order in the store (namespaces, nodes,
 * services, identities): its whole list built and sorted, O(n log n) a
 * page; these kinds number in the thousands where pods and policies
 * number in the ten thousands. The answer's other members are kept. */
static json_t *page_of_all(struct agent *a, struct page *pg)
{
	json_t *all = get_all(a, pg->what), *res, *items;
	struct keyed *k = NULL;
	size_t n = 0, i;
	int ret = 0;

	res = json_object_get(all, "result");
	items = json_object_get(res, "items");
	if (!json_is_array(items))
		return all; /* an error */
	k = calloc(json_array_size(items) + 1, sizeof(*k));
	if (!k) {
		ret = -ENOMEM;
		goto cleanup;
	}
	for (n = 0; n < json_array_size(items); n++) {
		k[n].item = json_array_get(items, n);
		k[n].key = item_key(pg->what, k[n].item);
		if (!k[n].key) {
			ret = -ENOMEM;
			goto cleanup;
		}
	}
	qsort(k, n, sizeof(*k), keyed_cmp);
	for (i = 0; i < n && pg->after && strcmp(k[i].key, pg->after) <= 0; i++)
		;
	for (; i < n; i++) {
		ret = page_add(pg, json_incref(k[i].item), k[i].key);
		if (ret <= 0)
			break;
	}
	ret = ret < 0 ? ret : 0;
	if (!ret && json_object_set(res, "items", pg->items))
		ret = -ENOMEM;
	if (!ret && pg->next && json_object_set_new(res, "continue", json_string(pg->next)))
		ret = -ENOMEM;
cleanup:
	for (i = 0; k && i < n + 1 && k[i].key; i++)
		free(k[i].key);
	free(k);
	if (ret) {
		json_decref(all);
		return api_error(CNI_ERR_INTERNAL, "out of memory", NULL);
	}
	return all;
}

/* One page of pods or policies, from the store's key order: no pass over
 * every pod. A page of policies builds the lean view (a pass over the
 * objects' kinds) and tests each policy against its own namespace's pods
 * only (every pod for a cluster-scoped one), and is cut once
 * PAGE_MAX_WORK pods were tested: a read holds the agent's one thread for
 * a bounded time. */
static json_t *page_get(struct agent *a, struct page *pg)
{
	struct store_local *locals = NULL;
	struct store_view v = { 0 };
	bool view = false;
	size_t nlocals = 0;
	uint32_t node_ips[2];
	json_t *res = NULL;
	int ret = 0;

	if (!strcmp(pg->what, "pods")) {
		locals = agent_local_pods(a, &nlocals);
		if (!locals) {
			ret = -ENOMEM;
			goto cleanup;
		}
		identities_begin(a->ids);
		ret = page_pods(pg, a->store, locals, nlocals, pod_identity, a);
	} else {
		ret = agent_view_build_lean(a, &v, &locals, &nlocals, node_ips);
		if (ret)
			goto cleanup;
		view = true;
		ret = page_policies(pg, a->store, &v, policy_item, a);
	}
	if (!ret)
		res = json_pack("{s:O, s:s?}", "items", pg->items, "continue", pg->next);
cleanup:
	if (view)
		store_view_free(&v);
	free(locals);
	if (ret == -EINVAL)
		return api_error(CNI_ERR_INVALID_CONFIG, "get: the continue token is not valid",
				 "start again without it (from the first page)");
	if (ret || !res)
		return api_error(CNI_ERR_INTERNAL, "out of memory", NULL);
	return ok(res);
}

/* At most SLUICE_PF_RULES_MAX apply, so one answer: "name" for one
 * object, "detail" for each entry's drops. */
static json_t *op_get_prefilters(struct agent *a, const json_t *req)
{
	const char *name = json_string_value(json_object_get(req, "name"));
	json_t *r;

	if (!a->prefilter)
		return api_error(CNI_ERR_INTERNAL, "the prefilter maps are not open", NULL);
	r = pf_sync_status_json(a->prefilter, name,
				name || json_is_true(json_object_get(req, "detail")));
	if (!r && name)
		return api_error(CNI_ERR_INVALID_CONFIG, "no such SluicePrefilter",
				 "see sluicectl get prefilters");
	if (!r)
		return api_error(CNI_ERR_INTERNAL, "out of memory", NULL);
	if (a->prefilter_error[0] && !name)
		json_object_set_new(r, "lastSyncError", json_string(a->prefilter_error));
	return ok(r);
}

static json_t *op_get(struct agent *a, const json_t *req)
{
	static const char *const kinds_known[] = { "namespaces", "pods", "policies",
						   "identities", "nodes", "services",
						   "prefilters" };
	const char *what = json_string_value(json_object_get(req, "what"));
	const json_t *limit = json_object_get(req, "limit"), *cont = json_object_get(req, "continue");
	struct page pg;
	json_t *resp;
	char err[400];
	size_t k;

	if (!what)
		return api_error(CNI_ERR_INVALID_CONFIG, "get: \"what\" is missing",
				 "namespaces, pods, policies, identities, nodes, services or "
				 "prefilters");
	for (k = 0; k < sizeof(kinds_known) / sizeof(kinds_known[0]); k++)
		if (!strcmp(what, kinds_known[k]))
			break;
	if (k == sizeof(kinds_known) / sizeof(kinds_known[0]))
		return api_error(CNI_ERR_INVALID_CONFIG, "get: unknown kind of object",
				 "namespaces, pods, policies, identities, nodes, services or "
				 "prefilters");
	if (!strcmp(what, "prefilters"))
		return op_get_prefilters(a, req);
	/* No "limit" and no "continue": the whole list in one answer, as
	 * before pages (too large an answer is refused in conn_answer). */
	if (!limit && !cont)
		return get_all(a, what);
	if ((limit && (!json_is_integer(limit) || json_integer_value(limit) < 1)) ||
	    (cont && !json_is_string(cont)))
		return api_error(CNI_ERR_INVALID_CONFIG,
				 "get: \"limit\" must be a positive integer and \"continue\" a "
				 "string (the token of the previous page)", NULL);
	switch (page_init(&pg, kinds_known[k], limit ? (size_t)json_integer_value(limit) : 0,
			  json_string_value(cont), err, sizeof(err))) {
	case 0:
		break;
	case -EINVAL:
		return api_error(CNI_ERR_INVALID_CONFIG, "get: the continue token is not valid",
				 err);
	default:
		return api_error(CNI_ERR_INTERNAL, "out of memory", NULL);
	}
	if (!strcmp(what, "pods") || !strcmp(what, "policies"))
		resp = page_get(a, &pg);
	else
		resp = page_of_all(a, &pg);
	page_free(&pg);
	return resp;
}

static int parse_endpoint_arg(const struct store_view *v, const char *arg, struct pol_endpoint *e)
{
	uint32_t ip;

	memset(e, 0, sizeof(*e));
	if (!ip4_parse(arg, &ip)) {
		e->ip = ip;
		e->pod = store_view_pod_by_ip(v, ip);
		return 0;
	}
	e->pod = store_view_pod(v, arg);
	if (!e->pod)
		return -ENOENT;
	e->ip = e->pod->ip;
	return 0;
}

static json_t *verdict_json(const struct pol_verdict *pv)
{
	char pol[600] = "";

	if (pv->policy)
		snprintf(pol, sizeof(pol), "%s %s%s%s", kind_name(pv->policy->kind),
			 pv->policy->ns ? pv->policy->ns : "", pv->policy->ns ? "/" : "",
			 pv->policy->name);
	return json_pack("{s:b, s:b, s:s?, s:i, s:b, s:b, s:s}", "allowed", pv->allowed, "isolated",
			 pv->isolated, "policy", pv->policy ? pol : NULL, "rule", pv->rule,
			 "denyRule", pv->denied_by_rule, "auditOnly", pv->audit_only, "reason",
			 pv->reason);
}

static const char *dp_name(const struct dp_side *d)
{
	if (!d->checked)
		return "not checked (not a pod on this node, or the node itself)";
	if (!d->isolated)
		return d->audit_would_drop ? "allow (not isolated; Audit policy would drop)"
					   : "allow (not isolated)";
	return d->verdict == DP_ALLOW ? (d->audit_would_drop ? "allow (Audit policy would drop)"
							     : "allow")
	       : d->verdict == DP_DENY_RULE ? "drop (Deny rule)" : "drop (no rule allows)";
}

/* One client -> destination verdict: {allowed, summary, egress, ingress,
 * datapath}. */
static json_t *explain_pair(struct agent *a, const struct store_view *v,
			    const struct pol_endpoint *src, const struct pol_endpoint *dst,
			    const char *from, const char *to, uint8_t proto, const char *proto_s,
			    uint16_t port)
{
	struct pol_verdict eg, in, all;
	struct dp_side dp_eg, dp_in;
	char summary[1024];
	int dp_allowed;

	pol_decide_dir(&v->w, POL_EGRESS, src, dst, proto, port, &eg);
	pol_decide_dir(&v->w, POL_INGRESS, src, dst, proto, port, &in);
	pol_decide(&v->w, src, dst, proto, port, &all);
	compiler_datapath_verdict(a->compiler, src->ip, dst->ip, proto,
				  proto == IPPROTO_ICMP ? (uint16_t)(port << 8) : port, &dp_eg, &dp_in);
	dp_allowed = (!dp_eg.checked || dp_eg.verdict == DP_ALLOW) &&
		     (!dp_in.checked || dp_in.verdict == DP_ALLOW);
	snprintf(summary, sizeof(summary), "%s %s -> %s %u/%s: %s%s",
		 all.allowed ? "ALLOWED" : "DENIED", from, to, port, proto_s, all.reason,
		 (src->ip && dst->ip && dp_allowed != all.allowed)
			 ? " [WARNING: the datapath's maps disagree; see \"datapath\"]"
			 : "");
	return json_pack("{s:b, s:s, s:o, s:o, s:{s:s, s:s, s:b}}", "allowed", all.allowed,
			 "summary", summary, "egress", verdict_json(&eg), "ingress",
			 verdict_json(&in), "datapath", "egress", dp_name(&dp_eg), "ingress",
			 dp_name(&dp_in), "allowed", dp_allowed);
}

/* The Service frontend ip:port/proto names, if any: its Service and the
 * frontend (a nodePort matches this node's address on --device). */
static const struct svc_view_service *find_frontend(const struct agent *a,
						    const struct svc_view *sv, uint32_t ip,
						    uint8_t proto, uint16_t port,
						    const struct svc_frontend **fe)
{
	uint32_t node_ip = a->net ? a->net->node_ip : 0;

	for (size_t i = 0; i < sv->n; i++)
		for (size_t f = 0; f < sv->v[i].nfrontends; f++) {
			const struct svc_frontend *x = &sv->v[i].frontends[f];

			if (x->proto != proto || x->port != port)
				continue;
			if (x->kind == SVC_FE_NODE_PORT ? (node_ip && ip == node_ip) : x->ip == ip) {
				*fe = x;
				return &sv->v[i];
			}
		}
	return NULL;
}

/*
 * explain --to a Service frontend: which backends a new flow from src
 * would choose from, and how, then the policy verdict of src -> each of
 * them (translation comes before policy: both sides see the backend).
 * Allowed when every candidate is.
 */
static json_t *explain_service(struct agent *a, const struct store_view *v,
			       const struct pol_endpoint *src, const char *from, const char *to,
			       const struct svc_view_service *vs, const struct svc_frontend *fe,
			       const char *proto_s)
{
	static const char *const kinds[] = { "ClusterIP", "ExternalIP", "LoadBalancer",
					     "NodePort" };
	const struct svc_service *svc = vs->svc;
	const struct svc_view_port *vp = &vs->ports[fe->port_index];
	json_t *cands = json_array(), *others = json_array();
	bool all_allowed = true, any_ready = false, on = a->kube_proxy_replacement && a->dp;
	size_t ncand = 0, nallowed = 0;
	char fe_text[64], svc_name[600], summary[1400], algo[512], how[256];

	if (!cands || !others)
		goto nomem;
	svc_frontend_format(fe, fe_text, sizeof(fe_text));
	if (fe->kind == SVC_FE_NODE_PORT)
		snprintf(fe_text, sizeof(fe_text), "%s", to);
	snprintf(svc_name, sizeof(svc_name), "%s/%s", vs->ns, vs->name);
	for (size_t b = 0; b < vp->nbackends; b++)
		any_ready |= vp->backends[b].ready && (!svc->itp_local || vp->backends[b].local);
	for (size_t b = 0; b < vp->nbackends; b++) {
		const struct svc_backend *be = &vp->backends[b];
		bool cand = lb_new_flow_candidate(vp, b);
		char ip[16], label[600];
		struct pol_endpoint dst = { .ip = be->ip };
		json_t *j, *ex;

		/* internalTrafficPolicy Local: a pod's or the node's flows go
		 * to this node's backends only (none: dropped), the ready
		 * ones, else the local serving and terminating ones. */
		if (svc->itp_local)
			cand = be->local && (any_ready ? be->ready : be->serving && be->terminating);
		ip4_format(be->ip, ip, sizeof(ip));
		j = json_pack("{s:s, s:i, s:s, s:b, s:s?, s:s?}", "address", ip, "port", be->port,
			      "state", svc_backend_state(be), "local", be->local, "nodeName",
			      be->node, "pod", be->pod_name);
		if (!cand) {
			json_array_append_new(others, j);
			continue;
		}
		dst.pod = store_view_pod_by_ip(v, be->ip);
		if (dst.pod)
			snprintf(label, sizeof(label), "%s/%s (%s:%u)", dst.pod->ns, dst.pod->name,
				 ip, be->port);
		else
			snprintf(label, sizeof(label), "%s:%u", ip, be->port);
		ex = explain_pair(a, v, src, &dst, from, label, fe->proto, proto_s, be->port);
		if (!ex || !j) {
			json_decref(ex);
			json_decref(j);
			goto nomem;
		}
		ncand++;
		if (json_is_true(json_object_get(ex, "allowed")))
			nallowed++;
		else
			all_allowed = false;
		json_object_set_new(j, "explain", ex);
		json_array_append_new(cands, j);
	}
	snprintf(how, sizeof(how), "%s%s",
		 any_ready ? "the ready endpoints"
			   : "no endpoint is ready: the serving, terminating ones "
			     "(kube-proxy's fallback)",
		 svc->itp_local ? ", on this node only (internalTrafficPolicy Local)" : "");
	{
		uint32_t m = a->dp ? datapath_lb_maglev_m(a->dp) : 0;
		char pick[160];

		/* As lb_sync programs it: a table only for two or more. */
		if (m && ncand >= 2 && ncand < m)
			snprintf(pick, sizeof(pick), "maglev: a new flow takes the candidate its flow "
				 "hash names in the frontend's %u-entry table (the same on every "
				 "node)", m);
		else
			snprintf(pick, sizeof(pick), "random: a new flow takes one of the %zu "
				 "candidates at random", ncand);
		if (svc->affinity_client_ip)
			snprintf(algo, sizeof(algo), "%s; sessionAffinity ClientIP: a client's new "
				 "flows go to the backend its last flow got while it keeps sending "
				 "within %u s", pick, svc->affinity_timeout);
		else
			snprintf(algo, sizeof(algo), "%s; later packets of the flow stay on its "
				 "backend", pick);
	}
	if (!ncand)
		snprintf(summary, sizeof(summary), "DENIED %s -> %s (Service %s): no backend for "
			 "new flows%s", from, fe_text, svc_name,
			 on ? "" : " (kube-proxy's Service: --kube-proxy-replacement off)");
	else
		snprintf(summary, sizeof(summary), "%s %s -> %s (Service %s%s): %zu of %zu "
			 "candidate backends allowed", all_allowed ? "ALLOWED" : "DENIED", from,
			 fe_text, svc_name,
			 on ? ", translated by sluice" : ", kube-proxy's: --kube-proxy-replacement off",
			 nallowed, ncand);
	return ok(json_pack("{s:b, s:s, s:{s:s, s:s, s:s, s:s, s:b, s:s, s:s, s:s, s:s, s:o, "
			    "s:o}}",
			    "allowed", ncand && all_allowed, "summary", summary, "service",
			    "name", svc_name, "type", svc_type_name(svc->type), "frontend", fe_text,
			    "frontendKind", kinds[fe->kind], "translated", on, "algorithm", algo,
			    "candidatesFrom", how, "internalTrafficPolicy",
			    svc->itp_local ? "Local" : "Cluster", "sessionAffinity",
			    svc->affinity_client_ip ? "ClientIP" : "None", "candidates", cands,
			    "notForNewFlows", others));
nomem:
	json_decref(cands);
	json_decref(others);
	return api_error(CNI_ERR_INTERNAL, "out of memory", NULL);
}

static json_t *op_explain(struct agent *a, const json_t *req)
{
	const char *from = json_string_value(json_object_get(req, "from"));
	const char *to = json_string_value(json_object_get(req, "to"));
	const char *proto_s = json_string_value(json_object_get(req, "protocol"));
	json_int_t port = json_integer_value(json_object_get(req, "port"));
	const struct svc_view_service *vs = NULL;
	const struct svc_frontend *fe = NULL;
	struct store_local *locals = NULL;
	struct pol_endpoint src, dst;
	struct svc_view sv = { 0 };
	struct store_view v;
	json_t *resp = NULL;
	size_t nlocals;
	uint32_t node_ips[2], to_ip;
	uint8_t proto;

	if (!proto_s || !strcmp(proto_s, "TCP"))
		proto = IPPROTO_TCP;
	else if (!strcmp(proto_s, "UDP"))
		proto = IPPROTO_UDP;
	else if (!strcmp(proto_s, "SCTP"))
		proto = IPPROTO_SCTP;
	else if (!strcmp(proto_s, "ICMP"))
		proto = IPPROTO_ICMP;
	else
		return api_error(CNI_ERR_INVALID_CONFIG, "explain: protocol must be TCP, UDP, SCTP "
							 "or ICMP", NULL);
	if (!proto_s)
		proto_s = "TCP";
	if (!from || !to || port < 0 || port > 65535)
		return api_error(CNI_ERR_INVALID_CONFIG,
				 "explain needs from, to (NS/POD or an IPv4 address) and a port 0-65535",
				 NULL);
	/* Pods are looked up by name or address: no array of every pod. */
	if (agent_view_build_lean(a, &v, &locals, &nlocals, node_ips))
		return api_error(CNI_ERR_INTERNAL, "out of memory", NULL);
	if (parse_endpoint_arg(&v, from, &src) || parse_endpoint_arg(&v, to, &dst)) {
		resp = api_error(CNI_ERR_UNKNOWN_CONTAINER, "explain: no such pod",
				 "name pods as NAMESPACE/NAME (see sluicectl get pods) or give an "
				 "IPv4 address");
		goto cleanup;
	}
	/* An address that is a Service frontend (of a Service kube-proxy
	 * would handle) is explained as the Service. */
	if (!dst.pod && proto != IPPROTO_ICMP && !ip4_parse(to, &to_ip)) {
		if (store_services_view(a->store, a->node_name, false, &sv)) {
			resp = api_error(CNI_ERR_INTERNAL, "out of memory", NULL);
			goto cleanup;
		}
		vs = find_frontend(a, &sv, to_ip, proto, (uint16_t)port, &fe);
	}
	if (vs) {
		char to_text[64];

		snprintf(to_text, sizeof(to_text), "%s:%lld/%s", to, (long long)port, proto_s);
		resp = explain_service(a, &v, &src, from, to_text, vs, fe, proto_s);
	} else {
		json_t *r = explain_pair(a, &v, &src, &dst, from, to, proto, proto_s, (uint16_t)port);

		resp = r ? ok(r) : api_error(CNI_ERR_INTERNAL, "out of memory", NULL);
	}
cleanup:
	svc_view_free(&sv);
	store_view_free(&v);
	free(locals);
	return resp;
}

/* A CNI command's latency and result, for /metrics (agent_metrics). */
static json_t *timed_cni(struct agent *a, enum agent_cni_cmd cmd, const char *op,
			 const json_t *req)
{
	struct timespec t0, t1;
	json_t *resp;
	bool failed;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	resp = cmd == AGENT_CNI_GC ? op_gc(a, req)
	       : cmd == AGENT_CNI_STATUS ? op_status(a) : op_cni(a, op, req);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	failed = !json_is_true(json_object_get(resp, "ok"));
	prom_hist_observe(&a->metrics.cni[cmd][failed],
			  (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	return resp;
}

json_t *api_dispatch(struct agent *a, const json_t *req)
{
	const char *op = json_string_value(json_object_get(req, "op"));

	if (!json_is_object(req) || !op)
		return api_error(CNI_ERR_DECODE, "request is not an object with an \"op\"", NULL);
	if (!strcmp(op, "add"))
		return timed_cni(a, AGENT_CNI_ADD, op, req);
	if (!strcmp(op, "del"))
		return timed_cni(a, AGENT_CNI_DEL, op, req);
	if (!strcmp(op, "check"))
		return timed_cni(a, AGENT_CNI_CHECK, op, req);
	if (!strcmp(op, "gc"))
		return timed_cni(a, AGENT_CNI_GC, op, req);
	/* The plugin's STATUS and `sluicectl status` ask alike. */
	if (!strcmp(op, "status"))
		return timed_cni(a, AGENT_CNI_STATUS, op, req);
	if (!strcmp(op, "list"))
		return ok(json_pack("{s:o}", "endpoints", endpoints_list(a->eps)));
	if (!strcmp(op, "metrics"))
		return op_metrics(a);
	if (!strcmp(op, "flows"))
		return op_flows(a, req);
	if (!strcmp(op, "top"))
		return op_top(a, req);
	if (!strcmp(op, "apply") || !strcmp(op, "delete"))
		return op_objects(a, req, !strcmp(op, "apply"));
	if (!strcmp(op, "get"))
		return op_get(a, req);
	if (!strcmp(op, "explain"))
		return op_explain(a, req);
	if (!strcmp(op, "describe"))
		return op_describe(a, req);
	if (!strcmp(op, "version")) {
		json_t *v = agent_version_json(a);

		return v ? ok(v) : api_error(CNI_ERR_INTERNAL, "out of memory", NULL);
	}
	return api_error(CNI_ERR_INVALID_CONFIG, "unknown operation",
			 "known: add, del, check, gc, status, list, metrics, flows, top, apply, "
			 "delete, get, explain, describe, version");
}

/* ---- connections ------------------------------------------------------ */

struct api_conn {
	struct api_inbox in;	/* in.deadline: the read's, then the answer's */
	bool refused;	/* not root: answered "permission denied" */
	int uid;
	char *out;	/* the answer, once the request is served; NULL before */
	size_t outlen, outoff;
};

/* The agent reads up to API_MAX_CONNS requests at once, so a client that
 * trickles its request or never finishes it delays no one else; it is cut
 * off at its deadline. Requests are then served one at a time, and each
 * answer is sent as the client takes it, between polls: a client that
 * reads slowly or not at all holds its slot until its deadline, never the
 * agent. */
struct api_server {
	int listen_fd;
	size_t n;
	struct api_conn c[API_MAX_CONNS];
};

int api_server_open(struct api_server **out, int listen_fd)
{
	struct api_server *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->listen_fd = listen_fd;
	*out = s;
	return 0;
}

static void conn_close(struct api_server *s, size_t i)
{
	close(s->c[i].in.fd);
	api_inbox_free(&s->c[i].in);
	free(s->c[i].out);
	s->c[i] = s->c[--s->n];
}

void api_server_close(struct api_server *s)
{
	if (!s)
		return;
	while (s->n)
		conn_close(s, 0);
	free(s);
}

size_t api_server_pollfds(const struct api_server *s, struct pollfd *pfd)
{
	size_t k = 0;

	/* A full table leaves new clients in the listen backlog; the oldest
	 * entry frees its slot at its deadline at the latest. */
	pfd[k++] = (struct pollfd){ .fd = s->n < API_MAX_CONNS ? s->listen_fd : -1,
				    .events = POLLIN };
	for (size_t i = 0; i < s->n; i++)
		pfd[k++] = (struct pollfd){ .fd = s->c[i].in.fd,
					    .events = s->c[i].out ? POLLOUT : POLLIN };
	return k;
}

int api_server_timeout_ms(const struct api_server *s)
{
	long long now = api_now_ms(), first = -1;

	for (size_t i = 0; i < s->n; i++)
		if (first < 0 || s->c[i].in.deadline < first)
			first = s->c[i].in.deadline;
	if (first < 0)
		return -1;
	return first > now ? (int)(first - now) : 0;
}

static void accept_new(struct api_server *s)
{
	while (s->n < API_MAX_CONNS) {
		struct api_conn *c = &s->c[s->n];
		struct ucred cred;
		socklen_t len = sizeof(cred);
		int fd;

		fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			return;
		memset(c, 0, sizeof(*c));
		c->uid = -1;
		if (!getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len))
			c->uid = (int)cred.uid;
		c->refused = c->uid != 0;
		/* A refused client's request is read (bounded) before the
		 * answer: closing with unread data resets the connection, and
		 * the client would never see why it was refused. */
		if (api_inbox_init(&c->in, fd, c->refused ? 64 * 1024 : SLUICE_API_MAX_MSG,
				   API_READ_DEADLINE_MS)) {
			api_inbox_free(&c->in);
			close(fd);
			return;
		}
		s->n++;
	}
}

/* Clients read at most SLUICE_API_MAX_MSG (lib/api.c): a larger answer
 * would reach them as "message larger than …". Say instead what to do:
 * `get` asks for pages (docs/API.md, "Pages"). */
static json_t *answer_fits(const json_t *req, json_t *resp)
{
	const char *op = json_string_value(json_object_get(req, "op"));
	const char *what = json_string_value(json_object_get(req, "what"));
	size_t len = resp ? json_dumpb(resp, NULL, 0, JSON_COMPACT) : 0;
	char msg[200], details[400];

	if (len <= SLUICE_API_MAX_MSG)
		return resp;
	json_decref(resp);
	snprintf(msg, sizeof(msg), "the answer to %s%s%s is %zu bytes, more than the %u MiB an "
		 "answer may be", op ? op : "the request", what ? " " : "", what ? what : "", len,
		 SLUICE_API_MAX_MSG >> 20);
	if (op && !strcmp(op, "get"))
		snprintf(details, sizeof(details), "ask for it in pages: sluicectl get %s "
			 "--chunk-size 500 (the default of this sluicectl; an older one "
			 "cannot page), or in the request \"limit\" and \"continue\" "
			 "(docs/API.md, Pages)", what ? what : "KIND");
	else
		snprintf(details, sizeof(details), "this request has no pages; report it");
	pr_warn("API: %s", msg);
	return api_error(CNI_ERR_INTERNAL, msg, details);
}

/* Send connection i what its socket takes now, without blocking; close it
 * once the answer is sent, on an error, or at its deadline. */
static void conn_flush(struct api_server *s, size_t i)
{
	struct api_conn *c = &s->c[i];

	while (c->outoff < c->outlen) {
		ssize_t n = send(c->in.fd, c->out + c->outoff, c->outlen - c->outoff,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0) {
			c->outoff += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			if (api_now_ms() < c->in.deadline)
				return;	/* the rest when it has room (POLLOUT) */
			pr_warn("API client did not take its answer within %d ms; closed it",
				API_WRITE_DEADLINE_MS);
		}
		break;
	}
	conn_close(s, i);
}

/* Serve connection i (its request is complete, or failed with ret) and
 * start sending the answer. The answer has its own deadline: a client that
 * does not read it is closed after API_WRITE_DEADLINE_MS, and meanwhile
 * the agent serves the others. */
static void conn_answer(struct agent *a, struct api_server *s, size_t i, int ret)
{
	struct api_conn *c = &s->c[i];
	json_t *req = NULL, *resp;
	json_error_t jerr;
	char why[256];

	if (c->refused) {
		pr_warn("refused API connection from uid %d: root only", c->uid);
		resp = api_error(CNI_ERR_INVALID_ENV, "permission denied",
				 "the sluice-agent API accepts root only");
	} else if (ret == -ETIMEDOUT) {
		pr_warn("API client sent no complete request within %d ms; closed it",
			API_READ_DEADLINE_MS);
		snprintf(why, sizeof(why), "the whole request must arrive within %d ms",
			 API_READ_DEADLINE_MS);
		resp = api_error(CNI_ERR_DECODE, "cannot decode request", why);
	} else if (ret < 0) {
		snprintf(why, sizeof(why), "%s", ret == -EMSGSIZE ? "message too large"
								: strerror(-ret));
		resp = api_error(CNI_ERR_DECODE, "cannot decode request", why);
	} else {
		req = json_loadb(c->in.buf, c->in.len, JSON_REJECT_DUPLICATES, &jerr);
		if (req) {
			resp = api_dispatch(a, req);
		} else {
			snprintf(why, sizeof(why), "line %d column %d: %s", jerr.line, jerr.column,
				 jerr.text);
			resp = api_error(CNI_ERR_DECODE, "cannot decode request", why);
		}
	}
	resp = answer_fits(req, resp);
	c->out = resp ? json_dumps(resp, JSON_COMPACT) : NULL;
	json_decref(req);
	json_decref(resp);
	api_inbox_free(&c->in);
	if (!c->out) {
		conn_close(s, i);
		return;
	}
	c->outlen = strlen(c->out);
	/* A client that has not even finished its request gets one try, not
	 * a deadline: it is not reading. */
	c->in.deadline = api_now_ms() + (ret < 0 ? 0 : API_WRITE_DEADLINE_MS);
	conn_flush(s, i);
}

void api_server_credit(struct api_server *s, long long ms)
{
	for (size_t i = 0; ms > 0 && i < s->n; i++)
		if (s->c[i].in.deadline >= 0)
			s->c[i].in.deadline += ms;
}

void api_server_run(struct agent *a, struct api_server *s, const struct pollfd *pfd)
{
	/* Walk backwards: conn_close moves the last entry into the hole. */
	for (size_t i = s->n; i-- > 0;) {
		long long t0;
		size_t len;
		int ret;

		if (s->c[i].out) {
			conn_flush(s, i);
			continue;
		}
		ret = api_inbox_read(&s->c[i].in);
		if (!ret)
			continue;
		t0 = api_now_ms();
		len = s->c[i].in.len;
		conn_answer(a, s, i, ret);
		/* A large apply leaves megabytes of freed parse trees in the
		 * heap; glibc keeps them resident unless asked (10 000
		 * Services applied 2 000 at a time: 26 MB), as after a large
		 * watch batch (agent_kube_changes). */
		if (len > API_TRIM_AFTER)
			malloc_trim(0);
		/* Time spent serving one client is not the others' to lose:
		 * their requests wait in the socket meanwhile. */
		api_server_credit(s, api_now_ms() - t0);
	}
	if (pfd[0].revents & POLLIN)
		accept_new(s);
}
