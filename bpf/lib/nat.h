/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Masquerade: pods' traffic to outside the cluster leaves the node's uplink
 * with the node's address as its source (to_netdev), and the replies are
 * rewritten back to the pod as they come in (from_netdev). The source port
 * (ICMP echo id) is always one of the agent's NAT range, which the kernel
 * keeps out of its own port choices (ip_local_reserved_ports): never the
 * pod's own, so a node socket's replies are never taken for a pod's.
 * A NAT pair is only as alive as the pod's flow in connection tracking: a
 * reply (or ICMP error) whose flow is no longer tracked is left untranslated
 * and its pair removed; a flow that starts again gets a fresh port.
 */
#ifndef SLUICE_BPF_NAT_H
#define SLUICE_BPF_NAT_H

#include "config.h"
#include "ct.h"

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SLUICE_NAT_MAX);
	__type(key, struct sluice_ct_key);
	__type(value, struct sluice_nat_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_snat4_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SLUICE_NAT_MAX);
	__type(key, struct sluice_ct_key);
	__type(value, struct sluice_nat_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_rnat4_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 4096);
	__type(key, struct sluice_nomasq_key);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_nomasq_v1 SEC(".maps");

#define NAT_TRIES 16

static __always_inline int nat_masquerade_wanted(__be32 daddr)
{
	struct sluice_nomasq_key k = { .prefixlen = 32, .ip = daddr };

	return !bpf_map_lookup_elem(&sluice_nomasq_v1, &k);
}

/* The replies' tuple for a flow f sent as (node_ip, port). */
static __always_inline void nat_reply_key(const struct flow *f, __be32 node_ip, __be16 port,
					  struct sluice_ct_key *r)
{
	r->saddr = f->key.daddr;
	r->daddr = node_ip;
	r->sport = f->key.dport;
	r->dport = port;
	r->proto = f->key.proto;
	r->pad[0] = r->pad[1] = r->pad[2] = 0;
}

/* The pod's own port (ICMP echo id) of a flow it sends. */
static __always_inline __be16 nat_own_port(const struct flow *f)
{
	return f->key.proto == IPPROTO_ICMP && f->key.dport ? f->key.dport : f->key.sport;
}

/* The pod's flow (its tuple as sent, the snat and connection-tracking
 * key) that the reply tuple r belongs to, rnat having mapped r to pod. */
static __always_inline void nat_pod_key(const struct sluice_ct_key *r,
					const struct sluice_nat_value *pod, struct sluice_ct_key *k)
{
	k->saddr = pod->addr;
	k->daddr = r->saddr;
	k->sport = pod->port;
	k->dport = r->sport;
	k->proto = r->proto;
	k->pad[0] = k->pad[1] = k->pad[2] = 0;
}

/* Remove the rnat entry r when it still maps to pod (an earlier flow's:
 * since then the port may have gone to another pod's flow). */
static __always_inline void nat_forget_reply(const struct sluice_ct_key *r,
					     const struct sluice_nat_value *pod)
{
	struct sluice_nat_value *v = bpf_map_lookup_elem(&sluice_rnat4_v1, r);

	if (v && v->addr == pod->addr && v->port == pod->port)
		bpf_map_delete_elem(&sluice_rnat4_v1, r);
}

enum nat_reply { NAT_NOT_OURS = 0, NAT_LIVE, NAT_STALE };

/*
 * Whether the reply tuple r is a masqueraded flow's whose pod flow is still
 * tracked (live, and masqueraded: the stack's); *pod: the pod's address and
 * port. A pair whose flow is gone (expired, evicted, purged at the pod's
 * DEL) is removed: NAT_STALE. One connection-tracking lookup.
 */
static __always_inline enum nat_reply nat_reply_lookup(const struct sluice_ct_key *r,
						       struct sluice_nat_value *pod)
{
	struct sluice_nat_value *v = bpf_map_lookup_elem(&sluice_rnat4_v1, r), *fwd;
	struct sluice_ct_value *ct;
	struct sluice_ct_key k;

	if (!v)
		return NAT_NOT_OURS;
	*pod = *v;
	nat_pod_key(r, pod, &k);
	ct = ct_live(&k, bpf_ktime_get_ns());
	if (ct && (ct->flags & SLUICE_CT_F_VIA_STACK))
		return NAT_LIVE;
	bpf_map_delete_elem(&sluice_rnat4_v1, r);
	fwd = bpf_map_lookup_elem(&sluice_snat4_v1, &k);
	if (fwd && fwd->port == r->dport)
		bpf_map_delete_elem(&sluice_snat4_v1, &k);
	return NAT_STALE;
}

/*
 * Would a node socket take the packets of reply tuple r (a listener, a
 * bound or connected socket, TCP's time-wait ones included)? The range is
 * reserved, so the kernel never picks its ports itself, but a node process
 * may still bind one explicitly. ICMP echo ids have no such lookup.
 */
static __always_inline int nat_port_node_owned(void *ctx, const struct sluice_ct_key *r)
{
	struct bpf_sock_tuple t = {};
	struct bpf_sock *sk;

	t.ipv4.saddr = r->saddr;
	t.ipv4.daddr = r->daddr;
	t.ipv4.sport = r->sport;
	t.ipv4.dport = r->dport;
	if (r->proto == IPPROTO_TCP)
		sk = bpf_skc_lookup_tcp(ctx, &t, sizeof(t.ipv4), BPF_F_CURRENT_NETNS, 0);
	else if (r->proto == IPPROTO_UDP)
		sk = bpf_sk_lookup_udp(ctx, &t, sizeof(t.ipv4), BPF_F_CURRENT_NETNS, 0);
	else
		return 0;
	if (!sk)
		return 0;
	bpf_sk_release(sk);
	return 1;
}

/*
 * The node port for f, from [lo, hi] (host order): the one it has, or,
 * for the flow's first packet out (fresh: a new flow, or one whose earlier
 * incarnation expired, whose old pair is replaced), a random one no other
 * flow and no node socket has for that destination. Returns 0 and sets
 * *port, or DROP(). ctx: the program's context (tc or XDP), for the
 * socket lookup.
 */
static __always_inline int nat_port_for(void *ctx, const struct flow *f, __be32 node_ip,
					__u32 lo, __u32 hi, int fresh, __be16 *port)
{
	struct sluice_nat_value *have = bpf_map_lookup_elem(&sluice_snat4_v1, &f->key);
	struct sluice_nat_value fwd = { .addr = node_ip },
				back = { .addr = f->key.saddr, .port = nat_own_port(f) };
	struct sluice_ct_key rkey;

	if (have && !fresh) {
		*port = have->port;
		return 0;
	}
	if (have) {
		nat_reply_key(f, node_ip, have->port, &rkey);
		nat_forget_reply(&rkey, &back);
	}
	for (int i = 0; i < NAT_TRIES; i++) {
		__be16 try = bpf_htons((__u16)(lo + bpf_get_prandom_u32() % (hi - lo + 1)));

		nat_reply_key(f, node_ip, try, &rkey);
		if (nat_port_node_owned(ctx, &rkey) ||
		    bpf_map_update_elem(&sluice_rnat4_v1, &rkey, &back, BPF_NOEXIST))
			continue;
		fwd.port = try;
		if (bpf_map_update_elem(&sluice_snat4_v1, &f->key, &fwd, BPF_ANY)) {
			bpf_map_delete_elem(&sluice_rnat4_v1, &rkey);
			return DROP(SLUICE_DROP_NAT_PORTS);
		}
		*port = try;
		return 0;
	}
	return DROP(SLUICE_DROP_NAT_PORTS);
}

/* Offset of the L4 checksum for proto, or 0 when it has none we fix. */
static __always_inline __u32 l4_csum_off(__u8 proto, __u32 l4)
{
	switch (proto) {
	case IPPROTO_TCP: return l4 + offsetof(struct tcphdr, check);
	case IPPROTO_UDP: return l4 + offsetof(struct udphdr, check);
	case IPPROTO_ICMP: return l4 + offsetof(struct icmphdr, checksum);
	default: return 0;
	}
}

/*
 * Rewrite the address at addr_off and the port (or echo id) at port_off
 * from (old_addr, old_port) to (new_addr, new_port), fixing the IPv4 and
 * L4 checksums (ICMP has no pseudo-header). Invalidates packet pointers.
 */
static __always_inline int nat_rewrite(struct __sk_buff *skb, __u8 proto, __u32 l4,
				       __u32 addr_off, __be32 old_addr, __be32 new_addr,
				       __u32 port_off, __be16 old_port, __be16 new_port)
{
	__u32 csum = l4_csum_off(proto, l4);
	__u64 pseudo = BPF_F_PSEUDO_HDR | sizeof(new_addr);
	__u64 mangled = proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;

	if (bpf_l3_csum_replace(skb, IP_CSUM_OFF, old_addr, new_addr, sizeof(new_addr)))
		return -1;
	if (csum && proto != IPPROTO_ICMP &&
	    bpf_l4_csum_replace(skb, csum, old_addr, new_addr, pseudo | mangled))
		return -1;
	if (bpf_skb_store_bytes(skb, addr_off, &new_addr, sizeof(new_addr), 0))
		return -1;
	if (!port_off || old_port == new_port)
		return 0;
	if (csum && bpf_l4_csum_replace(skb, csum, old_port, new_port, sizeof(new_port) | mangled))
		return -1;
	return bpf_skb_store_bytes(skb, port_off, &new_port, sizeof(new_port), 0) ? -1 : 0;
}

/*
 * A later fragment of a pod's flow (f->later_fragment, the flow's ports
 * from its first fragment) leaving the node: it gets the source address its
 * flow was masqueraded to, if it was (f has a mapping). It has no L4 header:
 * no port and no L4 checksum to write, only the address and the IPv4
 * checksum. Returns 1 when rewritten, 0 when the flow is not masqueraded,
 * or DROP().
 */
static __always_inline int nat_later_fragment(struct __sk_buff *skb, const struct flow *f,
					      __be32 node_ip)
{
	if (!bpf_map_lookup_elem(&sluice_snat4_v1, &f->key))
		return 0;
	if (nat_rewrite(skb, 0, 0, IP_OFF + offsetof(struct iphdr, saddr), f->key.saddr, node_ip,
			0, 0, 0))
		return DROP(SLUICE_DROP_NAT_PORTS);
	return 1;
}

/* RFC 1624 (eqn. 3) incremental update of the Internet checksum check
 * (as it sits in the packet) for a 32- or 16-bit field going from from to
 * to (as they sit in the packet): for checksums no helper may touch (those
 * inside an ICMP error's quote, which the skb knows nothing of). */
static __always_inline __u16 csum_fold32(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

static __always_inline __u16 csum_update4(__u16 check, __be32 from, __be32 to)
{
	__u32 sum = (__u16)~check;

	sum += (__u16)~(__u16)from + (__u16)~(__u16)(from >> 16);
	sum += (__u16)to + (__u16)(to >> 16);
	return (__u16)~csum_fold32(sum);
}

static __always_inline __u16 csum_update2(__u16 check, __be16 from, __be16 to)
{
	__u32 sum = (__u16)~check;

	sum += (__u16)~from + (__u16)to;
	return (__u16)~csum_fold32(sum);
}

/*
 * An ICMP error (its header at l4) quoting a packet of proto: the quoted
 * source (quoted_src) or destination goes from (from, pfrom) to (to, pto),
 * and the outer header's address at outer_off (0: none) from ofrom to oto.
 * The outer IP header's checksum, the quoted IP header's, the quoted L4
 * checksum (when the quote holds it: TCP's lies past the 8 bytes an error
 * must carry, UDP's may be unused) and the ICMP checksum over all of it
 * stay right, as the kernel's own NAT keeps them. An ICMP quote's "port" is
 * its echo id, whichever side. Returns 0 or -1. Invalidates packet
 * pointers.
 */
static __always_inline int icmp_quote_rewrite(struct __sk_buff *skb, __u32 l4, __u8 proto,
					      int quoted_src, __be32 from, __be32 to, __be16 pfrom,
					      __be16 pto, __u32 outer_off, __be32 ofrom, __be32 oto)
{
	__u32 icsum = l4 + offsetof(struct icmphdr, checksum), in = l4 + sizeof(struct icmphdr);
	__u32 in_l4, port_off, l4csum, addr_off;
	__u16 ic, inner_check, u0 = 0, u1 = 0;
	struct iphdr inner;

	if (bpf_skb_load_bytes(skb, in, &inner, sizeof(inner)) ||
	    bpf_skb_load_bytes(skb, icsum, &ic, sizeof(ic)))
		return -1;
	in_l4 = in + inner.ihl * 4;
	addr_off = in + (quoted_src ? offsetof(struct iphdr, saddr) : offsetof(struct iphdr, daddr));
	switch (proto) {
	case IPPROTO_TCP:
		port_off = in_l4 + (quoted_src ? offsetof(struct tcphdr, source)
					       : offsetof(struct tcphdr, dest));
		l4csum = in_l4 + offsetof(struct tcphdr, check);
		break;
	case IPPROTO_UDP:
		port_off = in_l4 + (quoted_src ? offsetof(struct udphdr, source)
					       : offsetof(struct udphdr, dest));
		l4csum = in_l4 + offsetof(struct udphdr, check);
		break;
	case IPPROTO_ICMP:
		port_off = in_l4 + offsetof(struct icmphdr, un.echo.id);
		l4csum = in_l4 + offsetof(struct icmphdr, checksum);
		break;
	default:
		return -1;
	}
	if (bpf_skb_load_bytes(skb, l4csum, &u0, sizeof(u0)) || (proto == IPPROTO_UDP && !u0)) {
		l4csum = 0;
	} else {
		u1 = u0;
		if (proto != IPPROTO_ICMP) /* TCP and UDP: the pseudo-header's address */
			u1 = csum_update4(u1, from, to);
		u1 = csum_update2(u1, pfrom, pto);
		if (proto == IPPROTO_UDP && !u1)
			u1 = 0xffff;
	}
	inner_check = csum_update4(inner.check, from, to);
	ic = csum_update4(ic, from, to);
	ic = csum_update2(ic, inner.check, inner_check);
	ic = csum_update2(ic, pfrom, pto);
	if (l4csum)
		ic = csum_update2(ic, u0, u1);

	if (outer_off &&
	    (bpf_l3_csum_replace(skb, IP_CSUM_OFF, ofrom, oto, sizeof(oto)) ||
	     bpf_skb_store_bytes(skb, outer_off, &oto, sizeof(oto), 0)))
		return -1;
	if (bpf_skb_store_bytes(skb, addr_off, &to, sizeof(to), 0) ||
	    bpf_skb_store_bytes(skb, in + offsetof(struct iphdr, check), &inner_check,
				sizeof(inner_check), 0) ||
	    bpf_skb_store_bytes(skb, port_off, &pto, sizeof(pto), 0) ||
	    (l4csum && bpf_skb_store_bytes(skb, l4csum, &u1, sizeof(u1), 0)) ||
	    bpf_skb_store_bytes(skb, icsum, &ic, sizeof(ic), 0))
		return -1;
	return 0;
}

/*
 * An ICMP error about a masqueraded flow, addressed to the node and quoting
 * the packet the node sent for the pod, (node_ip, nat_port) to the remote:
 * back to the pod. The outer destination becomes the pod's address, the
 * quoted source its address and port (icmp_quote_rewrite).
 */
static __always_inline int nat_rewrite_icmp_error(struct __sk_buff *skb, __u32 l4, __u8 proto,
						  __be32 node_ip, __be16 nat_port,
						  const struct sluice_nat_value *pod)
{
	return icmp_quote_rewrite(skb, l4, proto, 1, node_ip, pod->addr, nat_port, pod->port,
				  IP_OFF + offsetof(struct iphdr, daddr), node_ip, pod->addr);
}

/* A reply to a masqueraded flow, or an ICMP error about one: back to the
 * pod, when the pod's flow is still tracked. *reverse: the counter for
 * what was done (0: nothing, not ours). Returns 0 or DROP(). */
static __always_inline int nat_reverse(struct __sk_buff *skb, __u32 *reverse)
{
	struct sluice_nat_value orig;
	struct sluice_ct_key quoted;
	enum nat_reply found;
	struct ethhdr *eth;
	struct flow f = {};
	struct cursor c;
	struct iphdr *ip;
	__u32 l4, port_off;
	int ret;

	cursor_init(&c, skb);
	if (parse_eth(&c, &eth) != ETH_P_IP)
		return 0;
	ret = parse_ipv4(&c, &ip);
	if (IS_DROP(ret))
		return ret;
	if (ip->daddr != cfg_node_ip)
		return 0;
	l4 = ETH_HLEN + ip->ihl * 4;
	ret = parse_flow(&c, ip, &f);
	if (IS_DROP(ret))
		return f.later_fragment ? 0 : ret; /* no first seen: not a flow of ours */
	if (f.icmp_error) {
		/* About a packet the node sent: its replies' tuple is the
		 * quoted one reversed. */
		if (f.inner.saddr != cfg_node_ip)
			return 0;
		ct_reverse(&f.inner, &quoted);
		found = nat_reply_lookup(&quoted, &orig);
		if (found == NAT_LIVE) {
			if (nat_rewrite_icmp_error(skb, l4, quoted.proto, cfg_node_ip, quoted.dport,
						   &orig))
				return DROP(SLUICE_DROP_NAT_PORTS);
			*reverse = SLUICE_NAT_ICMP_ERROR;
		} else if (found == NAT_STALE) {
			*reverse = SLUICE_NAT_STALE;
		}
		return 0;
	}
	found = nat_reply_lookup(&f.key, &orig);
	if (found != NAT_LIVE) {
		/* A stale pair's packet goes to the node untranslated: to a
		 * port no node socket has (the range is reserved). */
		*reverse = found == NAT_STALE ? SLUICE_NAT_STALE : 0;
		return 0;
	}
	port_off = f.key.proto == IPPROTO_ICMP ? l4 + 4 : l4 + 2;
	if (f.later_fragment) /* no L4 header: the address only */
		port_off = 0;
	if (nat_rewrite(skb, f.later_fragment ? 0 : f.key.proto, l4,
			IP_OFF + offsetof(struct iphdr, daddr), f.key.daddr,
			orig.addr, port_off, f.key.dport, orig.port))
		return DROP(SLUICE_DROP_NAT_PORTS);
	*reverse = SLUICE_NAT_REVERSE;
	return 0;
}

#endif /* SLUICE_BPF_NAT_H */
