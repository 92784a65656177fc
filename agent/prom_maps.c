// SPDX-License-Identifier: Apache-2.0
/* Entry counts of the datapath's maps, in steps (prom_maps.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bpf/bpf.h>

#include "log.h"
#include "prom_maps.h"

#define BATCH 4096u

static const struct {
	const char *name;
	int (*fd)(struct datapath *dp);
} maps[PROM_MAPS] = {
	{ "conntrack", datapath_ct_map_fd },	{ "snat", datapath_snat_map_fd },
	{ "rnat", datapath_rnat_map_fd },	{ "policy_allow", datapath_policy_map_fd },
	{ "policy_deny", datapath_deny_map_fd },	{ "ipcache", datapath_ipcache_map_fd },
	{ "endpoints", datapath_endpoint_map_fd },	{ "services", datapath_lb_svc_map_fd },
	{ "backends", datapath_lb_be_map_fd },	{ "lb_revnat", datapath_lb_rnat_map_fd },
	{ "flows", datapath_flow4_map_fd },
};

static double mono_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* What the last successful policy sync left in map i, when it is one the
 * agent alone writes; false otherwise. */
static bool known_count(const struct agent *a, size_t i, uint64_t *out)
{
	const struct agent_metrics *m = &a->metrics;

	if (!m->policy_counts_known)
		return false;
	if (!strcmp(maps[i].name, "policy_allow"))
		*out = m->policy_allow;
	else if (!strcmp(maps[i].name, "policy_deny"))
		*out = m->policy_deny;
	else if (!strcmp(maps[i].name, "ipcache"))
		*out = m->ipcache;
	else
		return false;
	return true;
}

static bool grow(void **buf, size_t *len, size_t want)
{
	void *p;

	if (*len >= want)
		return true;
	p = realloc(*buf, want);
	if (!p)
		return false;
	*buf = p;
	*len = want;
	return true;
}

/* Key by key, whole (maps without batch lookups, and a batch walk that
 * failed midway). */
static int count_keys(int fd, uint32_t key_size, uint64_t *out)
{
	unsigned char k[64], next[64];
	uint64_t n = 0;
	int r;

	if (key_size > sizeof(k))
		return -E2BIG;
	for (r = bpf_map_get_next_key(fd, NULL, next); !r; r = bpf_map_get_next_key(fd, k, next)) {
		memcpy(k, next, key_size);
		n++;
	}
	if (errno != ENOENT)
		return -errno;
	*out = n;
	return 0;
}

/*
 * Walk map c->cur in batches until it ends or until deadline (mono_s).
 * Returns 1 when the map is done (counted or not readable), 0 when the
 * deadline came first (c->token says where to go on).
 */
static int walk_one(struct agent *a, struct prom_map_cache *c, double deadline)
{
	struct prom_map_count *m = &c->next[c->cur];
	struct bpf_map_info info = { 0 };
	__u32 len = sizeof(info), cnt;
	unsigned char out[sizeof(c->token)] = { 0 };
	int fd = a->dp ? maps[c->cur].fd(a->dp) : -1, r;

	if (!c->resume)
		*m = (struct prom_map_count){ .name = maps[c->cur].name };
	if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len))
		return 1;
	m->max_entries = info.max_entries;
	if (known_count(a, c->cur, &m->entries)) {
		m->ok = true;
		return 1;
	}
	if (info.key_size > sizeof(c->token) ||
	    !grow(&c->keys, &c->keys_len, (size_t)BATCH * info.key_size) ||
	    !grow(&c->vals, &c->vals_len, (size_t)BATCH * info.value_size))
		return 1;
	for (;;) {
		cnt = BATCH;
		r = bpf_map_lookup_batch(fd, c->resume ? c->token : NULL, out, c->keys, c->vals,
					 &cnt, NULL);
		if (r && errno != ENOENT) {
			/* No batches for this map type, or a hash bucket larger
			 * than a batch: key by key, whole. */
			m->entries = 0;
			m->ok = !count_keys(fd, info.key_size, &m->entries);
			if (!m->ok)
				pr_debug("metrics: cannot count the entries of map %s", m->name);
			return 1;
		}
		m->entries += cnt;
		if (r) {
			m->ok = true;
			return 1;
		}
		memcpy(c->token, out, sizeof(c->token));
		c->resume = true;
		if (mono_s() >= deadline)
			return 0;
	}
}

bool prom_maps_step(struct agent *a, struct prom_map_cache *c, double budget_s)
{
	double t0 = mono_s();

	if (!c->walking)
		return false;
	while (c->cur < PROM_MAPS) {
		if (!walk_one(a, c, t0 + budget_s)) {
			c->cost += mono_s() - t0;
			return true;
		}
		c->cur++;
		c->resume = false;
	}
	memcpy(c->m, c->next, sizeof(c->m));
	c->cost += mono_s() - t0;
	c->cost_s = c->cost;
	c->done_at = mono_s();
	c->walking = false;
	return false;
}

void prom_maps_want(struct agent *a, struct prom_map_cache *c)
{
	if (c->walking || (c->done_at && mono_s() - c->done_at < PROM_MAP_COUNT_INTERVAL_S))
		return;
	c->walking = true;
	c->cur = 0;
	c->resume = false;
	c->cost = 0;
	if (!c->done_at)
		prom_maps_step(a, c, 1e9);
}

void prom_maps_free(struct prom_map_cache *c)
{
	free(c->keys);
	free(c->vals);
	c->keys = c->vals = NULL;
	c->keys_len = c->vals_len = 0;
}
