// SPDX-License-Identifier: Apache-2.0
/* Unit tests for agent/cnichain.c: which plugins a CNI configuration chains
 * after sluice-cni, when a chained bandwidth plugin can receive limits, the
 * tc-mode decision for an ADD, and the directory re-read on change. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "api.h"
#include "cnichain.h"

#define SLUICE "{\"type\":\"sluice-cni\",\"socket\":\"/run/sluice/sluice.sock\"}"
#define PORTMAP "{\"type\":\"portmap\",\"capabilities\":{\"portMappings\":true}}"
#define BW_CAP "{\"type\":\"bandwidth\",\"capabilities\":{\"bandwidth\":true}}"

static int parse(const char *text, struct cnichain_net *out)
{
	json_error_t e;
	json_t *doc = json_loads(text, 0, &e);
	int r;

	assert_non_null(doc);
	r = cnichain_parse_doc(doc, "/etc/cni/net.d/10-sluice.conflist", out);
	json_decref(doc);
	return r;
}

static void test_chain_after_sluice(void **state)
{
	struct cnichain_net n;

	(void)state;
	assert_int_equal(parse("{\"name\":\"sluice\",\"plugins\":[" SLUICE "," PORTMAP
			       ",{\"type\":\"tuning\"},{\"type\":\"firewall\"}," BW_CAP "]}",
			       &n),
			 1);
	assert_string_equal(n.name, "sluice");
	assert_string_equal(n.file, "/etc/cni/net.d/10-sluice.conflist");
	assert_string_equal(n.after, "portmap,tuning,firewall,bandwidth");
	assert_int_equal(n.bw_index, 4);
	assert_true(n.bw_capability);
	assert_false(n.bw_static);
}

static void test_bandwidth_that_gets_no_limits(void **state)
{
	struct cnichain_net n;

	(void)state;
	/* Neither the capability nor rates: it never limits anything. */
	assert_int_equal(parse("{\"name\":\"s\",\"plugins\":[" SLUICE ",{\"type\":\"bandwidth\"}]}",
			       &n), 1);
	assert_int_equal(n.bw_index, -1);
	assert_int_equal(parse("{\"name\":\"s\",\"plugins\":[" SLUICE ",{\"type\":\"bandwidth\","
			       "\"capabilities\":{\"bandwidth\":false},\"ingressRate\":0}]}",
			       &n), 1);
	assert_int_equal(n.bw_index, -1);
	assert_string_equal(n.after, "bandwidth");
}

static void test_bandwidth_static_rates(void **state)
{
	struct cnichain_net n;

	(void)state;
	assert_int_equal(parse("{\"name\":\"s\",\"plugins\":[" SLUICE ",{\"type\":\"bandwidth\","
			       "\"egressRate\":1000000,\"egressBurst\":100000}]}",
			       &n), 1);
	assert_int_equal(n.bw_index, 1);
	assert_true(n.bw_static);
	assert_false(n.bw_capability);
}

static void test_only_what_follows_sluice(void **state)
{
	struct cnichain_net n;

	(void)state;
	/* Before sluice-cni, or in a network without it: not ours. */
	assert_int_equal(parse("{\"name\":\"s\",\"plugins\":[" BW_CAP "," SLUICE "]}", &n), 1);
	assert_int_equal(n.bw_index, -1);
	assert_string_equal(n.after, "");
	assert_int_equal(parse("{\"name\":\"other\",\"plugins\":[{\"type\":\"bridge\"}," BW_CAP
			       "]}", &n), 0);
}

static void test_single_conf_and_junk(void **state)
{
	struct cnichain_net n;

	(void)state;
	assert_int_equal(parse("{\"cniVersion\":\"1.0.0\",\"name\":\"sluice\",\"type\":\"sluice-cni\"}",
			       &n), 1);
	assert_string_equal(n.after, "");
	assert_int_equal(n.bw_index, -1);
	assert_int_equal(parse("{\"plugins\":[" SLUICE "]}", &n), 0);	/* no name */
	assert_int_equal(parse("{\"name\":\"s\",\"plugins\":{}}", &n), 0);
	assert_int_equal(parse("[1,2]", &n), 0);
	assert_int_equal(parse("{\"name\":\"s\",\"plugins\":[1,{\"type\":7}," SLUICE ",null]}", &n),
			 1);
}

static void test_decide(void **state)
{
	struct cnichain_net n[2];
	char err[2048] = "";

	(void)state;
	assert_int_equal(parse("{\"name\":\"sluice\",\"plugins\":[" SLUICE "," PORTMAP "," BW_CAP
			       "]}", &n[0]), 1);
	assert_int_equal(parse("{\"name\":\"plain\",\"plugins\":[" SLUICE "]}", &n[1]), 1);
	/* tc, limits, the capability: refused, saying where and how to fix. */
	assert_int_equal(cnichain_decide(n, 2, "sluice", true, true, err, sizeof(err)),
			 CNI_ERR_INVALID_CONFIG);
	assert_non_null(strstr(err, "/etc/cni/net.d/10-sluice.conflist"));
	assert_non_null(strstr(err, "plugins[2], capabilities.bandwidth"));
	assert_non_null(strstr(err, "network \"sluice\""));
	assert_non_null(strstr(err, "remove the bandwidth plugin from the chain"));
	assert_non_null(strstr(err, "--attach-mode tcx"));
	/* tcx, no limits, another network: served. */
	assert_int_equal(cnichain_decide(n, 2, "sluice", false, true, err, sizeof(err)), 0);
	assert_int_equal(cnichain_decide(n, 2, "sluice", true, false, err, sizeof(err)), 0);
	assert_int_equal(cnichain_decide(n, 2, "plain", true, true, err, sizeof(err)), 0);
	assert_int_equal(cnichain_decide(n, 2, "unknown", true, true, err, sizeof(err)), 0);
	/* Static rates limit every pod: refused in tc mode even without. */
	assert_int_equal(parse("{\"name\":\"sluice\",\"plugins\":[" SLUICE ",{\"type\":\"bandwidth\","
			       "\"ingressRate\":1000000}]}", &n[0]), 1);
	assert_int_equal(cnichain_decide(n, 1, "sluice", true, false, err, sizeof(err)),
			 CNI_ERR_INVALID_CONFIG);
	assert_non_null(strstr(err, "static ingressRate/egressRate"));
	assert_int_equal(cnichain_decide(n, 1, "sluice", false, false, err, sizeof(err)), 0);
}

/* ---- the directory ------------------------------------------------------ */

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static size_t nconditions(struct cnichain *c)
{
	json_t *arr = cnichain_conditions_json(c, true);
	size_t n = json_array_size(arr);

	json_decref(arr);
	return n;
}

/* A test's own directory, removed by the teardown also when an assertion
 * fails half-way. */
static int dir_setup(void **state)
{
	static char dir[64];	/* outlives this call: the test and teardown read it; tests run one at a time */

	snprintf(dir, sizeof(dir), "/tmp/sluice-cnichain.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	*state = dir;
	return 0;
}

static int dir_teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", (const char *)*state);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_directory_reread(void **state)
{
	const char *dir = *state;
	char err[2048], path[512];
	const struct cnichain_net *nets;
	struct cnichain *c;
	json_t *conds;

	c = cnichain_new(dir);
	assert_non_null(c);
	assert_int_equal(nconditions(c), 0);

	write_file(dir, "10-sluice.conflist",
		   "{\"name\":\"sluice\",\"plugins\":[" SLUICE "," PORTMAP "," BW_CAP "]}");
	write_file(dir, "README", "not a configuration");
	write_file(dir, "20-broken.conflist", "{");
	conds = cnichain_conditions_json(c, true);
	assert_int_equal(json_array_size(conds), 1);
	snprintf(path, sizeof(path), "%s/10-sluice.conflist", dir);
	assert_string_equal(json_string_value(json_object_get(json_array_get(conds, 0), "file")),
			    path);
	assert_string_equal(json_string_value(json_object_get(json_array_get(conds, 0), "type")),
			    "ChainedBandwidthPlugin");
	json_decref(conds);
	assert_int_equal(cnichain_check_add(c, "sluice", true, true, err, sizeof(err)),
			 CNI_ERR_INVALID_CONFIG);
	assert_non_null(strstr(err, path));

	/* Edited in place (same inode, new size and mtime): re-read. */
	write_file(dir, "10-sluice.conflist",
		   "{\"name\":\"sluice\",\"plugins\":[" SLUICE "," PORTMAP "]}");
	assert_int_equal(cnichain_check_add(c, "sluice", true, true, err, sizeof(err)), 0);
	assert_int_equal(nconditions(c), 0);
	assert_int_equal(cnichain_networks(c, &nets), 1);
	assert_string_equal(nets[0].after, "portmap");

	/* The first file of a network's name is the one runtimes use. */
	write_file(dir, "30-sluice.conflist",
		   "{\"name\":\"sluice\",\"plugins\":[" SLUICE "," BW_CAP "]}");
	assert_int_equal(cnichain_check_add(c, "sluice", true, true, err, sizeof(err)), 0);
	assert_int_equal(nconditions(c), 1);	/* still worth a warning */
	snprintf(path, sizeof(path), "%s/10-sluice.conflist", dir);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(cnichain_check_add(c, "sluice", true, true, err, sizeof(err)),
			 CNI_ERR_INVALID_CONFIG);
	assert_non_null(strstr(err, "30-sluice.conflist"));

	/* The directory goes away: nothing chained, nothing refused. */
	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	assert_int_equal(system(path), 0);
	assert_int_equal(cnichain_check_add(c, "sluice", true, true, err, sizeof(err)), 0);
	assert_int_equal(nconditions(c), 0);
	cnichain_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chain_after_sluice),
		cmocka_unit_test(test_bandwidth_that_gets_no_limits),
		cmocka_unit_test(test_bandwidth_static_rates),
		cmocka_unit_test(test_only_what_follows_sluice),
		cmocka_unit_test(test_single_conf_and_junk),
		cmocka_unit_test(test_decide),
		cmocka_unit_test_setup_teardown(test_directory_reread, dir_setup, dir_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
