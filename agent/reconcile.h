/* SPDX-License-Identifier: Apache-2.0 */
/* The reconcile step: store -> view -> compile -> maps and routes. */
#ifndef SLUICE_AGENT_RECONCILE_H
#define SLUICE_AGENT_RECONCILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "agent.h"
#include "store.h"

/* Recompile policy and the other nodes' routes for the current objects and
 * endpoints and bring the maps and routes in line. Returns 0 or a negative
 * errno with err set. */
int agent_policy_sync(struct agent *agent, char *err, size_t errlen);
/* The same for an explicit change (sluicectl apply/delete): a policy that
 * does not fit fails the sync and nothing is written (-ENOSPC), instead of
 * the policy being left out. */
int agent_policy_sync_strict(struct agent *agent, char *err, size_t errlen);

/* Program the Service maps from the store's Services (empty without
 * --kube-proxy-replacement). Returns 0 or a negative errno with err set. */
int agent_services_sync(struct agent *agent, char *err, size_t errlen);

/* Bring the prefilter maps in line with the SluicePrefilter objects (run
 * by the syncs above when one or a Node changed). Returns 0 or a negative
 * errno with err set. */
int agent_prefilter_sync(struct agent *agent, char *err, size_t errlen);

/* Whether a list of store changes ({"kind", ...}) can change policy or
 * routes: false when only Services and EndpointSlices changed. */
bool agent_changes_touch_policy(const json_t *changes);

/* Apply what the Kubernetes watchers queued and bring the datapath in line. */
void agent_kube_apply(struct agent *a);
/* The watchers queued events: apply them now (--sync-batch-ms 0, or the
 * last sync they caused is that long ago) or leave them queued until the
 * window after it is over. batch_timeout_ms: -1 nothing waits, else the ms
 * until the window is over (0: call agent_kube_apply now). */
void agent_kube_wakeup(struct agent *a);
int agent_kube_batch_timeout_ms(const struct agent *a);

/* Kubernetes mode: wait (at most a->pod_wait_ms, applying the API's events
 * meanwhile) until the store holds Pod ns/name, so a new pod's first packet
 * meets its real labels. Without it the pod is isolated until it comes. */
void agent_wait_for_pod(struct agent *a, const char *ns, const char *name);

/* {"notEnforced": [{"object", "reason"}], "lastSyncError"} for status. */
json_t *agent_policy_status_json(struct agent *a);
/* Why the policy named object ("NetworkPolicy ns/name") is left out of the
 * maps, or NULL when it is enforced. */
const char *agent_policy_not_enforced(struct agent *a, const char *object);

/* Build the store's view of the world, with this node's pods and its own
 * addresses. *locals is the caller's to free, after store_view_free. */
/* The pods this node runs (ready endpoints), names borrowed from the
 * endpoints: valid until the next ADD, DEL or GC. NULL: out of memory. */
struct store_local *agent_local_pods(struct agent *a, size_t *n);
int agent_view_build(struct agent *a, struct store_view *v, struct store_local **locals,
		     size_t *nlocals, uint32_t node_ips[2]);
/* The same with this node's pods only in w.pods (store_view_build_lean):
 * for reads that look pods up by name or address, or need none. */
int agent_view_build_lean(struct agent *a, struct store_view *v, struct store_local **locals,
			  size_t *nlocals, uint32_t node_ips[2]);

#endif /* SLUICE_AGENT_RECONCILE_H */
