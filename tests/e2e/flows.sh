#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Flows end to end on one node (docs/OBSERVABILITY.md): traffic between two
# pods shows up in `sluicectl observe` with both pods' names and
# FORWARDED; a NetworkPolicy drop shows DROPPED with the policy's name
# within a second; --follow with filters prints a new matching flow and
# nothing else; a flow without packets gets the agent's END (idle); a flood
# of short flows into a small --flow-buffer counts the overwritten loss
# exactly (kept + overwritten = received).
#
# Needs the datapath's flow records (sluice_flowrb_v1): without them every
# check that waits for a flow fails, naming the missing records.
set -uo pipefail
TEST_NAME=flows
source "$(dirname "$0")/../lib/common.sh"
need_root

ID=slflw$$
NODE=$ID-node
DIR=$(mktemp -d /tmp/sluice-flows.XXXXXX)
BPFFS=/sys/fs/bpf/$ID
CIDR=10.243.0.0/24
SOCK=$DIR/agent.sock
CLEANUP_PATHS+=("$DIR" "$BPFFS")
CONF=$(printf '{"cniVersion":"1.1.0","name":"sluice","type":"sluice-cni","socket":"%s"}' "$SOCK")
ctl() { "$BUILD/sluicectl" --socket "$SOCK" "$@"; }
apply() { ctl apply -f - >/dev/null; }
declare -A IP
# Services translated (the flows name them): the node sockets' hooks on an
# empty cgroup of this test's own, so no other socket of the machine is
# translated.
CGROOT=$(awk '$9 == "cgroup2" {print $5; exit}' /proc/self/mountinfo)/$ID
mkdir "$CGROOT" || exit 1
# A cgroup goes with rmdir, not rm -r; then the common cleanup, with the
# exit status it was called with.
trap 'rc=$?; rmdir "$CGROOT" 2>/dev/null; (exit $rc); cleanup' EXIT
BASE_ARGS="${AGENT_ARGS:-} --cgroup-root $CGROOT --flow-idle-timeout 2"
AGENT_ARGS=$BASE_ARGS

pod_add() { # NS NAME
	local ns=$1 name=$2
	netns_add "$ID-$ns-$name"
	IP[$ns/$name]=$(POD_NAMESPACE=$ns cni ADD "$name" "/run/netns/$ID-$ns-$name" "$CONF" |
		jq -r '.ips[0].address' | cut -d/ -f1)
	serve "$ID-$ns-$name" --tcp 8080 --tcp 8081 --udp 8081
}
reach() { probe "$ID-${1%/*}-${1#*/}" "${4:-tcp}" "${IP[$2]}" "$3" --timeout 400 >/dev/null 2>&1; }
# observe_has JQ-FILTER OBSERVE-ARGS...: some flow observe prints matches.
observe_has() {
	local f=$1
	shift
	ctl observe -o json "$@" | jq -e -s "map(select($f)) | length > 0" >/dev/null
}
records_arrive() { [ "$(ctl status -o json | jq '.flows.received')" -gt 0 ]; }

netns_add "$NODE"
start_agent "$NODE" "$CIDR" "$DIR" || exit 1
apply <<'YAML'
apiVersion: v1
kind: Namespace
metadata: {name: x}
---
apiVersion: v1
kind: Namespace
metadata: {name: "y"}
---
apiVersion: v1
kind: Pod
metadata: {namespace: x, name: a, labels: {app: web}}
---
apiVersion: v1
kind: Pod
metadata: {namespace: x, name: b, labels: {app: db}}
---
apiVersion: v1
kind: Pod
metadata: {namespace: "y", name: c, labels: {app: client}}
YAML
pod_add x a
pod_add x b
pod_add y c

echo "== status: the flow buffer"
check "status -o json: buffer of 65536, nothing lost" \
	bash -c "'$BUILD/sluicectl' --socket '$SOCK' status -o json | jq -e '.flows.capacity == 65536 and .flows.lost.overwritten == 0'"
check "status text: a flows line" bash -c "'$BUILD/sluicectl' --socket '$SOCK' status | grep -E '^flows: +[0-9]+ of 65536 kept'"

echo "== a forwarded flow, both pods named"
check "x/a -> x/b:8080" reach x/a x/b 8080
if eventually 2 records_arrive; then
	ok "the datapath's records reach the agent"
else
	not_ok "the datapath's records reach the agent: none came through $BPFFS/sluice_flowrb_v1" \
		"(is the flows datapath there and --flows on?); the checks below fail with it"
fi
check "observe -o json: x/a -> x/b:8080 FORWARDED, both pods named" eventually 2 observe_has \
	'.source.namespace == "x" and .source.pod == "a" and .destination.pod == "b" and .destination.port == 8080 and .verdict == "FORWARDED" and .source.labels.app == "web"' \
	--from-pod x/a --to-pod x/b
check "observe's table: x/a:PORT -> x/b:8080 FORWARDED TCP/8080" bash -c "
	'$BUILD/sluicectl' --socket '$SOCK' observe --to-pod x/b --port 8080 |
		grep -E 'FORWARDED +x/a:[0-9]+ +-> x/b:8080 +TCP/8080'"
check "observe: a filter that matches nothing prints nothing" \
	test -z "$(ctl observe --from-pod x/b --to-pod x/a --verdict DROPPED)"

echo "== a NetworkPolicy drop, named, within a second"
apply <<'YAML'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: x, name: db-isolated}
spec:
  podSelector: {matchLabels: {app: db}}
  policyTypes: [Ingress]
  ingress:
  - from: [{podSelector: {matchLabels: {app: web}}}]
YAML
t0=$(date +%s%N)
probe "$ID-y-c" tcp "${IP[x/b]}" 8081 --timeout 1500 >/dev/null 2>&1 &
PROBE=$!
found=0
while [ $(( ($(date +%s%N) - t0) / 1000000 )) -lt 1000 ]; do
	if observe_has '.verdict == "DROPPED"' --from-pod y/c --to-pod x/b; then
		found=$(( ($(date +%s%N) - t0) / 1000000 ))
		break
	fi
	sleep 0.05
done
wait $PROBE
check "y/c -> x/b:8081 DROPPED, seen in observe within 1 s (${found} ms)" test "$found" -gt 0
check "the drop names the isolating policy (JSON)" observe_has \
	'.reason == "drop-policy" and .deniedByDefault and (.isolatedBy | map(.namespace + "/" + .name) | index("x/db-isolated") != null)' \
	--from-pod y/c --verdict DROPPED
out=$(ctl observe --from-pod y/c --to-pod x/b --verdict DROPPED --last 1)
check "the table says why in words: DROPPED by default: isolated by x/db-isolated" \
	bash -c "grep -q 'new flow no policy rule allows' <<<'$out' && grep -q 'DROPPED by default: isolated by NetworkPolicy x/db-isolated' <<<'$out'"
check "--policy x/db-isolated finds it" observe_has '.source.pod == "c"' --policy x/db-isolated
check "x/a -> x/b:8081 allowed by the policy's rule" reach x/a x/b 8081
check "observe names the allowing rule" eventually 2 observe_has \
	'.policy.name == "db-isolated" and .policy.rule == 0 and .verdict == "FORWARDED"' \
	--from-pod x/a --to-pod x/b --port 8081

echo "== --follow with filters"
# sluicectl itself in the background (not the ctl function's subshell), so
# that its pid is the one killed.
"$BUILD/sluicectl" --socket "$SOCK" observe --follow -o json --from-pod y/c --to-pod x/a \
	>"$DIR/follow.json" 2>"$DIR/follow.err" &
FOLLOW=$!
CLEANUP_PIDS+=("$FOLLOW")
sleep 0.5
check "x/a -> x/b (not followed)" reach x/a x/b 8080
check "y/c -> x/a:8080" reach y/c x/a 8080
check "--follow printed the new y/c -> x/a flow" eventually 3 \
	jq -e -s 'map(select(.source.pod == "c" and .destination.pod == "a")) | length > 0' "$DIR/follow.json"
check "--follow printed nothing the filter excludes" \
	jq -e -s 'map(select(.source.pod != "c" or .destination.pod != "a")) | length == 0' "$DIR/follow.json"
check "--follow printed no flow twice" jq -e -s 'map(.seq) | length == (unique | length)' "$DIR/follow.json"
kill "$FOLLOW" 2>/dev/null
wait "$FOLLOW" 2>/dev/null

echo "== a Service flow names the Service"
apply <<YAML
apiVersion: v1
kind: Service
metadata: {namespace: x, name: db-svc}
spec:
  clusterIP: 10.96.43.10
  ports: [{name: http, protocol: TCP, port: 80, targetPort: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {namespace: x, name: db-svc-1, labels: {kubernetes.io/service-name: db-svc}}
addressType: IPv4
ports: [{name: http, protocol: TCP, port: 8080}]
endpoints:
- {addresses: [${IP[x/b]}], nodeName: $NODE, conditions: {ready: true}}
YAML
check "x/a -> the Service 10.96.43.10:80" \
	eventually 3 probe "$ID-x-a" tcp 10.96.43.10 80 --timeout 400
check "observe --service x/db-svc: x/a -> x/b:8080 through 10.96.43.10:80" eventually 2 observe_has \
	'.source.pod == "a" and .destination.pod == "b" and .destination.port == 8080 and .service.name == "db-svc" and .service.namespace == "x" and .service.ip == "10.96.43.10" and .service.port == 80' \
	--service x/db-svc
check "the table's SERVICE column says x/db-svc" bash -c "
	'$BUILD/sluicectl' --socket '$SOCK' observe --service x/db-svc --last 1 | grep -E 'x/a:[0-9]+ +-> x/b:8080 +TCP/8080 +x/db-svc'"

echo "== an idle flow ends at the agent"
check "x/a -> x/b UDP 8081" reach x/a x/b 8081 udp
check "its END (idle, made by the agent) within --flow-idle-timeout 2 s + a scan" eventually 8 observe_has \
	'.event == "END" and .endCause == "idle" and .agentMade and .protocol == "UDP"' \
	--from-pod x/a --to-pod x/b --protocol UDP

echo "== top"
check "top flows: the TCP flows x/a -> x/b have a round trip" bash -c "
	'$BUILD/sluicectl' --socket '$SOCK' top flows -o json |
		jq -e '[.flows[] | select(.source.pod == \"a\" and .destination.pod == \"b\" and .rttSmoothedUs > 0)] | length > 0'"
check "top pods: x/a -> x/b with samples, p50 <= p99" bash -c "
	'$BUILD/sluicectl' --socket '$SOCK' top pods -o json |
		jq -e '[.podPairs[] | select(.source == \"x/a\" and .destination == \"x/b\" and .samples > 0 and .p50Us <= .p99Us and .p50Us > 0)] | length == 1'"
check "top pods: the namespace pair x -> x" bash -c "
	'$BUILD/sluicectl' --socket '$SOCK' top pods -o json |
		jq -e '[.namespacePairs[] | select(.source == \"x\" and .destination == \"x\" and .samples > 0)] | length == 1'"
check "top pods' table" bash -c "'$BUILD/sluicectl' --socket '$SOCK' top pods | grep -E '^x/a +x/b +[1-9]'"

echo "== a flood into a small buffer: the overwritten loss counted exactly"
kill "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null
AGENT_ARGS="$BASE_ARGS --flow-buffer 50"
start_agent "$NODE" "$CIDR" "$DIR" || exit 1
for i in $(seq 150); do reach x/a x/b 8080 || echo "connection $i failed"; done >"$DIR/flood.out"
check "150 short connections x/a -> x/b" test ! -s "$DIR/flood.out"
# The status and the list from one quiet moment (an idle scan may add an
# END in between): both read until the status before and after agree.
for _ in $(seq 10); do
	st=$(ctl status -o json | jq -c .flows)
	ctl observe -o json >"$DIR/all.json"
	[ "$st" = "$(ctl status -o json | jq -c .flows)" ] && break
	sleep 0.3
done
echo "   flows: $st"
check "the buffer is full: 50 kept" jq -e '.used == 50 and .capacity == 50' <<<"$st"
check "at least one record per connection received" jq -e '.received >= 150' <<<"$st"
check "kept + overwritten = received" jq -e '.used + .lost.overwritten == .received' <<<"$st"
check "observe returns exactly the 50 kept, the newest, in order" \
	jq -e -s --argjson st "$st" \
		'length == 50 and ([.[].seq] == [range($st.lastSeq - 49; $st.lastSeq + 1)])' "$DIR/all.json"

summary
