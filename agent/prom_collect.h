/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's metric families (docs/OBSERVABILITY.md, "Prometheus
 * metrics"), rendered from the agent's in-memory counters and one read of
 * each datapath map. Main thread only: it reads the agent without locks.
 */
#ifndef SLUICE_AGENT_PROM_COLLECT_H
#define SLUICE_AGENT_PROM_COLLECT_H

#include <stdint.h>

#include "agent.h"
#include "prom.h"

/* Counting a hash map's entries is a walk of the map: done at most every
 * PROM_MAP_COUNT_INTERVAL_S seconds, the counts kept in between. */
#define PROM_MAP_COUNT_INTERVAL_S 5
#define PROM_MAPS 11

struct prom_map_cache {
	double at;		/* CLOCK_MONOTONIC seconds of the last walk; 0: never */
	double walk_s;		/* how long it took */
	struct prom_map_count {
		const char *name;
		uint32_t max_entries;
		uint64_t entries;
		bool ok;	/* the map could be read */
	} m[PROM_MAPS];
	size_t n;
};

/* Render every family into b. Returns 0, or -ENOMEM (b->oom). */
int prom_render(struct agent *a, struct prom_map_cache *cache, struct prom_buf *b);

#endif /* SLUICE_AGENT_PROM_COLLECT_H */
