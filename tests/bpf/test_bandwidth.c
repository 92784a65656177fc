// SPDX-License-Identifier: Apache-2.0
/*
 * Pod bandwidth limits (bpf/lib/bw_bucket.h, bandwidth.h, include/sluice/
 * datapath.h sluice_bw_v1). The bucket itself, run in user space with a
 * clock of the test's own: refill, the depth cap, drop accounting, a GSO
 * sized packet on a small bucket, elapsed times that would overflow, the
 * long-run rate. Then the real programs through BPF_PROG_TEST_RUN: from_pod
 * charges the sender's egress bucket and, handing a packet to a pod on this
 * node, the receiver's ingress bucket; to_pod charges what the stack
 * delivers; drops are counted as drop-bandwidth; a pod without the flag
 * never touches its bucket. Maps are pinned in a throwaway bpffs directory
 * removed whatever happens.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <cmocka.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "loader.h"
#include "pkt_util.h"
#include "../../bpf/lib/bw_bucket.h"

#define NSEC 1000000000ULL

/* ---- the bucket alone ------------------------------------------------ */

static struct sluice_bw bucket(__u64 rate, __u64 depth, __s64 tokens, __u64 last_ns)
{
	struct sluice_bw b = { .rate = rate, .depth = depth, .tokens = tokens, .last_ns = last_ns };

	return b;
}

static void test_refill(void **state)
{
	struct sluice_bw b = bucket(1000, 10000, 0, NSEC);

	(void)state;
	/* Empty: dropped, and nothing taken. */
	assert_int_equal(bw_bucket(&b, NSEC, 100), 0);
	assert_int_equal(b.tokens, 0);
	/* 1 s at 1000 B/s: 1000 tokens, the packet takes 100. */
	assert_int_equal(bw_bucket(&b, 2 * NSEC, 100), 1);
	assert_int_equal(b.tokens, 900);
	assert_int_equal(b.last_ns, 2 * NSEC);
	/* 0.5 s more: 500. */
	assert_int_equal(bw_bucket(&b, 2 * NSEC + NSEC / 2, 400), 1);
	assert_int_equal(b.tokens, 1000);
	/* A stamp from another CPU ahead of now: no refill, stamp kept. */
	b.last_ns = 10 * NSEC;
	assert_int_equal(bw_bucket(&b, 9 * NSEC, 10), 1);
	assert_int_equal(b.tokens, 990);
	assert_int_equal(b.last_ns, 10 * NSEC);
}

static void test_depth_cap(void **state)
{
	struct sluice_bw b = bucket(1000, 5000, 0, 0);
	int passed = 0;

	(void)state;
	/* An hour idle fills the bucket to its depth, no more. */
	assert_int_equal(bw_bucket(&b, 3600 * NSEC, 1), 1);
	assert_int_equal(b.tokens, 5000 - 1);
	/* So a burst passes depth bytes (plus the packet that goes below
	 * zero), then drops. */
	b = bucket(1000, 5000, 0, 0);
	for (int i = 0; i < 100; i++)
		passed += bw_bucket(&b, 3600 * NSEC, 1000);
	assert_int_equal(passed, 5);
	assert_int_equal(b.passed_bytes, 5000);
}

static void test_drop_accounting(void **state)
{
	struct sluice_bw b = bucket(1000, 1500, 1, 0);

	(void)state;
	assert_int_equal(bw_bucket(&b, 0, 1500), 1);
	assert_int_equal(b.tokens, 1 - 1500);
	for (int i = 0; i < 3; i++)
		assert_int_equal(bw_bucket(&b, 0, 700 + i), 0);
	assert_int_equal(b.passed_packets, 1);
	assert_int_equal(b.passed_bytes, 1500);
	assert_int_equal(b.dropped_packets, 3);
	assert_int_equal(b.dropped_bytes, 700 + 701 + 702);
	/* A drop takes nothing from the bucket. */
	assert_int_equal(b.tokens, 1 - 1500);
}

/* A 64 KiB GSO packet on a bucket of one MTU: it passes whenever the
 * bucket holds anything, and the rate holds over time. */
static void test_gso_on_small_bucket(void **state)
{
	struct sluice_bw b = bucket(12500, 1500, 1500, 0);
	__u64 t;

	(void)state;
	assert_int_equal(bw_bucket(&b, 0, 65536), 1);
	assert_int_equal(b.tokens, 1500 - 65536);
	/* Offered every 10 ms for 100 s: passes about rate * time. */
	for (t = 10000000; t <= 100 * NSEC; t += 10000000)
		bw_bucket(&b, t, 65536);
	assert_true(b.passed_packets > 1);
	assert_true(b.passed_bytes >= 100 * 12500 - 65536);
	assert_true(b.passed_bytes <= 100 * 12500 + 1500 + 65536);
}

/* The highest rate and the deepest bucket the agent writes, after any
 * time at all: full, never a wrapped product. */
static void test_elapsed_overflow(void **state)
{
	const __u64 rate = 1000000000000ULL / 8, depth = 4294967295ULL / 8;
	struct sluice_bw b = bucket(rate, depth, -65536, 0);

	(void)state;
	/* rate * 2^63 ns wraps 64 bits many times over. */
	assert_int_equal(bw_bucket(&b, (__u64)INT64_MAX, 100), 1);
	assert_int_equal(b.tokens, (__s64)depth - 100);
	/* 147 ms is where rate * elapsed passes 2^64. */
	b = bucket(rate, depth, -65536, 0);
	assert_int_equal(bw_bucket(&b, 148000000ULL, 100), 1);
	assert_int_equal(b.tokens, (__s64)depth - 100);
	/* A short time at that rate refills exactly. */
	b = bucket(rate, depth, 0, 0);
	assert_int_equal(bw_bucket(&b, 1000, 100), 1);
	assert_int_equal(b.tokens, 125000 - 100);
}

/* Offered at twice the rate for 10 s, in MTU packets: what passes is the
 * rate times the time, plus the bucket, within a packet per refill's
 * rounding. */
static void test_long_run_rate(void **state)
{
	const __u64 rate = 12500000, depth = 3125000;	/* 100 Mbit/s, 250 ms */
	struct sluice_bw b = bucket(rate, depth, (__s64)depth, 0);
	const __u64 gap = 1500 * NSEC / (2 * rate);	/* ns between packets */
	__u64 t, want = 10 * rate + depth;

	(void)state;
	for (t = gap; t <= 10 * NSEC; t += gap)
		bw_bucket(&b, t, 1500);
	assert_true(b.passed_bytes <= want + 1500);
	assert_true(b.passed_bytes >= want - want / 100);
	assert_true(b.dropped_packets > 0);
}

/* ---- through the programs ------------------------------------------- */

#define IFINDEX_LO 1 /* test runs see skb->dev = loopback: pod A's veth */
#define IP_A "10.78.0.2"
#define IP_B "10.78.0.3"
#define IP_NODE "10.78.0.1"

/* The datapath under test and pod B's veth: one per process, made in
 * main, torn down at its end. */
static struct datapath *dp;
static char pin_dir[64];
static int ifindex_b;

struct udp_pkt {
	struct ethhdr eth;
	struct iphdr ip;
	struct udphdr udp;
	unsigned char payload[1400];
} __attribute__((packed));

/* A UDP datagram src -> dst with n payload bytes; *len its frame's bytes. */
static struct udp_pkt make_udp(const char *src, const char *dst, __u16 n, __u32 *len)
{
	struct udp_pkt p = { 0 };

	p.eth.h_proto = htons(ETH_P_IP);
	p.eth.h_source[0] = 2;
	p.eth.h_dest[0] = 2;
	p.ip.version = 4;
	p.ip.ihl = 5;
	p.ip.ttl = 64;
	p.ip.protocol = IPPROTO_UDP;
	p.ip.saddr = ip4(src);
	p.ip.daddr = ip4(dst);
	p.ip.tot_len = htons((__u16)(sizeof(p.ip) + sizeof(p.udp) + n));
	p.ip.check = ip_checksum(&p.ip, sizeof(p.ip));
	p.udp.source = htons(5000);
	p.udp.dest = htons(6000);
	p.udp.len = htons((__u16)(sizeof(p.udp) + n));
	*len = (__u32)(offsetof(struct udp_pkt, payload) + n);
	return p;
}

/* Run from_pod (ingress 1) or to_pod (0) at ifindex on the datagram. */
static int run_udp(int ingress, int ifindex, const char *src, const char *dst, __u16 n)
{
	__u32 len;
	struct udp_pkt p = make_udp(src, dst, n, &len);
	static unsigned char out[sizeof(struct udp_pkt)];
	struct __sk_buff ctx = { .ifindex = (__u32)ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = &p, .data_size_in = len, .data_out = out,
		    .data_size_out = sizeof(out), .repeat = 1,
		    .ctx_in = ifindex > 1 ? &ctx : NULL, .ctx_size_in = ifindex > 1 ? sizeof(ctx) : 0);

	if (bpf_prog_test_run_opts(datapath_prog_fd(dp, ingress), &opts))
		fail_msg("BPF_PROG_TEST_RUN failed: %s", strerror(errno));
	return (int)opts.retval;
}

static void set_ep(const char *ip, __u32 ifindex, __u32 flags)
{
	struct sluice_endpoint ep = { .ifindex = ifindex, .identity = 300, .flags = flags };

	ep.pod_mac[0] = ep.lxc_mac[0] = 2;
	assert_int_equal(datapath_endpoint_put(dp, ip4(ip), &ep), 0);
}

static __u64 mono_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (__u64)t.tv_sec * NSEC + (__u64)t.tv_nsec;
}

/* A bucket of rate 1000 B/s (nothing refills during a test) holding tokens. */
static void put_bucket(int ifindex, __u32 dir, __s64 tokens)
{
	struct sluice_bw_key k = { .ifindex = (__u32)ifindex, .dir = dir };
	struct sluice_bw v = { .rate = 1000, .depth = 100000, .tokens = tokens,
			       .last_ns = mono_ns() };

	assert_int_equal(bpf_map_update_elem(datapath_bw_map_fd(dp), &k, &v, BPF_ANY), 0);
}

static struct sluice_bw get_bucket(int ifindex, __u32 dir)
{
	struct sluice_bw_key k = { .ifindex = (__u32)ifindex, .dir = dir };
	struct sluice_bw v = { 0 };

	assert_int_equal(bpf_map_lookup_elem_flags(datapath_bw_map_fd(dp), &k, &v, BPF_F_LOCK), 0);
	return v;
}

static __u64 drops_counted(__u32 dir)
{
	struct sluice_metric m[SLUICE_METRICS_MAX];

	assert_int_equal(datapath_metrics_read(dp, m), 0);
	return m[SLUICE_METRIC_INDEX(SLUICE_DROP_BANDWIDTH, dir)].packets;
}

static int reset(void **state)
{
	struct sluice_bw_key k;
	int fd = datapath_bw_map_fd(dp);

	(void)state;
	set_ep(IP_A, IFINDEX_LO, 0);
	set_ep(IP_B, (__u32)ifindex_b, 0);
	while (!bpf_map_get_next_key(fd, NULL, &k))
		assert_int_equal(bpf_map_delete_elem(fd, &k), 0);
	return 0;
}

static void test_egress_in_from_pod(void **state)
{
	__u64 drops = drops_counted(SLUICE_DIR_EGRESS);
	struct sluice_bw b;
	__u32 len;

	(void)state;
	make_udp(IP_A, IP_B, 1000, &len);
	set_ep(IP_A, IFINDEX_LO, SLUICE_EP_F_BW_EGRESS);
	put_bucket(IFINDEX_LO, SLUICE_DIR_EGRESS, 1);
	/* Tokens left: passes (to B, on this node), taking its length. */
	assert_int_equal(run_udp(1, IFINDEX_LO, IP_A, IP_B, 1000), TC_ACT_REDIRECT);
	/* None left: dropped, counted in the bucket and as drop-bandwidth. */
	assert_int_equal(run_udp(1, IFINDEX_LO, IP_A, IP_B, 1000), TC_ACT_SHOT);
	b = get_bucket(IFINDEX_LO, SLUICE_DIR_EGRESS);
	assert_int_equal(b.passed_packets, 1);
	assert_int_equal(b.passed_bytes, len);
	assert_int_equal(b.dropped_packets, 1);
	assert_int_equal(b.dropped_bytes, len);
	assert_true(b.tokens <= 1 - (__s64)len);
	assert_int_equal(drops_counted(SLUICE_DIR_EGRESS), drops + 1);
}

/* The receiver's bucket, once, when from_pod hands it the packet. */
static void test_ingress_on_local_redirect(void **state)
{
	__u64 drops = drops_counted(SLUICE_DIR_EGRESS);
	struct sluice_bw b;

	(void)state;
	set_ep(IP_B, (__u32)ifindex_b, SLUICE_EP_F_BW_INGRESS);
	put_bucket(ifindex_b, SLUICE_DIR_INGRESS, 0);
	assert_int_equal(run_udp(1, IFINDEX_LO, IP_A, IP_B, 500), TC_ACT_SHOT);
	assert_int_equal(drops_counted(SLUICE_DIR_EGRESS), drops + 1);
	put_bucket(ifindex_b, SLUICE_DIR_INGRESS, 100000);
	assert_int_equal(run_udp(1, IFINDEX_LO, IP_A, IP_B, 500), TC_ACT_REDIRECT);
	b = get_bucket(ifindex_b, SLUICE_DIR_INGRESS);
	assert_int_equal(b.passed_packets, 1);
	assert_int_equal(b.dropped_packets, 0);
	/* B's own egress and A's buckets: none was looked up, none made. */
	assert_true(bpf_map_lookup_elem(datapath_bw_map_fd(dp),
					&(struct sluice_bw_key){ .ifindex = IFINDEX_LO,
								 .dir = SLUICE_DIR_EGRESS },
					&b) < 0);
}

/* What the host stack delivers: to_pod charges the pod's ingress. */
static void test_ingress_in_to_pod(void **state)
{
	__u64 drops = drops_counted(SLUICE_DIR_INGRESS);
	struct sluice_bw b;

	(void)state;
	set_ep(IP_B, (__u32)ifindex_b, SLUICE_EP_F_BW_INGRESS);
	put_bucket(ifindex_b, SLUICE_DIR_INGRESS, 1);
	assert_int_equal(run_udp(0, ifindex_b, IP_NODE, IP_B, 800), TC_ACT_OK);
	assert_int_equal(run_udp(0, ifindex_b, IP_NODE, IP_B, 800), TC_ACT_SHOT);
	b = get_bucket(ifindex_b, SLUICE_DIR_INGRESS);
	assert_int_equal(b.passed_packets, 1);
	assert_int_equal(b.dropped_packets, 1);
	assert_int_equal(drops_counted(SLUICE_DIR_INGRESS), drops + 1);
}

/* Without the flag a pod's packets never reach its bucket, even an empty
 * one left in the map. */
static void test_unlimited_pod_skips_the_map(void **state)
{
	struct sluice_bw b;

	(void)state;
	put_bucket(IFINDEX_LO, SLUICE_DIR_EGRESS, 0);
	put_bucket(ifindex_b, SLUICE_DIR_INGRESS, 0);
	assert_int_equal(run_udp(1, IFINDEX_LO, IP_A, IP_B, 1000), TC_ACT_REDIRECT);
	assert_int_equal(run_udp(0, ifindex_b, IP_NODE, IP_B, 1000), TC_ACT_OK);
	b = get_bucket(IFINDEX_LO, SLUICE_DIR_EGRESS);
	assert_int_equal(b.passed_packets + b.dropped_packets, 0);
	b = get_bucket(ifindex_b, SLUICE_DIR_INGRESS);
	assert_int_equal(b.passed_packets + b.dropped_packets, 0);
}

/* A flag whose bucket is gone (between the agent's writes): passes. */
static void test_flag_without_bucket_passes(void **state)
{
	(void)state;
	set_ep(IP_A, IFINDEX_LO, SLUICE_EP_F_BW_EGRESS);
	set_ep(IP_B, (__u32)ifindex_b, SLUICE_EP_F_BW_INGRESS);
	assert_int_equal(run_udp(1, IFINDEX_LO, IP_A, IP_B, 1000), TC_ACT_REDIRECT);
	assert_int_equal(run_udp(0, ifindex_b, IP_NODE, IP_B, 1000), TC_ACT_OK);
}

int main(void)
{
	const struct CMUnitTest pure[] = {
		cmocka_unit_test(test_refill),
		cmocka_unit_test(test_depth_cap),
		cmocka_unit_test(test_drop_accounting),
		cmocka_unit_test(test_gso_on_small_bucket),
		cmocka_unit_test(test_elapsed_overflow),
		cmocka_unit_test(test_long_run_rate),
	};
	const struct CMUnitTest progs[] = {
		cmocka_unit_test_setup(test_egress_in_from_pod, reset),
		cmocka_unit_test_setup(test_ingress_on_local_redirect, reset),
		cmocka_unit_test_setup(test_ingress_in_to_pod, reset),
		cmocka_unit_test_setup(test_unlimited_pod_skips_the_map, reset),
		cmocka_unit_test_setup(test_flag_without_bucket_passes, reset),
	};
	struct datapath_opts o = { .mode = ATTACH_TC };
	char err[512], cmd[128];
	int ret;

	ret = cmocka_run_group_tests_name("bandwidth-bucket", pure, NULL, NULL);
	if (geteuid()) {
		fprintf(stderr, "BPF tests need root\n");
		return 1;
	}
	/* A private network namespace: pod B's veth goes with the process. */
	if (unshare(CLONE_NEWNET) ||
	    system("ip link add sltest0 type veth peer name sltest1 && ip link set sltest0 up") ||
	    !(ifindex_b = (int)if_nametoindex("sltest0"))) {
		fprintf(stderr, "cannot set up the test network namespace\n");
		return 1;
	}
	snprintf(pin_dir, sizeof(pin_dir), "/sys/fs/bpf/sluice-bwtest-%d", (int)getpid());
	if (datapath_open(&dp, pin_dir, &o, err, sizeof(err))) {
		fprintf(stderr, "datapath_open: %s\n", err);
		ret = -1;
	} else {
		ret |= cmocka_run_group_tests_name("bandwidth-programs", progs, NULL, NULL);
	}
	datapath_close(dp);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", pin_dir);
	if (system(cmd))
		ret = -1;
	return ret ? 1 : 0;
}
