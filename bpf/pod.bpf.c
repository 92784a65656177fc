// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Programs on a pod's host-side veth ("lxc…").
 *
 * from_pod: tc ingress of the host veth, i.e. every packet the pod sends.
 *   The source must be the pod's own address. A flow's first packet is
 *   checked against the pod's egress policy and, when the destination is a
 *   pod on this node, that pod's ingress policy; the allowed flow is
 *   tracked, and its later packets and replies pass on the entry. IPv4 to
 *   another pod on this node is routed here: TTL decremented, MACs
 *   rewritten, and handed straight to the destination pod's interface with
 *   bpf_redirect_peer (no bridge, no iptables, no second trip through the
 *   host stack). Everything else (the node, other nodes, the world) goes to
 *   the host stack, so kube-proxy and the node's routing keep working. ARP
 *   passes; other non-IPv4 traffic is dropped: sluice is IPv4-only today.
 * to_pod: tc egress of the host veth, i.e. what the host stack sends to the
 *   pod: the pod's ingress policy for flows that did not come from a local
 *   pod (those were checked in from_pod). The node itself may always reach
 *   its pods.
 * from_overlay / from_netdev: tc ingress of the vxlan device (overlay) or
 *   the node's uplink (native routing): traffic from pods on other nodes
 *   goes straight to the local pod after its ingress policy. With overlay
 *   routing, from_pod encapsulates traffic for other nodes' pods itself.
 *   Before any of that, a source is believed only as far as the way the
 *   packet came allows (lib/origin.h): overlay packets only from other
 *   nodes, an inner source only from its own node, no plain packet on the
 *   uplink with this node's or a local pod's source (overlay: any pod's;
 *   native: another node's pod's only from the next hop's MAC).
 * to_overlay: tc egress of the vxlan device: what the host stack routes
 *   into the tunnel (the node's own traffic, Service traffic kube-proxy
 *   DNATed to another node's pod) gets its tunnel key from the ipcache.
 * to_netdev: tc egress of the uplink: masquerade.
 *
 * Flows the host stack forwards (kube-proxy's Service NAT, anything routed
 * by the node) are marked in connection tracking where they leave the
 * stack (to_pod, to_overlay, to_netdev) and stay on the stack: none of
 * their packets, replies included, take a fast path, so the node's
 * netfilter sees both directions and un-NATs the replies.
 *
 * Each entry point has one exit that records the verdict in sluice_stats_v2.
 */
#include "lib/common.h"
#include "lib/parse.h"
#include "lib/metrics.h"
#include "lib/endpoint.h"
#include "lib/frag.h"
#include "lib/l4.h"
#include "lib/ct.h"
#include "lib/policy.h"
#include "lib/nat.h"
#include "lib/overlay.h"
#include "lib/origin.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by the agent before loading (the skeleton's rodata). */
const volatile __u32 cfg_routing = SLUICE_ROUTING_NATIVE;
const volatile __u32 cfg_vxlan_ifindex = 0;
const volatile __u32 cfg_masquerade = 0;
const volatile __be32 cfg_node_ip = 0;
/* The masquerade's node ports (ICMP echo ids), host order. */
const volatile __u32 cfg_nat_port_min = SLUICE_NAT_PORTS_DEFAULT_MIN;
const volatile __u32 cfg_nat_port_max = SLUICE_NAT_PORTS_DEFAULT_MAX;

/* RFC 1624 incremental checksum update for a TTL decrement by one. */
static __always_inline void ipv4_decrement_ttl(struct iphdr *ip)
{
	__u32 sum = (__u32)ip->check + (__u32)bpf_htons(0x0100);

	ip->check = (__u16)(sum + (sum >= 0xffff));
	ip->ttl--;
}

/* Route a packet to a pod on this node: TTL, MACs as if the node had routed
 * it (from the pod's host veth to the pod), then into the pod's interface. */
static __always_inline int redirect_to_pod(struct ethhdr *eth, struct iphdr *ip,
					   const struct sluice_endpoint *dst)
{
	ipv4_decrement_ttl(ip);
	__builtin_memcpy(eth->h_dest, dst->pod_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, dst->lxc_mac, ETH_ALEN);
	if (bpf_redirect_peer(dst->ifindex, 0) != TC_ACT_REDIRECT)
		return DROP(SLUICE_DROP_REDIRECT);
	return TC_ACT_REDIRECT;
}

/* The drop for a new flow policy does not allow: an ICMP error that
 * claimed a tracked flow it cannot be about has its own reason. */
static __always_inline int police_drop(enum policy_verdict v, int forged)
{
	return forged ? DROP(SLUICE_DROP_ICMP_FORGED) : policy_drop(v);
}

/* An established flow whose destination became a pod on this node after
 * the flow was tracked: that pod's ingress policy decides, once. */
static __always_inline int police_late_dst(const struct flow *f, const struct sluice_endpoint *dst_ep,
					   const struct sluice_ipcache_value *src_peer, __u64 now)
{
	struct sluice_ipcache_value peer = src_peer ? *src_peer : ipcache_lookup(f->key.saddr);
	enum policy_verdict v;
	int audit = 0;

	if (peer.identity != SLUICE_ID_HOST && f->key.saddr != f->key.daddr) {
		v = policy_decide(dst_ep, SLUICE_DIR_INGRESS, &peer, f, &audit);
		if (v != POLICY_ALLOW)
			return policy_drop(v);
	}
	ct_set_flags(&f->key, now, SLUICE_CT_F_DST_POLICED);
	return 0;
}

/* Connection tracking and policy for one packet. dst_ep is the receiving
 * local pod when its ingress policy must be checked here, else NULL;
 * src_peer the source's ipcache entry when the caller has it (else NULL).
 * set: connection-tracking flags the flow gets; *ct_flags: the flags it had
 * before this packet (a new flow: set). stack_unless_pod: a new flow
 * towards dst_ep is the stack's (SLUICE_CT_F_VIA_STACK) unless another node
 * has its source (its pod, or the node itself). A later fragment passes
 * only on its flow's entry (its first fragment's verdict); an ICMP error
 * that is not related to a flow is judged by policy, and tracked as
 * nothing. */
static __always_inline int track_and_police(const struct flow *f, const struct sluice_endpoint *src_ep,
					    const struct sluice_endpoint *dst_ep,
					    const struct sluice_ipcache_value *src_peer, __u32 dir,
					    __u32 set, int stack_unless_pod, __u32 *ct_flags)
{
	struct sluice_ipcache_value peer;
	enum policy_verdict v;
	__u64 now = bpf_ktime_get_ns();
	int audit = 0, forged = 0;

	switch (ct_lookup(f, now, set, ct_flags)) {
	case CT_ESTABLISHED:
		/* Tracked while its address was no pod here: the pod that has
		 * the address now has not admitted it yet. */
		if (dst_ep && !(*ct_flags & SLUICE_CT_F_DST_POLICED))
			return police_late_dst(f, dst_ep, src_peer, now);
		return 0;
	case CT_REPLY:
		return 0;
	case CT_RELATED:
		metrics_count(SLUICE_CT_RELATED, dir, 0);
		return 0;
	case CT_FORGED:
		forged = 1;
		break;
	default:
		break;
	}
	if (f->later_fragment)
		return DROP(SLUICE_DROP_FRAG_ORPHAN);
	if (src_ep) {
		peer = ipcache_lookup(f->key.daddr);
		v = policy_decide(src_ep, SLUICE_DIR_EGRESS, &peer, f, &audit);
		if (v != POLICY_ALLOW)
			return police_drop(v, forged);
	}
	if (dst_ep) {
		peer = src_peer ? *src_peer : ipcache_lookup(f->key.saddr);
		if (stack_unless_pod && !peer.tunnel_endpoint)
			set |= SLUICE_CT_F_VIA_STACK;
		/* The node may always reach its pods (kubelet probes); a pod
		 * may always reach itself. */
		if (peer.identity != SLUICE_ID_HOST && f->key.saddr != f->key.daddr) {
			v = policy_decide(dst_ep, SLUICE_DIR_INGRESS, &peer, f, &audit);
			if (v != POLICY_ALLOW)
				return police_drop(v, forged);
		}
	}
	if (audit)
		metrics_count(SLUICE_AUDIT_WOULD_DROP, dir, 0);
	if (dst_ep)
		set |= SLUICE_CT_F_DST_POLICED;
	*ct_flags = set;
	/* An error about a flow is not a flow: tracked, it would pass the
	 * next error from its source whatever it quoted. */
	if (f->icmp_error)
		return 0;
	metrics_count(SLUICE_CT_NEW, dir, 0);
	ct_create(f, now, set);
	return 0;
}

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

static __always_inline int from_pod_ipv4(struct __sk_buff *skb, struct cursor *c,
					 struct ethhdr *eth, __u32 *reason)
{
	struct sluice_endpoint *src, *dst;
	struct flow f = {};
	struct iphdr *ip;
	__u32 ct_flags;
	int ret;

	ret = parse_ipv4(c, &ip);
	if (IS_DROP(ret))
		return ret;

	/* A pod may only send from the address sluice gave it. */
	src = endpoint_lookup4(ip->saddr);
	if (!src || src->ifindex != skb->ifindex)
		return DROP(SLUICE_DROP_SPOOFED);

	ret = parse_flow(c, ip, &f);
	if (IS_DROP(ret))
		return ret;
	dst = endpoint_lookup4(ip->daddr);
	if (!dst) {
		ret = tunnel_port_check(&f);
		if (IS_DROP(ret))
			return ret;
	}
	ret = track_and_police(&f, src, dst, NULL, SLUICE_DIR_EGRESS, 0, 0, &ct_flags);
	if (IS_DROP(ret))
		return ret;

	/* TTL about to expire: the host stack sends ICMP time exceeded. Packet
	 * pointers are still valid: nothing above changed the packet. */
	if (ip->ttl <= 1)
		return TC_ACT_OK;
	/* A flow the host stack forwards (a reply to a Service connection
	 * kube-proxy DNATed to this pod, say) stays on the stack. */
	if (ct_flags & SLUICE_CT_F_VIA_STACK) {
		*reason = SLUICE_TO_STACK_FLOW;
		return TC_ACT_OK;
	}
	if (!dst) {
		if (cfg_routing == SLUICE_ROUTING_OVERLAY && cfg_vxlan_ifindex)
			return encap_to_node(skb, eth, ip, reason);
		return to_remote_native(skb, ip, reason);
	}

	ret = redirect_to_pod(eth, ip, dst);
	if (!IS_DROP(ret))
		*reason = SLUICE_FWD_LOCAL;
	return ret;
}

SEC("tc")
int from_pod(struct __sk_buff *skb)
{
	__u32 reason = SLUICE_PASS, len = skb->len;
	struct ethhdr *eth;
	struct cursor c;
	int ret;

	cursor_init(&c, skb);
	ret = parse_eth(&c, &eth);
	if (IS_DROP(ret))
		goto out;
	switch (ret) {
	case ETH_P_IP:
		ret = from_pod_ipv4(skb, &c, eth, &reason);
		break;
	case ETH_P_ARP:
		ret = TC_ACT_OK;
		break;
	default:
		ret = DROP(SLUICE_DROP_UNKNOWN_L3);
		break;
	}
out:
	if (IS_DROP(ret)) {
		metrics_count(DROP_REASON(ret), SLUICE_DIR_EGRESS, len);
		return TC_ACT_SHOT;
	}
	metrics_count(reason, SLUICE_DIR_EGRESS, len);
	return ret;
}

/* A packet that enters a pod from outside it (ip parsed, the cursor past
 * it; src_peer: its source's ipcache entry, or NULL): tracked (the flow
 * gets the flags in set, and see track_and_police for stack_unless_pod;
 * *ct_flags: the flags it has), and checked against the pod's ingress
 * policy. *dst is the pod, or NULL when the packet is not addressed to one
 * (nothing to police). */
static __always_inline int police_ingress(struct cursor *c, struct iphdr *ip,
					  const struct sluice_ipcache_value *src_peer,
					  struct sluice_endpoint **dstp, __u32 set,
					  int stack_unless_pod, __u32 *ct_flags)
{
	struct flow f = {};
	int ret;

	*ct_flags = 0;
	*dstp = endpoint_lookup4(ip->daddr);
	if (!*dstp)
		return 0;
	ret = parse_flow(c, ip, &f);
	if (IS_DROP(ret))
		return ret;
	return track_and_police(&f, NULL, *dstp, src_peer, SLUICE_DIR_INGRESS, set,
				stack_unless_pod, ct_flags);
}

/*
 * A packet from another node (decapsulated by the vxlan device, or routed
 * to this node's uplink): a pod on this node gets it straight, after its
 * ingress policy, unless it belongs to a flow the host stack forwards: the
 * reply to a pod's Service connection that kube-proxy DNATed to another
 * node's pod goes up the stack, which un-NATs it. So does a new flow from
 * anything but another node's pod or another node itself (the world routed
 * to pods): the pod's replies to it go through the stack, so the stack must
 * see it too, or its conntrack finds the replies INVALID.
 */
static __always_inline int from_node_ipv4(struct __sk_buff *skb, struct cursor *c,
					  struct ethhdr *eth, __be32 outer, __u32 *reason)
{
	struct sluice_ipcache_value peer;
	struct sluice_endpoint *dst;
	struct iphdr *ip;
	__u32 ct_flags;
	int ret;

	ret = parse_ipv4(c, &ip);
	if (IS_DROP(ret))
		return ret;
	/* Believe the source only as far as the way it came allows
	 * (lib/origin.h); outer: the sending node's address, tunnelled,
	 * else 0 (plain on the uplink). */
	peer = ipcache_lookup(ip->saddr);
	if (outer)
		ret = tunnel_origin_check(outer, ip->saddr, &peer);
	else
		ret = uplink_origin_check(skb, eth, ip->saddr, &peer,
					  cfg_routing == SLUICE_ROUTING_OVERLAY);
	if (IS_DROP(ret))
		return ret;
	ret = police_ingress(c, ip, &peer, &dst, 0, 1, &ct_flags);
	if (IS_DROP(ret) || !dst || ip->ttl <= 1)
		return IS_DROP(ret) ? ret : TC_ACT_OK; /* not for a pod: the node's */
	if (ct_flags & SLUICE_CT_F_VIA_STACK) {
		*reason = SLUICE_TO_STACK_FLOW;
		return TC_ACT_OK;
	}
	ret = redirect_to_pod(eth, ip, dst);
	if (!IS_DROP(ret))
		*reason = SLUICE_FWD_REMOTE;
	return ret;
}

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
	ret = police_ingress(&c, ip, &peer, &dst, 0, 1, &ct_flags);
	if (IS_DROP(ret))
		return ret;
	if (!dst || ip->ttl <= 1 || (ct_flags & SLUICE_CT_F_VIA_STACK) ||
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
	if (bpf_redirect_peer(dst->ifindex, 0) != TC_ACT_REDIRECT)
		return DROP(SLUICE_DROP_REDIRECT);
	*reason = SLUICE_FWD_REMOTE;
	return TC_ACT_REDIRECT;
device:
	ret = tunnel_sender_check(h->ip.saddr);
	if (!IS_DROP(ret))
		ret = tunnel_link_check(skb, eth, h->ip.saddr);
	return IS_DROP(ret) ? ret : LEAVE_TO_DEVICE;
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

static __always_inline int from_node(struct __sk_buff *skb, int netdev)
{
	__u32 reason = SLUICE_PASS, len = skb->len, reverse = 0;
	struct bpf_tunnel_key key;
	struct ethhdr *eth;
	__be32 outer = 0;
	struct cursor c;
	int ret = 0;

	if (netdev && cfg_routing == SLUICE_ROUTING_OVERLAY) {
		ret = overlay_decap(skb, &reason);
		if (ret == LEAVE_TO_DEVICE)
			ret = TC_ACT_OK; /* checked; the device's from here */
		if (ret != NOT_TUNNELLED)
			goto out;
		ret = 0;
	}
	/* What the vxlan device took in: from whom (its collect_md tunnel
	 * key). A frame without one was not tunnelled by anyone. */
	if (!netdev) {
		if (bpf_skb_get_tunnel_key(skb, &key, sizeof(key), 0) || !key.remote_ipv4) {
			ret = DROP(SLUICE_DROP_TUNNEL_SOURCE);
			goto out;
		}
		outer = bpf_htonl(key.remote_ipv4);
	}
	if (netdev && cfg_masquerade)
		ret = nat_reverse(skb, &reverse);
	if (!IS_DROP(ret)) {
		cursor_init(&c, skb);
		ret = parse_eth(&c, &eth);
		if (ret == ETH_P_IP)
			ret = from_node_ipv4(skb, &c, eth, outer, &reason);
		else if (!IS_DROP(ret))
			ret = outer ? tunnel_sender_check(outer) : TC_ACT_OK;
	}
out:
	if (IS_DROP(ret)) {
		metrics_count(DROP_REASON(ret), SLUICE_DIR_INGRESS, len);
		return TC_ACT_SHOT;
	}
	/* Up the stack from the tunnel: the inner frame is addressed to the
	 * sending node's device, not to ours, which the IP layer would drop
	 * as meant for another host. It is ours: the sender tunnelled it here. */
	if (ret == TC_ACT_OK && !netdev && skb->pkt_type == PACKET_OTHERHOST)
		bpf_skb_change_type(skb, PACKET_HOST);
	if (reverse)
		metrics_count(reverse, SLUICE_DIR_INGRESS, len);
	if (reason != SLUICE_PASS)
		metrics_count(reason, SLUICE_DIR_INGRESS, len);
	return ret;
}

/* tc ingress of the vxlan device (overlay routing). */
SEC("tc")
int from_overlay(struct __sk_buff *skb)
{
	return from_node(skb, 0);
}

/* tc ingress of the node's uplink (--device, native routing). */
SEC("tc")
int from_netdev(struct __sk_buff *skb)
{
	return from_node(skb, 1);
}

/*
 * tc egress of the vxlan device (overlay routing). from_pod's packets come
 * with their tunnel key set. Anything else the host stack routed here, by
 * the routes to other nodes' pod CIDRs through this device: the node's own
 * traffic to pods there, a pod's Service connection kube-proxy DNATed to a
 * pod there. It gets the tunnel to the pod's node from the ipcache, and a
 * pod's flow is marked as the stack's, so that its replies come back
 * through the stack to be un-NATed.
 */
SEC("tc")
int to_overlay(struct __sk_buff *skb)
{
	struct sluice_ipcache_value peer;
	struct bpf_tunnel_key key;
	__u32 len = skb->len;
	struct ethhdr *eth;
	struct flow f = {};
	struct cursor c;
	struct iphdr *ip;
	int ret;

	if (!bpf_skb_get_tunnel_key(skb, &key, sizeof(key), 0))
		return TC_ACT_OK; /* from_pod's: already tunnelled */
	cursor_init(&c, skb);
	if (parse_eth(&c, &eth) != ETH_P_IP)
		return TC_ACT_OK; /* nowhere to tunnel it: the device drops it */
	ret = parse_ipv4(&c, &ip);
	if (IS_DROP(ret))
		goto drop;
	peer = ipcache_lookup(ip->daddr);
	if (!peer.tunnel_endpoint) {
		ret = DROP(SLUICE_DROP_TUNNEL);
		goto drop;
	}
	if (endpoint_lookup4(ip->saddr)) {
		ret = parse_flow(&c, ip, &f);
		if (IS_DROP(ret))
			goto drop;
		ct_track_via_stack(&f, bpf_ktime_get_ns());
	}
	ret = set_tunnel(skb, peer.tunnel_endpoint);
	if (IS_DROP(ret))
		goto drop;
	metrics_count(SLUICE_FWD_OVERLAY_HOST, SLUICE_DIR_EGRESS, len);
	return TC_ACT_OK;
drop:
	metrics_count(DROP_REASON(ret), SLUICE_DIR_EGRESS, len);
	return TC_ACT_SHOT;
}

/*
 * tc egress of the node's uplink. from_pod's own packets (native routing)
 * carry SLUICE_MARK_FAST and pass. A pod's packet the host stack forwarded
 * here marks its flow as the stack's (its replies come back through the
 * stack, which un-NATs them: a Service kube-proxy DNATed to an address
 * outside the pod network), goes into the tunnel when it is for another
 * node (overlay) and, leaving the cluster, gets the node's address
 * (masquerade).
 */
SEC("tc")
int to_netdev(struct __sk_buff *skb)
{
	__u32 len = skb->len, l4, port_off;
	struct ethhdr *eth;
	struct flow f = {};
	struct cursor c;
	struct iphdr *ip;
	__be16 port;
	int ret, via;

	if (skb->mark & SLUICE_MARK_FAST) {
		skb->mark &= ~SLUICE_MARK_FAST;
		return TC_ACT_OK;
	}
	cursor_init(&c, skb);
	if (parse_eth(&c, &eth) != ETH_P_IP || IS_DROP(parse_ipv4(&c, &ip)))
		return TC_ACT_OK;
	if (!endpoint_lookup4(ip->saddr))
		return TC_ACT_OK;
	l4 = ETH_HLEN + ip->ihl * 4;
	ret = parse_flow(&c, ip, &f);
	if (IS_DROP(ret))
		goto drop;
	via = ct_track_via_stack(&f, bpf_ktime_get_ns());
	/* Overlay: no pod's packet crosses the underlay plain (the other
	 * node drops it as forged, lib/origin.h), and this one is headed for
	 * another node: its own address (a Service kube-proxy DNATed to a
	 * node's address, as the API server's is). The vxlan device tunnels
	 * it there instead; to_overlay finds the key set. */
	if (cfg_routing == SLUICE_ROUTING_OVERLAY && cfg_vxlan_ifindex) {
		struct sluice_ipcache_value peer = ipcache_lookup(f.key.daddr);

		if (peer.tunnel_endpoint) {
			ret = set_tunnel(skb, peer.tunnel_endpoint);
			if (IS_DROP(ret))
				goto drop;
			metrics_count(SLUICE_FWD_OVERLAY_HOST, SLUICE_DIR_EGRESS, len);
			return bpf_redirect(cfg_vxlan_ifindex, 0);
		}
	}
	if (!cfg_masquerade || !nat_masquerade_wanted(f.key.daddr))
		return TC_ACT_OK;
	/* A pod's reply to a flow the other end started (routed to the pod's
	 * address) keeps that address: only flows pods start are masqueraded. */
	if (via & CT_VIA_REPLY)
		return TC_ACT_OK;
	if (f.later_fragment) {
		ret = nat_later_fragment(skb, &f, cfg_node_ip);
		if (IS_DROP(ret))
			goto drop;
		if (ret)
			metrics_count(SLUICE_NAT_MASQ, SLUICE_DIR_EGRESS, len);
		return TC_ACT_OK;
	}
	if (f.key.proto != IPPROTO_TCP && f.key.proto != IPPROTO_UDP && f.key.proto != IPPROTO_ICMP)
		return TC_ACT_OK; /* SCTP's CRC32c cannot be patched incrementally */
	if (f.key.proto == IPPROTO_ICMP && (f.policy_port >> 8) != ICMP_ECHO)
		return TC_ACT_OK;
	ret = nat_port_for(skb, &f, cfg_node_ip, cfg_nat_port_min, cfg_nat_port_max,
			   via & CT_VIA_FIRST, &port);
	if (IS_DROP(ret))
		goto drop;
	port_off = f.key.proto == IPPROTO_ICMP ? l4 + 4 : l4;
	if (nat_rewrite(skb, f.key.proto, l4, IP_OFF + offsetof(struct iphdr, saddr), f.key.saddr,
			cfg_node_ip, port_off, f.key.sport, port)) {
		ret = DROP(SLUICE_DROP_NAT_PORTS);
		goto drop;
	}
	metrics_count(SLUICE_NAT_MASQ, SLUICE_DIR_EGRESS, len);
	return TC_ACT_OK;
drop:
	metrics_count(DROP_REASON(ret), SLUICE_DIR_EGRESS, len);
	return TC_ACT_SHOT;
}

/* What the host stack delivers to a pod: its ingress policy, and the flow
 * is the stack's (see SLUICE_CT_F_VIA_STACK). */
static __always_inline int to_pod_ipv4(struct cursor *c)
{
	struct sluice_endpoint *dst;
	struct iphdr *ip;
	__u32 ct_flags;
	int ret = parse_ipv4(c, &ip);

	if (!IS_DROP(ret))
		ret = police_ingress(c, ip, NULL, &dst, SLUICE_CT_F_VIA_STACK, 0, &ct_flags);
	return IS_DROP(ret) ? ret : TC_ACT_OK;
}

SEC("tc")
int to_pod(struct __sk_buff *skb)
{
	__u32 len = skb->len;
	struct ethhdr *eth;
	struct cursor c;
	int ret;

	cursor_init(&c, skb);
	ret = parse_eth(&c, &eth);
	if (!IS_DROP(ret))
		ret = ret == ETH_P_IP ? to_pod_ipv4(&c) : TC_ACT_OK;
	if (IS_DROP(ret)) {
		metrics_count(DROP_REASON(ret), SLUICE_DIR_INGRESS, len);
		return TC_ACT_SHOT;
	}
	metrics_count(SLUICE_PASS, SLUICE_DIR_INGRESS, len);
	return TC_ACT_OK;
}
