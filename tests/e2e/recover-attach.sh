#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# A pod whose programs a restarted agent cannot attach is cut off, never
# left open. While no agent runs, something on the node (an operator, a
# chained plugin) replaces sluice's egress filter on pod a's host veth by a
# u32 filter at the same priority: a's to_pod is gone, and the next agent
# can replace from_pod but not attach to_pod (the kernel refuses a filter
# of another kind at that priority). The agent must not leave a receiving
# with no policy, nor detach what it did attach: it sets a's host veth down
# and says why and what to do; pod b is untouched. Once the filter is
# removed, the next start attaches the programs and sets the veth up again.
# The same when an `ingress` qdisc took clsact's place: tc would "attach"
# to_pod to its ingress block, where it never sees what the pod receives.
#
# Exit: 0 all checks passed, 1 a check failed, 77 not root.
set -uo pipefail
TEST_NAME=recover-attach
source "$(dirname "$0")/../lib/common.sh"
need_root

ID=sra$$
NODE=$ID-node
DIR=$(mktemp -d /tmp/sluice-recatt.XXXXXX)
BPFFS=/sys/fs/bpf/$ID
CIDR=10.245.0.0/24
CLEANUP_PATHS+=("$DIR" "$BPFFS")
SOCK=$DIR/agent.sock
ctl() { "$BUILD/sluicectl" --socket "$SOCK" "$@"; }
conf() { printf '{"cniVersion":"1.1.0","name":"sluice","type":"sluice-cni","socket":"%s"}' "$SOCK"; }
declare -A IP HOSTIF

add() {
	local n=$1 out
	netns_add "$ID-$n"
	out=$(cni ADD "c$ID$n" "/run/netns/$ID-$n" "$(conf)") || return 1
	IP[$n]=$(jq -r '.ips[0].address' <<<"$out" | cut -d/ -f1)
	HOSTIF[$n]=$(jq -r '.interfaces[] | select(.sandbox == null) | .name' <<<"$out")
	serve "$ID-$n"
}
reach() { probe "$ID-$1" tcp "${IP[$2]}" 8080 --timeout 1000 >/dev/null; }
up() { ip -n "$NODE" -j link show "$1" | jq -e '.[0].flags | index("UP") != null' >/dev/null; }
not() { ! "$@"; }
stop_agent() {
	kill -9 "$AGENT_PID" 2>/dev/null
	wait "$AGENT_PID" 2>/dev/null
	rm -f "$SOCK"
}

netns_add "$NODE"
AGENT_ARGS="--attach-mode tc" start_agent "$NODE" "$CIDR" "$DIR" || exit 1
add a || not_ok "pod a"
add b || not_ok "pod b"
check "a reaches b, b reaches a" bash -c "$(declare -f probe reach); BUILD=$BUILD ID=$ID; $(declare -p IP); reach a b && reach b a"

stop_agent
ip netns exec "$NODE" tc filter del dev "${HOSTIF[a]}" egress prio 1
ip netns exec "$NODE" tc filter add dev "${HOSTIF[a]}" egress prio 1 protocol all u32 match u32 0 0 flowid 1:1
AGENT_ARGS="--attach-mode tc" start_agent "$NODE" "$CIDR" "$DIR" || exit 1
check "the agent says a's veth is not policed, set down, and what to do" \
	grep -E "no sluice program polices ${HOSTIF[a]} in both directions; set down, the pod is cut off: see what else holds the device's qdisc and filters" "$DIR/agent.log"
check "a's host veth ${HOSTIF[a]} is down" not up "${HOSTIF[a]}"
check "a reaches nobody (fail closed)" not reach a b
check "b's host veth is up" up "${HOSTIF[b]}"
check "CHECK of a fails (its programs are not attached)" not \
	cni CHECK "c${ID}a" "/run/netns/$ID-a" "$(conf | jq -c --arg ip "${IP[a]}/24" '. + {prevResult: {cniVersion: "1.1.0", ips: [{address: $ip}]}}')"

stop_agent
ip netns exec "$NODE" tc filter del dev "${HOSTIF[a]}" egress prio 1
AGENT_ARGS="--attach-mode tc" start_agent "$NODE" "$CIDR" "$DIR" || exit 1
check "once the filter is gone, the next start attaches a's programs and sets it up" \
	grep -E "${HOSTIF[a]} is policed again and back up" "$DIR/agent.log"
check "a's host veth is up" up "${HOSTIF[a]}"
check "a reaches b again" eventually 3 reach a b
check "a's programs are attached (tc ingress and egress)" bash -c "
	ip netns exec $NODE tc filter show dev ${HOSTIF[a]} ingress | grep -q from_pod &&
	ip netns exec $NODE tc filter show dev ${HOSTIF[a]} egress | grep -q to_pod"

echo "== an ingress qdisc in place of clsact"
stop_agent
ip netns exec "$NODE" tc qdisc del dev "${HOSTIF[a]}" clsact
ip netns exec "$NODE" tc qdisc add dev "${HOSTIF[a]}" ingress
AGENT_ARGS="--attach-mode tc" start_agent "$NODE" "$CIDR" "$DIR" || exit 1
check "the agent names the ingress qdisc where clsact belongs and cuts a off" bash -c "
	grep -q '${HOSTIF[a]} holds a qdisc of kind ingress where sluice.s clsact belongs' '$DIR/agent.log' &&
	[ \$(grep -c 'polices ${HOSTIF[a]} in both directions; set down' '$DIR/agent.log') = 2 ]"
check "a's host veth is down again" not up "${HOSTIF[a]}"
check "a reaches nobody" not reach a b
check "b still reaches the node's router side: its veth is up" up "${HOSTIF[b]}"
stop_agent
ip netns exec "$NODE" tc qdisc del dev "${HOSTIF[a]}" ingress
AGENT_ARGS="--attach-mode tc" start_agent "$NODE" "$CIDR" "$DIR" || exit 1
check "the ingress qdisc removed: a's programs attached on a new clsact, a back up" bash -c "
	ip netns exec $NODE tc qdisc show dev ${HOSTIF[a]} | grep -q clsact &&
	ip netns exec $NODE tc filter show dev ${HOSTIF[a]} egress | grep -q to_pod"
check "a reaches b again" eventually 3 reach a b

check "DEL a" cni DEL "c${ID}a" "/run/netns/$ID-a" "$(conf)"
check "DEL b" cni DEL "c${ID}b" "/run/netns/$ID-b" "$(conf)"
summary
