// SPDX-License-Identifier: Apache-2.0
/*
 * sluice-probe: a small, dependency-free connectivity probe for the tests.
 *
 *   serve  [--tcp PORT]... [--udp PORT]...    echo servers, print "ready"
 *   tcp    HOST PORT [--timeout MS] [--who]    one TCP echo round trip
 *   udp    HOST PORT [--timeout MS] [--who [--connected]]
 *                                              one UDP echo round trip
 *   stream HOST PORT --seconds N [--interval-ms M] [--timeout MS]
 *                                              long-lived TCP echo stream
 *   ping   HOST [--count N] [--timeout MS] [--interval-ms M]
 *                                              ICMP echo (IPv4)
 *   matrix [--timeout MS] [--parallel N]       many tcp/udp probes at once,
 *                                              each from its own network
 *                                              namespace; jobs on stdin
 *
 * Exit codes: 0 success, 1 network failure (timeout, refused, broken,
 * wrong echo, no reply), 2 usage error, 3 local error (socket, bind,
 * permission, resolution).
 *
 * Only libc and pthreads; it is meant to be copied into minimal (busybox)
 * containers, so build it statically if it has to run there.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <sched.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define EXIT_OK    0
#define EXIT_FAIL  1
#define EXIT_USAGE 2
#define EXIT_LOCAL 3

#define DEFAULT_TIMEOUT_MS   2000
#define STREAM_ECHO_LIMIT_US 2000000LL
#define MAX_PORTS            64
#define MATRIX_TIMEOUT_MS    1000
#define MATRIX_PARALLEL      64
#define MATRIX_MAX_PARALLEL  1024
#define MATRIX_UDP_RESEND_MS 100

static const char *prog = "sluice-probe";

static void usage(FILE *f)
{
	fprintf(f,
"usage: %s COMMAND [ARGS]\n"
"\n"
"  serve [--tcp PORT]... [--udp PORT]... [--name NAME]\n"
"        Echo servers on every local address (IPv4, and IPv6 when\n"
"        available). TCP echoes each connection's bytes back (one thread\n"
"        per connection); UDP sends each datagram back to its sender from\n"
"        the address it was sent to. A --who request is answered with NAME\n"
"        (default sluice-probe) and the client's address as seen here.\n"
"        Prints \"ready\" on stdout once every socket listens; runs until\n"
"        killed.\n"
"  tcp HOST PORT [--timeout MS] [--who]\n"
"        Connect, send a unique token, expect it echoed back.\n"
"  udp HOST PORT [--timeout MS] [--who [--connected]]\n"
"        Send a unique token (resent every 250 ms), expect it echoed back.\n"
"        --who (tcp, udp): ask the server who it is instead, and print\n"
"          peer=ADDR:PORT server=NAME client=ADDR:PORT\n"
"        peer: where the answer came from (TCP: the connection's peer; UDP:\n"
"        the answer's source, taken from any address, and a failure when it\n"
"        is not HOST PORT); server: the server's --name; client: this\n"
"        socket's address as the server saw it. --connected (udp): a\n"
"        connected socket, peer is getpeername()'s.\n"
"  stream HOST PORT --seconds N [--interval-ms M] [--timeout MS]\n"
"        Hold one TCP connection for N seconds, sending a numbered message\n"
"        every M ms (default 50) and checking every echo arrives, in order,\n"
"        within 2 s. Prints one JSON line on stdout:\n"
"        {\"messages\":..,\"echoed\":..,\"max_rtt_us\":..,\"errors\":..,\"broken\":..}\n"
"  ping HOST [--count N] [--timeout MS] [--interval-ms M]\n"
"        ICMP echo (IPv4) through a raw socket, or an unprivileged ICMP\n"
"        datagram socket when raw sockets are not permitted. Default\n"
"        count 3, interval 200 ms. Succeeds if at least one reply arrives.\n"
"  matrix [--timeout MS] [--parallel N] [--verbose]\n"
"        Many probes at once. Reads jobs from stdin, one a line:\n"
"          ID NETNS_PATH PROTO DST_IP PORT\n"
"        (PROTO tcp or udp, DST_IP an address literal, NETNS_PATH a network\n"
"        namespace file such as /run/netns/NAME, or - for this process's\n"
"        own; empty lines and lines starting with # are skipped). Runs them\n"
"        on N threads (default %d); each thread enters the job's network\n"
"        namespace (setns) before it opens its socket, then does one tcp or\n"
"        udp echo round trip as above (UDP resent every %d ms), with a\n"
"        timeout of MS (default %d). Prints \"ID ok\", \"ID fail\" or \"ID error\"\n"
"        (the job could not run: namespace, socket) per job, in completion\n"
"        order; --verbose adds each failure's reason on stderr. Exits 0 once\n"
"        every job has run, whatever the results; 2 on a malformed job line\n"
"        (nothing runs); 3 when a job ended in \"error\".\n"
"  --help\n"
"        This text.\n"
"\n"
"HOST is an IPv4/IPv6 address or a name. --timeout defaults to %d ms (for\n"
"ping: per echo request, default 1000 ms); for stream it bounds the connect.\n"
"\n"
"Exit codes:\n"
"  0  success\n"
"  1  network failure: timeout, refused, unreachable, reset, wrong or\n"
"     missing echo, no ICMP reply (reason on stderr)\n"
"  2  usage error\n"
"  3  local error: socket/bind/listen failed, permission, name resolution\n",
		prog, MATRIX_PARALLEL, MATRIX_UDP_RESEND_MS, MATRIX_TIMEOUT_MS,
		DEFAULT_TIMEOUT_MS);
}

/* Per thread: matrix workers tag their messages with the job ID, or stay
 * quiet unless --verbose. */
static __thread const char *msg_tag;
static __thread bool msg_quiet;

static void __attribute__((format(printf, 1, 2))) errx_msg(const char *fmt, ...)
{
	char buf[512];
	int n = 0;
	va_list ap;

	if (msg_quiet)
		return;
	if (msg_tag)
		n = snprintf(buf, sizeof(buf), "%s: %s: ", prog, msg_tag);
	else
		n = snprintf(buf, sizeof(buf), "%s: ", prog);
	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < sizeof(buf))
		vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	va_end(ap);
	/* One write per message, so that concurrent threads do not interleave. */
	fprintf(stderr, "%s\n", buf);
}

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static bool parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (!s || !*s || *s == '-')
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > max)
		return false;
	*out = v;
	return true;
}

/* ---- argument handling -------------------------------------------------- */

struct opts {
	const char *pos[4];
	int npos;
	long timeout_ms;    /* -1: not given */
	long seconds;       /* -1: not given */
	long interval_ms;   /* -1: not given */
	long count;         /* -1: not given */
	long parallel;      /* -1: not given */
	bool verbose;
	bool who;
	bool connected;
	const char *name;
	int tcp_ports[MAX_PORTS], ntcp;
	int udp_ports[MAX_PORTS], nudp;
};

static int opt_value(int argc, char **argv, int *i, unsigned long min,
		     unsigned long max, long *out)
{
	unsigned long v;
	const char *name = argv[*i];

	if (*i + 1 >= argc) {
		errx_msg("%s needs a value", name);
		return -1;
	}
	(*i)++;
	if (!parse_uint(argv[*i], max, &v) || v < min) {
		errx_msg("%s: invalid value '%s' (expected %lu..%lu)", name, argv[*i],
			 min, max);
		return -1;
	}
	*out = (long)v;
	return 0;
}

/* allowed: a string of option letters: t(imeout) s(econds) i(nterval)
 * c(ount) T(cp ports) U(dp ports) p(arallel) v(erbose) w(ho) n(ame). */
static int parse_opts(int argc, char **argv, const char *allowed, int maxpos,
		      struct opts *o)
{
	memset(o, 0, sizeof(*o));
	o->timeout_ms = o->seconds = o->interval_ms = o->count = o->parallel = -1;

	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		long v;

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			exit(EXIT_OK);
		} else if (!strcmp(a, "--timeout") && strchr(allowed, 't')) {
			if (opt_value(argc, argv, &i, 1, 3600000, &o->timeout_ms))
				return -1;
		} else if (!strcmp(a, "--seconds") && strchr(allowed, 's')) {
			if (opt_value(argc, argv, &i, 1, 86400, &o->seconds))
				return -1;
		} else if (!strcmp(a, "--interval-ms") && strchr(allowed, 'i')) {
			if (opt_value(argc, argv, &i, 1, 60000, &o->interval_ms))
				return -1;
		} else if (!strcmp(a, "--count") && strchr(allowed, 'c')) {
			if (opt_value(argc, argv, &i, 1, 100000, &o->count))
				return -1;
		} else if (!strcmp(a, "--parallel") && strchr(allowed, 'p')) {
			if (opt_value(argc, argv, &i, 1, MATRIX_MAX_PARALLEL, &o->parallel))
				return -1;
		} else if (!strcmp(a, "--verbose") && strchr(allowed, 'v')) {
			o->verbose = true;
		} else if (!strcmp(a, "--who") && strchr(allowed, 'w')) {
			o->who = true;
		} else if (!strcmp(a, "--connected") && strchr(allowed, 'k')) {
			o->connected = true;
		} else if (!strcmp(a, "--name") && strchr(allowed, 'n')) {
			if (i + 1 >= argc || !argv[i + 1][0] || strpbrk(argv[i + 1], " \t\r\n")) {
				errx_msg("--name needs a value without spaces");
				return -1;
			}
			o->name = argv[++i];
		} else if ((!strcmp(a, "--tcp") && strchr(allowed, 'T')) ||
			   (!strcmp(a, "--udp") && strchr(allowed, 'U'))) {
			bool tcp = a[2] == 't';
			int *n = tcp ? &o->ntcp : &o->nudp;

			if (opt_value(argc, argv, &i, 1, 65535, &v))
				return -1;
			if (*n >= MAX_PORTS) {
				errx_msg("too many ports (max %d)", MAX_PORTS);
				return -1;
			}
			(tcp ? o->tcp_ports : o->udp_ports)[(*n)++] = (int)v;
		} else if (a[0] == '-' && a[1] == '-') {
			errx_msg("unknown option '%s'", a);
			return -1;
		} else {
			if (o->npos >= maxpos) {
				errx_msg("unexpected argument '%s'", a);
				return -1;
			}
			o->pos[o->npos++] = a;
		}
	}
	return 0;
}

static int parse_port(const char *s)
{
	unsigned long v;

	if (!parse_uint(s, 65535, &v) || v == 0) {
		errx_msg("invalid port '%s'", s);
		return -1;
	}
	return (int)v;
}

/* ---- client helpers ----------------------------------------------------- */

static int resolve(const char *host, int port, int socktype,
		   struct sockaddr_storage *ss, socklen_t *len)
{
	struct addrinfo hints = { .ai_socktype = socktype }, *res;
	char portstr[8];
	int rc;

	snprintf(portstr, sizeof(portstr), "%d", port);
	hints.ai_family = AF_UNSPEC;
	hints.ai_flags = AI_ADDRCONFIG;
	rc = getaddrinfo(host, portstr, &hints, &res);
	if (rc == EAI_NONAME || rc == EAI_ADDRFAMILY || rc == EAI_NODATA) {
		/* AI_ADDRCONFIG hides loopback-only families; retry without. */
		hints.ai_flags = 0;
		rc = getaddrinfo(host, portstr, &hints, &res);
	}
	if (rc) {
		errx_msg("cannot resolve '%s': %s", host, gai_strerror(rc));
		return -1;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static const char *addr_str(const struct sockaddr_storage *ss, char *buf, size_t n)
{
	char a[INET6_ADDRSTRLEN] = "?";
	int port = 0;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)ss;

		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		port = ntohs(s4->sin_port);
		snprintf(buf, n, "%s:%d", a, port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		port = ntohs(s6->sin6_port);
		snprintf(buf, n, "[%s]:%d", a, port);
	} else {
		snprintf(buf, n, "?");
	}
	return buf;
}

static const char *neterr(int err)
{
	switch (err) {
	case ECONNREFUSED: return "connection refused";
	case ETIMEDOUT:    return "timed out";
	case EHOSTUNREACH: return "no route to host (host unreachable)";
	case ENETUNREACH:  return "network unreachable";
	case ECONNRESET:   return "connection reset by peer";
	case EPIPE:        return "broken pipe";
	case EPERM:        return "operation not permitted (dropped by a filter?)";
	case EACCES:       return "permission denied";
	default:           return strerror(err);
	}
}

static int remaining_ms(int64_t deadline)
{
	int64_t left = deadline - now_us();

	if (left <= 0)
		return 0;
	return (int)((left + 999) / 1000);
}

/* Non-blocking connect bounded by deadline. Returns fd, or -1 (reason
 * printed; *local set when the failure is not the network's). */
static int tcp_connect(const struct sockaddr_storage *ss, socklen_t len,
		       int64_t deadline, const char *what, bool *local)
{
	int fd, err = 0;
	socklen_t elen = sizeof(err);

	*local = false;
	fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		errx_msg("socket: %s", strerror(errno));
		*local = true;
		return -1;
	}
	if (connect(fd, (const struct sockaddr *)ss, len) < 0) {
		if (errno != EINPROGRESS) {
			errx_msg("connect to %s failed: %s", what, neterr(errno));
			close(fd);
			return -1;
		}
		for (;;) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			int ms = remaining_ms(deadline);
			int rc = ms ? poll(&p, 1, ms) : 0;

			if (rc < 0 && errno == EINTR)
				continue;
			if (rc < 0) {
				errx_msg("poll: %s", strerror(errno));
				*local = true;
				close(fd);
				return -1;
			}
			if (rc == 0) {
				errx_msg("connect to %s failed: timeout (no answer to SYN)",
					 what);
				close(fd);
				return -1;
			}
			break;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
			err = errno;
		if (err) {
			errx_msg("connect to %s failed: %s", what, neterr(err));
			close(fd);
			return -1;
		}
	}
	return fd;
}

static void make_token(char *buf, size_t n, const char *kind)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(buf, n, "sluice-probe %s %d-%ld-%09ld\n", kind, (int)getpid(),
		 (long)ts.tv_sec, ts.tv_nsec);
}

/* ---- tcp ---------------------------------------------------------------- */

/* One TCP echo round trip to ss, all of it within timeout_ms. Returns
 * EXIT_OK, EXIT_FAIL (network) or EXIT_LOCAL; the reason is on stderr. */
static int tcp_echo(const struct sockaddr_storage *ss, socklen_t len, long timeout_ms)
{
	char what[80], token[96], buf[128];
	size_t tlen, got = 0;
	int64_t deadline;
	bool local;
	int fd;

	addr_str(ss, what, sizeof(what));
	deadline = now_us() + timeout_ms * 1000;

	fd = tcp_connect(ss, len, deadline, what, &local);
	if (fd < 0)
		return local ? EXIT_LOCAL : EXIT_FAIL;

	make_token(token, sizeof(token), "tcp");
	tlen = strlen(token);
	if (send(fd, token, tlen, MSG_NOSIGNAL) != (ssize_t)tlen) {
		errx_msg("send to %s failed: %s", what, neterr(errno));
		close(fd);
		return EXIT_FAIL;
	}
	while (got < tlen) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int ms = remaining_ms(deadline);
		int rc = ms ? poll(&p, 1, ms) : 0;
		ssize_t r;

		if (rc < 0 && errno == EINTR)
			continue;
		if (rc <= 0) {
			errx_msg("%s: timeout waiting for the echo (%zu of %zu bytes back)",
				 what, got, tlen);
			close(fd);
			return EXIT_FAIL;
		}
		r = recv(fd, buf + got, sizeof(buf) - got, 0);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r < 0) {
			errx_msg("%s: receive failed: %s", what, neterr(errno));
			close(fd);
			return EXIT_FAIL;
		}
		if (r == 0) {
			errx_msg("%s: connection closed by peer before the echo (%zu of %zu bytes back)",
				 what, got, tlen);
			close(fd);
			return EXIT_FAIL;
		}
		got += (size_t)r;
	}
	close(fd);
	if (got != tlen || memcmp(buf, token, tlen)) {
		errx_msg("%s: echo does not match what was sent", what);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

static int udp_echo(const struct sockaddr_storage *ss, socklen_t len, long timeout_ms,
		    long resend_ms);

/* ---- who ---------------------------------------------------------------- */

/* A --who request is a token of kind "who"; the server answers with the
 * request line (without its newline), " server=NAME client=ADDR:PORT\n". */
#define WHO_PREFIX "sluice-probe who "

static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

		return x->sin_addr.s_addr == y->sin_addr.s_addr && x->sin_port == y->sin_port;
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

		return !memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) &&
		       x->sin6_port == y->sin6_port;
	}
	return false;
}

/* Is buf (len bytes) the answer to token? Prints the report line if so. */
static bool who_answer(const char *token, const char *buf, size_t len,
		       const struct sockaddr_storage *peer)
{
	size_t tlen = strlen(token) - 1; /* without the newline */
	char p[80];

	if (len <= tlen + 1 || memcmp(buf, token, tlen) || buf[tlen] != ' ' || buf[len - 1] != '\n' ||
	    memchr(buf, '\n', len - 1))
		return false;
	printf("peer=%s %.*s\n", addr_str(peer, p, sizeof(p)), (int)(len - tlen - 2), buf + tlen + 1);
	fflush(stdout);
	return true;
}

/* tcp --who: connect, ask, print who answered. */
static int tcp_who(const struct sockaddr_storage *ss, socklen_t len, long timeout_ms)
{
	char what[80], token[96], buf[512];
	struct sockaddr_storage peer;
	socklen_t plen = sizeof(peer);
	int64_t deadline = now_us() + timeout_ms * 1000;
	size_t tlen, got = 0;
	bool local;
	int fd;

	addr_str(ss, what, sizeof(what));
	fd = tcp_connect(ss, len, deadline, what, &local);
	if (fd < 0)
		return local ? EXIT_LOCAL : EXIT_FAIL;
	if (getpeername(fd, (struct sockaddr *)&peer, &plen) < 0) {
		errx_msg("%s: getpeername: %s", what, neterr(errno));
		close(fd);
		return EXIT_FAIL;
	}
	make_token(token, sizeof(token), "who");
	tlen = strlen(token);
	if (send(fd, token, tlen, MSG_NOSIGNAL) != (ssize_t)tlen) {
		errx_msg("send to %s failed: %s", what, neterr(errno));
		close(fd);
		return EXIT_FAIL;
	}
	while (!got || buf[got - 1] != '\n') {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int ms = remaining_ms(deadline);
		int rc = ms ? poll(&pfd, 1, ms) : 0;
		ssize_t r;

		if (rc < 0 && errno == EINTR)
			continue;
		if (rc <= 0) {
			errx_msg("%s: timeout waiting for the answer", what);
			close(fd);
			return EXIT_FAIL;
		}
		r = recv(fd, buf + got, sizeof(buf) - got, 0);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r <= 0 || got + (size_t)r == sizeof(buf)) {
			errx_msg("%s: %s before the answer", what,
				 r < 0 ? neterr(errno) : r == 0 ? "connection closed" : "too much data");
			close(fd);
			return EXIT_FAIL;
		}
		got += (size_t)r;
	}
	close(fd);
	if (!who_answer(token, buf, got, &peer)) {
		errx_msg("%s: not an answer to --who (an old sluice-probe serve?)", what);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

/* udp --who: an unconnected socket, so that an answer from any address
 * arrives and its source is reported. --connected: a connected one, and
 * the peer reported is getpeername()'s (the source must still be HOST). */
static int udp_who(const struct sockaddr_storage *ss, socklen_t len, long timeout_ms,
		   bool connected)
{
	char what[80], token[96], buf[2048], p[80];
	int64_t deadline = now_us() + timeout_ms * 1000, next_send = 0;
	int fd, sent = 0;
	size_t tlen;

	addr_str(ss, what, sizeof(what));
	fd = socket(ss->ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		errx_msg("socket: %s", strerror(errno));
		return EXIT_LOCAL;
	}
	if (connected && connect(fd, (const struct sockaddr *)ss, len) < 0) {
		errx_msg("connect to %s failed: %s", what, neterr(errno));
		close(fd);
		return EXIT_FAIL;
	}
	make_token(token, sizeof(token), "who");
	tlen = strlen(token);
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);
		struct sockaddr_storage from;
		socklen_t flen = sizeof(from);
		int64_t now = now_us();
		ssize_t r;
		int ms;

		if (now >= deadline) {
			errx_msg("%s: timeout: no answer after %d datagram(s)", what, sent);
			break;
		}
		if (now >= next_send) {
			if (connected ? send(fd, token, tlen, 0) < 0
				      : sendto(fd, token, tlen, 0, (const struct sockaddr *)ss, len) < 0) {
				errx_msg("send to %s failed: %s", what, neterr(errno));
				break;
			}
			sent++;
			next_send = now + 250 * 1000;
		}
		ms = remaining_ms(next_send < deadline ? next_send : deadline);
		if (poll(&pfd, 1, ms ? ms : 1) <= 0)
			continue;
		r = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);
		if (r < 0)
			continue;
		if (connected && getpeername(fd, (struct sockaddr *)&peer, &plen) < 0) {
			errx_msg("%s: getpeername: %s", what, neterr(errno));
			break;
		}
		if (!who_answer(token, buf, (size_t)r, connected ? &peer : &from))
			continue;
		close(fd);
		if (!same_addr(&from, ss)) {
			errx_msg("%s: the answer came from %s", what, addr_str(&from, p, sizeof(p)));
			return EXIT_FAIL;
		}
		return EXIT_OK;
	}
	close(fd);
	return EXIT_FAIL;
}

/* tcp|udp HOST PORT [--timeout MS] [--who]: one echo round trip. */
static int cmd_echo(int argc, char **argv, int type)
{
	const char *name = type == SOCK_STREAM ? "tcp" : "udp";
	struct opts o;
	struct sockaddr_storage ss;
	socklen_t len;
	int port;

	if (parse_opts(argc, argv, type == SOCK_DGRAM ? "twk" : "tw", 2, &o) || o.npos != 2) {
		if (o.npos != 2)
			errx_msg("usage: %s HOST PORT [--timeout MS] [--who]%s", name,
				 type == SOCK_DGRAM ? " [--connected]" : "");
		return EXIT_USAGE;
	}
	if ((port = parse_port(o.pos[1])) < 0)
		return EXIT_USAGE;
	if (o.timeout_ms < 0)
		o.timeout_ms = DEFAULT_TIMEOUT_MS;
	if (resolve(o.pos[0], port, type, &ss, &len))
		return EXIT_LOCAL;
	if (o.who)
		return type == SOCK_STREAM ? tcp_who(&ss, len, o.timeout_ms)
					   : udp_who(&ss, len, o.timeout_ms, o.connected);
	return type == SOCK_STREAM ? tcp_echo(&ss, len, o.timeout_ms)
				   : udp_echo(&ss, len, o.timeout_ms, 250);
}

static int cmd_tcp(int argc, char **argv)
{
	return cmd_echo(argc, argv, SOCK_STREAM);
}

/* ---- udp ---------------------------------------------------------------- */

/* One UDP echo round trip to ss within timeout_ms, the datagram resent every
 * resend_ms until the echo comes back. Returns like tcp_echo. */
static int udp_echo(const struct sockaddr_storage *ss, socklen_t len, long timeout_ms,
		    long resend_ms)
{
	char what[80], token[96], buf[2048];
	size_t tlen;
	int64_t deadline, next_send = 0;
	int fd, err, sent = 0, wrong = 0;

	addr_str(ss, what, sizeof(what));
	deadline = now_us() + timeout_ms * 1000;

	fd = socket(ss->ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		errx_msg("socket: %s", strerror(errno));
		return EXIT_LOCAL;
	}
	/* Connected: only the peer's datagrams arrive, and ICMP errors
	 * (port unreachable) surface as ECONNREFUSED. */
	if (connect(fd, (const struct sockaddr *)ss, len) < 0) {
		err = errno;
		errx_msg("connect to %s failed: %s", what, neterr(err));
		close(fd);
		return err == ENETUNREACH || err == EHOSTUNREACH ? EXIT_FAIL : EXIT_LOCAL;
	}
	make_token(token, sizeof(token), "udp");
	tlen = strlen(token);

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int64_t now = now_us();
		int ms, rc;
		ssize_t r;

		if (now >= deadline) {
			errx_msg("%s: timeout: no echo after %d datagram(s)%s", what, sent,
				 wrong ? " (only wrong replies)" : "");
			break;
		}
		if (now >= next_send) {
			/* A pending ICMP error (port unreachable) surfaces here
			 * as ECONNREFUSED too. */
			if (send(fd, token, tlen, 0) < 0) {
				errx_msg("send to %s failed: %s", what, neterr(errno));
				break;
			}
			sent++;
			next_send = now + resend_ms * 1000;
		}
		ms = remaining_ms(next_send < deadline ? next_send : deadline);
		rc = poll(&p, 1, ms ? ms : 1);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc <= 0)
			continue;
		r = recv(fd, buf, sizeof(buf), 0);
		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			errx_msg("%s: %s", what, neterr(errno));
			break;
		}
		if ((size_t)r == tlen && !memcmp(buf, token, tlen)) {
			close(fd);
			return EXIT_OK;
		}
		wrong++;
	}
	close(fd);
	return EXIT_FAIL;
}

static int cmd_udp(int argc, char **argv)
{
	return cmd_echo(argc, argv, SOCK_DGRAM);
}

/* ---- stream ------------------------------------------------------------- */

struct stream_state {
	int64_t *sent_at;       /* send time of message i */
	size_t cap;
	uint64_t sent, echoed;
	int64_t max_rtt;
	uint64_t errors;
	int64_t overdue;        /* message already counted as overdue, or -1 */
	unsigned late_reports;  /* stderr lines about late echoes so far */
	bool broken;
	char rbuf[4096];
	size_t rlen;
	char tag[48];
};

static int stream_send(int fd, struct stream_state *st, const char *what)
{
	char msg[128];
	int n;

	if (st->sent == st->cap) {
		size_t ncap = st->cap ? st->cap * 2 : 1024;
		int64_t *p = realloc(st->sent_at, ncap * sizeof(*p));

		if (!p) {
			errx_msg("out of memory");
			return -1;
		}
		st->sent_at = p;
		st->cap = ncap;
	}
	n = snprintf(msg, sizeof(msg), "%" PRIu64 " %s\n", st->sent, st->tag);
	st->sent_at[st->sent] = now_us();
	/* Messages are tiny; a blocking socket would only block if the peer
	 * stopped reading for a long time, which the echo deadline catches. */
	for (int off = 0; off < n;) {
		ssize_t w = send(fd, msg + off, (size_t)(n - off), MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };

			if (poll(&p, 1, 2000) <= 0) {
				errx_msg("%s: send blocked for 2 s at message %" PRIu64,
					 what, st->sent);
				st->errors++;
				st->broken = true;
				return -1;
			}
			continue;
		}
		if (w < 0) {
			errx_msg("%s: send of message %" PRIu64 " failed: %s", what,
				 st->sent, neterr(errno));
			st->errors++;
			st->broken = true;
			return -1;
		}
		off += (int)w;
	}
	st->sent++;
	return 0;
}

/* Read what is available and check complete lines. -1 when broken. */
static int stream_recv(int fd, struct stream_state *st, const char *what)
{
	ssize_t r = recv(fd, st->rbuf + st->rlen, sizeof(st->rbuf) - st->rlen, 0);
	char *line, *nl;

	if (r < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (r < 0) {
		errx_msg("%s: connection broke after %" PRIu64 " echoes: %s", what,
			 st->echoed, neterr(errno));
		st->errors++;
		st->broken = true;
		return -1;
	}
	if (r == 0) {
		errx_msg("%s: connection closed by peer after %" PRIu64 " echoes", what,
			 st->echoed);
		st->errors++;
		st->broken = true;
		return -1;
	}
	st->rlen += (size_t)r;
	line = st->rbuf;
	while ((nl = memchr(line, '\n', st->rlen - (size_t)(line - st->rbuf)))) {
		char expect[128];
		int n;

		*nl = '\0';
		n = snprintf(expect, sizeof(expect), "%" PRIu64 " %s", st->echoed, st->tag);
		if (st->echoed >= st->sent || (size_t)(nl - line) != (size_t)n ||
		    memcmp(line, expect, (size_t)n)) {
			errx_msg("%s: unexpected echo '%.60s' (expected message %" PRIu64 ")",
				 what, line, st->echoed);
			st->errors++;
			st->broken = true;
			return -1;
		} else {
			int64_t rtt = now_us() - st->sent_at[st->echoed];

			if (rtt > st->max_rtt)
				st->max_rtt = rtt;
			/* Late echo: one error per message (it may already
			 * have been counted as overdue while we waited). */
			if (rtt > STREAM_ECHO_LIMIT_US && st->overdue != (int64_t)st->echoed) {
				if (st->late_reports++ < 5)
					errx_msg("%s: echo of message %" PRIu64 " took %" PRId64 " ms",
						 what, st->echoed, rtt / 1000);
				st->errors++;
			}
			st->echoed++;
		}
		line = nl + 1;
	}
	st->rlen -= (size_t)(line - st->rbuf);
	memmove(st->rbuf, line, st->rlen);
	if (st->rlen == sizeof(st->rbuf)) {
		errx_msg("%s: garbage from peer (line too long)", what);
		st->errors++;
		st->broken = true;
		return -1;
	}
	return 0;
}

static int cmd_stream(int argc, char **argv)
{
	struct opts o;
	struct sockaddr_storage ss;
	socklen_t len;
	char what[80];
	struct stream_state st = { 0 };
	int64_t start, end, next_send, interval;
	bool local;
	int port, fd, rc;

	if (parse_opts(argc, argv, "tsi", 2, &o) || o.npos != 2 || o.seconds < 0) {
		if (o.npos != 2 || o.seconds < 0)
			errx_msg("usage: stream HOST PORT --seconds N [--interval-ms M] [--timeout MS]");
		return EXIT_USAGE;
	}
	if ((port = parse_port(o.pos[1])) < 0)
		return EXIT_USAGE;
	if (o.timeout_ms < 0)
		o.timeout_ms = DEFAULT_TIMEOUT_MS;
	interval = (o.interval_ms < 0 ? 50 : o.interval_ms) * 1000;
	if (resolve(o.pos[0], port, SOCK_STREAM, &ss, &len))
		return EXIT_LOCAL;
	addr_str(&ss, what, sizeof(what));
	fd = tcp_connect(&ss, len, now_us() + o.timeout_ms * 1000, what, &local);
	if (fd < 0) {
		printf("{\"messages\":0,\"echoed\":0,\"max_rtt_us\":0,\"errors\":1,\"broken\":true}\n");
		fflush(stdout);
		return local ? EXIT_LOCAL : EXIT_FAIL;
	}
	st.overdue = -1;
	make_token(st.tag, sizeof(st.tag), "stream");
	st.tag[strcspn(st.tag, "\n")] = '\0';

	start = now_us();
	end = start + o.seconds * 1000000;
	next_send = start;
	for (;;) {
		int64_t now = now_us(), wake;
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (now >= end && st.echoed == st.sent)
			break;
		/* Outstanding echo older than the limit: count it once, keep
		 * waiting (it may still come, late). */
		if (st.echoed < st.sent &&
		    now - st.sent_at[st.echoed] > STREAM_ECHO_LIMIT_US &&
		    st.overdue != (int64_t)st.echoed) {
			if (st.late_reports++ < 5)
				errx_msg("%s: no echo of message %" PRIu64 " within 2 s", what,
					 st.echoed);
			st.errors++;
			st.overdue = (int64_t)st.echoed;
		}
		/* After the sending period, wait at most 2 s for stragglers. */
		if (now >= end + STREAM_ECHO_LIMIT_US) {
			errx_msg("%s: %" PRIu64 " message(s) never echoed", what,
				 st.sent - st.echoed);
			if (st.overdue != (int64_t)st.echoed)
				st.errors++;
			break;
		}
		if (now < end && now >= next_send) {
			if (stream_send(fd, &st, what))
				break;
			next_send += interval;
			if (next_send < now)  /* we fell behind: do not burst */
				next_send = now + interval;
			continue;
		}
		wake = now < end ? next_send : end + STREAM_ECHO_LIMIT_US;
		if (st.echoed < st.sent && st.sent_at[st.echoed] + STREAM_ECHO_LIMIT_US + 1000 < wake)
			wake = st.sent_at[st.echoed] + STREAM_ECHO_LIMIT_US + 1000;
		rc = poll(&p, 1, remaining_ms(wake));
		if (rc < 0 && errno != EINTR) {
			errx_msg("poll: %s", strerror(errno));
			st.errors++;
			break;
		}
		if (rc > 0 && stream_recv(fd, &st, what))
			break;
	}
	close(fd);
	if (st.late_reports > 5)
		errx_msg("%s: %u late echo(es) in all", what, st.late_reports);
	printf("{\"messages\":%" PRIu64 ",\"echoed\":%" PRIu64 ",\"max_rtt_us\":%" PRId64
	       ",\"errors\":%" PRIu64 ",\"broken\":%s,\"seconds\":%.3f}\n",
	       st.sent, st.echoed, st.max_rtt, st.errors, st.broken ? "true" : "false",
	       (double)(now_us() - start) / 1e6);
	fflush(stdout);
	free(st.sent_at);
	return st.errors || st.broken || st.echoed != st.sent ? EXIT_FAIL : EXIT_OK;
}

/* ---- ping --------------------------------------------------------------- */

static uint16_t icmp_cksum(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t sum = 0;

	for (; len > 1; p += 2, len -= 2)
		sum += (uint32_t)(p[0] << 8 | p[1]);
	if (len)
		sum += (uint32_t)(p[0] << 8);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((uint16_t)~sum);
}

static int cmd_ping(int argc, char **argv)
{
	struct opts o;
	struct sockaddr_in dst = { .sin_family = AF_INET };
	struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_RAW }, *res;
	char dstr[INET_ADDRSTRLEN];
	bool raw = true;
	uint16_t ident;
	int fd, rc, received = 0, errors = 0;
	long interval_ms;

	if (parse_opts(argc, argv, "tci", 1, &o) || o.npos != 1) {
		if (o.npos != 1)
			errx_msg("usage: ping HOST [--count N] [--timeout MS] [--interval-ms M]");
		return EXIT_USAGE;
	}
	if (o.count < 0)
		o.count = 3;
	if (o.timeout_ms < 0)
		o.timeout_ms = 1000;
	interval_ms = o.interval_ms < 0 ? 200 : o.interval_ms;
	hints.ai_protocol = IPPROTO_ICMP;
	rc = getaddrinfo(o.pos[0], NULL, &hints, &res);
	if (rc) {
		errx_msg("cannot resolve '%s' to an IPv4 address: %s", o.pos[0],
			 gai_strerror(rc));
		return EXIT_LOCAL;
	}
	dst.sin_addr = ((struct sockaddr_in *)res->ai_addr)->sin_addr;
	freeaddrinfo(res);
	inet_ntop(AF_INET, &dst.sin_addr, dstr, sizeof(dstr));

	fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
	if (fd < 0 && (errno == EPERM || errno == EACCES)) {
		raw = false;
		fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_ICMP);
		if (fd < 0) {
			errx_msg("ping needs CAP_NET_RAW or net.ipv4.ping_group_range covering gid %d: %s",
				 (int)getgid(), strerror(errno));
			return EXIT_LOCAL;
		}
	} else if (fd < 0) {
		errx_msg("raw ICMP socket: %s", strerror(errno));
		return EXIT_LOCAL;
	}
	/* Raw sockets see every ICMP packet; the kernel overwrites the id of
	 * datagram sockets with their "port" and filters replies itself. */
	ident = (uint16_t)(getpid() ^ (now_us() >> 10));

	for (long seq = 1; seq <= o.count; seq++) {
		struct {
			struct icmphdr h;
			char payload[40];
		} req;
		int64_t sent_at = now_us(), deadline = sent_at + o.timeout_ms * 1000;
		bool got = false;

		memset(&req, 0, sizeof(req));
		req.h.type = ICMP_ECHO;
		req.h.un.echo.id = htons(ident);
		req.h.un.echo.sequence = htons((uint16_t)seq);
		snprintf(req.payload, sizeof(req.payload), "sluice-probe %d", (int)seq);
		req.h.checksum = icmp_cksum(&req, sizeof(req));
		if (sendto(fd, &req, sizeof(req), 0, (struct sockaddr *)&dst, sizeof(dst)) < 0) {
			errx_msg("icmp_seq=%ld to %s: send failed: %s", seq, dstr, neterr(errno));
			errors++;
		} else {
			while (!got) {
				struct pollfd p = { .fd = fd, .events = POLLIN };
				uint8_t buf[1500];
				struct sockaddr_in from;
				socklen_t flen = sizeof(from);
				const struct icmphdr *h;
				ssize_t r;
				size_t off = 0;
				int ms = remaining_ms(deadline);

				if (!ms || poll(&p, 1, ms) <= 0) {
					if (ms && errno == EINTR)
						continue;
					break;
				}
				r = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT,
					     (struct sockaddr *)&from, &flen);
				if (r < 0)
					continue;
				if (raw) {
					const struct iphdr *ip = (const void *)buf;

					if ((size_t)r < sizeof(*ip))
						continue;
					off = (size_t)ip->ihl * 4;
				}
				if ((size_t)r < off + sizeof(*h) ||
				    from.sin_addr.s_addr != dst.sin_addr.s_addr)
					continue;
				h = (const void *)(buf + off);
				if (h->type != ICMP_ECHOREPLY ||
				    ntohs(h->un.echo.sequence) != (uint16_t)seq ||
				    (raw && ntohs(h->un.echo.id) != ident))
					continue;
				got = true;
				received++;
				printf("reply from %s: icmp_seq=%ld time=%.3f ms\n", dstr, seq,
				       (double)(now_us() - sent_at) / 1000.0);
				fflush(stdout);
			}
			if (!got)
				errx_msg("icmp_seq=%ld: no reply from %s within %ld ms", seq, dstr,
					 o.timeout_ms);
		}
		if (seq < o.count) {
			int64_t next = sent_at + interval_ms * 1000;
			int ms = remaining_ms(next);

			if (ms)
				poll(NULL, 0, ms);
		}
	}
	close(fd);
	printf("%s: %ld sent, %d received\n", dstr, o.count, received);
	fflush(stdout);
	(void)errors;
	if (!received) {
		errx_msg("no ICMP echo reply from %s", dstr);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

/* ---- serve -------------------------------------------------------------- */

static const char *serve_name = "sluice-probe"; /* serve --name */

/* The answer to the --who request req (len bytes, ending in a newline)
 * from client, into out. Returns its length. */
static size_t who_reply(const char *req, size_t len, const struct sockaddr_storage *client,
			char *out, size_t outlen)
{
	char c[80];
	int n = snprintf(out, outlen, "%.*s server=%s client=%s\n", (int)(len - 1), req, serve_name,
			 addr_str(client, c, sizeof(c)));

	return n < 0 ? 0 : (size_t)n < outlen ? (size_t)n : outlen - 1;
}

/* A --who request at the start of a TCP connection: read it whole (it is
 * one short line) and answer it. buf holds the r bytes read so far. Returns
 * how many bytes at the start of buf are left to echo (r when the
 * connection does not start with a request), -1 on error. */
static ssize_t tcp_who_serve(int fd, char *buf, size_t cap, ssize_t r)
{
	size_t plen = strlen(WHO_PREFIX), n = (size_t)r;
	struct sockaddr_storage peer;
	socklen_t len = sizeof(peer);
	char out[512];
	char *nl;

	if (memcmp(buf, WHO_PREFIX, n < plen ? n : plen))
		return r;
	while (!(nl = memchr(buf, '\n', n)) && n < 256 && n < cap) {
		ssize_t m = recv(fd, buf + n, cap - n, 0);

		if (m < 0 && errno == EINTR)
			continue;
		if (m <= 0)
			return -1;
		n += (size_t)m;
	}
	if (!nl || n < plen || memcmp(buf, WHO_PREFIX, plen) ||
	    getpeername(fd, (struct sockaddr *)&peer, &len) < 0)
		return -1;
	len = (socklen_t)who_reply(buf, (size_t)(nl - buf) + 1, &peer, out, sizeof(out));
	if (send(fd, out, len, MSG_NOSIGNAL) != (ssize_t)len)
		return -1;
	/* Whatever came after the request is echoed as usual. */
	n -= (size_t)(nl + 1 - buf);
	memmove(buf, nl + 1, n);
	return (ssize_t)n;
}

static void *tcp_conn_thread(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[16384];
	bool first = true;

	for (;;) {
		ssize_t r = recv(fd, buf, sizeof(buf), 0), off = 0;

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (first) {
			first = false;
			r = tcp_who_serve(fd, buf, sizeof(buf), r);
			if (r < 0)
				break;
		}
		while (off < r) {
			ssize_t w = send(fd, buf + off, (size_t)(r - off), MSG_NOSIGNAL);

			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				goto out;
			off += w;
		}
	}
out:
	close(fd);
	return NULL;
}

static void spawn_detached(void *(*fn)(void *), void *arg, bool fatal)
{
	pthread_t t;
	pthread_attr_t a;
	int rc;

	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&a, 256 * 1024);
	rc = pthread_create(&t, &a, fn, arg);
	pthread_attr_destroy(&a);
	if (rc) {
		errx_msg("pthread_create: %s", strerror(rc));
		if (fatal)
			exit(EXIT_LOCAL);
		if (fn == tcp_conn_thread)
			close((int)(intptr_t)arg);
	}
}

static void *tcp_accept_thread(void *arg)
{
	int lfd = (int)(intptr_t)arg;

	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				poll(NULL, 0, 50);
				continue;
			}
			errx_msg("accept: %s", strerror(errno));
			exit(EXIT_LOCAL);
		}
		int one = 1;

		setsockopt(fd, IPPROTO_TCP, 1 /* TCP_NODELAY */, &one, sizeof(one));
		spawn_detached(tcp_conn_thread, (void *)(intptr_t)fd, false);
	}
	return NULL;
}

/* UDP: reply from the address the datagram was sent to (IP_PKTINFO), so
 * multi-homed servers and translated addresses answer coherently. */
static void *udp_thread(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[65536];
	union {
		char buf[256];
		struct cmsghdr align;
	} ctl;

	for (;;) {
		struct sockaddr_storage from;
		struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
		struct msghdr m = {
			.msg_name = &from, .msg_namelen = sizeof(from),
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf),
		};
		union {
			char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
			struct cmsghdr align;
		} out;
		struct cmsghdr *c;
		ssize_t r = recvmsg(fd, &m, 0);

		if (r < 0) {
			if (errno == EINTR || errno == ECONNREFUSED || errno == EHOSTUNREACH ||
			    errno == ENETUNREACH)
				continue;
			errx_msg("udp recvmsg: %s", strerror(errno));
			exit(EXIT_LOCAL);
		}
		iov.iov_len = (size_t)r;
		if ((size_t)r > strlen(WHO_PREFIX) && buf[r - 1] == '\n' &&
		    !memcmp(buf, WHO_PREFIX, strlen(WHO_PREFIX))) {
			/* The answer fits where the request was: it is short. */
			char req[256];

			if ((size_t)r < sizeof(req)) {
				memcpy(req, buf, (size_t)r);
				iov.iov_len = who_reply(req, (size_t)r, &from, buf, sizeof(buf));
			}
		}
		memset(&out, 0, sizeof(out));
		for (c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
			struct cmsghdr *oc = (struct cmsghdr *)out.buf;

			if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
				struct in_pktinfo pi;

				memcpy(&pi, CMSG_DATA(c), sizeof(pi));
				pi.ipi_ifindex = 0;
				pi.ipi_spec_dst = pi.ipi_addr;
				oc->cmsg_level = IPPROTO_IP;
				oc->cmsg_type = IP_PKTINFO;
				oc->cmsg_len = CMSG_LEN(sizeof(pi));
				memcpy(CMSG_DATA(oc), &pi, sizeof(pi));
				break;
			}
			if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
				struct in6_pktinfo pi;

				memcpy(&pi, CMSG_DATA(c), sizeof(pi));
				pi.ipi6_ifindex = 0;
				oc->cmsg_level = IPPROTO_IPV6;
				oc->cmsg_type = IPV6_PKTINFO;
				oc->cmsg_len = CMSG_LEN(sizeof(pi));
				memcpy(CMSG_DATA(oc), &pi, sizeof(pi));
				break;
			}
		}
		if (((struct cmsghdr *)out.buf)->cmsg_len) {
			m.msg_control = out.buf;
			m.msg_controllen = CMSG_SPACE(((struct cmsghdr *)out.buf)->cmsg_level == IPPROTO_IP
						      ? sizeof(struct in_pktinfo)
						      : sizeof(struct in6_pktinfo));
		} else {
			m.msg_control = NULL;
			m.msg_controllen = 0;
		}
		m.msg_flags = 0;
		if (sendmsg(fd, &m, 0) < 0) {
			/* Retry without source selection (e.g. address gone). */
			m.msg_control = NULL;
			m.msg_controllen = 0;
			if (sendmsg(fd, &m, 0) < 0 && errno != EINTR)
				errx_msg("udp reply: %s", strerror(errno));
		}
	}
	return NULL;
}

/* Open one listening/bound socket. Returns fd, -1 on error, -2 when the
 * family is unavailable here (IPv6 disabled). */
static int serve_socket(int family, int type, int port)
{
	int one = 1, fd;
	struct sockaddr_storage ss = { 0 };
	socklen_t len;

	fd = socket(family, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return family == AF_INET6 && errno == EAFNOSUPPORT ? -2 : -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == AF_INET6) {
		struct sockaddr_in6 *s6 = (void *)&ss;

		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		s6->sin6_family = AF_INET6;
		s6->sin6_addr = in6addr_any;
		s6->sin6_port = htons((uint16_t)port);
		len = sizeof(*s6);
		if (type == SOCK_DGRAM)
			setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one));
	} else {
		struct sockaddr_in *s4 = (void *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(INADDR_ANY);
		s4->sin_port = htons((uint16_t)port);
		len = sizeof(*s4);
		if (type == SOCK_DGRAM)
			setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
	}
	if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
		int e = errno;

		close(fd);
		/* IPv6 disabled by sysctl: no usable address to bind. */
		if (family == AF_INET6 && (e == EADDRNOTAVAIL || e == EAFNOSUPPORT))
			return -2;
		errno = e;
		return -1;
	}
	if (type == SOCK_STREAM && listen(fd, 1024) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int cmd_serve(int argc, char **argv)
{
	struct opts o;
	static const int families[] = { AF_INET, AF_INET6 };

	if (parse_opts(argc, argv, "TUn", 0, &o))
		return EXIT_USAGE;
	if (!o.ntcp && !o.nudp) {
		errx_msg("usage: serve [--tcp PORT]... [--udp PORT]... [--name NAME] (at least one port)");
		return EXIT_USAGE;
	}
	if (o.name)
		serve_name = o.name;
	for (int proto = 0; proto < 2; proto++) {
		int n = proto ? o.nudp : o.ntcp;
		int *ports = proto ? o.udp_ports : o.tcp_ports;
		int type = proto ? SOCK_DGRAM : SOCK_STREAM;

		for (int i = 0; i < n; i++) {
			for (size_t f = 0; f < 2; f++) {
				int fd = serve_socket(families[f], type, ports[i]);

				if (fd == -2)
					continue;
				if (fd < 0) {
					errx_msg("%s port %d (%s): %s", proto ? "udp" : "tcp",
						 ports[i], f ? "IPv6" : "IPv4", strerror(errno));
					return EXIT_LOCAL;
				}
				spawn_detached(proto ? udp_thread : tcp_accept_thread,
					       (void *)(intptr_t)fd, true);
			}
		}
	}
	printf("ready\n");
	fflush(stdout);
	for (;;)
		pause();
	return EXIT_OK;
}

/* ---- matrix ------------------------------------------------------------- */

/*
 * A reachability matrix (every pod to every pod, per port and protocol) is
 * hundreds of probes, and a denied one only ends at its timeout: one at a
 * time that is minutes, all at once it is about one timeout. A network
 * namespace is a property of the thread, so each worker enters the job's
 * namespace with setns() and then opens its socket, which stays in that
 * namespace whatever the thread does next.
 */

struct matrix_job {
	char *id;
	char *netns;		/* NULL: this process's namespace */
	bool udp;
	struct sockaddr_storage ss;
	socklen_t len;
};

struct matrix_run {
	struct matrix_job *jobs;
	size_t njobs;
	long timeout_ms;
	bool verbose;
	pthread_mutex_t lock;	/* next, errors and stdout */
	size_t next;
	size_t errors;
};

static void matrix_free(struct matrix_run *m)
{
	for (size_t i = 0; i < m->njobs; i++) {
		free(m->jobs[i].id);
		free(m->jobs[i].netns);
	}
	free(m->jobs);
}

/* Parse one job line into j. Returns 1 for a job, 0 for a line to skip,
 * -1 (reason printed) for a malformed one. */
static int matrix_parse_line(char *line, unsigned long lineno, struct matrix_job *j)
{
	char *f[6], *save = NULL, *tok;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&j->ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&j->ss;
	unsigned long port;
	int n = 0;

	for (tok = strtok_r(line, " \t\r\n", &save); tok && n < 6;
	     tok = strtok_r(NULL, " \t\r\n", &save))
		f[n++] = tok;
	if (n == 0 || f[0][0] == '#')
		return 0;
	if (n != 5) {
		errx_msg("stdin line %lu: expected 'ID NETNS_PATH PROTO DST_IP PORT', got %d%s field(s)",
			 lineno, n, n == 6 ? " or more" : "");
		return -1;
	}
	if (strcmp(f[2], "tcp") && strcmp(f[2], "udp")) {
		errx_msg("stdin line %lu: protocol '%s': expected tcp or udp", lineno, f[2]);
		return -1;
	}
	if (!parse_uint(f[4], 65535, &port) || port == 0) {
		errx_msg("stdin line %lu: invalid port '%s'", lineno, f[4]);
		return -1;
	}
	memset(j, 0, sizeof(*j));
	if (inet_pton(AF_INET, f[3], &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		j->len = sizeof(*s4);
	} else if (inet_pton(AF_INET6, f[3], &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		j->len = sizeof(*s6);
	} else {
		errx_msg("stdin line %lu: '%s' is not an IPv4 or IPv6 address", lineno, f[3]);
		return -1;
	}
	j->udp = !strcmp(f[2], "udp");
	j->id = strdup(f[0]);
	j->netns = strcmp(f[1], "-") ? strdup(f[1]) : NULL;
	if (!j->id || (strcmp(f[1], "-") && !j->netns)) {
		errx_msg("out of memory");
		free(j->id);
		free(j->netns);
		return -1;
	}
	return 1;
}

static int matrix_read(FILE *in, struct matrix_run *m)
{
	char *line = NULL;
	size_t cap = 0, alloc = 0;
	unsigned long lineno = 0;
	int rc = 0;

	while (getline(&line, &cap, in) >= 0) {
		struct matrix_job j;
		int r;

		lineno++;
		r = matrix_parse_line(line, lineno, &j);
		if (r < 0) {
			rc = -1;
			break;
		}
		if (r == 0)
			continue;
		if (m->njobs == alloc) {
			size_t nalloc = alloc ? alloc * 2 : 256;
			struct matrix_job *p = realloc(m->jobs, nalloc * sizeof(*p));

			if (!p) {
				errx_msg("out of memory");
				free(j.id);
				free(j.netns);
				rc = -1;
				break;
			}
			m->jobs = p;
			alloc = nalloc;
		}
		m->jobs[m->njobs++] = j;
	}
	free(line);
	return rc;
}

/* Run one job on the calling thread: "ok", "fail" or "error". */
static const char *matrix_run_job(const struct matrix_job *j, long timeout_ms)
{
	int rc;

	if (j->netns) {
		int fd = open(j->netns, O_RDONLY | O_CLOEXEC);

		if (fd < 0) {
			errx_msg("cannot open network namespace %s: %s", j->netns,
				 strerror(errno));
			return "error";
		}
		if (setns(fd, CLONE_NEWNET) < 0) {
			errx_msg("cannot enter network namespace %s: %s%s", j->netns,
				 strerror(errno),
				 errno == EINVAL ? " (not a network namespace?)" : "");
			close(fd);
			return "error";
		}
		close(fd);
	}
	if (j->udp)
		rc = udp_echo(&j->ss, j->len, timeout_ms, MATRIX_UDP_RESEND_MS);
	else
		rc = tcp_echo(&j->ss, j->len, timeout_ms);
	return rc == EXIT_OK ? "ok" : rc == EXIT_FAIL ? "fail" : "error";
}

static void *matrix_worker(void *arg)
{
	struct matrix_run *m = arg;

	msg_quiet = !m->verbose;
	for (;;) {
		const struct matrix_job *j;
		const char *res;

		pthread_mutex_lock(&m->lock);
		j = m->next < m->njobs ? &m->jobs[m->next++] : NULL;
		pthread_mutex_unlock(&m->lock);
		if (!j)
			break;
		msg_tag = j->id;
		res = matrix_run_job(j, m->timeout_ms);
		/* Errors are always reported: they are the harness's problem,
		 * not the network's. */
		if (!strcmp(res, "error") && msg_quiet) {
			msg_quiet = false;
			errx_msg("could not run the job (rerun with --verbose for details)");
			msg_quiet = true;
		}
		pthread_mutex_lock(&m->lock);
		if (!strcmp(res, "error"))
			m->errors++;
		printf("%s %s\n", j->id, res);
		fflush(stdout);
		pthread_mutex_unlock(&m->lock);
	}
	return NULL;
}

static int cmd_matrix(int argc, char **argv)
{
	struct opts o;
	struct matrix_run m = { 0 };
	pthread_t *threads;
	size_t nthreads, started = 0;
	int rc = EXIT_OK;

	if (parse_opts(argc, argv, "tpv", 0, &o))
		return EXIT_USAGE;
	m.timeout_ms = o.timeout_ms < 0 ? MATRIX_TIMEOUT_MS : o.timeout_ms;
	m.verbose = o.verbose;
	if (matrix_read(stdin, &m)) {
		matrix_free(&m);
		return EXIT_USAGE;
	}
	if (m.njobs == 0) {
		matrix_free(&m);
		return EXIT_OK;
	}
	nthreads = (size_t)(o.parallel < 0 ? MATRIX_PARALLEL : o.parallel);
	if (nthreads > m.njobs)
		nthreads = m.njobs;
	threads = calloc(nthreads, sizeof(*threads));
	if (!threads) {
		errx_msg("out of memory");
		matrix_free(&m);
		return EXIT_LOCAL;
	}
	pthread_mutex_init(&m.lock, NULL);
	for (size_t i = 0; i < nthreads; i++) {
		pthread_attr_t a;
		int e;

		pthread_attr_init(&a);
		pthread_attr_setstacksize(&a, 256 * 1024);
		e = pthread_create(&threads[i], &a, matrix_worker, &m);
		pthread_attr_destroy(&a);
		if (e) {
			/* The threads already running still take every job. */
			errx_msg("pthread_create: %s (running on %zu thread(s))", strerror(e),
				 started);
			break;
		}
		started++;
	}
	if (started == 0)
		matrix_worker(&m); /* no thread could start: run the jobs on this one */
	for (size_t i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	if (m.errors) {
		errx_msg("%zu of %zu job(s) could not run", m.errors, m.njobs);
		rc = EXIT_LOCAL;
	}
	pthread_mutex_destroy(&m.lock);
	free(threads);
	matrix_free(&m);
	return rc;
}

int main(int argc, char **argv)
{
	const char *cmd;

	signal(SIGPIPE, SIG_IGN);
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	cmd = argv[1];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
		usage(stdout);
		return EXIT_OK;
	}
	argc -= 2;
	argv += 2;
	if (!strcmp(cmd, "serve"))
		return cmd_serve(argc, argv);
	if (!strcmp(cmd, "tcp"))
		return cmd_tcp(argc, argv);
	if (!strcmp(cmd, "udp"))
		return cmd_udp(argc, argv);
	if (!strcmp(cmd, "stream"))
		return cmd_stream(argc, argv);
	if (!strcmp(cmd, "ping"))
		return cmd_ping(argc, argv);
	if (!strcmp(cmd, "matrix"))
		return cmd_matrix(argc, argv);
	errx_msg("unknown command '%s' (try --help)", cmd);
	return EXIT_USAGE;
}
