// SPDX-License-Identifier: Apache-2.0
/* sluicectl: the operator's command line for a node's sluice-agent: options,
 * the command's dispatch and usage. */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "kschema.h"
#include "cli.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: sluicectl [--socket PATH] COMMAND [OPTIONS]\n"
		"\n"
		"Node state:\n"
		"  status                 agent readiness, pod CIDR, router IP, attach mode, IPAM usage,\n"
		"                         XDP per device (requested, in use, fallback reason)\n"
		"  get endpoints          pods attached on this node (also: endpoint, ep)\n"
		"  metrics                datapath packet and byte counters by reason and direction,\n"
		"                         then the packets each SluicePrefilter dropped, and why\n"
		"                         XDP left Service packets to tc (by cause)\n"
		"\n"
		"Flows (docs/OBSERVABILITY.md):\n"
		"  observe [FILTERS] [--follow] [-o json]\n"
		"                         the flows the agent keeps, newest last: time, verdict,\n"
		"                         source -> destination (namespace/pod:port, or address and\n"
		"                         what it is), protocol/port, Service, event, and why: for\n"
		"                         a drop the reason in words and the policy that denied it,\n"
		"                         or the policies that isolate the pod (denied by default);\n"
		"                         -o json: one JSON object per line with every field\n"
		"  top flows [--limit N]  the slowest flows in the buffer (smoothed round trip of\n"
		"                         TCP timestamps) and their retransmissions\n"
		"  top pods [--limit N]   pod pairs and namespace pairs by p99 round trip (p50,\n"
		"                         p99, samples, retransmissions of ended flows)\n"
		"\n"
		"observe filters (each repeatable: the same filter given twice matches either;\n"
		"different filters must all match):\n"
		"  --from-pod NS/POD      the source pod (NS/ for every pod of NS)\n"
		"  --to-pod NS/POD        the destination pod\n"
		"  --pod NS/POD           either side\n"
		"  --namespace NS         either side's namespace\n"
		"  --from-ip ADDR|CIDR    the source address       --to-ip ADDR|CIDR  the destination\n"
		"  --label SELECTOR       either side's pod labels: k=v, k!=v, k, !k, comma = and\n"
		"  --verdict V            FORWARDED, DROPPED, AUDIT or TRANSLATED\n"
		"  --drop-reason R        a drop reason (drop-policy or policy, drop-spoofed-src, ...;\n"
		"                         sluicectl metrics lists them)\n"
		"  --protocol P           TCP, UDP, ICMP, SCTP or a number\n"
		"  --port N               either side's port\n"
		"  --policy NS/NAME       the policy that allowed or denied it, or isolated the pod\n"
		"                         (NAME alone: a SluiceClusterNetworkPolicy)\n"
		"  --service NS/NAME      to that Service's frontend\n"
		"  --since DURATION       recent flows only: 30s, 5m, 2h, 1d (seconds without a unit)\n"
		"  --last N               the newest N matching flows\n"
		"  --follow, -F           then print new matching flows as they come (every 200 ms)\n"
		"                         until interrupted; without --last, only new ones\n"
		"\n"
		"Objects and policy:\n"
		"  apply -f FILE [--validate=strict|warn|ignore]\n"
		"                         create or update the objects in FILE; prints one line per\n"
		"                         object: created, configured or unchanged, and a note in\n"
		"                         parentheses when there is one (an EndpointSlice kept but\n"
		"                         not used, a Service ignored as kube-proxy ignores it)\n"
		"  apply -f FILE --dry-run=client|server|none\n"
		"                         client: read and check the manifests here (kinds, names,\n"
		"                         --validate) and print what would be sent, contacting no\n"
		"                         agent (-o json: the request); server: the agent runs\n"
		"                         every check of the apply and prints what it would do\n"
		"                         (created, configured, unchanged), changing nothing\n"
		"  diff -f FILE [--validate=MODE]\n"
		"                         what apply would change: a unified diff per object from\n"
		"                         the object the agent has to the file's, as JSON with\n"
		"                         sorted keys; exit 0 no differences, 1 differences,\n"
		"                         2 an error, 3 no agent (as kubectl diff)\n"
		"  delete -f FILE [--ignore-not-found]\n"
		"                         delete the objects FILE names\n"
		"  get namespaces         NAME LABELS                         (also: namespace, ns)\n"
		"  get pods               NAMESPACE NAME IP IDENTITY LOCAL LABELS  (also: pod, po)\n"
		"  get policies           KIND NAMESPACE NAME TYPES MODE SELECTED STATUS\n"
		"                         (also: policy, netpol, netpols, networkpolicies);\n"
		"                         SELECTED: the pods a policy selects, the first 1000\n"
		"                         and \"… (N in all)\" when there are more\n"
		"  get identities         ID NAMESPACE LABELS PODS     (also: identity, id, ids)\n"
		"  get nodes              NAME POD-CIDR ADDRESS STATE  (also: node, no)\n"
		"  get services           NAMESPACE NAME TYPE FRONTENDS BACKENDS TRAFFIC AFFINITY\n"
		"                         TRANSLATED STATUS (also: service, svc): each Service's\n"
		"                         frontends (a nodePort at this node's address), backends\n"
		"                         (ready, serving or terminating; local or remote),\n"
		"                         traffic policies, affinity, and whether this node\n"
		"                         translates it (yes) or leaves it to kube-proxy (no)\n"
		"  get prefilters         NAME ENTRIES APPLIED DROPPED-PACKETS NODE-SELECTOR-MATCH\n"
		"                         STATUS (also: prefilter, pf): the SluicePrefilters, whether\n"
		"                         each applies on this node, entries left out and why;\n"
		"                         -o json adds each deny entry's drops (packets, bytes)\n"
		"  get prefilter NAME     one SluicePrefilter and each deny entry's drops\n"
		"  policy explain --from SRC --to DST --port PORT[/PROTOCOL]\n"
		"  policy explain --from SRC --to ADDRESS:PORT[/PROTOCOL]\n"
		"                         would the agent let SRC reach DST? SRC and DST are\n"
		"                         NAMESPACE/POD or an IPv4 address; PROTOCOL is TCP (the\n"
		"                         default), UDP, SCTP, or ICMP with PORT the ICMP type.\n"
		"                         Prints ALLOWED or DENIED, the agent's summary and the\n"
		"                         egress and ingress verdicts with their reasons. When\n"
		"                         DST and the port are a Service frontend (a clusterIP,\n"
		"                         externalIP, load-balancer address, or this node's\n"
		"                         address and a nodePort): the backends a new flow\n"
		"                         chooses from and how, and the verdict for each;\n"
		"                         ALLOWED when every one is allowed\n"
		"\n"
		"This tool:\n"
		"  version [-o json]      client and agent versions, the agent's BPF objects, its\n"
		"                         pinned maps and their layout versions (_vN), and the\n"
		"                         kernel features it found (BTF, tcx, XDP per device)\n"
		"  completion bash|zsh    a completion script: commands, kinds, flags, and object\n"
		"                         names from the agent (source <(sluicectl completion bash))\n"
		"\n"
		"Options:\n"
		"  --socket PATH          agent socket (default: $SLUICE_SOCKET, else %s)\n"
		"  -f, --filename FILE    apply/delete: a manifest; repeat for several; - reads stdin\n"
		"  --ignore-not-found     delete: an object that does not exist is not an error\n"
		"  --validate=MODE        apply: a field the object's kind does not have (a typo:\n"
		"                         spec.ingres) is an error that applies nothing (strict,\n"
		"                         the default; also true), a warning on stderr (warn), or\n"
		"                         nothing (ignore; also false); as kubectl's --validate\n"
		"  -o, --output json      print the agent's JSON result instead of text\n"
		"  --limit N              top: rows (default 20)\n"
		"  --chunk-size N         get: fetch N objects per request (default %d) and print\n"
		"                         each page as it comes, one table (columns aligned\n"
		"                         within a page) or one JSON list; 0: everything in one\n"
		"                         answer, which fails past the API's %u MiB\n"
		"  -h, --help             this help\n"
		"\n"
		"Manifests are YAML (documents separated by ---) or JSON, one Kubernetes object\n"
		"per document; a kind: List contributes its items. Plain YAML values are typed as\n"
		"kubectl types them: port: 80 is a number, port: \"80\" and port: http are strings,\n"
		"true/false/yes/no/on/off are booleans, null/~/nothing is null. apply and delete are\n"
		"all or nothing: if a file cannot be read or parsed, nothing is sent to the agent,\n"
		"and if the agent rejects one object, nothing changes.\n"
		"\n"
		"Exit status:\n"
		"  0  success; for policy explain: the traffic is allowed\n"
		"  1  the agent answered with an error, or a manifest cannot be read or parsed;\n"
		"     for policy explain: the traffic is denied (an error also says why on stderr)\n"
		"  2  usage error\n"
		"  3  the agent cannot be reached\n"
		"\n"
		"Examples:\n"
		"  sluicectl apply -f namespaces.yaml -f policies.yaml\n"
		"  cat policy.json | sluicectl apply -f -\n"
		"  sluicectl delete -f policies.yaml --ignore-not-found\n"
		"  sluicectl get pods -o json\n"
		"  sluicectl observe --from-pod shop/frontend --to-pod shop/db-0 --last 5\n"
		"  sluicectl observe --verdict DROPPED --namespace shop --follow\n"
		"  sluicectl top pods\n"
		"  sluicectl policy explain --from shop/frontend --to shop/db-0 --port 5432\n"
		"  sluicectl policy explain --from 10.244.1.7 --to shop/db-0 --port 8/ICMP\n"
		"  sluicectl policy explain --from shop/frontend --to 10.96.0.20:5432/TCP\n",
		SLUICE_DEFAULT_SOCKET, CHUNK_DEFAULT, SLUICE_API_MAX_MSG >> 20);
}

static bool is_one_of(const char *s, const char *const *names)
{
	for (; *names; names++)
		if (!strcmp(s, *names))
			return true;
	return false;
}

/* Returns 0 or EXIT_USAGE (with the reason on stderr). */
static int parse_command(int argc, char **argv, struct cmd *c)
{
	static const struct {
		const char *what;
		const char *names[7]; /* NULL-terminated */
		int (*print)(const json_t *);
	} gets[] = {
		{ "namespaces", { "namespaces", "namespace", "ns" }, print_namespaces },
		{ "pods", { "pods", "pod", "po" }, print_pods },
		{ "policies", { "policies", "policy", "netpol", "netpols", "networkpolicies",
				"networkpolicy" }, print_policies },
		{ "identities", { "identities", "identity", "id", "ids" }, print_identities },
		{ "nodes", { "nodes", "node", "no" }, print_nodes },
		{ "services", { "services", "service", "svc" }, print_services },
		{ "prefilters", { "prefilters", "prefilter", "sluiceprefilters", "sluiceprefilter",
				  "pf" }, print_prefilters },
	};
	static const char *const endpoints[] = { "endpoints", "endpoint", "ep", NULL };
	size_t i;

	memset(c, 0, sizeof(*c));
	if (!argc) {
		fprintf(stderr, "sluicectl: no command; see sluicectl --help\n");
		return EXIT_USAGE;
	}
	if (argc == 1 && !strcmp(argv[0], "status")) {
		*c = (struct cmd){ CMD_PLAIN, "status", NULL, print_status, NULL };
	} else if (argc == 1 && !strcmp(argv[0], "metrics")) {
		*c = (struct cmd){ CMD_PLAIN, "metrics", NULL, print_metrics, NULL };
	} else if (argc == 1 && !strcmp(argv[0], "observe")) {
		*c = (struct cmd){ CMD_OBSERVE, "flows", NULL, NULL, NULL };
	} else if (argc == 2 && !strcmp(argv[0], "top") &&
		   (!strcmp(argv[1], "flows") || !strcmp(argv[1], "pods"))) {
		*c = (struct cmd){ CMD_TOP, "top", NULL, NULL, NULL };
		c->name = argv[1];
	} else if (argc >= 1 && !strcmp(argv[0], "top")) {
		fprintf(stderr, "sluicectl: top takes flows or pods\n");
		return EXIT_USAGE;
	} else if (argc == 1 && !strcmp(argv[0], "apply")) {
		*c = (struct cmd){ CMD_APPLY, "apply", NULL, print_changes, NULL };
	} else if (argc == 1 && !strcmp(argv[0], "diff")) {
		*c = (struct cmd){ CMD_DIFF, "apply", NULL, NULL, NULL };
	} else if (argc == 1 && !strcmp(argv[0], "version")) {
		*c = (struct cmd){ CMD_VERSION, "version", NULL, NULL, NULL };
	} else if (argc == 2 && !strcmp(argv[0], "completion")) {
		*c = (struct cmd){ CMD_COMPLETION, "completion", NULL, NULL, argv[1] };
	} else if (argc == 1 && !strcmp(argv[0], "completion")) {
		fprintf(stderr, "sluicectl: completion takes bash or zsh\n");
		return EXIT_USAGE;
	} else if (argc == 1 && !strcmp(argv[0], "delete")) {
		*c = (struct cmd){ CMD_DELETE, "delete", NULL, print_changes, NULL };
	} else if (argc == 2 && !strcmp(argv[0], "policy") && !strcmp(argv[1], "explain")) {
		*c = (struct cmd){ CMD_EXPLAIN, "explain", NULL, print_explain, NULL };
	} else if (argc == 3 && !strcmp(argv[0], "get") &&
		   is_one_of(argv[1], (const char *const[]){ "prefilters", "prefilter",
							      "sluiceprefilters", "sluiceprefilter",
							      "pf", NULL })) {
		*c = (struct cmd){ CMD_PLAIN, "get", "prefilters", print_prefilter, argv[2] };
	} else if (argc == 2 && !strcmp(argv[0], "get")) {
		if (is_one_of(argv[1], endpoints))
			*c = (struct cmd){ CMD_PLAIN, "list", NULL, print_endpoints, NULL };
		for (i = 0; i < sizeof(gets) / sizeof(gets[0]); i++)
			if (is_one_of(argv[1], gets[i].names))
				*c = (struct cmd){ CMD_PLAIN, "get", gets[i].what, gets[i].print, NULL };
		if (!c->op) {
			fprintf(stderr,
				"sluicectl: get takes endpoints, namespaces, pods, policies, "
				"identities, nodes, services or prefilters, not '%s'\n", argv[1]);
			return EXIT_USAGE;
		}
	} else {
		fprintf(stderr, "sluicectl: unknown command '%s'; see sluicectl --help\n",
			argv[0]);
		return EXIT_USAGE;
	}
	return 0;
}

/* Options that belong to one command only. */
static int check_options(const struct cmd *c, const struct opts *o)
{
	if ((c->kind == CMD_APPLY || c->kind == CMD_DELETE || c->kind == CMD_DIFF) && !o->nfiles) {
		fprintf(stderr, "sluicectl: %s needs -f FILE (- for standard input)\n",
			c->kind == CMD_DIFF ? "diff" : c->op);
		return EXIT_USAGE;
	}
	if (c->kind != CMD_APPLY && c->kind != CMD_DELETE && c->kind != CMD_DIFF && o->nfiles) {
		fprintf(stderr, "sluicectl: -f is for apply, delete and diff\n");
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
	if (c->kind == CMD_DIFF && o->json_out) {
		fprintf(stderr, "sluicectl: diff prints a unified diff; -o is not for it\n");
		return EXIT_USAGE;
	}
	if (c->kind != CMD_DELETE && o->ignore_not_found) {
		fprintf(stderr, "sluicectl: --ignore-not-found is for delete\n");
		return EXIT_USAGE;
	}
	if (o->chunk_given && !(c->kind == CMD_PLAIN && c->what)) {
		fprintf(stderr, "sluicectl: --chunk-size is for get of objects (namespaces, pods, "
			"policies, identities, nodes, services)\n");
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

int main(int argc, char **argv)
{
	enum { OPT_IGNORE = 256, OPT_FROM, OPT_TO, OPT_PORT, OPT_CHUNK, OPT_FILTER, OPT_SINCE,
	       OPT_LAST, OPT_LIMIT, OPT_VALIDATE, OPT_DRY_RUN };
	/* observe's filters: option -> the request's member. */
	static const struct {
		const char *opt, *member;
	} filter_opts[] = {
		{ "from-pod", "fromPod" }, { "to-pod", "toPod" }, { "pod", "pod" },
		{ "namespace", "namespace" }, { "from-ip", "fromIP" }, { "to-ip", "toIP" },
		{ "label", "label" }, { "verdict", "verdict" }, { "drop-reason", "dropReason" },
		{ "protocol", "protocol" }, { "policy", "policy" }, { "service", "service" },
	};
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "output", required_argument, NULL, 'o' },
		{ "filename", required_argument, NULL, 'f' },
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
		{ "namespace", required_argument, NULL, OPT_FILTER },
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
	struct opts o = { .socket_path = getenv("SLUICE_SOCKET"), .chunk_size = CHUNK_DEFAULT };
	char *end;
	int idx;
	double since;
	long long n;
	/* --port is policy explain's and observe's: kept until the command is known. */
	const char **ports = NULL;
	size_t nports = 0;
	json_t *req = NULL, *resp = NULL, *result, *warning;
	bool stdin_taken = false;
	size_t reqlen, nwarn;
	struct cmd cmd;
	int c, ret = EXIT_USAGE;
	char err[512];

	if (!o.socket_path || !*o.socket_path)
		o.socket_path = SLUICE_DEFAULT_SOCKET;
	o.files = calloc((size_t)argc, sizeof(*o.files));
	if (!o.files) {
		fprintf(stderr, "sluicectl: out of memory\n");
		return EXIT_FAIL;
	}
	o.filters = json_object();
	ports = calloc((size_t)argc, sizeof(*ports));
	if (!o.filters || !ports) {
		fprintf(stderr, "sluicectl: out of memory\n");
		ret = EXIT_FAIL;
		goto cleanup;
	}
	while ((c = getopt_long(argc, argv, "o:f:hF", longopts, &idx)) != -1) {
		switch (c) {
		case 's': o.socket_path = optarg; break;
		case 'o':
			if (strcmp(optarg, "json")) {
				fprintf(stderr, "sluicectl: -o takes 'json', not '%s'\n", optarg);
				goto cleanup;
			}
			o.json_out = true;
			break;
		case 'f':
			if (!strcmp(optarg, "-")) {
				if (stdin_taken) {
					fprintf(stderr, "sluicectl: -f - (standard input) can be given once\n");
					goto cleanup;
				}
				stdin_taken = true;
			}
			o.files[o.nfiles++] = optarg;
			break;
		case OPT_IGNORE: o.ignore_not_found = true; break;
		case OPT_VALIDATE:
			/* --validate alone is strict, as kubectl's */
			if (ks_mode_parse(optarg ? optarg : "strict", &o.validate)) {
				fprintf(stderr, "sluicectl: --validate takes strict, warn or ignore "
					"(true: strict, false: ignore), not '%s'\n", optarg);
				goto cleanup;
			}
			o.validate_given = true;
			break;
		case OPT_DRY_RUN:
			if (dry_run_parse(optarg, &o.dry_run)) {
				fprintf(stderr, "sluicectl: --dry-run takes client, server or none, "
					"not '%s'\n", optarg);
				goto cleanup;
			}
			o.dry_run_given = true;
			break;
		case OPT_FROM: o.from = optarg; break;
		case OPT_TO: o.to = optarg; break;
		case OPT_PORT:
			o.port = optarg;
			ports[nports++] = optarg;
			break;
		case OPT_FILTER:
			for (size_t k = 0; k < sizeof(filter_opts) / sizeof(filter_opts[0]); k++)
				if (!strcmp(longopts[idx].name, filter_opts[k].opt) &&
				    add_filter(o.filters, filter_opts[k].member, optarg)) {
					fprintf(stderr, "sluicectl: out of memory\n");
					ret = EXIT_FAIL;
					goto cleanup;
				}
			break;
		case OPT_SINCE:
			since = parse_duration(optarg);
			if (since <= 0) {
				fprintf(stderr, "sluicectl: --since takes a duration (30s, 5m, 2h, "
					"1d), not '%s'\n", optarg);
				goto cleanup;
			}
			json_object_set_new(o.filters, "since", json_real(since));
			break;
		case OPT_LAST:
		case OPT_LIMIT:
			errno = 0;
			n = strtoll(optarg, &end, 10);
			if (errno || end == optarg || *end || n < 1 || n > 100000000) {
				fprintf(stderr, "sluicectl: --%s takes a number above 0, not '%s'\n",
					c == OPT_LAST ? "last" : "limit", optarg);
				goto cleanup;
			}
			if (c == OPT_LAST)
				json_object_set_new(o.filters, "last", json_integer(n));
			else
				o.limit = (long)n;
			break;
		case 'F': o.follow = true; break;
		case OPT_CHUNK:
			errno = 0;
			o.chunk_size = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || o.chunk_size < 0 ||
			    o.chunk_size > 1000000) {
				fprintf(stderr, "sluicectl: --chunk-size takes a number of objects "
					"from 0 (all in one answer) to 1000000, not '%s'\n", optarg);
				goto cleanup;
			}
			o.chunk_given = true;
			break;
		case 'h':
			usage(stdout);
			ret = EXIT_OK;
			goto cleanup;
		default:
			usage(stderr);
			goto cleanup;
		}
	}
	ret = parse_command(argc - optind, argv + optind, &cmd);
	/* observe: --port is a filter (repeatable), not explain's. */
	if (!ret && cmd.kind == CMD_OBSERVE && nports) {
		for (size_t k = 0; k < nports; k++)
			add_filter(o.filters, "port", ports[k]);
		o.port = NULL;
	}
	if (!ret)
		ret = check_options(&cmd, &o);
	if (ret)
		goto cleanup;

	if (cmd.kind == CMD_COMPLETION) {
		ret = run_completion(cmd.name);
		goto cleanup;
	}
	if (cmd.kind == CMD_VERSION) {
		ret = run_version(&o);
		goto cleanup;
	}
	req = json_pack("{s:s}", "op", cmd.op);
	if (!req || (cmd.what && json_object_set_new(req, "what", json_string(cmd.what))) ||
	    (cmd.name && json_object_set_new(req, "name", json_string(cmd.name))) ||
	    (cmd.what && !strcmp(cmd.what, "prefilters") && o.json_out &&
	     json_object_set_new(req, "detail", json_true()))) {
		fprintf(stderr, "sluicectl: out of memory\n");
		ret = EXIT_FAIL;
		goto cleanup;
	}
	if (cmd.kind == CMD_OBSERVE) {
		ret = observe(&o, req);
		goto cleanup;
	}
	if (cmd.kind == CMD_TOP) {
		json_object_set_new(req, "what", json_string(cmd.name));
		json_object_del(req, "name");
		if (o.limit)
			json_object_set_new(req, "limit", json_integer(o.limit));
	}
	if (cmd.kind == CMD_APPLY || cmd.kind == CMD_DELETE || cmd.kind == CMD_DIFF)
		ret = build_objects_request(&cmd, &o, req);
	if (!ret && cmd.kind == CMD_DIFF) {
		if (json_object_set_new(req, "validate", json_string(ks_mode_name(o.validate)))) {
			fprintf(stderr, "sluicectl: out of memory\n");
			ret = EXIT_DIFF_ERROR;
		} else {
			ret = run_diff(&o, req);
		}
		goto cleanup;
	}
	if (!ret && cmd.kind == CMD_APPLY && o.dry_run == DRY_CLIENT) {
		ret = apply_client_dry_run(&o, req);
		goto cleanup;
	}
	if (!ret && cmd.kind == CMD_APPLY && o.dry_run == DRY_SERVER) {
		cmd.print = print_server_dry_run;
		if (json_object_set_new(req, "dryRun", json_string("server"))) {
			fprintf(stderr, "sluicectl: out of memory\n");
			ret = EXIT_FAIL;
		}
	}
	else if (cmd.kind == CMD_EXPLAIN)
		ret = build_explain_request(&o, req);
	if (ret)
		goto cleanup;
	reqlen = json_dumpb(req, NULL, 0, JSON_COMPACT);
	if (reqlen > SLUICE_API_MAX_MSG) {
		fprintf(stderr, "sluicectl: the request would be %zu bytes, more than the agent's "
			"limit of %u MiB; %s the files in several runs\n", reqlen,
			SLUICE_API_MAX_MSG >> 20, cmd.op);
		ret = EXIT_FAIL;
		goto cleanup;
	}

	/* Prefilters come in one answer: a node applies at most 64. */
	if (cmd.kind == CMD_PLAIN && cmd.what && o.chunk_size && strcmp(cmd.what, "prefilters")) {
		ret = get_pages(&cmd, &o, req);
		goto cleanup;
	}
	if (api_call(o.socket_path, req, &resp,
		     cmd.kind == CMD_APPLY || cmd.kind == CMD_DELETE ? TIMEOUT_OBJECTS_MS : TIMEOUT_MS,
		     err, sizeof(err))) {
		fprintf(stderr, "sluicectl: %s\n", err);
		ret = EXIT_UNREACHABLE;
		goto cleanup;
	}
	if (!json_is_true(json_object_get(resp, "ok"))) {
		if (o.json_out) {
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
	if (cmd.kind == CMD_EXPLAIN && !json_is_boolean(json_object_get(result, "allowed"))) {
		fprintf(stderr, "sluicectl: the agent's explain answer has no 'allowed' verdict\n");
		ret = EXIT_FAIL;
		goto cleanup;
	}
	if (o.json_out) {
		json_dumpf(result, stdout, JSON_INDENT(2));
		putchar('\n');
	} else if (cmd.kind == CMD_TOP) {
		print_top(cmd.name, result);
	} else if (cmd.print(result)) {
		fprintf(stderr, "sluicectl: out of memory\n");
		ret = EXIT_FAIL;
		goto cleanup;
	}
	ret = EXIT_OK;
	if (cmd.kind == CMD_EXPLAIN && !json_is_true(json_object_get(result, "allowed")))
		ret = EXIT_FAIL;
cleanup:
	json_decref(req);
	json_decref(resp);
	json_decref(o.filters);
	free(ports);
	free(o.files);
	return ret;
}
