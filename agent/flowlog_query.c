// SPDX-License-Identifier: Apache-2.0
/* The flow buffer read out: entries as JSON, the "flows" operation's
 * filters, and top (flowlog.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>

#include "flowlog_int.h"

static const char *const verdict_names[] = {
	[SLUICE_FLOW_FORWARDED] = "FORWARDED", [SLUICE_FLOW_DROPPED] = "DROPPED",
	[SLUICE_FLOW_AUDIT] = "AUDIT", [SLUICE_FLOW_TRANSLATED] = "TRANSLATED",
};
static const char *const event_names[] = {
	[SLUICE_FLOW_EV_START] = "START", [SLUICE_FLOW_EV_DROP] = "DROP",
	[SLUICE_FLOW_EV_END] = "END", [SLUICE_FLOW_EV_UPDATE] = "UPDATE",
};

#define NAME_OF(tab, i) ((size_t)(i) < sizeof(tab) / sizeof(tab[0]) && (tab)[i] ? (tab)[i] : "unknown")

static const char *proto_name(uint8_t p)
{
	switch (p) {
	case IPPROTO_TCP: return "TCP";
	case IPPROTO_UDP: return "UDP";
	case IPPROTO_ICMP: return "ICMP";
	case IPPROTO_SCTP: return "SCTP";
	default: return NULL;
	}
}

/* ---- JSON ------------------------------------------------------------------ */

static void time_format(int64_t ns, char *buf, size_t len)
{
	time_t t = (time_t)(ns / 1000000000);
	struct tm tm;
	char s[32];

	strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%S", gmtime_r(&t, &tm));
	snprintf(buf, len, "%s.%09lldZ", s, (long long)(ns % 1000000000));
}

static void tcp_flags_format(uint8_t f, char *buf, size_t len)
{
	static const char *const names[] = { "FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR" };
	size_t off = 0;

	buf[0] = '\0';
	for (int i = 0; i < 8 && off < len; i++)
		if (f & (1u << i))
			off += (size_t)snprintf(buf + off, len - off, "%s%s", off ? "," : "", names[i]);
}

static json_t *labels_obj(const char *s)
{
	json_t *o = json_object();
	char *copy = strdup(s), *save = NULL;

	for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; t && o;
	     t = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(t, '=');

		if (eq)
			*eq = '\0';
		json_object_set_new(o, t, json_string(eq ? eq + 1 : ""));
	}
	free(copy);
	return o;
}

static json_t *peer_json(const struct flow_entry *e, int side)
{
	int base = side ? FS_DST_KIND : FS_SRC_KIND;
	struct in_addr ia = { side ? e->rec.key.daddr : e->rec.key.saddr };
	char a[16];
	json_t *o;

	inet_ntop(AF_INET, &ia, a, sizeof(a));
	o = json_pack("{s:s, s:i, s:I, s:s}", "ip", a, "port",
		      ntohs(side ? e->rec.key.dport : e->rec.key.sport), "identity",
		      (json_int_t)(side ? e->rec.dst_identity : e->rec.src_identity), "kind",
		      flow_str(e, base));
	if (o && *flow_str(e, base + 1))
		json_object_set_new(o, "namespace", json_string(flow_str(e, base + 1)));
	if (o && *flow_str(e, base + 2))
		json_object_set_new(o, "pod", json_string(flow_str(e, base + 2)));
	if (o && *flow_str(e, base + 1))
		json_object_set_new(o, "labels", labels_obj(flow_str(e, base + 3)));
	if (o && *flow_str(e, base + 4))
		json_object_set_new(o, "node", json_string(flow_str(e, base + 4)));
	return o;
}

json_t *flow_entry_json(const struct flowlog *fl, const struct flow_entry *e)
{
	const struct sluice_flow4_record *r = &e->rec;
	char t[48], f0[40], f1[40], a[16];
	const char *proto = proto_name(r->key.proto);
	json_t *o;

	time_format(e->time_ns, t, sizeof(t));
	tcp_flags_format(r->tcp_flags[0], f0, sizeof(f0));
	tcp_flags_format(r->tcp_flags[1], f1, sizeof(f1));
	o = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:s, s:i, s:o, s:o, s:i,"
		      " s:{s:s, s:s}, s:{s:I, s:I}, s:{s:I, s:I}, s:I, s:I, s:{s:i, s:i},"
		      " s:i, s:i}",
		      "seq", (json_int_t)e->seq, "time", t, "node", fl ? fl->node : "",
		      "event", NAME_OF(event_names, r->event), "verdict",
		      NAME_OF(verdict_names, r->verdict), "reason",
		      sluice_reason_name(r->reason) ? sluice_reason_name(r->reason) : "unknown",
		      "reasonDescription",
		      sluice_reason_desc(r->reason) ? sluice_reason_desc(r->reason) : "",
		      "drop", r->verdict == SLUICE_FLOW_DROPPED, "direction",
		      r->dir == SLUICE_DIR_INGRESS ? "ingress" : "egress", "ifindex",
		      (int)r->ifindex, "source", peer_json(e, 0), "destination", peer_json(e, 1),
		      "protocolNumber", r->key.proto, "tcpFlags", "forward", f0, "reply", f1,
		      "packets", "forward", (json_int_t)r->packets[0], "reply",
		      (json_int_t)r->packets[1], "bytes", "forward", (json_int_t)r->bytes[0],
		      "reply", (json_int_t)r->bytes[1], "drops", (json_int_t)r->drops,
		      "dropsSuppressed", (json_int_t)r->drops_suppressed, "retransmits",
		      "forward", (int)r->retrans[0], "reply", (int)r->retrans[1], "rttMinUs",
		      (int)r->rtt_min_us, "rttSmoothedUs", (int)r->rtt_srtt_us);
	if (!o)
		return NULL;
	json_object_set_new(o, "protocol", proto ? json_string(proto) : json_integer(r->key.proto));
	time_format(e->first_ns, t, sizeof(t));
	json_object_set_new(o, "firstSeen", json_string(t));
	json_object_set_new(o, "agentMade", json_boolean(e->agent_made));
	if (*flow_str(e, FS_END_CAUSE))
		json_object_set_new(o, "endCause", json_string(flow_str(e, FS_END_CAUSE)));
	if (*flow_str(e, FS_POL_NAME)) {
		json_t *p = json_pack("{s:s, s:s, s:i}", "kind", flow_str(e, FS_POL_KIND), "name",
				      flow_str(e, FS_POL_NAME), "rule", e->pol_rule);

		if (p && *flow_str(e, FS_POL_NS))
			json_object_set_new(p, "namespace", json_string(flow_str(e, FS_POL_NS)));
		json_object_set_new(o, "policy", p);
	}
	if (r->policy_rule == SLUICE_FLOW_RULE_DEFAULT) {
		json_t *iso = json_array();

		for (int i = 0; i < e->niso; i++) {
			json_t *p = json_pack("{s:s, s:s}", "kind", flow_str(e, FS_ISO_KIND + i),
					      "name", flow_str(e, FS_ISO_NAME + i));

			if (p && *flow_str(e, FS_ISO_NS + i))
				json_object_set_new(p, "namespace",
						    json_string(flow_str(e, FS_ISO_NS + i)));
			json_array_append_new(iso, p);
		}
		json_object_set_new(o, "deniedByDefault", json_true());
		json_object_set_new(o, "isolatedBy", iso);
		json_object_set_new(o, "isolatedByCount", json_integer(e->niso_total));
	}
	if (r->svc_addr) {
		struct in_addr ia = { r->svc_addr };
		json_t *s = json_pack("{s:s, s:i}", "ip", inet_ntop(AF_INET, &ia, a, sizeof(a)),
				      "port", ntohs(r->svc_port));

		if (s && *flow_str(e, FS_SVC_NAME)) {
			json_object_set_new(s, "namespace", json_string(flow_str(e, FS_SVC_NS)));
			json_object_set_new(s, "name", json_string(flow_str(e, FS_SVC_NAME)));
		}
		json_object_set_new(o, "service", s);
	}
	return o;
}

/* ---- filters ----------------------------------------------------------------- */

struct nsname {
	char *ns;	/* NULL: any (a cluster-scoped policy: "") */
	char *name;	/* NULL: any */
};

struct labelsel {
	size_t n;
	struct term {
		char *key, *val;	/* val NULL: exists / does not exist */
		bool neg;
	} *t;
};

struct flow_filter {
	struct nsname *from_pod, *to_pod, *pod, *policy, *service;
	size_t nfrom_pod, nto_pod, npod, npolicy, nservice;
	char **ns;
	size_t nns;
	struct cidr { uint32_t net, mask; } *from_ip, *to_ip;
	size_t nfrom_ip, nto_ip;
	struct labelsel *label;
	size_t nlabel;
	int *verdict, *reason, *proto, *port;
	size_t nverdict, nreason, nproto, nport;
	double since;		/* seconds; 0: none */
	size_t last;		/* 0: none */
	uint64_t after;
};

void flow_filter_free(struct flow_filter *f)
{
	if (!f)
		return;
	struct nsname *lists[] = { f->from_pod, f->to_pod, f->pod, f->policy, f->service };
	size_t ns[] = { f->nfrom_pod, f->nto_pod, f->npod, f->npolicy, f->nservice };

	for (size_t l = 0; l < 5; l++) {
		for (size_t i = 0; i < ns[l]; i++) {
			free(lists[l][i].ns);
			free(lists[l][i].name);
		}
		free(lists[l]);
	}
	for (size_t i = 0; i < f->nns; i++)
		free(f->ns[i]);
	free(f->ns);
	free(f->from_ip);
	free(f->to_ip);
	for (size_t i = 0; i < f->nlabel; i++) {
		for (size_t k = 0; k < f->label[i].n; k++) {
			free(f->label[i].t[k].key);
			free(f->label[i].t[k].val);
		}
		free(f->label[i].t);
	}
	free(f->label);
	free(f->verdict);
	free(f->reason);
	free(f->proto);
	free(f->port);
	free(f);
}

/* A member as an array of strings (one string, or numbers, also do). */
static int member(const json_t *req, const char *key, json_t **out)
{
	json_t *v = json_object_get(req, key), *a;
	size_t i;
	json_t *x;

	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	a = json_array();
	if (json_is_array(v)) {
		json_array_foreach(v, i, x)
			json_array_append(a, x);
	} else {
		json_array_append(a, v);
	}
	json_array_foreach(a, i, x)
		if (!json_is_string(x) && !json_is_integer(x)) {
			json_decref(a);
			return -EINVAL;
		}
	*out = a;
	return 0;
}

static const char *text_of(const json_t *x, char *buf, size_t len)
{
	if (json_is_integer(x)) {
		snprintf(buf, len, "%lld", (long long)json_integer_value(x));
		return buf;
	}
	return json_string_value(x);
}

/* "NS/NAME", "NS/" (any name); cluster: "NAME" alone names a cluster-
 * scoped object (ns ""), else (pods, Services) it is an error. */
static int parse_nsname(const char *s, bool cluster_ok, struct nsname *o)
{
	const char *sl = strchr(s, '/');

	memset(o, 0, sizeof(*o));
	if (!*s)
		return -EINVAL;
	if (!sl) {
		if (!cluster_ok)
			return -EINVAL;
		o->ns = strdup("");
		o->name = strdup(s);
	} else {
		if (sl == s || strchr(sl + 1, '/'))
			return -EINVAL;
		o->ns = strndup(s, (size_t)(sl - s));
		o->name = sl[1] ? strdup(sl + 1) : NULL;
		if (sl[1] && !o->name)
			return -ENOMEM;
	}
	return o->ns ? 0 : -ENOMEM;
}

static int parse_label(const char *s, struct labelsel *o)
{
	char *copy = strdup(s), *save = NULL;
	int ret = 0;

	memset(o, 0, sizeof(*o));
	if (!copy)
		return -ENOMEM;
	for (char *t = strtok_r(copy, ",", &save); t && !ret; t = strtok_r(NULL, ",", &save)) {
		struct term x = { 0 };
		char *ne = strstr(t, "!="), *eq = strchr(t, '=');
		struct term *nt;

		while (*t == ' ')
			t++;
		if (ne) {
			*ne = '\0';
			x.neg = true;
			x.val = strdup(ne + 2);
		} else if (eq) {
			*eq = '\0';
			x.val = strdup(eq[1] == '=' ? eq + 2 : eq + 1);
		} else if (*t == '!') {
			x.neg = true;
			t++;
		}
		if (!*t) {
			free(x.val);
			ret = -EINVAL;
			break;
		}
		x.key = strdup(t);
		nt = realloc(o->t, (o->n + 1) * sizeof(*o->t));
		if (!nt || !x.key || ((ne || eq) && !x.val)) {
			free(x.key);
			free(x.val);
			ret = -ENOMEM;
			break;
		}
		o->t = nt;
		o->t[o->n++] = x;
	}
	free(copy);
	if (!ret && !o->n)
		ret = -EINVAL;
	return ret;
}

static int parse_cidr(const char *s, struct cidr *o)
{
	char a[32];
	const char *sl = strchr(s, '/');
	unsigned long bits = 32;
	struct in_addr ia;
	char *end;

	if (strlen(s) >= sizeof(a))
		return -EINVAL;
	snprintf(a, sizeof(a), "%.*s", sl ? (int)(sl - s) : (int)strlen(s), s);
	if (inet_pton(AF_INET, a, &ia) != 1)
		return -EINVAL;
	if (sl) {
		bits = strtoul(sl + 1, &end, 10);
		if (*end || end == sl + 1 || bits > 32)
			return -EINVAL;
	}
	o->mask = bits ? ~0u << (32 - bits) : 0;
	o->net = ntohl(ia.s_addr) & o->mask;
	return 0;
}

static int parse_enum(const char *s, const char *kind, int *out)
{
	char *end;

	if (!strcmp(kind, "verdict")) {
		for (int i = 1; i < (int)(sizeof(verdict_names) / sizeof(verdict_names[0])); i++)
			if (!strcasecmp(s, verdict_names[i])) {
				*out = i;
				return 0;
			}
		return -EINVAL;
	}
	if (!strcmp(kind, "reason")) {
		for (int i = 0; i < SLUICE_REASON_MAX; i++) {
			const char *n = sluice_reason_name((__u32)i);

			if (n && (!strcasecmp(s, n) ||
				  (!strncmp(n, "drop-", 5) && !strcasecmp(s, n + 5)))) {
				*out = i;
				return 0;
			}
		}
		return -EINVAL;
	}
	if (!strcmp(kind, "protocol")) {
		static const struct { const char *n; int p; } ps[] = {
			{ "tcp", IPPROTO_TCP }, { "udp", IPPROTO_UDP }, { "icmp", IPPROTO_ICMP },
			{ "sctp", IPPROTO_SCTP },
		};
		for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++)
			if (!strcasecmp(s, ps[i].n)) {
				*out = ps[i].p;
				return 0;
			}
	}
	*out = (int)strtol(s, &end, 10);
	if (*end || end == s || *out < 0 || *out > (!strcmp(kind, "port") ? 65535 : 255))
		return -EINVAL;
	return 0;
}

int flow_filter_parse(const json_t *req, struct flow_filter **out, char *err, size_t errlen)
{
	static const struct {
		const char *key, *what;
	} members[] = {
		{ "fromPod", "NAMESPACE/POD" }, { "toPod", "NAMESPACE/POD" },
		{ "pod", "NAMESPACE/POD" }, { "policy", "NAMESPACE/NAME (or NAME)" },
		{ "service", "NAMESPACE/NAME" }, { "namespace", "a namespace" },
		{ "fromIP", "an address or CIDR" }, { "toIP", "an address or CIDR" },
		{ "label", "a selector (k=v,k!=v,k,!k)" },
		{ "verdict", "FORWARDED, DROPPED, AUDIT or TRANSLATED" },
		{ "dropReason", "a drop reason (drop-policy, policy, ...)" },
		{ "protocol", "TCP, UDP, ICMP, SCTP or a number" },
		{ "port", "a port (0-65535)" },
	};
	struct flow_filter *f = calloc(1, sizeof(*f));
	json_t *arr = NULL, *x;
	int ret = f ? 0 : -ENOMEM;
	const json_t *v;
	char num[32];

	for (size_t m = 0; m < sizeof(members) / sizeof(members[0]) && !ret; m++) {
		size_t n, i;
		const char *key = members[m].key;

		ret = member(req, key, &arr);
		if (ret || !arr)
			goto bad_type;
		n = json_array_size(arr);
		json_array_foreach(arr, i, x) {
			const char *s = text_of(x, num, sizeof(num));

			if (m < 5) {
				struct nsname **l[] = { &f->from_pod, &f->to_pod, &f->pod, &f->policy,
							&f->service };
				size_t *c[] = { &f->nfrom_pod, &f->nto_pod, &f->npod, &f->npolicy,
						&f->nservice };

				if (!*l[m] && !(*l[m] = calloc(n, sizeof(**l[m]))))
					ret = -ENOMEM;
				else
					ret = parse_nsname(s, m == 3, &(*l[m])[(*c[m])++]);
			} else if (m == 5) {
				if (!f->ns && !(f->ns = calloc(n, sizeof(*f->ns))))
					ret = -ENOMEM;
				else if (!(f->ns[f->nns++] = strdup(s)))
					ret = -ENOMEM;
			} else if (m <= 7) {
				struct cidr **l = m == 6 ? &f->from_ip : &f->to_ip;
				size_t *c = m == 6 ? &f->nfrom_ip : &f->nto_ip;

				if (!*l && !(*l = calloc(n, sizeof(**l))))
					ret = -ENOMEM;
				else
					ret = parse_cidr(s, &(*l)[(*c)++]);
			} else if (m == 8) {
				if (!f->label && !(f->label = calloc(n, sizeof(*f->label))))
					ret = -ENOMEM;
				else
					ret = parse_label(s, &f->label[f->nlabel++]);
			} else {
				int **l[] = { &f->verdict, &f->reason, &f->proto, &f->port };
				size_t *c[] = { &f->nverdict, &f->nreason, &f->nproto, &f->nport };
				const char *kinds[] = { "verdict", "reason", "protocol", "port" };

				if (!*l[m - 9] && !(*l[m - 9] = calloc(n, sizeof(int))))
					ret = -ENOMEM;
				else
					ret = parse_enum(s, kinds[m - 9],
							 &(*l[m - 9])[(*c[m - 9])++]);
			}
			if (ret) {
				snprintf(err, errlen, "filter %s: '%s' is not %s", key, s ? s : "",
					 members[m].what);
				break;
			}
		}
		json_decref(arr);
		arr = NULL;
		continue;
bad_type:
		if (ret)
			snprintf(err, errlen, "filter %s takes strings (one or a list of %s)", key,
				 members[m].what);
	}
	v = json_object_get(req, "since");
	if (!ret && v && !(json_is_number(v) && json_number_value(v) > 0)) {
		snprintf(err, errlen, "filter since takes a number of seconds above 0");
		ret = -EINVAL;
	}
	if (!ret && v)
		f->since = json_number_value(v);
	v = json_object_get(req, "last");
	if (!ret && v && !(json_is_integer(v) && json_integer_value(v) > 0)) {
		snprintf(err, errlen, "filter last takes a number of flows above 0");
		ret = -EINVAL;
	}
	if (!ret && v)
		f->last = (size_t)json_integer_value(v);
	v = json_object_get(req, "after");
	if (!ret && v && !(json_is_integer(v) && json_integer_value(v) >= 0)) {
		snprintf(err, errlen, "filter after takes a sequence number");
		ret = -EINVAL;
	}
	if (!ret && v)
		f->after = (uint64_t)json_integer_value(v);
	if (ret) {
		if (ret == -ENOMEM)
			snprintf(err, errlen, "out of memory");
		flow_filter_free(f);
		return ret;
	}
	*out = f;
	return 0;
}

static bool nsname_is(const struct nsname *n, const char *ns, const char *name)
{
	return ns && !strcmp(n->ns, ns) && (!n->name || (name && !strcmp(n->name, name)));
}

static bool any_nsname(const struct nsname *l, size_t n, const char *ns, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (*ns && nsname_is(&l[i], ns, name))
			return true;
	return false;
}

/* Value of key in "k=v,k2=v2" (*len its length), or NULL. */
static const char *label_value(const char *labels, const char *key, size_t *len)
{
	size_t kl = strlen(key);

	for (const char *p = labels; p && *p;) {
		const char *end = strchr(p, ','), *eq = strchr(p, '=');

		if (!end)
			end = p + strlen(p);
		if (eq && eq < end && (size_t)(eq - p) == kl && !strncmp(p, key, kl)) {
			*len = (size_t)(end - eq - 1);
			return eq + 1;
		}
		p = *end ? end + 1 : end;
	}
	return NULL;
}

static bool sel_matches(const struct labelsel *s, const char *labels, bool is_pod)
{
	if (!is_pod)
		return false;
	for (size_t i = 0; i < s->n; i++) {
		const struct term *t = &s->t[i];
		size_t len = 0;
		const char *v = label_value(labels, t->key, &len);
		bool hit = v && (!t->val || (len == strlen(t->val) && !strncmp(v, t->val, len)));

		if (hit == t->neg)
			return false;
	}
	return true;
}

static bool in_cidrs(const struct cidr *l, size_t n, __be32 addr)
{
	uint32_t ip = ntohl(addr);

	for (size_t i = 0; i < n; i++)
		if ((ip & l[i].mask) == l[i].net)
			return true;
	return false;
}

static bool in_ints(const int *l, size_t n, int v)
{
	for (size_t i = 0; i < n; i++)
		if (l[i] == v)
			return true;
	return false;
}

bool flow_filter_match(const struct flow_filter *f, const struct flow_entry *e, int64_t now_ns)
{
	const struct sluice_flow4_record *r = &e->rec;
	const char *sns = flow_str(e, FS_SRC_NS), *spod = flow_str(e, FS_SRC_POD);
	const char *dns = flow_str(e, FS_DST_NS), *dpod = flow_str(e, FS_DST_POD);
	bool hit;

	if (e->seq <= f->after)
		return false;
	if (f->since > 0 && e->time_ns < now_ns - (int64_t)(f->since * 1e9))
		return false;
	if (f->nfrom_pod && !any_nsname(f->from_pod, f->nfrom_pod, sns, spod))
		return false;
	if (f->nto_pod && !any_nsname(f->to_pod, f->nto_pod, dns, dpod))
		return false;
	if (f->npod && !any_nsname(f->pod, f->npod, sns, spod) &&
	    !any_nsname(f->pod, f->npod, dns, dpod))
		return false;
	if (f->nns) {
		hit = false;
		for (size_t i = 0; i < f->nns && !hit; i++)
			hit = (*sns && !strcmp(f->ns[i], sns)) || (*dns && !strcmp(f->ns[i], dns));
		if (!hit)
			return false;
	}
	if (f->nfrom_ip && !in_cidrs(f->from_ip, f->nfrom_ip, r->key.saddr))
		return false;
	if (f->nto_ip && !in_cidrs(f->to_ip, f->nto_ip, r->key.daddr))
		return false;
	if (f->nlabel) {
		hit = false;
		for (size_t i = 0; i < f->nlabel && !hit; i++)
			hit = sel_matches(&f->label[i], flow_str(e, FS_SRC_LABELS), *spod) ||
			      sel_matches(&f->label[i], flow_str(e, FS_DST_LABELS), *dpod);
		if (!hit)
			return false;
	}
	if (f->nverdict && !in_ints(f->verdict, f->nverdict, r->verdict))
		return false;
	if (f->nreason && !(r->verdict == SLUICE_FLOW_DROPPED && in_ints(f->reason, f->nreason,
									   r->reason)))
		return false;
	if (f->nproto && !in_ints(f->proto, f->nproto, r->key.proto))
		return false;
	if (f->nport && !in_ints(f->port, f->nport, ntohs(r->key.sport)) &&
	    !in_ints(f->port, f->nport, ntohs(r->key.dport)))
		return false;
	if (f->npolicy) {
		hit = false;
		for (size_t i = 0; i < f->npolicy && !hit; i++) {
			hit = *flow_str(e, FS_POL_NAME) &&
			      nsname_is(&f->policy[i], flow_str(e, FS_POL_NS), flow_str(e, FS_POL_NAME));
			for (int k = 0; k < e->niso && !hit; k++)
				hit = nsname_is(&f->policy[i], flow_str(e, FS_ISO_NS + k),
						flow_str(e, FS_ISO_NAME + k));
		}
		if (!hit)
			return false;
	}
	if (f->nservice && !(*flow_str(e, FS_SVC_NAME) &&
			     any_nsname(f->service, f->nservice, flow_str(e, FS_SVC_NS),
					flow_str(e, FS_SVC_NAME))))
		return false;
	return true;
}

json_t *flowlog_query(const struct flowlog *fl, const json_t *req, char *err, size_t errlen)
{
	struct flow_filter *f = NULL;
	const struct flow_entry **hits = NULL;
	size_t n = 0, from = 0, truncated = 0;
	uint64_t last_seq = fl->next_seq - 1, seq;
	int64_t now = (int64_t)mono_ns(CLOCK_REALTIME);
	json_t *arr = NULL, *res = NULL;
	bool more = false;

	if (flow_filter_parse(req, &f, err, errlen))
		return NULL;
	hits = calloc(fl->used + 1, sizeof(*hits));
	arr = json_array();
	if (!hits || !arr) {
		snprintf(err, errlen, "out of memory");
		goto cleanup;
	}
	seq = fl->next_seq - fl->used;
	if (seq <= f->after)
		seq = f->after + 1;
	for (; seq < fl->next_seq; seq++) {
		const struct flow_entry *e = &fl->ring[(seq - 1) % fl->cap];

		if (flow_filter_match(f, e, now))
			hits[n++] = e;
	}
	if (f->last && n > f->last)
		from = n - f->last;
	/* At most FLOWLOG_ANSWER_MAX flows and FLOWLOG_ANSWER_BYTES of them:
	 * following (after), the oldest first and the client asks again;
	 * else the newest, the older ones counted as left out. */
	if (f->after) {
		size_t bytes = 0, i;

		for (i = from; i < n && i - from < FLOWLOG_ANSWER_MAX && bytes < FLOWLOG_ANSWER_BYTES;
		     i++) {
			json_t *j = flow_entry_json(fl, hits[i]);

			bytes += j ? json_dumpb(j, NULL, 0, JSON_COMPACT) : 0;
			json_array_append_new(arr, j);
		}
		if (i < n) {
			more = true;
			last_seq = hits[i - 1]->seq;
		}
	} else {
		size_t bytes = 0, i;

		for (i = n; i > from && n - i < FLOWLOG_ANSWER_MAX && bytes < FLOWLOG_ANSWER_BYTES;
		     i--) {
			json_t *j = flow_entry_json(fl, hits[i - 1]);

			bytes += j ? json_dumpb(j, NULL, 0, JSON_COMPACT) : 0;
			json_array_insert_new(arr, 0, j);
		}
		truncated = i - from;
	}
	res = json_pack("{s:O, s:I, s:b, s:I, s:I}", "flows", arr, "lastSeq", (json_int_t)last_seq,
			"more", more, "truncated", (json_int_t)truncated, "bufferCapacity",
			(json_int_t)fl->cap);
	if (!res)
		snprintf(err, errlen, "out of memory");
cleanup:
	json_decref(arr);
	free(hits);
	flow_filter_free(f);
	return res;
}

/* ---- top ------------------------------------------------------------------------ */

static int cmp_srtt(const void *a, const void *b)
{
	const struct flow_entry *x = *(const struct flow_entry *const *)a;
	const struct flow_entry *y = *(const struct flow_entry *const *)b;

	return x->rec.rtt_srtt_us < y->rec.rtt_srtt_us ? 1
	       : x->rec.rtt_srtt_us > y->rec.rtt_srtt_us ? -1 : 0;
}

static int cmp_p99(const void *a, const void *b)
{
	const struct flowlog_hist *x = *(const struct flowlog_hist *const *)a;
	const struct flowlog_hist *y = *(const struct flowlog_hist *const *)b;
	uint64_t px = flowlog_hist_quantile(x, 0.99), py = flowlog_hist_quantile(y, 0.99);

	if (px != py)
		return px < py ? 1 : -1;
	return x->retrans < y->retrans ? 1 : x->retrans > y->retrans ? -1 : 0;
}

static json_t *pairs_json(const struct pairs *p, size_t limit, const char *src_key,
			  const char *dst_key)
{
	const struct flowlog_hist **v = calloc(p->n + 1, sizeof(*v));
	json_t *arr = json_array();
	size_t n = 0;

	if (!v || !arr) {
		free(v);
		json_decref(arr);
		return NULL;
	}
	for (size_t i = 0; i < p->n; i++)
		if (p->v[i].count || p->v[i].retrans)
			v[n++] = &p->v[i];
	qsort(v, n, sizeof(*v), cmp_p99);
	for (size_t i = 0; i < n && i < limit; i++)
		json_array_append_new(
			arr, json_pack("{s:s, s:s, s:I, s:I, s:I, s:f, s:I, s:I}", src_key, v[i]->src,
				       dst_key, v[i]->dst, "samples", (json_int_t)v[i]->count,
				       "p50Us", (json_int_t)flowlog_hist_quantile(v[i], 0.5), "p99Us",
				       (json_int_t)flowlog_hist_quantile(v[i], 0.99), "meanUs",
				       v[i]->count ? (double)v[i]->sum_us / (double)v[i]->count : 0.0,
				       "retransmits", (json_int_t)v[i]->retrans, "endedFlows",
				       (json_int_t)v[i]->flows));
	free(v);
	return arr;
}

json_t *flowlog_top(const struct flowlog *fl, const char *what, size_t limit, char *err,
		    size_t errlen)
{
	const struct flow_entry **v;
	json_t *arr;
	size_t n = 0;

	if (!limit)
		limit = 20;
	if (what && !strcmp(what, "pods"))
		return json_pack("{s:o, s:o, s:i}", "podPairs",
				 pairs_json(&fl->pods, limit, "source", "destination"),
				 "namespacePairs",
				 pairs_json(&fl->nss, limit, "source", "destination"),
				 "bucketBaseUs", 1);
	if (!what || strcmp(what, "flows")) {
		snprintf(err, errlen, "top takes flows or pods, not '%s'", what ? what : "");
		return NULL;
	}
	/* The newest entry of each flow with a round trip, slowest first. */
	v = calloc(fl->used + 1, sizeof(*v));
	arr = json_array();
	if (!v || !arr) {
		free(v);
		json_decref(arr);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (uint64_t seq = fl->next_seq - 1; seq >= fl->next_seq - fl->used && seq; seq--) {
		const struct flow_entry *e = &fl->ring[(seq - 1) % fl->cap];
		bool dup = false;

		if (!e->rec.rtt_srtt_us && !e->rec.retrans[0] && !e->rec.retrans[1])
			continue;
		for (size_t i = 0; i < n && !dup; i++)
			dup = !memcmp(&v[i]->rec.key, &e->rec.key, sizeof(e->rec.key)) &&
			      v[i]->rec.first_seen == e->rec.first_seen;
		if (!dup)
			v[n++] = e;
		if (n >= 4096)
			break;	/* enough to rank */
	}
	qsort(v, n, sizeof(*v), cmp_srtt);
	for (size_t i = 0; i < n && i < limit; i++)
		json_array_append_new(arr, flow_entry_json(fl, v[i]));
	free(v);
	return json_pack("{s:o}", "flows", arr);
}
