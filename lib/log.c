// SPDX-License-Identifier: Apache-2.0
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "log.h"

enum log_level log_max_level = LOG_INFO;
/* Set once by log_init() before anything logs; read-only afterwards. */
static const char *log_prog = "sluice";

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void log_init(const char *prog, enum log_level max)
{
	log_prog = prog;
	log_max_level = max;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	struct timespec ts;
	struct tm tm;
	char stamp[32];
	va_list ap;

	if (lvl > log_max_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm);
	/* One locked stdio call per line: the agent logs from several threads. */
	flockfile(stderr);
	fprintf(stderr, "%s.%03ld %s %s: ", stamp, ts.tv_nsec / 1000000, log_prog, level_names[lvl]);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	funlockfile(stderr);
}
