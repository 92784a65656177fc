/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The flow a packet belongs to: the connection-tracking tuple, the port
 * policy matches on, TCP flags, and for ICMP errors the tuple of the packet
 * the error is about.
 */
#ifndef SLUICE_BPF_L4_H
#define SLUICE_BPF_L4_H

#include "parse.h"
#include "frag.h"

#define IPPROTO_ICMP	1
#define IPPROTO_TCP	6
#define IPPROTO_UDP	17
#define IPPROTO_SCTP	132

#define ICMP_ECHOREPLY		0
#define ICMP_DEST_UNREACH	3
#define ICMP_ECHO		8
#define ICMP_TIME_EXCEEDED	11
#define ICMP_PARAMETERPROB	12

#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_RST 0x04
#define TCP_FLAG_ACK 0x10

/* struct flow.ct_kind: what a new tracking entry of the flow would be, when
 * the caller knows (lib/ct.h ct_syn_restarts). */
#define CT_KIND_ANY	0	/* not said: a hook after the flow's first */
#define CT_KIND_DIRECT	1	/* a pod's flow, not translated */
#define CT_KIND_LB	2	/* Service-translated: SLUICE_CT_F_LB_BACKEND, pad ct_pad */

struct flow {
	struct sluice_ct_key key;
	__u16 policy_port;	/* dport, or type << 8 | code for ICMP */
	__u8 tcp_flags;
	__u8 icmp_error;	/* inner holds the tuple of the offending packet */
	__u8 later_fragment;	/* no L4 header: key's ports are its first fragment's */
	__u8 hairpin;		/* a pod's Service flow to itself, source made
				 * cfg_lb_hairpin by lib/lb.h */
	__u8 ct_kind;		/* CT_KIND_* */
	__u8 lb_new;		/* a Service flow whose backend was just chosen */
	__u32 ct_pad;		/* the pad word a new tracking entry of the flow gets */
	struct sluice_ct_key inner;
};

struct ports_hdr {
	__be16 sport;
	__be16 dport;
};

/* Source and destination ports of a TCP, UDP or SCTP header at c->pos
 * (the three share that layout). */
static __always_inline int parse_ports(struct cursor *c, __u32 need, struct sluice_ct_key *k)
{
	struct ports_hdr *p = c->pos;

	if (c->pos + need > c->end)
		return DROP(SLUICE_DROP_TRUNCATED);
	k->sport = p->sport;
	k->dport = p->dport;
	return 0;
}

/* The tuple of the packet quoted in an ICMP error (its IP header and the
 * first 8 bytes after it). */
static __always_inline int parse_icmp_inner(struct cursor *c, struct flow *f)
{
	struct iphdr *in = c->pos;
	__u32 hlen;

	if ((void *)(in + 1) > c->end)
		return DROP(SLUICE_DROP_TRUNCATED);
	hlen = in->ihl * 4;
	if (hlen < sizeof(*in))
		return DROP(SLUICE_DROP_BAD_IPHDR);
	f->inner.saddr = in->saddr;
	f->inner.daddr = in->daddr;
	f->inner.proto = in->protocol;
	c->pos += hlen;
	if (in->protocol == IPPROTO_TCP || in->protocol == IPPROTO_UDP ||
	    in->protocol == IPPROTO_SCTP) {
		if (parse_ports(c, sizeof(struct ports_hdr), &f->inner))
			return DROP(SLUICE_DROP_TRUNCATED);
	} else if (in->protocol == IPPROTO_ICMP) {
		struct icmphdr *ih = c->pos;

		if ((void *)(ih + 1) > c->end)
			return DROP(SLUICE_DROP_TRUNCATED);
		if (ih->type == ICMP_ECHO)
			f->inner.sport = ih->un.echo.id;
		else if (ih->type == ICMP_ECHOREPLY)
			f->inner.dport = ih->un.echo.id;
	}
	f->icmp_error = 1;
	return 0;
}

/* The L4 part of f from the header at c->pos. */
static __always_inline int parse_l4(struct cursor *c, struct iphdr *ip, struct flow *f)
{
	switch (ip->protocol) {
	case IPPROTO_TCP: {
		struct tcphdr *th = c->pos;

		if ((void *)(th + 1) > c->end)
			return DROP(SLUICE_DROP_TRUNCATED);
		f->key.sport = th->source;
		f->key.dport = th->dest;
		f->tcp_flags = ((__u8 *)th)[13];
		break;
	}
	case IPPROTO_UDP:
		if (parse_ports(c, sizeof(struct udphdr), &f->key))
			return DROP(SLUICE_DROP_TRUNCATED);
		break;
	case IPPROTO_SCTP:
		if (parse_ports(c, 12, &f->key))
			return DROP(SLUICE_DROP_TRUNCATED);
		break;
	case IPPROTO_ICMP: {
		struct icmphdr *ih = c->pos;

		if ((void *)(ih + 1) > c->end)
			return DROP(SLUICE_DROP_TRUNCATED);
		f->policy_port = (__u16)(ih->type << 8 | ih->code);
		if (ih->type == ICMP_ECHO) {
			f->key.sport = ih->un.echo.id;
		} else if (ih->type == ICMP_ECHOREPLY) {
			f->key.dport = ih->un.echo.id;
		} else if (ih->type == ICMP_DEST_UNREACH || ih->type == ICMP_TIME_EXCEEDED ||
			   ih->type == ICMP_PARAMETERPROB) {
			c->pos = ih + 1;
			return parse_icmp_inner(c, f);
		}
		return 0;
	}
	default:
		return 0;
	}
	f->policy_port = bpf_ntohs(f->key.dport);
	return 0;
}

/*
 * Fill f from the IPv4 header ip and the L4 header at c->pos. A later
 * fragment has no L4 header: it takes its first fragment's ports (see
 * frag.h), or is DROP(SLUICE_DROP_FRAG_ORPHAN) without one, and is marked
 * f->later_fragment; it has no policy port and must never start a flow.
 */
static __always_inline int parse_flow(struct cursor *c, struct iphdr *ip, struct flow *f)
{
	int ret;

	f->key.saddr = ip->saddr;
	f->key.daddr = ip->daddr;
	f->key.proto = ip->protocol;
	if (frag_is_later(ip)) {
		f->later_fragment = 1;
		return frag_recall(ip, &f->key);
	}
	ret = parse_l4(c, ip, f);
	if (!IS_DROP(ret) && frag_is_first(ip))
		frag_remember(ip, &f->key);
	return ret;
}

#endif /* SLUICE_BPF_L4_H */
