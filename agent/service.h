/* SPDX-License-Identifier: Apache-2.0 */
/*
 * v1 Service and discovery.k8s.io/v1 EndpointSlice as sluice reads them
 * (docs/SERVICES.md): the parsed forms the store keeps, and the view the
 * Service datapath will be programmed from. Pure data: no maps, no BPF.
 *
 * Addresses are IPv4 in host order. IPv6 clusterIPs, externalIPs and
 * ingress addresses are left out (counted in ipv6_skipped); IPv6 and FQDN
 * EndpointSlices are kept but not used.
 */
#ifndef SLUICE_SERVICE_H
#define SLUICE_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

enum svc_type { SVC_CLUSTER_IP = 0, SVC_NODE_PORT, SVC_LOAD_BALANCER, SVC_EXTERNAL_NAME };

/* Why kube-proxy (and so sluice) leaves a Service alone. */
enum svc_ignore { SVC_HANDLED = 0, SVC_HEADLESS, SVC_EXTERNALNAME, SVC_PROXY_NAME };

struct svc_port {
	char *name;		/* "" when unnamed */
	uint8_t proto;		/* IPPROTO_TCP, _UDP or _SCTP */
	uint16_t port;
	uint16_t target_port;	/* by number; 0 when target_name is set */
	char *target_name;	/* targetPort by name, else NULL */
	uint16_t node_port;	/* 0: none */
};

struct svc_service {
	enum svc_type type;
	enum svc_ignore ignore;
	uint32_t *cluster_ips;
	size_t ncluster_ips;
	uint32_t *external_ips;
	size_t nexternal_ips;
	uint32_t *lb_ips;	/* status.loadBalancer.ingress[].ip (ipMode VIP) */
	size_t nlb_ips;
	size_t ipv6_skipped;	/* IPv6 addresses left out of the three lists */
	struct svc_port *ports;
	size_t nports;
	bool affinity_client_ip;
	uint32_t affinity_timeout;	/* seconds; 10800 unless set */
	bool etp_local;		/* externalTrafficPolicy: Local */
	bool itp_local;		/* internalTrafficPolicy: Local */
	uint16_t health_check_node_port;
	bool publish_not_ready;
	char created[40];	/* metadata.creationTimestamp; "" when absent */
	/* Set by the store: not usable as it is (a field sluice cannot read,
	 * from the API) or refused (a frontend another Service keeps). why
	 * names the field or the other Service. */
	bool invalid;
	bool refused;
	char *why;	/* NULL, or heap text (svc_set_why): a fixed buffer made
			 * 10 000 Services' objects 6 MB larger */
};

enum svc_addr_type { SVC_ADDR_IPV4 = 0, SVC_ADDR_IPV6, SVC_ADDR_FQDN };

struct svc_slice_port {
	char *name;		/* "" when unnamed */
	uint8_t proto;
	uint16_t port;		/* 0: not given (the port is unusable) */
};

struct svc_endpoint {
	uint32_t ip;		/* addresses[0], as kube-proxy uses */
	/* Conditions with the API's defaults: ready nil is true, serving
	 * nil is ready's value, terminating nil is false. */
	bool ready, serving, terminating;
	char *node;		/* nodeName, or NULL */
	char *pod_ns, *pod_name;	/* targetRef of kind Pod, or NULL */
};

struct svc_slice {
	char *service;		/* label kubernetes.io/service-name, or NULL */
	enum svc_addr_type addr_type;
	struct svc_slice_port *ports;
	size_t nports;
	struct svc_endpoint *eps;
	size_t neps;
	/* Kept but not used (IPv6, FQDN, no service-name label, or from
	 * the API with a field sluice cannot read): why says which. */
	bool unused;
	char *why;	/* NULL, or heap text (svc_set_why) */
};

/* Parse obj's spec (and status) into svc; object names obj in errors
 * ("Service shop/web"). Returns 0, -EINVAL with err naming the object and
 * the field, or -ENOMEM. */
int svc_parse(const json_t *obj, const char *object, struct svc_service *svc, char *err,
	      size_t errlen);
void svc_free(struct svc_service *svc);
int svc_slice_parse(const json_t *obj, const char *object, struct svc_slice *sl, char *err,
		    size_t errlen);
void svc_slice_free(struct svc_slice *sl);
/* *why (a Service's or slice's why) set to the text (the old one freed);
 * "" frees it to NULL. Out of memory it is NULL, which svc_why_text reads
 * as an unknown reason. */
void svc_set_why(char **why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *svc_why_text(const char *why);

const char *svc_type_name(enum svc_type t);
const char *svc_ignore_reason(enum svc_ignore i);
const char *svc_proto_name(uint8_t proto);

/* ---- the view -------------------------------------------------------- */

enum svc_fe_kind { SVC_FE_CLUSTER_IP = 0, SVC_FE_EXTERNAL_IP, SVC_FE_LOAD_BALANCER,
		   SVC_FE_NODE_PORT };

struct svc_frontend {
	enum svc_fe_kind kind;
	uint32_t ip;		/* 0 for SVC_FE_NODE_PORT: every node address */
	uint16_t port;		/* the Service port, or the nodePort */
	uint8_t proto;
	size_t port_index;	/* into svc_view_service.ports */
};

struct svc_backend {
	uint32_t ip;
	uint16_t port;		/* the target port, resolved from the slice */
	bool ready, serving, terminating;
	bool local;		/* nodeName is this node (store_services_view: or
				 * the address is in this node's pod range) */
	const char *node;	/* borrowed from the slice; may be NULL */
	const char *pod_ns, *pod_name;
};

struct svc_view_port {
	const struct svc_port *port;
	struct svc_backend *backends;	/* deduplicated by address and port */
	size_t nbackends;
};

struct svc_view_service {
	const char *ns, *name;
	const struct svc_service *svc;
	/* NULL when kube-proxy would handle it; else why not (headless,
	 * ExternalName, service-proxy-name, invalid, frontend conflict). */
	const char *status;
	struct svc_frontend *frontends;
	size_t nfrontends;
	struct svc_view_port *ports;	/* one per svc->ports[i] */
	size_t nports;
};

struct svc_view {
	struct svc_view_service *v;	/* sorted by namespace, then name */
	size_t n;
};

/* The frontends of svc, in order (clusterIPs, externalIPs, ingress, then
 * nodePorts; per address each port), duplicates left out. out may be NULL
 * to count them. Ignores svc->ignore, invalid and refused. */
size_t svc_frontends(const struct svc_service *svc, struct svc_frontend *out);

/* Where a view's Services come from: the store's objects, borrowed. */
struct svc_source_service {
	const char *ns, *name;
	const struct svc_service *svc;
};
struct svc_source_slice {
	const char *ns, *name;
	const struct svc_slice *sl;
};

/*
 * Build a view: the Services kube-proxy would handle (all: also the
 * others, with status saying why and, for ignored ones, no frontends or
 * backends), each with its frontends (every clusterIP, externalIP and
 * load-balancer ingress address on each port, and each nodePort) and per
 * port its backends from the IPv4 slices labelled with its name: the
 * target port is the slice port named like the Service port (same
 * protocol), else, for a numeric targetPort, a slice port with that
 * number. this_node marks backends local. Borrowed pointers stay valid
 * until the store changes. Returns 0 or -ENOMEM.
 */
int svc_view_build(const struct svc_source_service *svcs, size_t nsvcs,
		   const struct svc_source_slice *slices, size_t nslices, const char *this_node,
		   bool all, struct svc_view *out);
void svc_view_free(struct svc_view *v);

/* "10.96.0.10:80/TCP", "*:30080/TCP" (NodePort on every node address). */
void svc_frontend_format(const struct svc_frontend *f, char *buf, size_t len);
/* "ready", "serving", "terminating" (serving while terminating: the
 * fallback), or "not-ready". */
const char *svc_backend_state(const struct svc_backend *b);
/* The view as JSON for `sluicectl get services -o json`. */
json_t *svc_view_json(const struct svc_view *v);

#endif /* SLUICE_SERVICE_H */
