// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "api.h"

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until fd is readable or the deadline (ms, monotonic; <0: none). */
static int wait_readable(int fd, long long deadline)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int timeout = -1, n;

	if (deadline >= 0) {
		long long left = deadline - now_ms();

		if (left <= 0)
			return -ETIMEDOUT;
		timeout = (int)left;
	}
	do {
		n = poll(&pfd, 1, timeout);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -ETIMEDOUT;
	return 0;
}

int api_read_all(int fd, size_t max, int timeout_ms, char **out, size_t *outlen)
{
	long long deadline = timeout_ms >= 0 ? now_ms() + timeout_ms : -1;
	size_t cap = 4096, len = 0;
	char *buf, *nbuf;
	ssize_t n;
	int ret;

	buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (len + 1 >= cap) {
			if (cap >= max) {
				ret = -EMSGSIZE;
				goto cleanup;
			}
			cap *= 2;
			nbuf = realloc(buf, cap);
			if (!nbuf) {
				ret = -ENOMEM;
				goto cleanup;
			}
			buf = nbuf;
		}
		ret = wait_readable(fd, deadline);
		if (ret)
			goto cleanup;
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			goto cleanup;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	return 0;
cleanup:
	free(buf);
	return ret;
}

int api_read_json(int fd, json_t **out, int timeout_ms, char *err, size_t errlen)
{
	json_error_t jerr;
	char *buf = NULL;
	json_t *msg;
	size_t len;
	int ret;

	ret = api_read_all(fd, SLUICE_API_MAX_MSG, timeout_ms, &buf, &len);
	if (ret == -EMSGSIZE) {
		snprintf(err, errlen, "message larger than %u bytes", SLUICE_API_MAX_MSG);
		return ret;
	}
	if (ret) {
		snprintf(err, errlen, "%s", strerror(-ret));
		return ret;
	}
	msg = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	free(buf);
	if (!msg) {
		snprintf(err, errlen, "line %d column %d: %s", jerr.line, jerr.column, jerr.text);
		return -EPROTO;
	}
	*out = msg;
	return 0;
}

int api_write_json(int fd, const json_t *msg)
{
	char *text = json_dumps(msg, JSON_COMPACT);
	size_t len, off = 0;
	ssize_t n;
	int ret = 0;

	if (!text)
		return -ENOMEM;
	len = strlen(text);
	while (off < len) {
		n = send(fd, text + off, len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == ENOTSOCK)
			n = write(fd, text + off, len - off);
		if (n < 0) {
			ret = -errno;
			break;
		}
		off += (size_t)n;
	}
	free(text);
	return ret;
}

int api_call(const char *socket_path, const json_t *req, json_t **resp, int timeout_ms,
	     char *err, size_t errlen)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	long long deadline = timeout_ms >= 0 ? now_ms() + timeout_ms : -1;
	char why[256];
	int fd, ret;

	if (strlen(socket_path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "socket path %s is longer than %zu bytes", socket_path,
			 sizeof(sun.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	strcpy(sun.sun_path, socket_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return ret;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		ret = -errno;
		snprintf(err, errlen, "cannot reach sluice-agent at %s: %s (is the agent running?)",
			 socket_path, strerror(errno));
		goto cleanup;
	}
	ret = api_write_json(fd, req);
	if (ret) {
		snprintf(err, errlen, "cannot send request to sluice-agent at %s: %s", socket_path,
			 strerror(-ret));
		goto cleanup;
	}
	shutdown(fd, SHUT_WR);
	if (deadline >= 0) {
		long long left = deadline - now_ms();

		timeout_ms = left > 0 ? (int)left : 0;
	}
	ret = api_read_json(fd, resp, timeout_ms, why, sizeof(why));
	if (ret)
		snprintf(err, errlen, "no valid answer from sluice-agent at %s: %s", socket_path, why);
cleanup:
	close(fd);
	return ret;
}

json_t *api_error(int code, const char *msg, const char *details)
{
	return json_pack("{s:b, s:{s:i, s:s, s:s}}", "ok", 0, "error", "code", code, "msg", msg,
			 "details", details ? details : "");
}
