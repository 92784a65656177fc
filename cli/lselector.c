// SPDX-License-Identifier: Apache-2.0
/* kubectl's label selector syntax for -l/--selector (lselector.h). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lselector.h"

struct lex {
	const char *s, *p;
	char *err;
	size_t errlen;
};

static void skip_space(struct lex *x)
{
	while (isspace((unsigned char)*x->p))
		x->p++;
}

static int fail(struct lex *x, const char *what)
{
	snprintf(x->err, x->errlen, "label selector '%s': at character %zu: %s", x->s,
		 (size_t)(x->p - x->s) + 1, what);
	return -EINVAL;
}

/* A key or value: anything up to space or one of the syntax's characters. */
static int word(struct lex *x, char **out, const char *what)
{
	const char *start;

	skip_space(x);
	start = x->p;
	while (*x->p && !isspace((unsigned char)*x->p) && !strchr("=!,()", *x->p))
		x->p++;
	if (x->p == start)
		return fail(x, what);
	*out = strndup(start, (size_t)(x->p - start));
	return *out ? 0 : -ENOMEM;
}

/* A value after = or !=: may be empty (k= selects an empty value). */
static int value(struct lex *x, char **out)
{
	const char *start;

	skip_space(x);
	start = x->p;
	while (*x->p && !isspace((unsigned char)*x->p) && !strchr("=!,()", *x->p))
		x->p++;
	*out = strndup(start, (size_t)(x->p - start));
	return *out ? 0 : -ENOMEM;
}

static int add_value(struct lsel_req *r, char *v)
{
	char **values = reallocarray(r->values, r->nvalues + 1, sizeof(*values));

	if (!values) {
		free(v);
		return -ENOMEM;
	}
	r->values = values;
	r->values[r->nvalues++] = v;
	return 0;
}

/* ( a, b, … ) after in / notin */
static int value_set(struct lex *x, struct lsel_req *r)
{
	char *v = NULL;
	int ret;

	skip_space(x);
	if (*x->p != '(')
		return fail(x, "expected '(' after in/notin, as in 'env in (prod,staging)'");
	x->p++;
	for (;;) {
		ret = word(x, &v, "expected a value in the parentheses");
		if (ret)
			return ret;
		ret = add_value(r, v);
		if (ret)
			return ret;
		skip_space(x);
		if (*x->p == ')') {
			x->p++;
			return 0;
		}
		if (*x->p != ',')
			return fail(x, "expected ',' or ')' in the list of values");
		x->p++;
	}
}

/* The word after a key is an operator when it is in/notin followed by '('
 * (spaces between or not, as kubectl reads 'env in(a,b)'). */
static bool keyword(struct lex *x, const char *kw)
{
	size_t n = strlen(kw);
	const char *q;

	skip_space(x);
	if (strncmp(x->p, kw, n))
		return false;
	q = x->p + n;
	while (isspace((unsigned char)*q))
		q++;
	if (*q != '(' || !(isspace((unsigned char)x->p[n]) || x->p[n] == '('))
		return false;
	x->p += n;
	return true;
}

static int requirement(struct lex *x, struct lsel_req *r)
{
	char *v = NULL;
	int ret;

	skip_space(x);
	if (*x->p == '!') {
		x->p++;
		r->op = LSEL_NOT_EXISTS;
		return word(x, &r->key, "expected a label key after '!'");
	}
	ret = word(x, &r->key, "expected a label key");
	if (ret)
		return ret;
	skip_space(x);
	r->op = LSEL_EXISTS;
	if (x->p[0] == '=' ) {
		x->p += x->p[1] == '=' ? 2 : 1;
		r->op = LSEL_EQ;
	} else if (x->p[0] == '!' && x->p[1] == '=') {
		x->p += 2;
		r->op = LSEL_NE;
	} else if (keyword(x, "in")) {
		r->op = LSEL_IN;
		return value_set(x, r);
	} else if (keyword(x, "notin")) {
		r->op = LSEL_NOTIN;
		return value_set(x, r);
	} else if (*x->p && *x->p != ',') {
		return fail(x, "expected =, ==, !=, in (…), notin (…) or ',' after the key");
	}
	if (r->op == LSEL_EXISTS)
		return 0;
	ret = value(x, &v);
	return ret ? ret : add_value(r, v);
}

int lsel_parse(const char *text, struct lsel *sel, char *err, size_t errlen)
{
	struct lex x = { text, text, err, errlen };
	struct lsel_req *req;
	int ret;

	memset(sel, 0, sizeof(*sel));
	skip_space(&x);
	if (!*x.p)
		return 0;
	for (;;) {
		req = reallocarray(sel->req, sel->n + 1, sizeof(*req));
		if (!req)
			return -ENOMEM;
		sel->req = req;
		memset(&sel->req[sel->n], 0, sizeof(*req));
		sel->n++;
		ret = requirement(&x, &sel->req[sel->n - 1]);
		if (ret)
			return ret;
		skip_space(&x);
		if (!*x.p)
			return 0;
		if (*x.p != ',')
			return fail(&x, "expected ',' between requirements");
		x.p++;
	}
}

void lsel_free(struct lsel *sel)
{
	for (size_t i = 0; i < sel->n; i++) {
		for (size_t j = 0; j < sel->req[i].nvalues; j++)
			free(sel->req[i].values[j]);
		free(sel->req[i].values);
		free(sel->req[i].key);
	}
	free(sel->req);
	memset(sel, 0, sizeof(*sel));
}

static bool in_values(const struct lsel_req *r, const char *v)
{
	for (size_t i = 0; i < r->nvalues; i++)
		if (!strcmp(r->values[i], v))
			return true;
	return false;
}

bool lsel_match(const struct lsel *sel, const json_t *labels)
{
	for (size_t i = 0; i < sel->n; i++) {
		const struct lsel_req *r = &sel->req[i];
		const char *v = json_string_value(json_object_get(labels, r->key));
		bool ok;

		switch (r->op) {
		case LSEL_EQ:
		case LSEL_IN:
			ok = v && in_values(r, v);
			break;
		case LSEL_NE:
		case LSEL_NOTIN:
			ok = !v || !in_values(r, v);
			break;
		case LSEL_EXISTS:
			ok = v != NULL;
			break;
		default:
			ok = v == NULL;
			break;
		}
		if (!ok)
			return false;
	}
	return true;
}
