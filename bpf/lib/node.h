/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A packet from another node into this one, shared by the uplink's
 * from_netdev (host.bpf.c) and the vxlan device's from_overlay
 * (overlay.bpf.c): its source believed only as far as the way it came
 * allows (lib/origin.h), then a pod here gets it after its ingress policy.
 */
#ifndef SLUICE_BPF_NODE_H
#define SLUICE_BPF_NODE_H

#include "config.h"
#include "parse.h"
#include "origin.h"
#include "police.h"
#include "forward.h"
#include "lb.h"
#include "nodeport.h"

/*
 * A packet from another node (decapsulated by the vxlan device, or routed
 * to this node's uplink): a pod on this node gets it straight, after its
 * ingress policy, unless it belongs to a flow the host stack forwards: the
 * reply to a pod's Service connection that kube-proxy DNATed to another
 * node's pod goes up the stack, which un-NATs it. So does a new flow from
 * anything but another node's pod or another node itself (the world routed
 * to pods): the pod's replies to it go through the stack, so the stack must
 * see it too, or its conntrack finds the replies INVALID.
 */
static __always_inline int from_node_ipv4(struct __sk_buff *skb, struct cursor *c,
					  struct ethhdr *eth, __be32 outer, __u32 *reason)
{
	struct sluice_ipcache_value peer;
	struct sluice_endpoint *dst;
	struct flow f = {};
	struct iphdr *ip;
	__u32 ct_flags;
	int ret;

	ret = parse_ipv4(c, &ip);
	if (IS_DROP(ret))
		return ret;
	/* Believe the source only as far as the way it came allows
	 * (lib/origin.h); outer: the sending node's address, tunnelled,
	 * else 0 (plain on the uplink). */
	peer = ipcache_lookup(ip->saddr);
	if (outer)
		ret = tunnel_origin_check(outer, ip->saddr, &peer);
	else
		ret = uplink_origin_check(skb, skb->ifindex, eth, ip->saddr, &peer,
					  cfg_routing == SLUICE_ROUTING_OVERLAY);
	if (IS_DROP(ret))
		return ret;
	ret = police_ingress(c, ip, &peer, &dst, 0, 1, &ct_flags, &f);
	if (IS_DROP(ret) || !dst || ip->ttl <= 1)
		return IS_DROP(ret) ? ret : TC_ACT_OK; /* not for a pod: the node's */
	if (ct_flags & SLUICE_CT_F_VIA_STACK) {
		*reason = SLUICE_TO_STACK_FLOW;
		return TC_ACT_OK;
	}
	/* The reply of a Service flow a pod here started to another node's
	 * backend: the client sees the frontend. */
	if (ct_flags & SLUICE_CT_F_LB_BACKEND) {
		__u32 ihl = ip->ihl * 4;

		ret = lb4_reverse(skb, &f, ihl, SLUICE_DIR_INGRESS);
		if (ret > 0)
			ret = lb_reload(skb, &eth, &ip);
		if (IS_DROP(ret))
			return ret;
	}
	ret = redirect_to_pod(skb, eth, ip, dst);
	if (!IS_DROP(ret))
		*reason = SLUICE_FWD_REMOTE;
	return ret;
}

/* The frame from another node at skb (plain on the uplink: outer 0; else
 * the sending node's address, network order, the vxlan device having taken
 * the outer headers off): IPv4 to from_node_ipv4; anything else passes,
 * tunnelled only from a node. */
static __always_inline int from_node(struct __sk_buff *skb, __be32 outer, __u32 *reason)
{
	struct ethhdr *eth;
	struct cursor c;
	int ret;

	/* Overlay: another node's backend's reply to an external Service
	 * flow this node SNATed comes out of the tunnel (lib/nodeport.h). */
	if (outer) {
		ret = nodeport_from_tunnel(skb, outer, reason);
		if (ret != NODEPORT_NOT_OURS)
			return ret;
	}
	cursor_init(&c, skb);
	ret = parse_eth(&c, &eth);
	if (ret == ETH_P_IP)
		return from_node_ipv4(skb, &c, eth, outer, reason);
	if (IS_DROP(ret))
		return ret;
	return outer ? tunnel_sender_check(outer) : TC_ACT_OK;
}

#endif /* SLUICE_BPF_NODE_H */
