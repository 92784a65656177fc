/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's state, shared by the API server (server.c), the reconcile
 * step (reconcile.c) and the main loop (main.c), so that neither module
 * reaches into the other for it.
 */
#ifndef SLUICE_AGENT_AGENT_H
#define SLUICE_AGENT_AGENT_H

#include <stddef.h>

#include "compile.h"
#include "cnichain.h"
#include "delq_replay.h"
#include "endpoint.h"
#include "flowlog.h"
#include "health.h"
#include "identity.h"
#include "ipam.h"
#include "kube.h"
#include "lb.h"
#include "loader.h"
#include "node.h"
#include "prefilter_sync.h"
#include "prom.h"
#include "store.h"

/* CNI commands the metrics time, by the API operation that serves them. */
enum agent_cni_cmd { AGENT_CNI_ADD, AGENT_CNI_DEL, AGENT_CNI_CHECK, AGENT_CNI_GC,
		     AGENT_CNI_STATUS, AGENT_CNI_CMDS };

struct agent_metrics {
	struct prom_hist cni[AGENT_CNI_CMDS][2];	/* [cmd][0 ok, 1 error], seconds */
	struct prom_hist policy_sync;			/* seconds, every policy sync */
	uint64_t policy_sync_failures;
	uint64_t policy_entries_written;		/* entries written or replaced, all syncs */
	uint64_t policy_entries_removed;
	/* Entries the last successful policy sync left in the maps only the
	 * agent writes (the map counts of /metrics need not walk them). */
	bool policy_counts_known;
	uint64_t policy_allow, policy_deny, ipcache;
	double start_time;				/* wall clock, seconds since the epoch */
};

/* Set the histograms' buckets and the start time (main, at start-up). */
void agent_metrics_init(struct agent_metrics *m);

struct agent {
	const char *node_name;
	const char *socket_path;
	struct datapath *dp;
	struct ipam *ipam;
	struct endpoints *eps;
	struct store *store;
	struct identities *ids;
	struct compiler *compiler;
	struct node_net *net;
	struct kube *kube;	/* NULL without the Kubernetes API */
	int ready;		/* recovery done: ADD can be served */
	unsigned pod_wait_ms;	/* Kubernetes mode: how long ADD waits for the Pod */
	/* Watch events within sync_batch_ms of the last sync they caused
	 * wait in the watchers' queue until then, and are applied and synced
	 * together (agent_kube_wakeup; 0: on each wakeup). */
	unsigned sync_batch_ms;
	bool batch_open;	/* events wait for batch_due_ms */
	double batch_due_ms;	/* CLOCK_MONOTONIC: the window's end */
	unsigned long long policy_syncs, services_syncs;	/* totals, for status */
	char sync_error[512];	/* the last failed reconcile, "" once one succeeds */
	/* The pods this node ran at the last policy sync, "ns\0name" sorted
	 * (reconcile.c): a pod that stops being local is a change too. */
	char **prev_locals;
	size_t nprev_locals;
	bool compile_all;	/* the next sync recomputes from every object */
	bool compile_check;	/* --compile-check: compare with a full build */
	/* A sync's changes touched what the Services use (Services, slices,
	 * Nodes; or the host ports of this node's endpoints, whose signature
	 * the last Services sync saw is hostports_sig): the Services sync
	 * follows. */
	bool services_dirty;
	uint64_t hostports_sig;
	/* --kube-proxy-replacement: the Service maps are programmed (lb.c);
	 * off, they are kept empty. */
	int kube_proxy_replacement;
	struct lb_ids lb_ids;
	struct lb_stats lb_stats;
	/* healthCheckNodePort listeners (NULL in tools and tests that run
	 * no poll loop). */
	struct health_server *health;
	/* The uplink's XDP attachment (--xdp), for status; has_xdp 0 without
	 * --device. */
	struct xdp_status xdp;
	int has_xdp;
	size_t health_listeners;	/* open at the last sync */
	/* The last policy sync and Services sync that finished (successful
	 * or not), for `sluicectl status`: what the control plane costs. */
	struct agent_sync_info {
		long long at;		/* wall clock, seconds since the epoch; 0: none yet */
		double ms;		/* how long it took */
		size_t entries;		/* map entries it left */
		size_t written;		/* entries written or replaced */
		size_t removed;
		size_t policies;	/* policies in the view it compiled (policy sync) */
		bool failed;
	} last_policy_sync, last_services_sync;
	/* SluicePrefilter objects in the uplink's prefilter maps (NULL in
	 * tools and tests without a datapath). prefilter_dirty: a sync's
	 * changes touched a SluicePrefilter or a Node (addresses, pod CIDRs,
	 * this node's labels), so the prefilter sync follows. */
	struct pf_sync *prefilter;
	bool prefilter_dirty;
	struct pf_sync_stats last_prefilter_sync;
	char prefilter_error[512];	/* the last failed prefilter sync, "" after a good one */
	/* Recent flows from the datapath's records (flowlog.h; NULL in
	 * tools and tests without one). */
	struct flowlog *flows;
	/* What /metrics renders beyond the maps' counters (prom_collect.c);
	 * updated and read by the main thread only. */
	struct agent_metrics metrics;
	/* The DELs sluice-cni queued while no agent ran, replayed at start
	 * (delq_start.c), for status. */
	struct delq_stats delq;
	/* What --cni-conf-dir chains after sluice-cni (cnichain.h): a
	 * bandwidth plugin there is a status condition, and in tc mode an ADD
	 * with limits on its network is refused. NULL in tools and tests. */
	struct cnichain *cnichain;
};

/* How long a CNI ADD waits for its Pod object by default (--pod-labels-wait). */
#define AGENT_POD_WAIT_MS 10000
/* How long watch events after a sync wait by default (--sync-batch-ms): at
 * 10 000 pods, 20 ms takes a third fewer syncs for a burst and leaves a
 * single change's latency as it was; 50 ms halves them and adds some 20 ms
 * to changes that follow each other (bench/controlplane.sh). */
#define AGENT_SYNC_BATCH_MS 20

#endif /* SLUICE_AGENT_AGENT_H */
