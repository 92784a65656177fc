/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The datapath: the embedded BPF object (pod.bpf.c via its skeleton), its
 * maps pinned under the agent's --bpffs directory, and the attachment of
 * its programs to pod veths. Pins and attachments outlive the agent, so a
 * stopped agent leaves pods talking; a new agent reuses the pinned maps and
 * swaps its freshly loaded programs into the existing attachments.
 */
#ifndef SLUICE_LOADER_H
#define SLUICE_LOADER_H

#include <stddef.h>
#include <linux/types.h>

#include <sluice/datapath.h>

enum attach_mode {
	ATTACH_NONE = 0,
	ATTACH_TCX,	/* bpf_link on tcx, pinned under <bpffs>/links */
	ATTACH_TC,	/* cls_bpf filter on the clsact qdisc (kernels before 6.6) */
};

struct datapath;

/* Make sure bpffs_dir is on a BPF filesystem (mounting /sys/fs/bpf when it
 * is not), load the programs and create or reuse the pinned maps. */
int datapath_open(struct datapath **out, const char *bpffs_dir, char *err, size_t errlen);
/* Free user-space resources; pins and attachments stay. */
void datapath_close(struct datapath *dp);

const char *attach_mode_name(enum attach_mode mode);
/* The mode new attachments use on this kernel (probed at open). */
enum attach_mode datapath_attach_mode(const struct datapath *dp);

/* Attach from_pod (ingress) and to_pod (egress) to the host veth. Existing
 * attachments (a previous agent's) are updated in place to this agent's
 * programs without a gap. */
int datapath_attach(struct datapath *dp, int ifindex, const char *ifname, char *err, size_t errlen);
/* Remove the attachments and their pins; absent ones are not an error. */
int datapath_detach(struct datapath *dp, int ifindex, const char *ifname);
/* 0 when both programs are attached to ifindex; -ENOENT otherwise. */
int datapath_check_attached(struct datapath *dp, int ifindex, const char *ifname);

int datapath_endpoint_put(struct datapath *dp, __be32 ip, const struct sluice_endpoint *ep);
int datapath_endpoint_get(struct datapath *dp, __be32 ip, struct sluice_endpoint *ep);
/* Absent entries are not an error. */
int datapath_endpoint_del(struct datapath *dp, __be32 ip);

/* Sum the per-CPU counters: out[SLUICE_METRIC_INDEX(reason, dir)]. */
int datapath_metrics_read(struct datapath *dp, struct sluice_metric out[SLUICE_METRICS_MAX]);

/* File descriptors for tests and benchmarks. */
int datapath_prog_fd(struct datapath *dp, int ingress);
int datapath_endpoint_map_fd(struct datapath *dp);
int datapath_metrics_map_fd(struct datapath *dp);

#endif /* SLUICE_LOADER_H */
