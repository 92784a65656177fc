/* SPDX-License-Identifier: Apache-2.0 */
/*
 * json_object_get_ci: a member of a JSON object looked up without regard to
 * case, for the CNI runtimeConfig keys runtimes spell differently
 * (containerd "portMappings", podman "portmappings"; "bandwidth" fields).
 */
#ifndef SLUICE_JSONCI_H
#define SLUICE_JSONCI_H

#include <strings.h>
#include <jansson.h>

/* obj's member key, an exact spelling first (a document carrying both forms
 * is read the way a case-sensitive producer meant it), else the first whose
 * name matches ignoring case. NULL when obj is not an object or has none. */
static inline json_t *json_object_get_ci(const json_t *obj, const char *key)
{
	const char *k;
	json_t *v;

	if (!json_is_object(obj) || !key)
		return NULL;
	v = json_object_get(obj, key);
	if (v)
		return v;
	json_object_foreach((json_t *)obj, k, v) {
		if (!strcasecmp(k, key))
			return v;
	}
	return NULL;
}

#endif /* SLUICE_JSONCI_H */
