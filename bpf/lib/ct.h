/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Connection tracking: policy is evaluated on a flow's first packet; the
 * rest of the flow, its replies and ICMP errors about it pass on the entry
 * that first packet created. Entries age out by protocol; the LRU map
 * evicts the coldest when full.
 */
#ifndef SLUICE_BPF_CT_H
#define SLUICE_BPF_CT_H

#include "l4.h"

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SLUICE_CT_MAX);
	__type(key, struct sluice_ct_key);
	__type(value, struct sluice_ct_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_ct4_v1 SEC(".maps");

enum ct_status { CT_NEW = 0, CT_ESTABLISHED, CT_REPLY, CT_RELATED };

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

/* A live entry for k, refreshed; NULL when absent or expired. */
static __always_inline struct sluice_ct_value *ct_touch(const struct sluice_ct_key *k, __u64 now,
							 __u8 tcp_flags)
{
	struct sluice_ct_value *v = bpf_map_lookup_elem(&sluice_ct4_v1, k);

	if (!v || now - v->last_seen > ct_timeout(k->proto, v->flags))
		return NULL;
	v->last_seen = now;
	if (tcp_flags & (TCP_FLAG_FIN | TCP_FLAG_RST))
		v->flags |= SLUICE_CT_F_CLOSING;
	return v;
}

static __always_inline enum ct_status ct_lookup(const struct flow *f, __u64 now)
{
	struct sluice_ct_key rev;
	struct sluice_ct_value *v;

	if (ct_touch(&f->key, now, f->tcp_flags))
		return CT_ESTABLISHED;
	ct_reverse(&f->key, &rev);
	v = ct_touch(&rev, now, f->tcp_flags);
	if (v) {
		v->flags |= SLUICE_CT_F_REPLY_SEEN;
		return CT_REPLY;
	}
	if (f->icmp_error) {
		/* The error travels back towards the offending packet's sender. */
		if (ct_touch(&f->inner, now, 0))
			return CT_RELATED;
		ct_reverse(&f->inner, &rev);
		if (ct_touch(&rev, now, 0))
			return CT_RELATED;
	}
	return CT_NEW;
}

static __always_inline void ct_create(const struct flow *f, __u64 now)
{
	struct sluice_ct_value v = { .last_seen = now };

	if (f->tcp_flags & (TCP_FLAG_FIN | TCP_FLAG_RST))
		v.flags = SLUICE_CT_F_CLOSING;
	bpf_map_update_elem(&sluice_ct4_v1, &f->key, &v, BPF_ANY);
}

#endif /* SLUICE_BPF_CT_H */
