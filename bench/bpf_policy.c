// SPDX-License-Identifier: Apache-2.0
/*
 * Per-packet cost of the real from_pod program (BPF_PROG_TEST_RUN), for a
 * flow's first packet and for an established one, with 10, 1 000 and
 * 10 000 policy rules on the receiving endpoint, next to the same packet
 * with no policy at all. Prints one line per case; the agent is not
 * involved: maps are seeded directly, in a throwaway bpffs directory and a
 * private network namespace.
 */
#include <errno.h>

#include <bpf/bpf.h>

#include "bench_pod.h"
#include "log.h"

#define IP_A "10.78.0.2"
#define IP_B "10.78.0.3"
#define ID_A 300
#define NEW_FLOWS 20000
#define ESTABLISHED_REPEAT 2000000

static struct pkt make_pkt(__u16 sport)
{
	return bench_tcp_pkt(IP_A, IP_B, sport, 80, 64);
}

static void clear_map(int fd)
{
	unsigned char key[64];

	while (!bpf_map_get_next_key(fd, NULL, key))
		bpf_map_delete_elem(fd, key);
}

/* n rules on B's ingress: n - 1 for other identities, one for A. */
static int seed_rules(struct datapath *dp, int ifindex_b, int n)
{
	int fd = datapath_policy_map_fd(dp);

	clear_map(fd);
	for (int i = 0; i < n; i++) {
		struct sluice_policy_key k = {
			.prefixlen = SLUICE_POLICY_FIXED_BITS + 24,
			.ep = (__u32)ifindex_b,
			.identity = i == n - 1 ? ID_A : 1000 + (__u32)i,
			.dir = SLUICE_DIR_INGRESS,
			.proto = IPPROTO_TCP,
			.port = htons((__u16)(80 + i % 1000)),
		};
		struct sluice_policy_value v = { (__u32)i };

		if (i == n - 1)
			k.port = htons(80);
		if (bpf_map_update_elem(fd, &k, &v, BPF_ANY))
			return -errno;
	}
	return 0;
}

static int set_flags(struct datapath *dp, const char *ip, __u32 flags, __u32 id)
{
	struct sluice_endpoint ep;

	if (datapath_endpoint_get(dp, ip4(ip), &ep))
		return -errno;
	ep.flags = flags;
	ep.identity = id;
	return datapath_endpoint_put(dp, ip4(ip), &ep);
}

/* Average ns per run of from_pod on p, repeated in the kernel. */
static double run_repeat(struct datapath *dp, struct pkt *p, int repeat, int *retval)
{
	unsigned char out[256];
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = p, .data_size_in = sizeof(*p),
		    .data_out = out, .data_size_out = sizeof(out), .repeat = repeat);

	if (bpf_prog_test_run_opts(datapath_prog_fd(dp, 1), &opts))
		return -1;
	*retval = (int)opts.retval;
	return opts.duration;
}

/* Average ns of the first packet of NEW_FLOWS distinct flows. */
static double run_new_flows(struct datapath *dp, int *retval)
{
	double total = 0;

	clear_map(datapath_ct_map_fd(dp));
	for (int i = 0; i < NEW_FLOWS; i++) {
		struct pkt p = make_pkt((__u16)(10000 + i));
		double d = run_repeat(dp, &p, 1, retval);

		if (d < 0)
			return -1;
		total += d;
	}
	return total / NEW_FLOWS;
}

int main(void)
{
	struct sluice_endpoint a = { .ifindex = 1 }, b = { 0 };
	struct sluice_ipcache_key ka = { .prefixlen = 32, .ip = ip4(IP_A) };
	struct sluice_ipcache_value va = { .identity = ID_A, .cidr_identity = SLUICE_ID_WORLD };
	static const int sizes[] = { 10, 1000, 10000 };
	char dir[64] = "", cmd[128];
	struct datapath *dp = NULL;
	double base_new, base_est;
	int ifindex_b, rv, ret = 1;
	struct pkt p;

	log_init("bench-bpf", LOG_WARN);
	if (bench_pod_datapath("bench-bpf", "slbench0", "slbench1", "bench", dir, sizeof(dir), &dp,
			       &ifindex_b)) {
		goto cleanup;
	}
	b.ifindex = (__u32)ifindex_b;
	if (datapath_endpoint_put(dp, ip4(IP_A), &a) || datapath_endpoint_put(dp, ip4(IP_B), &b) ||
	    bpf_map_update_elem(datapath_ipcache_map_fd(dp), &ka, &va, BPF_ANY))
		goto cleanup;

	printf("%-34s %14s %14s\n", "from_pod, TCP to a local pod", "new flow (ns)", "established (ns)");
	set_flags(dp, IP_B, 0, 301);
	base_new = run_new_flows(dp, &rv);
	p = make_pkt(9999);
	base_est = run_repeat(dp, &p, ESTABLISHED_REPEAT, &rv);
	printf("%-34s %14.1f %14.1f\n", "no policy", base_new, base_est);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		double n, e;

		if (seed_rules(dp, ifindex_b, sizes[i]))
			goto cleanup;
		set_flags(dp, IP_B, SLUICE_EP_F_ISO_INGRESS, 301);
		n = run_new_flows(dp, &rv);
		if (rv != 7) { /* TC_ACT_REDIRECT: the rule for A must allow */
			fprintf(stderr, "bench-bpf: unexpected verdict %d with %d rules\n", rv, sizes[i]);
			goto cleanup;
		}
		p = make_pkt(9998);
		e = run_repeat(dp, &p, ESTABLISHED_REPEAT, &rv);
		printf("%-34s %14.1f %14.1f\n",
		       sizes[i] == 10 ? "10 rules" : sizes[i] == 1000 ? "1000 rules" : "10000 rules", n, e);
	}
	ret = 0;
cleanup:
	datapath_close(dp);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (dir[0] && system(cmd))
		ret = 1;
	return ret;
}
