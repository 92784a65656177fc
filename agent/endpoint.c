// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <linux/pkt_sched.h>

#include "api.h"
#include "bandwidth.h"
#include "endpoint.h"
#include "flows.h"
#include "log.h"
#include "netlink.h"
#include "repair.h"
#include "statefile.h"

struct endpoints {
	struct datapath *dp;
	struct ipam *ipam;
	struct nl_handle *host;		/* netlink in the agent's (the node's) netns */
	int statefd;			/* <state-dir>/endpoints */
	char state_dir[PATH_MAX];
	struct endpoint *list;		/* unordered; removal swaps in the last */
	size_t n, cap;
	unsigned int pod_mtu;		/* 0: the kernel's default */
	int hostports;			/* host ports forwarded: checked at ADD */
	/* Retries owed (see release_address): an address quarantined because
	 * its per-flow state could not be removed; the start-up removal of
	 * the state of every address no pod holds. */
	int quarantine_pending;
	int range_purge_pending;
};

void endpoints_set_pod_mtu(struct endpoints *eps, unsigned int mtu)
{
	eps->pod_mtu = mtu;
}

void endpoints_set_hostports(struct endpoints *eps, int forwarded)
{
	eps->hostports = forwarded;
}

void endpoint_host_ifname(const char *container_id, const char *ifname, char *buf, size_t len)
{
	/* FNV-1a over "id/ifname": stable across restarts and agents. */
	uint64_t h = 0xcbf29ce484222325ull;

	for (const char *p = container_id; *p; p++)
		h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
	h = (h ^ '/') * 0x100000001b3ull;
	for (const char *p = ifname; *p; p++)
		h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
	snprintf(buf, len, HOST_IFNAME_PREFIX "%011llx", (unsigned long long)(h >> 20));
}

static void state_name(const char *container_id, const char *ifname, char *buf, size_t len)
{
	snprintf(buf, len, "%s_%s.json", container_id, ifname);
}

static void owner_name(const char *container_id, const char *ifname, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", container_id, ifname);
}

/* Write the endpoint's state file crash-safely (lib/statefile). */
static int state_save(struct endpoints *eps, const struct endpoint *ep)
{
	char name[CONTAINER_ID_MAX + IFNAMSIZ + 8];
	json_t *obj = endpoint_to_json(ep);
	char *text = NULL;
	int ret;

	if (!obj)
		return -ENOMEM;
	text = json_dumps(obj, JSON_INDENT(1));
	json_decref(obj);
	if (!text)
		return -ENOMEM;
	state_name(ep->container_id, ep->ifname, name, sizeof(name));
	ret = sf_write_atomic(eps->statefd, name, text, strlen(text), 0600);
	free(text);
	return ret;
}

static void state_remove(struct endpoints *eps, const struct endpoint *ep)
{
	char name[CONTAINER_ID_MAX + IFNAMSIZ + 8];
	int ret;

	state_name(ep->container_id, ep->ifname, name, sizeof(name));
	ret = sf_remove(eps->statefd, name);
	if (ret)
		pr_warn("cannot remove state file %s/endpoints/%s: %s", eps->state_dir, name,
			strerror(-ret));
}

/* A state write failed: name the directory, and the fix when the storage
 * is at fault (full, read-only...). */
static void state_error(const struct endpoints *eps, int ret, const char *what, char *err,
			size_t errlen)
{
	char why[PATH_MAX + 128];

	if (sf_storage_error(eps->state_dir, ret, why, sizeof(why)))
		snprintf(err, errlen, "%s; %s", why, what);
	else
		snprintf(err, errlen, "cannot write endpoint state under %s: %s; %s",
			 eps->state_dir, strerror(-ret), what);
}

static struct endpoint *find(struct endpoints *eps, const char *container_id, const char *ifname)
{
	for (size_t i = 0; i < eps->n; i++)
		if (!strcmp(eps->list[i].container_id, container_id) &&
		    !strcmp(eps->list[i].ifname, ifname))
			return &eps->list[i];
	return NULL;
}

/* Is ip (host order) an address of this node's network namespace? */
static int address_is_local(uint32_t ip)
{
	struct ifaddrs *all, *i;
	int found = 0;

	if (getifaddrs(&all))
		return 0;
	for (i = all; i && !found; i = i->ifa_next)
		found = i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
			ntohl(((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr) == ip;
	freeifaddrs(all);
	return found;
}

/*
 * The host ports the new pod asks for (req): each hostIP must be this
 * node's, and no other pod may hold the same hostPort and protocol on an
 * address they share (no hostIP: the node's address, which any hostIP may
 * be, so it shares with every one). Returns 0 or a CNI error code with the
 * holder named in err.
 */
static int hostports_check(const struct endpoints *eps, const struct cni_req *req, char *err,
			   size_t errlen)
{
	for (size_t p = 0; eps->hostports && p < req->nports; p++) {
		const struct hostport *h = &req->ports[p];
		char text[64], ip[16];

		hostport_format(h, text, sizeof(text));
		if (h->proto != IPPROTO_TCP && h->proto != IPPROTO_UDP) {
			snprintf(err, errlen, "host port %s: sluice forwards TCP and UDP host ports "
					      "only", text);
			return CNI_ERR_INVALID_CONFIG;
		}
		if (h->host_ip && !address_is_local(h->host_ip)) {
			ip4_format(h->host_ip, ip, sizeof(ip));
			snprintf(err, errlen, "host port %s: hostIP %s is no address of this node; "
					      "leave hostIP out or give one of the node's", text, ip);
			return CNI_ERR_INVALID_CONFIG;
		}
		for (size_t i = 0; i < eps->n; i++) {
			const struct endpoint *e = &eps->list[i];

			for (size_t q = 0; q < e->nports; q++) {
				const struct hostport *o = &e->ports[q];

				if (o->host_port != h->host_port || o->proto != h->proto ||
				    (o->host_ip && h->host_ip && o->host_ip != h->host_ip))
					continue;
				snprintf(err, errlen, "host port %s is already held on this node by "
						      "pod %s/%s (container %.12s): one hostPort and "
						      "protocol per node address; free it or pick "
						      "another hostPort",
					 text, e->k8s_namespace[0] ? e->k8s_namespace : "-",
					 e->k8s_pod[0] ? e->k8s_pod : "-", e->container_id);
				return CNI_ERR_INVALID_CONFIG;
			}
		}
	}
	return 0;
}

static struct endpoint *append(struct endpoints *eps, const struct endpoint *ep)
{
	if (eps->n == eps->cap) {
		size_t cap = eps->cap ? eps->cap * 2 : 64;
		struct endpoint *l = realloc(eps->list, cap * sizeof(*l));

		if (!l)
			return NULL;
		eps->list = l;
		eps->cap = cap;
	}
	eps->list[eps->n] = *ep;
	return &eps->list[eps->n++];
}

static void forget(struct endpoints *eps, struct endpoint *ep)
{
	size_t i = (size_t)(ep - eps->list);

	eps->list[i] = eps->list[--eps->n];
}

static double ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/*
 * Free ip, which owner held (NULL: whoever holds it), for the next pod.
 * Its per-flow state (connection tracking, NAT) goes first: an established
 * entry passes packets without a policy lookup, so the next holder would
 * inherit the old pod's flows whatever its own policy says. The caller
 * made sure no new state can appear for ip (its endpoint map entry and
 * veth are gone). When the state cannot be removed the address is
 * quarantined instead (never handed out) and retried on the next ADD, GC
 * or start-up.
 */
static int release_address(struct endpoints *eps, uint32_t ip, const char *owner, const char *who)
{
	struct flows_purge_stats st = { 0 };
	char addr[16], why[256];
	struct timespec t0;
	int ret, q;

	ip4_format(ip, addr, sizeof(addr));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ret = flows_purge_addr(eps->dp, ip, &st, why, sizeof(why));
	if (ret) {
		q = ipam_quarantine(eps->ipam, ip, owner);
		if (!q)
			eps->quarantine_pending = 1;
		pr_err("%s: cannot remove the per-flow state of its address %s: %s; %s", who, addr,
		       why, q ? "and cannot quarantine the address either" :
				"the address is quarantined (not handed out) until a later ADD, "
				"GC or agent start removes that state");
		return ret;
	}
	pr_info("%s: removed %zu per-flow entr%s of %s (%zu scanned, %.1f ms)", who, st.removed,
		st.removed == 1 ? "y" : "ies", addr, st.scanned, ms_since(&t0));
	ret = ipam_release(eps->ipam, ip, owner);
	if (ret && ret != -ENOENT)
		pr_warn("%s: cannot release address %s: %s", who, addr, strerror(-ret));
	return ret;
}

/* Does an endpoint other than ep hold ep's host ifindex? */
static int ifindex_taken(const struct endpoints *eps, const struct endpoint *ep)
{
	for (size_t i = 0; i < eps->n; i++)
		if (&eps->list[i] != ep && eps->list[i].host_ifindex == ep->host_ifindex &&
		    strcmp(eps->list[i].host_ifname, ep->host_ifname))
			return 1;
	return 0;
}

/*
 * Undo whatever exists of ep: attachments, map entry, bandwidth buckets,
 * veth pair (its peer in the pod goes with it), per-flow state and
 * address, state file. Every step tolerates a missing piece, so this
 * serves DEL, a failed ADD and start-up recovery. The order matters: with
 * the map entry and the veth gone no packet creates state for the address
 * any more, so none is left when it is released.
 */
static void teardown(struct endpoints *eps, const struct endpoint *ep)
{
	char owner[IPAM_OWNER_MAX];
	int ret;

	if (ep->ip) {
		struct sluice_endpoint cur;

		/* Only remove the entry if it still points at this endpoint's veth. */
		if (!datapath_endpoint_get(eps->dp, htonl(ep->ip), &cur) &&
		    (int)cur.ifindex == ep->host_ifindex)
			datapath_endpoint_del(eps->dp, htonl(ep->ip));
	}
	/* Its buckets, unless another endpoint's veth has its ifindex now
	 * (this veth went while no agent ran, and the number was reused). */
	if (ep->host_ifindex && !ifindex_taken(eps, ep))
		bw_remove(eps->dp, ep->host_ifindex);
	ret = nl_link_del(eps->host, ep->host_ifname);
	if (ret && ret != -ENODEV)
		pr_warn("cannot delete %s: %s", ep->host_ifname, strerror(-ret));
	/* A deleted device took its tc filters along; its ifindex may
	 * already belong to another device, so only unpin then. */
	datapath_detach(eps->dp, ret && ret != -ENODEV ? ep->host_ifindex : 0, ep->host_ifname);
	if (ep->ip) {
		char who[IPAM_OWNER_MAX + 2 * 254 + 16];

		owner_name(ep->container_id, ep->ifname, owner, sizeof(owner));
		if (ep->k8s_pod[0])
			snprintf(who, sizeof(who), "pod %s/%s (%s)", ep->k8s_namespace, ep->k8s_pod,
				 owner);
		else
			snprintf(who, sizeof(who), "%s", owner);
		release_address(eps, ep->ip, owner, who);
	}
	state_remove(eps, ep);
}

static int retry_pending(struct endpoints *eps, char *err, size_t errlen);

/* Leave on the host veth what a lost state file could not be rebuilt
 * without (repair_note); a failure only costs that. */
static void note_on_veth(struct endpoints *eps, const struct endpoint *ep)
{
	char note[256];
	int ret;

	repair_note(ep, note, sizeof(note));
	ret = nl_link_set_alias(eps->host, ep->host_ifindex, note);
	if (ret)
		pr_warn("cannot note %s/%s on %s: %s; a torn state file of it would be rebuilt "
			"without its pod's name", ep->container_id, ep->ifname, ep->host_ifname,
			strerror(-ret));
}

static int open_netns(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		snprintf(err, errlen, "cannot open network namespace CNI_NETNS=%s: %s", path,
			 strerror(errno));
	return fd;
}

/* Pod side: address, link up, gateway route, default route, and a
 * permanent neighbour entry for the gateway so the pod never ARPs. */
static int setup_pod_side(struct endpoints *eps, struct endpoint *ep, int netns_fd, char *err,
			  size_t errlen)
{
	struct in_addr ip = { htonl(ep->ip) }, router = { htonl(ipam_router(eps->ipam)) };
	struct in_addr any = { 0 };
	struct nl_handle *pod = NULL;
	struct nl_link link;
	const char *step;
	char path[64];
	int ret;

	step = "open netlink in the pod's netns";
	ret = nl_open(&pod, netns_fd);
	if (ret)
		goto cleanup;
	step = "read the pod interface";
	ret = nl_link_get(pod, ep->ifname, &link);
	if (ret)
		goto cleanup;
	memcpy(ep->pod_mac, link.mac, 6);
	/* IPv4-only datapath: no IPv6 autoconfiguration chatter from the pod. */
	snprintf(path, sizeof(path), "net/ipv6/conf/%s/disable_ipv6", ep->ifname);
	nl_sysctl_set(pod, path, "1");
	step = "add the pod address";
	ret = nl_addr_add4(pod, link.ifindex, ip, 32);
	if (ret && ret != -EEXIST)
		goto cleanup;
	step = "set the pod interface up";
	ret = nl_link_set_up(pod, link.ifindex);
	if (ret)
		goto cleanup;
	step = "add the pod's gateway neighbour entry";
	ret = nl_neigh_add4(pod, link.ifindex, router, ep->host_mac);
	if (ret)
		goto cleanup;
	step = "add the pod's route to its gateway";
	ret = nl_route_add4(pod, link.ifindex, router, 32, any);
	if (ret)
		goto cleanup;
	step = "add the pod's default route";
	ret = nl_route_add4(pod, link.ifindex, any, 0, router);
cleanup:
	if (ret)
		snprintf(err, errlen, "cannot %s (%s in %s): %s", step, ep->ifname, ep->netns,
			 strerror(-ret));
	nl_close(pod);
	return ret;
}

static int setup_host_side(struct endpoints *eps, struct endpoint *ep, char *err, size_t errlen)
{
	struct in_addr ip = { htonl(ep->ip) }, any = { 0 }, router = { htonl(ipam_router(eps->ipam)) };
	const char *step;
	char path[64];
	int ret;

	snprintf(path, sizeof(path), "net/ipv6/conf/%s/disable_ipv6", ep->host_ifname);
	nl_sysctl_set(eps->host, path, "1");
	step = "set the host veth up";
	ret = nl_link_set_up(eps->host, ep->host_ifindex);
	if (ret)
		goto cleanup;
	step = "add the neighbour entry for the pod";
	ret = nl_neigh_add4(eps->host, ep->host_ifindex, ip, ep->pod_mac);
	if (ret)
		goto cleanup;
	step = "add the host route to the pod";
	/* The node talks to its pods from the router address: one known
	 * source that policy recognises as the node (kubelet probes). */
	ret = nl_route_add4_src(eps->host, ep->host_ifindex, ip, 32, any, router);
cleanup:
	if (ret)
		snprintf(err, errlen, "cannot %s (%s): %s", step, ep->host_ifname, strerror(-ret));
	return ret;
}

static struct sluice_endpoint bpf_value(const struct endpoint *ep)
{
	struct sluice_endpoint v = { .ifindex = (__u32)ep->host_ifindex };

	memcpy(v.pod_mac, ep->pod_mac, 6);
	memcpy(v.lxc_mac, ep->host_mac, 6);
	return v;
}

/*
 * A repeated ADD of ready endpoint cur: its bandwidth limits become the
 * request's, in the map and the record (the policy sync after ADD sets
 * the endpoint map's flags). On failure both stay as they were.
 */
static int readd_bandwidth(struct endpoints *eps, struct endpoint *cur, const struct cni_req *req,
			   char *err, size_t errlen)
{
	struct bw_limits old = cur->bw;
	char ignored[256];
	int ret, code;

	code = request_check_bandwidth(&req->bw, eps->pod_mtu, err, errlen);
	if (code || !memcmp(&old, &req->bw, sizeof(old)))
		return code;
	ret = bw_apply(eps->dp, cur->host_ifindex, &req->bw, err, errlen);
	if (ret)
		goto undo;
	cur->bw = req->bw;
	ret = state_save(eps, cur);
	if (!ret) {
		pr_info("%s/%s: bandwidth limits changed (egress %llu, ingress %llu bit/s)",
			cur->container_id, cur->ifname, (unsigned long long)cur->bw.egress_rate,
			(unsigned long long)cur->bw.ingress_rate);
		return 0;
	}
	cur->bw = old;
	state_error(eps, ret, "the bandwidth limits were left as they were", err, errlen);
undo:
	bw_apply(eps->dp, cur->host_ifindex, &old, ignored, sizeof(ignored));
	return CNI_ERR_INTERNAL;
}

int endpoints_add(struct endpoints *eps, const struct cni_req *req, json_t **result, char *err,
		  size_t errlen)
{
	struct endpoint ep = { .state = EP_CREATING }, *cur;
	char owner[IPAM_OWNER_MAX];
	int netns_fd = -1, ret, code = CNI_ERR_INTERNAL;
	struct nl_link link;

	cur = find(eps, req->container_id, req->ifname);
	if (cur) {
		if (cur->state == EP_READY && !strcmp(cur->netns, req->netns)) {
			/* A repeated ADD: answer as the first time, with the
			 * bandwidth limits it carries now. */
			code = readd_bandwidth(eps, cur, req, err, errlen);
			if (code)
				return code;
			*result = endpoint_result(cur, ipam_router(eps->ipam));
			return 0;
		}
		snprintf(err, errlen,
			 "container %s already has %s attached in %s; DEL it first",
			 req->container_id, req->ifname, cur->netns);
		return CNI_ERR_INVALID_ENV;
	}
	code = hostports_check(eps, req, err, errlen);
	if (!code)
		code = request_check_bandwidth(&req->bw, eps->pod_mtu, err, errlen);
	if (code)
		return code;
	code = CNI_ERR_INTERNAL;
	memcpy(ep.ports, req->ports, sizeof(ep.ports));
	ep.nports = req->nports;
	ep.bw = req->bw;
	snprintf(ep.container_id, sizeof(ep.container_id), "%s", req->container_id);
	snprintf(ep.ifname, sizeof(ep.ifname), "%s", req->ifname);
	snprintf(ep.network, sizeof(ep.network), "%s", req->network);
	snprintf(ep.netns, sizeof(ep.netns), "%s", req->netns);
	snprintf(ep.k8s_namespace, sizeof(ep.k8s_namespace), "%s", req->k8s_namespace);
	snprintf(ep.k8s_pod, sizeof(ep.k8s_pod), "%s", req->k8s_pod);
	snprintf(ep.k8s_uid, sizeof(ep.k8s_uid), "%s", req->k8s_uid);
	endpoint_host_ifname(ep.container_id, ep.ifname, ep.host_ifname, sizeof(ep.host_ifname));

	netns_fd = open_netns(req->netns, err, errlen);
	if (netns_fd < 0) {
		code = CNI_ERR_INVALID_ENV;
		goto cleanup;
	}
	if (retry_pending(eps, err, errlen)) {
		code = CNI_ERR_TRY_AGAIN;
		goto cleanup;
	}
	owner_name(ep.container_id, ep.ifname, owner, sizeof(owner));
	ret = ipam_allocate(eps->ipam, owner, &ep.ip);
	if (ret && ret != -EADDRNOTAVAIL && ret != -EINVAL) {
		state_error(eps, ret, "no address was allocated", err, errlen);
		goto cleanup;
	}
	if (ret) {
		char cidr[24];

		cidr4_format(ipam_range(eps->ipam), cidr, sizeof(cidr));
		snprintf(err, errlen, "cannot allocate an address from pod CIDR %s: %s", cidr,
			 ret == -EADDRNOTAVAIL ? "no free addresses left" : strerror(-ret));
		code = ret == -EADDRNOTAVAIL ? CNI_ERR_TRY_AGAIN : CNI_ERR_INTERNAL;
		goto cleanup;
	}
	/* Record the attempt first: a crash from here on is rolled back at start-up. */
	ret = state_save(eps, &ep);
	if (ret) {
		state_error(eps, ret, "the address was released again, no interface was made",
			    err, errlen);
		goto rollback;
	}
	ret = nl_veth_create(eps->host, ep.host_ifname, ep.ifname, netns_fd, eps->pod_mtu, NULL);
	if (ret) {
		snprintf(err, errlen, "cannot create veth %s with peer %s in %s: %s%s", ep.host_ifname,
			 ep.ifname, ep.netns, strerror(-ret),
			 ret == -EEXIST ? " (an interface of that name exists in the pod or on the node)"
					: "");
		goto rollback;
	}
	ret = nl_link_get(eps->host, ep.host_ifname, &link);
	if (ret) {
		snprintf(err, errlen, "cannot read %s: %s", ep.host_ifname, strerror(-ret));
		goto rollback;
	}
	ep.host_ifindex = link.ifindex;
	memcpy(ep.host_mac, link.mac, 6);
	note_on_veth(eps, &ep);
	ret = setup_pod_side(eps, &ep, netns_fd, err, errlen);
	if (ret)
		goto rollback;
	ret = setup_host_side(eps, &ep, err, errlen);
	if (ret)
		goto rollback;
	ret = datapath_attach(eps->dp, ep.host_ifindex, ep.host_ifname, err, errlen);
	if (ret)
		goto rollback;
	/* The buckets before the endpoint map's flags (the policy sync after
	 * ADD): a flag never points at a missing bucket for long. Fresh ones:
	 * the new veth's ifindex may be an old veth's whose buckets a failed
	 * removal left, and bw_apply keeps a bucket of the same size. */
	bw_remove(eps->dp, ep.host_ifindex);
	ret = bw_ep_flags(&ep.bw) ? bw_apply(eps->dp, ep.host_ifindex, &ep.bw, err, errlen) : 0;
	if (ret)
		goto rollback;
	ep.state = EP_READY;
	ret = state_save(eps, &ep);
	if (ret) {
		state_error(eps, ret, "the interface and address were removed again", err, errlen);
		goto rollback;
	}
	cur = append(eps, &ep);
	if (!cur) {
		snprintf(err, errlen, "out of memory");
		goto rollback;
	}
	*result = endpoint_result(cur, ipam_router(eps->ipam));
	code = 0;
	goto cleanup;
rollback:
	teardown(eps, &ep);
cleanup:
	if (netns_fd >= 0)
		close(netns_fd);
	return code;
}

struct owner_match {
	const char *owner;
	uint32_t ip;
};

static int match_owner(uint32_t ip, const char *owner, void *arg)
{
	struct owner_match *m = arg;

	if (strcmp(owner, m->owner))
		return 0;
	m->ip = ip;
	return 1;
}

int endpoints_del(struct endpoints *eps, const struct cni_req *req, char *err, size_t errlen)
{
	char owner[IPAM_OWNER_MAX];
	struct owner_match match = { owner, 0 };
	struct endpoint *ep;

	(void)err;
	(void)errlen;
	ep = find(eps, req->container_id, req->ifname);
	if (ep) {
		teardown(eps, ep);
		pr_info("deleted %s/%s (%s)", ep->container_id, ep->ifname, ep->host_ifname);
		forget(eps, ep);
		return 0;
	}
	/* Unknown attachment: nothing to do, but an address may have been
	 * allocated by an ADD interrupted before it saved its state. */
	owner_name(req->container_id, req->ifname, owner, sizeof(owner));
	if (ipam_foreach(eps->ipam, match_owner, &match) > 0)
		release_address(eps, match.ip, owner, owner);
	return 0;
}

/* The address of prevResult's ips[], when the runtime sent one. */
static int prev_result_has_ip(const json_t *prev, uint32_t want)
{
	const json_t *ips = json_object_get(prev, "ips"), *e;
	size_t i;

	json_array_foreach(ips, i, e) {
		const char *addr = json_string_value(json_object_get(e, "address"));
		char buf[24];
		uint32_t ip;

		if (!addr || snprintf(buf, sizeof(buf), "%s", addr) >= (int)sizeof(buf))
			continue;
		buf[strcspn(buf, "/")] = '\0';
		if (!ip4_parse(buf, &ip) && ip == want)
			return 1;
	}
	return 0;
}

int endpoints_check(struct endpoints *eps, const struct cni_req *req, char *err, size_t errlen)
{
	struct in_addr ip, router = { htonl(ipam_router(eps->ipam)) }, any = { 0 };
	struct nl_handle *pod = NULL;
	struct sluice_endpoint value;
	struct nl_link host, link;
	struct endpoint *ep;
	int netns_fd = -1, ret, code = CNI_ERR_INTERNAL;

	ep = find(eps, req->container_id, req->ifname);
	if (!ep || ep->state != EP_READY) {
		snprintf(err, errlen, "no sluice attachment %s for container %s", req->ifname,
			 req->container_id);
		return CNI_ERR_UNKNOWN_CONTAINER;
	}
	ip.s_addr = htonl(ep->ip);
	if (req->prev_result && !prev_result_has_ip(req->prev_result, ep->ip)) {
		snprintf(err, errlen, "prevResult does not list the address %s holds (%s)",
			 req->ifname, inet_ntoa(ip));
		goto cleanup;
	}
	if (nl_link_get(eps->host, ep->host_ifname, &host) || host.ifindex != ep->host_ifindex ||
	    !host.up) {
		snprintf(err, errlen, "host veth %s (ifindex %d) is missing or down", ep->host_ifname,
			 ep->host_ifindex);
		goto cleanup;
	}
	if (datapath_check_attached(eps->dp, ep->host_ifindex, ep->host_ifname)) {
		snprintf(err, errlen, "sluice programs are not attached to %s", ep->host_ifname);
		goto cleanup;
	}
	if (datapath_endpoint_get(eps->dp, ip.s_addr, &value) ||
	    (int)value.ifindex != ep->host_ifindex || memcmp(value.pod_mac, ep->pod_mac, 6)) {
		snprintf(err, errlen, "endpoint map entry for %s is missing or stale", inet_ntoa(ip));
		goto cleanup;
	}
	netns_fd = open_netns(req->netns, err, errlen);
	if (netns_fd < 0) {
		code = CNI_ERR_INVALID_ENV;
		goto cleanup;
	}
	ret = nl_open(&pod, netns_fd);
	if (ret) {
		snprintf(err, errlen, "cannot enter %s: %s", req->netns, strerror(-ret));
		goto cleanup;
	}
	if (nl_link_get(pod, ep->ifname, &link) || !link.up || memcmp(link.mac, ep->pod_mac, 6)) {
		snprintf(err, errlen, "interface %s in %s is missing, down or has another MAC",
			 ep->ifname, req->netns);
		goto cleanup;
	}
	if (nl_addr_has4(pod, link.ifindex, ip, 32) != 1) {
		snprintf(err, errlen, "interface %s in %s lacks its address %s/32", ep->ifname,
			 req->netns, inet_ntoa(ip));
		goto cleanup;
	}
	if (nl_route_has4(pod, link.ifindex, any, 0, router) != 1 ||
	    nl_route_has4(pod, link.ifindex, router, 32, any) != 1) {
		snprintf(err, errlen, "routes via the gateway %s are missing in %s", inet_ntoa(router),
			 req->netns);
		goto cleanup;
	}
	code = 0;
cleanup:
	nl_close(pod);
	if (netns_fd >= 0)
		close(netns_fd);
	return code;
}

static int attachment_listed(const json_t *valid, const struct endpoint *ep)
{
	const json_t *a;
	size_t i;

	json_array_foreach(valid, i, a) {
		const char *id = json_string_value(json_object_get(a, "containerId"));
		const char *ifname = json_string_value(json_object_get(a, "ifname"));

		if (id && ifname && !strcmp(id, ep->container_id) && !strcmp(ifname, ep->ifname))
			return 1;
	}
	return 0;
}

/* Release addresses that no endpoint owns: leaks from a crash mid-ADD, and
 * quarantined addresses (release_address) whose state is to be retried. */
struct orphan_scan {
	struct endpoints *eps;
	uint32_t ips[64];
	size_t n;
};

static int collect_orphan(uint32_t ip, const char *owner, void *arg)
{
	struct orphan_scan *s = arg;

	for (size_t i = 0; i < s->eps->n; i++)
		if (s->eps->list[i].ip == ip)
			return 0;
	/* Torn: stays reserved until repair_reservations settles it. */
	if (!strcmp(owner, IPAM_UNKNOWN))
		return 0;
	s->ips[s->n++] = ip;
	return s->n == sizeof(s->ips) / sizeof(s->ips[0]);
}

/* purged: the per-flow state of every address no endpoint holds is gone
 * already (start-up). Stops at the first failure to remove state, leaving
 * those addresses quarantined (a failed scan would fail again at once). */
static unsigned release_orphans(struct endpoints *eps, int purged)
{
	struct orphan_scan scan = { .eps = eps };
	struct flows_purge_stats st = { 0 };
	unsigned released = 0, before;
	char why[256], addr[16];
	int more;

	eps->quarantine_pending = 0;
	do {
		before = released;
		scan.n = 0;
		more = ipam_foreach(eps->ipam, collect_orphan, &scan) > 0;
		if (!purged && scan.n) {
			uint32_t sorted[sizeof(scan.ips) / sizeof(scan.ips[0])];

			memcpy(sorted, scan.ips, scan.n * sizeof(sorted[0]));
			if (flows_purge_addrs(eps->dp, sorted, scan.n, &st, why, sizeof(why))) {
				for (size_t i = 0; i < scan.n; i++) {
					ip4_format(scan.ips[i], addr, sizeof(addr));
					if (ipam_quarantine(eps->ipam, scan.ips[i], NULL))
						continue;
					pr_err("address %s (no pod holds it): cannot remove its per-flow "
					       "state: %s; quarantined (not handed out) until a later "
					       "ADD, GC or agent start removes it", addr, why);
				}
				eps->quarantine_pending = 1;
				break;
			}
		}
		for (size_t i = 0; i < scan.n; i++) {
			int ret = ipam_release(eps->ipam, scan.ips[i], NULL);

			if (!ret) {
				released++;
				continue;
			}
			ip4_format(scan.ips[i], addr, sizeof(addr));
			pr_warn("cannot release address %s (no pod holds it): %s; it stays reserved "
				"until a later GC or agent start", addr, strerror(-ret));
		}
		/* A round that frees nothing (the files cannot be removed: a
		 * read-only state dir) would find the same addresses again. */
	} while (more && released > before);
	if (st.removed)
		pr_info("removed %zu per-flow entr%s of addresses no pod holds", st.removed,
			st.removed == 1 ? "y" : "ies");
	return released;
}

/*
 * Remove the per-flow state of every pod CIDR address that no endpoint
 * holds (except the router's): pods deleted while no agent ran (by an
 * older agent that left their state behind, or a crash between DEL's
 * steps) would otherwise hand their flows to the next pod of that address.
 * Until this succeeds, no address is handed out.
 */
static int purge_free_range(struct endpoints *eps, char *err, size_t errlen)
{
	struct flows_purge_stats st = { 0 };
	char cidr[24], why[256];
	struct timespec t0;
	uint32_t *keep;
	int ret;

	cidr4_format(ipam_range(eps->ipam), cidr, sizeof(cidr));
	keep = calloc(eps->n + 1, sizeof(*keep));
	if (!keep) {
		snprintf(err, errlen, "out of memory");
		eps->range_purge_pending = 1;
		return -ENOMEM;
	}
	keep[0] = ipam_router(eps->ipam);
	for (size_t i = 0; i < eps->n; i++)
		keep[i + 1] = eps->list[i].ip;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ret = flows_purge_range(eps->dp, ipam_range(eps->ipam), keep, eps->n + 1, &st, why,
				sizeof(why));
	free(keep);
	eps->range_purge_pending = ret != 0;
	if (ret) {
		snprintf(err, errlen, "cannot remove the per-flow state of the addresses of pod CIDR "
			 "%s that no pod holds: %s; no address is handed out until that succeeds "
			 "(retried on every ADD)", cidr, why);
		return ret;
	}
	pr_info("removed %zu per-flow entr%s of pod CIDR %s addresses no pod holds (%zu scanned, "
		"%.1f ms)", st.removed, st.removed == 1 ? "y" : "ies", cidr, st.scanned,
		ms_since(&t0));
	return 0;
}

/* The retries owed before an address may be handed out. */
static int retry_pending(struct endpoints *eps, char *err, size_t errlen)
{
	int ret;

	if (eps->range_purge_pending) {
		ret = purge_free_range(eps, err, errlen);
		if (ret)
			return ret;
		release_orphans(eps, 1);
	}
	if (eps->quarantine_pending)
		release_orphans(eps, 0);
	return 0;
}

int endpoints_gc(struct endpoints *eps, const char *network, const json_t *valid,
		 json_t **removed, char *err, size_t errlen)
{
	json_t *out = json_array();
	size_t i = 0;
	int purged;

	if (!out) {
		snprintf(err, errlen, "out of memory");
		return CNI_ERR_INTERNAL;
	}
	if (!json_is_array(valid)) {
		snprintf(err, errlen, "cni.dev/valid-attachments must be an array");
		json_decref(out);
		return CNI_ERR_INVALID_CONFIG;
	}
	while (i < eps->n) {
		struct endpoint *ep = &eps->list[i];

		if (strcmp(ep->network, network) || attachment_listed(valid, ep)) {
			i++;
			continue;
		}
		json_array_append_new(out, json_pack("{s:s, s:s}", "containerId", ep->container_id,
						     "ifname", ep->ifname));
		pr_info("gc: removing %s/%s (%s)", ep->container_id, ep->ifname, ep->host_ifname);
		teardown(eps, ep);
		forget(eps, ep); /* swaps the last into slot i: look at i again */
	}
	purged = 0;
	if (eps->range_purge_pending) {
		purged = !purge_free_range(eps, err, errlen);
		if (!purged)
			pr_err("gc: %s", err);
	}
	release_orphans(eps, purged);
	*removed = out;
	return 0;
}

json_t *endpoints_list(struct endpoints *eps)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < eps->n; i++) {
		const struct endpoint *ep = &eps->list[i];
		json_t *obj = endpoint_to_json(ep);

		/* The record's limits, and the buckets' counters. */
		if (obj && bw_limits_any(&ep->bw))
			json_object_set_new(obj, "bandwidth",
					    bw_status_json(eps->dp, ep->host_ifindex, &ep->bw));
		json_array_append_new(arr, obj);
	}
	return arr;
}

size_t endpoints_count(const struct endpoints *eps)
{
	return eps->n;
}

const struct endpoint *endpoints_at(const struct endpoints *eps, size_t i)
{
	return i < eps->n ? &eps->list[i] : NULL;
}

/* Recovery could not attach this agent's programs to ep's veth. If an
 * earlier agent's still police both directions, they keep doing so on the
 * shared maps; if not, the pod would send and receive with no source check
 * and no policy: its host veth is set down (fail closed) until an agent
 * start attaches the programs, which sets it up again. */
static void cut_off_unpoliced(struct endpoints *eps, const struct endpoint *ep,
			      const struct nl_link *link, int clsact)
{
	int ret;

	if (datapath_policed(link->ifindex, clsact)) {
		pr_warn("endpoint %s/%s: %s keeps the programs already attached to it",
			ep->container_id, ep->ifname, ep->host_ifname);
		return;
	}
	ret = nl_link_set_flags(eps->host, link->ifindex, 0, IFF_UP);
	pr_err("endpoint %s/%s (pod %s/%s): no sluice program polices %s in both directions; %s: "
	       "see what else holds the device's qdisc and filters (tc qdisc show dev %s; "
	       "tc filter show ... egress), remove it, then restart "
	       "the agent or recreate the pod",
	       ep->container_id, ep->ifname, ep->k8s_namespace, ep->k8s_pod, ep->host_ifname,
	       ret ? "CANNOT set it down, the pod is not policed" : "set down, the pod is cut off",
	       ep->host_ifname);
}

/* Bring one saved endpoint in line with this agent's datapath. */
static void recover_one(struct endpoints *eps, struct endpoint *ep)
{
	struct sluice_endpoint value, cur;
	struct nl_link link;
	char err[512], qdisc[32];
	int clsact;

	if (nl_link_get(eps->host, ep->host_ifname, &link)) {
		/* The pod's netns went away while no agent ran; the runtime's
		 * DEL will remove the rest. */
		pr_warn("endpoint %s/%s: %s is gone; keeping the record until DEL",
			ep->container_id, ep->ifname, ep->host_ifname);
		datapath_detach(eps->dp, 0, ep->host_ifname);
		return;
	}
	if (link.ifindex != ep->host_ifindex) {
		ep->host_ifindex = link.ifindex;
		state_save(eps, ep);
	}
	/* Something put another qdisc (`ingress`) where sluice's clsact was:
	 * tc filters would "attach" to its ingress block, to_pod too, and the
	 * pod would receive unpoliced. */
	clsact = nl_qdisc_kind(eps->host, link.ifindex, TC_H_INGRESS, qdisc, sizeof(qdisc)) != 1 ||
		 !strcmp(qdisc, "clsact");
	if (!clsact && datapath_attach_mode(eps->dp) != ATTACH_TCX) {
		pr_err("endpoint %s/%s: %s holds a qdisc of kind %s where sluice's clsact belongs: its "
		       "programs cannot be attached in tc mode", ep->container_id, ep->ifname,
		       ep->host_ifname, qdisc);
		cut_off_unpoliced(eps, ep, &link, 0);
	} else if (datapath_attach(eps->dp, ep->host_ifindex, ep->host_ifname, err, sizeof(err))) {
		pr_err("endpoint %s/%s: %s", ep->container_id, ep->ifname, err);
		cut_off_unpoliced(eps, ep, &link, clsact);
	} else if (!link.up && !nl_link_set_up(eps->host, link.ifindex)) {
		pr_info("endpoint %s/%s: %s is policed again and back up", ep->container_id,
			ep->ifname, ep->host_ifname);
	}
	/* Buckets that outlived the agent are kept as they are. */
	if (bw_apply(eps->dp, ep->host_ifindex, &ep->bw, err, sizeof(err)))
		pr_err("endpoint %s/%s: %s; its bandwidth is not limited", ep->container_id,
		       ep->ifname, err);
	value = bpf_value(ep);
	/* Keep the identity and isolation the compiler gave it: the pod must
	 * not be open for a moment while the new agent starts. The compiler
	 * rewrites the entry right after recovery. */
	if (!datapath_endpoint_get(eps->dp, htonl(ep->ip), &cur)) {
		value.flags = cur.flags;
		value.identity = cur.identity;
	} else {
		/* New maps (a node restart): closed until the compiler has
		 * judged it, also if that first sync fails. */
		value.flags = SLUICE_EP_F_ISO_INGRESS | SLUICE_EP_F_ISO_EGRESS;
		value.identity = SLUICE_ID_UNKNOWN;
	}
	value.flags &= ~(SLUICE_EP_F_BW_EGRESS | SLUICE_EP_F_BW_INGRESS);
	value.flags |= bw_ep_flags(&ep->bw);
	if (datapath_endpoint_put(eps->dp, htonl(ep->ip), &value))
		pr_err("endpoint %s/%s: cannot restore its map entry", ep->container_id, ep->ifname);
}

/* A record that cannot be read: rebuilt from the kernel, or, when nothing
 * there backs it, its address released and the record removed. */
static int recover_torn(struct endpoints *eps, const char *name, const char *why)
{
	struct repair_ctx r = { eps->host, eps->dp, eps->ipam, eps->state_dir };
	char addr[16] = "no address";
	struct endpoint ep;
	int ret = repair_endpoint(&r, name, &ep);

	if (ep.ip)
		ip4_format(ep.ip, addr, sizeof(addr));
	if (ret == -EINVAL) {
		ret = sf_quarantine(eps->statefd, name);
		pr_warn("repair: %s/endpoints/%s is unreadable (%s) and names no attachment: %s",
			eps->state_dir, name, why, ret ? strerror(-ret) : "moved to <name>.corrupt");
		return 0;
	}
	if (ret) {
		pr_warn("repair: %s/endpoints/%s is unreadable (%s) and %s: releasing %s and "
			"removing the record", eps->state_dir, name, why,
			ep.host_ifindex ? "neither the endpoint map nor IPAM gives its veth an "
					  "address (the veth goes too)" : "no veth backs it",
			addr);
		teardown(eps, &ep);
		return 0;
	}
	if (!append(eps, &ep))
		return -ENOMEM;
	ret = state_save(eps, &ep);
	pr_warn("repair: %s/endpoints/%s is unreadable (%s): rebuilt from the kernel (veth %s, "
		"address %s, pod %s/%s; host ports and bandwidth limits unknown)%s%s", eps->state_dir, name, why,
		ep.host_ifname, addr, ep.k8s_namespace[0] ? ep.k8s_namespace : "-",
		ep.k8s_pod[0] ? ep.k8s_pod : "-", ret ? "; cannot rewrite it: " : "",
		ret ? strerror(-ret) : "");
	return 0;
}

/* Temporary files a crash left: lib/statefile's, and the ".<name>.tmp"
 * of the versions before it. */
static void remove_temporaries(struct endpoints *eps)
{
	struct dirent *de;
	DIR *d;

	sf_remove_temporaries(eps->statefd);
	d = sf_opendir(eps->statefd);
	if (!d)
		return;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);

		if (de->d_name[0] == '.' && len > 5 && !strcmp(de->d_name + len - 4, ".tmp"))
			unlinkat(eps->statefd, de->d_name, 0);
	}
	closedir(d);
}

static int load_state(struct endpoints *eps, char *err, size_t errlen)
{
	struct dirent *de;
	int ret = 0;
	DIR *d;

	remove_temporaries(eps);
	d = sf_opendir(eps->statefd);
	if (!d)
		return -errno;
	while (!ret && (de = readdir(d))) {
		size_t len = strlen(de->d_name);
		json_error_t jerr;
		struct endpoint ep;
		char why[256];
		json_t *obj;
		int f;

		if (de->d_name[0] == '.' || len < 6 || strcmp(de->d_name + len - 5, ".json"))
			continue;
		f = openat(eps->statefd, de->d_name, O_RDONLY | O_CLOEXEC);
		obj = f >= 0 ? json_loadfd(f, 0, &jerr) : NULL;
		if (f >= 0)
			close(f);
		if (!obj || endpoint_from_json(obj, &ep, why, sizeof(why))) {
			ret = recover_torn(eps, de->d_name, obj ? why : jerr.text);
			json_decref(obj);
			continue;
		}
		json_decref(obj);
		if (ep.state != EP_READY) {
			pr_info("rolling back interrupted ADD of %s/%s", ep.container_id, ep.ifname);
			teardown(eps, &ep);
			continue;
		}
		if (!append(eps, &ep))
			ret = -ENOMEM;
	}
	closedir(d);
	if (ret)
		snprintf(err, errlen, "out of memory");
	return ret;
}

static int setup_router(struct endpoints *eps, char *err, size_t errlen)
{
	struct in_addr router = { htonl(ipam_router(eps->ipam)) };
	struct nl_link host, peer;
	int ret;

	ret = nl_link_get(eps->host, ROUTER_IFNAME, &host);
	if (ret == -ENODEV) {
		ret = nl_veth_create(eps->host, ROUTER_IFNAME, ROUTER_PEER_IFNAME, -1, 0, NULL);
		if (!ret)
			ret = nl_link_get(eps->host, ROUTER_IFNAME, &host);
	}
	if (!ret)
		ret = nl_link_get(eps->host, ROUTER_PEER_IFNAME, &peer);
	if (!ret)
		ret = nl_link_set_up(eps->host, peer.ifindex);
	if (!ret)
		ret = nl_link_set_up(eps->host, host.ifindex);
	if (!ret) {
		ret = nl_addr_add4(eps->host, host.ifindex, router, 32);
		if (ret == -EEXIST)
			ret = 0;
	}
	if (ret)
		snprintf(err, errlen, "cannot set up the router device %s with %s/32: %s",
			 ROUTER_IFNAME, inet_ntoa(router), strerror(-ret));
	return ret;
}

/* Buckets of no endpoint's limit (a crash between a DEL's steps). */
static void prune_buckets(struct endpoints *eps)
{
	int *keep = calloc(eps->n + 1, sizeof(*keep));
	uint32_t *flags = calloc(eps->n + 1, sizeof(*flags));
	size_t removed;

	if (keep && flags) {
		for (size_t i = 0; i < eps->n; i++) {
			keep[i] = eps->list[i].host_ifindex;
			flags[i] = bw_ep_flags(&eps->list[i].bw);
		}
		removed = bw_prune(eps->dp, keep, flags, eps->n);
		if (removed)
			pr_info("removed %zu bandwidth bucket(s) no endpoint's limit uses", removed);
	}
	free(keep);
	free(flags);
}

int endpoints_open(struct endpoints **out, struct datapath *dp, struct ipam *ipam,
		   const char *state_dir, char *err, size_t errlen)
{
	struct endpoints *eps;
	char path[PATH_MAX];
	unsigned released;
	int ret;

	eps = calloc(1, sizeof(*eps));
	if (!eps)
		return -ENOMEM;
	eps->dp = dp;
	eps->ipam = ipam;
	eps->statefd = -1;
	snprintf(eps->state_dir, sizeof(eps->state_dir), "%s", state_dir);
	ret = nl_open(&eps->host, -1);
	if (ret) {
		snprintf(err, errlen, "cannot open rtnetlink: %s", strerror(-ret));
		goto cleanup;
	}
	if (snprintf(path, sizeof(path), "%s/endpoints", state_dir) >= (int)sizeof(path)) {
		ret = -ENAMETOOLONG;
		snprintf(err, errlen, "--state-dir path too long");
		goto cleanup;
	}
	if (mkdir(path, 0700) && errno != EEXIST) {
		ret = -errno;
		snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
		goto cleanup;
	}
	eps->statefd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (eps->statefd < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		goto cleanup;
	}
	ret = setup_router(eps, err, errlen);
	if (ret)
		goto cleanup;
	/* Routing for traffic that leaves through the host stack. */
	ret = nl_sysctl_set(eps->host, "net/ipv4/ip_forward", "1");
	if (ret)
		pr_warn("cannot switch on net.ipv4.ip_forward: %s; pods reach only pods on this "
			"node unless forwarding is on (in a container, mount the host's /proc/sys "
			"and pass --proc-sys)", strerror(-ret));
	ret = 0;
	ret = load_state(eps, err, errlen);
	if (ret)
		goto cleanup;
	for (size_t i = 0; i < eps->n; i++)
		recover_one(eps, &eps->list[i]);
	prune_buckets(eps);
	{
		struct repair_ctx r = { eps->host, eps->dp, eps->ipam, eps->state_dir };

		repair_reservations(&r, eps->list, eps->n);
	}
	if (purge_free_range(eps, err, errlen))
		pr_err("%s", err);
	released = release_orphans(eps, !eps->range_purge_pending);
	if (released)
		pr_info("released %u address(es) no endpoint owned", released);
	*out = eps;
	return 0;
cleanup:
	endpoints_close(eps);
	return ret;
}

void endpoints_close(struct endpoints *eps)
{
	if (!eps)
		return;
	nl_close(eps->host);
	if (eps->statefd >= 0)
		close(eps->statefd);
	free(eps->list);
	free(eps);
}
