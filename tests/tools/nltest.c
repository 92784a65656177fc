// SPDX-License-Identifier: Apache-2.0
/*
 * nltest: exercise agent/netlink.c in two throw-away network namespaces.
 *
 *   gcc -Wall -Wextra -Werror -std=gnu11 -D_GNU_SOURCE -Ilib -Iagent tests/tools/nltest.c \
 *       agent/netlink.c lib/log.c -lmnl -o /tmp/nltest && sudo /tmp/nltest [-v]
 *
 * Namespaces "nlt-<pid>-h" (host side) and "nlt-<pid>-p" (pod side) are made
 * with `ip netns add` and removed on every exit path: normal return, failed
 * check, atexit, and fatal signals (the handler only umounts and unlinks
 * /run/netns/<name>, which is async-signal-safe). Leftovers of runs killed
 * with SIGKILL are removed at start-up. All addresses are 10.250.x.x and all
 * traffic stays between the two namespaces.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "netlink.h"

#define HOST_IF  "vnlt0"
#define POD_IF   "eth0"
#define NETNS_RUN_DIR "/run/netns"
#define TIMING_RUNS 50

/* Test-program state (the module under test keeps none). */
static char ns_host[64], ns_pod[64];
static char path_host[128], path_pod[128];
static volatile sig_atomic_t have_host, have_pod;
static int n_pass, n_fail;
static char ping_cmd[32];

/* ---- namespace lifetime -------------------------------------------------- */

/* What `ip netns del` does, minus the non-async-signal-safe parts. */
static void ns_remove(const char *path)
{
	umount2(path, MNT_DETACH);
	unlink(path);
}

static void cleanup_ns(void)
{
	if (have_host) {
		ns_remove(path_host);
		have_host = 0;
	}
	if (have_pod) {
		ns_remove(path_pod);
		have_pod = 0;
	}
}

static void on_signal(int sig)
{
	cleanup_ns();
	signal(sig, SIG_DFL);
	raise(sig);
}

/* True unless pid is gone or a zombie (a killed run not yet reaped). */
static int pid_alive(pid_t pid)
{
	char path[64], buf[256], *p;
	FILE *f;
	int alive = 1;

	if (kill(pid, 0) < 0 && errno == ESRCH)
		return 0;
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	f = fopen(path, "r");
	if (!f)
		return errno != ENOENT;
	if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) && p[1] == ' ' && p[2] == 'Z')
		alive = 0;
	fclose(f);
	return alive;
}

/* Remove nlt-<pid>-* namespaces whose pid is gone (runs killed with SIGKILL). */
static void reap_stale(void)
{
	DIR *d = opendir(NETNS_RUN_DIR);
	struct dirent *de;
	char path[300];
	long pid;

	if (!d)
		return;
	while ((de = readdir(d))) {
		if (sscanf(de->d_name, "nlt-%ld-", &pid) != 1 || pid <= 0 || pid == (long)getpid())
			continue;
		if (pid_alive((pid_t)pid))
			continue;
		snprintf(path, sizeof(path), NETNS_RUN_DIR "/%s", de->d_name);
		printf("removing stale namespace %s\n", de->d_name);
		ns_remove(path);
	}
	closedir(d);
}

/* ---- helpers ----------------------------------------------------------- */

#define CHECK(cond, ...)                                                        \
	do {                                                                    \
		if (cond) {                                                     \
			n_pass++;                                               \
		} else {                                                        \
			n_fail++;                                               \
			printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);  \
			printf(__VA_ARGS__);                                    \
			printf("\n");                                           \
		}                                                               \
	} while (0)

/* ret is expected to equal want; prints the errno text otherwise. */
#define CHECK_RET(expr, want)                                                   \
	do {                                                                    \
		int r_ = (expr);                                                \
		CHECK(r_ == (want), "%s returned %d (%s), expected %d (%s)", #expr, r_, \
		      r_ < 0 ? strerror(-r_) : "-", (want), (want) < 0 ? strerror(-(want)) : "-"); \
	} while (0)

#define REQUIRE_RET(expr, want)                                                 \
	do {                                                                    \
		int r_ = (expr);                                                \
		CHECK(r_ == (want), "%s returned %d (%s), expected %d", #expr, r_, \
		      r_ < 0 ? strerror(-r_) : "-", (want));                     \
		if (r_ != (want))                                               \
			return -1;                                              \
	} while (0)

static struct in_addr ip4(const char *s)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		abort();
	return a;
}

static const char *mac_str(const unsigned char *m, char *buf)
{
	sprintf(buf, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
	return buf;
}

static long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Run a shell command, capture stdout+stderr; returns the exit status. */
__attribute__((format(printf, 3, 4)))
static int run(char *out, size_t outsz, const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	FILE *p;
	size_t n = 0;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	strncat(cmd, " 2>&1", sizeof(cmd) - strlen(cmd) - 1);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	if (out && outsz) {
		n = fread(out, 1, outsz - 1, p);
		out[n] = '\0';
	} else {
		char sink[256];

		while (fread(sink, 1, sizeof(sink), p) > 0)
			;
	}
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static unsigned long netns_inode(void)
{
	struct stat st;

	if (stat("/proc/thread-self/ns/net", &st) < 0)
		return 0;
	return (unsigned long)st.st_ino;
}

static int count_cb(const struct nl_link *l, void *arg)
{
	(void)l;
	(*(int *)arg)++;
	return 0;
}

static int stop_cb(const struct nl_link *l, void *arg)
{
	(void)l;
	(*(int *)arg)++;
	return 7;
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return x < y ? -1 : x > y;
}

static void report_us(const char *what, long long *v, int n)
{
	long long sum = 0;
	int i;

	qsort(v, n, sizeof(*v), cmp_ll);
	for (i = 0; i < n; i++)
		sum += v[i];
	printf("timing %-44s n=%d min=%lld median=%lld mean=%lld max=%lld us\n", what, n, v[0], v[n / 2],
	       sum / n, v[n - 1]);
}

/* ---- the test ---------------------------------------------------------- */

struct ctx {
	int fd_host, fd_pod;
	struct nl_handle *hh, *hp;   /* handles in the host-side and pod-side netns */
};

static int test_open(struct ctx *c)
{
	unsigned long ino = netns_inode();
	struct nl_handle *h = NULL;
	struct nl_link l;
	int fd;

	/* Not a netns fd: setns fails, the thread must stay where it was. */
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	CHECK_RET(nl_open(&h, fd), -EINVAL);
	CHECK(h == NULL, "handle set on failure");
	close(fd);
	CHECK(netns_inode() == ino, "netns changed after failed nl_open");

	/* Current netns: read-only query of lo. */
	REQUIRE_RET(nl_open(&h, -1), 0);
	CHECK_RET(nl_link_get(h, "lo", &l), 0);
	CHECK(l.ifindex == 1 && l.up, "lo ifindex %d up %d", l.ifindex, l.up);
	nl_close(h);
	nl_close(NULL);

	REQUIRE_RET(nl_open(&c->hh, c->fd_host), 0);
	REQUIRE_RET(nl_open(&c->hp, c->fd_pod), 0);
	CHECK(netns_inode() == ino, "netns not restored after nl_open");
	/* Each handle sees its own netns: lo exists in both, nothing else yet. */
	CHECK_RET(nl_link_get(c->hp, "lo", &l), 0);
	CHECK_RET(nl_link_get(c->hh, "eth0", &l), -ENODEV);
	return 0;
}

static int test_pair(struct ctx *c)
{
	static const unsigned char pod_mac[6] = { 0x02, 0x00, 0x0a, 0xfa, 0x01, 0x02 };
	static const unsigned char bad_mac[6] = { 0x01, 0x00, 0x5e, 0x00, 0x00, 0x01 };   /* multicast */
	static const unsigned char other_mac[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x99 };
	const struct in_addr any = { 0 }, gw = ip4("10.250.0.1"), pod_ip = ip4("10.250.1.2");
	const struct in_addr lo_ip = ip4("10.250.0.9");
	struct nl_link host, pod, l, lo_h, lo_p;
	char out[4096], m1[18], m2[18], want[256];
	int n, r;

	/* Before anything exists. */
	CHECK_RET(nl_link_get(c->hh, HOST_IF, &l), -ENODEV);
	CHECK_RET(nl_link_get_by_index(c->hh, 99999, &l), -ENODEV);
	CHECK_RET(nl_route_has4(c->hp, 1, any, 0, gw), 0);

	/* Create, peer directly in the pod netns, pod MAC and MTU set. */
	REQUIRE_RET(nl_veth_create(c->hh, HOST_IF, POD_IF, c->fd_pod, 1450, pod_mac), 0);
	REQUIRE_RET(nl_link_get(c->hh, HOST_IF, &host), 0);
	REQUIRE_RET(nl_link_get(c->hp, POD_IF, &pod), 0);
	CHECK(strcmp(host.name, HOST_IF) == 0 && host.mtu == 1450 && !host.up, "host %s mtu %u up %d", host.name,
	      host.mtu, host.up);
	CHECK(strcmp(pod.name, POD_IF) == 0 && pod.mtu == 1450 && !pod.up, "pod %s mtu %u up %d", pod.name,
	      pod.mtu, pod.up);
	CHECK(memcmp(pod.mac, pod_mac, 6) == 0, "pod mac %s", mac_str(pod.mac, m1));
	CHECK(memcmp(host.mac, "\0\0\0\0\0\0", 6) != 0, "host mac is zero");
	CHECK_RET(nl_link_get(c->hh, POD_IF, &l), -ENODEV);      /* peer is not in the host netns */
	CHECK_RET(nl_link_get(c->hp, HOST_IF, &l), -ENODEV);
	CHECK_RET(nl_link_get_by_index(c->hp, pod.ifindex, &l), 0);
	CHECK(strcmp(l.name, POD_IF) == 0 && memcmp(l.mac, pod_mac, 6) == 0, "by index: %s", l.name);

	/* -EEXIST for either name; the failed attempt leaves nothing behind. */
	CHECK_RET(nl_veth_create(c->hh, HOST_IF, "eth1", c->fd_pod, 0, NULL), -EEXIST);
	CHECK_RET(nl_veth_create(c->hh, "vnlt1", POD_IF, c->fd_pod, 0, NULL), -EEXIST);
	CHECK_RET(nl_link_get(c->hh, "vnlt1", &l), -ENODEV);
	CHECK_RET(nl_link_get(c->hp, "eth1", &l), -ENODEV);
	CHECK_RET(nl_veth_create(c->hh, "vnlt-name-too-long", POD_IF, c->fd_pod, 0, NULL), -EINVAL);
	r = nl_veth_create(c->hh, "vnlt2", "eth2", c->fd_pod, 0, bad_mac);
	CHECK(r < 0 && r != -1, "multicast pod MAC accepted: %d", r);
	printf("info: multicast pod MAC rejected with %d (%s)\n", r, strerror(-r));
	CHECK_RET(nl_link_get(c->hh, "vnlt2", &l), -ENODEV);

	/* Up. */
	REQUIRE_RET(nl_link_get(c->hh, "lo", &lo_h), 0);
	REQUIRE_RET(nl_link_get(c->hp, "lo", &lo_p), 0);
	CHECK_RET(nl_link_set_up(c->hh, host.ifindex), 0);
	CHECK_RET(nl_link_set_up(c->hh, lo_h.ifindex), 0);
	CHECK_RET(nl_link_set_up(c->hp, pod.ifindex), 0);
	CHECK_RET(nl_link_set_up(c->hp, lo_p.ifindex), 0);
	CHECK_RET(nl_link_set_up(c->hp, 99999), -ENODEV);
	CHECK_RET(nl_link_get(c->hp, POD_IF, &l), 0);
	CHECK(l.up, "pod side not up");
	CHECK_RET(nl_link_get_by_index(c->hh, host.ifindex, &l), 0);
	CHECK(l.up, "host side not up");

	/* Addresses: pod /32, gateway /32 on the host side, one more on host lo. */
	CHECK_RET(nl_addr_has4(c->hp, pod.ifindex, pod_ip, 32), 0);
	CHECK_RET(nl_addr_add4(c->hp, pod.ifindex, pod_ip, 32), 0);
	CHECK_RET(nl_addr_add4(c->hp, pod.ifindex, pod_ip, 32), -EEXIST);
	CHECK_RET(nl_addr_add4(c->hh, host.ifindex, gw, 32), 0);
	CHECK_RET(nl_addr_add4(c->hh, lo_h.ifindex, lo_ip, 32), 0);
	CHECK_RET(nl_addr_has4(c->hp, pod.ifindex, pod_ip, 32), 1);
	CHECK_RET(nl_addr_has4(c->hp, pod.ifindex, pod_ip, 24), 0);
	CHECK_RET(nl_addr_has4(c->hp, pod.ifindex, gw, 32), 0);
	CHECK_RET(nl_addr_has4(c->hp, lo_p.ifindex, pod_ip, 32), 0);
	CHECK_RET(nl_addr_has4(c->hh, host.ifindex, gw, 32), 1);

	/* Pod routes: gateway /32 scope link, then default via it onlink. */
	CHECK_RET(nl_route_add4(c->hp, pod.ifindex, gw, 32, any), 0);
	CHECK_RET(nl_route_add4(c->hp, pod.ifindex, any, 0, gw), 0);
	CHECK_RET(nl_route_add4(c->hp, pod.ifindex, gw, 32, any), 0);   /* idempotent */
	CHECK_RET(nl_route_add4(c->hp, pod.ifindex, any, 0, gw), 0);
	CHECK_RET(nl_route_add4(c->hp, pod.ifindex, ip4("10.250.1.0"), 16, any), -EINVAL); /* host bits */
	CHECK_RET(nl_route_add4(c->hh, host.ifindex, pod_ip, 32, any), 0);
	CHECK_RET(nl_route_has4(c->hp, pod.ifindex, gw, 32, any), 1);
	CHECK_RET(nl_route_has4(c->hp, pod.ifindex, any, 0, gw), 1);
	CHECK_RET(nl_route_has4(c->hp, pod.ifindex, any, 0, ip4("10.250.0.2")), 0);  /* other gw */
	CHECK_RET(nl_route_has4(c->hp, pod.ifindex, any, 0, any), 0);                /* no gw */
	CHECK_RET(nl_route_has4(c->hp, pod.ifindex, gw, 32, gw), 0);
	CHECK_RET(nl_route_has4(c->hp, lo_p.ifindex, gw, 32, any), 0);
	CHECK_RET(nl_route_has4(c->hh, host.ifindex, pod_ip, 32, any), 1);

	/* Permanent neighbours both ways. */
	CHECK_RET(nl_neigh_has4(c->hp, pod.ifindex, gw, host.mac), 0);
	CHECK_RET(nl_neigh_add4(c->hp, pod.ifindex, gw, host.mac), 0);
	CHECK_RET(nl_neigh_add4(c->hp, pod.ifindex, gw, host.mac), 0);          /* replace */
	CHECK_RET(nl_neigh_add4(c->hh, host.ifindex, pod_ip, pod_mac), 0);
	CHECK_RET(nl_neigh_has4(c->hp, pod.ifindex, gw, host.mac), 1);
	CHECK_RET(nl_neigh_has4(c->hp, pod.ifindex, gw, other_mac), 0);
	CHECK_RET(nl_neigh_has4(c->hp, pod.ifindex, ip4("10.250.0.3"), host.mac), 0);
	CHECK_RET(nl_neigh_has4(c->hh, host.ifindex, pod_ip, pod_mac), 1);

	/* Sysctls land in the handle's netns only. */
	{
		char root_before[16] = "", root_after[16] = "";

		run(root_before, sizeof(root_before), "cat /proc/sys/net/ipv4/ip_forward");
		CHECK_RET(nl_sysctl_set(c->hh, "net/ipv4/ip_forward", "1"), 0);
		CHECK_RET(nl_sysctl_set(c->hp, "net/ipv4/conf/" POD_IF "/arp_announce", "2"), 0);
		CHECK_RET(nl_sysctl_set(c->hp, "net/ipv4/no/such/knob", "1"), -ENOENT);
		CHECK_RET(nl_sysctl_set(c->hp, "net/../../etc/passwd", "1"), -EINVAL);
		run(root_after, sizeof(root_after), "cat /proc/sys/net/ipv4/ip_forward");
		CHECK(strcmp(root_before, root_after) == 0, "root ip_forward changed: %s -> %s", root_before,
		      root_after);
		run(out, sizeof(out), "ip netns exec %s cat /proc/sys/net/ipv4/ip_forward", ns_host);
		CHECK(strcmp(out, "1\n") == 0, "host-side ip_forward: %s", out);
		run(out, sizeof(out), "ip netns exec %s cat /proc/sys/net/ipv4/ip_forward", ns_pod);
		CHECK(strcmp(out, "0\n") == 0, "pod-side ip_forward: %s", out);
		run(out, sizeof(out), "ip netns exec %s cat /proc/sys/net/ipv4/conf/%s/arp_announce", ns_pod, POD_IF);
		CHECK(strcmp(out, "2\n") == 0, "pod arp_announce: %s", out);
		CHECK(netns_inode() != 0, "netns");
	}

	/* What iproute2 sees. */
	run(out, sizeof(out), "ip -n %s -4 addr show dev %s", ns_pod, POD_IF);
	printf("--- ip -n %s -4 addr show dev %s\n%s", ns_pod, POD_IF, out);
	CHECK(strstr(out, "inet 10.250.1.2/32 scope global " POD_IF), "pod address missing");
	run(out, sizeof(out), "ip -n %s link show %s", ns_pod, POD_IF);
	printf("--- ip -n %s link show %s\n%s", ns_pod, POD_IF, out);
	snprintf(want, sizeof(want), "link/ether %s", mac_str(pod_mac, m1));
	CHECK(strstr(out, want) && strstr(out, "mtu 1450") && strstr(out, "state UP"), "pod link: want %s", want);
	run(out, sizeof(out), "ip -n %s route show", ns_pod);
	printf("--- ip -n %s route show\n%s", ns_pod, out);
	CHECK(strstr(out, "default via 10.250.0.1 dev " POD_IF " onlink"), "default route missing");
	CHECK(strstr(out, "10.250.0.1 dev " POD_IF " scope link"), "gateway route missing");
	for (n = 0, r = 0; out[r]; r++)
		n += out[r] == '\n';
	CHECK(n == 2, "pod has %d routes, expected 2 (re-add must replace)", n);
	run(out, sizeof(out), "ip -n %s neigh show dev %s", ns_pod, POD_IF);
	printf("--- ip -n %s neigh show dev %s\n%s", ns_pod, POD_IF, out);
	snprintf(want, sizeof(want), "10.250.0.1 lladdr %s PERMANENT", mac_str(host.mac, m1));
	CHECK(strstr(out, want), "want '%s'", want);
	run(out, sizeof(out), "ip -n %s route show; ip -n %s neigh show dev %s", ns_host, ns_host, HOST_IF);
	printf("--- ip -n %s route show; neigh show dev %s\n%s", ns_host, HOST_IF, out);
	CHECK(strstr(out, "10.250.1.2 dev " HOST_IF " scope link"), "host route missing");
	snprintf(want, sizeof(want), "10.250.1.2 lladdr %s PERMANENT", mac_str(pod_mac, m2));
	CHECK(strstr(out, want), "want '%s'", want);

	/* Traffic, both ways, and through the default route (to host lo). */
	r = run(out, sizeof(out), "ip netns exec %s %s -c 2 -W 2 10.250.0.1", ns_pod, ping_cmd);
	CHECK(r == 0, "pod -> gateway ping failed:\n%s", out);
	if (r == 0)
		printf("ping pod -> 10.250.0.1 ok\n");
	r = run(out, sizeof(out), "ip netns exec %s %s -c 2 -W 2 10.250.0.9", ns_pod, ping_cmd);
	CHECK(r == 0, "pod -> 10.250.0.9 (default route) ping failed:\n%s", out);
	if (r == 0)
		printf("ping pod -> 10.250.0.9 via default route ok\n");
	r = run(out, sizeof(out), "ip netns exec %s %s -c 2 -W 2 10.250.1.2", ns_host, ping_cmd);
	CHECK(r == 0, "host -> pod ping failed:\n%s", out);
	if (r == 0)
		printf("ping host -> 10.250.1.2 ok\n");

	/* Listing. */
	n = 0;
	CHECK_RET(nl_link_list(c->hh, "vnlt", count_cb, &n), 0);
	CHECK(n == 1, "host netns has %d vnlt* links", n);
	n = 0;
	CHECK_RET(nl_link_list(c->hp, "", count_cb, &n), 0);
	CHECK(n == 2, "pod netns has %d links, expected lo + eth0", n);
	n = 0;
	CHECK_RET(nl_link_list(c->hp, "", stop_cb, &n), 7);
	CHECK(n == 1, "callback called %d times after asking to stop", n);
	CHECK_RET(nl_link_get(c->hp, POD_IF, &l), 0);   /* socket still in step after an early stop */
	n = 0;
	CHECK_RET(nl_link_list(c->hp, "nomatch", count_cb, &n), 0);
	CHECK(n == 0, "prefix filter");

	/* Route removal. */
	CHECK_RET(nl_route_del4(c->hp, pod.ifindex, any, 0), 0);
	CHECK_RET(nl_route_has4(c->hp, pod.ifindex, any, 0, gw), 0);
	CHECK_RET(nl_route_has4(c->hp, pod.ifindex, gw, 32, any), 1);
	CHECK_RET(nl_route_del4(c->hp, pod.ifindex, any, 0), -ESRCH);

	/* Link removal: deleting the host side takes the peer with it. */
	CHECK_RET(nl_link_del(c->hh, HOST_IF), 0);
	CHECK_RET(nl_link_get(c->hh, HOST_IF, &l), -ENODEV);
	CHECK_RET(nl_link_get(c->hp, POD_IF, &l), -ENODEV);
	CHECK_RET(nl_link_del(c->hh, HOST_IF), -ENODEV);
	CHECK_RET(nl_link_del(c->hp, POD_IF), -ENODEV);
	CHECK_RET(nl_route_has4(c->hh, host.ifindex, pod_ip, 32, any), -ENODEV);  /* strict filter on a gone oif */
	return 0;
}

/* The ADD fast path: veth + pod-side configuration, as the agent does it. */
static int test_timing(struct ctx *c)
{
	static const unsigned char pod_mac[6] = { 0x02, 0x00, 0x0a, 0xfa, 0x01, 0x03 };
	static const unsigned char gw_mac[6] = { 0x02, 0x00, 0x0a, 0xfa, 0x00, 0x01 };
	const struct in_addr any = { 0 }, gw = ip4("10.250.0.1"), pod_ip = ip4("10.250.1.3");
	long long t_open[TIMING_RUNS], t_create[TIMING_RUNS], t_add[TIMING_RUNS], t_del[TIMING_RUNS];
	struct nl_handle *hp;
	struct nl_link pod;
	long long t0, t1, t2;
	int i, err;

	for (i = 0; i < TIMING_RUNS; i++) {
		t0 = now_us();
		REQUIRE_RET(nl_open(&hp, c->fd_pod), 0);
		t_open[i] = now_us() - t0;

		t0 = now_us();
		err = nl_veth_create(c->hh, "vnltt", POD_IF, c->fd_pod, 1450, pod_mac);
		t1 = now_us();
		if (!err)
			err = nl_link_get(hp, POD_IF, &pod);
		if (!err)
			err = nl_link_set_up(hp, pod.ifindex);
		if (!err)
			err = nl_addr_add4(hp, pod.ifindex, pod_ip, 32);
		if (!err)
			err = nl_route_add4(hp, pod.ifindex, gw, 32, any);
		if (!err)
			err = nl_route_add4(hp, pod.ifindex, any, 0, gw);
		if (!err)
			err = nl_neigh_add4(hp, pod.ifindex, gw, gw_mac);
		t2 = now_us();
		nl_close(hp);
		CHECK(err == 0, "timing run %d: %s", i, strerror(-err));
		t_create[i] = t1 - t0;
		t_add[i] = t2 - t0;

		t0 = now_us();
		CHECK_RET(nl_link_del(c->hh, "vnltt"), 0);
		t_del[i] = now_us() - t0;
		if (err)
			return -1;
	}
	report_us("nl_open(pod netns) [setns x2 + socket]", t_open, TIMING_RUNS);
	report_us("nl_veth_create", t_create, TIMING_RUNS);
	report_us("veth_create+get+up+addr+2 routes+neigh", t_add, TIMING_RUNS);
	report_us("nl_link_del (not on the ADD path)", t_del, TIMING_RUNS);
	return 0;
}

static int setup_ns(char *name, size_t namesz, char *path, size_t pathsz, volatile sig_atomic_t *flag,
		    const char *suffix, int *fd)
{
	char out[512];

	snprintf(name, namesz, "nlt-%ld-%s", (long)getpid(), suffix);
	snprintf(path, pathsz, NETNS_RUN_DIR "/%s", name);
	*flag = 1;              /* set first: a half-made namespace is removed too */
	if (run(out, sizeof(out), "ip netns add %s", name) != 0) {
		printf("FAIL: ip netns add %s: %s", name, out);
		return -1;
	}
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0) {
		printf("FAIL: open %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL };
	struct ctx c = { .fd_host = -1, .fd_pod = -1 };
	unsigned long ino;
	size_t i;
	int rc = 1;

	setvbuf(stdout, NULL, _IOLBF, 0);
	log_init("nltest", argc > 1 && strcmp(argv[1], "-v") == 0 ? LOG_DEBUG : LOG_INFO);
	if (geteuid() != 0) {
		fprintf(stderr, "nltest: needs root\n");
		return 2;
	}
	if (access("/usr/bin/ping", X_OK) == 0 || access("/bin/ping", X_OK) == 0)
		strcpy(ping_cmd, "ping");
	else
		strcpy(ping_cmd, "busybox ping");

	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], on_signal);
	atexit(cleanup_ns);
	reap_stale();
	ino = netns_inode();

	if (setup_ns(ns_host, sizeof(ns_host), path_host, sizeof(path_host), &have_host, "h", &c.fd_host) < 0 ||
	    setup_ns(ns_pod, sizeof(ns_pod), path_pod, sizeof(path_pod), &have_pod, "p", &c.fd_pod) < 0)
		goto cleanup;
	printf("namespaces %s %s, ping: %s\n", ns_host, ns_pod, ping_cmd);

	if (test_open(&c) == 0 && test_pair(&c) == 0)
		test_timing(&c);
	CHECK(netns_inode() == ino, "test process left its netns");
	rc = n_fail ? 1 : 0;

cleanup:
	nl_close(c.hh);
	nl_close(c.hp);
	if (c.fd_host >= 0)
		close(c.fd_host);
	if (c.fd_pod >= 0)
		close(c.fd_pod);
	cleanup_ns();
	if (access(path_host, F_OK) == 0 || access(path_pod, F_OK) == 0) {
		printf("FAIL: namespace files still present\n");
		rc = 1;
	}
	printf("%s: %d checks passed, %d failed\n", rc ? "FAILED" : "PASSED", n_pass, n_fail);
	return rc;
}
