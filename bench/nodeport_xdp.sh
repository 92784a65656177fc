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
# Topology: the node (namespace dut, uplink0 10.200.0.11, native routing)
# and the wire's other end (gen, g0), which is both the traffic source and,
# by its MAC, node 2 (10.200.0.12, holding the backend's pod CIDR
# 10.202.0.0/24): what the node forwards comes back to g0, where an XDP
# program (bench/xdp_sink.bpf.c) counts and drops it (ethtool's
# rx_queue_0_xdp_drops on g0).
#
# Traffic: build/sluice-xdpgen (bench/xdp_gen.c), FLOOD 64-byte UDP frames
# of one flow (established after its first packet, as a NodePort under
# load mostly sees) to 10.200.0.11:30080, sent on s0 (an AF_PACKET socket,
# or the kernel's XDP live-frames generator where it is allowed). s0's
# peer g1 redirects every frame out of g0 at XDP, so frames reach the node
# as XDP frames, with no skb, as a NIC's receive ring hands them over: on
# the XDP path the node never builds an skb, on the tc and iptables paths
# veth builds one, as a NIC driver would.
#
# CPUs: the node's receive work runs in uplink0's NAPI kernel thread
# (threaded NAPI), pinned to CPU NODE_CPU (1), polled with interrupt
# coalescing as a NIC does (napi_defer_hard_irqs, gro_flush_timeout
# NAPI_TIMEOUT_NS = 200 us); the source, its redirect and the sink run on
# CPU SRC_CPU (0). The figure is the node's CPU time per forwarded packet:
# the NAPI thread's run time (/proc/PID/schedstat) over the frames that
# came back, the same measure for xdp, tc and iptables. Forwarded packets
# per second are printed too, but the source (about 0.4 Mpps) is slower
# than the XDP path, so that ratio is a floor. Two floors are printed: the
# node's time per frame when it drops each in one XDP instruction, and in
# one tc instruction (bench/tc_drop.bpf.c).
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

NODE_CPU=${NODE_CPU:-1}
SRC_CPU=${SRC_CPU:-0}
DUT_IP=10.200.0.11
NODE2=10.200.0.12
BACKEND=10.202.0.7

netns_add "$ID-dut"
netns_add "$ID-gen"
ip -n "$ID-dut" link add uplink0 type veth peer name g0 netns "$ID-gen"
# The source's own pair: frames sent on s0 reach g1, whose XDP program
# redirects them out of g0, so they reach the node as XDP frames (no skb),
# as a NIC's DMA buffers do.
ip -n "$ID-gen" link add s0 type veth peer name g1
ip -n "$ID-dut" addr add "$DUT_IP/24" dev uplink0
ip -n "$ID-gen" addr add 10.200.0.50/24 dev g0
# g0 answers for node 2 too (the agent resolves nodes' neighbours itself).
ip -n "$ID-gen" addr add "$NODE2/24" dev g0
for dev in s0 g1 g0; do ip -n "$ID-gen" link set "$dev" up; done
ip -n "$ID-dut" link set uplink0 up
# GRO on gives every receiving veth a NAPI instance (XDP frames can be
# sent to it), threaded: its own kernel thread, pinned below.
ip netns exec "$ID-dut" ethtool -K uplink0 gro on >/dev/null
ip netns exec "$ID-gen" ethtool -K g1 gro on >/dev/null
ip netns exec "$ID-gen" ethtool -K g0 gro on >/dev/null
ip netns exec "$ID-dut" sh -c "cd /sys/class/net/uplink0 && echo 1 > threaded && echo ${NAPI_DEFER:-1000} > napi_defer_hard_irqs && echo ${NAPI_TIMEOUT_NS:-200000} > gro_flush_timeout"
ip netns exec "$ID-gen" sh -c 'echo 1 > /sys/class/net/g0/threaded'
DUT_MAC=$(ip -n "$ID-dut" -j link show uplink0 | jq -r '.[0].address')
# Node 2 is g0; its pods are behind it; the world is too.
ip -n "$ID-dut" route add 10.202.0.0/24 via "$NODE2"
ip -n "$ID-dut" route add default via 10.200.0.50
ip netns exec "$ID-dut" sysctl -qw net.ipv4.ip_forward=1
# The sink: what comes back to g0 is counted and dropped at once (ARP
# passes: the node resolves node 2 and the gateway).
ip -n "$ID-gen" link set dev g0 xdpdrv obj "$SINK" sec xdp
ip netns exec "$ID-gen" "$GEN" --attach-redirect g1 g0 || exit 1

# The node's receive work runs in uplink0's NAPI thread, on CPU 1; the
# source, its redirect and the sink on CPU 0. (NAPI threads come and go
# with XDP programs: pinned again before each measurement.)
napi_pids() { # DEV: its NAPI threads
	pgrep -x "napi/$1-[0-9]+" || true
}
pin() {
	local p
	for p in $(napi_pids uplink0); do taskset -p -c "$NODE_CPU" "$p" >/dev/null; done
	for p in $(napi_pids g0) $(napi_pids g1); do taskset -p -c "$SRC_CPU" "$p" >/dev/null; done
}
node_ns() { # CPU nanoseconds the node's NAPI threads have used so far
	local p s=0
	for p in $(napi_pids uplink0); do s=$((s + $(cut -d' ' -f1 "/proc/$p/schedstat"))); done
	echo "$s"
}
back() { # frames g0 got back (and dropped) so far
	ip netns exec "$ID-gen" ethtool -S g0 | awk '/rx_queue_0_xdp_drops/ { s += $2 } END { print s + 0 }'
}
flood() { # [COUNT]: the generator's line, "sent N in S s: R pps"
	pin
	ip netns exec "$ID-gen" taskset -c "$SRC_CPU" "$GEN" s0 "$DUT_MAC" "$CLIENT" "$DUT_IP" 30080 "${1:-$FLOOD}"
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

uplink_rx() { # frames uplink0 received so far (XDP verdicts and skbs alike)
	ip netns exec "$ID-dut" ethtool -S uplink0 |
		awk '/rx_queue_0_(xdp_packets|packets):/ { s += $2 } END { print s + 0 }'
}
declare -A PPS=() SRC=() NS=()
# measure LABEL: one flood; the node's CPU time per frame it forwarded
# (or, for the floors, received), frames forwarded per second of sending,
# and the source's rate.
measure() {
	local b0 n0 r0 out got
	flood 1000 >/dev/null
	b0=$(back)
	r0=$(uplink_rx)
	n0=$(node_ns)
	out=$(flood)
	sleep 0.2	# the node's thread drains its ring
	got=$(($(back) - b0))
	case $1 in *-drop) got=$(($(uplink_rx) - r0)) ;; esac
	NS[$1]=$(echo "$(($(node_ns) - n0)) $got" | awk '{ if ($2 > 0) printf "%.0f", $1 / $2; else print "n/a" }')
	PPS[$1]=$(rate "$b0" "$out")
	SRC[$1]=$(pps "$out")
	echo "  source: $out; node: ${NS[$1]} ns of CPU per frame ($got frames)"
}
echo "== floors: the node drops every frame in one XDP instruction / one tc instruction"
ip netns exec "$ID-dut" "$GEN" --attach-drop uplink0 || exit 1
measure xdp-drop
ip -n "$ID-dut" link set dev uplink0 xdpdrv off
ip netns exec "$ID-dut" tc qdisc add dev uplink0 clsact
ip netns exec "$ID-dut" tc filter add dev uplink0 ingress bpf direct-action obj "$TCDROP" sec tc
measure tc-drop
ip netns exec "$ID-dut" tc qdisc del dev uplink0 clsact

for mode in native off; do
	label=$([ "$mode" = native ] && echo xdp || echo tc)
	echo "== $label: sluice --xdp $mode"
	start_agent "$mode" || { log "the agent did not start: $DIR/agent/agent.log"; exit 1; }
	t0=$(metric xdp-tx)
	measure "$label"
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
measure iptables
echo "  forwarded: ${PPS[iptables]} pps"

ratio() { echo "$1 $2" | awk '{ if ($2 > 0) printf "%.2f", $1 / $2; else print "n/a" }'; }
echo "== NodePort, backend on another node (veth; the node on CPU $NODE_CPU, the source on CPU $SRC_CPU)"
printf '%-10s %14s %14s %14s\n' path node-ns/pkt forwarded-pps source-pps
for p in xdp-drop tc-drop xdp tc iptables; do
	printf '%-10s %14s %14s %14s\n' "$p" "${NS[$p]}" "${PPS[$p]:-}" "${SRC[$p]}"
done
echo "node's CPU time per forwarded packet: tc/xdp $(ratio "${NS[tc]}" "${NS[xdp]}"), iptables/xdp $(ratio "${NS[iptables]}" "${NS[xdp]}"), iptables/tc $(ratio "${NS[iptables]}" "${NS[tc]}")"
echo "forwarded per second: xdp/tc $(ratio "${PPS[xdp]}" "${PPS[tc]}"), xdp/iptables $(ratio "${PPS[xdp]}" "${PPS[iptables]}")"
