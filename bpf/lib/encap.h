/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Into the overlay (overlay routing): a pod's packet for another node's pod
 * gets its VXLAN headers from the program itself (lib/overlay.h) and goes
 * straight out of the uplink, or the vxlan device tunnels it with the
 * tunnel key set here.
 */
#ifndef SLUICE_BPF_ENCAP_H
#define SLUICE_BPF_ENCAP_H

#include "config.h"
#include "metrics.h"
#include "policy.h"
#include "overlay.h"
#include "forward.h"

/* The tunnel to the node at tunnel_endpoint (network order). */
static __always_inline int set_tunnel(struct __sk_buff *skb, __be32 tunnel_endpoint)
{
	struct bpf_tunnel_key key = {};

	key.remote_ipv4 = bpf_ntohl(tunnel_endpoint);
	key.tunnel_id = SLUICE_VNI;
	key.tunnel_ttl = 64;
	if (bpf_skb_set_tunnel_key(skb, &key, sizeof(key), 0))
		return DROP(SLUICE_DROP_TUNNEL);
	return 0;
}

/*
 * A pod on another node (its address or its node's pod CIDR is in the
 * ipcache with a tunnel endpoint), overlay routing. With the node's
 * address known, from_pod builds the VXLAN headers itself and sends the
 * packet straight out of the uplink: no trip through the vxlan device, its
 * route lookup and the node's netfilter for every packet. GSO packets stay
 * whole (the kernel segments them, or the NIC does, as UDP tunnel GSO).
 * Without the node's address, without a route to the remote node, for a
 * packet over 64 KB, or when the kernel cannot make room (a UDP GSO
 * packet, one that still carries tunnel state), the vxlan device tunnels
 * the packet, with the key set here.
 */
static __always_inline int encap_to_node(struct __sk_buff *skb, struct ethhdr *eth,
					 struct iphdr *ip, __u32 *reason)
{
	struct sluice_ipcache_value peer = ipcache_lookup(ip->daddr);
	const __u64 room = BPF_F_ADJ_ROOM_FIXED_GSO | BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 |
			   BPF_F_ADJ_ROOM_ENCAP_L4_UDP | BPF_F_ADJ_ROOM_ENCAP_L2_ETH |
			   ((__u64)ETH_HLEN << BPF_ADJ_ROOM_ENCAP_L2_SHIFT);
	struct bpf_fib_lookup fib = {};
	struct vxlan_encap h;
	__u32 len = skb->len;
	long hop = -1;
	int ret;

	if (!peer.tunnel_endpoint)
		return TC_ACT_OK;
	*reason = SLUICE_FWD_OVERLAY;
	/* An IPv4 BIG TCP packet (over 64 KB) would not fit the outer
	 * header's length field: it is left to the device. */
	if (cfg_node_ip && len - ETH_HLEN + sizeof(h) <= 0xffff)
		hop = next_hop(skb, cfg_node_ip, peer.tunnel_endpoint, &fib);
	if (hop_usable(hop))
		vxlan_encap_build(&h, len, cfg_node_ip, peer.tunnel_endpoint, eth, ip->tos,
				  bpf_get_hash_recalc(skb), (__u16)bpf_get_prandom_u32());
	ipv4_decrement_ttl(ip);
	if (hop_usable(hop) && !bpf_skb_adjust_room(skb, sizeof(h), BPF_ADJ_ROOM_MAC, room)) {
		if (bpf_skb_store_bytes(skb, ETH_HLEN, &h, sizeof(h), 0))
			return DROP(SLUICE_DROP_TUNNEL);
		metrics_count(SLUICE_OVERLAY_ENCAP, SLUICE_DIR_EGRESS, len);
		return redirect_out(skb, hop, &fib);
	}
	ret = set_tunnel(skb, peer.tunnel_endpoint);
	if (IS_DROP(ret))
		return ret;
	return bpf_redirect(cfg_vxlan_ifindex, 0);
}

#endif /* SLUICE_BPF_ENCAP_H */
