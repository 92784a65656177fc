/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Service maps (bpf/lib/lb.h) programmed from the store's Service view:
 * each handled Service's clusterIPs, externalIPs and load-balancer
 * addresses on each TCP and UDP port become frontends whose backends are
 * the port's ready endpoints (or, when none is ready, its serving and
 * terminating ones). Only entries that differ from what the maps hold are
 * written, in an order where a lookup sees the old Service or the new one,
 * never a mix (docs/SERVICES-DATAPATH.md).
 */
#ifndef SLUICE_AGENT_LB_H
#define SLUICE_AGENT_LB_H

#include <stddef.h>
#include <stdint.h>

#include "loader.h"
#include "service.h"

/* Ids handed out by this agent: never reused while it runs, so a tracking
 * entry that names a removed backend never finds another one there. */
struct lb_ids {
	uint32_t next_backend;
	uint32_t next_rev_nat;
};

struct lb_stats {
	size_t frontends;	/* programmed */
	size_t backends;	/* in sluice_be4_v1 */
	size_t written;		/* entries written or replaced */
	size_t deleted;
};

/* Whether the view's Service vs would have frontends programmed. */
int lb_service_translated(const struct svc_view_service *vs);

/* Whether vp->backends[b] is one new flows choose from (ready, or when
 * none is, serving and terminating): what lb_sync writes into the slots,
 * for `sluicectl policy explain --to` a frontend. */
int lb_new_flow_candidate(const struct svc_view_port *vp, size_t b);

/* Bring the Service maps in line with v (NULL: no Services, as with
 * --kube-proxy-replacement off). Returns 0 or a negative errno with err
 * naming the map and the entry. */
int lb_sync(struct datapath *dp, const struct svc_view *v, struct lb_ids *ids,
	    struct lb_stats *st, char *err, size_t errlen);

#endif /* SLUICE_AGENT_LB_H */
