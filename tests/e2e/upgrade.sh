#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# An agent replaced by a newer build over the older one's pins and state:
# OLD_BUILD's agent wires up two pods and starts a TCP stream between them,
# is killed with SIGKILL, and this build's agent starts on the same --bpffs
# and --state-dir. The stream must survive, the pinned maps must be the very
# same maps (same ids: reused by name, not replaced), the pods' attachments
# must run the new agent's programs on those maps, and old and new pods must
# talk. Then the same for two nodes in overlay mode with masquerade: both
# agents upgraded under a cross-node stream, every pin kept, the uplink's and
# the vxlan device's programs the new ones. Written for the change from one
# BPF object (pod.bpf.o) to one per entry file; it holds for any upgrade
# that keeps the maps' layouts.
#
#   tests/e2e/upgrade.sh                          from UPGRADE_FROM (below), built here
#   OLD_BUILD=/path/to/old/build tests/e2e/upgrade.sh
#
# Without OLD_BUILD, the older version is UPGRADE_FROM (default 2fb6085, the
# last commit with the single BPF object and today's map layouts), built from
# this repository's history into a scratch directory; exit 77 when that
# commit is not in the history (a shallow clone). The agents attach with tc
# (their default; AGENT_ARGS is not used), whose filters name the program
# they run.
set -uo pipefail
TEST_NAME=upgrade
source "$(dirname "$0")/../lib/common.sh"
need_root
unset AGENT_ARGS
if [ -z "${OLD_BUILD:-}" ]; then
	UPGRADE_FROM=${UPGRADE_FROM:-2fb6085}
	if ! git -C "$ROOT" cat-file -e "$UPGRADE_FROM^{commit}" 2>/dev/null; then
		echo "$TEST_NAME: $UPGRADE_FROM is not in this repository's history; set OLD_BUILD" >&2
		exit 77
	fi
	OLD_SRC=$(mktemp -d /tmp/sluice-upgrade-old.XXXXXX)
	CLEANUP_PATHS+=("$OLD_SRC")
	echo "$TEST_NAME: building $UPGRADE_FROM, the version to upgrade from" >&2
	git -C "$ROOT" archive "$UPGRADE_FROM" | tar -x -C "$OLD_SRC" &&
		make -s -C "$OLD_SRC" -j"$(nproc)" build/sluice-agent build/sluice-cni build/sluicectl build/sluice-probe \
			>"$OLD_SRC/build.log" 2>&1 || { cat "$OLD_SRC/build.log" >&2; exit 1; }
	OLD_BUILD=$OLD_SRC/build
fi
if [ ! -x "$OLD_BUILD/sluice-agent" ]; then
	echo "$TEST_NAME: $OLD_BUILD/sluice-agent missing: OLD_BUILD names the older version's build directory" >&2
	exit 1
fi
NEW_BUILD=$BUILD

ID=slu$$
NODE=$ID-node
DIR=$(mktemp -d /tmp/sluice-upgrade.XXXXXX)
BPFFS=/sys/fs/bpf/$ID
CIDR=10.249.0.0/24
CLEANUP_PATHS+=("$DIR" "$BPFFS")
SOCK=$DIR/agent.sock
conf() { printf '{"cniVersion":"1.0.0","name":"sluice","type":"sluice-cni","socket":"%s"}' "$SOCK"; }
map_id() { bpftool map show pinned "$BPFFS/$1" -j | jq -r .id; }
MAPS=(sluice_ep_v2 sluice_ct4_v1 sluice_ipc_v2 sluice_pol_v1 sluice_deny_v1 sluice_stats_v2
      sluice_frag4_v1 sluice_snat4_v1 sluice_rnat4_v1 sluice_nomasq_v1)
# The id of the from_pod program on the host veth of the pod with address $1.
from_pod_id() {
	local dev
	dev=$(ip -n "$NODE" -o route get "$1" | sed -n 's/.* dev \([^ ]*\).*/\1/p')
	tc -n "$NODE" -j filter show dev "$dev" ingress |
		jq -r '[.[] | select(.options.prog.name == "from_pod" or .options.bpf_name == "from_pod") | .options.prog.id][0]'
}

netns_add "$NODE"
declare -A IP
add_pod() {
	local i=$1 out
	netns_add "$ID-p$i"
	out=$(cni ADD "c$ID$i" "/run/netns/$ID-p$i" "$(conf)")
	IP[$i]=$(jq -r '.ips[0].address // empty' <<<"$out" | cut -d/ -f1)
	check "ADD pod $i with the $2 agent" test -n "${IP[$i]}"
	serve "$ID-p$i" || not_ok "echo server in pod $i"
}

echo "== the old agent ($OLD_BUILD): two pods, a stream between them"
BUILD=$OLD_BUILD start_agent "$NODE" "$CIDR" "$DIR" || exit 1
BUILD=$OLD_BUILD add_pod 1 old
BUILD=$OLD_BUILD add_pod 2 old
check "old agent: pod 1 reaches pod 2" probe "$ID-p1" tcp "${IP[2]}" 8080 --timeout 1000
declare -A BEFORE
for m in "${MAPS[@]}"; do BEFORE[$m]=$(map_id "$m"); done
check "old agent pinned all ${#MAPS[@]} maps" \
	bash -c "[ $(printf '%s\n' "${BEFORE[@]}" | grep -c '^[0-9][0-9]*$') -eq ${#MAPS[@]} ]"
OLD_PROG=$(from_pod_id "${IP[1]}")
STREAM_OUT=$DIR/stream.json
probe "$ID-p1" stream "${IP[2]}" 8080 --seconds 4 --interval-ms 20 >"$STREAM_OUT" 2>&1 &
STREAM_PID=$!
sleep 1

echo "== SIGKILL, then this build's agent ($NEW_BUILD) on the same pins and state"
{ kill -9 "$AGENT_PID"; wait "$AGENT_PID"; } 2>/dev/null
BUILD=$NEW_BUILD start_agent "$NODE" "$CIDR" "$DIR" || exit 1
wait "$STREAM_PID"
rc=$?
check "the TCP connection survived the upgrade" \
	bash -c "[ $rc -eq 0 ] && jq -e '.broken == false and .errors == 0 and .echoed == .messages' '$STREAM_OUT'"
for m in "${MAPS[@]}"; do
	check "$m is the old agent's map (id ${BEFORE[$m]})" test "$(map_id "$m")" = "${BEFORE[$m]}"
done
NEW_PROG=$(from_pod_id "${IP[1]}")
check "pod 1's from_pod is the new agent's program (id $OLD_PROG -> $NEW_PROG)" \
	bash -c "[ -n '$OLD_PROG' ] && [ '$OLD_PROG' != null ] && [ -n '$NEW_PROG' ] && [ '$NEW_PROG' != null ] && [ '$NEW_PROG' != '$OLD_PROG' ]"
check "the new from_pod uses the pinned endpoint and conntrack maps" \
	bash -c "bpftool prog show id '$NEW_PROG' -j |
		jq -e '.map_ids | index(${BEFORE[sluice_ep_v2]}) != null and index(${BEFORE[sluice_ct4_v1]}) != null'"
check "new agent lists both old pods" \
	bash -c "'$NEW_BUILD/sluicectl' --socket '$SOCK' get endpoints -o json | jq -e '[.endpoints[].ip] | sort == ([\"${IP[1]}\", \"${IP[2]}\"] | sort)'"
check "old pods talk through the new programs" probe "$ID-p2" tcp "${IP[1]}" 8080 --timeout 1000
add_pod 3 new
check "a new pod reaches an old one" probe "$ID-p3" tcp "${IP[1]}" 8080 --timeout 1000
check "an old pod reaches the new one" probe "$ID-p2" udp "${IP[3]}" 8081 --timeout 1000
check "the counters carried on (forward-local over the old pins)" \
	bash -c "'$NEW_BUILD/sluicectl' --socket '$SOCK' metrics -o json | jq -e '[.metrics[] | select(.reason == \"forward-local\")][0].packets > 200'"

for i in 1 2 3; do cni DEL "c$ID$i" "/run/netns/$ID-p$i" "$(conf)" >/dev/null; done
check "endpoint map is empty after DEL" test "$(bpftool map dump pinned "$BPFFS/sluice_ep_v2" -j | jq length)" = 0
{ kill -9 "$AGENT_PID"; wait "$AGENT_PID"; } 2>/dev/null

echo "== two nodes, overlay routing with masquerade: both agents upgraded under a cross-node stream"
# shellcheck source=../multinode/lib.sh
source "$(dirname "$0")/../multinode/lib.sh"
MN_DIR=$DIR/mn
P=${ID}m
NS=up
# (masquerade is on by default with --device)
# mn_tc_prog N DEV DIR NAME: the id of program NAME on node N's DEV in direction DIR.
mn_tc_prog() {
	tc -n "$P-node$1" -j filter show dev "$2" "$3" |
		jq -r --arg name "$4" '[.[] | .options.prog // empty | select(.name == $name) | .id][0]'
}
# replaced OLD NEW: NEW is a program id, and not OLD.
replaced() { [ -n "$2" ] && [ "$2" != null ] && [ -n "$1" ] && [ "$1" != null ] && [ "$2" != "$1" ]; }
encap_count() {
	mn_ctl "$P" 1 metrics -o json | jq '[.metrics[] | select(.reason == "overlay-encap")][0].packets // 0'
}
mn_topology "$P" 2 || { log "could not build the topology"; exit 1; }
declare -A OLDAGENT
for n in 1 2; do
	BUILD=$OLD_BUILD mn_start_agent "$P" "$n" overlay || { log "node$n's old agent did not start"; exit 1; }
	OLDAGENT[$n]=$MN_AGENT_PID
done
netns_add "$P-a"
netns_add "$P-b"
A=$(BUILD=$OLD_BUILD mn_pod_add "$P" 1 a "$NS" | jq -r '.ips[0].address // empty' | cut -d/ -f1)
B=$(BUILD=$OLD_BUILD mn_pod_add "$P" 2 b "$NS" | jq -r '.ips[0].address // empty' | cut -d/ -f1)
check "old agents: pods a (node1) and b (node2) have addresses" test -n "$A" -a -n "$B"
cluster() {
	jq -cn --arg ns "$NS" '{apiVersion: "v1", kind: "Namespace", metadata: {name: $ns}}'
	mn_node_json 1
	mn_node_json 2
	mn_pod_json "$NS" a 1 "$A" web
	mn_pod_json "$NS" b 2 "$B" web
}
apply_cluster() { cluster | mn_list | BUILD=$OLD_BUILD mn_apply_all "$P" 2; }
check "old agents: Nodes and Pods applied" apply_cluster
serve "$P-a" || not_ok "echo server in pod a"
serve "$P-b" || not_ok "echo server in pod b"
check "old agents: a reaches b across nodes" \
	eventually 5 probe "$P-a" tcp "$B" 8080 --timeout 1000
declare -A MBEFORE VX
for m in "${MAPS[@]}"; do MBEFORE[$m]=$(bpftool map show pinned "/sys/fs/bpf/$P-node1/$m" -j | jq -r .id); done
UP_IN=$(mn_tc_prog 1 uplink0 ingress from_netdev)
UP_OUT=$(mn_tc_prog 1 uplink0 egress to_netdev)
VX_IN=$(mn_tc_prog 1 sluice_vxlan ingress from_overlay)
VX_OUT=$(mn_tc_prog 1 sluice_vxlan egress to_overlay)
ENC=$(encap_count)
probe "$P-a" stream "$B" 8080 --seconds 4 --interval-ms 20 >"$DIR/mn-stream.json" 2>&1 &
STREAM_PID=$!
sleep 1
for n in 1 2; do
	{ kill -9 "${OLDAGENT[$n]}"; wait "${OLDAGENT[$n]}"; } 2>/dev/null
	mn_start_agent "$P" "$n" overlay || { log "node$n's new agent did not start"; exit 1; }
done
wait "$STREAM_PID"
rc=$?
check "the cross-node TCP connection survived both upgrades" \
	bash -c "[ $rc -eq 0 ] && jq -e '.broken == false and .errors == 0 and .echoed == .messages' '$DIR/mn-stream.json'"
same=0
for m in "${MAPS[@]}"; do
	[ "$(bpftool map show pinned "/sys/fs/bpf/$P-node1/$m" -j | jq -r .id)" = "${MBEFORE[$m]}" ] && same=$((same + 1))
done
check "node1: all ${#MAPS[@]} pinned maps are the old agent's ($same the same)" test "$same" -eq "${#MAPS[@]}"
check "node1: from_netdev on uplink0 is the new agent's" \
	replaced "$UP_IN" "$(mn_tc_prog 1 uplink0 ingress from_netdev)"
check "node1: to_netdev on uplink0 is the new agent's" \
	replaced "$UP_OUT" "$(mn_tc_prog 1 uplink0 egress to_netdev)"
check "node1: from_overlay on sluice_vxlan is the new agent's" \
	replaced "$VX_IN" "$(mn_tc_prog 1 sluice_vxlan ingress from_overlay)"
check "node1: to_overlay on sluice_vxlan is the new agent's" \
	replaced "$VX_OUT" "$(mn_tc_prog 1 sluice_vxlan egress to_overlay)"
check "after the upgrade: a reaches b (UDP, a new flow)" probe "$P-a" udp "$B" 8081 --timeout 1000
check "after the upgrade: b reaches a (TCP, a new flow the other way)" probe "$P-b" tcp "$A" 8080 --timeout 1000
check "node1's BPF encapsulation counted on over the old pins (overlay-encap grew from $ENC)" \
	test "$(encap_count)" -gt "$ENC"
summary
