// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* bench/nodeport_xdp.sh's sink on the wire's far end: drops (and so counts,
 * as the veth's xdp_drops) what the node forwarded, but lets ARP through,
 * so the node can resolve the node it forwards to (the agent keeps its
 * nodes' neighbour entries itself). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

SEC("xdp")
int xdp_sink(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) <= end && eth->h_proto == bpf_htons(0x0806))
		return XDP_PASS;
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
