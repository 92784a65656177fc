// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sluice/datapath.h>

#include "identity.h"
#include "log.h"
#include "statefile.h"

/* One identity. key is "L\n<ns>\n<k>=<v>\n…" for a label set (labels sorted,
 * and neither keys nor values can hold a newline) or "C\n<a.b.c.d/n>". */
struct ident {
	uint32_t id;
	char *key;
	int used;	/* looked up in this round */
	time_t released;	/* 0 while in use; when the last user went */
};

/* Numbers whose grace period has passed, ready for reuse. */
struct numbers {
	uint32_t *v;
	size_t n, cap;
};

struct identities {
	struct ident *v;
	size_t n, cap;
	size_t *slots;	/* open addressing: index into v + 1, 0 = empty */
	size_t nslots;
	size_t *idslots;	/* the same by number (nslots of them) */
	uint32_t next_label, next_cidr;
	struct identity_limits lim;
	struct numbers free_label, free_cidr;
	int dirty;
	/* Incremental syncs end a round after every change: the table (one
	 * line per identity, ~5 MB at 100 000 label sets) is written at most
	 * once per save_interval_s, and at close. A crash loses at most that
	 * much: the next agent's first sync numbers every pod again. */
	unsigned save_interval_s;
	time_t saved_at;
	char path[PATH_MAX];
};

static time_t wall_now(void)
{
	return time(NULL);
}

static const struct identity_limits default_limits = {
	.label_first = SLUICE_ID_FIRST_LABEL,
	.label_end = SLUICE_ID_FIRST_CIDR,
	.cidr_first = SLUICE_ID_FIRST_CIDR,
	.cidr_end = SLUICE_ID_END_CIDR,
	.grace_s = IDENTITY_GRACE_S,
	.now = wall_now,
};

static int numbers_push(struct numbers *f, uint32_t id)
{
	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 64;
		uint32_t *v = realloc(f->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		f->v = v;
		f->cap = cap;
	}
	f->v[f->n++] = id;
	return 0;
}

static bool is_cidr_key(const char *key)
{
	return key[0] == 'C';
}

static bool in_range(const struct identities *ids, uint32_t id, bool cidr)
{
	return cidr ? id >= ids->lim.cidr_first && id < ids->lim.cidr_end
		    : id >= ids->lim.label_first && id < ids->lim.label_end;
}

static uint64_t hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 0x100000001b3ull;
	return h;
}

static size_t id_home(uint32_t id, size_t nslots)
{
	return (size_t)(id * 2654435761u) & (nslots - 1);
}

static int rehash(struct identities *ids, size_t nslots)
{
	size_t *slots = calloc(nslots, sizeof(*slots)), *idslots = calloc(nslots, sizeof(*idslots));

	if (!slots || !idslots) {
		free(slots);
		free(idslots);
		return -ENOMEM;
	}
	for (size_t i = 0; i < ids->n; i++) {
		size_t s = hash_str(ids->v[i].key) & (nslots - 1);

		while (slots[s])
			s = (s + 1) & (nslots - 1);
		slots[s] = i + 1;
		for (s = id_home(ids->v[i].id, nslots); idslots[s]; s = (s + 1) & (nslots - 1))
			;
		idslots[s] = i + 1;
	}
	free(ids->slots);
	free(ids->idslots);
	ids->slots = slots;
	ids->idslots = idslots;
	ids->nslots = nslots;
	return 0;
}

/* The entry numbered id, or NULL (a number has one entry at most). */
static struct ident *find_id(struct identities *ids, uint32_t id)
{
	if (!ids->nslots)
		return NULL;
	for (size_t s = id_home(id, ids->nslots); ids->idslots[s]; s = (s + 1) & (ids->nslots - 1))
		if (ids->v[ids->idslots[s] - 1].id == id)
			return &ids->v[ids->idslots[s] - 1];
	return NULL;
}

static struct ident *find(struct identities *ids, const char *key)
{
	size_t s;

	if (!ids->nslots)
		return NULL;
	for (s = hash_str(key) & (ids->nslots - 1); ids->slots[s]; s = (s + 1) & (ids->nslots - 1))
		if (!strcmp(ids->v[ids->slots[s] - 1].key, key))
			return &ids->v[ids->slots[s] - 1];
	return NULL;
}

/* Insert key with id (taking ownership of key). */
static struct ident *insert(struct identities *ids, char *key, uint32_t id)
{
	if (ids->n == ids->cap) {
		size_t cap = ids->cap ? ids->cap * 2 : 64;
		struct ident *v = realloc(ids->v, cap * sizeof(*v));

		if (!v)
			return NULL;
		ids->v = v;
		ids->cap = cap;
	}
	if ((ids->n + 1) * 2 > ids->nslots && rehash(ids, ids->nslots ? ids->nslots * 2 : 128))
		return NULL;
	ids->v[ids->n] = (struct ident){ .id = id, .key = key, .used = 1 };
	for (size_t s = hash_str(key) & (ids->nslots - 1);; s = (s + 1) & (ids->nslots - 1)) {
		if (!ids->slots[s]) {
			ids->slots[s] = ++ids->n;
			break;
		}
	}
	for (size_t s = id_home(id, ids->nslots);; s = (s + 1) & (ids->nslots - 1)) {
		if (!ids->idslots[s]) {
			ids->idslots[s] = ids->n;
			break;
		}
	}
	return &ids->v[ids->n - 1];
}

/* A number for a new key: one released longer than the grace period ago,
 * else the next never used one; 0 when the range is exhausted. Never one
 * from the other range. */
static uint32_t allocate(struct identities *ids, bool cidr)
{
	struct numbers *f = cidr ? &ids->free_cidr : &ids->free_label;
	uint32_t *next = cidr ? &ids->next_cidr : &ids->next_label;
	uint32_t end = cidr ? ids->lim.cidr_end : ids->lim.label_end;

	while (f->n) {
		uint32_t id = f->v[0];

		memmove(f->v, f->v + 1, --f->n * sizeof(*f->v));
		if (in_range(ids, id, cidr))
			return id;
	}
	if (*next < end)
		return (*next)++;
	return 0;
}

static uint32_t lookup_or_add(struct identities *ids, char *key, int cidr)
{
	struct ident *e = find(ids, key);
	uint32_t id;

	if (e) {
		free(key);
		e->used = 1;
		if (e->released) {
			/* Back within its grace period: the same meaning, the
			 * same number. */
			e->released = 0;
			ids->dirty = 1;
		}
		return e->id;
	}
	id = allocate(ids, cidr);
	if (!id) {
		pr_err("no %s identity left: all %u numbers from %u are in use or in their "
		       "%u s grace period", cidr ? "CIDR" : "label",
		       cidr ? ids->lim.cidr_end - ids->lim.cidr_first
			    : ids->lim.label_end - ids->lim.label_first,
		       cidr ? ids->lim.cidr_first : ids->lim.label_first, ids->lim.grace_s);
		free(key);
		return 0;
	}
	e = insert(ids, key, id);
	if (!e) {
		free(key);
		return 0;
	}
	ids->dirty = 1;
	return id;
}

uint32_t identity_of_pod(struct identities *ids, const char *ns, const struct pol_labels *labels)
{
	size_t len = strlen(ns) + 4;
	char *key, *p;

	for (size_t i = 0; i < labels->n; i++)
		len += strlen(labels->v[i].key) + strlen(labels->v[i].value) + 2;
	key = malloc(len);
	if (!key)
		return 0;
	p = key + sprintf(key, "L\n%s\n", ns);
	for (size_t i = 0; i < labels->n; i++)
		p += sprintf(p, "%s=%s\n", labels->v[i].key, labels->v[i].value);
	return lookup_or_add(ids, key, 0);
}

uint32_t identity_of_cidr(struct identities *ids, const struct cidr4 *c)
{
	char buf[32], *key;

	cidr4_format(c, buf, sizeof(buf));
	if (asprintf(&key, "C\n%s", buf) < 0)
		return 0;
	return lookup_or_add(ids, key, 1);
}

void identities_begin(struct identities *ids)
{
	for (size_t i = 0; i < ids->n; i++)
		ids->v[i].used = 0;
}

static int save(struct identities *ids)
{
	json_t *root, *arr;
	char *text;
	int ret;

	arr = json_array();
	root = json_pack("{s:I, s:I, s:o}", "nextLabel", (json_int_t)ids->next_label, "nextCIDR",
			 (json_int_t)ids->next_cidr, "identities", arr);
	if (!root)
		return -ENOMEM;
	for (size_t i = 0; i < ids->n; i++) {
		json_t *e = json_pack("{s:I, s:s}", "id", (json_int_t)ids->v[i].id, "key",
				      ids->v[i].key);

		if (e && ids->v[i].released)
			json_object_set_new(e, "released", json_integer(ids->v[i].released));
		json_array_append_new(arr, e);
	}
	for (int c = 0; c < 2; c++) {
		const struct numbers *f = c ? &ids->free_cidr : &ids->free_label;
		json_t *nums = json_array();

		for (size_t i = 0; i < f->n; i++)
			json_array_append_new(nums, json_integer(f->v[i]));
		json_object_set_new(root, c ? "freeCIDR" : "freeLabel", nums);
	}
	text = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (!text)
		return -ENOMEM;
	ret = sf_write_path(ids->path, text, strlen(text), 0600);
	free(text);
	return ret;
}

int identities_end(struct identities *ids)
{
	time_t now = ids->lim.now();
	size_t kept = 0, before = ids->n;

	for (size_t i = 0; i < ids->n; i++) {
		struct ident *e = &ids->v[i];

		if (!e->used && !e->released) {
			/* No map refers to it any more (the sync that dropped
			 * it has completed): the grace period starts. */
			e->released = now;
			ids->dirty = 1;
		}
		if (e->used || now - e->released < (time_t)ids->lim.grace_s) {
			ids->v[kept++] = *e;
			continue;
		}
		if (numbers_push(in_range(ids, e->id, true) ? &ids->free_cidr : &ids->free_label,
				 e->id))
			return -ENOMEM;
		free(e->key);
		ids->dirty = 1;
	}
	ids->n = kept;
	/* Entries moved: the name index points at positions. */
	if (kept != before && rehash(ids, ids->nslots ? ids->nslots : 128))
		return -ENOMEM;
	if (!ids->dirty || !ids->path[0]) {
		ids->dirty = 0;
		return 0;
	}
	if (ids->save_interval_s && now - ids->saved_at < (time_t)ids->save_interval_s)
		return 0;	/* stays dirty: saved by a later round or at close */
	ids->dirty = 0;
	ids->saved_at = now;
	return save(ids);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

int identities_release(struct identities *ids, const uint32_t *dead, size_t n)
{
	time_t now = ids->lim.now();

	for (size_t i = 0; i < n; i++) {
		struct ident *e = find_id(ids, dead[i]);

		if (!e || e->released)
			continue;
		e->used = 0;
		e->released = now;
		ids->dirty = 1;
	}
	return 0;
}

static void numbers_drop(struct numbers *f, uint32_t id)
{
	for (size_t i = 0; i < f->n; i++)
		if (f->v[i] == id) {
			memmove(f->v + i, f->v + i + 1, (--f->n - i) * sizeof(*f->v));
			return;
		}
}

int identities_reserve(struct identities *ids, const uint32_t *nums, size_t n)
{
	time_t now = ids->lim.now();
	uint32_t *v;
	size_t k = 0;
	int ret = 0;

	if (!n)
		return 0;
	v = malloc(n * sizeof(*v));
	if (!v)
		return -ENOMEM;
	memcpy(v, nums, n * sizeof(*v));
	qsort(v, n, sizeof(*v), cmp_u32);
	for (size_t i = 1; i < n; i++)	/* each number once */
		if (v[i] != v[k])
			v[++k] = v[i];
	n = k + 1;
	k = 0;
	/* Numbers the table knows under a meaning keep it: only the unknown
	 * ones (zeroed here) are reserved. */
	for (size_t i = 0; i < ids->n; i++) {
		uint32_t *hit = bsearch(&ids->v[i].id, v, n, sizeof(*v), cmp_u32);

		if (hit)
			*hit = 0;
	}
	for (size_t i = 0; i < n && !ret; i++) {
		bool cidr = in_range(ids, v[i], true);
		char *key;
		struct ident *e;

		if (!v[i] || (!cidr && !in_range(ids, v[i], false)))
			continue;
		if (asprintf(&key, "R\n%u", v[i]) < 0) {
			ret = -ENOMEM;
			break;
		}
		e = insert(ids, key, v[i]);
		if (!e) {
			free(key);
			ret = -ENOMEM;
			break;
		}
		/* Released now: no new meaning before the grace period is over,
		 * by when no map names it (the first sync rewrites them all). */
		e->used = 0;
		e->released = now;
		numbers_drop(cidr ? &ids->free_cidr : &ids->free_label, v[i]);
		if (cidr && ids->next_cidr <= v[i])
			ids->next_cidr = v[i] + 1;
		if (!cidr && ids->next_label <= v[i])
			ids->next_label = v[i] + 1;
		ids->dirty = 1;
		k++;
	}
	if (k)
		pr_warn("%zu identity number(s) in the pinned maps are not in the identity table "
			"(a crash before it was saved): held back for %u s", k, ids->lim.grace_s);
	free(v);
	return ret;
}

void identities_set_save_interval(struct identities *ids, unsigned seconds)
{
	ids->save_interval_s = seconds;
}

void identities_set_limits(struct identities *ids, const struct identity_limits *lim)
{
	ids->lim = *lim;
	if (!ids->lim.now)
		ids->lim.now = wall_now;
	if (ids->next_label < lim->label_first || ids->next_label > lim->label_end)
		ids->next_label = lim->label_first;
	if (ids->next_cidr < lim->cidr_first || ids->next_cidr > lim->cidr_end)
		ids->next_cidr = lim->cidr_first;
}

size_t identities_count(const struct identities *ids, size_t *released)
{
	size_t r = 0;

	for (size_t i = 0; i < ids->n; i++)
		r += ids->v[i].released != 0;
	if (released)
		*released = r;
	return ids->n - r;
}

/*
 * The table cannot be read (torn, garbage): moved to <path>.corrupt and the
 * agent starts with an empty one. No number a live map entry uses is handed
 * out again: the caller reserves every number the pinned maps hold
 * (compiler_reserve_identities), and the first sync numbers every pod.
 */
static void set_aside(const char *path, const char *why)
{
	char aside[PATH_MAX + 16];

	snprintf(aside, sizeof(aside), "%s.corrupt", path);
	if (rename(path, aside))
		pr_warn("repair: %s is unreadable (%s) and cannot be moved to %s: %s; starting "
			"with an empty identity table, the numbers in the pinned maps held back",
			path, why, aside, strerror(errno));
	else
		pr_warn("repair: %s is unreadable (%s): moved to %s, starting with an empty "
			"identity table; the numbers in the pinned maps are held back", path, why,
			aside);
}

int identities_open(struct identities **out, const char *state_dir, char *err, size_t errlen)
{
	struct identities *ids;
	json_t *root = NULL, *e;
	json_error_t jerr;
	size_t i;
	int ret = 0;

	ids = calloc(1, sizeof(*ids));
	if (!ids)
		return -ENOMEM;
	ids->lim = default_limits;
	ids->next_label = SLUICE_ID_FIRST_LABEL;
	ids->next_cidr = SLUICE_ID_FIRST_CIDR;
	if (!state_dir)
		goto done; /* in memory only (tests) */
	snprintf(ids->path, sizeof(ids->path), "%s/identities.json", state_dir);
	if (access(ids->path, F_OK))
		goto done;
	root = json_load_file(ids->path, 0, &jerr);
	if (!json_is_object(root)) {
		set_aside(ids->path, root ? "not an object" : jerr.text);
		goto done;
	}
	ids->next_label = (uint32_t)json_integer_value(json_object_get(root, "nextLabel"));
	ids->next_cidr = (uint32_t)json_integer_value(json_object_get(root, "nextCIDR"));
	/* A table from a version that let the ranges run into each other:
	 * clamp, and drop numbers outside their range below. */
	if (ids->next_label < SLUICE_ID_FIRST_LABEL || ids->next_label > SLUICE_ID_FIRST_CIDR)
		ids->next_label = SLUICE_ID_FIRST_LABEL;
	if (ids->next_cidr < SLUICE_ID_FIRST_CIDR || ids->next_cidr > SLUICE_ID_END_CIDR)
		ids->next_cidr = SLUICE_ID_FIRST_CIDR;
	for (int c = 0; c < 2; c++) {
		json_t *nums = json_object_get(root, c ? "freeCIDR" : "freeLabel"), *x;

		json_array_foreach(nums, i, x) {
			json_int_t id = json_integer_value(x);

			if (id > 0 && in_range(ids, (uint32_t)id, c) &&
			    numbers_push(c ? &ids->free_cidr : &ids->free_label, (uint32_t)id)) {
				ret = -ENOMEM;
				goto cleanup;
			}
		}
	}
	json_array_foreach(json_object_get(root, "identities"), i, e) {
		const char *key = json_string_value(json_object_get(e, "key"));
		json_int_t id = json_integer_value(json_object_get(e, "id"));
		char *copy;

		struct ident *ne;

		if (!key || id <= 0 || find(ids, key) || !in_range(ids, (uint32_t)id, is_cidr_key(key)))
			continue;
		copy = strdup(key);
		ne = copy ? insert(ids, copy, (uint32_t)id) : NULL;
		if (!ne) {
			free(copy);
			ret = -ENOMEM;
			goto cleanup;
		}
		ne->released = (time_t)json_integer_value(json_object_get(e, "released"));
	}
done:
	json_decref(root);
	*out = ids;
	return 0;
cleanup:
	snprintf(err, errlen, "cannot load %s: %s", ids->path, strerror(-ret));
	json_decref(root);
	identities_close(ids);
	return ret;
}

void identities_close(struct identities *ids)
{
	if (!ids)
		return;
	if (ids->dirty && ids->path[0]) {
		int ret = save(ids);

		if (ret)
			pr_warn("cannot save identities to %s: %s", ids->path, strerror(-ret));
	}
	for (size_t i = 0; i < ids->n; i++)
		free(ids->v[i].key);
	free(ids->v);
	free(ids->slots);
	free(ids->idslots);
	free(ids->free_label.v);
	free(ids->free_cidr.v);
	free(ids);
}

json_t *identities_to_json(const struct identities *ids)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < ids->n; i++) {
		const char *k = ids->v[i].key;
		json_t *item;

		if (k[0] == 'C') {
			item = json_pack("{s:I, s:s}", "id", (json_int_t)ids->v[i].id, "cidr", k + 2);
		} else if (k[0] == 'R') {
			/* held back: a pinned map named it, the table did not */
			item = json_pack("{s:I, s:b}", "id", (json_int_t)ids->v[i].id, "reserved", 1);
		} else {
			const char *ns = k + 2, *nl = strchr(ns, '\n');
			json_t *labels = json_object();

			for (const char *p = nl + 1; *p;) {
				const char *eq = strchr(p, '='), *end = strchr(p, '\n');
				char *key = strndup(p, (size_t)(eq - p));
				char *val = strndup(eq + 1, (size_t)(end - eq - 1));

				if (key && val)
					json_object_set_new(labels, key, json_string(val));
				free(key);
				free(val);
				p = end + 1;
			}
			item = json_pack("{s:I, s:s%, s:o}", "id", (json_int_t)ids->v[i].id,
					 "namespace", ns, (size_t)(nl - ns), "labels", labels);
		}
		if (item && ids->v[i].released)
			json_object_set_new(item, "releasedAt", json_integer(ids->v[i].released));
		json_array_append_new(arr, item);
	}
	return arr;
}
