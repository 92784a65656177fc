#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# What the uplink's XDP program buys (docs/XDP.md), in one run:
#
#  1. Prefilter drop rate: a flood from a denied source, dropped by
#       xdp   sluice's prefilter at XDP (--xdp native),
#       tc    the same deny list in sluice's tc fallback (--xdp off),
#       nft   the same deny list as nftables rules, one per CIDR, in the
#             ip raw table's prerouting chain (no sluice on the node),
#     with DENY_SIZES CIDRs (default 10, 10000 and 100000 /24s; the flood's
#     source is in the last one, the worst case for a rule list). Figure:
#     packets dropped per second at the node.
#  2. The programs' own cost per packet (BPF_PROG_TEST_RUN, repeat, the
#     kernel's average): from_netdev_xdp against from_netdev's tc fallback
#     on the same denied frame and on a frame that passes, per deny-list
#     size: the lookup is flat in the number of CIDRs. (No skb is built in
#     a test run, so this leaves out the cost XDP saves most: see 1.)
#  3. The cost of XDP for the traffic it passes: TCP to the node, --xdp
#     native against --xdp off, alternating, median of the per-round
#     ratios: throughput from a host on the segment (iperf3, one stream)
#     through the plain veth and through a NIC-like way in (frames that
#     reach the node as XDP frames, see the part's comment), and the
#     request/response round trip (sockperf).
#
# The flood comes from bench/xdp_gen.c: the kernel's XDP traffic generator
# (BPF_PROG_TEST_RUN, live frames) on a veth whose peer is the node's
# uplink, 64-byte UDP frames; where the kernel refuses live frames (EPERM
# in some sandboxes), an AF_PACKET socket (sendmmsg, qdisc bypassed), a
# slower source, and its lines say "(packet socket)". The source and the
# node's receive path share a CPU (the peer's receive work runs where the
# frames were sent), so each figure is 1 / (the source's cost + the node's
# cost); the source's own cost is measured against a node that drops at
# once (an XDP program of one instruction) and printed as the ceiling. The
# nftables list is walked rule by rule: its flood shrinks with the list
# (FLOOD / (1 + CIDRs / 100)) so that a run stays short.
#
#   bench/xdp.sh                   everything
#   DENY_SIZES="10 10000" FLOOD=1000000 ROUNDS=3 bench/xdp.sh
set -uo pipefail
# shellcheck disable=SC2034 # read by tests/lib/common.sh
TEST_NAME=bench-xdp
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../tests/lib/common.sh
source "$HERE/../tests/lib/common.sh"
need_root

DENY_SIZES=${DENY_SIZES:-10 10000 100000}
FLOOD=${FLOOD:-500000}
ROUNDS=${ROUNDS:-3}
PARTS=${PARTS:-1 2 3}	# which of the parts below to run
SECONDS_PER_RUN=${SECONDS_PER_RUN:-3}
ID=slbx$$
DIR=$(mktemp -d /tmp/sluice-bench-xdp.XXXXXX)
CLEANUP_PATHS+=("$DIR")
GEN=$BUILD/sluice-xdpgen
BPFFS=/sys/fs/bpf/$ID
for tool in iperf3 jq bpftool nft ethtool; do
	command -v $tool >/dev/null || { log "$tool missing: run 'make deps'"; exit 1; }
done
[ -x "$GEN" ] || { log "$GEN missing: make $GEN"; exit 1; }

DUT_IP=10.200.0.11
SRC_IP=10.200.0.50

# The node (dut) and the segment's other end (gen), one veth pair.
netns_add "$ID-dut"
netns_add "$ID-gen"
ip -n "$ID-dut" link add uplink0 type veth peer name g0 netns "$ID-gen"
ip -n "$ID-dut" addr add "$DUT_IP/24" dev uplink0
ip -n "$ID-gen" addr add "$SRC_IP/24" dev g0
ip -n "$ID-dut" link set uplink0 up
ip -n "$ID-gen" link set g0 up
# GRO on both ends, as NICs have it; it also gives each veth the NAPI
# context XDP frames from its peer need.
ip netns exec "$ID-dut" ethtool -K uplink0 gro on >/dev/null
ip netns exec "$ID-gen" ethtool -K g0 gro on >/dev/null
DUT_MAC=$(ip -n "$ID-dut" -j link show uplink0 | jq -r '.[0].address')
CLEANUP_PATHS+=("$BPFFS")
# A second way in for part 3, as a NIC delivers: what gen sends from
# NIC_IP on s0 reaches g1, whose XDP program redirects it out of g0, so it
# arrives at the node as XDP frames (no skb made by the sender to convert
# or copy); the node's answers come back to g0 (ARP for NIC_IP too).
NIC_IP=10.200.0.60
ip -n "$ID-gen" link add s0 type veth peer name g1
ip -n "$ID-gen" addr add "$NIC_IP/32" dev s0
ip -n "$ID-gen" link set s0 up
ip -n "$ID-gen" link set g1 up
ip netns exec "$ID-gen" ethtool -K g1 gro on >/dev/null
ip netns exec "$ID-gen" "$GEN" --attach-redirect g1 g0 || exit 1
# Checksums computed by the sender: a redirected frame carries no
# checksum-offload state for the node to finish.
ip netns exec "$ID-gen" ethtool -K s0 tx off >/dev/null
ip -n "$ID-gen" neigh replace "$DUT_IP" lladdr "$DUT_MAC" dev s0 nud permanent
ip netns exec "$ID-gen" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.g0.rp_filter=0

AGENT=
start_agent_xdp() { # MODE
	mkdir -p "$DIR/agent"
	nsenter --net="/run/netns/$ID-dut" "$BUILD/sluice-agent" --node-name dut \
		--pod-cidr 10.210.1.0/24 --device uplink0 --routing native --xdp "$1" \
		--kubernetes off --socket "$DIR/agent/agent.sock" --state-dir "$DIR/agent/state" \
		--bpffs "$BPFFS" >>"$DIR/agent/agent.log" 2>&1 &
	AGENT=$!
	CLEANUP_PIDS+=("$AGENT")
	wait_for_socket "$DIR/agent/agent.sock"
}
stop_agent() {
	[ -n "$AGENT" ] || return 0
	kill "$AGENT" 2>/dev/null
	wait "$AGENT" 2>/dev/null
	AGENT=
	rm -f "$DIR/agent/agent.sock"
}
# No sluice left on the node: its pins (the XDP link's goes with them) and
# its tc filters, which outlive the agent.
remove_sluice() {
	rm -rf "$BPFFS" "$DIR/agent"
	tc -n "$ID-dut" qdisc del dev uplink0 clsact 2>/dev/null
	ip -n "$ID-dut" link set dev uplink0 xdpdrv off 2>/dev/null
}
counter() { # REASON: ingress packets the agent counted
	"$BUILD/sluicectl" --socket "$DIR/agent/agent.sock" metrics -o json |
		jq -r --arg r "$1" '[.metrics[] | select(.reason == $r and .direction == "ingress") | .packets] | add // 0'
}

# The i-th /24 of the deny list: 11.0.0.0/24, 11.0.1.0/24, ... 12.x.y.0/24.
cidr() { printf '%d.%d.%d.0' $((11 + $1 / 65536)) $(($1 / 256 % 256)) $(($1 % 256)); }

# N /24 entries in sluice's trie (rule 0, any port), through one bpftool.
fill_prefilter() {
	python3 - "$1" "$BPFFS" >"$DIR/batch" <<'PY'
import sys
n, pins = int(sys.argv[1]), sys.argv[2]
for i in range(n):
    a = (11 + i // 65536, i // 256 % 256, i % 256, 0)
    print(f"map update pinned {pins}/sluice_pf4_v1 key hex 18 00 00 00 "
          + " ".join(f"{b:02x}" for b in a) + " value hex 01" + " 00" * 15)
print(f"map update pinned {pins}/sluice_pfcfg_v1 key hex 00 00 00 00 value hex 01"
      + " 00" * 7 + " 01" + " 00" * 7)
PY
	bpftool batch file "$DIR/batch" >/dev/null
}

flood() { # SRC [COUNT]: the generator's output line
	ip netns exec "$ID-gen" "$GEN" g0 "$DUT_MAC" "$1" "$DUT_IP" 9 "${2:-$FLOOD}"
}

# pps at the node: DELTA packets it dropped over the generator's time.
rate() { # DROPPED "sent N in S s: ..."
	local s
	s=$(sed -E 's/.* in ([0-9.]+) s.*/\1/' <<<"$2")
	echo "$1 $s" | awk '{ printf "%.0f", $1 / $2 }'
}

want() { [[ " $PARTS " == *" $1 "* ]]; }
LIVE=1
if ! want 1; then
	LIVE=0
elif ! ip netns exec "$ID-gen" "$GEN" g0 "$DUT_MAC" "$SRC_IP" "$DUT_IP" 9 1 >/dev/null 2>"$DIR/gen.err"; then
	LIVE=0
	echo "== 1) skipped: the kernel refuses the live-frames generator here: $(cat "$DIR/gen.err")"
fi
if [ "$LIVE" = 1 ]; then
	echo "== the source's ceiling: a node that drops every frame in one instruction"
	ip netns exec "$ID-dut" "$GEN" --attach-drop uplink0 || exit 1
	out=$(flood "$(cidr 0 | sed 's/0$/9/')")
	ip -n "$ID-dut" link set dev uplink0 xdpdrv off
	echo "  $out"
	CEILING=$(sed -E 's/.*: ([0-9]+) pps/\1/' <<<"$out")

	declare -A RATE=()
	for n in $DENY_SIZES; do
		src=$(cidr $((n - 1)) | sed 's/0$/9/')
		echo "== $n CIDRs, flood from $src"
		for mode in native off; do
			start_agent_xdp "$mode" || exit 1
			fill_prefilter "$n"
			d0=$(counter drop-prefilter)
			out=$(flood "$src")
			d1=$(counter drop-prefilter)
			RATE[$n-$mode]=$(rate $((d1 - d0)) "$out")
			label=$([ "$mode" = native ] && echo xdp || echo tc)
			echo "  $label: $((d1 - d0)) of $FLOOD dropped, ${RATE[$n-$mode]} pps ($out)"
			stop_agent
			remove_sluice
		done
		python3 - "$n" >"$DIR/rules.nft" <<'PY'
import sys
n = int(sys.argv[1])
print("table ip sluicebench {")
print("  chain pre { type filter hook prerouting priority raw; policy accept;")
for i in range(n):
    print(f"    ip saddr {11 + i // 65536}.{i // 256 % 256}.{i % 256}.0/24 counter drop")
print("  }")
print("}")
PY
		ip netns exec "$ID-dut" nft -f "$DIR/rules.nft"
		c0=$(ip netns exec "$ID-dut" nft -j list chain ip sluicebench pre |
			jq '[.nftables[] | .rule? | select(.) | .expr[] | .counter? | select(.) | .packets] | add')
		out=$(flood "$src" $((FLOOD / (1 + n / 100))))
		c1=$(ip netns exec "$ID-dut" nft -j list chain ip sluicebench pre |
			jq '[.nftables[] | .rule? | select(.) | .expr[] | .counter? | select(.) | .packets] | add')
		RATE[$n-nft]=$(rate $((c1 - c0)) "$out")
		echo "  nft: $((c1 - c0)) of $((FLOOD / (1 + n / 100))) dropped, ${RATE[$n-nft]} pps ($out)"
		ip netns exec "$ID-dut" nft delete table ip sluicebench
	done

	echo "== prefilter drop rate (packets/s dropped at the node)"
	echo "(the source alone, against a one-instruction XDP drop: $CEILING pps)"
	printf '%-8s %12s %12s %12s %10s %10s\n' CIDRs xdp tc nft xdp/nft xdp/tc
	for n in $DENY_SIZES; do
		printf '%-8s %12s %12s %12s %10s %10s\n' "$n" "${RATE[$n-native]}" "${RATE[$n-off]}" "${RATE[$n-nft]}" \
			"$(echo "${RATE[$n-native]} ${RATE[$n-nft]}" | awk '{ printf "%.2f", $1 / $2 }')" \
			"$(echo "${RATE[$n-native]} ${RATE[$n-off]}" | awk '{ printf "%.2f", $1 / $2 }')"
	done
fi

# A 60-byte UDP frame from SRC to the node (bpftool prog run's data_in).
frame_file() { # SRC FILE
	python3 - "$1" "$DUT_IP" "$2" <<'PY'
import socket, struct, sys
src, dst, out = sys.argv[1:4]
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 46, 0, 0, 64, 17, 0, socket.inet_aton(src), socket.inet_aton(dst))
s = sum(struct.unpack("!10H", ip)); s = (s & 0xffff) + (s >> 16); s = (s & 0xffff) + (s >> 16)
ip = ip[:10] + struct.pack("!H", ~s & 0xffff) + ip[12:]
udp = struct.pack("!HHHH", 40000, 9, 26, 0) + bytes(18)
open(out, "wb").write(bytes.fromhex("020000000001020000000002") + b"\x08\x00" + ip + udp)
PY
}
prog_ns() { # PROG-ID FRAME VERDICT: the kernel's average run time (ns) of a run
	# that returned VERDICT (XDP_DROP 1, XDP_PASS 2, TC_ACT_SHOT 2, TC_ACT_OK 0), else "?"
	bpftool prog run id "$1" data_in "$2" repeat "${REPEAT:-1000000}" |
		sed -nE "s/Return value: $3, duration \(average\): ([0-9]+)ns.*/\1/p" | grep . || echo "?"
}
want 2 && echo "== 2) the programs' own cost per packet (ns, BPF_PROG_TEST_RUN)"
want 2 && printf '%-8s %10s %10s %10s %10s\n' CIDRs xdp-drop tc-drop xdp-pass tc-pass
for n in $DENY_SIZES; do
	want 2 || break
	src=$(cidr $((n - 1)) | sed 's/0$/9/')
	frame_file "$src" "$DIR/deny.bin"
	frame_file "$SRC_IP" "$DIR/pass.bin"
	start_agent_xdp native || exit 1
	fill_prefilter "$n"
	xdp_id=$(ip -n "$ID-dut" -j -d link show uplink0 | jq -r '.[0].xdp.prog.id')
	xd=$(prog_ns "$xdp_id" "$DIR/deny.bin" 1)
	xp=$(prog_ns "$xdp_id" "$DIR/pass.bin" 2)
	stop_agent
	start_agent_xdp off || exit 1
	# (the agent's start made the lists its own again: empty)
	fill_prefilter "$n"
	tc_id=$(nsenter --net="/run/netns/$ID-dut" bpftool net show dev uplink0 -j |
		jq -r '.[0].tc[] | select(.kind == "clsact/ingress") | .id')
	td=$(prog_ns "$tc_id" "$DIR/deny.bin" 2)
	tp=$(prog_ns "$tc_id" "$DIR/pass.bin" 0)
	stop_agent
	remove_sluice
	printf '%-8s %10s %10s %10s %10s\n' "$n" "$xd" "$td" "$xp" "$tp"
done

want 3 || exit 0
echo "== 3) the cost of XDP for passed traffic: TCP to the node, --xdp native / --xdp off"
# Three figures a round, each native against off:
#   veth     TCP throughput from g0 as the veth pair gives it. An XDP
#            program on a veth takes the segmentation offloads from its
#            peer (veth_xdp_set) and copies every skb it is handed into a
#            fresh page (veth_convert_skb_to_xdp_buff): with XDP the sender
#            cuts 1500-byte frames and each is copied, without it 64 KiB
#            super-frames cross uncopied. A cost of the veth rig, not of XDP.
#   nic      the same from s0 (NIC_IP): frames reach the node as XDP
#            frames, as from a NIC's receive ring, in both runs; without an
#            XDP program veth builds the skb, with one the program runs
#            first and then veth builds it. What the program itself costs
#            the traffic it passes on.
#   latency  TCP request/response, median round trip (sockperf), from s0.
serve_iperf() {
	# (one client, then it exits; tracked, so that a run that fails
	# before its client connects leaves no server behind)
	ip netns exec "$ID-dut" iperf3 -s -1 -D -B "$DUT_IP" -I "$DIR/iperf.pid" >/dev/null 2>&1
	sleep 0.3
	CLEANUP_PIDS+=("$(cat "$DIR/iperf.pid" 2>/dev/null)")
}
tput() { # Gbit/s of one iperf3 run from gen to the node
	serve_iperf
	timeout $((SECONDS_PER_RUN + 10)) ip netns exec "$ID-gen" iperf3 -c "$DUT_IP" -t "$SECONDS_PER_RUN" -J 2>/dev/null |
		jq '.end.sum_received.bits_per_second / 1e9'
}
rtt() { # median TCP request/response time to the node, microseconds
	ip netns exec "$ID-dut" sockperf server --tcp -i "$DUT_IP" -p 11111 >/dev/null 2>&1 &
	local srv=$!
	sleep 0.3
	timeout $((SECONDS_PER_RUN + 10)) ip netns exec "$ID-gen" sockperf ping-pong --tcp -i "$DUT_IP" -p 11111 -t "$SECONDS_PER_RUN" 2>&1 |
		sed -n 's/.*percentile 50.000 = *\([0-9.]*\).*/\1/p'
	kill "$srv" 2>/dev/null
	wait "$srv" 2>/dev/null
}
nic() { # on|off: gen reaches the node through s0 (XDP frames) or g0 (skbs)
	if [ "$1" = on ]; then
		ip -n "$ID-gen" route replace "$DUT_IP/32" dev s0 src "$NIC_IP"
	else
		ip -n "$ID-gen" route del "$DUT_IP/32" dev s0 2>/dev/null
	fi
}
div() { echo "$1 $2" | awk '{ if ($2 > 0) printf "%.3f", $1 / $2; else print "n/a" }'; }
declare -a RV=() RW=() RL=() RH=() RP=()
for r in $(seq "$ROUNDS"); do
	declare -A V=() W=() L=()
	for mode in native off hook; do
		start_agent_xdp "${mode/hook/off}" || exit 1
		# hook: --xdp off plus a one-instruction XDP_PASS program, the
		# cost of there being any XDP program on the veth at all.
		[ "$mode" = hook ] && ip -n "$ID-dut" link set dev uplink0 xdpdrv obj "$BUILD/xdp_pass.bpf.o" sec xdp
		nic off
		V[$mode]=$(tput)
		nic on
		W[$mode]=$(tput)
		L[$mode]=$(rtt)
		nic off
		[ "$mode" = hook ] && ip -n "$ID-dut" link set dev uplink0 xdpdrv off
		stop_agent
	done
	RV+=("$(div "${V[native]}" "${V[off]}")")
	RW+=("$(div "${W[native]}" "${W[off]}")")
	# Latency as a speed (off / native): above 1 is XDP faster.
	RL+=("$(div "${L[off]}" "${L[native]}")")
	RH+=("$(div "${W[hook]}" "${W[off]}")")
	RP+=("$(div "${W[native]}" "${W[hook]}")")
	echo "  round $r: veth ${V[native]} / ${V[off]} Gbit/s; nic ${W[native]} / ${W[off]} / ${W[hook]} Gbit/s; latency ${L[native]} / ${L[off]} / ${L[hook]} us (native / off / off + XDP_PASS)"
done
med() { printf '%s\n' "$@" | median; }
echo "  median ratios, native against off: veth throughput $(med "${RV[@]}"), nic throughput $(med "${RW[@]}"), latency (off/native) $(med "${RL[@]}")"
echo "  nic throughput, split: any XDP program (off + XDP_PASS / off) $(med "${RH[@]}"), sluice's program (native / off + XDP_PASS) $(med "${RP[@]}")"
