#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# SluicePrefilter end to end: two nodes of tests/multinode/lib.sh (native
# routing), a pod on node 1 serving UDP, and two clients outside the
# cluster on the physical network (client-a 10.200.0.100, client-b
# 10.200.0.101, routed to the pod CIDR through node 1's address).
#
#   a) refusals: sluicectl apply of a SluicePrefilter whose deny covers a
#      node's address (node2's, through its Node object; node1's own
#      --node-ip), a pod CIDR, or overlaps one, is refused with the message
#      naming the entry and what it covers, and nothing is applied;
#   b) a valid one is applied: get prefilters and get prefilter NAME show it
#      with its entries, the pinned maps hold exactly its prefixes;
#   c) an agent restart reads the maps back and rewrites nothing (the maps'
#      contents are the same, status says 0 written);
#   d) the datapath: client-a is cut off from the pod while client-b keeps
#      working, the drop counters of get prefilters and metrics grow, and
#      deleting the object restores access. A build whose loaded programs
#      do not read sluice_pf4_v1 at all fails here;
#   e) a Node applied later whose address an applied entry covers: that
#      entry is left out at the next sync, the object's status says why.
#
# Last line: "prefilter: N passed, M failed".
# shellcheck source-path=SCRIPTDIR
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TEST_NAME=prefilter
# shellcheck source=../lib/common.sh
source "$HERE/../lib/common.sh"
# shellcheck source=../multinode/lib.sh
source "$HERE/../multinode/lib.sh"

need_root
for bin in sluice-agent sluice-cni sluicectl sluice-probe; do
	[ -x "$BUILD/$bin" ] || { log "$BUILD/$bin missing (run make)"; exit 1; }
done
for tool in jq bpftool; do
	command -v "$tool" >/dev/null || { log "$tool missing (run make deps)"; exit 1; }
done

P=slpf$$
MN_DIR=$(mktemp -d /tmp/sluice-prefilter.XXXXXX)
CLEANUP_PATHS+=("$MN_DIR")
BPFFS1=/sys/fs/bpf/$P-node1
ctl() { mn_ctl "$P" 1 "$@"; }

mn_topology "$P" 2 || { log "topology"; exit 1; }
mn_start_agent "$P" 1 native || exit 1
AGENT1=$MN_AGENT_PID
{ mn_node_json 1; mn_node_json 2; } | mn_list | ctl apply -f - >/dev/null || {
	log "Node objects"; exit 1; }

netns_add "$P-pod1"
res=$(mn_pod_add "$P" 1 pod1) || { log "pod1: $res"; exit 1; }
POD_IP=$(jq -r '.ips[0].address' <<<"$res" | cut -d/ -f1)
serve "$P-pod1" --udp 8081 || { log "echo server in pod1"; exit 1; }

for c in a b; do
	netns_add "$P-client-$c"
	ip -n "$P-phys" link add "cl$c" mtu "$MN_MTU" type veth peer name eth0 mtu "$MN_MTU" \
		netns "$P-client-$c"
	ip -n "$P-phys" link set "cl$c" master br0 up
	ip -n "$P-client-$c" link set eth0 up
done
ip -n "$P-client-a" addr add 10.200.0.100/24 dev eth0
ip -n "$P-client-b" addr add 10.200.0.101/24 dev eth0
for c in a b; do
	ip -n "$P-client-$c" route add "$(mn_pod_cidr 1)" via "$(mn_node_ip 1)"
done

reaches() { probe "$P-client-$1" udp "$POD_IP" 8081 --timeout 500 >/dev/null 2>&1; }
blocked() { ! reaches "$1"; }

echo "== before any prefilter"
check "client-a reaches pod1 (UDP)" eventually 5 reaches a
check "client-b reaches pod1 (UDP)" reaches b

pf_doc() { # NAME DENY-JSON [EXCEPT-JSON]
	jq -cn --arg name "$1" --argjson deny "$2" --argjson except "${3:-[]}" '
		{apiVersion: "sluice.io/v1alpha1", kind: "SluicePrefilter",
		 metadata: {name: $name}, spec: ({deny: $deny} +
			(if $except == [] then {} else {except: $except} end))}'
}

# refused DESC EXPECTED DENY [EXCEPT]: apply fails, names what it covers,
# and nothing of it is stored.
refused() {
	local desc=$1 want=$2 out
	out=$(pf_doc bad "$3" "${4:-[]}" | ctl apply -f - 2>&1) && {
		echo "applied: $out"; return 1; }
	grep -qF -- "$want" <<<"$out" || { echo "error lacks '$want': $out"; return 1; }
	grep -q "nothing was applied" <<<"$out" || { echo "$out"; return 1; }
	ctl get prefilters -o json | jq -e '.items == []' >/dev/null
}

echo "== a) refusals at sluicectl apply"
check "a deny covering the nodes' addresses is refused, naming the first" refused nodes \
	"SluicePrefilter bad: spec.deny[1] 10.200.0.0/24 covers node node1's address 10.200.0.11; narrow it or add an except" \
	'["203.0.113.0/24", "10.200.0.0/24"]'
check "a /32 of node2's address is refused" refused node2 \
	"spec.deny[0] 10.200.0.12/32 covers node node2's address 10.200.0.12" '["10.200.0.12/32"]'
check "a deny inside a pod CIDR is refused" refused podcidr \
	"spec.deny[0] 10.210.2.64/26 overlaps the pod CIDR 10.210.2.0/24 of node node2" \
	'["10.210.2.64/26"]'
check "a deny holding this node's pod CIDR is refused" refused podcidr \
	"spec.deny[0] 10.210.0.0/16 overlaps this node's pod CIDR 10.210.1.0/24" '["10.210.0.0/16"]'
check "an except of another address does not help" refused except \
	"covers node node1's address 10.200.0.11" '["10.200.0.0/24"]' '["10.200.0.100/32"]'

echo "== b) a valid prefilter"
PF=$(pf_doc block-a '["10.200.0.96/28", "198.51.100.7/32", "203.0.113.0/24"]' \
	'["10.200.0.96/31", "10.200.0.101/32", "10.200.0.98/31", "10.200.0.102/31", "10.200.0.104/29"]')
# 10.200.0.96/28 minus the excepts leaves 10.200.0.100/32: client-a only.
check "sluicectl apply takes it" bash -c "'$BUILD/sluicectl' --socket '$(mn_sock "$P" 1)' apply -f - <<<'$PF'"
pf_listed() {
	ctl get prefilters -o json | jq -e '
		.items | length == 1 and .[0].name == "block-a" and .[0].entries == 3 and
		.[0].applied == true and .[0].nodeSelectorMatch == true and .[0].leftOutEntries == 0' \
		>/dev/null
}
check "get prefilters lists it: 3 entries, applied" pf_listed
check "get prefilters prints its table" bash -c \
	"'$BUILD/sluicectl' --socket '$(mn_sock "$P" 1)' get prefilters | grep -Eq '^block-a +3 +yes +0 +yes \\(all nodes\\) +ok'"
pf_entries() {
	ctl get prefilter block-a -o json | jq -e '
		[.deny[] | .cidr] == ["10.200.0.96/28", "198.51.100.7/32", "203.0.113.0/24"] and
		all(.deny[]; .applied and .counterSlot > 0)' >/dev/null
}
check "get prefilter block-a shows each entry with its counter slot" pf_entries
# The maps: trie = 2 deny + 5 except prefixes (none /32 except the host
# ones), hash = the /32s (198.51.100.7 and 10.200.0.101).
map_dump() { bpftool -j map dump pinned "$BPFFS1/$1" | jq -c 'sort_by(.key)'; }
maps_exact() {
	[ "$(map_dump sluice_pf4_v1 | jq length)" -eq 6 ] &&
		[ "$(map_dump sluice_pfh4_v1 | jq length)" -eq 2 ]
}
check "the pinned maps hold exactly its prefixes (6 in the trie, 2 in the hash)" maps_exact

echo "== c) an agent restart changes nothing"
BEFORE=$( (map_dump sluice_pf4_v1; map_dump sluice_pfh4_v1; map_dump sluice_pfcfg_v1) )
kill "$AGENT1"
wait "$AGENT1" 2>/dev/null
mn_start_agent "$P" 1 native || exit 1
AGENT1=$MN_AGENT_PID
AFTER=$( (map_dump sluice_pf4_v1; map_dump sluice_pfh4_v1; map_dump sluice_pfcfg_v1) )
check "the maps are the same after a restart" test "$BEFORE" = "$AFTER"
check "the restarted agent's prefilter sync wrote nothing" bash -c \
	"'$BUILD/sluicectl' --socket '$(mn_sock "$P" 1)' status -o json | jq -e '.controlPlane.lastPrefilterSync | .written == 0 and .removed == 0 and .prefixes == 8'"
check "the object is still listed after the restart" pf_listed

echo "== d) the datapath drops what the maps say"
# Does any program loaded from this agent's pins read the trie yet?
datapath_reads_maps() {
	local id
	id=$(bpftool -j map show pinned "$BPFFS1/sluice_pf4_v1" | jq -r .id) || return 1
	bpftool -j prog show | jq -e --argjson id "$id" \
		'any(.[]; (.map_ids // []) | index($id) != null)' >/dev/null
}
check "a loaded program of this agent reads sluice_pf4_v1" datapath_reads_maps
if datapath_reads_maps; then
	check "client-a (10.200.0.100) is cut off" eventually 5 blocked a
	check "client-b (10.200.0.101, an except) keeps working" reaches b
	for _ in 1 2 3; do reaches a; done
	drops() {
		ctl get prefilter block-a -o json | jq -e '.dropped.packets > 0 and
			(.deny[] | select(.cidr == "10.200.0.96/28") | .dropped.packets > 0)' >/dev/null
	}
	check "get prefilter counts the drops, per object and per entry" eventually 5 drops
	check "sluicectl metrics shows the object's drops" bash -c \
		"'$BUILD/sluicectl' --socket '$(mn_sock "$P" 1)' metrics -o json | jq -e '.prefilters[] | select(.name == \"block-a\") | .packets > 0'"
	prom_drops() { # /metrics, as Prometheus parses it, agrees with sluicectl metrics
		local want
		want=$("$BUILD/sluicectl" --socket "$(mn_sock "$P" 1)" metrics -o json |
			jq '.prefilters[] | select(.name == "block-a") | .packets')
		nsenter --net="/run/netns/$P-node1" curl -sf --max-time 5 http://127.0.0.1:9962/metrics |
			/usr/bin/python3 "$ROOT/tests/e2e/promparse.py" |
			jq -e --argjson w "$want" '$w > 0 and ([.sluice_prefilter_drops_total.samples[] |
				select(.labels.prefilter == "block-a") | .value] == [$w]) and
				([.sluice_drops_total.samples[] | select(.labels.reason == "drop-prefilter") | .value][0] >= $w)'
	}
	check "/metrics: sluice_prefilter_drops_total{prefilter=\"block-a\"} as sluicectl metrics says" prom_drops
	ctl delete -f - <<<"$PF" >/dev/null
	check "deleted: client-a reaches pod1 again" eventually 5 reaches a
	ctl apply -f - <<<"$PF" >/dev/null
fi

echo "== e) a Node that appears later"
NODE9=$(jq -cn '{apiVersion: "v1", kind: "Node", metadata: {name: "node9"},
	status: {addresses: [{type: "InternalIP", address: "203.0.113.50"}]}}')
check "a Node whose address an applied entry covers is applied" \
	bash -c "'$BUILD/sluicectl' --socket '$(mn_sock "$P" 1)' apply -f - <<<'$NODE9' >/dev/null"
left_out() {
	ctl get prefilter block-a -o json | jq -e '.applied and .leftOutEntries == 1 and
		.leftOut[0].index == 2 and (.leftOut[0].reason |
		test("spec.deny\\[2\\] 203.0.113.0/24 covers node node9.s address 203.0.113.50"))' \
		>/dev/null
}
check "its entry is left out at the next sync, the status says why" left_out
check "and it is gone from the trie" test "$(map_dump sluice_pf4_v1 | jq length)" -eq 5
check "the agent logged it" grep -q "SluicePrefilter block-a: spec.deny\[2\] 203.0.113.0/24 covers node node9's address 203.0.113.50; .*left out" \
	"$(mn_node_dir "$P" 1)/agent.log"
ctl delete -f - <<<"$NODE9" >/dev/null
check "the Node deleted: the entry is back" eventually 5 bash -c \
	"'$BUILD/sluicectl' --socket '$(mn_sock "$P" 1)' get prefilter block-a -o json | jq -e '.leftOutEntries == 0'"

ctl delete -f - <<<"$PF" >/dev/null
check "deleted: the maps are empty" bash -c \
	"[ \"\$(bpftool -j map dump pinned $BPFFS1/sluice_pf4_v1 | jq length)\" -eq 0 ] && [ \"\$(bpftool -j map dump pinned $BPFFS1/sluice_pfh4_v1 | jq length)\" -eq 0 ]"

summary
