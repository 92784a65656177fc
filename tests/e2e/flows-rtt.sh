#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Passive TCP round trips and retransmissions against a delay the test
# imposes (docs/OBSERVABILITY.md): pod a talks to pod b, whose server runs
# behind a relay inside b's namespace (tests/tools/delay_relay.py) that
# holds every frame towards the server DELAY_MS. The flow's END record
# must carry a round trip within 10 % of it; with the relay dropping the
# first data segment once, the retransmission must be counted, and a flow
# that lost nothing must count none.
#
#   pod a (eth0) --sluice-- pod b's eth0 (no address) [relay, +DELAY_MS] r0 -- s0 (server, b's address)
set -uo pipefail
TEST_NAME=flows-rtt
source "$(dirname "$0")/../lib/common.sh"
need_root

DELAY_MS=${DELAY_MS:-20}
ID=slrtt$$
NODE=$ID-node
SRV=$ID-srv
DIR=$(mktemp -d /tmp/sluice-flows-rtt.XXXXXX)
BPFFS=/sys/fs/bpf/$ID
CIDR=10.244.7.0/24
SOCK=$DIR/agent.sock
CLEANUP_PATHS+=("$DIR" "$BPFFS")
CONF=$(printf '{"cniVersion":"1.1.0","name":"sluice","type":"sluice-cni","socket":"%s"}' "$SOCK")
ctl() { "$BUILD/sluicectl" --socket "$SOCK" "$@"; }
PY=/usr/bin/python3	# Debian's, whatever python3 is first on PATH
RELAY=$(cd "$(dirname "$0")/../tools" && pwd)/delay_relay.py
declare -A IP

netns_add "$NODE"
start_agent "$NODE" "$CIDR" "$DIR" || exit 1
ctl apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Namespace
metadata: {name: x}
---
apiVersion: v1
kind: Pod
metadata: {namespace: x, name: a, labels: {app: client}}
---
apiVersion: v1
kind: Pod
metadata: {namespace: x, name: b, labels: {app: server}}
YAML
for p in a b; do
	netns_add "$ID-$p"
	IP[$p]=$(POD_NAMESPACE=x cni ADD "$p" "/run/netns/$ID-$p" "$CONF" | jq -r '.ips[0].address' | cut -d/ -f1)
	[ -n "${IP[$p]}" ] && [ "${IP[$p]}" != null ] || { log "CNI ADD of x/$p failed"; exit 1; }
done
A=${IP[a]} B=${IP[b]}

# b's address moves to the server's namespace, behind the relay. Software
# checksums and no segmentation offloads on both ends: the relay forwards
# frames as they are, and a frame leaves with nothing left to finish.
netns_add "$SRV"
ip -n "$ID-b" link add r0 type veth peer name s0 netns "$SRV"
ip -n "$ID-b" addr flush dev eth0
ip -n "$ID-b" link set r0 up
ip -n "$SRV" addr add "$B/32" dev s0
ip -n "$SRV" link set s0 up
ip -n "$SRV" route add default dev s0
ip -n "$SRV" neigh replace "$A" lladdr 02:00:00:00:00:aa dev s0 nud permanent
ip netns exec "$SRV" ethtool -K s0 tx off tso off gso off >/dev/null
ip netns exec "$ID-a" ethtool -K eth0 tx off tso off gso off >/dev/null
SMAC=$(ip -n "$SRV" -j link show s0 | jq -r '.[0].address')
serve "$SRV" --tcp 8080 || exit 1

RELAY_PID=
relay() { # [--drop-data N]: (re)start the relay in b's namespace
	[ -n "$RELAY_PID" ] && { kill "$RELAY_PID" 2>/dev/null; wait "$RELAY_PID" 2>/dev/null; }
	ip netns exec "$ID-b" "$PY" "$RELAY" eth0 r0 --inner-peer-mac "$SMAC" \
		--delay-ms "$DELAY_MS" "$@" >"$DIR/relay.out" 2>&1 &
	RELAY_PID=$!
	CLEANUP_PIDS+=("$RELAY_PID")
	for _ in $(seq 50); do
		grep -q ready "$DIR/relay.out" && return 0
		sleep 0.1
	done
	cat "$DIR/relay.out" >&2
	return 1
}
# end_record SPORT-FILTER: the END record of a's flow to b:8080 (JSON), as
# observe gives it; jq filter on it as $1.
ended() {
	ctl observe --from-pod x/a --to-pod x/b --port 8080 -o json |
		jq -e -s "[.[] | select(.event == \"END\")] | last | select(. != null) | $1" >/dev/null
}

lo=$((DELAY_MS * 900)) hi=$((DELAY_MS * 1100))
echo "== a round trip of ${DELAY_MS} ms imposed towards the server"
check "the relay runs" relay
check "a -> b:8080, one connection for 2 s, every echo back" \
	bash -c "ip netns exec $ID-a $BUILD/sluice-probe stream $B 8080 --seconds 2 --interval-ms 100 | jq -e '.echoed == .messages and .messages > 5'"
check "the flow's END record, with both pods named (within 3 s)" \
	eventually 3 ended '.source.pod == "a" and .destination.pod == "b"'
ctl observe --from-pod x/a --to-pod x/b --port 8080 -o json |
	jq -c -s '[.[] | select(.event == "END")] | last | {rttMinUs, rttSmoothedUs, retransmits}' >&2
check "smallest round trip within 10 % of ${DELAY_MS} ms ($lo..$hi us)" \
	ended ".rttMinUs >= $lo and .rttMinUs <= $hi"
check "smoothed round trip within 10 % of ${DELAY_MS} ms" \
	ended ".rttSmoothedUs >= $lo and .rttSmoothedUs <= $hi"
check "nothing lost, nothing counted as sent again" \
	ended '.retransmits.forward == 0 and .retransmits.reply == 0'
check "sluicectl top pods: x/a -> x/b with its p50 in the ${DELAY_MS} ms range" \
	bash -c "$BUILD/sluicectl --socket $SOCK top pods -o json |
		jq -e '[.podPairs[] | select(.source == \"x/a\" and .destination == \"x/b\" and
			.p50Us >= $((DELAY_MS * 500)) and .p50Us <= $((DELAY_MS * 2000)))] | length == 1'"

echo "== the first data segment lost once"
check "the relay runs, dropping one data segment" relay --drop-data 1
check "a -> b:8080 still answers (the segment is sent again)" \
	probe "$ID-a" tcp "$B" 8080 --timeout 5000
check "its END record counts the retransmission (within 3 s)" \
	eventually 3 ended '.retransmits.forward >= 1'

summary
