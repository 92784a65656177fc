// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bpf/bpf.h>

#include "endpoint.h"
#include "log.h"
#include "netlink.h"
#include "node.h"

const char *routing_name(enum sluice_routing r)
{
	return r == SLUICE_ROUTING_OVERLAY ? "overlay" : "native";
}

int routing_parse(const char *text, enum sluice_routing *r)
{
	if (!strcmp(text, "overlay"))
		*r = SLUICE_ROUTING_OVERLAY;
	else if (!strcmp(text, "native"))
		*r = SLUICE_ROUTING_NATIVE;
	else
		return -EINVAL;
	return 0;
}

static int setup_vxlan(struct node_net *n, char *err, size_t errlen)
{
	struct nl_link link;
	unsigned int mtu = (n->dev_mtu ? n->dev_mtu : 1500) - SLUICE_OVERLAY_OVERHEAD;
	int ret;

	ret = nl_link_get(n->nl, VXLAN_IFNAME, &link);
	if (ret == -ENODEV) {
		ret = nl_vxlan_create(n->nl, VXLAN_IFNAME, SLUICE_VXLAN_PORT, mtu);
		if (!ret)
			ret = nl_link_get(n->nl, VXLAN_IFNAME, &link);
	}
	/* No ARP: the host's routes into the tunnel (other nodes' pod CIDRs)
	 * need no neighbour; to_overlay sets each packet's tunnel. */
	if (!ret)
		ret = nl_link_set_flags(n->nl, link.ifindex, IFF_UP | IFF_NOARP, IFF_UP | IFF_NOARP);
	if (ret) {
		snprintf(err, errlen, "cannot set up the overlay device %s (vxlan, UDP %d): %s",
			 VXLAN_IFNAME, SLUICE_VXLAN_PORT, strerror(-ret));
		return ret;
	}
	n->vxlan_ifindex = link.ifindex;
	return 0;
}

/* The device routes to other nodes' pod CIDRs go out of: the uplink
 * (native), the vxlan device (overlay); 0 when there is none. */
static int route_ifindex(const struct node_net *n)
{
	return n->routing == SLUICE_ROUTING_OVERLAY ? n->vxlan_ifindex : n->dev_ifindex;
}

/* Routes an earlier agent installed: they are this agent's to keep or remove. */
static int adopt_route(struct in_addr dst, int prefixlen, struct in_addr gw, void *arg)
{
	struct node_net *n = arg;
	struct node_route *r = realloc(n->routes, (n->nroutes + 1) * sizeof(*r));

	if (!r)
		return -ENOMEM;
	n->routes = r;
	n->routes[n->nroutes++] = (struct node_route){
		.dst = { .net = ntohl(dst.s_addr), .prefix = prefixlen },
		.gw = ntohl(gw.s_addr),
	};
	return 0;
}

int node_net_open(struct node_net *n, enum sluice_routing routing, const char *device,
		  const char *node_ip, char *err, size_t errlen)
{
	struct nl_link link;
	struct in_addr a;
	int ret;

	memset(n, 0, sizeof(*n));
	n->routing = routing;
	ret = nl_open(&n->nl, -1);
	if (ret) {
		snprintf(err, errlen, "cannot open rtnetlink: %s", strerror(-ret));
		return ret;
	}
	if (device) {
		snprintf(n->device, sizeof(n->device), "%s", device);
		ret = nl_link_get(n->nl, device, &link);
		if (ret) {
			snprintf(err, errlen, "--device %s: %s", device,
				 ret == -ENODEV ? "no such interface" : strerror(-ret));
			goto fail;
		}
		n->dev_ifindex = link.ifindex;
		n->dev_mtu = link.mtu;
	}
	if (node_ip) {
		if (inet_pton(AF_INET, node_ip, &a) != 1) {
			snprintf(err, errlen, "--node-ip '%s' is not an IPv4 address", node_ip);
			ret = -EINVAL;
			goto fail;
		}
		n->node_ip = ntohl(a.s_addr);
	} else if (n->dev_ifindex && !nl_addr_first4(n->nl, n->dev_ifindex, &a)) {
		n->node_ip = ntohl(a.s_addr);
	}
	if (routing == SLUICE_ROUTING_OVERLAY) {
		ret = setup_vxlan(n, err, errlen);
		if (ret)
			goto fail;
		n->pod_mtu = (n->dev_mtu ? n->dev_mtu : 1500) - SLUICE_OVERLAY_OVERHEAD;
	} else {
		n->pod_mtu = n->dev_mtu;
	}
	/* Without the monitor, a hop whose entry goes away is resolved again
	 * only at the next sync: worth a warning, not a refusal to run. */
	if (n->dev_ifindex && (nl_open(&n->neigh_mon, -1) || nl_neigh_watch(n->neigh_mon))) {
		pr_warn("cannot watch the neighbour table: other nodes' MACs lost meanwhile are "
			"resolved again only at the next sync");
		nl_close(n->neigh_mon);
		n->neigh_mon = NULL;
	}
	if (route_ifindex(n)) {
		ret = nl_route_list4_tagged(n->nl, route_ifindex(n), adopt_route, n);
		if (ret < 0) {
			snprintf(err, errlen, "cannot list the routes on %s: %s",
				 routing == SLUICE_ROUTING_OVERLAY ? VXLAN_IFNAME : n->device,
				 strerror(-ret));
			goto fail;
		}
		ret = 0;
	}
	return 0;
fail:
	node_net_close(n);
	return ret;
}

int node_net_attach(struct node_net *n, struct datapath *dp, char *err, size_t errlen)
{
	int ret = 0;

	/* The tunnel: delivery to pods; tunnel keys for what the host routes in. */
	if (n->routing == SLUICE_ROUTING_OVERLAY)
		ret = datapath_attach_node(dp, n->vxlan_ifindex, VXLAN_IFNAME, HOOK_OVERLAY, err,
					   errlen);
	if (!ret && n->routing == SLUICE_ROUTING_OVERLAY)
		ret = datapath_attach_node(dp, n->vxlan_ifindex, VXLAN_IFNAME, HOOK_OVERLAY_OUT, err,
					   errlen);
	/* The uplink: straight delivery of routed pod traffic (native) and
	 * of replies to masqueraded flows; on the way out, pods' flows the
	 * host forwarded are marked as the stack's, and masquerade. */
	if (!ret && n->dev_ifindex)
		ret = datapath_attach_node(dp, n->dev_ifindex, n->device, HOOK_NETDEV, err, errlen);
	if (!ret && n->dev_ifindex)
		ret = datapath_attach_node(dp, n->dev_ifindex, n->device, HOOK_NETDEV_OUT, err,
					   errlen);
	return ret;
}

static int cidr_cmp(const void *a, const void *b)
{
	const struct cidr4 *x = a, *y = b;

	if (x->net != y->net)
		return x->net < y->net ? -1 : 1;
	return x->prefix - y->prefix;
}

static int cidr_in(const struct cidr4 *set, size_t n, const struct cidr4 *c)
{
	return bsearch(c, set, n, sizeof(*set), cidr_cmp) != NULL;
}

int node_net_sync_nomasq(struct node_net *n, struct datapath *dp, const struct cidr4 *local_pods,
			 const struct compile_node *remote, size_t nremote, char *err,
			 size_t errlen)
{
	size_t cap = 2 + 2 * nremote + n->nnomasq_extra, k = 0;
	struct cidr4 *want = calloc(cap, sizeof(*want));
	int fd = datapath_nomasq_map_fd(dp), ret = 0;
	__u8 one = 1;

	if (!want)
		return -ENOMEM;
	if (!n->nomasq_loaded) {
		/* What an earlier agent left: this agent's to keep or remove. */
		struct sluice_nomasq_key key, cur;
		void *prev = NULL;

		while (!bpf_map_get_next_key(fd, prev, &key)) {
			struct cidr4 *c = realloc(n->nomasq, (n->nnomasq + 1) * sizeof(*c));

			if (!c)
				break;
			n->nomasq = c;
			n->nomasq[n->nnomasq++] = (struct cidr4){ .net = ntohl(key.ip),
								  .prefix = (int)key.prefixlen };
			cur = key;
			prev = &cur;
		}
		n->nomasq_loaded = 1;
	}
	want[k++] = *local_pods;
	if (n->node_ip)
		want[k++] = (struct cidr4){ .net = n->node_ip, .prefix = 32 };
	for (size_t i = 0; i < nremote; i++) {
		want[k++] = remote[i].pod_cidr;
		want[k++] = (struct cidr4){ .net = remote[i].ip, .prefix = 32 };
	}
	for (size_t i = 0; i < n->nnomasq_extra; i++)
		want[k++] = n->nomasq_extra[i];
	qsort(want, k, sizeof(*want), cidr_cmp);
	for (size_t i = 0; i < k; i++) {
		struct sluice_nomasq_key key = { .prefixlen = (__u32)want[i].prefix,
						 .ip = htonl(want[i].net) };

		if (bpf_map_update_elem(fd, &key, &one, BPF_ANY)) {
			ret = -errno;
			snprintf(err, errlen, "cannot update the non-masquerade map: %s", strerror(errno));
			goto out;
		}
	}
	for (size_t i = 0; i < n->nnomasq; i++) {
		struct sluice_nomasq_key key = { .prefixlen = (__u32)n->nomasq[i].prefix,
						 .ip = htonl(n->nomasq[i].net) };

		if (!cidr_in(want, k, &n->nomasq[i]))
			bpf_map_delete_elem(fd, &key);
	}
out:
	free(n->nomasq);
	n->nomasq = want;
	n->nnomasq = k;
	return ret;
}

/* The gateway of the route to a remote node's pods: the node (native);
 * none into the tunnel (overlay). */
static uint32_t route_gw(const struct node_net *n, const struct compile_node *remote)
{
	return n->routing == SLUICE_ROUTING_NATIVE ? remote->ip : 0;
}

static int route_wanted(const struct node_net *n, const struct compile_node *remote, size_t nremote,
			const struct node_route *r)
{
	for (size_t i = 0; i < nremote; i++)
		if (remote[i].pod_cidr.net == r->dst.net && remote[i].pod_cidr.prefix == r->dst.prefix &&
		    route_gw(n, &remote[i]) == r->gw)
			return 1;
	return 0;
}

/* Overlay: the source address of the node's own packets into the tunnel,
 * the router address, which other nodes route back through the tunnel
 * (it is in this node's pod CIDR); 0 while sluice_host has none. */
static uint32_t tunnel_source(struct node_net *n)
{
	struct nl_link link;
	struct in_addr a;

	if (n->routing != SLUICE_ROUTING_OVERLAY)
		return 0;
	if (!n->router && !nl_link_get(n->nl, ROUTER_IFNAME, &link) &&
	    !nl_addr_first4(n->nl, link.ifindex, &a))
		n->router = ntohl(a.s_addr);
	return n->router;
}

int node_net_sync_routes(struct node_net *n, const struct compile_node *remote, size_t nremote,
			 char *err, size_t errlen)
{
	struct in_addr src = { htonl(tunnel_source(n)) };
	int ifindex = route_ifindex(n);
	struct node_route *routes;
	struct timespec now;
	size_t k = 0;
	int ret;

	if (!ifindex)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (n->nroutes == nremote && n->routes_ifindex == ifindex && n->routes_src == src.s_addr &&
	    now.tv_sec - n->routes_at < 60) {
		size_t i = 0;

		while (i < nremote && n->routes[i].dst.net == remote[i].pod_cidr.net &&
		       n->routes[i].dst.prefix == remote[i].pod_cidr.prefix &&
		       n->routes[i].gw == route_gw(n, &remote[i]))
			i++;
		if (i == nremote)
			return 0;
	}
	routes = calloc(nremote + 1, sizeof(*routes));
	if (!routes)
		return -ENOMEM;
	for (size_t i = 0; i < n->nroutes; i++) {
		struct in_addr dst = { htonl(n->routes[i].dst.net) };

		if (route_wanted(n, remote, nremote, &n->routes[i]))
			continue;
		ret = nl_route_del4(n->nl, ifindex, dst, n->routes[i].dst.prefix);
		if (ret && ret != -ESRCH)
			pr_warn("cannot remove the route to %s/%d: %s", inet_ntoa(dst),
				n->routes[i].dst.prefix, strerror(-ret));
	}
	for (size_t i = 0; i < nremote; i++) {
		struct in_addr dst = { htonl(remote[i].pod_cidr.net) },
			       gw = { htonl(route_gw(n, &remote[i])) };

		ret = nl_route_add4_tagged(n->nl, ifindex, dst, remote[i].pod_cidr.prefix, gw, src);
		if (ret) {
			char cidr[24];

			cidr4_format(&remote[i].pod_cidr, cidr, sizeof(cidr));
			snprintf(err, errlen, "cannot route %s %s %s on %s: %s", cidr,
				 gw.s_addr ? "via" : "into", gw.s_addr ? inet_ntoa(gw) : "the tunnel",
				 n->routing == SLUICE_ROUTING_OVERLAY ? VXLAN_IFNAME : n->device,
				 strerror(-ret));
			free(n->routes);
			n->routes = routes;
			n->nroutes = k;
			n->routes_ifindex = 0;	/* not all in place: the next sync adds again */
			return ret;
		}
		routes[k++] = (struct node_route){ .dst = remote[i].pod_cidr,
						   .gw = route_gw(n, &remote[i]) };
	}
	free(n->routes);
	n->routes = routes;
	n->nroutes = k;
	n->routes_ifindex = ifindex;
	n->routes_src = src.s_addr;
	n->routes_at = now.tv_sec;
	return 0;
}

/* Mark the ports of a net.ipv4.ip_local_reserved_ports list ("8080,61000-65535")
 * in seen (65536 bytes). */
static void ports_mark(const char *list, unsigned char *seen)
{
	const char *p = list;

	while (*p) {
		char *end;
		unsigned long a = strtoul(p, &end, 10), b = a;

		if (end == p)
			break;
		if (*end == '-')
			b = strtoul(end + 1, &end, 10);
		for (unsigned long i = a; i <= b && i < 65536; i++)
			seen[i] = 1;
		p = end + strspn(end, ", \t");
	}
}

static int ports_covered(const char *list, unsigned int lo, unsigned int hi)
{
	unsigned char *seen = calloc(65536, 1);
	int ok = 1;

	if (!seen)
		return 0;
	ports_mark(list, seen);
	for (unsigned int i = lo; i <= hi; i++)
		ok &= seen[i];
	free(seen);
	return ok;
}

#define RESERVED_PORTS "net/ipv4/ip_local_reserved_ports"
#define LOCAL_PORT_RANGE "net/ipv4/ip_local_port_range"

int node_net_reserve_nat_ports(struct node_net *n, unsigned int lo, unsigned int hi, char *err,
			       size_t errlen)
{
	size_t len = 65536;
	char *cur = malloc(len), *want = malloc(len + 16), range[32];
	unsigned int plo, phi;
	int ret;

	if (!cur || !want) {
		ret = -ENOMEM;
		snprintf(err, errlen, "cannot reserve the masquerade ports: %s", strerror(-ret));
		goto cleanup;
	}
	if (!nl_sysctl_get(n->nl, LOCAL_PORT_RANGE, range, sizeof(range)) &&
	    sscanf(range, "%u %u", &plo, &phi) == 2 && plo <= hi && lo <= phi)
		pr_warn("net.ipv4.ip_local_port_range %u-%u overlaps the masquerade ports %u-%u: "
			"the kernel skips them only while they stay in ip_local_reserved_ports; "
			"choose --masquerade-ports outside %u-%u", plo, phi, lo, hi, plo, phi);
	ret = nl_sysctl_get(n->nl, RESERVED_PORTS, cur, len);
	if (ret)
		goto fail;
	if (ports_covered(cur, lo, hi)) {
		ret = 0;
		goto cleanup;
	}
	snprintf(want, len + 16, "%s%s%u-%u", cur, *cur ? "," : "", lo, hi);
	ret = nl_sysctl_set(n->nl, RESERVED_PORTS, want);
	if (!ret)
		ret = nl_sysctl_get(n->nl, RESERVED_PORTS, cur, len);
	if (!ret && !ports_covered(cur, lo, hi))
		ret = -EIO;
	if (ret)
		goto fail;
	pr_info("masquerade ports %u-%u added to net.ipv4.ip_local_reserved_ports (now %s)", lo, hi,
		cur);
	goto cleanup;
fail:
	snprintf(err, errlen,
		 "cannot add the masquerade ports %u-%u to net.ipv4.ip_local_reserved_ports: %s; "
		 "node sockets may then be given those ports: give --proc-sys a writable bind "
		 "mount of the host's /proc/sys, or reserve them on the host",
		 lo, hi, strerror(-ret));
cleanup:
	free(cur);
	free(want);
	return ret;
}

void node_net_keep_neighs(struct node_net *n, const struct compile_node *remote, size_t nremote)
{
	struct in_addr *hops;
	uint32_t *nodes;
	size_t k = 0;

	if (!n->dev_ifindex)
		return;
	/* Every sync (any pod or policy change) lands here: two netlink
	 * round trips per node only when the nodes changed; the monitor
	 * takes care of hops lost meanwhile. */
	if (n->nhop_nodes == nremote) {
		size_t i = 0;

		while (i < nremote && n->hop_nodes[i] == remote[i].ip)
			i++;
		if (i == nremote)
			return;
	}
	hops = calloc(nremote + 1, sizeof(*hops));
	nodes = calloc(nremote + 1, sizeof(*nodes));
	if (!hops || !nodes) {
		free(hops);
		free(nodes);
		return; /* keep the old lists: the next sync tries again */
	}
	for (size_t i = 0; i < nremote; i++)
		nodes[i] = remote[i].ip;
	for (size_t i = 0; i < nremote; i++) {
		struct in_addr dst = { htonl(remote[i].ip) }, via;
		int oif, ret;

		/* A node reached through another device sends nothing
		 * believable on the uplink anyway. */
		if (nl_route_nexthop4(n->nl, dst, &oif, &via) || oif != n->dev_ifindex)
			continue;
		ret = nl_neigh_use4(n->nl, n->dev_ifindex, via);
		if (ret)
			pr_debug("cannot resolve %s on %s: %s", inet_ntoa(via), n->device,
				 strerror(-ret));
		hops[k++] = via;
	}
	free(n->hops);
	n->hops = hops;
	n->nhops = k;
	free(n->hop_nodes);
	n->hop_nodes = nodes;
	n->nhop_nodes = nremote;
}

int node_net_neigh_fd(const struct node_net *n)
{
	return n->neigh_mon ? nl_fd(n->neigh_mon) : -1;
}

static void neigh_lost(int ifindex, struct in_addr ip, int lost, void *arg)
{
	struct node_net *n = arg;

	for (size_t i = 0; i < n->nhops; i++)
		if (lost || (ifindex == n->dev_ifindex && ip.s_addr == n->hops[i].s_addr))
			nl_neigh_use4(n->nl, n->dev_ifindex, n->hops[i]);
}

void node_net_neigh_events(struct node_net *n)
{
	int ret;

	if (!n->neigh_mon)
		return;
	ret = nl_neigh_events(n->neigh_mon, neigh_lost, n);
	if (ret)
		pr_warn("reading the neighbour table's changes: %s", strerror(-ret));
}

void node_net_close(struct node_net *n)
{
	nl_close(n->neigh_mon);
	n->neigh_mon = NULL;
	free(n->hops);
	n->hops = NULL;
	n->nhops = 0;
	free(n->hop_nodes);
	n->hop_nodes = NULL;
	n->nhop_nodes = 0;
	nl_close(n->nl);
	free(n->routes);
	free(n->nomasq);
	n->nomasq = NULL;
	n->nl = NULL;
	n->routes = NULL;
	n->nroutes = 0;
}
