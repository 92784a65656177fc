// SPDX-License-Identifier: Apache-2.0
/*
 * SluicePrefilter: reading and every validation error, the lock-out
 * refusals at `sluicectl apply` (node addresses, pod CIDRs both ways, the
 * API server), the flattening against the definition on random objects,
 * and the maps (real BPF maps, as root): exact contents after apply,
 * update and delete, stable slots, the 65th object, a restart that writes
 * nothing, a Node that appears later.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <bpf/bpf.h>
#include <sluice/datapath.h>

#include "prefilter.h"
#include "prefilter_sync.h"
#include "store.h"
#include "store_test.h"

STORE_TEST_DIR("/tmp/sluice-test-prefilter-XXXXXX")

static char *obj_text(const char *name, const char *spec)
{
	char *t;

	assert_true(asprintf(&t, "{'apiVersion': 'sluice.io/v1alpha1', 'kind': 'SluicePrefilter', "
			     "'metadata': {'name': '%s'}, 'spec': %s}", name, spec) > 0);
	return t;
}

static struct pf_object *parse_ok(const char *name, const char *spec)
{
	char *t = obj_text(name, spec), err[1024] = "";
	json_t *j = jt(t);
	struct pf_object *o = NULL;

	if (pf_parse(j, &o, err, sizeof(err)))
		fail_msg("%s: %s", spec, err);
	json_decref(j);
	free(t);
	return o;
}

static uint32_t ip(const char *s)
{
	struct in_addr a;

	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return ntohl(a.s_addr);
}

static void test_parse_ok(void **state)
{
	struct pf_object *o = parse_ok("block-scanners",
				       "{'deny': ['203.0.113.0/24', '198.51.100.7/32'], "
				       "'except': ['203.0.113.9/32'], "
				       "'ports': [{'protocol': 'TCP', 'port': 443}, {'port': 53, "
				       "'protocol': 'UDP'}], "
				       "'nodeSelector': {'matchLabels': {'edge': 'true'}}}");
	struct pol_labels edge = { 0 }, other = { 0 };
	char err[256];
	json_t *l1 = jt("{'edge': 'true'}"), *l2 = jt("{'edge': 'false'}");

	(void)state;
	assert_string_equal(o->name, "block-scanners");
	assert_int_equal(o->ndeny, 2);
	assert_int_equal(o->deny[0].net, ip("203.0.113.0"));
	assert_int_equal(o->deny[0].prefix, 24);
	assert_int_equal(o->deny[1].prefix, 32);
	assert_int_equal(o->nexcept, 1);
	assert_int_equal(o->except[0].net, ip("203.0.113.9"));
	assert_int_equal(o->nports, 2);
	assert_int_equal(o->ports[0].proto, IPPROTO_TCP);
	assert_int_equal(o->ports[0].port, 443);
	assert_int_equal(o->ports[1].proto, IPPROTO_UDP);
	assert_true(o->has_sel);
	assert_int_equal(pol_labels_parse(l1, "l", &edge, err, sizeof(err)), 0);
	assert_int_equal(pol_labels_parse(l2, "l", &other, err, sizeof(err)), 0);
	assert_true(pf_applies(o, &edge));
	assert_false(pf_applies(o, &other));
	assert_false(pf_applies(o, NULL));
	pol_labels_free(&edge);
	pol_labels_free(&other);
	json_decref(l1);
	json_decref(l2);
	pf_free(o);
	/* No selector: every node. */
	o = parse_ok("all", "{'deny': ['0.0.0.0/0']}");
	assert_true(pf_applies(o, NULL));
	pf_free(o);
}

static void test_parse_errors(void **state)
{
	static const struct {
		const char *spec, *want;
	} cases[] = {
		{ "{}", "SluicePrefilter bad: spec.deny: missing" },
		{ "{'deny': []}", "spec.deny: is empty" },
		{ "{'deny': '10.0.0.0/8'}", "spec.deny: is a string; expected a list" },
		{ "{'deny': ['10.0.0.0/8', 'ten/8']}", "spec.deny[1]: 'ten/8' is not a CIDR" },
		{ "{'deny': ['10.0.0.0/33']}", "spec.deny[0]: '10.0.0.0/33' is not a CIDR" },
		{ "{'deny': [7]}", "spec.deny[0]: is an integer" },
		{ "{'deny': ['10.0.0.1/8']}",
		  "spec.deny[0]: '10.0.0.1/8' has host bits set; did you mean 10.0.0.0/8?" },
		{ "{'deny': ['10.0.0.0/8'], 'except': ['10.1.0.1/16']}",
		  "spec.except[0]: '10.1.0.1/16' has host bits set" },
		{ "{'deny': ['10.0.0.0/8'], 'except': ['11.0.0.0/24']}",
		  "spec.except[0] 11.0.0.0/24: lies inside no deny CIDR" },
		{ "{'deny': ['10.0.0.0/16'], 'except': ['10.0.0.0/8']}",
		  "spec.except[0] 10.0.0.0/8: lies inside no deny" },
		{ "{'deny': ['10.0.0.0/8'], 'ports': [{'port': 0}]}",
		  "spec.ports[0].port: expected a port number 1-65535" },
		{ "{'deny': ['10.0.0.0/8'], 'ports': [{'port': 65536}]}",
		  "spec.ports[0].port: expected a port number 1-65535" },
		{ "{'deny': ['10.0.0.0/8'], 'ports': [{'port': '443'}]}",
		  "spec.ports[0].port: expected a port number" },
		{ "{'deny': ['10.0.0.0/8'], 'ports': [{'port': 1, 'protocol': 'ICMP'}]}",
		  "spec.ports[0].protocol: expected TCP, UDP or SCTP" },
		{ "{'deny': ['10.0.0.0/8'], 'ports': [{'port': 1, 'proto': 'UDP'}]}",
		  "spec.ports[0].proto: unknown field" },
		{ "{'deny': ['10.0.0.0/8'], 'ports': {'port': 1}}", "spec.ports: is a mapping" },
		{ "{'deny': ['10.0.0.0/8'], 'excepts': ['10.0.0.1/32']}",
		  "spec.excepts: unknown field" },
		{ "{'deny': ['10.0.0.0/8'], 'nodeSelector': {'matchLabels': {'a': 7}}}",
		  "spec.nodeSelector" },
		{ "7", "spec: not an object" },
	};
	char err[1024];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *t = obj_text("bad", cases[i].spec);
		json_t *j = jt(t);
		struct pf_object *o = NULL;

		err[0] = '\0';
		if (pf_parse(j, &o, err, sizeof(err)) != -EINVAL)
			fail_msg("%s: accepted", cases[i].spec);
		assert_null(o);
		if (!strstr(err, cases[i].want))
			fail_msg("%s: error '%s' lacks '%s'", cases[i].spec, err, cases[i].want);
		assert_non_null(strstr(err, "SluicePrefilter bad: "));
		/* From the API: kept, not applied, the same reason. */
		assert_int_equal(pf_parse_api(j, &o, err, sizeof(err)), 0);
		assert_non_null(o->invalid);
		assert_non_null(strstr(o->invalid, cases[i].want));
		assert_false(pf_applies(o, NULL));
		pf_free(o);
		json_decref(j);
		free(t);
	}
}

/* ---- refusals through the store (sluicectl apply) ------------------------ */

static int apply(struct store *s, const char *text, char *err, size_t errlen)
{
	json_t *objs = jt(text), *srcs = json_array(), *ch = json_array();
	int ret;

	for (size_t i = 0; i < json_array_size(objs); i++)
		json_array_append_new(srcs, json_string("pf.yaml"));
	err[0] = '\0';
	ret = store_apply(s, objs, srcs, ch, err, errlen);
	json_decref(objs);
	json_decref(srcs);
	json_decref(ch);
	return ret;
}

static size_t count_prefilters(struct store *s)
{
	const struct pf_object **v;
	size_t n = store_prefilters(s, &v, NULL);

	free(v);
	return n;
}

#define NODE2 "{'apiVersion': 'v1', 'kind': 'Node', 'metadata': {'name': 'node-2', " \
	"'labels': {'edge': 'true'}}, 'spec': {'podCIDR': '10.244.2.0/24'}, 'status': " \
	"{'addresses': [{'type': 'InternalIP', 'address': '10.0.0.12'}, {'type': 'ExternalIP', " \
	"'address': '192.0.2.12'}]}}"

static void refused(struct store *s, const char *spec, const char *want)
{
	char *o = obj_text("block-scanners", spec), list[2048], err[2048];

	snprintf(list, sizeof(list), "[%s]", o);
	if (!apply(s, list, err, sizeof(err)))
		fail_msg("%s: applied", spec);
	if (!strstr(err, want))
		fail_msg("%s: error '%s' lacks '%s'", spec, err, want);
	assert_non_null(strstr(err, "nothing was applied"));
	assert_int_equal(count_prefilters(s), 0);
	free(o);
}

static void accepted(struct store *s, const char *name, const char *spec)
{
	char *o = obj_text(name, spec), list[2048], err[2048];

	snprintf(list, sizeof(list), "[%s]", o);
	if (apply(s, list, err, sizeof(err)))
		fail_msg("%s: refused: %s", spec, err);
	free(o);
}

static void test_refusals(void **state)
{
	struct store *s = store_in(dir, "refusals");
	struct cidr4 self = { .net = ip("10.244.1.0"), .prefix = 24 };
	char err[2048];

	(void)state;
	assert_int_equal(store_set_self(s, "node-1", &self, ip("10.0.0.11")), 0);
	store_set_apiserver(s, ip("10.0.0.1"));
	assert_int_equal(apply(s, "[" NODE2 "]", err, sizeof(err)), 0);
	refused(s, "{'deny': ['203.0.113.0/24', '10.0.0.0/8']}",
		"pf.yaml: SluicePrefilter block-scanners: spec.deny[1] 10.0.0.0/8 covers node "
		"node-2's address 10.0.0.12; narrow it or add an except");
	/* Every address of a node, not only the InternalIP. */
	refused(s, "{'deny': ['192.0.2.0/24']}", "covers node node-2's address 192.0.2.12");
	refused(s, "{'deny': ['10.0.0.11/32']}",
		"spec.deny[0] 10.0.0.11/32 covers this node's address 10.0.0.11");
	refused(s, "{'deny': ['10.0.0.0/30']}", "covers the API server's address 10.0.0.1");
	/* Pod CIDRs, both directions, this node's and another's. */
	refused(s, "{'deny': ['10.244.2.128/25']}",
		"spec.deny[0] 10.244.2.128/25 overlaps the pod CIDR 10.244.2.0/24 of node node-2; "
		"narrow it;");
	refused(s, "{'deny': ['10.244.0.0/16']}", "overlaps the pod CIDR 10.244.2.0/24 of node");
	refused(s, "{'deny': ['10.244.1.7/32']}", "overlaps this node's pod CIDR 10.244.1.0/24");
	/* An except naming the guarded address (or range) is no lock-out;
	 * an except of another address is. */
	refused(s, "{'deny': ['10.0.0.0/28'], 'except': ['10.0.0.13/32']}", "10.0.0.12");
	accepted(s, "ok1", "{'deny': ['10.0.0.0/28'], 'except': ['10.0.0.12/32', '10.0.0.11/32', "
		 "'10.0.0.1/32']}");
	accepted(s, "ok2", "{'deny': ['10.244.0.0/16'], 'except': ['10.244.1.0/24', "
		 "'10.244.2.0/23']}");
	assert_int_equal(count_prefilters(s), 2);
	/* A Node applied with the prefilter in one apply counts too. */
	{
		char *pf = obj_text("with-node", "{'deny': ['172.16.0.0/12']}"), list[4096];

		snprintf(list, sizeof(list),
			 "[%s, {'apiVersion': 'v1', 'kind': 'Node', 'metadata': {'name': 'node-3'}, "
			 "'status': {'addresses': [{'type': 'InternalIP', 'address': "
			 "'172.16.0.3'}]}}]", pf);
		assert_int_not_equal(apply(s, list, err, sizeof(err)), 0);
		assert_non_null(strstr(err, "covers node node-3's address 172.16.0.3"));
		free(pf);
	}
	assert_int_equal(count_prefilters(s), 2);
	/* From the API nothing is refused: an offending object is stored (the
	 * sync leaves its entry out), an unreadable one too, applying nothing. */
	{
		char *t1 = obj_text("api-lockout", "{'deny': ['10.0.0.0/8']}");
		char *t2 = obj_text("api-bad", "{'deny': ['10.0.0.1/8']}");
		json_t *j1 = jt(t1), *j2 = jt(t2), *ch = json_array();
		const struct pf_object **v;
		bool *kube;
		size_t n;

		assert_int_equal(store_kube_event(s, "ADDED", j1, ch), 0);
		assert_int_equal(store_kube_event(s, "ADDED", j2, ch), 0);
		assert_int_equal(json_array_size(ch), 2);
		n = store_prefilters(s, &v, &kube);
		assert_int_equal(n, 4);
		for (size_t i = 0; i < n; i++) {
			if (!strcmp(v[i]->name, "api-bad")) {
				assert_true(kube[i]);
				assert_non_null(strstr(v[i]->invalid, "has host bits set"));
			}
			if (!strcmp(v[i]->name, "api-lockout")) {
				struct pf_guards g = { 0 };
				char why[512];

				assert_true(kube[i]);
				assert_null(v[i]->invalid);
				assert_int_equal(store_prefilter_guards(s, &g), 0);
				assert_true(pf_entry_offends(v[i], 0, &g, why, sizeof(why)));
				assert_non_null(strstr(why, "covers node node-2's address 10.0.0.12"));
				pf_guards_free(&g);
			}
			if (!strcmp(v[i]->name, "ok1"))
				assert_false(kube[i]);
		}
		free(v);
		free(kube);
		json_decref(j1);
		json_decref(j2);
		json_decref(ch);
		free(t1);
		free(t2);
	}
	store_close(s);
}

/* ---- flattening against the definition ----------------------------------- */

/* A fixed-seed xorshift shared by the random tests: a failure repeats. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint32_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 11);
}

/* A random prefix inside base/24: lengths 24..32, so they nest often. */
static struct cidr4 rand_cidr(uint32_t base)
{
	int len = 24 + (int)(rnd() % 9);
	uint32_t mask = ~0u << (32 - len);

	return (struct cidr4){ .net = (base | (rnd() & 0xff)) & mask, .prefix = len };
}

static bool holds_(uint32_t net, uint8_t len, uint32_t a)
{
	return len ? (a & (~0u << (32 - len))) == net : true;
}

static bool in(const struct cidr4 *c, uint32_t a)
{
	return cidr4_contains(c, a);
}

static void test_flatten_random(void **state)
{
	const uint32_t base = ip("198.51.100.0");

	(void)state;
	for (int round = 0; round < 300; round++) {
		size_t nobj = 1 + rnd() % 8, nt;
		struct pf_object objs[8];
		struct pf_input inp[8];
		bool *skip[8];
		struct pf_prefix *t;

		memset(objs, 0, sizeof(objs));
		for (size_t i = 0; i < nobj; i++) {
			struct pf_object *o = &objs[i];

			o->ndeny = 1 + rnd() % 6;
			o->deny = calloc(o->ndeny, sizeof(*o->deny));
			skip[i] = calloc(o->ndeny, sizeof(bool));
			o->nexcept = rnd() % 5;
			o->except = calloc(o->nexcept + 1, sizeof(*o->except));
			for (size_t j = 0; j < o->ndeny; j++) {
				o->deny[j] = rand_cidr(base);
				skip[i][j] = rnd() % 7 == 0;
			}
			/* An except inside some deny, as parsing insists. */
			for (size_t j = 0; j < o->nexcept; j++) {
				const struct cidr4 *d = &o->deny[rnd() % o->ndeny];
				int len = d->prefix + (int)(rnd() % (33 - d->prefix));
				uint32_t host = len < 32 ? rnd() & ~(~0u << (32 - len)) : 0;

				(void)host;
				o->except[j] = (struct cidr4){
					.net = (d->net | (rnd() & ~(d->prefix ? ~0u << (32 - d->prefix)
									      : 0))) &
					       (len ? ~0u << (32 - len) : 0),
					.prefix = len };
			}
			/* Slots not in order, and not dense. */
			inp[i] = (struct pf_input){ .o = o, .skip = skip[i],
						    .slot = (unsigned)((i * 7 + 3) % 64) };
		}
		assert_int_equal(pf_flatten(inp, nobj, &t, &nt), 0);
		for (size_t i = 1; i < nt; i++)
			assert_true(t[i - 1].net < t[i].net ||
				    (t[i - 1].net == t[i].net && t[i - 1].len < t[i].len));
		for (uint32_t a = base - 16; a < base + 256 + 16; a++) {
			uint64_t want = 0;

			for (size_t i = 0; i < nobj; i++) {
				bool d = false, e = false;

				for (size_t j = 0; j < objs[i].ndeny; j++)
					d |= !skip[i][j] && in(&objs[i].deny[j], a);
				for (size_t j = 0; j < objs[i].nexcept; j++)
					e |= in(&objs[i].except[j], a);
				if (d && !e)
					want |= 1ull << inp[i].slot;
			}
			/* Its counter: its own, or that of a deny prefix above it
			 * (of some object that drops it). */
			for (int len = 32; len >= 0; len--) {
				size_t k;

				for (k = 0; k < nt; k++)
					if (t[k].len == len && holds_(t[k].net, t[k].len, a))
						break;
				if (k == nt)
					continue;
				if (!t[k].deny && t[k].rules) {
					assert_true(t[k].counted_as < nt);
					assert_true(t[t[k].counted_as].deny);
					assert_true(holds_(t[t[k].counted_as].net,
							   t[t[k].counted_as].len, a));
				}
				break;
			}
			if (pf_lookup(t, nt, a) != want)
				fail_msg("round %d address %u: rules %#llx, want %#llx", round,
					 a - base, (unsigned long long)pf_lookup(t, nt, a),
					 (unsigned long long)want);
		}
		free(t);
		for (size_t i = 0; i < nobj; i++) {
			free(objs[i].deny);
			free(objs[i].except);
			free(skip[i]);
		}
	}
}

/* The guards' index finds the same first guard as a scan of them all. */
static void test_guards_index(void **state)
{
	const uint32_t base = ip("10.20.0.0");

	(void)state;
	for (int round = 0; round < 200; round++) {
		struct pf_guards g = { 0 }, scan;
		struct pf_object o = { .name = "g" };
		char w1[512], w2[512];

		o.ndeny = 1 + rnd() % 8;
		o.deny = calloc(o.ndeny, sizeof(*o.deny));
		o.nexcept = rnd() % 3;
		o.except = calloc(o.nexcept + 1, sizeof(*o.except));
		for (size_t j = 0; j < o.ndeny; j++) {
			o.deny[j] = rand_cidr(base);
			if (rnd() % 4 == 0)	/* shorter ones too */
				o.deny[j] = (struct cidr4){ .net = base & (~0u << 8), .prefix = 16 + (int)(rnd() % 8) };
			o.deny[j].net &= ~0u << (32 - o.deny[j].prefix);
		}
		for (size_t j = 0; j < o.nexcept; j++)
			o.except[j] = (struct cidr4){ .net = base | (rnd() & 0xff), .prefix = 32 };
		for (int k = 0; k < 1 + (int)(rnd() % 12); k++) {
			if (rnd() % 3) {
				assert_int_equal(pf_guards_add_addr(&g, base | (rnd() & 0xff), "a%d", k), 0);
			} else {
				struct cidr4 c = rand_cidr(base);

				if (rnd() % 3 == 0)
					c = (struct cidr4){ .net = base & (~0u << 12), .prefix = 20 };
				assert_int_equal(pf_guards_add_range(&g, &c, "r%d", k), 0);
			}
		}
		scan = g;	/* the same guards, without an index */
		scan.by_net = NULL;
		assert_int_equal(pf_guards_index(&g), 0);
		for (size_t j = 0; j < o.ndeny; j++) {
			bool a = pf_entry_offends(&o, j, &scan, w1, sizeof(w1));
			bool b = pf_entry_offends(&o, j, &g, w2, sizeof(w2));

			assert_int_equal(a, b);
			if (a)
				assert_string_equal(w1, w2);
		}
		pf_guards_free(&g);
		free(o.deny);
		free(o.except);
	}
}

/* ---- the maps -------------------------------------------------------------- */

static bool make_maps(struct pf_maps *m)
{
	LIBBPF_OPTS(bpf_map_create_opts, nopre, .map_flags = BPF_F_NO_PREALLOC);

	m->lpm = bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "t_pf4", sizeof(struct sluice_pf_key4),
				sizeof(struct sluice_pf_val4), 4096, &nopre);
	if (m->lpm < 0)
		return false;
	m->host = bpf_map_create(BPF_MAP_TYPE_HASH, "t_pfh4", 4, sizeof(struct sluice_pf_val4),
				 4096, &nopre);
	m->ports = bpf_map_create(BPF_MAP_TYPE_HASH, "t_pfp4", sizeof(struct sluice_pf_port4), 8,
				  256, &nopre);
	m->cfg = bpf_map_create(BPF_MAP_TYPE_ARRAY, "t_pfcfg", 4, sizeof(struct sluice_pf_cfg4), 1,
				NULL);
	m->ent = bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, "t_pfent", 4,
				sizeof(struct sluice_metric), SLUICE_PF_ENTRY_SLOTS, NULL);
	m->rul = bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, "t_pfrul", 4,
				sizeof(struct sluice_metric), SLUICE_PF_RULES_MAX, NULL);
	assert_true(m->host >= 0 && m->ports >= 0 && m->cfg >= 0 && m->ent >= 0 && m->rul >= 0);
	return true;
}

static struct pf_maps dup_maps(const struct pf_maps *m)
{
	return (struct pf_maps){ dup(m->lpm), dup(m->host), dup(m->ports),
				 dup(m->cfg), dup(m->ent), dup(m->rul) };
}

/* The datapath's lookup on the real maps: the hash, then the trie. */
static bool dp_lookup(const struct pf_maps *m, uint32_t a, struct sluice_pf_val4 *v)
{
	__be32 k = htonl(a);
	struct sluice_pf_key4 lk = { .prefixlen = 32, .addr = htonl(a) };

	if (!bpf_map_lookup_elem(m->host, &k, v))
		return true;
	return !bpf_map_lookup_elem(m->lpm, &lk, v);
}

static size_t map_count(int fd, size_t key_size)
{
	char k[16], nk[16];
	size_t n = 0;
	void *prev = NULL;

	assert_true(key_size <= sizeof(k));
	while (!bpf_map_get_next_key(fd, prev, nk)) {
		memcpy(k, nk, key_size);
		prev = k;
		n++;
	}
	return n;
}

static struct sluice_pf_cfg4 cfg_of(const struct pf_maps *m)
{
	struct sluice_pf_cfg4 c;
	__u32 zero = 0;

	assert_int_equal(bpf_map_lookup_elem(m->cfg, &zero, &c), 0);
	return c;
}

static const struct pf_guards no_guards;

static int do_sync(struct pf_sync *ps, struct pf_object **objs, size_t n, struct pf_sync_stats *st)
{
	char err[512];
	int ret = pf_sync_apply(ps, (const struct pf_object *const *)objs, NULL, n, NULL,
				&no_guards, st, err, sizeof(err));

	if (ret)
		fail_msg("pf_sync_apply: %s", err);
	return ret;
}

static int slot_of(struct pf_sync *ps, const char *name)
{
	json_t *it = pf_sync_status_json(ps, name, false);
	int slot;

	assert_non_null(it);
	slot = json_is_integer(json_object_get(it, "ruleSlot"))
		       ? (int)json_integer_value(json_object_get(it, "ruleSlot")) : -1;
	json_decref(it);
	return slot;
}

static void test_maps(void **state)
{
	struct pf_maps m, m2;
	struct pf_sync *ps;
	struct pf_sync_stats st;
	struct pf_object *o[3];
	struct sluice_pf_val4 v;
	char err[512], slots[700];
	int sa, sb, sc;

	(void)state;
	if (!make_maps(&m))
		skip();	/* not root: no BPF maps */
	snprintf(slots, sizeof(slots), "%s/pf-slots.json", dir);
	m2 = dup_maps(&m);
	assert_int_equal(pf_sync_open(&ps, &m2, slots, err, sizeof(err)), 0);
	o[0] = parse_ok("a", "{'deny': ['203.0.113.0/24', '198.51.100.7/32'], 'except': "
			"['203.0.113.9/32']}");
	o[1] = parse_ok("b", "{'deny': ['203.0.113.0/25', '192.0.2.0/24'], 'ports': [{'port': "
			"443}, {'protocol': 'UDP', 'port': 53}]}");
	assert_int_equal(do_sync(ps, o, 2, &st), 0);
	sa = slot_of(ps, "a");
	sb = slot_of(ps, "b");
	assert_true(sa >= 0 && sb >= 0 && sa != sb);
	/* Exactly: 3 trie entries (two /24, one /25), 2 hash entries. */
	assert_int_equal(map_count(m.lpm, 8), 3);
	assert_int_equal(map_count(m.host, 4), 2);
	assert_int_equal(map_count(m.ports, 4), 2);
	assert_int_equal(cfg_of(&m).active, (1ull << sa) | (1ull << sb));
	assert_int_equal(cfg_of(&m).all_ports, 1ull << sa);
	assert_true(dp_lookup(&m, ip("203.0.113.5"), &v));
	assert_int_equal(v.rules, (1ull << sa) | (1ull << sb));
	assert_int_not_equal(v.entry, 0);
	assert_true(dp_lookup(&m, ip("203.0.113.200"), &v));
	assert_int_equal(v.rules, 1ull << sa);
	{
		struct sluice_pf_val4 v25;

		/* a's except, inside b's /25: b drops it, and counts it there. */
		assert_true(dp_lookup(&m, ip("203.0.113.9"), &v));
		assert_int_equal(v.rules, 1ull << sb);
		assert_true(dp_lookup(&m, ip("203.0.113.10"), &v25));
		assert_int_not_equal(v25.entry, 0);
		assert_int_equal(v.entry, v25.entry);
	}
	assert_true(dp_lookup(&m, ip("198.51.100.7"), &v));
	assert_int_equal(v.rules, 1ull << sa);
	assert_false(dp_lookup(&m, ip("198.51.100.8"), &v));
	{
		struct sluice_pf_port4 pk = { .proto = IPPROTO_UDP, .port = htons(53) };
		__u64 mask;

		assert_int_equal(bpf_map_lookup_elem(m.ports, &pk, &mask), 0);
		assert_int_equal(mask, 1ull << sb);
	}
	/* The same again: nothing written. */
	assert_int_equal(do_sync(ps, o, 2, &st), 0);
	assert_int_equal(st.written, 0);
	assert_int_equal(st.removed, 0);
	/* Update: a loses its /32; c arrives; a and b keep their slots and
	 * the /24's counter slot stays. */
	assert_true(dp_lookup(&m, ip("203.0.113.200"), &v));
	{
		uint32_t entry24 = v.entry;

		pf_free(o[0]);
		o[0] = parse_ok("a", "{'deny': ['203.0.113.0/24'], 'except': ['203.0.113.9/32']}");
		o[2] = parse_ok("c", "{'deny': ['10.9.0.0/16']}");
		assert_int_equal(do_sync(ps, o, 3, &st), 0);
		assert_int_equal(slot_of(ps, "a"), sa);
		assert_int_equal(slot_of(ps, "b"), sb);
		sc = slot_of(ps, "c");
		assert_true(sc >= 0 && sc != sa && sc != sb);
		assert_true(dp_lookup(&m, ip("203.0.113.200"), &v));
		assert_int_equal(v.entry, entry24);
		assert_false(dp_lookup(&m, ip("198.51.100.7"), &v));
		assert_int_equal(map_count(m.host, 4), 1);
		assert_int_equal(map_count(m.lpm, 8), 4);
	}
	/* Delete a: its slot is not given to d in the same sync (d takes a
	 * slot nobody held), its entries are gone. */
	{
		struct pf_object *o2[3] = { o[1], o[2],
					    parse_ok("d", "{'deny': ['10.8.0.0/16']}") };

		assert_int_equal(do_sync(ps, o2, 3, &st), 0);
		assert_int_not_equal(slot_of(ps, "d"), sa);
		assert_int_equal(slot_of(ps, "b"), sb);
		assert_int_equal(slot_of(ps, "c"), sc);
		assert_true(dp_lookup(&m, ip("203.0.113.200"), &v) == false);
		assert_true(dp_lookup(&m, ip("203.0.113.5"), &v));
		assert_int_equal(v.rules, 1ull << sb);
		/* Restart: a new reader of the same maps and slot file writes
		 * nothing for the same objects. */
		pf_sync_close(ps);
		m2 = dup_maps(&m);
		assert_int_equal(pf_sync_open(&ps, &m2, slots, err, sizeof(err)), 0);
		assert_int_equal(do_sync(ps, o2, 3, &st), 0);
		assert_int_equal(st.written, 0);
		assert_int_equal(st.removed, 0);
		assert_int_equal(slot_of(ps, "b"), sb);
		pf_free(o2[2]);
	}
	/* A Node that appears later: its address is left out, the rest stays. */
	{
		struct pf_guards g = { 0 };
		struct pf_object *o3[1] = { o[1] };
		json_t *it;

		assert_int_equal(pf_guards_add_addr(&g, ip("192.0.2.77"), "node node-9's address "
						    "192.0.2.77"), 0);
		assert_int_equal(pf_sync_apply(ps, (const struct pf_object *const *)o3, NULL, 1,
					       NULL, &g, &st, err, sizeof(err)), 0);
		assert_false(dp_lookup(&m, ip("192.0.2.1"), &v));
		assert_true(dp_lookup(&m, ip("203.0.113.1"), &v));
		it = pf_sync_status_json(ps, "b", true);
		assert_int_equal(json_integer_value(json_object_get(it, "leftOutEntries")), 1);
		assert_non_null(strstr(json_string_value(json_object_get(
					       json_array_get(json_object_get(it, "leftOut"), 0),
					       "reason")),
				       "spec.deny[1] 192.0.2.0/24 covers node node-9's address"));
		assert_true(json_is_true(json_object_get(it, "applied")));
		json_decref(it);
		assert_non_null(pf_sync_problem(ps, 0));
		pf_guards_free(&g);
	}
	/* Everything deleted: the maps are empty. */
	assert_int_equal(do_sync(ps, NULL, 0, &st), 0);
	assert_int_equal(map_count(m.lpm, 8), 0);
	assert_int_equal(map_count(m.host, 4), 0);
	assert_int_equal(map_count(m.ports, 4), 0);
	assert_int_equal(cfg_of(&m).active, 0);
	pf_sync_close(ps);
	for (int i = 0; i < 3; i++)
		pf_free(o[i]);
	close(m.lpm);
	close(m.host);
	close(m.ports);
	close(m.cfg);
	close(m.ent);
	close(m.rul);
}

struct watcher {
	const struct pf_maps *m;
	uint32_t addr;
	atomic_bool stop;
	atomic_ulong looks;
	unsigned long misses;
};

static void *watch_addr(void *arg)
{
	struct watcher *w = arg;
	struct sluice_pf_val4 v;

	while (!atomic_load(&w->stop)) {
		w->looks++;
		if (!dp_lookup(w->m, w->addr, &v) || !v.rules)
			w->misses++;
	}
	return NULL;
}

/* An update never lets a source that stays denied through: 4 096 /32s
 * replaced by the /16 holding them, while another thread looks one of
 * them up the way the datapath does. Removing the /32s before writing the
 * /16 would leave it unmatched for milliseconds. */
static void test_no_gap(void **state)
{
	struct pf_maps m, m2;
	struct pf_sync *ps;
	struct pf_sync_stats st;
	struct pf_object *o;
	struct watcher w = { 0 };
	pthread_t th;
	char err[512];
	json_t *deny = json_array(), *obj;

	(void)state;
	if (!make_maps(&m))
		skip();
	m2 = dup_maps(&m);
	assert_int_equal(pf_sync_open(&ps, &m2, NULL, err, sizeof(err)), 0);
	for (int i = 0; i < 4096; i++) {
		char buf[24];

		snprintf(buf, sizeof(buf), "10.1.%d.%d/32", i / 256, i % 256);
		json_array_append_new(deny, json_string(buf));
	}
	obj = json_pack("{s:s, s:s, s:{s:s}, s:{s:o}}", "apiVersion", "sluice.io/v1alpha1", "kind",
			"SluicePrefilter", "metadata", "name", "flip", "spec", "deny", deny);
	assert_int_equal(pf_parse(obj, &o, err, sizeof(err)), 0);
	assert_int_equal(do_sync(ps, &o, 1, &st), 0);
	pf_free(o);
	json_decref(obj);
	w.m = &m;
	w.addr = ip("10.1.0.0");	/* the first a delete-first sync would remove */
	assert_int_equal(pthread_create(&th, NULL, watch_addr, &w), 0);
	while (!w.looks)
		sched_yield();
	o = parse_ok("flip", "{'deny': ['10.1.0.0/16']}");
	assert_int_equal(do_sync(ps, &o, 1, &st), 0);
	assert_int_equal(st.removed, 4096);
	atomic_store(&w.stop, true);
	pthread_join(th, NULL);
	assert_true(w.looks > 0);
	assert_int_equal(w.misses, 0);
	pf_free(o);
	pf_sync_close(ps);
	close(m.lpm);
	close(m.host);
	close(m.ports);
	close(m.cfg);
	close(m.ent);
	close(m.rul);
}

static void test_65th(void **state)
{
	struct pf_object *o[SLUICE_PF_RULES_MAX + 1];
	struct pf_maps m, m2;
	struct pf_sync *ps;
	struct pf_sync_stats st;
	char err[512], name[16], spec[128];
	json_t *it;

	(void)state;
	if (!make_maps(&m))
		skip();
	m2 = dup_maps(&m);
	assert_int_equal(pf_sync_open(&ps, &m2, NULL, err, sizeof(err)), 0);
	for (int i = 0; i <= SLUICE_PF_RULES_MAX; i++) {
		snprintf(name, sizeof(name), "p%02d", i);
		snprintf(spec, sizeof(spec), "{'deny': ['10.%d.0.0/16']}", i);
		o[i] = parse_ok(name, spec);
	}
	assert_int_equal(do_sync(ps, o, SLUICE_PF_RULES_MAX + 1, &st), 0);
	assert_int_equal(cfg_of(&m).active, ~0ull);
	it = pf_sync_status_json(ps, "p64", false);
	assert_false(json_is_true(json_object_get(it, "applied")));
	assert_non_null(strstr(json_string_value(json_object_get(it, "reason")), "more than 64"));
	json_decref(it);
	assert_int_equal(map_count(m.lpm, 8), SLUICE_PF_RULES_MAX);
	/* One goes: the 65th takes its slot at the next sync. */
	assert_int_equal(do_sync(ps, o + 1, SLUICE_PF_RULES_MAX, &st), 0);
	it = pf_sync_status_json(ps, "p64", false);
	assert_true(json_is_true(json_object_get(it, "applied")));
	json_decref(it);
	for (int i = 0; i <= SLUICE_PF_RULES_MAX; i++)
		pf_free(o[i]);
	pf_sync_close(ps);
	close(m.lpm);
	close(m.host);
	close(m.ports);
	close(m.cfg);
	close(m.ent);
	close(m.rul);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_ok),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_flatten_random),
		cmocka_unit_test(test_guards_index),
		cmocka_unit_test(test_maps),
		cmocka_unit_test(test_no_gap),
		cmocka_unit_test(test_65th),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
