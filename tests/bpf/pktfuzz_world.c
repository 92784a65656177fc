// SPDX-License-Identifier: Apache-2.0
/*
 * The packet fuzzer's world and its frame generators (pktfuzz_world.h).
 *
 * This node 10.200.0.11 (uplink sltpf0, pod CIDR 10.77.0.0/24, overlay
 * routing, masquerade, Service translation). Pods: A 10.77.0.2 (egress
 * isolated: TCP 80 to B and R, UDP 53 anywhere), B 10.77.0.3 (ingress
 * isolated: TCP 80 from A), C 10.77.0.4 (not isolated). Node 2 10.200.0.12
 * has 10.88.2.0/24 with R 10.88.2.5 (a label identity); node 3
 * 10.200.0.13 has 10.88.4.0/24. Service 10.96.0.10:80/TCP -> B:80, R:80;
 * 10.96.0.11:80/TCP without backend; NodePort 10.200.0.11:30080/TCP ->
 * B:80, R:80. The prefilter denies 203.0.113.0/24, any port.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <linux/if_ether.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "loader.h"
#include "pktfuzz_world.h"

#define ID_A 300
#define ID_B 301
#define ID_R 302
#define ID_C 303

static const uint8_t mac_pod[NPODS][6] = {
	{ 0x02, 0xaa, 0, 0, 0, 1 }, { 0x02, 0xbb, 0, 0, 0, 1 }, { 0x02, 0xcc, 0, 0, 0, 1 } };
static const uint8_t mac_lxc[NPODS][6] = {
	{ 0x02, 0xaa, 0, 0, 0, 2 }, { 0x02, 0xbb, 0, 0, 0, 2 }, { 0x02, 0xcc, 0, 0, 0, 2 } };
static const uint8_t mac_node2[6] = { 0x02, 0xcc, 0, 0, 0, 2 };
static const uint8_t mac_node3[6] = { 0x02, 0xcc, 0, 0, 0, 3 };
static const uint8_t mac_other[6] = { 0x02, 0x66, 0, 0, 0, 9 };

static const struct datapath_opts fuzz_opts = {
	.mode = ATTACH_TC,
	.routing = SLUICE_ROUTING_OVERLAY,
	.vxlan_ifindex = 1,		/* only recorded as the redirect target here */
	.masquerade = 1,
	.node_ip = 0x0ac8000b,		/* 10.200.0.11 */
	.nat_port_min = 62000,
	.nat_port_max = 62999,
	.lb = 1,
	.pod_net = 0x0a4d0000,		/* 10.77.0.0/24 */
	.pod_prefix = 24,
};

/* ---- tuple sets ---------------------------------------------------------- */

static uint64_t tuple_hash(const struct sluice_ct_key *k)
{
	uint64_t a, b, h;

	memcpy(&a, k, 8);
	memcpy(&b, (const uint8_t *)k + 8, 8);
	h = a * 0x9e3779b97f4a7c15ull ^ (b + 0x632be59bd9b4e019ull) * 0xbf58476d1ce4e5b9ull;
	h ^= h >> 31;
	return h ? h : 1; /* 0 marks an empty slot */
}

int tupleset_init(struct tupleset *s)
{
	s->cap = 1u << 22;
	s->used = 0;
	s->slot = calloc(s->cap, sizeof(*s->slot));
	return s->slot ? 0 : -ENOMEM;
}

void tupleset_free(struct tupleset *s)
{
	free(s->slot);
	s->slot = NULL;
}

void tupleset_add(struct tupleset *s, const struct sluice_ct_key *k)
{
	uint64_t h = tuple_hash(k);
	size_t i = h & (s->cap - 1);

	if (s->used * 2 >= s->cap)
		return; /* full enough: the oracle only ever gets stricter */
	while (s->slot[i] && s->slot[i] != h)
		i = (i + 1) & (s->cap - 1);
	if (!s->slot[i]) {
		s->slot[i] = h;
		s->used++;
	}
}

int tupleset_has(const struct tupleset *s, const struct sluice_ct_key *k)
{
	uint64_t h = tuple_hash(k);
	size_t i = h & (s->cap - 1);

	while (s->slot[i]) {
		if (s->slot[i] == h)
			return 1;
		i = (i + 1) & (s->cap - 1);
	}
	return 0;
}

/* ---- addresses ------------------------------------------------------------ */

int world_ct_lookup(struct world *w, const struct sluice_ct_key *k, struct sluice_ct_value *v)
{
	return bpf_map_lookup_elem(datapath_ct_map_fd(w->dp), k, v) ? -1 : 0;
}

int world_frag_map_fd(struct world *w)
{
	return datapath_frag_map_fd(w->dp);
}

int world_prefilter_denied(const struct world *w, __be32 saddr)
{
	(void)w;
	return (saddr & htonl(0xffffff00)) == ip4("203.0.113.0");
}

int world_is_local_pod(const struct world *w, __be32 addr)
{
	for (int i = 0; i < NPODS; i++)
		if (w->pod_ip[i] == addr)
			return 1;
	return 0;
}

int world_is_local_pod_net(const struct world *w, __be32 addr)
{
	(void)w;
	return (addr & htonl(0xffffff00)) == ip4("10.77.0.0");
}

int world_is_frontend(const struct world *w, __be32 addr)
{
	return addr == ip4("10.96.0.10") || addr == ip4("10.96.0.11") || addr == w->node_ip;
}

/* ---- setting the world up ----------------------------------------------- */

static int ipcache_put(struct world *w, const char *ip, int prefix, __u32 id, const char *tunnel,
		       __u32 flags)
{
	struct sluice_ipcache_key k = { .prefixlen = (__u32)prefix, .ip = ip4(ip) };
	struct sluice_ipcache_value v = { .identity = id, .cidr_identity = SLUICE_ID_WORLD,
					  .tunnel_endpoint = tunnel ? ip4(tunnel) : 0, .flags = flags };

	return bpf_map_update_elem(datapath_ipcache_map_fd(w->dp), &k, &v, BPF_ANY);
}

/* An allow rule: endpoint ep, peer identity id, dir, TCP/UDP port. */
static int rule_put(struct world *w, __u32 ep, __u32 id, __u8 dir, __u8 proto, __u16 port)
{
	struct sluice_policy_key k = { .prefixlen = SLUICE_POLICY_KEY_BITS, .ep = ep, .identity = id,
				       .dir = dir, .proto = proto, .port = htons(port) };
	struct sluice_policy_value v = { 7 };

	return bpf_map_update_elem(datapath_policy_map_fd(w->dp), &k, &v, BPF_ANY);
}

static int svc_put(struct world *w, const char *addr, __u16 port, __u8 scope, __u16 rev_nat,
		   __u16 flags, int backends)
{
	struct sluice_lb4_key k = { .addr = ip4(addr), .port = htons(port), .proto = IPPROTO_TCP,
				    .scope = scope };
	struct sluice_lb4_value v = { .count = (__u16)backends, .rev_nat = rev_nat, .flags = flags };
	struct sluice_lb4_revnat rn = { .addr = ip4(addr), .port = htons(port) };
	__u32 rk = rev_nat;
	int fd = datapath_lb_svc_map_fd(w->dp);

	for (int i = 1; i <= backends; i++) {
		struct sluice_lb4_value s = { .backend_id = (__u32)i };

		k.slot = (__u16)i;
		if (bpf_map_update_elem(fd, &k, &s, BPF_ANY))
			return -1;
	}
	k.slot = 0;
	if (bpf_map_update_elem(datapath_lb_rnat_map_fd(w->dp), &rk, &rn, BPF_ANY))
		return -1;
	return bpf_map_update_elem(fd, &k, &v, BPF_ANY);
}

static int world_maps(struct world *w, int break_policy)
{
	struct sluice_lb4_backend be1 = { .addr = ip4("10.77.0.3"), .port = htons(80),
					  .proto = IPPROTO_TCP, .flags = SLUICE_LB_BE_F_LOCAL };
	struct sluice_lb4_backend be2 = { .addr = ip4("10.88.2.5"), .port = htons(80),
					  .proto = IPPROTO_TCP };
	struct sluice_nomasq_key nm[] = { { 16, ip4("10.77.0.0") }, { 16, ip4("10.88.0.0") },
					  { 24, ip4("10.200.0.0") } };
	struct sluice_pf_key4 pk = { .prefixlen = 24, .addr = ip4("203.0.113.0") };
	struct sluice_pf_val4 pv = { .rules = 1, .entry = 1 };
	struct sluice_pf_cfg4 cfg = { .all_ports = 1, .active = 1 };
	const __u32 ids[NPODS] = { ID_A, ID_B, ID_C };
	const __u32 flags[NPODS] = { SLUICE_EP_F_ISO_EGRESS, SLUICE_EP_F_ISO_INGRESS, 0 };
	__u32 one_id = 1, zero = 0;
	__u8 one = 1;
	int b = w->ifindex[POD_B], a = w->ifindex[POD_A];

	for (int i = 0; i < NPODS; i++) {
		struct sluice_endpoint ep = { .ifindex = (__u32)w->ifindex[i], .flags = flags[i],
					      .identity = ids[i] };
		struct sluice_ipcache_key k = { .prefixlen = 32, .ip = w->pod_ip[i] };
		struct sluice_ipcache_value v = { .identity = ids[i], .cidr_identity = SLUICE_ID_WORLD };

		memcpy(ep.pod_mac, mac_pod[i], 6);
		memcpy(ep.lxc_mac, mac_lxc[i], 6);
		if (datapath_endpoint_put(w->dp, w->pod_ip[i], &ep) ||
		    bpf_map_update_elem(datapath_ipcache_map_fd(w->dp), &k, &v, BPF_ANY))
			return -1;
	}
	for (size_t i = 0; i < sizeof(nm) / sizeof(nm[0]); i++)
		if (bpf_map_update_elem(datapath_nomasq_map_fd(w->dp), &nm[i], &one, BPF_ANY))
			return -1;
	if (ipcache_put(w, "10.200.0.11", 32, SLUICE_ID_HOST, NULL, 0) ||
	    ipcache_put(w, "10.200.0.12", 32, SLUICE_ID_WORLD, "10.200.0.12", SLUICE_IPC_F_NODE) ||
	    ipcache_put(w, "10.200.0.13", 32, SLUICE_ID_WORLD, "10.200.0.13", SLUICE_IPC_F_NODE) ||
	    ipcache_put(w, "10.88.2.0", 24, SLUICE_ID_WORLD, "10.200.0.12", 0) ||
	    ipcache_put(w, "10.88.4.0", 24, SLUICE_ID_WORLD, "10.200.0.13", 0) ||
	    ipcache_put(w, "10.88.2.5", 32, ID_R, "10.200.0.12", 0))
		return -1;
	/* B: TCP 80 from A only. A: TCP 80 to B and R, UDP 53 anywhere. */
	if (rule_put(w, (__u32)b, ID_A, SLUICE_DIR_INGRESS, IPPROTO_TCP, 80) ||
	    (break_policy && rule_put(w, (__u32)b, SLUICE_ID_ANY, SLUICE_DIR_INGRESS, IPPROTO_TCP, 81)) ||
	    rule_put(w, (__u32)a, ID_B, SLUICE_DIR_EGRESS, IPPROTO_TCP, 80) ||
	    rule_put(w, (__u32)a, ID_R, SLUICE_DIR_EGRESS, IPPROTO_TCP, 80) ||
	    rule_put(w, (__u32)a, SLUICE_ID_ANY, SLUICE_DIR_EGRESS, IPPROTO_UDP, 53))
		return -1;
	if (bpf_map_update_elem(datapath_lb_be_map_fd(w->dp), &one_id, &be1, BPF_ANY))
		return -1;
	one_id = 2;
	if (bpf_map_update_elem(datapath_lb_be_map_fd(w->dp), &one_id, &be2, BPF_ANY) ||
	    svc_put(w, "10.96.0.10", 80, SLUICE_LB_SCOPE_INT, 1, 0, 2) ||
	    svc_put(w, "10.96.0.11", 80, SLUICE_LB_SCOPE_INT, 2, 0, 0) ||
	    svc_put(w, "10.200.0.11", 30080, SLUICE_LB_SCOPE_EXT, 3, SLUICE_LB_F_NODEPORT, 2) ||
	    svc_put(w, "10.200.0.11", 30080, SLUICE_LB_SCOPE_INT, 3, SLUICE_LB_F_NODEPORT, 2))
		return -1;
	if (bpf_map_update_elem(datapath_pf_lpm_map_fd(w->dp), &pk, &pv, BPF_ANY) ||
	    bpf_map_update_elem(datapath_pf_cfg_map_fd(w->dp), &zero, &cfg, BPF_ANY))
		return -1;
	/* No XDP program attached: from_netdev runs the first stage too. */
	return datapath_xdp_state_set(w->dp, 0, SLUICE_XDP_MODE_OFF);
}

int world_open(struct world *w, int break_policy)
{
	char err[512];

	memset(w, 0, sizeof(*w));
	if (geteuid()) {
		fprintf(stderr, "pktfuzz: BPF tests need root\n");
		return -1;
	}
	/* A private network namespace: its devices go with this process. */
	if (unshare(CLONE_NEWNET) ||
	    system("ip link set lo up && "
		   "ip link add sltpf0 type veth peer name sltpf1 && ip link set sltpf0 up && "
		   "ip link set sltpf1 up && ip addr add 10.200.0.11/24 dev sltpf0 && "
		   "ip neigh add 10.200.0.12 lladdr 02:cc:00:00:00:02 dev sltpf0 nud permanent && "
		   "ip neigh add 10.200.0.13 lladdr 02:cc:00:00:00:03 dev sltpf0 nud permanent && "
		   "ip link add sltb0 type veth peer name sltb1 && ip link set sltb0 up && "
		   "ip link add sltc0 type veth peer name sltc1 && ip link set sltc0 up && "
		   "sysctl -qw net.ipv4.ip_forward=1")) {
		fprintf(stderr, "pktfuzz: cannot set up the test network namespace\n");
		return -1;
	}
	w->uplink = (int)if_nametoindex("sltpf0");
	w->ifindex[POD_A] = 1; /* loopback: what a test run without ctx sees */
	w->ifindex[POD_B] = (int)if_nametoindex("sltb0");
	w->ifindex[POD_C] = (int)if_nametoindex("sltc0");
	w->pod_ip[POD_A] = w->ip_a = ip4("10.77.0.2");
	w->pod_ip[POD_B] = w->ip_b = ip4("10.77.0.3");
	w->pod_ip[POD_C] = ip4("10.77.0.4");
	w->ip_r = ip4("10.88.2.5");
	w->node_ip = ip4("10.200.0.11");
	w->hairpin_ip = htonl(SLUICE_LB_HAIRPIN_ADDR);
	w->ncpus = libbpf_num_possible_cpus();
	w->percpu = calloc((size_t)(w->ncpus > 0 ? w->ncpus : 1) * SLUICE_METRICS_MAX,
			   sizeof(struct sluice_metric));
	if (w->ncpus <= 0 || !w->percpu || !w->uplink || !w->ifindex[POD_B] || !w->ifindex[POD_C]) {
		fprintf(stderr, "pktfuzz: cannot find the test devices or CPUs\n");
		return -1;
	}
	snprintf(w->pin_dir, sizeof(w->pin_dir), "/sys/fs/bpf/sluice-pktfuzz-%d", (int)getpid());
	if (datapath_open(&w->dp, w->pin_dir, &fuzz_opts, err, sizeof(err))) {
		fprintf(stderr, "pktfuzz: datapath_open %s: %s\n", w->pin_dir, err);
		return -1;
	}
	if (world_maps(w, break_policy)) {
		fprintf(stderr, "pktfuzz: cannot fill the datapath's maps under %s: %s\n", w->pin_dir,
			strerror(errno));
		return -1;
	}
	return 0;
}

void world_close(struct world *w)
{
	char cmd[128];

	if (w->dp)
		datapath_close(w->dp);
	w->dp = NULL;
	free(w->percpu);
	w->percpu = NULL;
	if (w->pin_dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", w->pin_dir);
		if (system(cmd))
			fprintf(stderr, "pktfuzz: cannot remove %s\n", w->pin_dir);
	}
}

int world_prog_fd(struct world *w, int prog)
{
	switch (prog) {
	case P_FROM_POD: return datapath_prog_fd(w->dp, 1);
	case P_TO_POD: return datapath_prog_fd(w->dp, 0);
	case P_FROM_NETDEV: return datapath_node_prog_fd(w->dp, HOOK_NETDEV);
	case P_TO_NETDEV: return datapath_node_prog_fd(w->dp, HOOK_NETDEV_OUT);
	case P_FROM_OVERLAY: return datapath_node_prog_fd(w->dp, HOOK_OVERLAY);
	case P_TO_OVERLAY: return datapath_node_prog_fd(w->dp, HOOK_OVERLAY_OUT);
	default: return datapath_xdp_prog_fd(w->dp);
	}
}

/* sluice_stats_v2 summed over the CPUs, in one batch read. */
int world_metrics_read(struct world *w, struct sluice_metric out[SLUICE_METRICS_MAX])
{
	static __u32 keys[SLUICE_METRICS_MAX];
	struct sluice_metric *v = w->percpu;
	__u32 count = SLUICE_METRICS_MAX, out_batch = 0;
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	int err;

	err = bpf_map_lookup_batch(datapath_metrics_map_fd(w->dp), NULL, &out_batch, keys, v, &count,
				   &opts);
	if (err && errno != ENOENT)
		return -1;
	if (count != SLUICE_METRICS_MAX)
		return -1;
	for (__u32 i = 0; i < count; i++) {
		out[keys[i]].packets = out[keys[i]].bytes = 0;
		for (int c = 0; c < w->ncpus; c++) {
			out[keys[i]].packets += v[(size_t)i * (size_t)w->ncpus + (size_t)c].packets;
			out[keys[i]].bytes += v[(size_t)i * (size_t)w->ncpus + (size_t)c].bytes;
		}
	}
	return 0;
}

static long map_entries(int fd, size_t key_size)
{
	uint8_t key[64], next[64];
	long n = 0;
	void *prev = NULL;

	while (!bpf_map_get_next_key(fd, prev, next)) {
		memcpy(key, next, key_size);
		prev = key;
		n++;
	}
	return n;
}

int world_check_bounded(struct world *w, long first_frags)
{
	long ct = map_entries(datapath_ct_map_fd(w->dp), sizeof(struct sluice_ct_key));
	long frag = map_entries(datapath_frag_map_fd(w->dp), sizeof(struct sluice_frag_key));
	long flows = map_entries(datapath_flow4_map_fd(w->dp), sizeof(struct sluice_ct_key));
	__u64 *st = calloc((size_t)w->ncpus, sizeof(__u64));
	__u64 lost[3] = { 0 };
	int ret = 0;

	for (__u32 k = 0; st && k < 3; k++) {
		if (bpf_map_lookup_elem(datapath_flow_st_fd(w->dp), &k, st))
			continue;
		for (int c = 0; c < w->ncpus; c++)
			lost[k] += st[c];
	}
	free(st);
	printf("  maps: %ld connection-tracking entries (max %d), %ld fragment entries (max %d), "
	       "%ld flow entries (max %d); flow records lost: %llu ring buffer full, %llu rate-limited, "
	       "%llu flow map full\n", ct, SLUICE_CT_MAX, frag, SLUICE_FRAG_MAX, flows, SLUICE_FLOW_MAX,
	       (unsigned long long)lost[0], (unsigned long long)lost[1], (unsigned long long)lost[2]);
	/* (The LRU maps cannot outgrow max_entries; what garbage must not do
	 * is make entries: a fragment entry only ever comes from a first
	 * fragment.) */
	if (frag > first_frags) {
		fprintf(stderr, "pktfuzz: %ld fragment entries for %ld first fragments seen: something "
			"other than a first fragment made one\n", frag, first_frags);
		ret = -1;
	}
	return ret;
}

/* ---- generators ------------------------------------------------------------ */

static uint32_t any_addr(struct prng *r)
{
	return (uint32_t)prng_next(r);
}

/* Sources and destinations, weighted towards the world's interesting ones. */
static __be32 pick_addr(struct world *w, struct prng *r, int towards_b)
{
	static const char *const pool[] = {
		"10.77.0.2", "10.77.0.3", "10.77.0.4", "10.77.0.99", "10.88.2.5", "10.88.2.6",
		"10.88.4.7", "10.200.0.11", "10.200.0.12", "10.200.0.13", "10.200.0.99",
		"10.96.0.10", "10.96.0.11", "192.0.2.10", "203.0.113.5", "169.254.42.1", "8.8.8.8",
	};

	if (towards_b && chance(r, 50))
		return w->ip_b;
	if (chance(r, 4))
		return any_addr(r);
	if (chance(r, 3))
		return ip4("203.0.113.0") | htonl(rnd(r, 256));
	return ip4(pool[rnd(r, sizeof(pool) / sizeof(pool[0]))]);
}

static uint16_t pick_port(struct prng *r)
{
	static const uint32_t ports[] = { 80, 80, 81, 53, 8472, 30080, 443, 40000, 40001, 40002,
					  62000, 8080, 0 };

	return chance(r, 5) ? (uint16_t)rnd(r, 65536) : (uint16_t)pick32(r, ports, sizeof(ports) / 4);
}

static void pick_l4(struct prng *r, struct l3spec *s)
{
	static const uint32_t flags[] = { 0x02, 0x02, 0x12, 0x10, 0x18, 0x11, 0x04, 0x14, 0x03, 0x06 };
	static const uint32_t icmp_types[] = { 8, 0, 3, 3, 11, 12, 5, 13 };
	uint32_t p = rnd(r, 100);

	s->proto = p < 45 ? IPPROTO_TCP : p < 70 ? IPPROTO_UDP : p < 90 ? IPPROTO_ICMP
		 : p < 94 ? IPPROTO_SCTP : (uint8_t)rnd(r, 256);
	s->sport = pick_port(r);
	s->dport = pick_port(r);
	s->tcp_flags = chance(r, 5) ? (uint8_t)rnd(r, 256) : (uint8_t)pick32(r, flags, 10);
	s->icmp_type = (uint8_t)pick32(r, icmp_types, 8);
	s->icmp_code = (uint8_t)(s->icmp_type == 3 ? rnd(r, 16) : 0);
	s->payload = (uint16_t)(chance(r, 70) ? rnd(r, 48) : rnd(r, 600));
}

/* The IPv4 part of a frame at b (room: cap bytes); returns its length. */
static size_t gen_ipv4(struct world *w, struct prng *r, uint8_t *b, size_t cap, __be32 saddr,
		       __be32 daddr)
{
	struct l3spec s = { .saddr = saddr, .daddr = daddr, .ttl = 64 };
	uint8_t quote[128];
	size_t qlen = 0, len;

	pick_l4(r, &s);
	if (chance(r, 10))
		s.ttl = (uint8_t)(chance(r, 50) ? rnd(r, 3) : rnd(r, 256));
	if (chance(r, 10))
		s.tos = (uint8_t)rnd(r, 256);
	if (chance(r, 10))
		s.optlen = (uint8_t)(4 * (1 + rnd(r, 10)));
	s.id = (uint16_t)(chance(r, 70) ? 1 + rnd(r, 4) : rnd(r, 65536));
	if (chance(r, 12)) {
		/* Fragments: a first (MF, offset 0), a later one (offset,
		 * MF or not), or one overlapping the first's L4 header. */
		uint32_t k = rnd(r, 3);

		s.frag = k == 0 ? 0x2000 : k == 1 ? (uint16_t)((rnd(r, 2) << 13) | (1 + rnd(r, 200)))
						  : (uint16_t)(0x2000 | 1);
		s.payload = (uint16_t)(8 * (1 + rnd(r, 8)));
	} else if (chance(r, 10)) {
		s.frag = 0x4000; /* DF */
	}
	if (s.proto == IPPROTO_ICMP && (s.icmp_type == 3 || s.icmp_type == 11 || s.icmp_type == 12)) {
		/* An error quoting a packet its destination sent: mostly a
		 * flow of this world's, sometimes anything at all. */
		struct l3spec in = { .saddr = chance(r, 80) ? daddr : pick_addr(w, r, 0),
				     .daddr = chance(r, 60) ? saddr : pick_addr(w, r, 0), .ttl = 64 };

		pick_l4(r, &in);
		if (in.proto != IPPROTO_TCP && in.proto != IPPROTO_UDP && in.proto != IPPROTO_ICMP)
			in.proto = IPPROTO_TCP;
		if (in.proto == IPPROTO_ICMP)
			in.icmp_type = 8;
		in.payload = 0;
		in.optlen = (uint8_t)(chance(r, 10) ? 4 * (1 + rnd(r, 10)) : 0);
		qlen = put_packet(quote, &in, NULL, 0);
		if (qlen > 20u + in.optlen + 8 && chance(r, 80))
			qlen = 20u + in.optlen + 8; /* what routers quote */
		if (chance(r, 10))
			qlen = rnd(r, (uint32_t)qlen + 1);
	}
	len = sizeof(struct iphdr) + s.optlen + 60 + s.payload + qlen;
	if (len > cap)
		s.payload = 0;
	return put_packet(b, &s, qlen ? quote : NULL, qlen);
}

/* An Ethernet frame that is not plain IPv4: ARP, IPv6, a VLAN tag over
 * IPv4, or an EtherType nobody uses. */
static size_t gen_other_l2(struct world *w, struct prng *r, uint8_t *b, const uint8_t *dst,
			   const uint8_t *src, __be32 saddr, __be32 daddr)
{
	uint32_t k = rnd(r, 4);
	size_t len;

	if (k == 0) {
		len = put_eth(b, dst, src, ETH_P_ARP);
		memset(b + len, 0, 28);
		b[len + 1] = 1, b[len + 2] = 8, b[len + 4] = 6, b[len + 5] = 4, b[len + 7] = 1;
		memcpy(b + len + 14, &saddr, 4);
		memcpy(b + len + 24, &daddr, 4);
		return len + 28;
	}
	if (k == 1) {
		len = put_eth(b, dst, src, ETH_P_IPV6);
		memset(b + len, 0, 40);
		b[len] = 0x60;
		b[len + 5] = 20;
		b[len + 6] = IPPROTO_TCP;
		b[len + 7] = 64;
		memset(b + len + 40, 0x11, 20);
		return len + 60;
	}
	if (k == 2) {
		len = put_eth(b, dst, src, ETH_P_8021Q);
		b[len] = 0, b[len + 1] = 7;	/* VLAN 7 */
		b[len + 2] = 0x08, b[len + 3] = 0x00;
		return len + 4 + gen_ipv4(w, r, b + len + 4, 1400, saddr, daddr);
	}
	len = put_eth(b, dst, src, (uint16_t)rnd(r, 0x10000));
	memset(b + len, 0x42, 40);
	return len + 40;
}

/* A VXLAN packet on the uplink from outer (its MAC src_mac) to this node,
 * carrying a frame from isrc to idst; depth > 1 nests another VXLAN
 * packet inside. Returns its length. */
static size_t gen_vxlan(struct world *w, struct prng *r, uint8_t *b, const uint8_t *src_mac,
			__be32 outer, __be32 isrc, __be32 idst, int depth)
{
	static const uint8_t us[6] = { 0x02, 0x11, 0, 0, 0, 1 };
	size_t off = put_eth(b, us, src_mac, ETH_P_IP), inner_off = off + 36, in;

	in = put_eth(b + inner_off, mac_other, mac_other, ETH_P_IP);
	if (depth > 1)
		in += gen_vxlan(w, r, b + inner_off, mac_other, chance(r, 50) ? outer : isrc, isrc, idst,
				depth - 1) - ETH_HLEN;
	else
		in += gen_ipv4(w, r, b + inner_off + in, 1200, isrc, idst);
	return off + put_vxlan_hdrs(b + off, outer, chance(r, 90) ? w->node_ip : pick_addr(w, r, 0),
				    (uint16_t)(40000 + rnd(r, 16)), in, (uint8_t)(chance(r, 10) ? rnd(r, 4) : 0));
}

/* Mutate 55 % of the frames: one to three mutations, on the outer or
 * (VXLAN) the inner IPv4 header. */
static int gen_mutate(struct prng *r, uint8_t *pkt, size_t *len, size_t inner_ip)
{
	if (!chance(r, 55))
		return 0;
	for (uint32_t n = 1 + rnd(r, 3); n; n--) {
		size_t ip = inner_ip && chance(r, 50) ? inner_ip : ETH_HLEN;

		if (ip + 20 > *len)
			ip = 0;
		*len = mutate(r, pkt, *len, ip, (int)(1 + rnd(r, MUT_MAX - 1)));
	}
	return 1;
}

void world_generate(struct world *w, struct prng *r, int prog, uint8_t *pkt, struct gen_out *g)
{
	size_t inner_ip = 0;
	__be32 s, d;
	int pod;

	memset(g, 0, sizeof(*g));
	g->pod = -1;
	g->ifindex = 1;
	switch (prog) {
	case P_FROM_POD:
		pod = chance(r, 45) ? POD_A : chance(r, 60) ? POD_B : POD_C;
		g->pod = pod;
		g->ifindex = (uint32_t)w->ifindex[pod];
		s = chance(r, 90) ? w->pod_ip[pod] : pick_addr(w, r, 0);
		d = pick_addr(w, r, pod != POD_B);
		if (chance(r, 85)) {
			g->len = put_eth(pkt, mac_lxc[pod], mac_pod[pod], ETH_P_IP);
			g->len += gen_ipv4(w, r, pkt + g->len, PF_FRAME_MAX - 200, s, d);
		} else {
			g->len = gen_other_l2(w, r, pkt, mac_lxc[pod], mac_pod[pod], s, d);
		}
		break;
	case P_TO_POD:
	case P_TO_NETDEV:
	case P_TO_OVERLAY:
	case P_FROM_OVERLAY:
		if (prog == P_TO_POD) {
			s = pick_addr(w, r, 0);
			d = chance(r, 70) ? w->ip_b : pick_addr(w, r, 0);
			if (w->replay_len && chance(r, 10)) {
				memcpy(pkt, w->replay, w->replay_len);
				g->len = w->replay_len;
				g->ifindex = (uint32_t)w->ifindex[POD_B];
				return;
			}
		} else {
			s = chance(r, 70) ? w->pod_ip[rnd(r, NPODS)] : pick_addr(w, r, 0);
			d = pick_addr(w, r, prog == P_FROM_OVERLAY);
			/* The stack routes a local pod's address to its veth,
			 * never out of the uplink or into the tunnel. */
			while (prog != P_FROM_OVERLAY && world_is_local_pod(w, d))
				d = pick_addr(w, r, 0);
			/* The host stack sends with pod A's source only what
			 * from_pod let out of A (A is egress-isolated): the
			 * replays of such packets (world_replay_note) stand for
			 * those. B and C may send anything. */
			if (prog != P_FROM_OVERLAY && w->replay_len && chance(r, 25)) {
				memcpy(pkt, w->replay, w->replay_len);
				g->len = w->replay_len;
				g->ifindex = (uint32_t)w->uplink;
				return;
			}
		}
		if (chance(r, 90)) {
			g->len = put_eth(pkt, mac_pod[POD_B], mac_other, ETH_P_IP);
			g->len += gen_ipv4(w, r, pkt + g->len, PF_FRAME_MAX - 200, s, d);
		} else {
			g->len = gen_other_l2(w, r, pkt, mac_pod[POD_B], mac_other, s, d);
		}
		g->ifindex = prog == P_TO_POD ? (uint32_t)w->ifindex[POD_B] : (uint32_t)w->uplink;
		break;
	default: { /* from_netdev, XDP: the uplink */
		uint32_t k = rnd(r, 100);
		const uint8_t *mac = chance(r, 50) ? mac_node2 : chance(r, 50) ? mac_node3 : mac_other;

		g->ifindex = (uint32_t)w->uplink;
		s = pick_addr(w, r, 0);
		d = chance(r, 60) ? w->pod_ip[rnd(r, NPODS)] : pick_addr(w, r, 1);
		if (k < 10) {
			/* An outside client's connection to the NodePort
			 * (stage 2 of the XDP program, nodeport.h at tc). */
			struct l3spec c = { .saddr = chance(r, 80) ? ip4("192.0.2.10") | htonl(rnd(r, 4) << 8)
								   : pick_addr(w, r, 0),
					    .daddr = w->node_ip, .proto = IPPROTO_TCP, .ttl = 64,
					    .sport = (uint16_t)(40000 + rnd(r, 8)), .dport = 30080,
					    .tcp_flags = chance(r, 60) ? 0x02 : 0x10, .payload = (uint16_t)rnd(r, 64) };

			g->len = put_eth(pkt, mac_other, mac, ETH_P_IP);
			g->len += put_packet(pkt + g->len, &c, NULL, 0);
		} else if (k < 55) {
			g->len = put_eth(pkt, mac_other, mac, ETH_P_IP);
			g->len += gen_ipv4(w, r, pkt + g->len, PF_FRAME_MAX - 200, s, d);
		} else if (k < 88) {
			static const char *const outer[] = { "10.200.0.12", "10.200.0.12", "10.200.0.13",
							      "10.200.0.99", "203.0.113.7", "10.88.2.5" };
			__be32 o = ip4(outer[rnd(r, 6)]);

			if (o == ip4("10.200.0.12"))
				mac = chance(r, 90) ? mac_node2 : mac_other;
			else if (o == ip4("10.200.0.13"))
				mac = chance(r, 90) ? mac_node3 : mac_other;
			g->len = gen_vxlan(w, r, pkt, mac, o, s, d, chance(r, 15) ? 2 : 1);
			inner_ip = ETH_HLEN + 36 + ETH_HLEN;
		} else {
			g->len = gen_other_l2(w, r, pkt, mac_other, mac, s, d);
		}
		break;
	}
	}
	g->mutated = gen_mutate(r, pkt, &g->len, inner_ip);
	if (g->len < 1)
		g->len = 1;
	if ((prog == P_TO_NETDEV || prog == P_TO_OVERLAY || prog == P_TO_POD) && g->len >= ETH_HLEN + 16 &&
	    !memcmp(pkt + ETH_HLEN + 12, &w->ip_a, 4))
		memcpy(pkt + ETH_HLEN + 12, &w->pod_ip[POD_C], 4);
}

void world_replay_note(struct world *w, const uint8_t *pkt, size_t len)
{
	if (len > sizeof(w->replay))
		return;
	memcpy(w->replay, pkt, len);
	w->replay_len = len;
}
