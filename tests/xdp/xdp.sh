#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The XDP program on the uplink (bpf/xdp.bpf.c, agent --xdp), end to end on
# the multi-node topology of tests/multinode/lib.sh: two nodes on a bridge,
# one pod on each (the real sluice-cni), and two clients outside the
# cluster on the same bridge (cl1 10.200.0.101, cl2 10.200.0.102). Per
# routing mode:
#
#   a) --xdp native attaches from_netdev_xdp to node 1's veth uplink in
#      driver mode through a pinned bpf_link (ip -d link, bpftool), status
#      says so; cross-node pod traffic still works and node 2's xdp-pass
#      counter proves XDP saw it;
#   b) a prefilter entry written into node 1's pinned maps (bpftool, the
#      layout of include/sluice/datapath.h) cuts cl1 off (a listener on
#      node 1 counts zero of its datagrams, the per-entry counter all of
#      them) while cl2 keeps working; deleting it restores cl1;
#   c) the same with --xdp off: no XDP program, from_netdev drops it at tc,
#      xdp-pass does not move;
#   d) forged frames dropped at XDP: a spoofed source inside node 1's pod
#      CIDR to its pod, and (overlay) VXLAN from an address that is no node;
#   e) the agent restarted under a UDP stream: the same link, a new
#      program in it (bpf_link_update), no datagram lost;
#   f) --xdp native on a device without native XDP (a Linux bridge) fails
#      start-up naming the device, its driver and the fix; --xdp generic
#      attaches in skb mode only when asked for; --xdp best-effort there
#      falls back to tc (removing the generic attachment) and status says
#      why;
#   g) scripts/node-cleanup.sh removes the XDP program and its link pin.
#
#   tests/xdp/xdp.sh             overlay, then native
#   tests/xdp/xdp.sh overlay     one mode (or native)
#
# Only addresses inside the namespaces this test creates; everything is
# removed at exit. The last line is "xdp MODE: N passed, M failed".
# shellcheck source-path=SCRIPTDIR
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TEST_NAME=${XDP_TEST_NAME:-xdp}
# shellcheck source=../lib/common.sh
source "$HERE/../lib/common.sh"
# shellcheck source=../multinode/lib.sh
source "$HERE/../multinode/lib.sh"

mn_mode xdp XDP_TEST_NAME "$0" "$@"

need_root
for bin in sluice-agent sluice-cni sluicectl sluice-probe; do
	[ -x "$BUILD/$bin" ] || { log "$BUILD/$bin missing (run make)"; exit 1; }
done
command -v bpftool >/dev/null || { log "needs bpftool"; exit 1; }
FORGE=$ROOT/tests/tools/forge.py

P=slxd$$
MN_DIR=$(mktemp -d /tmp/sluice-xdp.XXXXXX)
CLEANUP_PATHS+=("$MN_DIR")
NS=edge
BPF1=/sys/fs/bpf/$P-node1
CL1=10.200.0.101
CL2=10.200.0.102
NODE1=$(mn_node_ip 1)
declare -A IP=() AGENT=()

ctl() { mn_ctl "$P" "$@"; }
fails() { ! "$@"; }
metric() { # N REASON: ingress packets node N counted (0 when absent)
	ctl "$1" metrics -o json | jq -r --arg r "$2" \
		'[.metrics[] | select(.reason == $r and .direction == "ingress") | .packets] | add // 0'
}
grew_by() { # N REASON BEFORE DELTA: the counter is now BEFORE + DELTA (or more with ge)
	local now
	now=$(metric "$1" "$2")
	[ "$now" -eq $(($3 + $4)) ] || { echo "$2 on node$1: $now, expected $(($3 + $4))"; return 1; }
}
grew_at_least() { # N REASON BEFORE DELTA
	local now
	now=$(metric "$1" "$2")
	[ "$now" -ge $(($3 + $4)) ] || { echo "$2 on node$1: $now, expected >= $(($3 + $4))"; return 1; }
}

# XDP state of node N's uplink0: "MODE NAME ID" (mode 1 native, 2 generic), or "none".
xdp_of() {
	ip -n "$P-node$1" -j -d link show uplink0 |
		jq -r '.[0].xdp // empty | "\(.mode) \(.prog.name) \(.prog.id)"' | grep . || echo none
}
link_id() { bpftool link show pinned "$BPF1/links/uplink0_xdp" -j 2>/dev/null | jq -r '.id // empty'; }

start_node() { # N XDP-MODE
	MN_AGENT_ARGS="--xdp $2" mn_start_agent "$P" "$1" "$MODE" || { log "node$1's agent did not start"; exit 1; }
	AGENT[$1]=$MN_AGENT_PID
}
stop_node() { # N
	kill "${AGENT[$1]}" 2>/dev/null
	wait "${AGENT[$1]}" 2>/dev/null
	rm -f "$(mn_sock "$P" "$1")"
}

# The prefilter's maps, written as the SluicePrefilter compiler would:
# SRC/32 in the hash with rule 0 and counter entry 1; rule 0 on any port.
# shellcheck disable=SC2086 # one word per byte
hexaddr() { printf '%02x ' ${1//./ }; }
pf_deny() {
	# shellcheck disable=SC2046 # one word per byte
	bpftool map update pinned "$BPF1/sluice_pfh4_v1" key hex $(hexaddr "$1") \
		value hex 01 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00 &&
		bpftool map update pinned "$BPF1/sluice_pfcfg_v1" key hex 00 00 00 00 \
			value hex 01 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00
}
pf_allow() {
	# shellcheck disable=SC2046
	bpftool map delete pinned "$BPF1/sluice_pfh4_v1" key hex $(hexaddr "$1")
}
pf_entry_packets() { # the per-entry drop counter of entry 1, summed over the CPUs
	bpftool map lookup pinned "$BPF1/sluice_pfent_v1" key hex 01 00 00 00 -j |
		jq '[.formatted.values[] | .value.packets] | add // 0'
}

# The listener on node 1: forge.py counts UDP datagrams to 9101.
LISTEN_OUT=$MN_DIR/listen.json
received() { jq -r '.udp' "$LISTEN_OUT"; }
received_is() { # N: the listener has counted exactly N (after a moment for stragglers)
	sleep 0.3
	[ "$(received)" -eq "$1" ] || { echo "listener counted $(received), expected $1"; return 1; }
}
send_from() { # CLIENT-NS SRC COUNT [INTERVAL-MS]: UDP datagrams to node 1 port 9101
	ip netns exec "$P-$1" python3 "$FORGE" send --src "$2" --dst "$NODE1" --dport 9101 \
		--count "$3" --interval-ms "${4:-2}" >/dev/null
}

# ---- the cluster ---------------------------------------------------------------

echo "== topology: two nodes, two outside clients on the bridge"
mn_topology "$P" 2 || { log "could not build the topology"; exit 1; }
for c in 1 2; do
	netns_add "$P-cl$c"
	ip -n "$P-phys" link add "cl$c" mtu "$MN_MTU" type veth peer name eth0 mtu "$MN_MTU" netns "$P-cl$c"
	ip -n "$P-phys" link set "cl$c" master br0 up
	ip -n "$P-cl$c" addr add "10.200.0.10$c/24" dev eth0
	ip -n "$P-cl$c" link set eth0 up
done

echo "== agents (--routing $MODE, --xdp native), Node and Pod objects"
start_node 1 native
start_node 2 native
check "the Node objects applied" mn_apply_all "$P" 2 < <(
	{
		jq -cn --arg ns "$NS" '{apiVersion: "v1", kind: "Namespace", metadata: {name: $ns}}'
		mn_node_json 1
		mn_node_json 2
	} | mn_list)
for n in 1 2; do
	pod=n$n-pod
	netns_add "$P-$pod"
	out=$(mn_pod_add "$P" "$n" "$pod" "$NS")
	IP[$pod]=$(jq -r '.ips[0].address // empty' <<<"$out" 2>/dev/null | cut -d/ -f1)
	[ -n "${IP[$pod]}" ] || { log "no address for $pod: $out"; exit 1; }
	serve "$P-$pod" --tcp 8080 --udp 8081 || { log "echo servers in $pod"; exit 1; }
done
check "the Pod objects applied" mn_apply_all "$P" 2 < <(
	for n in 1 2; do mn_pod_json "$NS" "n$n-pod" "$n" "${IP[n$n-pod]}" web; done | mn_list)
ip netns exec "$P-node1" python3 "$FORGE" listen --udp 9101 --out "$LISTEN_OUT" &
CLEANUP_PIDS+=($!)
serve "$P-node1" --udp 9102 || { log "echo server on node1"; exit 1; }
eventually 5 test -s "$LISTEN_OUT" || { log "the listener on node1 did not start"; exit 1; }

echo "== a) native XDP on the veth uplink, traffic through it"
check "node1: from_netdev_xdp on uplink0 in driver mode (ip -d link)" \
	bash -c "[ \"\$(ip -n $P-node1 -j -d link show uplink0 | jq -r '.[0].xdp | \"\(.mode) \(.prog.name)\"')\" = '1 from_netdev_xdp' ]"
check "node1: bpftool net lists it as the driver's XDP program" \
	bash -c "nsenter --net=/run/netns/$P-node1 bpftool net show dev uplink0 | grep -A1 '^xdp:' | grep -q 'uplink0(.*) driver id'"
check "node1: the attachment is a bpf_link pinned under the agent's bpffs" \
	bash -c "bpftool link show pinned $BPF1/links/uplink0_xdp | grep -q xdp"
check "status: uplink0 (driver veth), native requested, native in use" bash -c "
	'$BUILD/sluicectl' --socket '$(mn_sock "$P" 1)' status -o json |
		jq -e '.xdp[0] | .device == \"uplink0\" and .driver == \"veth\" and .requested == \"native\" and
			.mode == \"native\" and .active and .fallbackReason == \"\"' &&
	'$BUILD/sluicectl' --socket '$(mn_sock "$P" 1)' status | grep -q 'xdp: *uplink0 (driver veth): native requested, native in use'"
pass2=$(metric 2 xdp-pass)
check "n1-pod -> n2-pod TCP" probe "$P-n1-pod" tcp "${IP[n2-pod]}" 8080 --timeout 1000
check "n1-pod -> n2-pod UDP" probe "$P-n1-pod" udp "${IP[n2-pod]}" 8081 --timeout 1000
check "n1-pod -> n2-pod ping" probe "$P-n1-pod" ping "${IP[n2-pod]}" --count 1 --timeout 1000
check "node2's xdp-pass grew with the cross-node traffic (>= 3)" grew_at_least 2 xdp-pass "$pass2" 3
check "sluicectl metrics shows xdp-pass" bash -c "'$BUILD/sluicectl' --socket '$(mn_sock "$P" 2)' metrics | grep -q xdp-pass"

echo "== b) a prefilter entry cuts cl1 off at XDP, cl2 keeps working"
drops=$(metric 1 drop-prefilter)
ent=$(pf_entry_packets)
pass1=$(metric 1 xdp-pass)
check "the entry for $CL1 written (bpftool)" pf_deny "$CL1"
send_from cl1 "$CL1" 20
check "the listener counted none of cl1's 20 datagrams" received_is 0
check "drop-prefilter on node1 grew by 20" grew_by 1 drop-prefilter "$drops" 20
check "the entry's counter grew by 20" bash -c "[ \"\$(bpftool map lookup pinned $BPF1/sluice_pfent_v1 key hex 01 00 00 00 -j |
	jq '[.formatted.values[] | .value.packets] | add')\" = $((ent + 20)) ]"
check "sluicectl metrics shows drop-prefilter" bash -c "'$BUILD/sluicectl' --socket '$(mn_sock "$P" 1)' metrics | grep -q drop-prefilter"
check "cl1's UDP echo to node1 fails" fails probe "$P-cl1" udp "$NODE1" 9102 --timeout 500
send_from cl2 "$CL2" 20
check "the listener counted cl2's 20" received_is 20
check "cl2's UDP echo to node1 works" probe "$P-cl2" udp "$NODE1" 9102 --timeout 1000
check "xdp-pass on node1 grew with cl2's traffic" grew_at_least 1 xdp-pass "$pass1" 20
check "the entry deleted" pf_allow "$CL1"
send_from cl1 "$CL1" 20
check "cl1's 20 arrive again" received_is 40
check "cl1's UDP echo works again" probe "$P-cl1" udp "$NODE1" 9102 --timeout 1000

echo "== c) --xdp off: the same at tc"
stop_node 1
start_node 1 off
check "node1: no XDP program on uplink0, no link pin" \
	bash -c "[ \"\$(ip -n $P-node1 -j -d link show uplink0 | jq -c '.[0].xdp')\" = null ] && [ ! -e $BPF1/links/uplink0_xdp ]"
check "status: off requested, off in use" bash -c "
	'$BUILD/sluicectl' --socket '$(mn_sock "$P" 1)' status -o json |
		jq -e '.xdp[0] | .requested == \"off\" and .mode == \"off\" and (.active | not)'"
pass1=$(metric 1 xdp-pass)
drops=$(metric 1 drop-prefilter)
check "the entry for $CL1 written again" pf_deny "$CL1"
send_from cl1 "$CL1" 20
check "the listener counted none of them" received_is 40
check "drop-prefilter on node1 grew by 20 (at tc)" grew_by 1 drop-prefilter "$drops" 20
send_from cl2 "$CL2" 20
check "cl2's 20 arrive" received_is 60
check "n1-pod -> n2-pod TCP with --xdp off" probe "$P-n1-pod" tcp "${IP[n2-pod]}" 8080 --timeout 1000
check "n2-pod -> n1-pod TCP with --xdp off" probe "$P-n2-pod" tcp "${IP[n1-pod]}" 8080 --timeout 1000
check "xdp-pass on node1 did not move" grew_by 1 xdp-pass "$pass1" 0
check "the entry deleted" pf_allow "$CL1"
send_from cl1 "$CL1" 20
check "cl1's 20 arrive again" received_is 80

echo "== d) forged frames dropped at XDP"
stop_node 1
start_node 1 native
MAC1=$(ip -n "$P-node1" -j link show uplink0 | jq -r '.[0].address')
spoof=$(metric 1 drop-xdp-spoof)
check "cl2 sends 10 with a source in node1's pod CIDR to n1-pod" \
	ip netns exec "$P-cl2" python3 "$FORGE" send --src 10.210.1.77 --dst "${IP[n1-pod]}" --dport 8081 \
	--iface eth0 --eth-dst "$MAC1" --count 10 --interval-ms 2
check "drop-xdp-spoof on node1 grew by 10" grew_by 1 drop-xdp-spoof "$spoof" 10
if [ "$MODE" = overlay ]; then
	tun=$(metric 1 drop-xdp-tunnel-source)
	check "cl1 sends 10 VXLAN packets to node1 (outer source cl1)" \
		ip netns exec "$P-cl1" python3 "$FORGE" send --src "${IP[n2-pod]}" --dst "${IP[n1-pod]}" \
		--dport 8081 --vxlan-to "$NODE1" --outer-src "$CL1" --count 10 --interval-ms 2
	check "drop-xdp-tunnel-source on node1 grew by 10" grew_by 1 drop-xdp-tunnel-source "$tun" 10
fi
check "n2-pod -> n1-pod UDP still works" probe "$P-n2-pod" udp "${IP[n1-pod]}" 8081 --timeout 1000

echo "== e) restart under a UDP stream: the link updated in place"
link_before=$(link_id)
prog_before=$(xdp_of 1 | cut -d' ' -f3)
base=$(received)
send_from cl2 "$CL2" 300 10 &
sender=$!
sleep 0.7
stop_node 1
start_node 1 native
wait "$sender"
check "the listener counted all 300 datagrams sent across the restart" received_is $((base + 300))
check "the same bpf_link ($link_before), a new program in it" bash -c "
	[ -n '$link_before' ] && [ \"\$(bpftool link show pinned $BPF1/links/uplink0_xdp -j | jq -r .id)\" = '$link_before' ] &&
	now=\$(ip -n $P-node1 -j -d link show uplink0 | jq -r '.[0].xdp | \"\(.mode) \(.prog.id)\"') &&
	[ \"\${now% *}\" = 1 ] && [ \"\${now#* }\" != '$prog_before' ]"

echo "== f) a device without native XDP (a bridge: no ndo_bpf)"
netns_add "$P-solo"
ip -n "$P-solo" link add solobr0 type bridge
ip -n "$P-solo" addr add 10.220.0.1/24 dev solobr0
ip -n "$P-solo" link set solobr0 up
SOLO=$MN_DIR/solo
mkdir -p "$SOLO"
CLEANUP_PATHS+=("/sys/fs/bpf/$P-solo")
solo_agent() { # XDP-MODE: run the agent on solobr0 (exec: its PID is the caller's)
	exec nsenter --net="/run/netns/$P-solo" "$BUILD/sluice-agent" --node-name solo \
		--pod-cidr 10.230.0.0/24 --device "${SOLO_DEV:-solobr0}" --routing native --xdp "$1" \
		--socket "$SOLO/agent.sock" --state-dir "$SOLO/state" --bpffs "/sys/fs/bpf/$P-solo" \
		>>"$SOLO/agent.log" 2>&1
}
timeout 20 bash -c "$(declare -f solo_agent); P=$P BUILD=$BUILD SOLO=$SOLO solo_agent native"
rc=$?
check "--xdp native on solobr0 fails start-up (exit $rc)" bash -c "[ $rc -ne 0 ] && [ $rc -ne 124 ]"
check "its error names the device, the driver and the fix" \
	grep -E "solobr0 \(driver bridge\) in native mode.*--xdp best-effort" "$SOLO/agent.log"
solo_agent generic &
CLEANUP_PIDS+=($!)
solo=$!
wait_for_socket "$SOLO/agent.sock" || true
check "--xdp generic (asked for): attached in skb mode, status says generic" bash -c "
	ip -n $P-solo -j -d link show solobr0 | jq -e '.[0].xdp.mode == 2 and .[0].xdp.prog.name == \"from_netdev_xdp\"' &&
	'$BUILD/sluicectl' --socket '$SOLO/agent.sock' status -o json | jq -e '.xdp[0] | .mode == \"generic\" and .active'"
kill "$solo" 2>/dev/null
wait "$solo" 2>/dev/null
rm -f "$SOLO/agent.sock"
solo_agent best-effort &
CLEANUP_PIDS+=($!)
solo=$!
wait_for_socket "$SOLO/agent.sock" || true
check "--xdp best-effort on solobr0: falls back to tc, status says why" bash -c "
	'$BUILD/sluicectl' --socket '$SOLO/agent.sock' status -o json |
		jq -e '.xdp[0] | .requested == \"best-effort\" and .mode == \"off\" and
			(.fallbackReason | test(\"solobr0.*driver bridge\"))' &&
	'$BUILD/sluicectl' --socket '$SOLO/agent.sock' status | grep -q 'best-effort requested, off in use; fell back: '"
check "no XDP program on solobr0 (best-effort never uses generic; the earlier agent's is gone)" bash -c "[ \"\$(ip -n $P-solo -j -d link show solobr0 | jq -c '.[0].xdp')\" = null ]"
kill "$solo" 2>/dev/null
wait "$solo" 2>/dev/null
rm -f "$SOLO/agent.sock"

echo "== f2) best-effort on a veth: left to tc (XDP there would turn TSO off on the peer)"
ip -n "$P-solo" link add solove0 type veth peer name solove1
ip -n "$P-solo" addr add 10.221.0.1/24 dev solove0
ip -n "$P-solo" link set solove0 up
ip -n "$P-solo" link set solove1 up
SOLO_DEV=solove0 solo_agent best-effort &
CLEANUP_PIDS+=($!)
solo=$!
wait_for_socket "$SOLO/agent.sock" || true
check "--xdp best-effort on a veth: off in use, the reason names veth and TSO" bash -c "
	'$BUILD/sluicectl' --socket '$SOLO/agent.sock' status -o json |
		jq -e '.xdp[0] | .requested == \"best-effort\" and .mode == \"off\" and
			(.fallbackReason | test(\"driver veth: .*TSO\"))'"
check "no XDP program on the veth, and its peer keeps TSO" bash -c "
	[ \"\$(ip -n $P-solo -j -d link show solove0 | jq -c '.[0].xdp')\" = null ] &&
	ip netns exec $P-solo ethtool -k solove1 | grep -q '^tcp-segmentation-offload: on'"
kill "$solo" 2>/dev/null
wait "$solo" 2>/dev/null

echo "== g) node-cleanup.sh removes the XDP program"
stop_node 1
mkdir -p "$MN_DIR/cni-bin" "$MN_DIR/cni-conf"
check "scripts/node-cleanup.sh for node1: removes the XDP link pin" bash -c "
	'$ROOT/scripts/node-cleanup.sh' --netns '$P-node1' --bpffs '$BPF1' \
		--state-dir '$(mn_node_dir "$P" 1)/state' --socket '$(mn_sock "$P" 1)' \
		--cni-bin-dir '$MN_DIR/cni-bin' --cni-conf-dir '$MN_DIR/cni-conf' |
		tee /dev/stderr | grep 'removed XDP link pin .*uplink0_xdp' >/dev/null"
check "after node-cleanup.sh: no XDP program on uplink0, no link pin" \
	bash -c "[ \"\$(ip -n $P-node1 -j -d link show uplink0 | jq -c '.[0].xdp')\" = null ] && [ ! -e $BPF1/links/uplink0_xdp ]"

summary
