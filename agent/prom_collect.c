// SPDX-License-Identifier: Apache-2.0
/*
 * The agent's metric families (prom_collect.h). Every family is written on
 * every scrape, with its HELP and TYPE even when it has no sample yet (no
 * Kubernetes API, no SluicePrefilter), so dashboards and alerts find it.
 * Label values come from fixed lists (reasons, causes, commands, kinds,
 * maps) except the prefilter's object names, bounded by
 * SLUICE_PF_RULES_MAX.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "prom_collect.h"

#include "sluice_version.h"

static const char *const dir_names[SLUICE_DIR_MAX] = { [SLUICE_DIR_EGRESS] = "egress",
						       [SLUICE_DIR_INGRESS] = "ingress" };
static const char *const cni_names[AGENT_CNI_CMDS] = {
	[AGENT_CNI_ADD] = "ADD", [AGENT_CNI_DEL] = "DEL", [AGENT_CNI_CHECK] = "CHECK",
	[AGENT_CNI_GC] = "GC", [AGENT_CNI_STATUS] = "STATUS"
};
static const char *const kube_type_names[KUBE_EV_TYPES] = {
	[KUBE_EV_ADDED] = "ADDED", [KUBE_EV_MODIFIED] = "MODIFIED",
	[KUBE_EV_DELETED] = "DELETED", [KUBE_EV_BOOKMARK] = "BOOKMARK"
};

void agent_metrics_init(struct agent_metrics *m)
{
	for (int c = 0; c < AGENT_CNI_CMDS; c++)
		for (int r = 0; r < 2; r++)
			prom_hist_init(&m->cni[c][r], prom_latency_bounds, prom_latency_nbounds);
	prom_hist_init(&m->policy_sync, prom_latency_bounds, prom_latency_nbounds);
	m->start_time = (double)time(NULL);
}

/* ---- datapath counters -------------------------------------------------- */

static void datapath_families(struct agent *a, struct prom_buf *b)
{
	struct sluice_metric m[SLUICE_METRICS_MAX], ft;
	bool have = a->dp && !datapath_metrics_read(a->dp, m);

	prom_family(b, "sluice_datapath_packets_total", "counter",
		    "Packets the datapath handled, by verdict (reason) and direction at the pod");
	for (__u32 r = 0; have && r < SLUICE_REASON_MAX; r++)
		for (__u32 d = 0; d < SLUICE_DIR_MAX; d++)
			prom_sample_u64(b, "sluice_datapath_packets_total",
					(const char *[]){ "reason", sluice_reason_name(r), "direction",
							  dir_names[d], NULL },
					m[SLUICE_METRIC_INDEX(r, d)].packets);
	prom_family(b, "sluice_datapath_bytes_total", "counter",
		    "Bytes the datapath handled, by verdict (reason) and direction at the pod");
	for (__u32 r = 0; have && r < SLUICE_REASON_MAX; r++)
		for (__u32 d = 0; d < SLUICE_DIR_MAX; d++)
			prom_sample_u64(b, "sluice_datapath_bytes_total",
					(const char *[]){ "reason", sluice_reason_name(r), "direction",
							  dir_names[d], NULL },
					m[SLUICE_METRIC_INDEX(r, d)].bytes);
	prom_family(b, "sluice_drops_total", "counter",
		    "Packets the datapath dropped, by reason (both directions)");
	for (__u32 r = 0; have && r < SLUICE_REASON_MAX; r++) {
		if (!sluice_reason_is_drop(r))
			continue;
		prom_sample_u64(b, "sluice_drops_total",
				(const char *[]){ "reason", sluice_reason_name(r), NULL },
				m[SLUICE_METRIC_INDEX(r, SLUICE_DIR_EGRESS)].packets +
					m[SLUICE_METRIC_INDEX(r, SLUICE_DIR_INGRESS)].packets);
	}
	prom_family(b, "sluice_xdp_fallthrough_packets_total", "counter",
		    "Service packets the uplink's XDP program left to the tc path, by cause");
	for (__u32 c = 0; a->dp && a->has_xdp && c < SLUICE_XDP_FT_MAX; c++)
		if (!datapath_xdp_ft_counter(a->dp, c, &ft))
			prom_sample_u64(b, "sluice_xdp_fallthrough_packets_total",
					(const char *[]){ "cause", sluice_xdp_ft_name(c), NULL }, ft.packets);
	/* Insert failures the datapath counts: a masquerade without a free
	 * port, a flow entry the flow map had no room for. */
	prom_family(b, "sluice_map_insert_failures_total", "counter",
		    "Entries the datapath could not insert, by map");
	if (have)
		prom_sample_u64(b, "sluice_map_insert_failures_total",
				(const char *[]){ "map", "snat", NULL },
				m[SLUICE_METRIC_INDEX(SLUICE_DROP_NAT_PORTS, SLUICE_DIR_EGRESS)].packets +
					m[SLUICE_METRIC_INDEX(SLUICE_DROP_NAT_PORTS, SLUICE_DIR_INGRESS)]
						.packets);
	if (a->dp) {
		int fd = datapath_flow_st_fd(a->dp), ncpu = libbpf_num_possible_cpus();
		__u32 key = SLUICE_FLOW_ST_MAP_FULL;
		__u64 *v = ncpu > 0 ? calloc((size_t)ncpu, sizeof(*v)) : NULL, sum = 0;

		if (v && fd >= 0 && !bpf_map_lookup_elem(fd, &key, v)) {
			for (int i = 0; i < ncpu; i++)
				sum += v[i];
			prom_sample_u64(b, "sluice_map_insert_failures_total",
					(const char *[]){ "map", "flows", NULL }, sum);
		}
		free(v);
	}
}

/* SluicePrefilter drops per object, from the prefilter sync's counters. */
static void prefilter_families(struct agent *a, struct prom_buf *b)
{
	json_t *arr = a->prefilter ? pf_sync_metrics_json(a->prefilter) : NULL, *o;
	size_t i;

	prom_family(b, "sluice_prefilter_drops_total", "counter",
		    "Packets the uplink dropped for a SluicePrefilter, by object");
	json_array_foreach(arr, i, o)
		prom_sample_u64(b, "sluice_prefilter_drops_total",
				(const char *[]){ "prefilter",
						  json_string_value(json_object_get(o, "name")) ?: "",
						  NULL },
				(uint64_t)json_integer_value(json_object_get(o, "packets")));
	prom_family(b, "sluice_prefilter_dropped_bytes_total", "counter",
		    "Bytes the uplink dropped for a SluicePrefilter, by object");
	json_array_foreach(arr, i, o)
		prom_sample_u64(b, "sluice_prefilter_dropped_bytes_total",
				(const char *[]){ "prefilter",
						  json_string_value(json_object_get(o, "name")) ?: "",
						  NULL },
				(uint64_t)json_integer_value(json_object_get(o, "bytes")));
	json_decref(arr);
}

/* ---- map fill ------------------------------------------------------------ */

static void map_families(struct agent *a, struct prom_map_cache *c, struct prom_buf *b)
{
	prom_maps_want(a, c);
	prom_family(b, "sluice_map_entries", "gauge",
		    "Entries in a datapath map (counted at most every 5 seconds)");
	for (size_t i = 0; c->done_at && i < PROM_MAPS; i++)
		if (c->m[i].ok)
			prom_sample_u64(b, "sluice_map_entries",
					(const char *[]){ "map", c->m[i].name, NULL },
					c->m[i].entries);
	prom_family(b, "sluice_map_max_entries", "gauge", "Capacity of a datapath map");
	for (size_t i = 0; c->done_at && i < PROM_MAPS; i++)
		if (c->m[i].max_entries)
			prom_sample_u64(b, "sluice_map_max_entries",
					(const char *[]){ "map", c->m[i].name, NULL },
					c->m[i].max_entries);
	prom_family(b, "sluice_map_fill_ratio", "gauge",
		    "Entries over capacity of a datapath map, 0 to 1");
	for (size_t i = 0; c->done_at && i < PROM_MAPS; i++)
		if (c->m[i].ok && c->m[i].max_entries)
			prom_sample(b, "sluice_map_fill_ratio",
				    (const char *[]){ "map", c->m[i].name, NULL },
				    (double)c->m[i].entries / c->m[i].max_entries);
	prom_family(b, "sluice_map_count_duration_seconds", "gauge",
		    "Time the last count of the maps' entries took (its steps together)");
	prom_sample(b, "sluice_map_count_duration_seconds", NULL, c->cost_s);
}

/* ---- control plane ------------------------------------------------------- */

static void control_families(struct agent *a, struct prom_buf *b)
{
	const struct agent_metrics *m = &a->metrics;
	const struct compile_excluded *ex;

	prom_family(b, "sluice_endpoints", "gauge", "Pod endpoints on this node");
	prom_sample_u64(b, "sluice_endpoints", NULL, a->eps ? endpoints_count(a->eps) : 0);
	prom_family(b, "sluice_cni_operation_duration_seconds", "histogram",
		    "Time the agent took to serve a CNI command, by command and result "
		    "(STATUS includes sluicectl status)");
	for (int c = 0; c < AGENT_CNI_CMDS; c++)
		for (int r = 0; r < 2; r++)
			prom_hist_write(b, "sluice_cni_operation_duration_seconds",
					(const char *[]){ "command", cni_names[c], "result",
							  r ? "error" : "ok", NULL },
					&m->cni[c][r]);
	prom_family(b, "sluice_policy_sync_duration_seconds", "histogram",
		    "Time a policy sync took: the view, the compile, the map writes");
	prom_hist_write(b, "sluice_policy_sync_duration_seconds", NULL, &m->policy_sync);
	prom_family(b, "sluice_policy_sync_failures_total", "counter",
		    "Policy syncs that failed (the datapath kept its previous state)");
	prom_sample_u64(b, "sluice_policy_sync_failures_total", NULL, m->policy_sync_failures);
	prom_family(b, "sluice_policy_sync_entries_written_total", "counter",
		    "Map entries policy syncs wrote or replaced");
	prom_sample_u64(b, "sluice_policy_sync_entries_written_total", NULL,
			m->policy_entries_written);
	prom_family(b, "sluice_policy_sync_entries_removed_total", "counter",
		    "Map entries policy syncs removed");
	prom_sample_u64(b, "sluice_policy_sync_entries_removed_total", NULL,
			m->policy_entries_removed);
	prom_family(b, "sluice_policy_sync_entries", "gauge",
		    "Endpoint, ipcache, allow and deny entries the last policy sync left");
	prom_sample_u64(b, "sluice_policy_sync_entries", NULL, a->last_policy_sync.entries);
	prom_family(b, "sluice_policies", "gauge", "Policies of every kind the last policy sync compiled");
	prom_sample_u64(b, "sluice_policies", NULL, a->last_policy_sync.policies);
	prom_family(b, "sluice_policies_not_enforced", "gauge",
		    "Policies left out of the maps because their entries do not fit");
	prom_sample_u64(b, "sluice_policies_not_enforced", NULL,
			a->compiler ? compiler_excluded(a->compiler, &ex) : 0);
	prom_family(b, "sluice_identities", "gauge", "Security identities allocated");
	prom_sample_u64(b, "sluice_identities", NULL, a->ids ? identities_count(a->ids, NULL) : 0);
}

static void kube_families(struct agent *a, struct prom_buf *b)
{
	struct kube_kind_counters kc[32];
	size_t n = a->kube ? kube_counters(a->kube, kc, sizeof(kc) / sizeof(kc[0])) : 0;

	prom_family(b, "sluice_kube_watch_events_total", "counter",
		    "Watch events from the Kubernetes API, by kind and type");
	for (size_t i = 0; i < n; i++)
		for (int t = 0; t < KUBE_EV_TYPES; t++)
			prom_sample_u64(b, "sluice_kube_watch_events_total",
					(const char *[]){ "kind", kc[i].kind, "type",
							  kube_type_names[t], NULL },
					kc[i].by_type[t]);
	prom_family(b, "sluice_kube_lists_total", "counter",
		    "Lists of a kind from the Kubernetes API (the first and every relist)");
	for (size_t i = 0; i < n; i++)
		prom_sample_u64(b, "sluice_kube_lists_total",
				(const char *[]){ "kind", kc[i].kind, NULL }, kc[i].lists);
	prom_family(b, "sluice_kube_relists_total", "counter",
		    "Relists of a kind after its watch expired (410 Gone)");
	for (size_t i = 0; i < n; i++)
		prom_sample_u64(b, "sluice_kube_relists_total",
				(const char *[]){ "kind", kc[i].kind, NULL }, kc[i].relists);
	prom_family(b, "sluice_kube_errors_total", "counter",
		    "Failed lists and watches of a kind (the watcher backs off and retries)");
	for (size_t i = 0; i < n; i++)
		prom_sample_u64(b, "sluice_kube_errors_total",
				(const char *[]){ "kind", kc[i].kind, NULL }, kc[i].errors);
	prom_family(b, "sluice_kube_synced", "gauge",
		    "1 once a kind has been listed and applied");
	for (size_t i = 0; i < n; i++)
		prom_sample_u64(b, "sluice_kube_synced",
				(const char *[]){ "kind", kc[i].kind, NULL }, kc[i].synced);
	prom_family(b, "sluice_kube_watch_lag_seconds", "histogram",
		    "Time from a watch event's arrival to its application to the agent's state");
	if (a->kube)
		prom_hist_write(b, "sluice_kube_watch_lag_seconds", NULL, kube_watch_lag(a->kube));
}

/* ---- flows (flowlog.h) ----------------------------------------------------- */

/*
 * Export losses by stage and one node-wide round-trip histogram: the sum
 * of the flow buffer's per-namespace-pair histograms (bucket b holds
 * smoothed RTTs below 2^b us, the last one the rest: le is 2^b us).
 */
static void flow_families(struct agent *a, struct prom_buf *b)
{
	double bounds[FLOWLOG_RTT_BUCKETS - 1];
	struct flowlog_stats st;
	bool have = a->flows && !flowlog_stats(a->flows, &st);
	struct prom_hist rtt;
	uint64_t retrans = 0;

	prom_family(b, "sluice_flow_records_total", "counter",
		    "Flow records the agent took (from the datapath, and END records of idle flows)");
	if (have)
		prom_sample_u64(b, "sluice_flow_records_total", NULL, st.received);
	prom_family(b, "sluice_flow_export_lost_total", "counter",
		    "Flow records lost on the way to sluicectl observe, by stage");
	if (have) {
		const struct {
			const char *stage;
			uint64_t v;
		} lost[] = {
			{ "ring-buffer-full", st.rb_full }, { "rate-limited", st.rate_limited },
			{ "flow-map-full", st.map_full },   { "buffer-overwritten", st.overwritten },
			{ "malformed", st.malformed },
		};

		for (size_t i = 0; i < sizeof(lost) / sizeof(lost[0]); i++)
			prom_sample_u64(b, "sluice_flow_export_lost_total",
					(const char *[]){ "stage", lost[i].stage, NULL }, lost[i].v);
	}
	prom_family(b, "sluice_flows_total", "counter",
		    "New flows (their START records) by verdict");
	if (have) {
		static const char *const names[FLOWLOG_VERDICTS] = {
			[SLUICE_FLOW_FORWARDED] = "forwarded", [SLUICE_FLOW_DROPPED] = "dropped",
			[SLUICE_FLOW_AUDIT] = "audit", [SLUICE_FLOW_TRANSLATED] = "translated",
		};

		for (size_t v = 1; v < FLOWLOG_VERDICTS; v++)
			prom_sample_u64(b, "sluice_flows_total",
					(const char *[]){ "verdict", names[v], NULL },
					st.flows_by_verdict[v]);
	}
	prom_family(b, "sluice_policy_verdicts_total", "counter",
		    "New flows a policy decided, by the policy's namespace (at most 256 named, "
		    "the rest as other) and verdict");
	if (have) {
		static const char *const pv[FLOWLOG_PV_N] = { "allowed", "denied", "audit" };

		for (size_t i = 0; i < st.npv; i++)
			for (int v = 0; v < FLOWLOG_PV_N; v++)
				prom_sample_u64(b, "sluice_policy_verdicts_total",
						(const char *[]){ "namespace", st.pv[i].ns, "verdict",
								  pv[v], NULL },
						st.pv[i].n[v]);
		if (st.npv == FLOWLOG_PV_MAX)
			for (int v = 0; v < FLOWLOG_PV_N; v++)
				prom_sample_u64(b, "sluice_policy_verdicts_total",
						(const char *[]){ "namespace", "other", "verdict",
								  pv[v], NULL },
						st.pv_other[v]);
	}
	prom_family(b, "sluice_flow_buffer_entries", "gauge",
		    "Flows held in the agent's flow buffer (--flow-buffer is the capacity)");
	if (have)
		prom_sample_u64(b, "sluice_flow_buffer_entries", NULL, st.used);
	for (size_t i = 0; i < FLOWLOG_RTT_BUCKETS - 1; i++)
		bounds[i] = (double)(1ull << i) / 1e6;
	prom_hist_init(&rtt, bounds, FLOWLOG_RTT_BUCKETS - 1);
	for (size_t i = 0; have && i < st.nns_pairs; i++) {
		const struct flowlog_hist *h = &st.ns_pairs[i];

		for (size_t k = 0; k < FLOWLOG_RTT_BUCKETS; k++)
			rtt.counts[k] += h->buckets[k];
		rtt.count += h->count;
		rtt.sum += (double)h->sum_us / 1e6;
		retrans += h->retrans;
	}
	prom_family(b, "sluice_flow_rtt_seconds", "histogram",
		    "Smoothed TCP round-trip time of pod flows in their flow records (passive, from "
		    "TCP timestamps)");
	if (have)
		prom_hist_write(b, "sluice_flow_rtt_seconds", NULL, &rtt);
	prom_family(b, "sluice_flow_tcp_retransmits_total", "counter",
		    "TCP segments sent again, counted when their flows end");
	if (have)
		prom_sample_u64(b, "sluice_flow_tcp_retransmits_total", NULL, retrans);
	prom_family(b, "sluice_flow_rtt_pairs_overflow_total", "counter",
		    "Round-trip samples not kept because the pod-pair or namespace-pair table is "
		    "full");
	if (have)
		prom_sample_u64(b, "sluice_flow_rtt_pairs_overflow_total", NULL, st.pairs_overflow);
}

/* ---- the process ---------------------------------------------------------- */

static void process_families(struct agent *a, struct prom_buf *b)
{
	FILE *f = fopen("/proc/self/statm", "re");
	unsigned long size, resident;

	prom_family(b, "sluice_agent_resident_memory_bytes", "gauge",
		    "Resident memory of the agent (/proc/self/statm)");
	if (f && fscanf(f, "%lu %lu", &size, &resident) == 2)
		prom_sample_u64(b, "sluice_agent_resident_memory_bytes", NULL,
				(uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE));
	if (f)
		fclose(f);
	prom_family(b, "sluice_agent_start_time_seconds", "gauge",
		    "When the agent started, seconds since the Unix epoch");
	prom_sample(b, "sluice_agent_start_time_seconds", NULL, a->metrics.start_time);
	prom_family(b, "sluice_build_info", "gauge", "The agent's version, always 1");
	prom_sample_u64(b, "sluice_build_info", (const char *[]){ "version", SLUICE_VERSION, NULL },
			1);
}

int prom_render(struct agent *a, struct prom_map_cache *cache, struct prom_buf *b)
{
	datapath_families(a, b);
	prefilter_families(a, b);
	map_families(a, cache, b);
	control_families(a, b);
	kube_families(a, b);
	flow_families(a, b);
	process_families(a, b);
	return b->oom ? -ENOMEM : 0;
}
