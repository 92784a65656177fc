/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Local endpoints (pods on this node) keyed by IPv4 address. */
#ifndef SLUICE_BPF_ENDPOINT_H
#define SLUICE_BPF_ENDPOINT_H

#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SLUICE_ENDPOINTS_MAX);
	__type(key, struct sluice_endpoint_key);
	__type(value, struct sluice_endpoint);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_ep_v2 SEC(".maps");

static __always_inline struct sluice_endpoint *endpoint_lookup4(__be32 ip)
{
	struct sluice_endpoint_key key = { .ip4 = ip };

	return bpf_map_lookup_elem(&sluice_ep_v2, &key);
}

#endif /* SLUICE_BPF_ENDPOINT_H */
