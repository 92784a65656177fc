// SPDX-License-Identifier: Apache-2.0
/*
 * sluicectl's command line: a misplaced or mistyped word says what was
 * meant (exit 2), options belong to their commands, the help fits a screen
 * and each command has its own; delete KIND NAME and observe's -n/-l send
 * the requests they mean. Against fixed answers (cli_harness.h).
 */
#include "cli_harness.h"

/* line exits 2 and says want on stderr, nothing on stdout */
static void usage_error(const char *line, const char *want)
{
	struct ctl_run r = ctl(line);

	if (r.rc != EXIT_USAGE || !strstr(r.err, want) || *r.out) {
		print_error("sluicectl %s: exit %d, stderr '%s'; wanted exit 2 and '%s'\n", line,
			    r.rc, r.err, want);
		ctl_free(&r);
		fail();
	}
	ctl_free(&r);
}

static void test_misplaced_words(void **state)
{
	(void)state;
	usage_error("pods", "unknown command 'pods'; did you mean 'get pods'?");
	usage_error("netpol", "did you mean 'get netpol'?");
	usage_error("policy default/x", "unknown command 'policy default/x'; did you mean "
		    "'get policy default/x'?");
	usage_error("policy", "unknown command 'policy'; did you mean 'get policy'?");
	usage_error("descrbe pod x", "unknown command 'descrbe'; did you mean 'describe'?");
	usage_error("frobnicate", "unknown command 'frobnicate'; see sluicectl --help");
	usage_error("", "no command; see sluicectl --help");
}

static void test_kinds(void **state)
{
	(void)state;
	usage_error("get polcy", "unknown kind 'polcy'; did you mean 'policy'?; the kinds: "
		    "namespaces (ns), pods (po)");
	usage_error("get servise", "did you mean 'service'?");
	usage_error("get xyzzy", "unknown kind 'xyzzy'; the kinds: namespaces (ns)");
	usage_error("get", "get needs a KIND: namespaces (ns)");
	usage_error("describe", "describe needs a KIND");
	usage_error("get nodes shop/node-1", "'shop/node-1': this kind is not in a namespace");
	usage_error("get pods a/b/c", "NAMESPACE/NAME has one '/' between two names");
	usage_error("delete pod", "delete pod needs a NAME (or delete -f FILE)");
	usage_error("delete identity 258", "identities cannot be deleted: the agent computes");
	usage_error("delete ep db", "an endpoint goes with its pod's CNI DEL");
	usage_error("delete ns/x/y", "'x/y': namespaces is not in a namespace");
}

static void test_options(void **state)
{
	(void)state;
	usage_error("get pods -o xml", "-o takes json, yaml, wide or name, not 'xml'");
	usage_error("status -o yaml", "-o yaml, wide and name are for get");
	usage_error("describe pod x -o json", "describe prints words");
	usage_error("get pods -l a_in_(b", "label selector 'a in (b': at character 8");
	usage_error("get policies -A -l app=x", "-l: the agent's policies carry no labels");
	usage_error("status -n x", "-n is for get, describe, delete KIND NAME and observe");
	usage_error("metrics -A", "-A is for get, describe");
	usage_error("describe pod x -w", "--watch is for get");
	usage_error("status --no-headers", "--no-headers is for get");
	usage_error("status extra", "status takes no arguments, not 'extra'");
	usage_error("top", "top takes flows or pods");
	usage_error("apply", "apply needs -f FILE");
	usage_error("delete pod x -f y.yaml", "-f is for apply and delete -f FILE");
	usage_error("get pods --chunk-size x", "--chunk-size takes a number from 0 to 1000000");
	usage_error("describe pod x --chunk-size 5", "--chunk-size is for get");
}

static void test_help(void **state)
{
	static const char *const verbs[] = { "get", "describe", "apply", "delete", "status",
					     "metrics", "observe", "top", "policy" };
	struct ctl_run r = ctl("--help");
	size_t lines = 0;

	(void)state;
	assert_int_equal(r.rc, 0);
	for (const char *p = r.out; *p; p++)
		lines += *p == '\n';
	assert_true(lines <= 45);
	assert_non_null(strstr(r.out, "Run 'sluicectl COMMAND --help'"));
	ctl_free(&r);
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		char line[64], usage[64];

		snprintf(line, sizeof(line), "%s --help", verbs[i]);
		snprintf(usage, sizeof(usage), "Usage: sluicectl %s", verbs[i]);
		r = ctl(line);
		assert_int_equal(r.rc, 0);
		if (!strstr(r.out, usage) || !strstr(r.out, "Example")) {
			print_error("%s: '%s'\n", line, r.out);
			fail();
		}
		ctl_free(&r);
	}
	/* get's lists its flags */
	r = ctl("get --help");
	assert_non_null(strstr(r.out, "-l, --selector"));
	assert_non_null(strstr(r.out, "-o, --output FORMAT"));
	assert_non_null(strstr(r.out, "--no-headers"));
	assert_non_null(strstr(r.out, "-w, --watch"));
	assert_non_null(strstr(r.out, "-A, --all-namespaces"));
	ctl_free(&r);
}

/* delete KIND NAME: the object the agent is asked to delete */
static void test_delete_named_request(void **state)
{
	struct ctl_run r = ctl("delete netpol shop/db-from-web");
	json_t *want = json_loads("[{\"apiVersion\": \"networking.k8s.io/v1\", \"kind\": "
				  "\"NetworkPolicy\", \"metadata\": {\"name\": \"db-from-web\", "
				  "\"namespace\": \"shop\"}}]", 0, NULL);
	const json_t *last;

	(void)state;
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.out, "networkpolicy shop/db-from-web deleted\n");
	last = json_array_get(requests, json_array_size(requests) - 1);
	assert_true(json_equal(json_object_get(last, "objects"), want));
	ctl_free(&r);
	/* policy NAME: the kind is looked up; -n gives the namespace */
	r = ctl("delete policy -n shop db-from-web");
	assert_int_equal(r.rc, 0);
	last = json_array_get(requests, json_array_size(requests) - 1);
	assert_true(json_equal(json_object_get(last, "objects"), want));
	ctl_free(&r);
	/* a cluster-wide policy has no namespace */
	r = ctl("delete policy base");
	last = json_array_get(requests, json_array_size(requests) - 1);
	assert_string_equal(json_string_value(json_object_get(
				    json_array_get(json_object_get(last, "objects"), 0), "kind")),
			    "SluiceClusterNetworkPolicy");
	assert_null(json_object_get(json_object_get(json_array_get(json_object_get(last,
										   "objects"), 0),
						    "metadata"), "namespace"));
	ctl_free(&r);
	/* a policy that does not exist: said, nothing sent */
	r = ctl("delete policy -n shop nothere");
	assert_int_equal(r.rc, EXIT_FAIL);
	assert_non_null(strstr(r.err, "policy nothere not found in namespace shop"));
	assert_string_equal(json_string_value(json_object_get(
				    json_array_get(requests, json_array_size(requests) - 1), "op")),
			    "get");
	ctl_free(&r);
	json_decref(want);
}

/* observe: -n and -l are its namespace and label filters */
static void test_observe_filters(void **state)
{
	struct ctl_run r = ctl("observe -n shop -l app=web --port 80 --namespace x");
	const json_t *req = json_array_get(requests, 0);
	json_t *want = json_loads("{\"op\": \"flows\", \"namespace\": [\"shop\", \"x\"], "
				  "\"label\": [\"app=web\"], \"port\": [\"80\"]}", 0, NULL);

	(void)state;
	assert_int_equal(r.rc, 0);
	if (!json_equal(req, want)) {
		char *s = json_dumps(req, 0);

		print_error("observe sent %s\n", s);
		free(s);
		fail();
	}
	json_decref(want);
	ctl_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_misplaced_words),
		cmocka_unit_test(test_kinds),
		cmocka_unit_test(test_options),
		cmocka_unit_test(test_help),
		cmocka_unit_test(test_delete_named_request),
		cmocka_unit_test(test_observe_filters),
	};
	int ret = cmocka_run_group_tests(tests, NULL, NULL);

	json_decref(answers);
	json_decref(requests);
	return ret;
}
