// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Programs on a pod's host-side veth ("lxc…").
 *
 * from_pod: tc ingress of the host veth, i.e. every packet the pod sends.
 *   IPv4 from the pod's own address to another pod on this node is routed
 *   here: TTL decremented, MACs rewritten, and handed straight to the
 *   destination pod's interface with bpf_redirect_peer (no bridge, no
 *   iptables, no second trip through the host stack). Everything else
 *   (the node, other nodes, the world) goes to the host stack, so kube-proxy
 *   and the node's routing keep working. ARP passes; other non-IPv4 traffic
 *   is dropped because sluice is IPv4-only today.
 * to_pod: tc egress of the host veth, i.e. what the host stack sends to the
 *   pod. Counted; the ingress policy hook lives here.
 *
 * Each entry point has one exit that records the verdict in sluice_stats_v1.
 */
#include "lib/common.h"
#include "lib/parse.h"
#include "lib/metrics.h"
#include "lib/endpoint.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* RFC 1624 incremental checksum update for a TTL decrement by one. */
static __always_inline void ipv4_decrement_ttl(struct iphdr *ip)
{
	__u32 sum = (__u32)ip->check + (__u32)bpf_htons(0x0100);

	ip->check = (__u16)(sum + (sum >= 0xffff));
	ip->ttl--;
}

static __always_inline int from_pod_ipv4(struct __sk_buff *skb, struct cursor *c,
					 struct ethhdr *eth, __u32 *reason)
{
	struct sluice_endpoint *src, *dst;
	struct iphdr *ip;
	int ret;

	ret = parse_ipv4(c, &ip);
	if (IS_DROP(ret))
		return ret;

	/* A pod may only send from the address sluice gave it. */
	src = endpoint_lookup4(ip->saddr);
	if (!src || src->ifindex != skb->ifindex)
		return DROP(SLUICE_DROP_SPOOFED);

	dst = endpoint_lookup4(ip->daddr);
	/* Not a local pod, or TTL about to expire: the host stack routes it
	 * (and sends ICMP time exceeded when due). */
	if (!dst || ip->ttl <= 1)
		return TC_ACT_OK;

	ipv4_decrement_ttl(ip);
	__builtin_memcpy(eth->h_dest, dst->pod_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, dst->lxc_mac, ETH_ALEN);
	ret = bpf_redirect_peer(dst->ifindex, 0);
	if (ret != TC_ACT_REDIRECT)
		return DROP(SLUICE_DROP_REDIRECT);
	*reason = SLUICE_FWD_LOCAL;
	return ret;
}

SEC("tc")
int from_pod(struct __sk_buff *skb)
{
	__u32 reason = SLUICE_PASS, len = skb->len;
	struct ethhdr *eth;
	struct cursor c;
	int ret;

	cursor_init(&c, skb);
	ret = parse_eth(&c, &eth);
	if (IS_DROP(ret))
		goto out;
	switch (ret) {
	case ETH_P_IP:
		ret = from_pod_ipv4(skb, &c, eth, &reason);
		break;
	case ETH_P_ARP:
		ret = TC_ACT_OK;
		break;
	default:
		ret = DROP(SLUICE_DROP_UNKNOWN_L3);
		break;
	}
out:
	if (IS_DROP(ret)) {
		metrics_count(DROP_REASON(ret), SLUICE_DIR_EGRESS, len);
		return TC_ACT_SHOT;
	}
	metrics_count(reason, SLUICE_DIR_EGRESS, len);
	return ret;
}

SEC("tc")
int to_pod(struct __sk_buff *skb)
{
	struct ethhdr *eth;
	struct cursor c;
	int ret;

	cursor_init(&c, skb);
	ret = parse_eth(&c, &eth);
	if (IS_DROP(ret)) {
		metrics_count(DROP_REASON(ret), SLUICE_DIR_INGRESS, skb->len);
		return TC_ACT_SHOT;
	}
	metrics_count(SLUICE_PASS, SLUICE_DIR_INGRESS, skb->len);
	return TC_ACT_OK;
}
