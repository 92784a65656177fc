/* SPDX-License-Identifier: Apache-2.0 */
/* IPv4 prefixes in host byte order, for arithmetic. */
#ifndef SLUICE_CIDR_H
#define SLUICE_CIDR_H

#include <stdint.h>
#include <stddef.h>

struct cidr4 {
	uint32_t net;	/* network address, host byte order, host bits zero */
	int prefix;	/* 0..32 */
};

/* Parse "a.b.c.d/n". Host bits must be zero. Returns 0 or -EINVAL with a
 * sentence in err. */
int cidr4_parse(const char *text, struct cidr4 *out, char *err, size_t errlen);
/* Number of addresses in the prefix (2^(32-prefix)). */
uint64_t cidr4_size(const struct cidr4 *c);
int cidr4_contains(const struct cidr4 *c, uint32_t ip);
/* "a.b.c.d/n" into buf (at least 19 bytes). */
void cidr4_format(const struct cidr4 *c, char *buf, size_t len);
/* Dotted quad of a host-order address into buf (at least 16 bytes). */
void ip4_format(uint32_t ip, char *buf, size_t len);
/* Parse a dotted quad into host order. Returns 0 or -EINVAL. */
int ip4_parse(const char *text, uint32_t *out);

#endif /* SLUICE_CIDR_H */
