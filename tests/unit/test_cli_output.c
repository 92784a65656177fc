// SPDX-License-Identifier: Apache-2.0
/*
 * Every output of sluicectl get and describe from fixed answers
 * (tests/unit/golden/cli/answers.json) against golden files: the table,
 * -o wide, json, yaml and name, --no-headers, -n/-A and -l filtering, one
 * NAME, names not found, and describe of a policy, pod and node. Each
 * golden file holds the command line, its exit status, stdout and stderr.
 * UPDATE_GOLDEN=1 rewrites them (then read the diff before committing).
 */
#include "cli_harness.h"

#define GOLDEN_DIR "tests/unit/golden/cli/"

static const struct {
	const char *file, *line;
} cases[] = {
	{ "get-pods", "get pods" },
	{ "get-pods-n", "get pods -n shop" },
	{ "get-pods-A", "get po -A" },
	{ "get-pods-wide", "get pods -A -o wide" },
	{ "get-pods-no-headers", "get pods -A --no-headers -l tier" },
	{ "get-pods-name", "get pods -n shop -o name" },
	{ "get-pods-selector", "get pods -A -l app_in_(web,db),tier!=test -o name" },
	{ "get-pods-json", "get pods -n shop -l app=web -o json" },
	{ "get-pods-yaml", "get pods -n shop -l app==web -o yaml" },
	{ "get-pod-json", "get pod shop/web -o json" },
	{ "get-pod-yaml", "get pod web -n shop -o yaml" },
	{ "get-pods-not-found", "get pods -n shop db nothere" },
	{ "get-pods-none", "get pods -n empty" },
	{ "get-ns", "get ns" },
	{ "get-ns-selector", "get namespaces -l team=red -o name" },
	{ "get-policies", "get policies -A" },
	{ "get-policies-n", "get pol -n shop -o name" },
	{ "get-netpol", "get netpol -A" },
	{ "get-policies-wide", "get policies -A -o wide" },
	{ "get-scnp-yaml", "get scnp -o yaml" },
	{ "get-ids", "get id -A" },
	{ "get-nodes", "get nodes" },
	{ "get-node-json", "get no node-2 -o json" },
	{ "get-svc", "get svc -A" },
	{ "get-svc-yaml", "get svc -n shop -o yaml" },
	{ "get-spf", "get spf" },
	{ "get-spf-one", "get prefilter block-a" },
	{ "get-spf-one-json", "get pf block-a -o json" },
	{ "get-ep", "get ep" },
	{ "get-ep-wide", "get endpoints -o wide" },
	{ "get-ep-json", "get ep -o json" },
	{ "get-ep-name", "get ep -n shop -o name" },
	{ "describe-policy", "describe policy shop/db-from-web" },
	{ "describe-pod", "describe pod -n shop db" },
	{ "describe-node", "describe node node-1" },
};

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");

	return f ? (fseek(f, 0, SEEK_END), slurp(f)) : NULL;
}

static void test_golden(void **state)
{
	bool update = getenv("UPDATE_GOLDEN") && *getenv("UPDATE_GOLDEN");
	size_t failed = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ctl_run r = ctl(cases[i].line);
		char path[256], *got = NULL, *want;

		snprintf(path, sizeof(path), GOLDEN_DIR "%s.out", cases[i].file);
		assert_true(asprintf(&got, "$ sluicectl %s\nexit %d\n--- stdout\n%s--- stderr\n%s",
				     cases[i].line, r.rc, r.out, r.err) > 0);
		if (update) {
			FILE *f = fopen(path, "w");

			assert_non_null(f);
			fputs(got, f);
			fclose(f);
		}
		want = read_file(path);
		if (!want || strcmp(want, got)) {
			print_error("%s differs from sluicectl %s; it printed:\n%s\n", path,
				    cases[i].line, got);
			failed++;
		}
		free(want);
		free(got);
		ctl_free(&r);
	}
	assert_int_equal(failed, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden),
	};
	int ret = cmocka_run_group_tests(tests, NULL, NULL);

	json_decref(answers);
	json_decref(requests);
	return ret;
}
