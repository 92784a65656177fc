// SPDX-License-Identifier: Apache-2.0
/*
 * sluice-flowrb: the datapath's flow records as JSON lines, for the tests
 * (the agent's own consumer is what users run).
 *
 *   sluice-flowrb PIN MS    read the ring buffer pinned at PIN (a
 *                           sluice_flowrb_v1) for MS milliseconds
 *
 * Exit codes: 0 done, 2 usage error, 3 the pin cannot be opened.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sluice/datapath.h>

static int on_record(void *ctx, void *data, size_t size)
{
	const struct sluice_flow4_record *r = data;
	char s[INET_ADDRSTRLEN], d[INET_ADDRSTRLEN], f[INET_ADDRSTRLEN];

	(void)ctx;
	if (size < sizeof(*r))
		return 0;
	inet_ntop(AF_INET, &r->key.saddr, s, sizeof(s));
	inet_ntop(AF_INET, &r->key.daddr, d, sizeof(d));
	inet_ntop(AF_INET, &r->svc_addr, f, sizeof(f));
	printf("{\"event\":%u,\"verdict\":%u,\"reason\":%u,\"src\":\"%s\",\"sport\":%u,"
	       "\"dst\":\"%s\",\"dport\":%u,\"proto\":%u,\"ifindex\":%u,\"src_identity\":%u,"
	       "\"dst_identity\":%u,\"policy_rule\":%u,\"svc\":\"%s\",\"svc_port\":%u,\"dir\":%u,"
	       "\"pkt_dir\":%u,\"packets\":[%llu,%llu],\"bytes\":[%llu,%llu],\"drops\":%u,"
	       "\"drops_suppressed\":%u,\"tcp_flags\":[%u,%u],\"retrans\":[%u,%u],"
	       "\"rtt_min_us\":%u,\"rtt_srtt_us\":%u}\n",
	       r->event, r->verdict, r->reason, s, ntohs(r->key.sport), d, ntohs(r->key.dport),
	       r->key.proto, r->ifindex, r->src_identity, r->dst_identity, r->policy_rule, f,
	       ntohs(r->svc_port), r->dir, r->pkt_dir, (unsigned long long)r->packets[0],
	       (unsigned long long)r->packets[1], (unsigned long long)r->bytes[0],
	       (unsigned long long)r->bytes[1], r->drops, r->drops_suppressed, r->tcp_flags[0],
	       r->tcp_flags[1], r->retrans[0], r->retrans[1], r->rtt_min_us, r->rtt_srtt_us);
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	struct ring_buffer *rb = NULL;
	struct timespec now;
	double end;
	int fd, ret = 0;

	if (argc != 3 || !strcmp(argv[1], "--help")) {
		fprintf(stderr, "usage: sluice-flowrb PIN MS\n");
		return 2;
	}
	fd = bpf_obj_get(argv[1]);
	if (fd < 0) {
		fprintf(stderr, "sluice-flowrb: cannot open the ring buffer pinned at %s: %s\n",
			argv[1], strerror(errno));
		return 3;
	}
	rb = ring_buffer__new(fd, on_record, NULL, NULL);
	if (!rb) {
		fprintf(stderr, "sluice-flowrb: %s is no ring buffer: %s\n", argv[1], strerror(errno));
		ret = 3;
		goto cleanup;
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	end = (double)now.tv_sec + now.tv_nsec / 1e9 + atoi(argv[2]) / 1e3;
	do {
		ring_buffer__poll(rb, 50);
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while ((double)now.tv_sec + now.tv_nsec / 1e9 < end);
cleanup:
	ring_buffer__free(rb);
	return ret;
}
