#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Pod bandwidth limits end to end (docs/CNI.md, Bandwidth limits): an agent
# in a node namespace, pods added by the real sluice-cni with
# runtimeConfig.bandwidth. Pod A sends at most 100 Mbit/s, pod B receives at
# most 50 Mbit/s, pod C has no limit. iperf3 TCP for 10 s measures each
# limit within 10 % on the path sluice redirects (pod to pod on this node)
# and on the path through the host stack (pod and node); C keeps its full
# rate. A re-ADD changes a limit, an agent restart keeps one, DEL removes
# the buckets, bad input is refused with code 7 naming the field and leaves
# nothing behind, and the drops are counted. A pod that ignores congestion
# control (a UDP flood) gets no more through either limit. Measures rates: run it alone.
# shellcheck source-path=SCRIPTDIR
set -uo pipefail
TEST_NAME=bandwidth
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
need_root
command -v iperf3 >/dev/null || { echo "$TEST_NAME: iperf3 missing (make deps)" >&2; exit 77; }

ID=sbw$$
NODE=$ID-node
DIR=$(mktemp -d /tmp/sluice-bandwidth.XXXXXX)
BPFFS=/sys/fs/bpf/$ID
CIDR=10.239.0.0/24
ROUTER=10.239.0.1
CLEANUP_PATHS+=("$DIR" "$BPFFS")
SOCK=$DIR/agent.sock
SECONDS_RUN=${BW_SECONDS:-10}
ctl() { "$BUILD/sluicectl" --socket "$SOCK" "$@"; }

# conf [BANDWIDTH-JSON]: the network configuration, with runtimeConfig.bandwidth.
conf() {
	jq -nc --arg s "$SOCK" --argjson bw "${1:-null}" \
		'{cniVersion: "1.0.0", name: "sluice", type: "sluice-cni", socket: $s}
		 + (if $bw == null then {} else {runtimeConfig: {bandwidth: $bw}} end)'
}

declare -A IP
# add_pod NAME [BANDWIDTH-JSON]: ADD pod NAME (its netns $ID-NAME), IP[NAME].
add_pod() {
	local out
	[ -e "/run/netns/$ID-$1" ] || netns_add "$ID-$1"
	out=$(cni ADD "c$ID$1" "/run/netns/$ID-$1" "$(conf "${2:-}")") || { echo "$out" >&2; return 1; }
	IP[$1]=$(jq -r '.ips[0].address' <<<"$out" | cut -d/ -f1)
}

ep_json() { ctl get endpoints -o json | jq -c --arg id "c$ID$1" '.endpoints[] | select(.containerId == $id)'; }
ifindex_of() { ep_json "$1" | jq -r .hostIfindex; }
# bucket IFINDEX DIR(0 egress, 1 ingress) FIELD: a field of a bucket in sluice_bw_v1.
bucket() {
	bpftool map dump pinned "$BPFFS/sluice_bw_v1" -j |
		jq -r --argjson i "$1" --argjson d "$2" \
			'[.[] | .formatted | select(.key.ifindex == $i and .key.dir == $d) | .value.'"$3"'][0] // "none"'
}
nbuckets() { bpftool map dump pinned "$BPFFS/sluice_bw_v1" -j | jq length; }
# ep_flags NAME: the endpoint map value's flags (byte 4 of its value) for pod NAME.
ep_flags() {
	local a b c d
	IFS=. read -r a b c d <<<"${IP[$1]}"
	bpftool map lookup pinned "$BPFFS/sluice_ep_v2" key \
		"$a" "$b" "$c" "$d" -j |
		jq -r '.value[4] // "none"'
}

# rate CLIENT-NETNS SERVER-NETNS SERVER-IP SECONDS: iperf3 TCP client to
# server; prints the receiver's Mbit/s.
rate() {
	local cli=$1 srv=$2 dst=$3 secs=$4 pid out
	ip netns exec "$srv" iperf3 -s -1 -p 5201 >/dev/null 2>&1 &
	pid=$!
	CLEANUP_PIDS+=("$pid")
	eventually 5 bash -c "ip netns exec '$srv' ss -ltnH 'sport = :5201' | grep -q ." || return 1
	out=$(ip netns exec "$cli" iperf3 -c "$dst" -p 5201 -t "$secs" -J 2>&1)
	wait "$pid" 2>/dev/null
	jq -r '.end.sum_received.bits_per_second / 1e6 | . * 10 | round / 10' <<<"$out" 2>/dev/null ||
		echo "iperf3 failed: $(head -c 300 <<<"$out")" >&2
}
# flood CLIENT-NETNS SERVER-NETNS SERVER-IP: an unresponsive sender (UDP at
# 1 Gbit/s for 3 s, no congestion control to back off); prints the Mbit/s
# the server received (sent, less the datagrams it counted lost).
flood() {
	local cli=$1 srv=$2 dst=$3 pid out
	ip netns exec "$srv" iperf3 -s -1 -p 5202 >/dev/null 2>&1 &
	pid=$!
	CLEANUP_PIDS+=("$pid")
	eventually 5 bash -c "ip netns exec '$srv' ss -ltnH 'sport = :5202' | grep -q ." || return 1
	out=$(ip netns exec "$cli" iperf3 -c "$dst" -p 5202 -u -b 1G -t 3 -J 2>&1)
	wait "$pid" 2>/dev/null
	jq -r '.end.sum | .bits_per_second * (1 - .lost_percent / 100) / 1e6 | . * 10 | round / 10' \
		<<<"$out" 2>/dev/null || echo "iperf3 failed: $(head -c 300 <<<"$out")" >&2
}
# within GOT WANT: GOT is WANT +-10 %.
within() { awk -v g="$1" -v w="$2" 'BEGIN { exit !(g != "" && g >= w * 0.9 && g <= w * 1.1) }'; }
gt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && a > b) }'; }
# between GOT LOW HIGH: LOW < GOT <= HIGH.
between() { gt "$1" "$2" && ! gt "$1" "$3"; }

netns_add "$NODE"
start_agent "$NODE" "$CIDR" "$DIR" || exit 1

echo "== ADD: A egress 100 Mbit/s, B ingress 50 Mbit/s, C unlimited"
check "ADD pod A with egressRate 100000000 (containerd's 2^32-1 burst)" \
	add_pod a '{"egressRate":100000000,"egressBurst":4294967295}'
check "ADD pod B with ingressRate 50000000 (keys in any case)" \
	add_pod b '{"IngressRate":50000000}'
check "ADD pod C without limits" add_pod c
IFA=$(ifindex_of a)
IFB=$(ifindex_of b)
IFC=$(ifindex_of c)
check "A's egress bucket: 12.5 MB/s, 250 ms deep" \
	test "$(bucket "$IFA" 0 rate)/$(bucket "$IFA" 0 depth)" = "12500000/3125000"
check "B's ingress bucket: 6.25 MB/s" test "$(bucket "$IFB" 1 rate)" = 6250000
check "no bucket for A's ingress, B's egress or C" \
	test "$(bucket "$IFA" 1 rate)$(bucket "$IFB" 0 rate)$(bucket "$IFC" 0 rate)$(bucket "$IFC" 1 rate)" = nonenonenonenone
check "endpoint flags: A BW_EGRESS, B BW_INGRESS, C neither" \
	test "$(( $(ep_flags a) & 0x30 ))/$(( $(ep_flags b) & 0x30 ))/$(( $(ep_flags c) & 0x30 ))" = "16/32/0"
check "get endpoints shows EGRESS-BW and INGRESS-BW" \
	bash -c "out=\$('$BUILD/sluicectl' --socket '$SOCK' get endpoints); echo \"\$out\";
		head -1 <<<\"\$out\" | grep -q 'EGRESS-BW *INGRESS-BW' &&
		grep 'c${ID}a ' <<<\"\$out\" | grep -q ' 100M  *- ' &&
		grep 'c${ID}b ' <<<\"\$out\" | grep -q ' -  *50M ' &&
		grep 'c${ID}c ' <<<\"\$out\" | grep -q ' -  *- '"
check "get endpoints -o json: A's configured values, its egress counters" \
	jq -e '.bandwidth | .egressRate == 100000000 and .egressBurst == 4294967295 and .ingressRate == 0
		and (.egress | has("passedPackets")) and (has("ingress") | not)' <<<"$(ep_json a)"
check "C has no bandwidth in get endpoints -o json" jq -e 'has("bandwidth") | not' <<<"$(ep_json c)"

echo "== rates (iperf3 TCP, $SECONDS_RUN s each)"
R_AC=$(rate "$ID-a" "$ID-c" "${IP[c]}" "$SECONDS_RUN")
echo "   A -> C (pod to pod, redirected; A's egress limit 100): $R_AC Mbit/s"
check "A's egress on the pod-to-pod path: $R_AC Mbit/s is 100 +-10 %" within "$R_AC" 100
R_AN=$(rate "$ID-a" "$NODE" "$ROUTER" "$SECONDS_RUN")
echo "   A -> node (through the host stack; A's egress limit 100): $R_AN Mbit/s"
check "A's egress on the host-stack path: $R_AN Mbit/s is 100 +-10 %" within "$R_AN" 100
R_CB=$(rate "$ID-c" "$ID-b" "${IP[b]}" "$SECONDS_RUN")
echo "   C -> B (pod to pod, redirected; B's ingress limit 50): $R_CB Mbit/s"
check "B's ingress on the pod-to-pod path, charged once: $R_CB Mbit/s is 50 +-10 %" within "$R_CB" 50
R_NB=$(rate "$NODE" "$ID-b" "${IP[b]}" "$SECONDS_RUN")
echo "   node -> B (through the host stack, to_pod; B's ingress limit 50): $R_NB Mbit/s"
check "B's ingress on the host-stack path: $R_NB Mbit/s is 50 +-10 %" within "$R_NB" 50
R_CN=$(rate "$ID-c" "$NODE" "$ROUTER" 5)
echo "   C -> node (no limit): $R_CN Mbit/s"
check "unlimited pod C keeps its rate: $R_CN Mbit/s, over twice the highest limit" gt "$R_CN" 200

echo "== an unresponsive sender (UDP flood at 1 Gbit/s, 3 s) gets no more than the limit"
# 3 s at the limit, +10 %, plus one full bucket (250 ms of the rate).
F_AC=$(flood "$ID-a" "$ID-c" "${IP[c]}")
echo "   A floods C (A's egress limit 100): C received $F_AC Mbit/s"
check "A's flood through its egress limit: $F_AC Mbit/s received, at most 119" \
	between "$F_AC" 50 119
F_CB=$(flood "$ID-c" "$ID-b" "${IP[b]}")
echo "   C floods B (B's ingress limit 50): B received $F_CB Mbit/s"
check "a flood into B's ingress limit: $F_CB Mbit/s received, at most 60" \
	between "$F_CB" 25 60

echo "== drops counted"
check "A's egress bucket dropped packets (get endpoints -o json)" \
	jq -e '.bandwidth.egress.droppedPackets > 0 and .bandwidth.egress.passedBytes > 0' <<<"$(ep_json a)"
check "B's ingress bucket dropped packets" \
	jq -e '.bandwidth.ingress.droppedPackets > 0 and .bandwidth.ingress.droppedBytes > 0' <<<"$(ep_json b)"
check "drop-bandwidth counted in sluicectl metrics, both directions" \
	bash -c "'$BUILD/sluicectl' --socket '$SOCK' metrics -o json | jq -e '
		[.metrics[] | select(.reason == \"drop-bandwidth\" and .packets > 0) | .direction] | unique | length == 2'"

echo "== re-ADD changes a limit"
out=$(cni ADD "c${ID}a" "/run/netns/$ID-a" "$(conf '{"egressRate":20000000}')")
check "re-ADD of A with egressRate 20000000 succeeds with the same address" \
	jq -e --arg ip "${IP[a]}/32" '.ips[0].address == $ip' <<<"$out"
check "A's bucket is 2.5 MB/s now" test "$(bucket "$IFA" 0 rate)" = 2500000
check "A's record (state file and get endpoints) says 20000000" \
	test "$(jq .bandwidth.egressRate "$DIR/state/endpoints/c${ID}a_eth0.json")/$(ep_json a | jq .bandwidth.egressRate)" = 20000000/20000000
R_AC2=$(rate "$ID-a" "$ID-c" "${IP[c]}" 5)
echo "   A -> C after the re-ADD (limit 20): $R_AC2 Mbit/s"
check "A's new limit holds: $R_AC2 Mbit/s is 20 +-10 %" within "$R_AC2" 20
check "re-ADD of A without bandwidth" cni ADD "c${ID}a" "/run/netns/$ID-a" "$(conf)"
check "A has no bucket and no BW flag now" \
	test "$(bucket "$IFA" 0 rate)/$(( $(ep_flags a) & 0x30 ))" = "none/0"

echo "== an agent restart keeps a limit"
before=$(bucket "$IFB" 1 passed_bytes)
kill -9 "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null
start_agent "$NODE" "$CIDR" "$DIR" || exit 1
check "B still limited after the restart: record, bucket, flag" \
	test "$(ep_json b | jq -r .bandwidth.ingressRate)/$(bucket "$IFB" 1 rate)/$(( $(ep_flags b) & 0x30 ))" = "50000000/6250000/32"
check "B's bucket kept its counters ($before bytes passed before)" \
	test "$(bucket "$IFB" 1 passed_bytes)" -ge "$before"
R_NB2=$(rate "$NODE" "$ID-b" "${IP[b]}" 5)
echo "   node -> B after the restart (limit 50): $R_NB2 Mbit/s"
check "B's limit holds after the restart: $R_NB2 Mbit/s is 50 +-10 %" within "$R_NB2" 50

echo "== bad input: code 7 naming the field, nothing left behind"
links0=$(ip -n "$NODE" -o link show | grep -c ' lxc')
used0=$(ctl status -o json | jq .ipam.used)
n0=$(nbuckets)
for bad in '{"egressRate":-1}:egressRate' '{"egressRate":"100M"}:egressRate' \
	'{"ingressRate":100000000.5}:ingressRate' '{"ingressRate":10000000000000}:ingressRate' \
	'{"egressRate":100000000,"egressBurst":4294967296}:egressBurst' \
	'{"ingressRate":100000000,"ingressBurst":100}:ingressBurst'; do
	field=${bad##*:}
	netns_add "$ID-d"
	out=$(cni ADD "c${ID}d" "/run/netns/$ID-d" "$(conf "${bad%:*}")")
	check "ADD with ${bad%:*}: code 7 naming runtimeConfig.bandwidth.$field" \
		jq -e --arg f "runtimeConfig.bandwidth.$field" '.code == 7 and (.msg | contains($f))' <<<"$out"
	ip netns del "$ID-d"
done
check "nothing left: no endpoint, no veth, no address, no bucket" \
	test "$(ep_json d)/$(ip -n "$NODE" -o link show | grep -c ' lxc')/$(ctl status -o json | jq .ipam.used)/$(nbuckets)" = "/$links0/$used0/$n0"

echo "== DEL removes the buckets"
check "DEL pod B" cni DEL "c${ID}b" "/run/netns/$ID-b" "$(conf)"
check "B's bucket is gone" test "$(bucket "$IFB" 1 rate)" = none
for p in a c; do cni DEL "c$ID$p" "/run/netns/$ID-$p" "$(conf)" >/dev/null; done
check "sluice_bw_v1 is empty once every pod is gone" test "$(nbuckets)" = 0

summary
