// SPDX-License-Identifier: Apache-2.0
/*
 * apply --dry-run's decisions that need no agent (cli/apply.c runs them):
 * the flag's value, and the client's checks of the manifests' objects.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "kschema.h"

int dry_run_parse(const char *s, enum dry_run *out)
{
	/* --dry-run alone: client, as kubectl took it before it wanted a value */
	if (!s || !strcmp(s, "client"))
		*out = DRY_CLIENT;
	else if (!strcmp(s, "server"))
		*out = DRY_SERVER;
	else if (!strcmp(s, "none"))
		*out = DRY_NONE;
	else
		return -EINVAL;
	return 0;
}

static const char *source_at(const json_t *sources, size_t i, char *buf, size_t len)
{
	const char *s = json_string_value(json_array_get(sources, i));

	if (s)
		return s;
	snprintf(buf, len, "object %zu", i + 1);
	return buf;
}

int apply_client_check(const json_t *objects, const json_t *sources, enum ks_mode mode,
		       json_t **warnings, char *err, size_t errlen, char **details)
{
	const json_t *obj;
	char src[32];
	size_t i;

	*warnings = NULL;
	*details = NULL;
	json_array_foreach(objects, i, obj) {
		const json_t *meta = json_object_get(obj, "metadata");
		const char *name = json_string_value(json_object_get(meta, "name"));

		if (!ks_kind_known(obj)) {
			snprintf(err, errlen, "%s: apiVersion %s kind %s is not a kind sluice takes "
					      "(see sluicectl --help, Objects); nothing would be "
					      "applied",
				 source_at(sources, i, src, sizeof(src)),
				 json_string_value(json_object_get(obj, "apiVersion"))
					 ?: "(missing)",
				 json_string_value(json_object_get(obj, "kind")) ?: "(missing)");
			return -EINVAL;
		}
		if (!name || !*name) {
			snprintf(err, errlen, "%s: %s: metadata.name is missing or empty; nothing "
					      "would be applied",
				 source_at(sources, i, src, sizeof(src)),
				 json_string_value(json_object_get(obj, "kind")));
			return -EINVAL;
		}
	}
	return ks_apply_check(objects, sources, mode, warnings, err, errlen, details);
}
