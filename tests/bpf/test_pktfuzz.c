// SPDX-License-Identifier: Apache-2.0
/*
 * Packet fuzzing of every BPF program (from_pod, to_pod, from_netdev,
 * to_netdev, from_overlay, to_overlay and the uplink's XDP program) through
 * BPF_PROG_TEST_RUN, one packet per run, in one world (pktfuzz_world.h):
 * generated frames of every kind the programs parse, most of them mutated
 * (pktfuzz_gen.h). An oracle of its own (pktfuzz_ref.h, no bpf/ code)
 * judges each verdict and output frame:
 *   - nothing reaches pod B (ingress: TCP 80 from pod A only) that its
 *     policy does not allow: TCP to port 80 from A, a reply or ICMP error
 *     for a flow B itself started, a later fragment of an allowed first,
 *     B itself (a pod may reach itself), the node (from the host stack);
 *   - nothing leaves pod A (egress: TCP 80 to B or R, UDP 53) that its
 *     policy does not allow, besides replies and errors for flows into A;
 *   - nothing leaves a pod with a source other than its own, nothing from
 *     the uplink reaches a pod with this node's or a local pod's source;
 *   - nothing from the prefilter's denied CIDR gets past the uplink;
 *   - the counters (sluice_stats_v2) add up per packet (check_counters).
 * A violation prints the program, the packet in hex and the seed; the run
 * fails. PKTFUZZ_SEED= and PKTFUZZ_N= (packets in all) reproduce or scale
 * a run; PKTFUZZ_BREAK=1 first opens pod B to TCP port 81 from any peer in the policy
 * map, which the oracle must catch (the test then fails).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <net/if.h>
#include <linux/pkt_cls.h>
#include <linux/bpf.h>

#include <bpf/bpf.h>

#include "loader.h"
#include "pktfuzz_gen.h"
#include "pktfuzz_ref.h"
#include "pktfuzz_world.h"

#define DEFAULT_N 1050000
#define DEFAULT_SEED 0x5eed14ull

static const char *const prog_names[NPROG] = {
	"from_pod", "to_pod", "from_netdev", "to_netdev", "from_overlay", "to_overlay", "xdp",
};

/* What a run did. */
struct run {
	int retval;
	int refused;		/* the test runner refused the frame (EINVAL) */
	uint8_t out[4096];
	uint32_t out_len;
};

struct prog_stats {
	uint64_t runs, refused, mutated;
	uint64_t verdicts[8];	/* tc: OK, SHOT, REDIRECT, other; XDP: its actions */
};

struct fuzz {
	struct world w;
	struct prng r;
	uint64_t seed;
	struct prog_stats st[NPROG];
	struct tupleset a_in, b_out, frags;
	uint64_t violations, counter_errors, delivered_b, left_a, non_ipv4_to_pod;
	/* For the whole run's counters: drops (packets, bytes) per direction,
	 * the XDP program's actions. */
	uint64_t drops[SLUICE_DIR_MAX], drop_bytes[SLUICE_DIR_MAX], xdp_act[XDP_REDIRECT + 1];
	struct sluice_metric start[SLUICE_METRICS_MAX];
	const struct ref_pkt *cur_in;	/* the frame being judged, as it came in */
	/* The counters before the current run, summed over the CPUs. */
	struct sluice_metric before[SLUICE_METRICS_MAX];
};

/* Set by SIGINT or SIGTERM: the run stops early and cleans up (its pins).
 * Global: a signal handler has no other way to say so. */
static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
}

/* ---- running a program -------------------------------------------------- */

static int run_one(struct fuzz *fz, int prog, uint32_t ifindex, const uint8_t *pkt, size_t len,
		   struct run *r)
{
	struct __sk_buff skb = { .ifindex = ifindex };
	struct xdp_md xmd = { .data_end = (__u32)len, .ingress_ifindex = ifindex };
	int xdp = prog == P_XDP;
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = (__u32)len,
		    .data_out = r->out, .data_size_out = sizeof(r->out), .repeat = 1,
		    .ctx_in = xdp ? (void *)&xmd : (void *)&skb,
		    .ctx_size_in = xdp ? sizeof(xmd) : sizeof(skb));

	r->refused = 0;
	if (bpf_prog_test_run_opts(world_prog_fd(&fz->w, prog), &opts)) {
		if (errno != EINVAL) {
			fprintf(stderr, "pktfuzz: BPF_PROG_TEST_RUN of %s failed: %s\n",
				prog_names[prog], strerror(errno));
			return -1;
		}
		r->refused = 1;
		return 0;
	}
	r->retval = (int)opts.retval;
	r->out_len = opts.data_size_out;
	return 0;
}

static int is_drop(int prog, int retval)
{
	return prog == P_XDP ? retval == XDP_DROP : retval == TC_ACT_SHOT;
}

/* ---- reporting -------------------------------------------------------- */

static void hexdump(const char *what, const uint8_t *b, size_t len)
{
	fprintf(stderr, "  %s (%zu bytes):", what, len);
	for (size_t i = 0; i < len && i < 256; i++)
		fprintf(stderr, "%s%02x", i % 32 ? "" : "\n    ", b[i]);
	fprintf(stderr, "%s\n", len > 256 ? " ..." : "");
}

/* One line about a parsed packet, with its tuple's and the reverse's
 * connection-tracking flags (-1: none), for PKTFUZZ_DEBUG. */
static void describe(struct fuzz *fz, const char *what, const struct ref_pkt *q)
{
	struct sluice_ct_value v;
	struct sluice_ct_key rev;
	char s[16], d[16], is[16], id[16];
	long f1 = -1, f2 = -1;

	if (q->later_frag) {
		struct sluice_frag_key fk = { q->key.saddr, q->key.daddr, q->frag_id, q->key.proto, 0 };
		struct sluice_frag_value fv;

		if (!bpf_map_lookup_elem(world_frag_map_fd(&fz->w), &fk, &fv)) {
			struct ref_pkt as = *q;

			fprintf(stderr, "  datapath's first fragment: ports %u -> %u\n", ntohs(fv.sport),
				ntohs(fv.dport));
			as.later_frag = 0;
			as.key.sport = fv.sport;
			as.key.dport = fv.dport;
			describe(fz, "as its first", &as);
		}

	}
	ref_reverse(&q->key, &rev);
	if (!world_ct_lookup(&fz->w, &q->key, &v))
		f1 = v.flags;
	if (!world_ct_lookup(&fz->w, &rev, &v))
		f2 = v.flags;
	inet_ntop(AF_INET, &q->key.saddr, s, sizeof(s));
	inet_ntop(AF_INET, &q->key.daddr, d, sizeof(d));
	inet_ntop(AF_INET, &q->inner.saddr, is, sizeof(is));
	inet_ntop(AF_INET, &q->inner.daddr, id, sizeof(id));
	fprintf(stderr, "  %s: type %04x ipv4 %d proto %u %s:%u -> %s:%u flags %02x frag first %d "
		"later %d l4 %d icmp %u err %d inner %s:%u -> %s:%u/%u; ct %lx, reverse %lx\n", what,
		q->ethertype, q->ipv4, q->key.proto, s, ntohs(q->key.sport), d, ntohs(q->key.dport),
		q->tcp_flags, q->first_frag, q->later_frag, q->has_l4, q->icmp_type, q->icmp_error, is,
		ntohs(q->inner.sport), id, ntohs(q->inner.dport), q->inner.proto, f1, f2);
}

static void violation(struct fuzz *fz, int prog, uint64_t n, const char *why, const uint8_t *in,
		      size_t in_len, const struct run *r)
{
	fz->violations++;
	if (fz->violations > 20)
		return;
	fprintf(stderr, "VIOLATION %s: packet %" PRIu64 " of %s, verdict %d (PKTFUZZ_SEED=0x%" PRIx64
		" PKTFUZZ_N=%" PRIu64 ")\n", why, n, prog_names[prog], r->retval, fz->seed, n + 1);
	hexdump("in", in, in_len);
	hexdump("out", r->out, r->out_len);
	if (getenv("PKTFUZZ_DEBUG")) {
		struct ref_pkt q;

		ref_parse(r->out, r->out_len, &q);
		describe(fz, "out", &q);
		ref_parse(in, in_len, &q);
		describe(fz, "in", &q);
	}
}

/* ---- the oracle ------------------------------------------------------- */

/*
 * The first fragments seen (any program, in or out, any verdict: the
 * datapath remembers a first fragment's ports whatever its verdict,
 * lib/frag.h): each datagram (source, destination, IP ID, protocol) with
 * each pair of ports a first fragment of it had, in fz->frags.
 */
static void frag_pair(const struct ref_pkt *p, __be16 sport, __be16 dport, struct sluice_ct_key *k)
{
	memset(k, 0, sizeof(*k));
	k->saddr = p->key.saddr;
	k->daddr = p->key.daddr;
	k->proto = p->key.proto;
	k->sport = sport;
	k->dport = dport;
	memcpy(k->pad, &p->frag_id, 2);
	k->pad[2] = 0xf;
}

static void frag_note(struct fuzz *fz, const struct ref_pkt *p)
{
	struct sluice_ct_key k;

	if (!p->ipv4 || !p->first_frag || !p->has_l4)
		return;
	frag_pair(p, p->key.sport, p->key.dport, &k);
	tupleset_add(&fz->frags, &k);
}

typedef const char *(*policy_fn)(struct fuzz *fz, const struct ref_pkt *q, int flags);

/* A later fragment passes when one of its datagram's first fragments'
 * ports make a packet the policy lets through (lib/frag.h: it gets its
 * first fragment's verdict). */
/*
 * A later fragment passes as its datagram's first fragment did (lib/frag.h,
 * docs/POLICY.md): it takes the ports the datapath remembered for the
 * datagram (sluice_frag4_v1), which must be those of a first fragment of it
 * the oracle saw, and is judged with them by the oracle's own policy.
 */
static const char *later_frag_ok(struct fuzz *fz, const struct ref_pkt *q, int flags, policy_fn fn)
{
	const struct ref_pkt *orig = q;
	const char *why;
	struct sluice_frag_key fk = { q->key.saddr, q->key.daddr, q->frag_id, q->key.proto, 0 };
	struct sluice_frag_value fv;
	struct sluice_ct_key pair;
	struct ref_pkt as;

	const struct ref_pkt *in = fz->cur_in;

	/* A translated later fragment (a Service's): its datagram is the one
	 * that came in (to the frontend, or from the backend), whose first
	 * fragment's ports the datapath recalled before translating. */
	if (in->ipv4 && in->later_frag && in->frag_id == q->frag_id && in->key.proto == q->key.proto &&
	    (in->key.saddr != q->key.saddr || in->key.daddr != q->key.daddr)) {
		fk.saddr = in->key.saddr;
		fk.daddr = in->key.daddr;
		q = in;
	}
	if (bpf_map_lookup_elem(world_frag_map_fd(&fz->w), &fk, &fv))
		return "later fragment passed without a first fragment";
	frag_pair(q, fv.sport, fv.dport, &pair);
	if (!tupleset_has(&fz->frags, &pair))
		return "later fragment given ports no first fragment of its datagram had";
	as = *orig;
	as.later_frag = 0;
	as.has_l4 = 1;
	as.icmp_error = 0;
	as.key.sport = fv.sport;
	as.key.dport = fv.dport;
	why = fn(fz, &as, flags);
	/* Translated to a backend: the frontend's port became the backend's
	 * (port 80 for every backend of this world's Services). */
	if (why && q != orig && orig->key.daddr != q->key.daddr) {
		as.key.dport = htons(80);
		why = fn(fz, &as, flags);
	}
	return why;
}

/*
 * An ICMP error speaks for a flow only from the flow's peer or from
 * something that is no pod (a router, a node, the world): lib/ct.h,
 * docs/SECURITY.md. q is to the quoted packet's sender.
 */
static int icmp_error_plausible(const struct world *w, const struct ref_pkt *q)
{
	if (q->key.saddr == q->inner.daddr)
		return 1;
	return !world_is_local_pod(w, q->key.saddr) && q->key.saddr != w->ip_r;
}

/* The flow an ICMP error quotes (the other direction: the error goes to
 * the quoted packet's sender) is one the policy allows: the error is
 * related to it (conntrack's RELATED). */
static const char *a_may_send(struct fuzz *fz, const struct ref_pkt *q, int flags);
static int quoted_flow_ok(struct fuzz *fz, const struct ref_pkt *q, int flags,
			  const char *(*fn)(struct fuzz *, const struct ref_pkt *, int))
{
	struct ref_pkt as = *q;

	as.icmp_error = 0;
	as.has_inner = 0;
	as.later_frag = 0;
	as.has_l4 = 1;
	ref_reverse(&q->inner, &as.key);
	return !fn(fz, &as, flags);
}

#define FROM_SELF  1	/* B sent it itself (a hairpin through a Service) */
#define FROM_STACK 2	/* the host stack sent it (to_pod): the node may reach pods */

/* Is q, delivered to pod B, one B's ingress policy lets in? */
static const char *b_may_receive(struct fuzz *fz, const struct ref_pkt *q, int flags)
{
	struct world *w = &fz->w;
	struct sluice_ct_key rev;

	if (!q->ipv4)
		return NULL; /* the pod's ip_rcv drops it */
	if ((flags & FROM_SELF) || q->key.saddr == w->ip_b)
		return NULL; /* a pod may always reach itself */
	if ((flags & FROM_STACK) && q->key.saddr == w->node_ip)
		return NULL;
	if (q->later_frag)
		return later_frag_ok(fz, q, flags, b_may_receive);
	if (!q->has_l4 || (q->icmp_error && !q->has_inner))
		return NULL; /* no L4 header the pod's stack would take (an
			      * error quoting less than 8 bytes of L4: icmp_unreach
			      * discards it) */
	if (q->key.proto == IPPROTO_TCP && q->key.saddr == w->ip_a && q->key.dport == htons(80))
		return NULL;
	ref_reverse(&q->key, &rev);
	if (!q->icmp_error && tupleset_has(&fz->b_out, &rev))
		return NULL;
	/* B's hairpin flow, as B sent it into itself. */
	if (!q->icmp_error && q->key.saddr == w->hairpin_ip && tupleset_has(&fz->b_out, &q->key))
		return NULL;
	if (q->icmp_error && q->has_inner && q->inner.saddr == w->ip_b &&
	    icmp_error_plausible(w, q) && (tupleset_has(&fz->b_out, &q->inner) ||
					   quoted_flow_ok(fz, q, flags, b_may_receive)))
		return NULL;
	return q->icmp_error ? "ICMP error into B about no flow of B's"
			     : "packet into B its ingress policy denies";
}

/* Is q, leaving pod A, one A's egress policy lets out? */
static const char *a_may_send(struct fuzz *fz, const struct ref_pkt *q, int flags)
{
	struct world *w = &fz->w;
	struct sluice_ct_key rev;

	if (!q->ipv4)
		return q->ethertype == ETH_P_ARP || q->ethertype == ETH_P_IP ? NULL
			: "non-IPv4, non-ARP frame left pod A";
	if (q->key.daddr == w->ip_a)
		return NULL; /* to itself */
	if (q->later_frag)
		return later_frag_ok(fz, q, flags, a_may_send);
	if (!q->has_l4 || (q->icmp_error && !q->has_inner))
		return NULL;
	if (q->key.proto == IPPROTO_TCP && q->key.dport == htons(80) &&
	    (q->key.daddr == w->ip_b || q->key.daddr == w->ip_r))
		return NULL;
	if (q->key.proto == IPPROTO_UDP && q->key.dport == htons(53))
		return NULL;
	ref_reverse(&q->key, &rev);
	if (!q->icmp_error && tupleset_has(&fz->a_in, &rev))
		return NULL;
	if (q->icmp_error && q->has_inner && q->inner.daddr == w->ip_a &&
	    (tupleset_has(&fz->a_in, &q->inner) || quoted_flow_ok(fz, q, flags, a_may_send)))
		return NULL;
	return q->icmp_error ? "ICMP error out of A about no flow into A"
			     : "packet out of A its egress policy denies";
}

/* The frame a program's output is for a pod: the inner one of this node's
 * own VXLAN encapsulation, else the frame itself (lenient: see
 * ref_parse_ipv4). */
static void output_frame(struct fuzz *fz, const struct run *r, struct ref_pkt *q, const uint8_t **f,
			 size_t *flen, int lenient)
{
	size_t in;

	*f = r->out;
	*flen = r->out_len;
	ref_parse_as(r->out, r->out_len, q, lenient);
	in = ref_vxlan_inner(r->out, r->out_len, q);
	if (in && q->key.saddr == fz->w.node_ip) {
		*f = r->out + in;
		*flen = r->out_len - in;
		ref_parse_as(*f, *flen, q, lenient);
	}
}

/* Remember the flow of p (if it is IPv4 from/to addr, per to_addr) in s. */
static void note_flow(struct tupleset *s, const struct ref_pkt *p, __be32 addr, int to_addr)
{
	if (p->ipv4 && (to_addr ? p->key.daddr : p->key.saddr) == addr && !p->later_frag)
		tupleset_add(s, p->icmp_error ? &p->inner : &p->key);
}

/*
 * Judge one run of prog on in (sent by pod `pod` for from_pod, -1
 * otherwise). Delivered to a pod means: from_pod and from_netdev
 * redirecting to it (bpf_redirect_peer: straight into the pod), to_pod
 * passing it (TC_ACT_OK is the veth's transmit into the pod). from_pod's
 * TC_ACT_OK and from_netdev's hand the packet to the host stack, which
 * routes it to the pod through to_pod: judged there.
 */
static void judge(struct fuzz *fz, int prog, int pod, uint64_t n, const uint8_t *in, size_t in_len,
		  const struct run *r)
{
	struct world *w = &fz->w;
	struct ref_pkt p, pl, q, ql;
	const uint8_t *f;
	size_t flen;
	const char *why;
	int delivered, dropped = is_drop(prog, r->retval);

	ref_parse(in, in_len, &p);
	ref_parse_as(in, in_len, &pl, 1);
	fz->cur_in = &p;
	frag_note(fz, &p);
	frag_note(fz, &pl);
	/* The frames VXLAN carries (from_netdev takes them off itself). */
	for (int depth = 0, lenient = 0; lenient < 2; lenient++) {
		const uint8_t *b = in;
		size_t blen = in_len, at;
		struct ref_pkt t;

		ref_parse_as(b, blen, &t, lenient);
		for (depth = 0; depth < 3 && (at = ref_vxlan_inner(b, blen, &t)); depth++) {
			b += at;
			blen -= at;
			ref_parse_as(b, blen, &t, lenient);
			frag_note(fz, &t);
			if (!dropped)
				note_flow(&fz->a_in, &t, w->ip_a, 1);
		}
	}
	/* B's own flows, whatever became of them: what B sends, what the
	 * host stack sends for B (kube-proxy's translations, masquerade). */
	if ((prog == P_FROM_POD && pod == POD_B) || prog == P_TO_NETDEV || prog == P_TO_OVERLAY ||
	    prog == P_TO_POD) {
		note_flow(&fz->b_out, &p, w->ip_b, 0);
		note_flow(&fz->b_out, &pl, w->ip_b, 0);
	}
	if (dropped)
		return;
	output_frame(fz, r, &ql, &f, &flen, 1);
	output_frame(fz, r, &q, &f, &flen, 0);
	frag_note(fz, &q);
	frag_note(fz, &ql);
	/* Flows into A (not isolated for ingress: anything it is sent), as
	 * each side of the program saw them, for A's replies. */
	note_flow(&fz->a_in, &p, w->ip_a, 1);
	note_flow(&fz->a_in, &pl, w->ip_a, 1);
	note_flow(&fz->a_in, &q, w->ip_a, 1);
	note_flow(&fz->a_in, &ql, w->ip_a, 1);
	if (prog == P_FROM_POD && pod == POD_B) {
		note_flow(&fz->b_out, &q, w->ip_b, 0);
		note_flow(&fz->b_out, &ql, w->ip_b, 0);
		/* B's own flow to itself through a Service (hairpin). */
		note_flow(&fz->b_out, &q, w->hairpin_ip, 0);
		note_flow(&fz->b_out, &ql, w->hairpin_ip, 0);
	}

	/* The prefilter: a denied source never gets past the uplink. */
	if ((prog == P_XDP || prog == P_FROM_NETDEV) && p.ethertype == ETH_P_IP &&
	    in_len >= ETH_HLEN + 20 && (in[ETH_HLEN] >> 4) == 4 &&
	    world_prefilter_denied(w, p.ipv4 ? p.key.saddr : *(const __be32 *)(in + ETH_HLEN + 12)))
		violation(fz, prog, n, "source in the prefilter's denied CIDR passed", in, in_len, r);

	/* What a pod sends. */
	if (prog == P_FROM_POD && pod >= 0) {
		if (q.ipv4 && q.key.daddr == w->pod_ip[pod] && world_is_frontend(w, q.key.saddr)) {
			/* A frontend's refusal, or a hairpin reply given its
			 * frontend back, into the pod that sent it. */
		} else if (q.ipv4 && q.key.saddr != w->pod_ip[pod] && q.key.saddr != w->hairpin_ip &&
			   !world_is_frontend(w, q.key.saddr)) {
			/* (A Service's reply gets its frontend as source.) */
			violation(fz, prog, n, "packet left a pod with another source", in, in_len, r);
		} else if (pod == POD_A) {
			fz->left_a++;
			why = a_may_send(fz, &q, 0);
			if (why)
				violation(fz, prog, n, why, in, in_len, r);
			else if (r->retval == TC_ACT_OK)
				world_replay_note(w, r->out, r->out_len);
		}
	}

	/* What a pod receives. */
	delivered = (prog == P_TO_POD && r->retval == TC_ACT_OK) ||
		    ((prog == P_FROM_POD || prog == P_FROM_NETDEV) && r->retval == TC_ACT_REDIRECT);
	if (!delivered || !q.ipv4) {
		if (delivered && prog == P_TO_POD && q.ethertype != ETH_P_ARP && q.ethertype != ETH_P_IP)
			fz->non_ipv4_to_pod++;
		return;
	}
	if (prog == P_FROM_NETDEV &&
	    (q.key.saddr == w->node_ip || world_is_local_pod_net(w, q.key.saddr)) &&
	    world_is_local_pod(w, q.key.daddr))
		violation(fz, prog, n, "uplink packet with this node's or a local pod's source reached a pod",
			  in, in_len, r);
	if (q.key.daddr != w->ip_b)
		return;
	fz->delivered_b++;
	why = b_may_receive(fz, &q, (prog == P_FROM_POD && pod == POD_B ? FROM_SELF : 0) |
				    (prog == P_TO_POD ? FROM_STACK : 0));
	if (why)
		violation(fz, prog, n, why, f, flen, r);
}

/* ---- counters ------------------------------------------------------------ */

static int metrics_now(struct fuzz *fz, struct sluice_metric out[SLUICE_METRICS_MAX])
{
	return world_metrics_read(&fz->w, out);
}

/* The direction a program counts in (SLUICE_DIR_*). */
static uint32_t prog_dir(int prog)
{
	return prog == P_FROM_POD || prog == P_TO_NETDEV || prog == P_TO_OVERLAY ? SLUICE_DIR_EGRESS
										  : SLUICE_DIR_INGRESS;
}

/*
 * The whole run's counters: per direction, the drop reasons grew by the
 * packets the programs dropped and their bytes; xdp-pass and xdp-tx by the
 * XDP program's passes and transmits.
 */
static int check_run_counters(struct fuzz *fz)
{
	struct sluice_metric now[SLUICE_METRICS_MAX];
	uint64_t d[SLUICE_DIR_MAX] = { 0 }, b[SLUICE_DIR_MAX] = { 0 }, pass, tx;
	int bad = 0;

	if (metrics_now(fz, now))
		return -1;
	for (uint32_t reason = 0; reason < SLUICE_REASON_MAX; reason++)
		for (uint32_t dir = 0; dir < SLUICE_DIR_MAX; dir++) {
			uint32_t k = SLUICE_METRIC_INDEX(reason, dir);

			if (!sluice_reason_is_drop(reason))
				continue;
			d[dir] += now[k].packets - fz->start[k].packets;
			b[dir] += now[k].bytes - fz->start[k].bytes;
		}
	pass = now[SLUICE_METRIC_INDEX(SLUICE_XDP_PASS, SLUICE_DIR_INGRESS)].packets -
	       fz->start[SLUICE_METRIC_INDEX(SLUICE_XDP_PASS, SLUICE_DIR_INGRESS)].packets;
	tx = now[SLUICE_METRIC_INDEX(SLUICE_XDP_TX, SLUICE_DIR_INGRESS)].packets -
	     fz->start[SLUICE_METRIC_INDEX(SLUICE_XDP_TX, SLUICE_DIR_INGRESS)].packets;
	for (uint32_t dir = 0; dir < SLUICE_DIR_MAX; dir++) {
		printf("  counters, %s: %" PRIu64 " drops counted for %" PRIu64 " packets dropped (%" PRIu64
		       " bytes for %" PRIu64 ")\n", dir ? "ingress" : "egress", d[dir], fz->drops[dir],
		       b[dir], fz->drop_bytes[dir]);
		bad |= d[dir] != fz->drops[dir] || b[dir] != fz->drop_bytes[dir];
	}
	printf("  counters, xdp: xdp-pass %" PRIu64 " for %" PRIu64 " passed, xdp-tx %" PRIu64 " for %"
	       PRIu64 " sent back\n", pass, fz->xdp_act[XDP_PASS], tx, fz->xdp_act[XDP_TX]);
	bad |= pass != fz->xdp_act[XDP_PASS] || tx != fz->xdp_act[XDP_TX];
	if (bad)
		fprintf(stderr, "pktfuzz: FAILED: the run's counters do not add up\n");
	return bad ? -1 : 0;
}


/* Reasons counted beside the verdict, with the packet's bytes
 * (lib/encap.h, lib/decap.h, from_netdev's masquerade reply). Others
 * counted beside it carry 0 bytes (lib/police.h, lib/lb.h, ...). */
static int extra_with_bytes(uint32_t reason)
{
	return reason == SLUICE_OVERLAY_ENCAP || reason == SLUICE_OVERLAY_DECAP ||
	       reason == SLUICE_NAT_REVERSE;
}

/*
 * The counters a run added (the documented invariant, datapath.h
 * SLUICE_REASONS and each entry file's header): every packet a program
 * drops is counted once, under one drop reason, in the program's direction,
 * with its bytes; a packet it does not drop under no drop reason. The verdict
 * is counted with the packet's bytes at the program's one exit: from_pod,
 * to_pod and the XDP program count every packet exactly once; from_netdev,
 * from_overlay, to_netdev and to_overlay count every packet they drop or
 * redirect once, and leave a packet they hand to the host stack untouched
 * (reason pass) uncounted, which is what their exits do (host.bpf.c,
 * overlay.bpf.c). Extras (a new flow, a translation, ENCAP/DECAP) may be
 * counted beside the verdict. The XDP program's verdict reason matches its
 * action.
 */
static const char *check_counters(struct fuzz *fz, int prog, size_t len, const struct run *r)
{
	static struct sluice_metric now[SLUICE_METRICS_MAX], delta_before[SLUICE_METRICS_MAX];
	uint32_t dir = prog_dir(prog);
	uint64_t drops = 0, verdicts = 0, other_dir = 0;
	uint32_t verdict_reason = 0;
	int dropped = is_drop(prog, r->retval);

	if (metrics_now(fz, now))
		return "cannot read sluice_stats_v2";
	memcpy(delta_before, fz->before, sizeof(delta_before));
	memcpy(fz->before, now, sizeof(now));
	for (uint32_t reason = 0; reason < SLUICE_REASON_MAX; reason++) {
		for (uint32_t d = 0; d < SLUICE_DIR_MAX; d++) {
			uint32_t k = SLUICE_METRIC_INDEX(reason, d);
			uint64_t dp = now[k].packets - delta_before[k].packets;
			uint64_t db = now[k].bytes - delta_before[k].bytes;

			if (!dp)
				continue;
			if (getenv("PKTFUZZ_DEBUG"))
				fprintf(stderr, "  counted %s/%s +%" PRIu64 " (+%" PRIu64 " bytes of %zu)\n",
					sluice_reason_name(reason), d ? "ingress" : "egress", dp, db, len);
			/* (ENCAP counts what leaves the node, egress, also when
			 * the uplink's programs tunnel a Service packet on.) */
			if (d != dir) {
				if (!extra_with_bytes(reason))
					other_dir += dp;
				continue;
			}
			if (sluice_reason_is_drop(reason)) {
				drops += dp;
				if (db != dp * len)
					return "a drop counted without the packet's bytes";
			}
			if (db && !extra_with_bytes(reason)) {
				verdicts += dp;
				verdict_reason = reason;
				if (db != dp * len)
					return "a verdict counted with bytes other than the packet's";
			}
		}
	}
	if (other_dir)
		return "counted in the other direction";
	if (dropped && drops != 1)
		return "a dropped packet not counted exactly once under a drop reason";
	if (!dropped && drops)
		return "a packet not dropped counted under a drop reason";
	if (verdicts > 1)
		return "a packet counted under more than one verdict";
	if (verdicts == 0 && (prog == P_FROM_POD || prog == P_TO_POD || prog == P_XDP ||
			      r->retval == TC_ACT_REDIRECT || dropped))
		return "a packet counted under no verdict";
	if (prog == P_XDP && !dropped &&
	    verdict_reason != (r->retval == XDP_TX ? SLUICE_XDP_TX : r->retval == XDP_PASS
			       ? SLUICE_XDP_PASS : SLUICE_XDP_REDIRECT))
		return "the XDP program's counted verdict is not its action";
	return NULL;
}

/* ---- the run ---------------------------------------------------------- */

static uint64_t env_u64(const char *name, uint64_t def)
{
	const char *v = getenv(name);

	return v && *v ? strtoull(v, NULL, 0) : def;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void print_figures(const struct fuzz *fz, uint64_t total, double secs)
{
	static const char *const tc_v[4] = { "ok", "shot", "redirect", "other" };
	static const char *const xdp_v[5] = { "aborted", "drop", "pass", "tx", "redirect" };

	printf("pktfuzz: seed 0x%" PRIx64 ", %" PRIu64 " packets in %.1f s (%.0f runs/s)\n", fz->seed,
	       total, secs, (double)total / secs);
	for (int p = 0; p < NPROG; p++) {
		const struct prog_stats *s = &fz->st[p];

		printf("  %-12s %7" PRIu64 " runs (%" PRIu64 " mutated, %" PRIu64 " refused by the runner):",
		       prog_names[p], s->runs, s->mutated, s->refused);
		for (int v = 0; v < (p == P_XDP ? 5 : 4); v++)
			printf(" %s %" PRIu64, p == P_XDP ? xdp_v[v] : tc_v[v], s->verdicts[v]);
		printf("\n");
	}
	printf("  delivered to B %" PRIu64 ", left A %" PRIu64 ", non-IPv4 to_pod passed %" PRIu64
	       "\n", fz->delivered_b, fz->left_a, fz->non_ipv4_to_pod);
}

static int verdict_slot(int prog, int retval)
{
	if (prog == P_XDP)
		return retval >= 0 && retval <= XDP_REDIRECT ? retval : 0;
	return retval == TC_ACT_OK ? 0 : retval == TC_ACT_SHOT ? 1 : retval == TC_ACT_REDIRECT ? 2 : 3;
}

static int fuzz_run(struct fuzz *fz, uint64_t total)
{
	static uint8_t pkt[PF_FRAME_MAX + 64];
	static struct run r;
	uint64_t sample = env_u64("PKTFUZZ_COUNTER_EVERY", 16);

	if (metrics_now(fz, fz->before))
		return -1;
	memcpy(fz->start, fz->before, sizeof(fz->start));
	for (uint64_t n = 0; n < total && !stop_requested; n++) {
		struct gen_out g;
		int prog = (int)(n % NPROG);
		const char *why;

		world_generate(&fz->w, &fz->r, prog, pkt, &g);
		/* Counters are checked on every sample-th run, read just before. */
		if (sample > 1 && n % sample == 0 && metrics_now(fz, fz->before))
			return -1;
		if (run_one(fz, prog, g.ifindex, pkt, g.len, &r))
			return -1;
		fz->st[prog].runs++;
		fz->st[prog].mutated += g.mutated;
		if (r.refused) {
			fz->st[prog].refused++;
			continue;
		}
		fz->st[prog].verdicts[verdict_slot(prog, r.retval)]++;
		if (is_drop(prog, r.retval)) {
			uint32_t dir = prog_dir(prog);

			fz->drops[dir]++;
			fz->drop_bytes[dir] += g.len;
		}
		if (prog == P_XDP && r.retval >= 0 && r.retval <= XDP_REDIRECT)
			fz->xdp_act[r.retval]++;
		judge(fz, prog, g.pod, n, pkt, g.len, &r);
		if (sample && n % sample == 0) {
			why = check_counters(fz, prog, g.len, &r);
			if (why) {
				fz->counter_errors++;
				if (fz->counter_errors <= 10) {
					fprintf(stderr, "COUNTERS %s: packet %" PRIu64 " of %s, verdict %d "
						"(PKTFUZZ_SEED=0x%" PRIx64 ")\n", why, n, prog_names[prog],
						r.retval, fz->seed);
					hexdump("in", pkt, g.len);
				}
			}
		}
	}
	return 0;
}

int main(void)
{
	static struct fuzz fz;
	uint64_t total = env_u64("PKTFUZZ_N", DEFAULT_N);
	double t0, secs;
	int ret = 1;

	setvbuf(stdout, NULL, _IOLBF, 0);
	/* Output cut short (| head) or an interrupt must not skip the
	 * cleanup that removes the bpffs pins. */
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_stop);
	signal(SIGTERM, on_stop);
	fz.seed = env_u64("PKTFUZZ_SEED", DEFAULT_SEED);
	fz.r.s = fz.seed ? fz.seed : 1;
	printf("pktfuzz: seed 0x%" PRIx64 " (PKTFUZZ_SEED=0x%" PRIx64 " PKTFUZZ_N=%" PRIu64
	       " reproduce this run)\n", fz.seed, fz.seed, total);
	if (tupleset_init(&fz.a_in) || tupleset_init(&fz.b_out) || tupleset_init(&fz.frags)) {
		fprintf(stderr, "pktfuzz: out of memory for the oracle's tuple sets\n");
		return 1;
	}
	if (world_open(&fz.w, env_u64("PKTFUZZ_BREAK", 0) != 0))
		goto cleanup;
	t0 = now_s();
	if (fuzz_run(&fz, total))
		goto cleanup;
	secs = now_s() - t0;
	if (stop_requested) {
		fprintf(stderr, "pktfuzz: interrupted\n");
		goto cleanup;
	}
	print_figures(&fz, total, secs);
	if (world_check_bounded(&fz.w, (long)fz.frags.used) || check_run_counters(&fz))
		goto cleanup;
	if (fz.violations || fz.counter_errors) {
		fprintf(stderr, "pktfuzz: FAILED: %" PRIu64 " policy violations, %" PRIu64
			" counter mismatches (PKTFUZZ_SEED=0x%" PRIx64 ")\n", fz.violations,
			fz.counter_errors, fz.seed);
		goto cleanup;
	}
	printf("pktfuzz: ok: no violation, counters add up\n");
	ret = 0;
cleanup:
	world_close(&fz.w);
	tupleset_free(&fz.a_in);
	tupleset_free(&fz.b_out);
	tupleset_free(&fz.frags);
	return ret;
}
