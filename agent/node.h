/* SPDX-License-Identifier: Apache-2.0 */
/*
 * This node's place in the cluster network: the uplink device and address,
 * the routing mode, the overlay's vxlan device (overlay) or the routes to
 * other nodes' pod CIDRs (native), and the MTU pods get.
 */
#ifndef SLUICE_NODE_H
#define SLUICE_NODE_H

#include <net/if.h>
#include <stddef.h>
#include <stdint.h>

#include "compile.h"
#include "loader.h"

#define VXLAN_IFNAME "sluice_vxlan"

struct node_route {
	struct cidr4 dst;
	uint32_t gw;
};

struct node_net {
	enum sluice_routing routing;
	char device[IFNAMSIZ];	/* "" when none was given */
	int dev_ifindex;
	unsigned int dev_mtu;
	uint32_t node_ip;	/* host order; 0 when unknown */
	int vxlan_ifindex;
	unsigned int pod_mtu;	/* 0: the kernel's default */
	struct nl_handle *nl;
	struct node_route *routes;	/* the routes to other nodes' pods this agent installed */
	size_t nroutes;
	/* The device and source address they were installed with: while
	 * these and the wanted routes stay the same, a sync installs nothing
	 * (500 nodes were 500 netlink round trips per pod change), except
	 * once a minute (routes_at, monotonic seconds), which puts back a
	 * route someone removed. */
	int routes_ifindex;
	uint32_t routes_src;
	long routes_at;
	int masquerade;
	struct cidr4 *nomasq_extra;	/* --non-masquerade-cidr */
	size_t nnomasq_extra;
	struct cidr4 *nomasq;		/* what sluice_nomasq_v1 holds */
	size_t nnomasq;
	int nomasq_loaded;		/* nomasq read from the pinned map yet */
	uint32_t router;		/* overlay: the router address (host order), once known */
	struct nl_handle *neigh_mon;	/* the neighbour table's changes (NULL: none) */
	struct in_addr *hops;		/* next hops towards the other nodes on the uplink */
	size_t nhops;
	uint32_t *hop_nodes;		/* the nodes (host order) hops was made for */
	size_t nhop_nodes;
};

/* Look the device up, find the node address (node_ip NULL: the device's
 * first address) and, for overlay routing, create the vxlan device (no ARP:
 * the routes into it need no neighbours). */
int node_net_open(struct node_net *n, enum sluice_routing routing, const char *device,
		  const char *node_ip, char *err, size_t errlen);
/* Attach the node-device programs: from_overlay and to_overlay on the vxlan
 * device (overlay), from_netdev and to_netdev on the uplink. */
int node_net_attach(struct node_net *n, struct datapath *dp, char *err, size_t errlen);
/* Routes to the other nodes' pod CIDRs, adding what is missing and removing
 * what is no longer wanted: via the nodes' addresses on the uplink (native),
 * or into the vxlan device from the router address (overlay: for the node's
 * own traffic and what kube-proxy DNATs there; pods' traffic is tunnelled
 * by from_pod). Tagged with NL_RTPROT_SLUICE. */
int node_net_sync_routes(struct node_net *n, const struct compile_node *remote, size_t nremote,
			 char *err, size_t errlen);
/* Masquerade: never for the pod CIDRs of every node, node addresses and
 * the extra CIDRs; brings sluice_nomasq_v1 in line. */
int node_net_sync_nomasq(struct node_net *n, struct datapath *dp, const struct cidr4 *local_pods,
			 const struct compile_node *remote, size_t nremote, char *err,
			 size_t errlen);
/* Add the masquerade's node ports [lo, hi] to the node's
 * net.ipv4.ip_local_reserved_ports, keeping what is there, so that the
 * kernel never gives one to a node socket (a bind to port 0, a connect);
 * warns when ip_local_port_range overlaps them. Returns 0 or -errno. */
int node_net_reserve_nat_ports(struct node_net *n, unsigned int lo, unsigned int hi, char *err,
			       size_t errlen);
/*
 * Another node's pod's packets (native routing) and another node's overlay
 * packets (when it shares this node's segment) are believed only from the
 * MAC of the next hop towards that node (bpf/lib/origin.h), which the
 * datapath reads from the neighbour table and drops them while it is
 * unresolved. Have the kernel resolve the next hop towards every other
 * node now (the hops are remembered for node_net_neigh_events).
 */
void node_net_keep_neighs(struct node_net *n, const struct compile_node *remote, size_t nremote);
/* The neighbour monitor's fd (-1: none) and what to do when it is readable:
 * resolve again any of those hops the kernel deleted or gave up on. */
int node_net_neigh_fd(const struct node_net *n);
void node_net_neigh_events(struct node_net *n);
void node_net_close(struct node_net *n);

const char *routing_name(enum sluice_routing r);
int routing_parse(const char *text, enum sluice_routing *r);

#endif /* SLUICE_NODE_H */
