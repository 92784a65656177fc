/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * TCP in a flow's state: retransmissions, and the round trip measured
 * passively from the timestamp option (RFC 7323), as pping and ePPing do.
 *
 * A data segment (payload, or SYN/FIN, which take a sequence number) in
 * direction d that ends at or before the highest end seen that way
 * (seq_next[d], compared modulo 2^32) is sent again: counted in
 * retrans[d]. Any other data segment with a TSval newer than the last one
 * sampled that way, while no sample of direction d is in flight, starts
 * one: ts_val[d], ts_time[d], SLUICE_FLOW_F_TS<d>. The first packet of the
 * other direction whose TSecr equals ts_val[d] ends it: one round trip,
 * from this hook to the peer and back. A TSecr past ts_val[d] means the
 * echo of the sample was never seen (lost, or it took another path): the
 * sample is dropped unmeasured. Never started by a retransmission (Karn)
 * nor by a pure ACK (nothing answers one: the peer's next packet, whenever
 * the application sends, would echo it). Segments without the option
 * count for retransmissions only.
 *
 * Races: a flow's packets in one direction come in order on one CPU, but
 * its two directions may run on two CPUs at once: the sample's flags and
 * times are plain stores (the datapath's BPF is built for the v1
 * instruction set, which has atomic adds only), so a race can at worst
 * lose or skew one sample. Counters use atomic adds.
 */
#ifndef SLUICE_BPF_FLOW_TCP_H
#define SLUICE_BPF_FLOW_TCP_H

#include "common.h"
#include "l4.h"
#include "config.h"
#include "overlay.h"

#define TCPOPT_EOL		0
#define TCPOPT_NOP		1
#define TCPOPT_TIMESTAMP	8
#define TCPOLEN_TIMESTAMP	10
#define TCP_OPTS_MAX		40

/* What one TCP segment tells a flow. */
struct flow_tcp {
	__u32 seq;
	__u32 len;		/* sequence space taken: payload, +1 for SYN, +1 for FIN */
	__u32 tsval;
	__u32 tsecr;
	__u8 flags;
	__u8 has_ts;
	__u8 valid;		/* a TCP header was read */
	__u8 pad;
	__u8 opt[12];		/* option bytes being looked at */
};

/* a after b, modulo 2^32 (sequence numbers, TSvals). */
static __always_inline int flow_seq_after(__u32 a, __u32 b)
{
	return (__s32)(a - b) > 0;
}

static __always_inline __u32 flow_be32(const __u8 *p)
{
	return (__u32)p[0] << 24 | (__u32)p[1] << 16 | (__u32)p[2] << 8 | p[3];
}

/* One step of the options' walk: the option at *i of the olen bytes at off
 * in skb. Returns 1 when the walk is over (the timestamps found, the end,
 * a malformed option), else 0 with *i on the next option. */
static __always_inline int flow_tcp_opt(struct __sk_buff *skb, struct flow_tcp *t, __u32 off,
					__u32 olen, __u32 *i)
{
	__u32 at = *i;

	if (at >= olen || bpf_skb_load_bytes(skb, off + at, t->opt, 2) ||
	    t->opt[0] == TCPOPT_EOL)
		return 1;
	if (t->opt[0] == TCPOPT_NOP) {
		*i = at + 1;
		return 0;
	}
	if (t->opt[1] < 2)
		return 1;
	if (t->opt[0] != TCPOPT_TIMESTAMP) {
		*i = at + t->opt[1];
		return 0;
	}
	if (t->opt[1] != TCPOLEN_TIMESTAMP || at + TCPOLEN_TIMESTAMP > olen ||
	    bpf_skb_load_bytes(skb, off + at, t->opt, TCPOLEN_TIMESTAMP))
		return 1;
	t->tsval = flow_be32(t->opt + 2);
	t->tsecr = flow_be32(t->opt + 6);
	t->has_ts = 1;
	return 1;
}

/*
 * The TCP segment in skb as it leaves the program (its headers at their
 * final place: an overlay packet from_pod encapsulated itself has its
 * inner headers SLUICE_OVERLAY_OVERHEAD bytes on). t->valid stays 0 when
 * there is no whole TCP header to read.
 */
static __always_inline void flow_tcp_parse(struct __sk_buff *skb, struct flow_tcp *t)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + ETH_HLEN;
	struct tcphdr *th;
	__u32 ihl, doff, olen, tot, off, i;

	t->valid = 0;
	t->has_ts = 0;
	if ((void *)(ip + 1) > end)
		return;
	/* from_pod's own VXLAN (lib/encap.h): this node to another node's
	 * tunnel port; pods never send there (tunnel_port_check). */
	if (cfg_routing == SLUICE_ROUTING_OVERLAY && ip->protocol == IPPROTO_UDP &&
	    ip->saddr == cfg_node_ip && ip->ihl == 5) {
		struct vxlan_encap *h = (void *)ip;

		if ((void *)(h + 1) > end)
			return;
		if (h->udp.dest == bpf_htons(SLUICE_VXLAN_PORT)) {
			ip = (void *)(h + 1);
			if ((void *)(ip + 1) > end)
				return;
		}
	}
	if (ip->protocol != IPPROTO_TCP || (ip->frag_off & bpf_htons(IP_FRAG_OFFSET_MASK)))
		return;
	ihl = ip->ihl * 4;
	if (ihl < sizeof(*ip))
		return;
	th = (void *)ip + ihl;
	if ((void *)(th + 1) > end)
		return;
	doff = th->doff * 4;
	if (doff < sizeof(*th))
		return;
	t->valid = 1;
	t->seq = bpf_ntohl(th->seq);
	t->flags = ((__u8 *)th)[13];
	tot = bpf_ntohs(ip->tot_len);
	/* IPv4 BIG TCP: tot_len 0, the length is the skb's. */
	if (!tot)
		tot = skb->len - (__u32)((void *)ip - data);
	t->len = tot > ihl + doff ? tot - ihl - doff : 0;
	t->len += !!(t->flags & TCP_FLAG_SYN) + !!(t->flags & TCP_FLAG_FIN);
	t->tsecr = 0;
	t->tsval = 0;

	olen = doff - sizeof(*th);
	if (!olen || olen > TCP_OPTS_MAX)
		return;
	off = (__u32)((void *)th - data) + sizeof(*th);
	/* Linux's layout first (NOP, NOP, timestamps), read in place, then
	 * the general walk: eight steps (options before the timestamps, NOPs
	 * included: a SYN of Linux has it third, of macOS sixth), each
	 * reading at a plain offset, no loop for the verifier to prove
	 * bounded. */
	if (olen >= 12) {
		__u8 *o = (void *)(th + 1);

		if ((void *)(o + 12) <= end && o[0] == TCPOPT_NOP && o[1] == TCPOPT_NOP &&
		    o[2] == TCPOPT_TIMESTAMP && o[3] == TCPOLEN_TIMESTAMP) {
			t->tsval = flow_be32(o + 4);
			t->tsecr = flow_be32(o + 8);
			t->has_ts = 1;
			return;
		}
	}
	i = 0;
	/* Spelt out: clang 14 does not unroll a loop that returns from its
	 * body. */
	if (flow_tcp_opt(skb, t, off, olen, &i) || flow_tcp_opt(skb, t, off, olen, &i) ||
	    flow_tcp_opt(skb, t, off, olen, &i) || flow_tcp_opt(skb, t, off, olen, &i) ||
	    flow_tcp_opt(skb, t, off, olen, &i) || flow_tcp_opt(skb, t, off, olen, &i) ||
	    flow_tcp_opt(skb, t, off, olen, &i))
		return;
	flow_tcp_opt(skb, t, off, olen, &i);
}

/* A sample of direction d's half of the path (ns): the round trip is it
 * and the other direction's latest half (datapath.h, rtt_half_us). */
static __always_inline void flow_rtt_sample(struct sluice_flow4_value *v, __u32 d, __u64 ns)
{
	__u64 us = ns / 1000;
	__u32 half = us ? (us > 0x7fffffffull ? 0x7fffffffu : (__u32)us) : 1, rtt, other;

	d &= 1;
	v->rtt_half_us[d] = half;
	other = v->rtt_half_us[d ^ 1];
	rtt = other < 0x80000000u ? half + other : half;

	if (!v->rtt_min_us || rtt < v->rtt_min_us)
		v->rtt_min_us = rtt;
	v->rtt_srtt_us = v->rtt_srtt_us ? (__u32)(((__u64)v->rtt_srtt_us * 7 + rtt) >> 3) : rtt;
	__sync_fetch_and_add(&v->rtt_samples, 1);
}

/* Segment t of direction d (0/1) seen at now: retransmissions and the
 * round-trip sample (see above). Only for segments that went on. */
static __always_inline void flow_tcp_update(struct sluice_flow4_value *v, const struct flow_tcp *t,
					    __u32 d, __u64 now)
{
	__u32 mine = d ? SLUICE_FLOW_F_TS1 : SLUICE_FLOW_F_TS0;
	__u32 theirs = d ? SLUICE_FLOW_F_TS0 : SLUICE_FLOW_F_TS1;
	__u32 o = !d, end, retrans = 0;

	if (!t->valid)
		return;
	d &= 1;
	if (t->len) {
		end = t->seq + t->len;
		/* seq_next 0: nothing seen yet (a real 0 costs one miss). */
		if (v->seq_next[d] && !flow_seq_after(end, v->seq_next[d])) {
			__sync_fetch_and_add(&v->retrans[d], 1);
			retrans = 1;
		} else {
			v->seq_next[d] = end;
		}
	}
	if (!t->has_ts)
		return;
	if (v->flags & theirs) {
		if (t->tsecr == v->ts_val[o]) {
			v->flags &= ~theirs;
			flow_rtt_sample(v, o, now - v->ts_time[o]);
		} else if (flow_seq_after(t->tsecr, v->ts_val[o])) {
			v->flags &= ~theirs; /* its echo went by unseen */
		}
	}
	if (t->len && !retrans && !(v->flags & mine) && t->tsval &&
	    (!v->ts_val[d] || flow_seq_after(t->tsval, v->ts_val[d]))) {
		v->ts_val[d] = t->tsval;
		v->ts_time[d] = now;
		v->flags |= mine;
	}
}

#endif /* SLUICE_BPF_FLOW_TCP_H */
