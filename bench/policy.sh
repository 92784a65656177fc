#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Policy benchmark, one run:
#   - per-packet cost of from_pod (BPF_PROG_TEST_RUN) for new and established
#     flows with 10, 1 000 and 10 000 rules, next to no policy;
#   - time from `sluicectl apply` of 1 000 NetworkPolicies to enforcement
#     (apply returns only once the maps hold the new state; a probe right
#     after checks it), and the same for deleting them;
#   - TCP connections per second between two pods with a policy enforced,
#     next to the same pods without one, as a ratio.
set -uo pipefail
TEST_NAME=bench-policy
source "$(dirname "$0")/../tests/lib/common.sh"
need_root

ROUNDS=${ROUNDS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-4}
POLICIES=${POLICIES:-1000}
ID=slbp$$
DIR=$(mktemp -d /tmp/sluice-bench-policy.XXXXXX)
BPFFS=/sys/fs/bpf/$ID
SOCK=$DIR/agent.sock
CLEANUP_PATHS+=("$DIR" "$BPFFS")
CONF=$(printf '{"cniVersion":"1.1.0","name":"sluice","type":"sluice-cni","socket":"%s"}' "$SOCK")
ctl() { "$BUILD/sluicectl" --socket "$SOCK" "$@"; }
ms_since() { echo "($EPOCHREALTIME - $1) * 1000" | bc -l; }

echo "== per-packet cost of from_pod (ns, BPF_PROG_TEST_RUN)"
"$BUILD/bench-bpf" || exit 1

netns_add "$ID-node"
start_agent "$ID-node" 10.241.0.0/16 "$DIR" || exit 1
for p in client server; do
	netns_add "$ID-$p"
	out=$(POD_NAMESPACE=bench cni ADD "$p" "/run/netns/$ID-$p" "$CONF") || { echo "$out" >&2; exit 1; }
	declare "IP_$p=$(jq -r '.ips[0].address' <<<"$out" | cut -d/ -f1)"
done
ip netns exec "$ID-server" taskset -c "$(($(nproc) - 1))" "$BUILD/sluice-probe" serve --tcp 8080 --tcp 8081 >/dev/null &
CLEANUP_PIDS+=($!)
sleep 0.3
ctl apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Pod
metadata: {namespace: bench, name: client, labels: {app: client}}
---
apiVersion: v1
kind: Pod
metadata: {namespace: bench, name: server, labels: {app: server}}
YAML

connrate() { ip netns exec "$ID-client" taskset -c 0 "$BUILD/bench-connrate" "$IP_server" 8080 "$SECONDS_PER_RUN"; }
POLICY=$(cat <<'YAML'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: bench, name: server-from-client}
spec:
  podSelector: {matchLabels: {app: server}}
  policyTypes: [Ingress, Egress]
  ingress:
  - from: [{podSelector: {matchLabels: {app: client}}}]
    ports: [{port: 8080}]
YAML
)
echo "== TCP connections per second, $ROUNDS rounds of ${SECONDS_PER_RUN}s" >&2
: >"$DIR/cps.none"; : >"$DIR/cps.policy"
for r in $(seq "$ROUNDS"); do
	ctl delete --ignore-not-found -f - <<<"$POLICY" >/dev/null
	connrate >>"$DIR/cps.none"
	ctl apply -f - <<<"$POLICY" >/dev/null
	connrate >>"$DIR/cps.policy"
done
if probe "$ID-client" tcp "$IP_server" 8081 --timeout 300 >/dev/null 2>&1; then
	echo "bench-policy: the policy was not enforced during the run" >&2
	exit 1
fi
CN=$(median <"$DIR/cps.none"); CP=$(median <"$DIR/cps.policy")
ctl delete -f - <<<"$POLICY" >/dev/null

echo "== apply and delete $POLICIES NetworkPolicies" >&2
{
	for i in $(seq "$POLICIES"); do
		printf -- '---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n'
		printf 'metadata: {namespace: bench, name: p%s}\n' "$i"
		printf 'spec:\n  podSelector: {matchLabels: {app: svc%s}}\n' "$i"
		printf '  ingress:\n  - from: [{podSelector: {matchLabels: {app: c%s}}}]\n' "$i"
		printf '    ports: [{port: %s}]\n' "$((1000 + i))"
	done
	# The last one isolates the server for egress: enforcement is visible.
	printf -- '---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n'
	printf 'metadata: {namespace: bench, name: server-no-egress}\n'
	printf 'spec:\n  podSelector: {matchLabels: {app: server}}\n  policyTypes: [Egress]\n'
} >"$DIR/many.yaml"
probe "$ID-server" tcp "$IP_client" 9 --timeout 300 >/dev/null 2>&1
t0=$EPOCHREALTIME
ctl apply -f "$DIR/many.yaml" >/dev/null || exit 1
APPLY_MS=$(ms_since "$t0")
if ip netns exec "$ID-server" "$BUILD/sluice-probe" ping "$IP_client" --count 1 --timeout 300 >/dev/null 2>&1; then
	echo "bench-policy: egress from the server was not blocked right after apply" >&2
	exit 1
fi
t0=$EPOCHREALTIME
ctl delete -f "$DIR/many.yaml" >/dev/null || exit 1
DELETE_MS=$(ms_since "$t0")
ip netns exec "$ID-server" "$BUILD/sluice-probe" ping "$IP_client" --count 1 --timeout 1000 >/dev/null 2>&1 ||
	{ echo "bench-policy: egress from the server still blocked after delete" >&2; exit 1; }

printf '\n%-52s %12s %12s %8s\n' "measurement" "no policy" "policy" "ratio"
printf '%-52s %12.0f %12.0f %8s\n' "TCP connections/s, client -> server (one at a time)" "$CN" "$CP" \
	"$(echo "scale=3; $CP / $CN" | bc -l | sed 's/^\./0./')"
printf '%-52s %12s %12.1f\n' "apply $((POLICIES + 1)) NetworkPolicies -> enforced (ms)" "-" "$APPLY_MS"
printf '%-52s %12s %12.1f\n' "delete them -> enforced (ms)" "-" "$DELETE_MS"
printf '  raw cps.none   %s\n  raw cps.policy %s\n' "$(paste -sd' ' "$DIR/cps.none")" "$(paste -sd' ' "$DIR/cps.policy")"
