// SPDX-License-Identifier: Apache-2.0
/*
 * sluicectl version: this client's version, then the agent's (the "version"
 * op, docs/API.md): its BPF objects, the pinned maps and their layout
 * versions, and the kernel features it found. Without an agent the client's
 * line is printed and the exit is 3, as kubectl version does without a
 * server.
 */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "cli.h"
#include "sluice_version.h"

static const char *yes_no(const json_t *v)
{
	return json_is_null(v) || !v ? "not probed" : json_is_true(v) ? "yes" : "no";
}

static void print_agent(const json_t *r)
{
	const json_t *bpf = json_object_get(r, "bpf"), *k = json_object_get(r, "kernel"), *e;
	size_t i;

	printf("Agent Version: %s (node %s)\n", str(r, "version"), str(r, "node"));
	printf("BPF objects:\n");
	json_array_foreach(json_object_get(bpf, "objects"), i, e)
		printf("  %-14s %8lld bytes  fnv64 %s\n", str(e, "name"),
		       (long long)json_integer_value(json_object_get(e, "bytes")), str(e, "fnv64"));
	printf("Pinned maps (layout version):\n");
	json_array_foreach(json_object_get(bpf, "maps"), i, e) {
		const json_t *l = json_object_get(e, "layout");

		if (json_is_integer(l))
			printf("  %-18s v%lld\n", str(e, "name"), (long long)json_integer_value(l));
		else
			printf("  %-18s -\n", str(e, "name"));
	}
	printf("Kernel: %s\n", str(k, "release"));
	printf("  BTF:          %s\n", yes_no(json_object_get(k, "btf")));
	printf("  tcx:          %s\n", yes_no(json_object_get(k, "tcx")));
	printf("  attach mode:  %s\n", str(k, "attachMode"));
	if (!json_array_size(json_object_get(k, "xdp")))
		printf("  XDP:          off (no --device)\n");
	json_array_foreach(json_object_get(k, "xdp"), i, e)
		printf("  XDP:          %s: %s (asked %s, driver %s)%s%s\n", str(e, "device"),
		       str(e, "mode"), str(e, "requested"), str(e, "driver"),
		       *str(e, "fallbackReason") != '-' ? "; fell back: " : "",
		       *str(e, "fallbackReason") != '-' ? str(e, "fallbackReason") : "");
}

const char help_version[] =
	"Usage: sluicectl version [-o json]\n"
	"\n"
	"This client's version, then the agent's: the BPF objects built into it (size and an\n"
	"FNV-1a checksum: two nodes that print the same run the same programs), the maps it\n"
	"pins under --bpffs with the layout version their _vN names, and the kernel features\n"
	"it found: BTF, tcx (\"not probed\" under --attach-mode tc), the attach mode in use\n"
	"and XDP per device. Without an agent: the client's version, exit 3.\n"
	"\n"
	"  -o json                {\"clientVersion\", \"agent\": the agent's version op}\n";

int run_version(const struct cmd *c, struct opts *o)
{
	json_t *req = json_pack("{s:s}", "op", "version"), *resp = NULL, *out;
	char err[512];
	int ret = EXIT_FAIL, unreachable;

	if (!req) {
		fprintf(stderr, "sluicectl: out of memory\n");
		return EXIT_FAIL;
	}
	unreachable = api_call(o->socket_path, req, &resp, TIMEOUT_MS, err, sizeof(err));
	(void)c;
	if (o->output == OUT_JSON) {
		out = json_pack("{s:s}", "clientVersion", SLUICE_VERSION);
		if (out && !unreachable && json_is_true(json_object_get(resp, "ok")))
			json_object_set(out, "agent", json_object_get(resp, "result"));
		if (out) {
			json_dumpf(out, stdout, JSON_INDENT(2));
			putchar('\n');
		}
		json_decref(out);
	} else {
		printf("Client Version: %s\n", SLUICE_VERSION);
		if (!unreachable && json_is_true(json_object_get(resp, "ok")))
			print_agent(json_object_get(resp, "result"));
	}
	if (unreachable) {
		fprintf(stderr, "sluicectl: %s\n", err);
		ret = EXIT_UNREACHABLE;
	} else if (!json_is_true(json_object_get(resp, "ok"))) {
		print_agent_error(resp); /* an agent older than the version op */
	} else {
		ret = EXIT_OK;
	}
	json_decref(req);
	json_decref(resp);
	return ret;
}
