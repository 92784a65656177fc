#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# sluice benchmark, one run, baseline measured alongside:
#   - same-node pod-to-pod TCP throughput (iperf3, one stream) and UDP
#     request/response latency (sockperf ping-pong) through sluice, next to a
#     plain veth pair between two namespaces with no CNI at all;
#   - CNI ADD and DEL latency (the real sluice-cni binary, as a runtime runs
#     it) over 100 pods, p50 and p99;
#   - the agent's resident memory with 100 pods.
# Rounds alternate baseline and sluice so drift hits both alike.
set -uo pipefail
TEST_NAME=bench
source "$(dirname "$0")/../tests/lib/common.sh"
need_root

ROUNDS=${ROUNDS:-5}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-4}
# TCP congestion control for the throughput runs: the machine's default
# unless TCP_CC names one (cubic, bbr...). It matters: see docs/BENCHMARKS.md.
TCP_CC=${TCP_CC:-}
PODS=${PODS:-100}
ID=slb$$
DIR=$(mktemp -d /tmp/sluice-bench.XXXXXX)
BPFFS=/sys/fs/bpf/$ID
SOCK=$DIR/agent.sock
CLEANUP_PATHS+=("$DIR" "$BPFFS")
CONF=$(printf '{"cniVersion":"1.1.0","name":"sluice","type":"sluice-cni","socket":"%s"}' "$SOCK")

for tool in iperf3 sockperf jq; do
	command -v $tool >/dev/null || { echo "bench: $tool missing: run 'make deps'" >&2; exit 1; }
done

# percentile P of the numbers on stdin (nearest rank)
percentile() { sort -g | awk -v p="$1" '{a[NR]=$1} END {i=int((p/100)*NR + 0.999999); if (i<1) i=1; print a[i]}'; }

# --- the baseline: two namespaces joined by a plain veth pair -------------
netns_add "$ID-va"
netns_add "$ID-vb"
ip link add "$ID-a" netns "$ID-va" type veth peer name "$ID-b" netns "$ID-vb"
ip -n "$ID-va" addr add 10.249.0.1/24 dev "$ID-a"
ip -n "$ID-vb" addr add 10.249.0.2/24 dev "$ID-b"
ip -n "$ID-va" link set "$ID-a" up
ip -n "$ID-vb" link set "$ID-b" up

# --- sluice: a node with an agent and two pods ----------------------------
netns_add "$ID-node"
# Same-node traffic never uses the overlay; native routing keeps the pods at
# the plain veth pair's MTU (overlay would give them 1450) for a fair comparison.
AGENT_ARGS=${AGENT_ARGS:---routing native} start_agent "$ID-node" 10.249.128.0/17 "$DIR" || exit 1
for p in 1 2; do
	netns_add "$ID-p$p"
	out=$(cni ADD "b$ID$p" "/run/netns/$ID-p$p" "$CONF") || { echo "$out" >&2; exit 1; }
	declare "POD$p=$(jq -r '.ips[0].address' <<<"$out" | cut -d/ -f1)"
done

# Pinned placement, the same for the baseline and for sluice: clients on the
# first CPU; servers on the last CPU, and for latency also on the first.
# Unpinned, sockperf's median moved between 6 and 28 us from run to run.
# Client and server on one CPU is the harsher test of per-packet cost (no
# cross-CPU wake-up to hide it in).
SERVER_CPU=$(($(nproc) - 1))
CLIENT_CPU=0
start_servers() { # NS IP
	ip netns exec "$1" taskset -c "$SERVER_CPU" iperf3 -s -B "$2" -D -I "$DIR/iperf-$1.pid" >/dev/null 2>&1
	ip netns exec "$1" taskset -c "$SERVER_CPU" sockperf server -i "$2" -p 11112 >/dev/null 2>&1 &
	CLEANUP_PIDS+=($!)
	ip netns exec "$1" taskset -c "$CLIENT_CPU" sockperf server -i "$2" -p 11111 >/dev/null 2>&1 &
	CLEANUP_PIDS+=($!)
	sleep 0.3
	CLEANUP_PIDS+=("$(cat "$DIR/iperf-$1.pid")")
}
start_servers "$ID-vb" 10.249.0.2
start_servers "$ID-p2" "$POD2"

throughput() { # NS DST -> Gbit/s
	ip netns exec "$1" taskset -c "$CLIENT_CPU" iperf3 -c "$2" -t "$SECONDS_PER_RUN" \
		${TCP_CC:+-C "$TCP_CC"} -J 2>/dev/null |
		jq '.end.sum_received.bits_per_second / 1e9'
}
latency() { # NS DST PORT -> p50 usec (port 11111: server on the client's CPU, 11112: on another)
	ip netns exec "$1" taskset -c "$CLIENT_CPU" sockperf ping-pong -i "$2" -p "$3" -t "$SECONDS_PER_RUN" 2>&1 |
		sed -n 's/.*percentile 50.000 = *\([0-9.]*\).*/\1/p'
}

echo "bench: $ROUNDS rounds of ${SECONDS_PER_RUN}s per measurement" >&2
: >"$DIR/tput.veth"; : >"$DIR/tput.sluice"
: >"$DIR/lat1.veth"; : >"$DIR/lat1.sluice"; : >"$DIR/lat2.veth"; : >"$DIR/lat2.sluice"
for r in $(seq "$ROUNDS"); do
	echo "bench: round $r/$ROUNDS: throughput" >&2
	throughput "$ID-va" 10.249.0.2 >>"$DIR/tput.veth"
	throughput "$ID-p1" "$POD2" >>"$DIR/tput.sluice"
	echo "bench: round $r/$ROUNDS: latency" >&2
	latency "$ID-va" 10.249.0.2 11111 >>"$DIR/lat1.veth"
	latency "$ID-p1" "$POD2" 11111 >>"$DIR/lat1.sluice"
	latency "$ID-va" 10.249.0.2 11112 >>"$DIR/lat2.veth"
	latency "$ID-p1" "$POD2" 11112 >>"$DIR/lat2.sluice"
done
TV=$(median <"$DIR/tput.veth"); TS=$(median <"$DIR/tput.sluice")
L1V=$(median <"$DIR/lat1.veth"); L1S=$(median <"$DIR/lat1.sluice")
L2V=$(median <"$DIR/lat2.veth"); L2S=$(median <"$DIR/lat2.sluice")

# --- CNI ADD / DEL latency over $PODS pods --------------------------------
echo "bench: creating $PODS namespaces" >&2
for i in $(seq "$PODS"); do netns_add "$ID-n$i"; done
echo "bench: $PODS x CNI ADD" >&2
: >"$DIR/add.ms"
for i in $(seq "$PODS"); do
	t0=$EPOCHREALTIME
	cni ADD "n$ID$i" "/run/netns/$ID-n$i" "$CONF" >/dev/null || { echo "bench: ADD $i failed" >&2; exit 1; }
	t1=$EPOCHREALTIME
	echo "($t1 - $t0) * 1000" | bc -l >>"$DIR/add.ms"
	[ $((i % 25)) -eq 0 ] && echo "bench:   $i/$PODS" >&2
done
RSS_KB=$(awk '/VmRSS/ {print $2}' "/proc/$AGENT_PID/status")
echo "bench: $PODS x CNI DEL" >&2
: >"$DIR/del.ms"
for i in $(seq "$PODS"); do
	t0=$EPOCHREALTIME
	cni DEL "n$ID$i" "/run/netns/$ID-n$i" "$CONF" >/dev/null || { echo "bench: DEL $i failed" >&2; exit 1; }
	t1=$EPOCHREALTIME
	echo "($t1 - $t0) * 1000" | bc -l >>"$DIR/del.ms"
done

ratio() { echo "scale=3; $1 / $2" | bc -l | sed 's/^\./0./'; }
printf '\n%-44s %12s %12s %8s %s\n' "measurement" "plain veth" "sluice" "ratio" "target"
printf '%-44s %12.2f %12.2f %8s %s\n' "TCP throughput, 1 stream (Gbit/s)" "$TV" "$TS" "$(ratio "$TS" "$TV")" ">= 0.9"
printf '%-44s %12.2f %12.2f %8s %s\n' "UDP req/resp latency p50, one CPU (us)" "$L1V" "$L1S" "$(ratio "$L1S" "$L1V")" "<= 1.1"
printf '%-44s %12.2f %12.2f %8s %s\n' "UDP req/resp latency p50, two CPUs (us)" "$L2V" "$L2S" "$(ratio "$L2S" "$L2V")" "<= 1.1"
printf '%-44s %12s %12.2f\n' "CNI ADD latency p50 over $PODS pods (ms)" "-" "$(percentile 50 <"$DIR/add.ms")"
printf '%-44s %12s %12.2f %8s %s\n' "CNI ADD latency p99 over $PODS pods (ms)" "-" "$(percentile 99 <"$DIR/add.ms")" "" "< 50"
printf '%-44s %12s %12.2f\n' "CNI DEL latency p50 over $PODS pods (ms)" "-" "$(percentile 50 <"$DIR/del.ms")"
printf '%-44s %12s %12.2f\n' "CNI DEL latency p99 over $PODS pods (ms)" "-" "$(percentile 99 <"$DIR/del.ms")"
printf '%-44s %12s %12.1f\n' "agent resident memory with $PODS pods (MiB)" "-" "$(echo "$RSS_KB / 1024" | bc -l)"
printf '\nmachine: %s, %s cores, %s, kernel %s\n' "$(lscpu | sed -n 's/^Model name: *//p')" "$(nproc)" \
	"$(free -g | awk '/Mem:/ {print $2 " GiB"}')" "$(uname -r)"
printf 'TCP congestion control: %s\n' "${TCP_CC:-$(sysctl -n net.ipv4.tcp_congestion_control) (machine default)}"
printf 'rounds: %s x %ss, medians shown; attach mode: %s\n' "$ROUNDS" "$SECONDS_PER_RUN" \
	"$("$BUILD/sluicectl" --socket "$SOCK" status -o json | jq -r .attachMode)"
for f in tput.veth tput.sluice lat1.veth lat1.sluice lat2.veth lat2.sluice; do
	printf '  raw %-12s %s\n' "$f" "$(paste -sd' ' "$DIR/$f")"
done
