// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <libgen.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "api.h"

long long api_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until fd has events (POLLIN / POLLOUT) or the deadline (ms,
 * monotonic; <0: none). */
static int wait_fd(int fd, short events, long long deadline)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	int timeout = -1, n;

	if (deadline >= 0) {
		long long left = deadline - api_now_ms();

		/* At or past the deadline: still report what is ready now. */
		timeout = left > 0 ? (int)left : 0;
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

int api_inbox_init(struct api_inbox *in, int fd, size_t max, int timeout_ms)
{
	memset(in, 0, sizeof(*in));
	in->fd = fd;
	in->max = max;
	in->deadline = timeout_ms >= 0 ? api_now_ms() + timeout_ms : -1;
	in->cap = 4096;
	in->buf = malloc(in->cap);
	return in->buf ? 0 : -ENOMEM;
}

int api_inbox_read(struct api_inbox *in)
{
	ssize_t n;
	char *nbuf;

	if (in->len + 1 >= in->cap) {
		if (in->cap >= in->max)
			return -EMSGSIZE;
		nbuf = realloc(in->buf, in->cap * 2);
		if (!nbuf)
			return -ENOMEM;
		in->buf = nbuf;
		in->cap *= 2;
	}
	n = read(in->fd, in->buf + in->len, in->cap - in->len - 1);
	if (n == 0) {
		in->buf[in->len] = '\0';
		return 1;
	}
	if (n > 0) {
		in->len += (size_t)n;
		/* Past the deadline, only what has already arrived is taken
		 * (a complete request that waited while the agent was busy is
		 * still served); a trickling client is cut off here, after its
		 * last byte, not given another round. */
		if (in->deadline >= 0 && api_now_ms() >= in->deadline &&
		    wait_fd(in->fd, POLLIN, api_now_ms()) == -ETIMEDOUT)
			return -ETIMEDOUT;
		return 0;
	}
	if (errno == EINTR)
		return 0;
	if (errno != EAGAIN)
		return -errno;
	/* The deadline is for the whole message: a client that trickles a
	 * byte at a time gets no more time than one that sends nothing. */
	if (in->deadline >= 0 && api_now_ms() >= in->deadline)
		return -ETIMEDOUT;
	return 0;
}

void api_inbox_free(struct api_inbox *in)
{
	free(in->buf);
	in->buf = NULL;
}

int api_read_all(int fd, size_t max, int timeout_ms, char **out, size_t *outlen)
{
	struct api_inbox in;
	int ret;

	ret = api_inbox_init(&in, fd, max, timeout_ms);
	while (!ret) {
		ret = wait_fd(fd, POLLIN, in.deadline);
		if (!ret)
			ret = api_inbox_read(&in);
	}
	if (ret < 0) {
		api_inbox_free(&in);
		return ret;
	}
	*out = in.buf;
	*outlen = in.len;
	return 0;
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
	/* Closed with nothing sent: the peer went away (an agent killed
	 * after it accepted the request), not a malformed message; callers
	 * map this to "try again". */
	if (!len) {
		free(buf);
		snprintf(err, errlen, "connection closed before any message");
		return -ECONNRESET;
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

int api_write_all(int fd, const void *buf, size_t len, int timeout_ms)
{
	long long deadline = timeout_ms >= 0 ? api_now_ms() + timeout_ms : -1;
	const char *p = buf;
	size_t off = 0;
	ssize_t n;
	int ret;

	/* Never block in send itself: a reader that takes nothing, or a byte
	 * at a time, must not hold the writer past its deadline. */
	while (off < len) {
		n = send(fd, p + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == ENOTSOCK)
			n = write(fd, p + off, len - off);
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno != EINTR && errno != EAGAIN)
			return -errno;
		if (n < 0 && errno == EINTR)
			continue;
		if (deadline >= 0 && api_now_ms() >= deadline)
			return -ETIMEDOUT;
		ret = wait_fd(fd, POLLOUT, deadline);
		if (ret)
			return ret;
	}
	return 0;
}

int api_write_json(int fd, const json_t *msg, int timeout_ms)
{
	char *text = json_dumps(msg, JSON_COMPACT);
	int ret;

	if (!text)
		return -ENOMEM;
	ret = api_write_all(fd, text, strlen(text), timeout_ms);
	free(text);
	return ret;
}

/* What is left until deadline, for a _ms argument: <0 none, at least 0. */
static int time_left(long long deadline)
{
	long long left;

	if (deadline < 0)
		return -1;
	left = deadline - api_now_ms();
	return left > 0 ? (int)left : 0;
}

int api_call(const char *socket_path, const json_t *req, json_t **resp, int timeout_ms,
	     char *err, size_t errlen)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	long long deadline = timeout_ms >= 0 ? api_now_ms() + timeout_ms : -1;
	char why[256];
	int fd, ret;

	if (strlen(socket_path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "socket path %s is longer than %zu bytes", socket_path,
			 sizeof(sun.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	strcpy(sun.sun_path, socket_path);
	/* Non-blocking, so that every step keeps to the one deadline: a
	 * Unix connect blocks while the agent's backlog is full, and a write
	 * blocks while the agent is not reading. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return ret;
	}
	while (connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		ret = -errno;
		if (ret == -EAGAIN && (deadline < 0 || api_now_ms() < deadline)) {
			/* Backlog full: Unix sockets do not report when it drains. */
			usleep(10000);
			continue;
		}
		snprintf(err, errlen, "cannot reach sluice-agent at %s: %s (is the agent running?)",
			 socket_path, ret == -EAGAIN ? "it accepts no connections" : strerror(-ret));
		if (ret == -EAGAIN)
			ret = -ETIMEDOUT;
		goto cleanup;
	}
	ret = api_write_json(fd, req, time_left(deadline));
	if (ret) {
		snprintf(err, errlen, "cannot send request to sluice-agent at %s: %s", socket_path,
			 strerror(-ret));
		goto cleanup;
	}
	shutdown(fd, SHUT_WR);
	if (deadline >= 0) {
		long long left = deadline - api_now_ms();

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

/*
 * The directories above the socket: whoever can write in one can replace
 * the socket (or the directory) with their own, and every CNI ADD and
 * sluicectl call would talk to them. Missing ones are created root-owned
 * 0755; existing ones must belong to root and not be writable by group or
 * others unless sticky (/tmp: others cannot remove or rename our entries).
 */
int api_socket_dirs_check(const char *path, const char *alternative, char *err, size_t errlen)
{
	char buf[sizeof(((struct sockaddr_un *)0)->sun_path)], *dir, *p;
	struct stat st;
	int ret;

	snprintf(buf, sizeof(buf), "%s", path);
	dir = dirname(buf);
	/* Top down: create what is missing, then check each level. */
	for (p = dir;; p++) {
		char c = *p;

		if (c != '/' && c != '\0')
			continue;
		*p = '\0';
		if (p != dir) {
			if (!mkdir(dir, 0755)) {
				/* Exactly 0755, whatever the umask. */
				if (chmod(dir, 0755)) {
					ret = -errno;
					snprintf(err, errlen, "cannot set the mode of %s: %s", dir,
						 strerror(errno));
					return ret;
				}
			} else if (errno != EEXIST) {
				ret = -errno;
				snprintf(err, errlen, "cannot create %s, the directory of the socket %s: %s",
					 dir, path, strerror(errno));
				return ret;
			}
		}
		if (stat(p == dir ? "/" : dir, &st)) {
			ret = -errno;
			snprintf(err, errlen, "cannot check %s, above the socket %s: %s",
				 p == dir ? "/" : dir, path, strerror(errno));
			return ret;
		}
		if (!S_ISDIR(st.st_mode) || st.st_uid != 0 ||
		    ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))) {
			snprintf(err, errlen,
				 "%s, above the socket %s, is %s owned by uid %u with mode %04o: "
				 "whoever can write there can replace the agent's socket; make it a "
				 "root-owned directory without group/other write (chown root %s; "
				 "chmod go-w %s), %s",
				 p == dir ? "/" : dir, path, S_ISDIR(st.st_mode) ? "a directory" : "not a directory",
				 (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777),
				 p == dir ? "/" : dir, p == dir ? "/" : dir, alternative);
			return -EPERM;
		}
		*p = c;
		if (c == '\0')
			break;
	}
	return 0;
}
