// SPDX-License-Identifier: Apache-2.0
/*
 * What a SluicePrefilter of N deny CIDRs costs the control plane: parse,
 * flatten and write into real BPF maps (as root), first into empty maps,
 * then the same object again (the diff writes nothing: an agent restart),
 * then with 1 % of the entries changed. Two shapes: /32 addresses (the
 * hash) and /24 ranges (the trie). Prints milliseconds per step.
 *
 *   build/bench-prefilter [N]     (default 100000)
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <sluice/datapath.h>

#include "prefilter.h"
#include "prefilter_sync.h"

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int make_maps(struct pf_maps *m)
{
	LIBBPF_OPTS(bpf_map_create_opts, nopre, .map_flags = BPF_F_NO_PREALLOC);

	m->lpm = bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "b_pf4", sizeof(struct sluice_pf_key4),
				sizeof(struct sluice_pf_val4), SLUICE_PF_LPM_MAX, &nopre);
	m->host = bpf_map_create(BPF_MAP_TYPE_HASH, "b_pfh4", 4, sizeof(struct sluice_pf_val4),
				 SLUICE_PF_HOST_MAX, &nopre);
	m->ports = bpf_map_create(BPF_MAP_TYPE_HASH, "b_pfp4", sizeof(struct sluice_pf_port4), 8,
				  SLUICE_PF_PORT_MAX, &nopre);
	m->cfg = bpf_map_create(BPF_MAP_TYPE_ARRAY, "b_pfcfg", 4, sizeof(struct sluice_pf_cfg4), 1,
				NULL);
	m->ent = bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, "b_pfent", 4,
				sizeof(struct sluice_metric), SLUICE_PF_ENTRY_SLOTS, NULL);
	m->rul = bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, "b_pfrul", 4,
				sizeof(struct sluice_metric), SLUICE_PF_RULES_MAX, NULL);
	return m->lpm < 0 || m->host < 0 || m->ports < 0 || m->cfg < 0 || m->ent < 0 || m->rul < 0
		       ? -1 : 0;
}

/* An object of n distinct CIDRs of length len (32 or 24) as JSON. */
static json_t *object(size_t n, int len, unsigned salt)
{
	json_t *deny = json_array();

	for (size_t i = 0; i < n; i++) {
		/* Distinct by construction: i spread over 100.64.0.0/10 and up. */
		uint32_t a = (len == 32 ? 0x64400000u + (uint32_t)i * 7 : 0x20000000u + ((uint32_t)i << 8));
		char buf[24];

		if (i % 100 == 0)
			a += salt * (len == 32 ? 3 : 0x1000000u);
		snprintf(buf, sizeof(buf), "%u.%u.%u.%u/%d", a >> 24, a >> 16 & 255, a >> 8 & 255,
			 a & 255, len);
		json_array_append_new(deny, json_string(buf));
	}
	return json_pack("{s:s, s:s, s:{s:s}, s:{s:o}}", "apiVersion", "sluice.io/v1alpha1", "kind",
			 "SluicePrefilter", "metadata", "name", "big", "spec", "deny", deny);
}

static int run(size_t n, int len)
{
	static const struct pf_guards g;
	struct pf_object *o = NULL, *o2 = NULL;
	struct pf_sync_stats st;
	struct pf_sync *ps;
	struct pf_maps m;
	json_t *j = object(n, len, 0), *j2 = object(n, len, 1);
	char err[512];
	double t0, t1;

	if (make_maps(&m)) {
		fprintf(stderr, "bench-prefilter: cannot create maps (root?)\n");
		return 1;
	}
	t0 = now_ms();
	if (pf_parse(j, &o, err, sizeof(err)) || pf_parse(j2, &o2, err, sizeof(err))) {
		fprintf(stderr, "bench-prefilter: %s\n", err);
		return 1;
	}
	t1 = now_ms();
	printf("/%d x %zu: parse %.1f ms (each)\n", len, n, (t1 - t0) / 2);
	struct pf_maps keep = { dup(m.lpm), dup(m.host), dup(m.ports), dup(m.cfg), dup(m.ent),
				dup(m.rul) };
	const struct pf_object *v[1] = { o }, *v2[1] = { o2 };

	if (pf_sync_open(&ps, &m, NULL, err, sizeof(err)))
		return 1;
	if (pf_sync_apply(ps, v, NULL, 1, NULL, &g, &st, err, sizeof(err)))
		return fprintf(stderr, "%s\n", err), 1;
	printf("  first apply:   %8.1f ms (flatten %.1f ms), %zu written\n", st.ms, st.compile_ms,
	       st.written);
	if (pf_sync_apply(ps, v, NULL, 1, NULL, &g, &st, err, sizeof(err)))
		return 1;
	printf("  same again:    %8.1f ms (flatten %.1f ms), %zu written, %zu removed\n", st.ms,
	       st.compile_ms, st.written, st.removed);
	if (pf_sync_apply(ps, v2, NULL, 1, NULL, &g, &st, err, sizeof(err)))
		return 1;
	printf("  1%% changed:    %8.1f ms (flatten %.1f ms), %zu written, %zu removed\n", st.ms,
	       st.compile_ms, st.written, st.removed);
	pf_sync_close(ps);
	/* A restarted agent: read the maps back, compile, write nothing. */
	t0 = now_ms();
	if (pf_sync_open(&ps, &keep, NULL, err, sizeof(err)))
		return 1;
	t1 = now_ms();
	if (pf_sync_apply(ps, v2, NULL, 1, NULL, &g, &st, err, sizeof(err)))
		return 1;
	printf("  restart:       %8.1f ms read back + %.1f ms sync, %zu written, %zu removed\n",
	       t1 - t0, st.ms, st.written, st.removed);
	pf_sync_close(ps);
	pf_free(o);
	pf_free(o2);
	json_decref(j);
	json_decref(j2);
	return 0;
}

int main(int argc, char **argv)
{
	size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;

	return run(n, 32) || run(n, 24);
}
