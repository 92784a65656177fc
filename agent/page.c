// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "cidr.h"
#include "page.h"

int page_init(struct page *pg, const char *what, size_t limit, const char *token, char *err,
	      size_t errlen)
{
	size_t wl = strlen(what);

	memset(pg, 0, sizeof(*pg));
	pg->what = what;
	pg->limit = limit ? limit : PAGE_DEFAULT_LIMIT;
	pg->max_bytes = PAGE_MAX_BYTES;
	pg->max_work = PAGE_MAX_WORK;
	pg->max_selected = PAGE_SELECTED_MAX;
	pg->items = json_array();
	if (!pg->items)
		return -ENOMEM;
	if (!token || !*token)
		return 0;
	if (strncmp(token, what, wl) || token[wl] != ':') {
		snprintf(err, errlen, "the continue token '%.200s' is not one of get %s; start "
			 "again without it (from the first page)", token, what);
		page_free(pg);
		return -EINVAL;
	}
	pg->after = strdup(token + wl + 1);
	if (!pg->after) {
		page_free(pg);
		return -ENOMEM;
	}
	return 0;
}

void page_free(struct page *pg)
{
	json_decref(pg->items);
	free(pg->after);
	free(pg->last);
	free(pg->next);
	memset(pg, 0, sizeof(*pg));
}

int page_add(struct page *pg, json_t *item, const char *key)
{
	size_t n = json_array_size(pg->items), len;
	char *last;

	if (!item)
		return -ENOMEM;
	len = json_dumpb(item, NULL, 0, JSON_COMPACT) + 1;
	/* Full: the token names the last item taken, and the next page
	 * starts after it. One item always fits an empty page. */
	if (n && (n >= pg->limit || pg->bytes + len > pg->max_bytes)) {
		json_decref(item);
		if (!pg->next && asprintf(&pg->next, "%s:%s", pg->what, pg->last) < 0) {
			pg->next = NULL;
			return -ENOMEM;
		}
		return 0;
	}
	last = strdup(key);
	if (!last || json_array_append_new(pg->items, item)) {
		free(last);
		return -ENOMEM;
	}
	free(pg->last);
	pg->last = last;
	pg->bytes += len;
	return 1;
}

int page_split_key(char *key, bool with_kind, const char **ns, const char **name, int *kind)
{
	char *slash = strchr(key, '/'), *k;

	*kind = 0;
	if (!slash)
		return -EINVAL;
	*slash = '\0';
	*ns = key;
	*name = slash + 1;
	if (!with_kind)
		return 0;
	k = strrchr(slash + 1, '/');
	if (!k || k[1] < '0' || k[1] > '2' || k[2])
		return -EINVAL;
	*k = '\0';
	*kind = k[1] - '0';
	return 0;
}

static int local_cmp(const void *a, const void *b)
{
	const struct store_local *x = a, *y = b;
	int c = strcmp(x->ns, y->ns);

	return c ? c : strcmp(x->name, y->name);
}

static json_t *labels_json(const struct pol_labels *l)
{
	json_t *o = json_object();

	for (size_t i = 0; o && i < l->n; i++)
		json_object_set_new(o, l->v[i].key, json_string(l->v[i].value));
	return o;
}

static json_t *pod_item(const struct pol_pod *p, uint32_t ip, bool local,
			page_identity_fn identity, void *ctx)
{
	char ipbuf[16] = "";

	if (ip)
		ip4_format(ip, ipbuf, sizeof(ipbuf));
	return json_pack("{s:s, s:s, s:o, s:s, s:I, s:b}", "namespace", p->ns, "name", p->name,
			 "labels", labels_json(&p->labels), "ip", ipbuf, "identity",
			 (json_int_t)identity(ctx, p), "local", local);
}

int page_pods(struct page *pg, struct store *s, struct store_local *locals, size_t nlocals,
	      page_identity_fn identity, void *ctx)
{
	const char *ns = NULL, *name = NULL;
	char *after = NULL, *key = NULL;
	size_t i, j = 0;
	ssize_t n;
	int kind, ret = 0;

	n = store_order(s, STORE_PODS);
	if (n < 0)
		return (int)n;
	if (pg->after) {
		after = strdup(pg->after);
		if (!after)
			return -ENOMEM;
		if (page_split_key(after, false, &ns, &name, &kind)) {
			ret = -EINVAL;
			goto cleanup;
		}
	}
	if (nlocals)
		qsort(locals, nlocals, sizeof(*locals), local_cmp);
	i = store_order_after(s, STORE_PODS, ns, name, 0);
	while (j < nlocals && ns &&
	       (strcmp(locals[j].ns, ns) < 0 ||
		(!strcmp(locals[j].ns, ns) && strcmp(locals[j].name, name) <= 0)))
		j++;
	/* Merge the two sorted runs; a local pod with its Pod object is one
	 * item, shown with the endpoint's address (the truth on this node). */
	for (;;) {
		const struct pol_pod *p = store_order_pod(s, i);
		const struct store_local *l = j < nlocals ? &locals[j] : NULL;
		struct pol_pod stand_in = { 0 };
		json_t *item;
		int c;

		if (!p && !l)
			break;
		c = !p ? 1 : !l ? -1 : strcmp(p->ns, l->ns) ? strcmp(p->ns, l->ns)
							     : strcmp(p->name, l->name);
		if (c < 0) {
			item = pod_item(p, p->ip, false, identity, ctx);
		} else if (c == 0) {
			item = pod_item(p, l->ip, true, identity, ctx);
		} else {
			stand_in.ns = (char *)l->ns;
			stand_in.name = (char *)l->name;
			stand_in.labels_unknown = l->need_object;
			p = &stand_in;
			item = pod_item(p, l->ip, true, identity, ctx);
		}
		free(key);
		if (asprintf(&key, "%s/%s", p->ns, p->name) < 0) {
			key = NULL;
			json_decref(item);
			ret = -ENOMEM;
			goto cleanup;
		}
		if (c <= 0)
			i++;
		if (c >= 0) {
			/* The same endpoint twice (one pod, two interfaces):
			 * one item. */
			while (++j < nlocals && !local_cmp(&locals[j], &locals[j - 1]))
				;
		}
		/* The same key again (two locals for one pod): one item. */
		if (pg->last && !strcmp(pg->last, key)) {
			json_decref(item);
			continue;
		}
		ret = page_add(pg, item, key);
		if (ret <= 0)
			break;
	}
	ret = ret < 0 ? ret : 0;
cleanup:
	free(key);
	free(after);
	return ret;
}

ssize_t page_policies_start(struct page *pg, struct store *s)
{
	const char *ns = NULL, *name = NULL;
	char *after = NULL;
	ssize_t n;
	int kind = 0;

	n = store_order(s, STORE_POLICIES);
	if (n < 0 || !pg->after)
		return n < 0 ? n : 0;
	after = strdup(pg->after);
	if (!after)
		return -ENOMEM;
	if (page_split_key(after, true, &ns, &name, &kind)) {
		free(after);
		return -EINVAL;
	}
	n = (ssize_t)store_order_after(s, STORE_POLICIES, ns, name, kind);
	free(after);
	return n;
}

bool page_full(struct page *pg)
{
	size_t n = json_array_size(pg->items);

	if (!n || (n < pg->limit && pg->work < pg->max_work))
		return false;
	if (!pg->next && asprintf(&pg->next, "%s:%s", pg->what, pg->last) < 0)
		pg->next = NULL;
	return true;
}

static int pod_ptr_cmp(const void *a, const void *b)
{
	const struct pol_pod *x = *(const struct pol_pod *const *)a;
	const struct pol_pod *y = *(const struct pol_pod *const *)b;
	int c = strcmp(x->ns, y->ns);

	return c ? c : strcmp(x->name, y->name);
}

const struct pol_pod **page_locals_sorted(const struct store_view *v, size_t *n)
{
	const struct pol_pod **l = calloc(v->nsynthetic + 1, sizeof(*l));
	size_t k = 0;

	*n = 0;
	if (!l)
		return NULL;
	for (size_t i = 0; i < v->nsynthetic; i++)
		l[i] = &v->synthetic[i];
	qsort(l, v->nsynthetic, sizeof(*l), pod_ptr_cmp);
	/* One pod with two interfaces is two endpoints: one pod. */
	for (size_t i = 0; i < v->nsynthetic; i++)
		if (!k || pod_ptr_cmp(&l[k - 1], &l[i]))
			l[k++] = l[i];
	*n = k;
	return l;
}

int page_pod_iter_init(struct page_pod_iter *it, struct store *s,
		       const struct pol_pod *const *locals, size_t nlocals, const char *ns)
{
	ssize_t n = store_order(s, STORE_PODS);

	if (n < 0)
		return (int)n;
	memset(it, 0, sizeof(*it));
	it->s = s;
	it->loc = locals;
	it->nloc = nlocals;
	it->hi = (size_t)n;
	if (!ns)
		return 0;
	store_order_ns_range(s, STORE_PODS, ns, &it->i, &it->hi);
	while (it->j < nlocals && strcmp(locals[it->j]->ns, ns) < 0)
		it->j++;
	it->nloc = it->j;
	while (it->nloc < nlocals && !strcmp(locals[it->nloc]->ns, ns))
		it->nloc++;
	return 0;
}

const struct pol_pod *page_pod_iter_next(struct page_pod_iter *it)
{
	const struct pol_pod *p = it->i < it->hi ? store_order_pod(it->s, it->i) : NULL;
	const struct pol_pod *l = it->j < it->nloc ? it->loc[it->j] : NULL;
	int c;

	if (!p || !l) {
		it->i += p != NULL;
		it->j += l != NULL;
		return p ? p : l;
	}
	c = pod_ptr_cmp(&p, &l);
	/* A local pod is its copy with the endpoint's address, not the
	 * Pod object. */
	it->i += c <= 0;
	it->j += c >= 0;
	return c < 0 ? p : l;
}

void page_pod_iter_skip_ns(struct page_pod_iter *it, const char *ns)
{
	size_t lo, hi;

	store_order_ns_range(it->s, STORE_PODS, ns, &lo, &hi);
	if (it->i < hi)
		it->i = hi;
	while (it->j < it->nloc && !strcmp(it->loc[it->j]->ns, ns))
		it->j++;
}

int page_policy_pods(struct store *s, const struct pol_world *w,
		     const struct pol_pod *const *locals, size_t nlocals,
		     const struct pol_policy *p, size_t cap, struct page_selected *out)
{
	struct page_pod_iter it;
	const struct pol_pod *pod;
	const char *ns = NULL;
	int ret;

	memset(out, 0, sizeof(*out));
	out->names = json_array();
	if (!out->names)
		return -ENOMEM;
	/* pol_selects_pod: a namespaced policy without its namespace
	 * selects nothing. */
	if (p->kind != POL_SLUICE_CLUSTER && !p->ns)
		return 0;
	/* A namespaced policy selects pods of its own namespace only: its
	 * range of the order, not every pod. */
	ret = page_pod_iter_init(&it, s, locals, nlocals,
				 p->kind == POL_SLUICE_CLUSTER ? NULL : p->ns);
	if (ret) {
		json_decref(out->names);
		out->names = NULL;
		return ret;
	}
	while ((pod = page_pod_iter_next(&it))) {
		char name[600];

		/* A cluster policy's namespaceSelector is asked once a
		 * namespace; the pods of one it does not match are skipped
		 * in O(log pods). */
		if (p->kind == POL_SLUICE_CLUSTER && p->has_ns_sel &&
		    (!ns || strcmp(ns, pod->ns))) {
			ns = pod->ns;
			out->namespaces++;
			if (!pol_selects_ns(p, w, ns)) {
				page_pod_iter_skip_ns(&it, ns);
				continue;
			}
		}
		out->tested++;
		if (!pol_selects_pod(p, w, pod))
			continue;
		if (out->count++ >= cap)
			continue;
		snprintf(name, sizeof(name), "%s/%s", pod->ns, pod->name);
		if (json_array_append_new(out->names, json_string(name))) {
			json_decref(out->names);
			out->names = NULL;
			return -ENOMEM;
		}
	}
	return 0;
}

int page_policies(struct page *pg, struct store *s, const struct store_view *v,
		  page_policy_fn item, void *ctx)
{
	const struct pol_pod **locals = NULL;
	const struct pol_policy *p;
	size_t nlocals = 0;
	ssize_t pos;
	int ret = 0;

	pos = page_policies_start(pg, s);
	if (pos < 0)
		return (int)pos;
	locals = page_locals_sorted(v, &nlocals);
	if (!locals)
		return -ENOMEM;
	for (; (p = store_order_policy(s, (size_t)pos)); pos++) {
		struct page_selected sel;
		char key[600];

		if (page_full(pg)) {
			ret = pg->next ? 0 : -ENOMEM;
			break;
		}

		ret = page_policy_pods(s, &v->w, locals, nlocals, p, pg->max_selected, &sel);
		if (ret)
			break;
		/* A policy that tests no pod still costs its item. */
		pg->work += sel.tested + sel.namespaces + 1;
		snprintf(key, sizeof(key), "%s/%s/%d", p->ns ? p->ns : "", p->name, (int)p->kind);
		ret = page_add(pg, item(ctx, p, &sel), key);
		json_decref(sel.names);
		if (ret <= 0)
			break;
	}
	ret = ret < 0 ? ret : 0;
	free(locals);
	return ret;
}
