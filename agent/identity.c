// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sluice/datapath.h>

#include "identity.h"
#include "log.h"

/* One identity. key is "L\n<ns>\n<k>=<v>\n…" for a label set (labels sorted,
 * and neither keys nor values can hold a newline) or "C\n<a.b.c.d/n>". */
struct ident {
	uint32_t id;
	char *key;
	int used;	/* looked up in this round */
};

struct identities {
	struct ident *v;
	size_t n, cap;
	size_t *slots;	/* open addressing: index into v + 1, 0 = empty */
	size_t nslots;
	uint32_t next_label, next_cidr;
	int dirty;
	char path[PATH_MAX];
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 0x100000001b3ull;
	return h;
}

static int rehash(struct identities *ids, size_t nslots)
{
	size_t *slots = calloc(nslots, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < ids->n; i++) {
		size_t s = hash_str(ids->v[i].key) & (nslots - 1);

		while (slots[s])
			s = (s + 1) & (nslots - 1);
		slots[s] = i + 1;
	}
	free(ids->slots);
	ids->slots = slots;
	ids->nslots = nslots;
	return 0;
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
	return &ids->v[ids->n - 1];
}

static uint32_t lookup_or_add(struct identities *ids, char *key, int cidr)
{
	struct ident *e = find(ids, key);
	uint32_t id;

	if (e) {
		free(key);
		e->used = 1;
		return e->id;
	}
	id = cidr ? ids->next_cidr++ : ids->next_label++;
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
	char tmp[PATH_MAX + 8];
	json_t *root, *arr;
	int ret = 0;

	arr = json_array();
	root = json_pack("{s:I, s:I, s:o}", "nextLabel", (json_int_t)ids->next_label, "nextCIDR",
			 (json_int_t)ids->next_cidr, "identities", arr);
	if (!root)
		return -ENOMEM;
	for (size_t i = 0; i < ids->n; i++)
		json_array_append_new(arr, json_pack("{s:I, s:s}", "id", (json_int_t)ids->v[i].id,
						     "key", ids->v[i].key));
	snprintf(tmp, sizeof(tmp), "%s.tmp", ids->path);
	if (json_dump_file(root, tmp, JSON_COMPACT) || rename(tmp, ids->path)) {
		ret = -errno ? -errno : -EIO;
		unlink(tmp);
	}
	json_decref(root);
	return ret;
}

int identities_end(struct identities *ids)
{
	size_t kept = 0;

	for (size_t i = 0; i < ids->n; i++) {
		if (ids->v[i].used) {
			ids->v[kept++] = ids->v[i];
			continue;
		}
		free(ids->v[i].key);
		ids->dirty = 1;
	}
	ids->n = kept;
	if (!ids->dirty)
		return 0;
	if (rehash(ids, ids->nslots ? ids->nslots : 128))
		return -ENOMEM;
	ids->dirty = 0;
	return save(ids);
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
	ids->next_label = SLUICE_ID_FIRST_LABEL;
	ids->next_cidr = SLUICE_ID_FIRST_CIDR;
	snprintf(ids->path, sizeof(ids->path), "%s/identities.json", state_dir);
	if (access(ids->path, F_OK))
		goto done;
	root = json_load_file(ids->path, 0, &jerr);
	if (!root) {
		snprintf(err, errlen, "cannot read %s: %s (move it away to start afresh)", ids->path,
			 jerr.text);
		ret = -EINVAL;
		goto cleanup;
	}
	ids->next_label = (uint32_t)json_integer_value(json_object_get(root, "nextLabel"));
	ids->next_cidr = (uint32_t)json_integer_value(json_object_get(root, "nextCIDR"));
	if (ids->next_label < SLUICE_ID_FIRST_LABEL)
		ids->next_label = SLUICE_ID_FIRST_LABEL;
	if (ids->next_cidr < SLUICE_ID_FIRST_CIDR)
		ids->next_cidr = SLUICE_ID_FIRST_CIDR;
	json_array_foreach(json_object_get(root, "identities"), i, e) {
		const char *key = json_string_value(json_object_get(e, "key"));
		json_int_t id = json_integer_value(json_object_get(e, "id"));
		char *copy;

		if (!key || id <= 0 || find(ids, key))
			continue;
		copy = strdup(key);
		if (!copy || !insert(ids, copy, (uint32_t)id)) {
			free(copy);
			ret = -ENOMEM;
			goto cleanup;
		}
	}
done:
	json_decref(root);
	*out = ids;
	return 0;
cleanup:
	json_decref(root);
	identities_close(ids);
	return ret;
}

void identities_close(struct identities *ids)
{
	if (!ids)
		return;
	for (size_t i = 0; i < ids->n; i++)
		free(ids->v[i].key);
	free(ids->v);
	free(ids->slots);
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
		json_array_append_new(arr, item);
	}
	return arr;
}
