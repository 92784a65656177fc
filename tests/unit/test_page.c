// SPDX-License-Identifier: Apache-2.0
/*
 * Pages of `sluicectl get` (agent/page.c, store_order in agent/store.c):
 * key order across pages, continue tokens, a page boundary inside a
 * namespace, this node's pods merged in, objects added and removed
 * between pages, the byte bound.
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

static char dir[] = "/tmp/sluice-test-page-XXXXXX";

static int setup(void **state)
{
	(void)state;
	return store_test_mkdir(dir);
}

static int teardown(void **state)
{
	(void)state;
	return store_test_rmdir(dir);
}

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

/* status: objects per kind (every kind named) and the bytes they take. */
static void test_counts(void **state)
{
	struct store *s = store_in(dir, "counts");
	json_t *c0 = store_counts_json(s), *c1;

	(void)state;
	assert_int_equal(json_integer_value(json_object_get(json_object_get(c0, "kinds"), "Pod")), 0);
	assert_int_equal(json_object_size(json_object_get(c0, "kinds")), 8);
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
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
