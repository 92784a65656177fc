/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sluicectl run in-process against fixed answers: main.c is compiled into
 * the test as sluicectl_main, and api_call (lib/api.c, not linked) answers
 * from tests/unit/golden/cli/answers.json by the request's op, what and
 * (get prefilters) name.
 * ctl() runs one command line and keeps its exit status, stdout and stderr.
 */
#ifndef SLUICE_TEST_CLI_HARNESS_H
#define SLUICE_TEST_CLI_HARNESS_H

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "api.h"

#define main sluicectl_main
#include "../../cli/main.c"
#undef main

#define ANSWERS "tests/unit/golden/cli/answers.json"

/* the fixed answers, by "op what" (or op); loaded once */
static json_t *answers;
/* the requests the commands sent, in order */
static json_t *requests;

int api_call(const char *socket_path, const json_t *req, json_t **resp, int timeout_ms,
	     char *err, size_t errlen)
{
	const char *op = json_string_value(json_object_get(req, "op"));
	const char *what = json_string_value(json_object_get(req, "what"));
	const char *name = json_string_value(json_object_get(req, "name"));
	char key[256];
	json_t *a;

	(void)socket_path;
	(void)timeout_ms;
	json_array_append_new(requests, json_deep_copy(req));
	/* "get prefilters NAME": the agent's answer for one */
	snprintf(key, sizeof(key), "%s%s%s%s%s", op, what ? " " : "", what ? what : "",
		 name && strcmp(op, "describe") ? " " : "", name && strcmp(op, "describe") ? name : "");
	a = json_object_get(answers, key);
	if (!a) {
		snprintf(err, errlen, "cannot reach sluice-agent at test: no answer for '%s'", key);
		return -ECONNREFUSED;
	}
	*resp = json_pack("{s:b, s:O}", "ok", 1, "result", a);
	return 0;
}

struct ctl_run {
	int rc;
	char *out, *err;
};

static char *slurp(FILE *f)
{
	long n;
	char *s;

	fflush(f);
	n = ftell(f);
	s = calloc(1, (size_t)n + 1);
	rewind(f);
	if (s && n && fread(s, 1, (size_t)n, f) != (size_t)n)
		s[0] = '\0';
	fclose(f);
	return s;
}

/* Run sluicectl with the words of line (split at spaces; '_' stands for a
 * space inside a word). */
static struct ctl_run ctl(const char *line)
{
	char *copy = strdup(line), *argv[64], *save = NULL, *w;
	FILE *out = tmpfile(), *err = tmpfile();
	int argc = 0, o, e;
	struct ctl_run r;

	assert_non_null(copy);
	assert_non_null(out);
	assert_non_null(err);
	if (!answers) {
		json_error_t je;

		answers = json_load_file(ANSWERS, 0, &je);
		if (!answers)
			fail_msg("%s: %s at line %d", ANSWERS, je.text, je.line);
	}
	if (!requests)
		requests = json_array();
	json_array_clear(requests);
	argv[argc++] = "sluicectl";
	for (w = strtok_r(copy, " ", &save); w && argc < 63; w = strtok_r(NULL, " ", &save)) {
		for (char *p = w; *p; p++)
			if (*p == '_')
				*p = ' ';
		argv[argc++] = w;
	}
	argv[argc] = NULL;
	fflush(stdout);
	fflush(stderr);
	o = dup(1);
	e = dup(2);
	dup2(fileno(out), 1);
	dup2(fileno(err), 2);
	optind = 0;	/* getopt starts again */
	r.rc = sluicectl_main(argc, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(o, 1);
	dup2(e, 2);
	close(o);
	close(e);
	r.out = slurp(out);
	r.err = slurp(err);
	free(copy);
	return r;
}

static void ctl_free(struct ctl_run *r)
{
	free(r->out);
	free(r->err);
}

#endif
