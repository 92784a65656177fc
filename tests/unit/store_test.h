/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers of the unit tests that drive the object store (test_kube.c,
 * test_page.c, test_service.c, test_persist.c). Include after cmocka.h.
 */
#ifndef SLUICE_TEST_STORE_TEST_H
#define SLUICE_TEST_STORE_TEST_H

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "store.h"

/* A fresh directory from template (a mkdtemp pattern, rewritten in place),
 * and its removal: every store test's group setup and teardown. */
static inline int store_test_mkdir(char *template)
{
	return mkdtemp(template) ? 0 : -1;
}

static inline int store_test_rmdir(const char *dir)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

/* A test file's directory dir (from a mkdtemp pattern) and the group
 * setup and teardown that make and remove it. */
#define STORE_TEST_DIR(pattern)                                                             \
	static char dir[] = pattern;                                                        \
	static int setup(void **state)                                                      \
	{                                                                                   \
		(void)state;                                                                \
		return store_test_mkdir(dir);                                               \
	}                                                                                   \
	static int teardown(void **state)                                                   \
	{                                                                                   \
		(void)state;                                                                \
		return store_test_rmdir(dir);                                               \
	}

/* JSON written with ' for " so tests stay readable. */
static inline json_t *jt(const char *text)
{
	json_error_t e;
	char *t = strdup(text);
	json_t *j;

	assert_non_null(t);
	for (char *c = t; *c; c++)
		if (*c == '\'')
			*c = '"';
	j = json_loads(t, 0, &e);
	if (!j)
		fail_msg("bad test JSON (%s): %s", e.text, t);
	free(t);
	return j;
}

/* A new, empty store in parent/name. */
static inline struct store *store_in(const char *parent, const char *name)
{
	char sdir[600], err[512];
	struct store *s;

	snprintf(sdir, sizeof(sdir), "%s/%s", parent, name);
	assert_int_equal(mkdir(sdir, 0700), 0);
	assert_int_equal(store_open(&s, sdir, err, sizeof(err)), 0);
	return s;
}

#endif /* SLUICE_TEST_STORE_TEST_H */
