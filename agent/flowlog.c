// SPDX-License-Identifier: Apache-2.0
/* The agent's flow buffer: records in, resolved entries kept (flowlog.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "flowlog.h"
#include "log.h"

struct pairs {
	struct flowlog_hist *v;
	size_t n, max;
	uint32_t *slot;		/* open addressing: index + 1, 0: empty */
	size_t nslots;
};

struct flowlog {
	struct flow_entry *ring;
	size_t cap;
	uint64_t next_seq;	/* the next entry's; entries hold [next_seq - used, next_seq) */
	size_t used;
	uint64_t received, overwritten, idle_ended, malformed, pairs_overflow;
	struct flow_resolver res;
	char node[256];
	uint64_t idle_ns;
	uint64_t next_scan_ns;	/* CLOCK_MONOTONIC */
	struct ring_buffer *rb;
	int flow4_fd, st_fd;
	struct pairs pods, nss;
};

static const char *const reason_names[SLUICE_REASON_SLOTS] = {
#define X(name, num, drop, short_name, desc) [num] = short_name,
	SLUICE_REASONS(X)
#undef X
};
static const char *const reason_descs[SLUICE_REASON_SLOTS] = {
#define X(name, num, drop, short_name, desc) [num] = desc,
	SLUICE_REASONS(X)
#undef X
};
static const char *const verdict_names[] = {
	[SLUICE_FLOW_FORWARDED] = "FORWARDED", [SLUICE_FLOW_DROPPED] = "DROPPED",
	[SLUICE_FLOW_AUDIT] = "AUDIT", [SLUICE_FLOW_TRANSLATED] = "TRANSLATED",
};
static const char *const event_names[] = {
	[SLUICE_FLOW_EV_START] = "START", [SLUICE_FLOW_EV_DROP] = "DROP",
	[SLUICE_FLOW_EV_END] = "END", [SLUICE_FLOW_EV_UPDATE] = "UPDATE",
};

#define NAME_OF(tab, i) ((size_t)(i) < sizeof(tab) / sizeof(tab[0]) && (tab)[i] ? (tab)[i] : "unknown")

static uint64_t mono_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

const char *flow_str(const struct flow_entry *e, enum flow_str f)
{
	return e->strs && e->off[f] ? e->strs + e->off[f] : "";
}

static const char *proto_name(uint8_t p)
{
	switch (p) {
	case IPPROTO_TCP: return "TCP";
	case IPPROTO_UDP: return "UDP";
	case IPPROTO_ICMP: return "ICMP";
	case IPPROTO_SCTP: return "SCTP";
	default: return NULL;
	}
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
	if (!fl->ring || pairs_init(&fl->pods, FLOWLOG_POD_PAIRS_MAX) ||
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
	struct strbuf *b = malloc(sizeof(*b));
	const char *sns = NULL, *sname = NULL;

	e->pol_rule = -1;
	if (!b)
		return;	/* the entry keeps its numbers */
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
		memset(e->off, 0, sizeof(e->off));
	free(b);
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
	uint64_t now;

	if (!fl || fl->flow4_fd < 0)
		return -1;
	now = mono_ns(CLOCK_MONOTONIC);
	if (now >= fl->next_scan_ns) {
		flowlog_scan_idle(fl, now);
		fl->next_scan_ns = now + FLOWLOG_SCAN_MS * 1000000ull;
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
	};
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

/* ---- JSON ------------------------------------------------------------------ */

static void time_format(int64_t ns, char *buf, size_t len)
{
	time_t t = (time_t)(ns / 1000000000);
	struct tm tm;
	char s[32];

	strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%S", gmtime_r(&t, &tm));
	snprintf(buf, len, "%s.%09lldZ", s, (long long)(ns % 1000000000));
}

static void tcp_flags_format(uint8_t f, char *buf, size_t len)
{
	static const char *const names[] = { "FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR" };
	size_t off = 0;

	buf[0] = '\0';
	for (int i = 0; i < 8 && off < len; i++)
		if (f & (1u << i))
			off += (size_t)snprintf(buf + off, len - off, "%s%s", off ? "," : "", names[i]);
}

static json_t *labels_obj(const char *s)
{
	json_t *o = json_object();
	char *copy = strdup(s), *save = NULL;

	for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; t && o;
	     t = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(t, '=');

		if (eq)
			*eq = '\0';
		json_object_set_new(o, t, json_string(eq ? eq + 1 : ""));
	}
	free(copy);
	return o;
}

static json_t *peer_json(const struct flow_entry *e, int side)
{
	int base = side ? FS_DST_KIND : FS_SRC_KIND;
	struct in_addr ia = { side ? e->rec.key.daddr : e->rec.key.saddr };
	char a[16];
	json_t *o;

	inet_ntop(AF_INET, &ia, a, sizeof(a));
	o = json_pack("{s:s, s:i, s:I, s:s}", "ip", a, "port",
		      ntohs(side ? e->rec.key.dport : e->rec.key.sport), "identity",
		      (json_int_t)(side ? e->rec.dst_identity : e->rec.src_identity), "kind",
		      flow_str(e, base));
	if (o && *flow_str(e, base + 1))
		json_object_set_new(o, "namespace", json_string(flow_str(e, base + 1)));
	if (o && *flow_str(e, base + 2))
		json_object_set_new(o, "pod", json_string(flow_str(e, base + 2)));
	if (o && *flow_str(e, base + 1))
		json_object_set_new(o, "labels", labels_obj(flow_str(e, base + 3)));
	if (o && *flow_str(e, base + 4))
		json_object_set_new(o, "node", json_string(flow_str(e, base + 4)));
	return o;
}

json_t *flow_entry_json(const struct flowlog *fl, const struct flow_entry *e)
{
	const struct sluice_flow4_record *r = &e->rec;
	char t[48], f0[40], f1[40], a[16];
	const char *proto = proto_name(r->key.proto);
	json_t *o;

	time_format(e->time_ns, t, sizeof(t));
	tcp_flags_format(r->tcp_flags[0], f0, sizeof(f0));
	tcp_flags_format(r->tcp_flags[1], f1, sizeof(f1));
	o = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:s, s:i, s:o, s:o, s:i,"
		      " s:{s:s, s:s}, s:{s:I, s:I}, s:{s:I, s:I}, s:I, s:I, s:{s:i, s:i},"
		      " s:i, s:i}",
		      "seq", (json_int_t)e->seq, "time", t, "node", fl ? fl->node : "",
		      "event", NAME_OF(event_names, r->event), "verdict",
		      NAME_OF(verdict_names, r->verdict), "reason",
		      r->reason < SLUICE_REASON_SLOTS && reason_names[r->reason]
			      ? reason_names[r->reason] : "unknown",
		      "reasonDescription",
		      r->reason < SLUICE_REASON_SLOTS && reason_descs[r->reason]
			      ? reason_descs[r->reason] : "",
		      "drop", r->verdict == SLUICE_FLOW_DROPPED, "direction",
		      r->dir == SLUICE_DIR_INGRESS ? "ingress" : "egress", "ifindex",
		      (int)r->ifindex, "source", peer_json(e, 0), "destination", peer_json(e, 1),
		      "protocolNumber", r->key.proto, "tcpFlags", "forward", f0, "reply", f1,
		      "packets", "forward", (json_int_t)r->packets[0], "reply",
		      (json_int_t)r->packets[1], "bytes", "forward", (json_int_t)r->bytes[0],
		      "reply", (json_int_t)r->bytes[1], "drops", (json_int_t)r->drops,
		      "dropsSuppressed", (json_int_t)r->drops_suppressed, "retransmits",
		      "forward", (int)r->retrans[0], "reply", (int)r->retrans[1], "rttMinUs",
		      (int)r->rtt_min_us, "rttSmoothedUs", (int)r->rtt_srtt_us);
	if (!o)
		return NULL;
	json_object_set_new(o, "protocol", proto ? json_string(proto) : json_integer(r->key.proto));
	time_format(e->first_ns, t, sizeof(t));
	json_object_set_new(o, "firstSeen", json_string(t));
	json_object_set_new(o, "agentMade", json_boolean(e->agent_made));
	if (*flow_str(e, FS_END_CAUSE))
		json_object_set_new(o, "endCause", json_string(flow_str(e, FS_END_CAUSE)));
	if (*flow_str(e, FS_POL_NAME)) {
		json_t *p = json_pack("{s:s, s:s, s:i}", "kind", flow_str(e, FS_POL_KIND), "name",
				      flow_str(e, FS_POL_NAME), "rule", e->pol_rule);

		if (p && *flow_str(e, FS_POL_NS))
			json_object_set_new(p, "namespace", json_string(flow_str(e, FS_POL_NS)));
		json_object_set_new(o, "policy", p);
	}
	if (r->policy_rule == SLUICE_FLOW_RULE_DEFAULT) {
		json_t *iso = json_array();

		for (int i = 0; i < e->niso; i++) {
			json_t *p = json_pack("{s:s, s:s}", "kind", flow_str(e, FS_ISO_KIND + i),
					      "name", flow_str(e, FS_ISO_NAME + i));

			if (p && *flow_str(e, FS_ISO_NS + i))
				json_object_set_new(p, "namespace",
						    json_string(flow_str(e, FS_ISO_NS + i)));
			json_array_append_new(iso, p);
		}
		json_object_set_new(o, "deniedByDefault", json_true());
		json_object_set_new(o, "isolatedBy", iso);
		json_object_set_new(o, "isolatedByCount", json_integer(e->niso_total));
	}
	if (r->svc_addr) {
		struct in_addr ia = { r->svc_addr };
		json_t *s = json_pack("{s:s, s:i}", "ip", inet_ntop(AF_INET, &ia, a, sizeof(a)),
				      "port", ntohs(r->svc_port));

		if (s && *flow_str(e, FS_SVC_NAME)) {
			json_object_set_new(s, "namespace", json_string(flow_str(e, FS_SVC_NS)));
			json_object_set_new(s, "name", json_string(flow_str(e, FS_SVC_NAME)));
		}
		json_object_set_new(o, "service", s);
	}
	return o;
}

/* ---- filters ----------------------------------------------------------------- */

struct nsname {
	char *ns;	/* NULL: any (a cluster-scoped policy: "") */
	char *name;	/* NULL: any */
};

struct labelsel {
	size_t n;
	struct term {
		char *key, *val;	/* val NULL: exists / does not exist */
		bool neg;
	} *t;
};

struct flow_filter {
	struct nsname *from_pod, *to_pod, *pod, *policy, *service;
	size_t nfrom_pod, nto_pod, npod, npolicy, nservice;
	char **ns;
	size_t nns;
	struct cidr { uint32_t net, mask; } *from_ip, *to_ip;
	size_t nfrom_ip, nto_ip;
	struct labelsel *label;
	size_t nlabel;
	int *verdict, *reason, *proto, *port;
	size_t nverdict, nreason, nproto, nport;
	double since;		/* seconds; 0: none */
	size_t last;		/* 0: none */
	uint64_t after;
};

void flow_filter_free(struct flow_filter *f)
{
	if (!f)
		return;
	struct nsname *lists[] = { f->from_pod, f->to_pod, f->pod, f->policy, f->service };
	size_t ns[] = { f->nfrom_pod, f->nto_pod, f->npod, f->npolicy, f->nservice };

	for (size_t l = 0; l < 5; l++) {
		for (size_t i = 0; i < ns[l]; i++) {
			free(lists[l][i].ns);
			free(lists[l][i].name);
		}
		free(lists[l]);
	}
	for (size_t i = 0; i < f->nns; i++)
		free(f->ns[i]);
	free(f->ns);
	free(f->from_ip);
	free(f->to_ip);
	for (size_t i = 0; i < f->nlabel; i++) {
		for (size_t k = 0; k < f->label[i].n; k++) {
			free(f->label[i].t[k].key);
			free(f->label[i].t[k].val);
		}
		free(f->label[i].t);
	}
	free(f->label);
	free(f->verdict);
	free(f->reason);
	free(f->proto);
	free(f->port);
	free(f);
}

/* A member as an array of strings (one string, or numbers, also do). */
static int member(const json_t *req, const char *key, json_t **out)
{
	json_t *v = json_object_get(req, key), *a;
	size_t i;
	json_t *x;

	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	a = json_array();
	if (json_is_array(v)) {
		json_array_foreach(v, i, x)
			json_array_append(a, x);
	} else {
		json_array_append(a, v);
	}
	json_array_foreach(a, i, x)
		if (!json_is_string(x) && !json_is_integer(x)) {
			json_decref(a);
			return -EINVAL;
		}
	*out = a;
	return 0;
}

static const char *text_of(const json_t *x, char *buf, size_t len)
{
	if (json_is_integer(x)) {
		snprintf(buf, len, "%lld", (long long)json_integer_value(x));
		return buf;
	}
	return json_string_value(x);
}

/* "NS/NAME", "NS/" (any name); cluster: "NAME" alone names a cluster-
 * scoped object (ns ""), else (pods, Services) it is an error. */
static int parse_nsname(const char *s, bool cluster_ok, struct nsname *o)
{
	const char *sl = strchr(s, '/');

	memset(o, 0, sizeof(*o));
	if (!*s)
		return -EINVAL;
	if (!sl) {
		if (!cluster_ok)
			return -EINVAL;
		o->ns = strdup("");
		o->name = strdup(s);
	} else {
		if (sl == s || strchr(sl + 1, '/'))
			return -EINVAL;
		o->ns = strndup(s, (size_t)(sl - s));
		o->name = sl[1] ? strdup(sl + 1) : NULL;
		if (sl[1] && !o->name)
			return -ENOMEM;
	}
	return o->ns ? 0 : -ENOMEM;
}

static int parse_label(const char *s, struct labelsel *o)
{
	char *copy = strdup(s), *save = NULL;
	int ret = 0;

	memset(o, 0, sizeof(*o));
	if (!copy)
		return -ENOMEM;
	for (char *t = strtok_r(copy, ",", &save); t && !ret; t = strtok_r(NULL, ",", &save)) {
		struct term x = { 0 };
		char *ne = strstr(t, "!="), *eq = strchr(t, '=');
		struct term *nt;

		while (*t == ' ')
			t++;
		if (ne) {
			*ne = '\0';
			x.neg = true;
			x.val = strdup(ne + 2);
		} else if (eq) {
			*eq = '\0';
			x.val = strdup(eq[1] == '=' ? eq + 2 : eq + 1);
		} else if (*t == '!') {
			x.neg = true;
			t++;
		}
		if (!*t) {
			free(x.val);
			ret = -EINVAL;
			break;
		}
		x.key = strdup(t);
		nt = realloc(o->t, (o->n + 1) * sizeof(*o->t));
		if (!nt || !x.key || ((ne || eq) && !x.val)) {
			free(x.key);
			free(x.val);
			ret = -ENOMEM;
			break;
		}
		o->t = nt;
		o->t[o->n++] = x;
	}
	free(copy);
	if (!ret && !o->n)
		ret = -EINVAL;
	return ret;
}

static int parse_cidr(const char *s, struct cidr *o)
{
	char a[32];
	const char *sl = strchr(s, '/');
	unsigned long bits = 32;
	struct in_addr ia;
	char *end;

	if (strlen(s) >= sizeof(a))
		return -EINVAL;
	snprintf(a, sizeof(a), "%.*s", sl ? (int)(sl - s) : (int)strlen(s), s);
	if (inet_pton(AF_INET, a, &ia) != 1)
		return -EINVAL;
	if (sl) {
		bits = strtoul(sl + 1, &end, 10);
		if (*end || end == sl + 1 || bits > 32)
			return -EINVAL;
	}
	o->mask = bits ? ~0u << (32 - bits) : 0;
	o->net = ntohl(ia.s_addr) & o->mask;
	return 0;
}

static int parse_enum(const char *s, const char *kind, int *out)
{
	char *end;

	if (!strcmp(kind, "verdict")) {
		for (int i = 1; i < (int)(sizeof(verdict_names) / sizeof(verdict_names[0])); i++)
			if (!strcasecmp(s, verdict_names[i])) {
				*out = i;
				return 0;
			}
		return -EINVAL;
	}
	if (!strcmp(kind, "reason")) {
		for (int i = 0; i < SLUICE_REASON_MAX; i++) {
			const char *n = reason_names[i];

			if (n && (!strcasecmp(s, n) ||
				  (!strncmp(n, "drop-", 5) && !strcasecmp(s, n + 5)))) {
				*out = i;
				return 0;
			}
		}
		return -EINVAL;
	}
	if (!strcmp(kind, "protocol")) {
		static const struct { const char *n; int p; } ps[] = {
			{ "tcp", IPPROTO_TCP }, { "udp", IPPROTO_UDP }, { "icmp", IPPROTO_ICMP },
			{ "sctp", IPPROTO_SCTP },
		};
		for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++)
			if (!strcasecmp(s, ps[i].n)) {
				*out = ps[i].p;
				return 0;
			}
	}
	*out = (int)strtol(s, &end, 10);
	if (*end || end == s || *out < 0 || *out > (!strcmp(kind, "port") ? 65535 : 255))
		return -EINVAL;
	return 0;
}

int flow_filter_parse(const json_t *req, struct flow_filter **out, char *err, size_t errlen)
{
	static const struct {
		const char *key, *what;
	} members[] = {
		{ "fromPod", "NAMESPACE/POD" }, { "toPod", "NAMESPACE/POD" },
		{ "pod", "NAMESPACE/POD" }, { "policy", "NAMESPACE/NAME (or NAME)" },
		{ "service", "NAMESPACE/NAME" }, { "namespace", "a namespace" },
		{ "fromIP", "an address or CIDR" }, { "toIP", "an address or CIDR" },
		{ "label", "a selector (k=v,k!=v,k,!k)" },
		{ "verdict", "FORWARDED, DROPPED, AUDIT or TRANSLATED" },
		{ "dropReason", "a drop reason (drop-policy, policy, ...)" },
		{ "protocol", "TCP, UDP, ICMP, SCTP or a number" },
		{ "port", "a port (0-65535)" },
	};
	struct flow_filter *f = calloc(1, sizeof(*f));
	json_t *arr = NULL, *x;
	int ret = f ? 0 : -ENOMEM;
	const json_t *v;
	char num[32];

	for (size_t m = 0; m < sizeof(members) / sizeof(members[0]) && !ret; m++) {
		size_t n, i;
		const char *key = members[m].key;

		ret = member(req, key, &arr);
		if (ret || !arr)
			goto bad_type;
		n = json_array_size(arr);
		json_array_foreach(arr, i, x) {
			const char *s = text_of(x, num, sizeof(num));

			if (m < 5) {
				struct nsname **l[] = { &f->from_pod, &f->to_pod, &f->pod, &f->policy,
							&f->service };
				size_t *c[] = { &f->nfrom_pod, &f->nto_pod, &f->npod, &f->npolicy,
						&f->nservice };

				if (!*l[m] && !(*l[m] = calloc(n, sizeof(**l[m]))))
					ret = -ENOMEM;
				else
					ret = parse_nsname(s, m == 3, &(*l[m])[(*c[m])++]);
			} else if (m == 5) {
				if (!f->ns && !(f->ns = calloc(n, sizeof(*f->ns))))
					ret = -ENOMEM;
				else if (!(f->ns[f->nns++] = strdup(s)))
					ret = -ENOMEM;
			} else if (m <= 7) {
				struct cidr **l = m == 6 ? &f->from_ip : &f->to_ip;
				size_t *c = m == 6 ? &f->nfrom_ip : &f->nto_ip;

				if (!*l && !(*l = calloc(n, sizeof(**l))))
					ret = -ENOMEM;
				else
					ret = parse_cidr(s, &(*l)[(*c)++]);
			} else if (m == 8) {
				if (!f->label && !(f->label = calloc(n, sizeof(*f->label))))
					ret = -ENOMEM;
				else
					ret = parse_label(s, &f->label[f->nlabel++]);
			} else {
				int **l[] = { &f->verdict, &f->reason, &f->proto, &f->port };
				size_t *c[] = { &f->nverdict, &f->nreason, &f->nproto, &f->nport };
				const char *kinds[] = { "verdict", "reason", "protocol", "port" };

				if (!*l[m - 9] && !(*l[m - 9] = calloc(n, sizeof(int))))
					ret = -ENOMEM;
				else
					ret = parse_enum(s, kinds[m - 9],
							 &(*l[m - 9])[(*c[m - 9])++]);
			}
			if (ret) {
				snprintf(err, errlen, "filter %s: '%s' is not %s", key, s ? s : "",
					 members[m].what);
				break;
			}
		}
		json_decref(arr);
		arr = NULL;
		continue;
bad_type:
		if (ret)
			snprintf(err, errlen, "filter %s takes strings (one or a list of %s)", key,
				 members[m].what);
	}
	v = json_object_get(req, "since");
	if (!ret && v && !(json_is_number(v) && json_number_value(v) > 0)) {
		snprintf(err, errlen, "filter since takes a number of seconds above 0");
		ret = -EINVAL;
	}
	if (!ret && v)
		f->since = json_number_value(v);
	v = json_object_get(req, "last");
	if (!ret && v && !(json_is_integer(v) && json_integer_value(v) > 0)) {
		snprintf(err, errlen, "filter last takes a number of flows above 0");
		ret = -EINVAL;
	}
	if (!ret && v)
		f->last = (size_t)json_integer_value(v);
	v = json_object_get(req, "after");
	if (!ret && v && !(json_is_integer(v) && json_integer_value(v) >= 0)) {
		snprintf(err, errlen, "filter after takes a sequence number");
		ret = -EINVAL;
	}
	if (!ret && v)
		f->after = (uint64_t)json_integer_value(v);
	if (ret) {
		if (ret == -ENOMEM)
			snprintf(err, errlen, "out of memory");
		flow_filter_free(f);
		return ret;
	}
	*out = f;
	return 0;
}

static bool nsname_is(const struct nsname *n, const char *ns, const char *name)
{
	return ns && !strcmp(n->ns, ns) && (!n->name || (name && !strcmp(n->name, name)));
}

static bool any_nsname(const struct nsname *l, size_t n, const char *ns, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (*ns && nsname_is(&l[i], ns, name))
			return true;
	return false;
}

/* Value of key in "k=v,k2=v2" (*len its length), or NULL. */
static const char *label_value(const char *labels, const char *key, size_t *len)
{
	size_t kl = strlen(key);

	for (const char *p = labels; p && *p;) {
		const char *end = strchr(p, ','), *eq = strchr(p, '=');

		if (!end)
			end = p + strlen(p);
		if (eq && eq < end && (size_t)(eq - p) == kl && !strncmp(p, key, kl)) {
			*len = (size_t)(end - eq - 1);
			return eq + 1;
		}
		p = *end ? end + 1 : end;
	}
	return NULL;
}

static bool sel_matches(const struct labelsel *s, const char *labels, bool is_pod)
{
	if (!is_pod)
		return false;
	for (size_t i = 0; i < s->n; i++) {
		const struct term *t = &s->t[i];
		size_t len = 0;
		const char *v = label_value(labels, t->key, &len);
		bool hit = v && (!t->val || (len == strlen(t->val) && !strncmp(v, t->val, len)));

		if (hit == t->neg)
			return false;
	}
	return true;
}

static bool in_cidrs(const struct cidr *l, size_t n, __be32 addr)
{
	uint32_t ip = ntohl(addr);

	for (size_t i = 0; i < n; i++)
		if ((ip & l[i].mask) == l[i].net)
			return true;
	return false;
}

static bool in_ints(const int *l, size_t n, int v)
{
	for (size_t i = 0; i < n; i++)
		if (l[i] == v)
			return true;
	return false;
}

bool flow_filter_match(const struct flow_filter *f, const struct flow_entry *e, int64_t now_ns)
{
	const struct sluice_flow4_record *r = &e->rec;
	const char *sns = flow_str(e, FS_SRC_NS), *spod = flow_str(e, FS_SRC_POD);
	const char *dns = flow_str(e, FS_DST_NS), *dpod = flow_str(e, FS_DST_POD);
	bool hit;

	if (e->seq <= f->after)
		return false;
	if (f->since > 0 && e->time_ns < now_ns - (int64_t)(f->since * 1e9))
		return false;
	if (f->nfrom_pod && !any_nsname(f->from_pod, f->nfrom_pod, sns, spod))
		return false;
	if (f->nto_pod && !any_nsname(f->to_pod, f->nto_pod, dns, dpod))
		return false;
	if (f->npod && !any_nsname(f->pod, f->npod, sns, spod) &&
	    !any_nsname(f->pod, f->npod, dns, dpod))
		return false;
	if (f->nns) {
		hit = false;
		for (size_t i = 0; i < f->nns && !hit; i++)
			hit = (*sns && !strcmp(f->ns[i], sns)) || (*dns && !strcmp(f->ns[i], dns));
		if (!hit)
			return false;
	}
	if (f->nfrom_ip && !in_cidrs(f->from_ip, f->nfrom_ip, r->key.saddr))
		return false;
	if (f->nto_ip && !in_cidrs(f->to_ip, f->nto_ip, r->key.daddr))
		return false;
	if (f->nlabel) {
		hit = false;
		for (size_t i = 0; i < f->nlabel && !hit; i++)
			hit = sel_matches(&f->label[i], flow_str(e, FS_SRC_LABELS), *spod) ||
			      sel_matches(&f->label[i], flow_str(e, FS_DST_LABELS), *dpod);
		if (!hit)
			return false;
	}
	if (f->nverdict && !in_ints(f->verdict, f->nverdict, r->verdict))
		return false;
	if (f->nreason && !(r->verdict == SLUICE_FLOW_DROPPED && in_ints(f->reason, f->nreason,
									   r->reason)))
		return false;
	if (f->nproto && !in_ints(f->proto, f->nproto, r->key.proto))
		return false;
	if (f->nport && !in_ints(f->port, f->nport, ntohs(r->key.sport)) &&
	    !in_ints(f->port, f->nport, ntohs(r->key.dport)))
		return false;
	if (f->npolicy) {
		hit = false;
		for (size_t i = 0; i < f->npolicy && !hit; i++) {
			hit = *flow_str(e, FS_POL_NAME) &&
			      nsname_is(&f->policy[i], flow_str(e, FS_POL_NS), flow_str(e, FS_POL_NAME));
			for (int k = 0; k < e->niso && !hit; k++)
				hit = nsname_is(&f->policy[i], flow_str(e, FS_ISO_NS + k),
						flow_str(e, FS_ISO_NAME + k));
		}
		if (!hit)
			return false;
	}
	if (f->nservice && !(*flow_str(e, FS_SVC_NAME) &&
			     any_nsname(f->service, f->nservice, flow_str(e, FS_SVC_NS),
					flow_str(e, FS_SVC_NAME))))
		return false;
	return true;
}

json_t *flowlog_query(const struct flowlog *fl, const json_t *req, char *err, size_t errlen)
{
	struct flow_filter *f = NULL;
	const struct flow_entry **hits = NULL;
	size_t n = 0, from = 0, truncated = 0;
	uint64_t last_seq = fl->next_seq - 1, seq;
	int64_t now = (int64_t)mono_ns(CLOCK_REALTIME);
	json_t *arr = NULL, *res = NULL;
	bool more = false;

	if (flow_filter_parse(req, &f, err, errlen))
		return NULL;
	hits = calloc(fl->used + 1, sizeof(*hits));
	arr = json_array();
	if (!hits || !arr) {
		snprintf(err, errlen, "out of memory");
		goto cleanup;
	}
	seq = fl->next_seq - fl->used;
	if (seq <= f->after)
		seq = f->after + 1;
	for (; seq < fl->next_seq; seq++) {
		const struct flow_entry *e = &fl->ring[(seq - 1) % fl->cap];

		if (flow_filter_match(f, e, now))
			hits[n++] = e;
	}
	if (f->last && n > f->last)
		from = n - f->last;
	if (n - from > FLOWLOG_ANSWER_MAX) {
		if (f->after) {
			/* Following: the oldest first; the client asks again. */
			more = true;
			last_seq = hits[from + FLOWLOG_ANSWER_MAX - 1]->seq;
			n = from + FLOWLOG_ANSWER_MAX;
		} else {
			truncated = n - from - FLOWLOG_ANSWER_MAX;
			from = n - FLOWLOG_ANSWER_MAX;
		}
	}
	for (size_t i = from; i < n; i++)
		json_array_append_new(arr, flow_entry_json(fl, hits[i]));
	res = json_pack("{s:O, s:I, s:b, s:I, s:I}", "flows", arr, "lastSeq", (json_int_t)last_seq,
			"more", more, "truncated", (json_int_t)truncated, "bufferCapacity",
			(json_int_t)fl->cap);
	if (!res)
		snprintf(err, errlen, "out of memory");
cleanup:
	json_decref(arr);
	free(hits);
	flow_filter_free(f);
	return res;
}

/* ---- top ------------------------------------------------------------------------ */

static int cmp_srtt(const void *a, const void *b)
{
	const struct flow_entry *x = *(const struct flow_entry *const *)a;
	const struct flow_entry *y = *(const struct flow_entry *const *)b;

	return x->rec.rtt_srtt_us < y->rec.rtt_srtt_us ? 1
	       : x->rec.rtt_srtt_us > y->rec.rtt_srtt_us ? -1 : 0;
}

static int cmp_p99(const void *a, const void *b)
{
	const struct flowlog_hist *x = *(const struct flowlog_hist *const *)a;
	const struct flowlog_hist *y = *(const struct flowlog_hist *const *)b;
	uint64_t px = flowlog_hist_quantile(x, 0.99), py = flowlog_hist_quantile(y, 0.99);

	if (px != py)
		return px < py ? 1 : -1;
	return x->retrans < y->retrans ? 1 : x->retrans > y->retrans ? -1 : 0;
}

static json_t *pairs_json(const struct pairs *p, size_t limit, const char *src_key,
			  const char *dst_key)
{
	const struct flowlog_hist **v = calloc(p->n + 1, sizeof(*v));
	json_t *arr = json_array();
	size_t n = 0;

	if (!v || !arr) {
		free(v);
		json_decref(arr);
		return NULL;
	}
	for (size_t i = 0; i < p->n; i++)
		if (p->v[i].count || p->v[i].retrans)
			v[n++] = &p->v[i];
	qsort(v, n, sizeof(*v), cmp_p99);
	for (size_t i = 0; i < n && i < limit; i++)
		json_array_append_new(
			arr, json_pack("{s:s, s:s, s:I, s:I, s:I, s:f, s:I, s:I}", src_key, v[i]->src,
				       dst_key, v[i]->dst, "samples", (json_int_t)v[i]->count,
				       "p50Us", (json_int_t)flowlog_hist_quantile(v[i], 0.5), "p99Us",
				       (json_int_t)flowlog_hist_quantile(v[i], 0.99), "meanUs",
				       v[i]->count ? (double)v[i]->sum_us / (double)v[i]->count : 0.0,
				       "retransmits", (json_int_t)v[i]->retrans, "endedFlows",
				       (json_int_t)v[i]->flows));
	free(v);
	return arr;
}

json_t *flowlog_top(const struct flowlog *fl, const char *what, size_t limit, char *err,
		    size_t errlen)
{
	const struct flow_entry **v;
	json_t *arr;
	size_t n = 0;

	if (!limit)
		limit = 20;
	if (what && !strcmp(what, "pods"))
		return json_pack("{s:o, s:o, s:i}", "podPairs",
				 pairs_json(&fl->pods, limit, "source", "destination"),
				 "namespacePairs",
				 pairs_json(&fl->nss, limit, "source", "destination"),
				 "bucketBaseUs", 1);
	if (!what || strcmp(what, "flows")) {
		snprintf(err, errlen, "top takes flows or pods, not '%s'", what ? what : "");
		return NULL;
	}
	/* The newest entry of each flow with a round trip, slowest first. */
	v = calloc(fl->used + 1, sizeof(*v));
	arr = json_array();
	if (!v || !arr) {
		free(v);
		json_decref(arr);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (uint64_t seq = fl->next_seq - 1; seq >= fl->next_seq - fl->used && seq; seq--) {
		const struct flow_entry *e = &fl->ring[(seq - 1) % fl->cap];
		bool dup = false;

		if (!e->rec.rtt_srtt_us && !e->rec.retrans[0] && !e->rec.retrans[1])
			continue;
		for (size_t i = 0; i < n && !dup; i++)
			dup = !memcmp(&v[i]->rec.key, &e->rec.key, sizeof(e->rec.key)) &&
			      v[i]->rec.first_seen == e->rec.first_seen;
		if (!dup)
			v[n++] = e;
		if (n >= 4096)
			break;	/* enough to rank */
	}
	qsort(v, n, sizeof(*v), cmp_srtt);
	for (size_t i = 0; i < n && i < limit; i++)
		json_array_append_new(arr, flow_entry_json(fl, v[i]));
	free(v);
	return json_pack("{s:o}", "flows", arr);
}
