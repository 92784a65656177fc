/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The answer of a Service frontend that has no backend: a new connection
 * is refused at once, as kube-proxy's REJECT rule does, instead of being
 * forwarded to the frontend address (which nothing owns) to time out.
 *
 * The client's packet is turned into the answer in place: a TCP SYN into
 * a RST|ACK (RFC 793 "Reset Generation", a segment without ACK: SEQ=0,
 * ACK=SEG.SEQ+SEG.LEN, SYN and FIN counting one each), a UDP datagram
 * into an ICMP destination unreachable, port unreachable (RFC 792: the
 * original IP header and the first 8 bytes of its data quoted). The
 * answer comes from the frontend (address and port the client sent to),
 * goes to the client, with the Ethernet addresses swapped, so the caller
 * only has to send it back out of the interface the packet came in on
 * (from_pod: bpf_redirect_peer to the pod; from_netdev: bpf_redirect to
 * the same device's egress).
 *
 * The new packet is written whole from the stack (bpf_skb_change_tail,
 * then one bpf_skb_store_bytes): no pointer into the old packet survives,
 * and the checksums are computed here over the final bytes, not patched.
 */
#ifndef SLUICE_BPF_REJECT_H
#define SLUICE_BPF_REJECT_H

#include "common.h"
#include "l4.h"
#include "nat.h"

#define ICMP_PORT_UNREACH 3
#define REJECT_TTL 64

/* The answers as written, from eth on. The 2 bytes in front put the IP
 * header on a 4-byte boundary: bpf_csum_diff() reads 32-bit words. */
struct reject_tcp {
	__u16 align;
	struct ethhdr eth;
	struct iphdr ip;
	struct tcphdr tcp;
};
_Static_assert(__builtin_offsetof(struct reject_tcp, ip) == 16, "reject layout");
_Static_assert(sizeof(struct reject_tcp) == 2 + ETH_HLEN + 20 + 20, "reject layout");

struct reject_icmp {
	__u16 align;
	struct ethhdr eth;
	struct iphdr ip;
	struct icmphdr icmp;
	struct iphdr quoted;
	__u8 quoted_l4[8];
};
_Static_assert(__builtin_offsetof(struct reject_icmp, ip) == 16, "reject layout");
_Static_assert(sizeof(struct reject_icmp) == 2 + ETH_HLEN + 20 + 8 + 20 + 8, "reject layout");

#define REJECT_LEN(r) (sizeof(r) - 2)

/* The Internet checksum of a bpf_csum_diff() sum. */
static __always_inline __u16 csum_fold_neg(__s64 sum)
{
	return (__u16)~csum_fold32((__u32)sum);
}

/* An option-less IPv4 header from src to dst of len bytes. */
static __always_inline void reject_ip(struct iphdr *ip, __be32 src, __be32 dst, __u8 proto,
				      __u16 len)
{
	ip->version = 4;
	ip->ihl = 5;
	ip->tot_len = bpf_htons(len);
	ip->ttl = REJECT_TTL;
	ip->protocol = proto;
	ip->saddr = src;
	ip->daddr = dst;
	ip->check = csum_fold_neg(bpf_csum_diff(NULL, 0, (__be32 *)ip, sizeof(*ip), 0));
}

/*
 * Turn the packet of flow f (its IPv4 header of ihl bytes at IP_OFF, not
 * translated) into the frontend's refusal. Returns the reason to count
 * (SLUICE_LB_REJECT_TCP or _UDP) when the packet is now the answer, or
 * DROP(SLUICE_DROP_LB_NO_BACKEND) for what is not answered: TCP other than
 * a connection's first SYN (answering a stray segment with a RST would let
 * anyone reset by address), a UDP datagram with IP options or of a later
 * fragment, a packet too short to hold its headers, or a failed rewrite.
 * Packet pointers are stale afterwards.
 */
static __always_inline int lb4_reject(struct __sk_buff *skb, const struct flow *f, __u32 ihl)
{
	__u8 macs[2 * ETH_ALEN];
	__be16 tot_len;

	if (f->later_fragment || f->icmp_error)
		return DROP(SLUICE_DROP_LB_NO_BACKEND);
	if (bpf_skb_load_bytes(skb, 0, macs, sizeof(macs)) ||
	    bpf_skb_load_bytes(skb, IP_OFF + offsetof(struct iphdr, tot_len), &tot_len,
			       sizeof(tot_len)))
		return DROP(SLUICE_DROP_LB_NO_BACKEND);

	if (f->key.proto == IPPROTO_TCP) {
		struct reject_tcp r = {};
		struct tcphdr in;
		__u32 len, sum;
		struct {
			__be32 saddr, daddr;
			__u8 zero, proto;
			__be16 len;
		} pseudo = {};

		if ((f->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK | TCP_FLAG_RST)) != TCP_FLAG_SYN)
			return DROP(SLUICE_DROP_LB_NO_BACKEND);
		if (bpf_skb_load_bytes(skb, IP_OFF + ihl, &in, sizeof(in)) || in.doff < 5)
			return DROP(SLUICE_DROP_LB_NO_BACKEND);
		len = bpf_ntohs(tot_len);
		if (len < ihl + in.doff * 4)
			return DROP(SLUICE_DROP_LB_NO_BACKEND);
		/* SEG.LEN: the data, plus one for the SYN and one for a FIN. */
		len = len - ihl - in.doff * 4 + 1 + (in.fin ? 1 : 0);
		__builtin_memcpy(r.eth.h_dest, macs + ETH_ALEN, ETH_ALEN);
		__builtin_memcpy(r.eth.h_source, macs, ETH_ALEN);
		r.eth.h_proto = bpf_htons(ETH_P_IP);
		reject_ip(&r.ip, f->key.daddr, f->key.saddr, IPPROTO_TCP,
			  sizeof(r.ip) + sizeof(r.tcp));
		r.tcp.source = f->key.dport;
		r.tcp.dest = f->key.sport;
		r.tcp.seq = 0;
		r.tcp.ack_seq = bpf_htonl(bpf_ntohl(in.seq) + len);
		r.tcp.doff = 5;
		r.tcp.rst = 1;
		r.tcp.ack = 1;
		pseudo.saddr = r.ip.saddr;
		pseudo.daddr = r.ip.daddr;
		pseudo.proto = IPPROTO_TCP;
		pseudo.len = bpf_htons(sizeof(r.tcp));
		sum = bpf_csum_diff(NULL, 0, (__be32 *)&pseudo, sizeof(pseudo), 0);
		sum = bpf_csum_diff(NULL, 0, (__be32 *)&r.tcp, sizeof(r.tcp), sum);
		r.tcp.check = csum_fold_neg(sum);
		if (bpf_skb_change_tail(skb, REJECT_LEN(r), 0) ||
		    bpf_skb_store_bytes(skb, 0, &r.eth, REJECT_LEN(r), 0))
			return DROP(SLUICE_DROP_LB_NO_BACKEND);
		return SLUICE_LB_REJECT_TCP;
	}
	if (f->key.proto == IPPROTO_UDP) {
		struct reject_icmp r = {};

		/* The quote is the header as sent plus 8 bytes: with options
		 * it would be longer than this fixed layout. Pods send none. */
		if (ihl != sizeof(struct iphdr) || bpf_ntohs(tot_len) < ihl + 8)
			return DROP(SLUICE_DROP_LB_NO_BACKEND);
		if (bpf_skb_load_bytes(skb, IP_OFF, &r.quoted, sizeof(r.quoted)) ||
		    bpf_skb_load_bytes(skb, IP_OFF + ihl, r.quoted_l4, sizeof(r.quoted_l4)))
			return DROP(SLUICE_DROP_LB_NO_BACKEND);
		__builtin_memcpy(r.eth.h_dest, macs + ETH_ALEN, ETH_ALEN);
		__builtin_memcpy(r.eth.h_source, macs, ETH_ALEN);
		r.eth.h_proto = bpf_htons(ETH_P_IP);
		reject_ip(&r.ip, f->key.daddr, f->key.saddr, IPPROTO_ICMP,
			  REJECT_LEN(r) - ETH_HLEN);
		r.icmp.type = ICMP_DEST_UNREACH;
		r.icmp.code = ICMP_PORT_UNREACH;
		r.icmp.checksum = csum_fold_neg(bpf_csum_diff(NULL, 0, (__be32 *)&r.icmp,
							      REJECT_LEN(r) - ETH_HLEN - sizeof(r.ip),
							      0));
		if (bpf_skb_change_tail(skb, REJECT_LEN(r), 0) ||
		    bpf_skb_store_bytes(skb, 0, &r.eth, REJECT_LEN(r), 0))
			return DROP(SLUICE_DROP_LB_NO_BACKEND);
		return SLUICE_LB_REJECT_UDP;
	}
	return DROP(SLUICE_DROP_LB_NO_BACKEND);
}

#endif /* SLUICE_BPF_REJECT_H */
