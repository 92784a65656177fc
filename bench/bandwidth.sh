#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Pod bandwidth limits (runtimeConfig.bandwidth, docs/CNI.md), one run, the
# reference measured alongside:
#   a) achieved rate against the configured one at 10, 100 and 1000 Mbit/s,
#      egress (the pod sends) and ingress (the pod receives), iperf3 TCP,
#      one stream, the first second left out (-O 1: the full bucket's burst),
#      for
#        - sluice's own limiter (a pod on a node in --attach-mode tcx, the
#          limit given at ADD, traffic to another pod on the node);
#        - the reference `bandwidth` plugin (containernetworking-plugins,
#          TBF + IFB) chained after sluice-cni on the same node, as a
#          runtime chains it: sluice hands most traffic past the qdiscs that
#          plugin installs (bpf_redirect_peer), so the share of the bytes its
#          TBF saw is printed next to the rate;
#        - the same tc commands that plugin issues on a plain veth pair
#          between two namespaces (no sluice): the reference TBF + IFB
#          doing its job, the baseline for the native limiter.
#   b) request/response latency (bench/reqresp.py, TCP, a 64-byte request
#      every 10 ms, p50/p99) while a bulk TCP flow saturates the limited
#      direction at LAT_RATE, native token bucket (drops, no queue) against
#      the reference's TBF (queues up to its 25 ms latency), with the idle
#      link's figures next to them;
#   c) the per-packet cost of from_pod and to_pod on an UNLIMITED pod
#      (BPF_PROG_TEST_RUN, build/bench-bwcost) with the limiter compiled in
#      against the same objects built without it (build/nobw, make
#      bench-nobw: -DSLUICE_BENCH_NO_BW), rounds alternating between the
#      two; target <= 1 %.
# Bursts: both limiters get the same burst, the native limiter's bucket
# depth cap (max(250 ms of the rate, 128 KiB), lib/bwconf.h), so both hold
# the same bytes at the start.
set -uo pipefail
TEST_NAME=bench-bandwidth
source "$(dirname "$0")/../tests/lib/common.sh"
need_root

SECONDS_PER_RUN=${SECONDS_PER_RUN:-4}
RATES=${RATES:-10 100 1000}             # Mbit/s
LAT_RATE=${LAT_RATE:-100}               # Mbit/s, for b): one of RATES
COST_ROUNDS=${COST_ROUNDS:-300}
COST_RUNS=${COST_RUNS:-20000}
REF_PLUGIN=${REF_PLUGIN:-/usr/lib/cni/bandwidth}
ID=slbw$$
DIR=$(mktemp -d /tmp/sluice-bench-bw.XXXXXX)
BPFFS=/sys/fs/bpf/$ID
SOCK=$DIR/agent.sock
CLEANUP_PATHS+=("$DIR" "$BPFFS")
CNIVER=1.0.0 # what the reference plugin (1.1.1) speaks
SERVER_CPU=$(($(nproc) - 1))
CLIENT_CPU=0

[[ " $RATES " == *" $LAT_RATE "* ]] || { echo "$TEST_NAME: LAT_RATE ($LAT_RATE) must be one of RATES ($RATES)" >&2; exit 2; }
for tool in iperf3 jq bc tc "$REF_PLUGIN" /usr/bin/python3 "$BUILD/bench-bwcost"; do
	command -v "$tool" >/dev/null || { echo "$TEST_NAME: $tool missing: run 'make deps' and 'make bench'" >&2; exit 1; }
done

mbit() { echo "$1 * 1000000" | bc; }
# The burst both limiters get, bits: the native bucket's depth cap.
burst_bits() { local b=$(($1 / 32)); [ "$b" -ge 131072 ] || b=131072; echo $((b * 8)); }
ratio() { # A B -> A / B, "-" when either is not a number (a failed run)
	[[ $1 =~ ^[0-9.]+$ && $2 =~ ^[0-9.]+$ ]] || { echo -; return; }
	echo "scale=3; $1 / $2" | bc -l | sed 's/^\./0./'
}
bw_json() { # RATE_BITS -> runtimeConfig.bandwidth, both directions
	local b
	b=$(burst_bits "$1")
	printf '{"ingressRate":%s,"ingressBurst":%s,"egressRate":%s,"egressBurst":%s}' "$1" "$b" "$1" "$b"
}

# --- the reference on a plain veth pair ----------------------------------
# $ID-vp is the "pod", $ID-vh the "host" side with the plugin's qdiscs (on
# the host end of the veth and an IFB) and the servers.
netns_add "$ID-vp"
netns_add "$ID-vh"
ip link add "$ID-p" netns "$ID-vp" type veth peer name "$ID-h" netns "$ID-vh"
ip -n "$ID-vh" link add "$ID-i" type ifb
ip -n "$ID-vp" addr add 10.246.0.1/24 dev "$ID-p"
ip -n "$ID-vh" addr add 10.246.0.2/24 dev "$ID-h"
for l in "$ID-vp:$ID-p" "$ID-vh:$ID-h" "$ID-vh:$ID-i"; do ip -n "${l%%:*}" link set "${l#*:}" up; done
VETH_SERVER=10.246.0.2

# ref_tc NS HOSTDEV IFB RATE_BITS BURST_BITS: what the bandwidth plugin
# (1.1.1, ifb_creator.go) sets up: TBF at the host veth's root for what the
# pod receives; an ingress qdisc whose u32 match-all filter mirreds what the
# pod sends to an IFB with a TBF at its root. Its TBF latency is 25 ms.
ref_tc() {
	local ns=$1 dev=$2 ifb=$3 rate=$4 burst=$(($5 / 8))
	tc -n "$ns" qdisc del dev "$dev" root 2>/dev/null
	tc -n "$ns" qdisc del dev "$dev" ingress 2>/dev/null
	tc -n "$ns" qdisc del dev "$ifb" root 2>/dev/null
	tc -n "$ns" qdisc add dev "$dev" root handle 1: tbf rate "${rate}bit" burst "${burst}b" latency 25ms &&
		tc -n "$ns" qdisc add dev "$dev" handle ffff: ingress &&
		tc -n "$ns" filter add dev "$dev" parent ffff: protocol all u32 match u32 0 0 flowid 1:1 \
			action mirred egress redirect dev "$ifb" &&
		tc -n "$ns" qdisc add dev "$ifb" root handle 1: tbf rate "${rate}bit" burst "${burst}b" latency 25ms
}

# --- sluice: a node in tcx mode, a server pod, a limited pod per rate ------
netns_add "$ID-node"
AGENT_ARGS="--routing native --attach-mode tcx" start_agent "$ID-node" 10.246.128.0/17 "$DIR" || exit 1
CONF=$(printf '{"cniVersion":"%s","name":"sluice","type":"sluice-cni","socket":"%s"}' "$CNIVER" "$SOCK")
pod_add() { cni ADD "$1$ID" "/run/netns/$ID-$1" "$2"; } # NAME CONF -> the ADD result
netns_add "$ID-srv"
out=$(pod_add srv "$CONF") || { echo "$out" >&2; exit 1; }
POD_SERVER=$(jq -r '.ips[0].address' <<<"$out" | cut -d/ -f1)

# The reference plugin chained after sluice-cni: its config as a runtime
# builds it from the conflist (capabilities.bandwidth -> runtimeConfig),
# with sluice-cni's result as prevResult. It runs in the node's namespace,
# where the host veth is.
declare -A REF_HOSTDEV=() REF_IFB=() NATIVE_OK=()
for r in $RATES; do
	netns_add "$ID-r$r"
	out=$(pod_add "r$r" "$CONF") || { echo "$out" >&2; exit 1; }
	conf=$(jq -c --argjson prev "$out" --argjson bw "$(bw_json "$(mbit "$r")")" -n \
		--arg v "$CNIVER" '{cniVersion:$v, name:"sluice", type:"bandwidth",
		capabilities:{bandwidth:true}, runtimeConfig:{bandwidth:$bw}, prevResult:$prev}')
	res=$(CNI_COMMAND=ADD CNI_CONTAINERID="r$r$ID" CNI_NETNS="/run/netns/$ID-r$r" CNI_IFNAME=eth0 \
		CNI_PATH=/usr/lib/cni ip netns exec "$ID-node" "$REF_PLUGIN" <<<"$conf") ||
		{ echo "$TEST_NAME: the reference plugin's ADD failed: $res" >&2; exit 1; }
	REF_HOSTDEV[$r]=$(jq -r '.interfaces[0].name' <<<"$out")
	REF_IFB[$r]=$(jq -r '.interfaces[] | select(.name | startswith("bwp")) | .name' <<<"$res")
done

# Native: the limit in sluice-cni's own runtimeConfig. Measured only when
# the agent took it (the endpoint shows it); otherwise the figures say so.
for r in $RATES; do
	conf=$(jq -c --argjson bw "$(bw_json "$(mbit "$r")")" '. + {capabilities:{bandwidth:true},
		runtimeConfig:{bandwidth:$bw}}' <<<"$CONF")
	netns_add "$ID-n$r"
	out=$(pod_add "n$r" "$conf") || { echo "$TEST_NAME: native pod at $r Mbit/s: $out" >&2; continue; }
	got=$("$BUILD/sluicectl" --socket "$SOCK" get endpoints -o json 2>/dev/null |
		jq -r --arg c "n$r$ID" '.endpoints[] | select(.containerId == $c) | .bandwidth.egressRate // empty')
	[ "$got" = "$(mbit "$r")" ] && NATIVE_OK[$r]=1
done
NATIVE_MISSING="not measured: native limiter missing (sluice-agent did not take runtimeConfig.bandwidth)"

# Servers: iperf3 for the bulk flows, bench/reqresp.py for request/response.
for s in "$ID-vh:$VETH_SERVER" "$ID-srv:$POD_SERVER"; do
	ns=${s%%:*} addr=${s#*:}
	ip netns exec "$ns" taskset -c "$SERVER_CPU" iperf3 -s -B "$addr" -D -I "$DIR/iperf-$ns.pid" >/dev/null 2>&1
	ip netns exec "$ns" /usr/bin/python3 "$(dirname "$0")/reqresp.py" serve "$addr" 7777 >"$DIR/rr-$ns.out" 2>&1 &
	CLEANUP_PIDS+=($!)
	eventually 5 grep -q ready "$DIR/rr-$ns.out" || { cat "$DIR/rr-$ns.out" >&2; exit 1; }
	CLEANUP_PIDS+=("$(cat "$DIR/iperf-$ns.pid")")
done

# iperf3 NS DST DIRECTION [SECONDS] -> JSON (egress: the pod sends; ingress: -R)
iperf() {
	local reverse=()
	[ "$3" = ingress ] && reverse=(-R)
	ip netns exec "$1" taskset -c "$CLIENT_CPU" iperf3 -c "$2" -t "${4:-$SECONDS_PER_RUN}" -O 1 -J \
		"${reverse[@]}" 2>/dev/null
}
# rx_mbit: received Mbit/s from iperf3's JSON; nan when the run failed
rx_mbit() { jq -e '.end.sum_received.bits_per_second / 1e6' 2>/dev/null || echo nan; }
# qdisc_bytes NS DEV: bytes through DEV's root qdisc so far
qdisc_bytes() { tc -n "$1" -s -j qdisc show dev "$2" root | jq '.[0].bytes'; }
# qdisc_stats NS DEV: "packets drops" of DEV's root qdisc so far
qdisc_stats() { tc -n "$1" -s -j qdisc show dev "$2" root | jq -r '.[0] | "\(.packets) \(.drops)"'; }
# pod_bytes NS DIRECTION: bytes the pod's eth0 sent (egress) or received (ingress)
pod_bytes() {
	local f=rx_bytes
	[ "$2" = egress ] && f=tx_bytes
	ip netns exec "$1" cat "/sys/class/net/eth0/statistics/$f"
}

# bw_counters POD DIRECTION: "passedPackets droppedPackets" of its bucket
bw_counters() {
	"$BUILD/sluicectl" --socket "$SOCK" get endpoints -o json |
		jq -r --arg c "$1$ID" --arg d "$2" '.endpoints[] | select(.containerId == $c) |
		.bandwidth[$d] | "\(.passedPackets) \(.droppedPackets)"'
}

# --- a) achieved rates ----------------------------------------------------
echo "$TEST_NAME: a) achieved rate, ${SECONDS_PER_RUN}s (+1 s left out) per run" >&2
declare -A RES=()
for r in $RATES; do
	rate=$(mbit "$r")
	ref_tc "$ID-vh" "$ID-h" "$ID-i" "$rate" "$(burst_bits "$rate")" || { echo "$TEST_NAME: tc failed" >&2; exit 1; }
	for d in egress ingress; do
		echo "$TEST_NAME:   $r Mbit/s $d" >&2
		vdev=$ID-h
		[ "$d" = egress ] && vdev=$ID-i
		v0=$(qdisc_stats "$ID-vh" "$vdev")
		RES[veth.$r.$d]=$(iperf "$ID-vp" "$VETH_SERVER" "$d" | rx_mbit)
		v1=$(qdisc_stats "$ID-vh" "$vdev")
		RES[vdrop.$r.$d]=$(echo "$v0 $v1" | awk '{p = $3 - $1; d = $4 - $2;
			printf "%.2f", (p + d) ? 100 * d / (p + d) : 0}')
		if [ -n "${NATIVE_OK[$r]:-}" ]; then
			c0=$(bw_counters "n$r" "$d")
			RES[native.$r.$d]=$(iperf "$ID-n$r" "$POD_SERVER" "$d" | rx_mbit)
			c1=$(bw_counters "n$r" "$d")
			# dropped packets / packets the bucket saw in that run
			RES[drop.$r.$d]=$(echo "$c0 $c1" | awk '{p = $3 - $1; d = $4 - $2;
				printf "%.2f", (p + d) ? 100 * d / (p + d) : 0}')
		fi
		# chained: the TBF for what the pod sends is on the IFB, for what
		# it receives at the host veth's root
		qdev=${REF_HOSTDEV[$r]}
		[ "$d" = egress ] && qdev=${REF_IFB[$r]}
		q0=$(qdisc_bytes "$ID-node" "$qdev")
		p0=$(pod_bytes "$ID-r$r" "$d")
		RES[chain.$r.$d]=$(iperf "$ID-r$r" "$POD_SERVER" "$d" | rx_mbit)
		q1=$(qdisc_bytes "$ID-node" "$qdev")
		p1=$(pod_bytes "$ID-r$r" "$d")
		RES[seen.$r.$d]=$(echo "scale=1; 100 * ($q1 - $q0) / ($p1 - $p0 + 1)" | bc -l)
	done
done

# --- b) request/response latency under a saturating bulk flow ------------
# rr NS DST [DIRECTION] -> "p50 p99 max answered bulk": ms, and with a
# DIRECTION the Mbit/s of a bulk flow that way, started a second before the
# requests and ending a second after them ("-" without)
rr() {
	local ns=$1 dst=$2 dir=${3:-} bulk='' line
	if [ -n "$dir" ]; then
		iperf "$ns" "$dst" "$dir" $((SECONDS_PER_RUN + 1)) >"$DIR/bulk.json" &
		bulk=$!
		sleep 1
	fi
	line=$(ip netns exec "$ns" /usr/bin/python3 "$(dirname "$0")/reqresp.py" client "$dst" 7777 \
		"$SECONDS_PER_RUN" 10 |
		jq -er '"\(.p50_us / 1000) \(.p99_us / 1000) \(.max_us / 1000) \(.answered)"') ||
		line="nan nan nan failed"
	if [ -n "$bulk" ]; then
		wait "$bulk"
		echo "$line $(rx_mbit <"$DIR/bulk.json")"
	else
		echo "$line -"
	fi
}
echo "$TEST_NAME: b) request/response latency at $LAT_RATE Mbit/s" >&2
rate=$(mbit "$LAT_RATE")
ref_tc "$ID-vh" "$ID-h" "$ID-i" "$rate" "$(burst_bits "$rate")" || exit 1
declare -A LAT=()
LAT[veth.idle]=$(rr "$ID-vp" "$VETH_SERVER")
LAT[veth.egress]=$(rr "$ID-vp" "$VETH_SERVER" egress)
LAT[veth.ingress]=$(rr "$ID-vp" "$VETH_SERVER" ingress)
if [ -n "${NATIVE_OK[$LAT_RATE]:-}" ]; then
	LAT[native.idle]=$(rr "$ID-n$LAT_RATE" "$POD_SERVER")
	LAT[native.egress]=$(rr "$ID-n$LAT_RATE" "$POD_SERVER" egress)
	LAT[native.ingress]=$(rr "$ID-n$LAT_RATE" "$POD_SERVER" ingress)
fi

# --- c) per-packet cost on an unlimited pod ------------------------------
echo "$TEST_NAME: c) per-packet cost, $COST_ROUNDS rounds x $COST_RUNS runs, limiter in / out" >&2
# Three processes measure round by round, in an order that rotates: the
# build with the limiter, the build without it, and the first build again in
# a process of its own (a control: what two identical builds in two
# processes differ by on this machine, the noise floor of the ratio).
COST_OK=
if [ -x "$BUILD/nobw/bench-bwcost" ]; then
	COST_OK=1
	COST_BIN=("$BUILD/bench-bwcost" "$BUILD/nobw/bench-bwcost" "$BUILD/bench-bwcost")
	COST_PID=() WFD=() RFD=() INSNS_F=() INSNS_T=()
	for k in 0 1 2; do
		mkfifo "$DIR/cost$k.in" "$DIR/cost$k.out"
		taskset -c "$CLIENT_CPU" "${COST_BIN[$k]}" "$COST_RUNS" <"$DIR/cost$k.in" >"$DIR/cost$k.out" &
		COST_PID+=($!)
		# taskset execs the program: its pid names its bpffs directory
		CLEANUP_PIDS+=($!)
		CLEANUP_PATHS+=("/sys/fs/bpf/sluice-bwcost-$!")
		exec {w}>"$DIR/cost$k.in" {r}<"$DIR/cost$k.out"
		WFD[k]=$w RFD[k]=$r
		read -r -u "$r" _ "INSNS_F[$k]" "INSNS_T[$k]" || COST_OK=
	done
	: >"$DIR/cost"
	for i in $(seq "$COST_ROUNDS"); do
		declare -A F=() T=()
		for j in 0 1 2; do
			k=$(((i + j) % 3))
			if ! { echo >&"${WFD[$k]}" && read -r -u "${RFD[$k]}" "F[$k]" "T[$k]"; }; then
				COST_OK=
				break 2
			fi
		done
		# from_pod in, out, control; to_pod in, out, control; ratios in/out, control/in
		echo "${F[0]} ${F[1]} ${F[2]} ${T[0]} ${T[1]} ${T[2]}" \
			"$(ratio "${F[0]}" "${F[1]}") $(ratio "${T[0]}" "${T[1]}")" \
			"$(ratio "${F[2]}" "${F[0]}") $(ratio "${T[2]}" "${T[0]}")" >>"$DIR/cost"
	done
	for k in 0 1 2; do
		w=${WFD[$k]} r=${RFD[$k]}
		exec {w}>&- {r}<&-
	done
	wait "${COST_PID[@]}" || COST_OK=
fi

# --- the figures ---------------------------------------------------------
printf '\n== a) achieved rate (Mbit/s) against the configured one, iperf3 TCP, %s s after 1 s left out\n' "$SECONDS_PER_RUN"
printf 'sluice: --attach-mode tcx; reference: %s (%s) chained after sluice-cni, and its tc commands on a plain veth pair\n' \
	"$REF_PLUGIN" "$(dpkg-query -W -f '${Package} ${Version}' containernetworking-plugins 2>/dev/null || echo '?')"
printf '%-7s %-8s | %-28s | %-32s | %-28s\n' "limit" "dir" "sluice native" "bandwidth plugin chained (tcx)" "TBF+IFB, plain veth"
printf '%-7s %-8s | %9s %10s %7s | %9s %10s %11s | %9s %10s %7s\n' "" "" "Mbit/s" "/ limit" "drops" "Mbit/s" "/ limit" "TBF saw" "Mbit/s" "/ limit" "drops"
for r in $RATES; do
	for d in egress ingress; do
		if [ -n "${NATIVE_OK[$r]:-}" ]; then
			nat=$(printf '%9.2f %10s %6s%%' "${RES[native.$r.$d]}" "$(ratio "${RES[native.$r.$d]}" "$r")" \
				"${RES[drop.$r.$d]}")
		else
			nat=$(printf '%28s' "not measured")
		fi
		printf '%-7s %-8s | %s | %9.2f %10s %10s%% | %9.2f %10s %6s%%\n' "$r" "$d" "$nat" \
			"${RES[chain.$r.$d]}" "$(ratio "${RES[chain.$r.$d]}" "$r")" "${RES[seen.$r.$d]}" \
			"${RES[veth.$r.$d]}" "$(ratio "${RES[veth.$r.$d]}" "$r")" "${RES[vdrop.$r.$d]}"
	done
done
for r in $RATES; do [ -n "${NATIVE_OK[$r]:-}" ] || { echo "sluice native at $r Mbit/s: $NATIVE_MISSING"; }; done
echo "drops: packets the native bucket (the TBF) dropped / packets it saw in that run"
echo "TBF saw: bytes through the chained plugin's TBF / bytes the pod's eth0 sent or received in that run"

bulk_fmt() { [[ $1 =~ ^[0-9.]+$ ]] && printf '%.1f' "$1" || echo "$1"; }
printf '\n== b) request/response latency (ms; a 64-byte TCP request every 10 ms, %s s) at %s Mbit/s\n' "$SECONDS_PER_RUN" "$LAT_RATE"
printf '%-34s | %-38s | %-38s\n' "" "sluice native (token bucket)" "TBF+IFB, plain veth"
printf '%-34s | %7s %7s %7s %7s %7s | %7s %7s %7s %7s %7s\n' "" p50 p99 max answered bulk p50 p99 max answered bulk
for k in idle egress ingress; do
	case $k in
	idle) what="idle link" ;;
	egress) what="bulk flow out of the pod (egress)" ;;
	ingress) what="bulk flow into the pod (ingress)" ;;
	esac
	if [ -n "${LAT[native.$k]:-}" ]; then
		read -r n50 n99 nmax nans nbulk <<<"${LAT[native.$k]}"
		nat=$(printf '%7.2f %7.2f %7.2f %7s %7s' "$n50" "$n99" "$nmax" "$nans" "$(bulk_fmt "$nbulk")")
	else
		nat=$(printf '%-38s' "not measured")
	fi
	read -r v50 v99 vmax vans vbulk <<<"${LAT[veth.$k]}"
	printf '%-34s | %s | %7.2f %7.2f %7.2f %7s %7s\n' "$what" "$nat" "$v50" "$v99" "$vmax" "$vans" \
		"$(bulk_fmt "$vbulk")"
done
[ -n "${NATIVE_OK[$LAT_RATE]:-}" ] || echo "sluice native: $NATIVE_MISSING"
echo "answered: requests answered in the time (each waits for the previous answer); bulk: its Mbit/s"

printf '\n== c) per-packet cost on an unlimited pod (BPF_PROG_TEST_RUN; %s rounds of %s runs, medians)\n' \
	"$COST_ROUNDS" "$COST_RUNS"
if [ -n "$COST_OK" ]; then
	col() { cut -d' ' -f"$1" "$DIR/cost" | median; }
	range() { cut -d' ' -f"$1" "$DIR/cost" | sort -g | sed -n '1p;$p' | paste -sd' ' | sed 's/ / to /'; }
	printf '%-36s %10s %10s %7s %7s %12s\n' "program" "limiter in" "compiled" "ratio" "target" "control/in"
	printf '%-36s %10s %10s %7s %7s %12s\n' "" "(ns)" "out (ns)" "in/out" "" "(A/A noise)"
	printf '%-36s %10.2f %10.2f %7.3f %7s %12.3f\n' "from_pod, established TCP, local pod" \
		"$(col 1)" "$(col 2)" "$(col 7)" "<= 1.01" "$(col 9)"
	printf '%-36s %10.2f %10.2f %7.3f %7s %12.3f\n' "to_pod, from the host stack" \
		"$(col 4)" "$(col 5)" "$(col 8)" "<= 1.01" "$(col 10)"
	printf '%-36s %10s %10s\n' "  its size (BPF instructions)" "${INSNS_F[0]} / ${INSNS_T[0]}" \
		"${INSNS_F[1]} / ${INSNS_T[1]}"
	echo "ratios: medians of the per-round ratios; the rounds' ratios ranged"
	echo "  from_pod in/out $(range 7), control/in $(range 9); to_pod in/out $(range 8), control/in $(range 10)"
	# Load on the machine only adds time: the fastest round of each is the
	# other estimate of the programs' own cost.
	low() { cut -d' ' -f"$1" "$DIR/cost" | sort -g | head -1; }
	printf 'fastest rounds: from_pod %s / %s = %s (control %s); to_pod %s / %s = %s (control %s)\n' \
		"$(low 1)" "$(low 2)" "$(ratio "$(low 1)" "$(low 2)")" "$(ratio "$(low 3)" "$(low 1)")" \
		"$(low 4)" "$(low 5)" "$(ratio "$(low 4)" "$(low 5)")" "$(ratio "$(low 6)" "$(low 4)")"
else
	echo "not measured: $BUILD/nobw/bench-bwcost missing or failed (make bench-nobw)"
fi
printf '\nmachine: %s, %s cores, %s, kernel %s, %s\n' "$(lscpu | sed -n 's/^Model name: *//p')" "$(nproc)" \
	"$(free -g | awk '/Mem:/ {print $2 " GiB"}')" "$(uname -r)" "$(date -u +%Y-%m-%d)"
