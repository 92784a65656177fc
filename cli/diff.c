// SPDX-License-Identifier: Apache-2.0
/*
 * sluicectl diff -f FILE: what apply would change, per object, as a unified
 * diff from the object the agent stores to the file's. The agent decides
 * (an apply with dryRun "server" and live: docs/API.md); objects are shown
 * as normalized JSON (sorted keys, two-space indent), the form the agent
 * compares them in, and diffed by cli/udiff.c. Exit as kubectl diff: 0 no
 * differences, 1 differences, 2 an error, 3 the agent cannot be reached.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "cli.h"
#include "kschema.h"
#include "udiff.h"

#define DIFF_CONTEXT 3

/* obj as normalized JSON with a final newline; "" for NULL (no object). */
static char *normalized(const json_t *obj)
{
	char *text, *nl;
	size_t n;

	if (!obj)
		return strdup("");
	text = json_dumps(obj, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (!text)
		return NULL;
	n = strlen(text);
	nl = realloc(text, n + 2);
	if (!nl) {
		free(text);
		return NULL;
	}
	nl[n] = '\n';
	nl[n + 1] = '\0';
	return nl;
}

int diff_object(FILE *f, const json_t *live, const json_t *obj, const char *kind, const char *ns,
		const char *name, const char *source)
{
	char *a = normalized(live), *b = normalized(obj), la[600], lb[600];
	int ret = -1;

	if (!a || !b)
		goto cleanup;
	snprintf(la, sizeof(la), "live/%s/%s%s%s", kind, ns && *ns ? ns : "", ns && *ns ? "/" : "",
		 name);
	snprintf(lb, sizeof(lb), "%s/%s%s%s (%s)", kind, ns && *ns ? ns : "", ns && *ns ? "/" : "",
		 name, source);
	ret = udiff_print(f, a, b, live ? la : "/dev/null", lb, DIFF_CONTEXT);
cleanup:
	free(a);
	free(b);
	return ret;
}

const char help_diff[] =
	"Usage: sluicectl diff -f FILE [-f FILE...] [--validate=strict|warn|ignore]\n"
	"\n"
	"What apply -f FILE would change, changing nothing: for each object apply would\n"
	"create or configure, a unified diff from the object the agent has (--- live/KIND/NAME,\n"
	"/dev/null when it has none) to the file's (+++), both as JSON with sorted keys, the\n"
	"form the agent compares them in. Objects apply would leave unchanged are not shown.\n"
	"The agent decides, with every check of apply (a dry run, docs/API.md \"dryRun\").\n"
	"\n"
	"Exit status, as kubectl diff: 0 no differences, 1 differences, 2 an error (a\n"
	"manifest that cannot be read, an object the agent refuses), 3 no agent.\n"
	"\n"
	"Examples:\n"
	"  sluicectl diff -f policies.yaml\n"
	"  sluicectl diff -f policies.yaml && echo nothing to apply\n";

/* The request of the files: an apply, dry run, with the stored objects. */
static int diff_request(const struct cmd *c, const struct opts *o, json_t **out)
{
	json_t *req = json_pack("{s:s, s:s, s:b, s:s}", "op", "apply", "dryRun", "server", "live", 1,
				"validate", ks_mode_name(o->validate));

	*out = NULL;
	if (!req) {
		fprintf(stderr, "sluicectl: out of memory\n");
		return EXIT_DIFF_ERROR;
	}
	if (build_objects_request(c, o, req)) {
		json_decref(req);
		return EXIT_DIFF_ERROR;
	}
	*out = req;
	return 0;
}

int run_diff(const struct cmd *c, struct opts *o)
{
	const json_t *objects, *sources, *ch, *result, *w;
	json_t *req = NULL, *resp = NULL;
	char err[512];
	size_t i;
	int ret, differ = 0;

	ret = diff_request(c, o, &req);
	if (ret)
		return ret;
	ret = EXIT_DIFF_ERROR;
	objects = json_object_get(req, "objects");
	sources = json_object_get(req, "sources");
	if (api_call(o->socket_path, req, &resp, TIMEOUT_OBJECTS_MS, err, sizeof(err))) {
		fprintf(stderr, "sluicectl: %s\n", err);
		ret = EXIT_UNREACHABLE;
		goto cleanup;
	}
	if (!json_is_true(json_object_get(resp, "ok"))) {
		print_agent_error(resp);
		goto cleanup;
	}
	result = json_object_get(resp, "result");
	json_array_foreach(json_object_get(result, "warnings"), i, w)
		fprintf(stderr, "Warning: %s\n", json_string_value(w));
	if (strcmp(str(result, "dryRun"), "server")) {
		fprintf(stderr, "sluicectl: the agent does not know \"dryRun\" (it is older than "
			"this sluicectl) and APPLIED the objects; diff needs an agent of this "
			"version\n");
		goto cleanup;
	}
	if (json_array_size(json_object_get(result, "changes")) != json_array_size(objects)) {
		fprintf(stderr, "sluicectl: the agent's dry run answered %zu changes for %zu "
			"objects\n", json_array_size(json_object_get(result, "changes")),
			json_array_size(objects));
		goto cleanup;
	}
	json_array_foreach(json_object_get(result, "changes"), i, ch) {
		const char *action = str(ch, "action");
		int r;

		/* The agent's decision, not the texts': unchanged is no diff. */
		if (!strcmp(action, "unchanged"))
			continue;
		r = diff_object(stdout, json_object_get(ch, "live"), json_array_get(objects, i),
				str(ch, "kind"), json_string_value(json_object_get(ch, "namespace")),
				str(ch, "name"), json_string_value(json_array_get(sources, i))
							 ?: "file");
		if (r < 0) {
			fprintf(stderr, "sluicectl: out of memory\n");
			goto cleanup;
		}
		/* configured with equal texts cannot happen (the agent compares
		 * the same normalized form); count it as a difference anyway. */
		differ = 1;
	}
	ret = differ ? EXIT_FAIL : EXIT_OK;
cleanup:
	json_decref(req);
	json_decref(resp);
	return ret;
}
