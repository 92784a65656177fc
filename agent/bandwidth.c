// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <bpf/bpf.h>

#include "bandwidth.h"

uint32_t bw_ep_flags(const struct bw_limits *l)
{
	return (l->egress_rate ? SLUICE_EP_F_BW_EGRESS : 0) |
	       (l->ingress_rate ? SLUICE_EP_F_BW_INGRESS : 0);
}

/* bpf_ktime_get_ns()'s clock. */
static uint64_t mono_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ULL + (uint64_t)t.tv_nsec;
}

static int bucket_put(int fd, int ifindex, uint32_t dir, uint64_t rate_bits, uint64_t burst_bits)
{
	struct sluice_bw_key k = { .ifindex = (__u32)ifindex, .dir = dir };
	struct sluice_bw cur, v = { 0 };

	v.rate = rate_bits / 8;
	v.depth = bw_depth(rate_bits, burst_bits);
	if (!bpf_map_lookup_elem_flags(fd, &k, &cur, BPF_F_LOCK) && cur.rate == v.rate &&
	    cur.depth == v.depth)
		return 0;
	v.tokens = (__s64)v.depth;
	v.last_ns = mono_ns();
	return bpf_map_update_elem(fd, &k, &v, BPF_ANY) ? -errno : 0;
}

static int bucket_del(int fd, int ifindex, uint32_t dir)
{
	struct sluice_bw_key k = { .ifindex = (__u32)ifindex, .dir = dir };

	return bpf_map_delete_elem(fd, &k) && errno != ENOENT ? -errno : 0;
}

int bw_apply(struct datapath *dp, int ifindex, const struct bw_limits *l, char *err,
	     size_t errlen)
{
	int fd = datapath_bw_map_fd(dp), ret;

	ret = l->egress_rate ? bucket_put(fd, ifindex, SLUICE_DIR_EGRESS, l->egress_rate,
					  l->egress_burst)
			     : bucket_del(fd, ifindex, SLUICE_DIR_EGRESS);
	if (!ret)
		ret = l->ingress_rate ? bucket_put(fd, ifindex, SLUICE_DIR_INGRESS, l->ingress_rate,
						   l->ingress_burst)
				      : bucket_del(fd, ifindex, SLUICE_DIR_INGRESS);
	if (ret)
		snprintf(err, errlen, "cannot write the bandwidth buckets of ifindex %d in %s: %s%s",
			 ifindex, SLUICE_MAP_BW, strerror(-ret),
			 ret == -E2BIG ? " (the map is full: more limited pods than it holds)" : "");
	return ret;
}

int bw_remove(struct datapath *dp, int ifindex)
{
	int fd = datapath_bw_map_fd(dp), ret;

	ret = bucket_del(fd, ifindex, SLUICE_DIR_EGRESS);
	return bucket_del(fd, ifindex, SLUICE_DIR_INGRESS) ?: ret;
}

int bw_read(struct datapath *dp, int ifindex, uint32_t dir, struct sluice_bw *out)
{
	struct sluice_bw_key k = { .ifindex = (__u32)ifindex, .dir = dir };

	return bpf_map_lookup_elem_flags(datapath_bw_map_fd(dp), &k, out, BPF_F_LOCK) ? -errno : 0;
}

size_t bw_prune(struct datapath *dp, const int *keep, const uint32_t *keep_flags, size_t n)
{
	int fd = datapath_bw_map_fd(dp);
	struct sluice_bw_key k, next, *prev = NULL;
	size_t removed = 0;

	while (!bpf_map_get_next_key(fd, prev, &next)) {
		uint32_t want = next.dir == SLUICE_DIR_EGRESS ? SLUICE_EP_F_BW_EGRESS
							      : SLUICE_EP_F_BW_INGRESS;
		int listed = 0;

		for (size_t i = 0; i < n && !listed; i++)
			listed = keep[i] == (int)next.ifindex && (keep_flags[i] & want);
		k = next;
		if (!listed && !bpf_map_delete_elem(fd, &k)) {
			removed++;
			/* The walk starts over: the deleted key cannot lead on. */
			prev = NULL;
			continue;
		}
		prev = &k;
	}
	return removed;
}

static json_t *counters_json(struct datapath *dp, int ifindex, uint32_t dir)
{
	struct sluice_bw b;

	if (bw_read(dp, ifindex, dir, &b))
		return json_null();
	return json_pack("{s:I, s:I, s:I, s:I}", "passedPackets", (json_int_t)b.passed_packets,
			 "passedBytes", (json_int_t)b.passed_bytes, "droppedPackets",
			 (json_int_t)b.dropped_packets, "droppedBytes", (json_int_t)b.dropped_bytes);
}

json_t *bw_status_json(struct datapath *dp, int ifindex, const struct bw_limits *l)
{
	json_t *obj = bw_limits_json(l);

	if (obj && l->egress_rate &&
	    json_object_set_new(obj, "egress", counters_json(dp, ifindex, SLUICE_DIR_EGRESS)))
		goto fail;
	if (obj && l->ingress_rate &&
	    json_object_set_new(obj, "ingress", counters_json(dp, ifindex, SLUICE_DIR_INGRESS)))
		goto fail;
	return obj;
fail:
	json_decref(obj);
	return NULL;
}
