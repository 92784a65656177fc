// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "agent.h"
#include "delq.h"
#include "delq_replay.h"
#include "log.h"
#include "server.h"

/* How long the start waits for plugins writing to the queue: each holds
 * the lock for one file and one try of the socket. */
#define DELQ_START_LOCK_MS 30000

/* The DEL the API runs (endpoints, policy sync, metrics), nothing else. */
static int run_del(void *ctx, const json_t *req, char *err, size_t errlen)
{
	json_t *resp = api_dispatch(ctx, req), *e;
	int ret = 0;

	if (!json_is_true(json_object_get(resp, "ok"))) {
		e = json_object_get(resp, "error");
		snprintf(err, errlen, "the DEL failed: %s",
			 json_string_value(json_object_get(e, "msg")) ?: "no answer");
		ret = -1;
	}
	json_decref(resp);
	return ret;
}

int delq_replay_and_listen(struct agent *a, const char *socket_path, char *err, size_t errlen)
{
	char dir[160];
	int dirfd, ret;

	dirfd = delq_open(socket_path, "or pass --socket in one", err, errlen);
	if (dirfd < 0)
		return dirfd;
	delq_dir_path(socket_path, dir, sizeof(dir));
	ret = delq_lock(dirfd, LOCK_EX, DELQ_START_LOCK_MS);
	if (ret) {
		snprintf(err, errlen,
			 "cannot lock the DEL queue %s: %s (a sluice-cni writing to it holds the "
			 "lock; find it with: fuser -v %s)", dir, strerror(-ret), dir);
		goto cleanup;
	}
	delq_replay(dirfd, dir, run_del, a, &a->delq);
	if (a->delq.replayed || a->delq.failed || a->delq.malformed)
		pr_info("replayed %u queued DELs (%u failed, %u malformed set aside) from %s",
			a->delq.replayed + a->delq.failed, a->delq.failed, a->delq.malformed, dir);
	/* Still under the lock: a plugin that finds no agent from here on
	 * finds this one's socket on its second try. */
	ret = api_listen(socket_path, err, errlen);
cleanup:
	close(dirfd);
	return ret;
}
