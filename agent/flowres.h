/* SPDX-License-Identifier: Apache-2.0 */
/* The flow buffer's lookups in the agent's state (flowres.c). */
#ifndef SLUICE_FLOWRES_H
#define SLUICE_FLOWRES_H

#include "agent.h"
#include "flowlog.h"

struct flowres;
/* res gets the lookups, valid until flowres_close. */
int flowres_open(struct flowres **out, struct agent *a, struct flow_resolver *res);
void flowres_close(struct flowres *r);

#endif /* SLUICE_FLOWRES_H */
