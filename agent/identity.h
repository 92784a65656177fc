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
#include <time.h>
#include <jansson.h>

#include "cidr.h"
#include "policy.h"

struct identities;

/*
 * How long a number no pod or ipBlock uses any more is kept from new
 * meanings. Numbers are this node's own (they never travel in a packet or
 * to another node), and they are released only after a sync that removed
 * every map entry naming them has completed, so no rule, ipcache entry or
 * endpoint on this node can still refer to the old meaning when the number
 * comes back. The grace period covers what outlives a sync: a failed sync's
 * rollback to a state that names the number, an explain or get output in
 * an operator's hands, a label set that flaps back (it gets its old number).
 */
#define IDENTITY_GRACE_S 300

struct identity_limits {
	uint32_t label_first, label_end;	/* [first, end) */
	uint32_t cidr_first, cidr_end;
	unsigned grace_s;
	time_t (*now)(void);			/* wall clock: releases outlive restarts */
};

/* state_dir NULL: in memory only (tests). */
int identities_open(struct identities **out, const char *state_dir, char *err, size_t errlen);
/* Tests: smaller ranges, another grace period or clock. */
void identities_set_limits(struct identities *ids, const struct identity_limits *lim);
/* Identities in use; *released: those in their grace period. */
size_t identities_count(const struct identities *ids, size_t *released);
void identities_close(struct identities *ids);

/* A round of use: begin, look up everything in use, end. end forgets the
 * identities not looked up since begin and saves the table when it
 * changed. */
void identities_begin(struct identities *ids);
int identities_end(struct identities *ids);

/*
 * Incremental use (no begin): the numbers no group or prefix uses any
 * more, named once every map entry naming them is gone; their grace period
 * starts now. end then only expires and saves. Returns 0 or -ENOMEM.
 */
int identities_release(struct identities *ids, const uint32_t *dead, size_t n);
/* Numbers the pinned maps use (a previous agent's): those the table does
 * not know (it was not saved before a crash) are held back for the grace
 * period, so no new label set or prefix gets one while a map entry may
 * still mean the old one. Returns 0 or -ENOMEM. */
int identities_reserve(struct identities *ids, const uint32_t *nums, size_t n);
/* Write the table at most once per seconds (0: at every end that changed
 * it, the default); close writes what is left. */
void identities_set_save_interval(struct identities *ids, unsigned seconds);

/* The identity of a pod label set in namespace ns (allocated on first use);
 * 0 when its range is exhausted (or out of memory): the caller fails the
 * pod or policy closed. */
uint32_t identity_of_pod(struct identities *ids, const char *ns, const struct pol_labels *labels);
uint32_t identity_of_cidr(struct identities *ids, const struct cidr4 *c);

/* [{"id", "namespace", "labels"} or {"id", "cidr"}] */
json_t *identities_to_json(const struct identities *ids);

#endif /* SLUICE_IDENTITY_H */
