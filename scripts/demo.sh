#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# sluice demo: one simulated node (a network namespace) running sluice-agent,
# four pods created through the real sluice-cni plugin exactly as a container
# runtime would, traffic between them redirected by eBPF, a NetworkPolicy
# enforced and explained, the agent killed while pods keep talking, and a
# clean teardown. Needs root.
set -uo pipefail
TEST_NAME=demo
source "$(dirname "$0")/../tests/lib/common.sh"
need_root

ID=sldemo
NODE=$ID-node
DIR=$(mktemp -d /tmp/sluice-demo.XXXXXX)
BPFFS=/sys/fs/bpf/$ID
SOCK=$DIR/agent.sock
CIDR=10.246.0.0/24
CLEANUP_PATHS+=("$DIR" "$BPFFS")
CONF=$(printf '{"cniVersion":"1.1.0","name":"sluice","type":"sluice-cni","socket":"%s"}' "$SOCK")
ctl() { "$BUILD/sluicectl" --socket "$SOCK" "$@"; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

# A previous demo interrupted by SIGKILL may have left its namespaces.
for ns in $(ip netns list | awk '/^sldemo-/ {print $1}'); do ip netns del "$ns"; done
rm -rf "$BPFFS"

say "Starting sluice-agent for node '$NODE' (pod CIDR $CIDR)"
netns_add "$NODE"
start_agent "$NODE" "$CIDR" "$DIR" || exit 1
run ctl status

say "Creating four pods with the real CNI plugin (CNI_COMMAND=ADD)"
declare -A IP
PODS=(shop/web-0 shop/web-1 shop/db-0 billing/api-0)
for i in 0 1 2 3; do
	ns=${PODS[$i]%/*} name=${PODS[$i]#*/}
	netns_add "$ID-$name"
	out=$(POD_NAMESPACE=$ns cni ADD "$name" "/run/netns/$ID-$name" "$CONF") || { echo "$out"; exit 1; }
	IP[$name]=$(jq -r '.ips[0].address' <<<"$out" | cut -d/ -f1)
	printf '  %-16s %s  (%s)\n' "$ns/$name" "${IP[$name]}" "$(jq -r '.interfaces[1].name + " in " + .interfaces[1].sandbox' <<<"$out")"
done
run ctl get endpoints

say "Pods talk to each other: ping, TCP and UDP, no bridge, no iptables"
for name in web-0 web-1 db-0 api-0; do serve "$ID-$name" >/dev/null; done
for pair in web-0:db-0 web-1:db-0 api-0:web-0 db-0:api-0; do
	a=${pair%:*} b=${pair#*:}
	printf '  %-6s -> %-6s ' "$a" "$b"
	probe "$ID-$a" ping "${IP[$b]}" --count 1 | grep -o 'time=[0-9.]* ms' | tr '\n' ' '
	probe "$ID-$a" tcp "${IP[$b]}" 8080 >/dev/null && printf 'tcp ok  '
	probe "$ID-$a" udp "${IP[$b]}" 8081 >/dev/null && printf 'udp ok'
	echo
done
printf '  %-6s -> node   ' web-0
probe "$ID-web-0" ping 10.246.0.1 --count 1 | grep -o 'time=[0-9.]* ms'
run ctl metrics

say "Policy: only web pods may reach the database, and only on 8080/TCP"
cat >"$DIR/policy.yaml" <<'YAML'
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {team: shop}}
---
apiVersion: v1
kind: Namespace
metadata: {name: billing, labels: {team: billing}}
---
apiVersion: v1
kind: Pod
metadata: {namespace: shop, name: web-0, labels: {app: web}}
---
apiVersion: v1
kind: Pod
metadata: {namespace: shop, name: web-1, labels: {app: web}}
---
apiVersion: v1
kind: Pod
metadata: {namespace: shop, name: db-0, labels: {app: db}}
spec:
  containers:
  - name: db
    ports: [{name: sql, containerPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {namespace: billing, name: api-0, labels: {app: api}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: shop, name: db-from-web}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: web}}}]
    ports: [{port: sql}]
YAML
sed 's/^/    /' "$DIR/policy.yaml" | grep -A8 NetworkPolicy
run ctl apply -f "$DIR/policy.yaml"
for pair in web-0:db-0 api-0:db-0; do
	a=${pair%:*} b=${pair#*:}
	printf '  %-6s -> %-6s tcp 8080: ' "$a" "$b"
	probe "$ID-$a" tcp "${IP[$b]}" 8080 --timeout 500 >/dev/null 2>&1 && echo allowed || echo dropped
done
run ctl policy explain --from billing/api-0 --to shop/db-0 --port 8080/TCP
run ctl get identities -A

say "Killing the agent (SIGKILL) while web-0 streams TCP to db-0"
probe "$ID-web-0" stream "${IP[db-0]}" 8080 --seconds 3 --interval-ms 20 >"$DIR/stream.json" &
STREAM=$!
sleep 1
{ kill -9 "$AGENT_PID"; wait "$AGENT_PID"; } 2>/dev/null
echo "  agent killed; pods keep talking through the pinned datapath:"
printf '  web-1 -> api-0 tcp: '; probe "$ID-web-1" tcp "${IP[api-0]}" 8080 >/dev/null && echo ok
start_agent "$NODE" "$CIDR" "$DIR" || exit 1
echo "  agent restarted: $(ctl status -o json | jq -r '"\(.endpoints) endpoints recovered"')"
printf '  policy still enforced: api-0 -> db-0 tcp 8080: '
probe "$ID-api-0" tcp "${IP[db-0]}" 8080 --timeout 500 >/dev/null 2>&1 && echo allowed || echo dropped
wait "$STREAM" && echo "  stream: $(cat "$DIR/stream.json")"

say "Deleting the pods (CNI_COMMAND=DEL); nothing is left behind"
for name in web-0 web-1 db-0 api-0; do cni DEL "$name" "/run/netns/$ID-$name" "$CONF"; done
run ctl get endpoints
echo "  lxc veths left on the node: $(ip -n "$NODE" -o link show | grep -c lxc)"
echo "  addresses still allocated:  $(ls "$DIR/state/ipam" | grep -vcE '^(range|released)$')"
say "Done: the agent stops and the demo node is removed"
