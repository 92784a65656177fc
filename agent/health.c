// SPDX-License-Identifier: Apache-2.0
/*
 * Service health checks (agent/health.h): one non-blocking listener per
 * Service with externalTrafficPolicy Local and a healthCheckNodePort,
 * served from the agent's poll loop.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cidr.h"
#include "health.h"
#include "log.h"

struct health_listener {
	uint16_t port;
	int fd;			/* -1: not bound (warned once, tried at each sync) */
	int warned;
	unsigned local;		/* ready local backends */
	char ns[256], name[256];
	int seen;		/* in the view at this sync */
};

struct health_conn {
	int fd;
	uint16_t port;		/* its listener's */
	long long deadline;	/* ms, CLOCK_MONOTONIC */
	size_t len;
	char buf[1024];
};

struct health_server {
	struct health_listener *l;
	size_t n, cap;
	uint32_t addr;		/* where the listeners are bound, host order */
	struct health_conn c[HEALTH_MAX_CONNS];
	size_t nc;
};

static long long now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int health_open(struct health_server **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -ENOMEM;
}

static void conn_close(struct health_server *h, size_t i)
{
	close(h->c[i].fd);
	h->c[i] = h->c[--h->nc];
}

static void listener_close(struct health_server *h, size_t i)
{
	/* Its clients get no answer from a Service that is gone. */
	for (size_t j = h->nc; j-- > 0;)
		if (h->c[j].port == h->l[i].port)
			conn_close(h, j);
	if (h->l[i].fd >= 0)
		close(h->l[i].fd);
	h->l[i] = h->l[--h->n];
}

void health_close(struct health_server *h)
{
	if (!h)
		return;
	while (h->n)
		listener_close(h, 0);
	while (h->nc)
		conn_close(h, 0);
	free(h->l);
	free(h);
}

unsigned health_local_endpoints(const struct svc_view_service *vs, const struct lb_node *node)
{
	uint32_t seen[64];
	unsigned n = 0, extra = 0;

	for (size_t p = 0; p < vs->nports; p++)
		for (size_t b = 0; b < vs->ports[p].nbackends; b++) {
			const struct svc_backend *be = &vs->ports[p].backends[b];
			size_t k;

			if (!be->ready || !lb_backend_local(be, node))
				continue;
			for (k = 0; k < n && seen[k] != be->ip; k++)
				;
			if (k < n)
				continue;
			if (n < sizeof(seen) / sizeof(seen[0]))
				seen[n++] = be->ip;
			else
				extra++; /* beyond 64 local pods the count may repeat one */
		}
	return n + extra;
}

size_t health_answer(const char *ns, const char *name, unsigned local, char *buf, size_t len)
{
	json_t *body = json_pack("{s:{s:s, s:s}, s:I, s:b}", "service", "namespace", ns, "name", name,
				 "localEndpoints", (json_int_t)local, "serviceProxyHealthy", 1);
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	int n;

	n = snprintf(buf, len,
		     "HTTP/1.1 %s\r\nContent-Type: application/json\r\n"
		     "X-Content-Type-Options: nosniff\r\nX-Load-Balancing-Endpoint-Weight: %u\r\n"
		     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
		     local ? "200 OK" : "503 Service Unavailable", local,
		     text ? strlen(text) : 2, text ? text : "{}");
	free(text);
	json_decref(body);
	if (n < 0)
		return 0;
	return (size_t)n < len ? (size_t)n : len - 1;
}

static struct health_listener *find(struct health_server *h, uint16_t port)
{
	for (size_t i = 0; i < h->n; i++)
		if (h->l[i].port == port)
			return &h->l[i];
	return NULL;
}

/* Bind l to addr:port. Returns 0 or a negative errno. */
static int listener_bind(struct health_listener *l, uint32_t addr)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(l->port),
				  .sin_addr.s_addr = htonl(addr) };
	int one = 1, fd, ret;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 64)) {
		ret = -errno;
		close(fd);
		return ret;
	}
	l->fd = fd;
	return 0;
}

size_t health_sync(struct health_server *h, const struct svc_view *v, const struct lb_node *node)
{
	uint32_t addr = node ? node->node_ip : 0;
	size_t open = 0;
	char where[16];

	/* The node's address changed (or is gone): every listener anew. */
	if (addr != h->addr)
		while (h->n)
			listener_close(h, 0);
	h->addr = addr;
	for (size_t i = 0; i < h->n; i++)
		h->l[i].seen = 0;
	for (size_t i = 0; addr && v && i < v->n; i++) {
		const struct svc_view_service *vs = &v->v[i];
		uint16_t port = vs->svc ? vs->svc->health_check_node_port : 0;
		struct health_listener *l;

		if (vs->status || !port || !vs->svc->etp_local)
			continue;
		l = find(h, port);
		if (l && l->seen) {
			pr_warn("Service %s/%s: healthCheckNodePort %u is %s/%s's already: not served "
				"twice (the API server allocates distinct ports)", vs->ns, vs->name,
				port, l->ns, l->name);
			continue;
		}
		if (!l) {
			if (h->n == HEALTH_MAX_LISTENERS) {
				pr_warn("Service %s/%s: healthCheckNodePort %u not served: this agent "
					"serves at most %d health checks", vs->ns, vs->name, port,
					HEALTH_MAX_LISTENERS);
				continue;
			}
			if (h->n == h->cap) {
				size_t cap = h->cap ? 2 * h->cap : 16;
				struct health_listener *g = realloc(h->l, cap * sizeof(*g));

				if (!g) {
					pr_warn("Service %s/%s: healthCheckNodePort %u not served: out "
						"of memory", vs->ns, vs->name, port);
					continue;
				}
				h->l = g;
				h->cap = cap;
			}
			l = &h->l[h->n++];
			memset(l, 0, sizeof(*l));
			l->port = port;
			l->fd = -1;
		}
		l->seen = 1;
		snprintf(l->ns, sizeof(l->ns), "%s", vs->ns);
		snprintf(l->name, sizeof(l->name), "%s", vs->name);
		l->local = health_local_endpoints(vs, node);
		if (l->fd < 0) {
			int ret = listener_bind(l, addr);

			if (ret && !l->warned) {
				ip4_format(addr, where, sizeof(where));
				pr_warn("Service %s/%s: cannot serve its health check on %s:%u: %s%s; "
					"tried again at each Service change", vs->ns, vs->name, where,
					port, strerror(-ret),
					ret == -EADDRINUSE ? " (another process has the port: "
							     "kube-proxy still running?)" : "");
				l->warned = 1;
			} else if (!ret) {
				pr_debug("Service %s/%s: health check on port %u", vs->ns, vs->name,
					 port);
			}
		}
	}
	for (size_t i = h->n; i-- > 0;)
		if (!h->l[i].seen)
			listener_close(h, i);
	for (size_t i = 0; i < h->n; i++)
		open += h->l[i].fd >= 0;
	return open;
}

size_t health_pollfds(const struct health_server *h, struct pollfd *pfd)
{
	size_t k = 0;

	/* A full table leaves new clients in the backlogs. */
	for (size_t i = 0; i < h->n; i++)
		pfd[k++] = (struct pollfd){ .fd = h->nc < HEALTH_MAX_CONNS ? h->l[i].fd : -1,
					    .events = POLLIN };
	for (size_t i = 0; i < h->nc; i++)
		pfd[k++] = (struct pollfd){ .fd = h->c[i].fd, .events = POLLIN };
	return k;
}

int health_timeout_ms(const struct health_server *h)
{
	long long now = now_ms(), first = -1;

	for (size_t i = 0; i < h->nc; i++)
		if (first < 0 || h->c[i].deadline < first)
			first = h->c[i].deadline;
	if (first < 0)
		return -1;
	return first > now ? (int)(first - now) : 0;
}

/* The request is complete (headers end), or the buffer is full: answered
 * either way, as kube-proxy answers any path. */
static int request_done(const struct health_conn *c)
{
	return c->len == sizeof(c->buf) - 1 || strstr(c->buf, "\r\n\r\n") || strstr(c->buf, "\n\n");
}

static void answer(struct health_server *h, size_t i)
{
	struct health_listener *l = find(h, h->c[i].port);
	char out[1024];
	size_t n;

	if (l) {
		n = health_answer(l->ns, l->name, l->local, out, sizeof(out));
		/* A new socket's send buffer takes the ~300 bytes at once;
		 * a client that has not drained it loses the answer, never
		 * the agent's time. */
		if (send(h->c[i].fd, out, n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
			pr_debug("health check client on port %u: %s", l->port, strerror(errno));
	}
	conn_close(h, i);
}

void health_run(struct health_server *h, const struct pollfd *pfd, size_t n)
{
	long long now = now_ms();
	size_t nl = h->n;

	/* Clients first: accepting moves none of them. Backwards: closing
	 * moves the last entry into the hole. */
	for (size_t i = h->nc; i-- > 0;) {
		struct health_conn *c = &h->c[i];
		ssize_t r = recv(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len, MSG_DONTWAIT);

		if (r > 0) {
			c->len += (size_t)r;
			c->buf[c->len] = '\0';
			if (request_done(c))
				answer(h, i);
		} else if (r == 0 || (errno != EAGAIN && errno != EINTR) || now >= c->deadline) {
			conn_close(h, i);
		}
	}
	for (size_t i = 0; i < nl && i < n; i++) {
		struct health_listener *l = NULL;

		if (!(pfd[i].revents & POLLIN) || pfd[i].fd < 0)
			continue;
		for (size_t j = 0; j < h->n && !l; j++)
			l = h->l[j].fd == pfd[i].fd ? &h->l[j] : NULL;
		while (l && h->nc < HEALTH_MAX_CONNS) {
			int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

			if (fd < 0)
				break;
			h->c[h->nc++] = (struct health_conn){
				.fd = fd, .port = l->port, .deadline = now + HEALTH_READ_DEADLINE_MS };
		}
	}
}

static int cmp_listener_port(const void *a, const void *b)
{
	const struct health_listener *x = *(const struct health_listener *const *)a;
	const struct health_listener *y = *(const struct health_listener *const *)b;

	return (int)x->port - (int)y->port;
}

json_t *health_status_json(const struct health_server *h)
{
	const struct health_listener **order = NULL;
	json_t *arr = json_array(), *ret = NULL;

	if (!arr)
		return NULL;
	if (!h || !h->n)
		return arr;
	order = calloc(h->n, sizeof(*order));
	if (!order)
		goto cleanup;
	for (size_t i = 0; i < h->n; i++)
		order[i] = &h->l[i];
	qsort(order, h->n, sizeof(*order), cmp_listener_port);
	for (size_t i = 0; i < h->n; i++) {
		json_t *o = json_pack("{s:s, s:s, s:i, s:b, s:i}", "namespace", order[i]->ns, "name",
				      order[i]->name, "port", (int)order[i]->port, "listening",
				      order[i]->fd >= 0, "localEndpoints", (int)order[i]->local);

		if (!o || json_array_append_new(arr, o))
			goto cleanup;
	}
	ret = arr;
	arr = NULL;
cleanup:
	free(order);
	json_decref(arr);
	return ret;
}
