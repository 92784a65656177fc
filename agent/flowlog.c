// SPDX-License-Identifier: Apache-2.0
/* The agent's flow buffer: records in, resolved entries kept (flowlog.h);
 * filters, JSON and top are in flowlog_query.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "flowlog_int.h"
#include "log.h"

const char *flow_str(const struct flow_entry *e, enum flow_str f)
{
	return e->strs && e->off[f] ? e->strs + e->off[f] : "";
}

/* ---- the buffer ------------------------------------------------------- */

static int pairs_init(struct pairs *p, size_t max)
{
	p->max = max;
	p->nslots = 2 * max;
	p->v = calloc(max, sizeof(*p->v));
	p->slot = calloc(p->nslots, sizeof(*p->slot));
	return p->v && p->slot ? 0 : -ENOMEM;
}

static void pairs_free(struct pairs *p)
{
	free(p->v);
	free(p->slot);
}

int flowlog_open(struct flowlog **out, size_t capacity, unsigned idle_timeout_s,
		 const char *node, const struct flow_resolver *res)
{
	struct flowlog *fl;

	if (!capacity || capacity > FLOWLOG_BUFFER_MAX)
		return -EINVAL;
	fl = calloc(1, sizeof(*fl));
	if (!fl)
		return -ENOMEM;
	/* calloc: pages are only touched as the ring fills. */
	fl->ring = calloc(capacity, sizeof(*fl->ring));
	fl->pv = calloc(FLOWLOG_PV_MAX, sizeof(*fl->pv));
	if (!fl->ring || !fl->pv || pairs_init(&fl->pods, FLOWLOG_POD_PAIRS_MAX) ||
	    pairs_init(&fl->nss, FLOWLOG_NS_PAIRS_MAX)) {
		flowlog_close(fl);
		return -ENOMEM;
	}
	fl->cap = capacity;
	fl->next_seq = 1;
	fl->idle_ns = (uint64_t)idle_timeout_s * 1000000000ull;
	fl->flow4_fd = fl->st_fd = -1;
	snprintf(fl->node, sizeof(fl->node), "%s", node ? node : "");
	if (res)
		fl->res = *res;
	*out = fl;
	return 0;
}

void flowlog_close(struct flowlog *fl)
{
	if (!fl)
		return;
	ring_buffer__free(fl->rb);
	for (size_t i = 0; fl->ring && i < fl->cap; i++)
		free(fl->ring[i].strs);
	free(fl->ring);
	pairs_free(&fl->pods);
	pairs_free(&fl->nss);
	free(fl->pv);
	free(fl);
}

static int rb_sample(void *ctx, void *data, size_t size)
{
	flowlog_add(ctx, data, size);
	return 0;
}

int flowlog_attach(struct flowlog *fl, int rb_fd, int flow4_fd, int st_fd, char *err,
		   size_t errlen)
{
	if (rb_fd >= 0) {
		fl->rb = ring_buffer__new(rb_fd, rb_sample, fl, NULL);
		if (!fl->rb) {
			int ret = -errno;

			snprintf(err, errlen, "cannot read flow records from %s: %s",
				 SLUICE_MAP_FLOW_RB, strerror(errno));
			return ret ? ret : -EINVAL;
		}
	}
	fl->flow4_fd = flow4_fd;
	fl->st_fd = st_fd;
	return 0;
}

int flowlog_poll_fd(const struct flowlog *fl)
{
	return fl && fl->rb ? ring_buffer__epoll_fd(fl->rb) : -1;
}

int flowlog_consume(struct flowlog *fl)
{
	int n = fl && fl->rb ? ring_buffer__consume(fl->rb) : 0;

	return n < 0 ? n : 0;
}

/* The strings of an entry into one allocation. */
struct strbuf {
	char buf[8192];
	size_t len;
};

static void put(struct strbuf *b, struct flow_entry *e, enum flow_str f, const char *s)
{
	size_t n;

	if (!s || !*s)
		return;
	n = strnlen(s, 2048);
	if (b->len + n + 1 > sizeof(b->buf))
		return;	/* cut: labels past 8 KiB in all */
	e->off[f] = (uint16_t)b->len;
	memcpy(b->buf + b->len, s, n);
	b->buf[b->len + n] = '\0';
	b->len += n + 1;
}

static const char *pol_kind_name(const char *k)
{
	return k && *k ? k : "NetworkPolicy";
}

/* The histogram of pair (src, dst), made when there is room. */
static struct flowlog_hist *pair_get(struct pairs *p, const char *src, const char *dst)
{
	uint64_t h = 1469598103934665603ull;
	size_t i;

	for (const char *c = src; *c; c++)
		h = (h ^ (unsigned char)*c) * 1099511628211ull;
	h = (h ^ 0xff) * 1099511628211ull;
	for (const char *c = dst; *c; c++)
		h = (h ^ (unsigned char)*c) * 1099511628211ull;
	for (i = h % p->nslots; p->slot[i]; i = (i + 1) % p->nslots) {
		struct flowlog_hist *x = &p->v[p->slot[i] - 1];

		if (!strcmp(x->src, src) && !strcmp(x->dst, dst))
			return x;
	}
	if (p->n == p->max)
		return NULL;
	snprintf(p->v[p->n].src, sizeof(p->v[p->n].src), "%s", src);
	snprintf(p->v[p->n].dst, sizeof(p->v[p->n].dst), "%s", dst);
	p->slot[i] = (uint32_t)++p->n;
	return &p->v[p->n - 1];
}

static void hist_add(struct flowlog_hist *h, const struct sluice_flow4_record *r)
{
	if (r->rtt_srtt_us) {
		unsigned b = 0;

		while (b < FLOWLOG_RTT_BUCKETS - 1 && r->rtt_srtt_us >= (1u << b))
			b++;
		h->buckets[b]++;
		h->count++;
		h->sum_us += r->rtt_srtt_us;
	}
	if (r->event == SLUICE_FLOW_EV_END) {
		h->retrans += (uint64_t)r->retrans[0] + r->retrans[1];
		h->flows++;
	}
}

uint64_t flowlog_hist_quantile(const struct flowlog_hist *h, double q)
{
	uint64_t want, seen = 0;

	if (!h->count)
		return 0;
	want = (uint64_t)(q * (double)h->count + 0.999999);
	if (!want)
		want = 1;
	for (unsigned b = 0; b < FLOWLOG_RTT_BUCKETS; b++) {
		seen += h->buckets[b];
		if (seen >= want)
			return 1ull << b;
	}
	return 1ull << (FLOWLOG_RTT_BUCKETS - 1);
}

/* Round trips and retransmissions by pod pair and namespace pair. */
static void pairs_account(struct flowlog *fl, const struct flow_entry *e)
{
	char src[160], dst[160], a[16];
	struct in_addr ia;
	struct flowlog_hist *h;

	if (!e->rec.rtt_srtt_us && e->rec.event != SLUICE_FLOW_EV_END)
		return;
	if (*flow_str(e, FS_SRC_POD)) {
		snprintf(src, sizeof(src), "%s/%s", flow_str(e, FS_SRC_NS), flow_str(e, FS_SRC_POD));
	} else {
		ia.s_addr = e->rec.key.saddr;
		snprintf(src, sizeof(src), "%s", inet_ntop(AF_INET, &ia, a, sizeof(a)));
	}
	if (*flow_str(e, FS_DST_POD)) {
		snprintf(dst, sizeof(dst), "%s/%s", flow_str(e, FS_DST_NS), flow_str(e, FS_DST_POD));
	} else {
		ia.s_addr = e->rec.key.daddr;
		snprintf(dst, sizeof(dst), "%s", inet_ntop(AF_INET, &ia, a, sizeof(a)));
	}
	h = pair_get(&fl->pods, src, dst);
	if (h)
		hist_add(h, &e->rec);
	else
		fl->pairs_overflow++;
	h = pair_get(&fl->nss, *flow_str(e, FS_SRC_NS) ? flow_str(e, FS_SRC_NS)
						       : flow_str(e, FS_SRC_KIND),
		     *flow_str(e, FS_DST_NS) ? flow_str(e, FS_DST_NS) : flow_str(e, FS_DST_KIND));
	if (h)
		hist_add(h, &e->rec);
	else
		fl->pairs_overflow++;
}

static void resolve(struct flowlog *fl, struct flow_entry *e, const char *end_cause)
{
	const struct sluice_flow4_record *r = &e->rec;
	struct flow_resolver *res = &fl->res;
	struct flow_who who[2] = { { 0 } };
	struct flow_pol pol = { 0 }, iso[FLOWLOG_ISO_MAX];
	struct strbuf sb, *b = &sb;
	const char *sns = NULL, *sname = NULL;

	e->pol_rule = -1;
	b->buf[0] = '\0';
	b->len = 1;
	for (int s = 0; s < 2; s++) {
		uint32_t ip = ntohl(s ? r->key.daddr : r->key.saddr);
		uint32_t id = s ? r->dst_identity : r->src_identity;
		int base = s ? FS_DST_KIND : FS_SRC_KIND;

		if (res->peer)
			res->peer(res->ctx, ip, id, &who[s]);
		put(b, e, base, who[s].kind ? who[s].kind : "unknown");
		put(b, e, base + 1, who[s].ns);
		put(b, e, base + 2, who[s].pod);
		put(b, e, base + 3, who[s].labels);
		put(b, e, base + 4, who[s].node);
	}
	if (r->policy_rule == SLUICE_FLOW_RULE_DEFAULT) {
		/* The endpoint whose policy decided: the sender at egress,
		 * the receiver at ingress. */
		uint32_t ip = ntohl(r->dir == SLUICE_DIR_EGRESS ? r->key.saddr : r->key.daddr);
		size_t n = res->isolation ? res->isolation(res->ctx, ip, r->dir, iso,
							  FLOWLOG_ISO_MAX) : 0;

		/* dir is where the flow's first packet met its pod; a drop
		 * at the other end (both pods on this node, the sender's
		 * egress allowed) is the receiver's isolation. */
		if (!n && res->isolation) {
			int other = r->dir == SLUICE_DIR_EGRESS ? SLUICE_DIR_INGRESS : SLUICE_DIR_EGRESS;

			ip = ntohl(other == SLUICE_DIR_EGRESS ? r->key.saddr : r->key.daddr);
			n = res->isolation(res->ctx, ip, other, iso, FLOWLOG_ISO_MAX);
		}

		e->niso_total = (uint8_t)(n > 255 ? 255 : n);
		e->niso = (uint8_t)(n < FLOWLOG_ISO_MAX ? n : FLOWLOG_ISO_MAX);
		for (size_t i = 0; i < e->niso; i++) {
			put(b, e, FS_ISO_KIND + (int)i, pol_kind_name(iso[i].kind));
			put(b, e, FS_ISO_NS + (int)i, iso[i].ns);
			put(b, e, FS_ISO_NAME + (int)i, iso[i].name);
		}
	} else if (r->policy_rule != SLUICE_FLOW_RULE_NONE && res->policy &&
		   res->policy(res->ctx, r->policy_rule, &pol)) {
		put(b, e, FS_POL_KIND, pol_kind_name(pol.kind));
		put(b, e, FS_POL_NS, pol.ns);
		put(b, e, FS_POL_NAME, pol.name);
		e->pol_rule = pol.rule;
	}
	if (r->svc_addr && res->service &&
	    res->service(res->ctx, ntohl(r->svc_addr), ntohs(r->svc_port), r->key.proto, &sns,
			 &sname)) {
		put(b, e, FS_SVC_NS, sns);
		put(b, e, FS_SVC_NAME, sname);
	}
	put(b, e, FS_END_CAUSE, end_cause);
	e->strs = malloc(b->len);
	if (e->strs)
		memcpy(e->strs, b->buf, b->len);
	else
		memset(e->off, 0, sizeof(e->off));	/* the entry keeps its numbers */
}

/* A new flow's verdict, and its policy verdict by namespace. */
static void verdicts_account(struct flowlog *fl, const struct flow_entry *e)
{
	const struct sluice_flow4_record *r = &e->rec;
	const char *ns = flow_str(e, FS_POL_NS);
	struct flowlog_pv_row *row = NULL;
	enum flowlog_pv v;

	if (r->event != SLUICE_FLOW_EV_START)
		return;
	if (r->verdict < FLOWLOG_VERDICTS)
		fl->by_verdict[r->verdict]++;
	if (r->policy_rule == SLUICE_FLOW_RULE_NONE)
		return;
	v = r->verdict == SLUICE_FLOW_DROPPED ? FLOWLOG_PV_DENIED :
	    r->verdict == SLUICE_FLOW_AUDIT   ? FLOWLOG_PV_AUDIT : FLOWLOG_PV_ALLOWED;
	if (!*ns)
		ns = flow_str(e, FS_ISO_NS);
	if (!*ns)
		ns = flow_str(e, r->dir == SLUICE_DIR_EGRESS ? FS_SRC_NS : FS_DST_NS);
	/* The namespace of the last record first: records come in runs. */
	if (fl->pv_last < fl->npv && !strcmp(fl->pv[fl->pv_last].ns, ns))
		row = &fl->pv[fl->pv_last];
	for (size_t i = 0; !row && i < fl->npv; i++)
		if (!strcmp(fl->pv[i].ns, ns)) {
			row = &fl->pv[i];
			fl->pv_last = i;
		}
	if (!row && fl->npv < FLOWLOG_PV_MAX && strlen(ns) < sizeof(row->ns)) {
		row = &fl->pv[fl->npv];
		fl->pv_last = fl->npv++;
		snprintf(row->ns, sizeof(row->ns), "%s", ns);
	}
	if (row)
		row->n[v]++;
	else
		fl->pv_other[v]++;
}

static int add_record(struct flowlog *fl, const struct sluice_flow4_record *r, const char *cause,
		      bool agent_made)
{
	struct flow_entry *e = &fl->ring[(fl->next_seq - 1) % fl->cap];
	int64_t off = (int64_t)mono_ns(CLOCK_REALTIME) - (int64_t)mono_ns(CLOCK_MONOTONIC);

	fl->received++;
	if (e->seq) {
		fl->overwritten++;
		free(e->strs);
	} else {
		fl->used++;
	}
	memset(e, 0, sizeof(*e));
	e->seq = fl->next_seq++;
	e->rec = *r;
	e->time_ns = (int64_t)r->time + off;
	e->first_ns = r->first_seen ? (int64_t)r->first_seen + off : e->time_ns;
	e->agent_made = agent_made;
	resolve(fl, e, cause);
	pairs_account(fl, e);
	verdicts_account(fl, e);
	return 0;
}

int flowlog_add(struct flowlog *fl, const void *rec, size_t len)
{
	struct sluice_flow4_record r;

	if (len != sizeof(r)) {
		fl->malformed++;
		return -EINVAL;
	}
	memcpy(&r, rec, sizeof(r));
	return add_record(fl, &r, r.event == SLUICE_FLOW_EV_END
					  ? (r.tcp_flags[0] | r.tcp_flags[1]) & 0x04 ? "rst" : "fin"
					  : NULL, false);
}

int flowlog_add_end(struct flowlog *fl, const struct sluice_ct_key *key,
		    const struct sluice_flow4_value *v, uint64_t now_mono_ns, const char *cause)
{
	struct sluice_flow4_record r = {
		.time = now_mono_ns, .key = *key, .event = SLUICE_FLOW_EV_END,
		.verdict = v->verdict, .reason = v->reason, .ifindex = v->ifindex,
		.src_identity = v->src_identity, .dst_identity = v->dst_identity,
		.policy_rule = v->policy_rule, .svc_addr = v->svc_addr, .svc_port = v->svc_port,
		.tcp_flags = { v->tcp_flags[0], v->tcp_flags[1] }, .dir = v->dir,
		.drops_suppressed = v->drops_suppressed, .drops = v->drops,
		.first_seen = v->first_seen, .packets = { v->packets[0], v->packets[1] },
		.bytes = { v->bytes[0], v->bytes[1] },
		.retrans = { v->retrans[0], v->retrans[1] },
		.rtt_min_us = v->rtt_min_us, .rtt_srtt_us = v->rtt_srtt_us,
	};

	fl->idle_ended++;
	return add_record(fl, &r, cause, true);
}

const struct flow_entry *flowlog_get(const struct flowlog *fl, uint64_t seq)
{
	const struct flow_entry *e;

	if (!seq || seq >= fl->next_seq)
		return NULL;
	e = &fl->ring[(seq - 1) % fl->cap];
	return e->seq == seq ? e : NULL;
}

/* ---- idle flows --------------------------------------------------------- */

#define SCAN_BATCH 1024

int flowlog_scan_idle(struct flowlog *fl, uint64_t now)
{
	DECLARE_LIBBPF_OPTS(bpf_map_batch_opts, opts);
	struct sluice_ct_key keys[SCAN_BATCH];
	struct sluice_flow4_value *vals = NULL;
	__u64 in = 0, out = 0;
	int ended = 0, first = 1, done = 0;

	if (fl->flow4_fd < 0 || !fl->idle_ns)
		return 0;
	vals = malloc(sizeof(*vals) * SCAN_BATCH);
	if (!vals)
		return -ENOMEM;
	while (!done) {
		__u32 count = SCAN_BATCH;
		int ret = bpf_map_lookup_batch(fl->flow4_fd, first ? NULL : &in, &out, keys, vals,
					       &count, &opts);

		if (ret && errno != ENOENT) {
			pr_warn("flows: cannot walk %s: %s", SLUICE_MAP_FLOW4, strerror(errno));
			break;
		}
		done = ret != 0;
		first = 0;
		in = out;
		for (__u32 i = 0; i < count; i++) {
			struct sluice_flow4_value now_v;

			if (vals[i].last_seen + fl->idle_ns > now)
				continue;
			/* Seen again since the batch was read: not idle. */
			if (bpf_map_lookup_elem(fl->flow4_fd, &keys[i], &now_v) ||
			    now_v.last_seen + fl->idle_ns > now)
				continue;
			if (bpf_map_delete_elem(fl->flow4_fd, &keys[i]))
				continue;
			/* The datapath said END already (FIN or RST). */
			if (now_v.flags & SLUICE_FLOW_F_ENDED)
				continue;
			flowlog_add_end(fl, &keys[i], &now_v, now, "idle");
			ended++;
		}
	}
	free(vals);
	return ended;
}

int flowlog_tick(struct flowlog *fl)
{
	uint64_t now, every;

	if (!fl || fl->flow4_fd < 0)
		return -1;
	now = mono_ns(CLOCK_MONOTONIC);
	if (now >= fl->next_scan_ns) {
		flowlog_scan_idle(fl, now);
		every = fl->idle_ns / 4 / 1000000ull;
		if (every < FLOWLOG_SCAN_MIN_MS)
			every = FLOWLOG_SCAN_MIN_MS;
		if (every > FLOWLOG_SCAN_MAX_MS)
			every = FLOWLOG_SCAN_MAX_MS;
		fl->next_scan_ns = now + every * 1000000ull;
	}
	return (int)((fl->next_scan_ns - now) / 1000000ull) + 1;
}

/* ---- counters ------------------------------------------------------------ */

/* Per-CPU counters of sluice_flowst_v1 summed. */
static void datapath_losses(int fd, uint64_t sum[SLUICE_FLOW_ST_MAX])
{
	int ncpu = libbpf_num_possible_cpus();
	uint64_t *v;

	memset(sum, 0, sizeof(uint64_t) * SLUICE_FLOW_ST_MAX);
	if (fd < 0 || ncpu <= 0)
		return;
	v = calloc((size_t)ncpu, sizeof(*v));
	for (__u32 k = 0; v && k < SLUICE_FLOW_ST_MAX; k++) {
		if (bpf_map_lookup_elem(fd, &k, v))
			continue;
		for (int c = 0; c < ncpu; c++)
			sum[k] += v[c];
	}
	free(v);
}

int flowlog_stats(const struct flowlog *fl, struct flowlog_stats *o)
{
	uint64_t dp[SLUICE_FLOW_ST_MAX];

	if (!fl)
		return -EINVAL;
	datapath_losses(fl->st_fd, dp);
	*o = (struct flowlog_stats){
		.capacity = fl->cap, .used = fl->used, .received = fl->received,
		.overwritten = fl->overwritten, .idle_ended = fl->idle_ended,
		.malformed = fl->malformed, .last_seq = fl->next_seq - 1,
		.rb_full = dp[SLUICE_FLOW_ST_RB_FULL],
		.rate_limited = dp[SLUICE_FLOW_ST_RATE_LIMITED],
		.map_full = dp[SLUICE_FLOW_ST_MAP_FULL],
		.pod_pairs = fl->pods.v, .npod_pairs = fl->pods.n,
		.ns_pairs = fl->nss.v, .nns_pairs = fl->nss.n,
		.pairs_overflow = fl->pairs_overflow,
		.pv = fl->pv, .npv = fl->npv,
	};
	memcpy(o->flows_by_verdict, fl->by_verdict, sizeof(o->flows_by_verdict));
	memcpy(o->pv_other, fl->pv_other, sizeof(o->pv_other));
	return 0;
}

json_t *flowlog_status_json(const struct flowlog *fl)
{
	struct flowlog_stats s;

	if (flowlog_stats(fl, &s))
		return json_null();
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:{s:I, s:I, s:I, s:I}, s:I}", "capacity",
			 (json_int_t)s.capacity, "used", (json_int_t)s.used, "received",
			 (json_int_t)s.received, "idleEnded", (json_int_t)s.idle_ended, "lastSeq",
			 (json_int_t)s.last_seq, "lost", "ringBufferFull", (json_int_t)s.rb_full,
			 "rateLimited", (json_int_t)s.rate_limited, "mapFull",
			 (json_int_t)s.map_full, "overwritten", (json_int_t)s.overwritten,
			 "malformed", (json_int_t)s.malformed);
}

