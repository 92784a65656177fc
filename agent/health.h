/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Service health checks (healthCheckNodePort), as kube-proxy serves them:
 * for each handled Service with externalTrafficPolicy Local and a
 * healthCheckNodePort, an HTTP server on this node's address and that port
 * answers every request with 200 when the node has a ready local backend
 * for it, else 503, and kube-proxy's JSON body:
 *
 *   {"service":{"namespace":"shop","name":"web"},"localEndpoints":1,
 *    "serviceProxyHealthy":true}
 *
 * so that a cloud load balancer sends external traffic only to nodes that
 * keep the client's address and have somewhere to send it. Served from the
 * agent's poll loop, never blocking it: listeners are non-blocking, a
 * request is read as it arrives (bounded, with a deadline) and the small
 * answer written in one go.
 */
#ifndef SLUICE_AGENT_HEALTH_H
#define SLUICE_AGENT_HEALTH_H

#include <jansson.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>

#include "lb.h"
#include "service.h"

/* Listeners beyond this many are not opened (a warning names the Service). */
#define HEALTH_MAX_LISTENERS 256
/* Requests being read at the same time; more wait in the backlog. */
#define HEALTH_MAX_CONNS 16
#define HEALTH_POLLFDS (HEALTH_MAX_LISTENERS + HEALTH_MAX_CONNS)
/* A client has this long to send its request. */
#define HEALTH_READ_DEADLINE_MS 2000

struct health_server;

int health_open(struct health_server **out);
void health_close(struct health_server *h);

/* Listeners in line with v (NULL: none): opened for Services that gained
 * a health check, closed for those that lost it, counts updated. node:
 * where to listen (node_ip 0: nowhere) and which backends are local. A
 * port that cannot be bound is named in a warning (once) and tried again
 * at the next sync. Returns the number of listeners open. */
size_t health_sync(struct health_server *h, const struct svc_view *v, const struct lb_node *node);

/* The poll loop's part: up to HEALTH_POLLFDS entries, the timeout (ms, -1:
 * none), and the work once poll returned with the same array. */
size_t health_pollfds(const struct health_server *h, struct pollfd *pfd);
int health_timeout_ms(const struct health_server *h);
void health_run(struct health_server *h, const struct pollfd *pfd, size_t n);

/* The listeners for `sluicectl status` (services.healthChecks): one
 * object per Service, {namespace, name, port, listening, localEndpoints},
 * in port order; an empty array when h is NULL. NULL when out of memory. */
json_t *health_status_json(const struct health_server *h);

/* The answer for a Service (exposed for tests): status line, headers and
 * body into buf. Returns its length (truncated to len - 1). */
size_t health_answer(const char *ns, const char *name, unsigned local, char *buf, size_t len);

/* Ready local backends of vs, counted once per address (kube-proxy's
 * localEndpoints). */
unsigned health_local_endpoints(const struct svc_view_service *vs, const struct lb_node *node);

#endif /* SLUICE_AGENT_HEALTH_H */
