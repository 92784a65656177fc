#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Tunnel and uplink authenticity: who may claim which source address.
# Two sluice nodes (tests/multinode/lib.sh) and a plain host on the node
# network that is no node ("evil", 10.200.0.66). Pods:
#
#   n1-victim (node 1, app=victim)  a listener counting UDP 7000 arrivals;
#                                   its NetworkPolicy admits only app=friend
#   n2-friend (node 2, app=friend)  the one pod the victim admits
#   n1-evil, n2-evil (app=evil)     ordinary pods, the attacker's
#
# Attacks, each asserting that the victim counted nothing:
#   a) forged VXLAN (inner source: the friend) from the evil pods to every
#      address of both nodes, UDP 8472, with and without a first frame
#      meant to plant a connection-tracking entry for a later "reply";
#   b) the same from the evil host, also posing as node 2 (its address as
#      the outer source, from its own MAC);
#   c) plain packets on node 1's uplink from the evil host claiming the
#      friend's address (native: from the evil host's own MAC), node 1's
#      own addresses and node 1's other pod;
#   d) node 2 itself (a real node) tunnelling node 1's pod and node 1's
#      address as inner sources.
# The counters for each defence must move (sluicectl metrics -o json), and
# legitimate traffic still flows: the friend reaches the victim across
# nodes (the listener counts it; TCP and UDP echo), also after node 1's
# neighbour table was flushed, a pod reaches the other node's address,
# directly and through a DNAT on its node, and the evil pods are refused
# by the policy.
#
#   tests/security/tunnel.sh             overlay, then native
#   tests/security/tunnel.sh overlay     one mode (or native)
#
# The last line is "tunnel: N passed, M failed"; exit 77 when a tool is
# missing.
# shellcheck source-path=SCRIPTDIR
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TEST_NAME=${TUNNEL_TEST_NAME:-tunnel}
# shellcheck source=../lib/common.sh
source "$HERE/../lib/common.sh"
# shellcheck source=../multinode/lib.sh
source "$HERE/../multinode/lib.sh"
FORGE=$HERE/../tools/forge.py

mn_mode tunnel TUNNEL_TEST_NAME "$0" "$@"

need_root
for tool in python3 jq iptables; do
	command -v "$tool" >/dev/null || { log "$tool missing"; exit 77; }
done
for bin in sluice-agent sluice-cni sluicectl sluice-probe; do
	[ -x "$BUILD/$bin" ] || { log "$BUILD/$bin missing (run make)"; exit 1; }
done

P=sltun$$
MN_DIR=$(mktemp -d /tmp/sluice-tunnel.XXXXXX)
CLEANUP_PATHS+=("$MN_DIR")
NS=bank
EVIL_HOST=10.200.0.66
PORT=7000
PODS=(n1-victim n1-evil n2-friend n2-evil)
declare -A IP=()

node_of() { printf '%s' "${1:1:1}"; }
app_of() { printf '%s' "${1#*-}"; }
ctl() { mn_ctl "$P" "$@"; }
metric() { # N REASON: packets node N counted, both directions
	ctl "$1" metrics -o json | jq --arg r "$2" '[.metrics[] | select(.reason == $r) | .packets] | add // 0'
}
arrived() { jq '.udp' "$MN_DIR/victim.json"; }
forge() { # NETNS ARGS...: forge.py send in NETNS
	local ns=$1
	shift
	ip netns exec "$ns" python3 "$FORGE" send "$@" >/dev/null
}
uplink_mac() { ip -n "$P-node$1" -j link show uplink0 | jq -r '.[0].address'; }
# nothing_arrived: the victim's count has not moved (a forged datagram takes
# well under a second to get wherever it gets).
nothing_arrived() {
	sleep 0.3
	local now
	now=$(arrived)
	[ "$now" = "$BASE" ] && return 0
	echo "the victim counted $((now - BASE)) forged datagram(s)"
	BASE=$now
	return 1
}

echo "== two nodes ($MODE), an evil host on the node network"
mn_topology "$P" 2 || { log "could not build the topology"; exit 1; }
netns_add "$P-evil"
ip -n "$P-phys" link add evil0 mtu "$MN_MTU" type veth peer name eth0 mtu "$MN_MTU" netns "$P-evil"
ip -n "$P-phys" link set evil0 master br0 up
ip -n "$P-evil" addr add "$EVIL_HOST/24" dev eth0
ip -n "$P-evil" link set eth0 up
# The evil host routes the pod CIDRs to the nodes, as any host on the
# network may.
ip -n "$P-evil" route add "$(mn_pod_cidr 1)" via "$(mn_node_ip 1)"
ip -n "$P-evil" route add "$(mn_pod_cidr 2)" via "$(mn_node_ip 2)"
# The Service below is netfilter's DNAT, as kube-proxy writes it: sluice
# leaves Services to kube-proxy here.
for n in 1 2; do
	MN_AGENT_ARGS="${MN_AGENT_ARGS:-} --kube-proxy-replacement off" mn_start_agent "$P" "$n" "$MODE" ||
		{ log "node$n's agent did not start"; exit 1; }
done
check "Node objects applied to both agents" mn_apply_all "$P" 2 < <(
	{
		jq -cn --arg ns "$NS" '{apiVersion: "v1", kind: "Namespace", metadata: {name: $ns}}'
		mn_node_json 1
		mn_node_json 2
	} | mn_list)
for pod in "${PODS[@]}"; do
	n=$(node_of "$pod")
	netns_add "$P-$pod"
	out=$(mn_pod_add "$P" "$n" "$pod" "$NS")
	IP[$pod]=$(jq -r '.ips[0].address // empty' <<<"$out" 2>/dev/null | cut -d/ -f1)
	[ -n "${IP[$pod]}" ] || { log "no address for $pod: $out"; exit 1; }
done
check "Pod objects applied to both agents" mn_apply_all "$P" 2 < <(
	for pod in "${PODS[@]}"; do
		mn_pod_json "$NS" "$pod" "$(node_of "$pod")" "${IP[$pod]}" "$(app_of "$pod")"
	done | mn_list)
POLICY="apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: $NS, name: victim-from-friend}
spec:
  podSelector: {matchLabels: {app: victim}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: friend}}}]"
check "the victim admits only app=friend (policy on both agents)" mn_apply_all "$P" 2 <<<"$POLICY"
serve "$P-n1-victim" || { log "echo servers in the victim"; exit 1; }
serve "$P-node2" --tcp 9090 || { log "echo server on node 2"; exit 1; }
ip netns exec "$P-n1-victim" python3 "$FORGE" listen --udp "$PORT" --out "$MN_DIR/victim.json" \
	>"$MN_DIR/listen.log" 2>&1 &
CLEANUP_PIDS+=($!)
for _ in $(seq 100); do [ -s "$MN_DIR/victim.json" ] && break; sleep 0.05; done
BASE=$(arrived)
check "the victim's listener is up" test "$BASE" = 0

VICTIM=${IP[n1-victim]} FRIEND=${IP[n2-friend]}
NODE_ADDRS=("$(mn_node_ip 1)" "$(mn_node_ip 2)" "$(mn_router 1)" "$(mn_router 2)")

echo "== a) evil pods send forged VXLAN to every node address"
declare -A M0=()
for n in 1 2; do M0[$n]=$(metric "$n" drop-tunnel-port); done
for pod in n1-evil n2-evil; do
	for addr in "${NODE_ADDRS[@]}"; do
		forge "$P-$pod" --src "$FRIEND" --dst "$VICTIM" --dport "$PORT" --vxlan-to "$addr" --count 3
		check "$pod -> $addr:8472, inner $FRIEND -> victim: nothing arrives" nothing_arrived
		# the victim "sends" first (a reply entry planted?), then the "reply"
		forge "$P-$pod" --src "$VICTIM" --dst "$FRIEND" --sport "$PORT" --dport 40000 \
			--vxlan-to "$addr"
		forge "$P-$pod" --src "$FRIEND" --dst "$VICTIM" --sport 40000 --dport "$PORT" \
			--vxlan-to "$addr" --count 3
		check "$pod -> $addr:8472, planted victim -> friend, then the \"reply\": nothing arrives" \
			nothing_arrived
	done
done
for n in 1 2; do
	check "node$n counted drop-tunnel-port" test "$(metric "$n" drop-tunnel-port)" -gt "${M0[$n]}"
done

echo "== b) the evil host sends forged VXLAN to both nodes"
m0=$(metric 1 drop-tunnel-source)
for addr in "${NODE_ADDRS[@]}"; do
	forge "$P-evil" --src "$FRIEND" --dst "$VICTIM" --dport "$PORT" --vxlan-to "$addr" --count 3
	check "evil host -> $addr:8472, inner $FRIEND -> victim: nothing arrives" nothing_arrived
	forge "$P-evil" --src "$VICTIM" --dst "$FRIEND" --sport "$PORT" --dport 40001 --vxlan-to "$addr"
	forge "$P-evil" --src "$FRIEND" --dst "$VICTIM" --sport 40001 --dport "$PORT" \
		--vxlan-to "$addr" --count 3
	check "evil host -> $addr:8472, planted entry then the \"reply\": nothing arrives" nothing_arrived
done
if [ "$MODE" = overlay ]; then
	# ...and with node 2's address as the outer source: on one segment,
	# node 2's frames come from node 2's MAC, not the evil host's.
	for addr in "$(mn_node_ip 1)" "$(mn_router 1)"; do
		forge "$P-evil" --src "$FRIEND" --dst "$VICTIM" --dport "$PORT" --vxlan-to "$addr" \
			--outer-src "$(mn_node_ip 2)" --iface eth0 --eth-dst "$(uplink_mac 1)" --count 3
		check "evil host as node2 (outer source $(mn_node_ip 2)) -> $addr:8472: nothing arrives" \
			nothing_arrived
	done
	check "node1 counted drop-tunnel-source" test "$(metric 1 drop-tunnel-source)" -gt "$m0"
fi

echo "== c) the evil host sends plain packets with others' sources to node1's uplink"
m0=$(metric 1 drop-uplink-spoof)
MAC1=$(uplink_mac 1)
for src in "$FRIEND" "$(mn_node_ip 1)" "$(mn_router 1)" "${IP[n1-evil]}"; do
	forge "$P-evil" --src "$src" --dst "$VICTIM" --dport "$PORT" --iface eth0 --eth-dst "$MAC1" --count 3
	check "evil host (its own MAC) -> victim, source $src: nothing arrives" nothing_arrived
done
check "node1 counted drop-uplink-spoof" test "$(metric 1 drop-uplink-spoof)" -gt "$m0"

echo "== d) node2 itself tunnels sources that are not its own"
m0=$(metric 1 drop-tunnel-spoof)
if [ "$MODE" = overlay ]; then
	for src in "${IP[n1-evil]}" "$(mn_node_ip 1)"; do
		forge "$P-node2" --src "$src" --dst "$VICTIM" --dport "$PORT" --vxlan-to "$(mn_node_ip 1)" --count 3
		check "node2 -> node1:8472, inner source $src (node1's): nothing arrives" nothing_arrived
	done
	check "node1 counted drop-tunnel-spoof" test "$(metric 1 drop-tunnel-spoof)" -gt "$m0"
fi

echo "== legitimate traffic in the same cluster"
friend_arrives() {
	ip netns exec "$P-n2-friend" python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(3):
    s.sendto(b'hello', ('$VICTIM', $PORT))"
	sleep 0.3
	[ "$(arrived)" = $((BASE + 3)) ] && { BASE=$((BASE + 3)); return 0; }
	echo "the victim counted $(($(arrived) - BASE)) of the friend's 3 datagrams"
	return 1
}
check "n2-friend -> victim UDP $PORT across nodes: all 3 datagrams counted" friend_arrives
# Node 1 believes node 2's frames only from the MAC its neighbour table has
# for node 2, and drops them while there is none: its agent has the kernel
# resolve node 2 again as soon as the entry goes. Past the datapath's
# one-second memory of the MAC, node 2's packets still get in.
ip -n "$P-node1" neigh flush dev uplink0
sleep 1.5
check "node1's neighbours flushed: n2-friend -> victim still arrives (the agent resolved node2)" \
	friend_arrives
check "n2-friend -> victim TCP 8080 (echo)" probe "$P-n2-friend" tcp "$VICTIM" 8080 --timeout 1000
check "n2-friend -> victim UDP 8081 (echo)" probe "$P-n2-friend" udp "$VICTIM" 8081 --timeout 1000
check "n2-evil -> victim TCP 8080 refused by the policy" bash -c \
	"! ip netns exec '$P-n2-evil' '$BUILD/sluice-probe' tcp '$VICTIM' 8080 --timeout 500"
check "n1-evil -> node2's address TCP 9090 (a pod reaches another node)" \
	probe "$P-n1-evil" tcp "$(mn_node_ip 2)" 9090 --timeout 1000
check "n1-evil -> node2's address UDP 8473 (not the tunnel port) leaves" bash -c \
	"ip netns exec '$P-n1-evil' python3 -c \"import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('$(mn_node_ip 2)', 8473))\""
# A Service whose backend is another node's own address (the API server's
# is): node 2's netfilter DNATs a pod's connection there and routes it out of
# its uplink; node 1 must still take it (overlay: it goes through the tunnel).
serve "$P-node1" --tcp 9091 || not_ok "echo server on node 1"
ip netns exec "$P-node2" iptables -t nat -A PREROUTING -d 10.96.0.1 -p tcp --dport 443 \
	-j DNAT --to-destination "$(mn_node_ip 1):9091"
check "n2-evil -> 10.96.0.1:443, DNATed by node2 to node1's address: answered" \
	probe "$P-n2-evil" tcp 10.96.0.1 443 --timeout 1000
check "node1 -> victim TCP 8080 (the node reaches its pods)" \
	bash -c "nsenter --net=/run/netns/$P-node1 '$BUILD/sluice-probe' tcp '$VICTIM' 8080 --timeout 1000 >/dev/null"
check "the victim counted nothing but the friend's datagrams" test "$(arrived)" = "$BASE"

summary
