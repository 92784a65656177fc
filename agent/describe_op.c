// SPDX-License-Identifier: Apache-2.0
/* The API's describe op: what get does not say about a policy (describe.c
 * puts its rules in words). */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "describe.h"
#include "reconcile.h"

/* the names of the pods a rule admits, as get's selectedPods */
#define DESCRIBE_PODS_MAX 1000

json_t *op_describe(struct agent *a, const json_t *req)
{
	const char *what = json_string_value(json_object_get(req, "what"));
	const char *kind = json_string_value(json_object_get(req, "kind"));
	const char *ns = json_string_value(json_object_get(req, "namespace")) ?: "";
	const char *name = json_string_value(json_object_get(req, "name"));
	struct store_local *locals = NULL;
	const struct pol_policy *found = NULL;
	struct store_view v;
	size_t nlocals;
	uint32_t node_ips[2];
	json_t *rules, *resp;

	if (!what || strcmp(what, "policy") || !name)
		return api_error(CNI_ERR_INVALID_CONFIG, "describe: \"what\" must be \"policy\" "
				 "and \"name\" is needed", "\"kind\" and \"namespace\" as get "
				 "policies gives them");
	/* every pod, not this node's only: a rule admits pods anywhere */
	if (agent_view_build(a, &v, &locals, &nlocals, node_ips))
		return api_error(CNI_ERR_INTERNAL, "out of memory", NULL);
	for (size_t i = 0; !found && i < v.w.npol; i++) {
		const struct pol_policy *p = v.w.pol[i];

		if (!strcmp(p->name, name) && !strcmp(p->ns ? p->ns : "", ns) &&
		    (!kind || !strcmp(kind, describe_kind_word(p->kind))))
			found = p;
	}
	if (!found) {
		resp = api_error(CNI_ERR_INVALID_CONFIG, "describe: no such policy",
				 "see sluicectl get policies -A");
		goto cleanup;
	}
	rules = describe_policy_rules(found, &v.w, DESCRIBE_PODS_MAX);
	resp = rules ? json_pack("{s:b, s:o}", "ok", 1, "result",
					 json_pack("{s:s, s:s, s:s, s:o}", "kind", describe_kind_word(found->kind),
					"namespace", ns, "name", name, "rules", rules))
		     : api_error(CNI_ERR_INTERNAL, "out of memory", NULL);
cleanup:
	store_view_free(&v);
	free(locals);
	return resp;
}
