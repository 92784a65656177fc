// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: objects as the agent's store takes them (agent/store.c
 * and the parsers it calls: policy_parse.c, service.c, prefilter.c), for
 * every kind it accepts: Namespace, Pod, Node, Service, EndpointSlice,
 * NetworkPolicy, SluiceNetworkPolicy, SluiceClusterNetworkPolicy and
 * SluicePrefilter. The input is the "objects" of an apply request: a JSON
 * array of objects, or one object.
 *
 * One exec: a fresh store (on tmpfs, emptied after each input, so no input
 * sees another's objects), then
 *   - store_apply, as `sluicectl apply` (all or nothing), undone once by
 *     store_snapshot/store_restore and applied again;
 *   - the views built from what was stored: the policy world, Services,
 *     get's summaries;
 *   - each object as a watch event from the API (store_kube_event, which
 *     reads policies with pol_parse_api: fail closed) and as a list;
 *   - store_delete of them all.
 */
#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "store.h"

#include "fuzz_state_dir.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_state_dir_init("fuzz-policy");
	return 0;
}

static void views(struct store *s)
{
	struct store_local local = { .ns = "default", .name = "fuzz", .ip = 0x0a000005 };
	const uint32_t node_ips[] = { 0xc0a80101 };
	struct store_view v;
	struct svc_view sv;

	if (!store_view_build(s, &local, 1, node_ips, 1, &v))
		store_view_free(&v);
	if (!store_view_build_lean(s, &local, 1, node_ips, 1, &v))
		store_view_free(&v);
	if (!store_services_view(s, "node1", true, &sv))
		svc_view_free(&sv);
	json_decref(store_namespaces_json(s));
	json_decref(store_counts_json(s));
	(void)store_order(s, STORE_PODS);
	(void)store_order(s, STORE_POLICIES);
}

static void kube_events(struct store *s, const json_t *objs)
{
	const json_t *o;
	size_t i;

	json_array_foreach(objs, i, o) {
		const char *av = json_string_value(json_object_get(o, "apiVersion"));
		const char *kind = json_string_value(json_object_get(o, "kind"));
		json_t *changes = json_array(), *one = json_pack("[O]", o);

		store_kube_event(s, "ADDED", o, changes);
		store_kube_event(s, "MODIFIED", o, changes);
		if (av && kind && one)
			store_kube_replace(s, av, kind, one, changes);
		store_kube_event(s, "DELETED", o, changes);
		json_decref(one);
		json_decref(changes);
	}
	store_flush(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *in = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	json_t *objs = NULL, *srcs = NULL, *changes = NULL, *snap = NULL;
	const struct cidr4 pod_cidr = { .net = 0x0a000000, .prefix = 24 };
	struct store *s = NULL;
	struct store_change *cv;
	char err[2048];
	size_t i, n;

	if (!in)
		return 0;
	objs = json_is_array(in) ? json_incref(in) : json_pack("[O]", in);
	srcs = json_array();
	if (!objs || !srcs)
		goto cleanup;
	for (i = 0; i < json_array_size(objs); i++)
		json_array_append_new(srcs, json_sprintf("fuzz: document %zu", i + 1));
	if (store_open(&s, fuzz_state_dir, err, sizeof(err)))
		goto cleanup;
	store_set_self(s, "node1", &pod_cidr, 0xc0a80101);
	changes = json_array();
	snap = store_snapshot(s, objs);
	if (!store_apply(s, objs, srcs, changes, err, sizeof(err))) {
		if (snap)
			store_restore(s, objs, snap);
		store_apply(s, objs, srcs, changes, err, sizeof(err));
	}
	views(s);
	store_changes_take(s, &cv, &n);
	store_changes_free(cv, n);
	store_delete(s, objs, srcs, true, changes, err, sizeof(err));
	kube_events(s, objs);
	views(s);
cleanup:
	store_close(s);
	fuzz_state_dir_empty();
	json_decref(snap);
	json_decref(changes);
	json_decref(srcs);
	json_decref(objs);
	json_decref(in);
	return 0;
}
