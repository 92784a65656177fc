// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: the agent's kubeconfig (agent/kube.c kube_config_load:
 * the YAML through lib/manifest.c, current-context, cluster and user, the
 * *-data fields' base64). The input is the file; a first line
 * "# --k8s-api-server VALUE" also passes VALUE as --k8s-api-server (a
 * YAML comment, so the rest still reads as the kubeconfig).
 *
 * The file is a memfd read through /proc/self/fd/N: no disk traffic, and
 * relative paths in it resolve under /proc/self/fd, the same for every
 * run. A loaded configuration must name an https:// server.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kube.h"
#include "log.h"

#define SERVER_FLAG "# --k8s-api-server "

/* The memfd the input is written to, made once (libFuzzer runs every
 * input through it). */
static int mem_fd = -1;
static char mem_path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_init("fuzz_kubeconfig", LOG_ERROR);
	mem_fd = memfd_create("kubeconfig", MFD_CLOEXEC);
	if (mem_fd < 0) {
		perror("fuzz_kubeconfig: memfd_create");
		exit(1);
	}
	snprintf(mem_path, sizeof(mem_path), "/proc/self/fd/%d", mem_fd);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const size_t flag_len = sizeof(SERVER_FLAG) - 1;
	struct kube_config c;
	char *server = NULL, err[1024];

	if (size >= flag_len && !memcmp(data, SERVER_FLAG, flag_len)) {
		const uint8_t *nl = memchr(data, '\n', size);

		server = strndup((const char *)data + flag_len,
				 (size_t)((nl ? nl : data + size) - data) - flag_len);
		if (!server)
			return 0;
	}
	if (ftruncate(mem_fd, 0) || pwrite(mem_fd, data, size, 0) != (ssize_t)size) {
		perror("fuzz_kubeconfig: writing the memfd");
		abort();
	}
	if (!kube_config_load(&c, mem_path, "/nonexistent", server, err, sizeof(err))) {
		if (!c.server || strncmp(c.server, "https://", 8))
			abort();
		kube_config_free(&c);
	}
	free(server);
	return 0;
}
