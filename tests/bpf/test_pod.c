// SPDX-License-Identifier: Apache-2.0
/*
 * The real pod programs run through BPF_PROG_TEST_RUN: crafted packets give
 * the expected verdict, the expected rewrite for the redirect target, and
 * the metrics map counts them. Maps are pinned in a throwaway bpffs
 * directory that is removed whatever happens.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <cmocka.h>

#include <bpf/bpf.h>

#include "loader.h"
#include "log.h"

#define IFINDEX_LO 1 /* test runs see skb->dev = loopback */

static char pin_dir[64];
static struct datapath *dp; /* shared by the group: set up once, torn down once */

static const unsigned char mac_a_pod[6] = { 0x02, 0xaa, 0, 0, 0, 1 };
static const unsigned char mac_a_lxc[6] = { 0x02, 0xaa, 0, 0, 0, 2 };
static const unsigned char mac_b_pod[6] = { 0x02, 0xbb, 0, 0, 0, 1 };
static const unsigned char mac_b_lxc[6] = { 0x02, 0xbb, 0, 0, 0, 2 };
#define IP_A "10.77.0.2"
#define IP_B "10.77.0.3"
#define IFINDEX_B 4242

struct pkt {
	struct ethhdr eth;
	struct iphdr ip;
	unsigned char payload[32];
} __attribute__((packed));

static __be32 ip4(const char *s)
{
	struct in_addr a;

	inet_pton(AF_INET, s, &a);
	return a.s_addr;
}

static __u16 ip_checksum(const void *hdr, size_t len)
{
	const __u16 *p = hdr;
	__u32 sum = 0;

	for (size_t i = 0; i < len / 2; i++)
		sum += p[i];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

static struct pkt make_ipv4(const char *src, const char *dst, __u8 ttl)
{
	struct pkt p = { 0 };

	memcpy(p.eth.h_source, mac_a_pod, 6);
	memcpy(p.eth.h_dest, mac_a_lxc, 6);
	p.eth.h_proto = htons(ETH_P_IP);
	p.ip.version = 4;
	p.ip.ihl = 5;
	p.ip.ttl = ttl;
	p.ip.protocol = IPPROTO_UDP;
	p.ip.tot_len = htons(sizeof(p.ip) + sizeof(p.payload));
	p.ip.saddr = ip4(src);
	p.ip.daddr = ip4(dst);
	p.ip.check = ip_checksum(&p.ip, sizeof(p.ip));
	memset(p.payload, 0x5a, sizeof(p.payload));
	return p;
}

struct run {
	int retval;
	unsigned char out[256];
	__u32 out_len;
};

static struct run run_prog(int ingress, const void *data, __u32 len)
{
	struct run r = { 0 };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = data, .data_size_in = len,
		    .data_out = r.out, .data_size_out = sizeof(r.out), .repeat = 1);
	int ret = bpf_prog_test_run_opts(datapath_prog_fd(dp, ingress), &opts);

	if (ret)
		fail_msg("BPF_PROG_TEST_RUN failed: %s", strerror(errno));
	r.retval = (int)opts.retval;
	r.out_len = opts.data_size_out;
	return r;
}

/* Counter delta of (reason, dir) across fn. */
static __u64 counter(enum sluice_reason reason, enum sluice_dir dir)
{
	struct sluice_metric m[SLUICE_METRICS_MAX];

	assert_int_equal(datapath_metrics_read(dp, m), 0);
	return m[SLUICE_METRIC_INDEX(reason, dir)].packets;
}

static int group_setup(void **state)
{
	struct sluice_endpoint a = { .ifindex = IFINDEX_LO }, b = { .ifindex = IFINDEX_B };
	char err[512];

	(void)state;
	if (geteuid()) {
		fprintf(stderr, "BPF tests need root\n");
		return -1;
	}
	snprintf(pin_dir, sizeof(pin_dir), "/sys/fs/bpf/sluice-bpftest-%d", (int)getpid());
	if (datapath_open(&dp, pin_dir, ATTACH_NONE, err, sizeof(err))) {
		fprintf(stderr, "datapath_open: %s\n", err);
		return -1;
	}
	memcpy(a.pod_mac, mac_a_pod, 6);
	memcpy(a.lxc_mac, mac_a_lxc, 6);
	memcpy(b.pod_mac, mac_b_pod, 6);
	memcpy(b.lxc_mac, mac_b_lxc, 6);
	if (datapath_endpoint_put(dp, ip4(IP_A), &a) || datapath_endpoint_put(dp, ip4(IP_B), &b))
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	char cmd[128];

	(void)state;
	datapath_close(dp);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", pin_dir);
	return system(cmd) ? -1 : 0;
}

static void test_to_local_pod(void **state)
{
	struct pkt p = make_ipv4(IP_A, IP_B, 64);
	__u64 before = counter(SLUICE_FWD_LOCAL, SLUICE_DIR_EGRESS);
	struct run r = run_prog(1, &p, sizeof(p));
	struct pkt *o = (struct pkt *)r.out;

	(void)state;
	assert_int_equal(r.retval, TC_ACT_REDIRECT);
	assert_int_equal(r.out_len, sizeof(p));
	/* Rewritten for pod B: from B's host veth to B's interface. */
	assert_memory_equal(o->eth.h_dest, mac_b_pod, 6);
	assert_memory_equal(o->eth.h_source, mac_b_lxc, 6);
	assert_int_equal(o->ip.ttl, 63);
	assert_int_equal(ip_checksum(&o->ip, sizeof(o->ip)), 0); /* still valid */
	assert_memory_equal(o->payload, p.payload, sizeof(p.payload));
	assert_int_equal(counter(SLUICE_FWD_LOCAL, SLUICE_DIR_EGRESS), before + 1);
}

static void test_to_elsewhere(void **state)
{
	struct pkt p = make_ipv4(IP_A, "192.0.2.1", 64);
	__u64 before = counter(SLUICE_PASS, SLUICE_DIR_EGRESS);
	struct run r = run_prog(1, &p, sizeof(p));

	(void)state;
	assert_int_equal(r.retval, TC_ACT_OK);
	assert_memory_equal(r.out, &p, sizeof(p)); /* untouched for the host stack */
	assert_int_equal(counter(SLUICE_PASS, SLUICE_DIR_EGRESS), before + 1);
}

static void test_ttl_expiring_goes_to_stack(void **state)
{
	struct pkt p = make_ipv4(IP_A, IP_B, 1);
	struct run r = run_prog(1, &p, sizeof(p));

	(void)state;
	assert_int_equal(r.retval, TC_ACT_OK);
	assert_memory_equal(r.out, &p, sizeof(p));
}

static void expect_drop(int ingress, const void *data, __u32 len, enum sluice_reason reason,
			enum sluice_dir dir)
{
	__u64 before = counter(reason, dir);
	struct run r = run_prog(ingress, data, len);

	assert_int_equal(r.retval, TC_ACT_SHOT);
	assert_int_equal(counter(reason, dir), before + 1);
}

static void test_spoofed_source(void **state)
{
	struct pkt p = make_ipv4("10.77.0.99", IP_B, 64);
	struct pkt q = make_ipv4(IP_B, IP_A, 64); /* B's address, but sent from A's veth */

	(void)state;
	expect_drop(1, &p, sizeof(p), SLUICE_DROP_SPOOFED, SLUICE_DIR_EGRESS);
	expect_drop(1, &q, sizeof(q), SLUICE_DROP_SPOOFED, SLUICE_DIR_EGRESS);
}

static void test_truncated(void **state)
{
	struct pkt p = make_ipv4(IP_A, IP_B, 64);

	(void)state;
	/* The kernel's test runner refuses IPv4 frames shorter than a bare IP
	 * header, so the short-header case is covered by the IHL overrun only.
	 * IHL claims options beyond the end of the packet. */
	p.ip.ihl = 15;
	expect_drop(1, &p, sizeof(p.eth) + sizeof(p.ip) + 8, SLUICE_DROP_TRUNCATED,
		    SLUICE_DIR_EGRESS);
}

static void test_bad_ip_header(void **state)
{
	struct pkt p = make_ipv4(IP_A, IP_B, 64);

	(void)state;
	p.ip.ihl = 3;
	expect_drop(1, &p, sizeof(p), SLUICE_DROP_BAD_IPHDR, SLUICE_DIR_EGRESS);
	p = make_ipv4(IP_A, IP_B, 64);
	p.ip.version = 6;
	expect_drop(1, &p, sizeof(p), SLUICE_DROP_BAD_IPHDR, SLUICE_DIR_EGRESS);
}

static void test_non_ip(void **state)
{
	struct pkt p = make_ipv4(IP_A, IP_B, 64);

	(void)state;
	p.eth.h_proto = htons(ETH_P_IPV6);
	expect_drop(1, &p, sizeof(p), SLUICE_DROP_UNKNOWN_L3, SLUICE_DIR_EGRESS);
}

static void test_arp_passes(void **state)
{
	unsigned char arp[42] = { 0 };
	__u64 before = counter(SLUICE_PASS, SLUICE_DIR_EGRESS);
	struct run r;

	(void)state;
	memset(arp, 0xff, 6);
	memcpy(arp + 6, mac_a_pod, 6);
	arp[12] = 0x08;
	arp[13] = 0x06;
	r = run_prog(1, arp, sizeof(arp));
	assert_int_equal(r.retval, TC_ACT_OK);
	assert_int_equal(counter(SLUICE_PASS, SLUICE_DIR_EGRESS), before + 1);
}

static void test_to_pod_counts_ingress(void **state)
{
	struct pkt p = make_ipv4("192.0.2.1", IP_A, 64);
	__u64 before = counter(SLUICE_PASS, SLUICE_DIR_INGRESS);
	__u64 bytes_before;
	struct sluice_metric m[SLUICE_METRICS_MAX];
	struct run r;

	(void)state;
	assert_int_equal(datapath_metrics_read(dp, m), 0);
	bytes_before = m[SLUICE_METRIC_INDEX(SLUICE_PASS, SLUICE_DIR_INGRESS)].bytes;
	r = run_prog(0, &p, sizeof(p));
	assert_int_equal(r.retval, TC_ACT_OK);
	assert_int_equal(counter(SLUICE_PASS, SLUICE_DIR_INGRESS), before + 1);
	assert_int_equal(datapath_metrics_read(dp, m), 0);
	assert_int_equal(m[SLUICE_METRIC_INDEX(SLUICE_PASS, SLUICE_DIR_INGRESS)].bytes,
			 bytes_before + sizeof(p));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_to_local_pod),
		cmocka_unit_test(test_to_elsewhere),
		cmocka_unit_test(test_ttl_expiring_goes_to_stack),
		cmocka_unit_test(test_spoofed_source),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_bad_ip_header),
		cmocka_unit_test(test_non_ip),
		cmocka_unit_test(test_arp_passes),
		cmocka_unit_test(test_to_pod_counts_ingress),
	};

	log_init("test_bpf", LOG_WARN);
	return cmocka_run_group_tests_name("bpf-pod", tests, group_setup, group_teardown);
}
