// SPDX-License-Identifier: Apache-2.0
/*
 * Reading NetworkPolicy, SluiceNetworkPolicy and SluiceClusterNetworkPolicy
 * objects into struct pol_policy (see policy.h): pol_parse, strict, for
 * sluicectl apply, and pol_parse_api, which fails closed for objects the
 * apiserver has already accepted (docs/POLICY.md, "Objects sluice cannot
 * represent"). Also CIDRs read as the apiserver reads them, ports and
 * ICMP, and pol_free.
 *
 * Where Kubernetes behaviour is subtle, the choice and its upstream source
 * (kubernetes/kubernetes) are noted next to the code:
 *  - policyTypes defaulting: pkg/apis/networking/v1/defaults.go
 *  - field validation: pkg/apis/networking/validation/validation.go
 *  - field meanings: staging/src/k8s.io/api/networking/v1/types.go
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy_int.h"

/* ---- freeing --------------------------------------------------------- */

static void peer_free(struct pol_peer *pe)
{
	pol_selector_free(&pe->pod_sel);
	pol_selector_free(&pe->ns_sel);
	free(pe->except);
}

static void rule_free(struct pol_rule *r)
{
	for (size_t i = 0; i < r->npeers; i++)
		peer_free(&r->peers[i]);
	free(r->peers);
	for (size_t i = 0; i < r->nports; i++)
		free(r->ports[i].name);
	free(r->ports);
	free(r->icmp);
}

void pol_free(struct pol_policy *p)
{
	if (!p)
		return;
	free(p->ns);
	free(p->name);
	pol_selector_free(&p->pod_sel);
	pol_selector_free(&p->ns_sel);
	for (size_t i = 0; i < p->nin; i++)
		rule_free(&p->in[i]);
	free(p->in);
	for (size_t i = 0; i < p->neg; i++)
		rule_free(&p->eg[i]);
	free(p->eg);
	free(p->degraded);
	free(p->note);
	free(p);
}

/* ---- failing closed -------------------------------------------------- */

/*
 * Objects from the API (pol_parse_api) cannot be refused: the server has
 * accepted them. What pol_parse would reject is recorded here and replaced
 * by a reading that never leaves a pod less isolated than the object asks.
 */
static int degrade(struct pol_policy *p, const char *why)
{
	if (!p->degraded) {
		p->degraded = strdup(why);
		if (!p->degraded)
			return -ENOMEM;
	}
	p->ndegraded++;
	return 0;
}

/* After a failed sub-parse: strict mode passes the error on; API mode
 * records it and lets the caller substitute the fail-closed reading. */
static int tolerate(struct pol_policy *p, int ret, const char *err)
{
	if (!ret || ret == -ENOMEM || !p->from_api)
		return ret;
	return degrade(p, err);
}

static int note(struct pol_policy *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int note(struct pol_policy *p, const char *fmt, ...)
{
	va_list ap;
	char buf[PATH_LEN + 160];

	if (!p->note) {
		va_start(ap, fmt);
		vsnprintf(buf, sizeof(buf), fmt, ap);
		va_end(ap);
		p->note = strdup(buf);
		if (!p->note)
			return -ENOMEM;
	}
	p->nnotes++;
	return 0;
}

/* ---- CIDRs ------------------------------------------------------------ */

/* An ipBlock CIDR of either family. Only IPv4 ones are enforced. */
struct any_cidr {
	bool v6;
	struct cidr4 c4;
	uint8_t a6[16];
	int prefix6;
};

/*
 * An IPv4 address as the API server reads ipBlock CIDRs
 * (k8s.io/utils/net ParseCIDRSloppy): four decimal parts of 1-3 digits,
 * where a leading zero is still decimal ("010" is 10, not octal 8).
 */
static bool ip4_sloppy(const char *s, size_t n, uint32_t *out, bool *leading_zero)
{
	uint32_t ip = 0;
	size_t i = 0;

	*leading_zero = false;
	for (int part = 0; part < 4; part++) {
		size_t start = i;
		unsigned v = 0;

		if (part && (i >= n || s[i++] != '.'))
			return false;
		start = i;
		while (i < n && s[i] >= '0' && s[i] <= '9' && i - start < 3)
			v = v * 10 + (unsigned)(s[i++] - '0');
		if (i == start || v > 255)
			return false;
		if (s[start] == '0' && i - start > 1)
			*leading_zero = true;
		ip = ip << 8 | v;
	}
	if (i != n)
		return false;
	*out = ip;
	return true;
}

static bool bits6_contain(const uint8_t *net, int prefix, const uint8_t *a)
{
	for (int b = 0; b < prefix; b++)
		if ((net[b / 8] ^ a[b / 8]) & (0x80 >> (b % 8)))
			return false;
	return true;
}

/*
 * An ipBlock CIDR, read the way the API server reads it (legacy
 * validation, which every server without the StrictIPCIDRValidation gate
 * applies, and which stored objects passed): host bits are cleared
 * ("10.0.0.1/24" is 10.0.0.0/24) and IPv4 parts may have leading zeros.
 * Both readings are recorded as notes. IPv6 is parsed and validated but
 * not enforced: this datapath is IPv4 only, so an IPv6 block matches no
 * traffic. An IPv4-mapped IPv6 CIDR ("::ffff:10.0.0.0/104") is refused:
 * whether it should match IPv4 traffic differs between implementations,
 * and KEP-4858 rejects it for new objects.
 */
static int parse_cidr(struct pol_policy *p, const char *text, const char *path,
		      struct any_cidr *out, char *err, size_t errlen)
{
	const char *slash = strchr(text, '/');
	size_t alen, n;
	char addr[INET6_ADDRSTRLEN + 1], fmt[INET6_ADDRSTRLEN + 8];
	bool lz = false, host = false;
	long prefix;

	memset(out, 0, sizeof(*out));
	n = slash ? strlen(slash + 1) : 0;
	if (!slash || !n || n > 3 || strspn(slash + 1, "0123456789") != n ||
	    (n > 1 && slash[1] == '0'))
		return fail(err, errlen, path,
			    "'%s' is not a CIDR; expected a.b.c.d/n such as 10.0.0.0/8", text);
	prefix = strtol(slash + 1, NULL, 10);
	alen = (size_t)(slash - text);
	out->v6 = memchr(text, ':', alen) != NULL;
	if (alen >= sizeof(addr) || prefix > (out->v6 ? 128 : 32))
		return fail(err, errlen, path,
			    "'%s' is not a CIDR; expected a.b.c.d/n with n at most 32 (or an IPv6 "
			    "CIDR with n at most 128)",
			    text);
	memcpy(addr, text, alen);
	addr[alen] = '\0';
	if (out->v6) {
		struct in6_addr a;

		if (inet_pton(AF_INET6, addr, &a) != 1)
			return fail(err, errlen, path, "'%s' is not a CIDR; '%s' is not an address",
				    text, addr);
		if (IN6_IS_ADDR_V4MAPPED(&a))
			return fail(err, errlen, path,
				    "'%s' is an IPv4-mapped IPv6 CIDR, whose meaning for IPv4 "
				    "traffic is ambiguous; expected the IPv4 CIDR it stands for "
				    "(a.b.c.d/n)",
				    text);
		out->prefix6 = (int)prefix;
		for (int b = (int)prefix; b < 128; b++) {
			host |= (a.s6_addr[b / 8] & (0x80 >> (b % 8))) != 0;
			a.s6_addr[b / 8] &= (uint8_t)~(0x80 >> (b % 8));
		}
		memcpy(out->a6, a.s6_addr, 16);
		return note(p, "%s: '%s' is IPv6 and matches no traffic in this IPv4 datapath%s", path,
			    text, host ? " (its host bits are cleared)" : "");
	}
	if (!ip4_sloppy(addr, alen, &out->c4.net, &lz))
		return fail(err, errlen, path,
			    "'%s' is not a CIDR; expected a.b.c.d/n such as 10.0.0.0/8", text);
	out->c4.prefix = (int)prefix;
	host = (out->c4.net & ~(prefix ? ~0u << (32 - prefix) : 0)) != 0;
	out->c4.net &= prefix ? ~0u << (32 - prefix) : 0;
	if (!host && !lz)
		return 0;
	cidr4_format(&out->c4, fmt, sizeof(fmt));
	return note(p, "%s: '%s' is read as %s, as the API server reads it (%s)", path, text, fmt,
		    host ? "host bits cleared" : "leading zeros are decimal");
}

static bool cidr_inside(const struct any_cidr *in, const struct any_cidr *out)
{
	if (in->v6 != out->v6)
		return false;
	if (in->v6)
		return in->prefix6 > out->prefix6 && bits6_contain(out->a6, out->prefix6, in->a6);
	return in->c4.prefix > out->c4.prefix && cidr4_contains(&out->c4, in->c4.net);
}

/* Sets *v6 for an IPv6 block: valid, but it matches nothing here. */
static int parse_ipblock(struct pol_policy *p, const json_t *ib, const char *path,
			 struct pol_peer *pe, bool *v6, char *err, size_t errlen)
{
	char sub[PATH_LEN];
	const json_t *cidr, *except;
	struct any_cidr c, e;
	int ret;

	if (!json_is_object(ib))
		return fail(err, errlen, path, "is %s; expected {\"cidr\": \"10.0.0.0/8\"}",
			    jtype(ib));
	pe->is_ipblock = true;
	cidr = member(ib, "cidr");
	subpath(sub, sizeof(sub), "%s.cidr", path);
	if (!cidr || (json_is_string(cidr) && !json_string_length(cidr)))
		return fail(err, errlen, sub, "missing; expected an IPv4 CIDR such as 10.0.0.0/8");
	if (!json_is_string(cidr))
		return fail(err, errlen, sub, "is %s; expected an IPv4 CIDR such as 10.0.0.0/8",
			    jtype(cidr));
	ret = parse_cidr(p, json_string_value(cidr), sub, &c, err, errlen);
	if (ret)
		return ret;
	*v6 = c.v6;
	pe->cidr = c.c4;
	except = member(ib, "except");
	if (!except)
		return 0;
	subpath(sub, sizeof(sub), "%s.except", path);
	if (!json_is_array(except))
		return fail(err, errlen, sub, "is %s; expected a list of CIDRs inside cidr",
			    jtype(except));
	if (!json_array_size(except))
		return 0;
	pe->except = calloc(json_array_size(except), sizeof(*pe->except));
	if (!pe->except)
		return oom(err, errlen);
	for (size_t i = 0; i < json_array_size(except); i++) {
		const json_t *ej = json_array_get(except, i);

		subpath(sub, sizeof(sub), "%s.except[%zu]", path, i);
		if (!json_is_string(ej))
			return fail(err, errlen, sub, "is %s; expected an IPv4 CIDR inside cidr",
				    jtype(ej));
		ret = parse_cidr(p, json_string_value(ej), sub, &e, err, errlen);
		if (ret)
			return ret;
		/* Upstream ValidateIPBlock: "must be a strict subset of cidr",
		 * compared after both are masked, in one family. */
		if (!cidr_inside(&e, &c))
			return fail(err, errlen, sub,
				    "'%s' is not strictly inside cidr '%s'; expected a smaller block "
				    "within it",
				    json_string_value(ej), json_string_value(cidr));
		if (!c.v6)
			pe->except[pe->nexcept++] = e.c4;
	}
	return 0;
}

static int parse_peer(struct pol_policy *p, const json_t *j, const char *path,
		      struct pol_peer *pe, bool *v6, char *err, size_t errlen)
{
	char sub[PATH_LEN];
	const json_t *ps, *ns, *ib;
	int ret;

	*v6 = false;
	if (!json_is_object(j))
		return fail(err, errlen, path,
			    "is %s; expected a peer with podSelector, namespaceSelector or ipBlock",
			    jtype(j));
	ps = member(j, "podSelector");
	ns = member(j, "namespaceSelector");
	ib = member(j, "ipBlock");
	/* Upstream ValidateNetworkPolicyPeer: at least one; ipBlock alone. */
	if (!ps && !ns && !ib)
		return fail(err, errlen, path,
			    "names no peer; expected podSelector, namespaceSelector or ipBlock");
	if (ib && (ps || ns))
		return fail(
			err, errlen, path,
			"has both ipBlock and %s; an ipBlock peer cannot have selectors, so use "
			"two peers",
			ps ? "podSelector" : "namespaceSelector");
	if (ib) {
		subpath(sub, sizeof(sub), "%s.ipBlock", path);
		return parse_ipblock(p, ib, sub, pe, v6, err, errlen);
	}
	if (ps) {
		pe->has_pod_sel = true;
		subpath(sub, sizeof(sub), "%s.podSelector", path);
		ret = pol_selector_parse(ps, sub, &pe->pod_sel, err, errlen);
		if (ret)
			return ret;
	}
	if (ns) {
		pe->has_ns_sel = true;
		subpath(sub, sizeof(sub), "%s.namespaceSelector", path);
		ret = pol_selector_parse(ns, sub, &pe->ns_sel, err, errlen);
		if (ret)
			return ret;
	}
	return 0;
}

/* IANA_SVC_NAME (IsValidPortName): 1-15 of [a-z0-9-], at least one letter,
 * no leading, trailing or doubled '-'. */
static bool port_name_ok(const char *s)
{
	size_t n = strlen(s);
	bool letter = false;

	if (!n || n > 15 || s[0] == '-' || s[n - 1] == '-' || strstr(s, "--"))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] >= 'a' && s[i] <= 'z')
			letter = true;
		else if (!(s[i] >= '0' && s[i] <= '9') && s[i] != '-')
			return false;
	}
	return letter;
}

/* Upstream ValidateNetworkPolicyPort, plus the TCP default of
 * SetDefaults_NetworkPolicyPort. */
static int parse_port(const json_t *j, const char *path, struct pol_port *pp, char *err,
		      size_t errlen)
{
	char sub[PATH_LEN];
	const json_t *proto, *port, *end;
	json_int_t v;

	if (!json_is_object(j))
		return fail(err, errlen, path,
			    "is %s; expected {\"protocol\", \"port\", \"endPort\"}", jtype(j));
	proto = member(j, "protocol");
	subpath(sub, sizeof(sub), "%s.protocol", path);
	pp->proto = IPPROTO_TCP;
	if (proto && !json_is_string(proto))
		return fail(err, errlen, sub, "is %s; expected TCP, UDP or SCTP", jtype(proto));
	if (proto) {
		const char *s = json_string_value(proto);

		if (!strcmp(s, "UDP"))
			pp->proto = IPPROTO_UDP;
		else if (!strcmp(s, "SCTP"))
			pp->proto = IPPROTO_SCTP;
		else if (strcmp(s, "TCP"))
			return fail(err, errlen, sub,
				    "'%s' is not supported; expected TCP, UDP or SCTP (upper case)",
				    s);
	}

	port = member(j, "port");
	subpath(sub, sizeof(sub), "%s.port", path);
	if (!port) {
		pp->kind = PORT_ANY;
	} else if (json_is_integer(port)) {
		v = json_integer_value(port);
		if (v < 1 || v > 65535)
			return fail(err, errlen, sub,
				    "%" JSON_INTEGER_FORMAT
				    " is out of range; expected 1-65535 or a port name",
				    v);
		pp->kind = PORT_NUMBER;
		pp->port = pp->end_port = (uint16_t)v;
	} else if (json_is_string(port)) {
		if (!port_name_ok(json_string_value(port)))
			return fail(
				err, errlen, sub,
				"'%s' is not a valid port name; expected a number 1-65535 or a "
				"name of 1-15 lowercase letters, digits and '-' with at least one "
				"letter, such as http",
				json_string_value(port));
		pp->kind = PORT_NAMED;
		pp->name = strdup(json_string_value(port));
		if (!pp->name)
			return oom(err, errlen);
	} else {
		return fail(err, errlen, sub, "is %s; expected a number 1-65535 or a port name",
			    jtype(port));
	}

	end = member(j, "endPort");
	if (!end)
		return 0;
	subpath(sub, sizeof(sub), "%s.endPort", path);
	if (!json_is_integer(end))
		return fail(err, errlen, sub, "is %s; expected a port number 1-65535", jtype(end));
	v = json_integer_value(end);
	if (pp->kind == PORT_ANY)
		return fail(
			err, errlen, sub,
			"is set without port; expected port as well, the first port of the range");
	if (pp->kind == PORT_NAMED)
		return fail(
			err, errlen, sub,
			"is set but port is the name '%s'; expected a numeric port with endPort",
			pp->name);
	if (v < pp->port)
		return fail(err, errlen, sub,
			    "%" JSON_INTEGER_FORMAT
			    " is less than port %u; expected a value >= port",
			    v, pp->port);
	if (v > 65535)
		return fail(err, errlen, sub,
			    "%" JSON_INTEGER_FORMAT " is out of range; expected %u-65535", v,
			    pp->port);
	pp->end_port = (uint16_t)v;
	return 0;
}

static int parse_icmp(const json_t *j, const char *path, struct pol_icmp *ic, char *err,
		      size_t errlen)
{
	char sub[PATH_LEN];
	const json_t *type, *code;

	if (!json_is_object(j))
		return fail(err, errlen, path,
			    "is %s; expected {\"type\": 8} or {\"type\": 3, \"code\": 4}",
			    jtype(j));
	type = member(j, "type");
	code = member(j, "code");
	subpath(sub, sizeof(sub), "%s.type", path);
	if (!type)
		return fail(err, errlen, sub,
			    "missing; expected an ICMP type 0-255, e.g. 8 for echo");
	if (!json_is_integer(type) || json_integer_value(type) < 0 ||
	    json_integer_value(type) > 255)
		return fail(err, errlen, sub, "is not an integer in 0-255; expected an ICMP type");
	ic->type = (uint8_t)json_integer_value(type);
	ic->code = -1;
	if (!code)
		return 0;
	subpath(sub, sizeof(sub), "%s.code", path);
	if (!json_is_integer(code) || json_integer_value(code) < 0 ||
	    json_integer_value(code) > 255)
		return fail(
			err, errlen, sub,
			"is not an integer in 0-255; expected an ICMP code, or no code for all");
	ic->code = (int16_t)json_integer_value(code);
	return 0;
}

/* Allocate a zeroed array for a JSON list so that freeing works whatever
 * point parsing stops at. */
static int list_alloc(const json_t *list, size_t size, void **out, size_t *n, char *err,
		      size_t errlen)
{
	*n = 0;
	*out = NULL;
	if (!list || !json_array_size(list))
		return 0;
	*out = calloc(json_array_size(list), size);
	if (!*out)
		return oom(err, errlen);
	*n = json_array_size(list);
	return 0;
}

/*
 * A rule (or part of one) sluice cannot represent, from the API. An Allow
 * rule then matches nothing: the policy still isolates its pods, this rule
 * adds no allow. A Deny rule must not vanish or narrow, which would let
 * through what it denies: it becomes "deny everything" in its direction.
 */
static void rule_fail_closed(struct pol_rule *r)
{
	enum pol_action action = r->action;

	rule_free(r);
	memset(r, 0, sizeof(*r));
	r->action = action;
	r->any_peer = r->any_port = action == POL_DENY;
}

/* Drop the entries of a list whose keep[] is false, keeping the order. */
static size_t compact(void *v, size_t size, size_t n, const bool *keep)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		if (keep[i]) {
			if (k != i)
				memcpy((char *)v + k * size, (char *)v + i * size, size);
			k++;
		}
	return k;
}

static int parse_rule(const json_t *j, const char *path, struct pol_policy *p, enum pol_dir dir,
		      struct pol_rule *r, char *err, size_t errlen)
{
	const char *peers_key = dir == POL_INGRESS ? "from" : "to";
	char sub[PATH_LEN];
	const json_t *peers, *ports, *icmp = NULL, *action;
	bool *keep = NULL, bad = false;
	size_t given_peers, given_ports;
	int ret;

	/* A sluice rule whose action cannot be read may be a Deny. */
	if (p->kind != POL_K8S)
		r->action = POL_DENY;
	if (!json_is_object(j)) {
		ret = fail(err, errlen, path, "is %s; expected a rule object ({} allows everything)",
			   jtype(j));
		goto unreadable;
	}
	peers = member(j, peers_key);
	ports = member(j, "ports");
	if (p->kind != POL_K8S) {
		/* Sluice-only fields; a NetworkPolicy ignores them as unknown. */
		icmp = member(j, "icmp");
		action = member(j, "action");
		subpath(sub, sizeof(sub), "%s.action", path);
		if (action && !json_is_string(action)) {
			ret = fail(err, errlen, sub, "is %s; expected Allow or Deny", jtype(action));
			goto unreadable;
		}
		if (!action || !strcmp(json_string_value(action), "Allow")) {
			r->action = POL_ALLOW;
		} else if (strcmp(json_string_value(action), "Deny")) {
			ret = fail(err, errlen, sub, "'%s' is not an action; expected Allow or Deny",
				   json_string_value(action));
			goto unreadable;
		}
	}
	subpath(sub, sizeof(sub), "%s.%s", path, peers_key);
	if (peers && !json_is_array(peers)) {
		ret = fail(err, errlen, sub, "is %s; expected a list of peers", jtype(peers));
		goto unreadable;
	}
	subpath(sub, sizeof(sub), "%s.ports", path);
	if (ports && !json_is_array(ports)) {
		ret = fail(err, errlen, sub, "is %s; expected a list of ports", jtype(ports));
		goto unreadable;
	}
	subpath(sub, sizeof(sub), "%s.icmp", path);
	if (icmp && !json_is_array(icmp)) {
		ret = fail(err, errlen, sub, "is %s; expected a list of {type, code}", jtype(icmp));
		goto unreadable;
	}
	given_peers = json_array_size(peers);
	given_ports = json_array_size(ports) + json_array_size(icmp);
	keep = calloc(given_peers + json_array_size(ports) + json_array_size(icmp) + 1,
		      sizeof(*keep));
	if (!keep)
		return oom(err, errlen);

	/* Each entry that cannot be represented is dropped (API mode): an
	 * Allow rule then allows less, never more. An IPv6 ipBlock is
	 * dropped as exact: it matches no IPv4 traffic. */
	ret = list_alloc(peers, sizeof(*r->peers), (void **)&r->peers, &r->npeers, err, errlen);
	if (ret)
		goto cleanup;
	for (size_t i = 0; i < r->npeers; i++) {
		bool v6 = false;

		subpath(sub, sizeof(sub), "%s.%s[%zu]", path, peers_key, i);
		ret = parse_peer(p, json_array_get(peers, i), sub, &r->peers[i], &v6, err, errlen);
		keep[i] = !ret && !v6;
		bad |= ret != 0;
		if (ret && (ret = tolerate(p, ret, err)))
			goto cleanup;
		if (!keep[i]) {
			peer_free(&r->peers[i]);
			memset(&r->peers[i], 0, sizeof(r->peers[i]));
		}
	}
	r->npeers = compact(r->peers, sizeof(*r->peers), r->npeers, keep);
	ret = list_alloc(ports, sizeof(*r->ports), (void **)&r->ports, &r->nports, err, errlen);
	if (ret)
		goto cleanup;
	for (size_t i = 0; i < r->nports; i++) {
		subpath(sub, sizeof(sub), "%s.ports[%zu]", path, i);
		ret = parse_port(json_array_get(ports, i), sub, &r->ports[i], err, errlen);
		keep[i] = !ret;
		bad |= ret != 0;
		if (ret && (ret = tolerate(p, ret, err)))
			goto cleanup;
		if (!keep[i]) {
			free(r->ports[i].name);
			memset(&r->ports[i], 0, sizeof(r->ports[i]));
		}
	}
	r->nports = compact(r->ports, sizeof(*r->ports), r->nports, keep);
	ret = list_alloc(icmp, sizeof(*r->icmp), (void **)&r->icmp, &r->nicmp, err, errlen);
	if (ret)
		goto cleanup;
	for (size_t i = 0; i < r->nicmp; i++) {
		subpath(sub, sizeof(sub), "%s.icmp[%zu]", path, i);
		ret = parse_icmp(json_array_get(icmp, i), sub, &r->icmp[i], err, errlen);
		keep[i] = !ret;
		bad |= ret != 0;
		if (ret && (ret = tolerate(p, ret, err)))
			goto cleanup;
	}
	r->nicmp = compact(r->icmp, sizeof(*r->icmp), r->nicmp, keep);
	/* Upstream: from/to "empty or missing" matches every peer, ports
	 * "empty or missing" every port; icmp joins ports for sluice rules.
	 * What was given decides, not what is left: a rule whose every peer
	 * was dropped matches no peer. */
	r->any_peer = !given_peers;
	r->any_port = !given_ports;
	if (bad && r->action == POL_DENY)
		rule_fail_closed(r);
	ret = 0;
cleanup:
	free(keep);
	return ret;
unreadable:
	ret = tolerate(p, ret, err);
	if (!ret)
		rule_fail_closed(r);
	return ret;
}

static int parse_rules(const json_t *spec, enum pol_dir dir, struct pol_policy *p, char *err,
		       size_t errlen)
{
	const char *key = dir == POL_INGRESS ? "ingress" : "egress";
	const json_t *list = member(spec, key);
	struct pol_rule **rules = dir == POL_INGRESS ? &p->in : &p->eg;
	size_t *n = dir == POL_INGRESS ? &p->nin : &p->neg;
	char sub[PATH_LEN];
	int ret;

	if (list && !json_is_array(list)) {
		subpath(sub, sizeof(sub), "spec.%s", key);
		ret = tolerate(p, fail(err, errlen, sub, "is %s; expected a list of rules",
				       jtype(list)), err);
		if (ret)
			return ret;
		/* Unreadable rules: parse_spec isolates the direction; a sluice
		 * policy may have had Deny rules among them, so it denies all. */
		if (p->kind == POL_K8S)
			return 0;
		*rules = calloc(1, sizeof(**rules));
		if (!*rules)
			return oom(err, errlen);
		*n = 1;
		(*rules)->action = POL_DENY;
		rule_fail_closed(*rules);
		return 0;
	}
	ret = list_alloc(list, sizeof(**rules), (void **)rules, n, err, errlen);
	if (ret)
		return ret;
	for (size_t i = 0; i < *n; i++) {
		subpath(sub, sizeof(sub), "spec.%s[%zu]", key, i);
		ret = parse_rule(json_array_get(list, i), sub, p, dir, &(*rules)[i], err, errlen);
		if (ret)
			return ret;
	}
	return 0;
}

/* Upstream SetDefaults_NetworkPolicy (pkg/apis/networking/v1/defaults.go):
 * when policyTypes is empty, Ingress always, plus Egress when
 * len(spec.egress) != 0. So "egress: []" does NOT add Egress: a policy
 * that wants to deny all egress must list Egress explicitly. The sluice
 * CRDs default the same way. Explicit values win; rules of a direction
 * not listed are kept (they are valid) but never consulted. */
static int parse_policy_types(const json_t *spec, struct pol_policy *p, char *err, size_t errlen)
{
	const json_t *pt = member(spec, "policyTypes");
	char sub[PATH_LEN];

	if (pt && !json_is_array(pt))
		return fail(err, errlen, "spec.policyTypes",
			    "is %s; expected a list such as [\"Ingress\", \"Egress\"]", jtype(pt));
	if (!pt || !json_array_size(pt)) {
		p->ingress = true;
		p->egress = p->neg != 0;
		return 0;
	}
	if (json_array_size(pt) > 2)
		return fail(err, errlen, "spec.policyTypes",
			    "lists %zu types; expected at most two: Ingress and/or Egress",
			    json_array_size(pt));
	for (size_t i = 0; i < json_array_size(pt); i++) {
		const json_t *t = json_array_get(pt, i);

		subpath(sub, sizeof(sub), "spec.policyTypes[%zu]", i);
		if (json_is_string(t) && !strcmp(json_string_value(t), "Ingress"))
			p->ingress = true;
		else if (json_is_string(t) && !strcmp(json_string_value(t), "Egress"))
			p->egress = true;
		else if (json_is_string(t))
			return fail(err, errlen, sub,
				    "'%s' is not a policy type; expected Ingress or Egress "
				    "(case-sensitive)",
				    json_string_value(t));
		else
			return fail(err, errlen, sub, "is %s; expected Ingress or Egress",
				    jtype(t));
	}
	return 0;
}

static int parse_kind(const json_t *obj, enum pol_kind *kind, char *err, size_t errlen)
{
	const json_t *av = member(obj, "apiVersion"), *k = member(obj, "kind");
	const char *a, *s;

	if (!av || !json_is_string(av))
		return fail(err, errlen, "apiVersion",
			    "%s; expected networking.k8s.io/v1 or sluice.io/v1alpha1",
			    av ? "is not a string" : "missing");
	if (!k || !json_is_string(k))
		return fail(err, errlen, "kind",
			    "%s; expected NetworkPolicy, SluiceNetworkPolicy or "
			    "SluiceClusterNetworkPolicy",
			    k ? "is not a string" : "missing");
	a = json_string_value(av);
	s = json_string_value(k);
	if (!strcmp(a, "networking.k8s.io/v1")) {
		if (!strcmp(s, "NetworkPolicy")) {
			*kind = POL_K8S;
			return 0;
		}
		if (!strcmp(s, "SluiceNetworkPolicy") || !strcmp(s, "SluiceClusterNetworkPolicy"))
			return fail(err, errlen, "apiVersion",
				    "%s is not served by networking.k8s.io/v1; expected apiVersion "
				    "sluice.io/v1alpha1",
				    s);
		return fail(
			err, errlen, "kind",
			"'%s' is not a policy kind of networking.k8s.io/v1; expected NetworkPolicy",
			s);
	}
	if (!strcmp(a, "sluice.io/v1alpha1")) {
		if (!strcmp(s, "SluiceNetworkPolicy")) {
			*kind = POL_SLUICE;
			return 0;
		}
		if (!strcmp(s, "SluiceClusterNetworkPolicy")) {
			*kind = POL_SLUICE_CLUSTER;
			return 0;
		}
		if (!strcmp(s, "NetworkPolicy"))
			return fail(err, errlen, "apiVersion",
				    "NetworkPolicy is not served by sluice.io/v1alpha1; expected "
				    "networking.k8s.io/v1");
		return fail(
			err, errlen, "kind",
			"'%s' is not a kind of sluice.io/v1alpha1; expected SluiceNetworkPolicy or "
			"SluiceClusterNetworkPolicy",
			s);
	}
	return fail(err, errlen, "apiVersion",
		    "'%s' is not supported; expected networking.k8s.io/v1 (NetworkPolicy) or "
		    "sluice.io/v1alpha1 (SluiceNetworkPolicy, SluiceClusterNetworkPolicy)",
		    a);
}

static int parse_meta(const json_t *obj, struct pol_policy *p, char *err, size_t errlen)
{
	const json_t *meta = member(obj, "metadata"), *name, *ns;
	const char *nsname = "default";

	if (!meta)
		return fail(err, errlen, "metadata", "missing; expected an object with a name");
	if (!json_is_object(meta))
		return fail(err, errlen, "metadata", "is %s; expected an object with a name",
			    jtype(meta));
	name = member(meta, "name");
	if (!name || (json_is_string(name) && !json_string_length(name)))
		return fail(err, errlen, "metadata.name",
			    "missing; expected a DNS-1123 subdomain such as allow-web");
	if (!json_is_string(name))
		return fail(err, errlen, "metadata.name", "is %s; expected a string", jtype(name));
	if (!dns_subdomain_n(json_string_value(name), json_string_length(name)))
		return fail(err, errlen, "metadata.name",
			    "'%s' is not a valid name; expected at most 253 lowercase letters, "
			    "digits, '-' and '.', starting and ending with a letter or digit",
			    json_string_value(name));
	p->name = strdup(json_string_value(name));
	if (!p->name)
		return oom(err, errlen);

	/* Cluster-scoped: the apiserver clears metadata.namespace, so do we. */
	if (p->kind == POL_SLUICE_CLUSTER)
		return 0;
	ns = member(meta, "namespace");
	if (ns && !json_is_string(ns))
		return fail(err, errlen, "metadata.namespace", "is %s; expected a namespace name",
			    jtype(ns));
	/* kubectl fills in the context's namespace, "default" without one. */
	if (ns && json_string_length(ns))
		nsname = json_string_value(ns);
	if (!dns_label(nsname))
		return fail(err, errlen, "metadata.namespace",
			    "'%s' is not a valid namespace name; expected at most 63 lowercase "
			    "letters, digits and '-', starting and ending with a letter or digit",
			    nsname);
	p->ns = strdup(nsname);
	if (!p->ns)
		return oom(err, errlen);
	return 0;
}

/* A spec that cannot be read at all (API mode): every pod the object can
 * cover is isolated both ways with nothing allowed, and a sluice policy,
 * which may have denied, denies everything. */
static int spec_fail_closed(struct pol_policy *p, char *err, size_t errlen)
{
	pol_selector_free(&p->pod_sel);
	p->has_ns_sel = false;
	pol_selector_free(&p->ns_sel);
	p->ingress = p->egress = true;
	p->audit = false;
	if (p->kind == POL_K8S)
		return 0;
	p->in = calloc(1, sizeof(*p->in));
	p->eg = calloc(1, sizeof(*p->eg));
	if (!p->in || !p->eg)
		return oom(err, errlen);
	p->nin = p->neg = 1;
	p->in->action = p->eg->action = POL_DENY;
	rule_fail_closed(p->in);
	rule_fail_closed(p->eg);
	return 0;
}

static int parse_spec(const json_t *obj, struct pol_policy *p, char *err, size_t errlen)
{
	const json_t *spec = member(obj, "spec"), *ps, *nsel, *mode;
	int ret;

	/*
	 * NetworkPolicy: spec and spec.podSelector are optional upstream
	 * (types.go: "If it is not specified, it defaults to an empty
	 * selector"), so an absent one selects every pod of the namespace. The
	 * sluice CRDs require podSelector: our schema, and a forgotten selector
	 * should not silently cover a whole namespace.
	 */
	if (!spec && p->kind == POL_K8S) {
		p->ingress = true;
		return 0;
	}
	if (!spec || !json_is_object(spec)) {
		ret = spec ? fail(err, errlen, "spec", "is %s; expected an object", jtype(spec))
			   : fail(err, errlen, "spec",
				  "missing; expected an object with at least podSelector");
		ret = tolerate(p, ret, err);
		return ret ? ret : spec_fail_closed(p, err, errlen);
	}
	/* An unreadable (or, for the CRDs, missing) podSelector selects every
	 * pod the policy can cover: more isolation, never less. */
	ps = member(spec, "podSelector");
	if (!ps && p->kind == POL_SLUICE)
		ret = fail(err, errlen, "spec.podSelector",
			   "missing; use {} to select every pod in the namespace");
	else if (!ps && p->kind == POL_SLUICE_CLUSTER)
		ret = fail(err, errlen, "spec.podSelector",
			   "missing; use {} to select every pod (spec.namespaceSelector limits the "
			   "namespaces)");
	else
		ret = pol_selector_parse(ps, "spec.podSelector", &p->pod_sel, err, errlen);
	ret = tolerate(p, ret, err);
	if (ret)
		return ret;
	if (p->kind == POL_SLUICE_CLUSTER) {
		nsel = member(spec, "namespaceSelector");
		p->has_ns_sel = nsel != NULL;
		ret = pol_selector_parse(nsel, "spec.namespaceSelector", &p->ns_sel, err, errlen);
		if (ret)
			p->has_ns_sel = false; /* every namespace */
		ret = tolerate(p, ret, err);
		if (ret)
			return ret;
	}
	if (p->kind != POL_K8S) {
		/* Unreadable: Enforce, which isolates; Audit would not. */
		mode = member(spec, "mode");
		ret = 0;
		if (mode && !json_is_string(mode))
			ret = fail(err, errlen, "spec.mode", "is %s; expected Enforce or Audit",
				   jtype(mode));
		else if (mode && !strcmp(json_string_value(mode), "Audit"))
			p->audit = true;
		else if (mode && strcmp(json_string_value(mode), "Enforce"))
			ret = fail(err, errlen, "spec.mode",
				   "'%s' is not a mode; expected Enforce (the default) or Audit",
				   json_string_value(mode));
		ret = tolerate(p, ret, err);
		if (ret)
			return ret;
	}
	ret = parse_rules(spec, POL_INGRESS, p, err, errlen);
	if (ret)
		return ret;
	ret = parse_rules(spec, POL_EGRESS, p, err, errlen);
	if (ret)
		return ret;
	ret = parse_policy_types(spec, p, err, errlen);
	if (ret) {
		/* Unreadable policyTypes: both directions. */
		ret = tolerate(p, ret, err);
		p->ingress = p->egress = true;
		return ret;
	}
	/* A direction whose rules could not be read is isolated. */
	if (member(spec, "ingress") && !json_is_array(member(spec, "ingress")))
		p->ingress = true;
	if (member(spec, "egress") && !json_is_array(member(spec, "egress")))
		p->egress = true;
	return 0;
}

static int parse(const json_t *obj, bool from_api, struct pol_policy **out, char *err,
		 size_t errlen)
{
	struct pol_policy *p = NULL;
	int ret;

	*out = NULL;
	if (!json_is_object(obj))
		return fail(err, errlen, "(object)", "is %s; expected a policy object",
			    obj ? jtype(obj) : "missing");
	p = calloc(1, sizeof(*p));
	if (!p)
		return oom(err, errlen);
	p->from_api = from_api;
	ret = parse_kind(obj, &p->kind, err, errlen);
	if (ret)
		goto cleanup;
	ret = parse_meta(obj, p, err, errlen);
	if (ret)
		goto cleanup;
	ret = parse_spec(obj, p, err, errlen);
	if (ret)
		goto cleanup;
	*out = p;
	return 0;
cleanup:
	pol_free(p);
	return ret;
}

int pol_parse(const json_t *obj, struct pol_policy **out, char *err, size_t errlen)
{
	return parse(obj, false, out, err, errlen);
}

int pol_parse_api(const json_t *obj, struct pol_policy **out, char *err, size_t errlen)
{
	return parse(obj, true, out, err, errlen);
}
