// SPDX-License-Identifier: Apache-2.0
/*
 * sluicectl's own pieces that need no agent: the unified diff of `diff`
 * (cli/udiff.c: hunks and headers exactly as diff -u writes them, and as
 * few changed lines as `diff --minimal` on random texts) and the client's
 * checks of `apply --dry-run=client` (cli/apply.c).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "../../cli/cli.h"
#include "../../cli/udiff.h"

/* udiff_print's output and return. */
static char *diff_text(const char *a, const char *b, int *ret)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	assert_non_null(f);
	*ret = udiff_print(f, a, b, "a", "b", 3);
	fclose(f);
	return out;
}

static char *lines(int from, int to, int changed, const char *with)
{
	static char buf[4096];
	size_t off = 0;

	buf[0] = '\0';
	for (int i = from; i <= to; i++)
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%d\n",
					i == changed ? with : "l", i);
	return strdup(buf);
}

static void test_equal_prints_nothing(void **state)
{
	int ret;
	char *out = diff_text("x\ny\n", "x\ny\n", &ret);

	(void)state;
	assert_int_equal(ret, 0);
	assert_string_equal(out, "");
	free(out);
}

static void test_one_change_in_the_middle(void **state)
{
	char *a = lines(1, 10, 0, ""), *b = lines(1, 10, 5, "X"), *out;
	int ret;

	(void)state;
	out = diff_text(a, b, &ret);
	assert_int_equal(ret, 1);
	assert_string_equal(out, "--- a\n+++ b\n@@ -2,7 +2,7 @@\n l2\n l3\n l4\n-l5\n+X5\n l6\n l7\n l8\n");
	free(out);
	free(a);
	free(b);
}

static void test_created_and_removed(void **state)
{
	int ret;
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	(void)state;
	assert_int_equal(udiff_print(f, "", "p\nq\n", "/dev/null", "b", 3), 1);
	fclose(f);
	assert_string_equal(out, "--- /dev/null\n+++ b\n@@ -0,0 +1,2 @@\n+p\n+q\n");
	free(out);
	out = diff_text("p\n", "", &ret);
	assert_string_equal(out, "--- a\n+++ b\n@@ -1 +0,0 @@\n-p\n");
	free(out);
	/* an insertion at the end, one line of context before it */
	out = diff_text("p\n", "p\nq\n", &ret);
	assert_string_equal(out, "--- a\n+++ b\n@@ -1 +1,2 @@\n p\n+q\n");
	free(out);
}

/* Changes 6 lines apart share a hunk; 8 apart do not (context 3). */
static void test_hunks_merge_within_twice_the_context(void **state)
{
	char a[512] = "", b[512] = "", *out;
	int ret, hunks = 0;

	(void)state;
	for (int i = 1; i <= 30; i++) {
		char l[16];

		snprintf(l, sizeof(l), "l%d\n", i);
		strcat(a, l);
		snprintf(l, sizeof(l), "%s%d\n", i == 3 || i == 10 || i == 25 ? "X" : "l", i);
		strcat(b, l);
	}
	out = diff_text(a, b, &ret);
	for (char *p = out; (p = strstr(p, "\n@@ ")); p++)
		hunks++;
	/* 3 and 10: 6 lines between them, one hunk; 25: another */
	assert_int_equal(hunks, 2);
	assert_non_null(strstr(out, "@@ -1,13 +1,13 @@\n"));
	assert_non_null(strstr(out, "@@ -22,7 +22,7 @@\n"));
	free(out);
}

/* Past UDIFF_MAX_CELLS the middle is removed then added: still right. */
static void test_large_falls_back(void **state)
{
	size_t n = 2100, cap = n * 12, off_a = 0, off_b = 0;
	char *a = malloc(cap), *b = malloc(cap), *out;
	int ret, minus = 0, plus = 0;

	(void)state;
	assert_true((uint64_t)(n + 1) * (n + 1) > UDIFF_MAX_CELLS);
	for (size_t i = 0; i < n; i++) {
		off_a += (size_t)snprintf(a + off_a, cap - off_a, "a%zu\n", i);
		off_b += (size_t)snprintf(b + off_b, cap - off_b, "%s%zu\n", i % 2 ? "a" : "b", i);
	}
	out = diff_text(a, b, &ret);
	assert_int_equal(ret, 1);
	for (char *p = out; (p = strchr(p, '\n')); p++) {
		minus += p[1] == '-' && p[2] != '-';
		plus += p[1] == '+' && p[2] != '+';
	}
	/* the first and last lines differ: everything is in the middle */
	assert_int_equal(minus, (int)n - 1);
	assert_int_equal(plus, (int)n - 1);
	free(out);
	free(a);
	free(b);
}

/* Random texts over a small alphabet: as many - and + lines as GNU diff
 * --minimal finds (the minimal count is unique even where the scripts
 * differ). */
static void test_minimal_like_gnu_diff(void **state)
{
	char dir[] = "/tmp/sluice-test-cli-XXXXXX", pa[64], pb[64], cmd[256], why[1024] = "";
	unsigned seed = 12345;

	(void)state;
	if (access("/usr/bin/diff", X_OK))
		skip();
	assert_non_null(mkdtemp(dir));
	snprintf(pa, sizeof(pa), "%s/a", dir);
	snprintf(pb, sizeof(pb), "%s/b", dir);
	for (int round = 0; round < 200 && !why[0]; round++) {
		char a[256] = "", b[256] = "", *out;
		int na = rand_r(&seed) % 20, nb = rand_r(&seed) % 20, ret, ours[2] = { 0 }, gnu[2] = { 0 };
		FILE *f;
		char line[512];

		for (int i = 0; i < na; i++)
			snprintf(a + strlen(a), sizeof(a) - strlen(a), "%c\n", 'a' + rand_r(&seed) % 4);
		for (int i = 0; i < nb; i++)
			snprintf(b + strlen(b), sizeof(b) - strlen(b), "%c\n", 'a' + rand_r(&seed) % 4);
		f = fopen(pa, "w");
		fputs(a, f);
		fclose(f);
		f = fopen(pb, "w");
		fputs(b, f);
		fclose(f);
		out = diff_text(a, b, &ret);
		for (char *p = out; *p; p = strchr(p, '\n') + 1) {
			ours[0] += p[0] == '-' && p[1] != '-';
			ours[1] += p[0] == '+' && p[1] != '+';
		}
		snprintf(cmd, sizeof(cmd), "diff --minimal -u %s %s", pa, pb);
		f = popen(cmd, "r");
		assert_non_null(f);
		while (fgets(line, sizeof(line), f)) {
			gnu[0] += line[0] == '-' && line[1] != '-';
			gnu[1] += line[0] == '+' && line[1] != '+';
		}
		pclose(f);
		/* the directory goes before a failure is reported */
		if (ours[0] != gnu[0] || ours[1] != gnu[1] || ret != (strcmp(a, b) != 0))
			snprintf(why, sizeof(why), "round %d: ours -%d +%d (returned %d), diff -%d "
				 "+%d\n--- a\n%s--- b\n%s", round, ours[0], ours[1], ret, gnu[0],
				 gnu[1], a, b);
		free(out);
	}
	unlink(pa);
	unlink(pb);
	rmdir(dir);
	if (why[0])
		fail_msg("%s", why);
}

static json_t *objs(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, 0, &e);

	if (!j)
		fail_msg("bad test JSON: %s", e.text);
	return j;
}

static void test_client_dry_run_checks(void **state)
{
	json_t *good = objs("[{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"a\"}}]");
	json_t *kind = objs("[{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"a\"}}]");
	json_t *noname = objs("[{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{}}]");
	json_t *typo = objs("[{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"a\",\"labelz\":{}}}]");
	json_t *srcs = objs("[\"ns.yaml: document 1\"]"), *warnings;
	char err[1024], *details;
	enum dry_run d;

	(void)state;
	assert_int_equal(apply_client_check(good, srcs, KS_STRICT, &warnings, err, sizeof(err),
					    &details), 0);
	assert_null(warnings);
	assert_int_equal(apply_client_check(kind, srcs, KS_STRICT, &warnings, err, sizeof(err),
					    &details), -EINVAL);
	assert_non_null(strstr(err, "ns.yaml: document 1: apiVersion v1 kind ConfigMap"));
	assert_int_equal(apply_client_check(noname, srcs, KS_IGNORE, &warnings, err, sizeof(err),
					    &details), -EINVAL);
	assert_non_null(strstr(err, "metadata.name"));
	assert_int_equal(apply_client_check(typo, srcs, KS_STRICT, &warnings, err, sizeof(err),
					    &details), -EINVAL);
	assert_non_null(strstr(err, "metadata.labelz: unknown field"));
	free(details);
	assert_int_equal(apply_client_check(typo, srcs, KS_WARN, &warnings, err, sizeof(err),
					    &details), 0);
	assert_int_equal(json_array_size(warnings), 1);
	json_decref(warnings);
	assert_int_equal(apply_client_check(typo, srcs, KS_IGNORE, &warnings, err, sizeof(err),
					    &details), 0);
	assert_null(warnings);

	assert_int_equal(dry_run_parse(NULL, &d), 0);
	assert_int_equal(d, DRY_CLIENT);
	assert_int_equal(dry_run_parse("server", &d), 0);
	assert_int_equal(d, DRY_SERVER);
	assert_int_equal(dry_run_parse("none", &d), 0);
	assert_int_equal(d, DRY_NONE);
	assert_int_equal(dry_run_parse("All", &d), -EINVAL);
	json_decref(good);
	json_decref(kind);
	json_decref(noname);
	json_decref(typo);
	json_decref(srcs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_equal_prints_nothing),
		cmocka_unit_test(test_one_change_in_the_middle),
		cmocka_unit_test(test_created_and_removed),
		cmocka_unit_test(test_hunks_merge_within_twice_the_context),
		cmocka_unit_test(test_large_falls_back),
		cmocka_unit_test(test_minimal_like_gnu_diff),
		cmocka_unit_test(test_client_dry_run_checks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
