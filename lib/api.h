/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's local API: one JSON request and one JSON response per
 * connection on a Unix stream socket. The client writes the request and
 * shuts down its write side; the server reads to EOF, answers and closes.
 * The message schema is documented in docs/API.md.
 */
#ifndef SLUICE_API_H
#define SLUICE_API_H

#include <stddef.h>
#include <jansson.h>

#define SLUICE_DEFAULT_SOCKET "/run/sluice/sluice.sock"
#define SLUICE_API_MAX_MSG (4u << 20)

/* CNI error codes the agent and plugin use (CNI spec, "Error codes"). */
enum cni_code {
	CNI_ERR_INCOMPATIBLE_VERSION = 1,
	CNI_ERR_UNSUPPORTED_FIELD = 2,
	CNI_ERR_UNKNOWN_CONTAINER = 3,
	CNI_ERR_INVALID_ENV = 4,
	CNI_ERR_IO = 5,
	CNI_ERR_DECODE = 6,
	CNI_ERR_INVALID_CONFIG = 7,
	CNI_ERR_TRY_AGAIN = 11,
	CNI_ERR_NOT_AVAILABLE = 50,
	CNI_ERR_NOT_AVAILABLE_DISRUPTED = 51,
	CNI_ERR_INTERNAL = 999, /* sluice's own: anything else, see msg/details */
};

/* CLOCK_MONOTONIC in milliseconds: what deadlines are measured in. */
long long api_now_ms(void);

/*
 * One message being read to EOF without blocking, against a deadline for
 * the whole message (the agent reads several clients at once with it).
 * api_inbox_read does one read(): 1 when EOF came (buf is the message,
 * NUL-terminated), 0 when more is to come, -ETIMEDOUT once the deadline
 * has passed, -EMSGSIZE past max, another negative errno on errors.
 */
struct api_inbox {
	int fd;
	long long deadline;	/* api_now_ms() value; <0: none */
	size_t max;
	char *buf;
	size_t len, cap;
};
int api_inbox_init(struct api_inbox *in, int fd, size_t max, int timeout_ms);
int api_inbox_read(struct api_inbox *in);
void api_inbox_free(struct api_inbox *in);

/* Read fd to EOF into a NUL-terminated buffer (at most max bytes, waiting at
 * most timeout_ms, <0: no limit). Returns 0, -EMSGSIZE, -ETIMEDOUT or another
 * negative errno. */
int api_read_all(int fd, size_t max, int timeout_ms, char **out, size_t *len);

/* Read a whole JSON message from fd until EOF (at most SLUICE_API_MAX_MSG),
 * waiting at most timeout_ms (<0: no limit). Returns 0 and sets *out, or a
 * negative errno (-EPROTO: not JSON, with the parser's text in err;
 * -ECONNRESET: EOF before any byte). */
int api_read_json(int fd, json_t **out, int timeout_ms, char *err, size_t errlen);

/* Write buf to fd in full within timeout_ms (<0: no limit) for the whole
 * of it, never blocking in the write itself. Returns 0, -ETIMEDOUT or
 * another negative errno. */
int api_write_all(int fd, const void *buf, size_t len, int timeout_ms);
/* api_write_all of msg as compact JSON. */
int api_write_json(int fd, const json_t *msg, int timeout_ms);

/*
 * Send req to the agent at socket_path and wait up to timeout_ms for the
 * answer: one deadline for connecting, sending and receiving. Returns 0 with *resp set, or a negative errno: -ENOENT /
 * -ECONNREFUSED when no agent listens, -ETIMEDOUT, -EPROTO for a reply
 * that is not JSON. err receives a sentence naming the socket.
 */
int api_call(const char *socket_path, const json_t *req, json_t **resp, int timeout_ms,
	     char *err, size_t errlen);

/*
 * The directories above the socket path, top down: missing ones are
 * created root-owned 0755, and each must belong to root and not be
 * writable by group or others unless sticky, since whoever can write in
 * one can replace the socket (and, for the plugin, choose what the queued
 * DELs delete). Returns 0 or -EPERM / a negative errno with err naming the
 * directory, its owner and mode, and the fix; alternative ends that fix
 * ("or pass --socket in one").
 */
int api_socket_dirs_check(const char *path, const char *alternative, char *err, size_t errlen);

/* Build {"ok":false,"error":{"code":…,"msg":…,"details":…}}. */
json_t *api_error(int code, const char *msg, const char *details);

#endif /* SLUICE_API_H */
