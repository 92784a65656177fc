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
 * source where the client's node sees them. Maps: include/sluice/datapath.h.
 */
#ifndef SLUICE_BPF_LB_H
#define SLUICE_BPF_LB_H

#include "config.h"
#include "ct.h"
#include "metrics.h"
#include "nat.h"

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

enum lb_choice { LB_NOT_FRONTEND = 0, LB_BACKEND_FOUND, LB_NO_BACKEND };

/*
 * The backend of flow f when its destination is a frontend of scope
 * (SLUICE_LB_SCOPE_*): the one its tracking entry names while that backend
 * exists, else a new random pick among the Service's count backends,
 * remembered. A flow tracked before its destination became a frontend
 * (kube-proxy's, say) is left alone. *svc_flags: slot 0's flags.
 */
static __always_inline enum lb_choice lb4_select(const struct flow *f, __u64 now, __u8 scope,
						 struct sluice_lb4_backend *be, __u16 *rev_nat,
						 __u16 *svc_flags)
{
	struct sluice_lb4_key k = { .addr = f->key.daddr, .port = f->key.dport,
				    .proto = f->key.proto, .scope = scope };
	struct sluice_ct_value entry = { .last_seen = now, .flags = SLUICE_CT_F_LB_FRONTEND };
	struct sluice_lb4_value *svc, *slot;
	struct sluice_lb4_backend *b;
	struct sluice_ct_value *ct;
	__u32 had, id;
	__u16 count;

	svc = bpf_map_lookup_elem(&sluice_svc4_v1, &k);
	if (!svc)
		return LB_NOT_FRONTEND;
	/* One read of slot 0: the agent may replace it meanwhile. */
	count = *(volatile __u16 *)&svc->count;
	*rev_nat = *(volatile __u16 *)&svc->rev_nat;
	*svc_flags = *(volatile __u16 *)&svc->flags;
	ct = ct_live(&f->key, now);
	if (ct) {
		if (!(ct->flags & SLUICE_CT_F_LB_FRONTEND))
			return LB_NOT_FRONTEND;
		ct_refresh(ct, now, f->tcp_flags, 0, &had);
		id = ct->pad;
		b = bpf_map_lookup_elem(&sluice_be4_v1, &id);
		if (b) {
			*be = *b;
			return LB_BACKEND_FOUND;
		}
		/* Its backend is gone: the flow chooses again. */
	}
	if (f->later_fragment)
		return LB_NOT_FRONTEND;
	if (!count)
		return LB_NO_BACKEND;
	k.slot = (__u16)(1 + bpf_get_prandom_u32() % count);
	slot = bpf_map_lookup_elem(&sluice_svc4_v1, &k);
	if (!slot)
		return LB_NO_BACKEND;
	id = slot->backend_id;
	b = bpf_map_lookup_elem(&sluice_be4_v1, &id);
	if (!b)
		return LB_NO_BACKEND;
	*be = *b;
	entry.pad = id;
	if (f->tcp_flags & (TCP_FLAG_FIN | TCP_FLAG_RST))
		entry.flags |= SLUICE_CT_F_CLOSING;
	bpf_map_update_elem(&sluice_ct4_v1, &f->key, &entry, BPF_ANY);
	return LB_BACKEND_FOUND;
}

/*
 * A pod's packet of flow f (IPv4 header of ihl bytes at IP_OFF): when it
 * goes to a frontend, rewrite its destination to the flow's backend (L3
 * and L4 checksums) and f with it, so the caller polices and forwards the
 * translated packet; f->ct_pad carries the rev-NAT index into the flow's
 * new tracking entry. Returns 1 when translated (packet pointers are then
 * stale), 0 when not, or DROP(). ICMP errors about a Service flow, and
 * protocols other than TCP and UDP, are not translated in this step.
 */
static __always_inline int lb4_translate(struct __sk_buff *skb, struct flow *f, __u32 ihl)
{
	__u32 l4 = IP_OFF + ihl;
	struct sluice_lb4_backend be;
	__u16 rev_nat = 0, svc_flags = 0;
	__u8 proto = f->key.proto;

	if (!cfg_lb || f->icmp_error || (proto != IPPROTO_TCP && proto != IPPROTO_UDP))
		return 0;
	switch (lb4_select(f, bpf_ktime_get_ns(), SLUICE_LB_SCOPE_INT, &be, &rev_nat, &svc_flags)) {
	case LB_NOT_FRONTEND:
		return 0;
	case LB_NO_BACKEND:
		/* kube-proxy still runs beside this step: its rules get it. */
		metrics_count(SLUICE_LB_NO_BACKEND, SLUICE_DIR_EGRESS, 0);
		return 0;
	default:
		break;
	}
	/* Hairpin (a pod reaching itself through its Service): its answer
	 * would never leave the pod to be given the frontend back. Left to
	 * kube-proxy, which masquerades it, until sluice does hairpin; the
	 * flow's first packet then tracks it as an untranslated flow. */
	if (be.addr == f->key.saddr)
		return 0;
	/* A later fragment has no L4 header: only the address changes. */
	if (nat_rewrite(skb, f->later_fragment ? 0 : proto, l4, IP_OFF + offsetof(struct iphdr, daddr),
			f->key.daddr, be.addr, f->later_fragment ? 0 : l4 + 2, f->key.dport,
			be.port))
		return DROP(SLUICE_DROP_REDIRECT);
	f->key.daddr = be.addr;
	f->key.dport = be.port;
	if (!f->later_fragment)
		f->policy_port = bpf_ntohs(be.port);
	f->ct_pad = rev_nat;
	metrics_count(SLUICE_LB_TRANSLATED, SLUICE_DIR_EGRESS, 0);
	return 1;
}

/*
 * A reply of a translated flow (f: backend -> client, its flow's entry
 * flagged SLUICE_CT_F_LB_BACKEND): its source becomes the frontend the
 * client sent to. Returns 1 when rewritten (packet pointers stale), 0 when
 * the packet is no such reply, or DROP().
 */
static __always_inline int lb4_reverse(struct __sk_buff *skb, const struct flow *f, __u32 ihl,
				       __u32 dir)
{
	__u32 l4 = IP_OFF + ihl, rn;
	struct sluice_lb4_revnat *fe;
	struct sluice_ct_value *ct;
	struct sluice_ct_key k;

	if (!cfg_lb || f->icmp_error)
		return 0;
	ct_reverse(&f->key, &k);
	ct = ct_live(&k, bpf_ktime_get_ns());
	if (!ct || !(ct->flags & SLUICE_CT_F_LB_BACKEND))
		return 0;
	rn = ct->pad;
	fe = bpf_map_lookup_elem(&sluice_lbrn4_v1, &rn);
	if (!fe)
		return 0;
	if (nat_rewrite(skb, f->later_fragment ? 0 : f->key.proto, l4,
			IP_OFF + offsetof(struct iphdr, saddr), f->key.saddr, fe->addr,
			f->later_fragment ? 0 : l4, f->key.sport, fe->port))
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
