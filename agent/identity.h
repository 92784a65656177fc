/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Security identities: a number per (namespace, pod label set) and per
 * ipBlock prefix. Pods with the same labels in the same namespace share one,
 * so policy state grows with label sets, not with pods. Numbers are saved
 * under the state directory and reused after a restart, so the pinned maps
 * stay consistent while a new agent takes over.
 */
#ifndef SLUICE_IDENTITY_H
#define SLUICE_IDENTITY_H

#include <stdint.h>
#include <jansson.h>

#include "cidr.h"
#include "policy.h"

struct identities;

int identities_open(struct identities **out, const char *state_dir, char *err, size_t errlen);
void identities_close(struct identities *ids);

/* A round of use: begin, look up everything in use, end. end forgets the
 * identities not looked up since begin and saves the table when it
 * changed. */
void identities_begin(struct identities *ids);
int identities_end(struct identities *ids);

/* The identity of a pod label set in namespace ns (allocated on first use);
 * 0 only when out of memory. */
uint32_t identity_of_pod(struct identities *ids, const char *ns, const struct pol_labels *labels);
uint32_t identity_of_cidr(struct identities *ids, const struct cidr4 *c);

/* [{"id", "namespace", "labels"} or {"id", "cidr"}] */
json_t *identities_to_json(const struct identities *ids);

#endif /* SLUICE_IDENTITY_H */
