/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The contract between sluice's BPF programs and the agent: map names,
 * key/value layouts, verdict reasons and directions. Both bpf/ and agent/
 * include this file; there is no second copy anywhere.
 *
 * Layout rules: fixed-width types only, explicit padding, and a size
 * assertion per struct. A layout change bumps the map's _vN suffix so an
 * upgraded agent never reads old pinned bytes as new.
 */
#ifndef SLUICE_DATAPATH_H
#define SLUICE_DATAPATH_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Map names double as pin names under the agent's --bpffs directory.
 * The kernel keeps 15 characters of a map name, so keep them that short. */
#define SLUICE_MAP_ENDPOINTS "sluice_ep_v1"
#define SLUICE_MAP_METRICS   "sluice_stats_v1"

#ifndef SLUICE_ENDPOINTS_MAX
#define SLUICE_ENDPOINTS_MAX 65536
#endif

/* Key of sluice_ep_v1: a local pod's IPv4 address (network byte order). */
struct sluice_endpoint_key {
	__be32 ip4;
};
_Static_assert(sizeof(struct sluice_endpoint_key) == 4, "endpoint key layout");

/*
 * Value of sluice_ep_v1. ifindex is the host-side veth ("lxc…") of the pod.
 * Delivering to the pod rewrites the Ethernet header to
 * lxc_mac -> pod_mac, as if the node had routed the packet, then
 * redirects to the veth's peer.
 */
struct sluice_endpoint {
	__u32 ifindex;
	__u32 flags;		/* SLUICE_EP_F_*; none defined yet, must be 0 */
	__u8 pod_mac[6];	/* MAC of the pod's interface (CNI_IFNAME) */
	__u8 lxc_mac[6];	/* MAC of the host-side veth */
	__u32 reserved;		/* explicit padding, must be 0 */
};
_Static_assert(sizeof(struct sluice_endpoint) == 24, "endpoint value layout");

/* Directions, seen from the pod. */
enum sluice_dir {
	SLUICE_DIR_EGRESS = 0,	/* leaving the pod: from_pod program */
	SLUICE_DIR_INGRESS = 1,	/* entering the pod: to_pod program */
	SLUICE_DIR_MAX,
};

/*
 * Every verdict the datapath records, forwarded or dropped, listed once.
 * X(enum name, number, short name, description). Numbers are stable: they
 * index the metrics map. Drops are reported by the BPF code as the negative
 * of SLUICE_DROP_BASE + number, which can never collide with a TC_ACT_* or
 * XDP_* return value.
 */
#define SLUICE_REASONS(X)                                                                  \
	X(SLUICE_FWD_LOCAL,       0, "forward-local",    "redirected to a pod on this node")  \
	X(SLUICE_PASS,            1, "pass",             "handed on to the kernel's own path") \
	X(SLUICE_DROP_TRUNCATED,  2, "drop-truncated",   "packet shorter than its headers")    \
	X(SLUICE_DROP_BAD_IPHDR,  3, "drop-bad-iphdr",   "invalid IPv4 header length")         \
	X(SLUICE_DROP_UNKNOWN_L3, 4, "drop-unknown-l3",  "neither IPv4 nor ARP (IPv4-only)")   \
	X(SLUICE_DROP_SPOOFED,    5, "drop-spoofed-src", "source IP is not the pod's own")     \
	X(SLUICE_DROP_REDIRECT,   6, "drop-redirect",    "rewrite for local delivery failed")

enum sluice_reason {
#define SLUICE_X_ENUM(name, num, short_name, desc) name = num,
	SLUICE_REASONS(SLUICE_X_ENUM)
#undef SLUICE_X_ENUM
	SLUICE_REASON_MAX
};

#define SLUICE_DROP_BASE 130

/* Index of a (reason, direction) counter in sluice_stats_v1. */
#define SLUICE_METRIC_INDEX(reason, dir) ((reason) * SLUICE_DIR_MAX + (dir))
#define SLUICE_METRICS_MAX (SLUICE_REASON_MAX * SLUICE_DIR_MAX)

/* Value of sluice_stats_v1 (a per-CPU array; user space sums the CPUs). */
struct sluice_metric {
	__u64 packets;
	__u64 bytes;
};
_Static_assert(sizeof(struct sluice_metric) == 16, "metric value layout");

static inline int sluice_reason_is_drop(__u32 reason)
{
	return reason >= SLUICE_DROP_TRUNCATED && reason < SLUICE_REASON_MAX;
}

#endif /* SLUICE_DATAPATH_H */
