#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Load on the agent's API socket:
#   (a) N_ADD CNI ADDs started at once (real sluice-cni processes: a node
#       full of pods after a reboot) all succeed, with distinct addresses;
#       p50/p99/max printed;
#   (b) a large change applied (bench/controlplane_gen.py's cluster of
#       WORLD_PODS pods, WORLD_PODS/10 policies, in one `sluicectl apply`)
#       while ADDs keep arriving one after another: every ADD succeeds,
#       none waits longer than APPLY_ADD_MAX_MS; apply time and the ADDs'
#       latency printed;
#   (c) stalled clients (tests/tools/stall.py): two connect and send
#       nothing, two send half a request, two ask for a large answer (get
#       pods, hundreds of KiB: more than the socket buffers) and never read
#       it. While they hang an ADD completes within STALL_ADD_MAX_MS, well
#       under their 2 s deadline; the silent ones are closed at their read
#       deadline, the non-readers at their write deadline with their answer
#       cut.
#
#   tests/e2e/apiload.sh                         N_ADD=100 WORLD_PODS=9000
set -uo pipefail
TEST_NAME=apiload
source "$(dirname "$0")/../lib/common.sh"
need_root

N_ADD=${N_ADD:-100}
WORLD_PODS=${WORLD_PODS:-9000}
STALL_ADD_MAX_MS=${STALL_ADD_MAX_MS:-1000}
APPLY_ADD_MAX_MS=${APPLY_ADD_MAX_MS:-1000}
DEADLINE_MS=2000	# API_READ_DEADLINE_MS, API_WRITE_DEADLINE_MS (agent/server.h)

ID=slal$$
NODE=$ID-node
DIR=$(mktemp -d /tmp/sluice-apiload.XXXXXX)
BPFFS=/sys/fs/bpf/$ID
CIDR=10.253.0.0/24
SOCK=$DIR/agent.sock
CLEANUP_PATHS+=("$DIR" "$BPFFS")
CONF=$(printf '{"cniVersion":"1.1.0","name":"sluice","type":"sluice-cni","socket":"%s"}' "$SOCK")
ctl() { "$BUILD/sluicectl" --socket "$SOCK" "$@"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# pct P: the P-th percentile of the numbers on stdin
pct() { sort -n | awk -v p="$1" '{a[NR]=$1} END {i=int(NR*p/100+0.999); if (i<1) i=1; print a[i]}'; }
# timed_add I: ADD of pod I in namespace $ID-aI; prints "rc ms address"
timed_add() {
	local t0 out rc
	t0=$(now_ms)
	out=$(cni ADD "c$ID-$1" "/run/netns/$ID-a$1" "$CONF" 2>>"$DIR/cni.log")
	rc=$?
	echo "$rc $(($(now_ms) - t0)) $(jq -r '.ips[0].address // "-"' <<<"$out" 2>/dev/null)"
}
# (wait with pids: a bare wait would wait for the agent too)
del_all() {
	local i pids=()
	for ((i = 0; i < N_ADD; i++)); do
		cni DEL "c$ID-$i" "/run/netns/$ID-a$i" "$CONF" >/dev/null 2>&1 &
		pids+=($!)
	done
	wait "${pids[@]}"
}
# The world's Services are read, not translated: this is about the API.
AGENT_ARGS="${AGENT_ARGS:-} --kube-proxy-replacement off"

netns_add "$NODE"
start_agent "$NODE" "$CIDR" "$DIR" || exit 1
for ((i = 0; i < N_ADD; i++)); do
	netns_add "$ID-a$i"
done

echo "== (a) $N_ADD CNI ADDs at once"
t0=$(now_ms)
pids=()
for ((i = 0; i < N_ADD; i++)); do
	timed_add "$i" >"$DIR/a.$i" &
	pids+=($!)
done
wait "${pids[@]}"
wall=$(($(now_ms) - t0))
cat "$DIR"/a.* >"$DIR/a"
ok=$(awk '$1 == 0' "$DIR/a" | wc -l)
check "all $N_ADD ADDs succeeded ($ok)" test "$ok" -eq "$N_ADD"
n=$(awk '$1 == 0 {print $3}' "$DIR/a" | sort -u | wc -l)
check "with $N_ADD distinct addresses ($n)" test "$n" -eq "$N_ADD"
check "the agent has $N_ADD endpoints" bash -c "'$BUILD/sluicectl' --socket '$SOCK' status | grep -Eq '^endpoints: +$N_ADD\$'"
echo "figures: $N_ADD ADDs at once: all done in $wall ms; ADD p50 $(awk '{print $2}' "$DIR/a" | pct 50) ms," \
	"p99 $(awk '{print $2}' "$DIR/a" | pct 99) ms, max $(awk '{print $2}' "$DIR/a" | pct 100) ms"
del_all
check "and all gone after $N_ADD DELs at once" bash -c "'$BUILD/sluicectl' --socket '$SOCK' status | grep -Eq '^endpoints: +0\$'"

echo "== (b) ADDs while a large change ($WORLD_PODS pods, $((WORLD_PODS / 10)) policies) is applied"
/usr/bin/python3 "$ROOT/bench/controlplane_gen.py" "$WORLD_PODS" >"$DIR/world.json"
(
	t0=$(now_ms)
	ctl apply -f "$DIR/world.json" >"$DIR/apply.out" 2>&1
	echo "$? $(($(now_ms) - t0))" >"$DIR/apply.rc"
) &
applier=$!
: >"$DIR/b"
i=0
# One ADD after another for as long as the apply runs (the first starts
# with it), at most N_ADD.
while [ ! -s "$DIR/apply.rc" ] && [ "$i" -lt "$N_ADD" ]; do
	timed_add "$i" >>"$DIR/b"
	i=$((i + 1))
done
wait "$applier"
read -r apply_rc apply_ms <"$DIR/apply.rc"
check "the large change was applied" test "$apply_rc" -eq 0
[ "$apply_rc" -eq 0 ] || tail -n 3 "$DIR/apply.out"
ok=$(awk '$1 == 0' "$DIR/b" | wc -l)
check "every ADD during the apply succeeded ($ok of $i)" test "$ok" -eq "$i" -a "$i" -gt 0
max=$(awk '{print $2}' "$DIR/b" | pct 100)
check "no ADD during the apply took ${APPLY_ADD_MAX_MS} ms or more (max $max ms)" test "$max" -lt "$APPLY_ADD_MAX_MS"
echo "figures: apply of $WORLD_PODS pods and $((WORLD_PODS / 10)) policies: $apply_ms ms; $i ADDs meanwhile:" \
	"p50 $(awk '{print $2}' "$DIR/b" | pct 50) ms, p99 $(awk '{print $2}' "$DIR/b" | pct 99) ms, max $max ms;" \
	"$(ctl status | sed -n 's/^policy sync: *//p')"
del_all

echo "== (c) stalled clients: silent, half a request, not reading a large answer"
full=$(/usr/bin/python3 "$ROOT/tests/tools/stall.py" read "$SOCK" | sed -n 's/^received \([0-9]*\) bytes, whole$/\1/p')
check "a reading client gets the whole answer to get pods (${full:-?} bytes)" test -n "$full"
pids=()
for m in idle.1 idle.2 half.1 half.2; do
	/usr/bin/python3 "$ROOT/tests/tools/stall.py" "${m%.*}" "$SOCK" >"$DIR/stall.$m" 2>&1 &
	pids+=($!)
done
for k in 1 2; do
	/usr/bin/python3 "$ROOT/tests/tools/stall.py" noread "$SOCK" $((DEADLINE_MS * 2 / 1000)) \
		>"$DIR/stall.noread.$k" 2>&1 &
	pids+=($!)
done
CLEANUP_PIDS+=("${pids[@]}")
sleep 0.5	# they are connected and hanging (and the non-readers' answers sent as far as they go)
read -r rc add_ms _ < <(timed_add 0)
check "an ADD while they hang succeeds" test "$rc" -eq 0
check "within ${STALL_ADD_MAX_MS} ms ($add_ms ms), well under their ${DEADLINE_MS} ms deadline" \
	test "$add_ms" -lt "$STALL_ADD_MAX_MS"
t0=$(now_ms)
ctl status >/dev/null
status_ms=$(($(now_ms) - t0))
check "sluicectl status while they hang: ${status_ms} ms" test "$status_ms" -lt "$STALL_ADD_MAX_MS"
wait "${pids[@]}"
for f in "$DIR"/stall.idle.* "$DIR"/stall.half.*; do
	s=$(sed -n 's/^closed after \([0-9.]*\) s.*/\1/p' "$f")
	check "$(basename "$f" | cut -d. -f2) client closed at its read deadline (after ${s:-never} s)" \
		awk -v s="${s:-99}" -v d="$DEADLINE_MS" 'BEGIN {exit !(s >= d / 1000 - 0.1 && s < d / 1000 + 1.5)}'
done
check "the silent clients were told why" grep -q "must arrive within" "$DIR"/stall.half.*
for f in "$DIR"/stall.noread.*; do
	got=$(sed -n 's/^received \([0-9]*\) bytes, cut$/\1/p' "$f")
	check "non-reading client cut at its write deadline: ${got:-?} of $full bytes ($(cat "$f"))" \
		test -n "$got" -a "${got:-0}" -lt "$full"
done
check "the agent logged the non-readers" \
	test "$(grep -c 'did not take its answer within' "$DIR/agent.log")" -eq 2
echo "figures: while 6 clients stall: ADD $add_ms ms, status $status_ms ms; answer not read: $full bytes"
cni DEL "c$ID-0" "/run/netns/$ID-a0" "$CONF" >/dev/null
summary
