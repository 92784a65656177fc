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

#include "cidr.h"
#include "loader.h"
#include "service.h"

struct lb_shadow;

/* The backend set a frontend's Maglev table was last built from (its
 * rev-NAT index, and a hash of its (backend, id) pairs and M): a table is
 * rebuilt and swapped only when that changes. */
struct lb_maglev_sig {
	uint32_t rev_nat;
	uint64_t sig;
};

/* Ids handed out by this agent: never reused while it runs, so a tracking
 * entry that names a removed backend never finds another one there. Also
 * what the agent remembers between syncs of the maps it wrote. */
struct lb_ids {
	uint32_t next_backend;
	uint32_t next_rev_nat;
	struct lb_maglev_sig *maglev;	/* sorted by rev_nat; lost on restart, */
	size_t nmaglev;			/* when tables are compared entry by entry */
	/* What the Service maps hold (lb.c's shadow): read from the maps at
	 * the first lb_sync, then kept up to date with what lb_sync writes, so
	 * that a sync reads no map (10 000 Services: 60 000 entries, two
	 * system calls each, on every endpoint change). NULL: read the maps. */
	struct lb_shadow *shadow;
};

/* Free what ids holds (not ids): the Maglev signatures and the shadow
 * (the next lb_sync reads the maps again). */
void lb_ids_free(struct lb_ids *ids);

struct lb_stats {
	size_t frontends;	/* programmed (scope INT entries) */
	size_t ext_entries;	/* scope EXT entries (NodePort, externalIPs, LB IPs) */
	size_t backends;	/* in sluice_be4_v1 */
	size_t written;		/* entries written or replaced */
	size_t deleted;
	size_t maglev_built;	/* Maglev tables built and swapped in */
};

/* Whether the view's Service vs would have frontends programmed. */
int lb_service_translated(const struct svc_view_service *vs);

/* This node, as the Service entries need it: its address on --device
 * (NodePort frontends; 0: none are written) and its pod CIDR (a backend in
 * it is local, like one whose endpoint names this node). Host order. */
struct lb_node {
	uint32_t node_ip;
	struct cidr4 pod_cidr;	/* prefix 0: unknown */
};

/* Whether b is a pod of this node: its endpoint's nodeName, or an address
 * in this node's pod CIDR. */
int lb_backend_local(const struct svc_backend *b, const struct lb_node *node);

/* A pod's hostPort as a frontend: (fe_ip, fe_port, proto) in both scopes
 * (pods here: INT; other nodes and the world: EXT), slot 0 flagged
 * SLUICE_LB_F_HOSTPORT, its one backend (be_ip, be_port). Host order. */
struct lb_hostport {
	uint32_t fe_ip;
	uint32_t be_ip;
	uint16_t fe_port;
	uint16_t be_port;
	uint8_t proto;
};

/* Whether vp->backends[b] is one new flows choose from (ready, or when
 * none is, serving and terminating): what lb_sync writes into the slots,
 * for `sluicectl policy explain --to` a frontend. */
int lb_new_flow_candidate(const struct svc_view_port *vp, size_t b);

/* Bring the Service maps in line with v (NULL: no Services, as with
 * --kube-proxy-replacement off) and the host ports hp[0..nhp). node may be
 * NULL (no NodePorts, local by nodeName only). A hostPort whose frontend
 * a Service has too loses it to the Service. Returns 0 or a negative errno
 * with err naming the map and the entry. */
int lb_sync_with(struct datapath *dp, const struct svc_view *v, const struct lb_node *node,
		 const struct lb_hostport *hp, size_t nhp, struct lb_ids *ids, struct lb_stats *st,
		 char *err, size_t errlen);
/* lb_sync_with, no host ports. */
int lb_sync(struct datapath *dp, const struct svc_view *v, const struct lb_node *node,
	    struct lb_ids *ids, struct lb_stats *st, char *err, size_t errlen);

#endif /* SLUICE_AGENT_LB_H */
