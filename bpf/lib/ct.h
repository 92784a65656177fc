/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Connection tracking: policy is evaluated on a flow's first packet; the
 * rest of the flow, its replies and ICMP errors about it pass on the entry
 * that first packet created. Entries age out by protocol; the LRU map
 * evicts the coldest when full. An ICMP error speaks for a flow only when
 * it comes from where such an error can come from (ct_icmp_error_plausible).
 */
#ifndef SLUICE_BPF_CT_H
#define SLUICE_BPF_CT_H

#include "l4.h"
#include "endpoint.h"
#include "policy.h"

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SLUICE_CT_MAX);
	__type(key, struct sluice_ct_key);
	__type(value, struct sluice_ct_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_ct4_map SEC(".maps");

/* CT_FORGED: an ICMP error about a tracked flow from a source that cannot
 * speak for it; to be judged as a new flow. */
enum ct_status { CT_NEW = 0, CT_ESTABLISHED, CT_REPLY, CT_RELATED, CT_FORGED };

#define NSEC_PER_SEC 1000000000ull

static __always_inline __u64 ct_timeout(__u8 proto, __u32 flags)
{
	if (flags & SLUICE_CT_F_CLOSING)
		return SLUICE_CT_CLOSING_TIMEOUT * NSEC_PER_SEC;
	if (proto == IPPROTO_TCP || proto == IPPROTO_SCTP)
		return SLUICE_CT_TCP_TIMEOUT * NSEC_PER_SEC;
	if (proto == IPPROTO_ICMP)
		return SLUICE_CT_ICMP_TIMEOUT * NSEC_PER_SEC;
	return SLUICE_CT_UDP_TIMEOUT * NSEC_PER_SEC;
}

static __always_inline void ct_reverse(const struct sluice_ct_key *k, struct sluice_ct_key *r)
{
	r->saddr = k->daddr;
	r->daddr = k->saddr;
	r->sport = k->dport;
	r->dport = k->sport;
	r->proto = k->proto;
	r->pad[0] = r->pad[1] = r->pad[2] = 0;
}

/* The entry for k when it is live (not past its timeout), untouched;
 * NULL when absent or expired. */
static __always_inline struct sluice_ct_value *ct_live(const struct sluice_ct_key *k, __u64 now)
{
	struct sluice_ct_value *v = bpf_map_lookup_elem(&sluice_ct4_map, k);

	if (!v || ktime_older(now, v->last_seen, ct_timeout(k->proto, v->flags)))
		return NULL;
	return v;
}

/* Refresh the live entry v for a packet with tcp_flags, and give it the
 * flags in set. *had: its flags before this packet. */
static __always_inline void ct_refresh(struct sluice_ct_value *v, __u64 now, __u8 tcp_flags,
				       __u32 set, __u32 *had)
{
	*had = v->flags;
	/* Not back in time: another CPU may have refreshed it since now. */
	if ((__s64)(now - v->last_seen) > 0)
		v->last_seen = now;
	if (tcp_flags & (TCP_FLAG_FIN | TCP_FLAG_RST))
		set |= SLUICE_CT_F_CLOSING;
	if (set & ~v->flags)
		v->flags |= set;
}

/* A live entry for k, refreshed and given the flags in set; NULL when
 * absent or expired. *had: its flags before this packet. A Service flow's
 * client-side entry (SLUICE_CT_F_LB_FRONTEND, lib/lb.h) only remembers a
 * translation: no packet passes on it (a forged reply from the frontend
 * address would otherwise be taken for one). */
static __always_inline struct sluice_ct_value *ct_touch(const struct sluice_ct_key *k, __u64 now,
							 __u8 tcp_flags, __u32 set, __u32 *had)
{
	struct sluice_ct_value *v = ct_live(k, now);

	if (!v || (v->flags & SLUICE_CT_F_LB_FRONTEND))
		return NULL;
	ct_refresh(v, now, tcp_flags, set, had);
	return v;
}

/*
 * Can the ICMP error f be about its quoted packet (f->inner)? It must go to
 * the quoted packet's sender and come from the packet's destination (the
 * flow's peer) or from something that is not a pod (no label identity): a
 * router on the path, a node (a PMTU error from the node's own forwarding,
 * a node's conntrack translating an error back), the world. A pod that is
 * not the peer is no router on the flow's path; were it one, a policy rule
 * for ICMP from it still lets its errors in. Pods cannot fake their source
 * (from_pod drops that), so a pod speaks only for its own flows.
 */
static __always_inline int ct_icmp_error_plausible(const struct flow *f)
{
	if (f->key.daddr != f->inner.saddr)
		return 0;
	if (f->key.saddr == f->inner.daddr)
		return 1;
	/* A pod on this node is one even before the ipcache has its Pod. */
	if (endpoint_lookup4(f->key.saddr))
		return 0;
	return ipcache_lookup(f->key.saddr).identity < SLUICE_ID_FIRST_LABEL;
}

/*
 * An ICMP error's status: CT_RELATED to the tracked flow it quotes, when it
 * can be about it; CT_FORGED when the flow is tracked but the error cannot
 * be about it; else CT_NEW. Never matched as a flow of its own: its tuple
 * has no ports, and an ICMP entry with id 0 would pass any error.
 */
static __always_inline enum ct_status ct_lookup_error(const struct flow *f, __u64 now,
						      __u32 *flags)
{
	struct sluice_ct_key rev;

	ct_reverse(&f->inner, &rev);
	if (!ct_icmp_error_plausible(f)) {
		/* Not refreshed: a forged error must not keep a flow alive. */
		if (ct_live(&f->inner, now) || ct_live(&rev, now))
			return CT_FORGED;
		return CT_NEW;
	}
	/* The error travels back towards the offending packet's sender. */
	if (ct_touch(&f->inner, now, 0, 0, flags) || ct_touch(&rev, now, 0, 0, flags))
		return CT_RELATED;
	return CT_NEW;
}

/* A TCP SYN without ACK (or RST): a connection's first packet. */
static __always_inline int ct_is_syn(const struct flow *f)
{
	return f->key.proto == IPPROTO_TCP &&
	       (f->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK | TCP_FLAG_RST)) == TCP_FLAG_SYN;
}

/*
 * UDP has no SYN: a datagram starts a new flow on its tuple's entry when
 * the entry was made for another kind of flow and the datagram's own kind
 * is sure: a Service flow whose backend was chosen for this very datagram
 * (lb_new) on an entry that is direct or another frontend's, or a pod's
 * direct datagram on a Service flow's entry. An unconnected socket that
 * sends to a pod and to Services sharing it from one port (a resolver, say)
 * would otherwise have its answers given the first flow's source. Only the
 * tuple's own source sends on it (pods cannot spoof; outside clients are
 * as trusted as UDP ever is), and the last flow it started wins.
 */
static __always_inline int ct_udp_restarts(const struct flow *f, const struct sluice_ct_value *v)
{
	if (f->key.proto != IPPROTO_UDP)
		return 0;
	if (f->ct_kind == CT_KIND_LB && f->lb_new)
		return !(v->flags & SLUICE_CT_F_LB_BACKEND) || v->pad != f->ct_pad;
	if (f->ct_kind == CT_KIND_DIRECT)
		return !!(v->flags & SLUICE_CT_F_LB_BACKEND);
	return 0;
}

/*
 * Does f, sent in the direction of its live entry v, start a new flow on
 * the same tuple (a client reusing its port)? Only a SYN does, and only on
 * an entry whose connection is over or never began: closing (FIN or RST
 * seen), or unanswered and made for another kind of flow than this one
 * (Service-translated or direct, another frontend's rev-NAT index). Kept,
 * the old entry would keep the old flow's flags and pad: a Service flow
 * without rev-NAT, a direct flow reverse-translated, the wrong frontend.
 * An open, answered entry is never replaced: a forged or retransmitted SYN
 * cannot take over a live flow; and only the tuple's own source can send
 * on it (from_pod drops spoofed sources, the tunnel checks inner ones).
 */
static __always_inline int ct_syn_restarts(const struct flow *f, const struct sluice_ct_value *v)
{
	if (!ct_is_syn(f))
		return ct_udp_restarts(f, v);
	if (v->flags & SLUICE_CT_F_CLOSING)
		return 1;
	if ((v->flags & SLUICE_CT_F_REPLY_SEEN) || f->ct_kind == CT_KIND_ANY)
		return 0;
	if (f->ct_kind == CT_KIND_LB)
		return !(v->flags & SLUICE_CT_F_LB_BACKEND) || v->pad != f->ct_pad;
	return !!(v->flags & SLUICE_CT_F_LB_BACKEND);
}

/*
 * The flow's status, and in *flags the flags the entry it matched had
 * before this packet (0 for a new flow). A SYN that starts a new
 * connection on a finished flow's tuple is CT_NEW (ct_syn_restarts). set:
 * flags to add to a matching entry of the flow itself (established or
 * reply; not the entry an ICMP error is related to).
 */
static __always_inline enum ct_status ct_lookup(const struct flow *f, __u64 now, __u32 set,
						__u32 *flags)
{
	struct sluice_ct_key rev;
	struct sluice_ct_value *v;

	*flags = 0;
	if (f->icmp_error)
		return ct_lookup_error(f, now, flags);
	v = ct_live(&f->key, now);
	if (v && !(v->flags & SLUICE_CT_F_LB_FRONTEND)) {
		/* A new connection on the tuple: the caller creates its entry. */
		if (ct_syn_restarts(f, v))
			return CT_NEW;
		ct_refresh(v, now, f->tcp_flags, set, flags);
		return CT_ESTABLISHED;
	}
	ct_reverse(&f->key, &rev);
	if (ct_touch(&rev, now, f->tcp_flags, set | SLUICE_CT_F_REPLY_SEEN, flags))
		return CT_REPLY;
	return CT_NEW;
}

/* Add flags to the (live) entry for k. */
static __always_inline void ct_set_flags(const struct sluice_ct_key *k, __u64 now, __u32 flags)
{
	struct sluice_ct_value *v = ct_live(k, now);

	if (v && (flags & ~v->flags))
		v->flags |= flags;
}

static __always_inline void ct_create(const struct flow *f, __u64 now, __u32 flags)
{
	struct sluice_ct_value v = { .last_seen = now, .flags = flags, .pad = f->ct_pad };

#ifdef SLUICE_UPGRADE_TEST_LAYOUT
	v.created = now;
#endif

	if (f->tcp_flags & (TCP_FLAG_FIN | TCP_FLAG_RST))
		v.flags |= SLUICE_CT_F_CLOSING;
	bpf_map_update_elem(&sluice_ct4_map, &f->key, &v, BPF_ANY);
}

/*
 * A packet of flow f that the host stack forwarded, seen where it leaves
 * the stack towards a pod or another node: the flow is the stack's from now
 * on (SLUICE_CT_F_VIA_STACK), tracked if it was not. Policy for it was
 * decided where it entered (from_pod) or is decided by the caller.
 * Returns CT_VIA_FIRST when this is the flow's first packet to leave the
 * stack (it was untracked, expired, or not yet the stack's), and
 * CT_VIA_REPLY when the packet is a reply (the other end started the flow).
 */
#define CT_VIA_FIRST 1
#define CT_VIA_REPLY 2

static __always_inline int ct_track_via_stack(const struct flow *f, __u64 now)
{
	enum ct_status st;
	__u32 flags;

	if (f->icmp_error)
		return 0; /* an error about a flow is not a flow */
	st = ct_lookup(f, now, SLUICE_CT_F_VIA_STACK, &flags);
	if (st == CT_NEW) {
		/* A later fragment belongs to the flow its first fragment
		 * tracked here; on its own it starts nothing. */
		if (f->later_fragment)
			return 0;
		ct_create(f, now, SLUICE_CT_F_VIA_STACK);
		return CT_VIA_FIRST;
	}
	return (flags & SLUICE_CT_F_VIA_STACK ? 0 : CT_VIA_FIRST) |
	       (st == CT_REPLY ? CT_VIA_REPLY : 0);
}

#endif /* SLUICE_BPF_CT_H */
