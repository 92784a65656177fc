#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# DEL while the agent is down (docs/CNI.md#del-while-the-agent-is-down): an
# agent and three pods through the real sluice-cni; the agent stopped (once
# with SIGTERM, which removes its socket, once with SIGKILL, which leaves
# it); DELs through the plugin succeed with nothing printed and are queued;
# ADD, CHECK and GC answer 11, STATUS 50; the restarted agent replays the
# queue before its socket answers, and the deleted pods' addresses, veths,
# map entries and state files are gone while the other pods keep working.
# A garbage entry is set aside and does not stop the agent.
set -uo pipefail
TEST_NAME=delqueue
source "$(dirname "$0")/../lib/common.sh"
need_root

ID=sdq$$
NODE=$ID-node
DIR=$(mktemp -d /tmp/sluice-delq.XXXXXX)
BPFFS=/sys/fs/bpf/$ID
CIDR=10.247.0.0/24
ROUTER=10.247.0.1
CLEANUP_PATHS+=("$DIR" "$BPFFS")
SOCK=$DIR/agent.sock
QUEUE=$DIR/del-queue
ctl() { "$BUILD/sluicectl" --socket "$SOCK" "$@"; }
conf() { printf '{"cniVersion":"1.1.0","name":"sluice","type":"sluice-cni","socket":"%s"}' "$SOCK"; }
queued() { find "$QUEUE" -mindepth 1 -maxdepth 1 -name 'del-*' | wc -l; }

declare -A IP HOSTIF RESULT
# add N: pod N through the plugin; its address, host veth and result.
add() {
	local n=$1 out
	[ -e "/run/netns/$ID-p$n" ] || netns_add "$ID-p$n"
	out=$(cni ADD "c$ID$n" "/run/netns/$ID-p$n" "$(conf)") || return 1
	RESULT[$n]=$out
	IP[$n]=$(jq -r '.ips[0].address' <<<"$out" | cut -d/ -f1)
	HOSTIF[$n]=$(jq -r '.interfaces[] | select(.sandbox == null) | .name' <<<"$out")
	[ -n "${IP[$n]}" ] && [ -n "${HOSTIF[$n]}" ]
}

# The pod's address as map key bytes (network order).
key_bytes() { tr . ' ' <<<"$1"; }
in_ep_map() { bpftool map lookup pinned "$BPFFS/sluice_ep_v2" key $(key_bytes "$1") >/dev/null 2>&1; }
# sluice_ipc_v2: {prefixlen (host order), address}.
in_ipcache() { bpftool map lookup pinned "$BPFFS/sluice_ipc_v2" key 32 0 0 0 $(key_bytes "$1") >/dev/null 2>&1; }
listed() { ctl get endpoints -o json | jq -e --arg ip "$1" '[.endpoints[].ip] | index($ip) != null' >/dev/null; }
has_state() { ls "$DIR/state/endpoints/" | grep -q "^c$ID${1}_"; }
has_addr() { test -e "$DIR/state/ipam/$1"; }
has_veth() { ip -n "$NODE" link show "$1" >/dev/null 2>&1; }
not() { ! "$@"; }

# gone N: every trace of pod N's attachment is gone.
gone() {
	local n=$1 ip=${IP[$1]}
	check "pod $n: no endpoint listed" not listed "$ip"
	check "pod $n: address $ip released (IPAM state)" not has_addr "$ip"
	check "pod $n: host veth ${HOSTIF[$n]} deleted" not has_veth "${HOSTIF[$n]}"
	check "pod $n: no endpoint map entry" not in_ep_map "$ip"
	check "pod $n: no ipcache entry" not in_ipcache "$ip"
	check "pod $n: no endpoint state file" not has_state "$n"
}

# present N: pod N is still wired up and reaches the node.
wired() {
	local n=$1
	listed "${IP[$n]}" && has_state "$n" && has_addr "${IP[$n]}" && has_veth "${HOSTIF[$n]}" &&
		in_ep_map "${IP[$n]}" && in_ipcache "${IP[$n]}"
}
present() {
	check "pod $1: still listed, its address, veth, state file and map entries in place" wired "$1"
	check "pod $1: still reaches the node (TCP)" probe "$ID-p$1" tcp "$ROUTER" 8080 --timeout 1000
}

# del_down N: DEL of pod N with no agent: success, nothing printed.
del_down() {
	local n=$1 out rc
	out=$(cni DEL "c$ID$n" "/run/netns/$ID-p$n" "$(conf)" 2>"$DIR/del.err")
	rc=$?
	check "DEL of pod $n without an agent exits 0 and prints nothing" \
		test "$rc" -eq 0 -a -z "$out"
}

# while_down: what the other commands answer with no agent.
while_down() {
	local out cfg
	out=$(cni ADD "c${ID}new" "/run/netns/$ID-p3" "$(conf)")
	check "ADD without an agent: code 11" jq -e '.code == 11' <<<"$out"
	cfg=$(jq -c --argjson p "${RESULT[3]}" '. + {prevResult: $p}' <<<"$(conf)")
	out=$(cni CHECK "c${ID}3" "/run/netns/$ID-p3" "$cfg")
	check "CHECK without an agent: code 11" jq -e '.code == 11' <<<"$out"
	out=$(cni STATUS "" "" "$(conf)")
	check "STATUS without an agent: code 50" jq -e '.code == 50' <<<"$out"
	cfg=$(jq -c '. + {"cni.dev/valid-attachments": []}' <<<"$(conf)")
	out=$(cni GC "" "" "$cfg")
	check "GC without an agent: code 11" jq -e '.code == 11' <<<"$out"
}

# restart: start the agent; its log of this start in $DIR/start.log.
restart() {
	local before
	before=$(wc -l <"$DIR/agent.log")
	start_agent "$NODE" "$CIDR" "$DIR" || return 1
	tail -n +"$((before + 1))" "$DIR/agent.log" >"$DIR/start.log"
}

# replayed_first N: the start's log shows N DELs replayed before the socket
# was served (the "ready ... API on" line follows api_listen).
replayed_first() {
	local r ready
	r=$(grep -n "replayed $1 queued DELs" "$DIR/start.log" | head -1 | cut -d: -f1)
	ready=$(grep -n "ready: pod CIDR" "$DIR/start.log" | head -1 | cut -d: -f1)
	[ -n "$r" ] && [ -n "$ready" ] && [ "$r" -lt "$ready" ]
}

netns_add "$NODE"
start_agent "$NODE" "$CIDR" "$DIR" || exit 1
serve "$NODE" --tcp 8080 || not_ok "echo server on the node"
check "the agent made its DEL queue: root's, mode 0700" \
	test "$(stat -c '%u %a' "$QUEUE")" = "0 700"

echo "== three pods"
for n in 1 2 3; do
	check "ADD pod $n" add "$n"
done
for n in 1 2 3; do
	check "pod $n: listed, its address, veth, state file and map entries in place" wired "$n"
done
USED=$(ctl status -o json | jq '.ipam.used')

echo "== agent stopped with SIGTERM (its socket removed): DEL pods 1 and 2"
kill -TERM "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null
check "the agent removed its socket" test ! -e "$SOCK"
del_down 1
del_down 2
check "the plugin said on stderr that it queued the DEL" grep -q "queued as $QUEUE/del-" "$DIR/del.err"
del_down 1
check "two entries queued (a repeated DEL replaces its entry)" test "$(queued)" -eq 2
while_down
check "ADD, CHECK, GC and STATUS queued nothing" test "$(queued)" -eq 2
check "pod 1 is still wired up while no agent runs" has_veth "${HOSTIF[1]}"
printf 'not a DEL' >"$QUEUE/del-0123456789abcdef"

echo "== agent started: the queue is replayed before it serves"
restart || exit 1
check "2 DELs replayed before the socket was served (log order)" replayed_first 2
check "status counts 2 replayed, 1 malformed" \
	bash -c "'$BUILD/sluicectl' --socket '$SOCK' status -o json | jq -e '.delQueue == {replayed: 2, failed: 0, malformed: 1}'"
check "sluicectl status says so" bash -c "'$BUILD/sluicectl' --socket '$SOCK' status | grep -q '^del queue: *2 DELs .* 0 failed, 1 malformed'"
check "the queue is empty" test "$(queued)" -eq 0
check "the garbage entry is set aside as bad-del-0123456789abcdef" test -e "$QUEUE/bad-del-0123456789abcdef"
check "the start log names the garbage entry and why" grep -q "del-0123456789abcdef: not JSON" "$DIR/start.log"
gone 1
gone 2
present 3
check "IPAM holds 2 addresses fewer" test "$(ctl status -o json | jq '.ipam.used')" -eq "$((USED - 2))"
check "ADD pod 4 (a new container) gets an address" add 4
check "pod 4's address is not pod 3's" test "${IP[4]}" != "${IP[3]}"
present 4

echo "== agent killed with SIGKILL (its socket left behind): DEL pod 3 and an unknown container"
kill -9 "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null
check "the socket file is still there, nobody listening" test -S "$SOCK"
del_down 3
out=$(cni DEL "c${ID}never" "" "$(conf)")
rc=$?
check "DEL of a container never added, without an agent: exit 0, nothing printed" \
	test "$rc" -eq 0 -a -z "$out"
check "two entries queued" test "$(queued)" -eq 2
while_down
restart || exit 1
check "2 DELs replayed before the socket was served (log order)" replayed_first 2
check "the queue is empty" test "$(queued)" -eq 0
gone 3
present 4
check "only pod 4 is left" \
	bash -c "'$BUILD/sluicectl' --socket '$SOCK' get endpoints -o json | jq -e '[.endpoints[].ip] == [\"${IP[4]}\"]'"

echo "== a queue directory others can write to stops the agent"
kill -TERM "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null
chmod 0777 "$QUEUE"
out=$(timeout 20 nsenter --net="/run/netns/$NODE" "$BUILD/sluice-agent" --pod-cidr "$CIDR" \
	--node-name "$NODE" --socket "$SOCK" --state-dir "$DIR/state" --bpffs "$BPFFS" 2>&1)
rc=$?
refused() { [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && grep -q "the DEL queue $QUEUE is owned by uid 0 with mode 0777.*chmod 0700" <<<"$out"; }
check "the agent refuses to start (exit $rc), naming the queue and the fix" refused
check "and serves no socket" test ! -e "$SOCK"
check "it stopped before touching anything (no metrics listener, no program loaded)" \
	bash -c "! grep -qE 'metrics on|XDP|attached|recovered' <<<\"\$1\"" _ "$out"
out=$(cni DEL "c${ID}4" "/run/netns/$ID-p4" "$(conf)")
check "the plugin refuses to queue there: code 11 naming the queue" \
	jq -e --arg q "$QUEUE" '.code == 11 and (.details | contains($q))' <<<"$out"
check "and wrote nothing" test "$(queued)" -eq 0
chmod 0700 "$QUEUE"

summary
