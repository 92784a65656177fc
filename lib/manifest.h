/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Manifests: the files `sluicectl apply -f` and `delete -f` read, turned
 * into the JSON objects the agent's "apply" and "delete" operations take
 * (docs/API.md, "Objects and policy").
 *
 * Input is YAML (one or more documents separated by ---) or JSON (one
 * object, or several one after the other). Every document must be one
 * Kubernetes object: a mapping with string apiVersion and kind. A document
 * with kind: List contributes its items instead. Empty documents (nothing,
 * ~ or null) are skipped.
 *
 * YAML becomes JSON the way Kubernetes (sigs.k8s.io/yaml on go-yaml v2)
 * does it, so a manifest means the same to sluice as to kubectl:
 *
 *   - Quoted scalars ('80', "80") and block scalars (| >) are strings.
 *   - Plain scalars are typed by the YAML 1.1 rules go-yaml v2 uses:
 *       null:  empty, ~, null, Null, NULL
 *       true:  true True TRUE  yes Yes YES  y Y  on On ON
 *       false: false False FALSE  no No NO  n N  off Off OFF
 *       integers: 80, -3, +3, 0x1F, 0o17, 017 (octal), 0b101, 1_000
 *       floats: 1.5, .5, 1e3, -2.5E-3 (underscores allowed)
 *     Anything else (http, 10.0.0.0/8, 2024-01-01, 1.2.3) is a string.
 *     So `port: 80` is a number, `port: "80"` and `port: http` are strings,
 *     and `enabled: yes` is the boolean true, as in Kubernetes.
 *   - A float with an integral value (80.0, 1e3) becomes a JSON integer,
 *     as it does after Go's json.Marshal; others stay JSON reals.
 *     .inf and .nan have no JSON form: error.
 *   - Integers beyond 64 bits: error (quote them if they are strings).
 *   - Explicit tags: !!str forces a string, !!int !!float !!bool !!null
 *     require a value of that type; other tags (!!binary, !Ref ...) are
 *     rejected.
 *   - Mapping keys must be scalars and become strings; a key YAML types
 *     (on: → "true", 0x10: → "16") becomes its JSON text, a null key is an
 *     error. A key may appear once per mapping (stricter than go-yaml,
 *     which keeps the last).
 *   - Anchors and aliases are expanded (recursive aliases are an error);
 *     merge keys (<<: *base, <<: [*a, *b]) follow the YAML spec: keys
 *     written in the mapping win, then earlier merged mappings.
 *   - Documents may nest at most MANIFEST_MAX_DEPTH levels; aliases may
 *     bring in at most MANIFEST_MAX_NODES values in all (each use counts).
 *
 * JSON input (the first character is { or [) is read by jansson, so its
 * numbers keep their JSON type; JSON texts may follow one another. Input
 * that starts like JSON but is not (a YAML flow mapping, JSON documents
 * separated by ---) is read as YAML.
 *
 * Errors are one sentence naming the file, the document and, from the
 * parser, line and column (1-based):
 *   app.yaml: document 2, line 7 column 3: mapping values are not allowed in this context
 *   app.yaml: document 3 (line 12) has no kind: every object needs ...
 * A key written twice in one mapping (YAML or JSON) is named by its field
 * path, as field validation (kschema.h) names unknown fields:
 *   app.yaml: document 1, line 9 column 5: spec.ingress[0].ports: duplicate field; ...
 * Encoding errors (bad UTF-8) give line and column only: libyaml decodes
 * ahead of the parser, so the document is not known.
 */
#ifndef SLUICE_MANIFEST_H
#define SLUICE_MANIFEST_H

#include <stddef.h>
#include <jansson.h>

#define MANIFEST_MAX_BYTES (16u << 20) /* a larger file is refused */
#define MANIFEST_MAX_DEPTH 256u
#define MANIFEST_MAX_NODES (1u << 20) /* values copied by aliases */
#define MANIFEST_STDIN_LABEL "<stdin>"

/*
 * Read the manifest at path ("-": standard input, labelled "<stdin>").
 * On success returns 0 and sets *objects to a new JSON array of objects and
 * *sources to a new array of the same length whose strings name where each
 * object came from: "FILE: document N", or "FILE: document N, item M" for
 * the items of a List (N and M count from 1; N counts every document of the
 * stream, empty ones too). A file with no objects gives two empty arrays.
 * On failure returns a negative errno (-ENOENT and the like when the file
 * cannot be read, -EFBIG over MANIFEST_MAX_BYTES, -EINVAL for a manifest
 * that does not parse or is not made of objects, -ENOMEM), leaves *objects
 * and *sources NULL and writes a sentence to err.
 */
int manifest_read(const char *path, json_t **objects, json_t **sources, char *err,
		  size_t errlen);

/* The same for len bytes at buf (need not be NUL-terminated); label stands
 * for the file name in sources and errors. */
int manifest_read_mem(const char *label, const char *buf, size_t len, json_t **objects,
		      json_t **sources, char *err, size_t errlen);

/* What a JSON value is, for errors: "a mapping", "a list", "a string"... */
const char *manifest_type_name(const json_t *v);

#endif /* SLUICE_MANIFEST_H */
