// SPDX-License-Identifier: Apache-2.0
/*
 * sluicectl apply --dry-run: client (the manifests read and checked here,
 * nothing sent) or server (the agent runs every check of the apply and says
 * what it would do, changing nothing: docs/API.md, "dryRun").
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
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

/* networkpolicy x/deny-all created (server dry run) */
void print_dry_changes(const json_t *changes, const char *action, const char *suffix)
{
	const json_t *ch;
	size_t i;

	json_array_foreach(changes, i, ch) {
		const json_t *meta = json_object_get(ch, "metadata");
		const char *ns = json_string_value(json_object_get(ch, "namespace"));
		const char *name = json_string_value(json_object_get(ch, "name"));
		const char *kind = str(ch, "kind");

		if (meta) { /* an object of a manifest (client) */
			ns = json_string_value(json_object_get(meta, "namespace"));
			name = json_string_value(json_object_get(meta, "name"));
		}
		for (size_t k = 0; kind[k]; k++)
			putchar(kind[k] >= 'A' && kind[k] <= 'Z' ? kind[k] - 'A' + 'a' : kind[k]);
		printf(" %s%s%s %s %s\n", ns && *ns ? ns : "", ns && *ns ? "/" : "",
		       name ? name : "-", action ? action : str(ch, "action"), suffix);
	}
}

int print_server_dry_run(const json_t *r)
{
	print_dry_changes(json_object_get(r, "changes"), NULL, "(server dry run)");
	return 0;
}

int apply_client_dry_run(const struct opts *o, const json_t *req)
{
	json_t *warnings = NULL, *w;
	char err[2048], *details = NULL;
	size_t i;
	int ret;

	ret = apply_client_check(json_object_get(req, "objects"), json_object_get(req, "sources"),
				 o->validate, &warnings, err, sizeof(err), &details);
	if (ret) {
		fprintf(stderr, "sluicectl: %s\n", ret == -ENOMEM ? "out of memory" : err);
		if (details)
			fprintf(stderr, "  %s\n", details);
		free(details);
		return EXIT_FAIL;
	}
	json_array_foreach(warnings, i, w)
		fprintf(stderr, "Warning: %s\n", json_string_value(w));
	json_decref(warnings);
	if (o->json_out) { /* the request that would be sent */
		json_dumpf(req, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
		putchar('\n');
	} else {
		print_dry_changes(json_object_get(req, "objects"), "checked", "(dry run)");
	}
	return EXIT_OK;
}
