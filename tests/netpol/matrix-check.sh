#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Self-check of `sluice-probe matrix` between two network namespaces joined
# by a veth pair, no agent: every job runs in the namespace it names, open
# ports answer, closed ports and silent drops fail, failures run in parallel
# (a batch of them takes about one timeout), bad input is refused before
# anything runs, and an unusable namespace is an error, not a failure.
# shellcheck source-path=SCRIPTDIR
set -uo pipefail
TEST_NAME=netpol-matrix
# shellcheck source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"
need_root

ID=slnm$$
A=$ID-a
B=$ID-b
IP_A=10.252.0.10
IP_B=10.252.0.11
SILENT=10.252.0.99 # in the subnet, owned by nobody: no ARP answer, no reply
T=500
OUT=$(mktemp /tmp/sluice-matrix.XXXXXX)
CLEANUP_PATHS+=("$OUT")

netns_add "$A"
netns_add "$B"
ip link add "$ID-va" netns "$A" type veth peer name "$ID-vb" netns "$B"
ip -n "$A" addr add "$IP_A/24" dev "$ID-va"
ip -n "$B" addr add "$IP_B/24" dev "$ID-vb"
ip -n "$A" link set "$ID-va" up
ip -n "$B" link set "$ID-vb" up

# Servers in B only: TCP and UDP 80.
ip netns exec "$B" "$BUILD/sluice-probe" serve --tcp 80 --udp 80 >"$OUT" 2>&1 &
CLEANUP_PIDS+=($!)
for _ in $(seq 100); do grep -q ready "$OUT" && break; sleep 0.02; done

matrix() { "$BUILD/sluice-probe" matrix --timeout "$T" "$@"; }
result() { awk -v id="$1" '$1 == id { print $2 }' "$OUT"; }

matrix --parallel 16 >"$OUT" 2>/dev/null <<EOF
# comment and empty line are skipped

a-b-tcp /run/netns/$A tcp $IP_B 80
a-b-udp /run/netns/$A udp $IP_B 80
a-b-tcp-closed /run/netns/$A tcp $IP_B 81
a-b-udp-closed /run/netns/$A udp $IP_B 81
b-lo-tcp /run/netns/$B tcp 127.0.0.1 80
a-lo-tcp /run/netns/$A tcp 127.0.0.1 80
b-lo-udp /run/netns/$B udp 127.0.0.1 80
a-lo-udp /run/netns/$A udp 127.0.0.1 80
a-silent-tcp /run/netns/$A tcp $SILENT 80
a-silent-udp /run/netns/$A udp $SILENT 80
EOF
rc=$?
check "a batch of jobs exits 0 although some fail" test "$rc" -eq 0
check "one result line per job" test "$(grep -c . "$OUT")" -eq 10
check "TCP from A to B's open port: ok" test "$(result a-b-tcp)" = ok
check "UDP from A to B's open port: ok" test "$(result a-b-udp)" = ok
check "TCP to a closed port: fail" test "$(result a-b-tcp-closed)" = fail
check "UDP to a closed port: fail" test "$(result a-b-udp-closed)" = fail
check "each job runs in its own namespace: B's loopback has the servers (TCP)" \
	test "$(result b-lo-tcp)" = ok
check "each job runs in its own namespace: A's loopback has none (TCP)" \
	test "$(result a-lo-tcp)" = fail
check "the same for UDP (B ok)" test "$(result b-lo-udp)" = ok
check "the same for UDP (A fail)" test "$(result a-lo-udp)" = fail
check "TCP to an address nobody answers: fail" test "$(result a-silent-tcp)" = fail
check "UDP to an address nobody answers: fail" test "$(result a-silent-udp)" = fail

# 60 silent drops and 60 answered probes, 120 threads: about one timeout.
jobs=$(for i in $(seq 60); do
	echo "drop$i /run/netns/$A tcp $SILENT 80"
	echo "pass$i /run/netns/$A tcp $IP_B 80"
done)
t0=$(date +%s%N)
matrix --parallel 120 <<<"$jobs" >"$OUT" 2>/dev/null
ms=$((($(date +%s%N) - t0) / 1000000))
check "120 jobs: 60 ok, 60 fail" \
	test "$(grep -c ' ok$' "$OUT") $(grep -c ' fail$' "$OUT")" = "60 60"
check "60 timeouts of $T ms in parallel take less than 3x$T ms (took $ms ms)" \
	test "$ms" -lt $((3 * T))
t0=$(date +%s%N)
matrix --parallel 20 <<<"$jobs" >"$OUT" 2>/dev/null
ms=$((($(date +%s%N) - t0) / 1000000))
check "with --parallel 20 the 60 timeouts take 3 rounds (took $ms ms)" \
	test "$ms" -ge $((3 * T)) -a "$ms" -lt $((6 * T))

matrix <<<"x /run/netns/$A tcp $IP_B" >"$OUT" 2>/dev/null
rc=$?
check "a line with 4 fields: exit 2, nothing runs" test "$rc" -eq 2 -a ! -s "$OUT"
matrix <<<"x /run/netns/$A sctp $IP_B 80" >"$OUT" 2>/dev/null
check "an unknown protocol: exit 2" test $? -eq 2
matrix <<<"x /run/netns/$A tcp not-an-ip 80" >"$OUT" 2>/dev/null
check "a name instead of an address: exit 2" test $? -eq 2
matrix <<<"x /run/netns/$A tcp $IP_B 0" >"$OUT" 2>/dev/null
check "port 0: exit 2" test $? -eq 2
printf 'gone /run/netns/%s-none tcp %s 80\nfine /run/netns/%s tcp %s 80\n' \
	"$ID" "$IP_B" "$A" "$IP_B" | matrix >"$OUT" 2>/dev/null
rc=$?
check "a namespace that does not exist: 'error', exit 3, the other job still runs" \
	test "$rc $(result gone) $(result fine)" = "3 error ok"
printf 'notns /proc/self/status tcp %s 80\n' "$IP_B" | matrix >"$OUT" 2>/dev/null
check "a file that is not a namespace: 'error'" test "$(result notns)" = error
matrix </dev/null >"$OUT" 2>&1
check "no jobs: exit 0, no output" test $? -eq 0 -a ! -s "$OUT"
printf 'own - tcp %s 80\n' "$IP_B" |
	ip netns exec "$A" "$BUILD/sluice-probe" matrix --timeout "$T" >"$OUT" 2>/dev/null
check "NETNS_PATH '-' probes from the probe's own namespace (run in A)" \
	test "$(result own)" = ok
check "--verbose tags the failure's reason with the job ID" \
	bash -c "'$BUILD/sluice-probe' matrix --verbose <<<'v /run/netns/$A tcp $IP_B 81' 2>&1 >/dev/null |
		grep -q 'v: connect to'"

summary
