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
#include <sys/resource.h>
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

#include "flows.h"
#include "lb.h"
#include "loader.h"
#include "log.h"
#include "maglev.h"
#include <sluice/lbhash.h>
#include "pkt_util.h"

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

static int group_teardown(void **state);

static int group_setup_steps(void **state)
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

/* cmocka runs no teardown after a failed setup: the pins a half-made
 * setup left go here. */
static int group_setup(void **state)
{
	if (!group_setup_steps(state))
		return 0;
	group_teardown(state);
	return -1;
}

static int group_teardown(void **state)
{
	char cmd[128];

	(void)state;
	datapath_close(dp);
	dp = NULL;
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


/* ---- IP fragments and ICMP errors ----------------------------------- */

#define IP_C "10.77.0.9"	/* a third pod, on another node */
#define ID_C 302
#define WORLD_ROUTER "192.0.2.254"	/* no pod: the world */

/* sluice_frag4_v1, opened through its pin (the loader has no accessor). */
static int frag_map_fd(void)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", pin_dir, SLUICE_MAP_FRAG);
	fd = bpf_obj_get(path);
	if (fd < 0)
		fail_msg("cannot open %s: %s", path, strerror(errno));
	return fd;
}

/* policy_reset, and no fragment remembered. */
static int frag_reset(void **state)
{
	struct sluice_frag_key key;
	int fd = frag_map_fd();

	while (!bpf_map_get_next_key(fd, NULL, &key))
		bpf_map_delete_elem(fd, &key);
	close(fd);
	return policy_reset(state);
}

/* A fragment of a UDP datagram src:sport -> dst:dport with IP id id: the
 * first (off 0: the UDP header leads its payload) or a later one (off in
 * bytes, payload only), MF as more says. IPv4 checksum filled in. */
static struct pkt make_frag(const char *src, const char *dst, __u16 id, __u16 off, int more,
			    __u16 sport, __u16 dport)
{
	struct pkt p = make_ipv4(src, dst, 64);

	p.ip.id = htons(id);
	p.ip.frag_off = htons((more ? 0x2000 : 0) | off / 8);
	if (!off) {
		struct udphdr u = { .source = htons(sport), .dest = htons(dport),
				    .len = htons(4000), .check = htons(0x1234) };

		memcpy(p.payload, &u, sizeof(u));
	}
	p.ip.check = 0;
	p.ip.check = ip_checksum(&p.ip, sizeof(p.ip));
	return p;
}

/* B accepts only UDP 8081 from A. */
static void b_accepts_udp_8081_from_a(void)
{
	set_endpoint(IP_B, SLUICE_EP_F_ISO_INGRESS, ID_B);
	rule_put(datapath_policy_map_fd(dp), (__u32)ifindex_b, ID_A, SLUICE_DIR_INGRESS,
		 IPPROTO_UDP, 8081, 16);
}

static void test_frag_later_follow_allowed_first(void **state)
{
	__u64 orphans = counter(SLUICE_DROP_FRAG_ORPHAN, SLUICE_DIR_EGRESS);
	__u64 fwd = counter(SLUICE_FWD_LOCAL, SLUICE_DIR_EGRESS);
	struct pkt first = make_frag(IP_A, IP_B, 7001, 0, 1, 40000, 8081);
	struct pkt mid = make_frag(IP_A, IP_B, 7001, 1480, 1, 0, 0);
	struct pkt last = make_frag(IP_A, IP_B, 7001, 2960, 0, 0, 0);
	struct run r;

	(void)state;
	b_accepts_udp_8081_from_a();
	assert_int_equal(run_prog(1, &first, sizeof(first)).retval, TC_ACT_REDIRECT);
	/* The later fragments (no UDP header) get the first one's verdict,
	 * and reach B untouched but for the routing rewrite. */
	r = run_prog(1, &mid, sizeof(mid));
	assert_int_equal(r.retval, TC_ACT_REDIRECT);
	assert_memory_equal(((struct pkt *)r.out)->payload, mid.payload, sizeof(mid.payload));
	assert_int_equal(run_prog(1, &last, sizeof(last)).retval, TC_ACT_REDIRECT);
	/* In any order after the first, and more than once (the same fragment
	 * crosses several programs). */
	assert_int_equal(run_prog(1, &mid, sizeof(mid)).retval, TC_ACT_REDIRECT);
	assert_int_equal(counter(SLUICE_FWD_LOCAL, SLUICE_DIR_EGRESS), fwd + 4);
	assert_int_equal(counter(SLUICE_DROP_FRAG_ORPHAN, SLUICE_DIR_EGRESS), orphans);
	/* Only one flow was tracked: the first fragment's. */
	{
		struct sluice_ct_key k = { .saddr = ip4(IP_A), .daddr = ip4(IP_B),
					   .sport = htons(40000), .dport = htons(8081),
					   .proto = IPPROTO_UDP };
		struct sluice_ct_key z = k;
		struct sluice_ct_value v;

		z.sport = z.dport = 0;
		assert_int_equal(bpf_map_lookup_elem(datapath_ct_map_fd(dp), &k, &v), 0);
		assert_int_not_equal(bpf_map_lookup_elem(datapath_ct_map_fd(dp), &z, &v), 0);
	}
}

static void test_frag_later_of_denied_first_dropped(void **state)
{
	__u64 orphans = counter(SLUICE_DROP_FRAG_ORPHAN, SLUICE_DIR_EGRESS);
	__u64 drops = counter(SLUICE_DROP_POLICY, SLUICE_DIR_EGRESS);
	struct pkt first = make_frag(IP_A, IP_B, 7002, 0, 1, 40000, 9999);
	struct pkt later = make_frag(IP_A, IP_B, 7002, 1480, 0, 0, 0);

	(void)state;
	b_accepts_udp_8081_from_a();
	assert_int_equal(run_prog(1, &first, sizeof(first)).retval, TC_ACT_SHOT);
	assert_int_equal(counter(SLUICE_DROP_POLICY, SLUICE_DIR_EGRESS), drops + 1);
	assert_int_equal(run_prog(1, &later, sizeof(later)).retval, TC_ACT_SHOT);
	assert_int_equal(counter(SLUICE_DROP_FRAG_ORPHAN, SLUICE_DIR_EGRESS), orphans + 1);
}

static void test_frag_later_without_first_dropped(void **state)
{
	__u64 out = counter(SLUICE_DROP_FRAG_ORPHAN, SLUICE_DIR_EGRESS);
	__u64 in = counter(SLUICE_DROP_FRAG_ORPHAN, SLUICE_DIR_INGRESS);
	struct pkt first = make_frag(IP_A, IP_B, 7003, 0, 1, 40000, 8081);
	struct pkt later = make_frag(IP_A, IP_B, 7003, 1480, 0, 0, 0);
	struct pkt other_id = make_frag(IP_A, IP_B, 7004, 1480, 0, 0, 0);
	struct pkt forged = make_frag("192.0.2.1", IP_A, 7005, 1480, 0, 0, 0);

	(void)state;
	/* A policy that allows everything: the fragment is not judged on
	 * addresses, it has no flow to belong to. */
	assert_int_equal(run_prog(1, &later, sizeof(later)).retval, TC_ACT_SHOT);
	assert_int_equal(counter(SLUICE_DROP_FRAG_ORPHAN, SLUICE_DIR_EGRESS), out + 1);
	/* A first fragment of another datagram of the same flow is no first
	 * for this one. */
	assert_int_equal(run_prog(1, &first, sizeof(first)).retval, TC_ACT_REDIRECT);
	assert_int_equal(run_prog(1, &other_id, sizeof(other_id)).retval, TC_ACT_SHOT);
	assert_int_equal(counter(SLUICE_DROP_FRAG_ORPHAN, SLUICE_DIR_EGRESS), out + 2);
	/* Into a pod through the host stack (to_pod), the same. */
	assert_int_equal(run_prog(0, &forged, sizeof(forged)).retval, TC_ACT_SHOT);
	assert_int_equal(counter(SLUICE_DROP_FRAG_ORPHAN, SLUICE_DIR_INGRESS), in + 1);
}

static void test_frag_entry_expires(void **state)
{
	struct pkt first = make_frag(IP_A, IP_B, 7006, 0, 1, 40000, 8081);
	struct pkt later = make_frag(IP_A, IP_B, 7006, 1480, 0, 0, 0);
	struct sluice_frag_key k = { .saddr = ip4(IP_A), .daddr = ip4(IP_B), .id = htons(7006),
				     .proto = IPPROTO_UDP };
	struct sluice_frag_value v;
	__u64 orphans = counter(SLUICE_DROP_FRAG_ORPHAN, SLUICE_DIR_EGRESS);
	int fd = frag_map_fd();

	(void)state;
	b_accepts_udp_8081_from_a();
	assert_int_equal(run_prog(1, &first, sizeof(first)).retval, TC_ACT_REDIRECT);
	assert_int_equal(bpf_map_lookup_elem(fd, &k, &v), 0);
	assert_int_equal(ntohs(v.sport), 40000);
	assert_int_equal(ntohs(v.dport), 8081);
	/* The first fragment came longer ago than the lifetime. */
	v.first_seen -= (SLUICE_FRAG_TIMEOUT + 1) * 1000000000ull;
	assert_int_equal(bpf_map_update_elem(fd, &k, &v, BPF_EXIST), 0);
	close(fd);
	assert_int_equal(run_prog(1, &later, sizeof(later)).retval, TC_ACT_SHOT);
	assert_int_equal(counter(SLUICE_DROP_FRAG_ORPHAN, SLUICE_DIR_EGRESS), orphans + 1);
}

/* An ICMP error from src to dst, type/code, about the TCP packet
 * qsrc:qsport -> qdst:qdport. */
static struct l4pkt make_icmp_error(const char *src, const char *dst, __u8 type, __u8 code,
				    const char *qsrc, __u16 qsport, const char *qdst, __u16 qdport)
{
	struct l4pkt e = make_l4(src, dst, IPPROTO_ICMP, 0, 0);

	e.icmp.type = type;
	e.icmp.code = code;
	e.inner.version = 4;
	e.inner.ihl = 5;
	e.inner.protocol = IPPROTO_TCP;
	e.inner.saddr = ip4(qsrc);
	e.inner.daddr = ip4(qdst);
	e.inner_ports[0] = htons(qsport);
	e.inner_ports[1] = htons(qdport);
	return e;
}

static void test_icmp_error_from_router_is_related(void **state)
{
	__u64 related = counter(SLUICE_CT_RELATED, SLUICE_DIR_INGRESS);
	struct l4pkt e;

	(void)state;
	/* A's flow to C (another node's pod); A admits nothing new. */
	ipcache_put(IP_C, 32, ID_C, SLUICE_ID_WORLD);
	{
		struct l4pkt p = make_l4(IP_A, IP_C, IPPROTO_TCP, 43101, 80);

		assert_int_equal(run_prog(1, &p, sizeof(p)).retval, TC_ACT_OK);
	}
	set_endpoint(IP_A, SLUICE_EP_F_ISO_INGRESS, ID_A);
	/* Fragmentation needed from a router on the way (not a pod): PMTU
	 * discovery keeps working. */
	e = make_icmp_error(WORLD_ROUTER, IP_A, 3, 4, IP_A, 43101, IP_C, 80);
	assert_int_equal(run_prog(0, &e, sizeof(e)).retval, TC_ACT_OK);
	/* From the node (its identity is the host's). */
	ipcache_put("10.77.0.1", 32, SLUICE_ID_HOST, SLUICE_ID_WORLD);
	e = make_icmp_error("10.77.0.1", IP_A, 3, 4, IP_A, 43101, IP_C, 80);
	assert_int_equal(run_prog(0, &e, sizeof(e)).retval, TC_ACT_OK);
	/* From the peer itself. */
	e = make_icmp_error(IP_C, IP_A, 3, 3, IP_A, 43101, IP_C, 80);
	assert_int_equal(run_prog(0, &e, sizeof(e)).retval, TC_ACT_OK);
	assert_int_equal(counter(SLUICE_CT_RELATED, SLUICE_DIR_INGRESS), related + 3);
}

static void test_icmp_error_from_third_pod_dropped(void **state)
{
	__u64 forged_in = counter(SLUICE_DROP_ICMP_FORGED, SLUICE_DIR_INGRESS);
	__u64 forged_out = counter(SLUICE_DROP_ICMP_FORGED, SLUICE_DIR_EGRESS);
	__u64 related = counter(SLUICE_CT_RELATED, SLUICE_DIR_INGRESS);
	struct l4pkt p = make_l4(IP_A, IP_C, IPPROTO_TCP, 43200, 80), e;
	struct sluice_ct_key k = { .saddr = ip4(IP_C), .daddr = ip4(IP_A), .proto = IPPROTO_ICMP };
	struct sluice_ct_value v;

	(void)state;
	ipcache_put(IP_C, 32, ID_C, SLUICE_ID_WORLD);
	assert_int_equal(run_prog(1, &p, sizeof(p)).retval, TC_ACT_OK); /* A -> C tracked */
	set_endpoint(IP_A, SLUICE_EP_F_ISO_INGRESS, ID_A);
	/* Pod B, on this node, is not on A's path to C: its "port
	 * unreachable" about A's flow is a new ICMP flow from B, which A's
	 * policy does not allow. */
	e = make_icmp_error(IP_B, IP_A, 3, 3, IP_A, 43200, IP_C, 80);
	assert_int_equal(run_prog_on(1, &e, sizeof(e), ifindex_b).retval, TC_ACT_SHOT);
	assert_int_equal(counter(SLUICE_DROP_ICMP_FORGED, SLUICE_DIR_EGRESS), forged_out + 1);
	/* Still so before the ipcache knows B (its Pod not seen yet): B is a
	 * pod on this node. */
	{
		struct sluice_ipcache_key ik = { .prefixlen = 32, .ip = ip4(IP_B) };

		assert_int_equal(bpf_map_delete_elem(datapath_ipcache_map_fd(dp), &ik), 0);
	}
	assert_int_equal(run_prog_on(1, &e, sizeof(e), ifindex_b).retval, TC_ACT_SHOT);
	assert_int_equal(counter(SLUICE_DROP_ICMP_FORGED, SLUICE_DIR_EGRESS), forged_out + 2);
	/* The same from a pod on another node, through the host stack. */
	ipcache_put("10.77.0.10", 32, ID_C, SLUICE_ID_WORLD);
	e = make_icmp_error("10.77.0.10", IP_A, 3, 4, IP_A, 43200, IP_C, 80);
	assert_int_equal(run_prog(0, &e, sizeof(e)).retval, TC_ACT_SHOT);
	assert_int_equal(counter(SLUICE_DROP_ICMP_FORGED, SLUICE_DIR_INGRESS), forged_in + 1);
	/* The peer's error sent to someone who never sent the quoted packet. */
	e = make_icmp_error(IP_C, IP_B, 3, 3, IP_A, 43200, IP_C, 80);
	assert_int_equal(run_prog_on(0, &e, sizeof(e), ifindex_b).retval, TC_ACT_OK); /* B is open */
	assert_int_equal(counter(SLUICE_CT_RELATED, SLUICE_DIR_INGRESS), related);
	/* A allows ICMP from C's identity: a policy decision, not
	 * "related"; and nothing is tracked for it. */
	rule_put(datapath_policy_map_fd(dp), IFINDEX_LO, ID_C, SLUICE_DIR_INGRESS, IPPROTO_ICMP, 0, 0);
	e = make_icmp_error("10.77.0.10", IP_A, 3, 4, IP_A, 43200, IP_C, 80);
	assert_int_equal(run_prog(0, &e, sizeof(e)).retval, TC_ACT_OK);
	k.saddr = ip4("10.77.0.10");
	assert_int_not_equal(bpf_map_lookup_elem(datapath_ct_map_fd(dp), &k, &v), 0);
	assert_int_equal(counter(SLUICE_CT_RELATED, SLUICE_DIR_INGRESS), related);
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
	assert_int_equal(ct_flags_of(IP_A, 47000, IP_B, 8080), SLUICE_CT_F_VIA_STACK | SLUICE_CT_F_DST_POLICED);
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
	assert_int_equal(ct_flags_of(IP_A, 47001, IP_B, 8080), SLUICE_CT_F_DST_POLICED);
	assert_int_equal(run_prog_on(1, &reply, sizeof(reply), ifindex_b).retval, TC_ACT_REDIRECT);
	assert_int_equal(ct_flags_of(IP_A, 47001, IP_B, 8080), SLUICE_CT_F_DST_POLICED | SLUICE_CT_F_REPLY_SEEN);
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
#define ROUTER "192.0.2.1"	/* a router on the way to OUTSIDE */
/* The masquerade's ports in this group (--masquerade-ports), not the default. */
#define NAT_LO 62000
#define NAT_HI 62999

#define NODE2 "10.200.0.12"
#define NODE3 "10.200.0.13"
#define NOT_A_NODE "10.200.0.99"	/* a host on the node network */
#define ID_R 302

static const struct datapath_opts native = {
	.mode = ATTACH_TC,
	.routing = SLUICE_ROUTING_NATIVE,
	.node_ip = 0x0a4d0001,	/* NODE_IP */
	.lb = 1,
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
	.nat_port_min = NAT_LO,
	.nat_port_max = NAT_HI,
	.lb = 1,
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
	assert_int_equal(ct_flags_of(REMOTE_POD, 51000, IP_B, 8080), SLUICE_CT_F_DST_POLICED);
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
	/* Cut short inside the VXLAN header: shorter than its IPv4 total
	 * length, which the kernel would drop too; the uplink's first stage
	 * (lib/first_stage.h, at tc while no XDP program runs it) drops it. */
	r = run_netdev_raw(&v[0], sizeof(struct ethhdr) + sizeof(struct iphdr) + 12);
	assert_int_equal(r.retval, TC_ACT_SHOT);
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
	__u16 port;

	(void)state;
	fill_tcp_checksum(&p);
	r = run_netdev(1, &p);
	o = (struct l4pkt *)r.out;
	assert_int_equal(r.retval, TC_ACT_OK);
	assert_int_equal(o->ip.saddr, ip4(NODE_IP));
	port = ntohs(o->tcp.source); /* never the pod's own: one of the range */
	assert_in_range(port, NAT_LO, NAT_HI);
	assert_int_equal(ip_checksum(&o->ip, sizeof(o->ip)), 0);
	assert_int_equal(tcp_checksum(o), 0);

	reply = make_l4(OUTSIDE, NODE_IP, IPPROTO_TCP, 80, port);
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
	__be16 port_a;

	(void)state;
	fill_tcp_checksum(&a);
	fill_tcp_checksum(&b);
	r = run_netdev(1, &a);
	port_a = ((struct l4pkt *)r.out)->tcp.source;
	assert_in_range(ntohs(port_a), NAT_LO, NAT_HI);
	r = run_netdev(1, &b);
	o = (struct l4pkt *)r.out;
	assert_int_equal(o->ip.saddr, ip4(NODE_IP));
	assert_int_not_equal(o->tcp.source, port_a);
	assert_in_range(ntohs(o->tcp.source), NAT_LO, NAT_HI);
	assert_int_equal(tcp_checksum(o), 0);
	/* The same flow again keeps its port. */
	r = run_netdev(1, &b);
	assert_int_equal(((struct l4pkt *)r.out)->tcp.source, o->tcp.source);
}


/* The one's-complement sum of ~check and the complements of the 16-bit
 * words that make up addr and port: unchanged by a correct incremental
 * checksum update of addr and port (RFC 1624). */
static __u16 csum_invariant(__u16 check, __be32 addr, __be16 port)
{
	__u32 sum = (__u16)~check;

	sum += (__u16)~(addr & 0xffff) + (__u16)~(addr >> 16) + (__u16)~port;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return sum == 0xffff ? 0 : (__u16)sum;
}

static struct run run_frag_hook(enum node_hook hook, struct pkt *p)
{
	struct __sk_buff ctx = { 0 };

	return run_hook(hook, p, sizeof(*p), &ctx);
}

static void test_masquerade_later_fragment(void **state)
{
	__u64 masq = counter(SLUICE_NAT_MASQ, SLUICE_DIR_EGRESS);
	struct pkt first = make_frag(IP_A, OUTSIDE, 7100, 0, 1, 40100, 53);
	struct pkt later = make_frag(IP_A, OUTSIDE, 7100, 1480, 0, 0, 0);
	struct pkt rfirst, rlater = make_frag(OUTSIDE, NODE_IP, 7200, 1480, 0, 0, 0);
	struct udphdr in, out;
	struct pkt *o;
	struct run r;

	(void)state;
	/* The first fragment: address, port (from the NAT range) and UDP
	 * checksum. */
	r = run_frag_hook(HOOK_NETDEV_OUT, &first);
	o = (struct pkt *)r.out;
	assert_int_equal(r.retval, TC_ACT_OK);
	assert_int_equal(o->ip.saddr, ip4(NODE_IP));
	assert_int_equal(ip_checksum(&o->ip, sizeof(o->ip)), 0);
	memcpy(&in, first.payload, sizeof(in));
	memcpy(&out, o->payload, sizeof(out));
	assert_in_range(ntohs(out.source), NAT_LO, NAT_HI);
	assert_int_equal(csum_invariant(out.check, o->ip.saddr, out.source),
			 csum_invariant(in.check, first.ip.saddr, in.source));
	rfirst = make_frag(OUTSIDE, NODE_IP, 7200, 0, 1, 53, ntohs(out.source));
	/* A later fragment: its flow's address, nothing else (no L4 header:
	 * what sits where ports would be is payload). */
	r = run_frag_hook(HOOK_NETDEV_OUT, &later);
	o = (struct pkt *)r.out;
	assert_int_equal(r.retval, TC_ACT_OK);
	assert_int_equal(r.out_len, sizeof(later));
	assert_int_equal(o->ip.saddr, ip4(NODE_IP));
	assert_int_equal(ip_checksum(&o->ip, sizeof(o->ip)), 0);
	assert_memory_equal(o->payload, later.payload, sizeof(later.payload));
	assert_int_equal(counter(SLUICE_NAT_MASQ, SLUICE_DIR_EGRESS), masq + 2);

	/* The reply, in fragments: each back to the pod's address, only the
	 * first gets the port. */
	r = run_frag_hook(HOOK_NETDEV, &rfirst);
	o = (struct pkt *)r.out;
	assert_int_equal(r.retval, TC_ACT_OK);
	assert_int_equal(o->ip.daddr, ip4(IP_A));
	assert_int_equal(ip_checksum(&o->ip, sizeof(o->ip)), 0);
	r = run_frag_hook(HOOK_NETDEV, &rlater);
	o = (struct pkt *)r.out;
	assert_int_equal(r.retval, TC_ACT_OK);
	assert_int_equal(o->ip.daddr, ip4(IP_A));
	assert_int_equal(ip_checksum(&o->ip, sizeof(o->ip)), 0);
	assert_memory_equal(o->payload, rlater.payload, sizeof(rlater.payload));
}

static void test_masquerade_later_fragment_of_ping(void **state)
{
	struct pkt first = make_frag(IP_A, OUTSIDE, 7300, 0, 1, 0, 0);
	struct pkt later = make_frag(IP_A, OUTSIDE, 7300, 1480, 0, 0, 0);
	struct icmphdr echo = { .type = 8 };
	struct pkt *o;
	struct run r;

	(void)state;
	/* A large echo request: only the first fragment says it is one. */
	echo.un.echo.id = htons(4242);
	memcpy(first.payload, &echo, sizeof(echo));
	first.ip.protocol = later.ip.protocol = IPPROTO_ICMP;
	first.ip.check = later.ip.check = 0;
	first.ip.check = ip_checksum(&first.ip, sizeof(first.ip));
	later.ip.check = ip_checksum(&later.ip, sizeof(later.ip));
	r = run_frag_hook(HOOK_NETDEV_OUT, &first);
	assert_int_equal(((struct pkt *)r.out)->ip.saddr, ip4(NODE_IP));
	r = run_frag_hook(HOOK_NETDEV_OUT, &later);
	o = (struct pkt *)r.out;
	assert_int_equal(r.retval, TC_ACT_OK);
	assert_int_equal(o->ip.saddr, ip4(NODE_IP));
	assert_int_equal(ip_checksum(&o->ip, sizeof(o->ip)), 0);
	assert_memory_equal(o->payload, later.payload, sizeof(later.payload));
}

static void test_masquerade_orphan_fragment_dropped(void **state)
{
	__u64 orphans = counter(SLUICE_DROP_FRAG_ORPHAN, SLUICE_DIR_EGRESS);
	struct pkt later = make_frag(IP_A, OUTSIDE, 7400, 1480, 0, 0, 0);
	struct pkt node_later = make_frag(OUTSIDE, NODE_IP, 7401, 1480, 0, 0, 0);
	struct run r;

	(void)state;
	/* Leaving with the pod's address would leak it; there is no flow to
	 * take a translation from. */
	r = run_frag_hook(HOOK_NETDEV_OUT, &later);
	assert_int_equal(r.retval, TC_ACT_SHOT);
	assert_int_equal(counter(SLUICE_DROP_FRAG_ORPHAN, SLUICE_DIR_EGRESS), orphans + 1);
	/* Towards the node's address it may be the node's own: left to it. */
	r = run_frag_hook(HOOK_NETDEV, &node_later);
	assert_int_equal(r.retval, TC_ACT_OK);
	assert_memory_equal(r.out, &node_later, sizeof(node_later));
}

/* ---- masquerade that cannot be abused ----------------------------------- */

static int pinned_map(const char *name)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", pin_dir, name);
	fd = bpf_obj_get(path);
	if (fd < 0)
		fail_msg("cannot open %s: %s", path, strerror(errno));
	return fd;
}

static struct sluice_ct_key tuple(const char *src, __u16 sport, const char *dst, __u16 dport,
				  __u8 proto)
{
	struct sluice_ct_key k = { .saddr = ip4(src), .daddr = ip4(dst), .sport = htons(sport),
				   .dport = htons(dport), .proto = proto };

	return k;
}

/* 1 when map name has key k. */
static int map_has(const char *name, const struct sluice_ct_key *k)
{
	struct sluice_nat_value v;
	int fd = pinned_map(name), ret = !bpf_map_lookup_elem(fd, k, &v);

	close(fd);
	return ret;
}

/* Make the flow k look idle for longer than its timeout (its expiry). */
static void ct_age(const struct sluice_ct_key *k)
{
	struct sluice_ct_value v;
	struct timespec now;

	assert_int_equal(bpf_map_lookup_elem(datapath_ct_map_fd(dp), k, &v), 0);
	clock_gettime(CLOCK_MONOTONIC, &now);
	v.last_seen = (__u64)now.tv_sec * 1000000000ull + (__u64)now.tv_nsec -
		      (SLUICE_CT_TCP_TIMEOUT + 1) * 1000000000ull;
	assert_int_equal(bpf_map_update_elem(datapath_ct_map_fd(dp), k, &v, BPF_EXIST), 0);
}

/* A's TCP flow sport -> OUTSIDE:80 leaves the uplink: its node port. */
static __u16 masquerade_a(__u16 sport)
{
	struct l4pkt p = make_l4(IP_A, OUTSIDE, IPPROTO_TCP, sport, 80);
	struct run r;

	fill_tcp_checksum(&p);
	r = run_netdev(1, &p);
	assert_int_equal(r.retval, TC_ACT_OK);
	assert_int_equal(((struct l4pkt *)r.out)->ip.saddr, ip4(NODE_IP));
	return ntohs(((struct l4pkt *)r.out)->tcp.source);
}

static void test_masquerade_ports_from_range(void **state)
{
	/* Ports below, inside and above the range, the kernel's own
	 * ephemeral ones among them: all leave with one of the range. */
	static const __u16 own[] = { 1024, 33000, 40000, 60999, NAT_LO, NAT_LO + 7, NAT_HI,
				     63000, 65535 };

	(void)state;
	for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
		assert_in_range(masquerade_a(own[i]), NAT_LO, NAT_HI);
}

/* OUTSIDE:80 -> NODE_IP:port, through from_netdev: the packet after it. */
static struct l4pkt reply_to_node(__u16 port, int *retval)
{
	struct l4pkt reply = make_l4(OUTSIDE, NODE_IP, IPPROTO_TCP, 80, port);
	struct run r;

	reply.tcp.syn = 0;
	reply.tcp.ack = 1;
	fill_tcp_checksum(&reply);
	r = run_netdev(0, &reply);
	*retval = r.retval;
	memcpy(&reply, r.out, sizeof(reply));
	return reply;
}

static void test_masquerade_reply_needs_live_flow(void **state)
{
	struct sluice_ct_key flow = tuple(IP_A, 43000, OUTSIDE, 80, IPPROTO_TCP), back;
	__u64 stale = counter(SLUICE_NAT_STALE, SLUICE_DIR_INGRESS);
	__u64 reverse = counter(SLUICE_NAT_REVERSE, SLUICE_DIR_INGRESS);
	__u16 port, again;
	struct l4pkt o;
	int retval;

	(void)state;
	port = masquerade_a(43000);
	back = tuple(OUTSIDE, 80, NODE_IP, port, IPPROTO_TCP);
	assert_true(map_has(SLUICE_MAP_SNAT, &flow) && map_has(SLUICE_MAP_RNAT, &back));
	/* Tracked: the reply is A's. */
	o = reply_to_node(port, &retval);
	assert_int_equal(o.ip.daddr, ip4(IP_A));
	assert_int_equal(ntohs(o.tcp.dest), 43000);
	assert_int_equal(counter(SLUICE_NAT_REVERSE, SLUICE_DIR_INGRESS), reverse + 1);

	/* The flow is gone from connection tracking (purged at DEL, evicted):
	 * the same packet stays the node's, to a port no node socket has,
	 * and the pair goes. */
	assert_int_equal(bpf_map_delete_elem(datapath_ct_map_fd(dp), &flow), 0);
	o = reply_to_node(port, &retval);
	assert_int_equal(retval, TC_ACT_OK);
	assert_int_equal(o.ip.daddr, ip4(NODE_IP));
	assert_int_equal(ntohs(o.tcp.dest), port);
	assert_int_equal(tcp_checksum(&o), 0);
	assert_int_equal(counter(SLUICE_NAT_STALE, SLUICE_DIR_INGRESS), stale + 1);
	assert_int_equal(counter(SLUICE_NAT_REVERSE, SLUICE_DIR_INGRESS), reverse + 1);
	assert_false(map_has(SLUICE_MAP_SNAT, &flow));
	assert_false(map_has(SLUICE_MAP_RNAT, &back));
	/* Once the pair is gone, the port is simply nobody's. */
	o = reply_to_node(port, &retval);
	assert_int_equal(o.ip.daddr, ip4(NODE_IP));
	assert_int_equal(counter(SLUICE_NAT_STALE, SLUICE_DIR_INGRESS), stale + 1);

	/* A starts the flow again: a new pair, and its replies are A's. */
	port = masquerade_a(43000);
	o = reply_to_node(port, &retval);
	assert_int_equal(o.ip.daddr, ip4(IP_A));
	assert_int_equal(counter(SLUICE_NAT_REVERSE, SLUICE_DIR_INGRESS), reverse + 2);

	/* The flow expires (idle past its timeout): the same. */
	ct_age(&flow);
	o = reply_to_node(port, &retval);
	assert_int_equal(o.ip.daddr, ip4(NODE_IP));
	assert_int_equal(ntohs(o.tcp.dest), port);
	assert_int_equal(counter(SLUICE_NAT_STALE, SLUICE_DIR_INGRESS), stale + 2);
	back = tuple(OUTSIDE, 80, NODE_IP, port, IPPROTO_TCP);
	assert_false(map_has(SLUICE_MAP_RNAT, &back));
	assert_false(map_has(SLUICE_MAP_SNAT, &flow));

	/* Forward: a flow whose entry expired with its pair still there
	 * (no reply came) starts over with a fresh pair, the old one gone. */
	port = masquerade_a(43000);
	for (int i = 0; i < 3; i++) { /* (a 1 in 1000 draw gives it the same port) */
		ct_age(&flow);
		again = masquerade_a(43000);
		if (again != port)
			break;
	}
	assert_int_not_equal(again, port);
	assert_in_range(again, NAT_LO, NAT_HI);
	back = tuple(OUTSIDE, 80, NODE_IP, again, IPPROTO_TCP);
	assert_true(map_has(SLUICE_MAP_RNAT, &back));
	back = tuple(OUTSIDE, 80, NODE_IP, port, IPPROTO_TCP);
	assert_false(map_has(SLUICE_MAP_RNAT, &back));
	o = reply_to_node(port, &retval);
	assert_int_equal(o.ip.daddr, ip4(NODE_IP));
	o = reply_to_node(again, &retval);
	assert_int_equal(o.ip.daddr, ip4(IP_A));
	assert_int_equal(ntohs(o.tcp.dest), 43000);
}

/* An ICMP error as a router sends it: outer IP, ICMP, the quoted IP header,
 * UDP header and 8 bytes of the quoted datagram. */
struct icmp_err_pkt {
	struct ethhdr eth;
	struct iphdr ip;
	struct icmphdr icmp;
	struct iphdr inner;
	struct udphdr udp;
	unsigned char data[8];
} __attribute__((packed));

/* The UDP or TCP checksum over the pseudo-header of (saddr, daddr), and
 * len bytes at l4: 0 when valid. */
static __u16 l4_checksum(__u8 proto, __be32 saddr, __be32 daddr, const void *l4, size_t len)
{
	const unsigned char *b = l4;
	__u32 sum = 0;

	sum += (saddr & 0xffff) + (saddr >> 16);
	sum += (daddr & 0xffff) + (daddr >> 16);
	sum += htons(proto) + htons((__u16)len);
	for (size_t i = 0; i + 1 < len; i += 2) {
		__u16 w;

		memcpy(&w, b + i, 2);
		sum += w;
	}
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* "Fragmentation needed, next-hop MTU 1200" from ROUTER to to, about the
 * UDP datagram src:sport -> OUTSIDE:53; every checksum right. */
static struct icmp_err_pkt frag_needed(const char *to, const char *src, __u16 sport)
{
	struct icmp_err_pkt p = { 0 };

	memset(p.eth.h_dest, 0x02, 6);
	p.eth.h_proto = htons(ETH_P_IP);
	p.ip = ipv4_header(ROUTER, to, IPPROTO_ICMP, 60, sizeof(p) - sizeof(p.eth));
	p.icmp.type = ICMP_DEST_UNREACH;
	p.icmp.code = ICMP_FRAG_NEEDED;
	p.icmp.un.frag.mtu = htons(1200);
	p.inner = ipv4_header(src, OUTSIDE, IPPROTO_UDP, 63, 1400);
	p.inner.frag_off = htons(0x4000); /* DF */
	p.inner.check = 0;
	p.inner.check = ip_checksum(&p.inner, sizeof(p.inner));
	p.udp.source = htons(sport);
	p.udp.dest = htons(53);
	p.udp.len = htons(1400 - 20);
	memcpy(p.data, "\x12\x34\x01\x00\x00\x01\x00\x00", 8);
	/* (the checksum of the whole datagram, as its sender computed it;
	 * here over the part quoted, which is all a test can know) */
	p.udp.check = l4_checksum(IPPROTO_UDP, p.inner.saddr, p.inner.daddr, &p.udp, sizeof(p.udp) + sizeof(p.data));
	p.icmp.checksum = ip_checksum(&p.icmp, sizeof(p) - offsetof(struct icmp_err_pkt, icmp));
	return p;
}

static void test_masquerade_icmp_error_to_pod(void **state)
{
	struct sluice_ct_key flow = tuple(IP_A, 40100, OUTSIDE, 53, IPPROTO_UDP);
	__u64 translated = counter(SLUICE_NAT_ICMP_ERROR, SLUICE_DIR_INGRESS);
	__u64 related = counter(SLUICE_CT_RELATED, SLUICE_DIR_INGRESS);
	__u64 stale = counter(SLUICE_NAT_STALE, SLUICE_DIR_INGRESS);
	struct l4pkt p = make_l4(IP_A, OUTSIDE, IPPROTO_UDP, 0, 0);
	struct icmp_err_pkt err, want, *o;
	struct run r;
	__u16 port;

	(void)state;
	/* (UDP's ports sit where TCP's do; checksum 0: none) */
	p.tcp.source = htons(40100);
	p.tcp.dest = htons(53);
	r = run_netdev(1, &p);
	assert_int_equal(r.retval, TC_ACT_OK);
	port = ntohs(((struct l4pkt *)r.out)->tcp.source);
	assert_in_range(port, NAT_LO, NAT_HI);

	/* What the router says about the node's datagram reaches A as if
	 * said about A's own: byte for byte what the router would have sent
	 * A without the masquerade, but for the outer checksum's path. */
	err = frag_needed(NODE_IP, NODE_IP, port);
	want = frag_needed(IP_A, IP_A, 40100);
	r = run_hook(HOOK_NETDEV, &err, sizeof(err), &(struct __sk_buff){ 0 });
	o = (struct icmp_err_pkt *)r.out;
	assert_int_equal(r.retval, TC_ACT_OK); /* the flow is the stack's */
	assert_int_equal(r.out_len, sizeof(err));
	assert_memory_equal(o, &want, sizeof(want));
	assert_int_equal(ip_checksum(&o->ip, sizeof(o->ip)), 0);
	assert_int_equal(ip_checksum(&o->inner, sizeof(o->inner)), 0);
	assert_int_equal(ip_checksum(&o->icmp, sizeof(*o) - offsetof(struct icmp_err_pkt, icmp)), 0);
	assert_int_equal(l4_checksum(IPPROTO_UDP, o->inner.saddr, o->inner.daddr, &o->udp,
				      sizeof(o->udp) + sizeof(o->data)), 0);
	assert_int_equal(counter(SLUICE_NAT_ICMP_ERROR, SLUICE_DIR_INGRESS), translated + 1);
	/* and connection tracking relates it to A's flow */
	assert_int_equal(counter(SLUICE_CT_RELATED, SLUICE_DIR_INGRESS), related + 1);

	/* A quoted UDP checksum of 0 (none) stays 0. */
	err.udp.check = 0;
	err.icmp.checksum = 0;
	err.icmp.checksum = ip_checksum(&err.icmp, sizeof(err) - offsetof(struct icmp_err_pkt, icmp));
	r = run_hook(HOOK_NETDEV, &err, sizeof(err), &(struct __sk_buff){ 0 });
	o = (struct icmp_err_pkt *)r.out;
	assert_int_equal(o->udp.check, 0);
	assert_int_equal(o->inner.saddr, ip4(IP_A));
	assert_int_equal(ip_checksum(&o->icmp, sizeof(*o) - offsetof(struct icmp_err_pkt, icmp)), 0);

	/* About a flow no longer tracked: the node's, untouched; pair gone. */
	assert_int_equal(bpf_map_delete_elem(datapath_ct_map_fd(dp), &flow), 0);
	err = frag_needed(NODE_IP, NODE_IP, port);
	r = run_hook(HOOK_NETDEV, &err, sizeof(err), &(struct __sk_buff){ 0 });
	assert_int_equal(r.retval, TC_ACT_OK);
	assert_memory_equal(r.out, &err, sizeof(err));
	assert_int_equal(counter(SLUICE_NAT_STALE, SLUICE_DIR_INGRESS), stale + 1);
	assert_int_equal(counter(SLUICE_NAT_ICMP_ERROR, SLUICE_DIR_INGRESS), translated + 2);
	assert_false(map_has(SLUICE_MAP_SNAT, &flow));
	/* An error quoting some other sender is not the masquerade's. */
	err = frag_needed(NODE_IP, "10.77.0.99", port);
	r = run_hook(HOOK_NETDEV, &err, sizeof(err), &(struct __sk_buff){ 0 });
	assert_memory_equal(r.out, &err, sizeof(err));
	assert_int_equal(counter(SLUICE_NAT_ICMP_ERROR, SLUICE_DIR_INGRESS), translated + 2);
}

/* An ICMP error of type from ROUTER to `to`, quoting the packet src ->
 * OUTSIDE: a whole TCP header (sport -> 80) or an ICMP echo request (id
 * sport); every checksum right. Returns its length. */
static size_t icmp_error_about(unsigned char *b, __u8 type, const char *to, const char *src,
			       __u8 proto, __u16 sport)
{
	size_t l4len = proto == IPPROTO_TCP ? sizeof(struct tcphdr) : sizeof(struct icmphdr);
	size_t icmp_off = sizeof(struct ethhdr) + sizeof(struct iphdr);
	size_t in_off = icmp_off + sizeof(struct icmphdr), l4_off = in_off + sizeof(struct iphdr);
	size_t len = l4_off + l4len;
	struct ethhdr eth = { .h_proto = htons(ETH_P_IP) };
	struct icmphdr icmp = { .type = type };
	struct iphdr ip = ipv4_header(ROUTER, to, IPPROTO_ICMP, 60, len - sizeof(eth));
	struct iphdr inner = ipv4_header(src, OUTSIDE, proto, 1, sizeof(inner) + l4len);

	memset(b, 0, len);
	memset(eth.h_dest, 0x02, 6);
	memcpy(b, &eth, sizeof(eth));
	memcpy(b + sizeof(eth), &ip, sizeof(ip));
	memcpy(b + in_off, &inner, sizeof(inner));
	if (proto == IPPROTO_TCP) {
		struct tcphdr t = { .source = htons(sport), .dest = htons(80), .seq = htonl(7),
				    .doff = 5, .ack = 1, .window = htons(512) };

		memcpy(b + l4_off, &t, sizeof(t));
		t.check = l4_checksum(IPPROTO_TCP, inner.saddr, inner.daddr, b + l4_off, sizeof(t));
		memcpy(b + l4_off, &t, sizeof(t));
	} else {
		struct icmphdr e = { .type = ICMP_ECHO };

		e.un.echo.id = htons(sport);
		e.un.echo.sequence = htons(1);
		e.checksum = ip_checksum(&e, sizeof(e));
		memcpy(b + l4_off, &e, sizeof(e));
	}
	memcpy(b + icmp_off, &icmp, sizeof(icmp));
	icmp.checksum = ip_checksum(b + icmp_off, len - icmp_off);
	memcpy(b + icmp_off, &icmp, sizeof(icmp));
	return len;
}

static void test_masquerade_icmp_error_tcp_and_echo(void **state)
{
	__u64 translated = counter(SLUICE_NAT_ICMP_ERROR, SLUICE_DIR_INGRESS);
	struct l4pkt ping = make_l4(IP_A, OUTSIDE, IPPROTO_ICMP, 0, 0);
	unsigned char err[128], want[128];
	size_t len, l4_off = sizeof(struct ethhdr) + 2 * sizeof(struct iphdr) + sizeof(struct icmphdr);
	struct iphdr inner;
	__u16 port, id;
	struct run r;

	(void)state;
	/* Time exceeded, about A's TCP flow: the quoted TCP checksum too. */
	port = masquerade_a(44000);
	len = icmp_error_about(err, ICMP_TIME_EXCEEDED, NODE_IP, NODE_IP, IPPROTO_TCP, port);
	icmp_error_about(want, ICMP_TIME_EXCEEDED, IP_A, IP_A, IPPROTO_TCP, 44000);
	r = run_hook(HOOK_NETDEV, err, (__u32)len, &(struct __sk_buff){ 0 });
	assert_int_equal(r.retval, TC_ACT_OK);
	assert_memory_equal(r.out, want, len);
	memcpy(&inner, r.out + l4_off - sizeof(inner), sizeof(inner));
	assert_int_equal(l4_checksum(IPPROTO_TCP, inner.saddr, inner.daddr, r.out + l4_off,
				     sizeof(struct tcphdr)), 0);

	/* Destination unreachable, about A's masqueraded ping (echo id 777):
	 * the quoted id and the quoted echo's checksum. */
	ping.icmp.type = ICMP_ECHO;
	ping.icmp.un.echo.id = htons(777);
	ping.icmp.checksum = ip_checksum(&ping.icmp, sizeof(ping) - offsetof(struct l4pkt, icmp));
	r = run_netdev(1, &ping);
	assert_int_equal(r.retval, TC_ACT_OK);
	id = ntohs(((struct l4pkt *)r.out)->icmp.un.echo.id);
	assert_in_range(id, NAT_LO, NAT_HI);
	len = icmp_error_about(err, ICMP_DEST_UNREACH, NODE_IP, NODE_IP, IPPROTO_ICMP, id);
	icmp_error_about(want, ICMP_DEST_UNREACH, IP_A, IP_A, IPPROTO_ICMP, 777);
	r = run_hook(HOOK_NETDEV, err, (__u32)len, &(struct __sk_buff){ 0 });
	assert_int_equal(r.retval, TC_ACT_OK);
	assert_memory_equal(r.out, want, len);
	assert_int_equal(counter(SLUICE_NAT_ICMP_ERROR, SLUICE_DIR_INGRESS), translated + 2);
}

/* A node socket that binds a port of the range explicitly keeps it: no
 * masqueraded flow is given a port whose replies the socket would get. */
static void test_masquerade_skips_node_sockets(void **state)
{
	__u64 drops = counter(SLUICE_DROP_NAT_PORTS, SLUICE_DIR_EGRESS);
	struct rlimit nofile = { NAT_HI - NAT_LO + 256, NAT_HI - NAT_LO + 256 };
	struct l4pkt p = make_l4(IP_A, OUTSIDE, IPPROTO_UDP, 0, 0);
	int fds[NAT_HI - NAT_LO + 1];
	struct run r;

	(void)state;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &nofile), 0);
	/* Every port of the range has a node UDP socket (this namespace is
	 * the node the test programs run in). */
	for (int i = 0; i <= NAT_HI - NAT_LO; i++) {
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(NAT_LO + i) };

		fds[i] = socket(AF_INET, SOCK_DGRAM, 0);
		assert_true(fds[i] >= 0);
		assert_int_equal(bind(fds[i], (struct sockaddr *)&a, sizeof(a)), 0);
	}
	p.tcp.source = htons(45000); /* (UDP's ports sit where TCP's do) */
	p.tcp.dest = htons(53);
	r = run_netdev(1, &p);
	assert_int_equal(r.retval, TC_ACT_SHOT);
	assert_int_equal(counter(SLUICE_DROP_NAT_PORTS, SLUICE_DIR_EGRESS), drops + 1);
	for (int i = 0; i <= NAT_HI - NAT_LO; i++)
		close(fds[i]);
	/* The sockets gone, the flow gets a port. */
	p.tcp.source = htons(45001);
	r = run_netdev(1, &p);
	assert_int_equal(r.retval, TC_ACT_OK);
	assert_in_range(ntohs(((struct l4pkt *)r.out)->tcp.source), NAT_LO, NAT_HI);
}

/* Only flows a pod starts are masqueraded: a pod's reply to a flow the
 * world started (routed to the pod's address) keeps the pod's address. */
static void test_no_masquerade_for_replies(void **state)
{
	__u64 masq = counter(SLUICE_NAT_MASQ, SLUICE_DIR_EGRESS);
	struct l4pkt in = make_l4(OUTSIDE, IP_A, IPPROTO_TCP, 46500, 8080);
	struct l4pkt reply = make_l4(IP_A, OUTSIDE, IPPROTO_TCP, 8080, 46500);
	struct run r;

	(void)state;
	fill_tcp_checksum(&in);
	assert_int_equal(run_netdev(0, &in).retval, TC_ACT_OK);
	reply.tcp.ack = 1;
	fill_tcp_checksum(&reply);
	r = run_netdev(1, &reply);
	assert_int_equal(r.retval, TC_ACT_OK);
	assert_memory_equal(r.out, &reply, sizeof(reply));
	assert_int_equal(counter(SLUICE_NAT_MASQ, SLUICE_DIR_EGRESS), masq);
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
	assert_int_equal(ct_flags_of(REMOTE_POD, 50000, IP_A, 8080), SLUICE_CT_F_DST_POLICED);
	/* Another node's own address: A's replies go back to it through
	 * from_pod (the node's ipcache entry has it as its own tunnel
	 * endpoint), so the flow is not the stack's either. */
	p = from_node2(NODE2, IP_A, 50001, 8080);
	assert_int_equal(run_node(HOOK_NETDEV, &p, 0, NULL).retval, TC_ACT_REDIRECT);
	assert_int_equal(ct_flags_of(NODE2, 50001, IP_A, 8080), SLUICE_CT_F_DST_POLICED);
	/* The world: A's replies will go through the stack, so the flow does,
	 * from its first packet. */
	p = make_l4(OUTSIDE, IP_A, IPPROTO_TCP, 50002, 8080);
	assert_int_equal(run_node(HOOK_NETDEV, &p, 0, NULL).retval, TC_ACT_OK);
	assert_int_equal(ct_flags_of(OUTSIDE, 50002, IP_A, 8080), SLUICE_CT_F_VIA_STACK | SLUICE_CT_F_DST_POLICED);
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

/* ---- per-flow state of an address (agent/flows.c) ------------------------ */

static struct sluice_ct_key ct_key(const char *src, __u16 sport, const char *dst, __u16 dport,
				   __u8 proto)
{
	struct sluice_ct_key k = { .saddr = ip4(src), .daddr = ip4(dst), .sport = htons(sport),
				   .dport = htons(dport), .proto = proto };
	return k;
}

static void put_entry(int fd, const void *key, const void *value)
{
	assert_int_equal(bpf_map_update_elem(fd, key, value, BPF_NOEXIST), 0);
}

static int has_entry(int fd, const void *key)
{
	unsigned char value[64];

	return !bpf_map_lookup_elem(fd, key, value);
}

static size_t map_count(int fd)
{
	unsigned char key[64], next[64];
	size_t n = 0;
	void *prev = NULL;

	while (!bpf_map_get_next_key(fd, prev, next)) {
		memcpy(key, next, sizeof(key));
		prev = key;
		n++;
	}
	return n;
}

static int match_all(__be32 addr, void *arg)
{
	(void)addr;
	(void)arg;
	return 1;
}

static int match_b(__be32 addr, void *arg)
{
	return addr == *(const __be32 *)arg;
}

static void flows_clear(void)
{
	struct flow_map maps[FLOW_MAPS_MAX];
	size_t n = flows_maps(dp, maps, FLOW_MAPS_MAX);
	char err[256];

	assert_int_equal(flows_purge(maps, n, match_all, NULL, NULL, err, sizeof(err)), 0);
}

#define REMOTE_A "10.1.2.3"
#define REMOTE_B "10.1.2.4"

/*
 * The attack at the datapath's level: B has a tracked flow from A; B goes,
 * the next pod on B's address isolates its ingress; A's packet on the old
 * 5-tuple still passes on the entry. After the purge of B's address it is
 * policed (dropped), and only B's entries went: connection tracking either
 * way, masquerade forward (B's tuple) and reverse (value: B).
 */
static void test_purge_address(void **state)
{
	int ct = datapath_ct_map_fd(dp), snat = datapath_snat_map_fd(dp),
	    rnat = datapath_rnat_map_fd(dp);
	struct sluice_ct_value cv = { .last_seen = 1 };
	struct sluice_ct_key k_ab, k_cb, k_bc, k_ra, k_sb, k_sa, k_rb, k_ra2;
	struct sluice_nat_value to_b = { .addr = ip4(IP_B), .port = htons(5000) },
				to_a = { .addr = ip4(IP_A), .port = htons(5001) },
				node = { .addr = ip4("10.200.0.11"), .port = htons(33000) };
	struct flows_purge_stats st = { 0 };
	char err[256];

	(void)state;
	flows_clear();
	assert_int_equal(send_a_to_b(IPPROTO_TCP, 40000, 8080), TC_ACT_REDIRECT);
	k_ab = ct_key(IP_A, 40000, IP_B, 8080, IPPROTO_TCP);
	assert_true(has_entry(ct, &k_ab));
	k_cb = ct_key(REMOTE_A, 41000, IP_B, 8080, IPPROTO_TCP);
	k_bc = ct_key(IP_B, 42000, REMOTE_A, 53, IPPROTO_UDP);
	k_ra = ct_key(REMOTE_A, 43000, IP_A, 8080, IPPROTO_TCP);
	cv.last_seen = (__u64)0 - 1; /* far from expiring whatever the clock */
	put_entry(ct, &k_cb, &cv);
	put_entry(ct, &k_bc, &cv);
	put_entry(ct, &k_ra, &cv);
	k_sb = ct_key(IP_B, 44000, OUTSIDE, 443, IPPROTO_TCP);
	k_sa = ct_key(IP_A, 44000, OUTSIDE, 443, IPPROTO_TCP);
	put_entry(snat, &k_sb, &node);
	put_entry(snat, &k_sa, &node);
	k_rb = ct_key(OUTSIDE, 443, "10.200.0.11", 33000, IPPROTO_TCP);
	k_ra2 = ct_key(OUTSIDE, 443, "10.200.0.11", 33001, IPPROTO_TCP);
	put_entry(rnat, &k_rb, &to_b);
	put_entry(rnat, &k_ra2, &to_a);

	/* B's address now belongs to a pod that takes nothing in. */
	set_endpoint(IP_B, SLUICE_EP_F_ISO_INGRESS, ID_B);
	assert_int_equal(send_a_to_b(IPPROTO_TCP, 40000, 8080), TC_ACT_REDIRECT); /* the defect */
	assert_int_equal(send_a_to_b(IPPROTO_TCP, 40001, 8080), TC_ACT_SHOT);

	assert_int_equal(flows_purge_addr(dp, ntohl(ip4(IP_B)), &st, err, sizeof(err)), 0);
	assert_int_equal(st.removed, 5);
	assert_false(has_entry(ct, &k_ab));
	assert_false(has_entry(ct, &k_cb));
	assert_false(has_entry(ct, &k_bc));
	assert_false(has_entry(snat, &k_sb));
	assert_false(has_entry(rnat, &k_rb));
	assert_true(has_entry(ct, &k_ra));
	assert_true(has_entry(snat, &k_sa));
	assert_true(has_entry(rnat, &k_ra2));
	assert_int_equal(map_count(ct), 1);
	assert_int_equal(send_a_to_b(IPPROTO_TCP, 40000, 8080), TC_ACT_SHOT);
	flows_clear();
}

/* A flow tracked while its destination address was free (no pod on it)
 * does not let its next packets into the pod that takes the address: that
 * pod's ingress policy decides, once, and the entry remembers it. */
static void test_flow_to_free_address_meets_new_pod(void **state)
{
	int ct = datapath_ct_map_fd(dp);
	struct sluice_endpoint b;
	struct sluice_ct_value v;
	struct sluice_ct_key k;
	struct l4pkt e;
	__u64 drops = counter(SLUICE_DROP_POLICY, SLUICE_DIR_EGRESS);

	(void)state;
	flows_clear();
	assert_int_equal(datapath_endpoint_get(dp, ip4(IP_B), &b), 0);
	assert_int_equal(datapath_endpoint_del(dp, ip4(IP_B)), 0);
	assert_int_equal(send_a_to_b(IPPROTO_TCP, 45000, 8080), TC_ACT_OK);
	k = ct_key(IP_A, 45000, IP_B, 8080, IPPROTO_TCP);
	assert_int_equal(bpf_map_lookup_elem(ct, &k, &v), 0);
	assert_false(v.flags & SLUICE_CT_F_DST_POLICED);
	/* A pod that admits nobody takes the address. */
	b.flags = SLUICE_EP_F_ISO_INGRESS;
	assert_int_equal(datapath_endpoint_put(dp, ip4(IP_B), &b), 0);
	assert_int_equal(send_a_to_b(IPPROTO_TCP, 45000, 8080), TC_ACT_SHOT);
	assert_int_equal(counter(SLUICE_DROP_POLICY, SLUICE_DIR_EGRESS), drops + 1);
	/* Nor does an ICMP error about it (from its peer, quoting the
	 * reverse direction): not related to any flow of the new pod's. */
	e = make_icmp_error(IP_A, IP_B, 3, 3, IP_B, 8080, IP_A, 45000);
	assert_int_equal(run_prog(1, &e, sizeof(e)).retval, TC_ACT_SHOT);
	assert_int_equal(counter(SLUICE_DROP_POLICY, SLUICE_DIR_EGRESS), drops + 2);
	/* One that admits everybody: in, and the entry says so from now on. */
	set_endpoint(IP_B, 0, ID_B);
	assert_int_equal(send_a_to_b(IPPROTO_TCP, 45000, 8080), TC_ACT_REDIRECT);
	assert_int_equal(bpf_map_lookup_elem(ct, &k, &v), 0);
	assert_true(v.flags & SLUICE_CT_F_DST_POLICED);
	/* A flow made with its destination a pod is marked from the start. */
	assert_int_equal(send_a_to_b(IPPROTO_TCP, 45001, 8080), TC_ACT_REDIRECT);
	k = ct_key(IP_A, 45001, IP_B, 8080, IPPROTO_TCP);
	assert_int_equal(bpf_map_lookup_elem(ct, &k, &v), 0);
	assert_true(v.flags & SLUICE_CT_F_DST_POLICED);
	flows_clear();
}

/* Start-up: every address of the pod CIDR but the router's and the live
 * pods' loses its state; remote addresses keep theirs. */
static void test_purge_range(void **state)
{
	int ct = datapath_ct_map_fd(dp);
	struct sluice_ct_value cv = { .last_seen = (__u64)0 - 1 };
	struct sluice_ct_key gone[3], kept[4];
	struct flows_purge_stats st = { 0 };
	struct cidr4 range = { .net = ntohl(ip4("10.77.0.0")), .prefix = 24 };
	uint32_t keep[] = { ntohl(ip4(IP_A)), ntohl(ip4("10.77.0.1")) };
	char err[256];

	(void)state;
	flows_clear();
	gone[0] = ct_key(IP_A, 1, IP_B, 2, IPPROTO_TCP);	  /* a live pod to a dead one */
	gone[1] = ct_key(REMOTE_A, 1, "10.77.0.9", 2, IPPROTO_UDP);
	gone[2] = ct_key("10.77.0.254", 1, "10.77.0.1", 2, IPPROTO_UDP); /* dead to the router */
	kept[0] = ct_key(IP_A, 1, REMOTE_A, 2, IPPROTO_TCP);
	kept[1] = ct_key("10.77.0.1", 1, REMOTE_A, 2, IPPROTO_TCP);
	kept[2] = ct_key(REMOTE_A, 1, REMOTE_B, 2, IPPROTO_TCP);
	kept[3] = ct_key("10.77.1.5", 1, IP_A, 2, IPPROTO_TCP);	  /* outside the /24 */
	for (int i = 0; i < 3; i++)
		put_entry(ct, &gone[i], &cv);
	for (int i = 0; i < 4; i++)
		put_entry(ct, &kept[i], &cv);
	assert_int_equal(flows_purge_range(dp, &range, keep, 2, &st, err, sizeof(err)), 0);
	assert_int_equal(st.removed, 3);
	for (int i = 0; i < 3; i++)
		assert_false(has_entry(ct, &gone[i]));
	for (int i = 0; i < 4; i++)
		assert_true(has_entry(ct, &kept[i]));
	flows_clear();
}

/* A map that cannot be scanned fails the purge, naming the map, and the
 * other maps are still purged (less stale state is better). */
static void test_purge_failure_names_the_map(void **state)
{
	struct flow_map maps[FLOW_MAPS_MAX];
	size_t n = flows_maps(dp, maps, FLOW_MAPS_MAX);
	struct sluice_ct_value cv = { .last_seen = 1 };
	struct sluice_ct_key k = ct_key(IP_B, 1, REMOTE_A, 2, IPPROTO_UDP);
	__be32 b = ip4(IP_B);
	char err[256] = "";

	(void)state;
	flows_clear();
	put_entry(datapath_ct_map_fd(dp), &k, &cv);
	assert_true(n >= 3);
	assert_string_equal(maps[0].name, SLUICE_MAP_CT);
	maps[1].fd = -1; /* SNAT */
	assert_true(flows_purge(maps, n, match_b, &b, NULL, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, SLUICE_MAP_SNAT));
	assert_false(has_entry(datapath_ct_map_fd(dp), &k));
}

/* Fill the map with n entries, every 100th naming victim; returns how many
 * went in (an LRU map may evict a few before it is full). */
static size_t fill(int fd, size_t n, __be32 victim, int value_addr)
{
	size_t vs = value_addr ? sizeof(struct sluice_nat_value) : sizeof(struct sluice_ct_value);
	struct sluice_ct_key *keys = calloc(n, sizeof(*keys));
	unsigned char *values = calloc(n, vs);
	DECLARE_LIBBPF_OPTS(bpf_map_batch_opts, opts);
	__u32 count = (__u32)n;

	assert_non_null(keys);
	assert_non_null(values);
	for (size_t i = 0; i < n; i++) {
		int mine = i % 100 == 0;
		__be32 other = htonl(0x0a010000 + (__u32)(i >> 8));

		keys[i].saddr = mine && !value_addr ? victim : other;
		keys[i].daddr = htonl(0xc0000200 + (__u32)(i & 0xff));
		keys[i].sport = htons((__u16)(1024 + i % 60000));
		keys[i].dport = htons(80);
		keys[i].proto = IPPROTO_TCP;
		if (value_addr) {
			struct sluice_nat_value *v = (void *)(values + i * vs);

			v->addr = mine ? victim : other;
		} else {
			((struct sluice_ct_value *)(void *)(values + i * vs))->last_seen = 1;
		}
	}
	assert_int_equal(bpf_map_update_batch(fd, keys, values, &count, &opts), 0);
	free(keys);
	free(values);
	return map_count(fd);
}

/* How long DEL's purge takes with every per-flow map full. */
static void test_purge_full_maps(void **state)
{
	int ct = datapath_ct_map_fd(dp), snat = datapath_snat_map_fd(dp),
	    rnat = datapath_rnat_map_fd(dp);
	__be32 victim = ip4("10.77.0.200");
	struct flows_purge_stats st = { 0 }, ct_st = { 0 };
	struct flow_map maps[FLOW_MAPS_MAX];
	size_t nmaps = flows_maps(dp, maps, FLOW_MAPS_MAX), before, after;
	char err[256];

	(void)state;
	flows_clear();
	before = fill(ct, SLUICE_CT_MAX, victim, 0);
	before += fill(snat, SLUICE_NAT_MAX, victim, 0);
	before += fill(rnat, SLUICE_NAT_MAX, victim, 1);
	/* connection tracking alone, then every per-flow map (tracking again) */
	assert_int_equal(flows_purge(maps, 1, match_b, &victim, &ct_st, err, sizeof(err)), 0);
	assert_int_equal(flows_purge_addr(dp, ntohl(victim), &st, err, sizeof(err)), 0);
	assert_true(nmaps >= 3);
	st.removed += ct_st.removed;
	after = map_count(ct) + map_count(snat) + map_count(rnat);
	assert_int_equal(ct_st.scanned, map_count(ct) + ct_st.removed);
	assert_int_equal(st.scanned, before - ct_st.removed);
	assert_int_equal(after, before - st.removed);
	/* every 100th entry named the victim (a few may have been evicted) */
	assert_true(st.removed >= before / 100 - 64 && st.removed <= before / 100 + 3);
	st = (struct flows_purge_stats){ 0 };
	assert_int_equal(flows_purge_addr(dp, ntohl(victim), &st, err, sizeof(err)), 0);
	assert_int_equal(st.removed, 0);
	flows_clear();
}

/* ---- who may send what: the tunnel and the uplink ---------------------- */

/* VXLAN on the uplink from a host that is no node: dropped there, whatever
 * its form (one BPF would take off, one left to the device, a GSO packet,
 * one to another address of this node), never reaching the device. */
static void test_tunnel_from_non_node_dropped(void **state)
{
	__u64 drops = counter(SLUICE_DROP_TUNNEL_SOURCE, SLUICE_DIR_INGRESS);
	__u64 first = counter(SLUICE_DROP_XDP_TUNNEL, SLUICE_DIR_INGRESS);
	__u64 decap = counter(SLUICE_OVERLAY_DECAP, SLUICE_DIR_INGRESS);
	struct sluice_xdp_state st = { 0 };
	__u32 zero = 0;
	struct vxpkt v[4];
	size_t i;

	(void)state;
	for (i = 0; i < 4; i++) {
		v[i] = make_vxlan((__u16)(54000 + i), 8080);
		v[i].ip.saddr = ip4(NOT_A_NODE);
	}
	v[1].vx_vni = htonl(2 << 8);
	v[3].ip.daddr = ip4("10.210.1.1"); /* the router address, say */
	/* Without XDP the first stage at tc drops them (its own reason);
	 * with XDP running it, from_netdev's own check still does. */
	for (int xdp = 0; xdp <= 1; xdp++) {
		st.xdp_active = (__u32)xdp;
		assert_int_equal(bpf_map_update_elem(datapath_xdp_state_map_fd(dp), &zero, &st, 0), 0);
		for (i = 0; i < 4; i++) {
			struct run r = i == 2 ? run_netdev_gso(&v[i], sizeof(v[i]), 1398)
					      : run_netdev_raw(&v[i], sizeof(v[i]));

			assert_int_equal(r.retval, TC_ACT_SHOT);
		}
	}
	st.xdp_active = 0;
	assert_int_equal(bpf_map_update_elem(datapath_xdp_state_map_fd(dp), &zero, &st, 0), 0);
	assert_int_equal(counter(SLUICE_DROP_XDP_TUNNEL, SLUICE_DIR_INGRESS), first + 4);
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
	assert_int_equal(ct_flags_of(OUTSIDE, 57005, IP_B, 8080), SLUICE_CT_F_VIA_STACK | SLUICE_CT_F_DST_POLICED);
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

/* ---- Services: frontends translated in from_pod ------------------------ */

#define FRONTEND "10.96.0.10"
#define FRONTEND_EMPTY "10.96.0.11"
#define RN_WEB 7	/* rev-NAT index of FRONTEND:80/TCP */
#define RN_DNS 8	/* FRONTEND:53/UDP */

static void lb_backend_put(__u32 id, const char *ip, __u16 port, __u8 proto)
{
	struct sluice_lb4_backend b = { .addr = ip4(ip), .port = htons(port), .proto = proto };

	assert_int_equal(bpf_map_update_elem(datapath_lb_be_map_fd(dp), &id, &b, BPF_ANY), 0);
}

/* The frontend fe:port/proto with backends ids[0..n), in the agent's order:
 * rev-NAT entry and slots first, slot 0 last. */
static void lb_service_put(const char *fe, __u16 port, __u8 proto, __u32 rn, const __u32 *ids,
			   __u16 n)
{
	struct sluice_lb4_key k = { .addr = ip4(fe), .port = htons(port), .proto = proto };
	struct sluice_lb4_value v = { 0 };
	struct sluice_lb4_revnat r = { .addr = ip4(fe), .port = htons(port) };

	assert_int_equal(bpf_map_update_elem(datapath_lb_rnat_map_fd(dp), &rn, &r, BPF_ANY), 0);
	for (__u16 i = 0; i < n; i++) {
		k.slot = (__u16)(i + 1);
		v.backend_id = ids[i];
		assert_int_equal(bpf_map_update_elem(datapath_lb_svc_map_fd(dp), &k, &v, BPF_ANY), 0);
	}
	k.slot = 0;
	v = (struct sluice_lb4_value){ .count = n, .rev_nat = (__u16)rn };
	assert_int_equal(bpf_map_update_elem(datapath_lb_svc_map_fd(dp), &k, &v, BPF_ANY), 0);
}

/* nat_setup, and: FRONTEND:80/TCP -> B:8080 (backend 1); FRONTEND:53/UDP
 * -> B:5353 (backend 3); FRONTEND_EMPTY:80/TCP with no backend. */
static int lb_setup(void **state)
{
	int fds[] = { datapath_lb_svc_map_fd(dp), datapath_lb_be_map_fd(dp),
		      datapath_lb_rnat_map_fd(dp) };
	unsigned char key[64];
	__u32 web = 1, dns = 3;

	nat_setup(state);
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		while (!bpf_map_get_next_key(fds[i], NULL, key))
			bpf_map_delete_elem(fds[i], key);
	lb_backend_put(1, IP_B, 8080, IPPROTO_TCP);
	lb_backend_put(2, IP_B, 8081, IPPROTO_TCP);
	lb_backend_put(3, IP_B, 5353, IPPROTO_UDP);
	lb_service_put(FRONTEND, 80, IPPROTO_TCP, RN_WEB, &web, 1);
	lb_service_put(FRONTEND, 53, IPPROTO_UDP, RN_DNS, &dns, 1);
	lb_service_put(FRONTEND_EMPTY, 80, IPPROTO_TCP, 9, NULL, 0);
	return 0;
}

/* A's TCP segment sport -> dst:dport as A sends it, checksums valid. */
static struct l4pkt lb_from_a(const char *dst, __u16 sport, __u16 dport)
{
	struct l4pkt p = make_l4(IP_A, dst, IPPROTO_TCP, sport, dport);

	memcpy(p.eth.h_source, mac_a_pod, 6);
	memcpy(p.eth.h_dest, mac_a_lxc, 6);
	p.tcp.seq = htonl(0x12345678);
	p.tcp.window = htons(64240);
	fill_tcp_checksum(&p);
	return p;
}

/* in as the node routes it to a pod here: src:sport -> dst:dport, TTL one
 * less, MACs of the receiving pod (dmac) and its host veth (smac), both
 * checksums computed afresh. */
static struct l4pkt lb_expect(const struct l4pkt *in, const char *src, __u16 sport, const char *dst,
			      __u16 dport, const unsigned char *dmac, const unsigned char *smac)
{
	struct l4pkt e = *in;

	e.ip.saddr = ip4(src);
	e.ip.daddr = ip4(dst);
	e.ip.ttl--;
	e.ip.check = 0;
	e.ip.check = ip_checksum(&e.ip, sizeof(e.ip));
	e.tcp.source = htons(sport);
	e.tcp.dest = htons(dport);
	fill_tcp_checksum(&e);
	memcpy(e.eth.h_dest, dmac, 6);
	memcpy(e.eth.h_source, smac, 6);
	return e;
}

static struct sluice_ct_value lb_ct(const char *src, __u16 sport, const char *dst, __u16 dport,
				    __u8 proto)
{
	struct sluice_ct_key k = tuple(src, sport, dst, dport, proto);
	struct sluice_ct_value v = { 0 };

	if (bpf_map_lookup_elem(datapath_ct_map_fd(dp), &k, &v))
		v.flags = 0xdead;
	return v;
}

static void test_lb_dnat_and_reverse_byte_for_byte(void **state)
{
	__u64 tr = counter(SLUICE_LB_TRANSLATED, SLUICE_DIR_EGRESS);
	__u64 rev = counter(SLUICE_LB_REVERSE, SLUICE_DIR_EGRESS);
	struct l4pkt p = lb_from_a(FRONTEND, 41000, 80), e, reply;
	struct sluice_ct_value v;
	struct run r;

	(void)state;
	r = run_prog(1, &p, sizeof(p));
	assert_int_equal(r.retval, TC_ACT_REDIRECT);
	assert_int_equal(r.out_len, sizeof(p));
	e = lb_expect(&p, IP_A, 41000, IP_B, 8080, mac_b_pod, mac_b_lxc);
	assert_memory_equal(r.out, &e, sizeof(e));
	assert_int_equal(tcp_checksum((struct l4pkt *)r.out), 0);
	assert_int_equal(ip_checksum(&((struct l4pkt *)r.out)->ip, sizeof(p.ip)), 0);
	assert_int_equal(counter(SLUICE_LB_TRANSLATED, SLUICE_DIR_EGRESS), tr + 1);
	/* Both tracking entries: the frontend names backend 1, the
	 * translated flow the rev-NAT index. */
	v = lb_ct(IP_A, 41000, FRONTEND, 80, IPPROTO_TCP);
	assert_int_equal(v.flags, SLUICE_CT_F_LB_FRONTEND);
	assert_int_equal(v.pad, 1);
	v = lb_ct(IP_A, 41000, IP_B, 8080, IPPROTO_TCP);
	assert_true(v.flags & SLUICE_CT_F_LB_BACKEND);
	assert_int_equal(v.pad, RN_WEB);
	/* B's reply: A sees it from the frontend. */
	reply = make_l4(IP_B, IP_A, IPPROTO_TCP, 8080, 41000);
	memcpy(reply.eth.h_source, mac_b_pod, 6);
	memcpy(reply.eth.h_dest, mac_b_lxc, 6);
	reply.tcp.ack = 1;
	reply.tcp.ack_seq = htonl(0x12345679);
	fill_tcp_checksum(&reply);
	r = run_prog_on(1, &reply, sizeof(reply), ifindex_b);
	assert_int_equal(r.retval, TC_ACT_REDIRECT);
	e = lb_expect(&reply, FRONTEND, 80, IP_A, 41000, mac_a_pod, mac_a_lxc);
	assert_memory_equal(r.out, &e, sizeof(e));
	assert_int_equal(tcp_checksum((struct l4pkt *)r.out), 0);
	assert_int_equal(counter(SLUICE_LB_REVERSE, SLUICE_DIR_EGRESS), rev + 1);
	/* A packet of B's own to A (another flow) keeps its source. */
	reply = make_l4(IP_B, IP_A, IPPROTO_TCP, 8080, 41999);
	fill_tcp_checksum(&reply);
	r = run_prog_on(1, &reply, sizeof(reply), ifindex_b);
	assert_int_equal(((struct l4pkt *)r.out)->ip.saddr, ip4(IP_B));
	assert_int_equal(counter(SLUICE_LB_REVERSE, SLUICE_DIR_EGRESS), rev + 1);
}

struct udppkt {
	struct ethhdr eth;
	struct iphdr ip;
	struct udphdr udp;
	unsigned char data[12];
} __attribute__((packed));

/* A UDP datagram src:sport -> dst:dport carrying "who is there". */
static struct udppkt udp_pkt(const char *src, const char *dst, __u16 sport, __u16 dport)
{
	struct udppkt p = { 0 };

	p.eth.h_proto = htons(ETH_P_IP);
	p.ip = ipv4_header(src, dst, IPPROTO_UDP, 64, sizeof(p) - sizeof(p.eth));
	p.udp.source = htons(sport);
	p.udp.dest = htons(dport);
	p.udp.len = htons(sizeof(p.udp) + sizeof(p.data));
	memcpy(p.data, "who is there", sizeof(p.data));
	p.udp.check = l4_checksum(IPPROTO_UDP, p.ip.saddr, p.ip.daddr, &p.udp,
				  sizeof(p.udp) + sizeof(p.data));
	return p;
}

static void test_lb_udp(void **state)
{
	struct udppkt p = udp_pkt(IP_A, FRONTEND, 40053, 53), *o;
	struct run r;

	(void)state;
	memcpy(p.eth.h_source, mac_a_pod, 6);
	memcpy(p.eth.h_dest, mac_a_lxc, 6);
	r = run_prog(1, &p, sizeof(p));
	o = (struct udppkt *)r.out;
	assert_int_equal(r.retval, TC_ACT_REDIRECT);
	assert_int_equal(o->ip.daddr, ip4(IP_B));
	assert_int_equal(ntohs(o->udp.dest), 5353);
	assert_int_equal(ntohs(o->udp.source), 40053);
	assert_int_equal(ip_checksum(&o->ip, sizeof(o->ip)), 0);
	assert_int_equal(l4_checksum(IPPROTO_UDP, o->ip.saddr, o->ip.daddr, &o->udp,
				     sizeof(p.udp) + sizeof(p.data)), 0);
	assert_memory_equal(o->data, p.data, sizeof(p.data));
	/* The same frontend port over TCP is another frontend: none here. */
	{
		struct l4pkt t = lb_from_a(FRONTEND, 40053, 53);

		r = run_prog(1, &t, sizeof(t));
		assert_memory_equal(r.out, &t, sizeof(t));
	}
}

static void test_lb_flow_keeps_its_backend(void **state)
{
	__u32 both[2] = { 1, 2 }, only2 = 2;
	int seen[2] = { 0, 0 };

	(void)state;
	lb_service_put(FRONTEND, 80, IPPROTO_TCP, RN_WEB, both, 2);
	/* Many flows: both backends get some (a miss is 2^-39). */
	for (__u16 sport = 42000; sport < 42040; sport++) {
		struct l4pkt p = lb_from_a(FRONTEND, sport, 80);
		struct run r = run_prog(1, &p, sizeof(p));
		__u16 first = ntohs(((struct l4pkt *)r.out)->tcp.dest);

		assert_int_equal(r.retval, TC_ACT_REDIRECT);
		assert_true(first == 8080 || first == 8081);
		seen[first - 8080]++;
		/* Its later packets: the same backend, every time. */
		for (int i = 0; i < 5; i++) {
			p = lb_from_a(FRONTEND, sport, 80);
			p.tcp.syn = 0;
			p.tcp.ack = 1;
			fill_tcp_checksum(&p);
			r = run_prog(1, &p, sizeof(p));
			assert_int_equal(ntohs(((struct l4pkt *)r.out)->tcp.dest), first);
		}
	}
	assert_true(seen[0] > 0 && seen[1] > 0);
	/* The Service now has backend 2 only: a flow on backend 1 stays on
	 * it while backend 1 exists; once it is gone the flow chooses again. */
	for (__u16 sport = 42000;; sport++) {
		struct l4pkt p = lb_from_a(FRONTEND, sport, 80);
		struct run r = run_prog(1, &p, sizeof(p));

		if (ntohs(((struct l4pkt *)r.out)->tcp.dest) != 8080)
			continue;
		lb_service_put(FRONTEND, 80, IPPROTO_TCP, RN_WEB, &only2, 1);
		r = run_prog(1, &p, sizeof(p));
		assert_int_equal(ntohs(((struct l4pkt *)r.out)->tcp.dest), 8080);
		{
			__u32 id = 1;

			assert_int_equal(bpf_map_delete_elem(datapath_lb_be_map_fd(dp), &id), 0);
		}
		r = run_prog(1, &p, sizeof(p));
		assert_int_equal(ntohs(((struct l4pkt *)r.out)->tcp.dest), 8081);
		assert_int_equal(lb_ct(IP_A, sport, FRONTEND, 80, IPPROTO_TCP).pad, 2);
		break;
	}
}

/* Set the tracking entry k's last_seen ahead of this CPU's clock by ns: another CPU
 * refreshed it with a later bpf_ktime_get_ns() than the one this packet's program
 * read before it looked the entry up. */
static void ct_refreshed_ahead(const struct sluice_ct_key *k, __u64 ns)
{
	struct sluice_ct_value v;
	struct timespec now;

	assert_int_equal(bpf_map_lookup_elem(datapath_ct_map_fd(dp), k, &v), 0);
	clock_gettime(CLOCK_MONOTONIC, &now);
	v.last_seen = (__u64)now.tv_sec * 1000000000ull + (__u64)now.tv_nsec + ns;
	assert_int_equal(bpf_map_update_elem(datapath_ct_map_fd(dp), k, &v, BPF_EXIST), 0);
}

/* Client and backend on two CPUs: each direction refreshes the flow's entries
 * while the other's program runs with an earlier clock reading. An entry
 * seen "from the future" is live: the reply still gets the frontend back
 * (not a new flow B -> A that passes untranslated, which A answers with a
 * RST), and the client's next packet keeps its backend. */
static void test_lb_entry_refreshed_by_other_cpu(void **state)
{
	struct sluice_ct_key fe = tuple(IP_A, 41100, FRONTEND, 80, IPPROTO_TCP);
	struct sluice_ct_key be = tuple(IP_A, 41100, IP_B, 8080, IPPROTO_TCP);
	struct sluice_ct_key rev = tuple(IP_B, 8080, IP_A, 41100, IPPROTO_TCP);
	__u32 both[2] = { 1, 2 };
	struct l4pkt p = lb_from_a(FRONTEND, 41100, 80), reply;
	struct sluice_ct_value v;
	struct run r;
	__u16 first;

	(void)state;
	lb_service_put(FRONTEND, 80, IPPROTO_TCP, RN_WEB, both, 2);
	r = run_prog(1, &p, sizeof(p));
	assert_int_equal(r.retval, TC_ACT_REDIRECT);
	first = ntohs(((struct l4pkt *)r.out)->tcp.dest);
	be.dport = htons(first);
	rev.sport = htons(first);
	/* Ahead by 50 ms: far more than any skew, far less than a timeout. */
	ct_refreshed_ahead(&be, 50000000ull);
	reply = make_l4(IP_B, IP_A, IPPROTO_TCP, first, 41100);
	memcpy(reply.eth.h_source, mac_b_pod, 6);
	memcpy(reply.eth.h_dest, mac_b_lxc, 6);
	reply.tcp.ack = 1;
	fill_tcp_checksum(&reply);
	r = run_prog_on(1, &reply, sizeof(reply), ifindex_b);
	assert_int_equal(r.retval, TC_ACT_REDIRECT);
	assert_int_equal(((struct l4pkt *)r.out)->ip.saddr, ip4(FRONTEND));
	assert_int_equal(ntohs(((struct l4pkt *)r.out)->tcp.source), 80);
	assert_int_not_equal(bpf_map_lookup_elem(datapath_ct_map_fd(dp), &rev, &v), 0);
	v = lb_ct(IP_A, 41100, IP_B, first, IPPROTO_TCP);
	assert_true(v.flags & SLUICE_CT_F_LB_BACKEND);
	assert_true(v.flags & SLUICE_CT_F_REPLY_SEEN);
	assert_int_equal(v.pad, RN_WEB);
	/* The client's side: its frontend entry refreshed ahead too. */
	for (int i = 0; i < 20; i++) {
		ct_refreshed_ahead(&fe, 50000000ull);
		p = lb_from_a(FRONTEND, 41100, 80);
		p.tcp.syn = 0;
		p.tcp.ack = 1;
		fill_tcp_checksum(&p);
		r = run_prog(1, &p, sizeof(p));
		assert_int_equal(r.retval, TC_ACT_REDIRECT);
		assert_int_equal(ntohs(((struct l4pkt *)r.out)->tcp.dest), first);
	}
}

#define FRONTEND_TWO "10.96.0.12"
#define RN_TWO 10	/* FRONTEND_TWO:8000/TCP, the same backend as FRONTEND:80 */

/* A's TCP segment from sport to dst:dport with the flags given (SYN: 1). */
static struct run lb_a_sends(const char *dst, __u16 sport, __u16 dport, int syn, int ack, int rst)
{
	struct l4pkt p = lb_from_a(dst, sport, dport);

	p.tcp.syn = syn;
	p.tcp.ack = ack;
	p.tcp.rst = rst;
	fill_tcp_checksum(&p);
	return run_prog(1, &p, sizeof(p));
}

/* B's SYN-ACK from B:8080 to A's sport: the source A gets it from. */
static __be32 lb_b_answers(__u16 sport, __be16 *from_port)
{
	struct l4pkt reply = make_l4(IP_B, IP_A, IPPROTO_TCP, 8080, sport);
	struct run r;

	memcpy(reply.eth.h_source, mac_b_pod, 6);
	memcpy(reply.eth.h_dest, mac_b_lxc, 6);
	reply.tcp.ack = 1;
	fill_tcp_checksum(&reply);
	r = run_prog_on(1, &reply, sizeof(reply), ifindex_b);
	assert_int_equal(r.retval, TC_ACT_REDIRECT);
	*from_port = ((struct l4pkt *)r.out)->tcp.source;
	return ((struct l4pkt *)r.out)->ip.saddr;
}

/* One client port, first a direct connection to B:8080 closed with a RST,
 * then one through FRONTEND:80 to the same B:8080: the new SYN starts the
 * flow anew (rev-NAT index, not the closed flow's entry), so B's answer
 * comes from the frontend; and the other way round. */
static void test_lb_port_reuse_direct_then_service(void **state)
{
	struct sluice_ct_value v;
	__be16 port;

	(void)state;
	assert_int_equal(lb_a_sends(IP_B, 41200, 8080, 1, 0, 0).retval, TC_ACT_REDIRECT);
	assert_int_equal(lb_b_answers(41200, &port), ip4(IP_B));
	assert_int_equal(lb_a_sends(IP_B, 41200, 8080, 0, 1, 1).retval, TC_ACT_REDIRECT);
	assert_true(lb_ct(IP_A, 41200, IP_B, 8080, IPPROTO_TCP).flags & SLUICE_CT_F_CLOSING);
	/* Same port, through the Service. */
	assert_int_equal(lb_a_sends(FRONTEND, 41200, 80, 1, 0, 0).retval, TC_ACT_REDIRECT);
	v = lb_ct(IP_A, 41200, IP_B, 8080, IPPROTO_TCP);
	assert_int_equal(v.flags & (SLUICE_CT_F_LB_BACKEND | SLUICE_CT_F_CLOSING | SLUICE_CT_F_REPLY_SEEN),
			 SLUICE_CT_F_LB_BACKEND);
	assert_int_equal(v.pad, RN_WEB);
	assert_int_equal(lb_b_answers(41200, &port), ip4(FRONTEND));
	assert_int_equal(ntohs(port), 80);
	/* Closed with a RST, then direct again from the same port: B's answer
	 * keeps B's own address. */
	assert_int_equal(lb_a_sends(FRONTEND, 41200, 80, 0, 1, 1).retval, TC_ACT_REDIRECT);
	assert_int_equal(lb_a_sends(IP_B, 41200, 8080, 1, 0, 0).retval, TC_ACT_REDIRECT);
	v = lb_ct(IP_A, 41200, IP_B, 8080, IPPROTO_TCP);
	assert_int_equal(v.flags & (SLUICE_CT_F_LB_BACKEND | SLUICE_CT_F_CLOSING), 0);
	assert_int_equal(lb_b_answers(41200, &port), ip4(IP_B));
	assert_int_equal(ntohs(port), 8080);
}

/* Two Services with the same backend, one client port: the second flow
 * gets its own frontend back (after the first closed, and after the first
 * got no answer at all); the client-side entry of a closed Service flow
 * starts anew on a SYN (no closing timeout for the new connection). */
static void test_lb_port_reuse_two_services(void **state)
{
	__u32 web = 1;
	struct sluice_ct_value v;
	__be16 port;

	(void)state;
	lb_service_put(FRONTEND_TWO, 8000, IPPROTO_TCP, RN_TWO, &web, 1);
	/* Closed with a RST. */
	assert_int_equal(lb_a_sends(FRONTEND, 41300, 80, 1, 0, 0).retval, TC_ACT_REDIRECT);
	assert_int_equal(lb_b_answers(41300, &port), ip4(FRONTEND));
	assert_int_equal(lb_a_sends(FRONTEND, 41300, 80, 0, 1, 1).retval, TC_ACT_REDIRECT);
	assert_true(lb_ct(IP_A, 41300, FRONTEND, 80, IPPROTO_TCP).flags & SLUICE_CT_F_CLOSING);
	assert_int_equal(lb_a_sends(FRONTEND_TWO, 41300, 8000, 1, 0, 0).retval, TC_ACT_REDIRECT);
	assert_int_equal(lb_ct(IP_A, 41300, IP_B, 8080, IPPROTO_TCP).pad, RN_TWO);
	assert_int_equal(lb_b_answers(41300, &port), ip4(FRONTEND_TWO));
	assert_int_equal(ntohs(port), 8000);
	/* Never answered: a SYN to FRONTEND from a fresh port, then one to
	 * FRONTEND_TWO from it. */
	assert_int_equal(lb_a_sends(FRONTEND, 41301, 80, 1, 0, 0).retval, TC_ACT_REDIRECT);
	assert_int_equal(lb_a_sends(FRONTEND_TWO, 41301, 8000, 1, 0, 0).retval, TC_ACT_REDIRECT);
	assert_int_equal(lb_b_answers(41301, &port), ip4(FRONTEND_TWO));
	/* The same frontend again after its flow closed: a fresh client-side
	 * entry, not a closing one. */
	assert_int_equal(lb_a_sends(FRONTEND_TWO, 41300, 8000, 0, 1, 1).retval, TC_ACT_REDIRECT);
	assert_true(lb_ct(IP_A, 41300, FRONTEND_TWO, 8000, IPPROTO_TCP).flags & SLUICE_CT_F_CLOSING);
	assert_int_equal(lb_a_sends(FRONTEND_TWO, 41300, 8000, 1, 0, 0).retval, TC_ACT_REDIRECT);
	v = lb_ct(IP_A, 41300, FRONTEND_TWO, 8000, IPPROTO_TCP);
	assert_int_equal(v.flags, SLUICE_CT_F_LB_FRONTEND);
	assert_int_equal(v.pad, 1);
	assert_int_equal(lb_ct(IP_A, 41300, IP_B, 8080, IPPROTO_TCP).flags &
			 (SLUICE_CT_F_CLOSING | SLUICE_CT_F_REPLY_SEEN), 0);
}

static void udp_a_sends(const char *dst, __u16 sport, __u16 dport)
{
	struct udppkt p = udp_pkt(IP_A, dst, sport, dport);

	memcpy(p.eth.h_source, mac_a_pod, 6);
	memcpy(p.eth.h_dest, mac_a_lxc, 6);
	assert_int_equal(run_prog(1, &p, sizeof(p)).retval, TC_ACT_REDIRECT);
}

static __be32 udp_b_answers(__u16 sport)
{
	struct udppkt p = udp_pkt(IP_B, IP_A, 5353, sport);
	struct run r;

	memcpy(p.eth.h_source, mac_b_pod, 6);
	memcpy(p.eth.h_dest, mac_b_lxc, 6);
	r = run_prog_on(1, &p, sizeof(p), ifindex_b);
	assert_int_equal(r.retval, TC_ACT_REDIRECT);
	return ((struct udppkt *)r.out)->ip.saddr;
}

/* UDP from one client port: A:40600 to FRONTEND:53, then to FRONTEND_TWO:53
 * (the same backend B:5353), then to B:5353 directly: each datagram that
 * starts a flow of another kind on the tuple client -> B starts it anew,
 * so B's answers come from the frontend A last sent to, then from B. */
static void test_lb_udp_port_reuse(void **state)
{
	__u32 dns = 3;

	(void)state;
	lb_service_put(FRONTEND_TWO, 53, IPPROTO_UDP, RN_TWO, &dns, 1);
	udp_a_sends(FRONTEND, 40600, 53);
	assert_int_equal(udp_b_answers(40600), ip4(FRONTEND));
	udp_a_sends(FRONTEND_TWO, 40600, 53);
	assert_int_equal(lb_ct(IP_A, 40600, IP_B, 5353, IPPROTO_UDP).pad, RN_TWO);
	assert_int_equal(udp_b_answers(40600), ip4(FRONTEND_TWO));
	/* Later datagrams of that flow change nothing. */
	udp_a_sends(FRONTEND_TWO, 40600, 53);
	assert_int_equal(udp_b_answers(40600), ip4(FRONTEND_TWO));
	udp_a_sends(IP_B, 40600, 5353);
	assert_false(lb_ct(IP_A, 40600, IP_B, 5353, IPPROTO_UDP).flags & SLUICE_CT_F_LB_BACKEND);
	assert_int_equal(udp_b_answers(40600), ip4(IP_B));
}

/* The attacker's side: a SYN on a live, open flow's tuple (a retransmitted
 * or forged one) replaces nothing: the answered Service flow keeps its
 * rev-NAT index, its backend, and B's answers still come from the
 * frontend; a direct SYN on it neither makes the flow direct. */
static void test_lb_syn_does_not_replace_open_flow(void **state)
{
	__u32 web = 1;
	struct sluice_ct_value v;
	__be16 port;

	(void)state;
	lb_service_put(FRONTEND_TWO, 8000, IPPROTO_TCP, RN_TWO, &web, 1);
	assert_int_equal(lb_a_sends(FRONTEND, 41400, 80, 1, 0, 0).retval, TC_ACT_REDIRECT);
	assert_int_equal(lb_b_answers(41400, &port), ip4(FRONTEND));
	assert_int_equal(lb_a_sends(FRONTEND, 41400, 80, 0, 1, 0).retval, TC_ACT_REDIRECT);
	/* SYNs on the open flow's tuples: direct, and via the other Service. */
	lb_a_sends(IP_B, 41400, 8080, 1, 0, 0);
	lb_a_sends(FRONTEND_TWO, 41400, 8000, 1, 0, 0);
	lb_a_sends(FRONTEND, 41400, 80, 1, 0, 0);
	v = lb_ct(IP_A, 41400, IP_B, 8080, IPPROTO_TCP);
	assert_true(v.flags & SLUICE_CT_F_LB_BACKEND);
	assert_true(v.flags & SLUICE_CT_F_REPLY_SEEN);
	assert_int_equal(v.pad, RN_WEB);
	assert_int_equal(lb_ct(IP_A, 41400, FRONTEND, 80, IPPROTO_TCP).pad, 1);
	assert_int_equal(lb_b_answers(41400, &port), ip4(FRONTEND));
	assert_int_equal(ntohs(port), 80);
}

static void test_lb_policy_sees_backend_and_client(void **state)
{
	__u64 drops = counter(SLUICE_DROP_POLICY, SLUICE_DIR_EGRESS);
	struct l4pkt p = lb_from_a(FRONTEND, 43000, 80);

	(void)state;
	/* B isolated for ingress, admitting A on the Service port (80): not
	 * the port A's packet reaches B on. */
	set_endpoint(IP_B, SLUICE_EP_F_ISO_INGRESS, ID_B);
	rule_put(datapath_policy_map_fd(dp), (__u32)ifindex_b, ID_A, SLUICE_DIR_INGRESS,
		 IPPROTO_TCP, 80, 16);
	assert_int_equal(run_prog(1, &p, sizeof(p)).retval, TC_ACT_SHOT);
	assert_int_equal(counter(SLUICE_DROP_POLICY, SLUICE_DIR_EGRESS), drops + 1);
	assert_int_equal(lb_ct(IP_A, 43000, IP_B, 8080, IPPROTO_TCP).flags, 0xdead);
	/* Admitting another identity on the backend's port: still dropped. */
	rule_put(datapath_policy_map_fd(dp), (__u32)ifindex_b, ID_R, SLUICE_DIR_INGRESS,
		 IPPROTO_TCP, 8080, 16);
	p = lb_from_a(FRONTEND, 43001, 80);
	assert_int_equal(run_prog(1, &p, sizeof(p)).retval, TC_ACT_SHOT);
	assert_int_equal(counter(SLUICE_DROP_POLICY, SLUICE_DIR_EGRESS), drops + 2);
	/* Admitting A (its identity) on the backend's port: passes. */
	rule_put(datapath_policy_map_fd(dp), (__u32)ifindex_b, ID_A, SLUICE_DIR_INGRESS,
		 IPPROTO_TCP, 8080, 16);
	p = lb_from_a(FRONTEND, 43002, 80);
	assert_int_equal(run_prog(1, &p, sizeof(p)).retval, TC_ACT_REDIRECT);
	assert_int_equal(counter(SLUICE_DROP_POLICY, SLUICE_DIR_EGRESS), drops + 2);
	/* A's egress isolation judges the backend too: allowed to B only. */
	set_endpoint(IP_A, SLUICE_EP_F_ISO_EGRESS, ID_A);
	rule_put(datapath_policy_map_fd(dp), IFINDEX_LO, ID_B, SLUICE_DIR_EGRESS, IPPROTO_TCP, 8080,
		 16);
	p = lb_from_a(FRONTEND, 43003, 80);
	assert_int_equal(run_prog(1, &p, sizeof(p)).retval, TC_ACT_REDIRECT);
}

static void test_lb_leaves_other_traffic_alone(void **state)
{
	__u64 tr = counter(SLUICE_LB_TRANSLATED, SLUICE_DIR_EGRESS);
	__u64 none = counter(SLUICE_LB_NO_BACKEND, SLUICE_DIR_EGRESS);
	struct l4pkt p = lb_from_a(FRONTEND, 44000, 81);
	struct run r;

	(void)state;
	/* Another port of the frontend address: no frontend. */
	r = run_prog(1, &p, sizeof(p));
	assert_int_equal(r.retval, TC_ACT_OK);
	assert_memory_equal(r.out, &p, sizeof(p));
	/* A frontend without backends: refused (test_lb_reject_*), counted. */
	p = lb_from_a(FRONTEND_EMPTY, 44001, 80);
	r = run_prog(1, &p, sizeof(p));
	assert_int_equal(r.retval, TC_ACT_REDIRECT);
	assert_int_equal(counter(SLUICE_LB_NO_BACKEND, SLUICE_DIR_EGRESS), none + 1);
	/* Straight to the backend's address: a pod flow like any other. */
	p = lb_from_a(IP_B, 44002, 8080);
	r = run_prog(1, &p, sizeof(p));
	assert_int_equal(r.retval, TC_ACT_REDIRECT);
	assert_int_equal(((struct l4pkt *)r.out)->ip.saddr, ip4(IP_A));
	assert_int_equal(((struct l4pkt *)r.out)->ip.daddr, ip4(IP_B));
	assert_int_equal(counter(SLUICE_LB_TRANSLATED, SLUICE_DIR_EGRESS), tr);
	/* A flow tracked before its address became a frontend (kube-proxy's)
	 * stays untranslated. */
	{
		struct sluice_ct_key k = tuple(IP_A, 44003, FRONTEND, 80, IPPROTO_TCP);
		struct timespec now;
		struct sluice_ct_value v = { 0 };

		clock_gettime(CLOCK_MONOTONIC, &now);
		v.last_seen = (__u64)now.tv_sec * 1000000000ull + (__u64)now.tv_nsec;
		assert_int_equal(bpf_map_update_elem(datapath_ct_map_fd(dp), &k, &v, BPF_ANY), 0);
		p = lb_from_a(FRONTEND, 44003, 80);
		r = run_prog(1, &p, sizeof(p));
		assert_memory_equal(r.out, &p, sizeof(p));
	}
	assert_int_equal(counter(SLUICE_LB_TRANSLATED, SLUICE_DIR_EGRESS), tr);
}

/* Native routing, a backend on node 2: A's packet leaves translated, and
 * node 2's reply, arriving on the uplink, is given the frontend back. */
static void test_lb_remote_backend_reply(void **state)
{
	__u64 rev = counter(SLUICE_LB_REVERSE, SLUICE_DIR_INGRESS);
	struct l4pkt p = lb_from_a(FRONTEND, 45000, 80), reply, e;
	__u32 remote = 4;
	struct run r;

	(void)state;
	lb_backend_put(remote, REMOTE_POD, 8080, IPPROTO_TCP);
	lb_service_put(FRONTEND, 80, IPPROTO_TCP, RN_WEB, &remote, 1);
	r = run_prog(1, &p, sizeof(p));
	assert_int_equal(((struct l4pkt *)r.out)->ip.daddr, ip4(REMOTE_POD));
	assert_int_equal(ntohs(((struct l4pkt *)r.out)->tcp.dest), 8080);
	assert_int_equal(tcp_checksum((struct l4pkt *)r.out), 0);
	/* A isolated for ingress: a packet forged as the frontend's answer
	 * (the client's tuple reversed) is no reply: dropped. */
	set_endpoint(IP_A, SLUICE_EP_F_ISO_INGRESS, ID_A);
	reply = from_node2(FRONTEND, IP_A, 80, 45000);
	reply.tcp.ack = 1;
	fill_tcp_checksum(&reply);
	assert_int_equal(run_node(HOOK_NETDEV, &reply, 0, NULL).retval, TC_ACT_SHOT);
	/* The backend's real reply passes. */
	reply = from_node2(REMOTE_POD, IP_A, 8080, 45000);
	reply.tcp.ack = 1;
	fill_tcp_checksum(&reply);
	r = run_node(HOOK_NETDEV, &reply, 0, NULL);
	assert_int_equal(r.retval, TC_ACT_REDIRECT);
	e = lb_expect(&reply, FRONTEND, 80, IP_A, 45000, mac_a_pod, mac_a_lxc);
	assert_memory_equal(r.out, &e, sizeof(e));
	assert_int_equal(counter(SLUICE_LB_REVERSE, SLUICE_DIR_INGRESS), rev + 1);
	/* A packet from node 2's pod that is no reply keeps its source. */
	reply = from_node2(REMOTE_POD, IP_A, 8080, 45999);
	fill_tcp_checksum(&reply);
	r = run_node(HOOK_NETDEV, &reply, 0, NULL);
	assert_int_equal(((struct l4pkt *)r.out)->ip.saddr, ip4(REMOTE_POD));
	assert_int_equal(counter(SLUICE_LB_REVERSE, SLUICE_DIR_INGRESS), rev + 1);
}

/* ---- Services: clients outside the cluster (from_netdev, scope EXT) ----- */

#define EXT_CLIENT "10.200.0.99"	/* on the node network, no node (NOT_A_NODE) */
#define EXT_CLIENT_MAC "02:dd:00:00:00:99"
#define BE_REMOTE "10.202.0.7"		/* node 2's pod, routed via 10.200.0.12 */
#define NODEPORT 30080
#define RN_NP 11			/* rev-NAT index of NODE_IP:30080 (EXT) */

/* fe:port/TCP in scope with slot-0 flags and backends ids[0..n). */
static void np_put(const char *fe, __u16 port, __u8 scope, __u16 flags, __u32 rn, const __u32 *ids,
		   __u16 n)
{
	struct sluice_lb4_key k = { .addr = ip4(fe), .port = htons(port), .proto = IPPROTO_TCP,
				    .scope = scope };
	struct sluice_lb4_value v = { 0 };
	struct sluice_lb4_revnat r = { .addr = ip4(fe), .port = htons(port) };

	assert_int_equal(bpf_map_update_elem(datapath_lb_rnat_map_fd(dp), &rn, &r, BPF_ANY), 0);
	for (__u16 i = 0; i < n; i++) {
		k.slot = (__u16)(i + 1);
		v.backend_id = ids[i];
		assert_int_equal(bpf_map_update_elem(datapath_lb_svc_map_fd(dp), &k, &v, BPF_ANY), 0);
	}
	k.slot = 0;
	v = (struct sluice_lb4_value){ .count = n, .rev_nat = (__u16)rn, .flags = flags };
	assert_int_equal(bpf_map_update_elem(datapath_lb_svc_map_fd(dp), &k, &v, BPF_ANY), 0);
}

/* lb_setup, and: the outside client's MAC known on sltest0, node 2's pod
 * network 10.202.0.0/24 (routed via node 2) in the ipcache; backends 5
 * (B:8080, local) and 6 (BE_REMOTE:8080). */
static int np_setup(void **state)
{
	lb_setup(state);
	if (system("ip neigh replace " EXT_CLIENT " lladdr " EXT_CLIENT_MAC
		   " dev sltest0 nud permanent"))
		return -1;
	ipcache_put_full("10.202.0.0", 24, SLUICE_ID_WORLD, NODE2, 0);
	lb_backend_put(5, IP_B, 8080, IPPROTO_TCP);
	lb_backend_put(6, BE_REMOTE, 8080, IPPROTO_TCP);
	return 0;
}

/* The outside client's segment sport -> dst:dport, as it arrives on the
 * uplink (sltest0) from the client's MAC. */
static struct l4pkt from_outside(const char *dst, __u16 sport, __u16 dport)
{
	struct l4pkt p = make_l4(EXT_CLIENT, dst, IPPROTO_TCP, sport, dport);

	assert_int_equal(sscanf(EXT_CLIENT_MAC, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &p.eth.h_source[0],
				&p.eth.h_source[1], &p.eth.h_source[2], &p.eth.h_source[3],
				&p.eth.h_source[4], &p.eth.h_source[5]), 6);
	p.tcp.seq = htonl(0x01020304);
	fill_tcp_checksum(&p);
	return p;
}

/* A NodePort with a local backend: translated on the uplink, the client's
 * address kept, the backend's policy judging the client; the backend's
 * reply gets the NodePort back and is routed out to the client. Only the
 * EXT entry counts on the uplink. */
static void test_np_local_backend(void **state)
{
	__u64 tr = counter(SLUICE_LB_EXT_TRANSLATED, SLUICE_DIR_INGRESS);
	__u64 snat = counter(SLUICE_LB_SNAT, SLUICE_DIR_INGRESS);
	__u64 rev = counter(SLUICE_LB_EXT_REVERSE, SLUICE_DIR_EGRESS);
	struct l4pkt p = from_outside(NODE_IP, 47000, NODEPORT), e, reply, *o;
	__u32 local = 5;
	struct sluice_ct_value v;
	struct run r;

	(void)state;
	/* INT only: a pod's frontend, not the outside world's. */
	np_put(NODE_IP, NODEPORT, SLUICE_LB_SCOPE_INT, SLUICE_LB_F_NODEPORT, RN_NP + 1, &local, 1);
	r = run_node(HOOK_NETDEV, &p, 0, NULL);
	assert_int_equal(((struct l4pkt *)r.out)->ip.daddr, ip4(NODE_IP));
	assert_int_equal(counter(SLUICE_LB_EXT_TRANSLATED, SLUICE_DIR_INGRESS), tr);
	/* EXT: translated, straight to B. */
	np_put(NODE_IP, NODEPORT, SLUICE_LB_SCOPE_EXT, SLUICE_LB_F_NODEPORT, RN_NP, &local, 1);
	p = from_outside(NODE_IP, 47001, NODEPORT);
	r = run_node(HOOK_NETDEV, &p, 0, NULL);
	assert_int_equal(r.retval, TC_ACT_REDIRECT);
	e = lb_expect(&p, EXT_CLIENT, 47001, IP_B, 8080, mac_b_pod, mac_b_lxc);
	assert_memory_equal(r.out, &e, sizeof(e));
	assert_int_equal(counter(SLUICE_LB_EXT_TRANSLATED, SLUICE_DIR_INGRESS), tr + 1);
	assert_int_equal(counter(SLUICE_LB_SNAT, SLUICE_DIR_INGRESS), snat);
	v = lb_ct(EXT_CLIENT, 47001, NODE_IP, NODEPORT, IPPROTO_TCP);
	assert_int_equal(v.flags, SLUICE_CT_F_LB_FRONTEND);
	assert_int_equal(v.pad, 5);
	v = lb_ct(EXT_CLIENT, 47001, IP_B, 8080, IPPROTO_TCP);
	assert_true(v.flags & SLUICE_CT_F_LB_BACKEND);
	assert_false(v.flags & SLUICE_CT_F_VIA_STACK);
	assert_int_equal(v.pad, RN_NP);
	/* B's reply: from the NodePort, routed out to the client's MAC. */
	reply = make_l4(IP_B, EXT_CLIENT, IPPROTO_TCP, 8080, 47001);
	memcpy(reply.eth.h_source, mac_b_pod, 6);
	memcpy(reply.eth.h_dest, mac_b_lxc, 6);
	reply.tcp.ack = 1;
	fill_tcp_checksum(&reply);
	r = run_prog_on(1, &reply, sizeof(reply), ifindex_b);
	o = (struct l4pkt *)r.out;
	assert_int_equal(r.retval, TC_ACT_REDIRECT);
	assert_int_equal(o->ip.saddr, ip4(NODE_IP));
	assert_int_equal(ntohs(o->tcp.source), NODEPORT);
	assert_int_equal(o->ip.daddr, ip4(EXT_CLIENT));
	assert_int_equal(ntohs(o->tcp.dest), 47001);
	assert_int_equal(o->ip.ttl, 63);
	assert_int_equal(ip_checksum(&o->ip, sizeof(o->ip)), 0);
	assert_int_equal(tcp_checksum(o), 0);
	assert_int_equal(o->eth.h_dest[5], 0x99);
	assert_int_equal(counter(SLUICE_LB_EXT_REVERSE, SLUICE_DIR_EGRESS), rev + 1);
}

/* The local backend's ingress policy judges the outside client itself. */
static void test_np_local_backend_policy(void **state)
{
	__u64 drops = counter(SLUICE_DROP_POLICY, SLUICE_DIR_INGRESS);
	struct l4pkt p = from_outside(NODE_IP, 47100, NODEPORT);
	__u32 local = 5;

	(void)state;
	np_put(NODE_IP, NODEPORT, SLUICE_LB_SCOPE_EXT, SLUICE_LB_F_NODEPORT | SLUICE_LB_F_EXT_LOCAL,
	       RN_NP, &local, 1);
	set_endpoint(IP_B, SLUICE_EP_F_ISO_INGRESS, ID_B);
	assert_int_equal(run_node(HOOK_NETDEV, &p, 0, NULL).retval, TC_ACT_SHOT);
	assert_int_equal(counter(SLUICE_DROP_POLICY, SLUICE_DIR_INGRESS), drops + 1);
	/* Admitting the world on 8080 (the backend's port, after translation). */
	rule_put(datapath_policy_map_fd(dp), (__u32)ifindex_b, SLUICE_ID_WORLD, SLUICE_DIR_INGRESS,
		 IPPROTO_TCP, 8080, 16);
	p = from_outside(NODE_IP, 47101, NODEPORT);
	assert_int_equal(run_node(HOOK_NETDEV, &p, 0, NULL).retval, TC_ACT_REDIRECT);
}

/* eTP Cluster, another node's backend: SNATed to the node's address and a
 * port of the masquerade range; the backend's reply is given the client
 * and the NodePort back and routed out. Forged replies are not. */
static void test_np_remote_backend_snat(void **state)
{
	__u64 snat = counter(SLUICE_LB_SNAT, SLUICE_DIR_INGRESS);
	__u64 back = counter(SLUICE_LB_SNAT_REVERSE, SLUICE_DIR_INGRESS);
	struct l4pkt p = from_outside(NODE_IP, 47200, NODEPORT), reply, *o;
	__u32 remote = 6;
	__u16 port;
	struct run r;

	(void)state;
	np_put(NODE_IP, NODEPORT, SLUICE_LB_SCOPE_EXT, SLUICE_LB_F_NODEPORT, RN_NP, &remote, 1);
	r = run_node(HOOK_NETDEV, &p, 0, NULL);
	o = (struct l4pkt *)r.out;
	assert_int_equal(r.retval, TC_ACT_REDIRECT);
	assert_int_equal(o->ip.saddr, ip4(NODE_IP));
	port = ntohs(o->tcp.source);
	assert_in_range(port, group_opts->nat_port_min ?: SLUICE_NAT_PORTS_DEFAULT_MIN,
			group_opts->nat_port_max ?: SLUICE_NAT_PORTS_DEFAULT_MAX);
	assert_int_equal(o->ip.daddr, ip4(BE_REMOTE));
	assert_int_equal(ntohs(o->tcp.dest), 8080);
	assert_int_equal(ip_checksum(&o->ip, sizeof(o->ip)), 0);
	assert_int_equal(tcp_checksum(o), 0);
	assert_int_equal(counter(SLUICE_LB_SNAT, SLUICE_DIR_INGRESS), snat + 1);
	/* The flow's next packet: the same port. */
	p = from_outside(NODE_IP, 47200, NODEPORT);
	p.tcp.syn = 0;
	p.tcp.ack = 1;
	fill_tcp_checksum(&p);
	r = run_node(HOOK_NETDEV, &p, 0, NULL);
	assert_int_equal(ntohs(((struct l4pkt *)r.out)->tcp.source), port);
	/* A forged reply from the outside client itself to that port: no
	 * pair of its; left to the node, untranslated. */
	reply = from_outside(NODE_IP, 8080, port);
	r = run_node(HOOK_NETDEV, &reply, 0, NULL);
	assert_int_equal(((struct l4pkt *)r.out)->ip.daddr, ip4(NODE_IP));
	assert_int_equal(counter(SLUICE_LB_SNAT_REVERSE, SLUICE_DIR_INGRESS), back);
	/* Forged as the backend, from a MAC that is not node 2's: dropped. */
	reply = from_node2(BE_REMOTE, NODE_IP, 8080, port);
	reply.eth.h_source[5] ^= 0x40;
	reply.tcp.ack = 1;
	fill_tcp_checksum(&reply);
	assert_int_equal(run_node(HOOK_NETDEV, &reply, 0, NULL).retval, TC_ACT_SHOT);
	assert_int_equal(counter(SLUICE_LB_SNAT_REVERSE, SLUICE_DIR_INGRESS), back);
	/* The backend's reply through node 2: to the client, from the NodePort. */
	reply = from_node2(BE_REMOTE, NODE_IP, 8080, port);
	reply.tcp.ack = 1;
	fill_tcp_checksum(&reply);
	r = run_node(HOOK_NETDEV, &reply, 0, NULL);
	o = (struct l4pkt *)r.out;
	assert_int_equal(r.retval, TC_ACT_REDIRECT);
	assert_int_equal(o->ip.saddr, ip4(NODE_IP));
	assert_int_equal(ntohs(o->tcp.source), NODEPORT);
	assert_int_equal(o->ip.daddr, ip4(EXT_CLIENT));
	assert_int_equal(ntohs(o->tcp.dest), 47200);
	assert_int_equal(ip_checksum(&o->ip, sizeof(o->ip)), 0);
	assert_int_equal(tcp_checksum(o), 0);
	assert_int_equal(o->eth.h_dest[5], 0x99);
	assert_int_equal(counter(SLUICE_LB_SNAT_REVERSE, SLUICE_DIR_INGRESS), back + 1);
	/* Once the flow is no longer tracked, its pair answers nothing. */
	{
		struct sluice_ct_key k = tuple(EXT_CLIENT, 47200, BE_REMOTE, 8080, IPPROTO_TCP);

		ct_age(&k);
		reply = from_node2(BE_REMOTE, NODE_IP, 8080, port);
		reply.tcp.ack = 1;
		fill_tcp_checksum(&reply);
		r = run_node(HOOK_NETDEV, &reply, 0, NULL);
		assert_int_equal(((struct l4pkt *)r.out)->ip.daddr, ip4(NODE_IP));
		assert_int_equal(counter(SLUICE_LB_SNAT_REVERSE, SLUICE_DIR_INGRESS), back + 1);
	}
	/* A tuple still tracked as a flow of its own (no Service flow's):
	 * the Service flow takes the entry over, and its reply comes back. */
	{
		struct sluice_ct_key k = tuple(EXT_CLIENT, 47201, BE_REMOTE, 8080, IPPROTO_TCP);
		struct sluice_ct_value old = { 0 };
		struct timespec now;

		clock_gettime(CLOCK_MONOTONIC, &now);
		old.last_seen = (__u64)now.tv_sec * 1000000000ull + (__u64)now.tv_nsec;
		assert_int_equal(bpf_map_update_elem(datapath_ct_map_fd(dp), &k, &old, BPF_ANY), 0);
		p = from_outside(NODE_IP, 47201, NODEPORT);
		r = run_node(HOOK_NETDEV, &p, 0, NULL);
		port = ntohs(((struct l4pkt *)r.out)->tcp.source);
		assert_true(lb_ct(EXT_CLIENT, 47201, BE_REMOTE, 8080, IPPROTO_TCP).flags &
			    SLUICE_CT_F_LB_BACKEND);
		reply = from_node2(BE_REMOTE, NODE_IP, 8080, port);
		reply.tcp.ack = 1;
		fill_tcp_checksum(&reply);
		r = run_node(HOOK_NETDEV, &reply, 0, NULL);
		assert_int_equal(((struct l4pkt *)r.out)->ip.daddr, ip4(EXT_CLIENT));
		assert_int_equal(counter(SLUICE_LB_SNAT_REVERSE, SLUICE_DIR_INGRESS), back + 2);
	}
}

/* eTP Local (SLUICE_LB_F_EXT_LOCAL): never SNATed, whatever the backend. */
static void test_np_ext_local_keeps_client(void **state)
{
	__u64 snat = counter(SLUICE_LB_SNAT, SLUICE_DIR_INGRESS);
	struct l4pkt p = from_outside(NODE_IP, 47300, NODEPORT);
	__u32 remote = 6;
	struct run r;

	(void)state;
	np_put(NODE_IP, NODEPORT, SLUICE_LB_SCOPE_EXT, SLUICE_LB_F_NODEPORT | SLUICE_LB_F_EXT_LOCAL,
	       RN_NP, &remote, 1);
	r = run_node(HOOK_NETDEV, &p, 0, NULL);
	assert_int_equal(((struct l4pkt *)r.out)->ip.saddr, ip4(EXT_CLIENT));
	assert_int_equal(ntohs(((struct l4pkt *)r.out)->tcp.source), 47300);
	assert_int_equal(((struct l4pkt *)r.out)->ip.daddr, ip4(BE_REMOTE));
	assert_int_equal(counter(SLUICE_LB_SNAT, SLUICE_DIR_INGRESS), snat);
}

/* eTP Local, the Service's endpoints all on other nodes (its INT entry has
 * them, its EXT entry none): kube-proxy's "has no local endpoints" DROP,
 * never refused and never handed to the node's stack. */
static void test_np_ext_local_without_local_backend_dropped(void **state)
{
	__u64 drops = counter(SLUICE_DROP_LB_EXT_NO_LOCAL, SLUICE_DIR_INGRESS);
	__u64 rej = counter(SLUICE_LB_EXT_REJECT, SLUICE_DIR_INGRESS);
	struct l4pkt p = from_outside(NODE_IP, 47301, NODEPORT);
	__u32 remote = 6;
	struct run r;

	(void)state;
	np_put(NODE_IP, NODEPORT, SLUICE_LB_SCOPE_INT, SLUICE_LB_F_NODEPORT, RN_NP + 1, &remote, 1);
	np_put(NODE_IP, NODEPORT, SLUICE_LB_SCOPE_EXT, SLUICE_LB_F_NODEPORT | SLUICE_LB_F_EXT_LOCAL,
	       RN_NP, NULL, 0);
	r = run_node(HOOK_NETDEV, &p, 0, NULL);
	assert_int_equal(r.retval, TC_ACT_SHOT);
	assert_int_equal(counter(SLUICE_DROP_LB_EXT_NO_LOCAL, SLUICE_DIR_INGRESS), drops + 1);
	assert_int_equal(counter(SLUICE_LB_EXT_REJECT, SLUICE_DIR_INGRESS), rej);
	assert_int_equal(lb_ct(EXT_CLIENT, 47301, NODE_IP, NODEPORT, IPPROTO_TCP).flags, 0xdead);
	/* The Service's last endpoint gone (INT empty too): refused. */
	np_put(NODE_IP, NODEPORT, SLUICE_LB_SCOPE_INT, SLUICE_LB_F_NODEPORT, RN_NP + 1, NULL, 0);
	p = from_outside(NODE_IP, 47302, NODEPORT);
	r = run_node(HOOK_NETDEV, &p, 0, NULL);
	assert_int_equal(r.retval, TC_ACT_REDIRECT);
	assert_true(((struct l4pkt *)r.out)->tcp.rst);
	assert_int_equal(counter(SLUICE_DROP_LB_EXT_NO_LOCAL, SLUICE_DIR_INGRESS), drops + 1);
	assert_int_equal(counter(SLUICE_LB_EXT_REJECT, SLUICE_DIR_INGRESS), rej + 1);
}

/* An outside client's SYN to a NodePort without any endpoint comes back
 * as the NodePort's RST|ACK, to the byte, addressed to the MAC it came
 * from (out of the uplink again); its UDP datagram as ICMP port
 * unreachable quoting it. Nothing is tracked. */
static void test_np_no_endpoint_refused(void **state)
{
	__u64 rej = counter(SLUICE_LB_EXT_REJECT, SLUICE_DIR_INGRESS);
	__u64 rtcp = counter(SLUICE_LB_REJECT_TCP, SLUICE_DIR_INGRESS);
	__u64 rudp = counter(SLUICE_LB_REJECT_UDP, SLUICE_DIR_INGRESS);
	struct l4pkt p = from_outside(NODE_IP, 47500, NODEPORT);
	struct sluice_lb4_key uk = { .addr = ip4(NODE_IP), .port = htons(NODEPORT),
				     .proto = IPPROTO_UDP, .scope = SLUICE_LB_SCOPE_EXT };
	struct sluice_lb4_value uv = { .rev_nat = RN_NP + 2, .flags = SLUICE_LB_F_NODEPORT };
	struct {
		struct ethhdr eth;
		struct iphdr ip;
		struct tcphdr tcp;
	} __attribute__((packed)) e = { 0 };
	struct {
		struct ethhdr eth;
		struct iphdr ip;
		struct icmphdr icmp;
		struct iphdr quoted;
		struct udphdr udp;
	} __attribute__((packed)) ue = { 0 }, *uo;
	struct udppkt u = { 0 };
	struct run r;

	(void)state;
	np_put(NODE_IP, NODEPORT, SLUICE_LB_SCOPE_EXT, SLUICE_LB_F_NODEPORT, RN_NP, NULL, 0);
	r = run_node(HOOK_NETDEV, &p, 0, NULL);
	assert_int_equal(r.retval, TC_ACT_REDIRECT);
	assert_int_equal(r.out_len, sizeof(e));
	memcpy(e.eth.h_dest, p.eth.h_source, 6);
	memcpy(e.eth.h_source, p.eth.h_dest, 6);
	e.eth.h_proto = htons(ETH_P_IP);
	e.ip = ipv4_header(NODE_IP, EXT_CLIENT, IPPROTO_TCP, 64, sizeof(e.ip) + sizeof(e.tcp));
	e.tcp.source = htons(NODEPORT);
	e.tcp.dest = htons(47500);
	e.tcp.ack_seq = htonl(0x01020304 + 1 + (ntohs(p.ip.tot_len) - 40));
	e.tcp.doff = 5;
	e.tcp.rst = 1;
	e.tcp.ack = 1;
	e.tcp.check = l4_checksum(IPPROTO_TCP, e.ip.saddr, e.ip.daddr, &e.tcp, sizeof(e.tcp));
	assert_memory_equal(r.out, &e, sizeof(e));
	assert_int_equal(counter(SLUICE_LB_REJECT_TCP, SLUICE_DIR_INGRESS), rtcp + 1);
	assert_int_equal(counter(SLUICE_LB_EXT_REJECT, SLUICE_DIR_INGRESS), rej + 1);
	assert_int_equal(lb_ct(EXT_CLIENT, 47500, NODE_IP, NODEPORT, IPPROTO_TCP).flags, 0xdead);
	/* A stray ACK is not answered (no reset by address), only dropped. */
	p = from_outside(NODE_IP, 47501, NODEPORT);
	p.tcp.syn = 0;
	p.tcp.ack = 1;
	fill_tcp_checksum(&p);
	assert_int_equal(run_node(HOOK_NETDEV, &p, 0, NULL).retval, TC_ACT_SHOT);
	assert_int_equal(counter(SLUICE_LB_EXT_REJECT, SLUICE_DIR_INGRESS), rej + 1);

	/* UDP. */
	assert_int_equal(bpf_map_update_elem(datapath_lb_svc_map_fd(dp), &uk, &uv, BPF_ANY), 0);
	memcpy(u.eth.h_source, p.eth.h_source, 6);
	memset(u.eth.h_dest, 0x02, 6);
	u.eth.h_proto = htons(ETH_P_IP);
	u.ip = ipv4_header(EXT_CLIENT, NODE_IP, IPPROTO_UDP, 64, sizeof(u) - sizeof(u.eth));
	u.ip.id = htons(0x4343);
	u.ip.check = 0;
	u.ip.check = ip_checksum(&u.ip, sizeof(u.ip));
	u.udp.source = htons(47502);
	u.udp.dest = htons(NODEPORT);
	u.udp.len = htons(sizeof(u.udp) + sizeof(u.data));
	memcpy(u.data, "anyone home?", sizeof(u.data));
	u.udp.check = l4_checksum(IPPROTO_UDP, u.ip.saddr, u.ip.daddr, &u.udp,
				  sizeof(u.udp) + sizeof(u.data));
	r = run_hook(HOOK_NETDEV, &u, sizeof(u),
		     &(struct __sk_buff){ .ifindex = (__u32)ifindex_b });
	assert_int_equal(r.retval, TC_ACT_REDIRECT);
	assert_int_equal(r.out_len, sizeof(ue));
	memcpy(ue.eth.h_dest, u.eth.h_source, 6);
	memcpy(ue.eth.h_source, u.eth.h_dest, 6);
	ue.eth.h_proto = htons(ETH_P_IP);
	ue.ip = ipv4_header(NODE_IP, EXT_CLIENT, IPPROTO_ICMP, 64, sizeof(ue) - sizeof(ue.eth));
	ue.icmp.type = ICMP_DEST_UNREACH;
	ue.icmp.code = ICMP_PORT_UNREACH;
	ue.quoted = u.ip;
	ue.udp = u.udp;
	ue.icmp.checksum = ip_checksum(&ue.icmp, sizeof(ue) - sizeof(ue.eth) - sizeof(ue.ip));
	assert_memory_equal(r.out, &ue, sizeof(ue));
	uo = (void *)r.out;
	assert_int_equal(ip_checksum(&uo->ip, sizeof(uo->ip)), 0);
	assert_int_equal(ip_checksum(&uo->icmp, sizeof(ue) - sizeof(ue.eth) - sizeof(ue.ip)), 0);
	assert_int_equal(counter(SLUICE_LB_REJECT_UDP, SLUICE_DIR_INGRESS), rudp + 1);
	assert_int_equal(counter(SLUICE_LB_EXT_REJECT, SLUICE_DIR_INGRESS), rej + 2);
	uk.slot = 0;
	assert_int_equal(bpf_map_delete_elem(datapath_lb_svc_map_fd(dp), &uk), 0);
}

/* The overlay: another node's backend through the tunnel, SNATed. */
static void test_np_remote_backend_overlay(void **state)
{
	struct l4pkt p = from_outside(NODE_IP, 47400, NODEPORT);
	__u32 remote = 6;
	struct vxpkt *o;
	struct run r;

	(void)state;
	np_put(NODE_IP, NODEPORT, SLUICE_LB_SCOPE_EXT, SLUICE_LB_F_NODEPORT, RN_NP, &remote, 1);
	r = run_node(HOOK_NETDEV, &p, 0, NULL);
	o = (struct vxpkt *)r.out;
	assert_int_equal(r.retval, TC_ACT_REDIRECT);
	assert_int_equal(r.out_len, sizeof(p) + SLUICE_OVERLAY_OVERHEAD);
	assert_int_equal(o->ip.daddr, ip4(NODE2));
	assert_int_equal(o->inner.ip.saddr, ip4(NODE_IP));
	assert_in_range(ntohs(o->inner.tcp.source), NAT_LO, NAT_HI);
	assert_int_equal(o->inner.ip.daddr, ip4(BE_REMOTE));
	assert_int_equal(tcp_checksum(&o->inner), 0);
}

/* ---- NodePort at XDP (bpf/lib/nodeport_xdp.h, stage 2) -------------------- */

/* The uplink's XDP program on frame data, as sltest0 (the uplink towards
 * node 2) receives it. */
static struct run run_xdp(const void *data, __u32 len)
{
	struct run r = { 0 };
	struct xdp_md ctx = { .data_end = len, .ingress_ifindex = (__u32)ifindex_b };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = data, .data_size_in = len,
		    .data_out = r.out, .data_size_out = sizeof(r.out), .repeat = 1,
		    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx));

	if (bpf_prog_test_run_opts(datapath_xdp_prog_fd(dp), &opts))
		fail_msg("BPF_PROG_TEST_RUN (XDP) failed: %s", strerror(errno));
	r.retval = (int)opts.retval;
	r.out_len = opts.data_size_out;
	return r;
}

/* sluice_xdpft_v1's packets for cause. */
static __u64 xdp_ft(enum sluice_xdp_ft cause)
{
	struct sluice_metric m;

	assert_int_equal(datapath_xdp_ft_counter(dp, cause, &m), 0);
	return m.packets;
}

static void uplink_mac(unsigned char mac[6])
{
	/* (sysfs still shows the namespace this process started in) */
	FILE *f = popen("ip -br link show sltest0 | awk '{print $3}'", "r");

	assert_non_null(f);
	assert_int_equal(fscanf(f, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &mac[0], &mac[1], &mac[2],
				&mac[3], &mac[4], &mac[5]), 6);
	pclose(f);
}

static void mac_parse(const char *s, unsigned char mac[6])
{
	assert_int_equal(sscanf(s, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &mac[0], &mac[1], &mac[2],
				&mac[3], &mac[4], &mac[5]), 6);
}

/* The client's segment p as the backend's node gets it: from the node's
 * address and nat_port to BE_REMOTE:8080, TTL one less, both checksums
 * computed afresh, the Ethernet header as given. */
static struct l4pkt np_translated(const struct l4pkt *p, __u16 nat_port)
{
	struct l4pkt e = *p;

	e.ip.saddr = ip4(NODE_IP);
	e.ip.daddr = ip4(BE_REMOTE);
	e.ip.ttl--;
	e.ip.check = 0;
	e.ip.check = ip_checksum(&e.ip, sizeof(e.ip));
	e.tcp.source = htons(nat_port);
	e.tcp.dest = htons(8080);
	fill_tcp_checksum(&e);
	return e;
}

/* The state the tc path writes for an SNATed external flow sport ->
 * NodePort, backend 6 (BE_REMOTE:8080), node port nat_port: both tracking
 * entries and both halves of the NAT pair, by value. */
static void np_state_is_tc_s(__u16 sport, __u16 nat_port)
{
	struct sluice_ct_key fwd = tuple(EXT_CLIENT, sport, BE_REMOTE, 8080, IPPROTO_TCP);
	struct sluice_ct_key rep = tuple(BE_REMOTE, 8080, NODE_IP, nat_port, IPPROTO_TCP);
	struct sluice_nat_value v;
	struct sluice_ct_value c;

	c = lb_ct(EXT_CLIENT, sport, NODE_IP, NODEPORT, IPPROTO_TCP);
	assert_int_equal(c.flags, SLUICE_CT_F_LB_FRONTEND);
	assert_int_equal(c.pad, 6);
	c = lb_ct(EXT_CLIENT, sport, BE_REMOTE, 8080, IPPROTO_TCP);
	assert_int_equal(c.flags, SLUICE_CT_F_LB_BACKEND);
	assert_int_equal(c.pad, RN_NP);
	assert_int_equal(bpf_map_lookup_elem(datapath_snat_map_fd(dp), &fwd, &v), 0);
	assert_int_equal(v.addr, ip4(NODE_IP));
	assert_int_equal(ntohs(v.port), nat_port);
	assert_int_equal(bpf_map_lookup_elem(datapath_rnat_map_fd(dp), &rep, &v), 0);
	assert_int_equal(v.addr, ip4(EXT_CLIENT));
	assert_int_equal(ntohs(v.port), sport);
}

static void xdp_falls_through(const void *p, __u32 len, enum sluice_xdp_ft cause);

/* Overlay: the client's SYN to a NodePort whose backend is on node 2 leaves
 * the uplink at XDP (XDP_TX) in VXLAN to node 2, byte for byte: outer
 * headers as lib/overlay.h builds them (the source port from the flow
 * hash), the inner segment DNATed and SNATed with valid checksums; the
 * tracking entries and NAT pair are the tc path's, so tc carries the
 * flow's next segment alike (the same inner bytes) and XDP the one after. */
static void test_xdp_np_remote_overlay_byte_for_byte(void **state)
{
	__u64 tx = counter(SLUICE_XDP_TX, SLUICE_DIR_INGRESS);
	__u64 tr = counter(SLUICE_LB_EXT_TRANSLATED, SLUICE_DIR_INGRESS);
	__u64 snat = counter(SLUICE_LB_SNAT, SLUICE_DIR_INGRESS);
	struct l4pkt p = from_outside(NODE_IP, 47500, NODEPORT);
	struct vxpkt e = { 0 }, *o;
	__u32 remote = 6, hash;
	__u16 port;
	struct run r, t;

	(void)state;
	np_put(NODE_IP, NODEPORT, SLUICE_LB_SCOPE_EXT, SLUICE_LB_F_NODEPORT, RN_NP, &remote, 1);
	r = run_xdp(&p, sizeof(p));
	o = (struct vxpkt *)r.out;
	assert_int_equal(r.retval, XDP_TX);
	assert_int_equal(r.out_len, sizeof(p) + SLUICE_OVERLAY_OVERHEAD);
	port = ntohs(o->inner.tcp.source);
	assert_in_range(port, NAT_LO, NAT_HI);
	/* The expected frame, field by field. */
	mac_parse(NODE2_MAC, e.eth.h_dest);
	uplink_mac(e.eth.h_source);
	e.eth.h_proto = htons(ETH_P_IP);
	e.ip = ipv4_header(NODE_IP, NODE2, IPPROTO_UDP, 64, sizeof(e) - sizeof(e.eth));
	e.ip.id = o->ip.id; /* any value: never DF */
	e.ip.check = 0;
	e.ip.check = ip_checksum(&e.ip, sizeof(e.ip));
	hash = sluice_lb_flow_hash4(ip4(NODE_IP), ip4(BE_REMOTE), htons(port), htons(8080),
				    IPPROTO_TCP, SLUICE_LB_SEED_DEFAULT);
	e.udp.source = htons((__u16)(32768 + (((__u64)hash * (61000 - 32768)) >> 32)));
	e.udp.dest = htons(SLUICE_VXLAN_PORT);
	e.udp.len = htons(sizeof(e) - sizeof(e.eth) - sizeof(e.ip));
	e.vx_flags = htonl(0x08000000);
	e.vx_vni = htonl(1 << 8);
	e.inner = np_translated(&p, port);
	assert_memory_equal(o, &e, sizeof(e));
	assert_int_equal(ip_checksum(&o->ip, sizeof(o->ip)), 0);
	assert_int_equal(ip_checksum(&o->inner.ip, sizeof(o->inner.ip)), 0);
	assert_int_equal(tcp_checksum(&o->inner), 0);
	assert_int_equal(counter(SLUICE_XDP_TX, SLUICE_DIR_INGRESS), tx + 1);
	assert_int_equal(counter(SLUICE_LB_EXT_TRANSLATED, SLUICE_DIR_INGRESS), tr + 1);
	assert_int_equal(counter(SLUICE_LB_SNAT, SLUICE_DIR_INGRESS), snat + 1);
	np_state_is_tc_s(47500, port);
	/* The next segment, once through tc (XDP detached, say) and once
	 * through XDP: the same flow, the same inner bytes; the outer
	 * headers differ only in the IP id and the UDP source port (tc
	 * hashes with the skb's hash). */
	p.tcp.syn = 0;
	p.tcp.ack = 1;
	fill_tcp_checksum(&p);
	t = run_node(HOOK_NETDEV, &p, 0, NULL);
	assert_int_equal(t.retval, TC_ACT_REDIRECT);
	r = run_xdp(&p, sizeof(p));
	assert_int_equal(r.retval, XDP_TX);
	assert_int_equal(t.out_len, r.out_len);
	e.inner = np_translated(&p, port);
	assert_memory_equal(&((struct vxpkt *)t.out)->inner, &e.inner, sizeof(e.inner));
	assert_memory_equal(&((struct vxpkt *)r.out)->inner, &e.inner, sizeof(e.inner));
	assert_memory_equal(t.out, r.out, offsetof(struct vxpkt, ip.id));
	assert_memory_equal(t.out + offsetof(struct vxpkt, ip.frag_off),
			    r.out + offsetof(struct vxpkt, ip.frag_off),
			    offsetof(struct vxpkt, ip.check) - offsetof(struct vxpkt, ip.frag_off));
	assert_memory_equal(t.out + offsetof(struct vxpkt, udp.dest),
			    r.out + offsetof(struct vxpkt, udp.dest),
			    sizeof(struct vxpkt) - offsetof(struct vxpkt, udp.dest));
	assert_int_equal(counter(SLUICE_XDP_TX, SLUICE_DIR_INGRESS), tx + 2);
	np_state_is_tc_s(47500, port);
	/* The backend's reply, tunnelled by node 2: un-SNATed at XDP, out of
	 * the tunnel and to the client from the NodePort, byte for byte (tc
	 * would leave it to the vxlan device, whose program does the same). */
	{
		__u64 back = counter(SLUICE_LB_SNAT_REVERSE, SLUICE_DIR_INGRESS);
		struct vxpkt v = make_vxlan(8080, port);
		struct l4pkt want;

		v.inner = make_l4(BE_REMOTE, NODE_IP, IPPROTO_TCP, 8080, port);
		v.inner.tcp.ack = 1;
		fill_tcp_checksum(&v.inner);
		want = v.inner;
		want.ip.saddr = ip4(NODE_IP);
		want.ip.daddr = ip4(EXT_CLIENT);
		want.ip.ttl--;
		want.ip.check = 0;
		want.ip.check = ip_checksum(&want.ip, sizeof(want.ip));
		want.tcp.source = htons(NODEPORT);
		want.tcp.dest = htons(47500);
		fill_tcp_checksum(&want);
		mac_parse(EXT_CLIENT_MAC, want.eth.h_dest);
		uplink_mac(want.eth.h_source);
		/* From a MAC that is not node 2's: left to tc, untouched. */
		v.eth.h_source[5] ^= 0x40;
		xdp_falls_through(&v, sizeof(v), SLUICE_XDP_FT_ORIGIN);
		v.eth.h_source[5] ^= 0x40;
		r = run_xdp(&v, sizeof(v));
		assert_int_equal(r.retval, XDP_TX);
		assert_int_equal(r.out_len, sizeof(want));
		assert_memory_equal(r.out, &want, sizeof(want));
		assert_int_equal(counter(SLUICE_LB_SNAT_REVERSE, SLUICE_DIR_INGRESS), back + 1);
		assert_true(lb_ct(EXT_CLIENT, 47500, BE_REMOTE, 8080, IPPROTO_TCP).flags &
			    SLUICE_CT_F_REPLY_SEEN);
		/* Another pod's datagram in the tunnel is no reply: not ours. */
		v = make_vxlan(8080, 46000);
		r = run_xdp(&v, sizeof(v));
		assert_int_equal(r.retval, XDP_PASS);
		assert_memory_equal(r.out, &v, sizeof(v));
	}
}

/* Native routing: the same at XDP, the next hop's MACs instead of a
 * tunnel, byte for byte; tc and XDP make the very same frame of the
 * flow's next segment; node 2's reply is un-SNATed at XDP too and routed
 * back to the client from the NodePort, as tc does it. */
static void test_xdp_np_remote_native_byte_for_byte(void **state)
{
	__u64 tx = counter(SLUICE_XDP_TX, SLUICE_DIR_INGRESS);
	__u64 back = counter(SLUICE_LB_SNAT_REVERSE, SLUICE_DIR_INGRESS);
	__u64 ft_reply = xdp_ft(SLUICE_XDP_FT_REPLY);
	struct l4pkt p = from_outside(NODE_IP, 47600, NODEPORT), e, reply, *o;
	__u32 remote = 6;
	__u16 port;
	struct run r, t;

	(void)state;
	np_put(NODE_IP, NODEPORT, SLUICE_LB_SCOPE_EXT, SLUICE_LB_F_NODEPORT, RN_NP, &remote, 1);
	r = run_xdp(&p, sizeof(p));
	o = (struct l4pkt *)r.out;
	assert_int_equal(r.retval, XDP_TX);
	assert_int_equal(r.out_len, sizeof(p));
	port = ntohs(o->tcp.source);
	assert_in_range(port, SLUICE_NAT_PORTS_DEFAULT_MIN, SLUICE_NAT_PORTS_DEFAULT_MAX);
	e = np_translated(&p, port);
	mac_parse(NODE2_MAC, e.eth.h_dest); /* 10.202.0.0/24 via node 2 */
	uplink_mac(e.eth.h_source);
	assert_memory_equal(o, &e, sizeof(e));
	assert_int_equal(ip_checksum(&o->ip, sizeof(o->ip)), 0);
	assert_int_equal(tcp_checksum(o), 0);
	assert_int_equal(counter(SLUICE_XDP_TX, SLUICE_DIR_INGRESS), tx + 1);
	np_state_is_tc_s(47600, port);
	p.tcp.syn = 0;
	p.tcp.ack = 1;
	fill_tcp_checksum(&p);
	t = run_node(HOOK_NETDEV, &p, 0, NULL);
	r = run_xdp(&p, sizeof(p));
	assert_int_equal(t.retval, TC_ACT_REDIRECT);
	assert_int_equal(r.retval, XDP_TX);
	e = np_translated(&p, port);
	mac_parse(NODE2_MAC, e.eth.h_dest);
	uplink_mac(e.eth.h_source);
	assert_memory_equal(t.out, &e, sizeof(e));
	assert_memory_equal(r.out, &e, sizeof(e));
	/* The backend's reply from node 2, at XDP: the client and the
	 * NodePort back, routed out to the client's MAC, byte for byte; tc
	 * makes the very same frame of the next one (the same state). */
	reply = from_node2(BE_REMOTE, NODE_IP, 8080, port);
	reply.tcp.ack = 1;
	fill_tcp_checksum(&reply);
	r = run_xdp(&reply, sizeof(reply));
	assert_int_equal(r.retval, XDP_TX);
	e = reply;
	e.ip.saddr = ip4(NODE_IP);
	e.ip.daddr = ip4(EXT_CLIENT);
	e.ip.ttl--;
	e.ip.check = 0;
	e.ip.check = ip_checksum(&e.ip, sizeof(e.ip));
	e.tcp.source = htons(NODEPORT);
	e.tcp.dest = htons(47600);
	fill_tcp_checksum(&e);
	mac_parse(EXT_CLIENT_MAC, e.eth.h_dest);
	uplink_mac(e.eth.h_source);
	assert_memory_equal(r.out, &e, sizeof(e));
	assert_int_equal(counter(SLUICE_LB_SNAT_REVERSE, SLUICE_DIR_INGRESS), back + 1);
	assert_int_equal(counter(SLUICE_XDP_TX, SLUICE_DIR_INGRESS), tx + 3);
	assert_true(lb_ct(EXT_CLIENT, 47600, BE_REMOTE, 8080, IPPROTO_TCP).flags &
		    SLUICE_CT_F_REPLY_SEEN);
	t = run_node(HOOK_NETDEV, &reply, 0, NULL);
	assert_int_equal(t.retval, TC_ACT_REDIRECT);
	assert_memory_equal(t.out, &e, sizeof(e));
	assert_int_equal(counter(SLUICE_LB_SNAT_REVERSE, SLUICE_DIR_INGRESS), back + 2);
	/* Forged as the backend, from a MAC that is not node 2's: left to
	 * tc, which drops it. */
	reply.eth.h_source[5] ^= 0x40;
	xdp_falls_through(&reply, sizeof(reply), SLUICE_XDP_FT_ORIGIN);
	assert_int_equal(run_node(HOOK_NETDEV, &reply, 0, NULL).retval, TC_ACT_SHOT);
	/* Once the flow is no longer tracked, its pair answers nothing: not
	 * a Service packet for XDP either. */
	{
		struct sluice_ct_key k = tuple(EXT_CLIENT, 47600, BE_REMOTE, 8080, IPPROTO_TCP);
		__u64 pass = counter(SLUICE_XDP_PASS, SLUICE_DIR_INGRESS);

		ct_age(&k);
		reply = from_node2(BE_REMOTE, NODE_IP, 8080, port);
		reply.tcp.ack = 1;
		fill_tcp_checksum(&reply);
		r = run_xdp(&reply, sizeof(reply));
		assert_int_equal(r.retval, XDP_PASS);
		assert_memory_equal(r.out, &reply, sizeof(reply));
		assert_int_equal(counter(SLUICE_XDP_PASS, SLUICE_DIR_INGRESS), pass + 1);
		assert_int_equal(xdp_ft(SLUICE_XDP_FT_REPLY), ft_reply);
	}
}

/* p through XDP: left to tc untouched (XDP_PASS, the same bytes), counted
 * once as xdp-pass and once for cause; nothing sent. */
static void xdp_falls_through(const void *p, __u32 len, enum sluice_xdp_ft cause)
{
	__u64 ft = xdp_ft(cause), pass = counter(SLUICE_XDP_PASS, SLUICE_DIR_INGRESS);
	__u64 tx = counter(SLUICE_XDP_TX, SLUICE_DIR_INGRESS);
	struct run r = run_xdp(p, len);

	assert_int_equal(r.retval, XDP_PASS);
	assert_int_equal(r.out_len, len);
	assert_memory_equal(r.out, p, len);
	assert_int_equal(xdp_ft(cause), ft + 1);
	assert_int_equal(counter(SLUICE_XDP_PASS, SLUICE_DIR_INGRESS), pass + 1);
	assert_int_equal(counter(SLUICE_XDP_TX, SLUICE_DIR_INGRESS), tx);
}

/* The client-side entry k holds backend id, chosen at XDP for a packet it
 * left to tc (pending); then forgotten, for the next case to choose anew. */
static void pending_then_forget(const struct sluice_ct_key *k, __u32 id)
{
	struct sluice_ct_value v;

	assert_int_equal(bpf_map_lookup_elem(datapath_ct_map_fd(dp), k, &v), 0);
	assert_int_equal(v.flags, SLUICE_CT_F_LB_FRONTEND | SLUICE_CT_F_LB_PENDING);
	assert_int_equal(v.pad, id);
	assert_int_equal(bpf_map_delete_elem(datapath_ct_map_fd(dp), k), 0);
}

/* Every cause of a fall-through to tc, each counted; nothing written for
 * a packet left before the backend is chosen, the choice marked pending
 * for one left after it (tc takes it as its own). */
static void test_xdp_np_fall_through_causes(void **state)
{
	struct l4pkt p = from_outside(NODE_IP, 47700, NODEPORT), q;
	__u32 remote = 6, local = 5, far = 7, gone = 8;
	unsigned char opt[sizeof(p) + 4];
	struct sluice_ct_key k;
	struct sluice_ct_value v;

	(void)state;
	/* The backend is a pod here: tc delivers it (bpf_redirect_peer). */
	np_put(NODE_IP, NODEPORT, SLUICE_LB_SCOPE_EXT, SLUICE_LB_F_NODEPORT, RN_NP, &local, 1);
	xdp_falls_through(&p, sizeof(p), SLUICE_XDP_FT_LOCAL);
	/* The choice is written for tc to take as its own (pending), and tc
	 * takes it: one random choice per flow, whichever hook carries it. */
	v = lb_ct(EXT_CLIENT, 47700, NODE_IP, NODEPORT, IPPROTO_TCP);
	assert_int_equal(v.flags, SLUICE_CT_F_LB_FRONTEND | SLUICE_CT_F_LB_PENDING);
	assert_int_equal(v.pad, local);
	assert_int_equal(run_node(HOOK_NETDEV, &p, 0, NULL).retval, TC_ACT_REDIRECT);
	v = lb_ct(EXT_CLIENT, 47700, NODE_IP, NODEPORT, IPPROTO_TCP);
	assert_int_equal(v.flags, SLUICE_CT_F_LB_FRONTEND);
	assert_int_equal(v.pad, local);
	assert_true(lb_ct(EXT_CLIENT, 47700, IP_B, 8080, IPPROTO_TCP).flags & SLUICE_CT_F_LB_BACKEND);
	/* externalTrafficPolicy Local. */
	np_put(NODE_IP, NODEPORT, SLUICE_LB_SCOPE_EXT,
	       SLUICE_LB_F_NODEPORT | SLUICE_LB_F_EXT_LOCAL, RN_NP, &remote, 1);
	p = from_outside(NODE_IP, 47701, NODEPORT);
	xdp_falls_through(&p, sizeof(p), SLUICE_XDP_FT_ETP_LOCAL);
	/* No endpoint: tc refuses it. */
	np_put(NODE_IP, NODEPORT, SLUICE_LB_SCOPE_EXT, SLUICE_LB_F_NODEPORT, RN_NP, NULL, 0);
	xdp_falls_through(&p, sizeof(p), SLUICE_XDP_FT_NO_BACKEND);
	np_put(NODE_IP, NODEPORT, SLUICE_LB_SCOPE_EXT, SLUICE_LB_F_NODEPORT, RN_NP, &remote, 1);
	/* TTL 1: the stack's time exceeded. */
	q = p;
	q.ip.ttl = 1;
	q.ip.check = 0;
	q.ip.check = ip_checksum(&q.ip, sizeof(q.ip));
	xdp_falls_through(&q, sizeof(q), SLUICE_XDP_FT_TTL);
	/* A first fragment (MF): tc remembers its ports for the rest. */
	q = p;
	q.ip.frag_off = htons(0x2000);
	q.ip.check = 0;
	q.ip.check = ip_checksum(&q.ip, sizeof(q.ip));
	xdp_falls_through(&q, sizeof(q), SLUICE_XDP_FT_FRAGMENT);
	/* IP options (a NOP word): ports where the options end. */
	memcpy(opt, &p, sizeof(p.eth) + sizeof(p.ip));
	memset(opt + sizeof(p.eth) + sizeof(p.ip), 1, 4);
	memcpy(opt + sizeof(p.eth) + sizeof(p.ip) + 4, &p.tcp, sizeof(p) - sizeof(p.eth) - sizeof(p.ip));
	((struct iphdr *)(opt + sizeof(p.eth)))->ihl = 6;
	((struct iphdr *)(opt + sizeof(p.eth)))->tot_len = htons(ntohs(p.ip.tot_len) + 4);
	xdp_falls_through(opt, sizeof(opt), SLUICE_XDP_FT_OPTIONS);
	/* A source the tc path does not believe from outside: a local pod's. */
	q = make_l4(IP_A, NODE_IP, IPPROTO_TCP, 47702, NODEPORT);
	xdp_falls_through(&q, sizeof(q), SLUICE_XDP_FT_ORIGIN);
	assert_int_equal(run_node(HOOK_NETDEV, &q, 0, NULL).retval, TC_ACT_SHOT);
	/* None of those, all left before a backend is chosen, wrote one. */
	k = tuple(EXT_CLIENT, 47701, NODE_IP, NODEPORT, IPPROTO_TCP);
	assert_int_not_equal(bpf_map_lookup_elem(datapath_ct_map_fd(dp), &k, &v), 0);
	/* A backend no tunnel or route leads to (no node holds it). */
	lb_backend_put(gone, "192.0.2.77", 8080, IPPROTO_TCP);
	np_put(NODE_IP, NODEPORT, SLUICE_LB_SCOPE_EXT, SLUICE_LB_F_NODEPORT, RN_NP, &gone, 1);
	xdp_falls_through(&p, sizeof(p), SLUICE_XDP_FT_NO_ROUTE);
	pending_then_forget(&k, gone);
	/* A node whose MAC is not resolved (10.203.0.0/24 is node
	 * 10.200.0.14's, which has no neighbour entry). */
	ipcache_put_full("10.203.0.0", 24, SLUICE_ID_WORLD, "10.200.0.14", 0);
	assert_int_equal(system("ip route replace 10.203.0.0/24 via 10.200.0.14"), 0);
	lb_backend_put(far, "10.203.0.9", 8080, IPPROTO_TCP);
	np_put(NODE_IP, NODEPORT, SLUICE_LB_SCOPE_EXT, SLUICE_LB_F_NODEPORT, RN_NP, &far, 1);
	xdp_falls_through(&p, sizeof(p), SLUICE_XDP_FT_NO_NEIGH);
	pending_then_forget(&k, far);
	/* A frame the uplink's MTU would not take with the outer headers
	 * (overlay; natively the 56 bytes fit IPv4's smallest MTU, 68). */
	np_put(NODE_IP, NODEPORT, SLUICE_LB_SCOPE_EXT, SLUICE_LB_F_NODEPORT, RN_NP, &remote, 1);
	if (group_opts->routing == SLUICE_ROUTING_OVERLAY) {
		assert_int_equal(system("ip link set sltest0 mtu 68"), 0);
		xdp_falls_through(&p, sizeof(p), SLUICE_XDP_FT_MTU);
		assert_int_equal(system("ip link set sltest0 mtu 1500"), 0);
		pending_then_forget(&k, remote);
	}
	/* The tuple tracked as a flow of another kind (not a frontend's). */
	memset(&v, 0, sizeof(v));
	{
		struct timespec now;

		clock_gettime(CLOCK_MONOTONIC, &now);
		v.last_seen = (__u64)now.tv_sec * 1000000000ull + (__u64)now.tv_nsec;
	}
	assert_int_equal(bpf_map_update_elem(datapath_ct_map_fd(dp), &k, &v, BPF_ANY), 0);
	xdp_falls_through(&p, sizeof(p), SLUICE_XDP_FT_TRACKED);
	bpf_map_delete_elem(datapath_ct_map_fd(dp), &k);
	/* A checksum a local sender left to offload (a veth peer's
	 * CHECKSUM_PARTIAL: the pseudo-header's sum only). */
	q = p;
	{
		__u32 sum = (q.ip.saddr & 0xffff) + (q.ip.saddr >> 16) + (q.ip.daddr & 0xffff) +
			    (q.ip.daddr >> 16) + htons(IPPROTO_TCP) +
			    htons((__u16)(ntohs(q.ip.tot_len) - sizeof(q.ip)));

		while (sum >> 16)
			sum = (sum & 0xffff) + (sum >> 16);
		q.tcp.check = (__u16)sum;
	}
	xdp_falls_through(&q, sizeof(q), SLUICE_XDP_FT_CSUM_PARTIAL);
	/* And once all is well: sent at XDP. */
	assert_int_equal(run_xdp(&p, sizeof(p)).retval, XDP_TX);
}

/* UDP: a client's datagram whose backend was just chosen starts its flow
 * anew on a backend-side entry another frontend's flow left (its rev-NAT
 * index, a fresh NAT pair), as the tc path does (ct_udp_restarts). */
static void np_put_udp(const __u32 *ids, __u16 n);

static void test_xdp_np_udp_restarts_other_frontends_entry(void **state)
{
	struct sluice_ct_key k = tuple(EXT_CLIENT, 47900, BE_REMOTE, 8080, IPPROTO_UDP);
	struct sluice_ct_value old = { .flags = SLUICE_CT_F_LB_BACKEND, .pad = RN_NP + 1 };
	struct l4pkt p = from_outside(NODE_IP, 47900, NODEPORT);
	__u32 remote = 9;
	struct timespec now;

	(void)state;
	lb_backend_put(remote, BE_REMOTE, 8080, IPPROTO_UDP);
	np_put_udp(&remote, 1);
	clock_gettime(CLOCK_MONOTONIC, &now);
	old.last_seen = (__u64)now.tv_sec * 1000000000ull + (__u64)now.tv_nsec;
	assert_int_equal(bpf_map_update_elem(datapath_ct_map_fd(dp), &k, &old, BPF_ANY), 0);
	/* A UDP datagram, no checksum (0). */
	p.ip.protocol = IPPROTO_UDP;
	p.ip.check = 0;
	p.ip.check = ip_checksum(&p.ip, sizeof(p.ip));
	memset((unsigned char *)&p.tcp + 4, 0, sizeof(p) - sizeof(p.eth) - sizeof(p.ip) - 4);
	((__be16 *)&p.tcp)[2] = htons((__u16)(sizeof(p) - sizeof(p.eth) - sizeof(p.ip)));
	assert_int_equal(run_xdp(&p, sizeof(p)).retval, XDP_TX);
	assert_int_equal(lb_ct(EXT_CLIENT, 47900, BE_REMOTE, 8080, IPPROTO_UDP).pad, RN_NP + 3);
}

/* An ICMP error about an external Service flow (quoting the NodePort's
 * packet to the client): tc's. Truncated and malformed frames to a
 * NodePort: never sent, never a fault, whatever their length. */
static void test_xdp_np_icmp_and_truncated(void **state)
{
	struct l4pkt p = from_outside(NODE_IP, 47800, NODEPORT), q, err;
	__u32 remote = 6;
	__u64 tx;

	(void)state;
	np_put(NODE_IP, NODEPORT, SLUICE_LB_SCOPE_EXT, SLUICE_LB_F_NODEPORT, RN_NP, &remote, 1);
	err = make_l4(ROUTER, NODE_IP, IPPROTO_ICMP, 0, 0);
	err.icmp.type = 3;
	err.icmp.code = 4;
	err.inner = ipv4_header(NODE_IP, EXT_CLIENT, IPPROTO_TCP, 60, 40);
	err.inner_ports[0] = htons(NODEPORT);
	err.inner_ports[1] = htons(47800);
	xdp_falls_through(&err, sizeof(err), SLUICE_XDP_FT_ICMP);
	/* The L4 header cut short (its ports there, the rest not). */
	q = p;
	q.ip.tot_len = htons(sizeof(q.ip) + 8);
	q.ip.check = 0;
	q.ip.check = ip_checksum(&q.ip, sizeof(q.ip));
	xdp_falls_through(&q, sizeof(q.eth) + sizeof(q.ip) + 8, SLUICE_XDP_FT_OTHER);
	tx = counter(SLUICE_XDP_TX, SLUICE_DIR_INGRESS);
	/* (a test run refuses less than an Ethernet header) */
	for (__u32 len = sizeof(p.eth); len < sizeof(p); len++) {
		struct run r = run_xdp(&p, len);

		assert_true(r.retval == XDP_PASS || r.retval == XDP_DROP);
	}
	assert_int_equal(counter(SLUICE_XDP_TX, SLUICE_DIR_INGRESS), tx);
	/* Whole, it goes. */
	assert_int_equal(run_xdp(&p, sizeof(p)).retval, XDP_TX);
}

/* ---- Services: hairpin, terminating backends, ICMP errors -------------- */

#define HAIRPIN "169.254.42.1"
#define RN_SELF 10	/* FRONTEND_EMPTY:80/TCP, made A's own Service */

/* A reaches its own Service: A is FRONTEND_EMPTY:80's one backend, on
 * 8080. Its SYN comes back into A from the hairpin address, its answer
 * goes back into A from the frontend; both byte for byte. */
static void test_lb_hairpin_byte_for_byte(void **state)
{
	__u64 hp = counter(SLUICE_LB_HAIRPIN, SLUICE_DIR_EGRESS);
	__u64 rev = counter(SLUICE_LB_REVERSE, SLUICE_DIR_EGRESS);
	struct l4pkt p = lb_from_a(FRONTEND_EMPTY, 46000, 80), e, reply;
	struct sluice_ct_value v;
	__u32 self = 5;
	struct run r;

	(void)state;
	lb_backend_put(self, IP_A, 8080, IPPROTO_TCP);
	lb_service_put(FRONTEND_EMPTY, 80, IPPROTO_TCP, RN_SELF, &self, 1);
	/* A isolated for ingress with no rule: a pod may reach itself, over
	 * a Service too (kube-proxy's hairpin arrives from the node). */
	set_endpoint(IP_A, SLUICE_EP_F_ISO_INGRESS, ID_A);
	r = run_prog(1, &p, sizeof(p));
	assert_int_equal(r.retval, TC_ACT_REDIRECT);
	assert_int_equal(r.out_len, sizeof(p));
	e = lb_expect(&p, HAIRPIN, 46000, IP_A, 8080, mac_a_pod, mac_a_lxc);
	assert_memory_equal(r.out, &e, sizeof(e));
	assert_int_equal(tcp_checksum((struct l4pkt *)r.out), 0);
	assert_int_equal(ip_checksum(&((struct l4pkt *)r.out)->ip, sizeof(p.ip)), 0);
	assert_int_equal(counter(SLUICE_LB_HAIRPIN, SLUICE_DIR_EGRESS), hp + 1);
	v = lb_ct(IP_A, 46000, FRONTEND_EMPTY, 80, IPPROTO_TCP);
	assert_int_equal(v.flags, SLUICE_CT_F_LB_FRONTEND);
	assert_int_equal(v.pad, self);
	v = lb_ct(HAIRPIN, 46000, IP_A, 8080, IPPROTO_TCP);
	assert_true(v.flags & SLUICE_CT_F_LB_BACKEND);
	assert_int_equal(v.pad, RN_SELF);
	/* A's answer to the hairpin address: back into A, from the
	 * frontend. */
	reply = make_l4(IP_A, HAIRPIN, IPPROTO_TCP, 8080, 46000);
	memcpy(reply.eth.h_source, mac_a_pod, 6);
	memcpy(reply.eth.h_dest, mac_a_lxc, 6);
	reply.tcp.ack = 1;
	reply.tcp.ack_seq = htonl(0x12345679);
	fill_tcp_checksum(&reply);
	r = run_prog(1, &reply, sizeof(reply));
	assert_int_equal(r.retval, TC_ACT_REDIRECT);
	e = lb_expect(&reply, FRONTEND_EMPTY, 80, IP_A, 46000, mac_a_pod, mac_a_lxc);
	assert_memory_equal(r.out, &e, sizeof(e));
	assert_int_equal(tcp_checksum((struct l4pkt *)r.out), 0);
	assert_int_equal(counter(SLUICE_LB_REVERSE, SLUICE_DIR_EGRESS), rev + 1);
	/* The client's next segment: the same translation, no new choice. */
	p.tcp.syn = 0;
	p.tcp.ack = 1;
	fill_tcp_checksum(&p);
	r = run_prog(1, &p, sizeof(p));
	e = lb_expect(&p, HAIRPIN, 46000, IP_A, 8080, mac_a_pod, mac_a_lxc);
	assert_memory_equal(r.out, &e, sizeof(e));
	/* A packet of A's to the hairpin address that answers nothing is
	 * not turned into anything: it goes to the stack unchanged. */
	reply = make_l4(IP_A, HAIRPIN, IPPROTO_TCP, 8080, 46999);
	fill_tcp_checksum(&reply);
	r = run_prog(1, &reply, sizeof(reply));
	assert_int_equal(r.retval, TC_ACT_OK);
	assert_memory_equal(r.out, &reply, sizeof(reply));
	assert_int_equal(counter(SLUICE_LB_REVERSE, SLUICE_DIR_EGRESS), rev + 1);
}

/* The hairpin address from outside the pod is nobody's own: a packet from
 * it meets the pod's ingress policy as any other source does. */
static void test_lb_hairpin_source_from_outside_is_policed(void **state)
{
	__u64 drops = counter(SLUICE_DROP_POLICY, SLUICE_DIR_INGRESS);
	struct l4pkt p = from_node2(HAIRPIN, IP_A, 46000, 8080);

	(void)state;
	set_endpoint(IP_A, SLUICE_EP_F_ISO_INGRESS, ID_A);
	fill_tcp_checksum(&p);
	assert_int_equal(run_node(HOOK_NETDEV, &p, 0, NULL).retval, TC_ACT_SHOT);
	assert_int_equal(counter(SLUICE_DROP_POLICY, SLUICE_DIR_INGRESS), drops + 1);
	/* Through the stack (to_pod) too. */
	assert_int_equal(run_prog(0, &p, sizeof(p)).retval, TC_ACT_SHOT);
}

/* UDP hairpin: both directions, checksums right. */
static void test_lb_hairpin_udp(void **state)
{
	struct udppkt p = { 0 }, *o;
	__u32 self = 6;
	struct run r;

	(void)state;
	lb_backend_put(self, IP_A, 5353, IPPROTO_UDP);
	lb_service_put(FRONTEND, 53, IPPROTO_UDP, RN_DNS, &self, 1);
	memcpy(p.eth.h_source, mac_a_pod, 6);
	memcpy(p.eth.h_dest, mac_a_lxc, 6);
	p.eth.h_proto = htons(ETH_P_IP);
	p.ip = ipv4_header(IP_A, FRONTEND, IPPROTO_UDP, 64, sizeof(p) - sizeof(p.eth));
	p.udp.source = htons(40054);
	p.udp.dest = htons(53);
	p.udp.len = htons(sizeof(p.udp) + sizeof(p.data));
	memcpy(p.data, "who is there", sizeof(p.data));
	p.udp.check = l4_checksum(IPPROTO_UDP, p.ip.saddr, p.ip.daddr, &p.udp,
				  sizeof(p.udp) + sizeof(p.data));
	r = run_prog(1, &p, sizeof(p));
	o = (struct udppkt *)r.out;
	assert_int_equal(r.retval, TC_ACT_REDIRECT);
	assert_int_equal(o->ip.saddr, ip4(HAIRPIN));
	assert_int_equal(o->ip.daddr, ip4(IP_A));
	assert_int_equal(ntohs(o->udp.source), 40054);
	assert_int_equal(ntohs(o->udp.dest), 5353);
	assert_int_equal(ip_checksum(&o->ip, sizeof(o->ip)), 0);
	assert_int_equal(l4_checksum(IPPROTO_UDP, o->ip.saddr, o->ip.daddr, &o->udp,
				     sizeof(p.udp) + sizeof(p.data)), 0);
	/* The answer. */
	p.ip = ipv4_header(IP_A, HAIRPIN, IPPROTO_UDP, 64, sizeof(p) - sizeof(p.eth));
	p.udp.source = htons(5353);
	p.udp.dest = htons(40054);
	p.udp.check = 0;
	p.udp.check = l4_checksum(IPPROTO_UDP, p.ip.saddr, p.ip.daddr, &p.udp,
				  sizeof(p.udp) + sizeof(p.data));
	r = run_prog(1, &p, sizeof(p));
	o = (struct udppkt *)r.out;
	assert_int_equal(r.retval, TC_ACT_REDIRECT);
	assert_int_equal(o->ip.saddr, ip4(FRONTEND));
	assert_int_equal(o->ip.daddr, ip4(IP_A));
	assert_int_equal(ntohs(o->udp.source), 53);
	assert_int_equal(ntohs(o->udp.dest), 40054);
	assert_int_equal(ip_checksum(&o->ip, sizeof(o->ip)), 0);
	assert_int_equal(l4_checksum(IPPROTO_UDP, o->ip.saddr, o->ip.daddr, &o->udp,
				     sizeof(p.udp) + sizeof(p.data)), 0);
	assert_memory_equal(o->data, "who is there", sizeof(p.data));
}

/* Only a terminating backend (2, on 8081): new flows get it (fallback).
 * A ready one (1, on 8080) appears: new flows go to it alone, the flow on
 * the terminating one stays there until the backend is gone. */
static void test_lb_terminating_backend(void **state)
{
	__u64 term = counter(SLUICE_LB_TERMINATING, SLUICE_DIR_EGRESS);
	struct sluice_lb4_backend b = { .addr = ip4(IP_B), .port = htons(8081),
					.proto = IPPROTO_TCP,
					.flags = SLUICE_LB_BE_F_TERMINATING };
	__u32 ready = 1, terminating = 2;
	struct l4pkt p = lb_from_a(FRONTEND, 48000, 80);
	struct run r;

	(void)state;
	assert_int_equal(bpf_map_update_elem(datapath_lb_be_map_fd(dp), &terminating, &b, BPF_ANY), 0);
	lb_service_put(FRONTEND, 80, IPPROTO_TCP, RN_WEB, &terminating, 1);
	r = run_prog(1, &p, sizeof(p));
	assert_int_equal(r.retval, TC_ACT_REDIRECT);
	assert_int_equal(ntohs(((struct l4pkt *)r.out)->tcp.dest), 8081);
	assert_int_equal(counter(SLUICE_LB_TERMINATING, SLUICE_DIR_EGRESS), term + 1);
	lb_service_put(FRONTEND, 80, IPPROTO_TCP, RN_WEB, &ready, 1);
	for (__u16 sport = 48001; sport < 48021; sport++) {
		struct l4pkt n = lb_from_a(FRONTEND, sport, 80);

		r = run_prog(1, &n, sizeof(n));
		assert_int_equal(ntohs(((struct l4pkt *)r.out)->tcp.dest), 8080);
		/* The established flow, between new ones. */
		p.tcp.syn = 0;
		p.tcp.ack = 1;
		fill_tcp_checksum(&p);
		r = run_prog(1, &p, sizeof(p));
		assert_int_equal(r.retval, TC_ACT_REDIRECT);
		assert_int_equal(ntohs(((struct l4pkt *)r.out)->tcp.dest), 8081);
	}
	assert_int_equal(counter(SLUICE_LB_TERMINATING, SLUICE_DIR_EGRESS), term + 1);
	assert_int_equal(bpf_map_delete_elem(datapath_lb_be_map_fd(dp), &terminating), 0);
	r = run_prog(1, &p, sizeof(p));
	assert_int_equal(ntohs(((struct l4pkt *)r.out)->tcp.dest), 8080);
}

/* An ICMP error from src to dst quoting a whole TCP segment qsrc:qsport
 * -> qdst:qdport, every checksum right, TTL ttl; MACs dmac (02:..) only. */
struct tcp_err_pkt {
	struct ethhdr eth;
	struct iphdr ip;
	struct icmphdr icmp;
	struct iphdr inner;
	struct tcphdr tcp;
} __attribute__((packed));

static struct tcp_err_pkt lb_tcp_error(const char *src, const char *dst, __u8 ttl,
				       const char *qsrc, __u16 qsport, const char *qdst,
				       __u16 qdport)
{
	struct tcp_err_pkt e = { 0 };

	memset(e.eth.h_dest, 0x02, 6);
	e.eth.h_proto = htons(ETH_P_IP);
	e.ip = ipv4_header(src, dst, IPPROTO_ICMP, ttl, sizeof(e) - sizeof(e.eth));
	e.icmp.type = ICMP_DEST_UNREACH;
	e.icmp.code = ICMP_FRAG_NEEDED;
	e.icmp.un.frag.mtu = htons(1400);
	e.inner = ipv4_header(qsrc, qdst, IPPROTO_TCP, 63, 1500);
	e.tcp.source = htons(qsport);
	e.tcp.dest = htons(qdport);
	e.tcp.seq = htonl(0x12345678);
	e.tcp.ack = 1;
	e.tcp.doff = 5;
	e.tcp.window = htons(502);
	/* The segment was 1460 bytes of zeros: its checksum is the header's
	 * and the pseudo-header's alone. */
	e.tcp.check = l4_checksum(IPPROTO_TCP, e.inner.saddr, e.inner.daddr, &e.tcp, sizeof(e.tcp));
	e.icmp.checksum = ip_checksum(&e.icmp, sizeof(e) - offsetof(struct tcp_err_pkt, icmp));
	return e;
}

static void lb_assert_error_checksums(const struct tcp_err_pkt *o)
{
	assert_int_equal(ip_checksum(&o->ip, sizeof(o->ip)), 0);
	assert_int_equal(ip_checksum(&o->icmp, sizeof(*o) - offsetof(struct tcp_err_pkt, icmp)), 0);
	assert_int_equal(ip_checksum(&o->inner, sizeof(o->inner)), 0);
	assert_int_equal(l4_checksum(IPPROTO_TCP, o->inner.saddr, o->inner.daddr, &o->tcp,
				     sizeof(o->tcp)), 0);
}

/* A's flow to FRONTEND:80 went to B:8080 on this node; B answers it with
 * an ICMP error: A gets it from the frontend, quoting A -> frontend. */
static void test_lb_icmp_error_from_local_backend(void **state)
{
	__u64 n = counter(SLUICE_LB_ICMP_ERROR, SLUICE_DIR_EGRESS);
	struct l4pkt p = lb_from_a(FRONTEND, 49000, 80);
	struct tcp_err_pkt err, want;
	struct run r;

	(void)state;
	assert_int_equal(run_prog(1, &p, sizeof(p)).retval, TC_ACT_REDIRECT);
	err = lb_tcp_error(IP_B, IP_A, 64, IP_A, 49000, IP_B, 8080);
	memcpy(err.eth.h_source, mac_b_pod, 6);
	r = run_prog_on(1, &err, sizeof(err), ifindex_b);
	assert_int_equal(r.retval, TC_ACT_REDIRECT);
	assert_int_equal(r.out_len, sizeof(err));
	want = lb_tcp_error(FRONTEND, IP_A, 63, IP_A, 49000, FRONTEND, 80);
	memcpy(want.eth.h_dest, mac_a_pod, 6);
	memcpy(want.eth.h_source, mac_a_lxc, 6);
	assert_memory_equal(r.out, &want, sizeof(want));
	lb_assert_error_checksums((struct tcp_err_pkt *)r.out);
	assert_int_equal(counter(SLUICE_LB_ICMP_ERROR, SLUICE_DIR_EGRESS), n + 1);
	/* An error about a flow that was not translated stays as it is. */
	err = lb_tcp_error(IP_B, IP_A, 64, IP_A, 49001, IP_B, 8080);
	memcpy(err.eth.h_source, mac_b_pod, 6);
	r = run_prog_on(1, &err, sizeof(err), ifindex_b);
	assert_int_equal(((struct tcp_err_pkt *)r.out)->inner.daddr, ip4(IP_B));
	assert_int_equal(counter(SLUICE_LB_ICMP_ERROR, SLUICE_DIR_EGRESS), n + 1);
}

/* A's own error about a packet it got from the frontend (B's answer, on
 * FRONTEND:80): to B, quoting the packet as B sent it. */
static void test_lb_icmp_error_from_client_to_backend(void **state)
{
	__u64 n = counter(SLUICE_LB_ICMP_ERROR, SLUICE_DIR_EGRESS);
	struct l4pkt p = lb_from_a(FRONTEND, 49300, 80);
	struct tcp_err_pkt err, want;
	struct run r;

	(void)state;
	assert_int_equal(run_prog(1, &p, sizeof(p)).retval, TC_ACT_REDIRECT);
	err = lb_tcp_error(IP_A, FRONTEND, 64, FRONTEND, 80, IP_A, 49300);
	memcpy(err.eth.h_source, mac_a_pod, 6);
	r = run_prog(1, &err, sizeof(err));
	assert_int_equal(r.retval, TC_ACT_REDIRECT);
	want = lb_tcp_error(IP_A, IP_B, 63, IP_B, 8080, IP_A, 49300);
	memcpy(want.eth.h_dest, mac_b_pod, 6);
	memcpy(want.eth.h_source, mac_b_lxc, 6);
	assert_memory_equal(r.out, &want, sizeof(want));
	lb_assert_error_checksums((struct tcp_err_pkt *)r.out);
	assert_int_equal(counter(SLUICE_LB_ICMP_ERROR, SLUICE_DIR_EGRESS), n + 1);
	/* About a flow A never sent to the frontend: not translated. */
	err = lb_tcp_error(IP_A, FRONTEND, 64, FRONTEND, 80, IP_A, 49301);
	r = run_prog(1, &err, sizeof(err));
	assert_int_equal(((struct tcp_err_pkt *)r.out)->ip.daddr, ip4(FRONTEND));
	assert_int_equal(counter(SLUICE_LB_ICMP_ERROR, SLUICE_DIR_EGRESS), n + 1);
}

/* Through the host stack (to_pod): the node's own error about A's
 * translated flow (a router's source stays), and a reply of a translated
 * flow that the stack forwarded. */
static void test_lb_via_stack_reversed_in_to_pod(void **state)
{
	__u64 n = counter(SLUICE_LB_ICMP_ERROR, SLUICE_DIR_INGRESS);
	__u64 rev = counter(SLUICE_LB_REVERSE, SLUICE_DIR_INGRESS);
	struct l4pkt p = lb_from_a(FRONTEND, 49100, 80), reply, e;
	struct tcp_err_pkt err, want;
	__u32 remote = 4;
	struct run r;

	(void)state;
	lb_backend_put(remote, REMOTE_POD, 8080, IPPROTO_TCP);
	lb_service_put(FRONTEND, 80, IPPROTO_TCP, RN_WEB, &remote, 1);
	run_prog(1, &p, sizeof(p)); /* (tunnelled to node 2 in this mode) */
	assert_true(lb_ct(IP_A, 49100, REMOTE_POD, 8080, IPPROTO_TCP).flags & SLUICE_CT_F_LB_BACKEND);
	err = lb_tcp_error(ROUTER, IP_A, 60, IP_A, 49100, REMOTE_POD, 8080);
	r = run_prog(0, &err, sizeof(err));
	assert_int_equal(r.retval, TC_ACT_OK);
	want = lb_tcp_error(ROUTER, IP_A, 60, IP_A, 49100, FRONTEND, 80);
	assert_memory_equal(r.out, &want, sizeof(want));
	lb_assert_error_checksums((struct tcp_err_pkt *)r.out);
	assert_int_equal(counter(SLUICE_LB_ICMP_ERROR, SLUICE_DIR_INGRESS), n + 1);
	/* The backend's reply, routed by the stack into A. */
	reply = make_l4(REMOTE_POD, IP_A, IPPROTO_TCP, 8080, 49100);
	reply.tcp.ack = 1;
	fill_tcp_checksum(&reply);
	r = run_prog(0, &reply, sizeof(reply));
	assert_int_equal(r.retval, TC_ACT_OK);
	e = reply;
	e.ip.saddr = ip4(FRONTEND);
	e.ip.check = 0;
	e.ip.check = ip_checksum(&e.ip, sizeof(e.ip));
	e.tcp.source = htons(80);
	fill_tcp_checksum(&e);
	assert_memory_equal(r.out, &e, sizeof(e));
	assert_int_equal(counter(SLUICE_LB_REVERSE, SLUICE_DIR_INGRESS), rev + 1);
}

/* Native routing, the backend on node 2: node 2's error (from the backend
 * itself) about A's translated flow arrives on the uplink. */
static void test_lb_icmp_error_from_remote_backend(void **state)
{
	__u64 n = counter(SLUICE_LB_ICMP_ERROR, SLUICE_DIR_INGRESS);
	struct l4pkt p = lb_from_a(FRONTEND, 49200, 80);
	struct tcp_err_pkt err, want;
	__u32 remote = 4;
	struct run r;

	(void)state;
	lb_backend_put(remote, REMOTE_POD, 8080, IPPROTO_TCP);
	lb_service_put(FRONTEND, 80, IPPROTO_TCP, RN_WEB, &remote, 1);
	r = run_prog(1, &p, sizeof(p));
	assert_int_equal(((struct l4pkt *)r.out)->ip.daddr, ip4(REMOTE_POD));
	err = lb_tcp_error(REMOTE_POD, IP_A, 64, IP_A, 49200, REMOTE_POD, 8080);
	assert_int_equal(sscanf(NODE2_MAC, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &err.eth.h_source[0],
				&err.eth.h_source[1], &err.eth.h_source[2], &err.eth.h_source[3],
				&err.eth.h_source[4], &err.eth.h_source[5]), 6);
	r = run_hook(HOOK_NETDEV, &err, sizeof(err),
		     &(struct __sk_buff){ .ifindex = (__u32)ifindex_b });
	assert_int_equal(r.retval, TC_ACT_REDIRECT);
	want = lb_tcp_error(FRONTEND, IP_A, 63, IP_A, 49200, FRONTEND, 80);
	memcpy(want.eth.h_dest, mac_a_pod, 6);
	memcpy(want.eth.h_source, mac_a_lxc, 6);
	assert_memory_equal(r.out, &want, sizeof(want));
	lb_assert_error_checksums((struct tcp_err_pkt *)r.out);
	assert_int_equal(counter(SLUICE_LB_ICMP_ERROR, SLUICE_DIR_INGRESS), n + 1);
}

/* ---- Services: ICMP errors about outside clients' flows ------------------- */

static void set_mac(unsigned char *mac, const char *text)
{
	assert_int_equal(sscanf(text, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &mac[0], &mac[1], &mac[2],
				&mac[3], &mac[4], &mac[5]), 6);
}

/* Compares everything after the Ethernet header, and the destination MAC. */
static void assert_error_is(const struct run *r, const struct tcp_err_pkt *want,
			    const char *dst_mac)
{
	const struct tcp_err_pkt *o = (const void *)r->out;
	unsigned char mac[6];

	assert_int_equal(r->retval, TC_ACT_REDIRECT);
	assert_int_equal(r->out_len, sizeof(*want));
	assert_memory_equal(&o->ip, &want->ip, sizeof(*want) - sizeof(want->eth));
	set_mac(mac, dst_mac);
	assert_memory_equal(o->eth.h_dest, mac, 6);
	lb_assert_error_checksums(o);
}

/* eTP Cluster, the backend on node 2, the flow SNATed to NODE_IP:port: a
 * router's "fragmentation needed" about a segment the node sent, and the
 * backend's own error, both reach the outside client quoting the segment
 * as the client sent it (client -> NodePort), routed out of the uplink; the
 * backend's from the NodePort. Errors about the replies reach the backend
 * quoting what it sent. Checksums right throughout. A labelled pod's error
 * is forged; an error about a flow no longer tracked is left alone. */
static void test_np_icmp_error_about_snat_flow(void **state)
{
	__u64 n = counter(SLUICE_LB_EXT_ICMP_ERROR, SLUICE_DIR_INGRESS), forged;
	struct l4pkt p = from_outside(NODE_IP, 47600, NODEPORT);
	struct sluice_ct_key k = tuple(EXT_CLIENT, 47600, BE_REMOTE, 8080, IPPROTO_TCP);
	struct tcp_err_pkt err, want;
	__u32 remote = 6;
	__u16 port;
	struct run r;

	(void)state;
	np_put(NODE_IP, NODEPORT, SLUICE_LB_SCOPE_EXT, SLUICE_LB_F_NODEPORT, RN_NP, &remote, 1);
	r = run_node(HOOK_NETDEV, &p, 0, NULL);
	assert_int_equal(r.retval, TC_ACT_REDIRECT);
	port = ntohs(((struct l4pkt *)r.out)->tcp.source);
	/* A router between the node and node 2. */
	err = lb_tcp_error(ROUTER, NODE_IP, 60, NODE_IP, port, BE_REMOTE, 8080);
	set_mac(err.eth.h_source, EXT_CLIENT_MAC);
	r = run_hook(HOOK_NETDEV, &err, sizeof(err),
		     &(struct __sk_buff){ .ifindex = (__u32)ifindex_b });
	want = lb_tcp_error(ROUTER, EXT_CLIENT, 59, EXT_CLIENT, 47600, NODE_IP, NODEPORT);
	assert_error_is(&r, &want, EXT_CLIENT_MAC);
	assert_int_equal(counter(SLUICE_LB_EXT_ICMP_ERROR, SLUICE_DIR_INGRESS), n + 1);
	/* The backend itself, through node 2. */
	err = lb_tcp_error(BE_REMOTE, NODE_IP, 64, NODE_IP, port, BE_REMOTE, 8080);
	set_mac(err.eth.h_source, NODE2_MAC);
	r = run_hook(HOOK_NETDEV, &err, sizeof(err),
		     &(struct __sk_buff){ .ifindex = (__u32)ifindex_b });
	want = lb_tcp_error(NODE_IP, EXT_CLIENT, 63, EXT_CLIENT, 47600, NODE_IP, NODEPORT);
	assert_error_is(&r, &want, EXT_CLIENT_MAC);
	assert_int_equal(counter(SLUICE_LB_EXT_ICMP_ERROR, SLUICE_DIR_INGRESS), n + 2);
	/* Another pod of node 2 (labelled: no router) speaking for the flow:
	 * dropped as forged, never sent to the client. */
	forged = counter(SLUICE_DROP_ICMP_FORGED, SLUICE_DIR_INGRESS);
	err = lb_tcp_error(REMOTE_POD_LABELLED, NODE_IP, 64, NODE_IP, port, BE_REMOTE, 8080);
	set_mac(err.eth.h_source, NODE2_MAC);
	r = run_hook(HOOK_NETDEV, &err, sizeof(err),
		     &(struct __sk_buff){ .ifindex = (__u32)ifindex_b });
	assert_int_equal(r.retval, TC_ACT_SHOT);
	assert_int_equal(counter(SLUICE_DROP_ICMP_FORGED, SLUICE_DIR_INGRESS), forged + 1);
	assert_int_equal(counter(SLUICE_LB_EXT_ICMP_ERROR, SLUICE_DIR_INGRESS), n + 2);
	/* The other way: a router on the way to the client, about the
	 * NodePort's reply, reaches the backend through node 2 quoting what
	 * the backend sent (BE_REMOTE:8080 -> NODE_IP:port). */
	err = lb_tcp_error(ROUTER, NODE_IP, 60, NODE_IP, NODEPORT, EXT_CLIENT, 47600);
	set_mac(err.eth.h_source, EXT_CLIENT_MAC);
	r = run_hook(HOOK_NETDEV, &err, sizeof(err),
		     &(struct __sk_buff){ .ifindex = (__u32)ifindex_b });
	want = lb_tcp_error(ROUTER, BE_REMOTE, 59, BE_REMOTE, 8080, NODE_IP, port);
	assert_error_is(&r, &want, NODE2_MAC);
	/* The client's own error comes from the node's address, the peer
	 * the backend knows. */
	err = lb_tcp_error(EXT_CLIENT, NODE_IP, 64, NODE_IP, NODEPORT, EXT_CLIENT, 47600);
	set_mac(err.eth.h_source, EXT_CLIENT_MAC);
	r = run_hook(HOOK_NETDEV, &err, sizeof(err),
		     &(struct __sk_buff){ .ifindex = (__u32)ifindex_b });
	want = lb_tcp_error(NODE_IP, BE_REMOTE, 63, BE_REMOTE, 8080, NODE_IP, port);
	assert_error_is(&r, &want, NODE2_MAC);
	assert_int_equal(counter(SLUICE_LB_EXT_ICMP_ERROR, SLUICE_DIR_INGRESS), n + 4);
	/* The flow gone: not ours, nothing rewritten for the client. */
	ct_age(&k);
	err = lb_tcp_error(ROUTER, NODE_IP, 60, NODE_IP, port, BE_REMOTE, 8080);
	set_mac(err.eth.h_source, EXT_CLIENT_MAC);
	r = run_hook(HOOK_NETDEV, &err, sizeof(err),
		     &(struct __sk_buff){ .ifindex = (__u32)ifindex_b });
	assert_int_not_equal(((struct tcp_err_pkt *)r.out)->ip.daddr, ip4(EXT_CLIENT));
	assert_int_equal(counter(SLUICE_LB_EXT_ICMP_ERROR, SLUICE_DIR_INGRESS), n + 4);
}

/* The backend B on this node: a router's error about B's reply to the
 * outside client (quoting NodePort -> client) reaches B quoting the
 * segment as B sent it (B:8080 -> client). */
static void test_np_icmp_error_to_local_backend(void **state)
{
	__u64 n = counter(SLUICE_LB_EXT_ICMP_ERROR, SLUICE_DIR_INGRESS);
	struct l4pkt p = from_outside(NODE_IP, 47700, NODEPORT);
	struct tcp_err_pkt err, want;
	__u32 local = 5;
	struct run r;

	(void)state;
	np_put(NODE_IP, NODEPORT, SLUICE_LB_SCOPE_EXT, SLUICE_LB_F_NODEPORT, RN_NP, &local, 1);
	r = run_node(HOOK_NETDEV, &p, 0, NULL);
	assert_int_equal(((struct l4pkt *)r.out)->ip.daddr, ip4(IP_B));
	err = lb_tcp_error(ROUTER, NODE_IP, 60, NODE_IP, NODEPORT, EXT_CLIENT, 47700);
	set_mac(err.eth.h_source, EXT_CLIENT_MAC);
	r = run_hook(HOOK_NETDEV, &err, sizeof(err),
		     &(struct __sk_buff){ .ifindex = (__u32)ifindex_b });
	want = lb_tcp_error(ROUTER, IP_B, 59, IP_B, 8080, EXT_CLIENT, 47700);
	assert_int_equal(r.retval, TC_ACT_REDIRECT);
	assert_memory_equal(&((struct tcp_err_pkt *)r.out)->ip, &want.ip,
			    sizeof(want) - sizeof(want.eth));
	assert_memory_equal(((struct tcp_err_pkt *)r.out)->eth.h_dest, mac_b_pod, 6);
	lb_assert_error_checksums((struct tcp_err_pkt *)r.out);
	assert_int_equal(counter(SLUICE_LB_EXT_ICMP_ERROR, SLUICE_DIR_INGRESS), n + 1);
	/* About a port no flow of the client has: not ours. */
	err = lb_tcp_error(ROUTER, NODE_IP, 60, NODE_IP, NODEPORT, EXT_CLIENT, 47799);
	set_mac(err.eth.h_source, EXT_CLIENT_MAC);
	r = run_hook(HOOK_NETDEV, &err, sizeof(err),
		     &(struct __sk_buff){ .ifindex = (__u32)ifindex_b });
	assert_int_equal(((struct tcp_err_pkt *)r.out)->ip.daddr, ip4(NODE_IP));
	assert_int_equal(counter(SLUICE_LB_EXT_ICMP_ERROR, SLUICE_DIR_INGRESS), n + 1);
}

/* ---- Services: later IP fragments of outside clients' flows --------------- */

/* NODE_IP:NODEPORT/UDP in scope EXT, backends ids[0..n). */
static void np_put_udp(const __u32 *ids, __u16 n)
{
	struct sluice_lb4_key k = { .addr = ip4(NODE_IP), .port = htons(NODEPORT),
				    .proto = IPPROTO_UDP, .scope = SLUICE_LB_SCOPE_EXT };
	struct sluice_lb4_value v = { 0 };
	struct sluice_lb4_revnat r = { .addr = ip4(NODE_IP), .port = htons(NODEPORT) };
	__u32 rn = RN_NP + 3;

	assert_int_equal(bpf_map_update_elem(datapath_lb_rnat_map_fd(dp), &rn, &r, BPF_ANY), 0);
	for (__u16 i = 0; i < n; i++) {
		k.slot = (__u16)(i + 1);
		v.backend_id = ids[i];
		assert_int_equal(bpf_map_update_elem(datapath_lb_svc_map_fd(dp), &k, &v, BPF_ANY), 0);
	}
	k.slot = 0;
	v = (struct sluice_lb4_value){ .count = n, .rev_nat = (__u16)rn,
				       .flags = SLUICE_LB_F_NODEPORT };
	assert_int_equal(bpf_map_update_elem(datapath_lb_svc_map_fd(dp), &k, &v, BPF_ANY), 0);
}

/* A fragment as it arrives on the uplink from mac; the output. */
static struct run np_frag(struct pkt *p, const char *mac)
{
	set_mac(p->eth.h_source, mac);
	return run_hook(HOOK_NETDEV, p, sizeof(*p),
			&(struct __sk_buff){ .ifindex = (__u32)ifindex_b });
}

/* An outside client's UDP datagram to a NodePort, in two fragments: the
 * later one (no UDP header) follows its first to the backend, the local
 * one (destination only) and another node's (destination and SNAT
 * source), and the remote backend's fragmented reply comes back to the
 * client from the NodePort, fragment by fragment. A later fragment whose
 * first was never seen is not translated. */
static void test_np_later_fragments(void **state)
{
	__u64 tr = counter(SLUICE_LB_EXT_TRANSLATED, SLUICE_DIR_INGRESS);
	struct pkt first = make_frag(EXT_CLIENT, NODE_IP, 7300, 0, 1, 47800, NODEPORT);
	struct pkt later = make_frag(EXT_CLIENT, NODE_IP, 7300, 1480, 0, 0, 0);
	struct pkt rfirst, rlater;
	__u32 local = 7, remote = 8;
	struct udphdr u;
	struct pkt *o;
	__u16 port;
	struct run r;

	(void)state;
	lb_backend_put(local, IP_B, 8081, IPPROTO_UDP);
	lb_backend_put(remote, BE_REMOTE, 8081, IPPROTO_UDP);
	np_put_udp(&local, 1);
	r = np_frag(&first, EXT_CLIENT_MAC);
	o = (struct pkt *)r.out;
	assert_int_equal(r.retval, TC_ACT_REDIRECT);
	assert_int_equal(o->ip.daddr, ip4(IP_B));
	memcpy(&u, o->payload, sizeof(u));
	assert_int_equal(ntohs(u.dest), 8081);
	r = np_frag(&later, EXT_CLIENT_MAC);
	o = (struct pkt *)r.out;
	assert_int_equal(r.retval, TC_ACT_REDIRECT);
	assert_int_equal(o->ip.saddr, ip4(EXT_CLIENT));
	assert_int_equal(o->ip.daddr, ip4(IP_B));
	assert_int_equal(ip_checksum(&o->ip, sizeof(o->ip)), 0);
	assert_memory_equal(o->payload, later.payload, sizeof(later.payload));
	assert_int_equal(counter(SLUICE_LB_EXT_TRANSLATED, SLUICE_DIR_INGRESS), tr + 2);

	/* Another node's backend: SNATed, the later fragment too. */
	np_put_udp(&remote, 1);
	first = make_frag(EXT_CLIENT, NODE_IP, 7301, 0, 1, 47801, NODEPORT);
	later = make_frag(EXT_CLIENT, NODE_IP, 7301, 1480, 0, 0, 0);
	r = np_frag(&first, EXT_CLIENT_MAC);
	o = (struct pkt *)r.out;
	assert_int_equal(r.retval, TC_ACT_REDIRECT);
	assert_int_equal(o->ip.saddr, ip4(NODE_IP));
	assert_int_equal(o->ip.daddr, ip4(BE_REMOTE));
	memcpy(&u, o->payload, sizeof(u));
	port = ntohs(u.source);
	assert_in_range(port, group_opts->nat_port_min ?: SLUICE_NAT_PORTS_DEFAULT_MIN,
			group_opts->nat_port_max ?: SLUICE_NAT_PORTS_DEFAULT_MAX);
	r = np_frag(&later, EXT_CLIENT_MAC);
	o = (struct pkt *)r.out;
	assert_int_equal(r.retval, TC_ACT_REDIRECT);
	assert_int_equal(o->ip.saddr, ip4(NODE_IP));
	assert_int_equal(o->ip.daddr, ip4(BE_REMOTE));
	assert_int_equal(ip_checksum(&o->ip, sizeof(o->ip)), 0);
	assert_memory_equal(o->payload, later.payload, sizeof(later.payload));

	/* The backend's reply in two fragments, through node 2. */
	rfirst = make_frag(BE_REMOTE, NODE_IP, 7400, 0, 1, 8081, port);
	rlater = make_frag(BE_REMOTE, NODE_IP, 7400, 1480, 0, 0, 0);
	r = np_frag(&rfirst, NODE2_MAC);
	o = (struct pkt *)r.out;
	assert_int_equal(r.retval, TC_ACT_REDIRECT);
	assert_int_equal(o->ip.saddr, ip4(NODE_IP));
	assert_int_equal(o->ip.daddr, ip4(EXT_CLIENT));
	memcpy(&u, o->payload, sizeof(u));
	assert_int_equal(ntohs(u.source), NODEPORT);
	assert_int_equal(ntohs(u.dest), 47801);
	r = np_frag(&rlater, NODE2_MAC);
	o = (struct pkt *)r.out;
	assert_int_equal(r.retval, TC_ACT_REDIRECT);
	assert_int_equal(o->ip.saddr, ip4(NODE_IP));
	assert_int_equal(o->ip.daddr, ip4(EXT_CLIENT));
	assert_int_equal(ip_checksum(&o->ip, sizeof(o->ip)), 0);
	assert_memory_equal(o->payload, rlater.payload, sizeof(rlater.payload));

	/* A later fragment whose first never came: left alone. */
	later = make_frag(EXT_CLIENT, NODE_IP, 7999, 1480, 0, 0, 0);
	r = np_frag(&later, EXT_CLIENT_MAC);
	assert_int_not_equal(r.retval, TC_ACT_REDIRECT);
	assert_int_equal(((struct pkt *)r.out)->ip.daddr, ip4(NODE_IP));
}

/* Overlay routing: a pod on node 2 reaching this node's NodePort comes
 * through the tunnel (native routing brings it plain on the uplink):
 * translated here as it would be there, to the local backend B. */
static void test_np_pod_of_other_node_through_tunnel(void **state)
{
	__u64 tr = counter(SLUICE_LB_EXT_TRANSLATED, SLUICE_DIR_INGRESS);
	struct l4pkt p = make_l4(REMOTE_POD, NODE_IP, IPPROTO_TCP, 47900, NODEPORT);
	struct sluice_ct_value v;
	__u32 local = 5;

	(void)state;
	np_put(NODE_IP, NODEPORT, SLUICE_LB_SCOPE_EXT, SLUICE_LB_F_NODEPORT, RN_NP, &local, 1);
	vxlan_send(NODE2, &p);
	assert_int_equal(counter_after(SLUICE_LB_EXT_TRANSLATED, SLUICE_DIR_INGRESS, tr), tr + 1);
	v = lb_ct(REMOTE_POD, 47900, NODE_IP, NODEPORT, IPPROTO_TCP);
	assert_int_equal(v.flags, SLUICE_CT_F_LB_FRONTEND);
	assert_int_equal(v.pad, 5);
	v = lb_ct(REMOTE_POD, 47900, IP_B, 8080, IPPROTO_TCP);
	assert_true(v.flags & SLUICE_CT_F_LB_BACKEND);
	assert_int_equal(v.pad, RN_NP);
}

/* ---- Services: the agent's programming of the maps (agent/lb.c) --------- */

static int lb_empty(void **state)
{
	int fds[] = { datapath_lb_svc_map_fd(dp), datapath_lb_be_map_fd(dp),
		      datapath_lb_rnat_map_fd(dp) };
	unsigned char key[64];

	nat_setup(state);
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		while (!bpf_map_get_next_key(fds[i], NULL, key))
			bpf_map_delete_elem(fds[i], key);
	return 0;
}

static struct sluice_lb4_value lb_slot(const char *fe, __u16 port, __u16 slot)
{
	struct sluice_lb4_key k = { .addr = ip4(fe), .port = htons(port), .proto = IPPROTO_TCP,
				    .slot = slot };
	struct sluice_lb4_value v;

	memset(&v, 0xff, sizeof(v));
	bpf_map_lookup_elem(datapath_lb_svc_map_fd(dp), &k, &v);
	return v;
}

static struct sluice_lb4_backend lb_be(__u32 id)
{
	struct sluice_lb4_backend b = { 0 };

	bpf_map_lookup_elem(datapath_lb_be_map_fd(dp), &id, &b);
	return b;
}

/* The Service maps are as v wants them and lb.c's shadow of them says so
 * too: a sync from the shadow and one from the maps (as a restarted agent
 * reads them) both write and delete nothing. A shadow missing a write
 * rewrites it; one missing a delete leaves the map's entry be, which the
 * read from the maps then finds. */
static void lb_settled_with(const struct svc_view *v, const struct lb_node *node,
			    const struct lb_hostport *hp, size_t nhp, struct lb_ids *ids)
{
	struct lb_ids fresh = { .next_backend = ids->next_backend,
				.next_rev_nat = ids->next_rev_nat };
	struct lb_stats st;
	char err[256];

	assert_non_null(ids->shadow);
	assert_int_equal(lb_sync_with(dp, v, node, hp, nhp, ids, &st, err, sizeof(err)), 0);
	assert_int_equal(st.written + st.deleted, 0);
	assert_int_equal(lb_sync_with(dp, v, node, hp, nhp, &fresh, &st, err, sizeof(err)), 0);
	assert_int_equal(st.written + st.deleted, 0);
	lb_ids_free(&fresh);
}

static void lb_settled(const struct svc_view *v, struct lb_ids *ids)
{
	lb_settled_with(v, NULL, NULL, 0, ids);
}

static void test_lb_sync_writes_only_changes(void **state)
{
	struct svc_frontend fes[2] = {
		{ .kind = SVC_FE_CLUSTER_IP, .ip = ntohl(ip4("10.96.0.20")), .port = 80,
		  .proto = IPPROTO_TCP },
		{ .kind = SVC_FE_EXTERNAL_IP, .ip = ntohl(ip4("10.96.0.21")), .port = 80,
		  .proto = IPPROTO_TCP },
	};
	struct svc_backend bes[3] = {
		{ .ip = ntohl(ip4(IP_B)), .port = 8080, .ready = 1, .serving = 1 },
		{ .ip = ntohl(ip4(IP_B)), .port = 8081, .ready = 1, .serving = 1 },
		{ .ip = ntohl(ip4(REMOTE_POD)), .port = 8080, .serving = 1, .terminating = 1 },
	};
	struct svc_view_port port = { .backends = bes, .nbackends = 3 };
	struct svc_view_service vs = { .ns = "x", .name = "web", .frontends = fes, .nfrontends = 2,
				       .ports = &port, .nports = 1 };
	struct svc_view v = { .v = &vs, .n = 1 };
	struct lb_ids ids = { 0 };
	struct lb_stats st;
	struct sluice_lb4_value s0;
	struct l4pkt p;
	struct run r;
	char err[256];
	__u32 id1;

	(void)state;
	assert_int_equal(lb_sync(dp, &v, NULL, &ids, &st, err, sizeof(err)), 0);
	/* The 2 ready backends (the terminating one takes no new flow and
	 * no flow names it yet), 3 rev-NAT entries (the externalIP has an
	 * INT and an EXT entry), per entry 2 slots and slot 0. */
	assert_int_equal(st.written, 2 + 3 + 3 * 3);
	assert_int_equal(st.deleted, 0);
	assert_int_equal(st.frontends, 2);
	assert_int_equal(st.backends, 2);
	s0 = lb_slot("10.96.0.20", 80, 0);
	assert_int_equal(s0.count, 2);
	assert_true(s0.rev_nat >= 1);
	id1 = lb_slot("10.96.0.20", 80, 1).backend_id;
	assert_int_equal(lb_be(id1).addr, ip4(IP_B));
	assert_int_equal(ntohs(lb_be(id1).port), 8080);
	assert_int_equal(lb_slot("10.96.0.21", 80, 1).backend_id, id1);
	assert_int_equal(lb_slot("10.96.0.20", 80, 3).count, 0xffff); /* no slot 3 */
	/* The datapath takes it: A's packet to the externalIP reaches B. */
	p = lb_from_a("10.96.0.21", 46000, 80);
	r = run_prog(1, &p, sizeof(p));
	assert_int_equal(r.retval, TC_ACT_REDIRECT);
	assert_int_equal(((struct l4pkt *)r.out)->ip.daddr, ip4(IP_B));
	/* The same view again: nothing written. */
	assert_int_equal(lb_sync(dp, &v, NULL, &ids, &st, err, sizeof(err)), 0);
	assert_int_equal(st.written, 0);
	assert_int_equal(st.deleted, 0);
	/* B:8081 goes: slot 0 of each entry rewritten (count 1), slot 2 of
	 * each and the backend deleted; slot 1 untouched. */
	bes[1] = bes[2];
	port.nbackends = 2;
	assert_int_equal(lb_sync(dp, &v, NULL, &ids, &st, err, sizeof(err)), 0);
	assert_int_equal(st.written, 3);
	assert_int_equal(st.deleted, 4);
	lb_settled(&v, &ids);
	assert_int_equal(lb_slot("10.96.0.20", 80, 0).count, 1);
	assert_int_equal(lb_slot("10.96.0.20", 80, 0).rev_nat, s0.rev_nat);
	assert_int_equal(lb_slot("10.96.0.20", 80, 1).backend_id, id1);
	assert_int_equal(lb_slot("10.96.0.20", 80, 2).count, 0xffff);
	/* No ready endpoint left: the serving, terminating one takes new
	 * flows (kube-proxy's fallback). */
	bes[0].ready = 0;
	assert_int_equal(lb_sync(dp, &v, NULL, &ids, &st, err, sizeof(err)), 0);
	lb_settled(&v, &ids);
	assert_int_equal(lb_slot("10.96.0.20", 80, 0).count, 1);
	assert_int_equal(lb_be(lb_slot("10.96.0.20", 80, 1).backend_id).addr, ip4(REMOTE_POD));
	/* A Service kube-proxy would not handle (status set): gone, and
	 * with it every entry. */
	vs.status = "headless";
	assert_int_equal(lb_sync(dp, &v, NULL, &ids, &st, err, sizeof(err)), 0);
	assert_int_equal(map_count(datapath_lb_svc_map_fd(dp)), 0);
	assert_int_equal(map_count(datapath_lb_be_map_fd(dp)), 0);
	assert_int_equal(map_count(datapath_lb_rnat_map_fd(dp)), 0);
	lb_settled(&v, &ids);
	/* Back: new ids, never the old ones (flows may still name them). */
	vs.status = NULL;
	bes[0].ready = 1;
	assert_int_equal(lb_sync(dp, &v, NULL, &ids, &st, err, sizeof(err)), 0);
	assert_true(lb_slot("10.96.0.20", 80, 1).backend_id > id1);
	lb_settled(&v, &ids);
	assert_int_equal(lb_sync(dp, NULL, NULL, &ids, &st, err, sizeof(err)), 0);
	assert_int_equal(map_count(datapath_lb_svc_map_fd(dp)), 0);
	lb_settled(NULL, &ids);
	lb_ids_free(&ids);
}

static struct sluice_lb4_value lb_slot_in(const char *fe, __u16 port, __u8 scope, __u16 slot)
{
	struct sluice_lb4_key k = { .addr = ip4(fe), .port = htons(port), .proto = IPPROTO_TCP,
				    .scope = scope, .slot = slot };
	struct sluice_lb4_value v;

	memset(&v, 0xff, sizeof(v));
	bpf_map_lookup_elem(datapath_lb_svc_map_fd(dp), &k, &v);
	return v;
}

/* The agent's entries per scope: a clusterIP INT only (iTP Local: local
 * backends), an externalIP INT with every backend and EXT (eTP Local:
 * local only), a NodePort on the node's address in both, flags to match;
 * a backend is local by nodeName or by this node's pod CIDR. */
static void test_lb_sync_scopes_and_policies(void **state)
{
	struct svc_service svc = { .etp_local = true, .itp_local = true };
	struct svc_frontend fes[3] = {
		{ .kind = SVC_FE_CLUSTER_IP, .ip = ntohl(ip4("10.96.0.30")), .port = 80,
		  .proto = IPPROTO_TCP },
		{ .kind = SVC_FE_EXTERNAL_IP, .ip = ntohl(ip4("10.96.0.31")), .port = 80,
		  .proto = IPPROTO_TCP },
		{ .kind = SVC_FE_NODE_PORT, .port = 30080, .proto = IPPROTO_TCP },
	};
	struct svc_backend bes[3] = {
		{ .ip = ntohl(ip4(IP_B)), .port = 8080, .ready = 1, .serving = 1 }, /* pod CIDR */
		{ .ip = ntohl(ip4(REMOTE_POD)), .port = 8080, .ready = 1, .serving = 1 },
		{ .ip = ntohl(ip4("10.88.9.9")), .port = 8080, .ready = 1, .serving = 1,
		  .local = 1 }, /* by nodeName */
	};
	struct svc_view_port port = { .backends = bes, .nbackends = 3 };
	struct svc_view_service vs = { .ns = "x", .name = "np", .svc = &svc, .frontends = fes,
				       .nfrontends = 3, .ports = &port, .nports = 1 };
	struct svc_view v = { .v = &vs, .n = 1 };
	struct lb_node node = { .node_ip = ntohl(ip4(NODE_IP)),
				.pod_cidr = { ntohl(ip4("10.77.0.0")), 24 } };
	struct lb_ids ids = { 0 };
	struct sluice_lb4_value s0;
	struct lb_stats st;
	char err[256];

	(void)state;
	assert_int_equal(lb_sync(dp, &v, &node, &ids, &st, err, sizeof(err)), 0);
	assert_int_equal(st.frontends, 3);
	assert_int_equal(st.ext_entries, 2);
	/* clusterIP: INT, local only; no EXT entry. */
	s0 = lb_slot_in("10.96.0.30", 80, SLUICE_LB_SCOPE_INT, 0);
	assert_int_equal(s0.count, 2);
	assert_int_equal(s0.flags, SLUICE_LB_F_INT_LOCAL);
	assert_int_equal(lb_slot_in("10.96.0.30", 80, SLUICE_LB_SCOPE_EXT, 0).count, 0xffff);
	for (__u16 i = 1; i <= 2; i++)
		assert_int_equal(lb_be(lb_slot_in("10.96.0.30", 80, SLUICE_LB_SCOPE_INT, i).backend_id)
					 .flags, SLUICE_LB_BE_F_LOCAL);
	/* externalIP: INT every backend, EXT local only, eTP Local. */
	s0 = lb_slot_in("10.96.0.31", 80, SLUICE_LB_SCOPE_INT, 0);
	assert_int_equal(s0.count, 3);
	assert_int_equal(s0.flags, 0);
	s0 = lb_slot_in("10.96.0.31", 80, SLUICE_LB_SCOPE_EXT, 0);
	assert_int_equal(s0.count, 2);
	assert_int_equal(s0.flags, SLUICE_LB_F_EXT_LOCAL);
	/* NodePort: the node's address, both scopes. */
	s0 = lb_slot_in(NODE_IP, 30080, SLUICE_LB_SCOPE_INT, 0);
	assert_int_equal(s0.count, 3);
	assert_int_equal(s0.flags, SLUICE_LB_F_NODEPORT);
	s0 = lb_slot_in(NODE_IP, 30080, SLUICE_LB_SCOPE_EXT, 0);
	assert_int_equal(s0.count, 2);
	assert_int_equal(s0.flags, SLUICE_LB_F_NODEPORT | SLUICE_LB_F_EXT_LOCAL);
	/* Each EXT entry has its own rev-NAT index, naming the same frontend. */
	assert_int_not_equal(s0.rev_nat, lb_slot_in(NODE_IP, 30080, SLUICE_LB_SCOPE_INT, 0).rev_nat);
	/* Cluster policies: every backend everywhere, no Local flag. */
	svc.etp_local = svc.itp_local = false;
	assert_int_equal(lb_sync(dp, &v, &node, &ids, &st, err, sizeof(err)), 0);
	assert_int_equal(lb_slot_in("10.96.0.30", 80, SLUICE_LB_SCOPE_INT, 0).count, 3);
	assert_int_equal(lb_slot_in("10.96.0.30", 80, SLUICE_LB_SCOPE_INT, 0).flags, 0);
	assert_int_equal(lb_slot_in(NODE_IP, 30080, SLUICE_LB_SCOPE_EXT, 0).count, 3);
	assert_int_equal(lb_slot_in(NODE_IP, 30080, SLUICE_LB_SCOPE_EXT, 0).flags,
			 SLUICE_LB_F_NODEPORT);
	/* eTP Local with no local backend: count 0 (no backend here). */
	svc.etp_local = true;
	bes[0].ip = ntohl(ip4("10.88.8.8"));
	bes[2].local = 0;
	assert_int_equal(lb_sync(dp, &v, &node, &ids, &st, err, sizeof(err)), 0);
	assert_int_equal(lb_slot_in(NODE_IP, 30080, SLUICE_LB_SCOPE_EXT, 0).count, 0);
	assert_int_equal(lb_slot_in(NODE_IP, 30080, SLUICE_LB_SCOPE_EXT, 1).count, 0xffff);
	/* Without the node's address: no NodePort entries. */
	node.node_ip = 0;
	assert_int_equal(lb_sync(dp, &v, &node, &ids, &st, err, sizeof(err)), 0);
	assert_int_equal(lb_slot_in(NODE_IP, 30080, SLUICE_LB_SCOPE_INT, 0).count, 0xffff);
	assert_int_equal(lb_slot_in(NODE_IP, 30080, SLUICE_LB_SCOPE_EXT, 0).count, 0xffff);
	assert_int_equal(lb_sync(dp, NULL, NULL, &ids, &st, err, sizeof(err)), 0);
	assert_int_equal(map_count(datapath_lb_svc_map_fd(dp)), 0);
}

/* A NodePort frontend is written as (this node's address, nodePort), scope
 * INT, flagged NODEPORT, when the view knows the node's address. */
static void test_lb_sync_nodeport(void **state)
{
	struct svc_frontend fes[2] = {
		{ .kind = SVC_FE_CLUSTER_IP, .ip = ntohl(ip4("10.96.0.20")), .port = 80,
		  .proto = IPPROTO_TCP },
		{ .kind = SVC_FE_NODE_PORT, .port = 30080, .proto = IPPROTO_TCP },
	};
	struct svc_backend bes[1] = {
		{ .ip = ntohl(ip4(IP_B)), .port = 8080, .ready = 1, .serving = 1 },
	};
	struct svc_view_port port = { .backends = bes, .nbackends = 1 };
	struct svc_view_service vs = { .ns = "x", .name = "web", .frontends = fes, .nfrontends = 2,
				       .ports = &port, .nports = 1 };
	struct svc_view v = { .v = &vs, .n = 1 };
	struct sluice_lb4_revnat rn = { 0 };
	struct lb_ids ids = { 0 };
	struct sluice_lb4_value s0;
	struct lb_node node = { .node_ip = ntohl(ip4(NODE_IP)) };
	struct lb_stats st;
	char err[256];
	__u32 idx;

	(void)state;
	/* Without the node's address: the ClusterIP only. */
	assert_int_equal(lb_sync(dp, &v, NULL, &ids, &st, err, sizeof(err)), 0);
	assert_int_equal(st.frontends, 1);
	assert_int_equal(lb_sync(dp, &v, &node, &ids, &st, err, sizeof(err)), 0);
	assert_int_equal(st.frontends, 2);
	s0 = lb_slot(NODE_IP, 30080, 0);
	assert_int_equal(s0.count, 1);
	assert_int_equal(s0.flags, SLUICE_LB_F_NODEPORT);
	assert_int_equal(lb_be(lb_slot(NODE_IP, 30080, 1).backend_id).addr, ip4(IP_B));
	assert_int_equal(lb_slot("10.96.0.20", 80, 0).flags, 0);
	idx = s0.rev_nat;
	assert_int_equal(bpf_map_lookup_elem(datapath_lb_rnat_map_fd(dp), &idx, &rn), 0);
	assert_int_equal(rn.addr, ip4(NODE_IP));
	assert_int_equal(ntohs(rn.port), 30080);
	/* The node's address unknown again: its NodePort entries go. */
	assert_int_equal(lb_sync(dp, &v, NULL, &ids, &st, err, sizeof(err)), 0);
	assert_int_equal(lb_slot(NODE_IP, 30080, 0).count, 0xffff);
	assert_int_equal(lb_sync(dp, NULL, NULL, &ids, &st, err, sizeof(err)), 0);
}

/* ---- Services: no backend, affinity, Maglev ----------------------------- */

/* A's SYN to a frontend without backend comes back as the frontend's
 * RST|ACK, to the byte: MACs swapped, frontend -> A, ports swapped, SEQ 0,
 * ACK = SEQ + 1 (SYN) + 16 (the segment's data), both checksums right. */
static void test_lb_reject_tcp_syn(void **state)
{
	__u64 rej = counter(SLUICE_LB_REJECT_TCP, SLUICE_DIR_EGRESS);
	__u64 none = counter(SLUICE_LB_NO_BACKEND, SLUICE_DIR_EGRESS);
	struct l4pkt p = lb_from_a(FRONTEND_EMPTY, 44100, 80);
	struct {
		struct ethhdr eth;
		struct iphdr ip;
		struct tcphdr tcp;
	} __attribute__((packed)) e = { 0 }, *o;
	struct run r;

	(void)state;
	r = run_prog(1, &p, sizeof(p));
	assert_int_equal(r.retval, TC_ACT_REDIRECT);
	assert_int_equal(r.out_len, sizeof(e));
	memcpy(e.eth.h_dest, mac_a_pod, 6);
	memcpy(e.eth.h_source, mac_a_lxc, 6);
	e.eth.h_proto = htons(ETH_P_IP);
	e.ip = ipv4_header(FRONTEND_EMPTY, IP_A, IPPROTO_TCP, 64, sizeof(e.ip) + sizeof(e.tcp));
	e.tcp.source = htons(80);
	e.tcp.dest = htons(44100);
	e.tcp.seq = 0;
	e.tcp.ack_seq = htonl(0x12345678 + 1 + 16);
	e.tcp.doff = 5;
	e.tcp.rst = 1;
	e.tcp.ack = 1;
	e.tcp.check = l4_checksum(IPPROTO_TCP, e.ip.saddr, e.ip.daddr, &e.tcp, sizeof(e.tcp));
	assert_memory_equal(r.out, &e, sizeof(e));
	/* And verified afresh on what came out. */
	o = (void *)r.out;
	assert_int_equal(ip_checksum(&o->ip, sizeof(o->ip)), 0);
	assert_int_equal(l4_checksum(IPPROTO_TCP, o->ip.saddr, o->ip.daddr, &o->tcp,
				     sizeof(o->tcp)), 0);
	assert_int_equal(counter(SLUICE_LB_REJECT_TCP, SLUICE_DIR_EGRESS), rej + 1);
	assert_int_equal(counter(SLUICE_LB_NO_BACKEND, SLUICE_DIR_EGRESS), none + 1);
	/* Nothing tracked: the refusal is no flow. */
	assert_int_equal(lb_ct(IP_A, 44100, FRONTEND_EMPTY, 80, IPPROTO_TCP).flags, 0xdead);
	/* A SYN carrying FIN counts one more. */
	p = lb_from_a(FRONTEND_EMPTY, 44101, 80);
	p.tcp.fin = 1;
	fill_tcp_checksum(&p);
	r = run_prog(1, &p, sizeof(p));
	assert_int_equal(r.retval, TC_ACT_REDIRECT);
	assert_int_equal(ntohl(((typeof(e) *)r.out)->tcp.ack_seq), 0x12345678 + 1 + 16 + 1);
}

/* Only a connection's first SYN is answered: anything else to a frontend
 * without backend (an ACK, a RST, a SYN|ACK a forger aims at a client) is
 * dropped, never forwarded to the frontend and never reflected. */
static void test_lb_no_backend_non_syn_dropped(void **state)
{
	__u64 drops = counter(SLUICE_DROP_LB_NO_BACKEND, SLUICE_DIR_EGRESS);
	__u64 rej = counter(SLUICE_LB_REJECT_TCP, SLUICE_DIR_EGRESS);
	static const int flags[][3] = { { 0, 1, 0 }, { 0, 0, 1 }, { 1, 1, 0 } }; /* syn ack rst */

	(void)state;
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		struct l4pkt p = lb_from_a(FRONTEND_EMPTY, (__u16)(44200 + i), 80);
		struct run r;

		p.tcp.syn = (__u16)flags[i][0];
		p.tcp.ack = (__u16)flags[i][1];
		p.tcp.rst = (__u16)flags[i][2];
		fill_tcp_checksum(&p);
		r = run_prog(1, &p, sizeof(p));
		assert_int_equal(r.retval, TC_ACT_SHOT);
	}
	assert_int_equal(counter(SLUICE_DROP_LB_NO_BACKEND, SLUICE_DIR_EGRESS), drops + 3);
	assert_int_equal(counter(SLUICE_LB_REJECT_TCP, SLUICE_DIR_EGRESS), rej);
}

/* A's UDP datagram to a frontend without backend comes back as ICMP port
 * unreachable from the frontend, quoting A's IP header and UDP header. */
static void test_lb_reject_udp(void **state)
{
	__u64 rej = counter(SLUICE_LB_REJECT_UDP, SLUICE_DIR_EGRESS);
	struct udppkt p = { 0 };
	struct {
		struct ethhdr eth;
		struct iphdr ip;
		struct icmphdr icmp;
		struct iphdr quoted;
		struct udphdr udp;
	} __attribute__((packed)) e = { 0 }, *o;
	struct run r;

	(void)state;
	lb_service_put(FRONTEND_EMPTY, 53, IPPROTO_UDP, 10, NULL, 0);
	memcpy(p.eth.h_source, mac_a_pod, 6);
	memcpy(p.eth.h_dest, mac_a_lxc, 6);
	p.eth.h_proto = htons(ETH_P_IP);
	p.ip = ipv4_header(IP_A, FRONTEND_EMPTY, IPPROTO_UDP, 64, sizeof(p) - sizeof(p.eth));
	p.ip.id = htons(0x4242);
	p.ip.check = 0;
	p.ip.check = ip_checksum(&p.ip, sizeof(p.ip));
	p.udp.source = htons(40054);
	p.udp.dest = htons(53);
	p.udp.len = htons(sizeof(p.udp) + sizeof(p.data));
	memcpy(p.data, "who is there", sizeof(p.data));
	p.udp.check = l4_checksum(IPPROTO_UDP, p.ip.saddr, p.ip.daddr, &p.udp,
				  sizeof(p.udp) + sizeof(p.data));
	r = run_prog(1, &p, sizeof(p));
	assert_int_equal(r.retval, TC_ACT_REDIRECT);
	assert_int_equal(r.out_len, sizeof(e));
	memcpy(e.eth.h_dest, mac_a_pod, 6);
	memcpy(e.eth.h_source, mac_a_lxc, 6);
	e.eth.h_proto = htons(ETH_P_IP);
	e.ip = ipv4_header(FRONTEND_EMPTY, IP_A, IPPROTO_ICMP, 64, sizeof(e) - sizeof(e.eth));
	e.icmp.type = ICMP_DEST_UNREACH;
	e.icmp.code = ICMP_PORT_UNREACH;
	e.quoted = p.ip;
	e.udp = p.udp;
	e.icmp.checksum = ip_checksum(&e.icmp, sizeof(e) - sizeof(e.eth) - sizeof(e.ip));
	assert_memory_equal(r.out, &e, sizeof(e));
	o = (void *)r.out;
	assert_int_equal(ip_checksum(&o->ip, sizeof(o->ip)), 0);
	assert_int_equal(ip_checksum(&o->icmp, sizeof(e) - sizeof(e.eth) - sizeof(e.ip)), 0);
	assert_int_equal(ip_checksum(&o->quoted, sizeof(o->quoted)), 0);
	assert_int_equal(counter(SLUICE_LB_REJECT_UDP, SLUICE_DIR_EGRESS), rej + 1);
}

static void lb_affinity_set(__u32 timeout)
{
	struct sluice_lb4_key k = { .addr = ip4(FRONTEND), .port = htons(80), .proto = IPPROTO_TCP };
	struct sluice_lb4_value v;

	assert_int_equal(bpf_map_lookup_elem(datapath_lb_svc_map_fd(dp), &k, &v), 0);
	v.affinity_timeout = timeout;
	assert_int_equal(bpf_map_update_elem(datapath_lb_svc_map_fd(dp), &k, &v, BPF_ANY), 0);
}

/* A new flow of A to FRONTEND:80: the backend port it got. */
static __u16 lb_new_flow(__u16 sport)
{
	struct l4pkt p = lb_from_a(FRONTEND, sport, 80);
	struct run r = run_prog(1, &p, sizeof(p));

	assert_int_equal(r.retval, TC_ACT_REDIRECT);
	return ntohs(((struct l4pkt *)r.out)->tcp.dest);
}

static __u64 mono_ns(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (__u64)now.tv_sec * 1000000000ull + (__u64)now.tv_nsec;
}

/* sessionAffinity ClientIP: every new flow of A takes the backend of its
 * first while the entry lives and the backend exists; an expired entry or
 * a gone backend chooses afresh; timeout 0 (None) ignores the map. */
static void test_lb_affinity(void **state)
{
	struct sluice_lb4_aff_key ak = { .client = ip4(IP_A), .rev_nat = RN_WEB };
	int aff_fd = datapath_lb_affinity_map_fd(dp);
	__u32 both[2] = { 1, 2 };
	struct sluice_lb4_aff_value av;
	__u64 hits = counter(SLUICE_LB_AFFINITY_HIT, SLUICE_DIR_EGRESS), t0;
	__u16 first, port;
	int seen[2] = { 0, 0 };

	(void)state;
	lb_service_put(FRONTEND, 80, IPPROTO_TCP, RN_WEB, both, 2);
	lb_affinity_set(60);
	first = lb_new_flow(47000);
	assert_int_equal(bpf_map_lookup_elem(aff_fd, &ak, &av), 0);
	assert_int_equal(av.backend_id, first - 8080 + 1);
	for (__u16 sport = 47001; sport < 47041; sport++)
		assert_int_equal(lb_new_flow(sport), first);
	assert_int_equal(counter(SLUICE_LB_AFFINITY_HIT, SLUICE_DIR_EGRESS), hits + 40);
	/* Its backend gone (as the agent does it: out of the slots, then out
	 * of the backends): the other one, remembered in its place. */
	{
		__u32 gone = av.backend_id, other = 3 - gone;
		struct sluice_lb4_backend b;

		lb_service_put(FRONTEND, 80, IPPROTO_TCP, RN_WEB, &other, 1);
		lb_affinity_set(60);
		assert_int_equal(bpf_map_lookup_elem(datapath_lb_be_map_fd(dp), &gone, &b), 0);
		assert_int_equal(bpf_map_delete_elem(datapath_lb_be_map_fd(dp), &gone), 0);
		for (__u16 sport = 47100; sport < 47110; sport++)
			assert_int_equal(lb_new_flow(sport), first == 8080 ? 8081 : 8080);
		assert_int_equal(bpf_map_lookup_elem(aff_fd, &ak, &av), 0);
		assert_int_equal(av.backend_id, other);
		assert_int_equal(bpf_map_update_elem(datapath_lb_be_map_fd(dp), &gone, &b, BPF_ANY), 0);
		lb_service_put(FRONTEND, 80, IPPROTO_TCP, RN_WEB, both, 2);
		lb_affinity_set(60);
	}
	/* Expired (last used 61 s ago): no hit, the entry is made anew. */
	hits = counter(SLUICE_LB_AFFINITY_HIT, SLUICE_DIR_EGRESS);
	t0 = mono_ns();
	av.last_used = t0 - 61ull * 1000000000ull;
	assert_int_equal(bpf_map_update_elem(aff_fd, &ak, &av, BPF_ANY), 0);
	port = lb_new_flow(47200);
	assert_int_equal(counter(SLUICE_LB_AFFINITY_HIT, SLUICE_DIR_EGRESS), hits);
	assert_int_equal(bpf_map_lookup_elem(aff_fd, &ak, &av), 0);
	assert_true(av.last_used >= t0);
	assert_int_equal(av.backend_id, port - 8080 + 1);
	/* Used by another CPU's flow just after this flow's program read its
	 * clock (last_used ahead of now): a hit, not an expiry. */
	hits = counter(SLUICE_LB_AFFINITY_HIT, SLUICE_DIR_EGRESS);
	av.last_used = mono_ns() + 50000000ull;
	assert_int_equal(bpf_map_update_elem(aff_fd, &ak, &av, BPF_ANY), 0);
	for (__u16 sport = 47210; sport < 47220; sport++)
		assert_int_equal(lb_new_flow(sport), port);
	assert_int_equal(counter(SLUICE_LB_AFFINITY_HIT, SLUICE_DIR_EGRESS), hits + 10);
	assert_int_equal(bpf_map_lookup_elem(aff_fd, &ak, &av), 0);
	/* Switched to None: new flows spread again (a miss is 2^-39), the
	 * map is neither read nor written. */
	lb_affinity_set(0);
	hits = counter(SLUICE_LB_AFFINITY_HIT, SLUICE_DIR_EGRESS);
	for (__u16 sport = 47300; sport < 47340; sport++)
		seen[lb_new_flow(sport) - 8080]++;
	assert_true(seen[0] > 0 && seen[1] > 0);
	assert_int_equal(counter(SLUICE_LB_AFFINITY_HIT, SLUICE_DIR_EGRESS), hits);
	{
		struct sluice_lb4_aff_value now;

		assert_int_equal(bpf_map_lookup_elem(aff_fd, &ak, &now), 0);
		assert_memory_equal(&now, &av, sizeof(av));
	}
	bpf_map_delete_elem(aff_fd, &ak);
}

/* The Maglev table M of the group below: small, so the test is quick. */
#define TEST_MAGLEV_M 251

/* The backend port the agent's Maglev table gives the flow A:sport ->
 * fe:80/TCP, computed here from agent/maglev.c and the flow hash. */
static __u16 maglev_expect(const struct svc_backend *bes, size_t n, const char *fe, __u16 sport)
{
	struct maglev_backend mb[8];
	uint32_t table[TEST_MAGLEV_M], h;
	char err[256];

	assert_true(n <= 8);
	for (size_t i = 0; i < n; i++)
		mb[i] = (struct maglev_backend){ .addr = bes[i].ip, .port = bes[i].port };
	assert_true(maglev_build(mb, n, TEST_MAGLEV_M, SLUICE_LB_SEED_DEFAULT, table, err,
				 sizeof(err)) > 0);
	h = sluice_lb_flow_hash4(ip4(IP_A), ip4(fe), htons(sport), htons(80), IPPROTO_TCP,
				 SLUICE_LB_SEED_DEFAULT);
	return bes[table[h % TEST_MAGLEV_M]].port;
}

static int maglev_tables(void)
{
	return (int)map_count(datapath_lb_maglev_map_fd(dp));
}

/* Rev-NAT indices wrap from 0xffff to 1 and skip those in use: a kept
 * frontend's (slot 0 names it) and those handed out in the same sync. */
static void test_lb_rev_nat_wraps(void **state)
{
	struct svc_frontend fes[4] = {
		{ .kind = SVC_FE_CLUSTER_IP, .ip = ntohl(ip4("10.96.0.50")), .port = 80,
		  .proto = IPPROTO_TCP },
		{ .kind = SVC_FE_CLUSTER_IP, .ip = ntohl(ip4("10.96.0.51")), .port = 80,
		  .proto = IPPROTO_TCP },
		{ .kind = SVC_FE_CLUSTER_IP, .ip = ntohl(ip4("10.96.0.52")), .port = 80,
		  .proto = IPPROTO_TCP },
		{ .kind = SVC_FE_CLUSTER_IP, .ip = ntohl(ip4("10.96.0.53")), .port = 80,
		  .proto = IPPROTO_TCP },
	};
	struct svc_backend be = { .ip = ntohl(ip4(IP_B)), .port = 8080, .ready = 1, .serving = 1 };
	struct svc_view_port port = { .backends = &be, .nbackends = 1 };
	struct svc_view_service vs = { .ns = "x", .name = "wrap", .frontends = fes, .nfrontends = 1,
				       .ports = &port, .nports = 1 };
	struct svc_view v = { .v = &vs, .n = 1 };
	struct lb_ids ids = { .next_rev_nat = 1 };
	struct lb_stats st;
	char err[256];

	(void)state;
	assert_int_equal(lb_sync(dp, &v, NULL, &ids, &st, err, sizeof(err)), 0);
	assert_int_equal(lb_slot("10.96.0.50", 80, 0).rev_nat, 1);
	ids.next_rev_nat = 0xfffe;
	vs.nfrontends = 4;
	assert_int_equal(lb_sync(dp, &v, NULL, &ids, &st, err, sizeof(err)), 0);
	assert_int_equal(lb_slot("10.96.0.50", 80, 0).rev_nat, 1);
	assert_int_equal(lb_slot("10.96.0.51", 80, 0).rev_nat, 0xfffe);
	assert_int_equal(lb_slot("10.96.0.52", 80, 0).rev_nat, 0xffff);
	assert_int_equal(lb_slot("10.96.0.53", 80, 0).rev_nat, 2);
	lb_settled(&v, &ids);
	assert_int_equal(lb_sync(dp, NULL, NULL, &ids, &st, err, sizeof(err)), 0);
	lb_ids_free(&ids);
}

/* lb.c's shadow covers what the newer features write: EXT entries (an
 * externalIP and a nodePort, eTP Local), slot 0's affinity timeout and
 * Maglev flag, backend flags changed in place (terminating) under the same
 * id, and a host port. After each change a sync from the shadow and one
 * from the maps write nothing. */
static void test_lb_shadow_ext_maglev_hostport(void **state)
{
	struct svc_service svc = { .etp_local = true, .affinity_client_ip = true,
				   .affinity_timeout = 600 };
	struct svc_frontend fes[3] = {
		{ .kind = SVC_FE_CLUSTER_IP, .ip = ntohl(ip4("10.96.0.40")), .port = 80,
		  .proto = IPPROTO_TCP },
		{ .kind = SVC_FE_EXTERNAL_IP, .ip = ntohl(ip4("10.96.0.41")), .port = 80,
		  .proto = IPPROTO_TCP },
		{ .kind = SVC_FE_NODE_PORT, .port = 30090, .proto = IPPROTO_TCP },
	};
	struct svc_backend bes[3] = {
		{ .ip = ntohl(ip4(IP_B)), .port = 8080, .ready = 1, .serving = 1 }, /* pod CIDR */
		{ .ip = ntohl(ip4(IP_B)), .port = 8081, .ready = 1, .serving = 1 },
		{ .ip = ntohl(ip4(REMOTE_POD)), .port = 8080, .ready = 1, .serving = 1 },
	};
	struct svc_view_port port = { .backends = bes, .nbackends = 3 };
	struct svc_view_service vs = { .ns = "x", .name = "sh", .svc = &svc, .frontends = fes,
				       .nfrontends = 3, .ports = &port, .nports = 1 };
	struct svc_view v = { .v = &vs, .n = 1 };
	struct lb_node node = { .node_ip = ntohl(ip4(NODE_IP)),
				.pod_cidr = { ntohl(ip4("10.77.0.0")), 24 } };
	struct lb_hostport hp = { .fe_ip = ntohl(ip4("10.200.0.12")), .fe_port = 8443,
				  .be_ip = ntohl(ip4(IP_B)), .be_port = 443, .proto = IPPROTO_TCP };
	struct lb_ids ids = { 0 };
	struct sluice_lb4_value s0;
	struct lb_stats st;
	__u32 id0;
	char err[256];

	(void)state;
	assert_int_equal(lb_sync_with(dp, &v, &node, &hp, 1, &ids, &st, err, sizeof(err)), 0);
	assert_int_equal(st.frontends, 4);
	assert_int_equal(st.ext_entries, 3);
	assert_true(st.maglev_built >= 3);
	s0 = lb_slot_in("10.96.0.41", 80, SLUICE_LB_SCOPE_INT, 0);
	assert_int_equal(s0.count, 3);
	assert_int_equal(s0.affinity_timeout, 600);
	assert_int_equal(s0.flags, SLUICE_LB_F_MAGLEV);
	assert_int_equal(lb_slot_in("10.200.0.12", 8443, SLUICE_LB_SCOPE_EXT, 0).flags,
			 SLUICE_LB_F_HOSTPORT);
	lb_settled_with(&v, &node, &hp, 1, &ids);
	/* B:8080 starts terminating while still ready: same id, flags
	 * rewritten in place. */
	id0 = lb_slot_in("10.96.0.40", 80, SLUICE_LB_SCOPE_INT, 1).backend_id;
	assert_int_equal(lb_be(id0).port, htons(8080));
	bes[0].terminating = 1;
	assert_int_equal(lb_sync_with(dp, &v, &node, &hp, 1, &ids, &st, err, sizeof(err)), 0);
	/* (the Maglev signature covers the flags: its 5 tables are rebuilt,
	 * the same entries) */
	assert_int_equal(st.written - st.maglev_built, 1);
	assert_int_equal(lb_be(id0).flags, SLUICE_LB_BE_F_LOCAL | SLUICE_LB_BE_F_TERMINATING);
	lb_settled_with(&v, &node, &hp, 1, &ids);
	/* A new affinity timeout: every slot 0 rewritten. */
	svc.affinity_timeout = 60;
	assert_int_equal(lb_sync_with(dp, &v, &node, &hp, 1, &ids, &st, err, sizeof(err)), 0);
	assert_int_equal(lb_slot_in("10.96.0.41", 80, SLUICE_LB_SCOPE_EXT, 0).affinity_timeout, 60);
	lb_settled_with(&v, &node, &hp, 1, &ids);
	/* The remote backend goes (EXT sets unchanged: local only), the host
	 * port goes. */
	port.nbackends = 2;
	assert_int_equal(lb_sync_with(dp, &v, &node, NULL, 0, &ids, &st, err, sizeof(err)), 0);
	assert_true(st.deleted > 0);
	assert_int_equal(lb_slot_in("10.200.0.12", 8443, SLUICE_LB_SCOPE_INT, 0).count, 0xffff);
	lb_settled_with(&v, &node, NULL, 0, &ids);
	/* Everything goes. */
	assert_int_equal(lb_sync_with(dp, NULL, &node, NULL, 0, &ids, &st, err, sizeof(err)), 0);
	assert_int_equal(map_count(datapath_lb_svc_map_fd(dp)), 0);
	assert_int_equal(map_count(datapath_lb_be_map_fd(dp)), 0);
	assert_int_equal(maglev_tables(), 0);
	lb_settled_with(NULL, &node, NULL, 0, &ids);
	lb_ids_free(&ids);
}

/* --lb-algorithm maglev: the agent builds a frontend's table only when its
 * backend set changes, swaps it whole, drops it at fewer than 2 backends;
 * the datapath gives each new flow the table's entry for its flow hash,
 * the one this test computes independently. Affinity comes from the
 * Service, and turning it off forgets the clients' entries. */
static void test_lb_maglev_sync_and_choice(void **state)
{
	struct svc_frontend fe = { .kind = SVC_FE_CLUSTER_IP, .ip = ntohl(ip4("10.96.0.30")),
				   .port = 80, .proto = IPPROTO_TCP };
	struct svc_backend bes[4], rev[4];
	struct svc_view_port port = { .backends = bes, .nbackends = 4 };
	struct svc_service svc = { .affinity_client_ip = false, .affinity_timeout = 10800 };
	struct svc_view_service vs = { .ns = "x", .name = "mgl", .svc = &svc, .frontends = &fe,
				       .nfrontends = 1, .ports = &port, .nports = 1 };
	struct svc_view v = { .v = &vs, .n = 1 };
	struct lb_ids ids = { 0 };
	struct sluice_lb4_value s0;
	struct bpf_map_info info = { 0 };
	__u32 len = sizeof(info), inner_id, first_id, rn;
	struct lb_stats st;
	char err[256];
	int fd;

	(void)state;
	for (int i = 0; i < 4; i++)
		bes[i] = (struct svc_backend){ .ip = ntohl(ip4(IP_B)), .port = (uint16_t)(9001 + i),
					       .ready = 1, .serving = 1 };
	assert_int_equal(lb_sync(dp, &v, NULL, &ids, &st, err, sizeof(err)), 0);
	assert_int_equal(st.maglev_built, 1);
	s0 = lb_slot("10.96.0.30", 80, 0);
	assert_int_equal(s0.count, 4);
	assert_int_equal(s0.flags, SLUICE_LB_F_MAGLEV);
	assert_int_equal(s0.affinity_timeout, 0);
	rn = s0.rev_nat;
	assert_int_equal(maglev_tables(), 1);
	assert_int_equal(bpf_map_lookup_elem(datapath_lb_maglev_map_fd(dp), &rn, &inner_id), 0);
	fd = bpf_map_get_fd_by_id(inner_id);
	assert_true(fd >= 0);
	assert_int_equal(bpf_obj_get_info_by_fd(fd, &info, &len), 0);
	assert_int_equal(info.max_entries, TEST_MAGLEV_M);
	/* Every entry names the backend the independent build gives it. */
	{
		struct maglev_backend mb[4];
		uint32_t table[TEST_MAGLEV_M];

		for (int i = 0; i < 4; i++)
			mb[i] = (struct maglev_backend){ .addr = bes[i].ip, .port = bes[i].port };
		assert_int_equal(maglev_build(mb, 4, TEST_MAGLEV_M, SLUICE_LB_SEED_DEFAULT, table,
					      err, sizeof(err)), 4);
		for (__u32 i = 0; i < TEST_MAGLEV_M; i++) {
			__u32 id;

			assert_int_equal(bpf_map_lookup_elem(fd, &i, &id), 0);
			assert_int_equal(ntohs(lb_be(id).port), bes[table[i]].port);
		}
	}
	close(fd);
	first_id = inner_id;
	/* The datapath: each new flow gets the table's backend for its hash. */
	for (__u16 sport = 48000; sport < 48064; sport++) {
		struct l4pkt p = lb_from_a("10.96.0.30", sport, 80);
		struct run r = run_prog(1, &p, sizeof(p));

		assert_int_equal(r.retval, TC_ACT_REDIRECT);
		assert_int_equal(ntohs(((struct l4pkt *)r.out)->tcp.dest),
				 maglev_expect(bes, 4, "10.96.0.30", sport));
	}
	/* The same set, in another order: nothing built, nothing written. */
	for (int i = 0; i < 4; i++)
		rev[i] = bes[3 - i];
	port.backends = rev;
	assert_int_equal(lb_sync(dp, &v, NULL, &ids, &st, err, sizeof(err)), 0);
	assert_int_equal(st.maglev_built, 0);
	assert_int_equal(st.written, 0);
	/* A restarted agent (nothing remembered) finds the table right. */
	{
		struct lb_ids fresh = { 0 };

		assert_int_equal(lb_sync(dp, &v, NULL, &fresh, &st, err, sizeof(err)), 0);
		assert_int_equal(st.maglev_built, 0);
		assert_int_equal(st.written, 0);
		lb_ids_free(&fresh);
	}
	port.backends = bes;
	/* ClientIP affinity: slot 0 carries the timeout, the table stays. */
	svc.affinity_client_ip = true;
	assert_int_equal(lb_sync(dp, &v, NULL, &ids, &st, err, sizeof(err)), 0);
	assert_int_equal(lb_slot("10.96.0.30", 80, 0).affinity_timeout, 10800);
	assert_int_equal(st.maglev_built, 0);
	{
		struct l4pkt p = lb_from_a("10.96.0.30", 48100, 80);
		struct sluice_lb4_aff_key ak = { .client = ip4(IP_A), .rev_nat = rn };
		struct sluice_lb4_aff_value av;

		assert_int_equal(run_prog(1, &p, sizeof(p)).retval, TC_ACT_REDIRECT);
		assert_int_equal(bpf_map_lookup_elem(datapath_lb_affinity_map_fd(dp), &ak, &av), 0);
		/* Another backend leaves the set: the entry stays. The
		 * client's own backend leaves: the entry goes, although that
		 * backend may live on for another Service. */
		{
			__u16 mine = ntohs(lb_be(av.backend_id).port);
			struct svc_backend less[4];
			size_t nless = 0;

			for (int i = 0; i < 4; i++)
				if (bes[i].port != mine && nless < 2)
					less[nless++] = bes[i];
			for (int i = 0; i < 4; i++)
				if (bes[i].port == mine)
					less[nless++] = bes[i];
			port.backends = less;
			port.nbackends = nless;
			assert_int_equal(lb_sync(dp, &v, NULL, &ids, &st, err, sizeof(err)), 0);
			assert_int_equal(bpf_map_lookup_elem(datapath_lb_affinity_map_fd(dp), &ak,
							     &av), 0);
			port.nbackends = nless - 1;	/* mine was last */
			assert_int_equal(lb_sync(dp, &v, NULL, &ids, &st, err, sizeof(err)), 0);
			assert_int_not_equal(bpf_map_lookup_elem(datapath_lb_affinity_map_fd(dp),
								 &ak, &av), 0);
			port.backends = bes;
			port.nbackends = 4;
			assert_int_equal(lb_sync(dp, &v, NULL, &ids, &st, err, sizeof(err)), 0);
			p = lb_from_a("10.96.0.30", 48101, 80);
			assert_int_equal(run_prog(1, &p, sizeof(p)).retval, TC_ACT_REDIRECT);
			assert_int_equal(bpf_map_lookup_elem(datapath_lb_affinity_map_fd(dp), &ak,
							     &av), 0);
		}
		/* Back to None: the client's entry is forgotten. */
		svc.affinity_client_ip = false;
		assert_int_equal(lb_sync(dp, &v, NULL, &ids, &st, err, sizeof(err)), 0);
		assert_int_equal(lb_slot("10.96.0.30", 80, 0).affinity_timeout, 0);
		assert_int_not_equal(bpf_map_lookup_elem(datapath_lb_affinity_map_fd(dp), &ak, &av),
				     0);
	}
	/* One backend goes: a new table, swapped in whole. */
	port.nbackends = 3;
	assert_int_equal(lb_sync(dp, &v, NULL, &ids, &st, err, sizeof(err)), 0);
	assert_int_equal(st.maglev_built, 1);
	assert_int_equal(bpf_map_lookup_elem(datapath_lb_maglev_map_fd(dp), &rn, &inner_id), 0);
	assert_int_not_equal(inner_id, first_id);
	for (__u16 sport = 48200; sport < 48232; sport++) {
		struct l4pkt p = lb_from_a("10.96.0.30", sport, 80);
		struct run r = run_prog(1, &p, sizeof(p));

		assert_int_equal(ntohs(((struct l4pkt *)r.out)->tcp.dest),
				 maglev_expect(bes, 3, "10.96.0.30", sport));
	}
	/* One backend left: no table, no flag; the slot does it. */
	port.nbackends = 1;
	assert_int_equal(lb_sync(dp, &v, NULL, &ids, &st, err, sizeof(err)), 0);
	assert_int_equal(lb_slot("10.96.0.30", 80, 0).flags, 0);
	assert_int_equal(maglev_tables(), 0);
	port.nbackends = 4;
	assert_int_equal(lb_sync(dp, &v, NULL, &ids, &st, err, sizeof(err)), 0);
	assert_int_equal(maglev_tables(), 1);
	/* More backends than the table has entries: no table, random. */
	{
		struct svc_backend *many = calloc(TEST_MAGLEV_M + 9, sizeof(*many));

		assert_non_null(many);
		for (int i = 0; i < TEST_MAGLEV_M + 9; i++)
			many[i] = (struct svc_backend){ .ip = ntohl(ip4(IP_B)),
							.port = (uint16_t)(20000 + i), .ready = 1,
							.serving = 1 };
		port.backends = many;
		port.nbackends = TEST_MAGLEV_M + 9;
		assert_int_equal(lb_sync(dp, &v, NULL, &ids, &st, err, sizeof(err)), 0);
		assert_int_equal(lb_slot("10.96.0.30", 80, 0).count, TEST_MAGLEV_M + 9);
		assert_int_equal(lb_slot("10.96.0.30", 80, 0).flags, 0);
		assert_int_equal(maglev_tables(), 0);
		assert_int_equal(lb_sync(dp, &v, NULL, &ids, &st, err, sizeof(err)), 0);
		assert_int_equal(st.written, 0);
		port.backends = bes;
		port.nbackends = 4;
		assert_int_equal(lb_sync(dp, &v, NULL, &ids, &st, err, sizeof(err)), 0);
		assert_int_equal(st.maglev_built, 1);
		assert_int_equal(lb_slot("10.96.0.30", 80, 0).flags, SLUICE_LB_F_MAGLEV);
		free(many);
	}
	/* The Service gone: its table with it. */
	assert_int_equal(lb_sync(dp, NULL, NULL, &ids, &st, err, sizeof(err)), 0);
	assert_int_equal(maglev_tables(), 0);
	assert_int_equal(map_count(datapath_lb_svc_map_fd(dp)), 0);
	lb_ids_free(&ids);
}

/* An endpoint that starts terminating while another is ready: its backend
 * keeps its id (flows name it) and gets the terminating flag, leaves the
 * slots, stays in the backend map; A's flow on it goes on there while new
 * flows go to the ready one. The endpoint gone: the backend goes. */
static void test_lb_sync_terminating_keeps_id(void **state)
{
	struct svc_frontend fe = { .kind = SVC_FE_CLUSTER_IP, .ip = ntohl(ip4("10.96.0.30")),
				   .port = 80, .proto = IPPROTO_TCP };
	struct svc_backend bes[2] = {
		{ .ip = ntohl(ip4(IP_B)), .port = 8080, .ready = 1, .serving = 1 },
		{ .ip = ntohl(ip4(IP_B)), .port = 8081, .ready = 1, .serving = 1 },
	};
	struct svc_view_port port = { .backends = bes, .nbackends = 1 };
	struct svc_view_service vs = { .ns = "x", .name = "web", .frontends = &fe, .nfrontends = 1,
				       .ports = &port, .nports = 1 };
	struct svc_view v = { .v = &vs, .n = 1 };
	struct lb_ids ids = { 0 };
	struct lb_stats st;
	struct l4pkt p = lb_from_a("10.96.0.30", 47000, 80);
	struct run r;
	char err[256];
	__u32 id;

	(void)state;
	assert_int_equal(lb_sync(dp, &v, NULL, &ids, &st, err, sizeof(err)), 0);
	id = lb_slot("10.96.0.30", 80, 1).backend_id;
	assert_int_equal(lb_be(id).flags, 0);
	r = run_prog(1, &p, sizeof(p));
	assert_int_equal(ntohs(((struct l4pkt *)r.out)->tcp.dest), 8080);
	/* 8080 terminates, 8081 appears ready. */
	bes[0].ready = 0;
	bes[0].terminating = 1;
	port.nbackends = 2;
	assert_int_equal(lb_sync(dp, &v, NULL, &ids, &st, err, sizeof(err)), 0);
	assert_int_equal(lb_be(id).flags, SLUICE_LB_BE_F_TERMINATING);
	assert_int_equal(lb_be(id).addr, ip4(IP_B));
	assert_int_equal(lb_slot("10.96.0.30", 80, 0).count, 1);
	assert_int_equal(ntohs(lb_be(lb_slot("10.96.0.30", 80, 1).backend_id).port), 8081);
	p.tcp.syn = 0;
	p.tcp.ack = 1;
	fill_tcp_checksum(&p);
	for (__u16 sport = 47001; sport < 47011; sport++) {
		struct l4pkt n = lb_from_a("10.96.0.30", sport, 80);

		r = run_prog(1, &p, sizeof(p));
		assert_int_equal(ntohs(((struct l4pkt *)r.out)->tcp.dest), 8080);
		r = run_prog(1, &n, sizeof(n));
		assert_int_equal(ntohs(((struct l4pkt *)r.out)->tcp.dest), 8081);
	}
	/* The same view again: nothing written. */
	assert_int_equal(lb_sync(dp, &v, NULL, &ids, &st, err, sizeof(err)), 0);
	assert_int_equal(st.written, 0);
	/* The endpoint is gone: so is its backend, and the flow moves. */
	bes[0] = bes[1];
	port.nbackends = 1;
	assert_int_equal(lb_sync(dp, &v, NULL, &ids, &st, err, sizeof(err)), 0);
	assert_int_equal(lb_be(id).port, 0);
	r = run_prog(1, &p, sizeof(p));
	assert_int_equal(ntohs(((struct l4pkt *)r.out)->tcp.dest), 8081);
	assert_int_equal(lb_sync(dp, NULL, NULL, &ids, &st, err, sizeof(err)), 0);
}

/* A hostPort: 10.200.0.11:8080/TCP (the node's address) to B:80, in both
 * scopes, flagged; A reaches it through from_pod and B's answer comes back
 * from the hostPort. A Service on the same frontend wins it; the pod gone,
 * the frontend goes. */
static void test_lb_sync_hostport(void **state)
{
	struct lb_hostport hp = { .fe_ip = ntohl(ip4("10.200.0.11")), .fe_port = 8080,
				  .be_ip = ntohl(ip4(IP_B)), .be_port = 80, .proto = IPPROTO_TCP };
	struct svc_frontend fe = { .kind = SVC_FE_EXTERNAL_IP, .ip = ntohl(ip4("10.200.0.11")),
				   .port = 8080, .proto = IPPROTO_TCP };
	struct svc_backend be = { .ip = ntohl(ip4(IP_B)), .port = 9090, .ready = 1, .serving = 1 };
	struct svc_view_port port = { .backends = &be, .nbackends = 1 };
	struct svc_view_service vs = { .ns = "x", .name = "web", .frontends = &fe, .nfrontends = 1,
				       .ports = &port, .nports = 1 };
	struct svc_view v = { .v = &vs, .n = 1 };
	__u64 hpc = counter(SLUICE_LB_HOSTPORT, SLUICE_DIR_EGRESS);
	struct sluice_lb4_key k = { .addr = ip4("10.200.0.11"), .port = htons(8080),
				    .proto = IPPROTO_TCP, .scope = SLUICE_LB_SCOPE_EXT };
	struct sluice_lb4_value ext;
	struct lb_ids ids = { 0 };
	struct lb_stats st;
	struct l4pkt p = lb_from_a("10.200.0.11", 47100, 8080), reply, e;
	struct run r;
	char err[256];

	(void)state;
	assert_int_equal(lb_sync_with(dp, NULL, NULL, &hp, 1, &ids, &st, err, sizeof(err)), 0);
	/* One INT entry (pods here) and its EXT twin (other nodes, the world). */
	assert_int_equal(st.frontends, 1);
	assert_int_equal(st.ext_entries, 1);
	assert_int_equal(lb_slot("10.200.0.11", 8080, 0).flags, SLUICE_LB_F_HOSTPORT);
	assert_int_equal(lb_slot("10.200.0.11", 8080, 0).count, 1);
	assert_int_equal(bpf_map_lookup_elem(datapath_lb_svc_map_fd(dp), &k, &ext), 0);
	assert_int_equal(ext.flags, SLUICE_LB_F_HOSTPORT);
	assert_int_equal(ext.count, 1);
	r = run_prog(1, &p, sizeof(p));
	assert_int_equal(r.retval, TC_ACT_REDIRECT);
	e = lb_expect(&p, IP_A, 47100, IP_B, 80, mac_b_pod, mac_b_lxc);
	assert_memory_equal(r.out, &e, sizeof(e));
	assert_int_equal(counter(SLUICE_LB_HOSTPORT, SLUICE_DIR_EGRESS), hpc + 1);
	reply = make_l4(IP_B, IP_A, IPPROTO_TCP, 80, 47100);
	memcpy(reply.eth.h_source, mac_b_pod, 6);
	memcpy(reply.eth.h_dest, mac_b_lxc, 6);
	reply.tcp.ack = 1;
	fill_tcp_checksum(&reply);
	r = run_prog_on(1, &reply, sizeof(reply), ifindex_b);
	e = lb_expect(&reply, "10.200.0.11", 8080, IP_A, 47100, mac_a_pod, mac_a_lxc);
	assert_memory_equal(r.out, &e, sizeof(e));
	/* The same view again: nothing written. */
	assert_int_equal(lb_sync_with(dp, NULL, NULL, &hp, 1, &ids, &st, err, sizeof(err)), 0);
	assert_int_equal(st.written, 0);
	/* A Service on the same address and port: the Service's. */
	assert_int_equal(lb_sync_with(dp, &v, NULL, &hp, 1, &ids, &st, err, sizeof(err)), 0);
	assert_int_equal(lb_slot("10.200.0.11", 8080, 0).flags, 0);
	assert_int_equal(ntohs(lb_be(lb_slot("10.200.0.11", 8080, 1).backend_id).port), 9090);
	/* Two pods' host ports on one frontend (recorded while not
	 * checked): the lower backend, whatever their order. */
	{
		struct lb_hostport two[2] = { hp, hp };

		two[1].be_ip = ntohl(ip4(IP_A));
		assert_int_equal(lb_sync_with(dp, NULL, NULL, two, 2, &ids, &st, err, sizeof(err)), 0);
		assert_int_equal(lb_be(lb_slot("10.200.0.11", 8080, 1).backend_id).addr, ip4(IP_A));
		two[1] = hp;
		two[0].be_ip = ntohl(ip4(IP_A));
		assert_int_equal(lb_sync_with(dp, NULL, NULL, two, 2, &ids, &st, err, sizeof(err)), 0);
		assert_int_equal(st.written, 0);
	}
	/* The pod gone (no Service either): nothing left. */
	assert_int_equal(lb_sync_with(dp, NULL, NULL, NULL, 0, &ids, &st, err, sizeof(err)), 0);
	assert_int_equal(map_count(datapath_lb_svc_map_fd(dp)), 0);
	assert_int_equal(map_count(datapath_lb_be_map_fd(dp)), 0);
	assert_int_equal(map_count(datapath_lb_rnat_map_fd(dp)), 0);
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
		cmocka_unit_test_setup(test_purge_address, policy_reset),
		cmocka_unit_test_setup(test_purge_range, policy_reset),
		cmocka_unit_test_setup(test_flow_to_free_address_meets_new_pod, policy_reset),
		cmocka_unit_test_setup(test_purge_failure_names_the_map, policy_reset),
		cmocka_unit_test_setup(test_purge_full_maps, policy_reset),
		cmocka_unit_test_setup(test_frag_later_follow_allowed_first, frag_reset),
		cmocka_unit_test_setup(test_frag_later_of_denied_first_dropped, frag_reset),
		cmocka_unit_test_setup(test_frag_later_without_first_dropped, frag_reset),
		cmocka_unit_test_setup(test_frag_entry_expires, frag_reset),
		cmocka_unit_test_setup(test_icmp_error_from_router_is_related, frag_reset),
		cmocka_unit_test_setup(test_icmp_error_from_third_pod_dropped, frag_reset),
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
		cmocka_unit_test_setup(test_masquerade_ports_from_range, nat_setup),
		cmocka_unit_test_setup(test_masquerade_reply_needs_live_flow, nat_setup),
		cmocka_unit_test_setup(test_masquerade_icmp_error_to_pod, nat_setup),
		cmocka_unit_test_setup(test_masquerade_icmp_error_tcp_and_echo, nat_setup),
		cmocka_unit_test_setup(test_masquerade_skips_node_sockets, nat_setup),
		cmocka_unit_test_setup(test_no_masquerade_for_replies, nat_setup),
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
		cmocka_unit_test_setup(test_masquerade_later_fragment, nat_setup),
		cmocka_unit_test_setup(test_masquerade_later_fragment_of_ping, nat_setup),
		cmocka_unit_test_setup(test_masquerade_orphan_fragment_dropped, nat_setup),
		cmocka_unit_test_setup(test_lb_dnat_and_reverse_byte_for_byte, lb_setup),
		cmocka_unit_test_setup(test_lb_udp, lb_setup),
		cmocka_unit_test_setup(test_lb_flow_keeps_its_backend, lb_setup),
		cmocka_unit_test_setup(test_lb_entry_refreshed_by_other_cpu, lb_setup),
		cmocka_unit_test_setup(test_lb_port_reuse_direct_then_service, lb_setup),
		cmocka_unit_test_setup(test_lb_port_reuse_two_services, lb_setup),
		cmocka_unit_test_setup(test_lb_udp_port_reuse, lb_setup),
		cmocka_unit_test_setup(test_lb_syn_does_not_replace_open_flow, lb_setup),
		cmocka_unit_test_setup(test_lb_policy_sees_backend_and_client, lb_setup),
		cmocka_unit_test_setup(test_lb_leaves_other_traffic_alone, lb_setup),
		cmocka_unit_test_setup(test_lb_sync_writes_only_changes, lb_empty),
		cmocka_unit_test_setup(test_lb_sync_nodeport, lb_empty),
		cmocka_unit_test_setup(test_lb_reject_tcp_syn, lb_setup),
		cmocka_unit_test_setup(test_lb_no_backend_non_syn_dropped, lb_setup),
		cmocka_unit_test_setup(test_lb_reject_udp, lb_setup),
		cmocka_unit_test_setup(test_lb_affinity, lb_setup),
		cmocka_unit_test_setup(test_lb_sync_scopes_and_policies, lb_empty),
		cmocka_unit_test_setup(test_np_local_backend, np_setup),
		cmocka_unit_test_setup(test_np_local_backend_policy, np_setup),
		cmocka_unit_test_setup(test_np_remote_backend_overlay, np_setup),
		cmocka_unit_test_setup(test_lb_sync_terminating_keeps_id, lb_empty),
		cmocka_unit_test_setup(test_lb_sync_hostport, lb_empty),
		cmocka_unit_test_setup(test_lb_hairpin_byte_for_byte, lb_setup),
		cmocka_unit_test_setup(test_lb_hairpin_udp, lb_setup),
		cmocka_unit_test_setup(test_lb_terminating_backend, lb_setup),
		cmocka_unit_test_setup(test_lb_icmp_error_from_local_backend, lb_setup),
		cmocka_unit_test_setup(test_lb_icmp_error_from_client_to_backend, lb_setup),
		cmocka_unit_test_setup(test_lb_via_stack_reversed_in_to_pod, lb_setup),
		cmocka_unit_test_setup(test_np_no_endpoint_refused, np_setup),
		cmocka_unit_test_setup(test_np_icmp_error_to_local_backend, np_setup),
		cmocka_unit_test_setup(test_np_pod_of_other_node_through_tunnel, np_setup),
		cmocka_unit_test_setup(test_xdp_np_remote_overlay_byte_for_byte, np_setup),
		cmocka_unit_test_setup(test_xdp_np_fall_through_causes, np_setup),
		cmocka_unit_test_setup(test_xdp_np_icmp_and_truncated, np_setup),
		cmocka_unit_test_setup(test_xdp_np_udp_restarts_other_frontends_entry, np_setup),
	};

	const struct CMUnitTest maglev[] = {
		cmocka_unit_test_setup(test_lb_maglev_sync_and_choice, lb_empty),
		cmocka_unit_test_setup(test_lb_shadow_ext_maglev_hostport, lb_empty),
		cmocka_unit_test_setup(test_lb_rev_nat_wraps, lb_empty),
	};
	struct datapath_opts maglev_opts = overlay_masq;

	const struct CMUnitTest cross_node_native[] = {
		cmocka_unit_test_setup(test_netdev_tells_own_from_host_forwarded, nat_setup),
		cmocka_unit_test_setup(test_from_node_only_pods_go_straight, nat_setup),
		cmocka_unit_test_setup(test_native_next_hop_mac, nat_setup),
		cmocka_unit_test_setup(test_lb_dnat_and_reverse_byte_for_byte, lb_setup),
		cmocka_unit_test_setup(test_lb_remote_backend_reply, lb_setup),
		cmocka_unit_test_setup(test_np_local_backend, np_setup),
		cmocka_unit_test_setup(test_np_local_backend_policy, np_setup),
		cmocka_unit_test_setup(test_np_remote_backend_snat, np_setup),
		cmocka_unit_test_setup(test_np_ext_local_keeps_client, np_setup),
		cmocka_unit_test_setup(test_lb_hairpin_source_from_outside_is_policed, lb_setup),
		cmocka_unit_test_setup(test_lb_icmp_error_from_remote_backend, lb_setup),
		cmocka_unit_test_setup(test_np_ext_local_without_local_backend_dropped, np_setup),
		cmocka_unit_test_setup(test_np_no_endpoint_refused, np_setup),
		cmocka_unit_test_setup(test_np_icmp_error_about_snat_flow, np_setup),
		cmocka_unit_test_setup(test_np_icmp_error_to_local_backend, np_setup),
		cmocka_unit_test_setup(test_np_later_fragments, np_setup),
		cmocka_unit_test_setup(test_xdp_np_remote_native_byte_for_byte, np_setup),
		cmocka_unit_test_setup(test_xdp_np_fall_through_causes, np_setup),
	};
	int failed;

	log_init("test_bpf", LOG_WARN);
	failed = cmocka_run_group_tests_name("bpf-pod", tests, group_setup, group_teardown);
	group_opts = &overlay_masq;
	failed += cmocka_run_group_tests_name("bpf-cross-node", cross_node, group_setup,
					      group_teardown);
	maglev_opts.maglev_m = TEST_MAGLEV_M;
	group_opts = &maglev_opts;
	failed += cmocka_run_group_tests_name("bpf-lb-maglev", maglev, group_setup, group_teardown);
	group_opts = &native;
	failed += cmocka_run_group_tests_name("bpf-cross-node-native", cross_node_native,
					      group_setup, group_teardown);
	return failed;
}
