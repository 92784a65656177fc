// SPDX-License-Identifier: Apache-2.0
/* Manifest reading (lib/manifest.c): YAML and JSON documents, Kubernetes
 * style scalar typing, Lists, anchors, and the errors users see. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "manifest.h"

struct loaded {
	json_t *objects;
	json_t *sources;
	char err[1024];
};

static int load(struct loaded *l, const char *label, const char *text)
{
	memset(l, 0, sizeof(*l));
	return manifest_read_mem(label, text, strlen(text), &l->objects, &l->sources, l->err,
				 sizeof(l->err));
}

static void loaded_free(struct loaded *l)
{
	json_decref(l->objects);
	json_decref(l->sources);
}

/* Loading text succeeds with n objects. */
static void load_ok(struct loaded *l, const char *text, size_t n)
{
	int ret = load(l, "app.yaml", text);

	if (ret)
		fail_msg("unexpected error %d: %s", ret, l->err);
	assert_int_equal(json_array_size(l->objects), n);
	assert_int_equal(json_array_size(l->sources), n);
}

/* Loading text fails with -EINVAL and an error that contains every
 * fragment given (NULL-terminated). */
static void load_fails(const char *text, ...)
{
	struct loaded l;
	const char *frag;
	va_list ap;

	assert_int_equal(load(&l, "app.yaml", text), -EINVAL);
	assert_null(l.objects);
	assert_null(l.sources);
	va_start(ap, text);
	while ((frag = va_arg(ap, const char *)))
		if (!strstr(l.err, frag))
			fail_msg("error \"%s\" lacks \"%s\"", l.err, frag);
	va_end(ap);
}

static void assert_json(const json_t *got, const char *want_text)
{
	json_error_t e;
	json_t *want = json_loads(want_text, JSON_DECODE_ANY, &e);
	char *dump;

	if (!want)
		fail_msg("bad test JSON %s: %s", want_text, e.text);
	if (!json_equal(got, want)) {
		dump = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);
		fail_msg("got %s, want %s", dump, want_text);
	}
	json_decref(want);
}

static void assert_source(const struct loaded *l, size_t i, const char *want)
{
	assert_string_equal(json_string_value(json_array_get(l->sources, i)), want);
}

/* spec of object i */
static const json_t *spec(const struct loaded *l, size_t i)
{
	return json_object_get(json_array_get(l->objects, i), "spec");
}

#define OBJ "apiVersion: v1\nkind: ConfigMap\n"
#define OBJ_SIZE_DEEP (64 + MANIFEST_MAX_DEPTH + 2)

static void test_multi_document(void **state)
{
	struct loaded l;

	(void)state;
	load_ok(&l,
		"# leading comment\n"
		"apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n"
		"---\n"
		"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
		"metadata:\n  name: deny-all\n  namespace: x\n"
		"spec:\n  podSelector: {}\n  policyTypes: [Ingress]\n"
		"---\n"
		"apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x}\n",
		3);
	assert_source(&l, 0, "app.yaml: document 1");
	assert_source(&l, 1, "app.yaml: document 2");
	assert_source(&l, 2, "app.yaml: document 3");
	assert_json(json_array_get(l.objects, 1),
		    "{\"apiVersion\": \"networking.k8s.io/v1\", \"kind\": \"NetworkPolicy\","
		    " \"metadata\": {\"name\": \"deny-all\", \"namespace\": \"x\"},"
		    " \"spec\": {\"podSelector\": {}, \"policyTypes\": [\"Ingress\"]}}");
	loaded_free(&l);
}

/* Empty documents are skipped but still counted, so numbers match what a
 * reader counts by ---. */
static void test_empty_documents(void **state)
{
	struct loaded l;

	(void)state;
	load_ok(&l, "---\n---\n" OBJ "---\n~\n---\nnull\n---\n# only a comment\n---\n" OBJ "---\n",
		2);
	assert_source(&l, 0, "app.yaml: document 2");
	assert_source(&l, 1, "app.yaml: document 6");
	loaded_free(&l);

	load_ok(&l, "", 0);
	loaded_free(&l);
	load_ok(&l, "# nothing here\n\n", 0);
	loaded_free(&l);
	load_ok(&l, "---\n...\n", 0);
	loaded_free(&l);
}

static void test_json(void **state)
{
	struct loaded l;

	(void)state;
	load_ok(&l, "\xEF\xBB\xBF {\"apiVersion\": \"v1\", \"kind\": \"Pod\", \"x\": 1.0, \"y\": \"80\"}",
		1);
	assert_source(&l, 0, "app.yaml: document 1");
	/* JSON numbers are taken as written: 1.0 stays a real */
	assert_json(json_array_get(l.objects, 0),
		    "{\"apiVersion\": \"v1\", \"kind\": \"Pod\", \"x\": 1.0, \"y\": \"80\"}");
	assert_true(json_is_real(json_object_get(json_array_get(l.objects, 0), "x")));
	loaded_free(&l);

	/* several objects one after another, as kubectl reads them */
	load_ok(&l, "{\"apiVersion\": \"v1\", \"kind\": \"Pod\"}\n"
		    "{\"apiVersion\": \"v1\", \"kind\": \"Namespace\"}\n", 2);
	assert_source(&l, 1, "app.yaml: document 2");
	loaded_free(&l);

	/* JSON documents separated by --- are YAML, and read as such */
	load_ok(&l, "{\"apiVersion\": \"v1\", \"kind\": \"Pod\"}\n---\n"
		    "{apiVersion: v1, kind: Namespace}\n", 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(l.objects, 1),
							      "kind")), "Namespace");
	loaded_free(&l);

	/* broken JSON: the JSON parser's error, with the position */
	load_fails("{\"apiVersion\": \"v1\",\n \"kind\": \"Pod\",\n \"x\": [1,}\n",
		   "app.yaml: document 1, line 3 column", "unexpected token", NULL);
	load_fails("{\"apiVersion\": \"v1\", \"kind\": \"Pod\"}\n{\"a\": 1, \"a\": 2}\n",
		   "document 2, line 2", "a: duplicate field; each key may appear once", NULL);
	/* nested: the field's path, as validation (lib/kschema.h) names fields */
	load_fails("{\"apiVersion\": \"v1\", \"kind\": \"Pod\"}\n"
		   "{\"spec\": {\"x\\\"y\": 1, \"containers\": [{}, {\"ports\": [], \"ports\": 1}]}}\n",
		   "app.yaml: document 2, line 2 column ",
		   ": spec.containers[1].ports: duplicate field; each key may appear once", NULL);
	/* a JSON array is not an object */
	load_fails("[{\"apiVersion\": \"v1\", \"kind\": \"Pod\"}]",
		   "app.yaml: document 1 (line 1) is a list, not a mapping", NULL);
}

static void test_lists(void **state)
{
	struct loaded l;

	(void)state;
	load_ok(&l,
		OBJ "---\n"
		"apiVersion: v1\nkind: List\nitems:\n"
		"- {apiVersion: v1, kind: Namespace, metadata: {name: a}}\n"
		"- apiVersion: v1\n  kind: Namespace\n  metadata: {name: b}\n"
		"---\n"
		"apiVersion: v1\nkind: List\nitems: []\n"
		"---\n"
		"apiVersion: v1\nkind: List\n",
		3);
	assert_source(&l, 0, "app.yaml: document 1");
	assert_source(&l, 1, "app.yaml: document 2, item 1");
	assert_source(&l, 2, "app.yaml: document 2, item 2");
	assert_json(json_object_get(json_array_get(l.objects, 2), "metadata"), "{\"name\": \"b\"}");
	loaded_free(&l);

	load_ok(&l,
		"{\"apiVersion\": \"v1\", \"kind\": \"List\", \"items\": ["
		"{\"apiVersion\": \"v1\", \"kind\": \"Pod\"},"
		"{\"apiVersion\": \"v1\", \"kind\": \"Namespace\"}]}",
		2);
	assert_source(&l, 0, "app.yaml: document 1, item 1");
	assert_source(&l, 1, "app.yaml: document 1, item 2");
	loaded_free(&l);

	load_fails("apiVersion: v1\nkind: List\nitems:\n- " "{apiVersion: v1, kind: Pod}\n- {kind: Pod}\n",
		   "app.yaml: document 1, item 2 has no apiVersion", NULL);
	load_fails("apiVersion: v1\nkind: List\nitems:\n- [1]\n",
		   "document 1, item 1 is a list, not a mapping", NULL);
	load_fails("apiVersion: v1\nkind: List\nitems: {a: 1}\n", "items is a mapping", NULL);
	load_fails("apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: List}\n",
		   "item 1 is itself a List", NULL);
}

static void test_scalar_typing(void **state)
{
	struct loaded l;
	const json_t *s;

	(void)state;
	load_ok(&l, OBJ
		"spec:\n"
		"  port: 80\n"
		"  quoted: \"80\"\n"
		"  single: '80'\n"
		"  name: http\n"
		"  neg: -3\n"
		"  plus: +3\n"
		"  hex: 0x1F\n"
		"  octal: 017\n"
		"  octal2: 0o17\n"
		"  binary: 0b101\n"
		"  under: 1_000\n"
		"  notoctal: 08\n"
		"  max: 9223372036854775807\n"
		"  real: 1.5\n"
		"  dotreal: .5\n"
		"  intreal: 80.0\n"
		"  exp: 1e3\n"
		"  t: [true, True, TRUE, yes, Yes, on, ON, y, Y]\n"
		"  f: [false, False, no, NO, off, n, N]\n"
		"  nulls: [null, Null, ~, NULL]\n"
		"  empty:\n"
		"  qtrue: 'true'\n"
		"  qnull: \"null\"\n"
		"  emptystr: \"\"\n"
		"  strs: [10.0.0.0/8, 1.2.3, 2024-01-01, TCP, 0x, '-', nope, Yess, 12:30]\n"
		"  block: |\n    line one\n    80\n"
		"  folded: >\n    a\n    b\n"
		"  tagged: [!!str 80, !!str true, !!int \"81\", !!float \"2.5\", !!bool \"yes\","
		" !!null \"\", ! 5]\n",
		1);
	s = spec(&l, 0);
	assert_json(s,
		    "{\"port\": 80, \"quoted\": \"80\", \"single\": \"80\", \"name\": \"http\","
		    " \"neg\": -3, \"plus\": 3, \"hex\": 31, \"octal\": 15, \"octal2\": 15,"
		    " \"binary\": 5, \"under\": 1000, \"notoctal\": 8,"
		    " \"max\": 9223372036854775807, \"real\": 1.5, \"dotreal\": 0.5,"
		    " \"intreal\": 80, \"exp\": 1000,"
		    " \"t\": [true, true, true, true, true, true, true, true, true],"
		    " \"f\": [false, false, false, false, false, false, false],"
		    " \"nulls\": [null, null, null, null], \"empty\": null,"
		    " \"qtrue\": \"true\", \"qnull\": \"null\", \"emptystr\": \"\","
		    " \"strs\": [\"10.0.0.0/8\", \"1.2.3\", \"2024-01-01\", \"TCP\", \"0x\", \"-\","
		    "  \"nope\", \"Yess\", \"12:30\"],"
		    " \"block\": \"line one\\n80\\n\", \"folded\": \"a b\\n\","
		    " \"tagged\": [\"80\", \"true\", 81, 2.5, true, null, \"5\"]}");
	assert_true(json_is_integer(json_object_get(s, "port")));
	assert_true(json_is_string(json_object_get(s, "quoted")));
	assert_true(json_is_real(json_object_get(s, "real")));
	/* integral floats are integers, as Kubernetes sees them after json.Marshal */
	assert_true(json_is_integer(json_object_get(s, "intreal")));
	loaded_free(&l);

	load_fails(OBJ "spec: {port: .inf}\n", "app.yaml: document 1, line 3 column 14: .inf",
		   "quote it", NULL);
	load_fails(OBJ "spec: {n: 99999999999999999999}\n", "does not fit in a 64-bit integer",
		   NULL);
	load_fails(OBJ "spec: {n: -0x8000000000000001}\n", "does not fit", NULL);
	load_fails(OBJ "spec: {n: !!int abc}\n", "\"abc\" is not a valid !!int", NULL);
	load_fails(OBJ "spec: {n: !Ref abc}\n", "unsupported tag !Ref", NULL);
	load_fails(OBJ "spec: {n: !!binary aGk=}\n", "unsupported tag !!binary", NULL);
	load_fails(OBJ "spec: {n: \"a\\0b\"}\n", "NUL character", NULL);
}

static void test_nested(void **state)
{
	struct loaded l;

	(void)state;
	load_ok(&l, OBJ
		"spec:\n"
		"  ingress:\n"
		"  - from:\n"
		"    - podSelector:\n"
		"        matchLabels: {app: web}\n"
		"      namespaceSelector:\n"
		"        matchExpressions:\n"
		"        - {key: team, operator: In, values: [a, b]}\n"
		"    - ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}\n"
		"    ports:\n"
		"    - port: 80\n"
		"      protocol: TCP\n"
		"    - {port: http, endPort: 90}\n"
		"  matrix: [[1, [2, []]], {}]\n",
		1);
	assert_json(spec(&l, 0),
		    "{\"ingress\": [{\"from\": ["
		    "{\"podSelector\": {\"matchLabels\": {\"app\": \"web\"}},"
		    " \"namespaceSelector\": {\"matchExpressions\": [{\"key\": \"team\","
		    " \"operator\": \"In\", \"values\": [\"a\", \"b\"]}]}},"
		    "{\"ipBlock\": {\"cidr\": \"10.0.0.0/8\", \"except\": [\"10.1.0.0/16\"]}}],"
		    " \"ports\": [{\"port\": 80, \"protocol\": \"TCP\"},"
		    " {\"port\": \"http\", \"endPort\": 90}]}],"
		    " \"matrix\": [[1, [2, []]], {}]}");
	loaded_free(&l);

	/* too deep */
	{
		char *deep = malloc(OBJ_SIZE_DEEP);

		assert_non_null(deep);
		strcpy(deep, OBJ "spec: ");
		for (unsigned i = 0; i <= MANIFEST_MAX_DEPTH; i++)
			strcat(deep, "[");
		load_fails(deep, "nested deeper than", NULL);
		free(deep);
	}
}

static void test_keys(void **state)
{
	struct loaded l;

	(void)state;
	/* keys YAML types become their JSON text, like sigs.k8s.io/yaml */
	load_ok(&l, OBJ "spec: {on: a, 0x10: b, 1.50: c, \"yes\": d, 7: e, false: f}\n", 1);
	assert_json(spec(&l, 0),
		    "{\"true\": \"a\", \"16\": \"b\", \"1.5\": \"c\", \"yes\": \"d\", \"7\": \"e\","
		    " \"false\": \"f\"}");
	loaded_free(&l);

	load_fails(OBJ "spec:\n  ~: a\n", "line 4 column 3: a mapping key is null", NULL);
	load_fails(OBJ "spec:\n  ? [a, b]\n  : c\n", "line 4 column 5: a mapping key is a list",
		   NULL);
	load_fails(OBJ "spec:\n  ? {a: b}\n  : c\n", "a mapping key is a mapping", NULL);
	load_fails(OBJ "spec:\n  a: 1\n  b: 2\n  a: 3\n",
		   "app.yaml: document 1, line 6 column 3: spec.a: duplicate field; each key may "
		   "appear once in a mapping", NULL);
	load_fails(OBJ "spec:\n  l: [{a: 1}, {b: [x, {c: 1, c: 2}]}]\n",
		   "line 4 column 30: spec.l[1].b[1].c: duplicate field", NULL);
	/* 80 and "80" are the same JSON key */
	load_fails(OBJ "spec: {80: a, \"80\": b}\n", "spec.80: duplicate field", NULL);
}

static void test_anchors(void **state)
{
	struct loaded l;

	(void)state;
	load_ok(&l, OBJ
		"metadata:\n"
		"  labels: &labels {app: web, tier: front}\n"
		"spec:\n"
		"  podSelector:\n"
		"    matchLabels: *labels\n"
		"  same: [&p 80, *p]\n"
		"  base: &base {a: 1, b: 2}\n"
		"  other: &other {b: 20, c: 30}\n"
		"  merged:\n"
		"    a: 10\n"
		"    <<: [*base, *other, {d: 4}]\n"
		"  merged2:\n"
		"    <<: *base\n"
		"    b: 5\n"
		"  quoted: {\"<<\": x}\n",
		1);
	assert_json(json_array_get(l.objects, 0),
		    "{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\","
		    " \"metadata\": {\"labels\": {\"app\": \"web\", \"tier\": \"front\"}},"
		    " \"spec\": {\"podSelector\": {\"matchLabels\": {\"app\": \"web\", \"tier\": \"front\"}},"
		    " \"same\": [80, 80],"
		    " \"base\": {\"a\": 1, \"b\": 2}, \"other\": {\"b\": 20, \"c\": 30},"
		    " \"merged\": {\"a\": 10, \"b\": 2, \"c\": 30, \"d\": 4},"
		    " \"merged2\": {\"a\": 1, \"b\": 5},"
		    " \"quoted\": {\"<<\": \"x\"}}}");
	loaded_free(&l);

	/* anchors belong to their document */
	load_fails(OBJ "data: &d {a: 1}\n---\n" OBJ "data: *d\n",
		   "app.yaml: document 2, line 7 column 7: alias *d has no anchor &d", NULL);
	load_fails(OBJ "data: &d {a: [1, *d]}\n", "alias *d is inside the node it names", NULL);
	load_fails(OBJ "data: {<<: 5}\n", "<< (merge key) takes a mapping", NULL);
	load_fails(OBJ "data: {<<: [{a: 1}, 2]}\n", "item 2 is an integer", NULL);
	load_fails(OBJ "data: {<<: {a: 1}, <<: {b: 2}}\n", "<< appears twice", NULL);
	/* a billion laughs stops at the expansion budget */
	load_fails(OBJ
		   "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
		   "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
		   "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
		   "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
		   "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
		   "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
		   "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n",
		   "aliases expand to more than", NULL);
}

static void test_document_errors(void **state)
{
	(void)state;
	load_fails(OBJ "---\n"
		   "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  x: b: c\n",
		   "app.yaml: document 2, line 8 column 7: mapping values are not allowed", NULL);
	load_fails(OBJ "---\n- a\n- b\n",
		   "app.yaml: document 2 (line 4) is a list, not a mapping", NULL);
	load_fails(OBJ "---\njust text\n", "document 2 (line 4) is a string", NULL);
	load_fails(OBJ "---\napiVersion: v1\nmetadata: {name: a}\n",
		   "app.yaml: document 2 (line 4) has no kind", "apiVersion and kind", NULL);
	load_fails("kind: Pod\n", "document 1 (line 1) has no apiVersion", NULL);
	load_fails("apiVersion: v1\nkind: 5\n", "kind is an integer, it must be a string", NULL);
	load_fails("apiVersion: \"\"\nkind: Pod\n", "apiVersion is empty", NULL);
	load_fails("apiVersion: v1\nkind: ~\n", "has no kind", NULL);
	/* the scanner's context is quoted too */
	load_fails(OBJ "data:\n  a: \"unterminated\n", "document 1, line",
		   "found unexpected end of stream", "while scanning a quoted scalar at line 4",
		   NULL);
	load_fails(OBJ "data: [a, b\n", "document 1, line 4 column 1", NULL);
	load_fails(OBJ "\t- x\n", "document 1, line 3", NULL);
	load_fails(OBJ "data: \xff\n", "app.yaml: line 3 column 7: invalid leading UTF-8 octet (byte 0xFF)", NULL);
}

static void test_files(void **state)
{
	char path[] = "/tmp/sluice-manifest-XXXXXX", err[512];
	const char *text = OBJ "---\n" OBJ;
	json_t *objects = NULL, *sources = NULL;
	int fd, saved;

	(void)state;
	assert_int_equal(manifest_read("/nonexistent/app.yaml", &objects, &sources, err,
				       sizeof(err)), -ENOENT);
	assert_null(objects);
	assert_null(sources);
	assert_string_equal(err, "/nonexistent/app.yaml: cannot open: No such file or directory");
	assert_int_equal(manifest_read("/tmp", &objects, &sources, err, sizeof(err)), -EISDIR);
	assert_non_null(strstr(err, "/tmp: is a directory"));

	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(manifest_read(path, &objects, &sources, err, sizeof(err)), 0);
	assert_int_equal(json_array_size(objects), 2);
	assert_non_null(strstr(json_string_value(json_array_get(sources, 1)), ": document 2"));
	assert_int_equal(strncmp(json_string_value(json_array_get(sources, 1)), path,
				 strlen(path)), 0);
	json_decref(objects);
	json_decref(sources);

	/* "-" reads standard input */
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	saved = dup(STDIN_FILENO);
	assert_true(saved >= 0);
	assert_int_equal(dup2(fd, STDIN_FILENO), STDIN_FILENO);
	assert_int_equal(manifest_read("-", &objects, &sources, err, sizeof(err)), 0);
	assert_int_equal(dup2(saved, STDIN_FILENO), STDIN_FILENO);
	close(saved);
	assert_int_equal(json_array_size(objects), 2);
	assert_string_equal(json_string_value(json_array_get(sources, 0)), "<stdin>: document 1");
	json_decref(objects);
	json_decref(sources);

	close(fd);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_multi_document),
		cmocka_unit_test(test_empty_documents),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_lists),
		cmocka_unit_test(test_scalar_typing),
		cmocka_unit_test(test_nested),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_anchors),
		cmocka_unit_test(test_document_errors),
		cmocka_unit_test(test_files),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
