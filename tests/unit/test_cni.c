// SPDX-License-Identifier: Apache-2.0
/* Unit tests for the CNI plugin logic (cni-plugin/cni.c). No processes, no
 * environment mutation: the environment is an array and the agent a stub. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api.h"
#include "cni.h"

#define CONF(ver) "{\"cniVersion\":\"" ver "\",\"name\":\"sluice\",\"type\":\"sluice-cni\"}"
#define CONF_PREV(ver, prev)                                                              \
	"{\"cniVersion\":\"" ver "\",\"name\":\"sluice\",\"type\":\"sluice-cni\","          \
	"\"prevResult\":" prev "}"

/* A 1.x-shaped ADD answer with one address of each family and fields only
 * 1.1 knows, so conversions have something to drop. */
#define AGENT_ADD_RESULT                                                                  \
	"{\"ok\":true,\"result\":{"                                                       \
	"\"interfaces\":[{\"name\":\"lxc1\",\"mac\":\"aa:bb:cc:dd:ee:01\",\"mtu\":1500},"  \
	"{\"name\":\"eth0\",\"mac\":\"aa:bb:cc:dd:ee:02\",\"sandbox\":\"/run/netns/p\"}],"  \
	"\"ips\":[{\"address\":\"10.244.1.5/32\",\"gateway\":\"10.244.1.1\",\"interface\":1}," \
	"{\"address\":\"fd00::5/128\",\"interface\":1}],"                                 \
	"\"routes\":[{\"dst\":\"0.0.0.0/0\",\"gw\":\"10.244.1.1\",\"mtu\":1400}],"          \
	"\"dns\":{\"nameservers\":[\"10.96.0.10\"]},"                                      \
	"\"hostIfindex\":7}}"

static const char *const versions[] = { "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0" };

struct fake_agent {
	int ret;	    /* what the transport returns */
	const char *answer; /* JSON the agent answers with when ret == 0 */
	json_t *req;	    /* the request the plugin sent */
	char socket[128];
	int timeout_ms;
	int calls;
};

static int fake_call(const char *socket_path, const json_t *req, json_t **resp, int timeout_ms,
		     char *err, size_t errlen, void *ctx)
{
	struct fake_agent *fa = ctx;

	fa->calls++;
	json_decref(fa->req);
	fa->req = json_deep_copy(req);
	snprintf(fa->socket, sizeof(fa->socket), "%s", socket_path);
	fa->timeout_ms = timeout_ms;
	if (fa->ret) {
		snprintf(err, errlen, "fake agent at %s: %s", socket_path, strerror(-fa->ret));
		return fa->ret;
	}
	*resp = json_loads(fa->answer, 0, NULL);
	assert_non_null(*resp);
	return 0;
}

static json_t *run(const char *const *envp, const char *conf, struct fake_agent *fa, int *status)
{
	json_t *out = NULL;

	*status = cni_run(envp, conf, conf ? strlen(conf) : 0, fake_call, fa, &out);
	return out;
}

static const char *str_at(const json_t *j, const char *key)
{
	const char *s = json_string_value(json_object_get(j, key));

	assert_non_null(s);
	return s;
}

/* out is a CNI error with code, printed in version, msg containing needle. */
static void assert_cni_error(const json_t *out, int code, const char *version, const char *needle)
{
	assert_non_null(out);
	assert_int_equal(json_integer_value(json_object_get(out, "code")), code);
	assert_string_equal(str_at(out, "cniVersion"), version);
	assert_true(json_is_string(json_object_get(out, "details")));
	if (needle && !strstr(str_at(out, "msg"), needle)) {
		fprintf(stderr, "msg \"%s\" lacks \"%s\"\n", str_at(out, "msg"), needle);
		fail();
	}
}

static void assert_err(const struct cni_error *err, int code, const char *needle)
{
	assert_int_equal(err->code, code);
	if (needle && !strstr(err->msg, needle)) {
		fprintf(stderr, "msg \"%s\" lacks \"%s\"\n", err->msg, needle);
		fail();
	}
}

/* ---- environment --------------------------------------------------------- */

static void test_env_add_ok(void **state)
{
	const char *envp[] = { "PATH=/bin", "CNI_COMMAND=ADD", "CNI_CONTAINERID=abc123",
			       "CNI_NETNS=/run/netns/p1", "CNI_IFNAME=eth0", "CNI_PATH=/opt/cni/bin",
			       "CNI_ARGS=K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0", NULL };
	struct cni_error err = { 0 };
	struct cni_env env;

	(void)state;
	assert_int_equal(cni_parse_env(envp, &env, &err), 0);
	assert_int_equal(env.cmd, CNI_CMD_ADD);
	assert_string_equal(env.container_id, "abc123");
	assert_string_equal(env.netns, "/run/netns/p1");
	assert_string_equal(env.ifname, "eth0");
	assert_string_equal(env.path, "/opt/cni/bin");
	assert_string_equal(env.k8s.namespace_, "default");
	assert_string_equal(env.k8s.name, "web-0");
	assert_null(env.k8s.uid);
	cni_env_free(&env);
}

static const char *const full_env[] = { "CNI_CONTAINERID=abc", "CNI_NETNS=/run/netns/p",
					"CNI_IFNAME=eth0", "CNI_PATH=/opt/cni/bin" };

/* envp = CNI_COMMAND=cmd plus full_env without var, then extra (may be NULL). */
static void env_without(const char **envp, char *cmdvar, size_t cmdlen, const char *cmd,
			const char *var, const char *extra)
{
	size_t i, n = 0, vlen = strlen(var);

	snprintf(cmdvar, cmdlen, "CNI_COMMAND=%s", cmd);
	envp[n++] = cmdvar;
	for (i = 0; i < 4; i++)
		if (strncmp(full_env[i], var, vlen) || full_env[i][vlen] != '=')
			envp[n++] = full_env[i];
	envp[n++] = extra;
	envp[n] = NULL;
}

/* Drop one variable (or set it empty, which libcni also calls missing) and
 * expect code 4 naming it. */
static void expect_missing(const char *cmd, const char *var)
{
	const char *envp[8];
	char cmdvar[32], empty[40];
	struct cni_error err = { 0 };
	struct cni_env env;

	env_without(envp, cmdvar, sizeof(cmdvar), cmd, var, NULL);
	assert_int_equal(cni_parse_env(envp, &env, &err), -1);
	assert_err(&err, CNI_ERR_INVALID_ENV, var);
	cni_env_free(&env);

	snprintf(empty, sizeof(empty), "%s=", var);
	env_without(envp, cmdvar, sizeof(cmdvar), cmd, var, empty);
	assert_int_equal(cni_parse_env(envp, &env, &err), -1);
	assert_err(&err, CNI_ERR_INVALID_ENV, var);
	cni_env_free(&env);
}

static void expect_env_ok(const char *cmd, const char *var)
{
	const char *envp[8];
	char cmdvar[32];
	struct cni_error err = { 0 };
	struct cni_env env;

	env_without(envp, cmdvar, sizeof(cmdvar), cmd, var, NULL);
	if (cni_parse_env(envp, &env, &err)) {
		fprintf(stderr, "%s without %s: %s\n", cmd, var, err.msg);
		fail();
	}
	cni_env_free(&env);
}

static void test_env_missing_per_command(void **state)
{
	(void)state;
	expect_missing("ADD", "CNI_CONTAINERID");
	expect_missing("ADD", "CNI_NETNS");
	expect_missing("ADD", "CNI_IFNAME");
	expect_missing("CHECK", "CNI_CONTAINERID");
	expect_missing("CHECK", "CNI_NETNS");
	expect_missing("CHECK", "CNI_IFNAME");
	expect_missing("DEL", "CNI_CONTAINERID");
	expect_missing("DEL", "CNI_IFNAME");
	expect_missing("GC", "CNI_PATH");
}

static void test_env_optional_per_command(void **state)
{
	(void)state;
	/* DEL runs after the namespace may be gone. */
	expect_env_ok("DEL", "CNI_NETNS");
	/* The plugin execs nothing, so only GC (per spec) insists on CNI_PATH. */
	expect_env_ok("ADD", "CNI_PATH");
	expect_env_ok("DEL", "CNI_PATH");
	expect_env_ok("CHECK", "CNI_PATH");
	expect_env_ok("STATUS", "CNI_PATH");
}

static void test_env_no_container_vars(void **state)
{
	const char *status[] = { "CNI_COMMAND=STATUS", NULL };
	const char *version[] = { "CNI_COMMAND=VERSION", NULL };
	const char *gc[] = { "CNI_COMMAND=GC", "CNI_PATH=/opt/cni/bin", NULL };
	/* Garbage in variables a command does not use must not fail it. */
	const char *gc_junk[] = { "CNI_COMMAND=GC", "CNI_PATH=/opt/cni/bin",
				  "CNI_CONTAINERID=-bad", "CNI_IFNAME=a/b", "CNI_ARGS=junk", NULL };
	struct cni_error err = { 0 };
	struct cni_env env;

	(void)state;
	assert_int_equal(cni_parse_env(status, &env, &err), 0);
	assert_int_equal(env.cmd, CNI_CMD_STATUS);
	cni_env_free(&env);
	assert_int_equal(cni_parse_env(version, &env, &err), 0);
	assert_int_equal(env.cmd, CNI_CMD_VERSION);
	cni_env_free(&env);
	assert_int_equal(cni_parse_env(gc, &env, &err), 0);
	assert_int_equal(env.cmd, CNI_CMD_GC);
	cni_env_free(&env);
	assert_int_equal(cni_parse_env(gc_junk, &env, &err), 0);
	cni_env_free(&env);
}

static void test_env_command(void **state)
{
	const char *none[] = { "CNI_CONTAINERID=abc", NULL };
	const char *empty[] = { "CNI_COMMAND=", NULL };
	const char *bogus[] = { "CNI_COMMAND=FROB", NULL };
	const char *lower[] = { "CNI_COMMAND=add", NULL };
	struct cni_error err = { 0 };
	struct cni_env env;

	(void)state;
	assert_int_equal(cni_parse_env(none, &env, &err), -1);
	assert_err(&err, CNI_ERR_INVALID_ENV, "CNI_COMMAND");
	cni_env_free(&env);
	assert_int_equal(cni_parse_env(empty, &env, &err), -1);
	assert_err(&err, CNI_ERR_INVALID_ENV, "CNI_COMMAND");
	cni_env_free(&env);
	assert_int_equal(cni_parse_env(bogus, &env, &err), -1);
	assert_err(&err, CNI_ERR_INVALID_ENV, "unknown CNI_COMMAND: FROB");
	cni_env_free(&env);
	assert_int_equal(cni_parse_env(lower, &env, &err), -1);
	assert_err(&err, CNI_ERR_INVALID_ENV, "CNI_COMMAND");
	cni_env_free(&env);
}

static void test_container_id(void **state)
{
	static const char *const good[] = { "a", "0", "abc123", "a_b.c-d", "Z-", NULL };
	static const char *const bad[] = { "-abc", "_abc", ".abc", "a b", "a/b", "a:b",
					   "abc$", "ä", NULL };
	struct cni_error err = { 0 };
	struct cni_env env;
	char idvar[64];
	const char *envp[] = { "CNI_COMMAND=ADD", idvar, "CNI_NETNS=/n", "CNI_IFNAME=eth0",
			       NULL };
	size_t i;

	(void)state;
	for (i = 0; good[i]; i++) {
		assert_true(cni_valid_container_id(good[i]));
		snprintf(idvar, sizeof(idvar), "CNI_CONTAINERID=%s", good[i]);
		assert_int_equal(cni_parse_env(envp, &env, &err), 0);
		assert_string_equal(env.container_id, good[i]);
		cni_env_free(&env);
	}
	assert_false(cni_valid_container_id(""));
	assert_false(cni_valid_container_id(NULL));
	for (i = 0; bad[i]; i++) {
		assert_false(cni_valid_container_id(bad[i]));
		snprintf(idvar, sizeof(idvar), "CNI_CONTAINERID=%s", bad[i]);
		assert_int_equal(cni_parse_env(envp, &env, &err), -1);
		assert_err(&err, CNI_ERR_INVALID_ENV, "CNI_CONTAINERID");
		assert_string_equal(err.details, bad[i]);
		cni_env_free(&env);
	}
}

static void test_ifname(void **state)
{
	static const char *const good[] = { "eth0", "e", "net1.100", "abcdefghijklmno", "eth-0_x",
					    NULL };
	static const char *const bad[] = { ".", "..", "abcdefghijklmnop", "eth/0", "eth:0",
					   "eth 0", "eth\t0", "eth\n0", NULL };
	struct cni_error err = { 0 };
	struct cni_env env;
	char ifvar[64];
	const char *envp[] = { "CNI_COMMAND=DEL", "CNI_CONTAINERID=abc", ifvar, NULL };
	size_t i;

	(void)state;
	assert_non_null(cni_ifname_problem(""));
	assert_non_null(cni_ifname_problem(NULL));
	for (i = 0; good[i]; i++) {
		assert_null(cni_ifname_problem(good[i]));
		snprintf(ifvar, sizeof(ifvar), "CNI_IFNAME=%s", good[i]);
		assert_int_equal(cni_parse_env(envp, &env, &err), 0);
		assert_string_equal(env.ifname, good[i]);
		cni_env_free(&env);
	}
	for (i = 0; bad[i]; i++) {
		assert_non_null(cni_ifname_problem(bad[i]));
		snprintf(ifvar, sizeof(ifvar), "CNI_IFNAME=%s", bad[i]);
		assert_int_equal(cni_parse_env(envp, &env, &err), -1);
		assert_err(&err, CNI_ERR_INVALID_ENV, "CNI_IFNAME");
		cni_env_free(&env);
	}
}

/* ---- CNI_ARGS ------------------------------------------------------------ */

static void test_args_any_order(void **state)
{
	const char *orders[] = {
		"K8S_POD_NAMESPACE=ns;K8S_POD_NAME=pod;K8S_POD_UID=u-1;K8S_POD_INFRA_CONTAINER_ID=infra",
		"K8S_POD_INFRA_CONTAINER_ID=infra;K8S_POD_UID=u-1;K8S_POD_NAME=pod;K8S_POD_NAMESPACE=ns",
		"IgnoreUnknown=1;K8S_POD_UID=u-1;K8S_POD_NAMESPACE=ns;K8S_POD_INFRA_CONTAINER_ID=infra;K8S_POD_NAME=pod",
		"K8S_POD_NAME=pod;IgnoreUnknown=true;K8S_POD_NAMESPACE=ns;;K8S_POD_UID=u-1;K8S_POD_INFRA_CONTAINER_ID=infra;",
	};
	struct cni_error err = { 0 };
	struct cni_k8s k8s;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(orders) / sizeof(orders[0]); i++) {
		assert_int_equal(cni_parse_args(orders[i], &k8s, &err), 0);
		assert_string_equal(k8s.namespace_, "ns");
		assert_string_equal(k8s.name, "pod");
		assert_string_equal(k8s.uid, "u-1");
		assert_string_equal(k8s.infra_container_id, "infra");
		cni_k8s_free(&k8s);
	}
	assert_int_equal(cni_parse_args("", &k8s, &err), 0);
	assert_null(k8s.name);
	assert_int_equal(cni_parse_args(NULL, &k8s, &err), 0);
	assert_null(k8s.namespace_);
	/* A value may itself contain '='. */
	assert_int_equal(cni_parse_args("K8S_POD_NAME=a=b", &k8s, &err), 0);
	assert_string_equal(k8s.name, "a=b");
	cni_k8s_free(&k8s);
}

static void test_args_ignore_unknown(void **state)
{
	struct cni_error err = { 0 };
	struct cni_k8s k8s;

	(void)state;
	/* IgnoreUnknown after the unknown key still counts. */
	assert_int_equal(cni_parse_args("FOO=bar;K8S_POD_NAME=p;IgnoreUnknown=1", &k8s, &err), 0);
	assert_string_equal(k8s.name, "p");
	cni_k8s_free(&k8s);
	assert_int_equal(cni_parse_args("IgnoreUnknown=TRUE;FOO=bar", &k8s, &err), 0);
	cni_k8s_free(&k8s);

	assert_int_equal(cni_parse_args("K8S_POD_NAME=p;FOO=bar", &k8s, &err), -1);
	assert_err(&err, CNI_ERR_INVALID_ENV, "FOO");
	assert_null(k8s.name);
	assert_int_equal(cni_parse_args("IgnoreUnknown=0;FOO=bar", &k8s, &err), -1);
	assert_err(&err, CNI_ERR_INVALID_ENV, "FOO");
	assert_int_equal(cni_parse_args("IgnoreUnknown=false;FOO=bar", &k8s, &err), -1);
	assert_err(&err, CNI_ERR_INVALID_ENV, "FOO");
	assert_int_equal(cni_parse_args("IgnoreUnknown=maybe", &k8s, &err), -1);
	assert_err(&err, CNI_ERR_INVALID_ENV, "IgnoreUnknown");
}

static void test_args_malformed(void **state)
{
	const char *envp[] = { "CNI_COMMAND=ADD", "CNI_CONTAINERID=abc", "CNI_NETNS=/n",
			       "CNI_IFNAME=eth0", "CNI_ARGS=K8S_POD_NAME=p;garbage", NULL };
	const char *unknown[] = { "CNI_COMMAND=ADD", "CNI_CONTAINERID=abc", "CNI_NETNS=/n",
				  "CNI_IFNAME=eth0", "CNI_ARGS=K8S_POD_NAME=p;BOGUS=1", NULL };
	struct cni_error err = { 0 };
	struct cni_k8s k8s;
	struct cni_env env;

	(void)state;
	assert_int_equal(cni_parse_args("K8S_POD_NAME", &k8s, &err), -1);
	assert_err(&err, CNI_ERR_INVALID_ENV, "CNI_ARGS");
	assert_int_equal(cni_parse_args("=value", &k8s, &err), -1);
	assert_err(&err, CNI_ERR_INVALID_ENV, "CNI_ARGS");
	/* Through the environment too. */
	assert_int_equal(cni_parse_env(envp, &env, &err), -1);
	assert_err(&err, CNI_ERR_INVALID_ENV, "CNI_ARGS");
	assert_true(strstr(err.msg, "garbage") != NULL);
	cni_env_free(&env);
	assert_int_equal(cni_parse_env(unknown, &env, &err), -1);
	assert_err(&err, CNI_ERR_INVALID_ENV, "BOGUS");
	cni_env_free(&env);
}

/* ---- configuration ------------------------------------------------------- */

static void expect_config_error(const char *conf, enum cni_cmd cmd, int code, const char *needle)
{
	struct cni_error err = { 0 };
	struct cni_config cfg;

	assert_int_equal(cni_parse_config(conf, strlen(conf), cmd, &cfg, &err), -1);
	if (err.code != code)
		fprintf(stderr, "%s: got %d %s\n", conf, err.code, err.msg);
	assert_err(&err, code, needle);
	cni_config_free(&cfg);
}

static void test_config_decode(void **state)
{
	(void)state;
	expect_config_error("{\"cniVersion\":", CNI_CMD_ADD, CNI_ERR_DECODE, "decoding");
	expect_config_error("", CNI_CMD_ADD, CNI_ERR_DECODE, "decoding");
	expect_config_error("not json", CNI_CMD_DEL, CNI_ERR_DECODE, "decoding");
	expect_config_error("[1,2]", CNI_CMD_ADD, CNI_ERR_DECODE, "decoding");
	expect_config_error(CONF("1.0.0") " trailing", CNI_CMD_ADD, CNI_ERR_DECODE, "decoding");
}

static void test_config_required_fields(void **state)
{
	(void)state;
	expect_config_error("{\"cniVersion\":\"1.0.0\",\"type\":\"sluice-cni\"}", CNI_CMD_ADD,
			    CNI_ERR_INVALID_CONFIG, "\"name\"");
	expect_config_error("{\"cniVersion\":\"1.0.0\",\"name\":\"\",\"type\":\"t\"}", CNI_CMD_ADD,
			    CNI_ERR_INVALID_CONFIG, "\"name\"");
	expect_config_error("{\"cniVersion\":\"1.0.0\",\"name\":5,\"type\":\"t\"}", CNI_CMD_ADD,
			    CNI_ERR_INVALID_CONFIG, "\"name\"");
	expect_config_error("{\"cniVersion\":\"1.0.0\",\"name\":\"a b\",\"type\":\"t\"}",
			    CNI_CMD_ADD, CNI_ERR_INVALID_CONFIG, "\"name\"");
	expect_config_error("{\"cniVersion\":\"1.0.0\",\"name\":\"n\"}", CNI_CMD_ADD,
			    CNI_ERR_INVALID_CONFIG, "\"type\"");
	expect_config_error("{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"type\":null}", CNI_CMD_ADD,
			    CNI_ERR_INVALID_CONFIG, "\"type\"");
	expect_config_error("{\"name\":\"n\",\"type\":\"t\"}", CNI_CMD_ADD, CNI_ERR_INVALID_CONFIG,
			    "\"cniVersion\"");
	expect_config_error("{\"cniVersion\":1.0,\"name\":\"n\",\"type\":\"t\"}", CNI_CMD_DEL,
			    CNI_ERR_INVALID_CONFIG, "\"cniVersion\"");
	expect_config_error("{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"type\":\"t\",\"socket\":3}",
			    CNI_CMD_ADD, CNI_ERR_INVALID_CONFIG, "\"socket\"");
	expect_config_error("{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"type\":\"t\",\"socket\":\"\"}",
			    CNI_CMD_ADD, CNI_ERR_INVALID_CONFIG, "\"socket\"");
}

static void test_config_versions(void **state)
{
	struct cni_error err = { 0 };
	struct cni_config cfg;
	char conf[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		snprintf(conf, sizeof(conf),
			 "{\"cniVersion\":\"%s\",\"name\":\"sluice\",\"type\":\"sluice-cni\"}",
			 versions[i]);
		assert_int_equal(cni_parse_config(conf, strlen(conf), CNI_CMD_ADD, &cfg, &err), 0);
		assert_string_equal(cfg.version, versions[i]);
		assert_string_equal(cfg.name, "sluice");
		assert_string_equal(cfg.type, "sluice-cni");
		cni_config_free(&cfg);
	}
	expect_config_error(CONF("0.2.0"), CNI_CMD_ADD, CNI_ERR_INCOMPATIBLE_VERSION,
			    "incompatible");
	expect_config_error(CONF("0.1.0"), CNI_CMD_DEL, CNI_ERR_INCOMPATIBLE_VERSION,
			    "incompatible");
	expect_config_error(CONF("1.2.0"), CNI_CMD_ADD, CNI_ERR_INCOMPATIBLE_VERSION,
			    "incompatible");
	expect_config_error(CONF("banana"), CNI_CMD_ADD, CNI_ERR_INCOMPATIBLE_VERSION,
			    "incompatible");
	assert_true(cni_version_supported("0.3.0"));
	assert_true(cni_version_supported("1.1.0"));
	assert_false(cni_version_supported("1.1"));
	assert_false(cni_version_supported(NULL));
}

/* Commands newer than the configuration's version: code 1, like libcni. */
static void test_config_command_floor(void **state)
{
	struct cni_error err = { 0 };
	struct cni_config cfg;
	const char *ok;

	(void)state;
	expect_config_error(CONF_PREV("0.3.0", "{}"), CNI_CMD_CHECK, CNI_ERR_INCOMPATIBLE_VERSION,
			    "does not allow CHECK");
	expect_config_error(CONF_PREV("0.3.1", "{}"), CNI_CMD_CHECK, CNI_ERR_INCOMPATIBLE_VERSION,
			    "does not allow CHECK");
	expect_config_error(CONF("1.0.0"), CNI_CMD_STATUS, CNI_ERR_INCOMPATIBLE_VERSION,
			    "does not allow STATUS");
	expect_config_error(CONF("0.4.0"), CNI_CMD_GC, CNI_ERR_INCOMPATIBLE_VERSION,
			    "does not allow GC");
	ok = CONF_PREV("0.4.0", "{}");
	assert_int_equal(cni_parse_config(ok, strlen(ok), CNI_CMD_CHECK, &cfg, &err), 0);
	cni_config_free(&cfg);
	ok = CONF("1.1.0");
	assert_int_equal(cni_parse_config(ok, strlen(ok), CNI_CMD_STATUS, &cfg, &err), 0);
	cni_config_free(&cfg);
	/* CHECK without the ADD's result has nothing to check against. */
	expect_config_error(CONF("1.0.0"), CNI_CMD_CHECK, CNI_ERR_INVALID_CONFIG, "prevResult");
	expect_config_error(CONF_PREV("1.0.0", "[]"), CNI_CMD_CHECK, CNI_ERR_INVALID_CONFIG,
			    "prevResult");
}

static void test_config_unknown_keys_and_socket(void **state)
{
	const char *conf = "{\"cniVersion\":\"1.0.0\",\"name\":\"sluice\",\"type\":\"sluice-cni\","
			   "\"ipam\":{\"type\":\"host-local\"},\"whatever\":[1,{\"x\":null}],"
			   "\"capabilities\":{\"portMappings\":true},\"args\":{\"a\":1}}";
	const char *sock = "{\"cniVersion\":\"1.0.0\",\"name\":\"sluice\",\"type\":\"sluice-cni\","
			   "\"socket\":\"/tmp/other.sock\"}";
	struct cni_error err = { 0 };
	struct cni_config cfg;

	(void)state;
	assert_int_equal(cni_parse_config(conf, strlen(conf), CNI_CMD_ADD, &cfg, &err), 0);
	assert_string_equal(cfg.socket, SLUICE_DEFAULT_SOCKET);
	assert_string_equal(cfg.socket, "/run/sluice/sluice.sock");
	assert_null(cfg.port_mappings);
	assert_null(cfg.prev_result);
	cni_config_free(&cfg);
	assert_int_equal(cni_parse_config(sock, strlen(sock), CNI_CMD_ADD, &cfg, &err), 0);
	assert_string_equal(cfg.socket, "/tmp/other.sock");
	cni_config_free(&cfg);
}

static void assert_mapping(const json_t *m, int host, int ctr, const char *proto, const char *ip)
{
	assert_int_equal(json_object_size(m), ip ? 4 : 3);
	assert_int_equal(json_integer_value(json_object_get(m, "hostPort")), host);
	assert_int_equal(json_integer_value(json_object_get(m, "containerPort")), ctr);
	assert_string_equal(str_at(m, "protocol"), proto);
	if (ip)
		assert_string_equal(str_at(m, "hostIP"), ip);
	else
		assert_null(json_object_get(m, "hostIP"));
}

static void test_config_runtime_config_ci(void **state)
{
	/* containerd/CRI style capitalisation. */
	const char *crio = "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"type\":\"t\","
			   "\"runtimeConfig\":{\"PortMappings\":["
			   "{\"HostPort\":8080,\"ContainerPort\":80,\"Protocol\":\"TCP\",\"HostIP\":\"10.0.0.1\"},"
			   "{\"hostPort\":5353,\"containerPort\":53,\"protocol\":\"UDP\",\"hostIP\":\"\"}]}}";
	/* podman style lower case, protocol left to default. */
	const char *podman = "{\"cniVersion\":\"0.4.0\",\"name\":\"n\",\"type\":\"t\","
			     "\"runtimeConfig\":{\"portmappings\":["
			     "{\"hostport\":9000,\"containerport\":9001,\"hostip\":\"::1\"}]}}";
	struct cni_error err = { 0 };
	struct cni_config cfg;

	(void)state;
	assert_int_equal(cni_parse_config(crio, strlen(crio), CNI_CMD_ADD, &cfg, &err), 0);
	assert_int_equal(json_array_size(cfg.port_mappings), 2);
	assert_mapping(json_array_get(cfg.port_mappings, 0), 8080, 80, "tcp", "10.0.0.1");
	assert_mapping(json_array_get(cfg.port_mappings, 1), 5353, 53, "udp", NULL);
	cni_config_free(&cfg);
	assert_int_equal(cni_parse_config(podman, strlen(podman), CNI_CMD_ADD, &cfg, &err), 0);
	assert_int_equal(json_array_size(cfg.port_mappings), 1);
	assert_mapping(json_array_get(cfg.port_mappings, 0), 9000, 9001, "tcp", "::1");
	cni_config_free(&cfg);

	expect_config_error("{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"type\":\"t\","
			    "\"runtimeConfig\":{\"portMappings\":[{\"hostPort\":0,\"containerPort\":80}]}}",
			    CNI_CMD_ADD, CNI_ERR_INVALID_CONFIG, "portMappings[0].hostPort");
	expect_config_error("{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"type\":\"t\","
			    "\"runtimeConfig\":{\"portMappings\":[{\"hostPort\":1,\"containerPort\":\"80\"}]}}",
			    CNI_CMD_ADD, CNI_ERR_INVALID_CONFIG, "portMappings[0].containerPort");
	expect_config_error("{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"type\":\"t\","
			    "\"runtimeConfig\":{\"portMappings\":[{\"hostPort\":1,\"containerPort\":2,\"protocol\":\"icmp\"}]}}",
			    CNI_CMD_ADD, CNI_ERR_INVALID_CONFIG, "protocol");
	expect_config_error("{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"type\":\"t\","
			    "\"runtimeConfig\":{\"portMappings\":{}}}",
			    CNI_CMD_ADD, CNI_ERR_INVALID_CONFIG, "portMappings");
	expect_config_error("{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"type\":\"t\","
			    "\"runtimeConfig\":[]}",
			    CNI_CMD_ADD, CNI_ERR_INVALID_CONFIG, "runtimeConfig");
}

/* runtimeConfig.bandwidth with the given members (a JSON fragment). */
#define BW_CONF(members)                                                                   \
	"{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"type\":\"t\",\"runtimeConfig\":{"      \
	"\"bandwidth\":{" members "}}}"

static void expect_bw_value(const char *conf, const char *key, json_int_t want)
{
	struct cni_error err = { 0 };
	struct cni_config cfg;

	assert_int_equal(cni_parse_config(conf, strlen(conf), CNI_CMD_ADD, &cfg, &err), 0);
	assert_non_null(cfg.bandwidth);
	assert_int_equal(json_integer_value(json_object_get(cfg.bandwidth, key)), want);
	cni_config_free(&cfg);
}

static void test_config_bandwidth(void **state)
{
	static const char *const fields[] = { "ingressRate", "ingressBurst", "egressRate",
					      "egressBurst" };
	struct cni_error err = { 0 };
	struct cni_config cfg;
	char conf[512], needle[96];

	(void)state;
	/* containerd's spelling, kubelet's "no burst" (2^32-1), one direction. */
	expect_bw_value(BW_CONF("\"egressRate\":100000000,\"egressBurst\":4294967295"),
			"egressRate", 100000000);
	expect_bw_value(BW_CONF("\"egressRate\":100000000,\"egressBurst\":4294967295"),
			"egressBurst", 4294967295LL);
	expect_bw_value(BW_CONF("\"egressRate\":100000000"), "ingressRate", 0);
	/* Keys in any case, to the agent in one spelling; both limits ends. */
	expect_bw_value(BW_CONF("\"IngressRate\":8000,\"INGRESSBURST\":12000"), "ingressRate", 8000);
	expect_bw_value(BW_CONF("\"IngressRate\":8000,\"INGRESSBURST\":12000"), "ingressBurst",
			12000);
	expect_bw_value(BW_CONF("\"ingressrate\":1000000000000"), "ingressRate", 1000000000000LL);
	/* Nothing limited: nothing sent. */
	assert_int_equal(cni_parse_config(BW_CONF("\"egressRate\":0"),
					  strlen(BW_CONF("\"egressRate\":0")), CNI_CMD_ADD, &cfg,
					  &err), 0);
	assert_null(cfg.bandwidth);
	cni_config_free(&cfg);
	/* Every field: negative, fractional, a string, absurd; each named. */
	for (size_t i = 0; i < 4; i++) {
		const char *f = fields[i];
		int rate = strstr(f, "Rate") != NULL;
		const char *bad[] = { "-1", "1.5", "1e9", "\"100M\"", "true", "[]",
				      rate ? "1000000000001" : "4294967296",
				      rate ? "7999" : "99999999999999999" };

		snprintf(needle, sizeof(needle), "runtimeConfig.bandwidth.%s", f);
		for (size_t b = 0; b < sizeof(bad) / sizeof(bad[0]); b++) {
			snprintf(conf, sizeof(conf), BW_CONF("\"%s\":%s"), f, bad[b]);
			expect_config_error(conf, CNI_CMD_ADD, CNI_ERR_INVALID_CONFIG, needle);
		}
	}
	expect_config_error(BW_CONF("\"egressRate\":-100000000"), CNI_CMD_ADD,
			    CNI_ERR_INVALID_CONFIG, "must not be negative");
	expect_config_error(BW_CONF("\"egressRate\":1.5e8"), CNI_CMD_ADD, CNI_ERR_INVALID_CONFIG,
			    "without a fraction or exponent");
	expect_config_error("{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"type\":\"t\","
			    "\"runtimeConfig\":{\"bandwidth\":[1]}}",
			    CNI_CMD_ADD, CNI_ERR_INVALID_CONFIG, "runtimeConfig.bandwidth");
	/* DEL and CHECK never fail over it. */
	assert_int_equal(cni_parse_config(BW_CONF("\"egressRate\":-1"),
					  strlen(BW_CONF("\"egressRate\":-1")), CNI_CMD_DEL, &cfg,
					  &err), 0);
	assert_null(cfg.bandwidth);
	cni_config_free(&cfg);
}

static void test_json_object_get_ci(void **state)
{
	json_t *o = json_loads("{\"HostPort\":1,\"hostport\":2,\"Other\":3}", 0, NULL);

	(void)state;
	assert_non_null(o);
	/* Exact spelling first, then any case. */
	assert_int_equal(json_integer_value(json_object_get_ci(o, "hostport")), 2);
	assert_int_equal(json_integer_value(json_object_get_ci(o, "HostPort")), 1);
	assert_int_equal(json_integer_value(json_object_get_ci(o, "other")), 3);
	assert_int_equal(json_integer_value(json_object_get_ci(o, "OTHER")), 3);
	assert_null(json_object_get_ci(o, "missing"));
	assert_null(json_object_get_ci(o, "Othe"));
	assert_null(json_object_get_ci(NULL, "x"));
	assert_null(json_object_get_ci(json_array_get(o, 0), "x"));
	json_decref(o);
}

static void test_config_gc_attachments(void **state)
{
	const char *spec = "{\"cniVersion\":\"1.1.0\",\"name\":\"n\",\"type\":\"t\","
			   "\"cni.dev/valid-attachments\":[{\"containerID\":\"c1\",\"ifname\":\"eth0\"},"
			   "{\"containerId\":\"c2\",\"ifname\":\"net1\"}]}";
	const char *old = "{\"cniVersion\":\"1.1.0\",\"name\":\"n\",\"type\":\"t\","
			  "\"cni.dev/attachments\":[{\"containerID\":\"c3\",\"ifname\":\"eth0\"}]}";
	const char *empty = "{\"cniVersion\":\"1.1.0\",\"name\":\"n\",\"type\":\"t\","
			    "\"cni.dev/valid-attachments\":[]}";
	struct cni_error err = { 0 };
	struct cni_config cfg;
	json_t *a;

	(void)state;
	assert_int_equal(cni_parse_config(spec, strlen(spec), CNI_CMD_GC, &cfg, &err), 0);
	assert_int_equal(json_array_size(cfg.valid_attachments), 2);
	a = json_array_get(cfg.valid_attachments, 1);
	assert_string_equal(str_at(a, "containerId"), "c2");
	assert_string_equal(str_at(a, "ifname"), "net1");
	assert_null(json_object_get(json_array_get(cfg.valid_attachments, 0), "containerID"));
	cni_config_free(&cfg);
	assert_int_equal(cni_parse_config(old, strlen(old), CNI_CMD_GC, &cfg, &err), 0);
	assert_string_equal(str_at(json_array_get(cfg.valid_attachments, 0), "containerId"), "c3");
	cni_config_free(&cfg);
	assert_int_equal(cni_parse_config(empty, strlen(empty), CNI_CMD_GC, &cfg, &err), 0);
	assert_int_equal(json_array_size(cfg.valid_attachments), 0);
	cni_config_free(&cfg);

	expect_config_error(CONF("1.1.0"), CNI_CMD_GC, CNI_ERR_INVALID_CONFIG, "valid-attachments");
	expect_config_error("{\"cniVersion\":\"1.1.0\",\"name\":\"n\",\"type\":\"t\","
			    "\"cni.dev/valid-attachments\":[{\"ifname\":\"eth0\"}]}",
			    CNI_CMD_GC, CNI_ERR_INVALID_CONFIG, "containerID");
}

/* ---- results ------------------------------------------------------------- */

static void test_format_result_all_versions(void **state)
{
	json_t *resp = json_loads(AGENT_ADD_RESULT, 0, NULL), *agent, *out, *ips, *ifs, *ip;
	struct cni_error err = { 0 };
	size_t i, j;

	(void)state;
	assert_non_null(resp);
	agent = json_object_get(resp, "result");
	for (i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		bool legacy = versions[i][0] == '0';

		out = cni_format_result(agent, versions[i], &err);
		assert_non_null(out);
		assert_string_equal(str_at(out, "cniVersion"), versions[i]);
		ips = json_object_get(out, "ips");
		assert_int_equal(json_array_size(ips), 2);
		json_array_foreach(ips, j, ip) {
			if (legacy)
				assert_string_equal(str_at(ip, "version"), j ? "6" : "4");
			else
				assert_null(json_object_get(ip, "version"));
			assert_int_equal(json_integer_value(json_object_get(ip, "interface")), 1);
		}
		assert_string_equal(str_at(json_array_get(ips, 0), "address"), "10.244.1.5/32");
		assert_string_equal(str_at(json_array_get(ips, 0), "gateway"), "10.244.1.1");
		assert_string_equal(str_at(json_array_get(ips, 1), "address"), "fd00::5/128");
		ifs = json_object_get(out, "interfaces");
		assert_int_equal(json_array_size(ifs), 2);
		assert_string_equal(str_at(json_array_get(ifs, 1), "sandbox"), "/run/netns/p");
		assert_string_equal(str_at(json_array_get(ifs, 0), "mac"), "aa:bb:cc:dd:ee:01");
		/* 1.1-only fields have no 0.x form; 1.x keeps them. */
		assert_int_equal(json_object_get(json_array_get(ifs, 0), "mtu") == NULL, legacy);
		assert_int_equal(json_object_get(json_array_get(json_object_get(out, "routes"), 0),
						 "mtu") == NULL,
				 legacy);
		assert_string_equal(str_at(json_array_get(json_object_get(out, "routes"), 0), "gw"),
				    "10.244.1.1");
		assert_non_null(json_object_get(json_object_get(out, "dns"), "nameservers"));
		/* The agent's private fields stay private. */
		assert_null(json_object_get(out, "hostIfindex"));
		json_decref(out);
	}
	json_decref(resp);
}

static void test_format_result_malformed(void **state)
{
	struct cni_error err = { 0 };
	json_t *bad;

	(void)state;
	assert_null(cni_format_result(NULL, "1.0.0", &err));
	assert_err(&err, CNI_ERR_INTERNAL, "malformed");
	bad = json_loads("{\"ips\":[{\"address\":\"not-an-ip/24\"}]}", 0, NULL);
	assert_null(cni_format_result(bad, "0.4.0", &err));
	assert_err(&err, CNI_ERR_INTERNAL, "ips[0].address");
	json_decref(bad);
	bad = json_loads("{\"ips\":{}}", 0, NULL);
	assert_null(cni_format_result(bad, "1.1.0", &err));
	assert_err(&err, CNI_ERR_INTERNAL, "ips");
	json_decref(bad);
}

static void test_prev_result_to_1x(void **state)
{
	json_t *prev = json_loads("{\"cniVersion\":\"0.4.0\",\"interfaces\":[{\"name\":\"eth0\"}],"
				  "\"ips\":[{\"version\":\"4\",\"address\":\"10.0.0.2/24\",\"interface\":0},"
				  "{\"version\":\"6\",\"address\":\"fd00::2/64\"}]}",
				  0, NULL);
	struct cni_error err = { 0 };
	json_t *out, *ip;
	size_t i;

	(void)state;
	out = cni_prev_result_to_1x(prev, &err);
	assert_non_null(out);
	assert_null(json_object_get(out, "cniVersion"));
	assert_int_equal(json_array_size(json_object_get(out, "ips")), 2);
	json_array_foreach(json_object_get(out, "ips"), i, ip)
		assert_null(json_object_get(ip, "version"));
	assert_string_equal(str_at(json_array_get(json_object_get(out, "ips"), 1), "address"),
			    "fd00::2/64");
	/* The input is not modified. */
	assert_non_null(json_object_get(json_array_get(json_object_get(prev, "ips"), 0), "version"));
	json_decref(out);
	json_decref(prev);
	assert_null(cni_prev_result_to_1x(NULL, &err));
	assert_err(&err, CNI_ERR_INVALID_CONFIG, "prevResult");
}

static void test_error_json(void **state)
{
	struct cni_error err = { 0 };
	json_t *out;

	(void)state;
	cni_set_error(&err, 7, "more words", "bad %s", "thing");
	out = cni_error_json("0.3.1", &err);
	assert_non_null(out);
	assert_int_equal(json_object_size(out), 4);
	assert_string_equal(str_at(out, "cniVersion"), "0.3.1");
	assert_int_equal(json_integer_value(json_object_get(out, "code")), 7);
	assert_string_equal(str_at(out, "msg"), "bad thing");
	assert_string_equal(str_at(out, "details"), "more words");
	json_decref(out);

	/* No details: still a string; invalid UTF-8 must not lose the error. */
	cni_set_error(&err, 4, NULL, "bad \xff byte");
	out = cni_error_json(NULL, &err);
	assert_non_null(out);
	assert_string_equal(str_at(out, "cniVersion"), "1.1.0");
	assert_string_equal(str_at(out, "details"), "");
	assert_string_equal(str_at(out, "msg"), "bad ? byte");
	json_decref(out);
}

static void test_version_json(void **state)
{
	static const char *const inputs[][2] = {
		{ CONF("0.3.1"), "0.3.1" }, { CONF("1.0.0"), "1.0.0" },
		{ "{\"cniVersion\":\"0.4.0\"}", "0.4.0" }, { CONF("0.2.0"), "1.1.0" },
		{ "garbage", "1.1.0" }, { "", "1.1.0" }, { NULL, "1.1.0" },
	};
	json_t *out, *list;
	size_t i, j;

	(void)state;
	for (i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
		out = cni_version_json(inputs[i][0], inputs[i][0] ? strlen(inputs[i][0]) : 0);
		assert_non_null(out);
		assert_int_equal(json_object_size(out), 2);
		assert_string_equal(str_at(out, "cniVersion"), inputs[i][1]);
		list = json_object_get(out, "supportedVersions");
		assert_int_equal(json_array_size(list), 5);
		for (j = 0; j < 5; j++)
			assert_string_equal(json_string_value(json_array_get(list, j)), versions[j]);
		json_decref(out);
	}
}

/* ---- whole invocations against a stub agent ------------------------------ */

#define ADD_ENV                                                                            \
	"CNI_COMMAND=ADD", "CNI_CONTAINERID=ctr1", "CNI_NETNS=/run/netns/p", "CNI_IFNAME=eth0", \
		"CNI_PATH=/opt/cni/bin",                                                    \
		"CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;"     \
		"K8S_POD_UID=uid-1;K8S_POD_INFRA_CONTAINER_ID=ctr1;FOO=x"

static void test_run_version(void **state)
{
	const char *envp[] = { "CNI_COMMAND=VERSION", NULL };
	struct fake_agent fa = { 0 };
	json_t *out;
	int status;

	(void)state;
	out = run(envp, CONF("0.3.0"), &fa, &status);
	assert_int_equal(status, 0);
	assert_string_equal(str_at(out, "cniVersion"), "0.3.0");
	assert_int_equal(fa.calls, 0);
	json_decref(out);
	out = run(envp, NULL, &fa, &status);
	assert_int_equal(status, 0);
	assert_string_equal(str_at(out, "cniVersion"), "1.1.0");
	json_decref(out);
}

static void test_run_add_request_and_result(void **state)
{
	const char *envp[] = { ADD_ENV, NULL };
	const char *conf = "{\"cniVersion\":\"0.3.1\",\"name\":\"sluice\",\"type\":\"sluice-cni\","
			   "\"socket\":\"/tmp/s.sock\",\"runtimeConfig\":{\"portMappings\":"
			   "[{\"hostPort\":80,\"containerPort\":8080,\"protocol\":\"tcp\"}]}}";
	struct fake_agent fa = { .answer = AGENT_ADD_RESULT };
	json_t *out, *cni, *k8s;
	int status;

	(void)state;
	out = run(envp, conf, &fa, &status);
	assert_int_equal(status, 0);
	assert_int_equal(fa.calls, 1);
	assert_string_equal(fa.socket, "/tmp/s.sock");
	assert_int_equal(fa.timeout_ms, 60000);
	assert_string_equal(str_at(fa.req, "op"), "add");
	cni = json_object_get(fa.req, "cni");
	assert_string_equal(str_at(cni, "containerId"), "ctr1");
	assert_string_equal(str_at(cni, "ifname"), "eth0");
	assert_string_equal(str_at(cni, "netns"), "/run/netns/p");
	assert_string_equal(str_at(cni, "network"), "sluice");
	assert_null(json_object_get(cni, "prevResult"));
	k8s = json_object_get(cni, "k8s");
	assert_string_equal(str_at(k8s, "namespace"), "default");
	assert_string_equal(str_at(k8s, "name"), "web-0");
	assert_string_equal(str_at(k8s, "uid"), "uid-1");
	assert_string_equal(str_at(k8s, "infraContainerId"), "ctr1");
	assert_mapping(json_array_get(json_object_get(cni, "portMappings"), 0), 80, 8080, "tcp",
		       NULL);
	assert_null(json_object_get(cni, "bandwidth"));
	/* Printed in the configuration's version. */
	assert_string_equal(str_at(out, "cniVersion"), "0.3.1");
	assert_string_equal(str_at(json_array_get(json_object_get(out, "ips"), 0), "version"), "4");
	json_decref(out);
	json_decref(fa.req);
}

/* The ADD request carries the limits; a bad one never reaches the agent. */
static void test_run_add_bandwidth(void **state)
{
	const char *envp[] = { ADD_ENV, NULL };
	const char *conf = "{\"cniVersion\":\"1.0.0\",\"name\":\"sluice\",\"type\":\"sluice-cni\","
			   "\"socket\":\"/tmp/s.sock\",\"runtimeConfig\":{\"Bandwidth\":"
			   "{\"ingressRate\":50000000,\"egressRate\":100000000,"
			   "\"egressBurst\":2000000}}}";
	const char *bad = "{\"cniVersion\":\"1.0.0\",\"name\":\"sluice\",\"type\":\"sluice-cni\","
			  "\"socket\":\"/tmp/s.sock\",\"runtimeConfig\":{\"bandwidth\":"
			  "{\"egressRate\":\"100M\"}}}";
	struct fake_agent fa = { .answer = AGENT_ADD_RESULT };
	json_t *out, *bw;
	int status;

	(void)state;
	out = run(envp, conf, &fa, &status);
	assert_int_equal(status, 0);
	bw = json_object_get(json_object_get(fa.req, "cni"), "bandwidth");
	assert_int_equal(json_integer_value(json_object_get(bw, "ingressRate")), 50000000);
	assert_int_equal(json_integer_value(json_object_get(bw, "ingressBurst")), 0);
	assert_int_equal(json_integer_value(json_object_get(bw, "egressRate")), 100000000);
	assert_int_equal(json_integer_value(json_object_get(bw, "egressBurst")), 2000000);
	json_decref(out);
	json_decref(fa.req);

	memset(&fa, 0, sizeof(fa));
	fa.answer = AGENT_ADD_RESULT;
	out = run(envp, bad, &fa, &status);
	assert_int_equal(status, 1);
	assert_int_equal(fa.calls, 0);
	assert_int_equal(json_integer_value(json_object_get(out, "code")), 7);
	assert_non_null(strstr(str_at(out, "msg"), "runtimeConfig.bandwidth.egressRate"));
	json_decref(out);
}

static void test_run_env_error_uses_config_version(void **state)
{
	const char *envp[] = { "CNI_COMMAND=ADD", "CNI_CONTAINERID=ctr1", "CNI_IFNAME=eth0", NULL };
	struct fake_agent fa = { 0 };
	json_t *out;
	int status;

	(void)state;
	out = run(envp, CONF("0.4.0"), &fa, &status);
	assert_int_equal(status, 1);
	assert_cni_error(out, CNI_ERR_INVALID_ENV, "0.4.0", "CNI_NETNS");
	assert_int_equal(fa.calls, 0);
	json_decref(out);
	/* An unsupported version cannot be answered in: the latest is used. */
	out = run(envp, CONF("0.2.0"), &fa, &status);
	assert_cni_error(out, CNI_ERR_INVALID_ENV, "1.1.0", "CNI_NETNS");
	json_decref(out);
}

static void test_run_config_errors(void **state)
{
	const char *envp[] = { ADD_ENV, NULL };
	const char *check[] = { "CNI_COMMAND=CHECK", "CNI_CONTAINERID=c", "CNI_NETNS=/n",
				"CNI_IFNAME=eth0", NULL };
	struct fake_agent fa = { 0 };
	json_t *out;
	int status;

	(void)state;
	out = run(envp, "{oops", &fa, &status);
	assert_int_equal(status, 1);
	assert_cni_error(out, CNI_ERR_DECODE, "1.1.0", "decoding");
	json_decref(out);
	out = run(envp, CONF("9.9.9"), &fa, &status);
	assert_cni_error(out, CNI_ERR_INCOMPATIBLE_VERSION, "1.1.0", "incompatible");
	json_decref(out);
	out = run(check, CONF_PREV("0.3.1", "{}"), &fa, &status);
	assert_int_equal(status, 1);
	assert_cni_error(out, CNI_ERR_INCOMPATIBLE_VERSION, "0.3.1", "does not allow CHECK");
	json_decref(out);
	assert_int_equal(fa.calls, 0);
}

static void test_run_agent_unreachable(void **state)
{
	static const int errs[] = { -ENOENT, -ECONNREFUSED, -ETIMEDOUT };
	const char *add[] = { ADD_ENV, NULL };
	const char *del[] = { "CNI_COMMAND=DEL", "CNI_CONTAINERID=ctr1", "CNI_IFNAME=eth0", NULL };
	const char *status_env[] = { "CNI_COMMAND=STATUS", NULL };
	struct fake_agent fa = { 0 };
	json_t *out;
	size_t i;
	int status;

	(void)state;
	for (i = 0; i < 3; i++) {
		fa.ret = errs[i];
		out = run(add, CONF("1.0.0"), &fa, &status);
		assert_int_equal(status, 1);
		assert_cni_error(out, CNI_ERR_TRY_AGAIN, "1.0.0", "unreachable");
		assert_true(strstr(str_at(out, "details"), "fake agent at /run/sluice/sluice.sock"));
		json_decref(out);
		/* A DEL that finds no agent is queued (test_delq.c); one that
		 * times out on a live agent is the runtime's to retry. */
		if (errs[i] == -ETIMEDOUT) {
			out = run(del, CONF("0.3.0"), &fa, &status);
			assert_int_equal(status, 1);
			assert_cni_error(out, CNI_ERR_TRY_AGAIN, "0.3.0", NULL);
			json_decref(out);
		}
		out = run(status_env, CONF("1.1.0"), &fa, &status);
		assert_int_equal(status, 1);
		assert_cni_error(out, CNI_ERR_NOT_AVAILABLE, "1.1.0", "not available");
		assert_int_equal(fa.timeout_ms, 5000);
		json_decref(out);
	}
	fa.ret = -EACCES;
	out = run(add, CONF("1.0.0"), &fa, &status);
	assert_cni_error(out, CNI_ERR_INTERNAL, "1.0.0", NULL);
	json_decref(out);
	json_decref(fa.req);
}

static void test_run_agent_error_passthrough(void **state)
{
	const char *envp[] = { ADD_ENV, NULL };
	struct fake_agent fa = {
		.answer = "{\"ok\":false,\"error\":{\"code\":42,\"msg\":\"IPAM exhausted\","
			  "\"details\":\"10.244.1.0/24 has no free address\"}}",
	};
	json_t *out;
	int status;

	(void)state;
	out = run(envp, CONF("1.1.0"), &fa, &status);
	assert_int_equal(status, 1);
	assert_cni_error(out, 42, "1.1.0", NULL);
	assert_string_equal(str_at(out, "msg"), "IPAM exhausted");
	assert_string_equal(str_at(out, "details"), "10.244.1.0/24 has no free address");
	json_decref(out);

	fa.answer = "{\"result\":{}}";
	out = run(envp, CONF("1.1.0"), &fa, &status);
	assert_cni_error(out, CNI_ERR_INTERNAL, "1.1.0", "malformed");
	json_decref(out);
	fa.answer = "{\"ok\":false,\"error\":{\"msg\":\"no code\"}}";
	out = run(envp, CONF("1.1.0"), &fa, &status);
	assert_cni_error(out, CNI_ERR_INTERNAL, "1.1.0", "malformed");
	json_decref(out);
	json_decref(fa.req);
}

static void test_run_del_check_gc_status(void **state)
{
	const char *del[] = { "CNI_COMMAND=DEL", "CNI_CONTAINERID=ctr1", "CNI_IFNAME=eth0", NULL };
	const char *check[] = { "CNI_COMMAND=CHECK", "CNI_CONTAINERID=ctr1", "CNI_NETNS=/run/netns/p",
				"CNI_IFNAME=eth0", NULL };
	const char *gc[] = { "CNI_COMMAND=GC", "CNI_PATH=/opt/cni/bin", NULL };
	const char *st[] = { "CNI_COMMAND=STATUS", NULL };
	const char *prev = "{\"cniVersion\":\"0.4.0\",\"ips\":[{\"version\":\"4\","
			   "\"address\":\"10.244.1.5/32\",\"interface\":1}]}";
	char conf[512];
	struct fake_agent fa = { .answer = "{\"ok\":true,\"result\":{}}" };
	json_t *out, *cni, *ip;
	int status;

	(void)state;
	/* DEL without a namespace: success prints nothing, netns is "". */
	out = run(del, CONF("1.0.0"), &fa, &status);
	assert_int_equal(status, 0);
	assert_null(out);
	assert_string_equal(str_at(fa.req, "op"), "del");
	assert_string_equal(str_at(json_object_get(fa.req, "cni"), "netns"), "");

	/* CHECK sends the 0.4.0 prevResult in the 1.x layout. */
	snprintf(conf, sizeof(conf), CONF_PREV("0.4.0", "%s"), prev);
	out = run(check, conf, &fa, &status);
	assert_int_equal(status, 0);
	assert_null(out);
	assert_string_equal(str_at(fa.req, "op"), "check");
	cni = json_object_get(fa.req, "cni");
	ip = json_array_get(json_object_get(json_object_get(cni, "prevResult"), "ips"), 0);
	assert_string_equal(str_at(ip, "address"), "10.244.1.5/32");
	assert_null(json_object_get(ip, "version"));

	/* DEL forwards prevResult as well. */
	out = run(del, conf, &fa, &status);
	assert_int_equal(status, 0);
	assert_non_null(json_object_get(json_object_get(fa.req, "cni"), "prevResult"));

	fa.answer = "{\"ok\":true,\"result\":{\"removed\":[]}}";
	out = run(gc,
		  "{\"cniVersion\":\"1.1.0\",\"name\":\"sluice\",\"type\":\"sluice-cni\","
		  "\"cni.dev/valid-attachments\":[{\"containerID\":\"ctr1\",\"ifname\":\"eth0\"}]}",
		  &fa, &status);
	assert_int_equal(status, 0);
	assert_null(out);
	assert_string_equal(str_at(fa.req, "op"), "gc");
	assert_string_equal(str_at(json_object_get(fa.req, "gc"), "network"), "sluice");
	assert_string_equal(str_at(json_array_get(json_object_get(json_object_get(fa.req, "gc"),
								   "validAttachments"),
						  0),
				   "containerId"),
			    "ctr1");

	fa.answer = "{\"ok\":true,\"result\":{\"ready\":true}}";
	out = run(st, CONF("1.1.0"), &fa, &status);
	assert_int_equal(status, 0);
	assert_null(out);
	assert_string_equal(str_at(fa.req, "op"), "status");
	fa.answer = "{\"ok\":true,\"result\":{\"ready\":false}}";
	out = run(st, CONF("1.1.0"), &fa, &status);
	assert_int_equal(status, 1);
	assert_cni_error(out, CNI_ERR_NOT_AVAILABLE, "1.1.0", "not ready");
	json_decref(out);
	fa.answer = "{\"ok\":false,\"error\":{\"code\":50,\"msg\":\"starting\",\"details\":\"\"}}";
	out = run(st, CONF("1.1.0"), &fa, &status);
	assert_cni_error(out, CNI_ERR_NOT_AVAILABLE, "1.1.0", "starting");
	json_decref(out);
	json_decref(fa.req);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_env_add_ok),
		cmocka_unit_test(test_env_missing_per_command),
		cmocka_unit_test(test_env_optional_per_command),
		cmocka_unit_test(test_env_no_container_vars),
		cmocka_unit_test(test_env_command),
		cmocka_unit_test(test_container_id),
		cmocka_unit_test(test_ifname),
		cmocka_unit_test(test_args_any_order),
		cmocka_unit_test(test_args_ignore_unknown),
		cmocka_unit_test(test_args_malformed),
		cmocka_unit_test(test_config_decode),
		cmocka_unit_test(test_config_required_fields),
		cmocka_unit_test(test_config_versions),
		cmocka_unit_test(test_config_command_floor),
		cmocka_unit_test(test_config_unknown_keys_and_socket),
		cmocka_unit_test(test_config_runtime_config_ci),
		cmocka_unit_test(test_config_bandwidth),
		cmocka_unit_test(test_json_object_get_ci),
		cmocka_unit_test(test_config_gc_attachments),
		cmocka_unit_test(test_format_result_all_versions),
		cmocka_unit_test(test_format_result_malformed),
		cmocka_unit_test(test_prev_result_to_1x),
		cmocka_unit_test(test_error_json),
		cmocka_unit_test(test_version_json),
		cmocka_unit_test(test_run_version),
		cmocka_unit_test(test_run_add_request_and_result),
		cmocka_unit_test(test_run_add_bandwidth),
		cmocka_unit_test(test_run_env_error_uses_config_version),
		cmocka_unit_test(test_run_config_errors),
		cmocka_unit_test(test_run_agent_unreachable),
		cmocka_unit_test(test_run_agent_error_passthrough),
		cmocka_unit_test(test_run_del_check_gc_status),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
