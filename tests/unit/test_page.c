// SPDX-License-Identifier: Apache-2.0
/*
 * Pages of `sluicectl get` (agent/page.c, store_order in agent/store.c):
 * key order across pages, continue tokens, a page boundary inside a
 * namespace, this node's pods merged in, objects added and removed
 * between pages, the byte bound; get policies: selectedPods from the
 * namespace's range (equal to testing every pod), the work bound, the
 * cap on names; the views' local pods.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "page.h"
#include "store.h"
#include "store_test.h"

STORE_TEST_DIR("/tmp/sluice-test-page-XXXXXX")

static uint32_t fake_identity(void *ctx, const struct pol_pod *p)
{
	(void)ctx;
	return p->labels_unknown ? 3 : 100 + (uint32_t)p->labels.n;
}

static void objects(struct store *s, const char *op, json_t *objs)
{
	json_t *srcs = json_array(), *ch = json_array();
	char err[1024] = "";

	for (size_t i = 0; i < json_array_size(objs); i++)
		json_array_append_new(srcs, json_string("test.yaml"));
	if (!strcmp(op, "apply"))
		assert_int_equal(store_apply(s, objs, srcs, ch, err, sizeof(err)), 0);
	else
		assert_int_equal(store_delete(s, objs, srcs, false, ch, err, sizeof(err)), 0);
	json_decref(objs);
	json_decref(srcs);
	json_decref(ch);
}

static json_t *pod(const char *ns, const char *name)
{
	char buf[512];

	snprintf(buf, sizeof(buf),
		 "{'apiVersion':'v1','kind':'Pod','metadata':{'namespace':'%s','name':'%s',"
		 "'labels':{'app':'x'}},'status':{'podIP':'10.1.0.9'}}", ns, name);
	return jt(buf);
}

static void pods(struct store *s, const char *op, const char *const *keys)
{
	json_t *arr = json_array();

	for (; *keys; keys++) {
		char ns[64];
		const char *slash = strchr(*keys, '/');

		snprintf(ns, sizeof(ns), "%.*s", (int)(slash - *keys), *keys);
		json_array_append_new(arr, pod(ns, slash + 1));
	}
	objects(s, op, arr);
}

/* One page of pods after token (NULL: the first); appends "ns/name" of
 * each item to seen (a JSON array) and returns the next token (or NULL). */
static char *pods_page(struct store *s, struct store_local *locals, size_t nlocals,
		       size_t limit, const char *token, json_t *seen)
{
	struct page pg;
	json_t *it;
	char err[400], *next;
	size_t i;

	assert_int_equal(page_init(&pg, "pods", limit, token, err, sizeof(err)), 0);
	assert_int_equal(page_pods(&pg, s, locals, nlocals, fake_identity, NULL), 0);
	assert_true(json_array_size(pg.items) <= limit);
	json_array_foreach(pg.items, i, it) {
		char key[300];

		snprintf(key, sizeof(key), "%s/%s", json_string_value(json_object_get(it, "namespace")),
			 json_string_value(json_object_get(it, "name")));
		json_array_append_new(seen, json_string(key));
	}
	next = pg.next ? strdup(pg.next) : NULL;
	page_free(&pg);
	return next;
}

static const char *const some[] = { "b/b-1", "a/a-4", "a-b/x", "a/a-0", "a/a-2", "a/a-1",
				    "b/b-0", "a/a-3", "c/c-0", NULL };
/* (namespace, name) order: "a" before "a-b", though "a-b/x" < "a/a-0" as strings. */
static const char *const sorted[] = { "a/a-0", "a/a-1", "a/a-2", "a/a-3", "a/a-4", "a-b/x",
				      "b/b-0", "b/b-1", "c/c-0", NULL };

static void assert_seen(const json_t *seen, const char *const *want)
{
	size_t i = 0;

	for (; want[i]; i++) {
		assert_true(i < json_array_size(seen));
		assert_string_equal(json_string_value(json_array_get(seen, i)), want[i]);
	}
	assert_int_equal(json_array_size(seen), i);
}

static void test_pods_in_pages(void **state)
{
	struct store *s = store_in(dir, "order");
	json_t *seen = json_array();
	char *tok = NULL, *next;
	size_t pages = 0;

	(void)state;
	pods(s, "apply", some);
	/* limit 3: the first page ends at a/a-2, inside namespace a; the
	 * second goes on with a/a-3. */
	do {
		next = pods_page(s, NULL, 0, 3, tok, seen);
		if (pages == 0)
			assert_string_equal(next, "pods:a/a-2");
		free(tok);
		tok = next;
		pages++;
	} while (tok);
	assert_int_equal(pages, 3);
	assert_seen(seen, sorted);
	json_decref(seen);
	/* One page for everything: no token. */
	seen = json_array();
	assert_null(pods_page(s, NULL, 0, 100, NULL, seen));
	assert_seen(seen, sorted);
	json_decref(seen);
	store_close(s);
}

/* This node's pods: one with its Pod object (one item, the endpoint's
 * address, local), one without (a stand-in, labels unknown), listed twice
 * (two interfaces): one item. */
static void test_pods_with_locals(void **state)
{
	struct store *s = store_in(dir, "locals");
	struct store_local locals[] = {
		{ .ns = "b", .name = "b-0x", .ip = 0x0a010203, .need_object = true },
		{ .ns = "a", .name = "a-1", .ip = 0x0a010204 },
		{ .ns = "b", .name = "b-0x", .ip = 0x0a010203, .need_object = true },
	};
	static const char *const want[] = { "a/a-0", "a/a-1", "a/a-2", "a/a-3", "a/a-4", "a-b/x",
					    "b/b-0", "b/b-0x", "b/b-1", "c/c-0", NULL };
	json_t *seen = json_array(), *all = json_array();
	struct page pg;
	char err[400], *tok = NULL, *next;
	int n_local = 0;
	size_t i;
	json_t *it;

	(void)state;
	pods(s, "apply", some);
	do {
		next = pods_page(s, locals, 3, 2, tok, seen);
		free(tok);
		tok = next;
	} while (tok);
	assert_seen(seen, want);
	assert_int_equal(page_init(&pg, "pods", 100, NULL, err, sizeof(err)), 0);
	assert_int_equal(page_pods(&pg, s, locals, 3, fake_identity, NULL), 0);
	json_array_foreach(pg.items, i, it) {
		const char *name = json_string_value(json_object_get(it, "name"));

		n_local += json_is_true(json_object_get(it, "local"));
		if (!strcmp(name, "a-1")) {
			assert_string_equal(json_string_value(json_object_get(it, "ip")), "10.1.2.4");
			assert_int_equal(json_integer_value(json_object_get(it, "identity")), 101);
		} else if (!strcmp(name, "b-0x")) {
			assert_int_equal(json_integer_value(json_object_get(it, "identity")), 3);
			assert_int_equal(json_object_size(json_object_get(it, "labels")), 0);
		} else {
			assert_string_equal(json_string_value(json_object_get(it, "ip")), "10.1.0.9");
		}
	}
	assert_int_equal(n_local, 2);
	page_free(&pg);
	json_decref(seen);
	json_decref(all);
	store_close(s);
}

/*
 * Objects added and removed between pages: each object at most once and
 * in order; one there for the whole listing exactly once; one added after
 * the token shows, one added before it does not, one removed before its
 * page does not.
 */
static void test_pods_change_between_pages(void **state)
{
	static const char *const gone[] = { "a/a-0", "b/b-1", NULL };
	static const char *const added[] = { "a/a-00", "a/a-9", "b/b-00", NULL };
	static const char *const want[] = { "a/a-0", "a/a-1", "a/a-2", "a/a-3", "a/a-4", "a/a-9",
					    "a-b/x", "b/b-0", "b/b-00", "c/c-0", NULL };
	struct store *s = store_in(dir, "churn");
	json_t *seen = json_array();
	char *tok, *next;

	(void)state;
	pods(s, "apply", some);
	tok = pods_page(s, NULL, 0, 3, NULL, seen);
	assert_string_equal(tok, "pods:a/a-2");
	/* a/a-0 was seen and goes; a/a-00 comes before the token (missed);
	 * a/a-9, b/b-00 after it; b/b-1 goes before its page. */
	pods(s, "delete", gone);
	pods(s, "apply", added);
	while (tok) {
		next = pods_page(s, NULL, 0, 3, tok, seen);
		free(tok);
		tok = next;
	}
	assert_seen(seen, want);
	/* The token's own pod gone: the listing goes on after its key. */
	json_decref(seen);
	seen = json_array();
	tok = pods_page(s, NULL, 0, 1, NULL, seen);
	assert_string_equal(tok, "pods:a/a-00");
	pods(s, "delete", (const char *const[]){ "a/a-00", NULL });
	next = pods_page(s, NULL, 0, 2, tok, seen);
	assert_string_equal(json_string_value(json_array_get(seen, 1)), "a/a-1");
	assert_string_equal(json_string_value(json_array_get(seen, 2)), "a/a-2");
	free(tok);
	free(next);
	json_decref(seen);
	store_close(s);
}

static void test_bad_tokens(void **state)
{
	struct store *s = store_in(dir, "tokens");
	struct page pg;
	char err[400] = "";

	(void)state;
	pods(s, "apply", some);
	assert_int_equal(page_init(&pg, "pods", 3, "policies:a/p/0", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not one of get pods"));
	assert_int_equal(page_init(&pg, "pods", 3, "pods:noslash", err, sizeof(err)), 0);
	assert_int_equal(page_pods(&pg, s, NULL, 0, fake_identity, NULL), -EINVAL);
	page_free(&pg);
	assert_int_equal(page_init(&pg, "policies", 3, "policies:a/p/7", err, sizeof(err)), 0);
	assert_int_equal(page_policies_start(&pg, s), -EINVAL);
	page_free(&pg);
	store_close(s);
}

/* A page is cut before it passes max_bytes; one item always fits. */
static void test_page_bytes(void **state)
{
	struct store *s = store_in(dir, "bytes");
	json_t *seen = json_array();
	struct page pg;
	char err[400], *tok = NULL;
	size_t pages = 0;

	(void)state;
	pods(s, "apply", some);
	do {
		assert_int_equal(page_init(&pg, "pods", 500, tok, err, sizeof(err)), 0);
		pg.max_bytes = 200; /* an item is ~100 bytes: two a page */
		assert_int_equal(page_pods(&pg, s, NULL, 0, fake_identity, NULL), 0);
		assert_true(json_array_size(pg.items) >= 1 && json_array_size(pg.items) <= 2);
		assert_true(pg.bytes <= 200);
		free(tok);
		tok = pg.next ? strdup(pg.next) : NULL;
		page_free(&pg);
		pages++;
	} while (tok);
	assert_int_equal(pages, 5);
	pg = (struct page){ 0 };
	assert_int_equal(page_init(&pg, "pods", 500, NULL, err, sizeof(err)), 0);
	pg.max_bytes = 10;
	assert_int_equal(page_add(&pg, jt("{'name':'a long enough item'}"), "k1"), 1);
	assert_int_equal(page_add(&pg, jt("{'name':'b'}"), "k2"), 0);
	assert_string_equal(pg.next, "pods:k1");
	page_free(&pg);
	json_decref(seen);
	store_close(s);
}

/* Policies: by namespace ("" for cluster policies first), name, then kind. */
static void test_policies_order(void **state)
{
	struct store *s = store_in(dir, "policies");
	static const char *const want[] = { "/z/2", "a/p/0", "a/p/1", "a/q/0", "b/a/0", NULL };
	json_t *seen = json_array();
	char key[300];
	ssize_t pos;
	struct page pg;
	char err[400];

	(void)state;
	objects(s, "apply", jt(
		"[{'apiVersion':'networking.k8s.io/v1','kind':'NetworkPolicy','metadata':"
		"{'namespace':'b','name':'a'},'spec':{'podSelector':{}}},"
		"{'apiVersion':'sluice.io/v1alpha1','kind':'SluiceNetworkPolicy','metadata':"
		"{'namespace':'a','name':'p'},'spec':{'podSelector':{}}},"
		"{'apiVersion':'networking.k8s.io/v1','kind':'NetworkPolicy','metadata':"
		"{'namespace':'a','name':'q'},'spec':{'podSelector':{}}},"
		"{'apiVersion':'sluice.io/v1alpha1','kind':'SluiceClusterNetworkPolicy','metadata':"
		"{'name':'z'},'spec':{'podSelector':{}}},"
		"{'apiVersion':'networking.k8s.io/v1','kind':'NetworkPolicy','metadata':"
		"{'namespace':'a','name':'p'},'spec':{'podSelector':{}}}]"));
	assert_int_equal(store_order(s, STORE_POLICIES), 5);
	for (size_t i = 0; store_order_policy(s, i); i++) {
		const struct pol_policy *p = store_order_policy(s, i);

		snprintf(key, sizeof(key), "%s/%s/%d", p->ns ? p->ns : "", p->name, (int)p->kind);
		json_array_append_new(seen, json_string(key));
	}
	assert_seen(seen, want);
	/* Resuming after a/p/0 starts at a/p/1: same name, next kind. */
	assert_int_equal(page_init(&pg, "policies", 2, "policies:a/p/0", err, sizeof(err)), 0);
	pos = page_policies_start(&pg, s);
	assert_int_equal(pos, 2);
	page_free(&pg);
	json_decref(seen);
	store_close(s);
}

/* The order follows the store: a pod added after a listing began is in
 * the next store_order; one removed is gone from it. */
static void test_order_follows_store(void **state)
{
	struct store *s = store_in(dir, "follow");

	(void)state;
	pods(s, "apply", some);
	assert_int_equal(store_order(s, STORE_PODS), 9);
	assert_int_equal(store_order(s, STORE_PODS), 9);
	pods(s, "apply", (const char *const[]){ "0/first", NULL });
	assert_int_equal(store_order(s, STORE_PODS), 10);
	assert_string_equal(store_order_pod(s, 0)->name, "first");
	pods(s, "delete", (const char *const[]){ "0/first", "c/c-0", NULL });
	assert_int_equal(store_order(s, STORE_PODS), 8);
	assert_string_equal(store_order_pod(s, 7)->name, "b-1");
	assert_null(store_order_pod(s, 8));
	store_close(s);
}

/* status: objects per kind (every kind named, SluicePrefilter too) and the bytes they take. */
static void test_counts(void **state)
{
	struct store *s = store_in(dir, "counts");
	json_t *c0 = store_counts_json(s), *c1;

	(void)state;
	assert_int_equal(json_integer_value(json_object_get(json_object_get(c0, "kinds"), "Pod")), 0);
	assert_int_equal(json_object_size(json_object_get(c0, "kinds")), 9);
	pods(s, "apply", some);
	c1 = store_counts_json(s);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(c1, "kinds"), "Pod")), 9);
	assert_int_equal(json_integer_value(json_object_get(c1, "objects")), 9);
	/* at least each pod's JSON text */
	assert_true(json_integer_value(json_object_get(c1, "bytes")) >=
		    json_integer_value(json_object_get(c0, "bytes")) + 9 * 100);
	json_decref(c0);
	json_decref(c1);
	store_close(s);
}

/* ---- get policies: selectedPods from the namespace's range of the order */

/* A policy as the tests see it: its key, names and count. */
static json_t *test_policy_item(void *ctx, const struct pol_policy *p, struct page_selected *sel)
{
	(void)ctx;
	return json_pack("{s:s, s:s, s:i, s:O, s:I, s:I, s:I}", "namespace", p->ns ? p->ns : "",
			 "name", p->name, "kind", (int)p->kind, "selected", sel->names, "count",
			 (json_int_t)sel->count, "tested", (json_int_t)sel->tested, "namespaces",
			 (json_int_t)sel->namespaces);
}

/* The namespaces of a world (team=red, blue, red, blue, red), and those its
 * pods are drawn in: e has no Namespace object. */
static const char *const namespaces[] = { "a", "a-b", "b", "c", "d" };
static const char *const ns_all[] = { "a", "a-b", "b", "c", "d", "e" };

/* Pods by namespace, then name: the order of pages. */
static int pod_cmp(const void *x, const void *y)
{
	const struct pol_pod *a = *(const struct pol_pod *const *)x;
	const struct pol_pod *b = *(const struct pol_pod *const *)y;
	int c = strcmp(a->ns, b->ns);

	return c ? c : strcmp(a->name, b->name);
}

/*
 * A small world drawn from seed: namespaces a, a-b, b, c, d (labelled
 * team=red or blue; e has pods and no Namespace object), npods pods with
 * app and tier labels, a NetworkPolicy and a SluiceNetworkPolicy per
 * namespace, two cluster policies (one with a namespaceSelector).
 */
static void world(struct store *s, unsigned seed, size_t npods)
{
	json_t *objs = json_array();
	char buf[1024];

	for (size_t i = 0; i < sizeof(namespaces) / sizeof(namespaces[0]); i++) {
		snprintf(buf, sizeof(buf), "{'apiVersion':'v1','kind':'Namespace','metadata':"
			 "{'name':'%s','labels':{'team':'%s'}}}", namespaces[i],
			 i % 2 ? "blue" : "red");
		json_array_append_new(objs, jt(buf));
		snprintf(buf, sizeof(buf), "{'apiVersion':'networking.k8s.io/v1','kind':"
			 "'NetworkPolicy','metadata':{'namespace':'%s','name':'np'},'spec':"
			 "{'podSelector':{'matchLabels':{'app':'%s'}}}}", namespaces[i],
			 i % 2 ? "x" : "y");
		json_array_append_new(objs, jt(buf));
		snprintf(buf, sizeof(buf), "{'apiVersion':'sluice.io/v1alpha1','kind':"
			 "'SluiceNetworkPolicy','metadata':{'namespace':'%s','name':'all'},"
			 "'spec':{'podSelector':{}}}", namespaces[i]);
		json_array_append_new(objs, jt(buf));
	}
	json_array_append_new(objs, jt(
		"{'apiVersion':'sluice.io/v1alpha1','kind':'SluiceClusterNetworkPolicy','metadata':"
		"{'name':'red-x'},'spec':{'namespaceSelector':{'matchLabels':{'team':'red'}},"
		"'podSelector':{'matchLabels':{'app':'x'}}}}"));
	json_array_append_new(objs, jt(
		"{'apiVersion':'sluice.io/v1alpha1','kind':'SluiceClusterNetworkPolicy','metadata':"
		"{'name':'tier1'},'spec':{'podSelector':{'matchExpressions':[{'key':'tier',"
		"'operator':'In','values':['1']}]}}}"));
	srand(seed);
	for (size_t i = 0; i < npods; i++) {
		int r = rand();

		snprintf(buf, sizeof(buf),
			 "{'apiVersion':'v1','kind':'Pod','metadata':{'namespace':'%s','name':'p%02zu',"
			 "'labels':{'app':'%s'%s}},'status':{'podIP':'10.1.%zu.%zu'}}",
			 ns_all[r % 6], i, (r >> 4) % 2 ? "x" : "y",
			 (r >> 6) % 3 == 0 ? "" : (r >> 6) % 3 == 1 ? ",'tier':'1'" : ",'tier':'2'",
			 i / 200, 1 + i % 200);
		json_array_append_new(objs, jt(buf));
	}
	objects(s, "apply", objs);
}

/*
 * What selectedPods must be, the slow way: every pod of a full view
 * (store_view_build) tested against p, each pod once, in key order.
 */
static json_t *brute_selected(const struct store_view *full, const struct pol_policy *p)
{
	const struct pol_pod **v = calloc(full->w.npods + 1, sizeof(*v));
	json_t *names = json_array();
	size_t n = 0;

	assert_non_null(v);
	for (size_t i = 0; i < full->w.npods; i++)
		if (pol_selects_pod(p, &full->w, full->w.pods[i]))
			v[n++] = full->w.pods[i];
	qsort(v, n, sizeof(*v), pod_cmp);
	for (size_t i = 0; i < n; i++) {
		char name[300];

		if (i && !pod_cmp(&v[i - 1], &v[i]))
			continue; /* one pod, two endpoints */
		snprintf(name, sizeof(name), "%s/%s", v[i]->ns, v[i]->name);
		json_array_append_new(names, json_string(name));
	}
	free(v);
	return names;
}

/* This node's pods in a world: p03, p07 (listed twice: two interfaces),
 * p11, wherever they were drawn, and b/zz-new without a Pod object
 * (labels unknown). ns[] holds the namespaces' names. */
#define NWORLD_LOCALS 5
static void world_locals(struct store *s, struct store_local *l, char ns[][64])
{
	static const char *const names[NWORLD_LOCALS] = { "p03", "p07", "p07", "zz-new", "p11" };

	for (size_t i = 0; i < NWORLD_LOCALS; i++) {
		snprintf(ns[i], 64, "b");
		for (size_t pos = 0; store_order_pod(s, pos); pos++)
			if (!strcmp(store_order_pod(s, pos)->name, names[i]))
				snprintf(ns[i], 64, "%s", store_order_pod(s, pos)->ns);
		l[i] = (struct store_local){ .ns = ns[i], .name = names[i],
					     .ip = 0x0a090001 + (uint32_t)i, .need_object = true };
	}
	l[2].ip = l[1].ip;
}

/* The distinct pods of a view in namespace ns ("": all). */
static size_t view_pods_in(const struct store_view *v, const char *ns)
{
	const struct pol_pod **p = calloc(v->w.npods + 1, sizeof(*p));
	size_t n = 0, k = 0;

	assert_non_null(p);
	for (size_t i = 0; i < v->w.npods; i++)
		if (!*ns || !strcmp(v->w.pods[i]->ns, ns))
			p[n++] = v->w.pods[i];
	qsort(p, n, sizeof(*p), pod_cmp);
	for (size_t i = 0; i < n; i++)
		k += !i || pod_cmp(&p[i - 1], &p[i]);
	free(p);
	return k;
}

/*
 * Every policy of every world listed through pages (limit 3, a small work
 * bound) equals the brute-force answer; cluster policies come first and a
 * namespaced policy tests only its namespace's pods.
 */
static void test_policies_equal_brute_force(void **state)
{
	(void)state;
	for (unsigned seed = 1; seed <= 20; seed++) {
		char name[32], err[400], *tok = NULL;
		struct store *s;
		struct store_view full, lean;
		struct store_local l[NWORLD_LOCALS];
		char lns[NWORLD_LOCALS][64];
		json_t *got = json_array(), *it;
		size_t i, k = 0, pages = 0, red_pods, nns = 0;

		snprintf(name, sizeof(name), "brute-%u", seed);
		s = store_in(dir, name);
		world(s, seed, 20 + seed * 7);
		assert_true(store_order(s, STORE_PODS) > 0);
		world_locals(s, l, lns);
		assert_int_equal(store_view_build(s, l, NWORLD_LOCALS, NULL, 0, &full), 0);
		assert_int_equal(store_view_build_lean(s, l, NWORLD_LOCALS, NULL, 0, &lean), 0);
		/* red-x (namespaceSelector team=red) tests the pods of a, b
		 * and d only, and asks once about each namespace with pods */
		red_pods = view_pods_in(&full, "a") + view_pods_in(&full, "b") +
			   view_pods_in(&full, "d");
		for (size_t j = 0; j < sizeof(ns_all) / sizeof(ns_all[0]); j++)
			nns += view_pods_in(&full, ns_all[j]) > 0;
		do {
			struct page pg;

			assert_int_equal(page_init(&pg, "policies", 3, tok, err, sizeof(err)), 0);
			pg.max_work = 25 + seed;
			assert_int_equal(page_policies(&pg, s, &lean, test_policy_item, NULL), 0);
			assert_true(json_array_size(pg.items) >= 1 && json_array_size(pg.items) <= 3);
			json_array_foreach(pg.items, i, it)
				json_array_append(got, it);
			free(tok);
			tok = pg.next ? strdup(pg.next) : NULL;
			page_free(&pg);
			pages++;
		} while (tok);
		assert_int_equal(json_array_size(got), 12);
		assert_true(pages >= 4);
		json_array_foreach(got, i, it) {
			const struct pol_policy *p = store_order_policy(s, i);
			json_t *want = brute_selected(&full, p);
			const char *ns = json_string_value(json_object_get(it, "namespace"));

			assert_string_equal(json_string_value(json_object_get(it, "name")), p->name);
			assert_string_equal(ns, p->ns ? p->ns : "");
			if (!json_equal(want, json_object_get(it, "selected"))) {
				char *a = json_dumps(want, 0), *b = json_dumps(it, 0);

				fail_msg("seed %u, policy %s/%s: want %s, got %s", seed, ns, p->name, a, b);
			}
			assert_int_equal(json_integer_value(json_object_get(it, "count")),
					 json_array_size(want));
			/* the pods looked at: the namespace's only (locals and
			 * Pod objects merged), or every pod for a cluster one */
			assert_int_equal(json_integer_value(json_object_get(it, "tested")),
					 p->has_ns_sel ? red_pods : view_pods_in(&full, ns));
			assert_int_equal(json_integer_value(json_object_get(it, "namespaces")),
					 p->has_ns_sel ? nns : 0);
			k += json_array_size(want);
			json_decref(want);
		}
		assert_true(k > 0);
		json_decref(got);
		store_view_free(&full);
		store_view_free(&lean);
		store_close(s);
	}
}

/* One page of policies of world s after tok, with the bounds given. */
static json_t *policies_page(struct store *s, const struct store_view *v, size_t limit,
			     size_t max_work, size_t max_selected, char **tok)
{
	struct page pg;
	char err[400];
	json_t *items;

	assert_int_equal(page_init(&pg, "policies", limit, *tok, err, sizeof(err)), 0);
	if (max_work)
		pg.max_work = max_work;
	if (max_selected)
		pg.max_selected = max_selected;
	assert_int_equal(page_policies(&pg, s, v, test_policy_item, NULL), 0);
	items = json_incref(pg.items);
	free(*tok);
	*tok = pg.next ? strdup(pg.next) : NULL;
	page_free(&pg);
	return items;
}

/*
 * Pages of policies end inside and across namespaces ("" of the cluster
 * policies first, then a before a-b); the work bound cuts a page once
 * that many pods were tested, and one policy always fits a page.
 */
static void test_policies_pages_and_work(void **state)
{
	static const char *const tokens[] = { "policies:/tier1/2", "policies:a/np/0",
					      "policies:a-b/np/0", "policies:b/np/0",
					      "policies:c/np/0", NULL };
	struct store *s = store_in(dir, "pol-work");
	struct store_view v;
	char *tok = NULL;
	json_t *items, *it;
	size_t pages = 0, total = 0, i, all_pods;

	(void)state;
	world(s, 7, 60);
	assert_int_equal(store_view_build_lean(s, NULL, 0, NULL, 0, &v), 0);
	/* limit 2, no work bound to speak of */
	do {
		items = policies_page(s, &v, 2, 0, 0, &tok);
		assert_int_equal(json_array_size(items), 2);
		if (tokens[pages])
			assert_string_equal(tok, tokens[pages]);
		else
			assert_null(tok);
		json_decref(items);
		pages++;
	} while (tok);
	assert_int_equal(pages, 6);
	/* Work bound 1: every page one policy, the first always fits. */
	pages = 0;
	do {
		items = policies_page(s, &v, 500, 1, 0, &tok);
		assert_int_equal(json_array_size(items), 1);
		json_decref(items);
		pages++;
	} while (tok);
	assert_int_equal(pages, 12);
	/* red-x, then tier1: a cluster policy without a namespaceSelector
	 * tests every pod (60), so a bound of 61 holds it alone; then pages
	 * of namespaced ones go on to the bound. */
	items = policies_page(s, &v, 500, 1, 0, &tok);
	assert_int_equal(json_array_size(items), 1);
	json_decref(items);
	items = policies_page(s, &v, 500, 61, 0, &tok);
	assert_int_equal(json_array_size(items), 1);
	it = json_array_get(items, 0);
	assert_string_equal(json_string_value(json_object_get(it, "name")), "tier1");
	all_pods = (size_t)json_integer_value(json_object_get(it, "tested"));
	assert_int_equal(all_pods, 60);
	json_decref(items);
	pages = 2;
	total = 2;
	while (tok) {
		size_t work = 0, n;

		items = policies_page(s, &v, 500, 30, 0, &tok);
		n = json_array_size(items);
		assert_true(n >= 1);
		json_array_foreach(items, i, it) {
			/* cut only once the bound is reached */
			if (i + 1 < n)
				assert_true(work < 30);
			work += (size_t)json_integer_value(json_object_get(it, "tested")) +
				(size_t)json_integer_value(json_object_get(it, "namespaces")) + 1;
		}
		if (tok)
			assert_true(work >= 30);
		total += n;
		pages++;
		json_decref(items);
	}
	assert_int_equal(total, 12);
	assert_true(pages > 3);
	store_view_free(&v);
	store_close(s);
}

/* selectedPods names the first max_selected pods in key order;
 * selectedPodsCount counts all of them. */
static void test_policies_selected_cap(void **state)
{
	struct store *s = store_in(dir, "pol-cap");
	struct store_view v, full;
	char *tok = NULL;
	json_t *items, *it;
	size_t i, capped = 0;

	(void)state;
	world(s, 3, 80);
	assert_int_equal(store_view_build_lean(s, NULL, 0, NULL, 0, &v), 0);
	assert_int_equal(store_view_build(s, NULL, 0, NULL, 0, &full), 0);
	items = policies_page(s, &v, 500, 0, 2, &tok);
	assert_null(tok);
	assert_int_equal(json_array_size(items), 12);
	json_array_foreach(items, i, it) {
		json_t *want = brute_selected(&full, store_order_policy(s, i));
		json_t *names = json_object_get(it, "selected");
		size_t n = json_array_size(want);

		assert_int_equal(json_integer_value(json_object_get(it, "count")), n);
		assert_int_equal(json_array_size(names), n < 2 ? n : 2);
		for (size_t k = 0; k < json_array_size(names); k++)
			assert_true(json_equal(json_array_get(names, k), json_array_get(want, k)));
		capped += n > 2;
		json_decref(want);
	}
	assert_true(capped >= 3);
	json_decref(items);
	store_view_free(&v);
	store_view_free(&full);
	store_close(s);
}

/*
 * store_view_build: every Pod object once, a local pod as its copy with
 * the endpoint's address instead of its object, a local without an
 * object as a stand-in; the lean view holds the locals only, and both
 * find pods by name and by address.
 */
static void test_views_and_locals(void **state)
{
	struct store *s = store_in(dir, "views");
	struct store_local l[NWORLD_LOCALS];
	char lns[NWORLD_LOCALS][64], key[200];
	struct store_view full, lean;
	const struct pol_pod *p03;
	size_t nobj;

	(void)state;
	world(s, 5, 50);
	nobj = (size_t)store_order(s, STORE_PODS);
	world_locals(s, l, lns);
	assert_int_equal(store_view_build(s, l, NWORLD_LOCALS, NULL, 0, &full), 0);
	/* 50 objects, 3 of them local (p07 twice), plus the stand-in */
	assert_int_equal(full.w.npods, nobj - 3 + NWORLD_LOCALS);
	for (size_t i = 0; i < full.w.npods; i++) {
		const struct pol_pod *p = full.w.pods[i];
		bool is_local = false;

		for (size_t j = 0; j < NWORLD_LOCALS; j++)
			is_local |= !strcmp(p->ns, l[j].ns) && !strcmp(p->name, l[j].name);
		assert_int_equal(full.pod_local[i], is_local);
		if (is_local)
			assert_true(p->ip >= 0x0a090001 && p->ip <= 0x0a090005);
		else
			assert_ptr_equal(p, store_pod(s, p->ns, p->name));
	}
	assert_int_equal(view_pods_in(&full, ""), nobj + 1);
	assert_int_equal(store_view_build_lean(s, l, NWORLD_LOCALS, NULL, 0, &lean), 0);
	assert_int_equal(lean.w.npods, NWORLD_LOCALS);
	snprintf(key, sizeof(key), "%s/p03", l[0].ns);
	p03 = store_view_pod(&lean, key);
	assert_non_null(p03);
	assert_int_equal(p03->ip, 0x0a090001);
	assert_int_equal(store_view_pod(&full, key)->ip, 0x0a090001);
	assert_true(store_view_pod(&lean, "b/zz-new")->labels_unknown);
	assert_null(store_view_pod(&lean, "b/nothing"));
	/* a pod of another node, by name and by address */
	for (size_t pos = 0; store_order_pod(s, pos); pos++) {
		const struct pol_pod *p = store_order_pod(s, pos);

		if (strcmp(p->name, "p20"))
			continue;
		snprintf(key, sizeof(key), "%s/p20", p->ns);
		assert_ptr_equal(store_view_pod(&lean, key), p);
		assert_ptr_equal(store_view_pod_by_ip(&lean, p->ip), p);
		assert_ptr_equal(store_view_pod_by_ip(&full, p->ip), p);
	}
	/* a local pod by address: its copy, not its object (10.1.0.4) */
	assert_ptr_equal(store_view_pod_by_ip(&lean, 0x0a090001), p03);
	assert_null(store_view_pod_by_ip(&lean, store_pod(s, l[0].ns, "p03")->ip));
	assert_null(store_view_pod_by_ip(&lean, 0));
	store_view_free(&full);
	store_view_free(&lean);
	store_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pods_in_pages),
		cmocka_unit_test(test_pods_with_locals),
		cmocka_unit_test(test_pods_change_between_pages),
		cmocka_unit_test(test_bad_tokens),
		cmocka_unit_test(test_page_bytes),
		cmocka_unit_test(test_policies_order),
		cmocka_unit_test(test_order_follows_store),
		cmocka_unit_test(test_counts),
		cmocka_unit_test(test_policies_equal_brute_force),
		cmocka_unit_test(test_policies_pages_and_work),
		cmocka_unit_test(test_policies_selected_cap),
		cmocka_unit_test(test_views_and_locals),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
