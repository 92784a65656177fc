// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "delq.h"
#include "log.h"
#include "queue.h"
#include "statefile.h"

bool cni_agent_absent(int ret)
{
	return ret == -ENOENT || ret == -ECONNREFUSED;
}

/* Room for one more entry, unless the attachment has one to replace. */
static int check_room(int dirfd, const char *qdir, const char *name, struct cni_error *err)
{
	struct stat st;
	int n;

	if (!fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW))
		return 0;
	n = delq_count(dirfd);
	if (n < 0) {
		cni_set_error(err, CNI_ERR_TRY_AGAIN, strerror(-n),
			      "sluice-agent is unreachable and the DEL queue %s cannot be read", qdir);
		return -1;
	}
	/* Concurrent DELs each check before they write: the bound can be
	 * passed by as many as run at once, no more. */
	if (n >= DELQ_MAX_ENTRIES) {
		cni_set_error(err, CNI_ERR_TRY_AGAIN,
			      "start sluice-agent: it replays the queue and empties it; bad-* and "
			      "failed-* files are ones it set aside, to read and remove",
			      "sluice-agent is unreachable and the DEL queue %s is full (%d files)",
			      qdir, n);
		return -1;
	}
	return 0;
}

int cni_queue_del(const char *socket_path, const json_t *req, cni_transport_fn call, void *ctx,
		  struct cni_error *err)
{
	const json_t *cni = json_object_get(req, "cni");
	const char *cid = json_string_value(json_object_get(cni, "containerId"));
	const char *ifname = json_string_value(json_object_get(cni, "ifname"));
	/* Socket paths fit in sun_path (108 bytes): the queue path in this. */
	char qdir[160], name[DELQ_NAME_MAX], why[1024] = "";
	json_t *resp = NULL, *printed = NULL;
	char *text = NULL;
	size_t len;
	int dirfd, ret, rm, status = -1;

	if (!cid || !ifname) {
		cni_set_error(err, CNI_ERR_INTERNAL, NULL, "DEL request without container or ifname");
		return -1;
	}
	dirfd = delq_open(socket_path,
			  "or set \"socket\" in the network configuration to a path in one", why,
			  sizeof(why));
	if (dirfd < 0) {
		cni_set_error(err, CNI_ERR_TRY_AGAIN, why,
			      "sluice-agent is unreachable and the DEL cannot be queued");
		return -1;
	}
	delq_dir_path(socket_path, qdir, sizeof(qdir));
	ret = delq_lock(dirfd, LOCK_SH, CNI_QUEUE_LOCK_MS);
	if (ret) {
		snprintf(why, sizeof(why), "the DEL queue %s stays locked: %s", qdir, strerror(-ret));
		cni_set_error(err, CNI_ERR_TRY_AGAIN, why,
			      "sluice-agent is starting (replaying queued DELs), try again later");
		goto cleanup;
	}
	delq_entry_name(cid, ifname, name);
	if (check_room(dirfd, qdir, name, err))
		goto cleanup;
	ret = delq_entry_encode(req, (long long)time(NULL), &text, &len);
	if (!ret)
		ret = sf_write_atomic(dirfd, name, text, len, 0600);
	if (ret) {
		snprintf(why, sizeof(why), "%s/%s: %s", qdir, name,
			 ret == -EFBIG ? "the request is larger than an entry may be" : strerror(-ret));
		cni_set_error(err, CNI_ERR_TRY_AGAIN, why,
			      "sluice-agent is unreachable and the DEL cannot be queued");
		goto cleanup;
	}
	/* An agent that started since the first try has replayed its queue
	 * already, or waits for this lock to do so: ask it directly. */
	ret = call(socket_path, req, &resp, CNI_TIMEOUT_MS, why, sizeof(why), ctx);
	if (ret && cni_agent_absent(ret)) {
		pr_warn("%s; DEL of %s/%s queued as %s/%s for the agent's start", why, cid, ifname,
			qdir, name);
		status = 0;
		goto cleanup;
	}
	/* The agent is there: the DEL is its to do now (or the runtime's to
	 * retry), and the entry must not outlive this call. */
	if (!ret && cni_handle_response(CNI_CMD_DEL, CNI_VERSION_LATEST, resp, &printed, err))
		ret = -1;
	else if (ret)
		cni_transport_error(CNI_CMD_DEL, ret, why, err);
	rm = sf_remove(dirfd, name);
	if (rm && !ret) {
		snprintf(why, sizeof(why), "%s/%s: %s", qdir, name, strerror(-rm));
		cni_set_error(err, CNI_ERR_TRY_AGAIN, why,
			      "the DEL is done but its queue entry cannot be removed");
		ret = -1;
	}
	status = ret ? -1 : 0;
cleanup:
	json_decref(printed);
	json_decref(resp);
	free(text);
	close(dirfd);
	return status;
}
