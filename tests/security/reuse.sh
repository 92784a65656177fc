#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# reuse: a pod's address handed to the next pod carries none of the old
# pod's per-flow state (issue 10). Two nodes (tests/multinode/lib.sh); node
# 1's pod CIDR is a /30, one pod address, so every pod on node 1 gets the
# same address. Per mode:
#
#   a) victim V on node 1 (no policy) has a UDP flow (source port 40000)
#      and a long-lived TCP connection (source port 40001) from attacker M
#      on node 2; both are tracked on node 1. V is deleted (CNI DEL): no
#      connection-tracking or NAT entry on node 1 names its address. V2
#      gets the address, with an ingress policy that admits only app=friend.
#      M sends again on both old 5-tuples: V2 counts nothing (datagrams,
#      TCP segments); friend F (node 2) still reaches V2 (UDP, TCP), and M
#      on a fresh port does not.
#   b) the same with node 1's agent killed (SIGKILL) and restarted between
#      the flows and the DEL.
#   c) state left behind while no agent ran (connection-tracking and NAT
#      entries of the free address, written into the pinned maps with the
#      agent killed): the restarted agent removes them before it hands the
#      address out, and keeps the router's and remote addresses' entries.
#   d) node 2 (a /24) does not hand a just-released address to the next
#      pod, also right after its agent restarted (least recently used).
#   e) the other side: M (node 2, now admitting only app=friend) started a
#      UDP flow to victim E on node 1, tracked on node 2. E goes (DEL, its
#      Pod object deleted): node 2 drops every entry naming E's address.
#      E2, a pod M does not admit, gets the address and sends on the old
#      tuple's reply direction: M receives nothing; F still reaches M.
#
#   tests/security/reuse.sh             overlay, then native
#   tests/security/reuse.sh overlay     one mode (or native)
#
# Last line "reuse: N passed, M failed"; exit status 0 when all passed, 77
# when a tool is missing. BUILD selects the binaries (tests/lib/common.sh).
# shellcheck source-path=SCRIPTDIR
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TEST_NAME=${REUSE_TEST_NAME:-reuse}
# shellcheck source=../lib/common.sh
source "$HERE/../lib/common.sh"
# shellcheck source=../multinode/lib.sh
source "$HERE/../multinode/lib.sh"

for tool in jq bpftool python3 nsenter; do
	command -v "$tool" >/dev/null || { echo "$TEST_NAME: $tool missing" >&2; exit 77; }
done
mn_mode reuse REUSE_TEST_NAME "$0" "$@"
need_root
for bin in sluice-agent sluice-cni sluicectl; do
	[ -x "$BUILD/$bin" ] || { log "$BUILD/$bin missing (run make)"; exit 1; }
done

# Node 1 has one pod address (10.210.1.2): reuse is certain there.
mn_pod_cidr() {
	if [ "$1" = 1 ]; then printf '10.210.1.0/30'; else printf '10.210.%d.0/24' "$1"; fi
}

P=slre$$
MN_DIR=$(mktemp -d /tmp/sluice-reuse.XXXXXX)
CLEANUP_PATHS+=("$MN_DIR")
NS=bank
FORGE="$ROOT/tests/tools/forge.py"
declare -A IP=() AGENT=()

ctl() { mn_ctl "$P" "$@"; }
pin() { printf '/sys/fs/bpf/%s-node%d/%s' "$P" "$1" "$2"; }

# start_agent N: as mn_start_agent, but up means answering at all: node 1's
# STATUS fails while its only address is taken (no free addresses).
start_agent() {
	local n=$1 dir
	dir=$(mn_node_dir "$P" "$n")
	mkdir -p "$dir"
	CLEANUP_PATHS+=("/sys/fs/bpf/$P-node$n")
	nsenter --net="/run/netns/$P-node$n" "$BUILD/sluice-agent" \
		--node-name "node$n" --pod-cidr "$(mn_pod_cidr "$n")" \
		--device uplink0 --routing "$MODE" \
		--socket "$dir/agent.sock" --state-dir "$dir/state" \
		--bpffs "/sys/fs/bpf/$P-node$n" >>"$dir/agent.log" 2>&1 &
	AGENT[$n]=$!
	CLEANUP_PIDS+=("${AGENT[$n]}")
	for _ in $(seq $((${AGENT_START_TIMEOUT:-30} * 20))); do
		ctl "$n" get nodes >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	echo "node$n's agent did not come up"
	tail -n 20 "$dir/agent.log"
	return 1
}

kill_agent() { # N: SIGKILL, as a crash
	kill -9 "${AGENT[$1]}" 2>/dev/null
	wait "${AGENT[$1]}" 2>/dev/null
	return 0
}

# pod_add N NAME APP: netns, CNI ADD, Pod object on every agent; sets IP[NAME].
pod_add() {
	local n=$1 name=$2 app=$3 out
	[ -e "/run/netns/$P-$name" ] || netns_add "$P-$name"
	out=$(mn_pod_add "$P" "$n" "$name" "$NS") || { log "ADD $name: $out"; return 1; }
	IP[$name]=$(jq -r '.ips[0].address' <<<"$out" | cut -d/ -f1)
	mn_pod_json "$NS" "$name" "$n" "${IP[$name]}" "$app" | mn_list | mn_apply_all "$P" 2
}

add_gets() { # N NAME APP ADDR: pod_add, and NAME got ADDR
	pod_add "$1" "$2" "$3" || return 1
	[ "${IP[$2]}" = "$4" ] && return 0
	echo "$2 got ${IP[$2]}, not $4"
	return 1
}

pod_del() { # N NAME APP: CNI DEL, Pod object deleted from every agent
	local n=$1 name=$2 app=$3 i doc
	mn_pod_del "$P" "$n" "$name" "$NS" >/dev/null || return 1
	doc=$(mn_pod_json "$NS" "$name" "$n" "${IP[$name]}" "$app")
	for i in 1 2; do ctl "$i" delete -f - <<<"$doc" >/dev/null || return 1; done
}

# ---- node 1's per-flow maps ------------------------------------------------

# flow_entries N ADDR: "map key-or-value" lines of node N's CT, SNAT and
# RNAT entries that name ADDR (CT and SNAT: either key address; RNAT: the
# pod address in the value), from bpftool's raw bytes.
flow_entries() {
	local n=$1 addr=$2 m
	for m in sluice_ct4_v1 sluice_snat4_v1 sluice_rnat4_v1; do
		bpftool -j map dump pinned "$(pin "$n" "$m")" | jq -r --arg m "$m" --arg a "$addr" '
			def quad(b): [b[] | ltrimstr("0x") | explode |
				map(if . >= 97 then . - 87 else . - 48 end) | .[0] * 16 + .[1] | tostring] | join(".");
			.[] | [quad(.key[0:4]), quad(.key[4:8]), quad(.value[0:4])] as [$s, $d, $v] |
			select(if $m == "sluice_rnat4_v1" then $v == $a else $s == $a or $d == $a end) |
			"\($m) \($s) -> \($d)"'
	done
}

no_flow_entries() { # N ADDR
	local out
	out=$(flow_entries "$1" "$2") || return 1
	[ -z "$out" ] && return 0
	echo "entries left on node$1 naming $2:"
	echo "$out"
	echo "node$1's agent log:"
	tail -n 8 "$(mn_node_dir "$P" "$1")/agent.log"
	return 1
}

# ct_has N SRC SPORT DST DPORT PROTO: node N tracks that flow.
ct_has() {
	bpftool -j map dump pinned "$(pin "$1" sluice_ct4_v1)" | python3 -c '
import json, socket, struct, sys
src, sport, dst, dport, proto = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
want = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HHB", sport, dport, proto)
for e in json.load(sys.stdin):
    if bytes(int(b, 16) for b in e["key"][:13]) == want:
        sys.exit(0)
print("node tracks no %s:%d -> %s:%d/%d" % (src, sport, dst, dport, proto))
sys.exit(1)' "${@:2}"
}

# inject N SRC SPORT DST DPORT PROTO: a live CT entry in node N's pinned map
# (state an agent left behind), and for SNAT/RNAT an entry of SRC's flow.
hexbytes() { python3 -c 'import sys; print(" ".join("%02x" % b for b in bytes.fromhex(sys.argv[1])))' "$1"; }
ct_key_hex() {
	python3 -c '
import socket, struct, sys
print((socket.inet_aton(sys.argv[1]) + socket.inet_aton(sys.argv[3]) +
       struct.pack("!HHB", int(sys.argv[2]), int(sys.argv[4]), int(sys.argv[5])) + b"\0\0\0").hex())' "$@"
}
inject_ct() {
	local n=$1 key value
	shift
	key=$(ct_key_hex "$@")
	value=$(python3 -c 'import struct, time; print(struct.pack("<QII", time.clock_gettime_ns(time.CLOCK_MONOTONIC), 0, 0).hex())')
	# shellcheck disable=SC2046 # one word per byte
	bpftool map update pinned "$(pin "$n" sluice_ct4_v1)" key hex $(hexbytes "$key") value hex $(hexbytes "$value")
}
inject_nat() { # N POD SPORT OUTSIDE DPORT NODEIP NODEPORT
	local n=$1 pod=$2 sport=$3 out=$4 dport=$5 node=$6 nport=$7 k v
	k=$(ct_key_hex "$pod" "$sport" "$out" "$dport" 17)
	v=$(python3 -c 'import socket, struct, sys; print((socket.inet_aton(sys.argv[1]) + struct.pack("!HH", int(sys.argv[2]), 0)).hex())' "$node" "$nport")
	# shellcheck disable=SC2046
	bpftool map update pinned "$(pin "$n" sluice_snat4_v1)" key hex $(hexbytes "$k") value hex $(hexbytes "$v") || return 1
	k=$(ct_key_hex "$out" "$dport" "$node" "$nport" 17)
	v=$(python3 -c 'import socket, struct, sys; print((socket.inet_aton(sys.argv[1]) + struct.pack("!HH", int(sys.argv[2]), 0)).hex())' "$pod" "$sport")
	# shellcheck disable=SC2046
	bpftool map update pinned "$(pin "$n" sluice_rnat4_v1)" key hex $(hexbytes "$k") value hex $(hexbytes "$v")
}

# ---- traffic -----------------------------------------------------------------

# listen NAME: forge.py's counting listener in pod NAME (UDP 8081, TCP 8080,
# and every TCP segment to 8080 and UDP datagram to 8081 that reaches its
# stack); counts in MN_DIR/NAME.json.
listen() {
	local name=$1 f="$MN_DIR/$1.json"
	rm -f "$f"
	ip netns exec "$P-$name" python3 "$FORGE" listen --udp 8081 --tcp 8080 \
		--raw tcp:8080 --raw udp:8081 --out "$f" >/dev/null 2>&1 &
	CLEANUP_PIDS+=($!)
	for _ in $(seq 100); do [ -s "$f" ] && return 0; sleep 0.05; done
	log "listener in $name did not start"
	return 1
}
counts() { cat "$MN_DIR/$1.json"; }

send() { # FROM ARGS...: forge.py send inside pod FROM
	local from=$1
	shift
	ip netns exec "$P-$from" python3 "$FORGE" send --src "${IP[$from]}" "$@" >/dev/null
}

# hold_tcp FROM SPORT DST: a TCP connection from pod FROM's port SPORT to
# DST:8080 that stays open, idle (no FIN, no RST).
hold_tcp() {
	local from=$1 sport=$2 dst=$3 ready="$MN_DIR/hold-$1-$2"
	ip netns exec "$P-$from" python3 -c '
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.connect((sys.argv[2], 8080))
open(sys.argv[3], "w").close()
time.sleep(3600)' "$sport" "$dst" "$ready" >/dev/null 2>&1 &
	CLEANUP_PIDS+=($!)
	for _ in $(seq 60); do [ -e "$ready" ] && return 0; sleep 0.05; done
	echo "no TCP connection $from:$sport -> $dst:8080"
	return 1
}

tcp_connect() { # FROM DST: one TCP handshake to DST:8080
	ip netns exec "$P-$1" python3 -c '
import socket, sys
socket.create_connection((sys.argv[1], 8080), timeout=2).close()' "$2"
}

# quiet NAME: pod NAME's listener counted nothing at all.
quiet() {
	local c
	c=$(counts "$1")
	jq -e '.udp == 0 and .tcp == 0 and ([.raw[]] | add) == 0' <<<"$c" >/dev/null && return 0
	echo "$1 received: $c"
	return 1
}

# only_from NAME ADDR: pod NAME received UDP and TCP, all of it from ADDR.
only_from() {
	local c
	c=$(counts "$1")
	jq -e --arg a "$2" '.udp > 0 and .tcp > 0 and
		all(.from[]; . == $a or startswith($a + ":"))' <<<"$c" >/dev/null && return 0
	echo "$1 received: $c (expected UDP and TCP from $2 only)"
	return 1
}

# ---- the cluster ---------------------------------------------------------------

echo "== two nodes (--routing $MODE); node1's pod CIDR $(mn_pod_cidr 1): one pod address"
mn_topology "$P" 2 || { log "could not build the topology"; exit 1; }
start_agent 1 || exit 1
start_agent 2 || exit 1
POLICY='apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: bank, name: guarded-from-friend}
spec:
  podSelector: {matchLabels: {app: guarded}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: friend}}}]'
check "Node objects, Namespace $NS and the policy (app=guarded admits only app=friend) applied" \
	mn_apply_all "$P" 2 < <({
		jq -cn --arg ns "$NS" '{apiVersion: "v1", kind: "Namespace", metadata: {name: $ns}}'
		mn_node_json 1
		mn_node_json 2
	} | mn_list)
check "the policy applied to both agents" mn_apply_all "$P" 2 <<<"$POLICY"
pod_add 2 m attacker || exit 1
pod_add 2 f friend || exit 1
ROUTER1=$(mn_router 1)
# round NAME RESTART DESC SPORT: victim NAME (no policy), M's flows to it, [node1's
# agent killed and restarted], DEL, its successor NAME-2 under the policy,
# the attack and the legitimate traffic.
round() {
	local v=$1 restart=$2 v2=$1-2 SPORT_UDP=$4 SPORT_TCP=$(($4 + 1)) addr
	echo "== $3"
	pod_add 1 "$v" victim || { not_ok "ADD $v"; return 1; }
	addr=${IP[$v]}
	serve "$P-$v" --tcp 8080 --udp 8081 || { not_ok "echo servers in $v"; return 1; }
	send m --proto udp --sport "$SPORT_UDP" --dst "$addr" --dport 8081 --count 2
	check "M -> $v ($addr): UDP from port $SPORT_UDP tracked on node1" \
		ct_has 1 "${IP[m]}" "$SPORT_UDP" "$addr" 8081 17
	check "M -> $v: a TCP connection from port $SPORT_TCP, held open" \
		hold_tcp m "$SPORT_TCP" "$addr"
	check "M -> $v: the TCP connection is tracked on node1" \
		ct_has 1 "${IP[m]}" "$SPORT_TCP" "$addr" 8080 6
	if [ "$restart" = restart ]; then
		kill_agent 1
		check "node1's agent killed (SIGKILL) and restarted" start_agent 1
	fi
	check "DEL $v" pod_del 1 "$v" victim
	check "after DEL: no CT, SNAT or RNAT entry on node1 names $addr" no_flow_entries 1 "$addr"
	check "ADD $v2 (app=guarded): it gets $v's address $addr" add_gets 1 "$v2" guarded "$addr"
	listen "$v2" || { not_ok "listener in $v2"; return 1; }
	send m --proto udp --sport "$SPORT_UDP" --dst "$addr" --dport 8081 --count 3
	send m --proto tcp --tcp-flags PA --sport "$SPORT_TCP" --dst "$addr" --dport 8080 --count 3
	send m --proto udp --sport $((SPORT_UDP + 100)) --dst "$addr" --dport 8081 --count 2
	sleep 0.5
	check "M's packets on the old 5-tuples (UDP $SPORT_UDP, TCP $SPORT_TCP) and a fresh one: $v2 receives none" \
		quiet "$v2"
	send f --proto udp --sport 41000 --dst "$addr" --dport 8081 --count 2
	check "friend F -> $v2: a TCP connection" tcp_connect f "$addr"
	sleep 0.3
	check "friend F -> $v2: UDP and TCP arrive, and nothing from anyone else" only_from "$v2" "${IP[f]}"
	check "DEL $v2" pod_del 1 "$v2" guarded
}

round v1 no-restart "a) reuse after DEL" 40000
round v3 restart "b) reuse after DEL, node1's agent killed and restarted first" 40010

echo "== c) state left behind while no agent ran, removed at start-up"
stale_left() {
	inject_ct 1 "${IP[m]}" 40200 10.210.1.2 8081 17 &&
		inject_ct 1 10.210.1.2 8081 "${IP[m]}" 40201 17 &&
		inject_ct 1 "${IP[m]}" 40202 "$ROUTER1" 8081 17 &&
		inject_ct 1 "${IP[m]}" 40203 "${IP[f]}" 8081 17 &&
		inject_nat 1 10.210.1.2 40204 192.0.2.7 53 "$(mn_node_ip 1)" 40204
}
kill_agent 1
check "node1's agent killed; CT, SNAT and RNAT entries of the free 10.210.1.2 written to its maps" stale_left
check "node1's agent restarted" start_agent 1
check "no entry names 10.210.1.2 after the start" no_flow_entries 1 10.210.1.2
check "the router's entry is kept" ct_has 1 "${IP[m]}" 40202 "$ROUTER1" 8081 17
check "a remote flow's entry is kept" ct_has 1 "${IP[m]}" 40203 "${IP[f]}" 8081 17
check "ADD c-2 (app=guarded) gets 10.210.1.2" add_gets 1 c-2 guarded 10.210.1.2
if listen c-2; then
	send m --proto udp --sport 40200 --dst 10.210.1.2 --dport 8081 --count 3
	sleep 0.5
	check "M on the stale 5-tuple: c-2 receives nothing" quiet c-2
fi
check "DEL c-2" pod_del 1 c-2 guarded

echo "== d) node2 hands out the least recently used address, also after a restart"
lru() {
	local a b c
	pod_add 2 x1 filler && a=${IP[x1]} && pod_del 2 x1 filler || return 1
	pod_add 2 x2 filler && b=${IP[x2]} || return 1
	[ "$a" != "$b" ] || { echo "x2 got x1's just-released $a"; return 1; }
	pod_del 2 x2 filler || return 1
	kill_agent 2
	start_agent 2 || return 1
	pod_add 2 x3 filler && c=${IP[x3]} || return 1
	[ "$c" != "$a" ] && [ "$c" != "$b" ] && return 0
	echo "after a restart x3 got $c (released: $a, then $b)"
	return 1
}
check "node2: a released address is not handed out again while others are free (restart too)" lru

echo "== e) another node's flows to a pod that went"
ATTACKER_POLICY='apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: bank, name: attacker-from-friend}
spec:
  podSelector: {matchLabels: {app: attacker}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: friend}}}]'
check "a policy on M (app=attacker admits only app=friend) applied" mn_apply_all "$P" 2 <<<"$ATTACKER_POLICY"
if pod_add 1 e victim; then
	addr=${IP[e]}
	send m --proto udp --sport 40300 --dst "$addr" --dport 8081 --count 2
	check "M -> e ($addr): UDP from port 40300 tracked on node2" \
		ct_has 2 "${IP[m]}" 40300 "$addr" 8081 17
	check "DEL e, its Pod object deleted" pod_del 1 e victim
	check "after e went: no CT, SNAT or RNAT entry on node2 names $addr" no_flow_entries 2 "$addr"
	check "ADD e-2 (app=other) gets e's address $addr" add_gets 1 e-2 other "$addr"
	listen_port() { # NAME PORT: as listen, on UDP PORT
		local f="$MN_DIR/$1.json"
		rm -f "$f"
		ip netns exec "$P-$1" python3 "$FORGE" listen --udp "$2" --raw "udp:$2" --out "$f" \
			>/dev/null 2>&1 &
		CLEANUP_PIDS+=($!)
		for _ in $(seq 100); do [ -s "$f" ] && return 0; sleep 0.05; done
		return 1
	}
	if listen_port m 40300; then
		send e-2 --proto udp --sport 8081 --dst "${IP[m]}" --dport 40300 --count 3
		sleep 0.5
		check "e-2 on the old flow's reply tuple ($addr:8081 -> M:40300): M receives nothing" quiet m
		send f --proto udp --sport 41001 --dst "${IP[m]}" --dport 40300 --count 2
		sleep 0.3
		only_udp_from() {
			jq -e --arg a "$2" '.udp > 0 and all(.from[]; . == $a or startswith($a + ":"))' \
				"$MN_DIR/$1.json" >/dev/null && return 0
			echo "$1 received: $(counts "$1") (expected UDP from $2 only)"
			return 1
		}
		check "friend F -> M: UDP arrives, and nothing from anyone else" only_udp_from m "${IP[f]}"
	else
		not_ok "listener in m"
	fi
else
	not_ok "ADD e"
fi

summary
