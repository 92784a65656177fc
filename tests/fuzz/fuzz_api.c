// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: an API request as the agent decodes it (agent/server.c
 * conn_answer and api_dispatch): the JSON text, then what each operation
 * reads of it before any state is touched:
 *
 *   add, check, del  request_parse_cni (agent/request.c), the host ports
 *                    formatted as the logs print them
 *   gc               the network name and validAttachments' shape
 *   flows            flow_filter_parse (agent/flowlog_query.c)
 *   get              what, limit and the continue token as op_get checks
 *                    them, page_init and the token's key (agent/page.c)
 *   apply, delete    objects/sources (their contents: fuzz_policy)
 *
 * Any request is also read as an endpoint of a state file
 * (endpoint_from_json): what decodes must encode and decode to the same
 * endpoint, or the target aborts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "flowlog.h"
#include "log.h"
#include "page.h"
#include "request.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_init("fuzz_api", LOG_ERROR);
	return 0;
}

static void cni_ops(const json_t *req, const char *op)
{
	struct cni_req cr;
	char err[1024], line[96];

	if (request_parse_cni(json_object_get(req, "cni"), strcmp(op, "del") != 0, &cr, err,
			      sizeof(err)))
		return;
	if (cr.nports > HOSTPORT_MAX)
		abort();
	for (size_t i = 0; i < cr.nports; i++)
		hostport_format(&cr.ports[i], line, sizeof(line));
}

static void gc_op(const json_t *req)
{
	const json_t *gc = json_object_get(req, "gc"), *att, *a;
	size_t i;

	if (!json_string_value(json_object_get(gc, "network")))
		return;
	att = json_object_get(gc, "validAttachments");
	json_array_foreach(att, i, a) {
		(void)json_string_value(json_object_get(a, "containerId"));
		(void)json_string_value(json_object_get(a, "ifname"));
	}
}

static void flows_op(const json_t *req)
{
	struct flow_filter *f = NULL;
	char err[512];

	if (!flow_filter_parse(req, &f, err, sizeof(err)))
		flow_filter_free(f);
}

/* op_get's checks, then the page and the key its token names. */
static void get_op(const json_t *req)
{
	static const char *const kinds[] = { "namespaces", "pods", "policies", "identities",
					     "nodes", "services" };
	const char *what = json_string_value(json_object_get(req, "what"));
	const json_t *limit = json_object_get(req, "limit"), *cont = json_object_get(req, "continue");
	const char *ns, *name;
	struct page pg;
	char err[400];
	size_t k;
	int kind;

	for (k = 0; what && k < sizeof(kinds) / sizeof(kinds[0]); k++)
		if (!strcmp(what, kinds[k]))
			break;
	if (!what || k == sizeof(kinds) / sizeof(kinds[0]) || (!limit && !cont))
		return;
	if ((limit && (!json_is_integer(limit) || json_integer_value(limit) < 1)) ||
	    (cont && !json_is_string(cont)))
		return;
	if (page_init(&pg, kinds[k], limit ? (size_t)json_integer_value(limit) : 0,
		      json_string_value(cont), err, sizeof(err)))
		return;
	if (pg.after)
		page_split_key(pg.after, !strcmp(kinds[k], "policies"), &ns, &name, &kind);
	page_free(&pg);
}

/* endpoint_from_json, and its inverse gives the same endpoint back. */
static void endpoint_roundtrip(const json_t *obj)
{
	struct endpoint ep, again;
	json_t *j1, *j2;
	char err[256];

	if (endpoint_from_json(obj, &ep, err, sizeof(err)))
		return;
	j1 = endpoint_to_json(&ep);
	if (!j1)
		return;
	if (endpoint_from_json(j1, &again, err, sizeof(err)))
		abort(); /* what the agent writes, it must read */
	j2 = endpoint_to_json(&again);
	if (!j2 || !json_equal(j1, j2))
		abort();
	json_decref(j1);
	json_decref(j2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *req = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	const char *op = json_string_value(json_object_get(req, "op"));

	if (!req)
		return 0;
	if (json_is_object(req) && op) {
		if (!strcmp(op, "add") || !strcmp(op, "check") || !strcmp(op, "del"))
			cni_ops(req, op);
		else if (!strcmp(op, "gc"))
			gc_op(req);
		else if (!strcmp(op, "flows"))
			flows_op(req);
		else if (!strcmp(op, "get"))
			get_op(req);
	}
	endpoint_roundtrip(req);
	endpoint_roundtrip(json_object_get(req, "endpoint"));
	json_decref(req);
	return 0;
}
