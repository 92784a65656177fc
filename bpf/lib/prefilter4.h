/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The uplink's prefilter: SluicePrefilter objects compiled by the agent
 * into source-address tables (the layout and the drop rule are described
 * with struct sluice_pf_key4 in include/sluice/datapath.h). Run first on
 * the uplink: at XDP, or at tc ingress when no XDP program is attached
 * (sluice_xdpst_v1).
 */
#ifndef SLUICE_BPF_PREFILTER4_H
#define SLUICE_BPF_PREFILTER4_H

#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SLUICE_PF_LPM_MAX);
	__type(key, struct sluice_pf_key4);
	__type(value, struct sluice_pf_val4);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_pf4_v1 SEC(".maps");

/* /32 entries: a hash scales to very large lists where the trie would not. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SLUICE_PF_HOST_MAX);
	__type(key, __be32);
	__type(value, struct sluice_pf_val4);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_pfh4_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SLUICE_PF_PORT_MAX);
	__type(key, struct sluice_pf_port4);
	__type(value, __u64);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_pfp4_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sluice_pf_cfg4);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_pfcfg_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SLUICE_PF_ENTRY_SLOTS);
	__type(key, __u32);
	__type(value, struct sluice_metric);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_pfent_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SLUICE_PF_RULES_MAX);
	__type(key, __u32);
	__type(value, struct sluice_metric);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_pfrul_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sluice_xdp_state);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_xdpst_v1 SEC(".maps");

/* Index of the lowest set bit of a non-zero mask. BPF has no count-trailing-
 * zeros instruction and clang would make __builtin_ctzll a libcall the
 * verifier refuses: six halving steps instead. */
static __always_inline __u32 pf_lowest_bit(__u64 x)
{
	__u32 i = 0;

	if (!(x & 0xffffffffull)) {
		i += 32;
		x >>= 32;
	}
	if (!(x & 0xffff)) {
		i += 16;
		x >>= 16;
	}
	if (!(x & 0xff)) {
		i += 8;
		x >>= 8;
	}
	if (!(x & 0xf)) {
		i += 4;
		x >>= 4;
	}
	if (!(x & 0x3)) {
		i += 2;
		x >>= 2;
	}
	if (!(x & 0x1))
		i += 1;
	return i;
}

static __always_inline void pf_count(void *map, __u32 slot, __u32 len)
{
	struct sluice_metric *m = bpf_map_lookup_elem(map, &slot);

	if (!m)
		return;
	m->packets++;
	m->bytes += len;
}

/*
 * The prefilter's verdict on a packet from saddr (proto, and dport when
 * has_port: a TCP, UDP or SCTP header the packet carries; later fragments,
 * ICMP and other protocols have none) of len bytes: 0 (pass) or
 * DROP(SLUICE_DROP_PREFILTER), counted for the prefix and the lowest rule
 * slot of the match (the rule is described above struct sluice_pf_key4 in
 * include/sluice/datapath.h). Works on parsed values so that the XDP
 * program and from_netdev's fallback (lib/first_stage.h) share it.
 */
static __always_inline int prefilter4_check(__be32 saddr, __u8 proto, __be16 dport, int has_port,
					    __u32 len)
{
	struct sluice_pf_key4 key = { .prefixlen = 32, .addr = saddr };
	struct sluice_pf_port4 pk = { .proto = proto, .port = dport };
	struct sluice_pf_val4 *v;
	struct sluice_pf_cfg4 *cfg;
	__u32 zero = 0, entry;
	__u64 hit, *ports;

	/* No SluicePrefilter applies here (most nodes): one array lookup,
	 * not a hash and a trie, for every packet. */
	cfg = bpf_map_lookup_elem(&sluice_pfcfg_v1, &zero);
	if (!cfg || !cfg->active)
		return 0;
	/* A /32 is the longest match there can be: the hash first. */
	v = bpf_map_lookup_elem(&sluice_pfh4_v1, &saddr);
	if (!v)
		v = bpf_map_lookup_elem(&sluice_pf4_v1, &key);
	if (!v || !v->rules)
		return 0;
	hit = cfg->all_ports;
	if (has_port) {
		ports = bpf_map_lookup_elem(&sluice_pfp4_v1, &pk);
		if (ports)
			hit |= *ports;
	}
	hit &= v->rules;
	if (!hit)
		return 0;
	entry = v->entry < SLUICE_PF_ENTRY_SLOTS ? v->entry : 0;
	pf_count(&sluice_pfent_v1, entry, len);
	pf_count(&sluice_pfrul_v1, pf_lowest_bit(hit), len);
	return DROP(SLUICE_DROP_PREFILTER);
}

/* Does the uplink's XDP program run the first stage (lib/first_stage.h)?
 * From tc: one array lookup. */
static __always_inline int xdp_first_stage_active(void)
{
	struct sluice_xdp_state *st;
	__u32 zero = 0;

	st = bpf_map_lookup_elem(&sluice_xdpst_v1, &zero);
	return st && st->xdp_active;
}

#endif /* SLUICE_BPF_PREFILTER4_H */
