// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include <bpf/bpf.h>

#include "flows.h"
#include "log.h"

/* Entries per batch system call: a 262144-entry map is 64 calls. */
#define FLOWS_BATCH 4096

#define KEY_ADDRS(type, a, b) { offsetof(type, a), offsetof(type, b) }
#define NO_ADDRS { FLOW_ADDR_NONE, FLOW_ADDR_NONE }

/* Every per-flow map of the datapath. A new one is one line here. */
static const struct flow_map_spec {
	const char *name;
	int (*fd)(struct datapath *dp);
	int key_addr[2];
	int value_addr;
} flow_map_specs[] = {
	/* Both ends of every tracked flow. */
	{ SLUICE_MAP_CT, datapath_ct_map_fd, KEY_ADDRS(struct sluice_ct_key, saddr, daddr),
	  FLOW_ADDR_NONE },
	/* The pod's flow as sent (its address is saddr). */
	{ SLUICE_MAP_SNAT, datapath_snat_map_fd, KEY_ADDRS(struct sluice_ct_key, saddr, daddr),
	  FLOW_ADDR_NONE },
	/* The replies' tuple (remote, node address) leads back to the pod in the value. */
	{ SLUICE_MAP_RNAT, datapath_rnat_map_fd, NO_ADDRS, offsetof(struct sluice_nat_value, addr) },
	/* First fragments' ports, by both ends (they give later fragments a
	 * tuple; the verdict still comes from connection tracking). */
	{ SLUICE_MAP_FRAG, datapath_frag_map_fd, KEY_ADDRS(struct sluice_frag_key, saddr, daddr),
	  FLOW_ADDR_NONE },
};

_Static_assert(sizeof(flow_map_specs) / sizeof(flow_map_specs[0]) <= FLOW_MAPS_MAX,
	       "raise FLOW_MAPS_MAX");

size_t flows_maps(struct datapath *dp, struct flow_map *maps, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < sizeof(flow_map_specs) / sizeof(flow_map_specs[0]) && n < max; i++) {
		const struct flow_map_spec *s = &flow_map_specs[i];

		maps[n++] = (struct flow_map){
			.name = s->name,
			.fd = s->fd(dp),
			.key_addr = { s->key_addr[0], s->key_addr[1] },
			.value_addr = s->value_addr,
		};
	}
	return n;
}

static int addr_at(const void *base, int off, flow_addr_match match, void *arg)
{
	__be32 a;

	if (off == FLOW_ADDR_NONE)
		return 0;
	memcpy(&a, (const char *)base + off, sizeof(a));
	return match(a, arg);
}

/* Delete keys[0..n); an entry gone meanwhile (evicted, or deleted by the
 * datapath) stops a batch with ENOENT: skip it and go on. */
static int delete_keys(int fd, const char *keys, __u32 n, __u32 key_size, size_t *removed)
{
	DECLARE_LIBBPF_OPTS(bpf_map_batch_opts, opts);

	while (n) {
		__u32 count = n;

		if (!bpf_map_delete_batch(fd, keys, &count, &opts)) {
			*removed += count;
			return 0;
		}
		if (errno != ENOENT)
			return -errno;
		*removed += count;
		count++; /* the missing one */
		if (count > n)
			count = n;
		keys += (size_t)count * key_size;
		n -= count;
	}
	return 0;
}

static int purge_map(const struct flow_map *m, flow_addr_match match, void *arg,
		     struct flows_purge_stats *st, char *err, size_t errlen)
{
	DECLARE_LIBBPF_OPTS(bpf_map_batch_opts, opts);
	struct bpf_map_info info = { 0 };
	__u32 info_len = sizeof(info), ndel = 0;
	char *keys = NULL, *values = NULL, *del = NULL;
	__u64 token_in = 0, token_out = 0; /* hash maps: a bucket index */
	int ret = 0, first = 1, done = 0;

	if (bpf_obj_get_info_by_fd(m->fd, &info, &info_len)) {
		ret = -errno;
		snprintf(err, errlen, "cannot read map %s: %s", m->name, strerror(errno));
		return ret;
	}
	keys = malloc((size_t)FLOWS_BATCH * info.key_size);
	values = malloc((size_t)FLOWS_BATCH * info.value_size);
	del = malloc((size_t)FLOWS_BATCH * info.key_size);
	if (!keys || !values || !del) {
		ret = -ENOMEM;
		snprintf(err, errlen, "out of memory scanning map %s", m->name);
		goto cleanup;
	}
	while (!done && !ret) {
		__u32 count = FLOWS_BATCH;

		if (bpf_map_lookup_batch(m->fd, first ? NULL : &token_in, &token_out, keys, values,
					 &count, &opts)) {
			if (errno != ENOENT) {
				ret = -errno;
				snprintf(err, errlen, "cannot scan map %s: %s", m->name,
					 strerror(errno));
				goto cleanup;
			}
			done = 1; /* the last entries may come with ENOENT */
		}
		first = 0;
		token_in = token_out;
		st->scanned += count;
		for (__u32 i = 0; i < count && !ret; i++) {
			const char *k = keys + (size_t)i * info.key_size;
			const char *v = values + (size_t)i * info.value_size;

			if (!addr_at(k, m->key_addr[0], match, arg) &&
			    !addr_at(k, m->key_addr[1], match, arg) &&
			    !addr_at(v, m->value_addr, match, arg))
				continue;
			memcpy(del + (size_t)ndel * info.key_size, k, info.key_size);
			if (++ndel < FLOWS_BATCH)
				continue;
			ret = delete_keys(m->fd, del, ndel, info.key_size, &st->removed);
			ndel = 0;
		}
	}
	if (!ret)
		ret = delete_keys(m->fd, del, ndel, info.key_size, &st->removed);
	if (ret)
		snprintf(err, errlen, "cannot delete entries of map %s: %s", m->name, strerror(-ret));
cleanup:
	free(keys);
	free(values);
	free(del);
	return ret;
}

int flows_purge(const struct flow_map *maps, size_t n, flow_addr_match match, void *arg,
		struct flows_purge_stats *st, char *err, size_t errlen)
{
	struct flows_purge_stats local = { 0 };
	int ret = 0;

	if (!st)
		st = &local;
	for (size_t i = 0; i < n; i++) {
		/* Go on with the other maps: less stale state is better. */
		int r = purge_map(&maps[i], match, arg, st, err, errlen);

		if (r && !ret)
			ret = r;
	}
	return ret;
}

static int match_one(__be32 addr, void *arg)
{
	return addr == *(const __be32 *)arg;
}

int flows_purge_addr(struct datapath *dp, uint32_t ip, struct flows_purge_stats *st, char *err,
		     size_t errlen)
{
	struct flow_map maps[FLOW_MAPS_MAX];
	size_t n = flows_maps(dp, maps, FLOW_MAPS_MAX);
	__be32 want = htonl(ip);

	return flows_purge(maps, n, match_one, &want, st, err, errlen);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

struct addr_set {
	const uint32_t *ips;	/* host order, sorted */
	size_t n;
	const struct cidr4 *range; /* NULL: match the set; else the range but the set */
};

static int match_set(__be32 addr, void *arg)
{
	const struct addr_set *s = arg;
	uint32_t ip = ntohl(addr);
	int in_set = s->n && bsearch(&ip, s->ips, s->n, sizeof(ip), cmp_u32);

	if (!s->range)
		return in_set;
	return cidr4_contains(s->range, ip) && !in_set;
}

static int purge_set(struct datapath *dp, const struct addr_set *set, struct flows_purge_stats *st,
		     char *err, size_t errlen)
{
	struct flow_map maps[FLOW_MAPS_MAX];
	size_t n = flows_maps(dp, maps, FLOW_MAPS_MAX);

	return flows_purge(maps, n, match_set, (void *)set, st, err, errlen);
}

int flows_purge_addrs(struct datapath *dp, uint32_t *ips, size_t n, struct flows_purge_stats *st,
		      char *err, size_t errlen)
{
	struct addr_set set = { ips, n, NULL };

	if (!n)
		return 0;
	qsort(ips, n, sizeof(ips[0]), cmp_u32);
	return purge_set(dp, &set, st, err, errlen);
}

int flows_purge_range(struct datapath *dp, const struct cidr4 *range, uint32_t *keep, size_t nkeep,
		      struct flows_purge_stats *st, char *err, size_t errlen)
{
	struct addr_set set = { keep, nkeep, range };

	if (nkeep)
		qsort(keep, nkeep, sizeof(keep[0]), cmp_u32);
	return purge_set(dp, &set, st, err, errlen);
}
