// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Programs on a pod's host-side veth ("lxc…").
 *
 * from_pod: tc ingress of the host veth, i.e. every packet the pod sends.
 *   The source must be the pod's own address. A flow's first packet is
 *   checked against the pod's egress policy and, when the destination is a
 *   pod on this node, that pod's ingress policy; the allowed flow is
 *   tracked, and its later packets and replies pass on the entry. IPv4 to
 *   another pod on this node is routed here: TTL decremented, MACs
 *   rewritten, and handed straight to the destination pod's interface with
 *   bpf_redirect_peer (no bridge, no iptables, no second trip through the
 *   host stack). Everything else (the node, other nodes, the world) goes to
 *   the host stack, so kube-proxy and the node's routing keep working. ARP
 *   passes; other non-IPv4 traffic is dropped: sluice is IPv4-only today.
 * to_pod: tc egress of the host veth, i.e. what the host stack sends to the
 *   pod: the pod's ingress policy for flows that did not come from a local
 *   pod (those were checked in from_pod). The node itself may always reach
 *   its pods.
 * from_overlay / from_netdev: tc ingress of the vxlan device (overlay) or
 *   the node's uplink (native routing): traffic from pods on other nodes
 *   goes straight to the local pod after its ingress policy. With overlay
 *   routing, from_pod encapsulates traffic for other nodes' pods itself.
 *   Before any of that, a source is believed only as far as the way the
 *   packet came allows (lib/origin.h): overlay packets only from other
 *   nodes, an inner source only from its own node, no plain packet on the
 *   uplink with this node's or a local pod's source (overlay: any pod's;
 *   native: another node's pod's only from the next hop's MAC).
 * to_overlay: tc egress of the vxlan device: what the host stack routes
 *   into the tunnel (the node's own traffic, Service traffic kube-proxy
 *   DNATed to another node's pod) gets its tunnel key from the ipcache.
 * to_netdev: tc egress of the uplink: masquerade.
 *
 * Flows the host stack forwards (kube-proxy's Service NAT, anything routed
 * by the node) are marked in connection tracking where they leave the
 * stack (to_pod, to_overlay, to_netdev) and stay on the stack: none of
 * their packets, replies included, take a fast path, so the node's
 * netfilter sees both directions and un-NATs the replies.
 *
 * Each entry point has one exit that records the verdict in sluice_stats_v2.
 */
#include "lib/common.h"
#include "lib/parse.h"
#include "lib/metrics.h"
#include "lib/endpoint.h"
#include "lib/frag.h"
#include "lib/l4.h"
#include "lib/ct.h"
#include "lib/policy.h"
#include "lib/nat.h"
#include "lib/overlay.h"
#include "lib/origin.h"
#include "lib/config.h"
#include "lib/forward.h"
#include "lib/police.h"
#include "lib/encap.h"
#include "lib/decap.h"
#include "lib/node.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

static __always_inline int from_pod_ipv4(struct __sk_buff *skb, struct cursor *c,
					 struct ethhdr *eth, __u32 *reason)
{
	struct sluice_endpoint *src, *dst;
	struct flow f = {};
	struct iphdr *ip;
	__u32 ct_flags;
	int ret;

	ret = parse_ipv4(c, &ip);
	if (IS_DROP(ret))
		return ret;

	/* A pod may only send from the address sluice gave it. */
	src = endpoint_lookup4(ip->saddr);
	if (!src || src->ifindex != skb->ifindex)
		return DROP(SLUICE_DROP_SPOOFED);

	ret = parse_flow(c, ip, &f);
	if (IS_DROP(ret))
		return ret;
	dst = endpoint_lookup4(ip->daddr);
	if (!dst) {
		ret = tunnel_port_check(&f);
		if (IS_DROP(ret))
			return ret;
	}
	ret = track_and_police(&f, src, dst, NULL, SLUICE_DIR_EGRESS, 0, 0, &ct_flags);
	if (IS_DROP(ret))
		return ret;

	/* TTL about to expire: the host stack sends ICMP time exceeded. Packet
	 * pointers are still valid: nothing above changed the packet. */
	if (ip->ttl <= 1)
		return TC_ACT_OK;
	/* A flow the host stack forwards (a reply to a Service connection
	 * kube-proxy DNATed to this pod, say) stays on the stack. */
	if (ct_flags & SLUICE_CT_F_VIA_STACK) {
		*reason = SLUICE_TO_STACK_FLOW;
		return TC_ACT_OK;
	}
	if (!dst) {
		if (cfg_routing == SLUICE_ROUTING_OVERLAY && cfg_vxlan_ifindex)
			return encap_to_node(skb, eth, ip, reason);
		return to_remote_native(skb, ip, reason);
	}

	ret = redirect_to_pod(eth, ip, dst);
	if (!IS_DROP(ret))
		*reason = SLUICE_FWD_LOCAL;
	return ret;
}

SEC("tc")
int from_pod(struct __sk_buff *skb)
{
	__u32 reason = SLUICE_PASS, len = skb->len;
	struct ethhdr *eth;
	struct cursor c;
	int ret;

	cursor_init(&c, skb);
	ret = parse_eth(&c, &eth);
	if (IS_DROP(ret))
		goto out;
	switch (ret) {
	case ETH_P_IP:
		ret = from_pod_ipv4(skb, &c, eth, &reason);
		break;
	case ETH_P_ARP:
		ret = TC_ACT_OK;
		break;
	default:
		ret = DROP(SLUICE_DROP_UNKNOWN_L3);
		break;
	}
out:
	if (IS_DROP(ret)) {
		metrics_count(DROP_REASON(ret), SLUICE_DIR_EGRESS, len);
		return TC_ACT_SHOT;
	}
	metrics_count(reason, SLUICE_DIR_EGRESS, len);
	return ret;
}

static __always_inline int from_node(struct __sk_buff *skb, int netdev)
{
	__u32 reason = SLUICE_PASS, len = skb->len, reverse = 0;
	struct bpf_tunnel_key key;
	struct ethhdr *eth;
	__be32 outer = 0;
	struct cursor c;
	int ret = 0;

	if (netdev && cfg_routing == SLUICE_ROUTING_OVERLAY) {
		ret = overlay_decap(skb, &reason);
		if (ret == LEAVE_TO_DEVICE)
			ret = TC_ACT_OK; /* checked; the device's from here */
		if (ret != NOT_TUNNELLED)
			goto out;
		ret = 0;
	}
	/* What the vxlan device took in: from whom (its collect_md tunnel
	 * key). A frame without one was not tunnelled by anyone. */
	if (!netdev) {
		if (bpf_skb_get_tunnel_key(skb, &key, sizeof(key), 0) || !key.remote_ipv4) {
			ret = DROP(SLUICE_DROP_TUNNEL_SOURCE);
			goto out;
		}
		outer = bpf_htonl(key.remote_ipv4);
	}
	if (netdev && cfg_masquerade)
		ret = nat_reverse(skb, &reverse);
	if (!IS_DROP(ret)) {
		cursor_init(&c, skb);
		ret = parse_eth(&c, &eth);
		if (ret == ETH_P_IP)
			ret = from_node_ipv4(skb, &c, eth, outer, &reason);
		else if (!IS_DROP(ret))
			ret = outer ? tunnel_sender_check(outer) : TC_ACT_OK;
	}
out:
	if (IS_DROP(ret)) {
		metrics_count(DROP_REASON(ret), SLUICE_DIR_INGRESS, len);
		return TC_ACT_SHOT;
	}
	/* Up the stack from the tunnel: the inner frame is addressed to the
	 * sending node's device, not to ours, which the IP layer would drop
	 * as meant for another host. It is ours: the sender tunnelled it here. */
	if (ret == TC_ACT_OK && !netdev && skb->pkt_type == PACKET_OTHERHOST)
		bpf_skb_change_type(skb, PACKET_HOST);
	if (reverse)
		metrics_count(reverse, SLUICE_DIR_INGRESS, len);
	if (reason != SLUICE_PASS)
		metrics_count(reason, SLUICE_DIR_INGRESS, len);
	return ret;
}

/* tc ingress of the vxlan device (overlay routing). */
SEC("tc")
int from_overlay(struct __sk_buff *skb)
{
	return from_node(skb, 0);
}

/* tc ingress of the node's uplink (--device, native routing). */
SEC("tc")
int from_netdev(struct __sk_buff *skb)
{
	return from_node(skb, 1);
}

/*
 * tc egress of the vxlan device (overlay routing). from_pod's packets come
 * with their tunnel key set. Anything else the host stack routed here, by
 * the routes to other nodes' pod CIDRs through this device: the node's own
 * traffic to pods there, a pod's Service connection kube-proxy DNATed to a
 * pod there. It gets the tunnel to the pod's node from the ipcache, and a
 * pod's flow is marked as the stack's, so that its replies come back
 * through the stack to be un-NATed.
 */
SEC("tc")
int to_overlay(struct __sk_buff *skb)
{
	struct sluice_ipcache_value peer;
	struct bpf_tunnel_key key;
	__u32 len = skb->len;
	struct ethhdr *eth;
	struct flow f = {};
	struct cursor c;
	struct iphdr *ip;
	int ret;

	if (!bpf_skb_get_tunnel_key(skb, &key, sizeof(key), 0))
		return TC_ACT_OK; /* from_pod's: already tunnelled */
	cursor_init(&c, skb);
	if (parse_eth(&c, &eth) != ETH_P_IP)
		return TC_ACT_OK; /* nowhere to tunnel it: the device drops it */
	ret = parse_ipv4(&c, &ip);
	if (IS_DROP(ret))
		goto drop;
	peer = ipcache_lookup(ip->daddr);
	if (!peer.tunnel_endpoint) {
		ret = DROP(SLUICE_DROP_TUNNEL);
		goto drop;
	}
	if (endpoint_lookup4(ip->saddr)) {
		ret = parse_flow(&c, ip, &f);
		if (IS_DROP(ret))
			goto drop;
		ct_track_via_stack(&f, bpf_ktime_get_ns());
	}
	ret = set_tunnel(skb, peer.tunnel_endpoint);
	if (IS_DROP(ret))
		goto drop;
	metrics_count(SLUICE_FWD_OVERLAY_HOST, SLUICE_DIR_EGRESS, len);
	return TC_ACT_OK;
drop:
	metrics_count(DROP_REASON(ret), SLUICE_DIR_EGRESS, len);
	return TC_ACT_SHOT;
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

/* What the host stack delivers to a pod: its ingress policy, and the flow
 * is the stack's (see SLUICE_CT_F_VIA_STACK). */
static __always_inline int to_pod_ipv4(struct cursor *c)
{
	struct sluice_endpoint *dst;
	struct iphdr *ip;
	__u32 ct_flags;
	int ret = parse_ipv4(c, &ip);

	if (!IS_DROP(ret))
		ret = police_ingress(c, ip, NULL, &dst, SLUICE_CT_F_VIA_STACK, 0, &ct_flags);
	return IS_DROP(ret) ? ret : TC_ACT_OK;
}

SEC("tc")
int to_pod(struct __sk_buff *skb)
{
	__u32 len = skb->len;
	struct ethhdr *eth;
	struct cursor c;
	int ret;

	cursor_init(&c, skb);
	ret = parse_eth(&c, &eth);
	if (!IS_DROP(ret))
		ret = ret == ETH_P_IP ? to_pod_ipv4(&c) : TC_ACT_OK;
	if (IS_DROP(ret)) {
		metrics_count(DROP_REASON(ret), SLUICE_DIR_INGRESS, len);
		return TC_ACT_SHOT;
	}
	metrics_count(SLUICE_PASS, SLUICE_DIR_INGRESS, len);
	return TC_ACT_OK;
}
