// SPDX-License-Identifier: Apache-2.0
/*
 * The policy compiler's side of the maps: a map read into a set of
 * entries, a new state applied as a difference in the safe order (and
 * rolled back when a write fails), and what the maps say of one flow for
 * `policy explain`.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "compile_int.h"
#include "log.h"

const char *compile_map_name(enum compile_map m)
{
	switch (m) {
	case CMAP_ENDPOINTS: return "endpoints (sluice_ep_v2)";
	case CMAP_IPCACHE: return "ipcache (sluice_ipc_v2)";
	case CMAP_ALLOW: return "allow rules (sluice_pol_v1)";
	default: return "deny rules (sluice_deny_v1)";
	}
}

static int map_update(struct compiler *c, enum compile_map m, const void *k, const void *v)
{
	if (c->m.update)
		return c->m.update(c->m.ctx, m, k, v);
	return bpf_map_update_elem(c->m.fd[m], k, v, BPF_ANY) ? -errno : 0;
}

static int map_delete(struct compiler *c, enum compile_map m, const void *k)
{
	if (c->m.del)
		return c->m.del(c->m.ctx, m, k);
	if (bpf_map_delete_elem(c->m.fd[m], k) && errno != ENOENT)
		return -errno;
	return 0;
}

/* Read every entry of a map into s (sorted). */
int set_load(struct entry_set *s, int fd)
{
	unsigned char key[64], next[64], val[64];
	void *prev = NULL;
	int ret;

	while (!(ret = bpf_map_get_next_key(fd, prev, next))) {
		if (!bpf_map_lookup_elem(fd, next, val) && set_add(s, next, val))
			return -ENOMEM;
		memcpy(key, next, s->ksz);
		prev = key;
	}
	if (errno != ENOENT)
		return -errno;
	return set_sort_unique(s);
}

enum phase { PHASE_UPDATE, PHASE_DELETE };

/* Bring map m from old to new: updates (new keys, changed values) in
 * PHASE_UPDATE, deletions in PHASE_DELETE. Both sets are sorted. Correct
 * also when the map holds a mix of old and new (a rollback). */
static int set_apply(struct compiler *cp, enum compile_map m, const struct entry_set *old,
		     const struct entry_set *new, enum phase phase, size_t *ops)
{
	int ret;
	size_t i = 0, j = 0;
	int c;

	while (i < old->n || j < new->n) {
		const unsigned char *o = i < old->n ? set_at(old, i) : NULL;
		const unsigned char *n = j < new->n ? set_at(new, j) : NULL;

		c = !o ? 1 : !n ? -1 : memcmp(o, n, old->ksz);
		if (c < 0) {
			if (phase == PHASE_DELETE) {
				ret = map_delete(cp, m, o);
				if (ret)
					return ret;
				(*ops)++;
			}
			i++;
		} else if (c > 0 || memcmp(o + old->ksz, n + new->ksz, new->vsz)) {
			if (phase == PHASE_UPDATE) {
				ret = map_update(cp, m, n, n + new->ksz);
				if (ret)
					return ret;
				(*ops)++;
			}
			if (c == 0)
				i++;
			j++;
		} else {
			i++;
			j++;
		}
	}
	return 0;
}

/* How many distinct keys old and new hold together: what the map holds
 * between the additions and the removals. */
static size_t set_union_count(const struct entry_set *old, const struct entry_set *new)
{
	size_t i = 0, j = 0, n = 0;

	while (i < old->n || j < new->n) {
		int c = i == old->n ? 1 : j == new->n ? -1
			: memcmp(set_at(old, i), set_at(new, j), old->ksz);

		i += c <= 0;
		j += c >= 0;
		n++;
	}
	return n;
}

/* The forward order: additions and changes everywhere first, endpoint flags
 * last among them (rules are in place before an endpoint becomes isolated),
 * then removals. */
static const struct step {
	enum compile_map m;
	enum phase phase;
	const char *what;
} steps[] = {
	{ CMAP_IPCACHE, PHASE_UPDATE, "update the ipcache" },
	{ CMAP_ALLOW, PHASE_UPDATE, "update the allow rules" },
	{ CMAP_DENY, PHASE_UPDATE, "update the deny rules" },
	{ CMAP_ENDPOINTS, PHASE_UPDATE, "update the endpoints" },
	{ CMAP_ENDPOINTS, PHASE_DELETE, "remove stale endpoints" },
	{ CMAP_ALLOW, PHASE_DELETE, "remove stale allow rules" },
	{ CMAP_DENY, PHASE_DELETE, "remove stale deny rules" },
	{ CMAP_IPCACHE, PHASE_DELETE, "remove stale ipcache entries" },
};

/* Put every map back to c->cur after a failed apply of want: endpoints
 * first (their flags back before the rules they refer to change), then
 * each map's removals (to make room) before its re-additions. */
static int rollback(struct compiler *c, const struct entry_set *old, const struct entry_set *want,
		    const char **what)
{
	static const enum compile_map order[] = { CMAP_ENDPOINTS, CMAP_ALLOW, CMAP_DENY,
						  CMAP_IPCACHE };
	size_t ops = 0;
	int ret;

	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		enum compile_map m = order[i];

		*what = compile_map_name(m);
		ret = set_apply(c, m, &want[m], &old[m], PHASE_DELETE, &ops);
		if (!ret)
			ret = set_apply(c, m, &want[m], &old[m], PHASE_UPDATE, &ops);
		if (ret)
			return ret;
	}
	return 0;
}

/* old: what the maps hold of the keys concerned, c->cur (everything) or
 * the part a change touches (then want is the same part as it must be). */
int apply_state(struct compiler *c, const struct entry_set *old,
		const struct entry_set *want, size_t *ops_up, size_t *ops_del, char *err,
		size_t errlen)
{
	bool early[CMAP_N] = { false };
	const char *rb_what = "";
	int ret = 0, rb;
	size_t i;

	/* A map too full to hold old and new together between the steps
	 * removes its stale entries first: those are not enforced after the
	 * change anyway. */
	for (int m = 0; m < CMAP_N; m++)
		early[m] = c->cur[m].n + want[m].n > c->m.cap[m] &&
			   (&old[m] != &c->cur[m] ||
			    set_union_count(&c->cur[m], &want[m]) > c->m.cap[m]);
	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		const struct step *s = &steps[i];

		if (s->phase == PHASE_UPDATE && early[s->m])
			ret = set_apply(c, s->m, &old[s->m], &want[s->m], PHASE_DELETE, ops_del);
		if (!ret && !(s->phase == PHASE_DELETE && early[s->m]))
			ret = set_apply(c, s->m, &old[s->m], &want[s->m], s->phase,
					s->phase == PHASE_UPDATE ? ops_up : ops_del);
		if (ret)
			break;
	}
	if (!ret)
		return 0;
	rb = rollback(c, old, want, &rb_what);
	if (!rb) {
		snprintf(err, errlen, "cannot %s: %s; the previous state was restored and stays "
				      "enforced", steps[i].what, strerror(-ret));
		return ret;
	}
	snprintf(err, errlen, "cannot %s: %s; restoring the previous state failed too (%s: %s): "
			      "the maps are partly updated until the next sync rewrites them",
		 steps[i].what, strerror(-ret), rb_what, strerror(-rb));
	/* Start the next sync from what the maps really hold. */
	for (int m = 0; m < CMAP_N && !c->m.update; m++) {
		set_free(&c->cur[m]);
		set_load(&c->cur[m], c->m.fd[m]);
	}
	return ret;
}

static enum dp_verdict dp_check(struct compiler *c, uint32_t ep, uint8_t dir_tier,
				const struct sluice_ipcache_value *peer, uint8_t proto, uint16_t port)
{
	struct sluice_policy_key k = {
		.prefixlen = SLUICE_POLICY_KEY_BITS,
		.ep = ep,
		.dir = dir_tier,
		.proto = proto,
		.port = htons(port),
	};
	const uint32_t ids[3] = { peer->identity, peer->cidr_identity, SLUICE_ID_ANY };
	struct sluice_policy_value v;

	for (int i = 0; i < 3; i++) {
		k.identity = ids[i];
		if (!bpf_map_lookup_elem(c->m.fd[CMAP_DENY], &k, &v))
			return DP_DENY_RULE;
	}
	for (int i = 0; i < 3; i++) {
		k.identity = ids[i];
		if (!bpf_map_lookup_elem(c->m.fd[CMAP_ALLOW], &k, &v))
			return DP_ALLOW;
	}
	return DP_NO_RULE;
}

static struct sluice_ipcache_value dp_ipcache(struct compiler *c, uint32_t ip)
{
	struct sluice_ipcache_key k = { .prefixlen = 32, .ip = htonl(ip) };
	struct sluice_ipcache_value v = { .identity = SLUICE_ID_WORLD, .cidr_identity = SLUICE_ID_WORLD };

	bpf_map_lookup_elem(c->m.fd[CMAP_IPCACHE], &k, &v);
	return v;
}

static void dp_decide(struct compiler *c, const struct sluice_endpoint *ep, int dir,
		      const struct sluice_ipcache_value *peer, uint8_t proto, uint16_t port,
		      struct dp_side *out)
{
	uint32_t iso = dir == SLUICE_DIR_INGRESS ? SLUICE_EP_F_ISO_INGRESS : SLUICE_EP_F_ISO_EGRESS;
	uint32_t audit = dir == SLUICE_DIR_INGRESS ? SLUICE_EP_F_AUDIT_ISO_INGRESS
						   : SLUICE_EP_F_AUDIT_ISO_EGRESS;

	out->checked = true;
	out->isolated = ep->flags & iso;
	out->verdict = out->isolated ? dp_check(c, ep->ifindex, (uint8_t)dir, peer, proto, port)
				     : DP_ALLOW;
	out->audit_would_drop = out->verdict == DP_ALLOW && (ep->flags & audit) &&
				dp_check(c, ep->ifindex, (uint8_t)(dir | SLUICE_POLICY_TIER_AUDIT << 1),
					 peer, proto, port) != DP_ALLOW;
}

int compiler_datapath_verdict(struct compiler *c, uint32_t saddr, uint32_t daddr, uint8_t proto,
			      uint16_t port, struct dp_side *egress, struct dp_side *ingress)
{
	struct sluice_endpoint src, dst;
	struct sluice_ipcache_value peer;

	*egress = (struct dp_side){ 0 };
	*ingress = (struct dp_side){ 0 };
	if (!bpf_map_lookup_elem(c->m.fd[CMAP_ENDPOINTS], &(struct sluice_endpoint_key){ .ip4 = htonl(saddr) }, &src)) {
		peer = dp_ipcache(c, daddr);
		dp_decide(c, &src, SLUICE_DIR_EGRESS, &peer, proto, port, egress);
	}
	if (!bpf_map_lookup_elem(c->m.fd[CMAP_ENDPOINTS], &(struct sluice_endpoint_key){ .ip4 = htonl(daddr) }, &dst)) {
		peer = dp_ipcache(c, saddr);
		if (peer.identity != SLUICE_ID_HOST && saddr != daddr)
			dp_decide(c, &dst, SLUICE_DIR_INGRESS, &peer, proto, port, ingress);
	}
	return 0;
}
