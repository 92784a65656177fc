// SPDX-License-Identifier: Apache-2.0
/*
 * A policy's rules in words and the pods each admits, for the API's
 * describe op (describe_op.c; sluicectl describe policy).
 */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cidr.h"
#include "describe.h"

const char *describe_kind_word(enum pol_kind k)
{
	return k == POL_K8S ? "NetworkPolicy"
	       : k == POL_SLUICE ? "SluiceNetworkPolicy" : "SluiceClusterNetworkPolicy";
}

/* A selector in kubectl's -l syntax: app=web,tier in (a,b),!debug; what
 * when it is empty (it selects everything). */
static void selector_text(FILE *f, const struct pol_selector *s, const char *empty)
{
	static const char *const ops[] = { [SEL_IN] = " in ", [SEL_NOT_IN] = " notin ",
					   [SEL_EXISTS] = "", [SEL_DOES_NOT_EXIST] = "" };
	size_t i, j, n = 0;

	if (!s->match.n && !s->nexpr) {
		fputs(empty, f);
		return;
	}
	for (i = 0; i < s->match.n; i++)
		fprintf(f, "%s%s=%s", n++ ? "," : "", s->match.v[i].key, s->match.v[i].value);
	for (i = 0; i < s->nexpr; i++) {
		const struct pol_expr *x = &s->expr[i];

		fprintf(f, "%s%s%s%s", n++ ? "," : "", x->op == SEL_DOES_NOT_EXIST ? "!" : "",
			x->key, ops[x->op]);
		if (x->op == SEL_IN || x->op == SEL_NOT_IN)
			for (j = 0; j < x->nval; j++)
				fprintf(f, "%s%s%s", j ? "," : "(", x->val[j],
					j + 1 == x->nval ? ")" : "");
	}
}

static json_t *peer_text(const struct pol_policy *p, const struct pol_peer *pe)
{
	char *out = NULL, buf[24];
	size_t len;
	FILE *f = open_memstream(&out, &len);
	json_t *s;

	if (!f)
		return NULL;
	if (pe->is_ipblock) {
		cidr4_format(&pe->cidr, buf, sizeof(buf));
		fprintf(f, "addresses in %s", buf);
		for (size_t i = 0; i < pe->nexcept; i++) {
			cidr4_format(&pe->except[i], buf, sizeof(buf));
			fprintf(f, "%s%s", i ? ", " : " except ", buf);
		}
	} else {
		fputs(pe->has_pod_sel ? "pods " : "every pod", f);
		if (pe->has_pod_sel)
			selector_text(f, &pe->pod_sel, "(all)");
		if (pe->has_ns_sel) {
			fputs(" in namespaces ", f);
			selector_text(f, &pe->ns_sel, "(all)");
		} else if (p->ns) {
			fprintf(f, " in namespace %s", p->ns);
		} else {
			fputs(" in the namespaces the policy applies in", f);
		}
	}
	if (fclose(f)) {
		free(out);
		return NULL;
	}
	s = json_string(out);
	free(out);
	return s;
}

static json_t *ports_json(const struct pol_rule *r)
{
	json_t *a = json_array();
	char buf[96];

	for (size_t i = 0; a && i < r->nports; i++) {
		const struct pol_port *pp = &r->ports[i];
		const char *proto = pp->proto == IPPROTO_UDP ? "UDP"
				    : pp->proto == IPPROTO_SCTP ? "SCTP" : "TCP";

		if (pp->kind == PORT_NAMED)
			snprintf(buf, sizeof(buf), "%s/%s", proto, pp->name);
		else if (pp->kind == PORT_NUMBER && pp->end_port > pp->port)
			snprintf(buf, sizeof(buf), "%s/%u-%u", proto, pp->port, pp->end_port);
		else if (pp->kind == PORT_NUMBER)
			snprintf(buf, sizeof(buf), "%s/%u", proto, pp->port);
		else
			snprintf(buf, sizeof(buf), "%s (every port)", proto);
		json_array_append_new(a, json_string(buf));
	}
	for (size_t i = 0; a && i < r->nicmp; i++) {
		if (r->icmp[i].code < 0)
			snprintf(buf, sizeof(buf), "ICMP type %u", r->icmp[i].type);
		else
			snprintf(buf, sizeof(buf), "ICMP type %u code %d", r->icmp[i].type,
				 r->icmp[i].code);
		json_array_append_new(a, json_string(buf));
	}
	return a;
}

/* Does the rule admit pod (as a peer: a selector or its address)? */
static bool rule_admits(const struct pol_rule *r, const struct pol_policy *p,
			const struct pol_world *w, const struct pol_pod *pod)
{
	if (r->any_peer)
		return true;
	for (size_t i = 0; i < r->npeers; i++) {
		const struct pol_peer *pe = &r->peers[i];

		if (pe->is_ipblock ? pod->ip && pol_peer_matches_ip(pe, pod->ip)
				   : pol_peer_matches_pod(pe, p, w, pod))
			return true;
	}
	return false;
}

static json_t *rule_json(const struct pol_policy *p, const struct pol_world *w,
			 const struct pol_rule *r, const char *dir, size_t index, size_t max)
{
	json_t *peers = json_array(), *pods = json_array(), *j;
	size_t count = 0;
	char name[512];

	for (size_t i = 0; peers && i < r->npeers; i++)
		json_array_append_new(peers, peer_text(p, &r->peers[i]));
	for (size_t i = 0; pods && i < w->npods; i++) {
		if (!rule_admits(r, p, w, w->pods[i]))
			continue;
		if (count++ < max) {
			snprintf(name, sizeof(name), "%s/%s", w->pods[i]->ns, w->pods[i]->name);
			json_array_append_new(pods, json_string(name));
		}
	}
	j = json_pack("{s:s, s:I, s:s, s:b, s:o, s:b, s:o, s:o, s:I}", "direction", dir, "index",
		      (json_int_t)index, "action", r->action == POL_DENY ? "Deny" : "Allow",
		      "anyPeer", r->any_peer, "peers", peers ? peers : json_array(), "anyPort",
		      r->any_port, "ports", ports_json(r), "pods", pods ? pods : json_array(),
		      "podsCount", (json_int_t)count);
	return j;
}

json_t *describe_policy_rules(const struct pol_policy *p, const struct pol_world *w, size_t max)
{
	json_t *rules = json_array();

	for (size_t i = 0; rules && p->ingress && i < p->nin; i++)
		if (json_array_append_new(rules, rule_json(p, w, &p->in[i], "Ingress", i, max)))
			goto fail;
	for (size_t i = 0; rules && p->egress && i < p->neg; i++)
		if (json_array_append_new(rules, rule_json(p, w, &p->eg[i], "Egress", i, max)))
			goto fail;
	return rules;
fail:
	json_decref(rules);
	return NULL;
}
