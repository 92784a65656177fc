// SPDX-License-Identifier: Apache-2.0
/*
 * Manifest reading: YAML through libyaml's event API, JSON through jansson,
 * into Kubernetes objects. The YAML typing rules (go-yaml v2, as kubectl
 * applies them) are described in manifest.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "manifest.h"

#define YAML_TAG(t) "tag:yaml.org,2002:" t

/* Where complete objects go, with the label that names the input. */
struct sink {
	const char *label;
	json_t *objects;
	json_t *sources;
};

const char *manifest_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "a mapping";
	case JSON_ARRAY: return "a list";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	default: return "null";
	}
}

static int nomem(char *err, size_t errlen, const char *label)
{
	snprintf(err, errlen, "%s: out of memory", label);
	return -ENOMEM;
}

static int sink_add(struct sink *s, json_t *obj, char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static int sink_add(struct sink *s, json_t *obj, char *err, size_t errlen, const char *fmt, ...)
{
	json_t *src;
	char *text;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&text, fmt, ap);
	va_end(ap);
	if (n < 0)
		return nomem(err, errlen, s->label);
	src = json_string(text);
	free(text);
	if (!src || json_array_append_new(s->sources, src) ||
	    json_array_append(s->objects, obj)) {
		/* keep the two arrays the same length whatever failed */
		if (json_array_size(s->sources) > json_array_size(s->objects))
			json_array_remove(s->sources, json_array_size(s->sources) - 1);
		return nomem(err, errlen, s->label);
	}
	return 0;
}

/* An object kubectl would accept: a mapping with non-empty string
 * apiVersion and kind. where names it ("app.yaml: document 2 (line 5)"). */
static int check_object(const json_t *obj, const char *where, char *err, size_t errlen)
{
	static const char *const fields[] = { "apiVersion", "kind" };
	size_t i;

	if (!json_is_object(obj)) {
		snprintf(err, errlen,
			 "%s is %s, not a mapping: each document must be one Kubernetes object "
			 "(with apiVersion and kind), or a kind: List of them", where,
			 manifest_type_name(obj));
		return -EINVAL;
	}
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		const json_t *v = json_object_get(obj, fields[i]);

		if (!v || json_is_null(v)) {
			snprintf(err, errlen,
				 "%s has no %s: every object needs apiVersion and kind strings "
				 "(for example apiVersion: v1 and kind: Namespace)", where, fields[i]);
			return -EINVAL;
		}
		if (!json_is_string(v)) {
			snprintf(err, errlen, "%s: %s is %s, it must be a string", where, fields[i],
				 manifest_type_name(v));
			return -EINVAL;
		}
		if (!json_string_length(v)) {
			snprintf(err, errlen, "%s: %s is empty", where, fields[i]);
			return -EINVAL;
		}
	}
	return 0;
}

/* One whole document (root may be NULL or null: an empty document). */
static int add_document(struct sink *s, unsigned doc, size_t line, json_t *root, char *err,
			size_t errlen)
{
	const json_t *items, *item;
	char where[PATH_MAX + 96];
	size_t i;
	int ret;

	if (!root || json_is_null(root))
		return 0;
	snprintf(where, sizeof(where), "%s: document %u (line %zu)", s->label, doc, line);
	ret = check_object(root, where, err, errlen);
	if (ret)
		return ret;
	if (strcmp(json_string_value(json_object_get(root, "kind")), "List"))
		return sink_add(s, root, err, errlen, "%s: document %u", s->label, doc);

	items = json_object_get(root, "items");
	if (!items || json_is_null(items))
		return 0;
	if (!json_is_array(items)) {
		snprintf(err, errlen, "%s: items is %s; a List's items must be a list of objects",
			 where, manifest_type_name(items));
		return -EINVAL;
	}
	json_array_foreach(items, i, item) {
		snprintf(where, sizeof(where), "%s: document %u, item %zu", s->label, doc, i + 1);
		ret = check_object(item, where, err, errlen);
		if (ret)
			return ret;
		if (!strcmp(json_string_value(json_object_get(item, "kind")), "List")) {
			snprintf(err, errlen,
				 "%s is itself a List: put its objects in the outer List's items",
				 where);
			return -EINVAL;
		}
		ret = sink_add(s, (json_t *)item, err, errlen, "%s: document %u, item %zu",
			       s->label, doc, i + 1);
		if (ret)
			return ret;
	}
	return 0;
}

static void advance(const char *buf, size_t pos, size_t end, size_t *line, size_t *col);

/* ---- YAML scalars ------------------------------------------------------ */

enum plain_type { PLAIN_STR = 0, PLAIN_NULL, PLAIN_BOOL, PLAIN_INT, PLAIN_FLOAT };

struct plain {
	enum plain_type type;
	bool b;
	long long i;
	double f;
};

static bool in_list(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (!strcmp(s, *list))
			return true;
	return false;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?, go-yaml's float syntax */
static bool is_yaml_float(const char *p)
{
	if (*p == '+' || *p == '-')
		p++;
	if (*p == '.') {
		if (!is_digit(*++p))
			return false;
		while (is_digit(*p))
			p++;
	} else {
		if (!is_digit(*p))
			return false;
		while (is_digit(*p))
			p++;
		if (*p == '.')
			for (p++; is_digit(*p); p++)
				;
	}
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (!is_digit(*p))
			return false;
		while (is_digit(*p))
			p++;
	}
	return !*p;
}

/*
 * An integer the way Go's strconv.ParseInt(s, 0, 64) reads it: optional
 * sign, then 0x/0o/0b prefixes, a leading 0 for octal, else decimal.
 * Returns 1 with *out, 0 when s is not an integer, -ERANGE when it is one
 * but does not fit in 64 bits.
 */
static int parse_go_int(const char *s, long long *out)
{
	unsigned long long v = 0, limit;
	bool neg = false, over = false;
	unsigned base = 10;

	if (*s == '+' || *s == '-')
		neg = *s++ == '-';
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		base = 16, s += 2;
	else if (s[0] == '0' && (s[1] == 'o' || s[1] == 'O'))
		base = 8, s += 2;
	else if (s[0] == '0' && (s[1] == 'b' || s[1] == 'B'))
		base = 2, s += 2;
	else if (s[0] == '0' && s[1])
		base = 8, s += 1;
	if (!*s)
		return 0;
	for (; *s; s++) {
		unsigned d;

		if (is_digit(*s))
			d = (unsigned)(*s - '0');
		else if (*s >= 'a' && *s <= 'f')
			d = (unsigned)(*s - 'a' + 10);
		else if (*s >= 'A' && *s <= 'F')
			d = (unsigned)(*s - 'A' + 10);
		else
			return 0;
		if (d >= base)
			return 0;
		if (v > (ULLONG_MAX - d) / base)
			over = true;
		else
			v = v * base + d;
	}
	limit = neg ? (unsigned long long)LLONG_MAX + 1 : (unsigned long long)LLONG_MAX;
	if (over || v > limit)
		return -ERANGE;
	*out = neg ? (long long)(0 - v) : (long long)v;
	return 1;
}

/*
 * Type an untagged plain scalar as go-yaml v2 resolves it. Returns 0, or
 * -ERANGE for a value JSON cannot hold (.inf, .nan, integers beyond 64
 * bits) with *why set, or -ENOMEM.
 */
static int resolve_plain(const char *s, size_t n, struct plain *out, const char **why)
{
	static const char *const nulls[] = { "~", "null", "Null", "NULL", NULL };
	static const char *const trues[] = { "y", "Y", "yes", "Yes", "YES", "true", "True",
					     "TRUE", "on", "On", "ON", NULL };
	static const char *const falses[] = { "n", "N", "no", "No", "NO", "false", "False",
					      "FALSE", "off", "Off", "OFF", NULL };
	static const char *const nonfinite[] = { ".inf", ".Inf", ".INF", "+.inf", "+.Inf",
						 "+.INF", "-.inf", "-.Inf", "-.INF", ".nan",
						 ".NaN", ".NAN", NULL };
	char *digits = NULL;
	size_t i, j;
	int ret = 0;

	memset(out, 0, sizeof(*out));
	if (!n || in_list(s, nulls)) {
		out->type = PLAIN_NULL;
		return 0;
	}
	if (in_list(s, trues) || in_list(s, falses)) {
		out->type = PLAIN_BOOL;
		out->b = in_list(s, trues);
		return 0;
	}
	if (in_list(s, nonfinite)) {
		*why = "is not a number JSON can hold";
		return -ERANGE;
	}
	if (s[0] == '.') {
		/* go-yaml: strconv.ParseFloat on the text as written */
		if (is_yaml_float(s)) {
			out->type = PLAIN_FLOAT;
			out->f = strtod(s, NULL);
		}
		return 0;
	}
	if (!is_digit(s[0]) && s[0] != '+' && s[0] != '-')
		return 0;

	/* go-yaml drops every '_' before trying integers and floats */
	digits = malloc(n + 1);
	if (!digits)
		return -ENOMEM;
	for (i = j = 0; i < n; i++)
		if (s[i] != '_')
			digits[j++] = s[i];
	digits[j] = '\0';
	switch (parse_go_int(digits, &out->i)) {
	case 1:
		out->type = PLAIN_INT;
		goto cleanup;
	case -ERANGE:
		*why = "does not fit in a 64-bit integer";
		ret = -ERANGE;
		goto cleanup;
	}
	if (is_yaml_float(digits)) {
		double f = strtod(digits, NULL);

		/* Go's ParseFloat fails on overflow and go-yaml keeps the text */
		if (!isinf(f)) {
			out->type = PLAIN_FLOAT;
			out->f = f;
		}
	}
cleanup:
	free(digits);
	return ret;
}

/* A float with an integral value becomes an integer, as after Go's
 * json.Marshal; only where a double holds every integer exactly. */
static json_t *number_json(double f)
{
	if (f >= -9007199254740992.0 && f <= 9007199254740992.0 && (double)(long long)f == f)
		return json_integer((long long)f);
	return json_real(f);
}

static json_t *plain_json(const struct plain *p, const char *s, size_t n)
{
	switch (p->type) {
	case PLAIN_NULL: return json_null();
	case PLAIN_BOOL: return json_boolean(p->b);
	case PLAIN_INT: return json_integer(p->i);
	case PLAIN_FLOAT: return number_json(p->f);
	default: return json_stringn(s, n);
	}
}

/* ---- YAML documents ---------------------------------------------------- */

struct anchor {
	char *name;
	json_t *value;	/* NULL while its node is being built: an alias to it recurses */
	size_t nodes;	/* values in the anchored node, for the expansion budget */
};

/* A mapping or sequence being built. */
struct frame {
	json_t *node;
	json_t *merged;		/* mapping: keys brought in by <<, added at the end */
	char *key;		/* mapping: the key waiting for its value */
	bool merge;		/* mapping: the waiting key is << */
	bool had_merge;
	size_t anchor;		/* 1 + index in anchors; 0: none */
	size_t nodes;		/* values in this subtree so far */
	yaml_mark_t mark;
};

struct yaml_state {
	struct sink *sink;
	char *err;
	size_t errlen;
	unsigned doc;		/* current document, 1-based */
	bool in_doc;
	size_t doc_line;	/* line of the document's root node */
	json_t *root;
	struct frame *stack;
	size_t depth, stack_cap;
	struct anchor *anchors;
	size_t nanchors, anchors_cap;
	size_t alias_nodes;	/* values aliases brought in, in the whole stream */
};

static int fail_at(struct yaml_state *st, const yaml_mark_t *m, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail_at(struct yaml_state *st, const yaml_mark_t *m, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(st->err, st->errlen, "%s: document %u, line %zu column %zu: ",
		     st->sink->label, st->doc, m->line + 1, m->column + 1);
	if (n >= 0 && (size_t)n < st->errlen) {
		va_start(ap, fmt);
		vsnprintf(st->err + n, st->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static int fail_nomem(struct yaml_state *st)
{
	return nomem(st->err, st->errlen, st->sink->label);
}

static void anchors_clear(struct yaml_state *st)
{
	size_t i;

	for (i = 0; i < st->nanchors; i++) {
		free(st->anchors[i].name);
		json_decref(st->anchors[i].value);
	}
	st->nanchors = 0;
}

static void yaml_state_free(struct yaml_state *st)
{
	size_t i;

	for (i = 0; i < st->depth; i++) {
		json_decref(st->stack[i].node);
		json_decref(st->stack[i].merged);
		free(st->stack[i].key);
	}
	free(st->stack);
	anchors_clear(st);
	free(st->anchors);
	json_decref(st->root);
}

/* Record anchor name for value (NULL: still being built). *idx: its slot. */
static int anchor_add(struct yaml_state *st, const char *name, json_t *value, size_t nodes,
		      size_t *idx)
{
	struct anchor *a;

	if (st->nanchors == st->anchors_cap) {
		size_t cap = st->anchors_cap ? 2 * st->anchors_cap : 8;

		a = reallocarray(st->anchors, cap, sizeof(*a));
		if (!a)
			return fail_nomem(st);
		st->anchors = a;
		st->anchors_cap = cap;
	}
	a = &st->anchors[st->nanchors];
	a->name = strdup(name);
	if (!a->name)
		return fail_nomem(st);
	a->value = json_incref(value);
	a->nodes = nodes;
	if (idx)
		*idx = st->nanchors;
	st->nanchors++;
	return 0;
}

/* The latest definition wins: YAML lets a document reuse an anchor name. */
static const struct anchor *anchor_find(const struct yaml_state *st, const char *name)
{
	size_t i;

	for (i = st->nanchors; i-- > 0;)
		if (!strcmp(st->anchors[i].name, name))
			return &st->anchors[i];
	return NULL;
}

/* Aliases copy what they name: a few lines can expand exponentially
 * ("billion laughs"). The values they bring in are counted here; values
 * written out are bounded by MANIFEST_MAX_BYTES. */
static int alias_budget(struct yaml_state *st, size_t nodes, const yaml_mark_t *m)
{
	if (nodes > MANIFEST_MAX_NODES || st->alias_nodes + nodes > MANIFEST_MAX_NODES)
		return fail_at(st, m,
			       "aliases expand to more than %u values; write the values out or "
			       "use fewer aliases", MANIFEST_MAX_NODES);
	st->alias_nodes += nodes;
	return 0;
}

static struct frame *top(struct yaml_state *st)
{
	return st->depth ? &st->stack[st->depth - 1] : NULL;
}

/* Is the next node of the current mapping a key? */
static bool wants_key(struct yaml_state *st)
{
	struct frame *f = top(st);

	return f && json_is_object(f->node) && !f->key && !f->merge;
}

/* The JSON text of a key, like sigs.k8s.io/yaml: strings as they are,
 * numbers and booleans as JSON writes them, null refused. */
static int key_text(struct yaml_state *st, const json_t *v, const yaml_mark_t *m, char **out)
{
	char buf[64];
	int p;

	switch (json_typeof(v)) {
	case JSON_STRING:
		if (strlen(json_string_value(v)) != json_string_length(v))
			return fail_at(st, m, "a mapping key contains a NUL character");
		*out = strdup(json_string_value(v));
		break;
	case JSON_INTEGER:
		snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
		*out = strdup(buf);
		break;
	case JSON_REAL:
		for (p = 1; p <= 17; p++) {
			snprintf(buf, sizeof(buf), "%.*g", p, json_real_value(v));
			if (strtod(buf, NULL) == json_real_value(v))
				break;
		}
		*out = strdup(buf);
		break;
	case JSON_TRUE:
	case JSON_FALSE:
		*out = strdup(json_is_true(v) ? "true" : "false");
		break;
	case JSON_NULL:
		return fail_at(st, m,
			       "a mapping key is null (empty, ~ or null); JSON keys are strings: "
			       "quote it if it is text");
	default:
		return fail_at(st, m, "a mapping key is %s; keys must be scalars (strings)",
			       manifest_type_name(v));
	}
	return *out ? 0 : fail_nomem(st);
}

/* Append to buf (of len bytes, holding *n) what fmt says; the text is cut
 * at len - 1 bytes. */
static void path_add(char *buf, size_t len, size_t *n, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void path_add(char *buf, size_t len, size_t *n, const char *fmt, ...)
{
	va_list ap;
	int k;

	if (*n >= len - 1)
		return;
	va_start(ap, fmt);
	k = vsnprintf(buf + *n, len - *n, fmt, ap);
	va_end(ap);
	if (k > 0)
		*n = *n + (size_t)k < len - 1 ? *n + (size_t)k : len - 1;
}

/* The field path of key in the current mapping, as validation names
 * fields (lib/kschema.h): spec.ingress[0].ports. */
static void key_path(const struct yaml_state *st, const char *key, char *buf, size_t len)
{
	size_t n = 0, i;

	buf[0] = '\0';
	for (i = 0; i + 1 < st->depth; i++) {
		const struct frame *f = &st->stack[i];

		if (json_is_array(f->node))
			path_add(buf, len, &n, "[%zu]", json_array_size(f->node));
		else
			path_add(buf, len, &n, "%s%s", n ? "." : "",
				 f->merge ? "<<" : f->key ? f->key : "?");
	}
	path_add(buf, len, &n, "%s%s", n ? "." : "", key);
}

/* Take key (owned) as the current mapping's next key. */
static int set_key(struct yaml_state *st, char *key, bool merge, const yaml_mark_t *m)
{
	struct frame *f = top(st);

	if (merge) {
		free(key);
		if (f->had_merge)
			return fail_at(st, m,
				       "<< appears twice in this mapping; give one << with a list "
				       "(<<: [*a, *b])");
		f->had_merge = f->merge = true;
		return 0;
	}
	if (json_object_get(f->node, key)) {
		char path[512];

		key_path(st, key, path, sizeof(path));
		fail_at(st, m, "%s: duplicate field; each key may appear once in a mapping",
			path);
		free(key);
		return -EINVAL;
	}
	f->key = key;
	return 0;
}

/* << value: a mapping or a list of mappings; earlier ones win. */
static int merge_value(struct yaml_state *st, struct frame *f, const json_t *v,
		       const yaml_mark_t *m)
{
	const json_t *e;
	size_t i;

	if (!f->merged && !(f->merged = json_object()))
		return fail_nomem(st);
	if (json_is_object(v))
		return json_object_update_missing(f->merged, (json_t *)v) ? fail_nomem(st) : 0;
	if (!json_is_array(v))
		return fail_at(st, m,
			       "<< (merge key) takes a mapping or a list of mappings, as in "
			       "<<: *defaults, not %s", manifest_type_name(v));
	json_array_foreach(v, i, e) {
		if (!json_is_object(e))
			return fail_at(st, m,
				       "<< (merge key) takes a list of mappings; item %zu is %s",
				       i + 1, manifest_type_name(e));
		if (json_object_update_missing(f->merged, (json_t *)e))
			return fail_nomem(st);
	}
	return 0;
}

/* Put a finished value (owned) where it belongs. */
static int add_value(struct yaml_state *st, json_t *v, size_t nodes, const yaml_mark_t *m)
{
	struct frame *f = top(st);
	int ret;

	if (!f) {
		st->root = v;
		return 0;
	}
	f->nodes += nodes;
	if (json_is_array(f->node))
		return json_array_append_new(f->node, v) ? fail_nomem(st) : 0;
	if (f->merge) {
		f->merge = false;
		ret = merge_value(st, f, v, m);
		json_decref(v);
		return ret;
	}
	ret = json_object_set_new(f->node, f->key, v) ? fail_nomem(st) : 0;
	free(f->key);
	f->key = NULL;
	return ret;
}

static const char *short_tag(const char *tag)
{
	static const char prefix[] = YAML_TAG("");

	return strncmp(tag, prefix, sizeof(prefix) - 1) ? tag : tag + sizeof(prefix) - 1;
}

/* The JSON value of a scalar event (a new reference). */
static int scalar_value(struct yaml_state *st, const yaml_event_t *ev, json_t **out)
{
	const char *s = (const char *)ev->data.scalar.value;
	const char *tag = (const char *)ev->data.scalar.tag;
	size_t n = ev->data.scalar.length;
	const yaml_mark_t *m = &ev->start_mark;
	const char *why = "";
	struct plain p;
	int ret;

	if (memchr(s, '\0', n))
		return fail_at(st, m, "the value contains a NUL character; it cannot be a string");
	if (!tag && ev->data.scalar.plain_implicit) {
		ret = resolve_plain(s, n, &p, &why);
	} else if (!tag || !strcmp(tag, "!") || !strcmp(tag, YAML_TAG("str")) ||
		   !strcmp(tag, YAML_TAG("timestamp"))) {
		p.type = PLAIN_STR;
		ret = 0;
	} else if (!strcmp(tag, YAML_TAG("null")) || !strcmp(tag, YAML_TAG("bool")) ||
		   !strcmp(tag, YAML_TAG("int")) || !strcmp(tag, YAML_TAG("float"))) {
		static const char *const names[] = {
			[PLAIN_NULL] = "null", [PLAIN_BOOL] = "bool", [PLAIN_INT] = "int",
			[PLAIN_FLOAT] = "float",
		};

		ret = resolve_plain(s, n, &p, &why);
		if (!ret && p.type == PLAIN_INT && !strcmp(tag, YAML_TAG("float"))) {
			p.type = PLAIN_FLOAT;
			p.f = (double)p.i;
		}
		if (!ret && (p.type == PLAIN_STR || strcmp(short_tag(tag), names[p.type])))
			return fail_at(st, m, "\"%s\" is not a valid !!%s", s, short_tag(tag));
	} else {
		return fail_at(st, m,
			       "unsupported tag %s%s: manifests take plain values (or !!str, "
			       "!!int, !!float, !!bool, !!null)",
			       strcmp(short_tag(tag), tag) ? "!!" : "", short_tag(tag));
	}
	if (ret == -ENOMEM)
		return fail_nomem(st);
	if (ret)
		return fail_at(st, m, "%s %s: quote it if it is text", s, why);
	*out = plain_json(&p, s, n);
	if (!*out)
		return fail_at(st, m, "the value is not valid UTF-8");
	return 0;
}

static int on_scalar(struct yaml_state *st, const yaml_event_t *ev)
{
	const char *anchor = (const char *)ev->data.scalar.anchor;
	json_t *v = NULL;
	char *key = NULL;
	int ret;

	ret = scalar_value(st, ev, &v);
	if (ret)
		return ret;
	if (anchor) {
		ret = anchor_add(st, anchor, v, 1, NULL);
		if (ret)
			goto cleanup;
	}
	if (!wants_key(st)) {
		ret = add_value(st, v, 1, &ev->start_mark);
		v = NULL;
		goto cleanup;
	}
	if (!ev->data.scalar.tag && ev->data.scalar.plain_implicit &&
	    !strcmp((const char *)ev->data.scalar.value, "<<")) {
		ret = set_key(st, NULL, true, &ev->start_mark);
		goto cleanup;
	}
	ret = key_text(st, v, &ev->start_mark, &key);
	if (!ret)
		ret = set_key(st, key, false, &ev->start_mark);
cleanup:
	json_decref(v);
	return ret;
}

static int on_alias(struct yaml_state *st, const yaml_event_t *ev)
{
	const char *name = (const char *)ev->data.alias.anchor;
	const struct anchor *a = anchor_find(st, name);
	json_t *v;
	char *key = NULL;
	int ret;

	if (!a)
		return fail_at(st, &ev->start_mark,
			       "alias *%s has no anchor &%s before it in this document", name,
			       name);
	if (!a->value)
		return fail_at(st, &ev->start_mark,
			       "alias *%s is inside the node it names; recursive data has no JSON "
			       "form", name);
	ret = alias_budget(st, a->nodes, &ev->start_mark);
	if (ret)
		return ret;
	v = json_deep_copy(a->value);
	if (!v)
		return fail_nomem(st);
	if (!wants_key(st))
		return add_value(st, v, a->nodes, &ev->start_mark);
	ret = key_text(st, v, &ev->start_mark, &key);
	json_decref(v);
	return ret ? ret : set_key(st, key, false, &ev->start_mark);
}

static int on_start(struct yaml_state *st, const yaml_event_t *ev)
{
	bool map = ev->type == YAML_MAPPING_START_EVENT;
	const char *anchor = (const char *)(map ? ev->data.mapping_start.anchor
						: ev->data.sequence_start.anchor);
	const char *tag = (const char *)(map ? ev->data.mapping_start.tag
					     : ev->data.sequence_start.tag);
	struct frame *f;
	int ret;

	if (wants_key(st))
		return fail_at(st, &ev->start_mark,
			       "a mapping key is %s; keys must be scalars (strings)",
			       map ? "a mapping" : "a list");
	if (tag && strcmp(tag, "!") && strcmp(tag, map ? YAML_TAG("map") : YAML_TAG("seq")))
		return fail_at(st, &ev->start_mark, "unsupported tag %s on a %s", tag,
			       map ? "mapping" : "list");
	if (st->depth >= MANIFEST_MAX_DEPTH)
		return fail_at(st, &ev->start_mark, "nested deeper than %u levels",
			       MANIFEST_MAX_DEPTH);
	if (st->depth == st->stack_cap) {
		size_t cap = st->stack_cap ? 2 * st->stack_cap : 16;

		f = reallocarray(st->stack, cap, sizeof(*f));
		if (!f)
			return fail_nomem(st);
		st->stack = f;
		st->stack_cap = cap;
	}
	f = &st->stack[st->depth];
	memset(f, 0, sizeof(*f));
	f->node = map ? json_object() : json_array();
	if (!f->node)
		return fail_nomem(st);
	f->nodes = 1;
	f->mark = ev->start_mark;
	st->depth++;
	if (anchor) {
		size_t idx;

		ret = anchor_add(st, anchor, NULL, 0, &idx);
		if (ret)
			return ret;
		f->anchor = idx + 1;
	}
	return 0;
}

static int on_end(struct yaml_state *st)
{
	struct frame f = st->stack[--st->depth];

	/* keys written in the mapping win over merged ones */
	if (f.merged && json_object_update_missing(f.node, f.merged)) {
		json_decref(f.node);
		json_decref(f.merged);
		return fail_nomem(st);
	}
	json_decref(f.merged);
	if (f.anchor) {
		st->anchors[f.anchor - 1].value = json_incref(f.node);
		st->anchors[f.anchor - 1].nodes = f.nodes;
	}
	return add_value(st, f.node, f.nodes, &f.mark);
}

static int on_event(struct yaml_state *st, const yaml_event_t *ev)
{
	json_t *root;
	int ret;

	if (!st->depth && (ev->type == YAML_SCALAR_EVENT || ev->type == YAML_ALIAS_EVENT ||
			   ev->type == YAML_SEQUENCE_START_EVENT ||
			   ev->type == YAML_MAPPING_START_EVENT))
		st->doc_line = ev->start_mark.line + 1;
	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		st->doc++;
		st->in_doc = true;
		return 0;
	case YAML_DOCUMENT_END_EVENT:
		st->in_doc = false;
		anchors_clear(st);
		root = st->root;
		st->root = NULL;
		ret = add_document(st->sink, st->doc, st->doc_line, root, st->err, st->errlen);
		json_decref(root);
		return ret;
	case YAML_SCALAR_EVENT:
		return on_scalar(st, ev);
	case YAML_ALIAS_EVENT:
		return on_alias(st, ev);
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT:
		return on_start(st, ev);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		return on_end(st);
	default:
		return 0;
	}
}

static int parser_error(struct yaml_state *st, const yaml_parser_t *p, const char *buf,
			size_t len)
{
	/* between documents the trouble belongs to the next one */
	unsigned doc = st->in_doc ? st->doc : st->doc + 1;
	const char *label = st->sink->label;
	const char *problem = p->problem ? p->problem : "invalid YAML";
	int n;

	switch (p->error) {
	case YAML_MEMORY_ERROR:
		return fail_nomem(st);
	case YAML_READER_ERROR: {
		/* The reader knows the byte offset only, and decodes ahead of the
		 * parser: the document being parsed need not be the one at fault. */
		size_t line = 1, col = 1;

		advance(buf, 0, p->problem_offset < len ? p->problem_offset : len, &line, &col);
		n = snprintf(st->err, st->errlen, "%s: line %zu column %zu: %s", label, line, col,
			     problem);
		if (p->problem_value != -1 && n >= 0 && (size_t)n < st->errlen)
			snprintf(st->err + n, st->errlen - (size_t)n, " (byte 0x%X)",
				 (unsigned)p->problem_value);
		return -EINVAL;
	}
	case YAML_SCANNER_ERROR:
	case YAML_PARSER_ERROR:
		n = snprintf(st->err, st->errlen, "%s: document %u, line %zu column %zu: %s", label,
			     doc, p->problem_mark.line + 1, p->problem_mark.column + 1, problem);
		if (p->context && n >= 0 && (size_t)n < st->errlen)
			snprintf(st->err + n, st->errlen - (size_t)n, " (%s at line %zu column %zu)",
				 p->context, p->context_mark.line + 1, p->context_mark.column + 1);
		return -EINVAL;
	default:
		snprintf(st->err, st->errlen, "%s: document %u: %s", label, doc, problem);
		return -EINVAL;
	}
}

/* *syntax: the failure is the parser's, not the documents'. */
static int yaml_parse(struct sink *s, const char *buf, size_t len, char *err, size_t errlen,
		      bool *syntax)
{
	struct yaml_state st = { .sink = s, .err = err, .errlen = errlen };
	yaml_parser_t parser;
	yaml_event_t ev;
	bool done = false;
	int ret = 0;

	*syntax = false;
	if (!yaml_parser_initialize(&parser))
		return nomem(err, errlen, s->label);
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	while (!done) {
		if (!yaml_parser_parse(&parser, &ev)) {
			*syntax = true;
			ret = parser_error(&st, &parser, buf, len);
			goto cleanup;
		}
		done = ev.type == YAML_STREAM_END_EVENT;
		ret = on_event(&st, &ev);
		yaml_event_delete(&ev);
		if (ret)
			goto cleanup;
	}
cleanup:
	yaml_state_free(&st);
	yaml_parser_delete(&parser);
	return ret;
}

/* ---- JSON -------------------------------------------------------------- */

static size_t skip_bom(const char *buf, size_t len)
{
	return len >= 3 && !memcmp(buf, "\xEF\xBB\xBF", 3) ? 3 : 0;
}

/* Move from pos to end, keeping line and column (1-based) up to date. */
static void advance(const char *buf, size_t pos, size_t end, size_t *line, size_t *col)
{
	for (; pos < end; pos++) {
		if (buf[pos] == '\n')
			(*line)++, *col = 1;
		else if (((unsigned char)buf[pos] & 0xC0) != 0x80)
			(*col)++;
	}
}

static size_t skip_space(const char *buf, size_t len, size_t pos)
{
	while (pos < len && buf[pos] && strchr(" \t\r\n", buf[pos]))
		pos++;
	return pos;
}

static bool looks_like_json(const char *buf, size_t len)
{
	size_t pos = skip_space(buf, len, skip_bom(buf, len));

	return pos < len && (buf[pos] == '{' || buf[pos] == '[');
}

/* The field path of the key a JSON text stops at (len bytes at p end just
 * after a duplicate key jansson refused): spec.ingress[0].ports. Levels
 * past 64 are left out. */
static void json_key_path(const char *p, size_t len, char *buf, size_t buflen)
{
	enum { LEVELS = 64 };
	struct {
		bool obj;
		size_t idx;
		char key[128];
	} lv[LEVELS];
	size_t depth = 0, i = 0, n = 0, j, t;
	bool want_key = false;

	while (i < len) {
		char c = p[i];

		if (c == '"') {
			char tmp[sizeof(lv[0].key)];

			for (j = i + 1, t = 0; j < len && p[j] != '"'; j++) {
				if (p[j] == '\\' && j + 1 < len)
					j++;
				if (t < sizeof(tmp) - 1)
					tmp[t++] = p[j];
			}
			tmp[t] = '\0';
			if (want_key && depth && depth <= LEVELS && lv[depth - 1].obj)
				memcpy(lv[depth - 1].key, tmp, t + 1);
			want_key = false;
			i = j + 1;
			continue;
		}
		if (c == '{' || c == '[') {
			if (depth < LEVELS)
				lv[depth] = (typeof(lv[0])){ .obj = c == '{' };
			depth++;
			want_key = c == '{';
		} else if ((c == '}' || c == ']') && depth) {
			depth--;
		} else if (c == ',' && depth && depth <= LEVELS) {
			want_key = lv[depth - 1].obj;
			lv[depth - 1].idx += !lv[depth - 1].obj;
		}
		i++;
	}
	buf[0] = '\0';
	for (i = 0; i < depth && i < LEVELS; i++) {
		if (lv[i].obj)
			path_add(buf, buflen, &n, "%s%s", n ? "." : "", lv[i].key);
		else
			path_add(buf, buflen, &n, "[%zu]", lv[i].idx);
	}
}

/* One or more JSON texts one after the other, each a document. */
static int json_parse(struct sink *s, const char *buf, size_t len, char *err, size_t errlen,
		      bool *syntax)
{
	size_t pos = skip_bom(buf, len), line = 1, col = 1, next;
	unsigned doc = 0;
	json_error_t je;
	json_t *v;
	int ret;

	*syntax = false;
	for (;;) {
		next = skip_space(buf, len, pos);
		advance(buf, pos, next, &line, &col);
		pos = next;
		if (pos == len)
			return 0;
		doc++;
		v = json_loadb(buf + pos, len - pos, JSON_DISABLE_EOF_CHECK | JSON_REJECT_DUPLICATES,
			       &je);
		if (!v) {
			char what[400];

			*syntax = true;
			snprintf(what, sizeof(what), "%s", je.text);
			/* the message a duplicate key has in YAML (set_key) */
			if (json_error_code(&je) == json_error_duplicate_key) {
				char path[300];

				json_key_path(buf + pos, (size_t)je.position <= len - pos
							       ? (size_t)je.position : len - pos,
					      path, sizeof(path));
				snprintf(what, sizeof(what), "%s: duplicate field; each key may "
					 "appear once in a mapping", path);
			}
			snprintf(err, errlen, "%s: document %u, line %zu column %zu: %s", s->label, doc,
				 line + (size_t)(je.line > 0 ? je.line - 1 : 0),
				 je.line == 1 ? col + (size_t)(je.column > 0 ? je.column - 1 : 0)
					      : (size_t)(je.column > 0 ? je.column : 1),
				 what);
			return -EINVAL;
		}
		ret = add_document(s, doc, line, v, err, errlen);
		json_decref(v);
		if (ret)
			return ret;
		next = pos + (size_t)je.position;
		advance(buf, pos, next, &line, &col);
		pos = next;
	}
}

/* ---- entry points ------------------------------------------------------ */

int manifest_read_mem(const char *label, const char *buf, size_t len, json_t **objects,
		      json_t **sources, char *err, size_t errlen)
{
	struct sink s = { .label = label };
	char json_err[512];
	bool syntax = false;
	int ret;

	*objects = *sources = NULL;
	s.objects = json_array();
	s.sources = json_array();
	if (!s.objects || !s.sources) {
		ret = nomem(err, errlen, label);
		goto cleanup;
	}
	if (looks_like_json(buf, len)) {
		ret = json_parse(&s, buf, len, json_err, sizeof(json_err), &syntax);
		if (ret && !syntax)
			snprintf(err, errlen, "%s", json_err);
		if (!ret || !syntax)
			goto done;
		/* Not JSON after all? It may still be YAML (a flow mapping, or
		 * JSON documents separated by ---). If YAML fails too, the JSON
		 * parser's complaint is the one that fits what the file looks like. */
		json_array_clear(s.objects);
		json_array_clear(s.sources);
		ret = yaml_parse(&s, buf, len, err, errlen, &syntax);
		if (ret && syntax)
			snprintf(err, errlen, "%s", json_err);
	} else {
		ret = yaml_parse(&s, buf, len, err, errlen, &syntax);
	}
done:
	if (ret)
		goto cleanup;
	*objects = s.objects;
	*sources = s.sources;
	return 0;
cleanup:
	json_decref(s.objects);
	json_decref(s.sources);
	return ret;
}

int manifest_read(const char *path, json_t **objects, json_t **sources, char *err,
		  size_t errlen)
{
	bool is_stdin = !strcmp(path, "-");
	const char *label = is_stdin ? MANIFEST_STDIN_LABEL : path;
	size_t len = 0, cap = 0;
	char *buf = NULL, *nbuf;
	struct stat sb;
	ssize_t n;
	int fd, ret;

	*objects = *sources = NULL;
	fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "%s: cannot open: %s", label, strerror(errno));
		return ret;
	}
	if (!fstat(fd, &sb) && S_ISDIR(sb.st_mode)) {
		ret = -EISDIR;
		snprintf(err, errlen, "%s: is a directory; give the manifest files themselves",
			 label);
		goto cleanup;
	}
	for (;;) {
		if (len == cap) {
			cap = cap ? 2 * cap : 64 * 1024;
			if (cap > (size_t)MANIFEST_MAX_BYTES + 1)
				cap = (size_t)MANIFEST_MAX_BYTES + 1;
			if (len == cap) {
				ret = -EFBIG;
				snprintf(err, errlen, "%s: larger than %u MiB; split it into several "
					 "files", label, MANIFEST_MAX_BYTES >> 20);
				goto cleanup;
			}
			nbuf = realloc(buf, cap);
			if (!nbuf) {
				ret = nomem(err, errlen, label);
				goto cleanup;
			}
			buf = nbuf;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			snprintf(err, errlen, "%s: cannot read: %s", label, strerror(errno));
			goto cleanup;
		}
		if (!n)
			break;
		len += (size_t)n;
	}
	ret = manifest_read_mem(label, buf ? buf : "", len, objects, sources, err, errlen);
cleanup:
	if (!is_stdin)
		close(fd);
	free(buf);
	return ret;
}
