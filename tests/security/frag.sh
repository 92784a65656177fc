#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# IP fragments and ICMP errors against a hostile pod and network. Two nodes
# (tests/multinode/lib.sh), pods n1-client and n2-client (app=client),
# n2-server (app=server), n1-evil and n2-evil (app=evil), and a "world" host
# on the physical network that routes the pod CIDRs through the nodes.
# n2-server accepts only UDP 8081 (and any TCP port) from app=client; the
# clients accept nothing new (replies pass). Per mode:
#
#   1) a client sends a 4000-byte UDP datagram to the server (its stack cuts
#      it into fragments), cross-node and same-node: the server gets it
#      whole and its echo comes back whole (later fragments take their
#      first fragment's port and verdict);
#   2) the evil pods send later fragments whose first never came (their own
#      source, to the server's UDP 8081), and the world host sends later
#      TCP fragments with a client's source to the server (which admits any
#      TCP port from clients): not one fragment reaches the server's
#      interface, and the nodes count drop-frag-orphan; the clients'
#      large datagrams still arrive whole afterwards;
#   3) with client -> server flows tracked, the evil pods forge ICMP "port
#      unreachable" and "fragmentation needed" quoting them, to the server
#      and to the client, same-node and cross-node: nothing reaches either
#      (raw ICMP counters), the nodes count drop-icmp-forged; the same
#      errors from the flow's peer, from a node and from the world host (a
#      router) still arrive;
#   4) the host stack's paths: a 4000-byte datagram to a Service that
#      node1's netfilter DNATs to the server (conntrack reassembles and
#      fragments again) and to the world host (masqueraded: every fragment
#      leaves with node1's address, the answer's fragments get the pod's
#      back) is echoed whole.
#
#   tests/security/frag.sh             overlay, then native
#   tests/security/frag.sh overlay     one mode (or native)
#
# Last line: "frag: N passed, M failed". BUILD selects the binaries (a
# baseline build shows what got through before).
# shellcheck source-path=SCRIPTDIR
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TEST_NAME=${FRAG_TEST_NAME:-frag}
# shellcheck source=../lib/common.sh
source "$HERE/../lib/common.sh"
# shellcheck source=../multinode/lib.sh
source "$HERE/../multinode/lib.sh"

mn_mode frag FRAG_TEST_NAME "$0" "$@"

need_root
for bin in sluice-agent sluice-cni sluicectl; do
	[ -x "$BUILD/$bin" ] || { log "$BUILD/$bin missing (run make)"; exit 77; }
done
for tool in python3 jq; do
	command -v "$tool" >/dev/null || { log "$tool missing"; exit 77; }
done
FORGE=$ROOT/tests/tools/forge.py

P=slfr$$
MN_DIR=$(mktemp -d /tmp/sluice-frag.XXXXXX)
CLEANUP_PATHS+=("$MN_DIR")
NS=frag
WORLD=10.200.0.100
declare -A IP=()
PODS=(n1-client n2-client n2-server n1-evil n2-evil)

node_of() { printf '%s' "${1:1:1}"; }
app_of() { printf '%s' "${1#*-}"; }

# metric N REASON DIRECTION: packets node N's datapath counted (0 if none).
metric() {
	mn_ctl "$P" "$1" metrics -o json | jq -r --arg r "$2" --arg d "$3" \
		'[.metrics[] | select(.reason == $r and .direction == $d) | .packets] | add // 0'
}

# counts POD: the JSON the pod's listener writes.
counts() { cat "$MN_DIR/$1.json"; }
# icmp_in POD: ICMP packets that reached POD's stack.
icmp_in() { jq '.raw.icmp' "$MN_DIR/$1.json"; }
# frags_in POD SRC: fragments from SRC that arrived on POD's eth0.
frags_in() { jq --arg s "$2" '.frags[$s] // 0' "$MN_DIR/$1.json"; }

# listen POD ARGS...: forge.py listen in POD, counting into MN_DIR/POD.json.
listen() {
	local pod=$1
	shift
	ip netns exec "$P-$pod" python3 "$FORGE" listen "$@" --out "$MN_DIR/$pod.json" \
		>>"$MN_DIR/listen.log" 2>&1 &
	CLEANUP_PIDS+=($!)
	for _ in $(seq 100); do
		[ -s "$MN_DIR/$pod.json" ] && return 0
		sleep 0.05
	done
	log "listener in $pod did not start"
	return 1
}

forge() { local ns=$1; shift; ip netns exec "$ns" python3 "$FORGE" send "$@" 2>&1; }

# big FROM SPORT: a 4000-byte datagram FROM -> n2-server:8081, echoed whole.
big() {
	local out
	out=$(ip netns exec "$P-$1" python3 "$FORGE" echo --dst "${IP[n2-server]}" --dport 8081 \
		--sport "$2" --size 4000 --timeout-ms 2000)
	echo "echo came back with $out bytes"
	[ "$out" = 4000 ]
}

echo "== cluster: two nodes (--routing $MODE), five pods, the world host"
mn_topology "$P" 2 || { log "could not build the topology"; exit 1; }
# Section 4's Service is netfilter's DNAT, as kube-proxy writes it: sluice
# leaves Services to kube-proxy here.
for n in 1 2; do
	MN_AGENT_ARGS="${MN_AGENT_ARGS:-} --kube-proxy-replacement off" mn_start_agent "$P" "$n" "$MODE" ||
		{ log "node$n's agent did not start"; exit 1; }
done
check "Node objects and Namespace applied to both agents" mn_apply_all "$P" 2 < <(
	{
		jq -cn --arg ns "$NS" '{apiVersion: "v1", kind: "Namespace", metadata: {name: $ns}}'
		mn_node_json 1
		mn_node_json 2
	} | mn_list)
for pod in "${PODS[@]}"; do
	netns_add "$P-$pod"
	out=$(mn_pod_add "$P" "$(node_of "$pod")" "$pod" "$NS")
	IP[$pod]=$(jq -r '.ips[0].address // empty' <<<"$out" 2>/dev/null | cut -d/ -f1)
	[ -n "${IP[$pod]}" ] || { log "no address for $pod: $out"; exit 1; }
done
check "the Pod objects applied to both agents" mn_apply_all "$P" 2 < <(
	for pod in "${PODS[@]}"; do
		mn_pod_json "$NS" "$pod" "$(node_of "$pod")" "${IP[$pod]}" "$(app_of "$pod")"
	done | mn_list)
netns_add "$P-world"
ip -n "$P-phys" link add world0 mtu "$MN_MTU" type veth peer name eth0 mtu "$MN_MTU" netns "$P-world"
ip -n "$P-phys" link set world0 master br0 up
ip -n "$P-world" addr add "$WORLD/24" dev eth0
ip -n "$P-world" link set eth0 up
ip -n "$P-world" route add "$(mn_pod_cidr 1)" via "$(mn_node_ip 1)"
ip -n "$P-world" route add "$(mn_pod_cidr 2)" via "$(mn_node_ip 2)"

POLICY="apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: $NS, name: server-from-clients}
spec:
  podSelector: {matchLabels: {app: server}}
  policyTypes: [Ingress]
  ingress:
  - from: [{podSelector: {matchLabels: {app: client}}}]
    ports: [{port: 8081, protocol: UDP}, {protocol: TCP}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: $NS, name: clients-closed}
spec:
  podSelector: {matchLabels: {app: client}}
  policyTypes: [Ingress]"
check "the policies applied to both agents" bash -c "
	for n in 1 2; do
		'$BUILD/sluicectl' --socket '$MN_DIR/$P/node'\$n/agent.sock apply -f - <<<'$POLICY' >/dev/null || exit 1
	done"

listen n2-server --udp 8081 --echo --raw icmp --frags eth0 || exit 1
listen n1-client --raw icmp --frags eth0 || exit 1
listen n2-client --raw icmp --frags eth0 || exit 1

echo "== 1) a 4000-byte UDP datagram in fragments arrives whole (UDP 8081 only is allowed)"
check "n1-client -> n2-server (cross-node) small datagram echoed" bash -c "
	ip netns exec '$P-n1-client' python3 '$FORGE' echo --dst '${IP[n2-server]}' --size 100 >/dev/null"
check "n1-client -> n2-server (cross-node): 4000 bytes echoed whole" big n1-client 40100
check "n2-client -> n2-server (same node): 4000 bytes echoed whole" big n2-client 40101
check "the server received 4000-byte datagrams" bash -c "
	jq -e 'any(.udp_sizes[]; . == 4000)' '$MN_DIR/n2-server.json' >/dev/null ||
		{ cat '$MN_DIR/n2-server.json'; echo; exit 1; }"
check "n2-server's eth0 saw the clients' fragments (the fragment counter counts)" bash -c "
	jq -e '.frags[\"${IP[n1-client]}\"] >= 3 and .frags[\"${IP[n2-client]}\"] >= 3' \
		'$MN_DIR/n2-server.json' >/dev/null || { cat '$MN_DIR/n2-server.json'; echo; exit 1; }"

echo "== 2) later fragments without their first reach nothing"
o1=$(metric 1 drop-frag-orphan egress) o2=$(metric 2 drop-frag-orphan egress)
oi=$(($(metric 2 drop-frag-orphan ingress) + $(metric 2 drop-uplink-spoof ingress)))
for pod in n1-evil n2-evil; do
	# the middle and the last fragment of a datagram whose first never comes
	forge "$P-$pod" --src "${IP[$pod]}" --dst "${IP[n2-server]}" --ip-id 4321 \
		--frag-offset 1480 --more-frags --payload 1000 --count 5
	forge "$P-$pod" --src "${IP[$pod]}" --dst "${IP[n2-server]}" --ip-id 4321 \
		--frag-offset 2960 --payload 1000 --count 5
done
# The world host, on the physical network, with a client's source: TCP,
# which the server admits on any port from clients.
c0=$(frags_in n2-server "${IP[n1-client]}")
forge "$P-world" --proto tcp --src "${IP[n1-client]}" --dst "${IP[n2-server]}" --ip-id 4322 \
	--frag-offset 1480 --payload 1000 --count 5
sleep 0.5
check "no fragment from n1-evil reached n2-server (cross-node)" test "$(frags_in n2-server "${IP[n1-evil]}")" = 0
check "no fragment from n2-evil reached n2-server (same node)" test "$(frags_in n2-server "${IP[n2-evil]}")" = 0
check "no forged fragment with n1-client's source reached n2-server (from the network)" \
	test "$(frags_in n2-server "${IP[n1-client]}")" = "$c0"
check "node1 counted the evil pod's 10 fragments as drop-frag-orphan" \
	test "$(metric 1 drop-frag-orphan egress)" -ge $((o1 + 10))
check "node2 counted the evil pod's 10 fragments as drop-frag-orphan" \
	test "$(metric 2 drop-frag-orphan egress)" -ge $((o2 + 10))
# (A pod source from a host that is not its node is dropped on the uplink
# before its fragments are looked at: docs/SECURITY.md, tunnel and uplink.)
check "node2 counted the 5 forged fragments from the network (drop-uplink-spoof or drop-frag-orphan)" \
	test "$(($(metric 2 drop-frag-orphan ingress) + $(metric 2 drop-uplink-spoof ingress)))" -ge $((oi + 5))
check "n1-client -> n2-server: 4000 bytes still echoed whole" big n1-client 40102
check "n2-client -> n2-server: 4000 bytes still echoed whole" big n2-client 40103

echo "== 3) ICMP errors about a flow pass only from its peer or a router"
# The flows the errors quote: n1-client:40123 and n2-client:40124 -> server:8081.
check "n1-client:40123 -> n2-server:8081 tracked (echoed)" bash -c "
	ip netns exec '$P-n1-client' python3 '$FORGE' echo --dst '${IP[n2-server]}' --sport 40123 --size 100 >/dev/null"
check "n2-client:40124 -> n2-server:8081 tracked (echoed)" bash -c "
	ip netns exec '$P-n2-client' python3 '$FORGE' echo --dst '${IP[n2-server]}' --sport 40124 --size 100 >/dev/null"
s0=$(icmp_in n2-server) a0=$(icmp_in n1-client) b0=$(icmp_in n2-client)
f1=$(metric 1 drop-icmp-forged egress) f2=$(metric 2 drop-icmp-forged egress)
fi1=$(metric 1 drop-icmp-forged ingress) fi2=$(metric 2 drop-icmp-forged ingress)
srv=${IP[n2-server]}
for pod in n1-evil n2-evil; do
	for client in n1-client:40123 n2-client:40124; do
		cip=${IP[${client%:*}]} cport=${client#*:}
		for tc in "3 3" "3 4"; do
			read -r t c <<<"$tc"
			# to the server, about its answer to the client
			forge "$P-$pod" --proto icmp --icmp-type "$t" --icmp-code "$c" --mtu 576 \
				--src "${IP[$pod]}" --dst "$srv" --quote "$srv:8081,$cip:$cport,udp"
			# to the client, about its datagram to the server
			forge "$P-$pod" --proto icmp --icmp-type "$t" --icmp-code "$c" --mtu 576 \
				--src "${IP[$pod]}" --dst "$cip" --quote "$cip:$cport,$srv:8081,udp"
		done
	done
done
sleep 0.5
check "no forged error reached n2-server" test "$(icmp_in n2-server)" = "$s0"
check "no forged error reached n1-client" test "$(icmp_in n1-client)" = "$a0"
check "no forged error reached n2-client" test "$(icmp_in n2-client)" = "$b0"
forged=$(($(metric 1 drop-icmp-forged egress) - f1 + $(metric 2 drop-icmp-forged egress) - f2 +
	$(metric 1 drop-icmp-forged ingress) - fi1 + $(metric 2 drop-icmp-forged ingress) - fi2))
check "the nodes counted the 16 forged errors as drop-icmp-forged ($forged)" test "$forged" -ge 16
check "n2-evil's error to n2-server (same node) dropped at its own veth" \
	test "$(metric 2 drop-icmp-forged egress)" -gt "$f2"
check "n1-evil's errors to n2-server (cross-node) dropped at node2" \
	test "$(metric 2 drop-icmp-forged ingress)" -gt "$fi2"
# The same errors from those that can send them.
forge "$P-n2-server" --proto icmp --icmp-type 3 --icmp-code 3 --src "$srv" --dst "${IP[n1-client]}" \
	--quote "${IP[n1-client]}:40123,$srv:8081,udp"
forge "$P-n2-server" --proto icmp --icmp-type 3 --icmp-code 3 --src "$srv" --dst "${IP[n2-client]}" \
	--quote "${IP[n2-client]}:40124,$srv:8081,udp"
sleep 0.3
check "the flow's peer (n2-server): its port unreachable reaches n1-client (cross-node)" \
	test "$(icmp_in n1-client)" -gt "$a0"
check "the flow's peer (n2-server): its port unreachable reaches n2-client (same node)" \
	test "$(icmp_in n2-client)" -gt "$b0"
a1=$(icmp_in n1-client) s1=$(icmp_in n2-server)
forge "$P-node1" --proto icmp --icmp-type 3 --icmp-code 4 --mtu 1000 --src "$(mn_node_ip 1)" \
	--dst "${IP[n1-client]}" --quote "${IP[n1-client]}:40123,$srv:8081,udp"
forge "$P-world" --proto icmp --icmp-type 3 --icmp-code 4 --mtu 1000 --src "$WORLD" \
	--dst "$srv" --quote "$srv:8081,${IP[n1-client]}:40123,udp"
sleep 0.3
check "a node (node1's address): fragmentation needed reaches n1-client" test "$(icmp_in n1-client)" -gt "$a1"
check "a router (the world host): fragmentation needed reaches n2-server" test "$(icmp_in n2-server)" -gt "$s1"

echo "== 4) through the host stack: large datagrams to a Service and to the world"
# Masquerade: the world host sees node1's address on every fragment (no
# later fragment leaves with the pod's address), and the answer's later
# fragments get the pod's address back, their payload untouched.
listen world --udp 8081 --echo --frags eth0 || exit 1
world_big() {
	local out
	out=$(ip netns exec "$P-n1-client" python3 "$FORGE" echo --dst "$WORLD" --dport 8081 \
		--size 4000 --timeout-ms 2000)
	echo "echo came back with $out bytes (identical: $([ "$out" = 4000 ] && echo yes || echo no))"
	[ "$out" = 4000 ] || return 1
	jq -e --arg pod "${IP[n1-client]}" --arg node "$(mn_node_ip 1)" \
		'any(.udp_sizes[]; . == 4000) and (.frags[$pod] // 0) == 0 and .frags[$node] >= 3' \
		"$MN_DIR/world.json" >/dev/null || { counts world; return 1; }
}
check "n1-client -> the world (masqueraded, fragments as the pod sent them): 4000 bytes from node1's address, echoed whole" world_big

# A Service as kube-proxy makes one: node1's netfilter DNATs a virtual
# address to n2-server. With conntrack loaded the node reassembles the
# datagram and cuts it again on its way out (to_overlay or to_netdev see
# new fragments); the server's node sees them as any fragments.
VIP=10.96.0.10
if command -v iptables >/dev/null; then
	ip netns exec "$P-node1" iptables -t nat -A PREROUTING -d "$VIP" -p udp --dport 8081 \
		-j DNAT --to-destination "${IP[n2-server]}:8081"
	vip_big() {
		local out
		out=$(ip netns exec "$P-n1-client" python3 "$FORGE" echo --dst "$VIP" --dport 8081 \
			--size 4000 --timeout-ms 2000)
		echo "echo came back with $out bytes"
		[ "$out" = 4000 ]
	}
	check "n1-client -> Service $VIP (DNAT by node1) -> n2-server: 4000 bytes echoed whole" vip_big
	check "n1-client -> the world (masqueraded, fragments cut again after conntrack): 4000 bytes echoed whole" world_big
else
	not_ok "iptables missing: the Service path is not checked"
fi

if [ "$FAIL" -gt 0 ]; then
	for n in 1 2; do
		echo "--- node$n: sluicectl metrics"
		mn_ctl "$P" "$n" metrics 2>&1 | sed 's/^/       /'
	done
	for pod in n2-server n1-client n2-client world; do echo "--- $pod: $(counts "$pod")"; done
fi
summary
