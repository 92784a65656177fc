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

#endif /* SLUICE_BPF_PREFILTER4_H */
