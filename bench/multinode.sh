#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Cross-node benchmark, one run, baseline measured alongside: pod-to-pod
# between two nodes through sluice with --routing overlay and with --routing
# native, next to the two bare nodes talking over their uplinks with no
# sluice at all (node namespace to node namespace, the same veth-and-bridge
# underlay, MTU 1500):
#   - TCP throughput, one stream (iperf3);
#   - UDP request/response latency, median (sockperf ping-pong), client and
#     server on one CPU and on two.
# For reference, two more pairs of bare nodes: one talking through a plain
# kernel VXLAN device of its own (no sluice, MTU 1450): what encapsulation
# alone costs on this underlay; one whose whole underlay has the overlay
# pods' MTU (1450, no tunnel): what the smaller MTU alone costs, the
# ceiling for any overlay here.
# The setups are four copies of tests/multinode's topology (two nodes
# each), built once; every round measures every setup, each round starting
# one setup later, so that drift and position hit all alike. Targets:
# native >= 0.9x and overlay >= 0.8x the node-to-node throughput.
set -uo pipefail
TEST_NAME=bench-multinode
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../tests/lib/common.sh
source "$HERE/../tests/lib/common.sh"
# shellcheck source=../tests/multinode/lib.sh
source "$HERE/../tests/multinode/lib.sh"
need_root

ROUNDS=${ROUNDS:-5}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-4}
# iperf3's write (and read) size; empty: iperf3's default, 128 KB. Single
# stream throughput here depends on it together with the MSS (see
# docs/BENCHMARKS.md): IPERF_LEN=1M shows the other side.
IPERF_LEN=${IPERF_LEN:-}
# TCP congestion control of the throughput runs the targets are judged on:
# cubic (Linux's default) unless TCP_CC names another. This machine defaults
# to BBR, which without the fq qdisc paces in TCP itself and holds a single
# stream near 20 Gbit/s whatever the path (docs/BENCHMARKS.md); when the
# machine's default differs, it is measured too and shown on its own line.
TCP_CC=${TCP_CC:-cubic}
MACHINE_CC=$(sysctl -n net.ipv4.tcp_congestion_control)
CCS=("$TCP_CC")
[ "$MACHINE_CC" = "$TCP_CC" ] || CCS+=("$MACHINE_CC")
ID=slbm$$
SLUICE_OVERLAY_OVERHEAD=50 # include/sluice/datapath.h
MN_DIR=$(mktemp -d /tmp/sluice-bench-multinode.XXXXXX)
CLEANUP_PATHS+=("$MN_DIR")

for tool in iperf3 sockperf jq bc; do
	command -v $tool >/dev/null || { echo "$TEST_NAME: $tool missing: run 'make deps'" >&2; exit 1; }
done
if ! "$BUILD/sluice-agent" --help 2>&1 | grep -q -- --routing; then
	echo "$TEST_NAME: $BUILD/sluice-agent has no --routing flag (run make)" >&2
	exit 1
fi


# Setups: bare, mtu (bare at the pods' overlay MTU), vxlan, overlay, native.
# CLIENT_NS/SERVER_NS/SERVER_IP per setup.
SETUPS=(bare mtu vxlan overlay native)
declare -A CLIENT_NS=() SERVER_NS=() SERVER_IP=() MTU=()

echo "$TEST_NAME: bare: two nodes, no agent" >&2
mn_topology "$ID-b" 2 || exit 1
CLIENT_NS[bare]=$ID-b-node1
SERVER_NS[bare]=$ID-b-node2
SERVER_IP[bare]=$(mn_node_ip 2)
MTU[bare]=$MN_MTU
for n in 1 2; do
	ip -n "$ID-b-node$n" link add vx0 type vxlan id 1 dstport 8472 dev uplink0 \
		local "$(mn_node_ip "$n")" remote "$(mn_node_ip $((3 - n)))" || exit 1
	ip -n "$ID-b-node$n" addr add "10.202.0.$n/24" dev vx0 || exit 1
	ip -n "$ID-b-node$n" link set vx0 up || exit 1
done
echo "$TEST_NAME: mtu: two nodes, no agent, underlay MTU $((MN_MTU - SLUICE_OVERLAY_OVERHEAD))" >&2
MN_MTU=$((MN_MTU - SLUICE_OVERLAY_OVERHEAD)) mn_topology "$ID-m" 2 || exit 1
CLIENT_NS[mtu]=$ID-m-node1
SERVER_NS[mtu]=$ID-m-node2
SERVER_IP[mtu]=$(mn_node_ip 2)
MTU[mtu]=$(ip -n "$ID-m-node1" -j link show uplink0 | jq '.[0].mtu')
CLIENT_NS[vxlan]=$ID-b-node1
SERVER_NS[vxlan]=$ID-b-node2
SERVER_IP[vxlan]=10.202.0.2
MTU[vxlan]=$(ip -n "$ID-b-node1" -j link show vx0 | jq '.[0].mtu')

for mode in overlay native; do
	echo "$TEST_NAME: $mode: two nodes, agents, a pod on each" >&2
	p=$ID-${mode:0:1}
	mn_topology "$p" 2 || exit 1
	for n in 1 2; do
		mn_start_agent "$p" "$n" "$mode" || exit 1
	done
	for n in 1 2; do mn_node_json "$n"; done | mn_list | mn_apply_all "$p" 2 || exit 1
	declare -A pod_ip=()
	for n in 1 2; do
		netns_add "$p-pod$n"
		out=$(mn_pod_add "$p" "$n" "pod$n" bench) || { echo "$out" >&2; exit 1; }
		pod_ip[$n]=$(jq -r '.ips[0].address' <<<"$out" | cut -d/ -f1)
	done
	for n in 1 2; do
		mn_pod_json bench "pod$n" "$n" "${pod_ip[$n]}" bench
	done | mn_list | mn_apply_all "$p" 2 || exit 1
	CLIENT_NS[$mode]=$p-pod1
	SERVER_NS[$mode]=$p-pod2
	SERVER_IP[$mode]=${pod_ip[2]}
	MTU[$mode]=$(ip -n "$p-pod1" -j link show eth0 | jq '.[0].mtu')
	unset pod_ip
done

# Pinned placement, as in bench/run.sh: clients on the first CPU; servers on
# the last CPU, and for latency also on the first (port 11111: one CPU;
# 11112: two CPUs).
SERVER_CPU=$(($(nproc) - 1))
CLIENT_CPU=0
for s in "${SETUPS[@]}"; do
	ns=${SERVER_NS[$s]} ip=${SERVER_IP[$s]}
	ip netns exec "$ns" taskset -c "$SERVER_CPU" iperf3 -s -B "$ip" -D -I "$MN_DIR/iperf-$s.pid" >/dev/null 2>&1
	ip netns exec "$ns" taskset -c "$SERVER_CPU" sockperf server -i "$ip" -p 11112 >/dev/null 2>&1 &
	CLEANUP_PIDS+=($!)
	ip netns exec "$ns" taskset -c "$CLIENT_CPU" sockperf server -i "$ip" -p 11111 >/dev/null 2>&1 &
	CLEANUP_PIDS+=($!)
done
sleep 0.5
for s in "${SETUPS[@]}"; do
	CLEANUP_PIDS+=("$(cat "$MN_DIR/iperf-$s.pid")")
	# Nothing to measure if the path does not work.
	if ! timeout 10 ip netns exec "${CLIENT_NS[$s]}" iperf3 -c "${SERVER_IP[$s]}" -t 1 >/dev/null 2>&1; then
		echo "$TEST_NAME: $s: ${CLIENT_NS[$s]} cannot reach ${SERVER_IP[$s]}" >&2
		exit 1
	fi
done

throughput() { # SETUP CC -> Gbit/s
	ip netns exec "${CLIENT_NS[$1]}" taskset -c "$CLIENT_CPU" \
		iperf3 -c "${SERVER_IP[$1]}" -t "$SECONDS_PER_RUN" -C "$2" ${IPERF_LEN:+-l "$IPERF_LEN"} -J 2>/dev/null |
		jq '.end.sum_received.bits_per_second / 1e9'
}
latency() { # SETUP PORT -> p50 usec
	ip netns exec "${CLIENT_NS[$1]}" taskset -c "$CLIENT_CPU" \
		sockperf ping-pong -i "${SERVER_IP[$1]}" -p "$2" -t "$SECONDS_PER_RUN" 2>&1 |
		sed -n 's/.*percentile 50.000 = *\([0-9.]*\).*/\1/p'
}

echo "$TEST_NAME: $ROUNDS rounds of ${SECONDS_PER_RUN}s per measurement" >&2
for s in "${SETUPS[@]}"; do
	for cc in "${CCS[@]}"; do : >"$MN_DIR/tput-$cc.$s"; done
	: >"$MN_DIR/lat1.$s"
	: >"$MN_DIR/lat2.$s"
done
for r in $(seq "$ROUNDS"); do
	echo "$TEST_NAME: round $r/$ROUNDS" >&2
	# Each round starts one setup later, so that no setup always runs
	# first or last (a fresh connection's and a warm cache's luck).
	order=("${SETUPS[@]:$(((r - 1) % ${#SETUPS[@]}))}" "${SETUPS[@]:0:$(((r - 1) % ${#SETUPS[@]}))}")
	for cc in "${CCS[@]}"; do
		for s in "${order[@]}"; do throughput "$s" "$cc" >>"$MN_DIR/tput-$cc.$s"; done
	done
	for s in "${order[@]}"; do latency "$s" 11111 >>"$MN_DIR/lat1.$s"; done
	for s in "${order[@]}"; do latency "$s" 11112 >>"$MN_DIR/lat2.$s"; done
done

declare -A T T2 L1 L2
for s in "${SETUPS[@]}"; do
	T[$s]=$(median <"$MN_DIR/tput-$TCP_CC.$s")
	[ ${#CCS[@]} -eq 1 ] || T2[$s]=$(median <"$MN_DIR/tput-$MACHINE_CC.$s")
	L1[$s]=$(median <"$MN_DIR/lat1.$s")
	L2[$s]=$(median <"$MN_DIR/lat2.$s")
done
ratio() { echo "scale=3; $1 / $2" | bc -l | sed 's/^\./0./'; }
# verdict RATIO OP TARGET: "met" or "MISSED"
verdict() { [ "$(echo "$1 $2 $3" | bc -l)" = 1 ] && echo met || echo MISSED; }

printf '\n%-40s %9s %9s %9s %9s %9s %8s %8s %8s %8s\n' "measurement" "node-node" "node@mtu" \
	"vxlan" "overlay" "native" "ovl/node" "nat/node" "ovl/@mtu" "ovl/vxl"
row() { # TITLE NODE-TO-NODE NODE@MTU VXLAN OVERLAY NATIVE
	printf '%-40s %9.2f %9.2f %9.2f %9.2f %9.2f %8s %8s %8s %8s\n' "$1" "$2" "$3" "$4" "$5" "$6" \
		"$(ratio "$5" "$2")" "$(ratio "$6" "$2")" "$(ratio "$5" "$3")" "$(ratio "$5" "$4")"
}
row "TCP throughput, 1 stream, $TCP_CC (Gbit/s)" "${T[bare]}" "${T[mtu]}" "${T[vxlan]}" "${T[overlay]}" \
	"${T[native]}"
[ ${#CCS[@]} -eq 1 ] ||
	row "TCP throughput, 1 stream, $MACHINE_CC (Gbit/s)" "${T2[bare]}" "${T2[mtu]}" "${T2[vxlan]}" \
		"${T2[overlay]}" "${T2[native]}"
row "UDP req/resp latency p50, one CPU (us)" "${L1[bare]}" "${L1[mtu]}" "${L1[vxlan]}" "${L1[overlay]}" \
	"${L1[native]}"
row "UDP req/resp latency p50, two CPUs (us)" "${L2[bare]}" "${L2[mtu]}" "${L2[vxlan]}" "${L2[overlay]}" \
	"${L2[native]}"
# The targets are judged on the median of the rounds' own ratios: each
# round measures every setup within a minute, so drift between rounds
# (this VM's single-stream figures wander by 20 %) cancels out.
paired() { # SETUP BASE -> median over rounds of SETUP/BASE (cubic throughput)
	paste "$MN_DIR/tput-$TCP_CC.$1" "$MN_DIR/tput-$TCP_CC.$2" |
		awk '$2 > 0 {printf "%.4f\n", $1 / $2}' | median | xargs printf '%.3f'
}
ro=$(paired overlay bare)
rn=$(paired native bare)
rm=$(paired mtu bare)
printf '\ntargets (%s, median of the rounds'"'"' ratios): overlay throughput >= 0.8x node-to-node: %s (%s);\n' \
	"$TCP_CC" "$ro" "$(verdict "$ro" '>=' 0.8)"
printf '  native >= 0.9x: %s (%s)\n' "$rn" "$(verdict "$rn" '>=' 0.9)"
printf 'node@mtu: the bare nodes with the overlay pods'"'"' MTU (%s) on the whole underlay, no tunnel: %sx\n' \
	"${MTU[mtu]}" "$rm"
printf '  of node-to-node: no overlay with that MTU can beat it here; overlay/node@mtu: %s\n' \
	"$(paired overlay mtu)"
printf 'vxlan: the bare nodes through a plain kernel VXLAN device, no sluice (reference)\n'
printf 'MTU: node-to-node %s, node@mtu %s, vxlan %s, overlay pods %s, native pods %s\n' "${MTU[bare]}" \
	"${MTU[mtu]}" "${MTU[vxlan]}" "${MTU[overlay]}" "${MTU[native]}"
printf 'machine: %s, %s cores, %s, kernel %s\n' "$(lscpu | sed -n 's/^Model name: *//p')" "$(nproc)" \
	"$(free -g | awk '/Mem:/ {print $2 " GiB"}')" "$(uname -r)"
printf 'rounds: %s x %ss, medians shown; iperf3 writes: %s\n' "$ROUNDS" "$SECONDS_PER_RUN" \
	"${IPERF_LEN:-128K (default)}"
printf 'TCP congestion control: %s (machine default: %s)\n' "${CCS[*]}" "$MACHINE_CC"
for f in "${CCS[@]/#/tput-}" lat1 lat2; do
	for s in "${SETUPS[@]}"; do
		printf '  raw %-18s %s\n' "$f.$s" "$(paste -sd' ' "$MN_DIR/$f.$s")"
	done
done
