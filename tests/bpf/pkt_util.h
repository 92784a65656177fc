/* SPDX-License-Identifier: Apache-2.0 */
/* Small packet-building helpers shared by the BPF program tests. */
#ifndef SLUICE_TESTS_BPF_PKT_UTIL_H
#define SLUICE_TESTS_BPF_PKT_UTIL_H

#include <stddef.h>
#include <arpa/inet.h>
#include <linux/types.h>

/* A dotted IPv4 address, network order. */
static inline __be32 ip4(const char *s)
{
	struct in_addr a;

	inet_pton(AF_INET, s, &a);
	return a.s_addr;
}

/* The Internet checksum of an IPv4 header (len bytes, its check field 0). */
static inline __u16 ip_checksum(const void *hdr, size_t len)
{
	const __u16 *p = hdr;
	__u32 sum = 0;

	for (size_t i = 0; i < len / 2; i++)
		sum += p[i];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

#endif /* SLUICE_TESTS_BPF_PKT_UTIL_H */
