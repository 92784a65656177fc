/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the parts of the policy code share and callers must not use:
 * agent/selector.c (labels, selectors, name syntax), agent/policy_parse.c
 * (the object readers and failing closed) and agent/policy.c (semantics
 * and the reference decision). The public API is policy.h.
 *
 * The error and path helpers are static inline so that each parser keeps
 * the same small functions it had when all of this was one file.
 */
#ifndef SLUICE_POLICY_INT_H
#define SLUICE_POLICY_INT_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "policy.h"

/* The apiserver sets this label on every namespace to the namespace's name
 * (NamespaceDefaultLabelName); selectors may rely on it. */
#define NS_NAME_LABEL "kubernetes.io/metadata.name"

/* Room for the deepest field path we build, e.g.
 * spec.ingress[12].from[3].namespaceSelector.matchExpressions[2].values[7] */
#define PATH_LEN 256

/* ---- errors and paths ------------------------------------------------ */

/* Every parse error has the shape "<path>: <problem>; <what is expected>". */
static inline int fail(char *err, size_t errlen, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static inline int fail(char *err, size_t errlen, const char *path, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!errlen)
		return -EINVAL;
	n = snprintf(err, errlen, "%s: ", path);
	if (n < 0 || (size_t)n >= errlen)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static inline int oom(char *err, size_t errlen)
{
	snprintf(err, errlen, "out of memory while parsing the policy");
	return -ENOMEM;
}

/* Through va_list so that a long parent path truncates quietly instead of
 * tripping -Wformat-truncation at every call site. */
static inline void subpath(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static inline void subpath(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

static inline const char *jtype(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "a list";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	default:
		return "null";
	}
}

/* A member that is absent or JSON null counts as omitted, as in Go's
 * decoding of Kubernetes objects. */
static inline const json_t *member(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);

	return v && !json_is_null(v) ? v : NULL;
}

/* ---- from agent/selector.c ------------------------------------------ */

/* DNS-1123 label and subdomain: metadata.namespace and metadata.name. */
bool dns_label(const char *s);
bool dns_subdomain_n(const char *s, size_t n);
/* explain prints an empty selector as "all pods" / "all namespaces". */
bool selector_empty(const struct pol_selector *s);
/* ns_name, when set, is the namespace-name label's value whatever l says. */
bool sel_match(const struct pol_selector *s, const struct pol_labels *l, const char *ns_name);

#endif
