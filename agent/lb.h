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

struct lb_shadow;

/* Ids handed out by this agent: never reused while it runs, so a tracking
 * entry that names a removed backend never finds another one there. And
 * what the Service maps hold (lb.c's shadow): read from the maps at the
 * first lb_sync, then kept up to date with what lb_sync writes, so that a
 * sync reads no map (10 000 Services: 60 000 entries, two system calls
 * each, on every endpoint change). NULL: read the maps. */
struct lb_ids {
	uint32_t next_backend;
	uint32_t next_rev_nat;
	struct lb_shadow *shadow;
};

/* Free ids->shadow (the next lb_sync reads the maps again). */
void lb_ids_free(struct lb_ids *ids);

struct lb_stats {
	size_t frontends;	/* programmed */
	size_t backends;	/* in sluice_be4_v1 */
	size_t written;		/* entries written or replaced */
	size_t deleted;
};

/* Whether the view's Service vs would have frontends programmed. */
int lb_service_translated(const struct svc_view_service *vs);

/* Bring the Service maps in line with v (NULL: no Services, as with
 * --kube-proxy-replacement off). Returns 0 or a negative errno with err
 * naming the map and the entry. */
int lb_sync(struct datapath *dp, const struct svc_view *v, struct lb_ids *ids,
	    struct lb_stats *st, char *err, size_t errlen);

#endif /* SLUICE_AGENT_LB_H */
