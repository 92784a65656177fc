// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "api.h"
#include "cidr.h"
#include "log.h"
#include "statefile.h"
#include "prefilter.h"
#include "service.h"
#include "store.h"

/* Policies last: store_view_build counts kinds >= K_NETPOL as policies.
 * A kind added here needs its field table in lib/kschema.c, or apply
 * checks none of its fields. */
enum obj_kind { K_NAMESPACE = 0, K_POD, K_NODE, K_SERVICE, K_SLICE, K_PREFILTER, K_NETPOL, K_SNP,
		K_SCNP };

static const struct {
	const char *api_version;
	const char *kind;
	bool namespaced;
} kinds[] = {
	[K_NAMESPACE] = { "v1", "Namespace", false },
	[K_POD] = { "v1", "Pod", true },
	[K_NODE] = { "v1", "Node", false },
	[K_SERVICE] = { "v1", "Service", true },
	[K_SLICE] = { "discovery.k8s.io/v1", "EndpointSlice", true },
	[K_PREFILTER] = { "sluice.io/v1alpha1", "SluicePrefilter", false },
	[K_NETPOL] = { "networking.k8s.io/v1", "NetworkPolicy", true },
	[K_SNP] = { "sluice.io/v1alpha1", "SluiceNetworkPolicy", true },
	[K_SCNP] = { "sluice.io/v1alpha1", "SluiceClusterNetworkPolicy", false },
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

struct pod_attrs;

struct object {
	enum obj_kind kind : 8;
	bool kube;			/* from the Kubernetes API, not `sluicectl apply` */
	/* The last list of this kind that held it (store->list_gen), for
	 * store_kube_list_end to remove what no page of a list named. */
	uint32_t listed;
	char *ns;	/* "" for cluster-scoped kinds */
	char *name;	/* in ns's allocation (object_names) */
	/* The object as compact JSON text with sorted keys (json_text), not
	 * as a parsed tree: a tree of a small Service or EndpointSlice takes
	 * ~3.6 KB of heap, its text ~0.3 KB, and 10 000 Services with their
	 * slices were 70 MB of trees. Sorted keys make equal objects equal
	 * text, so a strcmp says "unchanged" as json_equal did.
	 * NULL for a Pod from the Kubernetes API: its parsed form is all
	 * sluice keeps of it, and its text is made from that when saved or
	 * shown (pod_text); the text was 40 % of the store at 100 000 pods. */
	char *json;
	/* The parsed form of kind's own: one at a time (every reader checks
	 * the kind first), so an object is the size of the largest, not of
	 * all five added up (1288 bytes each, 25 MB for 20 000 objects). */
	union {
		struct pol_namespace nsobj;	/* K_NAMESPACE */
		struct {			/* K_POD */
			struct pol_pod pod;
			/* Its labels and ports, shared with every Pod that
			 * has the same (pod_intern); NULL while parsing. */
			struct pod_attrs *attrs;
		};
		/* The larger forms of the few: behind a pointer, so that a
		 * Pod's slot is not the size of a Service's (144 bytes). */
		struct store_node *node;	/* K_NODE */
		struct svc_service *svc;	/* K_SERVICE */
		struct svc_slice *slice;	/* K_SLICE */
		struct pf_object *pf;		/* K_PREFILTER */
	};
	struct pol_policy *pol;		/* policies (NULL for the other kinds) */
};

/*
 * A Pod's labels and container ports, in one allocation, interned: the
 * pods of one Deployment (or of one label set and ports) share a block
 * (refs), so 100 000 pods hold a few hundred label sets, not 100 000
 * (three allocations a pod: ~130 bytes). Blocks are found by content in
 * their table (struct attrs_table, the store's), and leave it when the
 * last Pod goes.
 */
struct attrs_table {
	struct pod_attrs **b;
	size_t nb, n;		/* buckets (a power of two, or 0), blocks */
	size_t bytes;		/* of the blocks */
};

struct pod_attrs {
	struct pod_attrs *next;	/* same bucket */
	struct attrs_table *t;
	uint64_t hash;
	size_t refs, size;
	struct pol_labels labels;		/* into data */
	size_t nports;
	struct pol_container_port *ports;	/* into data */
	max_align_t data[];	/* the labels, the ports, then their strings */
};

struct store {
	struct object *v;
	size_t n, cap;
	/* s->v indexed by kind, namespace and name (find): open addressing,
	 * linear probing, a slot holds an index into v plus one (0: empty).
	 * A linear find() ran once per object of every apply and relist:
	 * 10 000 Services with their slices applied 2 000 at a time were
	 * 10^8 string compares. NULL (out of memory): find() scans. */
	uint32_t *idx;
	size_t idx_cap;	/* a power of two, at least twice n */
	/* Pods and policies in key order for paging `get` (store_order):
	 * indexes into v, sorted again only when objects were added or
	 * removed since (gen), so a listing of 100 pages sorts once, not 100
	 * times. Indexes, not pointers: an object replaced in place keeps
	 * its slot and key but not its parsed parts. */
	unsigned long gen;	/* bumped by every add and removal */
	struct order_cache {
		uint32_t *v;
		size_t n;
		unsigned long gen;	/* s->gen when sorted */
		bool valid;
	} order[2];		/* by enum store_order */
	/* The objects that are not Pods (indexes into v), by the same rule:
	 * what a lean view (store_view_build_lean, on every policy sync and
	 * CNI ADD) walks instead of every object (100 000 pods: ~1 ms). */
	struct others_cache {
		uint32_t *v;
		size_t n, cap;
		unsigned long gen;
		bool valid;
	} others;
	/* The view's namespaces in name order (positions in its ns[], which
	 * follows others): kept by the same rule, so that a sync does not
	 * sort 1 000 namespaces again (a name never changes in place). */
	struct {
		uint32_t *pos;
		size_t n;
		unsigned long gen;
		bool valid;
	} ns_order;
	bool dirty;	/* changed since last saved (store_flush) */
	/* A list from the API in pages, per kind: list_gen[k] counts the
	 * lists begun, and a page marks each object it holds with it (the
	 * object's listed); listing[k] while one is begun and not ended. */
	uint32_t list_gen[NKINDS];
	bool listing[NKINDS];
	/* Objects put or removed since the last store_changes_take, for the
	 * reconcile step to redo only what they affect. Starts (and falls
	 * back, past STORE_CHANGES_MAX) as "everything": the consumer then
	 * recomputes from the whole store. */
	struct chrec {
		enum store_kind kind;
		size_t ns, name;	/* offsets into chs */
	} *ch;
	size_t nch, capch;
	/* Their names, one after the other: one buffer, not two allocations
	 * per change freed in pieces between the objects (a list of 100 000
	 * pods left the heap fragmented). */
	char *chs;
	size_t nchs, capchs;
	bool ch_all;
	char path[PATH_MAX];	/* the snapshot, <state-dir>/objects.json */
	/* Saving (see "saving" below): the snapshot of generation snap_gen and the
	 * journal of what changed since, so a change costs its own size. */
	char dir[PATH_MAX];	/* the state directory, fsynced after a rename */
	char jpath[PATH_MAX];	/* <state-dir>/objects.journal */
	int jfd;		/* the journal, open for writing; -1: not yet */
	uint64_t snap_gen;	/* the snapshot's generation; 0: none (or an old array) */
	off_t snap_size;	/* bytes of the snapshot */
	off_t j_size;		/* bytes of the journal that hold good records */
	bool j_reset;		/* the journal on disk is not this snapshot's: start it again */
	bool j_trunc;		/* bytes past j_size (a dropped tail) to cut before appending */
	bool loading;		/* store_open is putting saved objects back */
	/* Keys put or removed since the last save; past the bound (or out of
	 * memory) unsaved_all: the next save rewrites the snapshot. */
	struct unsaved {
		enum obj_kind kind;
		char *ns;	/* one allocation: ns, then name */
		char *name;
	} *unsaved;
	size_t nunsaved, capunsaved;
	bool unsaved_all;
	/* This node, for checking other Node objects against (store_set_self). */
	char *self_name;
	bool has_self_cidr;
	struct cidr4 self_cidr;
	uint32_t self_ip;
	uint32_t apiserver_ip;	/* store_set_apiserver; 0: none */
	struct attrs_table attrs;	/* the Pods' labels and ports (pod_intern) */
};

static uint64_t fnv_str(uint64_t h, const char *s)
{
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
	return (h ^ 0xff) * 0x100000001b3ULL; /* the end: ("ab","c") != ("a","bc") */
}

static uint64_t attrs_hash(const struct pol_pod *p)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < p->labels.n; i++)
		h = fnv_str(fnv_str(h, p->labels.v[i].key), p->labels.v[i].value);
	h = (h ^ 0xfe) * 0x100000001b3ULL;
	for (size_t i = 0; i < p->nports; i++) {
		h = (h ^ p->ports[i].port) * 0x100000001b3ULL;
		h = (h ^ p->ports[i].proto) * 0x100000001b3ULL;
		h = p->ports[i].name ? fnv_str(h, p->ports[i].name) : (h ^ 0xfd) * 0x100000001b3ULL;
	}
	return h;
}

static void attrs_release(struct pod_attrs *a)
{
	struct attrs_table *t = a->t;
	struct pod_attrs **pp;

	if (--a->refs)
		return;
	for (pp = &t->b[a->hash & (t->nb - 1)]; *pp != a; pp = &(*pp)->next)
		;
	*pp = a->next;
	t->n--;
	t->bytes -= a->size;
	free(a);
}

/* A copy of p's labels and ports as one block (refs 1), not in a table. */
static struct pod_attrs *attrs_new(const struct pol_pod *p, uint64_t hash)
{
	size_t strs = 0, size;
	struct pod_attrs *a;
	char *c;

	for (size_t i = 0; i < p->labels.n; i++)
		strs += strlen(p->labels.v[i].key) + strlen(p->labels.v[i].value) + 2;
	for (size_t i = 0; i < p->nports; i++)
		strs += p->ports[i].name ? strlen(p->ports[i].name) + 1 : 0;
	size = sizeof(*a) + p->labels.n * sizeof(*p->labels.v) + p->nports * sizeof(*p->ports) +
	       strs;
	a = malloc(size);
	if (!a)
		return NULL;
	memset(a, 0, sizeof(*a));
	a->hash = hash;
	a->refs = 1;
	a->size = size;
	a->labels.n = p->labels.n;
	a->labels.v = (struct pol_label *)a->data;
	a->nports = p->nports;
	a->ports = (struct pol_container_port *)(a->labels.v + p->labels.n);
	c = (char *)(a->ports + p->nports);
	for (size_t i = 0; i < p->labels.n; i++) {
		a->labels.v[i].key = c;
		c = stpcpy(c, p->labels.v[i].key) + 1;
		a->labels.v[i].value = c;
		c = stpcpy(c, p->labels.v[i].value) + 1;
	}
	for (size_t i = 0; i < p->nports; i++) {
		a->ports[i] = p->ports[i];
		if (p->ports[i].name) {
			a->ports[i].name = c;
			c = stpcpy(c, p->ports[i].name) + 1;
		}
	}
	return a;
}

/*
 * The parsed Pod o's labels and ports swapped for the shared block that
 * holds the same (made if there is none): its own are freed. Returns 0,
 * or -ENOMEM (o keeps its own).
 */
static int pod_intern(struct attrs_table *t, struct object *o)
{
	struct pol_pod *p = &o->pod;
	uint64_t h = attrs_hash(p);
	struct pod_attrs *a = NULL;

	if (t->nb)
		for (a = t->b[h & (t->nb - 1)]; a; a = a->next)
			if (a->hash == h && pol_labels_equal(&a->labels, &p->labels) &&
			    pol_ports_equal(&(struct pol_pod){ .nports = a->nports, .ports = a->ports },
					p))
				break;
	if (a) {
		a->refs++;
	} else {
		if (t->n >= t->nb) {
			size_t nb = t->nb ? t->nb * 2 : 64;
			struct pod_attrs **b = calloc(nb, sizeof(*b));

			if (!b)
				return -ENOMEM;
			for (size_t i = 0; i < t->nb; i++)
				while (t->b[i]) {
					struct pod_attrs *x = t->b[i];

					t->b[i] = x->next;
					x->next = b[x->hash & (nb - 1)];
					b[x->hash & (nb - 1)] = x;
				}
			free(t->b);
			t->b = b;
			t->nb = nb;
		}
		a = attrs_new(p, h);
		if (!a)
			return -ENOMEM;
		a->t = t;
		a->next = t->b[h & (t->nb - 1)];
		t->b[h & (t->nb - 1)] = a;
		t->n++;
		t->bytes += a->size;
	}
	pol_labels_free(&p->labels);
	for (size_t i = 0; i < p->nports; i++)
		free(p->ports[i].name);
	free(p->ports);
	p->labels = a->labels;
	p->nports = a->nports;
	p->ports = a->ports;
	o->attrs = a;
	return 0;
}

/* o->ns and o->name, one allocation (o->ns; NULL: out of memory). */
static void object_names(struct object *o, const char *ns, const char *name)
{
	size_t lns = strlen(ns), lname = strlen(name);

	o->ns = malloc(lns + lname + 2);
	if (!o->ns)
		return;
	memcpy(o->ns, ns, lns + 1);
	o->name = o->ns + lns + 1;
	memcpy(o->name, name, lname + 1);
}

static void object_clear(struct object *o)
{
	free(o->ns);	/* and o->name with it */
	free(o->json);
	/* nsobj.name, pod.ns, pod.name and node.name are o->ns and o->name,
	 * not copies of their own. */
	switch (o->kind) {
	case K_NAMESPACE:
		pol_labels_free(&o->nsobj.labels);
		break;
	case K_POD:
		if (o->attrs) {
			attrs_release(o->attrs);
			break;
		}
		pol_labels_free(&o->pod.labels);
		for (size_t i = 0; i < o->pod.nports; i++)
			free(o->pod.ports[i].name);
		free(o->pod.ports);
		break;
	case K_NODE:
		if (o->node) {
			free(o->node->why);
			pol_labels_free(&o->node->labels);
		}
		free(o->node);
		break;
	case K_PREFILTER:
		pf_free(o->pf);
		break;
	case K_SERVICE:
		if (o->svc)
			svc_free(o->svc);
		free(o->svc);
		break;
	case K_SLICE:
		if (o->slice)
			svc_slice_free(o->slice);
		free(o->slice);
		break;
	default:
		break;
	}
	pol_free(o->pol);
	memset(o, 0, sizeof(*o));
}

static const char *str_at(const json_t *obj, const char *a, const char *b)
{
	const json_t *v = json_object_get(obj, a);

	if (b)
		v = json_object_get(v, b);
	return json_string_value(v);
}

/* The index of (apiVersion, kind) in kinds[], or -1. */
static int kind_of(const char *api_version, const char *kind)
{
	for (size_t i = 0; i < NKINDS; i++)
		if (!strcmp(kinds[i].kind, kind) && !strcmp(kinds[i].api_version, api_version))
			return (int)i;
	return -1;
}

/* Kind, namespace and name of obj. Returns 0 or -EINVAL with err set. */
static int identify(const json_t *obj, enum obj_kind *kind, const char **ns, const char **name,
		    char *err, size_t errlen)
{
	const char *api = str_at(obj, "apiVersion", NULL), *k = str_at(obj, "kind", NULL);
	int i;

	if (!json_is_object(obj) || !api || !k) {
		snprintf(err, errlen, "not a Kubernetes object: apiVersion and kind are required");
		return -EINVAL;
	}
	i = kind_of(api, k);
	if (i < 0) {
		snprintf(err, errlen,
			 "%s %s is not supported; sluice takes v1 Namespace, v1 Pod, v1 Node, "
			 "v1 Service, discovery.k8s.io/v1 EndpointSlice, "
			 "networking.k8s.io/v1 NetworkPolicy and sluice.io/v1alpha1 "
			 "SluiceNetworkPolicy / SluiceClusterNetworkPolicy / SluicePrefilter",
			 api, k);
		return -EINVAL;
	}
	*kind = (enum obj_kind)i;
	*name = str_at(obj, "metadata", "name");
	if (!*name || !**name || strlen(*name) > 253) {
		snprintf(err, errlen, "%s: metadata.name is missing or longer than 253 characters", k);
		return -EINVAL;
	}
	*ns = "";
	if (kinds[i].namespaced) {
		*ns = str_at(obj, "metadata", "namespace");
		if (!*ns || !**ns)
			*ns = "default"; /* as kubectl does without -n */
		if (strlen(*ns) > 63) {
			snprintf(err, errlen, "%s %s: metadata.namespace is longer than 63 characters",
				 k, *name);
			return -EINVAL;
		}
	}
	return 0;
}

static int parse_proto(const char *s, uint8_t *proto)
{
	if (!s || !strcmp(s, "TCP"))
		*proto = IPPROTO_TCP;
	else if (!strcmp(s, "UDP"))
		*proto = IPPROTO_UDP;
	else if (!strcmp(s, "SCTP"))
		*proto = IPPROTO_SCTP;
	else
		return -EINVAL;
	return 0;
}

static bool phase_done(const char *phase)
{
	return phase && (!strcmp(phase, "Succeeded") || !strcmp(phase, "Failed"));
}

static int parse_pod(const json_t *obj, struct pol_pod *pod, char *err, size_t errlen)
{
	const json_t *containers = json_object_get(json_object_get(obj, "spec"), "containers");
	const char *ip = str_at(obj, "status", "podIP");
	const json_t *c, *p;
	size_t i, j, total = 0;

	if (pol_labels_parse(json_object_get(json_object_get(obj, "metadata"), "labels"),
			     "metadata.labels", &pod->labels, err, errlen))
		return -EINVAL;
	if (containers && !json_is_array(containers)) {
		snprintf(err, errlen, "spec.containers: expected a list");
		return -EINVAL;
	}
	json_array_foreach(containers, i, c)
		total += json_array_size(json_object_get(c, "ports"));
	pod->ports = calloc(total ? total : 1, sizeof(*pod->ports));
	if (!pod->ports)
		return -ENOMEM;
	json_array_foreach(containers, i, c) {
		json_array_foreach(json_object_get(c, "ports"), j, p) {
			struct pol_container_port *cp = &pod->ports[pod->nports];
			const json_t *num = json_object_get(p, "containerPort");
			const char *name = str_at(p, "name", NULL);

			if (!json_is_integer(num) || json_integer_value(num) < 1 ||
			    json_integer_value(num) > 65535) {
				snprintf(err, errlen,
					 "spec.containers[%zu].ports[%zu].containerPort: expected a port "
					 "number 1-65535", i, j);
				return -EINVAL;
			}
			if (parse_proto(str_at(p, "protocol", NULL), &cp->proto)) {
				snprintf(err, errlen,
					 "spec.containers[%zu].ports[%zu].protocol: expected TCP, UDP "
					 "or SCTP", i, j);
				return -EINVAL;
			}
			cp->port = (uint16_t)json_integer_value(num);
			if (name && !(cp->name = strdup(name)))
				return -ENOMEM;
			pod->nports++;
		}
	}
	/* A host-network pod's IP is its node's; a finished pod's IP may already
	 * belong to another pod. Neither gives the address an identity. */
	if (json_is_true(json_object_get(json_object_get(obj, "spec"), "hostNetwork")))
		ip = NULL;
	if (phase_done(str_at(obj, "status", "phase")))
		ip = NULL;
	/* Dual-stack or IPv6 pods: the IPv4 address of podIPs, if any. A pod
	 * without one keeps its labels (so policies still select it) and
	 * gets no address, rather than being skipped as unreadable. */
	if (ip && strchr(ip, ':')) {
		const json_t *ips = json_object_get(json_object_get(obj, "status"), "podIPs"), *e;
		size_t k;

		ip = NULL;
		json_array_foreach(ips, k, e) {
			const char *v = str_at(e, "ip", NULL);

			if (v && !strchr(v, ':')) {
				ip = v;
				break;
			}
		}
	}
	if (ip) {
		struct in_addr a;

		if (inet_pton(AF_INET, ip, &a) != 1) {
			snprintf(err, errlen, "status.podIP: '%s' is not an IPv4 address", ip);
			return -EINVAL;
		}
		pod->ip = ntohl(a.s_addr);
	}
	return 0;
}

static int parse_node(const json_t *obj, struct store_node *n, char *err, size_t errlen)
{
	const json_t *spec = json_object_get(obj, "spec"), *addrs, *a;
	const char *cidr = json_string_value(json_object_get(spec, "podCIDR"));
	char why[256];
	size_t i;

	if (!cidr)
		cidr = json_string_value(json_array_get(json_object_get(spec, "podCIDRs"), 0));
	if (cidr && cidr4_parse(cidr, &n->pod_cidr, why, sizeof(why))) {
		snprintf(err, errlen, "spec.podCIDR: %s", why);
		return -EINVAL;
	}
	n->has_pod_cidr = cidr != NULL;
	snprintf(n->created, sizeof(n->created), "%s",
		 str_at(obj, "metadata", "creationTimestamp") ?: "");
	addrs = json_object_get(json_object_get(obj, "status"), "addresses");
	json_array_foreach(addrs, i, a) {
		const char *type = json_string_value(json_object_get(a, "type"));
		const char *addr = json_string_value(json_object_get(a, "address"));

		uint32_t ip;

		if (!type || !addr || (strcmp(type, "InternalIP") && strcmp(type, "ExternalIP")))
			continue;
		if (ip4_parse(addr, &ip)) {
			if (strchr(addr, ':'))
				continue; /* an IPv6 address next to the IPv4 one */
			snprintf(err, errlen, "status.addresses[%zu].address: '%s' is not an IPv4 "
					      "address", i, addr);
			return -EINVAL;
		}
		/* Every address is kept from lock-out by a prefilter; the first
		 * InternalIP is the one routes and tunnels use. */
		if (n->naddrs < STORE_NODE_ADDRS)
			n->addrs[n->naddrs++] = ip;
		if (!n->ip && !strcmp(type, "InternalIP"))
			n->ip = ip;
	}
	/* Labels only choose where prefilters apply: unreadable ones leave the
	 * set empty (no nodeSelector matches) rather than the Node unread,
	 * which would cost its routes. */
	if (pol_labels_parse(json_object_get(json_object_get(obj, "metadata"), "labels"),
			     "metadata.labels", &n->labels, why, sizeof(why)) == -ENOMEM)
		return -ENOMEM;
	return 0;
}

static char *json_text(const json_t *obj)
{
	return json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
}

/* Text built piece by piece; oom once anything failed to fit. */
struct tbuf {
	char *p;
	size_t n, cap;
	bool oom;
};

static void tb_put(struct tbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->n + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *p;

		while (cap < b->n + n + 1)
			cap *= 2;
		if (!(p = realloc(b->p, cap))) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
}

static void tb_lit(struct tbuf *b, const char *s)
{
	tb_put(b, s, strlen(s));
}

/* s as a JSON string: quoted, '"', '\\' and control characters escaped
 * (the strings came from JSON, so they are UTF-8 already). */
static void tb_str(struct tbuf *b, const char *s)
{
	const char *run = s;

	tb_put(b, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[8];

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		tb_put(b, run, (size_t)(s - run));
		if (c == '"' || c == '\\')
			snprintf(esc, sizeof(esc), "\\%c", c);
		else
			snprintf(esc, sizeof(esc), "\\u%04x", c);
		tb_lit(b, esc);
		run = s + 1;
	}
	tb_put(b, run, (size_t)(s - run));
	tb_put(b, "\"", 1);
}

static const char *proto_name(uint8_t proto)
{
	return proto == IPPROTO_UDP ? "UDP" : proto == IPPROTO_SCTP ? "SCTP" : "TCP";
}

/*
 * The Pod o as sluice keeps it, as JSON text with sorted keys (appended
 * to b): its labels, its container ports (in one container) and its IPv4
 * address. parse_pod gives back the same parsed form from it, which is
 * what saving needs; the fields it was parsed from (phase, hostNetwork,
 * podIPs) only decided the address.
 */
static void pod_text(const struct object *o, struct tbuf *b)
{
	const struct pol_pod *p = &o->pod;
	char num[32];

	tb_lit(b, "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"labels\":{");
	for (size_t i = 0; i < p->labels.n; i++) {
		if (i)
			tb_put(b, ",", 1);
		tb_str(b, p->labels.v[i].key);
		tb_put(b, ":", 1);
		tb_str(b, p->labels.v[i].value);
	}
	tb_lit(b, "},\"name\":");
	tb_str(b, o->name);
	tb_lit(b, ",\"namespace\":");
	tb_str(b, o->ns);
	tb_lit(b, "},\"spec\":{\"containers\":[{\"ports\":[");
	for (size_t i = 0; i < p->nports; i++) {
		snprintf(num, sizeof(num), "%s{\"containerPort\":%u", i ? "," : "", p->ports[i].port);
		tb_lit(b, num);
		if (p->ports[i].name) {
			tb_lit(b, ",\"name\":");
			tb_str(b, p->ports[i].name);
		}
		tb_lit(b, ",\"protocol\":\"");
		tb_lit(b, proto_name(p->ports[i].proto));
		tb_lit(b, "\"}");
	}
	tb_lit(b, "]}]},\"status\":{");
	if (p->ip) {
		snprintf(num, sizeof(num), "\"podIP\":\"%u.%u.%u.%u\"", p->ip >> 24,
			 (p->ip >> 16) & 0xff, (p->ip >> 8) & 0xff, p->ip & 0xff);
		tb_lit(b, num);
	}
	tb_lit(b, "}}");
}

/* o's text: o->json, or made into b (pod_text; NULL: out of memory). */
static const char *object_text(const struct object *o, struct tbuf *b)
{
	if (o->json)
		return o->json;
	b->n = 0;
	b->oom = false;
	pod_text(o, b);
	return b->oom ? NULL : b->p;
}

/* o's object as a new tree (NULL: out of memory). */
static json_t *object_json(const struct object *o)
{
	struct tbuf b = { 0 };
	const char *text = object_text(o, &b);
	json_t *obj = text ? json_loads(text, 0, NULL) : NULL;

	free(b.p);
	return obj;
}

/* Two Pods parsed alike: what sluice keeps of them is equal. */
static bool pod_same(const struct object *a, const struct object *b)
{
	if (a->pod.ip != b->pod.ip)
		return false;
	/* Blocks of one table hold different contents. */
	if (a->attrs && b->attrs && a->attrs->t == b->attrs->t)
		return a->attrs == b->attrs;
	return pol_labels_equal(&a->pod.labels, &b->pod.labels) && pol_ports_equal(&a->pod, &b->pod);
}

/* Whether a and b (of one kind and key) hold the same: equal text, or
 * both without text (Pods from the API), equal parsed forms. */
static bool objects_same(const struct object *a, const struct object *b)
{
	if (a->json && b->json)
		return !strcmp(a->json, b->json);
	return !a->json && !b->json && pod_same(a, b);
}

/* Parse obj into o (kind, names, parsed form, o->json its text).
 * from_api: the object came through the Kubernetes API, which has accepted
 * it, so a policy is read with pol_parse_api (fail closed, not refused). */
static int object_parse(struct store *s, const json_t *obj, struct object *o, bool from_api,
			char *err, size_t errlen)
{
	const char *ns, *name;
	enum obj_kind kind;
	int ret;

	memset(o, 0, sizeof(*o));
	ret = identify(obj, &kind, &ns, &name, err, errlen);
	if (ret)
		return ret;
	o->kind = kind;
	object_names(o, ns, name);
	if (!(kind == K_POD && from_api))
		o->json = json_text(obj);
	if (!o->ns || !o->name || (!o->json && !(kind == K_POD && from_api))) {
		ret = -ENOMEM;
		goto fail;
	}
	/* The parsed forms name the object with o's own ns and name, which
	 * live as long as they do: a second copy of each was 2 of a pod's
	 * ~13 allocations (~64 bytes a pod). */
	switch (kind) {
	case K_NAMESPACE:
		o->nsobj.name = o->name;
		ret = pol_labels_parse(json_object_get(json_object_get(obj, "metadata"), "labels"),
				       "metadata.labels", &o->nsobj.labels, err, errlen);
		break;
	case K_NODE:
		if (!(o->node = calloc(1, sizeof(*o->node)))) {
			ret = -ENOMEM;
			break;
		}
		o->node->name = o->name;
		ret = parse_node(obj, o->node, err, errlen);
		break;
	case K_POD:
		o->pod.ns = o->ns;
		o->pod.name = o->name;
		ret = parse_pod(obj, &o->pod, err, errlen);
		if (!ret)
			ret = pod_intern(&s->attrs, o);
		break;
	case K_SERVICE:
	case K_SLICE: {
		char object[400];

		snprintf(object, sizeof(object), "%s %s/%s", kinds[kind].kind, ns, name);
		if (kind == K_SERVICE ? !(o->svc = calloc(1, sizeof(*o->svc)))
				      : !(o->slice = calloc(1, sizeof(*o->slice)))) {
			ret = -ENOMEM;
			break;
		}
		ret = kind == K_SERVICE ? svc_parse(obj, object, o->svc, err, errlen)
					: svc_slice_parse(obj, object, o->slice, err, errlen);
		break;
	}
	case K_PREFILTER:
		ret = from_api ? pf_parse_api(obj, &o->pf, err, errlen)
			       : pf_parse(obj, &o->pf, err, errlen);
		break;
	default:
		ret = from_api ? pol_parse_api(obj, &o->pol, err, errlen)
			       : pol_parse(obj, &o->pol, err, errlen);
		break;
	}
	if (ret)
		goto fail;
	return 0;
fail:
	object_clear(o);
	return ret;
}

/* FNV-1a over the kind, the namespace and the name. */
static size_t key_hash(enum obj_kind kind, const char *ns, const char *name)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	h = (h ^ (uint8_t)kind) * 0x100000001b3ULL;
	for (; *ns; ns++)
		h = (h ^ (uint8_t)*ns) * 0x100000001b3ULL;
	h = (h ^ 0xff) * 0x100000001b3ULL; /* no byte of a name: ("ab","c") != ("a","bc") */
	for (; *name; name++)
		h = (h ^ (uint8_t)*name) * 0x100000001b3ULL;
	return (size_t)h;
}

static size_t obj_hash(const struct object *o)
{
	return key_hash(o->kind, o->ns, o->name);
}

static bool obj_is(const struct object *o, enum obj_kind kind, const char *ns, const char *name)
{
	return o->kind == kind && !strcmp(o->ns, ns) && !strcmp(o->name, name);
}

static struct object *find(const struct store *s, enum obj_kind kind, const char *ns,
			   const char *name)
{
	size_t mask = s->idx_cap - 1, h;

	if (!s->idx) {
		for (size_t i = 0; i < s->n; i++)
			if (obj_is(&s->v[i], kind, ns, name))
				return &s->v[i];
		return NULL;
	}
	for (h = key_hash(kind, ns, name) & mask; s->idx[h]; h = (h + 1) & mask)
		if (obj_is(&s->v[s->idx[h] - 1], kind, ns, name))
			return &s->v[s->idx[h] - 1];
	return NULL;
}

static void idx_insert(struct store *s, size_t i)
{
	size_t mask = s->idx_cap - 1, h = obj_hash(&s->v[i]) & mask;

	while (s->idx[h])
		h = (h + 1) & mask;
	s->idx[h] = (uint32_t)(i + 1);
}

/* The slot that holds object i (which the index has). */
static size_t idx_slot(const struct store *s, size_t i)
{
	size_t mask = s->idx_cap - 1, h = obj_hash(&s->v[i]) & mask;

	while (s->idx[h] != i + 1)
		h = (h + 1) & mask;
	return h;
}

static void note_change(struct store *s, const struct object *o);

/* s->v[s->n - 1] was added. Out of memory, the index goes and find()
 * scans: slower, never wrong. */
static void idx_added(struct store *s)
{
	size_t cap = s->idx_cap ? s->idx_cap : 256;
	uint32_t *t;

	s->gen++;
	note_change(s, &s->v[s->n - 1]);
	if (s->idx && 2 * s->n <= s->idx_cap) {
		idx_insert(s, s->n - 1);
		return;
	}
	while (cap < 2 * s->n)
		cap *= 2;
	t = calloc(cap, sizeof(*t));
	free(s->idx);
	s->idx = t;
	s->idx_cap = t ? cap : 0;
	for (size_t i = 0; t && i < s->n; i++)
		idx_insert(s, i);
}

/* Drop s->v[i] (cleared) and move the last object into its place. */
static void remove_at(struct store *s, size_t i)
{
	size_t last = s->n - 1;

	s->gen++;
	note_change(s, &s->v[i]);
	if (s->idx) {
		size_t mask = s->idx_cap - 1, hole = idx_slot(s, i), j = hole;

		/* Backward shift: each entry after the hole whose home slot
		 * is not between the hole and it moves up into the hole. */
		for (j = (j + 1) & mask; s->idx[j]; j = (j + 1) & mask) {
			size_t home = obj_hash(&s->v[s->idx[j] - 1]) & mask;

			if (((j - home) & mask) >= ((j - hole) & mask)) {
				s->idx[hole] = s->idx[j];
				hole = j;
			}
		}
		s->idx[hole] = 0;
		if (i != last)
			s->idx[idx_slot(s, last)] = (uint32_t)(i + 1);
	}
	object_clear(&s->v[i]);
	if (i != last)
		s->v[i] = s->v[last];
	s->n--;
}

static int reserve(struct store *s, size_t more)
{
	size_t cap = s->cap ? s->cap : 64;
	struct object *v;

	while (cap < s->n + more)
		cap *= 2;
	if (cap == s->cap)
		return 0;
	v = realloc(s->v, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	s->v = v;
	s->cap = cap;
	return 0;
}

/* The store_kind of an object kind. */
static enum store_kind public_kind(enum obj_kind k)
{
	switch (k) {
	case K_NAMESPACE: return STORE_K_NAMESPACE;
	case K_POD: return STORE_K_POD;
	case K_NODE: return STORE_K_NODE;
	case K_SERVICE: return STORE_K_SERVICE;
	case K_SLICE: return STORE_K_SLICE;
	case K_PREFILTER: return STORE_K_PREFILTER;
	default: return STORE_K_POLICY;
	}
}

static void changes_clear(struct store *s)
{
	free(s->ch);
	free(s->chs);
	s->ch = NULL;
	s->chs = NULL;
	s->nch = s->capch = 0;
	s->nchs = s->capchs = 0;
}

/* Append text (with its NUL) to the names buffer; its offset, or
 * SIZE_MAX out of memory. */
static size_t chs_add(struct store *s, const char *text)
{
	size_t len = strlen(text) + 1, at = s->nchs;

	if (s->nchs + len > s->capchs) {
		size_t cap = s->capchs ? s->capchs * 2 : 4096;
		char *p;

		while (cap < s->nchs + len)
			cap *= 2;
		p = realloc(s->chs, cap);
		if (!p)
			return SIZE_MAX;
		s->chs = p;
		s->capchs = cap;
	}
	memcpy(s->chs + at, text, len);
	s->nchs += len;
	return at;
}

/* Object o is about to change or go, or has just been put in. Out of
 * memory or past the bound the log says "everything": never wrong. */
static void journal_note(struct store *s, const struct object *o);

static void note_change(struct store *s, const struct object *o)
{
	struct chrec *c;

	journal_note(s, o);
	if (s->ch_all)
		return;
	if (s->nch == s->capch) {
		size_t cap = s->capch ? s->capch * 2 : 64;

		if (cap > STORE_CHANGES_MAX || !(c = realloc(s->ch, cap * sizeof(*c)))) {
			changes_clear(s);
			s->ch_all = true;
			return;
		}
		s->ch = c;
		s->capch = cap;
	}
	c = &s->ch[s->nch];
	*c = (struct chrec){ .kind = public_kind(o->kind), .ns = chs_add(s, o->ns),
			     .name = chs_add(s, o->name) };
	if (c->ns == SIZE_MAX || c->name == SIZE_MAX) {
		changes_clear(s);
		s->ch_all = true;
		return;
	}
	s->nch++;
}

bool store_changes_take(struct store *s, struct store_change **out, size_t *n)
{
	bool all = s->ch_all;
	struct store_change *v = NULL;
	char *names;

	*n = 0;
	/* One block: the entries, then their names. */
	if (!all && s->nch) {
		v = malloc(s->nch * sizeof(*v) + s->nchs);
		if (!v) {
			all = true;
		} else {
			names = (char *)(v + s->nch);
			memcpy(names, s->chs, s->nchs);
			for (size_t i = 0; i < s->nch; i++)
				v[i] = (struct store_change){ .kind = s->ch[i].kind,
							      .ns = names + s->ch[i].ns,
							      .name = names + s->ch[i].name };
			*n = s->nch;
		}
	}
	*out = v;
	changes_clear(s);
	s->ch_all = false;
	return all;
}

bool store_changes_all(const struct store *s)
{
	return s->ch_all;
}

void store_changes_free(struct store_change *v, size_t n)
{
	(void)n;	/* one block */
	free(v);
}

/* ---- saving: a snapshot and a journal ----------------------------------
 *
 * <state-dir>/objects.json is a snapshot of the whole store, as
 * {"format": SNAP_FORMAT, "generation": N, "objects": [...]};
 * <state-dir>/objects.journal holds what was put or removed since: a header
 * (JOURNAL_MAGIC, then the generation of the snapshot it follows, 64 bits
 * little-endian) and records, each a 32-bit little-endian payload length, a
 * CRC-32 (zlib's crc32) over those four bytes and the payload, and the
 * payload: one letter ('k' put from the Kubernetes API, 'a' put by
 * `sluicectl apply`, 'd' removed) and the object as JSON ('d': apiVersion,
 * kind and metadata name and namespace only; a Pod from the API as
 * pod_text makes it from its parsed form). A save appends one record per
 * object changed since the last and fdatasyncs: O(change), where rewriting
 * objects.json was O(store) for every event (20 MB at 50 000 pods). When the
 * journal outgrows both the snapshot and JOURNAL_COMPACT_MIN the snapshot
 * is written again (temporary file, fsync, rename, fsync of the directory)
 * under the next generation and the journal starts over: a journal whose
 * generation is not the snapshot's (a crash between the two steps) was
 * already folded in, and is ignored. A torn or corrupt record ends the
 * journal where it starts: the records before it count.
 * A snapshot in the old format (a plain array) loads as generation 0, and
 * the first save replaces it.
 */
#define SNAP_FORMAT "sluice-objects/2"
#define JOURNAL_MAGIC "SLUICEJ1"
#define JOURNAL_HDR 16	/* magic, generation */
#define REC_HDR 8	/* length, CRC-32 */
#define JOURNAL_COMPACT_MIN ((off_t)1 << 20)
/* Changes remembered for the next save before it rewrites the snapshot
 * instead (and a quarter of the store): a list of the whole cluster
 * (start-up, relist) is one snapshot, not a journal as large, and the keys
 * held meanwhile cost no more than that. */
#define UNSAVED_MIN 4096

static void unsaved_clear(struct store *s)
{
	for (size_t i = 0; i < s->nunsaved; i++)
		free(s->unsaved[i].ns);
	free(s->unsaved);
	s->unsaved = NULL;
	s->nunsaved = s->capunsaved = 0;
	s->unsaved_all = false;
}

/* Object o (by its key) is to be saved by the next save. Out of memory or
 * past the bound, the next save writes everything. */
static void journal_note(struct store *s, const struct object *o)
{
	size_t lns = strlen(o->ns), lname = strlen(o->name);
	struct unsaved *u;

	if (s->loading || s->unsaved_all)
		return;
	if (s->nunsaved >= UNSAVED_MIN && s->nunsaved >= s->n / 4) {
		unsaved_clear(s);
		s->unsaved_all = true;
		return;
	}
	if (s->nunsaved == s->capunsaved) {
		size_t cap = s->capunsaved ? s->capunsaved * 2 : 16;

		if (!(u = realloc(s->unsaved, cap * sizeof(*u)))) {
			unsaved_clear(s);
			s->unsaved_all = true;
			return;
		}
		s->unsaved = u;
		s->capunsaved = cap;
	}
	u = &s->unsaved[s->nunsaved];
	u->kind = o->kind;
	u->ns = malloc(lns + lname + 2);
	if (!u->ns) {
		unsaved_clear(s);
		s->unsaved_all = true;
		return;
	}
	memcpy(u->ns, o->ns, lns + 1);
	u->name = u->ns + lns + 1;
	memcpy(u->name, o->name, lname + 1);
	s->nunsaved++;
}

static int unsaved_cmp(const void *a, const void *b)
{
	const struct unsaved *x = a, *y = b;
	int c;

	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	c = strcmp(x->ns, y->ns);
	return c ? c : strcmp(x->name, y->name);
}

static void put_le32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t rec_crc(const unsigned char *len, const unsigned char *payload, size_t n)
{
	uLong c = crc32(0L, Z_NULL, 0);

	c = crc32(c, len, 4);
	return (uint32_t)crc32(c, payload, (uInt)n);
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd))
		ret = -errno;
	close(fd);
	return ret;
}

static int write_all(int fd, const void *buf, size_t n, off_t off)
{
	const char *p = buf;

	while (n) {
		ssize_t w = pwrite(fd, p, n, off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		if (!w)
			return -EIO;
		p += w;
		n -= (size_t)w;
		off += w;
	}
	return 0;
}

/* The journal open for writing, created (and its directory entry synced)
 * if it is not there. */
static int journal_fd(struct store *s)
{
	bool created;
	int ret;

	if (s->jfd >= 0)
		return 0;
	created = access(s->jpath, F_OK) != 0;
	s->jfd = open(s->jpath, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (s->jfd < 0)
		return -errno;
	if (created) {
		ret = fsync_dir(s->dir);
		if (ret)
			return ret;
	}
	return 0;
}

/* Start the journal again, empty, after the snapshot of generation s->snap_gen. */
static int journal_reset(struct store *s)
{
	unsigned char hdr[JOURNAL_HDR];
	int ret;

	ret = journal_fd(s);
	if (ret)
		return ret;
	memcpy(hdr, JOURNAL_MAGIC, 8);
	put_le32(hdr + 8, (uint32_t)s->snap_gen);
	put_le32(hdr + 12, (uint32_t)(s->snap_gen >> 32));
	if (ftruncate(s->jfd, 0))
		return -errno;
	ret = write_all(s->jfd, hdr, sizeof(hdr), 0);
	if (!ret && fdatasync(s->jfd))
		ret = -errno;
	if (ret)
		return ret;
	s->j_size = JOURNAL_HDR;
	s->j_reset = s->j_trunc = false;
	return 0;
}

/* Write the whole store as the snapshot of the next generation, then start
 * the journal again. */
static int compact(struct store *s)
{
	char tmp[PATH_MAX + 8];
	struct tbuf text = { 0 };	/* a Pod's, made for writing (pod_text) */
	uint64_t gen = s->snap_gen + 1;
	int fd, ret = 0;
	off_t size = 0;
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", s->path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	f = fdopen(fd, "w");
	if (!f) {
		ret = -errno;
		close(fd);
		unlink(tmp);
		return ret;
	}
	/* Objects from the Kubernetes API are saved as {"origin": "kubernetes",
	 * "object": ...} so a relist after a restart knows which ones it owns.
	 * The objects are JSON text already: written as they are. */
	fprintf(f, "{\"format\":\"%s\",\"generation\":%" PRIu64 ",\"objects\":[", SNAP_FORMAT, gen);
	for (size_t i = 0; i < s->n; i++) {
		const char *body = object_text(&s->v[i], &text);

		if (!body) {
			ret = -ENOMEM;
			break;
		}
		if (i)
			fputc(',', f);
		if (s->v[i].kube)
			fprintf(f, "{\"origin\":\"kubernetes\",\"object\":%s}", body);
		else
			fputs(body, f);
	}
	free(text.p);
	fputs("]}\n", f);
	if (!ret && (fflush(f) || ferror(f)))
		ret = errno ? -errno : -EIO;
	if (!ret) {
		size = ftello(f);
		if (fsync(fd))
			ret = -errno;
	}
	if (fclose(f) && !ret)
		ret = errno ? -errno : -EIO;
	if (!ret && rename(tmp, s->path))
		ret = -errno;
	if (ret) {
		unlink(tmp);
		return ret;
	}
	/* The snapshot holds everything now: the old journal, whatever
	 * happens to it, is of the last generation and ignored at open. */
	s->snap_gen = gen;
	s->snap_size = size;
	s->dirty = false;
	unsaved_clear(s);
	s->j_reset = true;
	ret = fsync_dir(s->dir);
	if (ret)
		return ret;
	pr_debug("%s: %zu objects saved, %lld bytes, generation %" PRIu64, s->path, s->n,
		 (long long)size, gen);
	ret = journal_reset(s);
	if (ret)
		pr_warn("%s: cannot start the journal again: %s (the snapshot %s holds "
			"everything; the next save tries again)",
			s->jpath, strerror(-ret), s->path);
	return 0;
}

/* The record that saves key u as the store holds it now, appended to *buf
 * (size *len, capacity *cap), or its size when buf is NULL. */
static int record_add(const struct store *s, const struct unsaved *u, char **buf, size_t *len,
		      size_t *cap, size_t *size)
{
	const struct object *o = find(s, u->kind, u->ns, u->name);
	struct tbuf text = { 0 };
	char *del = NULL, op;
	const char *body;
	size_t n;

	if (o) {
		op = o->kube ? 'k' : 'a';
		body = object_text(o, &text);
		if (!body)
			return -ENOMEM;
		del = text.p;
	} else {
		json_t *id = *u->ns ? json_pack("{s:s, s:s, s:{s:s, s:s}}", "apiVersion",
						 kinds[u->kind].api_version, "kind",
						 kinds[u->kind].kind, "metadata", "name", u->name,
						 "namespace", u->ns)
				    : json_pack("{s:s, s:s, s:{s:s}}", "apiVersion",
						 kinds[u->kind].api_version, "kind",
						 kinds[u->kind].kind, "metadata", "name", u->name);

		del = id ? json_text(id) : NULL;
		json_decref(id);
		if (!del)
			return -ENOMEM;
		op = 'd';
		body = del;
	}
	n = 1 + strlen(body);
	if (n > UINT32_MAX - REC_HDR) {
		free(del);
		return -EFBIG;
	}
	*size = REC_HDR + n;
	if (buf) {
		unsigned char *r;

		if (*len + *size > *cap) {
			size_t c = *cap ? *cap : 4096;
			char *b;

			while (c < *len + *size)
				c *= 2;
			b = realloc(*buf, c);
			if (!b) {
				free(del);
				return -ENOMEM;
			}
			*buf = b;
			*cap = c;
		}
		r = (unsigned char *)*buf + *len;
		put_le32(r, (uint32_t)n);
		r[REC_HDR] = (unsigned char)op;
		memcpy(r + REC_HDR + 1, body, n - 1);
		put_le32(r + 4, rec_crc(r, r + REC_HDR, n));
		*len += *size;
	}
	free(del);
	return 0;
}

/* Save what changed since the last save: records appended to the journal,
 * or the whole snapshot when there is none yet or the journal would grow
 * past its bound. */
static int save(struct store *s)
{
	size_t n = 0, len = 0, cap = 0, size;
	off_t add = 0;
	char *buf = NULL;
	int ret = 0;

	if (!s->snap_gen || s->unsaved_all)
		return compact(s);
	if (s->nunsaved) {
		qsort(s->unsaved, s->nunsaved, sizeof(*s->unsaved), unsaved_cmp);
		for (size_t i = 0; i < s->nunsaved; i++) {
			if (n && !unsaved_cmp(&s->unsaved[n - 1], &s->unsaved[i])) {
				free(s->unsaved[i].ns);
				continue;
			}
			s->unsaved[n++] = s->unsaved[i];
		}
		s->nunsaved = n;
	}
	for (size_t i = 0; i < n; i++) {
		ret = record_add(s, &s->unsaved[i], NULL, NULL, NULL, &size);
		if (ret)
			return ret;
		add += (off_t)size;
	}
	/* Measured before writing: past the bound, the records would only
	 * be written to be folded into the snapshot at once. */
	add += s->j_reset ? JOURNAL_HDR : s->j_size;
	if (add > s->snap_size && add > JOURNAL_COMPACT_MIN)
		return compact(s);
	for (size_t i = 0; i < n && !ret; i++)
		ret = record_add(s, &s->unsaved[i], &buf, &len, &cap, &size);
	if (ret)
		goto cleanup;
	if (s->j_reset) {
		ret = journal_reset(s);
		if (ret)
			goto cleanup;
	}
	ret = journal_fd(s);
	if (ret)
		goto cleanup;
	if (s->j_trunc) {
		if (ftruncate(s->jfd, s->j_size)) {
			ret = -errno;
			goto cleanup;
		}
		s->j_trunc = false;
	}
	if (len) {
		ret = write_all(s->jfd, buf, len, s->j_size);
		if (!ret && fdatasync(s->jfd))
			ret = -errno;
		if (ret) {
			/* Part may be on disk: cut it before the next try. */
			s->j_trunc = true;
			goto cleanup;
		}
		s->j_size += (off_t)len;
	}
	unsaved_clear(s);
	s->dirty = false;
cleanup:
	free(buf);
	return ret;
}

static void services_check(struct store *s);
static int object_unusable(const json_t *obj, const char *why, struct object *o);
static const char *object_note(const struct store *s, const struct object *o, char *buf,
			       size_t len);

static json_t *change(const struct object *o, const char *action)
{
	return json_pack("{s:s, s:s, s:s, s:s}", "kind", kinds[o->kind].kind, "namespace", o->ns,
			 "name", o->name, "action", action);
}

static const char *source_of(const json_t *sources, size_t i, char *buf, size_t len)
{
	const char *s = json_string_value(json_array_get(sources, i));

	if (!s)
		snprintf(buf, len, "object %zu", i + 1);
	return s ? s : buf;
}

/* ---- Node objects: what routes, tunnels and the ipcache may trust ------ */

static bool cidr_overlap(const struct cidr4 *a, const struct cidr4 *b)
{
	return cidr4_contains(a, b->net) || cidr4_contains(b, a->net);
}

/* What is wrong with n on its own. */
static bool node_alone_bad(const struct store_node *n, char *why, size_t len)
{
	char c[24], ip[16];

	if (!n->has_pod_cidr)
		return false;
	if (n->pod_cidr.prefix && !(n->ip && cidr4_contains(&n->pod_cidr, n->ip)))
		return false;
	cidr4_format(&n->pod_cidr, c, sizeof(c));
	if (n->pod_cidr.prefix == 0) {
		snprintf(why, len,
			 "spec.podCIDR %s covers every address; expected this node's own range, "
			 "such as 10.244.1.0/24", c);
		return true;
	}
	if (n->ip && cidr4_contains(&n->pod_cidr, n->ip)) {
		ip4_format(n->ip, ip, sizeof(ip));
		snprintf(why, len,
			 "its InternalIP %s is inside its own spec.podCIDR %s; pod ranges must not "
			 "hold node addresses", ip, c);
		return true;
	}
	return false;
}

/* How n conflicts with m, a node trusted already, cheaply (no text): see
 * node_pair_bad. */
enum node_conflict { NC_NONE, NC_OVERLAP, NC_HOLDS_IP, NC_IP_INSIDE, NC_SAME_IP };

static enum node_conflict node_conflict(const struct store_node *n, const struct store_node *m)
{
	if (n->has_pod_cidr && m->has_pod_cidr && cidr_overlap(&n->pod_cidr, &m->pod_cidr))
		return NC_OVERLAP;
	if (n->has_pod_cidr && m->ip && cidr4_contains(&n->pod_cidr, m->ip))
		return NC_HOLDS_IP;
	if (n->ip && m->has_pod_cidr && cidr4_contains(&m->pod_cidr, n->ip))
		return NC_IP_INSIDE;
	if (n->ip && n->ip == m->ip)
		return NC_SAME_IP;
	return NC_NONE;
}

/* Does n conflict with m (other names m in the message: "Node a", "this
 * node (a)")? The text is made only for a conflict: nodes_check tests
 * every pair of Nodes (1 000 Nodes: 500 000 pairs, 17 % of a relist's
 * CPU when each pair was formatted). */
static bool node_pair_bad(const struct store_node *n, const struct store_node *m,
			  const char *other, char *why, size_t len)
{
	enum node_conflict c = node_conflict(n, m);
	char nc[24], mc[24], nip[16], mip[16];

	if (c == NC_NONE)
		return false;
	cidr4_format(&n->pod_cidr, nc, sizeof(nc));
	cidr4_format(&m->pod_cidr, mc, sizeof(mc));
	ip4_format(n->ip, nip, sizeof(nip));
	ip4_format(m->ip, mip, sizeof(mip));
	if (c == NC_OVERLAP)
		snprintf(why, len, "spec.podCIDR %s overlaps the pod CIDR %s of %s", nc, mc, other);
	else if (c == NC_HOLDS_IP)
		snprintf(why, len, "spec.podCIDR %s holds the address %s of %s", nc, mip, other);
	else if (c == NC_IP_INSIDE)
		snprintf(why, len, "its InternalIP %s is inside the pod CIDR %s of %s", nip, mc,
			 other);
	else
		snprintf(why, len, "its InternalIP %s is the address of %s too", nip, other);
	return true;
}

/* This node as the checks see it: store_set_self's facts, else its Node
 * object's. has_pod_cidr and ip are clear when neither is known. */
static struct store_node self_node(const struct store *s)
{
	struct store_node self = { .name = s->self_name };
	char why[256];

	for (size_t i = 0; s->self_name && i < s->n; i++) {
		const struct store_node *n = s->v[i].node;

		if (s->v[i].kind != K_NODE || strcmp(n->name, s->self_name) ||
		    node_alone_bad(n, why, sizeof(why)))
			continue;
		self.has_pod_cidr = n->has_pod_cidr;
		self.pod_cidr = n->pod_cidr;
		self.ip = n->ip;
	}
	if (s->has_self_cidr) {
		self.has_pod_cidr = true;
		self.pod_cidr = s->self_cidr;
	}
	if (s->self_ip)
		self.ip = s->self_ip;
	return self;
}

/* Older first (RFC 3339 UTC strings compare as text; objects without a
 * creationTimestamp, from sluicectl apply, after those with one), then by
 * name. A Node created later cannot take a range from an existing one,
 * whatever it is called. */
static int node_order(const void *a, const void *b)
{
	const struct store_node *x = (*(const struct object *const *)a)->node;
	const struct store_node *y = (*(const struct object *const *)b)->node;
	int c;

	if (!*x->created != !*y->created)
		return *x->created ? -1 : 1;
	c = strcmp(x->created, y->created);
	return c ? c : strcmp(x->name, y->name);
}

/*
 * Decide which Node objects to trust: this node first, then the others
 * oldest first (node_order), each refused when it is bad alone or
 * conflicts with one trusted before it. Deterministic whatever order
 * objects arrive in, so every agent refuses the same node. Logs what
 * changes.
 */
static void nodes_check(struct store *s)
{
	const struct store_node **trusted = NULL;
	struct store_node self = self_node(s);
	struct object **nodes = NULL;
	size_t nn = 0, nt = 0;

	nodes = calloc(s->n + 1, sizeof(*nodes));
	trusted = calloc(s->n + 2, sizeof(*trusted));
	if (!nodes || !trusted)
		goto cleanup; /* keep the last decisions */
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].kind == K_NODE)
			nodes[nn++] = &s->v[i];
	qsort(nodes, nn, sizeof(*nodes), node_order);
	if (self.has_pod_cidr || self.ip)
		trusted[nt++] = &self;
	for (size_t i = 0; i < nn; i++) {
		struct store_node *n = nodes[i]->node;
		bool was = n->refused, is_self = s->self_name && !strcmp(n->name, s->self_name);
		char why[256] = "", other[300];

		n->refused = node_alone_bad(n, why, sizeof(why));
		for (size_t k = 0; !n->refused && !is_self && k < nt; k++) {
			if (node_conflict(n, trusted[k]) == NC_NONE)
				continue;
			if (trusted[k] == &self)
				snprintf(other, sizeof(other), "this node (%s)",
					 s->self_name ? s->self_name : "?");
			else
				snprintf(other, sizeof(other), "Node %s, which came first and keeps it",
					 trusted[k]->name);
			n->refused = node_pair_bad(n, trusted[k], other, why, sizeof(why));
		}
		if (n->refused && (!was || strcmp(n->why ? n->why : "", why)))
			pr_warn("Node %s refused for routing and the ipcache: %s", n->name, why);
		else if (!n->refused && was)
			pr_info("Node %s is trusted again", n->name);
		if (strcmp(n->why ? n->why : "", n->refused ? why : "")) {
			free(n->why);
			/* Out of memory, the reason is lost, not the refusal. */
			n->why = n->refused ? strdup(why) : NULL;
		}
		if (!n->refused && !is_self)
			trusted[nt++] = n;
	}
cleanup:
	free(nodes);
	free(trusted);
}

int store_set_self(struct store *s, const char *name, const struct cidr4 *pod_cidr,
		   uint32_t node_ip)
{
	char *copy = strdup(name);

	if (!copy)
		return -ENOMEM;
	free(s->self_name);
	s->self_name = copy;
	s->has_self_cidr = pod_cidr != NULL;
	if (pod_cidr)
		s->self_cidr = *pod_cidr;
	s->self_ip = node_ip;
	nodes_check(s);
	return 0;
}

void store_set_apiserver(struct store *s, uint32_t ip)
{
	s->apiserver_ip = ip;
}

static int guard_node(struct pf_guards *g, const struct store_node *nd, bool self)
{
	char net[20];
	int ret = 0;

	for (size_t a = 0; !ret && a < nd->naddrs; a++) {
		ip4_format(nd->addrs[a], net, sizeof(net));
		ret = pf_guards_add_addr(g, nd->addrs[a], "node %s's address %s", nd->name, net);
	}
	if (!ret && nd->ip && !nd->naddrs) {
		ip4_format(nd->ip, net, sizeof(net));
		ret = pf_guards_add_addr(g, nd->ip, "node %s's address %s", nd->name, net);
	}
	if (!ret && nd->has_pod_cidr) {
		cidr4_format(&nd->pod_cidr, net, sizeof(net));
		ret = pf_guards_add_range(g, &nd->pod_cidr, "%s pod CIDR %s of node %s",
					  self ? "this node's" : "the", net, nd->name);
	}
	return ret;
}

/* The guards of the store's nodes, this node and the API server, plus the
 * Nodes among parsed[0..n) (an apply that brings them). */
static int guards_build(const struct store *s, const struct object *parsed, size_t n,
			struct pf_guards *g)
{
	char net[20];
	int ret = 0;

	for (size_t i = 0; !ret && i < s->n; i++)
		if (s->v[i].kind == K_NODE && s->v[i].node)
			ret = guard_node(g, s->v[i].node,
					 s->self_name && !strcmp(s->v[i].name, s->self_name));
	for (size_t i = 0; !ret && i < n; i++)
		if (parsed[i].kind == K_NODE && parsed[i].node)
			ret = guard_node(g, parsed[i].node, false);
	if (!ret && s->self_ip) {
		ip4_format(s->self_ip, net, sizeof(net));
		ret = pf_guards_add_addr(g, s->self_ip, "this node's address %s (--node-ip)", net);
	}
	if (!ret && s->has_self_cidr) {
		cidr4_format(&s->self_cidr, net, sizeof(net));
		ret = pf_guards_add_range(g, &s->self_cidr, "this node's pod CIDR %s (--pod-cidr)",
					  net);
	}
	if (!ret && s->apiserver_ip) {
		ip4_format(s->apiserver_ip, net, sizeof(net));
		ret = pf_guards_add_addr(g, s->apiserver_ip, "the API server's address %s", net);
	}
	if (!ret)
		ret = pf_guards_index(g);
	return ret;
}

int store_prefilter_guards(const struct store *s, struct pf_guards *g)
{
	return guards_build(s, NULL, 0, g);
}

size_t store_prefilters(const struct store *s, const struct pf_object ***out, bool **kube)
{
	size_t n = 0;

	*out = NULL;
	if (kube)
		*kube = NULL;
	for (size_t i = 0; i < s->n; i++)
		n += s->v[i].kind == K_PREFILTER;
	*out = calloc(n + 1, sizeof(**out));
	if (kube)
		*kube = calloc(n + 1, sizeof(**kube));
	if (!*out || (kube && !*kube)) {
		free(*out);
		*out = NULL;
		if (kube) {
			free(*kube);
			*kube = NULL;
		}
		return SIZE_MAX;
	}
	n = 0;
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].kind == K_PREFILTER) {
			if (kube)
				(*kube)[n] = s->v[i].kube;
			(*out)[n++] = s->v[i].pf;
		}
	return n;
}

/* `sluicectl apply` refuses a SluicePrefilter entry that would lock out a
 * node, a pod CIDR or the API server: the user is there to fix it. */
static int prefilters_apply_check(const struct store *s, const struct object *parsed, size_t n,
				  size_t *bad, char *why, size_t len)
{
	struct pf_guards g = { 0 };
	int ret = 0;
	bool any = false;

	for (size_t i = 0; i < n; i++)
		any |= parsed[i].kind == K_PREFILTER;
	if (!any)
		return 0;
	ret = guards_build(s, parsed, n, &g);
	for (size_t i = 0; !ret && i < n; i++)
		if (parsed[i].kind == K_PREFILTER && pf_check(parsed[i].pf, &g, why, len)) {
			*bad = i;
			ret = -EINVAL;
		}
	pf_guards_free(&g);
	return ret;
}

/* `sluicectl apply` refuses a Node that would be refused, or would make
 * another one refused: the user is there to fix it. parsed[0..n) is the
 * apply; stored objects it replaces do not count. */
static int nodes_apply_check(const struct store *s, const struct object *parsed, size_t n,
			     size_t *bad, char *why, size_t len)
{
	struct store_node self = self_node(s);
	char other[300];

	for (size_t i = 0; i < n; i++) {
		const struct store_node *nd = parsed[i].node;
		bool is_self;

		*bad = i;
		if (parsed[i].kind != K_NODE)
			continue;
		is_self = s->self_name && !strcmp(nd->name, s->self_name);
		if (node_alone_bad(nd, why, len))
			return -EINVAL;
		if (is_self)
			continue;
		snprintf(other, sizeof(other), "this node (%s)", s->self_name ? s->self_name : "?");
		if ((self.has_pod_cidr || self.ip) && node_pair_bad(nd, &self, other, why, len))
			return -EINVAL;
		for (size_t k = 0; k < s->n; k++) {
			const struct object *o = &s->v[k];
			bool replaced = false;

			if (o->kind != K_NODE || o->node->refused ||
			    (s->self_name && !strcmp(o->name, s->self_name)))
				continue;
			for (size_t j = 0; j < n && !replaced; j++)
				replaced = parsed[j].kind == K_NODE && !strcmp(parsed[j].name, o->name);
			snprintf(other, sizeof(other), "Node %s", o->name);
			if (!replaced && node_pair_bad(nd, o->node, other, why, len))
				return -EINVAL;
		}
		for (size_t j = 0; j < n; j++) {
			if (j == i || parsed[j].kind != K_NODE ||
			    (s->self_name && !strcmp(parsed[j].name, s->self_name)))
				continue;
			snprintf(other, sizeof(other), "Node %s in the same apply", parsed[j].name);
			if (node_pair_bad(nd, parsed[j].node, other, why, len))
				return -EINVAL;
		}
	}
	return 0;
}

/* ---- Services: who keeps a frontend ------------------------------------ */

static const char *fe_field(const struct svc_frontend *f, char *buf, size_t len)
{
	static const char *const fields[] = { "spec.clusterIPs", "spec.externalIPs",
					      "status.loadBalancer.ingress" };

	if (f->kind == SVC_FE_NODE_PORT)
		snprintf(buf, len, "spec.ports[%zu].nodePort", f->port_index);
	else
		snprintf(buf, len, "%s", fields[f->kind]);
	return buf;
}

/* One key per frontend: a nodePort is on every node address, so it is
 * its own address space (ip 0). */
static uint64_t fe_key(const struct svc_frontend *f)
{
	return (uint64_t)f->ip << 32 | (uint64_t)f->port << 16 | (uint64_t)f->proto << 8 |
	       (f->kind == SVC_FE_NODE_PORT);
}

/* An open-addressing map from frontend key to the Service keeping it. */
struct fe_owners {
	uint64_t *keys;
	const struct object **owner;
	size_t cap;
};

static int owners_init(struct fe_owners *m, size_t n)
{
	m->cap = 16;
	while (m->cap < 2 * n + 1)
		m->cap *= 2;
	m->keys = calloc(m->cap, sizeof(*m->keys));
	m->owner = calloc(m->cap, sizeof(*m->owner));
	return m->keys && m->owner ? 0 : -ENOMEM;
}

static void owners_free(struct fe_owners *m)
{
	free(m->keys);
	free(m->owner);
}

/* The slot of key: where it is, or the free slot it would take. Every
 * bit of the key reaches the slot (murmur3's finalizer): the address sits
 * in the key's upper half, and a multiplication alone moved it only into
 * bits above those the slot took, so 10 000 clusterIPs on one port shared a
 * handful of home slots and the probing went quadratic. */
static size_t owners_slot(const struct fe_owners *m, uint64_t key)
{
	uint64_t h = key;
	size_t i;

	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	i = (size_t)h & (m->cap - 1);

	while (m->owner[i] && m->keys[i] != key)
		i = (i + 1) & (m->cap - 1);
	return i;
}

static bool svc_counts(const struct object *o)
{
	return o->kind == K_SERVICE && !o->svc->invalid && !o->svc->ignore;
}

/* A frontend of o that m holds for another Service already: what is
 * needed to name it. */
struct fe_clash {
	char field[48];		/* spec.externalIPs, spec.ports[1].nodePort... */
	char frontend[48];	/* 10.96.0.10:80/TCP */
	const struct object *owner;
};

/* Does o claim a frontend m holds already? Returns 1 with c filled, 0, or
 * -ENOMEM. */
static int svc_conflict(const struct fe_owners *m, const struct object *o, struct fe_clash *c)
{
	size_t n = svc_frontends(o->svc, NULL);
	struct svc_frontend *fe = calloc(n + 1, sizeof(*fe));
	int ret = 0;

	if (!fe)
		return -ENOMEM;
	n = svc_frontends(o->svc, fe);
	for (size_t i = 0; i < n && !ret; i++) {
		size_t slot = owners_slot(m, fe_key(&fe[i]));

		if (!m->owner[slot] || m->owner[slot] == o)
			continue;
		fe_field(&fe[i], c->field, sizeof(c->field));
		svc_frontend_format(&fe[i], c->frontend, sizeof(c->frontend));
		c->owner = m->owner[slot];
		ret = 1;
	}
	free(fe);
	return ret;
}

static int svc_claim(struct fe_owners *m, const struct object *o)
{
	size_t n = svc_frontends(o->svc, NULL);
	struct svc_frontend *fe = calloc(n + 1, sizeof(*fe));

	if (!fe)
		return -ENOMEM;
	n = svc_frontends(o->svc, fe);
	for (size_t i = 0; i < n; i++) {
		size_t slot = owners_slot(m, fe_key(&fe[i]));

		m->keys[slot] = fe_key(&fe[i]);
		m->owner[slot] = o;
	}
	free(fe);
	return 0;
}

static size_t frontends_total(const struct object *v, size_t n)
{
	size_t total = 0;

	for (size_t i = 0; i < n; i++)
		if (svc_counts(&v[i]))
			total += svc_frontends(v[i].svc, NULL);
	return total;
}

/* Older first (creationTimestamp; applied objects, without one, after),
 * then namespace/name: the same rule as Nodes (node_order). */
static int svc_order(const void *a, const void *b)
{
	const struct object *x = *(const struct object *const *)a;
	const struct object *y = *(const struct object *const *)b;
	int c;

	if (!*x->svc->created != !*y->svc->created)
		return *x->svc->created ? -1 : 1;
	c = strcmp(x->svc->created, y->svc->created);
	if (!c)
		c = strcmp(x->ns, y->ns);
	return c ? c : strcmp(x->name, y->name);
}

/*
 * Decide which Service keeps each frontend: oldest first (svc_order), a
 * Service that claims a frontend an earlier one keeps is refused whole
 * (never half its frontends). Deterministic whatever order objects arrive
 * in, so every agent refuses the same Service. Logs what changes.
 */
static void services_check(struct store *s)
{
	struct fe_owners m = { 0 };
	struct object **svcs = NULL;
	size_t n = 0;

	svcs = calloc(s->n + 1, sizeof(*svcs));
	if (!svcs || owners_init(&m, frontends_total(s->v, s->n)))
		goto cleanup; /* keep the last decisions */
	for (size_t i = 0; i < s->n; i++)
		if (svc_counts(&s->v[i]))
			svcs[n++] = &s->v[i];
	qsort(svcs, n, sizeof(*svcs), svc_order);
	for (size_t i = 0; i < n; i++) {
		struct object *o = svcs[i];
		bool was = o->svc->refused;
		char why[512] = "";
		struct fe_clash c;
		int bad = svc_conflict(&m, o, &c);

		if (bad < 0)
			break; /* out of memory: keep the last decisions */
		o->svc->refused = bad;
		if (bad)
			snprintf(why, sizeof(why), "%s: frontend %s is Service %s/%s's, which came "
						   "first and keeps it", c.field, c.frontend,
				 c.owner->ns, c.owner->name);
		if (o->svc->refused && (!was || strcmp(o->svc->why ? o->svc->why : "", why)))
			pr_warn("Service %s/%s refused: %s", o->ns, o->name, why);
		else if (!o->svc->refused && was)
			pr_info("Service %s/%s keeps its frontends again", o->ns, o->name);
		if (strcmp(o->svc->why ? o->svc->why : "", why))
			svc_set_why(&o->svc->why, "%s", why);
		if (!o->svc->refused && svc_claim(&m, o))
			break;
	}
cleanup:
	owners_free(&m);
	free(svcs);
}

/* `sluicectl apply` refuses a Service that claims a frontend of another
 * (stored and kept, or in the same apply): the user is there to fix it.
 * Stored Services the apply replaces do not count. */
static int services_apply_check(const struct store *s, const struct object *parsed, size_t n,
				size_t *bad, char *why, size_t len)
{
	struct fe_owners m = { 0 };
	int ret = -ENOMEM;

	if (owners_init(&m, frontends_total(s->v, s->n) + frontends_total(parsed, n)))
		goto cleanup;
	for (size_t k = 0; k < s->n; k++) {
		const struct object *o = &s->v[k];
		bool replaced = false;

		if (!svc_counts(o) || o->svc->refused)
			continue;
		for (size_t j = 0; j < n && !replaced; j++)
			replaced = parsed[j].kind == K_SERVICE && !strcmp(parsed[j].ns, o->ns) &&
				   !strcmp(parsed[j].name, o->name);
		if (!replaced && svc_claim(&m, o))
			goto cleanup;
	}
	for (size_t i = 0; i < n; i++) {
		struct fe_clash c;

		*bad = i;
		if (!svc_counts(&parsed[i]))
			continue;
		ret = svc_conflict(&m, &parsed[i], &c);
		if (ret < 0)
			goto cleanup;
		if (ret) {
			snprintf(why, len, "%s: frontend %s is the frontend of Service %s/%s already",
				 c.field, c.frontend, c.owner->ns, c.owner->name);
			ret = -EINVAL;
			goto cleanup;
		}
		ret = svc_claim(&m, &parsed[i]);
		if (ret)
			goto cleanup;
	}
	ret = 0;
cleanup:
	owners_free(&m);
	return ret;
}

/* A note for an EndpointSlice: kept but not used, or waiting for its
 * Service. NULL when there is nothing to say. */
static const char *slice_note(const struct store *s, const struct object *o, char *buf,
			      size_t len)
{
	if (o->kind != K_SLICE)
		return NULL;
	if (o->slice->unused)
		return svc_why_text(o->slice->why);
	if (!o->slice->service || find(s, K_SERVICE, o->ns, o->slice->service))
		return NULL;
	snprintf(buf, len, "Service %s/%s does not exist yet: kept, and used when it arrives",
		 o->ns, o->slice->service);
	return buf;
}

static const char *object_note(const struct store *s, const struct object *o, char *buf,
			       size_t len)
{
	if (o->kind != K_SERVICE)
		return slice_note(s, o, buf, len);
	if (o->svc->refused)
		snprintf(buf, len, "refused: %s", svc_why_text(o->svc->why));
	else if (o->svc->ignore)
		snprintf(buf, len, "ignored, as kube-proxy does: %s",
			 svc_ignore_reason(o->svc->ignore));
	else if (o->svc->ipv6_skipped)
		snprintf(buf, len, "%zu IPv6 address(es) left out: sluice serves IPv4 Services",
			 o->svc->ipv6_skipped);
	else
		return NULL;
	return buf;
}

size_t store_refused_services(const struct store *s)
{
	size_t k = 0;

	for (size_t i = 0; i < s->n; i++)
		k += s->v[i].kind == K_SERVICE && (s->v[i].svc->invalid || s->v[i].svc->refused);
	return k;
}

size_t store_unused_slices(const struct store *s)
{
	size_t k = 0;

	for (size_t i = 0; i < s->n; i++)
		k += s->v[i].kind == K_SLICE && s->v[i].slice->unused;
	return k;
}

int store_services_view(const struct store *s, const char *this_node, bool all,
			struct svc_view *out)
{
	struct svc_source_service *svcs = calloc(s->n + 1, sizeof(*svcs));
	struct svc_source_slice *slices = calloc(s->n + 1, sizeof(*slices));
	size_t nsvc = 0, nsl = 0;
	int ret = -ENOMEM;

	memset(out, 0, sizeof(*out));
	if (!svcs || !slices)
		goto cleanup;
	for (size_t i = 0; i < s->n; i++) {
		const struct object *o = &s->v[i];

		if (o->kind == K_SERVICE)
			svcs[nsvc++] = (struct svc_source_service){ o->ns, o->name, o->svc };
		else if (o->kind == K_SLICE)
			slices[nsl++] = (struct svc_source_slice){ o->ns, o->name, o->slice };
	}
	ret = svc_view_build(svcs, nsvc, slices, nsl, this_node, all, out);
	/* An endpoint in this node's pod range is a pod here whatever its
	 * slice says (nodeName is optional, and a hand-written slice may
	 * name another node): local. */
	if (!ret && this_node && s->has_self_cidr && s->self_name && !strcmp(s->self_name, this_node))
		for (size_t i = 0; i < out->n; i++)
			for (size_t p = 0; p < out->v[i].nports; p++)
				for (size_t b = 0; b < out->v[i].ports[p].nbackends; b++) {
					struct svc_backend *be = &out->v[i].ports[p].backends[b];

					be->local = be->local ||
						    cidr4_contains(&s->self_cidr, be->ip);
				}
cleanup:
	free(svcs);
	free(slices);
	return ret;
}

size_t store_refused_nodes(const struct store *s)
{
	size_t k = 0;

	for (size_t i = 0; i < s->n; i++)
		k += s->v[i].kind == K_NODE && s->v[i].node->refused;
	return k;
}

size_t store_degraded(const struct store *s)
{
	size_t k = 0;

	for (size_t i = 0; i < s->n; i++)
		k += s->v[i].pol && s->v[i].pol->degraded;
	return k;
}

/* Order of parsed objects for first_duplicate: kind, namespace, name, then
 * place in the apply. */
static int parsed_cmp(const void *pa, const void *pb, void *ctx)
{
	const struct object *v = ctx, *a = &v[*(const size_t *)pa], *b = &v[*(const size_t *)pb];
	int c;

	if (a->kind != b->kind)
		return a->kind < b->kind ? -1 : 1;
	c = strcmp(a->ns, b->ns);
	if (!c)
		c = strcmp(a->name, b->name);
	if (c)
		return c;
	return a < b ? -1 : a > b;
}

/* *dup: the first of parsed[0..n) (in apply order) that names the same
 * object as an earlier one, or n when none does. Sorted, not pairwise: an
 * apply of 10 000 objects compared each with all before it for a second,
 * the agent serving nobody meanwhile. */
static void apply_free(struct object *parsed, size_t n);

static int first_duplicate(const struct object *parsed, size_t n, size_t *dup)
{
	size_t *ord = n ? malloc(n * sizeof(*ord)) : NULL;

	*dup = n;
	if (n && !ord)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		ord[i] = i;
	if (n)
		qsort_r(ord, n, sizeof(*ord), parsed_cmp, (void *)parsed);
	for (size_t i = 1; i < n; i++) {
		const struct object *a = &parsed[ord[i - 1]], *b = &parsed[ord[i]];

		if (a->kind == b->kind && !strcmp(a->ns, b->ns) && !strcmp(a->name, b->name) &&
		    ord[i] < *dup)
			*dup = ord[i];
	}
	free(ord);
	return 0;
}

/*
 * Parse and check objects for an apply: everything store_apply refuses is
 * refused here, nothing in the store changes. On success *out holds the n
 * parsed objects (apply_free them); else the CNI code, the reason in err.
 */
static int apply_check(struct store *s, const json_t *objects, const json_t *sources,
		       struct object **out, char *err, size_t errlen)
{
	size_t n = json_array_size(objects), i;
	struct object *parsed = NULL;
	char why[1024], src[32];
	size_t first;
	int ret = 0, code = 0;

	*out = NULL;
	if (!json_is_array(objects) || !n) {
		snprintf(err, errlen, "nothing to apply: \"objects\" must be a non-empty list");
		return CNI_ERR_INVALID_CONFIG;
	}
	parsed = calloc(n, sizeof(*parsed));
	if (!parsed)
		return CNI_ERR_INTERNAL;
	/* Validate everything first: one bad object and nothing changes. The
	 * first problem in apply order is reported: an object that repeats
	 * an earlier one before a later object that does not parse. */
	for (i = 0; i < n; i++) {
		ret = object_parse(s, json_array_get(objects, i), &parsed[i], false, why,
				   sizeof(why));
		if (ret)
			break;
	}
	if (first_duplicate(parsed, i, &first)) {
		code = CNI_ERR_INTERNAL;
		goto cleanup;
	}
	if (first < i) {
		snprintf(err, errlen, "%s: %s %s%s%s appears twice in one apply; "
				      "nothing was applied",
			 source_of(sources, first, src, sizeof(src)), kinds[parsed[first].kind].kind,
			 parsed[first].ns, *parsed[first].ns ? "/" : "", parsed[first].name);
		code = CNI_ERR_INVALID_CONFIG;
		goto cleanup;
	}
	if (ret) {
		snprintf(err, errlen, "%s: %s; nothing was applied",
			 source_of(sources, i, src, sizeof(src)), why);
		code = ret == -ENOMEM ? CNI_ERR_INTERNAL : CNI_ERR_INVALID_CONFIG;
		goto cleanup;
	}
	if (nodes_apply_check(s, parsed, n, &i, why, sizeof(why))) {
		snprintf(err, errlen, "%s: Node %s: %s; nothing was applied",
			 source_of(sources, i, src, sizeof(src)), parsed[i].name, why);
		code = CNI_ERR_INVALID_CONFIG;
		goto cleanup;
	}
	ret = prefilters_apply_check(s, parsed, n, &i, why, sizeof(why));
	if (ret) {
		snprintf(err, errlen, "%s: %s; nothing was applied",
			 source_of(sources, i, src, sizeof(src)), why);
		code = ret == -ENOMEM ? CNI_ERR_INTERNAL : CNI_ERR_INVALID_CONFIG;
		goto cleanup;
	}
	ret = services_apply_check(s, parsed, n, &i, why, sizeof(why));
	if (ret) {
		snprintf(err, errlen, "%s: Service %s/%s: %s; nothing was applied",
			 source_of(sources, i, src, sizeof(src)), parsed[i].ns, parsed[i].name, why);
		code = ret == -ENOMEM ? CNI_ERR_INTERNAL : CNI_ERR_INVALID_CONFIG;
		goto cleanup;
	}
	*out = parsed;
	parsed = NULL;
cleanup:
	if (parsed)
		apply_free(parsed, n);
	return code;
}

static void apply_free(struct object *parsed, size_t n)
{
	for (size_t i = 0; i < n; i++)
		object_clear(&parsed[i]);
	free(parsed);
}

/* What an apply of the already stored old as o would do. */
static const char *apply_action(const struct object *old, const struct object *o)
{
	if (!old)
		return "created";
	return objects_same(old, o) ? "unchanged" : "configured";
}

int store_apply(struct store *s, const json_t *objects, const json_t *sources, json_t *changes,
		char *err, size_t errlen)
{
	size_t n = json_array_size(objects), i, first;
	struct object *parsed = NULL;
	size_t *at = NULL;
	int ret, code;

	code = apply_check(s, objects, sources, &parsed, err, errlen);
	if (code)
		return code;
	at = calloc(n, sizeof(*at));
	if (!at || reserve(s, n)) {
		code = CNI_ERR_INTERNAL;
		goto cleanup;
	}
	first = json_array_size(changes);
	for (i = 0; i < n; i++) {
		struct object *old = find(s, parsed[i].kind, parsed[i].ns, parsed[i].name);
		const char *action = apply_action(old, &parsed[i]);

		if (old) {
			/* Kept for store_restore, should the apply be undone
			 * midway through a list. */
			parsed[i].listed = old->listed;
			note_change(s, old);
			object_clear(old);
			*old = parsed[i];
			at[i] = (size_t)(old - s->v);
		} else {
			at[i] = s->n;
			s->v[s->n++] = parsed[i];
			idx_added(s);
		}
		json_array_append_new(changes, change(&parsed[i], action));
		memset(&parsed[i], 0, sizeof(parsed[i]));
	}
	nodes_check(s);
	services_check(s);
	/* Notes once everything is in: a slice applied with its Service is
	 * not waiting for it, whatever their order in the files. */
	for (i = 0; i < n; i++) {
		char nbuf[400];
		const char *note = object_note(s, &s->v[at[i]], nbuf, sizeof(nbuf));

		if (note)
			json_object_set_new(json_array_get(changes, first + i), "note",
					    json_string(note));
	}
	ret = save(s);
	if (ret)
		pr_warn("cannot save objects to %s: %s", s->path, strerror(-ret));
cleanup:
	apply_free(parsed, n);
	free(at);
	return code;
}

int store_apply_dry_run(struct store *s, const json_t *objects, const json_t *sources, bool live,
			json_t *changes, char *err, size_t errlen)
{
	size_t n = json_array_size(objects);
	struct object *parsed = NULL;
	int code;

	code = apply_check(s, objects, sources, &parsed, err, errlen);
	if (code)
		return code;
	for (size_t i = 0; i < n; i++) {
		const struct object *old = find(s, parsed[i].kind, parsed[i].ns, parsed[i].name);
		json_t *c = change(&parsed[i], apply_action(old, &parsed[i]));

		/* live: the object as stored, what `sluicectl diff` compares. */
		if (c && old && live && json_object_set_new(c, "live", object_json(old))) {
			json_decref(c);
			c = NULL;
		}
		if (!c || json_array_append_new(changes, c)) {
			code = CNI_ERR_INTERNAL;
			snprintf(err, errlen, "out of memory answering the dry run");
			break;
		}
	}
	apply_free(parsed, n);
	return code;
}

json_t *store_snapshot(struct store *s, const json_t *objects)
{
	json_t *snap = json_array(), *obj;
	size_t i;

	json_array_foreach(objects, i, obj) {
		const char *ns, *name;
		enum obj_kind kind;
		struct object *o = NULL;
		char why[512];
		json_t *was = NULL;

		if (!identify(obj, &kind, &ns, &name, why, sizeof(why)))
			o = find(s, kind, ns, name);
		if (o)
			was = object_json(o);
		json_array_append_new(snap, was ? json_pack("{s:o, s:b}", "object", was, "kube",
							     o->kube)
						: json_null());
	}
	return snap;
}

int store_restore(struct store *s, const json_t *objects, const json_t *snap)
{
	json_t *obj;
	size_t i;
	int ret = 0;

	json_array_foreach(objects, i, obj) {
		const json_t *was = json_array_get(snap, i);
		const char *ns, *name;
		enum obj_kind kind;
		struct object parsed = { 0 }, *o;
		char why[1024];

		if (identify(obj, &kind, &ns, &name, why, sizeof(why)))
			continue;
		o = find(s, kind, ns, name);
		if (json_is_null(was) || !was) {
			if (o)
				remove_at(s, (size_t)(o - s->v));
			continue;
		}
		if (object_parse(s, json_object_get(was, "object"), &parsed,
				 json_is_true(json_object_get(was, "kube")), why, sizeof(why)) ||
		    (!o && reserve(s, 1))) {
			object_clear(&parsed);
			ret = -ENOMEM;
			continue;
		}
		parsed.kube = json_is_true(json_object_get(was, "kube"));
		/* Undone midway through a list of its kind, an object keeps
		 * the mark the list gave it (store_apply kept it too), or put
		 * back, counts as listed: the list's end must not remove what
		 * the API may still have. */
		parsed.listed = o ? o->listed : s->listing[kind] ? s->list_gen[kind] : 0;
		if (o) {
			note_change(s, o);
			object_clear(o);
			*o = parsed;
		} else {
			s->v[s->n++] = parsed;
			idx_added(s);
		}
	}
	nodes_check(s);
	services_check(s);
	s->dirty = true;
	if (save(s))
		pr_warn("cannot save objects to %s", s->path);
	return ret;
}

int store_delete(struct store *s, const json_t *objects, const json_t *sources,
		 bool ignore_not_found, json_t *changes, char *err, size_t errlen)
{
	size_t n = json_array_size(objects), i;
	char why[512], src[32];
	const char *ns, *name;
	enum obj_kind kind;
	struct object *o;
	int ret;

	if (!json_is_array(objects) || !n) {
		snprintf(err, errlen, "nothing to delete: \"objects\" must be a non-empty list");
		return CNI_ERR_INVALID_CONFIG;
	}
	for (i = 0; i < n; i++) {
		ret = identify(json_array_get(objects, i), &kind, &ns, &name, why, sizeof(why));
		if (ret) {
			snprintf(err, errlen, "%s: %s; nothing was deleted",
				 source_of(sources, i, src, sizeof(src)), why);
			return CNI_ERR_INVALID_CONFIG;
		}
		if (!ignore_not_found && !find(s, kind, ns, name)) {
			snprintf(err, errlen,
				 "%s: %s %s%s%s not found; nothing was deleted (use "
				 "--ignore-not-found to skip missing objects)",
				 source_of(sources, i, src, sizeof(src)), kinds[kind].kind, ns,
				 *ns ? "/" : "", name);
			return CNI_ERR_UNKNOWN_CONTAINER;
		}
	}
	for (i = 0; i < n; i++) {
		identify(json_array_get(objects, i), &kind, &ns, &name, why, sizeof(why));
		o = find(s, kind, ns, name);
		if (!o) {
			json_array_append_new(changes,
					      json_pack("{s:s, s:s, s:s, s:s}", "kind", kinds[kind].kind,
							"namespace", ns, "name", name, "action",
							"not found"));
			continue;
		}
		json_array_append_new(changes, change(o, "deleted"));
		remove_at(s, (size_t)(o - s->v));
	}
	nodes_check(s);
	services_check(s);
	ret = save(s);
	if (ret)
		pr_warn("cannot save objects to %s: %s", s->path, strerror(-ret));
	return 0;
}

/* Put a saved object (from the snapshot or a journal record) in the store,
 * in place of any with its key. Returns 0, or -EINVAL / -ENOMEM with why. */
static int load_put(struct store *s, const json_t *obj, bool kube, char *why, size_t len)
{
	struct object p, *o;

	/* An unusable Service or slice from the API stays what it was. */
	if (object_parse(s, obj, &p, kube, why, len) && (!kube || object_unusable(obj, why, &p)))
		return -EINVAL;
	p.kube = kube;
	o = find(s, p.kind, p.ns, p.name);
	if (o) {
		note_change(s, o);
		object_clear(o);
		*o = p;
		return 0;
	}
	if (reserve(s, 1)) {
		object_clear(&p);
		snprintf(why, len, "out of memory");
		return -ENOMEM;
	}
	s->v[s->n++] = p;
	idx_added(s);
	return 0;
}

/* Read the snapshot, if there is one: s->snap_gen, s->snap_size and its objects. */
static int load_snapshot(struct store *s, char *err, size_t errlen)
{
	json_t *doc, *arr, *obj;
	json_error_t jerr;
	struct stat st;
	size_t i;

	if (stat(s->path, &st))
		return 0;
	doc = json_load_file(s->path, 0, &jerr);
	arr = doc;
	/*
	 * A snapshot that does not parse (only ever replaced whole, so a bad
	 * disk or a hand edit) is not repaired by starting empty: that would
	 * compile no policies and open every isolated pod. The agent stops
	 * instead; the pinned maps keep enforcing what they were last given.
	 */
	if (!json_is_array(doc) && !json_is_string(json_object_get(doc, "format"))) {
		snprintf(err, errlen,
			 "cannot read %s: %s; the datapath keeps enforcing the policy it was last "
			 "given. Restore the file from a backup, or move it and objects.journal away "
			 "to start with no stored objects (objects from the Kubernetes API come back "
			 "with the relist; apply the others with sluicectl again)",
			 s->path, doc ? "not an objects snapshot" : jerr.text);
		json_decref(doc);
		return -EINVAL;
	}
	if (json_is_object(doc)) {
		const char *format = json_string_value(json_object_get(doc, "format"));
		json_int_t gen = json_integer_value(json_object_get(doc, "generation"));

		arr = json_object_get(doc, "objects");
		if (!format || strcmp(format, SNAP_FORMAT) || gen <= 0 || !json_is_array(arr)) {
			snprintf(err, errlen,
				 "cannot read %s: not a snapshot of format %s (format \"%s\"); move "
				 "it and objects.journal away to start with no objects",
				 s->path, SNAP_FORMAT, format ? format : "?");
			json_decref(doc);
			return -EINVAL;
		}
		s->snap_gen = (uint64_t)gen;
	}
	s->snap_size = st.st_size;
	if (reserve(s, json_array_size(arr))) {
		json_decref(doc);
		return -ENOMEM;
	}
	json_array_foreach(arr, i, obj) {
		const char *origin = json_string_value(json_object_get(obj, "origin"));
		bool kube = origin && !strcmp(origin, "kubernetes");
		char why[1024];

		if (kube)
			obj = json_object_get(obj, "object");
		if (load_put(s, obj, kube, why, sizeof(why)))
			pr_warn("%s: ignoring saved object %zu: %s", s->path, i + 1, why);
	}
	json_decref(doc);
	return 0;
}

/* Apply one journal record's payload (its checksum is good). */
static void replay_record(struct store *s, const unsigned char *p, size_t n, off_t off)
{
	json_t *obj = n > 1 ? json_loadb((const char *)p + 1, n - 1, 0, NULL) : NULL;
	const char *ns, *name;
	enum obj_kind kind;
	struct object *o;
	char why[1024];

	if (!obj || (p[0] != 'k' && p[0] != 'a' && p[0] != 'd')) {
		pr_warn("%s: ignoring the record at offset %lld: not a put or a removal",
			s->jpath, (long long)off);
		json_decref(obj);
		return;
	}
	if (p[0] != 'd') {
		if (load_put(s, obj, p[0] == 'k', why, sizeof(why)))
			pr_warn("%s: ignoring the object saved at offset %lld: %s", s->jpath,
				(long long)off, why);
	} else if (identify(obj, &kind, &ns, &name, why, sizeof(why))) {
		pr_warn("%s: ignoring the removal at offset %lld: %s", s->jpath, (long long)off,
			why);
	} else if ((o = find(s, kind, ns, name))) {
		remove_at(s, (size_t)(o - s->v));
	}
	json_decref(obj);
}

/* Replay the journal after the snapshot: sets s->j_size (where the next
 * record goes), s->j_trunc (a tail to cut) or s->j_reset (not this
 * snapshot's journal). */
static void journal_replay(struct store *s)
{
	unsigned char *b = NULL;
	size_t len = 0, off;
	uint64_t gen;
	int ret;

	s->j_reset = true;
	ret = sf_read(AT_FDCWD, s->jpath, SIZE_MAX, (char **)&b, &len);
	if (ret) {
		if (ret != -ENOENT)
			pr_warn("%s: cannot read: %s; the objects saved in it since the snapshot "
				"%s are lost", s->jpath, strerror(-ret), s->path);
		return;
	}
	if (len < JOURNAL_HDR || memcmp(b, JOURNAL_MAGIC, 8)) {
		if (len)
			pr_warn("%s: not a sluice journal (%zu bytes); ignored", s->jpath, len);
		goto cleanup;
	}
	gen = get_le32(b + 8) | (uint64_t)get_le32(b + 12) << 32;
	if (!s->snap_gen || gen != s->snap_gen) {
		/* Left by a compaction that stopped after the rename: what it
		 * holds is in the snapshot already. */
		pr_info("%s: the journal of snapshot generation %" PRIu64 ", not %" PRIu64
			" (%s): ignored", s->jpath, gen, s->snap_gen, s->path);
		goto cleanup;
	}
	s->j_reset = false;
	for (off = JOURNAL_HDR; off < len;) {
		uint32_t n;

		if (len - off < REC_HDR || (n = get_le32(b + off)) > len - off - REC_HDR) {
			pr_warn("%s: dropping an incomplete record at offset %zu (the last %zu "
				"bytes; the records before it are kept)", s->jpath, off, len - off);
			break;
		}
		if (rec_crc(b + off, b + off + REC_HDR, n) != get_le32(b + off + 4)) {
			pr_warn("%s: dropping a record with a bad checksum at offset %zu and the "
				"%zu bytes after it (the records before it are kept)",
				s->jpath, off, len - off - REC_HDR - n);
			break;
		}
		replay_record(s, b + off + REC_HDR, n, (off_t)off);
		off += REC_HDR + n;
	}
	s->j_size = (off_t)off;
	s->j_trunc = off < len;
cleanup:
	free(b);
}

int store_open(struct store **out, const char *state_dir, char *err, size_t errlen)
{
	struct store *s;
	int ret;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->ch_all = true;
	s->jfd = -1;
	snprintf(s->dir, sizeof(s->dir), "%s", state_dir);
	snprintf(s->path, sizeof(s->path), "%s/objects.json", state_dir);
	snprintf(s->jpath, sizeof(s->jpath), "%s/objects.journal", state_dir);
	s->loading = true;
	ret = load_snapshot(s, err, errlen);
	if (ret) {
		store_close(s);
		return ret;
	}
	journal_replay(s);
	s->loading = false;
	nodes_check(s);
	services_check(s);
	*out = s;
	return 0;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		object_clear(&s->v[i]);
	free(s->v);
	free(s->idx);
	for (size_t k = 0; k < 2; k++)
		free(s->order[k].v);
	free(s->others.v);
	free(s->ns_order.pos);
	changes_clear(s);
	unsaved_clear(s);
	if (s->jfd >= 0)
		close(s->jfd);
	free(s->self_name);
	free(s->attrs.b);	/* every block went with its last Pod */
	free(s);
}

static const struct pol_pod *pod_object(struct store *s, const char *ns, const char *name)
{
	struct object *o = find(s, K_POD, ns, name);

	return o ? &o->pod : NULL;
}

const struct pol_pod *store_pod(struct store *s, const char *ns, const char *name)
{
	return pod_object(s, ns, name);
}

bool store_has_pod(struct store *s, const char *ns, const char *name)
{
	return pod_object(s, ns, name) != NULL;
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/*
 * The views of store_view_build (all pods) and store_view_build_lean (this
 * node's only). The local pods' Pod objects are found through the index
 * and skipped in the pass over the store by their position (sorted, and
 * met in order): O(1) a pod, where comparing each pod with each local
 * endpoint cost pods x locals string compares.
 */
/* s->others for this generation of the store. Returns 0 or -ENOMEM. */
static int others_refresh(struct store *s)
{
	struct others_cache *c = &s->others;

	if (c->valid && c->gen == s->gen)
		return 0;
	c->valid = false;
	c->n = 0;
	for (size_t i = 0; i < s->n; i++) {
		if (s->v[i].kind == K_POD)
			continue;
		if (c->n == c->cap) {
			size_t cap = c->cap ? c->cap * 2 : 256;
			uint32_t *v = realloc(c->v, cap * sizeof(*v));

			if (!v)
				return -ENOMEM;
			c->v = v;
			c->cap = cap;
		}
		c->v[c->n++] = (uint32_t)i;
	}
	c->gen = s->gen;
	c->valid = true;
	return 0;
}

static int view_build(struct store *s, struct store_local *locals, size_t nlocals,
		      const uint32_t *node_ips, size_t nnode_ips, bool all_pods,
		      struct store_view *v)
{
	size_t nns = 0, npods = 0, npol = 0, nnodes = 0, nlocal_objs = 0, j = 0;
	uint32_t *local_objs = NULL;
	int ret = 0;

	memset(v, 0, sizeof(*v));
	v->store = s;
	ret = others_refresh(s);
	if (ret)
		return ret;
	for (size_t k = 0; k < s->others.n; k++) {
		const struct object *o = &s->v[s->others.v[k]];

		nnodes += o->kind == K_NODE;
		nns += o->kind == K_NAMESPACE;
		npol += o->kind >= K_NETPOL;
	}
	for (size_t i = 0; all_pods && i < s->n; i++)
		npods += s->v[i].kind == K_POD;
	v->ns = calloc(nns + 1, sizeof(*v->ns));
	v->ns_by_name = calloc(nns + 1, sizeof(*v->ns_by_name));
	v->pods = calloc(npods + nlocals + 1, sizeof(*v->pods));
	v->pod_local = calloc(npods + nlocals + 1, sizeof(*v->pod_local));
	v->pol = calloc(npol + 1, sizeof(*v->pol));
	v->synthetic = calloc(nlocals + 1, sizeof(*v->synthetic));
	v->nodes = calloc(nnodes + 1, sizeof(*v->nodes));
	local_objs = calloc(nlocals + 1, sizeof(*local_objs));
	if (!v->ns || !v->ns_by_name || !v->pods || !v->pod_local || !v->pol || !v->synthetic ||
	    !v->nodes || !local_objs) {
		ret = -ENOMEM;
		goto cleanup;
	}
	for (size_t k = 0; k < s->others.n; k++) {
		struct object *o = &s->v[s->others.v[k]];

		if (o->kind == K_NAMESPACE)
			v->ns[v->w.nns++] = &o->nsobj;
		else if (o->kind == K_NODE)
			v->nodes[v->nnodes++] = o->node;
		else if (o->kind >= K_NETPOL)
			v->pol[v->w.npol++] = o->pol;
	}
	/* Local endpoints: their Pod object (with the endpoint's address), or a
	 * stand-in without labels until the Pod object arrives. */
	for (size_t i = 0; i < nlocals; i++) {
		struct store_local *l = &locals[i];
		struct object *obj = find(s, K_POD, l->ns, l->name);
		struct pol_pod *p = &v->synthetic[v->nsynthetic++];

		/* A shallow copy: labels and ports stay the store's; the
		 * endpoint's address is the truth on this node. */
		if (obj) {
			*p = obj->pod;
			local_objs[nlocal_objs++] = (uint32_t)(obj - s->v);
		} else {
			p->ns = (char *)l->ns;
			p->name = (char *)l->name;
			p->labels_unknown = l->need_object;
		}
		p->ip = l->ip;
		l->pod = p;
		v->pod_local[v->w.npods] = true;
		v->pods[v->w.npods++] = l->pod;
	}
	if (all_pods) {
		qsort(local_objs, nlocal_objs, sizeof(*local_objs), u32_cmp);
		for (size_t i = 0; i < s->n; i++) {
			if (s->v[i].kind != K_POD)
				continue;
			while (j < nlocal_objs && local_objs[j] < i)
				j++;
			if (j < nlocal_objs && local_objs[j] == i)
				continue;
			v->pods[v->w.npods++] = &s->v[i].pod;
		}
	}
	v->w.ns = v->ns;
	if (s->ns_order.valid && s->ns_order.gen == s->gen && s->ns_order.n == v->w.nns) {
		for (size_t i = 0; i < v->w.nns; i++)
			v->ns_by_name[i] = (struct pol_ns_ref){ .name = v->ns[s->ns_order.pos[i]]->name,
								 .pos = s->ns_order.pos[i] };
		v->w.ns_by_name = v->ns_by_name;
	} else {
		uint32_t *pos = realloc(s->ns_order.pos, (v->w.nns + 1) * sizeof(*pos));

		pol_world_index_ns(&v->w, v->ns_by_name);
		s->ns_order.valid = pos != NULL;
		if (pos) {
			for (size_t i = 0; i < v->w.nns; i++)
				pos[i] = (uint32_t)v->ns_by_name[i].pos;
			s->ns_order.pos = pos;
			s->ns_order.n = v->w.nns;
			s->ns_order.gen = s->gen;
		}
	}
	v->w.pods = v->pods;
	v->w.pol = v->pol;
	v->w.node_ips = node_ips;
	v->w.nnode_ips = nnode_ips;
cleanup:
	free(local_objs);
	if (ret)
		store_view_free(v);
	return ret;
}

int store_view_build(struct store *s, struct store_local *locals, size_t nlocals,
		     const uint32_t *node_ips, size_t nnode_ips, struct store_view *v)
{
	return view_build(s, locals, nlocals, node_ips, nnode_ips, true, v);
}

int store_view_build_lean(struct store *s, struct store_local *locals, size_t nlocals,
			  const uint32_t *node_ips, size_t nnode_ips, struct store_view *v)
{
	return view_build(s, locals, nlocals, node_ips, nnode_ips, false, v);
}

void store_view_free(struct store_view *v)
{
	free(v->ns);
	free(v->ns_by_name);
	free(v->pods);
	free(v->pod_local);
	free(v->pol);
	free(v->synthetic);
	free(v->nodes);
	memset(v, 0, sizeof(*v));
}

/* The view's copy of a local pod called ns/name (nslen bytes of ns). */
static const struct pol_pod *view_local(const struct store_view *v, const char *ns,
					size_t nslen, const char *name)
{
	for (size_t i = 0; i < v->nsynthetic; i++) {
		const struct pol_pod *p = &v->synthetic[i];

		if (strlen(p->ns) == nslen && !strncmp(p->ns, ns, nslen) && !strcmp(p->name, name))
			return p;
	}
	return NULL;
}

const struct pol_pod *store_view_pod(const struct store_view *v, const char *ns_name)
{
	const char *slash = strchr(ns_name, '/');
	const struct pol_pod *p;
	char *ns;

	if (!slash)
		return NULL;
	p = view_local(v, ns_name, (size_t)(slash - ns_name), slash + 1);
	if (p || !v->store)
		return p;
	ns = strndup(ns_name, (size_t)(slash - ns_name));
	if (!ns)
		return NULL;
	p = pod_object(v->store, ns, slash + 1);
	free(ns);
	return p;
}

const struct pol_pod *store_view_pod_by_ip(const struct store_view *v, uint32_t ip)
{
	const struct store *s = v->store;
	const struct pol_pod *found = NULL;

	if (!ip)
		return NULL;
	for (size_t i = 0; i < v->nsynthetic; i++)
		if (v->synthetic[i].ip == ip)
			found = &v->synthetic[i];
	if (found || !s)
		return found;
	/* A local pod's Pod object is not the pod here: its copy in the
	 * view, with the endpoint's address, is. */
	for (size_t i = 0; i < s->n; i++) {
		const struct object *o = &s->v[i];

		if (o->kind == K_POD && o->pod.ip == ip &&
		    !view_local(v, o->ns, strlen(o->ns), o->name))
			found = &o->pod;
	}
	return found;
}

const struct store_node *store_node(const struct store *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].kind == K_NODE && !strcmp(s->v[i].name, name))
			return s->v[i].node;
	return NULL;
}

json_t *store_namespaces_json(const struct store *s)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < s->n; i++) {
		const struct object *o = &s->v[i];
		json_t *obj, *labels;

		if (o->kind != K_NAMESPACE)
			continue;
		obj = object_json(o);
		labels = json_object_get(json_object_get(obj, "metadata"), "labels");
		json_array_append_new(arr, json_pack("{s:s, s:o}", "name", o->name, "labels",
						     labels ? json_incref(labels) : json_object()));
		json_decref(obj);
	}
	return arr;
}

/* ---- key order, for paging `get` -------------------------------------- */

static bool in_order(const struct object *o, enum store_order which)
{
	return which == STORE_PODS ? o->kind == K_POD : o->kind >= K_NETPOL;
}

/* (namespace, name, kind): compared part by part, never as one joined
 * string ("a-b/x" sorts after "a/x": namespace "a" comes first). */
static int key_cmp(const char *ns1, const char *name1, int kind1, const char *ns2,
		   const char *name2, int kind2)
{
	int c = strcmp(ns1, ns2);

	if (!c)
		c = strcmp(name1, name2);
	return c ? c : (kind1 > kind2) - (kind1 < kind2);
}

static int order_cmp(const void *a, const void *b, void *arg)
{
	const struct object *v = arg, *x = &v[*(const uint32_t *)a], *y = &v[*(const uint32_t *)b];

	return key_cmp(x->ns, x->name, x->kind, y->ns, y->name, y->kind);
}

ssize_t store_order(struct store *s, enum store_order which)
{
	struct order_cache *o = &s->order[which];
	size_t n = 0;
	uint32_t *v;

	if (o->valid && o->gen == s->gen)
		return (ssize_t)o->n;
	v = reallocarray(o->v, s->n + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	o->v = v;
	for (size_t i = 0; i < s->n; i++)
		if (in_order(&s->v[i], which))
			v[n++] = (uint32_t)i;
	qsort_r(v, n, sizeof(*v), order_cmp, s->v);
	o->n = n;
	o->gen = s->gen;
	o->valid = true;
	return (ssize_t)n;
}

size_t store_order_after(const struct store *s, enum store_order which, const char *ns,
			 const char *name, int kind)
{
	const struct order_cache *o = &s->order[which];
	size_t lo = 0, hi = o->n;

	if (!ns)
		return 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct object *x = &s->v[o->v[mid]];

		if (key_cmp(x->ns, x->name, which == STORE_PODS ? 0 : x->kind - K_NETPOL, ns,
			    name, kind) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

void store_order_ns_range(const struct store *s, enum store_order which, const char *ns,
			  size_t *lo, size_t *hi)
{
	const struct order_cache *o = &s->order[which];
	size_t a = 0, b = o->n;

	/* The first position whose namespace is not before ns… */
	while (a < b) {
		size_t mid = a + (b - a) / 2;

		if (strcmp(s->v[o->v[mid]].ns, ns) < 0)
			a = mid + 1;
		else
			b = mid;
	}
	*lo = a;
	/* …and the first one whose namespace is after it. */
	b = o->n;
	while (a < b) {
		size_t mid = a + (b - a) / 2;

		if (strcmp(s->v[o->v[mid]].ns, ns) <= 0)
			a = mid + 1;
		else
			b = mid;
	}
	*hi = a;
}

const struct pol_pod *store_order_pod(const struct store *s, size_t pos)
{
	const struct order_cache *o = &s->order[STORE_PODS];

	return pos < o->n ? &s->v[o->v[pos]].pod : NULL;
}

const struct pol_policy *store_order_policy(const struct store *s, size_t pos)
{
	const struct order_cache *o = &s->order[STORE_POLICIES];

	return pos < o->n ? s->v[o->v[pos]].pol : NULL;
}

json_t *store_counts_json(const struct store *s)
{
	size_t count[NKINDS] = { 0 }, bytes = s->cap * sizeof(*s->v) + s->idx_cap * sizeof(*s->idx) +
					     s->attrs.bytes + s->attrs.nb * sizeof(*s->attrs.b);
	json_t *kinds_j = json_object();

	for (size_t i = 0; i < s->n; i++) {
		const struct object *o = &s->v[i];

		count[o->kind]++;
		bytes += strlen(o->ns) + strlen(o->name) + 2;
		if (o->json)
			bytes += strlen(o->json) + 1;

	}
	for (size_t k = 0; kinds_j && k < NKINDS; k++)
		json_object_set_new(kinds_j, kinds[k].kind, json_integer((json_int_t)count[k]));
	return json_pack("{s:o, s:I, s:I}", "kinds", kinds_j, "objects", (json_int_t)s->n,
			 "bytes", (json_int_t)bytes);
}

/* ---- objects from the Kubernetes API --------------------------------- */

static void kube_warn(const json_t *obj, const char *why)
{
	pr_warn("kubernetes: ignoring %s %s%s%s: %s", str_at(obj, "kind", NULL) ?: "?",
		str_at(obj, "metadata", "namespace") ?: "",
		str_at(obj, "metadata", "namespace") ? "/" : "", str_at(obj, "metadata", "name") ?: "?",
		why);
}

/* Put the parsed object p in the store (taking it over), replacing any
 * object with its kind and name; appends to changes unless unchanged. */
static int kube_put(struct store *s, struct object *p, json_t *changes, size_t *at)
{
	struct object *old = find(s, p->kind, p->ns, p->name);
	const char *action = "created";
	bool said = false;	/* the old version was unusable for the same reason */

	p->kube = true;
	if (old) {
		*at = (size_t)(old - s->v);
		if (old->kube && objects_same(old, p)) {
			object_clear(p);
			return 0;
		}
		said = (p->kind == K_SERVICE && old->svc->invalid &&
			!strcmp(svc_why_text(old->svc->why), svc_why_text(p->svc->why))) ||
		       (p->kind == K_SLICE && old->slice->unused &&
			!strcmp(svc_why_text(old->slice->why), svc_why_text(p->slice->why)));
		/* A refused Service stays refused for the same reason until
		 * services_check decides again: it says so only if that changes. */
		if (p->kind == K_SERVICE && !p->svc->invalid && old->svc->refused) {
			p->svc->refused = true;
			svc_set_why(&p->svc->why, "%s", old->svc->why ? old->svc->why : "");
		}
		action = "configured";
		note_change(s, old);
		object_clear(old);
		*old = *p;
	} else {
		if (reserve(s, 1))
			return -ENOMEM;
		*at = s->n;
		s->v[s->n++] = *p;
		idx_added(s);
	}
	if (p->pol && p->pol->degraded)
		pr_warn("kubernetes: %s %s%s%s cannot be fully represented: %s%s; it isolates the pods "
			"it selects and that part allows nothing (a Deny rule denies everything)",
			kinds[p->kind].kind, p->ns, *p->ns ? "/" : "", p->name, p->pol->degraded,
			p->pol->ndegraded > 1 ? " (and more, see sluicectl get policies)" : "");
	/* Logged once: a relist of the same object compares equal above,
	 * and an update unusable for the same reason says nothing again. */
	if (p->kind == K_SERVICE && p->svc->invalid && !said)
		pr_warn("kubernetes: Service %s/%s is stored but not used: %s", p->ns, p->name,
			svc_why_text(p->svc->why));
	if (p->kind == K_SLICE && p->slice->unused && !said)
		log_msg(p->slice->addr_type == SVC_ADDR_IPV4 ? LOG_WARN : LOG_INFO,
			"kubernetes: EndpointSlice %s/%s is stored but not used: %s", p->ns, p->name,
			svc_why_text(p->slice->why));
	if (changes)
		json_array_append_new(changes, change(p, action));
	memset(p, 0, sizeof(*p));
	s->dirty = true;
	return 0;
}

/*
 * A Service or EndpointSlice from the API that sluice cannot read is
 * stored as unusable rather than skipped: the store holds what the API
 * holds (no stale frontend stays programmed), `get services` shows why,
 * and status counts it. why is object_parse's reason. Returns 0, -ENOMEM,
 * or -EINVAL for the other kinds (they keep their last readable version).
 */
static int object_unusable(const json_t *obj, const char *why, struct object *o)
{
	const char *ns, *name, *field = why;
	enum obj_kind kind;
	char ignored[256], object[400];

	memset(o, 0, sizeof(*o));
	if (identify(obj, &kind, &ns, &name, ignored, sizeof(ignored)) ||
	    (kind != K_SERVICE && kind != K_SLICE))
		return -EINVAL;
	snprintf(object, sizeof(object), "%s %s/%s: ", kinds[kind].kind, ns, name);
	if (!strncmp(why, object, strlen(object)))
		field += strlen(object);
	o->kind = kind;
	object_names(o, ns, name);
	o->json = json_text(obj);
	if (kind == K_SERVICE)
		o->svc = calloc(1, sizeof(*o->svc));
	else
		o->slice = calloc(1, sizeof(*o->slice));
	if (!o->ns || !o->name || !o->json || !o->svc) {
		object_clear(o);
		return -ENOMEM;
	}
	if (kind == K_SERVICE) {
		o->svc->invalid = true;
		svc_set_why(&o->svc->why, "%s", field);
	} else {
		o->slice->unused = true;
		svc_set_why(&o->slice->why, "invalid: %s", field);
	}
	return 0;
}

static void kube_remove(struct store *s, struct object *o, json_t *changes)
{
	if (changes)
		json_array_append_new(changes, change(o, "deleted"));
	remove_at(s, (size_t)(o - s->v));
	s->dirty = true;
}

int store_kube_event(struct store *s, const char *type, const json_t *obj, json_t *changes)
{
	struct object parsed, *o;
	char why[1024];
	size_t at;
	int ret;

	if (!strcmp(type, "DELETED")) {
		const char *ns, *name;
		enum obj_kind kind;

		if (identify(obj, &kind, &ns, &name, why, sizeof(why))) {
			kube_warn(obj, why);
			return 0;
		}
		o = find(s, kind, ns, name);
		if (o) {
			kube_remove(s, o, changes);
			if (kind == K_NODE)
				nodes_check(s);
			if (kind == K_SERVICE)
				services_check(s);
		}
		return 0;
	}
	ret = object_parse(s, obj, &parsed, true, why, sizeof(why));
	if (ret == -EINVAL)
		ret = object_unusable(obj, why, &parsed);
	if (ret == -ENOMEM)
		return ret;
	if (ret) {
		/* The API server validated it; what sluice cannot read keeps
		 * its last readable version rather than opening traffic. */
		kube_warn(obj, why);
		return 0;
	}
	ret = kube_put(s, &parsed, changes, &at);
	object_clear(&parsed);
	if (!ret && s->v[at].kind == K_NODE)
		nodes_check(s);
	if (!ret && s->v[at].kind == K_SERVICE)
		services_check(s);
	return ret;
}

/* The kind index of (api_version, kind) for a list, or -EINVAL. */
static int list_kind(const char *api_version, const char *kind)
{
	int k = kind_of(api_version, kind);

	return k < 0 ? -EINVAL : k;
}

int store_kube_list_begin(struct store *s, const char *api_version, const char *kind)
{
	int k = list_kind(api_version, kind);

	if (k < 0)
		return k;
	/* A list begun again (the last one failed midway, or its continue
	 * token expired) starts over: what only the abandoned one saw is
	 * still in the API as far as anyone knows, and stays unless this
	 * list's pages do not name it either. */
	if (++s->list_gen[k] == 0) {
		/* Wrapped after 2^32 lists: no object may keep a mark that a
		 * later list could be mistaken for. */
		for (size_t i = 0; i < s->n; i++)
			if (s->v[i].kind == (enum obj_kind)k)
				s->v[i].listed = 0;
		s->list_gen[k] = 1;
	}
	s->listing[k] = true;
	return 0;
}

int store_kube_list_page(struct store *s, const char *api_version, const char *kind,
			 const json_t *items, json_t *changes)
{
	int k = list_kind(api_version, kind);
	size_t n = json_array_size(items), i;
	int ret = 0;

	if (k < 0)
		return k;
	if (!s->listing[k])
		return -EINVAL;
	for (i = 0; i < n; i++) {
		const json_t *obj = json_array_get(items, i);
		const char *ns = str_at(obj, "metadata", "namespace");
		struct object parsed, *o;
		char why[1024];
		size_t at;

		ret = object_parse(s, obj, &parsed, true, why, sizeof(why));
		if (ret == -EINVAL)
			ret = object_unusable(obj, why, &parsed);
		if (ret == -ENOMEM)
			goto cleanup;
		if (ret || parsed.kind != (enum obj_kind)k) {
			if (ret)
				kube_warn(obj, why);
			else
				object_clear(&parsed);
			/* Keep what the store has under that name. */
			o = find(s, (enum obj_kind)k,
				 !kinds[k].namespaced ? "" : ns && *ns ? ns : "default",
				 str_at(obj, "metadata", "name") ?: "");
			if (o)
				o->listed = s->list_gen[k];
			ret = 0;
			continue;
		}
		ret = kube_put(s, &parsed, changes, &at);
		if (ret) {
			object_clear(&parsed);
			goto cleanup;
		}
		s->v[at].listed = s->list_gen[k];
	}
cleanup:
	/* As watch events do: a Node or Service put in is checked against
	 * the others now, so the store is consistent between pages too. */
	if (k == K_NODE)
		nodes_check(s);
	if (k == K_SERVICE)
		services_check(s);
	return ret;
}

int store_kube_list_end(struct store *s, const char *api_version, const char *kind,
			json_t *changes)
{
	int k = list_kind(api_version, kind);
	uint32_t gen;
	size_t i;

	if (k < 0)
		return k;
	if (!s->listing[k])
		return -EINVAL;
	gen = s->list_gen[k];
	s->listing[k] = false;
	/* Walk backwards: kube_remove moves the last object into the hole,
	 * one already looked at. */
	for (i = s->n; i-- > 0;)
		if (s->v[i].kind == (enum obj_kind)k && s->v[i].kube && s->v[i].listed != gen)
			kube_remove(s, &s->v[i], changes);
	if (k == K_NODE)
		nodes_check(s);
	if (k == K_SERVICE)
		services_check(s);
	return 0;
}

int store_kube_list_abort(struct store *s, const char *api_version, const char *kind)
{
	int k = list_kind(api_version, kind);

	if (k < 0)
		return k;
	s->listing[k] = false;
	return 0;
}

int store_kube_replace(struct store *s, const char *api_version, const char *kind,
		       const json_t *items, json_t *changes)
{
	int ret = store_kube_list_begin(s, api_version, kind);

	if (!ret)
		ret = store_kube_list_page(s, api_version, kind, items, changes);
	if (!ret)
		ret = store_kube_list_end(s, api_version, kind, changes);
	return ret;
}

int store_flush(struct store *s)
{
	/* Not between the pages of a list: its end saves (a page at a time
	 * would fold 500 records into the journal 100 times over). The keys
	 * noted by note_change count too: every put and removal goes through
	 * it, whether or not its path set dirty. */
	for (size_t k = 0; k < NKINDS; k++)
		if (s->listing[k])
			return 0;
	return s->dirty || s->nunsaved || s->unsaved_all ? save(s) : 0;
}
