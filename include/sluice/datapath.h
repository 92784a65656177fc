/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The contract between sluice's BPF programs and the agent: map names,
 * key/value layouts, verdict reasons and directions. Both bpf/ and agent/
 * include this file; there is no second copy anywhere.
 *
 * Layout rules: fixed-width types only, explicit padding, and a size
 * assertion per struct. A layout change bumps the map's _vN suffix so an
 * upgraded agent never reads old pinned bytes as new.
 */
#ifndef SLUICE_DATAPATH_H
#define SLUICE_DATAPATH_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#include <linux/bpf.h>		/* struct bpf_spin_lock */
#endif

/* Map names double as pin names under the agent's --bpffs directory.
 * The kernel keeps 15 characters of a map name, so keep them that short. */
#define SLUICE_MAP_ENDPOINTS "sluice_ep_v2"
#define SLUICE_MAP_BW "sluice_bw_v1"
#define SLUICE_MAP_METRICS   "sluice_stats_v2"
#define SLUICE_MAP_IPCACHE   "sluice_ipc_v2"
#define SLUICE_MAP_POLICY    "sluice_pol_v1"
#define SLUICE_MAP_DENY      "sluice_deny_v1"
/* SLUICE_UPGRADE_TEST_LAYOUT (test-only, tests/e2e/upgrade-live.sh): a
 * build whose conntrack map has another layout and name, to prove the
 * migration of a stateful map (agent/migrate.c). sluice_ct4_map is the
 * map's C name in bpf/ and in the skeletons. Never set in a release. */
#ifdef SLUICE_UPGRADE_TEST_LAYOUT
#define SLUICE_MAP_CT        "sluice_ct4_v2"
#define sluice_ct4_map       sluice_ct4_v2
#else
#define SLUICE_MAP_CT        "sluice_ct4_v1"
#define sluice_ct4_map       sluice_ct4_v1
#endif
#define SLUICE_MAP_SNAT      "sluice_snat4_v1"
#define SLUICE_MAP_RNAT      "sluice_rnat4_v1"
#define SLUICE_MAP_NOMASQ    "sluice_nomasq_v1"
#define SLUICE_MAP_FRAG      "sluice_frag4_v1"
#define SLUICE_MAP_LB_SVC    "sluice_svc4_v1"
#define SLUICE_MAP_LB_BE     "sluice_be4_v1"
#define SLUICE_MAP_LB_RNAT   "sluice_lbrn4_v1"
#define SLUICE_MAP_LB_MGL    "sluice_mgl4_v1"
#define SLUICE_MAP_LB_AFF    "sluice_aff4_v1"
/* The uplink's prefilter (SluicePrefilter objects, bpf/lib/prefilter4.h). */
#define SLUICE_MAP_PF_LPM    "sluice_pf4_v1"
#define SLUICE_MAP_PF_HOST   "sluice_pfh4_v1"
#define SLUICE_MAP_PF_PORT   "sluice_pfp4_v1"
#define SLUICE_MAP_PF_CFG    "sluice_pfcfg_v1"
#define SLUICE_MAP_PF_ENTCNT "sluice_pfent_v1"
#define SLUICE_MAP_PF_RULCNT "sluice_pfrul_v1"
/* Which hook runs the uplink's first stage (XDP or tc), set by the loader. */
#define SLUICE_MAP_XDP_STATE "sluice_xdpst_v1"
/* Why the XDP program's stage 2 left a Service packet to tc (SLUICE_XDP_FT). */
#define SLUICE_MAP_XDP_FT    "sluice_xdpft_v1"
/* Flows (see the flow section below). */
#define SLUICE_MAP_FLOW4     "sluice_flow4_v1"
#define SLUICE_MAP_FLOW_RB   "sluice_flowrb_v1"
#define SLUICE_MAP_FLOW_ST   "sluice_flowst_v1"

#ifndef SLUICE_ENDPOINTS_MAX
#define SLUICE_ENDPOINTS_MAX 65536
#endif
#ifndef SLUICE_IPCACHE_MAX
#define SLUICE_IPCACHE_MAX 262144
#endif
#ifndef SLUICE_POLICY_MAX
#define SLUICE_POLICY_MAX 1048576
#endif
#ifndef SLUICE_CT_MAX
#define SLUICE_CT_MAX 262144
#endif
#ifndef SLUICE_FRAG_MAX
#define SLUICE_FRAG_MAX 16384
#endif
/* Service frontends' entries (slot 0 plus one per backend), backends, and
 * rev-NAT entries (one per frontend). */
#ifndef SLUICE_LB_SVC_MAX
#define SLUICE_LB_SVC_MAX 65536
#endif
#ifndef SLUICE_LB_BE_MAX
#define SLUICE_LB_BE_MAX 65536
#endif
#ifndef SLUICE_LB_RNAT_MAX
#define SLUICE_LB_RNAT_MAX 65536
#endif
/* Node sockets' translated peers (sluice_lbsk4_v1, LRU). */
#ifndef SLUICE_LBSK_MAX
#define SLUICE_LBSK_MAX 65536
#endif
/* Maglev tables (one per frontend with two or more backends) and ClientIP
 * affinity entries (one per client and frontend, LRU). */
#ifndef SLUICE_LB_MGL_MAX
#define SLUICE_LB_MGL_MAX 65536
#endif
#ifndef SLUICE_LB_AFF_MAX
#define SLUICE_LB_AFF_MAX 65536
#endif
/* Entries of a Maglev table (--lb-maglev-table-size): the default prime is
 * the smallest size measured to move <= 1 % of flows when one backend of
 * 100 goes (docs/SERVICES-DATAPATH.md). */
#define SLUICE_MAGLEV_M_DEFAULT 32771

/*
 * The prefilter: SluicePrefilter objects (cluster-scoped, at most
 * SLUICE_PF_RULES_MAX of them apply on a node) drop packets arriving on the
 * uplink by source address, first thing (XDP, or tc when XDP is off).
 *
 * Each object applying on this node owns a rule slot (bit i of a rules
 * mask). The agent flattens all objects' deny and except CIDRs into one set
 * of prefixes: for each prefix P, rules(P) = the objects with a deny CIDR
 * holding P and no except CIDR holding P. Since the CIDRs holding an
 * address form a chain, the longest prefix holding an address gives that
 * address's exact rule set. /32 prefixes go in a hash (sluice_pfh4_v1, for
 * very large lists), shorter ones in an LPM trie (sluice_pf4_v1); the hash
 * is looked up first (a /32 is the longest match there can be). A value
 * with rules == 0 is an exception: the packet passes.
 *
 * Port scoping: rule i drops any destination port when bit i is in
 * sluice_pfcfg_v1's all_ports, else only the (protocol, port) pairs whose
 * sluice_pfp4_v1 value has bit i. A packet is dropped when
 *   rules(src) & (all_ports | ports(proto, dport)) != 0
 * (packets without a port, such as later fragments, see all_ports only).
 * The drop is counted for the prefix (sluice_pfent_v1[entry]; entry 0
 * collects prefixes beyond SLUICE_PF_ENTRY_SLOTS) and for the lowest rule
 * bit of that result (sluice_pfrul_v1[slot]).
 */
#define SLUICE_PF_RULES_MAX	64
#ifndef SLUICE_PF_LPM_MAX
#define SLUICE_PF_LPM_MAX	262144
#endif
#ifndef SLUICE_PF_HOST_MAX
#define SLUICE_PF_HOST_MAX	262144
#endif
#ifndef SLUICE_PF_PORT_MAX
#define SLUICE_PF_PORT_MAX	4096
#endif
#define SLUICE_PF_ENTRY_SLOTS	65536

struct sluice_pf_key4 {
	__u32 prefixlen;	/* LPM trie header (the hash's keys are /32: prefixlen 32) */
	__be32 addr;		/* source address */
};
_Static_assert(sizeof(struct sluice_pf_key4) == 8, "prefilter key layout");

struct sluice_pf_val4 {
	__u64 rules;		/* rule slots that deny this prefix; 0: an exception */
	__u32 entry;		/* counter slot in sluice_pfent_v1; 0: unattributed */
	__u32 pad;		/* must be 0 */
};
_Static_assert(sizeof(struct sluice_pf_val4) == 16, "prefilter value layout");

/* Key of sluice_pfp4_v1 (value: a __u64 rules mask). */
struct sluice_pf_port4 {
	__u8 proto;		/* IPPROTO_TCP, _UDP or _SCTP */
	__u8 pad;		/* must be 0 */
	__be16 port;		/* destination port */
};
_Static_assert(sizeof(struct sluice_pf_port4) == 4, "prefilter port key layout");

/* sluice_pfcfg_v1[0], written by the agent's prefilter compiler only. */
struct sluice_pf_cfg4 {
	__u64 all_ports;	/* rule slots without port scoping */
	__u64 active;		/* rule slots in use; 0: the datapath looks no further */
};
_Static_assert(sizeof(struct sluice_pf_cfg4) == 16, "prefilter config layout");

/* sluice_xdpst_v1[0], written by the loader only: when xdp_active is 0 the
 * uplink's tc ingress (from_netdev) runs the first stage itself, so
 * --xdp off and a best-effort fallback drop exactly what XDP would. */
struct sluice_xdp_state {
	__u32 xdp_active;	/* 1: the XDP program on the uplink runs the first stage */
	__u32 mode;		/* SLUICE_XDP_MODE_* actually in use, for status */
};
_Static_assert(sizeof(struct sluice_xdp_state) == 8, "xdp state layout");

/*
 * sluice_xdpft_v1: a per-CPU array of struct sluice_metric (packets, bytes)
 * indexed by SLUICE_XDP_FT number: why stage 2 of the uplink's XDP program
 * (north-south Services, bpf/lib/nodeport_xdp.h) left a packet addressed to
 * a NodePort, externalIP or LB IP (or a reply to such a flow) to the tc
 * path. Each such packet is counted once here and once as xdp-pass in
 * sluice_stats_v2. Kept out of SLUICE_REASONS, whose slots are nearly all
 * taken. Names are listed once, here, for the agent and sluicectl.
 */
#define SLUICE_XDP_FT(X)                                                                            \
	X(SLUICE_XDP_FT_OTHER,      0, "other",         "anything else stage 2 cannot finish")          \
	X(SLUICE_XDP_FT_OPTIONS,    1, "ip-options",    "IPv4 options")                                 \
	X(SLUICE_XDP_FT_FRAGMENT,   2, "fragment",      "an IPv4 fragment (its ports are tc's to recall)") \
	X(SLUICE_XDP_FT_TTL,        3, "ttl",           "TTL 1 or 0: the stack answers time exceeded")  \
	X(SLUICE_XDP_FT_ICMP,       4, "icmp",          "an ICMP error (about a Service flow or not)")  \
	X(SLUICE_XDP_FT_ETP_LOCAL,  5, "etp-local",     "externalTrafficPolicy Local frontend")         \
	X(SLUICE_XDP_FT_LOCAL,      6, "local-backend", "the backend is a pod on this node")            \
	X(SLUICE_XDP_FT_NO_BACKEND, 7, "no-backend",    "frontend without backend (tc refuses or drops)") \
	X(SLUICE_XDP_FT_ORIGIN,     8, "origin",        "source is no outside client (a node, a pod, a forgery): tc checks it") \
	X(SLUICE_XDP_FT_NO_ROUTE,   9, "no-route",      "no tunnel endpoint or route for the backend, or the route leaves another device") \
	X(SLUICE_XDP_FT_NO_NEIGH,  10, "no-neigh",      "the next hop's MAC is not resolved")           \
	X(SLUICE_XDP_FT_MTU,       11, "mtu",           "the frame would exceed the egress MTU")        \
	X(SLUICE_XDP_FT_TRACKED,   12, "tracked-other", "the tuple is tracked as another kind of flow") \
	X(SLUICE_XDP_FT_REPLY,     13, "reply",         "a reply to an SNATed flow that came plain with overlay routing (its replies come through the tunnel)") \
	X(SLUICE_XDP_FT_HEADROOM,  14, "headroom",      "the driver gave no room for the outer headers") \
	X(SLUICE_XDP_FT_CSUM_PARTIAL, 15, "csum-partial", "L4 checksum of the pseudo-header only (a local sender's offload, veth): the skb knows, XDP cannot")

enum sluice_xdp_ft {
#define SLUICE_X_FT_ENUM(name, num, short_name, desc) name = num,
	SLUICE_XDP_FT(SLUICE_X_FT_ENUM)
#undef SLUICE_X_FT_ENUM
	SLUICE_XDP_FT_MAX
};

#define SLUICE_XDP_FT_SLOTS 32
_Static_assert(SLUICE_XDP_FT_MAX <= SLUICE_XDP_FT_SLOTS, "too many XDP fall-through causes");

/* A fall-through cause's short name; NULL when the number names none. */
static inline const char *sluice_xdp_ft_name(__u32 cause)
{
	switch (cause) {
#define SLUICE_X_FT_NAME(name, num, short_name, desc) case num: return short_name;
	SLUICE_XDP_FT(SLUICE_X_FT_NAME)
#undef SLUICE_X_FT_NAME
	default: return (const char *)0;
	}
}

#define SLUICE_XDP_MODE_OFF	0	/* first stage at tc */
#define SLUICE_XDP_MODE_NATIVE	1	/* driver mode */
#define SLUICE_XDP_MODE_GENERIC	2	/* skb mode: only ever by explicit request, never a fallback */

/* Key of sluice_ep_v2: a local pod's IPv4 address (network byte order). */
struct sluice_endpoint_key {
	__be32 ip4;
};
_Static_assert(sizeof(struct sluice_endpoint_key) == 4, "endpoint key layout");

/*
 * Value of sluice_ep_v2. ifindex is the host-side veth ("lxc…") of the pod;
 * it also names the endpoint in policy keys. Delivering to the pod rewrites
 * the Ethernet header to lxc_mac -> pod_mac, as if the node had routed the
 * packet, then redirects to the veth's peer.
 */
struct sluice_endpoint {
	__u32 ifindex;
	__u32 flags;		/* SLUICE_EP_F_* */
	__u8 pod_mac[6];	/* MAC of the pod's interface (CNI_IFNAME) */
	__u8 lxc_mac[6];	/* MAC of the host-side veth */
	__u32 identity;		/* the pod's security identity */
};
_Static_assert(sizeof(struct sluice_endpoint) == 24, "endpoint value layout");

/* Endpoint flags: isolation per direction by enforcing policies (tier 0 of
 * the policy maps), and with Audit-mode policies added (tier 1), set only
 * when some Audit-mode policy selects the endpoint. */
#define SLUICE_EP_F_ISO_INGRESS		(1u << 0)
#define SLUICE_EP_F_ISO_EGRESS		(1u << 1)
#define SLUICE_EP_F_AUDIT_ISO_INGRESS	(1u << 2)
#define SLUICE_EP_F_AUDIT_ISO_EGRESS	(1u << 3)
/* The pod has a bandwidth limit in that direction: sluice_bw_v1 holds a
 * bucket under {ifindex, SLUICE_DIR_*}. Unlimited pods never look there. */
#define SLUICE_EP_F_BW_EGRESS		(1u << 4)
#define SLUICE_EP_F_BW_INGRESS		(1u << 5)

/*
 * Pod bandwidth limits (runtimeConfig.bandwidth, docs/CNI.md): one token
 * bucket per limited pod and direction, in sluice_bw_v1 (hash, keyed by the
 * host veth's ifindex and the direction seen from the pod). The rate refills
 * the bucket; a packet passes while the bucket holds tokens (> 0) and takes
 * its length from it, so a 64 KiB GSO packet never starves; otherwise it is
 * dropped (SLUICE_DROP_BANDWIDTH) and counted here. The agent writes the
 * whole value at ADD (rate, depth, a full bucket) and deletes it at DEL.
 */
#ifndef SLUICE_BW_MAX
#define SLUICE_BW_MAX (2 * SLUICE_ENDPOINTS_MAX)
#endif
struct sluice_bw_key {
	__u32 ifindex;		/* the pod's host veth */
	__u32 dir;		/* SLUICE_DIR_EGRESS (sent) or SLUICE_DIR_INGRESS (received) */
};
struct sluice_bw {
	struct bpf_spin_lock lock;
	__u32 pad;
	__u64 rate;		/* bytes per second */
	__u64 depth;		/* bucket size, bytes */
	__s64 tokens;		/* bytes; below 0 by at most one packet */
	__u64 last_ns;		/* bpf_ktime_get_ns() of the last refill */
	__u64 passed_packets, passed_bytes;
	__u64 dropped_packets, dropped_bytes;
};
_Static_assert(sizeof(struct sluice_bw) == 72, "bandwidth bucket layout");

/* Security identities. Label identities (a namespace plus a pod label set)
 * are in [SLUICE_ID_FIRST_LABEL, SLUICE_ID_FIRST_CIDR); CIDR identities
 * (ipBlock prefixes) in [SLUICE_ID_FIRST_CIDR, SLUICE_ID_END_CIDR). The
 * ranges never overlap: a full range fails its pod or policy closed. They
 * are this node's own numbers (they never travel in a packet). 0 in a
 * policy key is the wildcard "any peer". */
#define SLUICE_ID_ANY		0
#define SLUICE_ID_HOST		1	/* this node's own addresses */
#define SLUICE_ID_WORLD		2	/* any address sluice knows nothing about */
#define SLUICE_ID_UNKNOWN	3	/* a pod whose labels are not known yet: no
					 * policy peer matches it, and as a local
					 * endpoint it is isolated both ways */
#define SLUICE_ID_FIRST_LABEL	256
#define SLUICE_ID_FIRST_CIDR	0x01000000
#define SLUICE_ID_END_CIDR	0x02000000

/* sluice_ipc_v2: longest-prefix match from an address to its identities and,
 * for pods on other nodes, the node that has them. Pods and node addresses
 * are /32 entries; remote nodes' pod CIDRs and ipBlock prefixes are shorter. */
struct sluice_ipcache_key {
	__u32 prefixlen;	/* LPM trie header: bits of ip that count */
	__be32 ip;
};
_Static_assert(sizeof(struct sluice_ipcache_key) == 8, "ipcache key layout");

struct sluice_ipcache_value {
	__u32 identity;		/* label identity, SLUICE_ID_HOST or SLUICE_ID_WORLD */
	__u32 cidr_identity;	/* identity of the most specific ipBlock prefix holding the
				 * address, or SLUICE_ID_WORLD when none does */
	__be32 tunnel_endpoint;	/* the remote node that has the address (its pods, its pod
				 * CIDR, its own address), else 0 */
	__u32 flags;		/* SLUICE_IPC_F_*; was must-be-0 padding, so an older
				 * agent's entries read as "no flags" */
};
_Static_assert(sizeof(struct sluice_ipcache_value) == 16, "ipcache value layout");

/* The address is another node's own (its InternalIP): overlay packets are
 * believed only from such addresses, and pods may not reach their tunnel
 * port. Policy still sees the address as SLUICE_ID_WORLD (or its ipBlock). */
#define SLUICE_IPC_F_NODE	(1u << 0)

/* How pod traffic reaches other nodes (the agent's --routing). */
enum sluice_routing {
	SLUICE_ROUTING_NATIVE = 0,	/* the node's routes (to remote pod CIDRs via their nodes) */
	SLUICE_ROUTING_OVERLAY = 1,	/* VXLAN: built and taken off by BPF at the uplink,
					 * or through one collect_md device */
};
#define SLUICE_VXLAN_PORT 8472
#define SLUICE_OVERLAY_OVERHEAD 50	/* outer IPv4 + UDP + VXLAN + inner Ethernet */

/*
 * sluice_pol_v1 (allow) and sluice_deny_v1 (sluice Deny rules): LPM tries
 * over (endpoint, peer identity, direction+tier, protocol, port). The fields
 * that must always match come first; protocol and port come last so a
 * shorter prefix wildcards them:
 *   prefixlen 72       any protocol, any port
 *   prefixlen 80       this protocol, any port
 *   prefixlen 80 + k   this protocol, ports sharing the top k bits
 * A port range is stored as the few prefix-aligned blocks that cover it.
 * For ICMP the "port" is type << 8 | code (prefix 88: any code).
 * The peer identity is looked up three times: the peer's label identity,
 * its CIDR identity and SLUICE_ID_ANY.
 */
struct sluice_policy_key {
	__u32 prefixlen;
	__u32 ep;		/* endpoint's host ifindex */
	__u32 identity;		/* peer identity, or SLUICE_ID_ANY */
	__u8 dir;		/* SLUICE_DIR_* | tier << 1 */
	__u8 proto;		/* IPPROTO_* */
	__be16 port;
};
_Static_assert(sizeof(struct sluice_policy_key) == 16, "policy key layout");
#define SLUICE_POLICY_FIXED_BITS 72	/* ep + identity + dir */
#define SLUICE_POLICY_KEY_BITS 96
#define SLUICE_POLICY_TIER_AUDIT 1	/* entries of enforcing and Audit policies together */

struct sluice_policy_value {
	__u32 rule;		/* the compiler's rule reference, for debugging */
};
_Static_assert(sizeof(struct sluice_policy_value) == 4, "policy value layout");

/* sluice_ct4_v1: connection tracking, one entry per flow in the direction
 * of its first packet. ICMP echo uses the identifier as sport (request) or
 * dport (reply) so that a reply's reversed tuple finds its request. */
struct sluice_ct_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
};
_Static_assert(sizeof(struct sluice_ct_key) == 16, "ct key layout");

#define SLUICE_CT_F_REPLY_SEEN	(1u << 0)
#define SLUICE_CT_F_CLOSING	(1u << 1)	/* FIN or RST seen */
/* The host stack forwarded a packet of this flow: it went through the
 * node's netfilter (kube-proxy's DNAT to a Service backend, the node's
 * conntrack), so every later packet of the flow, both ways, is left to the
 * stack too, never short-circuited: replies get un-NATed and the node's
 * conntrack sees the whole connection. Set where such packets leave the
 * stack: to_pod, to_overlay, to_netdev. */
#define SLUICE_CT_F_VIA_STACK	(1u << 2)
/* The flow's destination was a pod on this node whose ingress policy
 * allowed it. An entry without it was made while the address was no pod
 * here (a flow to a free address): when a pod takes the address, the
 * entry's next packet meets that pod's ingress policy before it passes. */
#define SLUICE_CT_F_DST_POLICED	(1u << 3)
/* A Service flow as its client sent it (client -> frontend): pad is the
 * backend id it was given, so later packets go to the same backend. */
#define SLUICE_CT_F_LB_FRONTEND	(1u << 4)
/* A Service flow as translated (client -> backend): pad is the Service's
 * rev-NAT index, which gives replies the frontend back as their source. */
#define SLUICE_CT_F_LB_BACKEND	(1u << 5)
/* On a SLUICE_CT_F_LB_FRONTEND entry: the backend was chosen by the
 * uplink's XDP program for a packet it then left to tc (bpf/lib/
 * nodeport_xdp.h); the tc path takes it as its own new choice for that
 * packet and clears the flag, so a flow's backend is chosen once. */
#define SLUICE_CT_F_LB_PENDING	(1u << 6)

struct sluice_ct_value {
	__u64 last_seen;	/* bpf_ktime_get_ns() */
	__u32 flags;		/* SLUICE_CT_F_* */
	__u32 pad;		/* LB_FRONTEND: backend id; LB_BACKEND: rev-NAT
				 * index; else 0 (was must-be-0 padding: an
				 * older agent's entries read as no Service) */
#ifdef SLUICE_UPGRADE_TEST_LAYOUT
	__u64 created;		/* test-only: when the entry was made (migrated
				 * entries: their last_seen) */
#endif
};
#ifdef SLUICE_UPGRADE_TEST_LAYOUT
_Static_assert(sizeof(struct sluice_ct_value) == 24, "ct value layout (upgrade test variant)");
#else
_Static_assert(sizeof(struct sluice_ct_value) == 16, "ct value layout");
#endif

/*
 * sluice_frag4_v1: IPv4 datagrams on their way in fragments. A later
 * fragment (offset > 0) carries no L4 header, so the first fragment's ports
 * are kept here, under the fields that tell one datagram from another
 * (RFC 791: source, destination, protocol, identification), and a later
 * fragment takes them: it is then matched in connection tracking as its
 * first fragment was, and gets the same verdict and translation. LRU; an
 * entry is good for SLUICE_FRAG_TIMEOUT seconds after its first fragment.
 */
struct sluice_frag_key {
	__be32 saddr;
	__be32 daddr;
	__be16 id;
	__u8 proto;
	__u8 pad;		/* explicit padding, must be 0 */
};
_Static_assert(sizeof(struct sluice_frag_key) == 12, "frag key layout");

struct sluice_frag_value {
	__u64 first_seen;	/* bpf_ktime_get_ns() of the first fragment */
	__be16 sport;		/* the first fragment's ports (ICMP echo: the id, as in */
	__be16 dport;		/* struct sluice_ct_key) */
	__u32 pad;
};
_Static_assert(sizeof(struct sluice_frag_value) == 16, "frag value layout");

/*
 * Masquerade (pods to outside the cluster, SNAT to the node's address on
 * its uplink). sluice_snat4_v1 maps a pod's flow (its tuple as sent, a
 * sluice_ct_key) to the source port it got; sluice_rnat4_v1 maps the
 * replies' tuple (remote -> node address, node port) back to the pod.
 * ICMP echo ids take the place of ports. Both are LRU maps. A pair lives
 * only as long as the pod's flow in sluice_ct4_v1 (its key is the snat
 * key): a reply or ICMP error whose flow is no longer tracked is not
 * translated, and the pair is removed. A pod's entries are found by its
 * address: the snat key's saddr, the rnat value's addr.
 *
 * Node ports come from the agent's --masquerade-ports range (the default
 * below, above Linux's default ip_local_port_range 32768-60999), which the
 * agent also puts in the node's net.ipv4.ip_local_reserved_ports: the
 * kernel never picks one of them for a node socket, so a reply for a pod's
 * flow and one for a node process's never share a tuple (ports a node
 * socket bound explicitly are skipped when a flow draws its port).
 */
#ifndef SLUICE_NAT_MAX
#define SLUICE_NAT_MAX 131072
#endif
#define SLUICE_NAT_PORTS_DEFAULT_MIN 61000
#define SLUICE_NAT_PORTS_DEFAULT_MAX 65535

struct sluice_nat_value {
	__be32 addr;		/* snat: the node address; rnat: the pod's address */
	__be16 port;		/* snat: the node port; rnat: the pod's port (or echo id) */
	__u16 pad;
};
_Static_assert(sizeof(struct sluice_nat_value) == 8, "nat value layout");

/* sluice_nomasq_v1: destinations that are never masqueraded (pod CIDRs of
 * every node, node addresses, --non-masquerade-cidr). LPM trie. */
struct sluice_nomasq_key {
	__u32 prefixlen;
	__be32 ip;
};
_Static_assert(sizeof(struct sluice_nomasq_key) == 8, "nomasq key layout");

/*
 * Services (docs/SERVICES.md). sluice_svc4_v1 (hash): per frontend (an
 * address, port and protocol), slot 0 holds the Service (how many backends
 * new flows choose from, its rev-NAT index) and slots 1..count the backend
 * ids. sluice_be4_v1 (hash): backend id -> address and port.
 * sluice_lbrn4_v1 (hash): rev-NAT index -> the frontend, which replies get
 * as their source. The agent writes backends and slots before slot 0, and
 * deletes old slots only after it, so a lookup sees the old Service or
 * the new one, never a mix. All addresses and ports in network order.
 */
struct sluice_lb4_key {
	__be32 addr;		/* frontend: clusterIP, externalIP, LB ingress IP, node address (NodePort, hostPort), hostIP */
	__be16 port;
	__u8 proto;
	__u8 scope;		/* SLUICE_LB_SCOPE_* */
	__u16 slot;		/* 0: the Service; 1..count: its backends */
	__u16 pad;		/* must be 0 */
};
_Static_assert(sizeof(struct sluice_lb4_key) == 12, "lb key layout");
/* INT: looked up for pod and node clients (from_pod); EXT: for clients
 * outside the cluster, on the uplink (from_netdev). The two entries of a
 * frontend differ only by traffic policy. */
#define SLUICE_LB_SCOPE_INT 0
#define SLUICE_LB_SCOPE_EXT 1

struct sluice_lb4_value {
	__u32 backend_id;	/* slot >= 1 */
	__u16 count;		/* slot 0: backends for new flows (0: none) */
	__u16 rev_nat;		/* slot 0: the frontend's rev-NAT index (>= 1) */
	__u32 affinity_timeout;	/* slot 0: ClientIP affinity in seconds, 0: None */
	__u16 flags;		/* slot 0: SLUICE_LB_F_* */
	__u16 pad;
};
_Static_assert(sizeof(struct sluice_lb4_value) == 16, "lb value layout");
_Static_assert(__builtin_offsetof(struct sluice_lb4_value, affinity_timeout) == 8, "lb value layout");
_Static_assert(__builtin_offsetof(struct sluice_lb4_value, flags) == 12, "lb value layout");
/* Slot 0: new flows take the backend of the Service's Maglev table in
 * sluice_mgl4_v1 (only set while the table exists, i.e. >= 2 backends). */
#define SLUICE_LB_F_MAGLEV (1u << 4)
/* The frontend is a node address and a nodePort. */
#define SLUICE_LB_F_NODEPORT	(1u << 0)
/* externalTrafficPolicy Local (EXT entries): local backends only, and the
 * client's address is kept (no SNAT). */
#define SLUICE_LB_F_EXT_LOCAL	(1u << 1)
/* internalTrafficPolicy Local (INT entries): local backends only. */
#define SLUICE_LB_F_INT_LOCAL	(1u << 2)

struct sluice_lb4_backend {
	__be32 addr;
	__be16 port;
	__u8 proto;
	__u8 flags;		/* SLUICE_LB_BE_F_* */
};
_Static_assert(sizeof(struct sluice_lb4_backend) == 8, "lb backend layout");
/* A pod on this node (its endpoint's nodeName, or this node's pod CIDR). */
#define SLUICE_LB_BE_F_LOCAL	(1u << 0)

/* The endpoint is terminating: it stays while it exists so that flows
 * already on it keep working; new flows get it only when no backend of the
 * Service is ready (it is then in the slots). Not part of the backend's
 * identity: the id, which tracking entries name, survives the change. */
#define SLUICE_LB_BE_F_TERMINATING (1u << 1)

/* Slot 0 flag: the frontend is a pod's hostPort (node address, hostPort)
 * with the pod's (address, containerPort) as its one backend. */
#define SLUICE_LB_F_HOSTPORT (1u << 3)

/* Hairpin: a pod whose Service flow is translated to itself gets this
 * link-local address (host order) as the flow's source, so its answers
 * leave the pod and can be given the frontend back. Never on any wire. */
#define SLUICE_LB_HAIRPIN_ADDR 0xa9fe2a01u /* 169.254.42.1 */

struct sluice_lb4_revnat {
	__be32 addr;		/* the frontend */
	__be16 port;
	__u16 pad;
};
_Static_assert(sizeof(struct sluice_lb4_revnat) == 8, "lb rev-NAT layout");

/*
 * sluice_lbsk4_v1: a node socket (by its cookie) whose connect() or
 * sendmsg() to a frontend was given backend (addr, port): the frontend it
 * asked for, so recvmsg() and getpeername() show that frontend instead.
 */
struct sluice_lbsk4_key {
	__u64 cookie;		/* bpf_get_socket_cookie() */
	__be32 addr;		/* the backend */
	__be16 port;
	__u16 pad;		/* must be 0 */
};
_Static_assert(sizeof(struct sluice_lbsk4_key) == 16, "lbsk key layout");

struct sluice_lbsk4_value {
	__be32 addr;		/* the frontend as the application gave it */
	__be16 port;
	__u16 rev_nat;		/* its Service's index: gone -> not restored */
};
_Static_assert(sizeof(struct sluice_lbsk4_value) == 8, "lbsk value layout");

/*
 * sluice_mgl4_v1 (hash of maps): rev-NAT index (__u32) -> the frontend's
 * Maglev table, an array of cfg_maglev_m backend ids (__u32). A flow takes
 * entry sluice_lb_flow_hash4(tuple) % M. Replaced whole (a new inner map,
 * filled first, then one update of the outer map).
 *
 * sluice_aff4_v1 (LRU hash): sessionAffinity ClientIP. (client address,
 * the frontend's rev-NAT index) -> the backend its last new flow got and
 * when; a new flow within slot 0's affinity_timeout seconds of it takes
 * the same backend while that backend still exists.
 */
#define SLUICE_MAGLEV_NONE 0xffffffffu	/* table entry: no backend */

struct sluice_lb4_aff_key {
	__be32 client;
	__u32 rev_nat;
};
_Static_assert(sizeof(struct sluice_lb4_aff_key) == 8, "lb affinity key layout");

struct sluice_lb4_aff_value {
	__u64 last_used;	/* bpf_ktime_get_ns() of the client's last new flow */
	__u32 backend_id;
	__u32 pad;		/* must be 0 */
};
_Static_assert(sizeof(struct sluice_lb4_aff_value) == 16, "lb affinity value layout");
_Static_assert(__builtin_offsetof(struct sluice_lb4_aff_value, backend_id) == 8, "lb affinity value layout");

/*
 * skb->mark bit from_pod sets on a packet it routes straight to the uplink
 * (native routing) and to_netdev clears: it tells from_pod's own packets
 * from those the host stack forwarded, which to_netdev must track as
 * SLUICE_CT_F_VIA_STACK. Clear of kube-proxy's bits (0x4000 masquerade,
 * 0x8000 drop) and Calico's default mask (0xffff0000); a host rule that
 * set this bit on forwarded pod traffic would defeat the tracking. It never
 * leaves the node: crossing into another namespace clears marks.
 */
#define SLUICE_MARK_FAST	0x00001000u

/* Idle timeouts (seconds). */
#define SLUICE_CT_TCP_TIMEOUT		21600	/* 6 h: an idle masqueraded connection keeps its port as long (TCP keepalive is 2 h) */
#define SLUICE_CT_CLOSING_TIMEOUT	10
#define SLUICE_CT_UDP_TIMEOUT		60
#define SLUICE_CT_ICMP_TIMEOUT		30
/* A datagram's fragments leave their sender back to back; a later fragment
 * more than this after its first is dropped (and the entry is free for the
 * next datagram with the same IP ID). */
#define SLUICE_FRAG_TIMEOUT		5

/* Directions, seen from the pod. */
enum sluice_dir {
	SLUICE_DIR_EGRESS = 0,	/* leaving the pod: from_pod program */
	SLUICE_DIR_INGRESS = 1,	/* entering the pod: to_pod program */
	SLUICE_DIR_MAX,
};

/*
 * Every verdict the datapath records, forwarded or dropped, listed once.
 * X(enum name, number, is a drop, short name, description). Numbers are
 * stable: they index the metrics map. Drops are reported by the BPF code as
 * the negative of SLUICE_DROP_BASE + number, which can never collide with a
 * TC_ACT_* or XDP_* return value.
 */
#define SLUICE_REASONS(X)                                                                           \
	X(SLUICE_FWD_LOCAL,        0, 0, "forward-local",    "redirected to a pod on this node")        \
	X(SLUICE_PASS,             1, 0, "pass",             "handed on to the kernel's own path")      \
	X(SLUICE_DROP_TRUNCATED,   2, 1, "drop-truncated",   "packet shorter than its headers")         \
	X(SLUICE_DROP_BAD_IPHDR,   3, 1, "drop-bad-iphdr",   "invalid IPv4 header length")              \
	X(SLUICE_DROP_UNKNOWN_L3,  4, 1, "drop-unknown-l3",  "neither IPv4 nor ARP (IPv4-only)")        \
	X(SLUICE_DROP_SPOOFED,     5, 1, "drop-spoofed-src", "source IP is not the pod's own")          \
	X(SLUICE_DROP_REDIRECT,    6, 1, "drop-redirect",    "rewrite for local delivery failed")       \
	X(SLUICE_DROP_POLICY,      7, 1, "drop-policy",      "new flow no policy rule allows")          \
	X(SLUICE_DROP_POLICY_DENY, 8, 1, "drop-policy-deny", "new flow a sluice Deny rule matches")     \
	X(SLUICE_AUDIT_WOULD_DROP, 9, 0, "audit-would-drop", "allowed, but an Audit policy would drop") \
	X(SLUICE_CT_NEW,          10, 0, "ct-new",           "new flow allowed and tracked")            \
	X(SLUICE_CT_RELATED,      11, 0, "ct-related",       "ICMP error for a tracked flow")          \
	X(SLUICE_FWD_OVERLAY,     12, 0, "forward-overlay",  "encapsulated to the pod's node")         \
	X(SLUICE_FWD_REMOTE,      13, 0, "forward-remote",   "from another node, delivered to a pod")  \
	X(SLUICE_DROP_TUNNEL,     14, 1, "drop-tunnel",      "could not set the tunnel key")          \
	X(SLUICE_NAT_MASQ,        15, 0, "masquerade",       "source rewritten to the node address")  \
	X(SLUICE_NAT_REVERSE,     16, 0, "masquerade-reply", "reply rewritten back to the pod")       \
	X(SLUICE_DROP_NAT_PORTS,  17, 1, "drop-nat-ports",   "no free port to masquerade with")      \
	X(SLUICE_FWD_NATIVE,      18, 0, "forward-native",   "routed straight to the pod's node")  \
	X(SLUICE_TO_STACK_FLOW,   19, 0, "to-stack-flow",    "flow the host stack forwards (NAT): left to it") \
	X(SLUICE_FWD_OVERLAY_HOST, 20, 0, "overlay-from-host", "host-routed packet tunnelled to the pod's node") \
	X(SLUICE_OVERLAY_ENCAP,   21, 0, "overlay-encap",    "VXLAN built by BPF, sent out of the uplink") \
	X(SLUICE_OVERLAY_DECAP,   22, 0, "overlay-decap",    "VXLAN taken off by BPF at the uplink") \
	X(SLUICE_DROP_TUNNEL_SOURCE, 23, 1, "drop-tunnel-source", "overlay packet that is not from a node") \
	X(SLUICE_DROP_TUNNEL_SPOOF, 24, 1, "drop-tunnel-spoof", "tunnelled source not of the sending node") \
	X(SLUICE_DROP_UPLINK_SPOOF, 25, 1, "drop-uplink-spoof", "plain packet on the uplink with a pod's or this node's source") \
	X(SLUICE_DROP_TUNNEL_PORT, 26, 1, "drop-tunnel-port", "pod's UDP to the tunnel port of a non-pod") \
	X(SLUICE_NAT_STALE,       27, 0, "masquerade-stale", "to a NAT port whose pod flow is no longer tracked: left to the node") \
	X(SLUICE_NAT_ICMP_ERROR,  28, 0, "masquerade-icmp-error", "ICMP error about a masqueraded flow rewritten for the pod") \
	X(SLUICE_DROP_FRAG_ORPHAN, 29, 1, "drop-frag-orphan", "later IP fragment whose first was not seen or not allowed") \
	X(SLUICE_DROP_ICMP_FORGED, 30, 1, "drop-icmp-forged", "ICMP error about a tracked flow from neither its peer nor a router") \
	X(SLUICE_LB_TRANSLATED,   31, 0, "lb-translated",    "Service frontend rewritten to a backend") \
	X(SLUICE_LB_REVERSE,      32, 0, "lb-reverse",       "reply from a Service backend given the frontend as source") \
	X(SLUICE_LB_NO_BACKEND,   33, 0, "lb-no-backend",    "new flow to a Service frontend with no backend") \
	X(SLUICE_LB_REJECT_TCP,   34, 0, "lb-reject-tcp",    "TCP SYN to a Service without backend answered with a RST") \
	X(SLUICE_LB_REJECT_UDP,   35, 0, "lb-reject-udp",    "UDP to a Service without backend answered with ICMP port unreachable") \
	X(SLUICE_LB_AFFINITY_HIT, 36, 0, "lb-affinity-hit",  "new flow given its client's ClientIP-affinity backend") \
	X(SLUICE_DROP_LB_NO_BACKEND, 37, 1, "drop-lb-no-backend", "to a Service without backend, not answerable (TCP without SYN, failed reject)") \
	X(SLUICE_LB_EXT_TRANSLATED, 38, 0, "lb-ext-translated", "from outside the cluster to a NodePort, externalIP or LB IP: rewritten to a backend") \
	X(SLUICE_LB_SNAT,         39, 0, "lb-snat",          "external Service flow to another node's backend given the node's address (eTP Cluster)") \
	X(SLUICE_LB_SNAT_REVERSE, 40, 0, "lb-snat-reverse",  "reply to an SNATed external Service flow given the client back") \
	X(SLUICE_LB_EXT_REVERSE,  41, 0, "lb-ext-reverse",   "reply to an external client given the frontend, routed out of the uplink") \
	X(SLUICE_LB_SOCK_TRANSLATED, 42, 0, "lb-sock-translated", "node socket's connect or sendmsg to a Service frontend given a backend") \
	X(SLUICE_LB_SOCK_NO_BACKEND, 43, 0, "lb-sock-no-backend", "node socket's connect or sendmsg to a frontend without backend refused") \
	X(SLUICE_LB_HAIRPIN,      44, 0, "lb-hairpin",       "a pod's flow to itself through a Service: source made the hairpin address") \
	X(SLUICE_LB_HOSTPORT,     45, 0, "lb-hostport",      "node address and hostPort rewritten to the pod's containerPort") \
	X(SLUICE_LB_ICMP_ERROR,   46, 0, "lb-icmp-error",    "ICMP error about a Service flow: quoted backend rewritten to the frontend") \
	X(SLUICE_LB_TERMINATING,  47, 0, "lb-terminating",   "new Service flow sent to a terminating backend (none is ready)") \
	X(SLUICE_DROP_LB_EXT_NO_LOCAL, 48, 1, "drop-lb-ext-no-local", "from outside to an externalTrafficPolicy Local frontend without backend on this node (endpoints elsewhere)") \
	X(SLUICE_LB_EXT_REJECT,   49, 0, "lb-ext-reject",    "from outside to a frontend without any endpoint: refused back out of the uplink") \
	X(SLUICE_LB_EXT_ICMP_ERROR, 50, 0, "lb-ext-icmp-error", "ICMP error about an outside client's Service flow: outer and quoted headers rewritten for the client or the backend") \
	X(SLUICE_DROP_PREFILTER,  51, 1, "drop-prefilter",   "source in a SluicePrefilter deny list") \
	X(SLUICE_XDP_PASS,        52, 0, "xdp-pass",         "checked at XDP on the uplink, left to the tc path") \
	X(SLUICE_XDP_TX,          53, 0, "xdp-tx",           "sent back out of the uplink at XDP") \
	X(SLUICE_XDP_REDIRECT,    54, 0, "xdp-redirect",     "redirected to another device at XDP") \
	X(SLUICE_DROP_XDP_SPOOF,  55, 1, "drop-xdp-spoof",   "from outside to a local pod with a source in this node's pod CIDR (XDP)") \
	X(SLUICE_DROP_XDP_TUNNEL, 56, 1, "drop-xdp-tunnel-source", "VXLAN to the tunnel port from an address that is not a node (XDP)") \
	X(SLUICE_DROP_XDP_MALFORMED, 57, 1, "drop-xdp-malformed", "truncated frame or malformed IPv4 header (XDP)") \
	X(SLUICE_DROP_BANDWIDTH,  58, 1, "drop-bandwidth",   "over the pod's bandwidth limit (rate plus burst)")

enum sluice_reason {
#define SLUICE_X_ENUM(name, num, drop, short_name, desc) name = num,
	SLUICE_REASONS(SLUICE_X_ENUM)
#undef SLUICE_X_ENUM
	SLUICE_REASON_MAX
};

#define SLUICE_DROP_BASE 130

/* Room for reasons to come without a new map layout. */
#define SLUICE_REASON_SLOTS 64
_Static_assert(SLUICE_REASON_MAX <= SLUICE_REASON_SLOTS, "too many reasons");

/* Index of a (reason, direction) counter in sluice_stats_v2. */
#define SLUICE_METRIC_INDEX(reason, dir) ((reason) * SLUICE_DIR_MAX + (dir))
#define SLUICE_METRICS_MAX (SLUICE_REASON_SLOTS * SLUICE_DIR_MAX)

/* Value of sluice_stats_v2 (a per-CPU array; user space sums the CPUs). */
struct sluice_metric {
	__u64 packets;
	__u64 bytes;
};
_Static_assert(sizeof(struct sluice_metric) == 16, "metric value layout");

/*
 * Flows (docs/OBSERVABILITY.md). The datapath keeps one entry per flow in
 * sluice_flow4_v1 (LRU hash, SLUICE_FLOW_MAX entries), keyed by the flow's
 * tuple in the direction of its first packet as the pod-side programs see
 * it: a struct sluice_ct_key, for a Service flow the translated tuple
 * (client -> backend; the frontend is in the value). Dropped flows get an
 * entry too (that is what rate-limits their records). Every packet updates
 * the entry's counters only; a record (struct sluice_flow4_record) goes to
 * user space through the ring buffer sluice_flowrb_v1 when:
 *   START   the entry is made (the flow's first packet, allowed or not);
 *   DROP    a packet of the flow is dropped, at most one record per flow
 *           per SLUICE_FLOW_DROP_INTERVAL_NS: the drops not reported in
 *           between are counted in the next record's drops_suppressed and
 *           in sluice_flowst_v1[SLUICE_FLOW_ST_RATE_LIMITED];
 *   END     a RST, or a FIN each way, is seen (the agent makes END records
 *           for entries idle longer than its --flow-idle-timeout itself,
 *           when it removes them);
 *   UPDATE  a packet arrives more than SLUICE_FLOW_REPORT_INTERVAL_NS after
 *           the entry's last record (long flows).
 * A record the ring buffer has no room for is counted in
 * sluice_flowst_v1[SLUICE_FLOW_ST_RB_FULL], never silently lost.
 * The agent's --flows off makes the programs skip all of it
 * (cfg_flows = 0).
 *
 * Direction: [0] is the flow's original direction (its first packet,
 * key.saddr -> key.daddr), [1] the replies.
 */
#ifndef SLUICE_FLOW_MAX
#define SLUICE_FLOW_MAX 65536
#endif
/* Bytes of the ring buffer (a power of two, a multiple of the page size). */
#ifndef SLUICE_FLOW_RB_BYTES
#define SLUICE_FLOW_RB_BYTES (8u << 20)
#endif
#define SLUICE_FLOW_DROP_INTERVAL_NS   1000000000ull	/* 1 s */
#define SLUICE_FLOW_REPORT_INTERVAL_NS 10000000000ull	/* 10 s */

enum sluice_flow_event {
	SLUICE_FLOW_EV_START = 1,
	SLUICE_FLOW_EV_DROP = 2,
	SLUICE_FLOW_EV_END = 3,
	SLUICE_FLOW_EV_UPDATE = 4,
};

enum sluice_flow_verdict {
	SLUICE_FLOW_FORWARDED = 1,
	SLUICE_FLOW_DROPPED = 2,
	SLUICE_FLOW_AUDIT = 3,		/* allowed; an Audit policy would drop it */
	SLUICE_FLOW_TRANSLATED = 4,	/* a Service frontend rewritten to a backend */
};

/* policy_rule values that are not a compiler rule reference. */
#define SLUICE_FLOW_RULE_NONE     0u	/* no policy involved (not isolated) */
#define SLUICE_FLOW_RULE_DEFAULT  0xffffffffu	/* isolated, no rule allows: denied by default */

/* sluice_flow4_value.flags */
#define SLUICE_FLOW_F_FIN0    (1u << 0)	/* FIN seen in direction 0 */
#define SLUICE_FLOW_F_FIN1    (1u << 1)	/* FIN seen in direction 1 */
#define SLUICE_FLOW_F_RST     (1u << 2)
#define SLUICE_FLOW_F_ENDED   (1u << 3)	/* END record sent */
#define SLUICE_FLOW_F_TS0     (1u << 4)	/* ts_val[0]/ts_time[0] hold a sample in flight */
#define SLUICE_FLOW_F_TS1     (1u << 5)

struct sluice_flow4_value {
	__u64 first_seen;		/* bpf_ktime_get_ns() */
	__u64 last_seen;
	__u64 last_report;		/* time of the last record */
	__u64 packets[2];
	__u64 bytes[2];
	__u32 src_identity;		/* of key.saddr and key.daddr, as policy saw them */
	__u32 dst_identity;
	__u32 policy_rule;		/* sluice_policy_value.rule that decided, or SLUICE_FLOW_RULE_* */
	__u32 ifindex;			/* the pod's host-side interface (or the uplink) */
	__be32 svc_addr;		/* Service frontend (0: none) */
	__be16 svc_port;
	__u8 tcp_flags[2];		/* every TCP flag seen, each direction */
	__u16 reason;			/* enum sluice_reason of the last verdict */
	__u8 verdict;			/* enum sluice_flow_verdict of the last verdict */
	__u8 dir;			/* SLUICE_DIR_* of the first packet at its pod */
	__u32 flags;			/* SLUICE_FLOW_F_* */
	__u32 drops;			/* packets dropped, all told */
	__u32 drops_suppressed;		/* dropped since the last record, not reported */
	/* Passive TCP round trip (timestamp options, as pping/ePPing): one
	 * sample in flight per direction: the TSval sent in direction d at
	 * ts_time[d]; the first packet of the other direction echoing it
	 * (TSecr == ts_val[d]) ends the sample. */
	__u32 ts_val[2];
	__u64 ts_time[2];
	__u32 seq_next[2];		/* highest sequence number + length seen (retransmissions) */
	__u32 retrans[2];		/* segments sent again, each direction */
	/* A sample ended in direction d measures half the path as this node
	 * sees it: from here to the receiver of direction d's segment and
	 * back. The round trip is the two halves together: each sample is
	 * added to the other direction's latest (alone until there is one). */
	__u32 rtt_min_us;		/* smallest round trip, 0: none yet */
	__u32 rtt_srtt_us;		/* smoothed round trip (7/8 old + 1/8 new), 0: none yet */
	__u32 rtt_samples;
	__u32 rtt_half_us[2];		/* the latest sample of each direction's half, 0: none */
	__u32 pad;			/* explicit padding, must be 0 */
};
_Static_assert(sizeof(struct sluice_flow4_value) == 160, "flow value layout");

struct sluice_flow4_record {
	__u64 time;			/* bpf_ktime_get_ns() (CLOCK_MONOTONIC) */
	struct sluice_ct_key key;	/* the flow, direction 0 */
	__u8 event;			/* enum sluice_flow_event */
	__u8 verdict;			/* enum sluice_flow_verdict */
	__u16 reason;			/* enum sluice_reason */
	__u32 ifindex;
	__u32 src_identity;
	__u32 dst_identity;
	__u32 policy_rule;
	__be32 svc_addr;
	__be16 svc_port;
	__u8 tcp_flags[2];
	__u8 dir;			/* SLUICE_DIR_* of the first packet at its pod */
	__u8 pkt_dir;			/* 0/1: the direction of the packet that made the record */
	__u16 pad;			/* explicit padding, must be 0 */
	__u32 drops_suppressed;		/* drops since the previous record, not reported */
	__u32 drops;			/* the flow's dropped packets, all told */
	__u64 first_seen;
	__u64 packets[2];
	__u64 bytes[2];
	__u32 retrans[2];
	__u32 rtt_min_us;
	__u32 rtt_srtt_us;
};
_Static_assert(sizeof(struct sluice_flow4_record) == 120, "flow record layout");

/* sluice_flowst_v1: a per-CPU array of __u64, the datapath's flow export
 * losses by stage. */
enum sluice_flow_stat {
	SLUICE_FLOW_ST_RB_FULL = 0,	/* a record the ring buffer had no room for */
	SLUICE_FLOW_ST_RATE_LIMITED = 1,	/* a drop record held back by the per-flow limit */
	SLUICE_FLOW_ST_MAP_FULL = 2,	/* a flow entry that could not be made */
	SLUICE_FLOW_ST_MAX = 8,
};

/* A reason's short name ("drop-policy") and description; NULL when the
 * number names no reason (user space: metrics, flows, sluicectl). */
static inline const char *sluice_reason_name(__u32 reason)
{
	switch (reason) {
#define SLUICE_X_NAME(name, num, drop, short_name, desc) case num: return short_name;
	SLUICE_REASONS(SLUICE_X_NAME)
#undef SLUICE_X_NAME
	default: return (const char *)0;
	}
}

static inline const char *sluice_reason_desc(__u32 reason)
{
	switch (reason) {
#define SLUICE_X_DESC(name, num, drop, short_name, desc) case num: return desc;
	SLUICE_REASONS(SLUICE_X_DESC)
#undef SLUICE_X_DESC
	default: return (const char *)0;
	}
}

static inline int sluice_reason_is_drop(__u32 reason)
{
	switch (reason) {
#define SLUICE_X_DROP(name, num, drop, short_name, desc) case num: return drop;
	SLUICE_REASONS(SLUICE_X_DROP)
#undef SLUICE_X_DROP
	default: return 0;
	}
}

#endif /* SLUICE_DATAPATH_H */
