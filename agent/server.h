/* SPDX-License-Identifier: Apache-2.0 */
/* The agent's side of the local API: the listening socket and dispatch. */
#ifndef SLUICE_AGENT_SERVER_H
#define SLUICE_AGENT_SERVER_H

#include <jansson.h>

#include "compile.h"
#include "endpoint.h"
#include "identity.h"
#include "ipam.h"
#include "kube.h"
#include "loader.h"
#include "node.h"
#include "store.h"

struct agent {
	const char *node_name;
	const char *socket_path;
	struct datapath *dp;
	struct ipam *ipam;
	struct endpoints *eps;
	struct store *store;
	struct identities *ids;
	struct compiler *compiler;
	struct node_net *net;
	struct kube *kube;	/* NULL without the Kubernetes API */
	int ready;		/* recovery done: ADD can be served */
	unsigned pod_wait_ms;	/* Kubernetes mode: how long ADD waits for the Pod */
	char sync_error[512];	/* the last failed reconcile, "" once one succeeds */
	/* Other nodes' pods' addresses and who held each at the last sync
	 * (reconcile.c): an address that changes hands loses its flows. */
	struct addr_holder *holders;
	size_t nholders;
};

/* How long a CNI ADD waits for its Pod object by default (--pod-labels-wait). */
#define AGENT_POD_WAIT_MS 10000

/* Bind the socket (mode 0600), refusing to steal it from a live agent. */
int api_listen(const char *path, char *err, size_t errlen);
/* Serve one connection: check the peer is root, read, dispatch, answer. */
void api_serve_one(struct agent *agent, int listen_fd);
/* Answer one decoded request (exposed for tests). */
json_t *api_dispatch(struct agent *agent, const json_t *req);

#endif /* SLUICE_AGENT_SERVER_H */
