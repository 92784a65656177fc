/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kubectl's label selector syntax (-l/--selector), parsed and matched on the
 * client: requirements separated by commas, all of which must hold.
 *   k=v  k==v      the label k is v
 *   k!=v           k is not v (or k is absent)
 *   k in (a,b)     k is a or b
 *   k notin (a,b)  k is neither (or absent)
 *   k              k is present          !k  k is absent
 * Keys and values are taken as written (no validation of the charset
 * beyond refusing the characters of the syntax itself).
 */
#ifndef SLUICE_CLI_LSELECTOR_H
#define SLUICE_CLI_LSELECTOR_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

enum lsel_op { LSEL_EQ, LSEL_NE, LSEL_IN, LSEL_NOTIN, LSEL_EXISTS, LSEL_NOT_EXISTS };

struct lsel_req {
	char *key;
	enum lsel_op op;
	size_t nvalues;
	char **values;
};

struct lsel {
	size_t n;
	struct lsel_req *req;
};

/* Parse text into sel (freed with lsel_free, also after an error).
 * Returns 0 or -EINVAL with err naming the position and what was
 * expected, or -ENOMEM. An empty text selects everything. */
int lsel_parse(const char *text, struct lsel *sel, char *err, size_t errlen);
void lsel_free(struct lsel *sel);
/* Whether labels (a JSON object of strings; NULL: none) satisfy sel. */
bool lsel_match(const struct lsel *sel, const json_t *labels);

#endif
