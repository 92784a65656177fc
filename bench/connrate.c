// SPDX-License-Identifier: Apache-2.0
/*
 * TCP connections per second to an echo server: connect, send 8 bytes,
 * read them back, close; for --seconds, one connection at a time. Prints
 * the rate. Used by bench/policy.sh inside a pod's network namespace.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int one(const struct sockaddr_in *sa)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	char buf[8] = "sluice!";
	int fd, ret = -1;
	ssize_t n;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	/* Reset on close: no TIME_WAIT pile-up exhausting ports over a run. */
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)))
		goto cleanup;
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
	double seconds, start, end;
	long ok = 0, failed = 0;

	if (argc != 4 || inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1 ||
	    (seconds = atof(argv[3])) <= 0) {
		fprintf(stderr, "usage: bench-connrate IPV4 PORT SECONDS\n"
				"  TCP connect/echo/close, one at a time, for SECONDS; prints connections/s\n");
		return 2;
	}
	sa.sin_port = htons((unsigned short)atoi(argv[2]));
	start = now();
	end = start + seconds;
	while (now() < end) {
		if (one(&sa))
			failed++;
		else
			ok++;
	}
	printf("%.0f\n", (double)ok / (now() - start));
	if (failed)
		fprintf(stderr, "bench-connrate: %ld connections failed\n", failed);
	return failed > ok ? 1 : 0;
}
