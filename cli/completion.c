// SPDX-License-Identifier: Apache-2.0
/*
 * sluicectl completion bash|zsh: a completion script for sluicectl's
 * commands, kinds and flags; object names come from the agent when a name
 * is completed (the script runs `sluicectl get KIND -o name`, with the
 * --socket given on the line). zsh loads the bash function through
 * bashcompinit. Install: docs/INSTALL.md.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* The script, in two parts around the lists made from sluicectl's own
 * tables (the verbs of main.c, the kinds of kinds.c). */
static const char completion_bash_head[] =
	"# sluicectl completion for bash (sluicectl completion bash); source it, or put it\n"
	"# in /etc/bash_completion.d/sluicectl.\n"
	"_sluicectl_names() { # KIND: the agent's objects of KIND, by name\n"
	"\t# the line's --socket and namespace (-n, -A) apply to the query\n"
	"\tlocal i args=()\n"
	"\tfor ((i = 1; i < ${#COMP_WORDS[@]} - 1; i++)); do\n"
	"\t\tcase ${COMP_WORDS[i]} in\n"
	"\t\t--socket | -n | --namespace) args+=(\"${COMP_WORDS[i]}\" \"${COMP_WORDS[i + 1]}\") ;;\n"
	"\t\t--socket=* | --namespace=* | -A | --all-namespaces) args+=(\"${COMP_WORDS[i]}\") ;;\n"
	"\t\tesac\n"
	"\tdone\n"
	"\t\"${SLUICECTL:-${COMP_WORDS[0]}}\" \"${args[@]}\" get \"$1\" -o name 2>/dev/null |\n"
	"\t\tsed 's|^[^/]*/||'\n"
	"}\n"
	"\n"
	"_sluicectl() {\n"
	"\tlocal cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}\n";

static const char completion_bash_body[] =
	"\tlocal global='--socket --output -o --help'\n"
	"\tlocal filters='--from-pod --to-pod --pod --namespace --from-ip --to-ip --label --verdict --drop-reason --protocol --port --policy --service --since --last --follow'\n"
	"\tlocal words=() i w skip=0 flags\n"
	"\tCOMPREPLY=()\n"
	"\tcase $prev in\n"
	"\t-f | --filename | --socket) COMPREPLY=($(compgen -f -- \"$cur\")); return ;;\n"
	"\t-o | --output) COMPREPLY=($(compgen -W 'json name wide yaml' -- \"$cur\")); return ;;\n"
	"\t--from | --to | --port | --chunk-size | --limit | --since | --last | --from-pod | --to-pod | --pod | --namespace | -n | --from-ip | --to-ip | --label | -l | --selector | --verdict | --drop-reason | --protocol | --policy | --service | --node) return ;;\n"
	"\tesac\n"
	"\t# the command's words so far, options and their values left out\n"
	"\tfor ((i = 1; i < COMP_CWORD; i++)); do\n"
	"\t\tw=${COMP_WORDS[i]}\n"
	"\t\tif ((skip)); then skip=0; continue; fi\n"
	"\t\tcase $w in\n"
	"\t\t-f | --filename | --socket | -o | --output | --from | --to | --port | --chunk-size | --limit | --since | --last | --from-pod | --to-pod | --pod | --namespace | -n | --from-ip | --to-ip | --label | -l | --selector | --verdict | --drop-reason | --protocol | --policy | --service) skip=1 ;;\n"
	"\t\t-*) ;;\n"
	"\t\t*) words+=(\"$w\") ;;\n"
	"\t\tesac\n"
	"\tdone\n"
	"\tcase ${words[0]} in\n"
	"\tapply) flags='-f --filename --validate= --dry-run=client --dry-run=server --dry-run=none' ;;\n"
	"\tdiff) flags='-f --filename --validate=' ;;\n"
	"\tdelete) flags='-f --filename --ignore-not-found -n --namespace -l --selector' ;;\n"
	"\tget | describe) flags='--chunk-size -n --namespace -l --selector -A --all-namespaces --no-headers -w --watch' ;;\n"
	"\tobserve) flags=$filters ;;\n"
	"\ttop) flags='--limit' ;;\n"
	"\tpolicy) flags='--from --to --port' ;;\n"
	"\t*) flags='' ;;\n"
	"\tesac\n"
	"\tif [[ $cur == -* ]]; then\n"
	"\t\tCOMPREPLY=($(compgen -W \"$flags $global\" -- \"$cur\"))\n"
	"\t\t[[ ${COMPREPLY[0]} == *= ]] && compopt -o nospace 2>/dev/null\n"
	"\t\treturn\n"
	"\tfi\n"
	"\tcase ${#words[@]}:${words[0]} in\n"
	"\t0:*) COMPREPLY=($(compgen -W \"$commands\" -- \"$cur\")) ;;\n"
	"\t1:get | 1:describe | 1:delete) COMPREPLY=($(compgen -W \"$kinds\" -- \"$cur\")) ;;\n"
	"\t2:get | 2:describe | 2:delete)\n"
	"\t\tCOMPREPLY=($(compgen -W \"$(_sluicectl_names \"${words[1]}\")\" -- \"$cur\")) ;;\n"
	"\t1:top) COMPREPLY=($(compgen -W 'flows pods' -- \"$cur\")) ;;\n"
	"\t1:policy) COMPREPLY=($(compgen -W 'explain' -- \"$cur\")) ;;\n"
	"\t1:completion) COMPREPLY=($(compgen -W 'bash zsh' -- \"$cur\")) ;;\n"
	"\tesac\n"
	"}\n"
	"complete -F _sluicectl sluicectl\n";

/* The kinds' names of kind_list(): each word before " (". */
static void print_kinds(void)
{
	const char *list = kind_list(), *p;

	for (p = strstr(list, " ("); p; p = strstr(p + 2, " (")) {
		const char *w = p;

		while (w > list && w[-1] != ' ')
			w--;
		printf("%s%.*s", w == list ? "" : " ", (int)(p - w), w);
	}
}

static void print_bash(void)
{
	fputs(completion_bash_head, stdout);
	printf("\tlocal commands='%s'\n\tlocal kinds='", command_names());
	print_kinds();
	printf("'\n");
	fputs(completion_bash_body, stdout);
}

const char help_completion[] =
	"Usage: sluicectl completion bash|zsh\n"
	"\n"
	"Print a completion script: commands, kinds, flags, and object names asked of the\n"
	"agent as you complete them (sluicectl get KIND -o name, with the line's --socket\n"
	"and -n).\n"
	"\n"
	"  bash: source <(sluicectl completion bash), or save it as\n"
	"        /etc/bash_completion.d/sluicectl\n"
	"  zsh:  sluicectl completion zsh > \"${fpath[1]}/_sluicectl\" (it runs the bash\n"
	"        completion through bashcompinit)\n";

static const char completion_zsh_head[] =
	"#compdef sluicectl\n"
	"# sluicectl completion for zsh (sluicectl completion zsh): put it in a directory\n"
	"# of $fpath as _sluicectl, or source it. It runs the bash completion through\n"
	"# zsh's bashcompinit.\n"
	"autoload -U +X compinit && compinit\n"
	"autoload -U +X bashcompinit && bashcompinit\n";

int run_completion(const struct cmd *c, struct opts *o)
{
	const char *shell = c->name;

	(void)o;
	if (!strcmp(shell, "bash")) {
		print_bash();
		return EXIT_OK;
	}
	if (!strcmp(shell, "zsh")) {
		fputs(completion_zsh_head, stdout);
		print_bash();
		return EXIT_OK;
	}
	fprintf(stderr, "sluicectl: completion takes bash or zsh, not '%s'\n", shell);
	return EXIT_USAGE;
}
