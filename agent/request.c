// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "cidr.h"
#include "cni_names.h"
#include "request.h"

/* Copy an optional string member; returns -1 when present but not a string
 * or too long. */
static int get_str(const json_t *obj, const char *key, char *buf, size_t len)
{
	const json_t *v = json_object_get(obj, key);

	buf[0] = '\0';
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v) || json_string_length(v) >= len)
		return -1;
	memcpy(buf, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

const char *hostport_proto(uint8_t proto)
{
	return proto == IPPROTO_UDP ? "udp" : proto == IPPROTO_SCTP ? "sctp" : "tcp";
}

void hostport_format(const struct hostport *h, char *buf, size_t len)
{
	char ip[16] = "";

	if (h->host_ip)
		ip4_format(h->host_ip, ip, sizeof(ip));
	snprintf(buf, len, "%s%s%u/%s -> %u", ip, h->host_ip ? ":" : "", h->host_port,
		 hostport_proto(h->proto), h->container_port);
}

/* One entry of portMappings ({hostPort, containerPort, protocol, hostIP?},
 * as the plugin normalises them, and as the state files hold them) into
 * *h. Returns 1 when taken, 0 when it is not for sluice (an IPv6 hostIP:
 * the pod has no IPv6 address), -1 with err set when invalid. */
static int hostport_parse(const json_t *pm, size_t i, struct hostport *h, char *err,
			  size_t errlen)
{
	const json_t *hp = json_object_get(pm, "hostPort"), *cp = json_object_get(pm, "containerPort");
	const char *proto = json_string_value(json_object_get(pm, "protocol"));
	const json_t *ip = json_object_get(pm, "hostIP");

	memset(h, 0, sizeof(*h));
	if (!json_is_integer(hp) || json_integer_value(hp) < 1 || json_integer_value(hp) > 65535 ||
	    !json_is_integer(cp) || json_integer_value(cp) < 1 || json_integer_value(cp) > 65535) {
		snprintf(err, errlen, "portMappings[%zu]: hostPort and containerPort must be "
				      "port numbers 1..65535", i);
		return -1;
	}
	h->host_port = (uint16_t)json_integer_value(hp);
	h->container_port = (uint16_t)json_integer_value(cp);
	if (!proto || !strcmp(proto, "tcp")) {
		h->proto = IPPROTO_TCP;
	} else if (!strcmp(proto, "udp")) {
		h->proto = IPPROTO_UDP;
	} else if (!strcmp(proto, "sctp")) {
		h->proto = IPPROTO_SCTP;
	} else {
		snprintf(err, errlen, "portMappings[%zu]: protocol must be tcp, udp or sctp", i);
		return -1;
	}
	if (ip && !json_is_null(ip)) {
		const char *text = json_string_value(ip);

		if (text && strchr(text, ':'))
			return 0;
		if (!text || ip4_parse(text, &h->host_ip)) {
			snprintf(err, errlen, "portMappings[%zu]: hostIP must be an IPv4 address", i);
			return -1;
		}
	}
	return 1;
}

/* portMappings (an array, or absent) into ports[*n]; the same mapping
 * twice is kept once. Returns 0 or -1 with err set. */
static int hostports_parse(const json_t *arr, struct hostport *ports, size_t *n, char *err,
			   size_t errlen)
{
	const json_t *pm;
	size_t i;

	*n = 0;
	if (!arr || json_is_null(arr))
		return 0;
	if (!json_is_array(arr)) {
		snprintf(err, errlen, "portMappings must be an array");
		return -1;
	}
	json_array_foreach(arr, i, pm) {
		struct hostport h;
		int dup = 0, ret = hostport_parse(pm, i, &h, err, errlen);

		if (ret < 0)
			return -1;
		for (size_t k = 0; ret && k < *n && !dup; k++)
			dup = !memcmp(&ports[k], &h, sizeof(h));
		if (!ret || dup)
			continue;
		if (*n == HOSTPORT_MAX) {
			snprintf(err, errlen, "portMappings: more than %d host ports for one pod",
				 HOSTPORT_MAX);
			return -1;
		}
		ports[(*n)++] = h;
	}
	return 0;
}

int request_parse_cni(const json_t *cni, int need_netns, struct cni_req *out, char *err,
		      size_t errlen)
{
	const json_t *k8s;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(cni)) {
		snprintf(err, errlen, "request has no \"cni\" object");
		return CNI_ERR_DECODE;
	}
	if (get_str(cni, "containerId", out->container_id, sizeof(out->container_id)) ||
	    !cni_valid_container_id(out->container_id)) {
		snprintf(err, errlen,
			 "CNI_CONTAINERID is missing or invalid: it must start with a letter or digit "
			 "and hold only letters, digits, '_', '.' and '-'");
		return CNI_ERR_INVALID_ENV;
	}
	if (get_str(cni, "ifname", out->ifname, sizeof(out->ifname)) || cni_ifname_problem(out->ifname)) {
		snprintf(err, errlen,
			 "CNI_IFNAME is missing or invalid: 1 to 15 characters, no '/', ':' or spaces");
		return CNI_ERR_INVALID_ENV;
	}
	if (get_str(cni, "netns", out->netns, sizeof(out->netns)) || (need_netns && !out->netns[0])) {
		snprintf(err, errlen, "CNI_NETNS is missing or invalid: the path of the container's "
				      "network namespace is required");
		return CNI_ERR_INVALID_ENV;
	}
	if (get_str(cni, "network", out->network, sizeof(out->network))) {
		snprintf(err, errlen, "network name must be a string shorter than %d bytes",
			 NETWORK_NAME_MAX);
		return CNI_ERR_INVALID_CONFIG;
	}
	k8s = json_object_get(cni, "k8s");
	if (k8s && !json_is_object(k8s)) {
		snprintf(err, errlen, "\"k8s\" must be an object");
		return CNI_ERR_DECODE;
	}
	if (k8s && (get_str(k8s, "namespace", out->k8s_namespace, sizeof(out->k8s_namespace)) ||
		    get_str(k8s, "name", out->k8s_pod, sizeof(out->k8s_pod)) ||
		    get_str(k8s, "uid", out->k8s_uid, sizeof(out->k8s_uid)))) {
		snprintf(err, errlen, "CNI_ARGS: K8S_POD_NAMESPACE, K8S_POD_NAME and K8S_POD_UID "
				      "must be strings of at most 253 bytes");
		return CNI_ERR_INVALID_ENV;
	}
	out->prev_result = json_object_get(cni, "prevResult");
	/* DEL takes the pod's host ports from its endpoint, whatever the
	 * request says. */
	if (need_netns &&
	    hostports_parse(json_object_get(cni, "portMappings"), out->ports, &out->nports, err,
			    errlen))
		return CNI_ERR_INVALID_CONFIG;
	/* sluice-cni checked it; a client of the socket may not have. */
	if (need_netns && bw_limits_parse(json_object_get(cni, "bandwidth"),
					  "runtimeConfig.bandwidth", &out->bw, err, errlen))
		return CNI_ERR_INVALID_CONFIG;
	return 0;
}

int request_check_bandwidth(const struct bw_limits *bw, unsigned int mtu, char *err,
			    size_t errlen)
{
	const uint64_t bursts[2] = { bw->ingress_burst, bw->egress_burst };
	const char *const names[2] = { "ingressBurst", "egressBurst" };
	uint64_t min = 8ULL * (mtu ? mtu : 1500);

	for (int i = 0; i < 2; i++) {
		if (!bursts[i] || bursts[i] >= min)
			continue;
		snprintf(err, errlen, "invalid runtimeConfig.bandwidth.%s: %llu bits is less than one "
			 "packet of the pod interface's MTU (%u bytes = %llu bits); give at least "
			 "%llu, or 0 for the default", names[i], (unsigned long long)bursts[i],
			 mtu ? mtu : 1500, (unsigned long long)min, (unsigned long long)min);
		return CNI_ERR_INVALID_CONFIG;
	}
	return 0;
}

const char *ep_state_name(enum ep_state s)
{
	return s == EP_READY ? "ready" : "creating";
}

void mac_format(const unsigned char m[6], char *buf, size_t len)
{
	snprintf(buf, len, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

int mac_parse(const char *text, unsigned char m[6])
{
	unsigned int b[6];
	char tail;

	if (sscanf(text, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
		   &tail) != 6)
		return -EINVAL;
	for (int i = 0; i < 6; i++)
		m[i] = (unsigned char)b[i];
	return 0;
}

json_t *endpoint_to_json(const struct endpoint *ep)
{
	char ip[16], pod_mac[18], host_mac[18];
	json_t *obj, *ports = NULL;

	ip4_format(ep->ip, ip, sizeof(ip));
	mac_format(ep->pod_mac, pod_mac, sizeof(pod_mac));
	mac_format(ep->host_mac, host_mac, sizeof(host_mac));
	if (ep->nports) {
		ports = json_array();
		for (size_t i = 0; ports && i < ep->nports; i++) {
			const struct hostport *h = &ep->ports[i];
			char hip[16];
			json_t *one;

			ip4_format(h->host_ip, hip, sizeof(hip));
			one = json_pack("{s:i, s:i, s:s}", "hostPort", h->host_port, "containerPort",
					h->container_port, "protocol", hostport_proto(h->proto));
			if (one && h->host_ip && json_object_set_new(one, "hostIP", json_string(hip))) {
				json_decref(one);
				one = NULL;
			}
			if (!one || json_array_append_new(ports, one)) {
				json_decref(ports);
				return NULL;
			}
		}
		if (!ports)
			return NULL;
	}
	obj = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:s, s:s}",
			"containerId", ep->container_id, "ifname", ep->ifname, "network",
			ep->network, "netns", ep->netns, "namespace", ep->k8s_namespace, "pod",
			ep->k8s_pod, "podUID", ep->k8s_uid, "ip", ip, "hostIfname", ep->host_ifname,
			"hostIfindex", ep->host_ifindex, "podMac", pod_mac, "hostMac", host_mac,
			"state", ep_state_name(ep->state));
	if (obj && ports && json_object_set(obj, "portMappings", ports)) {
		json_decref(obj);
		obj = NULL;
	}
	json_decref(ports);
	if (obj && bw_limits_any(&ep->bw) &&
	    json_object_set_new(obj, "bandwidth", bw_limits_json(&ep->bw))) {
		json_decref(obj);
		obj = NULL;
	}
	return obj;
}

int endpoint_from_json(const json_t *obj, struct endpoint *ep, char *err, size_t errlen)
{
	char ip[16], pod_mac[18], host_mac[18], state[16];
	const json_t *idx;

	memset(ep, 0, sizeof(*ep));
	if (!json_is_object(obj)) {
		snprintf(err, errlen, "endpoint is not a JSON object");
		return -EINVAL;
	}
	if (get_str(obj, "containerId", ep->container_id, sizeof(ep->container_id)) ||
	    get_str(obj, "ifname", ep->ifname, sizeof(ep->ifname)) ||
	    get_str(obj, "network", ep->network, sizeof(ep->network)) ||
	    get_str(obj, "netns", ep->netns, sizeof(ep->netns)) ||
	    get_str(obj, "namespace", ep->k8s_namespace, sizeof(ep->k8s_namespace)) ||
	    get_str(obj, "pod", ep->k8s_pod, sizeof(ep->k8s_pod)) ||
	    get_str(obj, "podUID", ep->k8s_uid, sizeof(ep->k8s_uid)) ||
	    get_str(obj, "ip", ip, sizeof(ip)) ||
	    get_str(obj, "hostIfname", ep->host_ifname, sizeof(ep->host_ifname)) ||
	    get_str(obj, "podMac", pod_mac, sizeof(pod_mac)) ||
	    get_str(obj, "hostMac", host_mac, sizeof(host_mac)) ||
	    get_str(obj, "state", state, sizeof(state))) {
		snprintf(err, errlen, "endpoint has a field of the wrong type or length");
		return -EINVAL;
	}
	idx = json_object_get(obj, "hostIfindex");
	if (!cni_valid_container_id(ep->container_id) || cni_ifname_problem(ep->ifname) ||
	    ip4_parse(ip, &ep->ip) || mac_parse(pod_mac, ep->pod_mac) ||
	    mac_parse(host_mac, ep->host_mac) || cni_ifname_problem(ep->host_ifname) ||
	    !json_is_integer(idx)) {
		snprintf(err, errlen, "endpoint lacks a valid containerId, ifname, ip, MAC, "
				      "hostIfname or hostIfindex");
		return -EINVAL;
	}
	ep->host_ifindex = (int)json_integer_value(idx);
	/* (absent in state files older than host ports) */
	if (hostports_parse(json_object_get(obj, "portMappings"), ep->ports, &ep->nports, err,
			    errlen))
		return -EINVAL;
	/* (absent in state files older than bandwidth limits, and for a pod
	 * without any) */
	if (bw_limits_parse(json_object_get(obj, "bandwidth"), "bandwidth", &ep->bw, err, errlen))
		return -EINVAL;
	if (!strcmp(state, "ready"))
		ep->state = EP_READY;
	else if (!strcmp(state, "creating"))
		ep->state = EP_CREATING;
	else {
		snprintf(err, errlen, "endpoint state '%s' is neither ready nor creating", state);
		return -EINVAL;
	}
	return 0;
}

json_t *endpoint_result(const struct endpoint *ep, uint32_t router)
{
	char ip[24], gw[16], pod_mac[18], host_mac[18];

	ip4_format(ep->ip, gw, sizeof(gw));
	snprintf(ip, sizeof(ip), "%s/32", gw);
	ip4_format(router, gw, sizeof(gw));
	mac_format(ep->pod_mac, pod_mac, sizeof(pod_mac));
	mac_format(ep->host_mac, host_mac, sizeof(host_mac));
	return json_pack("{s:[{s:s, s:s}, {s:s, s:s, s:s}], s:[{s:s, s:s, s:i}], s:[{s:s, s:s}]}",
			 "interfaces", "name", ep->host_ifname, "mac", host_mac, "name", ep->ifname,
			 "mac", pod_mac, "sandbox", ep->netns, "ips", "address", ip, "gateway", gw,
			 "interface", 1, "routes", "dst", "0.0.0.0/0", "gw", gw);
}
