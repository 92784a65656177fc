// SPDX-License-Identifier: Apache-2.0
/*
 * Policy semantics (see policy.h): which pods a policy selects, which pods
 * and addresses a peer matches, the port range a port entry stands for,
 * and the reference decision (pol_decide, pol_decide_dir) that explain
 * uses and the datapath compiler must agree with. Objects are read in
 * policy_parse.c, labels and selectors in selector.c.
 */
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy_int.h"

/* ---- world lookups --------------------------------------------------- */

const struct pol_namespace *pol_world_ns_scan(const struct pol_world *w, const char *name)
{
	for (size_t i = 0; i < w->nns; i++)
		if (!strcmp(w->ns[i]->name, name))
			return w->ns[i];
	return NULL;
}

/* Name, then position: of namespaces sharing a name the first in ns[]
 * comes first, the one the scan returns. */
static int cmp_ns_ref(const void *a, const void *b)
{
	const struct pol_ns_ref *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	return (x->pos > y->pos) - (x->pos < y->pos);
}

void pol_world_index_ns(struct pol_world *w, struct pol_ns_ref *idx)
{
	for (size_t i = 0; i < w->nns; i++)
		idx[i] = (struct pol_ns_ref){ .name = w->ns[i]->name, .pos = i };
	if (w->nns)
		qsort(idx, w->nns, sizeof(*idx), cmp_ns_ref);
	w->ns_by_name = idx;
}

const struct pol_namespace *pol_world_ns(const struct pol_world *w, const char *name)
{
	size_t lo = 0, hi = w->nns;

	if (!w->ns_by_name)
		return pol_world_ns_scan(w, name);
	/* The first entry not below name. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(w->ns_by_name[mid].name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < w->nns && !strcmp(w->ns_by_name[lo].name, name))
		return w->ns[w->ns_by_name[lo].pos];
	return NULL;
}

/* A namespace without a Namespace object still has its name label. */
static bool ns_matches(const struct pol_selector *s, const struct pol_world *w, const char *ns)
{
	static const struct pol_labels none;
	const struct pol_namespace *n = pol_world_ns(w, ns);

	return sel_match(s, n ? &n->labels : &none, ns);
}

bool pol_selects_ns(const struct pol_policy *p, const struct pol_world *w, const char *ns)
{
	if (p->kind == POL_SLUICE_CLUSTER)
		return !p->has_ns_sel || ns_matches(&p->ns_sel, w, ns);
	return p->ns && !strcmp(p->ns, ns);
}

bool pol_selects_pod(const struct pol_policy *p, const struct pol_world *w,
		     const struct pol_pod *pod)
{
	return pol_selects_ns(p, w, pod->ns) && pol_selector_matches(&p->pod_sel, &pod->labels);
}

bool pol_peer_matches_pod(const struct pol_peer *peer, const struct pol_policy *p,
			  const struct pol_world *w, const struct pol_pod *pod)
{
	if (peer->is_ipblock || pod->labels_unknown)
		return false;
	if (peer->has_ns_sel) {
		if (!ns_matches(&peer->ns_sel, w, pod->ns))
			return false;
	} else if (p->kind != POL_SLUICE_CLUSTER && (!p->ns || strcmp(p->ns, pod->ns))) {
		/* podSelector alone: the policy's own namespace; for a cluster
		 * policy, which has none, every namespace. */
		return false;
	}
	return !peer->has_pod_sel || pol_selector_matches(&peer->pod_sel, &pod->labels);
}

bool pol_peer_matches_ip(const struct pol_peer *peer, uint32_t ip)
{
	if (!peer->is_ipblock || !cidr4_contains(&peer->cidr, ip))
		return false;
	for (size_t i = 0; i < peer->nexcept; i++)
		if (cidr4_contains(&peer->except[i], ip))
			return false;
	return true;
}

bool pol_port_range(const struct pol_port *pp, const struct pol_pod *dst, uint8_t proto,
		    uint16_t *lo, uint16_t *hi)
{
	if (pp->proto != proto)
		return false;
	switch (pp->kind) {
	case PORT_ANY:
		/* 0 included: "every port of this protocol" is the whole field. */
		*lo = 0;
		*hi = 65535;
		return true;
	case PORT_NUMBER:
		*lo = pp->port;
		*hi = pp->end_port;
		return true;
	case PORT_NAMED:
		if (!dst)
			return false;
		for (size_t i = 0; i < dst->nports; i++) {
			const struct pol_container_port *cp = &dst->ports[i];

			if (cp->name && cp->proto == proto && !strcmp(cp->name, pp->name)) {
				*lo = *hi = cp->port;
				return true;
			}
		}
		return false;
	}
	return false;
}

/* Exactly what the compiler programs: the range pol_port_range gives. A
 * name resolves to the first container port with that name and protocol
 * (names are unique within a container; across containers the first
 * wins, for explain and datapath alike). */
static bool port_matches(const struct pol_port *pp, const struct pol_pod *dst, uint8_t proto,
			 uint16_t dport)
{
	uint16_t lo, hi;

	return pol_port_range(pp, dst, proto, &lo, &hi) && dport >= lo && dport <= hi;
}

/* ---- the reference decision ---------------------------------------- */

/* Bounded appends for verdict reasons: truncation is acceptable, overflow
 * is not. */
struct sbuf {
	char *s;
	size_t len;
	size_t off;
};

static void sb_add(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_add(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->off + 1 >= b->len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->s + b->off, b->len - b->off, fmt, ap);
	va_end(ap);
	if (n > 0)
		b->off = b->off + (size_t)n < b->len ? b->off + (size_t)n : b->len - 1;
}

static const char *proto_name(uint8_t proto)
{
	switch (proto) {
	case IPPROTO_TCP:
		return "TCP";
	case IPPROTO_UDP:
		return "UDP";
	case IPPROTO_SCTP:
		return "SCTP";
	case IPPROTO_ICMP:
		return "ICMP";
	default:
		return "IP";
	}
}

static bool has_ports(uint8_t proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP;
}

static const char *kind_name(enum pol_kind k)
{
	switch (k) {
	case POL_SLUICE:
		return "sluicenetworkpolicy";
	case POL_SLUICE_CLUSTER:
		return "sluiceclusternetworkpolicy";
	default:
		return "networkpolicy";
	}
}

static void sb_policy(struct sbuf *b, const struct pol_policy *p)
{
	if (p->ns)
		sb_add(b, "%s %s/%s", kind_name(p->kind), p->ns, p->name);
	else
		sb_add(b, "%s %s", kind_name(p->kind), p->name);
}

/* Kubernetes' own selector notation: a=b,k in (x,y),k notin (z),k,!k */
static void sb_selector(struct sbuf *b, const struct pol_selector *s)
{
	const char *sep = "";

	for (size_t i = 0; i < s->match.n; i++, sep = ",")
		sb_add(b, "%s%s=%s", sep, s->match.v[i].key, s->match.v[i].value);
	for (size_t i = 0; i < s->nexpr; i++, sep = ",") {
		const struct pol_expr *x = &s->expr[i];

		switch (x->op) {
		case SEL_EXISTS:
			sb_add(b, "%s%s", sep, x->key);
			break;
		case SEL_DOES_NOT_EXIST:
			sb_add(b, "%s!%s", sep, x->key);
			break;
		default:
			sb_add(b, "%s%s %s (", sep, x->key, x->op == SEL_IN ? "in" : "notin");
			for (size_t j = 0; j < x->nval; j++)
				sb_add(b, "%s%s", j ? "," : "", x->val[j]);
			sb_add(b, ")");
		}
	}
}

static void sb_peer(struct sbuf *b, const struct pol_policy *p, const struct pol_rule *r, int idx,
		    enum pol_dir dir)
{
	const struct pol_peer *pe;
	char c[24];

	sb_add(b, "%s ", dir == POL_INGRESS ? "from" : "to");
	if (idx < 0) {
		sb_add(b, "anywhere");
		return;
	}
	pe = &r->peers[idx];
	if (pe->is_ipblock) {
		cidr4_format(&pe->cidr, c, sizeof(c));
		sb_add(b, "%s", c);
		for (size_t i = 0; i < pe->nexcept; i++) {
			cidr4_format(&pe->except[i], c, sizeof(c));
			sb_add(b, "%s%s", i ? ", " : " except ", c);
		}
		return;
	}
	if (pe->has_pod_sel && !selector_empty(&pe->pod_sel)) {
		sb_add(b, "pods matching ");
		sb_selector(b, &pe->pod_sel);
	} else {
		sb_add(b, pe->has_ns_sel ? "pods" : "all pods");
	}
	if (pe->has_ns_sel && selector_empty(&pe->ns_sel)) {
		sb_add(b, " in all namespaces");
	} else if (pe->has_ns_sel) {
		sb_add(b, " in namespaces matching ");
		sb_selector(b, &pe->ns_sel);
	} else if (p->kind == POL_SLUICE_CLUSTER) {
		sb_add(b, " in any namespace");
	} else {
		sb_add(b, " in namespace %s", p->ns);
	}
}

static void sb_portdesc(struct sbuf *b, const struct pol_rule *r, int port, int icmp,
			uint16_t dport)
{
	const struct pol_port *pp;

	if (icmp >= 0) {
		sb_add(b, "ICMP type %u", r->icmp[icmp].type);
		if (r->icmp[icmp].code >= 0)
			sb_add(b, " code %d", r->icmp[icmp].code);
		return;
	}
	if (port < 0) {
		sb_add(b, "any port");
		return;
	}
	pp = &r->ports[port];
	switch (pp->kind) {
	case PORT_ANY:
		sb_add(b, "any %s port", proto_name(pp->proto));
		break;
	case PORT_NUMBER:
		if (pp->port == pp->end_port)
			sb_add(b, "port %u/%s", pp->port, proto_name(pp->proto));
		else
			sb_add(b, "ports %u-%u/%s", pp->port, pp->end_port, proto_name(pp->proto));
		break;
	case PORT_NAMED:
		sb_add(b, "port %s (%u)/%s", pp->name, dport, proto_name(pp->proto));
		break;
	}
}

static uint32_t ep_ip(const struct pol_endpoint *e)
{
	return e->pod && e->pod->ip ? e->pod->ip : e->ip;
}

static void sb_endpoint(struct sbuf *b, const struct pol_endpoint *e)
{
	char ip[16];

	ip4_format(ep_ip(e), ip, sizeof(ip));
	if (e->pod && ep_ip(e))
		sb_add(b, "%s/%s at %s", e->pod->ns, e->pod->name, ip);
	else if (e->pod)
		sb_add(b, "%s/%s", e->pod->ns, e->pod->name);
	else
		sb_add(b, "%s", ip);
}

/* One flow seen from one side: the subject is the pod whose policies apply,
 * the peer the other end. Named ports resolve against dst_pod. */
struct flow {
	const struct pol_world *w;
	enum pol_dir dir;
	const struct pol_pod *subject;
	const struct pol_endpoint *peer;
	const struct pol_pod *dst_pod;
	uint8_t proto;
	uint16_t dport;
};

struct hit {
	const struct pol_policy *pol; /* NULL: no such rule */
	int rule;
	int peer; /* index in peers, -1: any peer */
	int port; /* index in ports, -1: none or any */
	int icmp; /* index in icmp, -1: none */
};

struct dir_eval {
	const struct pol_policy *isolator; /* first policy isolating the subject */
	struct hit allow;		   /* first matching allow rule */
	struct hit deny;		   /* first matching deny rule */
};

static bool rule_matches(const struct flow *f, const struct pol_policy *p, const struct pol_rule *r,
			 struct hit *h)
{
	uint32_t ip = ep_ip(f->peer);

	h->peer = h->port = h->icmp = -1;
	if (!r->any_peer) {
		size_t i;

		for (i = 0; i < r->npeers; i++) {
			const struct pol_peer *pe = &r->peers[i];

			/* Selector peers see only pods; an unknown address (0)
			 * is in no ipBlock. */
			if (pe->is_ipblock ? ip && pol_peer_matches_ip(pe, ip)
					   : f->peer->pod && pol_peer_matches_pod(pe, p, f->w,
										  f->peer->pod))
				break;
		}
		if (i == r->npeers)
			return false;
		h->peer = (int)i;
	}
	if (r->any_port)
		return true;
	if (f->proto == IPPROTO_ICMP) {
		/* pol_decide has no ICMP code: an entry naming a code matches
		 * its type here; the datapath checks the code. */
		for (size_t i = 0; i < r->nicmp; i++)
			if (r->icmp[i].type == f->dport) {
				h->icmp = (int)i;
				return true;
			}
		return false;
	}
	for (size_t i = 0; i < r->nports; i++)
		if (port_matches(&r->ports[i], f->dst_pod, f->proto, f->dport)) {
			h->port = (int)i;
			return true;
		}
	return false;
}

static void evaluate(const struct flow *f, bool with_audit, struct dir_eval *e)
{
	memset(e, 0, sizeof(*e));
	for (size_t i = 0; i < f->w->npol; i++) {
		const struct pol_policy *p = f->w->pol[i];
		const struct pol_rule *rules = f->dir == POL_INGRESS ? p->in : p->eg;
		size_t n = f->dir == POL_INGRESS ? p->nin : p->neg;

		if ((p->audit && !with_audit) ||
		    !(f->dir == POL_INGRESS ? p->ingress : p->egress) ||
		    !pol_selects_pod(p, f->w, f->subject))
			continue;
		/* Selecting a pod for a direction isolates it, whatever the
		 * rules say (Kubernetes); a sluice policy holding only Deny
		 * rules therefore also denies everything it does not allow. */
		if (!e->isolator)
			e->isolator = p;
		for (size_t j = 0; j < n; j++) {
			struct hit h;
			struct hit *slot = rules[j].action == POL_DENY ? &e->deny : &e->allow;

			if (slot->pol || !rule_matches(f, p, &rules[j], &h))
				continue;
			h.pol = p;
			h.rule = (int)j;
			*slot = h;
			if (slot == &e->deny)
				return; /* a deny wins; nothing later can change that */
		}
	}
}

static bool eval_allows(const struct dir_eval *e)
{
	return !e->deny.pol && (!e->isolator || e->allow.pol);
}

static void sb_subject(struct sbuf *b, const struct flow *f)
{
	sb_add(b, "%s of %s/%s: ", f->dir == POL_INGRESS ? "ingress" : "egress", f->subject->ns,
	       f->subject->name);
}

static void sb_hit(struct sbuf *b, const struct flow *f, const struct hit *h)
{
	const struct pol_rule *r = (f->dir == POL_INGRESS ? h->pol->in : h->pol->eg) + h->rule;

	sb_policy(b, h->pol);
	sb_add(b, " rule %d (", h->rule);
	sb_peer(b, h->pol, r, h->peer, f->dir);
	sb_add(b, ", ");
	sb_portdesc(b, r, h->port, h->icmp, f->dport);
	sb_add(b, ")");
}

/* "and no rule allows 10.0.0.5:81/TCP" / "... traffic from x/a at ... to port 81/TCP" */
static void sb_no_rule(struct sbuf *b, const struct flow *f)
{
	if (f->dir == POL_EGRESS) {
		sb_add(b, "no rule allows ");
		if (has_ports(f->proto)) {
			sb_endpoint(b, f->peer);
			sb_add(b, "%s%u/%s", f->peer->pod ? " port " : ":", f->dport,
			       proto_name(f->proto));
		} else {
			if (f->proto == IPPROTO_ICMP)
				sb_add(b, "ICMP type %u to ", f->dport);
			else
				sb_add(b, "IP protocol %u to ", f->proto);
			sb_endpoint(b, f->peer);
		}
		return;
	}
	sb_add(b, "no rule allows traffic from ");
	sb_endpoint(b, f->peer);
	if (has_ports(f->proto))
		sb_add(b, " to port %u/%s", f->dport, proto_name(f->proto));
	else if (f->proto == IPPROTO_ICMP)
		sb_add(b, " (ICMP type %u)", f->dport);
	else
		sb_add(b, " (IP protocol %u)", f->proto);
}

static void sb_isolated(struct sbuf *b, const struct flow *f, const struct pol_policy *iso,
			const char *verb)
{
	sb_add(b, "%s/%s %s isolated for %s by ", f->subject->ns, f->subject->name, verb,
	       f->dir == POL_INGRESS ? "ingress" : "egress");
	sb_policy(b, iso);
	sb_add(b, " and ");
	sb_no_rule(b, f);
}

static bool same_pod(const struct pol_pod *a, const struct pol_pod *b)
{
	return a && b && (a == b || (!strcmp(a->ns, b->ns) && !strcmp(a->name, b->name)));
}

static bool is_node_ip(const struct pol_world *w, uint32_t ip)
{
	for (size_t i = 0; i < w->nnode_ips; i++)
		if (w->node_ips[i] == ip)
			return true;
	return false;
}

static void set_hit(struct pol_verdict *v, const struct hit *h)
{
	v->policy = h->pol;
	v->rule = h->rule;
}

static void decide_flow(const struct flow *f, struct pol_verdict *v)
{
	struct sbuf b = {v->reason, sizeof(v->reason), 0};
	struct dir_eval enf, all;
	bool allow_enf, allow_all;

	sb_subject(&b, f);
	if (same_pod(f->subject, f->peer->pod)) {
		sb_add(&b, "allowed: a pod can always reach itself");
		return;
	}
	if (f->dir == POL_INGRESS && is_node_ip(f->w, ep_ip(f->peer))) {
		sb_add(&b, "allowed: ");
		sb_endpoint(&b, f->peer);
		sb_add(&b, " is an address of this node, which can always reach its pods");
		return;
	}
	/* Audit policies never change what is enforced: the verdict comes
	 * from Enforce policies alone, and the run with Audit policies only
	 * tells whether they would have denied. */
	evaluate(f, false, &enf);
	evaluate(f, true, &all);
	allow_enf = eval_allows(&enf);
	allow_all = eval_allows(&all);
	v->isolated = all.isolator != NULL;
	v->allowed = allow_enf;
	if (!allow_enf) {
		if (enf.deny.pol) {
			set_hit(v, &enf.deny);
			v->denied_by_rule = true;
			sb_add(&b, "denied by ");
			sb_hit(&b, f, &enf.deny);
		} else {
			v->policy = enf.isolator;
			sb_add(&b, "denied: ");
			sb_isolated(&b, f, enf.isolator, "is");
		}
		return;
	}
	if (!allow_all) {
		/* Only Audit policies can be behind this denial: an Enforce
		 * deny or Enforce isolation without allow would have denied
		 * above. */
		v->audit_only = true;
		if (all.deny.pol) {
			set_hit(v, &all.deny);
			v->denied_by_rule = true;
			sb_add(&b, "allowed because Audit mode only records it: ");
			sb_hit(&b, f, &all.deny);
			sb_add(&b, " would deny it");
		} else {
			v->policy = all.isolator;
			sb_add(&b, "allowed because Audit mode only records it: ");
			sb_isolated(&b, f, all.isolator, "would be");
		}
		return;
	}
	if (enf.isolator) {
		set_hit(v, &enf.allow);
		sb_add(&b, "allowed by ");
		sb_hit(&b, f, &enf.allow);
	} else if (all.isolator) {
		set_hit(v, &all.allow);
		sb_add(&b, "allowed: only Audit-mode policies select %s/%s, and ", f->subject->ns,
		       f->subject->name);
		sb_hit(&b, f, &all.allow);
		sb_add(&b, " would allow it");
	} else {
		sb_add(&b, "allowed: no policy isolates %s/%s for %s", f->subject->ns,
		       f->subject->name, f->dir == POL_INGRESS ? "ingress" : "egress");
	}
}

void pol_decide_dir(const struct pol_world *w, enum pol_dir dir, const struct pol_endpoint *src,
		    const struct pol_endpoint *dst, uint8_t proto, uint16_t dport,
		    struct pol_verdict *v)
{
	struct flow f = {
		.w = w,
		.dir = dir,
		.subject = dir == POL_INGRESS ? dst->pod : src->pod,
		.peer = dir == POL_INGRESS ? src : dst,
		.dst_pod = dst->pod,
		.proto = proto,
		.dport = dport,
	};

	memset(v, 0, sizeof(*v));
	v->allowed = true;
	v->dir = dir;
	v->rule = -1;
	if (!f.subject) {
		struct sbuf b = {v->reason, sizeof(v->reason), 0};

		sb_add(&b, "%s of ", dir == POL_INGRESS ? "ingress" : "egress");
		sb_endpoint(&b, dir == POL_INGRESS ? dst : src);
		sb_add(&b, ": allowed: not a pod, so no policy applies");
		return;
	}
	if (f.subject->labels_unknown) {
		struct sbuf b = {v->reason, sizeof(v->reason), 0};

		v->allowed = false;
		v->isolated = true;
		sb_add(&b, "%s of ", dir == POL_INGRESS ? "ingress" : "egress");
		sb_endpoint(&b, dir == POL_INGRESS ? dst : src);
		sb_add(&b, ": denied: its Pod object (labels) has not arrived from the Kubernetes "
			   "API yet, so it is isolated both ways");
		return;
	}
	decide_flow(&f, v);
}

void pol_decide(const struct pol_world *w, const struct pol_endpoint *src,
		const struct pol_endpoint *dst, uint8_t proto, uint16_t dport,
		struct pol_verdict *v)
{
	struct pol_verdict eg, in;

	if (!src->pod && !dst->pod) {
		struct sbuf b = {v->reason, sizeof(v->reason), 0};

		memset(v, 0, sizeof(*v));
		v->allowed = true;
		v->dir = POL_EGRESS;
		v->rule = -1;
		sb_add(&b, "allowed: neither ");
		sb_endpoint(&b, src);
		sb_add(&b, " nor ");
		sb_endpoint(&b, dst);
		sb_add(&b, " is a pod, so no policy applies");
		return;
	}
	if (!src->pod) {
		pol_decide_dir(w, POL_INGRESS, src, dst, proto, dport, v);
		return;
	}
	if (!dst->pod) {
		pol_decide_dir(w, POL_EGRESS, src, dst, proto, dport, v);
		return;
	}
	/* Both sides are pods: the packet leaves through src's egress policy,
	 * then meets dst's ingress policy; either may drop it. */
	pol_decide_dir(w, POL_EGRESS, src, dst, proto, dport, &eg);
	pol_decide_dir(w, POL_INGRESS, src, dst, proto, dport, &in);
	if (!eg.allowed)
		*v = eg;
	else if (!in.allowed)
		*v = in;
	else if (eg.audit_only)
		*v = eg;
	else if (in.audit_only)
		*v = in;
	else if (eg.isolated && !in.isolated)
		*v = eg;
	else
		*v = in;
}

bool pol_ports_equal(const struct pol_pod *a, const struct pol_pod *b)
{
	if (a->nports != b->nports)
		return false;
	for (size_t i = 0; i < a->nports; i++) {
		const struct pol_container_port *x = &a->ports[i], *y = &b->ports[i];

		if (x->port != y->port || x->proto != y->proto || !x->name != !y->name ||
		    (x->name && strcmp(x->name, y->name)))
			return false;
	}
	return true;
}
