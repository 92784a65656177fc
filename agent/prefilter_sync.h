/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The prefilter's maps (bpf/lib/prefilter4.h, pinned under --bpffs):
 * SluicePrefilter objects compiled (prefilter.c) and written as a diff
 * against what the maps hold, with stable rule and counter slots, their
 * status for `sluicectl get prefilters`, and their drop counters.
 */
#ifndef SLUICE_AGENT_PREFILTER_SYNC_H
#define SLUICE_AGENT_PREFILTER_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

#include "prefilter.h"

/* The maps' descriptors: sluice_pf4_v1, sluice_pfh4_v1, sluice_pfp4_v1,
 * sluice_pfcfg_v1, sluice_pfent_v1, sluice_pfrul_v1. */
struct pf_maps {
	int lpm, host, ports, cfg, ent, rul;
};

/* Open the pins <bpffs>/<map name>. Returns 0 or a negative errno with
 * err naming the pin. */
int pf_maps_open(struct pf_maps *m, const char *bpffs, char *err, size_t errlen);

struct pf_sync;

/*
 * Take over m (closed by pf_sync_close) and read back what the maps hold,
 * so that a restarted agent writes nothing when nothing changed. slots_path
 * (NULL: none) keeps which object owns which rule slot across restarts.
 * Returns 0 or a negative errno with err set.
 */
int pf_sync_open(struct pf_sync **out, struct pf_maps *m, const char *slots_path, char *err,
		 size_t errlen);
void pf_sync_close(struct pf_sync *ps);

struct pf_sync_stats {
	size_t prefixes;	/* entries the maps hold afterwards (trie + hash) */
	size_t written;		/* entries written (new or changed), ports and config included */
	size_t removed;
	double ms;		/* compile and write */
	double compile_ms;	/* flattening alone */
};

/*
 * Bring the maps in line with objs[0..n) (kube[i]: from the Kubernetes
 * API; may be NULL) on a node with node_labels: the objects whose
 * nodeSelector matches get a rule slot (at most SLUICE_PF_RULES_MAX; the
 * others are reported not applied), entries that would lock out one of g
 * are left out (and reported), the rest flattened and written: new and
 * changed entries first, then ports and config, then what is stale, so
 * a source denied before and after is never let through in between.
 * Returns 0 or a negative errno with err set (the maps may then hold part
 * of the change; the next sync completes it).
 */
int pf_sync_apply(struct pf_sync *ps, const struct pf_object *const *objs, const bool *kube,
		  size_t n, const struct pol_labels *node_labels, const struct pf_guards *g,
		  struct pf_sync_stats *st, char *err, size_t errlen);

/*
 * Status of the objects of the last sync, with their counters: name NULL
 * for all ({"items": [...]}), else the one object (NULL if unknown).
 * Left-out entries and their reasons are always there; detail adds each
 * deny entry with its drops (sluice_pfent_v1).
 */
json_t *pf_sync_status_json(struct pf_sync *ps, const char *name, bool detail);
/* [{"name", "packets", "bytes"}]: each applied object's drops
 * (sluice_pfrul_v1 summed over CPUs), for `sluicectl metrics`. */
json_t *pf_sync_metrics_json(struct pf_sync *ps);
/* Problems of the last sync, one line each ("block: spec.deny[2] ... left
 * out: ..."), for logs: called after pf_sync_apply, NULL when none. */
const char *pf_sync_problem(const struct pf_sync *ps, size_t i);

#endif /* SLUICE_AGENT_PREFILTER_SYNC_H */
