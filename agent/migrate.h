/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SLUICE_AGENT_MIGRATE_H
#define SLUICE_AGENT_MIGRATE_H

#include <stddef.h>

struct bpf_object;

/*
 * Before obj is loaded: every map of obj whose layout changed since an
 * older version (agent/migrate.c's table), pinned under bpffs only in its
 * older form, is made here, filled with the older map's entries
 * converted, and handed to obj, which pins it under its new name at load.
 * The older pin stays. 0, or -errno with err naming the map and the fix.
 */
int migrate_maps(struct bpf_object *obj, const char *bpffs, char *err, size_t errlen);

#endif
