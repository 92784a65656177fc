// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* bench/xdp.sh's floor: drop every frame at XDP, doing nothing else. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_drop(struct xdp_md *ctx)
{
	(void)ctx;
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
