// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: one sluice-cni invocation (cni-plugin/cni.c). The input
 * is the environment, one NAME=value per line, then an empty line, then the
 * network configuration as stdin:
 *
 *   CNI_COMMAND=ADD
 *   CNI_CONTAINERID=abc
 *   ...
 *
 *   {"cniVersion": "1.1.0", ...}
 *
 * Without an empty line the whole input is the environment and stdin is
 * empty. cni_run parses the environment (CNI_ARGS included), peeks at and
 * parses the configuration, builds the agent request and hands it to a
 * stand-in agent that answers as the real one does, so the answer's
 * formatting in the configuration's version is covered too.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cni.h"
#include "log.h"

#define MAX_ENV 64

/* The agent's answer to req: a 1.x ADD result (with prevResult's
 * interfaces when there are any, so the version conversion sees them),
 * ok for the rest. */
static int fake_agent(const char *socket_path, const json_t *req, json_t **resp, int timeout_ms,
		      char *err, size_t errlen, void *ctx)
{
	const char *op = json_string_value(json_object_get(req, "op"));
	json_t *prev = json_object_get(json_object_get(req, "cni"), "prevResult");

	(void)socket_path;
	(void)timeout_ms;
	(void)err;
	(void)errlen;
	(void)ctx;
	if (op && !strcmp(op, "add")) {
		json_t *result = json_pack("{s:[{s:s, s:s}, {s:s, s:s, s:s}], s:[{s:s, s:s, s:i}], "
					   "s:[{s:s, s:s}]}",
					   "interfaces", "name", "sl0abc", "mac", "aa:bb:cc:dd:ee:ff",
					   "name", "eth0", "mac", "02:00:00:00:00:01", "sandbox",
					   "/var/run/netns/x", "ips", "address", "10.0.0.5/32",
					   "gateway", "10.0.0.1", "interface", 1, "routes", "dst",
					   "0.0.0.0/0", "gw", "10.0.0.1");

		if (result && json_is_object(prev) && json_object_get(prev, "dns"))
			json_object_set(result, "dns", json_object_get(prev, "dns"));
		*resp = json_pack("{s:b, s:o*}", "ok", 1, "result", result);
	} else if (op && !strcmp(op, "status")) {
		*resp = json_pack("{s:b, s:{s:b}}", "ok", 1, "result", "ready", 1);
	} else {
		*resp = json_pack("{s:b}", "ok", 1);
	}
	return *resp ? 0 : -12;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_init("fuzz_cni", LOG_ERROR);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *envp[MAX_ENV + 1];
	char *text = malloc(size + 1), *line, *in = NULL, *next;
	size_t n = 0, inlen = 0;
	json_t *out = NULL;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	/* Lines up to the first empty one are the environment; a NUL inside
	 * a line ends that variable, as it would in a real environment. */
	for (line = text; line && n < MAX_ENV; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (!*line) {
			in = next;
			break;
		}
		envp[n++] = line;
	}
	envp[n] = NULL;
	/* stdin as main.c reads it: NUL-terminated, empty when absent */
	if (!in)
		in = text + size;
	inlen = size - (size_t)(in - text);
	cni_run(envp, in, inlen, fake_agent, NULL, &out);
	json_decref(out);
	free(text);
	return 0;
}
