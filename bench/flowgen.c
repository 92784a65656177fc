// SPDX-License-Identifier: Apache-2.0
/*
 * New flows at a set rate, for bench/flows.sh: one UDP datagram per flow,
 * each to a destination port (and from a socket) no earlier datagram of
 * the run used, so that every datagram is a flow of its own for the
 * datapath (a START record each). Paced in 1 ms slots; prints how many it
 * sent and the rate it managed, which may fall short of RATE when the
 * sender's CPU cannot keep up (the figure to compare the records with is
 * the count sent).
 *
 *   bench-flowgen DST-IP RATE SECONDS
 *
 * Flows: SOCKETS source ports x the destination ports 1024..65535, in
 * that order, so a run of up to SOCKETS * 64512 flows never repeats one.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SOCKETS 64
#define PORT_FIRST 1024
#define PORTS (65536 - PORT_FIRST)

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(FILE *f, const char *argv0)
{
	fprintf(f, "usage: %s DST-IP RATE SECONDS\n"
		   "  one UDP datagram per new flow, RATE flows a second, for SECONDS\n", argv0);
}

int main(int argc, char **argv)
{
	struct sockaddr_in to = { .sin_family = AF_INET };
	int fds[SOCKETS], nfds = 0, ret = 1;
	unsigned long rate, sent = 0, total;
	double seconds, t0, t;
	char payload[8] = "sluice";

	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		usage(stdout, argv[0]);
		return 0;
	}
	if (argc != 4 || inet_pton(AF_INET, argv[1], &to.sin_addr) != 1 ||
	    !(rate = strtoul(argv[2], NULL, 10)) || (seconds = atof(argv[3])) <= 0) {
		usage(stderr, argv[0]);
		return 2;
	}
	total = (unsigned long)((double)rate * seconds);
	if (total > (unsigned long)SOCKETS * PORTS) {
		fprintf(stderr, "%s: %lu flows would repeat some: at most %lu\n", argv[0], total,
			(unsigned long)SOCKETS * PORTS);
		return 2;
	}
	for (; nfds < SOCKETS; nfds++) {
		fds[nfds] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (fds[nfds] < 0) {
			fprintf(stderr, "%s: socket: %s\n", argv[0], strerror(errno));
			goto cleanup;
		}
	}
	t0 = now();
	while (sent < total) {
		/* Due by now: rate * elapsed, at most one 1 ms slot ahead. */
		unsigned long due = (unsigned long)((now() - t0 + 0.001) * (double)rate);
		struct timespec slot = { 0, 1000000 };

		if (due > total)
			due = total;
		for (; sent < due; sent++) {
			to.sin_port = htons((unsigned short)(PORT_FIRST + sent % PORTS));
			/* A full socket buffer: the datagram is not sent, and
			 * not counted. */
			while (sendto(fds[sent / PORTS], payload, sizeof(payload), 0,
				      (struct sockaddr *)&to, sizeof(to)) < 0) {
				if (errno != ENOBUFS && errno != EAGAIN && errno != ECONNREFUSED) {
					fprintf(stderr, "%s: sendto: %s\n", argv[0], strerror(errno));
					goto cleanup;
				}
			}
		}
		if (sent < total)
			nanosleep(&slot, NULL);
	}
	t = now() - t0;
	printf("sent %lu flows in %.3f s: %.0f flows/s\n", sent, t, (double)sent / t);
	ret = 0;
cleanup:
	while (nfds > 0)
		close(fds[--nfds]);
	return ret;
}
