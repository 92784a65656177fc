// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Programs on the vxlan device (overlay routing, collect_md).
 *
 * from_overlay: tc ingress of the vxlan device: what the kernel's device
 *   decapsulated (whatever from_netdev left to it). Only from another node
 *   (the tunnel key's outer source), an inner source only from its own
 *   node (lib/origin.h); traffic from pods on other nodes goes straight to
 *   the local pod after its ingress policy.
 * to_overlay: tc egress of the vxlan device: what the host stack routes
 *   into the tunnel (the node's own traffic, Service traffic kube-proxy
 *   DNATed to another node's pod) gets its tunnel key from the ipcache.
 *
 * Flows the host stack forwards (kube-proxy's Service NAT, anything routed
 * by the node) are marked in connection tracking where they leave the
 * stack (to_pod, to_overlay, to_netdev) and stay on the stack: none of
 * their packets, replies included, take a fast path, so the node's
 * netfilter sees both directions and un-NATs the replies.
 *
 * Each entry point has one exit that records the verdict in sluice_stats_v2
 * (from_overlay: and a packet to a pod in its flow, lib/flow.h): every packet
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
#include "lib/encap.h"
#include "lib/node.h"
#include "lib/flow.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* tc ingress of the vxlan device (overlay routing). */
SEC("tc")
int from_overlay(struct __sk_buff *skb)
{
	__u32 reason = SLUICE_PASS, len = skb->len;
	struct bpf_tunnel_key key;
	int ret;

	/* What the vxlan device took in: from whom (its collect_md tunnel
	 * key). A frame without one was not tunnelled by anyone. */
	if (bpf_skb_get_tunnel_key(skb, &key, sizeof(key), 0) || !key.remote_ipv4) {
		ret = DROP(SLUICE_DROP_TUNNEL_SOURCE);
		goto out;
	}
	ret = from_node(skb, bpf_htonl(key.remote_ipv4), &reason);
out:
	flow_finish(skb, ret, reason, SLUICE_DIR_INGRESS, len, 1);
	if (IS_DROP(ret)) {
		metrics_count(DROP_REASON(ret), SLUICE_DIR_INGRESS, len);
		return TC_ACT_SHOT;
	}
	/* Up the stack from the tunnel: the inner frame is addressed to the
	 * sending node's device, not to ours, which the IP layer would drop
	 * as meant for another host. It is ours: the sender tunnelled it here. */
	if (ret == TC_ACT_OK && skb->pkt_type == PACKET_OTHERHOST)
		bpf_skb_change_type(skb, PACKET_HOST);
	if (reason != SLUICE_PASS)
		metrics_count(reason, SLUICE_DIR_INGRESS, len);
	return ret;
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
