/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The uplink's first stage: what the XDP program (xdp.bpf.c) does to every
 * frame before anything else, and from_netdev (host.bpf.c) instead when no
 * XDP program runs it (sluice_xdpst_v1[0].xdp_active == 0), so that both
 * drop exactly the same packets for the same reasons:
 *   1. malformed IPv4 (SLUICE_DROP_XDP_MALFORMED): a frame shorter than its
 *      Ethernet and IPv4 headers, a version other than 4, ihl < 5, a total
 *      length below the header or beyond the frame, and a TCP, UDP or SCTP
 *      datagram (or first fragment) too short for its ports: the kernel
 *      drops each of those too, only later (ip_rcv, the transport's
 *      header pull, reassembly refusing a non-last fragment under 8 bytes).
 *   2. the prefilter (SLUICE_DROP_PREFILTER, lib/prefilter4.h).
 *   3. a packet to a pod on this node claiming a source in this node's pod
 *      CIDR (SLUICE_DROP_XDP_SPOOF): those pods never send on the uplink.
 *      (A packet to a NodePort, externalIP or LB IP whose backend is a pod
 *      here meets the same check once translated, lib/nodeport.h.)
 *   4. overlay routing: UDP to the tunnel port, not to a pod here, from an
 *      address that is not a node (SLUICE_DROP_XDP_TUNNEL), exactly the
 *      packets lib/decap.h would drop as SLUICE_DROP_TUNNEL_SOURCE.
 * Nothing else is dropped: what passes meets from_netdev's full checks.
 * Frames that are not IPv4 (ARP, IPv6, VLAN-tagged) pass untouched.
 * Later fragments carry no port: the prefilter's port-scoped rules do not
 * see them (a datagram whose first fragment was dropped is never
 * reassembled) and they are never taken for VXLAN (nor are they by
 * lib/decap.h).
 */
#ifndef SLUICE_BPF_FIRST_STAGE_H
#define SLUICE_BPF_FIRST_STAGE_H

#include "config.h"
#include "endpoint.h"
#include "policy.h"
#include "prefilter4.h"

/* first_stage_parse: not IPv4, left alone. */
#define FIRST_NOT_IPV4 1

/* The IPv4 packet as the first stage sees it. */
struct first_pkt {
	__be32 saddr;
	__be32 daddr;
	__be16 dport;		/* has_port: the L4 destination port */
	__u8 proto;
	__u8 has_port;		/* TCP, UDP or SCTP, not a later fragment */
	__u8 udp_full;		/* UDP with its whole 8-byte header (VXLAN candidate) */
};

struct first_ports {
	__be16 sport;
	__be16 dport;
};

/*
 * The frame from data to end (direct packet access; frame_len: its whole
 * length, which a tc skb may hold beyond end; gso: a tc skb the stack
 * aggregated, whose total length field may be 0 beyond 64 KiB, BIG TCP):
 * 0 with p filled,
 * FIRST_NOT_IPV4, or DROP(SLUICE_DROP_XDP_MALFORMED). Every read is
 * bounds-checked against end and every length in the IPv4 header against
 * frame_len, so a forged length field can only make the frame malformed.
 */
static __always_inline int first_stage_parse(void *data, void *end, __u32 frame_len, int gso,
					     struct first_pkt *p)
{
	struct ethhdr *eth = data;
	struct first_ports *ports;
	struct iphdr *ip;
	__u32 hlen, tot;

	if ((void *)(eth + 1) > end)
		return DROP(SLUICE_DROP_XDP_MALFORMED);
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return FIRST_NOT_IPV4;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end)
		return DROP(SLUICE_DROP_XDP_MALFORMED);
	hlen = ip->ihl * 4;
	tot = bpf_ntohs(ip->tot_len);
	if (!tot && gso)
		tot = frame_len - ETH_HLEN;
	if (ip->version != 4 || hlen < sizeof(*ip) || tot < hlen || tot > frame_len - ETH_HLEN)
		return DROP(SLUICE_DROP_XDP_MALFORMED);
	/* Options: the header is all there (tot <= frame_len), and in the
	 * part the program can read. */
	if ((void *)ip + hlen > end)
		return DROP(SLUICE_DROP_XDP_MALFORMED);
	p->saddr = ip->saddr;
	p->daddr = ip->daddr;
	p->proto = ip->protocol;
	p->has_port = 0;
	p->udp_full = 0;
	p->dport = 0;
	/* A later fragment's offset may be forged: it only ever takes the
	 * packet's port away, never makes one up. */
	if (ip->frag_off & bpf_htons(IP_FRAG_OFFSET_MASK))
		return 0;
	if (p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP && p->proto != IPPROTO_SCTP)
		return 0;
	ports = (void *)ip + hlen;
	if (hlen + sizeof(*ports) > tot || (void *)(ports + 1) > end)
		return DROP(SLUICE_DROP_XDP_MALFORMED);
	p->dport = ports->dport;
	p->has_port = 1;
	p->udp_full = p->proto == IPPROTO_UDP && hlen + 8 <= tot && (void *)ports + 8 <= end;
	return 0;
}

/* The first stage's checks on a parsed packet of len bytes: 0 or DROP(). */
static __always_inline int first_stage_check(const struct first_pkt *p, __u32 len)
{
	struct sluice_ipcache_value sender;
	int ret;

	ret = prefilter4_check(p->saddr, p->proto, p->dport, p->has_port, len);
	if (IS_DROP(ret))
		return ret;
	if (cfg_pod_mask && (p->saddr & cfg_pod_mask) == cfg_pod_net && endpoint_lookup4(p->daddr))
		return DROP(SLUICE_DROP_XDP_SPOOF);
	if (cfg_routing == SLUICE_ROUTING_OVERLAY && p->udp_full &&
	    p->dport == bpf_htons(SLUICE_VXLAN_PORT) && !endpoint_lookup4(p->daddr)) {
		sender = ipcache_lookup(p->saddr);
		if (!(sender.flags & SLUICE_IPC_F_NODE))
			return DROP(SLUICE_DROP_XDP_TUNNEL);
	}
	return 0;
}

/* The most the first stage reads: Ethernet, IPv4 with options, UDP. */
#define FIRST_STAGE_HDRS (ETH_HLEN + 60 + 8)

/*
 * The first stage at tc (from_netdev) when no XDP program runs it: 0 or
 * DROP(), the same verdicts as the XDP program's. A frame whose headers
 * are not all in the skb's linear part is pulled first (what XDP sees is
 * always linear).
 */
static __always_inline int first_stage_skb(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct first_pkt p;
	int ret;

	if (data + FIRST_STAGE_HDRS > end && skb->len > (__u32)(end - data)) {
		bpf_skb_pull_data(skb, skb->len < FIRST_STAGE_HDRS ? skb->len : FIRST_STAGE_HDRS);
		data = (void *)(long)skb->data;
		end = (void *)(long)skb->data_end;
	}
	ret = first_stage_parse(data, end, skb->len, skb->gso_size != 0, &p);
	if (ret == FIRST_NOT_IPV4)
		return 0;
	if (IS_DROP(ret))
		return ret;
	return first_stage_check(&p, skb->len);
}

#endif /* SLUICE_BPF_FIRST_STAGE_H */
