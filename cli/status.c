// SPDX-License-Identifier: Apache-2.0
/* sluicectl status and metrics: the node's state. */
#include <stdint.h>
#include <stdio.h>

#include "cli.h"

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

int print_status(const json_t *r)
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

int print_metrics(const json_t *r)
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
