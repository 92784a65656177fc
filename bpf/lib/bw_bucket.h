/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The token bucket of a pod's bandwidth limit (include/sluice/datapath.h,
 * struct sluice_bw), as a pure function of the bucket, the time and the
 * packet: no helper, no lock, so tests/bpf/test_bandwidth.c runs it in user
 * space with a clock of its own. lib/bandwidth.h calls it under the
 * bucket's spin lock with bpf_ktime_get_ns().
 */
#ifndef SLUICE_BPF_BW_BUCKET_H
#define SLUICE_BPF_BW_BUCKET_H

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

#define SLUICE_BW_NSEC 1000000000ULL

/*
 * Refill b for the time since its last refill, then take a packet of len
 * bytes: it passes (1) while the bucket holds tokens, and takes its whole
 * length, so one 64 KiB GSO packet never starves however small the bucket;
 * otherwise it is dropped (0). Either way it is counted in b.
 *
 * rate * elapsed would overflow 64 bits after 147 ms at the highest rate
 * (10^12 bit/s); elapsed is capped at the time the rate takes to fill the
 * bucket from where it is, which refills it completely anyway, and keeps
 * the product under (depth + one packet) * 10^9 < 2^63: the agent never
 * writes a depth above 2^32-1 bits (lib/bwconf.c bw_depth). A stamp from
 * another CPU later than now (it took the lock after this CPU read the
 * clock) counts as no time at all, and is kept.
 */
static __always_inline int bw_bucket(struct sluice_bw *b, __u64 now, __u32 len)
{
	__s64 tokens = b->tokens;
	__u64 elapsed = 0, deficit, fill_ns;

	if ((__s64)(now - b->last_ns) > 0) {
		elapsed = now - b->last_ns;
		b->last_ns = now;
	}
	if (b->rate && tokens < (__s64)b->depth) {
		deficit = (__u64)((__s64)b->depth - tokens);
		fill_ns = deficit * SLUICE_BW_NSEC / b->rate;
		if (elapsed >= fill_ns)
			tokens = (__s64)b->depth;
		else
			tokens += (__s64)(b->rate * elapsed / SLUICE_BW_NSEC);
	}
	if (tokens > 0) {
		b->tokens = tokens - len;
		b->passed_packets++;
		b->passed_bytes += len;
		return 1;
	}
	b->tokens = tokens;
	b->dropped_packets++;
	b->dropped_bytes += len;
	return 0;
}

#endif /* SLUICE_BPF_BW_BUCKET_H */
