// SPDX-License-Identifier: Apache-2.0
/*
 * The Kubernetes side of the agent that needs no server: kubeconfig and
 * in-cluster configuration, base64, and how watch events and relists
 * change the store (what the API owns, what it leaves alone).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "kschema.h"
#include "kube.h"
#include "store.h"
#include "store_test.h"

STORE_TEST_DIR("/tmp/sluice-test-kube-XXXXXX")

static void write_file(const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_base64(void **state)
{
	size_t len;
	char *s;

	(void)state;
	s = kube_base64_decode("c2x1aWNl", &len);
	assert_non_null(s);
	assert_int_equal(len, 6);
	assert_memory_equal(s, "sluice", 6);
	free(s);
	s = kube_base64_decode("c2x1\naWNlIQ==", &len); /* line breaks, padding */
	assert_non_null(s);
	assert_int_equal(len, 7);
	assert_memory_equal(s, "sluice!", 7);
	free(s);
	assert_null(kube_base64_decode("c2x1*WNl", &len));
	assert_null(kube_base64_decode("c2x1aWNl=x", &len));
	assert_null(kube_base64_decode("c", &len));
}

static void test_kubeconfig_token(void **state)
{
	struct kube_config c;
	char err[1024], path[512];

	(void)state;
	write_file("ca.crt", "not really a certificate\n");
	write_file("kc-token",
		   "apiVersion: v1\nkind: Config\ncurrent-context: b\n"
		   "clusters:\n"
		   "- name: one\n  cluster: {server: 'https://10.0.0.1:6443'}\n"
		   "- name: two\n  cluster:\n    server: https://192.168.77.1:6443/\n"
		   "    certificate-authority: ca.crt\n"
		   "contexts:\n"
		   "- name: a\n  context: {cluster: one, user: u1}\n"
		   "- name: b\n  context: {cluster: two, user: u2}\n"
		   "users:\n"
		   "- name: u1\n  user: {token: wrong}\n"
		   "- name: u2\n  user: {token: s3cret}\n");
	snprintf(path, sizeof(path), "%s/kc-token", dir);
	assert_int_equal(kube_config_load(&c, path, NULL, NULL, err, sizeof(err)), 0);
	assert_string_equal(c.server, "https://192.168.77.1:6443");
	assert_string_equal(c.token, "s3cret");
	assert_null(c.token_file);
	/* relative to the kubeconfig's directory */
	assert_non_null(strstr(c.ca_file, dir));
	assert_non_null(strstr(c.ca_file, "/ca.crt"));
	assert_non_null(strstr(c.source, "context b"));
	kube_config_free(&c);
}

static void test_kubeconfig_cert_data(void **state)
{
	struct kube_config c;
	char err[1024], path[512];

	(void)state;
	/* "CA", "CERT", "KEY" in base64 */
	write_file("kc-cert",
		   "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
		   "clusters: [{name: k, cluster: {server: 'https://127.0.0.1:1', "
		   "certificate-authority-data: Q0E=}}]\n"
		   "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
		   "users: [{name: u, user: {client-certificate-data: Q0VSVA==, "
		   "client-key-data: S0VZ}}]\n");
	snprintf(path, sizeof(path), "%s/kc-cert", dir);
	assert_int_equal(kube_config_load(&c, path, NULL, NULL, err, sizeof(err)), 0);
	assert_int_equal(c.ca_len, 2);
	assert_memory_equal(c.ca_data, "CA", 2);
	assert_memory_equal(c.cert_data, "CERT", 4);
	assert_memory_equal(c.key_data, "KEY", 3);
	assert_null(c.token);
	kube_config_free(&c);
}

/* Each broken kubeconfig fails with an error naming what to fix. */
static void test_kubeconfig_errors(void **state)
{
	static const struct {
		const char *text, *expect;
	} cases[] = {
		{ "apiVersion: v1\nkind: Config\n", "no current-context" },
		{ "apiVersion: v1\nkind: Config\ncurrent-context: x\n", "current-context x is not" },
		{ "apiVersion: v1\nkind: Config\ncurrent-context: x\ncontexts: [{name: x, context: "
		  "{cluster: nope, user: u}}]\n",
		  "cluster 'nope'" },
		{ "apiVersion: v1\nkind: Config\ncurrent-context: x\ncontexts: [{name: x, context: "
		  "{cluster: k}}]\nclusters: [{name: k, cluster: {server: 'http://1.2.3.4'}}]\n",
		  "https://" },
		{ "apiVersion: v1\nkind: Config\ncurrent-context: x\ncontexts: [{name: x, context: "
		  "{cluster: k, user: u}}]\nclusters: [{name: k, cluster: {server: 'https://h'}}]\n"
		  "users: [{name: u, user: {exec: {command: aws}}}]\n",
		  "not exec" },
		{ "apiVersion: v1\nkind: Config\ncurrent-context: x\ncontexts: [{name: x, context: "
		  "{cluster: k}}]\nclusters: [{name: k, cluster: {server: 'https://h', "
		  "certificate-authority: /nonexistent/ca}}]\n",
		  "/nonexistent/ca" },
		{ "apiVersion: v1\nkind: Config\ncurrent-context: x\ncontexts: [{name: x, context: "
		  "{cluster: k, user: u}}]\nclusters: [{name: k, cluster: {server: 'https://h'}}]\n"
		  "users: [{name: u, user: {client-certificate-data: Q0E=}}]\n",
		  "needs its key" },
		{ "apiVersion: v1\nkind: Config\ncurrent-context: x\ncontexts: [{name: x, context: "
		  "{cluster: k}}]\nclusters: [{name: k, cluster: {server: 'https://h', "
		  "certificate-authority-data: '!!'}}]\n",
		  "not valid base64" },
		{ "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n", "kind: Config" },
		{ "current-context: [unclosed\n", "kubeconfig" },
	};
	char err[1024], path[512];
	struct kube_config c;

	(void)state;
	snprintf(path, sizeof(path), "%s/kc-bad", dir);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		write_file("kc-bad", cases[i].text);
		err[0] = '\0';
		if (!kube_config_load(&c, path, NULL, NULL, err, sizeof(err)))
			fail_msg("case %zu: accepted", i);
		if (!strstr(err, cases[i].expect))
			fail_msg("case %zu: error '%s' does not mention '%s'", i, err,
				 cases[i].expect);
	}
}

static void test_in_cluster(void **state)
{
	struct kube_config c;
	char err[1024];

	(void)state;
	unsetenv("KUBERNETES_SERVICE_HOST");
	assert_false(kube_in_cluster());
	assert_int_not_equal(kube_config_load(&c, NULL, dir, NULL, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "KUBERNETES_SERVICE_HOST"));
	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	assert_true(kube_in_cluster());
	write_file("token", "tok\n");
	assert_int_equal(kube_config_load(&c, NULL, dir, NULL, err, sizeof(err)), 0);
	assert_string_equal(c.server, "https://10.96.0.1:443");
	assert_non_null(strstr(c.token_file, "/token"));
	kube_config_free(&c);
	setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
	assert_int_equal(kube_config_load(&c, NULL, dir, NULL, err, sizeof(err)), 0);
	assert_string_equal(c.server, "https://[fd00::1]:443");
	kube_config_free(&c);
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
}

/* --k8s-api-server: the real API server instead of the kubernetes Service
 * (which needs a Service proxy), with or without KUBERNETES_SERVICE_*. */
static void test_api_server_flag(void **state)
{
	static const struct { const char *in, *out; } ok[] = {
		{ "192.168.1.10:6443", "https://192.168.1.10:6443" },
		{ "https://api.example:6443", "https://api.example:6443" },
		{ "[fd00::10]:6443", "https://[fd00::10]:6443" },
		{ "192.168.1.10", "https://192.168.1.10:443" },
	};
	static const char *const bad[] = { "http://192.168.1.10:6443", "", "a/b:1" };
	struct kube_config c;
	char err[1024];

	(void)state;
	unsetenv("KUBERNETES_SERVICE_HOST");
	write_file("token", "tok\n");
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(kube_config_load(&c, NULL, dir, ok[i].in, err, sizeof(err)), 0);
		assert_string_equal(c.server, ok[i].out);
		assert_non_null(strstr(c.token_file, "/token"));
		kube_config_free(&c);
	}
	/* It wins over the environment. */
	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	assert_int_equal(kube_config_load(&c, NULL, dir, "192.168.1.10:6443", err, sizeof(err)), 0);
	assert_string_equal(c.server, "https://192.168.1.10:6443");
	kube_config_free(&c);
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_not_equal(kube_config_load(&c, NULL, dir, bad[i], err, sizeof(err)), 0);
		assert_non_null(strstr(err, "--k8s-api-server"));
	}
}

static json_t *pod(const char *name, const char *ip, const char *app)
{
	return json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s}}, s:{s:s}, s:{s:s, s:s}}", "apiVersion",
			 "v1", "kind", "Pod", "metadata", "name", name, "namespace", "shop",
			 "labels", "app", app, "spec", "nodeName", "n1", "status", "podIP", ip,
			 "phase", "Running");
}

static size_t count_action(const json_t *changes, const char *action)
{
	const json_t *c;
	size_t i, n = 0;

	json_array_foreach(changes, i, c)
		n += !strcmp(json_string_value(json_object_get(c, "action")), action);
	return n;
}

static void test_store_relist(void **state)
{
	char sdir[600], err[512];
	struct store *s;
	json_t *items, *changes, *local, *srcs;

	(void)state;
	snprintf(sdir, sizeof(sdir), "%s/state", dir);
	assert_int_equal(mkdir(sdir, 0700) == 0 || access(sdir, F_OK) == 0, 1);
	assert_int_equal(store_open(&s, sdir, err, sizeof(err)), 0);

	/* a locally applied pod: a relist must not remove it */
	local = json_pack("[o]", pod("local", "10.9.0.9", "x"));
	srcs = json_pack("[s]", "test");
	changes = json_array();
	assert_int_equal(store_apply(s, local, srcs, changes, err, sizeof(err)), 0);
	json_decref(changes);

	items = json_pack("[o, o]", pod("a", "10.0.0.1", "web"), pod("b", "10.0.0.2", "db"));
	changes = json_array();
	assert_int_equal(store_kube_replace(s, "v1", "Pod", items, changes), 0);
	assert_int_equal(count_action(changes, "created"), 2);
	json_decref(changes);
	json_decref(items);

	/* the same list again: nothing changes */
	items = json_pack("[o, o]", pod("b", "10.0.0.2", "db"), pod("a", "10.0.0.1", "web"));
	changes = json_array();
	assert_int_equal(store_kube_replace(s, "v1", "Pod", items, changes), 0);
	assert_int_equal(json_array_size(changes), 0);
	json_decref(changes);
	json_decref(items);

	/* b gone, a relabelled, c new */
	items = json_pack("[o, o]", pod("a", "10.0.0.1", "api"), pod("c", "10.0.0.3", "db"));
	changes = json_array();
	assert_int_equal(store_kube_replace(s, "v1", "Pod", items, changes), 0);
	assert_int_equal(count_action(changes, "created"), 1);
	assert_int_equal(count_action(changes, "configured"), 1);
	assert_int_equal(count_action(changes, "deleted"), 1);
	json_decref(changes);
	json_decref(items);

	/* watch events */
	changes = json_array();
	items = pod("d", "10.0.0.4", "web");
	assert_int_equal(store_kube_event(s, "ADDED", items, changes), 0);
	assert_int_equal(store_kube_event(s, "MODIFIED", items, changes), 0); /* unchanged */
	assert_int_equal(store_kube_event(s, "DELETED", items, changes), 0);
	assert_int_equal(store_kube_event(s, "DELETED", items, changes), 0); /* already gone */
	assert_int_equal(count_action(changes, "created"), 1);
	assert_int_equal(count_action(changes, "deleted"), 1);
	assert_int_equal(json_array_size(changes), 2);
	json_decref(items);
	/* an object sluice cannot read is skipped, not fatal */
	items = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s}}", "apiVersion", "v1", "kind", "Pod",
			  "metadata", "name", "bad", "namespace", "shop", "status", "podIP",
			  "not-an-ip");
	assert_int_equal(store_kube_event(s, "ADDED", items, changes), 0);
	assert_int_equal(json_array_size(changes), 2);
	json_decref(items);
	json_decref(changes);
	assert_int_equal(store_flush(s), 0);
	store_close(s);

	/* reopened: the origin survived, so an empty relist removes a and c only */
	assert_int_equal(store_open(&s, sdir, err, sizeof(err)), 0);
	changes = json_array();
	items = json_array();
	assert_int_equal(store_kube_replace(s, "v1", "Pod", items, changes), 0);
	assert_int_equal(count_action(changes, "deleted"), 2);
	json_decref(changes);
	changes = json_array();
	assert_int_equal(store_kube_replace(s, "v1", "Pod", items, changes), 0);
	assert_int_equal(json_array_size(changes), 0);
	json_decref(changes);
	json_decref(items);
	/* the local pod is still there: deleting it works */
	changes = json_array();
	assert_int_equal(store_delete(s, local, srcs, false, changes, err, sizeof(err)), 0);
	assert_int_equal(count_action(changes, "deleted"), 1);
	json_decref(changes);
	json_decref(local);
	json_decref(srcs);
	store_close(s);
}

/* A local endpoint without its Pod object: labels unknown in Kubernetes
 * mode (need_object), the namespace with no labels otherwise; and an
 * apply undone by store_snapshot / store_restore. */
static void test_store_view_unknown_labels_and_undo(void **state)
{
	char sdir[600], err[512];
	struct store *s;
	struct store_view v;
	struct store_local l[3] = {
		{ .ns = "shop", .name = "a", .ip = 0x0a000001, .need_object = true },
		{ .ns = "shop", .name = "new", .ip = 0x0a000005, .need_object = true },
		{ .ns = "shop", .name = "plain", .ip = 0x0a000006, .need_object = false },
	};
	json_t *objs, *srcs, *changes, *snap, *items;

	(void)state;
	snprintf(sdir, sizeof(sdir), "%s/state-view", dir);
	assert_int_equal(mkdir(sdir, 0700) == 0 || access(sdir, F_OK) == 0, 1);
	assert_int_equal(store_open(&s, sdir, err, sizeof(err)), 0);
	items = json_pack("[o]", pod("a", "10.0.0.1", "web"));
	changes = json_array();
	assert_int_equal(store_kube_replace(s, "v1", "Pod", items, changes), 0);
	json_decref(changes);
	json_decref(items);
	assert_true(store_has_pod(s, "shop", "a"));
	assert_false(store_has_pod(s, "shop", "new"));
	assert_int_equal(store_view_build(s, l, 3, NULL, 0, &v), 0);
	assert_false(l[0].pod->labels_unknown);
	assert_string_equal(pol_labels_get(&l[0].pod->labels, "app"), "web");
	assert_true(l[1].pod->labels_unknown);
	assert_false(l[2].pod->labels_unknown);
	store_view_free(&v);

	/* a relabelled by an apply, then put back as it was */
	objs = json_pack("[o, o]", pod("a", "10.0.0.1", "api"), pod("b", "10.0.0.2", "db"));
	srcs = json_pack("[s, s]", "t", "t");
	snap = store_snapshot(s, objs);
	changes = json_array();
	assert_int_equal(store_apply(s, objs, srcs, changes, err, sizeof(err)), 0);
	json_decref(changes);
	assert_true(store_has_pod(s, "shop", "b"));
	assert_int_equal(store_restore(s, objs, snap), 0);
	assert_false(store_has_pod(s, "shop", "b"));
	assert_int_equal(store_view_build(s, l, 1, NULL, 0, &v), 0);
	assert_string_equal(pol_labels_get(&l[0].pod->labels, "app"), "web");
	store_view_free(&v);
	/* still the API's: an empty relist removes it */
	changes = json_array();
	items = json_array();
	assert_int_equal(store_kube_replace(s, "v1", "Pod", items, changes), 0);
	assert_int_equal(count_action(changes, "deleted"), 1);
	json_decref(changes);
	json_decref(items);
	json_decref(snap);
	json_decref(objs);
	json_decref(srcs);
	store_close(s);
}

static struct store *fresh_store(const char *name)
{
	return store_in(dir, name);
}

/* Apply one object; returns the store's code, with the error in err. */
static int apply1(struct store *s, const char *text, char *err, size_t errlen)
{
	json_t *objs = json_pack("[o]", jt(text)), *srcs = json_pack("[s]", "test.yaml");
	json_t *changes = json_array();
	int ret = store_apply(s, objs, srcs, changes, err, errlen);

	json_decref(objs);
	json_decref(srcs);
	json_decref(changes);
	return ret;
}

static int event1(struct store *s, const char *type, const char *text)
{
	json_t *obj = jt(text), *changes = json_array();
	int ret = store_kube_event(s, type, obj, changes);

	json_decref(obj);
	json_decref(changes);
	return ret;
}

static const struct pol_policy *first_policy(struct store *s)
{
	struct store_view v;
	const struct pol_policy *p;

	assert_int_equal(store_view_build(s, NULL, 0, NULL, 0, &v), 0);
	assert_int_equal(v.w.npol, 1);
	p = v.w.pol[0];
	store_view_free(&v);
	return p;
}

#define NP_V6                                                                                      \
	"{'apiVersion':'networking.k8s.io/v1','kind':'NetworkPolicy','metadata':{'name':'v6',"    \
	"'namespace':'shop'},'spec':{'podSelector':{},'ingress':[{'from':[{'ipBlock':{'cidr':"    \
	"'::/0'}},{'podSelector':{'matchLabels':{'app':'friend'}}}]}]}}"
#define NP_MAPPED                                                                                  \
	"{'apiVersion':'networking.k8s.io/v1','kind':'NetworkPolicy','metadata':{'name':'mapped'," \
	"'namespace':'shop'},'spec':{'podSelector':{},'ingress':[{'from':[{'ipBlock':{'cidr':"    \
	"'10.0.0.0/8','except':['::ffff:10.1.0.0/112']}}]}]}}"

/* A newer API server's object, with fields sluice's tables do not have
 * (lib/kschema.h would refuse it as a manifest), is taken from the watch
 * as it is: the API server validated it. */
static void test_store_api_unknown_fields(void **state)
{
	static const char np[] =
		"{'apiVersion':'networking.k8s.io/v1','kind':'NetworkPolicy','metadata':{'name':'new',"
		"'namespace':'shop','futureMeta':1},'spec':{'podSelector':{},'futureSpec':true,"
		"'ingress':[{'from':[{'podSelector':{},'futurePeer':{}}],'futureRule':1}]}}";
	struct store *s = fresh_store("unk");
	json_t *obj = jt(np), *found = json_array();
	const struct pol_policy *p;

	(void)state;
	assert_int_equal(ks_unknown_fields(obj, found), 4);
	assert_string_equal(json_string_value(json_array_get(found, 2)),
			    "spec.ingress[0].from[0].futurePeer: unknown field");
	assert_int_equal(event1(s, "ADDED", np), 0);
	p = first_policy(s);
	assert_null(p->degraded);
	assert_true(p->ingress);
	assert_int_equal(p->nin, 1);
	json_decref(obj);
	json_decref(found);
	store_close(s);
}

/* Before, a policy the watch could not parse was skipped and its pods
 * stayed open; now both paths agree on what they accept, and what only the
 * API accepts is stored in its fail-closed reading, logged and counted. */
static void test_store_policies_fail_closed(void **state)
{
	struct store *s = fresh_store("fc");
	const struct pol_policy *p;
	char err[1024] = "";

	(void)state;
	/* IPv6 peers: apply and the watch both take them */
	assert_int_equal(apply1(s, NP_V6, err, sizeof(err)), 0);
	p = first_policy(s);
	assert_null(p->degraded);
	assert_int_equal(p->in[0].npeers, 1);
	assert_int_equal(store_degraded(s), 0);
	assert_int_equal(event1(s, "ADDED", NP_V6), 0);
	p = first_policy(s);
	assert_null(p->degraded);
	assert_int_equal(p->in[0].npeers, 1);

	/* IPv4-mapped except: apply refuses it, naming the object and field */
	assert_int_not_equal(apply1(s, NP_MAPPED, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "test.yaml: spec.ingress[0].from[0].ipBlock.except[0]: "
				    "'::ffff:10.1.0.0/112' is an IPv4-mapped IPv6 CIDR"));
	/* the watch stores it, isolating with nothing allowed from that peer */
	assert_int_equal(event1(s, "DELETED", NP_V6), 0);
	assert_int_equal(event1(s, "ADDED", NP_MAPPED), 0);
	p = first_policy(s);
	assert_non_null(p->degraded);
	assert_true(p->ingress);
	assert_int_equal(p->in[0].npeers, 0);
	assert_false(p->in[0].any_peer);
	assert_int_equal(store_degraded(s), 1);
	/* saved and read back after a restart: still there, still degraded
	 * (it used to be dropped as an unreadable saved object) */
	assert_int_equal(store_flush(s), 0);
	store_close(s);
	{
		char sdir[600];

		snprintf(sdir, sizeof(sdir), "%s/fc", dir);
		assert_int_equal(store_open(&s, sdir, err, sizeof(err)), 0);
	}
	assert_int_equal(store_degraded(s), 1);
	/* a relist holding it keeps it (degraded), one without it removes it */
	{
		json_t *items = json_pack("[o]", jt(NP_MAPPED)), *changes = json_array();

		assert_int_equal(store_kube_replace(s, "networking.k8s.io/v1", "NetworkPolicy",
						    items, changes),
				 0);
		assert_int_equal(json_array_size(changes), 0);
		assert_int_equal(store_degraded(s), 1);
		json_array_clear(items);
		assert_int_equal(store_kube_replace(s, "networking.k8s.io/v1", "NetworkPolicy",
						    items, changes),
				 0);
		assert_int_equal(store_degraded(s), 0);
		json_decref(items);
		json_decref(changes);
	}
	/* a readable version replaces a degraded one, and the count goes back */
	assert_int_equal(event1(s, "ADDED", NP_MAPPED), 0);
	assert_int_equal(store_degraded(s), 1);
	assert_int_equal(event1(s, "MODIFIED", "{'apiVersion':'networking.k8s.io/v1','kind':"
			 "'NetworkPolicy','metadata':{'name':'mapped','namespace':'shop'},'spec':{}}"),
			 0);
	assert_int_equal(store_degraded(s), 0);
	store_close(s);
}

#define NODE(name, cidr, ip)                                                                       \
	"{'apiVersion':'v1','kind':'Node','metadata':{'name':'" name "'},'spec':{'podCIDR':'" cidr \
	"'},'status':{'addresses':[{'type':'InternalIP','address':'" ip "'}]}}"

static const struct store_node *node_named(struct store *s, const char *name)
{
	const struct store_node *n = store_node(s, name);

	assert_non_null(n);
	return n;
}

static void test_store_nodes_refused(void **state)
{
	struct store *s = fresh_store("nodes");
	struct cidr4 self = { .net = 0x0af40000, .prefix = 24 }; /* 10.244.0.0/24 */
	char err[1024] = "";

	(void)state;
	assert_int_equal(store_set_self(s, "n0", &self, 0xc0a80001), 0); /* 192.168.0.1 */
	/* other kinds pass the Node checks untouched */
	assert_int_equal(apply1(s, "{'apiVersion':'v1','kind':'Namespace','metadata':{'name':'x'}}",
				err, sizeof(err)), 0);
	assert_int_equal(apply1(s, NODE("n1", "10.244.1.0/24", "192.168.0.2"), err, sizeof(err)),
			 0);
	/* apply: an error naming the object and the reason */
	assert_int_not_equal(apply1(s, NODE("n2", "0.0.0.0/0", "192.168.0.3"), err, sizeof(err)),
			     0);
	assert_non_null(strstr(err, "test.yaml: Node n2: spec.podCIDR 0.0.0.0/0 covers every "
				    "address"));
	assert_int_not_equal(apply1(s, NODE("n2", "10.244.0.0/16", "192.168.0.3"), err,
				    sizeof(err)), 0);
	assert_non_null(strstr(err, "Node n2: spec.podCIDR 10.244.0.0/16 overlaps the pod CIDR "
				    "10.244.0.0/24 of this node (n0)"));
	assert_int_not_equal(apply1(s, NODE("n2", "10.244.1.128/25", "192.168.0.3"), err,
				    sizeof(err)), 0);
	assert_non_null(strstr(err, "overlaps the pod CIDR 10.244.1.0/24 of Node n1"));
	assert_int_not_equal(apply1(s, NODE("n2", "192.168.0.0/24", "10.9.0.1"), err,
				    sizeof(err)), 0);
	assert_non_null(strstr(err, "holds the address 192.168.0.1 of this node"));
	assert_int_not_equal(apply1(s, NODE("n2", "10.244.2.0/24", "10.244.1.7"), err,
				    sizeof(err)), 0);
	assert_non_null(strstr(err, "its InternalIP 10.244.1.7 is inside the pod CIDR "
				    "10.244.1.0/24 of Node n1"));
	assert_int_not_equal(apply1(s, NODE("n2", "10.244.2.0/24", "10.244.2.1"), err,
				    sizeof(err)), 0);
	assert_non_null(strstr(err, "inside its own spec.podCIDR"));
	/* replacing n1 by itself with a new range is fine */
	assert_int_equal(apply1(s, NODE("n1", "10.244.3.0/24", "192.168.0.2"), err, sizeof(err)),
			 0);
	assert_int_equal(store_refused_nodes(s), 0);

	/* the watch cannot refuse: stored, but not trusted, and the reason kept */
	assert_int_equal(event1(s, "ADDED", NODE("n9", "0.0.0.0/0", "192.168.0.9")), 0);
	assert_true(node_named(s, "n9")->refused);
	assert_non_null(strstr(node_named(s, "n9")->why, "covers every address"));
	/* overlap between two remote nodes (no creationTimestamp: applied
	 * objects): the later name is refused, whatever order they arrive in */
	assert_int_equal(event1(s, "ADDED", NODE("n8", "10.244.3.0/25", "192.168.0.8")), 0);
	assert_true(node_named(s, "n8")->refused);
	assert_false(node_named(s, "n1")->refused);
	assert_int_equal(event1(s, "ADDED", NODE("n0a", "10.244.3.0/24", "192.168.0.10")), 0);
	assert_false(node_named(s, "n0a")->refused);
	assert_true(node_named(s, "n1")->refused);
	assert_non_null(strstr(node_named(s, "n1")->why, "of Node n0a, which came first"));
	assert_int_equal(store_refused_nodes(s), 3);
	/* the first one gone: the next in order is trusted again */
	assert_int_equal(event1(s, "DELETED", NODE("n0a", "10.244.3.0/24", "192.168.0.10")), 0);
	assert_false(node_named(s, "n1")->refused);
	assert_true(node_named(s, "n8")->refused);
	/* from the API: the older Node keeps its range, however it is named */
	assert_int_equal(event1(s, "ADDED", "{'apiVersion':'v1','kind':'Node','metadata':{'name':"
			 "'a-evil','creationTimestamp':'2026-12-07T01:00:00Z'},'spec':{'podCIDR':"
			 "'10.244.7.9/32'},'status':{'addresses':[{'type':'InternalIP','address':"
			 "'192.168.0.99'}]}}"), 0);
	assert_int_equal(event1(s, "ADDED", "{'apiVersion':'v1','kind':'Node','metadata':{'name':"
			 "'z-node','creationTimestamp':'2026-12-06T01:00:00Z'},'spec':{'podCIDR':"
			 "'10.244.7.0/24'},'status':{'addresses':[{'type':'InternalIP','address':"
			 "'192.168.0.7'}]}}"), 0);
	assert_false(node_named(s, "z-node")->refused);
	assert_true(node_named(s, "a-evil")->refused);
	assert_non_null(strstr(node_named(s, "a-evil")->why, "10.244.7.0/24 of Node z-node"));
	/* this node's own Node object with a /0 is refused too */
	assert_int_equal(event1(s, "ADDED", NODE("n0", "0.0.0.0/0", "192.168.0.1")), 0);
	assert_true(node_named(s, "n0")->refused);
	store_close(s);
}

/* An IPv6 (or IPv6-first dual-stack) Pod is not skipped: a local pod the
 * watch skipped would lose its labels and escape the policies selecting it. */
static void test_store_pod_ipv6(void **state)
{
	struct store *s = fresh_store("pods6");
	struct store_view v;

	(void)state;
	assert_int_equal(event1(s, "ADDED", "{'apiVersion':'v1','kind':'Pod','metadata':{'name':"
			 "'six','namespace':'shop','labels':{'app':'db'}},'status':{'podIP':"
			 "'fd00::5','podIPs':[{'ip':'fd00::5'},{'ip':'10.9.0.5'}]}}"), 0);
	assert_int_equal(event1(s, "ADDED", "{'apiVersion':'v1','kind':'Pod','metadata':{'name':"
			 "'only6','namespace':'shop','labels':{'app':'db'}},'status':{'podIP':"
			 "'fd00::6'}}"), 0);
	assert_int_equal(store_view_build(s, NULL, 0, NULL, 0, &v), 0);
	assert_int_equal(v.w.npods, 2);
	for (size_t i = 0; i < v.w.npods; i++) {
		assert_string_equal(pol_labels_get(&v.w.pods[i]->labels, "app"), "db");
		assert_int_equal(v.w.pods[i]->ip,
				 strcmp(v.w.pods[i]->name, "six") ? 0 : 0x0a090005);
	}
	store_view_free(&v);
	store_close(s);
}

/* Whether the log holds (kind, ns, name). */
static bool logged(const struct store_change *v, size_t n, enum store_kind kind, const char *ns,
		   const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].kind == kind && !strcmp(v[i].ns, ns) && !strcmp(v[i].name, name))
			return true;
	return false;
}

/* The change log the reconcile step recomputes from: a new store says
 * "everything", then every put and removal is named, an unchanged relist
 * names nothing, and past the bound it says "everything" again. */
static void test_store_change_log(void **state)
{
	struct store *s = fresh_store("changelog");
	struct store_change *v;
	json_t *items, *changes = json_array();
	size_t n;

	(void)state;
	assert_true(store_changes_take(s, &v, &n));
	assert_int_equal(n, 0);
	store_changes_free(v, n);
	assert_false(store_changes_take(s, &v, &n));
	assert_int_equal(n, 0);
	store_changes_free(v, n);

	items = json_pack("[o, o]", pod("a", "10.0.0.1", "web"), pod("b", "10.0.0.2", "db"));
	assert_int_equal(store_kube_replace(s, "v1", "Pod", items, changes), 0);
	json_decref(items);
	assert_false(store_changes_take(s, &v, &n));
	assert_int_equal(n, 2);
	assert_true(logged(v, n, STORE_K_POD, "shop", "a"));
	assert_true(logged(v, n, STORE_K_POD, "shop", "b"));
	store_changes_free(v, n);

	/* the same list: nothing */
	items = json_pack("[o, o]", pod("a", "10.0.0.1", "web"), pod("b", "10.0.0.2", "db"));
	assert_int_equal(store_kube_replace(s, "v1", "Pod", items, changes), 0);
	json_decref(items);
	assert_false(store_changes_take(s, &v, &n));
	assert_int_equal(n, 0);
	store_changes_free(v, n);

	/* a relabelled, b gone: both named, and a's name survives b's slot
	 * being reused */
	items = json_pack("[o]", pod("a", "10.0.0.1", "api"));
	assert_int_equal(store_kube_replace(s, "v1", "Pod", items, changes), 0);
	json_decref(items);
	assert_false(store_changes_take(s, &v, &n));
	assert_true(logged(v, n, STORE_K_POD, "shop", "a"));
	assert_true(logged(v, n, STORE_K_POD, "shop", "b"));
	store_changes_free(v, n);
	assert_non_null(store_pod(s, "shop", "a"));
	assert_null(store_pod(s, "shop", "b"));

	/* a Namespace event */
	items = jt("{'apiVersion':'v1','kind':'Namespace','metadata':{'name':'team',"
		   "'labels':{'x':'y'}}}");
	assert_int_equal(store_kube_event(s, "ADDED", items, changes), 0);
	assert_false(store_changes_take(s, &v, &n));
	assert_int_equal(n, 1);
	assert_true(logged(v, n, STORE_K_NAMESPACE, "", "team"));
	store_changes_free(v, n);
	assert_int_equal(store_kube_event(s, "DELETED", items, changes), 0);
	json_decref(items);
	assert_false(store_changes_take(s, &v, &n));
	assert_true(logged(v, n, STORE_K_NAMESPACE, "", "team"));
	store_changes_free(v, n);

	/* past the bound: "everything", and nothing kept */
	for (unsigned i = 0; i <= STORE_CHANGES_MAX; i++) {
		char name[32];

		snprintf(name, sizeof(name), "p%u", i % 4);
		items = pod(name, "10.0.1.1", (i / 4) % 2 ? "x" : "y");
		assert_int_equal(store_kube_event(s, "MODIFIED", items, changes), 0);
		json_decref(items);
		if (json_array_size(changes) > 1000)
			json_array_clear(changes);
	}
	assert_true(store_changes_take(s, &v, &n));
	assert_int_equal(n, 0);
	store_changes_free(v, n);
	json_decref(changes);
	store_close(s);
}

/* One page of a Pod list: store_kube_list_page of items, freed. */
static int pod_page(struct store *s, json_t *items, json_t *changes)
{
	int ret = store_kube_list_page(s, "v1", "Pod", items, changes);

	json_decref(items);
	return ret;
}

/* Take the change log; assert it names exactly the pods in want (n of them,
 * namespace "shop"), then free it. */
static void log_is(struct store *s, const char *const *want, size_t n)
{
	struct store_change *v;
	size_t nv;

	assert_false(store_changes_take(s, &v, &nv));
	for (size_t i = 0; i < n; i++)
		assert_true(logged(v, nv, STORE_K_POD, "shop", want[i]));
	/* a name may be logged twice (put by a page, removed at the end), no
	 * other name */
	for (size_t i = 0; i < nv; i++) {
		bool known = false;

		for (size_t j = 0; j < n; j++)
			known = known || !strcmp(v[i].name, want[j]);
		assert_true(known);
	}
	store_changes_free(v, nv);
}

static const char *pod_label(struct store *s, const char *name)
{
	const struct pol_pod *p = store_pod(s, "shop", name);

	assert_non_null(p);
	assert_int_equal(p->labels.n, 1);
	return p->labels.v[0].value;
}

/* A list applied in pages as the API serves it: what no page named goes
 * at the end and not before, what a page names is replaced by name, a
 * list abandoned midway removes nothing, and the list begun again after it
 * judges by its own pages only. Every put and removal is in the change
 * log and in changes. */
static void test_store_relist_pages(void **state)
{
	struct store *s = fresh_store("pages");
	json_t *changes = json_array(), *local = json_pack("[o]", pod("local", "10.9.0.9", "x"));
	json_t *srcs = json_pack("[s]", "test"), *nodes = json_array();
	char err[512];

	(void)state;
	/* a pod applied with sluicectl: no list owns it */
	assert_int_equal(store_apply(s, local, srcs, changes, err, sizeof(err)), 0);
	json_array_clear(changes);
	assert_int_equal(store_kube_list_page(s, "v1", "Pod", nodes, changes), -EINVAL);
	assert_int_equal(store_kube_list_end(s, "v1", "Pod", changes), -EINVAL);

	/* the first list, two pages */
	assert_int_equal(store_kube_list_begin(s, "v1", "Pod"), 0);
	assert_int_equal(pod_page(s, json_pack("[o, o]", pod("a", "10.0.0.1", "web"),
					       pod("b", "10.0.0.2", "db")), changes), 0);
	assert_int_equal(pod_page(s, json_pack("[o, o]", pod("c", "10.0.0.3", "web"),
					       pod("d", "10.0.0.4", "db")), changes), 0);
	assert_int_equal(store_kube_list_end(s, "v1", "Pod", changes), 0);
	assert_int_equal(count_action(changes, "created"), 4);
	assert_int_equal(json_array_size(changes), 4);
	json_array_clear(changes);
	/* the log of a new store says "everything" */
	{
		struct store_change *v;
		size_t n;

		assert_true(store_changes_take(s, &v, &n));
		store_changes_free(v, n);
	}

	/* a relist: a the same, b relabelled, e new (second page); c and d
	 * named by no page go at the end, not before */
	assert_int_equal(store_kube_list_begin(s, "v1", "Pod"), 0);
	assert_int_equal(pod_page(s, json_pack("[o, o]", pod("a", "10.0.0.1", "web"),
					       pod("b", "10.0.0.2", "api")), changes), 0);
	assert_string_equal(pod_label(s, "b"), "api");
	assert_int_equal(pod_page(s, json_pack("[o]", pod("e", "10.0.0.5", "web")), changes), 0);
	assert_non_null(store_pod(s, "shop", "c"));
	assert_non_null(store_pod(s, "shop", "d"));
	assert_non_null(store_pod(s, "shop", "e"));
	/* a Node list between the pages leaves the Pod list alone */
	assert_int_equal(store_kube_list_begin(s, "v1", "Node"), 0);
	assert_int_equal(store_kube_list_page(s, "v1", "Node", nodes, changes), 0);
	assert_int_equal(store_kube_list_end(s, "v1", "Node", changes), 0);
	assert_non_null(store_pod(s, "shop", "c"));
	assert_int_equal(store_kube_list_end(s, "v1", "Pod", changes), 0);
	assert_int_equal(count_action(changes, "configured"), 1);
	assert_int_equal(count_action(changes, "created"), 1);
	assert_int_equal(count_action(changes, "deleted"), 2);
	assert_int_equal(json_array_size(changes), 4);
	json_array_clear(changes);
	log_is(s, (const char *const[]){ "b", "c", "d", "e" }, 4);
	assert_non_null(store_pod(s, "shop", "a"));
	assert_string_equal(pod_label(s, "b"), "api");
	assert_null(store_pod(s, "shop", "c"));
	assert_null(store_pod(s, "shop", "d"));
	assert_non_null(store_pod(s, "shop", "local"));

	/* a list abandoned after its first page (f new, a relabelled):
	 * nothing goes, what it put in stays */
	assert_int_equal(store_kube_list_begin(s, "v1", "Pod"), 0);
	assert_int_equal(pod_page(s, json_pack("[o, o]", pod("a", "10.0.0.1", "db"),
					       pod("f", "10.0.0.6", "web")), changes), 0);
	assert_int_equal(store_kube_list_abort(s, "v1", "Pod"), 0);
	assert_int_equal(count_action(changes, "configured"), 1);
	assert_int_equal(count_action(changes, "created"), 1);
	assert_int_equal(json_array_size(changes), 2);
	json_array_clear(changes);
	log_is(s, (const char *const[]){ "a", "f" }, 2);
	assert_int_equal(store_kube_list_page(s, "v1", "Pod", nodes, changes), -EINVAL);
	assert_non_null(store_pod(s, "shop", "b"));
	assert_non_null(store_pod(s, "shop", "e"));
	assert_string_equal(pod_label(s, "a"), "db");

	/* another abandoned without an abort (its continue token expired: the
	 * list begins again), then the list begun again: it names a, e and f
	 * but not b, in pages of its own; the abandoned one named b, which
	 * must not keep it */
	assert_int_equal(store_kube_list_begin(s, "v1", "Pod"), 0);
	assert_int_equal(pod_page(s, json_pack("[o, o]", pod("b", "10.0.0.2", "api"),
					       pod("e", "10.0.0.5", "web")), changes), 0);
	assert_int_equal(json_array_size(changes), 0);
	assert_int_equal(store_kube_list_begin(s, "v1", "Pod"), 0);
	assert_int_equal(pod_page(s, json_pack("[o]", pod("a", "10.0.0.1", "db")), changes), 0);
	assert_int_equal(pod_page(s, json_pack("[o, o]", pod("e", "10.0.0.5", "web"),
					       pod("f", "10.0.0.6", "web")), changes), 0);
	assert_int_equal(json_array_size(changes), 0);
	assert_non_null(store_pod(s, "shop", "b"));
	assert_int_equal(store_kube_list_end(s, "v1", "Pod", changes), 0);
	assert_int_equal(count_action(changes, "deleted"), 1);
	assert_int_equal(json_array_size(changes), 1);
	json_array_clear(changes);
	log_is(s, (const char *const[]){ "b" }, 1);
	assert_null(store_pod(s, "shop", "b"));
	assert_non_null(store_pod(s, "shop", "a"));
	assert_non_null(store_pod(s, "shop", "e"));
	assert_non_null(store_pod(s, "shop", "f"));
	assert_non_null(store_pod(s, "shop", "local"));

	/* an empty list in no page removes every pod from the API, and only
	 * those */
	assert_int_equal(store_kube_list_begin(s, "v1", "Pod"), 0);
	assert_int_equal(store_kube_list_end(s, "v1", "Pod", NULL), 0);
	log_is(s, (const char *const[]){ "a", "e", "f" }, 3);
	assert_null(store_pod(s, "shop", "a"));
	assert_non_null(store_pod(s, "shop", "local"));

	json_decref(changes);
	json_decref(local);
	json_decref(srcs);
	json_decref(nodes);
	store_close(s);
}

/* An apply undone (store_snapshot / store_restore) while a list of its
 * kind is in pages puts the API's object back as the list had seen it: the
 * list's end keeps it. */
static void test_store_undo_during_list(void **state)
{
	struct store *s = fresh_store("undo-list");
	json_t *objs = json_pack("[o]", pod("a", "10.0.0.9", "local")), *snap;
	json_t *srcs = json_pack("[s]", "test"), *changes = json_array();
	char err[512];

	(void)state;
	assert_int_equal(store_kube_list_begin(s, "v1", "Pod"), 0);
	assert_int_equal(pod_page(s, json_pack("[o, o]", pod("a", "10.0.0.1", "web"),
					       pod("b", "10.0.0.2", "db")), NULL), 0);
	assert_int_equal(store_kube_list_end(s, "v1", "Pod", NULL), 0);

	assert_int_equal(store_kube_list_begin(s, "v1", "Pod"), 0);
	assert_int_equal(pod_page(s, json_pack("[o]", pod("a", "10.0.0.1", "web")), NULL), 0);
	snap = store_snapshot(s, objs);
	assert_non_null(snap);
	assert_int_equal(store_apply(s, objs, srcs, changes, err, sizeof(err)), 0);
	assert_string_equal(pod_label(s, "a"), "local");
	assert_int_equal(store_restore(s, objs, snap), 0);
	assert_string_equal(pod_label(s, "a"), "web");
	assert_int_equal(pod_page(s, json_pack("[o]", pod("b", "10.0.0.2", "db")), NULL), 0);
	assert_int_equal(store_kube_list_end(s, "v1", "Pod", NULL), 0);
	assert_non_null(store_pod(s, "shop", "a"));
	assert_non_null(store_pod(s, "shop", "b"));

	json_decref(snap);
	json_decref(objs);
	json_decref(srcs);
	json_decref(changes);
	store_close(s);
}

/* objects.json is not written between the pages of a list (a whole store
 * per page), and is written at its end or after an abort. */
/* Bytes of a file, 0 when absent. */
static long file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) ? 0 : (long)st.st_size;
}

static void test_store_flush_after_list(void **state)
{
	struct store *s = fresh_store("flush");
	char path[600], journal[600];
	long before;

	(void)state;
	snprintf(path, sizeof(path), "%s/flush/objects.json", dir);
	snprintf(journal, sizeof(journal), "%s/flush/objects.journal", dir);
	assert_int_equal(store_kube_list_begin(s, "v1", "Pod"), 0);
	assert_int_equal(pod_page(s, json_pack("[o]", pod("a", "10.0.0.1", "web")), NULL), 0);
	assert_int_equal(store_flush(s), 0);
	assert_int_equal(file_size(path) + file_size(journal), 0);
	assert_int_equal(store_kube_list_end(s, "v1", "Pod", NULL), 0);
	assert_int_equal(store_flush(s), 0);
	assert_true(file_size(path) > 0);
	/* Saved from now on as records after the snapshot: none between the
	 * pages, the list's at its abort. */
	before = file_size(path) + file_size(journal);
	assert_int_equal(store_kube_list_begin(s, "v1", "Pod"), 0);
	assert_int_equal(pod_page(s, json_pack("[o]", pod("b", "10.0.0.2", "web")), NULL), 0);
	assert_int_equal(store_flush(s), 0);
	assert_int_equal(file_size(path) + file_size(journal), before);
	assert_int_equal(store_kube_list_abort(s, "v1", "Pod"), 0);
	assert_int_equal(store_flush(s), 0);
	assert_true(file_size(path) + file_size(journal) > before);
	store_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_kubeconfig_token),
		cmocka_unit_test(test_kubeconfig_cert_data),
		cmocka_unit_test(test_kubeconfig_errors),
		cmocka_unit_test(test_in_cluster),
		cmocka_unit_test(test_api_server_flag),
		cmocka_unit_test(test_store_relist),
		cmocka_unit_test(test_store_view_unknown_labels_and_undo),
		cmocka_unit_test(test_store_policies_fail_closed),
		cmocka_unit_test(test_store_nodes_refused),
		cmocka_unit_test(test_store_pod_ipv6),
		cmocka_unit_test(test_store_change_log),
		cmocka_unit_test(test_store_api_unknown_fields),
		cmocka_unit_test(test_store_relist_pages),
		cmocka_unit_test(test_store_undo_during_list),
		cmocka_unit_test(test_store_flush_after_list),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
