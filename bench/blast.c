// SPDX-License-Identifier: Apache-2.0
/*
 * sluice-blast: send UDP frames out of one device as fast as one core can,
 * for the XDP benchmarks (bench/xdp.sh). Frames are built once (one per
 * source address, sources read from a file), then sent in batches through
 * an AF_PACKET socket that bypasses the qdisc, so the cost measured on the
 * receiving side of a veth is the receiver's, not a queue's. Prints one
 * JSON object: frames sent, seconds, rate.
 *
 *   sluice-blast --dev IF --dst-mac MAC --dst IP --dport N --sources FILE
 *                [--seconds S] [--batch N] [--src-mac MAC] [--len BYTES]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FRAME_MAX 1514
#define SOURCES_MAX (1u << 20)
#define BATCH_MAX 256

struct opts {
	const char *dev;
	const char *sources;
	uint8_t dst_mac[6];
	uint8_t src_mac[6];
	struct in_addr dst;
	uint16_t dport;
	double seconds;
	unsigned int batch;
	unsigned int len;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sluice-blast --dev IF --dst-mac MAC --dst IP --dport PORT --sources FILE\n"
		"                    [--src-mac MAC] [--seconds S] [--batch N] [--len BYTES]\n"
		"Sends UDP/IPv4 frames out of IF, one prepared frame per source address in FILE\n"
		"(one dotted address per line), cycling through them for S seconds (default 3)\n"
		"in batches of N (default 64, at most %d) through AF_PACKET with the qdisc\n"
		"bypassed. BYTES: frame length, 60 to %d (default 60). Prints\n"
		"{\"sent\":N,\"seconds\":S,\"pps\":R,\"sources\":K} on stdout.\n",
		BATCH_MAX, FRAME_MAX);
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned int b[6];

	if (sscanf(s, "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) != 6)
		return -1;
	for (int i = 0; i < 6; i++) {
		if (b[i] > 255)
			return -1;
		mac[i] = (uint8_t)b[i];
	}
	return 0;
}

static uint16_t csum16(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t sum = 0;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((uint16_t)~sum);
}

/* Ethernet + IPv4 (no options) + UDP, zero payload padding up to len. */
static void build_frame(uint8_t *f, const struct opts *o, struct in_addr src)
{
	struct ether_header *eth = (struct ether_header *)f;
	struct iphdr *ip = (struct iphdr *)(eth + 1);
	struct udphdr *udp = (struct udphdr *)(ip + 1);
	size_t l3 = o->len - sizeof(*eth);

	memset(f, 0, o->len);
	memcpy(eth->ether_dhost, o->dst_mac, 6);
	memcpy(eth->ether_shost, o->src_mac, 6);
	eth->ether_type = htons(ETHERTYPE_IP);
	ip->version = 4;
	ip->ihl = 5;
	ip->ttl = 64;
	ip->protocol = IPPROTO_UDP;
	ip->tot_len = htons((uint16_t)l3);
	ip->saddr = src.s_addr;
	ip->daddr = o->dst.s_addr;
	ip->check = csum16(ip, sizeof(*ip));
	udp->source = htons(40000);
	udp->dest = htons(o->dport);
	udp->len = htons((uint16_t)(l3 - sizeof(*ip)));
	/* checksum 0: none, valid for UDP over IPv4 */
}

static int read_sources(const char *path, struct in_addr **out, size_t *n)
{
	struct in_addr *v = NULL;
	size_t cap = 0, len = 0;
	char line[64];
	int err = 0;
	FILE *f;

	f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "sluice-blast: %s: %s\n", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, " \t\r\n")] = '\0';
		if (!line[0])
			continue;
		if (len == SOURCES_MAX) {
			fprintf(stderr, "sluice-blast: %s: more than %u sources\n", path, SOURCES_MAX);
			err = -1;
			goto cleanup;
		}
		if (len == cap) {
			size_t ncap = cap ? cap * 2 : 1024;
			struct in_addr *nv = realloc(v, ncap * sizeof(*v));

			if (!nv) {
				err = -1;
				goto cleanup;
			}
			v = nv;
			cap = ncap;
		}
		if (inet_pton(AF_INET, line, &v[len]) != 1) {
			fprintf(stderr, "sluice-blast: %s: '%s' is not an IPv4 address\n", path, line);
			err = -1;
			goto cleanup;
		}
		len++;
	}
	if (!len) {
		fprintf(stderr, "sluice-blast: %s: no source address\n", path);
		err = -1;
	}
cleanup:
	fclose(f);
	if (err) {
		free(v);
		return err;
	}
	*out = v;
	*n = len;
	return 0;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "dev", required_argument, NULL, 'd' },
		{ "dst-mac", required_argument, NULL, 'm' },
		{ "src-mac", required_argument, NULL, 'M' },
		{ "dst", required_argument, NULL, 'D' },
		{ "dport", required_argument, NULL, 'p' },
		{ "sources", required_argument, NULL, 's' },
		{ "seconds", required_argument, NULL, 't' },
		{ "batch", required_argument, NULL, 'b' },
		{ "len", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct opts o = { .seconds = 3, .batch = 64, .len = 60,
			  .src_mac = { 0x02, 0, 0, 0, 0, 0x01 } };
	struct mmsghdr msgs[BATCH_MAX];
	struct iovec iovs[BATCH_MAX];
	struct sockaddr_ll sll = { 0 };
	struct in_addr *srcs = NULL;
	uint8_t *frames = NULL;
	unsigned long long sent = 0;
	int have_mac = 0, have_dst = 0, one = 1, fd = -1, c, ret = 1;
	size_t nsrc = 0, next = 0;
	double start, end;
	char *e;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': o.dev = optarg; break;
		case 's': o.sources = optarg; break;
		case 'm':
			if (parse_mac(optarg, o.dst_mac)) {
				fprintf(stderr, "sluice-blast: --dst-mac '%s' is not a MAC address\n", optarg);
				return 2;
			}
			have_mac = 1;
			break;
		case 'M':
			if (parse_mac(optarg, o.src_mac)) {
				fprintf(stderr, "sluice-blast: --src-mac '%s' is not a MAC address\n", optarg);
				return 2;
			}
			break;
		case 'D':
			if (inet_pton(AF_INET, optarg, &o.dst) != 1) {
				fprintf(stderr, "sluice-blast: --dst '%s' is not an IPv4 address\n", optarg);
				return 2;
			}
			have_dst = 1;
			break;
		case 'p': {
			unsigned long v = strtoul(optarg, &e, 10);

			if (*e || !v || v > 65535) {
				fprintf(stderr, "sluice-blast: --dport '%s': want 1-65535\n", optarg);
				return 2;
			}
			o.dport = (uint16_t)v;
			break;
		}
		case 't':
			o.seconds = strtod(optarg, &e);
			if (*e || o.seconds <= 0 || o.seconds > 3600) {
				fprintf(stderr, "sluice-blast: --seconds '%s': want (0, 3600]\n", optarg);
				return 2;
			}
			break;
		case 'b': {
			unsigned long v = strtoul(optarg, &e, 10);

			if (*e || !v || v > BATCH_MAX) {
				fprintf(stderr, "sluice-blast: --batch '%s': want 1-%d\n", optarg, BATCH_MAX);
				return 2;
			}
			o.batch = (unsigned int)v;
			break;
		}
		case 'l': {
			unsigned long v = strtoul(optarg, &e, 10);

			if (*e || v < 60 || v > FRAME_MAX) {
				fprintf(stderr, "sluice-blast: --len '%s': want 60-%d\n", optarg, FRAME_MAX);
				return 2;
			}
			o.len = (unsigned int)v;
			break;
		}
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!o.dev || !o.sources || !have_mac || !have_dst || !o.dport) {
		usage(stderr);
		return 2;
	}
	if (read_sources(o.sources, &srcs, &nsrc))
		goto cleanup;
	frames = malloc(nsrc * o.len);
	if (!frames) {
		fprintf(stderr, "sluice-blast: no memory for %zu frames\n", nsrc);
		goto cleanup;
	}
	for (size_t i = 0; i < nsrc; i++)
		build_frame(frames + i * o.len, &o, srcs[i]);

	fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "sluice-blast: AF_PACKET socket: %s (run as root)\n", strerror(errno));
		goto cleanup;
	}
	/* Straight to the driver: no qdisc between us and the veth. */
	if (setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one)))
		fprintf(stderr, "sluice-blast: PACKET_QDISC_BYPASS: %s (going through the qdisc)\n",
			strerror(errno));
	sll.sll_family = AF_PACKET;
	sll.sll_protocol = htons(ETH_P_IP);
	sll.sll_ifindex = (int)if_nametoindex(o.dev);
	if (!sll.sll_ifindex) {
		fprintf(stderr, "sluice-blast: --dev %s: no such device\n", o.dev);
		goto cleanup;
	}
	if (bind(fd, (struct sockaddr *)&sll, sizeof(sll))) {
		fprintf(stderr, "sluice-blast: bind to %s: %s\n", o.dev, strerror(errno));
		goto cleanup;
	}

	memset(msgs, 0, sizeof(msgs));
	for (unsigned int i = 0; i < o.batch; i++) {
		iovs[i].iov_len = o.len;
		msgs[i].msg_hdr.msg_iov = &iovs[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	start = now();
	end = start + o.seconds;
	for (unsigned long round = 0;; round++) {
		int n;

		for (unsigned int i = 0; i < o.batch; i++) {
			iovs[i].iov_base = frames + next * o.len;
			next = next + 1 == nsrc ? 0 : next + 1;
		}
		n = sendmmsg(fd, msgs, o.batch, 0);
		if (n < 0 && errno != ENOBUFS && errno != EAGAIN) {
			fprintf(stderr, "sluice-blast: send on %s: %s\n", o.dev, strerror(errno));
			goto cleanup;
		}
		if (n > 0)
			sent += (unsigned long long)n;
		/* The clock every 16 batches: cheap next to the sends. */
		if ((round & 15) == 15 && now() >= end)
			break;
	}
	end = now();
	printf("{\"sent\":%llu,\"seconds\":%.3f,\"pps\":%.0f,\"sources\":%zu}\n", sent, end - start,
	       (double)sent / (end - start), nsrc);
	ret = 0;
cleanup:
	if (fd >= 0)
		close(fd);
	free(frames);
	free(srcs);
	return ret;
}
