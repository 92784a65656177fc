/* SPDX-License-Identifier: Apache-2.0 */
/* The flow buffer's inside, shared by flowlog.c and flowlog_query.c. */
#ifndef SLUICE_FLOWLOG_INT_H
#define SLUICE_FLOWLOG_INT_H

#include <time.h>

#include <bpf/libbpf.h>

#include "flowlog.h"

struct pairs {
	struct flowlog_hist *v;
	size_t n, max;
	uint32_t *slot;		/* open addressing: index + 1, 0: empty */
	size_t nslots;
};

struct flowlog {
	struct flow_entry *ring;
	size_t cap;
	uint64_t next_seq;	/* the next entry's; entries hold [next_seq - used, next_seq) */
	size_t used;
	uint64_t received, overwritten, idle_ended, malformed, pairs_overflow;
	struct flow_resolver res;
	char node[256];
	uint64_t idle_ns;
	uint64_t next_scan_ns;	/* CLOCK_MONOTONIC */
	struct ring_buffer *rb;
	int flow4_fd, st_fd;
	struct pairs pods, nss;
	uint64_t by_verdict[FLOWLOG_VERDICTS];
	struct flowlog_pv_row *pv;	/* FLOWLOG_PV_MAX rows, npv used */
	size_t npv, pv_last;
	uint64_t pv_other[FLOWLOG_PV_N];
};

static inline uint64_t mono_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#endif /* SLUICE_FLOWLOG_INT_H */
