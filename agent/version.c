// SPDX-License-Identifier: Apache-2.0
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "version.h"
#include "loader.h"
#include "sluice_version.h"

#define VERSION_MAPS_MAX 64
#define VERSION_OBJECTS_MAX 8

/* FNV-1a of an object's bytes, as 16 hex digits: two agents that print the
 * same carry the same BPF programs. */
static void fnv_hex(const void *p, size_t n, char out[17])
{
	const unsigned char *b = p;
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ULL;
	snprintf(out, 17, "%016" PRIx64, h);
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static json_t *objects_json(void)
{
	struct dp_object v[VERSION_OBJECTS_MAX];
	size_t n = datapath_objects(v, VERSION_OBJECTS_MAX);
	json_t *arr = json_array();
	char sum[17];

	for (size_t i = 0; arr && i < n && i < VERSION_OBJECTS_MAX; i++) {
		fnv_hex(v[i].elf, v[i].size, sum);
		if (json_array_append_new(arr, json_pack("{s:s, s:I, s:s}", "name", v[i].name,
							 "bytes", (json_int_t)v[i].size,
							 "fnv64", sum))) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

/* The pinned maps, sorted, each with the layout version its _vN names. */
static json_t *maps_json(const struct datapath *dp)
{
	const char *names[VERSION_MAPS_MAX];
	size_t n = dp ? datapath_map_names(dp, names, VERSION_MAPS_MAX) : 0;
	json_t *arr = json_array();

	if (n > VERSION_MAPS_MAX)
		n = VERSION_MAPS_MAX;
	qsort(names, n, sizeof(names[0]), cmp_name);
	for (size_t i = 0; arr && i < n; i++) {
		const char *v = strrchr(names[i], '_');
		char *end = NULL;
		long layout = v && v[1] == 'v' ? strtol(v + 2, &end, 10) : 0;
		/* null: a name without _vN (a map the agent never keeps pinned
		 * across versions). */
		json_t *l = end && end != v + 2 && !*end ? json_integer(layout) : json_null();

		if (json_array_append_new(arr, json_pack("{s:s, s:o}", "name", names[i], "layout",
							 l))) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

static json_t *kernel_json(const struct agent *a)
{
	int tcx = a->dp ? datapath_tcx_available(a->dp) : -1;
	struct utsname u;
	json_t *k, *xdp = json_array();

	if (uname(&u))
		snprintf(u.release, sizeof(u.release), "unknown");
	if (xdp && a->has_xdp)
		json_array_append_new(xdp, json_pack("{s:s, s:s, s:s, s:s, s:s}", "device",
						     a->xdp.device, "driver", a->xdp.driver,
						     "requested", xdp_request_name(a->xdp.requested),
						     "mode", xdp_mode_name(a->xdp.mode),
						     "fallbackReason", a->xdp.reason));
	/* tcx null: not probed, --attach-mode tc asked for tc filters. */
	k = json_pack("{s:s, s:b, s:o, s:s, s:o?}", "release", u.release, "btf",
		      access("/sys/kernel/btf/vmlinux", R_OK) == 0, "tcx",
		      tcx < 0 ? json_null() : json_boolean(tcx), "attachMode",
		      a->dp ? attach_mode_name(datapath_attach_mode(a->dp)) : "none", "xdp", xdp);
	return k;
}

json_t *agent_version_json(const struct agent *a)
{
	return json_pack("{s:s, s:s, s:{s:o?, s:o?}, s:o?}", "version", SLUICE_VERSION, "node",
			 a->node_name ? a->node_name : "", "bpf", "objects", objects_json(), "maps",
			 maps_json(a->dp), "kernel", kernel_json(a));
}
