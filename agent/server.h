/* SPDX-License-Identifier: Apache-2.0 */
/* The agent's side of the local API: the listening socket and dispatch. */
#ifndef SLUICE_AGENT_SERVER_H
#define SLUICE_AGENT_SERVER_H

#include <jansson.h>
#include <poll.h>
#include <stddef.h>

#include "agent.h"

/* Whole-message deadlines on the API socket (docs/API.md): a client has
 * this long to send its whole request, and this long to take the whole
 * answer, however it trickles. */
#define API_READ_DEADLINE_MS  2000
#define API_WRITE_DEADLINE_MS 2000
/* Requests read at the same time; more wait in the listen backlog. */
#define API_MAX_CONNS 16

/* Create the socket's missing directories (root, 0755) and check every
 * directory above it: root's, and not writable by group or others unless
 * sticky; then the same for the DEL queue next to the socket (created
 * root's, 0700; no group or other write at all, lib/delq.h). Returns 0 or
 * -EPERM / a negative errno with err naming the directory, its owner and
 * mode, and the fix. api_listen calls it; main calls it first, before
 * touching anything. */
int api_check_socket_dirs(const char *path, char *err, size_t errlen);
/* Bind the socket (mode 0600), refusing to steal it from a live agent and
 * to use a directory others can write to. Returns the (non-blocking)
 * listening fd or a negative errno with err set. */
int api_listen(const char *path, char *err, size_t errlen);

/*
 * The connections being served. The agent's poll loop polls
 * api_server_pollfds (the listening socket first, then up to
 * API_MAX_CONNS clients: at most 1 + API_MAX_CONNS entries) with
 * api_server_timeout_ms, then calls api_server_run with the same array:
 * it reads what arrived, accepts new clients (root only; others get
 * "permission denied"), answers complete requests one at a time and cuts
 * off clients past their deadline.
 */
struct api_server;
int api_server_open(struct api_server **out, int listen_fd);
void api_server_close(struct api_server *s);
size_t api_server_pollfds(const struct api_server *s, struct pollfd *pfd);
int api_server_timeout_ms(const struct api_server *s);
void api_server_run(struct agent *agent, struct api_server *s, const struct pollfd *pfd);
/* The agent was busy elsewhere for ms (applying Kubernetes events): the
 * clients being read get that time back, so a deadline only counts time the
 * agent spent waiting for them. api_server_run does the same for the time
 * it spends answering one client. */
void api_server_credit(struct api_server *s, long long ms);
/* Answer one decoded request (exposed for tests). */
json_t *api_dispatch(struct agent *agent, const json_t *req);

#endif /* SLUICE_AGENT_SERVER_H */
