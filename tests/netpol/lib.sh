# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
#
# The NetworkPolicy suite's world and vocabulary, after Kubernetes'
# test/e2e/network/netpol: one node (an agent in a node network namespace),
# namespaces x, y and z with pods a, b and c each, every pod serving TCP and
# UDP echo on ports 80 and 81, and the model objects (Namespaces, Pods)
# applied through sluicectl. Scenarios (scenarios/NN-name.sh) are written
# with the helpers below, in upstream's terms:
#
#   apply / delete <<EOF ... EOF      sluicectl apply|delete -f - (YAML)
#   set_pod_labels NS POD K=V...      re-apply a Pod with exactly these labels
#   set_namespace_labels NS K=V...    the same for a Namespace
#   ip_of NS/POD, cidr_of IP PREFIX   addresses for ipBlock peers
#   reach_new true|false              a fresh 9x9 expectation, every cell set
#   expect FROM TO true|false         one cell (FROM, TO: x/a)
#   expect_all_ingress POD BOOL       every cell into POD
#   expect_all_egress POD BOOL        every cell out of POD
#   expect_peer FROM TO BOOL          cells matching glob patterns: 'x/*', '*/a', '*'
#   validate tcp|udp PORT             probe all 81 pairs at once and compare
#
# Write the namespace y as "y" in YAML: YAML 1.1 (libyaml here, go-yaml in
# kubectl) reads a bare y as the boolean true.
#
# As upstream does, a pod's traffic to itself is probed but not judged
# (kubernetes#95879: loopback under policy is not defined), and a matrix
# that does not match is probed once more before it counts as wrong.
# Sourced by run.sh after tests/lib/common.sh.

NP_NAMESPACES=(x y z)
NP_PODS=(x/a x/b x/c y/a y/b y/c z/a z/b z/c)
NP_PORTS=(80 81)
PROBE_TIMEOUT_MS=${PROBE_TIMEOUT_MS:-500}

# ---- the node and its pods ----------------------------------------------

np_ctl() { "$BUILD/sluicectl" --socket "$SOCK" "$@"; }

np_conf() {
	printf '{"cniVersion":"1.1.0","name":"sluice","type":"sluice-cni","socket":"%s"}' "$SOCK"
}

np_netns() { printf '%s-%s-%s' "$ID" "${1%/*}" "${1#*/}"; }
np_container_id() { printf 'c%s%s%s' "$ID" "${1%/*}" "${1#*/}"; }

# np_cni COMMAND NS/POD: the real plugin, as a runtime runs it for pod NS/POD
# (common.sh's cni() names the pod after its container).
np_cni() {
	local cmd=$1 pod=$2
	CNI_COMMAND=$cmd CNI_CONTAINERID=$(np_container_id "$pod") \
		CNI_NETNS=/run/netns/$(np_netns "$pod") CNI_IFNAME=eth0 CNI_PATH=$BUILD \
		CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=${pod%/*};K8S_POD_NAME=${pod#*/}" \
		"$BUILD/sluice-cni" <<<"$(np_conf)"
}

# np_serve NS/POD: echo servers on TCP and UDP 80 and 81 inside the pod.
np_serve() {
	local ns out
	ns=$(np_netns "$1")
	out=$DIR/serve-${1/\//-}.log
	ip netns exec "$ns" "$BUILD/sluice-probe" serve --tcp 80 --tcp 81 --udp 80 --udp 81 \
		>"$out" 2>&1 &
	CLEANUP_PIDS+=($!)
	for _ in $(seq 100); do
		grep -q ready "$out" && return 0
		sleep 0.02
	done
	cat "$out" >&2
	return 1
}

declare -A NP_IP=()

ip_of() {
	[ -n "${NP_IP[$1]:-}" ] || { echo "ip_of: no pod '$1'" >&2; return 1; }
	printf '%s' "${NP_IP[$1]}"
}

# cidr_of IP PREFIX: the network of that length holding IP ("0.0.0.0/4" for
# 10.252.0.5 and 4), as upstream's makeLargeCIDRForIP builds it.
cidr_of() {
	local a b c d n=$2 v
	IFS=. read -r a b c d <<<"$1"
	v=$(((a << 24 | b << 16 | c << 8 | d) & ((0xffffffff << (32 - n)) & 0xffffffff)))
	printf '%d.%d.%d.%d/%d' $((v >> 24 & 255)) $((v >> 16 & 255)) $((v >> 8 & 255)) \
		$((v & 255)) "$n"
}

# np_setup: node namespace, agent, nine pods through the real CNI plugin,
# echo servers, model objects. Sets NP_MODEL_APPLIED to 1 or 0.
np_setup() {
	local pod out
	netns_add "$NODE"
	start_agent "$NODE" "$CIDR" "$DIR" || return 1
	for pod in "${NP_PODS[@]}"; do
		netns_add "$(np_netns "$pod")"
		if ! out=$(np_cni ADD "$pod"); then
			log "CNI ADD of pod $pod failed: $out"
			return 1
		fi
		NP_IP[$pod]=$(jq -r '.ips[0].address // empty' <<<"$out" | cut -d/ -f1)
		[ -n "${NP_IP[$pod]}" ] || { log "CNI ADD of $pod gave no address: $out"; return 1; }
		np_serve "$pod" || { log "echo servers in pod $pod did not start"; return 1; }
	done
	# shellcheck disable=SC2034 # read by run.sh
	if out=$(np_model_json | np_ctl apply -f - 2>&1); then
		NP_MODEL_APPLIED=1
	else
		NP_MODEL_APPLIED=0
		log "the model objects (Namespaces, Pods) could not be applied: $out"
	fi
}

np_teardown() {
	local pod
	for pod in "${NP_PODS[@]}"; do
		np_cni DEL "$pod" >/dev/null 2>&1
	done
}

# ---- model objects --------------------------------------------------------

# np_namespace_json NS [LABELS_JSON]: a v1 Namespace. The default labels are
# upstream's model (ns: NAME) plus the name label the API server adds.
np_namespace_json() {
	local labels=${2:-$(jq -cn --arg n "$1" '{ns: $n, "kubernetes.io/metadata.name": $n}')}
	jq -cn --arg n "$1" --argjson l "$labels" \
		'{apiVersion: "v1", kind: "Namespace", metadata: {name: $n, labels: $l}}'
}

# np_pod_json NS/POD [LABELS_JSON]: a v1 Pod as upstream's model builds it:
# label pod: NAME, one container per port and protocol, the port named
# serve-PORT-PROTO (what named-port policies refer to).
np_pod_json() {
	local labels=${2:-$(jq -cn --arg p "${1#*/}" '{pod: $p}')} IFS=,
	jq -cn --arg ns "${1%/*}" --arg n "${1#*/}" --argjson l "$labels" \
		--argjson ports "[${NP_PORTS[*]}]" --argjson protos '["TCP","UDP"]' '
		{apiVersion: "v1", kind: "Pod",
		 metadata: {namespace: $ns, name: $n, labels: $l},
		 spec: {containers: [$ports[] as $p | $protos[] as $proto |
			{name: "cont-\($p)-\($proto | ascii_downcase)", image: "sluice-probe",
			 ports: [{containerPort: $p, protocol: $proto,
				  name: "serve-\($p)-\($proto | ascii_downcase)"}]}]}}'
}

np_model_json() {
	local ns pod
	{
		for ns in "${NP_NAMESPACES[@]}"; do np_namespace_json "$ns"; done
		for pod in "${NP_PODS[@]}"; do np_pod_json "$pod"; done
	} | jq -cs '{apiVersion: "v1", kind: "List", items: .}'
}

# np_reset: no policy left and every label as the model has it, so that the
# next scenario starts from the baseline.
np_reset() {
	local out list n
	if ! out=$(np_ctl get policies -A -o json 2>&1); then
		echo "reset: cannot list policies: $out"
		return 1
	fi
	list=$(jq -c '{apiVersion: "v1", kind: "List", items: [(.items // [])[] |
		{apiVersion: (if .kind == "NetworkPolicy" then "networking.k8s.io/v1"
			      else "sluice.io/v1alpha1" end),
		 kind, metadata: ({name} + (if .namespace then {namespace} else {} end))}]}' \
		<<<"$out") || { echo "reset: unexpected policy list: $out"; return 1; }
	n=$(jq '.items | length' <<<"$list")
	if [ "$n" -gt 0 ] && ! out=$(np_ctl delete -f - <<<"$list" 2>&1); then
		echo "reset: deleting $n policies failed: $out"
		return 1
	fi
	if ! out=$(np_model_json | np_ctl apply -f - 2>&1); then
		echo "reset: re-applying the model objects failed: $out"
		return 1
	fi
	out=$(np_ctl get policies -A -o json 2>&1)
	if [ "$(jq '.items // [] | length' <<<"$out" 2>/dev/null)" != 0 ]; then
		echo "reset: policies remain after deletion: $out"
		return 1
	fi
}

# ---- helpers for scenarios (they run in a subshell, see run.sh) ----------

fatal() {
	printf 'FATAL: %s\n' "$*"
	exit 1
}

# The store changed: run.sh resets it after the scenario.
np_touched() { : >"$SCEN_DIR/touched"; }

np_ctl_stdin() {
	local verb=$1 out
	np_touched
	if ! out=$(np_ctl "$verb" -f - 2>&1); then
		printf '%s\n' "$out"
		fatal "sluicectl $verb failed"
	fi
	printf '%s\n' "$out" | sed 's/^/  sluicectl: /'
}

# apply <<EOF / delete <<EOF: YAML (or JSON) objects on stdin.
apply() { np_ctl_stdin apply; }
delete() { np_ctl_stdin delete; }

# labels_json K=V...: a JSON object of labels.
labels_json() {
	local kv args=()
	for kv in "$@"; do args+=(--arg "${kv%%=*}" "${kv#*=}"); done
	jq -cn '$ARGS.named' "${args[@]}"
}

set_pod_labels() {
	local pod=$1/$2
	shift 2
	echo "  labels of pod $pod: $*"
	np_pod_json "$pod" "$(labels_json "$@")" | apply
}

set_namespace_labels() {
	local ns=$1
	shift
	echo "  labels of namespace $ns: $*"
	np_namespace_json "$ns" "$(labels_json "$@")" | apply
}

declare -A EXPECT=() OBSERVED=()

reach_new() {
	local from to
	for from in "${NP_PODS[@]}"; do
		for to in "${NP_PODS[@]}"; do EXPECT[$from>$to]=$1; done
	done
}

np_check_pod() {
	[[ " ${NP_PODS[*]} " == *" $1 "* ]] || fatal "no pod '$1' in the model"
}

expect() {
	np_check_pod "$1"
	np_check_pod "$2"
	EXPECT[$1>$2]=$3
}

expect_all_ingress() {
	local from
	np_check_pod "$1"
	for from in "${NP_PODS[@]}"; do EXPECT[$from>$1]=$2; done
}

expect_all_egress() {
	local to
	np_check_pod "$1"
	for to in "${NP_PODS[@]}"; do EXPECT[$1>$to]=$2; done
}

expect_peer() {
	local from to n=0
	for from in "${NP_PODS[@]}"; do
		# shellcheck disable=SC2053 # $1 and $2 are glob patterns
		[[ $from == $1 ]] || continue
		for to in "${NP_PODS[@]}"; do
			# shellcheck disable=SC2053
			[[ $to == $2 ]] || continue
			EXPECT[$from>$to]=$3
			n=$((n + 1))
		done
	done
	[ "$n" -gt 0 ] || fatal "expect_peer '$1' '$2' matches no pair"
}

# np_probe PROTO PORT PAIR...: probe the pairs (FROM>TO) at once, into OBSERVED.
np_probe() {
	local proto=$1 port=$2 pair id res out
	shift 2
	out=$(for pair in "$@"; do
		printf '%s /run/netns/%s %s %s %s\n' "$pair" "$(np_netns "${pair%>*}")" \
			"$proto" "${NP_IP[${pair#*>}]}" "$port"
	done | "$BUILD/sluice-probe" matrix --timeout "$PROBE_TIMEOUT_MS" --parallel "$#" --verbose \
		2>"$SCEN_DIR/probe.err")
	local rc=$?
	while read -r id res; do
		case $res in
		ok) OBSERVED[$id]=true ;;
		fail) OBSERVED[$id]=false ;;
		*) OBSERVED[$id]=error ;;
		esac
	done <<<"$out"
	if [ "$rc" -ne 0 ]; then
		grep -v 'timeout\|refused' "$SCEN_DIR/probe.err" | head -n 20
		fatal "sluice-probe matrix exited with $rc"
	fi
	for pair in "$@"; do
		[ "${OBSERVED[$pair]:-}" = true ] || [ "${OBSERVED[$pair]:-}" = false ] ||
			fatal "no probe result for $pair"
	done
}

# np_table TITLE KIND: KIND expected | observed | comparison, rows are the
# clients (from), columns the servers (to); "." connected, "X" not (for
# comparison: "." as expected, "X" wrong, "-" loopback, not judged).
np_table() {
	local from to cell
	printf '%s:\n' "$1"
	printf '  %-5s' -
	printf '%-5s' "${NP_PODS[@]}"
	printf '\n'
	for from in "${NP_PODS[@]}"; do
		printf '  %-5s' "$from"
		for to in "${NP_PODS[@]}"; do
			case $2 in
			expected) [ "${EXPECT[$from>$to]}" = true ] && cell=. || cell=X ;;
			observed) [ "${OBSERVED[$from>$to]}" = true ] && cell=. || cell=X ;;
			comparison)
				if [ "$from" = "$to" ]; then
					cell=-
				elif [ "${EXPECT[$from>$to]}" = "${OBSERVED[$from>$to]}" ]; then
					cell=.
				else
					cell=X
				fi
				;;
			esac
			printf '%-5s' "$cell"
		done
		printf '\n'
	done
}

# np_wrong: the judged pairs whose observation differs from the expectation.
np_wrong() {
	local from to
	for from in "${NP_PODS[@]}"; do
		for to in "${NP_PODS[@]}"; do
			[ "$from" = "$to" ] && continue
			[ "${EXPECT[$from>$to]}" = "${OBSERVED[$from>$to]}" ] || printf '%s\n' "$from>$to"
		done
	done
}

SCEN_WRONG=0
SCEN_VALIDATIONS=0

validate() {
	local proto=$1 port=$2 from to pair pairs=() wrong
	[ "${#EXPECT[@]}" -eq 81 ] || fatal "validate before reach_new"
	for from in "${NP_PODS[@]}"; do
		for to in "${NP_PODS[@]}"; do pairs+=("$from>$to"); done
	done
	SCEN_VALIDATIONS=$((SCEN_VALIDATIONS + 1))
	np_probe "$proto" "$port" "${pairs[@]}"
	mapfile -t wrong < <(np_wrong)
	if [ "${#wrong[@]}" -gt 0 ]; then
		# Second try, as upstream's ValidateOrFail does; only the wrong cells.
		np_probe "$proto" "$port" "${wrong[@]}"
		mapfile -t wrong < <(np_wrong)
	fi
	if [ "${#wrong[@]}" -eq 0 ]; then
		echo "  ${proto^^}/$port: 72 correct, 0 wrong (9 loopback not judged)"
		return 0
	fi
	SCEN_WRONG=$((SCEN_WRONG + ${#wrong[@]}))
	echo "  ${proto^^}/$port: $((72 - ${#wrong[@]})) correct, ${#wrong[@]} wrong"
	np_table "expected ${proto^^}/$port" expected
	np_table "observed ${proto^^}/$port" observed
	np_table "comparison ${proto^^}/$port" comparison
	echo "differing cells:"
	for pair in "${wrong[@]:0:20}"; do
		printf '  %s -> %s: expected %s, observed %s\n' "${pair%>*}" "${pair#*>}" \
			"$([ "${EXPECT[$pair]}" = true ] && echo connected || echo blocked)" \
			"$([ "${OBSERVED[$pair]}" = true ] && echo connected || echo blocked)"
	done
	[ "${#wrong[@]}" -le 20 ] || echo "  ... and $((${#wrong[@]} - 20)) more (see the comparison)"
	return 1
}
