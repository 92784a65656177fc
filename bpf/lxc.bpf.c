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
 *   A pod with an egress bandwidth limit has its bucket charged right
 *   after the source check (lib/bandwidth.h).
 * to_pod: tc egress of the host veth, i.e. what the host stack sends to the
 *   pod: the pod's ingress policy for flows that did not come from a local
 *   pod (those were checked in from_pod). The node itself may always reach
 *   its pods. A pod with an ingress bandwidth limit has its bucket charged
 *   here for those packets; the ones sluice redirects into the pod never
 *   come through to_pod and are charged in deliver_to_pod (lib/forward.h).
 *
 * Flows the host stack forwards (kube-proxy's Service NAT, anything routed
 * by the node) are marked in connection tracking where they leave the
 * stack (to_pod, to_overlay, to_netdev) and stay on the stack: none of
 * their packets, replies included, take a fast path, so the node's
 * netfilter sees both directions and un-NATs the replies.
 *
 * Each entry point has one exit that records the verdict in sluice_stats_v2
 * and the packet in its flow (lib/flow.h).
 * The maps are shared with the other entry files' objects by their pins
 * (LIBBPF_PIN_BY_NAME, agent/loader.c).
 */
#include "lib/common.h"
#include "lib/parse.h"
#include "lib/metrics.h"
#include "lib/endpoint.h"
#include "lib/l4.h"
#include "lib/config.h"
#include "lib/origin.h"
#include "lib/police.h"
#include "lib/forward.h"
#include "lib/encap.h"
#include "lib/lb.h"
#include "lib/nodeport.h"
#include "lib/flow.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

static __always_inline int from_pod_ipv4(struct __sk_buff *skb, struct cursor *c,
					 struct ethhdr *eth, __u32 *reason)
{
	struct sluice_endpoint *src, *dst;
	struct flow f = {};
	struct iphdr *ip;
	__u32 ct_flags, ihl;
	__be32 fe_addr;
	__be16 fe_port;
	int ret, translated, reversed = 0;

	ret = parse_ipv4(c, &ip);
	if (IS_DROP(ret))
		return ret;

	/* A pod may only send from the address sluice gave it. */
	src = endpoint_lookup4(ip->saddr);
	if (!src || src->ifindex != skb->ifindex)
		return DROP(SLUICE_DROP_SPOOFED);
	/* The pod's egress limit, before anything is looked up for it. */
	ret = bw_egress(skb, src);
	if (IS_DROP(ret))
		return ret;

	ret = parse_flow(c, ip, &f);
	if (IS_DROP(ret))
		return ret;
	/* A Service frontend becomes its backend before policy: everything
	 * below sees the backend (lib/lb.h); the flow's record names the
	 * frontend. */
	fe_addr = f.key.daddr;
	fe_port = f.key.dport;
	ihl = ip->ihl * 4;
	translated = lb4_translate(skb, &f, ihl, reason);
	if (IS_DROP(translated))
		return translated;
	/* A frontend without backend refused the flow: the packet is now
	 * the refusal, for the pod. This program runs at the host veth's
	 * ingress, so the pod is the peer's ingress: no trip through
	 * to_pod, which would track the refusal as a flow of its own. */
	if (translated == LB_REJECTED)
		return deliver_to_pod(skb, src);
	if (translated) {
		ret = lb_reload(skb, &eth, &ip);
		if (IS_DROP(ret))
			return ret;
	}
	dst = endpoint_lookup4(f.key.daddr);
	if (!dst) {
		ret = tunnel_port_check(&f);
		if (IS_DROP(ret))
			return ret;
	}
	f.ct_kind = translated ? CT_KIND_LB : CT_KIND_DIRECT;
	ret = track_and_police(&f, src, dst, NULL, SLUICE_DIR_EGRESS,
			       translated ? SLUICE_CT_F_LB_BACKEND : 0, 0, &ct_flags);
	if (translated)
		flow_note_service(fe_addr, fe_port);
	if (IS_DROP(ret))
		return ret;
	/* A reply from a Service backend here to its client, or an ICMP
	 * error about the client's flow: the client sees the frontend. A
	 * hairpin reply goes back into the pod that sent it. */
	if (!translated && (ct_flags & SLUICE_CT_F_LB_BACKEND)) {
		__be32 to = f.key.daddr;

		ret = lb4_reverse(skb, &f, ihl, SLUICE_DIR_EGRESS);
		reversed = ret > 0;
		if (reversed && !f.icmp_error && to == cfg_lb_hairpin)
			dst = src;
		if (ret > 0)
			ret = lb_reload(skb, &eth, &ip);
		if (IS_DROP(ret))
			return ret;
	}

	/* TTL about to expire: the host stack sends ICMP time exceeded. Packet
	 * pointers are valid: reloaded after each Service rewrite above. */
	if (ip->ttl <= 1)
		return TC_ACT_OK;
	/* A flow the host stack forwards (a reply to a Service connection
	 * kube-proxy DNATed to this pod, say) stays on the stack. */
	if (ct_flags & SLUICE_CT_F_VIA_STACK) {
		*reason = SLUICE_TO_STACK_FLOW;
		return TC_ACT_OK;
	}
	if (!dst) {
		/* A Service reply to a client outside the cluster (or a node)
		 * from the frontend (a NodePort: the node's own address):
		 * routed out, never through the stack (lib/nodeport.h). */
		if (reversed) {
			struct sluice_ipcache_value peer = ipcache_lookup(f.key.daddr);

			if (!peer.tunnel_endpoint || ipc_is_node(&peer))
				return nodeport_to_world(skb, reason);
		}
		if (cfg_routing == SLUICE_ROUTING_OVERLAY && cfg_vxlan_ifindex)
			return encap_to_node(skb, eth, ip, reason);
		return to_remote_native(skb, ip, reason);
	}

	ret = redirect_to_pod(skb, eth, ip, dst);
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
	flow_finish(skb, ret, reason, SLUICE_DIR_EGRESS, len, 0);
	if (IS_DROP(ret)) {
		metrics_count(DROP_REASON(ret), SLUICE_DIR_EGRESS, len);
		return TC_ACT_SHOT;
	}
	metrics_count(reason, SLUICE_DIR_EGRESS, len);
	return ret;
}

/* What the host stack delivers to a pod: its ingress policy, and the flow
 * is the stack's (see SLUICE_CT_F_VIA_STACK). A reply of a Service flow the
 * pod started, and an ICMP error about one, get the frontend back here when
 * they came through the stack (the translated flow left from_pod for the
 * stack: no route for the fast path, TTL about to expire; or the error is
 * the node's own, such as its time exceeded): from_node and from_pod did
 * not see them with the flow's entry, or left them to the stack. */
static __always_inline int to_pod_ipv4(struct __sk_buff *skb, struct cursor *c)
{
	struct sluice_endpoint *dst;
	struct iphdr *ip;
	struct flow f = {};
	__u32 ct_flags;
	int ret = parse_ipv4(c, &ip);

	if (!IS_DROP(ret))
		ret = police_ingress(c, ip, NULL, &dst, SLUICE_CT_F_VIA_STACK, 0, &ct_flags, &f);
	if (IS_DROP(ret))
		return ret;
	if (dst && (ct_flags & SLUICE_CT_F_LB_BACKEND)) {
		ret = lb4_reverse(skb, &f, ip->ihl * 4, SLUICE_DIR_INGRESS);
		if (IS_DROP(ret))
			return ret;
	}
	/* The pod's ingress limit, for what the stack delivers (sluice's own
	 * redirects charge it in deliver_to_pod and skip this program). */
	return dst ? bw_ingress(skb, dst) : TC_ACT_OK;
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
		ret = ret == ETH_P_IP ? to_pod_ipv4(skb, &c) : TC_ACT_OK;
	flow_finish(skb, ret, SLUICE_PASS, SLUICE_DIR_INGRESS, len, 0);
	if (IS_DROP(ret)) {
		metrics_count(DROP_REASON(ret), SLUICE_DIR_INGRESS, len);
		return TC_ACT_SHOT;
	}
	metrics_count(SLUICE_PASS, SLUICE_DIR_INGRESS, len);
	return TC_ACT_OK;
}
