// SPDX-License-Identifier: Apache-2.0
/*
 * sluice-agent: the node agent. Loads the datapath, owns its pinned maps,
 * wires pods up for the CNI plugin and answers on a local Unix socket.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "api.h"
#include "endpoint.h"
#include "ipam.h"
#include "cidr.h"
#include "loader.h"
#include "log.h"
#include "node.h"
#include "server.h"

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
	struct cidr4 nomasq[16];
	size_t nnomasq;
	int verbose;
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
		"                     other nodes' pod CIDRs through it\n"
		"  --node-ip ADDR     this node's address (default: the first address of --device)\n"
		"  --masquerade on|off\n"
		"                     pods' traffic to outside the cluster leaves --device with\n"
		"                     the node's address (default on; needs --device)\n"
		"  --non-masquerade-cidr CIDR\n"
		"                     never masquerade traffic to CIDR (repeatable; pod CIDRs and\n"
		"                     node addresses never are)\n"
		"  --node-name NAME   this node's name (default: the hostname)\n"
		"  --socket PATH      API socket (default %s)\n"
		"  --state-dir DIR    IPAM and endpoint state (default /var/lib/sluice)\n"
		"  --bpffs DIR        where maps and links are pinned (default /sys/fs/bpf/sluice)\n"
		"  --attach-mode MODE tc, tcx or auto (tcx when the kernel has it); default tc,\n"
		"                     because each tcx attach waits for an RCU grace period\n"
		"  -v, --verbose      debug logging, including libbpf's\n"
		"  -h, --help         this help\n"
		"\n"
		"Several agents can run on one machine, one per network namespace, each with\n"
		"its own --socket, --state-dir and --bpffs.\n",
		SLUICE_DEFAULT_SOCKET);
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

static int parse_args(int argc, char **argv, struct options *o)
{
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
		{ "masquerade", required_argument, NULL, 'm' },
		{ "non-masquerade-cidr", required_argument, NULL, 'M' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': o->pod_cidr = optarg; break;
		case 'n': o->node_name = optarg; break;
		case 's': o->socket_path = optarg; break;
		case 'd': o->state_dir = optarg; break;
		case 'b': o->bpffs = optarg; break;
		case 'a':
			if (attach_mode_parse(optarg, &o->attach_mode)) {
				fprintf(stderr, "sluice-agent: --attach-mode takes tcx, tc or auto, not '%s'\n",
					optarg);
				return -EINVAL;
			}
			break;
		case 'r':
			if (routing_parse(optarg, &o->routing)) {
				fprintf(stderr, "sluice-agent: --routing takes overlay or native, not '%s'\n",
					optarg);
				return -EINVAL;
			}
			break;
		case 'D': o->device = optarg; break;
		case 'i': o->node_ip = optarg; break;
		case 'm':
			if (strcmp(optarg, "on") && strcmp(optarg, "off")) {
				fprintf(stderr, "sluice-agent: --masquerade takes on or off, not '%s'\n",
					optarg);
				return -EINVAL;
			}
			o->masquerade = !strcmp(optarg, "on");
			break;
		case 'M': {
			char why[256];

			if (o->nnomasq == sizeof(o->nomasq) / sizeof(o->nomasq[0])) {
				fprintf(stderr, "sluice-agent: at most %zu --non-masquerade-cidr\n",
					sizeof(o->nomasq) / sizeof(o->nomasq[0]));
				return -EINVAL;
			}
			if (cidr4_parse(optarg, &o->nomasq[o->nnomasq], why, sizeof(why))) {
				fprintf(stderr, "sluice-agent: --non-masquerade-cidr: %s\n", why);
				return -EINVAL;
			}
			o->nnomasq++;
			break;
		}
		case 'v': o->verbose = 1; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sluice-agent: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	return 0;
}

/* Hold an exclusive lock on <state-dir>/agent.lock for the agent's life:
 * two agents on one state directory would hand out the same addresses. */
static int lock_state_dir(const char *dir, char *err, size_t errlen)
{
	char path[PATH_MAX];
	int fd;

	if (mkdir(dir, 0700) && errno != EEXIST) {
		snprintf(err, errlen, "cannot create state directory %s: %s", dir, strerror(errno));
		return -errno;
	}
	snprintf(path, sizeof(path), "%s/agent.lock", dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return -errno;
	}
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		snprintf(err, errlen, "another sluice-agent uses state directory %s", dir);
		close(fd);
		return -EBUSY;
	}
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

int main(int argc, char **argv)
{
	struct options o = {
		.socket_path = SLUICE_DEFAULT_SOCKET,
		.state_dir = "/var/lib/sluice",
		.bpffs = "/sys/fs/bpf/sluice",
		.attach_mode = ATTACH_TC,
		.routing = SLUICE_ROUTING_OVERLAY,
		.masquerade = 1,
	};
	struct node_net net = { 0 };
	struct datapath_opts dp_opts;
	char node_cidr[24];
	struct agent agent = { 0 };
	char hostname[256], ipam_dir[PATH_MAX], err[PATH_MAX + 512] = "";
	int lock_fd = -1, listen_fd = -1, sig_fd = -1, ret;

	if (parse_args(argc, argv, &o))
		return 2;
	log_init("sluice-agent", o.verbose ? LOG_DEBUG : LOG_INFO);
	libbpf_set_print(libbpf_log);
	if (!o.node_name) {
		if (gethostname(hostname, sizeof(hostname)))
			snprintf(hostname, sizeof(hostname), "unknown");
		hostname[sizeof(hostname) - 1] = '\0';
		o.node_name = hostname;
	}
	agent.node_name = o.node_name;
	agent.socket_path = o.socket_path;

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
	ret = store_open(&agent.store, o.state_dir, err, sizeof(err));
	if (ret)
		goto cleanup;
	if (!o.pod_cidr) {
		const struct store_node *self = store_node(agent.store, o.node_name);

		if (!self || !self->has_pod_cidr) {
			snprintf(err, sizeof(err),
				 "no pod CIDR: pass --pod-cidr (e.g. 10.244.1.0/24), or apply a Node "
				 "object named %s with spec.podCIDR and restart", o.node_name);
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
	net.masquerade = o.masquerade && net.dev_ifindex;
	net.nomasq_extra = o.nomasq;
	net.nnomasq_extra = o.nnomasq;
	dp_opts = (struct datapath_opts){ .mode = o.attach_mode, .routing = o.routing,
					  .vxlan_ifindex = net.vxlan_ifindex,
					  .masquerade = net.masquerade, .node_ip = net.node_ip };
	ret = datapath_open(&agent.dp, o.bpffs, &dp_opts, err, sizeof(err));
	if (ret)
		goto cleanup;
	ret = node_net_attach(&net, agent.dp, err, sizeof(err));
	if (ret)
		goto cleanup;
	ret = identities_open(&agent.ids, o.state_dir, err, sizeof(err));
	if (ret)
		goto cleanup;
	ret = endpoints_open(&agent.eps, agent.dp, agent.ipam, o.state_dir, err, sizeof(err));
	if (ret)
		goto cleanup;
	endpoints_set_pod_mtu(agent.eps, net.pod_mtu);
	ret = compiler_open(&agent.compiler, agent.dp, err, sizeof(err));
	if (ret)
		goto cleanup;
	ret = agent_policy_sync(&agent, err, sizeof(err));
	if (ret)
		goto cleanup;
	listen_fd = api_listen(o.socket_path, err, sizeof(err));
	if (listen_fd < 0) {
		ret = listen_fd;
		goto cleanup;
	}
	agent.ready = 1;
	pr_info("node %s ready: pod CIDR %s, %s routing, %zu endpoint(s) recovered, attach mode %s, "
		"API on %s", o.node_name, o.pod_cidr, routing_name(o.routing),
		endpoints_count(agent.eps), attach_mode_name(datapath_attach_mode(agent.dp)),
		o.socket_path);

	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = listen_fd, .events = POLLIN },
			{ .fd = sig_fd, .events = POLLIN },
		};

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			snprintf(err, sizeof(err), "poll: %s", strerror(errno));
			goto cleanup;
		}
		if (pfd[1].revents) {
			struct signalfd_siginfo si;

			if (read(sig_fd, &si, sizeof(si)) == sizeof(si))
				pr_info("signal %u: stopping; the datapath keeps running", si.ssi_signo);
			break;
		}
		if (pfd[0].revents)
			api_serve_one(&agent, listen_fd);
	}
	ret = 0;
cleanup:
	if (ret)
		pr_err("%s", err[0] ? err : strerror(-ret));
	if (listen_fd >= 0) {
		close(listen_fd);
		unlink(o.socket_path);
	}
	compiler_close(agent.compiler);
	endpoints_close(agent.eps);
	identities_close(agent.ids);
	store_close(agent.store);
	datapath_close(agent.dp);
	node_net_close(&net);
	ipam_close(agent.ipam);
	if (lock_fd >= 0)
		close(lock_fd);
	if (sig_fd >= 0)
		close(sig_fd);
	return ret ? 1 : 0;
}
