/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A flow of the agent's "flows" operation (agent/flowlog.c) as one line of
 * `sluicectl observe`'s table, and the words for why it was dropped.
 */
#ifndef SLUICE_FLOWFMT_H
#define SLUICE_FLOWFMT_H

#include <stddef.h>
#include <jansson.h>

/* The table's header line (no newline). */
const char *flowfmt_header(void);
/* "ns/pod:port", or "10.0.0.9:53 (world)" / "(node NAME)" for others. */
void flowfmt_peer(const json_t *peer, char *buf, size_t len);
/* Why: for a drop, the reason in words and the policy ("by default:
 * isolated by NetworkPolicy ns/deny-all" or "by SluiceNetworkPolicy ns/x
 * rule 2"); for others the policy that allowed it, if any. */
void flowfmt_why(const json_t *flow, char *buf, size_t len);
/* One line of the table (no newline). */
void flowfmt_line(const json_t *flow, char *buf, size_t len);

#endif /* SLUICE_FLOWFMT_H */
