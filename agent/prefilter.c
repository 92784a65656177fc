// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"
#include "prefilter.h"

#define PF_KIND "SluicePrefilter"
#define PF_API "sluice.io/v1alpha1"

void pf_free(struct pf_object *o)
{
	if (!o)
		return;
	free(o->name);
	free(o->deny);
	free(o->except);
	free(o->ports);
	pol_selector_free(&o->sel);
	free(o->invalid);
	free(o);
}

static int fail(char *err, size_t errlen, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, const char *name, const char *fmt, ...)
{
	char buf[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	snprintf(err, errlen, PF_KIND " %s: %s", name, buf);
	return -EINVAL;
}

/* A list of CIDRs at spec.<field>; required: it must be there and not empty. */
static int parse_cidrs(const json_t *spec, const char *field, bool required, const char *name,
		       struct cidr4 **out, size_t *n, char *err, size_t errlen)
{
	const json_t *arr = json_object_get(spec, field), *e;
	char why[256];
	size_t i;

	if (!arr || json_is_null(arr)) {
		if (required)
			return fail(err, errlen, name,
				    "spec.%s: missing; expected a non-empty list of IPv4 CIDRs such "
				    "as [\"203.0.113.0/24\"]", field);
		return 0;
	}
	if (!json_is_array(arr))
		return fail(err, errlen, name, "spec.%s: is %s; expected a list of IPv4 CIDRs",
			    field, manifest_type_name(arr));
	if (required && !json_array_size(arr))
		return fail(err, errlen, name,
			    "spec.%s: is empty; expected at least one IPv4 CIDR (delete the object "
			    "to stop filtering)", field);
	*out = calloc(json_array_size(arr) + 1, sizeof(**out));
	if (!*out)
		return -ENOMEM;
	json_array_foreach(arr, i, e) {
		if (!json_is_string(e))
			return fail(err, errlen, name, "spec.%s[%zu]: is %s; expected an IPv4 CIDR "
				    "such as 203.0.113.0/24", field, i, manifest_type_name(e));
		if (cidr4_parse(json_string_value(e), &(*out)[i], why, sizeof(why)))
			return fail(err, errlen, name, "spec.%s[%zu]: %s", field, i, why);
		(*n)++;
	}
	return 0;
}

static int parse_ports(const json_t *spec, struct pf_object *o, char *err, size_t errlen)
{
	const json_t *arr = json_object_get(spec, "ports"), *e, *port, *proto;
	const char *key;
	json_t *v;
	size_t i;

	if (!arr || json_is_null(arr))
		return 0;
	if (!json_is_array(arr))
		return fail(err, errlen, o->name, "spec.ports: is %s; expected a list of "
			    "{protocol, port}", manifest_type_name(arr));
	o->ports = calloc(json_array_size(arr) + 1, sizeof(*o->ports));
	if (!o->ports)
		return -ENOMEM;
	json_array_foreach(arr, i, e) {
		struct pf_port *p = &o->ports[o->nports];
		const char *s;

		if (!json_is_object(e))
			return fail(err, errlen, o->name, "spec.ports[%zu]: is %s; expected "
				    "{protocol: TCP, port: 443}", i, manifest_type_name(e));
		json_object_foreach((json_t *)e, key, v)
			if (strcmp(key, "protocol") && strcmp(key, "port"))
				return fail(err, errlen, o->name, "spec.ports[%zu].%s: unknown field; "
					    "expected protocol and port", i, key);
		port = json_object_get(e, "port");
		proto = json_object_get(e, "protocol");
		if (!json_is_integer(port) || json_integer_value(port) < 1 ||
		    json_integer_value(port) > 65535)
			return fail(err, errlen, o->name, "spec.ports[%zu].port: expected a port "
				    "number 1-65535", i);
		s = proto ? json_string_value(proto) : "TCP";
		if (s && !strcmp(s, "TCP"))
			p->proto = IPPROTO_TCP;
		else if (s && !strcmp(s, "UDP"))
			p->proto = IPPROTO_UDP;
		else if (s && !strcmp(s, "SCTP"))
			p->proto = IPPROTO_SCTP;
		else
			return fail(err, errlen, o->name, "spec.ports[%zu].protocol: expected TCP, "
				    "UDP or SCTP", i);
		p->port = (uint16_t)json_integer_value(port);
		o->nports++;
	}
	return 0;
}

static bool cidr_within(const struct cidr4 *in, const struct cidr4 *out)
{
	return in->prefix >= out->prefix && cidr4_contains(out, in->net);
}

static int cidr_cmp(const void *a, const void *b)
{
	const struct cidr4 *x = a, *y = b;

	if (x->net != y->net)
		return x->net < y->net ? -1 : 1;
	return x->prefix - y->prefix;
}

/* Each except inside some deny: the deny CIDRs sorted, and for each except
 * the at most 33 prefixes that could hold it looked up, O((d + e) log d)
 * (a pairwise check was 10^10 steps for 100 000 of each). */
static int excepts_inside(const struct pf_object *o, char *err, size_t errlen)
{
	struct cidr4 *sorted;
	uint64_t lens = 0;
	char buf[24];
	int ret = 0;

	if (!o->nexcept)
		return 0;
	sorted = malloc(o->ndeny * sizeof(*sorted));
	if (!sorted)
		return -ENOMEM;
	memcpy(sorted, o->deny, o->ndeny * sizeof(*sorted));
	qsort(sorted, o->ndeny, sizeof(*sorted), cidr_cmp);
	for (size_t j = 0; j < o->ndeny; j++)
		lens |= 1ull << o->deny[j].prefix;
	for (size_t i = 0; !ret && i < o->nexcept; i++) {
		bool inside = false;

		for (int len = 0; !inside && len <= o->except[i].prefix; len++) {
			struct cidr4 key = { .net = len ? o->except[i].net & (~0u << (32 - len)) : 0,
					     .prefix = len };

			inside = (lens >> len & 1) &&
				 bsearch(&key, sorted, o->ndeny, sizeof(*sorted), cidr_cmp);
		}
		if (!inside) {
			cidr4_format(&o->except[i], buf, sizeof(buf));
			ret = fail(err, errlen, o->name, "spec.except[%zu] %s: lies inside no deny "
				   "CIDR of this object; an exception only narrows a deny", i, buf);
		}
	}
	free(sorted);
	return ret;
}

static int parse_spec(const json_t *obj, struct pf_object *o, char *err, size_t errlen)
{
	static const char *const known[] = { "deny", "except", "ports", "nodeSelector" };
	const json_t *spec = json_object_get(obj, "spec"), *sel;
	char sub[256];
	const char *key;
	json_t *v;
	int ret;

	if (!json_is_object(spec))
		return fail(err, errlen, o->name, "spec: %s; expected an object with deny",
			    spec ? "not an object" : "missing");
	/* A misspelt field ("excepts") would silently drop more than meant. */
	json_object_foreach((json_t *)spec, key, v) {
		size_t k;

		for (k = 0; k < sizeof(known) / sizeof(known[0]); k++)
			if (!strcmp(key, known[k]))
				break;
		if (k == sizeof(known) / sizeof(known[0]))
			return fail(err, errlen, o->name, "spec.%s: unknown field; expected deny, "
				    "except, ports and nodeSelector", key);
	}
	ret = parse_cidrs(spec, "deny", true, o->name, &o->deny, &o->ndeny, err, errlen);
	if (!ret)
		ret = parse_cidrs(spec, "except", false, o->name, &o->except, &o->nexcept, err,
				  errlen);
	if (ret)
		return ret;
	ret = excepts_inside(o, err, errlen);
	if (ret)
		return ret;
	ret = parse_ports(spec, o, err, errlen);
	if (ret)
		return ret;
	sel = json_object_get(spec, "nodeSelector");
	if (sel && !json_is_null(sel)) {
		o->has_sel = true;
		ret = pol_selector_parse(sel, "spec.nodeSelector", &o->sel, sub, sizeof(sub));
		if (ret == -EINVAL)
			return fail(err, errlen, o->name, "%s", sub);
		if (ret)
			return ret;
	}
	return 0;
}

static int parse(const json_t *obj, bool from_api, struct pf_object **out, char *err,
		 size_t errlen)
{
	const char *name = json_string_value(json_object_get(json_object_get(obj, "metadata"),
							     "name"));
	const char *kind = json_string_value(json_object_get(obj, "kind"));
	const char *api = json_string_value(json_object_get(obj, "apiVersion"));
	struct pf_object *o;
	int ret;

	*out = NULL;
	if (!kind || strcmp(kind, PF_KIND) || !api || strcmp(api, PF_API)) {
		snprintf(err, errlen, "not a " PF_API " " PF_KIND);
		return -EINVAL;
	}
	if (!name || !*name || strlen(name) > 253) {
		snprintf(err, errlen, PF_KIND ": metadata.name is missing or longer than 253 "
			 "characters");
		return -EINVAL;
	}
	o = calloc(1, sizeof(*o));
	if (!o || !(o->name = strdup(name))) {
		free(o);
		return -ENOMEM;
	}
	ret = parse_spec(obj, o, err, errlen);
	if (ret == -EINVAL && from_api) {
		/* Nothing of it applies (less filtering, never a lock-out);
		 * its status says why. */
		struct pf_object *keep = calloc(1, sizeof(*keep));

		if (!keep || !(keep->invalid = strdup(err)) || !(keep->name = strdup(name))) {
			pf_free(keep);
			ret = -ENOMEM;
		} else {
			pf_free(o);
			o = keep;
			ret = 0;
		}
	}
	if (ret) {
		pf_free(o);
		if (ret == -ENOMEM)
			snprintf(err, errlen, "out of memory");
		return ret;
	}
	*out = o;
	return 0;
}

int pf_parse(const json_t *obj, struct pf_object **out, char *err, size_t errlen)
{
	return parse(obj, false, out, err, errlen);
}

int pf_parse_api(const json_t *obj, struct pf_object **out, char *err, size_t errlen)
{
	return parse(obj, true, out, err, errlen);
}

bool pf_applies(const struct pf_object *o, const struct pol_labels *node_labels)
{
	static const struct pol_labels none = { 0 };

	if (o->invalid)
		return false;
	return !o->has_sel || pol_selector_matches(&o->sel, node_labels ? node_labels : &none);
}

/* ---- guards ------------------------------------------------------------ */

static int guards_add(struct pf_guards *g, const struct cidr4 *c, bool range, const char *fmt,
		      va_list ap)
{
	if (g->n == g->cap) {
		size_t cap = g->cap ? 2 * g->cap : 16;
		struct pf_guard *v = realloc(g->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		g->v = v;
		g->cap = cap;
	}
	/* A guard added after the index: scans again until indexed anew. */
	free(g->by_net);
	g->by_net = NULL;
	g->v[g->n].c = *c;
	g->v[g->n].range = range;
	vsnprintf(g->v[g->n].what, sizeof(g->v[g->n].what), fmt, ap);
	g->n++;
	return 0;
}

int pf_guards_add_addr(struct pf_guards *g, uint32_t ip, const char *fmt, ...)
{
	struct cidr4 c = { .net = ip, .prefix = 32 };
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = guards_add(g, &c, false, fmt, ap);
	va_end(ap);
	return ret;
}

int pf_guards_add_range(struct pf_guards *g, const struct cidr4 *c, const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = guards_add(g, c, true, fmt, ap);
	va_end(ap);
	return ret;
}

void pf_guards_free(struct pf_guards *g)
{
	free(g->v);
	free(g->by_net);
	memset(g, 0, sizeof(*g));
}

static bool excepted(const struct pf_object *o, const struct cidr4 *c)
{
	for (size_t i = 0; i < o->nexcept; i++)
		if (cidr_within(c, &o->except[i]))
			return true;
	return false;
}

/* Would deny CIDR d of o lock out guard gd? */
static bool guard_hit(const struct pf_object *o, const struct cidr4 *d, const struct pf_guard *gd)
{
	if (!gd->range)
		return cidr4_contains(d, gd->c.net) && !excepted(o, &gd->c);
	if (cidr_within(d, &gd->c))
		return true; /* an exception cannot un-deny all of it */
	return cidr_within(&gd->c, d) && !excepted(o, &gd->c);
}

static int guard_idx_cmp(const void *a, const void *b, void *ctx)
{
	const struct pf_guards *g = ctx;
	const struct pf_guard *x = &g->v[*(const size_t *)a];
	const struct pf_guard *y = &g->v[*(const size_t *)b];

	if (x->c.net != y->c.net)
		return x->c.net < y->c.net ? -1 : 1;
	if (x->c.prefix != y->c.prefix)
		return x->c.prefix - y->c.prefix;
	return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

int pf_guards_index(struct pf_guards *g)
{
	free(g->by_net);
	g->by_net = malloc((g->n + 1) * sizeof(*g->by_net));
	if (!g->by_net)
		return -ENOMEM;
	g->lens = 0;
	for (size_t k = 0; k < g->n; k++) {
		g->by_net[k] = k;
		g->lens |= 1ull << g->v[k].c.prefix;
	}
	qsort_r(g->by_net, g->n, sizeof(*g->by_net), guard_idx_cmp, g);
	return 0;
}

/* The first guard by position in by_net whose net is >= net. */
static size_t guard_lower(const struct pf_guards *g, uint32_t net)
{
	size_t lo = 0, hi = g->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (g->v[g->by_net[mid]].c.net < net)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The guard d of o hits that was added first (the messages name nodes
 * before this node's flags and the API server), or SIZE_MAX. With the
 * index: the guards whose address lies inside d, and the ranges of each
 * shorter length that could hold d; O(log guards) per entry, where a scan
 * was entries x guards (10^9 for 100 000 entries on 5 000 nodes). */
static size_t first_hit(const struct pf_object *o, const struct cidr4 *d,
			const struct pf_guards *g)
{
	uint32_t last = d->net | (d->prefix ? ~(~0u << (32 - d->prefix)) : ~0u);
	size_t best = SIZE_MAX;

	if (!g->by_net) {
		for (size_t k = 0; k < g->n; k++)
			if (guard_hit(o, d, &g->v[k]))
				return k;
		return SIZE_MAX;
	}
	for (size_t at = guard_lower(g, d->net); at < g->n; at++) {
		size_t k = g->by_net[at];

		if (g->v[k].c.net > last)
			break;
		if (k < best && guard_hit(o, d, &g->v[k]))
			best = k;
	}
	for (int len = 0; len < d->prefix; len++) {
		uint32_t net = len ? d->net & (~0u << (32 - len)) : 0;

		if (!(g->lens >> len & 1) || net == d->net)
			continue; /* net == d->net: seen above */
		for (size_t at = guard_lower(g, net); at < g->n; at++) {
			size_t k = g->by_net[at];

			if (g->v[k].c.net != net)
				break;
			if (g->v[k].c.prefix == len && k < best && guard_hit(o, d, &g->v[k]))
				best = k;
		}
	}
	return best;
}

bool pf_entry_offends(const struct pf_object *o, size_t i, const struct pf_guards *g, char *why,
		      size_t whylen)
{
	const struct cidr4 *d = &o->deny[i];
	size_t k = first_hit(o, d, g);
	const struct pf_guard *gd;
	char buf[24];

	if (k == SIZE_MAX)
		return false;
	gd = &g->v[k];
	if (why) {
		cidr4_format(d, buf, sizeof(buf));
		snprintf(why, whylen, "spec.deny[%zu] %s %s %s; narrow it%s", i, buf,
			 gd->range ? "overlaps" : "covers", gd->what,
			 gd->range && cidr_within(d, &gd->c) ? "" : " or add an except");
	}
	return true;
}

bool pf_check(const struct pf_object *o, const struct pf_guards *g, char *err, size_t errlen)
{
	char why[512];

	for (size_t i = 0; i < o->ndeny; i++)
		if (pf_entry_offends(o, i, g, why, sizeof(why))) {
			snprintf(err, errlen, PF_KIND " %s: %s", o->name, why);
			return true;
		}
	return false;
}

/* ---- flattening ---------------------------------------------------------- */

struct item {
	uint32_t net;
	uint8_t len;
	uint64_t deny, except;	/* the objects that list exactly this prefix */
};

static int item_cmp(const void *a, const void *b)
{
	const struct item *x = a, *y = b;

	if (x->net != y->net)
		return x->net < y->net ? -1 : 1;
	return (int)x->len - (int)y->len;
}

static bool holds(uint32_t net, uint8_t len, uint32_t ip)
{
	uint32_t mask = len ? ~0u << (32 - len) : 0;

	return (ip & mask) == net;
}

int pf_flatten(const struct pf_input *in, size_t n, struct pf_prefix **out, size_t *nout)
{
	struct {
		uint32_t net;
		uint8_t len;
		uint64_t deny, except;	/* accumulated down the chain */
		uint64_t own;		/* the objects denying exactly this prefix */
		size_t at;		/* its index in t */
	} stack[34];
	size_t total = 0, k = 0, m = 0, depth = 0;
	struct item *v;
	struct pf_prefix *t;

	*out = NULL;
	*nout = 0;
	for (size_t i = 0; i < n; i++)
		total += in[i].o->ndeny + in[i].o->nexcept;
	v = calloc(total + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct pf_object *o = in[i].o;
		uint64_t bit = 1ull << in[i].slot;

		for (size_t j = 0; j < o->ndeny; j++)
			if (!in[i].skip || !in[i].skip[j])
				v[k++] = (struct item){ o->deny[j].net, (uint8_t)o->deny[j].prefix,
							bit, 0 };
		for (size_t j = 0; j < o->nexcept; j++)
			v[k++] = (struct item){ o->except[j].net, (uint8_t)o->except[j].prefix, 0,
						bit };
	}
	if (k)
		qsort(v, k, sizeof(*v), item_cmp);
	/* Merge duplicates in place. */
	for (size_t i = 0; i < k; i++) {
		if (m && v[m - 1].net == v[i].net && v[m - 1].len == v[i].len) {
			v[m - 1].deny |= v[i].deny;
			v[m - 1].except |= v[i].except;
		} else {
			v[m++] = v[i];
		}
	}
	t = calloc(m + 1, sizeof(*t));
	if (!t) {
		free(v);
		return -ENOMEM;
	}
	/* In (net, len) order a prefix comes after every prefix holding it:
	 * a stack of the chain holding the current one carries the objects
	 * denying and excepting it from above. */
	for (size_t i = 0; i < m; i++) {
		uint64_t deny = v[i].deny, except = v[i].except;

		while (depth && !holds(stack[depth - 1].net, stack[depth - 1].len, v[i].net))
			depth--;
		if (depth) {
			deny |= stack[depth - 1].deny;
			except |= stack[depth - 1].except;
		}
		t[i] = (struct pf_prefix){ .net = v[i].net, .len = v[i].len, .deny = v[i].deny != 0,
					   .rules = deny & ~except, .counted_as = SIZE_MAX };
		/* Drops of a prefix no object denies exactly (an exception of one
		 * inside another's deny) count for the nearest deny prefix above
		 * it of an object that drops it. */
		for (size_t d = depth; !t[i].deny && t[i].rules && d > 0; d--)
			if (stack[d - 1].own & t[i].rules) {
				t[i].counted_as = stack[d - 1].at;
				break;
			}
		stack[depth].net = v[i].net;
		stack[depth].len = v[i].len;
		stack[depth].deny = deny;
		stack[depth].except = except;
		stack[depth].own = v[i].deny;
		stack[depth].at = i;
		depth++;
	}
	free(v);
	*out = t;
	*nout = m;
	return 0;
}

static int prefix_cmp(const void *a, const void *b)
{
	const struct pf_prefix *x = a, *y = b;

	if (x->net != y->net)
		return x->net < y->net ? -1 : 1;
	return (int)x->len - (int)y->len;
}

uint64_t pf_lookup(const struct pf_prefix *t, size_t n, uint32_t ip)
{
	for (int len = 32; len >= 0; len--) {
		struct pf_prefix key = { .net = len ? ip & (~0u << (32 - len)) : 0,
					 .len = (uint8_t)len };
		const struct pf_prefix *hit = n ? bsearch(&key, t, n, sizeof(*t), prefix_cmp) : NULL;

		if (hit)
			return hit->rules;
	}
	return 0;
}
