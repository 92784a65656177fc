// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "log.h"
#include "server.h"

#ifndef SLUICE_VERSION
#define SLUICE_VERSION "0.1.0"
#endif

static int mkdir_parent(const char *path)
{
	char buf[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *dir;

	snprintf(buf, sizeof(buf), "%s", path);
	dir = dirname(buf);
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		mkdir(dir, 0755);
		*p = '/';
	}
	if (mkdir(dir, 0755) && errno != EEXIST)
		return -errno;
	return 0;
}

int api_listen(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	mode_t old_umask;
	int fd, probe, ret;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "socket path %s is longer than %zu bytes", path,
			 sizeof(sun.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	strcpy(sun.sun_path, path);
	ret = mkdir_parent(path);
	if (ret) {
		snprintf(err, errlen, "cannot create the directory of %s: %s", path, strerror(-ret));
		return ret;
	}
	/* A socket file nobody answers on is left over from a dead agent. */
	probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe >= 0 && !connect(probe, (struct sockaddr *)&sun, sizeof(sun))) {
		close(probe);
		snprintf(err, errlen, "another sluice-agent is serving %s; stop it or pass --socket",
			 path);
		return -EADDRINUSE;
	}
	if (probe >= 0)
		close(probe);
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return ret;
	}
	old_umask = umask(0177);
	ret = bind(fd, (struct sockaddr *)&sun, sizeof(sun)) ? -errno : 0;
	umask(old_umask);
	if (!ret && chmod(path, 0600))
		ret = -errno;
	if (!ret && listen(fd, 128))
		ret = -errno;
	if (ret) {
		snprintf(err, errlen, "cannot listen on %s: %s", path, strerror(-ret));
		close(fd);
		return ret;
	}
	return fd;
}

static json_t *ok(json_t *result)
{
	return json_pack("{s:b, s:o}", "ok", 1, "result", result ? result : json_object());
}

static json_t *op_status(struct agent *a)
{
	char cidr[24], router[16];
	unsigned used, free_n;

	cidr4_format(ipam_range(a->ipam), cidr, sizeof(cidr));
	ip4_format(ipam_router(a->ipam), router, sizeof(router));
	ipam_usage(a->ipam, &used, &free_n);
	if (!a->ready)
		return api_error(CNI_ERR_NOT_AVAILABLE, "sluice-agent is starting",
				 "endpoint recovery has not finished");
	if (!free_n)
		return api_error(CNI_ERR_NOT_AVAILABLE, "pod CIDR exhausted",
				 "no free addresses are left for new pods on this node");
	return ok(json_pack("{s:b, s:s, s:s, s:s, s:s, s:I, s:{s:i, s:i}, s:s}", "ready", 1, "node",
			    a->node_name, "podCIDR", cidr, "routerIP", router, "attachMode",
			    attach_mode_name(datapath_attach_mode(a->dp)), "endpoints",
			    (json_int_t)endpoints_count(a->eps), "ipam", "used", used, "free", free_n,
			    "version", SLUICE_VERSION));
}

static json_t *op_metrics(struct agent *a)
{
	static const char *const names[] = {
#define X(name, num, drop, short_name, desc) [num] = short_name,
		SLUICE_REASONS(X)
#undef X
	};
	struct sluice_metric m[SLUICE_METRICS_MAX];
	json_t *arr;
	int ret;

	ret = datapath_metrics_read(a->dp, m);
	if (ret)
		return api_error(CNI_ERR_INTERNAL, "cannot read the metrics map", strerror(-ret));
	arr = json_array();
	for (__u32 r = 0; r < SLUICE_REASON_MAX; r++)
		for (__u32 d = 0; d < SLUICE_DIR_MAX; d++) {
			struct sluice_metric *v = &m[SLUICE_METRIC_INDEX(r, d)];

			if (!v->packets)
				continue;
			json_array_append_new(
				arr, json_pack("{s:s, s:s, s:b, s:I, s:I}", "reason", names[r],
					       "direction", d == SLUICE_DIR_EGRESS ? "egress" : "ingress",
					       "drop", sluice_reason_is_drop(r), "packets",
					       (json_int_t)v->packets, "bytes", (json_int_t)v->bytes));
		}
	return ok(json_pack("{s:o}", "metrics", arr));
}

static json_t *op_cni(struct agent *a, const char *op, const json_t *req)
{
	int need_netns = strcmp(op, "del") != 0, code;
	json_t *result = NULL;
	struct timespec t0, t1;
	struct cni_req cr;
	char err[1024] = "";

	code = request_parse_cni(json_object_get(req, "cni"), need_netns, &cr, err, sizeof(err));
	if (code)
		return api_error(code, err, NULL);
	if (!a->ready && !strcmp(op, "add"))
		return api_error(CNI_ERR_TRY_AGAIN, "sluice-agent is starting", "try again shortly");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (!strcmp(op, "add"))
		code = endpoints_add(a->eps, &cr, &result, err, sizeof(err));
	else if (!strcmp(op, "del"))
		code = endpoints_del(a->eps, &cr, err, sizeof(err));
	else
		code = endpoints_check(a->eps, &cr, err, sizeof(err));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (code) {
		pr_warn("%s %s/%s failed: %s", op, cr.container_id, cr.ifname, err);
		return api_error(code, err, NULL);
	}
	pr_info("%s %s/%s (%s/%s) in %.1f ms", op, cr.container_id, cr.ifname,
		cr.k8s_namespace[0] ? cr.k8s_namespace : "-", cr.k8s_pod[0] ? cr.k8s_pod : "-",
		(double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
	return ok(result);
}

static json_t *op_gc(struct agent *a, const json_t *req)
{
	const json_t *gc = json_object_get(req, "gc");
	const char *network = json_string_value(json_object_get(gc, "network"));
	json_t *removed = NULL;
	char err[512];
	int code;

	if (!network)
		return api_error(CNI_ERR_INVALID_CONFIG, "gc request lacks the network name", NULL);
	code = endpoints_gc(a->eps, network, json_object_get(gc, "validAttachments"), &removed, err,
			    sizeof(err));
	if (code)
		return api_error(code, err, NULL);
	return ok(json_pack("{s:o}", "removed", removed));
}

json_t *api_dispatch(struct agent *a, const json_t *req)
{
	const char *op = json_string_value(json_object_get(req, "op"));

	if (!json_is_object(req) || !op)
		return api_error(CNI_ERR_DECODE, "request is not an object with an \"op\"", NULL);
	if (!strcmp(op, "add") || !strcmp(op, "del") || !strcmp(op, "check"))
		return op_cni(a, op, req);
	if (!strcmp(op, "gc"))
		return op_gc(a, req);
	if (!strcmp(op, "status"))
		return op_status(a);
	if (!strcmp(op, "list"))
		return ok(json_pack("{s:o}", "endpoints", endpoints_list(a->eps)));
	if (!strcmp(op, "metrics"))
		return op_metrics(a);
	return api_error(CNI_ERR_INVALID_CONFIG, "unknown operation",
			 "known: add, del, check, gc, status, list, metrics");
}

void api_serve_one(struct agent *a, int listen_fd)
{
	struct timeval tmo = { .tv_sec = 5 };
	const int read_timeout_ms = 5000;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	json_t *req = NULL, *resp = NULL;
	char err[256], *drain;
	size_t drained;
	int fd, ret;

	fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) || cred.uid != 0) {
		pr_warn("refused API connection from uid %d: root only", (int)cred.uid);
		resp = api_error(CNI_ERR_INVALID_ENV, "permission denied",
				 "the sluice-agent API accepts root only");
		/* Take in the request unread before answering: closing a socket
		 * with unread data resets the connection, and the client would
		 * never see why it was refused. Bounded in size and time. */
		if (!api_read_all(fd, 64 * 1024, 1000, &drain, &drained))
			free(drain);
		goto answer;
	}
	/* A client that never finishes its request must not stall the agent. */
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tmo, sizeof(tmo));
	ret = api_read_json(fd, &req, read_timeout_ms, err, sizeof(err));
	if (ret) {
		resp = api_error(CNI_ERR_DECODE, "cannot decode request", err);
		goto answer;
	}
	resp = api_dispatch(a, req);
answer:
	if (resp)
		api_write_json(fd, resp);
	json_decref(req);
	json_decref(resp);
	close(fd);
}
