/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Where a packet may come from: what is believed of a source address
 * depends on how the packet reached this node.
 *
 * - Tunnelled (VXLAN, taken off by BPF at the uplink or by the kernel's
 *   vxlan device): only from another node's own address (an ipcache entry
 *   with SLUICE_IPC_F_NODE), which on one segment with this node must be
 *   that node's own MAC too, and the inner source is given its identity
 *   only when that node has it (the source's tunnel_endpoint is the outer
 *   source). A node may also tunnel an address sluice knows nothing about
 *   (the world, routed or forwarded by it): policy sees the world. Any
 *   other inner source (a pod here, this node, another node's pod or
 *   address) is forged.
 * - Plain on the uplink: never with this node's own address or a local
 *   pod's as the source; another node's pod only in native routing (in
 *   overlay mode pods' packets between nodes are always tunnelled), and then
 *   from the link-layer address this node would send to that node through.
 *
 * The agent marks the nodes (compile.c, build_ipcache). The ipcache knows
 * nothing of a node without a pod CIDR or an address: its packets are
 * dropped until it has both.
 */
#ifndef SLUICE_BPF_ORIGIN_H
#define SLUICE_BPF_ORIGIN_H

#include "endpoint.h"
#include "policy.h"

#define AF_INET 2

/*
 * The next hop towards a node, as bpf_fib_lookup last found it: a route and
 * neighbour lookup per packet costs about as much as the rest of
 * from_netdev's work on it (BPF_PROG_TEST_RUN, native, another node's pod:
 * +135 ns uncached, +65 ns with this), so its answer is kept for
 * HOP_CACHE_NS. Filled only from the kernel's own
 * tables, never from a packet. A changed MAC (a node's NIC replaced) is
 * believed at most that much later, and an unresolved hop is never kept.
 * Not pinned: the programs' own, rebuilt after a reload.
 */
#define HOP_CACHE_NS 1000000000ull
#define HOP_CACHE_MAX 8192

struct hop_cache {
	__u8 mac[ETH_ALEN];
	__u8 onlink;		/* the node itself is the next hop (no router) */
	__u8 pad;
	__u32 ifindex;
	__u64 expires;		/* bpf_ktime_get_coarse_ns() */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, HOP_CACHE_MAX);
	__type(key, __be32);
	__type(value, struct hop_cache);
} sluice_hop4_v1 SEC(".maps");

/* (no memcmp in BPF) */
static __always_inline int mac_equal(const __u8 *a, const __u8 *b)
{
	__u8 diff = 0;

#pragma unroll
	for (int i = 0; i < ETH_ALEN; i++)
		diff |= a[i] ^ b[i];
	return !diff;
}

/* Another node's own address. */
static __always_inline int ipc_is_node(const struct sluice_ipcache_value *v)
{
	return v->flags & SLUICE_IPC_F_NODE;
}

/* A source of which nothing is known: no label (not a pod, not this node),
 * no node has it, not a local pod the ipcache does not know yet. */
static __always_inline int ipc_is_unknown(const struct sluice_ipcache_value *v, __be32 ip)
{
	return v->identity == SLUICE_ID_WORLD && !v->tunnel_endpoint && !endpoint_lookup4(ip);
}

/*
 * A frame tunnelled by outer (the outer source, network order) whose inner
 * source is src, peer its ipcache entry. Returns 0 when believable, else
 * DROP(): SLUICE_DROP_TUNNEL_SOURCE when outer is no node,
 * SLUICE_DROP_TUNNEL_SPOOF when src is not outer's to send. The common case
 * (a pod of the sending node) costs no lookup beyond peer's.
 */
static __always_inline int tunnel_origin_check(__be32 outer, __be32 src,
					       const struct sluice_ipcache_value *peer)
{
	struct sluice_ipcache_value sender;

	/* tunnel_endpoint is only ever a node's address (never 0 here). */
	if (outer && peer->tunnel_endpoint == outer)
		return 0;
	sender = ipcache_lookup(outer);
	if (!ipc_is_node(&sender))
		return DROP(SLUICE_DROP_TUNNEL_SOURCE);
	return ipc_is_unknown(peer, src) ? 0 : DROP(SLUICE_DROP_TUNNEL_SPOOF);
}

/* Overlay packets (outer headers) from outer: a node, or DROP(). */
static __always_inline int tunnel_sender_check(__be32 outer)
{
	struct sluice_ipcache_value sender = ipcache_lookup(outer);

	return ipc_is_node(&sender) ? 0 : DROP(SLUICE_DROP_TUNNEL_SOURCE);
}

/*
 * Did the frame eth come from the next hop towards node (network order)
 * on the device it came in on (ifindex; ctx: the program's context, tc or
 * XDP)? Any router on the way to the node: its MAC.
 * onlink_only: only a node on this node's own segment is checked (1 for
 * one behind routers). An unresolved next hop fails (0) when checked.
 */
static __always_inline int from_next_hop(void *ctx, __u32 ifindex, const struct ethhdr *eth,
					 __be32 node, int onlink_only)
{
	struct bpf_fib_lookup fib = {};
	__u64 now = bpf_ktime_get_coarse_ns();
	struct hop_cache *hop, fresh = {};
	long ret;

	hop = bpf_map_lookup_elem(&sluice_hop4_v1, &node);
	if (!hop || hop->expires < now) {
		fib.family = AF_INET;
		fib.ifindex = ifindex;
		fib.ipv4_dst = node;
		ret = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
		/* (ipv4_dst becomes the gateway's when there is one, also
		 * for NO_NEIGH) */
		if (ret == BPF_FIB_LKUP_RET_NO_NEIGH && onlink_only && fib.ipv4_dst != node)
			return 1;
		if (ret != BPF_FIB_LKUP_RET_SUCCESS)
			return 0;
		__builtin_memcpy(fresh.mac, fib.dmac, ETH_ALEN);
		fresh.onlink = fib.ipv4_dst == node;
		fresh.ifindex = fib.ifindex;
		fresh.expires = now + HOP_CACHE_NS;
		bpf_map_update_elem(&sluice_hop4_v1, &node, &fresh, BPF_ANY);
		hop = &fresh;
	}
	if (onlink_only && !hop->onlink)
		return 1;
	return hop->ifindex == ifindex && mac_equal(hop->mac, eth->h_source);
}

/*
 * Overlay packets (outer headers, eth the outer Ethernet header) on the
 * uplink from outer (network order): from a node, and from its MAC when it
 * is on this node's segment, or DROP(SLUICE_DROP_TUNNEL_SOURCE). Behind
 * routers the outer address is all there is to go by (the underlay's paths
 * may differ each way, which would make the router's MAC no proof); a
 * host that can send with a node's address from there is believed.
 */
static __always_inline int tunnel_link_check(struct __sk_buff *skb, const struct ethhdr *eth,
					     __be32 outer)
{
	return from_next_hop(skb, skb->ifindex, eth, outer, 1) ? 0 : DROP(SLUICE_DROP_TUNNEL_SOURCE);
}

/*
 * A plain (not tunnelled) IPv4 packet that came in on the uplink (ifindex;
 * ctx: the program's context, tc or XDP), eth its Ethernet header, src its source and peer src's ipcache entry. overlay:
 * the routing mode. Returns 0 or DROP(SLUICE_DROP_UPLINK_SPOOF).
 *
 * Native routing: another node's pod's packets come from that node, or on
 * a routed underlay from the router towards it: the next hop this node's
 * own route to that node has (bpf_fib_lookup from the uplink), whose MAC
 * must be the frame's source. An unresolved next hop (NO_NEIGH) fails
 * closed: nothing tells the real node from anyone else then. The agent
 * keeps the nodes' neighbour entries resolved (node.c, node_net_keep_neighs)
 * so that this does not happen to real traffic for long. Trusting the
 * neighbour table means trusting ARP on the segment: a host that can
 * poison it (or forge the node's MAC) is not stopped here.
 */
static __always_inline int uplink_origin_check(void *ctx, __u32 ifindex, const struct ethhdr *eth,
					       __be32 src, const struct sluice_ipcache_value *peer,
					       int overlay)
{
	if (peer->identity == SLUICE_ID_HOST)
		return DROP(SLUICE_DROP_UPLINK_SPOOF);
	/* A node's own address, the world: nothing more to believe. */
	if (!peer->tunnel_endpoint)
		return endpoint_lookup4(src) ? DROP(SLUICE_DROP_UPLINK_SPOOF) : 0;
	if (ipc_is_node(peer))
		return 0;
	if (overlay || !from_next_hop(ctx, ifindex, eth, peer->tunnel_endpoint, 0))
		return DROP(SLUICE_DROP_UPLINK_SPOOF);
	return 0;
}

/*
 * A pod's packet to dst (f's destination, not a local pod): UDP to the
 * tunnel port goes only to other pods. A node's tunnel port (this node's
 * addresses, the others', any address of theirs sluice does not know,
 * which masquerade would turn into a node's own packet) takes only what
 * nodes send. Returns 0 or DROP(SLUICE_DROP_TUNNEL_PORT); only UDP to that
 * port pays the lookup.
 */
static __always_inline int tunnel_port_check(const struct flow *f)
{
	struct sluice_ipcache_value peer;

	if (f->key.proto != IPPROTO_UDP || f->key.dport != bpf_htons(SLUICE_VXLAN_PORT))
		return 0;
	peer = ipcache_lookup(f->key.daddr);
	if (peer.identity >= SLUICE_ID_FIRST_LABEL && peer.identity < SLUICE_ID_FIRST_CIDR &&
	    !ipc_is_node(&peer))
		return 0;
	return DROP(SLUICE_DROP_TUNNEL_PORT);
}

#endif /* SLUICE_BPF_ORIGIN_H */
