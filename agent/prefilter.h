/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SluicePrefilter (sluice.io/v1alpha1, cluster-scoped): reading and
 * validating the object, the lock-out guards (node addresses, pod CIDRs,
 * the API server), and flattening the deny/except CIDRs of the objects
 * that apply into the prefixes and rule masks of the datapath contract
 * (struct sluice_pf_key4 in include/sluice/datapath.h). No BPF here: the
 * maps are prefilter_sync.c's.
 */
#ifndef SLUICE_AGENT_PREFILTER_H
#define SLUICE_AGENT_PREFILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "cidr.h"
#include "policy.h"

struct pf_port {
	uint8_t proto;		/* IPPROTO_TCP, _UDP, _SCTP */
	uint16_t port;		/* host order */
};

struct pf_object {
	char *name;
	struct cidr4 *deny;	/* spec.deny, in order */
	size_t ndeny;
	struct cidr4 *except;	/* spec.except */
	size_t nexcept;
	struct pf_port *ports;	/* spec.ports; none: every destination port */
	size_t nports;
	bool has_sel;		/* spec.nodeSelector given */
	struct pol_selector sel;
	/* From the Kubernetes API, which cannot be refused: the object could
	 * not be read (the reason), and nothing of it applies. NULL: read. */
	char *invalid;
};

/*
 * Parse obj (apiVersion, kind, metadata.name, spec). pf_parse is for
 * `sluicectl apply`: every problem is an error naming the object and the
 * field ("SluicePrefilter NAME: spec.deny[2]: ..."). pf_parse_api is for
 * objects from the API: a problem leaves the object with invalid set (and
 * returns 0); only a missing name or out of memory fail. Returns 0,
 * -EINVAL or -ENOMEM.
 */
int pf_parse(const json_t *obj, struct pf_object **out, char *err, size_t errlen);
int pf_parse_api(const json_t *obj, struct pf_object **out, char *err, size_t errlen);
void pf_free(struct pf_object *o);

/* Whether the object applies on a node with these labels (no selector:
 * every node). */
bool pf_applies(const struct pf_object *o, const struct pol_labels *node_labels);

/* ---- guards: what no entry may lock out ------------------------------ */

struct pf_guard {
	struct cidr4 c;		/* an address is a /32 */
	bool range;		/* a pod CIDR: any overlap counts */
	char what[112];		/* "node node-2's address 10.0.0.12" */
};

struct pf_guards {
	struct pf_guard *v;
	size_t n, cap;
	size_t *by_net;		/* pf_guards_index: v's indexes by (net, prefix); NULL: scan */
	uint64_t lens;		/* the prefix lengths among v (bit i: some /i) */
};

/* Add an address (/32) or a range; what is the phrase used in messages.
 * Returns 0 or -ENOMEM. */
int pf_guards_add_addr(struct pf_guards *g, uint32_t ip, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int pf_guards_add_range(struct pf_guards *g, const struct cidr4 *c, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void pf_guards_free(struct pf_guards *g);
/* Sort g for pf_entry_offends' lookups (without it: a scan of g for each
 * entry). Adding a guard drops the index. Returns 0 or -ENOMEM. */
int pf_guards_index(struct pf_guards *g);

/*
 * Whether spec.deny[i] of o would lock out something of g: it holds a
 * guarded address that no except of o holds, or overlaps a guarded range
 * (inside it, or holding it without an except of o that holds all of it).
 * why (if not NULL) gets "spec.deny[2] 10.0.0.0/8 covers node node-2's
 * address 10.0.0.12; narrow it or add an except".
 */
bool pf_entry_offends(const struct pf_object *o, size_t i, const struct pf_guards *g, char *why,
		      size_t whylen);
/* The first offending entry of o as an error for `sluicectl apply`
 * ("SluicePrefilter NAME: spec.deny[i] ..."): true when there is one. */
bool pf_check(const struct pf_object *o, const struct pf_guards *g, char *err, size_t errlen);

/* ---- flattening -------------------------------------------------------- */

/* One applying object, as the compiler sees it. */
struct pf_input {
	const struct pf_object *o;
	const bool *skip;	/* per deny entry: left out (NULL: none) */
	unsigned slot;		/* its rule slot, 0..SLUICE_PF_RULES_MAX-1 */
};

/* A prefix of the union of every deny and except CIDR. */
struct pf_prefix {
	uint32_t net;		/* host order */
	uint8_t len;
	bool deny;		/* some object denies exactly this prefix: it gets a counter */
	uint64_t rules;		/* the objects with a deny holding it and no except holding it */
	/* Not a deny prefix but dropping: the index in the table of the deny
	 * prefix whose counter its drops go to; else SIZE_MAX. */
	size_t counted_as;
};

/*
 * rules(P) for every prefix P of the union, as the datapath contract
 * defines it; *out sorted by (net, len) and without duplicates. Returns 0
 * or -ENOMEM. O(n log n) in the number of CIDRs.
 */
int pf_flatten(const struct pf_input *in, size_t n, struct pf_prefix **out, size_t *nout);
/* The rules the table gives ip (longest prefix holding it; 0 when none),
 * by binary search over the sorted table: the datapath's lookup. */
uint64_t pf_lookup(const struct pf_prefix *t, size_t n, uint32_t ip);

#endif /* SLUICE_AGENT_PREFILTER_H */
