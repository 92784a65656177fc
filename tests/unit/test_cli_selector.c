// SPDX-License-Identifier: Apache-2.0
/* sluicectl -l: kubectl's label selector syntax (cli/lselector.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../cli/lselector.h"

/* Does text select labels (a JSON object text)? Fails the test when text
 * does not parse. */
static bool selects(const char *text, const char *labels)
{
	json_t *l = json_loads(labels, 0, NULL);
	struct lsel sel;
	char err[300] = "";
	bool m;

	assert_non_null(l);
	if (lsel_parse(text, &sel, err, sizeof(err))) {
		print_error("'%s': %s\n", text, err);
		fail();
	}
	m = lsel_match(&sel, l);
	lsel_free(&sel);
	json_decref(l);
	return m;
}

static void test_equality(void **state)
{
	(void)state;
	assert_true(selects("app=web", "{\"app\": \"web\"}"));
	assert_true(selects("app==web", "{\"app\": \"web\", \"x\": \"y\"}"));
	assert_false(selects("app=web", "{\"app\": \"db\"}"));
	assert_false(selects("app=web", "{}"));
	/* != also holds when the label is absent, as kubectl's */
	assert_true(selects("app!=web", "{}"));
	assert_true(selects("app!=web", "{\"app\": \"db\"}"));
	assert_false(selects("app!=web", "{\"app\": \"web\"}"));
	/* an empty value */
	assert_true(selects("app=", "{\"app\": \"\"}"));
	assert_false(selects("app=", "{\"app\": \"web\"}"));
}

static void test_sets(void **state)
{
	(void)state;
	assert_true(selects("env in (prod,staging)", "{\"env\": \"staging\"}"));
	assert_false(selects("env in (prod,staging)", "{\"env\": \"dev\"}"));
	assert_false(selects("env in (prod)", "{}"));
	assert_true(selects("env notin (prod)", "{}"));
	assert_true(selects("env notin (prod, dev)", "{\"env\": \"qa\"}"));
	assert_false(selects("env notin (prod,dev)", "{\"env\": \"dev\"}"));
	/* spaces around the parts */
	assert_true(selects("  env  in  ( a , b )  ", "{\"env\": \"b\"}"));
	assert_true(selects("env in(a,b)", "{\"env\": \"a\"}"));
	assert_false(selects("env notin(a,b)", "{\"env\": \"a\"}"));
}

static void test_existence(void **state)
{
	(void)state;
	assert_true(selects("tier", "{\"tier\": \"x\"}"));
	assert_false(selects("tier", "{\"app\": \"x\"}"));
	assert_true(selects("!tier", "{\"app\": \"x\"}"));
	assert_false(selects("!tier", "{\"tier\": \"\"}"));
	/* keys with a prefix and dots, as labels have them */
	assert_true(selects("app.kubernetes.io/name=web",
			    "{\"app.kubernetes.io/name\": \"web\"}"));
}

static void test_commas_all_must_hold(void **state)
{
	(void)state;
	assert_true(selects("app=web,tier!=test,!debug",
			    "{\"app\": \"web\", \"tier\": \"front\"}"));
	assert_false(selects("app=web,tier!=test", "{\"app\": \"web\", \"tier\": \"test\"}"));
	assert_true(selects("app in (web,db),tier", "{\"app\": \"db\", \"tier\": \"x\"}"));
	assert_false(selects("app in (web,db),tier", "{\"app\": \"db\"}"));
	/* nothing: everything */
	assert_true(selects("", "{}"));
	assert_true(selects("   ", "{\"a\": \"b\"}"));
	/* a key named like the keywords is a key */
	assert_true(selects("in", "{\"in\": \"x\"}"));
	assert_true(selects("notin=x", "{\"notin\": \"x\"}"));
}

/* Each error names the position and what was expected. */
static void refused(const char *text, const char *want)
{
	struct lsel sel;
	char err[300] = "";

	assert_int_equal(lsel_parse(text, &sel, err, sizeof(err)), -EINVAL);
	lsel_free(&sel);
	if (!strstr(err, want)) {
		print_error("'%s': '%s' lacks '%s'\n", text, err, want);
		fail();
	}
}

static void test_errors(void **state)
{
	(void)state;
	refused("app in (web", "at character 12: expected ',' or ')'");
	refused("app in web", "expected =, ==, !=, in (…), notin (…) or ','");
	refused("app in ()", "at character 9: expected a value in the parentheses");
	refused("=web", "at character 1: expected a label key");
	refused("!", "expected a label key after '!'");
	refused("app=web,", "at character 9: expected a label key");
	refused("a=b c=d", "expected ',' between requirements");
	refused("a=b=c", "expected ',' between requirements");
	refused("a==b)", "expected ',' between requirements");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_equality),
		cmocka_unit_test(test_sets),
		cmocka_unit_test(test_existence),
		cmocka_unit_test(test_commas_all_must_hold),
		cmocka_unit_test(test_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
