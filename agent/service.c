// SPDX-License-Identifier: Apache-2.0
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cidr.h"
#include "service.h"

#define AFFINITY_DEFAULT_S 10800	/* v1 SessionAffinityConfig default */
#define AFFINITY_MAX_S 86400		/* the API server's upper bound */

static const char *str_at(const json_t *obj, const char *a, const char *b)
{
	const json_t *v = json_object_get(obj, a);

	if (b)
		v = json_object_get(v, b);
	return json_string_value(v);
}

const char *svc_type_name(enum svc_type t)
{
	static const char *const names[] = { "ClusterIP", "NodePort", "LoadBalancer",
					     "ExternalName" };

	return names[t];
}

const char *svc_ignore_reason(enum svc_ignore i)
{
	switch (i) {
	case SVC_HEADLESS:
		return "headless (clusterIP: None)";
	case SVC_EXTERNALNAME:
		return "type ExternalName";
	case SVC_PROXY_NAME:
		return "label service.kubernetes.io/service-proxy-name (another proxy serves it)";
	default:
		return NULL;
	}
}

const char *svc_proto_name(uint8_t proto)
{
	return proto == IPPROTO_UDP ? "UDP" : proto == IPPROTO_SCTP ? "SCTP" : "TCP";
}

static int proto_parse(const json_t *v, uint8_t *proto)
{
	const char *s = json_string_value(v);

	if (!v || json_is_null(v) || (s && !strcmp(s, "TCP")))
		*proto = IPPROTO_TCP;
	else if (s && !strcmp(s, "UDP"))
		*proto = IPPROTO_UDP;
	else if (s && !strcmp(s, "SCTP"))
		*proto = IPPROTO_SCTP;
	else
		return -EINVAL;
	return 0;
}

/* A port number 1-65535; absent or null gives 0 when optional. */
static int port_parse(const json_t *v, bool optional, uint16_t *port)
{
	if ((!v || json_is_null(v)) && optional) {
		*port = 0;
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 65535)
		return -EINVAL;
	*port = (uint16_t)json_integer_value(v);
	return 0;
}

static const char *value_text(const json_t *v, char *buf, size_t len)
{
	char *d = v ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;

	snprintf(buf, len, "%s", d ? d : "nothing");
	free(d);
	return buf;
}

/* IANA_SVC_NAME, as the API validates a named targetPort. */
static bool port_name_ok(const char *s)
{
	bool letter = false;
	size_t n = strlen(s);

	if (!n || n > 15 || s[0] == '-' || s[n - 1] == '-' || strstr(s, "--"))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (islower((unsigned char)s[i]))
			letter = true;
		else if (!isdigit((unsigned char)s[i]) && s[i] != '-')
			return false;
	}
	return letter;
}

/* Append the IPv4 addresses of a list of strings (or of one string) to
 * *out; IPv6 ones are counted in *v6. field names the list (or the
 * string) in errors. */
static int ips_parse(const json_t *list, const char *object, const char *field, uint32_t **out,
		     size_t *n, size_t *v6, char *err, size_t errlen)
{
	size_t cnt = json_is_array(list) ? json_array_size(list) : 1, i;
	uint32_t *v;

	if (!list || json_is_null(list))
		return 0;
	if (!json_is_array(list) && !json_is_string(list)) {
		snprintf(err, errlen, "%s: %s: expected a list of addresses", object, field);
		return -EINVAL;
	}
	v = realloc(*out, (*n + cnt + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	*out = v;
	for (i = 0; i < cnt; i++) {
		const json_t *e = json_is_array(list) ? json_array_get(list, i) : list;
		const char *a = json_string_value(e);
		char at[96], buf[80];

		if (json_is_array(list))
			snprintf(at, sizeof(at), "%s[%zu]", field, i);
		else
			snprintf(at, sizeof(at), "%s", field);
		if (!a) {
			snprintf(err, errlen, "%s: %s: %s is not an address", object, at,
				 value_text(e, buf, sizeof(buf)));
			return -EINVAL;
		}
		if (strchr(a, ':')) {
			(*v6)++;
			continue;
		}
		if (ip4_parse(a, &v[*n])) {
			snprintf(err, errlen, "%s: %s: '%s' is not an IPv4 or IPv6 address", object,
				 at, a);
			return -EINVAL;
		}
		if (!v[*n]) {
			snprintf(err, errlen, "%s: %s: 0.0.0.0 cannot be a frontend", object, at);
			return -EINVAL;
		}
		(*n)++;
	}
	return 0;
}

static int policy_parse(const json_t *v, const char *object, const char *field, bool *local,
			char *err, size_t errlen)
{
	const char *s = json_string_value(v);
	char buf[80];

	*local = false;
	if (!v || json_is_null(v) || (s && !strcmp(s, "Cluster")))
		return 0;
	if (s && !strcmp(s, "Local")) {
		*local = true;
		return 0;
	}
	snprintf(err, errlen, "%s: %s: %s is not Cluster or Local", object, field,
		 value_text(v, buf, sizeof(buf)));
	return -EINVAL;
}

static int ports_parse(const json_t *ports, const char *object, struct svc_service *svc,
		       char *err, size_t errlen)
{
	const json_t *p;
	char buf[80];
	size_t i;

	if (ports && !json_is_null(ports) && !json_is_array(ports)) {
		snprintf(err, errlen, "%s: spec.ports: expected a list", object);
		return -EINVAL;
	}
	svc->ports = calloc(json_array_size(ports) + 1, sizeof(*svc->ports));
	if (!svc->ports)
		return -ENOMEM;
	json_array_foreach(ports, i, p) {
		struct svc_port *sp = &svc->ports[i];
		const json_t *tp = json_object_get(p, "targetPort");
		const char *name = str_at(p, "name", NULL);

		svc->nports = i + 1;
		if (!json_is_object(p)) {
			snprintf(err, errlen, "%s: spec.ports[%zu]: expected an object", object, i);
			return -EINVAL;
		}
		if (port_parse(json_object_get(p, "port"), false, &sp->port)) {
			snprintf(err, errlen, "%s: spec.ports[%zu].port: %s is not a port number "
					      "1-65535", object, i,
				 value_text(json_object_get(p, "port"), buf, sizeof(buf)));
			return -EINVAL;
		}
		if (proto_parse(json_object_get(p, "protocol"), &sp->proto)) {
			snprintf(err, errlen, "%s: spec.ports[%zu].protocol: %s is not TCP, UDP or "
					      "SCTP", object, i,
				 value_text(json_object_get(p, "protocol"), buf, sizeof(buf)));
			return -EINVAL;
		}
		if (port_parse(json_object_get(p, "nodePort"), true, &sp->node_port) &&
		    !(json_is_integer(json_object_get(p, "nodePort")) &&
		      json_integer_value(json_object_get(p, "nodePort")) == 0)) {
			snprintf(err, errlen, "%s: spec.ports[%zu].nodePort: %s is outside 1-65535",
				 object, i,
				 value_text(json_object_get(p, "nodePort"), buf, sizeof(buf)));
			return -EINVAL;
		}
		if (json_is_string(tp)) {
			if (!port_name_ok(json_string_value(tp))) {
				snprintf(err, errlen,
					 "%s: spec.ports[%zu].targetPort: '%s' is neither a port "
					 "number 1-65535 nor a port name (up to 15 lowercase letters, "
					 "digits and '-', with a letter)", object, i,
					 json_string_value(tp));
				return -EINVAL;
			}
			sp->target_name = strdup(json_string_value(tp));
			if (!sp->target_name)
				return -ENOMEM;
		} else if (!tp || json_is_null(tp) ||
			   (json_is_integer(tp) && json_integer_value(tp) == 0)) {
			sp->target_port = sp->port; /* the API's default */
		} else if (port_parse(tp, false, &sp->target_port)) {
			snprintf(err, errlen, "%s: spec.ports[%zu].targetPort: %s is not a port "
					      "number 1-65535 or a port name", object, i,
				 value_text(tp, buf, sizeof(buf)));
			return -EINVAL;
		}
		sp->name = strdup(name ? name : "");
		if (!sp->name)
			return -ENOMEM;
		for (size_t j = 0; j < i; j++) {
			const struct svc_port *o = &svc->ports[j];

			if (o->port == sp->port && o->proto == sp->proto) {
				snprintf(err, errlen, "%s: spec.ports[%zu]: port %u/%s is spec.ports[%zu] "
						      "already", object, i, sp->port,
					 svc_proto_name(sp->proto), j);
				return -EINVAL;
			}
			if (sp->node_port && o->node_port == sp->node_port && o->proto == sp->proto) {
				snprintf(err, errlen, "%s: spec.ports[%zu].nodePort: %u/%s is the "
						      "nodePort of spec.ports[%zu] already", object,
					 i, sp->node_port, svc_proto_name(sp->proto), j);
				return -EINVAL;
			}
			/* Endpoints are joined by port name: two ports of one
			 * name could not be told apart. */
			if (!strcmp(o->name, sp->name)) {
				snprintf(err, errlen, "%s: spec.ports[%zu].name: '%s' is the name of "
						      "spec.ports[%zu] already; each port needs its "
						      "own name", object, i, sp->name, j);
				return -EINVAL;
			}
		}
	}
	return 0;
}

int svc_parse(const json_t *obj, const char *object, struct svc_service *svc, char *err,
	      size_t errlen)
{
	const json_t *spec = json_object_get(obj, "spec"), *cips, *aff, *hc;
	const json_t *labels = json_object_get(json_object_get(obj, "metadata"), "labels");
	const char *type = str_at(spec, "type", NULL);
	char buf[80];
	int ret;

	memset(svc, 0, sizeof(*svc));
	if (spec && !json_is_object(spec)) {
		snprintf(err, errlen, "%s: spec: expected an object", object);
		return -EINVAL;
	}
	if (json_object_get(spec, "type") && !json_is_null(json_object_get(spec, "type")) &&
	    !type)
		type = "?";
	if (!type || !strcmp(type, "ClusterIP"))
		svc->type = SVC_CLUSTER_IP;
	else if (!strcmp(type, "NodePort"))
		svc->type = SVC_NODE_PORT;
	else if (!strcmp(type, "LoadBalancer"))
		svc->type = SVC_LOAD_BALANCER;
	else if (!strcmp(type, "ExternalName"))
		svc->type = SVC_EXTERNAL_NAME;
	else {
		snprintf(err, errlen, "%s: spec.type: '%s' is not ClusterIP, NodePort, "
				      "LoadBalancer or ExternalName", object, type);
		return -EINVAL;
	}
	snprintf(svc->created, sizeof(svc->created), "%s",
		 str_at(obj, "metadata", "creationTimestamp") ?: "");
	cips = json_object_get(spec, "clusterIPs");
	if (!cips || json_is_null(cips) || (json_is_array(cips) && !json_array_size(cips)))
		cips = json_object_get(spec, "clusterIP");
	if (json_is_string(cips) && !*json_string_value(cips))
		cips = NULL; /* not allocated yet */
	if ((json_is_string(cips) && !strcmp(json_string_value(cips), "None")) ||
	    (json_is_array(cips) && !strcmp(json_string_value(json_array_get(cips, 0)) ?: "",
					    "None"))) {
		svc->ignore = SVC_HEADLESS;
		cips = NULL;
	}
	ret = ips_parse(cips, object, json_is_array(cips) ? "spec.clusterIPs" : "spec.clusterIP",
			&svc->cluster_ips, &svc->ncluster_ips, &svc->ipv6_skipped, err, errlen);
	if (!ret)
		ret = ips_parse(json_object_get(spec, "externalIPs"), object, "spec.externalIPs",
				&svc->external_ips, &svc->nexternal_ips, &svc->ipv6_skipped, err,
				errlen);
	if (ret)
		return ret;
	if (svc->type == SVC_LOAD_BALANCER) {
		const json_t *ing = json_object_get(json_object_get(json_object_get(obj, "status"),
								    "loadBalancer"), "ingress");
		const json_t *e;
		size_t i;

		if (ing && !json_is_null(ing) && !json_is_array(ing)) {
			snprintf(err, errlen, "%s: status.loadBalancer.ingress: expected a list",
				 object);
			return -EINVAL;
		}
		json_array_foreach(ing, i, e) {
			char field[64];

			/* ipMode Proxy: the load balancer delivers to the node,
			 * kube-proxy must not capture the address. */
			if (!strcmp(str_at(e, "ipMode", NULL) ?: "VIP", "Proxy"))
				continue;
			snprintf(field, sizeof(field), "status.loadBalancer.ingress[%zu].ip", i);
			ret = ips_parse(json_object_get(e, "ip"), object, field, &svc->lb_ips,
					&svc->nlb_ips, &svc->ipv6_skipped, err, errlen);
			if (ret)
				return ret;
		}
	}
	ret = ports_parse(json_object_get(spec, "ports"), object, svc, err, errlen);
	if (ret)
		return ret;
	aff = json_object_get(spec, "sessionAffinity");
	if (aff && !json_is_null(aff) && strcmp(json_string_value(aff) ?: "?", "None")) {
		if (strcmp(json_string_value(aff) ?: "?", "ClientIP")) {
			snprintf(err, errlen, "%s: spec.sessionAffinity: %s is not None or ClientIP",
				 object, value_text(aff, buf, sizeof(buf)));
			return -EINVAL;
		}
		svc->affinity_client_ip = true;
	}
	svc->affinity_timeout = AFFINITY_DEFAULT_S;
	aff = json_object_get(json_object_get(json_object_get(spec, "sessionAffinityConfig"),
					      "clientIP"), "timeoutSeconds");
	if (aff && !json_is_null(aff)) {
		if (!json_is_integer(aff) || json_integer_value(aff) < 1 ||
		    json_integer_value(aff) > AFFINITY_MAX_S) {
			snprintf(err, errlen, "%s: spec.sessionAffinityConfig.clientIP."
					      "timeoutSeconds: %s is outside 1-%d", object,
				 value_text(aff, buf, sizeof(buf)), AFFINITY_MAX_S);
			return -EINVAL;
		}
		svc->affinity_timeout = (uint32_t)json_integer_value(aff);
	}
	ret = policy_parse(json_object_get(spec, "externalTrafficPolicy"), object,
			   "spec.externalTrafficPolicy", &svc->etp_local, err, errlen);
	if (!ret)
		ret = policy_parse(json_object_get(spec, "internalTrafficPolicy"), object,
				   "spec.internalTrafficPolicy", &svc->itp_local, err, errlen);
	if (ret)
		return ret;
	hc = json_object_get(spec, "healthCheckNodePort");
	if (port_parse(hc, true, &svc->health_check_node_port) &&
	    !(json_is_integer(hc) && json_integer_value(hc) == 0)) {
		snprintf(err, errlen, "%s: spec.healthCheckNodePort: %s is outside 1-65535", object,
			 value_text(hc, buf, sizeof(buf)));
		return -EINVAL;
	}
	svc->publish_not_ready = json_is_true(json_object_get(spec, "publishNotReadyAddresses"));
	if (svc->type == SVC_EXTERNAL_NAME)
		svc->ignore = SVC_EXTERNALNAME;
	else if (json_object_get(labels, "service.kubernetes.io/service-proxy-name"))
		svc->ignore = SVC_PROXY_NAME;
	return 0;
}

void svc_set_why(char **why, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	free(*why);
	*why = *buf ? strdup(buf) : NULL;
}

const char *svc_why_text(const char *why)
{
	return why ? why : "(the reason was lost: out of memory)";
}

void svc_free(struct svc_service *svc)
{
	free(svc->why);
	free(svc->cluster_ips);
	free(svc->external_ips);
	free(svc->lb_ips);
	for (size_t i = 0; i < svc->nports; i++) {
		free(svc->ports[i].name);
		free(svc->ports[i].target_name);
	}
	free(svc->ports);
	memset(svc, 0, sizeof(*svc));
}

/* A condition: absent or null is def; anything but a boolean is an error. */
static int cond_parse(const json_t *conds, const char *key, bool def, bool *out)
{
	const json_t *v = json_object_get(conds, key);

	if (!v || json_is_null(v)) {
		*out = def;
		return 0;
	}
	if (!json_is_boolean(v))
		return -EINVAL;
	*out = json_is_true(v);
	return 0;
}

static int endpoint_parse(const json_t *e, size_t i, const char *object, struct svc_endpoint *ep,
			  char *err, size_t errlen)
{
	const json_t *addrs = json_object_get(e, "addresses"), *conds, *a;
	const json_t *ref = json_object_get(e, "targetRef");
	char buf[80];
	size_t j;

	if (!json_is_array(addrs) || !json_array_size(addrs)) {
		snprintf(err, errlen, "%s: endpoints[%zu].addresses: expected a list of at least "
				      "one address", object, i);
		return -EINVAL;
	}
	json_array_foreach(addrs, j, a) {
		uint32_t ip;

		if (!json_is_string(a) || ip4_parse(json_string_value(a), &ip) || !ip) {
			snprintf(err, errlen, "%s: endpoints[%zu].addresses[%zu]: %s is not an IPv4 "
					      "address (addressType is IPv4)", object, i, j,
				 value_text(a, buf, sizeof(buf)));
			return -EINVAL;
		}
		if (!j)
			ep->ip = ip;
	}
	conds = json_object_get(e, "conditions");
	if (cond_parse(conds, "ready", true, &ep->ready) ||
	    cond_parse(conds, "serving", ep->ready, &ep->serving) ||
	    cond_parse(conds, "terminating", false, &ep->terminating)) {
		snprintf(err, errlen, "%s: endpoints[%zu].conditions: ready, serving and "
				      "terminating must be true, false or null", object, i);
		return -EINVAL;
	}
	if (str_at(e, "nodeName", NULL) && !(ep->node = strdup(str_at(e, "nodeName", NULL))))
		return -ENOMEM;
	if (!strcmp(str_at(ref, "kind", NULL) ?: "", "Pod") && str_at(ref, "name", NULL)) {
		ep->pod_ns = strdup(str_at(ref, "namespace", NULL) ?: "");
		ep->pod_name = strdup(str_at(ref, "name", NULL));
		if (!ep->pod_ns || !ep->pod_name)
			return -ENOMEM;
	}
	return 0;
}

int svc_slice_parse(const json_t *obj, const char *object, struct svc_slice *sl, char *err,
		    size_t errlen)
{
	const json_t *labels = json_object_get(json_object_get(obj, "metadata"), "labels");
	const json_t *ports = json_object_get(obj, "ports"), *eps = json_object_get(obj, "endpoints");
	const char *at = str_at(obj, "addressType", NULL), *svc;
	const json_t *p, *e;
	char buf[80];
	size_t i;
	int ret;

	memset(sl, 0, sizeof(*sl));
	if (!at || (strcmp(at, "IPv4") && strcmp(at, "IPv6") && strcmp(at, "FQDN"))) {
		snprintf(err, errlen, "%s: addressType: %s is not IPv4, IPv6 or FQDN", object,
			 value_text(json_object_get(obj, "addressType"), buf, sizeof(buf)));
		return -EINVAL;
	}
	sl->addr_type = !strcmp(at, "IPv4") ? SVC_ADDR_IPV4
			: !strcmp(at, "IPv6") ? SVC_ADDR_IPV6 : SVC_ADDR_FQDN;
	svc = json_string_value(json_object_get(labels, "kubernetes.io/service-name"));
	if (svc && *svc && !(sl->service = strdup(svc)))
		return -ENOMEM;
	if (sl->addr_type != SVC_ADDR_IPV4) {
		sl->unused = true;
		svc_set_why(&sl->why, "addressType %s: kept, not used: sluice serves IPv4 Services",
			    at);
		return 0;
	}
	if (!sl->service) {
		sl->unused = true;
		svc_set_why(&sl->why, "no kubernetes.io/service-name label: it belongs to no "
				      "Service");
	}
	if ((ports && !json_is_null(ports) && !json_is_array(ports)) ||
	    (eps && !json_is_null(eps) && !json_is_array(eps))) {
		snprintf(err, errlen, "%s: %s: expected a list", object,
			 json_is_array(ports) || !ports ? "endpoints" : "ports");
		return -EINVAL;
	}
	sl->ports = calloc(json_array_size(ports) + 1, sizeof(*sl->ports));
	sl->eps = calloc(json_array_size(eps) + 1, sizeof(*sl->eps));
	if (!sl->ports || !sl->eps)
		return -ENOMEM;
	json_array_foreach(ports, i, p) {
		struct svc_slice_port *sp = &sl->ports[i];
		const char *name = str_at(p, "name", NULL);

		sl->nports = i + 1;
		if (port_parse(json_object_get(p, "port"), true, &sp->port)) {
			snprintf(err, errlen, "%s: ports[%zu].port: %s is not a port number 1-65535",
				 object, i, value_text(json_object_get(p, "port"), buf, sizeof(buf)));
			return -EINVAL;
		}
		if (proto_parse(json_object_get(p, "protocol"), &sp->proto)) {
			snprintf(err, errlen, "%s: ports[%zu].protocol: %s is not TCP, UDP or SCTP",
				 object, i,
				 value_text(json_object_get(p, "protocol"), buf, sizeof(buf)));
			return -EINVAL;
		}
		sp->name = strdup(name ? name : "");
		if (!sp->name)
			return -ENOMEM;
	}
	json_array_foreach(eps, i, e) {
		sl->neps = i + 1;
		ret = endpoint_parse(e, i, object, &sl->eps[i], err, errlen);
		if (ret)
			return ret;
	}
	return 0;
}

void svc_slice_free(struct svc_slice *sl)
{
	free(sl->why);
	free(sl->service);
	for (size_t i = 0; sl->ports && i < sl->nports; i++)
		free(sl->ports[i].name);
	free(sl->ports);
	for (size_t i = 0; sl->eps && i < sl->neps; i++) {
		free(sl->eps[i].node);
		free(sl->eps[i].pod_ns);
		free(sl->eps[i].pod_name);
	}
	free(sl->eps);
	memset(sl, 0, sizeof(*sl));
}

/* ---- frontends and the view ------------------------------------------- */

static size_t add_frontend(struct svc_frontend *out, size_t n, enum svc_fe_kind kind, uint32_t ip,
			   uint16_t port, uint8_t proto, size_t pi)
{
	struct svc_frontend f = { kind, ip, port, proto, pi };

	/* An address listed twice (a clusterIP also in externalIPs) is one
	 * frontend; out is NULL while counting, so count every candidate. */
	if (out)
		for (size_t i = 0; i < n; i++)
			if (out[i].ip == ip && out[i].port == port && out[i].proto == proto &&
			    (out[i].kind == SVC_FE_NODE_PORT) == (kind == SVC_FE_NODE_PORT))
				return n;
	if (out)
		out[n] = f;
	return n + 1;
}

size_t svc_frontends(const struct svc_service *svc, struct svc_frontend *out)
{
	const struct {
		enum svc_fe_kind kind;
		const uint32_t *ips;
		size_t n;
	} lists[] = {
		{ SVC_FE_CLUSTER_IP, svc->cluster_ips, svc->ncluster_ips },
		{ SVC_FE_EXTERNAL_IP, svc->external_ips, svc->nexternal_ips },
		{ SVC_FE_LOAD_BALANCER, svc->lb_ips, svc->nlb_ips },
	};
	size_t n = 0;

	for (size_t l = 0; l < sizeof(lists) / sizeof(lists[0]); l++)
		for (size_t a = 0; a < lists[l].n; a++)
			for (size_t p = 0; p < svc->nports; p++)
				n = add_frontend(out, n, lists[l].kind, lists[l].ips[a],
						 svc->ports[p].port, svc->ports[p].proto, p);
	if (svc->type == SVC_NODE_PORT || svc->type == SVC_LOAD_BALANCER)
		for (size_t p = 0; p < svc->nports; p++)
			if (svc->ports[p].node_port)
				n = add_frontend(out, n, SVC_FE_NODE_PORT, 0, svc->ports[p].node_port,
						 svc->ports[p].proto, p);
	return n;
}

/* The port of slice sl that serves Service port sp, or 0. */
static uint16_t slice_target(const struct svc_slice *sl, const struct svc_port *sp)
{
	for (size_t i = 0; i < sl->nports; i++)
		if (sl->ports[i].proto == sp->proto && !strcmp(sl->ports[i].name, sp->name))
			return sl->ports[i].port;
	/* A hand-written slice whose port names differ: a numeric
	 * targetPort still finds its port by number. */
	if (!sp->target_name)
		for (size_t i = 0; i < sl->nports; i++)
			if (sl->ports[i].proto == sp->proto && sl->ports[i].port == sp->target_port)
				return sp->target_port;
	return 0;
}

/* Slices by namespace and Service (to find a Service's slices)... */
static int slice_cmp(const void *a, const void *b)
{
	const struct svc_source_slice *x = *(const struct svc_source_slice *const *)a;
	const struct svc_source_slice *y = *(const struct svc_source_slice *const *)b;
	int c = strcmp(x->ns, y->ns);

	return c ? c : strcmp(x->sl->service, y->sl->service);
}

/* ...then by name, so backends come in the same order on every node. */
static int slice_order(const void *a, const void *b)
{
	int c = slice_cmp(a, b);

	return c ? c : strcmp((*(const struct svc_source_slice *const *)a)->name,
			      (*(const struct svc_source_slice *const *)b)->name);
}

static int view_cmp(const void *a, const void *b)
{
	const struct svc_view_service *x = a, *y = b;
	int c = strcmp(x->ns, y->ns);

	return c ? c : strcmp(x->name, y->name);
}

/* publish_not_ready: the Service's publishNotReadyAddresses. Its endpoints
 * are ready whatever their conditions say, as the EndpointSlice controller
 * publishes them (an explicit override of readiness, terminating ones
 * included), so slices written by hand or by another controller mean the
 * same. */
static int port_backends(struct svc_view_port *vp, const struct svc_source_slice *const *sl,
			 size_t nsl, const char *this_node, bool publish_not_ready)
{
	size_t cap = 0;

	for (size_t i = 0; i < nsl; i++)
		cap += sl[i]->sl->neps;
	vp->backends = calloc(cap + 1, sizeof(*vp->backends));
	if (!vp->backends)
		return -ENOMEM;
	for (size_t i = 0; i < nsl; i++) {
		const struct svc_slice *s = sl[i]->sl;
		uint16_t port = slice_target(s, vp->port);

		if (!port)
			continue;
		for (size_t e = 0; e < s->neps; e++) {
			const struct svc_endpoint *ep = &s->eps[e];
			struct svc_backend *b = &vp->backends[vp->nbackends];
			bool dup = false;

			/* The same endpoint in two slices (a slice being
			 * replaced): once, the first one seen. */
			for (size_t k = 0; k < vp->nbackends && !dup; k++)
				dup = vp->backends[k].ip == ep->ip && vp->backends[k].port == port;
			if (dup)
				continue;
			*b = (struct svc_backend){ .ip = ep->ip, .port = port,
						   .ready = ep->ready || publish_not_ready,
						   .serving = ep->serving || publish_not_ready,
						   .terminating = ep->terminating,
						   .local = this_node && ep->node &&
							    !strcmp(ep->node, this_node),
						   .node = ep->node, .pod_ns = ep->pod_ns,
						   .pod_name = ep->pod_name };
			vp->nbackends++;
		}
	}
	return 0;
}

int svc_view_build(const struct svc_source_service *svcs, size_t nsvcs,
		   const struct svc_source_slice *slices, size_t nslices, const char *this_node,
		   bool all, struct svc_view *out)
{
	const struct svc_source_slice **idx = NULL;
	size_t nidx = 0;
	int ret = -ENOMEM;

	memset(out, 0, sizeof(*out));
	out->v = calloc(nsvcs + 1, sizeof(*out->v));
	idx = calloc(nslices + 1, sizeof(*idx));
	if (!out->v || !idx)
		goto cleanup;
	for (size_t i = 0; i < nslices; i++)
		if (!slices[i].sl->unused && slices[i].sl->service)
			idx[nidx++] = &slices[i];
	qsort(idx, nidx, sizeof(*idx), slice_order);
	for (size_t i = 0; i < nsvcs; i++) {
		const struct svc_service *svc = svcs[i].svc;
		struct svc_view_service *vs = &out->v[out->n];
		struct svc_source_slice key_sl = { svcs[i].ns, svcs[i].name, NULL };
		struct svc_slice key = { .service = (char *)svcs[i].name };
		const struct svc_source_slice *kp = &key_sl, *const *first;
		size_t nfirst = 0;

		vs->ns = svcs[i].ns;
		vs->name = svcs[i].name;
		vs->svc = svc;
		if (svc->invalid || svc->refused)
			vs->status = svc_why_text(svc->why);
		else
			vs->status = svc_ignore_reason(svc->ignore);
		if (vs->status && !all)
			continue;
		out->n++;
		if (svc->invalid || svc->ignore)
			continue;
		vs->frontends = calloc(svc_frontends(svc, NULL) + 1, sizeof(*vs->frontends));
		vs->ports = calloc(svc->nports + 1, sizeof(*vs->ports));
		if (!vs->frontends || !vs->ports)
			goto cleanup;
		vs->nfrontends = svc_frontends(svc, vs->frontends);
		key_sl.sl = &key;
		first = bsearch(&kp, idx, nidx, sizeof(*idx), slice_cmp);
		if (first) {
			while (first > idx && !slice_cmp(first - 1, &kp))
				first--;
			while (first + nfirst < idx + nidx && !slice_cmp(first + nfirst, &kp))
				nfirst++;
		}
		vs->nports = svc->nports;
		for (size_t p = 0; p < svc->nports; p++) {
			vs->ports[p].port = &svc->ports[p];
			if (port_backends(&vs->ports[p], first, nfirst, this_node,
					  svc->publish_not_ready))
				goto cleanup;
		}
	}
	qsort(out->v, out->n, sizeof(*out->v), view_cmp);
	ret = 0;
cleanup:
	free(idx);
	if (ret)
		svc_view_free(out);
	return ret;
}

void svc_view_free(struct svc_view *v)
{
	for (size_t i = 0; v->v && i < v->n + 1; i++) {
		free(v->v[i].frontends);
		for (size_t p = 0; v->v[i].ports && p < v->v[i].nports; p++)
			free(v->v[i].ports[p].backends);
		free(v->v[i].ports);
	}
	free(v->v);
	memset(v, 0, sizeof(*v));
}

void svc_frontend_format(const struct svc_frontend *f, char *buf, size_t len)
{
	char ip[16] = "*";

	if (f->kind != SVC_FE_NODE_PORT)
		ip4_format(f->ip, ip, sizeof(ip));
	snprintf(buf, len, "%s:%u/%s", ip, f->port, svc_proto_name(f->proto));
}

const char *svc_backend_state(const struct svc_backend *b)
{
	if (b->ready)
		return "ready";
	if (b->serving)
		return b->terminating ? "terminating" : "serving";
	return "not-ready";
}

json_t *svc_view_json(const struct svc_view *v)
{
	static const char *const fe_kinds[] = { "ClusterIP", "ExternalIP", "LoadBalancer",
						"NodePort" };
	json_t *items = json_array();

	for (size_t i = 0; items && i < v->n; i++) {
		const struct svc_view_service *vs = &v->v[i];
		const struct svc_service *svc = vs->svc;
		json_t *fes = json_array(), *ports = json_array();

		for (size_t f = 0; f < vs->nfrontends; f++) {
			const struct svc_frontend *fe = &vs->frontends[f];
			char text[48], ip[16] = "";

			svc_frontend_format(fe, text, sizeof(text));
			if (fe->kind != SVC_FE_NODE_PORT)
				ip4_format(fe->ip, ip, sizeof(ip));
			json_array_append_new(fes, json_pack("{s:s, s:s, s:s, s:i, s:s, s:s}",
							     "frontend", text, "kind",
							     fe_kinds[fe->kind], "address", ip,
							     "port", fe->port, "protocol",
							     svc_proto_name(fe->proto), "portName",
							     svc->ports[fe->port_index].name));
		}
		for (size_t p = 0; p < vs->nports; p++) {
			const struct svc_view_port *vp = &vs->ports[p];
			json_t *bes = json_array();

			for (size_t b = 0; b < vp->nbackends; b++) {
				const struct svc_backend *be = &vp->backends[b];
				char ip[16];

				ip4_format(be->ip, ip, sizeof(ip));
				json_array_append_new(
					bes, json_pack("{s:s, s:i, s:s, s:b, s:b, s:b, s:b, s:s?, s:s?}",
						       "address", ip, "port", be->port, "state",
						       svc_backend_state(be), "ready", be->ready,
						       "serving", be->serving, "terminating",
						       be->terminating, "local", be->local, "nodeName",
						       be->node, "pod", be->pod_name));
			}
			json_array_append_new(
				ports, json_pack("{s:s, s:s, s:i, s:o, s:o}", "name", vp->port->name,
						 "protocol", svc_proto_name(vp->port->proto), "port",
						 vp->port->port, "targetPort",
						 vp->port->target_name
							 ? json_string(vp->port->target_name)
							 : json_integer(vp->port->target_port),
						 "backends", bes));
		}
		json_array_append_new(
			items,
			json_pack("{s:s, s:s, s:s, s:o, s:o, s:s, s:s, s:s, s:i, s:i, s:b, s:s, s:s?}",
				  "namespace", vs->ns, "name", vs->name, "type",
				  svc_type_name(svc->type), "frontends", fes, "ports", ports,
				  "externalTrafficPolicy", svc->etp_local ? "Local" : "Cluster",
				  "internalTrafficPolicy", svc->itp_local ? "Local" : "Cluster",
				  "sessionAffinity", svc->affinity_client_ip ? "ClientIP" : "None",
				  "affinityTimeoutSeconds", (int)svc->affinity_timeout,
				  "healthCheckNodePort", svc->health_check_node_port,
				  "publishNotReadyAddresses", svc->publish_not_ready, "status",
				  !vs->status ? "OK" : svc->invalid ? "Invalid"
				  : svc->refused ? "Refused" : "Ignored", "statusReason", vs->status));
	}
	return items;
}
