/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the benches that run the pod programs with BPF_PROG_TEST_RUN share
 * (bench/bpf_policy.c, bench/bw_cost.c): a TCP packet between two pods, and
 * a throwaway datapath in a private network namespace whose veth plays the
 * receiving pod's host side.
 */
#ifndef SLUICE_BENCH_POD_H
#define SLUICE_BENCH_POD_H

#include <arpa/inet.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/tcp.h>

#include "loader.h"

struct pkt {
	struct ethhdr eth;
	struct iphdr ip;
	struct tcphdr tcp;
	unsigned char payload[64];
} __attribute__((packed));

static inline __be32 ip4(const char *s)
{
	struct in_addr a;

	inet_pton(AF_INET, s, &a);
	return a.s_addr;
}

/* An ACK from src:sport to dst:dport with ttl, 64 bytes of zero payload. */
static inline struct pkt bench_tcp_pkt(const char *src, const char *dst, __u16 sport, __u16 dport,
				       __u8 ttl)
{
	struct pkt p = { 0 };

	memset(p.eth.h_dest, 0x02, 6);
	p.eth.h_proto = htons(ETH_P_IP);
	p.ip.version = 4;
	p.ip.ihl = 5;
	p.ip.ttl = ttl;
	p.ip.protocol = IPPROTO_TCP;
	p.ip.tot_len = htons(sizeof(p) - sizeof(p.eth));
	p.ip.saddr = ip4(src);
	p.ip.daddr = ip4(dst);
	p.tcp.source = htons(sport);
	p.tcp.dest = htons(dport);
	p.tcp.doff = 5;
	p.tcp.ack = 1;
	return p;
}

/*
 * Enter a private network namespace with a veth pair (veth up, its peer
 * peer), open a datapath whose maps are pinned under
 * /sys/fs/bpf/sluice-<tag>-<pid> (its path into dir, for the caller to
 * remove), and give the veth's ifindex. name prefixes the messages.
 * Returns 0, or 1 after saying why on stderr (*dp then NULL or open).
 */
static inline int bench_pod_datapath(const char *name, const char *veth, const char *peer,
				     const char *tag, char *dir, size_t dirlen,
				     struct datapath **dp, int *ifindex)
{
	char cmd[128], err[512];

	snprintf(cmd, sizeof(cmd), "ip link add %s type veth peer name %s && ip link set %s up",
		 veth, peer, veth);
	if (unshare(CLONE_NEWNET) || system(cmd) || !(*ifindex = (int)if_nametoindex(veth))) {
		fprintf(stderr, "%s: cannot set up a private network namespace (root?)\n", name);
		return 1;
	}
	snprintf(dir, dirlen, "/sys/fs/bpf/sluice-%s-%d", tag, (int)getpid());
	if (datapath_open(dp, dir, NULL, err, sizeof(err))) {
		fprintf(stderr, "%s: %s\n", name, err);
		return 1;
	}
	return 0;
}

#endif /* SLUICE_BENCH_POD_H */
