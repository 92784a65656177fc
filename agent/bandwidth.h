/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The pods' bandwidth buckets in sluice_bw_v1 (include/sluice/datapath.h,
 * bpf/lib/bandwidth.h), one per limited pod and direction, keyed by the
 * pod's host veth: written from the endpoint record's limits at ADD, at a
 * re-ADD that changes them and at start-up, removed at DEL. The endpoint
 * map's SLUICE_EP_F_BW_* flags (bw_ep_flags) tell the datapath to look.
 */
#ifndef SLUICE_BANDWIDTH_H
#define SLUICE_BANDWIDTH_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "bwconf.h"
#include "loader.h"

/* SLUICE_EP_F_BW_EGRESS/INGRESS for the directions l limits. */
uint32_t bw_ep_flags(const struct bw_limits *l);

/*
 * Make ifindex's buckets what l says: a full bucket for each limited
 * direction (one already there with the same rate and depth is kept, with
 * its counters: a repeated ADD or an agent restart), none for the others.
 * Returns 0 or -errno with the map and the fix in err.
 */
int bw_apply(struct datapath *dp, int ifindex, const struct bw_limits *l, char *err,
	     size_t errlen);
/* Remove both of ifindex's buckets; absent ones are not an error. */
int bw_remove(struct datapath *dp, int ifindex);
/* ifindex's bucket for dir (SLUICE_DIR_*): 0, or -ENOENT when it has none. */
int bw_read(struct datapath *dp, int ifindex, uint32_t dir, struct sluice_bw *out);
/* Remove the buckets of every host veth keep[] (n of them) does not list
 * with a limit in that direction (keep_flags[i], bw_ep_flags): what a crash
 * between a DEL's steps left. Returns how many went. */
size_t bw_prune(struct datapath *dp, const int *keep, const uint32_t *keep_flags, size_t n);

/* l and, per limited direction, the bucket's counters, for the API:
 * {ingressRate, ingressBurst, egressRate, egressBurst, egress: {passedPackets,
 * passedBytes, droppedPackets, droppedBytes}, ingress: {...}}. */
json_t *bw_status_json(struct datapath *dp, int ifindex, const struct bw_limits *l);

#endif /* SLUICE_BANDWIDTH_H */
