/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Entry counts of the datapath's maps for /metrics. Counting a hash or LRU
 * map is a walk of it (full conntrack and flow maps: some 100 ms), so a
 * count is done at most every PROM_MAP_COUNT_INTERVAL_S, only when
 * someone scrapes, and in steps of PROM_MAP_STEP_S between the agent's
 * other work (prom_http.c runs them from the poll loop): a scrape is
 * answered from the last finished count and never waits for a walk,
 * except the very first, done whole. The policy and ipcache maps (LPM
 * tries, written by the agent alone) are not walked: the last policy sync
 * says how many entries it left.
 */
#ifndef SLUICE_AGENT_PROM_MAPS_H
#define SLUICE_AGENT_PROM_MAPS_H

#include <stdbool.h>
#include <stdint.h>

#include "agent.h"

#define PROM_MAP_COUNT_INTERVAL_S 5
#define PROM_MAP_STEP_S 0.005
#define PROM_MAPS 11

struct prom_map_count {
	const char *name;
	uint32_t max_entries;
	uint64_t entries;
	bool ok;		/* the map could be read */
};

struct prom_map_cache {
	struct prom_map_count m[PROM_MAPS];	/* the last finished count */
	double done_at;		/* CLOCK_MONOTONIC seconds it finished; 0: none yet */
	double cost_s;		/* time its steps took together */
	/* The count in progress. */
	bool walking;
	size_t cur;		/* the map being walked */
	bool resume;		/* token holds where its walk stopped */
	unsigned char token[64];
	double cost;
	struct prom_map_count next[PROM_MAPS];
	void *keys, *vals;	/* batch buffers, grown as needed */
	size_t keys_len, vals_len;
};

/* A scrape wants counts: start a count when the last is older than the
 * interval (the first one runs to its end here). */
void prom_maps_want(struct agent *a, struct prom_map_cache *c);
/* Go on with the count in progress for about budget_s seconds. Returns
 * true while it is not finished. */
bool prom_maps_step(struct agent *a, struct prom_map_cache *c, double budget_s);
void prom_maps_free(struct prom_map_cache *c);

#endif /* SLUICE_AGENT_PROM_MAPS_H */
