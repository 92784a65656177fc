// SPDX-License-Identifier: Apache-2.0
/* sluicectl policy explain: the request from --from/--to/--port, the verdicts. */
#include <arpa/inet.h>
#include <strings.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void print_verdict(const char *dir, const json_t *v)
{
	const json_t *rule = json_object_get(v, "rule"), *deny = json_object_get(v, "denyRule");
	const char *policy = json_string_value(json_object_get(v, "policy"));
	const char *sep = " [";

	if (!json_is_object(v)) {
		printf("  %-8s -\n", dir);
		return;
	}
	printf("  %-8s %-8s %s", dir,
	       json_is_true(json_object_get(v, "allowed")) ? "allowed" : "denied", str(v, "reason"));
	if (policy) {
		printf("%s%s", sep, policy);
		sep = ", ";
	}
	if (json_is_integer(rule) && json_integer_value(rule) >= 0) {
		printf("%s%srule %lld", sep, json_is_true(deny) ? "deny " : "",
		       (long long)json_integer_value(rule));
		sep = ", ";
	}
	if (json_is_true(json_object_get(v, "auditOnly"))) {
		printf("%saudit only", sep);
		sep = ", ";
	}
	printf("%s\n", strcmp(sep, " [") ? "]" : "");
}

int print_explain(const json_t *r)
{
	const char *summary = json_string_value(json_object_get(r, "summary"));
	const json_t *svc = json_object_get(r, "service"), *c;
	size_t i;

	printf("%s\n", json_is_true(json_object_get(r, "allowed")) ? "ALLOWED" : "DENIED");
	if (summary && *summary)
		printf("%s\n", summary);
	if (!svc) {
		print_verdict("egress:", json_object_get(r, "egress"));
		print_verdict("ingress:", json_object_get(r, "ingress"));
		return 0;
	}
	/* --to a Service frontend: the backends a new flow chooses from, then
	 * each one's verdict (policy sees the backend, not the frontend). */
	printf("service:    %s (%s), frontend %s (%s), %s\n", str(svc, "name"), str(svc, "type"),
	       str(svc, "frontend"), str(svc, "frontendKind"),
	       json_is_true(json_object_get(svc, "translated")) ? "translated by sluice"
								 : "left to kube-proxy");
	printf("candidates: %s\n", str(svc, "candidatesFrom"));
	printf("algorithm:  %s\n", str(svc, "algorithm"));
	json_array_foreach(json_object_get(svc, "candidates"), i, c) {
		const json_t *ex = json_object_get(c, "explain");

		printf("backend %s:%lld %s %s%s%s: %s\n", str(c, "address"),
		       (long long)json_integer_value(json_object_get(c, "port")), str(c, "state"),
		       json_is_true(json_object_get(c, "local")) ? "local" : "remote",
		       json_string_value(json_object_get(c, "pod")) ? " pod " : "",
		       json_string_value(json_object_get(c, "pod")) ? str(c, "pod") : "",
		       json_is_true(json_object_get(ex, "allowed")) ? "ALLOWED" : "DENIED");
		print_verdict("egress:", json_object_get(ex, "egress"));
		print_verdict("ingress:", json_object_get(ex, "ingress"));
	}
	json_array_foreach(json_object_get(svc, "notForNewFlows"), i, c)
		printf("not for new flows: %s:%lld %s %s\n", str(c, "address"),
		       (long long)json_integer_value(json_object_get(c, "port")), str(c, "state"),
		       json_is_true(json_object_get(c, "local")) ? "local" : "remote");
	return 0;
}

/* NAMESPACE/POD or a dotted IPv4 address */
static bool valid_endpoint(const char *s)
{
	const char *slash = strchr(s, '/');
	struct in_addr a;

	if (slash)
		return slash != s && slash[1] && !strchr(slash + 1, '/');
	return inet_pton(AF_INET, s, &a) == 1;
}

/* --to ADDRESS:PORT[/PROTOCOL] (a Service frontend): split at the colon
 * into addr (of len bytes) and the port part; NULL when there is none. */
static const char *split_to(const char *to, char *addr, size_t len)
{
	const char *colon = strchr(to, ':');

	if (!colon || (size_t)(colon - to) >= len)
		return NULL;
	memcpy(addr, to, (size_t)(colon - to));
	addr[colon - to] = '\0';
	return colon + 1;
}

/* PORT[/PROTOCOL]: 80, 53/udp, 8/ICMP (an ICMP type). */
static int parse_port(const char *s, long *port, const char **proto)
{
	static const char *const protos[] = { "TCP", "UDP", "SCTP", "ICMP" };
	const char *slash = strchr(s, '/');
	char *end;
	size_t i;

	errno = 0;
	*port = strtol(s, &end, 10);
	if (end == s || errno || (slash ? end != slash : *end))
		return -EINVAL;
	*proto = "TCP";
	if (slash) {
		*proto = NULL;
		for (i = 0; i < sizeof(protos) / sizeof(protos[0]); i++)
			if (!strcasecmp(slash + 1, protos[i]))
				*proto = protos[i];
		if (!*proto)
			return -EINVAL;
	}
	if (!strcmp(*proto, "ICMP"))
		return *port >= 0 && *port <= 255 ? 0 : -ERANGE;
	return *port >= 1 && *port <= 65535 ? 0 : -ERANGE;
}

int build_explain_request(const struct opts *o, json_t *req)
{
	const char *proto, *to = o->to, *portspec = o->port;
	char to_addr[64];
	long port;
	int ret;

	if (strchr(o->to, ':')) {
		portspec = split_to(o->to, to_addr, sizeof(to_addr));
		to = portspec && !strchr(to_addr, '/') ? to_addr : NULL;
	}
	if (!valid_endpoint(o->from) || !to || !valid_endpoint(to)) {
		fprintf(stderr, "sluicectl: --from takes NAMESPACE/POD or an IPv4 address, --to "
			"also ADDRESS:PORT[/PROTOCOL] (a Service frontend), not '%s'\n",
			valid_endpoint(o->from) ? o->to : o->from);
		return EXIT_USAGE;
	}
	ret = parse_port(portspec, &port, &proto);
	if (ret == -ERANGE) {
		fprintf(stderr, "sluicectl: port %s: %s\n", portspec,
			strcmp(proto, "ICMP") ? "ports are 1-65535" : "ICMP types are 0-255");
		return EXIT_USAGE;
	}
	if (ret) {
		fprintf(stderr, "sluicectl: the port is PORT[/PROTOCOL] with PROTOCOL TCP, UDP, "
			"SCTP or ICMP (80, 53/UDP, 8/ICMP), not '%s'\n", portspec);
		return EXIT_USAGE;
	}
	if (json_object_set_new(req, "from", json_string(o->from)) ||
	    json_object_set_new(req, "to", json_string(to)) ||
	    json_object_set_new(req, "port", json_integer(port)) ||
	    json_object_set_new(req, "protocol", json_string(proto))) {
		fprintf(stderr, "sluicectl: out of memory\n");
		return EXIT_FAIL;
	}
	return 0;
}
