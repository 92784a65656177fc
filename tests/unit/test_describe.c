// SPDX-License-Identifier: Apache-2.0
/*
 * The API's describe: a policy's rules in words and the pods each admits
 * (agent/describe.c), on a world of two namespaces and four pods.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "cidr.h"
#include "describe.h"
#include "policy.h"

struct world {
	struct pol_namespace ns[2];
	const struct pol_namespace *nsp[2];
	struct pol_pod pods[4];
	const struct pol_pod *podp[4];
	struct pol_world w;
};

static void labels(const char *text, struct pol_labels *l)
{
	json_t *j = json_loads(text, 0, NULL);
	char err[256] = "";

	assert_non_null(j);
	if (pol_labels_parse(j, "labels", l, err, sizeof(err)))
		fail_msg("labels: %s", err);
	json_decref(j);
}

/* shop {team: red}: web {app: web} 10.1.0.5, db {app: db} 10.2.0.6,
 * web-2 {app: web} 10.3.0.7; dev {team: blue}: web {app: web} 10.4.0.8 */
static int setup(void **state)
{
	static const struct {
		const char *ns, *name, *labels, *ip;
	} pods[] = {
		{ "shop", "web", "{\"app\": \"web\"}", "10.1.0.5" },
		{ "shop", "db", "{\"app\": \"db\"}", "10.2.0.6" },
		{ "shop", "web-2", "{\"app\": \"web\"}", "10.3.0.7" },
		{ "dev", "web", "{\"app\": \"web\"}", "10.4.0.8" },
	};
	struct world *W = calloc(1, sizeof(*W));

	assert_non_null(W);
	W->ns[0].name = "shop";
	labels("{\"team\": \"red\"}", &W->ns[0].labels);
	W->ns[1].name = "dev";
	labels("{\"team\": \"blue\"}", &W->ns[1].labels);
	for (size_t i = 0; i < 4; i++) {
		W->pods[i].ns = (char *)pods[i].ns;
		W->pods[i].name = (char *)pods[i].name;
		labels(pods[i].labels, &W->pods[i].labels);
		assert_int_equal(ip4_parse(pods[i].ip, &W->pods[i].ip), 0);
		W->podp[i] = &W->pods[i];
	}
	W->nsp[0] = &W->ns[0];
	W->nsp[1] = &W->ns[1];
	W->w = (struct pol_world){ .nns = 2, .ns = W->nsp, .npods = 4, .pods = W->podp };
	*state = W;
	return 0;
}

static int teardown(void **state)
{
	struct world *W = *state;

	for (size_t i = 0; i < 2; i++)
		pol_labels_free(&W->ns[i].labels);
	for (size_t i = 0; i < 4; i++)
		pol_labels_free(&W->pods[i].labels);
	free(W);
	return 0;
}

/* The rules of a NetworkPolicy in shop with spec as the describe answer. */
static json_t *rules_of(struct world *W, const char *spec, size_t max)
{
	char doc[2048], err[512] = "";
	struct pol_policy *p = NULL;
	json_t *j, *rules;

	snprintf(doc, sizeof(doc), "{\"apiVersion\": \"networking.k8s.io/v1\", \"kind\": "
		 "\"NetworkPolicy\", \"metadata\": {\"namespace\": \"shop\", \"name\": \"p\"}, "
		 "\"spec\": %s}", spec);
	j = json_loads(doc, 0, NULL);
	assert_non_null(j);
	if (pol_parse(j, &p, err, sizeof(err)))
		fail_msg("%s: %s", spec, err);
	json_decref(j);
	rules = describe_policy_rules(p, &W->w, max);
	pol_free(p);
	assert_non_null(rules);
	return rules;
}

static void expect(const json_t *got, const char *want_text)
{
	json_t *want = json_loads(want_text, 0, NULL);

	assert_non_null(want);
	if (!json_equal(got, want)) {
		char *g = json_dumps(got, JSON_SORT_KEYS);

		fail_msg("got %s\nwant %s", g, want_text);
	}
	json_decref(want);
}

static void test_pod_selector_rule(void **state)
{
	json_t *r = rules_of(*state, "{\"podSelector\": {\"matchLabels\": {\"app\": \"db\"}}, "
				     "\"ingress\": [{\"from\": [{\"podSelector\": {\"matchLabels\": "
				     "{\"app\": \"web\"}}}], \"ports\": [{\"port\": 5432}]}]}", 1000);

	/* web pods of shop only: dev/web is in another namespace */
	expect(r, "[{\"direction\": \"Ingress\", \"index\": 0, \"action\": \"Allow\", "
		  "\"anyPeer\": false, \"peers\": [\"pods app=web in namespace shop\"], "
		  "\"anyPort\": false, \"ports\": [\"TCP/5432\"], "
		  "\"pods\": [\"shop/web\", \"shop/web-2\"], \"podsCount\": 2}]");
	json_decref(r);
}

static void test_namespace_selector_and_ipblock(void **state)
{
	json_t *r = rules_of(*state, "{\"podSelector\": {}, \"policyTypes\": [\"Egress\"], "
				     "\"egress\": [{\"to\": [{\"namespaceSelector\": {"
				     "\"matchExpressions\": [{\"key\": \"team\", \"operator\": "
				     "\"In\", \"values\": [\"blue\"]}]}, \"podSelector\": {"
				     "\"matchLabels\": {\"app\": \"web\"}}}, {\"ipBlock\": {\"cidr\": "
				     "\"10.2.0.0/16\", \"except\": [\"10.2.1.0/24\"]}}], \"ports\": "
				     "[{\"protocol\": \"UDP\", \"port\": 53, \"endPort\": 60}]}]}",
			     1000);

	/* dev/web by its namespace's labels, shop/db by its address */
	expect(r, "[{\"direction\": \"Egress\", \"index\": 0, \"action\": \"Allow\", "
		  "\"anyPeer\": false, \"peers\": [\"pods app=web in namespaces team in (blue)\", "
		  "\"addresses in 10.2.0.0/16 except 10.2.1.0/24\"], \"anyPort\": false, "
		  "\"ports\": [\"UDP/53-60\"], \"pods\": [\"shop/db\", \"dev/web\"], "
		  "\"podsCount\": 2}]");
	json_decref(r);
}

static void test_any_peer_and_the_cap(void **state)
{
	/* from omitted: every pod; the names capped at max, the count is all */
	json_t *r = rules_of(*state, "{\"podSelector\": {}, \"ingress\": [{}]}", 2);

	expect(r, "[{\"direction\": \"Ingress\", \"index\": 0, \"action\": \"Allow\", "
		  "\"anyPeer\": true, \"peers\": [], \"anyPort\": true, \"ports\": [], "
		  "\"pods\": [\"shop/web\", \"shop/db\"], \"podsCount\": 4}]");
	json_decref(r);
	/* no rules at all: nothing to describe (everything is denied) */
	r = rules_of(*state, "{\"podSelector\": {}, \"policyTypes\": [\"Ingress\"]}", 10);
	expect(r, "[]");
	json_decref(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pod_selector_rule, setup, teardown),
		cmocka_unit_test_setup_teardown(test_namespace_selector_and_ipblock, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_any_peer_and_the_cap, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
