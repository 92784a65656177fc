// SPDX-License-Identifier: Apache-2.0
/*
 * sluicectl get KIND [NAME…]: the agent's objects in pages, filtered here by
 * namespace, name and label selector (the agent's get lists a whole kind),
 * printed as a table, -o wide, json, yaml or name; --watch polls.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "cli.h"
#include "yamlout.h"

/* --watch: how often the agent is asked again */
#define WATCH_INTERVAL_MS 1000

/* What one page's items go through; the state of the output across pages. */
struct get_run {
	const struct cmd *c;
	const struct opts *o;
	struct get_filter f;
	const char *list_key;	/* "items"; get endpoints: "endpoints", as the agent's list */
	bool single;		/* one NAME with -o json|yaml: the object itself */
	size_t printed;		/* items printed (json: the separator; table: the header) */
	json_t *kept;		/* yaml, single: the items, printed at the end */
	json_t *last;		/* the last answer (its members besides the items) */
};

static bool item_namespace_ok(const struct get_filter *f, const char *ns, const char *want)
{
	/* cluster-scoped items (a SluiceClusterNetworkPolicy) are in no
	 * namespace: -n does not hide them, as kubectl ignores -n for them */
	return !f->kind->namespaced || !want || !*ns || !strcmp(ns, want);
}

int get_filter_init(struct get_filter *f, const struct cmd *c, const struct opts *o)
{
	char err[300];
	int ret;

	memset(f, 0, sizeof(*f));
	f->kind = c->kind_of;
	f->names = c->names;
	f->nnames = c->nnames;
	/* kubectl's default namespace unless -A; endpoints are this node's
	 * attachments, listed whole as status counts them unless -n */
	f->ns = o->all_namespaces ? NULL : o->namespace ? o->namespace : "default";
	if (!o->namespace && f->kind->what == GET_ENDPOINTS)
		f->ns = NULL;
	for (size_t i = 0; i < c->nnames; i++) {
		const char *slash = strchr(c->names[i], '/');

		if (slash && (!f->kind->namespaced || slash == c->names[i] || !slash[1] ||
			      strchr(slash + 1, '/'))) {
			fprintf(stderr, "sluicectl: '%s': %s\n", c->names[i],
				f->kind->namespaced ? "NAMESPACE/NAME has one '/' between two names"
						    : "this kind is not in a namespace: give its "
						      "NAME alone");
			return EXIT_USAGE;
		}
	}
	if (o->selector) {
		if (f->kind->what != GET_PODS && f->kind->what != GET_NAMESPACES &&
		    f->kind->what != GET_IDENTITIES) {
			fprintf(stderr, "sluicectl: -l: the agent's %s carry no labels; a label "
				"selector filters namespaces, pods and identities\n",
				f->kind->names[0]);
			return EXIT_USAGE;
		}
		ret = lsel_parse(o->selector, &f->sel, err, sizeof(err));
		if (ret) {
			fprintf(stderr, "sluicectl: %s\n", ret == -EINVAL ? err : "out of memory");
			lsel_free(&f->sel);
			return ret == -EINVAL ? EXIT_USAGE : EXIT_FAIL;
		}
	}
	f->found = calloc(c->nnames + 1, sizeof(*f->found));
	if (!f->found) {
		fprintf(stderr, "sluicectl: out of memory\n");
		lsel_free(&f->sel);
		return EXIT_FAIL;
	}
	return 0;
}

void get_filter_free(struct get_filter *f)
{
	lsel_free(&f->sel);
	free(f->found);
}

bool get_filter_match(struct get_filter *f, const json_t *item)
{
	const struct kind *k = f->kind;
	const char *ns = json_string_value(json_object_get(item, "namespace"));
	char buf[32];
	const char *key = kind_item_key(k, item, buf, sizeof(buf));
	bool any = false;

	if (!ns)
		ns = "";
	if (k->policy_kind && strcmp(k->policy_kind, json_string_value(json_object_get(item, "kind"))
						 ?: ""))
		return false;
	if (f->sel.n && !lsel_match(&f->sel, json_object_get(item, "labels")))
		return false;
	if (!f->nnames)
		return item_namespace_ok(f, ns, f->ns);
	for (size_t i = 0; i < f->nnames; i++) {
		const char *slash = strchr(f->names[i], '/');
		const char *name = slash ? slash + 1 : f->names[i];
		char want[256];

		if (strcmp(name, key))
			continue;
		if (slash) {
			snprintf(want, sizeof(want), "%.*s", (int)(slash - f->names[i]),
				 f->names[i]);
			if (strcmp(ns, want))
				continue;
		} else if (!item_namespace_ok(f, ns, f->ns)) {
			continue;
		}
		f->found[i] = true;
		any = true;
	}
	return any;
}

/* The matching items of one answer, printed in the chosen format. */
static int print_page(struct get_run *g, const json_t *items, bool last)
{
	const struct opts *o = g->o;
	const json_t *it;
	json_t *keep = json_array();
	size_t i;
	int ret = 0;

	if (!keep)
		return -ENOMEM;
	json_array_foreach(items, i, it)
		if (get_filter_match(&g->f, it) && json_array_append(keep, (json_t *)it))
			ret = -ENOMEM;
	if (ret)
		goto cleanup;
	if (g->kept) {
		ret = json_array_extend(g->kept, keep) ? -ENOMEM : 0;
		goto cleanup;
	}
	switch (o->output) {
	case OUT_JSON:
		if (!g->printed && !g->single)
			printf("{\n  \"%s\": [", g->list_key);
		json_array_foreach(keep, i, it) {
			printf("%s\n    ", g->printed + i ? "," : "");
			if ((ret = print_json_at(it, 4)))
				goto cleanup;
		}
		break;
	case OUT_NAME:
		json_array_foreach(keep, i, it) {
			char *n = kind_item_name(g->f.kind, it);

			if (!n) {
				ret = -ENOMEM;
				goto cleanup;
			}
			puts(n);
			free(n);
		}
		break;
	default:
		/* the header once, before the first row; with no rows at all
		 * the "No resources found" line instead */
		if (json_array_size(keep) || (last && g->printed))
			ret = items_table(keep, g->f.kind->what, !g->printed && !o->no_headers,
					  o->output == OUT_WIDE);
		break;
	}
	g->printed += json_array_size(keep);
	fflush(stdout);
cleanup:
	json_decref(keep);
	return ret;
}

/* The request for one kind: get in pages, get prefilters whole (at most 64
 * apply on a node; one NAME: the agent's detail of it), list for endpoints. */
static json_t *build_request(const struct get_run *g)
{
	const struct kind *k = g->f.kind;
	json_t *req;

	if (k->what == GET_ENDPOINTS)
		return json_pack("{s:s}", "op", "list");
	req = json_pack("{s:s, s:s}", "op", "get", "what", k->agent_what);
	if (!req)
		return NULL;
	if (k->what == GET_PREFILTERS) {
		if ((g->c->nnames == 1 &&
		     json_object_set_new(req, "name", json_string(g->c->names[0]))) ||
		    ((g->o->output == OUT_JSON || g->o->output == OUT_YAML) &&
		     json_object_set_new(req, "detail", json_true()))) {
			json_decref(req);
			return NULL;
		}
	} else if (g->o->chunk_size &&
		   json_object_set_new(req, "limit", json_integer(g->o->chunk_size))) {
		json_decref(req);
		return NULL;
	}
	return req;
}

/*
 * Every page of the kind, each handed to print_page as it arrives, so
 * sluicectl holds one page, never the whole list. An agent without pages
 * answers everything at once, without "continue": that is the one page.
 * Returns an exit code; g->last keeps the last answer's result.
 */
static int fetch(struct get_run *g)
{
	const struct opts *o = g->o;
	json_t *req = build_request(g), *resp = NULL, *wrap = NULL;
	const json_t *result, *items;
	const char *next;
	size_t page;
	char err[512];
	int ret;

	if (!req) {
		fprintf(stderr, "sluicectl: out of memory\n");
		return EXIT_FAIL;
	}
	for (page = 0;; page++) {
		if (api_call(o->socket_path, req, &resp, TIMEOUT_MS, err, sizeof(err))) {
			fprintf(stderr, "sluicectl: %s%s\n", err,
				page ? " (the list printed so far is incomplete)" : "");
			ret = EXIT_UNREACHABLE;
			goto cleanup;
		}
		if (!json_is_true(json_object_get(resp, "ok"))) {
			if (o->output == OUT_JSON && !page && !g->single) {
				json_dumpf(resp, stdout, JSON_INDENT(2));
				putchar('\n');
			}
			print_agent_error(resp);
			if (page)
				fprintf(stderr, "  (at page %zu: the list printed so far is "
					"incomplete)\n", page + 1);
			ret = EXIT_FAIL;
			goto cleanup;
		}
		result = json_object_get(resp, "result");
		items = json_object_get(result, g->f.kind->what == GET_ENDPOINTS ? "endpoints"
										 : "items");
		/* get prefilter NAME: the agent answers the object itself */
		if (g->f.kind->what == GET_PREFILTERS && json_object_get(req, "name")) {
			wrap = json_pack("[O]", result);
			items = wrap;
		}
		next = json_string_value(json_object_get(result, "continue"));
		if (print_page(g, items, !next || !*next)) {
			fprintf(stderr, "sluicectl: out of memory\n");
			ret = EXIT_FAIL;
			goto cleanup;
		}
		if (!next || !*next)
			break;
		if (json_object_set_new(req, "continue", json_string(next))) {
			fprintf(stderr, "sluicectl: out of memory\n");
			ret = EXIT_FAIL;
			goto cleanup;
		}
		json_decref(resp);
		resp = NULL;
	}
	json_decref(g->last);
	g->last = json_incref((json_t *)result);
	ret = EXIT_OK;
cleanup:
	json_decref(wrap);
	json_decref(resp);
	json_decref(req);
	return ret;
}

/* After the pages: close the JSON list with the last answer's other
 * members (services: "note", "translated"), print what was kept, say what
 * was not found. */
static int finish(struct get_run *g)
{
	const struct opts *o = g->o;
	const json_t *v;
	const char *key;
	json_t *out = NULL;
	int ret = EXIT_OK;

	if (g->kept) {
		if (g->single)
			out = json_incref(json_array_get(g->kept, 0));
		else
			out = json_pack("{s:O}", g->list_key, g->kept);
		json_object_foreach(g->single ? NULL : g->last, key, v)
			if (strcmp(key, "items") && strcmp(key, "continue") &&
			    strcmp(key, "endpoints"))
				json_object_set(out, key, (json_t *)v);
		if (!out)
			ret = EXIT_FAIL;
		else if (o->output == OUT_YAML)
			ret = yaml_print_json(stdout, out) ? EXIT_FAIL : EXIT_OK;
		else if (json_array_size(g->kept)) {
			print_json_at(out, 0);
			putchar('\n');
		}
	} else if (o->output == OUT_JSON) {
		printf("%s]", g->printed ? "\n  " : "");
		json_object_foreach(g->last, key, v) {
			if (!strcmp(key, "items") || !strcmp(key, "continue") ||
			    !strcmp(key, "endpoints"))
				continue;
			printf(",\n  \"%s\": ", key);
			print_json_at(v, 2);
		}
		printf("\n}\n");
	} else if (o->output != OUT_NAME) {
		if (g->f.kind->what == GET_SERVICES &&
		    json_string_value(json_object_get(g->last, "note")) && g->printed)
			printf("\nNote: %s.\n", json_string_value(json_object_get(g->last, "note")));
		if (g->f.kind->what == GET_PREFILTERS && g->c->nnames == 1 && g->printed == 1 &&
		    o->output == OUT_TABLE) {
			printf("\n%-20s %-8s %12s %14s\n", "DENY", "APPLIED", "PACKETS", "BYTES");
			print_deny_entries(g->last);
		}
	}
	json_decref(out);
	for (size_t i = 0; i < g->c->nnames; i++)
		if (!g->f.found[i]) {
			fprintf(stderr, "Error: %s \"%s\" not found%s%s\n", g->f.kind->names[0],
				g->c->names[i],
				g->f.kind->namespaced && g->f.ns && !strchr(g->c->names[i], '/')
					? " in namespace " : "",
				g->f.kind->namespaced && g->f.ns && !strchr(g->c->names[i], '/')
					? g->f.ns : "");
			ret = EXIT_FAIL;
		}
	if (!g->c->nnames && !g->printed && o->output != OUT_JSON && o->output != OUT_YAML) {
		if (g->f.kind->namespaced && g->f.ns)
			fprintf(stderr, "No resources found in %s namespace (-A: every "
				"namespace).\n", g->f.ns);
		else
			fprintf(stderr, "No resources found.\n");
	}
	return ret;
}

/* A key for an item across polls: its kind, namespace and name. */
static char *watch_key(const struct kind *k, const json_t *it)
{
	char buf[32], *out;

	if (asprintf(&out, "%s %s/%s", json_string_value(json_object_get(it, "kind")) ?: "",
		     json_string_value(json_object_get(it, "namespace")) ?: "",
		     kind_item_key(k, it, buf, sizeof(buf))) < 0)
		return NULL;
	return out;
}

/*
 * --watch: every WATCH_INTERVAL_MS the whole kind again; the rows (or
 * names, or JSON lines) of the items that are new or changed since the
 * last poll. Removals are not shown, as kubectl's table watch shows none.
 * Runs until interrupted or the agent cannot be reached.
 */
static int watch(struct get_run *g)
{
	const struct timespec pause = { WATCH_INTERVAL_MS / 1000,
					(WATCH_INTERVAL_MS % 1000) * 1000000L };
	json_t *seen = json_object(), *now = NULL, *changed = NULL;
	const json_t *it;
	int ret = EXIT_OK;
	size_t i;

	if (!seen)
		return EXIT_FAIL;
	for (;;) {
		g->kept = json_array();
		now = json_object();
		if (!g->kept || !now || (ret = fetch(g))) {
			ret = ret ? ret : EXIT_FAIL;
			break;
		}
		changed = json_array();
		if (!changed) {
			ret = EXIT_FAIL;
			break;
		}
		json_array_foreach(g->kept, i, it) {
			char *key = watch_key(g->f.kind, it);
			const json_t *was = key ? json_object_get(seen, key) : NULL;

			if (!key || json_object_set(now, key, (json_t *)it) ||
			    (!(was && json_equal(was, it)) && json_array_append(changed, (json_t *)it))) {
				free(key);
				ret = EXIT_FAIL;
				goto cleanup;
			}
			free(key);
		}
		json_array_foreach(changed, i, it) {
			if (g->o->output == OUT_JSON || g->o->output == OUT_YAML) {
				json_dumpf(it, stdout, JSON_COMPACT);
				putchar('\n');
			} else if (g->o->output == OUT_NAME) {
				char *n = kind_item_name(g->f.kind, it);

				puts(n ? n : "?");
				free(n);
			}
		}
		/* the changed rows as one table: the header before the first row */
		if ((g->o->output == OUT_TABLE || g->o->output == OUT_WIDE) && json_array_size(changed))
			items_table(changed, g->f.kind->what, !g->printed && !g->o->no_headers,
				    g->o->output == OUT_WIDE);
		g->printed += json_array_size(changed);
		json_decref(changed);
		changed = NULL;
		fflush(stdout);
		json_decref(seen);
		seen = now;
		now = NULL;
		json_decref(g->kept);
		g->kept = NULL;
		nanosleep(&pause, NULL);
	}
cleanup:
	json_decref(changed);
	json_decref(now);
	json_decref(seen);
	return ret;
}

int run_get(const struct cmd *c, struct opts *o)
{
	struct get_run g = { .c = c, .o = o, .list_key = "items" };
	int ret;

	ret = get_filter_init(&g.f, c, o);
	if (ret)
		return ret;
	if (c->kind_of->what == GET_ENDPOINTS)
		g.list_key = "endpoints";
	g.single = c->nnames == 1 && (o->output == OUT_JSON || o->output == OUT_YAML);
	if (o->watch) {
		ret = watch(&g);
		goto cleanup;
	}
	if (g.single || o->output == OUT_YAML) {
		g.kept = json_array();
		if (!g.kept) {
			ret = EXIT_FAIL;
			goto cleanup;
		}
	}
	ret = fetch(&g);
	if (!ret)
		ret = finish(&g);
cleanup:
	json_decref(g.kept);
	json_decref(g.last);
	get_filter_free(&g.f);
	return ret;
}

/* The items of c's kind that c names (all of -n's namespace without
 * names), fetched whole: for describe and delete. Names matching nothing
 * are left for the caller to find in f->found. Returns an exit code. */
int get_items(const struct cmd *c, const struct opts *o, struct get_filter *f, json_t **items)
{
	struct opts quiet = *o;
	struct get_run g = { .c = c, .o = &quiet, .list_key = "items" };
	int ret;

	quiet.output = OUT_JSON;
	quiet.chunk_size = CHUNK_DEFAULT;
	*items = NULL;
	ret = get_filter_init(&g.f, c, o);
	if (ret)
		return ret;
	g.kept = json_array();
	ret = g.kept ? fetch(&g) : EXIT_FAIL;
	json_decref(g.last);
	if (ret) {
		json_decref(g.kept);
		get_filter_free(&g.f);
		return ret;
	}
	*f = g.f;
	*items = g.kept;
	return EXIT_OK;
}
