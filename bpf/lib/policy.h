/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Policy: the identities of a peer address (ipcache) and the per-endpoint
 * allow/deny tries the agent compiles from NetworkPolicy and sluice's CRDs.
 * Looked up once per new flow; connection tracking carries the rest.
 */
#ifndef SLUICE_BPF_POLICY_H
#define SLUICE_BPF_POLICY_H

#include "l4.h"

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SLUICE_IPCACHE_MAX);
	__type(key, struct sluice_ipcache_key);
	__type(value, struct sluice_ipcache_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_ipc_v2 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SLUICE_POLICY_MAX);
	__type(key, struct sluice_policy_key);
	__type(value, struct sluice_policy_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_pol_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SLUICE_POLICY_MAX);
	__type(key, struct sluice_policy_key);
	__type(value, struct sluice_policy_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_deny_v1 SEC(".maps");

enum policy_verdict { POLICY_ALLOW = 0, POLICY_NO_RULE, POLICY_DENY_RULE };

static __always_inline struct sluice_ipcache_value ipcache_lookup(__be32 ip)
{
	struct sluice_ipcache_key key = { .prefixlen = 32, .ip = ip };
	struct sluice_ipcache_value world = { SLUICE_ID_WORLD, SLUICE_ID_WORLD, 0, 0 };
	struct sluice_ipcache_value *v = bpf_map_lookup_elem(&sluice_ipc_v2, &key);

	return v ? *v : world;
}

/* Is any of the peer's identities (label, CIDR, wildcard) in map? The
 * matching entry's rule reference goes to *rule. */
static __always_inline int policy_match(void *map, struct sluice_policy_key *key,
					const struct sluice_ipcache_value *peer, __u32 *rule)
{
	struct sluice_policy_value *v;

	key->identity = peer->identity;
	v = bpf_map_lookup_elem(map, key);
	if (!v) {
		key->identity = peer->cidr_identity;
		v = bpf_map_lookup_elem(map, key);
	}
	if (!v) {
		key->identity = SLUICE_ID_ANY;
		v = bpf_map_lookup_elem(map, key);
	}
	if (!v)
		return 0;
	*rule = v->rule;
	return 1;
}

/* *rule: the deciding entry's rule reference, or SLUICE_FLOW_RULE_DEFAULT
 * when no entry matched (denied by default). */
static __always_inline enum policy_verdict
policy_check(__u32 ep, __u8 dir_tier, const struct sluice_ipcache_value *peer,
	     const struct flow *f, __u32 *rule)
{
	struct sluice_policy_key key = {
		.prefixlen = SLUICE_POLICY_KEY_BITS,
		.ep = ep,
		.dir = dir_tier,
		.proto = f->key.proto,
		.port = bpf_htons(f->policy_port),
	};

	if (policy_match(&sluice_deny_v1, &key, peer, rule))
		return POLICY_DENY_RULE;
	if (policy_match(&sluice_pol_v1, &key, peer, rule))
		return POLICY_ALLOW;
	*rule = SLUICE_FLOW_RULE_DEFAULT;
	return POLICY_NO_RULE;
}

/*
 * The verdict for a new flow in direction dir of endpoint ep, with peer's
 * identities. Only an isolated endpoint consults its rules. *audit is set
 * when the flow passes but would not with the endpoint's Audit-mode
 * policies added. *rule (for flow records): the rule that decided
 * (SLUICE_FLOW_RULE_NONE when the endpoint is not isolated that way); for
 * a flow *audit marks, the Audit tier's rule that would drop it.
 */
static __always_inline enum policy_verdict
policy_decide(const struct sluice_endpoint *ep, __u32 dir, const struct sluice_ipcache_value *peer,
	      const struct flow *f, int *audit, __u32 *rule)
{
	__u32 iso = dir == SLUICE_DIR_INGRESS ? SLUICE_EP_F_ISO_INGRESS : SLUICE_EP_F_ISO_EGRESS;
	__u32 audit_iso = dir == SLUICE_DIR_INGRESS ? SLUICE_EP_F_AUDIT_ISO_INGRESS
						    : SLUICE_EP_F_AUDIT_ISO_EGRESS;
	enum policy_verdict v = POLICY_ALLOW;
	__u32 audit_rule = SLUICE_FLOW_RULE_NONE;

	*rule = SLUICE_FLOW_RULE_NONE;
	if (ep->flags & iso)
		v = policy_check(ep->ifindex, (__u8)dir, peer, f, rule);
	if (v == POLICY_ALLOW && (ep->flags & audit_iso) &&
	    policy_check(ep->ifindex, (__u8)(dir | SLUICE_POLICY_TIER_AUDIT << 1), peer, f,
			 &audit_rule) != POLICY_ALLOW) {
		*audit = 1;
		*rule = audit_rule;
	}
	return v;
}

static __always_inline int policy_drop(enum policy_verdict v)
{
	return DROP(v == POLICY_DENY_RULE ? SLUICE_DROP_POLICY_DENY : SLUICE_DROP_POLICY);
}

#endif /* SLUICE_BPF_POLICY_H */
