/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GET /metrics over HTTP (--metrics-address), served by libmicrohttpd in
 * external-poll mode: its epoll descriptor sits in the agent's poll set
 * and its handler runs in the agent's thread, so the metrics read the
 * agent's state without locks. Other paths get 404, methods other than
 * GET and HEAD 405.
 */
#ifndef SLUICE_AGENT_PROM_HTTP_H
#define SLUICE_AGENT_PROM_HTTP_H

#include <poll.h>

#include "agent.h"

#define PROM_DEFAULT_ADDRESS ":9962"
/* Scrapers served at once (the rest wait in the listen backlog), and how
 * long an idle or trickling connection may stay. */
#define PROM_MAX_CONNS 8
#define PROM_CONN_TIMEOUT_S 10

struct prom_server;

/*
 * Listen on address: "HOST:PORT", ":PORT" (every IPv4 address), "[V6]:PORT",
 * or "off" (*out NULL, 0 returned). Returns 0 or a negative errno with err
 * naming the address, what failed and --metrics-address (a port in use
 * is -EADDRINUSE).
 */
int prom_server_open(struct prom_server **out, const char *address, struct agent *a, char *err,
		     size_t errlen);
/* The descriptor to poll for POLLIN (NULL server: fd -1). */
void prom_server_pollfd(const struct prom_server *s, struct pollfd *pfd);
/* Milliseconds until the server needs prom_server_run without a wakeup
 * (idle connections to cut); -1: none. */
int prom_server_timeout_ms(const struct prom_server *s);
/* Accept, read, answer and write what is ready, without blocking. */
void prom_server_run(struct prom_server *s);
void prom_server_close(struct prom_server *s);

#endif /* SLUICE_AGENT_PROM_HTTP_H */
