// SPDX-License-Identifier: Apache-2.0
/* sluicectl: the operator's command line for a node's sluice-agent. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: sluicectl [--socket PATH] COMMAND [-o json]\n"
		"\n"
		"Commands:\n"
		"  status             agent readiness, pod CIDR, router IP, attach mode, IPAM usage\n"
		"  get endpoints      pods attached on this node\n"
		"  metrics            datapath packet and byte counters by reason and direction\n"
		"\n"
		"Options:\n"
		"  --socket PATH      agent socket (default: $SLUICE_SOCKET, else %s)\n"
		"  -o, --output json  print the agent's JSON instead of a table\n"
		"  -h, --help         this help\n"
		"\n"
		"Exit status: 0 on success, 1 when the agent answers with an error, 2 on usage\n"
		"errors, 3 when the agent cannot be reached.\n",
		SLUICE_DEFAULT_SOCKET);
}

static const char *str(const json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s && *s ? s : "-";
}

static void print_status(const json_t *r)
{
	const json_t *ipam = json_object_get(r, "ipam");

	printf("node:        %s\n", str(r, "node"));
	printf("ready:       %s\n", json_is_true(json_object_get(r, "ready")) ? "yes" : "no");
	printf("pod CIDR:    %s (router %s)\n", str(r, "podCIDR"), str(r, "routerIP"));
	printf("attach mode: %s\n", str(r, "attachMode"));
	printf("endpoints:   %lld\n", (long long)json_integer_value(json_object_get(r, "endpoints")));
	printf("addresses:   %lld used, %lld free\n",
	       (long long)json_integer_value(json_object_get(ipam, "used")),
	       (long long)json_integer_value(json_object_get(ipam, "free")));
	printf("version:     %s\n", str(r, "version"));
}

static void print_endpoints(const json_t *r)
{
	const json_t *eps = json_object_get(r, "endpoints"), *e;
	size_t i;

	printf("%-20s %-28s %-6s %-15s %-15s %-7s %s\n", "CONTAINER", "NAMESPACE/POD", "IFACE",
	       "IP", "HOST-IFACE", "IFINDEX", "STATE");
	json_array_foreach(eps, i, e) {
		char pod[80];

		snprintf(pod, sizeof(pod), "%s/%s", str(e, "namespace"), str(e, "pod"));
		printf("%-20.20s %-28.28s %-6s %-15s %-15s %-7lld %s\n", str(e, "containerId"), pod,
		       str(e, "ifname"), str(e, "ip"), str(e, "hostIfname"),
		       (long long)json_integer_value(json_object_get(e, "hostIfindex")),
		       str(e, "state"));
	}
}

static void print_metrics(const json_t *r)
{
	const json_t *ms = json_object_get(r, "metrics"), *m;
	size_t i;

	printf("%-18s %-8s %12s %14s\n", "REASON", "DIR", "PACKETS", "BYTES");
	json_array_foreach(ms, i, m)
		printf("%-18s %-8s %12lld %14lld\n", str(m, "reason"), str(m, "direction"),
		       (long long)json_integer_value(json_object_get(m, "packets")),
		       (long long)json_integer_value(json_object_get(m, "bytes")));
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *socket_path = getenv("SLUICE_SOCKET"), *op = NULL;
	void (*print)(const json_t *) = NULL;
	json_t *req = NULL, *resp = NULL;
	int json_out = 0, c, ret = 2;
	char err[512];

	if (!socket_path || !*socket_path)
		socket_path = SLUICE_DEFAULT_SOCKET;
	while ((c = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
		switch (c) {
		case 's': socket_path = optarg; break;
		case 'o':
			if (strcmp(optarg, "json")) {
				fprintf(stderr, "sluicectl: -o takes 'json', not '%s'\n", optarg);
				return 2;
			}
			json_out = 1;
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 1 && !strcmp(argv[0], "status")) {
		op = "status";
		print = print_status;
	} else if (argc == 2 && !strcmp(argv[0], "get") &&
		   (!strcmp(argv[1], "endpoints") || !strcmp(argv[1], "endpoint") ||
		    !strcmp(argv[1], "ep"))) {
		op = "list";
		print = print_endpoints;
	} else if (argc == 1 && !strcmp(argv[0], "metrics")) {
		op = "metrics";
		print = print_metrics;
	} else {
		fprintf(stderr, "sluicectl: unknown command '%s'; see sluicectl --help\n",
			argc ? argv[0] : "");
		return 2;
	}
	req = json_pack("{s:s}", "op", op);
	ret = api_call(socket_path, req, &resp, 10000, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "sluicectl: %s\n", err);
		ret = 3;
		goto cleanup;
	}
	if (!json_is_true(json_object_get(resp, "ok"))) {
		const json_t *e = json_object_get(resp, "error");

		if (json_out)
			json_dumpf(resp, stdout, JSON_INDENT(2)), putchar('\n');
		fprintf(stderr, "sluicectl: %s: %s (code %lld) %s\n", op, str(e, "msg"),
			(long long)json_integer_value(json_object_get(e, "code")), str(e, "details"));
		ret = 1;
		goto cleanup;
	}
	if (json_out) {
		json_dumpf(json_object_get(resp, "result"), stdout, JSON_INDENT(2));
		putchar('\n');
	} else {
		print(json_object_get(resp, "result"));
	}
	ret = 0;
cleanup:
	json_decref(req);
	json_decref(resp);
	return ret;
}
