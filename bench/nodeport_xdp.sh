#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# NodePort with a backend on another node (externalTrafficPolicy Cluster:
# DNAT, SNAT, out again towards the backend's node), packets per second
# forwarded by one node, in one run:
#   xdp       sluice, --xdp native: the XDP program translates and sends
#             (XDP_TX, bpf/lib/nodeport_xdp.h);
#   tc        sluice, --xdp off: from_netdev at tc (bpf/lib/nodeport.h);
#   iptables  no sluice: kube-proxy's iptables rules for the same Service
#             (KUBE-NODEPORTS -> KUBE-EXT -> KUBE-SVC -> KUBE-SEP, DNAT,
#             MASQUERADE, the shape tests/kubeproxy/run.sh installs), the
#             kernel forwarding.
#
# Topology: one veth pair. The node (namespace dut, uplink0 10.200.0.11,
# native routing) and the wire's other end (gen, g0), which is both the
# traffic source and, by its MAC, node 2 (10.200.0.12, holding the
# backend's pod CIDR 10.202.0.0/24): what the node forwards comes back to
# g0, where an XDP program (bench/xdp_sink.bpf.c) counts and drops it. The figure is frames that came back per second of
# sending (ethtool's rx_queue_0_xdp_drops on g0).
#
# Traffic: build/sluice-xdpgen (bench/xdp_gen.c, bench/xdp.sh's source),
# FLOOD 64-byte UDP frames of one flow (established after its first
# packet, as a NodePort under load mostly sees) to 10.200.0.11:30080:
# the kernel's XDP live-frames generator, or where the kernel refuses it
# an AF_PACKET socket (qdisc bypassed), which allocates an skb per frame.
# Its own rate is printed against a node that drops every frame in one XDP
# instruction (its --attach-drop, the ceiling), and against one that drops
# at tc instead (bench/tc_drop.bpf.c, no XDP program). Source, node and
# sink share the CPU (veth delivers in the sender's softirq), so each
# figure is 1 / (source + node + sink).
#
# veth against a NIC: the source's frames are skbs before the node sees
# them; a veth with an XDP program turns each into an xdp_buff and copies
# it into a fresh page when its headroom is under 256 bytes (AF_PACKET's
# is), then builds a new skb for what passes. So on veth XDP saves no skb
# allocation (the sender made it) and pays a copy; the xdp-drop/tc-drop
# floors printed show that cost. On a NIC the driver runs XDP on its DMA
# buffer before any skb exists: the gap between xdp and tc is larger
# there than here.
#
#   bench/nodeport_xdp.sh
#   FLOOD=3000000 bench/nodeport_xdp.sh
set -uo pipefail
# shellcheck disable=SC2034 # read by tests/lib/common.sh
TEST_NAME=bench-nodeport-xdp
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../tests/lib/common.sh
source "$HERE/../tests/lib/common.sh"
need_root

FLOOD=${FLOOD:-1000000}
CLIENT=198.18.0.9	# the outside client
ID=slnx$$
DIR=$(mktemp -d /tmp/sluice-bench-npx.XXXXXX)
CLEANUP_PATHS+=("$DIR")
BPFFS=/sys/fs/bpf/$ID
CLEANUP_PATHS+=("$BPFFS")
GEN=$BUILD/sluice-xdpgen
TCDROP=$BUILD/tc_drop.bpf.o
SINK=$BUILD/xdp_sink.bpf.o
for tool in jq ethtool iptables-restore tc; do
	command -v $tool >/dev/null || { log "$tool missing: run 'make deps'"; exit 1; }
done
for f in "$GEN" "$TCDROP" "$SINK" "$BUILD/sluice-agent" "$BUILD/sluicectl"; do
	[ -e "$f" ] || { log "$f missing: make bench builds it"; exit 1; }
done

DUT_IP=10.200.0.11
NODE2=10.200.0.12
BACKEND=10.202.0.7

netns_add "$ID-dut"
netns_add "$ID-gen"
ip -n "$ID-dut" link add uplink0 type veth peer name g0 netns "$ID-gen"
ip -n "$ID-dut" addr add "$DUT_IP/24" dev uplink0
ip -n "$ID-gen" addr add 10.200.0.50/24 dev g0
# g0 answers for node 2 too (the agent resolves nodes' neighbours itself).
ip -n "$ID-gen" addr add "$NODE2/24" dev g0
ip -n "$ID-dut" link set uplink0 up
ip -n "$ID-gen" link set g0 up
ip netns exec "$ID-dut" ethtool -K uplink0 gro on >/dev/null
DUT_MAC=$(ip -n "$ID-dut" -j link show uplink0 | jq -r '.[0].address')
# Node 2 is g0; its pods are behind it; the world is too.
ip -n "$ID-dut" route add 10.202.0.0/24 via "$NODE2"
ip -n "$ID-dut" route add default via 10.200.0.50
ip netns exec "$ID-dut" sysctl -qw net.ipv4.ip_forward=1
# The sink: what comes back to g0 is counted and dropped at once (ARP
# passes: the node resolves node 2 and the gateway).
ip -n "$ID-gen" link set dev g0 xdpdrv obj "$SINK" sec xdp

back() { # frames g0 got back (and dropped) so far
	ip netns exec "$ID-gen" ethtool -S g0 | awk '/rx_queue_0_xdp_drops/ { s += $2 } END { print s + 0 }'
}
flood() { # [COUNT]: the generator's line, "sent N in S s: R pps"
	ip netns exec "$ID-gen" "$GEN" g0 "$DUT_MAC" "$CLIENT" "$DUT_IP" 30080 "${1:-$FLOOD}"
}
secs() { sed -E 's/.* in ([0-9.]+) s.*/\1/' <<<"$1"; }
pps() { sed -E 's/.*: ([0-9]+) pps.*/\1/' <<<"$1"; }
# forwarded BEFORE LINE: frames back per second of sending
rate() { echo "$(($(back) - $1)) $(secs "$2")" | awk '{ printf "%.0f", $1 / $2 }'; }

AGENT=
start_agent() { # XDP-MODE
	mkdir -p "$DIR/agent"
	nsenter --net="/run/netns/$ID-dut" "$BUILD/sluice-agent" --node-name dut \
		--pod-cidr 10.210.1.0/24 --device uplink0 --routing native --xdp "$1" \
		--kube-proxy-replacement on --kubernetes off --socket "$DIR/agent/agent.sock" \
		--state-dir "$DIR/agent/state" --bpffs "$BPFFS" >>"$DIR/agent/agent.log" 2>&1 &
	AGENT=$!
	CLEANUP_PIDS+=("$AGENT")
	wait_for_socket "$DIR/agent/agent.sock" || return 1
	"$BUILD/sluicectl" --socket "$DIR/agent/agent.sock" apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Namespace
metadata: {name: bench}
---
apiVersion: v1
kind: Node
metadata: {name: dut}
spec: {podCIDR: 10.210.1.0/24, podCIDRs: [10.210.1.0/24]}
status: {addresses: [{type: InternalIP, address: $DUT_IP}]}
---
apiVersion: v1
kind: Node
metadata: {name: node2}
spec: {podCIDR: 10.202.0.0/24, podCIDRs: [10.202.0.0/24]}
status: {addresses: [{type: InternalIP, address: $NODE2}]}
---
apiVersion: v1
kind: Service
metadata: {namespace: bench, name: np}
spec:
  type: NodePort
  clusterIP: 10.96.0.10
  externalTrafficPolicy: Cluster
  ports:
  - {name: dns, protocol: UDP, port: 53, targetPort: 8080, nodePort: 30080}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {namespace: bench, name: np-1, labels: {kubernetes.io/service-name: np}}
addressType: IPv4
ports: [{name: dns, protocol: UDP, port: 8080}]
endpoints:
- {addresses: [$BACKEND], nodeName: node2, conditions: {ready: true}}
YAML
}
stop_agent() {
	[ -n "$AGENT" ] || return 0
	kill "$AGENT" 2>/dev/null
	wait "$AGENT" 2>/dev/null
	AGENT=
	rm -rf "$DIR/agent" "$BPFFS"
}
metric() { # REASON: ingress packets the agent counted
	"$BUILD/sluicectl" --socket "$DIR/agent/agent.sock" metrics -o json |
		jq -r --arg r "$1" '[.metrics[] | select(.reason == $r and .direction == "ingress") | .packets] | add // 0'
}

declare -A PPS=() SRC=() NS=()
echo "== the source's ceiling: the node drops every frame in one XDP instruction (veth copy included)"
ip netns exec "$ID-dut" "$GEN" --attach-drop uplink0 || exit 1
out=$(flood)
ip -n "$ID-dut" link set dev uplink0 xdpdrv off
SRC[xdp-drop]=$(pps "$out")
echo "  $out"
echo "== the same at tc (a one-instruction tc program, no XDP program: no conversion, no copy)"
ip netns exec "$ID-dut" tc qdisc add dev uplink0 clsact
ip netns exec "$ID-dut" tc filter add dev uplink0 ingress bpf direct-action obj "$TCDROP" sec tc
out=$(flood)
ip netns exec "$ID-dut" tc qdisc del dev uplink0 clsact
SRC[tc-drop]=$(pps "$out")
echo "  $out"

for mode in native off; do
	label=$([ "$mode" = native ] && echo xdp || echo tc)
	echo "== $label: sluice --xdp $mode"
	start_agent "$mode" || { log "the agent did not start: $DIR/agent/agent.log"; exit 1; }
	# One packet per source first: the flows' first packets (backend
	# choice, NAT port) are not what is measured.
	flood 1000 >/dev/null
	t0=$(metric xdp-tx)
	b0=$(back)
	out=$(flood)
	PPS[$label]=$(rate "$b0" "$out")
	SRC[$label]=$(pps "$out")
	echo "  source: $out"
	echo "  forwarded: ${PPS[$label]} pps (xdp-tx counted $(($(metric xdp-tx) - t0)))"
	"$BUILD/sluicectl" --socket "$DIR/agent/agent.sock" metrics -o json |
		jq -r '.xdpFallThrough[] | "  left to tc: \(.cause) \(.packets)"'
	stop_agent
done

echo "== iptables: kube-proxy's rules for the same Service, no sluice"
ip netns exec "$ID-dut" iptables-restore -w <<'RULES'
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-SVC-BENCHNPDNS0000000 - [0:0]
:KUBE-EXT-BENCHNPDNS0000000 - [0:0]
:KUBE-SEP-BENCHNPDNS0000001 - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-SERVICES -d 10.96.0.10/32 -p udp -m comment --comment "bench/np:dns cluster IP" -m udp --dport 53 -j KUBE-SVC-BENCHNPDNS0000000
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
-A KUBE-NODEPORTS -p udp -m comment --comment "bench/np:dns" -m udp --dport 30080 -j KUBE-EXT-BENCHNPDNS0000000
-A KUBE-EXT-BENCHNPDNS0000000 -m comment --comment "masquerade traffic for bench/np:dns external destinations" -j KUBE-MARK-MASQ
-A KUBE-EXT-BENCHNPDNS0000000 -j KUBE-SVC-BENCHNPDNS0000000
-A KUBE-SVC-BENCHNPDNS0000000 -m comment --comment "bench/np:dns -> 10.202.0.7:8080" -j KUBE-SEP-BENCHNPDNS0000001
-A KUBE-SEP-BENCHNPDNS0000001 -s 10.202.0.7/32 -m comment --comment "bench/np:dns" -j KUBE-MARK-MASQ
-A KUBE-SEP-BENCHNPDNS0000001 -p udp -m comment --comment "bench/np:dns" -m udp -j DNAT --to-destination 10.202.0.7:8080
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-FORWARD - [0:0]
-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
RULES
flood 1000 >/dev/null
b0=$(back)
out=$(flood)
PPS[iptables]=$(rate "$b0" "$out")
SRC[iptables]=$(pps "$out")
echo "  source: $out"
echo "  forwarded: ${PPS[iptables]} pps"

ratio() { echo "$1 $2" | awk '{ if ($2 > 0) printf "%.2f", $1 / $2; else print "n/a" }'; }
# The node's own time per packet, estimated: the time per forwarded frame
# less the time per frame against the floor the same receive path has
# (XDP's for xdp, whose veth conversion and copy the floor includes; tc's
# for tc and iptables). The sink's share stays in (small, about alike).
own() { echo "$1 $2" | awk '{ if ($1 > 0 && $2 > 0) printf "%.0f", 1e9 / $1 - 1e9 / $2; else print "n/a" }'; }
NS[xdp]=$(own "${PPS[xdp]}" "${SRC[xdp-drop]}")
NS[tc]=$(own "${PPS[tc]}" "${SRC[tc-drop]}")
NS[iptables]=$(own "${PPS[iptables]}" "${SRC[tc-drop]}")
echo "== NodePort, backend on another node: frames forwarded per second (one core, veth)"
echo "(the source alone, against an XDP drop: ${SRC[xdp-drop]} pps; against a tc drop: ${SRC[tc-drop]} pps)"
printf '%-10s %12s %14s %14s\n' path forwarded source-rate node-ns/pkt
for p in xdp tc iptables; do
	printf '%-10s %12s %14s %14s\n' "$p" "${PPS[$p]}" "${SRC[$p]}" "${NS[$p]}"
done
echo "forwarded: xdp/tc $(ratio "${PPS[xdp]}" "${PPS[tc]}"), xdp/iptables $(ratio "${PPS[xdp]}" "${PPS[iptables]}"), tc/iptables $(ratio "${PPS[tc]}" "${PPS[iptables]}")"
echo "node's own time per packet: tc/xdp $(ratio "${NS[tc]}" "${NS[xdp]}"), iptables/xdp $(ratio "${NS[iptables]}" "${NS[xdp]}")"
