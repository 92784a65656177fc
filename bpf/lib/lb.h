/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Services: a pod's packet to a Service frontend (clusterIP, externalIP or
 * load-balancer address, port, protocol) gets a backend's address and port
 * as its destination before policy sees it, so the client's egress policy
 * and the backend's ingress policy judge the real backend and the real
 * client (NetworkPolicy applies after Service translation). The backend is
 * chosen once per flow and kept in connection tracking: the client's tuple
 * (client -> frontend) names the backend id (SLUICE_CT_F_LB_FRONTEND), the
 * translated tuple (client -> backend) the frontend's rev-NAT index
 * (SLUICE_CT_F_LB_BACKEND), which gives replies the frontend back as their
 * source where the client's node sees them. A frontend without backend
 * refuses the flow (lib/reject.h). Maps: include/sluice/datapath.h.
 */
#ifndef SLUICE_BPF_LB_H
#define SLUICE_BPF_LB_H

#include "config.h"
#include "ct.h"
#include "metrics.h"
#include "nat.h"
#include "reject.h"
#include <sluice/lbhash.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SLUICE_LB_SVC_MAX);
	__type(key, struct sluice_lb4_key);
	__type(value, struct sluice_lb4_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_svc4_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SLUICE_LB_BE_MAX);
	__type(key, __u32);
	__type(value, struct sluice_lb4_backend);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_be4_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SLUICE_LB_RNAT_MAX);
	__type(key, __u32);
	__type(value, struct sluice_lb4_revnat);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_lbrn4_v1 SEC(".maps");

/*
 * Maglev tables: the inner template's size is cfg_maglev_m, set by the
 * loader before load (agent/loader.c). BPF_F_INNER_MAP lets the pinned
 * outer map take tables of another size after --lb-maglev-table-size
 * changed (the agent then replaces them all); it also stops the verifier
 * from inlining the array lookup against the template's size, so an index
 * beyond a smaller table is refused at run time. BPF_F_MMAPABLE: the agent
 * fills and reads a table with one memcpy instead of M syscalls.
 */
struct sluice_mgl4_inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SLUICE_MAGLEV_M_DEFAULT);
	__uint(map_flags, BPF_F_INNER_MAP | BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u32);
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, SLUICE_LB_MGL_MAX);
	__type(key, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct sluice_mgl4_inner);
} sluice_mgl4_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SLUICE_LB_AFF_MAX);
	__type(key, struct sluice_lb4_aff_key);
	__type(value, struct sluice_lb4_aff_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_aff4_v1 SEC(".maps");

/* LB_BACKEND_NEW: chosen for this packet, a new flow from the client's side
 * (lib/ct.h lets it start anew on a tuple an earlier flow left behind). */
enum lb_choice { LB_NOT_FRONTEND = 0, LB_BACKEND_FOUND, LB_NO_BACKEND, LB_BACKEND_NEW };

/* lb4_translate's answer when it turned the packet into a refusal. */
#define LB_REJECTED 2

/*
 * The backend id slot 0's Service (svc, a copy the caller read once, of
 * the frontend fe) gives a new flow tuple (as it reached the node, before
 * any translation), with the backend's entry in *be; 0 when there is none
 * to give. In order: the client's ClientIP-affinity backend while it lives
 * and exists; else the Maglev table's entry for the flow hash when slot 0
 * says MAGLEV; else a random slot. The choice is written back as the
 * client's affinity when the Service has it. Shared by every place that
 * translates (pods, external clients, host sockets) so they all choose
 * alike.
 */
static __always_inline __u32 lb4_pick_ex(const struct sluice_lb4_key *fe,
					 const struct sluice_lb4_value *svc,
					 const struct sluice_ct_key *tuple,
					 struct sluice_lb4_backend *be, int dry, __u8 *aff_hit)
{
	struct sluice_lb4_aff_key ak = { .client = tuple->saddr, .rev_nat = svc->rev_nat };
	struct sluice_lb4_key k = *fe;
	struct sluice_lb4_aff_value *aff;
	struct sluice_lb4_backend *b;
	struct sluice_lb4_value *slot;
	__u64 now = 0, timeout_ns = 0;
	__u32 id = 0, idx, *e;
	void *table;

	if (svc->affinity_timeout) {
		now = bpf_ktime_get_ns();
		timeout_ns = (__u64)svc->affinity_timeout * 1000000000ull;
		aff = bpf_map_lookup_elem(&sluice_aff4_v1, &ak);
		if (aff && !ktime_older(now, aff->last_used, timeout_ns)) {
			id = aff->backend_id;
			b = bpf_map_lookup_elem(&sluice_be4_v1, &id);
			if (b) {
				*be = *b;
				*aff_hit = 1;
				if (!dry) {
					aff->last_used = now;
					metrics_count(SLUICE_LB_AFFINITY_HIT, SLUICE_DIR_EGRESS, 0);
				}
				return id;
			}
		}
		id = 0;
	}
	if ((svc->flags & SLUICE_LB_F_MAGLEV) && cfg_maglev_m) {
		idx = svc->rev_nat;
		table = bpf_map_lookup_elem(&sluice_mgl4_v1, &idx);
		if (table) {
			idx = sluice_lb_flow_hash4(tuple->saddr, tuple->daddr, tuple->sport,
						   tuple->dport, tuple->proto, cfg_lb_seed) %
			      cfg_maglev_m;
			e = bpf_map_lookup_elem(table, &idx);
			if (e && *e != SLUICE_MAGLEV_NONE)
				id = *e;
		}
	}
	/* No table (yet, or any more): the slots are always complete. */
	if (!id) {
		if (!svc->count)
			return 0;
		k.slot = (__u16)(1 + bpf_get_prandom_u32() % svc->count);
		slot = bpf_map_lookup_elem(&sluice_svc4_v1, &k);
		if (!slot)
			return 0;
		id = slot->backend_id;
	}
	b = bpf_map_lookup_elem(&sluice_be4_v1, &id);
	if (!b)
		return 0;
	*be = *b;
	if (svc->affinity_timeout && !dry) {
		struct sluice_lb4_aff_value v = { .last_used = now, .backend_id = id };

		bpf_map_update_elem(&sluice_aff4_v1, &ak, &v, BPF_ANY);
	}
	return id;
}

static __always_inline __u32 lb4_pick(const struct sluice_lb4_key *fe,
				      const struct sluice_lb4_value *svc,
				      const struct sluice_ct_key *tuple,
				      struct sluice_lb4_backend *be)
{
	__u8 aff_hit = 0;

	return lb4_pick_ex(fe, svc, tuple, be, 0, &aff_hit);
}

/*
 * A choice lb4_select made without writing it (dry): what the caller needs
 * to write it later (lb4_commit), once it knows whether it carries the
 * packet itself or leaves it to another hook (which then finds the choice
 * marked SLUICE_CT_F_LB_PENDING and takes it as its own: choosing twice at
 * random would favour the backends the first hook carries itself).
 */
struct lb4_pending {
	__u32 id;		/* the backend chosen; 0: the flow's entry had one */
	__u32 affinity;		/* slot 0's affinity_timeout */
	__u16 rev_nat;
	__u8 aff_hit;		/* id came from the client's affinity entry */
	__u8 closing;		/* FIN or RST: the entry starts closing */
	__u8 terminating;	/* a terminating backend */
};

/*
 * The backend of flow f when its destination is a frontend of scope
 * (SLUICE_LB_SCOPE_*): the one its tracking entry names while that backend
 * exists, else a new pick (lb4_pick: affinity, Maglev or random),
 * remembered. A flow tracked before its destination became a frontend
 * (kube-proxy's, say) is left alone. *svc_flags: slot 0's flags.
 */
static __always_inline enum lb_choice lb4_select_ex(const struct flow *f, __u64 now, __u8 scope,
						    struct sluice_lb4_backend *be, __u16 *rev_nat,
						    __u16 *svc_flags, struct lb4_pending *dry)
{
	struct sluice_lb4_key k = { .addr = f->key.daddr, .port = f->key.dport,
				    .proto = f->key.proto, .scope = scope };
	struct sluice_ct_value entry = { .last_seen = now, .flags = SLUICE_CT_F_LB_FRONTEND };
	struct sluice_lb4_value *svc, s0;
	struct sluice_lb4_backend *b;
	struct sluice_ct_value *ct;
	__u32 had, id;
	__u8 aff_hit = 0;

	svc = bpf_map_lookup_elem(&sluice_svc4_v1, &k);
	if (!svc)
		return LB_NOT_FRONTEND;
	/* One read of slot 0: the agent may replace it meanwhile (a hash
	 * map update swaps in a new element, so this copy is one version). */
	s0 = *svc;
	*rev_nat = s0.rev_nat;
	*svc_flags = s0.flags;
	ct = ct_live(&f->key, now);
	/* A new connection from a port whose last one is closing chooses
	 * afresh, and its entry loses the closing timeout. */
	if (ct && (ct->flags & SLUICE_CT_F_CLOSING) && ct_is_syn(f))
		ct = NULL;
	if (ct) {
		if (!(ct->flags & SLUICE_CT_F_LB_FRONTEND))
			return LB_NOT_FRONTEND;
		ct_refresh(ct, now, f->tcp_flags, 0, &had);
		id = ct->pad;
		/* A terminating backend is out of the slots but still here:
		 * the flow keeps it until its endpoint is gone. */
		b = bpf_map_lookup_elem(&sluice_be4_v1, &id);
		if (b) {
			*be = *b;
			/* Chosen at XDP for this very packet, which XDP left
			 * here: the flow's new choice, made once. */
			if (!dry && (ct->flags & SLUICE_CT_F_LB_PENDING)) {
				ct->flags &= ~SLUICE_CT_F_LB_PENDING;
				return LB_BACKEND_NEW;
			}
			return LB_BACKEND_FOUND;
		}
		/* Its backend is gone: the flow chooses again. */
	}
	/* Checked before the fragment test: a later fragment to a frontend
	 * without backend is not forwarded to the frontend either. */
	if (!s0.count)
		return LB_NO_BACKEND;
	if (f->later_fragment)
		return LB_NOT_FRONTEND;
	id = lb4_pick_ex(&k, &s0, &f->key, be, !!dry, &aff_hit);
	if (!id)
		return LB_NO_BACKEND;
	if (dry) {
		dry->id = id;
		dry->rev_nat = s0.rev_nat;
		dry->affinity = s0.affinity_timeout;
		dry->aff_hit = aff_hit;
		dry->closing = !!(f->tcp_flags & (TCP_FLAG_FIN | TCP_FLAG_RST));
		dry->terminating = !!(be->flags & SLUICE_LB_BE_F_TERMINATING);
		return LB_BACKEND_NEW;
	}
	if (be->flags & SLUICE_LB_BE_F_TERMINATING)
		metrics_count(SLUICE_LB_TERMINATING, SLUICE_DIR_EGRESS, 0);
	entry.pad = id;
	if (f->tcp_flags & (TCP_FLAG_FIN | TCP_FLAG_RST))
		entry.flags |= SLUICE_CT_F_CLOSING;
	bpf_map_update_elem(&sluice_ct4_map, &f->key, &entry, BPF_ANY);
	return LB_BACKEND_NEW;
}

static __always_inline enum lb_choice lb4_select(const struct flow *f, __u64 now, __u8 scope,
						 struct sluice_lb4_backend *be, __u16 *rev_nat,
						 __u16 *svc_flags)
{
	return lb4_select_ex(f, now, scope, be, rev_nat, svc_flags, NULL);
}

/*
 * Write the choice a dry lb4_select_ex made for flow f (pend; nothing when
 * the flow's entry had its backend already): exactly what lb4_select
 * writes, the client's affinity and the flow's client-side entry (with
 * flags added: SLUICE_CT_F_LB_PENDING when the packet goes on to another
 * hook, which then takes the choice as its own), and the counters it
 * counts.
 */
static __always_inline void lb4_commit(const struct flow *f, __u64 now,
				       const struct lb4_pending *pend, __u32 flags)
{
	struct sluice_ct_value entry = { .last_seen = now,
					 .flags = SLUICE_CT_F_LB_FRONTEND | flags,
					 .pad = pend->id };
	struct sluice_lb4_aff_key ak = { .client = f->key.saddr, .rev_nat = pend->rev_nat };
	struct sluice_lb4_aff_value av = { .last_used = now, .backend_id = pend->id };
	struct sluice_lb4_aff_value *aff;

	if (!pend->id)
		return;
	if (pend->affinity) {
		aff = pend->aff_hit ? bpf_map_lookup_elem(&sluice_aff4_v1, &ak) : NULL;
		if (aff)
			aff->last_used = now;
		else if (!pend->aff_hit)
			bpf_map_update_elem(&sluice_aff4_v1, &ak, &av, BPF_ANY);
		if (pend->aff_hit)
			metrics_count(SLUICE_LB_AFFINITY_HIT, SLUICE_DIR_EGRESS, 0);
	}
	if (pend->terminating)
		metrics_count(SLUICE_LB_TERMINATING, SLUICE_DIR_EGRESS, 0);
	if (pend->closing)
		entry.flags |= SLUICE_CT_F_CLOSING;
	bpf_map_update_elem(&sluice_ct4_map, &f->key, &entry, BPF_ANY);
}

/*
 * An ICMP error a pod sends about a packet it got from a frontend (the
 * quote: frontend -> pod, the reply of the pod's Service flow, whose
 * client-side entry names the backend): it goes to the backend, quoting
 * the packet as the backend sent it, so the backend's stack finds its
 * socket (a UDP port the client closed, say). f follows (destination,
 * quote). Returns 1 when rewritten, 0 when the error is about no such
 * flow, or DROP().
 */
static __always_inline int lb4_translate_icmp_error(struct __sk_buff *skb, struct flow *f, __u32 l4)
{
	struct sluice_lb4_backend *be;
	struct sluice_ct_value *ct;
	struct sluice_ct_key k;
	__u32 id;

	if ((f->inner.proto != IPPROTO_TCP && f->inner.proto != IPPROTO_UDP) ||
	    f->key.daddr != f->inner.saddr)
		return 0;
	ct_reverse(&f->inner, &k);
	ct = ct_live(&k, bpf_ktime_get_ns());
	if (!ct || !(ct->flags & SLUICE_CT_F_LB_FRONTEND))
		return 0;
	id = ct->pad;
	be = bpf_map_lookup_elem(&sluice_be4_v1, &id);
	/* A hairpin flow's answers come from the pod itself: not here. */
	if (!be || be->addr == f->key.saddr)
		return 0;
	if (icmp_quote_rewrite(skb, l4, f->inner.proto, 1, f->inner.saddr, be->addr,
			       f->inner.sport, be->port, IP_OFF + offsetof(struct iphdr, daddr),
			       f->key.daddr, be->addr))
		return DROP(SLUICE_DROP_REDIRECT);
	f->key.daddr = be->addr;
	f->inner.saddr = be->addr;
	f->inner.sport = be->port;
	metrics_count(SLUICE_LB_ICMP_ERROR, SLUICE_DIR_EGRESS, 0);
	return 1;
}

/*
 * A pod's packet of flow f (IPv4 header of ihl bytes at IP_OFF): when it
 * goes to a frontend, rewrite its destination to the flow's backend (L3
 * and L4 checksums) and f with it, so the caller polices and forwards the
 * translated packet; f->ct_pad carries the rev-NAT index into the flow's
 * new tracking entry. When the backend is the sending pod itself
 * (hairpin), the source becomes cfg_lb_hairpin too and f->hairpin is set:
 * the pod answers an address that is not its own, so the answer leaves it
 * and lb4_reverse gives it the frontend back. Returns 1 when translated
 * other protocols than TCP and UDP are not translated. A frontend without
 * backend answers for itself: the packet becomes a TCP RST or an ICMP port
 * unreachable to the client (lib/reject.h), *reason says which, and the
 * return is LB_REJECTED: the caller sends it back where it came from.
 */
static __always_inline int lb4_translate(struct __sk_buff *skb, struct flow *f, __u32 ihl,
					 __u32 *reason)
{
	int ret;

	__u32 l4 = IP_OFF + ihl;
	struct sluice_lb4_backend be;
	__u16 rev_nat = 0, svc_flags = 0;
	__u8 proto = f->key.proto;

	if (!cfg_lb)
		return 0;
	if (f->icmp_error)
		return lb4_translate_icmp_error(skb, f, l4);
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return 0;
	switch (lb4_select(f, bpf_ktime_get_ns(), SLUICE_LB_SCOPE_INT, &be, &rev_nat, &svc_flags)) {
	case LB_NOT_FRONTEND:
		return 0;
	case LB_BACKEND_NEW:
		f->lb_new = 1;
		break;
	case LB_NO_BACKEND:
		/* Never on to the frontend address: nothing owns it, and the
		 * client would wait for a timeout instead of a refusal. */
		metrics_count(SLUICE_LB_NO_BACKEND, SLUICE_DIR_EGRESS, 0);
		ret = lb4_reject(skb, f, ihl);
		if (IS_DROP(ret))
			return ret;
		*reason = (__u32)ret;
		return LB_REJECTED;
	default:
		break;
	}
	/* A later fragment has no L4 header: only the address changes. */
	if (nat_rewrite(skb, f->later_fragment ? 0 : proto, l4, IP_OFF + offsetof(struct iphdr, daddr),
			f->key.daddr, be.addr, f->later_fragment ? 0 : l4 + 2, f->key.dport,
			be.port))
		return DROP(SLUICE_DROP_REDIRECT);
	if (be.addr == f->key.saddr) {
		if (nat_rewrite(skb, f->later_fragment ? 0 : proto, l4,
				IP_OFF + offsetof(struct iphdr, saddr), f->key.saddr, cfg_lb_hairpin,
				0, 0, 0))
			return DROP(SLUICE_DROP_REDIRECT);
		f->key.saddr = cfg_lb_hairpin;
		f->hairpin = 1;
		metrics_count(SLUICE_LB_HAIRPIN, SLUICE_DIR_EGRESS, 0);
	}
	f->key.daddr = be.addr;
	f->key.dport = be.port;
	if (!f->later_fragment)
		f->policy_port = bpf_ntohs(be.port);
	f->ct_pad = rev_nat;
	metrics_count(svc_flags & SLUICE_LB_F_HOSTPORT ? SLUICE_LB_HOSTPORT : SLUICE_LB_TRANSLATED,
		      SLUICE_DIR_EGRESS, 0);
	return 1;
}

/*
 * An ICMP error f about a translated flow (its quote: client -> backend,
 * the tracking entry of that tuple flagged SLUICE_CT_F_LB_BACKEND), on its
 * way to the client: the quote gets the frontend back as its destination,
 * and the outer source too when the backend sent the error, so the
 * client's stack finds the socket it belongs to. Returns 1 when rewritten,
 * 0 when the error is about no such flow, or DROP().
 */
static __always_inline int lb4_reverse_icmp_error(struct __sk_buff *skb, const struct flow *f,
						  __u32 l4, __u32 dir)
{
	struct sluice_lb4_revnat *fe;
	struct sluice_ct_value *ct;
	__u32 rn;

	if (f->inner.proto != IPPROTO_TCP && f->inner.proto != IPPROTO_UDP)
		return 0;
	ct = ct_live(&f->inner, bpf_ktime_get_ns());
	if (!ct || !(ct->flags & SLUICE_CT_F_LB_BACKEND))
		return 0;
	rn = ct->pad;
	fe = bpf_map_lookup_elem(&sluice_lbrn4_v1, &rn);
	if (!fe)
		return 0;
	if (icmp_quote_rewrite(skb, l4, f->inner.proto, 0, f->inner.daddr, fe->addr,
			       f->inner.dport, fe->port,
			       f->key.saddr == f->inner.daddr ? IP_OFF + offsetof(struct iphdr, saddr) : 0,
			       f->key.saddr, fe->addr))
		return DROP(SLUICE_DROP_REDIRECT);
	metrics_count(SLUICE_LB_ICMP_ERROR, dir, 0);
	return 1;
}

/*
 * A reply of a translated flow (f: backend -> client, its flow's entry
 * flagged SLUICE_CT_F_LB_BACKEND): its source becomes the frontend the
 * client sent to; a hairpin reply (to cfg_lb_hairpin) also gets the pod's
 * own address as destination, and the caller delivers it back to the pod.
 * ICMP errors: lb4_reverse_icmp_error. Returns 1 when rewritten (packet
 * pointers stale), 0 when the packet is no such reply, or DROP().
 */
static __always_inline int lb4_reverse(struct __sk_buff *skb, const struct flow *f, __u32 ihl,
				       __u32 dir)
{
	__u32 l4 = IP_OFF + ihl, rn;
	__u8 proto = f->later_fragment ? 0 : f->key.proto;
	struct sluice_lb4_revnat *fe;
	struct sluice_ct_value *ct;
	struct sluice_ct_key k;

	if (!cfg_lb)
		return 0;
	if (f->icmp_error)
		return lb4_reverse_icmp_error(skb, f, l4, dir);
	ct_reverse(&f->key, &k);
	ct = ct_live(&k, bpf_ktime_get_ns());
	if (!ct || !(ct->flags & SLUICE_CT_F_LB_BACKEND))
		return 0;
	rn = ct->pad;
	fe = bpf_map_lookup_elem(&sluice_lbrn4_v1, &rn);
	if (!fe)
		return 0;
	if (nat_rewrite(skb, proto, l4, IP_OFF + offsetof(struct iphdr, saddr), f->key.saddr,
			fe->addr, f->later_fragment ? 0 : l4, f->key.sport, fe->port))
		return DROP(SLUICE_DROP_REDIRECT);
	/* The pod is both ends: the hairpin address was its flow's source. */
	if (f->key.daddr == cfg_lb_hairpin &&
	    nat_rewrite(skb, proto, l4, IP_OFF + offsetof(struct iphdr, daddr), f->key.daddr,
			f->key.saddr, 0, 0, 0))
		return DROP(SLUICE_DROP_REDIRECT);
	metrics_count(SLUICE_LB_REVERSE, dir, 0);
	return 1;
}

/* The Ethernet and IPv4 headers again after a rewrite. */
static __always_inline int lb_reload(struct __sk_buff *skb, struct ethhdr **eth, struct iphdr **ip)
{
	struct ethhdr *e = (void *)(long)skb->data;
	struct iphdr *h = (void *)(e + 1);

	if ((void *)(h + 1) > (void *)(long)skb->data_end)
		return DROP(SLUICE_DROP_TRUNCATED);
	*eth = e;
	*ip = h;
	return 0;
}

#endif /* SLUICE_BPF_LB_H */
