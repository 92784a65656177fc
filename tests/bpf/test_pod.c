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
#include <net/if.h>
#include <sched.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/icmp.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <cmocka.h>

#include <bpf/bpf.h>

#include "loader.h"
#include "log.h"

#define IFINDEX_LO 1 /* test runs see skb->dev = loopback */

static char pin_dir[64];
static struct datapath *dp; /* shared by the group: set up once, torn down once */
/* The datapath options of the group being run (main sets it per group). */
static const struct datapath_opts *group_opts;

static const unsigned char mac_a_pod[6] = { 0x02, 0xaa, 0, 0, 0, 1 };
static const unsigned char mac_a_lxc[6] = { 0x02, 0xaa, 0, 0, 0, 2 };
static const unsigned char mac_b_pod[6] = { 0x02, 0xbb, 0, 0, 0, 1 };
static const unsigned char mac_b_lxc[6] = { 0x02, 0xbb, 0, 0, 0, 2 };
#define IP_A "10.77.0.2"
#define IP_B "10.77.0.3"
static int ifindex_b; /* a real veth in the test's own network namespace */
#define NODE2_MAC "02:cc:00:00:00:02" /* node 2's uplink, as the test's neighbour table has it */
#define NODE3_MAC "02:cc:00:00:00:03"

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

/* An option-less IPv4 header for a packet of len bytes, checksum filled in. */
static struct iphdr ipv4_header(const char *src, const char *dst, __u8 proto, __u8 ttl, size_t len)
{
	struct iphdr ip = { .version = 4, .ihl = 5, .ttl = ttl, .protocol = proto };

	ip.tot_len = htons((__u16)len);
	ip.saddr = ip4(src);
	ip.daddr = ip4(dst);
	ip.check = ip_checksum(&ip, sizeof(ip));
	return ip;
}

static struct pkt make_ipv4(const char *src, const char *dst, __u8 ttl)
{
	struct pkt p = { 0 };

	memcpy(p.eth.h_source, mac_a_pod, 6);
	memcpy(p.eth.h_dest, mac_a_lxc, 6);
	p.eth.h_proto = htons(ETH_P_IP);
	p.ip = ipv4_header(src, dst, IPPROTO_UDP, ttl, sizeof(p.ip) + sizeof(p.payload));
	memset(p.payload, 0x5a, sizeof(p.payload));
	return p;
}

struct run {
	int retval;
	unsigned char out[256];
	__u32 out_len;
};

/* Run a program on a packet that arrives on ifindex (1: loopback). */
static struct run run_prog_on(int ingress, const void *data, __u32 len, int ifindex)
{
	struct run r = { 0 };
	struct __sk_buff ctx = { .ifindex = (__u32)ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = data, .data_size_in = len,
		    .data_out = r.out, .data_size_out = sizeof(r.out), .repeat = 1,
		    .ctx_in = ifindex > 1 ? &ctx : NULL, .ctx_size_in = ifindex > 1 ? sizeof(ctx) : 0);
	int ret = bpf_prog_test_run_opts(datapath_prog_fd(dp, ingress), &opts);

	if (ret)
		fail_msg("BPF_PROG_TEST_RUN failed: %s", strerror(errno));
	r.retval = (int)opts.retval;
	r.out_len = opts.data_size_out;
	return r;
}

static struct run run_prog(int ingress, const void *data, __u32 len)
{
	return run_prog_on(ingress, data, len, IFINDEX_LO);
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
	struct sluice_endpoint a = { .ifindex = IFINDEX_LO }, b = { 0 };
	char err[512];

	(void)state;
	if (geteuid()) {
		fprintf(stderr, "BPF tests need root\n");
		return -1;
	}
	/* A private network namespace: the veth that stands for pod B's host
	 * side disappears with this process, whatever happens. */
	if (unshare(CLONE_NEWNET) ||
	    system("ip link add sltest0 type veth peer name sltest1 && ip link set sltest0 up") ||
	    !(ifindex_b = (int)if_nametoindex("sltest0"))) {
		fprintf(stderr, "cannot set up the test network namespace\n");
		return -1;
	}
	/* The cross-node group: node 2 (10.200.0.12) is reachable through
	 * sltest0, its MAC known, and the namespace forwards, so that
	 * bpf_fib_lookup finds the next hop of encapsulated packets. */
	if (group_opts &&
	    system("ip link set sltest1 up && ip addr add 10.200.0.11/24 dev sltest0 && "
		   "ip neigh add 10.200.0.12 lladdr " NODE2_MAC " dev sltest0 nud permanent && "
		   "ip neigh add 10.200.0.13 lladdr " NODE3_MAC " dev sltest0 nud permanent && "
		   "ip route add 10.202.0.0/24 via 10.200.0.12 && "
		   "sysctl -qw net.ipv4.ip_forward=1")) {
		fprintf(stderr, "cannot set up the test underlay\n");
		return -1;
	}
	b.ifindex = (__u32)ifindex_b;
	snprintf(pin_dir, sizeof(pin_dir), "/sys/fs/bpf/sluice-bpftest-%d-%d", (int)getpid(),
		 group_opts ? 2 + (int)group_opts->routing : 1);
	if (datapath_open(&dp, pin_dir, group_opts, err, sizeof(err))) {
		fprintf(stderr, "datapath_open: %s\n", err);
		return -1;
	}
	/* The overlay group: a real collect_md vxlan device with from_overlay
	 * on its ingress (a test run cannot give a packet a tunnel key), and
	 * the namespace's loopback to send VXLAN through (see vxlan_send). */
	if (group_opts && group_opts->routing == SLUICE_ROUTING_OVERLAY &&
	    (system("ip link set lo up && "
		    "ip link add sltvx type vxlan external dstport 8472 nolearning && "
		    "ip link set sltvx up") ||
	     datapath_attach_node(dp, (int)if_nametoindex("sltvx"), "sltvx", HOOK_OVERLAY, err,
				  sizeof(err)))) {
		fprintf(stderr, "cannot set up the test vxlan device: %s\n", err);
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


/* ---- policy and connection tracking --------------------------------- */

#define ID_A 300
#define ID_B 301

struct l4pkt {
	struct ethhdr eth;
	struct iphdr ip;
	union {
		struct tcphdr tcp;
		struct {
			struct icmphdr icmp;
			struct iphdr inner;
			__be16 inner_ports[4];
		};
	};
} __attribute__((packed));

static struct l4pkt make_l4(const char *src, const char *dst, __u8 proto, __u16 sport, __u16 dport)
{
	struct l4pkt p = { 0 };

	memset(p.eth.h_dest, 0x02, 6);
	p.eth.h_proto = htons(ETH_P_IP);
	p.ip = ipv4_header(src, dst, proto, 64, sizeof(p) - sizeof(p.eth));
	if (proto == IPPROTO_TCP) {
		p.tcp.source = htons(sport);
		p.tcp.dest = htons(dport);
		p.tcp.syn = 1;
		p.tcp.doff = 5;
	}
	return p;
}

static void set_endpoint(const char *ip, __u32 flags, __u32 identity)
{
	struct sluice_endpoint ep;

	assert_int_equal(datapath_endpoint_get(dp, ip4(ip), &ep), 0);
	ep.flags = flags;
	ep.identity = identity;
	assert_int_equal(datapath_endpoint_put(dp, ip4(ip), &ep), 0);
}

static void ipcache_put(const char *ip, int prefix, __u32 id, __u32 cidr_id)
{
	struct sluice_ipcache_key k = { .prefixlen = (__u32)prefix, .ip = ip4(ip) };
	struct sluice_ipcache_value v = { .identity = id, .cidr_identity = cidr_id };

	assert_int_equal(bpf_map_update_elem(datapath_ipcache_map_fd(dp), &k, &v, BPF_ANY), 0);
}

/* bits < 0: any protocol; else the protocol and the top bits of port. */
static void rule_put(int fd, __u32 ep, __u32 id, __u8 dir_tier, __u8 proto, __u16 port, int bits)
{
	struct sluice_policy_key k = { .ep = ep, .identity = id, .dir = dir_tier };
	struct sluice_policy_value v = { 1 };

	if (bits < 0) {
		k.prefixlen = SLUICE_POLICY_FIXED_BITS;
	} else {
		k.prefixlen = SLUICE_POLICY_FIXED_BITS + 8 + (__u32)bits;
		k.proto = proto;
		k.port = htons(port);
	}
	assert_int_equal(bpf_map_update_elem(fd, &k, &v, BPF_ANY), 0);
}

/* Empty every policy map and open both endpoints again. */
static int policy_reset(void **state)
{
	int fds[] = { datapath_policy_map_fd(dp), datapath_deny_map_fd(dp),
		      datapath_ipcache_map_fd(dp), datapath_ct_map_fd(dp) };
	unsigned char key[64];

	(void)state;
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		while (!bpf_map_get_next_key(fds[i], NULL, key))
			bpf_map_delete_elem(fds[i], key);
	set_endpoint(IP_A, 0, ID_A);
	set_endpoint(IP_B, 0, ID_B);
	ipcache_put(IP_A, 32, ID_A, SLUICE_ID_WORLD);
	ipcache_put(IP_B, 32, ID_B, SLUICE_ID_WORLD);
	return 0;
}

static int send_a_to_b(__u8 proto, __u16 sport, __u16 dport)
{
	struct l4pkt p = make_l4(IP_A, IP_B, proto, sport, dport);

	return run_prog(1, &p, sizeof(p)).retval;
}

static void test_policy_ingress_allow_drop_and_reply(void **state)
{
	__u64 drops = counter(SLUICE_DROP_POLICY, SLUICE_DIR_EGRESS);
	__u64 news = counter(SLUICE_CT_NEW, SLUICE_DIR_EGRESS);
	struct l4pkt reply, fresh;

	(void)state;
	/* B: ingress only from A on 80/TCP; egress isolated with no rule at all. */
	set_endpoint(IP_B, SLUICE_EP_F_ISO_INGRESS | SLUICE_EP_F_ISO_EGRESS, ID_B);
	rule_put(datapath_policy_map_fd(dp), (__u32)ifindex_b, ID_A, SLUICE_DIR_INGRESS,
		 IPPROTO_TCP, 80, 16);
	assert_int_equal(send_a_to_b(IPPROTO_TCP, 40000, 80), TC_ACT_REDIRECT);
	assert_int_equal(counter(SLUICE_CT_NEW, SLUICE_DIR_EGRESS), news + 1);
	assert_int_equal(send_a_to_b(IPPROTO_TCP, 40001, 81), TC_ACT_SHOT);
	assert_int_equal(send_a_to_b(IPPROTO_UDP, 40002, 80), TC_ACT_SHOT);
	assert_int_equal(counter(SLUICE_DROP_POLICY, SLUICE_DIR_EGRESS), drops + 2);
	/* B's reply passes on the tracked flow although B may send nothing new. */
	reply = make_l4(IP_B, IP_A, IPPROTO_TCP, 80, 40000);
	assert_int_equal(run_prog_on(1, &reply, sizeof(reply), ifindex_b).retval, TC_ACT_REDIRECT);
	fresh = make_l4(IP_B, IP_A, IPPROTO_TCP, 80, 40999);
	assert_int_equal(run_prog_on(1, &fresh, sizeof(fresh), ifindex_b).retval, TC_ACT_SHOT);
}

static void test_policy_deny_rule_wins(void **state)
{
	__u64 denied = counter(SLUICE_DROP_POLICY_DENY, SLUICE_DIR_EGRESS);

	(void)state;
	set_endpoint(IP_A, SLUICE_EP_F_ISO_EGRESS, ID_A);
	rule_put(datapath_policy_map_fd(dp), IFINDEX_LO, SLUICE_ID_ANY, SLUICE_DIR_EGRESS, 0, 0, -1);
	rule_put(datapath_deny_map_fd(dp), IFINDEX_LO, ID_B, SLUICE_DIR_EGRESS, IPPROTO_TCP, 443, 16);
	assert_int_equal(send_a_to_b(IPPROTO_TCP, 41000, 443), TC_ACT_SHOT);
	assert_int_equal(counter(SLUICE_DROP_POLICY_DENY, SLUICE_DIR_EGRESS), denied + 1);
	assert_int_equal(send_a_to_b(IPPROTO_TCP, 41001, 444), TC_ACT_REDIRECT);
	assert_int_equal(send_a_to_b(IPPROTO_UDP, 41002, 443), TC_ACT_REDIRECT);
}

static void test_policy_port_range_block(void **state)
{
	(void)state;
	/* 8000-8007: one block of 8 ports (13 fixed bits). */
	set_endpoint(IP_A, SLUICE_EP_F_ISO_EGRESS, ID_A);
	rule_put(datapath_policy_map_fd(dp), IFINDEX_LO, ID_B, SLUICE_DIR_EGRESS, IPPROTO_TCP, 8000, 13);
	assert_int_equal(send_a_to_b(IPPROTO_TCP, 42000, 7999), TC_ACT_SHOT);
	assert_int_equal(send_a_to_b(IPPROTO_TCP, 42001, 8000), TC_ACT_REDIRECT);
	assert_int_equal(send_a_to_b(IPPROTO_TCP, 42002, 8007), TC_ACT_REDIRECT);
	assert_int_equal(send_a_to_b(IPPROTO_TCP, 42003, 8008), TC_ACT_SHOT);
}

static void test_icmp_error_for_tracked_flow(void **state)
{
	__u64 related = counter(SLUICE_CT_RELATED, SLUICE_DIR_EGRESS);
	struct l4pkt err;

	(void)state;
	assert_int_equal(send_a_to_b(IPPROTO_TCP, 43000, 80), TC_ACT_REDIRECT);
	set_endpoint(IP_B, SLUICE_EP_F_ISO_EGRESS, ID_B);
	/* B answers with "port unreachable" about A's packet. */
	err = make_l4(IP_B, IP_A, IPPROTO_ICMP, 0, 0);
	err.icmp.type = 3;
	err.icmp.code = 3;
	err.inner.version = 4;
	err.inner.ihl = 5;
	err.inner.protocol = IPPROTO_TCP;
	err.inner.saddr = ip4(IP_A);
	err.inner.daddr = ip4(IP_B);
	err.inner_ports[0] = htons(43000);
	err.inner_ports[1] = htons(80);
	assert_int_equal(run_prog_on(1, &err, sizeof(err), ifindex_b).retval, TC_ACT_REDIRECT);
	assert_int_equal(counter(SLUICE_CT_RELATED, SLUICE_DIR_EGRESS), related + 1);
	/* The same error about a flow nobody tracked is a new, unallowed flow. */
	err.inner_ports[0] = htons(43999);
	assert_int_equal(run_prog_on(1, &err, sizeof(err), ifindex_b).retval, TC_ACT_SHOT);
}

static void test_ingress_from_node_world_and_cidr(void **state)
{
	struct l4pkt p;

	(void)state;
	ipcache_put("10.77.0.1", 32, SLUICE_ID_HOST, SLUICE_ID_WORLD);
	ipcache_put("192.0.2.0", 24, SLUICE_ID_WORLD, SLUICE_ID_FIRST_CIDR + 5);
	set_endpoint(IP_A, SLUICE_EP_F_ISO_INGRESS, ID_A);
	rule_put(datapath_policy_map_fd(dp), IFINDEX_LO, SLUICE_ID_FIRST_CIDR + 5, SLUICE_DIR_INGRESS,
		 IPPROTO_TCP, 80, 16);
	p = make_l4("10.77.0.1", IP_A, IPPROTO_TCP, 44000, 9999); /* the node: always */
	assert_int_equal(run_prog(0, &p, sizeof(p)).retval, TC_ACT_OK);
	p = make_l4("192.0.2.7", IP_A, IPPROTO_TCP, 44001, 80); /* inside the ipBlock */
	assert_int_equal(run_prog(0, &p, sizeof(p)).retval, TC_ACT_OK);
	p = make_l4("192.0.2.7", IP_A, IPPROTO_TCP, 44002, 81);
	assert_int_equal(run_prog(0, &p, sizeof(p)).retval, TC_ACT_SHOT);
	p = make_l4("198.51.100.1", IP_A, IPPROTO_TCP, 44003, 80); /* the world */
	assert_int_equal(run_prog(0, &p, sizeof(p)).retval, TC_ACT_SHOT);
}

static void test_audit_counts_but_passes(void **state)
{
	__u64 audit = counter(SLUICE_AUDIT_WOULD_DROP, SLUICE_DIR_INGRESS);
	struct l4pkt p = make_l4("198.51.100.1", IP_A, IPPROTO_TCP, 45000, 80);

	(void)state;
	set_endpoint(IP_A, SLUICE_EP_F_AUDIT_ISO_INGRESS, ID_A);
	assert_int_equal(run_prog(0, &p, sizeof(p)).retval, TC_ACT_OK);
	assert_int_equal(counter(SLUICE_AUDIT_WOULD_DROP, SLUICE_DIR_INGRESS), audit + 1);
}

/* ---- flows the host stack forwards (kube-proxy's Service NAT) ------------ */

/* The CT flags of the flow (src:sport -> dst:dport, TCP), or -1 if untracked. */
static int ct_flags_of(const char *src, __u16 sport, const char *dst, __u16 dport)
{
	struct sluice_ct_key k = { .saddr = ip4(src), .daddr = ip4(dst), .sport = htons(sport),
				   .dport = htons(dport), .proto = IPPROTO_TCP };
	struct sluice_ct_value v;

	if (bpf_map_lookup_elem(datapath_ct_map_fd(dp), &k, &v))
		return -1;
	return (int)v.flags;
}

static void test_stack_flow_reply_goes_to_stack(void **state)
{
	__u64 to_stack = counter(SLUICE_TO_STACK_FLOW, SLUICE_DIR_EGRESS);
	struct l4pkt fwd = make_l4(IP_A, IP_B, IPPROTO_TCP, 47000, 8080), reply;
	struct run r;

	(void)state;
	/* A's connection to a ClusterIP, DNATed to B by the host: to_pod on B's
	 * veth sees A -> B. The flow is now the stack's. */
	assert_int_equal(run_prog_on(0, &fwd, sizeof(fwd), ifindex_b).retval, TC_ACT_OK);
	assert_int_equal(ct_flags_of(IP_A, 47000, IP_B, 8080), SLUICE_CT_F_VIA_STACK);
	/* B's reply goes up the stack (to be un-DNATed), untouched. */
	reply = make_l4(IP_B, IP_A, IPPROTO_TCP, 8080, 47000);
	r = run_prog_on(1, &reply, sizeof(reply), ifindex_b);
	assert_int_equal(r.retval, TC_ACT_OK);
	assert_memory_equal(r.out, &reply, sizeof(reply));
	assert_int_equal(counter(SLUICE_TO_STACK_FLOW, SLUICE_DIR_EGRESS), to_stack + 1);
	/* So does a later packet of A's: the flow never takes the fast path. */
	assert_int_equal(send_a_to_b(IPPROTO_TCP, 47000, 8080), TC_ACT_OK);
	assert_int_equal(counter(SLUICE_TO_STACK_FLOW, SLUICE_DIR_EGRESS), to_stack + 2);
}

static void test_direct_flow_reply_is_redirected(void **state)
{
	__u64 to_stack = counter(SLUICE_TO_STACK_FLOW, SLUICE_DIR_EGRESS);
	struct l4pkt reply = make_l4(IP_B, IP_A, IPPROTO_TCP, 8080, 47001);

	(void)state;
	/* A straight to B: from_pod delivers it, the flow is not the stack's. */
	assert_int_equal(send_a_to_b(IPPROTO_TCP, 47001, 8080), TC_ACT_REDIRECT);
	assert_int_equal(ct_flags_of(IP_A, 47001, IP_B, 8080), 0);
	assert_int_equal(run_prog_on(1, &reply, sizeof(reply), ifindex_b).retval, TC_ACT_REDIRECT);
	assert_int_equal(ct_flags_of(IP_A, 47001, IP_B, 8080), SLUICE_CT_F_REPLY_SEEN);
	assert_int_equal(counter(SLUICE_TO_STACK_FLOW, SLUICE_DIR_EGRESS), to_stack);
}

static void test_stack_flow_is_still_policed(void **state)
{
	struct l4pkt fwd = make_l4(IP_A, IP_B, IPPROTO_TCP, 47002, 8080);

	(void)state;
	/* B admits nobody: a Service connection DNATed to it is dropped at
	 * its veth like any other, and nothing is tracked. */
	set_endpoint(IP_B, SLUICE_EP_F_ISO_INGRESS, ID_B);
	assert_int_equal(run_prog_on(0, &fwd, sizeof(fwd), ifindex_b).retval, TC_ACT_SHOT);
	assert_int_equal(ct_flags_of(IP_A, 47002, IP_B, 8080), -1);
}

/* ---- cross-node: overlay encapsulation and masquerade ------------------ */

#define NODE_IP "10.77.0.1"
#define REMOTE_POD "10.88.2.5"
#define REMOTE_POD_LABELLED "10.88.2.6"
#define NODE3_POD "10.88.4.7"
#define OUTSIDE "198.51.100.9"
#define NODE2 "10.200.0.12"
#define NODE3 "10.200.0.13"
#define NOT_A_NODE "10.200.0.99"	/* a host on the node network */
#define ID_R 302

static const struct datapath_opts native = {
	.mode = ATTACH_TC,
	.routing = SLUICE_ROUTING_NATIVE,
	.node_ip = 0x0a4d0001,	/* NODE_IP */
};

static void ipcache_put_full(const char *ip, int prefix, __u32 id, const char *tunnel, __u32 flags)
{
	struct sluice_ipcache_key k = { .prefixlen = (__u32)prefix, .ip = ip4(ip) };
	struct sluice_ipcache_value v = { .identity = id, .cidr_identity = SLUICE_ID_WORLD,
					  .tunnel_endpoint = tunnel ? ip4(tunnel) : 0, .flags = flags };

	assert_int_equal(bpf_map_update_elem(datapath_ipcache_map_fd(dp), &k, &v, BPF_ANY), 0);
}

static const struct datapath_opts overlay_masq = {
	.mode = ATTACH_TC,
	.routing = SLUICE_ROUTING_OVERLAY,
	.vxlan_ifindex = 1,	/* only recorded as the redirect target here */
	.masquerade = 1,
	.node_ip = 0x0a4d0001,	/* NODE_IP */
};

/* TCP checksum over the pseudo-header, header and payload: 0 when valid. */
static __u16 tcp_checksum(const struct l4pkt *p)
{
	size_t len = sizeof(*p) - sizeof(p->eth) - sizeof(p->ip);
	const unsigned char *b = (const unsigned char *)p + sizeof(p->eth) + sizeof(p->ip);
	__u32 sum = 0;

	sum += (p->ip.saddr & 0xffff) + (p->ip.saddr >> 16);
	sum += (p->ip.daddr & 0xffff) + (p->ip.daddr >> 16);
	sum += htons(IPPROTO_TCP) + htons((__u16)len);
	for (size_t i = 0; i + 1 < len; i += 2) {
		__u16 w;

		memcpy(&w, b + i, 2);
		sum += w;
	}
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

static void fill_tcp_checksum(struct l4pkt *p)
{
	p->tcp.check = 0;
	p->tcp.check = tcp_checksum(p);
}

static int nat_setup(void **state)
{
	struct sluice_nomasq_key k = { .prefixlen = 16, .ip = ip4("10.88.0.0") };
	__u8 one = 1;

	policy_reset(state);
	/* Node 2 holds 10.88.2.0/24; the cluster is 10.88.0.0/16. */
	ipcache_put("10.88.2.0", 24, SLUICE_ID_WORLD, SLUICE_ID_WORLD);
	{
		struct sluice_ipcache_key ik = { .prefixlen = 24, .ip = ip4("10.88.2.0") };
		struct sluice_ipcache_value iv = { .identity = SLUICE_ID_WORLD,
						   .cidr_identity = SLUICE_ID_WORLD,
						   .tunnel_endpoint = ip4("10.200.0.12") };

		assert_int_equal(bpf_map_update_elem(datapath_ipcache_map_fd(dp), &ik, &iv, BPF_ANY), 0);
	}
	assert_int_equal(bpf_map_update_elem(datapath_nomasq_map_fd(dp), &k, &one, BPF_ANY), 0);
	/* The other nodes' own addresses, as the agent marks them; node 3
	 * holds 10.88.4.0/24; this node's address; one pod of node 2's with
	 * a Pod object (a label identity). */
	ipcache_put_full(NODE2, 32, SLUICE_ID_WORLD, NODE2, SLUICE_IPC_F_NODE);
	ipcache_put_full(NODE3, 32, SLUICE_ID_WORLD, NODE3, SLUICE_IPC_F_NODE);
	ipcache_put_full("10.88.4.0", 24, SLUICE_ID_WORLD, NODE3, 0);
	ipcache_put_full(NODE_IP, 32, SLUICE_ID_HOST, NULL, 0);
	ipcache_put_full(REMOTE_POD_LABELLED, 32, ID_R, NODE2, 0);
	return 0;
}

/* An l4pkt in VXLAN, as it crosses the underlay. */
struct vxpkt {
	struct ethhdr eth;
	struct iphdr ip;
	struct udphdr udp;
	__be32 vx_flags;
	__be32 vx_vni;
	struct l4pkt inner;
} __attribute__((packed));

static void test_encap_to_remote_pod(void **state)
{
	struct l4pkt p = make_l4(IP_A, REMOTE_POD, IPPROTO_TCP, 46000, 80);
	__u64 fwd = counter(SLUICE_FWD_OVERLAY, SLUICE_DIR_EGRESS);
	__u64 encap = counter(SLUICE_OVERLAY_ENCAP, SLUICE_DIR_EGRESS);
	const unsigned char node2_mac[6] = { 0x02, 0xcc, 0, 0, 0, 2 };
	unsigned char uplink_mac[6];
	struct vxpkt *o;
	struct run r;
	FILE *f;

	(void)state;
	memcpy(p.eth.h_source, mac_a_pod, 6);
	memcpy(p.eth.h_dest, mac_a_lxc, 6);
	p.ip.tos = 0x03; /* ECN CE */
	p.ip.check = 0;
	p.ip.check = ip_checksum(&p.ip, sizeof(p.ip));
	fill_tcp_checksum(&p);
	r = run_prog(1, &p, sizeof(p));
	o = (struct vxpkt *)r.out;
	assert_int_equal(r.retval, TC_ACT_REDIRECT);
	assert_int_equal(r.out_len, sizeof(p) + SLUICE_OVERLAY_OVERHEAD);
	/* Outer Ethernet: from the uplink to the next hop (the neighbour). */
	/* (sysfs still shows the namespace this process started in) */
	f = popen("ip -br link show sltest0 | awk '{print $3}'", "r");
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &uplink_mac[0], &uplink_mac[1],
				&uplink_mac[2], &uplink_mac[3], &uplink_mac[4], &uplink_mac[5]), 6);
	pclose(f);
	assert_memory_equal(o->eth.h_dest, node2_mac, 6);
	assert_memory_equal(o->eth.h_source, uplink_mac, 6);
	assert_int_equal(ntohs(o->eth.h_proto), ETH_P_IP);
	/* Outer IPv4: node to node, valid, never DF; ECN CE goes out as ECT(0). */
	assert_int_equal(o->ip.version, 4);
	assert_int_equal(o->ip.ihl, 5);
	assert_int_equal(o->ip.saddr, ip4(NODE_IP));
	assert_int_equal(o->ip.daddr, ip4("10.200.0.12"));
	assert_int_equal(o->ip.protocol, IPPROTO_UDP);
	assert_int_equal(o->ip.ttl, 64);
	assert_int_equal(o->ip.tos, 0x02);
	assert_int_equal(o->ip.frag_off, 0);
	assert_int_equal(ntohs(o->ip.tot_len), r.out_len - sizeof(o->eth));
	assert_int_equal(ip_checksum(&o->ip, sizeof(o->ip)), 0);
	/* UDP to the VXLAN port, from the kernel's ephemeral range. */
	assert_int_equal(ntohs(o->udp.dest), SLUICE_VXLAN_PORT);
	assert_in_range(ntohs(o->udp.source), 32768, 60999);
	assert_int_equal(ntohs(o->udp.len), r.out_len - sizeof(o->eth) - sizeof(o->ip));
	assert_int_equal(o->udp.check, 0);
	/* VXLAN: the I flag, VNI 1. */
	assert_int_equal(ntohl(o->vx_flags), 0x08000000);
	assert_int_equal(ntohl(o->vx_vni), 1 << 8);
	/* The frame itself: as the pod sent it, one hop older. */
	assert_memory_equal(o->inner.eth.h_source, mac_a_pod, 6);
	assert_memory_equal(o->inner.eth.h_dest, mac_a_lxc, 6);
	assert_int_equal(o->inner.ip.ttl, 63);
	assert_int_equal(o->inner.ip.tos, 0x03);
	assert_int_equal(ip_checksum(&o->inner.ip, sizeof(o->inner.ip)), 0);
	assert_int_equal(tcp_checksum(&o->inner), 0);
	assert_int_equal(counter(SLUICE_FWD_OVERLAY, SLUICE_DIR_EGRESS), fwd + 1);
	assert_int_equal(counter(SLUICE_OVERLAY_ENCAP, SLUICE_DIR_EGRESS), encap + 1);

	/* One flow, one source port (the underlay's ECMP keeps it on a path). */
	assert_int_equal(((struct vxpkt *)run_prog(1, &p, sizeof(p)).out)->udp.source, o->udp.source);
}

/* A node the underlay has no route to: the vxlan device tunnels the packet
 * (BPF only sets the key), rather than dropping it. */
static void test_encap_without_route_uses_device(void **state)
{
	struct sluice_ipcache_key k = { .prefixlen = 24, .ip = ip4("10.88.3.0") };
	struct sluice_ipcache_value v = { .identity = SLUICE_ID_WORLD, .cidr_identity = SLUICE_ID_WORLD,
					  .tunnel_endpoint = ip4("10.201.0.13") };
	struct l4pkt p = make_l4(IP_A, "10.88.3.7", IPPROTO_TCP, 46010, 80);
	__u64 fwd = counter(SLUICE_FWD_OVERLAY, SLUICE_DIR_EGRESS);
	__u64 encap = counter(SLUICE_OVERLAY_ENCAP, SLUICE_DIR_EGRESS);
	struct run r;

	(void)state;
	assert_int_equal(bpf_map_update_elem(datapath_ipcache_map_fd(dp), &k, &v, BPF_ANY), 0);
	r = run_prog(1, &p, sizeof(p));
	assert_int_equal(r.retval, TC_ACT_REDIRECT);
	assert_int_equal(r.out_len, sizeof(p)); /* no headers added here */
	assert_int_equal(((struct l4pkt *)r.out)->ip.ttl, 63);
	assert_int_equal(ip_checksum(&((struct l4pkt *)r.out)->ip, sizeof(p.ip)), 0);
	assert_int_equal(counter(SLUICE_FWD_OVERLAY, SLUICE_DIR_EGRESS), fwd + 1);
	assert_int_equal(counter(SLUICE_OVERLAY_ENCAP, SLUICE_DIR_EGRESS), encap);
}

/* What node 2 sends to this node for pod B: inner TCP REMOTE_POD -> IP_B. */
static struct vxpkt make_vxlan(__u16 sport, __u16 dport)
{
	struct vxpkt v = { 0 };

	v.inner = make_l4(REMOTE_POD, IP_B, IPPROTO_TCP, sport, dport);
	memcpy(v.inner.eth.h_source, mac_a_pod, 6); /* whatever node 2's pod had */
	fill_tcp_checksum(&v.inner);
	memset(v.eth.h_dest, 0x02, 6);
	sscanf(NODE2_MAC, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &v.eth.h_source[0], &v.eth.h_source[1],
	       &v.eth.h_source[2], &v.eth.h_source[3], &v.eth.h_source[4], &v.eth.h_source[5]);
	v.eth.h_proto = htons(ETH_P_IP);
	v.ip = ipv4_header("10.200.0.12", NODE_IP, IPPROTO_UDP, 64, sizeof(v) - sizeof(v.eth));
	v.udp.source = htons(40404);
	v.udp.dest = htons(SLUICE_VXLAN_PORT);
	v.udp.len = htons(sizeof(v) - sizeof(v.eth) - sizeof(v.ip));
	v.vx_flags = htonl(0x08000000);
	v.vx_vni = htonl(1 << 8);
	return v;
}

/* A frame from node 2 on the node network (native routing): from its MAC. */
static struct l4pkt from_node2(const char *src, const char *dst, __u16 sport, __u16 dport)
{
	struct l4pkt p = make_l4(src, dst, IPPROTO_TCP, sport, dport);

	assert_int_equal(sscanf(NODE2_MAC, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &p.eth.h_source[0],
				&p.eth.h_source[1], &p.eth.h_source[2], &p.eth.h_source[3],
				&p.eth.h_source[4], &p.eth.h_source[5]), 6);
	return p;
}

/* The counter of (reason, dir) once it has passed base (the vxlan device
 * delivers after the send returns), or as it is after a second. */
static __u64 counter_after(enum sluice_reason reason, enum sluice_dir dir, __u64 base)
{
	const struct timespec tick = { 0, 10 * 1000 * 1000 };

	for (int i = 0; i < 100 && counter(reason, dir) <= base; i++)
		nanosleep(&tick, NULL);
	return counter(reason, dir);
}

/* Tunnel inner through the real vxlan device sltvx: a UDP datagram to its
 * port, over loopback, from outer (node 2, node 3 or a host that is no
 * node; IP_TRANSPARENT sends from an address the namespace does not have,
 * which keeps node 2 reachable through sltest0 for the encapsulation
 * tests), so that from_overlay gets the frame with outer as its tunnel
 * key's remote address. */
static void vxlan_send(const char *outer, const struct l4pkt *inner)
{
	struct {
		__be32 flags, vni;
		struct l4pkt frame;
	} __attribute__((packed)) v = { htonl(0x08000000), htonl(1 << 8), *inner };
	struct sockaddr_in src = { .sin_family = AF_INET, .sin_addr.s_addr = ip4(outer) };
	struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons(SLUICE_VXLAN_PORT),
				   .sin_addr.s_addr = ip4("10.200.0.11") };
	int fd = socket(AF_INET, SOCK_DGRAM, 0), one = 1;

	assert_true(fd >= 0);
	assert_int_equal(setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one)), 0);
	memcpy(v.frame.eth.h_source, mac_a_pod, 6);
	assert_int_equal(bind(fd, (struct sockaddr *)&src, sizeof(src)), 0);
	assert_int_equal(sendto(fd, &v, sizeof(v), 0, (struct sockaddr *)&dst, sizeof(dst)),
			 (ssize_t)sizeof(v));
	close(fd);
}

/* Run a node-device program on a frame with the skb fields in *ctx (mark,
 * gso_size...), which gets them back as the program left them. */
static struct run run_hook(enum node_hook hook, const void *data, __u32 len, struct __sk_buff *ctx)
{
	struct run r = { 0 };
	struct __sk_buff in = *ctx;
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = data, .data_size_in = len,
		    .data_out = r.out, .data_size_out = sizeof(r.out), .repeat = 1,
		    .ctx_in = &in, .ctx_size_in = sizeof(in), .ctx_out = ctx,
		    .ctx_size_out = sizeof(*ctx));

	if (bpf_prog_test_run_opts(datapath_node_prog_fd(dp, hook), &opts))
		fail_msg("BPF_PROG_TEST_RUN failed: %s", strerror(errno));
	r.retval = (int)opts.retval;
	r.out_len = opts.data_size_out;
	return r;
}

/* from_netdev on a frame arriving on sltest0 (the segment node 2 and
 * node 3 are on); gso_size non-zero makes it a GSO packet. */
static struct run run_netdev_gso(const void *data, __u32 len, __u32 gso_size)
{
	struct __sk_buff ctx = { .gso_size = gso_size, .gso_segs = gso_size ? 2 : 0,
				 .ifindex = (__u32)ifindex_b };

	return run_hook(HOOK_NETDEV, data, len, &ctx);
}

static struct run run_netdev_raw(const void *data, __u32 len)
{
	return run_netdev_gso(data, len, 0);
}

static void test_decap_to_local_pod(void **state)
{
	struct vxpkt v = make_vxlan(51000, 8080);
	__u64 decap = counter(SLUICE_OVERLAY_DECAP, SLUICE_DIR_INGRESS);
	__u64 remote = counter(SLUICE_FWD_REMOTE, SLUICE_DIR_INGRESS);
	struct run r = run_netdev_raw(&v, sizeof(v));
	struct l4pkt *o = (struct l4pkt *)r.out;

	(void)state;
	assert_int_equal(r.retval, TC_ACT_REDIRECT);
	assert_int_equal(r.out_len, sizeof(v.inner));
	assert_memory_equal(o->eth.h_dest, mac_b_pod, 6);
	assert_memory_equal(o->eth.h_source, mac_b_lxc, 6);
	assert_int_equal(ntohs(o->eth.h_proto), ETH_P_IP);
	assert_int_equal(o->ip.saddr, ip4(REMOTE_POD));
	assert_int_equal(o->ip.ttl, 63);
	assert_int_equal(ip_checksum(&o->ip, sizeof(o->ip)), 0);
	assert_int_equal(tcp_checksum(o), 0);
	assert_memory_equal(&o->tcp, &v.inner.tcp, sizeof(o->tcp));
	assert_int_equal(counter(SLUICE_OVERLAY_DECAP, SLUICE_DIR_INGRESS), decap + 1);
	assert_int_equal(counter(SLUICE_FWD_REMOTE, SLUICE_DIR_INGRESS), remote + 1);
	/* Tracked like any flow from another node's pod (not the stack's). */
	assert_int_equal(ct_flags_of(REMOTE_POD, 51000, IP_B, 8080), 0);
}

/* Congestion marked on the way (outer CE) reaches an ECN-capable flow
 * (RFC 6040); a flow that is not ECN-capable is the device's to drop. */
static void test_decap_ecn(void **state)
{
	struct vxpkt v = make_vxlan(51001, 8080), w;
	struct l4pkt *o;
	struct run r;

	(void)state;
	v.ip.tos = 0x03;
	v.inner.ip.tos = 0x02; /* ECT(0) */
	v.inner.ip.check = 0;
	v.inner.ip.check = ip_checksum(&v.inner.ip, sizeof(v.inner.ip));
	r = run_netdev_raw(&v, sizeof(v));
	o = (struct l4pkt *)r.out;
	assert_int_equal(r.retval, TC_ACT_REDIRECT);
	assert_int_equal(o->ip.tos, 0x03);
	assert_int_equal(ip_checksum(&o->ip, sizeof(o->ip)), 0);

	w = make_vxlan(51002, 8080);
	w.ip.tos = 0x03; /* inner Not-ECT */
	r = run_netdev_raw(&w, sizeof(w));
	assert_int_equal(r.retval, TC_ACT_OK);
	assert_memory_equal(r.out, &w, sizeof(w));
}

/* Anything that is not sluice's VXLAN for a pod here, or that the stack
 * must see, is left whole for the kernel's vxlan device. */
static void test_decap_declined(void **state)
{
	__u64 decap = counter(SLUICE_OVERLAY_DECAP, SLUICE_DIR_INGRESS);
	struct vxpkt v[8];
	struct run r;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		v[i] = make_vxlan((__u16)(52000 + i), 8080);
	v[0].vx_vni = htonl(2 << 8);			/* another VNI */
	v[1].udp.dest = htons(4789);			/* another port */
	v[2].vx_flags = 0;				/* no I flag */
	v[3].ip.daddr = ip4("10.77.0.250");		/* not this node's address */
	v[4].ip.frag_off = htons(0x2000);		/* a fragment */
	v[5].inner.ip.daddr = ip4("10.77.0.1");	/* for the node, not a pod */
	v[6].inner.ip.ttl = 1;				/* the stack answers time exceeded */
	v[7].inner.eth.h_proto = htons(0x86dd);	/* not IPv4 inside */
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		r = run_netdev_raw(&v[i], sizeof(v[i]));
		assert_int_equal(r.retval, TC_ACT_OK);
		assert_int_equal(r.out_len, sizeof(v[i]));
		assert_memory_equal(r.out, &v[i], sizeof(v[i]));
	}
	/* A GSO packet: the kernel's tunnel state would outlive the headers
	 * (a pod forwarding it would see it cut up); the device clears it. */
	v[0] = make_vxlan(52100, 8080);
	r = run_netdev_gso(&v[0], sizeof(v[0]), 1398);
	assert_int_equal(r.retval, TC_ACT_OK);
	assert_memory_equal(r.out, &v[0], sizeof(v[0]));
	/* Cut short inside the VXLAN header: not even looked into. */
	r = run_netdev_raw(&v[0], sizeof(struct ethhdr) + sizeof(struct iphdr) + 12);
	assert_int_equal(r.retval, TC_ACT_OK);
	assert_int_equal(counter(SLUICE_OVERLAY_DECAP, SLUICE_DIR_INGRESS), decap);
}

/* The pod's ingress policy holds on the inner headers, before anything is
 * taken off. */
static void test_decap_policy_drop(void **state)
{
	__u64 drops = counter(SLUICE_DROP_POLICY, SLUICE_DIR_INGRESS);
	struct vxpkt v = make_vxlan(53000, 8080);

	(void)state;
	set_endpoint(IP_B, SLUICE_EP_F_ISO_INGRESS, ID_B);
	assert_int_equal(run_netdev_raw(&v, sizeof(v)).retval, TC_ACT_SHOT);
	assert_int_equal(counter(SLUICE_DROP_POLICY, SLUICE_DIR_INGRESS), drops + 1);
	set_endpoint(IP_B, 0, ID_B);
}

static void test_no_encap_outside_the_cluster(void **state)
{
	struct l4pkt p = make_l4(IP_A, OUTSIDE, IPPROTO_TCP, 46001, 80);

	(void)state;
	assert_int_equal(run_prog(1, &p, sizeof(p)).retval, TC_ACT_OK);
}

static struct run run_netdev(int egress, struct l4pkt *p)
{
	struct __sk_buff ctx = { 0 };

	return run_hook(egress ? HOOK_NETDEV_OUT : HOOK_NETDEV, p, sizeof(*p), &ctx);
}

static void test_masquerade_and_reverse(void **state)
{
	struct l4pkt p = make_l4(IP_A, OUTSIDE, IPPROTO_TCP, 40000, 80), reply;
	struct l4pkt *o;
	struct run r;

	(void)state;
	fill_tcp_checksum(&p);
	r = run_netdev(1, &p);
	o = (struct l4pkt *)r.out;
	assert_int_equal(r.retval, TC_ACT_OK);
	assert_int_equal(o->ip.saddr, ip4(NODE_IP));
	assert_int_equal(ntohs(o->tcp.source), 40000); /* free, so kept */
	assert_int_equal(ip_checksum(&o->ip, sizeof(o->ip)), 0);
	assert_int_equal(tcp_checksum(o), 0);

	reply = make_l4(OUTSIDE, NODE_IP, IPPROTO_TCP, 80, 40000);
	fill_tcp_checksum(&reply);
	r = run_netdev(0, &reply);
	o = (struct l4pkt *)r.out;
	assert_int_equal(o->ip.daddr, ip4(IP_A));
	assert_int_equal(ntohs(o->tcp.dest), 40000);
	assert_int_equal(ip_checksum(&o->ip, sizeof(o->ip)), 0);
	assert_int_equal(tcp_checksum(o), 0);
	/* The host forwarded the flow out (and its conntrack saw it): the
	 * reply goes back through the host, not straight to the pod. */
	assert_int_equal(r.retval, TC_ACT_OK);
}

static void test_masquerade_port_clash(void **state)
{
	struct l4pkt a = make_l4(IP_A, OUTSIDE, IPPROTO_TCP, 41000, 443);
	struct l4pkt b = make_l4(IP_B, OUTSIDE, IPPROTO_TCP, 41000, 443);
	struct l4pkt *o;
	struct run r;

	(void)state;
	fill_tcp_checksum(&a);
	fill_tcp_checksum(&b);
	r = run_netdev(1, &a);
	assert_int_equal(ntohs(((struct l4pkt *)r.out)->tcp.source), 41000);
	r = run_netdev(1, &b);
	o = (struct l4pkt *)r.out;
	assert_int_equal(o->ip.saddr, ip4(NODE_IP));
	assert_int_not_equal(ntohs(o->tcp.source), 41000);
	assert_true(ntohs(o->tcp.source) >= SLUICE_NAT_PORT_MIN &&
		    ntohs(o->tcp.source) <= SLUICE_NAT_PORT_MAX);
	assert_int_equal(tcp_checksum(o), 0);
	/* The same flow again keeps its port. */
	r = run_netdev(1, &b);
	assert_int_equal(((struct l4pkt *)r.out)->tcp.source, o->tcp.source);
}

/* Run a node-device program on p with skb->mark = mark; *mark_out: the mark after. */
static struct run run_node(enum node_hook hook, struct l4pkt *p, __u32 mark, __u32 *mark_out)
{
	/* (arriving on sltest0, the uplink towards node 2, for native's
	 * next-hop check; the rest do not care) */
	struct __sk_buff ctx = { .mark = mark, .ifindex = (__u32)ifindex_b };
	struct run r = run_hook(hook, p, sizeof(*p), &ctx);

	if (mark_out)
		*mark_out = ctx.mark;
	return r;
}

static void test_overlay_host_routed_gets_tunnel_and_stack_reply(void **state)
{
	__u64 host = counter(SLUICE_FWD_OVERLAY_HOST, SLUICE_DIR_EGRESS);
	__u64 to_stack = counter(SLUICE_TO_STACK_FLOW, SLUICE_DIR_INGRESS), remote;
	struct l4pkt p = make_l4(IP_A, REMOTE_POD, IPPROTO_TCP, 48000, 8080), reply;

	(void)state;
	/* A's Service connection, DNATed by the host to a pod on node 2 and
	 * routed into the vxlan device: to_overlay gives it the tunnel. */
	assert_int_equal(run_node(HOOK_OVERLAY_OUT, &p, 0, NULL).retval, TC_ACT_OK);
	assert_int_equal(counter(SLUICE_FWD_OVERLAY_HOST, SLUICE_DIR_EGRESS), host + 1);
	assert_int_equal(ct_flags_of(IP_A, 48000, REMOTE_POD, 8080), SLUICE_CT_F_VIA_STACK);
	/* The reply from the tunnel (node 2's, through the vxlan device) goes
	 * up the stack to be un-DNATed. */
	reply = make_l4(REMOTE_POD, IP_A, IPPROTO_TCP, 8080, 48000);
	vxlan_send(NODE2, &reply);
	assert_int_equal(counter_after(SLUICE_TO_STACK_FLOW, SLUICE_DIR_INGRESS, to_stack),
			 to_stack + 1);
	/* A's own connection to that pod (from_pod encapsulated it): the reply
	 * goes straight to A. */
	p = make_l4(IP_A, REMOTE_POD, IPPROTO_TCP, 48001, 8080);
	assert_int_equal(run_prog(1, &p, sizeof(p)).retval, TC_ACT_REDIRECT);
	reply = make_l4(REMOTE_POD, IP_A, IPPROTO_TCP, 8080, 48001);
	remote = counter(SLUICE_FWD_REMOTE, SLUICE_DIR_INGRESS);
	vxlan_send(NODE2, &reply);
	assert_int_equal(counter_after(SLUICE_FWD_REMOTE, SLUICE_DIR_INGRESS, remote), remote + 1);
	assert_int_equal(counter(SLUICE_TO_STACK_FLOW, SLUICE_DIR_INGRESS), to_stack + 1);
}

static void test_overlay_host_routed_without_node_dropped(void **state)
{
	__u64 drops = counter(SLUICE_DROP_TUNNEL, SLUICE_DIR_EGRESS);
	struct l4pkt p = make_l4(IP_A, OUTSIDE, IPPROTO_TCP, 48002, 80);

	(void)state;
	assert_int_equal(run_node(HOOK_OVERLAY_OUT, &p, 0, NULL).retval, TC_ACT_SHOT);
	assert_int_equal(counter(SLUICE_DROP_TUNNEL, SLUICE_DIR_EGRESS), drops + 1);
}

static void test_netdev_tells_own_from_host_forwarded(void **state)
{
	struct l4pkt p = make_l4(IP_A, REMOTE_POD, IPPROTO_TCP, 49000, 8080), reply;
	__u32 mark;

	(void)state;
	fill_tcp_checksum(&p);
	/* from_pod's own (native routing): marked, passed, the mark cleared,
	 * the flow left alone. */
	assert_int_equal(run_node(HOOK_NETDEV_OUT, &p, SLUICE_MARK_FAST | 0x4000, &mark).retval,
			 TC_ACT_OK);
	assert_int_equal(mark, 0x4000);
	assert_int_equal(ct_flags_of(IP_A, 49000, REMOTE_POD, 8080), -1);
	/* Forwarded by the host (kube-proxy DNATed it there): the stack's. */
	assert_int_equal(run_node(HOOK_NETDEV_OUT, &p, 0x4000, &mark).retval, TC_ACT_OK);
	assert_int_equal(mark, 0x4000);
	assert_int_equal(ct_flags_of(IP_A, 49000, REMOTE_POD, 8080), SLUICE_CT_F_VIA_STACK);
	reply = from_node2(REMOTE_POD, IP_A, 8080, 49000);
	assert_int_equal(run_node(HOOK_NETDEV, &reply, 0, NULL).retval, TC_ACT_OK);
}

static void test_from_node_only_pods_go_straight(void **state)
{
	struct l4pkt p = from_node2(REMOTE_POD, IP_A, 50000, 8080);

	(void)state;
	/* Another node's pod: straight to A; the flow is not the stack's. */
	assert_int_equal(run_node(HOOK_NETDEV, &p, 0, NULL).retval, TC_ACT_REDIRECT);
	assert_int_equal(ct_flags_of(REMOTE_POD, 50000, IP_A, 8080), 0);
	/* Another node's own address: A's replies go back to it through
	 * from_pod (the node's ipcache entry has it as its own tunnel
	 * endpoint), so the flow is not the stack's either. */
	p = from_node2(NODE2, IP_A, 50001, 8080);
	assert_int_equal(run_node(HOOK_NETDEV, &p, 0, NULL).retval, TC_ACT_REDIRECT);
	assert_int_equal(ct_flags_of(NODE2, 50001, IP_A, 8080), 0);
	/* The world: A's replies will go through the stack, so the flow does,
	 * from its first packet. */
	p = make_l4(OUTSIDE, IP_A, IPPROTO_TCP, 50002, 8080);
	assert_int_equal(run_node(HOOK_NETDEV, &p, 0, NULL).retval, TC_ACT_OK);
	assert_int_equal(ct_flags_of(OUTSIDE, 50002, IP_A, 8080), SLUICE_CT_F_VIA_STACK);
}

static void test_no_masquerade_inside_the_cluster(void **state)
{
	struct l4pkt p = make_l4(IP_A, REMOTE_POD, IPPROTO_TCP, 42000, 80);
	struct run r;

	(void)state;
	fill_tcp_checksum(&p);
	r = run_netdev(1, &p);
	/* Unchanged; (overlay) into the tunnel, as no pod's packet leaves
	 * plain (see test_host_forwarded_to_node_is_tunnelled). */
	assert_int_equal(r.retval, TC_ACT_REDIRECT);
	assert_memory_equal(r.out, &p, sizeof(p));
}

/* ---- who may send what: the tunnel and the uplink ---------------------- */

/* VXLAN on the uplink from a host that is no node: dropped there, whatever
 * its form (one BPF would take off, one left to the device, a GSO packet,
 * one to another address of this node), never reaching the device. */
static void test_tunnel_from_non_node_dropped(void **state)
{
	__u64 drops = counter(SLUICE_DROP_TUNNEL_SOURCE, SLUICE_DIR_INGRESS);
	__u64 decap = counter(SLUICE_OVERLAY_DECAP, SLUICE_DIR_INGRESS);
	struct vxpkt v[4];
	size_t i;

	(void)state;
	for (i = 0; i < 4; i++) {
		v[i] = make_vxlan((__u16)(54000 + i), 8080);
		v[i].ip.saddr = ip4(NOT_A_NODE);
	}
	v[1].vx_vni = htonl(2 << 8);
	v[3].ip.daddr = ip4("10.210.1.1"); /* the router address, say */
	for (i = 0; i < 4; i++) {
		struct run r = i == 2 ? run_netdev_gso(&v[i], sizeof(v[i]), 1398)
				      : run_netdev_raw(&v[i], sizeof(v[i]));

		assert_int_equal(r.retval, TC_ACT_SHOT);
	}
	assert_int_equal(counter(SLUICE_DROP_TUNNEL_SOURCE, SLUICE_DIR_INGRESS), drops + 4);
	assert_int_equal(counter(SLUICE_OVERLAY_DECAP, SLUICE_DIR_INGRESS), decap);
	/* Nothing was tracked for the forged flow. */
	assert_int_equal(ct_flags_of(REMOTE_POD, 54000, IP_B, 8080), -1);
	/* The same from node 2 is taken off. */
	v[0].ip.saddr = ip4(NODE2);
	assert_int_equal(run_netdev_raw(&v[0], sizeof(v[0])).retval, TC_ACT_REDIRECT);
}

/* A host on the node network posing as node 2 (its address as the outer
 * source, from another MAC): node 2 is on this segment, so it is not
 * believed. A node behind a router is (the router's MAC proves nothing). */
static void test_tunnel_from_node_address_wrong_mac_dropped(void **state)
{
	__u64 drops = counter(SLUICE_DROP_TUNNEL_SOURCE, SLUICE_DIR_INGRESS);
	struct vxpkt v = make_vxlan(54100, 8080), w;

	(void)state;
	v.eth.h_source[5] ^= 0x40;
	assert_int_equal(run_netdev_raw(&v, sizeof(v)).retval, TC_ACT_SHOT);
	v.vx_vni = htonl(2 << 8); /* one left to the device: the same */
	assert_int_equal(run_netdev_raw(&v, sizeof(v)).retval, TC_ACT_SHOT);
	assert_int_equal(counter(SLUICE_DROP_TUNNEL_SOURCE, SLUICE_DIR_INGRESS), drops + 2);
	assert_int_equal(ct_flags_of(REMOTE_POD, 54100, IP_B, 8080), -1);
	/* Node 3 from its own MAC, for its own pod: taken off. */
	w = make_vxlan(54101, 8080);
	w.ip = ipv4_header(NODE3, NODE_IP, IPPROTO_UDP, 64, sizeof(w) - sizeof(w.eth));
	w.inner.ip = ipv4_header(NODE3_POD, IP_B, IPPROTO_TCP, 64, sizeof(w.inner) - sizeof(w.inner.eth));
	w.eth.h_source[5] = 0x03;
	assert_int_equal(run_netdev_raw(&w, sizeof(w)).retval, TC_ACT_REDIRECT);
	/* A node behind a router (10.202.0.20, via node 2 here), from any MAC. */
	ipcache_put_full("10.202.0.20", 32, SLUICE_ID_WORLD, "10.202.0.20", SLUICE_IPC_F_NODE);
	ipcache_put_full("10.88.5.0", 24, SLUICE_ID_WORLD, "10.202.0.20", 0);
	w = make_vxlan(54102, 8080);
	w.ip = ipv4_header("10.202.0.20", NODE_IP, IPPROTO_UDP, 64, sizeof(w) - sizeof(w.eth));
	w.inner.ip = ipv4_header("10.88.5.9", IP_B, IPPROTO_TCP, 64, sizeof(w.inner) - sizeof(w.inner.eth));
	w.eth.h_source[5] = 0x77;
	assert_int_equal(run_netdev_raw(&w, sizeof(w)).retval, TC_ACT_REDIRECT);
	assert_int_equal(counter(SLUICE_DROP_TUNNEL_SOURCE, SLUICE_DIR_INGRESS), drops + 2);
}

/* A node may tunnel its own pods, itself and the world, nothing else. */
static void test_tunnel_inner_source_of_another_dropped(void **state)
{
	const char *forged[][2] = {
		{ NODE2, NODE3_POD },	/* node 3's pod, from node 2 */
		{ NODE3, REMOTE_POD },	/* node 2's pod, from node 3 */
		{ NODE2, IP_A },	/* a pod here */
		{ NODE2, NODE_IP },	/* this node */
		{ NODE2, NODE3 },	/* node 3 itself */
	};
	__u64 drops = counter(SLUICE_DROP_TUNNEL_SPOOF, SLUICE_DIR_INGRESS);
	__u64 decap = counter(SLUICE_OVERLAY_DECAP, SLUICE_DIR_INGRESS);
	struct vxpkt v;
	struct run r;

	(void)state;
	for (size_t i = 0; i < sizeof(forged) / sizeof(forged[0]); i++) {
		v = make_vxlan((__u16)(55000 + i), 8080);
		v.ip.saddr = ip4(forged[i][0]);
		v.inner.ip = ipv4_header(forged[i][1], IP_B, IPPROTO_TCP, 64,
					 sizeof(v.inner) - sizeof(v.inner.eth));
		assert_int_equal(run_netdev_raw(&v, sizeof(v)).retval, TC_ACT_SHOT);
		assert_int_equal(ct_flags_of(forged[i][1], (__u16)(55000 + i), IP_B, 8080), -1);
	}
	assert_int_equal(counter(SLUICE_DROP_TUNNEL_SPOOF, SLUICE_DIR_INGRESS), drops + 5);
	/* Node 2 itself, and the world it forwards: believed (the world is
	 * left to the device, whose program polices it as the world). */
	v = make_vxlan(55100, 8080);
	v.inner.ip = ipv4_header(NODE2, IP_B, IPPROTO_TCP, 64, sizeof(v.inner) - sizeof(v.inner.eth));
	assert_int_equal(run_netdev_raw(&v, sizeof(v)).retval, TC_ACT_REDIRECT);
	v = make_vxlan(55101, 8080);
	v.inner.ip = ipv4_header(OUTSIDE, IP_B, IPPROTO_TCP, 64, sizeof(v.inner) - sizeof(v.inner.eth));
	r = run_netdev_raw(&v, sizeof(v));
	assert_int_equal(r.retval, TC_ACT_OK);
	assert_memory_equal(r.out, &v, sizeof(v));
	assert_int_equal(counter(SLUICE_OVERLAY_DECAP, SLUICE_DIR_INGRESS), decap + 1);
	assert_int_equal(counter(SLUICE_DROP_TUNNEL_SPOOF, SLUICE_DIR_INGRESS), drops + 5);
}

/* Overlay routing: no pod's packet crosses the underlay plain, and nothing
 * comes in with this node's own address. */
static void test_plain_pod_source_on_uplink_dropped(void **state)
{
	const char *forged[] = { REMOTE_POD, REMOTE_POD_LABELLED, NODE3_POD, IP_A, NODE_IP };
	__u64 drops = counter(SLUICE_DROP_UPLINK_SPOOF, SLUICE_DIR_INGRESS);
	struct l4pkt p;

	(void)state;
	for (size_t i = 0; i < sizeof(forged) / sizeof(forged[0]); i++) {
		p = make_l4(forged[i], IP_B, IPPROTO_TCP, (__u16)(56000 + i), 8080);
		assert_int_equal(run_node(HOOK_NETDEV, &p, 0, NULL).retval, TC_ACT_SHOT);
	}
	/* ...whatever they are addressed to */
	p = make_l4(REMOTE_POD, NODE_IP, IPPROTO_TCP, 56100, 22);
	assert_int_equal(run_node(HOOK_NETDEV, &p, 0, NULL).retval, TC_ACT_SHOT);
	assert_int_equal(counter(SLUICE_DROP_UPLINK_SPOOF, SLUICE_DIR_INGRESS), drops + 6);
	assert_int_equal(ct_flags_of(REMOTE_POD, 56000, IP_B, 8080), -1);
	/* Another node's own address and the world still come in. */
	p = make_l4(NODE2, IP_B, IPPROTO_TCP, 56200, 8080);
	assert_int_equal(run_node(HOOK_NETDEV, &p, 0, NULL).retval, TC_ACT_REDIRECT);
	p = make_l4(OUTSIDE, IP_B, IPPROTO_TCP, 56201, 8080);
	assert_int_equal(run_node(HOOK_NETDEV, &p, 0, NULL).retval, TC_ACT_OK);
	assert_int_equal(counter(SLUICE_DROP_UPLINK_SPOOF, SLUICE_DIR_INGRESS), drops + 6);
}

/* The kernel's device path: from_overlay believes the tunnel key's remote
 * address the same way. */
static void test_overlay_device_checks_sender(void **state)
{
	__u64 src0 = counter(SLUICE_DROP_TUNNEL_SOURCE, SLUICE_DIR_INGRESS);
	__u64 spoof0 = counter(SLUICE_DROP_TUNNEL_SPOOF, SLUICE_DIR_INGRESS);
	__u64 remote0 = counter(SLUICE_FWD_REMOTE, SLUICE_DIR_INGRESS);
	__u64 new0 = counter(SLUICE_CT_NEW, SLUICE_DIR_INGRESS);
	struct l4pkt p;

	(void)state;
	/* Node 2's pod from node 2: delivered. */
	p = make_l4(REMOTE_POD, IP_B, IPPROTO_TCP, 57000, 8080);
	vxlan_send(NODE2, &p);
	assert_int_equal(counter_after(SLUICE_FWD_REMOTE, SLUICE_DIR_INGRESS, remote0), remote0 + 1);
	/* The same frame from a host that is no node. */
	p = make_l4(REMOTE_POD, IP_B, IPPROTO_TCP, 57001, 8080);
	vxlan_send(NOT_A_NODE, &p);
	assert_int_equal(counter_after(SLUICE_DROP_TUNNEL_SOURCE, SLUICE_DIR_INGRESS, src0), src0 + 1);
	/* Node 2's pod from node 3, a pod here and this node from node 2. */
	p = make_l4(REMOTE_POD, IP_B, IPPROTO_TCP, 57002, 8080);
	vxlan_send(NODE3, &p);
	assert_int_equal(counter_after(SLUICE_DROP_TUNNEL_SPOOF, SLUICE_DIR_INGRESS, spoof0), spoof0 + 1);
	p = make_l4(IP_A, IP_B, IPPROTO_TCP, 57003, 8080);
	vxlan_send(NODE2, &p);
	assert_int_equal(counter_after(SLUICE_DROP_TUNNEL_SPOOF, SLUICE_DIR_INGRESS, spoof0 + 1),
			 spoof0 + 2);
	p = make_l4(NODE_IP, IP_B, IPPROTO_TCP, 57004, 8080);
	vxlan_send(NODE2, &p);
	assert_int_equal(counter_after(SLUICE_DROP_TUNNEL_SPOOF, SLUICE_DIR_INGRESS, spoof0 + 2),
			 spoof0 + 3);
	/* The world, forwarded by node 2: in, as the world (the stack's). */
	p = make_l4(OUTSIDE, IP_B, IPPROTO_TCP, 57005, 8080);
	vxlan_send(NODE2, &p);
	assert_int_equal(counter_after(SLUICE_CT_NEW, SLUICE_DIR_INGRESS, new0 + 1), new0 + 2);
	assert_int_equal(ct_flags_of(OUTSIDE, 57005, IP_B, 8080), SLUICE_CT_F_VIA_STACK);
	/* Only the two believed frames were tracked. */
	assert_int_equal(ct_flags_of(REMOTE_POD, 57001, IP_B, 8080), -1);
	assert_int_equal(ct_flags_of(REMOTE_POD, 57002, IP_B, 8080), -1);
	assert_int_equal(ct_flags_of(IP_A, 57003, IP_B, 8080), -1);
	assert_int_equal(counter(SLUICE_DROP_TUNNEL_SOURCE, SLUICE_DIR_INGRESS), src0 + 1);
	assert_int_equal(counter(SLUICE_DROP_TUNNEL_SPOOF, SLUICE_DIR_INGRESS), spoof0 + 3);
}

static struct l4pkt udp_from_a(const char *dst, __u16 dport)
{
	struct l4pkt p = make_l4(IP_A, dst, IPPROTO_UDP, 40000, dport);

	memcpy(p.eth.h_source, mac_a_pod, 6);
	memcpy(p.eth.h_dest, mac_a_lxc, 6);
	p.tcp.source = htons(40000); /* UDP's ports sit where TCP's do */
	p.tcp.dest = htons(dport);
	return p;
}

/* Pods reach no node's tunnel port, and nothing but pods on that port. */
static void test_pod_to_tunnel_port_dropped(void **state)
{
	const char *refused[] = { NODE_IP, NODE2, NODE3, OUTSIDE, "10.88.2.1" };
	__u64 drops = counter(SLUICE_DROP_TUNNEL_PORT, SLUICE_DIR_EGRESS);
	struct l4pkt p;

	(void)state;
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		p = udp_from_a(refused[i], SLUICE_VXLAN_PORT);
		assert_int_equal(run_prog(1, &p, sizeof(p)).retval, TC_ACT_SHOT);
	}
	assert_int_equal(counter(SLUICE_DROP_TUNNEL_PORT, SLUICE_DIR_EGRESS), drops + 5);
	/* Pods (here, on node 2) still get UDP 8472; nodes get other ports. */
	p = udp_from_a(IP_B, SLUICE_VXLAN_PORT);
	assert_int_equal(run_prog(1, &p, sizeof(p)).retval, TC_ACT_REDIRECT);
	p = udp_from_a(REMOTE_POD_LABELLED, SLUICE_VXLAN_PORT);
	assert_int_equal(run_prog(1, &p, sizeof(p)).retval, TC_ACT_REDIRECT);
	p = udp_from_a(NODE2, SLUICE_VXLAN_PORT + 1);
	assert_int_not_equal(run_prog(1, &p, sizeof(p)).retval, TC_ACT_SHOT);
	assert_int_equal(counter(SLUICE_DROP_TUNNEL_PORT, SLUICE_DIR_EGRESS), drops + 5);
}

/* A pod's packets to another node's own address are tunnelled to it (the
 * receiving node drops plain ones with a pod's source). */
static void test_pod_to_remote_node_is_tunnelled(void **state)
{
	struct l4pkt p = make_l4(IP_A, NODE2, IPPROTO_TCP, 46100, 10250);
	__u64 encap = counter(SLUICE_OVERLAY_ENCAP, SLUICE_DIR_EGRESS);
	struct run r;

	(void)state;
	memcpy(p.eth.h_source, mac_a_pod, 6);
	r = run_prog(1, &p, sizeof(p));
	assert_int_equal(r.retval, TC_ACT_REDIRECT);
	assert_int_equal(r.out_len, sizeof(p) + SLUICE_OVERLAY_OVERHEAD);
	assert_int_equal(((struct vxpkt *)r.out)->ip.daddr, ip4(NODE2));
	assert_int_equal(((struct vxpkt *)r.out)->inner.ip.daddr, ip4(NODE2));
	assert_int_equal(counter(SLUICE_OVERLAY_ENCAP, SLUICE_DIR_EGRESS), encap + 1);
}

/* A pod's packet the host forwarded towards another node's own address
 * (kube-proxy DNATed a Service to it, as to the API server): not out of
 * the uplink plain (node 2 would drop it), into the tunnel. */
static void test_host_forwarded_to_node_is_tunnelled(void **state)
{
	__u64 host = counter(SLUICE_FWD_OVERLAY_HOST, SLUICE_DIR_EGRESS);
	struct l4pkt p = make_l4(IP_A, NODE2, IPPROTO_TCP, 46200, 6443);
	struct run r;

	(void)state;
	fill_tcp_checksum(&p);
	r = run_node(HOOK_NETDEV_OUT, &p, 0, NULL);
	assert_int_equal(r.retval, TC_ACT_REDIRECT);
	assert_memory_equal(r.out, &p, sizeof(p)); /* the vxlan device encapsulates */
	assert_int_equal(counter(SLUICE_FWD_OVERLAY_HOST, SLUICE_DIR_EGRESS), host + 1);
	assert_int_equal(ct_flags_of(IP_A, 46200, NODE2, 6443), SLUICE_CT_F_VIA_STACK);
	/* Leaving the cluster: masqueraded, not tunnelled. */
	p = make_l4(IP_A, OUTSIDE, IPPROTO_TCP, 46201, 443);
	fill_tcp_checksum(&p);
	assert_int_equal(run_node(HOOK_NETDEV_OUT, &p, 0, NULL).retval, TC_ACT_OK);
	assert_int_equal(counter(SLUICE_FWD_OVERLAY_HOST, SLUICE_DIR_EGRESS), host + 1);
}

/* Native routing: another node's pod's packets come from that node's MAC
 * (the next hop towards it); this node's and its pods' never come in. */
static void test_native_next_hop_mac(void **state)
{
	__u64 drops = counter(SLUICE_DROP_UPLINK_SPOOF, SLUICE_DIR_INGRESS);
	struct l4pkt p = from_node2(REMOTE_POD, IP_B, 58000, 8080);

	(void)state;
	assert_int_equal(run_node(HOOK_NETDEV, &p, 0, NULL).retval, TC_ACT_REDIRECT);
	assert_int_equal(counter(SLUICE_DROP_UPLINK_SPOOF, SLUICE_DIR_INGRESS), drops);
	/* Another MAC (the attacker's own) for node 2's pod. */
	p = from_node2(REMOTE_POD, IP_B, 58001, 8080);
	p.eth.h_source[5] ^= 0x40;
	assert_int_equal(run_node(HOOK_NETDEV, &p, 0, NULL).retval, TC_ACT_SHOT);
	assert_int_equal(ct_flags_of(REMOTE_POD, 58001, IP_B, 8080), -1);
	/* Node 2's MAC for node 3's pod (node 3's neighbour unresolved: no
	 * MAC to tell it by, so nothing is believed). */
	p = from_node2(NODE3_POD, IP_B, 58002, 8080);
	assert_int_equal(run_node(HOOK_NETDEV, &p, 0, NULL).retval, TC_ACT_SHOT);
	/* A pod here, this node. */
	p = from_node2(IP_A, IP_B, 58003, 8080);
	assert_int_equal(run_node(HOOK_NETDEV, &p, 0, NULL).retval, TC_ACT_SHOT);
	p = from_node2(NODE_IP, IP_B, 58004, 8080);
	assert_int_equal(run_node(HOOK_NETDEV, &p, 0, NULL).retval, TC_ACT_SHOT);
	assert_int_equal(counter(SLUICE_DROP_UPLINK_SPOOF, SLUICE_DIR_INGRESS), drops + 4);
	/* Node 2's own address, from any MAC (not a pod's: no check). */
	p = from_node2(NODE2, IP_B, 58005, 8080);
	p.eth.h_source[5] ^= 0x40;
	assert_int_equal(run_node(HOOK_NETDEV, &p, 0, NULL).retval, TC_ACT_REDIRECT);
	assert_int_equal(counter(SLUICE_DROP_UPLINK_SPOOF, SLUICE_DIR_INGRESS), drops + 4);
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
		cmocka_unit_test_setup(test_policy_ingress_allow_drop_and_reply, policy_reset),
		cmocka_unit_test_setup(test_policy_deny_rule_wins, policy_reset),
		cmocka_unit_test_setup(test_policy_port_range_block, policy_reset),
		cmocka_unit_test_setup(test_icmp_error_for_tracked_flow, policy_reset),
		cmocka_unit_test_setup(test_ingress_from_node_world_and_cidr, policy_reset),
		cmocka_unit_test_setup(test_audit_counts_but_passes, policy_reset),
		cmocka_unit_test_setup(test_stack_flow_reply_goes_to_stack, policy_reset),
		cmocka_unit_test_setup(test_direct_flow_reply_is_redirected, policy_reset),
		cmocka_unit_test_setup(test_stack_flow_is_still_policed, policy_reset),
	};

	const struct CMUnitTest cross_node[] = {
		cmocka_unit_test_setup(test_encap_to_remote_pod, nat_setup),
		cmocka_unit_test_setup(test_encap_without_route_uses_device, nat_setup),
		cmocka_unit_test_setup(test_decap_to_local_pod, nat_setup),
		cmocka_unit_test_setup(test_decap_ecn, nat_setup),
		cmocka_unit_test_setup(test_decap_declined, nat_setup),
		cmocka_unit_test_setup(test_decap_policy_drop, nat_setup),
		cmocka_unit_test_setup(test_no_encap_outside_the_cluster, nat_setup),
		cmocka_unit_test_setup(test_masquerade_and_reverse, nat_setup),
		cmocka_unit_test_setup(test_masquerade_port_clash, nat_setup),
		cmocka_unit_test_setup(test_no_masquerade_inside_the_cluster, nat_setup),
		cmocka_unit_test_setup(test_overlay_host_routed_gets_tunnel_and_stack_reply, nat_setup),
		cmocka_unit_test_setup(test_overlay_host_routed_without_node_dropped, nat_setup),
		cmocka_unit_test_setup(test_tunnel_from_non_node_dropped, nat_setup),
		cmocka_unit_test_setup(test_tunnel_from_node_address_wrong_mac_dropped, nat_setup),
		cmocka_unit_test_setup(test_tunnel_inner_source_of_another_dropped, nat_setup),
		cmocka_unit_test_setup(test_plain_pod_source_on_uplink_dropped, nat_setup),
		cmocka_unit_test_setup(test_overlay_device_checks_sender, nat_setup),
		cmocka_unit_test_setup(test_pod_to_tunnel_port_dropped, nat_setup),
		cmocka_unit_test_setup(test_pod_to_remote_node_is_tunnelled, nat_setup),
		cmocka_unit_test_setup(test_host_forwarded_to_node_is_tunnelled, nat_setup),
	};

	const struct CMUnitTest cross_node_native[] = {
		cmocka_unit_test_setup(test_netdev_tells_own_from_host_forwarded, nat_setup),
		cmocka_unit_test_setup(test_from_node_only_pods_go_straight, nat_setup),
		cmocka_unit_test_setup(test_native_next_hop_mac, nat_setup),
	};
	int failed;

	log_init("test_bpf", LOG_WARN);
	failed = cmocka_run_group_tests_name("bpf-pod", tests, group_setup, group_teardown);
	group_opts = &overlay_masq;
	failed += cmocka_run_group_tests_name("bpf-cross-node", cross_node, group_setup,
					      group_teardown);
	group_opts = &native;
	failed += cmocka_run_group_tests_name("bpf-cross-node-native", cross_node_native,
					      group_setup, group_teardown);
	return failed;
}
