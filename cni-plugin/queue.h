/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DEL while the agent is down (docs/CNI.md#del-while-the-agent-is-down):
 * the CNI spec wants DEL to succeed, so a DEL that finds no agent is
 * written to the agent's queue (lib/delq.h) and replayed at its start.
 */
#ifndef SLUICE_CNI_QUEUE_H
#define SLUICE_CNI_QUEUE_H

#include <stdbool.h>

#include "cni.h"

/* How long a DEL waits for the queue's lock: an agent replaying a full
 * queue holds it that long at most in practice. */
#define CNI_QUEUE_LOCK_MS 20000

/*
 * Did the transport error ret say that no agent is there (no socket file,
 * or nobody listening on it)? Only then is a DEL queued: a timeout or a
 * connection cut mid-request comes from a live agent that may yet do the
 * DEL, or have done it; that one is retried by the runtime (code 11).
 */
bool cni_agent_absent(int ret);

/*
 * Queue the DEL req for the agent at socket_path, then ask the agent once
 * more (call, ctx): one that answers now (it started meanwhile) gets the
 * DEL and its entry is removed. Returns 0 when the DEL is queued or done,
 * or -1 with err set: the agent's own error, or 11 when it cannot be
 * queued (an unsafe queue directory, a full queue, a write error), named.
 */
int cni_queue_del(const char *socket_path, const json_t *req, cni_transport_fn call, void *ctx,
		  struct cni_error *err);

#endif /* SLUICE_CNI_QUEUE_H */
