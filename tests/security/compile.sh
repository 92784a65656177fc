#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Policy programming under pressure, playing the attacker. One node (the
# multinode layout, tests/multinode/lib.sh) whose agent has a small policy
# map (--policy-map-size, CAP entries), and pods victim (app=victim), friend
# (app=friend) and attacker (app=attacker). A policy "base" lets only friend
# reach victim on UDP 9000; a listener on victim counts every datagram and
# who sent it.
#
#   a) a policy "huge" (allows anyone on 9000 and on more ports than the map
#      holds) applied with sluicectl is refused with an error naming it; the
#      previous policy stays enforced: the attacker's datagrams count
#      nothing, the friend's arrive; huge is not in the store;
#   b) the agent restarted with huge in its stored objects (the maps are
#      re-created: a node restart): it starts and serves, reports huge as
#      not enforced (status, get policies), enforces base, and the pods huge
#      selects stay isolated (the attacker still counts nothing); a new pod
#      can still be added;
#   c) Kubernetes mode (the test API server of tests/kube): a pod whose Pod
#      object is created only after its CNI ADD is isolated until then
#      (neither the attacker nor the friend reaches it); once the object
#      arrives, its policy applies (friend in, attacker still out).
#
#   tests/security/compile.sh [overlay|native]     (no argument: both)
#
# Last line: "compile: N passed, M failed". With BUILD pointing at a build
# without --policy-map-size, POLICY_MAP_SIZE must say how large its policy
# map was built (e.g. clang -DSLUICE_POLICY_MAX=64).
# shellcheck source-path=SCRIPTDIR
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TEST_NAME=${SEC_TEST_NAME:-compile}
# shellcheck source=../lib/common.sh
source "$HERE/../lib/common.sh"
# shellcheck source=../multinode/lib.sh
source "$HERE/../multinode/lib.sh"

mn_mode compile SEC_TEST_NAME "$0" "$@"

need_root
for bin in sluice-agent sluice-cni sluicectl sluice-probe; do
	[ -x "$BUILD/$bin" ] || { log "$BUILD/$bin missing (run make)"; exit 1; }
done
for tool in jq kubectl openssl curl /usr/bin/python3; do
	command -v "$tool" >/dev/null || { log "$tool missing (make deps)"; exit 77; }
done

CAP=${POLICY_MAP_SIZE:-64}
HUGE_PORTS=$((CAP * 2))
P=slsc$$
MN_DIR=$(mktemp -d /tmp/sluice-sec-compile.XXXXXX)
CLEANUP_PATHS+=("$MN_DIR")
NS=sec
FORGE=$ROOT/tests/tools/forge.py
declare -A IP=()
SMALL_MAP=()
LABELS_WAIT=()
if "$BUILD/sluice-agent" --help 2>&1 | grep -q -- --pod-labels-wait; then
	LABELS_WAIT=(--pod-labels-wait 2)
fi
if "$BUILD/sluice-agent" --help 2>&1 | grep -q -- --policy-map-size; then
	SMALL_MAP=(--policy-map-size "$CAP")
else
	log "this build has no --policy-map-size: it must have been built with a $CAP-entry policy map"
fi

ctl() { mn_ctl "$P" 1 "$@"; }
fails() { ! "$@"; }

# start_agent_small: node 1's agent with the small policy map.
start_agent_small() {
	MN_AGENT_ARGS="${SMALL_MAP[*]} ${EXTRA_AGENT_ARGS:-}" mn_start_agent "$P" 1 "$MODE"
}

# listen POD PORT: a fresh counting listener (UDP PORT) in POD, replacing
# any earlier one (it keeps the first 20 senders only); its JSON at
# $MN_DIR/POD.count.
declare -A LPID=()
listen() {
	if [ -n "${LPID[$1]:-}" ]; then
		kill "${LPID[$1]}" 2>/dev/null
		wait "${LPID[$1]}" 2>/dev/null
	fi
	rm -f "$MN_DIR/$1.count"
	ip netns exec "$P-$1" /usr/bin/python3 "$FORGE" listen --udp "$2" \
		--out "$MN_DIR/$1.count" >/dev/null 2>&1 &
	LPID[$1]=$!
	CLEANUP_PIDS+=($!)
	for _ in $(seq 50); do
		[ -s "$MN_DIR/$1.count" ] && return 0
		sleep 0.05
	done
	return 1
}

# send FROM TO PORT: three UDP datagrams from pod FROM's own socket to TO.
send() {
	ip netns exec "$P-$1" /usr/bin/python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(3):
    s.sendto(b"sluice-sec", (sys.argv[1], int(sys.argv[2])))
    time.sleep(0.02)
' "${IP[$2]}" "$3" 2>/dev/null
	sleep 0.3
}

# got_from POD SENDER: the listener in POD counted a datagram from SENDER.
got_from() {
	jq -e --arg ip "${IP[$2]}:" 'any(.from[]; startswith($ip))' "$MN_DIR/$1.count" >/dev/null
}
# none_from POD SENDER: it counted nothing from SENDER.
none_from() { ! got_from "$@"; }

# sends_and_arrives FROM TO PORT (eventually, policy changes take a sync).
sends_and_arrives() {
	local i
	for i in 1 2 3 4 5; do
		send "$1" "$2" "$3"
		got_from "$2" "$1" && return 0
	done
	return 1
}

pod_json() { mn_pod_json "$NS" "$1" 1 "${IP[$1]}" "$2"; }

base_policy() {
	jq -cn --arg ns "$NS" '{apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy",
		metadata: {namespace: $ns, name: "base"},
		spec: {podSelector: {matchLabels: {app: "victim"}}, policyTypes: ["Ingress"],
		       ingress: [{from: [{podSelector: {matchLabels: {app: "friend"}}}],
				  ports: [{protocol: "UDP", port: 9000}]}]}}'
}

# huge: anyone may reach victim on UDP 9000 and on HUGE_PORTS-1 more ports.
huge_policy() {
	jq -cn --arg ns "$NS" --argjson n "$HUGE_PORTS" '{apiVersion: "networking.k8s.io/v1",
		kind: "NetworkPolicy", metadata: {namespace: $ns, name: "huge"},
		spec: {podSelector: {matchLabels: {app: "victim"}}, policyTypes: ["Ingress"],
		       ingress: [{ports: [range(0; $n) | {protocol: "UDP", port: (9000 + .)}]}]}}'
}

# ---- a), b): sluicectl-fed ----------------------------------------------------

mn_topology "$P" 1 || exit 1
start_agent_small || exit 1
mn_node_json 1 | ctl apply -f - >/dev/null || exit 1
for spec in victim:victim friend:friend attacker:attacker; do
	name=${spec%%:*}
	netns_add "$P-$name" || exit 1
	res=$(mn_pod_add "$P" 1 "$name" "$NS") || { log "CNI ADD $name: $res"; exit 1; }
	IP[$name]=$(jq -r '.ips[0].address | split("/")[0]' <<<"$res")
	pod_json "$name" "${spec#*:}" | ctl apply -f - >/dev/null || exit 1
done
base_policy | ctl apply -f - >/dev/null || exit 1
listen victim 9000 || { log "listener did not start"; exit 1; }

echo "--- the previous policy, before anything"
check "friend reaches victim on UDP 9000" sends_and_arrives friend victim 9000
send attacker victim 9000
check "the attacker's datagrams count nothing at victim" none_from victim attacker

echo "--- a) a policy larger than the map ($HUGE_PORTS ports, capacity $CAP), through sluicectl"
listen victim 9000 || exit 1
out=$(huge_policy | ctl apply -f - 2>&1)
rc=$?
check "the apply is refused" test "$rc" -ne 0
check "the error names NetworkPolicy $NS/huge and the setting to raise" \
	bash -c 'grep -q "NetworkPolicy '"$NS"'/huge" <<<"$1" && grep -q -- "--policy-map-size" <<<"$1"' _ "$out"
[ "$rc" -ne 0 ] || echo "       apply said: $out"
check "huge is not stored (the change landed not at all)" \
	bash -o pipefail -c "! '$BUILD/sluicectl' --socket '$(mn_sock "$P" 1)' get policies -A -o json |
		jq -e '.items[] | select(.name == \"huge\")' >/dev/null"
send attacker victim 9000
check "victim still isolated: the attacker's datagrams count nothing" none_from victim attacker
check "friend still reaches victim" sends_and_arrives friend victim 9000

echo "--- b) restart with the oversized policy stored (maps re-created, as after a node restart)"
kill "$MN_AGENT_PID" 2>/dev/null
wait "$MN_AGENT_PID" 2>/dev/null
STATE=$(mn_node_dir "$P" 1)/state
# The saved objects replaced by what was applied plus huge: a snapshot with
# no journal (the journal holds huge's removal after the refused apply).
{
	mn_node_json 1
	for name in victim friend attacker; do pod_json "$name" "$name"; done
	base_policy
	huge_policy
} | jq -cs '{format: "sluice-objects/2", generation: 1, objects: .}' >"$STATE/objects.new" &&
	mv "$STATE/objects.new" "$STATE/objects.json" && rm -f "$STATE/objects.journal"
rm -rf "/sys/fs/bpf/$P-node1"
start_agent_small
check "the agent starts and serves (status answers)" ctl status
check "status reports huge as not enforced, with the setting to raise" \
	bash -o pipefail -c "'$BUILD/sluicectl' --socket '$(mn_sock "$P" 1)' status -o json |
		jq -e '.policy.notEnforced[] | select(.object == \"NetworkPolicy $NS/huge\") |
			.reason | contains(\"--policy-map-size\")' >/dev/null"
check "get policies: huge NotEnforced, base Enforced" \
	bash -o pipefail -c "'$BUILD/sluicectl' --socket '$(mn_sock "$P" 1)' get policies -A -o json |
		jq -e '([.items[] | select(.name == \"huge\") | .status] == [\"NotEnforced\"]) and
			([.items[] | select(.name == \"base\") | .status] == [\"Enforced\"])' >/dev/null"
check "the agent's log names it" grep -q "NetworkPolicy $NS/huge is not enforced" \
	"$(mn_node_dir "$P" 1)/agent.log"
listen victim 9000 || exit 1
send attacker victim 9000
check "victim isolated: the attacker's datagrams count nothing" none_from victim attacker
check "base enforced: friend reaches victim" sends_and_arrives friend victim 9000
netns_add "$P-late" || exit 1
check "a new pod can be added" mn_pod_add "$P" 1 late "$NS"
kill "$MN_AGENT_PID" 2>/dev/null
wait "$MN_AGENT_PID" 2>/dev/null
if [ ${#SMALL_MAP[@]} -gt 0 ]; then
	EXTRA_AGENT_ARGS="--policy-map-size $((CAP * 4))" start_agent_small
	check "restarted with a larger setting over pinned maps: it serves" ctl status
	check "... keeps the pinned size and says how to apply the new one" \
		grep -q "stays at $CAP entries" "$(mn_node_dir "$P" 1)/agent.log"
	listen victim 9000 || exit 1
	send attacker victim 9000
	check "... and huge is still left out: the attacker counts nothing" none_from victim attacker
	kill "$MN_AGENT_PID" 2>/dev/null
	wait "$MN_AGENT_PID" 2>/dev/null
fi

# ---- c): Kubernetes mode, a pod whose labels come late -----------------------

echo "--- c) Kubernetes mode: a pod's Pod object arrives after its CNI ADD"
API_IP=10.200.0.1
API=$API_IP:6443
CERTS=$MN_DIR/certs
ip -n "$P-phys" addr add "$API_IP/24" dev br0 || exit 1
"$ROOT/tests/kube/certs.sh" "$CERTS" "$API" >"$MN_DIR/certs.log" 2>&1 || {
	cat "$MN_DIR/certs.log" >&2
	exit 1
}
ip netns exec "$P-phys" /usr/bin/python3 "$ROOT/tests/kube/apiserver.py" \
	--listen "$API" --cert "$CERTS/server.crt" --key "$CERTS/server.key" \
	--token-file "$CERTS/tokens" --client-ca "$CERTS/ca.crt" \
	--state "$MN_DIR/apiserver.state" --history 10000 \
	--crd "$ROOT/deploy/crds/sluice-policy-crds.yaml" >>"$MN_DIR/apiserver.log" 2>&1 &
CLEANUP_PIDS+=($!)
kctl() {
	ip netns exec "$P-phys" kubectl --kubeconfig "$CERTS/kubeconfig-cert" \
		--cache-dir "$MN_DIR/kubectl-cache" "$@"
}
for _ in $(seq 100); do kctl get --raw /version >/dev/null 2>&1 && break; sleep 0.1; done
mn_node_json 1 | jq 'del(.status)' | kctl create -f - >/dev/null || exit 1
kctl patch node node1 --subresource=status --type=merge \
	-p "$(mn_node_json 1 | jq -c '{status: .status}')" >/dev/null || exit 1
kctl create namespace "$NS" >/dev/null || exit 1
# kubelet's order: the Pod object exists, then CNI ADD, then its status.
kpod() {
	local name=$1 app=$2
	mn_pod_json "$NS" "$name" 1 "${IP[$name]:-10.210.1.250}" "$app" | jq 'del(.status)' |
		kctl create -f - >/dev/null
}
kstatus() {
	kctl -n "$NS" patch pod "$1" --subresource=status --type=merge \
		-p "$(mn_pod_json "$NS" "$1" 1 "${IP[$1]}" "$2" | jq -c '{status: .status}')" >/dev/null
}
# The Kubernetes node starts from scratch: its own state, maps and pods.
for name in victim friend attacker late; do ip netns del "$P-$name" 2>/dev/null; done
rm -rf "$(mn_node_dir "$P" 1)" "/sys/fs/bpf/$P-node1"
for l in $(ip -n "$P-node1" -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep '^lxc'); do
	ip -n "$P-node1" link del "$l" 2>/dev/null
done
KDIR=$(mn_node_dir "$P" 1)
mkdir -p "$KDIR"
# shellcheck disable=SC2086
SLUICE_KUBECONFIG="$CERTS/kubeconfig-cert" nsenter --net="/run/netns/$P-node1" \
	"$BUILD/sluice-agent" --node-name node1 --device uplink0 --routing "$MODE" \
	--socket "$KDIR/agent.sock" --state-dir "$KDIR/state" --bpffs "/sys/fs/bpf/$P-node1" \
	"${LABELS_WAIT[@]}" >>"$KDIR/agent.log" 2>&1 &
CLEANUP_PIDS+=($!)
for _ in $(seq 200); do ctl status >/dev/null 2>&1 && break; sleep 0.1; done
check "the Kubernetes-mode agent is ready" ctl status
IP=()
for spec in friend:friend attacker:attacker; do
	name=${spec%%:*}
	netns_add "$P-$name" || exit 1
	kpod "$name" "${spec#*:}" || exit 1
	res=$(mn_pod_add "$P" 1 "$name" "$NS") || { log "CNI ADD $name: $res"; exit 1; }
	IP[$name]=$(jq -r '.ips[0].address | split("/")[0]' <<<"$res")
	kstatus "$name" "${spec#*:}" || exit 1
done
kctl apply -f - >/dev/null <<EOF || exit 1
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: $NS, name: newpod-from-friend}
spec:
  podSelector: {matchLabels: {app: newpod}}
  policyTypes: [Ingress]
  ingress:
  - from: [{podSelector: {matchLabels: {app: friend}}}]
    ports: [{protocol: UDP, port: 9000}]
EOF
listen friend 9001 || exit 1
policy_known() {
	ctl get policies -A -o json | jq -e '.items[] | select(.name == "newpod-from-friend")' >/dev/null
}
for _ in $(seq 50); do policy_known && break; sleep 0.1; done
netns_add "$P-newpod" || exit 1
t0=$(date +%s%N)
res=$(mn_pod_add "$P" 1 newpod "$NS") || { log "CNI ADD newpod: $res"; exit 1; }
waited_ms=$((($(date +%s%N) - t0) / 1000000))
IP[newpod]=$(jq -r '.ips[0].address | split("/")[0]' <<<"$res")
check "ADD waited for the Pod object, bounded (${waited_ms} ms; limit 2 s)" \
	test "$waited_ms" -ge 1500 -a "$waited_ms" -lt 8000
listen newpod 9000 || exit 1
send attacker newpod 9000
send friend newpod 9000
check "labels unknown: the attacker's datagrams count nothing at the new pod" \
	none_from newpod attacker
check "labels unknown: isolated both ways (not even friend, whose rule needs the labels)" \
	none_from newpod friend
send newpod friend 9001
check "labels unknown: nothing leaves the new pod either (friend counts nothing from it)" \
	none_from friend newpod
check "the other pods still talk (attacker to friend)" sends_and_arrives attacker friend 9001
check "explain: the attacker is denied at the new pod" \
	fails ctl policy explain --from "$NS/attacker" --to "$NS/newpod" --port 9000/UDP
kpod newpod newpod || exit 1
kstatus newpod newpod || exit 1
listen newpod 9000 || exit 1
check "Pod object arrived: its policy applies, friend reaches it" \
	sends_and_arrives friend newpod 9000
send attacker newpod 9000
check "Pod object arrived: the attacker still counts nothing" none_from newpod attacker

summary
