// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Programs on the root of cgroup v2 (--kube-proxy-replacement on): Service
 * translation for the node's own sockets (bpf/lib/sock.h).
 *
 * sk_connect4:     connect() of a TCP or UDP socket
 * sk_sendmsg4:     sendmsg()/sendto() of an unconnected UDP socket
 * sk_recvmsg4:     recvmsg()/recvfrom() of a UDP socket: the source shown
 * sk_getpeername4: getpeername(): the peer shown
 */
#include "lib/common.h"
#include "lib/config.h"
#include "lib/sock.h"

SEC("cgroup/connect4")
int sk_connect4(struct bpf_sock_addr *ctx)
{
	return sock4_translate(ctx);
}

SEC("cgroup/sendmsg4")
int sk_sendmsg4(struct bpf_sock_addr *ctx)
{
	return sock4_translate(ctx);
}

SEC("cgroup/recvmsg4")
int sk_recvmsg4(struct bpf_sock_addr *ctx)
{
	sock4_restore(ctx);
	return SOCK_ALLOW;
}

SEC("cgroup/getpeername4")
int sk_getpeername4(struct bpf_sock_addr *ctx)
{
	sock4_restore(ctx);
	return SOCK_ALLOW;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
