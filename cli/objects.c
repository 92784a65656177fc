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
