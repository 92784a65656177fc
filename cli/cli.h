/* SPDX-License-Identifier: Apache-2.0 */
/* sluicectl's modules: the command being run, its options, and the printing
 * helpers they share. main.c parses and dispatches; each command's file
 * builds its request and prints the agent's answer. */
#ifndef SLUICE_CLI_H
#define SLUICE_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#include "kschema.h"

enum exit_code { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_UNREACHABLE = 3 };
/* diff, as kubectl diff: 1 is "differences", an error is 2 */
#define EXIT_DIFF_ERROR 2

#define TIMEOUT_MS 10000
/* apply and delete answer once the datapath enforces the new state */
#define TIMEOUT_OBJECTS_MS 30000
/* get: objects per page (--chunk-size), as kubectl's default */
#define CHUNK_DEFAULT 500

enum get_what { GET_NAMESPACES, GET_PODS, GET_POLICIES, GET_IDENTITIES, GET_NODES, GET_SERVICES,
		GET_PREFILTERS };

enum cmd_kind { CMD_PLAIN, CMD_APPLY, CMD_DELETE, CMD_EXPLAIN, CMD_OBSERVE, CMD_TOP, CMD_DIFF,
		CMD_VERSION, CMD_COMPLETION };

/* apply --dry-run */
enum dry_run { DRY_NONE, DRY_CLIENT, DRY_SERVER };

struct cmd {
	enum cmd_kind kind;
	const char *op;
	const char *what;	/* get: the object class */
	int (*print)(const json_t *result);
	const char *name;	/* get prefilter NAME */
};

struct opts {
	const char *socket_path;
	bool json_out;
	const char **files;
	size_t nfiles;
	bool ignore_not_found;
	enum ks_mode validate;	/* apply: unknown fields refused, warned of or ignored */
	bool validate_given;
	enum dry_run dry_run;	/* apply --dry-run */
	bool dry_run_given;
	const char *from, *to, *port;
	long chunk_size;	/* get: items per request; 0: all in one */
	bool chunk_given;
	json_t *filters;	/* observe: the request's filter members */
	bool follow;
	long limit;		/* top */
};

/* ---- output.c: cells and tables --------------------------------------- */

/* Rows of strings printed with columns as wide as their widest cell. */
struct table {
	size_t ncol, nrow, cap;
	char **cell; /* nrow * ncol, owned */
};

int table_row(struct table *t, char **cells);
void table_print(const struct table *t);
void table_free(struct table *t);

/* obj's string member key, "-" when absent or empty */
const char *str(const json_t *obj, const char *key);
char *dup_str(const json_t *obj, const char *key);
char *labels_text(const json_t *labels);
char *join_text(const json_t *arr);
char *selected_text(const json_t *it);
char *int_text(const json_t *v);
char *status_text(const json_t *it);
void print_agent_error(const json_t *resp);
int print_json_at(const json_t *v, int depth);

/* ---- status.c: the node ----------------------------------------------- */
int print_status(const json_t *r);
int print_endpoints(const json_t *r);
int print_metrics(const json_t *r);

/* ---- get.c: object tables --------------------------------------------- */
int print_items_h(const json_t *r, enum get_what what, bool header);
int print_items(const json_t *r, enum get_what what);
int print_namespaces(const json_t *r);
int print_pods(const json_t *r);
int print_policies(const json_t *r);
int print_identities(const json_t *r);
int print_nodes(const json_t *r);
int print_prefilters(const json_t *r);
int print_prefilter(const json_t *r);
int print_services(const json_t *r);
int get_pages(const struct cmd *c, const struct opts *o, json_t *req);

/* ---- objects.c: apply, delete ----------------------------------------- */
int print_changes(const json_t *r);
int build_objects_request(const struct cmd *c, const struct opts *o, json_t *req);

/* ---- apply.c: apply --dry-run ---------------------------------------- */
/* "client" (also NULL: --dry-run alone), "server", "none"; -EINVAL else. */
int dry_run_parse(const char *s, enum dry_run *out);
/*
 * The client's checks of an apply, with no agent: every object of a kind
 * sluice takes and named, then field validation in mode (lib/kschema.h).
 * 0 (*warnings: warn mode's lines, or NULL), -EINVAL with err (and
 * *details, malloc'd, when strict mode found several), -ENOMEM.
 */
int apply_client_check(const json_t *objects, const json_t *sources, enum ks_mode mode,
		       json_t **warnings, char *err, size_t errlen, char **details);
/* One line per change (or manifest object): "kind ns/name ACTION SUFFIX";
 * action NULL: each change's own. */
void print_dry_changes(const json_t *changes, const char *action, const char *suffix);
int print_server_dry_run(const json_t *r);
/* --dry-run=client: req's objects checked and printed; nothing is sent. */
int apply_client_dry_run(const struct opts *o, const json_t *req);

/* ---- diff.c: diff -f -------------------------------------------------- */
/* One object's unified diff from live (NULL: none, /dev/null) to obj, as
 * normalized JSON. 0 equal, 1 printed, <0 out of memory. */
int diff_object(FILE *f, const json_t *live, const json_t *obj, const char *kind, const char *ns,
		const char *name, const char *source);
/* req: the apply request of the files; exit 0 same, 1 differ, 2 error, 3 no agent. */
int run_diff(const struct opts *o, json_t *req);

/* ---- version.c, completion.c ------------------------------------------ */
int run_version(const struct opts *o);
int run_completion(const char *shell);

/* ---- explain.c: policy explain ---------------------------------------- */
int print_explain(const json_t *r);
int build_explain_request(const struct opts *o, json_t *req);

/* ---- observe.c: observe, top ------------------------------------------ */
double parse_duration(const char *s);
int add_filter(json_t *filters, const char *key, const char *val);
int observe(const struct opts *o, json_t *req);
void print_top(const char *what, const json_t *r);

#endif
