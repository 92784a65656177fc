#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# End to end on one node: an agent in a node network namespace, four pods
# wired up by the real sluice-cni binary with the environment and stdin a
# runtime sends, real traffic between them, DEL leaving nothing behind, bad
# input refused with the right CNI code, and an agent killed with SIGKILL
# while two pods keep a TCP connection going.
set -uo pipefail
TEST_NAME=e2e
source "$(dirname "$0")/../lib/common.sh"
need_root

ID=sle$$
NODE=$ID-node
DIR=$(mktemp -d /tmp/sluice-e2e.XXXXXX)
BPFFS=/sys/fs/bpf/$ID
CIDR=10.248.0.0/24
ROUTER=10.248.0.1
CLEANUP_PATHS+=("$DIR" "$BPFFS")
SOCK=$DIR/agent.sock
ctl() { "$BUILD/sluicectl" --socket "$SOCK" "$@"; }
conf() { printf '{"cniVersion":"%s","name":"sluice","type":"sluice-cni","socket":"%s"}' "$1" "$SOCK"; }

netns_add "$NODE"
start_agent "$NODE" "$CIDR" "$DIR" || exit 1

echo "== ADD: four pods, one per CNI version"
VERSIONS=(0.3.1 0.4.0 1.0.0 1.1.0)
declare -A IP
for i in 1 2 3 4; do
	pod=$ID-p$i
	v=${VERSIONS[$((i - 1))]}
	netns_add "$pod"
	out=$(cni ADD "c$ID$i" "/run/netns/$pod" "$(conf "$v")")
	rc=$?
	IP[$i]=$(jq -r '.ips[0].address // empty' <<<"$out" | cut -d/ -f1)
	check "ADD pod $i (cniVersion $v) succeeds with an address" \
		test "$rc" -eq 0 -a -n "${IP[$i]}"
	check "ADD pod $i result is in cniVersion $v" \
		jq -e --arg v "$v" '.cniVersion == $v and (.ips[0].gateway == "'$ROUTER'")
			and (if ($v | startswith("0.")) then .ips[0].version == "4" else (.ips[0] | has("version") | not) end)' <<<"$out"
done
check "sluicectl lists 4 ready endpoints" \
	bash -c "'$BUILD/sluicectl' --socket '$SOCK' get endpoints -o json | jq -e '[.endpoints[] | select(.state == \"ready\")] | length == 4'"
check "addresses are distinct" test "$(printf '%s\n' "${IP[@]}" | sort -u | wc -l)" -eq 4

echo "== CHECK and STATUS"
for i in 1 2 3 4; do
	prev=$(cni ADD "c$ID$i" "/run/netns/$ID-p$i" "$(conf 1.1.0)")
	check "repeated ADD of pod $i returns the same address" \
		test "$(jq -r '.ips[0].address' <<<"$prev" | cut -d/ -f1)" = "${IP[$i]}"
	cfg=$(jq -c --argjson p "$prev" '. + {prevResult: $p}' <<<"$(conf 1.1.0)")
	check "CHECK pod $i" cni CHECK "c$ID$i" "/run/netns/$ID-p$i" "$cfg"
done
check "STATUS succeeds" cni STATUS "" "" "$(conf 1.1.0)"

echo "== traffic: every pair, ping, TCP and UDP; every pod to the node"
for i in 1 2 3 4; do serve "$ID-p$i" || not_ok "echo server in pod $i"; done
serve "$NODE" || not_ok "echo server on the node"
for i in 1 2 3 4; do
	for j in 1 2 3 4; do
		[ "$i" = "$j" ] && continue
		dst=${IP[$j]}
		check "pod $i -> pod $j ping" probe "$ID-p$i" ping "$dst" --count 1 --timeout 1000
		check "pod $i -> pod $j TCP" probe "$ID-p$i" tcp "$dst" 8080 --timeout 1000
		check "pod $i -> pod $j UDP" probe "$ID-p$i" udp "$dst" 8081 --timeout 1000
	done
	check "pod $i -> node ping" probe "$ID-p$i" ping "$ROUTER" --count 1 --timeout 1000
	check "pod $i -> node TCP" probe "$ID-p$i" tcp "$ROUTER" 8080 --timeout 1000
	check "node -> pod $i TCP" probe "$NODE" tcp "${IP[$i]}" 8080 --timeout 1000
done
check "pod-to-pod traffic was redirected by eBPF (forward-local counted)" \
	bash -c "'$BUILD/sluicectl' --socket '$SOCK' metrics -o json | jq -e '[.metrics[] | select(.reason == \"forward-local\")][0].packets > 0'"
check "no bridge on the node" bash -c "! ip -n '$NODE' -d link show type bridge | grep -q ."

echo "== agent killed with SIGKILL while pods 1 and 2 exchange TCP traffic"
STREAM_OUT=$DIR/stream.json
probe "$ID-p1" stream "${IP[2]}" 8080 --seconds 4 --interval-ms 20 >"$STREAM_OUT" 2>&1 &
STREAM_PID=$!
sleep 1
{ kill -9 "$AGENT_PID"; wait "$AGENT_PID"; } 2>/dev/null
check "agent is gone" bash -c "! kill -0 $AGENT_PID 2>/dev/null"
check "pods still talk while no agent runs" probe "$ID-p3" tcp "${IP[4]}" 8080 --timeout 1000
out=$(cni ADD "c${ID}x" "/run/netns/$ID-p1" "$(conf 1.0.0)")
check "ADD without an agent answers code 11 (try again later)" jq -e '.code == 11' <<<"$out"
out=$(cni STATUS "" "" "$(conf 1.1.0)")
check "STATUS without an agent answers code 50" jq -e '.code == 50' <<<"$out"
start_agent "$NODE" "$CIDR" "$DIR" || exit 1
wait "$STREAM_PID"
rc=$?
check "the TCP connection survived the agent's death and restart" \
	bash -c "[ $rc -eq 0 ] && jq -e '.broken == false and .errors == 0 and .echoed == .messages' '$STREAM_OUT'"
check "restarted agent lists all 4 endpoints (pods 1 and 2 among them)" \
	bash -c "'$BUILD/sluicectl' --socket '$SOCK' get endpoints -o json | jq -e '[.endpoints[].ip] | contains([\"${IP[1]}\", \"${IP[2]}\"]) and length == 4'"
check "traffic flows through the restarted agent's programs" probe "$ID-p2" tcp "${IP[1]}" 8080 --timeout 1000

echo "== an ADD interrupted by a crash is rolled back at start-up"
{ kill -9 "$AGENT_PID"; wait "$AGENT_PID"; } 2>/dev/null
# What a crash between "record creating" and "record ready" leaves: an
# allocation, a state file marked creating and a host veth; plus an address
# allocated by an ADD that died before it recorded anything.
printf 'ccrash/eth0\n' >"$DIR/state/ipam/10.248.0.200"
printf 'corphan/eth0\n' >"$DIR/state/ipam/10.248.0.201"
ip -n "$NODE" link add lxccrash000000 type veth peer name lxccrashpeer00
cat >"$DIR/state/endpoints/ccrash_eth0.json" <<JSON
{"containerId": "ccrash", "ifname": "eth0", "network": "sluice", "netns": "/run/netns/$ID-p1",
 "namespace": "", "pod": "", "podUID": "", "ip": "10.248.0.200", "hostIfname": "lxccrash000000",
 "hostIfindex": 0, "podMac": "00:00:00:00:00:00", "hostMac": "00:00:00:00:00:00", "state": "creating"}
JSON
start_agent "$NODE" "$CIDR" "$DIR" || exit 1
check "interrupted ADD: its address is released" test ! -e "$DIR/state/ipam/10.248.0.200"
check "interrupted ADD: its veth is deleted" bash -c "! ip -n '$NODE' link show lxccrash000000 2>/dev/null"
check "interrupted ADD: its state file is removed" test ! -e "$DIR/state/endpoints/ccrash_eth0.json"
check "an address no endpoint owns is released" test ! -e "$DIR/state/ipam/10.248.0.201"
check "the four real pods are untouched" \
	bash -c "'$BUILD/sluicectl' --socket '$SOCK' get endpoints -o json | jq -e '.endpoints | length == 4'"

echo "== the API is for root only"
chmod 0711 "$DIR" # let the unprivileged client reach the socket file itself
check "the socket is mode 0600" test "$(stat -c %a "$SOCK")" = 600
check "a non-root client cannot connect" \
	bash -c "setpriv --reuid=65534 --regid=65534 --clear-groups '$BUILD/sluicectl' --socket '$SOCK' status; [ \$? -eq 3 ]"
chmod 0666 "$SOCK"
check "a non-root client that can connect is refused by peer credentials" \
	bash -c "setpriv --reuid=65534 --regid=65534 --clear-groups '$BUILD/sluicectl' --socket '$SOCK' status 2>&1 | grep -q 'root only'"
chmod 0600 "$SOCK"
chmod 0700 "$DIR"

echo "== concurrent ADDs from eight runtimes at once"
for i in $(seq 8); do netns_add "$ID-c$i"; done
pids=()
for i in $(seq 8); do
	cni ADD "cc$ID$i" "/run/netns/$ID-c$i" "$(conf 1.1.0)" >"$DIR/conc.$i" 2>&1 &
	pids+=($!)
done
wait "${pids[@]}"
check "all eight concurrent ADDs succeeded" \
	bash -c "for i in \$(seq 8); do jq -e '.ips[0].address' '$DIR'/conc.\$i >/dev/null || exit 1; done"
check "the eight got distinct addresses" \
	test "$(cat "$DIR"/conc.* | jq -r '.ips[0].address' | sort -u | wc -l)" -eq 8
check "concurrent pods reach each other" probe "$ID-c1" ping "$(jq -r '.ips[0].address' "$DIR/conc.8" | cut -d/ -f1)" --count 1
pids=()
for i in $(seq 8); do
	cni DEL "cc$ID$i" "/run/netns/$ID-c$i" "$(conf 1.1.0)" &
	pids+=($!)
done
wait "${pids[@]}"
check "concurrent DELs removed all eight" \
	bash -c "'$BUILD/sluicectl' --socket '$SOCK' get endpoints -o json | jq -e '.endpoints | length == 4'"

echo "== bad input is refused and leaves nothing behind"
snapshot() {
	echo "links: $(ip -n "$NODE" -o link show | grep -c lxc)"
	echo "ipam: $(ls "$DIR/state/ipam" | sort | tr '\n' ' ')"
	echo "map: $(bpftool map dump pinned "$BPFFS/sluice_ep_v2" -j | jq length)"
	echo "state: $(ls "$DIR/state/endpoints" | wc -l)"
}
before=$(snapshot)
netns_add "$ID-bad"
out=$(cni ADD "c${ID}bad" "/run/netns/$ID-bad" '{"cniVersion": "1.0.0", "name": ')
check "malformed JSON config: code 6" jq -e '.code == 6' <<<"$out"
out=$(CNI_NETNS= cni ADD "c${ID}bad" "" "$(conf 1.0.0)")
check "missing CNI_NETNS: code 4 naming it" jq -e '.code == 4 and (.msg | test("CNI_NETNS"))' <<<"$out"
out=$(cni ADD "c${ID}bad" "/run/netns/$ID-bad" "$(conf 9.9.9)")
check "unsupported cniVersion: code 1" jq -e '.code == 1' <<<"$out"
out=$(cni ADD "c${ID}bad" "/run/netns/$ID-does-not-exist" "$(conf 1.0.0)")
check "nonexistent netns: an error naming it" jq -e '.code > 0 and (.msg | test("does-not-exist"))' <<<"$out"
check "nothing was left behind by the failed ADDs" test "$(snapshot)" = "$before"
check "the bad pod's netns got no interface" bash -c "! ip -n '$ID-bad' -o link show | grep -v ': lo:'"

echo "== GC removes attachments the runtime no longer lists"
valid=$(jq -c -n --arg a "c${ID}1" --arg b "c${ID}2" --arg c "c${ID}3" \
	'[$a, $b, $c] | map({containerID: ., ifname: "eth0"})')
cfg=$(jq -c --argjson v "$valid" '. + {"cni.dev/valid-attachments": $v}' <<<"$(conf 1.1.0)")
check "GC succeeds" cni GC "" "" "$cfg"
check "GC removed pod 4 only" \
	bash -c "'$BUILD/sluicectl' --socket '$SOCK' get endpoints -o json | jq -e '[.endpoints[].containerId] | sort == [\"c${ID}1\", \"c${ID}2\", \"c${ID}3\"]'"

echo "== DEL leaves no veth, address or map entry; a second DEL succeeds"
for i in 1 2 3 4; do
	check "DEL pod $i" cni DEL "c$ID$i" "/run/netns/$ID-p$i" "$(conf 1.0.0)"
	check "DEL pod $i again" cni DEL "c$ID$i" "/run/netns/$ID-p$i" "$(conf 1.0.0)"
done
check "DEL with an empty CNI_NETNS succeeds" cni DEL "c${ID}1" "" "$(conf 1.0.0)"
check "DEL of an unknown container succeeds" cni DEL "cnever$ID" "/run/netns/none" "$(conf 0.3.1)"
check "no lxc veth left on the node" bash -c "! ip -n '$NODE' -o link show | grep -q lxc"
check "no interface left in the pods" bash -c "for i in 1 2 3 4; do ip -n $ID-p\$i -o link show | grep -qv ': lo:' && exit 1; done; true"
# (ipam/released/ keeps the release times: the least recently used order)
check "no address allocation left" bash -c "! ls '$DIR/state/ipam' | grep -qE '^[0-9]+([.][0-9]+){3}\$'"
check "endpoint map is empty" test "$(bpftool map dump pinned "$BPFFS/sluice_ep_v2" -j | jq length)" = 0
check "no pod link pins left (the node devices keep theirs)" bash -c "! ls '$BPFFS/links' | grep -q ^lxc"
check "no endpoint state left" test -z "$(ls "$DIR/state/endpoints")"
check "no host routes to pods left" bash -c "! ip -n '$NODE' route | grep -q '10.248.0.[0-9]* dev lxc'"

summary
