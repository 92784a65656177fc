// SPDX-License-Identifier: Apache-2.0
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "flowfmt.h"

static const char *s_of(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

const char *flowfmt_header(void)
{
	return "TIME          VERDICT     SOURCE                              DESTINATION       "
	       "                  PROTO/PORT  SERVICE               EVENT   WHY";
}

void flowfmt_peer(const json_t *p, char *buf, size_t len)
{
	const char *kind = s_of(p, "kind"), *ns = s_of(p, "namespace"), *pod = s_of(p, "pod");
	long long port = json_integer_value(json_object_get(p, "port"));

	if (*pod)
		snprintf(buf, len, "%s/%s:%lld", ns, pod, port);
	else if (!strcmp(kind, "node"))
		snprintf(buf, len, "%s:%lld (node %s)", s_of(p, "ip"), port, s_of(p, "node"));
	else if (*ns)
		snprintf(buf, len, "%s:%lld (%s)", s_of(p, "ip"), port, ns);
	else
		snprintf(buf, len, "%s:%lld (%s)", s_of(p, "ip"), port, *kind ? kind : "unknown");
}

static void pol_name(const json_t *p, char *buf, size_t len)
{
	const char *ns = s_of(p, "namespace");

	snprintf(buf, len, "%s %s%s%s", s_of(p, "kind"), ns, *ns ? "/" : "", s_of(p, "name"));
}

void flowfmt_why(const json_t *f, char *buf, size_t len)
{
	const json_t *pol = json_object_get(f, "policy"), *iso = json_object_get(f, "isolatedBy");
	bool drop = json_is_true(json_object_get(f, "drop"));
	const char *verdict = s_of(f, "verdict");
	size_t off = 0;
	char name[600];

	buf[0] = '\0';
	if (drop || !strcmp(verdict, "AUDIT"))
		off += (size_t)snprintf(buf, len, "%s (%s)", s_of(f, "reasonDescription"),
					s_of(f, "reason"));
	if (off >= len)
		return;
	if (json_is_true(json_object_get(f, "deniedByDefault"))) {
		size_t n = json_array_size(iso), total;

		total = (size_t)json_integer_value(json_object_get(f, "isolatedByCount"));
		off += (size_t)snprintf(buf + off, len - off, "%s%s by default: isolated by ",
					off ? "; " : "", drop ? "DROPPED" : "would be dropped");
		for (size_t i = 0; i < n && off < len; i++) {
			pol_name(json_array_get(iso, i), name, sizeof(name));
			off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? ", " : "", name);
		}
		if (!n && off < len)
			off += (size_t)snprintf(buf + off, len - off, "a policy (no longer known)");
		if (total > n && off < len)
			snprintf(buf + off, len - off, " and %zu more", total - n);
	} else if (json_is_object(pol)) {
		pol_name(pol, name, sizeof(name));
		snprintf(buf + off, len - off, "%s%s %s rule %lld", off ? "; " : "",
			 drop ? "DROPPED by" : "allowed by", name,
			 json_integer_value(json_object_get(pol, "rule")));
	}
	if (!*buf && json_integer_value(json_object_get(f, "dropsSuppressed")) > 0)
		snprintf(buf, len, "%lld drops not reported before",
			 json_integer_value(json_object_get(f, "dropsSuppressed")));
}

void flowfmt_line(const json_t *f, char *buf, size_t len)
{
	const char *t = s_of(f, "time"), *T = strchr(t, 'T');
	const json_t *svc = json_object_get(f, "service"), *proto = json_object_get(f, "protocol");
	char src[300], dst[300], why[1200], pp[32], sv[300] = "-", tm[16];

	snprintf(tm, sizeof(tm), "%.12s", T ? T + 1 : t);
	flowfmt_peer(json_object_get(f, "source"), src, sizeof(src));
	flowfmt_peer(json_object_get(f, "destination"), dst, sizeof(dst));
	if (json_is_string(proto))
		snprintf(pp, sizeof(pp), "%s/%lld", json_string_value(proto),
			 json_integer_value(json_object_get(json_object_get(f, "destination"),
							    "port")));
	else
		snprintf(pp, sizeof(pp), "proto-%lld", json_integer_value(proto));
	if (json_is_object(svc)) {
		if (*s_of(svc, "name"))
			snprintf(sv, sizeof(sv), "%s/%s", s_of(svc, "namespace"), s_of(svc, "name"));
		else
			snprintf(sv, sizeof(sv), "%s:%lld", s_of(svc, "ip"),
				 json_integer_value(json_object_get(svc, "port")));
	}
	flowfmt_why(f, why, sizeof(why));
	snprintf(buf, len, "%-12s  %-10s  %-34s  -> %-32s  %-10s  %-20s  %-6s  %s", tm,
		 s_of(f, "verdict"), src, dst, pp, sv, s_of(f, "event"), why);
}
