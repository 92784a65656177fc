// SPDX-License-Identifier: Apache-2.0
/*
 * Flow state and records (bpf/lib/flow.h, flow_tcp.h) through the real
 * pod programs and BPF_PROG_TEST_RUN: what sluice_flow4_v1 holds and what
 * reaches the ring buffer sluice_flowrb_v1 for forwarded, policy-dropped,
 * audited, spoofed and truncated packets; the drop rate limit; END, UPDATE;
 * the passive round trip from TCP timestamps and retransmissions; and
 * cfg_flows 0. With --bench: the cost per packet, flows on and off.
 * Maps are pinned in throwaway bpffs directories removed whatever happens.
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
#include <time.h>
#include <unistd.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <cmocka.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "loader.h"
#include "pkt_util.h"

#define IFINDEX_LO 1 /* test runs see skb->dev = loopback: pod A's veth */
#define IP_A "10.77.0.2"
#define IP_B "10.77.0.3"
#define ID_A 300
#define ID_B 301
#define RULE_ALLOW 0x1234u
#define RULE_DENY 0x5678u
#define RULE_AUDIT_DENY 0x9abcu

/* The datapaths under test (flows on, flows off) and pod B's veth: one
 * set per process, made in main, torn down at its end. */
static struct datapath *dp, *dp_off;
static char pin_dir[64], pin_dir_off[64];
static int ifindex_b;

/* Records the ring buffer callback collected since the last drain (the
 * first MAX_RECS; nrecs counts them all). */
#define MAX_RECS 64
static struct sluice_flow4_record recs[MAX_RECS];
static int nrecs;

struct tcp_pkt {
	struct ethhdr eth;
	struct iphdr ip;
	struct tcphdr tcp;
	unsigned char rest[32];	/* options (0, 12 or 16 bytes), then the payload */
} __attribute__((packed));

struct tcp_seg {
	const char *src, *dst;
	__u16 sport, dport;
	__u8 flags;		/* TCP_FLAG_* */
	__u32 seq;
	__u16 len;		/* payload bytes, at most 16 */
	int ts;			/* 1: NOP NOP TS (Linux's data); 2: MSS SACKOK TS (Linux's SYN); 0: none */
	__u32 tsval, tsecr;
};

#define F_FIN 0x01
#define F_SYN 0x02
#define F_RST 0x04
#define F_ACK 0x10

static void put32(unsigned char *p, __u32 v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

/* The segment's frame; *len its bytes. */
static struct tcp_pkt make_tcp(const struct tcp_seg *s, __u32 *len)
{
	struct tcp_pkt p = { 0 };
	__u32 olen = s->ts == 1 ? 12 : s->ts == 2 ? 16 : 0;
	unsigned char *o = p.rest;

	p.eth.h_proto = htons(ETH_P_IP);
	p.eth.h_source[0] = 2;
	p.eth.h_dest[0] = 2;
	p.ip.version = 4;
	p.ip.ihl = 5;
	p.ip.ttl = 64;
	p.ip.protocol = IPPROTO_TCP;
	p.ip.saddr = ip4(s->src);
	p.ip.daddr = ip4(s->dst);
	p.ip.tot_len = htons((__u16)(sizeof(p.ip) + sizeof(p.tcp) + olen + s->len));
	p.ip.check = ip_checksum(&p.ip, sizeof(p.ip));
	p.tcp.source = htons(s->sport);
	p.tcp.dest = htons(s->dport);
	p.tcp.seq = htonl(s->seq);
	p.tcp.doff = (__u16)((sizeof(p.tcp) + olen) / 4);
	((unsigned char *)&p.tcp)[13] = s->flags;
	if (s->ts == 1) {
		o[0] = o[1] = 1;
		o += 2;
	} else if (s->ts == 2) {
		o[0] = 2; /* MSS 1460 */
		o[1] = 4;
		o[2] = 0x05;
		o[3] = 0xb4;
		o[4] = 4; /* SACK permitted */
		o[5] = 2;
		o += 6;
	}
	if (s->ts) {
		o[0] = 8;
		o[1] = 10;
		put32(o + 2, s->tsval);
		put32(o + 6, s->tsecr);
	}
	memset(p.rest + olen, 0x5a, s->len);
	*len = (__u32)(offsetof(struct tcp_pkt, rest) + olen + s->len);
	return p;
}

/* Run from_pod of d (the pod's veth: ifindex) on the segment. */
static int run_seg(struct datapath *d, const struct tcp_seg *s, int ifindex)
{
	__u32 len;
	struct tcp_pkt p = make_tcp(s, &len);
	unsigned char out[256];
	struct __sk_buff ctx = { .ifindex = (__u32)ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = &p, .data_size_in = len, .data_out = out,
		    .data_size_out = sizeof(out), .repeat = 1,
		    .ctx_in = ifindex > 1 ? &ctx : NULL, .ctx_size_in = ifindex > 1 ? sizeof(ctx) : 0);

	if (bpf_prog_test_run_opts(datapath_prog_fd(d, 1), &opts))
		fail_msg("BPF_PROG_TEST_RUN failed: %s", strerror(errno));
	return (int)opts.retval;
}

/* A's segment (from A's veth), B's (from B's). */
static int from_a(const struct tcp_seg *s)
{
	return run_seg(dp, s, IFINDEX_LO);
}

static int from_b(const struct tcp_seg *s)
{
	return run_seg(dp, s, ifindex_b);
}

static int on_record(void *ctx, void *data, size_t size)
{
	(void)ctx;
	assert_int_equal(size, sizeof(struct sluice_flow4_record));
	if (nrecs < MAX_RECS)
		memcpy(&recs[nrecs], data, sizeof(recs[0]));
	nrecs++;
	return 0;
}

/* Take what the ring buffer of d holds into recs. */
static int drain(struct datapath *d)
{
	struct ring_buffer *rb = ring_buffer__new(datapath_flow_rb_fd(d), on_record, NULL, NULL);

	assert_non_null(rb);
	nrecs = 0;
	assert_true(ring_buffer__consume(rb) >= 0);
	ring_buffer__free(rb);
	return nrecs;
}

static struct sluice_ct_key tuple(const char *src, const char *dst, __u16 sport, __u16 dport)
{
	struct sluice_ct_key k = { .saddr = ip4(src), .daddr = ip4(dst), .sport = htons(sport),
				   .dport = htons(dport), .proto = IPPROTO_TCP };
	return k;
}

static int flow_get(struct datapath *d, const struct sluice_ct_key *k, struct sluice_flow4_value *v)
{
	return bpf_map_lookup_elem(datapath_flow4_map_fd(d), k, v);
}

static void flow_put(const struct sluice_ct_key *k, const struct sluice_flow4_value *v)
{
	assert_int_equal(bpf_map_update_elem(datapath_flow4_map_fd(dp), k, v, BPF_EXIST), 0);
}

static __u64 flow_stat(struct datapath *d, __u32 stat)
{
	int ncpu = libbpf_num_possible_cpus();
	__u64 vals[ncpu > 0 ? ncpu : 1], sum = 0;

	assert_int_equal(bpf_map_lookup_elem(datapath_flow_st_fd(d), &stat, vals), 0);
	for (int i = 0; i < ncpu; i++)
		sum += vals[i];
	return sum;
}

static __u64 mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ull + (__u64)ts.tv_nsec;
}

static void set_flags(struct datapath *d, const char *ip, __u32 ifindex, __u32 id, __u32 flags)
{
	struct sluice_endpoint ep = { .ifindex = ifindex, .identity = id, .flags = flags };

	ep.pod_mac[0] = ep.lxc_mac[0] = 2;
	assert_int_equal(datapath_endpoint_put(d, ip4(ip), &ep), 0);
}

/* A policy entry for A's egress (tier: 0 enforcing, 1 audit) to TCP port. */
static void policy_put(int deny, int tier, __u16 port, __u32 rule)
{
	struct sluice_policy_key k = { .prefixlen = SLUICE_POLICY_KEY_BITS, .ep = IFINDEX_LO,
				       .identity = SLUICE_ID_ANY,
				       .dir = (__u8)(SLUICE_DIR_EGRESS | tier << 1),
				       .proto = IPPROTO_TCP, .port = htons(port) };
	struct sluice_policy_value v = { .rule = rule };
	int fd = deny ? datapath_deny_map_fd(dp) : datapath_policy_map_fd(dp);

	assert_int_equal(bpf_map_update_elem(fd, &k, &v, BPF_ANY), 0);
}

/* Each test starts from A and B not isolated and an empty ring buffer. */
static int reset(void **state)
{
	(void)state;
	set_flags(dp, IP_A, IFINDEX_LO, ID_A, 0);
	set_flags(dp, IP_B, (__u32)ifindex_b, ID_B, 0);
	drain(dp);
	return 0;
}

static void test_forwarded_flow(void **state)
{
	struct tcp_seg syn = { IP_A, IP_B, 40001, 80, F_SYN, 100, 0, 0, 0, 0 };
	struct tcp_seg synack = { IP_B, IP_A, 80, 40001, F_SYN | F_ACK, 500, 0, 0, 0, 0 };
	struct sluice_ct_key k = tuple(IP_A, IP_B, 40001, 80);
	struct sluice_flow4_value v;
	__u64 t0 = mono_ns();

	(void)state;
	assert_int_equal(from_a(&syn), TC_ACT_REDIRECT);
	assert_int_equal(drain(dp), 1);
	assert_int_equal(recs[0].event, SLUICE_FLOW_EV_START);
	assert_int_equal(recs[0].verdict, SLUICE_FLOW_FORWARDED);
	assert_int_equal(recs[0].reason, SLUICE_FWD_LOCAL);
	assert_memory_equal(&recs[0].key, &k, sizeof(k));
	assert_int_equal(recs[0].src_identity, ID_A);
	assert_int_equal(recs[0].dst_identity, ID_B);
	assert_int_equal(recs[0].policy_rule, SLUICE_FLOW_RULE_NONE);
	assert_int_equal(recs[0].ifindex, IFINDEX_LO);
	assert_int_equal(recs[0].dir, SLUICE_DIR_EGRESS);
	assert_int_equal(recs[0].pkt_dir, 0);
	assert_int_equal(recs[0].packets[0], 1);
	assert_int_equal(recs[0].bytes[0], sizeof(struct ethhdr) + 40);
	assert_int_equal(recs[0].tcp_flags[0], F_SYN);
	assert_true(recs[0].time >= t0 && recs[0].time <= mono_ns());
	assert_int_equal(recs[0].first_seen, recs[0].time);

	/* The reply counts in direction 1 of the same entry: no record. */
	assert_int_equal(from_b(&synack), TC_ACT_REDIRECT);
	assert_int_equal(drain(dp), 0);
	assert_int_equal(flow_get(dp, &k, &v), 0);
	assert_int_equal(v.packets[0], 1);
	assert_int_equal(v.packets[1], 1);
	assert_int_equal(v.tcp_flags[1], F_SYN | F_ACK);
	assert_int_equal(v.drops, 0);
}

static void test_policy_dropped_flows_name_the_rule(void **state)
{
	struct tcp_seg ok = { IP_A, IP_B, 40002, 80, F_SYN, 1, 0, 0, 0, 0 };
	struct tcp_seg none = { IP_A, IP_B, 40002, 81, F_SYN, 1, 0, 0, 0, 0 };
	struct tcp_seg denied = { IP_A, IP_B, 40002, 82, F_SYN, 1, 0, 0, 0, 0 };
	struct sluice_ct_key k = tuple(IP_A, IP_B, 40002, 81);
	struct sluice_flow4_value v;

	(void)state;
	set_flags(dp, IP_A, IFINDEX_LO, ID_A, SLUICE_EP_F_ISO_EGRESS);
	policy_put(0, 0, 80, RULE_ALLOW);
	policy_put(0, 0, 82, RULE_ALLOW);
	policy_put(1, 0, 82, RULE_DENY);

	assert_int_equal(from_a(&ok), TC_ACT_REDIRECT);
	assert_int_equal(from_a(&none), TC_ACT_SHOT);
	assert_int_equal(from_a(&denied), TC_ACT_SHOT);
	assert_int_equal(drain(dp), 3);
	assert_int_equal(recs[0].verdict, SLUICE_FLOW_FORWARDED);
	assert_int_equal(recs[0].policy_rule, RULE_ALLOW);
	assert_int_equal(recs[1].event, SLUICE_FLOW_EV_START);
	assert_int_equal(recs[1].verdict, SLUICE_FLOW_DROPPED);
	assert_int_equal(recs[1].reason, SLUICE_DROP_POLICY);
	assert_int_equal(recs[1].policy_rule, SLUICE_FLOW_RULE_DEFAULT);
	assert_int_equal(recs[1].drops, 1);
	assert_memory_equal(&recs[1].key, &k, sizeof(k));
	assert_int_equal(recs[2].reason, SLUICE_DROP_POLICY_DENY);
	assert_int_equal(recs[2].policy_rule, RULE_DENY);
	assert_int_equal(flow_get(dp, &k, &v), 0);
	assert_int_equal(v.verdict, SLUICE_FLOW_DROPPED);
}

static void test_audit_flow(void **state)
{
	struct tcp_seg syn = { IP_A, IP_B, 40003, 83, F_SYN, 1, 0, 0, 0, 0 };
	struct tcp_seg syn2 = { IP_A, IP_B, 40003, 84, F_SYN, 1, 0, 0, 0, 0 };

	(void)state;
	set_flags(dp, IP_A, IFINDEX_LO, ID_A, SLUICE_EP_F_AUDIT_ISO_EGRESS);
	policy_put(1, 1, 84, RULE_AUDIT_DENY);
	assert_int_equal(from_a(&syn), TC_ACT_REDIRECT);
	assert_int_equal(from_a(&syn2), TC_ACT_REDIRECT);
	assert_int_equal(drain(dp), 2);
	assert_int_equal(recs[0].verdict, SLUICE_FLOW_AUDIT);
	assert_int_equal(recs[0].reason, SLUICE_FWD_LOCAL);
	assert_int_equal(recs[0].policy_rule, SLUICE_FLOW_RULE_DEFAULT);
	assert_int_equal(recs[1].verdict, SLUICE_FLOW_AUDIT);
	assert_int_equal(recs[1].policy_rule, RULE_AUDIT_DENY);
}

/* A forged source has a tuple: recorded. So has a frame cut inside its
 * TCP header, past the ports (drop-truncated, as "why can't A reach B"
 * wants it); one cut inside its IPv4 header (options included) has none: counted in
 * sluice_stats_v2 only, no entry, no record. */
static void test_spoofed_and_truncated(void **state)
{
	struct tcp_seg spoof = { "10.77.0.99", IP_B, 40004, 80, F_SYN, 1, 0, 0, 0, 0 };
	struct sluice_ct_key k = tuple("10.77.0.99", IP_B, 40004, 80);
	struct tcp_seg cut = { IP_A, IP_B, 40005, 80, F_SYN, 1, 0, 0, 0, 0 };
	struct sluice_ct_key kc = tuple(IP_A, IP_B, 40005, 80);
	struct sluice_flow4_value v;
	unsigned char out[128];
	__u32 len;
	struct tcp_pkt p = make_tcp(&cut, &len);
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = &p,
		    .data_size_in = sizeof(struct ethhdr) + sizeof(struct iphdr) + 10,
		    .data_out = out, .data_size_out = sizeof(out), .repeat = 1);

	(void)state;
	assert_int_equal(from_a(&spoof), TC_ACT_SHOT);
	assert_int_equal(drain(dp), 1);
	assert_int_equal(recs[0].verdict, SLUICE_FLOW_DROPPED);
	assert_int_equal(recs[0].reason, SLUICE_DROP_SPOOFED);
	assert_int_equal(recs[0].ifindex, IFINDEX_LO);
	assert_int_equal(recs[0].policy_rule, SLUICE_FLOW_RULE_NONE);
	assert_memory_equal(&recs[0].key, &k, sizeof(k));

	assert_int_equal(bpf_prog_test_run_opts(datapath_prog_fd(dp, 1), &opts), 0);
	assert_int_equal(opts.retval, TC_ACT_SHOT);
	assert_int_equal(drain(dp), 1);
	assert_int_equal(recs[0].reason, SLUICE_DROP_TRUNCATED);
	assert_memory_equal(&recs[0].key, &kc, sizeof(kc));

	/* (The kernel's test runner refuses IPv4 frames shorter than a bare
	 * IP header: the header is cut by an IHL that claims options past
	 * the end.) */
	kc.sport = htons(40015);
	p.tcp.source = kc.sport;
	p.ip.ihl = 15;
	opts.data_size_out = sizeof(out);
	assert_int_equal(bpf_prog_test_run_opts(datapath_prog_fd(dp, 1), &opts), 0);
	assert_int_equal(opts.retval, TC_ACT_SHOT);
	assert_int_equal(drain(dp), 0);
	assert_int_equal(flow_get(dp, &kc, &v), -ENOENT);
}

static void test_drop_rate_limit(void **state)
{
	struct tcp_seg syn = { IP_A, IP_B, 40006, 81, F_SYN, 1, 0, 0, 0, 0 };
	struct sluice_ct_key k = tuple(IP_A, IP_B, 40006, 81);
	__u64 limited = flow_stat(dp, SLUICE_FLOW_ST_RATE_LIMITED);
	struct sluice_flow4_value v;

	(void)state;
	set_flags(dp, IP_A, IFINDEX_LO, ID_A, SLUICE_EP_F_ISO_EGRESS);
	for (int i = 0; i < 10; i++)
		assert_int_equal(from_a(&syn), TC_ACT_SHOT);
	assert_int_equal(drain(dp), 1);
	assert_int_equal(recs[0].event, SLUICE_FLOW_EV_START);
	assert_int_equal(flow_stat(dp, SLUICE_FLOW_ST_RATE_LIMITED), limited + 9);
	assert_int_equal(flow_get(dp, &k, &v), 0);
	assert_int_equal(v.drops, 10);
	assert_int_equal(v.drops_suppressed, 9);
	/* A second on: the next drop is reported, with the nine held back. */
	v.last_report -= SLUICE_FLOW_DROP_INTERVAL_NS + 1000;
	flow_put(&k, &v);
	assert_int_equal(from_a(&syn), TC_ACT_SHOT);
	assert_int_equal(drain(dp), 1);
	assert_int_equal(recs[0].event, SLUICE_FLOW_EV_DROP);
	assert_int_equal(recs[0].drops_suppressed, 9);
	assert_int_equal(recs[0].drops, 11);
	assert_int_equal(recs[0].packets[0], 11);
	assert_int_equal(flow_get(dp, &k, &v), 0);
	assert_int_equal(v.drops_suppressed, 0);
}

static void test_end_on_fin_both_ways(void **state)
{
	struct tcp_seg syn = { IP_A, IP_B, 40007, 80, F_SYN, 1, 0, 0, 0, 0 };
	struct tcp_seg fin_a = { IP_A, IP_B, 40007, 80, F_FIN | F_ACK, 2, 0, 0, 0, 0 };
	struct tcp_seg fin_b = { IP_B, IP_A, 80, 40007, F_FIN | F_ACK, 9, 0, 0, 0, 0 };
	struct tcp_seg ack = { IP_A, IP_B, 40007, 80, F_ACK, 3, 0, 0, 0, 0 };

	(void)state;
	from_a(&syn);
	from_a(&fin_a);
	assert_int_equal(drain(dp), 1); /* START only: one FIN is half a close */
	from_b(&fin_b);
	assert_int_equal(drain(dp), 1);
	assert_int_equal(recs[0].event, SLUICE_FLOW_EV_END);
	assert_int_equal(recs[0].pkt_dir, 1);
	assert_int_equal(recs[0].packets[0], 2);
	assert_int_equal(recs[0].packets[1], 1);
	assert_true(recs[0].tcp_flags[0] & F_FIN);
	assert_true(recs[0].tcp_flags[1] & F_FIN);
	from_a(&ack); /* the last ACK: the END was said once */
	assert_int_equal(drain(dp), 0);
}

static void test_end_on_rst_and_restart(void **state)
{
	struct tcp_seg syn = { IP_A, IP_B, 40008, 80, F_SYN, 1, 0, 0, 0, 0 };
	struct tcp_seg rst = { IP_B, IP_A, 80, 40008, F_RST | F_ACK, 0, 0, 0, 0, 0 };

	(void)state;
	from_a(&syn);
	from_b(&rst);
	assert_int_equal(drain(dp), 2);
	assert_int_equal(recs[1].event, SLUICE_FLOW_EV_END);
	assert_true(recs[1].tcp_flags[1] & F_RST);
	/* A new connection on the same tuple is a new flow. */
	syn.seq = 7777;
	assert_int_equal(from_a(&syn), TC_ACT_REDIRECT);
	assert_int_equal(drain(dp), 1);
	assert_int_equal(recs[0].event, SLUICE_FLOW_EV_START);
	assert_int_equal(recs[0].packets[0], 1);
	assert_int_equal(recs[0].packets[1], 0);
}

static void test_update_after_interval(void **state)
{
	struct tcp_seg syn = { IP_A, IP_B, 40009, 80, F_SYN, 1, 0, 0, 0, 0 };
	struct tcp_seg ack = { IP_A, IP_B, 40009, 80, F_ACK, 2, 0, 0, 0, 0 };
	struct sluice_ct_key k = tuple(IP_A, IP_B, 40009, 80);
	struct sluice_flow4_value v;

	(void)state;
	from_a(&syn);
	from_a(&ack);
	assert_int_equal(drain(dp), 1);
	assert_int_equal(flow_get(dp, &k, &v), 0);
	v.last_report -= SLUICE_FLOW_REPORT_INTERVAL_NS - 1000000000ull; /* 9 s old */
	flow_put(&k, &v);
	from_a(&ack);
	assert_int_equal(drain(dp), 0);
	assert_int_equal(flow_get(dp, &k, &v), 0);
	v.last_report -= 2000000000ull; /* 11 s */
	flow_put(&k, &v);
	from_a(&ack);
	assert_int_equal(drain(dp), 1);
	assert_int_equal(recs[0].event, SLUICE_FLOW_EV_UPDATE);
	assert_int_equal(recs[0].packets[0], 4);
	from_a(&ack);
	assert_int_equal(drain(dp), 0);
}

static void test_rtt_from_timestamps(void **state)
{
	struct tcp_seg syn = { IP_A, IP_B, 40010, 80, F_SYN, 1000, 0, 1, 5000, 0 };
	struct tcp_seg synack = { IP_B, IP_A, 80, 40010, F_SYN | F_ACK, 9000, 0, 1, 70000, 5000 };
	struct tcp_seg data = { IP_A, IP_B, 40010, 80, F_ACK, 1001, 10, 1, 5010, 70000 };
	struct tcp_seg ack = { IP_B, IP_A, 80, 40010, F_ACK, 9001, 0, 1, 70010, 5010 };
	struct sluice_ct_key k = tuple(IP_A, IP_B, 40010, 80);
	struct sluice_flow4_value v;

	(void)state;
	from_a(&syn);
	assert_int_equal(flow_get(dp, &k, &v), 0);
	assert_true(v.flags & SLUICE_FLOW_F_TS0);
	assert_int_equal(v.ts_val[0], 5000);
	/* The sample began 5 ms ago. */
	v.ts_time[0] = mono_ns() - 5000000;
	flow_put(&k, &v);
	from_b(&synack); /* echoes 5000: one sample; starts B's own (SYN) */
	assert_int_equal(flow_get(dp, &k, &v), 0);
	assert_int_equal(v.rtt_samples, 1);
	assert_true(v.rtt_min_us >= 5000 && v.rtt_min_us < 1000000);
	assert_int_equal(v.rtt_srtt_us, v.rtt_min_us);
	assert_false(v.flags & SLUICE_FLOW_F_TS0);
	assert_true(v.flags & SLUICE_FLOW_F_TS1);
	assert_int_equal(v.rtt_half_us[0], v.rtt_min_us);
	assert_int_equal(v.rtt_half_us[1], 0);
	from_a(&data); /* echoes B's 70000: the second sample, and starts 5010 */
	assert_int_equal(flow_get(dp, &k, &v), 0);
	assert_int_equal(v.rtt_samples, 2);
	/* A's half, back to back: microseconds; the round trip is both
	 * halves, B's 5 ms and A's. */
	assert_true(v.rtt_half_us[1] < 5000);
	assert_int_equal(v.rtt_min_us, v.rtt_half_us[0]);
	assert_true(v.rtt_srtt_us >= v.rtt_half_us[0]);
	assert_true(v.flags & SLUICE_FLOW_F_TS0);
	from_b(&ack);
	assert_int_equal(flow_get(dp, &k, &v), 0);
	assert_int_equal(v.rtt_samples, 3);
	assert_int_equal(v.retrans[0], 0);
	/* B's half is now microseconds too: the round trip dropped below
	 * 5 ms, and srtt moved 1/8 of the way there at each sample. */
	assert_true(v.rtt_half_us[0] < 5000 && v.rtt_min_us < 5000);
	assert_true(v.rtt_srtt_us > v.rtt_min_us && v.rtt_srtt_us > 4000);
}

static void test_rtt_wraps_and_skips(void **state)
{
	struct tcp_seg a1 = { IP_A, IP_B, 40011, 80, F_SYN, 1, 0, 1, 0xfffffff0u, 0 };
	struct tcp_seg b1 = { IP_B, IP_A, 80, 40011, F_ACK | F_SYN, 1, 0, 1, 77, 0xfffffff0u };
	struct tcp_seg a2 = { IP_A, IP_B, 40011, 80, F_ACK, 2, 10, 1, 0x10, 77 };
	struct tcp_seg b2 = { IP_B, IP_A, 80, 40011, F_ACK, 2, 0, 1, 78, 0x10 };
	struct tcp_seg plain = { IP_A, IP_B, 40011, 80, F_ACK, 12, 10, 0, 0, 0 };
	struct tcp_seg plain_ack = { IP_B, IP_A, 80, 40011, F_ACK, 2, 0, 0, 0, 0 };
	struct tcp_seg pure = { IP_A, IP_B, 40011, 80, F_ACK, 22, 0, 1, 0x20, 78 };
	struct tcp_seg retx = { IP_A, IP_B, 40011, 80, F_ACK, 12, 10, 1, 0x30, 78 };
	struct sluice_ct_key k = tuple(IP_A, IP_B, 40011, 80);
	struct sluice_flow4_value v;

	(void)state;
	from_a(&a1);
	from_b(&b1);
	from_a(&a2); /* TSval wrapped past 2^32: still newer, a new sample */
	assert_int_equal(flow_get(dp, &k, &v), 0);
	assert_int_equal(v.rtt_samples, 2);
	assert_true(v.flags & SLUICE_FLOW_F_TS0);
	assert_int_equal(v.ts_val[0], 0x10);
	from_b(&b2);
	assert_int_equal(flow_get(dp, &k, &v), 0);
	assert_int_equal(v.rtt_samples, 3);
	/* No timestamps: nothing sampled, nothing broken. */
	from_a(&plain);
	from_b(&plain_ack);
	assert_int_equal(flow_get(dp, &k, &v), 0);
	assert_int_equal(v.rtt_samples, 3);
	assert_false(v.flags & (SLUICE_FLOW_F_TS0 | SLUICE_FLOW_F_TS1));
	/* A pure ACK starts no sample (nothing answers it). */
	from_a(&pure);
	assert_int_equal(flow_get(dp, &k, &v), 0);
	assert_false(v.flags & SLUICE_FLOW_F_TS0);
	/* The segment at 12 again, with a newer TSval: a retransmission,
	 * counted, and no sample (Karn). */
	from_a(&retx);
	assert_int_equal(flow_get(dp, &k, &v), 0);
	assert_int_equal(v.retrans[0], 1);
	assert_int_equal(v.retrans[1], 0);
	assert_false(v.flags & SLUICE_FLOW_F_TS0);
	assert_int_equal(v.ts_val[0], 0x10);
	assert_int_equal(v.seq_next[0], 22);
}

/* Timestamps after other options (no NOP-NOP prefix): the general walk. */
static void test_rtt_other_option_layout(void **state)
{
	struct tcp_seg syn = { IP_A, IP_B, 40012, 80, F_SYN, 1, 0, 2, 4242, 0 };
	struct sluice_ct_key k = tuple(IP_A, IP_B, 40012, 80);
	struct sluice_flow4_value v;

	(void)state;
	from_a(&syn);
	assert_int_equal(flow_get(dp, &k, &v), 0);
	assert_true(v.flags & SLUICE_FLOW_F_TS0);
	assert_int_equal(v.ts_val[0], 4242);
}

/* A Service flow: keyed by the translated tuple (A -> backend B:8080),
 * the frontend in the record; the backend's reply, which from_pod gives
 * the frontend back as its source, counts in the same entry. */
static void test_service_flow(void **state)
{
	struct sluice_lb4_key fk = { .addr = ip4("10.96.0.10"), .port = htons(80),
				     .proto = IPPROTO_TCP };
	struct sluice_lb4_value fv = { .backend_id = 1 };
	struct sluice_lb4_backend be = { .addr = ip4(IP_B), .port = htons(8080),
					 .proto = IPPROTO_TCP };
	struct sluice_lb4_revnat rn = { .addr = ip4("10.96.0.10"), .port = htons(80) };
	struct tcp_seg syn = { IP_A, "10.96.0.10", 40014, 80, F_SYN, 1, 0, 0, 0, 0 };
	struct tcp_seg synack = { IP_B, IP_A, 8080, 40014, F_SYN | F_ACK, 1, 0, 0, 0, 0 };
	struct sluice_ct_key k = tuple(IP_A, IP_B, 40014, 8080);
	struct sluice_flow4_value v;
	__u32 id = 1, rev = 7;

	(void)state;
	assert_int_equal(bpf_map_update_elem(datapath_lb_be_map_fd(dp), &id, &be, BPF_ANY), 0);
	assert_int_equal(bpf_map_update_elem(datapath_lb_rnat_map_fd(dp), &rev, &rn, BPF_ANY), 0);
	fk.slot = 1;
	assert_int_equal(bpf_map_update_elem(datapath_lb_svc_map_fd(dp), &fk, &fv, BPF_ANY), 0);
	fk.slot = 0;
	fv = (struct sluice_lb4_value){ .count = 1, .rev_nat = (__u16)rev };
	assert_int_equal(bpf_map_update_elem(datapath_lb_svc_map_fd(dp), &fk, &fv, BPF_ANY), 0);

	assert_int_equal(from_a(&syn), TC_ACT_REDIRECT);
	assert_int_equal(from_b(&synack), TC_ACT_REDIRECT);
	assert_int_equal(drain(dp), 1);
	assert_int_equal(recs[0].event, SLUICE_FLOW_EV_START);
	assert_int_equal(recs[0].verdict, SLUICE_FLOW_TRANSLATED);
	assert_memory_equal(&recs[0].key, &k, sizeof(k));
	assert_int_equal(recs[0].svc_addr, ip4("10.96.0.10"));
	assert_int_equal(recs[0].svc_port, htons(80));
	assert_int_equal(recs[0].dst_identity, ID_B);
	assert_int_equal(flow_get(dp, &k, &v), 0);
	assert_int_equal(v.packets[1], 1);
	assert_int_equal(v.svc_addr, ip4("10.96.0.10"));
}

/* New flows until the ring buffer (nobody reading it) has no room: the
 * record is counted as lost, the flow's entry is still made. */
static void test_ring_buffer_full(void **state)
{
	__u64 full = flow_stat(dp, SLUICE_FLOW_ST_RB_FULL);
	struct tcp_seg syn = { IP_A, IP_B, 0, 9000, F_SYN, 1, 0, 0, 0, 0 };
	struct sluice_flow4_value v;
	struct sluice_ct_key k;
	int i, max = (int)(SLUICE_FLOW_RB_BYTES / sizeof(struct sluice_flow4_record)) + 100;

	(void)state;
	for (i = 0; i < max && flow_stat(dp, SLUICE_FLOW_ST_RB_FULL) == full; i++) {
		syn.sport = (__u16)(1024 + i % 60000);
		syn.dport = (__u16)(9000 + i / 60000);
		run_seg(dp, &syn, IFINDEX_LO);
	}
	assert_true(i < max);
	assert_int_equal(flow_stat(dp, SLUICE_FLOW_ST_RB_FULL), full + 1);
	/* Records of 120 bytes and an 8-byte header each filled 8 MiB. */
	assert_true(i > (int)(SLUICE_FLOW_RB_BYTES / 128) - 10);
	k = tuple(IP_A, IP_B, syn.sport, syn.dport);
	assert_int_equal(flow_get(dp, &k, &v), 0);
	assert_int_equal(v.packets[0], 1);
	drain(dp);
}

static void test_flows_off(void **state)
{
	struct tcp_seg syn = { IP_A, IP_B, 40013, 80, F_SYN, 1, 0, 1, 1, 0 };
	struct tcp_seg spoof = { "10.77.0.99", IP_B, 40013, 80, F_SYN, 1, 0, 0, 0, 0 };
	struct sluice_ct_key k = tuple(IP_A, IP_B, 40013, 80), next;
	struct sluice_flow4_value v;

	(void)state;
	assert_int_equal(run_seg(dp_off, &syn, IFINDEX_LO), TC_ACT_REDIRECT);
	assert_int_equal(run_seg(dp_off, &spoof, IFINDEX_LO), TC_ACT_SHOT);
	assert_int_equal(drain(dp_off), 0);
	assert_int_equal(flow_get(dp_off, &k, &v), -ENOENT);
	assert_int_equal(bpf_map_get_next_key(datapath_flow4_map_fd(dp_off), NULL, &next), -ENOENT);
}

static int open_dp(struct datapath **d, char *dir, size_t dirlen, int off)
{
	struct datapath_opts o = { .mode = ATTACH_TC, .lb = 1, .flows_off = off };
	char err[512];

	snprintf(dir, dirlen, "/sys/fs/bpf/sluice-flowtest-%d-%d", (int)getpid(), off);
	if (datapath_open(d, dir, &o, err, sizeof(err))) {
		fprintf(stderr, "datapath_open: %s\n", err);
		return -1;
	}
	set_flags(*d, IP_A, IFINDEX_LO, ID_A, 0);
	set_flags(*d, IP_B, (__u32)ifindex_b, ID_B, 0);
	return 0;
}

/* Average ns of from_pod over a million runs of frame (len bytes). */
static double cost_of(struct datapath *d, const void *frame, __u32 len)
{
	unsigned char out[256];
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = len,
		    .data_out = out, .data_size_out = sizeof(out), .repeat = 1000000);

	if (bpf_prog_test_run_opts(datapath_prog_fd(d, 1), &opts))
		return -1;
	return opts.duration;
}

/* An established TCP flow's data segment (timestamps on), and an
 * established UDP flow's datagram. */
static void bench(struct datapath *d, double *tcp, double *udp)
{
	struct tcp_seg syn = { IP_A, IP_B, 40100, 80, F_SYN, 1, 0, 1, 1, 0 };
	struct tcp_seg data = { IP_A, IP_B, 40100, 80, F_ACK, 2, 16, 1, 2, 0 };
	struct tcp_pkt p;
	__u32 len;

	run_seg(d, &syn, IFINDEX_LO);
	p = make_tcp(&data, &len);
	*tcp = cost_of(d, &p, len);
	/* The same frame as UDP: an 8-byte header, the rest payload. */
	p.ip.protocol = IPPROTO_UDP;
	p.ip.check = 0;
	p.ip.check = ip_checksum(&p.ip, sizeof(p.ip));
	((__u16 *)&p.tcp)[2] = htons((__u16)(len - sizeof(p.eth) - sizeof(p.ip)));
	((__u16 *)&p.tcp)[3] = 0;
	*udp = cost_of(d, &p, len);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_forwarded_flow, reset),
		cmocka_unit_test_setup(test_policy_dropped_flows_name_the_rule, reset),
		cmocka_unit_test_setup(test_audit_flow, reset),
		cmocka_unit_test_setup(test_spoofed_and_truncated, reset),
		cmocka_unit_test_setup(test_drop_rate_limit, reset),
		cmocka_unit_test_setup(test_end_on_fin_both_ways, reset),
		cmocka_unit_test_setup(test_end_on_rst_and_restart, reset),
		cmocka_unit_test_setup(test_update_after_interval, reset),
		cmocka_unit_test_setup(test_rtt_from_timestamps, reset),
		cmocka_unit_test_setup(test_rtt_wraps_and_skips, reset),
		cmocka_unit_test_setup(test_rtt_other_option_layout, reset),
		cmocka_unit_test_setup(test_service_flow, reset),
		cmocka_unit_test_setup(test_ring_buffer_full, reset),
		cmocka_unit_test_setup(test_flows_off, reset),
	};
	int bench_only = argc > 1 && !strcmp(argv[1], "--bench"), ret = -1;
	char cmd[256];

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
	if (!open_dp(&dp, pin_dir, sizeof(pin_dir), 0) &&
	    !open_dp(&dp_off, pin_dir_off, sizeof(pin_dir_off), 1)) {
		if (bench_only) {
			double tcp_on, udp_on, tcp_off, udp_off;

			bench(dp, &tcp_on, &udp_on);
			bench(dp_off, &tcp_off, &udp_off);
			printf("from_pod ns/packet, established flow: TCP (timestamps) flows on %.0f, "
			       "off %.0f; UDP flows on %.0f, off %.0f\n",
			       tcp_on, tcp_off, udp_on, udp_off);
			ret = 0;
		} else {
			ret = cmocka_run_group_tests_name("bpf-flows", tests, NULL, NULL);
		}
	}
	datapath_close(dp);
	datapath_close(dp_off);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", pin_dir, pin_dir_off);
	if (system(cmd))
		ret = -1;
	return ret ? 1 : 0;
}
