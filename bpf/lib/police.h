/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Connection tracking and policy together: a flow's first packet is judged
 * by the sending pod's egress policy and the receiving pod's ingress
 * policy, and tracked when allowed; its later packets, replies and ICMP
 * errors about it pass on the entry (lib/ct.h, lib/policy.h).
 */
#ifndef SLUICE_BPF_POLICE_H
#define SLUICE_BPF_POLICE_H

#include "ct.h"
#include "endpoint.h"
#include "metrics.h"
#include "policy.h"
#include "flow.h"

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
	__u32 rule;
	int audit = 0;

	if (peer.identity != SLUICE_ID_HOST && f->key.saddr != f->key.daddr) {
		v = policy_decide(dst_ep, SLUICE_DIR_INGRESS, &peer, f, &audit, &rule);
		flow_note_rule(rule, audit);
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
	__u32 rule_e = SLUICE_FLOW_RULE_NONE, rule_i = SLUICE_FLOW_RULE_NONE;
	int audit_e = 0, audit_i = 0, forged = 0;
	enum ct_status st;

	st = ct_lookup(f, now, set, ct_flags);
	flow_note(f, st, src_ep, dst_ep, now);
	switch (st) {
	case CT_ESTABLISHED:
		/* Tracked while its address was no pod here: the pod that has
		 * the address now has not admitted it yet. */
		if (dst_ep && !(*ct_flags & SLUICE_CT_F_DST_POLICED))
			return police_late_dst(f, dst_ep, src_peer, now);
		return 0;
	case CT_REPLY:
		return 0;
	case CT_RELATED:
		/* About a flow into dst_ep's address tracked while it was no
		 * pod here (the entry is the quoted packet's reverse, without
		 * DST_POLICED): the pod has not admitted that flow, so the
		 * error is judged by its policy as a flow of its own. An
		 * error about the pod's own flow matches the quoted packet. */
		if (dst_ep && !(*ct_flags & SLUICE_CT_F_DST_POLICED) && !ct_live(&f->inner, now))
			break;
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
		v = policy_decide(src_ep, SLUICE_DIR_EGRESS, &peer, f, &audit_e, &rule_e);
		if (v != POLICY_ALLOW) {
			flow_note_rule(rule_e, 0);
			return police_drop(v, forged);
		}
	}
	if (dst_ep) {
		peer = src_peer ? *src_peer : ipcache_lookup(f->key.saddr);
		if (stack_unless_pod && !peer.tunnel_endpoint)
			set |= SLUICE_CT_F_VIA_STACK;
		/* The node may always reach its pods (kubelet probes); a pod
		 * may always reach itself, through a Service too (hairpin:
		 * under kube-proxy it arrives masqueraded from the node). */
		if (peer.identity != SLUICE_ID_HOST && f->key.saddr != f->key.daddr &&
		    !f->hairpin) {
			v = policy_decide(dst_ep, SLUICE_DIR_INGRESS, &peer, f, &audit_i, &rule_i);
			if (v != POLICY_ALLOW) {
				flow_note_rule(rule_i, 0);
				return police_drop(v, forged);
			}
		}
	}
	/* The flow's record names one rule: the one an Audit policy would
	 * drop it by, else the receiving pod's, else the sender's. */
	flow_note_rule(audit_i ? rule_i : audit_e ? rule_e :
		       rule_i != SLUICE_FLOW_RULE_NONE ? rule_i : rule_e, audit_i | audit_e);
	if (audit_i | audit_e)
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

/* A packet that enters a pod from outside it (ip parsed, the cursor past
 * it; src_peer: its source's ipcache entry, or NULL): tracked (the flow
 * gets the flags in set, and see track_and_police for stack_unless_pod;
 * *ct_flags: the flags it has), and checked against the pod's ingress
 * policy. *dst is the pod, or NULL when the packet is not addressed to one
 * (nothing to police). f: the caller's zeroed flow, filled when *dst is
 * set. */
static __always_inline int police_ingress(struct cursor *c, struct iphdr *ip,
					  const struct sluice_ipcache_value *src_peer,
					  struct sluice_endpoint **dstp, __u32 set,
					  int stack_unless_pod, __u32 *ct_flags, struct flow *f)
{
	int ret;

	*ct_flags = 0;
	*dstp = endpoint_lookup4(ip->daddr);
	if (!*dstp)
		return 0;
	ret = parse_flow(c, ip, f);
	if (IS_DROP(ret))
		return ret;
	return track_and_police(f, NULL, *dstp, src_peer, SLUICE_DIR_INGRESS, set,
				stack_unless_pod, ct_flags);
}

#endif /* SLUICE_BPF_POLICE_H */
