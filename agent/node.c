// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	if (!ret)
		ret = nl_link_set_up(n->nl, link.ifindex);
	if (ret) {
		snprintf(err, errlen, "cannot set up the overlay device %s (vxlan, UDP %d): %s",
			 VXLAN_IFNAME, SLUICE_VXLAN_PORT, strerror(-ret));
		return ret;
	}
	n->vxlan_ifindex = link.ifindex;
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
	return 0;
fail:
	node_net_close(n);
	return ret;
}

int node_net_attach(struct node_net *n, struct datapath *dp, char *err, size_t errlen)
{
	if (n->routing == SLUICE_ROUTING_OVERLAY)
		return datapath_attach_node(dp, n->vxlan_ifindex, VXLAN_IFNAME, HOOK_OVERLAY, err,
					    errlen);
	if (n->dev_ifindex)
		return datapath_attach_node(dp, n->dev_ifindex, n->device, HOOK_NETDEV, err, errlen);
	return 0;
}

static int route_wanted(const struct compile_node *remote, size_t nremote, const struct node_route *r)
{
	for (size_t i = 0; i < nremote; i++)
		if (remote[i].pod_cidr.net == r->dst.net && remote[i].pod_cidr.prefix == r->dst.prefix &&
		    remote[i].ip == r->gw)
			return 1;
	return 0;
}

int node_net_sync_routes(struct node_net *n, const struct compile_node *remote, size_t nremote,
			 char *err, size_t errlen)
{
	struct node_route *routes;
	size_t k = 0;
	int ret;

	if (n->routing != SLUICE_ROUTING_NATIVE || !n->dev_ifindex)
		return 0;
	routes = calloc(nremote + 1, sizeof(*routes));
	if (!routes)
		return -ENOMEM;
	for (size_t i = 0; i < n->nroutes; i++) {
		struct in_addr dst = { htonl(n->routes[i].dst.net) };

		if (route_wanted(remote, nremote, &n->routes[i]))
			continue;
		ret = nl_route_del4(n->nl, n->dev_ifindex, dst, n->routes[i].dst.prefix);
		if (ret && ret != -ESRCH)
			pr_warn("cannot remove the route to %s/%d: %s", inet_ntoa(dst),
				n->routes[i].dst.prefix, strerror(-ret));
	}
	for (size_t i = 0; i < nremote; i++) {
		struct in_addr dst = { htonl(remote[i].pod_cidr.net) }, gw = { htonl(remote[i].ip) };

		ret = nl_route_add4(n->nl, n->dev_ifindex, dst, remote[i].pod_cidr.prefix, gw);
		if (ret) {
			char cidr[24];

			cidr4_format(&remote[i].pod_cidr, cidr, sizeof(cidr));
			snprintf(err, errlen, "cannot route %s via %s on %s: %s", cidr, inet_ntoa(gw),
				 n->device, strerror(-ret));
			free(n->routes);
			n->routes = routes;
			n->nroutes = k;
			return ret;
		}
		routes[k++] = (struct node_route){ .dst = remote[i].pod_cidr, .gw = remote[i].ip };
	}
	free(n->routes);
	n->routes = routes;
	n->nroutes = k;
	return 0;
}

void node_net_close(struct node_net *n)
{
	nl_close(n->nl);
	free(n->routes);
	n->nl = NULL;
	n->routes = NULL;
	n->nroutes = 0;
}
