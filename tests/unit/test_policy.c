// SPDX-License-Identifier: Apache-2.0
/* Policy semantics (agent/policy.c): selectors, defaulting, peers, ports,
 * sluice Deny/Audit/ICMP, the reference decision and parse errors. JSON in
 * this file uses ' for " to stay readable; js() swaps them back. */
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "policy.h"

#define TCP  IPPROTO_TCP
#define UDP  IPPROTO_UDP
#define ICMP IPPROTO_ICMP

static json_t *js(const char *text)
{
	char *s = strdup(text);
	json_error_t e;
	json_t *j;

	assert_non_null(s);
	for (char *c = s; *c; c++)
		if (*c == '\'')
			*c = '"';
	j = json_loads(s, JSON_DECODE_ANY, &e);
	if (!j)
		fail_msg("bad test JSON (%s): %s", e.text, s);
	free(s);
	return j;
}

static struct pol_policy *parse_ok(const char *text)
{
	json_t *j = js(text);
	struct pol_policy *p = NULL;
	char err[512] = "";

	if (pol_parse(j, &p, err, sizeof(err)))
		fail_msg("pol_parse failed: %s\n  input: %s", err, text);
	json_decref(j);
	return p;
}

/* The parse must fail and the message must contain want. */
static void parse_err(const char *text, const char *want)
{
	json_t *j = js(text);
	struct pol_policy *p = (struct pol_policy *)1;
	char err[512] = "";
	int ret = pol_parse(j, &p, err, sizeof(err));

	json_decref(j);
	if (ret != -EINVAL)
		fail_msg("pol_parse returned %d, want -EINVAL (err '%s')\n  input: %s", ret, err,
			 text);
	assert_null(p);
	if (!strstr(err, want))
		fail_msg("error '%s' lacks '%s'", err, want);
}

/* A policy document from kind (np, snp, scnp), namespace, name and spec. */
static void doc(char *buf, size_t len, const char *kind, const char *ns, const char *name,
		const char *spec)
{
	const char *api = !strcmp(kind, "np") ? "networking.k8s.io/v1" : "sluice.io/v1alpha1";
	const char *k = !strcmp(kind, "np")    ? "NetworkPolicy"
			: !strcmp(kind, "snp") ? "SluiceNetworkPolicy"
					       : "SluiceClusterNetworkPolicy";

	if (!strcmp(kind, "scnp"))
		snprintf(buf, len,
			 "{'apiVersion':'%s','kind':'%s','metadata':{'name':'%s'},'spec':%s}", api,
			 k, name, spec);
	else
		snprintf(buf, len,
			 "{'apiVersion':'%s','kind':'%s','metadata':{'name':'%s','namespace':'%s'},"
			 "'spec':%s}",
			 api, k, name, ns, spec);
}

static struct pol_policy *mkpol(const char *kind, const char *ns, const char *name,
				const char *spec)
{
	char buf[4096];

	doc(buf, sizeof(buf), kind, ns, name, spec);
	return parse_ok(buf);
}

static void spec_err(const char *kind, const char *spec, const char *want)
{
	char buf[4096];

	doc(buf, sizeof(buf), kind, "y", "p", spec);
	parse_err(buf, want);
}

static void labels(const char *text, struct pol_labels *l)
{
	json_t *j = js(text);
	char err[256] = "";

	if (pol_labels_parse(j, "labels", l, err, sizeof(err)))
		fail_msg("labels: %s", err);
	json_decref(j);
}

static void sel(const char *text, struct pol_selector *s)
{
	json_t *j = js(text);
	char err[256] = "";

	if (pol_selector_parse(j, "selector", s, err, sizeof(err)))
		fail_msg("selector: %s", err);
	json_decref(j);
}

static bool sel_matches(const char *selector, const char *lbls)
{
	struct pol_selector s;
	struct pol_labels l;
	bool m;

	sel(selector, &s);
	labels(lbls, &l);
	m = pol_selector_matches(&s, &l);
	pol_selector_free(&s);
	pol_labels_free(&l);
	return m;
}

/* ---- a small cluster ------------------------------------------------- */

struct world {
	struct pol_namespace *ns[8];
	struct pol_pod *pods[16];
	struct pol_policy *pol[8];
	uint32_t node_ips[2];
	struct pol_world w;
	struct pol_pod *a, *b, *c, *d; /* x/a, y/b, y/c, z/d */
};

static uint32_t ip(const char *text)
{
	uint32_t v;

	assert_int_equal(ip4_parse(text, &v), 0);
	return v;
}

static void add_ns(struct world *W, const char *name, const char *lbls)
{
	struct pol_namespace *n = calloc(1, sizeof(*n));

	assert_non_null(n);
	n->name = strdup(name);
	labels(lbls, &n->labels);
	W->ns[W->w.nns++] = n;
}

static struct pol_pod *add_pod(struct world *W, const char *ns, const char *name, const char *lbls,
			       const char *addr)
{
	struct pol_pod *p = calloc(1, sizeof(*p));

	assert_non_null(p);
	p->ns = strdup(ns);
	p->name = strdup(name);
	labels(lbls, &p->labels);
	p->ip = ip(addr);
	p->ports = calloc(4, sizeof(*p->ports));
	W->pods[W->w.npods++] = p;
	return p;
}

static void add_port(struct pol_pod *p, const char *name, uint8_t proto, uint16_t port)
{
	p->ports[p->nports].name = name ? strdup(name) : NULL;
	p->ports[p->nports].proto = proto;
	p->ports[p->nports].port = port;
	p->nports++;
}

static struct pol_policy *add_pol(struct world *W, const char *kind, const char *ns,
				  const char *name, const char *spec)
{
	struct pol_policy *p = mkpol(kind, ns, name, spec);

	W->pol[W->w.npol++] = p;
	return p;
}

static void clear_pols(struct world *W)
{
	for (size_t i = 0; i < W->w.npol; i++)
		pol_free(W->pol[i]);
	W->w.npol = 0;
}

/*
 * Namespaces x {ns: x} and y {ns: y}; z has pods but no Namespace object.
 * x/a {app: a} 10.0.0.1; y/b {app: b} 10.0.1.1 with http 8080/TCP and
 * dns 53/UDP; y/c {app: c} 10.0.1.2 with http 9090/TCP; z/d {app: a}
 * 10.0.2.1. Node address 10.0.0.254.
 */
static int setup(void **state)
{
	struct world *W = calloc(1, sizeof(*W));

	W->w.ns = (const struct pol_namespace *const *)W->ns;
	W->w.pods = (const struct pol_pod *const *)W->pods;
	W->w.pol = (const struct pol_policy *const *)W->pol;
	W->node_ips[0] = ip("10.0.0.254");
	W->w.node_ips = W->node_ips;
	W->w.nnode_ips = 1;
	add_ns(W, "x", "{'ns':'x'}");
	add_ns(W, "y", "{'ns':'y'}");
	W->a = add_pod(W, "x", "a", "{'app':'a'}", "10.0.0.1");
	W->b = add_pod(W, "y", "b", "{'app':'b'}", "10.0.1.1");
	add_port(W->b, "http", TCP, 8080);
	add_port(W->b, "dns", UDP, 53);
	add_port(W->b, NULL, TCP, 22);
	W->c = add_pod(W, "y", "c", "{'app':'c'}", "10.0.1.2");
	add_port(W->c, "http", TCP, 9090);
	W->d = add_pod(W, "z", "d", "{'app':'a'}", "10.0.2.1");
	*state = W;
	return 0;
}

static int teardown(void **state)
{
	struct world *W = *state;

	clear_pols(W);
	for (size_t i = 0; i < W->w.npods; i++) {
		struct pol_pod *p = W->pods[i];

		for (size_t j = 0; j < p->nports; j++)
			free(p->ports[j].name);
		free(p->ports);
		pol_labels_free(&p->labels);
		free(p->ns);
		free(p->name);
		free(p);
	}
	for (size_t i = 0; i < W->w.nns; i++) {
		pol_labels_free(&W->ns[i]->labels);
		free(W->ns[i]->name);
		free(W->ns[i]);
	}
	free(W);
	return 0;
}

static struct pol_endpoint pod_ep(const struct pol_pod *p)
{
	return (struct pol_endpoint){.pod = p, .ip = p->ip};
}

static struct pol_endpoint ip_ep(const char *addr)
{
	return (struct pol_endpoint){.pod = NULL, .ip = ip(addr)};
}

static struct pol_verdict decide(struct world *W, struct pol_endpoint src, struct pol_endpoint dst,
				 uint8_t proto, uint16_t port)
{
	struct pol_verdict v;

	memset(&v, 0xa5, sizeof(v)); /* pol_decide must fill every field */
	pol_decide(&W->w, &src, &dst, proto, port, &v);
	return v;
}

static bool pp_ok(struct world *W, const struct pol_pod *s, const struct pol_pod *d, uint8_t proto,
		  uint16_t port)
{
	return decide(W, pod_ep(s), pod_ep(d), proto, port).allowed;
}

static bool ip_in_ok(struct world *W, const char *src, const struct pol_pod *d, uint8_t proto,
		     uint16_t port)
{
	return decide(W, ip_ep(src), pod_ep(d), proto, port).allowed;
}

/* ---- selectors ------------------------------------------------------- */

static void test_selector_empty_selects_all(void **state)
{
	(void)state;
	assert_true(sel_matches("{}", "{}"));
	assert_true(sel_matches("{}", "{'app':'web'}"));
	assert_true(sel_matches("{'matchLabels':{},'matchExpressions':[]}", "{'a':'b'}"));
}

static void test_selector_match_labels(void **state)
{
	(void)state;
	assert_true(sel_matches("{'matchLabels':{'app':'web'}}", "{'app':'web','tier':'fe'}"));
	assert_false(sel_matches("{'matchLabels':{'app':'web'}}", "{'app':'db'}"));
	assert_false(sel_matches("{'matchLabels':{'app':'web'}}", "{'tier':'fe'}"));
	assert_false(sel_matches("{'matchLabels':{'app':'web','tier':'be'}}",
				 "{'app':'web','tier':'fe'}"));
	/* an empty value is a value */
	assert_true(sel_matches("{'matchLabels':{'canary':''}}", "{'canary':''}"));
	assert_false(sel_matches("{'matchLabels':{'canary':''}}", "{}"));
}

static void test_selector_in(void **state)
{
	const char *s =
		"{'matchExpressions':[{'key':'env','operator':'In','values':['prod','staging']}]}";

	(void)state;
	assert_true(sel_matches(s, "{'env':'prod'}"));
	assert_true(sel_matches(s, "{'env':'staging'}"));
	assert_false(sel_matches(s, "{'env':'dev'}"));
	assert_false(sel_matches(s, "{'app':'x'}"));
}

static void test_selector_not_in_missing_key(void **state)
{
	const char *s = "{'matchExpressions':[{'key':'env','operator':'NotIn','values':['prod']}]}";

	(void)state;
	assert_false(sel_matches(s, "{'env':'prod'}"));
	assert_true(sel_matches(s, "{'env':'dev'}"));
	assert_true(sel_matches(s, "{}")); /* lacking the key counts as not in */
}

static void test_selector_exists(void **state)
{
	const char *s = "{'matchExpressions':[{'key':'team','operator':'Exists'}]}";

	(void)state;
	assert_true(sel_matches(s, "{'team':'blue'}"));
	assert_true(sel_matches(s, "{'team':''}"));
	assert_false(sel_matches(s, "{'teams':'blue'}"));
}

static void test_selector_does_not_exist(void **state)
{
	const char *s =
		"{'matchExpressions':[{'key':'legacy','operator':'DoesNotExist','values':[]}]}";

	(void)state;
	assert_true(sel_matches(s, "{}"));
	assert_true(sel_matches(s, "{'app':'x'}"));
	assert_false(sel_matches(s, "{'legacy':'true'}"));
}

static void test_selector_labels_and_expressions_and(void **state)
{
	const char *s = "{'matchLabels':{'app':'web'},'matchExpressions':["
			"{'key':'env','operator':'In','values':['prod']},"
			"{'key':'legacy','operator':'DoesNotExist'}]}";

	(void)state;
	assert_true(sel_matches(s, "{'app':'web','env':'prod'}"));
	assert_false(sel_matches(s, "{'app':'db','env':'prod'}"));
	assert_false(sel_matches(s, "{'app':'web','env':'dev'}"));
	assert_false(sel_matches(s, "{'app':'web','env':'prod','legacy':'1'}"));
	assert_false(sel_matches(s, "{'env':'prod'}"));
}

static void test_labels_sorted_get_equal(void **state)
{
	struct pol_labels l, m;

	(void)state;
	labels("{'zeta':'1','alpha':'2','app.kubernetes.io/name':'3','mid':'4'}", &l);
	labels("{'mid':'4','app.kubernetes.io/name':'3','zeta':'1','alpha':'2'}", &m);
	assert_int_equal(l.n, 4);
	for (size_t i = 1; i < l.n; i++)
		assert_true(strcmp(l.v[i - 1].key, l.v[i].key) < 0);
	assert_string_equal(pol_labels_get(&l, "zeta"), "1");
	assert_string_equal(pol_labels_get(&l, "alpha"), "2");
	assert_string_equal(pol_labels_get(&l, "app.kubernetes.io/name"), "3");
	assert_null(pol_labels_get(&l, "app"));
	assert_true(pol_labels_equal(&l, &m));
	pol_labels_free(&m);
	labels("{'mid':'5','app.kubernetes.io/name':'3','zeta':'1','alpha':'2'}", &m);
	assert_false(pol_labels_equal(&l, &m));
	pol_labels_free(&m);
	pol_labels_free(&l);
	labels("null", &l);
	assert_int_equal(l.n, 0);
	assert_null(pol_labels_get(&l, "a"));
	pol_labels_free(&l);
}

/* ---- policyTypes defaulting ------------------------------------------- */

static void test_types_default_ingress_only(void **state)
{
	struct pol_policy *p = mkpol("np", "y", "p", "{'podSelector':{},'ingress':[{}]}");

	(void)state;
	assert_true(p->ingress);
	assert_false(p->egress);
	pol_free(p);
	p = mkpol("np", "y", "p", "{'podSelector':{}}");
	assert_true(p->ingress);
	assert_false(p->egress);
	pol_free(p);
}

static void test_types_egress_present_adds_egress(void **state)
{
	struct pol_policy *p =
		mkpol("np", "y", "p",
		      "{'podSelector':{},'egress':[{'ports':[{'port':53,'protocol':'UDP'}]}]}");

	(void)state;
	assert_true(p->ingress);
	assert_true(p->egress);
	pol_free(p);
}

static void test_types_empty_egress_list_is_ingress_only(void **state)
{
	/* upstream defaults on len(spec.egress) != 0: an empty list adds nothing */
	struct pol_policy *p =
		mkpol("np", "y", "p", "{'podSelector':{},'egress':[],'policyTypes':[]}");

	(void)state;
	assert_true(p->ingress);
	assert_false(p->egress);
	pol_free(p);
}

static void test_types_explicit_both(void **state)
{
	struct world *W = *state;

	add_pol(W, "np", "y", "iso",
		"{'podSelector':{'matchLabels':{'app':'b'}},'policyTypes':['Ingress','Egress']}");
	assert_true(W->pol[0]->ingress && W->pol[0]->egress);
	assert_false(pp_ok(W, W->a, W->b, TCP, 80));
	assert_false(pp_ok(W, W->b, W->a, TCP, 80));
	assert_true(pp_ok(W, W->a, W->c, TCP, 80));
}

static void test_types_explicit_egress_only(void **state)
{
	struct world *W = *state;

	/* The ingress rules are valid but not consulted: y/b is not isolated
	 * for ingress, so everything may reach it. */
	add_pol(W, "np", "y", "eg",
		"{'podSelector':{'matchLabels':{'app':'b'}},'policyTypes':['Egress'],"
		"'ingress':[{'from':[{'podSelector':{'matchLabels':{'app':'c'}}}]}]}");
	assert_false(W->pol[0]->ingress);
	assert_true(W->pol[0]->egress);
	assert_true(pp_ok(W, W->a, W->b, TCP, 80));
	assert_false(pp_ok(W, W->b, W->a, TCP, 80));
}

/* ---- decisions and reasons ------------------------------------------- */

static void test_not_isolated_allows(void **state)
{
	struct world *W = *state;
	struct pol_verdict v = decide(W, pod_ep(W->a), pod_ep(W->b), TCP, 80);

	assert_true(v.allowed);
	assert_false(v.isolated);
	assert_null(v.policy);
	assert_int_equal(v.rule, -1);
	assert_false(v.audit_only);
	assert_false(v.denied_by_rule);
	assert_non_null(strstr(v.reason, "no policy isolates"));
}

static void test_empty_ingress_denies_all(void **state)
{
	struct world *W = *state;
	struct pol_policy *p = add_pol(W, "np", "y", "deny", "{'podSelector':{}}");
	struct pol_verdict v = decide(W, pod_ep(W->a), pod_ep(W->b), TCP, 80);

	assert_false(v.allowed);
	assert_true(v.isolated);
	assert_ptr_equal(v.policy, p);
	assert_int_equal(v.rule, -1);
	assert_int_equal(v.dir, POL_INGRESS);
	assert_false(v.denied_by_rule);
	assert_string_equal(v.reason, "ingress of y/b: denied: y/b is isolated for ingress by "
				      "networkpolicy y/deny and no rule allows traffic from x/a at "
				      "10.0.0.1 to port 80/TCP");
	assert_false(pp_ok(W, W->c, W->b, UDP, 53));
	assert_false(ip_in_ok(W, "8.8.8.8", W->b, ICMP, 8));
	/* other namespaces are untouched */
	assert_true(pp_ok(W, W->b, W->a, TCP, 80));
}

static void test_allow_reason(void **state)
{
	struct world *W = *state;
	struct pol_policy *p;
	struct pol_verdict v;

	add_pol(W, "np", "y", "deny", "{'podSelector':{}}");
	p = add_pol(W, "np", "y", "allow-x",
		    "{'podSelector':{'matchLabels':{'app':'b'}},'ingress':[{'from':"
		    "[{'namespaceSelector':{'matchLabels':{'ns':'x'}}}],'ports':[{'port':80}]}]}");
	v = decide(W, pod_ep(W->a), pod_ep(W->b), TCP, 80);
	assert_true(v.allowed);
	assert_true(v.isolated);
	assert_ptr_equal(v.policy, p);
	assert_int_equal(v.rule, 0);
	assert_string_equal(v.reason, "ingress of y/b: allowed by networkpolicy y/allow-x rule 0 "
				      "(from pods in namespaces matching ns=x, port 80/TCP)");
}

static void test_egress_deny_reason(void **state)
{
	struct world *W = *state;
	struct pol_verdict v;

	add_pol(W, "np", "x", "deny-all", "{'podSelector':{},'policyTypes':['Egress']}");
	v = decide(W, pod_ep(W->a), ip_ep("10.0.0.5"), TCP, 81);
	assert_false(v.allowed);
	assert_int_equal(v.dir, POL_EGRESS);
	assert_string_equal(v.reason,
			    "egress of x/a: denied: x/a is isolated for egress by "
			    "networkpolicy x/deny-all and no rule allows 10.0.0.5:81/TCP");
	/* ingress of x/a stays open */
	assert_true(pp_ok(W, W->b, W->a, TCP, 80));
}

/* ---- peers ----------------------------------------------------------- */

static void test_peer_pod_selector_own_namespace_only(void **state)
{
	struct world *W = *state;
	struct pol_pod *xc = add_pod(W, "x", "c2", "{'app':'c'}", "10.0.0.3");

	add_pol(W, "np", "y", "p",
		"{'podSelector':{'matchLabels':{'app':'b'}},'ingress':[{'from':[{'podSelector':"
		"{'matchLabels':{'app':'c'}}}]}]}");
	assert_true(pp_ok(W, W->c, W->b, TCP, 80));
	assert_false(pp_ok(W, xc, W->b, TCP, 80)); /* same labels, other namespace */
	assert_false(pp_ok(W, W->a, W->b, TCP, 80));
}

static void test_peer_namespace_selector(void **state)
{
	struct world *W = *state;

	add_pol(W, "np", "y", "p",
		"{'podSelector':{},'ingress':[{'from':[{'namespaceSelector':{'matchLabels':{'ns':'"
		"x'}}}]}]}");
	assert_true(pp_ok(W, W->a, W->b, TCP, 80));
	assert_false(pp_ok(W, W->d, W->b, TCP, 80));
	assert_false(pp_ok(W, W->c, W->b, TCP, 80)); /* own namespace is not special */
}

static void test_peer_both_selectors_and(void **state)
{
	struct world *W = *state;
	struct pol_pod *xe = add_pod(W, "x", "e", "{'app':'e'}", "10.0.0.5");

	add_pol(W, "np", "y", "p",
		"{'podSelector':{},'ingress':[{'from':[{'namespaceSelector':{'matchLabels':"
		"{'ns':'x'}},'podSelector':{'matchLabels':{'app':'a'}}}]}]}");
	assert_true(pp_ok(W, W->a, W->b, TCP, 80));
	assert_false(pp_ok(W, xe, W->b, TCP, 80));   /* right namespace, wrong pod */
	assert_false(pp_ok(W, W->d, W->b, TCP, 80)); /* right pod labels, wrong namespace */
}

static void test_peer_separate_entries_or(void **state)
{
	struct world *W = *state;
	struct pol_pod *xe = add_pod(W, "x", "e", "{'app':'e'}", "10.0.0.5");

	add_pol(W, "np", "y", "p",
		"{'podSelector':{},'ingress':[{'from':[{'namespaceSelector':{'matchLabels':"
		"{'ns':'x'}}},{'podSelector':{'matchLabels':{'app':'c'}}}]}]}");
	assert_true(pp_ok(W, xe, W->b, TCP, 80));
	assert_true(pp_ok(W, W->c, W->b, TCP, 80));
	assert_false(pp_ok(W, W->d, W->b, TCP, 80));
}

static void test_namespace_name_label_implicit(void **state)
{
	struct world *W = *state;
	struct pol_pod *wp;

	/* z has no Namespace object; w claims to be x through a stale label */
	add_ns(W, "w", "{'kubernetes.io/metadata.name':'x'}");
	wp = add_pod(W, "w", "p", "{}", "10.0.3.1");
	add_pol(W, "np", "y", "p",
		"{'podSelector':{},'ingress':[{'from':[{'namespaceSelector':{'matchLabels':"
		"{'kubernetes.io/metadata.name':'z'}}},{'namespaceSelector':{'matchExpressions':"
		"[{'key':'kubernetes.io/metadata.name','operator':'In','values':['x']}]}}]}]}");
	assert_true(pp_ok(W, W->d, W->b, TCP, 80));
	assert_true(pp_ok(W, W->a, W->b, TCP, 80));
	assert_false(pp_ok(W, wp, W->b, TCP, 80));
	assert_false(pp_ok(W, W->c, W->b, TCP, 80));
	clear_pols(W);
	/* an unknown namespace has no other labels */
	add_pol(W, "np", "y", "p",
		"{'podSelector':{},'ingress':[{'from':[{'namespaceSelector':{'matchExpressions':"
		"[{'key':'ns','operator':'DoesNotExist'}]}}]}]}");
	assert_true(pp_ok(W, W->d, W->b, TCP, 80));
	assert_false(pp_ok(W, W->a, W->b, TCP, 80));
}

static void test_ipblock_except(void **state)
{
	struct world *W = *state;
	struct pol_verdict v;

	add_pol(W, "np", "y", "p",
		"{'podSelector':{},'ingress':[{'from':[{'ipBlock':{'cidr':'192.168.0.0/16',"
		"'except':['192.168.1.0/24','192.168.7.128/25']}}]}]}");
	assert_true(pol_peer_matches_ip(&W->pol[0]->in[0].peers[0], ip("192.168.2.3")));
	assert_false(pol_peer_matches_ip(&W->pol[0]->in[0].peers[0], ip("192.168.1.7")));
	assert_true(ip_in_ok(W, "192.168.2.3", W->b, TCP, 80));
	assert_true(ip_in_ok(W, "192.168.7.127", W->b, TCP, 80));
	assert_true(ip_in_ok(W, "192.168.0.0", W->b, TCP, 80));
	assert_false(ip_in_ok(W, "192.168.1.7", W->b, TCP, 80));
	assert_false(ip_in_ok(W, "192.168.7.200", W->b, TCP, 80));
	assert_false(ip_in_ok(W, "10.1.1.1", W->b, TCP, 80));
	assert_false(ip_in_ok(W, "192.169.0.1", W->b, TCP, 80));
	v = decide(W, ip_ep("192.168.2.3"), pod_ep(W->b), TCP, 80);
	assert_non_null(
		strstr(v.reason, "from 192.168.0.0/16 except 192.168.1.0/24, 192.168.7.128/25"));
}

static void test_ipblock_matches_pod_ip(void **state)
{
	struct world *W = *state;

	add_pol(W, "np", "y", "p",
		"{'podSelector':{},'ingress':[{'from':[{'ipBlock':{'cidr':'10.0.0.0/24'}}]}]}");
	assert_true(pp_ok(W, W->a, W->b, TCP, 80));
	assert_false(pp_ok(W, W->d, W->b, TCP, 80));
	/* ipBlock peers never match by selector */
	assert_false(pol_peer_matches_pod(&W->pol[0]->in[0].peers[0], W->pol[0], &W->w, W->a));
}

static void test_cluster_policy_pod_peer_any_namespace(void **state)
{
	struct world *W = *state;
	const char *spec = "{'podSelector':{'matchLabels':{'app':'b'}},'ingress':[{'from':"
			   "[{'podSelector':{'matchLabels':{'app':'a'}}}]}]}";
	struct pol_verdict v;

	add_pol(W, "scnp", NULL, "baseline", spec);
	assert_null(W->pol[0]->ns);
	assert_true(pp_ok(W, W->a, W->b, TCP, 80));
	assert_true(pp_ok(W, W->d, W->b, TCP, 80));
	assert_false(pp_ok(W, W->c, W->b, TCP, 80));
	v = decide(W, pod_ep(W->a), pod_ep(W->b), TCP, 80);
	assert_non_null(strstr(v.reason, "allowed by sluiceclusternetworkpolicy baseline rule 0 "
					 "(from pods matching app=a in any namespace, any port)"));
	clear_pols(W);
	/* the same spec namespaced: podSelector peers stay in y */
	add_pol(W, "snp", "y", "local", spec);
	assert_false(pp_ok(W, W->a, W->b, TCP, 80));
	assert_false(pp_ok(W, W->d, W->b, TCP, 80));
}

static void test_cluster_policy_namespace_selector(void **state)
{
	struct world *W = *state;
	struct pol_policy *p =
		add_pol(W, "scnp", NULL, "x-only",
			"{'namespaceSelector':{'matchLabels':{'ns':'x'}},'podSelector':{}}");

	assert_true(pol_selects_pod(p, &W->w, W->a));
	assert_false(pol_selects_pod(p, &W->w, W->b));
	assert_false(pol_selects_pod(p, &W->w, W->d));
	assert_false(pp_ok(W, W->b, W->a, TCP, 80));
	assert_true(pp_ok(W, W->a, W->b, TCP, 80));
	clear_pols(W);
	p = add_pol(W, "scnp", NULL, "all", "{'podSelector':{'matchLabels':{'app':'a'}}}");
	assert_true(pol_selects_pod(p, &W->w, W->a));
	assert_true(pol_selects_pod(p, &W->w, W->d)); /* namespace without an object too */
	assert_false(pol_selects_pod(p, &W->w, W->b));
}

static void test_non_pod_peer_ipblock_vs_selector(void **state)
{
	struct world *W = *state;

	add_pol(W, "np", "y", "p",
		"{'podSelector':{},'ingress':[{'from':[{'podSelector':{}},{'namespaceSelector':{}}]"
		","
		"'ports':[{'port':80}]},{'from':[{'ipBlock':{'cidr':'172.16.0.0/12'}}],'ports':"
		"[{'port':81}]},{'ports':[{'port':82}]}]}");
	/* {} selectors mean every pod, never a non-pod address */
	assert_false(ip_in_ok(W, "172.16.0.9", W->b, TCP, 80));
	assert_true(pp_ok(W, W->d, W->b, TCP, 80));
	assert_true(ip_in_ok(W, "172.16.0.9", W->b, TCP, 81));
	assert_false(ip_in_ok(W, "172.32.0.9", W->b, TCP, 81));
	/* omitted from: every source, pods or not */
	assert_true(ip_in_ok(W, "203.0.113.7", W->b, TCP, 82));
	/* same address as pod x/a, but not that pod */
	assert_false(ip_in_ok(W, "10.0.0.1", W->b, TCP, 80));
}

static void test_empty_from_means_all_peers(void **state)
{
	struct world *W = *state;

	add_pol(W, "np", "y", "p",
		"{'podSelector':{},'ingress':[{'from':[],'ports':[{'port':80}]}]}");
	assert_true(W->pol[0]->in[0].any_peer);
	assert_true(pp_ok(W, W->d, W->b, TCP, 80));
	assert_true(ip_in_ok(W, "1.2.3.4", W->b, TCP, 80));
	assert_false(ip_in_ok(W, "1.2.3.4", W->b, TCP, 81));
	clear_pols(W);
	add_pol(W, "np", "y", "p", "{'podSelector':{},'ingress':[{}]}");
	assert_true(W->pol[0]->in[0].any_port);
	assert_true(ip_in_ok(W, "1.2.3.4", W->b, ICMP, 8));
	assert_true(ip_in_ok(W, "1.2.3.4", W->b, 47, 0));
	assert_true(pp_ok(W, W->a, W->b, UDP, 9999));
}

/* ---- ports ----------------------------------------------------------- */

static void test_port_numeric(void **state)
{
	struct world *W = *state;

	add_pol(W, "np", "y", "p",
		"{'podSelector':{},'ingress':[{'ports':[{'port':80},{'port':443}]}]}");
	assert_true(pp_ok(W, W->a, W->b, TCP, 80));
	assert_true(pp_ok(W, W->a, W->b, TCP, 443));
	assert_false(pp_ok(W, W->a, W->b, TCP, 81));
	assert_false(pp_ok(W, W->a, W->b, UDP, 80)); /* protocol defaults to TCP */
	assert_false(pp_ok(W, W->a, W->b, ICMP, 8)); /* ports given: no ICMP */
}

static void test_port_named_resolved_per_destination(void **state)
{
	struct world *W = *state;
	struct pol_verdict v;
	uint16_t lo, hi;

	add_pol(W, "np", "y", "p", "{'podSelector':{},'ingress':[{'ports':[{'port':'http'}]}]}");
	assert_true(pp_ok(W, W->a, W->b, TCP, 8080));
	assert_false(pp_ok(W, W->a, W->b, TCP, 9090));
	assert_true(pp_ok(W, W->a, W->c, TCP, 9090));
	assert_false(pp_ok(W, W->a, W->c, TCP, 8080));
	assert_false(pp_ok(W, W->a, W->b, TCP, 22)); /* unnamed container port */
	v = decide(W, pod_ep(W->a), pod_ep(W->b), TCP, 8080);
	assert_non_null(strstr(v.reason, "port http (8080)/TCP"));
	assert_true(pol_port_range(&W->pol[0]->in[0].ports[0], W->b, TCP, &lo, &hi));
	assert_int_equal(lo, 8080);
	assert_int_equal(hi, 8080);
	assert_true(pol_port_range(&W->pol[0]->in[0].ports[0], W->c, TCP, &lo, &hi));
	assert_int_equal(lo, 9090);
}

static void test_port_named_protocol_must_match(void **state)
{
	struct world *W = *state;
	uint16_t lo, hi;

	/* dns is 53/UDP on y/b; the entry defaults to TCP */
	add_pol(W, "np", "y", "p", "{'podSelector':{},'ingress':[{'ports':[{'port':'dns'}]}]}");
	assert_false(pp_ok(W, W->a, W->b, UDP, 53));
	assert_false(pp_ok(W, W->a, W->b, TCP, 53));
	assert_false(pol_port_range(&W->pol[0]->in[0].ports[0], W->b, TCP, &lo, &hi));
	assert_false(pol_port_range(&W->pol[0]->in[0].ports[0], W->b, UDP, &lo, &hi));
	clear_pols(W);
	add_pol(W, "np", "y", "p",
		"{'podSelector':{},'ingress':[{'ports':[{'port':'dns','protocol':'UDP'}]}]}");
	assert_true(pp_ok(W, W->a, W->b, UDP, 53));
	assert_false(pp_ok(W, W->a, W->b, TCP, 53));
}

static void test_port_named_unresolvable(void **state)
{
	struct world *W = *state;

	add_pol(W, "np", "y", "p", "{'podSelector':{},'ingress':[{'ports':[{'port':'metrics'}]}]}");
	for (uint16_t port = 1; port < 10000; port += 7)
		assert_false(pp_ok(W, W->a, W->b, TCP, port));
	assert_false(pp_ok(W, W->a, W->b, TCP, 8080));
	assert_false(pp_ok(W, W->a, W->b, TCP, 22));
}

static void test_port_end_port_range(void **state)
{
	struct world *W = *state;
	struct pol_verdict v;
	uint16_t lo, hi;

	add_pol(W, "np", "y", "p",
		"{'podSelector':{},'ingress':[{'ports':[{'port':8000,'endPort':8100,'protocol':'"
		"TCP'}]}]}");
	assert_true(pp_ok(W, W->a, W->b, TCP, 8000));
	assert_true(pp_ok(W, W->a, W->b, TCP, 8050));
	assert_true(pp_ok(W, W->a, W->b, TCP, 8100));
	assert_false(pp_ok(W, W->a, W->b, TCP, 7999));
	assert_false(pp_ok(W, W->a, W->b, TCP, 8101));
	assert_true(pol_port_range(&W->pol[0]->in[0].ports[0], NULL, TCP, &lo, &hi));
	assert_int_equal(lo, 8000);
	assert_int_equal(hi, 8100);
	v = decide(W, pod_ep(W->a), pod_ep(W->b), TCP, 8050);
	assert_non_null(strstr(v.reason, "ports 8000-8100/TCP"));
}

static void test_port_protocol_only(void **state)
{
	struct world *W = *state;
	uint16_t lo, hi;

	add_pol(W, "np", "y", "p", "{'podSelector':{},'ingress':[{'ports':[{'protocol':'UDP'}]}]}");
	assert_int_equal(W->pol[0]->in[0].ports[0].kind, PORT_ANY);
	assert_true(pp_ok(W, W->a, W->b, UDP, 1));
	assert_true(pp_ok(W, W->a, W->b, UDP, 65535));
	assert_false(pp_ok(W, W->a, W->b, TCP, 53));
	assert_false(pp_ok(W, W->a, W->b, ICMP, 8));
	assert_true(pol_port_range(&W->pol[0]->in[0].ports[0], NULL, UDP, &lo, &hi));
	assert_int_equal(lo, 0);
	assert_int_equal(hi, 65535);
	assert_false(pol_port_range(&W->pol[0]->in[0].ports[0], NULL, IPPROTO_SCTP, &lo, &hi));
}

static void test_port_default_tcp_and_sctp(void **state)
{
	struct world *W = *state;

	add_pol(W, "np", "y", "p",
		"{'podSelector':{},'ingress':[{'ports':[{'port':5000},{'port':6000,'protocol':'"
		"SCTP'}]}]}");
	assert_int_equal(W->pol[0]->in[0].ports[0].proto, IPPROTO_TCP);
	assert_true(pp_ok(W, W->a, W->b, TCP, 5000));
	assert_false(pp_ok(W, W->a, W->b, IPPROTO_SCTP, 5000));
	assert_true(pp_ok(W, W->a, W->b, IPPROTO_SCTP, 6000));
	assert_false(pp_ok(W, W->a, W->b, TCP, 6000));
}

static void test_egress_named_port_uses_destination(void **state)
{
	struct world *W = *state;
	struct pol_verdict v;

	add_pol(W, "np", "x", "e",
		"{'podSelector':{},'policyTypes':['Egress'],'egress':[{'ports':[{'port':'http'}]}]"
		"}");
	assert_true(pp_ok(W, W->a, W->b, TCP, 8080));
	assert_false(pp_ok(W, W->a, W->c, TCP, 8080));
	assert_true(pp_ok(W, W->a, W->c, TCP, 9090));
	/* a non-pod destination has no named ports */
	v = decide(W, pod_ep(W->a), ip_ep("10.9.9.9"), TCP, 8080);
	assert_false(v.allowed);
	assert_int_equal(v.dir, POL_EGRESS);
}

/* ---- sluice CRDs ----------------------------------------------------- */

static void test_deny_wins_across_policies(void **state)
{
	struct world *W = *state;
	const char *deny =
		"{'podSelector':{},'ingress':[{'action':'Deny','from':[{'namespaceSelector':"
		"{'matchLabels':{'ns':'x'}}}],'ports':[{'port':80}]}]}";
	struct pol_policy *block;
	struct pol_verdict v;

	for (int order = 0; order < 2; order++) {
		clear_pols(W);
		if (order)
			block = add_pol(W, "snp", "y", "block", deny);
		add_pol(W, "np", "y", "allow-all", "{'podSelector':{},'ingress':[{}]}");
		if (!order)
			block = add_pol(W, "snp", "y", "block", deny);
		v = decide(W, pod_ep(W->a), pod_ep(W->b), TCP, 80);
		assert_false(v.allowed);
		assert_true(v.denied_by_rule);
		assert_ptr_equal(v.policy, block);
		assert_int_equal(v.rule, 0);
		assert_string_equal(v.reason,
				    "ingress of y/b: denied by sluicenetworkpolicy y/block rule 0 "
				    "(from pods in namespaces matching ns=x, port 80/TCP)");
		assert_true(pp_ok(W, W->a, W->b, TCP, 81));
		assert_true(pp_ok(W, W->d, W->b, TCP, 80));
	}
}

static void test_deny_only_policy_isolates(void **state)
{
	struct world *W = *state;
	struct pol_policy *p =
		add_pol(W, "snp", "y", "only-deny",
			"{'podSelector':{},'ingress':[{'action':'Deny','from':[{'ipBlock':"
			"{'cidr':'10.9.0.0/16'}}]}]}");
	struct pol_verdict v = decide(W, pod_ep(W->d), pod_ep(W->b), TCP, 80);

	assert_false(v.allowed);
	assert_false(v.denied_by_rule);
	assert_ptr_equal(v.policy, p);
	assert_int_equal(v.rule, -1);
	v = decide(W, ip_ep("10.9.1.1"), pod_ep(W->b), TCP, 80);
	assert_false(v.allowed);
	assert_true(v.denied_by_rule);
}

static void test_audit_only(void **state)
{
	struct world *W = *state;
	struct pol_policy *p = add_pol(W, "snp", "y", "audit", "{'podSelector':{},'mode':'Audit'}");
	struct pol_verdict v = decide(W, pod_ep(W->a), pod_ep(W->b), TCP, 80);

	assert_true(p->audit);
	assert_true(v.allowed);
	assert_true(v.audit_only);
	assert_true(v.isolated);
	assert_ptr_equal(v.policy, p);
	assert_int_equal(v.rule, -1);
	assert_non_null(strstr(v.reason, "Audit"));
	assert_non_null(strstr(v.reason, "sluicenetworkpolicy y/audit"));
	clear_pols(W);
	/* an Audit deny rule against an enforced allow */
	add_pol(W, "np", "y", "allow", "{'podSelector':{},'ingress':[{}]}");
	p = add_pol(W, "snp", "y", "audit-deny",
		    "{'podSelector':{},'mode':'Audit','ingress':[{'action':'Deny','ports':[{'port':"
		    "80}]}]}");
	v = decide(W, pod_ep(W->a), pod_ep(W->b), TCP, 80);
	assert_true(v.allowed);
	assert_true(v.audit_only);
	assert_true(v.denied_by_rule);
	assert_ptr_equal(v.policy, p);
	assert_int_equal(v.rule, 0);
	v = decide(W, pod_ep(W->a), pod_ep(W->b), TCP, 81);
	assert_true(v.allowed);
	assert_false(v.audit_only);
}

static void test_audit_never_loosens(void **state)
{
	struct world *W = *state;
	struct pol_policy *deny = add_pol(W, "np", "y", "deny", "{'podSelector':{}}");
	struct pol_verdict v;

	add_pol(W, "snp", "y", "audit-allow", "{'podSelector':{},'mode':'Audit','ingress':[{}]}");
	v = decide(W, pod_ep(W->a), pod_ep(W->b), TCP, 80);
	assert_false(v.allowed);
	assert_false(v.audit_only);
	assert_ptr_equal(v.policy, deny);
	clear_pols(W);
	/* an Audit policy that would allow the flow anyway is no audit event */
	add_pol(W, "snp", "y", "audit-allow", "{'podSelector':{},'mode':'Audit','ingress':[{}]}");
	v = decide(W, pod_ep(W->a), pod_ep(W->b), TCP, 80);
	assert_true(v.allowed);
	assert_false(v.audit_only);
}

static void test_icmp_rules(void **state)
{
	struct world *W = *state;
	struct pol_verdict v;

	add_pol(W, "snp", "y", "ping",
		"{'podSelector':{},'ingress':[{'icmp':[{'type':8},{'type':3,'code':4}]},"
		"{'ports':[{'port':80}],'icmp':[{'type':13}]}]}");
	assert_true(pp_ok(W, W->a, W->b, ICMP, 8));
	assert_true(pp_ok(W, W->a, W->b, ICMP, 3));
	assert_true(pp_ok(W, W->a, W->b, ICMP, 13));
	assert_false(pp_ok(W, W->a, W->b, ICMP, 0));
	assert_false(pp_ok(W, W->a, W->b, TCP, 8));
	assert_true(pp_ok(W, W->a, W->b, TCP, 80));
	assert_int_equal(W->pol[0]->in[0].icmp[0].code, -1);
	assert_int_equal(W->pol[0]->in[0].icmp[1].code, 4);
	v = decide(W, pod_ep(W->a), pod_ep(W->b), ICMP, 8);
	assert_non_null(strstr(v.reason, "ICMP type 8"));
	v = decide(W, pod_ep(W->a), pod_ep(W->b), ICMP, 0);
	assert_non_null(strstr(v.reason, "(ICMP type 0)"));
}

static void test_self_traffic_allowed(void **state)
{
	struct world *W = *state;
	struct pol_verdict v;

	add_pol(W, "snp", "y", "lock",
		"{'podSelector':{},'policyTypes':['Ingress','Egress'],"
		"'ingress':[{'action':'Deny'}],'egress':[{'action':'Deny'}]}");
	v = decide(W, pod_ep(W->b), pod_ep(W->b), TCP, 8080);
	assert_true(v.allowed);
	assert_non_null(strstr(v.reason, "itself"));
	assert_false(pp_ok(W, W->c, W->b, TCP, 8080));
	assert_false(pp_ok(W, W->b, W->c, TCP, 8080));
}

static void test_node_ip_allowed_into_isolated_pod(void **state)
{
	struct world *W = *state;
	struct pol_verdict v;

	add_pol(W, "np", "y", "deny", "{'podSelector':{}}");
	add_pol(W, "snp", "y", "deny-10",
		"{'podSelector':{},'ingress':[{'action':'Deny','from':[{'ipBlock':{'cidr':'10.0.0."
		"0/8'}}]}]}");
	v = decide(W, ip_ep("10.0.0.254"), pod_ep(W->b), TCP, 8080);
	assert_true(v.allowed);
	assert_non_null(strstr(v.reason, "10.0.0.254"));
	assert_false(ip_in_ok(W, "10.0.0.253", W->b, TCP, 8080));
	/* only into pods: a pod's egress to the node is policed as usual */
	clear_pols(W);
	add_pol(W, "np", "y", "deny-eg", "{'podSelector':{},'policyTypes':['Egress']}");
	v = decide(W, pod_ep(W->b), ip_ep("10.0.0.254"), TCP, 10250);
	assert_false(v.allowed);
}

static void test_decide_both_directions(void **state)
{
	struct world *W = *state;
	struct pol_endpoint s = pod_ep(W->a), d = pod_ep(W->b);
	struct pol_verdict v, eg, in;

	/* egress of x/a denies, ingress of y/b allows: egress decides */
	add_pol(W, "np", "x", "eg", "{'podSelector':{},'policyTypes':['Egress']}");
	add_pol(W, "np", "y", "in", "{'podSelector':{},'ingress':[{}]}");
	v = decide(W, s, d, TCP, 80);
	assert_false(v.allowed);
	assert_int_equal(v.dir, POL_EGRESS);
	pol_decide_dir(&W->w, POL_INGRESS, &s, &d, TCP, 80, &in);
	pol_decide_dir(&W->w, POL_EGRESS, &s, &d, TCP, 80, &eg);
	assert_true(in.allowed);
	assert_int_equal(in.rule, 0);
	assert_false(eg.allowed);
	clear_pols(W);
	/* and the other way round */
	add_pol(W, "np", "x", "eg", "{'podSelector':{},'egress':[{}]}");
	add_pol(W, "np", "y", "in", "{'podSelector':{}}");
	v = decide(W, s, d, TCP, 80);
	assert_false(v.allowed);
	assert_int_equal(v.dir, POL_INGRESS);
	/* a non-pod subject has no policy */
	pol_decide_dir(&W->w, POL_EGRESS, &(struct pol_endpoint){.ip = ip("1.1.1.1")}, &d, TCP, 80,
		       &eg);
	assert_true(eg.allowed);
	assert_false(eg.isolated);
}

/* ---- parsing --------------------------------------------------------- */

static void test_parse_fields(void **state)
{
	struct pol_policy *p;

	(void)state;
	p = mkpol("snp", "team-a", "web.allow-1",
		  "{'podSelector':{'matchLabels':{'app':'web'}},'mode':'Enforce','egress':[{'to':"
		  "[{'ipBlock':{'cidr':'0.0.0.0/0','except':['10.0.0.0/"
		  "8']}}],'ports':[{'port':443}]}]}");
	assert_int_equal(p->kind, POL_SLUICE);
	assert_string_equal(p->ns, "team-a");
	assert_string_equal(p->name, "web.allow-1");
	assert_false(p->audit);
	assert_true(p->ingress && p->egress);
	assert_int_equal(p->nin, 0);
	assert_int_equal(p->neg, 1);
	assert_true(p->eg[0].peers[0].is_ipblock);
	assert_int_equal(p->eg[0].peers[0].cidr.prefix, 0);
	assert_int_equal(p->eg[0].peers[0].nexcept, 1);
	assert_int_equal(p->eg[0].action, POL_ALLOW);
	assert_false(p->eg[0].any_peer);
	assert_false(p->eg[0].any_port);
	pol_free(p);
}

static void test_parse_namespace_default_and_cluster(void **state)
{
	struct pol_policy *p;

	(void)state;
	p = parse_ok(
		"{'apiVersion':'networking.k8s.io/"
		"v1','kind':'NetworkPolicy','metadata':{'name':'p'},'spec':{'podSelector':{}}}");
	assert_string_equal(p->ns, "default");
	pol_free(p);
	/* a cluster-scoped object's namespace is dropped, as the apiserver does */
	p = parse_ok(
		"{'apiVersion':'sluice.io/v1alpha1','kind':'SluiceClusterNetworkPolicy','metadata':"
		"{'name':'p','namespace':'y'},'spec':{'podSelector':{}}}");
	assert_int_equal(p->kind, POL_SLUICE_CLUSTER);
	assert_null(p->ns);
	assert_false(p->has_ns_sel);
	pol_free(p);
}

static void test_parse_k8s_podselector_optional(void **state)
{
	struct world *W = *state;
	struct pol_policy *p = add_pol(W, "np", "y", "p", "{'ingress':[{'ports':[{'port':80}]}]}");

	/* upstream: podSelector "defaults to an empty selector" */
	assert_true(pol_selects_pod(p, &W->w, W->b));
	assert_true(pol_selects_pod(p, &W->w, W->c));
	assert_false(pol_selects_pod(p, &W->w, W->a));
	spec_err("snp", "{'ingress':[{}]}",
		 "spec.podSelector: missing; use {} to select every pod in the namespace");
	spec_err("scnp", "{}", "spec.podSelector: missing; use {}");
}

static void test_parse_unknown_fields_ignored(void **state)
{
	struct pol_policy *p;

	(void)state;
	/* icmp and action are sluice fields: a NetworkPolicy ignores them */
	p = mkpol("np", "y", "p",
		  "{'podSelector':{},'future':1,'ingress':[{'action':'Deny','icmp':[{'type':8}],"
		  "'bogus':true,'ports':[{'port':80,'extra':'x'}]}]}");
	assert_int_equal(p->in[0].action, POL_ALLOW);
	assert_int_equal(p->in[0].nicmp, 0);
	assert_int_equal(p->in[0].nports, 1);
	pol_free(p);
}

static void test_err_api_version_and_kind(void **state)
{
	(void)state;
	parse_err("{'kind':'NetworkPolicy','metadata':{'name':'p'}}", "apiVersion: missing");
	parse_err("{'apiVersion':'networking.k8s.io/v1','metadata':{'name':'p'}}", "kind: missing");
	parse_err("{'apiVersion':'networking.k8s.io/"
		  "v1beta1','kind':'NetworkPolicy','metadata':{'name':'p'}}",
		  "apiVersion: 'networking.k8s.io/v1beta1' is not supported; expected");
	parse_err("{'apiVersion':'networking.k8s.io/"
		  "v1','kind':'SluiceNetworkPolicy','metadata':{'name':'p'}}",
		  "apiVersion: SluiceNetworkPolicy is not served by networking.k8s.io/v1");
	parse_err("{'apiVersion':'sluice.io/"
		  "v1alpha1','kind':'NetworkPolicy','metadata':{'name':'p'}}",
		  "apiVersion: NetworkPolicy is not served by sluice.io/v1alpha1");
	parse_err("{'apiVersion':'networking.k8s.io/"
		  "v1','kind':'networkpolicy','metadata':{'name':'p'}}",
		  "kind: 'networkpolicy' is not a policy kind");
	parse_err("{'apiVersion':'sluice.io/v1alpha1','kind':'Pod','metadata':{'name':'p'}}",
		  "kind: 'Pod' is not a kind of sluice.io/v1alpha1");
	parse_err("[]", "is a list; expected a policy object");
}

static void test_err_metadata(void **state)
{
	(void)state;
	parse_err("{'apiVersion':'networking.k8s.io/v1','kind':'NetworkPolicy'}",
		  "metadata: missing");
	parse_err("{'apiVersion':'networking.k8s.io/v1','kind':'NetworkPolicy','metadata':{}}",
		  "metadata.name: missing; expected a DNS-1123 subdomain");
	parse_err("{'apiVersion':'networking.k8s.io/"
		  "v1','kind':'NetworkPolicy','metadata':{'name':'Allow_Web'}}",
		  "metadata.name: 'Allow_Web' is not a valid name");
	parse_err("{'apiVersion':'networking.k8s.io/"
		  "v1','kind':'NetworkPolicy','metadata':{'name':'a..b'}}",
		  "metadata.name: 'a..b' is not a valid name");
	parse_err("{'apiVersion':'networking.k8s.io/"
		  "v1','kind':'NetworkPolicy','metadata':{'name':'-a'}}",
		  "metadata.name: '-a'");
	parse_err("{'apiVersion':'networking.k8s.io/"
		  "v1','kind':'NetworkPolicy','metadata':{'name':'a','namespace':'a.b'}}",
		  "metadata.namespace: 'a.b' is not a valid namespace name");
}

static void test_err_port_out_of_range(void **state)
{
	char buf[1024], err[512];
	struct pol_policy *p;
	json_t *j;

	(void)state;
	doc(buf, sizeof(buf), "np", "y", "p",
	    "{'podSelector':{},'ingress':[{'ports':[{'port':80},{'port':70000}]}]}");
	j = js(buf);
	assert_int_equal(pol_parse(j, &p, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "spec.ingress[0].ports[1].port: 70000 is out of range; expected "
				 "1-65535 or a port name");
	json_decref(j);
	spec_err("np", "{'egress':[{},{'ports':[{'port':0}]}]}",
		 "spec.egress[1].ports[0].port: 0 is out of range");
	spec_err("np", "{'ingress':[{'ports':[{'port':80.5}]}]}",
		 "spec.ingress[0].ports[0].port: is a number; expected");
}

static void test_err_port_names(void **state)
{
	(void)state;
	spec_err("np", "{'ingress':[{'ports':[{'port':'HTTP'}]}]}",
		 "spec.ingress[0].ports[0].port: 'HTTP' is not a valid port name");
	spec_err("np", "{'ingress':[{'ports':[{'port':'80'}]}]}",
		 "port: '80' is not a valid port name");
	spec_err("np", "{'ingress':[{'ports':[{'port':'a--b'}]}]}",
		 "'a--b' is not a valid port name");
	spec_err("np", "{'ingress':[{'ports':[{'port':'abcdefghijklmnop'}]}]}",
		 "is not a valid port name");
	spec_err("np", "{'ingress':[{'ports':[{'port':'-web'}]}]}", "is not a valid port name");
}

static void test_err_end_port(void **state)
{
	(void)state;
	spec_err("np", "{'egress':[{'ports':[{'endPort':90}]}]}",
		 "spec.egress[0].ports[0].endPort: is set without port");
	spec_err("np", "{'ingress':[{'ports':[{'protocol':'UDP','endPort':90}]}]}",
		 "spec.ingress[0].ports[0].endPort: is set without port");
	spec_err("np", "{'ingress':[{'ports':[{'port':80,'endPort':79}]}]}",
		 "spec.ingress[0].ports[0].endPort: 79 is less than port 80; expected a value >= "
		 "port");
	spec_err("np", "{'ingress':[{'ports':[{'port':'http','endPort':90}]}]}",
		 "spec.ingress[0].ports[0].endPort: is set but port is the name 'http'");
	spec_err("np", "{'ingress':[{'ports':[{'port':80,'endPort':65536}]}]}",
		 "endPort: 65536 is out of range");
}

static void test_err_protocol(void **state)
{
	(void)state;
	spec_err("np", "{'ingress':[{'ports':[{'protocol':'tcp','port':80}]}]}",
		 "spec.ingress[0].ports[0].protocol: 'tcp' is not supported; expected TCP, UDP or "
		 "SCTP");
	spec_err("np", "{'ingress':[{'ports':[{'protocol':'ICMP'}]}]}", "'ICMP' is not supported");
}

/* The API path's parse: it must succeed; *degraded tells whether it had to
 * fail closed. */
static struct pol_policy *parse_api(const char *text)
{
	json_t *j = js(text);
	struct pol_policy *p = NULL;
	char err[512] = "";

	if (pol_parse_api(j, &p, err, sizeof(err)))
		fail_msg("pol_parse_api failed: %s\n  input: %s", err, text);
	json_decref(j);
	return p;
}

static struct pol_policy *add_api_pol(struct world *W, const char *kind, const char *ns,
				      const char *name, const char *spec)
{
	char buf[4096];
	struct pol_policy *p;

	doc(buf, sizeof(buf), kind, ns, name, spec);
	p = parse_api(buf);
	W->pol[W->w.npol++] = p;
	return p;
}

/* Every decision over a grid of sources, destinations and ports. */
static void decisions(struct world *W, bool *out, size_t n)
{
	const char *ips[] = { "10.0.0.9", "10.210.1.7", "192.168.1.1" };
	const uint16_t ports[] = { 22, 53, 80, 8080, 9090 };
	const uint8_t protos[] = { TCP, UDP, ICMP };
	size_t k = 0;

	for (size_t d = 0; d < W->w.npods; d++)
		for (size_t pr = 0; pr < 3; pr++)
			for (size_t po = 0; po < 5; po++) {
				for (size_t s = 0; s < W->w.npods && k < n; s++)
					out[k++] = pp_ok(W, W->pods[s], W->pods[d], protos[pr],
							 ports[po]);
				for (size_t s = 0; s < 3 && k < n; s++)
					out[k++] = ip_in_ok(W, ips[s], W->pods[d], protos[pr],
							    ports[po]);
				for (size_t s = 0; s < 3 && k < n; s++)
					out[k++] = decide(W, pod_ep(W->pods[d]), ip_ep(ips[s]),
							  protos[pr], ports[po])
							   .allowed;
			}
}

/* What `sluicectl apply` accepts, the watch reads identically: the same
 * decisions, and no degradation. */
static void same_meaning(struct world *W, const char *kind, const char *spec)
{
	bool strict[1024] = { 0 }, api[1024] = { 0 };
	struct pol_policy *p;
	char buf[4096];

	clear_pols(W);
	add_pol(W, kind, "y", "p", spec);
	decisions(W, strict, 1024);
	clear_pols(W);
	doc(buf, sizeof(buf), kind, "y", "p", spec);
	p = parse_api(buf);
	assert_null(p->degraded);
	W->pol[W->w.npol++] = p;
	decisions(W, api, 1024);
	clear_pols(W);
	if (memcmp(strict, api, sizeof(strict)))
		fail_msg("apply and the watch read %s differently", spec);
}

/* pol_parse refuses it; pol_parse_api fails closed and names the part. */
static struct pol_policy *add_degraded(struct world *W, const char *kind, const char *spec,
				       const char *want)
{
	struct pol_policy *p;

	spec_err(kind, spec, want);
	p = add_api_pol(W, kind, "y", "p", spec);
	assert_non_null(p->degraded);
	if (!strstr(p->degraded, want))
		fail_msg("degraded '%s' lacks '%s'", p->degraded, want);
	return p;
}

/* IPv6 blocks are valid and match no IPv4 traffic; the rest of the policy
 * applies. Before, the policy was refused and (through the watch) skipped,
 * leaving the pod open. */
static void test_ipv6_block_matches_nothing(void **state)
{
	struct world *W = *state;
	const char *spec = "{'podSelector':{'matchLabels':{'app':'b'}},'ingress':[{'from':[{"
			   "'ipBlock':{'cidr':'::/0'}},{'namespaceSelector':{'matchLabels':{'ns':'x'"
			   "}}}]}]}";
	struct pol_policy *p;

	p = add_pol(W, "np", "y", "p", spec);
	assert_int_equal(p->in[0].npeers, 1); /* the IPv6 peer is gone */
	assert_false(p->in[0].any_peer);
	assert_non_null(p->note);
	assert_non_null(strstr(p->note, "'::/0' is IPv6 and matches no traffic"));
	assert_true(pp_ok(W, W->a, W->b, TCP, 80));	/* the friend */
	assert_false(pp_ok(W, W->d, W->b, TCP, 80));	/* anyone else */
	assert_false(ip_in_ok(W, "192.168.1.1", W->b, TCP, 80));
	clear_pols(W);
	/* a rule whose only peer is IPv6 matches nothing, not everything */
	add_pol(W, "np", "y", "p",
		"{'podSelector':{'matchLabels':{'app':'b'}},'ingress':[{'from':[{'ipBlock':{"
		"'cidr':'2001:db8::/32','except':['2001:db8:1::/48']}}]}]}");
	assert_false(pp_ok(W, W->a, W->b, TCP, 80));
	assert_false(ip_in_ok(W, "192.168.1.1", W->b, TCP, 80));
	clear_pols(W);
	/* an IPv6 Deny peer denies no IPv4 traffic */
	add_pol(W, "snp", "y", "p",
		"{'podSelector':{},'ingress':[{'action':'Deny','from':[{'ipBlock':{'cidr':'::/0'}}"
		"]},{'action':'Allow'}]}");
	assert_true(pp_ok(W, W->a, W->b, TCP, 80));
	clear_pols(W);
	same_meaning(W, "np", spec);
	same_meaning(W, "snp",
		     "{'podSelector':{},'egress':[{'action':'Deny','to':[{'ipBlock':{'cidr':"
		     "'fd00::/8'}},{'podSelector':{'matchLabels':{'app':'c'}}}]},{}]}");
	/* still validated: garbage, a prefix over 128, an except outside */
	spec_err("np", "{'ingress':[{'from':[{'ipBlock':{'cidr':'2001:db8::/129'}}]}]}",
		 "is not a CIDR");
	spec_err("np", "{'ingress':[{'from':[{'ipBlock':{'cidr':'2001:zz8::/64'}}]}]}",
		 "is not an address");
	spec_err("np",
		 "{'ingress':[{'from':[{'ipBlock':{'cidr':'2001:db8::/32','except':['2001:db9::/"
		 "48']}}]}]}",
		 "is not strictly inside cidr");
	spec_err("np",
		 "{'egress':[{'to':[{'ipBlock':{'cidr':'10.0.0.0/8','except':['fd00::/64']}}]}]}",
		 "spec.egress[0].to[0].ipBlock.except[0]: 'fd00::/64' is not strictly inside");
}

/* The API server reads host bits away ("10.210.1.5/24" is 10.210.1.0/24)
 * and leading zeros as decimal; so do both paths. */
static void test_cidr_read_as_the_api_server(void **state)
{
	struct world *W = *state;
	const char *spec = "{'podSelector':{'matchLabels':{'app':'b'}},'ingress':[{'from':[{"
			   "'ipBlock':{'cidr':'10.210.1.5/24','except':['10.210.1.129/25']}}]}]}";
	struct pol_policy *p;

	p = add_pol(W, "np", "y", "p", spec);
	assert_int_equal(p->in[0].peers[0].cidr.net, ip("10.210.1.0"));
	assert_int_equal(p->in[0].peers[0].cidr.prefix, 24);
	assert_int_equal(p->in[0].peers[0].except[0].net, ip("10.210.1.128"));
	assert_int_equal(p->nnotes, 2);
	assert_non_null(strstr(p->note, "'10.210.1.5/24' is read as 10.210.1.0/24"));
	assert_true(ip_in_ok(W, "10.210.1.7", W->b, TCP, 80));
	assert_false(ip_in_ok(W, "10.210.1.200", W->b, TCP, 80));
	assert_false(ip_in_ok(W, "10.210.2.7", W->b, TCP, 80));
	clear_pols(W);
	p = add_pol(W, "np", "y", "p",
		    "{'ingress':[{'from':[{'ipBlock':{'cidr':'010.0.0.0/30'}}]}]}");
	assert_int_equal(p->in[0].peers[0].cidr.net, ip("10.0.0.0"));
	assert_non_null(strstr(p->note, "leading zeros are decimal"));
	clear_pols(W);
	same_meaning(W, "np", spec);
	same_meaning(W, "snp",
		     "{'podSelector':{},'ingress':[{'action':'Deny','from':[{'ipBlock':{'cidr':"
		     "'10.0.0.7/24'}}]},{}]}");
}

/* Objects the API server accepts that sluice cannot represent: apply
 * refuses them; through the watch the policy still selects and isolates
 * its pods, the part contributes no allow, and a Deny becomes deny-all. */
static void test_api_fail_closed(void **state)
{
	struct world *W = *state;
	struct pol_policy *p;

	/* an IPv4-mapped block next to a readable peer: only that peer */
	p = add_degraded(W, "np",
			 "{'podSelector':{'matchLabels':{'app':'b'}},'ingress':[{'from':[{'ipBlock':"
			 "{'cidr':'::ffff:10.0.0.0/104'}},{'namespaceSelector':{'matchLabels':{"
			 "'ns':'x'}}}]}]}",
			 "spec.ingress[0].from[0].ipBlock.cidr: '::ffff:10.0.0.0/104' is an "
			 "IPv4-mapped IPv6 CIDR");
	assert_int_equal(p->ndegraded, 1);
	assert_true(pp_ok(W, W->a, W->b, TCP, 80));
	assert_false(ip_in_ok(W, "10.0.0.9", W->b, TCP, 80));
	assert_false(pp_ok(W, W->d, W->b, TCP, 80));
	clear_pols(W);
	/* the only peer unreadable (an IPv4-mapped except): the rule allows nothing */
	add_degraded(W, "np",
		     "{'podSelector':{'matchLabels':{'app':'b'}},'ingress':[{'from':[{'ipBlock':{"
		     "'cidr':'10.0.0.0/8','except':['::ffff:10.1.0.0/112']}}]}]}",
		     "except[0]: '::ffff:10.1.0.0/112' is an IPv4-mapped");
	assert_false(pp_ok(W, W->a, W->b, TCP, 80));
	assert_false(ip_in_ok(W, "10.0.0.9", W->b, TCP, 80));
	assert_true(pp_ok(W, W->a, W->c, TCP, 80)); /* not selected */
	clear_pols(W);
	/* an unknown protocol: that port entry allows nothing, the others do */
	add_degraded(W, "np",
		     "{'podSelector':{'matchLabels':{'app':'b'}},'ingress':[{'ports':[{'protocol':"
		     "'ICMP'},{'port':80}]},{'ports':[{'protocol':'QUIC','port':443}]}]}",
		     "spec.ingress[0].ports[0].protocol: 'ICMP' is not supported");
	assert_true(pp_ok(W, W->a, W->b, TCP, 80));
	assert_false(pp_ok(W, W->a, W->b, ICMP, 8));
	assert_false(pp_ok(W, W->a, W->b, TCP, 443));
	assert_false(pp_ok(W, W->a, W->b, UDP, 53));
	clear_pols(W);
	/* endPort with a named port (refused upstream, but not by us to decide) */
	add_degraded(W, "np",
		     "{'podSelector':{'matchLabels':{'app':'b'}},'ingress':[{'ports':[{'port':"
		     "'http','endPort':9000}]}]}",
		     "endPort: is set but port is the name 'http'");
	assert_false(pp_ok(W, W->a, W->b, TCP, 8080));
	clear_pols(W);
	/* unreadable policyTypes: both directions isolated */
	p = add_degraded(W, "np",
			 "{'podSelector':{'matchLabels':{'app':'b'}},'policyTypes':['Ingress',"
			 "'Sideways'],'ingress':[{}]}",
			 "spec.policyTypes[1]: 'Sideways' is not a policy type");
	assert_true(p->ingress && p->egress);
	assert_true(pp_ok(W, W->a, W->b, TCP, 80));
	assert_false(pp_ok(W, W->b, W->a, TCP, 80));
	clear_pols(W);
	/* an unreadable podSelector selects the whole namespace */
	add_degraded(W, "np",
		     "{'podSelector':{'matchExpressions':[{'key':'app','operator':'Matches',"
		     "'values':['b']}]},'ingress':[{'from':[{'namespaceSelector':{'matchLabels':{"
		     "'ns':'x'}}}]}]}",
		     "spec.podSelector.matchExpressions[0].operator: 'Matches' is not a valid");
	assert_false(pp_ok(W, W->d, W->b, TCP, 80));
	assert_false(pp_ok(W, W->d, W->c, TCP, 80));
	assert_true(pp_ok(W, W->a, W->c, TCP, 80)); /* the readable rule still allows */
	assert_true(pp_ok(W, W->d, W->a, TCP, 80)); /* other namespaces untouched */
	clear_pols(W);
	/* a spec that is not an object: the namespace isolated both ways */
	add_degraded(W, "np", "'everything'", "spec: is a string");
	assert_false(pp_ok(W, W->a, W->b, TCP, 80));
	assert_false(pp_ok(W, W->c, W->a, TCP, 80));
	assert_true(pp_ok(W, W->d, W->a, TCP, 80));
	clear_pols(W);
	/* ingress that is not a list: ingress isolated, nothing allowed */
	add_degraded(W, "np", "{'podSelector':{},'ingress':{'from':[]}}",
		     "spec.ingress: is an object");
	assert_false(pp_ok(W, W->a, W->b, TCP, 80));
	assert_true(pp_ok(W, W->b, W->a, TCP, 80));
	clear_pols(W);
}

/* A sluice Deny rule that cannot be represented denies everything in its
 * direction for the selected pods, whatever other policies allow. */
static void test_api_fail_closed_deny(void **state)
{
	struct world *W = *state;
	struct pol_policy *p;

	add_pol(W, "np", "y", "open", "{'podSelector':{},'ingress':[{}],'egress':[{}]}");
	p = add_degraded(W, "snp",
			 "{'podSelector':{'matchLabels':{'app':'b'}},'ingress':[{'action':'Deny',"
			 "'from':[{'ipBlock':{'cidr':'10.0.0.0/33'}},{'podSelector':{}}]},{'action':"
			 "'Allow'}]}",
			 "spec.ingress[0].from[0].ipBlock.cidr: '10.0.0.0/33' is not a CIDR");
	assert_int_equal(p->in[0].action, POL_DENY);
	assert_true(p->in[0].any_peer && p->in[0].any_port);
	assert_false(pp_ok(W, W->a, W->b, TCP, 80));
	assert_false(ip_in_ok(W, "192.168.1.1", W->b, UDP, 53));
	assert_true(pp_ok(W, W->a, W->c, TCP, 80)); /* not selected */
	assert_true(pp_ok(W, W->b, W->a, TCP, 80)); /* egress untouched */
	W->w.npol--;
	pol_free(p);
	/* an action sluice does not know may be a Deny */
	add_degraded(W, "snp",
		     "{'podSelector':{'matchLabels':{'app':'b'}},'egress':[{'action':'Pass','to':[{"
		     "'podSelector':{}}]}]}",
		     "spec.egress[0].action: 'Pass' is not an action");
	assert_false(pp_ok(W, W->b, W->a, TCP, 80));
	assert_false(decide(W, pod_ep(W->b), ip_ep("192.168.1.1"), TCP, 80).allowed);
	W->w.npol--;
	pol_free(W->pol[W->w.npol]);
	/* unreadable mode: Enforce, not Audit */
	p = add_degraded(W, "snp",
			 "{'podSelector':{'matchLabels':{'app':'b'}},'mode':'Dry','ingress':[{"
			 "'action':'Deny','from':[{'podSelector':{'matchLabels':{'app':'a'}}}]}]}",
			 "spec.mode: 'Dry' is not a mode");
	assert_false(p->audit);
	W->w.npol--;
	pol_free(p);
	/* unreadable ingress list of a sluice policy: deny all ingress */
	add_degraded(W, "scnp", "{'podSelector':{},'ingress':'all'}", "spec.ingress: is a string");
	assert_false(pp_ok(W, W->a, W->d, TCP, 80));
	assert_true(pp_ok(W, W->d, W->a, ICMP, 8) == false);
	clear_pols(W);
}

static void test_err_cidr(void **state)
{
	(void)state;
	spec_err("np", "{'ingress':[{'from':[{'ipBlock':{'cidr':'10.0.0.0'}}]}]}",
		 "ipBlock.cidr: '10.0.0.0' is not a CIDR");
	spec_err("np", "{'ingress':[{'from':[{'ipBlock':{'cidr':'10.0.0.0/024'}}]}]}",
		 "is not a CIDR");
	spec_err("np", "{'ingress':[{'from':[{'ipBlock':{'cidr':'10.0.0.0/33'}}]}]}",
		 "is not a CIDR");
	spec_err("np", "{'ingress':[{'from':[{'ipBlock':{'cidr':'10.0.0.256/32'}}]}]}",
		 "is not a CIDR");
	spec_err("np", "{'ingress':[{'from':[{'ipBlock':{'cidr':'10.0.0/8'}}]}]}",
		 "is not a CIDR");
	spec_err("np", "{'ingress':[{'from':[{'ipBlock':{}}]}]}", "ipBlock.cidr: missing");
	spec_err("np",
		 "{'ingress':[{'from':[{'ipBlock':{'cidr':'10.0.0.0/16','except':['10.1.0.0/"
		 "24']}}]}]}",
		 "ipBlock.except[0]: '10.1.0.0/24' is not strictly inside cidr '10.0.0.0/16'");
	spec_err("np",
		 "{'ingress':[{'from':[{'ipBlock':{'cidr':'10.0.0.0/16','except':['10.0.0.0/"
		 "16']}}]}]}",
		 "ipBlock.except[0]: '10.0.0.0/16' is not strictly inside cidr '10.0.0.0/16'");
	spec_err("np",
		 "{'ingress':[{'from':[{'ipBlock':{'cidr':'10.0.0.0/16','except':['10.0.0.0/"
		 "8']}}]}]}",
		 "is not strictly inside");
	/* masked before comparing, as upstream: 10.0.0.5/16 is 10.0.0.0/16 */
	spec_err("np",
		 "{'ingress':[{'from':[{'ipBlock':{'cidr':'10.0.0.5/16','except':['10.0.9.9/"
		 "16']}}]}]}",
		 "is not strictly inside");
}

static void test_err_operators(void **state)
{
	(void)state;
	spec_err("np",
		 "{'podSelector':{'matchExpressions':[{'key':'a','operator':'Equals','values':['x']"
		 "}]}}",
		 "spec.podSelector.matchExpressions[0].operator: 'Equals' is not a valid selector "
		 "operator");
	spec_err(
		"np",
		"{'podSelector':{'matchExpressions':[{'key':'a','operator':'in','values':['x']}]}}",
		"'in' is not a valid selector operator");
	spec_err(
		"np",
		"{'podSelector':{'matchExpressions':[{'key':'a','operator':'Gt','values':['1']}]}}",
		"'Gt' is not a valid selector operator");
	spec_err("np", "{'podSelector':{'matchExpressions':[{'key':'a'}]}}",
		 "spec.podSelector.matchExpressions[0].operator: missing");
}

static void test_err_values(void **state)
{
	(void)state;
	spec_err("np",
		 "{'ingress':[{'from':[{'podSelector':{'matchExpressions':[{'key':'a','operator':'"
		 "In'}]}}]}]}",
		 "spec.ingress[0].from[0].podSelector.matchExpressions[0].values: missing or "
		 "empty; operator In needs at least one value");
	spec_err(
		"np",
		"{'podSelector':{'matchExpressions':[{'key':'a','operator':'NotIn','values':[]}]}}",
		"operator NotIn needs at least one value");
	spec_err("np",
		 "{'podSelector':{'matchExpressions':[{'key':'a','operator':'Exists','values':['x']"
		 "}]}}",
		 "spec.podSelector.matchExpressions[0].values: must be empty for operator Exists");
	spec_err("np",
		 "{'podSelector':{'matchExpressions':[{'key':'a','operator':'DoesNotExist','values'"
		 ":['x']}]}}",
		 "must be empty for operator DoesNotExist");
	spec_err("np",
		 "{'podSelector':{'matchExpressions':[{'key':'a','operator':'In','values':[1]}]}}",
		 "matchExpressions[0].values[0]: is a number; expected a string");
}

static void test_err_labels(void **state)
{
	(void)state;
	spec_err("np", "{'podSelector':{'matchLabels':{'bad key':'x'}}}",
		 "spec.podSelector.matchLabels: 'bad key' is not a valid label key");
	spec_err("np", "{'podSelector':{'matchLabels':{'Example.com/app':'x'}}}",
		 "is not a valid label key");
	spec_err("np", "{'podSelector':{'matchLabels':{'app':'-x'}}}",
		 "'-x' is not a valid value for 'app'");
	spec_err("np", "{'podSelector':{'matchLabels':{'app':3}}}",
		 "the value of 'app' is a number");
	spec_err("np", "{'podSelector':{'matchExpressions':[{'key':'a/b/c','operator':'Exists'}]}}",
		 "matchExpressions[0].key: 'a/b/c' is not a valid label key");
	spec_err("np", "{'podSelector':'app=web'}",
		 "spec.podSelector: is a string; expected a label selector");
}

static void test_err_peers(void **state)
{
	(void)state;
	spec_err(
		"np",
		"{'ingress':[{'from':[{'ipBlock':{'cidr':'10.0.0.0/8'},'namespaceSelector':{}}]}]}",
		"spec.ingress[0].from[0]: has both ipBlock and namespaceSelector; an ipBlock peer "
		"cannot have selectors");
	spec_err("np",
		 "{'egress':[{'to':[{'podSelector':{}},{'ipBlock':{'cidr':'10.0.0.0/"
		 "8'},'podSelector':{}}]}]}",
		 "spec.egress[0].to[1]: has both ipBlock and podSelector");
	spec_err("np", "{'egress':[{'to':[{}]}]}",
		 "spec.egress[0].to[0]: names no peer; expected podSelector, namespaceSelector or "
		 "ipBlock");
	spec_err("np", "{'ingress':[{'from':{'podSelector':{}}}]}",
		 "spec.ingress[0].from: is an object; expected a list of peers");
}

static void test_err_policy_types_and_shapes(void **state)
{
	(void)state;
	spec_err("np", "{'policyTypes':['ingress']}",
		 "spec.policyTypes[0]: 'ingress' is not a policy type; expected Ingress or Egress");
	spec_err("np", "{'policyTypes':['Ingress','Egress','Ingress']}",
		 "spec.policyTypes: lists 3 types; expected at most two");
	spec_err("np", "{'policyTypes':'Ingress'}", "spec.policyTypes: is a string");
	spec_err("np", "{'ingress':{}}", "spec.ingress: is an object; expected a list of rules");
	spec_err("np", "{'egress':[7]}", "spec.egress[0]: is a number; expected a rule object");
	spec_err("np", "[]", "spec: is a list; expected an object");
}

static void test_err_sluice_fields(void **state)
{
	(void)state;
	spec_err("snp", "{'podSelector':{},'mode':'audit'}",
		 "spec.mode: 'audit' is not a mode; expected Enforce (the default) or Audit");
	spec_err("snp", "{'podSelector':{},'ingress':[{'action':'deny'}]}",
		 "spec.ingress[0].action: 'deny' is not an action; expected Allow or Deny");
	spec_err("snp", "{'podSelector':{},'ingress':[{'icmp':[{'type':300}]}]}",
		 "spec.ingress[0].icmp[0].type: is not an integer in 0-255");
	spec_err("snp", "{'podSelector':{},'egress':[{'icmp':[{'code':1}]}]}",
		 "spec.egress[0].icmp[0].type: missing");
	spec_err("snp", "{'podSelector':{},'egress':[{'icmp':[{'type':3,'code':-1}]}]}",
		 "spec.egress[0].icmp[0].code: is not an integer in 0-255");
	spec_err("scnp",
		 "{'podSelector':{},'namespaceSelector':{'matchExpressions':[{'key':'x','operator':"
		 "'In'}]}}",
		 "spec.namespaceSelector.matchExpressions[0].values: missing or empty");
	spec_err("snp", "{}", "spec.podSelector: missing");
	parse_err("{'apiVersion':'sluice.io/"
		  "v1alpha1','kind':'SluiceNetworkPolicy','metadata':{'name':'p'}}",
		  "spec: missing");
}

/* The namespace index answers as the scan does: random worlds with
 * repeated names (the first in ns[] wins), absent names, the empty name,
 * names that are prefixes of others. */
static void test_ns_index_matches_scan(void **state)
{
	static const char *alpha = "ab-";
	enum { MAXNS = 200, QUERIES = 400 };
	struct pol_namespace nsv[MAXNS];
	const struct pol_namespace *nsp[MAXNS];
	struct pol_ns_ref idx[MAXNS];
	char names[MAXNS][8], q[8];
	size_t found = 0, absent = 0;

	(void)state;
	srand(17);
	for (int round = 0; round < 200; round++) {
		struct pol_world w = { 0 };
		size_t n = (size_t)(rand() % MAXNS);

		for (size_t i = 0; i < n; i++) {
			size_t len = (size_t)(rand() % 5);

			for (size_t k = 0; k < len; k++)
				names[i][k] = alpha[rand() % 3];
			names[i][len] = '\0';
			nsv[i] = (struct pol_namespace){ .name = names[i] };
			nsp[i] = &nsv[i];
		}
		w.ns = nsp;
		w.nns = n;
		pol_world_index_ns(&w, idx);
		assert_ptr_equal(w.ns_by_name, idx);
		for (int j = 0; j < QUERIES; j++) {
			size_t len = (size_t)(rand() % 6);
			const struct pol_namespace *a, *b;

			for (size_t k = 0; k < len; k++)
				q[k] = alpha[rand() % 3];
			q[len] = '\0';
			a = pol_world_ns(&w, q);
			b = pol_world_ns_scan(&w, q);
			if (a != b)
				fail_msg("round %d, %zu namespaces: '%s' indexed %s (at %td), scan %s (at %td)",
					 round, n, q, a ? a->name : "(none)", a ? a - nsv : -1,
					 b ? b->name : "(none)", b ? b - nsv : -1);
			found += b != NULL;
			absent += b == NULL;
		}
	}
	/* Both answers were exercised. */
	assert_true(found > 1000 && absent > 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_selector_empty_selects_all),
		cmocka_unit_test(test_selector_match_labels),
		cmocka_unit_test(test_selector_in),
		cmocka_unit_test(test_selector_not_in_missing_key),
		cmocka_unit_test(test_selector_exists),
		cmocka_unit_test(test_selector_does_not_exist),
		cmocka_unit_test(test_selector_labels_and_expressions_and),
		cmocka_unit_test(test_labels_sorted_get_equal),
		cmocka_unit_test(test_types_default_ingress_only),
		cmocka_unit_test(test_types_egress_present_adds_egress),
		cmocka_unit_test(test_types_empty_egress_list_is_ingress_only),
		cmocka_unit_test_setup_teardown(test_types_explicit_both, setup, teardown),
		cmocka_unit_test_setup_teardown(test_types_explicit_egress_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_isolated_allows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_ingress_denies_all, setup, teardown),
		cmocka_unit_test_setup_teardown(test_allow_reason, setup, teardown),
		cmocka_unit_test_setup_teardown(test_egress_deny_reason, setup, teardown),
		cmocka_unit_test_setup_teardown(test_peer_pod_selector_own_namespace_only, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_peer_namespace_selector, setup, teardown),
		cmocka_unit_test_setup_teardown(test_peer_both_selectors_and, setup, teardown),
		cmocka_unit_test_setup_teardown(test_peer_separate_entries_or, setup, teardown),
		cmocka_unit_test_setup_teardown(test_namespace_name_label_implicit, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ipblock_except, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ipblock_matches_pod_ip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cluster_policy_pod_peer_any_namespace, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_cluster_policy_namespace_selector, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_non_pod_peer_ipblock_vs_selector, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_empty_from_means_all_peers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_port_numeric, setup, teardown),
		cmocka_unit_test_setup_teardown(test_port_named_resolved_per_destination, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_port_named_protocol_must_match, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_port_named_unresolvable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_port_end_port_range, setup, teardown),
		cmocka_unit_test_setup_teardown(test_port_protocol_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_port_default_tcp_and_sctp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_egress_named_port_uses_destination, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_deny_wins_across_policies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deny_only_policy_isolates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_never_loosens, setup, teardown),
		cmocka_unit_test_setup_teardown(test_icmp_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_self_traffic_allowed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_node_ip_allowed_into_isolated_pod, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_decide_both_directions, setup, teardown),
		cmocka_unit_test(test_parse_fields),
		cmocka_unit_test(test_parse_namespace_default_and_cluster),
		cmocka_unit_test_setup_teardown(test_parse_k8s_podselector_optional, setup,
						teardown),
		cmocka_unit_test(test_parse_unknown_fields_ignored),
		cmocka_unit_test(test_err_api_version_and_kind),
		cmocka_unit_test(test_err_metadata),
		cmocka_unit_test(test_err_port_out_of_range),
		cmocka_unit_test(test_err_port_names),
		cmocka_unit_test(test_err_end_port),
		cmocka_unit_test(test_err_protocol),
		cmocka_unit_test_setup_teardown(test_ipv6_block_matches_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cidr_read_as_the_api_server, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_fail_closed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_fail_closed_deny, setup, teardown),
		cmocka_unit_test(test_err_cidr),
		cmocka_unit_test(test_err_operators),
		cmocka_unit_test(test_err_values),
		cmocka_unit_test(test_err_labels),
		cmocka_unit_test(test_err_peers),
		cmocka_unit_test(test_err_policy_types_and_shapes),
		cmocka_unit_test(test_err_sluice_fields),
		cmocka_unit_test(test_ns_index_matches_scan),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
