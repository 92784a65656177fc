/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Packet generation for the packet fuzzer (test_pktfuzz.c): a seeded PRNG,
 * builders for every kind of frame the BPF programs parse, and mutators
 * that break them the way a hostile or broken sender would. Everything is
 * a pure function of the PRNG state, so a seed reproduces a run.
 */
#ifndef SLUICE_TESTS_BPF_PKTFUZZ_GEN_H
#define SLUICE_TESTS_BPF_PKTFUZZ_GEN_H

#include <stdint.h>
#include <string.h>
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/icmp.h>

#include <sluice/datapath.h>
#include "pkt_util.h"

#define PF_FRAME_MAX 2048	/* the largest frame generated (oversized ones included) */

/* xorshift64*: small, fast, and the same sequence everywhere. */
struct prng {
	uint64_t s;
};

static inline uint64_t prng_next(struct prng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 0x2545f4914f6cdd1dull;
}

static inline uint32_t rnd(struct prng *r, uint32_t n)
{
	return n ? (uint32_t)(prng_next(r) % n) : 0;
}

/* True with probability pct percent. */
static inline int chance(struct prng *r, uint32_t pct)
{
	return rnd(r, 100) < pct;
}

static inline uint32_t pick32(struct prng *r, const uint32_t *v, size_t n)
{
	return v[rnd(r, (uint32_t)n)];
}

/* The Internet checksum of len bytes starting with sum (folded, not negated). */
static inline uint32_t csum_add(uint32_t sum, const void *p, size_t len)
{
	const uint8_t *b = p;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (len & 1)
		sum += (uint32_t)(b[len - 1] << 8);
	return sum;
}

static inline uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((uint16_t)~sum);
}

/* TCP/UDP checksum with the pseudo-header; l4 is len bytes, its check field 0. */
static inline uint16_t l4_checksum(__be32 src, __be32 dst, uint8_t proto, const void *l4, size_t len)
{
	uint32_t sum = 0;

	sum = csum_add(sum, &src, 4);
	sum = csum_add(sum, &dst, 4);
	sum += proto + (uint32_t)len;
	return csum_fold(csum_add(sum, l4, len));
}

/* What an IPv4 packet is made of before it is written out. */
struct l3spec {
	__be32 saddr, daddr;
	uint8_t proto;
	uint8_t ttl;
	uint8_t tos;
	uint8_t optlen;		/* bytes of IP options (multiple of 4, <= 40) */
	uint16_t frag;		/* host order: flags and offset as on the wire */
	uint16_t id;
	uint16_t sport, dport;	/* host order; ICMP echo: sport is the id */
	uint8_t tcp_flags;
	uint8_t icmp_type, icmp_code;
	uint16_t payload;	/* bytes after the L4 header */
};

/* Write an IPv4 header with options at b; returns its length. */
static inline size_t put_ipv4(uint8_t *b, const struct l3spec *s, size_t l4len)
{
	struct iphdr *ip = (struct iphdr *)b;
	size_t hlen = sizeof(*ip) + s->optlen;

	memset(b, 0, hlen);
	ip->version = 4;
	ip->ihl = (uint8_t)(hlen / 4);
	ip->tos = s->tos;
	ip->tot_len = htons((uint16_t)(hlen + l4len));
	ip->id = htons(s->id);
	ip->frag_off = htons(s->frag);
	ip->ttl = s->ttl;
	ip->protocol = s->proto;
	ip->saddr = s->saddr;
	ip->daddr = s->daddr;
	/* Options: a record-route-like option, then NOPs, then EOL. */
	if (s->optlen) {
		uint8_t *o = b + sizeof(*ip);

		memset(o, 1, s->optlen); /* NOP */
		if (s->optlen >= 8) {
			o[0] = 7;	/* record route */
			o[1] = (uint8_t)(s->optlen - 1 < 39 ? s->optlen - 1 : 39);
			o[2] = 4;
			memset(o + 3, 0, (size_t)o[1] - 3);
		}
		o[s->optlen - 1] = 0; /* EOL */
	}
	ip->check = ip_checksum(ip, hlen);
	return hlen;
}

/* The L4 part of s at b (header, then s->payload bytes of pattern);
 * checksums as a correct sender computes them. Returns its length. */
static inline size_t put_l4(uint8_t *b, const struct l3spec *s, const uint8_t *quote, size_t quote_len)
{
	size_t len;

	switch (s->proto) {
	case IPPROTO_TCP: {
		struct tcphdr *t = (struct tcphdr *)b;

		len = sizeof(*t) + s->payload;
		memset(b, 0, sizeof(*t));
		t->source = htons(s->sport);
		t->dest = htons(s->dport);
		t->seq = htonl(0x01020304);
		t->doff = 5;
		b[13] = s->tcp_flags;
		t->window = htons(65535);
		memset(b + sizeof(*t), 0x61, s->payload);
		t->check = l4_checksum(s->saddr, s->daddr, IPPROTO_TCP, b, len);
		return len;
	}
	case IPPROTO_UDP: {
		struct udphdr *u = (struct udphdr *)b;

		len = sizeof(*u) + s->payload;
		u->source = htons(s->sport);
		u->dest = htons(s->dport);
		u->len = htons((uint16_t)len);
		u->check = 0;
		memset(b + sizeof(*u), 0x75, s->payload);
		u->check = l4_checksum(s->saddr, s->daddr, IPPROTO_UDP, b, len);
		return len;
	}
	case IPPROTO_ICMP: {
		struct icmphdr *ic = (struct icmphdr *)b;

		memset(b, 0, sizeof(*ic));
		ic->type = s->icmp_type;
		ic->code = s->icmp_code;
		if (quote) {
			memcpy(b + sizeof(*ic), quote, quote_len);
			len = sizeof(*ic) + quote_len;
		} else {
			ic->un.echo.id = htons(s->sport);
			ic->un.echo.sequence = htons(1);
			memset(b + sizeof(*ic), 0x69, s->payload);
			len = sizeof(*ic) + s->payload;
		}
		ic->checksum = csum_fold(csum_add(0, b, len));
		return len;
	}
	default:
		memset(b, 0x5a, s->payload);
		return s->payload;
	}
}

/* An IPv4 packet (header, L4) at b; quote: an ICMP error's quoted bytes. */
static inline size_t put_packet(uint8_t *b, const struct l3spec *s, const uint8_t *quote, size_t quote_len)
{
	size_t hlen = sizeof(struct iphdr) + s->optlen;
	size_t l4 = (s->frag & 0x1fff) ? (memset(b + hlen, 0x46, s->payload), s->payload)
				       : put_l4(b + hlen, s, quote, quote_len);

	return put_ipv4(b, s, l4) + l4;
}

static inline size_t put_eth(uint8_t *b, const uint8_t *dst, const uint8_t *src, uint16_t type)
{
	struct ethhdr *e = (struct ethhdr *)b;

	memcpy(e->h_dest, dst, 6);
	memcpy(e->h_source, src, 6);
	e->h_proto = htons(type);
	return sizeof(*e);
}

/* VXLAN around an inner frame of inner_len bytes already at b + 50 (outer
 * IPv4 + UDP + VXLAN header + the outer Ethernet the caller wrote). */
static inline size_t put_vxlan_hdrs(uint8_t *b, __be32 src, __be32 dst, uint16_t sport,
				    size_t inner_len, uint8_t tos)
{
	struct l3spec o = { .saddr = src, .daddr = dst, .proto = IPPROTO_UDP, .ttl = 64, .tos = tos };
	struct udphdr *u = (struct udphdr *)(b + sizeof(struct iphdr));
	uint8_t *vx = b + sizeof(struct iphdr) + sizeof(*u);
	size_t udp_len = sizeof(*u) + 8 + inner_len;

	put_ipv4(b, &o, udp_len);
	u->source = htons(sport);
	u->dest = htons(SLUICE_VXLAN_PORT);
	u->len = htons((uint16_t)udp_len);
	u->check = 0;
	memset(vx, 0, 8);
	vx[0] = 0x08;
	vx[6] = 1; /* VNI 1 */
	return sizeof(struct iphdr) + udp_len;
}

/* ---- mutators --------------------------------------------------------- */

enum mutation {
	MUT_NONE = 0,
	MUT_TRUNC_LAYER,	/* cut at a layer boundary (Ethernet, IP, L4 header) */
	MUT_TRUNC_RANDOM,
	MUT_IHL,		/* any IHL, 0..15 */
	MUT_TOT_LEN,		/* total length too short, too long, random */
	MUT_FRAG,		/* random fragment flags and offset */
	MUT_DOFF,		/* TCP data offset out of range */
	MUT_CSUM,		/* IP or L4 checksum wrong */
	MUT_FLIP,		/* random bytes flipped, mostly in the headers */
	MUT_OVERSIZE,		/* padded far beyond its lengths */
	MUT_VERSION,
	MUT_MAX
};

static inline const char *mutation_name(int m)
{
	static const char *const n[MUT_MAX] = { "none", "trunc-layer", "trunc-random", "ihl", "tot-len",
						"frag", "doff", "csum", "flip", "oversize", "version" };

	return m >= 0 && m < MUT_MAX ? n[m] : "?";
}

/* Mutate the frame buf (len bytes, IPv4 at ip_off or none when ip_off is
 * 0) in place; returns the new length. */
static inline size_t mutate(struct prng *r, uint8_t *buf, size_t len, size_t ip_off, int m)
{
	struct iphdr *ip = ip_off ? (struct iphdr *)(buf + ip_off) : NULL;
	size_t hlen = ip ? (size_t)ip->ihl * 4 : 0;

	switch (m) {
	case MUT_TRUNC_LAYER: {
		size_t cuts[] = { 14, ip_off + 20, ip_off + hlen, ip_off + hlen + 4, ip_off + hlen + 8,
				  ip_off + hlen + 13, ip_off + hlen + 20, len - 1 };
		size_t c = cuts[rnd(r, ip ? 8 : 1)];

		return c < len ? c : len;
	}
	case MUT_TRUNC_RANDOM:
		return 1 + rnd(r, (uint32_t)len);
	case MUT_IHL:
		if (ip)
			ip->ihl = (uint8_t)rnd(r, 16);
		break;
	case MUT_TOT_LEN:
		if (ip) {
			uint32_t cur = ntohs(ip->tot_len);
			uint32_t v[] = { 0, 19, 20, hlen, hlen + 7, cur - 1, cur + 1, cur + 100, 65535,
					 rnd(r, 65536) };

			ip->tot_len = htons((uint16_t)v[rnd(r, 10)]);
		}
		break;
	case MUT_FRAG:
		if (ip)
			ip->frag_off = htons((uint16_t)(chance(r, 50) ? rnd(r, 65536)
								      : (rnd(r, 2) << 13) | rnd(r, 4)));
		break;
	case MUT_DOFF:
		if (ip && ip->protocol == IPPROTO_TCP && ip_off + hlen + 13 <= len)
			buf[ip_off + hlen + 12] = (uint8_t)(rnd(r, 16) << 4);
		break;
	case MUT_CSUM:
		if (ip && chance(r, 50))
			ip->check ^= htons((uint16_t)(1 + rnd(r, 0xffff)));
		else if (ip && ip_off + hlen + 18 <= len)
			buf[ip_off + hlen + (ip->protocol == IPPROTO_TCP ? 16 : ip->protocol == IPPROTO_UDP ? 6 : 2)] ^= 0x5a;
		break;
	case MUT_FLIP:
		for (uint32_t n = 1 + rnd(r, 4); n; n--) {
			size_t at = chance(r, 80) && len > 60 ? rnd(r, 60) : rnd(r, (uint32_t)len);

			buf[at] ^= (uint8_t)(1 + rnd(r, 255));
		}
		break;
	case MUT_OVERSIZE: {
		size_t grow = 1 + rnd(r, PF_FRAME_MAX - (uint32_t)len);

		memset(buf + len, 0xee, grow);
		return len + grow;
	}
	case MUT_VERSION:
		if (ip)
			ip->version = (uint8_t)rnd(r, 16);
		break;
	default:
		break;
	}
	return len;
}

#endif /* SLUICE_TESTS_BPF_PKTFUZZ_GEN_H */
