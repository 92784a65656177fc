#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# kubectl sluice (cli/kubectl-sluice) with the real kubectl against the test
# API server (apiserver.py, on 127.0.0.1), which has no exec: a kubectl on
# PATH forwards everything to the real one except `exec`, which it answers
# by running the local sluicectl against the test agent of the pod's node
# (tests/kube/plugin-kubectl.sh). Four nodes: node1 and node2 run an agent
# pod each (ready, a real agent behind each); node3's agent pod is running
# but not ready (its agent does not answer); node4 has no agent pod. Checks:
# --node picks that node's pod; status is one table of every node, the
# not-ready and missing ones reported with the exit non-zero; tables and
# -o json merged by node; policy explain asked of the destination's node;
# apply and delete refused without --allow-write (nothing exec'd, nothing
# changed), let through with it (files sent on stdin); pods-only RBAC (no
# list nodes) still finds every node.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TEST_NAME=kubectl-sluice
source "$HERE/../lib/common.sh"
need_root
for tool in kubectl /usr/bin/python3 openssl jq; do
	command -v "$tool" >/dev/null || { log "$tool missing (run make deps)"; exit 1; }
done

ID=slkp$$
DIR=$(mktemp -d /tmp/sluice-kubectl-sluice.XXXXXX)
CLEANUP_PATHS+=("$DIR")
CERTS=$DIR/certs

# ---- two agents, one per node namespace ----------------------------------------
for n in 1 2; do
	netns_add "$ID-n$n"
	BPFFS=/sys/fs/bpf/$ID-n$n
	CLEANUP_PATHS+=("$BPFFS")
	start_agent "$ID-n$n" "10.24$n.0.0/24" "$DIR/n$n" || exit 1
done

# ---- the API server on loopback ---------------------------------------------------
"$HERE/certs.sh" "$CERTS" 127.0.0.1 >"$DIR/certs.log" 2>&1 || { cat "$DIR/certs.log"; exit 1; }
/usr/bin/python3 "$HERE/apiserver.py" --listen 127.0.0.1:0 --port-file "$DIR/port" \
	--cert "$CERTS/server.crt" --key "$CERTS/server.key" --client-ca "$CERTS/ca.crt" \
	--token-file "$CERTS/tokens" --writable-status 2>>"$DIR/apiserver.log" &
CLEANUP_PIDS+=($!)
for _ in $(seq 100); do [ -s "$DIR/port" ] && break; sleep 0.05; done
[ -s "$DIR/port" ] || { cat "$DIR/apiserver.log"; exit 1; }
"$HERE/certs.sh" "$CERTS" "127.0.0.1:$(cat "$DIR/port")" >>"$DIR/certs.log" 2>&1 || exit 1

# The kubectl the plugin runs (first on PATH), and the plugin itself next to it.
mkdir -p "$DIR/bin"
ln -s "$HERE/plugin-kubectl.sh" "$DIR/bin/kubectl"
ln -s "$ROOT/cli/kubectl-sluice" "$DIR/bin/kubectl-sluice"
export PATH="$DIR/bin:$PATH" REAL_KUBECTL=/usr/bin/kubectl KCFG="$CERTS/kubeconfig-cert" \
	KCACHE="$DIR/cache" EXEC_LOG="$DIR/exec.log" PODS_MAP="$DIR/pods.map" BUILD
k() { kubectl "$@"; }

# ---- the cluster as the API has it ----------------------------------------------
pod_json() { # NS NAME NODE READY IP [LABELS_JSON]
	jq -n --arg ns "$1" --arg name "$2" --arg node "$3" --arg ready "$4" --arg ip "$5" \
		--argjson labels "${6:-{\}}" '{apiVersion: "v1", kind: "Pod",
		metadata: {namespace: $ns, name: $name, labels: $labels},
		spec: {nodeName: $node, containers: [{name: "agent", image: "x"}]},
		status: {phase: "Running", podIP: $ip,
			conditions: [{type: "Ready", status: $ready}]}}'
}
AGENT='{"app.kubernetes.io/name": "sluice"}'
{
	k create namespace sluice-system && k create namespace shop &&
	for n in 1 2 3 4; do
		k create -f - <<<"{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"node$n\"}}"
	done &&
	pod_json sluice-system sluice-aaaaa node1 True 10.0.0.1 "$AGENT" | k create -f - &&
	pod_json sluice-system sluice-bbbbb node2 True 10.0.0.2 "$AGENT" | k create -f - &&
	pod_json sluice-system sluice-ccccc node3 False 10.0.0.3 "$AGENT" | k create -f - &&
	pod_json sluice-system other-on-node4 node4 True 10.0.0.4 '{"app": "other"}' | k create -f - &&
	pod_json shop web-0 node1 True 10.241.0.7 '{"app": "web"}' | k create -f - &&
	pod_json shop db-0 node2 True 10.242.0.9 '{"app": "db"}' | k create -f -
} >"$DIR/setup.log" 2>&1 || { cat "$DIR/setup.log"; exit 1; }
# Which agent answers an exec in which pod (node3's agent is not running).
printf '%s %s\n' sluice-aaaaa "$DIR/n1/agent.sock" sluice-bbbbb "$DIR/n2/agent.sock" \
	sluice-ccccc "$DIR/n3-none.sock" >"$DIR/pods.map"
: >"$DIR/exec.log"
last_exec() { tail -n 1 "$DIR/exec.log"; }
execs() { wc -l <"$DIR/exec.log"; }

echo "== --node: that node's agent pod"
out=$(kubectl sluice --node node2 status)
rc=$?
check "exit 0, node2's agent answered" bash -c "[ $rc = 0 ] && grep -q \"^node: *$ID-n2\$\" <<<\"\$0\"" "$out"
check "the exec went to sluice-bbbbb, container agent, namespace sluice-system" \
	test "$(last_exec)" = "exec -n sluice-system sluice-bbbbb -c agent -- sluicectl status"
kubectl sluice --node node4 status >"$DIR/n4.out" 2>"$DIR/n4.err"
rc=$?
check "--node node4 (no agent pod): exit 1, says so" bash -c \
	"[ $rc = 1 ] && grep -q 'node node4: no sluice agent pod on node node4' '$DIR/n4.err' || { echo rc=$rc; cat '$DIR/n4.out' '$DIR/n4.err'; exit 1; }"

echo "== status: every node in one table"
kubectl sluice status >"$DIR/status.out" 2>"$DIR/status.err"
rc=$?
check "exit 1: a node is not ready and one has no agent" test "$rc" = 1
check "the header" grep -qE '^NODE +READY +PODS +POD-CIDR +ATTACH +VERSION +MESSAGE$' "$DIR/status.out"
check "node1: ready, its own agent's pod CIDR" grep -qE '^node1 +yes +0 +10\.241\.0\.0/24 +tc ' "$DIR/status.out"
check "node2: ready, its own agent's pod CIDR" grep -qE '^node2 +yes +0 +10\.242\.0\.0/24 +tc ' "$DIR/status.out"
check "node3: not ready, the pod and the agent's error named" \
	grep -qE '^node3 +no +- .*agent pod sluice-ccccc is not ready; cannot reach' "$DIR/status.out"
check "node4: not ready, no agent pod" grep -qE '^node4 +no +- .*no sluice agent pod on node node4' "$DIR/status.out"
check "four nodes, one row each" test "$(grep -c '^node' "$DIR/status.out")" = 4

echo "== tables and JSON merged by node"
printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: only-n%s}\n' 1 | "$BUILD/sluicectl" --socket "$DIR/n1/agent.sock" apply -f - >/dev/null
printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: only-n%s}\n' 2 | "$BUILD/sluicectl" --socket "$DIR/n2/agent.sock" apply -f - >/dev/null
kubectl sluice get namespaces >"$DIR/ns.out" 2>"$DIR/ns.err"
check "one header with a NODE column" bash -c "[ \$(grep -c NAME '$DIR/ns.out') = 1 ] && head -1 '$DIR/ns.out' | grep -qE '^NODE +NAME +LABELS'"
check "each node's objects labelled by node" bash -c \
	"grep -qE '^node1 +only-n1' '$DIR/ns.out' && grep -qE '^node2 +only-n2' '$DIR/ns.out' && ! grep -qE '^node1 +only-n2' '$DIR/ns.out'"
check "the nodes without an answer on stderr" bash -c \
	"grep -q 'node node3: agent pod sluice-ccccc is not ready' '$DIR/ns.err' && grep -q 'node node4: no sluice agent pod' '$DIR/ns.err'"
kubectl sluice version -o json >"$DIR/v.json" 2>/dev/null
check "-o json: {nodes: [...]} with each node's answer or error" jq -e --arg n1 "$ID-n1" '
	(.nodes | length) == 4 and
	(.nodes[] | select(.node == "node1") | .result.agent.node == $n1 and .exitCode == 0) and
	(.nodes[] | select(.node == "node4") | .error | test("no sluice agent pod")) and
	(.nodes[] | select(.node == "node3") | .exitCode == 3)' "$DIR/v.json"

echo "== policy explain on the destination's node"
kubectl sluice policy explain --from shop/web-0 --to shop/db-0 --port 80 >/dev/null 2>&1
check "--to shop/db-0 (on node2): asked of sluice-bbbbb" bash -c "last_exec() { tail -n 1 '$DIR/exec.log'; }; last_exec | grep -q '^exec -n sluice-system sluice-bbbbb .* policy explain'"
kubectl sluice policy explain --from shop/db-0 --to 10.241.0.7:80 >/dev/null 2>&1
check "--to 10.241.0.7:80 (web-0's address, node1): asked of sluice-aaaaa" bash -c "tail -n 1 '$DIR/exec.log' | grep -q '^exec -n sluice-system sluice-aaaaa .* policy explain'"

echo "== read-only unless --allow-write"
printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: written}\n' >"$DIR/ns.yaml"
before=$(execs)
kubectl sluice apply -f "$DIR/ns.yaml" >/dev/null 2>"$DIR/w.err"
rc=$?
check "apply refused (exit 1), naming --allow-write" bash -c "[ $rc = 1 ] && grep -q -- '--allow-write' '$DIR/w.err'"
kubectl sluice --node node1 delete namespace only-n1 >/dev/null 2>"$DIR/d.err"
rc=$?
check "delete refused on a node whose agent is ready (exit 1, naming --allow-write)" bash -c \
	"[ $rc = 1 ] && grep -q -- '--allow-write' '$DIR/d.err'"
check "nothing was exec'd" test "$(execs)" = "$before"
has_ns() { "$BUILD/sluicectl" --socket "$DIR/$1/agent.sock" get namespaces -o name | grep -qx "namespace/$2"; }
check "nothing changed on the agents" bash -c "$(declare -f has_ns); BUILD=$BUILD DIR=$DIR; has_ns n1 only-n1 && ! has_ns n1 written && ! has_ns n2 written"
out=$(kubectl sluice --node node1 apply --dry-run=server -f "$DIR/ns.yaml")
check "apply --dry-run=server is read-only: let through, nothing created" bash -c \
	"[ '$out' = 'namespace written created (server dry run)' ] && ! { $(declare -f has_ns); BUILD=$BUILD DIR=$DIR; has_ns n1 written; }"
kubectl sluice --allow-write --node node1 apply -f "$DIR/ns.yaml" >/dev/null
check "--allow-write --node node1: applied there" has_ns n1 written
check "and only there" bash -c "! { $(declare -f has_ns); BUILD=$BUILD DIR=$DIR; has_ns n2 written; }"
check "the file went on the exec's stdin (-i, -f -), not as a path" \
	test "$(last_exec)" = "exec -i -n sluice-system sluice-aaaaa -c agent -- sluicectl apply -f -"

echo "== RBAC: pods only (list nodes forbidden)"
DENY_NODES=1 kubectl sluice status >"$DIR/status2.out" 2>&1
check "every node still found from the pods' nodeName" bash -c \
	"[ \$(grep -c '^node' '$DIR/status2.out') = 4 ] && grep -qE '^node4 +no ' '$DIR/status2.out'"

summary
