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
