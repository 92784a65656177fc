// SPDX-License-Identifier: Apache-2.0
/*
 * Saving the object store: changes go to objects.journal as records after
 * the objects.json snapshot and come back identical after a restart; a torn
 * or corrupt tail record is dropped (everything before it kept, the file
 * and offset logged); the snapshot is rewritten only when the journal
 * outgrows it, keeping the content; a journal left by an interrupted
 * compaction is ignored; objects.json in the format before the journal
 * loads and is upgraded by the next save.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "store.h"
#include "store_test.h"

STORE_TEST_DIR("/tmp/sluice-test-persist-XXXXXX")

#define PORT_NAME "h\"t\\\ttab \xe2\x9c\x93"

/* A Pod from the API with fields sluice does not read (the note among
 * them), and a port name with characters JSON escapes. A note longer than
 * a label value goes into labels too, 63 characters each (up to 800), so
 * that the Pod as kept is as large. */
static json_t *kpod(const char *name, const char *ip, const char *app, const char *note)
{
	json_t *pod = json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:s, s:{s:s, s:s}, s:{s:s}},"
			 " s:{s:s, s:[{s:s, s:s, s:[{s:i, s:s}, {s:i, s:s, s:s}]}]},"
			 " s:{s:s, s:s, s:[{s:s}]}}",
			 "apiVersion", "v1", "kind", "Pod", "metadata", "name", name, "namespace",
			 "shop", "uid", "6f1c-\xc3\xa9t\xc3\xa9", "resourceVersion", "4711",
			 "labels", "app", app, "tier", "front", "annotations", "note",
			 note, "spec", "nodeName", "n1", "containers", "name", "c", "image",
			 "registry.local/app:1", "ports", "containerPort", 8080, "name", PORT_NAME,
			 "containerPort", 53, "protocol", "UDP", "hostIP", "127.0.0.1", "status",
			 "podIP", ip, "phase", "Running", "podIPs", "ip", ip);
	json_t *labels = json_object_get(json_object_get(pod, "metadata"), "labels");
	size_t len = strlen(note);

	assert_non_null(pod);
	for (size_t i = 0; len > 63 && i < len / 63 && i < 800; i++) {
		char key[16], val[64];

		snprintf(key, sizeof(key), "n%03zu", i);
		memcpy(val, note + 63 * i, 63);
		val[63] = '\0';
		json_object_set_new(labels, key, json_string(val));
	}
	return pod;
}

/* What the store keeps of a Pod from the API (kpod): its labels, ports and
 * address, nothing else; saved and restored, it must come back as this. */
static json_t *kept(const json_t *pod)
{
	const json_t *m = json_object_get(pod, "metadata");

	return json_pack("{s:s, s:s, s:{s:O, s:O, s:O}, s:{s:[{s:[{s:i, s:s, s:s}, {s:i, s:s}]}]},"
			 " s:{s:O}}",
			 "apiVersion", "v1", "kind", "Pod", "metadata", "labels",
			 json_object_get(m, "labels"), "name", json_object_get(m, "name"),
			 "namespace", json_object_get(m, "namespace"), "spec", "containers", "ports",
			 "containerPort", 8080, "name", PORT_NAME, "protocol", "TCP", "containerPort", 53,
			 "protocol", "UDP", "status", "podIP",
			 json_object_get(json_object_get(pod, "status"), "podIP"));
}

/* A NetworkPolicy as `sluicectl apply` gives it. */
static json_t *policy(const char *name, const char *app)
{
	return json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:{s:{s:s}}, s:[s]}}", "apiVersion",
			 "networking.k8s.io/v1", "kind", "NetworkPolicy", "metadata", "name", name,
			 "namespace", "shop", "spec", "podSelector", "matchLabels", "app", app,
			 "policyTypes", "Ingress");
}

static void event(struct store *s, const char *type, json_t *obj)
{
	json_t *changes = json_array();

	assert_int_equal(store_kube_event(s, type, obj, changes), 0);
	json_decref(changes);
}

static void apply(struct store *s, json_t *obj)
{
	json_t *objs = json_pack("[O]", obj), *srcs = json_pack("[s]", "test.yaml");
	json_t *changes = json_array();
	char err[512];

	assert_int_equal(store_apply(s, objs, srcs, changes, err, sizeof(err)), 0);
	json_decref(objs);
	json_decref(srcs);
	json_decref(changes);
}

static void unapply(struct store *s, json_t *obj)
{
	json_t *objs = json_pack("[O]", obj), *srcs = json_pack("[s]", "test.yaml");
	json_t *changes = json_array();
	char err[512];

	assert_int_equal(store_delete(s, objs, srcs, false, changes, err, sizeof(err)), 0);
	json_decref(objs);
	json_decref(srcs);
	json_decref(changes);
}

/* The store holds obj exactly (with its origin; a Pod from the API as
 * kept() says), or (obj NULL) not key. */
static void expect(struct store *s, const json_t *key, const json_t *obj, bool kube)
{
	json_t *objs = json_pack("[O]", key), *snap = store_snapshot(s, objs), *k = NULL;
	const json_t *e = json_array_get(snap, 0);

	if (obj && kube && !strcmp(json_string_value(json_object_get(obj, "kind")), "Pod"))
		obj = k = kept(obj);
	if (!obj) {
		assert_true(json_is_null(e));
	} else {
		if (!json_equal(json_object_get(e, "object"), obj)) {
			char *want = json_dumps(obj, JSON_SORT_KEYS), *got = json_dumps(e, JSON_SORT_KEYS);

			fail_msg("stored object differs:\n want %s\n got  %s", want, got);
		}
		assert_int_equal(json_is_true(json_object_get(e, "kube")), kube);
	}
	json_decref(k);
	json_decref(snap);
	json_decref(objs);
}

static void path_in(char *buf, size_t len, const char *sdir, const char *file)
{
	snprintf(buf, len, "%s/%s", sdir, file);
}

static off_t size_of(const char *sdir, const char *file)
{
	char p[700];
	struct stat st;

	path_in(p, sizeof(p), sdir, file);
	return stat(p, &st) ? -1 : st.st_size;
}

/* The whole file (NUL-terminated), its length in *len. */
static char *slurp(const char *sdir, const char *file, size_t *len)
{
	char p[700], *b;
	FILE *f;
	long n;

	path_in(p, sizeof(p), sdir, file);
	f = fopen(p, "rb");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	rewind(f);
	b = malloc((size_t)n + 1);
	assert_non_null(b);
	assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
	b[n] = '\0';
	fclose(f);
	if (len)
		*len = (size_t)n;
	return b;
}

static void spill(const char *sdir, const char *file, const char *b, size_t len)
{
	char p[700];
	FILE *f;

	path_in(p, sizeof(p), sdir, file);
	f = fopen(p, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(b, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* The snapshot's generation (0: an old-format array). */
static json_int_t generation(const char *sdir)
{
	char p[700];
	json_t *doc;
	json_int_t g;

	path_in(p, sizeof(p), sdir, "objects.json");
	doc = json_load_file(p, 0, NULL);
	assert_non_null(doc);
	g = json_is_array(doc) ? 0 : json_integer_value(json_object_get(doc, "generation"));
	json_decref(doc);
	return g;
}

/* Open the store in sdir with what it logs caught: returned, to free. */
static char *open_logged(struct store **s, const char *sdir)
{
	char p[700], err[512], *log;
	int saved, fd;

	path_in(p, sizeof(p), sdir, "../open.log");
	fflush(stderr);
	saved = dup(2);
	fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(saved >= 0 && fd >= 0);
	dup2(fd, 2);
	close(fd);
	assert_int_equal(store_open(s, sdir, err, sizeof(err)), 0);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	log = slurp(sdir, "../open.log", NULL);
	return log;
}

static struct store *reopen(const char *sdir)
{
	struct store *s;
	char *log = open_logged(&s, sdir);

	free(log);
	return s;
}

/* Changes after the first save are records in the journal, not a new
 * objects.json, and all of them come back after a restart: API objects
 * identical and still the API's, applied ones still applied. */
static void test_journal_round_trip(void **state)
{
	json_t *a1 = kpod("a", "10.0.0.1", "web", "first \"one\"\\\n\ttab \xe2\x9c\x93");
	json_t *a2 = kpod("a", "10.0.0.1", "api", "second");
	json_t *b = kpod("b", "10.0.0.2", "db", "");
	json_t *c = kpod("c", "10.0.0.3", "db", "c");
	json_t *p1 = policy("p1", "web"), *p2 = policy("p2", "db"), *p2b = policy("p2", "api");
	json_t *items = json_pack("[O, O]", a1, b), *changes = json_array(), *empty;
	/* cluster-scoped: a removal record without a namespace */
	json_t *ns = jt("{'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': 'old', "
			"'labels': {'team': 'x'}}}");
	json_t *node = jt("{'apiVersion': 'v1', 'kind': 'Node', 'metadata': {'name': 'n2'}, "
			  "'spec': {'podCIDR': '10.9.2.0/24'}}");
	struct store_change *ch;
	char sdir[600], *snap;
	size_t nch, len;
	struct store *s;
	off_t j0;

	(void)state;
	s = store_in(dir, "rt");
	snprintf(sdir, sizeof(sdir), "%s/rt", dir);
	assert_int_equal(store_kube_replace(s, "v1", "Pod", items, changes), 0);
	event(s, "ADDED", ns);
	apply(s, p1);
	assert_int_equal(store_flush(s), 0);
	assert_int_equal(generation(sdir), 1);
	snap = slurp(sdir, "objects.json", &len);
	j0 = size_of(sdir, "objects.journal");
	assert_int_equal(j0, 16); /* a header, no record */

	event(s, "MODIFIED", a2);
	event(s, "DELETED", b);
	event(s, "ADDED", c);
	event(s, "DELETED", ns);
	event(s, "ADDED", node);
	assert_int_equal(store_flush(s), 0);
	apply(s, p2);
	apply(s, p2b);
	unapply(s, p1);
	assert_true(size_of(sdir, "objects.journal") > j0);
	/* the snapshot was not written again */
	{
		size_t len2;
		char *now = slurp(sdir, "objects.json", &len2);

		assert_int_equal(len2, len);
		assert_memory_equal(now, snap, len);
		free(now);
	}
	free(snap);
	store_close(s);

	s = reopen(sdir);
	expect(s, a1, a2, true);
	expect(s, b, NULL, false);
	expect(s, c, c, true);
	expect(s, p1, NULL, false);
	expect(s, p2, p2b, false);
	expect(s, ns, NULL, false);
	expect(s, node, node, true);
	/* a restart starts the change log as "everything" */
	assert_true(store_changes_take(s, &ch, &nch));
	assert_int_equal(nch, 0);
	store_changes_free(ch, nch);
	/* the origin survived: an empty relist removes the API's pods only */
	json_decref(changes);
	changes = json_array();
	empty = json_array();
	assert_int_equal(store_kube_replace(s, "v1", "Pod", empty, changes), 0);
	assert_int_equal(json_array_size(changes), 2);
	assert_int_equal(store_flush(s), 0);
	store_close(s);
	s = reopen(sdir);
	expect(s, a1, NULL, false);
	expect(s, c, NULL, false);
	expect(s, p2, p2b, false);
	store_close(s);

	json_decref(empty);
	json_decref(changes);
	json_decref(items);
	json_decref(a1);
	json_decref(a2);
	json_decref(b);
	json_decref(c);
	json_decref(p1);
	json_decref(p2);
	json_decref(p2b);
	json_decref(ns);
	json_decref(node);
}

/* A journal of records r1..r4 (one save each); the file cut at every byte
 * of r4: r1..r3 count, r4 does not, the log names the file and r4's offset
 * (unless the cut falls exactly between records), and the next save
 * appends after r3, where the next open finds it with nothing torn. */
static void test_torn_tail(void **state)
{
	json_t *v[5], *extra = kpod("z", "10.0.0.26", "z", "removed after the cut");
	json_t *y = policy("y", "web");
	char sdir[600], want[64], *journal, *log;
	off_t start[5], end;
	struct store *s;
	size_t jlen;

	(void)state;
	s = store_in(dir, "torn");
	snprintf(sdir, sizeof(sdir), "%s/torn", dir);
	v[0] = kpod("a", "10.0.0.1", "v0", "");
	event(s, "ADDED", v[0]);
	event(s, "ADDED", extra);
	apply(s, y); /* the snapshot */
	for (int i = 1; i <= 4; i++) {
		char app[16];

		snprintf(app, sizeof(app), "v%d", i);
		start[i] = size_of(sdir, "objects.journal");
		v[i] = kpod("a", "10.0.0.1", app, i % 2 ? "odd" : "even");
		event(s, "MODIFIED", v[i]);
		assert_int_equal(store_flush(s), 0);
	}
	end = size_of(sdir, "objects.journal");
	store_close(s);
	assert_int_equal(generation(sdir), 1);
	journal = slurp(sdir, "objects.journal", &jlen);
	assert_int_equal((off_t)jlen, end);

	s = reopen(sdir);
	expect(s, v[0], v[4], true);
	store_close(s);
	snprintf(want, sizeof(want), "offset %lld ", (long long)start[4]);
	for (off_t cut = start[4]; cut < end; cut++) {
		spill(sdir, "objects.journal", journal, (size_t)cut);
		log = open_logged(&s, sdir);
		expect(s, v[0], v[3], true);
		if (cut > start[4] && (!strstr(log, "objects.journal") || !strstr(log, want)))
			fail_msg("cut at %lld: the log does not name the journal and %s: %s",
				 (long long)cut, want, log);
		free(log);
		store_close(s);
	}
	/* cut one byte short of r4's end: the next save (a removal, a record
	 * shorter than what is left of r4) cuts the torn part first */
	spill(sdir, "objects.journal", journal, (size_t)end - 1);
	s = reopen(sdir);
	event(s, "DELETED", extra);
	assert_int_equal(store_flush(s), 0);
	store_close(s);
	log = open_logged(&s, sdir);
	if (strstr(log, "dropping"))
		fail_msg("the torn record was left in the journal: %s", log);
	expect(s, v[0], v[3], true);
	expect(s, extra, NULL, false);
	expect(s, y, y, false);
	store_close(s);
	free(log);
	free(journal);
	for (int i = 0; i <= 4; i++)
		json_decref(v[i]);
	json_decref(extra);
	json_decref(y);
}

/* A flipped byte in a record's payload, or in its checksum: the record
 * and all after it are dropped, the ones before kept, the offset logged. */
static void test_bad_checksum(void **state)
{
	json_t *a = kpod("a", "10.0.0.1", "a", ""), *b = kpod("b", "10.0.0.2", "b", "");
	json_t *c = kpod("c", "10.0.0.3", "c", ""), *p = policy("p", "web");
	char sdir[600], want[64], *journal, *log;
	off_t at_b, at_c;
	struct store *s;
	size_t jlen;

	(void)state;
	s = store_in(dir, "crc");
	snprintf(sdir, sizeof(sdir), "%s/crc", dir);
	apply(s, p); /* the snapshot */
	event(s, "ADDED", a);
	assert_int_equal(store_flush(s), 0);
	at_b = size_of(sdir, "objects.journal");
	event(s, "ADDED", b);
	assert_int_equal(store_flush(s), 0);
	at_c = size_of(sdir, "objects.journal");
	event(s, "ADDED", c);
	assert_int_equal(store_flush(s), 0);
	store_close(s);
	journal = slurp(sdir, "objects.journal", &jlen);

	/* in b's payload: b and c dropped */
	journal[at_b + 8 + 20] ^= 0x20;
	spill(sdir, "objects.journal", journal, jlen);
	log = open_logged(&s, sdir);
	snprintf(want, sizeof(want), "offset %lld ", (long long)at_b);
	assert_non_null(strstr(log, "objects.journal"));
	assert_non_null(strstr(log, "bad checksum"));
	assert_non_null(strstr(log, want));
	expect(s, p, p, false);
	expect(s, a, a, true);
	expect(s, b, NULL, false);
	expect(s, c, NULL, false);
	store_close(s);
	free(log);
	journal[at_b + 8 + 20] ^= 0x20;

	/* in c's checksum: c dropped */
	journal[at_c + 5] ^= 0x01;
	spill(sdir, "objects.journal", journal, jlen);
	log = open_logged(&s, sdir);
	snprintf(want, sizeof(want), "offset %lld ", (long long)at_c);
	assert_non_null(strstr(log, want));
	expect(s, a, a, true);
	expect(s, b, b, true);
	expect(s, c, NULL, false);
	store_close(s);
	free(log);
	free(journal);
	json_decref(a);
	json_decref(b);
	json_decref(c);
	json_decref(p);
}

/* With a 64 KiB object changed 24 times the journal passes 1 MiB once:
 * the snapshot is rewritten then (generation 2) and not before or after,
 * the journal never holds more than 1 MiB, and the content is the last
 * version. A journal left of generation 1 (a crash after the rename) is
 * then ignored, not replayed over the newer snapshot. */
static void test_compaction(void **state)
{
	char sdir[600], *big, *old = NULL, *log;
	json_t *v = NULL, *other = policy("p", "web");
	struct store *s;
	size_t oldlen = 0;
	int compactions = 0;

	(void)state;
	s = store_in(dir, "compact");
	snprintf(sdir, sizeof(sdir), "%s/compact", dir);
	big = malloc(64 * 1024 + 1);
	assert_non_null(big);
	for (int i = 0; i <= 24; i++) {
		json_int_t before = i ? generation(sdir) : 0;

		memset(big, 'a' + i % 26, 64 * 1024);
		big[64 * 1024] = '\0';
		json_decref(v);
		v = kpod("a", "10.0.0.1", "big", big);
		if (i == 0)
			apply(s, other);
		event(s, i ? "MODIFIED" : "ADDED", v);
		if (i && generation(sdir) == before) {
			free(old);
			old = slurp(sdir, "objects.journal", &oldlen);
		}
		assert_int_equal(store_flush(s), 0);
		if (i && generation(sdir) != before) {
			assert_int_equal(generation(sdir), before + 1);
			compactions++;
		}
		assert_true(size_of(sdir, "objects.journal") <= (1 << 20));
	}
	assert_int_equal(compactions, 1);
	assert_int_equal(generation(sdir), 2);
	store_close(s);
	s = reopen(sdir);
	expect(s, v, v, true);
	expect(s, other, other, false);
	store_close(s);

	/* the last journal of generation 1, as a crash right after the
	 * rename leaves it */
	free(old);
	old = NULL;
	s = reopen(sdir);
	for (int i = 0; generation(sdir) == 2; i++) {
		memset(big, 'A' + i % 26, 64 * 1024);
		json_decref(v);
		v = kpod("a", "10.0.0.1", "big", big);
		event(s, "MODIFIED", v);
		if (generation(sdir) == 2) {
			free(old);
			old = slurp(sdir, "objects.journal", &oldlen);
		}
		assert_int_equal(store_flush(s), 0);
	}
	store_close(s);
	spill(sdir, "objects.journal", old, oldlen);
	log = open_logged(&s, sdir);
	assert_non_null(strstr(log, "ignored"));
	expect(s, v, v, true);
	store_close(s);
	free(log);
	free(old);
	free(big);
	json_decref(v);
	json_decref(other);
}

/* A relist that changes more objects than the journal bound takes: one
 * snapshot, not thousands of records. */
static void test_many_changes_snapshot(void **state)
{
	json_t *items = json_array(), *changes = json_array(), *last = NULL;
	json_t *p = policy("p", "web");
	char sdir[600], name[32], ip[32];
	struct store *s;

	(void)state;
	s = store_in(dir, "many");
	snprintf(sdir, sizeof(sdir), "%s/many", dir);
	apply(s, p);
	assert_int_equal(generation(sdir), 1);
	for (int i = 0; i < 5000; i++) {
		snprintf(name, sizeof(name), "p%d", i);
		snprintf(ip, sizeof(ip), "10.1.%d.%d", i / 250, i % 250 + 1);
		last = kpod(name, ip, "x", "");
		json_array_append_new(items, last);
	}
	assert_int_equal(store_kube_replace(s, "v1", "Pod", items, changes), 0);
	assert_int_equal(store_flush(s), 0);
	assert_int_equal(generation(sdir), 2);
	assert_int_equal(size_of(sdir, "objects.journal"), 16);
	store_close(s);
	s = reopen(sdir);
	expect(s, last, last, true);
	expect(s, p, p, false);
	store_close(s);
	json_decref(p);
	json_decref(items);
	json_decref(changes);
}

/* objects.json as written before the journal (a plain array, API objects
 * wrapped with their origin) loads; the next save writes the snapshot
 * format, and the objects come back from it. */
/* The number of changes an event of obj reports (0: unchanged). */
static size_t event_changes(struct store *s, const char *type, json_t *obj)
{
	json_t *changes = json_array();
	size_t n;

	assert_int_equal(store_kube_event(s, type, obj, changes), 0);
	n = json_array_size(changes);
	json_decref(changes);
	return n;
}

/* A Pod from the API is kept as its labels, ports and address: an update
 * of anything else is no change, one of those is; the kept form is what
 * is saved, and a Pod applied by hand over it keeps all it was given. */
static void test_pod_kept(void **state)
{
	char sdir[600];
	json_t *a = kpod("a", "10.0.0.1", "web", "one"), *b = kpod("a", "10.0.0.1", "web", "two");
	json_t *c = kpod("a", "10.0.0.1", "web", "two"), *d = kpod("a", "10.0.0.1", "web", "two");
	json_t *e = kpod("a", "10.0.0.1", "web", "two"), *port;
	struct store *s;

	(void)state;
	s = store_in(dir, "kept");
	snprintf(sdir, sizeof(sdir), "%s/kept", dir);
	json_object_set_new(json_object_get(b, "metadata"), "uid", json_string("other"));
	json_object_set_new(json_object_get(b, "spec"), "nodeName", json_string("n2"));
	assert_int_equal(event_changes(s, "ADDED", a), 1);
	assert_int_equal(event_changes(s, "MODIFIED", b), 0);
	/* a finished pod's address is not its own any more */
	json_object_set_new(json_object_get(c, "status"), "phase", json_string("Succeeded"));
	assert_int_equal(event_changes(s, "MODIFIED", c), 1);
	assert_int_equal(event_changes(s, "MODIFIED", b), 1);
	port = json_array_get(json_object_get(json_array_get(json_object_get(
			json_object_get(d, "spec"), "containers"), 0), "ports"), 1);
	json_object_set_new(port, "protocol", json_string("SCTP"));
	assert_int_equal(event_changes(s, "MODIFIED", d), 1);
	json_object_set_new(json_object_get(json_object_get(e, "metadata"), "labels"), "tier",
			    json_string("back"));
	assert_int_equal(event_changes(s, "MODIFIED", e), 1);
	assert_int_equal(store_flush(s), 0);
	store_close(s);
	s = reopen(sdir);
	expect(s, e, e, true);
	apply(s, a);
	expect(s, a, a, false);
	store_close(s);
	s = reopen(sdir);
	expect(s, a, a, false);
	store_close(s);
	json_decref(a);
	json_decref(b);
	json_decref(c);
	json_decref(d);
	json_decref(e);
}

/* Pods with the same labels and ports share one copy of them, whatever
 * else differs; a relabelled one gets its own and leaves the others theirs;
 * the last one gone frees it (the sanitizer sees a leak otherwise). */
static void test_pod_shared(void **state)
{
	json_t *a = kpod("a", "10.0.0.1", "web", "x"), *b = kpod("b", "10.0.0.2", "web", "y");
	json_t *c = kpod("a", "10.0.0.1", "db", "x");
	const struct pol_pod *pa, *pb;
	struct store *s;

	(void)state;
	s = store_in(dir, "shared");
	event(s, "ADDED", a);
	event(s, "ADDED", b);
	pa = store_pod(s, "shop", "a");
	pb = store_pod(s, "shop", "b");
	assert_non_null(pa);
	assert_non_null(pb);
	assert_ptr_equal(pa->labels.v, pb->labels.v);
	assert_ptr_equal(pa->ports, pb->ports);
	event(s, "MODIFIED", c);
	pa = store_pod(s, "shop", "a");
	pb = store_pod(s, "shop", "b");
	assert_ptr_not_equal(pa->labels.v, pb->labels.v);
	assert_string_equal(pol_labels_get(&pa->labels, "app"), "db");
	assert_string_equal(pol_labels_get(&pb->labels, "app"), "web");
	assert_string_equal(pb->ports[0].name, PORT_NAME);
	event(s, "DELETED", b);
	event(s, "MODIFIED", a);
	pa = store_pod(s, "shop", "a");
	assert_string_equal(pol_labels_get(&pa->labels, "app"), "web");
	assert_int_equal(pa->nports, 2);
	assert_int_equal(pa->ports[1].port, 53);
	event(s, "DELETED", a);
	assert_null(store_pod(s, "shop", "a"));
	store_close(s);
	json_decref(a);
	json_decref(b);
	json_decref(c);
}

/* The lean view and the full one agree on namespaces, nodes and policies
 * (the same, in the same order) whatever was added and removed between
 * them: the lean one walks a list of the objects that are not Pods, made
 * again after adds and removals. */
static void views_agree(struct store *s, size_t npol)
{
	struct store_view full, lean;

	assert_int_equal(store_view_build(s, NULL, 0, NULL, 0, &full), 0);
	assert_int_equal(store_view_build_lean(s, NULL, 0, NULL, 0, &lean), 0);
	assert_int_equal(lean.w.npol, npol);
	assert_int_equal(lean.w.npol, full.w.npol);
	assert_int_equal(lean.w.nns, full.w.nns);
	assert_int_equal(lean.nnodes, full.nnodes);
	for (size_t i = 0; i < full.w.npol; i++)
		assert_ptr_equal(lean.w.pol[i], full.w.pol[i]);
	for (size_t i = 0; i < full.w.nns; i++)
		assert_ptr_equal(lean.w.ns[i], full.w.ns[i]);
	assert_int_equal(lean.w.npods, 0);
	store_view_free(&full);
	store_view_free(&lean);
}

static void test_lean_view(void **state)
{
	json_t *pods[8], *pols[4], *ns = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1",
						     "kind", "Namespace", "metadata", "name", "shop");
	struct store *s;
	char name[16], ip[16];

	(void)state;
	s = store_in(dir, "lean");
	for (int i = 0; i < 8; i++) {
		snprintf(name, sizeof(name), "p%d", i);
		snprintf(ip, sizeof(ip), "10.0.1.%d", i + 1);
		pods[i] = kpod(name, ip, "web", "");
		event(s, "ADDED", pods[i]);
	}
	views_agree(s, 0);
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "pol%d", i);
		pols[i] = policy(name, "web");
		apply(s, pols[i]);
		views_agree(s, (size_t)i + 1);
	}
	/* a removal moves the last object (a policy) into the hole */
	event(s, "DELETED", pods[0]);
	views_agree(s, 4);
	apply(s, ns);
	views_agree(s, 4);
	unapply(s, pols[1]);
	views_agree(s, 3);
	event(s, "MODIFIED", pods[3]);
	views_agree(s, 3);
	store_close(s);
	for (int i = 0; i < 8; i++)
		json_decref(pods[i]);
	for (int i = 0; i < 4; i++)
		json_decref(pols[i]);
	json_decref(ns);
}

static void test_old_format(void **state)
{
	json_t *a = kpod("a", "10.0.0.1", "web", "old"), *p = policy("p", "web");
	json_t *b = kpod("b", "10.0.0.2", "db", "new");
	json_t *old = json_pack("[{s:s, s:O}, O]", "origin", "kubernetes", "object", a, p);
	char sdir[600], path[700], *text;
	struct store *s;

	(void)state;
	snprintf(sdir, sizeof(sdir), "%s/old", dir);
	assert_int_equal(mkdir(sdir, 0700), 0);
	path_in(path, sizeof(path), sdir, "objects.json");
	assert_int_equal(json_dump_file(old, path, JSON_COMPACT), 0);
	s = reopen(sdir);
	expect(s, a, a, true);
	expect(s, p, p, false);
	event(s, "ADDED", b);
	assert_int_equal(store_flush(s), 0);
	store_close(s);
	text = slurp(sdir, "objects.json", NULL);
	assert_non_null(strstr(text, "\"format\":\"sluice-objects/2\""));
	assert_int_equal(generation(sdir), 1);
	free(text);
	s = reopen(sdir);
	expect(s, a, a, true);
	expect(s, b, b, true);
	expect(s, p, p, false);
	store_close(s);
	json_decref(old);
	json_decref(a);
	json_decref(b);
	json_decref(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_journal_round_trip),
		cmocka_unit_test(test_torn_tail),
		cmocka_unit_test(test_bad_checksum),
		cmocka_unit_test(test_compaction),
		cmocka_unit_test(test_many_changes_snapshot),
		cmocka_unit_test(test_pod_kept),
		cmocka_unit_test(test_pod_shared),
		cmocka_unit_test(test_lean_view),
		cmocka_unit_test(test_old_format),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
