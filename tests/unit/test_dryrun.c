// SPDX-License-Identifier: Apache-2.0
/*
 * apply with dryRun "server" (store_apply_dry_run): the same decisions as
 * store_apply (created, configured, unchanged; refused for the same
 * reasons, with the same message) and nothing changed: the store's
 * objects, its change log and its files on disk are as before.
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

#include "store.h"
#include "store_test.h"

STORE_TEST_DIR("/tmp/sluice-test-dryrun-XXXXXX")

#define NS_A "{'apiVersion':'v1','kind':'Namespace','metadata':{'name':'a','labels':{'team':'red'}}}"
#define NS_A2 "{'apiVersion':'v1','kind':'Namespace','metadata':{'name':'a','labels':{'team':'blue'}}}"
#define NS_B "{'apiVersion':'v1','kind':'Namespace','metadata':{'name':'b'}}"
#define POL "{'apiVersion':'networking.k8s.io/v1','kind':'NetworkPolicy','metadata':{'namespace':'a','name':'deny'},'spec':{'podSelector':{}}}"

/* The bytes of dir/name ("" when absent), for before/after comparisons. */
static char *file_bytes(const char *sdir, const char *name)
{
	char path[700], *buf;
	FILE *f;
	long n;

	snprintf(path, sizeof(path), "%s/%s", sdir, name);
	f = fopen(path, "rb");
	if (!f)
		return strdup("");
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return buf;
}

static const char *action_of(const json_t *changes, size_t i)
{
	return json_string_value(json_object_get(json_array_get(changes, i), "action"));
}

static void test_decisions_change_nothing(void **state)
{
	json_t *base = json_pack("[o, o]", jt(NS_A), jt(POL)), *changes = json_array(), *snap, *snap2;
	json_t *dry = json_pack("[o, o, o]", jt(NS_A2), jt(POL), jt(NS_B)), *live;
	char err[1024], sdir[600], *snap_before, *jrn_before, *snap_after, *jrn_after;
	struct store_change *log = NULL;
	struct store *s = store_in(dir, "decide");
	size_t nlog = 0;

	(void)state;
	snprintf(sdir, sizeof(sdir), "%s/decide", dir);
	assert_int_equal(store_apply(s, base, NULL, changes, err, sizeof(err)), 0);
	store_changes_take(s, &log, &nlog);
	store_changes_free(log, nlog);
	snap = store_snapshot(s, dry);
	snap_before = file_bytes(sdir, "objects.json");
	jrn_before = file_bytes(sdir, "objects.journal");

	json_array_clear(changes);
	assert_int_equal(store_apply_dry_run(s, dry, NULL, true, changes, err, sizeof(err)), 0);
	assert_int_equal(json_array_size(changes), 3);
	assert_string_equal(action_of(changes, 0), "configured");
	assert_string_equal(action_of(changes, 1), "unchanged");
	assert_string_equal(action_of(changes, 2), "created");
	/* live: the stored object, for diff; none for one not stored */
	live = json_object_get(json_array_get(changes, 0), "live");
	assert_non_null(live);
	assert_true(json_equal(live, json_array_get(base, 0)));
	assert_null(json_object_get(json_array_get(changes, 2), "live"));
	assert_null(json_object_get(json_array_get(changes, 0), "note"));

	/* Nothing changed: the objects, the change log, the files. */
	snap2 = store_snapshot(s, dry);
	assert_true(json_equal(snap, snap2));
	log = NULL;
	nlog = 0;
	assert_false(store_changes_take(s, &log, &nlog) && nlog);
	store_changes_free(log, nlog);
	snap_after = file_bytes(sdir, "objects.json");
	jrn_after = file_bytes(sdir, "objects.journal");
	assert_string_equal(snap_before, snap_after);
	assert_string_equal(jrn_before, jrn_after);

	/* Without live: no "live". */
	json_array_clear(changes);
	assert_int_equal(store_apply_dry_run(s, dry, NULL, false, changes, err, sizeof(err)), 0);
	assert_null(json_object_get(json_array_get(changes, 0), "live"));

	/* The real apply decides the same. */
	json_array_clear(changes);
	assert_int_equal(store_apply(s, dry, NULL, changes, err, sizeof(err)), 0);
	assert_string_equal(action_of(changes, 0), "configured");
	assert_string_equal(action_of(changes, 1), "unchanged");
	assert_string_equal(action_of(changes, 2), "created");

	free(snap_before);
	free(jrn_before);
	free(snap_after);
	free(jrn_after);
	json_decref(snap);
	json_decref(snap2);
	json_decref(base);
	json_decref(dry);
	json_decref(changes);
	store_close(s);
}

/* Refused as store_apply refuses, with its message, and nothing appended. */
static void test_refusals_match_apply(void **state)
{
	json_t *dup = json_pack("[o, o]", jt(NS_A), jt(NS_A2));
	json_t *bad = json_pack("[o, o]", jt(NS_B),
				jt("{'apiVersion':'v1','kind':'Namespace','metadata':{}}"));
	json_t *srcs = json_pack("[s, s]", "f.yaml: document 1", "f.yaml: document 2");
	json_t *changes = json_array();
	const json_t *cases[] = { dup, bad };
	struct store *s = store_in(dir, "refuse");
	char err[1024], err2[1024];

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		int code = store_apply_dry_run(s, cases[i], srcs, true, changes, err, sizeof(err));

		assert_int_not_equal(code, 0);
		assert_int_equal(json_array_size(changes), 0);
		assert_int_equal(store_apply(s, cases[i], srcs, changes, err2, sizeof(err2)), code);
		assert_string_equal(err, err2);
		assert_non_null(strstr(err, "f.yaml: document"));
	}
	json_array_clear(changes);
	json_decref(bad);
	bad = json_array(); /* nothing to apply */
	assert_int_not_equal(store_apply_dry_run(s, bad, NULL, false, changes, err, sizeof(err)), 0);
	json_decref(dup);
	json_decref(bad);
	json_decref(srcs);
	json_decref(changes);
	store_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decisions_change_nothing),
		cmocka_unit_test(test_refusals_match_apply),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
