// SPDX-License-Identifier: Apache-2.0
/*
 * The CNI side of sluice-cni: environment and CNI_ARGS parsing, network
 * configuration parsing, the agent request, and turning the agent's answer
 * (or failure) into what the runtime expects on stdout. Everything here is a
 * pure function of its arguments so the unit tests need neither a process
 * environment nor an agent; main.c only gathers input and prints.
 */
#ifndef SLUICE_CNI_H
#define SLUICE_CNI_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

#include "jsonci.h"

#include "cni_names.h"

/* The version we answer in when the configuration names none we speak. */
#define CNI_VERSION_LATEST "1.1.0"
#define CNI_ABOUT	   "sluice-cni: CNI plugin, supports 0.3.0..1.1.0"

/* Agent timeouts: ADD may wait for IPAM and BPF attach; STATUS is a probe. */
#define CNI_TIMEOUT_MS	      60000
#define CNI_STATUS_TIMEOUT_MS 5000


enum cni_cmd {
	CNI_CMD_ADD,
	CNI_CMD_DEL,
	CNI_CMD_CHECK,
	CNI_CMD_STATUS,
	CNI_CMD_GC,
	CNI_CMD_VERSION,
};

/*
 * A CNI error as printed to the runtime. Sizes are generous so an agent's
 * message passes through whole; longer text is truncated, never overrun.
 */
struct cni_error {
	int code;
	char msg[512];
	char details[4096];
};

/* Pod identity from CNI_ARGS; each member NULL when the runtime sent none. */
struct cni_k8s {
	char *namespace_;
	char *name;
	char *uid;
	char *infra_container_id;
};

/* The CNI_* environment; strings are owned (free with cni_env_free), NULL
 * when the variable was unset or empty. */
struct cni_env {
	enum cni_cmd cmd;
	char *container_id;
	char *netns;
	char *ifname;
	char *path;
	struct cni_k8s k8s;
};

/* The network configuration. doc owns every borrowed pointer below. */
struct cni_config {
	json_t *doc;
	const char *version;	  /* one of the supported versions */
	const char *name;
	const char *type;
	const char *socket;	  /* SLUICE_DEFAULT_SOCKET unless "socket" */
	json_t *prev_result;	  /* borrowed from doc, NULL when absent */
	json_t *port_mappings;	  /* owned, normalised keys, NULL when absent */
	json_t *bandwidth;	  /* owned, ADD only: runtimeConfig.bandwidth checked and
				   * normalised (lib/bwconf.h), NULL when it sets nothing */
	json_t *valid_attachments; /* owned, GC only: [{containerId, ifname}] */
};

/*
 * Sends req to the agent; same contract as api_call() (0 and *resp, or a
 * negative errno with a sentence in err). Injected so tests can play agent.
 */
typedef int (*cni_transport_fn)(const char *socket_path, const json_t *req, json_t **resp,
				int timeout_ms, char *err, size_t errlen, void *ctx);

/* Returns true when v is one of the versions this plugin speaks. */
bool cni_version_supported(const char *v);
/* The supported versions, oldest first, NULL-terminated. */
const char *const *cni_supported_versions(void);
const char *cni_cmd_name(enum cni_cmd cmd);

/*
 * Parse CNI_ARGS ("K=V;K=V") into k8s. Returns 0, or -1 with err set
 * (code 4) for a pair without '=' or an unknown key without IgnoreUnknown.
 * On failure k8s holds nothing that needs freeing.
 */
int cni_parse_args(const char *args, struct cni_k8s *k8s, struct cni_error *err);
void cni_k8s_free(struct cni_k8s *k8s);

/*
 * Read the CNI_* variables from envp ("NAME=value" strings, NULL-terminated,
 * like environ) and check the ones cmd requires. Returns 0, or -1 with err
 * set (code 4, msg naming the variables). Free env with cni_env_free either
 * way.
 */
int cni_parse_env(const char *const *envp, struct cni_env *env, struct cni_error *err);
void cni_env_free(struct cni_env *env);

/*
 * Parse and validate the network configuration for cmd. Returns 0, or -1
 * with err set: 6 not a JSON object, 7 a missing or invalid field (named),
 * 1 an unsupported cniVersion or one too old for cmd. Free cfg either way.
 */
int cni_parse_config(const char *buf, size_t len, enum cni_cmd cmd, struct cni_config *cfg,
		     struct cni_error *err);
void cni_config_free(struct cni_config *cfg);

/* The cniVersion of buf when it is a supported one, else NULL. Tolerant:
 * used to pick the version error messages are printed in. The result
 * points into static storage. */
const char *cni_peek_version(const char *buf, size_t len);

/* The VERSION answer; buf is the (possibly empty or absent) stdin. */
json_t *cni_version_json(const char *buf, size_t len);

/* The agent request for env/cfg (docs/API.md). NULL with err set. */
json_t *cni_build_request(const struct cni_env *env, const struct cni_config *cfg,
			  struct cni_error *err);

/* A prevResult of any supported version in the 1.x layout (no ips[].version,
 * no cniVersion). NULL with err set when it is not an object. */
json_t *cni_prev_result_to_1x(const json_t *prev, struct cni_error *err);

/* The agent's 1.x-shaped ADD result in the layout of version, with
 * "cniVersion" set. NULL with err set (code 999) when it is malformed. */
json_t *cni_format_result(const json_t *agent_result, const char *version,
			  struct cni_error *err);

/* Map an api_call() failure for cmd to a CNI error (11, or 50 for STATUS). */
void cni_transport_error(enum cni_cmd cmd, int ret, const char *why, struct cni_error *err);

/*
 * Interpret the agent's answer to cmd. Returns 0 with *out set to what to
 * print (the formatted result for ADD, NULL otherwise), or -1 with err set:
 * the agent's own error unchanged, or 50 from STATUS when not ready.
 */
int cni_handle_response(enum cni_cmd cmd, const char *version, const json_t *resp, json_t **out,
			struct cni_error *err);

/* {"cniVersion", "code", "msg", "details"}. */
json_t *cni_error_json(const char *version, const struct cni_error *err);

void cni_set_error(struct cni_error *err, int code, const char *details, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/*
 * One plugin invocation. envp: the environment; in/inlen: stdin (may be
 * NULL for VERSION). Returns the exit status and sets *out to the JSON to
 * print on stdout (result, error or version), or NULL for nothing.
 */
int cni_run(const char *const *envp, const char *in, size_t inlen, cni_transport_fn call,
	    void *ctx, json_t **out);

#endif /* SLUICE_CNI_H */
