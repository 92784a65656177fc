/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Out of the overlay on the uplink (overlay routing): VXLAN packets from
 * other nodes' pods to pods here, decapsulated by the program itself and
 * handed to the pod; the rest is checked and left to the vxlan device.
 */
#ifndef SLUICE_BPF_DECAP_H
#define SLUICE_BPF_DECAP_H

#include "config.h"
#include "metrics.h"
#include "endpoint.h"
#include "overlay.h"
#include "origin.h"
#include "police.h"
#include "forward.h"

/* Decapsulation declined: the kernel's vxlan device is to take the packet. */
#define LEAVE_TO_DEVICE 1
/* Not an overlay packet: the uplink's plain path. */
#define NOT_TUNNELLED 2

/*
 * Overlay routing, on the uplink. Every packet to the tunnel port (UDP
 * SLUICE_VXLAN_PORT, any address of this node: the vxlan device's socket
 * takes them all) must come from another node (on this node's segment,
 * from that node's MAC), or is dropped here, never reaching the device. A VXLAN packet (not GSO) from another node's pod to
 * a pod here, sent by the node the ipcache says has the source pod, is
 * checked against the pod's ingress policy on its inner headers, its VXLAN
 * headers are taken off and it goes straight to the pod, never through the
 * node's UDP socket, the vxlan device and its per-packet metadata; one
 * whose inner source the sender may not send is dropped. Whatever would go
 * up the stack from the vxlan device (a packet for the node itself, a flow
 * the stack forwards, TTL running out, an ECN combination RFC 6040 drops),
 * an inner source sluice knows nothing about, and GSO packets are left as
 * they came, and the device decapsulates them (after the node's
 * netfilter); its program checks them again with the tunnel key, and
 * finds the flow already tracked.
 * Returns NOT_TUNNELLED, LEAVE_TO_DEVICE, a DROP() or TC_ACT_REDIRECT.
 */
static __always_inline int overlay_decap(struct __sk_buff *skb, __u32 *reason)
{
	struct sluice_ipcache_value peer;
	struct sluice_endpoint *dst;
	struct vxlan_encap *h;
	struct udphdr *udp;
	struct ethhdr *eth;
	__u8 macs[2 * ETH_ALEN];
	struct iphdr *ip;
	struct flow f = {};
	struct cursor c;
	__u32 ct_flags;
	__u8 outer_tos;
	int ret;

	cursor_init(&c, skb);
	if (parse_eth(&c, &eth) != ETH_P_IP)
		return NOT_TUNNELLED;
	h = c.pos;
	if (IS_DROP(parse_ipv4(&c, &ip)))
		return NOT_TUNNELLED; /* the plain path drops it */
	/* Later fragments have no UDP header; without its first fragment
	 * (checked here: a non-last fragment holds at least 8 bytes, the
	 * whole header) a datagram is never reassembled. */
	udp = c.pos;
	if (ip->protocol != IPPROTO_UDP || (ip->frag_off & bpf_htons(IP_FRAG_OFFSET_MASK)) ||
	    (void *)(udp + 1) > c.end || udp->dest != bpf_htons(SLUICE_VXLAN_PORT) ||
	    endpoint_lookup4(ip->daddr))
		return NOT_TUNNELLED;
	/* A GSO packet keeps the kernel's tunnel state (skb->encapsulation,
	 * the UDP tunnel GSO type) after bpf_skb_adjust_room takes the headers
	 * off, and no helper clears it: a pod that forwards such a packet (a
	 * router or NAT pod) would have it segmented in software on its way
	 * out, at a fifth of the speed. The vxlan device clears that state. */
	if (skb->gso_size || (void *)(h + 1) > c.end || !vxlan_is_ours(h, cfg_node_ip))
		goto device;
	outer_tos = h->ip.tos;
	c.pos = h + 1;
	ip = c.pos;
	if ((void *)(ip + 1) > c.end)
		goto device;
	/* A packet from another node's pod comes from that node. */
	peer = ipcache_lookup(ip->saddr);
	ret = tunnel_origin_check(h->ip.saddr, ip->saddr, &peer);
	if (!IS_DROP(ret))
		ret = tunnel_link_check(skb, eth, h->ip.saddr);
	if (IS_DROP(ret))
		return ret;
	if (peer.tunnel_endpoint != h->ip.saddr)
		return LEAVE_TO_DEVICE; /* the world, which a node forwarded */
	ret = parse_ipv4(&c, &ip);
	if (IS_DROP(ret))
		return ret;
	ret = police_ingress(&c, ip, &peer, &dst, 0, 1, &ct_flags, &f);
	if (IS_DROP(ret))
		return ret;
	/* A reply of a Service flow this node translated gets its frontend
	 * back in from_overlay (lib/node.h), where the inner header is at
	 * the offsets lib/lb.h rewrites. */
	if (!dst || ip->ttl <= 1 || (ct_flags & (SLUICE_CT_F_VIA_STACK | SLUICE_CT_F_LB_BACKEND)) ||
	    vxlan_ecn_decap(outer_tos, ip))
		return LEAVE_TO_DEVICE;
	ipv4_decrement_ttl(ip);
	__builtin_memcpy(macs, dst->pod_mac, ETH_ALEN);
	__builtin_memcpy(macs + ETH_ALEN, dst->lxc_mac, ETH_ALEN);
	/* (Never a GSO packet here; were it one, its segments' size would
	 * not change with the outer headers gone: fixed GSO.) */
	if (bpf_skb_adjust_room(skb, -(__s32)sizeof(*h), BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_FIXED_GSO) ||
	    bpf_skb_store_bytes(skb, 0, macs, sizeof(macs), 0))
		return DROP(SLUICE_DROP_TUNNEL);
	metrics_count(SLUICE_OVERLAY_DECAP, SLUICE_DIR_INGRESS, skb->len);
	ret = deliver_to_pod(skb, dst);
	if (!IS_DROP(ret))
		*reason = SLUICE_FWD_REMOTE;
	return ret;
device:
	ret = tunnel_sender_check(h->ip.saddr);
	if (!IS_DROP(ret))
		ret = tunnel_link_check(skb, eth, h->ip.saddr);
	return IS_DROP(ret) ? ret : LEAVE_TO_DEVICE;
}

#endif /* SLUICE_BPF_DECAP_H */
