/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's side of the DEL queue (lib/delq.h): the DELs sluice-cni
 * queued while no agent ran, replayed at start-up before the socket
 * listens, so no ADD, CHECK or GC is served before them.
 */
#ifndef SLUICE_AGENT_DELQ_REPLAY_H
#define SLUICE_AGENT_DELQ_REPLAY_H

#include <stddef.h>
#include <jansson.h>

struct agent;

/* What the start-up replay did, for the log and `sluicectl status`. */
struct delq_stats {
	unsigned replayed;	/* DELs done and their entries removed */
	unsigned failed;	/* DELs the agent refused or failed: set aside as failed-* */
	unsigned malformed;	/* entries that are no DEL of this format: set aside as bad-* */
};

/* Runs one decoded DEL request; 0, or nonzero with err saying why. */
typedef int (*delq_run_fn)(void *ctx, const json_t *req, char *err, size_t errlen);

/*
 * One pass over the queue open at dirfd (its path in dir, for messages):
 * temporaries a crash left are removed; each entry is read, decoded and
 * checked with the agent's request decoder, run, and removed. An entry
 * that cannot be read or decoded is renamed bad-<name>, one whose DEL
 * fails failed-<name>, each logged with the reason; neither is tried
 * again, and an entry that cannot even be renamed is left for the next
 * start. Counts add to *st. Every entry is visited once: the pass ends.
 */
void delq_replay(int dirfd, const char *dir, delq_run_fn run, void *ctx, struct delq_stats *st);

/*
 * Start-up (agent/delq_start.c): open and lock the queue next to
 * socket_path, replay it through the API's own DEL (api_dispatch), then
 * api_listen, and only then let plugins write to the queue again. Returns
 * the listening fd, or a negative errno with err set (an unsafe queue
 * directory, a lock a plugin holds for too long, api_listen's errors).
 */
int delq_replay_and_listen(struct agent *a, const char *socket_path, char *err, size_t errlen);

#endif /* SLUICE_AGENT_DELQ_REPLAY_H */
