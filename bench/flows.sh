#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Flows and passive RTT (docs/OBSERVABILITY.md), in one run:
#
#  1. Their cost (the budget: same-node request/response latency within
#     1.03x, throughput within 0.97x of sluice with --flows off). One node,
#     two pods; rounds alternate the agent with --flows on and --flows off
#     (the agent restarted in between, the pods kept): TCP throughput
#     (iperf3, one stream), UDP and TCP request/response p50 (sockperf
#     ping-pong), client and server pinned as bench/run.sh does.
#  2. Flow export: new flows at 1 000, 10 000 and 100 000 a second
#     (FLOW_RATES; build/bench-flowgen, one UDP datagram per flow, each a
#     tuple of its own) from one pod to the other for FLOW_SECONDS: flows
#     sent, START records the agent received, the losses it counted by
#     stage, and the agent's CPU. Target: nothing lost at 10 000/s; above
#     that, every loss counted (sent = received + lost).
#
#   bench/flows.sh
#   ROUNDS=3 FLOW_RATES="1000 10000" bench/flows.sh
set -uo pipefail
# shellcheck disable=SC2034 # read by tests/lib/common.sh
TEST_NAME=bench-flows
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../tests/lib/common.sh
source "$HERE/../tests/lib/common.sh"
need_root

ROUNDS=${ROUNDS:-5}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-3}
FLOW_RATES=${FLOW_RATES:-1000 10000 100000}
FLOW_SECONDS=${FLOW_SECONDS:-3}
ID=slfb$$
DIR=$(mktemp -d /tmp/sluice-bench-flows.XXXXXX)
BPFFS=/sys/fs/bpf/$ID
SOCK=$DIR/agent.sock
CLEANUP_PATHS+=("$DIR" "$BPFFS")
CONF=$(printf '{"cniVersion":"1.1.0","name":"sluice","type":"sluice-cni","socket":"%s"}' "$SOCK")
for tool in iperf3 sockperf jq; do
	command -v $tool >/dev/null || { log "$tool missing: run 'make deps'"; exit 1; }
done
for f in "$BUILD/sluice-agent" "$BUILD/sluice-cni" "$BUILD/sluicectl" "$BUILD/bench-flowgen"; do
	[ -x "$f" ] || { log "$f missing: make bench builds it"; exit 1; }
done
ctl() { "$BUILD/sluicectl" --socket "$SOCK" "$@"; }

netns_add "$ID-node"
# --flow-buffer as large as the biggest export run, so that the agent's own
# buffer overwriting records is not what part 2 measures.
run_agent() { # on|off
	AGENT_ARGS="--routing native --flows $1 --flow-buffer 1048576" \
		start_agent "$ID-node" 10.248.128.0/17 "$DIR" || exit 1
}
stop_agent() {
	kill "$AGENT_PID" 2>/dev/null
	wait "$AGENT_PID" 2>/dev/null
}
run_agent on
for p in 1 2; do
	netns_add "$ID-p$p"
	out=$(cni ADD "f$ID$p" "/run/netns/$ID-p$p" "$CONF") || { echo "$out" >&2; exit 1; }
	declare "POD$p=$(jq -r '.ips[0].address' <<<"$out" | cut -d/ -f1)"
done

SERVER_CPU=$(($(nproc) - 1))
CLIENT_CPU=0
ip netns exec "$ID-p2" taskset -c "$SERVER_CPU" iperf3 -s -B "$POD2" -D -I "$DIR/iperf.pid" >/dev/null 2>&1
ip netns exec "$ID-p2" taskset -c "$SERVER_CPU" sockperf server -i "$POD2" -p 11112 >/dev/null 2>&1 &
CLEANUP_PIDS+=($!)
ip netns exec "$ID-p2" taskset -c "$SERVER_CPU" sockperf server --tcp -i "$POD2" -p 11113 >/dev/null 2>&1 &
CLEANUP_PIDS+=($!)
sleep 0.5
CLEANUP_PIDS+=("$(cat "$DIR/iperf.pid")")

throughput() {
	ip netns exec "$ID-p1" taskset -c "$CLIENT_CPU" iperf3 -c "$POD2" -t "$SECONDS_PER_RUN" -J 2>/dev/null |
		jq '.end.sum_received.bits_per_second / 1e9'
}
latency() { # PORT [--tcp] -> p50 usec
	ip netns exec "$ID-p1" taskset -c "$CLIENT_CPU" sockperf ping-pong ${2:-} -i "$POD2" -p "$1" \
		-t "$SECONDS_PER_RUN" 2>&1 | sed -n 's/.*percentile 50.000 = *\([0-9.]*\).*/\1/p'
}

echo "== 1) the cost of flows and RTT: --flows on against --flows off, $ROUNDS rounds" >&2
for m in on off; do : >"$DIR/tput.$m"; : >"$DIR/udp.$m"; : >"$DIR/tcp.$m"; done
for r in $(seq "$ROUNDS"); do
	# Each round starts with the other mode (no mode always first).
	order=(on off)
	[ $((r % 2)) -eq 0 ] && order=(off on)
	for m in "${order[@]}"; do
		stop_agent
		run_agent "$m"
		throughput >>"$DIR/tput.$m"
		latency 11112 >>"$DIR/udp.$m"
		latency 11113 --tcp >>"$DIR/tcp.$m"
	done
	echo "  round $r: on $(tail -1 "$DIR/tput.on") Gbit/s $(tail -1 "$DIR/udp.on")/$(tail -1 "$DIR/tcp.on") us;" \
		"off $(tail -1 "$DIR/tput.off") Gbit/s $(tail -1 "$DIR/udp.off")/$(tail -1 "$DIR/tcp.off") us" >&2
done
ratio() { echo "$1 $2" | awk '{ if ($2 > 0) printf "%.3f", $1 / $2; else print "n/a" }'; }
T_ON=$(median <"$DIR/tput.on"); T_OFF=$(median <"$DIR/tput.off")
U_ON=$(median <"$DIR/udp.on"); U_OFF=$(median <"$DIR/udp.off")
C_ON=$(median <"$DIR/tcp.on"); C_OFF=$(median <"$DIR/tcp.off")

# --- 2) flow export -------------------------------------------------------
stop_agent
run_agent on
# The agent's flow counters: records received, and losses by stage.
counters() {
	ctl status -o json | jq -r '.flows | [.received, .lost.ringBufferFull, .lost.overwritten,
		.lost.rateLimited, .lost.mapFull] | map(. // 0) | @tsv'
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$AGENT_PID/stat"; }
HZ=$(getconf CLK_TCK)
declare -A EXP=()
for rate in $FLOW_RATES; do
	echo "== 2) flow export: $rate new flows/s for ${FLOW_SECONDS}s" >&2
	read -r r0 rb0 ow0 rl0 mf0 < <(counters)
	c0=$(cpu_ticks)
	out=$(ip netns exec "$ID-p1" taskset -c "$CLIENT_CPU" "$BUILD/bench-flowgen" "$POD2" "$rate" "$FLOW_SECONDS")
	sent=$(sed -E 's/^sent ([0-9]+) flows.*/\1/' <<<"$out")
	got=$(sed -E 's/.*: ([0-9]+) flows\/s.*/\1/' <<<"$out")
	# The agent drains what is in flight.
	sleep 1
	read -r r1 rb1 ow1 rl1 mf1 < <(counters)
	c1=$(cpu_ticks)
	cpu=$(echo "$c0 $c1 $HZ $FLOW_SECONDS" | awk '{ printf "%.0f", 100 * ($2 - $1) / $3 / ($4 + 1) }')
	# Records are START records plus the few of other kinds the probes
	# themselves cause; the flows sent are the ones to account for.
	EXP[$rate]="$sent $got $((r1 - r0)) $((rb1 - rb0)) $((ow1 - ow0)) $((rl1 - rl0)) $((mf1 - mf0)) $cpu"
	echo "  $out; agent: $((r1 - r0)) records, lost $((rb1 - rb0)) ring buffer full, $((mf1 - mf0)) flow map full" >&2
done

echo
echo "== flows and RTT on against off (same node, medians of $ROUNDS rounds)"
printf '%-40s %12s %12s %8s %s\n' measurement "flows off" "flows on" ratio target
printf '%-40s %12.2f %12.2f %8s %s\n' "TCP throughput, 1 stream (Gbit/s)" "$T_OFF" "$T_ON" "$(ratio "$T_ON" "$T_OFF")" ">= 0.97"
printf '%-40s %12.2f %12.2f %8s %s\n' "UDP req/resp latency p50 (us)" "$U_OFF" "$U_ON" "$(ratio "$U_ON" "$U_OFF")" "<= 1.03"
printf '%-40s %12.2f %12.2f %8s %s\n' "TCP req/resp latency p50 (us)" "$C_OFF" "$C_ON" "$(ratio "$C_ON" "$C_OFF")" "<= 1.03"
echo
echo "== flow export (new flows/s asked; sent and achieved by the source; records the agent received; losses by stage; agent CPU %)"
printf '%-8s %9s %9s %9s %9s %9s %9s %9s %6s %s\n' rate sent "sent/s" records "rb-full" overwrit "rate-lim" "map-full" "cpu%" accounted
for rate in $FLOW_RATES; do
	read -r sent _ recs rb _ _ _ _ <<<"${EXP[$rate]}"
	# Every flow sent is a record taken or a loss counted (each flow is
	# one datagram: one START record, nothing else).
	acc=$([ $((recs + rb)) -eq "$sent" ] && echo exact || echo "OFF BY $((recs + rb - sent))")
	# shellcheck disable=SC2086 # the fields, split
	printf '%-8s %9s %9s %9s %9s %9s %9s %9s %6s %s\n' "$rate" ${EXP[$rate]} "$acc"
done
for f in tput.on tput.off udp.on udp.off tcp.on tcp.off; do
	printf '  raw %-9s %s\n' "$f" "$(paste -sd' ' "$DIR/$f")"
done
