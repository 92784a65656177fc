// SPDX-License-Identifier: Apache-2.0
/*
 * Compile cost against pods per identity: one sync of a world with many
 * pods sharing few label sets, into stand-in maps (no kernel), so what is
 * measured is the compiler's own work. Then one pod's label change, synced
 * by the full build (compiler_sync) and by the incremental one
 * (compiler_sync_changes, told which pod changed), median of 20 each, and
 * their ratio.
 *
 *   build/bench-compile [PODS] [IDENTITIES] [POLICIES]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compile.h"
#include "compile_bench.h"
#include "identity.h"
#include "log.h"
#include "policy.h"

/* One pod (not a local one) relabelled back and forth, 20 times: each
 * change synced by the full build on c and by an incremental compiler. */
static int relabel_rounds(struct pol_world *w, struct pol_pod *pods, size_t npods,
			  const struct compile_ep *eps, size_t nlocal, struct identities *ids,
			  struct compiler *c, struct compile_maps *maps, size_t nids)
{
	enum { ROUNDS = 20 };
	double full[ROUNDS], incr[ROUNDS];
	struct pol_pod *p = &pods[npods - 1];
	struct pol_labels orig = p->labels, other = { 0 };
	struct compile_changes all = { .all = true };
	struct compiler *ic;
	struct timespec t0;
	char err[512];
	json_t *l = json_loads("{\"app\":\"moved\"}", 0, NULL);
	int ret = 1;

	if (npods <= nlocal || compiler_open_maps(&ic, maps, err, sizeof(err)))
		return 1;
	pol_labels_parse(l, "labels", &other, err, sizeof(err));
	json_decref(l);
	if (compiler_sync_changes(ic, w, &all, eps, nlocal, NULL, 0, ids, 0, NULL, err,
				  sizeof(err)))
		goto out;
	for (int r = 0; r < ROUNDS; r++) {
		struct compile_pod_change pc = { .ns = p->ns, .name = p->name, .pod = p };
		struct compile_changes one = { .pods = &pc, .npods = 1 };

		p->labels = r % 2 ? orig : other;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		if (compiler_sync(c, w, eps, nlocal, NULL, 0, ids, 0, NULL, err, sizeof(err)))
			goto out;
		full[r] = ms_since(&t0);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		if (compiler_sync_changes(ic, w, &one, eps, nlocal, NULL, 0, ids, 0, NULL, err,
					  sizeof(err)))
			goto out;
		incr[r] = ms_since(&t0);
	}
	qsort(full, ROUNDS, sizeof(*full), cmp_double);
	qsort(incr, ROUNDS, sizeof(*incr), cmp_double);
	printf("%zu pods, %zu identities: one label change, full %.3f ms, incremental %.3f ms "
	       "(median of %d), %.0fx\n", npods, nids, full[ROUNDS / 2], incr[ROUNDS / 2], ROUNDS,
	       incr[ROUNDS / 2] > 0 ? full[ROUNDS / 2] / incr[ROUNDS / 2] : 0.0);
	ret = 0;
out:
	if (ret)
		fprintf(stderr, "%s\n", err);
	p->labels = orig;
	pol_labels_free(&other);
	compiler_close(ic);
	return ret;
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
		if (asprintf(&pods[i].name, "pod-%zu", i) < 0)
			return 1;
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
	return relabel_rounds(&w, pods, npods, eps, nlocal, ids, c, &maps, nids);
}
