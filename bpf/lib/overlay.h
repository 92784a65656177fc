/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * VXLAN (RFC 7348) headers built and checked by the programs themselves, in
 * exactly the form the kernel's vxlan device puts on the wire: UDP port
 * SLUICE_VXLAN_PORT, VNI SLUICE_VNI, the source port spread by the inner
 * flow's hash over the range the kernel uses, outer UDP checksum 0, the
 * inner frame's ECN carried outwards (RFC 6040). A packet either end built
 * is one the other end's kernel device accepts, so the device stays the
 * fallback for whatever the programs leave to it.
 */
#ifndef SLUICE_BPF_OVERLAY_H
#define SLUICE_BPF_OVERLAY_H

#include "common.h"
#include "l4.h"

/* The VNI of sluice's overlay: one network, the identity travels in the
 * receiving node's ipcache, not in the header. */
#define SLUICE_VNI 1

#define VXLAN_FLAGS_VNI	0x08000000u	/* the I flag: a valid VNI follows */

/* The kernel's default ephemeral range, which its vxlan device draws
 * source ports from. */
#define VXLAN_SPORT_MIN 32768
#define VXLAN_SPORT_MAX 61000

#define IP_MF		0x2000
#define INET_ECN_MASK	3
#define INET_ECN_ECT_0	2
#define INET_ECN_CE	3

/* What sits between the outer Ethernet header and the inner IPv4 header.
 * Packed to its 50 bytes; every field still sits on a 2-byte boundary. */
struct vxlan_encap {
	struct iphdr ip;
	struct udphdr udp;
	struct vxlanhdr vx;
	struct ethhdr eth;
} __attribute__((packed, aligned(2)));
_Static_assert(sizeof(struct vxlan_encap) == SLUICE_OVERLAY_OVERHEAD, "overlay overhead");

/* The checksum of the 20-byte IPv4 header at hdr (2-byte aligned). */
static __always_inline __u16 ipv4_csum(const void *hdr)
{
	const __u16 *w = hdr;
	__u32 sum = 0;
	int i;

#pragma unroll
	for (i = 0; i < (int)(sizeof(struct iphdr) / 2); i++)
		sum += w[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/*
 * The headers for a packet of skb_len bytes (Ethernet included) from this
 * node (src) to the node at dst, in network order. inner_eth and inner_tos
 * are the frame's own; hash is its flow hash (bpf_get_hash_recalc), which
 * becomes the source port so that the underlay's ECMP and RSS keep each
 * flow on one path and spread flows across them. ip_id is any value: the
 * outer header never carries DF, as the kernel's device does by default.
 */
static __always_inline void vxlan_encap_build(struct vxlan_encap *h, __u32 skb_len,
					      __be32 src, __be32 dst,
					      const struct ethhdr *inner_eth, __u8 inner_tos,
					      __u32 hash, __u16 ip_id)
{
	__u32 ip_len = skb_len - ETH_HLEN + sizeof(*h);
	__u8 ecn = inner_tos & INET_ECN_MASK;

	__builtin_memcpy(&h->eth, inner_eth, sizeof(h->eth));
	h->ip.version = 4;
	h->ip.ihl = sizeof(h->ip) / 4;
	/* RFC 6040 normal mode: the inner ECN field outwards, CE as ECT(0). */
	h->ip.tos = ecn == INET_ECN_CE ? INET_ECN_ECT_0 : ecn;
	h->ip.tot_len = bpf_htons(ip_len);
	h->ip.id = ip_id;
	h->ip.frag_off = 0;
	h->ip.ttl = 64;
	h->ip.protocol = IPPROTO_UDP;
	h->ip.check = 0;
	h->ip.saddr = src;
	h->ip.daddr = dst;
	h->ip.check = ipv4_csum(h); /* the IP header comes first */
	h->udp.source = bpf_htons(VXLAN_SPORT_MIN +
				  (((__u64)hash * (VXLAN_SPORT_MAX - VXLAN_SPORT_MIN)) >> 32));
	h->udp.dest = bpf_htons(SLUICE_VXLAN_PORT);
	h->udp.len = bpf_htons(ip_len - sizeof(h->ip));
	h->udp.check = 0;
	h->vx.vx_flags = bpf_htonl(VXLAN_FLAGS_VNI);
	h->vx.vx_vni = bpf_htonl(SLUICE_VNI << 8);
}

/*
 * Is h (its outer IPv4 header checked by parse_ipv4, the rest by the
 * caller's bounds check) sluice's VXLAN addressed to node_ip, carrying an
 * IPv4 frame? Outer options and fragments are the kernel device's to
 * handle: they never come from a sender that built the header above.
 */
static __always_inline int vxlan_is_ours(const struct vxlan_encap *h, __be32 node_ip)
{
	return h->ip.daddr == node_ip && h->ip.ihl == sizeof(h->ip) / 4 &&
	       h->ip.protocol == IPPROTO_UDP &&
	       !(h->ip.frag_off & bpf_htons(IP_MF | IP_FRAG_OFFSET_MASK)) &&
	       h->udp.dest == bpf_htons(SLUICE_VXLAN_PORT) &&
	       h->vx.vx_flags == bpf_htonl(VXLAN_FLAGS_VNI) &&
	       h->vx.vx_vni == bpf_htonl(SLUICE_VNI << 8) &&
	       h->eth.h_proto == bpf_htons(ETH_P_IP);
}

/*
 * RFC 6040 decapsulation of the ECN field: congestion marked on the outer
 * header (CE) is copied to an ECN-capable inner header, the IPv4 checksum
 * updated. Returns 0, or -1 when the inner packet is not ECN-capable and
 * the RFC says to drop it: left to the kernel's device, which does and
 * logs that.
 */
static __always_inline int vxlan_ecn_decap(__u8 outer_tos, struct iphdr *inner)
{
	__u16 old, new;
	__u32 sum;

	if ((outer_tos & INET_ECN_MASK) != INET_ECN_CE ||
	    (inner->tos & INET_ECN_MASK) == INET_ECN_CE)
		return 0;
	if (!(inner->tos & INET_ECN_MASK))
		return -1;
	/* The header's first 16-bit word: version and IHL, then TOS. */
	old = bpf_htons((__u16)(*(__u8 *)inner) << 8 | inner->tos);
	new = bpf_htons((__u16)(*(__u8 *)inner) << 8 | (inner->tos | INET_ECN_CE));
	inner->tos |= INET_ECN_CE;
	/* RFC 1624: HC' = ~(~HC + ~m + m') */
	sum = (__u16)~inner->check + (__u16)~old + new;
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	inner->check = (__u16)~sum;
	return 0;
}

#endif /* SLUICE_BPF_OVERLAY_H */
