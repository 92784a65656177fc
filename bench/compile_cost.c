// SPDX-License-Identifier: Apache-2.0
/*
 * Compile cost against pods per identity: one sync of a world with many
 * pods sharing few label sets, into stand-in maps (no kernel), so what is
 * measured is the compiler's own work.
 *
 *   build/bench-compile [PODS] [IDENTITIES] [POLICIES]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compile.h"
#include "identity.h"
#include "log.h"
#include "policy.h"

static int count_update(void *ctx, enum compile_map m, const void *k, const void *v)
{
	(void)m;
	(void)k;
	(void)v;
	(*(size_t *)ctx)++;
	return 0;
}

static int count_del(void *ctx, enum compile_map m, const void *k)
{
	(void)m;
	(void)k;
	(*(size_t *)ctx)++;
	return 0;
}

static double ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

int main(int argc, char **argv)
{
	size_t npods = argc > 1 ? strtoul(argv[1], NULL, 10) : 5000;
	size_t nids = argc > 2 ? strtoul(argv[2], NULL, 10) : 10;
	size_t npol = argc > 3 ? strtoul(argv[3], NULL, 10) : 20;
	size_t nlocal = npods < 100 ? npods : 100, ops = 0;
	struct compile_maps maps = { .update = count_update, .del = count_del, .ctx = &ops };
	struct pol_pod *pods = calloc(npods, sizeof(*pods));
	const struct pol_pod **podp = calloc(npods, sizeof(*podp));
	struct pol_policy **pol = calloc(npol, sizeof(*pol));
	struct compile_ep *eps = calloc(nlocal, sizeof(*eps));
	struct pol_namespace ns = { .name = "bench" };
	const struct pol_namespace *nsp = &ns;
	struct pol_world w = { .nns = 1, .ns = &nsp };
	struct identities *ids;
	struct compiler *c;
	struct compile_stats st;
	struct timespec t0;
	char err[512];
	int ret = 1;

	log_init("bench-compile", LOG_WARN);
	for (int m = 0; m < CMAP_N; m++)
		maps.cap[m] = 1u << 26;
	if (!pods || !podp || !pol || !eps || identities_open(&ids, NULL, err, sizeof(err)) ||
	    compiler_open_maps(&c, &maps, err, sizeof(err)))
		return 1;
	for (size_t i = 0; i < npods; i++) {
		char lbl[64];
		json_t *l;

		snprintf(lbl, sizeof(lbl), "{\"app\":\"app%zu\"}", i % nids);
		l = json_loads(lbl, 0, NULL);
		pods[i].ns = "bench";
		pods[i].name = "pod";
		pol_labels_parse(l, "labels", &pods[i].labels, err, sizeof(err));
		json_decref(l);
		pods[i].ip = 0x0a000000u + (uint32_t)i + 2;
		/* every pod names its port 8080 "http" */
		pods[i].nports = 1;
		pods[i].ports = calloc(1, sizeof(*pods[i].ports));
		pods[i].ports[0] = (struct pol_container_port){ .name = "http", .proto = 6,
								.port = 8080 };
		podp[i] = &pods[i];
	}
	for (size_t i = 0; i < nlocal; i++)
		eps[i] = (struct compile_ep){ .ip = pods[i].ip, .ifindex = 10 + (int)i,
					      .pod = &pods[i] };
	for (size_t i = 0; i < npol; i++) {
		char buf[1024];
		json_t *o;

		/* policy i: pods app(i % n) take TCP 80 from app((i+1) % n) and
		 * send to app((i+2) % n) on their named port http */
		snprintf(buf, sizeof(buf),
			 "{\"apiVersion\":\"networking.k8s.io/v1\",\"kind\":\"NetworkPolicy\","
			 "\"metadata\":{\"namespace\":\"bench\",\"name\":\"p%zu\"},\"spec\":{"
			 "\"podSelector\":{\"matchLabels\":{\"app\":\"app%zu\"}},"
			 "\"policyTypes\":[\"Ingress\",\"Egress\"],"
			 "\"ingress\":[{\"from\":[{\"podSelector\":{\"matchLabels\":{\"app\":\"app%zu\"}}}],"
			 "\"ports\":[{\"protocol\":\"TCP\",\"port\":80}]}],"
			 "\"egress\":[{\"to\":[{\"podSelector\":{\"matchLabels\":{\"app\":\"app%zu\"}}}],"
			 "\"ports\":[{\"protocol\":\"TCP\",\"port\":\"http\"}]}]}}",
			 i, i % nids, (i + 1) % nids, (i + 2) % nids);
		o = json_loads(buf, 0, NULL);
		if (pol_parse(o, &pol[i], err, sizeof(err))) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
		json_decref(o);
	}
	w.npods = npods;
	w.pods = podp;
	w.npol = npol;
	w.pol = (const struct pol_policy *const *)pol;
	for (int round = 0; round < 3; round++) {
		clock_gettime(CLOCK_MONOTONIC, &t0);
		ret = compiler_sync(c, &w, eps, nlocal, NULL, 0, ids, 0, &st, err, sizeof(err));
		if (ret) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
		printf("%zu pods, %zu identities, %zu policies, %zu local: sync %s %.2f ms "
		       "(%zu allow entries, %zu map writes)\n",
		       npods, nids, npol, nlocal, round ? "again" : "first", ms_since(&t0), st.allow,
		       ops);
		ops = 0;
	}
	return 0;
}
