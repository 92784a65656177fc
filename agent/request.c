// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
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

	ip4_format(ep->ip, ip, sizeof(ip));
	mac_format(ep->pod_mac, pod_mac, sizeof(pod_mac));
	mac_format(ep->host_mac, host_mac, sizeof(host_mac));
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:s, s:s}",
			 "containerId", ep->container_id, "ifname", ep->ifname, "network",
			 ep->network, "netns", ep->netns, "namespace", ep->k8s_namespace, "pod",
			 ep->k8s_pod, "podUID", ep->k8s_uid, "ip", ip, "hostIfname", ep->host_ifname,
			 "hostIfindex", ep->host_ifindex, "podMac", pod_mac, "hostMac", host_mac,
			 "state", ep_state_name(ep->state));
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
