// SPDX-License-Identifier: Apache-2.0
/*
 * What a pod's DEL pays to take its flows along (agent/flows.c): one
 * address's connection-tracking, masquerade and fragment entries removed
 * from full maps, next to a read-only batch scan of the same maps (the
 * floor any purge by address has to pay), and from near-empty maps (a
 * quiet node). The real maps, pinned in a throwaway bpffs directory, in a
 * private network namespace; the agent is not involved.
 *
 *   build/bench-purge [ROUNDS]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/in.h>

#include <bpf/bpf.h>

#include "flows.h"
#include "loader.h"
#include "log.h"

#define VICTIM 0x0a4d00c8u /* 10.77.0.200, host order */

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* Fill map fd with n flows, every 100th naming the victim (in the key, or
 * in the value for the reverse-NAT map). Returns 0 or -errno. */
static int fill(int fd, size_t n, int value_addr)
{
	size_t vs = value_addr ? sizeof(struct sluice_nat_value) : sizeof(struct sluice_ct_value);
	struct sluice_ct_key *keys = calloc(n, sizeof(*keys));
	unsigned char *values = calloc(n, vs);
	DECLARE_LIBBPF_OPTS(bpf_map_batch_opts, opts);
	__u32 count = (__u32)n;
	int ret = -ENOMEM;

	if (!keys || !values)
		goto cleanup;
	for (size_t i = 0; i < n; i++) {
		__be32 addr = i % 100 ? htonl(0x0a010000 + (__u32)(i >> 8)) : htonl(VICTIM);

		keys[i].saddr = value_addr ? htonl(0xc0000200 + (__u32)(i & 0xff)) : addr;
		keys[i].daddr = htonl(0xc0000200 + (__u32)(i & 0xff));
		keys[i].sport = htons((__u16)(1024 + i % 60000));
		keys[i].dport = htons((__u16)(80 + i / 60000));
		keys[i].proto = IPPROTO_TCP;
		if (value_addr)
			((struct sluice_nat_value *)(void *)(values + i * vs))->addr = addr;
		else
			((struct sluice_ct_value *)(void *)(values + i * vs))->last_seen = 1;
	}
	ret = bpf_map_update_batch(fd, keys, values, &count, &opts) ? -errno : 0;
cleanup:
	free(keys);
	free(values);
	return ret;
}

/* Read every entry of fd in batches, as the purge does, deleting nothing. */
static size_t scan(int fd, size_t ksz, size_t vsz)
{
	const __u32 batch = 4096;
	unsigned char *keys = malloc(batch * ksz), *values = malloc(batch * vsz);
	DECLARE_LIBBPF_OPTS(bpf_map_batch_opts, opts);
	__u64 in = 0, out = 0;
	void *inp = NULL;
	size_t total = 0;

	while (keys && values) {
		__u32 n = batch;
		int err = bpf_map_lookup_batch(fd, inp, &out, keys, values, &n, &opts);

		total += n;
		if (err)
			break;
		in = out;
		inp = &in;
	}
	free(keys);
	free(values);
	return total;
}

static int match_all(__be32 addr, void *arg)
{
	(void)addr;
	(void)arg;
	return 1;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 5;
	double scan_ms[16], purge_ms[16], quiet_ms[16];
	char dir[64], err[512], cmd[128];
	struct datapath *dp = NULL;
	size_t scanned = 0, removed = 0;
	int ret = 1;

	if (rounds < 1 || rounds > 16)
		rounds = 5;
	log_init("bench-purge", LOG_WARN);
	if (unshare(CLONE_NEWNET)) {
		fprintf(stderr, "bench-purge: cannot make a private network namespace (root?)\n");
		return 1;
	}
	snprintf(dir, sizeof(dir), "/sys/fs/bpf/sluice-bench-purge-%d", (int)getpid());
	if (datapath_open(&dp, dir, NULL, err, sizeof(err))) {
		fprintf(stderr, "bench-purge: %s\n", err);
		goto cleanup;
	}
	for (int r = 0; r < rounds; r++) {
		int ct = datapath_ct_map_fd(dp), snat = datapath_snat_map_fd(dp),
		    rnat = datapath_rnat_map_fd(dp);
		struct flows_purge_stats st = { 0 };
		struct flow_map maps[FLOW_MAPS_MAX];
		size_t nmaps;
		double t0;

		if (fill(ct, SLUICE_CT_MAX, 0) || fill(snat, SLUICE_NAT_MAX, 0) ||
		    fill(rnat, SLUICE_NAT_MAX, 1)) {
			fprintf(stderr, "bench-purge: cannot fill the maps: %s\n", strerror(errno));
			goto cleanup;
		}
		t0 = now_ms();
		scanned = scan(ct, sizeof(struct sluice_ct_key), sizeof(struct sluice_ct_value)) +
			  scan(snat, sizeof(struct sluice_ct_key), sizeof(struct sluice_nat_value)) +
			  scan(rnat, sizeof(struct sluice_ct_key), sizeof(struct sluice_nat_value));
		scan_ms[r] = now_ms() - t0;
		t0 = now_ms();
		if (flows_purge_addr(dp, VICTIM, &st, err, sizeof(err))) {
			fprintf(stderr, "bench-purge: %s\n", err);
			goto cleanup;
		}
		purge_ms[r] = now_ms() - t0;
		removed = st.removed;
		/* A quiet node: empty maps. */
		nmaps = flows_maps(dp, maps, FLOW_MAPS_MAX);
		if (flows_purge(maps, nmaps, match_all, NULL, &st, err, sizeof(err)))
			goto cleanup;
		t0 = now_ms();
		if (flows_purge_addr(dp, VICTIM, &st, err, sizeof(err)))
			goto cleanup;
		quiet_ms[r] = now_ms() - t0;
	}
	qsort(scan_ms, (size_t)rounds, sizeof(double), cmp_double);
	qsort(purge_ms, (size_t)rounds, sizeof(double), cmp_double);
	qsort(quiet_ms, (size_t)rounds, sizeof(double), cmp_double);
	printf("\n%-58s %10s\n", "purge of one pod's flows (median of rounds)", "ms");
	printf("%-58s %10.1f\n", "read-only scan of the full maps (the floor)", scan_ms[rounds / 2]);
	printf("%-58s %10.1f\n", "purge of one address from the full maps", purge_ms[rounds / 2]);
	printf("%-58s %10.3f\n", "purge of one address from empty maps (a quiet node)",
	       quiet_ms[rounds / 2]);
	printf("ratio purge / scan: %.2f; %zu entries scanned, %zu removed; %d rounds\n",
	       purge_ms[rounds / 2] / scan_ms[rounds / 2], scanned, removed, rounds);
	ret = 0;
cleanup:
	datapath_close(dp);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd))
		ret = 1;
	return ret;
}
