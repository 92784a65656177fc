/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Stage 2 of the uplink's XDP program (xdp.bpf.c): north-south Services.
 * An outside client's packet to a NodePort, externalIP or LB IP whose
 * backend is on another node is translated here, before the kernel
 * allocates anything for it, and sent straight back out of the uplink
 * (XDP_TX): DNAT to the backend, SNAT to the node's address and a port of
 * the masquerade range (externalTrafficPolicy Cluster), then the VXLAN
 * headers (overlay routing, built as lib/overlay.h builds them) or the
 * next hop's MACs (native routing). The choice of backend, the tracking
 * entries and the NAT pair are written by the functions the tc path uses
 * (lib/lb.h lb4_select_ex and lb4_commit, lib/nodeport.h
 * nodeport_flow_to_backend and nodeport_remote_state): whichever hook sees
 * a flow's next packet or its reply finds the same state, and the tc path
 * (lib/nodeport.h) stays the reference.
 *
 * Everything the stage cannot finish is left to tc untouched, nothing
 * written, counted by cause in sluice_xdpft_v1 (SLUICE_XDP_FT in
 * include/sluice/datapath.h): IP options, fragments, TTL running out, ICMP
 * errors, externalTrafficPolicy Local, a backend on this node (tc delivers
 * it with bpf_redirect_peer after its ingress policy), a frontend without
 * backend, a source that is not an outside client, no route or an
 * unresolved next hop, a frame the MTU would not take, no headroom, a
 * checksum a local sender left to offload (veth). The
 * choice of backend is made dry (lb4_select_ex) and written once XDP knows
 * what becomes of the packet: as the flow's when XDP carries it, marked
 * SLUICE_CT_F_LB_PENDING when it goes on to tc after the choice (a local
 * backend, no route), which takes it as its own new choice.
 *
 * Replies (backend -> node address, the NAT port) are un-SNATed here too
 * and sent back out to the client (npx_snat_reply): plain from the
 * backend's node with native routing, in VXLAN from it with overlay
 * routing (npx_tunnel_parse; taken out of the tunnel here, where tc would
 * leave them to the vxlan device). A plain one with overlay routing is
 * left to tc, counted as "reply".
 */
#ifndef SLUICE_BPF_NODEPORT_XDP_H
#define SLUICE_BPF_NODEPORT_XDP_H

#include "nodeport.h"
#include "first_stage.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SLUICE_XDP_FT_SLOTS);
	__type(key, __u32);
	__type(value, struct sluice_metric);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_xdpft_v1 SEC(".maps");

/* nodeport_xdp's answer for a packet left to tc for cause (SLUICE_XDP_FT_*).
 * Distinct from XDP_* verdicts, NODEPORT_NOT_OURS and DROP(). */
#define NPX_FALL_BASE		0x200
#define NPX_FALL(cause)		(NPX_FALL_BASE + (cause))
#define NPX_IS_FALL(ret)	((ret) >= NPX_FALL_BASE && (ret) < NPX_FALL_BASE + SLUICE_XDP_FT_SLOTS)

static __always_inline void xdp_ft_count(__u32 cause, __u32 bytes)
{
	struct sluice_metric *m = bpf_map_lookup_elem(&sluice_xdpft_v1, &cause);

	if (!m)
		return;
	/* Per-CPU slot: no other writer can race with us. */
	m->packets++;
	m->bytes += bytes;
}

/* The outer UDP source port's hash: the inner flow as it leaves (the tc
 * path uses the skb's hash, which XDP has not; any per-flow value keeps
 * a flow on one underlay path). */
static __always_inline __u32 npx_flow_hash(__be32 saddr, __be32 daddr, __be16 sport,
					   __be16 dport, __u8 proto)
{
	return sluice_lb_flow_hash4(saddr, daddr, sport, dport, proto, cfg_lb_seed);
}

/*
 * An ICMP message (ip its header, bounds-checked, ihl bytes) on the uplink:
 * an error that nodeport_icmp_from_netdev would take (about an SNATed
 * external flow, or quoting a frontend's packet)? Those are tc's: the
 * packet is counted as SLUICE_XDP_FT_ICMP; anything else is not ours.
 */
static __always_inline int npx_icmp(struct iphdr *ip, __u32 ihl, void *end)
{
	struct sluice_lb4_key k = { .scope = SLUICE_LB_SCOPE_EXT };
	struct icmphdr *ih = (void *)ip + ihl;
	struct first_ports *qp;
	struct iphdr *q;

	if (ihl != sizeof(*ip) || (void *)(ih + 1) > end)
		return NODEPORT_NOT_OURS;
	if (ih->type != ICMP_DEST_UNREACH && ih->type != ICMP_TIME_EXCEEDED &&
	    ih->type != ICMP_PARAMETERPROB)
		return NODEPORT_NOT_OURS;
	q = (void *)(ih + 1);
	if ((void *)(q + 1) > end || q->ihl != 5 ||
	    (q->protocol != IPPROTO_TCP && q->protocol != IPPROTO_UDP))
		return NODEPORT_NOT_OURS;
	qp = (void *)(q + 1);
	if ((void *)(qp + 1) > end)
		return NODEPORT_NOT_OURS;
	if (ip->daddr == cfg_node_ip && q->saddr == cfg_node_ip && nodeport_nat_port(qp->sport))
		return NPX_FALL(SLUICE_XDP_FT_ICMP);
	k.addr = q->saddr;
	k.port = qp->sport;
	k.proto = q->protocol;
	if (ip->daddr == q->saddr && bpf_map_lookup_elem(&sluice_svc4_v1, &k))
		return NPX_FALL(SLUICE_XDP_FT_ICMP);
	return NODEPORT_NOT_OURS;
}

/*
 * The next hop for the translated packet (ip_len: its IPv4 length, the
 * outer headers included), towards dst from the node's address, out of
 * the uplink it came in on: 0 with fib filled, or NPX_FALL(). The kernel
 * checks ip_len against the egress MTU (FRAG_NEEDED).
 */
static __always_inline int npx_next_hop(struct xdp_md *ctx, __be32 dst, __u32 ip_len,
					struct bpf_fib_lookup *fib)
{
	long ret;

	fib->family = AF_INET;
	fib->ifindex = ctx->ingress_ifindex;
	fib->ipv4_src = cfg_node_ip;
	fib->ipv4_dst = dst;
	fib->tot_len = (__u16)ip_len;
	ret = bpf_fib_lookup(ctx, fib, sizeof(*fib), 0);
	if (ret == BPF_FIB_LKUP_RET_NO_NEIGH)
		return NPX_FALL(SLUICE_XDP_FT_NO_NEIGH);
	if (ret == BPF_FIB_LKUP_RET_FRAG_NEEDED)
		return NPX_FALL(SLUICE_XDP_FT_MTU);
	if (ret != BPF_FIB_LKUP_RET_SUCCESS || fib->ifindex != ctx->ingress_ifindex)
		return NPX_FALL(SLUICE_XDP_FT_NO_ROUTE);
	return 0;
}

/*
 * Is the L4 checksum check (as it sits in the packet) of a TCP or UDP
 * datagram of l4len bytes from saddr to daddr only its pseudo-header's sum,
 * not yet complemented: a checksum a local sender left to offload
 * (CHECKSUM_PARTIAL)? A NIC never hands XDP such a frame, but a veth does
 * when its peer's stack sent it (test rigs, a node's own containers): the
 * skb the tc path gets says so and the checksum is finished on the way
 * out, while XDP, knowing nothing of it, would send the frame with a
 * checksum no receiver accepts. A full checksum that happens to have this
 * value (1 in 65536) merely goes the tc way too.
 */
static __always_inline int npx_csum_partial(__u16 check, __be32 saddr, __be32 daddr, __u8 proto,
					    __u32 l4len)
{
	__u32 sum = (saddr & 0xffff) + (saddr >> 16) + (daddr & 0xffff) + (daddr >> 16) +
		    bpf_htons((__u16)proto) + bpf_htons((__u16)l4len);

	return check == csum_fold32(sum);
}

/*
 * The L4 checksum field of the TCP or UDP header at l4h, NULL when the
 * header does not fit before end. One bounds check per protocol, of a
 * constant size, so the verifier knows the field is in the packet.
 */
static __always_inline __u16 *npx_l4_check(void *l4h, void *end, __u8 proto)
{
	if (proto == IPPROTO_TCP) {
		struct tcphdr *th = l4h;

		return (void *)(th + 1) <= end ? &th->check : NULL;
	}
	if (proto == IPPROTO_UDP) {
		struct udphdr *uh = l4h;

		return (void *)(uh + 1) <= end ? &uh->check : NULL;
	}
	return NULL;
}

/*
 * The packet rewrite, XDP's own: ip (option-less, bounds-checked with its
 * L4 header l4h of proto, whose checksum field npx_l4_check gave) goes from (saddr:sport -> daddr:dport) to
 * (nsaddr:nsport -> ndaddr:ndport), TTL one less; the IPv4 checksum and
 * the L4 checksum updated incrementally (RFC 1624), a UDP checksum of 0
 * (none) left so, as bpf_l4_csum_replace's BPF_F_MARK_MANGLED_0 does.
 */
static __always_inline void npx_rewrite(struct iphdr *ip, void *l4h, __u16 *check, __u8 proto,
					__be32 nsaddr, __be16 nsport, __be32 ndaddr, __be16 ndport)
{
	struct first_ports *pp = l4h;
	__u16 c = *check;

	if (proto == IPPROTO_TCP || c) {
		c = csum_update4(c, ip->saddr, nsaddr);
		c = csum_update4(c, ip->daddr, ndaddr);
		c = csum_update2(c, pp->sport, nsport);
		c = csum_update2(c, pp->dport, ndport);
		if (proto == IPPROTO_UDP && !c)
			c = 0xffff;
		*check = c;
	}
	ip->check = csum_update4(ip->check, ip->saddr, nsaddr);
	ip->check = csum_update4(ip->check, ip->daddr, ndaddr);
	ip->saddr = nsaddr;
	ip->daddr = ndaddr;
	pp->sport = nsport;
	pp->dport = ndport;
	ipv4_decrement_ttl(ip);
}

/*
 * A reply to an external Service flow this node SNATed (f: backend -> node
 * address, a NAT port; ip, l4h its headers, bounds-checked), as
 * nodeport_snat_reverse recognises it: its pair, and the pair's flow still
 * tracked as a Service flow (not the stack's). Un-SNATed here as
 * nodeport_snat_reverse does it (the client as destination, the frontend
 * as source, the flow's entry refreshed as answered) and routed out of the
 * uplink towards the client as nodeport_to_world routes it. outer: 0 for
 * a plain reply (native routing; overlay routing brings replies through
 * the tunnel, and a plain one is left to tc), else the address of the
 * node that tunnelled it (outer_tos its outer TOS, eth the outer
 * Ethernet header): checked as the tc path and the vxlan device check it,
 * ECN decapsulated (RFC 6040), and the outer headers taken off. Returns
 * NODEPORT_NOT_OURS, NPX_FALL(), XDP_TX or DROP().
 */
static __always_inline int npx_snat_reply(struct xdp_md *ctx, struct ethhdr *eth,
					  struct iphdr *ip, void *l4h, void *end,
					  const struct flow *f, __be32 outer, __u8 outer_tos)
{
	__u64 now;
	__u16 *check;
	struct sluice_ipcache_value peer;
	struct bpf_fib_lookup fib = {};
	struct sluice_lb4_revnat front;
	struct sluice_nat_value client;
	struct sluice_ct_value *ct;
	__u32 had;
	long ret;

	if (f->key.daddr != cfg_node_ip || !nodeport_nat_port(f->key.dport))
		return NODEPORT_NOT_OURS;
	now = bpf_ktime_get_ns();
	if (nodeport_snat_flow(&f->key, now, &client, &ct, &front))
		return NODEPORT_NOT_OURS;
	if (!outer && cfg_routing == SLUICE_ROUTING_OVERLAY)
		return NPX_FALL(SLUICE_XDP_FT_REPLY);
	if (ip->ttl <= 1)
		return NPX_FALL(SLUICE_XDP_FT_TTL);
	check = npx_l4_check(l4h, end, f->key.proto);
	if (!check)
		return NPX_FALL(SLUICE_XDP_FT_OTHER);
	if (npx_csum_partial(*check, ip->saddr, ip->daddr, f->key.proto,
			     bpf_ntohs(ip->tot_len) - sizeof(*ip)))
		return NPX_FALL(SLUICE_XDP_FT_CSUM_PARTIAL);
	/* Believed as the tc path believes it: plain from the uplink
	 * (native), or tunnelled by the backend's node, from its MAC
	 * (overlay: what from_netdev and then the vxlan device check). */
	peer = ipcache_lookup(ip->saddr);
	if (outer) {
		if (IS_DROP(tunnel_origin_check(outer, ip->saddr, &peer)) ||
		    !from_next_hop(ctx, ctx->ingress_ifindex, eth, outer, 1))
			return NPX_FALL(SLUICE_XDP_FT_ORIGIN);
	} else if (IS_DROP(uplink_origin_check(ctx, ctx->ingress_ifindex, eth, ip->saddr, &peer,
					       0))) {
		return NPX_FALL(SLUICE_XDP_FT_ORIGIN);
	}
	fib.family = AF_INET;
	fib.ifindex = ctx->ingress_ifindex;
	fib.ipv4_src = front.addr;
	fib.ipv4_dst = client.addr;
	fib.tot_len = bpf_ntohs(ip->tot_len);
	ret = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
	if (ret == BPF_FIB_LKUP_RET_NO_NEIGH)
		return NPX_FALL(SLUICE_XDP_FT_NO_NEIGH);
	if (ret == BPF_FIB_LKUP_RET_FRAG_NEEDED)
		return NPX_FALL(SLUICE_XDP_FT_MTU);
	if (ret != BPF_FIB_LKUP_RET_SUCCESS || fib.ifindex != ctx->ingress_ifindex)
		return NPX_FALL(SLUICE_XDP_FT_NO_ROUTE);
	/* RFC 6040 as the vxlan device decapsulates (the inner header
	 * unchanged when it declines). */
	if (outer && vxlan_ecn_decap(outer_tos, ip))
		return NPX_FALL(SLUICE_XDP_FT_OTHER);
	ct_refresh(ct, now, f->tcp_flags, SLUICE_CT_F_REPLY_SEEN, &had);
	npx_rewrite(ip, l4h, check, f->key.proto, front.addr, front.port, client.addr,
		    client.port);
	metrics_count(SLUICE_LB_SNAT_REVERSE, SLUICE_DIR_INGRESS, 0);
	metrics_count(SLUICE_LB_EXT_REVERSE, SLUICE_DIR_INGRESS, 0);
	if (outer) {
		/* The outer headers off: the inner Ethernet header, right
		 * before the inner IPv4 header, starts the frame. */
		if (bpf_xdp_adjust_head(ctx, (int)sizeof(struct vxlan_encap)))
			return DROP(SLUICE_DROP_TUNNEL);
		eth = (void *)(long)ctx->data;
		if ((void *)(eth + 1) > (void *)(long)ctx->data_end)
			return DROP(SLUICE_DROP_TUNNEL);
		metrics_count(SLUICE_OVERLAY_DECAP, SLUICE_DIR_INGRESS, 0);
	}
	__builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
	return XDP_TX;
}

/*
 * Overlay routing: VXLAN to this node (the first stage checked that it
 * comes from a node) may carry a reply to an external Service flow this
 * node SNATed, from the backend's node: tc would leave it to the vxlan
 * device, whose program un-SNATs it (nodeport_from_tunnel); here
 * npx_snat_reply un-SNATs it, takes it out of the tunnel and sends it to
 * the client at once. This parses the inner packet: 0 with *ip, *l4h, f,
 * *outer and *outer_tos set (f's ports and TCP flags from a header that is
 * there), or NODEPORT_NOT_OURS for anything the tunnel brings otherwise.
 */
static __always_inline int npx_tunnel_parse(struct xdp_md *ctx, struct iphdr **inner,
					    void **l4h, struct flow *f, __be32 *outer,
					    __u8 *outer_tos)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct vxlan_encap *h = (void *)(eth + 1);
	struct first_ports *pp;
	struct iphdr *ip;
	__u16 tot;

	if ((void *)(h + 1) > end || !vxlan_is_ours(h, cfg_node_ip))
		return NODEPORT_NOT_OURS;
	ip = (void *)(h + 1);
	if ((void *)(ip + 1) > end || ip->version != 4 || ip->ihl != 5 ||
	    (ip->frag_off & bpf_htons(IP_MF | IP_FRAG_OFFSET_MASK)) ||
	    (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP))
		return NODEPORT_NOT_OURS;
	tot = bpf_ntohs(ip->tot_len);
	pp = (void *)(ip + 1);
	if (tot < sizeof(*ip) + sizeof(struct udphdr) || (void *)ip + tot > end ||
	    (void *)(pp + 1) > end)
		return NODEPORT_NOT_OURS;
	f->key.saddr = ip->saddr;
	f->key.daddr = ip->daddr;
	f->key.proto = ip->protocol;
	f->key.sport = pp->sport;
	f->key.dport = pp->dport;
	if (ip->protocol == IPPROTO_TCP) {
		struct tcphdr *th = (void *)pp;

		if ((void *)(th + 1) > end)
			return NODEPORT_NOT_OURS;
		f->tcp_flags = ((__u8 *)th)[13];
	}
	*inner = ip;
	*l4h = pp;
	*outer = h->ip.saddr;
	*outer_tos = h->ip.tos;
	return 0;
}

/*
 * Stage 2 on a frame the first stage passed (p: what it parsed). Returns
 * NODEPORT_NOT_OURS (no Service packet: tc's, as xdp-pass), NPX_FALL()
 * (a Service packet left to tc), XDP_TX (translated and sent), or DROP()
 * (the tc path would drop it too: no NAT port free).
 */
static __always_inline int nodeport_xdp(struct xdp_md *ctx, const struct first_pkt *p)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct sluice_lb4_key k = { .scope = SLUICE_LB_SCOPE_EXT };
	const int overlay = cfg_routing == SLUICE_ROUTING_OVERLAY;
	struct ethhdr *eth = data, *oeth;
	struct iphdr *ip = (void *)(eth + 1);
	struct sluice_ipcache_value peer;
	struct sluice_lb4_backend be;
	struct sluice_lb4_value *svc;
	struct bpf_fib_lookup fib = {};
	struct lb4_pending pend = {};
	struct vxlan_encap h;
	__u16 rev_nat = 0, svc_flags = 0, tot;
	__be16 port = 0;
	__u64 now;
	struct flow f = {};
	__u32 ihl, l4len;
	__be32 outer = 0;
	__u8 outer_tos = 0;
	__u16 *check;
	void *l4h;
	int ret;

	if (!cfg_lb || !cfg_node_ip || (void *)(ip + 1) > end)
		return NODEPORT_NOT_OURS;
	ihl = ip->ihl * 4;
	if (p->proto == IPPROTO_ICMP && !(ip->frag_off & bpf_htons(IP_MF | IP_FRAG_OFFSET_MASK)))
		return npx_icmp(ip, ihl, end);
	if (p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP)
		return NODEPORT_NOT_OURS;
	if (overlay && p->proto == IPPROTO_UDP && p->udp_full && p->daddr == cfg_node_ip &&
	    p->dport == bpf_htons(SLUICE_VXLAN_PORT)) {
		ret = npx_tunnel_parse(ctx, &ip, &l4h, &f, &outer, &outer_tos);
		if (ret)
			return ret;
		goto reply;
	}
	/* A later fragment has no ports: only its first fragment (tc
	 * remembered its ports, lib/frag.h) says whether it is ours. */
	if (!p->has_port) {
		struct sluice_frag_key fk;
		struct sluice_frag_value *fv;

		frag_key(ip, &fk);
		fv = bpf_map_lookup_elem(&sluice_frag4_v1, &fk);
		if (!fv)
			return NODEPORT_NOT_OURS;
		k.port = fv->dport;
	} else {
		k.port = p->dport;
	}
	k.addr = p->daddr;
	k.proto = p->proto;
	svc = bpf_map_lookup_elem(&sluice_svc4_v1, &k);
	/* Option-less, unfragmented, the whole L4 header there: else not
	 * XDP's (a reply is only recognised in this common shape). */
	l4len = p->proto == IPPROTO_TCP ? sizeof(struct tcphdr) : sizeof(struct udphdr);
	l4h = (void *)ip + sizeof(*ip);
	if (ihl != sizeof(*ip) || (ip->frag_off & bpf_htons(IP_MF | IP_FRAG_OFFSET_MASK)) ||
	    l4h + l4len > end || bpf_ntohs(ip->tot_len) < sizeof(*ip) + l4len) {
		if (!svc)
			return NODEPORT_NOT_OURS;
		if (ihl != sizeof(*ip))
			return NPX_FALL(SLUICE_XDP_FT_OPTIONS);
		if (ip->frag_off & bpf_htons(IP_MF | IP_FRAG_OFFSET_MASK))
			return NPX_FALL(SLUICE_XDP_FT_FRAGMENT);
		return NPX_FALL(SLUICE_XDP_FT_OTHER);
	}
	f.key.saddr = ip->saddr;
	f.key.daddr = ip->daddr;
	f.key.proto = ip->protocol;
	f.key.sport = ((struct first_ports *)l4h)->sport;
	f.key.dport = ((struct first_ports *)l4h)->dport;
	f.policy_port = bpf_ntohs(f.key.dport);
	if (p->proto == IPPROTO_TCP)
		f.tcp_flags = ((__u8 *)l4h)[13];
	if (!svc)
		goto reply;
	/* The clock only for what is ours (passed traffic does not pay it). */
	now = bpf_ktime_get_ns();
	if (ip->ttl <= 1)
		return NPX_FALL(SLUICE_XDP_FT_TTL);
	tot = bpf_ntohs(ip->tot_len);
	check = npx_l4_check(l4h, end, p->proto);
	if (!check)
		return NPX_FALL(SLUICE_XDP_FT_OTHER);
	if (npx_csum_partial(*check, ip->saddr, ip->daddr, p->proto, tot - sizeof(*ip)))
		return NPX_FALL(SLUICE_XDP_FT_CSUM_PARTIAL);
	/* The client as the tc path believes it (lib/origin.h); a source it
	 * would drop is left to it, to be dropped and counted there. */
	peer = ipcache_lookup(ip->saddr);
	if (IS_DROP(uplink_origin_check(ctx, ctx->ingress_ifindex, eth, ip->saddr, &peer, overlay)))
		return NPX_FALL(SLUICE_XDP_FT_ORIGIN);
	if (!nodeport_snat_wanted(svc->flags))
		return NPX_FALL(SLUICE_XDP_FT_ETP_LOCAL);
	switch (lb4_select_ex(&f, now, SLUICE_LB_SCOPE_EXT, &be, &rev_nat, &svc_flags, &pend)) {
	case LB_NOT_FRONTEND:
		return NPX_FALL(SLUICE_XDP_FT_TRACKED);
	case LB_NO_BACKEND:
		return NPX_FALL(SLUICE_XDP_FT_NO_BACKEND);
	case LB_BACKEND_NEW:
		/* As nodeport_translate: a datagram whose backend was chosen
		 * for it starts its flow anew on an entry of another kind
		 * (ct_udp_restarts). */
		f.lb_new = 1;
		break;
	default:
		break;
	}
	/* Where the tc path would send it: the backend's node through the
	 * tunnel, or the native route to the backend; both only to a pod of
	 * another node (the ipcache names its node). Then room for the outer
	 * headers, before anything is written. */
	peer = ipcache_lookup(be.addr);
	if (!nodeport_snat_wanted(svc_flags))
		ret = NPX_FALL(SLUICE_XDP_FT_ETP_LOCAL); /* changed since the lookup */
	else if (endpoint_lookup4(be.addr))
		ret = NPX_FALL(SLUICE_XDP_FT_LOCAL);
	else if (!peer.tunnel_endpoint || (overlay && !cfg_vxlan_ifindex))
		ret = NPX_FALL(SLUICE_XDP_FT_NO_ROUTE);
	else if (overlay)
		ret = npx_next_hop(ctx, peer.tunnel_endpoint, tot + sizeof(h), &fib);
	else
		ret = npx_next_hop(ctx, be.addr, tot, &fib);
	if (!ret && overlay && bpf_xdp_adjust_head(ctx, -(int)sizeof(h)))
		ret = NPX_FALL(SLUICE_XDP_FT_HEADROOM);
	if (ret) {
		/* tc carries this packet, untouched: the choice is written
		 * for it to take as its own (choosing again at random would
		 * favour the backends XDP carries itself). */
		lb4_commit(&f, now, &pend, SLUICE_CT_F_LB_PENDING);
		return ret;
	}

	/* The packet is XDP's from here: the state the tc path writes. */
	lb4_commit(&f, now, &pend, 0);
	nodeport_flow_to_backend(&f, &be, rev_nat);
	ret = nodeport_remote_state(ctx, &f, now, 1, &port);
	if (IS_DROP(ret))
		return ret;

	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	oeth = data;
	eth = overlay ? data + sizeof(h) : data;
	ip = (void *)(eth + 1);
	l4h = (void *)(ip + 1);
	check = npx_l4_check(l4h, end, p->proto);
	if (!check)
		return DROP(SLUICE_DROP_TRUNCATED);
	npx_rewrite(ip, l4h, check, p->proto, cfg_node_ip, port, be.addr, be.port);
	metrics_count(SLUICE_LB_EXT_TRANSLATED, SLUICE_DIR_INGRESS, 0);
	metrics_count(SLUICE_LB_SNAT, SLUICE_DIR_INGRESS, 0);
	if (overlay) {
		/* The inner Ethernet header is the frame's own, where it was. */
		vxlan_encap_build(&h, ETH_HLEN + tot, cfg_node_ip, peer.tunnel_endpoint, eth,
				  ip->tos, npx_flow_hash(cfg_node_ip, be.addr, port, be.port, p->proto),
				  (__u16)bpf_get_prandom_u32());
		if ((void *)(oeth + 1) + sizeof(h) > end)
			return DROP(SLUICE_DROP_TRUNCATED);
		__builtin_memcpy((void *)(oeth + 1), &h, sizeof(h));
		oeth->h_proto = bpf_htons(ETH_P_IP);
		metrics_count(SLUICE_OVERLAY_ENCAP, SLUICE_DIR_EGRESS, ETH_HLEN + tot);
	}
	__builtin_memcpy(oeth->h_dest, fib.dmac, ETH_ALEN);
	__builtin_memcpy(oeth->h_source, fib.smac, ETH_ALEN);
	return XDP_TX;
reply:
	/* (one call: inlined once, within the stack's 512 bytes) */
	return npx_snat_reply(ctx, eth, ip, l4h, end, &f, outer, outer_tos);
}

#endif /* SLUICE_BPF_NODEPORT_XDP_H */
