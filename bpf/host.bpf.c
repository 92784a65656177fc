// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Programs on the node's uplink (--device).
 *
 * from_netdev: tc ingress of the uplink: traffic from pods on other nodes
 *   (native routing; with overlay routing, VXLAN packets the program
 *   decapsulates itself) goes straight to the local pod after its ingress
 *   policy, and replies to masqueraded flows are translated back. Before
 *   any of that, a source is believed only as far as the way the packet
 *   came allows (lib/origin.h): overlay packets only from other nodes, an
 *   inner source only from its own node, no plain packet on the uplink with
 *   this node's or a local pod's source (overlay: any pod's; native:
 *   another node's pod's only from the next hop's MAC). Clients outside the
 *   cluster reaching a NodePort, externalIP or LB IP are translated to a
 *   backend here (lib/nodeport.h), after those checks.
 *   The first stage (lib/first_stage.h: malformed headers, the prefilter,
 *   the sanity drops) runs before all of that when the XDP program
 *   (xdp.bpf.c) does not.
 * to_netdev: tc egress of the uplink: masquerade.
 *
 * Flows the host stack forwards (kube-proxy's Service NAT, anything routed
 * by the node) are marked in connection tracking where they leave the
 * stack (to_pod, to_overlay, to_netdev) and stay on the stack: none of
 * their packets, replies included, take a fast path, so the node's
 * netfilter sees both directions and un-NATs the replies.
 *
 * Each entry point has one exit that records the verdict in sluice_stats_v2
 * (from_netdev: and a packet to a pod in its flow, lib/flow.h): every packet
 * it drops once under its drop reason, every packet it redirects or
 * rewrites once under that verdict; a packet handed on to the host stack
 * untouched (reason pass: the node's own traffic, mostly) is not counted.
 * tests/bpf/test_pktfuzz.c checks exactly this, packet by packet.
 * The maps are shared with the other entry files' objects by their pins
 * (LIBBPF_PIN_BY_NAME, agent/loader.c).
 */
#include "lib/common.h"
#include "lib/parse.h"
#include "lib/metrics.h"
#include "lib/endpoint.h"
#include "lib/l4.h"
#include "lib/ct.h"
#include "lib/config.h"
#include "lib/nat.h"
#include "lib/encap.h"
#include "lib/decap.h"
#include "lib/node.h"
#include "lib/nodeport.h"
#include "lib/prefilter4.h"
#include "lib/first_stage.h"
#include "lib/flow.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* tc ingress of the node's uplink (--device), both routing modes. */
SEC("tc")
int from_netdev(struct __sk_buff *skb)
{
	__u32 reason = SLUICE_PASS, len = skb->len, reverse = 0;
	int ret = 0;

	/* The first stage (malformed headers, prefilter, sanity drops) is
	 * the XDP program's while it runs; else it is done here, alike. */
	if (!xdp_first_stage_active()) {
		ret = first_stage_skb(skb);
		if (IS_DROP(ret))
			goto out;
	}
	if (cfg_routing == SLUICE_ROUTING_OVERLAY) {
		ret = overlay_decap(skb, &reason);
		if (ret == LEAVE_TO_DEVICE) {
			ret = TC_ACT_OK; /* checked; the device's from here */
			flow_forget(); /* from_overlay judges it again */
		}
		if (ret != NOT_TUNNELLED)
			goto out;
		ret = 0;
	}
	/* North-south Services (lib/nodeport.h) before masquerade's
	 * replies: their NAT pairs share its maps. */
	ret = nodeport_from_netdev(skb, &reason);
	if (ret != NODEPORT_NOT_OURS)
		goto out;
	ret = 0;
	if (cfg_masquerade)
		ret = nat_reverse(skb, &reverse);
	if (!IS_DROP(ret))
		ret = from_node(skb, 0, &reason);
out:
	flow_finish(skb, ret, reason, SLUICE_DIR_INGRESS, len, 1);
	if (IS_DROP(ret)) {
		metrics_count(DROP_REASON(ret), SLUICE_DIR_INGRESS, len);
		return TC_ACT_SHOT;
	}
	if (reverse)
		metrics_count(reverse, SLUICE_DIR_INGRESS, len);
	if (reason != SLUICE_PASS)
		metrics_count(reason, SLUICE_DIR_INGRESS, len);
	return ret;
}

/*
 * tc egress of the node's uplink. from_pod's own packets (native routing)
 * carry SLUICE_MARK_FAST and pass. A pod's packet the host stack forwarded
 * here marks its flow as the stack's (its replies come back through the
 * stack, which un-NATs them: a Service kube-proxy DNATed to an address
 * outside the pod network), goes into the tunnel when it is for another
 * node (overlay) and, leaving the cluster, gets the node's address
 * (masquerade).
 */
SEC("tc")
int to_netdev(struct __sk_buff *skb)
{
	__u32 len = skb->len, l4, port_off;
	struct ethhdr *eth;
	struct flow f = {};
	struct cursor c;
	struct iphdr *ip;
	__be16 port;
	int ret, via;

	if (skb->mark & SLUICE_MARK_FAST) {
		skb->mark &= ~SLUICE_MARK_FAST;
		return TC_ACT_OK;
	}
	cursor_init(&c, skb);
	if (parse_eth(&c, &eth) != ETH_P_IP || IS_DROP(parse_ipv4(&c, &ip)))
		return TC_ACT_OK;
	if (!endpoint_lookup4(ip->saddr))
		return TC_ACT_OK;
	l4 = ETH_HLEN + ip->ihl * 4;
	ret = parse_flow(&c, ip, &f);
	if (IS_DROP(ret))
		goto drop;
	via = ct_track_via_stack(&f, bpf_ktime_get_ns());
	/* Overlay: no pod's packet crosses the underlay plain (the other
	 * node drops it as forged, lib/origin.h), and this one is headed for
	 * another node: its own address (a Service kube-proxy DNATed to a
	 * node's address, as the API server's is). The vxlan device tunnels
	 * it there instead; to_overlay finds the key set. */
	if (cfg_routing == SLUICE_ROUTING_OVERLAY && cfg_vxlan_ifindex) {
		struct sluice_ipcache_value peer = ipcache_lookup(f.key.daddr);

		if (peer.tunnel_endpoint) {
			ret = set_tunnel(skb, peer.tunnel_endpoint);
			if (IS_DROP(ret))
				goto drop;
			metrics_count(SLUICE_FWD_OVERLAY_HOST, SLUICE_DIR_EGRESS, len);
			return bpf_redirect(cfg_vxlan_ifindex, 0);
		}
	}
	if (!cfg_masquerade || !nat_masquerade_wanted(f.key.daddr))
		return TC_ACT_OK;
	/* A pod's reply to a flow the other end started (routed to the pod's
	 * address) keeps that address: only flows pods start are masqueraded. */
	if (via & CT_VIA_REPLY)
		return TC_ACT_OK;
	if (f.later_fragment) {
		ret = nat_later_fragment(skb, &f, cfg_node_ip);
		if (IS_DROP(ret))
			goto drop;
		if (ret)
			metrics_count(SLUICE_NAT_MASQ, SLUICE_DIR_EGRESS, len);
		return TC_ACT_OK;
	}
	if (f.key.proto != IPPROTO_TCP && f.key.proto != IPPROTO_UDP && f.key.proto != IPPROTO_ICMP)
		return TC_ACT_OK; /* SCTP's CRC32c cannot be patched incrementally */
	if (f.key.proto == IPPROTO_ICMP && (f.policy_port >> 8) != ICMP_ECHO)
		return TC_ACT_OK;
	ret = nat_port_for(skb, &f, cfg_node_ip, cfg_nat_port_min, cfg_nat_port_max,
			   via & CT_VIA_FIRST, &port);
	if (IS_DROP(ret))
		goto drop;
	port_off = f.key.proto == IPPROTO_ICMP ? l4 + 4 : l4;
	if (nat_rewrite(skb, f.key.proto, l4, IP_OFF + offsetof(struct iphdr, saddr), f.key.saddr,
			cfg_node_ip, port_off, f.key.sport, port)) {
		ret = DROP(SLUICE_DROP_NAT_PORTS);
		goto drop;
	}
	metrics_count(SLUICE_NAT_MASQ, SLUICE_DIR_EGRESS, len);
	return TC_ACT_OK;
drop:
	metrics_count(DROP_REASON(ret), SLUICE_DIR_EGRESS, len);
	return TC_ACT_SHOT;
}
