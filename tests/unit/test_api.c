// SPDX-License-Identifier: Apache-2.0
/* The agent API codec: framing (lib/api.c) and the agent's request and
 * endpoint encoding (agent/request.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "api.h"
#include "request.h"

static json_t *parse(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, 0, &e);

	if (!j)
		fail_msg("bad test JSON: %s", e.text);
	return j;
}

static void test_frame_roundtrip(void **state)
{
	json_t *msg = parse("{\"op\":\"add\",\"cni\":{\"containerId\":\"abc\"}}"), *got = NULL;
	char err[128];
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(api_write_json(sv[0], msg, 1000), 0);
	shutdown(sv[0], SHUT_WR);
	assert_int_equal(api_read_json(sv[1], &got, 1000, err, sizeof(err)), 0);
	assert_true(json_equal(msg, got));
	json_decref(msg);
	json_decref(got);
	close(sv[0]);
	close(sv[1]);
}

static void test_frame_malformed_and_timeout(void **state)
{
	json_t *got = NULL;
	char err[128];
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(write(sv[0], "{\"op\": ", 7), 7);
	/* no EOF yet: the reader gives up at its deadline */
	assert_int_equal(api_read_json(sv[1], &got, 100, err, sizeof(err)), -ETIMEDOUT);
	/* the cut-off read took those bytes: a new incomplete message */
	assert_int_equal(write(sv[0], "{\"op\": ", 7), 7);
	shutdown(sv[0], SHUT_WR);
	assert_int_equal(api_read_json(sv[1], &got, 1000, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "line 1"));
	assert_null(got);
	close(sv[0]);
	close(sv[1]);
}

/* A peer that closes without sending anything (an agent killed after it
 * accepted the request) is a reset connection, which the plugin answers
 * with "try again" (code 11), not a malformed message. */
static void test_frame_empty_is_reset(void **state)
{
	json_t *got = NULL;
	char err[128];
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	close(sv[0]);
	assert_int_equal(api_read_json(sv[1], &got, 1000, err, sizeof(err)), -ECONNRESET);
	assert_non_null(strstr(err, "closed"));
	assert_null(got);
	close(sv[1]);
}

static void test_frame_too_large(void **state)
{
	size_t len = SLUICE_API_MAX_MSG + 16;
	char *big = malloc(len), err[128];
	json_t *got = NULL;
	int sv[2];
	pid_t pid;

	(void)state;
	memset(big, ' ', len);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	pid = fork();
	if (!pid) {
		close(sv[1]);
		(void)!write(sv[0], big, len);
		_exit(0);
	}
	close(sv[0]);
	assert_int_equal(api_read_json(sv[1], &got, 5000, err, sizeof(err)), -EMSGSIZE);
	close(sv[1]);
	free(big);
}

/* A peer that sends one byte every 50 ms for 3 s and never ends. */
static pid_t trickler(int fd)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (!pid) {
		for (int i = 0; i < 60; i++) {
			if (write(fd, "{", 1) != 1)
				break;
			usleep(50000);
		}
		_exit(0);
	}
	return pid;
}

static void reap(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* The read deadline is for the whole message: a byte every 50 ms does not
 * buy a trickling client more time. */
static void test_read_deadline_trickle(void **state)
{
	struct api_inbox in;
	long long t0, took;
	json_t *got = NULL;
	char err[128];
	int sv[2], ret = 0;
	pid_t pid;

	(void)state;
	alarm(20); /* a reader without a whole-message deadline would hang here */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	pid = trickler(sv[0]);
	t0 = api_now_ms();
	assert_int_equal(api_read_json(sv[1], &got, 300, err, sizeof(err)), -ETIMEDOUT);
	took = api_now_ms() - t0;
	assert_true(took >= 300 && took < 600);

	/* the agent's non-blocking reader, as its poll loop drives it */
	assert_int_equal(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(api_inbox_init(&in, sv[1], SLUICE_API_MAX_MSG, 300), 0);
	t0 = api_now_ms();
	while (!ret) {
		struct pollfd pfd = { .fd = sv[1], .events = POLLIN };

		poll(&pfd, 1, 100);
		ret = api_inbox_read(&in);
	}
	took = api_now_ms() - t0;
	assert_int_equal(ret, -ETIMEDOUT);
	assert_true(in.len > 0); /* it did send bytes */
	assert_true(took >= 300 && took < 600);
	api_inbox_free(&in);
	reap(pid);
	close(sv[0]);
	close(sv[1]);
	alarm(0);
}

/* A client that never reads its answer, or reads a byte at a time, costs
 * the writer one deadline, not forever. */
static void test_write_deadline(void **state)
{
	size_t len = 8u << 20;
	char *big = malloc(len);
	long long t0, took;
	int sv[2];
	pid_t pid;

	(void)state;
	assert_non_null(big);
	memset(big, 'x', len);
	alarm(20);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	t0 = api_now_ms();
	assert_int_equal(api_write_all(sv[0], big, len, 300), -ETIMEDOUT);
	took = api_now_ms() - t0;
	assert_true(took >= 300 && took < 600);
	close(sv[0]);
	close(sv[1]);

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	pid = fork();
	if (!pid) {
		char c;

		close(sv[0]);
		while (read(sv[1], &c, 1) == 1)
			usleep(1000);
		_exit(0);
	}
	close(sv[1]);
	t0 = api_now_ms();
	assert_int_equal(api_write_all(sv[0], big, len, 300), -ETIMEDOUT);
	took = api_now_ms() - t0;
	assert_true(took >= 300 && took < 600);
	reap(pid);
	close(sv[0]);
	free(big);
	alarm(0);
}

/* The client side keeps one deadline over connect, send and receive: an
 * agent that accepts nothing and reads nothing does not hang sluice-cni. */
static void test_call_stuck_agent(void **state)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char path[] = "/tmp/sluice-test-api-XXXXXX", sock[64], err[256];
	json_t *req, *resp = NULL;
	long long t0, took;
	char *pad;
	int fd;

	(void)state;
	alarm(20);
	assert_non_null(mkdtemp(path));
	snprintf(sock, sizeof(sock), "%s/s", path);
	strcpy(sun.sun_path, sock);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(fd, 1), 0);
	pad = calloc(1, 2u << 20);
	memset(pad, 'p', (2u << 20) - 1);
	req = json_pack("{s:s, s:s}", "op", "status", "pad", pad);
	t0 = api_now_ms();
	assert_int_equal(api_call(sock, req, &resp, 300, err, sizeof(err)), -ETIMEDOUT);
	took = api_now_ms() - t0;
	assert_true(took >= 300 && took < 700);
	assert_non_null(strstr(err, sock));
	/* a small request fits the socket buffer: the wait is for the answer */
	json_object_del(req, "pad");
	t0 = api_now_ms();
	assert_int_equal(api_call(sock, req, &resp, 300, err, sizeof(err)), -ETIMEDOUT);
	took = api_now_ms() - t0;
	assert_true(took >= 300 && took < 700);
	json_decref(req);
	free(pad);
	close(fd);
	unlink(sock);
	rmdir(path);
	alarm(0);
}

static void test_call_dead_agent(void **state)
{
	json_t *req = parse("{\"op\":\"status\"}"), *resp = NULL;
	char err[256];

	(void)state;
	assert_int_equal(api_call("/nonexistent/sluice.sock", req, &resp, 1000, err, sizeof(err)),
			 -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/sluice.sock"));
	assert_null(resp);
	json_decref(req);
}

static void test_error_shape(void **state)
{
	json_t *e = api_error(CNI_ERR_INVALID_CONFIG, "bad", "worse");

	(void)state;
	assert_false(json_is_true(json_object_get(e, "ok")));
	assert_int_equal(json_integer_value(json_object_get(json_object_get(e, "error"), "code")), 7);
	assert_string_equal(json_string_value(json_object_get(json_object_get(e, "error"), "msg")),
			    "bad");
	json_decref(e);
}

static void test_parse_cni_ok(void **state)
{
	json_t *cni = parse("{\"containerId\":\"c0ffee-1.x_y\",\"ifname\":\"eth0\","
			    "\"netns\":\"/run/netns/p\",\"network\":\"sluice\","
			    "\"k8s\":{\"namespace\":\"ns\",\"name\":\"web-0\",\"uid\":\"u1\"},"
			    "\"prevResult\":{\"ips\":[]}}");
	struct cni_req r;
	char err[256];

	(void)state;
	assert_int_equal(request_parse_cni(cni, 1, &r, err, sizeof(err)), 0);
	assert_string_equal(r.container_id, "c0ffee-1.x_y");
	assert_string_equal(r.ifname, "eth0");
	assert_string_equal(r.netns, "/run/netns/p");
	assert_string_equal(r.network, "sluice");
	assert_string_equal(r.k8s_namespace, "ns");
	assert_string_equal(r.k8s_pod, "web-0");
	assert_string_equal(r.k8s_uid, "u1");
	assert_non_null(r.prev_result);
	json_decref(cni);
}

static void expect_code(const char *text, int need_netns, int code, const char *word)
{
	json_t *cni = parse(text);
	struct cni_req r;
	char err[256] = "";

	assert_int_equal(request_parse_cni(cni, need_netns, &r, err, sizeof(err)), code);
	if (!strstr(err, word))
		fail_msg("error '%s' does not name %s", err, word);
	json_decref(cni);
}

static void test_parse_cni_errors(void **state)
{
	(void)state;
	expect_code("{\"ifname\":\"eth0\",\"netns\":\"/x\"}", 1, 4, "CNI_CONTAINERID");
	expect_code("{\"containerId\":\"-bad\",\"ifname\":\"eth0\",\"netns\":\"/x\"}", 1, 4,
		    "CNI_CONTAINERID");
	expect_code("{\"containerId\":\"c\",\"ifname\":\"eth0/1\",\"netns\":\"/x\"}", 1, 4, "CNI_IFNAME");
	expect_code("{\"containerId\":\"c\",\"ifname\":\"abcdefghijklmnop\",\"netns\":\"/x\"}", 1, 4,
		    "CNI_IFNAME");
	expect_code("{\"containerId\":\"c\",\"ifname\":\"eth0\"}", 1, 4, "CNI_NETNS");
	expect_code("{\"containerId\":\"c\",\"ifname\":\"eth0\",\"netns\":\"\"}", 1, 4, "CNI_NETNS");
	expect_code("{\"containerId\":\"c\",\"ifname\":\"eth0\",\"netns\":7}", 0, 4, "CNI_NETNS");
	expect_code("{\"containerId\":\"c\",\"ifname\":\"eth0\",\"k8s\":[]}", 0, 6, "k8s");
	expect_code("[]", 0, 6, "cni");
}

static void test_parse_cni_port_mappings(void **state)
{
	json_t *cni = parse("{\"containerId\":\"c\",\"ifname\":\"eth0\",\"netns\":\"/x\","
			    "\"portMappings\":[{\"hostPort\":8080,\"containerPort\":80,"
			    "\"protocol\":\"tcp\"},{\"hostPort\":5353,\"containerPort\":53,"
			    "\"protocol\":\"udp\",\"hostIP\":\"192.0.2.1\"},"
			    "{\"hostPort\":8080,\"containerPort\":80,\"protocol\":\"tcp\"},"
			    "{\"hostPort\":9,\"containerPort\":9,\"protocol\":\"tcp\","
			    "\"hostIP\":\"::\"}]}");
	struct cni_req r;
	char err[256], text[64];

	(void)state;
	assert_int_equal(request_parse_cni(cni, 1, &r, err, sizeof(err)), 0);
	/* the repeated one once; the IPv6 one is not sluice's */
	assert_int_equal(r.nports, 2);
	hostport_format(&r.ports[0], text, sizeof(text));
	assert_string_equal(text, "8080/tcp -> 80");
	hostport_format(&r.ports[1], text, sizeof(text));
	assert_string_equal(text, "192.0.2.1:5353/udp -> 53");
	/* DEL ignores them */
	assert_int_equal(request_parse_cni(cni, 0, &r, err, sizeof(err)), 0);
	assert_int_equal(r.nports, 0);
	json_decref(cni);
	expect_code("{\"containerId\":\"c\",\"ifname\":\"eth0\",\"netns\":\"/x\",\"portMappings\":"
		    "[{\"hostPort\":1,\"containerPort\":2,\"protocol\":\"icmp\"}]}", 1, 7,
		    "tcp, udp or sctp");
	expect_code("{\"containerId\":\"c\",\"ifname\":\"eth0\",\"netns\":\"/x\",\"portMappings\":"
		    "[{\"hostPort\":0,\"containerPort\":2}]}", 1, 7, "portMappings[0]");
	expect_code("{\"containerId\":\"c\",\"ifname\":\"eth0\",\"netns\":\"/x\",\"portMappings\":"
		    "[{\"hostPort\":1,\"containerPort\":2,\"hostIP\":\"1.2.3\"}]}", 1, 7, "hostIP");
}

/* The agent checks "bandwidth" again: the socket has other clients. */
static void test_parse_cni_bandwidth(void **state)
{
	static const char *const fields[] = { "ingressRate", "ingressBurst", "egressRate",
					      "egressBurst" };
	json_t *cni = parse("{\"containerId\":\"c\",\"ifname\":\"eth0\",\"netns\":\"/x\","
			    "\"bandwidth\":{\"ingressRate\":50000000,\"ingressBurst\":0,"
			    "\"EgressRate\":100000000,\"egressBurst\":4294967295}}");
	struct cni_req r;
	char err[256], text[256];

	(void)state;
	assert_int_equal(request_parse_cni(cni, 1, &r, err, sizeof(err)), 0);
	assert_int_equal(r.bw.ingress_rate, 50000000);
	assert_int_equal(r.bw.ingress_burst, 0);
	assert_int_equal(r.bw.egress_rate, 100000000);
	assert_int_equal(r.bw.egress_burst, 4294967295ULL);
	/* DEL takes nothing from it. */
	assert_int_equal(request_parse_cni(cni, 0, &r, err, sizeof(err)), 0);
	assert_int_equal(r.bw.egress_rate, 0);
	json_decref(cni);
	for (size_t i = 0; i < 4; i++) {
		int rate = strstr(fields[i], "Rate") != NULL;
		const char *bad[] = { "-1", "0.5", "\"1G\"", "null", rate ? "5" : "4294967296",
				      rate ? "1000000000001" : "1e12" };

		for (size_t b = 0; b < sizeof(bad) / sizeof(bad[0]); b++) {
			snprintf(text, sizeof(text), "{\"containerId\":\"c\",\"ifname\":\"eth0\","
				 "\"netns\":\"/x\",\"bandwidth\":{\"%s\":%s}}", fields[i], bad[b]);
			if (!strcmp(bad[b], "null")) {
				/* null is "not set", as absent */
				cni = parse(text);
				assert_int_equal(request_parse_cni(cni, 1, &r, err, sizeof(err)), 0);
				json_decref(cni);
				continue;
			}
			expect_code(text, 1, 7, fields[i]);
		}
	}
	expect_code("{\"containerId\":\"c\",\"ifname\":\"eth0\",\"netns\":\"/x\",\"bandwidth\":7}",
		    1, 7, "runtimeConfig.bandwidth");
}

/* A burst must hold one packet of the pod's MTU (in bits). */
static void test_check_bandwidth_mtu(void **state)
{
	struct bw_limits l = { .egress_rate = 100000000, .egress_burst = 12000 };
	char err[256] = "";

	(void)state;
	assert_int_equal(request_check_bandwidth(&l, 1500, err, sizeof(err)), 0);
	assert_int_equal(request_check_bandwidth(&l, 0, err, sizeof(err)), 0);
	assert_int_equal(request_check_bandwidth(&l, 1501, err, sizeof(err)), 7);
	assert_non_null(strstr(err, "runtimeConfig.bandwidth.egressBurst"));
	assert_non_null(strstr(err, "1501"));
	l.egress_burst = 11599;	/* 1450 bytes of overlay MTU is 11600 bits */
	assert_int_equal(request_check_bandwidth(&l, 1450, err, sizeof(err)), 7);
	l.egress_burst = 11600;
	assert_int_equal(request_check_bandwidth(&l, 1450, err, sizeof(err)), 0);
	l = (struct bw_limits){ .ingress_rate = 8000, .ingress_burst = 8 };
	assert_int_equal(request_check_bandwidth(&l, 1500, err, sizeof(err)), 7);
	assert_non_null(strstr(err, "ingressBurst"));
	l.ingress_burst = 0;	/* the default */
	assert_int_equal(request_check_bandwidth(&l, 1500, err, sizeof(err)), 0);
}

/* min(burst/8, max(250 ms of the rate, 128 KiB)); no burst is 2^32-1 bits. */
static void test_bw_depth_and_format(void **state)
{
	char buf[16];

	(void)state;
	assert_int_equal(bw_depth(100000000, 0), 3125000);
	assert_int_equal(bw_depth(100000000, 4294967295ULL), 3125000);
	assert_int_equal(bw_depth(100000000, 800000), 100000);
	assert_int_equal(bw_depth(8000, 0), 128 * 1024);
	assert_int_equal(bw_depth(8000, 12000), 1500);
	assert_int_equal(bw_depth(1000000000000ULL, 0), 4294967295ULL / 8);
	bw_format_rate(100000000, buf, sizeof(buf));
	assert_string_equal(buf, "100M");
	bw_format_rate(1500000000, buf, sizeof(buf));
	assert_string_equal(buf, "1.5G");
	bw_format_rate(8000, buf, sizeof(buf));
	assert_string_equal(buf, "8K");
	bw_format_rate(0, buf, sizeof(buf));
	assert_string_equal(buf, "-");
}

static void test_parse_cni_del_without_netns(void **state)
{
	json_t *cni = parse("{\"containerId\":\"c\",\"ifname\":\"eth0\"}");
	struct cni_req r;
	char err[256];

	(void)state;
	assert_int_equal(request_parse_cni(cni, 0, &r, err, sizeof(err)), 0);
	assert_string_equal(r.netns, "");
	json_decref(cni);
}

static struct endpoint sample(void)
{
	struct endpoint ep = {
		.container_id = "abc123", .ifname = "eth0", .network = "sluice",
		.netns = "/run/netns/p1", .k8s_namespace = "ns", .k8s_pod = "web-0",
		.ip = 0x0af40105, .host_ifname = "lxc0123456789a", .host_ifindex = 42,
		.pod_mac = { 0x02, 0, 0, 0, 0, 1 }, .host_mac = { 0x02, 0, 0, 0, 0, 2 },
		.state = EP_READY,
	};
	return ep;
}

static void test_endpoint_roundtrip(void **state)
{
	struct endpoint ep = sample(), back;
	json_t *j;
	char err[256];

	(void)state;
	/* host ports are kept: a restarted agent programs them again */
	memset(ep.ports, 0, sizeof(ep.ports));
	ep.ports[0] = (struct hostport){ .host_port = 8080, .container_port = 80, .proto = 6 };
	ep.ports[1] = (struct hostport){ .host_ip = 0xc0000201, .host_port = 53,
					 .container_port = 5353, .proto = 17 };
	ep.nports = 2;
	/* and the bandwidth limits */
	ep.bw = (struct bw_limits){ .egress_rate = 100000000, .ingress_rate = 50000000,
				    .ingress_burst = 4294967295ULL };
	j = endpoint_to_json(&ep);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "bandwidth"),
							    "egressRate")), 100000000);
	assert_string_equal(json_string_value(json_object_get(j, "ip")), "10.244.1.5");
	assert_string_equal(json_string_value(json_object_get(j, "podMac")), "02:00:00:00:00:01");
	assert_int_equal(endpoint_from_json(j, &back, err, sizeof(err)), 0);
	assert_memory_equal(&ep, &back, sizeof(ep));
	json_object_set_new(j, "state", json_string("exploded"));
	assert_int_equal(endpoint_from_json(j, &back, err, sizeof(err)), -EINVAL);
	json_object_set_new(j, "state", json_string("ready"));
	json_object_set_new(j, "ip", json_string("10.244.1"));
	assert_int_equal(endpoint_from_json(j, &back, err, sizeof(err)), -EINVAL);
	json_decref(j);
	/* A record without limits (older, or an unlimited pod) has none. */
	ep.bw = (struct bw_limits){ 0 };
	j = endpoint_to_json(&ep);
	assert_null(json_object_get(j, "bandwidth"));
	assert_int_equal(endpoint_from_json(j, &back, err, sizeof(err)), 0);
	assert_memory_equal(&ep, &back, sizeof(ep));
	json_decref(j);
}

static void test_endpoint_result(void **state)
{
	struct endpoint ep = sample();
	json_t *r = endpoint_result(&ep, 0x0af40101);
	json_t *want = parse(
		"{\"interfaces\":[{\"name\":\"lxc0123456789a\",\"mac\":\"02:00:00:00:00:02\"},"
		"{\"name\":\"eth0\",\"mac\":\"02:00:00:00:00:01\",\"sandbox\":\"/run/netns/p1\"}],"
		"\"ips\":[{\"address\":\"10.244.1.5/32\",\"gateway\":\"10.244.1.1\",\"interface\":1}],"
		"\"routes\":[{\"dst\":\"0.0.0.0/0\",\"gw\":\"10.244.1.1\"}]}");

	(void)state;
	if (!json_equal(r, want)) {
		char *s = json_dumps(r, 0);

		fail_msg("unexpected result %s", s);
	}
	json_decref(r);
	json_decref(want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_roundtrip),
		cmocka_unit_test(test_frame_malformed_and_timeout),
		cmocka_unit_test(test_frame_empty_is_reset),
		cmocka_unit_test(test_frame_too_large),
		cmocka_unit_test(test_read_deadline_trickle),
		cmocka_unit_test(test_write_deadline),
		cmocka_unit_test(test_call_stuck_agent),
		cmocka_unit_test(test_call_dead_agent),
		cmocka_unit_test(test_error_shape),
		cmocka_unit_test(test_parse_cni_ok),
		cmocka_unit_test(test_parse_cni_errors),
		cmocka_unit_test(test_parse_cni_port_mappings),
		cmocka_unit_test(test_parse_cni_del_without_netns),
		cmocka_unit_test(test_parse_cni_bandwidth),
		cmocka_unit_test(test_check_bandwidth_mtu),
		cmocka_unit_test(test_bw_depth_and_format),
		cmocka_unit_test(test_endpoint_roundtrip),
		cmocka_unit_test(test_endpoint_result),
	};

	return cmocka_run_group_tests_name("agent-api", tests, NULL, NULL);
}
