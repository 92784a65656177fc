// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "endpoint.h"
#include "log.h"
#include "repair.h"

/* The endpoint map entry whose veth is ifindex: its address (host order)
 * into *ip and the pod's MAC; -ENOENT when none. */
static int map_entry_of(struct datapath *dp, int ifindex, uint32_t *ip, unsigned char mac[6])
{
	int fd = datapath_endpoint_map_fd(dp);
	__be32 key, next, *prev = NULL;
	struct sluice_endpoint v;

	while (!bpf_map_get_next_key(fd, prev, &next)) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &v) || (int)v.ifindex != ifindex)
			continue;
		*ip = ntohl(key);
		memcpy(mac, v.pod_mac, 6);
		return 0;
	}
	return -ENOENT;
}

struct owner_find {
	const char *owner;
	uint32_t ip;
};

static int match_owner(uint32_t ip, const char *owner, void *arg)
{
	struct owner_find *f = arg;

	if (strcmp(owner, f->owner))
		return 0;
	f->ip = ip;
	return 1;
}

/* Append " key=value" to buf when value is set, has no space and fits. */
static void note_add(char *buf, size_t len, const char *key, const char *v1, const char *v2)
{
	size_t used = strlen(buf);
	int n;

	if (!v1[0] || strchr(v1, ' ') || (v2 && strchr(v2, ' ')))
		return;
	n = snprintf(buf + used, len - used, " %s=%s%s%s", key, v1, v2 ? "/" : "", v2 ? v2 : "");
	if (n < 0 || (size_t)n >= len - used)
		buf[used] = '\0';
}

void repair_note(const struct endpoint *ep, char *buf, size_t len)
{
	snprintf(buf, len, "sluice");
	if (ep->k8s_pod[0])
		note_add(buf, len, "pod", ep->k8s_namespace[0] ? ep->k8s_namespace : "default",
			 ep->k8s_pod);
	note_add(buf, len, "net", ep->network, NULL);
	note_add(buf, len, "uid", ep->k8s_uid, NULL);
	note_add(buf, len, "netns", ep->netns, NULL);
}

/* Copy value (up to a space) into dst when it fits. */
static void note_get(const char *v, char *dst, size_t len)
{
	size_t n = strcspn(v, " ");

	if (n < len) {
		memcpy(dst, v, n);
		dst[n] = '\0';
	}
}

/* What repair_note wrote on the veth, back into ep. */
static void note_read(const char *note, struct endpoint *ep)
{
	const char *p;

	if (strncmp(note, "sluice", 6))
		return;
	for (p = strchr(note, ' '); p; p = strchr(p + 1, ' ')) {
		const char *v = p + 1;

		if (!strncmp(v, "pod=", 4)) {
			const char *slash = memchr(v + 4, '/', strcspn(v + 4, " "));

			if (slash && (size_t)(slash - v - 4) < sizeof(ep->k8s_namespace)) {
				memcpy(ep->k8s_namespace, v + 4, (size_t)(slash - v - 4));
				ep->k8s_namespace[slash - v - 4] = '\0';
				note_get(slash + 1, ep->k8s_pod, sizeof(ep->k8s_pod));
			}
		} else if (!strncmp(v, "net=", 4)) {
			note_get(v + 4, ep->network, sizeof(ep->network));
		} else if (!strncmp(v, "uid=", 4)) {
			note_get(v + 4, ep->k8s_uid, sizeof(ep->k8s_uid));
		} else if (!strncmp(v, "netns=", 6)) {
			note_get(v + 6, ep->netns, sizeof(ep->netns));
		}
	}
}

/* Split "<id>_<ifname>.json" at the underscore at cut (from the right). */
static int split_name(const char *name, size_t cut, struct endpoint *ep)
{
	size_t len = strlen(name) - 5, n = 0;

	for (size_t i = len; i-- > 0;) {
		if (name[i] != '_' || n++ != cut)
			continue;
		if (!i || i >= sizeof(ep->container_id) || len - i - 1 == 0 ||
		    len - i - 1 >= sizeof(ep->ifname))
			return -EINVAL;
		memcpy(ep->container_id, name, i);
		ep->container_id[i] = '\0';
		memcpy(ep->ifname, name + i + 1, len - i - 1);
		ep->ifname[len - i - 1] = '\0';
		return 0;
	}
	return -ENOENT;
}

int repair_endpoint(const struct repair_ctx *r, const char *name, struct endpoint *ep)
{
	char owner[IPAM_OWNER_MAX + 2];
	struct owner_find f = { owner, 0 };
	struct nl_link link;
	size_t len = strlen(name);
	int ret = -EINVAL, found = 0;

	memset(ep, 0, sizeof(*ep));
	if (len < 6 || strcmp(name + len - 5, ".json"))
		return -EINVAL;
	/* A container id or an ifname may hold '_': the split whose veth
	 * exists wins; with none, the last underscore. */
	for (size_t cut = 0; !found && !(ret = split_name(name, cut, ep)); cut++) {
		endpoint_host_ifname(ep->container_id, ep->ifname, ep->host_ifname,
				     sizeof(ep->host_ifname));
		found = !nl_link_get(r->host, ep->host_ifname, &link);
	}
	if (!found && split_name(name, 0, ep))
		return -EINVAL;
	if (!found)
		endpoint_host_ifname(ep->container_id, ep->ifname, ep->host_ifname,
				     sizeof(ep->host_ifname));
	snprintf(owner, sizeof(owner), "%s/%s", ep->container_id, ep->ifname);
	if (ipam_foreach(r->ipam, match_owner, &f) > 0)
		ep->ip = f.ip;
	if (!found)
		return -ENOENT;
	ep->host_ifindex = link.ifindex;
	memcpy(ep->host_mac, link.mac, 6);
	note_read(link.alias, ep);
	/* The map entry is the kernel's word on the address; the reservation
	 * (if readable) must agree, else the map wins. */
	if (!map_entry_of(r->dp, link.ifindex, &ep->ip, ep->pod_mac) && f.ip && f.ip != ep->ip)
		pr_warn("repair: %s: the endpoint map gives %s another address than its "
			"reservation; using the map's", name, ep->host_ifname);
	if (!ep->ip)
		return -ENOENT;
	ep->state = EP_READY;
	return 0;
}

struct unknown_scan {
	uint32_t *ips;
	size_t n, cap;
};

static int collect_unknown(uint32_t ip, const char *owner, void *arg)
{
	struct unknown_scan *s = arg;

	if (strcmp(owner, IPAM_UNKNOWN))
		return 0;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		uint32_t *v = realloc(s->ips, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->ips = v;
		s->cap = cap;
	}
	s->ips[s->n++] = ip;
	return 0;
}

/* Does a live veth of this node hold ip per the endpoint map? */
static int kernel_holds(const struct repair_ctx *r, uint32_t ip, char *ifname, size_t len)
{
	struct sluice_endpoint v;
	struct nl_link link;

	if (datapath_endpoint_get(r->dp, htonl(ip), &v) ||
	    nl_link_get_by_index(r->host, (int)v.ifindex, &link) ||
	    strncmp(link.name, HOST_IFNAME_PREFIX, strlen(HOST_IFNAME_PREFIX)))
		return 0;
	snprintf(ifname, len, "%s", link.name);
	return 1;
}

static const struct endpoint *holder(const struct endpoint *list, size_t n, uint32_t ip)
{
	for (size_t i = 0; i < n; i++)
		if (list[i].ip == ip)
			return &list[i];
	return NULL;
}

/* One reservation file that holds no owner: settle it. */
static int settle(const struct repair_ctx *r, const struct endpoint *list, size_t n, uint32_t ip)
{
	char addr[16], owner[IPAM_OWNER_MAX + 2], ifname[16];
	const struct endpoint *ep = holder(list, n, ip);
	int ret;

	ip4_format(ip, addr, sizeof(addr));
	if (ep) {
		snprintf(owner, sizeof(owner), "%s/%s", ep->container_id, ep->ifname);
		ret = ipam_set_owner(r->ipam, ip, owner);
		pr_warn("repair: %s/ipam/%s held no owner (torn or corrupted): %s%s", r->state_dir,
			addr, ret ? "kept reserved, cannot rewrite it for " : "rewritten for ", owner);
		return !ret;
	}
	if (kernel_holds(r, ip, ifname, sizeof(ifname))) {
		pr_warn("repair: %s/ipam/%s held no owner (torn or corrupted): kept reserved, veth "
			"%s holds it in the endpoint map but no endpoint record names it",
			r->state_dir, addr, ifname);
		return 0;
	}
	ret = ipam_quarantine(r->ipam, ip, NULL);
	pr_warn("repair: %s/ipam/%s held no owner (torn or corrupted) and nothing in the kernel "
		"holds it: %s", r->state_dir, addr, ret ? "kept reserved (cannot rewrite it)" :
		"released once its per-flow state is removed");
	return !ret;
}

unsigned repair_reservations(const struct repair_ctx *r, const struct endpoint *list, size_t n)
{
	struct unknown_scan s = { 0 };
	char owner[IPAM_OWNER_MAX + 2], addr[16];
	unsigned changed = 0;

	if (ipam_foreach(r->ipam, collect_unknown, &s))
		pr_err("repair: cannot scan %s/ipam for torn reservations: out of memory",
		       r->state_dir);
	for (size_t i = 0; i < s.n; i++)
		changed += (unsigned)settle(r, list, n, s.ips[i]);
	free(s.ips);
	/* An endpoint whose reservation file went missing keeps its address. */
	for (size_t i = 0; i < n; i++) {
		if (!list[i].ip || ipam_owner(r->ipam, list[i].ip, owner, sizeof(owner)) != -ENOENT)
			continue;
		ip4_format(list[i].ip, addr, sizeof(addr));
		snprintf(owner, sizeof(owner), "%s/%s", list[i].container_id, list[i].ifname);
		if (!ipam_set_owner(r->ipam, list[i].ip, owner)) {
			pr_warn("repair: %s/ipam/%s was missing while %s holds it: reserved again",
				r->state_dir, addr, owner);
			changed++;
		}
	}
	return changed;
}
