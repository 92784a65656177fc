/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Services for node-local clients (host processes, hostNetwork pods): the
 * cgroup sock_addr hooks give a socket a backend at connect() (and, for
 * unconnected UDP, at each sendmsg()) instead of translating its packets.
 * A node process's packet to a ClusterIP is routed (to the default route)
 * before any tc hook sees it, and 127.0.0.1:nodePort never reaches a
 * device at all; at connect() the socket is simply connected to the
 * backend, so there is no per-packet NAT either way and nothing to undo on
 * replies. recvmsg() and getpeername() show the application the frontend
 * it asked for, from sluice_lbsk4_v1.
 *
 * The programs are attached to the root of cgroup v2, where every socket of
 * the machine passes, including other network namespaces' (pods, and on a
 * test machine other agents' nodes): only sockets of the namespace the
 * agent runs in are touched. Pods' sockets are translated at from_pod.
 */
#ifndef SLUICE_BPF_SOCK_H
#define SLUICE_BPF_SOCK_H

#include "config.h"
#include "lb.h"
#include "metrics.h"

#define SOCK_ALLOW 1
#define SOCK_REJECT 0

/* Not in vmlinux.h's enums: the errno the application gets when a
 * frontend has no backend, as kube-proxy's REJECT rule gives it. */
#define SOCK_ECONNREFUSED 111

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SLUICE_LBSK_MAX);
	__type(key, struct sluice_lbsk4_key);
	__type(value, struct sluice_lbsk4_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_lbsk4_v1 SEC(".maps");

static __always_inline int sock4_ours(struct bpf_sock_addr *ctx)
{
	return cfg_lb && cfg_host_netns_cookie && bpf_get_netns_cookie(ctx) == cfg_host_netns_cookie;
}

/*
 * A backend for a new connection or datagram to the Service whose slot 0
 * (svc, of the frontend k) the caller read: lb4_pick, as every other
 * translating place. The client is the node; a socket has no source port
 * before connect(), so its cookie stands in for one in the flow hash:
 * Maglev spreads a node's connections, one socket keeps its backend.
 */
static __always_inline int sock4_pick(struct bpf_sock_addr *ctx, const struct sluice_lb4_key *k,
				      const struct sluice_lb4_value *svc,
				      struct sluice_lb4_backend *be)
{
	struct sluice_ct_key tuple = { .saddr = cfg_node_ip, .daddr = k->addr,
				       .sport = (__be16)bpf_get_socket_cookie(ctx),
				       .dport = k->port, .proto = k->proto };

	return lb4_pick(k, svc, &tuple, be) ? 0 : -1;
}

/*
 * connect() or sendmsg() of a node socket to (user_ip4, user_port): when
 * that is a frontend (or 127.0.0.1 and a NodePort), the socket is given a
 * backend instead, and the pair remembered for recvmsg()/getpeername().
 * A frontend without backend fails the call with ECONNREFUSED.
 */
static __always_inline int sock4_translate(struct bpf_sock_addr *ctx)
{
	struct sluice_lb4_key k = { .scope = SLUICE_LB_SCOPE_INT };
	struct sluice_lbsk4_value fe;
	struct sluice_lbsk4_key sk = {};
	struct sluice_lb4_backend be;
	struct sluice_lb4_value *svc, slot0;
	__u32 proto = ctx->protocol;

	if (!sock4_ours(ctx) || (proto != IPPROTO_TCP && proto != IPPROTO_UDP))
		return SOCK_ALLOW;
	k.addr = ctx->user_ip4;
	k.port = (__be16)ctx->user_port;
	k.proto = (__u8)proto;
	svc = bpf_map_lookup_elem(&sluice_svc4_v1, &k);
	/* 127.0.0.1:nodePort is the NodePort of the node's own address. */
	if (!svc && k.addr == bpf_htonl(0x7f000001) && cfg_node_ip) {
		k.addr = cfg_node_ip;
		svc = bpf_map_lookup_elem(&sluice_svc4_v1, &k);
		if (svc && !(svc->flags & SLUICE_LB_F_NODEPORT))
			svc = NULL;
	}
	if (!svc)
		return SOCK_ALLOW;
	/* One read of slot 0: the agent may replace it meanwhile. */
	slot0 = *svc;
	fe.rev_nat = slot0.rev_nat;
	if (sock4_pick(ctx, &k, &slot0, &be)) {
		metrics_count(SLUICE_LB_SOCK_NO_BACKEND, SLUICE_DIR_EGRESS, 0);
		/* Without it the hook's 0 would fail the call with EPERM. */
		bpf_set_retval(-SOCK_ECONNREFUSED);
		return SOCK_REJECT;
	}
	fe.addr = ctx->user_ip4;
	fe.port = (__be16)ctx->user_port;
	sk.cookie = bpf_get_socket_cookie(ctx);
	sk.addr = be.addr;
	sk.port = be.port;
	bpf_map_update_elem(&sluice_lbsk4_v1, &sk, &fe, BPF_ANY);
	ctx->user_ip4 = be.addr;
	ctx->user_port = (__u32)be.port;
	metrics_count(SLUICE_LB_SOCK_TRANSLATED, SLUICE_DIR_EGRESS, 0);
	return SOCK_ALLOW;
}

/*
 * recvmsg() (the datagram's source) or getpeername() (the peer) of a node
 * socket: a backend this socket was given for a frontend shows as that
 * frontend, while its Service exists. A datagram from any other address,
 * or to any other socket, is shown as it is: a backend's address alone
 * never turns into a frontend.
 */
static __always_inline void sock4_restore(struct bpf_sock_addr *ctx)
{
	struct sluice_lbsk4_key sk = {};
	struct sluice_lbsk4_value *fe;
	__u32 rn;

	if (!sock4_ours(ctx))
		return;
	sk.cookie = bpf_get_socket_cookie(ctx);
	sk.addr = ctx->user_ip4;
	sk.port = (__be16)ctx->user_port;
	fe = bpf_map_lookup_elem(&sluice_lbsk4_v1, &sk);
	if (!fe)
		return;
	rn = fe->rev_nat;
	if (!bpf_map_lookup_elem(&sluice_lbrn4_v1, &rn))
		return;
	ctx->user_ip4 = fe->addr;
	ctx->user_port = (__u32)fe->port;
}

#endif /* SLUICE_BPF_SOCK_H */
