// SPDX-License-Identifier: Apache-2.0
/*
 * sluicectl: the operator's command line for a node's sluice-agent. main.c
 * parses the options, finds the command in commands[] (a row per verb: its
 * parser, its runner, its help) and runs it; help.c has the help texts.
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "cli.h"

struct command {
	const char *name;
	/* argv[0] is the verb: fill c, or say what is wrong (EXIT_USAGE) */
	int (*parse)(int argc, char **argv, struct cmd *c);
	int (*run)(const struct cmd *c, struct opts *o);
	const char *help;
};

static int run_observe(const struct cmd *c, struct opts *o);

/* ---- the words after the options -------------------------------------- */

static int no_args(int argc, char **argv, struct cmd *c, enum cmd_kind kind, const char *op,
		   int (*print)(const json_t *))
{
	if (argc > 1) {
		fprintf(stderr, "sluicectl: %s takes no arguments, not '%s'; see sluicectl %s "
			"--help\n", argv[0], argv[1], argv[0]);
		return EXIT_USAGE;
	}
	*c = (struct cmd){ .kind = kind, .op = op, .print = print };
	return 0;
}

static int parse_status(int argc, char **argv, struct cmd *c)
{
	return no_args(argc, argv, c, CMD_PLAIN, "status", print_status);
}

static int parse_metrics(int argc, char **argv, struct cmd *c)
{
	return no_args(argc, argv, c, CMD_PLAIN, "metrics", print_metrics);
}

static int parse_observe(int argc, char **argv, struct cmd *c)
{
	return no_args(argc, argv, c, CMD_OBSERVE, "flows", NULL);
}

static int parse_apply(int argc, char **argv, struct cmd *c)
{
	return no_args(argc, argv, c, CMD_APPLY, "apply", print_changes);
}

static int parse_diff(int argc, char **argv, struct cmd *c)
{
	return no_args(argc, argv, c, CMD_DIFF, "apply", NULL);
}

static int parse_version(int argc, char **argv, struct cmd *c)
{
	return no_args(argc, argv, c, CMD_VERSION, "version", NULL);
}

static int parse_completion(int argc, char **argv, struct cmd *c)
{
	if (argc != 2) {
		fprintf(stderr, "sluicectl: completion takes bash or zsh\n");
		return EXIT_USAGE;
	}
	*c = (struct cmd){ .kind = CMD_COMPLETION, .op = "completion", .name = argv[1] };
	return 0;
}

static int parse_top(int argc, char **argv, struct cmd *c)
{
	if (argc != 2 || (strcmp(argv[1], "flows") && strcmp(argv[1], "pods"))) {
		fprintf(stderr, "sluicectl: top takes flows or pods\n");
		return EXIT_USAGE;
	}
	*c = (struct cmd){ .kind = CMD_TOP, .op = "top", .name = argv[1] };
	return 0;
}

/* KIND [NAME…] of get, describe and delete; KIND/NAME as kubectl's too. */
static int parse_kind(int argc, char **argv, struct cmd *c, enum cmd_kind kind)
{
	char *word = argc > 1 ? argv[1] : NULL, *slash = word ? strchr(word, '/') : NULL;
	const char *close;

	memset(c, 0, sizeof(*c));
	if (!word) {
		fprintf(stderr, "sluicectl: %s needs a KIND: %s; see sluicectl %s --help\n",
			argv[0], kind_list(), argv[0]);
		return EXIT_USAGE;
	}
	c->names = argv + 2;
	c->nnames = (size_t)(argc - 2);
	c->kind_of = kind_lookup(word);
	if (!c->kind_of && slash) {
		/* pod/web as kubectl takes it: the kind, then the first name */
		*slash = '\0';
		c->kind_of = kind_lookup(word);
		*slash = '/';
		if (c->kind_of) {
			argv[1] = slash + 1;
			c->names = argv + 1;
			c->nnames = (size_t)(argc - 1);
		}
	}
	if (!c->kind_of) {
		close = kind_suggest(word);
		fprintf(stderr, "sluicectl: unknown kind '%s'%s%s%s; the kinds: %s\n", word,
			close ? "; did you mean '" : "", close ? close : "", close ? "'?" : "",
			kind_list());
		return EXIT_USAGE;
	}
	c->kind = kind;
	return 0;
}

static int parse_get(int argc, char **argv, struct cmd *c)
{
	return parse_kind(argc, argv, c, CMD_GET);
}

static int parse_describe(int argc, char **argv, struct cmd *c)
{
	return parse_kind(argc, argv, c, CMD_DESCRIBE);
}

static int parse_delete(int argc, char **argv, struct cmd *c)
{
	int ret;

	if (argc == 1) {
		*c = (struct cmd){ .kind = CMD_DELETE, .op = "delete", .print = print_changes };
		return 0;
	}
	ret = parse_kind(argc, argv, c, CMD_DELETE_NAMED);
	if (!ret && !c->nnames) {
		fprintf(stderr, "sluicectl: delete %s needs a NAME (or delete -f FILE)\n",
			argv[1]);
		return EXIT_USAGE;
	}
	c->op = "delete";
	c->print = print_changes;
	return ret;
}

static int parse_policy(int argc, char **argv, struct cmd *c)
{
	if (argc == 2 && !strcmp(argv[1], "explain")) {
		*c = (struct cmd){ .kind = CMD_EXPLAIN, .op = "explain", .print = print_explain };
		return 0;
	}
	/* sluicectl policy shop/x: a get without its verb */
	fprintf(stderr, "sluicectl: unknown command 'policy%s%s'; did you mean 'get policy%s%s'? "
		"('policy explain' is the command that explains a verdict)\n",
		argc > 1 ? " " : "", argc > 1 ? argv[1] : "", argc > 1 ? " " : "",
		argc > 1 ? argv[1] : "");
	return EXIT_USAGE;
}

/* The commands: a row per verb. */
static const struct command commands[] = {
	{ "get", parse_get, run_get, help_get },
	{ "describe", parse_describe, run_describe, help_describe },
	{ "apply", parse_apply, run_apply, help_apply },
	{ "diff", parse_diff, run_diff, help_diff },
	{ "delete", parse_delete, run_request, help_delete },
	{ "status", parse_status, run_request, help_status },
	{ "metrics", parse_metrics, run_request, help_metrics },
	{ "observe", parse_observe, run_observe, help_observe },
	{ "top", parse_top, run_request, help_top },
	{ "policy", parse_policy, run_request, help_policy },
	{ "version", parse_version, run_version, help_version },
	{ "completion", parse_completion, run_completion, help_completion },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct command *command_of(const char *verb)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (!strcmp(verb, commands[i].name))
			return &commands[i];
	return NULL;
}

const char *command_names(void)
{
	/* built once, then the same for the process's life */
	static char names[256];

	if (!names[0])
		for (size_t i = 0, off = 0; i < NCOMMANDS && off < sizeof(names); i++)
			off += (size_t)snprintf(names + off, sizeof(names) - off, "%s%s",
						i ? " " : "", commands[i].name);
	return names;
}

/* An unknown first word: a kind without its verb (get), or a typo. */
static void unknown_command(const char *word)
{
	const char *best = NULL;
	size_t bestd = 3;

	if (kind_lookup(word)) {
		fprintf(stderr, "sluicectl: unknown command '%s'; did you mean 'get %s'?\n", word,
			word);
		return;
	}
	for (size_t i = 0; i < NCOMMANDS; i++) {
		size_t d = ks_edit_distance(word, commands[i].name);

		if (d < bestd) {
			bestd = d;
			best = commands[i].name;
		}
	}
	if (best)
		fprintf(stderr, "sluicectl: unknown command '%s'; did you mean '%s'?\n", word, best);
	else
		fprintf(stderr, "sluicectl: unknown command '%s'; see sluicectl --help\n", word);
}

/* Options that belong to some commands only. */
static int check_options(const struct cmd *c, const struct opts *o)
{
	const bool get = c->kind == CMD_GET, named = get || c->kind == CMD_DESCRIBE;

	if ((c->kind == CMD_APPLY || c->kind == CMD_DELETE || c->kind == CMD_DIFF) && !o->nfiles) {
		fprintf(stderr, "sluicectl: %s needs -f FILE (- for standard input)\n",
			c->kind == CMD_DIFF ? "diff" : c->op);
		return EXIT_USAGE;
	}
	if (c->kind != CMD_APPLY && c->kind != CMD_DELETE && c->kind != CMD_DIFF && o->nfiles) {
		fprintf(stderr, "sluicectl: -f is for %s\n",
			c->kind == CMD_DELETE_NAMED ? "apply and delete -f FILE, not with a KIND "
						      "and NAME"
						    : "apply, diff and delete");
		return EXIT_USAGE;
	}
	if (c->kind != CMD_APPLY && c->kind != CMD_DIFF && o->validate_given) {
		fprintf(stderr, "sluicectl: --validate is for apply and diff\n");
		return EXIT_USAGE;
	}
	if (c->kind != CMD_APPLY && o->dry_run_given) {
		fprintf(stderr, "sluicectl: --dry-run is for apply (diff shows what apply would "
			"change)\n");
		return EXIT_USAGE;
	}
	if ((c->kind == CMD_DIFF || c->kind == CMD_COMPLETION) && o->output_given) {
		fprintf(stderr, "sluicectl: %s prints text; -o is not for it\n",
			c->kind == CMD_DIFF ? "diff" : c->op);
		return EXIT_USAGE;
	}
	if (c->kind != CMD_DELETE && c->kind != CMD_DELETE_NAMED && o->ignore_not_found) {
		fprintf(stderr, "sluicectl: --ignore-not-found is for delete\n");
		return EXIT_USAGE;
	}
	if (o->chunk_given && !get) {
		fprintf(stderr, "sluicectl: --chunk-size is for get\n");
		return EXIT_USAGE;
	}
	if (!get && o->output != OUT_JSON && o->output_given) {
		fprintf(stderr, "sluicectl: -o yaml, wide and name are for get; %s takes -o json%s\n",
			c->op ? c->op : "describe", c->kind == CMD_DESCRIBE ? " neither (get -o "
			"json has every field)" : "");
		return EXIT_USAGE;
	}
	if (c->kind == CMD_DESCRIBE && o->output_given) {
		fprintf(stderr, "sluicectl: describe prints words; get -o json|yaml has every "
			"field\n");
		return EXIT_USAGE;
	}
	if (!named && c->kind != CMD_DELETE_NAMED && o->namespace) {
		fprintf(stderr, "sluicectl: -n is for get, describe, delete KIND NAME and "
			"observe\n");
		return EXIT_USAGE;
	}
	if (!named && (o->all_namespaces || o->selector)) {
		fprintf(stderr, "sluicectl: %s is for get, describe%s\n",
			o->all_namespaces ? "-A" : "-l", o->all_namespaces ? "" : " and observe");
		return EXIT_USAGE;
	}
	if (!get && (o->no_headers || o->watch)) {
		fprintf(stderr, "sluicectl: %s is for get\n", o->watch ? "--watch" : "--no-headers");
		return EXIT_USAGE;
	}
	if (c->kind != CMD_OBSERVE && (json_object_size(o->filters) || o->follow)) {
		fprintf(stderr, "sluicectl: flow filters and --follow are for observe\n");
		return EXIT_USAGE;
	}
	if (c->kind != CMD_TOP && o->limit) {
		fprintf(stderr, "sluicectl: --limit is for top\n");
		return EXIT_USAGE;
	}
	if (c->kind != CMD_EXPLAIN && (o->from || o->to || o->port)) {
		fprintf(stderr, "sluicectl: --from, --to and --port are for policy explain\n");
		return EXIT_USAGE;
	}
	if (c->kind == CMD_EXPLAIN && o->to && strchr(o->to, ':') && o->port) {
		fprintf(stderr, "sluicectl: --to %s has a port already; drop --port\n", o->to);
		return EXIT_USAGE;
	}
	if (c->kind == CMD_EXPLAIN &&
	    (!o->from || !o->to || (!o->port && !strchr(o->to, ':')))) {
		fprintf(stderr, "sluicectl: policy explain needs --from, --to and --port (or --to "
			"ADDRESS:PORT[/PROTOCOL])\n");
		return EXIT_USAGE;
	}
	return 0;
}

/* ---- running ---------------------------------------------------------- */

static int run_observe(const struct cmd *c, struct opts *o)
{
	json_t *req = json_pack("{s:s}", "op", c->op);
	int ret;

	if (!req) {
		fprintf(stderr, "sluicectl: out of memory\n");
		return EXIT_FAIL;
	}
	ret = observe(o, req);
	json_decref(req);
	return ret;
}

/* One request, one answer, printed: status, metrics, top, apply, delete,
 * policy explain. */
int run_request(const struct cmd *c, struct opts *o)
{
	json_t *req = json_pack("{s:s}", "op", c->op), *resp = NULL, *result, *warning;
	size_t reqlen, nwarn;
	char err[512];
	int ret = EXIT_FAIL;

	if (!req) {
		fprintf(stderr, "sluicectl: out of memory\n");
		return EXIT_FAIL;
	}
	if (c->kind == CMD_TOP &&
	    (json_object_set_new(req, "what", json_string(c->name)) ||
	     (o->limit && json_object_set_new(req, "limit", json_integer(o->limit))))) {
		fprintf(stderr, "sluicectl: out of memory\n");
		goto cleanup;
	}
	ret = 0;
	if (c->kind == CMD_APPLY || c->kind == CMD_DELETE)
		ret = build_objects_request(c, o, req);
	/* apply --dry-run=server: the agent checks and answers, changing nothing */
	if (!ret && c->kind == CMD_APPLY && o->dry_run == DRY_SERVER &&
	    json_object_set_new(req, "dryRun", json_string("server"))) {
		fprintf(stderr, "sluicectl: out of memory\n");
		ret = EXIT_FAIL;
	}
	else if (c->kind == CMD_DELETE_NAMED)
		ret = build_named_delete(c, o, req);
	else if (c->kind == CMD_EXPLAIN)
		ret = build_explain_request(o, req);
	if (ret)
		goto cleanup;
	/* delete KIND NAME --ignore-not-found where no name exists */
	if (c->kind == CMD_DELETE_NAMED && !json_object_get(req, "objects"))
		goto cleanup;
	reqlen = json_dumpb(req, NULL, 0, JSON_COMPACT);
	if (reqlen > SLUICE_API_MAX_MSG) {
		fprintf(stderr, "sluicectl: the request would be %zu bytes, more than the agent's "
			"limit of %u MiB; %s the files in several runs\n", reqlen,
			SLUICE_API_MAX_MSG >> 20, c->op);
		ret = EXIT_FAIL;
		goto cleanup;
	}
	if (api_call(o->socket_path, req, &resp,
		     c->kind == CMD_APPLY || c->kind == CMD_DELETE || c->kind == CMD_DELETE_NAMED
			     ? TIMEOUT_OBJECTS_MS : TIMEOUT_MS,
		     err, sizeof(err))) {
		fprintf(stderr, "sluicectl: %s\n", err);
		ret = EXIT_UNREACHABLE;
		goto cleanup;
	}
	if (!json_is_true(json_object_get(resp, "ok"))) {
		if (o->output == OUT_JSON) {
			json_dumpf(resp, stdout, JSON_INDENT(2));
			putchar('\n');
		}
		print_agent_error(resp);
		ret = EXIT_FAIL;
		goto cleanup;
	}
	result = json_object_get(resp, "result");
	/* apply --validate=warn: the unknown fields the agent accepted */
	json_array_foreach(json_object_get(result, "warnings"), nwarn, warning)
		fprintf(stderr, "Warning: %s\n", json_string_value(warning));
	if (c->kind == CMD_EXPLAIN && !json_is_boolean(json_object_get(result, "allowed"))) {
		fprintf(stderr, "sluicectl: the agent's explain answer has no 'allowed' verdict\n");
		ret = EXIT_FAIL;
		goto cleanup;
	}
	if (o->output == OUT_JSON) {
		json_dumpf(result, stdout, JSON_INDENT(2));
		putchar('\n');
	} else if (c->kind == CMD_TOP) {
		print_top(c->name, result);
	} else if (c->print(result)) {
		fprintf(stderr, "sluicectl: out of memory\n");
		ret = EXIT_FAIL;
		goto cleanup;
	}
	ret = EXIT_OK;
	if (c->kind == CMD_EXPLAIN && !json_is_true(json_object_get(result, "allowed")))
		ret = EXIT_FAIL;
cleanup:
	json_decref(req);
	json_decref(resp);
	return ret;
}

/* ---- options ---------------------------------------------------------- */

enum { OPT_IGNORE = 256, OPT_FROM, OPT_TO, OPT_PORT, OPT_CHUNK, OPT_FILTER, OPT_SINCE,
       OPT_LAST, OPT_LIMIT, OPT_VALIDATE, OPT_NO_HEADERS, OPT_DRY_RUN };

/* observe's filters: option -> the request's member. */
static const struct {
	const char *opt, *member;
} filter_opts[] = {
	{ "from-pod", "fromPod" }, { "to-pod", "toPod" }, { "pod", "pod" },
	{ "from-ip", "fromIP" }, { "to-ip", "toIP" }, { "label", "label" },
	{ "verdict", "verdict" }, { "drop-reason", "dropReason" },
	{ "protocol", "protocol" }, { "policy", "policy" }, { "service", "service" },
};

static const struct option longopts[] = {
	{ "socket", required_argument, NULL, 's' },
	{ "output", required_argument, NULL, 'o' },
	{ "filename", required_argument, NULL, 'f' },
	{ "namespace", required_argument, NULL, 'n' },
	{ "all-namespaces", no_argument, NULL, 'A' },
	{ "selector", required_argument, NULL, 'l' },
	{ "watch", no_argument, NULL, 'w' },
	{ "no-headers", no_argument, NULL, OPT_NO_HEADERS },
	{ "ignore-not-found", no_argument, NULL, OPT_IGNORE },
	{ "validate", optional_argument, NULL, OPT_VALIDATE },
	{ "dry-run", optional_argument, NULL, OPT_DRY_RUN },
	{ "from", required_argument, NULL, OPT_FROM },
	{ "to", required_argument, NULL, OPT_TO },
	{ "port", required_argument, NULL, OPT_PORT },
	{ "chunk-size", required_argument, NULL, OPT_CHUNK },
	{ "from-pod", required_argument, NULL, OPT_FILTER },
	{ "to-pod", required_argument, NULL, OPT_FILTER },
	{ "pod", required_argument, NULL, OPT_FILTER },
	{ "from-ip", required_argument, NULL, OPT_FILTER },
	{ "to-ip", required_argument, NULL, OPT_FILTER },
	{ "label", required_argument, NULL, OPT_FILTER },
	{ "verdict", required_argument, NULL, OPT_FILTER },
	{ "drop-reason", required_argument, NULL, OPT_FILTER },
	{ "protocol", required_argument, NULL, OPT_FILTER },
	{ "policy", required_argument, NULL, OPT_FILTER },
	{ "service", required_argument, NULL, OPT_FILTER },
	{ "since", required_argument, NULL, OPT_SINCE },
	{ "last", required_argument, NULL, OPT_LAST },
	{ "follow", no_argument, NULL, 'F' },
	{ "limit", required_argument, NULL, OPT_LIMIT },
	{ "help", no_argument, NULL, 'h' },
	{ 0 },
};

/* Values given before the command is known: observe's --port is a filter,
 * policy explain's is not; observe's -n and -l are filters too. */
struct held {
	const char **ports, **namespaces, **labels;
	size_t nports, nnamespaces, nlabels;
	bool help;
};

static int parse_output(const char *v, struct opts *o)
{
	static const char *const names[] = { [OUT_JSON] = "json", [OUT_YAML] = "yaml",
					     [OUT_WIDE] = "wide", [OUT_NAME] = "name" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i] && !strcmp(v, names[i])) {
			o->output = (enum out_fmt)i;
			o->output_given = true;
			return 0;
		}
	fprintf(stderr, "sluicectl: -o takes json, yaml, wide or name, not '%s'\n", v);
	return EXIT_USAGE;
}

static int parse_number(const char *opt, const char *v, long long min, long long max,
			long long *out)
{
	char *end;

	errno = 0;
	*out = strtoll(v, &end, 10);
	if (errno || end == v || *end || *out < min || *out > max) {
		fprintf(stderr, "sluicectl: %s takes a number from %lld to %lld, not '%s'\n", opt,
			min, max, v);
		return EXIT_USAGE;
	}
	return 0;
}

/* One option: 0, or an exit code (the reason on stderr). */
static int option(int c, int idx, struct opts *o, struct held *h, bool *stdin_taken)
{
	double since;
	long long n;

	switch (c) {
	case 's': o->socket_path = optarg; return 0;
	case 'o': return parse_output(optarg, o);
	case 'n':
		o->namespace = optarg;
		h->namespaces[h->nnamespaces++] = optarg;
		return 0;
	case 'A': o->all_namespaces = true; return 0;
	case 'l':
		o->selector = optarg;
		h->labels[h->nlabels++] = optarg;
		return 0;
	case 'w': o->watch = true; return 0;
	case OPT_NO_HEADERS: o->no_headers = true; return 0;
	case 'f':
		if (!strcmp(optarg, "-")) {
			if (*stdin_taken) {
				fprintf(stderr, "sluicectl: -f - (standard input) can be given once\n");
				return EXIT_USAGE;
			}
			*stdin_taken = true;
		}
		o->files[o->nfiles++] = optarg;
		return 0;
	case OPT_IGNORE: o->ignore_not_found = true; return 0;
	case OPT_VALIDATE:
		/* --validate alone is strict, as kubectl's */
		if (ks_mode_parse(optarg ? optarg : "strict", &o->validate)) {
			fprintf(stderr, "sluicectl: --validate takes strict, warn or ignore "
				"(true: strict, false: ignore), not '%s'\n", optarg);
			return EXIT_USAGE;
		}
		o->validate_given = true;
		return 0;
	case OPT_DRY_RUN:
		if (dry_run_parse(optarg, &o->dry_run)) {
			fprintf(stderr, "sluicectl: --dry-run takes client, server or none, not "
				"'%s'\n", optarg);
			return EXIT_USAGE;
		}
		o->dry_run_given = true;
		return 0;
	case OPT_FROM: o->from = optarg; return 0;
	case OPT_TO: o->to = optarg; return 0;
	case OPT_PORT:
		o->port = optarg;
		h->ports[h->nports++] = optarg;
		return 0;
	case OPT_FILTER:
		for (size_t k = 0; k < sizeof(filter_opts) / sizeof(filter_opts[0]); k++)
			if (!strcmp(longopts[idx].name, filter_opts[k].opt) &&
			    add_filter(o->filters, filter_opts[k].member, optarg)) {
				fprintf(stderr, "sluicectl: out of memory\n");
				return EXIT_FAIL;
			}
		return 0;
	case OPT_SINCE:
		since = parse_duration(optarg);
		if (since <= 0) {
			fprintf(stderr, "sluicectl: --since takes a duration (30s, 5m, 2h, 1d), "
				"not '%s'\n", optarg);
			return EXIT_USAGE;
		}
		json_object_set_new(o->filters, "since", json_real(since));
		return 0;
	case OPT_LAST:
	case OPT_LIMIT:
		if (parse_number(c == OPT_LAST ? "--last" : "--limit", optarg, 1, 100000000, &n))
			return EXIT_USAGE;
		if (c == OPT_LAST)
			json_object_set_new(o->filters, "last", json_integer(n));
		else
			o->limit = (long)n;
		return 0;
	case 'F': o->follow = true; return 0;
	case OPT_CHUNK:
		if (parse_number("--chunk-size", optarg, 0, 1000000, &n))
			return EXIT_USAGE;
		o->chunk_size = (long)n;
		o->chunk_given = true;
		return 0;
	case 'h': h->help = true; return 0;
	default:
		fprintf(stderr, "sluicectl: see sluicectl --help\n");
		return EXIT_USAGE;
	}
}

/* observe: the held --port, -n and -l values are its filters. */
static int observe_filters(struct opts *o, const struct held *h)
{
	for (size_t k = 0; k < h->nports; k++)
		if (add_filter(o->filters, "port", h->ports[k]))
			return EXIT_FAIL;
	for (size_t k = 0; k < h->nnamespaces; k++)
		if (add_filter(o->filters, "namespace", h->namespaces[k]))
			return EXIT_FAIL;
	for (size_t k = 0; k < h->nlabels; k++)
		if (add_filter(o->filters, "label", h->labels[k]))
			return EXIT_FAIL;
	o->port = o->namespace = o->selector = NULL;
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o = { .socket_path = getenv("SLUICE_SOCKET"), .chunk_size = CHUNK_DEFAULT };
	struct held h = { 0 };
	const struct command *command;
	bool stdin_taken = false;
	struct cmd cmd;
	int c, idx, ret = EXIT_FAIL;

	if (!o.socket_path || !*o.socket_path)
		o.socket_path = SLUICE_DEFAULT_SOCKET;
	o.files = calloc((size_t)argc, sizeof(*o.files));
	h.ports = calloc((size_t)argc, sizeof(*h.ports));
	h.namespaces = calloc((size_t)argc, sizeof(*h.namespaces));
	h.labels = calloc((size_t)argc, sizeof(*h.labels));
	o.filters = json_object();
	if (!o.files || !h.ports || !h.namespaces || !h.labels || !o.filters) {
		fprintf(stderr, "sluicectl: out of memory\n");
		goto cleanup;
	}
	while ((c = getopt_long(argc, argv, "o:f:n:l:AwhF", longopts, &idx)) != -1)
		if ((ret = option(c, idx, &o, &h, &stdin_taken)))
			goto cleanup;
	command = optind < argc ? command_of(argv[optind]) : NULL;
	if (h.help) {
		/* sluicectl COMMAND --help: the command's; else the overview */
		if (command)
			fputs(command->help, stdout);
		else
			usage(stdout);
		ret = EXIT_OK;
		goto cleanup;
	}
	ret = EXIT_USAGE;
	if (optind >= argc) {
		fprintf(stderr, "sluicectl: no command; see sluicectl --help\n");
		goto cleanup;
	}
	if (!command) {
		unknown_command(argv[optind]);
		goto cleanup;
	}
	ret = command->parse(argc - optind, argv + optind, &cmd);
	if (!ret && cmd.kind == CMD_OBSERVE && observe_filters(&o, &h)) {
		fprintf(stderr, "sluicectl: out of memory\n");
		ret = EXIT_FAIL;
	}
	if (!ret)
		ret = check_options(&cmd, &o);
	if (!ret)
		ret = command->run(&cmd, &o);
cleanup:
	json_decref(o.filters);
	free(h.ports);
	free(h.namespaces);
	free(h.labels);
	free(o.files);
	return ret;
}
