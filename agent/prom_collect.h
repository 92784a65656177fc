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
#include "prom_maps.h"

/* Render every family into b. Returns 0, or -ENOMEM (b->oom). */
int prom_render(struct agent *a, struct prom_map_cache *cache, struct prom_buf *b);

#endif /* SLUICE_AGENT_PROM_COLLECT_H */
