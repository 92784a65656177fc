/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Masquerade: pods' traffic to outside the cluster leaves the node's uplink
 * with the node's address as its source (to_netdev), and the replies are
 * rewritten back to the pod as they come in (from_netdev). The source port
 * is kept when it is free for that destination, else a free one is chosen.
 */
#ifndef SLUICE_BPF_NAT_H
#define SLUICE_BPF_NAT_H

#include "l4.h"

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

/* The node port for f: the one it already has, else its own port if free,
 * else a random free one. Returns 0 and sets *port, or DROP(). */
static __always_inline int nat_port_for(const struct flow *f, __be32 node_ip, __be16 *port)
{
	struct sluice_nat_value *have = bpf_map_lookup_elem(&sluice_snat4_v1, &f->key);
	struct sluice_nat_value fwd = { .addr = node_ip }, back = { .addr = f->key.saddr };
	struct sluice_ct_key rkey;
	__be16 own = f->key.proto == IPPROTO_ICMP && f->key.dport ? f->key.dport : f->key.sport;

	if (have) {
		*port = have->port;
		return 0;
	}
	back.port = own;
	for (int i = 0; i < NAT_TRIES; i++) {
		__be16 try = own;

		/* The node's tunnel port is never lent: replies to it would be
		 * taken for overlay packets (and dropped unless from a node). */
		if (i || (f->key.proto == IPPROTO_UDP && own == bpf_htons(SLUICE_VXLAN_PORT)))
			try = bpf_htons(SLUICE_NAT_PORT_MIN +
					bpf_get_prandom_u32() % (SLUICE_NAT_PORT_MAX - SLUICE_NAT_PORT_MIN + 1));
		nat_reply_key(f, node_ip, try, &rkey);
		if (bpf_map_update_elem(&sluice_rnat4_v1, &rkey, &back, BPF_NOEXIST))
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

#endif /* SLUICE_BPF_NAT_H */
