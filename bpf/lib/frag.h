/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * IPv4 fragments. Only a datagram's first fragment carries the L4 header,
 * so only it can be matched on ports. Its ports are remembered for a few
 * seconds (sluice_frag4_v1) and every later fragment of the datagram takes
 * them: connection tracking then finds the flow the first fragment was
 * judged in, and the later fragments get its verdict and its translation.
 * A later fragment without a remembered first (lost, reordered before it,
 * or forged) has no flow to belong to and is dropped. Packets that are not
 * fragments pay one test of the IP header.
 */
#ifndef SLUICE_BPF_FRAG_H
#define SLUICE_BPF_FRAG_H

#include "common.h"

#define IP_FRAG_OFFSET_MASK 0x1fff
#ifndef IP_MF
#define IP_MF 0x2000
#endif

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SLUICE_FRAG_MAX);
	__type(key, struct sluice_frag_key);
	__type(value, struct sluice_frag_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_frag4_v1 SEC(".maps");

static __always_inline int frag_is_later(const struct iphdr *ip)
{
	return (ip->frag_off & bpf_htons(IP_FRAG_OFFSET_MASK)) != 0;
}

/* The first fragment of a datagram that has more (offset 0, MF set). */
static __always_inline int frag_is_first(const struct iphdr *ip)
{
	return (ip->frag_off & bpf_htons(IP_MF | IP_FRAG_OFFSET_MASK)) == bpf_htons(IP_MF);
}

static __always_inline void frag_key(const struct iphdr *ip, struct sluice_frag_key *k)
{
	k->saddr = ip->saddr;
	k->daddr = ip->daddr;
	k->id = ip->id;
	k->proto = ip->protocol;
	k->pad = 0;
}

/*
 * Remember the ports of a first fragment for the later ones. Done whatever
 * the verdict on it: the entry gives a later fragment its tuple, never a
 * verdict (a later fragment of a denied datagram finds no flow in
 * connection tracking and is dropped), and the same datagram crosses
 * several programs (from_pod, then to_netdev; nat_reverse, then
 * from_netdev), each of which must be able to place its later fragments.
 */
static __always_inline void frag_remember(const struct iphdr *ip, const struct sluice_ct_key *k)
{
	struct sluice_frag_value v = {
		.first_seen = bpf_ktime_get_ns(),
		.sport = k->sport,
		.dport = k->dport,
	};
	struct sluice_frag_key fk;

	frag_key(ip, &fk);
	bpf_map_update_elem(&sluice_frag4_v1, &fk, &v, BPF_ANY);
}

/*
 * The ports of a later fragment's first fragment, into k. Returns 0, or
 * DROP(SLUICE_DROP_FRAG_ORPHAN) when no first fragment was seen within
 * SLUICE_FRAG_TIMEOUT. The entry stays until it ages out: fragments may
 * come in any order after the first, and the same fragment is looked up by
 * every program it crosses.
 */
static __always_inline int frag_recall(const struct iphdr *ip, struct sluice_ct_key *k)
{
	struct sluice_frag_value *v;
	struct sluice_frag_key fk;

	frag_key(ip, &fk);
	v = bpf_map_lookup_elem(&sluice_frag4_v1, &fk);
	if (!v || ktime_older(bpf_ktime_get_ns(), v->first_seen, SLUICE_FRAG_TIMEOUT * 1000000000ull))
		return DROP(SLUICE_DROP_FRAG_ORPHAN);
	k->sport = v->sport;
	k->dport = v->dport;
	return 0;
}

#endif /* SLUICE_BPF_FRAG_H */
