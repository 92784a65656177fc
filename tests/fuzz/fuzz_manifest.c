// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: a manifest as `sluicectl apply -f` reads it
 * (lib/manifest.c): YAML documents or JSON texts, Lists, anchors and
 * merge keys. A manifest that reads must give one source per object and
 * objects that are mappings with string apiVersion and kind, or the
 * target aborts; a failure must leave both arrays NULL and say why. The
 * objects, written as JSON texts one after the other, must read back
 * the same (YAML and JSON input mean the same objects).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "manifest.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_init("fuzz_manifest", LOG_ERROR);
	return 0;
}

/* objs as JSON texts, one a line, read again. */
static void json_roundtrip(const json_t *objs)
{
	json_t *again = NULL, *srcs = NULL, *o;
	char *text = NULL, err[1024];
	size_t i, len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return;
	json_array_foreach(objs, i, o)
		if (json_dumpf(o, f, JSON_COMPACT | JSON_ENCODE_ANY) || fputc('\n', f) == EOF)
			abort();
	if (fclose(f))
		return;
	if (manifest_read_mem("again.json", text, len, &again, &srcs, err, sizeof(err)) ||
	    !json_equal(objs, again)) {
		fprintf(stderr, "JSON of the objects reads differently: %s\n%s\n", err, text);
		abort();
	}
	json_decref(again);
	json_decref(srcs);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *objs = NULL, *srcs = NULL, *o;
	char err[1024] = "";
	size_t i;

	if (manifest_read_mem("fuzz.yaml", (const char *)data, size, &objs, &srcs, err,
			      sizeof(err))) {
		if (objs || srcs || !err[0])
			abort();
		return 0;
	}
	if (!json_is_array(objs) || !json_is_array(srcs) ||
	    json_array_size(objs) != json_array_size(srcs))
		abort();
	json_array_foreach(objs, i, o) {
		if (!json_is_object(o) || !json_is_string(json_object_get(o, "apiVersion")) ||
		    !json_is_string(json_object_get(o, "kind")) ||
		    !json_is_string(json_array_get(srcs, i)))
			abort();
		(void)manifest_type_name(o);
	}
	json_roundtrip(objs);
	json_decref(objs);
	json_decref(srcs);
	return 0;
}
