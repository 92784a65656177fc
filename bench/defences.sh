#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# What the security defences cost (docs/SECURITY.md): the datapath as it is
# now against the same datapath at BASE_REV, the last commit before the
# defences, built from this repository's history into a scratch directory
# and measured in the same run on identical setups:
#   - same node: pod to pod on one node (native routing, as bench/run.sh);
#   - cross-node, overlay and native: pod to pod between two nodes
#     (tests/multinode's topology, as bench/multinode.sh);
# each with TCP throughput, one stream (iperf3, cubic) and UDP
# request/response latency p50 with client and server on one CPU
# (sockperf). Every round measures every pair, base and current in
# alternating order; the result is the median of the per-round ratios
# (current / base), so that drift cancels. Target: throughput >= 0.98,
# latency <= 1.02 (the defences cost no more than 2 %).
set -uo pipefail
TEST_NAME=bench-defences
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../tests/lib/common.sh
source "$HERE/../tests/lib/common.sh"
# shellcheck source=../tests/multinode/lib.sh
source "$HERE/../tests/multinode/lib.sh"
need_root

# b3a3ee3: main just before the work on issue 10 (policy against a hostile
# pod and network) began.
BASE_REV=${BASE_REV:-b3a3ee3}
ROUNDS=${ROUNDS:-7}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-3}
TCP_CC=${TCP_CC:-cubic}
ID=slbd$$
MN_DIR=$(mktemp -d /tmp/sluice-bench-defences.XXXXXX)
CLEANUP_PATHS+=("$MN_DIR")
NEW_BUILD=$BUILD

for tool in iperf3 sockperf jq bc git; do
	command -v $tool >/dev/null || { echo "$TEST_NAME: $tool missing: run 'make deps'" >&2; exit 1; }
done
if ! git -C "$ROOT" cat-file -e "$BASE_REV^{commit}" 2>/dev/null; then
	echo "$TEST_NAME: $BASE_REV is not in this repository's history (a shallow clone?); set BASE_REV" >&2
	exit 1
fi

echo "$TEST_NAME: building the datapath at $BASE_REV" >&2
mkdir -p "$MN_DIR/base"
git -C "$ROOT" archive "$BASE_REV" | tar -x -C "$MN_DIR/base" || exit 1
make -s -C "$MN_DIR/base" -j"$(nproc)" build/sluice-agent build/sluice-cni build/sluicectl \
	>"$MN_DIR/base-build.log" 2>&1 || { cat "$MN_DIR/base-build.log" >&2; exit 1; }
declare -A BUILD_OF=([base]=$MN_DIR/base/build [new]=$NEW_BUILD)

declare -A CLIENT_NS=() SERVER_NS=() SERVER_IP=()
read -r -a PAIRS <<<"${PAIRS:-same overlay native}" # PAIRS="native": only those

# same node: one node (native routing keeps the pods at MTU 1500), two pods
for v in base new; do
	BUILD=${BUILD_OF[$v]}
	p=$ID-s$v
	echo "$TEST_NAME: same node, $v" >&2
	mn_topology "$p" 1 || exit 1
	mn_start_agent "$p" 1 native || exit 1
	mn_node_json 1 | mn_list | mn_apply_all "$p" 1 || exit 1
	for n in 1 2; do
		netns_add "$p-pod$n"
		out=$(mn_pod_add "$p" 1 "pod$n" bench) || { echo "$out" >&2; exit 1; }
		ip=$(jq -r '.ips[0].address' <<<"$out" | cut -d/ -f1)
	done
	CLIENT_NS[same.$v]=$p-pod1
	SERVER_NS[same.$v]=$p-pod2
	SERVER_IP[same.$v]=$ip
done

# cross-node: two nodes, a pod on each
for mode in overlay native; do
	for v in base new; do
		BUILD=${BUILD_OF[$v]}
		p=$ID-${mode:0:1}$v
		echo "$TEST_NAME: $mode, $v" >&2
		mn_topology "$p" 2 || exit 1
		for n in 1 2; do mn_start_agent "$p" "$n" "$mode" || exit 1; done
		for n in 1 2; do mn_node_json "$n"; done | mn_list | mn_apply_all "$p" 2 || exit 1
		declare -A pod_ip=()
		for n in 1 2; do
			netns_add "$p-pod$n"
			out=$(mn_pod_add "$p" "$n" "pod$n" bench) || { echo "$out" >&2; exit 1; }
			pod_ip[$n]=$(jq -r '.ips[0].address' <<<"$out" | cut -d/ -f1)
		done
		for n in 1 2; do mn_pod_json bench "pod$n" "$n" "${pod_ip[$n]}" bench; done |
			mn_list | mn_apply_all "$p" 2 || exit 1
		CLIENT_NS[$mode.$v]=$p-pod1
		SERVER_NS[$mode.$v]=$p-pod2
		SERVER_IP[$mode.$v]=${pod_ip[2]}
		unset pod_ip
	done
done
BUILD=$NEW_BUILD

# Pinned as in bench/run.sh: clients on the first CPU, the throughput server
# on the last, the latency server on the client's CPU.
SERVER_CPU=$(($(nproc) - 1))
CLIENT_CPU=0
for s in "${!SERVER_NS[@]}"; do
	ns=${SERVER_NS[$s]} ip=${SERVER_IP[$s]}
	ip netns exec "$ns" taskset -c "$SERVER_CPU" iperf3 -s -B "$ip" -D -I "$MN_DIR/iperf-$s.pid" >/dev/null 2>&1
	ip netns exec "$ns" taskset -c "$CLIENT_CPU" sockperf server -i "$ip" -p 11111 >/dev/null 2>&1 &
	CLEANUP_PIDS+=($!)
done
sleep 0.5
for s in "${!SERVER_NS[@]}"; do
	CLEANUP_PIDS+=("$(cat "$MN_DIR/iperf-$s.pid")")
	if ! timeout 10 ip netns exec "${CLIENT_NS[$s]}" iperf3 -c "${SERVER_IP[$s]}" -t 1 >/dev/null 2>&1; then
		echo "$TEST_NAME: $s: ${CLIENT_NS[$s]} cannot reach ${SERVER_IP[$s]}" >&2
		exit 1
	fi
done

throughput() { # SETUP -> Gbit/s
	ip netns exec "${CLIENT_NS[$1]}" taskset -c "$CLIENT_CPU" \
		iperf3 -c "${SERVER_IP[$1]}" -t "$SECONDS_PER_RUN" -C "$TCP_CC" -J 2>/dev/null |
		jq '.end.sum_received.bits_per_second / 1e9'
}
latency() { # SETUP -> p50 usec, one CPU
	ip netns exec "${CLIENT_NS[$1]}" taskset -c "$CLIENT_CPU" \
		sockperf ping-pong -i "${SERVER_IP[$1]}" -p 11111 -t "$SECONDS_PER_RUN" 2>&1 |
		sed -n 's/.*percentile 50.000 = *\([0-9.]*\).*/\1/p'
}
ratio() { echo "scale=4; $1 / $2" | bc -l | sed 's/^\./0./'; }

echo "$TEST_NAME: $ROUNDS rounds of ${SECONDS_PER_RUN}s per measurement" >&2
for r in $(seq "$ROUNDS"); do
	# Odd rounds measure base first, even rounds the current build first.
	order=(base new)
	[ $((r % 2)) -eq 0 ] && order=(new base)
	echo "$TEST_NAME: round $r/$ROUNDS" >&2
	for pair in "${PAIRS[@]}"; do
		for v in "${order[@]}"; do
			throughput "$pair.$v" >"$MN_DIR/t.$pair.$v.last"
			cat "$MN_DIR/t.$pair.$v.last" >>"$MN_DIR/tput.$pair.$v"
		done
		ratio "$(cat "$MN_DIR/t.$pair.new.last")" "$(cat "$MN_DIR/t.$pair.base.last")" >>"$MN_DIR/tput.$pair.ratio"
		for v in "${order[@]}"; do
			latency "$pair.$v" >"$MN_DIR/l.$pair.$v.last"
			cat "$MN_DIR/l.$pair.$v.last" >>"$MN_DIR/lat.$pair.$v"
		done
		ratio "$(cat "$MN_DIR/l.$pair.new.last")" "$(cat "$MN_DIR/l.$pair.base.last")" >>"$MN_DIR/lat.$pair.ratio"
	done
done

printf '\n%-40s %10s %10s %8s %s\n' "measurement (median)" "base" "current" "ratio" "target"
for pair in "${PAIRS[@]}"; do
	printf '%-40s %10.2f %10.2f %8.3f %s\n' "$pair: TCP throughput, 1 stream (Gbit/s)" \
		"$(median <"$MN_DIR/tput.$pair.base")" "$(median <"$MN_DIR/tput.$pair.new")" \
		"$(median <"$MN_DIR/tput.$pair.ratio")" ">= 0.98"
	printf '%-40s %10.2f %10.2f %8.3f %s\n' "$pair: UDP req/resp p50, one CPU (us)" \
		"$(median <"$MN_DIR/lat.$pair.base")" "$(median <"$MN_DIR/lat.$pair.new")" \
		"$(median <"$MN_DIR/lat.$pair.ratio")" "<= 1.02"
done
printf '\nbase: %s; current: %s; ratios: median of per-round current/base\n' "$BASE_REV" \
	"$(git -C "$ROOT" rev-parse --short HEAD)"
printf 'TCP congestion control: %s; rounds: %s x %ss\n' "$TCP_CC" "$ROUNDS" "$SECONDS_PER_RUN"
for f in "$MN_DIR"/tput.* "$MN_DIR"/lat.*; do
	printf '  raw %-22s %s\n' "$(basename "$f")" "$(paste -sd' ' "$f")"
done
