#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The Kubernetes control plane's cost, against the test API server
# (tests/kube/apiserver.py) in a network namespace of its own, next to a
# baseline measured in the same run: kubectl, the reference client, doing
# the same reads.
#
#   - initial sync: agent start to ready (every kind listed, applied,
#     compiled into the maps) with PODS pods on other nodes and POLICIES
#     NetworkPolicies in the API; baseline: `kubectl get` of the same pods
#     and policies (JSON);
#   - event to datapath: `kubectl label` of a pod to the agent's policy
#     view changing (median of ROUNDS); baseline: a `kubectl get` of that
#     pod, the cheapest round trip kubectl makes;
#   - relist after a compaction (410): watches cut, history compacted, to
#     the agent having listed and applied everything again (every kind's
#     resourceVersion past the compaction, then a request answered);
#   - agent memory after the sync.
set -uo pipefail
TEST_NAME=bench-kube
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../tests/lib/common.sh
source "$HERE/../tests/lib/common.sh"
need_root

PODS=${PODS:-2000}
POLICIES=${POLICIES:-200}
ROUNDS=${ROUNDS:-10}
for tool in kubectl /usr/bin/python3 openssl jq; do
	command -v "$tool" >/dev/null || { echo "$TEST_NAME: $tool missing (make deps)" >&2; exit 1; }
done

NS=slkb$$
DIR=$(mktemp -d /tmp/sluice-bench-kube.XXXXXX)
CLEANUP_PATHS+=("$DIR" "/sys/fs/bpf/$NS")
netns_add "$NS" || exit 1

now_ms() { echo $(($(date +%s%N) / 1000000)); }
kctl() {
	ip netns exec "$NS" kubectl --kubeconfig "$DIR/c/kubeconfig-token" \
		--cache-dir "$DIR/kcache" "$@"
}
ctl() { "$BUILD/sluicectl" --socket "$DIR/agent.sock" "$@"; }

echo "$TEST_NAME: $PODS pods, $POLICIES NetworkPolicies in the API" >&2
"$ROOT/tests/kube/certs.sh" "$DIR/c" 127.0.0.1:6443 >/dev/null 2>&1 || exit 1
# The cluster: this node (node0) and the pods' nodes, namespaces, pods with
# IPs (as kubelet reports them), policies selecting and admitting them.
/usr/bin/python3 - "$PODS" "$POLICIES" >"$DIR/objects.json" <<'EOF'
import json, sys
pods, policies = int(sys.argv[1]), int(sys.argv[2])
items = []
for n in range(9):
    items.append({"apiVersion": "v1", "kind": "Node", "metadata": {"name": f"node{n}"},
                  "spec": {"podCIDR": f"10.{100 + n}.0.0/16"},
                  "status": {"addresses": [{"type": "InternalIP", "address": f"192.168.0.{10 + n}"}]}})
for ns in range(10):
    items.append({"apiVersion": "v1", "kind": "Namespace",
                  "metadata": {"name": f"ns{ns}", "labels": {"team": f"t{ns % 3}"}}})
for i in range(pods):
    node = 1 + i % 8
    ip = f"10.{100 + node}.{i // 250}.{1 + i % 250}"
    items.append({"apiVersion": "v1", "kind": "Pod",
                  "metadata": {"name": f"p{i}", "namespace": f"ns{i % 10}",
                               "labels": {"app": f"a{i % 50}", "tier": f"t{i % 4}"}},
                  "spec": {"nodeName": f"node{node}", "containers": [
                      {"name": "c", "image": "x", "ports": [{"name": "http", "containerPort": 80}]}]},
                  "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}})
for k in range(policies):
    items.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                  "metadata": {"name": f"np{k}", "namespace": f"ns{k % 10}"},
                  "spec": {"podSelector": {"matchLabels": {"app": f"a{k % 50}"}},
                           "ingress": [{"from": [{"podSelector": {"matchLabels": {"tier": f"t{k % 4}"}}},
                                                 {"namespaceSelector": {"matchLabels": {"team": "t1"}}}],
                                        "ports": [{"port": "http"}]}]}})
json.dump({"apiVersion": "v1", "kind": "List", "items": items}, sys.stdout)
EOF
ip netns exec "$NS" /usr/bin/python3 "$ROOT/tests/kube/apiserver.py" --listen 127.0.0.1:6443 \
	--cert "$DIR/c/server.crt" --key "$DIR/c/server.key" --token-file "$DIR/c/tokens" \
	--crd "$ROOT/deploy/crds/sluice-policy-crds.yaml" --load "$DIR/objects.json" \
	--history 100000 >"$DIR/api.log" 2>&1 &
CLEANUP_PIDS+=($!)
for _ in $(seq 300); do kctl get --raw /version >/dev/null 2>&1 && break; sleep 0.1; done
kctl get --raw /version >/dev/null 2>&1 || { echo "$TEST_NAME: API server did not start" >&2; exit 1; }

# ---- baseline: kubectl reads what the agent lists ---------------------------
t0=$(now_ms)
kctl get pods -A -o json >/dev/null && kctl get networkpolicies -A -o json >/dev/null &&
	kctl get nodes -o json >/dev/null && kctl get namespaces -o json >/dev/null
KUBECTL_LIST_MS=$(($(now_ms) - t0))

# ---- initial sync -------------------------------------------------------------
t0=$(now_ms)
nsenter --net="/run/netns/$NS" "$BUILD/sluice-agent" --node-name node0 --pod-cidr 10.100.0.0/24 \
	--kubeconfig "$DIR/c/kubeconfig-token" --socket "$DIR/agent.sock" --state-dir "$DIR/state" \
	--bpffs "/sys/fs/bpf/$NS" >"$DIR/agent.log" 2>&1 &
AGENT=$!
CLEANUP_PIDS+=("$AGENT")
until ctl status >/dev/null 2>&1; do
	kill -0 "$AGENT" 2>/dev/null || { cat "$DIR/agent.log" >&2; exit 1; }
	sleep 0.01
done
SYNC_MS=$(($(now_ms) - t0))
got=$(ctl get pods -A -o json | jq '.items | length')
[ "$got" -ge "$PODS" ] || { echo "$TEST_NAME: agent has $got pods, want $PODS" >&2; exit 1; }
RSS_KB=$(awk '/VmRSS/ {print $2}' "/proc/$AGENT/status")
DIRTY_KB=$(awk '/Private_Dirty/ {print $2}' "/proc/$AGENT/smaps_rollup")

# ---- event to datapath ----------------------------------------------------------
# Relabel pod p0 between tiers; the agent's view of p0 changes when the event
# has been applied and the maps recompiled (ctl answers after that).
: >"$DIR/event.ms"
: >"$DIR/get.ms"
for r in $(seq "$ROUNDS"); do
	tier=t$((r % 4))
	t0=$(now_ms)
	kctl -n ns0 get pod p0 -o name >/dev/null
	echo $(($(now_ms) - t0)) >>"$DIR/get.ms"
	t0=$(now_ms)
	kctl -n ns0 label pod p0 tier="$tier" --overwrite >/dev/null
	until ctl get pods -A -o json | jq -e --arg t "$tier" \
		'.items[] | select(.name == "p0") | .labels.tier == $t' >/dev/null; do
		sleep 0.005
	done
	echo $(($(now_ms) - t0)) >>"$DIR/event.ms"
done
EVENT_MS=$(median <"$DIR/event.ms")
GET_MS=$(median <"$DIR/get.ms")

# ---- relist after compaction ----------------------------------------------------
relists() { ctl status -o json | jq '[.kubernetes.resources[].relists] | add'; }
before=$(relists)
kinds=$(ctl status -o json | jq '[.kubernetes.resources[] | select(.installed)] | length')
api() {
	ip netns exec "$NS" curl -sf --cacert "$DIR/c/ca.crt" \
		-H "Authorization: Bearer $(cat "$DIR/c/token")" -X POST "https://127.0.0.1:6443$1" >/dev/null
}
kill -STOP "$AGENT"
api /_test/drop-watches
# a change no watcher sees, then the history compacted past it: every
# watcher's resourceVersion is too old
bump=$(kctl create configmap bump-$$ -o jsonpath='{.metadata.resourceVersion}')
api /_test/compact
t0=$(now_ms)
kill -CONT "$AGENT"
# every kind listed again: each one's resourceVersion (set when its list is
# in, not at the 410) reaches the change's. The relists counter alone says
# the 410 was seen, before the list.
listed() {
	ctl status -o json | jq -e --argjson rv "$bump" \
		'[.kubernetes.resources[] | select(.installed) | (.resourceVersion | tonumber? // 0) >= $rv] | all' >/dev/null
}
until listed && r=$(relists) && [ -n "$r" ] && [ "$r" -ge $((before + kinds)) ]; do
	kill -0 "$AGENT" 2>/dev/null || { echo "$TEST_NAME: the agent died" >&2; exit 1; }
	[ $(($(now_ms) - t0)) -lt 60000 ] || { echo "$TEST_NAME: no relist in 60 s" >&2; ctl status >&2; tail -n 20 "$DIR/agent.log" >&2; exit 1; }
	sleep 0.01
done
# applied: the agent's one thread applies queued lists before it answers a
# request sent after them (a second status: the first may share a loop turn)
ctl status >/dev/null 2>&1
RELIST_MS=$(($(now_ms) - t0))

printf '\n%-52s %10s %10s %8s\n' "measurement" "kubectl" "sluice" "ratio"
printf '%-52s %10d %10d %8.2f\n' "initial sync: $PODS pods, $POLICIES policies (ms)" \
	"$KUBECTL_LIST_MS" "$SYNC_MS" "$(echo "$SYNC_MS / $KUBECTL_LIST_MS" | bc -l)"
printf '%-52s %10s %10s %8.2f\n' "pod relabelled -> agent applied, median (ms)" "$GET_MS" "$EVENT_MS" \
	"$(echo "$EVENT_MS / $GET_MS" | bc -l)"
printf '%-52s %10s %10d\n' "410 relist of every kind -> applied (ms)" "-" "$RELIST_MS"
printf '%-52s %10s %10.1f\n' "agent RSS after the sync (MiB)" "-" "$(echo "$RSS_KB / 1024" | bc -l)"
printf '%-52s %10s %10.1f\n' "agent private dirty memory (MiB)" "-" "$(echo "$DIRTY_KB / 1024" | bc -l)"
printf '\nkubectl: the same lists (initial sync) and one GET (event); both sides include\n'
printf 'process start for kubectl and TLS set-up; the agent also compiles the maps.\n'
printf 'rounds: %s; machine: %s cores, kernel %s\n' "$ROUNDS" "$(nproc)" "$(uname -r)"
