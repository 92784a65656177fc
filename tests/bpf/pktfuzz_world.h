/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The packet fuzzer's world (pktfuzz_world.c): a datapath loaded with
 * overlay routing, masquerade and Service translation, pinned in a
 * throwaway bpffs directory, in a network namespace of the test's own;
 * three local pods, another node's pods, a policy isolating pod B, a
 * Service, the prefilter's denied CIDR; and the frames each program is fed.
 */
#ifndef SLUICE_TESTS_BPF_PKTFUZZ_WORLD_H
#define SLUICE_TESTS_BPF_PKTFUZZ_WORLD_H

#include <stddef.h>
#include <stdint.h>

#include <sluice/datapath.h>
#include "pktfuzz_gen.h"

enum fuzz_prog { P_FROM_POD, P_TO_POD, P_FROM_NETDEV, P_TO_NETDEV, P_FROM_OVERLAY, P_TO_OVERLAY,
		 P_XDP, NPROG };

enum { POD_A, POD_B, POD_C, NPODS };

struct datapath;

struct world {
	struct datapath *dp;
	char pin_dir[64];
	int ifindex[NPODS];	/* each pod's host-side interface */
	int uplink;		/* the uplink's ifindex */
	__be32 pod_ip[NPODS];
	__be32 ip_a, ip_b, ip_r;	/* pod A, pod B, node 2's labelled pod R */
	__be32 node_ip, hairpin_ip;
	int ncpus;
	void *percpu;		/* scratch for the per-CPU counters */
	uint8_t replay[PF_FRAME_MAX + 64];	/* a frame from_pod let out of A */
	size_t replay_len;
};

/* One generated frame. */
struct gen_out {
	size_t len;
	uint32_t ifindex;	/* the skb's (XDP: ingress) interface */
	int pod;		/* from_pod: the sending pod (POD_*), else -1 */
	int mutated;
};

/* break_policy: also allow pod B TCP port 81 from anyone in the policy map,
 * for the oracle to catch (it is the oracle's own world that says 80). */
int world_open(struct world *w, int break_policy);
void world_close(struct world *w);
int world_prog_fd(struct world *w, int prog);
int world_metrics_read(struct world *w, struct sluice_metric out[SLUICE_METRICS_MAX]);
/* A frame from_pod let out of pod A, which the host stack may send on
 * (to_netdev, to_overlay are fed it again). */
void world_replay_note(struct world *w, const uint8_t *pkt, size_t len);
void world_generate(struct world *w, struct prng *r, int prog, uint8_t *pkt, struct gen_out *g);
/* The maps garbage could grow (connection tracking, fragments, flows):
 * their fill and the flow records lost printed; no more fragment entries
 * than first_frags (first fragments seen, with distinct ports). */
int world_check_bounded(struct world *w, long first_frags);

/* The connection-tracking entry of k: 0, or -1 when there is none. */
int world_ct_lookup(struct world *w, const struct sluice_ct_key *k, struct sluice_ct_value *v);
int world_frag_map_fd(struct world *w);
int world_prefilter_denied(const struct world *w, __be32 saddr);
int world_is_local_pod(const struct world *w, __be32 addr);
int world_is_local_pod_net(const struct world *w, __be32 addr);
int world_is_frontend(const struct world *w, __be32 addr);

/* A set of tuples (the oracle's memory of flows), by 64-bit hash. */
struct tupleset {
	uint64_t *slot;
	size_t cap, used;
};

int tupleset_init(struct tupleset *s);
void tupleset_free(struct tupleset *s);
void tupleset_add(struct tupleset *s, const struct sluice_ct_key *k);
int tupleset_has(const struct tupleset *s, const struct sluice_ct_key *k);

#endif /* SLUICE_TESTS_BPF_PKTFUZZ_WORLD_H */
