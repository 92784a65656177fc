/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-flow state by address. Connection tracking, masquerade and every other
 * map whose entries belong to the ends of a flow are keyed by addresses, not
 * by pods: when a pod goes and its address is handed to the next pod, each
 * entry that names the address must go first, or the next holder inherits
 * flows that its policy never saw (an established entry passes without a
 * policy lookup).
 */
#ifndef SLUICE_FLOWS_H
#define SLUICE_FLOWS_H

#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>

#include "cidr.h"
#include "loader.h"

#define FLOW_ADDR_NONE (-1)
#define FLOW_MAPS_MAX 8

/* One per-flow map and where IPv4 addresses sit in its entries. */
struct flow_map {
	const char *name;
	int fd;
	int key_addr[2];	/* byte offsets in the key, FLOW_ADDR_NONE: unused */
	int value_addr;		/* byte offset in the value, FLOW_ADDR_NONE: none */
};

/* Does the address (network order) name state that must go? */
typedef int (*flow_addr_match)(__be32 addr, void *arg);

struct flows_purge_stats {
	size_t scanned;		/* entries looked at, all maps */
	size_t removed;		/* entries deleted, all maps */
};

/* The datapath's per-flow maps into maps[max]; returns how many. */
size_t flows_maps(struct datapath *dp, struct flow_map *maps, size_t max);

/* Delete every entry of the maps with an address that match() accepts.
 * Entries that vanish meanwhile (LRU eviction) are not an error. On
 * failure err names the map; what was deleted stays deleted. */
int flows_purge(const struct flow_map *maps, size_t n, flow_addr_match match, void *arg,
		struct flows_purge_stats *st, char *err, size_t errlen);

/* Every entry of the datapath's per-flow maps that names ip (host order). */
int flows_purge_addr(struct datapath *dp, uint32_t ip, struct flows_purge_stats *st, char *err,
		     size_t errlen);
/* ... that names one of ips[n] (host order; sorted in place), in one scan. */
int flows_purge_addrs(struct datapath *dp, uint32_t *ips, size_t n, struct flows_purge_stats *st,
		      char *err, size_t errlen);
/* ... that names an address of range other than keep[nkeep] (host order;
 * sorted in place): the state of every pod CIDR address no pod holds. */
int flows_purge_range(struct datapath *dp, const struct cidr4 *range, uint32_t *keep, size_t nkeep,
		      struct flows_purge_stats *st, char *err, size_t errlen);

#endif /* SLUICE_FLOWS_H */
