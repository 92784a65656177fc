// SPDX-License-Identifier: Apache-2.0
/*
 * Policy semantics (see policy.h): parsing and validation of NetworkPolicy,
 * SluiceNetworkPolicy and SluiceClusterNetworkPolicy, label selectors, and
 * the reference decision the datapath compiler must agree with.
 *
 * Where Kubernetes behaviour is subtle, the choice and its upstream source
 * (kubernetes/kubernetes) are noted next to the code:
 *  - policyTypes defaulting: pkg/apis/networking/v1/defaults.go
 *  - field validation: pkg/apis/networking/validation/validation.go and
 *    apimachinery pkg/apis/meta/v1/validation (label selectors)
 *  - field meanings: staging/src/k8s.io/api/networking/v1/types.go
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

/* The apiserver sets this label on every namespace to the namespace's name
 * (NamespaceDefaultLabelName); selectors may rely on it. */
#define NS_NAME_LABEL "kubernetes.io/metadata.name"

/* Room for the deepest field path we build, e.g.
 * spec.ingress[12].from[3].namespaceSelector.matchExpressions[2].values[7] */
#define PATH_LEN 256

/* ---- errors and paths ------------------------------------------------ */

/* Every parse error has the shape "<path>: <problem>; <what is expected>". */
static int fail(char *err, size_t errlen, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, const char *path, const char *fmt, ...)
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

static int oom(char *err, size_t errlen)
{
	snprintf(err, errlen, "out of memory while parsing the policy");
	return -ENOMEM;
}

/* Through va_list so that a long parent path truncates quietly instead of
 * tripping -Wformat-truncation at every call site. */
static void subpath(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void subpath(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

static const char *jtype(const json_t *v)
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
static const json_t *member(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);

	return v && !json_is_null(v) ? v : NULL;
}

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
static bool dns_label(const char *s)
{
	size_t n = strlen(s);

	return n <= 63 && dns_part(s, n);
}

/* DNS-1123 subdomain: object names and label key prefixes. */
static bool dns_subdomain_n(const char *s, size_t n)
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

/* IANA_SVC_NAME (IsValidPortName): 1-15 of [a-z0-9-], at least one letter,
 * no leading, trailing or doubled '-'. */
static bool port_name_ok(const char *s)
{
	size_t n = strlen(s);
	bool letter = false;

	if (!n || n > 15 || s[0] == '-' || s[n - 1] == '-' || strstr(s, "--"))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] >= 'a' && s[i] <= 'z')
			letter = true;
		else if (!(s[i] >= '0' && s[i] <= '9') && s[i] != '-')
			return false;
	}
	return letter;
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
	const char *key;
	json_t *val;
	int ret;

	memset(out, 0, sizeof(*out));
	if (!obj || json_is_null(obj))
		return 0;
	if (!json_is_object(obj))
		return fail(err, errlen, path,
			    "is %s; expected an object of string keys and values", jtype(obj));
	if (!json_object_size(obj))
		return 0;
	out->v = calloc(json_object_size(obj), sizeof(*out->v));
	if (!out->v)
		return oom(err, errlen);
	/* jansson's iteration API takes a non-const object; it does not modify it. */
	json_object_foreach ((json_t *)obj, key, val) {
		struct pol_label *l = &out->v[out->n];

		if (!label_key_ok(key)) {
			ret = fail(err, errlen, path, "'%s' is not a valid label key; %s", key,
				   LABEL_KEY_EXPECT);
			goto cleanup;
		}
		if (!json_is_string(val)) {
			ret = fail(err, errlen, path, "the value of '%s' is %s; expected a string",
				   key, jtype(val));
			goto cleanup;
		}
		if (!label_value_ok(json_string_value(val))) {
			ret = fail(err, errlen, path, "'%s' is not a valid value for '%s'; %s",
				   json_string_value(val), key, LABEL_VALUE_EXPECT);
			goto cleanup;
		}
		out->n++;
		l->key = strdup(key);
		l->value = strdup(json_string_value(val));
		if (!l->key || !l->value) {
			ret = oom(err, errlen);
			goto cleanup;
		}
	}
	qsort(out->v, out->n, sizeof(*out->v), label_cmp);
	return 0;
cleanup:
	pol_labels_free(out);
	return ret;
}

void pol_labels_free(struct pol_labels *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].key);
		free(l->v[i].value);
	}
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

static bool selector_empty(const struct pol_selector *s)
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

static bool sel_match(const struct pol_selector *s, const struct pol_labels *l, const char *ns_name)
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

/* ---- world lookups --------------------------------------------------- */

const struct pol_namespace *pol_world_ns(const struct pol_world *w, const char *name)
{
	for (size_t i = 0; i < w->nns; i++)
		if (!strcmp(w->ns[i]->name, name))
			return w->ns[i];
	return NULL;
}

/* A namespace without a Namespace object still has its name label. */
static bool ns_matches(const struct pol_selector *s, const struct pol_world *w, const char *ns)
{
	static const struct pol_labels none;
	const struct pol_namespace *n = pol_world_ns(w, ns);

	return sel_match(s, n ? &n->labels : &none, ns);
}

bool pol_selects_pod(const struct pol_policy *p, const struct pol_world *w,
		     const struct pol_pod *pod)
{
	if (p->kind == POL_SLUICE_CLUSTER) {
		if (p->has_ns_sel && !ns_matches(&p->ns_sel, w, pod->ns))
			return false;
	} else if (!p->ns || strcmp(p->ns, pod->ns)) {
		return false;
	}
	return pol_selector_matches(&p->pod_sel, &pod->labels);
}

bool pol_peer_matches_pod(const struct pol_peer *peer, const struct pol_policy *p,
			  const struct pol_world *w, const struct pol_pod *pod)
{
	if (peer->is_ipblock || pod->labels_unknown)
		return false;
	if (peer->has_ns_sel) {
		if (!ns_matches(&peer->ns_sel, w, pod->ns))
			return false;
	} else if (p->kind != POL_SLUICE_CLUSTER && (!p->ns || strcmp(p->ns, pod->ns))) {
		/* podSelector alone: the policy's own namespace; for a cluster
		 * policy, which has none, every namespace. */
		return false;
	}
	return !peer->has_pod_sel || pol_selector_matches(&peer->pod_sel, &pod->labels);
}

bool pol_peer_matches_ip(const struct pol_peer *peer, uint32_t ip)
{
	if (!peer->is_ipblock || !cidr4_contains(&peer->cidr, ip))
		return false;
	for (size_t i = 0; i < peer->nexcept; i++)
		if (cidr4_contains(&peer->except[i], ip))
			return false;
	return true;
}

bool pol_port_range(const struct pol_port *pp, const struct pol_pod *dst, uint8_t proto,
		    uint16_t *lo, uint16_t *hi)
{
	if (pp->proto != proto)
		return false;
	switch (pp->kind) {
	case PORT_ANY:
		/* 0 included: "every port of this protocol" is the whole field. */
		*lo = 0;
		*hi = 65535;
		return true;
	case PORT_NUMBER:
		*lo = pp->port;
		*hi = pp->end_port;
		return true;
	case PORT_NAMED:
		if (!dst)
			return false;
		for (size_t i = 0; i < dst->nports; i++) {
			const struct pol_container_port *cp = &dst->ports[i];

			if (cp->name && cp->proto == proto && !strcmp(cp->name, pp->name)) {
				*lo = *hi = cp->port;
				return true;
			}
		}
		return false;
	}
	return false;
}

/* Exactly what the compiler programs: the range pol_port_range gives. A
 * name resolves to the first container port with that name and protocol
 * (names are unique within a container; across containers the first
 * wins, for explain and datapath alike). */
static bool port_matches(const struct pol_port *pp, const struct pol_pod *dst, uint8_t proto,
			 uint16_t dport)
{
	uint16_t lo, hi;

	return pol_port_range(pp, dst, proto, &lo, &hi) && dport >= lo && dport <= hi;
}

/* ---- policy parsing -------------------------------------------------- */

static void peer_free(struct pol_peer *pe)
{
	pol_selector_free(&pe->pod_sel);
	pol_selector_free(&pe->ns_sel);
	free(pe->except);
}

static void rule_free(struct pol_rule *r)
{
	for (size_t i = 0; i < r->npeers; i++)
		peer_free(&r->peers[i]);
	free(r->peers);
	for (size_t i = 0; i < r->nports; i++)
		free(r->ports[i].name);
	free(r->ports);
	free(r->icmp);
}

void pol_free(struct pol_policy *p)
{
	if (!p)
		return;
	free(p->ns);
	free(p->name);
	pol_selector_free(&p->pod_sel);
	pol_selector_free(&p->ns_sel);
	for (size_t i = 0; i < p->nin; i++)
		rule_free(&p->in[i]);
	free(p->in);
	for (size_t i = 0; i < p->neg; i++)
		rule_free(&p->eg[i]);
	free(p->eg);
	free(p->degraded);
	free(p->note);
	free(p);
}

/* ---- failing closed -------------------------------------------------- */

/*
 * Objects from the API (pol_parse_api) cannot be refused: the server has
 * accepted them. What pol_parse would reject is recorded here and replaced
 * by a reading that never leaves a pod less isolated than the object asks.
 */
static int degrade(struct pol_policy *p, const char *why)
{
	if (!p->degraded) {
		p->degraded = strdup(why);
		if (!p->degraded)
			return -ENOMEM;
	}
	p->ndegraded++;
	return 0;
}

/* After a failed sub-parse: strict mode passes the error on; API mode
 * records it and lets the caller substitute the fail-closed reading. */
static int tolerate(struct pol_policy *p, int ret, const char *err)
{
	if (!ret || ret == -ENOMEM || !p->from_api)
		return ret;
	return degrade(p, err);
}

static int note(struct pol_policy *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int note(struct pol_policy *p, const char *fmt, ...)
{
	va_list ap;
	char buf[PATH_LEN + 160];

	if (!p->note) {
		va_start(ap, fmt);
		vsnprintf(buf, sizeof(buf), fmt, ap);
		va_end(ap);
		p->note = strdup(buf);
		if (!p->note)
			return -ENOMEM;
	}
	p->nnotes++;
	return 0;
}

/* ---- CIDRs ------------------------------------------------------------ */

/* An ipBlock CIDR of either family. Only IPv4 ones are enforced. */
struct any_cidr {
	bool v6;
	struct cidr4 c4;
	uint8_t a6[16];
	int prefix6;
};

/*
 * An IPv4 address as the API server reads ipBlock CIDRs
 * (k8s.io/utils/net ParseCIDRSloppy): four decimal parts of 1-3 digits,
 * where a leading zero is still decimal ("010" is 10, not octal 8).
 */
static bool ip4_sloppy(const char *s, size_t n, uint32_t *out, bool *leading_zero)
{
	uint32_t ip = 0;
	size_t i = 0;

	*leading_zero = false;
	for (int part = 0; part < 4; part++) {
		size_t start = i;
		unsigned v = 0;

		if (part && (i >= n || s[i++] != '.'))
			return false;
		start = i;
		while (i < n && s[i] >= '0' && s[i] <= '9' && i - start < 3)
			v = v * 10 + (unsigned)(s[i++] - '0');
		if (i == start || v > 255)
			return false;
		if (s[start] == '0' && i - start > 1)
			*leading_zero = true;
		ip = ip << 8 | v;
	}
	if (i != n)
		return false;
	*out = ip;
	return true;
}

static bool bits6_contain(const uint8_t *net, int prefix, const uint8_t *a)
{
	for (int b = 0; b < prefix; b++)
		if ((net[b / 8] ^ a[b / 8]) & (0x80 >> (b % 8)))
			return false;
	return true;
}

/*
 * An ipBlock CIDR, read the way the API server reads it (legacy
 * validation, which every server without the StrictIPCIDRValidation gate
 * applies, and which stored objects passed): host bits are cleared
 * ("10.0.0.1/24" is 10.0.0.0/24) and IPv4 parts may have leading zeros.
 * Both readings are recorded as notes. IPv6 is parsed and validated but
 * not enforced: this datapath is IPv4 only, so an IPv6 block matches no
 * traffic. An IPv4-mapped IPv6 CIDR ("::ffff:10.0.0.0/104") is refused:
 * whether it should match IPv4 traffic differs between implementations,
 * and KEP-4858 rejects it for new objects.
 */
static int parse_cidr(struct pol_policy *p, const char *text, const char *path,
		      struct any_cidr *out, char *err, size_t errlen)
{
	const char *slash = strchr(text, '/');
	size_t alen, n;
	char addr[INET6_ADDRSTRLEN + 1], fmt[INET6_ADDRSTRLEN + 8];
	bool lz = false, host = false;
	long prefix;

	memset(out, 0, sizeof(*out));
	n = slash ? strlen(slash + 1) : 0;
	if (!slash || !n || n > 3 || strspn(slash + 1, "0123456789") != n ||
	    (n > 1 && slash[1] == '0'))
		return fail(err, errlen, path,
			    "'%s' is not a CIDR; expected a.b.c.d/n such as 10.0.0.0/8", text);
	prefix = strtol(slash + 1, NULL, 10);
	alen = (size_t)(slash - text);
	out->v6 = memchr(text, ':', alen) != NULL;
	if (alen >= sizeof(addr) || prefix > (out->v6 ? 128 : 32))
		return fail(err, errlen, path,
			    "'%s' is not a CIDR; expected a.b.c.d/n with n at most 32 (or an IPv6 "
			    "CIDR with n at most 128)",
			    text);
	memcpy(addr, text, alen);
	addr[alen] = '\0';
	if (out->v6) {
		struct in6_addr a;

		if (inet_pton(AF_INET6, addr, &a) != 1)
			return fail(err, errlen, path, "'%s' is not a CIDR; '%s' is not an address",
				    text, addr);
		if (IN6_IS_ADDR_V4MAPPED(&a))
			return fail(err, errlen, path,
				    "'%s' is an IPv4-mapped IPv6 CIDR, whose meaning for IPv4 "
				    "traffic is ambiguous; expected the IPv4 CIDR it stands for "
				    "(a.b.c.d/n)",
				    text);
		out->prefix6 = (int)prefix;
		for (int b = (int)prefix; b < 128; b++) {
			host |= (a.s6_addr[b / 8] & (0x80 >> (b % 8))) != 0;
			a.s6_addr[b / 8] &= (uint8_t)~(0x80 >> (b % 8));
		}
		memcpy(out->a6, a.s6_addr, 16);
		return note(p, "%s: '%s' is IPv6 and matches no traffic in this IPv4 datapath%s", path,
			    text, host ? " (its host bits are cleared)" : "");
	}
	if (!ip4_sloppy(addr, alen, &out->c4.net, &lz))
		return fail(err, errlen, path,
			    "'%s' is not a CIDR; expected a.b.c.d/n such as 10.0.0.0/8", text);
	out->c4.prefix = (int)prefix;
	host = (out->c4.net & ~(prefix ? ~0u << (32 - prefix) : 0)) != 0;
	out->c4.net &= prefix ? ~0u << (32 - prefix) : 0;
	if (!host && !lz)
		return 0;
	cidr4_format(&out->c4, fmt, sizeof(fmt));
	return note(p, "%s: '%s' is read as %s, as the API server reads it (%s)", path, text, fmt,
		    host ? "host bits cleared" : "leading zeros are decimal");
}

static bool cidr_inside(const struct any_cidr *in, const struct any_cidr *out)
{
	if (in->v6 != out->v6)
		return false;
	if (in->v6)
		return in->prefix6 > out->prefix6 && bits6_contain(out->a6, out->prefix6, in->a6);
	return in->c4.prefix > out->c4.prefix && cidr4_contains(&out->c4, in->c4.net);
}

/* Sets *v6 for an IPv6 block: valid, but it matches nothing here. */
static int parse_ipblock(struct pol_policy *p, const json_t *ib, const char *path,
			 struct pol_peer *pe, bool *v6, char *err, size_t errlen)
{
	char sub[PATH_LEN];
	const json_t *cidr, *except;
	struct any_cidr c, e;
	int ret;

	if (!json_is_object(ib))
		return fail(err, errlen, path, "is %s; expected {\"cidr\": \"10.0.0.0/8\"}",
			    jtype(ib));
	pe->is_ipblock = true;
	cidr = member(ib, "cidr");
	subpath(sub, sizeof(sub), "%s.cidr", path);
	if (!cidr || (json_is_string(cidr) && !json_string_length(cidr)))
		return fail(err, errlen, sub, "missing; expected an IPv4 CIDR such as 10.0.0.0/8");
	if (!json_is_string(cidr))
		return fail(err, errlen, sub, "is %s; expected an IPv4 CIDR such as 10.0.0.0/8",
			    jtype(cidr));
	ret = parse_cidr(p, json_string_value(cidr), sub, &c, err, errlen);
	if (ret)
		return ret;
	*v6 = c.v6;
	pe->cidr = c.c4;
	except = member(ib, "except");
	if (!except)
		return 0;
	subpath(sub, sizeof(sub), "%s.except", path);
	if (!json_is_array(except))
		return fail(err, errlen, sub, "is %s; expected a list of CIDRs inside cidr",
			    jtype(except));
	if (!json_array_size(except))
		return 0;
	pe->except = calloc(json_array_size(except), sizeof(*pe->except));
	if (!pe->except)
		return oom(err, errlen);
	for (size_t i = 0; i < json_array_size(except); i++) {
		const json_t *ej = json_array_get(except, i);

		subpath(sub, sizeof(sub), "%s.except[%zu]", path, i);
		if (!json_is_string(ej))
			return fail(err, errlen, sub, "is %s; expected an IPv4 CIDR inside cidr",
				    jtype(ej));
		ret = parse_cidr(p, json_string_value(ej), sub, &e, err, errlen);
		if (ret)
			return ret;
		/* Upstream ValidateIPBlock: "must be a strict subset of cidr",
		 * compared after both are masked, in one family. */
		if (!cidr_inside(&e, &c))
			return fail(err, errlen, sub,
				    "'%s' is not strictly inside cidr '%s'; expected a smaller block "
				    "within it",
				    json_string_value(ej), json_string_value(cidr));
		if (!c.v6)
			pe->except[pe->nexcept++] = e.c4;
	}
	return 0;
}

static int parse_peer(struct pol_policy *p, const json_t *j, const char *path,
		      struct pol_peer *pe, bool *v6, char *err, size_t errlen)
{
	char sub[PATH_LEN];
	const json_t *ps, *ns, *ib;
	int ret;

	*v6 = false;
	if (!json_is_object(j))
		return fail(err, errlen, path,
			    "is %s; expected a peer with podSelector, namespaceSelector or ipBlock",
			    jtype(j));
	ps = member(j, "podSelector");
	ns = member(j, "namespaceSelector");
	ib = member(j, "ipBlock");
	/* Upstream ValidateNetworkPolicyPeer: at least one; ipBlock alone. */
	if (!ps && !ns && !ib)
		return fail(err, errlen, path,
			    "names no peer; expected podSelector, namespaceSelector or ipBlock");
	if (ib && (ps || ns))
		return fail(
			err, errlen, path,
			"has both ipBlock and %s; an ipBlock peer cannot have selectors, so use "
			"two peers",
			ps ? "podSelector" : "namespaceSelector");
	if (ib) {
		subpath(sub, sizeof(sub), "%s.ipBlock", path);
		return parse_ipblock(p, ib, sub, pe, v6, err, errlen);
	}
	if (ps) {
		pe->has_pod_sel = true;
		subpath(sub, sizeof(sub), "%s.podSelector", path);
		ret = pol_selector_parse(ps, sub, &pe->pod_sel, err, errlen);
		if (ret)
			return ret;
	}
	if (ns) {
		pe->has_ns_sel = true;
		subpath(sub, sizeof(sub), "%s.namespaceSelector", path);
		ret = pol_selector_parse(ns, sub, &pe->ns_sel, err, errlen);
		if (ret)
			return ret;
	}
	return 0;
}

/* Upstream ValidateNetworkPolicyPort, plus the TCP default of
 * SetDefaults_NetworkPolicyPort. */
static int parse_port(const json_t *j, const char *path, struct pol_port *pp, char *err,
		      size_t errlen)
{
	char sub[PATH_LEN];
	const json_t *proto, *port, *end;
	json_int_t v;

	if (!json_is_object(j))
		return fail(err, errlen, path,
			    "is %s; expected {\"protocol\", \"port\", \"endPort\"}", jtype(j));
	proto = member(j, "protocol");
	subpath(sub, sizeof(sub), "%s.protocol", path);
	pp->proto = IPPROTO_TCP;
	if (proto && !json_is_string(proto))
		return fail(err, errlen, sub, "is %s; expected TCP, UDP or SCTP", jtype(proto));
	if (proto) {
		const char *s = json_string_value(proto);

		if (!strcmp(s, "UDP"))
			pp->proto = IPPROTO_UDP;
		else if (!strcmp(s, "SCTP"))
			pp->proto = IPPROTO_SCTP;
		else if (strcmp(s, "TCP"))
			return fail(err, errlen, sub,
				    "'%s' is not supported; expected TCP, UDP or SCTP (upper case)",
				    s);
	}

	port = member(j, "port");
	subpath(sub, sizeof(sub), "%s.port", path);
	if (!port) {
		pp->kind = PORT_ANY;
	} else if (json_is_integer(port)) {
		v = json_integer_value(port);
		if (v < 1 || v > 65535)
			return fail(err, errlen, sub,
				    "%" JSON_INTEGER_FORMAT
				    " is out of range; expected 1-65535 or a port name",
				    v);
		pp->kind = PORT_NUMBER;
		pp->port = pp->end_port = (uint16_t)v;
	} else if (json_is_string(port)) {
		if (!port_name_ok(json_string_value(port)))
			return fail(
				err, errlen, sub,
				"'%s' is not a valid port name; expected a number 1-65535 or a "
				"name of 1-15 lowercase letters, digits and '-' with at least one "
				"letter, such as http",
				json_string_value(port));
		pp->kind = PORT_NAMED;
		pp->name = strdup(json_string_value(port));
		if (!pp->name)
			return oom(err, errlen);
	} else {
		return fail(err, errlen, sub, "is %s; expected a number 1-65535 or a port name",
			    jtype(port));
	}

	end = member(j, "endPort");
	if (!end)
		return 0;
	subpath(sub, sizeof(sub), "%s.endPort", path);
	if (!json_is_integer(end))
		return fail(err, errlen, sub, "is %s; expected a port number 1-65535", jtype(end));
	v = json_integer_value(end);
	if (pp->kind == PORT_ANY)
		return fail(
			err, errlen, sub,
			"is set without port; expected port as well, the first port of the range");
	if (pp->kind == PORT_NAMED)
		return fail(
			err, errlen, sub,
			"is set but port is the name '%s'; expected a numeric port with endPort",
			pp->name);
	if (v < pp->port)
		return fail(err, errlen, sub,
			    "%" JSON_INTEGER_FORMAT
			    " is less than port %u; expected a value >= port",
			    v, pp->port);
	if (v > 65535)
		return fail(err, errlen, sub,
			    "%" JSON_INTEGER_FORMAT " is out of range; expected %u-65535", v,
			    pp->port);
	pp->end_port = (uint16_t)v;
	return 0;
}

static int parse_icmp(const json_t *j, const char *path, struct pol_icmp *ic, char *err,
		      size_t errlen)
{
	char sub[PATH_LEN];
	const json_t *type, *code;

	if (!json_is_object(j))
		return fail(err, errlen, path,
			    "is %s; expected {\"type\": 8} or {\"type\": 3, \"code\": 4}",
			    jtype(j));
	type = member(j, "type");
	code = member(j, "code");
	subpath(sub, sizeof(sub), "%s.type", path);
	if (!type)
		return fail(err, errlen, sub,
			    "missing; expected an ICMP type 0-255, e.g. 8 for echo");
	if (!json_is_integer(type) || json_integer_value(type) < 0 ||
	    json_integer_value(type) > 255)
		return fail(err, errlen, sub, "is not an integer in 0-255; expected an ICMP type");
	ic->type = (uint8_t)json_integer_value(type);
	ic->code = -1;
	if (!code)
		return 0;
	subpath(sub, sizeof(sub), "%s.code", path);
	if (!json_is_integer(code) || json_integer_value(code) < 0 ||
	    json_integer_value(code) > 255)
		return fail(
			err, errlen, sub,
			"is not an integer in 0-255; expected an ICMP code, or no code for all");
	ic->code = (int16_t)json_integer_value(code);
	return 0;
}

/* Allocate a zeroed array for a JSON list so that freeing works whatever
 * point parsing stops at. */
static int list_alloc(const json_t *list, size_t size, void **out, size_t *n, char *err,
		      size_t errlen)
{
	*n = 0;
	*out = NULL;
	if (!list || !json_array_size(list))
		return 0;
	*out = calloc(json_array_size(list), size);
	if (!*out)
		return oom(err, errlen);
	*n = json_array_size(list);
	return 0;
}

/*
 * A rule (or part of one) sluice cannot represent, from the API. An Allow
 * rule then matches nothing: the policy still isolates its pods, this rule
 * adds no allow. A Deny rule must not vanish or narrow, which would let
 * through what it denies: it becomes "deny everything" in its direction.
 */
static void rule_fail_closed(struct pol_rule *r)
{
	enum pol_action action = r->action;

	rule_free(r);
	memset(r, 0, sizeof(*r));
	r->action = action;
	r->any_peer = r->any_port = action == POL_DENY;
}

/* Drop the entries of a list whose keep[] is false, keeping the order. */
static size_t compact(void *v, size_t size, size_t n, const bool *keep)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		if (keep[i]) {
			if (k != i)
				memcpy((char *)v + k * size, (char *)v + i * size, size);
			k++;
		}
	return k;
}

static int parse_rule(const json_t *j, const char *path, struct pol_policy *p, enum pol_dir dir,
		      struct pol_rule *r, char *err, size_t errlen)
{
	const char *peers_key = dir == POL_INGRESS ? "from" : "to";
	char sub[PATH_LEN];
	const json_t *peers, *ports, *icmp = NULL, *action;
	bool *keep = NULL, bad = false;
	size_t given_peers, given_ports;
	int ret;

	/* A sluice rule whose action cannot be read may be a Deny. */
	if (p->kind != POL_K8S)
		r->action = POL_DENY;
	if (!json_is_object(j)) {
		ret = fail(err, errlen, path, "is %s; expected a rule object ({} allows everything)",
			   jtype(j));
		goto unreadable;
	}
	peers = member(j, peers_key);
	ports = member(j, "ports");
	if (p->kind != POL_K8S) {
		/* Sluice-only fields; a NetworkPolicy ignores them as unknown. */
		icmp = member(j, "icmp");
		action = member(j, "action");
		subpath(sub, sizeof(sub), "%s.action", path);
		if (action && !json_is_string(action)) {
			ret = fail(err, errlen, sub, "is %s; expected Allow or Deny", jtype(action));
			goto unreadable;
		}
		if (!action || !strcmp(json_string_value(action), "Allow")) {
			r->action = POL_ALLOW;
		} else if (strcmp(json_string_value(action), "Deny")) {
			ret = fail(err, errlen, sub, "'%s' is not an action; expected Allow or Deny",
				   json_string_value(action));
			goto unreadable;
		}
	}
	subpath(sub, sizeof(sub), "%s.%s", path, peers_key);
	if (peers && !json_is_array(peers)) {
		ret = fail(err, errlen, sub, "is %s; expected a list of peers", jtype(peers));
		goto unreadable;
	}
	subpath(sub, sizeof(sub), "%s.ports", path);
	if (ports && !json_is_array(ports)) {
		ret = fail(err, errlen, sub, "is %s; expected a list of ports", jtype(ports));
		goto unreadable;
	}
	subpath(sub, sizeof(sub), "%s.icmp", path);
	if (icmp && !json_is_array(icmp)) {
		ret = fail(err, errlen, sub, "is %s; expected a list of {type, code}", jtype(icmp));
		goto unreadable;
	}
	given_peers = json_array_size(peers);
	given_ports = json_array_size(ports) + json_array_size(icmp);
	keep = calloc(given_peers + json_array_size(ports) + json_array_size(icmp) + 1,
		      sizeof(*keep));
	if (!keep)
		return oom(err, errlen);

	/* Each entry that cannot be represented is dropped (API mode): an
	 * Allow rule then allows less, never more. An IPv6 ipBlock is
	 * dropped as exact: it matches no IPv4 traffic. */
	ret = list_alloc(peers, sizeof(*r->peers), (void **)&r->peers, &r->npeers, err, errlen);
	if (ret)
		goto cleanup;
	for (size_t i = 0; i < r->npeers; i++) {
		bool v6 = false;

		subpath(sub, sizeof(sub), "%s.%s[%zu]", path, peers_key, i);
		ret = parse_peer(p, json_array_get(peers, i), sub, &r->peers[i], &v6, err, errlen);
		keep[i] = !ret && !v6;
		bad |= ret != 0;
		if (ret && (ret = tolerate(p, ret, err)))
			goto cleanup;
		if (!keep[i]) {
			peer_free(&r->peers[i]);
			memset(&r->peers[i], 0, sizeof(r->peers[i]));
		}
	}
	r->npeers = compact(r->peers, sizeof(*r->peers), r->npeers, keep);
	ret = list_alloc(ports, sizeof(*r->ports), (void **)&r->ports, &r->nports, err, errlen);
	if (ret)
		goto cleanup;
	for (size_t i = 0; i < r->nports; i++) {
		subpath(sub, sizeof(sub), "%s.ports[%zu]", path, i);
		ret = parse_port(json_array_get(ports, i), sub, &r->ports[i], err, errlen);
		keep[i] = !ret;
		bad |= ret != 0;
		if (ret && (ret = tolerate(p, ret, err)))
			goto cleanup;
		if (!keep[i]) {
			free(r->ports[i].name);
			memset(&r->ports[i], 0, sizeof(r->ports[i]));
		}
	}
	r->nports = compact(r->ports, sizeof(*r->ports), r->nports, keep);
	ret = list_alloc(icmp, sizeof(*r->icmp), (void **)&r->icmp, &r->nicmp, err, errlen);
	if (ret)
		goto cleanup;
	for (size_t i = 0; i < r->nicmp; i++) {
		subpath(sub, sizeof(sub), "%s.icmp[%zu]", path, i);
		ret = parse_icmp(json_array_get(icmp, i), sub, &r->icmp[i], err, errlen);
		keep[i] = !ret;
		bad |= ret != 0;
		if (ret && (ret = tolerate(p, ret, err)))
			goto cleanup;
	}
	r->nicmp = compact(r->icmp, sizeof(*r->icmp), r->nicmp, keep);
	/* Upstream: from/to "empty or missing" matches every peer, ports
	 * "empty or missing" every port; icmp joins ports for sluice rules.
	 * What was given decides, not what is left: a rule whose every peer
	 * was dropped matches no peer. */
	r->any_peer = !given_peers;
	r->any_port = !given_ports;
	if (bad && r->action == POL_DENY)
		rule_fail_closed(r);
	ret = 0;
cleanup:
	free(keep);
	return ret;
unreadable:
	ret = tolerate(p, ret, err);
	if (!ret)
		rule_fail_closed(r);
	return ret;
}

static int parse_rules(const json_t *spec, enum pol_dir dir, struct pol_policy *p, char *err,
		       size_t errlen)
{
	const char *key = dir == POL_INGRESS ? "ingress" : "egress";
	const json_t *list = member(spec, key);
	struct pol_rule **rules = dir == POL_INGRESS ? &p->in : &p->eg;
	size_t *n = dir == POL_INGRESS ? &p->nin : &p->neg;
	char sub[PATH_LEN];
	int ret;

	if (list && !json_is_array(list)) {
		subpath(sub, sizeof(sub), "spec.%s", key);
		ret = tolerate(p, fail(err, errlen, sub, "is %s; expected a list of rules",
				       jtype(list)), err);
		if (ret)
			return ret;
		/* Unreadable rules: parse_spec isolates the direction; a sluice
		 * policy may have had Deny rules among them, so it denies all. */
		if (p->kind == POL_K8S)
			return 0;
		*rules = calloc(1, sizeof(**rules));
		if (!*rules)
			return oom(err, errlen);
		*n = 1;
		(*rules)->action = POL_DENY;
		rule_fail_closed(*rules);
		return 0;
	}
	ret = list_alloc(list, sizeof(**rules), (void **)rules, n, err, errlen);
	if (ret)
		return ret;
	for (size_t i = 0; i < *n; i++) {
		subpath(sub, sizeof(sub), "spec.%s[%zu]", key, i);
		ret = parse_rule(json_array_get(list, i), sub, p, dir, &(*rules)[i], err, errlen);
		if (ret)
			return ret;
	}
	return 0;
}

/* Upstream SetDefaults_NetworkPolicy (pkg/apis/networking/v1/defaults.go):
 * when policyTypes is empty, Ingress always, plus Egress when
 * len(spec.egress) != 0. So "egress: []" does NOT add Egress: a policy
 * that wants to deny all egress must list Egress explicitly. The sluice
 * CRDs default the same way. Explicit values win; rules of a direction
 * not listed are kept (they are valid) but never consulted. */
static int parse_policy_types(const json_t *spec, struct pol_policy *p, char *err, size_t errlen)
{
	const json_t *pt = member(spec, "policyTypes");
	char sub[PATH_LEN];

	if (pt && !json_is_array(pt))
		return fail(err, errlen, "spec.policyTypes",
			    "is %s; expected a list such as [\"Ingress\", \"Egress\"]", jtype(pt));
	if (!pt || !json_array_size(pt)) {
		p->ingress = true;
		p->egress = p->neg != 0;
		return 0;
	}
	if (json_array_size(pt) > 2)
		return fail(err, errlen, "spec.policyTypes",
			    "lists %zu types; expected at most two: Ingress and/or Egress",
			    json_array_size(pt));
	for (size_t i = 0; i < json_array_size(pt); i++) {
		const json_t *t = json_array_get(pt, i);

		subpath(sub, sizeof(sub), "spec.policyTypes[%zu]", i);
		if (json_is_string(t) && !strcmp(json_string_value(t), "Ingress"))
			p->ingress = true;
		else if (json_is_string(t) && !strcmp(json_string_value(t), "Egress"))
			p->egress = true;
		else if (json_is_string(t))
			return fail(err, errlen, sub,
				    "'%s' is not a policy type; expected Ingress or Egress "
				    "(case-sensitive)",
				    json_string_value(t));
		else
			return fail(err, errlen, sub, "is %s; expected Ingress or Egress",
				    jtype(t));
	}
	return 0;
}

static int parse_kind(const json_t *obj, enum pol_kind *kind, char *err, size_t errlen)
{
	const json_t *av = member(obj, "apiVersion"), *k = member(obj, "kind");
	const char *a, *s;

	if (!av || !json_is_string(av))
		return fail(err, errlen, "apiVersion",
			    "%s; expected networking.k8s.io/v1 or sluice.io/v1alpha1",
			    av ? "is not a string" : "missing");
	if (!k || !json_is_string(k))
		return fail(err, errlen, "kind",
			    "%s; expected NetworkPolicy, SluiceNetworkPolicy or "
			    "SluiceClusterNetworkPolicy",
			    k ? "is not a string" : "missing");
	a = json_string_value(av);
	s = json_string_value(k);
	if (!strcmp(a, "networking.k8s.io/v1")) {
		if (!strcmp(s, "NetworkPolicy")) {
			*kind = POL_K8S;
			return 0;
		}
		if (!strcmp(s, "SluiceNetworkPolicy") || !strcmp(s, "SluiceClusterNetworkPolicy"))
			return fail(err, errlen, "apiVersion",
				    "%s is not served by networking.k8s.io/v1; expected apiVersion "
				    "sluice.io/v1alpha1",
				    s);
		return fail(
			err, errlen, "kind",
			"'%s' is not a policy kind of networking.k8s.io/v1; expected NetworkPolicy",
			s);
	}
	if (!strcmp(a, "sluice.io/v1alpha1")) {
		if (!strcmp(s, "SluiceNetworkPolicy")) {
			*kind = POL_SLUICE;
			return 0;
		}
		if (!strcmp(s, "SluiceClusterNetworkPolicy")) {
			*kind = POL_SLUICE_CLUSTER;
			return 0;
		}
		if (!strcmp(s, "NetworkPolicy"))
			return fail(err, errlen, "apiVersion",
				    "NetworkPolicy is not served by sluice.io/v1alpha1; expected "
				    "networking.k8s.io/v1");
		return fail(
			err, errlen, "kind",
			"'%s' is not a kind of sluice.io/v1alpha1; expected SluiceNetworkPolicy or "
			"SluiceClusterNetworkPolicy",
			s);
	}
	return fail(err, errlen, "apiVersion",
		    "'%s' is not supported; expected networking.k8s.io/v1 (NetworkPolicy) or "
		    "sluice.io/v1alpha1 (SluiceNetworkPolicy, SluiceClusterNetworkPolicy)",
		    a);
}

static int parse_meta(const json_t *obj, struct pol_policy *p, char *err, size_t errlen)
{
	const json_t *meta = member(obj, "metadata"), *name, *ns;
	const char *nsname = "default";

	if (!meta)
		return fail(err, errlen, "metadata", "missing; expected an object with a name");
	if (!json_is_object(meta))
		return fail(err, errlen, "metadata", "is %s; expected an object with a name",
			    jtype(meta));
	name = member(meta, "name");
	if (!name || (json_is_string(name) && !json_string_length(name)))
		return fail(err, errlen, "metadata.name",
			    "missing; expected a DNS-1123 subdomain such as allow-web");
	if (!json_is_string(name))
		return fail(err, errlen, "metadata.name", "is %s; expected a string", jtype(name));
	if (!dns_subdomain_n(json_string_value(name), json_string_length(name)))
		return fail(err, errlen, "metadata.name",
			    "'%s' is not a valid name; expected at most 253 lowercase letters, "
			    "digits, '-' and '.', starting and ending with a letter or digit",
			    json_string_value(name));
	p->name = strdup(json_string_value(name));
	if (!p->name)
		return oom(err, errlen);

	/* Cluster-scoped: the apiserver clears metadata.namespace, so do we. */
	if (p->kind == POL_SLUICE_CLUSTER)
		return 0;
	ns = member(meta, "namespace");
	if (ns && !json_is_string(ns))
		return fail(err, errlen, "metadata.namespace", "is %s; expected a namespace name",
			    jtype(ns));
	/* kubectl fills in the context's namespace, "default" without one. */
	if (ns && json_string_length(ns))
		nsname = json_string_value(ns);
	if (!dns_label(nsname))
		return fail(err, errlen, "metadata.namespace",
			    "'%s' is not a valid namespace name; expected at most 63 lowercase "
			    "letters, digits and '-', starting and ending with a letter or digit",
			    nsname);
	p->ns = strdup(nsname);
	if (!p->ns)
		return oom(err, errlen);
	return 0;
}

/* A spec that cannot be read at all (API mode): every pod the object can
 * cover is isolated both ways with nothing allowed, and a sluice policy,
 * which may have denied, denies everything. */
static int spec_fail_closed(struct pol_policy *p, char *err, size_t errlen)
{
	pol_selector_free(&p->pod_sel);
	p->has_ns_sel = false;
	pol_selector_free(&p->ns_sel);
	p->ingress = p->egress = true;
	p->audit = false;
	if (p->kind == POL_K8S)
		return 0;
	p->in = calloc(1, sizeof(*p->in));
	p->eg = calloc(1, sizeof(*p->eg));
	if (!p->in || !p->eg)
		return oom(err, errlen);
	p->nin = p->neg = 1;
	p->in->action = p->eg->action = POL_DENY;
	rule_fail_closed(p->in);
	rule_fail_closed(p->eg);
	return 0;
}

static int parse_spec(const json_t *obj, struct pol_policy *p, char *err, size_t errlen)
{
	const json_t *spec = member(obj, "spec"), *ps, *nsel, *mode;
	int ret;

	/*
	 * NetworkPolicy: spec and spec.podSelector are optional upstream
	 * (types.go: "If it is not specified, it defaults to an empty
	 * selector"), so an absent one selects every pod of the namespace. The
	 * sluice CRDs require podSelector: our schema, and a forgotten selector
	 * should not silently cover a whole namespace.
	 */
	if (!spec && p->kind == POL_K8S) {
		p->ingress = true;
		return 0;
	}
	if (!spec || !json_is_object(spec)) {
		ret = spec ? fail(err, errlen, "spec", "is %s; expected an object", jtype(spec))
			   : fail(err, errlen, "spec",
				  "missing; expected an object with at least podSelector");
		ret = tolerate(p, ret, err);
		return ret ? ret : spec_fail_closed(p, err, errlen);
	}
	/* An unreadable (or, for the CRDs, missing) podSelector selects every
	 * pod the policy can cover: more isolation, never less. */
	ps = member(spec, "podSelector");
	if (!ps && p->kind == POL_SLUICE)
		ret = fail(err, errlen, "spec.podSelector",
			   "missing; use {} to select every pod in the namespace");
	else if (!ps && p->kind == POL_SLUICE_CLUSTER)
		ret = fail(err, errlen, "spec.podSelector",
			   "missing; use {} to select every pod (spec.namespaceSelector limits the "
			   "namespaces)");
	else
		ret = pol_selector_parse(ps, "spec.podSelector", &p->pod_sel, err, errlen);
	ret = tolerate(p, ret, err);
	if (ret)
		return ret;
	if (p->kind == POL_SLUICE_CLUSTER) {
		nsel = member(spec, "namespaceSelector");
		p->has_ns_sel = nsel != NULL;
		ret = pol_selector_parse(nsel, "spec.namespaceSelector", &p->ns_sel, err, errlen);
		if (ret)
			p->has_ns_sel = false; /* every namespace */
		ret = tolerate(p, ret, err);
		if (ret)
			return ret;
	}
	if (p->kind != POL_K8S) {
		/* Unreadable: Enforce, which isolates; Audit would not. */
		mode = member(spec, "mode");
		ret = 0;
		if (mode && !json_is_string(mode))
			ret = fail(err, errlen, "spec.mode", "is %s; expected Enforce or Audit",
				   jtype(mode));
		else if (mode && !strcmp(json_string_value(mode), "Audit"))
			p->audit = true;
		else if (mode && strcmp(json_string_value(mode), "Enforce"))
			ret = fail(err, errlen, "spec.mode",
				   "'%s' is not a mode; expected Enforce (the default) or Audit",
				   json_string_value(mode));
		ret = tolerate(p, ret, err);
		if (ret)
			return ret;
	}
	ret = parse_rules(spec, POL_INGRESS, p, err, errlen);
	if (ret)
		return ret;
	ret = parse_rules(spec, POL_EGRESS, p, err, errlen);
	if (ret)
		return ret;
	ret = parse_policy_types(spec, p, err, errlen);
	if (ret) {
		/* Unreadable policyTypes: both directions. */
		ret = tolerate(p, ret, err);
		p->ingress = p->egress = true;
		return ret;
	}
	/* A direction whose rules could not be read is isolated. */
	if (member(spec, "ingress") && !json_is_array(member(spec, "ingress")))
		p->ingress = true;
	if (member(spec, "egress") && !json_is_array(member(spec, "egress")))
		p->egress = true;
	return 0;
}

static int parse(const json_t *obj, bool from_api, struct pol_policy **out, char *err,
		 size_t errlen)
{
	struct pol_policy *p = NULL;
	int ret;

	*out = NULL;
	if (!json_is_object(obj))
		return fail(err, errlen, "(object)", "is %s; expected a policy object",
			    obj ? jtype(obj) : "missing");
	p = calloc(1, sizeof(*p));
	if (!p)
		return oom(err, errlen);
	p->from_api = from_api;
	ret = parse_kind(obj, &p->kind, err, errlen);
	if (ret)
		goto cleanup;
	ret = parse_meta(obj, p, err, errlen);
	if (ret)
		goto cleanup;
	ret = parse_spec(obj, p, err, errlen);
	if (ret)
		goto cleanup;
	*out = p;
	return 0;
cleanup:
	pol_free(p);
	return ret;
}

int pol_parse(const json_t *obj, struct pol_policy **out, char *err, size_t errlen)
{
	return parse(obj, false, out, err, errlen);
}

int pol_parse_api(const json_t *obj, struct pol_policy **out, char *err, size_t errlen)
{
	return parse(obj, true, out, err, errlen);
}

/* ---- the reference decision ---------------------------------------- */

/* Bounded appends for verdict reasons: truncation is acceptable, overflow
 * is not. */
struct sbuf {
	char *s;
	size_t len;
	size_t off;
};

static void sb_add(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_add(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->off + 1 >= b->len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->s + b->off, b->len - b->off, fmt, ap);
	va_end(ap);
	if (n > 0)
		b->off = b->off + (size_t)n < b->len ? b->off + (size_t)n : b->len - 1;
}

static const char *proto_name(uint8_t proto)
{
	switch (proto) {
	case IPPROTO_TCP:
		return "TCP";
	case IPPROTO_UDP:
		return "UDP";
	case IPPROTO_SCTP:
		return "SCTP";
	case IPPROTO_ICMP:
		return "ICMP";
	default:
		return "IP";
	}
}

static bool has_ports(uint8_t proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP;
}

static const char *kind_name(enum pol_kind k)
{
	switch (k) {
	case POL_SLUICE:
		return "sluicenetworkpolicy";
	case POL_SLUICE_CLUSTER:
		return "sluiceclusternetworkpolicy";
	default:
		return "networkpolicy";
	}
}

static void sb_policy(struct sbuf *b, const struct pol_policy *p)
{
	if (p->ns)
		sb_add(b, "%s %s/%s", kind_name(p->kind), p->ns, p->name);
	else
		sb_add(b, "%s %s", kind_name(p->kind), p->name);
}

/* Kubernetes' own selector notation: a=b,k in (x,y),k notin (z),k,!k */
static void sb_selector(struct sbuf *b, const struct pol_selector *s)
{
	const char *sep = "";

	for (size_t i = 0; i < s->match.n; i++, sep = ",")
		sb_add(b, "%s%s=%s", sep, s->match.v[i].key, s->match.v[i].value);
	for (size_t i = 0; i < s->nexpr; i++, sep = ",") {
		const struct pol_expr *x = &s->expr[i];

		switch (x->op) {
		case SEL_EXISTS:
			sb_add(b, "%s%s", sep, x->key);
			break;
		case SEL_DOES_NOT_EXIST:
			sb_add(b, "%s!%s", sep, x->key);
			break;
		default:
			sb_add(b, "%s%s %s (", sep, x->key, x->op == SEL_IN ? "in" : "notin");
			for (size_t j = 0; j < x->nval; j++)
				sb_add(b, "%s%s", j ? "," : "", x->val[j]);
			sb_add(b, ")");
		}
	}
}

static void sb_peer(struct sbuf *b, const struct pol_policy *p, const struct pol_rule *r, int idx,
		    enum pol_dir dir)
{
	const struct pol_peer *pe;
	char c[24];

	sb_add(b, "%s ", dir == POL_INGRESS ? "from" : "to");
	if (idx < 0) {
		sb_add(b, "anywhere");
		return;
	}
	pe = &r->peers[idx];
	if (pe->is_ipblock) {
		cidr4_format(&pe->cidr, c, sizeof(c));
		sb_add(b, "%s", c);
		for (size_t i = 0; i < pe->nexcept; i++) {
			cidr4_format(&pe->except[i], c, sizeof(c));
			sb_add(b, "%s%s", i ? ", " : " except ", c);
		}
		return;
	}
	if (pe->has_pod_sel && !selector_empty(&pe->pod_sel)) {
		sb_add(b, "pods matching ");
		sb_selector(b, &pe->pod_sel);
	} else {
		sb_add(b, pe->has_ns_sel ? "pods" : "all pods");
	}
	if (pe->has_ns_sel && selector_empty(&pe->ns_sel)) {
		sb_add(b, " in all namespaces");
	} else if (pe->has_ns_sel) {
		sb_add(b, " in namespaces matching ");
		sb_selector(b, &pe->ns_sel);
	} else if (p->kind == POL_SLUICE_CLUSTER) {
		sb_add(b, " in any namespace");
	} else {
		sb_add(b, " in namespace %s", p->ns);
	}
}

static void sb_portdesc(struct sbuf *b, const struct pol_rule *r, int port, int icmp,
			uint16_t dport)
{
	const struct pol_port *pp;

	if (icmp >= 0) {
		sb_add(b, "ICMP type %u", r->icmp[icmp].type);
		if (r->icmp[icmp].code >= 0)
			sb_add(b, " code %d", r->icmp[icmp].code);
		return;
	}
	if (port < 0) {
		sb_add(b, "any port");
		return;
	}
	pp = &r->ports[port];
	switch (pp->kind) {
	case PORT_ANY:
		sb_add(b, "any %s port", proto_name(pp->proto));
		break;
	case PORT_NUMBER:
		if (pp->port == pp->end_port)
			sb_add(b, "port %u/%s", pp->port, proto_name(pp->proto));
		else
			sb_add(b, "ports %u-%u/%s", pp->port, pp->end_port, proto_name(pp->proto));
		break;
	case PORT_NAMED:
		sb_add(b, "port %s (%u)/%s", pp->name, dport, proto_name(pp->proto));
		break;
	}
}

static uint32_t ep_ip(const struct pol_endpoint *e)
{
	return e->pod && e->pod->ip ? e->pod->ip : e->ip;
}

static void sb_endpoint(struct sbuf *b, const struct pol_endpoint *e)
{
	char ip[16];

	ip4_format(ep_ip(e), ip, sizeof(ip));
	if (e->pod && ep_ip(e))
		sb_add(b, "%s/%s at %s", e->pod->ns, e->pod->name, ip);
	else if (e->pod)
		sb_add(b, "%s/%s", e->pod->ns, e->pod->name);
	else
		sb_add(b, "%s", ip);
}

/* One flow seen from one side: the subject is the pod whose policies apply,
 * the peer the other end. Named ports resolve against dst_pod. */
struct flow {
	const struct pol_world *w;
	enum pol_dir dir;
	const struct pol_pod *subject;
	const struct pol_endpoint *peer;
	const struct pol_pod *dst_pod;
	uint8_t proto;
	uint16_t dport;
};

struct hit {
	const struct pol_policy *pol; /* NULL: no such rule */
	int rule;
	int peer; /* index in peers, -1: any peer */
	int port; /* index in ports, -1: none or any */
	int icmp; /* index in icmp, -1: none */
};

struct dir_eval {
	const struct pol_policy *isolator; /* first policy isolating the subject */
	struct hit allow;		   /* first matching allow rule */
	struct hit deny;		   /* first matching deny rule */
};

static bool rule_matches(const struct flow *f, const struct pol_policy *p, const struct pol_rule *r,
			 struct hit *h)
{
	uint32_t ip = ep_ip(f->peer);

	h->peer = h->port = h->icmp = -1;
	if (!r->any_peer) {
		size_t i;

		for (i = 0; i < r->npeers; i++) {
			const struct pol_peer *pe = &r->peers[i];

			/* Selector peers see only pods; an unknown address (0)
			 * is in no ipBlock. */
			if (pe->is_ipblock ? ip && pol_peer_matches_ip(pe, ip)
					   : f->peer->pod && pol_peer_matches_pod(pe, p, f->w,
										  f->peer->pod))
				break;
		}
		if (i == r->npeers)
			return false;
		h->peer = (int)i;
	}
	if (r->any_port)
		return true;
	if (f->proto == IPPROTO_ICMP) {
		/* pol_decide has no ICMP code: an entry naming a code matches
		 * its type here; the datapath checks the code. */
		for (size_t i = 0; i < r->nicmp; i++)
			if (r->icmp[i].type == f->dport) {
				h->icmp = (int)i;
				return true;
			}
		return false;
	}
	for (size_t i = 0; i < r->nports; i++)
		if (port_matches(&r->ports[i], f->dst_pod, f->proto, f->dport)) {
			h->port = (int)i;
			return true;
		}
	return false;
}

static void evaluate(const struct flow *f, bool with_audit, struct dir_eval *e)
{
	memset(e, 0, sizeof(*e));
	for (size_t i = 0; i < f->w->npol; i++) {
		const struct pol_policy *p = f->w->pol[i];
		const struct pol_rule *rules = f->dir == POL_INGRESS ? p->in : p->eg;
		size_t n = f->dir == POL_INGRESS ? p->nin : p->neg;

		if ((p->audit && !with_audit) ||
		    !(f->dir == POL_INGRESS ? p->ingress : p->egress) ||
		    !pol_selects_pod(p, f->w, f->subject))
			continue;
		/* Selecting a pod for a direction isolates it, whatever the
		 * rules say (Kubernetes); a sluice policy holding only Deny
		 * rules therefore also denies everything it does not allow. */
		if (!e->isolator)
			e->isolator = p;
		for (size_t j = 0; j < n; j++) {
			struct hit h;
			struct hit *slot = rules[j].action == POL_DENY ? &e->deny : &e->allow;

			if (slot->pol || !rule_matches(f, p, &rules[j], &h))
				continue;
			h.pol = p;
			h.rule = (int)j;
			*slot = h;
			if (slot == &e->deny)
				return; /* a deny wins; nothing later can change that */
		}
	}
}

static bool eval_allows(const struct dir_eval *e)
{
	return !e->deny.pol && (!e->isolator || e->allow.pol);
}

static void sb_subject(struct sbuf *b, const struct flow *f)
{
	sb_add(b, "%s of %s/%s: ", f->dir == POL_INGRESS ? "ingress" : "egress", f->subject->ns,
	       f->subject->name);
}

static void sb_hit(struct sbuf *b, const struct flow *f, const struct hit *h)
{
	const struct pol_rule *r = (f->dir == POL_INGRESS ? h->pol->in : h->pol->eg) + h->rule;

	sb_policy(b, h->pol);
	sb_add(b, " rule %d (", h->rule);
	sb_peer(b, h->pol, r, h->peer, f->dir);
	sb_add(b, ", ");
	sb_portdesc(b, r, h->port, h->icmp, f->dport);
	sb_add(b, ")");
}

/* "and no rule allows 10.0.0.5:81/TCP" / "... traffic from x/a at ... to port 81/TCP" */
static void sb_no_rule(struct sbuf *b, const struct flow *f)
{
	if (f->dir == POL_EGRESS) {
		sb_add(b, "no rule allows ");
		if (has_ports(f->proto)) {
			sb_endpoint(b, f->peer);
			sb_add(b, "%s%u/%s", f->peer->pod ? " port " : ":", f->dport,
			       proto_name(f->proto));
		} else {
			if (f->proto == IPPROTO_ICMP)
				sb_add(b, "ICMP type %u to ", f->dport);
			else
				sb_add(b, "IP protocol %u to ", f->proto);
			sb_endpoint(b, f->peer);
		}
		return;
	}
	sb_add(b, "no rule allows traffic from ");
	sb_endpoint(b, f->peer);
	if (has_ports(f->proto))
		sb_add(b, " to port %u/%s", f->dport, proto_name(f->proto));
	else if (f->proto == IPPROTO_ICMP)
		sb_add(b, " (ICMP type %u)", f->dport);
	else
		sb_add(b, " (IP protocol %u)", f->proto);
}

static void sb_isolated(struct sbuf *b, const struct flow *f, const struct pol_policy *iso,
			const char *verb)
{
	sb_add(b, "%s/%s %s isolated for %s by ", f->subject->ns, f->subject->name, verb,
	       f->dir == POL_INGRESS ? "ingress" : "egress");
	sb_policy(b, iso);
	sb_add(b, " and ");
	sb_no_rule(b, f);
}

static bool same_pod(const struct pol_pod *a, const struct pol_pod *b)
{
	return a && b && (a == b || (!strcmp(a->ns, b->ns) && !strcmp(a->name, b->name)));
}

static bool is_node_ip(const struct pol_world *w, uint32_t ip)
{
	for (size_t i = 0; i < w->nnode_ips; i++)
		if (w->node_ips[i] == ip)
			return true;
	return false;
}

static void set_hit(struct pol_verdict *v, const struct hit *h)
{
	v->policy = h->pol;
	v->rule = h->rule;
}

static void decide_flow(const struct flow *f, struct pol_verdict *v)
{
	struct sbuf b = {v->reason, sizeof(v->reason), 0};
	struct dir_eval enf, all;
	bool allow_enf, allow_all;

	sb_subject(&b, f);
	if (same_pod(f->subject, f->peer->pod)) {
		sb_add(&b, "allowed: a pod can always reach itself");
		return;
	}
	if (f->dir == POL_INGRESS && is_node_ip(f->w, ep_ip(f->peer))) {
		sb_add(&b, "allowed: ");
		sb_endpoint(&b, f->peer);
		sb_add(&b, " is an address of this node, which can always reach its pods");
		return;
	}
	/* Audit policies never change what is enforced: the verdict comes
	 * from Enforce policies alone, and the run with Audit policies only
	 * tells whether they would have denied. */
	evaluate(f, false, &enf);
	evaluate(f, true, &all);
	allow_enf = eval_allows(&enf);
	allow_all = eval_allows(&all);
	v->isolated = all.isolator != NULL;
	v->allowed = allow_enf;
	if (!allow_enf) {
		if (enf.deny.pol) {
			set_hit(v, &enf.deny);
			v->denied_by_rule = true;
			sb_add(&b, "denied by ");
			sb_hit(&b, f, &enf.deny);
		} else {
			v->policy = enf.isolator;
			sb_add(&b, "denied: ");
			sb_isolated(&b, f, enf.isolator, "is");
		}
		return;
	}
	if (!allow_all) {
		/* Only Audit policies can be behind this denial: an Enforce
		 * deny or Enforce isolation without allow would have denied
		 * above. */
		v->audit_only = true;
		if (all.deny.pol) {
			set_hit(v, &all.deny);
			v->denied_by_rule = true;
			sb_add(&b, "allowed because Audit mode only records it: ");
			sb_hit(&b, f, &all.deny);
			sb_add(&b, " would deny it");
		} else {
			v->policy = all.isolator;
			sb_add(&b, "allowed because Audit mode only records it: ");
			sb_isolated(&b, f, all.isolator, "would be");
		}
		return;
	}
	if (enf.isolator) {
		set_hit(v, &enf.allow);
		sb_add(&b, "allowed by ");
		sb_hit(&b, f, &enf.allow);
	} else if (all.isolator) {
		set_hit(v, &all.allow);
		sb_add(&b, "allowed: only Audit-mode policies select %s/%s, and ", f->subject->ns,
		       f->subject->name);
		sb_hit(&b, f, &all.allow);
		sb_add(&b, " would allow it");
	} else {
		sb_add(&b, "allowed: no policy isolates %s/%s for %s", f->subject->ns,
		       f->subject->name, f->dir == POL_INGRESS ? "ingress" : "egress");
	}
}

void pol_decide_dir(const struct pol_world *w, enum pol_dir dir, const struct pol_endpoint *src,
		    const struct pol_endpoint *dst, uint8_t proto, uint16_t dport,
		    struct pol_verdict *v)
{
	struct flow f = {
		.w = w,
		.dir = dir,
		.subject = dir == POL_INGRESS ? dst->pod : src->pod,
		.peer = dir == POL_INGRESS ? src : dst,
		.dst_pod = dst->pod,
		.proto = proto,
		.dport = dport,
	};

	memset(v, 0, sizeof(*v));
	v->allowed = true;
	v->dir = dir;
	v->rule = -1;
	if (!f.subject) {
		struct sbuf b = {v->reason, sizeof(v->reason), 0};

		sb_add(&b, "%s of ", dir == POL_INGRESS ? "ingress" : "egress");
		sb_endpoint(&b, dir == POL_INGRESS ? dst : src);
		sb_add(&b, ": allowed: not a pod, so no policy applies");
		return;
	}
	if (f.subject->labels_unknown) {
		struct sbuf b = {v->reason, sizeof(v->reason), 0};

		v->allowed = false;
		v->isolated = true;
		sb_add(&b, "%s of ", dir == POL_INGRESS ? "ingress" : "egress");
		sb_endpoint(&b, dir == POL_INGRESS ? dst : src);
		sb_add(&b, ": denied: its Pod object (labels) has not arrived from the Kubernetes "
			   "API yet, so it is isolated both ways");
		return;
	}
	decide_flow(&f, v);
}

void pol_decide(const struct pol_world *w, const struct pol_endpoint *src,
		const struct pol_endpoint *dst, uint8_t proto, uint16_t dport,
		struct pol_verdict *v)
{
	struct pol_verdict eg, in;

	if (!src->pod && !dst->pod) {
		struct sbuf b = {v->reason, sizeof(v->reason), 0};

		memset(v, 0, sizeof(*v));
		v->allowed = true;
		v->dir = POL_EGRESS;
		v->rule = -1;
		sb_add(&b, "allowed: neither ");
		sb_endpoint(&b, src);
		sb_add(&b, " nor ");
		sb_endpoint(&b, dst);
		sb_add(&b, " is a pod, so no policy applies");
		return;
	}
	if (!src->pod) {
		pol_decide_dir(w, POL_INGRESS, src, dst, proto, dport, v);
		return;
	}
	if (!dst->pod) {
		pol_decide_dir(w, POL_EGRESS, src, dst, proto, dport, v);
		return;
	}
	/* Both sides are pods: the packet leaves through src's egress policy,
	 * then meets dst's ingress policy; either may drop it. */
	pol_decide_dir(w, POL_EGRESS, src, dst, proto, dport, &eg);
	pol_decide_dir(w, POL_INGRESS, src, dst, proto, dport, &in);
	if (!eg.allowed)
		*v = eg;
	else if (!in.allowed)
		*v = in;
	else if (eg.audit_only)
		*v = eg;
	else if (in.audit_only)
		*v = in;
	else if (eg.isolated && !in.isolated)
		*v = eg;
	else
		*v = in;
}
