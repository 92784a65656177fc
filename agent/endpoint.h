/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Endpoints: the pods attached on this node. ADD, DEL, CHECK and GC, the
 * state files that let a restarted agent pick up where it left off, and
 * the node's router device that pods use as their gateway.
 */
#ifndef SLUICE_ENDPOINT_H
#define SLUICE_ENDPOINT_H

#include <stddef.h>
#include <jansson.h>

#include "ipam.h"
#include "loader.h"
#include "request.h"

/* Router device: a veth pair whose first end holds the router address. */
#define ROUTER_IFNAME "sluice_host"
#define ROUTER_PEER_IFNAME "sluice_net"
/* Host-side veth names: "lxc" + 11 hex digits of a hash of the attachment. */
#define HOST_IFNAME_PREFIX "lxc"

struct endpoints;

/* Load the endpoints saved in state_dir, roll back interrupted ADDs, bring
 * attachments and map entries in line with this agent's datapath, release
 * addresses no endpoint owns, and set up the router device. */
int endpoints_open(struct endpoints **out, struct datapath *dp, struct ipam *ipam,
		   const char *state_dir, char *err, size_t errlen);
void endpoints_close(struct endpoints *eps);
/* MTU of the veth pairs of pods added from now on (0: kernel default). */
void endpoints_set_pod_mtu(struct endpoints *eps, unsigned int mtu);
/* Whether sluice forwards host ports (--kube-proxy-replacement on): ADD
 * then refuses a mapping it cannot forward (SCTP, a hostIP not the node's)
 * or that another pod holds. Off, the mappings are only recorded. */
void endpoints_set_hostports(struct endpoints *eps, int forwarded);

/* Each returns 0 or a CNI error code, with a sentence in err. ADD leaves
 * the endpoint map entry to the policy compiler (compile.c), which writes
 * it with the pod's identity and isolation flags. */
int endpoints_add(struct endpoints *eps, const struct cni_req *req, json_t **result, char *err,
		  size_t errlen);
int endpoints_del(struct endpoints *eps, const struct cni_req *req, char *err, size_t errlen);
int endpoints_check(struct endpoints *eps, const struct cni_req *req, char *err, size_t errlen);
/* Remove the attachments of network not in valid (a JSON array of
 * {containerId, ifname}); *removed lists them. */
int endpoints_gc(struct endpoints *eps, const char *network, const json_t *valid,
		 json_t **removed, char *err, size_t errlen);

json_t *endpoints_list(struct endpoints *eps);
size_t endpoints_count(const struct endpoints *eps);
/* The i-th endpoint (0 <= i < endpoints_count()); valid until the next
 * ADD, DEL or GC. */
const struct endpoint *endpoints_at(const struct endpoints *eps, size_t i);

/* "lxc" + 11 hex digits derived from (container id, ifname). */
void endpoint_host_ifname(const char *container_id, const char *ifname, char *buf, size_t len);

#endif /* SLUICE_ENDPOINT_H */
