/* SPDX-License-Identifier: Apache-2.0 */
/* The API's describe: what `get` does not say about an object. */
#ifndef SLUICE_AGENT_DESCRIBE_H
#define SLUICE_AGENT_DESCRIBE_H

#include <jansson.h>

#include "policy.h"

struct agent;

/* The rules of p in words, each with the pods of w it admits (at most
 * max names, and their count): a JSON array (docs/API.md, describe), NULL
 * when out of memory. */
json_t *describe_policy_rules(const struct pol_policy *p, const struct pol_world *w, size_t max);
/* NetworkPolicy, SluiceNetworkPolicy or SluiceClusterNetworkPolicy */
const char *describe_kind_word(enum pol_kind k);
/* op "describe" (describe_op.c): {"what": "policy", "kind"?, "namespace", "name"} */
json_t *op_describe(struct agent *a, const json_t *req);

#endif
