// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * XDP_PASS and nothing else, for the "switch" side of a test topology's
 * veth pairs. A frame another program sends back out of a veth (XDP_TX,
 * NodePort at XDP) lands in the peer's XDP ring, and veth wakes the peer
 * to take it only when the peer has an XDP program of its own: without
 * one the frames wait until unrelated traffic happens to wake it. A NIC
 * has no such need (XDP_TX goes to its own transmit ring).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	(void)ctx;
	return XDP_PASS;
}
