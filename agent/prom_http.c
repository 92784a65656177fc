// SPDX-License-Identifier: Apache-2.0
/* The metrics endpoint (prom_http.h). */
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "log.h"
#include "prom_collect.h"
#include "prom_http.h"

struct prom_server {
	struct MHD_Daemon *d;
	struct agent *a;
	struct prom_map_cache cache;
};

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *text,
			     const char *allow)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	if (allow)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_size, void **req_cls)
{
	struct prom_server *s = cls;
	struct prom_buf b = { 0 };
	struct MHD_Response *r;
	enum MHD_Result ret;

	(void)version;
	(void)upload;
	(void)req_cls;
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n", "GET, HEAD");
	if (*upload_size) {
		*upload_size = 0;	/* a GET's body means nothing: dropped */
		return MHD_YES;
	}
	if (strcmp(url, "/metrics"))
		return reply(c, MHD_HTTP_NOT_FOUND, "not found: the metrics are at /metrics\n", NULL);
	if (prom_render(s->a, &s->cache, &b)) {
		prom_buf_free(&b);
		return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n", NULL);
	}
	r = MHD_create_response_from_buffer(b.len, b.s ? b.s : "", b.s ? MHD_RESPMEM_MUST_FREE
								       : MHD_RESPMEM_PERSISTENT);
	if (!r) {
		prom_buf_free(&b);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, CONTENT_TYPE);
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	pr_debug("metrics: %s", msg);
}

/* "HOST:PORT", ":PORT" or "[V6]:PORT" into a listening socket. */
static int listen_on(const char *address, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	const char *colon = strrchr(address, ':');
	char host[256] = "", port[16];
	struct addrinfo *res = NULL;
	size_t hl;
	int fd = -1, one = 1, r;

	if (!colon || !colon[1] || strlen(colon + 1) >= sizeof(port) ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1))
		goto bad;
	snprintf(port, sizeof(port), "%s", colon + 1);
	hl = (size_t)(colon - address);
	if (hl >= sizeof(host))
		goto bad;
	memcpy(host, address, hl);
	host[hl] = '\0';
	if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
		memmove(host, host + 1, hl - 2);
		host[hl - 2] = '\0';
		hints.ai_family = AF_INET6;
	} else if (!hl) {
		hints.ai_family = AF_INET;	/* ":PORT": every IPv4 address */
	}
	r = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
	if (r) {
		snprintf(err, errlen, "--metrics-address %s: cannot resolve '%s': %s", address, host,
			 gai_strerror(r));
		return -EINVAL;
	}
	fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
		    res->ai_protocol);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, res->ai_addr, res->ai_addrlen) || listen(fd, 64)) {
		r = -errno;
		if (r == -EADDRINUSE)
			snprintf(err, errlen,
				 "--metrics-address %s: the port is in use (another sluice-agent or "
				 "program listens on it): give another HOST:PORT, or off to serve no "
				 "metrics", address);
		else
			snprintf(err, errlen, "--metrics-address %s: cannot listen: %s", address,
				 strerror(-r));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(res);
		return r;
	}
	freeaddrinfo(res);
	return fd;
bad:
	snprintf(err, errlen, "--metrics-address takes HOST:PORT, :PORT, [IPV6]:PORT or off, not '%s'",
		 address);
	return -EINVAL;
}

int prom_server_open(struct prom_server **out, const char *address, struct agent *a, char *err,
		     size_t errlen)
{
	struct prom_server *s;
	int fd;

	*out = NULL;
	if (!strcmp(address, "off"))
		return 0;
	fd = listen_on(address, err, errlen);
	if (fd < 0)
		return fd;
	s = calloc(1, sizeof(*s));
	if (!s) {
		close(fd);
		snprintf(err, errlen, "--metrics-address %s: out of memory", address);
		return -ENOMEM;
	}
	s->a = a;
	/* No thread of its own (no MHD_USE_INTERNAL_POLLING_THREAD): the
	 * agent's loop polls its epoll descriptor and calls MHD_run. */
	s->d = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL, handle, s,
				MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
				MHD_OPTION_LISTEN_SOCKET, fd,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned)PROM_MAX_CONNS,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)PROM_CONN_TIMEOUT_S,
				MHD_OPTION_END);
	if (!s->d) {
		close(fd);
		free(s);
		snprintf(err, errlen, "--metrics-address %s: the HTTP server did not start",
			 address);
		return -EIO;
	}
	pr_info("metrics on http://%s/metrics", address);
	*out = s;
	return 0;
}

void prom_server_pollfd(const struct prom_server *s, struct pollfd *pfd)
{
	const union MHD_DaemonInfo *i =
		s ? MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_EPOLL_FD) : NULL;

	*pfd = (struct pollfd){ .fd = i ? i->epoll_fd : -1, .events = POLLIN };
}

int prom_server_timeout_ms(const struct prom_server *s)
{
	MHD_UNSIGNED_LONG_LONG t;

	if (s && s->cache.walking)
		return 0;	/* a map count goes on between the loop's other work */
	if (!s || MHD_get_timeout(s->d, &t) != MHD_YES)
		return -1;
	return t > INT_MAX ? INT_MAX : (int)t;
}

void prom_server_run(struct prom_server *s)
{
	if (!s)
		return;
	MHD_run(s->d);
	prom_maps_step(s->a, &s->cache, PROM_MAP_STEP_S);
}

void prom_server_close(struct prom_server *s)
{
	MHD_socket fd;

	if (!s)
		return;
	/* Quiesced, MHD hands the listening socket back instead of closing
	 * it with the daemon: closed here, once. */
	fd = MHD_quiesce_daemon(s->d);
	MHD_stop_daemon(s->d);
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
	prom_maps_free(&s->cache);
	free(s);
}
