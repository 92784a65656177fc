// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The XDP program on the node's uplink (--device, agent --xdp).
 *
 * from_netdev_xdp: every frame the uplink receives, before the kernel
 *   allocates anything for it. Stage 1 is the first stage of
 *   lib/first_stage.h: malformed IPv4 headers, the SluicePrefilter deny
 *   lists (lib/prefilter4.h), and the sanity drops (a pod's address from
 *   outside with a source in this node's pod CIDR; overlay packets from an
 *   address that is not a node). What passes goes on to the tc path
 *   (from_netdev, host.bpf.c), which leaves the first stage to this
 *   program while sluice_xdpst_v1[0].xdp_active is 1.
 *
 * One exit records every verdict in sluice_stats_v2 (ingress).
 * The maps are shared with the other entry files' objects by their pins
 * (LIBBPF_PIN_BY_NAME, agent/loader.c).
 */
#include "lib/common.h"
#include "lib/metrics.h"
#include "lib/first_stage.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("xdp")
int from_netdev_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	__u32 len = (__u32)(end - data), reason = SLUICE_XDP_PASS;
	struct first_pkt p;
	int ret;

	ret = first_stage_parse(data, end, len, 0, &p);
	if (ret == FIRST_NOT_IPV4)
		goto out;
	if (!IS_DROP(ret))
		ret = first_stage_check(&p, len);
	if (IS_DROP(ret)) {
		reason = DROP_REASON(ret);
		goto out;
	}
	/* Stage 2 (north-south Services at XDP: NodePort, externalIPs, LB
	 * IPs) goes here; what it cannot finish falls through to tc as
	 * SLUICE_XDP_PASS or a reason of its own. */
out:
	metrics_count(reason, SLUICE_DIR_INGRESS, len);
	return sluice_reason_is_drop(reason) ? XDP_DROP : XDP_PASS;
}
