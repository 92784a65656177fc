/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's side of the API codec: CNI requests decoded from JSON, and
 * endpoints encoded to JSON (for answers and for the state files).
 */
#ifndef SLUICE_REQUEST_H
#define SLUICE_REQUEST_H

#include <limits.h>
#include <net/if.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "bwconf.h"

#define CONTAINER_ID_MAX 256
#define NETWORK_NAME_MAX 128
#define K8S_NAME_MAX 254

/* A pod's hostPort (runtimeConfig.portMappings, as the plugin normalises
 * them): the node's (hostIP, hostPort, protocol) forwarded to the pod's
 * containerPort through the Service maps (agent/lb.c). */
#define HOSTPORT_MAX 32
struct hostport {
	uint32_t host_ip;	/* host order; 0: the node's address on --device */
	uint16_t host_port;
	uint16_t container_port;
	uint8_t proto;		/* IPPROTO_TCP, _UDP or _SCTP (refused when forwarded) */
};

struct cni_req {
	char container_id[CONTAINER_ID_MAX];
	char ifname[IFNAMSIZ];
	char netns[PATH_MAX];
	char network[NETWORK_NAME_MAX];
	char k8s_namespace[K8S_NAME_MAX];
	char k8s_pod[K8S_NAME_MAX];
	char k8s_uid[K8S_NAME_MAX];
	const json_t *prev_result; /* borrowed from the request, may be NULL */
	struct hostport ports[HOSTPORT_MAX];	/* ADD and CHECK only */
	size_t nports;
	struct bw_limits bw;			/* ADD only ("bandwidth") */
};

enum ep_state {
	EP_CREATING = 0,	/* ADD in progress: roll back if found at start-up */
	EP_READY,
};

struct endpoint {
	char container_id[CONTAINER_ID_MAX];
	char ifname[IFNAMSIZ];
	char network[NETWORK_NAME_MAX];
	char netns[PATH_MAX];
	char k8s_namespace[K8S_NAME_MAX];
	char k8s_pod[K8S_NAME_MAX];
	char k8s_uid[K8S_NAME_MAX];
	uint32_t ip;			/* host byte order */
	char host_ifname[IFNAMSIZ];
	int host_ifindex;
	unsigned char pod_mac[6];
	unsigned char host_mac[6];
	enum ep_state state;
	struct hostport ports[HOSTPORT_MAX];
	size_t nports;
	struct bw_limits bw;		/* runtimeConfig.bandwidth of the last ADD */
};

/*
 * Decode the "cni" object of an add/del/check request. need_netns: ADD and
 * CHECK need CNI_NETNS; DEL does not. Returns 0, or a CNI error code with a
 * sentence in err naming the field.
 */
int request_parse_cni(const json_t *cni, int need_netns, struct cni_req *out, char *err,
		      size_t errlen);

/*
 * The bandwidth limits' bursts against the pod interface's MTU (bytes; 0:
 * the kernel's 1500): a burst below one full-size packet would let the
 * bucket take a packet only when it is empty. Returns 0, or
 * CNI_ERR_INVALID_CONFIG with the field named in err.
 */
int request_check_bandwidth(const struct bw_limits *bw, unsigned int mtu, char *err,
			    size_t errlen);

/* "tcp", "udp", "sctp". */
const char *hostport_proto(uint8_t proto);
/* A hostPort as text: "[hostIP:]hostPort/proto -> containerPort". */
void hostport_format(const struct hostport *h, char *buf, size_t len);

/* The endpoint as listed by the API and stored in state files. */
json_t *endpoint_to_json(const struct endpoint *ep);
/* Inverse of endpoint_to_json; returns 0 or -EINVAL with err set. */
int endpoint_from_json(const json_t *obj, struct endpoint *ep, char *err, size_t errlen);
/* The ADD result in CNI 1.x layout. router is the gateway (host order). */
json_t *endpoint_result(const struct endpoint *ep, uint32_t router);

const char *ep_state_name(enum ep_state s);
void mac_format(const unsigned char mac[6], char *buf, size_t len);
int mac_parse(const char *text, unsigned char mac[6]);

#endif /* SLUICE_REQUEST_H */
