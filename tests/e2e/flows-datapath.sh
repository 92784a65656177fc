#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The datapath's flow records end to end on one node (bpf/lib/flow.h,
# docs/OBSERVABILITY.md): pods made by the real CNI plugin in two
# namespaces, a NetworkPolicy, real TCP and UDP through the attached
# programs, and the records read from the pinned ring buffer
# (build/sluice-flowrb): START and END of an allowed connection with its
# rule, counters, FINs and round trip; dropped flows with the default-deny
# rule and a rate-limited DROP for the retransmitted SYN; an unisolated
# UDP flow; and nothing at all after a restart with --flows off. The agent
# is stopped while the test reads (its datapath keeps running).
set -uo pipefail
TEST_NAME=flows-datapath
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
declare -A IP
AGENT_ARGS="${AGENT_ARGS:-} --kube-proxy-replacement off"
DEFAULT=4294967295 # SLUICE_FLOW_RULE_DEFAULT

pod_add() { # NS NAME
	local ns=$1 name=$2
	netns_add "$ID-$ns-$name"
	IP[$ns/$name]=$(POD_NAMESPACE=$ns cni ADD "$name" "/run/netns/$ID-$ns-$name" "$CONF" |
		jq -r '.ips[0].address' | cut -d/ -f1)
	serve "$ID-$ns-$name" --tcp 8080 --tcp 8081 --udp 8080
}
# records MS: read the ring buffer for MS ms in the background into $DIR/recs
records() {
	"$BUILD/sluice-flowrb" "$BPFFS/sluice_flowrb_v1" "$1" >"$DIR/recs" &
	READER=$!
	CLEANUP_PIDS+=("$READER")
	sleep 0.2
}
# rec JQ-FILTER: some record matches
rec() { jq -e -s "any(.[]; $1)" "$DIR/recs" >/dev/null || { cat "$DIR/recs"; return 1; }; }

netns_add "$NODE"
start_agent "$NODE" "$CIDR" "$DIR" || exit 1
ctl apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Namespace
metadata: {name: x, labels: {team: red}}
---
apiVersion: v1
kind: Namespace
metadata: {name: "y", labels: {team: blue}}
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
metadata: {namespace: "y", name: c, labels: {app: other}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: x, name: db-from-web}
spec:
  podSelector: {matchLabels: {app: db}}
  policyTypes: [Ingress]
  ingress:
  - from: [{podSelector: {matchLabels: {app: web}}}]
    ports: [{protocol: TCP, port: 8080}]
YAML
pod_add x a
pod_add x b
pod_add y c
A=${IP[x/a]} B=${IP[x/b]} C=${IP[y/c]}

# The agent reads the same ring buffer (agent/flowlog.c), and a ring
# buffer has one consumer: it stops here, the datapath keeps running, and
# the test reads every record itself.
stop_agent() {
	kill "$AGENT_PID"
	wait "$AGENT_PID" 2>/dev/null
}
stop_agent

echo "== flows on"
records 6000
check "a -> b:8080 connects" probe "$ID-x-a" tcp "$B" 8080 --timeout 1000
check "a -> b:8081 is blocked" bash -c "! ip netns exec $ID-x-a $BUILD/sluice-probe tcp $B 8081 --timeout 1500"
check "c -> b:8080 is blocked" bash -c "! ip netns exec $ID-y-c $BUILD/sluice-probe tcp $B 8080 --timeout 2500"
check "a -> c udp answers" probe "$ID-x-a" udp "$C" 8080 --timeout 1000
wait "$READER"

check "START of a -> b:8080: forwarded by the policy's rule, both pods' identities" \
	rec ".event == 1 and .src == \"$A\" and .dst == \"$B\" and .dport == 8080 and .verdict == 1 and
	     .policy_rule != 0 and .policy_rule != $DEFAULT and .src_identity >= 256 and
	     .dst_identity >= 256 and .dir == 0 and .pkt_dir == 0 and .tcp_flags[0] == 2"
check "END of a -> b:8080 after FINs both ways, with counters and a round trip" \
	rec ".event == 3 and .src == \"$A\" and .dport == 8080 and .packets[0] >= 3 and
	     .packets[1] >= 3 and (.tcp_flags[0] % 2) == 1 and (.tcp_flags[1] % 2) == 1 and
	     .rtt_min_us > 0 and .rtt_srtt_us >= .rtt_min_us and .drops == 0"
check "a -> b:8081 dropped by default deny (no rule allows the port)" \
	rec ".event == 1 and .src == \"$A\" and .dport == 8081 and .verdict == 2 and .reason == 7 and
	     .policy_rule == $DEFAULT and .drops == 1"
check "c -> b:8080 dropped by default deny, from the other namespace" \
	rec ".event == 1 and .src == \"$C\" and .dst == \"$B\" and .verdict == 2 and .reason == 7 and
	     .policy_rule == $DEFAULT"
check "the retransmitted SYN of c -> b makes a DROP record, a second on" \
	rec ".event == 2 and .src == \"$C\" and .dst == \"$B\" and .drops >= 2"
check "at most one DROP record per flow and second" \
	bash -c "[ \$(jq -s '[.[] | select(.event == 2 and .src == \"$C\")] | length' '$DIR/recs') -le 3 ]"
check "a -> c udp: forwarded, no policy involved" \
	rec ".event == 1 and .src == \"$A\" and .dst == \"$C\" and .proto == 17 and .verdict == 1 and
	     .policy_rule == 0"

echo "== --flows off"
AGENT_ARGS="$AGENT_ARGS --flows off"
start_agent "$NODE" "$CIDR" "$DIR" || exit 1
stop_agent
records 2500
check "a -> b:8080 still connects" probe "$ID-x-a" tcp "$B" 8080 --timeout 1000
check "c -> b:8080 still blocked" bash -c "! ip netns exec $ID-y-c $BUILD/sluice-probe tcp $B 8080 --timeout 500"
wait "$READER"
check "no records with --flows off" test ! -s "$DIR/recs"

summary
