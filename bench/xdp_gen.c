// SPDX-License-Identifier: Apache-2.0
/*
 * A packet source for bench/xdp.sh that is not the bottleneck: the kernel's
 * own XDP traffic generator (BPF_PROG_TEST_RUN with
 * BPF_F_TEST_XDP_LIVE_FRAMES, Linux 5.18+). A two-instruction XDP program
 * returns XDP_TX for one UDP frame, which the kernel then sends out of
 * IFNAME COUNT times in batches, with no socket or skb on the sending side.
 * On a veth, the frames land in the peer's XDP receive path (the peer needs
 * an XDP program or GRO on).
 *
 *   sluice-xdpgen IFNAME DST-MAC SRC-IP DST-IP DPORT COUNT
 *   sluice-xdpgen --attach-drop IFNAME
 *
 *   sluice-xdpgen --attach-redirect IFNAME TO-IFNAME
 *
 * --attach-drop: attach (netlink, driver mode) a one-instruction XDP_DROP
 * program to IFNAME, the receiver that costs least, for the source's
 * ceiling; ip link set dev IFNAME xdpdrv off removes it.
 * --attach-redirect: attach to IFNAME a program that sends every frame out
 * of TO-IFNAME (bpf_redirect): on a veth TO-IFNAME, its peer receives them
 * as XDP frames, no skb, as from a NIC's receive ring.
 *
 * Prints "sent N in S s: R pps" (the source's own rate: what it managed
 * while the receiver did its work on the same CPU).
 *
 * Where the kernel refuses live frames (EPERM in some sandboxes), the same
 * frame goes out through an AF_PACKET socket instead (sendmmsg, 64 at a
 * time, qdisc bypassed), a slower source that allocates an skb per frame:
 * the line then says "(packet socket)".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/if_packet.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/ip.h>
#include <linux/udp.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

struct frame {
	struct ethhdr eth;
	struct iphdr ip;
	struct udphdr udp;
	unsigned char payload[18];	/* a 64-byte frame on the wire, FCS included */
} __attribute__((packed));

static __u16 csum(const void *hdr, size_t len)
{
	const __u16 *p = hdr;
	__u32 sum = 0;

	for (size_t i = 0; i < len / 2; i++)
		sum += p[i];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

static int own_mac(const char *ifname, unsigned char *mac)
{
	struct ifreq ifr = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), ret = 0;

	if (fd < 0)
		return -errno;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(fd, SIOCGIFHWADDR, &ifr))
		ret = -errno;
	else
		memcpy(mac, ifr.ifr_hwaddr.sa_data, ETH_ALEN);
	close(fd);
	return ret;
}

/* COUNT copies of f out of ifindex through a packet socket. 0 or -errno. */
static int send_packet_socket(int ifindex, const struct frame *f, unsigned long count)
{
	struct sockaddr_ll to = { .sll_family = AF_PACKET, .sll_ifindex = ifindex,
				  .sll_halen = ETH_ALEN };
	struct mmsghdr msgs[64];
	struct iovec iov = { .iov_base = (void *)f, .iov_len = sizeof(*f) };
	int fd, one = 1, ret = 0;

	memcpy(to.sll_addr, f->eth.h_dest, ETH_ALEN);
	fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Straight to the driver: the source's cost stays what it is. */
	setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one));
	memset(msgs, 0, sizeof(msgs));
	for (int i = 0; i < 64; i++) {
		msgs[i].msg_hdr.msg_name = &to;
		msgs[i].msg_hdr.msg_namelen = sizeof(to);
		msgs[i].msg_hdr.msg_iov = &iov;
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	while (count) {
		unsigned int n = count < 64 ? (unsigned int)count : 64;
		int sent = sendmmsg(fd, msgs, n, 0);

		if (sent < 0) {
			if (errno == ENOBUFS || errno == EAGAIN)
				continue;
			ret = -errno;
			break;
		}
		count -= (unsigned long)sent;
	}
	close(fd);
	return ret;
}

int main(int argc, char **argv)
{
	/* r0 = XDP_TX; exit */
	struct bpf_insn prog[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = XDP_TX },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	struct frame f = { 0 };
	struct xdp_md ctx = { 0 };
	LIBBPF_OPTS(bpf_test_run_opts, opts);
	struct timespec t0, t1;
	const char *via = "";
	unsigned long count;
	int ifindex, fd, ret;
	double s;

	if (argc == 3 && !strcmp(argv[1], "--attach-drop")) {
		struct bpf_insn drop[] = {
			{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = XDP_DROP },
			{ .code = BPF_JMP | BPF_EXIT },
		};

		ifindex = (int)if_nametoindex(argv[2]);
		fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "xdpdrop", "GPL", drop, 2, NULL);
		if (!ifindex || fd < 0 || bpf_xdp_attach(ifindex, fd, XDP_FLAGS_DRV_MODE, NULL)) {
			fprintf(stderr, "%s: cannot attach a drop program to %s: %s\n", argv[0],
				argv[2], strerror(errno));
			return 1;
		}
		return 0;
	}
	if (argc == 4 && !strcmp(argv[1], "--attach-redirect")) {
		int to = (int)if_nametoindex(argv[3]);
		/* r1 = to; r2 = 0; r0 = bpf_redirect(r1, r2); exit */
		struct bpf_insn redirect[] = {
			{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_1, .imm = to },
			{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_2, .imm = 0 },
			{ .code = BPF_JMP | BPF_CALL, .imm = BPF_FUNC_redirect },
			{ .code = BPF_JMP | BPF_EXIT },
		};

		ifindex = (int)if_nametoindex(argv[2]);
		fd = to ? bpf_prog_load(BPF_PROG_TYPE_XDP, "xdpredir", "GPL", redirect, 4, NULL) : -1;
		if (!ifindex || fd < 0 || bpf_xdp_attach(ifindex, fd, XDP_FLAGS_DRV_MODE, NULL)) {
			fprintf(stderr, "%s: cannot attach a redirect from %s to %s: %s\n", argv[0],
				argv[2], argv[3], strerror(errno));
			return 1;
		}
		return 0;
	}
	if (argc != 7) {
		fprintf(stderr, "usage: %s IFNAME DST-MAC SRC-IP DST-IP DPORT COUNT\n", argv[0]);
		return 2;
	}
	ifindex = (int)if_nametoindex(argv[1]);
	count = strtoul(argv[6], NULL, 10);
	if (!ifindex || own_mac(argv[1], f.eth.h_source) ||
	    sscanf(argv[2], "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &f.eth.h_dest[0], &f.eth.h_dest[1],
		   &f.eth.h_dest[2], &f.eth.h_dest[3], &f.eth.h_dest[4], &f.eth.h_dest[5]) != 6 ||
	    inet_pton(AF_INET, argv[3], &f.ip.saddr) != 1 ||
	    inet_pton(AF_INET, argv[4], &f.ip.daddr) != 1 || !count) {
		fprintf(stderr, "%s: bad arguments (or no device %s)\n", argv[0], argv[1]);
		return 2;
	}
	f.eth.h_proto = htons(ETH_P_IP);
	f.ip.version = 4;
	f.ip.ihl = 5;
	f.ip.ttl = 64;
	f.ip.protocol = IPPROTO_UDP;
	f.ip.tot_len = htons(sizeof(f) - sizeof(f.eth));
	f.ip.check = csum(&f.ip, sizeof(f.ip));
	f.udp.source = htons(40000);
	f.udp.dest = htons((unsigned short)atoi(argv[5]));
	f.udp.len = htons(sizeof(f.udp) + sizeof(f.payload));
	fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "xdpgen", "GPL", prog, 2, NULL);
	if (fd < 0) {
		fprintf(stderr, "%s: cannot load the XDP program: %s\n", argv[0], strerror(errno));
		return 1;
	}
	ctx.ingress_ifindex = (__u32)ifindex;
	ctx.data_end = sizeof(f);
	opts.data_in = &f;
	opts.data_size_in = sizeof(f);
	opts.ctx_in = &ctx;
	opts.ctx_size_in = sizeof(ctx);
	opts.flags = BPF_F_TEST_XDP_LIVE_FRAMES;
	opts.repeat = (__u32)count;
	opts.batch_size = 64;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ret = bpf_prog_test_run_opts(fd, &opts) ? -errno : 0;
	close(fd);
	if (ret == -EPERM) {
		clock_gettime(CLOCK_MONOTONIC, &t0);
		ret = send_packet_socket(ifindex, &f, count);
		via = " (packet socket)";
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (ret) {
		fprintf(stderr, "%s: cannot send on %s: %s\n", argv[0], argv[1], strerror(-ret));
		return 1;
	}
	s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("sent %lu in %.3f s: %.0f pps%s\n", count, s, (double)count / s, via);
	return 0;
}
