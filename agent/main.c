// SPDX-License-Identifier: Apache-2.0
/*
 * sluice-agent: the node agent. Loads the datapath, owns its pinned maps,
 * wires pods up for the CNI plugin and answers on a local Unix socket.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <ctype.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <time.h>

#include <bpf/libbpf.h>
#include <curl/curl.h>

#include "api.h"
#include "endpoint.h"
#include "flowlog.h"
#include "flowres.h"
#include "ipam.h"
#include "kube.h"
#include "cidr.h"
#include "loader.h"
#include "log.h"
#include "maglev.h"
#include "netlink.h"
#include "node.h"
#include "prom_http.h"
#include "reconcile.h"
#include "server.h"
#include "statefile.h"

struct options {
	const char *pod_cidr;
	const char *node_name;
	const char *socket_path;
	const char *state_dir;
	const char *bpffs;
	enum attach_mode attach_mode;
	enum sluice_routing routing;
	const char *device;
	const char *node_ip;
	int masquerade;
	unsigned int nat_port_min, nat_port_max;	/* --masquerade-ports */
	struct cidr4 nomasq[16];
	size_t nnomasq;
	int verbose;
	int compile_check;
	const char *kubeconfig;
	int kubernetes;		/* 0 off, 1 auto */
	int nomasq_from_cli;
	const char *proc_sys;
	const char *cgroup_root;
	const char *cni_conf_dir;	/* --cni-conf-dir */
	uint32_t policy_map_size;
	uint32_t ipcache_map_size;
	uint32_t pod_wait_ms;
	uint32_t sync_batch_ms;
	int kube_proxy_replacement;
	int lb_maglev;
	enum xdp_request xdp;		/* --xdp */
	uint32_t maglev_m;
	const char *k8s_api_server;
	const char *metrics_address;	/* --metrics-address; "off": none */
	uint32_t flow_buffer;		/* --flow-buffer */
	uint32_t flow_idle_s;		/* --flow-idle-timeout */
	int flows;			/* --flows */
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: sluice-agent [--pod-cidr CIDR] [options]\n"
		"\n"
		"The sluice node agent: loads the eBPF datapath, pins its maps, sets up pod\n"
		"interfaces for the sluice-cni plugin and serves a JSON API on a Unix socket.\n"
		"Pods keep talking while the agent is stopped; a restarted agent picks up its\n"
		"endpoints from --state-dir and --bpffs without disturbing traffic.\n"
		"\n"
		"Options:\n"
		"  --pod-cidr CIDR    IPv4 range for this node's pods, e.g. 10.244.1.0/24; its first\n"
		"                     address is the pods' gateway on this node. Without it, the\n"
		"                     spec.podCIDR of this node's saved Node object is used\n"
		"  --routing MODE     how pods reach other nodes: overlay (VXLAN, UDP 8472; the\n"
		"                     default) or native (routes via the nodes' addresses)\n"
		"  --device IFNAME    the node's uplink: its MTU and address; native routing routes\n"
		"                     other nodes' pod CIDRs through it; overlay routing sends and\n"
		"                     takes pods' VXLAN on it (without it: through the vxlan device)\n"
		"  --node-ip ADDR     this node's address (default: the first address of --device)\n"
		"  --xdp native|best-effort|off\n"
		"                     the XDP program on --device, which drops malformed IPv4,\n"
		"                     SluicePrefilter sources and forged pod or overlay sources\n"
		"                     before the kernel allocates anything, and sends outside\n"
		"                     clients' NodePort/externalIP/LB flows to another node's\n"
		"                     backend itself (with kube-proxy replacement; docs/XDP.md).\n"
		"                     native: driver mode or start-up fails; best-effort (the\n"
		"                     default): native where the driver can (not veth: XDP\n"
		"                     there turns TSO off on the peer), else the same work at\n"
		"                     tc (sluicectl status says why); off: at tc only.\n"
		"                     generic (skb mode) only when asked for: for tests\n"
		"  --masquerade on|off\n"
		"                     pods' traffic to outside the cluster leaves --device with\n"
		"                     the node's address (default on; needs --device)\n"
		"  --masquerade-ports LO-HI\n"
		"                     the node ports masqueraded flows get (default %u-%u,\n"
		"                     above Linux's ip_local_port_range); the agent adds them to\n"
		"                     net.ipv4.ip_local_reserved_ports so no node socket gets one\n"
		"  --non-masquerade-cidr CIDR\n"
		"                     never masquerade traffic to CIDR (repeatable; pod CIDRs and\n"
		"                     node addresses never are)\n"
		"  --node-name NAME   this node's name (default: the hostname)\n"
		"  --socket PATH      API socket (default %s)\n"
		"  --state-dir DIR    IPAM and endpoint state (default /var/lib/sluice)\n"
		"  --bpffs DIR        where maps and links are pinned (default /sys/fs/bpf/sluice)\n"
		"  --attach-mode MODE tc, tcx or auto (tcx when the kernel has it); default tc,\n"
		"                     because each tcx attach waits for an RCU grace period\n"
		"  --cni-conf-dir DIR the CNI configuration (default " CNICHAIN_DEFAULT_DIR "),\n"
		"                     read for the plugins the runtime chains after sluice-cni:\n"
		"                     a bandwidth plugin there is warned about, and\n"
		"                     in tc mode an ADD with bandwidth limits on its network is\n"
		"                     refused (docs/CNI.md, Chained plugins)\n"
		"  --kubeconfig FILE  take Namespaces, Pods, Nodes, NetworkPolicies and sluice's\n"
		"                     policies from the Kubernetes API this kubeconfig points at\n"
		"                     (token, tokenFile or client certificate; CA file or data)\n"
		"  --kubernetes MODE  auto (the default): --kubeconfig if given, else the in-cluster\n"
		"                     service account when KUBERNETES_SERVICE_HOST and _PORT are\n"
		"                     set, else none; off: objects come from sluicectl apply only\n"
		"  --k8s-api-server HOST:PORT\n"
		"                     the API server the in-cluster service account talks to,\n"
		"                     instead of KUBERNETES_SERVICE_HOST/_PORT (the kubernetes\n"
		"                     Service's clusterIP, which needs a Service proxy to work):\n"
		"                     without kube-proxy, give the real API server's address\n"
		"                     (also https://HOST:PORT; IPv6 as [ADDR]:PORT)\n"
		"  --policy-map-size N\n"
		"                     entries in each of the allow and deny rule maps (default\n"
		"                     %u); a policy that does not fit is refused on apply, and\n"
		"                     left out (its pods isolated) when it comes from the API\n"
		"  --ipcache-map-size N\n"
		"                     entries in the address-to-identity map (default %u)\n"
		"  --pod-labels-wait SECONDS\n"
		"                     with the Kubernetes API: how long a CNI ADD waits for the\n"
		"                     pod's Pod object (default %u); a pod still without it is\n"
		"                     isolated both ways until it arrives\n"
		"  --sync-batch-ms MS\n"
		"                     with the Kubernetes API: watch events within MS of the\n"
		"                     last sync they caused wait until then and are synced\n"
		"                     together (default %u; 0: a sync on each wakeup)\n"
		"  --flows on|off     flow records from the datapath (default on): per-flow\n"
		"                     counters, verdicts, the deciding policy rule, TCP round\n"
		"                     trips (docs/OBSERVABILITY.md); off: the programs skip it\n"
		"  --kube-proxy-replacement on|off\n"
		"                     translate Services in eBPF (default on): pods' traffic to\n"
		"                     clusterIPs, externalIPs, load-balancer addresses and this\n"
		"                     node's NodePorts, and outside clients' to NodePorts,\n"
		"                     externalIPs and load-balancer addresses on --device, goes\n"
		"                     straight to a backend (traffic policies, health-check node\n"
		"                     ports served); a Service without endpoints refuses them at\n"
		"                     once (TCP RST, ICMP port unreachable); the node's own\n"
		"                     sockets (host processes, hostNetwork pods) are given a\n"
		"                     backend at connect()/sendmsg() by cgroup hooks, also for\n"
		"                     127.0.0.1:nodePort; off: Services are left to kube-proxy\n"
		"  --cgroup-root DIR  with --kube-proxy-replacement on: the cgroup v2 directory\n"
		"                     the node sockets' hooks attach to (default: the first\n"
		"                     cgroup2 mount, else cgroup2 mounted on %s)\n"
		"  --lb-algorithm random|maglev\n"
		"                     how a new Service flow picks its backend (default random);\n"
		"                     maglev: consistent hashing of the flow, every node with\n"
		"                     the same backends picks the same one (docs/SERVICES.md)\n"
		"  --lb-maglev-table-size N\n"
		"                     entries of each Service's Maglev table, a prime above its\n"
		"                     backend count (default %u, 8 bytes each); the same on\n"
		"                     every node\n"
		"  --proc-sys DIR     the sysctl tree (default /proc/sys); in a container whose\n"
		"                     /proc/sys is read-only, a bind mount of the host's\n"
		"  --flow-buffer N    flow records the agent keeps for sluicectl observe (default\n"
		"                     %u, about 300 bytes each); older ones are overwritten and\n"
		"                     counted (status: flows.lost.overwritten)\n"
		"  --flow-idle-timeout SECONDS\n"
		"                     a flow without packets this long gets an END record from\n"
		"                     the agent and leaves the datapath's flow table (default %u)\n"
		"  --metrics-address HOST:PORT|off\n"
		"                     serve Prometheus metrics at http://HOST:PORT/metrics\n"
		"                     (default %s: every IPv4 address; [V6]:PORT for IPv6;\n"
		"                     off: none; docs/OBSERVABILITY.md)\n"
		"  --compile-check    after each policy sync, compare the incremental result\n"
		"                     with a full recompute; a difference is logged and the\n"
		"                     agent aborts (a test mode: it costs a full build per\n"
		"                     sync; make test runs every agent with it)\n"
		"  -v, --verbose      debug logging, including libbpf's\n"
		"  -h, --help         this help\n"
		"\n"
		"Every option can also be set in the environment as SLUICE_<OPTION>, upper case\n"
		"with dashes as underscores (SLUICE_ROUTING=native, SLUICE_NODE_NAME=...;\n"
		"SLUICE_NON_MASQUERADE_CIDR takes a comma-separated list, SLUICE_VERBOSE=1);\n"
		"the command line wins. With Kubernetes, the pod CIDR is this node's Node\n"
		"spec.podCIDR and --device defaults to the interface holding its InternalIP.\n"
		"\n"
		"Several agents can run on one machine, one per network namespace, each with\n"
		"its own --socket, --state-dir and --bpffs.\n",
		SLUICE_NAT_PORTS_DEFAULT_MIN, SLUICE_NAT_PORTS_DEFAULT_MAX, SLUICE_DEFAULT_SOCKET,
		SLUICE_POLICY_MAX, SLUICE_IPCACHE_MAX, AGENT_POD_WAIT_MS / 1000, AGENT_SYNC_BATCH_MS,
		SLUICE_CGROUP2_MOUNT, MAGLEV_SIZE_DEFAULT, FLOWLOG_BUFFER_DEFAULT,
		FLOWLOG_IDLE_DEFAULT_S, PROM_DEFAULT_ADDRESS);
}

static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char line[1024];

	/* libbpf's own chatter is one level quieter than ours. */
	if (level == LIBBPF_DEBUG && log_max_level < LOG_DEBUG)
		return 0;
	if (level == LIBBPF_INFO && log_max_level < LOG_DEBUG)
		return 0;
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	log_msg(level == LIBBPF_WARN ? LOG_WARN : LOG_DEBUG, "%s", line);
	return 0;
}

static const struct option longopts[] = {
	{ "pod-cidr", required_argument, NULL, 'c' },
	{ "node-name", required_argument, NULL, 'n' },
	{ "socket", required_argument, NULL, 's' },
	{ "state-dir", required_argument, NULL, 'd' },
	{ "bpffs", required_argument, NULL, 'b' },
	{ "attach-mode", required_argument, NULL, 'a' },
	{ "routing", required_argument, NULL, 'r' },
	{ "device", required_argument, NULL, 'D' },
	{ "node-ip", required_argument, NULL, 'i' },
	{ "xdp", required_argument, NULL, 'X' },
	{ "masquerade", required_argument, NULL, 'm' },
	{ "non-masquerade-cidr", required_argument, NULL, 'M' },
	{ "masquerade-ports", required_argument, NULL, 'p' },
	{ "kubeconfig", required_argument, NULL, 'k' },
	{ "kubernetes", required_argument, NULL, 'K' },
	{ "proc-sys", required_argument, NULL, 'P' },
	{ "policy-map-size", required_argument, NULL, 'S' },
	{ "ipcache-map-size", required_argument, NULL, 'I' },
	{ "pod-labels-wait", required_argument, NULL, 'W' },
	{ "sync-batch-ms", required_argument, NULL, 'B' },
	{ "kube-proxy-replacement", required_argument, NULL, 'R' },
	{ "cgroup-root", required_argument, NULL, 'G' },
	{ "cni-conf-dir", required_argument, NULL, 'N' },
	{ "lb-algorithm", required_argument, NULL, 'L' },
	{ "lb-maglev-table-size", required_argument, NULL, 'T' },
	{ "k8s-api-server", required_argument, NULL, 'A' },
	{ "metrics-address", required_argument, NULL, 'E' },
	{ "flow-buffer", required_argument, NULL, 'Z' },
	{ "flow-idle-timeout", required_argument, NULL, 'Y' },
	{ "flows", required_argument, NULL, 'F' },
	{ "compile-check", no_argument, NULL, 'C' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ 0 },
};

/* Take one option's value; from names where it came from in errors
 * ("--routing" or "SLUICE_ROUTING"). */
static int set_opt(int c, const char *val, const char *from, struct options *o)
{
	switch (c) {
	case 'c': o->pod_cidr = val; break;
	case 'n': o->node_name = val; break;
	case 's': o->socket_path = val; break;
	case 'd': o->state_dir = val; break;
	case 'b': o->bpffs = val; break;
	case 'D': o->device = val; break;
	case 'i': o->node_ip = val; break;
	case 'k': o->kubeconfig = val; break;
	case 'A': o->k8s_api_server = val; break;
	case 'P': o->proc_sys = val; break;
	case 'G': o->cgroup_root = val; break;
	case 'N': o->cni_conf_dir = val; break;
	case 'E': o->metrics_address = val; break;
	case 'X':
		if (xdp_request_parse(val, &o->xdp))
			goto bad;
		break;
	case 'a':
		if (attach_mode_parse(val, &o->attach_mode))
			goto bad;
		break;
	case 'r':
		if (routing_parse(val, &o->routing))
			goto bad;
		break;
	case 'm':
	case 'R':
	case 'F':
		if (strcmp(val, "on") && strcmp(val, "off"))
			goto bad;
		if (c == 'm')
			o->masquerade = !strcmp(val, "on");
		else if (c == 'F')
			o->flows = !strcmp(val, "on");
		else
			o->kube_proxy_replacement = !strcmp(val, "on");
		break;
	case 'p': {
		unsigned int lo, hi;
		int used = 0;

		if (sscanf(val, "%u-%u%n", &lo, &hi, &used) != 2 || val[used] || !lo || lo > hi ||
		    hi > 65535)
			goto bad;
		/* Replies to the tunnel port would be taken for overlay packets. */
		if (lo <= SLUICE_VXLAN_PORT && SLUICE_VXLAN_PORT <= hi) {
			fprintf(stderr, "sluice-agent: %s %s holds the overlay's UDP port %u; choose "
					"a range without it (default %u-%u)\n", from, val,
				SLUICE_VXLAN_PORT, SLUICE_NAT_PORTS_DEFAULT_MIN, SLUICE_NAT_PORTS_DEFAULT_MAX);
			return -EINVAL;
		}
		o->nat_port_min = lo;
		o->nat_port_max = hi;
		break;
	}
	case 'L':
		if (strcmp(val, "random") && strcmp(val, "maglev"))
			goto bad;
		o->lb_maglev = !strcmp(val, "maglev");
		break;
	case 'T': {
		char *end, why[256];
		unsigned long v = strtoul(val, &end, 10);

		if (*end || end == val || v > UINT32_MAX)
			goto bad;
		if (maglev_check((uint32_t)v, 0, why, sizeof(why))) {
			fprintf(stderr, "sluice-agent: %s\n", why);
			return -EINVAL;
		}
		o->maglev_m = (uint32_t)v;
		break;
	}
	case 'K':
		if (strcmp(val, "auto") && strcmp(val, "off"))
			goto bad;
		o->kubernetes = !strcmp(val, "auto");
		break;
	case 'M': {
		char why[256];

		if (o->nnomasq == sizeof(o->nomasq) / sizeof(o->nomasq[0])) {
			fprintf(stderr, "sluice-agent: %s: at most %zu CIDRs\n", from,
				sizeof(o->nomasq) / sizeof(o->nomasq[0]));
			return -EINVAL;
		}
		if (cidr4_parse(val, &o->nomasq[o->nnomasq], why, sizeof(why))) {
			fprintf(stderr, "sluice-agent: %s: %s\n", from, why);
			return -EINVAL;
		}
		o->nnomasq++;
		break;
	}
	case 'S':
	case 'I':
	case 'W':
	case 'B': {
		char *end;
		unsigned long v = strtoul(val, &end, 10);

		if (*end || end == val ||
		    (c == 'W' ? v > 600 : c == 'B' ? v > 1000 : v < 16 || v > (1ul << 26)))
			goto bad;
		if (c == 'B')
			o->sync_batch_ms = (uint32_t)v;
		else if (c == 'S')
			o->policy_map_size = (uint32_t)v;
		else if (c == 'I')
			o->ipcache_map_size = (uint32_t)v;
		else
			o->pod_wait_ms = (uint32_t)v * 1000;
		break;
	}
	case 'Z':
	case 'Y': {
		char *end;
		unsigned long v = strtoul(val, &end, 10);

		if (*end || end == val || !v ||
		    v > (c == 'Z' ? FLOWLOG_BUFFER_MAX : 86400u))
			goto bad;
		*(c == 'Z' ? &o->flow_buffer : &o->flow_idle_s) = (uint32_t)v;
		break;
	}
	case 'v': o->verbose = 1; break;
	case 'C': o->compile_check = 1; break;
	}
	return 0;
bad: {
	static const char *const takes[128] = {
		['a'] = "tcx, tc or auto", ['r'] = "overlay or native", ['m'] = "on or off",
		['R'] = "on or off", ['F'] = "on or off", ['L'] = "random or maglev",
		['T'] = "a prime number of entries (e.g. 32771)",
		['K'] = "auto or off", ['p'] = "a port range LO-HI within 1-65535 (e.g. 61000-65535)",
		['S'] = "a number of entries, 16 to 67108864",
		['I'] = "a number of entries, 16 to 67108864", ['W'] = "seconds, 0 to 600",
		['B'] = "milliseconds, 0 to 1000",
		['Z'] = "a number of flows, 1 to 16777216", ['Y'] = "seconds, 1 to 86400",
	};

	fprintf(stderr, "sluice-agent: %s takes %s, not '%s'\n", from, takes[c & 127], val);
	return -EINVAL;
}
}

/*
 * Defaults from SLUICE_<OPTION> environment variables (the DaemonSet's
 * ConfigMap), before the command line overrides them. The strings stay in
 * the environment, so the pointers taken here remain valid.
 */
static int env_opts(struct options *o)
{
	for (const struct option *l = longopts; l->name; l++) {
		char var[64], from[80], *val;
		size_t i;

		if (l->val == 'h')
			continue;
		snprintf(var, sizeof(var), "SLUICE_%s", l->name);
		for (i = 7; var[i]; i++)
			var[i] = var[i] == '-' ? '_' : (char)toupper((unsigned char)var[i]);
		val = getenv(var);
		if (!val || !*val)
			continue;
		snprintf(from, sizeof(from), "%s", var);
		if (l->val == 'v' || l->val == 'C') {
			*(l->val == 'v' ? &o->verbose : &o->compile_check) =
				strcmp(val, "0") && strcmp(val, "false");
			continue;
		}
		if (l->val == 'M') {
			/* A comma-separated list; each CIDR is kept in o->nomasq. */
			char *copy = strdup(val), *save = NULL;
			int ret = copy ? 0 : -ENOMEM;

			for (char *t = copy ? strtok_r(copy, ", ", &save) : NULL; t && !ret;
			     t = strtok_r(NULL, ", ", &save))
				ret = set_opt('M', t, from, o);
			free(copy);
			if (ret)
				return ret;
			continue;
		}
		if (set_opt(l->val, val, from, o))
			return -EINVAL;
	}
	return 0;
}

static int parse_args(int argc, char **argv, struct options *o)
{
	int c;

	if (env_opts(o))
		return -EINVAL;
	while ((c = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
		char from[64];

		if (c == 'h') {
			/* One write(2) for the whole text: with stdio's 4 KiB
			 * pipe buffer, `--help | grep -q` (scripts probing for a
			 * flag) could exit after the first chunk and kill us
			 * with SIGPIPE before the second, failing the pipeline
			 * under pipefail. Static: setvbuf needs it past exit. */
			static char help_buf[16384];

			setvbuf(stdout, help_buf, _IOFBF, sizeof(help_buf));
			usage(stdout);
			exit(0);
		}
		if (c == '?' || c == ':') {
			usage(stderr);
			return -EINVAL;
		}
		for (const struct option *l = longopts; l->name; l++)
			if (l->val == c)
				snprintf(from, sizeof(from), "--%s", l->name);
		if (c == 'M' && o->nnomasq && getenv("SLUICE_NON_MASQUERADE_CIDR") &&
		    !o->nomasq_from_cli) {
			o->nnomasq = 0; /* the command line replaces the environment's list */
			o->nomasq_from_cli = 1;
		}
		if (set_opt(c, optarg, from, o))
			return -EINVAL;
	}
	if (optind < argc) {
		fprintf(stderr, "sluice-agent: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	return 0;
}

/* Hold an exclusive lock on <state-dir>/agent.lock for the agent's life:
 * two agents on one state directory would hand out the same addresses. */
/* The API server's address, from the URL the agent talks to
 * ("https://10.0.0.1:6443"), is kept from lock-out by a SluicePrefilter. A
 * host name is not resolved: the prefilter works on addresses it can name. */
static void apiserver_guard(struct store *s, const char *url)
{
	char host[64];
	const char *p = url ? strstr(url, "://") : NULL;
	size_t len;
	uint32_t ip;

	p = p ? p + 3 : url;
	if (!p)
		return;
	len = strcspn(p, ":/");
	if (len >= sizeof(host))
		return;
	memcpy(host, p, len);
	host[len] = '\0';
	if (!ip4_parse(host, &ip))
		store_set_apiserver(s, ip);
}

/* Temporary files a crash left in the state directory itself (its
 * subdirectories' are removed by their modules): lib/statefile's, and the
 * "<file>.tmp" of the versions before it. Only while holding the lock. */
static void remove_temporaries(const char *dir)
{
	static const char *const legacy[] = { "objects.json.tmp", "identities.json.tmp",
					      "prefilter-slots.json.tmp" };
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (dirfd < 0)
		return;
	sf_remove_temporaries(dirfd);
	for (size_t i = 0; i < sizeof(legacy) / sizeof(legacy[0]); i++)
		unlinkat(dirfd, legacy[i], 0);
	close(dirfd);
}

static int lock_state_dir(const char *dir, char *err, size_t errlen)
{
	char path[PATH_MAX];
	int fd;

	if (mkdir(dir, 0700) && errno != EEXIST) {
		snprintf(err, errlen, "cannot create state directory %s: %s", dir, strerror(errno));
		return -errno;
	}
	snprintf(path, sizeof(path), "%s/agent.lock", dir);
	/* Read-only: flock needs no more, and an agent holding no file open
	 * for writing lets the state dir be remounted read-only (ADD then
	 * says so, see endpoints_add). */
	fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return -errno;
	}
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		snprintf(err, errlen, "another sluice-agent uses state directory %s", dir);
		close(fd);
		return -EBUSY;
	}
	remove_temporaries(dir);
	return fd;
}

static int signal_fd(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGPIPE);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		return -errno;
	sigdelset(&set, SIGPIPE);
	return signalfd(-1, &set, SFD_CLOEXEC);
}

/* The interface holding ip (host order), for --device from the Node. */
static const char *device_of(uint32_t ip, char *buf, size_t len)
{
	struct ifaddrs *ifa, *i;
	const char *found = NULL;

	if (getifaddrs(&ifa))
		return NULL;
	for (i = ifa; i; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
			continue;
		if (ntohl(((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr) == ip) {
			snprintf(buf, len, "%s", i->ifa_name);
			found = buf;
			break;
		}
	}
	freeifaddrs(ifa);
	if (found)
		pr_info("device %s holds this node's InternalIP", found);
	return found;
}

/* Without --pod-cidr: apply the API's objects until this node's Node has a
 * spec.podCIDR (kube-controller-manager allocates it). */
static int wait_for_own_node(struct agent *a, int sig_fd, char *err, size_t errlen)
{
	time_t start = time(NULL), said = 0;

	for (;;) {
		const struct store_node *self = store_node(a->store, a->node_name);
		struct pollfd pfd[2] = {
			{ .fd = kube_fd(a->kube), .events = POLLIN },
			{ .fd = sig_fd, .events = POLLIN },
		};

		if (self && self->has_pod_cidr && !self->refused)
			return 0;
		if (time(NULL) - said >= 10) {
			said = time(NULL);
			pr_info("waiting for Node %s's spec.podCIDR from the Kubernetes API (%lds; "
				"Nodes %s)", a->node_name, (long)(said - start),
				kube_kind_synced(a->kube, "Node") ? "listed" : "not listed yet");
		}
		if (poll(pfd, 2, 1000) < 0 && errno != EINTR) {
			snprintf(err, errlen, "poll: %s", strerror(errno));
			return -errno;
		}
		if (pfd[1].revents) {
			snprintf(err, errlen, "stopped while waiting for Node %s", a->node_name);
			return -EINTR;
		}
		if (pfd[0].revents)
			agent_kube_apply(a);
	}
}

int main(int argc, char **argv)
{
	struct options o = {
		.socket_path = SLUICE_DEFAULT_SOCKET,
		.state_dir = "/var/lib/sluice",
		.bpffs = "/sys/fs/bpf/sluice",
		.attach_mode = ATTACH_TC,
		.routing = SLUICE_ROUTING_OVERLAY,
		.masquerade = 1,
		.nat_port_min = SLUICE_NAT_PORTS_DEFAULT_MIN,
		.nat_port_max = SLUICE_NAT_PORTS_DEFAULT_MAX,
		.kubernetes = 1,
		.pod_wait_ms = AGENT_POD_WAIT_MS,
		.sync_batch_ms = AGENT_SYNC_BATCH_MS,
		.maglev_m = MAGLEV_SIZE_DEFAULT,
		.kube_proxy_replacement = 1,
		.metrics_address = PROM_DEFAULT_ADDRESS,
		.flow_buffer = FLOWLOG_BUFFER_DEFAULT,
		.flow_idle_s = FLOWLOG_IDLE_DEFAULT_S,
		.flows = 1,
		.cni_conf_dir = CNICHAIN_DEFAULT_DIR,
	};
	struct node_net net = { 0 };
	struct datapath_opts dp_opts;
	char node_cidr[24], node_dev[IF_NAMESIZE];
	char cgroup_root[PATH_MAX];
	struct agent agent = { 0 };
	char hostname[256], ipam_dir[PATH_MAX], err[PATH_MAX + 512] = "";
	int lock_fd = -1, listen_fd = -1, sig_fd = -1, ret;
	struct api_server *api = NULL;
	struct prom_server *metrics = NULL;
	struct flowres *flowres = NULL;
	bool curl_ready = false;

	if (parse_args(argc, argv, &o))
		return 2;

	log_init("sluice-agent", o.verbose ? LOG_DEBUG : LOG_INFO);
	if (o.proc_sys)
		nl_set_proc_sys(o.proc_sys);
	libbpf_set_print(libbpf_log);
	if (!o.node_name) {
		if (gethostname(hostname, sizeof(hostname)))
			snprintf(hostname, sizeof(hostname), "unknown");
		hostname[sizeof(hostname) - 1] = '\0';
		o.node_name = hostname;
	}
	agent.node_name = o.node_name;
	agent.pod_wait_ms = o.pod_wait_ms;
	agent.sync_batch_ms = o.sync_batch_ms;
	agent.socket_path = o.socket_path;
	agent_metrics_init(&agent.metrics);

	/* Before anything else: refuse a socket directory others can write. */
	ret = api_check_socket_dirs(o.socket_path, err, sizeof(err));
	if (ret)
		goto cleanup;
	sig_fd = signal_fd();
	if (sig_fd < 0) {
		ret = sig_fd;
		snprintf(err, sizeof(err), "cannot set up signal handling: %s", strerror(-ret));
		goto cleanup;
	}
	lock_fd = lock_state_dir(o.state_dir, err, sizeof(err));
	if (lock_fd < 0) {
		ret = lock_fd;
		goto cleanup;
	}
	/* Before the datapath is touched: a port in use stops the start. The
	 * scrapes are answered from the main loop on. */
	ret = prom_server_open(&metrics, o.metrics_address, &agent, err, sizeof(err));
	if (ret)
		goto cleanup;
	ret = store_open(&agent.store, o.state_dir, err, sizeof(err));
	if (ret)
		goto cleanup;
	ret = store_set_self(agent.store, o.node_name, NULL, 0);
	if (ret)
		goto cleanup;
	if (o.kubernetes && (o.kubeconfig || o.k8s_api_server || kube_in_cluster())) {
		struct kube_config kc;
		const char *sa = getenv("SLUICE_SERVICEACCOUNT_DIR");

		ret = kube_config_load(&kc, o.kubeconfig, sa && *sa ? sa : KUBE_SA_DIR,
				       o.k8s_api_server, err, sizeof(err));
		if (ret)
			goto cleanup;
		/* Only with the API (it sets up TLS: megabytes), and before the
		 * watcher threads: curl's global set-up is not thread-safe. */
		if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
			kube_config_free(&kc);
			snprintf(err, sizeof(err), "curl_global_init failed");
			ret = -ENOMEM;
			goto cleanup;
		}
		curl_ready = true;
		apiserver_guard(agent.store, kc.server);
		ret = kube_start(&agent.kube, &kc, o.node_name, err, sizeof(err));
		kube_config_free(&kc);
		if (ret)
			goto cleanup;
		if (!o.pod_cidr) {
			ret = wait_for_own_node(&agent, sig_fd, err, sizeof(err));
			if (ret)
				goto cleanup;
		}
	} else if (o.kubeconfig) {
		pr_warn("--kubeconfig %s ignored: --kubernetes off", o.kubeconfig);
	}
	if (!o.pod_cidr || !o.device) {
		const struct store_node *self = store_node(agent.store, o.node_name);

		if (!o.device && self && self->ip && agent.kube)
			o.device = device_of(self->ip, node_dev, sizeof(node_dev));
	}
	if (!o.pod_cidr) {
		const struct store_node *self = store_node(agent.store, o.node_name);

		if (!self || !self->has_pod_cidr || self->refused) {
			snprintf(err, sizeof(err),
				 "no pod CIDR: pass --pod-cidr (e.g. 10.244.1.0/24), or apply a Node "
				 "object named %s with spec.podCIDR and restart%s%s", o.node_name,
				 self && self->refused ? "; its Node object is refused: " : "",
				 self && self->refused && self->why ? self->why : "");
			ret = -EINVAL;
			goto cleanup;
		}
		cidr4_format(&self->pod_cidr, node_cidr, sizeof(node_cidr));
		o.pod_cidr = node_cidr;
	}
	snprintf(ipam_dir, sizeof(ipam_dir), "%s/ipam", o.state_dir);
	ret = ipam_open(&agent.ipam, ipam_dir, o.pod_cidr, err, sizeof(err));
	if (ret)
		goto cleanup;
	ret = node_net_open(&net, o.routing, o.device, o.node_ip, err, sizeof(err));
	if (ret)
		goto cleanup;
	agent.net = &net;
	/* Other Node objects are checked against this node's range and address. */
	ret = store_set_self(agent.store, o.node_name, ipam_range(agent.ipam), net.node_ip);
	if (ret)
		goto cleanup;
	net.masquerade = o.masquerade && net.dev_ifindex;
	net.nomasq_extra = o.nomasq;
	net.nnomasq_extra = o.nnomasq;
	/* External Services' SNAT (--kube-proxy-replacement) draws from the
	 * same range. */
	if ((net.masquerade || o.kube_proxy_replacement) && net.node_ip &&
	    node_net_reserve_nat_ports(&net, o.nat_port_min, o.nat_port_max, err, sizeof(err))) {
		/* The datapath still works; the guarantee that a node socket
		 * never shares a masquerade port then rests on
		 * ip_local_port_range alone. */
		pr_warn("%s", err);
		err[0] = '\0';
	}
	dp_opts = (struct datapath_opts){ .mode = o.attach_mode, .routing = o.routing,
					  .vxlan_ifindex = net.vxlan_ifindex,
					  .masquerade = net.masquerade, .node_ip = net.node_ip,
					  .nat_port_min = (uint16_t)o.nat_port_min,
					  .nat_port_max = (uint16_t)o.nat_port_max,
					  .policy_map_size = o.policy_map_size,
					  .ipcache_map_size = o.ipcache_map_size,
					  .lb = o.kube_proxy_replacement,
					  .maglev_m = o.lb_maglev ? o.maglev_m : 0,
					  .pod_net = ipam_range(agent.ipam)->net,
					  .pod_prefix = ipam_range(agent.ipam)->prefix,
					  .flows_off = !o.flows };
	agent.kube_proxy_replacement = o.kube_proxy_replacement;
	agent.cnichain = cnichain_new(o.cni_conf_dir);
	if (!agent.cnichain) {
		ret = -ENOMEM;
		goto cleanup;
	}
	cnichain_refresh(agent.cnichain);	/* warns now about a chained bandwidth plugin */
	ret = datapath_open(&agent.dp, o.bpffs, &dp_opts, err, sizeof(err));
	if (ret)
		goto cleanup;
	ret = node_net_attach(&net, agent.dp, err, sizeof(err));
	if (ret)
		goto cleanup;
	/* After from_netdev: until the XDP program is in place, tc runs the
	 * first stage (sluice_xdpst_v1). */
	if (net.dev_ifindex) {
		ret = datapath_attach_xdp(agent.dp, net.dev_ifindex, net.device, o.xdp, &agent.xdp,
					  err, sizeof(err));
		if (ret)
			goto cleanup;
		agent.has_xdp = 1;
		pr_info("XDP on %s (driver %s): %s requested, %s in use%s%s", net.device,
			agent.xdp.driver, xdp_request_name(o.xdp), xdp_mode_name(agent.xdp.mode),
			agent.xdp.reason[0] ? ": " : "", agent.xdp.reason);
	}
	{
		struct pf_maps pm;
		char slots[PATH_MAX];

		snprintf(slots, sizeof(slots), "%s/prefilter-slots.json", o.state_dir);
		ret = pf_maps_open(&pm, o.bpffs, err, sizeof(err));
		if (!ret)
			ret = pf_sync_open(&agent.prefilter, &pm, slots, err, sizeof(err));
		if (ret)
			goto cleanup;
	}
	if (o.kube_proxy_replacement) {
		ret = datapath_cgroup_root(o.cgroup_root, cgroup_root, sizeof(cgroup_root), err,
					   sizeof(err));
		if (!ret)
			ret = datapath_attach_sock(agent.dp, cgroup_root, err, sizeof(err));
		if (ret)
			goto cleanup;
		pr_info("node sockets' Service hooks attached to the cgroup %s", cgroup_root);
	} else {
		/* A previous agent's hooks would keep translating. */
		datapath_detach_sock(o.bpffs);
	}
	ret = identities_open(&agent.ids, o.state_dir, err, sizeof(err));
	if (ret)
		goto cleanup;
	/* Syncs are incremental: the table is written at most every 5 s. */
	identities_set_save_interval(agent.ids, 5);
	agent.compile_check = o.compile_check;
	ret = endpoints_open(&agent.eps, agent.dp, agent.ipam, o.state_dir, err, sizeof(err));
	if (ret)
		goto cleanup;
	endpoints_set_pod_mtu(agent.eps, net.pod_mtu);
	endpoints_set_hostports(agent.eps, o.kube_proxy_replacement);
	ret = compiler_open(&agent.compiler, agent.dp, err, sizeof(err));
	if (ret)
		goto cleanup;
	ret = compiler_reserve_identities(agent.compiler, agent.ids);
	if (ret)
		goto cleanup;
	/* A state that does not fit (an oversized stored policy, maps pinned
	 * smaller) must not keep the node from serving: start with what fits,
	 * keep the previous maps otherwise, and say so. */
	if (agent_policy_sync(&agent, err, sizeof(err)))
		pr_err("start-up: the datapath is not in line with the stored objects: %s", err);
	err[0] = '\0';
	{
		struct flow_resolver fr;

		ret = flowres_open(&flowres, &agent, &fr);
		if (!ret)
			ret = flowlog_open(&agent.flows, o.flow_buffer, o.flow_idle_s, o.node_name,
					   &fr);
		if (ret) {
			snprintf(err, sizeof(err), "cannot keep %u flows: out of memory",
				 o.flow_buffer);
			goto cleanup;
		}
		ret = flowlog_attach(agent.flows, datapath_flow_rb_fd(agent.dp),
				     datapath_flow4_map_fd(agent.dp), datapath_flow_st_fd(agent.dp),
				     err, sizeof(err));
		if (ret)
			goto cleanup;
	}
	/* The DELs queued while no agent ran come first: nothing is served
	 * before them. */
	listen_fd = delq_replay_and_listen(&agent, o.socket_path, err, sizeof(err));
	if (listen_fd < 0) {
		ret = listen_fd;
		goto cleanup;
	}
	agent.ready = 1;
	pr_info("node %s ready: pod CIDR %s, %s routing, %zu endpoint(s) recovered, attach mode %s, "
		"API on %s", o.node_name, o.pod_cidr, routing_name(o.routing),
		endpoints_count(agent.eps), attach_mode_name(datapath_attach_mode(agent.dp)),
		o.socket_path);

	ret = api_server_open(&api, listen_fd);
	if (!ret)
		ret = health_open(&agent.health);
	if (ret) {
		snprintf(err, sizeof(err), "out of memory");
		goto cleanup;
	}
	/* The start-up sync ran before there was a health server. */
	if (agent.kube_proxy_replacement && agent_services_sync(&agent, err, sizeof(err)))
		pr_err("start-up: the Service maps are not in line with the stored objects: %s",
		       err);
	err[0] = '\0';
	for (;;) {
		struct pollfd pfd[4 + API_MAX_CONNS + 1 + HEALTH_POLLFDS + 1] = {
			{ .fd = sig_fd, .events = POLLIN },
			/* Not while a batch window is open: its end applies the
			 * queue, and poll would wake at once until then. */
			{ .fd = agent.kube && !agent.batch_open ? kube_fd(agent.kube) : -1,
			  .events = POLLIN },
			{ .fd = node_net_neigh_fd(&net), .events = POLLIN },
			/* Flow records (one epoll fd for the ring buffer). */
			{ .fd = flowlog_poll_fd(agent.flows), .events = POLLIN },
		};
		size_t napi = api_server_pollfds(api, pfd + 4);
		size_t nhealth = health_pollfds(agent.health, pfd + 4 + napi);
		int timeout = api_server_timeout_ms(api), ht = health_timeout_ms(agent.health);
		int bt = agent_kube_batch_timeout_ms(&agent), ft = flowlog_tick(agent.flows);
		int mt = prom_server_timeout_ms(metrics);
		struct pollfd *mfd = &pfd[4 + napi + nhealth];

		prom_server_pollfd(metrics, mfd);
		if (ht >= 0 && (timeout < 0 || ht < timeout))
			timeout = ht;
		if (bt >= 0 && (timeout < 0 || bt < timeout))
			timeout = bt;
		if (ft >= 0 && (timeout < 0 || ft < timeout))
			timeout = ft;
		if (mt >= 0 && (timeout < 0 || mt < timeout))
			timeout = mt;
		if (poll(pfd, 4 + napi + nhealth + 1, timeout) < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			snprintf(err, sizeof(err), "poll: %s", strerror(errno));
			goto cleanup;
		}
		if (pfd[0].revents) {
			struct signalfd_siginfo si;

			if (read(sig_fd, &si, sizeof(si)) == sizeof(si))
				pr_info("signal %u: stopping; the datapath keeps running", si.ssi_signo);
			break;
		}
		if (pfd[2].revents)
			node_net_neigh_events(&net);
		if (pfd[3].revents)
			flowlog_consume(agent.flows);
		/* Before the Kubernetes events: they may open and close
		 * listeners, which this pfd array would no longer match. */
		health_run(agent.health, pfd + 4 + napi, nhealth);
		if (pfd[1].revents) {
			long long t0 = api_now_ms();

			agent_kube_wakeup(&agent);
			api_server_credit(api, api_now_ms() - t0);
		}
		/* A batch window over: its events, applied and synced before
		 * the requests are served. */
		if (agent_kube_batch_timeout_ms(&agent) == 0) {
			long long t0 = api_now_ms();

			agent_kube_apply(&agent);
			api_server_credit(api, api_now_ms() - t0);
		}
		api_server_run(&agent, api, pfd + 4);
		/* Scrapes: rendered here, in the agent's own thread. */
		if (mfd->revents || mt >= 0) {
			long long t0 = api_now_ms();

			prom_server_run(metrics);
			api_server_credit(api, api_now_ms() - t0);
		}
	}
	ret = 0;
cleanup:
	if (ret)
		pr_err("%s", err[0] ? err : strerror(-ret));
	api_server_close(api);
	prom_server_close(metrics);
	health_close(agent.health);
	if (listen_fd >= 0) {
		close(listen_fd);
		unlink(o.socket_path);
	}
	kube_stop(agent.kube);
	flowlog_close(agent.flows);
	flowres_close(flowres);
	cnichain_free(agent.cnichain);
	compiler_close(agent.compiler);
	pf_sync_close(agent.prefilter);
	for (size_t i = 0; i < agent.nprev_locals; i++)
		free(agent.prev_locals[i]);
	free(agent.prev_locals);
	endpoints_close(agent.eps);
	identities_close(agent.ids);
	store_close(agent.store);
	lb_ids_free(&agent.lb_ids);
	datapath_close(agent.dp);
	node_net_close(&net);
	ipam_close(agent.ipam);
	if (lock_fd >= 0)
		close(lock_fd);
	if (sig_fd >= 0)
		close(sig_fd);
	if (curl_ready)
		curl_global_cleanup();
	return ret ? 1 : 0;
}
