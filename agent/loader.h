/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The datapath: the embedded BPF objects, one per entry file (bpf/lxc.bpf.c
 * for pod veths, host.bpf.c for the uplink, overlay.bpf.c for the vxlan
 * device, each via its skeleton), their maps pinned under the agent's
 * --bpffs directory and shared by those pins, and the attachment of their
 * programs to pod veths and the node's devices. Pins and attachments
 * outlive the agent, so a stopped agent leaves pods talking; a new agent
 * reuses the pinned maps and swaps its freshly loaded programs into the
 * existing attachments.
 */
#ifndef SLUICE_LOADER_H
#define SLUICE_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>

#include <sluice/datapath.h>

/*
 * How programs are attached to pod veths. tc (a cls_bpf filter on the
 * clsact qdisc) is the default: a tcx attach or detach waits for an RCU
 * grace period (bpf_mprog commit), which put 15 ms per direction on every
 * CNI ADD here (docs/BENCHMARKS.md); a pod veth is sluice's alone, so
 * tcx's ownership model buys little there.
 */
enum attach_mode {
	ATTACH_NONE = 0,	/* as requested: "auto" (tcx where available) */
	ATTACH_TCX,		/* bpf_link on tcx (6.6+), pinned under <bpffs>/links */
	ATTACH_TC,		/* cls_bpf filter on the clsact qdisc */
};

struct datapath;

/* Make sure bpffs_dir is on a BPF filesystem (mounting /sys/fs/bpf when it
 * is not), load the programs and create or reuse the pinned maps. mode:
 * ATTACH_NONE picks tcx where the kernel has it, else tc. */
struct datapath_opts {
	enum attach_mode mode;		/* ATTACH_NONE: tcx where available */
	enum sluice_routing routing;
	int vxlan_ifindex;		/* overlay routing: the collect_md vxlan device */
	int masquerade;			/* SNAT pods' traffic leaving the cluster */
	uint32_t node_ip;		/* host order: the address to masquerade to */
	uint16_t nat_port_min;		/* the masquerade's node ports; 0: the default range */
	uint16_t nat_port_max;
	uint32_t policy_map_size;	/* max_entries of the allow and deny maps; 0: default */
	uint32_t ipcache_map_size;	/* max_entries of the ipcache; 0: default */
	int lb;				/* --kube-proxy-replacement: translate pods' Service traffic */
	uint32_t maglev_m;		/* --lb-algorithm maglev: --lb-maglev-table-size; 0: random */
	uint32_t pod_net;		/* host order: this node's pod CIDR, for the uplink's */
	int pod_prefix;			/* first stage's spoof check; prefix 0: none */
	int flows_off;			/* --flows off: no flow state or records (lib/flow.h) */
};

/* Where the agent mounts cgroup v2 when the machine has no mount of it. */
#define SLUICE_CGROUP2_MOUNT "/run/sluice/cgroupv2"

/* opts NULL: tc attachment, native routing. */
int datapath_open(struct datapath **out, const char *bpffs_dir, const struct datapath_opts *opts,
		  char *err, size_t errlen);
/* "tcx", "tc" or "auto" (ATTACH_NONE); -EINVAL otherwise. */
int attach_mode_parse(const char *text, enum attach_mode *mode);
/* Free user-space resources; pins and attachments stay. */
void datapath_close(struct datapath *dp);

const char *attach_mode_name(enum attach_mode mode);
/* The mode new attachments use on this kernel (probed at open). */
enum attach_mode datapath_attach_mode(const struct datapath *dp);
/* Whether this kernel has tcx: 1, 0, or -1 when not probed (--attach-mode tc). */
int datapath_tcx_available(const struct datapath *dp);

/* The BPF objects built into this binary: file name and ELF bytes. */
struct dp_object {
	const char *name;
	const void *elf;
	size_t size;
};
/* Fills v (all of them when max is large enough) and returns how many there are. */
size_t datapath_objects(struct dp_object *v, size_t max);
/* The names of the maps the loaded objects use (the pins under --bpffs),
 * each once, into v (valid while dp is open); returns how many there are. */
size_t datapath_map_names(const struct datapath *dp, const char **v, size_t max);

/* Attach from_pod (ingress) and to_pod (egress) to the host veth. Existing
 * attachments (a previous agent's) are updated in place to this agent's
 * programs without a gap. On failure nothing is detached: the caller
 * removes the veth, or checks datapath_policed. */
int datapath_attach(struct datapath *dp, int ifindex, const char *ifname, char *err, size_t errlen);
/* Programs on the node's own devices. */
enum node_hook {
	HOOK_OVERLAY,	/* from_overlay on the vxlan device's ingress */
	HOOK_NETDEV,	/* from_netdev on the uplink's ingress */
	HOOK_NETDEV_OUT,	/* to_netdev on the uplink's egress (masquerade, host-forwarded flows) */
	HOOK_OVERLAY_OUT,	/* to_overlay on the vxlan device's egress (host-routed traffic) */
};

/* Attach (or swap in) the program for hook on a node device. */
int datapath_attach_node(struct datapath *dp, int ifindex, const char *ifname, enum node_hook hook,
			 char *err, size_t errlen);
int datapath_node_prog_fd(struct datapath *dp, enum node_hook hook);

/* Remove the attachments and their pins; absent ones are not an error.
 * ifindex 0: the device is gone (and its tc filters with it); only the
 * link pins are removed. */
int datapath_detach(struct datapath *dp, int ifindex, const char *ifname);
/* 0 when both programs are attached to ifindex; -ENOENT otherwise. */
int datapath_check_attached(struct datapath *dp, int ifindex, const char *ifname);
/* 1 when a sluice program (this agent's or an earlier one's, tc or tcx) is
 * attached to ifindex in both directions, else 0. tc_counts: the device's
 * qdisc is clsact; an `ingress` qdisc takes egress filters into its
 * ingress block, where to_pod never sees what the pod receives. */
int datapath_policed(int ifindex, int tc_counts);

int datapath_endpoint_put(struct datapath *dp, __be32 ip, const struct sluice_endpoint *ep);
int datapath_endpoint_get(struct datapath *dp, __be32 ip, struct sluice_endpoint *ep);
/* Absent entries are not an error. */
int datapath_endpoint_del(struct datapath *dp, __be32 ip);

/* Sum the per-CPU counters: out[SLUICE_METRIC_INDEX(reason, dir)]. */
int datapath_metrics_read(struct datapath *dp, struct sluice_metric out[SLUICE_METRICS_MAX]);

/* File descriptors of the programs and maps (tests, benchmarks, compiler). */
int datapath_prog_fd(struct datapath *dp, int ingress);
int datapath_endpoint_map_fd(struct datapath *dp);
/* sluice_bw_v1, the pods' bandwidth buckets (agent/bandwidth.c). */
int datapath_bw_map_fd(struct datapath *dp);
int datapath_metrics_map_fd(struct datapath *dp);
int datapath_ipcache_map_fd(struct datapath *dp);
int datapath_policy_map_fd(struct datapath *dp);
int datapath_deny_map_fd(struct datapath *dp);
int datapath_ct_map_fd(struct datapath *dp);
int datapath_snat_map_fd(struct datapath *dp);
/* Flows (datapath.h "Flows"): the per-flow state, the records' ring buffer,
 * the per-CPU export-loss counters (enum sluice_flow_stat). */
int datapath_flow4_map_fd(struct datapath *dp);
int datapath_flow_rb_fd(struct datapath *dp);
int datapath_flow_st_fd(struct datapath *dp);
int datapath_rnat_map_fd(struct datapath *dp);
int datapath_frag_map_fd(struct datapath *dp);
int datapath_nomasq_map_fd(struct datapath *dp);
int datapath_lb_svc_map_fd(struct datapath *dp);
int datapath_lb_be_map_fd(struct datapath *dp);
int datapath_lb_rnat_map_fd(struct datapath *dp);
/* sluice_lbsk4_v1; -ENOENT without the cgroup hooks. */
int datapath_lb_sock_map_fd(struct datapath *dp);

/*
 * The node sockets' Service hooks (bpf/sock.bpf.c, loaded only with
 * opts.lb) on the cgroup v2 root. datapath_cgroup_root: want, or the first
 * cgroup2 mount of /proc/self/mountinfo, or cgroup2 mounted by us on
 * /run/sluice/cgroupv2; the path into out.
 */
int datapath_cgroup_root(const char *want, char *out, size_t outlen, char *err, size_t errlen);
/* Attach (or swap this agent's programs into) the pinned cgroup links. */
int datapath_attach_sock(struct datapath *dp, const char *cgroup_root, char *err, size_t errlen);
/* Remove the cgroup link pins under bpffs (detaching the hooks); absent
 * ones are not an error. */
int datapath_detach_sock(const char *bpffs);
int datapath_lb_maglev_map_fd(struct datapath *dp);
int datapath_lb_affinity_map_fd(struct datapath *dp);
/* Entries of a Maglev table, 0 with --lb-algorithm random. */
uint32_t datapath_lb_maglev_m(const struct datapath *dp);

/*
 * The XDP program on the uplink (bpf/xdp.bpf.c, agent --xdp). It runs the
 * uplink's first stage (malformed headers, the prefilter, the sanity
 * drops); from_netdev runs it instead while sluice_xdpst_v1[0].xdp_active
 * is 0. Attached through a bpf_link pinned at <bpffs>/links/<dev>_xdp, and
 * swapped in place (bpf_link_update) by a restarted agent.
 */
enum xdp_request {
	XDP_REQ_BEST_EFFORT = 0,	/* native where the driver can, else tc */
	XDP_REQ_NATIVE,			/* native or fail start-up */
	XDP_REQ_GENERIC,		/* skb mode, only when asked for (tests) */
	XDP_REQ_OFF,			/* no XDP program: the first stage at tc */
};

struct xdp_status {
	enum xdp_request requested;
	__u32 mode;			/* SLUICE_XDP_MODE_* in use */
	char device[16];		/* "" without --device */
	char driver[32];		/* ethtool -i's driver, "" when unknown */
	char reason[256];		/* best-effort: why it fell back to tc; else "" */
};

/* "native", "best-effort", "generic", "off"; -EINVAL otherwise. */
int xdp_request_parse(const char *text, enum xdp_request *req);
const char *xdp_request_name(enum xdp_request req);
/* "native", "generic" or "off" (SLUICE_XDP_MODE_*). */
const char *xdp_mode_name(__u32 mode);
/* The driver of ifname as ethtool -i names it (SIOCETHTOOL), else the
 * /sys/class/net/<ifname>/device/driver link; "unknown" when neither. */
void xdp_driver_name(const char *ifname, char *out, size_t outlen);
/* A driver best-effort leaves to tc although it has native XDP (veth). */
bool xdp_costly_driver(const char *driver);

/*
 * Apply req on the uplink: attach (or swap this agent's program into) the
 * pinned XDP link, or detach what a previous agent left (off), then write
 * sluice_xdpst_v1[0] so tc does the first stage exactly when XDP does not.
 * native or generic that cannot attach fails with err naming the device,
 * its driver and the fix; best-effort falls back to tc and says why in
 * st->reason. st is filled either way.
 */
int datapath_attach_xdp(struct datapath *dp, int ifindex, const char *ifname,
			enum xdp_request req, struct xdp_status *st, char *err, size_t errlen);
/* Remove the XDP link pin of ifname (detaching the program) and any XDP
 * program of sluice's still on ifindex; absent ones are not an error. */
int datapath_detach_xdp(const char *bpffs, int ifindex, const char *ifname);
/* Write sluice_xdpst_v1[0]. */
int datapath_xdp_state_set(struct datapath *dp, __u32 xdp_active, __u32 mode);
int datapath_xdp_prog_fd(struct datapath *dp);

/* The prefilter's maps (include/sluice/datapath.h, SluicePrefilter). */
int datapath_pf_lpm_map_fd(struct datapath *dp);	/* sluice_pf4_v1 */
int datapath_pf_host_map_fd(struct datapath *dp);	/* sluice_pfh4_v1 */
int datapath_pf_port_map_fd(struct datapath *dp);	/* sluice_pfp4_v1 */
int datapath_pf_cfg_map_fd(struct datapath *dp);	/* sluice_pfcfg_v1 */
int datapath_pf_entry_count_map_fd(struct datapath *dp);	/* sluice_pfent_v1 */
int datapath_pf_rule_count_map_fd(struct datapath *dp);	/* sluice_pfrul_v1 */
int datapath_xdp_state_map_fd(struct datapath *dp);	/* sluice_xdpst_v1 */
/* The prefilter's drops (packets, bytes) for counter entry `entry`
 * (sluice_pfent_v1) or rule slot `rule` (sluice_pfrul_v1), summed over the
 * CPUs. 0 or -errno (-ENOENT beyond the map). */
int datapath_pf_entry_counter(struct datapath *dp, __u32 entry, struct sluice_metric *out);
int datapath_pf_rule_counter(struct datapath *dp, __u32 rule, struct sluice_metric *out);
/* sluice_xdpft_v1: why the XDP program's stage 2 left a Service packet to
 * tc (SLUICE_XDP_FT), per cause summed over the CPUs. 0 or -errno. */
int datapath_xdp_ft_map_fd(struct datapath *dp);
int datapath_xdp_ft_counter(struct datapath *dp, __u32 cause, struct sluice_metric *out);

#endif /* SLUICE_LOADER_H */
