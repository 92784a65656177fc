#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Crash-consistent state (docs/RELIABILITY.md). One node, four pods through
# the real CNI plugin under a NetworkPolicy and a SluicePrefilter; the
# agent is killed with SIGKILL and a power cut is simulated on its
# --state-dir: endpoint records, IPAM reservations, the identity table, the
# prefilter slots truncated to 0 bytes, cut in half or filled with garbage,
# a torn record at the objects journal's end, and temporaries left behind.
# The restarted agent must repair every file from the kernel and say so: the
# pods keep their addresses and keep talking under the policy, a new ADD
# never gets an address in use. An objects snapshot that does not parse
# stops the agent (starting empty would drop every policy) while the pods
# keep talking on the pinned maps. DEL of every pod leaves no reservation,
# veth, endpoint map entry or record. Then storage faults: with the state
# directory on a full tmpfs, and read-only, ADD fails naming the directory
# and the cause, and leaves nothing behind; an agent starting on a
# read-only one holding addresses it cannot release comes up.
set -uo pipefail
TEST_NAME=crash
source "$(dirname "$0")/../lib/common.sh"
need_root

ID=slu$$
NODE=$ID-node
DIR=$(mktemp -d /tmp/sluice-crash.XXXXXX)
BPFFS=/sys/fs/bpf/$ID
CIDR=10.247.0.0/29 # .2-.6: four pods and one free address
STATE=$DIR/state
SOCK=$DIR/agent.sock
NS=crash
CLEANUP_PATHS+=("$DIR" "$BPFFS")
TINY=$DIR/tiny/state
crash_cleanup() {
	local rc=$?
	umount -l "$TINY" 2>/dev/null
	(exit "$rc")
	cleanup
}
trap crash_cleanup EXIT

CONF=$(printf '{"cniVersion":"1.0.0","name":"sluice","type":"sluice-cni","socket":"%s"}' "$SOCK")
ctl() { "$BUILD/sluicectl" --socket "$SOCK" "$@"; }
declare -A IP
pod_add() { # N: pod N of namespace crash, echo servers in it
	local out
	netns_add "$ID-p$1"
	out=$(POD_NAMESPACE=$NS cni ADD "c$ID$1" "/run/netns/$ID-p$1" "$CONF")
	IP[$1]=$(jq -r '.ips[0].address // empty' <<<"$out" | cut -d/ -f1)
	[ -n "${IP[$1]}" ] || { echo "ADD of pod $1: $out"; return 1; }
	serve "$ID-p$1"
}
pod_del() { POD_NAMESPACE=$NS cni DEL "c$ID$1" "/run/netns/$ID-p$1" "$CONF" >/dev/null; }
reach() { probe "$ID-p$1" tcp "${IP[$2]}" 8080 --timeout 1000 >/dev/null; }
all_talk() { reach 1 2 && reach 2 3 && reach 3 4 && reach 4 1; }
record() { echo "$STATE/endpoints/c$ID${1}_eth0.json"; }
reservation() { echo "$STATE/ipam/${IP[$1]}"; }
half() { truncate -s $(($(stat -c %s "$1") / 2)) "$1"; }
garbage() { head -c 300 /dev/urandom >"$1"; }
ep_map_len() { bpftool map dump pinned "$BPFFS/sluice_ep_v2" -j | jq length; }
veths() { ip -n "$NODE" -o link show | grep -c ': lxc' || true; }
reservations() { find "$1/ipam" -maxdepth 1 -name '10.*' | wc -l; }
repaired() { grep -q "repair: .*$1" "$DIR/agent.log" || { echo "no repair of $1 logged"; return 1; }; }

# start_agent, with more time to come up on a loaded machine.
start() {
	start_agent "$NODE" "$CIDR" "$DIR" 2>/dev/null && return 0
	# status says "not ready" when the pod CIDR is full: ask for endpoints.
	eventually 60 ctl get endpoints >/dev/null 2>&1 && return 0
	log "the agent did not come up"
	tail -n 30 "$DIR/agent.log" >&2
	return 1
}

netns_add "$NODE"
start || exit 1

echo "== four pods under a NetworkPolicy and a SluicePrefilter"
ctl apply -f - >/dev/null <<YAML || not_ok "apply the objects"
apiVersion: v1
kind: Namespace
metadata: {name: $NS}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: $NS, name: web-only}
spec:
  podSelector: {}
  ingress: [{from: [{podSelector: {matchLabels: {app: web}}}]}]
---
apiVersion: sluice.io/v1alpha1
kind: SluicePrefilter
metadata: {name: block-doc}
spec: {deny: [203.0.113.0/24]}
YAML
for i in 1 2 3 4; do
	ctl apply -f - >/dev/null <<YAML || not_ok "apply pod $i"
apiVersion: v1
kind: Pod
metadata: {namespace: $NS, name: c$ID$i, labels: {app: web}}
YAML
	check "ADD pod $i" pod_add "$i"
done
check "the pods talk (policy: app=web only)" eventually 5 all_talk
# The identity table is written at most every 5 s, by a sync: nudge syncs
# (a label on the namespace) until it is there.
ids_saved() {
	[ -s "$STATE/identities.json" ] && return 0
	ctl apply -f - >/dev/null <<<"{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"$NS\",\"labels\":{\"n\":\"$RANDOM\"}}}"
	return 1
}
eventually 15 ids_saved
for f in identities.json prefilter-slots.json objects.json objects.journal; do
	[ -e "$STATE/$f" ] || : >"$STATE/$f.absent"
done
check "every kind of state file exists before the cut" bash -c "! ls '$STATE'/*.absent 2>/dev/null"

echo "== SIGKILL, a power cut's damage on the state dir, restart"
{ kill -9 "$AGENT_PID"; wait "$AGENT_PID"; } 2>/dev/null
: >"$(record 1)"
half "$(record 2)"
garbage "$(record 3)"
garbage "$(reservation 1)"
: >"$(reservation 2)"
half "$(reservation 4)"
half "$STATE/identities.json"
# The journal is appended to and fdatasynced per save: a power cut tears
# at most the record being written, at its end (records before it count).
head -c 37 /dev/urandom >>"$STATE/objects.journal"
: >"$STATE/prefilter-slots.json"
for d in "$STATE" "$STATE/endpoints" "$STATE/ipam"; do
	: >"$d/.sf-tmp-4194303.1-0" # a dead process's temporary
done
start || exit 1
check "the pods keep talking" eventually 5 all_talk
check "sluicectl shows the four endpoints at their addresses" bash -c "
	ctl() { '$BUILD/sluicectl' --socket '$SOCK' \"\$@\"; }
	ctl get endpoints -o json | jq -e '[.endpoints[].ip] | sort == ([\"${IP[1]}\", \"${IP[2]}\", \"${IP[3]}\", \"${IP[4]}\"] | sort)'"
check "the rebuilt endpoints kept their pods' names" bash -c "
	'$BUILD/sluicectl' --socket '$SOCK' get endpoints -o json |
		jq -e '[.endpoints[] | select(.namespace == \"$NS\")] | length == 4'"
for i in 1 2 4; do
	check "pod $i's reservation names it again" \
		bash -c "[ \"\$(cat '$(reservation "$i")')\" = 'c$ID$i/eth0' ]"
done
for i in 1 2 3; do
	check "endpoint record of pod $i rebuilt (valid JSON, ready)" \
		jq -e '.state == "ready"' "$(record "$i")"
	check "the log names pod $i's record" repaired "endpoints/c$ID${i}_eth0.json"
done
for i in 1 2 4; do
	check "the log names pod $i's reservation" repaired "ipam/${IP[$i]}"
done
for f in identities.json prefilter-slots.json; do
	check "the log names $f" repaired "$f"
done
check "the log names objects.journal" grep -q "objects.journal" "$DIR/agent.log"
check "the crash's temporaries are gone" \
	bash -c "! ls -a '$STATE' '$STATE/endpoints' '$STATE/ipam' | grep -q '^\.sf-tmp-'"
check "a new ADD gets the one free address" pod_add 5
check "  ...not one in use" bash -c "! printf '%s\n' ${IP[1]} ${IP[2]} ${IP[3]} ${IP[4]} | grep -qx '${IP[5]:-none}'"
netns_add "$ID-p6"
out=$(POD_NAMESPACE=$NS cni ADD "c${ID}6" "/run/netns/$ID-p6" "$CONF")
check "the next ADD finds the range full (no address handed out twice)" \
	grep -q "no free addresses left" <<<"$out"

check "the NetworkPolicy is still stored" bash -c "'$BUILD/sluicectl' --socket '$SOCK' get policies -A | grep -q web-only"
{ kill -9 "$AGENT_PID"; wait "$AGENT_PID"; } 2>/dev/null

echo "== an unreadable objects snapshot stops the agent (no policy is dropped)"
garbage "$STATE/objects.json"
rm -f "$SOCK"
nsenter --net="/run/netns/$NODE" "$BUILD/sluice-agent" --pod-cidr "$CIDR" --node-name "$NODE" \
	--socket "$SOCK" --state-dir "$STATE" --bpffs "$BPFFS" >"$DIR/refused.log" 2>&1
check "the agent refuses to start" test $? -ne 0
check "  ...naming objects.json and the way out" \
	grep -q "cannot read $STATE/objects.json: .*move it and objects.journal away" "$DIR/refused.log"
check "  ...the pods keep talking meanwhile" eventually 5 all_talk
check "  ...and the policy maps are untouched (pinned, not emptied)" \
	bash -c "[ \"\$(bpftool map dump pinned '$BPFFS/sluice_pol_v1' -j | jq length)\" -gt 0 ]"
mv "$STATE/objects.json" "$STATE/objects.json.bad"
mv "$STATE/objects.journal" "$STATE/objects.journal.bad"
start || exit 1
check "moved away as told, the agent starts with no stored objects" \
	bash -c "! '$BUILD/sluicectl' --socket '$SOCK' get policies -A | grep -q web-only"

echo "== DEL of every pod leaves nothing"
for i in 1 2 3 4 5 6; do pod_del "$i"; done
check "no reservation left" test "$(reservations "$STATE")" = 0
check "no endpoint record left" bash -c "! ls '$STATE/endpoints' | grep -q json"
check "no pod veth left" test "$(veths)" = 0
check "the endpoint map is empty" test "$(ep_map_len)" = 0
echo "== storage faults: a full and a read-only state directory"
mkdir -p "$TINY"
mount -t tmpfs -o size=512k,mode=0700 tmpfs "$TINY" || { not_ok "mount a tmpfs"; exit 1; }
rm -f "$SOCK"
cp "$DIR/agent.log" "$DIR/agent-1.log"
# A node of its own with a /24: room for more addresses nobody owns than
# one round of the start-up release takes (64).
NODE=$ID-node2
BPFFS=/sys/fs/bpf/$ID-2
CIDR=10.246.0.0/24
CLEANUP_PATHS+=("$BPFFS")
netns_add "$NODE"
STATE=$TINY
AGENT_ARGS="--state-dir $TINY" start || exit 1
nothing_made() { # what a failed ADD must not leave
	[ "$(reservations "$TINY")" = 0 ] && [ "$(veths)" = 0 ] && [ "$(ep_map_len)" = 0 ] &&
		! ls "$TINY/endpoints" | grep -q json
}
storage_fault() { # KIND WANT
	local out
	out=$(POD_NAMESPACE=$NS cni ADD "c${ID}f" "/run/netns/$ID-p1" "$CONF")
	check "$1: ADD fails naming the directory and the cause" \
		grep -q "state directory $TINY is $2" <<<"$out"
	check "$1: ...and says no address was allocated" grep -q "no address was allocated" <<<"$out"
	check "$1: ...not 'no free addresses left'" bash -c "! grep -q 'no free addresses' <<<'$out'"
	check "$1: no veth, reservation, map entry or record made" nothing_made
}
head -c 1G /dev/zero >"$TINY/filler" 2>/dev/null
storage_fault "full" "full (No space left on device)"
rm -f "$TINY/filler"
mount -o remount,ro "$TINY"
storage_fault "read-only" "read-only (Read-only file system)"
mount -o remount,rw "$TINY"
check "with the storage back, the same ADD works" pod_add 1
pod_del 1
check "and its DEL leaves nothing" nothing_made

echo "== start-up on a read-only state dir holding 100 addresses nobody owns"
{ kill -9 "$AGENT_PID"; wait "$AGENT_PID"; } 2>/dev/null
for i in $(seq 10 109); do echo "gone$i/eth0" >"$TINY/ipam/10.246.0.$i"; done
mount -o remount,ro "$TINY"
rm -f "$SOCK"
if AGENT_ARGS="--state-dir $TINY" start; then
	ok "the agent comes up (the release it cannot make does not loop)"
else
	not_ok "the agent comes up (the release it cannot make does not loop)"
fi
check "  ...and keeps the addresses reserved" test "$(reservations "$TINY")" = 100
check "  ...saying why" bash -c "grep -q 'cannot release address 10.246.0.[0-9]* (no pod holds it): Read-only file system' '$DIR/agent.log' || { tail -n 12 '$DIR/agent.log'; false; }"
mount -o remount,rw "$TINY"
summary
