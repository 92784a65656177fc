// SPDX-License-Identifier: Apache-2.0
/*
 * Labels and label selectors (see policy.h): metadata.labels and
 * matchLabels/matchExpressions read and validated as the apiserver does
 * (apimachinery pkg/apis/meta/v1/validation and pkg/util/validation), and
 * selector matching, including the namespace-name label the apiserver
 * sets on every namespace. The name syntax checks here also serve the
 * object readers in policy_parse.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "policy_int.h"

/* ---- name syntax (apimachinery pkg/util/validation) ------------------ */

static bool lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool alnum(char c)
{
	return lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

/* One dot-free part of a DNS-1123 name: [a-z0-9]([-a-z0-9]*[a-z0-9])? */
static bool dns_part(const char *s, size_t n)
{
	if (!n || !lower_alnum(s[0]) || !lower_alnum(s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!lower_alnum(s[i]) && s[i] != '-')
			return false;
	return true;
}

/* DNS-1123 label: namespace names. */
bool dns_label(const char *s)
{
	size_t n = strlen(s);

	return n <= 63 && dns_part(s, n);
}

/* DNS-1123 subdomain: object names and label key prefixes. */
bool dns_subdomain_n(const char *s, size_t n)
{
	size_t start = 0;

	if (!n || n > 253)
		return false;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != '.')
			continue;
		if (!dns_part(s + start, i - start))
			return false;
		start = i + 1;
	}
	return true;
}

/* The name part of a label key, and any non-empty label value:
 * ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9], at most 63 characters. */
static bool label_name_n(const char *s, size_t n)
{
	if (!n || n > 63 || !alnum(s[0]) || !alnum(s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
			return false;
	return true;
}

static bool label_key_ok(const char *k)
{
	const char *slash = strchr(k, '/');

	if (!slash)
		return label_name_n(k, strlen(k));
	if (strchr(slash + 1, '/'))
		return false;
	return dns_subdomain_n(k, (size_t)(slash - k)) &&
	       label_name_n(slash + 1, strlen(slash + 1));
}

static bool label_value_ok(const char *v)
{
	return !*v || label_name_n(v, strlen(v));
}

#define LABEL_KEY_EXPECT                                                                           \
	"expected an optional DNS subdomain prefix and '/', then 1-63 letters, digits, '-', '_' "  \
	"or '.' starting and ending with a letter or digit"
#define LABEL_VALUE_EXPECT                                                                         \
	"expected at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter " \
	"or digit, or an empty string"

/* ---- labels ---------------------------------------------------------- */

static int label_cmp(const void *a, const void *b)
{
	return strcmp(((const struct pol_label *)a)->key, ((const struct pol_label *)b)->key);
}

int pol_labels_parse(const json_t *obj, const char *path, struct pol_labels *out, char *err,
		     size_t errlen)
{
	size_t len;
	const char *key;
	json_t *val;
	char *p;

	memset(out, 0, sizeof(*out));
	if (!obj || json_is_null(obj))
		return 0;
	if (!json_is_object(obj))
		return fail(err, errlen, path,
			    "is %s; expected an object of string keys and values", jtype(obj));
	if (!json_object_size(obj))
		return 0;
	len = json_object_size(obj) * sizeof(*out->v);
	/* jansson's iteration API takes a non-const object; it does not modify it. */
	json_object_foreach ((json_t *)obj, key, val) {
		if (!label_key_ok(key))
			return fail(err, errlen, path, "'%s' is not a valid label key; %s", key,
				    LABEL_KEY_EXPECT);
		if (!json_is_string(val))
			return fail(err, errlen, path, "the value of '%s' is %s; expected a string",
				    key, jtype(val));
		if (!label_value_ok(json_string_value(val)))
			return fail(err, errlen, path, "'%s' is not a valid value for '%s'; %s",
				    json_string_value(val), key, LABEL_VALUE_EXPECT);
		len += strlen(key) + strlen(json_string_value(val)) + 2;
	}
	/* The array and its strings in one allocation: a pod's three labels
	 * were seven, about 220 bytes with their headers, for every pod the
	 * store holds. */
	out->v = malloc(len);
	if (!out->v)
		return oom(err, errlen);
	p = (char *)(out->v + json_object_size(obj));
	json_object_foreach ((json_t *)obj, key, val) {
		struct pol_label *l = &out->v[out->n++];

		l->key = p;
		p = stpcpy(p, key) + 1;
		l->value = p;
		p = stpcpy(p, json_string_value(val)) + 1;
	}
	qsort(out->v, out->n, sizeof(*out->v), label_cmp);
	return 0;
}

void pol_labels_free(struct pol_labels *l)
{
	free(l->v);
	memset(l, 0, sizeof(*l));
}

const char *pol_labels_get(const struct pol_labels *l, const char *key)
{
	size_t lo = 0, hi = l->n;

	/* Sorted by key: the compiler calls this pods x policies times. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(key, l->v[mid].key);

		if (!c)
			return l->v[mid].value;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

bool pol_labels_equal(const struct pol_labels *a, const struct pol_labels *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i].key, b->v[i].key) || strcmp(a->v[i].value, b->v[i].value))
			return false;
	return true;
}

/* ---- selectors ------------------------------------------------------- */

static const char *const op_names[] = {
	[SEL_IN] = "In",
	[SEL_NOT_IN] = "NotIn",
	[SEL_EXISTS] = "Exists",
	[SEL_DOES_NOT_EXIST] = "DoesNotExist",
};

static int parse_expr(const json_t *e, const char *path, struct pol_expr *x, char *err,
		      size_t errlen)
{
	char sub[PATH_LEN];
	const json_t *key, *op, *vals;
	size_t i;
	int k;

	if (!json_is_object(e))
		return fail(err, errlen, path,
			    "is %s; expected {\"key\", \"operator\", \"values\"}", jtype(e));
	key = member(e, "key");
	subpath(sub, sizeof(sub), "%s.key", path);
	if (!key)
		return fail(err, errlen, sub, "missing; expected a label key");
	if (!json_is_string(key))
		return fail(err, errlen, sub, "is %s; expected a label key", jtype(key));
	if (!label_key_ok(json_string_value(key)))
		return fail(err, errlen, sub, "'%s' is not a valid label key; %s",
			    json_string_value(key), LABEL_KEY_EXPECT);

	op = member(e, "operator");
	subpath(sub, sizeof(sub), "%s.operator", path);
	if (!op)
		return fail(err, errlen, sub,
			    "missing; expected In, NotIn, Exists or DoesNotExist");
	if (!json_is_string(op))
		return fail(err, errlen, sub, "is %s; expected In, NotIn, Exists or DoesNotExist",
			    jtype(op));
	for (k = 0; k < 4; k++)
		if (!strcmp(json_string_value(op), op_names[k]))
			break;
	if (k == 4)
		return fail(err, errlen, sub,
			    "'%s' is not a valid selector operator; expected In, NotIn, Exists or "
			    "DoesNotExist (case-sensitive)",
			    json_string_value(op));
	x->op = (enum pol_sel_op)k;

	vals = member(e, "values");
	subpath(sub, sizeof(sub), "%s.values", path);
	if (vals && !json_is_array(vals))
		return fail(err, errlen, sub, "is %s; expected a list of strings", jtype(vals));
	if ((x->op == SEL_IN || x->op == SEL_NOT_IN) && (!vals || !json_array_size(vals)))
		return fail(err, errlen, sub,
			    "missing or empty; operator %s needs at least one value",
			    op_names[x->op]);
	if ((x->op == SEL_EXISTS || x->op == SEL_DOES_NOT_EXIST) && vals && json_array_size(vals))
		return fail(err, errlen, sub, "must be empty for operator %s; remove values",
			    op_names[x->op]);

	x->key = strdup(json_string_value(key));
	if (!x->key)
		return oom(err, errlen);
	if (!vals || !json_array_size(vals))
		return 0;
	x->val = calloc(json_array_size(vals), sizeof(*x->val));
	if (!x->val)
		return oom(err, errlen);
	for (i = 0; i < json_array_size(vals); i++) {
		const json_t *v = json_array_get(vals, i);

		subpath(sub, sizeof(sub), "%s.values[%zu]", path, i);
		if (!json_is_string(v))
			return fail(err, errlen, sub, "is %s; expected a string", jtype(v));
		if (!label_value_ok(json_string_value(v)))
			return fail(err, errlen, sub, "'%s' is not a valid label value; %s",
				    json_string_value(v), LABEL_VALUE_EXPECT);
		x->val[x->nval] = strdup(json_string_value(v));
		if (!x->val[x->nval])
			return oom(err, errlen);
		x->nval++;
	}
	return 0;
}

int pol_selector_parse(const json_t *obj, const char *path, struct pol_selector *out, char *err,
		       size_t errlen)
{
	char sub[PATH_LEN];
	const json_t *exprs;
	int ret;

	memset(out, 0, sizeof(*out));
	if (!obj || json_is_null(obj))
		return 0;
	if (!json_is_object(obj))
		return fail(err, errlen, path,
			    "is %s; expected a label selector such as {\"matchLabels\": "
			    "{\"app\": \"web\"}} or {} for everything",
			    jtype(obj));
	subpath(sub, sizeof(sub), "%s.matchLabels", path);
	ret = pol_labels_parse(member(obj, "matchLabels"), sub, &out->match, err, errlen);
	if (ret)
		goto cleanup;
	exprs = member(obj, "matchExpressions");
	if (!exprs)
		return 0;
	subpath(sub, sizeof(sub), "%s.matchExpressions", path);
	if (!json_is_array(exprs)) {
		ret = fail(err, errlen, sub, "is %s; expected a list of {key, operator, values}",
			   jtype(exprs));
		goto cleanup;
	}
	if (!json_array_size(exprs))
		return 0;
	out->expr = calloc(json_array_size(exprs), sizeof(*out->expr));
	if (!out->expr) {
		ret = oom(err, errlen);
		goto cleanup;
	}
	/* Count first so that pol_selector_free sees every partly built entry. */
	out->nexpr = json_array_size(exprs);
	for (size_t i = 0; i < out->nexpr; i++) {
		subpath(sub, sizeof(sub), "%s.matchExpressions[%zu]", path, i);
		ret = parse_expr(json_array_get(exprs, i), sub, &out->expr[i], err, errlen);
		if (ret)
			goto cleanup;
	}
	return 0;
cleanup:
	pol_selector_free(out);
	return ret;
}

void pol_selector_free(struct pol_selector *s)
{
	pol_labels_free(&s->match);
	for (size_t i = 0; i < s->nexpr; i++) {
		for (size_t j = 0; j < s->expr[i].nval; j++)
			free(s->expr[i].val[j]);
		free(s->expr[i].val);
		free(s->expr[i].key);
	}
	free(s->expr);
	memset(s, 0, sizeof(*s));
}

bool selector_empty(const struct pol_selector *s)
{
	return !s->match.n && !s->nexpr;
}

/* ns_name, when set, overrides the namespace-name label the way the
 * apiserver does, so namespace selectors see it even when the namespace
 * object is unknown or carries a stale value. */
static const char *lookup(const struct pol_labels *l, const char *ns_name, const char *key)
{
	if (ns_name && !strcmp(key, NS_NAME_LABEL))
		return ns_name;
	return pol_labels_get(l, key);
}

bool sel_match(const struct pol_selector *s, const struct pol_labels *l, const char *ns_name)
{
	for (size_t i = 0; i < s->match.n; i++) {
		const char *v = lookup(l, ns_name, s->match.v[i].key);

		if (!v || strcmp(v, s->match.v[i].value))
			return false;
	}
	for (size_t i = 0; i < s->nexpr; i++) {
		const struct pol_expr *x = &s->expr[i];
		const char *v = lookup(l, ns_name, x->key);
		bool in = false;

		if (v && (x->op == SEL_IN || x->op == SEL_NOT_IN))
			for (size_t j = 0; j < x->nval && !in; j++)
				in = !strcmp(v, x->val[j]);
		switch (x->op) {
		case SEL_IN:
			if (!in)
				return false;
			break;
		case SEL_NOT_IN: /* a missing key is "not in" any set */
			if (in)
				return false;
			break;
		case SEL_EXISTS:
			if (!v)
				return false;
			break;
		case SEL_DOES_NOT_EXIST:
			if (v)
				return false;
			break;
		}
	}
	return true;
}

bool pol_selector_matches(const struct pol_selector *s, const struct pol_labels *l)
{
	return sel_match(s, l, NULL);
}
