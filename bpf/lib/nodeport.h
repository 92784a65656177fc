/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * North-south Services: clients outside the cluster reaching a NodePort
 * (this node's address on --device, the nodePort), an externalIP or a
 * load-balancer address, arriving plain on the uplink (from_netdev). Their
 * frontends are looked up in scope SLUICE_LB_SCOPE_EXT, after the origin
 * checks of lib/origin.h; the backend is chosen as for pod clients
 * (lib/lb.h) and remembered in connection tracking.
 *
 * - A backend on this node gets the packet straight (bpf_redirect_peer),
 *   after its ingress policy, which sees the client's own address (world,
 *   or whatever the ipcache says of it). Its reply gets the frontend back in
 *   from_pod (lb4_reverse) and is routed out of the uplink here
 *   (nodeport_to_world): the host stack would drop a packet from the node's
 *   own address coming in on a pod's veth as a martian.
 * - A backend on another node (externalTrafficPolicy Cluster only): the
 *   flow is also SNATed to this node's address with a port of the
 *   masquerade range (sluice_snat4_v1 / sluice_rnat4_v1, lib/nat.h, keyed
 *   by the flow as translated, client -> backend, whose tracking entry
 *   holds the rev-NAT index), so the reply comes back here; it goes through
 *   the overlay (encap_to_node) or the native route. The reply
 *   (backend -> node address, that port) gets the client as destination
 *   and the frontend as source and is routed out (nodeport_snat_reverse).
 * - externalTrafficPolicy Local: the agent writes only local backends into
 *   the EXT entries, and SLUICE_LB_F_EXT_LOCAL forbids the SNAT: the client
 *   address is kept.
 *
 * - ICMP errors about these flows: rewritten for the client (about an
 *   SNATed flow) or the local backend (nodeport_icmp_from_netdev).
 * - Later IP fragments: they take their first fragment's ports (lib/frag.h)
 *   and follow its flow, addresses rewritten (no L4 header to touch).
 *
 * The XDP program on the uplink does the same for an outside client's
 * flow to a backend on another node (lib/nodeport_xdp.h), with the
 * context-free parts of this file (lb4_select_ex, nodeport_flow_to_backend,
 * nodeport_remote_state); what it leaves to tc arrives here unchanged.
 */
#ifndef SLUICE_BPF_NODEPORT_H
#define SLUICE_BPF_NODEPORT_H

#include "config.h"
#include "parse.h"
#include "origin.h"
#include "police.h"
#include "forward.h"
#include "encap.h"
#include "lb.h"

/* Not a north-south Service packet: the caller's usual path. Distinct from
 * every TC_ACT_* verdict and from DROP(). */
#define NODEPORT_NOT_OURS 0x100

/* A port (network order) of the masquerade range: only those can be an
 * SNATed flow's; the node's own traffic skips the pair lookup. */
static __always_inline int nodeport_nat_port(__be16 port)
{
	__u32 p = bpf_ntohs(port);

	return p >= cfg_nat_port_min && p <= cfg_nat_port_max;
}

/*
 * A reply to an external client, its source already the frontend: routed
 * straight out towards the client with the kernel's route and neighbour
 * tables, as the node would route it. The stack would not (a NodePort's
 * source is the node's own address). TTL running out, or no route: the
 * stack (which sends the time exceeded, or drops it).
 */
static __always_inline int nodeport_to_world(struct __sk_buff *skb, __u32 *reason)
{
	struct ethhdr *eth = (void *)(long)skb->data;
	struct iphdr *ip = (void *)(eth + 1);
	struct bpf_fib_lookup fib = {};
	long hop;

	if ((void *)(ip + 1) > (void *)(long)skb->data_end)
		return DROP(SLUICE_DROP_TRUNCATED);
	if (ip->ttl <= 1)
		return TC_ACT_OK;
	hop = next_hop(skb, ip->saddr, ip->daddr, &fib);
	if (!hop_usable(hop))
		return TC_ACT_OK;
	ipv4_decrement_ttl(ip);
	*reason = SLUICE_LB_EXT_REVERSE;
	return redirect_out(skb, hop, &fib);
}

/*
 * A packet for client (an SNATed flow's client, network order), its
 * headers rewritten already: a pod on another node (it reached this node's
 * NodePort through the tunnel, overlay routing) gets it back through the
 * tunnel; anything else is routed out (nodeport_to_world).
 */
static __always_inline int nodeport_to_client(struct __sk_buff *skb, __be32 client,
					      __u32 *reason)
{
	if (cfg_routing == SLUICE_ROUTING_OVERLAY && cfg_vxlan_ifindex) {
		struct sluice_ipcache_value cp = ipcache_lookup(client);

		if (cp.tunnel_endpoint && !ipc_is_node(&cp)) {
			struct ethhdr *eth;
			struct iphdr *ip;
			int ret = lb_reload(skb, &eth, &ip);

			if (IS_DROP(ret))
				return ret;
			if (ip->ttl <= 1)
				return TC_ACT_OK;
			return encap_to_node(skb, eth, ip, reason);
		}
	}
	return nodeport_to_world(skb, reason);
}

/*
 * The live external Service flow an SNAT pair belongs to, by the reply's
 * tuple (backend -> node address, NAT port): its client (address, port),
 * its tracking entry and its frontend. -1 when the pair is none's, a
 * masqueraded pod flow's (no LB_BACKEND) or a flow the host stack
 * forwards; the tc path and the XDP stage (lib/nodeport_xdp.h) ask alike.
 */
static __always_inline int nodeport_snat_flow(const struct sluice_ct_key *reply, __u64 now,
					       struct sluice_nat_value *client,
					       struct sluice_ct_value **ct,
					       struct sluice_lb4_revnat *front)
{
	struct sluice_lb4_revnat *fe;
	struct sluice_nat_value *v;
	struct sluice_ct_value *c;
	struct sluice_ct_key k;
	__u32 rn;

	v = bpf_map_lookup_elem(&sluice_rnat4_v1, reply);
	if (!v)
		return -1;
	*client = *v;
	nat_pod_key(reply, client, &k);
	c = ct_live(&k, now);
	if (!c || !(c->flags & SLUICE_CT_F_LB_BACKEND) || (c->flags & SLUICE_CT_F_VIA_STACK))
		return -1;
	rn = c->pad;
	fe = bpf_map_lookup_elem(&sluice_lbrn4_v1, &rn);
	if (!fe)
		return -1;
	*front = *fe;
	*ct = c;
	return 0;
}

/*
 * A packet of f (its IPv4 header of ihl bytes at IP_OFF) to this node's
 * address: a reply from a Service backend on another node to a flow this
 * node SNATed (nodeport_translate)? Then its destination becomes the
 * client and its source the frontend, and it is routed out. The pair must
 * still belong to a live external Service flow: a masqueraded pod flow's
 * pair (lib/nat.h) is not ours, and a stale one is left to nat_reverse,
 * which removes it. Its source was checked by the caller. Returns
 * NODEPORT_NOT_OURS, a verdict or DROP().
 */
static __always_inline int nodeport_snat_reverse(struct __sk_buff *skb, const struct flow *f,
						 __u32 ihl, __u32 *reason)
{
	struct sluice_lb4_revnat front;
	struct sluice_nat_value client;
	struct sluice_ct_value *ct;
	__u32 l4 = IP_OFF + ihl, had;
	__u64 now = bpf_ktime_get_ns();
	__u8 proto = f->later_fragment ? 0 : f->key.proto;

	if (f->icmp_error || (f->key.proto != IPPROTO_TCP && f->key.proto != IPPROTO_UDP))
		return NODEPORT_NOT_OURS;
	if (nodeport_snat_flow(&f->key, now, &client, &ct, &front))
		return NODEPORT_NOT_OURS;
	ct_refresh(ct, now, f->tcp_flags, SLUICE_CT_F_REPLY_SEEN, &had);
	/* A later fragment (its ports its first fragment's, lib/frag.h) has
	 * no L4 header: only the addresses change. */
	if (nat_rewrite(skb, proto, l4, IP_OFF + offsetof(struct iphdr, daddr), f->key.daddr,
			client.addr, proto ? l4 + 2 : 0, f->key.dport, client.port) ||
	    nat_rewrite(skb, proto, l4, IP_OFF + offsetof(struct iphdr, saddr), f->key.saddr,
			front.addr, proto ? l4 : 0, f->key.sport, front.port))
		return DROP(SLUICE_DROP_NAT_PORTS);
	metrics_count(SLUICE_LB_SNAT_REVERSE, SLUICE_DIR_INGRESS, 0);
	return nodeport_to_client(skb, client.addr, reason);
}

/*
 * An ICMP error f (its header at l4) addressed to this node about a packet
 * the node sent for an SNATed external flow (the quote: node address and
 * NAT port -> backend), from a router on the way or from the backend
 * itself: it goes to the client, as the client's own packet would have
 * met it. The outer destination and the quoted source become the client's
 * (address, port), the quoted destination the frontend, and the outer
 * source the frontend too when the backend sent the error (kube-proxy's
 * conntrack does the same), so the client's stack finds its socket (a PMTU
 * update, a refused port); it goes where the flow's replies go
 * (nodeport_to_client). Checksums: icmp_quote_rewrite. The error must
 * come from the quoted peer or a router (ct_icmp_error_plausible): a pod
 * of the cluster cannot speak for another's flow. Returns
 * NODEPORT_NOT_OURS when the quote is of no live external SNATed flow,
 * else a verdict or DROP().
 */
static __always_inline int nodeport_snat_icmp_error(struct __sk_buff *skb, const struct flow *f,
						    __u32 l4, __u32 *reason)
{
	struct sluice_lb4_revnat front;
	struct sluice_nat_value client;
	struct sluice_ct_value *ct;
	struct sluice_ct_key quoted;
	__u8 proto = f->inner.proto;

	if ((proto != IPPROTO_TCP && proto != IPPROTO_UDP) || f->inner.saddr != cfg_node_ip ||
	    !nodeport_nat_port(f->inner.sport))
		return NODEPORT_NOT_OURS;
	/* The pair is keyed by the reply's tuple: the quote reversed. */
	ct_reverse(&f->inner, &quoted);
	if (nodeport_snat_flow(&quoted, bpf_ktime_get_ns(), &client, &ct, &front))
		return NODEPORT_NOT_OURS;
	if (!ct_icmp_error_plausible(f))
		return DROP(SLUICE_DROP_ICMP_FORGED);
	if (icmp_quote_rewrite(skb, l4, proto, 1, cfg_node_ip, client.addr, f->inner.sport,
			       client.port, IP_OFF + offsetof(struct iphdr, daddr), f->key.daddr,
			       client.addr) ||
	    icmp_quote_rewrite(skb, l4, proto, 0, f->inner.daddr, front.addr, f->inner.dport,
			       front.port,
			       f->key.saddr == f->inner.daddr ? IP_OFF + offsetof(struct iphdr, saddr) : 0,
			       f->key.saddr, front.addr))
		return DROP(SLUICE_DROP_NAT_PORTS);
	metrics_count(SLUICE_LB_EXT_ICMP_ERROR, SLUICE_DIR_INGRESS, 0);
	return nodeport_to_client(skb, client.addr, reason);
}

/*
 * A packet for a backend on another node, its headers rewritten already:
 * to that node, as the flow's packets go (tunnel or native route). Dropped
 * when its TTL runs out or there is no tunnel and no route to the node: the
 * stack would take the node's own source for a martian. Returns a verdict
 * or DROP().
 */
static __always_inline int nodeport_to_backend_node(struct __sk_buff *skb, __u32 *reason)
{
	struct ethhdr *eth;
	struct iphdr *ip;
	int ret;

	ret = lb_reload(skb, &eth, &ip);
	if (IS_DROP(ret))
		return ret;
	if (ip->ttl <= 1)
		return DROP(SLUICE_DROP_REDIRECT);
	if (cfg_routing == SLUICE_ROUTING_OVERLAY && cfg_vxlan_ifindex)
		ret = encap_to_node(skb, eth, ip, reason);
	else
		ret = to_remote_native(skb, ip, reason);
	return ret == TC_ACT_OK ? DROP(SLUICE_DROP_REDIRECT) : ret;
}

/*
 * The rest of nodeport_icmp_error_in for a backend on another node: f (its
 * ICMP header at l4) already quotes backend -> client and goes to the
 * backend (lb4_translate_icmp_error). The backend sent its packet to this
 * node's address and the flow's NAT port (eTP Cluster SNAT): the quote's
 * destination becomes those, and the outer source too when the client
 * itself sent the error, so the backend's stack finds its socket. Then to
 * the backend's node, as the flow's packets go (tunnel or native route);
 * that node polices it as an error related to the backend's flow. Returns
 * a verdict or DROP().
 */
static __always_inline int nodeport_icmp_error_to_remote(struct __sk_buff *skb,
							 const struct flow *f, __u32 l4,
							 __u32 *reason)
{
	struct sluice_nat_value *snat;
	struct sluice_ct_key t;
	__be16 nat_port;

	/* The flow as translated, client -> backend, keys its pair. */
	ct_reverse(&f->inner, &t);
	snat = bpf_map_lookup_elem(&sluice_snat4_v1, &t);
	if (!snat || !cfg_node_ip)
		return DROP(SLUICE_DROP_REDIRECT);
	nat_port = snat->port;
	if (icmp_quote_rewrite(skb, l4, f->inner.proto, 0, f->inner.daddr, cfg_node_ip,
			       f->inner.dport, nat_port,
			       f->key.saddr == f->inner.daddr ? IP_OFF + offsetof(struct iphdr, saddr) : 0,
			       f->key.saddr, cfg_node_ip))
		return DROP(SLUICE_DROP_NAT_PORTS);
	metrics_count(SLUICE_LB_EXT_ICMP_ERROR, SLUICE_DIR_INGRESS, 0);
	return nodeport_to_backend_node(skb, reason);
}

/*
 * An ICMP error f (its IPv4 header of ihl bytes at IP_OFF, the source's
 * ipcache entry peer) from outside about a packet a frontend sent to an
 * outside client (the quote: frontend -> client, the reply of the
 * client's flow, whose client-side entry names the backend), e.g. a
 * router's "fragmentation needed" on the way to the client: when the
 * backend is on this node, it gets the error quoting the packet as it
 * sent it (lb4_translate_icmp_error: outer destination and quoted source
 * become the backend's), after its ingress policy, which relates the error
 * to its flow; a backend on another node gets it through
 * nodeport_icmp_error_to_remote.
 * Returns NODEPORT_NOT_OURS when not such an error, else a verdict or
 * DROP().
 */
static __always_inline int nodeport_icmp_error_in(struct __sk_buff *skb, struct flow *f, __u32 ihl,
						  const struct sluice_ipcache_value *peer,
						  __u32 *reason)
{
	struct sluice_endpoint *dst;
	struct ethhdr *eth;
	struct iphdr *ip;
	__u32 ct_flags = 0;
	int ret;

	ret = lb4_translate_icmp_error(skb, f, IP_OFF + ihl);
	if (ret <= 0)
		return ret ? ret : NODEPORT_NOT_OURS;
	dst = endpoint_lookup4(f->key.daddr);
	if (!dst)
		return nodeport_icmp_error_to_remote(skb, f, IP_OFF + ihl, reason);
	ret = track_and_police(f, NULL, dst, peer, SLUICE_DIR_INGRESS, 0, 0, &ct_flags);
	if (IS_DROP(ret))
		return ret;
	metrics_count(SLUICE_LB_EXT_ICMP_ERROR, SLUICE_DIR_INGRESS, 0);
	ret = lb_reload(skb, &eth, &ip);
	if (IS_DROP(ret))
		return ret;
	*reason = SLUICE_FWD_LOCAL;
	return redirect_to_pod(skb, eth, ip, dst);
}

/*
 * f (its IPv4 header of ihl bytes at IP_OFF) to an EXT frontend whose
 * entry gives new flows no backend (svc_flags: its slot 0's flags), as
 * kube-proxy's filter rules treat it, never forwarded to the frontend
 * address (the node's stack would answer for a NodePort, or route an
 * externalIP back out):
 * - externalTrafficPolicy Local while the Service has endpoints on other
 *   nodes (the frontend's INT entry, which always holds every endpoint
 *   for a NodePort, externalIP and LB address, has some): dropped, the
 *   "has no local endpoints" DROP, so the outside load balancer's health
 *   check, not a refusal, steers clients away;
 * - no endpoint at all: refused at once, the "has no endpoints" REJECT (a
 *   TCP RST, an ICMP port unreachable: lib/reject.h), the answer sent
 *   back out of the uplink it came in on, its Ethernet addresses swapped
 *   by lb4_reject. What lb4_reject does not answer is dropped.
 * Returns a verdict or DROP().
 */
static __always_inline int nodeport_no_backend(struct __sk_buff *skb, const struct flow *f,
					       __u32 ihl, __u16 svc_flags, __u32 *reason)
{
	struct sluice_lb4_key k = { .addr = f->key.daddr, .port = f->key.dport,
				    .proto = f->key.proto, .scope = SLUICE_LB_SCOPE_INT };
	struct sluice_lb4_value *in;
	int ret;

	if (svc_flags & SLUICE_LB_F_EXT_LOCAL) {
		in = bpf_map_lookup_elem(&sluice_svc4_v1, &k);
		if (in && in->count)
			return DROP(SLUICE_DROP_LB_EXT_NO_LOCAL);
	}
	ret = lb4_reject(skb, f, ihl);
	if (IS_DROP(ret))
		return ret;
	metrics_count((__u32)ret, SLUICE_DIR_INGRESS, 0);
	*reason = SLUICE_LB_EXT_REJECT;
	return bpf_redirect(skb->ifindex, 0);
}

/*
 * The flow f (client -> EXT frontend) as translated to backend be, the
 * frontend's rev-NAT index rev_nat: client -> backend, the tuple its
 * backend-side tracking entry (and NAT pair) is keyed by. Context-free:
 * the tc path and the XDP program (lib/nodeport_xdp.h) share it.
 */
static __always_inline void nodeport_flow_to_backend(struct flow *f,
						     const struct sluice_lb4_backend *be,
						     __u16 rev_nat)
{
	f->key.daddr = be->addr;
	f->key.dport = be->port;
	if (!f->later_fragment)
		f->policy_port = bpf_ntohs(be->port);
	f->ct_pad = rev_nat;
	f->ct_kind = CT_KIND_LB;
}

/*
 * The state of a translated flow f (nodeport_flow_to_backend) whose backend
 * is on another node: its tracking entry here (SLUICE_CT_F_LB_BACKEND, the
 * rev-NAT index for the reply, and the life of the NAT pair) and, with
 * snat (externalTrafficPolicy Cluster), its pair of the masquerade range
 * (lib/nat.h), the node's port in *port. An entry of the same tuple that
 * is no Service flow's (an earlier direct flow still tracked) is replaced,
 * and the flow gets a fresh pair. Context-free but for ctx (tc or XDP,
 * for nat_port_for's socket lookup): both hooks write exactly this, so
 * either finds the other's flows. Returns 0 or DROP().
 */
static __always_inline int nodeport_remote_state(void *ctx, const struct flow *f, __u64 now,
						 int snat, __be16 *port)
{
	__u32 ct_flags = 0;
	int fresh;

	fresh = ct_lookup(f, now, 0, &ct_flags) == CT_NEW || !(ct_flags & SLUICE_CT_F_LB_BACKEND);
	if (fresh && f->later_fragment)
		return DROP(SLUICE_DROP_FRAG_ORPHAN); /* starts no flow */
	if (fresh)
		ct_create(f, now, SLUICE_CT_F_LB_BACKEND);
	if (!snat)
		return 0;
	return nat_port_for(ctx, f, cfg_node_ip, cfg_nat_port_min, cfg_nat_port_max, fresh, port);
}

/* Does an external flow to a frontend of these slot-0 flags get the node's
 * address (externalTrafficPolicy Cluster, the node's address known)? */
static __always_inline int nodeport_snat_wanted(__u16 svc_flags)
{
	return !(svc_flags & SLUICE_LB_F_EXT_LOCAL) && cfg_node_ip;
}

/*
 * f (parsed from the packet, its IPv4 header of ihl bytes at IP_OFF, the
 * source's ipcache entry peer) to an EXT frontend: rewritten to its
 * backend and sent on. Returns NODEPORT_NOT_OURS when f goes to no EXT
 * frontend, else a verdict or DROP(); without a backend, see
 * nodeport_no_backend.
 */
static __always_inline int nodeport_translate(struct __sk_buff *skb, struct flow *f, __u32 ihl,
					      const struct sluice_ipcache_value *peer,
					      __u32 *reason)
{
	__u32 l4 = IP_OFF + ihl, ct_flags = 0;
	__u64 now = bpf_ktime_get_ns();
	struct sluice_lb4_backend be;
	struct sluice_endpoint *dst;
	__u16 rev_nat = 0, svc_flags = 0;
	struct ethhdr *eth;
	struct iphdr *ip;
	__be16 port = 0;
	__u8 l4_proto;
	int ret, snat;

	switch (lb4_select(f, now, SLUICE_LB_SCOPE_EXT, &be, &rev_nat, &svc_flags)) {
	case LB_NOT_FRONTEND:
		return NODEPORT_NOT_OURS;
	case LB_BACKEND_NEW:
		f->lb_new = 1;
		break;
	case LB_NO_BACKEND:
		metrics_count(SLUICE_LB_NO_BACKEND, SLUICE_DIR_INGRESS, 0);
		return nodeport_no_backend(skb, f, ihl, svc_flags, reason);
	default:
		break;
	}
	/* A backend here, and a source in this node's pod CIDR: forged, as
	 * the first stage drops it for a pod's own address (lib/
	 * first_stage.h); the first stage sees the frontend, never the
	 * backend the packet is translated to. */
	if (cfg_pod_mask && (f->key.saddr & cfg_pod_mask) == cfg_pod_net && endpoint_lookup4(be.addr))
		return DROP(SLUICE_DROP_XDP_SPOOF);
	/* A later fragment follows its first fragment's flow (lb4_select
	 * found it tracked): it has no L4 header, only addresses change. */
	l4_proto = f->later_fragment ? 0 : f->key.proto;
	if (nat_rewrite(skb, l4_proto, l4, IP_OFF + offsetof(struct iphdr, daddr), f->key.daddr,
			be.addr, l4_proto ? l4 + 2 : 0, f->key.dport, be.port))
		return DROP(SLUICE_DROP_REDIRECT);
	nodeport_flow_to_backend(f, &be, rev_nat);
	metrics_count(SLUICE_LB_EXT_TRANSLATED, SLUICE_DIR_INGRESS, 0);

	dst = endpoint_lookup4(be.addr);
	if (dst) {
		/* The backend's ingress policy judges the client itself; its
		 * replies come back through from_pod, not the stack. */
		ret = track_and_police(f, NULL, dst, peer, SLUICE_DIR_INGRESS,
				       SLUICE_CT_F_LB_BACKEND, 0, &ct_flags);
		if (IS_DROP(ret))
			return ret;
		ret = lb_reload(skb, &eth, &ip);
		if (IS_DROP(ret))
			return ret;
		*reason = SLUICE_FWD_LOCAL;
		return redirect_to_pod(skb, eth, ip, dst);
	}
	/* Another node's backend: tracked here; its node polices it. */
	snat = nodeport_snat_wanted(svc_flags);
	ret = nodeport_remote_state(skb, f, now, snat, &port);
	if (IS_DROP(ret))
		return ret;
	if (snat) {
		if (nat_rewrite(skb, l4_proto, l4, IP_OFF + offsetof(struct iphdr, saddr),
				f->key.saddr, cfg_node_ip, l4_proto ? l4 : 0, f->key.sport, port))
			return DROP(SLUICE_DROP_NAT_PORTS);
		metrics_count(SLUICE_LB_SNAT, SLUICE_DIR_INGRESS, 0);
	}
	return nodeport_to_backend_node(skb, reason);
}

/*
 * from_netdev, an ICMP message f (eth, ip: its headers) on the uplink: an
 * error about an SNATed external flow (nodeport_snat_icmp_error) or about
 * a frontend's packet to an outside client (nodeport_icmp_error_in), both
 * after the source passed uplink_origin_check. Returns NODEPORT_NOT_OURS
 * for anything else (masquerade's errors, the node's own).
 */
static __always_inline int nodeport_icmp_from_netdev(struct __sk_buff *skb, struct ethhdr *eth,
						     struct iphdr *ip, struct flow *f,
						     __u32 *reason)
{
	struct sluice_lb4_key k = { .scope = SLUICE_LB_SCOPE_EXT };
	struct sluice_ipcache_value peer;
	__u32 ihl = ip->ihl * 4;
	int ret, snat;

	if (!f->icmp_error)
		return NODEPORT_NOT_OURS;
	/* A NodePort's frontend is the node's address too: the NAT range
	 * tells an SNATed flow's quote from a NodePort's. */
	snat = ip->daddr == cfg_node_ip && f->inner.saddr == cfg_node_ip &&
	       nodeport_nat_port(f->inner.sport);
	if (!snat) {
		/* Only a frontend's packet can have been quoted. */
		k.addr = f->inner.saddr;
		k.port = f->inner.sport;
		k.proto = f->inner.proto;
		if (ip->daddr != f->inner.saddr || !bpf_map_lookup_elem(&sluice_svc4_v1, &k))
			return NODEPORT_NOT_OURS;
	}
	peer = ipcache_lookup(ip->saddr);
	ret = uplink_origin_check(skb, skb->ifindex, eth, ip->saddr, &peer, cfg_routing == SLUICE_ROUTING_OVERLAY);
	if (IS_DROP(ret))
		return ret;
	if (snat)
		return nodeport_snat_icmp_error(skb, f, IP_OFF + ihl, reason);
	return nodeport_icmp_error_in(skb, f, ihl, &peer, reason);
}

/*
 * from_netdev, plain IPv4 packets (overlay packets were taken care of
 * before): a client outside the cluster to an EXT frontend, or the reply
 * from another node's backend to a flow this node SNATed. Both only after
 * the source passed uplink_origin_check. Returns NODEPORT_NOT_OURS for
 * anything else (the usual path: masquerade replies, other nodes' pods).
 */
static __always_inline int nodeport_from_netdev(struct __sk_buff *skb, __u32 *reason)
{
	struct sluice_lb4_key k = { .scope = SLUICE_LB_SCOPE_EXT };
	struct sluice_ipcache_value peer;
	struct flow f = {};
	struct ethhdr *eth;
	struct cursor c;
	struct iphdr *ip;
	int ret, snat_reply;

	if (!cfg_lb)
		return NODEPORT_NOT_OURS;
	cursor_init(&c, skb);
	if (parse_eth(&c, &eth) != ETH_P_IP || IS_DROP(parse_ipv4(&c, &ip)))
		return NODEPORT_NOT_OURS;
	if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP &&
	    ip->protocol != IPPROTO_ICMP)
		return NODEPORT_NOT_OURS;
	/* A later fragment carries its first fragment's ports (lib/frag.h):
	 * looked up as that one was. Without a first: not ours. */
	if (IS_DROP(parse_flow(&c, ip, &f)))
		return NODEPORT_NOT_OURS;
	if (ip->protocol == IPPROTO_ICMP)
		return f.later_fragment ? NODEPORT_NOT_OURS
					: nodeport_icmp_from_netdev(skb, eth, ip, &f, reason);
	snat_reply = ip->daddr == cfg_node_ip && nodeport_nat_port(f.key.dport) &&
		     bpf_map_lookup_elem(&sluice_rnat4_v1, &f.key);
	if (!snat_reply) {
		/* Only a frontend's packets pay for the origin check twice. */
		k.addr = f.key.daddr;
		k.port = f.key.dport;
		k.proto = f.key.proto;
		if (!bpf_map_lookup_elem(&sluice_svc4_v1, &k))
			return NODEPORT_NOT_OURS;
	}
	peer = ipcache_lookup(ip->saddr);
	ret = uplink_origin_check(skb, skb->ifindex, eth, ip->saddr, &peer, cfg_routing == SLUICE_ROUTING_OVERLAY);
	if (IS_DROP(ret))
		return ret;
	if (snat_reply)
		return nodeport_snat_reverse(skb, &f, ip->ihl * 4, reason);
	if (ip->ttl <= 1)
		return NODEPORT_NOT_OURS;
	return nodeport_translate(skb, &f, ip->ihl * 4, &peer, reason);
}

/*
 * A frame the vxlan device took out of the tunnel from outer (another
 * node's address, network order): the reply of that node's backend to an
 * external flow this node SNATed? Checked as from_node_ipv4 checks it
 * (tunnel_origin_check) first. Returns NODEPORT_NOT_OURS for anything else.
 */
static __always_inline int nodeport_from_tunnel(struct __sk_buff *skb, __be32 outer,
						__u32 *reason)
{
	struct sluice_lb4_key k = { .scope = SLUICE_LB_SCOPE_EXT };
	struct sluice_ipcache_value peer;
	struct flow f = {};
	struct ethhdr *eth;
	struct cursor c;
	struct iphdr *ip;
	int ret, frontend = 0;

	if (!cfg_lb || !cfg_node_ip)
		return NODEPORT_NOT_OURS;
	cursor_init(&c, skb);
	if (parse_eth(&c, &eth) != ETH_P_IP || IS_DROP(parse_ipv4(&c, &ip)))
		return NODEPORT_NOT_OURS;
	if (ip->daddr != cfg_node_ip ||
	    (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP &&
	     ip->protocol != IPPROTO_ICMP))
		return NODEPORT_NOT_OURS;
	if (IS_DROP(parse_flow(&c, ip, &f)))
		return NODEPORT_NOT_OURS;
	if (ip->protocol == IPPROTO_ICMP) {
		/* The backend's own error about the SNATed flow. */
		if (!f.icmp_error || f.later_fragment || f.inner.saddr != cfg_node_ip)
			return NODEPORT_NOT_OURS;
	} else if (!nodeport_nat_port(f.key.dport) ||
		   !bpf_map_lookup_elem(&sluice_rnat4_v1, &f.key)) {
		/* Another node's pod to one of this node's NodePorts: the
		 * tunnel brings it (overlay routing), as the uplink brings it
		 * plain with native routing; translated alike, as an
		 * outside client's (scope EXT). */
		k.addr = f.key.daddr;
		k.port = f.key.dport;
		k.proto = f.key.proto;
		if (!bpf_map_lookup_elem(&sluice_svc4_v1, &k))
			return NODEPORT_NOT_OURS;
		frontend = 1;
	}
	peer = ipcache_lookup(ip->saddr);
	ret = tunnel_origin_check(outer, ip->saddr, &peer);
	if (IS_DROP(ret))
		return ret;
	if (f.icmp_error)
		return nodeport_snat_icmp_error(skb, &f, IP_OFF + ip->ihl * 4, reason);
	if (frontend)
		return ip->ttl <= 1 ? NODEPORT_NOT_OURS
				    : nodeport_translate(skb, &f, ip->ihl * 4, &peer, reason);
	return nodeport_snat_reverse(skb, &f, ip->ihl * 4, reason);
}

#endif /* SLUICE_BPF_NODEPORT_H */
