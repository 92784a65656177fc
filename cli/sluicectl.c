// SPDX-License-Identifier: Apache-2.0
/* sluicectl: the operator's command line for a node's sluice-agent. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api.h"
#include "bwconf.h"
#include "flowfmt.h"
#include "kschema.h"
#include "manifest.h"

enum exit_code { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_UNREACHABLE = 3 };

#define TIMEOUT_MS 10000
/* apply and delete answer once the datapath enforces the new state */
#define TIMEOUT_OBJECTS_MS 30000
/* get: objects per page (--chunk-size), as kubectl's default */
#define CHUNK_DEFAULT 500

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: sluicectl [--socket PATH] COMMAND [OPTIONS]\n"
		"\n"
		"Node state:\n"
		"  status                 agent readiness, pod CIDR, router IP, attach mode, IPAM usage,\n"
		"                         XDP per device (requested, in use, fallback reason)\n"
		"  get endpoints          pods attached on this node (also: endpoint, ep)\n"
		"  metrics                datapath packet and byte counters by reason and direction,\n"
		"                         then the packets each SluicePrefilter dropped, and why\n"
		"                         XDP left Service packets to tc (by cause)\n"
		"\n"
		"Flows (docs/OBSERVABILITY.md):\n"
		"  observe [FILTERS] [--follow] [-o json]\n"
		"                         the flows the agent keeps, newest last: time, verdict,\n"
		"                         source -> destination (namespace/pod:port, or address and\n"
		"                         what it is), protocol/port, Service, event, and why: for\n"
		"                         a drop the reason in words and the policy that denied it,\n"
		"                         or the policies that isolate the pod (denied by default);\n"
		"                         -o json: one JSON object per line with every field\n"
		"  top flows [--limit N]  the slowest flows in the buffer (smoothed round trip of\n"
		"                         TCP timestamps) and their retransmissions\n"
		"  top pods [--limit N]   pod pairs and namespace pairs by p99 round trip (p50,\n"
		"                         p99, samples, retransmissions of ended flows)\n"
		"\n"
		"observe filters (each repeatable: the same filter given twice matches either;\n"
		"different filters must all match):\n"
		"  --from-pod NS/POD      the source pod (NS/ for every pod of NS)\n"
		"  --to-pod NS/POD        the destination pod\n"
		"  --pod NS/POD           either side\n"
		"  --namespace NS         either side's namespace\n"
		"  --from-ip ADDR|CIDR    the source address       --to-ip ADDR|CIDR  the destination\n"
		"  --label SELECTOR       either side's pod labels: k=v, k!=v, k, !k, comma = and\n"
		"  --verdict V            FORWARDED, DROPPED, AUDIT or TRANSLATED\n"
		"  --drop-reason R        a drop reason (drop-policy or policy, drop-spoofed-src, ...;\n"
		"                         sluicectl metrics lists them)\n"
		"  --protocol P           TCP, UDP, ICMP, SCTP or a number\n"
		"  --port N               either side's port\n"
		"  --policy NS/NAME       the policy that allowed or denied it, or isolated the pod\n"
		"                         (NAME alone: a SluiceClusterNetworkPolicy)\n"
		"  --service NS/NAME      to that Service's frontend\n"
		"  --since DURATION       recent flows only: 30s, 5m, 2h, 1d (seconds without a unit)\n"
		"  --last N               the newest N matching flows\n"
		"  --follow, -F           then print new matching flows as they come (every 200 ms)\n"
		"                         until interrupted; without --last, only new ones\n"
		"\n"
		"Objects and policy:\n"
		"  apply -f FILE [--validate=strict|warn|ignore]\n"
		"                         create or update the objects in FILE; prints one line per\n"
		"                         object: created, configured or unchanged, and a note in\n"
		"                         parentheses when there is one (an EndpointSlice kept but\n"
		"                         not used, a Service ignored as kube-proxy ignores it)\n"
		"  delete -f FILE [--ignore-not-found]\n"
		"                         delete the objects FILE names\n"
		"  get namespaces         NAME LABELS                         (also: namespace, ns)\n"
		"  get pods               NAMESPACE NAME IP IDENTITY LOCAL LABELS  (also: pod, po)\n"
		"  get policies           KIND NAMESPACE NAME TYPES MODE SELECTED STATUS\n"
		"                         (also: policy, netpol, netpols, networkpolicies);\n"
		"                         SELECTED: the pods a policy selects, the first 1000\n"
		"                         and \"… (N in all)\" when there are more\n"
		"  get identities         ID NAMESPACE LABELS PODS     (also: identity, id, ids)\n"
		"  get nodes              NAME POD-CIDR ADDRESS STATE  (also: node, no)\n"
		"  get services           NAMESPACE NAME TYPE FRONTENDS BACKENDS TRAFFIC AFFINITY\n"
		"                         TRANSLATED STATUS (also: service, svc): each Service's\n"
		"                         frontends (a nodePort at this node's address), backends\n"
		"                         (ready, serving or terminating; local or remote),\n"
		"                         traffic policies, affinity, and whether this node\n"
		"                         translates it (yes) or leaves it to kube-proxy (no)\n"
		"  get prefilters         NAME ENTRIES APPLIED DROPPED-PACKETS NODE-SELECTOR-MATCH\n"
		"                         STATUS (also: prefilter, pf): the SluicePrefilters, whether\n"
		"                         each applies on this node, entries left out and why;\n"
		"                         -o json adds each deny entry's drops (packets, bytes)\n"
		"  get prefilter NAME     one SluicePrefilter and each deny entry's drops\n"
		"  policy explain --from SRC --to DST --port PORT[/PROTOCOL]\n"
		"  policy explain --from SRC --to ADDRESS:PORT[/PROTOCOL]\n"
		"                         would the agent let SRC reach DST? SRC and DST are\n"
		"                         NAMESPACE/POD or an IPv4 address; PROTOCOL is TCP (the\n"
		"                         default), UDP, SCTP, or ICMP with PORT the ICMP type.\n"
		"                         Prints ALLOWED or DENIED, the agent's summary and the\n"
		"                         egress and ingress verdicts with their reasons. When\n"
		"                         DST and the port are a Service frontend (a clusterIP,\n"
		"                         externalIP, load-balancer address, or this node's\n"
		"                         address and a nodePort): the backends a new flow\n"
		"                         chooses from and how, and the verdict for each;\n"
		"                         ALLOWED when every one is allowed\n"
		"\n"
		"Options:\n"
		"  --socket PATH          agent socket (default: $SLUICE_SOCKET, else %s)\n"
		"  -f, --filename FILE    apply/delete: a manifest; repeat for several; - reads stdin\n"
		"  --ignore-not-found     delete: an object that does not exist is not an error\n"
		"  --validate=MODE        apply: a field the object's kind does not have (a typo:\n"
		"                         spec.ingres) is an error that applies nothing (strict,\n"
		"                         the default; also true), a warning on stderr (warn), or\n"
		"                         nothing (ignore; also false); as kubectl's --validate\n"
		"  -o, --output json      print the agent's JSON result instead of text\n"
		"  --limit N              top: rows (default 20)\n"
		"  --chunk-size N         get: fetch N objects per request (default %d) and print\n"
		"                         each page as it comes, one table (columns aligned\n"
		"                         within a page) or one JSON list; 0: everything in one\n"
		"                         answer, which fails past the API's %u MiB\n"
		"  -h, --help             this help\n"
		"\n"
		"Manifests are YAML (documents separated by ---) or JSON, one Kubernetes object\n"
		"per document; a kind: List contributes its items. Plain YAML values are typed as\n"
		"kubectl types them: port: 80 is a number, port: \"80\" and port: http are strings,\n"
		"true/false/yes/no/on/off are booleans, null/~/nothing is null. apply and delete are\n"
		"all or nothing: if a file cannot be read or parsed, nothing is sent to the agent,\n"
		"and if the agent rejects one object, nothing changes.\n"
		"\n"
		"Exit status:\n"
		"  0  success; for policy explain: the traffic is allowed\n"
		"  1  the agent answered with an error, or a manifest cannot be read or parsed;\n"
		"     for policy explain: the traffic is denied (an error also says why on stderr)\n"
		"  2  usage error\n"
		"  3  the agent cannot be reached\n"
		"\n"
		"Examples:\n"
		"  sluicectl apply -f namespaces.yaml -f policies.yaml\n"
		"  cat policy.json | sluicectl apply -f -\n"
		"  sluicectl delete -f policies.yaml --ignore-not-found\n"
		"  sluicectl get pods -o json\n"
		"  sluicectl observe --from-pod shop/frontend --to-pod shop/db-0 --last 5\n"
		"  sluicectl observe --verdict DROPPED --namespace shop --follow\n"
		"  sluicectl top pods\n"
		"  sluicectl policy explain --from shop/frontend --to shop/db-0 --port 5432\n"
		"  sluicectl policy explain --from 10.244.1.7 --to shop/db-0 --port 8/ICMP\n"
		"  sluicectl policy explain --from shop/frontend --to 10.96.0.20:5432/TCP\n",
		SLUICE_DEFAULT_SOCKET, CHUNK_DEFAULT, SLUICE_API_MAX_MSG >> 20);
}

static const char *str(const json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s && *s ? s : "-";
}

/* ---- node state ------------------------------------------------------ */

static void print_sync(const char *label, const json_t *sy)
{
	if (!json_is_object(sy)) {
		printf("%s none yet\n", label);
		return;
	}
	printf("%s %s at %s, %.2f ms, %lld entries (%lld written, %lld removed)\n", label,
	       json_is_true(json_object_get(sy, "ok")) ? "done" : "FAILED", str(sy, "at"),
	       json_real_value(json_object_get(sy, "durationMs")),
	       (long long)json_integer_value(json_object_get(sy, "entries")),
	       (long long)json_integer_value(json_object_get(sy, "written")),
	       (long long)json_integer_value(json_object_get(sy, "removed")));
}

/* Objects per kind, the store's bytes, the agent's memory, the last syncs. */
static void print_control_plane(const json_t *cp)
{
	const json_t *mem = json_object_get(cp, "memory"), *n;
	const char *kind;
	bool first = true;

	printf("objects:     %lld (", (long long)json_integer_value(json_object_get(cp,
										"objectCount")));
	json_object_foreach((json_t *)json_object_get(cp, "objects"), kind, n) {
		if (!json_integer_value(n))
			continue;
		printf("%s%s %lld", first ? "" : ", ", kind, (long long)json_integer_value(n));
		first = false;
	}
	printf("%s), %.1f MiB stored\n", first ? "none" : "",
	       (double)json_integer_value(json_object_get(cp, "storeBytes")) / (1 << 20));
	printf("memory:      %.1f MiB resident, %.1f MiB at the peak (VmRSS, VmHWM); heap %.1f "
	       "MiB in use, %.1f MiB free\n",
	       (double)json_integer_value(json_object_get(mem, "vmRSS")) / (1 << 20),
	       (double)json_integer_value(json_object_get(mem, "vmHWM")) / (1 << 20),
	       (double)json_integer_value(json_object_get(mem, "heapInUse")) / (1 << 20),
	       (double)json_integer_value(json_object_get(mem, "heapFree")) / (1 << 20));
	print_sync("policy sync:", json_object_get(cp, "lastPolicySync"));
	print_sync("svc sync:   ", json_object_get(cp, "lastServicesSync"));
	printf("syncs:       %lld policy, %lld Services since the agent started\n",
	       (long long)json_integer_value(json_object_get(cp, "policySyncs")),
	       (long long)json_integer_value(json_object_get(cp, "servicesSyncs")));
	if ((n = json_object_get(cp, "compiler")))
		printf("compiler:    %lld incremental, %lld full syncs; %lld pods in %lld identity "
		       "groups, %lld cached selectors, %lld ipBlock prefixes\n",
		       (long long)json_integer_value(json_object_get(n, "incrementalSyncs")),
		       (long long)json_integer_value(json_object_get(n, "fullSyncs")),
		       (long long)json_integer_value(json_object_get(n, "pods")),
		       (long long)json_integer_value(json_object_get(n, "identityGroups")),
		       (long long)json_integer_value(json_object_get(n, "selectorCacheEntries")),
		       (long long)json_integer_value(json_object_get(n, "ipBlockPrefixes")));
}

static int print_status(const json_t *r)
{
	const json_t *ipam = json_object_get(r, "ipam");

	printf("node:        %s\n", str(r, "node"));
	printf("ready:       %s\n", json_is_true(json_object_get(r, "ready")) ? "yes" : "no");
	printf("pod CIDR:    %s (router %s)\n", str(r, "podCIDR"), str(r, "routerIP"));
	printf("attach mode: %s\n", str(r, "attachMode"));
	printf("routing:     %s\n", str(r, "routing"));
	printf("endpoints:   %lld\n", (long long)json_integer_value(json_object_get(r, "endpoints")));
	printf("addresses:   %lld used, %lld free\n",
	       (long long)json_integer_value(json_object_get(ipam, "used")),
	       (long long)json_integer_value(json_object_get(ipam, "free")));
	if (json_is_object(json_object_get(r, "flows"))) {
		const json_t *f = json_object_get(r, "flows"), *l = json_object_get(f, "lost");

		printf("flows:       %lld of %lld kept, %lld received; lost: %lld overwritten, "
		       "%lld ring buffer full, %lld rate-limited drops, %lld flow table full\n",
		       json_integer_value(json_object_get(f, "used")),
		       json_integer_value(json_object_get(f, "capacity")),
		       json_integer_value(json_object_get(f, "received")),
		       json_integer_value(json_object_get(l, "overwritten")),
		       json_integer_value(json_object_get(l, "ringBufferFull")),
		       json_integer_value(json_object_get(l, "rateLimited")),
		       json_integer_value(json_object_get(l, "mapFull")));
	}
	printf("version:     %s\n", str(r, "version"));
	/* Objects enforced in their fail-closed reading, or refused: worth a
	 * line only when there are some. */
	if (json_integer_value(json_object_get(r, "degradedPolicies")))
		printf("degraded:    %lld policies sluice cannot fully represent (see sluicectl get "
		       "policies)\n",
		       (long long)json_integer_value(json_object_get(r, "degradedPolicies")));
	if (json_integer_value(json_object_get(r, "refusedNodes")))
		printf("refused:     %lld Node objects (see sluicectl get nodes)\n",
		       (long long)json_integer_value(json_object_get(r, "refusedNodes")));
	if (json_integer_value(json_object_get(r, "refusedServices")))
		printf("refused:     %lld Services not used (see sluicectl get services)\n",
		       (long long)json_integer_value(json_object_get(r, "refusedServices")));
	/* The DELs sluice-cni queued while no agent ran (docs/CNI.md). */
	{
		const json_t *q = json_object_get(r, "delQueue");
		json_int_t done = json_integer_value(json_object_get(q, "replayed"));
		json_int_t failed = json_integer_value(json_object_get(q, "failed"));
		json_int_t bad = json_integer_value(json_object_get(q, "malformed"));

		if (done || failed || bad)
			printf("del queue:   %lld DELs queued while no agent ran replayed at start, "
			       "%lld failed, %lld malformed (set aside: see the agent's log)\n",
			       (long long)(done + failed), (long long)failed, (long long)bad);
	}
	if (json_integer_value(json_object_get(r, "unusedEndpointSlices")))
		printf("unused:      %lld EndpointSlices kept but not used (IPv6, FQDN, no Service "
		       "label or unreadable)\n",
		       (long long)json_integer_value(json_object_get(r, "unusedEndpointSlices")));
	if (json_object_get(r, "services")) {
		const json_t *s = json_object_get(r, "services");

		const json_t *hc = json_object_get(s, "healthChecks"), *l;
		size_t i;

		if (json_is_true(json_object_get(s, "kubeProxyReplacement"))) {
			printf("services:    pods' Service traffic translated here (%lld frontends, "
			       "%lld backends); %lld for clients outside the cluster\n",
			       (long long)json_integer_value(json_object_get(s, "frontends")),
			       (long long)json_integer_value(json_object_get(s, "backends")),
			       (long long)json_integer_value(json_object_get(s, "extEntries")));
			json_array_foreach(hc, i, l)
				printf("health:      %s/%s on port %lld: %s, %lld local endpoints\n",
				       str(l, "namespace"), str(l, "name"),
				       (long long)json_integer_value(json_object_get(l, "port")),
				       json_is_true(json_object_get(l, "listening")) ? "listening"
										   : "not bound",
				       (long long)json_integer_value(json_object_get(l, "localEndpoints")));
		} else
			printf("services:    kube-proxy's (--kube-proxy-replacement off)\n");
	}
	{
		const json_t *x;
		size_t i;

		json_array_foreach(json_object_get(r, "xdp"), i, x) {
			const char *why = json_string_value(json_object_get(x, "fallbackReason"));

			if (!why)
				why = "";

			printf("xdp:         %s (driver %s): %s requested, %s in use%s%s\n",
			       str(x, "device"), str(x, "driver"), str(x, "requested"), str(x, "mode"),
			       *why ? "; fell back: " : "", why);
			if (json_object_get(x, "services"))
				printf("xdp:         north-south Services: %lld packets sent at XDP, "
				       "%lld left to tc (sluicectl metrics: why)\n",
				       (long long)json_integer_value(
					       json_object_get(json_object_get(x, "services"), "sent")),
				       (long long)json_integer_value(json_object_get(
					       json_object_get(x, "services"), "leftToTc")));
		}
	}
	if (json_object_get(r, "controlPlane"))
		print_control_plane(json_object_get(r, "controlPlane"));
	if (json_object_get(r, "kubernetes")) {
		const json_t *k = json_object_get(r, "kubernetes"), *res;
		size_t i;

		printf("kubernetes:  %s (%s), %s\n", str(k, "server"), str(k, "source"),
		       json_is_true(json_object_get(k, "connected")) ? "connected"
								   : "not connected");
		json_array_foreach(json_object_get(k, "resources"), i, res) {
			const char *e = json_string_value(json_object_get(res, "lastError")) ?: "";

			printf("  %-27s rv %-10s events %-6lld relists %lld%s%s\n", str(res, "kind"),
			       str(res, "resourceVersion"),
			       (long long)json_integer_value(json_object_get(res, "events")),
			       (long long)json_integer_value(json_object_get(res, "relists")),
			       *e && !json_is_true(json_object_get(res, "connected")) ? "  last error: "
										      : "",
			       *e && !json_is_true(json_object_get(res, "connected")) ? e : "");
		}
	}
	return 0;
}

static int print_endpoints(const json_t *r)
{
	const json_t *eps = json_object_get(r, "endpoints"), *e;
	size_t i;

	printf("%-20s %-28s %-6s %-15s %-15s %-7s %-10s %-10s %s\n", "CONTAINER", "NAMESPACE/POD",
	       "IFACE", "IP", "HOST-IFACE", "IFINDEX", "EGRESS-BW", "INGRESS-BW", "STATE");
	json_array_foreach(eps, i, e) {
		const json_t *bw = json_object_get(e, "bandwidth");
		char pod[80], egress[16], ingress[16];

		snprintf(pod, sizeof(pod), "%s/%s", str(e, "namespace"), str(e, "pod"));
		/* Rates in bit/s as runtimeConfig.bandwidth gives them; "-": none. */
		bw_format_rate((uint64_t)json_integer_value(json_object_get(bw, "egressRate")),
			       egress, sizeof(egress));
		bw_format_rate((uint64_t)json_integer_value(json_object_get(bw, "ingressRate")),
			       ingress, sizeof(ingress));
		printf("%-20.20s %-28.28s %-6s %-15s %-15s %-7lld %-10s %-10s %s\n",
		       str(e, "containerId"), pod, str(e, "ifname"), str(e, "ip"),
		       str(e, "hostIfname"),
		       (long long)json_integer_value(json_object_get(e, "hostIfindex")), egress, ingress,
		       str(e, "state"));
	}
	return 0;
}

static int print_metrics(const json_t *r)
{
	const json_t *ms = json_object_get(r, "metrics"), *m;
	size_t i;

	printf("%-24s %-8s %12s %14s\n", "REASON", "DIR", "PACKETS", "BYTES");
	json_array_foreach(ms, i, m)
		printf("%-24s %-8s %12lld %14lld\n", str(m, "reason"), str(m, "direction"),
		       (long long)json_integer_value(json_object_get(m, "packets")),
		       (long long)json_integer_value(json_object_get(m, "bytes")));
	ms = json_object_get(r, "prefilters");
	if (json_array_size(ms))
		printf("\n%-33s %12s %14s\n", "PREFILTER", "DROPPED", "BYTES");
	json_array_foreach(ms, i, m)
		printf("%-33s %12lld %14lld\n", str(m, "name"),
		       (long long)json_integer_value(json_object_get(m, "packets")),
		       (long long)json_integer_value(json_object_get(m, "bytes")));
	/* Stage 2 of the XDP program: Service packets it left to tc, by cause. */
	ms = json_object_get(r, "xdpFallThrough");
	if (json_array_size(ms)) {
		printf("\n%-24s %-8s %12s %14s\n", "XDP FALL-THROUGH", "", "PACKETS", "BYTES");
		json_array_foreach(ms, i, m)
			printf("%-24s %-8s %12lld %14lld\n", str(m, "cause"), "ingress",
			       (long long)json_integer_value(json_object_get(m, "packets")),
			       (long long)json_integer_value(json_object_get(m, "bytes")));
	}
	return 0;
}

/* ---- tables ---------------------------------------------------------- */

/* Rows of strings printed with columns as wide as their widest cell. */
struct table {
	size_t ncol, nrow, cap;
	char **cell; /* nrow * ncol, owned */
};

/* Add a row of t->ncol cells; the cells are taken over (NULL: out of memory). */
static int table_row(struct table *t, char **cells)
{
	size_t i;
	int ret = 0;

	for (i = 0; i < t->ncol; i++)
		if (!cells[i])
			ret = -ENOMEM;
	if (!ret && t->nrow == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 16;
		char **cell = reallocarray(t->cell, cap * t->ncol, sizeof(*cell));

		if (!cell) {
			ret = -ENOMEM;
		} else {
			t->cell = cell;
			t->cap = cap;
		}
	}
	if (ret) {
		for (i = 0; i < t->ncol; i++)
			free(cells[i]);
		return ret;
	}
	memcpy(&t->cell[t->nrow * t->ncol], cells, t->ncol * sizeof(*cells));
	t->nrow++;
	return 0;
}

static void table_print(const struct table *t)
{
	size_t w[16] = { 0 }, r, c;

	for (r = 0; r < t->nrow; r++)
		for (c = 0; c < t->ncol && c < 16; c++)
			if (strlen(t->cell[r * t->ncol + c]) > w[c])
				w[c] = strlen(t->cell[r * t->ncol + c]);
	for (r = 0; r < t->nrow; r++)
		for (c = 0; c < t->ncol; c++)
			printf(c + 1 < t->ncol ? "%-*s   " : "%-*s\n",
			       c + 1 < t->ncol ? (int)w[c] : 0, t->cell[r * t->ncol + c]);
}

static void table_free(struct table *t)
{
	size_t i;

	for (i = 0; i < t->nrow * t->ncol; i++)
		free(t->cell[i]);
	free(t->cell);
}

static char *dup_str(const json_t *obj, const char *key)
{
	return strdup(str(obj, key));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* k=v,k=v sorted by key; "<none>" for none. NULL when out of memory. */
static char *labels_text(const json_t *labels)
{
	size_t n = json_object_size(labels), i = 0, len;
	const char *key, **keys = NULL;
	char *out = NULL;
	json_t *v;
	FILE *f;

	if (!n)
		return strdup("<none>");
	keys = calloc(n, sizeof(*keys));
	if (!keys)
		return NULL;
	json_object_foreach((json_t *)labels, key, v)
		keys[i++] = key;
	qsort(keys, n, sizeof(*keys), cmp_str);
	f = open_memstream(&out, &len);
	if (!f)
		goto cleanup;
	for (i = 0; i < n; i++) {
		const char *s = json_string_value(json_object_get(labels, keys[i]));

		fprintf(f, "%s%s=%s", i ? "," : "", keys[i], s ? s : "?");
	}
	if (fclose(f)) {
		free(out);
		out = NULL;
	}
cleanup:
	free(keys);
	return out;
}

/* Strings of an array joined by commas; "<none>" for none. */
static char *join_text(const json_t *arr)
{
	const json_t *v;
	char *out = NULL;
	size_t i, len;
	FILE *f;

	if (!json_array_size(arr))
		return strdup("<none>");
	f = open_memstream(&out, &len);
	if (!f)
		return NULL;
	json_array_foreach(arr, i, v)
		fprintf(f, "%s%s", i ? "," : "", json_is_string(v) ? json_string_value(v) : "?");
	if (fclose(f)) {
		free(out);
		return NULL;
	}
	return out;
}

/* A policy's SELECTED cell: the names the agent sent and, when it sent
 * the first ones only (selectedPodsCount is larger), how many in all. */
static char *selected_text(const json_t *it)
{
	const json_t *names = json_object_get(it, "selectedPods");
	json_int_t count = json_integer_value(json_object_get(it, "selectedPodsCount"));
	char *list = join_text(names), *out;

	if (!list || count <= (json_int_t)json_array_size(names))
		return list;
	if (asprintf(&out, "%s,… (%lld in all)", list, (long long)count) < 0)
		out = NULL;
	free(list);
	return out;
}

static char *int_text(const json_t *v)
{
	char *out;

	if (!json_is_integer(v))
		return strdup("-");
	return asprintf(&out, "%lld", (long long)json_integer_value(v)) < 0 ? NULL : out;
}

/* A policy's STATUS cell: Enforced; Degraded with the first reason (a
 * policy from the API that sluice enforces in its fail-closed reading); or
 * NotEnforced with the reason (left out of the maps: it does not fit). */
static char *status_text(const json_t *it)
{
	const char *st = json_string_value(json_object_get(it, "status"));
	const char *why = json_string_value(json_object_get(it, "statusReason"));
	json_int_t more = 0;
	char *out;

	if (!st)
		return strdup("-");
	if (!why) {
		why = json_string_value(json_object_get(it, "reason"));
		more = json_integer_value(json_object_get(it, "degradedParts")) - 1;
	}
	if (!why)
		return strdup(st);
	if (more > 0)
		return asprintf(&out, "%s: %s (+%lld more)", st, why, (long long)more) < 0 ? NULL
											    : out;
	return asprintf(&out, "%s: %s", st, why) < 0 ? NULL : out;
}

enum get_what { GET_NAMESPACES, GET_PODS, GET_POLICIES, GET_IDENTITIES, GET_NODES, GET_SERVICES,
		GET_PREFILTERS };

/* A Service's BACKENDS cell: address:port state local|remote, for each
 * port's backends; "<none>" for none. */
static char *backends_text(const json_t *ports)
{
	const json_t *p, *b;
	char *out = NULL;
	size_t i, j, len, n = 0;
	FILE *f = open_memstream(&out, &len);

	if (!f)
		return NULL;
	json_array_foreach(ports, i, p)
		json_array_foreach(json_object_get(p, "backends"), j, b)
			fprintf(f, "%s%s:%lld %s %s", n++ ? "," : "", str(b, "address"),
				(long long)json_integer_value(json_object_get(b, "port")),
				str(b, "state"),
				json_is_true(json_object_get(b, "local")) ? "local" : "remote");
	if (!n)
		fputs("<none>", f);
	if (fclose(f)) {
		free(out);
		return NULL;
	}
	return out;
}

static char *frontends_text(const json_t *fes)
{
	json_t *arr = json_array(), *f;
	char *out;
	size_t i;

	json_array_foreach(fes, i, f) {
		char buf[64];

		/* A nodePort as this node has it: its address, not "*". */
		if (json_string_value(json_object_get(f, "nodeAddress")) &&
		    !strcmp(str(f, "kind"), "NodePort")) {
			snprintf(buf, sizeof(buf), "%s:%lld/%s", str(f, "nodeAddress"),
				 (long long)json_integer_value(json_object_get(f, "port")),
				 str(f, "protocol"));
			json_array_append_new(arr, json_string(buf));
		} else {
			json_array_append_new(arr, json_string(str(f, "frontend")));
		}
	}
	out = join_text(arr);
	json_decref(arr);
	return out;
}

/* A prefilter's STATUS cell: why it is not applied, and its entries left
 * out with their reasons (detail answers), or how many. */
static char *prefilter_status_text(const json_t *it)
{
	const json_t *left = json_object_get(it, "leftOut"), *l;
	json_int_t nleft = json_integer_value(json_object_get(it, "leftOutEntries"));
	char *out = NULL;
	size_t i, len;
	FILE *f = open_memstream(&out, &len);

	if (!f)
		return NULL;
	if (json_string_value(json_object_get(it, "reason")))
		fputs(str(it, "reason"), f);
	json_array_foreach(left, i, l)
		fprintf(f, "%s%s: left out", ftell(f) ? "; " : "", str(l, "reason"));
	if (nleft && !json_array_size(left))
		fprintf(f, "%s%lld entries left out (see get prefilter NAME)", ftell(f) ? "; " : "",
			(long long)nleft);
	if (!ftell(f))
		fputs("ok", f);
	if (fclose(f)) {
		free(out);
		return NULL;
	}
	return out;
}

/* The rows of one answer, after the header when header is set. */
static int print_items_h(const json_t *r, enum get_what what, bool header)
{
	static const char *const heads[][9] = {
		[GET_NAMESPACES] = { "NAME", "LABELS" },
		[GET_PODS] = { "NAMESPACE", "NAME", "IP", "IDENTITY", "LOCAL", "LABELS" },
		[GET_POLICIES] = { "KIND", "NAMESPACE", "NAME", "TYPES", "MODE", "SELECTED",
				   "STATUS" },
		[GET_IDENTITIES] = { "ID", "NAMESPACE", "LABELS", "PODS" },
		[GET_NODES] = { "NAME", "POD-CIDR", "ADDRESS", "STATE" },
		[GET_SERVICES] = { "NAMESPACE", "NAME", "TYPE", "FRONTENDS", "BACKENDS", "TRAFFIC",
				   "AFFINITY", "TRANSLATED", "STATUS" },
		[GET_PREFILTERS] = { "NAME", "ENTRIES", "APPLIED", "DROPPED PACKETS",
				     "NODE SELECTOR MATCH", "STATUS" },
	};
	static const size_t ncols[] = { [GET_NAMESPACES] = 2, [GET_PODS] = 6,
					[GET_POLICIES] = 7, [GET_IDENTITIES] = 4,
					[GET_NODES] = 4, [GET_SERVICES] = 9,
					[GET_PREFILTERS] = 6 };
	struct table t = { .ncol = ncols[what] };
	const json_t *items = json_object_get(r, "items"), *it;
	char *cells[9];
	size_t i, c;
	int ret;

	ret = 0;
	if (header) {
		for (c = 0; c < t.ncol; c++)
			cells[c] = strdup(heads[what][c]);
		ret = table_row(&t, cells);
	}
	json_array_foreach(items, i, it) {
		if (ret)
			break;
		switch (what) {
		case GET_NAMESPACES:
			cells[0] = dup_str(it, "name");
			cells[1] = labels_text(json_object_get(it, "labels"));
			break;
		case GET_PODS:
			cells[0] = dup_str(it, "namespace");
			cells[1] = dup_str(it, "name");
			cells[2] = dup_str(it, "ip");
			cells[3] = int_text(json_object_get(it, "identity"));
			cells[4] = strdup(json_is_true(json_object_get(it, "local")) ? "yes" : "no");
			cells[5] = labels_text(json_object_get(it, "labels"));
			break;
		case GET_POLICIES:
			cells[0] = dup_str(it, "kind");
			cells[1] = dup_str(it, "namespace");
			cells[2] = dup_str(it, "name");
			cells[3] = join_text(json_object_get(it, "policyTypes"));
			cells[4] = dup_str(it, "mode");
			cells[5] = selected_text(it);
			cells[6] = status_text(it);
			break;
		case GET_IDENTITIES:
			cells[0] = int_text(json_object_get(it, "id"));
			cells[1] = dup_str(it, "namespace");
			cells[2] = labels_text(json_object_get(it, "labels"));
			cells[3] = join_text(json_object_get(it, "pods"));
			break;
		case GET_NODES:
			cells[0] = dup_str(it, "name");
			cells[1] = dup_str(it, "podCIDR");
			cells[2] = dup_str(it, "address");
			cells[3] = dup_str(it, "state");
			break;
		case GET_SERVICES:
			cells[0] = dup_str(it, "namespace");
			cells[1] = dup_str(it, "name");
			cells[2] = dup_str(it, "type");
			cells[3] = frontends_text(json_object_get(it, "frontends"));
			cells[4] = backends_text(json_object_get(it, "ports"));
			if (asprintf(&cells[5], "eTP=%s,iTP=%s", str(it, "externalTrafficPolicy"),
				     str(it, "internalTrafficPolicy")) < 0)
				cells[5] = NULL;
			if (strcmp(str(it, "sessionAffinity"), "ClientIP"))
				cells[6] = dup_str(it, "sessionAffinity");
			else if (asprintf(&cells[6], "ClientIP(%llds)",
					  (long long)json_integer_value(
						  json_object_get(it, "affinityTimeoutSeconds"))) < 0)
				cells[6] = NULL;
			/* translated by this node's datapath, or left to kube-proxy */
			cells[7] = strdup(json_is_true(json_object_get(it, "translated"))
						  ? "yes" : "no");
			cells[8] = status_text(it);
			break;
		case GET_PREFILTERS:
			cells[0] = dup_str(it, "name");
			if (json_integer_value(json_object_get(it, "leftOutEntries"))) {
				if (asprintf(&cells[1], "%lld (%lld left out)",
					     (long long)json_integer_value(json_object_get(it, "entries")),
					     (long long)json_integer_value(
						     json_object_get(it, "leftOutEntries"))) < 0)
					cells[1] = NULL;
			} else {
				cells[1] = int_text(json_object_get(it, "entries"));
			}
			cells[2] = strdup(json_is_true(json_object_get(it, "applied")) ? "yes" : "no");
			cells[3] = int_text(json_object_get(json_object_get(it, "dropped"), "packets"));
			if (!json_string_value(json_object_get(it, "nodeSelector")) ||
			    !*json_string_value(json_object_get(it, "nodeSelector")))
				cells[4] = strdup(json_is_true(json_object_get(it, "nodeSelectorMatch"))
							  ? "yes (all nodes)" : "no");
			else if (asprintf(&cells[4], "%s (%s)",
					  json_is_true(json_object_get(it, "nodeSelectorMatch")) ? "yes"
												   : "no",
					  str(it, "nodeSelector")) < 0)
				cells[4] = NULL;
			cells[5] = prefilter_status_text(it);
			break;
		}
		ret = table_row(&t, cells);
	}
	if (!ret)
		table_print(&t);
	table_free(&t);
	return ret;
}

static int print_items(const json_t *r, enum get_what what)
{
	return print_items_h(r, what, true);
}

static int print_namespaces(const json_t *r) { return print_items(r, GET_NAMESPACES); }
static int print_pods(const json_t *r) { return print_items(r, GET_PODS); }
static int print_policies(const json_t *r) { return print_items(r, GET_POLICIES); }
static int print_identities(const json_t *r) { return print_items(r, GET_IDENTITIES); }
static int print_nodes(const json_t *r) { return print_items(r, GET_NODES); }
static int print_prefilters(const json_t *r) { return print_items(r, GET_PREFILTERS); }

/* get prefilter NAME: the table row, then each deny entry with its drops. */
static int print_prefilter(const json_t *r)
{
	json_t *wrap = json_pack("{s:[O]}", "items", r);
	const json_t *e;
	size_t i;
	int ret;

	if (!wrap)
		return -ENOMEM;
	ret = print_items(wrap, GET_PREFILTERS);
	json_decref(wrap);
	if (ret)
		return ret;
	printf("\n%-20s %-8s %12s %14s\n", "DENY", "APPLIED", "PACKETS", "BYTES");
	json_array_foreach(json_object_get(r, "deny"), i, e)
		printf("%-20s %-8s %12lld %14lld\n", str(e, "cidr"),
		       json_is_true(json_object_get(e, "applied")) ? "yes" : "no",
		       (long long)json_integer_value(
			       json_object_get(json_object_get(e, "dropped"), "packets")),
		       (long long)json_integer_value(
			       json_object_get(json_object_get(e, "dropped"), "bytes")));
	return 0;
}

static int print_services(const json_t *r)
{
	int ret = print_items(r, GET_SERVICES);

	if (!ret && json_string_value(json_object_get(r, "note")))
		printf("\nNote: %s.\n", json_string_value(json_object_get(r, "note")));
	return ret;
}

/* ---- apply, delete, explain ------------------------------------------ */

/* networkpolicy x/deny-all created; namespace x unchanged */
static int print_changes(const json_t *r)
{
	const json_t *changes = json_object_get(r, "changes"), *ch;
	size_t i;

	json_array_foreach(changes, i, ch) {
		const char *ns = json_string_value(json_object_get(ch, "namespace"));
		const char *kind = str(ch, "kind");
		size_t k;

		for (k = 0; kind[k]; k++)
			putchar(kind[k] >= 'A' && kind[k] <= 'Z' ? kind[k] - 'A' + 'a' : kind[k]);
		printf(" %s%s%s %s", ns && *ns ? ns : "", ns && *ns ? "/" : "", str(ch, "name"),
		       str(ch, "action"));
		if (json_string_value(json_object_get(ch, "note")))
			printf(" (%s)", json_string_value(json_object_get(ch, "note")));
		putchar('\n');
	}
	return 0;
}

static void print_verdict(const char *dir, const json_t *v)
{
	const json_t *rule = json_object_get(v, "rule"), *deny = json_object_get(v, "denyRule");
	const char *policy = json_string_value(json_object_get(v, "policy"));
	const char *sep = " [";

	if (!json_is_object(v)) {
		printf("  %-8s -\n", dir);
		return;
	}
	printf("  %-8s %-8s %s", dir,
	       json_is_true(json_object_get(v, "allowed")) ? "allowed" : "denied", str(v, "reason"));
	if (policy) {
		printf("%s%s", sep, policy);
		sep = ", ";
	}
	if (json_is_integer(rule) && json_integer_value(rule) >= 0) {
		printf("%s%srule %lld", sep, json_is_true(deny) ? "deny " : "",
		       (long long)json_integer_value(rule));
		sep = ", ";
	}
	if (json_is_true(json_object_get(v, "auditOnly"))) {
		printf("%saudit only", sep);
		sep = ", ";
	}
	printf("%s\n", strcmp(sep, " [") ? "]" : "");
}

static int print_explain(const json_t *r)
{
	const char *summary = json_string_value(json_object_get(r, "summary"));
	const json_t *svc = json_object_get(r, "service"), *c;
	size_t i;

	printf("%s\n", json_is_true(json_object_get(r, "allowed")) ? "ALLOWED" : "DENIED");
	if (summary && *summary)
		printf("%s\n", summary);
	if (!svc) {
		print_verdict("egress:", json_object_get(r, "egress"));
		print_verdict("ingress:", json_object_get(r, "ingress"));
		return 0;
	}
	/* --to a Service frontend: the backends a new flow chooses from, then
	 * each one's verdict (policy sees the backend, not the frontend). */
	printf("service:    %s (%s), frontend %s (%s), %s\n", str(svc, "name"), str(svc, "type"),
	       str(svc, "frontend"), str(svc, "frontendKind"),
	       json_is_true(json_object_get(svc, "translated")) ? "translated by sluice"
								 : "left to kube-proxy");
	printf("candidates: %s\n", str(svc, "candidatesFrom"));
	printf("algorithm:  %s\n", str(svc, "algorithm"));
	json_array_foreach(json_object_get(svc, "candidates"), i, c) {
		const json_t *ex = json_object_get(c, "explain");

		printf("backend %s:%lld %s %s%s%s: %s\n", str(c, "address"),
		       (long long)json_integer_value(json_object_get(c, "port")), str(c, "state"),
		       json_is_true(json_object_get(c, "local")) ? "local" : "remote",
		       json_string_value(json_object_get(c, "pod")) ? " pod " : "",
		       json_string_value(json_object_get(c, "pod")) ? str(c, "pod") : "",
		       json_is_true(json_object_get(ex, "allowed")) ? "ALLOWED" : "DENIED");
		print_verdict("egress:", json_object_get(ex, "egress"));
		print_verdict("ingress:", json_object_get(ex, "ingress"));
	}
	json_array_foreach(json_object_get(svc, "notForNewFlows"), i, c)
		printf("not for new flows: %s:%lld %s %s\n", str(c, "address"),
		       (long long)json_integer_value(json_object_get(c, "port")), str(c, "state"),
		       json_is_true(json_object_get(c, "local")) ? "local" : "remote");
	return 0;
}

/* NAMESPACE/POD or a dotted IPv4 address */
static bool valid_endpoint(const char *s)
{
	const char *slash = strchr(s, '/');
	struct in_addr a;

	if (slash)
		return slash != s && slash[1] && !strchr(slash + 1, '/');
	return inet_pton(AF_INET, s, &a) == 1;
}

/* --to ADDRESS:PORT[/PROTOCOL] (a Service frontend): split at the colon
 * into addr (of len bytes) and the port part; NULL when there is none. */
static const char *split_to(const char *to, char *addr, size_t len)
{
	const char *colon = strchr(to, ':');

	if (!colon || (size_t)(colon - to) >= len)
		return NULL;
	memcpy(addr, to, (size_t)(colon - to));
	addr[colon - to] = '\0';
	return colon + 1;
}

/* PORT[/PROTOCOL]: 80, 53/udp, 8/ICMP (an ICMP type). */
static int parse_port(const char *s, long *port, const char **proto)
{
	static const char *const protos[] = { "TCP", "UDP", "SCTP", "ICMP" };
	const char *slash = strchr(s, '/');
	char *end;
	size_t i;

	errno = 0;
	*port = strtol(s, &end, 10);
	if (end == s || errno || (slash ? end != slash : *end))
		return -EINVAL;
	*proto = "TCP";
	if (slash) {
		*proto = NULL;
		for (i = 0; i < sizeof(protos) / sizeof(protos[0]); i++)
			if (!strcasecmp(slash + 1, protos[i]))
				*proto = protos[i];
		if (!*proto)
			return -EINVAL;
	}
	if (!strcmp(*proto, "ICMP"))
		return *port >= 0 && *port <= 255 ? 0 : -ERANGE;
	return *port >= 1 && *port <= 65535 ? 0 : -ERANGE;
}

/* ---- commands --------------------------------------------------------- */

enum cmd_kind { CMD_PLAIN, CMD_APPLY, CMD_DELETE, CMD_EXPLAIN, CMD_OBSERVE, CMD_TOP };

struct cmd {
	enum cmd_kind kind;
	const char *op;
	const char *what;	/* get: the object class */
	int (*print)(const json_t *result);
	const char *name;	/* get prefilter NAME */
};

struct opts {
	const char *socket_path;
	bool json_out;
	const char **files;
	size_t nfiles;
	bool ignore_not_found;
	enum ks_mode validate;	/* apply: unknown fields refused, warned of or ignored */
	bool validate_given;
	const char *from, *to, *port;
	long chunk_size;	/* get: items per request; 0: all in one */
	bool chunk_given;
	json_t *filters;	/* observe: the request's filter members */
	bool follow;
	long limit;		/* top */
};

static bool is_one_of(const char *s, const char *const *names)
{
	for (; *names; names++)
		if (!strcmp(s, *names))
			return true;
	return false;
}

/* Returns 0 or EXIT_USAGE (with the reason on stderr). */
static int parse_command(int argc, char **argv, struct cmd *c)
{
	static const struct {
		const char *what;
		const char *names[7]; /* NULL-terminated */
		int (*print)(const json_t *);
	} gets[] = {
		{ "namespaces", { "namespaces", "namespace", "ns" }, print_namespaces },
		{ "pods", { "pods", "pod", "po" }, print_pods },
		{ "policies", { "policies", "policy", "netpol", "netpols", "networkpolicies",
				"networkpolicy" }, print_policies },
		{ "identities", { "identities", "identity", "id", "ids" }, print_identities },
		{ "nodes", { "nodes", "node", "no" }, print_nodes },
		{ "services", { "services", "service", "svc" }, print_services },
		{ "prefilters", { "prefilters", "prefilter", "sluiceprefilters", "sluiceprefilter",
				  "pf" }, print_prefilters },
	};
	static const char *const endpoints[] = { "endpoints", "endpoint", "ep", NULL };
	size_t i;

	memset(c, 0, sizeof(*c));
	if (!argc) {
		fprintf(stderr, "sluicectl: no command; see sluicectl --help\n");
		return EXIT_USAGE;
	}
	if (argc == 1 && !strcmp(argv[0], "status")) {
		*c = (struct cmd){ CMD_PLAIN, "status", NULL, print_status, NULL };
	} else if (argc == 1 && !strcmp(argv[0], "metrics")) {
		*c = (struct cmd){ CMD_PLAIN, "metrics", NULL, print_metrics, NULL };
	} else if (argc == 1 && !strcmp(argv[0], "observe")) {
		*c = (struct cmd){ CMD_OBSERVE, "flows", NULL, NULL, NULL };
	} else if (argc == 2 && !strcmp(argv[0], "top") &&
		   (!strcmp(argv[1], "flows") || !strcmp(argv[1], "pods"))) {
		*c = (struct cmd){ CMD_TOP, "top", NULL, NULL, NULL };
		c->name = argv[1];
	} else if (argc >= 1 && !strcmp(argv[0], "top")) {
		fprintf(stderr, "sluicectl: top takes flows or pods\n");
		return EXIT_USAGE;
	} else if (argc == 1 && !strcmp(argv[0], "apply")) {
		*c = (struct cmd){ CMD_APPLY, "apply", NULL, print_changes, NULL };
	} else if (argc == 1 && !strcmp(argv[0], "delete")) {
		*c = (struct cmd){ CMD_DELETE, "delete", NULL, print_changes, NULL };
	} else if (argc == 2 && !strcmp(argv[0], "policy") && !strcmp(argv[1], "explain")) {
		*c = (struct cmd){ CMD_EXPLAIN, "explain", NULL, print_explain, NULL };
	} else if (argc == 3 && !strcmp(argv[0], "get") &&
		   is_one_of(argv[1], (const char *const[]){ "prefilters", "prefilter",
							      "sluiceprefilters", "sluiceprefilter",
							      "pf", NULL })) {
		*c = (struct cmd){ CMD_PLAIN, "get", "prefilters", print_prefilter, argv[2] };
	} else if (argc == 2 && !strcmp(argv[0], "get")) {
		if (is_one_of(argv[1], endpoints))
			*c = (struct cmd){ CMD_PLAIN, "list", NULL, print_endpoints, NULL };
		for (i = 0; i < sizeof(gets) / sizeof(gets[0]); i++)
			if (is_one_of(argv[1], gets[i].names))
				*c = (struct cmd){ CMD_PLAIN, "get", gets[i].what, gets[i].print, NULL };
		if (!c->op) {
			fprintf(stderr,
				"sluicectl: get takes endpoints, namespaces, pods, policies, "
				"identities, nodes, services or prefilters, not '%s'\n", argv[1]);
			return EXIT_USAGE;
		}
	} else {
		fprintf(stderr, "sluicectl: unknown command '%s'; see sluicectl --help\n",
			argv[0]);
		return EXIT_USAGE;
	}
	return 0;
}

/* Options that belong to one command only. */
static int check_options(const struct cmd *c, const struct opts *o)
{
	if ((c->kind == CMD_APPLY || c->kind == CMD_DELETE) && !o->nfiles) {
		fprintf(stderr, "sluicectl: %s needs -f FILE (- for standard input)\n", c->op);
		return EXIT_USAGE;
	}
	if (c->kind != CMD_APPLY && c->kind != CMD_DELETE && o->nfiles) {
		fprintf(stderr, "sluicectl: -f is for apply and delete\n");
		return EXIT_USAGE;
	}
	if (c->kind != CMD_APPLY && o->validate_given) {
		fprintf(stderr, "sluicectl: --validate is for apply\n");
		return EXIT_USAGE;
	}
	if (c->kind != CMD_DELETE && o->ignore_not_found) {
		fprintf(stderr, "sluicectl: --ignore-not-found is for delete\n");
		return EXIT_USAGE;
	}
	if (o->chunk_given && !(c->kind == CMD_PLAIN && c->what)) {
		fprintf(stderr, "sluicectl: --chunk-size is for get of objects (namespaces, pods, "
			"policies, identities, nodes, services)\n");
		return EXIT_USAGE;
	}
	if (c->kind != CMD_OBSERVE && (json_object_size(o->filters) || o->follow)) {
		fprintf(stderr, "sluicectl: flow filters and --follow are for observe\n");
		return EXIT_USAGE;
	}
	if (c->kind != CMD_TOP && o->limit) {
		fprintf(stderr, "sluicectl: --limit is for top\n");
		return EXIT_USAGE;
	}
	if (c->kind != CMD_EXPLAIN && (o->from || o->to || o->port)) {
		fprintf(stderr, "sluicectl: --from, --to and --port are for policy explain\n");
		return EXIT_USAGE;
	}
	if (c->kind == CMD_EXPLAIN && o->to && strchr(o->to, ':') && o->port) {
		fprintf(stderr, "sluicectl: --to %s has a port already; drop --port\n", o->to);
		return EXIT_USAGE;
	}
	if (c->kind == CMD_EXPLAIN &&
	    (!o->from || !o->to || (!o->port && !strchr(o->to, ':')))) {
		fprintf(stderr, "sluicectl: policy explain needs --from, --to and --port (or --to "
			"ADDRESS:PORT[/PROTOCOL])\n");
		return EXIT_USAGE;
	}
	return 0;
}

/* apply/delete: every manifest read before anything is sent. */
static int build_objects_request(const struct cmd *c, const struct opts *o, json_t *req)
{
	json_t *objects = json_array(), *sources = json_array(), *objs = NULL, *srcs = NULL;
	char err[1024];
	size_t i;
	int ret;

	if (!objects || !sources) {
		fprintf(stderr, "sluicectl: out of memory\n");
		ret = EXIT_FAIL;
		goto cleanup;
	}
	for (i = 0; i < o->nfiles; i++) {
		if (manifest_read(o->files[i], &objs, &srcs, err, sizeof(err))) {
			fprintf(stderr, "sluicectl: %s\n", err);
			ret = EXIT_FAIL;
			goto cleanup;
		}
		if (json_array_extend(objects, objs) || json_array_extend(sources, srcs)) {
			fprintf(stderr, "sluicectl: out of memory\n");
			ret = EXIT_FAIL;
			goto cleanup;
		}
		json_decref(objs);
		json_decref(srcs);
		objs = srcs = NULL;
	}
	if (!json_array_size(objects)) {
		fprintf(stderr, "sluicectl: no objects in %s%s; nothing to %s\n",
			strcmp(o->files[0], "-") ? o->files[0] : MANIFEST_STDIN_LABEL,
			o->nfiles > 1 ? " and the other files" : "", c->op);
		ret = EXIT_FAIL;
		goto cleanup;
	}
	if (json_object_set(req, "objects", objects) || json_object_set(req, "sources", sources) ||
	    (c->kind == CMD_DELETE &&
	     json_object_set_new(req, "ignoreNotFound", json_boolean(o->ignore_not_found))) ||
	    (c->kind == CMD_APPLY &&
	     json_object_set_new(req, "validate", json_string(ks_mode_name(o->validate))))) {
		fprintf(stderr, "sluicectl: out of memory\n");
		ret = EXIT_FAIL;
		goto cleanup;
	}
	ret = 0;
cleanup:
	json_decref(objs);
	json_decref(srcs);
	json_decref(objects);
	json_decref(sources);
	return ret;
}

static int build_explain_request(const struct opts *o, json_t *req)
{
	const char *proto, *to = o->to, *portspec = o->port;
	char to_addr[64];
	long port;
	int ret;

	if (strchr(o->to, ':')) {
		portspec = split_to(o->to, to_addr, sizeof(to_addr));
		to = portspec && !strchr(to_addr, '/') ? to_addr : NULL;
	}
	if (!valid_endpoint(o->from) || !to || !valid_endpoint(to)) {
		fprintf(stderr, "sluicectl: --from takes NAMESPACE/POD or an IPv4 address, --to "
			"also ADDRESS:PORT[/PROTOCOL] (a Service frontend), not '%s'\n",
			valid_endpoint(o->from) ? o->to : o->from);
		return EXIT_USAGE;
	}
	ret = parse_port(portspec, &port, &proto);
	if (ret == -ERANGE) {
		fprintf(stderr, "sluicectl: port %s: %s\n", portspec,
			strcmp(proto, "ICMP") ? "ports are 1-65535" : "ICMP types are 0-255");
		return EXIT_USAGE;
	}
	if (ret) {
		fprintf(stderr, "sluicectl: the port is PORT[/PROTOCOL] with PROTOCOL TCP, UDP, "
			"SCTP or ICMP (80, 53/UDP, 8/ICMP), not '%s'\n", portspec);
		return EXIT_USAGE;
	}
	if (json_object_set_new(req, "from", json_string(o->from)) ||
	    json_object_set_new(req, "to", json_string(to)) ||
	    json_object_set_new(req, "port", json_integer(port)) ||
	    json_object_set_new(req, "protocol", json_string(proto))) {
		fprintf(stderr, "sluicectl: out of memory\n");
		return EXIT_FAIL;
	}
	return 0;
}

static void print_agent_error(const json_t *resp)
{
	const json_t *e = json_object_get(resp, "error");
	const char *details = json_string_value(json_object_get(e, "details"));

	fprintf(stderr, "sluicectl: %s\n", str(e, "msg"));
	if (details && *details)
		fprintf(stderr, "  %s\n", details);
}

static enum get_what get_what_of(const char *what)
{
	static const char *const names[] = {
		[GET_NAMESPACES] = "namespaces", [GET_PODS] = "pods",
		[GET_POLICIES] = "policies", [GET_IDENTITIES] = "identities",
		[GET_NODES] = "nodes", [GET_SERVICES] = "services",
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(what, names[i]))
			break;
	return (enum get_what)i;
}

/* One JSON value indented by depth spaces after the first line. */
static int print_json_at(const json_t *v, int depth)
{
	char *text = json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY);

	if (!text)
		return -ENOMEM;
	for (const char *p = text; *p; p++) {
		putchar(*p);
		if (*p == '\n')
			printf("%*s", depth, "");
	}
	free(text);
	return 0;
}

/*
 * get in pages of o->chunk_size: each page printed as it arrives, so
 * sluicectl holds one page, never the whole list. With -o json the pages
 * make one object {"items": […], and the last answer's other members}.
 * An agent without pages answers everything at once, without "continue":
 * that is the one page.
 */
static int get_pages(const struct cmd *c, const struct opts *o, json_t *req)
{
	enum get_what what = get_what_of(c->what);
	json_t *resp = NULL;
	const json_t *result = NULL, *items, *it, *v;
	const char *next, *key;
	size_t page = 0, count = 0, i;
	char err[512];
	int ret;

	if (json_object_set_new(req, "limit", json_integer(o->chunk_size))) {
		ret = EXIT_FAIL;
		fprintf(stderr, "sluicectl: out of memory\n");
		goto cleanup;
	}
	for (;; page++) {
		if (api_call(o->socket_path, req, &resp, TIMEOUT_MS, err, sizeof(err))) {
			fprintf(stderr, "sluicectl: %s%s\n", err,
				page ? " (the list printed so far is incomplete)" : "");
			ret = EXIT_UNREACHABLE;
			goto cleanup;
		}
		if (!json_is_true(json_object_get(resp, "ok"))) {
			if (o->json_out && !page) {
				json_dumpf(resp, stdout, JSON_INDENT(2));
				putchar('\n');
			}
			print_agent_error(resp);
			if (page)
				fprintf(stderr, "  (at page %zu: the list printed so far is "
					"incomplete)\n", page + 1);
			ret = EXIT_FAIL;
			goto cleanup;
		}
		result = json_object_get(resp, "result");
		items = json_object_get(result, "items");
		if (o->json_out) {
			if (!page)
				printf("{\n  \"items\": [");
			json_array_foreach(items, i, it) {
				printf("%s\n    ", count + i ? "," : "");
				if (print_json_at(it, 4)) {
					ret = EXIT_FAIL;
					fprintf(stderr, "sluicectl: out of memory\n");
					goto cleanup;
				}
			}
		} else if (print_items_h(result, what, !page)) {
			ret = EXIT_FAIL;
			fprintf(stderr, "sluicectl: out of memory\n");
			goto cleanup;
		}
		count += json_array_size(items);
		fflush(stdout);
		next = json_string_value(json_object_get(result, "continue"));
		if (!next || !*next)
			break;
		if (json_object_set_new(req, "continue", json_string(next))) {
			ret = EXIT_FAIL;
			fprintf(stderr, "sluicectl: out of memory\n");
			goto cleanup;
		}
		json_decref(resp);
		resp = NULL;
	}
	/* The last answer's other members (services: "note", "translated"). */
	if (o->json_out) {
		printf("%s]", count ? "\n  " : "");
		json_object_foreach((json_t *)result, key, v) {
			if (!strcmp(key, "items") || !strcmp(key, "continue"))
				continue;
			printf(",\n  \"%s\": ", key);
			if (print_json_at(v, 2)) {
				ret = EXIT_FAIL;
				fprintf(stderr, "sluicectl: out of memory\n");
				goto cleanup;
			}
		}
		printf("\n}\n");
	} else if (what == GET_SERVICES && json_string_value(json_object_get(result, "note"))) {
		printf("\nNote: %s.\n", json_string_value(json_object_get(result, "note")));
	}
	ret = EXIT_OK;
cleanup:
	json_decref(resp);
	return ret;
}

/* --since: "30s", "5m", "2h", "1d" or plain seconds; -1 when invalid. */
static double parse_duration(const char *s)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || v <= 0)
		return -1;
	if (!*end || !strcmp(end, "s"))
		return v;
	if (!strcmp(end, "ms"))
		return v / 1000;
	if (!strcmp(end, "m"))
		return v * 60;
	if (!strcmp(end, "h"))
		return v * 3600;
	if (!strcmp(end, "d"))
		return v * 86400;
	return -1;
}

/* Add one filter value to the request's member key (an array). */
static int add_filter(json_t *filters, const char *key, const char *val)
{
	json_t *a = json_object_get(filters, key);

	if (!a) {
		a = json_array();
		if (json_object_set_new(filters, key, a))
			return -1;
	}
	return json_array_append_new(a, json_string(val));
}

static void print_flows(const json_t *flows, bool json_out, bool *header)
{
	size_t i;
	const json_t *f;
	char line[4096];

	json_array_foreach(flows, i, f) {
		if (json_out) {
			json_dumpf(f, stdout, JSON_COMPACT);
			putchar('\n');
			continue;
		}
		if (!*header) {
			puts(flowfmt_header());
			*header = true;
		}
		flowfmt_line(f, line, sizeof(line));
		puts(line);
	}
	fflush(stdout);
}

/* observe: one answer, or with --follow the new flows every 200 ms (the
 * agent's sequence numbers: none is printed twice, none missed while it
 * is in the buffer). */
static int observe(const struct opts *o, json_t *req)
{
	const struct timespec pause = { 0, 200 * 1000000L };
	json_t *resp = NULL;
	const json_t *result;
	bool header = false, first = true;
	json_int_t after = -1;
	char err[512];
	int ret = EXIT_OK;

	if (json_object_update(req, o->filters)) {
		fprintf(stderr, "sluicectl: out of memory\n");
		return EXIT_FAIL;
	}
	/* Following without --last: only flows from now on. */
	if (o->follow && !json_object_get(req, "last"))
		json_object_set_new(req, "after", json_integer(INT64_MAX));
	for (;;) {
		if (after >= 0)
			json_object_set_new(req, "after", json_integer(after));
		if (after >= 0 || !first)
			json_object_del(req, "last");
		first = false;
		if (api_call(o->socket_path, req, &resp, TIMEOUT_MS, err, sizeof(err))) {
			fprintf(stderr, "sluicectl: %s\n", err);
			ret = EXIT_UNREACHABLE;
			break;
		}
		if (!json_is_true(json_object_get(resp, "ok"))) {
			print_agent_error(resp);
			ret = EXIT_FAIL;
			break;
		}
		result = json_object_get(resp, "result");
		print_flows(json_object_get(result, "flows"), o->json_out, &header);
		if (!o->follow) {
			json_int_t t = json_integer_value(json_object_get(result, "truncated"));

			if (t > 0)
				fprintf(stderr, "sluicectl: %lld older matching flows not shown (at "
					"most %zu per answer); narrow the filters or use --last\n",
					(long long)t, json_array_size(json_object_get(result, "flows")));
			break;
		}
		after = json_integer_value(json_object_get(result, "lastSeq"));
		if (!json_is_true(json_object_get(result, "more")))
			nanosleep(&pause, NULL);
		json_decref(resp);
		resp = NULL;
	}
	json_decref(resp);
	return ret;
}

static void print_top(const char *what, const json_t *r)
{
	const json_t *x;
	size_t i;
	char src[300], dst[300];

	if (!strcmp(what, "flows")) {
		printf("%-34s  -> %-32s  %-10s  %9s  %9s  %8s  %s\n", "SOURCE", "DESTINATION",
		       "PROTO/PORT", "SRTT-US", "MIN-US", "RETRANS", "VERDICT");
		json_array_foreach(json_object_get(r, "flows"), i, x) {
			const json_t *rt = json_object_get(x, "retransmits");
			char pp[32];

			flowfmt_peer(json_object_get(x, "source"), src, sizeof(src));
			flowfmt_peer(json_object_get(x, "destination"), dst, sizeof(dst));
			snprintf(pp, sizeof(pp), "%s/%lld", str(x, "protocol"),
				 json_integer_value(json_object_get(json_object_get(x, "destination"),
								    "port")));
			printf("%-34s  -> %-32s  %-10s  %9lld  %9lld  %8lld  %s\n", src, dst, pp,
			       json_integer_value(json_object_get(x, "rttSmoothedUs")),
			       json_integer_value(json_object_get(x, "rttMinUs")),
			       json_integer_value(json_object_get(rt, "forward")) +
				       json_integer_value(json_object_get(rt, "reply")),
			       str(x, "verdict"));
		}
		return;
	}
	for (int k = 0; k < 2; k++) {
		const char *key = k ? "namespacePairs" : "podPairs";

		printf("%s%-40s  %-40s  %8s  %8s  %8s  %8s\n", k ? "\n" : "",
		       k ? "SOURCE-NAMESPACE" : "SOURCE-POD",
		       k ? "DESTINATION-NAMESPACE" : "DESTINATION-POD", "SAMPLES", "P50-US",
		       "P99-US", "RETRANS");
		json_array_foreach(json_object_get(r, key), i, x)
			printf("%-40s  %-40s  %8lld  %8lld  %8lld  %8lld\n", str(x, "source"),
			       str(x, "destination"), json_integer_value(json_object_get(x, "samples")),
			       json_integer_value(json_object_get(x, "p50Us")),
			       json_integer_value(json_object_get(x, "p99Us")),
			       json_integer_value(json_object_get(x, "retransmits")));
	}
	printf("\n(round trips in power-of-two buckets: a quantile is its bucket's upper "
	       "bound)\n");
}

int main(int argc, char **argv)
{
	enum { OPT_IGNORE = 256, OPT_FROM, OPT_TO, OPT_PORT, OPT_CHUNK, OPT_FILTER, OPT_SINCE,
	       OPT_LAST, OPT_LIMIT, OPT_VALIDATE };
	/* observe's filters: option -> the request's member. */
	static const struct {
		const char *opt, *member;
	} filter_opts[] = {
		{ "from-pod", "fromPod" }, { "to-pod", "toPod" }, { "pod", "pod" },
		{ "namespace", "namespace" }, { "from-ip", "fromIP" }, { "to-ip", "toIP" },
		{ "label", "label" }, { "verdict", "verdict" }, { "drop-reason", "dropReason" },
		{ "protocol", "protocol" }, { "policy", "policy" }, { "service", "service" },
	};
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "output", required_argument, NULL, 'o' },
		{ "filename", required_argument, NULL, 'f' },
		{ "ignore-not-found", no_argument, NULL, OPT_IGNORE },
		{ "validate", optional_argument, NULL, OPT_VALIDATE },
		{ "from", required_argument, NULL, OPT_FROM },
		{ "to", required_argument, NULL, OPT_TO },
		{ "port", required_argument, NULL, OPT_PORT },
		{ "chunk-size", required_argument, NULL, OPT_CHUNK },
		{ "from-pod", required_argument, NULL, OPT_FILTER },
		{ "to-pod", required_argument, NULL, OPT_FILTER },
		{ "pod", required_argument, NULL, OPT_FILTER },
		{ "namespace", required_argument, NULL, OPT_FILTER },
		{ "from-ip", required_argument, NULL, OPT_FILTER },
		{ "to-ip", required_argument, NULL, OPT_FILTER },
		{ "label", required_argument, NULL, OPT_FILTER },
		{ "verdict", required_argument, NULL, OPT_FILTER },
		{ "drop-reason", required_argument, NULL, OPT_FILTER },
		{ "protocol", required_argument, NULL, OPT_FILTER },
		{ "policy", required_argument, NULL, OPT_FILTER },
		{ "service", required_argument, NULL, OPT_FILTER },
		{ "since", required_argument, NULL, OPT_SINCE },
		{ "last", required_argument, NULL, OPT_LAST },
		{ "follow", no_argument, NULL, 'F' },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct opts o = { .socket_path = getenv("SLUICE_SOCKET"), .chunk_size = CHUNK_DEFAULT };
	char *end;
	int idx;
	double since;
	long long n;
	/* --port is policy explain's and observe's: kept until the command is known. */
	const char **ports = NULL;
	size_t nports = 0;
	json_t *req = NULL, *resp = NULL, *result, *warning;
	bool stdin_taken = false;
	size_t reqlen, nwarn;
	struct cmd cmd;
	int c, ret = EXIT_USAGE;
	char err[512];

	if (!o.socket_path || !*o.socket_path)
		o.socket_path = SLUICE_DEFAULT_SOCKET;
	o.files = calloc((size_t)argc, sizeof(*o.files));
	if (!o.files) {
		fprintf(stderr, "sluicectl: out of memory\n");
		return EXIT_FAIL;
	}
	o.filters = json_object();
	ports = calloc((size_t)argc, sizeof(*ports));
	if (!o.filters || !ports) {
		fprintf(stderr, "sluicectl: out of memory\n");
		ret = EXIT_FAIL;
		goto cleanup;
	}
	while ((c = getopt_long(argc, argv, "o:f:hF", longopts, &idx)) != -1) {
		switch (c) {
		case 's': o.socket_path = optarg; break;
		case 'o':
			if (strcmp(optarg, "json")) {
				fprintf(stderr, "sluicectl: -o takes 'json', not '%s'\n", optarg);
				goto cleanup;
			}
			o.json_out = true;
			break;
		case 'f':
			if (!strcmp(optarg, "-")) {
				if (stdin_taken) {
					fprintf(stderr, "sluicectl: -f - (standard input) can be given once\n");
					goto cleanup;
				}
				stdin_taken = true;
			}
			o.files[o.nfiles++] = optarg;
			break;
		case OPT_IGNORE: o.ignore_not_found = true; break;
		case OPT_VALIDATE:
			/* --validate alone is strict, as kubectl's */
			if (ks_mode_parse(optarg ? optarg : "strict", &o.validate)) {
				fprintf(stderr, "sluicectl: --validate takes strict, warn or ignore "
					"(true: strict, false: ignore), not '%s'\n", optarg);
				goto cleanup;
			}
			o.validate_given = true;
			break;
		case OPT_FROM: o.from = optarg; break;
		case OPT_TO: o.to = optarg; break;
		case OPT_PORT:
			o.port = optarg;
			ports[nports++] = optarg;
			break;
		case OPT_FILTER:
			for (size_t k = 0; k < sizeof(filter_opts) / sizeof(filter_opts[0]); k++)
				if (!strcmp(longopts[idx].name, filter_opts[k].opt) &&
				    add_filter(o.filters, filter_opts[k].member, optarg)) {
					fprintf(stderr, "sluicectl: out of memory\n");
					ret = EXIT_FAIL;
					goto cleanup;
				}
			break;
		case OPT_SINCE:
			since = parse_duration(optarg);
			if (since <= 0) {
				fprintf(stderr, "sluicectl: --since takes a duration (30s, 5m, 2h, "
					"1d), not '%s'\n", optarg);
				goto cleanup;
			}
			json_object_set_new(o.filters, "since", json_real(since));
			break;
		case OPT_LAST:
		case OPT_LIMIT:
			errno = 0;
			n = strtoll(optarg, &end, 10);
			if (errno || end == optarg || *end || n < 1 || n > 100000000) {
				fprintf(stderr, "sluicectl: --%s takes a number above 0, not '%s'\n",
					c == OPT_LAST ? "last" : "limit", optarg);
				goto cleanup;
			}
			if (c == OPT_LAST)
				json_object_set_new(o.filters, "last", json_integer(n));
			else
				o.limit = (long)n;
			break;
		case 'F': o.follow = true; break;
		case OPT_CHUNK:
			errno = 0;
			o.chunk_size = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || o.chunk_size < 0 ||
			    o.chunk_size > 1000000) {
				fprintf(stderr, "sluicectl: --chunk-size takes a number of objects "
					"from 0 (all in one answer) to 1000000, not '%s'\n", optarg);
				goto cleanup;
			}
			o.chunk_given = true;
			break;
		case 'h':
			usage(stdout);
			ret = EXIT_OK;
			goto cleanup;
		default:
			usage(stderr);
			goto cleanup;
		}
	}
	ret = parse_command(argc - optind, argv + optind, &cmd);
	/* observe: --port is a filter (repeatable), not explain's. */
	if (!ret && cmd.kind == CMD_OBSERVE && nports) {
		for (size_t k = 0; k < nports; k++)
			add_filter(o.filters, "port", ports[k]);
		o.port = NULL;
	}
	if (!ret)
		ret = check_options(&cmd, &o);
	if (ret)
		goto cleanup;

	req = json_pack("{s:s}", "op", cmd.op);
	if (!req || (cmd.what && json_object_set_new(req, "what", json_string(cmd.what))) ||
	    (cmd.name && json_object_set_new(req, "name", json_string(cmd.name))) ||
	    (cmd.what && !strcmp(cmd.what, "prefilters") && o.json_out &&
	     json_object_set_new(req, "detail", json_true()))) {
		fprintf(stderr, "sluicectl: out of memory\n");
		ret = EXIT_FAIL;
		goto cleanup;
	}
	if (cmd.kind == CMD_OBSERVE) {
		ret = observe(&o, req);
		goto cleanup;
	}
	if (cmd.kind == CMD_TOP) {
		json_object_set_new(req, "what", json_string(cmd.name));
		json_object_del(req, "name");
		if (o.limit)
			json_object_set_new(req, "limit", json_integer(o.limit));
	}
	if (cmd.kind == CMD_APPLY || cmd.kind == CMD_DELETE)
		ret = build_objects_request(&cmd, &o, req);
	else if (cmd.kind == CMD_EXPLAIN)
		ret = build_explain_request(&o, req);
	if (ret)
		goto cleanup;
	reqlen = json_dumpb(req, NULL, 0, JSON_COMPACT);
	if (reqlen > SLUICE_API_MAX_MSG) {
		fprintf(stderr, "sluicectl: the request would be %zu bytes, more than the agent's "
			"limit of %u MiB; %s the files in several runs\n", reqlen,
			SLUICE_API_MAX_MSG >> 20, cmd.op);
		ret = EXIT_FAIL;
		goto cleanup;
	}

	/* Prefilters come in one answer: a node applies at most 64. */
	if (cmd.kind == CMD_PLAIN && cmd.what && o.chunk_size && strcmp(cmd.what, "prefilters")) {
		ret = get_pages(&cmd, &o, req);
		goto cleanup;
	}
	if (api_call(o.socket_path, req, &resp,
		     cmd.kind == CMD_APPLY || cmd.kind == CMD_DELETE ? TIMEOUT_OBJECTS_MS : TIMEOUT_MS,
		     err, sizeof(err))) {
		fprintf(stderr, "sluicectl: %s\n", err);
		ret = EXIT_UNREACHABLE;
		goto cleanup;
	}
	if (!json_is_true(json_object_get(resp, "ok"))) {
		if (o.json_out) {
			json_dumpf(resp, stdout, JSON_INDENT(2));
			putchar('\n');
		}
		print_agent_error(resp);
		ret = EXIT_FAIL;
		goto cleanup;
	}
	result = json_object_get(resp, "result");
	/* apply --validate=warn: the unknown fields the agent accepted */
	json_array_foreach(json_object_get(result, "warnings"), nwarn, warning)
		fprintf(stderr, "Warning: %s\n", json_string_value(warning));
	if (cmd.kind == CMD_EXPLAIN && !json_is_boolean(json_object_get(result, "allowed"))) {
		fprintf(stderr, "sluicectl: the agent's explain answer has no 'allowed' verdict\n");
		ret = EXIT_FAIL;
		goto cleanup;
	}
	if (o.json_out) {
		json_dumpf(result, stdout, JSON_INDENT(2));
		putchar('\n');
	} else if (cmd.kind == CMD_TOP) {
		print_top(cmd.name, result);
	} else if (cmd.print(result)) {
		fprintf(stderr, "sluicectl: out of memory\n");
		ret = EXIT_FAIL;
		goto cleanup;
	}
	ret = EXIT_OK;
	if (cmd.kind == CMD_EXPLAIN && !json_is_true(json_object_get(result, "allowed")))
		ret = EXIT_FAIL;
cleanup:
	json_decref(req);
	json_decref(resp);
	json_decref(o.filters);
	free(ports);
	free(o.files);
	return ret;
}
