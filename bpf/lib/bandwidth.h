/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Pod bandwidth limits (runtimeConfig.bandwidth, docs/CNI.md): a token
 * bucket per limited pod and direction in sluice_bw_v1 (lib/bw_bucket.h),
 * charged once per packet: egress in from_pod, ingress where a packet is
 * handed to the pod (deliver_to_pod in lib/forward.h for every redirect,
 * to_pod for what the host stack delivers). A pod without a limit costs
 * one flag test; its packets never look the map up.
 */
#ifndef SLUICE_BPF_BANDWIDTH_H
#define SLUICE_BPF_BANDWIDTH_H

#include "common.h"
#include "bw_bucket.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SLUICE_BW_MAX);
	__type(key, struct sluice_bw_key);
	__type(value, struct sluice_bw);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_bw_v1 SEC(".maps");

/* Charge len bytes to the bucket of (host veth ifindex, dir). No bucket
 * (the flag is set a moment before the agent's map write, or after its
 * delete): the packet passes, as for an unlimited pod. */
static __always_inline int bw_charge(__u32 ifindex, __u32 dir, __u32 len)
{
	struct sluice_bw_key k = { .ifindex = ifindex, .dir = dir };
	struct sluice_bw *b = bpf_map_lookup_elem(&sluice_bw_v1, &k);
	__u64 now;
	int pass;

	if (!b)
		return 0;
	now = bpf_ktime_get_ns();
	bpf_spin_lock(&b->lock);
	pass = bw_bucket(b, now, len);
	bpf_spin_unlock(&b->lock);
	return pass ? 0 : DROP(SLUICE_DROP_BANDWIDTH);
}

/* What pod ep sends (skb at its host veth's ingress). */
static __always_inline int bw_egress(struct __sk_buff *skb, const struct sluice_endpoint *ep)
{
	if (!(ep->flags & SLUICE_EP_F_BW_EGRESS))
		return 0;
	return bw_charge(ep->ifindex, SLUICE_DIR_EGRESS, skb->len);
}

/* What pod ep receives. */
static __always_inline int bw_ingress(struct __sk_buff *skb, const struct sluice_endpoint *ep)
{
	if (!(ep->flags & SLUICE_EP_F_BW_INGRESS))
		return 0;
	return bw_charge(ep->ifindex, SLUICE_DIR_INGRESS, skb->len);
}

#endif /* SLUICE_BPF_BANDWIDTH_H */
