/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Runtime settings: set by the agent before loading, through each
 * skeleton's rodata (agent/loader.c sets the same values in every object),
 * so the verifier prunes what a node's mode does not use. Included by each
 * entry file (one BPF object per entry file: the definitions are that
 * object's own), and by the lib headers that read them.
 */
#ifndef SLUICE_BPF_CONFIG_H
#define SLUICE_BPF_CONFIG_H

#include "common.h"
#include <sluice/lbhash.h>

const volatile __u32 cfg_routing = SLUICE_ROUTING_NATIVE;
const volatile __u32 cfg_vxlan_ifindex = 0;
const volatile __u32 cfg_masquerade = 0;
const volatile __be32 cfg_node_ip = 0;
/* This node's pod CIDR (network order; mask 0: not known), for the
 * uplink's first stage (lib/first_stage.h): no packet from outside to a
 * pod here has a source in it. */
const volatile __be32 cfg_pod_net = 0;
const volatile __be32 cfg_pod_mask = 0;
/* The masquerade's node ports (ICMP echo ids), host order. */
const volatile __u32 cfg_nat_port_min = SLUICE_NAT_PORTS_DEFAULT_MIN;
const volatile __u32 cfg_nat_port_max = SLUICE_NAT_PORTS_DEFAULT_MAX;
/* --kube-proxy-replacement: pods' Service traffic is translated (lib/lb.h). */
const volatile __u32 cfg_lb = 0;
/* SO_NETNS_COOKIE of the agent's network namespace: the node's sockets,
 * the only ones the cgroup hooks translate (lib/sock.h). */
const volatile __u64 cfg_host_netns_cookie = 0;
/* --lb-maglev-table-size: entries of every Maglev table (a prime), and the
 * cluster-wide flow-hash seed; both must be the same on every node so all
 * nodes choose alike (docs/SERVICES-DATAPATH.md). */
const volatile __u32 cfg_maglev_m = SLUICE_MAGLEV_M_DEFAULT;
const volatile __u32 cfg_lb_seed = SLUICE_LB_SEED_DEFAULT;
/* The source a pod's Service flow to itself gets (lib/lb.h, hairpin);
 * network order. The agent leaves the default. */
const volatile __be32 cfg_lb_hairpin = bpf_htonl(SLUICE_LB_HAIRPIN_ADDR);
/* --flows: flow state and records (lib/flow.h); 0 skips all of it. */
const volatile __u32 cfg_flows = 1;

#endif /* SLUICE_BPF_CONFIG_H */
