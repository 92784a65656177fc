// SPDX-License-Identifier: Apache-2.0
/* Field validation of manifests (lib/kschema.c): unknown and duplicate
 * fields in every kind, nested paths, suggestions, and the three modes of
 * an apply (strict, warn, ignore). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kschema.h"
#include "manifest.h"

/* One object of each kind agent/store.c takes, valid, written with the
 * standard fields sluice does not read but the API server accepts; "%s"
 * is where a test puts an extra field (nothing, or ", X: 1") at the level
 * the kind's row says. */
static const struct kind_case {
	const char *kind;
	const char *yaml;	/* one printf argument: the extra text */
	const char *where;	/* the path the extra field gets */
	const char *label;	/* how errors name the object */
} kinds[] = {
	{ "Namespace",
	  "apiVersion: v1\nkind: Namespace\n"
	  "metadata: {name: shop, labels: {a: b}, annotations: {x: y}, uid: u1,\n"
	  "  resourceVersion: '7', creationTimestamp: '2024-01-01T00:00:00Z', generation: 1,\n"
	  "  finalizers: [f], managedFields: [{manager: kubectl, anything: 1}]%s}\n"
	  "spec: {finalizers: [kubernetes]}\nstatus: {phase: Active, anything: 1}\n",
	  "metadata.", "Namespace shop" },
	{ "Pod",
	  "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop, labels: {app: web},\n"
	  "  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: rs, uid: u,\n"
	  "    controller: true, blockOwnerDeletion: true}]}\n"
	  "spec:\n  nodeName: n1\n  containers:\n  - name: c\n    image: nginx\n"
	  "    ports: [{containerPort: 80, name: http, protocol: TCP%s}]\n"
	  "status: {phase: Running, podIP: 10.0.0.5, podIPs: [{ip: 10.0.0.5}], qosClass: x}\n",
	  "spec.containers[0].ports[0].", "Pod shop/web" },
	{ "Node",
	  "apiVersion: v1\nkind: Node\nmetadata: {name: n1, labels: {a: b}}\n"
	  "spec: {podCIDR: 10.244.1.0/24, podCIDRs: [10.244.1.0/24], providerID: p,\n"
	  "  taints: [{key: k, effect: NoSchedule}]%s}\n"
	  "status: {addresses: [{type: InternalIP, address: 192.0.2.1}], capacity: {cpu: 2}}\n",
	  "spec.", "Node n1" },
	{ "Service",
	  "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\n"
	  "spec:\n  type: ClusterIP\n  clusterIP: 10.96.0.10\n  selector: {app: web}\n"
	  "  ipFamilies: [IPv4]\n  ipFamilyPolicy: SingleStack\n"
	  "  sessionAffinityConfig: {clientIP: {timeoutSeconds: 10}}\n"
	  "  ports: [{name: http, port: 80, targetPort: 8080, protocol: TCP%s}]\n"
	  "status: {loadBalancer: {ingress: [{ip: 192.0.2.9, ipMode: VIP}]}}\n",
	  "spec.ports[0].", "Service shop/web" },
	{ "EndpointSlice",
	  "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
	  "metadata: {name: web-1, namespace: shop, labels: {kubernetes.io/service-name: web}}\n"
	  "addressType: IPv4\n"
	  "endpoints: [{addresses: [10.0.0.5], conditions: {ready: true%s}, nodeName: n1,\n"
	  "  targetRef: {kind: Pod, name: web, namespace: shop}, zone: z}]\n"
	  "ports: [{name: http, port: 8080, protocol: TCP}]\n",
	  "endpoints[0].conditions.", "EndpointSlice shop/web-1" },
	{ "SluicePrefilter",
	  "apiVersion: sluice.io/v1alpha1\nkind: SluicePrefilter\nmetadata: {name: scanners}\n"
	  "spec: {deny: [203.0.113.0/24], except: [203.0.113.9/32],\n"
	  "  ports: [{protocol: TCP, port: 443}],\n"
	  "  nodeSelector: {matchLabels: {edge: 'true'}%s}}\n",
	  "spec.nodeSelector.", "SluicePrefilter scanners" },
	{ "NetworkPolicy",
	  "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
	  "metadata: {name: web, namespace: shop}\n"
	  "spec:\n  podSelector: {matchLabels: {app: web}}\n  policyTypes: [Ingress, Egress]\n"
	  "  ingress:\n  - from:\n    - podSelector: {matchExpressions: [{key: a, operator: In,"
	  " values: [b]}]}\n      namespaceSelector: {}\n"
	  "    - ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]%s}\n"
	  "    ports: [{protocol: TCP, port: 80, endPort: 90}]\n"
	  "  egress: [{to: [{podSelector: {}}], ports: [{port: 53, protocol: UDP}]}]\n",
	  "spec.ingress[0].from[1].ipBlock.", "NetworkPolicy shop/web" },
	{ "SluiceNetworkPolicy",
	  "apiVersion: sluice.io/v1alpha1\nkind: SluiceNetworkPolicy\nmetadata: {name: db}\n"
	  "spec:\n  podSelector: {}\n  mode: Audit\n"
	  "  ingress: [{action: Deny, from: [{podSelector: {}}], icmp: [{type: 8, code: 0%s}]}]\n",
	  "spec.ingress[0].icmp[0].", "SluiceNetworkPolicy default/db" },
	{ "SluiceClusterNetworkPolicy",
	  "apiVersion: sluice.io/v1alpha1\nkind: SluiceClusterNetworkPolicy\n"
	  "metadata: {name: out}\n"
	  "spec:\n  podSelector: {}\n  namespaceSelector: {matchLabels: {a: b}}\n"
	  "  egress: [{action: Allow, to: [{ipBlock: {cidr: 10.0.0.0/8}}],\n"
	  "    ports: [{port: 443%s}]}]\n",
	  "spec.egress[0].ports[0].", "SluiceClusterNetworkPolicy out" },
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

/* The objects of text (which must read). */
static json_t *read_objects(const char *text, json_t **sources)
{
	json_t *objects = NULL;
	char err[1024];

	if (manifest_read_mem("app.yaml", text, strlen(text), &objects, sources, err,
			      sizeof(err)))
		fail_msg("the manifest does not read: %s\n%s", err, text);
	return objects;
}

static char *kind_text(const struct kind_case *k, const char *extra)
{
	char *text;

	assert_true(asprintf(&text, k->yaml, extra) > 0);
	return text;
}

/* The lines ks_check_objects gives text, one string. */
static json_t *problems(const char *text, int *n)
{
	json_t *sources = NULL, *objects = read_objects(text, &sources), *out = json_array();

	*n = ks_check_objects(objects, sources, out);
	json_decref(objects);
	json_decref(sources);
	return out;
}

static void test_valid_objects_pass(void **state)
{
	(void)state;
	for (size_t i = 0; i < NKINDS; i++) {
		char *text = kind_text(&kinds[i], "");
		int n;
		json_t *out = problems(text, &n);

		if (n != 0)
			fail_msg("%s: %s", kinds[i].kind, json_string_value(json_array_get(out, 0)));
		assert_int_equal(json_array_size(out), 0);
		json_decref(out);
		free(text);
	}
}

/* An unknown field in each kind's checked subtree is named with its path
 * and the object's source and name; a near miss gets a suggestion. */
static void test_unknown_field_every_kind(void **state)
{
	(void)state;
	for (size_t i = 0; i < NKINDS; i++) {
		char *text = kind_text(&kinds[i], ", bogusField: 1"), want[512];
		int n;
		json_t *out = problems(text, &n);

		snprintf(want, sizeof(want), "app.yaml: document 1: %s: %sbogusField: unknown field",
			 kinds[i].label, kinds[i].where);
		assert_int_equal(n, 1);
		assert_string_equal(json_string_value(json_array_get(out, 0)), want);
		json_decref(out);
		free(text);

		/* at the top level too */
		text = kind_text(&kinds[i], "");
		{
			char *more;

			assert_true(asprintf(&more, "%sspex: {}\n", text) > 0);
			out = problems(more, &n);
			/* an EndpointSlice has no spec: nothing to suggest */
			snprintf(want, sizeof(want), "app.yaml: document 1: %s: spex: unknown field%s",
				 kinds[i].label, strcmp(kinds[i].kind, "EndpointSlice")
							 ? "; did you mean spec?" : "");
			assert_int_equal(n, 1);
			assert_string_equal(json_string_value(json_array_get(out, 0)), want);
			json_decref(out);
			free(more);
		}
		free(text);
	}
}

/* A key written twice is refused by the reader in every kind, with the
 * field's path and the document, as validation names fields. */
static void test_duplicate_field_every_kind(void **state)
{
	(void)state;
	for (size_t i = 0; i < NKINDS; i++) {
		/* the extra field repeats the row's last known field at that level:
		 * a key that exists there, so only the duplicate is wrong */
		static const char *const dup[NKINDS] = { "uid", "name", "providerID", "port",
							  "ready", "matchLabels", "cidr", "type",
							  "port" };
		char *text, extra[64], want[256], err[1024];
		json_t *objects = NULL, *sources = NULL;

		snprintf(extra, sizeof(extra), ", %s: %s", dup[i],
			 !strcmp(dup[i], "matchLabels") ? "{}" : "1");
		text = kind_text(&kinds[i], extra);
		assert_int_equal(manifest_read_mem("app.yaml", text, strlen(text), &objects,
						   &sources, err, sizeof(err)), -EINVAL);
		snprintf(want, sizeof(want), ": %s%s: duplicate field; each key may appear once "
			 "in a mapping", kinds[i].where, dup[i]);
		if (!strstr(err, want) || !strstr(err, "app.yaml: document 1, line "))
			fail_msg("%s: got \"%s\", want \"%s\"", kinds[i].kind, err, want);
		free(text);
	}
}

static void test_nested_path_and_suggestions(void **state)
{
	static const char np[] =
		"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
		"metadata: {name: web, namespace: shop, lables: {a: b}}\n"
		"spec:\n  podSelector: {}\n  ingres: []\n"
		"  ingress:\n  - from: [{podSelecter: {matchLabels: {a: b}}}]\n"
		"    ports: [{protocl: TCP, zzzz: 1}]\n";
	int n;
	json_t *out;

	(void)state;
	out = problems(np, &n);
	assert_int_equal(n, 5);
	assert_string_equal(json_string_value(json_array_get(out, 0)),
			    "app.yaml: document 1: NetworkPolicy shop/web: metadata.lables: "
			    "unknown field; did you mean metadata.labels?");
	assert_string_equal(json_string_value(json_array_get(out, 1)),
			    "app.yaml: document 1: NetworkPolicy shop/web: spec.ingres: "
			    "unknown field; did you mean spec.ingress?");
	assert_string_equal(json_string_value(json_array_get(out, 2)),
			    "app.yaml: document 1: NetworkPolicy shop/web: "
			    "spec.ingress[0].from[0].podSelecter: unknown field; did you mean "
			    "spec.ingress[0].from[0].podSelector?");
	assert_string_equal(json_string_value(json_array_get(out, 3)),
			    "app.yaml: document 1: NetworkPolicy shop/web: "
			    "spec.ingress[0].ports[0].protocl: unknown field; did you mean "
			    "spec.ingress[0].ports[0].protocol?");
	/* nothing close: no suggestion */
	assert_string_equal(json_string_value(json_array_get(out, 4)),
			    "app.yaml: document 1: NetworkPolicy shop/web: "
			    "spec.ingress[0].ports[0].zzzz: unknown field");
	json_decref(out);

	assert_int_equal(ks_edit_distance("ingres", "ingress"), 1);
	assert_int_equal(ks_edit_distance("podSelecter", "podSelector"), 1);
	assert_int_equal(ks_edit_distance("", "abc"), 3);
	assert_int_equal(ks_edit_distance("kitten", "sitting"), 3);
	assert_int_equal(ks_edit_distance("same", "same"), 0);
}

/* A Pod's spec and containers are open (dozens of upstream fields, more
 * each release), its container ports closed; sluice kinds' CRDs have no
 * status. The second document is named document 2. */
static void test_open_subtrees_and_sources(void **state)
{
	static const char text[] =
		"apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n"
		"spec: {futureField: 1, containers: [{image: x, resizePolicy: []}]}\n"
		"---\n"
		"apiVersion: sluice.io/v1alpha1\nkind: SluiceNetworkPolicy\n"
		"metadata: {name: p, namespace: x}\nspec: {podSelector: {}}\nstatus: {}\n"
		"---\n"
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n";
	int n;
	json_t *out;

	(void)state;
	out = problems(text, &n);
	assert_int_equal(n, 1);
	assert_string_equal(json_string_value(json_array_get(out, 0)),
			    "app.yaml: document 2: SluiceNetworkPolicy x/p: status: unknown field");
	json_decref(out);
}

/* Past KS_MAX_PROBLEMS lines, one more counts the rest. */
static void test_many_unknown_fields(void **state)
{
	json_t *objects = json_array(), *out = json_array();

	(void)state;
	for (int i = 0; i < KS_MAX_PROBLEMS + 5; i++)
		json_array_append_new(objects, json_pack("{s:s, s:s, s:{s:s}, s:i}", "apiVersion",
							 "v1", "kind", "Namespace", "metadata",
							 "name", "n", "junk", i));
	assert_int_equal(ks_check_objects(objects, NULL, out), KS_MAX_PROBLEMS + 5);
	assert_int_equal(json_array_size(out), KS_MAX_PROBLEMS + 1);
	assert_string_equal(json_string_value(json_array_get(out, 0)),
			    "object 1: Namespace n: junk: unknown field");
	assert_string_equal(json_string_value(json_array_get(out, KS_MAX_PROBLEMS)),
			    "... and 5 more unknown fields");
	json_decref(objects);
	json_decref(out);
}

static void test_mode_parse(void **state)
{
	enum ks_mode m = KS_IGNORE;

	(void)state;
	assert_int_equal(ks_mode_parse("strict", &m), 0);
	assert_int_equal(m, KS_STRICT);
	assert_int_equal(ks_mode_parse("warn", &m), 0);
	assert_int_equal(m, KS_WARN);
	assert_int_equal(ks_mode_parse("ignore", &m), 0);
	assert_int_equal(m, KS_IGNORE);
	assert_int_equal(ks_mode_parse("true", &m), 0);
	assert_int_equal(m, KS_STRICT);
	assert_int_equal(ks_mode_parse("false", &m), 0);
	assert_int_equal(m, KS_IGNORE);
	assert_int_equal(ks_mode_parse("Strict", &m), -EINVAL);
	assert_int_equal(ks_mode_parse("", &m), -EINVAL);
	assert_int_equal(ks_mode_parse(NULL, &m), -EINVAL);
	assert_string_equal(ks_mode_name(KS_STRICT), "strict");
	assert_string_equal(ks_mode_name(KS_WARN), "warn");
	assert_string_equal(ks_mode_name(KS_IGNORE), "ignore");
}

/* The three modes of an apply: strict refuses naming every field, warn
 * goes on with them as warnings, ignore goes on without a word. */
static void test_apply_modes(void **state)
{
	static const char typo[] =
		"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
		"metadata: {name: web, namespace: shop}\n"
		"spec: {podSelector: {}, ingres: [{}], egres: []}\n";
	static const char clean[] =
		"apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n";
	json_t *sources = NULL, *objects = read_objects(typo, &sources), *warnings;
	char err[1024] = "", *details = NULL;

	(void)state;
	assert_int_equal(ks_apply_check(objects, sources, KS_STRICT, &warnings, err, sizeof(err),
					&details), -EINVAL);
	assert_null(warnings);
	assert_string_equal(err, "app.yaml: document 1: NetworkPolicy shop/web: spec.ingres: "
				 "unknown field; did you mean spec.ingress? (and the unknown "
				 "fields below); nothing was applied");
	assert_non_null(details);
	assert_string_equal(details,
			    "app.yaml: document 1: NetworkPolicy shop/web: spec.ingres: unknown "
			    "field; did you mean spec.ingress?\n"
			    "  app.yaml: document 1: NetworkPolicy shop/web: spec.egres: unknown "
			    "field; did you mean spec.egress?");
	free(details);

	assert_int_equal(ks_apply_check(objects, sources, KS_WARN, &warnings, err, sizeof(err),
					&details), 0);
	assert_null(details);
	assert_non_null(warnings);
	assert_int_equal(json_array_size(warnings), 2);
	assert_string_equal(json_string_value(json_array_get(warnings, 1)),
			    "app.yaml: document 1: NetworkPolicy shop/web: spec.egres: unknown "
			    "field; did you mean spec.egress?");
	json_decref(warnings);

	assert_int_equal(ks_apply_check(objects, sources, KS_IGNORE, &warnings, err, sizeof(err),
					&details), 0);
	assert_null(warnings);
	assert_null(details);
	json_decref(objects);
	json_decref(sources);

	/* one unknown field: no details; a clean file passes in every mode */
	objects = read_objects("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\nx: 1\n",
			       &sources);
	assert_int_equal(ks_apply_check(objects, sources, KS_STRICT, &warnings, err, sizeof(err),
					&details), -EINVAL);
	assert_string_equal(err, "app.yaml: document 1: Namespace a: x: unknown field; nothing "
				 "was applied");
	assert_null(details);
	json_decref(objects);
	json_decref(sources);
	objects = read_objects(clean, &sources);
	for (enum ks_mode m = KS_STRICT; m <= KS_IGNORE; m++) {
		assert_int_equal(ks_apply_check(objects, sources, m, &warnings, err, sizeof(err),
						&details), 0);
		assert_null(warnings);
		assert_null(details);
	}
	json_decref(objects);
	json_decref(sources);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_objects_pass),
		cmocka_unit_test(test_unknown_field_every_kind),
		cmocka_unit_test(test_duplicate_field_every_kind),
		cmocka_unit_test(test_nested_path_and_suggestions),
		cmocka_unit_test(test_open_subtrees_and_sources),
		cmocka_unit_test(test_many_unknown_fields),
		cmocka_unit_test(test_mode_parse),
		cmocka_unit_test(test_apply_modes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
