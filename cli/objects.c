// SPDX-License-Identifier: Apache-2.0
/* sluicectl apply and delete -f: manifests read, the agent's changes printed. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kschema.h"
#include "manifest.h"

/* networkpolicy x/deny-all created; namespace x unchanged */
int print_changes(const json_t *r)
{
	const json_t *changes = json_object_get(r, "changes"), *ch;
	size_t i;

	json_array_foreach(changes, i, ch) {
		const char *ns = json_string_value(json_object_get(ch, "namespace"));
		const char *kind = str(ch, "kind");
		size_t k;

		for (k = 0; kind[k]; k++)
			putchar(kind[k] >= 'A' && kind[k] <= 'Z' ? kind[k] - 'A' + 'a' : kind[k]);
		printf(" %s%s%s %s", ns && *ns ? ns : "", ns && *ns ? "/" : "", str(ch, "name"),
		       str(ch, "action"));
		if (json_string_value(json_object_get(ch, "note")))
			printf(" (%s)", json_string_value(json_object_get(ch, "note")));
		putchar('\n');
	}
	return 0;
}

/* apply/delete: every manifest read before anything is sent. */
int build_objects_request(const struct cmd *c, const struct opts *o, json_t *req)
{
	json_t *objects = json_array(), *sources = json_array(), *objs = NULL, *srcs = NULL;
	char err[1024];
	size_t i;
	int ret;

	if (!objects || !sources) {
		fprintf(stderr, "sluicectl: out of memory\n");
		ret = EXIT_FAIL;
		goto cleanup;
	}
	for (i = 0; i < o->nfiles; i++) {
		if (manifest_read(o->files[i], &objs, &srcs, err, sizeof(err))) {
			fprintf(stderr, "sluicectl: %s\n", err);
			ret = EXIT_FAIL;
			goto cleanup;
		}
		if (json_array_extend(objects, objs) || json_array_extend(sources, srcs)) {
			fprintf(stderr, "sluicectl: out of memory\n");
			ret = EXIT_FAIL;
			goto cleanup;
		}
		json_decref(objs);
		json_decref(srcs);
		objs = srcs = NULL;
	}
	if (!json_array_size(objects)) {
		fprintf(stderr, "sluicectl: no objects in %s%s; nothing to %s\n",
			strcmp(o->files[0], "-") ? o->files[0] : MANIFEST_STDIN_LABEL,
			o->nfiles > 1 ? " and the other files" : "", c->op);
		ret = EXIT_FAIL;
		goto cleanup;
	}
	if (json_object_set(req, "objects", objects) || json_object_set(req, "sources", sources) ||
	    (c->kind == CMD_DELETE &&
	     json_object_set_new(req, "ignoreNotFound", json_boolean(o->ignore_not_found))) ||
	    (c->kind == CMD_APPLY &&
	     json_object_set_new(req, "validate", json_string(ks_mode_name(o->validate))))) {
		fprintf(stderr, "sluicectl: out of memory\n");
		ret = EXIT_FAIL;
		goto cleanup;
	}
	ret = 0;
cleanup:
	json_decref(objs);
	json_decref(srcs);
	json_decref(objects);
	json_decref(sources);
	return ret;
}

/* The policy kind a `delete policy NAME` means: the one kind of policy
 * by that name, looked up in the agent's list. NULL (with the reason on
 * stderr) when there is none or several. */
static const char *policy_kind_of(const struct cmd *c, const struct opts *o, const char *word)
{
	struct cmd one = *c;
	struct get_filter f;
	json_t *items = NULL;
	const char *kind = NULL;
	char *names[1] = { (char *)word };
	const json_t *it;
	size_t i;

	one.names = names;
	one.nnames = 1;
	if (get_items(&one, o, &f, &items))
		return NULL;
	json_array_foreach(items, i, it) {
		const char *k = json_string_value(json_object_get(it, "kind"));

		if (kind && k && strcmp(kind, k)) {
			fprintf(stderr, "sluicectl: %s is both a %s and a %s: name the kind "
				"(delete networkpolicy|sluicenetworkpolicy|"
				"sluiceclusternetworkpolicy %s)\n", word, kind, k, word);
			kind = NULL;
			goto cleanup;
		}
		/* the string lives in the kinds table, not in items */
		kind = k && kind_lookup(k) ? kind_lookup(k)->policy_kind : kind;
	}
	if (!kind && !o->ignore_not_found)
		fprintf(stderr, "sluicectl: policy %s not found%s%s (sluicectl get policies -A "
			"lists them)\n", word, strchr(word, '/') || !f.ns ? "" : " in namespace ",
			strchr(word, '/') || !f.ns ? "" : f.ns);
cleanup:
	json_decref(items);
	get_filter_free(&f);
	return kind;
}

int build_named_delete(const struct cmd *c, const struct opts *o, json_t *req)
{
	const struct kind *k = c->kind_of;
	json_t *objects = json_array(), *sources = json_array();
	int ret = EXIT_FAIL;

	if (!k->object_kind && k->what != GET_POLICIES) {
		fprintf(stderr, "sluicectl: %s cannot be deleted: %s\n", k->names[0],
			k->what == GET_IDENTITIES ? "the agent computes them from the pods' labels"
						  : "an endpoint goes with its pod's CNI DEL");
		ret = EXIT_USAGE;
		goto cleanup;
	}
	if (!objects || !sources)
		goto oom;
	for (size_t i = 0; i < c->nnames; i++) {
		const char *word = c->names[i], *slash = strchr(word, '/');
		const char *kind = k->object_kind, *api = k->api_version;
		const char *ns = o->namespace ? o->namespace : "default";
		char nsbuf[256], src[600];
		json_t *meta;

		if (slash && !k->namespaced) {
			fprintf(stderr, "sluicectl: '%s': %s is not in a namespace: give its NAME "
				"alone\n", word, k->names[0]);
			ret = EXIT_USAGE;
			goto cleanup;
		}
		if (slash) {
			snprintf(nsbuf, sizeof(nsbuf), "%.*s", (int)(slash - word), word);
			ns = nsbuf;
		}
		if (!kind) {
			/* policy NAME: whichever kind of policy has that name */
			kind = policy_kind_of(c, o, word);
			if (!kind && o->ignore_not_found)
				continue;
			if (!kind)
				goto cleanup;
			api = kind_lookup(kind)->api_version;
		}
		meta = json_pack("{s:s}", "name", slash ? slash + 1 : word);
		if (meta && k->namespaced && strcmp(kind, "SluiceClusterNetworkPolicy") &&
		    json_object_set_new(meta, "namespace", json_string(ns))) {
			json_decref(meta);
			goto oom;
		}
		snprintf(src, sizeof(src), "delete %s %s", k->names[0], word);
		if (!meta || json_array_append_new(objects, json_pack("{s:s, s:s, s:o}", "apiVersion",
								      api, "kind", kind, "metadata",
								      meta)) ||
		    json_array_append_new(sources, json_string(src)))
			goto oom;
	}
	/* every name missing with --ignore-not-found: no "objects", nothing
	 * to send (the caller sees that and is done) */
	if (json_array_size(objects) &&
	    (json_object_set(req, "objects", objects) || json_object_set(req, "sources", sources) ||
	     json_object_set_new(req, "ignoreNotFound", json_boolean(o->ignore_not_found))))
		goto oom;
	ret = EXIT_OK;
	goto cleanup;
oom:
	fprintf(stderr, "sluicectl: out of memory\n");
	ret = EXIT_FAIL;
cleanup:
	json_decref(objects);
	json_decref(sources);
	return ret;
}
