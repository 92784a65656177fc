/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Header parsing with a cursor: each helper bounds-checks one header against
 * data_end, advances the cursor past it and returns what comes next, or a
 * DROP() verdict. Callers never touch a header a helper has not checked.
 */
#ifndef SLUICE_BPF_PARSE_H
#define SLUICE_BPF_PARSE_H

#include "common.h"

struct cursor {
	void *pos;
	void *end;
};

static __always_inline void cursor_init(struct cursor *c, struct __sk_buff *skb)
{
	c->pos = (void *)(long)skb->data;
	c->end = (void *)(long)skb->data_end;
}

/* Returns the EtherType (host order) or DROP(). */
static __always_inline int parse_eth(struct cursor *c, struct ethhdr **eth)
{
	struct ethhdr *h = c->pos;

	if ((void *)(h + 1) > c->end)
		return DROP(SLUICE_DROP_TRUNCATED);
	c->pos = h + 1;
	*eth = h;
	return bpf_ntohs(h->h_proto);
}

/* Returns the IP protocol number or DROP(). Options are skipped. */
static __always_inline int parse_ipv4(struct cursor *c, struct iphdr **ip)
{
	struct iphdr *h = c->pos;
	__u32 hlen;

	if ((void *)(h + 1) > c->end)
		return DROP(SLUICE_DROP_TRUNCATED);
	hlen = h->ihl * 4;
	if (h->version != 4 || hlen < sizeof(*h))
		return DROP(SLUICE_DROP_BAD_IPHDR);
	if (c->pos + hlen > c->end)
		return DROP(SLUICE_DROP_TRUNCATED);
	c->pos += hlen;
	*ip = h;
	return h->protocol;
}

#endif /* SLUICE_BPF_PARSE_H */
