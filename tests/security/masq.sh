#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Masquerade that cannot be abused: a node (the multinode topology's node 1,
# one pod) and a "world" host on the physical network with no route to any
# pod CIDR, as in tests/multinode/run.sh section e.
#
#   tests/security/masq.sh             both routing modes
#   tests/security/masq.sh overlay     one mode (or native)
#
# node1 drops what its conntrack finds INVALID, as under kube-proxy.
# a) the pod reaches the world by TCP, UDP and ping (masqueraded), and the
#    agent reserved the NAT ports in net.ipv4.ip_local_reserved_ports.
# b) a node socket and the pod, both with source port X, talk to the same
#    world UDP echo server at once: each gets its own replies only (the
#    pod's flow leaves with a port of the NAT range, never X).
# c) the pod's flow expires (its connection-tracking entry deleted with
#    bpftool): the world sends to the node's NAT port from the old tuple;
#    the pod gets nothing, the packet stays the node's (a node listener on
#    that port counts it), the pair is gone; the pod's new flow works.
# d) path-MTU discovery: the world sends "fragmentation needed, MTU 1200"
#    about the pod's masqueraded flow to the node; the pod receives it
#    translated (quoting its own address and port) and its route to the
#    world gets MTU 1200.
# e) after the pod's DEL (and the purge of its tracked flows: by hand with
#    bpftool when the agent left them), the old tuple reaches nobody but
#    the node.
# Last line "masq: N passed, M failed"; BUILD=... runs another build.
# shellcheck source-path=SCRIPTDIR
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TEST_NAME=${MASQ_TEST_NAME:-masq}
# shellcheck source=../lib/common.sh
source "$HERE/../lib/common.sh"
# shellcheck source=../multinode/lib.sh
source "$HERE/../multinode/lib.sh"

mn_mode masq MASQ_TEST_NAME "$0" "$@"

need_root
for bin in sluice-agent sluice-cni sluicectl sluice-probe; do
	[ -x "$BUILD/$bin" ] || { log "$BUILD/$bin missing (run make)"; exit 1; }
done
for tool in python3 bpftool jq; do
	command -v "$tool" >/dev/null || { log "$tool missing"; exit 77; }
done

P=slmq$$
MN_DIR=$(mktemp -d /tmp/sluice-masq.XXXXXX)
CLEANUP_PATHS+=("$MN_DIR")
NS=shop
FORGE=("python3" "$ROOT/tests/tools/forge.py")
NODE_IP=$(mn_node_ip 1)
W=10.200.0.100
WPORT=8081 # the world's UDP echo server
PINS=/sys/fs/bpf/$P-node1
NAT_LO=61000
NAT_HI=65535

node_metric() { # REASON DIRECTION: packets node 1's datapath counted
	mn_ctl "$P" 1 metrics -o json | jq -r --arg r "$1" --arg d "$2" \
		'[.metrics[] | select(.reason == $r and .direction == $d) | .packets] | add // 0'
}

# tuple_hex SRC SPORT DST DPORT PROTO: a sluice_ct_key for bpftool.
tuple_hex() {
	local a b
	IFS=. read -r -a a <<<"$1"
	IFS=. read -r -a b <<<"$3"
	printf '%02x %02x %02x %02x %02x %02x %02x %02x %02x %02x %02x %02x %02x 00 00 00' \
		"${a[@]}" "${b[@]}" $(($2 >> 8)) $(($2 & 255)) $(($4 >> 8)) $(($4 & 255)) "$5"
}

# map_get MAP TUPLE...: the value's bytes (decimal, one line) or nothing.
map_get() {
	local map=$1
	shift
	local b
	# shellcheck disable=SC2046 # the key is a list of bytes
	for b in $(bpftool -j map lookup pinned "$PINS/$map" key hex $(tuple_hex "$@") 2>/dev/null |
		jq -r '.value[]' 2>/dev/null); do
		printf '%d ' "$b"
	done
}

# nat_port SPORT: the node port the pod's UDP flow SPORT -> W:WPORT has ("" if none).
nat_port() {
	local v
	read -r -a v <<<"$(map_get sluice_snat4_v1 "${IP[a]}" "$1" "$W" "$WPORT" 17)"
	[ "${#v[@]}" -ge 6 ] && echo $((v[4] * 256 + v[5]))
}

ct_del() { # the pod's UDP flow SPORT -> W:WPORT leaves connection tracking
	# shellcheck disable=SC2046
	bpftool map delete pinned "$PINS/sluice_ct4_v1" key hex $(tuple_hex "${IP[a]}" "$1" "$W" "$WPORT" 17)
}

# listen NETNS NAME ARGS...: forge.py listen in NETNS, counts in MN_DIR/NAME.json.
listen() {
	local ns=$1 name=$2
	shift 2
	rm -f "$MN_DIR/$name.json"
	ip netns exec "$ns" "${FORGE[@]}" listen "$@" --out "$MN_DIR/$name.json" 2>>"$MN_DIR/forge.err" &
	LISTENER=$!
	CLEANUP_PIDS+=("$LISTENER")
	for _ in $(seq 100); do
		[ -s "$MN_DIR/$name.json" ] && return 0
		sleep 0.05
	done
	log "listener $name did not start"
	return 1
}
stop() { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null; }
count() { jq -r "$2" "$MN_DIR/$1.json"; }

# talk NETNS NAME BIND COUNT: forge.py talk to W's echo server (own/other replies).
talk() {
	ip netns exec "$1" "${FORGE[@]}" talk --bind "$3" --dst "$W" --dport "$WPORT" --tag "$2" \
		--count "$4" --interval-ms 50 --out "$MN_DIR/$2.json" 2>>"$MN_DIR/forge.err"
}
talk_ok() { # NAME COUNT: all COUNT replies came back, nobody else's
	jq -e --argjson n "$2" '.own == $n and .other == 0' "$MN_DIR/$1.json" >/dev/null && return 0
	jq -c . "$MN_DIR/$1.json"
	return 1
}

# world_send DPORT COUNT: UDP from W:WPORT (the old tuple) to the node's DPORT.
world_send() {
	ip netns exec "$P-world" "${FORGE[@]}" send --proto udp --src "$W" --sport "$WPORT" \
		--dst "$NODE_IP" --dport "$1" --count "$2" --interval-ms 20
	sleep 0.3
}

declare -A IP=()

echo "== node1 ($MODE routing), pod a, and the world on the physical network"
mn_topology "$P" 1 || { log "could not build the topology"; exit 1; }
mn_start_agent "$P" 1 "$MODE" || { log "node1's agent did not start"; exit 1; }
AGENT=$MN_AGENT_PID
# kube-proxy's rule: what the node's conntrack finds INVALID is dropped. The
# replies and the translated ICMP errors must be ESTABLISHED or RELATED.
if command -v iptables >/dev/null; then
	ip netns exec "$P-node1" iptables -A FORWARD -m conntrack --ctstate INVALID -j DROP ||
		{ log "cannot add the INVALID drop rule"; exit 1; }
else
	log "iptables missing: no INVALID drop rule on node1"
fi
check "Node node1 and Namespace $NS applied" mn_apply_all "$P" 1 < <(
	{
		jq -cn --arg ns "$NS" '{apiVersion: "v1", kind: "Namespace", metadata: {name: $ns}}'
		mn_node_json 1
	} | mn_list)
netns_add "$P-a"
out=$(mn_pod_add "$P" 1 a "$NS")
IP[a]=$(jq -r '.ips[0].address // empty' <<<"$out" 2>/dev/null | cut -d/ -f1)
[ -n "${IP[a]}" ] || { log "no address for pod a: $out"; exit 1; }
check "Pod a applied" mn_apply_all "$P" 1 < <(mn_pod_json "$NS" a 1 "${IP[a]}" a | mn_list)
netns_add "$P-world"
ip -n "$P-phys" link add world0 mtu "$MN_MTU" type veth peer name eth0 mtu "$MN_MTU" netns "$P-world"
ip -n "$P-phys" link set world0 master br0 up
ip -n "$P-world" addr add "$W/24" dev eth0
ip -n "$P-world" link set eth0 up
serve "$P-world" --tcp 8080 --udp "$WPORT" || { log "echo servers in the world"; exit 1; }
check "the world has no route to pods" bash -c "! ip -n '$P-world' route get '${IP[a]}' 2>/dev/null | grep -q via"

echo "== a) legitimate masqueraded traffic; the NAT ports are reserved"
check "a -> world TCP (masqueraded)" probe "$P-a" tcp "$W" 8080 --timeout 1000
check "a -> world UDP (masqueraded)" probe "$P-a" udp "$W" "$WPORT" --timeout 1000
check "a -> world ping (masqueraded)" probe "$P-a" ping "$W" --count 1 --timeout 1000
reserved=$(ip netns exec "$P-node1" cat /proc/sys/net/ipv4/ip_local_reserved_ports)
check "node1's ip_local_reserved_ports holds $NAT_LO-$NAT_HI (it is '$reserved')" \
	grep -qE "(^|,)$NAT_LO-$NAT_HI(,|$)" <<<"$reserved"

echo "== b) a node socket and the pod with the same source port, to the same server"
rm -f "$MN_DIR/node.port"
ip netns exec "$P-node1" "${FORGE[@]}" talk --bind 0 --dst "$W" --dport "$WPORT" --tag node \
	--count 30 --interval-ms 50 --out "$MN_DIR/node.json" --port-file "$MN_DIR/node.port" \
	2>>"$MN_DIR/forge.err" &
NODE_TALKER=$!
CLEANUP_PIDS+=("$NODE_TALKER")
for _ in $(seq 100); do [ -s "$MN_DIR/node.port" ] && break; sleep 0.02; done
X=$(cat "$MN_DIR/node.port" 2>/dev/null)
[ -n "$X" ] || { log "the node's talker did not bind"; exit 1; }
talk "$P-a" pod "$X" 10
wait "$NODE_TALKER"
echo "   node socket port $X; pod a's flow left as port $(nat_port "$X")"
echo "   node: $(cat "$MN_DIR/node.json"); pod: $(cat "$MN_DIR/pod.json")"
check "the node socket (port $X) got all 30 of its replies and none of the pod's" talk_ok node 30
check "pod a (port $X) got all 10 of its replies and none of the node's" talk_ok pod 10
check "the kernel gave the node socket a port outside $NAT_LO-$NAT_HI" test "$X" -lt "$NAT_LO"
PORT=$(nat_port "$X")
check "pod a's flow got a NAT port in $NAT_LO-$NAT_HI, not its own ($PORT)" \
	bash -c "[ -n '$PORT' ] && [ '$PORT' != '$X' ] && [ '$PORT' -ge $NAT_LO ] && [ '$PORT' -le $NAT_HI ]"

echo "== c) the pod's flow expires: the old tuple reaches nobody but the node"
PORT=$(nat_port "$X")
stale0=$(node_metric masquerade-stale ingress)
reply0=$(node_metric masquerade-reply ingress)
check "pod a's flow leaves connection tracking (bpftool, as expiry would)" ct_del "$X"
listen "$P-a" pod-listen --udp "$X" && POD_LISTENER=$LISTENER
listen "$P-node1" node-listen --udp "${PORT:-1}" && NODE_LISTENER=$LISTENER
world_send "${PORT:-1}" 3
echo "   pod a counted $(count pod-listen .udp), the node's port ${PORT:-?} $(count node-listen .udp);" \
	"masquerade-stale +$(($(node_metric masquerade-stale ingress) - stale0))," \
	"masquerade-reply +$(($(node_metric masquerade-reply ingress) - reply0))"
check "pod a received nothing on port $X" test "$(count pod-listen .udp)" = 0
check "the 3 datagrams reached the node's port $PORT untranslated" test "$(count node-listen .udp)" = 3
check "node1 counted masquerade-stale once (then the pair was gone), no masquerade-reply" \
	test "$(($(node_metric masquerade-stale ingress) - stale0)) $(($(node_metric masquerade-reply ingress) - reply0))" = "1 0"
check "the NAT pair is gone" test -z "$(nat_port "$X")"
stop "${POD_LISTENER:-}"
stop "${NODE_LISTENER:-}"
talk "$P-a" pod "$X" 5
check "pod a's new flow from port $X works (5 of 5 replies)" talk_ok pod 5

echo "== d) path-MTU discovery through the masquerade"
PORT=$(nat_port "$X")
err0=$(node_metric masquerade-icmp-error ingress)
listen "$P-a" pod-icmp --raw icmp --udp "$X" && POD_LISTENER=$LISTENER
ip netns exec "$P-world" "${FORGE[@]}" send --proto icmp --src "$W" --dst "$NODE_IP" \
	--icmp-type 3 --icmp-code 4 --mtu 1200 --quote "$NODE_IP:${PORT:-1},$W:$WPORT,udp"
sleep 0.3
echo "   pod a: $(cat "$MN_DIR/pod-icmp.json")"
check "pod a received the frag-needed error" test "$(count pod-icmp '.raw.icmp')" -ge 1
check "it quotes pod a's own address and port (${IP[a]}:$X)" \
	jq -e --arg q "${IP[a]}:$X" '.quoted | index($q) != null' "$MN_DIR/pod-icmp.json"
check "node1 counted masquerade-icmp-error" \
	test $(($(node_metric masquerade-icmp-error ingress) - err0)) -ge 1
check "pod a's route to the world now has MTU 1200 (checksums valid, the socket found)" bash -c "
	ip -n '$P-a' route get '$W' | grep -q 'mtu 1200'"
stop "${POD_LISTENER:-}"
talk "$P-a" pod "$X" 5
check "pod a's flow still works (5 of 5 replies)" talk_ok pod 5

echo "== e) after the pod's DEL"
PORT=$(nat_port "$X")
check "DEL pod a" mn_pod_del "$P" 1 a "$NS"
if [ -n "$(map_get sluice_ct4_v1 "${IP[a]}" "$X" "$W" "$WPORT" 17)" ]; then
	echo "   pod a's tracked flow outlived its DEL (this build does not purge it): removed by hand"
	ct_del "$X"
fi
stale0=$(node_metric masquerade-stale ingress)
reply0=$(node_metric masquerade-reply ingress)
listen "$P-node1" node-listen --udp "${PORT:-1}" && NODE_LISTENER=$LISTENER
world_send "${PORT:-1}" 3
check "the old tuple's 3 datagrams reached only the node's port $PORT" \
	test "$(count node-listen .udp)" = 3
check "none was translated to the deleted pod's address" \
	test $(($(node_metric masquerade-reply ingress) - reply0)) = 0
check "the NAT pair is gone" test -z "$(nat_port "$X")"
stop "${NODE_LISTENER:-}"
check "the agent is alive" kill -0 "$AGENT"

summary
