// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/types.h>
#include <sluice/datapath.h>

#include "log.h"
#include "prefilter_sync.h"
#include "statefile.h"

/* What a map entry holds (and, for the diff, what it should hold). */
struct cur {
	uint32_t net;
	uint8_t len;
	uint32_t entry;
	uint64_t rules;
};

struct port_ent {
	uint8_t proto;
	uint16_t port;
	uint64_t mask;
};

struct left {
	size_t idx;
	char *why;
};

/* One object as the last sync left it, for status. */
struct pstat {
	char *name;
	bool kube, match, applied;
	char *reason;		/* not applied: why */
	int slot;		/* -1: none */
	struct cidr4 *deny;
	size_t ndeny;
	struct left *left;
	size_t nleft;
	char *selector;		/* "" without one */
};

struct pf_sync {
	struct pf_maps m;
	int ncpus;
	struct cur *cur;	/* sorted by (net, len) */
	size_t ncur;
	struct port_ent *ports;
	size_t nports;
	struct sluice_pf_cfg4 cfg;
	char *slot_name[SLUICE_PF_RULES_MAX];
	char *slots_path;
	struct pstat *st;
	size_t nst;
	char **problems;
	size_t nproblems;
};

static const char *const map_names[] = { "sluice_pf4_v1",   "sluice_pfh4_v1",  "sluice_pfp4_v1",
					 "sluice_pfcfg_v1", "sluice_pfent_v1", "sluice_pfrul_v1" };

static int *map_slot(struct pf_maps *m, size_t i)
{
	int *v[] = { &m->lpm, &m->host, &m->ports, &m->cfg, &m->ent, &m->rul };

	return v[i];
}

int pf_maps_open(struct pf_maps *m, const char *bpffs, char *err, size_t errlen)
{
	char path[1200];
	int ret = 0;

	for (size_t i = 0; i < 6; i++)
		*map_slot(m, i) = -1;
	for (size_t i = 0; i < 6; i++) {
		int fd;

		snprintf(path, sizeof(path), "%s/%s", bpffs, map_names[i]);
		fd = bpf_obj_get(path);
		if (fd < 0) {
			ret = -errno;
			snprintf(err, errlen, "cannot open the prefilter map %s: %s (the uplink's "
				 "object pins it; is this agent's datapath loaded?)", path,
				 strerror(errno));
			goto fail;
		}
		*map_slot(m, i) = fd;
	}
	return 0;
fail:
	for (size_t i = 0; i < 6; i++)
		if (*map_slot(m, i) >= 0)
			close(*map_slot(m, i));
	return ret;
}

static int cur_cmp(const void *a, const void *b)
{
	const struct cur *x = a, *y = b;

	if (x->net != y->net)
		return x->net < y->net ? -1 : 1;
	return (int)x->len - (int)y->len;
}

static int cur_push(struct cur **v, size_t *n, size_t *cap, const struct cur *c)
{
	if (*n == *cap) {
		size_t nc = *cap ? 2 * *cap : 1024;
		struct cur *p = realloc(*v, nc * sizeof(*p));

		if (!p)
			return -ENOMEM;
		*v = p;
		*cap = nc;
	}
	(*v)[(*n)++] = *c;
	return 0;
}

/* Read back the trie, the hash, the ports and the config. */
static int read_back(struct pf_sync *ps)
{
	struct sluice_pf_key4 k, nk;
	struct sluice_pf_val4 val;
	struct sluice_pf_port4 pk, npk;
	__be32 hk, nhk;
	size_t cap = 0, pcap = 0;
	__u32 zero = 0;
	__u64 mask;
	void *prev;
	int ret;

	for (prev = NULL; !bpf_map_get_next_key(ps->m.lpm, prev, &nk); prev = &k) {
		k = nk;
		if (bpf_map_lookup_elem(ps->m.lpm, &k, &val))
			continue;
		ret = cur_push(&ps->cur, &ps->ncur, &cap,
			       &(struct cur){ ntohl(k.addr), (uint8_t)k.prefixlen, val.entry,
					      val.rules });
		if (ret)
			return ret;
	}
	for (prev = NULL; !bpf_map_get_next_key(ps->m.host, prev, &nhk); prev = &hk) {
		hk = nhk;
		if (bpf_map_lookup_elem(ps->m.host, &hk, &val))
			continue;
		ret = cur_push(&ps->cur, &ps->ncur, &cap,
			       &(struct cur){ ntohl(hk), 32, val.entry, val.rules });
		if (ret)
			return ret;
	}
	if (ps->ncur)
		qsort(ps->cur, ps->ncur, sizeof(*ps->cur), cur_cmp);
	for (prev = NULL; !bpf_map_get_next_key(ps->m.ports, prev, &npk); prev = &pk) {
		pk = npk;
		if (bpf_map_lookup_elem(ps->m.ports, &pk, &mask))
			continue;
		if (ps->nports == pcap) {
			struct port_ent *p;

			pcap = pcap ? 2 * pcap : 64;
			p = realloc(ps->ports, pcap * sizeof(*p));
			if (!p)
				return -ENOMEM;
			ps->ports = p;
		}
		ps->ports[ps->nports++] = (struct port_ent){ pk.proto, ntohs(pk.port), mask };
	}
	if (bpf_map_lookup_elem(ps->m.cfg, &zero, &ps->cfg))
		memset(&ps->cfg, 0, sizeof(ps->cfg));
	return 0;
}

/* The slots file cannot be read (torn, garbage): moved to <path>.corrupt.
 * Only the per-rule counters depend on it: every SluicePrefilter takes a
 * fresh slot at the next sync (counters from zero); the rules are
 * rewritten from the objects either way. */
static void slots_set_aside(const char *path, const char *why)
{
	char aside[PATH_MAX + 16];
	int moved;

	snprintf(aside, sizeof(aside), "%s.corrupt", path);
	moved = !rename(path, aside);
	pr_warn("repair: %s is unreadable (%s): %s; the SluicePrefilters take fresh rule slots "
		"(their counters start from zero)", path, why,
		moved ? "moved to <path>.corrupt" : "cannot move it away");
}

/* The rule slots' owners as the last agent saved them; a slot the config
 * does not say is in use is free. */
static void slots_load(struct pf_sync *ps)
{
	json_t *root = NULL;
	json_error_t jerr;
	const char *name;
	json_t *v;

	if (ps->slots_path && !access(ps->slots_path, F_OK)) {
		root = json_load_file(ps->slots_path, 0, &jerr);
		if (!json_is_object(root))
			slots_set_aside(ps->slots_path, root ? "not an object" : jerr.text);
	}

	json_object_foreach(json_object_get(root, "slots"), name, v) {
		json_int_t i = json_integer_value(v);

		if (!json_is_integer(v) || i < 0 || i >= SLUICE_PF_RULES_MAX ||
		    !(ps->cfg.active & (1ull << i)) || ps->slot_name[i])
			continue;
		ps->slot_name[i] = strdup(name);
	}
	json_decref(root);
}

static int slots_save(struct pf_sync *ps)
{
	json_t *root, *slots;
	char *text;
	int ret;

	if (!ps->slots_path)
		return 0;
	slots = json_object();
	for (int i = 0; slots && i < SLUICE_PF_RULES_MAX; i++)
		if (ps->slot_name[i])
			json_object_set_new(slots, ps->slot_name[i], json_integer(i));
	root = json_pack("{s:o?}", "slots", slots);
	text = root ? json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(root);
	if (!text)
		return -ENOMEM;
	ret = sf_write_path(ps->slots_path, text, strlen(text), 0600);
	free(text);
	return ret;
}

int pf_sync_open(struct pf_sync **out, struct pf_maps *m, const char *slots_path, char *err,
		 size_t errlen)
{
	struct pf_sync *ps = calloc(1, sizeof(*ps));
	int ret;

	*out = NULL;
	if (!ps) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	ps->m = *m;
	m->lpm = m->host = m->ports = m->cfg = m->ent = m->rul = -1;
	ps->ncpus = libbpf_num_possible_cpus();
	if (ps->ncpus < 1)
		ps->ncpus = 1;
	if (slots_path && !(ps->slots_path = strdup(slots_path))) {
		pf_sync_close(ps);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	ret = read_back(ps);
	if (ret) {
		pf_sync_close(ps);
		snprintf(err, errlen, "cannot read the prefilter maps back: %s", strerror(-ret));
		return ret;
	}
	slots_load(ps);
	*out = ps;
	return 0;
}

static void pstat_free(struct pstat *p)
{
	free(p->name);
	free(p->reason);
	free(p->deny);
	for (size_t i = 0; i < p->nleft; i++)
		free(p->left[i].why);
	free(p->left);
	free(p->selector);
}

static void status_clear(struct pf_sync *ps)
{
	for (size_t i = 0; i < ps->nst; i++)
		pstat_free(&ps->st[i]);
	free(ps->st);
	ps->st = NULL;
	ps->nst = 0;
	for (size_t i = 0; i < ps->nproblems; i++)
		free(ps->problems[i]);
	free(ps->problems);
	ps->problems = NULL;
	ps->nproblems = 0;
}

void pf_sync_close(struct pf_sync *ps)
{
	if (!ps)
		return;
	for (size_t i = 0; i < 6; i++)
		if (*map_slot(&ps->m, i) >= 0)
			close(*map_slot(&ps->m, i));
	free(ps->cur);
	free(ps->ports);
	for (int i = 0; i < SLUICE_PF_RULES_MAX; i++)
		free(ps->slot_name[i]);
	free(ps->slots_path);
	status_clear(ps);
	free(ps);
}

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* Zero a per-CPU counter slot: it is given to a different prefix or object. */
static int counter_reset(struct pf_sync *ps, int fd, __u32 slot)
{
	struct sluice_metric *z = calloc((size_t)ps->ncpus, sizeof(*z));
	int ret = 0;

	if (!z)
		return -ENOMEM;
	if (bpf_map_update_elem(fd, &slot, z, BPF_ANY))
		ret = -errno;
	free(z);
	return ret;
}

static int counter_read(struct pf_sync *ps, int fd, __u32 slot, struct sluice_metric *sum)
{
	struct sluice_metric *v = calloc((size_t)ps->ncpus, sizeof(*v));

	memset(sum, 0, sizeof(*sum));
	if (!v)
		return -ENOMEM;
	if (!bpf_map_lookup_elem(fd, &slot, v))
		for (int c = 0; c < ps->ncpus; c++) {
			sum->packets += v[c].packets;
			sum->bytes += v[c].bytes;
		}
	free(v);
	return 0;
}

static int entry_write(struct pf_sync *ps, const struct cur *c)
{
	struct sluice_pf_val4 val = { .rules = c->rules, .entry = c->entry };

	if (c->len == 32) {
		__be32 k = htonl(c->net);

		return bpf_map_update_elem(ps->m.host, &k, &val, BPF_ANY) ? -errno : 0;
	}
	struct sluice_pf_key4 k = { .prefixlen = c->len, .addr = htonl(c->net) };

	return bpf_map_update_elem(ps->m.lpm, &k, &val, BPF_ANY) ? -errno : 0;
}

static int entry_delete(struct pf_sync *ps, const struct cur *c)
{
	int ret;

	if (c->len == 32) {
		__be32 k = htonl(c->net);

		ret = bpf_map_delete_elem(ps->m.host, &k);
	} else {
		struct sluice_pf_key4 k = { .prefixlen = c->len, .addr = htonl(c->net) };

		ret = bpf_map_delete_elem(ps->m.lpm, &k);
	}
	return ret && errno != ENOENT ? -errno : 0;
}

static int problem(struct pf_sync *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int problem(struct pf_sync *ps, const char *fmt, ...)
{
	char **v = realloc(ps->problems, (ps->nproblems + 1) * sizeof(*v));
	va_list ap;
	int ret;

	if (!v)
		return -ENOMEM;
	ps->problems = v;
	va_start(ap, fmt);
	ret = vasprintf(&v[ps->nproblems], fmt, ap);
	va_end(ap);
	if (ret < 0)
		return -ENOMEM;
	ps->nproblems++;
	return 0;
}

const char *pf_sync_problem(const struct pf_sync *ps, size_t i)
{
	return i < ps->nproblems ? ps->problems[i] : NULL;
}

static int obj_cmp(const void *a, const void *b)
{
	const struct pf_object *const *x = a, *const *y = b;

	return strcmp((*x)->name, (*y)->name);
}

static char *selector_text(const struct pf_object *o)
{
	char *s = NULL;
	size_t len = 0;
	FILE *f;

	if (!o->has_sel)
		return strdup("");
	f = open_memstream(&s, &len);
	if (!f)
		return NULL;
	for (size_t i = 0; i < o->sel.match.n; i++)
		fprintf(f, "%s%s=%s", i ? "," : "", o->sel.match.v[i].key, o->sel.match.v[i].value);
	for (size_t i = 0; i < o->sel.nexpr; i++) {
		static const char *const ops[] = { "in", "notin", "exists", "!exists" };

		fprintf(f, "%s%s %s", i || o->sel.match.n ? "," : "", o->sel.expr[i].key,
			ops[o->sel.expr[i].op]);
		for (size_t j = 0; j < o->sel.expr[i].nval; j++)
			fprintf(f, "%s%s", j ? "|" : " ", o->sel.expr[i].val[j]);
	}
	fclose(f);
	return s;
}

/* Build one object's status, its skipped entries (left out) and whether it
 * asks for a rule slot. */
static int object_status(struct pf_sync *ps, const struct pf_object *o, bool kube,
			 const struct pol_labels *labels, const struct pf_guards *g,
			 struct pstat *p, bool **skip)
{
	char why[512];
	size_t kept = 0;

	*skip = NULL;
	p->name = strdup(o->name);
	p->kube = kube;
	p->slot = -1;
	p->selector = selector_text(o);
	if (!p->name || !p->selector)
		return -ENOMEM;
	if (o->invalid) {
		p->reason = strdup(o->invalid);
		return p->reason ? problem(ps, "SluicePrefilter %s not applied: %s", o->name,
					   o->invalid) : -ENOMEM;
	}
	p->match = pf_applies(o, labels);
	p->deny = malloc((o->ndeny + 1) * sizeof(*p->deny));
	if (!p->deny)
		return -ENOMEM;
	memcpy(p->deny, o->deny, o->ndeny * sizeof(*p->deny));
	p->ndeny = o->ndeny;
	if (!p->match) {
		p->reason = strdup("its nodeSelector does not match this node");
		return p->reason ? 0 : -ENOMEM;
	}
	*skip = calloc(o->ndeny + 1, sizeof(**skip));
	if (!*skip)
		return -ENOMEM;
	for (size_t i = 0; i < o->ndeny; i++) {
		if (!pf_entry_offends(o, i, g, why, sizeof(why))) {
			kept++;
			continue;
		}
		struct left *l = realloc(p->left, (p->nleft + 1) * sizeof(*l));

		if (!l)
			return -ENOMEM;
		p->left = l;
		l[p->nleft].idx = i;
		l[p->nleft].why = strdup(why);
		if (!l[p->nleft].why)
			return -ENOMEM;
		p->nleft++;
		(*skip)[i] = true;
		if (problem(ps, "SluicePrefilter %s: %s: left out", o->name, why))
			return -ENOMEM;
	}
	if (!kept) {
		p->reason = strdup("every deny entry is left out (see leftOut)");
		return p->reason ? 0 : -ENOMEM;
	}
	p->applied = true;	/* unless no rule slot is left */
	return 0;
}

/* Rule slots: an object keeps its slot; a new one takes the lowest slot
 * nobody held at the last sync, then any free one (its counters are reset
 * in either case); past SLUICE_PF_RULES_MAX it is not applied. */
static int assign_slots(struct pf_sync *ps, char *new_name[SLUICE_PF_RULES_MAX],
			bool fresh[SLUICE_PF_RULES_MAX])
{
	for (size_t i = 0; i < ps->nst; i++) {
		struct pstat *p = &ps->st[i];

		if (!p->applied)
			continue;
		for (int s = 0; s < SLUICE_PF_RULES_MAX; s++)
			if (ps->slot_name[s] && !strcmp(ps->slot_name[s], p->name)) {
				p->slot = s;
				new_name[s] = p->name;
			}
	}
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < ps->nst; i++) {
			struct pstat *p = &ps->st[i];

			if (!p->applied || p->slot >= 0)
				continue;
			for (int s = 0; s < SLUICE_PF_RULES_MAX; s++)
				if (!new_name[s] && (pass || !ps->slot_name[s])) {
					p->slot = s;
					new_name[s] = p->name;
					fresh[s] = true;
					break;
				}
		}
	for (size_t i = 0; i < ps->nst; i++) {
		struct pstat *p = &ps->st[i];

		if (!p->applied || p->slot >= 0)
			continue;
		p->applied = false;
		p->reason = strdup("more than 64 SluicePrefilters apply on this node; this one "
				   "has no rule slot");
		if (!p->reason || problem(ps, "SluicePrefilter %s not applied: more than %d "
					  "apply on this node", p->name, SLUICE_PF_RULES_MAX))
			return -ENOMEM;
	}
	return 0;
}

static const struct cur *cur_find(const struct cur *v, size_t n, uint32_t net, uint8_t len)
{
	struct cur key = { .net = net, .len = len };

	if (!n)
		return NULL;
	return bsearch(&key, v, n, sizeof(*v), cur_cmp);
}

int pf_sync_apply(struct pf_sync *ps, const struct pf_object *const *objs, const bool *kube,
		  size_t n, const struct pol_labels *node_labels, const struct pf_guards *g,
		  struct pf_sync_stats *st, char *err, size_t errlen)
{
	char *new_name[SLUICE_PF_RULES_MAX] = { 0 };
	bool fresh[SLUICE_PF_RULES_MAX] = { 0 };
	const struct pf_object **sorted = NULL;
	struct pf_input *in = NULL;
	bool **skips = NULL, *kube_sorted = NULL;
	struct pf_prefix *t = NULL;
	struct cur *want = NULL;
	uint8_t *used = NULL, *held = NULL;
	struct port_ent *ports = NULL;
	size_t nt = 0, nin = 0, nports = 0;
	struct sluice_pf_cfg4 cfg = { 0 };
	double t0 = now_ms(), t1;
	__u32 zero = 0;
	int ret = 0;

	memset(st, 0, sizeof(*st));
	status_clear(ps);
	sorted = calloc(n + 1, sizeof(*sorted));
	kube_sorted = calloc(n + 1, sizeof(*kube_sorted));
	skips = calloc(n + 1, sizeof(*skips));
	ps->st = calloc(n + 1, sizeof(*ps->st));
	in = calloc(n + 1, sizeof(*in));
	if (!sorted || !kube_sorted || !skips || !ps->st || !in)
		goto oom;
	/* By name: which objects get the last slots does not depend on the
	 * store's order. */
	for (size_t i = 0; i < n; i++)
		sorted[i] = objs[i];
	qsort(sorted, n, sizeof(*sorted), obj_cmp);
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; kube && j < n; j++)
			if (objs[j] == sorted[i])
				kube_sorted[i] = kube[j];
	for (size_t i = 0; i < n; i++) {
		ps->nst++;
		ret = object_status(ps, sorted[i], kube_sorted[i], node_labels, g, &ps->st[i],
				    &skips[i]);
		if (ret)
			goto oom;
	}
	if (assign_slots(ps, new_name, fresh))
		goto oom;
	for (size_t i = 0; i < n; i++) {
		const struct pstat *p = &ps->st[i];

		if (!p->applied)
			continue;
		in[nin++] = (struct pf_input){ .o = sorted[i], .skip = skips[i],
					       .slot = (unsigned)p->slot };
		cfg.active |= 1ull << p->slot;
		if (!sorted[i]->nports) {
			cfg.all_ports |= 1ull << p->slot;
			continue;
		}
		for (size_t k = 0; k < sorted[i]->nports; k++) {
			const struct pf_port *pp = &sorted[i]->ports[k];
			size_t q;

			for (q = 0; q < nports; q++)
				if (ports[q].proto == pp->proto && ports[q].port == pp->port)
					break;
			if (q == nports) {
				struct port_ent *np = realloc(ports, (nports + 1) * sizeof(*np));

				if (!np)
					goto oom;
				ports = np;
				ports[nports++] = (struct port_ent){ pp->proto, pp->port, 0 };
			}
			ports[q].mask |= 1ull << p->slot;
		}
	}
	if (nports > SLUICE_PF_PORT_MAX) {
		snprintf(err, errlen, "the SluicePrefilters applying here name %zu distinct ports, "
			 "more than the %d the port map holds", nports, SLUICE_PF_PORT_MAX);
		ret = -ENOSPC;
		goto cleanup;
	}
	ret = pf_flatten(in, nin, &t, &nt);
	if (ret)
		goto oom;
	t1 = now_ms();
	st->compile_ms = t1 - t0;
	want = calloc(nt + 1, sizeof(*want));
	used = calloc(SLUICE_PF_ENTRY_SLOTS / 8, 1);
	held = calloc(SLUICE_PF_ENTRY_SLOTS / 8, 1);
	if (!want || !used || !held)
		goto oom;
	/* Counter slots: a deny prefix the maps hold keeps its slot. A new
	 * one takes a slot nobody held at the last sync, else one this sync
	 * frees (its counters reset either way), else 0: counted together. */
	for (size_t i = 0; i < ps->ncur; i++)
		held[ps->cur[i].entry / 8] |= (uint8_t)(1u << (ps->cur[i].entry % 8));
	used[0] = held[0] = 1;
	for (size_t i = 0; i < nt; i++) {
		const struct cur *c = cur_find(ps->cur, ps->ncur, t[i].net, t[i].len);

		want[i] = (struct cur){ .net = t[i].net, .len = t[i].len, .rules = t[i].rules };
		if (t[i].deny && c && c->entry) {
			want[i].entry = c->entry;
			used[c->entry / 8] |= (uint8_t)(1u << (c->entry % 8));
		}
	}
	for (int pass = 0; pass < 2; pass++) {
		const uint8_t *avoid = pass ? used : held;
		uint32_t next = 1;

		for (size_t i = 0; i < nt; i++) {
			if (!t[i].deny || want[i].entry)
				continue;
			while (next < SLUICE_PF_ENTRY_SLOTS &&
			       (((avoid[next / 8] >> (next % 8)) & 1) ||
				((used[next / 8] >> (next % 8)) & 1)))
				next++;
			if (next >= SLUICE_PF_ENTRY_SLOTS)
				break;
			want[i].entry = next;
			used[next / 8] |= (uint8_t)(1u << (next % 8));
			ret = counter_reset(ps, ps->m.ent, next);
			if (ret)
				goto map_err;
		}
	}
	/* A deny prefix comes before the prefixes inside it: its slot is set. */
	for (size_t i = 0; i < nt; i++)
		if (t[i].counted_as != SIZE_MAX)
			want[i].entry = want[t[i].counted_as].entry;
	for (int s = 0; s < SLUICE_PF_RULES_MAX; s++)
		if (fresh[s] && (ret = counter_reset(ps, ps->m.rul, (__u32)s)))
			goto map_err;
	/* New and changed entries first. */
	for (size_t i = 0; i < nt; i++) {
		const struct cur *c = cur_find(ps->cur, ps->ncur, want[i].net, want[i].len);

		if (c && c->rules == want[i].rules && c->entry == want[i].entry)
			continue;
		ret = entry_write(ps, &want[i]);
		if (ret)
			goto map_err;
		st->written++;
	}
	/* Ports, the config, then ports no longer used. */
	for (size_t q = 0; q < nports; q++) {
		struct sluice_pf_port4 k = { .proto = ports[q].proto, .port = htons(ports[q].port) };
		bool same = false;

		for (size_t o = 0; o < ps->nports; o++)
			same |= ps->ports[o].proto == ports[q].proto &&
				ps->ports[o].port == ports[q].port && ps->ports[o].mask == ports[q].mask;
		if (same)
			continue;
		if (bpf_map_update_elem(ps->m.ports, &k, &ports[q].mask, BPF_ANY)) {
			ret = -errno;
			goto map_err;
		}
		st->written++;
	}
	if (memcmp(&cfg, &ps->cfg, sizeof(cfg))) {
		if (bpf_map_update_elem(ps->m.cfg, &zero, &cfg, BPF_ANY)) {
			ret = -errno;
			goto map_err;
		}
		ps->cfg = cfg;
		st->written++;
	}
	for (size_t o = 0; o < ps->nports; o++) {
		struct sluice_pf_port4 k = { .proto = ps->ports[o].proto,
					     .port = htons(ps->ports[o].port) };
		bool keep = false;

		for (size_t q = 0; q < nports; q++)
			keep |= ps->ports[o].proto == ports[q].proto && ps->ports[o].port == ports[q].port;
		if (keep)
			continue;
		if (bpf_map_delete_elem(ps->m.ports, &k) && errno != ENOENT) {
			ret = -errno;
			goto map_err;
		}
		st->removed++;
	}
	free(ps->ports);
	ps->ports = ports;
	ps->nports = nports;
	ports = NULL;
	/* Then what is stale. */
	for (size_t i = 0; i < ps->ncur; i++) {
		if (cur_find(want, nt, ps->cur[i].net, ps->cur[i].len))
			continue;
		ret = entry_delete(ps, &ps->cur[i]);
		if (ret)
			goto map_err;
		st->removed++;
	}
	free(ps->cur);
	ps->cur = want;
	ps->ncur = nt;
	want = NULL;
	{
		bool changed = false;

		for (int s = 0; s < SLUICE_PF_RULES_MAX; s++) {
			const char *a = ps->slot_name[s], *b = new_name[s];

			if ((!a) != (!b) || (a && strcmp(a, b))) {
				changed = true;
				free(ps->slot_name[s]);
				ps->slot_name[s] = b ? strdup(b) : NULL;
				if (b && !ps->slot_name[s])
					goto oom;
			}
		}
		if (changed && (ret = slots_save(ps)))
			pr_warn("prefilter: cannot save the rule slots to %s: %s", ps->slots_path,
				strerror(-ret));
	}
	st->prefixes = ps->ncur;
	st->ms = now_ms() - t0;
	ret = 0;
	goto cleanup;
map_err:
	snprintf(err, errlen, "cannot write the prefilter maps: %s", strerror(-ret));
	/* What the maps hold is no longer known exactly: read it again. */
	free(ps->cur);
	ps->cur = NULL;
	ps->ncur = 0;
	free(ps->ports);
	ps->ports = NULL;
	ps->nports = 0;
	if (read_back(ps))
		pr_warn("prefilter: cannot read the maps back");
	goto cleanup;
oom:
	ret = -ENOMEM;
	snprintf(err, errlen, "out of memory");
cleanup:
	for (size_t i = 0; skips && i < n; i++)
		free(skips[i]);
	free(skips);
	free(sorted);
	free(kube_sorted);
	free(in);
	free(t);
	free(want);
	free(used);
	free(held);
	free(ports);
	return ret;
}

static json_t *metric_json(const struct sluice_metric *m)
{
	return json_pack("{s:I, s:I}", "packets", (json_int_t)m->packets, "bytes",
			 (json_int_t)m->bytes);
}

/* Deny entries listed with their drops in one answer: 20 000 take about
 * 2 MB of JSON, half of what an answer may be (SLUICE_API_MAX_MSG). */
#define PF_DETAIL_MAX 20000

static json_t *item_json(struct pf_sync *ps, const struct pstat *p, bool detail, size_t *budget)
{
	struct sluice_metric total = { 0 }, m;
	json_t *it, *entries, *left;
	char buf[24];

	if (p->slot >= 0)
		counter_read(ps, ps->m.rul, (__u32)p->slot, &total);
	it = json_pack("{s:s, s:s, s:I, s:b, s:b, s:s, s:o, s:s?}", "name", p->name, "source",
		       p->kube ? "kubernetes" : "sluicectl", "entries", (json_int_t)p->ndeny,
		       "applied", p->applied, "nodeSelectorMatch", p->match, "nodeSelector",
		       p->selector, "dropped", metric_json(&total), "reason", p->reason);
	if (!it)
		return NULL;
	if (p->slot >= 0)
		json_object_set_new(it, "ruleSlot", json_integer(p->slot));
	json_object_set_new(it, "leftOutEntries", json_integer((json_int_t)p->nleft));
	/* Which entries and why, always: few, and what the table must say. */
	left = json_array();
	for (size_t i = 0; left && i < p->nleft; i++) {
		cidr4_format(&p->deny[p->left[i].idx], buf, sizeof(buf));
		json_array_append_new(left, json_pack("{s:I, s:s, s:s}", "index",
						      (json_int_t)p->left[i].idx, "cidr", buf,
						      "reason", p->left[i].why));
	}
	json_object_set_new(it, "leftOut", left);
	if (!detail)
		return it;
	entries = json_array();
	for (size_t i = 0; entries && i < p->ndeny; i++) {
		if (!*budget) {
			/* The rest by `get prefilter NAME`, or not at all. */
			json_object_set_new(it, "denyOmitted", json_integer((json_int_t)(p->ndeny - i)));
			break;
		}
		(*budget)--;
		const struct cur *c = p->applied ? cur_find(ps->cur, ps->ncur, p->deny[i].net,
							    (uint8_t)p->deny[i].prefix) : NULL;
		bool out = false;

		for (size_t k = 0; k < p->nleft; k++)
			out |= p->left[k].idx == i;
		memset(&m, 0, sizeof(m));
		if (c && c->entry && !out)
			counter_read(ps, ps->m.ent, c->entry, &m);
		cidr4_format(&p->deny[i], buf, sizeof(buf));
		json_array_append_new(entries,
				      json_pack("{s:s, s:b, s:i, s:o}", "cidr", buf, "applied",
						c && !out, "counterSlot", c && !out ? (int)c->entry : 0,
						"dropped", metric_json(&m)));
	}
	json_object_set_new(it, "deny", entries);
	return it;
}

json_t *pf_sync_status_json(struct pf_sync *ps, const char *name, bool detail)
{
	size_t budget = PF_DETAIL_MAX;
	json_t *items;

	if (name) {
		for (size_t i = 0; i < ps->nst; i++)
			if (!strcmp(ps->st[i].name, name))
				return item_json(ps, &ps->st[i], detail, &budget);
		return NULL;
	}
	items = json_array();
	for (size_t i = 0; items && i < ps->nst; i++)
		json_array_append_new(items, item_json(ps, &ps->st[i], detail, &budget));
	return json_pack("{s:o}", "items", items);
}

json_t *pf_sync_metrics_json(struct pf_sync *ps)
{
	json_t *arr = json_array();
	struct sluice_metric m;

	for (size_t i = 0; arr && i < ps->nst; i++) {
		if (ps->st[i].slot < 0)
			continue;
		counter_read(ps, ps->m.rul, (__u32)ps->st[i].slot, &m);
		json_array_append_new(arr, json_pack("{s:s, s:I, s:I}", "name", ps->st[i].name,
						     "packets", (json_int_t)m.packets, "bytes",
						     (json_int_t)m.bytes));
	}
	return arr;
}
