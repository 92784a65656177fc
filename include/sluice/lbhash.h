/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The hash every node uses to pick a Service backend for a flow, shared by
 * bpf/ (the datapath) and agent/ (Maglev tables, `policy explain`, tests).
 * Self-contained: no libc, no kernel-only code, only compiler builtins, so
 * it compiles for -target bpf and for user space alike.
 *
 * The function is Bob Jenkins' lookup3 "hashword" (public domain, 2006):
 * the 32-bit words are fed three at a time through mix(), the last group
 * through final(), and the result is c. Written here from the published
 * algorithm; tests/unit/test_maglev.c checks mix/final against Jenkins'
 * own test vectors and pins known answers for the flow hash, which the BPF
 * side must reproduce bit for bit.
 *
 * Byte order: the hash is defined on numeric (host-order) values, so two
 * nodes of different endianness agree. Packet fields arrive in network
 * order; sluice_lb_flow_hash4() converts them.
 *
 * Why the seed matters: every node must pick the same backend for the same
 * flow (a client's packets may reach different nodes through an outside
 * ECMP router, and a node taking over a flow must agree with the one that
 * started it). So the seed is a cluster-wide constant, never random per
 * node, and nothing else (no pointer, no insertion order) enters the hash.
 */
#ifndef SLUICE_LBHASH_H
#define SLUICE_LBHASH_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* The cluster-wide default seed ("slic"). Changing it moves every flow's
 * Maglev choice: it must change on all nodes at once, or not at all. */
#define SLUICE_LB_SEED_DEFAULT 0x736c6963u

/* lookup3's initial value for a, b and c before the length and seed. */
#define SLUICE_LB_HASH_INIT 0xdeadbeefu

/* Always inlined: the datapath hashes on every new Service flow, and a
 * bpf-to-bpf call per step would cost more than the arithmetic. */
#define SLUICE_LB_INLINE static inline __attribute__((always_inline))

SLUICE_LB_INLINE __u32 sluice_lb_rol32(__u32 x, unsigned int k)
{
	return (x << k) | (x >> (32 - k));
}

/* lookup3 mix(): reversible mixing of three words, between groups. */
SLUICE_LB_INLINE void sluice_lb_mix(__u32 *a, __u32 *b, __u32 *c)
{
	*a -= *c; *a ^= sluice_lb_rol32(*c, 4);  *c += *b;
	*b -= *a; *b ^= sluice_lb_rol32(*a, 6);  *a += *c;
	*c -= *b; *c ^= sluice_lb_rol32(*b, 8);  *b += *a;
	*a -= *c; *a ^= sluice_lb_rol32(*c, 16); *c += *b;
	*b -= *a; *b ^= sluice_lb_rol32(*a, 19); *a += *c;
	*c -= *b; *c ^= sluice_lb_rol32(*b, 4);  *b += *a;
}

/* lookup3 final(): the last group's avalanche; the hash is c. */
SLUICE_LB_INLINE void sluice_lb_final(__u32 *a, __u32 *b, __u32 *c)
{
	*c ^= *b; *c -= sluice_lb_rol32(*b, 14);
	*a ^= *c; *a -= sluice_lb_rol32(*c, 11);
	*b ^= *a; *b -= sluice_lb_rol32(*a, 25);
	*c ^= *b; *c -= sluice_lb_rol32(*b, 16);
	*a ^= *c; *a -= sluice_lb_rol32(*c, 4);
	*b ^= *a; *b -= sluice_lb_rol32(*a, 14);
	*c ^= *b; *c -= sluice_lb_rol32(*b, 24);
}

/* hashword(k, 2, seed): a backend's identity (address, port). */
SLUICE_LB_INLINE __u32 sluice_lb_hash2(__u32 w0, __u32 w1, __u32 seed)
{
	__u32 a, b, c;

	a = b = c = SLUICE_LB_HASH_INIT + (2u << 2) + seed;
	b += w1;
	a += w0;
	sluice_lb_final(&a, &b, &c);
	return c;
}

/* hashword(k, 4, seed): one full group, then the fourth word alone. */
SLUICE_LB_INLINE __u32 sluice_lb_hash4(__u32 w0, __u32 w1, __u32 w2, __u32 w3, __u32 seed)
{
	__u32 a, b, c;

	a = b = c = SLUICE_LB_HASH_INIT + (4u << 2) + seed;
	a += w0;
	b += w1;
	c += w2;
	sluice_lb_mix(&a, &b, &c);
	a += w3;
	sluice_lb_final(&a, &b, &c);
	return c;
}

SLUICE_LB_INLINE __u32 sluice_lb_ntohl(__u32 x)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return __builtin_bswap32(x);
#else
	return x;
#endif
}

SLUICE_LB_INLINE __u16 sluice_lb_ntohs(__u16 x)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return __builtin_bswap16(x);
#else
	return x;
#endif
}

/*
 * The flow hash: a flow's tuple as it reached the node, before any
 * translation (client address and port, frontend address and port,
 * protocol), all in network byte order as in the packet and in struct
 * sluice_ct_key. Defined as
 *   hashword({ saddr, daddr, sport << 16 | dport, proto }, 4, seed)
 * with every value in host order. A Maglev table of size M gives the flow
 * the backend in entry (hash % M).
 */
SLUICE_LB_INLINE __u32 sluice_lb_flow_hash4(__be32 saddr, __be32 daddr, __be16 sport,
					    __be16 dport, __u8 proto, __u32 seed)
{
	__u32 ports = (__u32)sluice_lb_ntohs((__u16)sport) << 16 | sluice_lb_ntohs((__u16)dport);

	return sluice_lb_hash4(sluice_lb_ntohl((__u32)saddr), sluice_lb_ntohl((__u32)daddr),
			       ports, proto, seed);
}

#endif /* SLUICE_LBHASH_H */
