// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cidr.h"

int ip4_parse(const char *text, uint32_t *out)
{
	struct in_addr a;

	if (inet_pton(AF_INET, text, &a) != 1)
		return -EINVAL;
	*out = ntohl(a.s_addr);
	return 0;
}

void ip4_format(uint32_t ip, char *buf, size_t len)
{
	struct in_addr a = { .s_addr = htonl(ip) };

	if (!inet_ntop(AF_INET, &a, buf, (socklen_t)len) && len)
		buf[0] = '\0';
}

int cidr4_parse(const char *text, struct cidr4 *out, char *err, size_t errlen)
{
	char addr[INET_ADDRSTRLEN], *end;
	const char *slash = strchr(text, '/');
	uint32_t ip, mask;
	long prefix;

	if (!slash || (size_t)(slash - text) >= sizeof(addr)) {
		snprintf(err, errlen, "'%s' is not a CIDR (expected a.b.c.d/n, e.g. 10.244.1.0/24)", text);
		return -EINVAL;
	}
	memcpy(addr, text, (size_t)(slash - text));
	addr[slash - text] = '\0';
	errno = 0;
	prefix = strtol(slash + 1, &end, 10);
	if (ip4_parse(addr, &ip) || *end || end == slash + 1 || errno || prefix < 0 || prefix > 32) {
		snprintf(err, errlen, "'%s' is not a CIDR (expected a.b.c.d/n, e.g. 10.244.1.0/24)", text);
		return -EINVAL;
	}
	mask = prefix ? ~0u << (32 - prefix) : 0;
	if (ip & ~mask) {
		char net[INET_ADDRSTRLEN];

		ip4_format(ip & mask, net, sizeof(net));
		snprintf(err, errlen, "'%s' has host bits set; did you mean %s/%ld?", text, net, prefix);
		return -EINVAL;
	}
	out->net = ip;
	out->prefix = (int)prefix;
	return 0;
}

uint64_t cidr4_size(const struct cidr4 *c)
{
	return 1ull << (32 - c->prefix);
}

int cidr4_contains(const struct cidr4 *c, uint32_t ip)
{
	uint32_t mask = c->prefix ? ~0u << (32 - c->prefix) : 0;

	return (ip & mask) == c->net;
}

void cidr4_format(const struct cidr4 *c, char *buf, size_t len)
{
	char ip[INET_ADDRSTRLEN];

	ip4_format(c->net, ip, sizeof(ip));
	snprintf(buf, len, "%s/%d", ip, c->prefix);
}
