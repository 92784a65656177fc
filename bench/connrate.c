// SPDX-License-Identifier: Apache-2.0
/*
 * TCP connections per second to an echo server: connect, send 8 bytes,
 * read them back, close; for --seconds, one connection at a time. Prints
 * the rate. Used by bench/policy.sh inside a pod's network namespace.
 * With --connect-p50 it also prints the median time connect() took, in
 * microseconds: the round trip of a flow's first packet (SYN, SYN-ACK),
 * the one a Service lookup or kube-proxy's chain walk is paid on
 * (bench/services.sh).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* One connection; *connect_us: how long connect() took. */
static int one(const struct sockaddr_in *sa, double *connect_us)
{
	double t0;

	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	/* A connection that gets no answer within a second counts as failed
	 * instead of holding the run in SYN retransmits for two minutes. */
	struct timeval tmo = { .tv_sec = 1 };
	char buf[8] = "sluice!";
	int fd, ret = -1;
	ssize_t n;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	/* Reset on close: no TIME_WAIT pile-up exhausting ports over a run. */
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tmo, sizeof(tmo));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tmo, sizeof(tmo));
	t0 = now();
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)))
		goto cleanup;
	*connect_us = (now() - t0) * 1e6;
	if (write(fd, buf, sizeof(buf)) != sizeof(buf))
		goto cleanup;
	n = read(fd, buf, sizeof(buf));
	ret = n == sizeof(buf) ? 0 : -1;
cleanup:
	close(fd);
	return ret;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	double seconds, start, end, us = 0, *lat = NULL;
	size_t nlat = 0, cap = 0;
	long ok = 0, failed = 0;
	int p50 = argc == 5 && !strcmp(argv[4], "--connect-p50");

	if ((argc != 4 && !p50) || inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1 ||
	    (seconds = atof(argv[3])) <= 0) {
		fprintf(stderr, "usage: bench-connrate IPV4 PORT SECONDS [--connect-p50]\n"
				"  TCP connect/echo/close, one at a time, for SECONDS; prints connections/s\n"
				"  --connect-p50: and the median connect() time in microseconds\n");
		return 2;
	}
	sa.sin_port = htons((unsigned short)atoi(argv[2]));
	start = now();
	end = start + seconds;
	while (now() < end) {
		if (one(&sa, &us)) {
			failed++;
			continue;
		}
		ok++;
		if (!p50)
			continue;
		if (nlat == cap) {
			double *g = realloc(lat, (cap = cap ? 2 * cap : 4096) * sizeof(*lat));

			if (!g) {
				fprintf(stderr, "bench-connrate: out of memory\n");
				free(lat);
				return 1;
			}
			lat = g;
		}
		lat[nlat++] = us;
	}
	end = now();
	if (p50) {
		qsort(lat, nlat, sizeof(*lat), cmp_double);
		printf("%.0f %.1f\n", (double)ok / (end - start), nlat ? lat[nlat / 2] : 0.0);
	} else {
		printf("%.0f\n", (double)ok / (end - start));
	}
	free(lat);
	if (failed)
		fprintf(stderr, "bench-connrate: %ld connections failed\n", failed);
	return failed > ok ? 1 : 0;
}
