// SPDX-License-Identifier: Apache-2.0
/* sluicectl: printing helpers shared by the commands: cells, tables, JSON, errors. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

const char *str(const json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s && *s ? s : "-";
}

/* Add a row of t->ncol cells; the cells are taken over (NULL: out of memory). */
int table_row(struct table *t, char **cells)
{
	size_t i;
	int ret = 0;

	for (i = 0; i < t->ncol; i++)
		if (!cells[i])
			ret = -ENOMEM;
	if (!ret && t->nrow == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 16;
		char **cell = reallocarray(t->cell, cap * t->ncol, sizeof(*cell));

		if (!cell) {
			ret = -ENOMEM;
		} else {
			t->cell = cell;
			t->cap = cap;
		}
	}
	if (ret) {
		for (i = 0; i < t->ncol; i++)
			free(cells[i]);
		return ret;
	}
	memcpy(&t->cell[t->nrow * t->ncol], cells, t->ncol * sizeof(*cells));
	t->nrow++;
	return 0;
}

void table_print(const struct table *t)
{
	size_t w[16] = { 0 }, r, c;

	for (r = 0; r < t->nrow; r++)
		for (c = 0; c < t->ncol && c < 16; c++)
			if (strlen(t->cell[r * t->ncol + c]) > w[c])
				w[c] = strlen(t->cell[r * t->ncol + c]);
	for (r = 0; r < t->nrow; r++)
		for (c = 0; c < t->ncol; c++)
			printf(c + 1 < t->ncol ? "%-*s   " : "%-*s\n",
			       c + 1 < t->ncol ? (int)w[c] : 0, t->cell[r * t->ncol + c]);
}

void table_free(struct table *t)
{
	size_t i;

	for (i = 0; i < t->nrow * t->ncol; i++)
		free(t->cell[i]);
	free(t->cell);
}

char *dup_str(const json_t *obj, const char *key)
{
	return strdup(str(obj, key));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* k=v,k=v sorted by key; "<none>" for none. NULL when out of memory. */
char *labels_text(const json_t *labels)
{
	size_t n = json_object_size(labels), i = 0, len;
	const char *key, **keys = NULL;
	char *out = NULL;
	json_t *v;
	FILE *f;

	if (!n)
		return strdup("<none>");
	keys = calloc(n, sizeof(*keys));
	if (!keys)
		return NULL;
	json_object_foreach((json_t *)labels, key, v)
		keys[i++] = key;
	qsort(keys, n, sizeof(*keys), cmp_str);
	f = open_memstream(&out, &len);
	if (!f)
		goto cleanup;
	for (i = 0; i < n; i++) {
		const char *s = json_string_value(json_object_get(labels, keys[i]));

		fprintf(f, "%s%s=%s", i ? "," : "", keys[i], s ? s : "?");
	}
	if (fclose(f)) {
		free(out);
		out = NULL;
	}
cleanup:
	free(keys);
	return out;
}

/* Strings of an array joined by commas; "<none>" for none. */
char *join_text(const json_t *arr)
{
	const json_t *v;
	char *out = NULL;
	size_t i, len;
	FILE *f;

	if (!json_array_size(arr))
		return strdup("<none>");
	f = open_memstream(&out, &len);
	if (!f)
		return NULL;
	json_array_foreach(arr, i, v)
		fprintf(f, "%s%s", i ? "," : "", json_is_string(v) ? json_string_value(v) : "?");
	if (fclose(f)) {
		free(out);
		return NULL;
	}
	return out;
}

/* A policy's SELECTED cell: the names the agent sent and, when it sent
 * the first ones only (selectedPodsCount is larger), how many in all. */
char *selected_text(const json_t *it)
{
	const json_t *names = json_object_get(it, "selectedPods");
	json_int_t count = json_integer_value(json_object_get(it, "selectedPodsCount"));
	char *list = join_text(names), *out;

	if (!list || count <= (json_int_t)json_array_size(names))
		return list;
	if (asprintf(&out, "%s,… (%lld in all)", list, (long long)count) < 0)
		out = NULL;
	free(list);
	return out;
}

char *int_text(const json_t *v)
{
	char *out;

	if (!json_is_integer(v))
		return strdup("-");
	return asprintf(&out, "%lld", (long long)json_integer_value(v)) < 0 ? NULL : out;
}

/* A policy's STATUS cell: Enforced; Degraded with the first reason (a
 * policy from the API that sluice enforces in its fail-closed reading); or
 * NotEnforced with the reason (left out of the maps: it does not fit). */
char *status_text(const json_t *it)
{
	const char *st = json_string_value(json_object_get(it, "status"));
	const char *why = json_string_value(json_object_get(it, "statusReason"));
	json_int_t more = 0;
	char *out;

	if (!st)
		return strdup("-");
	if (!why) {
		why = json_string_value(json_object_get(it, "reason"));
		more = json_integer_value(json_object_get(it, "degradedParts")) - 1;
	}
	if (!why)
		return strdup(st);
	if (more > 0)
		return asprintf(&out, "%s: %s (+%lld more)", st, why, (long long)more) < 0 ? NULL
											    : out;
	return asprintf(&out, "%s: %s", st, why) < 0 ? NULL : out;
}

void print_agent_error(const json_t *resp)
{
	const json_t *e = json_object_get(resp, "error");
	const char *details = json_string_value(json_object_get(e, "details"));

	fprintf(stderr, "sluicectl: %s\n", str(e, "msg"));
	if (details && *details)
		fprintf(stderr, "  %s\n", details);
}

/* One JSON value indented by depth spaces after the first line. */
int print_json_at(const json_t *v, int depth)
{
	char *text = json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY);

	if (!text)
		return -ENOMEM;
	for (const char *p = text; *p; p++) {
		putchar(*p);
		if (*p == '\n')
			printf("%*s", depth, "");
	}
	free(text);
	return 0;
}
