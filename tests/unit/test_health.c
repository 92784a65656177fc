// SPDX-License-Identifier: Apache-2.0
/*
 * Service health checks (agent/health.c): the answer kube-proxy gives
 * (status, headers, JSON body), the count of ready local endpoints, and
 * that nothing is served without a node address or for a Service that
 * keeps no client address. The listeners themselves are exercised by
 * tests/e2e/services-ns.sh, in network namespaces of its own.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "health.h"

static json_t *body_of(const char *answer)
{
	const char *b = strstr(answer, "\r\n\r\n");

	assert_non_null(b);
	return json_loads(b + 4, 0, NULL);
}

static void test_answer_200_and_503(void **state)
{
	char buf[1024];
	json_t *j;
	size_t n;

	(void)state;
	n = health_answer("shop", "web", 2, buf, sizeof(buf));
	assert_int_equal(n, strlen(buf));
	assert_memory_equal(buf, "HTTP/1.1 200 OK\r\n", 17);
	assert_non_null(strstr(buf, "Content-Type: application/json\r\n"));
	assert_non_null(strstr(buf, "X-Load-Balancing-Endpoint-Weight: 2\r\n"));
	j = body_of(buf);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "service"),
							       "namespace")), "shop");
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "service"), "name")),
			    "web");
	assert_int_equal(json_integer_value(json_object_get(j, "localEndpoints")), 2);
	assert_true(json_is_true(json_object_get(j, "serviceProxyHealthy")));
	/* Content-Length is the body's. */
	{
		const char *cl = strstr(buf, "Content-Length: ");
		size_t len = strlen(strstr(buf, "\r\n\r\n") + 4);

		assert_non_null(cl);
		assert_int_equal(strtoul(cl + 16, NULL, 10), len);
	}
	json_decref(j);
	health_answer("shop", "web", 0, buf, sizeof(buf));
	assert_memory_equal(buf, "HTTP/1.1 503 Service Unavailable\r\n", 34);
	j = body_of(buf);
	assert_int_equal(json_integer_value(json_object_get(j, "localEndpoints")), 0);
	json_decref(j);
	/* A small buffer: cut, terminated, never overrun. */
	n = health_answer("shop", "web", 1, buf, 20);
	assert_int_equal(n, 19);
	assert_int_equal(strlen(buf), 19);
}

static void test_local_endpoints(void **state)
{
	struct svc_backend http[] = {
		{ .ip = 0x0ad20105, .port = 8080, .ready = true, .local = true },	/* by nodeName */
		{ .ip = 0x0ad20106, .port = 8080, .ready = true },			/* in the pod CIDR */
		{ .ip = 0x0ad20205, .port = 8080, .ready = true },			/* another node's */
		{ .ip = 0x0ad20107, .port = 8080, .ready = false, .serving = true, .local = true },
	};
	struct svc_backend dns[] = {
		{ .ip = 0x0ad20105, .port = 8081, .ready = true, .local = true },	/* same pod */
	};
	struct svc_view_port ports[] = { { .backends = http, .nbackends = 4 },
					 { .backends = dns, .nbackends = 1 } };
	struct svc_view_service vs = { .ns = "shop", .name = "web", .ports = ports, .nports = 2 };
	struct lb_node node = { .node_ip = 0x0ac8000b, .pod_cidr = { 0x0ad20100, 24 } };

	(void)state;
	/* Ready, local, each pod once: 0x..105 and 0x..106. */
	assert_int_equal(health_local_endpoints(&vs, &node), 2);
	/* Without the pod CIDR only nodeName tells. */
	assert_int_equal(health_local_endpoints(&vs, NULL), 1);
}

static void test_sync_needs_node_address_and_local_policy(void **state)
{
	struct svc_service etp_local = { .etp_local = true, .health_check_node_port = 32001 };
	struct svc_service cluster = { .health_check_node_port = 32002 };
	struct svc_view_service vs[] = { { .ns = "shop", .name = "loc", .svc = &etp_local },
					 { .ns = "shop", .name = "web", .svc = &cluster } };
	struct svc_view v = { .v = vs, .n = 2 };
	struct lb_node none = { 0 };
	struct health_server *h;
	struct pollfd pfd[HEALTH_POLLFDS];

	(void)state;
	assert_int_equal(health_open(&h), 0);
	/* No node address: nothing to bind to. */
	assert_int_equal(health_sync(h, &v, &none), 0);
	assert_int_equal(health_pollfds(h, pfd), 0);
	assert_int_equal(health_timeout_ms(h), -1);
	/* A Service kube-proxy leaves alone: none either. */
	vs[0].status = "headless";
	assert_int_equal(health_sync(h, &v, &none), 0);
	assert_int_equal(health_sync(h, NULL, &none), 0);
	health_close(h);
}

/* status's healthChecks: one entry per eTP Local Service with a
 * healthCheckNodePort, in port order, saying whether it is bound. The
 * node's address here is one no interface has (TEST-NET-1), so the bind
 * fails and nothing listens: the entry stays, "listening": false. */
static void test_status_lists_listeners(void **state)
{
	struct svc_backend be = { .ip = 0x0ad20105, .port = 8080, .ready = true, .local = true };
	struct svc_view_port port = { .backends = &be, .nbackends = 1 };
	struct svc_service a = { .etp_local = true, .health_check_node_port = 32011 };
	struct svc_service b = { .etp_local = true, .health_check_node_port = 32010 };
	struct svc_service cluster = { .health_check_node_port = 32012 };
	struct svc_view_service vs[] = {
		{ .ns = "shop", .name = "a", .svc = &a, .ports = &port, .nports = 1 },
		{ .ns = "shop", .name = "b", .svc = &b },
		{ .ns = "shop", .name = "web", .svc = &cluster },
	};
	struct svc_view v = { .v = vs, .n = 3 };
	struct lb_node node = { .node_ip = 0xc0000201 };
	struct health_server *h;
	json_t *j, *e;

	(void)state;
	j = health_status_json(NULL);
	assert_non_null(j);
	assert_int_equal(json_array_size(j), 0);
	json_decref(j);
	assert_int_equal(health_open(&h), 0);
	health_sync(h, &v, &node);
	j = health_status_json(h);
	assert_non_null(j);
	assert_int_equal(json_array_size(j), 2);
	e = json_array_get(j, 0);
	assert_string_equal(json_string_value(json_object_get(e, "name")), "b");
	assert_int_equal(json_integer_value(json_object_get(e, "port")), 32010);
	assert_int_equal(json_integer_value(json_object_get(e, "localEndpoints")), 0);
	e = json_array_get(j, 1);
	assert_string_equal(json_string_value(json_object_get(e, "namespace")), "shop");
	assert_string_equal(json_string_value(json_object_get(e, "name")), "a");
	assert_int_equal(json_integer_value(json_object_get(e, "port")), 32011);
	assert_int_equal(json_integer_value(json_object_get(e, "localEndpoints")), 1);
	assert_true(json_is_false(json_object_get(e, "listening")));
	json_decref(j);
	health_close(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_answer_200_and_503),
		cmocka_unit_test(test_local_endpoints),
		cmocka_unit_test(test_sync_needs_node_address_and_local_policy),
		cmocka_unit_test(test_status_lists_listeners),
	};

	return cmocka_run_group_tests_name("health", tests, NULL, NULL);
}
