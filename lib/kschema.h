/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Field validation of manifests, as kubectl's --validate does: a field a
 * kind does not have is an error (strict, the default), a warning (warn) or
 * nothing (ignore). A typo such as `ingres:` for `ingress:` would otherwise
 * be dropped silently, and a NetworkPolicy without its rules isolates its
 * pods with nothing allowed.
 *
 * One schema table per kind the agent takes (agent/store.c, kinds[]): the
 * fields sluice reads and the standard Kubernetes fields it ignores but the
 * API server accepts (metadata.annotations, ownerReferences, managedFields,
 * status ...). Where the upstream type is large and grows with every
 * Kubernetes release (a Pod's spec, a container, a Node's status), only the
 * subtrees sluice interprets are checked; the rest is accepted as it is.
 * docs/POLICY.md, "Field validation", lists what is checked.
 *
 * For objects from manifests and the agent's "apply" request only: objects
 * from the Kubernetes API were validated by the API server, whose version may
 * know fields this table does not.
 */
#ifndef SLUICE_KSCHEMA_H
#define SLUICE_KSCHEMA_H

#include <stdbool.h>

#include <jansson.h>

enum ks_mode { KS_STRICT = 0, KS_WARN, KS_IGNORE };

/* At most this many problems are listed for one check; then one more line
 * counts the rest. */
#define KS_MAX_PROBLEMS 100

/* "strict", "warn", "ignore", and kubectl's "true" (strict) and "false"
 * (ignore). Returns 0, or -EINVAL for anything else. */
int ks_mode_parse(const char *s, enum ks_mode *mode);
const char *ks_mode_name(enum ks_mode mode);

/*
 * Append to out (a JSON array) one string per unknown field of obj, in
 * document order of the schema walk:
 *   spec.ingres: unknown field; did you mean spec.ingress?
 *   spec.ingress[0].from[0].podSelecter: unknown field; did you mean ...podSelector?
 * An object whose apiVersion and kind sluice does not take adds nothing
 * (the store refuses it with its own message). Returns how many were
 * appended, or -ENOMEM.
 */
int ks_unknown_fields(const json_t *obj, json_t *out);

/* Whether obj's apiVersion and kind are one sluice takes. */
bool ks_kind_known(const json_t *obj);

/*
 * The same for every object of an apply: each line is prefixed by where the
 * object came from (sources[i], else "object N") and which it is:
 *   app.yaml: document 2: NetworkPolicy shop/web: spec.ingres: unknown field; did you mean spec.ingress?
 * At most KS_MAX_PROBLEMS lines, then "... and N more unknown fields".
 * Returns the number of unknown fields found (all of them), or -ENOMEM.
 */
int ks_check_objects(const json_t *objects, const json_t *sources, json_t *out);

/*
 * An apply's check in mode. Returns 0 when the apply may go on, with
 * *warnings a new array of the lines above in warn mode when there are
 * any (else NULL); -EINVAL when strict mode refuses it, with err the first
 * line and "; nothing was applied" and, when there are several, *details
 * (malloc'd, else NULL) all of them, one a line; -ENOMEM.
 */
int ks_apply_check(const json_t *objects, const json_t *sources, enum ks_mode mode,
		   json_t **warnings, char *err, size_t errlen, char **details);

/* The edit distance (Levenshtein) of a and b, case-sensitive; strings
 * longer than 63 bytes count as far from everything (SIZE_MAX). */
size_t ks_edit_distance(const char *a, const char *b);

#endif /* SLUICE_KSCHEMA_H */
