/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Flows: per-flow state, the records that go to the agent, and the export
 * losses (include/sluice/datapath.h, "Flows"; docs/OBSERVABILITY.md).
 *
 * Two steps per packet. Where connection tracking and policy judge it
 * (track_and_police, lib/police.h) flow_note writes what is known there
 * into this CPU's scratch: the flow's tuple in its original direction,
 * the packet's direction in it, whether it is new, the policy rule that
 * decided, the pod. At the program's single exit, where the final verdict
 * is known, flow_finish takes the scratch (or, for a packet dropped before
 * it got that far, the tuple parsed afresh) and updates the flow's entry:
 * one hash lookup on an established flow, counters by atomic adds, and a
 * record to the ring buffer only on an event (START, DROP, END, UPDATE).
 * A program never nests on a CPU with another that uses the scratch (tc
 * runs in softirq or with bottom halves off), and flow_finish clears it.
 *
 * With cfg_flows 0 (the agent's --flows off) every function here returns
 * at once: the verifier drops the dead code.
 */
#ifndef SLUICE_BPF_FLOW_H
#define SLUICE_BPF_FLOW_H

#include "common.h"
#include "config.h"
#include "parse.h"
#include "l4.h"
#include "ct.h"
#include "endpoint.h"
#include "policy.h"
#include "flow_tcp.h"

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SLUICE_FLOW_MAX);
	__type(key, struct sluice_ct_key);
	__type(value, struct sluice_flow4_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_flow4_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, SLUICE_FLOW_RB_BYTES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_flowrb_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SLUICE_FLOW_ST_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_flowst_v1 SEC(".maps");

/* What the verdict path learnt about the packet's flow, for the exit. */
struct flow_scratch {
	struct sluice_ct_key key;	/* the flow, direction 0 */
	__u32 rule;			/* SLUICE_FLOW_RULE_* or the deciding rule */
	__u32 ifindex;			/* the pod's host veth; 0: the packet's device */
	__be32 svc_addr;		/* Service frontend this packet was sent to */
	__be16 svc_port;
	__u8 valid;			/* written for the packet being judged */
	__u8 pkt_dir;			/* 0: key's direction, 1: a reply */
	__u8 is_new;			/* no tracked flow: policy judged it */
	__u8 audit;			/* allowed; an Audit policy would drop it */
	__u8 dir;			/* the program's SLUICE_DIR_* */
	__u8 pad;
	__s32 ret;			/* the program's verdict or DROP() */
	__u32 reason;			/* its forwarding reason */
	__u32 len;			/* skb->len as the packet came */
	__u64 now;
	__u8 event;			/* the record this packet makes (0: none) */
	__u8 pad2[3];
	__u32 suppressed;		/* the record's drops_suppressed */
	__u32 stat;			/* keys, here to spare flow_account's stack */
	struct sluice_ipcache_key ipk;
	struct flow_tcp tcp;
	struct flow f;			/* a dropped packet's tuple, parsed at the exit */
	struct sluice_flow4_value init;	/* a new entry, built here: the stack is short */
};

/* Per-CPU, never pinned: each object has its own, as only one program at a
 * time runs on a CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct flow_scratch);
} sluice_flowsc SEC(".maps");

static __always_inline struct flow_scratch *flow_scratch(void)
{
	__u32 zero = 0;

	if (!cfg_flows)
		return NULL;
	return bpf_map_lookup_elem(&sluice_flowsc, &zero);
}

/* Count an export loss; the key lives in sc (flow_account's stack is
 * kept small). */
static __always_inline void flow_stat(struct flow_scratch *sc, __u32 stat)
{
	__u64 *n;

	sc->stat = stat;
	n = bpf_map_lookup_elem(&sluice_flowst_v1, &sc->stat);
	if (n)
		*n += 1; /* per-CPU */
}

/*
 * track_and_police saw f at now with connection-tracking status st (src_ep: the
 * sending local pod when its egress policy applies, dst_ep the receiving
 * one when its ingress policy does). ICMP errors related to a tracked flow
 * are that flow's business, not a flow: not noted.
 */
static __always_inline void flow_note(const struct flow *f, enum ct_status st,
				      const struct sluice_endpoint *src_ep,
				      const struct sluice_endpoint *dst_ep, __u64 now)
{
	struct flow_scratch *sc = flow_scratch();

	if (!sc)
		return;
	sc->now = now;
	sc->valid = st != CT_RELATED;
	if (st == CT_REPLY)
		ct_reverse(&f->key, &sc->key);
	else
		sc->key = f->key;
	sc->pkt_dir = st == CT_REPLY;
	sc->is_new = st == CT_NEW || st == CT_FORGED;
	sc->rule = SLUICE_FLOW_RULE_NONE;
	sc->audit = 0;
	sc->ifindex = src_ep ? src_ep->ifindex : dst_ep ? dst_ep->ifindex : 0;
	sc->svc_addr = 0;
	sc->svc_port = 0;
}

/* The policy rule that decided the noted flow (policy_decide's *rule). */
static __always_inline void flow_note_rule(__u32 rule, int audit)
{
	struct flow_scratch *sc = flow_scratch();

	if (!sc)
		return;
	sc->rule = rule;
	sc->audit = !!audit;
}

/* The noted flow was sent to Service frontend (addr, port). */
static __always_inline void flow_note_service(__be32 addr, __be16 port)
{
	struct flow_scratch *sc = flow_scratch();

	if (!sc || !sc->valid)
		return;
	sc->svc_addr = addr;
	sc->svc_port = port;
}

/* Whatever was noted does not count (the packet goes on to another
 * program that judges it again). */
static __always_inline void flow_forget(void)
{
	struct flow_scratch *sc = flow_scratch();

	if (sc)
		sc->valid = 0;
}

/* The identity policy sees for addr: a local pod's own, else the
 * ipcache's. Only for a new entry; the keys live in sc. */
static __always_inline __u32 flow_identity(struct flow_scratch *sc, __be32 addr)
{
	struct sluice_endpoint *ep;
	struct sluice_ipcache_value *v;

	sc->ipk.prefixlen = 32;
	sc->ipk.ip = addr;
	ep = bpf_map_lookup_elem(&sluice_ep_v2, &sc->ipk.ip);
	if (ep)
		return ep->identity;
	v = bpf_map_lookup_elem(&sluice_ipc_v2, &sc->ipk);
	return v ? v->identity : SLUICE_ID_WORLD;
}

/* A packet dropped before track_and_police noted it (a forged source, a
 * tunnel check): its own tuple, parsed afresh, as a new flow. pod_only: only
 * for packets to a local pod (the uplink sees everything the world sends;
 * prefilter drops are counted, not recorded). 0: no tuple to record (a
 * truncated or malformed packet). */
static __always_inline int flow_from_packet(struct __sk_buff *skb, struct flow_scratch *sc,
					    int pod_only, __u32 reason)
{
	struct ethhdr *eth;
	struct iphdr *ip;
	struct cursor c;

	cursor_init(&c, skb);
	if (parse_eth(&c, &eth) != ETH_P_IP || IS_DROP(parse_ipv4(&c, &ip)))
		return 0;
	if (pod_only && (reason == SLUICE_DROP_PREFILTER || !endpoint_lookup4(ip->daddr)))
		return 0;
	__builtin_memset(&sc->f, 0, sizeof(sc->f));
	if (IS_DROP(parse_flow(&c, ip, &sc->f)))
		return 0;
	sc->key = sc->f.key;
	sc->now = bpf_ktime_get_ns();
	sc->pkt_dir = 0;
	sc->is_new = 1;
	sc->rule = SLUICE_FLOW_RULE_NONE;
	sc->audit = 0;
	sc->ifindex = 0;
	sc->svc_addr = 0;
	sc->svc_port = 0;
	return 1;
}

/* A record of event for v to the ring buffer; counted when it has no room. */
static __always_inline void flow_emit(struct flow_scratch *sc, const struct sluice_flow4_value *v)
{
	struct sluice_flow4_record *r;

	r = bpf_ringbuf_reserve(&sluice_flowrb_v1, sizeof(*r), 0);
	if (!r) {
		flow_stat(sc, SLUICE_FLOW_ST_RB_FULL);
		return;
	}
	r->time = sc->now;
	r->key = sc->key;
	r->event = sc->event;
	r->verdict = v->verdict;
	r->reason = v->reason;
	r->ifindex = v->ifindex;
	r->src_identity = v->src_identity;
	r->dst_identity = v->dst_identity;
	r->policy_rule = v->policy_rule;
	r->svc_addr = v->svc_addr;
	r->svc_port = v->svc_port;
	r->tcp_flags[0] = v->tcp_flags[0];
	r->tcp_flags[1] = v->tcp_flags[1];
	r->dir = v->dir;
	r->pkt_dir = sc->pkt_dir;
	r->pad = 0;
	r->drops_suppressed = sc->suppressed;
	r->drops = v->drops;
	r->first_seen = v->first_seen;
	r->packets[0] = v->packets[0];
	r->packets[1] = v->packets[1];
	r->bytes[0] = v->bytes[0];
	r->bytes[1] = v->bytes[1];
	r->retrans[0] = v->retrans[0];
	r->retrans[1] = v->retrans[1];
	r->rtt_min_us = v->rtt_min_us;
	r->rtt_srtt_us = v->rtt_srtt_us;
	bpf_ringbuf_submit(r, 0);
}

/* A new entry for the scratch's flow; NULL when the map cannot take it. */
static __always_inline struct sluice_flow4_value *flow_create(struct flow_scratch *sc)
{
	struct sluice_flow4_value *n = &sc->init;

	__builtin_memset(n, 0, sizeof(*n));
	n->first_seen = sc->now;
	n->last_report = sc->now;
	n->src_identity = flow_identity(sc, sc->key.saddr);
	n->dst_identity = flow_identity(sc, sc->key.daddr);
	n->ifindex = sc->ifindex;
	n->dir = sc->dir;
	if (bpf_map_update_elem(&sluice_flow4_v1, &sc->key, n, BPF_ANY)) {
		flow_stat(sc, SLUICE_FLOW_ST_MAP_FULL);
		return NULL;
	}
	sc->event = SLUICE_FLOW_EV_START;
	return bpf_map_lookup_elem(&sluice_flow4_v1, &sc->key);
}

/* The packet counted in v, and the event it makes, if any, in sc->event. */
static __always_inline void flow_count(struct flow_scratch *sc, struct sluice_flow4_value *v)
{
	__u32 d = sc->pkt_dir & 1, fl;
	int drop = IS_DROP(sc->ret);
	__u8 tcpf;

	__sync_fetch_and_add(&v->packets[d], 1);
	__sync_fetch_and_add(&v->bytes[d], sc->len);
	if ((__s64)(sc->now - v->last_seen) > 0)
		v->last_seen = sc->now;
	v->reason = (__u16)(drop ? DROP_REASON(sc->ret) : sc->reason);
	v->verdict = drop ? SLUICE_FLOW_DROPPED : sc->audit ? SLUICE_FLOW_AUDIT :
		     sc->svc_addr ? SLUICE_FLOW_TRANSLATED : SLUICE_FLOW_FORWARDED;
	/* Policy spoke for this packet only when it judged a new flow. */
	if (sc->is_new || sc->event)
		v->policy_rule = sc->rule;
	if (sc->svc_addr && !v->svc_addr) {
		v->svc_addr = sc->svc_addr;
		v->svc_port = sc->svc_port;
	}
	if (drop)
		__sync_fetch_and_add(&v->drops, 1);
	if (!sc->tcp.valid)
		return;
	tcpf = sc->tcp.flags;
	if (tcpf & ~v->tcp_flags[d])
		v->tcp_flags[d] |= tcpf;
	if (!drop) {
		fl = (tcpf & TCP_FLAG_RST ? SLUICE_FLOW_F_RST : 0) |
		     (tcpf & TCP_FLAG_FIN ? (d ? SLUICE_FLOW_F_FIN1 : SLUICE_FLOW_F_FIN0) : 0);
		if (fl & ~v->flags)
			v->flags |= fl;
		flow_tcp_update(v, &sc->tcp, d, sc->now);
	}
	fl = v->flags;
	if (!sc->event && !(fl & SLUICE_FLOW_F_ENDED) &&
	    ((fl & SLUICE_FLOW_F_RST) ||
	     (fl & (SLUICE_FLOW_F_FIN0 | SLUICE_FLOW_F_FIN1)) ==
		     (SLUICE_FLOW_F_FIN0 | SLUICE_FLOW_F_FIN1))) {
		v->flags |= SLUICE_FLOW_F_ENDED;
		sc->event = SLUICE_FLOW_EV_END;
	}
}

/*
 * The packet in sc (sc->len bytes, judged by a program of direction
 * sc->dir with verdict sc->ret and, when it was not dropped, sc->reason;
 * its TCP header in sc->tcp): its flow's entry updated and the event's
 * record sent (see the contract). One record per packet at most: START
 * before END before DROP before UPDATE. A global function: the verifier
 * checks it once, on its own, not again for every path of the program
 * that leads to its call; and its stack is kept to a few bytes (the state
 * is in sc): the programs that call it use most of theirs.
 */
__noinline int flow_account(struct flow_scratch *sc)
{
	struct sluice_flow4_value *v;

	if (!sc)
		return 0;
	sc->event = 0;
	v = bpf_map_lookup_elem(&sluice_flow4_v1, &sc->key);
	/* A new connection on the tuple of one that ended. */
	if (v && sc->is_new && (v->flags & (SLUICE_FLOW_F_ENDED | SLUICE_FLOW_F_RST)) &&
	    !IS_DROP(sc->ret))
		v = NULL;
	if (!v)
		v = flow_create(sc);
	if (!v)
		return 0;
	flow_count(sc, v);
	if (!sc->event && IS_DROP(sc->ret)) {
		if (ktime_older(sc->now, v->last_report, SLUICE_FLOW_DROP_INTERVAL_NS - 1)) {
			sc->event = SLUICE_FLOW_EV_DROP;
		} else {
			__sync_fetch_and_add(&v->drops_suppressed, 1);
			flow_stat(sc, SLUICE_FLOW_ST_RATE_LIMITED);
			return 0;
		}
	}
	if (!sc->event && !(v->flags & SLUICE_FLOW_F_ENDED) &&
	    ktime_older(sc->now, v->last_report, SLUICE_FLOW_REPORT_INTERVAL_NS))
		sc->event = SLUICE_FLOW_EV_UPDATE;
	if (!sc->event)
		return 0;
	v->last_report = sc->now;
	sc->suppressed = 0;
	if (sc->event != SLUICE_FLOW_EV_START && v->drops_suppressed) {
		sc->suppressed = v->drops_suppressed;
		v->drops_suppressed = 0;
	}
	flow_emit(sc, v);
	return 0;
}

/* The TCP header of the packet leaving (lib/flow_tcp.h), by a global
 * function of its own for the same reasons as flow_account. */
__noinline int flow_tcp_read(struct __sk_buff *skb, struct flow_tcp *t)
{
	if (!t)
		return 0;
	flow_tcp_parse(skb, t);
	return 0;
}

/*
 * At a program's exit (ret: its verdict or DROP(); reason: the forwarding
 * reason; dir: the program's SLUICE_DIR_*; len: skb->len as it came in):
 * the packet counted in its flow, if the verdict path noted one or the
 * packet was dropped with a tuple to record (pod_only: see
 * flow_from_packet).
 */
static __always_inline void flow_finish(struct __sk_buff *skb, int ret, __u32 reason, __u32 dir,
					__u32 len, int pod_only)
{
	struct flow_scratch *sc = flow_scratch();

	if (!sc)
		return;
	if (!sc->valid) {
		if (!IS_DROP(ret) || !flow_from_packet(skb, sc, pod_only, DROP_REASON(ret)))
			return;
	}
	sc->valid = 0;
	sc->ret = ret;
	sc->reason = reason;
	sc->dir = (__u8)dir;
	sc->len = len;
	if (!sc->ifindex)
		sc->ifindex = skb->ifindex;
	sc->tcp.valid = 0;
	if (sc->key.proto == IPPROTO_TCP)
		flow_tcp_read(skb, &sc->tcp);
	flow_account(sc);
}

#endif /* SLUICE_BPF_FLOW_H */
