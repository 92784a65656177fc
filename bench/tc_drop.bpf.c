// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* bench/nodeport_xdp.sh's tc floor: drop every packet at tc ingress, doing
 * nothing else (no XDP program: the veth hands tc the sender's skb as is). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("tc")
int tc_drop(struct __sk_buff *skb)
{
	(void)skb;
	return 2; /* TC_ACT_SHOT */
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
