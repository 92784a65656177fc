// SPDX-License-Identifier: Apache-2.0
/*
 * sluice-cni: the CNI plugin binary. The runtime runs it once per operation
 * with CNI_* in the environment and the network configuration on stdin; it
 * asks sluice-agent to do the work and prints the agent's answer in the
 * CNI version the configuration asked for. All CNI logic lives in cni.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "cni.h"
#include "log.h"

extern char **environ;

static void usage(FILE *f)
{
	const char *const *v;

	fprintf(f,
		"Usage: sluice-cni [--help]\n"
		"\n"
		"%s.\n"
		"The container runtime runs it with CNI_COMMAND (ADD, DEL, CHECK, STATUS,\n"
		"GC or VERSION), CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_ARGS and\n"
		"CNI_PATH in the environment and the network configuration on stdin.\n"
		"It forwards each request to sluice-agent over the Unix socket named by\n"
		"\"socket\" in the configuration (default %s)\n"
		"and prints the result or a CNI error on stdout.\n"
		"\n"
		"CNI protocol versions supported:",
		CNI_ABOUT, SLUICE_DEFAULT_SOCKET);
	for (v = cni_supported_versions(); *v; v++)
		fprintf(f, " %s", *v);
	fputc('\n', f);
}

/* What the reference plugins print when run by hand without CNI_COMMAND. */
static void about(FILE *f)
{
	const char *const *v;

	fprintf(f, "%s\nCNI protocol versions supported: ", CNI_ABOUT);
	for (v = cni_supported_versions(); *v; v++)
		fprintf(f, "%s%s", v == cni_supported_versions() ? "" : ", ", *v);
	fputc('\n', f);
}

static int agent_call(const char *socket_path, const json_t *req, json_t **resp, int timeout_ms,
		      char *err, size_t errlen, void *ctx)
{
	(void)ctx;
	return api_call(socket_path, req, resp, timeout_ms, err, errlen);
}


static int print_json(const json_t *j)
{
	if (json_dumpf(j, stdout, JSON_COMPACT) || fputc('\n', stdout) == EOF)
		return -EIO;
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd = getenv("CNI_COMMAND");
	struct cni_error err = { 0 };
	json_t *out = NULL;
	char *in = NULL;
	size_t inlen = 0;
	int status = 1, ret;

	log_init("sluice-cni", LOG_WARN);
	if (!cmd || !*cmd) {
		if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
			usage(stdout);
			return 0;
		}
		/* libcni's skel treats this as a person at a shell, not a
		 * runtime: the about text and success. */
		about(stderr);
		return 0;
	}
	/* VERSION may come without stdin; do not hang on a terminal. */
	if (strcmp(cmd, "VERSION") || !isatty(STDIN_FILENO)) {
		ret = api_read_all(STDIN_FILENO, SLUICE_API_MAX_MSG, -1, &in, &inlen);
		if (ret) {
			cni_set_error(&err, CNI_ERR_IO, strerror(-ret),
				      "error reading network configuration from stdin");
			out = cni_error_json(NULL, &err);
			goto cleanup;
		}
	}
	status = cni_run((const char *const *)environ, in, inlen, agent_call, NULL, &out);
	if (status && out)
		pr_warn("%s failed: %s", cmd, json_string_value(json_object_get(out, "msg")));
cleanup:
	if (out && print_json(out))
		status = 1;
	if (!out && status)
		/* Only when even the error could not be built (no memory). */
		fputs("{\"code\": 999, \"msg\": \"out of memory\"}\n", stdout);
	if (fflush(stdout))
		status = 1;
	json_decref(out);
	free(in);
	return status;
}
