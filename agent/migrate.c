// SPDX-License-Identifier: Apache-2.0
/*
 * Map layout migration across an upgrade (docs/INSTALL.md, Upgrading).
 *
 * A map's name carries its layout version (sluice_ct4_v1): a version that
 * changes a layout renames the map, so old bytes are never read as new.
 * Renaming alone would start the map empty, which for the stateful maps
 * (connection tracking, NAT) drops every established flow that needs its
 * entry. So a version that changes a layout lists the map here with the
 * older name(s) and a function converting one entry, and the agent, before
 * it loads its programs:
 *
 *  - new pin present: nothing to do (a restart, or an upgrade already done);
 *  - only the older pin present: creates the new map (unpinned), copies and
 *    converts every entry of the older one, and hands the map to libbpf,
 *    which pins it under the new name when it loads the programs. A crash
 *    before that leaves no half-filled pin: the next start copies again;
 *  - neither: a fresh node, libbpf creates the map empty.
 *
 * The old programs keep running on the old map until each hook's program is
 * replaced (tc replace, link update): entries they create between the copy
 * and their replacement are not carried over (new flows' first packets in
 * those milliseconds; their next packet is judged as new and re-creates
 * them). The older pin is left in place, so a downgrade finds its map with
 * every entry as it was at the upgrade; what the newer version created
 * after the upgrade is not in it (the downgraded datapath re-creates such
 * entries from the flows' next packets, judged by policy as new flows). The
 * older pin costs its memory until it is removed by hand (rm of the pin)
 * once no downgrade is planned.
 *
 * The table is empty in a release with no layout change. The entry below
 * is the upgrade test's (tests/e2e/upgrade-live.sh): a build with
 * SLUICE_UPGRADE_TEST_LAYOUT gives conntrack a 24-byte value in
 * sluice_ct4_v2.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "log.h"
#include "migrate.h"
#include "sluice/datapath.h"

struct migration {
	const char *name;	/* this version's map and pin */
	const char *from;	/* the older version's pin */
	__u32 from_key_size, from_value_size;
	/* One entry, older layout to this one (key and value). */
	void (*convert)(const void *okey, const void *oval, void *nkey, void *nval);
};

#ifdef SLUICE_UPGRADE_TEST_LAYOUT
struct ct_value_v1 {
	__u64 last_seen;
	__u32 flags;
	__u32 pad;
};

static void ct4_v1_to_v2(const void *okey, const void *oval, void *nkey, void *nval)
{
	const struct ct_value_v1 *o = oval;

	memcpy(nkey, okey, sizeof(struct sluice_ct_key));
	*(struct sluice_ct_value *)nval = (struct sluice_ct_value){
		.last_seen = o->last_seen, .flags = o->flags, .pad = o->pad,
		.created = o->last_seen,
	};
}
#endif

static const struct migration migrations[] = {
#ifdef SLUICE_UPGRADE_TEST_LAYOUT
	{ "sluice_ct4_v2", "sluice_ct4_v1", sizeof(struct sluice_ct_key),
	  sizeof(struct ct_value_v1), ct4_v1_to_v2 },
#endif
	{ NULL, NULL, 0, 0, NULL },
};

/* Copy and convert every entry of old_fd into new_fd; *n: how many. */
static int copy_entries(const struct migration *m, int old_fd, int new_fd, __u32 key_size,
			__u32 value_size, unsigned long *n)
{
	void *key = NULL, *next = NULL, *oval = NULL, *nkey = NULL, *nval = NULL;
	int ret = 0, first = 1;

	key = calloc(1, m->from_key_size);
	next = calloc(1, m->from_key_size);
	oval = calloc(1, m->from_value_size);
	nkey = calloc(1, key_size);
	nval = calloc(1, value_size);
	if (!key || !next || !oval || !nkey || !nval) {
		ret = -ENOMEM;
		goto cleanup;
	}
	*n = 0;
	while (!bpf_map_get_next_key(old_fd, first ? NULL : key, next)) {
		first = 0;
		memcpy(key, next, m->from_key_size);
		/* Gone since (the old programs still run): nothing to carry. */
		if (bpf_map_lookup_elem(old_fd, key, oval))
			continue;
		m->convert(key, oval, nkey, nval);
		if (bpf_map_update_elem(new_fd, nkey, nval, BPF_ANY)) {
			ret = -errno;
			goto cleanup;
		}
		(*n)++;
	}
	if (errno != ENOENT)
		ret = -errno;
cleanup:
	free(key);
	free(next);
	free(oval);
	free(nkey);
	free(nval);
	return ret;
}

static int migrate_one(struct bpf_object *obj, const struct migration *m, const char *bpffs,
		       char *err, size_t errlen)
{
	struct bpf_map_info info = { 0 };
	__u32 len = sizeof(info);
	char path[4096], from[4096];
	int old_fd = -1, new_fd = -1, ret = 0;
	struct bpf_map *map = bpf_object__find_map_by_name(obj, m->name);
	unsigned long n = 0;

	if (!map)
		return 0; /* not in this object */
	snprintf(path, sizeof(path), "%s/%s", bpffs, m->name);
	snprintf(from, sizeof(from), "%s/%s", bpffs, m->from);
	if (!access(path, F_OK))
		return 0;
	old_fd = bpf_obj_get(from);
	if (old_fd < 0)
		return 0; /* a fresh node */
	if (bpf_obj_get_info_by_fd(old_fd, &info, &len)) {
		ret = -errno;
		snprintf(err, errlen, "cannot read the map pinned at %s: %s", from, strerror(errno));
		goto cleanup;
	}
	if (info.key_size != m->from_key_size || info.value_size != m->from_value_size) {
		ret = -EINVAL;
		snprintf(err, errlen, "cannot migrate %s to %s: its key/value sizes are %u/%u, not "
				      "the %u/%u this version converts; remove the pin (rm %s, which "
				      "forgets its entries) and restart",
			 from, m->name, info.key_size, info.value_size, m->from_key_size,
			 m->from_value_size, from);
		goto cleanup;
	}
	{
		LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = bpf_map__map_flags(map));

		new_fd = bpf_map_create(bpf_map__type(map), m->name, bpf_map__key_size(map),
					bpf_map__value_size(map), bpf_map__max_entries(map), &opts);
	}
	if (new_fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot create %s to migrate %s into: %s", m->name, from,
			 strerror(errno));
		goto cleanup;
	}
	ret = copy_entries(m, old_fd, new_fd, bpf_map__key_size(map), bpf_map__value_size(map), &n);
	if (ret) {
		snprintf(err, errlen, "cannot copy the entries of %s into %s: %s", from, m->name,
			 strerror(-ret));
		goto cleanup;
	}
	/* libbpf pins it under path when it loads obj. */
	ret = bpf_map__reuse_fd(map, new_fd);
	if (ret) {
		snprintf(err, errlen, "cannot hand the migrated %s to the BPF object: %s", m->name,
			 strerror(-ret));
		goto cleanup;
	}
	pr_info("map %s: %lu entries migrated from %s (left pinned for a downgrade; remove it "
		"once none is planned)", m->name, n, from);
cleanup:
	if (new_fd >= 0)
		close(new_fd);
	close(old_fd);
	return ret;
}

int migrate_maps(struct bpf_object *obj, const char *bpffs, char *err, size_t errlen)
{
	int ret = 0;

	for (const struct migration *m = migrations; !ret && m->name; m++)
		ret = migrate_one(obj, m, bpffs, err, errlen);
	return ret;
}
