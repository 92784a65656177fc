/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Constants the kernel's BTF does not carry (macros), and small helpers. */
#ifndef SLUICE_BPF_COMMON_H
#define SLUICE_BPF_COMMON_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include <sluice/datapath.h>

#define ETH_ALEN	6
#define ETH_HLEN	14
#define ETH_P_IP	0x0800
#define ETH_P_ARP	0x0806

#define PACKET_HOST	 0	/* skb->pkt_type */
#define PACKET_OTHERHOST 3

#define TC_ACT_OK	0
#define TC_ACT_SHOT	2
#define TC_ACT_REDIRECT	7

/* Offsets into an untagged Ethernet + IPv4 frame, for skb store/csum helpers. */
#define IP_OFF		ETH_HLEN
#define IP_TTL_OFF	(IP_OFF + offsetof(struct iphdr, ttl))
#define IP_CSUM_OFF	(IP_OFF + offsetof(struct iphdr, check))

/* A negative verdict carries a reason from include/sluice/datapath.h. */
#define DROP(reason)	(-(SLUICE_DROP_BASE + (reason)))
#define IS_DROP(ret)	((ret) < 0)
#define DROP_REASON(ret) ((__u32)(-(ret) - SLUICE_DROP_BASE))

/*
 * Is a stamp taken at then older than age at now? Another CPU may have
 * written then (a refresh from the flow's other direction) after this
 * program read now: then is ahead of now, by up to a packet's run time.
 * Compared unsigned, now - then wraps to ~2^64 and a busy flow would look
 * expired on every such race (a reply treated as a new untranslated flow,
 * the client answers it with a RST). Signed, a stamp from the future is
 * simply recent.
 */
static __always_inline int ktime_older(__u64 now, __u64 then, __u64 age)
{
	return (__s64)(now - then) > (__s64)age;
}

#endif /* SLUICE_BPF_COMMON_H */
