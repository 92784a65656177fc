// SPDX-License-Identifier: Apache-2.0
/*
 * What saving the object store costs per change: a generated cluster (a
 * JSON List, bench/controlplane_gen.py) put in a store under STATE_DIR and
 * saved, then CHANGES single-pod relabels, each a watch event followed by
 * store_flush as the agent does after a batch. Prints the bytes each save
 * writes (write(2) and pwrite(2) bytes, /proc/self/io wchar) and its time,
 * the first (full) save, and the open of the state left at the end.
 * bench/persist.sh builds it against this tree and against a baseline.
 *
 *   bench-persist LIST.json STATE_DIR [CHANGES]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "log.h"
#include "store.h"

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* Bytes this process has handed to write(2) and friends so far. */
static long long wchar(void)
{
	char line[128];
	long long v = -1;
	FILE *f = fopen("/proc/self/io", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "wchar: %lld", &v) == 1)
			break;
	fclose(f);
	return v;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Put every item of list in the store, kind by kind, as a relist does. */
static int load(struct store *s, const json_t *list)
{
	const json_t *items = json_object_get(list, "items"), *it;
	json_t *kinds = json_object(), *changes = json_array();
	const char *key;
	json_t *v;
	size_t i;
	int ret = 0;

	json_array_foreach(items, i, it) {
		char k[256];
		json_t *arr;

		snprintf(k, sizeof(k), "%s %s",
			 json_string_value(json_object_get(it, "apiVersion")),
			 json_string_value(json_object_get(it, "kind")));
		arr = json_object_get(kinds, k);
		if (!arr) {
			arr = json_array();
			json_object_set_new(kinds, k, arr);
		}
		json_array_append(arr, (json_t *)it);
	}
	json_object_foreach(kinds, key, v) {
		char api[128], kind[128];

		if (sscanf(key, "%127s %127s", api, kind) != 2)
			continue;
		ret = store_kube_replace(s, api, kind, v, changes);
		if (ret)
			break;
	}
	json_decref(changes);
	json_decref(kinds);
	return ret;
}

int main(int argc, char **argv)
{
	size_t nchanges = argc > 3 ? strtoul(argv[3], NULL, 10) : 200, npods = 0, i;
	const json_t *items, *it;
	json_t *list, **pods = NULL;
	double t0, full_ms, open_ms, *ms = NULL, sum_ms = 0;
	long long w0, full_bytes, bytes = 0;
	struct store *s = NULL;
	json_error_t jerr;
	char err[512];
	int ret = 1;

	if (argc < 3) {
		fprintf(stderr, "usage: %s LIST.json STATE_DIR [CHANGES]\n", argv[0]);
		return 2;
	}
	/* The generated cluster's Nodes share addresses past 240: refused, said once
	 * per load; not what is measured. */
	log_init("bench-persist", LOG_ERROR);
	list = json_load_file(argv[1], 0, &jerr);
	if (!list) {
		fprintf(stderr, "%s: %s\n", argv[1], jerr.text);
		return 1;
	}
	items = json_object_get(list, "items");
	pods = calloc(json_array_size(items), sizeof(*pods));
	ms = calloc(nchanges ? nchanges : 1, sizeof(*ms));
	if (!pods || !ms)
		goto cleanup;
	json_array_foreach(items, i, it)
		if (!strcmp(json_string_value(json_object_get(it, "kind")) ?: "", "Pod"))
			pods[npods++] = (json_t *)it;
	if (!npods || store_open(&s, argv[2], err, sizeof(err))) {
		fprintf(stderr, "no pods in %s, or cannot open the store: %s\n", argv[1], err);
		goto cleanup;
	}
	if (load(s, list))
		goto cleanup;
	w0 = wchar();
	t0 = now_ms();
	if (store_flush(s))
		goto cleanup;
	full_ms = now_ms() - t0;
	full_bytes = wchar() - w0;

	for (i = 0; i < nchanges; i++) {
		json_t *pod = json_deep_copy(pods[(i * 7919) % npods]), *changes = json_array();
		json_t *labels = json_object_get(json_object_get(pod, "metadata"), "labels");
		char v[32];
		long long w;

		snprintf(v, sizeof(v), "r%zu", i);
		json_object_set_new(labels, "rollout", json_string(v));
		if (store_kube_event(s, "MODIFIED", pod, changes)) {
			json_decref(pod);
			json_decref(changes);
			goto cleanup;
		}
		json_decref(pod);
		json_decref(changes);
		w = wchar();
		t0 = now_ms();
		if (store_flush(s))
			goto cleanup;
		ms[i] = now_ms() - t0;
		bytes += wchar() - w;
		sum_ms += ms[i];
	}
	store_close(s);
	t0 = now_ms();
	if (store_open(&s, argv[2], err, sizeof(err))) {
		fprintf(stderr, "cannot open the store again: %s\n", err);
		s = NULL;
		goto cleanup;
	}
	open_ms = now_ms() - t0;

	qsort(ms, nchanges, sizeof(*ms), cmp_double);
	printf("pods %zu objects %zu\n", npods, json_array_size(items));
	printf("full_save_bytes %lld full_save_ms %.1f\n", full_bytes, full_ms);
	if (nchanges)
		printf("changes %zu bytes_per_change %.0f ms_per_change_mean %.3f p50 %.3f "
		       "p99 %.3f\n",
		       nchanges, (double)bytes / (double)nchanges, sum_ms / (double)nchanges,
		       ms[nchanges / 2], ms[nchanges * 99 / 100]);
	printf("open_ms %.0f\n", open_ms);
	ret = 0;
cleanup:
	store_close(s);
	free(pods);
	free(ms);
	json_decref(list);
	return ret;
}
