/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Start-up repair of state files a crash or a bad disk left torn, empty or
 * unparsable, from what the kernel holds: the host veths (named by
 * endpoint_host_ifname) and the pinned endpoint map. A file that cannot be
 * read never turns into a free address or a lost endpoint: either the
 * kernel says who holds it and the file is rewritten, or it says nobody
 * does and the address is released the clean way (per-flow state first).
 * Each repair is logged once, naming the file and what was done.
 */
#ifndef SLUICE_REPAIR_H
#define SLUICE_REPAIR_H

#include <stddef.h>

#include "ipam.h"
#include "loader.h"
#include "netlink.h"
#include "request.h"

struct repair_ctx {
	struct nl_handle *host;	/* the node's netns */
	struct datapath *dp;
	struct ipam *ipam;
	const char *state_dir;
};

/* The note ADD leaves on the host veth (its alias, at most 255 bytes) so a
 * lost record can be rebuilt with the pod's name, network and netns path:
 * "sluice pod=NS/NAME net=NETWORK uid=UID netns=PATH", a field left out
 * when it is empty, holds a space or does not fit. */
void repair_note(const struct endpoint *ep, char *buf, size_t len);

/*
 * Rebuild the endpoint whose record file (name, in <state-dir>/endpoints)
 * cannot be read. The name "<containerId>_<ifname>.json" gives the
 * attachment; its host veth, the endpoint map entry pointing at that veth
 * the IPAM reservation and the veth's note (repair_note) give the rest.
 * Returns 0 with *ep filled and ready (its host ports are not in the
 * kernel and stay empty; so do the fields the note lacks); -ENOENT when no veth backs it, with ep's attachment and
 * address (0: none reserved) filled for the caller to release; -EINVAL
 * when the name names no attachment.
 */
int repair_endpoint(const struct repair_ctx *r, const char *name, struct endpoint *ep);

/*
 * Settle every reservation whose file holds no owner (IPAM_UNKNOWN), and
 * restore the reservation of an endpoint whose file went missing: an
 * endpoint in list holds it (rewritten for it); a live veth in the endpoint
 * map holds it (kept reserved, no record names it); nobody (quarantined:
 * released once its per-flow state is gone). Returns how many it changed.
 */
unsigned repair_reservations(const struct repair_ctx *r, const struct endpoint *list, size_t n);

#endif /* SLUICE_REPAIR_H */
