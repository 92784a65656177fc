/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The "version" op (docs/API.md): the agent's version, the BPF objects it
 * carries and the pinned maps they use, and the kernel features it found.
 */
#ifndef SLUICE_AGENT_VERSION_H
#define SLUICE_AGENT_VERSION_H

#include <jansson.h>

#include "agent.h"

/* The answer's result, or NULL when out of memory. */
json_t *agent_version_json(const struct agent *a);

#endif /* SLUICE_AGENT_VERSION_H */
