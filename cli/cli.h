/* SPDX-License-Identifier: Apache-2.0 */
/* sluicectl's modules: the command being run, its options, and the printing
 * helpers they share. main.c parses the options and dispatches through its
 * table of commands; each command's file builds its request and prints the
 * agent's answer. */
#ifndef SLUICE_CLI_H
#define SLUICE_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#include "kinds.h"
#include "kschema.h"
#include "lselector.h"

enum exit_code { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_UNREACHABLE = 3 };
/* diff, as kubectl diff: 1 is "differences", an error is 2 */
#define EXIT_DIFF_ERROR 2

#define TIMEOUT_MS 10000
/* apply and delete answer once the datapath enforces the new state */
#define TIMEOUT_OBJECTS_MS 30000
/* get: objects per page (--chunk-size), as kubectl's default */
#define CHUNK_DEFAULT 500

enum cmd_kind { CMD_PLAIN, CMD_APPLY, CMD_DELETE, CMD_EXPLAIN, CMD_OBSERVE, CMD_TOP, CMD_GET,
		CMD_DESCRIBE, CMD_DELETE_NAMED, CMD_DIFF,
		CMD_VERSION, CMD_COMPLETION };

/* apply --dry-run */
enum dry_run { DRY_NONE, DRY_CLIENT, DRY_SERVER };

/* The command parsed from the words after the options. */
struct cmd {
	enum cmd_kind kind;
	const char *op;		/* the agent's op */
	int (*print)(const json_t *result);
	const char *name;	/* top: flows or pods */
	const struct kind *kind_of;	/* get, describe, delete KIND NAME */
	char **names;		/* their NAME or NAMESPACE/NAME words */
	size_t nnames;
};

enum out_fmt { OUT_TABLE, OUT_WIDE, OUT_JSON, OUT_YAML, OUT_NAME };

struct opts {
	const char *socket_path;
	enum out_fmt output;	/* -o */
	bool output_given;
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
	const char *namespace;	/* -n: get, describe, delete KIND NAME */
	bool all_namespaces;	/* -A */
	const char *selector;	/* -l */
	bool no_headers;
	bool watch;		/* get -w */
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

/* ---- help.c ----------------------------------------------------------- */
void usage(FILE *f);
extern const char help_get[], help_describe[], help_apply[], help_delete[], help_status[],
	help_metrics[], help_observe[], help_top[], help_policy[];

/* ---- status.c: the node ----------------------------------------------- */
int print_status(const json_t *r);
int print_metrics(const json_t *r);

/* ---- tables.c: one row per object ------------------------------------- */
/* items as a table of what's columns, after the header when header is set;
 * wide: no cell cut short. 0 or -ENOMEM. */
int items_table(const json_t *items, enum get_what what, bool header, bool wide);
void print_deny_entries(const json_t *prefilter);

/* ---- get.c: get KIND [NAME…] ------------------------------------------ */
/* Which items of a kind the command names: -n/-A, NAME or NS/NAME, -l. */
struct get_filter {
	const struct kind *kind;
	const char *ns;		/* NULL: every namespace */
	char **names;
	size_t nnames;
	bool *found;		/* per name: an item matched it */
	struct lsel sel;
};

int get_filter_init(struct get_filter *f, const struct cmd *c, const struct opts *o);
bool get_filter_match(struct get_filter *f, const json_t *item);
void get_filter_free(struct get_filter *f);
int run_get(const struct cmd *c, struct opts *o);
/* c's matching items in *items, the filter (free it) in *f: an exit code */
int get_items(const struct cmd *c, const struct opts *o, struct get_filter *f, json_t **items);

/* ---- describe.c ------------------------------------------------------- */
int run_describe(const struct cmd *c, struct opts *o);

/* ---- objects.c: apply, delete ----------------------------------------- */
int print_changes(const json_t *r);
int build_objects_request(const struct cmd *c, const struct opts *o, json_t *req);
/* delete KIND NAME…: the objects the request names, built from the words */
int build_named_delete(const struct cmd *c, const struct opts *o, json_t *req);

/* ---- main.c ---------------------------------------------------------- */
/* One request, one answer, printed (apply, delete, status, ...). */
int run_request(const struct cmd *c, struct opts *o);
/* The verbs, space-separated, for the completion script. */
const char *command_names(void);

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
/* apply, with --dry-run=client (nothing sent) or server (dryRun in the request). */
int run_apply(const struct cmd *c, struct opts *o);

/* ---- diff.c: diff -f -------------------------------------------------- */
/* One object's unified diff from live (NULL: none, /dev/null) to obj, as
 * normalized JSON. 0 equal, 1 printed, <0 out of memory. */
int diff_object(FILE *f, const json_t *live, const json_t *obj, const char *kind, const char *ns,
		const char *name, const char *source);
/* diff -f: exit 0 same, 1 differ, 2 error, 3 no agent. */
int run_diff(const struct cmd *c, struct opts *o);

/* ---- version.c, completion.c ------------------------------------------ */
int run_version(const struct cmd *c, struct opts *o);
int run_completion(const struct cmd *c, struct opts *o);
extern const char help_diff[], help_version[], help_completion[];

/* ---- explain.c: policy explain ---------------------------------------- */
int print_explain(const json_t *r);
int build_explain_request(const struct opts *o, json_t *req);

/* ---- observe.c: observe, top ------------------------------------------ */
double parse_duration(const char *s);
int add_filter(json_t *filters, const char *key, const char *val);
int observe(const struct opts *o, json_t *req);
void print_top(const char *what, const json_t *r);

#endif
