# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
#
# What the Services e2e suites (tests/e2e/services*.sh) share: the
# preamble checks, node metrics, the kube-proxy check, --who probes, and
# the two-node setup. Sourced after tests/lib/common.sh and
# tests/multinode/lib.sh. The setup functions use the suite's globals:
# P (prefix of every name), MODE, NS (the namespace), PODS, the
# associative array IP (filled here), AGENT (the agents' pids, set here),
# and the functions node_of POD and app_of POD; the probe functions use N (probes per check) and TIMEOUT.

# svc_need_bins: exits 1 unless the agent, CNI plugin, sluicectl and probe are built.
svc_need_bins() {
	local bin
	for bin in sluice-agent sluice-cni sluicectl sluice-probe; do
		[ -x "$BUILD/$bin" ] || { log "$BUILD/$bin missing (run make)"; exit 1; }
	done
}

# svc_need TOOL...: exits 1 unless every TOOL is on PATH ("TOOL missing").
svc_need() {
	local tool
	for tool in "$@"; do
		command -v "$tool" >/dev/null || { log "$tool missing"; exit 1; }
	done
}

# svc_need_flag FLAG WHAT: exits 1, saying "no WHAT in this build", unless
# sluice-agent --help names FLAG.
svc_need_flag() {
	"$BUILD/sluice-agent" --help 2>&1 | grep -q -- "$1" && return 0
	log "$BUILD/sluice-agent has no $1: no $2 in this build"
	exit 1
}

# svc_metric P N REASON DIRECTION: prints the packets node N (of prefix P)
# counted for REASON in DIRECTION (0 when none).
svc_metric() {
	mn_ctl "$1" "$2" metrics -o json | jq -r --arg r "$3" --arg d "$4" \
		'[.metrics[] | select(.reason == $r and .direction == $d) | .packets] | add // 0'
}

# svc_no_kube_proxy NETNS: true when NETNS holds no iptables rule of
# kube-proxy's (no KUBE- chain), or when there is no iptables-save at all.
svc_no_kube_proxy() {
	command -v iptables-save >/dev/null || return 0
	! ip netns exec "$1" iptables-save 2>/dev/null | grep -q 'KUBE-'
}

# svc_who NETNS PROTO ADDR PORT: N probes from NETNS with --who, each
# waiting TIMEOUT ms (1000 by default); prints one line per probe
# ("peer=... server=... client=..."), "fail" for one that got no answer.
svc_who() {
	local ns=$1 proto=$2 addr=$3 port=$4 _
	for _ in $(seq "$N"); do
		probe "$ns" "$proto" "$addr" "$port" --timeout "${TIMEOUT:-1000}" --who 2>/dev/null ||
			echo fail
	done
}

# svc_refused NETNS PROTO ADDR PORT: true when none of 6 probes from NETNS
# (500 ms each) gets an answer; otherwise prints them, indented.
svc_refused() {
	local out
	out=$(N=6 TIMEOUT=500 svc_who "$@")
	[ "$(grep -c '^fail$' <<<"$out")" = 6 ] && return 0
	printf '       %s\n' "${out//$'\n'/$'\n       '}"
	return 1
}

# svc_start_agent N ARGS: starts node N's agent with MN_AGENT_ARGS=ARGS
# (exits 1 when it does not start) and records its pid in AGENT[N].
svc_start_agent() {
	MN_AGENT_ARGS=$2 mn_start_agent "$P" "$1" "$MODE" ||
		{ log "node$1's agent did not start"; exit 1; }
	# shellcheck disable=SC2034 # AGENT is the suite's
	AGENT["$1"]=$MN_AGENT_PID
}

# svc_start_agents ARGS: svc_start_agent N ARGS for both nodes, each
# followed by the check "nodeN: no kube-proxy rules".
svc_start_agents() {
	local n
	for n in 1 2; do
		svc_start_agent "$n" "$1"
		check "node$n: no kube-proxy rules" svc_no_kube_proxy "$P-node$n"
	done
}

# svc_apply_nodes: checks that both agents take the two Node objects and
# Namespace NS.
svc_apply_nodes() {
	local n
	check "Node objects and Namespace $NS applied to both agents" mn_apply_all "$P" 2 < <(
		{
			jq -cn --arg ns "$NS" '{apiVersion: "v1", kind: "Namespace", metadata: {name: $ns}}'
			for n in 1 2; do mn_node_json "$n"; done
		} | mn_list)
}

# svc_add_pods [SERVE_ARGS...]: ADDs every pod of PODS (namespace P-POD) on
# its node, records its address in IP (exits 1 without one), and, given
# SERVE_ARGS, starts `serve SERVE_ARGS --name POD` in each pod whose app
# is be.
svc_add_pods() {
	local pod n out
	for pod in "${PODS[@]}"; do
		n=$(node_of "$pod")
		netns_add "$P-$pod"
		out=$(mn_pod_add "$P" "$n" "$pod" "$NS")
		IP["$pod"]=$(jq -r '.ips[0].address // empty' <<<"$out" 2>/dev/null | cut -d/ -f1)
		[ -n "${IP[$pod]}" ] || { log "no address for $pod: $out"; exit 1; }
		if [ $# -gt 0 ] && [ "$(app_of "$pod")" = be ]; then
			serve "$P-$pod" "$@" --name "$pod" || { log "servers in $pod"; exit 1; }
		fi
	done
}

# svc_apply_pods: checks that both agents take the Pod objects of PODS
# (node, address from IP, label app=app_of POD).
svc_apply_pods() {
	local pod
	check "the Pod objects applied to both agents" mn_apply_all "$P" 2 < <(
		for pod in "${PODS[@]}"; do
			mn_pod_json "$NS" "$pod" "$(node_of "$pod")" "${IP[$pod]}" "$(app_of "$pod")"
		done | mn_list)
}
