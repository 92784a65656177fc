// SPDX-License-Identifier: Apache-2.0
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/magic.h>
#include <linux/ethtool.h>
#include <linux/if_link.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "loader.h"
#include "log.h"
#include "migrate.h"
#include "lxc.skel.h"
#include "host.skel.h"
#include "overlay.skel.h"
#include "sock.skel.h"
#include "xdp.skel.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif
#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

/* libbpf 1.1 predates tcx; the kernel (6.6+) knows these attach types. */
#define SLUICE_BPF_TCX_INGRESS 46
#define SLUICE_BPF_TCX_EGRESS  47

#define TC_HANDLE   1
#define TC_PRIORITY 1

/*
 * One object per entry file (bpf/lxc.bpf.c, host.bpf.c, overlay.bpf.c).
 * Their pinned maps (LIBBPF_PIN_BY_NAME) are one map each: the first object
 * loaded creates or reuses the pin, the others reuse it. A map only one
 * entry file uses (the masquerade's) is in that object only. The hop cache
 * (sluice_hop4_v1, bpf/lib/origin.h, unpinned) is each object's own copy:
 * a cache of the kernel's route and neighbour tables may be (from_netdev
 * and from_overlay each fill theirs), and it was never kept across reloads
 * either; lxc.bpf.o's programs never use it, so it is not created there.
 */
struct datapath {
	struct lxc_bpf *lxc;		/* from_pod, to_pod */
	struct host_bpf *host;		/* from_netdev, to_netdev */
	struct overlay_bpf *overlay;	/* from_overlay, to_overlay */
	struct sock_bpf *sock;		/* cgroup hooks; only with --kube-proxy-replacement */
	struct xdp_bpf *xdp;		/* from_netdev_xdp (the uplink's first stage) */
	enum attach_mode mode;
	bool tcx_probed;		/* mode is the probe's answer, not --attach-mode tc */
	uint32_t maglev_m;	/* entries of a Maglev table; 0: --lb-algorithm random */
	char bpffs[1024]; /* short enough that pin paths below it always fit */
};

const char *attach_mode_name(enum attach_mode mode)
{
	switch (mode) {
	case ATTACH_TCX: return "tcx";
	case ATTACH_TC: return "tc";
	default: return "none";
	}
}

enum attach_mode datapath_attach_mode(const struct datapath *dp)
{
	return dp->mode;
}

int datapath_tcx_available(const struct datapath *dp)
{
	return dp->tcx_probed ? dp->mode == ATTACH_TCX : -1;
}

size_t datapath_map_names(const struct datapath *dp, const char **v, size_t max)
{
	const struct bpf_object *objs[] = {
		dp->lxc ? dp->lxc->obj : NULL, dp->host ? dp->host->obj : NULL,
		dp->overlay ? dp->overlay->obj : NULL, dp->sock ? dp->sock->obj : NULL,
		dp->xdp ? dp->xdp->obj : NULL,
	};
	size_t n = 0;

	for (size_t o = 0; o < sizeof(objs) / sizeof(objs[0]); o++) {
		const struct bpf_map *m;

		if (!objs[o])
			continue;
		bpf_object__for_each_map(m, objs[o]) {
			const char *name = bpf_map__name(m);
			size_t i;

			/* Only the pinned ones (LIBBPF_PIN_BY_NAME); .rodata,
			 * scratch maps and the like are each object's own. */
			if (!bpf_map__pin_path(m))
				continue;
			for (i = 0; i < n && i < max; i++)
				if (!strcmp(v[i], name))
					break;
			if (i < n)
				continue;
			if (n < max)
				v[n] = name;
			n++;
		}
	}
	return n;
}

size_t datapath_objects(struct dp_object *v, size_t max)
{
	const struct dp_object all[] = {
		{ "lxc.bpf.o", NULL, 0 }, { "host.bpf.o", NULL, 0 }, { "overlay.bpf.o", NULL, 0 },
		{ "sock.bpf.o", NULL, 0 }, { "xdp.bpf.o", NULL, 0 },
	};
	size_t n = sizeof(all) / sizeof(all[0]);

	for (size_t i = 0; i < n && i < max; i++)
		v[i] = all[i];
	if (max >= n) {
		v[0].elf = lxc_bpf__elf_bytes(&v[0].size);
		v[1].elf = host_bpf__elf_bytes(&v[1].size);
		v[2].elf = overlay_bpf__elf_bytes(&v[2].size);
		v[3].elf = sock_bpf__elf_bytes(&v[3].size);
		v[4].elf = xdp_bpf__elf_bytes(&v[4].size);
	}
	return n;
}

static int is_bpffs(const char *path)
{
	struct statfs st;

	if (statfs(path, &st))
		return -errno;
	return st.f_type == BPF_FS_MAGIC;
}

static int mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) && errno != EEXIST)
		return -errno;
	return 0;
}

/* The nearest existing ancestor of path decides which filesystem it is on. */
static int ensure_bpffs(const char *dir, char *err, size_t errlen)
{
	char probe[PATH_MAX];
	int ret;

	if (snprintf(probe, sizeof(probe), "%s", dir) >= (int)sizeof(probe))
		return -ENAMETOOLONG;
	while (access(probe, F_OK)) {
		char *slash = strrchr(probe, '/');

		if (!slash || slash == probe) {
			strcpy(probe, "/");
			break;
		}
		*slash = '\0';
	}
	ret = is_bpffs(probe);
	if (ret < 0) {
		snprintf(err, errlen, "cannot stat %s: %s", probe, strerror(-ret));
		return ret;
	}
	if (!ret) {
		if (strncmp(dir, "/sys/fs/bpf/", 12) || is_bpffs("/sys/fs/bpf") != 0) {
			snprintf(err, errlen,
				 "%s is not on a BPF filesystem; mount one first: mount -t bpf bpf %s",
				 dir, probe);
			return -EINVAL;
		}
		if (mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700")) {
			ret = -errno;
			snprintf(err, errlen, "cannot mount bpffs on /sys/fs/bpf: %s", strerror(errno));
			return ret;
		}
		pr_info("mounted bpffs on /sys/fs/bpf");
	}
	ret = mkdir_p(dir, 0700);
	if (!ret) {
		char links[PATH_MAX];

		snprintf(links, sizeof(links), "%s/links", dir);
		ret = mkdir_p(links, 0700);
	}
	if (ret)
		snprintf(err, errlen, "cannot create %s: %s", dir, strerror(-ret));
	return ret;
}

static int is_empty_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int empty = 1;

	if (!d)
		return 0;
	while (empty && (e = readdir(d)))
		empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
	closedir(d);
	return empty;
}

/* Would a tcx link on this kernel work? Probe on loopback with a link that
 * is closed (and so detached) at once. */
static enum attach_mode probe_attach_mode(int prog_fd)
{
	int fd = bpf_link_create(prog_fd, 1, (enum bpf_attach_type)SLUICE_BPF_TCX_INGRESS, NULL);

	if (fd < 0) {
		pr_debug("tcx unavailable (%s); using tc clsact filters", strerror(errno));
		return ATTACH_TC;
	}
	close(fd);
	return ATTACH_TCX;
}

int attach_mode_parse(const char *text, enum attach_mode *mode)
{
	if (!strcmp(text, "auto"))
		*mode = ATTACH_NONE;
	else if (!strcmp(text, "tcx"))
		*mode = ATTACH_TCX;
	else if (!strcmp(text, "tc"))
		*mode = ATTACH_TC;
	else
		return -EINVAL;
	return 0;
}

/*
 * The size for the map pinned as name, to set before load: want (0: the
 * object's default). A map already pinned keeps its size: libbpf only reuses a pin
 * whose max_entries matches, and replacing the pin would cut the running
 * pods off the map their programs use. A different setting takes effect
 * once the pin is removed (a node restart). The result goes to every
 * object's copy of the map (set_map_size): libbpf reuses a pin only for an
 * identical definition.
 */
static uint32_t map_size(struct datapath *dp, const char *name, uint32_t want)
{
	struct bpf_map_info info = { 0 };
	__u32 len = sizeof(info);
	char path[1100];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dp->bpffs, name);
	fd = bpf_obj_get(path);
	if (fd >= 0) {
		if (!bpf_obj_get_info_by_fd(fd, &info, &len) && info.max_entries) {
			if (want && want != info.max_entries)
				pr_warn("map %s stays at %u entries (pinned at %s), not the %u asked "
					"for: the new size applies once the pin is removed (node "
					"restart, or rm %s, which interrupts running pods)",
					name, info.max_entries, path, want, path);
			want = info.max_entries;
		}
		close(fd);
	}
	return want;
}

static void set_map_size(struct bpf_map *map, uint32_t size)
{
	if (size)
		bpf_map__set_max_entries(map, size);
}

/* The runtime settings (bpf/lib/config.h), in the rodata's own form. */
struct datapath_config {
	__u32 routing;
	__u32 vxlan_ifindex;
	__u32 masquerade;
	__be32 node_ip;
	__u32 nat_port_min;
	__u32 nat_port_max;
	__u32 lb;
	__u64 host_netns_cookie;
	__u32 maglev_m;
	__be32 pod_net;
	__be32 pod_mask;
	__u32 flows;
};

/* Each skeleton's rodata is a type of its own with the same cfg_* members:
 * one macro, not three copies of the assignments. Ports left 0 keep the
 * object's default range. */
#define SET_CONFIG(skel, c)                                                     \
	do {                                                                    \
		(skel)->rodata->cfg_routing = (c)->routing;                     \
		(skel)->rodata->cfg_vxlan_ifindex = (c)->vxlan_ifindex;         \
		(skel)->rodata->cfg_masquerade = (c)->masquerade;               \
		(skel)->rodata->cfg_node_ip = (c)->node_ip;                     \
		(skel)->rodata->cfg_lb = (c)->lb;                               \
		(skel)->rodata->cfg_host_netns_cookie = (c)->host_netns_cookie; \
		(skel)->rodata->cfg_maglev_m = (c)->maglev_m;                   \
		(skel)->rodata->cfg_pod_net = (c)->pod_net;                     \
		(skel)->rodata->cfg_pod_mask = (c)->pod_mask;                   \
		(skel)->rodata->cfg_flows = (c)->flows;                         \
		if ((c)->nat_port_min) {                                        \
			(skel)->rodata->cfg_nat_port_min = (c)->nat_port_min;   \
			(skel)->rodata->cfg_nat_port_max = (c)->nat_port_max;   \
		}                                                               \
	} while (0)

/* The same maps sized alike in each object. */
#define SET_SIZES(skel, pol, deny, ipc)                                         \
	do {                                                                    \
		set_map_size((skel)->maps.sluice_pol_v1, pol);                  \
		set_map_size((skel)->maps.sluice_deny_v1, deny);                \
		set_map_size((skel)->maps.sluice_ipc_v2, ipc);                  \
	} while (0)

static int load_failed(struct datapath *dp, const char *obj, int ret, char *err, size_t errlen)
{
	snprintf(err, errlen,
		 "cannot load the BPF object %s: %s (pins in %s); a pinned map from an "
		 "incompatible version is removed with: rm -rf %s (this interrupts running pods)",
		 obj, strerror(-ret), dp->bpffs, dp->bpffs);
	return ret;
}

/* SO_NETNS_COOKIE of the calling thread's network namespace. */
static int netns_cookie(__u64 *cookie)
{
	socklen_t len = sizeof(*cookie);
	int fd, ret = 0;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, cookie, &len))
		ret = -errno;
	close(fd);
	return ret;
}

/*
 * sock.bpf.o includes lib/lb.h, and with it the definitions of the pod
 * datapath's maps (tracking, policy, endpoints) its programs never use;
 * xdp.bpf.o includes lib/policy.h for the ipcache, and with it the policy
 * tries. Only the maps an object's programs use are created (or their pins
 * reused), so the object does not hold a second reference to the others
 * or depend on their sizes.
 */
static void maps_only_used(struct bpf_object *obj, const char *const *used, size_t nused)
{
	struct bpf_map *map;

	bpf_object__for_each_map(map, obj) {
		int keep = bpf_map__is_internal(map);

		for (size_t i = 0; !keep && i < nused; i++)
			keep = !strcmp(bpf_map__name(map), used[i]);
		if (!keep)
			bpf_map__set_autocreate(map, false);
	}
}

static const char *const sock_maps[] = { "sluice_svc4_v1", "sluice_be4_v1", "sluice_lbrn4_v1",
					 "sluice_lbsk4_v1", "sluice_stats_v2", "sluice_mgl4_v1",
					 "sluice_aff4_v1" };
/* xdp.bpf.o's stage 2 (north-south Services, bpf/lib/nodeport_xdp.h) uses
 * the Service, tracking and NAT maps too, and a hop cache of its own (not
 * pinned, as the other objects' are not). */
static const char *const xdp_maps[] = { SLUICE_MAP_METRICS, SLUICE_MAP_ENDPOINTS,
					SLUICE_MAP_IPCACHE, SLUICE_MAP_PF_LPM,
					SLUICE_MAP_PF_HOST, SLUICE_MAP_PF_PORT,
					SLUICE_MAP_PF_CFG, SLUICE_MAP_PF_ENTCNT,
					SLUICE_MAP_PF_RULCNT, SLUICE_MAP_XDP_STATE,
					SLUICE_MAP_XDP_FT, SLUICE_MAP_LB_SVC,
					SLUICE_MAP_LB_BE, SLUICE_MAP_LB_RNAT, SLUICE_MAP_LB_MGL,
					SLUICE_MAP_LB_AFF, SLUICE_MAP_CT,
					SLUICE_MAP_SNAT, SLUICE_MAP_RNAT,
					SLUICE_MAP_FRAG, "sluice_hop4_v1" };

int datapath_open(struct datapath **out, const char *bpffs_dir, const struct datapath_opts *o,
		  char *err, size_t errlen)
{
	static const struct datapath_opts defaults = { .mode = ATTACH_TC };
	LIBBPF_OPTS(bpf_object_open_opts, opts);
	struct datapath_config cfg = { 0 };
	uint32_t pol_size, deny_size, ipc_size;
	const char *obj = NULL;
	int inner_fd = -1;
	enum attach_mode mode;
	struct datapath *dp;
	int ret;

	if (!o)
		o = &defaults;
	mode = o->mode;
	dp = calloc(1, sizeof(*dp));
	if (!dp)
		return -ENOMEM;
	if (snprintf(dp->bpffs, sizeof(dp->bpffs), "%s", bpffs_dir) >= (int)sizeof(dp->bpffs)) {
		ret = -ENAMETOOLONG;
		snprintf(err, errlen, "--bpffs path too long");
		goto cleanup;
	}
	ret = ensure_bpffs(dp->bpffs, err, errlen);
	if (ret)
		goto cleanup;
	/* One pin directory for every object: each reuses the maps the
	 * first one loaded pinned (or a previous agent did). */
	opts.pin_root_path = dp->bpffs;
	obj = "lxc.bpf.o";
	dp->lxc = lxc_bpf__open_opts(&opts);
	if (dp->lxc) {
		obj = "host.bpf.o";
		dp->host = host_bpf__open_opts(&opts);
	}
	if (dp->host) {
		obj = "overlay.bpf.o";
		dp->overlay = overlay_bpf__open_opts(&opts);
	}
	if (dp->overlay && o->lb) {
		obj = "sock.bpf.o";
		dp->sock = sock_bpf__open_opts(&opts);
	}
	if (dp->overlay && (!o->lb || dp->sock)) {
		obj = "xdp.bpf.o";
		dp->xdp = xdp_bpf__open_opts(&opts);
	}
	if (!dp->xdp) {
		ret = -errno;
		snprintf(err, errlen, "cannot open the embedded BPF object %s: %s", obj,
			 strerror(errno));
		goto cleanup;
	}
	cfg.routing = o->routing;
	cfg.vxlan_ifindex = (__u32)o->vxlan_ifindex;
	cfg.masquerade = o->masquerade && o->node_ip;
	cfg.node_ip = htonl(o->node_ip);
	cfg.lb = o->lb != 0;
	cfg.flows = !o->flows_off;
	/* The table size is rodata even with --lb-algorithm random: no
	 * Service has the MAGLEV flag then, and the inner template needs a
	 * size. */
	dp->maglev_m = o->maglev_m;
	cfg.maglev_m = o->maglev_m ? o->maglev_m : SLUICE_MAGLEV_M_DEFAULT;
	if (o->nat_port_min && o->nat_port_min <= o->nat_port_max) {
		cfg.nat_port_min = o->nat_port_min;
		cfg.nat_port_max = o->nat_port_max;
	}
	if (o->pod_prefix > 0 && o->pod_prefix <= 32) {
		uint32_t mask = o->pod_prefix == 32 ? 0xffffffffu : ~(0xffffffffu >> o->pod_prefix);

		cfg.pod_mask = htonl(mask);
		cfg.pod_net = htonl(o->pod_net & mask);
	}
	SET_CONFIG(dp->lxc, &cfg);
	SET_CONFIG(dp->host, &cfg);
	SET_CONFIG(dp->overlay, &cfg);
	SET_CONFIG(dp->xdp, &cfg);
	maps_only_used(dp->xdp->obj, xdp_maps, sizeof(xdp_maps) / sizeof(xdp_maps[0]));
	if (dp->sock) {
		ret = netns_cookie(&cfg.host_netns_cookie);
		if (ret) {
			snprintf(err, errlen, "cannot read this network namespace's cookie "
					      "(SO_NETNS_COOKIE, Linux 5.14+): %s; the node's sockets "
					      "cannot be told from pods'", strerror(-ret));
			goto cleanup;
		}
		SET_CONFIG(dp->sock, &cfg);
		maps_only_used(dp->sock->obj, sock_maps, sizeof(sock_maps) / sizeof(sock_maps[0]));
	}
	pol_size = map_size(dp, "sluice_pol_v1", o->policy_map_size);
	deny_size = map_size(dp, "sluice_deny_v1", o->policy_map_size);
	ipc_size = map_size(dp, "sluice_ipc_v2", o->ipcache_map_size);
	SET_SIZES(dp->lxc, pol_size, deny_size, ipc_size);
	SET_SIZES(dp->host, pol_size, deny_size, ipc_size);
	SET_SIZES(dp->overlay, pol_size, deny_size, ipc_size);
	SET_SIZES(dp->xdp, pol_size, deny_size, ipc_size);
	/* from_pod and to_pod never consult the hop cache (the uplink's
	 * origin checks do): no copy of it for them. */
	bpf_map__set_autocreate(dp->lxc->maps.sluice_hop4_v1, false);
	/* Maglev tables hold cfg_maglev_m backend ids: the outer map's
	 * template is made here at that size (libbpf 1.1 crashes resizing
	 * the one it parsed from the object: its inner map has no object). */
	{
		LIBBPF_OPTS(bpf_map_create_opts, in_opts,
			    .map_flags = BPF_F_INNER_MAP | BPF_F_MMAPABLE);

		inner_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "sluice_mgl4_in", sizeof(__u32),
					  sizeof(__u32), cfg.maglev_m, &in_opts);
		if (inner_fd < 0 ||
		    bpf_map__set_inner_map_fd(dp->lxc->maps.sluice_mgl4_v1, inner_fd)) {
			ret = -errno;
			snprintf(err, errlen, "cannot make the Maglev table template of %s "
					      "(%u entries): %s", SLUICE_MAP_LB_MGL, cfg.maglev_m,
				 strerror(errno));
			goto cleanup;
		}
	}
	/* Maps whose layout changed since an older version: converted from
	 * its pins before anything loads (agent/migrate.c). lxc.bpf.o loads
	 * first and holds every such map; the other objects reuse its pins. */
	ret = migrate_maps(dp->lxc->obj, dp->bpffs, err, errlen);
	if (ret)
		goto cleanup;
	ret = lxc_bpf__load(dp->lxc);
	close(inner_fd);
	inner_fd = -1;
	if (ret) {
		load_failed(dp, "lxc.bpf.o (from_pod, to_pod)", ret, err, errlen);
		goto cleanup;
	}
	ret = host_bpf__load(dp->host);
	if (ret) {
		load_failed(dp, "host.bpf.o (from_netdev, to_netdev)", ret, err, errlen);
		goto cleanup;
	}
	ret = overlay_bpf__load(dp->overlay);
	if (ret) {
		load_failed(dp, "overlay.bpf.o (from_overlay, to_overlay)", ret, err, errlen);
		goto cleanup;
	}
	ret = xdp_bpf__load(dp->xdp);
	if (ret) {
		load_failed(dp, "xdp.bpf.o (from_netdev_xdp)", ret, err, errlen);
		goto cleanup;
	}
	if (dp->sock) {
		ret = sock_bpf__load(dp->sock);
		if (ret) {
			load_failed(dp, "sock.bpf.o (cgroup connect4, sendmsg4, recvmsg4, getpeername4)",
				    ret, err, errlen);
			goto cleanup;
		}
	}
	dp->mode = mode == ATTACH_TC ? ATTACH_TC
				     : probe_attach_mode(bpf_program__fd(dp->lxc->progs.from_pod));
	dp->tcx_probed = mode != ATTACH_TC;
	if (mode == ATTACH_TCX && dp->mode != ATTACH_TCX) {
		ret = -EOPNOTSUPP;
		snprintf(err, errlen, "--attach-mode tcx: this kernel has no tcx (6.6 or later); "
				      "use --attach-mode tc or auto");
		goto cleanup;
	}
	*out = dp;
	return 0;
cleanup:
	if (inner_fd >= 0)
		close(inner_fd);
	datapath_close(dp);
	return ret;
}

void datapath_close(struct datapath *dp)
{
	if (!dp)
		return;
	xdp_bpf__destroy(dp->xdp);
	sock_bpf__destroy(dp->sock);
	overlay_bpf__destroy(dp->overlay);
	host_bpf__destroy(dp->host);
	lxc_bpf__destroy(dp->lxc);
	free(dp);
}

static void link_pin_path(const struct datapath *dp, const char *ifname, int ingress, char *buf,
			  size_t len)
{
	snprintf(buf, len, "%s/links/%s_%s", dp->bpffs, ifname, ingress ? "ingress" : "egress");
}

int datapath_prog_fd(struct datapath *dp, int ingress)
{
	return bpf_program__fd(ingress ? dp->lxc->progs.from_pod : dp->lxc->progs.to_pod);
}

static struct bpf_program *node_prog(struct datapath *dp, enum node_hook hook)
{
	switch (hook) {
	case HOOK_OVERLAY: return dp->overlay->progs.from_overlay;
	case HOOK_NETDEV: return dp->host->progs.from_netdev;
	case HOOK_NETDEV_OUT: return dp->host->progs.to_netdev;
	case HOOK_OVERLAY_OUT: return dp->overlay->progs.to_overlay;
	}
	return NULL;
}

int datapath_node_prog_fd(struct datapath *dp, enum node_hook hook)
{
	struct bpf_program *p = node_prog(dp, hook);

	return p ? bpf_program__fd(p) : -EINVAL;
}

int datapath_nomasq_map_fd(struct datapath *dp)
{
	return bpf_map__fd(dp->host->maps.sluice_nomasq_v1);
}

int datapath_endpoint_map_fd(struct datapath *dp)
{
	return bpf_map__fd(dp->lxc->maps.sluice_ep_v2);
}

int datapath_bw_map_fd(struct datapath *dp)
{
	return bpf_map__fd(dp->lxc->maps.sluice_bw_v1);
}

int datapath_metrics_map_fd(struct datapath *dp)
{
	return bpf_map__fd(dp->lxc->maps.sluice_stats_v2);
}

int datapath_ipcache_map_fd(struct datapath *dp)
{
	return bpf_map__fd(dp->lxc->maps.sluice_ipc_v2);
}

int datapath_policy_map_fd(struct datapath *dp)
{
	return bpf_map__fd(dp->lxc->maps.sluice_pol_v1);
}

int datapath_deny_map_fd(struct datapath *dp)
{
	return bpf_map__fd(dp->lxc->maps.sluice_deny_v1);
}

int datapath_ct_map_fd(struct datapath *dp)
{
	return bpf_map__fd(dp->lxc->maps.sluice_ct4_map);
}

int datapath_flow4_map_fd(struct datapath *dp)
{
	return bpf_map__fd(dp->lxc->maps.sluice_flow4_v1);
}

int datapath_flow_rb_fd(struct datapath *dp)
{
	return bpf_map__fd(dp->lxc->maps.sluice_flowrb_v1);
}

int datapath_flow_st_fd(struct datapath *dp)
{
	return bpf_map__fd(dp->lxc->maps.sluice_flowst_v1);
}

int datapath_snat_map_fd(struct datapath *dp)
{
	return bpf_map__fd(dp->host->maps.sluice_snat4_v1);
}

int datapath_rnat_map_fd(struct datapath *dp)
{
	return bpf_map__fd(dp->host->maps.sluice_rnat4_v1);
}

int datapath_lb_svc_map_fd(struct datapath *dp)
{
	return bpf_map__fd(dp->lxc->maps.sluice_svc4_v1);
}

int datapath_lb_be_map_fd(struct datapath *dp)
{
	return bpf_map__fd(dp->lxc->maps.sluice_be4_v1);
}

int datapath_lb_rnat_map_fd(struct datapath *dp)
{
	return bpf_map__fd(dp->lxc->maps.sluice_lbrn4_v1);
}

int datapath_lb_maglev_map_fd(struct datapath *dp)
{
	return bpf_map__fd(dp->lxc->maps.sluice_mgl4_v1);
}

int datapath_lb_affinity_map_fd(struct datapath *dp)
{
	return bpf_map__fd(dp->lxc->maps.sluice_aff4_v1);
}

uint32_t datapath_lb_maglev_m(const struct datapath *dp)
{
	return dp->maglev_m;
}

int datapath_frag_map_fd(struct datapath *dp)
{
	return bpf_map__fd(dp->lxc->maps.sluice_frag4_v1);
}

/*
 * Pin link_fd at path in place of the link pinned there, in one step (a
 * rename over the old pin): the old link loses its last reference, and
 * detaches, only once the new one is attached, so the hook never runs
 * without a program of ours.
 */
static int pin_replace(int link_fd, const char *path)
{
	char tmp[PATH_MAX];
	int ret;

	/* bpffs refuses names with a dot. */
	if (snprintf(tmp, sizeof(tmp), "%s_new", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	unlink(tmp); /* a crash's leftover */
	if (bpf_obj_pin(link_fd, tmp))
		return -errno;
	if (rename(tmp, path)) {
		ret = -errno;
		unlink(tmp);
		return ret;
	}
	return 0;
}

/* One direction over tcx: update a pinned link in place, or create and pin. */
static int attach_tcx(struct datapath *dp, int ifindex, const char *ifname, int ingress, int prog_fd)
{
	int link_fd = -1, ret;
	char path[PATH_MAX];

	link_pin_path(dp, ifname, ingress, path, sizeof(path));
	link_fd = bpf_obj_get(path);
	if (link_fd >= 0) {
		ret = bpf_link_update(link_fd, prog_fd, NULL);
		if (!ret)
			goto cleanup;
		/* The device it was attached to is gone (ifindex reused), or
		 * the link cannot take this program: a new link, pinned in
		 * its place (pin_replace). */
		pr_debug("cannot update the link %s (%s), replacing it", path, strerror(-ret));
		close(link_fd);
	}
	link_fd = bpf_link_create(prog_fd, ifindex,
				  (enum bpf_attach_type)(ingress ? SLUICE_BPF_TCX_INGRESS
								 : SLUICE_BPF_TCX_EGRESS),
				  NULL);
	if (link_fd < 0) {
		ret = -errno;
		goto cleanup;
	}
	ret = pin_replace(link_fd, path);
cleanup:
	if (link_fd >= 0)
		close(link_fd);
	return ret;
}

/* One direction over tc. The clsact qdisc serves both directions, so the
 * caller creates it once (ingress first). */
static int attach_tc(int ifindex, int ingress, int prog_fd)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
		    .attach_point = ingress ? BPF_TC_INGRESS : BPF_TC_EGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = TC_HANDLE, .priority = TC_PRIORITY,
		    .prog_fd = prog_fd, .flags = BPF_TC_F_REPLACE);
	int ret;

	if (ingress) {
		ret = bpf_tc_hook_create(&hook);
		if (ret && ret != -EEXIST)
			return ret;
	}
	return bpf_tc_attach(&hook, &opts);
}

static void unpin_links(struct datapath *dp, const char *ifname)
{
	char path[PATH_MAX];

	for (int ingress = 1; ingress >= 0; ingress--) {
		link_pin_path(dp, ifname, ingress, path, sizeof(path));
		/* Unpinning drops the last reference: the tcx link detaches. */
		if (unlink(path) && errno != ENOENT)
			pr_warn("cannot remove %s: %s", path, strerror(errno));
	}
}

static void detach_tc(int ifindex)
{
	for (int ingress = 1; ingress >= 0; ingress--) {
		LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
			    .attach_point = ingress ? BPF_TC_INGRESS : BPF_TC_EGRESS);
		LIBBPF_OPTS(bpf_tc_opts, opts, .handle = TC_HANDLE, .priority = TC_PRIORITY);

		bpf_tc_detach(&hook, &opts); /* absent filters are fine */
	}
}

int datapath_attach(struct datapath *dp, int ifindex, const char *ifname, char *err, size_t errlen)
{
	int ret = 0;

	for (int ingress = 1; ingress >= 0; ingress--) {
		int prog_fd = datapath_prog_fd(dp, ingress);

		if (dp->mode == ATTACH_TCX)
			ret = attach_tcx(dp, ifindex, ifname, ingress, prog_fd);
		else
			ret = attach_tc(ifindex, ingress, prog_fd);
		if (ret) {
			/* What is attached stays: an earlier agent's programs
			 * police on the same pinned maps. The caller decides:
			 * ADD deletes the veth, recovery cuts off a pod that
			 * nothing polices (datapath_policed). */
			snprintf(err, errlen, "cannot attach %s program to %s (ifindex %d) with %s: %s",
				 ingress ? "from_pod" : "to_pod", ifname, ifindex,
				 attach_mode_name(dp->mode), strerror(-ret));
			return ret;
		}
	}
	/* An agent restarted in the other mode: the new attachment is in
	 * place, so the old one can go without a gap. */
	if (dp->mode == ATTACH_TCX)
		detach_tc(ifindex);
	else
		unpin_links(dp, ifname);
	return 0;
}

int datapath_attach_node(struct datapath *dp, int ifindex, const char *ifname, enum node_hook hook,
			 char *err, size_t errlen)
{
	int prog_fd = datapath_node_prog_fd(dp, hook), ret;
	int ingress = hook == HOOK_OVERLAY || hook == HOOK_NETDEV;

	/* tc: the egress filter needs the clsact qdisc the ingress one made. */
	if (!ingress && dp->mode != ATTACH_TCX) {
		LIBBPF_OPTS(bpf_tc_hook, qdisc, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);

		ret = bpf_tc_hook_create(&qdisc);
		if (ret && ret != -EEXIST)
			goto out;
	}
	ret = dp->mode == ATTACH_TCX ? attach_tcx(dp, ifindex, ifname, ingress, prog_fd)
				     : attach_tc(ifindex, ingress, prog_fd);
out:
	if (ret)
		snprintf(err, errlen, "cannot attach %s to %s (ifindex %d) with %s: %s",
			 bpf_program__name(node_prog(dp, hook)), ifname, ifindex,
			 attach_mode_name(dp->mode), strerror(-ret));
	return ret;
}

int datapath_detach(struct datapath *dp, int ifindex, const char *ifname)
{
	unpin_links(dp, ifname);
	if (ifindex > 0)
		detach_tc(ifindex);
	return 0;
}

/* Is a program named `name` among those attached at (ifindex, type)? */
static int tcx_has_prog(int ifindex, int type, const char *name)
{
	__u32 ids[64], cnt = 64, flags = 0;
	int ret;

	ret = bpf_prog_query(ifindex, (enum bpf_attach_type)type, 0, &flags, ids, &cnt);
	if (ret)
		return ret;
	for (__u32 i = 0; i < cnt; i++) {
		struct bpf_prog_info info = {};
		__u32 len = sizeof(info);
		int fd = bpf_prog_get_fd_by_id(ids[i]);

		if (fd < 0)
			continue;
		ret = bpf_obj_get_info_by_fd(fd, &info, &len);
		close(fd);
		if (!ret && !strncmp(info.name, name, sizeof(info.name)))
			return 0;
	}
	return -ENOENT;
}

int datapath_check_attached(struct datapath *dp, int ifindex, const char *ifname)
{
	int ret;

	(void)ifname;
	if (dp->mode == ATTACH_TCX) {
		ret = tcx_has_prog(ifindex, SLUICE_BPF_TCX_INGRESS, "from_pod");
		if (!ret)
			ret = tcx_has_prog(ifindex, SLUICE_BPF_TCX_EGRESS, "to_pod");
		return ret ? -ENOENT : 0;
	}
	for (int ingress = 1; ingress >= 0; ingress--) {
		LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
			    .attach_point = ingress ? BPF_TC_INGRESS : BPF_TC_EGRESS);
		LIBBPF_OPTS(bpf_tc_opts, opts, .handle = TC_HANDLE, .priority = TC_PRIORITY);

		if (bpf_tc_query(&hook, &opts))
			return -ENOENT;
	}
	return 0;
}

/* Is a sluice program attached in this direction, by tcx or by tc (the
 * filter sluice's handle and priority hold, counted only when tc_counts:
 * the device's qdisc is clsact; whose program it is, this agent's or an
 * earlier one's, does not matter: both police)? */
static int direction_policed(int ifindex, int ingress, int tc_counts)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
		    .attach_point = ingress ? BPF_TC_INGRESS : BPF_TC_EGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = TC_HANDLE, .priority = TC_PRIORITY);

	if (!tcx_has_prog(ifindex, ingress ? SLUICE_BPF_TCX_INGRESS : SLUICE_BPF_TCX_EGRESS,
			  ingress ? "from_pod" : "to_pod"))
		return 1;
	return tc_counts && !bpf_tc_query(&hook, &opts);
}

int datapath_policed(int ifindex, int tc_counts)
{
	return direction_policed(ifindex, 1, tc_counts) && direction_policed(ifindex, 0, tc_counts);
}

int datapath_endpoint_put(struct datapath *dp, __be32 ip, const struct sluice_endpoint *ep)
{
	struct sluice_endpoint_key key = { .ip4 = ip };

	return bpf_map_update_elem(datapath_endpoint_map_fd(dp), &key, ep, BPF_ANY) ? -errno : 0;
}

int datapath_endpoint_get(struct datapath *dp, __be32 ip, struct sluice_endpoint *ep)
{
	struct sluice_endpoint_key key = { .ip4 = ip };

	return bpf_map_lookup_elem(datapath_endpoint_map_fd(dp), &key, ep) ? -errno : 0;
}

int datapath_endpoint_del(struct datapath *dp, __be32 ip)
{
	struct sluice_endpoint_key key = { .ip4 = ip };

	if (bpf_map_delete_elem(datapath_endpoint_map_fd(dp), &key) && errno != ENOENT)
		return -errno;
	return 0;
}

static int percpu_slot_sum(int fd, __u32 slot, struct sluice_metric *out);

int datapath_metrics_read(struct datapath *dp, struct sluice_metric out[SLUICE_METRICS_MAX])
{
	int fd = datapath_metrics_map_fd(dp), ret = 0;

	for (__u32 key = 0; !ret && key < SLUICE_METRICS_MAX; key++)
		ret = percpu_slot_sum(fd, key, &out[key]);
	return ret;
}

/* ---- cgroup hooks (node sockets' Services) ----------------------------- */

int datapath_cgroup_root(const char *want, char *out, size_t outlen, char *err, size_t errlen)
{
	const char *path = want;
	char line[4096], mnt[PATH_MAX] = "";
	struct statfs st;
	FILE *f = NULL;
	int ret = 0;

	if (!path) {
		/* The first cgroup2 mount: field 5 is the mount point, the
		 * file system type follows the " - " separator. */
		f = fopen("/proc/self/mountinfo", "re");
		while (f && fgets(line, sizeof(line), f)) {
			char *sep = strstr(line, " - "), point[PATH_MAX];

			if (!sep || strncmp(sep + 3, "cgroup2 ", 8))
				continue;
			if (sscanf(line, "%*s %*s %*s %*s %4095s", point) == 1) {
				snprintf(mnt, sizeof(mnt), "%s", point);
				break;
			}
		}
		path = mnt[0] ? mnt : SLUICE_CGROUP2_MOUNT;
	}
	if (snprintf(out, outlen, "%s", path) >= (int)outlen) {
		ret = -ENAMETOOLONG;
		snprintf(err, errlen, "--cgroup-root %s: path too long", path);
		goto cleanup;
	}
	if (!statfs(path, &st) && st.f_type == CGROUP2_SUPER_MAGIC)
		goto cleanup;
	/* A hybrid host's /sys/fs/cgroup (a tmpfs of v1 hierarchies) keeps
	 * its cgroup2 at unified/: the DaemonSet mounts /sys/fs/cgroup. */
	if (want && (size_t)snprintf(mnt, sizeof(mnt), "%s/unified", want) < sizeof(mnt) &&
	    !statfs(mnt, &st) && st.f_type == CGROUP2_SUPER_MAGIC) {
		if (snprintf(out, outlen, "%s", mnt) >= (int)outlen)
			ret = -ENAMETOOLONG;
		goto cleanup;
	}
	if (want && access(want, F_OK) == 0 && !is_empty_dir(want)) {
		ret = -ENOTDIR;
		snprintf(err, errlen, "--cgroup-root %s is not a cgroup v2 mount and not an empty "
				      "directory to mount one on; give the host's cgroup2 mount point "
				      "(mount -t cgroup2 none DIR)", want);
		goto cleanup;
	}
	ret = mkdir_p(path, 0755);
	if (!ret && mount("none", path, "cgroup2", 0, NULL))
		ret = -errno;
	if (ret) {
		snprintf(err, errlen, "cannot mount cgroup v2 on %s for the node sockets' Service "
				      "hooks: %s; mount it (mount -t cgroup2 none %s) or pass "
				      "--cgroup-root", path, strerror(-ret), path);
		goto cleanup;
	}
	pr_info("mounted cgroup2 on %s for the node sockets' Service hooks (%s; its root "
		"holds every process)", path,
		want ? "--cgroup-root was no cgroup v2 mount" : "no cgroup v2 mount found");
cleanup:
	if (f)
		fclose(f);
	return ret;
}

static const struct {
	const char *pin;
	enum bpf_attach_type type;
} sock_hooks[] = {
	{ "cgroup_connect4", BPF_CGROUP_INET4_CONNECT },
	{ "cgroup_sendmsg4", BPF_CGROUP_UDP4_SENDMSG },
	{ "cgroup_recvmsg4", BPF_CGROUP_UDP4_RECVMSG },
	{ "cgroup_getpeername4", BPF_CGROUP_INET4_GETPEERNAME },
};

static struct bpf_program *sock_prog(struct datapath *dp, size_t i)
{
	switch (i) {
	case 0: return dp->sock->progs.sk_connect4;
	case 1: return dp->sock->progs.sk_sendmsg4;
	case 2: return dp->sock->progs.sk_recvmsg4;
	default: return dp->sock->progs.sk_getpeername4;
	}
}

/*
 * One bpf_link per hook on the cgroup (links attach with
 * BPF_F_ALLOW_MULTI: other agents' and other software's programs there stay),
 * pinned under <bpffs>/links so it outlives the agent; a restarted agent
 * swaps its programs into the pinned links (bpf_link_update: no moment
 * without a hook).
 */
int datapath_attach_sock(struct datapath *dp, const char *cgroup_root, char *err, size_t errlen)
{
	int cg_fd, link_fd = -1, ret = 0;
	char path[PATH_MAX];

	if (!dp->sock) {
		snprintf(err, errlen, "the cgroup hooks are not loaded (--kube-proxy-replacement off)");
		return -EINVAL;
	}
	cg_fd = open(cgroup_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg_fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot open the cgroup %s: %s", cgroup_root, strerror(errno));
		return ret;
	}
	for (size_t i = 0; i < sizeof(sock_hooks) / sizeof(sock_hooks[0]); i++) {
		int prog_fd = bpf_program__fd(sock_prog(dp, i));

		snprintf(path, sizeof(path), "%s/links/%s", dp->bpffs, sock_hooks[i].pin);
		link_fd = bpf_obj_get(path);
		if (link_fd >= 0) {
			if (!bpf_link_update(link_fd, prog_fd, NULL)) {
				close(link_fd);
				link_fd = -1;
				continue;
			}
			/* Not a link this program can replace (another
			 * version's): a new one (ALLOW_MULTI: both run for a
			 * moment), pinned in the old one's place. */
			pr_debug("cannot update the link %s (%s): replacing it", path, strerror(errno));
			close(link_fd);
		}
		link_fd = bpf_link_create(prog_fd, cg_fd, sock_hooks[i].type, NULL);
		ret = link_fd < 0 ? -errno : pin_replace(link_fd, path);
		if (ret) {
			snprintf(err, errlen, "cannot attach %s to the cgroup %s: %s (needs cgroup v2 and "
					      "CAP_SYS_ADMIN)", bpf_program__name(sock_prog(dp, i)),
				 cgroup_root, strerror(-ret));
			goto cleanup;
		}
		close(link_fd);
		link_fd = -1;
	}
cleanup:
	if (link_fd >= 0)
		close(link_fd);
	close(cg_fd);
	if (ret)
		datapath_detach_sock(dp->bpffs);
	return ret;
}

int datapath_detach_sock(const char *bpffs)
{
	char path[PATH_MAX];
	int ret = 0;

	for (size_t i = 0; i < sizeof(sock_hooks) / sizeof(sock_hooks[0]); i++) {
		snprintf(path, sizeof(path), "%s/links/%s", bpffs, sock_hooks[i].pin);
		/* The pin is the link's last reference: it detaches. */
		if (unlink(path) && errno != ENOENT) {
			ret = -errno;
			pr_warn("cannot remove %s: %s", path, strerror(errno));
		}
	}
	return ret;
}

int datapath_lb_sock_map_fd(struct datapath *dp)
{
	return dp->sock ? bpf_map__fd(dp->sock->maps.sluice_lbsk4_v1) : -ENOENT;
}

/* ---- XDP on the uplink ------------------------------------------------ */

int xdp_request_parse(const char *text, enum xdp_request *req)
{
	if (!strcmp(text, "best-effort"))
		*req = XDP_REQ_BEST_EFFORT;
	else if (!strcmp(text, "native"))
		*req = XDP_REQ_NATIVE;
	else if (!strcmp(text, "generic"))
		*req = XDP_REQ_GENERIC;
	else if (!strcmp(text, "off"))
		*req = XDP_REQ_OFF;
	else
		return -EINVAL;
	return 0;
}

const char *xdp_request_name(enum xdp_request req)
{
	switch (req) {
	case XDP_REQ_BEST_EFFORT: return "best-effort";
	case XDP_REQ_NATIVE: return "native";
	case XDP_REQ_GENERIC: return "generic";
	case XDP_REQ_OFF: return "off";
	}
	return "?";
}

const char *xdp_mode_name(__u32 mode)
{
	switch (mode) {
	case SLUICE_XDP_MODE_NATIVE: return "native";
	case SLUICE_XDP_MODE_GENERIC: return "generic";
	default: return "off";
	}
}

void xdp_driver_name(const char *ifname, char *out, size_t outlen)
{
	struct ethtool_drvinfo info = { .cmd = ETHTOOL_GDRVINFO };
	char path[PATH_MAX], target[PATH_MAX];
	struct ifreq ifr = { 0 };
	ssize_t n;
	int fd;

	snprintf(out, outlen, "unknown");
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ifr.ifr_data = (void *)&info;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd >= 0) {
		int ok = !ioctl(fd, SIOCETHTOOL, &ifr) && info.driver[0];

		close(fd);
		if (ok) {
			snprintf(out, outlen, "%.*s", (int)sizeof(info.driver), info.driver);
			return;
		}
	}
	snprintf(path, sizeof(path), "/sys/class/net/%s/device/driver", ifname);
	n = readlink(path, target, sizeof(target) - 1);
	if (n > 0) {
		char *base;

		target[n] = '\0';
		base = strrchr(target, '/');
		snprintf(out, outlen, "%s", base ? base + 1 : target);
	}
}

int datapath_xdp_state_set(struct datapath *dp, __u32 xdp_active, __u32 mode)
{
	struct sluice_xdp_state st = { .xdp_active = xdp_active, .mode = mode };
	__u32 zero = 0;

	if (bpf_map_update_elem(bpf_map__fd(dp->xdp->maps.sluice_xdpst_v1), &zero, &st, BPF_ANY))
		return -errno;
	return 0;
}

int datapath_xdp_prog_fd(struct datapath *dp)
{
	return bpf_program__fd(dp->xdp->progs.from_netdev_xdp);
}

static void xdp_pin_path(const char *bpffs, const char *ifname, char *buf, size_t len)
{
	snprintf(buf, len, "%s/links/%s_xdp", bpffs, ifname);
}

/* The name of the program with id, "" when gone. */
static void prog_name_of(__u32 id, char *out, size_t outlen)
{
	struct bpf_prog_info info = { 0 };
	__u32 len = sizeof(info);
	int fd = bpf_prog_get_fd_by_id(id);

	out[0] = '\0';
	if (fd < 0)
		return;
	if (!bpf_obj_get_info_by_fd(fd, &info, &len))
		snprintf(out, outlen, "%s", info.name);
	close(fd);
}

int datapath_detach_xdp(const char *bpffs, int ifindex, const char *ifname)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	char path[PATH_MAX], name[BPF_OBJ_NAME_LEN];
	int ret = 0;

	xdp_pin_path(bpffs, ifname, path, sizeof(path));
	/* The pin is the link's last reference: the program detaches. */
	if (unlink(path) && errno != ENOENT) {
		ret = -errno;
		pr_warn("cannot remove %s: %s", path, strerror(errno));
	}
	if (ifindex <= 0 || bpf_xdp_query(ifindex, 0, &q))
		return ret;
	/* A program of ours attached some other way (ip link set ... xdp
	 * obj, or a link someone still holds): not to be left running
	 * unseen. Another program is not ours to remove. */
	if (q.drv_prog_id) {
		prog_name_of(q.drv_prog_id, name, sizeof(name));
		if (!strcmp(name, "from_netdev_xdp") && bpf_xdp_detach(ifindex, XDP_FLAGS_DRV_MODE, NULL))
			pr_warn("cannot detach the XDP program %u from %s (native): %s",
				q.drv_prog_id, ifname, strerror(errno));
	}
	if (q.skb_prog_id) {
		prog_name_of(q.skb_prog_id, name, sizeof(name));
		if (!strcmp(name, "from_netdev_xdp") && bpf_xdp_detach(ifindex, XDP_FLAGS_SKB_MODE, NULL))
			pr_warn("cannot detach the XDP program %u from %s (generic): %s",
				q.skb_prog_id, ifname, strerror(errno));
	}
	return ret;
}

/*
 * The pinned XDP link of ifname, when it is attached to ifindex in mode
 * (the kernel's link info carries the device; the mode is which of the
 * device's slots holds the link's program): its fd, else -1.
 */
static int xdp_link_reusable(const char *path, int ifindex, __u32 mode)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	struct bpf_link_info info = { 0 };
	__u32 len = sizeof(info), slot;
	int fd = bpf_obj_get(path);

	if (fd < 0)
		return -1;
	if (bpf_obj_get_info_by_fd(fd, &info, &len) || info.type != BPF_LINK_TYPE_XDP ||
	    (int)info.xdp.ifindex != ifindex || bpf_xdp_query(ifindex, 0, &q))
		goto stale;
	slot = mode == SLUICE_XDP_MODE_NATIVE ? q.drv_prog_id : q.skb_prog_id;
	if (slot && slot == info.prog_id)
		return fd;
stale:
	close(fd);
	return -1;
}

/* Attach from_netdev_xdp to ifindex in mode, through the pinned link:
 * swapped in place when the pin is this device's link in this mode, else
 * made anew. 0 or -errno. */
static int xdp_link_attach(struct datapath *dp, int ifindex, const char *ifname, __u32 mode)
{
	LIBBPF_OPTS(bpf_link_create_opts, opts,
		    .flags = mode == SLUICE_XDP_MODE_NATIVE ? XDP_FLAGS_DRV_MODE
							    : XDP_FLAGS_SKB_MODE);
	int prog_fd = datapath_xdp_prog_fd(dp), link_fd, ret;
	char path[PATH_MAX];

	xdp_pin_path(dp->bpffs, ifname, path, sizeof(path));
	link_fd = xdp_link_reusable(path, ifindex, mode);
	if (link_fd >= 0) {
		/* A restart or upgrade: the program is replaced atomically,
		 * no packet goes unchecked. */
		ret = bpf_link_update(link_fd, prog_fd, NULL) ? -errno : 0;
		close(link_fd);
		if (!ret)
			return 0;
		pr_debug("cannot update the XDP link %s (%s): replacing it", path, strerror(-ret));
	}
	/* Another mode, another device, or a detached link: tc takes the
	 * first stage back before the old attachment goes. */
	if (!access(path, F_OK)) {
		datapath_xdp_state_set(dp, 0, SLUICE_XDP_MODE_OFF);
		datapath_detach_xdp(dp->bpffs, ifindex, ifname);
	}
	link_fd = bpf_link_create(prog_fd, ifindex, BPF_XDP, &opts);
	if (link_fd < 0)
		return -errno;
	ret = bpf_obj_pin(link_fd, path) ? -errno : 0;
	close(link_fd);
	return ret;
}

/* Why the attach failed (ret), in words for status and errors: another
 * program in the way is named, not blamed on the driver. */
static void xdp_failure_why(int ifindex, int ret, const struct xdp_status *st, char *out,
			    size_t outlen)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	char name[BPF_OBJ_NAME_LEN] = "";

	if ((ret == -EBUSY || ret == -EEXIST) && !bpf_xdp_query(ifindex, 0, &q) && q.prog_id) {
		prog_name_of(q.prog_id, name, sizeof(name));
		snprintf(out, outlen, "another XDP program (id %u, name %s) is attached to %s",
			 q.prog_id, name[0] ? name : "?", st->device);
		return;
	}
	snprintf(out, outlen, "%s", strerror(-ret));
}

/*
 * Drivers whose native XDP costs the traffic it passes more than running
 * the first stage at tc: best-effort leaves them to tc. veth: a program on
 * one end makes the kernel clear GSO on the other (veth_fix_features), so
 * every TCP segment the peer sends arrives MTU-sized (0.4x the throughput
 * into the node here, docs/BENCHMARKS.md); a frags-aware program does not
 * change that.
 */
bool xdp_costly_driver(const char *driver)
{
	return !strcmp(driver, "veth");
}

/* The first stage back to tc, then no XDP program of ours on the device:
 * in that order, so no packet skips the stage. */
static int xdp_to_tc(struct datapath *dp, int ifindex, const char *ifname, char *err,
		     size_t errlen)
{
	int ret = datapath_xdp_state_set(dp, 0, SLUICE_XDP_MODE_OFF);

	datapath_detach_xdp(dp->bpffs, ifindex, ifname);
	if (ret)
		snprintf(err, errlen, "cannot write %s: %s", SLUICE_MAP_XDP_STATE, strerror(-ret));
	return ret;
}

int datapath_attach_xdp(struct datapath *dp, int ifindex, const char *ifname,
			enum xdp_request req, struct xdp_status *st, char *err, size_t errlen)
{
	char why[160];
	__u32 mode = req == XDP_REQ_GENERIC ? SLUICE_XDP_MODE_GENERIC : SLUICE_XDP_MODE_NATIVE;
	int ret;

	memset(st, 0, sizeof(*st));
	st->requested = req;
	st->mode = SLUICE_XDP_MODE_OFF;
	snprintf(st->device, sizeof(st->device), "%s", ifname);
	xdp_driver_name(ifname, st->driver, sizeof(st->driver));
	if (req == XDP_REQ_OFF)
		return xdp_to_tc(dp, ifindex, ifname, err, errlen);
	if (req == XDP_REQ_BEST_EFFORT && xdp_costly_driver(st->driver)) {
		snprintf(st->reason, sizeof(st->reason),
			 "driver %s: native XDP turns TSO off on the peer device (TCP into the node "
			 "measured at 0.4x, docs/XDP.md): the first stage runs at tc; --xdp native "
			 "attaches it anyway", st->driver);
		pr_info("--xdp best-effort: %s", st->reason);
		return xdp_to_tc(dp, ifindex, ifname, err, errlen);
	}
	ret = xdp_link_attach(dp, ifindex, ifname, mode);
	if (!ret) {
		st->mode = mode;
		ret = datapath_xdp_state_set(dp, 1, mode);
		if (ret)
			snprintf(err, errlen, "cannot write %s: %s", SLUICE_MAP_XDP_STATE,
				 strerror(-ret));
		return ret;
	}
	xdp_failure_why(ifindex, ret, st, why, sizeof(why));
	if (req == XDP_REQ_BEST_EFFORT) {
		snprintf(st->reason, sizeof(st->reason),
			 "no native XDP on %s (driver %s: %s): the first stage runs at tc", ifname,
			 st->driver, why);
		pr_warn("--xdp best-effort: %s", st->reason);
		/* What an earlier agent left (a generic attachment) goes too. */
		return xdp_to_tc(dp, ifindex, ifname, err, errlen);
	}
	snprintf(err, errlen,
		 "--xdp %s: cannot attach the XDP program to %s (driver %s) in %s mode: %s; "
		 "use a device whose driver has native XDP (docs/INSTALL.md), or run with "
		 "--xdp best-effort (falls back to tc) or --xdp off",
		 xdp_request_name(req), ifname, st->driver, xdp_mode_name(mode), why);
	datapath_xdp_state_set(dp, 0, SLUICE_XDP_MODE_OFF);
	return ret;
}

int datapath_pf_lpm_map_fd(struct datapath *dp)
{
	return bpf_map__fd(dp->host->maps.sluice_pf4_v1);
}

int datapath_pf_host_map_fd(struct datapath *dp)
{
	return bpf_map__fd(dp->host->maps.sluice_pfh4_v1);
}

int datapath_pf_port_map_fd(struct datapath *dp)
{
	return bpf_map__fd(dp->host->maps.sluice_pfp4_v1);
}

int datapath_pf_cfg_map_fd(struct datapath *dp)
{
	return bpf_map__fd(dp->host->maps.sluice_pfcfg_v1);
}

int datapath_pf_entry_count_map_fd(struct datapath *dp)
{
	return bpf_map__fd(dp->host->maps.sluice_pfent_v1);
}

int datapath_pf_rule_count_map_fd(struct datapath *dp)
{
	return bpf_map__fd(dp->host->maps.sluice_pfrul_v1);
}

int datapath_xdp_state_map_fd(struct datapath *dp)
{
	return bpf_map__fd(dp->host->maps.sluice_xdpst_v1);
}

/* One slot of a per-CPU counter map, summed over the CPUs. */
static int percpu_slot_sum(int fd, __u32 slot, struct sluice_metric *out)
{
	int ncpu = libbpf_num_possible_cpus(), ret = 0;
	struct sluice_metric *percpu;

	*out = (struct sluice_metric){ 0 };
	if (ncpu <= 0)
		return ncpu ? ncpu : -EINVAL;
	percpu = calloc((size_t)ncpu, sizeof(*percpu));
	if (!percpu)
		return -ENOMEM;
	if (bpf_map_lookup_elem(fd, &slot, percpu)) {
		ret = -errno;
		goto cleanup;
	}
	for (int cpu = 0; cpu < ncpu; cpu++) {
		out->packets += percpu[cpu].packets;
		out->bytes += percpu[cpu].bytes;
	}
cleanup:
	free(percpu);
	return ret;
}

int datapath_pf_entry_counter(struct datapath *dp, __u32 entry, struct sluice_metric *out)
{
	return percpu_slot_sum(datapath_pf_entry_count_map_fd(dp), entry, out);
}

int datapath_pf_rule_counter(struct datapath *dp, __u32 rule, struct sluice_metric *out)
{
	return percpu_slot_sum(datapath_pf_rule_count_map_fd(dp), rule, out);
}

int datapath_xdp_ft_map_fd(struct datapath *dp)
{
	return bpf_map__fd(dp->xdp->maps.sluice_xdpft_v1);
}

int datapath_xdp_ft_counter(struct datapath *dp, __u32 cause, struct sluice_metric *out)
{
	return percpu_slot_sum(datapath_xdp_ft_map_fd(dp), cause, out);
}
