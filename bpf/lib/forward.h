/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Forwarding a pod's packet without the host stack: to a pod on this node
 * (bpf_redirect_peer), or out of the uplink towards the next hop the
 * kernel's route and neighbour tables give (native routing, and the
 * overlay's own encapsulated packets). Each routes as the node would:
 * TTL decremented, MACs rewritten.
 */
#ifndef SLUICE_BPF_FORWARD_H
#define SLUICE_BPF_FORWARD_H

#include "common.h"
#include "policy.h"
#include "bandwidth.h"

/* RFC 1624 incremental checksum update for a TTL decrement by one. */
static __always_inline void ipv4_decrement_ttl(struct iphdr *ip)
{
	__u32 sum = (__u32)ip->check + (__u32)bpf_htons(0x0100);

	ip->check = (__u16)(sum + (sum >= 0xffff));
	ip->ttl--;
}

/* Hand skb, ready as it is, to pod dst's interface (the peer of its host
 * veth). Every packet sluice redirects into a local pod goes through here,
 * after the pod's ingress policy: its ingress bandwidth limit is charged
 * here once (to_pod charges what the host stack delivers, which never
 * passes here). */
static __always_inline int deliver_to_pod(struct __sk_buff *skb, const struct sluice_endpoint *dst)
{
	int ret = bw_ingress(skb, dst);

	if (IS_DROP(ret))
		return ret;
	if (bpf_redirect_peer(dst->ifindex, 0) != TC_ACT_REDIRECT)
		return DROP(SLUICE_DROP_REDIRECT);
	return TC_ACT_REDIRECT;
}

/* Route a packet to a pod on this node: TTL, MACs as if the node had routed
 * it (from the pod's host veth to the pod), then into the pod's interface. */
static __always_inline int redirect_to_pod(struct __sk_buff *skb, struct ethhdr *eth,
					   struct iphdr *ip, const struct sluice_endpoint *dst)
{
	ipv4_decrement_ttl(ip);
	__builtin_memcpy(eth->h_dest, dst->pod_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, dst->lxc_mac, ETH_ALEN);
	return deliver_to_pod(skb, dst);
}

/* Can the packet go straight out towards the hop next_hop() found? */
static __always_inline int hop_usable(long hop)
{
	return hop == BPF_FIB_LKUP_RET_SUCCESS || hop == BPF_FIB_LKUP_RET_NO_NEIGH;
}

/* The next hop towards dst (network order) out of the node: its device
 * and MACs in fib. Returns the bpf_fib_lookup verdict (see hop_usable). */
static __always_inline long next_hop(struct __sk_buff *skb, __be32 src, __be32 dst,
				     struct bpf_fib_lookup *fib)
{
	fib->family = 2; /* AF_INET */
	fib->ifindex = skb->ifindex;
	fib->ipv4_src = src;
	fib->ipv4_dst = dst;
	/* tot_len 0: the kernel checks the skb against the egress MTU itself,
	 * knowing GSO. ip->tot_len of a 64 KB GSO packet is over any MTU, and
	 * FRAG_NEEDED would send the bulk of every TCP flow to the stack (and
	 * mark it the stack's for good). */
	fib->tot_len = 0;
	return bpf_fib_lookup(skb, fib, sizeof(*fib), 0);
}

/* Out of the uplink towards the next hop next_hop() found (ret its
 * verdict): while the hop's MAC is unknown, bpf_redirect_neigh has the
 * neighbour subsystem resolve it, still around netfilter: a flow whose
 * packets crossed the node's conntrack only now and then would turn
 * INVALID there. The mark tells to_netdev the packet is from_pod's own,
 * not one the host stack forwarded. Reads the packet afresh: callers'
 * pointers may be stale. */
static __always_inline int redirect_out(struct __sk_buff *skb, long ret,
					const struct bpf_fib_lookup *fib)
{
	struct ethhdr *eth = (void *)(long)skb->data;

	skb->mark |= SLUICE_MARK_FAST;
	if (ret == BPF_FIB_LKUP_RET_NO_NEIGH)
		return bpf_redirect_neigh(fib->ifindex, NULL, 0, 0);
	if ((void *)(eth + 1) > (void *)(long)skb->data_end)
		return DROP(SLUICE_DROP_REDIRECT);
	__builtin_memcpy(eth->h_dest, fib->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib->smac, ETH_ALEN);
	return bpf_redirect(fib->ifindex, 0);
}

/* Native routing to a pod on another node: the route and the next hop's
 * MAC from the kernel's tables, and straight out of the uplink, skipping
 * the host stack's forwarding path. Anything the lookup cannot handle goes
 * to the host stack. */
static __always_inline int to_remote_native(struct __sk_buff *skb, struct iphdr *ip,
					    __u32 *reason)
{
	struct sluice_ipcache_value peer = ipcache_lookup(ip->daddr);
	struct bpf_fib_lookup fib = {};
	long hop;

	if (!peer.tunnel_endpoint)
		return TC_ACT_OK;
	hop = next_hop(skb, ip->saddr, ip->daddr, &fib);
	if (!hop_usable(hop))
		return TC_ACT_OK;
	ipv4_decrement_ttl(ip);
	*reason = SLUICE_FWD_NATIVE;
	return redirect_out(skb, hop, &fib);
}

#endif /* SLUICE_BPF_FORWARD_H */
