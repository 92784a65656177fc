// SPDX-License-Identifier: Apache-2.0
/*
 * sluicectl apply --dry-run: client (the manifests read and checked here,
 * nothing sent) or server (the agent runs every check of the apply and says
 * what it would do, changing nothing: docs/API.md, "dryRun").
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kschema.h"
#include "api.h"

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

/* An agent older than dryRun ignores it and applies: say so, loudly. */
static bool agent_did_dry_run(const json_t *r)
{
	const char *d = json_string_value(json_object_get(r, "dryRun"));

	if (d && !strcmp(d, "server"))
		return true;
	fprintf(stderr, "sluicectl: the agent does not know \"dryRun\" (it is older than this "
		"sluicectl): the objects below WERE APPLIED\n");
	return false;
}

int print_server_dry_run(const json_t *r)
{
	print_dry_changes(json_object_get(r, "changes"), NULL,
			  agent_did_dry_run(r) ? "(server dry run)" : "(APPLIED: not a dry run)");
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
	if (o->output == OUT_JSON) { /* the request that would be sent */
		json_dumpf(req, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
		putchar('\n');
	} else {
		print_dry_changes(json_object_get(req, "objects"), "checked", "(dry run)");
	}
	return EXIT_OK;
}

int run_apply(const struct cmd *c, struct opts *o)
{
	struct cmd dry = *c;
	json_t *req;
	int ret;

	if (o->dry_run == DRY_SERVER)
		dry.print = print_server_dry_run;
	if (o->dry_run != DRY_CLIENT)
		return run_request(&dry, o);
	req = json_pack("{s:s}", "op", c->op);
	if (!req) {
		fprintf(stderr, "sluicectl: out of memory\n");
		return EXIT_FAIL;
	}
	ret = build_objects_request(c, o, req);
	if (!ret)
		ret = apply_client_dry_run(o, req);
	json_decref(req);
	return ret;
}
