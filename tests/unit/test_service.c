// SPDX-License-Identifier: Apache-2.0
/*
 * Services and EndpointSlices in the store: what is read of them, the
 * conditions' defaults, how slices join their Service (by name, several,
 * before it exists), the frontends and backends of the view, and every
 * kind of bad input through `sluicectl apply` (refused, nothing stored)
 * and through the API watch (stored as unusable, counted, never a crash).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <unistd.h>
#include <cmocka.h>

#include "api.h"
#include "service.h"
#include "store.h"
#include "store_test.h"

STORE_TEST_DIR("/tmp/sluice-test-service-XXXXXX")

static struct store *fresh_store(const char *name)
{
	return store_in(dir, name);
}

/* Apply objects (a JSON list in test quoting); changes, if not NULL,
 * receives what changed. Returns the store's code, the error in err. */
static int apply(struct store *s, const char *text, json_t **changes, char *err, size_t errlen)
{
	json_t *objs = jt(text), *srcs = json_array(), *ch = json_array();
	int ret;

	for (size_t i = 0; i < json_array_size(objs); i++)
		json_array_append_new(srcs, json_string("test.yaml"));
	err[0] = '\0';
	ret = store_apply(s, objs, srcs, ch, err, errlen);
	json_decref(objs);
	json_decref(srcs);
	if (changes)
		*changes = ch;
	else
		json_decref(ch);
	return ret;
}

static int event1(struct store *s, const char *type, const char *text)
{
	json_t *obj = jt(text), *changes = json_array();
	int ret = store_kube_event(s, type, obj, changes);

	json_decref(obj);
	json_decref(changes);
	return ret;
}

static const struct svc_view_service *find_svc(const struct svc_view *v, const char *name)
{
	for (size_t i = 0; i < v->n; i++)
		if (!strcmp(v->v[i].name, name))
			return &v->v[i];
	return NULL;
}

/* The frontends of a view entry as "a b c". */
static void frontends(const struct svc_view_service *vs, char *out, size_t len)
{
	size_t off = 0;

	out[0] = '\0';
	for (size_t i = 0; i < vs->nfrontends && off < len; i++) {
		char f[48];

		svc_frontend_format(&vs->frontends[i], f, sizeof(f));
		off += (size_t)snprintf(out + off, len - off, "%s%s", i ? " " : "", f);
	}
}

/* The backends of one port as "ip:port state local|remote ...". */
static void backends(const struct svc_view_port *vp, char *out, size_t len)
{
	size_t off = 0;

	out[0] = '\0';
	for (size_t i = 0; i < vp->nbackends && off < len; i++) {
		const struct svc_backend *b = &vp->backends[i];
		char ip[16];

		snprintf(ip, sizeof(ip), "%u.%u.%u.%u", b->ip >> 24, b->ip >> 16 & 255,
			 b->ip >> 8 & 255, b->ip & 255);
		off += (size_t)snprintf(out + off, len - off, "%s%s:%u %s %s", i ? " " : "", ip,
					b->port, svc_backend_state(b), b->local ? "local" : "remote");
	}
}

#define SVC_WEB                                                                                    \
	"{'apiVersion':'v1','kind':'Service','metadata':{'name':'web','namespace':'shop'},"        \
	"'spec':{'type':'LoadBalancer','clusterIP':'10.96.0.10',"                                  \
	"'clusterIPs':['10.96.0.10','fd00::10'],'externalIPs':['192.0.2.7'],"                     \
	"'ports':[{'name':'http','port':80,'targetPort':'web','nodePort':30080},"                  \
	"{'name':'dns','protocol':'UDP','port':53}],"                                              \
	"'sessionAffinity':'ClientIP','externalTrafficPolicy':'Local',"                            \
	"'healthCheckNodePort':31000,'publishNotReadyAddresses':true},"                            \
	"'status':{'loadBalancer':{'ingress':[{'ip':'198.51.100.1'},{'hostname':'lb.example'},"    \
	"{'ip':'198.51.100.2','ipMode':'Proxy'},{'ip':'2001:db8::1'}]}}}"

static void test_parse_service(void **state)
{
	struct svc_service svc;
	json_t *obj = jt(SVC_WEB);
	char err[512];

	(void)state;
	assert_int_equal(svc_parse(obj, "Service shop/web", &svc, err, sizeof(err)), 0);
	assert_int_equal(svc.type, SVC_LOAD_BALANCER);
	assert_int_equal(svc.ignore, SVC_HANDLED);
	assert_int_equal(svc.ncluster_ips, 1);
	assert_int_equal(svc.cluster_ips[0], 0x0a60000a);
	assert_int_equal(svc.nexternal_ips, 1);
	assert_int_equal(svc.external_ips[0], 0xc0000207);
	/* hostname-only and ipMode Proxy ingresses are no frontend */
	assert_int_equal(svc.nlb_ips, 1);
	assert_int_equal(svc.lb_ips[0], 0xc6336401);
	assert_int_equal(svc.ipv6_skipped, 2);
	assert_int_equal(svc.nports, 2);
	assert_string_equal(svc.ports[0].name, "http");
	assert_int_equal(svc.ports[0].proto, IPPROTO_TCP);
	assert_int_equal(svc.ports[0].port, 80);
	assert_string_equal(svc.ports[0].target_name, "web");
	assert_int_equal(svc.ports[0].node_port, 30080);
	assert_int_equal(svc.ports[1].proto, IPPROTO_UDP);
	assert_null(svc.ports[1].target_name);
	assert_int_equal(svc.ports[1].target_port, 53); /* defaults to port */
	assert_int_equal(svc.ports[1].node_port, 0);
	assert_true(svc.affinity_client_ip);
	assert_int_equal(svc.affinity_timeout, 10800); /* the API's default */
	assert_true(svc.etp_local);
	assert_false(svc.itp_local);
	assert_int_equal(svc.health_check_node_port, 31000);
	assert_true(svc.publish_not_ready);
	svc_free(&svc);
	json_decref(obj);

	/* a plain ClusterIP Service: every default */
	obj = jt("{'apiVersion':'v1','kind':'Service','metadata':{'name':'a','namespace':'x'},"
		 "'spec':{'clusterIP':'10.96.0.11','ports':[{'port':8080,'targetPort':9090}],"
		 "'sessionAffinityConfig':{'clientIP':{'timeoutSeconds':60}}}}");
	assert_int_equal(svc_parse(obj, "Service x/a", &svc, err, sizeof(err)), 0);
	assert_int_equal(svc.type, SVC_CLUSTER_IP);
	assert_string_equal(svc.ports[0].name, "");
	assert_int_equal(svc.ports[0].target_port, 9090);
	assert_false(svc.affinity_client_ip);
	assert_int_equal(svc.affinity_timeout, 60);
	assert_false(svc.etp_local);
	svc_free(&svc);
	json_decref(obj);
}

/* ready nil is true, serving nil is ready's value, terminating nil false */
static void test_slice_conditions(void **state)
{
	struct svc_slice sl;
	json_t *obj;
	char err[512];

	(void)state;
	obj = jt("{'apiVersion':'discovery.k8s.io/v1','kind':'EndpointSlice','metadata':{'name':"
		 "'web-1','namespace':'shop','labels':{'kubernetes.io/service-name':'web'}},"
		 "'addressType':'IPv4','ports':[{'name':'http','port':8080}],'endpoints':["
		 "{'addresses':['10.244.1.5']},"
		 "{'addresses':['10.244.1.6'],'conditions':{'ready':false}},"
		 "{'addresses':['10.244.1.7'],'conditions':{'serving':false}},"
		 "{'addresses':['10.244.1.8'],'conditions':{'ready':false,'serving':true,"
		 "'terminating':true},'nodeName':'n1','targetRef':{'kind':'Pod','namespace':"
		 "'shop','name':'web-0'}},"
		 "{'addresses':['10.244.1.9'],'conditions':{'ready':null,'serving':null,"
		 "'terminating':null}}]}");
	assert_int_equal(svc_slice_parse(obj, "EndpointSlice shop/web-1", &sl, err, sizeof(err)), 0);
	assert_string_equal(sl.service, "web");
	assert_false(sl.unused);
	assert_int_equal(sl.neps, 5);
	assert_int_equal(sl.ports[0].proto, IPPROTO_TCP);
	assert_int_equal(sl.ports[0].port, 8080);
	/* nothing said: ready, serving, not terminating */
	assert_true(sl.eps[0].ready);
	assert_true(sl.eps[0].serving);
	assert_false(sl.eps[0].terminating);
	/* ready false, serving nil: serving follows ready */
	assert_false(sl.eps[1].ready);
	assert_false(sl.eps[1].serving);
	/* serving false stays false, ready nil is ready */
	assert_true(sl.eps[2].ready);
	assert_false(sl.eps[2].serving);
	/* the terminating fallback's case */
	assert_false(sl.eps[3].ready);
	assert_true(sl.eps[3].serving);
	assert_true(sl.eps[3].terminating);
	assert_string_equal(sl.eps[3].node, "n1");
	assert_string_equal(sl.eps[3].pod_name, "web-0");
	/* explicit nulls are the defaults */
	assert_true(sl.eps[4].ready);
	assert_true(sl.eps[4].serving);
	assert_false(sl.eps[4].terminating);
	svc_slice_free(&sl);
	json_decref(obj);

	/* a condition that is not a boolean is an error naming the field */
	obj = jt("{'apiVersion':'discovery.k8s.io/v1','kind':'EndpointSlice','metadata':{'name':"
		 "'w','namespace':'shop'},'addressType':'IPv4','endpoints':[{'addresses':"
		 "['10.244.1.5'],'conditions':{'ready':'yes'}}]}");
	assert_int_equal(svc_slice_parse(obj, "EndpointSlice shop/w", &sl, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "EndpointSlice shop/w: endpoints[0].conditions"));
	svc_slice_free(&sl);
	json_decref(obj);
}

#define SLICE(name, svc, port, eps)                                                                \
	"{'apiVersion':'discovery.k8s.io/v1','kind':'EndpointSlice','metadata':{'name':'" name    \
	"','namespace':'shop','labels':{'kubernetes.io/service-name':'" svc "'}},"                 \
	"'addressType':'IPv4','ports':[{'name':'http','port':" port "},{'name':'dns',"             \
	"'protocol':'UDP','port':5353}],'endpoints':[" eps "]}"

/* Several slices per Service, one arriving before the Service, a named
 * targetPort resolved per slice, duplicates once, local and remote. */
static void test_view_join(void **state)
{
	struct store *s = fresh_store("join");
	const struct svc_view_service *vs;
	struct svc_view v;
	char text[1024];

	(void)state;
	/* the slice first: kept, used once the Service arrives */
	assert_int_equal(event1(s, "ADDED", SLICE("web-a", "web", "8080",
						  "{'addresses':['10.244.1.5'],'nodeName':'n1'},"
						  "{'addresses':['10.244.2.5'],'nodeName':'n2',"
						  "'conditions':{'ready':false,'serving':true,"
						  "'terminating':true}}")), 0);
	assert_int_equal(store_services_view(s, "n1", true, &v), 0);
	assert_int_equal(v.n, 0);
	svc_view_free(&v);
	assert_int_equal(event1(s, "ADDED", SVC_WEB), 0);
	/* a second slice whose pods number the named port differently:
	 * 9090; a third repeating an endpoint of the first (a slice being
	 * replaced) */
	assert_int_equal(event1(s, "ADDED", SLICE("web-b", "web", "9090",
						  "{'addresses':['10.244.3.5'],'nodeName':'n3'}")),
			 0);
	assert_int_equal(event1(s, "ADDED", SLICE("web-c", "web", "8080",
						  "{'addresses':['10.244.1.5'],'nodeName':'n1'}")),
			 0);
	/* an IPv6 slice of the same Service and another Service's slice */
	assert_int_equal(event1(s, "ADDED", "{'apiVersion':'discovery.k8s.io/v1','kind':"
			 "'EndpointSlice','metadata':{'name':'web-v6','namespace':'shop','labels':"
			 "{'kubernetes.io/service-name':'web'}},'addressType':'IPv6','ports':[{'name':"
			 "'http','port':8080}],'endpoints':[{'addresses':['fd00::5']}]}"), 0);
	assert_int_equal(event1(s, "ADDED", SLICE("db-a", "db", "5432",
						  "{'addresses':['10.244.9.9']}")), 0);
	assert_int_equal(store_unused_slices(s), 1);

	assert_int_equal(store_services_view(s, "n1", false, &v), 0);
	assert_int_equal(v.n, 1);
	vs = find_svc(&v, "web");
	assert_non_null(vs);
	assert_null(vs->status);
	frontends(vs, text, sizeof(text));
	assert_string_equal(text, "10.96.0.10:80/TCP 10.96.0.10:53/UDP 192.0.2.7:80/TCP "
				  "192.0.2.7:53/UDP 198.51.100.1:80/TCP 198.51.100.1:53/UDP "
				  "*:30080/TCP");
	assert_int_equal(vs->frontends[6].kind, SVC_FE_NODE_PORT);
	assert_int_equal(vs->frontends[6].port_index, 0);
	assert_int_equal(vs->nports, 2);
	backends(&vs->ports[0], text, sizeof(text));
	/* 10.244.1.5 is in both slices: once, as the first slice has it;
	 * publishNotReadyAddresses makes the terminating one ready too (as
	 * the EndpointSlice controller would have published it) */
	assert_string_equal(text, "10.244.1.5:8080 ready local 10.244.2.5:8080 ready remote "
				  "10.244.3.5:9090 ready remote");
	assert_true(vs->ports[0].backends[1].terminating);
	backends(&vs->ports[1], text, sizeof(text));
	assert_string_equal(text, "10.244.1.5:5353 ready local 10.244.2.5:5353 ready remote "
				  "10.244.3.5:5353 ready remote");
	assert_string_equal(vs->ports[0].backends[1].node, "n2");
	svc_view_free(&v);

	/* without publishNotReadyAddresses the conditions count */
	{
		char text2[sizeof(SVC_WEB)], *at;

		memcpy(text2, SVC_WEB, sizeof(SVC_WEB));
		at = strstr(text2, "'publishNotReadyAddresses':true");
		assert_non_null(at);
		memcpy(at, "'publishNotReadyAddresses':0   ", strlen("'publishNotReadyAddresses':0   "));
		assert_int_equal(event1(s, "MODIFIED", text2), 0);
	}
	assert_int_equal(store_services_view(s, "n1", false, &v), 0);
	backends(&find_svc(&v, "web")->ports[0], text, sizeof(text));
	assert_string_equal(text, "10.244.1.5:8080 ready local 10.244.2.5:8080 terminating remote "
				  "10.244.3.5:9090 ready remote");
	svc_view_free(&v);

	/* the slice goes: its backends go */
	assert_int_equal(event1(s, "DELETED", SLICE("web-a", "web", "8080", "")), 0);
	assert_int_equal(store_services_view(s, "n1", false, &v), 0);
	backends(&v.v[0].ports[0], text, sizeof(text));
	assert_string_equal(text, "10.244.3.5:9090 ready remote 10.244.1.5:8080 ready local");
	svc_view_free(&v);
	store_close(s);
}

/* Local is the endpoint's nodeName being this node, or its address being
 * in this node's pod range (a slice without nodeName, or naming another
 * node): only for the store's own node. */
static void test_view_local_by_pod_cidr(void **state)
{
	struct store *s = fresh_store("local");
	struct cidr4 range;
	struct svc_view v;
	char text[1024], err[256];

	(void)state;
	assert_int_equal(cidr4_parse("10.244.1.0/24", &range, err, sizeof(err)), 0);
	assert_int_equal(store_set_self(s, "n1", &range, 0), 0);
	assert_int_equal(event1(s, "ADDED", SVC_WEB), 0);
	assert_int_equal(event1(s, "ADDED", SLICE("web-a", "web", "8080",
						  "{'addresses':['10.244.1.5']},"
						  "{'addresses':['10.244.1.6'],'nodeName':'other'},"
						  "{'addresses':['10.244.2.5'],'nodeName':'n2'},"
						  "{'addresses':['10.244.3.5'],'nodeName':'n1'}")), 0);
	assert_int_equal(store_services_view(s, "n1", false, &v), 0);
	backends(&v.v[0].ports[0], text, sizeof(text));
	assert_string_equal(text, "10.244.1.5:8080 ready local 10.244.1.6:8080 ready local "
				  "10.244.2.5:8080 ready remote 10.244.3.5:8080 ready local");
	svc_view_free(&v);
	/* another node's view of the same store: nodeName only */
	assert_int_equal(store_services_view(s, "n2", false, &v), 0);
	backends(&v.v[0].ports[0], text, sizeof(text));
	assert_string_equal(text, "10.244.1.5:8080 ready remote 10.244.1.6:8080 ready remote "
				  "10.244.2.5:8080 ready local 10.244.3.5:8080 ready remote");
	svc_view_free(&v);
	store_close(s);
}

/* A numeric targetPort finds a hand-written slice's port by number when
 * the names differ; a named one does not guess. */
static void test_view_target_by_number(void **state)
{
	struct store *s = fresh_store("bynumber");
	struct svc_view v;
	char err[1024], text[256];

	(void)state;
	assert_int_equal(apply(s, "[{'apiVersion':'v1','kind':'Service','metadata':{'name':'num',"
			       "'namespace':'shop'},'spec':{'clusterIP':'10.96.1.1','ports':[{"
			       "'name':'web','port':80,'targetPort':8080}]}},"
			       "{'apiVersion':'v1','kind':'Service','metadata':{'name':'named',"
			       "'namespace':'shop'},'spec':{'clusterIP':'10.96.1.2','ports':[{"
			       "'name':'web','port':80,'targetPort':'www'}]}},"
			       SLICE("num-1", "num", "8080", "{'addresses':['10.244.1.1']}") ","
			       SLICE("named-1", "named", "8080", "{'addresses':['10.244.1.2']}")
			       "]", NULL, err, sizeof(err)), 0);
	assert_int_equal(store_services_view(s, NULL, false, &v), 0);
	assert_int_equal(v.n, 2);
	backends(&find_svc(&v, "num")->ports[0], text, sizeof(text));
	assert_string_equal(text, "10.244.1.1:8080 ready remote");
	backends(&find_svc(&v, "named")->ports[0], text, sizeof(text));
	assert_string_equal(text, "");
	svc_view_free(&v);
	store_close(s);
}

#define SVC(name, extra)                                                                           \
	"{'apiVersion':'v1','kind':'Service','metadata':{'name':'" name "','namespace':'shop'},"  \
	"'spec':{" extra "}}"

static size_t namespaces(struct store *s)
{
	json_t *ns = store_namespaces_json(s);
	size_t n = json_array_size(ns);

	json_decref(ns);
	return n;
}

static void expect_refused(struct store *s, const char *svc, const char *want)
{
	char text[4096], err[2048];

	/* a Namespace in the same apply: nothing of it may be stored */
	snprintf(text, sizeof(text), "[{'apiVersion':'v1','kind':'Namespace','metadata':{'name':"
				     "'extra'}}, %s]", svc);
	assert_int_not_equal(apply(s, text, NULL, err, sizeof(err)), 0);
	if (!strstr(err, want))
		fail_msg("error '%s' lacks '%s'", err, want);
	assert_non_null(strstr(err, "nothing was applied"));
	assert_int_equal(namespaces(s), 0);
}

static void test_apply_bad_input(void **state)
{
	struct store *s = fresh_store("apply");
	json_t *changes;
	char err[2048];

	(void)state;
	expect_refused(s, SVC("web", "'clusterIP':'10.96.0.10','ports':[{'port':0}]"),
		       "test.yaml: Service shop/web: spec.ports[0].port: 0 is not a port number "
		       "1-65535");
	expect_refused(s, SVC("web", "'clusterIP':'10.96.0.10','ports':[{'port':70000}]"),
		       "Service shop/web: spec.ports[0].port: 70000 is not a port number");
	expect_refused(s, SVC("web", "'clusterIP':'10.96.0.10','ports':[{'port':'80'}]"),
		       "Service shop/web: spec.ports[0].port: \"80\" is not a port number");
	expect_refused(s, SVC("web", "'type':'NodePort','clusterIP':'10.96.0.10','ports':[{"
			      "'port':80,'nodePort':70000}]"),
		       "Service shop/web: spec.ports[0].nodePort: 70000 is outside 1-65535");
	expect_refused(s, SVC("web", "'type':'NodePort','clusterIP':'10.96.0.10','ports':[{"
			      "'port':80,'nodePort':-1}]"),
		       "Service shop/web: spec.ports[0].nodePort: -1 is outside 1-65535");
	expect_refused(s, SVC("web", "'clusterIP':'10.96.0.10','ports':[{'port':80,"
			      "'targetPort':70000}]"),
		       "Service shop/web: spec.ports[0].targetPort: 70000 is not a port number");
	expect_refused(s, SVC("web", "'clusterIP':'10.96.0.10','ports':[{'port':80,"
			      "'targetPort':'Not_A_Name'}]"),
		       "Service shop/web: spec.ports[0].targetPort: 'Not_A_Name' is neither");
	expect_refused(s, SVC("web", "'clusterIP':'10.96.0.10','ports':[{'port':80,"
			      "'protocol':'ICMP'}]"),
		       "Service shop/web: spec.ports[0].protocol: \"ICMP\" is not TCP, UDP or SCTP");
	expect_refused(s, SVC("web", "'clusterIP':'10.96.0.10','ports':[{'name':'a','port':80},"
			      "{'name':'b','port':80}]"),
		       "Service shop/web: spec.ports[1]: port 80/TCP is spec.ports[0] already");
	expect_refused(s, SVC("web", "'clusterIP':'10.96.0.10','ports':[{'port':80},{'port':81}]"),
		       "Service shop/web: spec.ports[1].name: '' is the name of spec.ports[0]");
	expect_refused(s, SVC("web", "'clusterIP':'10.96.300.1','ports':[{'port':80}]"),
		       "Service shop/web: spec.clusterIP: '10.96.300.1' is not an IPv4");
	expect_refused(s, SVC("web", "'clusterIPs':['10.96.0.1','x'],'ports':[{'port':80}]"),
		       "Service shop/web: spec.clusterIPs[1]: 'x' is not an IPv4");
	expect_refused(s, SVC("web", "'clusterIP':'10.96.0.10','type':'Magic'"),
		       "Service shop/web: spec.type: 'Magic' is not ClusterIP");
	expect_refused(s, SVC("web", "'clusterIP':'10.96.0.10','sessionAffinity':'Cookie'"),
		       "Service shop/web: spec.sessionAffinity: \"Cookie\" is not None or ClientIP");
	expect_refused(s, SVC("web", "'clusterIP':'10.96.0.10','sessionAffinity':'ClientIP',"
			      "'sessionAffinityConfig':{'clientIP':{'timeoutSeconds':86401}}"),
		       "spec.sessionAffinityConfig.clientIP.timeoutSeconds: 86401 is outside");
	expect_refused(s, SVC("web", "'clusterIP':'10.96.0.10','externalTrafficPolicy':'Nearby'"),
		       "Service shop/web: spec.externalTrafficPolicy: \"Nearby\" is not Cluster");
	expect_refused(s, SVC("web", "'clusterIP':'10.96.0.10','healthCheckNodePort':65536"),
		       "Service shop/web: spec.healthCheckNodePort: 65536 is outside 1-65535");
	expect_refused(s, SLICE("web-1", "web", "0", "{'addresses':['10.244.1.1']}"),
		       "EndpointSlice shop/web-1: ports[0].port: 0 is not a port number");
	expect_refused(s, SLICE("web-1", "web", "80", "{'addresses':['fd00::1']}"),
		       "EndpointSlice shop/web-1: endpoints[0].addresses[0]: \"fd00::1\" is not an "
		       "IPv4 address");
	expect_refused(s, SLICE("web-1", "web", "80", "{'addresses':[]}"),
		       "EndpointSlice shop/web-1: endpoints[0].addresses: expected a list");
	expect_refused(s, "{'apiVersion':'discovery.k8s.io/v1','kind':'EndpointSlice','metadata':"
			  "{'name':'x','namespace':'shop'},'addressType':'IPv5'}",
		       "EndpointSlice shop/x: addressType: \"IPv5\" is not IPv4, IPv6 or FQDN");

	/* a NodePort anywhere in 1-65535 is accepted (the bound) */
	assert_int_equal(apply(s, "[" SVC("low", "'type':'NodePort','clusterIP':'10.96.0.20',"
					  "'ports':[{'port':80,'nodePort':80}]") "]", NULL, err,
			       sizeof(err)), 0);

	/* two Services, one frontend: the second is refused, naming both */
	assert_int_equal(apply(s, "[" SVC("a", "'clusterIP':'10.96.0.10','ports':[{'port':80}]")
			       "]", NULL, err, sizeof(err)), 0);
	expect_refused(s, SVC("b", "'clusterIP':'10.96.0.11','externalIPs':['10.96.0.10'],"
			      "'ports':[{'port':80}]"),
		       "test.yaml: Service shop/b: spec.externalIPs: frontend 10.96.0.10:80/TCP is "
		       "the frontend of Service shop/a already");
	expect_refused(s, SVC("b", "'type':'NodePort','clusterIP':'10.96.0.11','ports':[{"
			      "'port':81,'nodePort':80}]"),
		       "Service shop/b: spec.ports[0].nodePort: frontend *:80/TCP is the frontend of "
		       "Service shop/low already");
	/* inside one apply too */
	expect_refused(s, SVC("c", "'clusterIP':'10.96.0.30','ports':[{'port':80}]") ","
			  SVC("d", "'clusterIP':'10.96.0.30','ports':[{'port':80}]"),
		       "Service shop/d: spec.clusterIPs: frontend 10.96.0.30:80/TCP is the frontend "
		       "of Service shop/c already");
	/* another protocol or port on the same address is another frontend */
	assert_int_equal(apply(s, "[" SVC("udp", "'clusterIP':'10.96.0.40','externalIPs':["
					  "'10.96.0.10'],'ports':[{'port':80,'protocol':'UDP'}]")
			       "]", NULL, err, sizeof(err)), 0);
	/* a Service replacing itself keeps its own frontends */
	assert_int_equal(apply(s, "[" SVC("a", "'clusterIP':'10.96.0.10','ports':[{'port':80},"
					  "{'name':'x','port':81}]") "]", NULL, err,
			       sizeof(err)), 0);
	assert_int_equal(store_refused_services(s), 0);

	/* kept with a note, not an error: an IPv6 slice, a slice without its
	 * Service; none when the Service comes in the same apply */
	assert_int_equal(apply(s, "[{'apiVersion':'discovery.k8s.io/v1','kind':'EndpointSlice',"
			       "'metadata':{'name':'v6','namespace':'shop','labels':{"
			       "'kubernetes.io/service-name':'a'}},'addressType':'IPv6',"
			       "'endpoints':[{'addresses':['fd00::1']}]},"
			       SLICE("early", "later", "80", "{'addresses':['10.244.1.1']}") ","
			       SLICE("together", "svc2", "80", "{'addresses':['10.244.1.2']}") ","
			       SVC("svc2", "'clusterIP':'10.96.0.50','ports':[{'name':'http',"
				   "'port':80}]") ","
			       SVC("headless", "'clusterIP':'None'") "]", &changes, err,
			       sizeof(err)), 0);
	assert_int_equal(json_array_size(changes), 5);
	assert_non_null(strstr(json_string_value(json_object_get(json_array_get(changes, 0),
								 "note")),
			       "addressType IPv6: kept, not used"));
	assert_non_null(strstr(json_string_value(json_object_get(json_array_get(changes, 1),
								 "note")),
			       "Service shop/later does not exist yet: kept"));
	assert_null(json_object_get(json_array_get(changes, 2), "note"));
	assert_null(json_object_get(json_array_get(changes, 3), "note"));
	assert_non_null(strstr(json_string_value(json_object_get(json_array_get(changes, 4),
								 "note")),
			       "ignored, as kube-proxy does: headless"));
	json_decref(changes);
	assert_int_equal(store_unused_slices(s), 1);

	/* delete and apply again round-trip */
	assert_int_equal(apply(s, "[" SVC("a", "'clusterIP':'10.96.0.10','ports':[{'port':80},"
					  "{'name':'x','port':81}]") "]", &changes, err,
			       sizeof(err)), 0);
	assert_string_equal(json_string_value(json_object_get(json_array_get(changes, 0),
							      "action")), "unchanged");
	json_decref(changes);
	{
		json_t *objs = jt("[" SVC("a", "") "]"), *srcs = jt("['test.yaml']");

		changes = json_array();
		assert_int_equal(store_delete(s, objs, srcs, false, changes, err, sizeof(err)), 0);
		assert_string_equal(json_string_value(json_object_get(json_array_get(changes, 0),
								      "action")), "deleted");
		json_decref(changes);
		json_decref(objs);
		json_decref(srcs);
	}
	/* its frontend is free now */
	assert_int_equal(apply(s, "[" SVC("b", "'clusterIP':'10.96.0.11','externalIPs':["
					  "'10.96.0.10'],'ports':[{'port':80}]") "]", NULL, err,
			       sizeof(err)), 0);
	store_close(s);
}

#define SVC_AT(name, ts, extra)                                                                    \
	"{'apiVersion':'v1','kind':'Service','metadata':{'name':'" name "','namespace':'shop',"    \
	"'creationTimestamp':'" ts "'},'spec':{" extra "}}"

static const char *status_of(struct store *s, const char *name, char *buf, size_t len)
{
	const struct svc_view_service *vs;
	struct svc_view v;

	assert_int_equal(store_services_view(s, "n1", true, &v), 0);
	vs = find_svc(&v, name);
	assert_non_null(vs);
	snprintf(buf, len, "%s", vs->status ? vs->status : "OK");
	svc_view_free(&v);
	return buf;
}

static size_t handled(struct store *s)
{
	struct svc_view v;
	size_t n;

	assert_int_equal(store_services_view(s, "n1", false, &v), 0);
	n = v.n;
	svc_view_free(&v);
	return n;
}

/* From the watch: nothing is refused at the door; bad objects are stored
 * unusable and counted, conflicts go to the older Service. */
static void test_watch_bad_input(void **state)
{
	struct store *s = fresh_store("watch");
	char buf[512], err[512], sdir[600];
	json_t *items, *changes;

	(void)state;
	/* an unreadable Service: stored, not used, counted, the field named */
	assert_int_equal(event1(s, "ADDED", SVC_AT("bad", "2026-12-01T00:00:00Z",
						   "'clusterIP':'10.96.0.10','ports':[{'port':80,"
						   "'nodePort':99999}],'type':'NodePort'")), 0);
	assert_int_equal(store_refused_services(s), 1);
	assert_int_equal(handled(s), 0);
	assert_string_equal(status_of(s, "bad", buf, sizeof(buf)),
			    "spec.ports[0].nodePort: 99999 is outside 1-65535");
	/* fixed by the next event: used */
	assert_int_equal(event1(s, "MODIFIED", SVC_AT("bad", "2026-12-01T00:00:00Z",
						      "'clusterIP':'10.96.0.10','ports':[{"
						      "'port':80}]")), 0);
	assert_int_equal(store_refused_services(s), 0);
	assert_int_equal(handled(s), 1);

	/* a younger Service claiming 10.96.0.10:80/TCP is refused whole,
	 * named like the one that keeps it, whatever its name */
	assert_int_equal(event1(s, "ADDED", SVC_AT("aaa-young", "2026-12-05T00:00:00Z",
						   "'clusterIP':'10.96.0.20','externalIPs':["
						   "'10.96.0.10'],'ports':[{'port':80}]")), 0);
	assert_int_equal(store_refused_services(s), 1);
	assert_int_equal(handled(s), 1);
	assert_string_equal(status_of(s, "aaa-young", buf, sizeof(buf)),
			    "spec.externalIPs: frontend 10.96.0.10:80/TCP is Service shop/bad's, "
			    "which came first and keeps it");
	assert_string_equal(status_of(s, "bad", buf, sizeof(buf)), "OK");
	/* an even older one arriving later takes the frontend */
	assert_int_equal(event1(s, "ADDED", SVC_AT("zzz-old", "2026-11-01T00:00:00Z",
						   "'clusterIP':'10.96.0.10','ports':[{'port':80}]")),
			 0);
	assert_int_equal(store_refused_services(s), 2);
	assert_non_null(strstr(status_of(s, "bad", buf, sizeof(buf)),
			       "is Service shop/zzz-old's, which came first"));
	assert_non_null(strstr(status_of(s, "aaa-young", buf, sizeof(buf)),
			       "is Service shop/zzz-old's, which came first"));
	/* the old one gone: bad gets its frontend back, aaa-young loses it */
	assert_int_equal(event1(s, "DELETED", SVC_AT("zzz-old", "2026-11-01T00:00:00Z", "")), 0);
	assert_string_equal(status_of(s, "bad", buf, sizeof(buf)), "OK");
	assert_non_null(strstr(status_of(s, "aaa-young", buf, sizeof(buf)), "shop/bad's"));

	/* a relist in another order decides the same */
	items = json_pack("[o, o]", jt(SVC_AT("aaa-young", "2026-12-05T00:00:00Z",
					     "'clusterIP':'10.96.0.20','externalIPs':["
					     "'10.96.0.10'],'ports':[{'port':80}]")),
			  jt(SVC_AT("bad", "2026-12-01T00:00:00Z",
				    "'clusterIP':'10.96.0.10','ports':[{'port':80}]")));
	changes = json_array();
	assert_int_equal(store_kube_replace(s, "v1", "Service", items, changes), 0);
	assert_int_equal(json_array_size(changes), 0);
	json_decref(items);
	json_decref(changes);
	assert_string_equal(status_of(s, "bad", buf, sizeof(buf)), "OK");
	assert_int_equal(store_refused_services(s), 1);

	/* unreadable slices and IPv6 ones: stored, unused, counted */
	assert_int_equal(event1(s, "ADDED", SLICE("bad-1", "bad", "70000",
						  "{'addresses':['10.244.1.1']}")), 0);
	assert_int_equal(event1(s, "ADDED", "{'apiVersion':'discovery.k8s.io/v1','kind':"
			 "'EndpointSlice','metadata':{'name':'bad-v6','namespace':'shop','labels':"
			 "{'kubernetes.io/service-name':'bad'}},'addressType':'IPv6','endpoints':"
			 "[{'addresses':['fd00::1']}]}"), 0);
	assert_int_equal(store_unused_slices(s), 2);
	/* an object with no name is skipped, not fatal */
	assert_int_equal(event1(s, "ADDED", "{'apiVersion':'v1','kind':'Service','metadata':{}}"),
			 0);

	/* saved and reopened: the same decisions */
	assert_int_equal(store_flush(s), 0);
	store_close(s);
	snprintf(sdir, sizeof(sdir), "%s/watch", dir);
	assert_int_equal(store_open(&s, sdir, err, sizeof(err)), 0);
	assert_int_equal(store_refused_services(s), 1);
	assert_int_equal(store_unused_slices(s), 2);
	assert_string_equal(status_of(s, "bad", buf, sizeof(buf)), "OK");
	store_close(s);
}

static size_t count_in(const char *text, const char *what)
{
	size_t n = 0;

	for (const char *p = strstr(text, what); p; p = strstr(p + 1, what))
		n++;
	return n;
}

/* The watch logs an unusable or refused object once, not at every update
 * or relist of it: a dual-stack cluster changes IPv6 slices all the time. */
static void test_logged_once(void **state)
{
	struct store *s = fresh_store("once");
	char path[600], text[8192] = "";
	json_t *items, *changes;
	int saved, fd;
	FILE *f;
	size_t len;

	(void)state;
	snprintf(path, sizeof(path), "%s/once.log", dir);
	fflush(stderr);
	saved = dup(2);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(saved >= 0 && fd >= 0);
	assert_int_equal(dup2(fd, 2), 2);
	close(fd);

	assert_int_equal(event1(s, "ADDED", SVC_AT("bad", "2026-12-01T00:00:00Z",
						   "'clusterIP':'10.96.0.10','ports':[{'port':0}]")),
			 0);
	/* another field changes, the reason stays */
	assert_int_equal(event1(s, "MODIFIED", SVC_AT("bad", "2026-12-01T00:00:00Z",
						      "'clusterIP':'10.96.0.10','ports':[{'port':0}],"
						      "'sessionAffinity':'ClientIP'")), 0);
	assert_int_equal(event1(s, "ADDED", SVC_AT("old", "2026-12-01T00:00:00Z",
						   "'clusterIP':'10.96.0.20','ports':[{'port':80}]")),
			 0);
	assert_int_equal(event1(s, "ADDED", SVC_AT("young", "2026-12-02T00:00:00Z",
						   "'clusterIP':'10.96.0.20','ports':[{'port':80}]")),
			 0);
	assert_int_equal(event1(s, "MODIFIED", SVC_AT("young", "2026-12-02T00:00:00Z",
						      "'clusterIP':'10.96.0.20','ports':[{'port':80}],"
						      "'sessionAffinity':'ClientIP'")), 0);
	assert_int_equal(event1(s, "ADDED", "{'apiVersion':'discovery.k8s.io/v1','kind':"
			 "'EndpointSlice','metadata':{'name':'v6','namespace':'shop'},'addressType':"
			 "'IPv6','endpoints':[{'addresses':['fd00::1']}]}"), 0);
	assert_int_equal(event1(s, "MODIFIED", "{'apiVersion':'discovery.k8s.io/v1','kind':"
			 "'EndpointSlice','metadata':{'name':'v6','namespace':'shop'},'addressType':"
			 "'IPv6','endpoints':[{'addresses':['fd00::2']}]}"), 0);
	/* a relist of the same objects */
	items = json_pack("[o, o, o]", jt(SVC_AT("bad", "2026-12-01T00:00:00Z",
						 "'clusterIP':'10.96.0.10','ports':[{'port':0}],"
						 "'sessionAffinity':'ClientIP'")),
			  jt(SVC_AT("old", "2026-12-01T00:00:00Z",
				    "'clusterIP':'10.96.0.20','ports':[{'port':80}]")),
			  jt(SVC_AT("young", "2026-12-02T00:00:00Z",
				    "'clusterIP':'10.96.0.20','ports':[{'port':80}],"
				    "'sessionAffinity':'ClientIP'")));
	changes = json_array();
	assert_int_equal(store_kube_replace(s, "v1", "Service", items, changes), 0);
	assert_int_equal(json_array_size(changes), 0);
	json_decref(items);
	json_decref(changes);

	fflush(stderr);
	assert_int_equal(dup2(saved, 2), 2);
	close(saved);
	f = fopen(path, "r");
	assert_non_null(f);
	len = fread(text, 1, sizeof(text) - 1, f);
	text[len] = '\0';
	fclose(f);
	assert_int_equal(count_in(text, "Service shop/bad is stored but not used: spec.ports[0]"
				  ".port"), 1);
	assert_int_equal(count_in(text, "Service shop/young refused: spec.clusterIPs"), 1);
	assert_int_equal(count_in(text, "EndpointSlice shop/v6 is stored but not used"), 1);
	assert_int_equal(store_refused_services(s), 2);
	assert_int_equal(store_unused_slices(s), 1);
	store_close(s);
}

/* Left alone as kube-proxy leaves them: no frontends, no conflicts. */
static void test_ignored(void **state)
{
	struct store *s = fresh_store("ignored");
	char buf[512], err[1024];

	(void)state;
	assert_int_equal(apply(s, "[" SVC("headless", "'clusterIP':'None','ports':[{'port':80}]")
			       "," SVC("ext", "'type':'ExternalName','externalName':'example.com',"
				       "'ports':[{'port':80}]")
			       ",{'apiVersion':'v1','kind':'Service','metadata':{'name':'other',"
			       "'namespace':'shop','labels':{'service.kubernetes.io/"
			       "service-proxy-name':'foo'}},'spec':{'clusterIP':'10.96.0.10',"
			       "'ports':[{'port':80}]}},"
			       SVC("real", "'clusterIP':'10.96.0.10','ports':[{'port':80}]") "]",
			       NULL, err, sizeof(err)), 0);
	assert_int_equal(handled(s), 1);
	assert_int_equal(store_refused_services(s), 0);
	assert_string_equal(status_of(s, "headless", buf, sizeof(buf)),
			    "headless (clusterIP: None)");
	assert_string_equal(status_of(s, "ext", buf, sizeof(buf)), "type ExternalName");
	assert_non_null(strstr(status_of(s, "other", buf, sizeof(buf)),
			       "service.kubernetes.io/service-proxy-name"));
	assert_string_equal(status_of(s, "real", buf, sizeof(buf)), "OK");
	store_close(s);
}

/* `get services -o json`: the view's JSON carries what the CLI prints. */
static void test_view_json(void **state)
{
	struct store *s = fresh_store("json");
	struct svc_view v;
	json_t *items, *it, *be;

	(void)state;
	assert_int_equal(event1(s, "ADDED", SVC_WEB), 0);
	assert_int_equal(event1(s, "ADDED", SLICE("web-a", "web", "8080",
						  "{'addresses':['10.244.1.5'],'nodeName':'n1'}")),
			 0);
	assert_int_equal(store_services_view(s, "n1", true, &v), 0);
	items = svc_view_json(&v);
	svc_view_free(&v);
	it = json_array_get(items, 0);
	assert_string_equal(json_string_value(json_object_get(it, "type")), "LoadBalancer");
	assert_string_equal(json_string_value(json_object_get(it, "status")), "OK");
	assert_string_equal(json_string_value(json_object_get(it, "externalTrafficPolicy")),
			    "Local");
	assert_string_equal(json_string_value(json_object_get(it, "sessionAffinity")), "ClientIP");
	assert_int_equal(json_integer_value(json_object_get(it, "affinityTimeoutSeconds")), 10800);
	assert_string_equal(json_string_value(json_object_get(
				    json_array_get(json_object_get(it, "frontends"), 6), "frontend")),
			    "*:30080/TCP");
	be = json_array_get(json_object_get(json_array_get(json_object_get(it, "ports"), 0),
					    "backends"), 0);
	assert_string_equal(json_string_value(json_object_get(be, "address")), "10.244.1.5");
	assert_int_equal(json_integer_value(json_object_get(be, "port")), 8080);
	assert_string_equal(json_string_value(json_object_get(be, "state")), "ready");
	assert_true(json_is_true(json_object_get(be, "local")));
	json_decref(items);
	store_close(s);
}

/* n Namespaces ns-from .. ns-to-1, every step-th, as a JSON list; srcs gets
 * a source for each. */
static json_t *ns_list(int from, int to, int step, json_t **srcs)
{
	json_t *l = json_array();
	char name[32];

	*srcs = json_array();
	for (int i = from; i < to; i += step) {
		snprintf(name, sizeof(name), "ns-%d", i);
		json_array_append_new(l, json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind",
						   "Namespace", "metadata", "name", name));
		json_array_append_new(*srcs, json_string("test.yaml"));
	}
	return l;
}

/* How many of changes have action. */
static size_t actions(const json_t *changes, const char *action)
{
	size_t i, n = 0;
	json_t *c;

	json_array_foreach(changes, i, c)
		n += !strcmp(json_string_value(json_object_get(c, "action")), action);
	return n;
}

/* The store's index (by kind, namespace and name) through growth, deletes
 * that move the last object into the hole and shift probe chains, and a
 * reopen: every object is found where it is, none twice. */
static void test_store_index(void **state)
{
	struct store *s = fresh_store("index");
	json_t *objs, *srcs, *changes;
	char err[512], sdir[600];

	(void)state;
	objs = ns_list(0, 3000, 1, &srcs);
	changes = json_array();
	assert_int_equal(store_apply(s, objs, srcs, changes, err, sizeof(err)), 0);
	assert_int_equal(actions(changes, "created"), 3000);
	json_decref(objs);
	json_decref(srcs);
	json_decref(changes);
	/* every third goes */
	objs = ns_list(0, 3000, 3, &srcs);
	changes = json_array();
	assert_int_equal(store_delete(s, objs, srcs, false, changes, err, sizeof(err)), 0);
	assert_int_equal(actions(changes, "deleted"), 1000);
	json_decref(objs);
	json_decref(srcs);
	json_decref(changes);
	/* all again: the 2000 left are found, the 1000 deleted are not */
	objs = ns_list(0, 3000, 1, &srcs);
	changes = json_array();
	assert_int_equal(store_apply(s, objs, srcs, changes, err, sizeof(err)), 0);
	assert_int_equal(actions(changes, "unchanged"), 2000);
	assert_int_equal(actions(changes, "created"), 1000);
	json_decref(changes);
	/* reopened from objects.json: the same, and each deletes once */
	assert_int_equal(store_flush(s), 0);
	store_close(s);
	snprintf(sdir, sizeof(sdir), "%s/index", dir);
	assert_int_equal(store_open(&s, sdir, err, sizeof(err)), 0);
	changes = json_array();
	assert_int_equal(store_apply(s, objs, srcs, changes, err, sizeof(err)), 0);
	assert_int_equal(actions(changes, "unchanged"), 3000);
	json_decref(changes);
	changes = json_array();
	assert_int_equal(store_delete(s, objs, srcs, false, changes, err, sizeof(err)), 0);
	assert_int_equal(actions(changes, "deleted"), 3000);
	json_decref(changes);
	changes = json_array();
	assert_int_not_equal(store_delete(s, objs, srcs, false, changes, err, sizeof(err)), 0);
	json_decref(changes);
	json_decref(objs);
	json_decref(srcs);
	store_close(s);
}

/* An object named twice in one apply is refused, naming the first repeat
 * in apply order (before a later object that does not parse), and nothing
 * is applied; the same name in another namespace or of another kind is no
 * repeat. */
#define NSOBJ(n) "{'apiVersion':'v1','kind':'Namespace','metadata':{'name':'" n "'}}"
#define PODOBJ(ns, n) "{'apiVersion':'v1','kind':'Pod','metadata':{'namespace':'" ns "'," \
		      "'name':'" n "'}}"
static void test_apply_duplicates(void **state)
{
	struct store *s = fresh_store("dups");
	char err[1024];

	(void)state;
	assert_int_equal(apply(s, "[" NSOBJ("a") "," PODOBJ("a", "x") "," PODOBJ("b", "x") ","
			       NSOBJ("x") "," PODOBJ("a", "y") "," PODOBJ("b", "x") ","
			       PODOBJ("a", "y") "]", NULL, err, sizeof(err)),
			 CNI_ERR_INVALID_CONFIG);
	assert_non_null(strstr(err, "Pod b/x appears twice"));
	assert_int_equal(apply(s, "[" PODOBJ("a", "y") "," PODOBJ("a", "y") ","
			       "{'apiVersion':'v1','kind':'Pod','metadata':{}}]", NULL, err,
			       sizeof(err)), CNI_ERR_INVALID_CONFIG);
	assert_non_null(strstr(err, "Pod a/y appears twice"));
	assert_int_equal(apply(s, "[" PODOBJ("a", "y") ","
			       "{'apiVersion':'v1','kind':'Pod','metadata':{}}," PODOBJ("a", "y") "]",
			       NULL, err, sizeof(err)), CNI_ERR_INVALID_CONFIG);
	assert_null(strstr(err, "twice"));
	assert_int_equal(apply(s, "[" NSOBJ("x") "," PODOBJ("a", "x") "," PODOBJ("b", "x") ","
			       PODOBJ("a", "y") "]", NULL, err, sizeof(err)), 0);
	store_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_service),
		cmocka_unit_test(test_apply_duplicates),
		cmocka_unit_test(test_slice_conditions),
		cmocka_unit_test(test_view_join),
		cmocka_unit_test(test_view_local_by_pod_cidr),
		cmocka_unit_test(test_view_target_by_number),
		cmocka_unit_test(test_apply_bad_input),
		cmocka_unit_test(test_watch_bad_input),
		cmocka_unit_test(test_logged_once),
		cmocka_unit_test(test_ignored),
		cmocka_unit_test(test_view_json),
		cmocka_unit_test(test_store_index),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
