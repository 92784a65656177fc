/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Per-CPU packet and byte counters by (reason, direction). */
#ifndef SLUICE_BPF_METRICS_H
#define SLUICE_BPF_METRICS_H

#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SLUICE_METRICS_MAX);
	__type(key, __u32);
	__type(value, struct sluice_metric);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_stats_v2 SEC(".maps");

static __always_inline void metrics_count(__u32 reason, __u32 dir, __u32 bytes)
{
	__u32 key = SLUICE_METRIC_INDEX(reason, dir);
	struct sluice_metric *m;

	m = bpf_map_lookup_elem(&sluice_stats_v2, &key);
	if (!m)
		return;
	/* Per-CPU slot: no other writer can race with us. */
	m->packets++;
	m->bytes += bytes;
}

#endif /* SLUICE_BPF_METRICS_H */
