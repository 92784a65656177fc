/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Host-local IPv4 address management for the node's pod CIDR.
 *
 * Each allocation is a file <dir>/<a.b.c.d> holding its owner
 * ("containerId/ifname"). A file is created with linkat() of a complete
 * temporary file, which either succeeds or fails with EEXIST atomically:
 * two allocators (threads or processes) can never hand out the same
 * address, and a crash never leaves a half-written allocation. The
 * in-memory bitmap only speeds up the search; the files are the truth.
 *
 * A release records its time under <dir>/released/<a.b.c.d> (written to a
 * temporary file, synced, renamed): allocation prefers addresses never
 * released, then the least recently released, across restarts.
 *
 * An address can be quarantined: its file then holds IPAM_QUARANTINED
 * instead of an owner, it is not handed out, and only a release with that
 * owner frees it. The agent quarantines an address whose per-flow state it
 * could not remove (flows.h).
 *
 * Every file is written through lib/statefile (synced, renamed or linked,
 * directory synced); a reservation file that holds no owner after a crash
 * keeps its address reserved (IPAM_UNKNOWN) until a repair decides.
 *
 * The first address after the network address is the node's router
 * address (the pods' gateway) and is never handed out; neither are the
 * network and broadcast addresses.
 */
#ifndef SLUICE_IPAM_H
#define SLUICE_IPAM_H

#include <stddef.h>
#include <stdint.h>

#include "cidr.h"

#define IPAM_OWNER_MAX 320 /* container id (255) + "/" + ifname (15) fits */
/* Owner of a quarantined address; no container id starts with '!'. */
#define IPAM_QUARANTINED "!quarantined"
/* Owner reported for a reservation file that holds no owner (torn by a
 * crash, corrupted): the address stays reserved until the endpoint
 * records and the kernel say who holds it (ipam_set_owner) or that nobody
 * does (ipam_release with owner NULL or IPAM_UNKNOWN). */
#define IPAM_UNKNOWN "!unknown"

struct ipam;

/* Open (creating) the allocation directory for cidr. Fails when dir holds
 * allocations made for another CIDR. */
int ipam_open(struct ipam **out, const char *dir, const char *cidr, char *err, size_t errlen);
void ipam_close(struct ipam *ipam);

/* Allocate a free address for owner, least recently used first.
 * -EADDRNOTAVAIL when the range is full, -EINVAL for an owner starting
 * with '!', another -errno when the reservation file cannot be written
 * (-ENOSPC, -EROFS...: nothing is reserved then). */
int ipam_allocate(struct ipam *ipam, const char *owner, uint32_t *ip);
/* Release ip if owner holds it (owner NULL: whoever holds it).
 * -ENOENT when not allocated, -EPERM when someone else holds it. */
int ipam_release(struct ipam *ipam, uint32_t ip, const char *owner);
/* Keep ip, which owner (NULL: whoever) holds, from being handed out until
 * ipam_release(ip, IPAM_QUARANTINED). Same errors as ipam_release. */
int ipam_quarantine(struct ipam *ipam, uint32_t ip, const char *owner);
/* Owner of ip into buf (IPAM_UNKNOWN for a torn file). -ENOENT when not
 * allocated. */
int ipam_owner(struct ipam *ipam, uint32_t ip, char *buf, size_t len);
/* Rewrite ip's reservation for owner (the repair of a torn file). */
int ipam_set_owner(struct ipam *ipam, uint32_t ip, const char *owner);
/* Call cb for every allocation (from the files). Stops on non-zero. */
int ipam_foreach(struct ipam *ipam, int (*cb)(uint32_t ip, const char *owner, void *arg), void *arg);

uint32_t ipam_router(const struct ipam *ipam);
const struct cidr4 *ipam_range(const struct ipam *ipam);
/* Addresses in use and still free (from the in-memory view). */
void ipam_usage(struct ipam *ipam, unsigned *used, unsigned *free);

#endif /* SLUICE_IPAM_H */
