/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rtnetlink helpers for the agent (libmnl).
 *
 * A handle is bound to one network namespace: the netlink socket lives in the
 * netns it was created in, so every request made through a handle acts there.
 * A handle is not thread-safe; use one per thread (or lock around it).
 *
 * Every function returns 0 (1/0 for the _has queries) or a negative errno,
 * usually the one the kernel put in its NLMSG_ERROR ack. Failures are logged
 * with pr_debug only (including the kernel's extended-ack text when present);
 * callers print the user-facing message.
 */
#ifndef SLUICE_AGENT_NETLINK_H
#define SLUICE_AGENT_NETLINK_H

#include <stdint.h>
#include <netinet/in.h>

struct nl_handle;                      /* opaque */

/* netns_fd < 0: the caller's current netns. Otherwise open the socket inside
 * that netns (setns to it on the calling thread, socket, setns back; the
 * original netns is restored on every path). netns_fd is not kept: the handle
 * holds its own duplicate. */
int  nl_open(struct nl_handle **out, int netns_fd);
void nl_close(struct nl_handle *h);    /* NULL is a no-op */

struct nl_link {
	int ifindex;
	unsigned char mac[6];         /* zero if the link has no 6-byte address */
	unsigned int mtu;
	int up;                       /* IFF_UP set */
	char name[16];
	char alias[256];              /* IFLA_IFALIAS, "" if none */
};

/* Create a veth pair: host side `host_ifname` in h's netns, peer named
 * `peer_ifname` created directly inside peer_netns_fd (IFLA_NET_NS_FD in the
 * peer's info; peer_netns_fd < 0: peer stays in h's netns), both with `mtu`
 * (0: kernel default). If pod_mac is non-NULL, set the peer's MAC to it.
 * Both ends are left down. Returns 0 or negative errno (-EEXIST if either
 * name exists, -EINVAL if a name is empty or longer than 15 bytes). */
int nl_veth_create(struct nl_handle *h, const char *host_ifname, const char *peer_ifname, int peer_netns_fd,
                   unsigned int mtu, const unsigned char *pod_mac);
int nl_link_get(struct nl_handle *h, const char *ifname, struct nl_link *out);      /* -ENODEV if absent */
int nl_link_get_by_index(struct nl_handle *h, int ifindex, struct nl_link *out);  /* -ENODEV if absent */
int nl_link_set_up(struct nl_handle *h, int ifindex);
/* Set the link's alias (IFLA_IFALIAS, at most 255 bytes): a note kept by
 * the kernel with the device. */
int nl_link_set_alias(struct nl_handle *h, int ifindex, const char *alias);
/* Set the IFF_* flags in mask to their values in flags (e.g. IFF_UP | IFF_NOARP). */
int nl_link_set_flags(struct nl_handle *h, int ifindex, unsigned int flags, unsigned int mask);
/* The kind ("clsact", "ingress", ...) of the qdisc at parent on ifindex
 * into kind: 1 when there is one, 0 when none, or a negative errno. */
int nl_qdisc_kind(struct nl_handle *h, int ifindex, uint32_t parent, char *kind, size_t len);
/* Deleting either end of a veth pair deletes both. */
int nl_link_del(struct nl_handle *h, const char *ifname);                         /* -ENODEV if absent */
/* List links whose name starts with prefix: calls cb for each; stops if cb
 * returns non-zero. Returns 0 when every link was seen, cb's non-zero value if
 * it stopped the walk, or a negative errno; -EAGAIN if the kernel flagged the
 * dump as inconsistent (links changed meanwhile: what cb saw may be incomplete,
 * retry). */
int nl_link_list(struct nl_handle *h, const char *prefix, int (*cb)(const struct nl_link *l, void *arg), void *arg);

int nl_addr_add4(struct nl_handle *h, int ifindex, struct in_addr addr, int prefixlen);   /* -EEXIST if present */
int nl_addr_has4(struct nl_handle *h, int ifindex, struct in_addr addr, int prefixlen); /* 1 yes, 0 no, <0 err */
/* The first global IPv4 address on ifindex; -EADDRNOTAVAIL when none. */
int nl_addr_first4(struct nl_handle *h, int ifindex, struct in_addr *out);

/* A vxlan device in external (collect_md) mode on UDP port, learning off,
 * left down. */
int nl_vxlan_create(struct nl_handle *h, const char *ifname, uint16_t port, unsigned int mtu);

/* Route in the main table. gw.s_addr == 0: scope link, no gateway; otherwise
 * via gw with RTNH_F_ONLINK. Uses NLM_F_REPLACE so re-adding is idempotent.
 * dst must have no bits set beyond prefixlen (the kernel answers -EINVAL). */
int nl_route_add4(struct nl_handle *h, int ifindex, struct in_addr dst, int prefixlen, struct in_addr gw);
/* Routes sluice manages across restarts carry this protocol number, so a
 * new agent can find (and remove) what an earlier one installed. */
#define NL_RTPROT_SLUICE 83 /* 'S'; unassigned in iproute2's rt_protos */
int nl_route_add4_tagged(struct nl_handle *h, int ifindex, struct in_addr dst, int prefixlen,
			 struct in_addr gw, struct in_addr prefsrc);
/* Calls cb for every sluice-tagged IPv4 route out of ifindex in the main
 * table; stops when cb returns non-zero (and returns that). */
int nl_route_list4_tagged(struct nl_handle *h, int ifindex,
			  int (*cb)(struct in_addr dst, int prefixlen, struct in_addr gw, void *arg),
			  void *arg);
/* The same with a preferred source address (RTA_PREFSRC; 0: none). */
int nl_route_add4_src(struct nl_handle *h, int ifindex, struct in_addr dst, int prefixlen,
		      struct in_addr gw, struct in_addr prefsrc);
/* 1 if the main table has dst/prefixlen out of ifindex with exactly that
 * gateway (gw.s_addr == 0: none), 0 if not, <0 on error. */
int nl_route_has4(struct nl_handle *h, int ifindex, struct in_addr dst, int prefixlen, struct in_addr gw);
int nl_route_del4(struct nl_handle *h, int ifindex, struct in_addr dst, int prefixlen);  /* -ESRCH if absent */

/* Permanent neighbour entry (NUD_PERMANENT, NLM_F_REPLACE). */
int nl_neigh_add4(struct nl_handle *h, int ifindex, struct in_addr ip, const unsigned char mac[6]);
/* 1 if a NUD_PERMANENT entry ip -> mac exists on ifindex, 0 if not, <0 on error. */
int nl_neigh_has4(struct nl_handle *h, int ifindex, struct in_addr ip, const unsigned char mac[6]);

/* Have the kernel resolve ip on ifindex now (NTF_USE), creating the entry. */
int nl_neigh_use4(struct nl_handle *h, int ifindex, struct in_addr ip);
/* The route to dst: its device and next hop (the gateway, or dst itself). */
int nl_route_nexthop4(struct nl_handle *h, struct in_addr dst, int *oif, struct in_addr *via);
/* Make h a listener for the neighbour table's changes (non-blocking; use
 * it for nothing else), readable on nl_fd(h). */
int nl_neigh_watch(struct nl_handle *h);
int nl_fd(const struct nl_handle *h);
/* Read what is pending: cb for every IPv4 neighbour deleted or failed
 * (neither usable nor being resolved); lost = 1 (ifindex 0) when the kernel
 * dropped events, so that anything may have changed. */
int nl_neigh_events(struct nl_handle *h, void (*cb)(int ifindex, struct in_addr ip, int lost, void *arg),
		    void *arg);

/* Write a sysctl such as "net/ipv4/ip_forward" = "1" inside h's netns
 * (relative to /proc/sys; the file is opened and written after setns to h's
 * netns, then the calling thread returns to its original netns). */
/* Use root instead of /proc/sys for sysctls (once, at start-up). The files
 * still act on the netns the writer is in, so a bind mount of the host's
 * /proc/sys works for pod namespaces too. */
void nl_set_proc_sys(const char *root);
int nl_sysctl_set(struct nl_handle *h, const char *path, const char *value);
/* Read a sysctl of h's netns into buf (NUL-terminated, the trailing newline
 * cut). Returns 0 or -errno. */
int nl_sysctl_get(struct nl_handle *h, const char *path, char *buf, size_t len);

#endif /* SLUICE_AGENT_NETLINK_H */
