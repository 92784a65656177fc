/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Flows: per-flow state, the records that go to the agent, and the export
 * losses (include/sluice/datapath.h, "Flows"; docs/OBSERVABILITY.md).
 */
#ifndef SLUICE_BPF_FLOW_H
#define SLUICE_BPF_FLOW_H

#include "common.h"

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

#endif /* SLUICE_BPF_FLOW_H */
