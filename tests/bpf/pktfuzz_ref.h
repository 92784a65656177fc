/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The packet fuzzer's reference parser: what a receiving Linux stack makes
 * of a frame a BPF program delivered, independent of bpf/: the IPv4 header
 * as ip_rcv takes it (version, IHL, total length, the frame trimmed to it),
 * the L4 ports only where the stack would read them (the first fragment,
 * within the total length), and the tuple the datapath tracks the packet
 * under (include/sluice/datapath.h, struct sluice_ct_key).
 */
#ifndef SLUICE_TESTS_BPF_PKTFUZZ_REF_H
#define SLUICE_TESTS_BPF_PKTFUZZ_REF_H

#include <stdint.h>
#include <string.h>
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/icmp.h>

#include <sluice/datapath.h>

struct ref_pkt {
	uint16_t ethertype;	/* host order; 0: shorter than Ethernet */
	int ipv4;		/* an IPv4 header ip_rcv accepts (checksum aside) */
	int csum_ok;		/* its header checksum is right */
	int later_frag;		/* offset > 0: no L4 header */
	int first_frag;		/* offset 0, MF */
	int has_l4;		/* ports (or ICMP type) readable within tot_len */
	struct sluice_ct_key key;	/* the tuple as the datapath tracks it */
	uint16_t frag_id;	/* network order */
	uint8_t tcp_flags;
	uint8_t icmp_type;
	int icmp_error;		/* has_inner: the quoted packet's tuple in inner */
	int has_inner;
	struct sluice_ct_key inner;
	size_t ip_off;		/* where the IPv4 header starts */
	size_t ip_len;		/* tot_len */
};

static inline uint16_t ref_csum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint32_t sum = 0;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* The tuple of an ICMP echo or a TCP/UDP/SCTP header at l4 (avail bytes;
 * quoted: the 8 bytes an ICMP error quotes are all there is). */
static inline int ref_ports(uint8_t proto, const uint8_t *l4, size_t avail, struct sluice_ct_key *k,
			    uint8_t *icmp_type, int quoted)
{
	if (proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP) {
		size_t need = quoted ? 8 : proto == IPPROTO_TCP ? 20 : proto == IPPROTO_UDP ? 8 : 12;

		if (avail < need)
			return 0;
		memcpy(&k->sport, l4, 2);
		memcpy(&k->dport, l4 + 2, 2);
		return 1;
	}
	if (proto == IPPROTO_ICMP) {
		if (avail < 8)
			return 0;
		*icmp_type = l4[0];
		if (l4[0] == ICMP_ECHO)
			memcpy(&k->sport, l4 + 4, 2);
		else if (l4[0] == ICMP_ECHOREPLY)
			memcpy(&k->dport, l4 + 4, 2);
		return 1;
	}
	return 1; /* no ports to have */
}

/* Parse the IPv4 packet at b (avail bytes of frame from there) into p.
 * lenient: as the datapath reads it (the total length ignored, the
 * headers read up to the frame's end), for the tuples peers claimed. */
static inline void ref_parse_ipv4(const uint8_t *b, size_t avail, struct ref_pkt *p, int lenient)
{
	const struct iphdr *ip = (const struct iphdr *)b;
	size_t hlen, tot;
	uint16_t frag;

	if (avail < sizeof(*ip))
		return;
	hlen = (size_t)ip->ihl * 4;
	tot = lenient ? avail : ntohs(ip->tot_len);
	if (ip->version != 4 || hlen < sizeof(*ip) || tot < hlen || tot > avail)
		return;
	p->ipv4 = 1;
	p->csum_ok = ref_csum(b, hlen) == 0;
	p->ip_len = tot;
	p->key.saddr = ip->saddr;
	p->key.daddr = ip->daddr;
	p->key.proto = ip->protocol;
	p->frag_id = ip->id;
	frag = ntohs(ip->frag_off);
	p->later_frag = (frag & 0x1fff) != 0;
	p->first_frag = !p->later_frag && (frag & 0x2000);
	if (p->later_frag)
		return;
	p->has_l4 = ref_ports(ip->protocol, b + hlen, tot - hlen, &p->key, &p->icmp_type, 0);
	if (p->has_l4 && ip->protocol == IPPROTO_TCP)
		p->tcp_flags = b[hlen + 13];
	if (p->has_l4 && ip->protocol == IPPROTO_ICMP &&
	    (p->icmp_type == ICMP_DEST_UNREACH || p->icmp_type == ICMP_TIME_EXCEEDED ||
	     p->icmp_type == ICMP_PARAMETERPROB)) {
		const uint8_t *in = b + hlen + 8;
		size_t left = tot - hlen - 8;
		const struct iphdr *iip = (const struct iphdr *)in;
		uint8_t t = 0;

		p->icmp_error = 1;
		if (left >= sizeof(*iip) && iip->ihl >= 5 && (size_t)iip->ihl * 4 <= left) {
			p->inner.saddr = iip->saddr;
			p->inner.daddr = iip->daddr;
			p->inner.proto = iip->protocol;
			p->has_inner = ref_ports(iip->protocol, in + iip->ihl * 4, left - iip->ihl * 4,
						 &p->inner, &t, 1);
		}
	}
}

/* Parse the frame b of len bytes (lenient: see ref_parse_ipv4). */
static inline void ref_parse_as(const uint8_t *b, size_t len, struct ref_pkt *p, int lenient)
{
	memset(p, 0, sizeof(*p));
	if (len < ETH_HLEN)
		return;
	p->ethertype = (uint16_t)(b[12] << 8 | b[13]);
	if (p->ethertype != ETH_P_IP)
		return;
	p->ip_off = ETH_HLEN;
	ref_parse_ipv4(b + ETH_HLEN, len - ETH_HLEN, p, lenient);
}

static inline void ref_parse(const uint8_t *b, size_t len, struct ref_pkt *p)
{
	ref_parse_as(b, len, p, 0);
}

/*
 * The frame VXLAN carries inside an IPv4/UDP packet to the tunnel port
 * that p parsed from b: its offset in b, or 0 when p is no VXLAN packet.
 */
static inline size_t ref_vxlan_inner(const uint8_t *b, size_t len, const struct ref_pkt *p)
{
	size_t l4 = p->ip_off + (size_t)(b[p->ip_off] & 0xf) * 4;

	if (!p->ipv4 || p->later_frag || p->key.proto != IPPROTO_UDP ||
	    p->key.dport != htons(SLUICE_VXLAN_PORT))
		return 0;
	if (p->ip_off + p->ip_len < l4 + 8 + 8 + ETH_HLEN || l4 + 16 + ETH_HLEN > len)
		return 0;
	return l4 + 16;
}

static inline void ref_reverse(const struct sluice_ct_key *k, struct sluice_ct_key *r)
{
	memset(r, 0, sizeof(*r));
	r->saddr = k->daddr;
	r->daddr = k->saddr;
	r->sport = k->dport;
	r->dport = k->sport;
	r->proto = k->proto;
}

#endif /* SLUICE_TESTS_BPF_PKTFUZZ_REF_H */
