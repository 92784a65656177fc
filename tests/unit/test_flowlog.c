// SPDX-License-Identifier: Apache-2.0
/*
 * The agent's flow buffer (agent/flowlog.c) with records made here and
 * fake lookups: overwrites counted exactly, every filter (repeat = OR,
 * different ones = AND, CIDRs, since/last/after), resolution kept after
 * the pod is gone, the agent's idle END, round-trip histograms, and
 * `sluicectl observe`'s line for a dropped flow (lib/flowfmt.c).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <cmocka.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "flowfmt.h"
#include "flowlog.h"

#define IP(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))
#define REF_ALLOW_WEB ((1u << 12) | 2)
#define REF_DENY_RULE ((2u << 12) | 0)

/* The fake world: two pods, a node, a Service; gone: the pods left. */
struct fake {
	bool gone;
	int peer_calls;
};

static void fake_peer(void *ctx, uint32_t ip, uint32_t identity, struct flow_who *out)
{
	struct fake *f = ctx;

	(void)identity;
	f->peer_calls++;
	memset(out, 0, sizeof(*out));
	if (!f->gone && ip == IP(10, 0, 0, 1))
		*out = (struct flow_who){ "pod", "a", "web", "app=web", "n1" };
	else if (!f->gone && ip == IP(10, 0, 0, 2))
		*out = (struct flow_who){ "pod", "b", "db", "app=db,tier=data", "n1" };
	else if (ip == IP(10, 0, 1, 5))
		*out = (struct flow_who){ .kind = "node", .node = "n1" };
	else
		out->kind = "world";
}

/* Refs from REF_NS_BASE up: a policy in namespace "nsN", N = ref - base. */
#define REF_NS_BASE 0x100000u

static bool fake_policy(void *ctx, uint32_t ref, struct flow_pol *out)
{
	static char ns[32];

	(void)ctx;
	if (ref >= REF_NS_BASE && ref != SLUICE_FLOW_RULE_DEFAULT) {
		snprintf(ns, sizeof(ns), "ns%u", ref - REF_NS_BASE);
		*out = (struct flow_pol){ "NetworkPolicy", ns, "p", 0 };
		return true;
	}
	if (ref == REF_ALLOW_WEB) {
		*out = (struct flow_pol){ "NetworkPolicy", "b", "allow-web", 2 };
		return true;
	}
	if (ref == REF_DENY_RULE) {
		*out = (struct flow_pol){ "SluiceClusterNetworkPolicy", NULL, "no-dns", 0 };
		return true;
	}
	return false;
}

static size_t fake_iso(void *ctx, uint32_t ip, int dir, struct flow_pol *out, size_t max)
{
	struct fake *f = ctx;

	if (f->gone || ip != IP(10, 0, 0, 2) || dir != SLUICE_DIR_INGRESS || max < 1)
		return 0;
	out[0] = (struct flow_pol){ "NetworkPolicy", "b", "deny-all", -1 };
	return 1;
}

static bool fake_service(void *ctx, uint32_t ip, uint16_t port, uint8_t proto, const char **ns,
			 const char **name)
{
	(void)ctx;
	if (ip == IP(10, 96, 0, 10) && port == 80 && proto == IPPROTO_TCP) {
		*ns = "b";
		*name = "db-svc";
		return true;
	}
	return false;
}

static uint64_t mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct sluice_flow4_record rec(uint32_t s, uint16_t sp, uint32_t d, uint16_t dp,
				      uint8_t proto, uint8_t verdict, uint16_t reason)
{
	struct sluice_flow4_record r = {
		.time = mono(), .key = { htonl(s), htonl(d), htons(sp), htons(dp), proto, { 0 } },
		.event = verdict == SLUICE_FLOW_DROPPED ? SLUICE_FLOW_EV_DROP : SLUICE_FLOW_EV_START,
		.verdict = verdict, .reason = reason, .dir = SLUICE_DIR_EGRESS,
		.src_identity = 300, .dst_identity = 301,
	};

	r.first_seen = r.time;
	r.packets[0] = 1;
	r.bytes[0] = 60;
	return r;
}

struct world {
	struct fake fake;
	struct flowlog *fl;
};

/* r1 web -> db 5432 FORWARDED (allow-web rule 2, via Service b/db-svc)
 * r2 web -> db 5432 DROPPED by default (b/deny-all isolates db)
 * r3 db -> 8.8.8.8 53/UDP FORWARDED, 100 s ago
 * r4 node -> web 8080 AUDIT
 * r5 web -> 1.1.1.1 53/UDP DROPPED by a Deny rule of no-dns */
static int setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));
	struct flow_resolver res = { &w->fake, fake_peer, fake_policy, fake_iso, fake_service };
	struct sluice_flow4_record r;

	assert_non_null(w);
	assert_int_equal(flowlog_open(&w->fl, 64, 60, "n1", &res), 0);
	r = rec(IP(10, 0, 0, 1), 40000, IP(10, 0, 0, 2), 5432, IPPROTO_TCP, SLUICE_FLOW_TRANSLATED,
		SLUICE_LB_TRANSLATED);
	r.policy_rule = REF_ALLOW_WEB;
	r.svc_addr = htonl(IP(10, 96, 0, 10));
	r.svc_port = htons(80);
	assert_int_equal(flowlog_add(w->fl, &r, sizeof(r)), 0);
	r = rec(IP(10, 0, 0, 1), 40001, IP(10, 0, 0, 2), 5432, IPPROTO_TCP, SLUICE_FLOW_DROPPED,
		SLUICE_DROP_POLICY);
	r.policy_rule = SLUICE_FLOW_RULE_DEFAULT;
	r.dir = SLUICE_DIR_INGRESS;
	assert_int_equal(flowlog_add(w->fl, &r, sizeof(r)), 0);
	r = rec(IP(10, 0, 0, 2), 5353, IP(8, 8, 8, 8), 53, IPPROTO_UDP, SLUICE_FLOW_FORWARDED,
		SLUICE_CT_NEW);
	r.time -= 100000000000ull;
	assert_int_equal(flowlog_add(w->fl, &r, sizeof(r)), 0);
	r = rec(IP(10, 0, 1, 5), 33000, IP(10, 0, 0, 1), 8080, IPPROTO_TCP, SLUICE_FLOW_AUDIT,
		SLUICE_AUDIT_WOULD_DROP);
	assert_int_equal(flowlog_add(w->fl, &r, sizeof(r)), 0);
	r = rec(IP(10, 0, 0, 1), 5000, IP(1, 1, 1, 1), 53, IPPROTO_UDP, SLUICE_FLOW_DROPPED,
		SLUICE_DROP_POLICY_DENY);
	r.policy_rule = REF_DENY_RULE;
	assert_int_equal(flowlog_add(w->fl, &r, sizeof(r)), 0);
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;

	flowlog_close(w->fl);
	free(w);
	return 0;
}

/* The sequence numbers a request returns, as "1,2,": "" when none;
 * "error" when refused. */
static void query(struct flowlog *fl, const char *req_json, char *out, size_t len)
{
	json_error_t jerr;
	json_t *req = json_loads(req_json, 0, &jerr), *res, *f;
	char err[512];
	size_t i, off = 0;

	assert_non_null(req);
	res = flowlog_query(fl, req, err, sizeof(err));
	json_decref(req);
	out[0] = '\0';
	if (!res) {
		snprintf(out, len, "error");
		return;
	}
	json_array_foreach(json_object_get(res, "flows"), i, f)
		off += (size_t)snprintf(out + off, len - off, "%lld,",
					json_integer_value(json_object_get(f, "seq")));
	json_decref(res);
}

#define EXPECT(fl, req, want)                                \
	do {                                                 \
		char got[256];                               \
		query(fl, req, got, sizeof(got));            \
		assert_string_equal(got, want);              \
	} while (0)

static void test_overwrite_counted(void **state)
{
	struct flow_resolver res = { 0 };
	struct flowlog *fl;
	struct flowlog_stats st;
	struct sluice_flow4_record r = rec(1, 1, 2, 2, IPPROTO_TCP, 1, 0);

	(void)state;
	assert_int_equal(flowlog_open(&fl, 8, 60, "n", &res), 0);
	for (int i = 0; i < 20; i++)
		assert_int_equal(flowlog_add(fl, &r, sizeof(r)), 0);
	assert_int_equal(flowlog_add(fl, &r, sizeof(r) - 1), -EINVAL);
	assert_int_equal(flowlog_stats(fl, &st), 0);
	assert_int_equal(st.capacity, 8);
	assert_int_equal(st.used, 8);
	assert_int_equal(st.received, 20);
	assert_int_equal(st.overwritten, 12);
	assert_int_equal(st.used + st.overwritten, st.received);
	assert_int_equal(st.malformed, 1);
	assert_int_equal(st.last_seq, 20);
	assert_null(flowlog_get(fl, 12));
	assert_non_null(flowlog_get(fl, 13));
	assert_int_equal(flowlog_get(fl, 20)->seq, 20);
	assert_null(flowlog_get(fl, 21));
	assert_null(flowlog_get(fl, 0));
	/* What a client sees: the 8 newest, and after 17 the 3 after it. */
	EXPECT(fl, "{}", "13,14,15,16,17,18,19,20,");
	EXPECT(fl, "{\"after\": 17}", "18,19,20,");
	EXPECT(fl, "{\"after\": 3}", "13,14,15,16,17,18,19,20,");
	flowlog_close(fl);
}

static void test_filters(void **state)
{
	struct world *w = *state;
	struct flowlog *fl = w->fl;

	EXPECT(fl, "{}", "1,2,3,4,5,");
	EXPECT(fl, "{\"fromPod\": \"a/web\"}", "1,2,5,");
	EXPECT(fl, "{\"fromPod\": [\"a/web\", \"b/db\"]}", "1,2,3,5,");
	EXPECT(fl, "{\"toPod\": [\"b/db\"]}", "1,2,");
	EXPECT(fl, "{\"toPod\": [\"b/\"]}", "1,2,");
	EXPECT(fl, "{\"pod\": [\"b/db\"]}", "1,2,3,");
	EXPECT(fl, "{\"pod\": [\"a/nothere\"]}", "");
	EXPECT(fl, "{\"namespace\": [\"b\"]}", "1,2,3,");
	EXPECT(fl, "{\"namespace\": [\"a\", \"b\"]}", "1,2,3,4,5,");
	EXPECT(fl, "{\"fromIP\": [\"10.0.0.0/24\"]}", "1,2,3,5,");
	EXPECT(fl, "{\"fromIP\": [\"10.0.1.5\"]}", "4,");
	EXPECT(fl, "{\"fromIP\": [\"10.0.1.5\", \"10.0.0.2/32\"]}", "3,4,");
	EXPECT(fl, "{\"toIP\": [\"8.0.0.0/8\"]}", "3,");
	EXPECT(fl, "{\"toIP\": [\"0.0.0.0/0\"]}", "1,2,3,4,5,");
	EXPECT(fl, "{\"label\": [\"app=web\"]}", "1,2,4,5,");
	EXPECT(fl, "{\"label\": [\"tier=data,app=db\"]}", "1,2,3,");
	EXPECT(fl, "{\"label\": [\"tier\"]}", "1,2,3,");
	EXPECT(fl, "{\"label\": [\"app!=web,app\"]}", "1,2,3,");
	EXPECT(fl, "{\"label\": [\"!tier\"]}", "1,2,4,5,");
	EXPECT(fl, "{\"label\": [\"tier=x\", \"app=web\"]}", "1,2,4,5,");
	EXPECT(fl, "{\"verdict\": [\"DROPPED\"]}", "2,5,");
	EXPECT(fl, "{\"verdict\": [\"dropped\", \"AUDIT\"]}", "2,4,5,");
	EXPECT(fl, "{\"verdict\": [\"TRANSLATED\"]}", "1,");
	EXPECT(fl, "{\"dropReason\": [\"policy\"]}", "2,");
	EXPECT(fl, "{\"dropReason\": [\"drop-policy-deny\", \"drop-policy\"]}", "2,5,");
	EXPECT(fl, "{\"protocol\": [\"UDP\"]}", "3,5,");
	EXPECT(fl, "{\"protocol\": [\"6\"]}", "1,2,4,");
	EXPECT(fl, "{\"port\": [\"53\"]}", "3,5,");
	EXPECT(fl, "{\"port\": [5432, \"8080\"]}", "1,2,4,");
	EXPECT(fl, "{\"port\": [\"40001\"]}", "2,");
	EXPECT(fl, "{\"policy\": [\"b/deny-all\"]}", "2,");
	EXPECT(fl, "{\"policy\": [\"b/allow-web\", \"no-dns\"]}", "1,5,");
	EXPECT(fl, "{\"policy\": [\"a/deny-all\"]}", "");
	EXPECT(fl, "{\"service\": [\"b/db-svc\"]}", "1,");
	EXPECT(fl, "{\"service\": [\"a/db-svc\"]}", "");
	/* Different filters: all must match. */
	EXPECT(fl, "{\"fromPod\": [\"a/web\"], \"verdict\": [\"DROPPED\"]}", "2,5,");
	EXPECT(fl, "{\"fromPod\": [\"a/web\"], \"verdict\": [\"DROPPED\"], \"protocol\": \"TCP\"}",
	       "2,");
	EXPECT(fl, "{\"namespace\": [\"b\"], \"port\": [\"53\"], \"toIP\": [\"8.8.8.8\"]}", "3,");
	/* since (r3 is 100 s old), last, after. */
	EXPECT(fl, "{\"since\": 50}", "1,2,4,5,");
	EXPECT(fl, "{\"since\": 500}", "1,2,3,4,5,");
	EXPECT(fl, "{\"last\": 2}", "4,5,");
	EXPECT(fl, "{\"last\": 2, \"verdict\": \"DROPPED\"}", "2,5,");
	EXPECT(fl, "{\"after\": 3}", "4,5,");
	EXPECT(fl, "{\"after\": 3, \"pod\": \"b/db\"}", "");
	EXPECT(fl, "{\"after\": 9223372036854775807}", "");
	/* Refused, each naming what it takes. */
	EXPECT(fl, "{\"verdict\": [\"MAYBE\"]}", "error");
	EXPECT(fl, "{\"fromIP\": [\"10.0.0.0/33\"]}", "error");
	EXPECT(fl, "{\"toIP\": [\"web\"]}", "error");
	EXPECT(fl, "{\"fromPod\": [\"web\"]}", "error");
	EXPECT(fl, "{\"dropReason\": [\"because\"]}", "error");
	EXPECT(fl, "{\"port\": [\"70000\"]}", "error");
	EXPECT(fl, "{\"label\": [\"=x\"]}", "error");
	EXPECT(fl, "{\"last\": 0}", "error");
	EXPECT(fl, "{\"since\": \"5m\"}", "error");
	EXPECT(fl, "{\"pod\": {\"a\": 1}}", "error");
}

static void test_resolution_kept(void **state)
{
	struct world *w = *state;
	const struct flow_entry *e;
	json_t *j;

	/* The pods are gone: the entries still say who they were. */
	w->fake.gone = true;
	e = flowlog_get(w->fl, 2);
	assert_non_null(e);
	j = flow_entry_json(w->fl, e);
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "source"), "pod")),
			    "web");
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "destination"),
								   "namespace")), "b");
	assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(
				    j, "destination"), "labels"), "tier")), "data");
	assert_string_equal(json_string_value(json_object_get(j, "verdict")), "DROPPED");
	assert_string_equal(json_string_value(json_object_get(j, "reason")), "drop-policy");
	assert_true(json_is_true(json_object_get(j, "deniedByDefault")));
	assert_string_equal(json_string_value(json_object_get(
				    json_array_get(json_object_get(j, "isolatedBy"), 0), "name")),
			    "deny-all");
	assert_string_equal(json_string_value(json_object_get(j, "direction")), "ingress");
	json_decref(j);

	j = flow_entry_json(w->fl, flowlog_get(w->fl, 1));
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "policy"), "name")),
			    "allow-web");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "policy"), "rule")),
			 2);
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "service"),
								   "name")), "db-svc");
	assert_string_equal(json_string_value(json_object_get(j, "protocol")), "TCP");
	json_decref(j);

	j = flow_entry_json(w->fl, flowlog_get(w->fl, 4));
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "source"), "kind")),
			    "node");
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "source"), "node")),
			    "n1");
	json_decref(j);

	/* A new record after the pods left: no longer pods. */
	{
		struct sluice_flow4_record r = rec(IP(10, 0, 0, 1), 1, IP(10, 0, 0, 2), 2,
						   IPPROTO_TCP, SLUICE_FLOW_FORWARDED, 0);

		assert_int_equal(flowlog_add(w->fl, &r, sizeof(r)), 0);
		EXPECT(w->fl, "{\"pod\": \"a/web\"}", "1,2,4,5,");
	}
}

static void test_render_drop(void **state)
{
	struct world *w = *state;
	json_t *j = flow_entry_json(w->fl, flowlog_get(w->fl, 2));
	char line[4096], why[1024];

	flowfmt_line(j, line, sizeof(line));
	assert_non_null(strstr(line, "DROPPED"));
	assert_non_null(strstr(line, "a/web:40001"));
	assert_non_null(strstr(line, "b/db:5432"));
	assert_non_null(strstr(line, "TCP/5432"));
	assert_non_null(strstr(line, "new flow no policy rule allows (drop-policy)"));
	assert_non_null(strstr(line, "DROPPED by default: isolated by NetworkPolicy b/deny-all"));
	json_decref(j);

	/* A Deny rule: the policy and rule by name. */
	j = flow_entry_json(w->fl, flowlog_get(w->fl, 5));
	flowfmt_why(j, why, sizeof(why));
	assert_string_equal(why, "new flow a sluice Deny rule matches (drop-policy-deny); "
				 "DROPPED by SluiceClusterNetworkPolicy no-dns rule 0");
	flowfmt_line(j, line, sizeof(line));
	assert_non_null(strstr(line, "1.1.1.1:53 (world)"));
	json_decref(j);

	/* Forwarded: the allowing rule and the Service. */
	j = flow_entry_json(w->fl, flowlog_get(w->fl, 1));
	flowfmt_line(j, line, sizeof(line));
	assert_non_null(strstr(line, "TRANSLATED"));
	assert_non_null(strstr(line, "b/db-svc"));
	assert_non_null(strstr(line, "allowed by NetworkPolicy b/allow-web rule 2"));
	json_decref(j);
}

/* New flows by verdict and policy verdicts by namespace (Prometheus'
 * sluice_flows_total, sluice_policy_verdicts_total): START records only;
 * the deciding policy's namespace, else the isolating one's, else the
 * pod's; bounded, the rest as "other". */
static void test_verdict_counts(void **state)
{
	struct world *w = *state;
	struct flowlog_stats st;
	struct sluice_flow4_record r;
	uint64_t before[FLOWLOG_VERDICTS];
	const struct flowlog_pv_row *b = NULL, *a = NULL;

	assert_int_equal(flowlog_stats(w->fl, &st), 0);
	memcpy(before, st.flows_by_verdict, sizeof(before));
	/* setup's: START translated (b's allow-web), forwarded, audit (no
	 * policy); two DROP events, not counted. */
	assert_int_equal(before[SLUICE_FLOW_TRANSLATED], 1);
	assert_int_equal(before[SLUICE_FLOW_FORWARDED], 1);
	assert_int_equal(before[SLUICE_FLOW_AUDIT], 1);
	assert_int_equal(before[SLUICE_FLOW_DROPPED], 0);

	/* Denied by default at db's ingress: b's isolation. */
	r = rec(IP(10, 0, 0, 1), 41000, IP(10, 0, 0, 2), 5432, IPPROTO_TCP, SLUICE_FLOW_DROPPED,
		SLUICE_DROP_POLICY);
	r.event = SLUICE_FLOW_EV_START;
	r.policy_rule = SLUICE_FLOW_RULE_DEFAULT;
	r.dir = SLUICE_DIR_INGRESS;
	assert_int_equal(flowlog_add(w->fl, &r, sizeof(r)), 0);
	/* A cluster-scoped Deny rule at web's egress: web's namespace, a. */
	r = rec(IP(10, 0, 0, 1), 41001, IP(1, 1, 1, 1), 53, IPPROTO_UDP, SLUICE_FLOW_DROPPED,
		SLUICE_DROP_POLICY_DENY);
	r.event = SLUICE_FLOW_EV_START;
	r.policy_rule = REF_DENY_RULE;
	assert_int_equal(flowlog_add(w->fl, &r, sizeof(r)), 0);
	/* Its repeat (a DROP event) is no new flow. */
	r.event = SLUICE_FLOW_EV_DROP;
	assert_int_equal(flowlog_add(w->fl, &r, sizeof(r)), 0);

	assert_int_equal(flowlog_stats(w->fl, &st), 0);
	assert_int_equal(st.flows_by_verdict[SLUICE_FLOW_DROPPED], 2);
	for (size_t i = 0; i < st.npv; i++) {
		if (!strcmp(st.pv[i].ns, "b"))
			b = &st.pv[i];
		if (!strcmp(st.pv[i].ns, "a"))
			a = &st.pv[i];
	}
	assert_non_null(b);
	assert_non_null(a);
	assert_int_equal(b->n[FLOWLOG_PV_ALLOWED], 1);	/* setup's translated flow */
	assert_int_equal(b->n[FLOWLOG_PV_DENIED], 1);
	assert_int_equal(a->n[FLOWLOG_PV_DENIED], 1);
	assert_int_equal(a->n[FLOWLOG_PV_ALLOWED], 0);
	assert_int_equal(st.npv, 2);

	/* The bound: namespaces past FLOWLOG_PV_MAX are summed as other. */
	for (unsigned i = 0; i < FLOWLOG_PV_MAX + 10; i++) {
		r = rec(IP(10, 0, 0, 1), (uint16_t)(42000 + i), IP(10, 0, 0, 2), 80, IPPROTO_TCP,
			SLUICE_FLOW_FORWARDED, SLUICE_CT_NEW);
		r.policy_rule = REF_NS_BASE + i;
		assert_int_equal(flowlog_add(w->fl, &r, sizeof(r)), 0);
	}
	assert_int_equal(flowlog_stats(w->fl, &st), 0);
	assert_int_equal(st.npv, FLOWLOG_PV_MAX);
	assert_int_equal(st.pv_other[FLOWLOG_PV_ALLOWED], 12);	/* 266 - (256 - 2 named before) */
	assert_int_equal(st.pv_other[FLOWLOG_PV_DENIED], 0);
}

static void test_idle_end_and_rtt(void **state)
{
	struct world *w = *state;
	struct sluice_ct_key key = { htonl(IP(10, 0, 0, 1)), htonl(IP(10, 0, 0, 2)), htons(1000),
				     htons(5432), IPPROTO_TCP, { 0 } };
	struct sluice_flow4_value v = { .verdict = SLUICE_FLOW_FORWARDED, .reason = SLUICE_CT_NEW,
					.rtt_srtt_us = 100, .rtt_min_us = 90,
					.retrans = { 2, 1 } };
	struct flowlog_stats st;
	const struct flowlog_hist *h = NULL;
	json_t *j, *top;
	char err[256];

	v.first_seen = v.last_seen = mono() - 70000000000ull;
	assert_int_equal(flowlog_add_end(w->fl, &key, &v, mono(), "idle"), 0);
	v.rtt_srtt_us = 1000;
	v.retrans[0] = 0;
	assert_int_equal(flowlog_add_end(w->fl, &key, &v, mono(), "idle"), 0);
	assert_int_equal(flowlog_stats(w->fl, &st), 0);
	assert_int_equal(st.idle_ended, 2);
	assert_int_equal(st.received, 7);
	j = flow_entry_json(w->fl, flowlog_get(w->fl, st.last_seq));
	assert_string_equal(json_string_value(json_object_get(j, "event")), "END");
	assert_string_equal(json_string_value(json_object_get(j, "endCause")), "idle");
	assert_true(json_is_true(json_object_get(j, "agentMade")));
	json_decref(j);
	for (size_t i = 0; i < st.npod_pairs; i++)
		if (!strcmp(st.pod_pairs[i].src, "a/web") && !strcmp(st.pod_pairs[i].dst, "b/db"))
			h = &st.pod_pairs[i];
	assert_non_null(h);
	assert_int_equal(h->count, 2);
	assert_int_equal(h->retrans, 4);
	assert_int_equal(h->flows, 2);
	assert_int_equal(flowlog_hist_quantile(h, 0.5), 128);
	assert_int_equal(flowlog_hist_quantile(h, 0.99), 1024);
	top = flowlog_top(w->fl, "pods", 10, err, sizeof(err));
	assert_non_null(top);
	j = json_array_get(json_object_get(top, "podPairs"), 0);
	assert_string_equal(json_string_value(json_object_get(j, "source")), "a/web");
	assert_int_equal(json_integer_value(json_object_get(j, "p99Us")), 1024);
	json_decref(top);
	top = flowlog_top(w->fl, "flows", 10, err, sizeof(err));
	assert_non_null(top);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(
				 json_object_get(top, "flows"), 0), "rttSmoothedUs")), 1000);
	json_decref(top);
	assert_null(flowlog_top(w->fl, "nodes", 10, err, sizeof(err)));
}

/* The idle scan against a real LRU hash of the datapath's layout: an idle
 * flow gets the agent's END and leaves the map; a busy one stays; one the
 * datapath ended (FIN, RST) leaves without a second END. And the
 * datapath's per-CPU loss counters are summed. */
static void test_idle_scan_and_losses(void **state)
{
	struct world *w = *state;
	struct sluice_ct_key k[3];
	struct sluice_flow4_value v = { .verdict = SLUICE_FLOW_FORWARDED, .reason = SLUICE_CT_NEW };
	uint64_t now = mono();
	int ncpu = libbpf_num_possible_cpus(), fd, st_fd;
	uint64_t *pc = calloc((size_t)ncpu, sizeof(*pc));
	struct flowlog_stats st;
	char err[256];
	json_t *j;

	assert_non_null(pc);
	fd = bpf_map_create(BPF_MAP_TYPE_LRU_HASH, "flow4_test", sizeof(struct sluice_ct_key),
			    sizeof(struct sluice_flow4_value), 64, NULL);
	st_fd = bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, "flowst_test", 4, 8,
			       SLUICE_FLOW_ST_MAX, NULL);
	if (fd < 0 || st_fd < 0)
		fail_msg("cannot create BPF maps (run as root): %s", strerror(errno));
	for (int i = 0; i < 3; i++) {
		k[i] = (struct sluice_ct_key){ htonl(IP(10, 0, 0, 1)), htonl(IP(10, 0, 0, 2)),
					       htons((uint16_t)(7000 + i)), htons(53), IPPROTO_UDP,
					       { 0 } };
		v.first_seen = now - 100000000000ull;
		v.last_seen = i == 1 ? now - 1000000000ull : now - 90000000000ull;
		v.flags = i == 2 ? SLUICE_FLOW_F_ENDED : 0;
		assert_int_equal(bpf_map_update_elem(fd, &k[i], &v, BPF_ANY), 0);
	}
	for (int c = 0; c < ncpu; c++)
		pc[c] = (uint64_t)c + 1;
	for (uint32_t key = 0; key < 3; key++)
		assert_int_equal(bpf_map_update_elem(st_fd, &key, pc, BPF_ANY), 0);
	assert_int_equal(flowlog_attach(w->fl, -1, fd, st_fd, err, sizeof(err)), 0);
	assert_int_equal(flowlog_poll_fd(w->fl), -1);

	assert_int_equal(flowlog_scan_idle(w->fl, now), 1);
	assert_int_not_equal(bpf_map_lookup_elem(fd, &k[0], &v), 0);	/* idle: gone */
	assert_int_equal(bpf_map_lookup_elem(fd, &k[1], &v), 0);	/* busy: kept */
	assert_int_not_equal(bpf_map_lookup_elem(fd, &k[2], &v), 0);	/* ended: gone */
	assert_int_equal(flowlog_stats(w->fl, &st), 0);
	assert_int_equal(st.idle_ended, 1);
	j = flow_entry_json(w->fl, flowlog_get(w->fl, st.last_seq));
	assert_string_equal(json_string_value(json_object_get(j, "event")), "END");
	assert_string_equal(json_string_value(json_object_get(j, "endCause")), "idle");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "source"), "port")),
			 7000);
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "source"), "pod")),
			    "web");
	json_decref(j);
	assert_int_equal(st.rb_full, (uint64_t)ncpu * (ncpu + 1) / 2);
	assert_int_equal(st.rate_limited, st.rb_full);
	assert_int_equal(st.map_full, st.rb_full);
	/* Nothing more is idle. */
	assert_int_equal(flowlog_scan_idle(w->fl, now), 0);
	close(fd);
	close(st_fd);
	free(pc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_overwrite_counted),
		cmocka_unit_test_setup_teardown(test_filters, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resolution_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_render_drop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verdict_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idle_end_and_rtt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idle_scan_and_losses, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
