// SPDX-License-Identifier: Apache-2.0
/*
 * The uplink's first stage through BPF_PROG_TEST_RUN: the XDP program
 * (bpf/xdp.bpf.c) on crafted frames, with the prefilter's maps filled by
 * hand the way the SluicePrefilter compiler fills them (the layout above
 * struct sluice_pf_key4, include/sluice/datapath.h), and from_netdev's
 * fallback (the same stage at tc while sluice_xdpst_v1 says no XDP program
 * runs it). Counters are checked by value. Maps are pinned in a throwaway
 * bpffs directory, the test runs in a network namespace of its own.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <unistd.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/bpf.h>
#include <cmocka.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "loader.h"
#include "log.h"

static char pin_dir[64];
static struct datapath *dp;

#define NODE_IP	    "10.200.0.11"	/* this node */
#define NODE2	    "10.200.0.12"	/* another node (SLUICE_IPC_F_NODE) */
#define POD_A	    "10.77.0.2"		/* a pod here; the pod CIDR is 10.77.0.0/24 */
#define IN_POD_CIDR "10.77.0.99"	/* no pod, but inside this node's pod CIDR */
#define CLIENT	    "192.0.2.10"	/* a client outside the cluster */
#define BAD_NET	    "203.0.113.0"	/* denied /24 */
#define BAD	    "203.0.113.5"
#define EXCEPT	    "203.0.113.9"	/* an exception inside it (hash, rules 0) */
#define EXCEPT_NET  "203.0.113.64"	/* an exception /28 inside it (trie, rules 0) */
#define HOST32	    "198.51.100.7"	/* a /32 deny entry (hash) */
#define PORTS_NET   "198.18.0.0"	/* a /16 denied on TCP 443 only */
#define BOTH_NET    "198.19.0.0"	/* a /16 two rules deny */

/* Rule slots and counter entries of the maps filled in group_setup. */
#define RULE_ALL     2	/* denies BAD_NET, any port */
#define RULE_HOST    7	/* denies HOST32, any port */
#define RULE_443     3	/* denies PORTS_NET and BOTH_NET on TCP 443 */
#define RULE_BOTH_LO 1	/* denies BOTH_NET on TCP 443 (port-scoped) */
#define RULE_BOTH_HI 40	/* denies BOTH_NET, any port */
#define ENT_BAD	     11
#define ENT_HOST     12
#define ENT_PORTS    13
#define ENT_BOTH     14

struct frame {
	struct ethhdr eth;
	struct iphdr ip;
	union {
		struct {
			__be16 sport, dport;
			__be16 len, check;	/* UDP */
			unsigned char rest[12];	/* TCP's */
		} l4;
		unsigned char raw[64];
	};
} __attribute__((packed));

static __be32 ip4(const char *s)
{
	struct in_addr a;

	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return a.s_addr;
}

/* An option-less IPv4 frame with an l4len-byte L4 part (ports first). */
static struct frame make(const char *src, const char *dst, __u8 proto, __u16 dport, size_t l4len)
{
	struct frame f = { 0 };

	memset(f.eth.h_dest, 0x02, 6);
	memset(f.eth.h_source, 0x04, 6);
	f.eth.h_proto = htons(ETH_P_IP);
	f.ip.version = 4;
	f.ip.ihl = 5;
	f.ip.ttl = 64;
	f.ip.protocol = proto;
	f.ip.tot_len = htons((__u16)(sizeof(f.ip) + l4len));
	f.ip.saddr = ip4(src);
	f.ip.daddr = ip4(dst);
	f.l4.sport = htons(40000);
	f.l4.dport = htons(dport);
	if (proto == IPPROTO_UDP)
		f.l4.len = htons((__u16)l4len);
	return f;
}

static size_t flen(const struct frame *f)
{
	return sizeof(f->eth) + ntohs(f->ip.tot_len);
}

struct run {
	int retval;
	int err;		/* errno of the test run itself, 0 when it ran */
	unsigned char out[256];
	__u32 out_len;
};

static struct run run_fd(int fd, const void *data, __u32 len)
{
	struct run r = { 0 };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = data, .data_size_in = len,
		    .data_out = r.out, .data_size_out = sizeof(r.out), .repeat = 1);

	if (bpf_prog_test_run_opts(fd, &opts))
		r.err = errno;
	r.retval = (int)opts.retval;
	r.out_len = opts.data_size_out;
	return r;
}

static struct run xdp(const void *data, size_t len)
{
	struct run r = run_fd(datapath_xdp_prog_fd(dp), data, (__u32)len);

	if (r.err)
		fail_msg("BPF_PROG_TEST_RUN (XDP) failed: %s", strerror(r.err));
	return r;
}

static __u64 counter(enum sluice_reason reason)
{
	struct sluice_metric m[SLUICE_METRICS_MAX];

	assert_int_equal(datapath_metrics_read(dp, m), 0);
	return m[SLUICE_METRIC_INDEX(reason, SLUICE_DIR_INGRESS)].packets;
}

/* The prefilter's counters, through the functions the control plane uses. */
static struct sluice_metric ent(__u32 slot)
{
	struct sluice_metric m;

	assert_int_equal(datapath_pf_entry_counter(dp, slot, &m), 0);
	return m;
}

static struct sluice_metric rul(__u32 slot)
{
	struct sluice_metric m;

	assert_int_equal(datapath_pf_rule_counter(dp, slot, &m), 0);
	return m;
}

static void put_lpm(const char *net, __u32 prefix, __u64 rules, __u32 entry)
{
	struct sluice_pf_key4 k = { .prefixlen = prefix, .addr = ip4(net) };
	struct sluice_pf_val4 v = { .rules = rules, .entry = entry };

	assert_int_equal(bpf_map_update_elem(datapath_pf_lpm_map_fd(dp), &k, &v, 0), 0);
}

static void put_host(const char *addr, __u64 rules, __u32 entry)
{
	__be32 k = ip4(addr);
	struct sluice_pf_val4 v = { .rules = rules, .entry = entry };

	assert_int_equal(bpf_map_update_elem(datapath_pf_host_map_fd(dp), &k, &v, 0), 0);
}

static void set_xdp_active(__u32 active)
{
	struct sluice_xdp_state st = { .xdp_active = active,
				       .mode = active ? SLUICE_XDP_MODE_NATIVE : SLUICE_XDP_MODE_OFF };
	__u32 zero = 0;

	assert_int_equal(bpf_map_update_elem(datapath_xdp_state_map_fd(dp), &zero, &st, 0), 0);
}

/* The group being run: overlay routing, then native (main sets it). */
static const struct datapath_opts *group_opts;

static const struct datapath_opts native_opts = {
	.mode = ATTACH_TC,
	.routing = SLUICE_ROUTING_NATIVE,
	.node_ip = 0x0ac8000b,
	.pod_net = 0x0a4d0000,
	.pod_prefix = 24,
};

static const struct datapath_opts opts = {
	.mode = ATTACH_TC,
	.routing = SLUICE_ROUTING_OVERLAY,
	.vxlan_ifindex = 1,
	.node_ip = 0x0ac8000b,	/* NODE_IP */
	.pod_net = 0x0a4d0000,	/* 10.77.0.0/24 */
	.pod_prefix = 24,
};

static int group_setup(void **state)
{
	struct sluice_ipcache_key nk = { .prefixlen = 32 };
	struct sluice_ipcache_value nv = { .identity = SLUICE_ID_WORLD,
					   .cidr_identity = SLUICE_ID_WORLD,
					   .flags = SLUICE_IPC_F_NODE };
	struct sluice_pf_port4 pk = { .proto = IPPROTO_TCP, .port = htons(443) };
	__u64 port_rules = (1ull << RULE_443) | (1ull << RULE_BOTH_LO);
	struct sluice_pf_cfg4 cfg = { .all_ports = (1ull << RULE_ALL) | (1ull << RULE_HOST) |
						   (1ull << RULE_BOTH_HI),
				      .active = (1ull << RULE_ALL) | (1ull << RULE_HOST) |
						(1ull << RULE_443) | (1ull << RULE_BOTH_LO) |
						(1ull << RULE_BOTH_HI) };
	struct sluice_endpoint a = { .ifindex = 1 };
	__u32 zero = 0;
	char err[512];

	(void)state;
	if (geteuid()) {
		fprintf(stderr, "BPF tests need root\n");
		return -1;
	}
	if (unshare(CLONE_NEWNET)) {
		fprintf(stderr, "cannot make the test network namespace\n");
		return -1;
	}
	snprintf(pin_dir, sizeof(pin_dir), "/sys/fs/bpf/sluice-xdptest-%d-%d", (int)getpid(),
		 (int)group_opts->routing);
	if (datapath_open(&dp, pin_dir, group_opts, err, sizeof(err))) {
		fprintf(stderr, "datapath_open: %s\n", err);
		return -1;
	}
	if (datapath_endpoint_put(dp, ip4(POD_A), &a))
		return -1;
	nk.ip = ip4(NODE2);
	nv.tunnel_endpoint = nk.ip;
	if (bpf_map_update_elem(datapath_ipcache_map_fd(dp), &nk, &nv, 0))
		return -1;
	/* The flattened deny lists: BAD_NET/24 with two exceptions, a /32,
	 * a port-scoped /16, and a /16 two rules deny. */
	put_lpm(BAD_NET, 24, 1ull << RULE_ALL, ENT_BAD);
	put_host(EXCEPT, 0, 0);
	put_lpm(EXCEPT_NET, 28, 0, 0);
	put_host(HOST32, 1ull << RULE_HOST, ENT_HOST);
	put_lpm(PORTS_NET, 16, 1ull << RULE_443, ENT_PORTS);
	put_lpm(BOTH_NET, 16, (1ull << RULE_BOTH_LO) | (1ull << RULE_BOTH_HI), ENT_BOTH);
	if (bpf_map_update_elem(datapath_pf_port_map_fd(dp), &pk, &port_rules, 0) ||
	    bpf_map_update_elem(datapath_pf_cfg_map_fd(dp), &zero, &cfg, 0))
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

/* Every test starts with the XDP program running the first stage. */
static int xdp_on(void **state)
{
	(void)state;
	set_xdp_active(1);
	return 0;
}

/* ---- the prefilter --------------------------------------------------- */

static void test_prefilter_hit_counted(void **state)
{
	struct frame f = make(BAD, NODE_IP, IPPROTO_TCP, 80, 20);
	struct sluice_metric e = ent(ENT_BAD), r = rul(RULE_ALL);
	__u64 drops = counter(SLUICE_DROP_PREFILTER), pass = counter(SLUICE_XDP_PASS);

	(void)state;
	assert_int_equal(xdp(&f, flen(&f)).retval, XDP_DROP);
	assert_int_equal(xdp(&f, flen(&f)).retval, XDP_DROP);
	assert_int_equal(counter(SLUICE_DROP_PREFILTER), drops + 2);
	assert_int_equal(counter(SLUICE_XDP_PASS), pass);
	/* Per entry and per rule, packets and bytes. */
	assert_int_equal(ent(ENT_BAD).packets, e.packets + 2);
	assert_int_equal(ent(ENT_BAD).bytes, e.bytes + 2 * flen(&f));
	assert_int_equal(rul(RULE_ALL).packets, r.packets + 2);
	assert_int_equal(rul(RULE_ALL).bytes, r.bytes + 2 * flen(&f));
}

static void test_prefilter_miss_passes(void **state)
{
	struct frame f = make(CLIENT, NODE_IP, IPPROTO_TCP, 80, 20);
	__u64 pass = counter(SLUICE_XDP_PASS), drops = counter(SLUICE_DROP_PREFILTER);
	struct run r;

	(void)state;
	r = xdp(&f, flen(&f));
	assert_int_equal(r.retval, XDP_PASS);
	assert_int_equal(r.out_len, flen(&f));
	assert_memory_equal(r.out, &f, flen(&f));
	assert_int_equal(counter(SLUICE_XDP_PASS), pass + 1);
	assert_int_equal(counter(SLUICE_DROP_PREFILTER), drops);
}

/* An except CIDR inside a denied one: rules 0, whether a /32 (hash) or a
 * shorter prefix (trie); the addresses around it stay denied. */
static void test_prefilter_exception_passes(void **state)
{
	struct frame in_hash = make(EXCEPT, NODE_IP, IPPROTO_UDP, 53, 8);
	struct frame in_trie = make("203.0.113.70", NODE_IP, IPPROTO_UDP, 53, 8);
	struct frame next = make("203.0.113.80", NODE_IP, IPPROTO_UDP, 53, 8);
	struct sluice_metric e = ent(ENT_BAD);

	(void)state;
	assert_int_equal(xdp(&in_hash, flen(&in_hash)).retval, XDP_PASS);
	assert_int_equal(xdp(&in_trie, flen(&in_trie)).retval, XDP_PASS);
	assert_int_equal(ent(ENT_BAD).packets, e.packets);
	assert_int_equal(xdp(&next, flen(&next)).retval, XDP_DROP);
	assert_int_equal(ent(ENT_BAD).packets, e.packets + 1);
}

static void test_prefilter_host_entry(void **state)
{
	struct frame f = make(HOST32, NODE_IP, IPPROTO_ICMP, 0, 8);
	struct frame near = make("198.51.100.8", NODE_IP, IPPROTO_ICMP, 0, 8);
	struct sluice_metric e = ent(ENT_HOST), r = rul(RULE_HOST);

	(void)state;
	assert_int_equal(xdp(&f, flen(&f)).retval, XDP_DROP);
	assert_int_equal(xdp(&near, flen(&near)).retval, XDP_PASS);
	assert_int_equal(ent(ENT_HOST).packets, e.packets + 1);
	assert_int_equal(ent(ENT_HOST).bytes, e.bytes + flen(&f));
	assert_int_equal(rul(RULE_HOST).packets, r.packets + 1);
}

/* A rule scoped to TCP 443: that port is dropped, another port, another
 * protocol, ICMP and later fragments (no port) pass; a first fragment
 * carries the port and is dropped. */
static void test_prefilter_port_scoped(void **state)
{
	struct frame hit = make("198.18.3.4", NODE_IP, IPPROTO_TCP, 443, 20);
	struct frame other_port = make("198.18.3.4", NODE_IP, IPPROTO_TCP, 80, 20);
	struct frame udp = make("198.18.3.4", NODE_IP, IPPROTO_UDP, 443, 8);
	struct frame icmp = make("198.18.3.4", NODE_IP, IPPROTO_ICMP, 0, 8);
	struct frame later = make("198.18.3.4", NODE_IP, IPPROTO_TCP, 443, 20);
	struct frame first = make("198.18.3.4", NODE_IP, IPPROTO_TCP, 443, 24);
	struct sluice_metric e = ent(ENT_PORTS), r = rul(RULE_443);

	(void)state;
	later.ip.frag_off = htons(3);		/* offset 24 bytes: ports bytes are payload */
	first.ip.frag_off = htons(0x2000);	/* MF, offset 0 */
	assert_int_equal(xdp(&hit, flen(&hit)).retval, XDP_DROP);
	assert_int_equal(xdp(&other_port, flen(&other_port)).retval, XDP_PASS);
	assert_int_equal(xdp(&udp, flen(&udp)).retval, XDP_PASS);
	assert_int_equal(xdp(&icmp, flen(&icmp)).retval, XDP_PASS);
	assert_int_equal(xdp(&later, flen(&later)).retval, XDP_PASS);
	assert_int_equal(xdp(&first, flen(&first)).retval, XDP_DROP);
	assert_int_equal(ent(ENT_PORTS).packets, e.packets + 2);
	assert_int_equal(rul(RULE_443).packets, r.packets + 2);
}

/* Two rules deny one prefix: the drop counts once, for the lowest rule
 * bit of those that matched the packet. */
static void test_prefilter_overlap_lowest_bit(void **state)
{
	struct frame p443 = make("198.19.1.1", NODE_IP, IPPROTO_TCP, 443, 20);
	struct frame p80 = make("198.19.1.1", NODE_IP, IPPROTO_TCP, 80, 20);
	struct sluice_metric lo = rul(RULE_BOTH_LO), hi = rul(RULE_BOTH_HI), e = ent(ENT_BOTH);

	(void)state;
	/* 443: both rules match, the lower (port-scoped) one counts. */
	assert_int_equal(xdp(&p443, flen(&p443)).retval, XDP_DROP);
	assert_int_equal(rul(RULE_BOTH_LO).packets, lo.packets + 1);
	assert_int_equal(rul(RULE_BOTH_HI).packets, hi.packets);
	/* 80: only the any-port rule (bit 40) matches: it counts. */
	assert_int_equal(xdp(&p80, flen(&p80)).retval, XDP_DROP);
	assert_int_equal(rul(RULE_BOTH_LO).packets, lo.packets + 1);
	assert_int_equal(rul(RULE_BOTH_HI).packets, hi.packets + 1);
	assert_int_equal(ent(ENT_BOTH).packets, e.packets + 2);
}

/* An entry slot beyond the counters' is collected in entry 0. */
static void test_prefilter_entry_out_of_range(void **state)
{
	struct frame f = make("100.64.0.1", NODE_IP, IPPROTO_UDP, 9, 8);
	struct sluice_metric z = ent(0), m;

	(void)state;
	assert_int_equal(datapath_pf_entry_counter(dp, SLUICE_PF_ENTRY_SLOTS, &m), -ENOENT);
	assert_int_equal(datapath_pf_rule_counter(dp, SLUICE_PF_RULES_MAX, &m), -ENOENT);
	put_lpm("100.64.0.0", 24, 1ull << RULE_ALL, SLUICE_PF_ENTRY_SLOTS + 5);
	assert_int_equal(xdp(&f, flen(&f)).retval, XDP_DROP);
	assert_int_equal(ent(0).packets, z.packets + 1);
}

/* ---- malformed frames ------------------------------------------------ */

/* Every length short of the whole frame, from nothing to a full header:
 * the kernel refuses to run a frame shorter than Ethernet (so does a
 * driver); from there on, each cut is dropped as malformed. */
static void test_truncated_each_length(void **state)
{
	struct frame f = make(CLIENT, NODE_IP, IPPROTO_TCP, 80, 20);
	__u64 mal = counter(SLUICE_DROP_XDP_MALFORMED);
	size_t full = flen(&f), n = 0;

	(void)state;
	for (size_t len = 0; len < sizeof(struct ethhdr); len++)
		assert_int_equal(run_fd(datapath_xdp_prog_fd(dp), &f, (__u32)len).err, EINVAL);
	for (size_t len = sizeof(struct ethhdr); len < full; len++, n++)
		assert_int_equal(xdp(&f, len).retval, XDP_DROP);
	assert_int_equal(counter(SLUICE_DROP_XDP_MALFORMED), mal + n);
	assert_int_equal(xdp(&f, full).retval, XDP_PASS);
	/* Ethernet padding (a frame longer than its datagram) is fine. */
	assert_int_equal(xdp(&f, full + 6).retval, XDP_PASS);
}

static void test_malformed_headers(void **state)
{
	struct frame f[7];
	__u64 mal = counter(SLUICE_DROP_XDP_MALFORMED);
	size_t i;

	(void)state;
	for (i = 0; i < 7; i++)
		f[i] = make(CLIENT, NODE_IP, IPPROTO_UDP, 53, 8);
	f[0].ip.ihl = 4;				/* below the minimum */
	f[1].ip.ihl = 0;
	f[2].ip.version = 6;				/* not IPv4 under an IPv4 EtherType */
	f[3].ip.tot_len = htons(19);			/* below the header */
	f[4].ip.tot_len = htons(200);			/* beyond the frame */
	f[5].ip.ihl = 15;				/* options beyond the frame */
	f[6].ip.tot_len = htons(20 + 3);		/* UDP without its ports */
	for (i = 0; i < 7; i++)
		assert_int_equal(xdp(&f[i], sizeof(f[i].eth) + 20 + 8).retval, XDP_DROP);
	assert_int_equal(counter(SLUICE_DROP_XDP_MALFORMED), mal + 7);
}

/* IP options move the ports: a port-scoped rule still finds them. */
static void test_ip_options(void **state)
{
	struct frame f = make("198.18.3.4", NODE_IP, IPPROTO_TCP, 80, 20 + 8);
	struct frame g;

	(void)state;
	f.ip.ihl = 7;			/* 8 bytes of options (NOPs) */
	memmove(f.raw + 8, f.raw, 20);
	memset(f.raw, 1, 8);
	assert_int_equal(xdp(&f, flen(&f)).retval, XDP_PASS);
	g = f;
	g.raw[8 + 2] = 443 >> 8;
	g.raw[8 + 3] = 443 & 0xff;
	assert_int_equal(xdp(&g, flen(&g)).retval, XDP_DROP);
}

static void test_non_ipv4_passes_untouched(void **state)
{
	unsigned char arp[42] = { 0 }, v6[54] = { 0 };
	__u64 pass = counter(SLUICE_XDP_PASS);
	struct run r;

	(void)state;
	memset(arp, 0xff, 6);
	arp[12] = 0x08, arp[13] = 0x06;
	memset(arp + 14, 0xab, sizeof(arp) - 14);
	v6[12] = 0x86, v6[13] = 0xdd;
	v6[14] = 0x60;
	memset(v6 + 22, 0xcb, 32);	/* addresses: a denied IPv4 source would read 0xcb... */
	r = xdp(arp, sizeof(arp));
	assert_int_equal(r.retval, XDP_PASS);
	assert_memory_equal(r.out, arp, sizeof(arp));
	r = xdp(v6, sizeof(v6));
	assert_int_equal(r.retval, XDP_PASS);
	assert_memory_equal(r.out, v6, sizeof(v6));
	assert_int_equal(counter(SLUICE_XDP_PASS), pass + 2);
}

/* ---- sanity drops ---------------------------------------------------- */

static void test_spoofed_pod_cidr_source(void **state)
{
	struct frame spoof = make(IN_POD_CIDR, POD_A, IPPROTO_TCP, 80, 20);
	struct frame to_node = make(IN_POD_CIDR, NODE_IP, IPPROTO_TCP, 80, 20);
	struct frame outside = make(CLIENT, POD_A, IPPROTO_TCP, 80, 20);
	struct frame other_pod_net = make("10.77.1.5", POD_A, IPPROTO_TCP, 80, 20);
	__u64 drops = counter(SLUICE_DROP_XDP_SPOOF);

	(void)state;
	assert_int_equal(xdp(&spoof, flen(&spoof)).retval, XDP_DROP);
	assert_int_equal(counter(SLUICE_DROP_XDP_SPOOF), drops + 1);
	/* Not to a pod, from outside the pod CIDR, from another node's
	 * pods: left to the tc path (which has its own checks). */
	assert_int_equal(xdp(&to_node, flen(&to_node)).retval, XDP_PASS);
	assert_int_equal(xdp(&outside, flen(&outside)).retval, XDP_PASS);
	assert_int_equal(xdp(&other_pod_net, flen(&other_pod_net)).retval, XDP_PASS);
	assert_int_equal(counter(SLUICE_DROP_XDP_SPOOF), drops + 1);
}

static void test_tunnel_source(void **state)
{
	struct frame forged = make(CLIENT, NODE_IP, IPPROTO_UDP, SLUICE_VXLAN_PORT, 8 + 8);
	struct frame node = make(NODE2, NODE_IP, IPPROTO_UDP, SLUICE_VXLAN_PORT, 8 + 8);
	struct frame later = make(CLIENT, NODE_IP, IPPROTO_UDP, SLUICE_VXLAN_PORT, 8 + 8);
	struct frame to_pod = make(CLIENT, POD_A, IPPROTO_UDP, SLUICE_VXLAN_PORT, 8 + 8);
	struct frame other_port = make(CLIENT, NODE_IP, IPPROTO_UDP, 4789, 8 + 8);
	__u64 drops = counter(SLUICE_DROP_XDP_TUNNEL);

	(void)state;
	later.ip.frag_off = htons(2);	/* a later fragment whose payload reads as port 8472 */
	assert_int_equal(xdp(&forged, flen(&forged)).retval, XDP_DROP);
	assert_int_equal(counter(SLUICE_DROP_XDP_TUNNEL), drops + 1);
	assert_int_equal(xdp(&node, flen(&node)).retval, XDP_PASS);
	assert_int_equal(xdp(&later, flen(&later)).retval, XDP_PASS);
	/* A pod's own UDP service on that port: its policy decides. */
	assert_int_equal(xdp(&to_pod, flen(&to_pod)).retval, XDP_PASS);
	assert_int_equal(xdp(&other_port, flen(&other_port)).retval, XDP_PASS);
	assert_int_equal(counter(SLUICE_DROP_XDP_TUNNEL), drops + 1);
}

/* Native routing has no tunnel: UDP to port 8472 is anybody's, and the
 * spoof check holds as in overlay mode. */
static void test_native_no_tunnel_check(void **state)
{
	struct frame udp = make(CLIENT, NODE_IP, IPPROTO_UDP, SLUICE_VXLAN_PORT, 8 + 8);
	struct frame spoof = make(IN_POD_CIDR, POD_A, IPPROTO_TCP, 80, 20);
	__u64 tun = counter(SLUICE_DROP_XDP_TUNNEL), sp = counter(SLUICE_DROP_XDP_SPOOF);

	(void)state;
	assert_int_equal(xdp(&udp, flen(&udp)).retval, XDP_PASS);
	assert_int_equal(counter(SLUICE_DROP_XDP_TUNNEL), tun);
	assert_int_equal(xdp(&spoof, flen(&spoof)).retval, XDP_DROP);
	assert_int_equal(counter(SLUICE_DROP_XDP_SPOOF), sp + 1);
}

/* ---- the tc fallback ------------------------------------------------- */

static struct run netdev(const void *data, size_t len)
{
	struct run r = run_fd(datapath_node_prog_fd(dp, HOOK_NETDEV), data, (__u32)len);

	if (r.err)
		fail_msg("BPF_PROG_TEST_RUN (from_netdev) failed: %s", strerror(r.err));
	return r;
}

/* Without XDP, from_netdev drops what XDP would, for the same reasons;
 * with it, from_netdev leaves the first stage to XDP (does not look). */
static void test_tc_fallback(void **state)
{
	struct frame bad = make(BAD, NODE_IP, IPPROTO_TCP, 80, 20);
	struct frame spoof = make(IN_POD_CIDR, POD_A, IPPROTO_TCP, 80, 20);
	struct frame mal = make(CLIENT, NODE_IP, IPPROTO_UDP, 53, 8);
	struct sluice_metric e = ent(ENT_BAD);
	__u64 drops = counter(SLUICE_DROP_PREFILTER), sp = counter(SLUICE_DROP_XDP_SPOOF);
	__u64 m = counter(SLUICE_DROP_XDP_MALFORMED), pass = counter(SLUICE_XDP_PASS);

	(void)state;
	mal.ip.tot_len = htons(200);
	set_xdp_active(0);
	assert_int_equal(netdev(&bad, flen(&bad)).retval, TC_ACT_SHOT);
	assert_int_equal(netdev(&spoof, flen(&spoof)).retval, TC_ACT_SHOT);
	assert_int_equal(netdev(&mal, sizeof(mal.eth) + 28).retval, TC_ACT_SHOT);
	assert_int_equal(counter(SLUICE_DROP_PREFILTER), drops + 1);
	assert_int_equal(counter(SLUICE_DROP_XDP_SPOOF), sp + 1);
	assert_int_equal(counter(SLUICE_DROP_XDP_MALFORMED), m + 1);
	assert_int_equal(ent(ENT_BAD).packets, e.packets + 1);
	assert_int_equal(ent(ENT_BAD).bytes, e.bytes + flen(&bad));
	/* tc never counts an XDP verdict. */
	assert_int_equal(counter(SLUICE_XDP_PASS), pass);

	set_xdp_active(1);
	assert_int_not_equal(netdev(&bad, flen(&bad)).retval, TC_ACT_SHOT);
	assert_int_equal(counter(SLUICE_DROP_PREFILTER), drops + 1);
	assert_int_equal(ent(ENT_BAD).packets, e.packets + 1);
}

/* BIG TCP: an aggregated skb beyond 64 KiB has total length 0; at tc
 * that is no malformed header (XDP never sees an aggregate). */
static void test_tc_gso_total_length_zero(void **state)
{
	struct frame f = make(CLIENT, NODE_IP, IPPROTO_TCP, 80, 20);
	__u64 mal = counter(SLUICE_DROP_XDP_MALFORMED);
	struct __sk_buff ctx = { .gso_size = 1400, .gso_segs = 2 };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = &f, .data_size_in = (__u32)flen(&f),
		    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = 1);

	(void)state;
	set_xdp_active(0);
	f.ip.tot_len = 0;
	assert_int_equal(bpf_prog_test_run_opts(datapath_node_prog_fd(dp, HOOK_NETDEV), &opts), 0);
	assert_int_not_equal((int)opts.retval, TC_ACT_SHOT);
	assert_int_equal(counter(SLUICE_DROP_XDP_MALFORMED), mal);
	/* Not aggregated: malformed. */
	assert_int_equal(netdev(&f, sizeof(f.eth) + 40).retval, TC_ACT_SHOT);
	assert_int_equal(counter(SLUICE_DROP_XDP_MALFORMED), mal + 1);
	set_xdp_active(1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_prefilter_hit_counted, xdp_on),
		cmocka_unit_test_setup(test_prefilter_miss_passes, xdp_on),
		cmocka_unit_test_setup(test_prefilter_exception_passes, xdp_on),
		cmocka_unit_test_setup(test_prefilter_host_entry, xdp_on),
		cmocka_unit_test_setup(test_prefilter_port_scoped, xdp_on),
		cmocka_unit_test_setup(test_prefilter_overlap_lowest_bit, xdp_on),
		cmocka_unit_test_setup(test_prefilter_entry_out_of_range, xdp_on),
		cmocka_unit_test_setup(test_truncated_each_length, xdp_on),
		cmocka_unit_test_setup(test_malformed_headers, xdp_on),
		cmocka_unit_test_setup(test_ip_options, xdp_on),
		cmocka_unit_test_setup(test_non_ipv4_passes_untouched, xdp_on),
		cmocka_unit_test_setup(test_spoofed_pod_cidr_source, xdp_on),
		cmocka_unit_test_setup(test_tunnel_source, xdp_on),
		cmocka_unit_test_setup(test_tc_fallback, xdp_on),
		cmocka_unit_test_setup(test_tc_gso_total_length_zero, xdp_on),
	};

	const struct CMUnitTest native[] = {
		cmocka_unit_test_setup(test_native_no_tunnel_check, xdp_on),
		cmocka_unit_test_setup(test_prefilter_hit_counted, xdp_on),
	};
	int failed;

	log_init("test_bpf_xdp", LOG_WARN);
	group_opts = &opts;
	failed = cmocka_run_group_tests_name("bpf-xdp", tests, group_setup, group_teardown);
	group_opts = &native_opts;
	failed += cmocka_run_group_tests_name("bpf-xdp-native", native, group_setup, group_teardown);
	return failed;
}
