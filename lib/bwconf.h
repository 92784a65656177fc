/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pod bandwidth limits as runtimeConfig.bandwidth gives them (the CNI
 * convention: rates in bits per second, bursts in bits), shared by
 * sluice-cni (which validates what the runtime sends), the agent (which
 * checks it again, keeps it in the endpoint record and turns it into
 * token buckets, agent/bandwidth.c) and sluicectl (which shows it).
 */
#ifndef SLUICE_BWCONF_H
#define SLUICE_BWCONF_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#define BW_RATE_MIN	8000ULL			/* bit/s: 1 kB/s */
#define BW_RATE_MAX	1000000000000ULL	/* bit/s: 1 Tbit/s */
#define BW_BURST_MAX	4294967295ULL		/* bits: 2^32-1, what runtimes send for "none" */
/* The bucket holds at most BW_DEPTH_MS of the rate, and never less than
 * BW_DEPTH_FLOOR bytes unless the burst asks for less. 250 ms, not 100:
 * a policer that drops makes TCP lose retransmissions too, and the sender
 * then waits for its retransmission timeout, at least 200 ms; a bucket
 * shallower than that wastes the rate of every such pause (measured on a
 * veth pair, 10 s of iperf3 at 100 Mbit/s: 51-56 % of the rate with a
 * 100 ms bucket, 99-101 % with 250 ms; docs/CNI.md). */
#define BW_DEPTH_MS	250ULL
#define BW_DEPTH_FLOOR	(128ULL * 1024)

/* 0 rate: no limit that way; 0 burst: the default (the cap, bw_depth). */
struct bw_limits {
	uint64_t ingress_rate, ingress_burst;
	uint64_t egress_rate, egress_burst;
};

/*
 * obj (the "bandwidth" object; NULL or JSON null: no limits) into *out.
 * Keys are matched without regard to case. Each value must be an integer:
 * a rate 0 or BW_RATE_MIN..BW_RATE_MAX, a burst 0 or 1..BW_BURST_MAX
 * (bw_burst_problem checks it against the pod's MTU). Returns 0, or -1
 * with err = "invalid <prefix>.<field>: <why>".
 */
int bw_limits_parse(const json_t *obj, const char *prefix, struct bw_limits *out, char *err,
		    size_t errlen);
/* The four values as runtimeConfig.bandwidth spells them. */
json_t *bw_limits_json(const struct bw_limits *l);
int bw_limits_any(const struct bw_limits *l);

/* Bucket depth in bytes: min(burst/8, max(BW_DEPTH_MS of the rate,
 * BW_DEPTH_FLOOR)), burst 0 meaning 2^32-1 bits, which is what runtimes
 * send when no burst was asked for: the cap keeps that from becoming a
 * 512 MiB bucket (seconds of the rate let through at once). */
uint64_t bw_depth(uint64_t rate_bits, uint64_t burst_bits);

/* A rate as "100M", "1.5G", "8K" (bits per second, SI); "-" for 0. */
void bw_format_rate(uint64_t bits, char *buf, size_t len);

#endif /* SLUICE_BWCONF_H */
