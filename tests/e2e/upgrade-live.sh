#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Upgrades without drops, under traffic with loss counted. Two nodes in
# overlay mode (tests/multinode/lib.sh; --xdp native on the uplink, the
# cgroup hooks of --kube-proxy-replacement on), pods c (node1), c2 and s
# (node2). Policy closes c's and c2's ingress, so everything s sends them
# passes only on the connection-tracking entry of the flow they started:
# lost conntrack state shows as lost datagrams. Traffic for the whole run:
#
#   - two constant UDP streams of sequence-numbered datagrams, s -> c (across
#     nodes) and s -> c2 (on node2), 2000 a second each, all replies
#     (tests/tools/udpseq.py): loss counted exactly, must be 0;
#   - four TCP echo streams (c -> s, c2 -> s; sluice-probe stream): no
#     break, no error, every message echoed.
#
# Across, node by node as the DaemonSet rolls: a restart of the same build
# with SIGTERM, one with SIGKILL, the upgrade to a variant build of this tree
# (make DEFS=-DSLUICE_UPGRADE_TEST_LAYOUT: conntrack is sluice_ct4_v2 with a
# 24-byte value, its program stamps a creation time; agent/migrate.c copies
# sluice_ct4_v1 into it at start), and the downgrade back to this build.
# Checked besides: every hook's program replaced in place (tcx, XDP and
# cgroup links keep their ids, tc filters their handle, with new programs),
# every pinned map (NAT, policy, endpoints...) the very same map throughout,
# no program of a node left on the map version it no longer uses, the older
# conntrack pin kept for the downgrade. A UDP stream started after the
# upgrade (client keepalive every 50 ms) shows what a downgrade loses: its
# entry exists only in sluice_ct4_v2, so its replies drop on the downgraded
# datapath until the client's next datagram re-creates the entry; its loss
# is printed, and it must recover.
#
#   tests/e2e/upgrade-live.sh            tc, then tcx
#   tests/e2e/upgrade-live.sh tc|tcx     one attach mode
#
# The variant is built (incrementally) in $BUILD/upgrade-variant, or taken
# from VARIANT_BUILD.
set -uo pipefail
TEST_NAME=upgrade-live
source "$(dirname "$0")/../lib/common.sh"
# shellcheck source=../multinode/lib.sh
source "$(dirname "$0")/../multinode/lib.sh"
need_root
MODES=("$@")
[ ${#MODES[@]} -gt 0 ] || MODES=(tc tcx)
for m in "${MODES[@]}"; do
	[ "$m" = tc ] || [ "$m" = tcx ] || { echo "usage: $0 [tc|tcx]" >&2; exit 2; }
done
CUR=$BUILD
VARIANT=${VARIANT_BUILD:-$BUILD/upgrade-variant}
if [ -z "${VARIANT_BUILD:-}" ]; then
	log "building the variant (DEFS=-DSLUICE_UPGRADE_TEST_LAYOUT) in $VARIANT"
	make -s -C "$ROOT" -j2 BUILD="$VARIANT" DEFS=-DSLUICE_UPGRADE_TEST_LAYOUT \
		"$VARIANT/sluice-agent" "$VARIANT/sluicectl" >"/tmp/sluice-upgrade-variant.$$.log" 2>&1 ||
		{ cat "/tmp/sluice-upgrade-variant.$$.log" >&2; rm -f "/tmp/sluice-upgrade-variant.$$.log"; exit 1; }
	rm -f "/tmp/sluice-upgrade-variant.$$.log"
fi
[ -x "$VARIANT/sluice-agent" ] || { echo "$TEST_NAME: no $VARIANT/sluice-agent" >&2; exit 1; }
UDPSEQ=$ROOT/tests/tools/udpseq.py
ID=slu$$
DIR=$(mktemp -d /tmp/sluice-upgrade-live.XXXXXX)
CLEANUP_PATHS+=("$DIR")
NS=up
# An agent's start (BPF verification) takes about a second on an idle
# machine, ten on a loaded one: the traffic spans the eight restarts.
AGENT_START_TIMEOUT=${AGENT_START_TIMEOUT:-30}
RATE=2000

# pinned_id P N PIN: the id of what is pinned at PIN under node N's bpffs.
pinned_map() { bpftool map show pinned "/sys/fs/bpf/$1-node$2/$3" -j 2>/dev/null | jq -r '.id // empty'; }
pinned_link() { bpftool link show pinned "/sys/fs/bpf/$1-node$2/links/$3" -j 2>/dev/null | jq -r '"\(.id) \(.prog_id)"'; }
# map_pins P: "node pin id" of every map pinned by node1's and node2's agents.
map_pins() {
	local n f
	for n in 1 2; do
		for f in "/sys/fs/bpf/$1-node$n"/sluice_*; do
			echo "node$n ${f##*/} $(bpftool map show pinned "$f" -j 2>/dev/null | jq -r '.id // empty')"
		done
	done
}
# same_maps BEFORE AFTER: every map of BEFORE still pinned, the same map.
same_maps() { comm -23 <(sort <<<"$1") <(sort <<<"$2") | grep . && return 1; [ -n "$1" ]; }
# progs_using MAPID: how many loaded programs use map MAPID.
progs_using() { bpftool prog show -j | jq --argjson m "$1" '[.[] | select((.map_ids // []) | index($m))] | length'; }
# tc_filters P N DEV DIR: "pref handle prog-id" of each BPF filter on DEV.
tc_filters() {
	tc -n "$1-node$2" -j filter show dev "$3" "$4" |
		jq -r '[.[] | select(.options.prog.id) | "\(.pref) \(.options.handle) \(.options.prog.id)"] | join(",")'
}
# hooks P: one line per hook of node1 and node2: what holds it and the
# program it runs ("link-id prog-id" for links, "pref handle prog-id" for tc).
hooks() {
	local p=$1 n dev d l
	for n in 1 2; do
		for l in uplink0_xdp cgroup_connect4 cgroup_sendmsg4 cgroup_recvmsg4 cgroup_getpeername4; do
			echo "node$n $l $(pinned_link "$p" "$n" "$l")"
		done
		for dev in uplink0 sluice_vxlan $(ip -n "$p-node$n" -o link show | sed -n 's/^[0-9]*: \(lxc[^@:]*\).*/\1/p'); do
			for d in ingress egress; do
				if [ "$ATTACH" = tcx ]; then
					echo "node$n ${dev}_$d $(pinned_link "$p" "$n" "${dev}_$d")"
				else
					echo "node$n ${dev}_$d $(tc_filters "$p" "$n" "$dev" "$d")"
				fi
			done
		done
	done
}
# in_place BEFORE AFTER: every hook of BEFORE is in AFTER, held by the same
# link (same id) or the same tc filter (pref, handle), the only one there,
# running another program; prints the offenders.
in_place() {
	local bad=0 node key a b
	declare -A after
	while read -r node key a; do after["$node $key"]=$a; done <<<"$2"
	while read -r node key a; do
		key="$node $key"
		b=${after[$key]:-}
		if [ -z "$a" ] || [ -z "$b" ] || [[ "$a" == *,* ]] || [[ "$b" == *,* ]] ||
			[ "${a% *}" != "${b% *}" ] || [ "${a##* }" = "${b##* }" ]; then
			echo "$key: before '$a', after '$b'"
			bad=1
		fi
	done <<<"$1"
	return "$bad"
}

# roll P BUILD SIGNAL: the agents of node1 then node2 replaced by BUILD's,
# the old one stopped with SIGNAL first, as a DaemonSet rolls.
roll() {
	local p=$1 build=$2 sig=$3 n
	for n in 1 2; do
		{ kill -"$sig" "${AGENT[$n]}"; wait "${AGENT[$n]}"; } 2>/dev/null
		BUILD=$build mn_start_agent "$p" "$n" overlay || { not_ok "node$n: $build's agent did not start"; return 1; }
		AGENT[$n]=$MN_AGENT_PID
		sleep 0.3
	done
}

scenario() {
	ATTACH=$1
	local P=${ID}${ATTACH:1:2} C C2 S n i v1 v2 h0 h1 t0 maps0 late ok_streams pid f pod port
	declare -gA AGENT
	echo "== attach mode $ATTACH"
	MN_DIR=$DIR/$ATTACH
	# shellcheck disable=SC2034 # mn_start_agent's
	MN_AGENT_ARGS="--attach-mode $ATTACH --xdp native"
	mn_topology "$P" 2 || { not_ok "$ATTACH: the topology"; return; }
	t0=$(date +%s%N)
	for n in 1 2; do
		BUILD=$CUR mn_start_agent "$P" "$n" overlay || { not_ok "$ATTACH: node$n's agent"; return; }
		AGENT[$n]=$MN_AGENT_PID
	done
	# Four rolls of two nodes, and some.
	SECONDS_TRAFFIC=${UPGRADE_LIVE_SECONDS:-$(( ($(date +%s%N) - t0) * 5 / 1000000000 + 12 ))}
	netns_add "$P-c"
	netns_add "$P-c2"
	netns_add "$P-s"
	C=$(mn_pod_add "$P" 1 c "$NS" | jq -r '.ips[0].address // empty' | cut -d/ -f1)
	C2=$(mn_pod_add "$P" 2 c2 "$NS" | jq -r '.ips[0].address // empty' | cut -d/ -f1)
	S=$(mn_pod_add "$P" 2 s "$NS" | jq -r '.ips[0].address // empty' | cut -d/ -f1)
	check "$ATTACH: pods c ($C), c2 ($C2), s ($S) have addresses" test -n "$C" -a -n "$C2" -a -n "$S"
	{
		jq -cn --arg ns "$NS" '{apiVersion: "v1", kind: "Namespace", metadata: {name: $ns}}'
		mn_node_json 1
		mn_node_json 2
		mn_pod_json "$NS" c 1 "$C" client
		mn_pod_json "$NS" c2 2 "$C2" client
		mn_pod_json "$NS" s 2 "$S" server
		jq -cn --arg ns "$NS" '{apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy",
			metadata: {namespace: $ns, name: "clients-closed"},
			spec: {podSelector: {matchLabels: {app: "client"}}, policyTypes: ["Ingress"]}}'
		jq -cn --arg ns "$NS" '{apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy",
			metadata: {namespace: $ns, name: "server-from-clients"},
			spec: {podSelector: {matchLabels: {app: "server"}},
			       ingress: [{from: [{podSelector: {matchLabels: {app: "client"}}}]}]}}'
	} | mn_list | BUILD=$CUR mn_apply_all "$P" 2
	check "$ATTACH: cluster and policies applied" test "${PIPESTATUS[0]}" -eq 0
	serve "$P-s" --tcp 8080 || not_ok "$ATTACH: echo server in s"
	serve "$P-c" --tcp 8080 || not_ok "$ATTACH: echo server in c"
	for port in 9000 9001 9002; do
		ip netns exec "$P-s" "$UDPSEQ" serve "$port" >"$DIR/$ATTACH-udpserve-$port.json" 2>/dev/null &
		CLEANUP_PIDS+=($!)
	done
	check "$ATTACH: c reaches s (TCP, across nodes)" eventually 5 probe "$P-c" tcp "$S" 8080 --timeout 500
	check "$ATTACH: s cannot open a connection to c (c's ingress closed)" \
		bash -c "! ip netns exec '$P-s' '$BUILD/sluice-probe' tcp '$C' 8080 --timeout 500"

	echo "== $ATTACH: traffic for ${SECONDS_TRAFFIC}s: 2 UDP streams at $RATE/s, 4 TCP streams"
	local -a PIDS=()
	ip netns exec "$P-c" "$UDPSEQ" recv "$S" 9000 --rate "$RATE" --seconds "$SECONDS_TRAFFIC" \
		>"$DIR/$ATTACH-udp-c.json" 2>&1 &
	PIDS+=($!)
	ip netns exec "$P-c2" "$UDPSEQ" recv "$S" 9001 --rate "$RATE" --seconds "$SECONDS_TRAFFIC" \
		>"$DIR/$ATTACH-udp-c2.json" 2>&1 &
	PIDS+=($!)
	for i in 1 2; do
		for pod in c c2; do
			probe "$P-$pod" stream "$S" 8080 --seconds "$SECONDS_TRAFFIC" --interval-ms 10 \
				>"$DIR/$ATTACH-tcp-$pod-$i.json" 2>&1 &
			PIDS+=($!)
		done
	done
	CLEANUP_PIDS+=("${PIDS[@]}")
	t0=$(date +%s)
	sleep 1.5
	v1=$(pinned_map "$P" 1 sluice_ct4_v1)
	h0=$(hooks "$P")
	maps0=$(map_pins "$P")

	echo "== $ATTACH: restart, same build: SIGTERM, then SIGKILL"
	roll "$P" "$CUR" TERM
	roll "$P" "$CUR" KILL
	h1=$(hooks "$P")
	check "$ATTACH: restarts replaced every hook's program in place" in_place "$h0" "$h1"

	echo "== $ATTACH: upgrade to the variant (sluice_ct4_v2)"
	roll "$P" "$VARIANT" TERM
	v2=$(pinned_map "$P" 1 sluice_ct4_v2)
	check "$ATTACH: node1 migrated conntrack into sluice_ct4_v2 (log)" \
		grep -q 'map sluice_ct4_v2: [1-9][0-9]* entries migrated from .*/sluice_ct4_v1 ' "$MN_DIR/$P/node1/agent.log"
	check "$ATTACH: node1's programs use sluice_ct4_v2 (id $v2), none the v1 map (id $v1)" \
		eventually 2 bash -c "[ -n '$v2' ] && [ \$(bpftool prog show -j | jq --argjson m '$v2' '[.[] | select((.map_ids // []) | index(\$m))] | length') -gt 0 ] &&
			[ \$(bpftool prog show -j | jq --argjson m '$v1' '[.[] | select((.map_ids // []) | index(\$m))] | length') -eq 0 ]"
	check "$ATTACH: sluice_ct4_v1 still pinned for a downgrade (id $v1)" test "$(pinned_map "$P" 1 sluice_ct4_v1)" = "$v1"
	h0=$h1
	h1=$(hooks "$P")
	check "$ATTACH: the upgrade replaced every hook's program in place" in_place "$h0" "$h1"
	check "$ATTACH: after the upgrade every map is the one pinned before (NAT, policy, endpoints...)" \
		same_maps "$maps0" "$(map_pins "$P")"
	# A flow that exists only in sluice_ct4_v2.
	ip netns exec "$P-c" "$UDPSEQ" recv "$S" 9002 --rate "$RATE" --keepalive-ms 50 \
		--seconds $((SECONDS_TRAFFIC - ($(date +%s) - t0))) \
		>"$DIR/$ATTACH-udp-late.json" 2>&1 &
	late=$!
	CLEANUP_PIDS+=("$late")
	sleep 1.5

	echo "== $ATTACH: downgrade to this build"
	roll "$P" "$CUR" TERM
	check "$ATTACH: node1's programs use sluice_ct4_v1 again (id $v1), none sluice_ct4_v2" \
		eventually 2 bash -c "[ \$(bpftool prog show -j | jq --argjson m '$v1' '[.[] | select((.map_ids // []) | index(\$m))] | length') -gt 0 ] &&
			[ \$(bpftool prog show -j | jq --argjson m '$v2' '[.[] | select((.map_ids // []) | index(\$m))] | length') -eq 0 ]"
	h0=$h1
	h1=$(hooks "$P")
	check "$ATTACH: the downgrade replaced every hook's program in place" in_place "$h0" "$h1"
	check "$ATTACH: after the downgrade every map is the one pinned before" \
		same_maps "$maps0" "$(map_pins "$P")"

	ok_streams=0
	for pid in "${PIDS[@]}"; do wait "$pid" && ok_streams=$((ok_streams + 1)); done
	wait "$late"
	for f in c c2; do
		echo "   udp s->$f: $(cat "$DIR/$ATTACH-udp-$f.json")"
		check "$ATTACH: UDP s -> $f: ended, 0 lost of $(jq -r .sent "$DIR/$ATTACH-udp-$f.json" 2>/dev/null)" \
			jq -e '.ended and .lost == 0 and .sent > 0' "$DIR/$ATTACH-udp-$f.json"
	done
	for f in "$DIR/$ATTACH"-tcp-*.json; do
		check "$ATTACH: TCP stream $(basename "$f" .json): unbroken, every message echoed" \
			jq -e '.broken == false and .errors == 0 and .echoed == .messages and .messages > 100' "$f"
	done
	echo "   udp s->c started after the upgrade: $(cat "$DIR/$ATTACH-udp-late.json")"
	check "$ATTACH: the flow started after the upgrade recovered after the downgrade (ended, < 10% lost)" \
		jq -e '.ended and .sent > 0 and .lost * 10 < .sent' "$DIR/$ATTACH-udp-late.json"
	check "$ATTACH: all ${#PIDS[@]} UDP and TCP clients exited 0" test "$ok_streams" -eq "${#PIDS[@]}"
	for n in 1 2; do { kill -TERM "${AGENT[$n]}"; wait "${AGENT[$n]}"; } 2>/dev/null; done
}

for ATTACH in "${MODES[@]}"; do scenario "$ATTACH"; done
summary
