#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Pod bandwidth limits across nodes (docs/CNI.md, Bandwidth limits): two
# nodes (lib.sh), an unlimited pod S on node 1 and a pod R on node 2 that
# may receive 50 Mbit/s and send 30 Mbit/s. iperf3 TCP (10 s, BW_SECONDS)
# measures each within 10 %: R's ingress on the delivery from another node
# (overlay: out of the tunnel, by BPF or the vxlan device; native: from the
# uplink), R's egress on the way out of the node. Per routing mode, overlay
# then native. Measures rates: run it alone.
#
#   tests/multinode/bandwidth.sh             overlay, then native
#   tests/multinode/bandwidth.sh overlay     one mode (or native)
# shellcheck source-path=SCRIPTDIR
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TEST_NAME=${MN_TEST_NAME:-multinode-bandwidth}
# shellcheck source=../lib/common.sh
source "$HERE/../lib/common.sh"
# shellcheck source=lib.sh
source "$HERE/lib.sh"

mn_mode multinode-bandwidth MN_TEST_NAME "$0" "$@"
need_root
command -v iperf3 >/dev/null || { log "iperf3 missing (make deps)"; exit 77; }

ID=smbw$$
P=$ID
MN_DIR=$(mktemp -d /tmp/sluice-mnbw.XXXXXX)
CLEANUP_PATHS+=("$MN_DIR")
SECONDS_RUN=${BW_SECONDS:-10}

# rate CLIENT-NETNS SERVER-NETNS SERVER-IP: iperf3 TCP; the receiver's Mbit/s.
rate() {
	local cli=$1 srv=$2 dst=$3 pid out
	ip netns exec "$srv" iperf3 -s -1 -p 5201 >/dev/null 2>&1 &
	pid=$!
	CLEANUP_PIDS+=("$pid")
	eventually 5 bash -c "ip netns exec '$srv' ss -ltnH 'sport = :5201' | grep -q ." || return 1
	out=$(ip netns exec "$cli" iperf3 -c "$dst" -p 5201 -t "$SECONDS_RUN" -J 2>&1)
	wait "$pid" 2>/dev/null
	jq -r '.end.sum_received.bits_per_second / 1e6 | . * 10 | round / 10' <<<"$out" 2>/dev/null ||
		log "iperf3 failed: $(head -c 300 <<<"$out")"
}
within() { awk -v g="$1" -v w="$2" 'BEGIN { exit !(g != "" && g >= w * 0.9 && g <= w * 1.1) }'; }
metric() {
	mn_ctl "$P" "$1" metrics -o json |
		jq --arg r "$2" '[.metrics[] | select(.reason == $r) | .packets] | add // 0'
}

mn_topology "$P" 2 || exit 1
mn_start_agent "$P" 1 "$MODE" || exit 1
mn_start_agent "$P" 2 "$MODE" || exit 1
{ mn_node_json 1; mn_node_json 2; } | mn_list | mn_apply_all "$P" 2 ||
	{ not_ok "apply the Node objects"; summary; exit; }

netns_add "$P-s"
netns_add "$P-r"
S=$(mn_pod_add "$P" 1 s | jq -r '.ips[0].address' | cut -d/ -f1)
conf=$(jq -c '. + {runtimeConfig: {bandwidth: {ingressRate: 50000000, egressRate: 30000000}}}' \
	<<<"$(mn_conf "$P" 2)")
R=$(cni ADD r "/run/netns/$P-r" "$conf" | jq -r '.ips[0].address' | cut -d/ -f1)
check "pods S (node 1, no limit) and R (node 2, ingress 50, egress 30 Mbit/s) added" \
	test -n "$S" -a -n "$R"
check "S reaches R across the nodes" \
	eventually 10 probe "$P-s" ping "$R" --count 1 --timeout 500

drops0=$(metric 2 drop-bandwidth)
R_SR=$(rate "$P-s" "$P-r" "$R")
echo "   S -> R ($MODE, R's ingress limit 50): $R_SR Mbit/s"
check "R's ingress on delivery from another node ($MODE): $R_SR Mbit/s is 50 +-10 %" \
	within "$R_SR" 50
R_RS=$(rate "$P-r" "$P-s" "$S")
echo "   R -> S ($MODE, R's egress limit 30): $R_RS Mbit/s"
check "R's egress towards another node ($MODE): $R_RS Mbit/s is 30 +-10 %" within "$R_RS" 30
check "node 2 counted drop-bandwidth" test "$(metric 2 drop-bandwidth)" -gt "$drops0"
check "node 1 (S unlimited) dropped nothing for bandwidth" test "$(metric 1 drop-bandwidth)" = 0
echo "   node 2: forward-remote $(metric 2 forward-remote), overlay-decap $(metric 2 overlay-decap) packets"

summary
