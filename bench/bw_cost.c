// SPDX-License-Identifier: Apache-2.0
/*
 * Per-packet cost of the pod programs on UNLIMITED pods (no bandwidth
 * flag on either endpoint), BPF_PROG_TEST_RUN with repeat: from_pod on an
 * established TCP flow between two local pods, and to_pod on a packet the
 * host stack delivers to a pod. bench/bandwidth.sh runs this binary as
 * built normally and as built with -DSLUICE_BENCH_NO_BW (the limiter
 * compiled out of the BPF objects), alternately, and prints the ratio.
 *
 *   bench-bwcost RUNS
 *
 * first prints "insns <from_pod> <to_pod>", the programs' sizes in BPF
 * instructions as the kernel holds them (after verification), then
 * measures one round per line read on its standard input, until its end,
 * and answers each with one line: "<from_pod ns> <to_pod ns>", the average
 * per run over RUNS runs (see run_batches). The script drives both builds
 * round by round, so a burst of load on the machine hits both alike. Maps are seeded directly, in a
 * throwaway bpffs directory and a private network namespace.
 */
#include <errno.h>

#include <bpf/bpf.h>

#include "bench_pod.h"
#include "log.h"

#define IP_A "10.79.0.2"
#define IP_B "10.79.0.3"
#define IP_WORLD "192.0.2.1"
#define TC_ACT_OK_ 0
#define TC_ACT_REDIRECT_ 7

/*
 * Average ns per run of a pod program (ingress 1: from_pod, 0: to_pod) over
 * runs runs, in batches of BATCH. Each test run hands the same packet to
 * the program again: from_pod routes it to the local pod and decrements its
 * TTL, so after 63 runs of one batch the packet would take the TTL-expired
 * path to the stack instead of the fast path measured here. The packet
 * starts each batch afresh with TTL 255 and a batch stays below that. The
 * kernel's per-batch figure (opts.duration, the runs alone, without the
 * syscall and the packet copy) is whole nanoseconds; summed over thousands
 * of batches its truncation is the same for both builds compared.
 */
#define BATCH 250
static double run_batches(struct datapath *dp, int ingress, const struct pkt *p, int runs, int *retval)
{
	struct pkt in = *p;
	unsigned char out[256];
	double total = 0;
	int batches = runs / BATCH;

	for (int i = 0; i < batches; i++) {
		LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = &in, .data_size_in = sizeof(in),
			    .data_out = out, .data_size_out = sizeof(out), .repeat = BATCH);

		if (bpf_prog_test_run_opts(datapath_prog_fd(dp, ingress), &opts))
			return -1;
		*retval = (int)opts.retval;
		if (*retval != (ingress ? TC_ACT_REDIRECT_ : TC_ACT_OK_))
			return total / i;	/* the caller reports the verdict */
		total += opts.duration;
	}
	return total / batches;
}

/* The program's size in BPF instructions as the kernel holds it. */
static unsigned int prog_insns(struct datapath *dp, int ingress)
{
	struct bpf_prog_info info = { 0 };
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(datapath_prog_fd(dp, ingress), &info, &len))
		return 0;
	return info.xlated_prog_len / sizeof(struct bpf_insn);
}

int main(int argc, char **argv)
{
	struct sluice_endpoint a = { .ifindex = 1, .identity = 300 }, b = { .identity = 301 };
	struct pkt out_pkt = bench_tcp_pkt(IP_A, IP_B, 40000, 80, 255);
	struct pkt in_pkt = bench_tcp_pkt(IP_WORLD, IP_B, 40001, 80, 255);
	struct sluice_ipcache_key ka = { .prefixlen = 32, .ip = ip4(IP_A) };
	struct sluice_ipcache_value va = { .identity = 300, .cidr_identity = SLUICE_ID_WORLD };
	struct datapath *dp = NULL;
	char dir[64] = "", cmd[128];
	char line[64];
	int runs, ifindex_b, rv_out, rv_in, ret = 1;

	if (argc != 2 || (runs = atoi(argv[1])) < BATCH) {
		fprintf(stderr, "usage: bench-bwcost RUNS (at least %d), a round per line on stdin\n", BATCH);
		return 2;
	}
	log_init("bench-bwcost", LOG_WARN);
	if (bench_pod_datapath("bench-bwcost", "slbwc0", "slbwc1", "bwcost", dir, sizeof(dir), &dp,
			       &ifindex_b)) {
		goto cleanup;
	}
	b.ifindex = (__u32)ifindex_b;
	if (datapath_endpoint_put(dp, ip4(IP_A), &a) || datapath_endpoint_put(dp, ip4(IP_B), &b) ||
	    bpf_map_update_elem(datapath_ipcache_map_fd(dp), &ka, &va, BPF_ANY)) {
		fprintf(stderr, "bench-bwcost: cannot seed the endpoint and ipcache maps: %s\n", strerror(errno));
		goto cleanup;
	}
	/* The first packets open the flows; every later one is established. */
	if (run_batches(dp, 1, &out_pkt, BATCH, &rv_out) < 0 || run_batches(dp, 0, &in_pkt, BATCH, &rv_in) < 0) {
		fprintf(stderr, "bench-bwcost: BPF_PROG_TEST_RUN failed: %s\n", strerror(errno));
		goto cleanup;
	}
	printf("insns %u %u\n", prog_insns(dp, 1), prog_insns(dp, 0));
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		double o = run_batches(dp, 1, &out_pkt, runs, &rv_out);
		double i = run_batches(dp, 0, &in_pkt, runs, &rv_in);

		if (o < 0 || i < 0) {
			fprintf(stderr, "bench-bwcost: BPF_PROG_TEST_RUN failed: %s\n", strerror(errno));
			goto cleanup;
		}
		/* A verdict other than these would mean the packet took another
		 * path than the one measured (dropped, or not the fast path). */
		if (rv_out != TC_ACT_REDIRECT_ || rv_in != TC_ACT_OK_) {
			fprintf(stderr, "bench-bwcost: unexpected verdicts: from_pod %d (want %d), to_pod %d (want %d)\n",
				rv_out, TC_ACT_REDIRECT_, rv_in, TC_ACT_OK_);
			goto cleanup;
		}
		printf("%.2f %.2f\n", o, i);
		fflush(stdout);
	}
	ret = 0;
cleanup:
	datapath_close(dp);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (dir[0] && system(cmd))
		ret = 1;
	return ret;
}
