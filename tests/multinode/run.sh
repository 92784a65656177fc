#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Cross-node end to end: three nodes on one machine (node network namespaces
# joined by a Linux bridge in a "phys" namespace, see lib.sh), one
# sluice-agent per node with --routing overlay or native, the three v1 Node
# objects and the six v1 Pod objects applied to every agent, two pods per
# node wired by the real sluice-cni. Per mode:
#
#   a) every pod reaches every other pod: ping, TCP, UDP (6x6); in overlay
#      mode through VXLAN that BPF builds and takes off at both ends (the
#      counters say so, the vxlan devices send nothing), and the kernel's
#      vxlan device understands BPF's packets and BPF the device's (node to
#      remote pod; pod to a remote node's router address);
#   b) a NetworkPolicy (app=db on node 2 accepts only app=web, on nodes 1
#      and 3, on its named port) allows and denies exactly as on one node,
#      across nodes: the full matrix per port;
#   c) node 3's Node object deleted from node 1's agent cuts node 1 off from
#      node 3's pods, and nothing else; re-applied, it is reachable again,
#      with no agent restarted;
#   d) the pods' MTU: 1450 with the overlay (1500 - 50), 1500 native, and
#      packets of that size cross between nodes.
#
#   tests/multinode/run.sh             overlay, then native
#   tests/multinode/run.sh overlay     one mode (or native)
#
# Prints one line per check and, for a failing matrix, the expected and
# observed tables with the agents' view (nodes, routes, counters, explain);
# the last line is "multinode: N passed, M failed". MN_AGENT_ARGS goes to
# every agent; PROBE_TIMEOUT_MS (default 1000) is the per-probe timeout.
#
#   g) a pod that routes (DNAT and masquerade in n2-cache, from n1-web to
#      n3-cache): node 2 sends the forwarded stream on in GSO packets.
#
#   f) a 300 MB TCP transfer between nodes goes through sluice's own path
#      (overlay-encap and overlay-decap / forward-native) in GSO packets,
#      not through the
#      host's forwarding (bpf_fib_lookup must not call 64 KB GSO packets
#      too big for the MTU).
#
#   e) masquerade: pods on every node reach a "world" host on the physical
#      network that has no route to any pod CIDR (only the node's address can
#      get replies back), by TCP, UDP and ping; pod-to-pod traffic across
#      nodes is not masqueraded.
#
# A node reaching another node's pods is checked here (overlay) and by
# tests/kubeproxy. Not covered yet: ipBlock egress rules towards the world across masquerade.
# shellcheck source-path=SCRIPTDIR
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TEST_NAME=${MN_TEST_NAME:-multinode}
# shellcheck source=../lib/common.sh
source "$HERE/../lib/common.sh"
# shellcheck source=lib.sh
source "$HERE/lib.sh"

# Both modes: one process each, so each cleans up after itself.
mn_mode multinode MN_TEST_NAME "$0" "$@"
POD_MTU=$MN_MTU
[ "$MODE" = native ] || POD_MTU=$((MN_MTU - 50))

need_root
for bin in sluice-agent sluice-cni sluicectl sluice-probe; do
	[ -x "$BUILD/$bin" ] || { log "$BUILD/$bin missing (run make)"; exit 1; }
done
if ! "$BUILD/sluice-agent" --help 2>&1 | grep -q -- --routing; then
	log "$BUILD/sluice-agent has no --routing flag: this build has no cross-node routing"
	exit 1
fi

ID=slmn$$
P=$ID
MN_DIR=$(mktemp -d /tmp/sluice-multinode.XXXXXX)
CLEANUP_PATHS+=("$MN_DIR")
NS=shop
PROBE_TIMEOUT_MS=${PROBE_TIMEOUT_MS:-1000}
NODES=(1 2 3)
# Two pods per node; the number after n is the node, after the dash its app label.
PODS=(n1-web n1-cache n2-db n2-cache n3-web n3-cache)
declare -A IP=() AGENT=() ENCAP=() DECAP=() DEV_TX=()
started=$(date +%s)

node_of() { printf '%s' "${1:1:1}"; }
app_of() { printf '%s' "${1#*-}"; }
ctl() { mn_ctl "$P" "$@"; }
fails() { ! "$@"; }

# ---- diagnostics -----------------------------------------------------------

# diag [FROM>TO...]: what the agents think: nodes, routes, the tunnel device,
# counters; and, for the pairs given (at most three), policy explain on the
# receiving pod's node.
diag() {
	local n pair
	{
		for n in "${NODES[@]}"; do
			echo "--- node$n: sluicectl get nodes"
			ctl "$n" get nodes 2>&1
			echo "--- node$n: ip route"
			ip -n "$P-node$n" route 2>&1
			if [ "$MODE" = overlay ]; then
				echo "--- node$n: sluice_vxlan"
				ip -n "$P-node$n" -d -s link show sluice_vxlan 2>&1
			fi
			echo "--- node$n: sluicectl metrics"
			ctl "$n" metrics 2>&1
		done
		for pair in "${@:1:3}"; do
			n=$(node_of "${pair#*>}")
			echo "--- node$n: sluicectl policy explain --from $NS/${pair%>*} --to $NS/${pair#*>} --port $DIAG_PORT"
			ctl "$n" policy explain --from "$NS/${pair%>*}" --to "$NS/${pair#*>}" --port "$DIAG_PORT" 2>&1
		done
	} | sed 's/^/       /'
}

# ---- the reachability matrix -------------------------------------------------

declare -A EXPECT=() OBSERVED=()

expect_all() {
	local from to
	for from in "${PODS[@]}"; do
		for to in "${PODS[@]}"; do EXPECT[$from>$to]=$1; done
	done
}

# probe_pairs PROTO PORT PAIR...: one echo round trip per pair (FROM>TO), all
# at once, into OBSERVED (true, false, or error).
probe_pairs() {
	local proto=$1 port=$2 pair id res
	shift 2
	for pair in "$@"; do OBSERVED[$pair]=error; done
	while read -r id res; do
		case $res in
		ok) OBSERVED[$id]=true ;;
		fail) OBSERVED[$id]=false ;;
		esac
	done < <(for pair in "$@"; do
		printf '%s /run/netns/%s-%s %s %s %s\n' "$pair" "$P" "${pair%>*}" "$proto" \
			"${IP[${pair#*>}]}" "$port"
	done | "$BUILD/sluice-probe" matrix --timeout "$PROBE_TIMEOUT_MS" --parallel "$#" \
		2>>"$MN_DIR/probe.err")
}

wrong_pairs() {
	local from to
	for from in "${PODS[@]}"; do
		for to in "${PODS[@]}"; do
			[ "$from" = "$to" ] && continue
			[ "${EXPECT[$from>$to]}" = "${OBSERVED[$from>$to]}" ] || printf '%s\n' "$from>$to"
		done
	done
}

# table KIND: expected or observed; rows are clients, columns servers;
# "." connected, "X" not, "?" the probe could not run.
table() {
	local from to v
	printf '       %-9s' "$1"
	printf '%-9s' "${PODS[@]}"
	printf '\n'
	for from in "${PODS[@]}"; do
		printf '       %-9s' "$from"
		for to in "${PODS[@]}"; do
			if [ "$from" = "$to" ]; then
				v=-
			else
				case ${2:-} in
				observed) v=${OBSERVED[$from>$to]} ;;
				*) v=${EXPECT[$from>$to]} ;;
				esac
				case $v in true) v=. ;; false) v=X ;; *) v='?' ;; esac
			fi
			printf '%-9s' "$v"
		done
		printf '\n'
	done
}

# matrix DESC PROTO PORT: probe all 30 pairs (a pod to itself is not
# probed), compare with EXPECT, count one check. Wrong cells are probed once
# more before they count.
matrix() {
	local desc=$1 proto=$2 port=$3 from to pairs=() wrong pair
	for from in "${PODS[@]}"; do
		for to in "${PODS[@]}"; do
			[ "$from" = "$to" ] || pairs+=("$from>$to")
		done
	done
	probe_pairs "$proto" "$port" "${pairs[@]}"
	mapfile -t wrong < <(wrong_pairs)
	if [ "${#wrong[@]}" -gt 0 ]; then
		probe_pairs "$proto" "$port" "${wrong[@]}"
		mapfile -t wrong < <(wrong_pairs)
	fi
	if [ "${#wrong[@]}" -eq 0 ]; then
		ok "$desc (${proto^^}/$port, 30 pairs)"
		return 0
	fi
	not_ok "$desc (${proto^^}/$port: ${#wrong[@]} of 30 pairs wrong)"
	table expected expected
	table observed observed
	for pair in "${wrong[@]}"; do
		printf '       %s -> %s: expected %s, observed %s\n' "${pair%>*}" "${pair#*>}" \
			"${EXPECT[$pair]}" "${OBSERVED[$pair]}"
	done
	DIAG_PORT=$port/${proto^^} diag "${wrong[@]}"
	return 1
}

# ---- checks on the agents' view ------------------------------------------------

# nodes_are N NAME...: node N's agent lists exactly these nodes, with the
# right pod CIDRs and addresses, itself (and only itself) local.
nodes_are() {
	local n=$1 out want
	shift
	out=$(ctl "$n" get nodes -o json) || { echo "$out"; return 1; }
	want=$(for name in "$@"; do
		i=${name#node}
		jq -cn --arg name "$name" --arg cidr "$(mn_pod_cidr "$i")" \
			--arg ip "$(mn_node_ip "$i")" --argjson local "$([ "$i" = "$n" ] && echo true || echo false)" \
			'{name: $name, podCIDR: $cidr, address: $ip, local: $local}'
	done | jq -cs 'sort_by(.name)')
	jq -e --argjson want "$want" \
		'[(.items // .nodes)[] | {name, podCIDR, address, local}] | sort_by(.name) == $want' \
		<<<"$out" >/dev/null && return 0
	echo "want: $want"
	echo "got:  $out"
	return 1
}

# route_to N M: node N routes node M's pod CIDR via node M's address on uplink0.
route_to() {
	local out
	out=$(ip -n "$P-node$1" -j route show "$(mn_pod_cidr "$2")")
	jq -e --arg gw "$(mn_node_ip "$2")" \
		'length == 1 and .[0].gateway == $gw and .[0].dev == "uplink0"' <<<"$out" >/dev/null && return 0
	ip -n "$P-node$1" route
	return 1
}

no_route_to() {
	[ "$(ip -n "$P-node$1" -j route show "$(mn_pod_cidr "$2")" | jq length)" = 0 ] && return 0
	ip -n "$P-node$1" route
	return 1
}

vxlan_ok() { # N: sluice_vxlan on node N: collect_md (external), UDP 8472
	local out
	out=$(ip -n "$P-node$1" -d -j link show sluice_vxlan) || return 1
	jq -e '.[0].linkinfo.info_kind == "vxlan" and .[0].linkinfo.info_data.external == true
		and .[0].linkinfo.info_data.port == 8472 and (.[0].flags | index("UP"))' \
		<<<"$out" >/dev/null && return 0
	echo "$out"
	return 1
}

vxlan_stat() { # N rx|tx: packets node N's sluice_vxlan device took in or sent (0 without it)
	ip -n "$P-node$1" -j -s link show sluice_vxlan 2>/dev/null | jq --arg d "$2" '.[0].stats64[$d].packets // 0' 2>/dev/null ||
		echo 0
}
node_counter() { # N REASON DIRECTION: "packets bytes" node N's datapath counted
	mn_ctl "$P" "$1" metrics -o json | jq -r --arg r "$2" --arg d "$3" \
		'[.metrics[] | select(.reason == $r and .direction == $d)] |
		 "\(map(.packets) | add // 0) \(map(.bytes) | add // 0)"'
}
node_metric() { # N REASON DIRECTION: packets only
	local c
	c=$(node_counter "$@") && echo "${c%% *}"
}

agents_alive() {
	local n
	for n in "${NODES[@]}"; do
		kill -0 "${AGENT[$n]}" 2>/dev/null || { echo "node$n's agent (pid ${AGENT[$n]}) is gone"; return 1; }
	done
}

# ---- the cluster ---------------------------------------------------------------

echo "== topology: phys bridge, three nodes on uplink0 (MTU $MN_MTU)"
mn_topology "$P" "${#NODES[@]}" || { log "could not build the topology"; exit 1; }
for n in "${NODES[@]}"; do
	for m in "${NODES[@]}"; do
		[ "$n" = "$m" ] && continue
		check "node$n -> node$m ping over uplink0" \
			probe "$P-node$n" ping "$(mn_node_ip "$m")" --count 1 --timeout 1000
	done
done

echo "== agents (--routing $MODE), Node objects applied to every agent"
for n in "${NODES[@]}"; do
	mn_start_agent "$P" "$n" "$MODE" || { log "node$n's agent did not start"; exit 1; }
	AGENT[$n]=$MN_AGENT_PID
done
check "the three Node objects and Namespace $NS applied to every agent" mn_apply_all "$P" 3 < <(
	{
		jq -cn --arg ns "$NS" '{apiVersion: "v1", kind: "Namespace", metadata: {name: $ns}}'
		for n in "${NODES[@]}"; do mn_node_json "$n"; done
	} | mn_list)
for n in "${NODES[@]}"; do
	check "node$n's agent lists node1..3, itself local" nodes_are "$n" node1 node2 node3
done
for n in "${NODES[@]}"; do
	if [ "$MODE" = overlay ]; then
		check "node$n: sluice_vxlan is up, collect_md, UDP 8472" vxlan_ok "$n"
	else
		check "node$n: no sluice_vxlan in native mode" \
			bash -c "! ip -n '$P-node$n' link show sluice_vxlan 2>/dev/null"
		for m in "${NODES[@]}"; do
			[ "$n" = "$m" ] && continue
			check "node$n routes $(mn_pod_cidr "$m") via $(mn_node_ip "$m") dev uplink0" route_to "$n" "$m"
		done
	fi
done

echo "== pods: two per node through sluice-cni, Pod objects applied to every agent"
for pod in "${PODS[@]}"; do
	n=$(node_of "$pod")
	netns_add "$P-$pod"
	out=$(mn_pod_add "$P" "$n" "$pod" "$NS")
	rc=$?
	IP[$pod]=$(jq -r '.ips[0].address // empty' <<<"$out" 2>/dev/null | cut -d/ -f1)
	check "ADD $pod on node$n: an address in $(mn_pod_cidr "$n"), gateway $(mn_router "$n")" \
		jq -e --arg gw "$(mn_router "$n")" --arg pre "10.210.$n." --argjson rc "$rc" \
		'$rc == 0 and .ips[0].gateway == $gw and (.ips[0].address | startswith($pre))' <<<"$out"
	[ -n "${IP[$pod]}" ] || { log "no address for $pod: $out"; exit 1; }
	serve "$P-$pod" --tcp 8080 --tcp 8081 --udp 8080 --udp 8081 || { log "echo servers in $pod"; exit 1; }
done
check "the six Pod objects (labels, nodeName, podIP) applied to every agent" mn_apply_all "$P" 3 < <(
	for pod in "${PODS[@]}"; do
		mn_pod_json "$NS" "$pod" "$(node_of "$pod")" "${IP[$pod]}" "$(app_of "$pod")"
	done | mn_list)
for n in "${NODES[@]}"; do
	check "node$n's agent knows the six pods, its own two local" bash -c "
		'$BUILD/sluicectl' --socket '$(mn_sock "$P" "$n")' get pods -A -o json | jq -e '
			[.items[] | select(.namespace == \"$NS\")] as \$p | (\$p | length) == 6 and
			([\$p[] | select(.local) | .name] | sort) == ([\"n$n-cache\", \"n$n-\" + (if $n == 2 then \"db\" else \"web\" end)] | sort)'"
done

echo "== a) every pod reaches every other pod"
if [ "$MODE" = overlay ]; then
	for n in "${NODES[@]}"; do
		ENCAP[$n]=$(node_metric "$n" overlay-encap egress)
		DECAP[$n]=$(node_metric "$n" overlay-decap ingress)
		DEV_TX[$n]=$(vxlan_stat "$n" tx)
	done
fi
for from in "${PODS[@]}"; do
	for to in "${PODS[@]}"; do
		[ "$from" = "$to" ] && continue
		check "$from -> $to ping" probe "$P-$from" ping "${IP[$to]}" --count 1 --timeout 1000
	done
done
expect_all true
matrix "every pod reaches every other pod" tcp 8080
matrix "every pod reaches every other pod" udp 8081
if [ "$MODE" = overlay ]; then
	# Pod to pod, both ends are BPF's: VXLAN built by from_pod and taken
	# off by from_netdev, the vxlan device not involved.
	for n in "${NODES[@]}"; do
		check "node$n: pods' cross-node packets were VXLAN-encapsulated by BPF" \
			test "$(node_metric "$n" overlay-encap egress)" -gt "${ENCAP[$n]}"
		check "node$n: VXLAN from other nodes' pods was taken off by BPF" \
			test "$(node_metric "$n" overlay-decap ingress)" -gt "${DECAP[$n]}"
		check "node$n: no pod-to-pod packet went through sluice_vxlan" \
			test "$(vxlan_stat "$n" tx)" = "${DEV_TX[$n]}"
	done
	# Either end may be the kernel's device: the same wire format.
	interop_node_to_pod() { # node1's device builds, node2's BPF takes off
		local tx0 de0
		tx0=$(vxlan_stat 1 tx) de0=$(node_metric 2 overlay-decap ingress)
		nsenter --net="/run/netns/$P-node1" "$BUILD/sluice-probe" ping "${IP[n2-db]}" \
			--count 1 --timeout 1000 >/dev/null || { echo "no answer"; return 1; }
		[ "$(vxlan_stat 1 tx)" -gt "$tx0" ] || { echo "node1's vxlan device sent nothing"; return 1; }
		[ "$(node_metric 2 overlay-decap ingress)" -gt "$de0" ] ||
			{ echo "node2's BPF took nothing off"; return 1; }
	}
	interop_pod_to_router() { # node1's BPF builds, node2's device takes off
		local en0 rx0
		en0=$(node_metric 1 overlay-encap egress) rx0=$(vxlan_stat 2 rx)
		probe "$P-n1-web" ping "$(mn_router 2)" --count 1 --timeout 1000 >/dev/null ||
			{ echo "no answer"; return 1; }
		[ "$(node_metric 1 overlay-encap egress)" -gt "$en0" ] ||
			{ echo "node1's BPF built nothing"; return 1; }
		[ "$(vxlan_stat 2 rx)" -gt "$rx0" ] || { echo "node2's vxlan device took nothing"; return 1; }
	}
	check "node1 -> n2-db: VXLAN from node1's vxlan device, taken off by node2's BPF" interop_node_to_pod
	check "n1-web -> node2's router address: VXLAN from BPF, taken off by node2's vxlan device" \
		interop_pod_to_router
fi

echo "== d) MTU: pods' eth0 is $POD_MTU; packets of that size cross nodes"
for pod in "${PODS[@]}"; do
	check "$pod eth0 MTU is $POD_MTU" \
		test "$(ip -n "$P-$pod" -j link show eth0 | jq '.[0].mtu')" = "$POD_MTU"
done
if command -v iperf3 >/dev/null; then
	ip netns exec "$P-n2-db" iperf3 -s -B "${IP[n2-db]}" -D -I "$MN_DIR/iperf.pid" >/dev/null 2>&1
	sleep 0.3
	CLEANUP_PIDS+=("$(cat "$MN_DIR/iperf.pid")")
	# UDP datagrams filling the pod's MTU, Don't Fragment set: they cross in
	# one piece, or not at all (the receiver's count, not the sender's).
	check "n1-web -> n2-db: $POD_MTU-byte UDP packets with DF arrive" bash -c "
		ip netns exec '$P-n1-web' iperf3 -c '${IP[n2-db]}' -u -l $((POD_MTU - 28)) --dont-fragment \
			-b 2M -t 1 -J | jq -e '.end.sum_received.packets > 0.9 * .end.sum_sent.packets'"
	# No black hole for full-size TCP segments either.
	check "n3-web -> n2-db: a 1 s TCP stream moves more than 10 MB" bash -c "
		timeout 20 ip netns exec '$P-n3-web' iperf3 -c '${IP[n2-db]}' -t 1 -J |
			jq -e '.end.sum_received.bytes > 10000000'"
else
	log "iperf3 missing (make deps): full-size packets not checked"
fi

echo "== b) NetworkPolicy across nodes: $NS/n2-db accepts only app=web, on port http"
POLICY='apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: shop, name: db-from-web}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: web}}}]
    ports: [{port: http}]'
check "the policy applied to every agent" mn_apply_all "$P" 3 <<<"$POLICY"
expect_all true
for from in "${PODS[@]}"; do
	[ "$from" = n2-db ] || EXPECT[$from>n2-db]=$([ "$(app_of "$from")" = web ] && echo true || echo false)
done
matrix "web pods (nodes 1, 3) reach db (node 2) on http, cache pods (nodes 1, 2, 3) do not" tcp 8080
expect_all true
for from in "${PODS[@]}"; do EXPECT[$from>n2-db]=false; done
matrix "nobody reaches db on a port the policy does not open" tcp 8081
matrix "nobody reaches db over UDP" udp 8081
for from in n1-web n3-web n1-cache n2-cache n3-cache; do
	want=$([ "$(app_of "$from")" = web ] && echo true || echo false)
	check "node2 explains $from -> n2-db 8080/TCP as allowed=$want, the datapath agreeing" bash -c "
		'$BUILD/sluicectl' --socket '$(mn_sock "$P" 2)' -o json policy explain \
			--from $NS/$from --to $NS/n2-db --port 8080/TCP |
			jq -e '.allowed == $want and .datapath.allowed == $want'"
done
check "node2 counted drop-policy" bash -c "
	'$BUILD/sluicectl' --socket '$(mn_sock "$P" 2)' metrics -o json |
		jq -e '[.metrics[] | select(.reason == \"drop-policy\") | .packets] | add > 0'"
# The flow records of node2's datapath (bpf/lib/flow.h), as its agent
# keeps them (sluicectl observe): what came from other nodes was recorded
# where it entered (from_netdev, or from_overlay), the policy's verdict
# and rule with it.
flow_records_node2() {
	local recs=$MN_DIR/$P/node2-flows.json
	probe "$P-n1-web" tcp "${IP[n2-db]}" 8080 --timeout 1000 >/dev/null 2>&1
	probe "$P-n1-cache" tcp "${IP[n2-db]}" 8080 --timeout 500 >/dev/null 2>&1
	sleep 0.3
	"$BUILD/sluicectl" --socket "$(mn_sock "$P" 2)" observe --to-ip "${IP[n2-db]}" --port 8080 \
		-o json >"$recs" || return 1
	jq -e -s --arg web "${IP[n1-web]}" --arg cache "${IP[n1-cache]}" --arg db "${IP[n2-db]}" '
		any(.[]; .event == "START" and .source.ip == $web and .destination.ip == $db and
			 .direction == "ingress" and .verdict == "FORWARDED" and .policy.name != null) and
		any(.[]; .event == "START" and .source.ip == $cache and .destination.ip == $db and
			 .direction == "ingress" and .verdict == "DROPPED" and .reason == "drop-policy" and
			 .deniedByDefault == true)' "$recs" >/dev/null ||
		{ tail -n 20 "$recs"; return 1; }
}
check "node2's flow records: n1-web -> n2-db forwarded by a rule, n1-cache -> n2-db dropped by default deny" \
	flow_records_node2
check "the policy deleted from every agent" bash -c "
	for n in 1 2 3; do
		'$BUILD/sluicectl' --socket '$MN_DIR/$P/node'\$n/agent.sock delete -f - <<<'$POLICY' >/dev/null || exit 1
	done"
expect_all true
matrix "policy deleted: every pod reaches db again" tcp 8080

echo "== c) node3's Node object deleted from node1's agent, then re-applied"
check "delete Node node3 from node1's agent" bash -c \
	"'$BUILD/sluicectl' --socket '$(mn_sock "$P" 1)' delete -f - >/dev/null <<<'$(mn_node_json 3)'"
check "node1's agent lists node1, node2" nodes_are 1 node1 node2
check "node2's agent still lists node1..3" nodes_are 2 node1 node2 node3
check "node3's agent still lists node1..3" nodes_are 3 node1 node2 node3
if [ "$MODE" = native ]; then
	check "node1 no longer routes $(mn_pod_cidr 3)" no_route_to 1 3
	check "node1 still routes $(mn_pod_cidr 2)" route_to 1 2
fi
# Node 1 cannot send to node 3's pods; node 3's pods' packets may still reach
# node 1, but the answers cannot go back: cut both ways.
expect_all true
for from in n1-web n1-cache; do
	for to in n3-web n3-cache; do EXPECT[$from>$to]=false EXPECT[$to>$from]=false; done
done
matrix "node1's pods and node3's pods are cut off, nothing else" tcp 8080
matrix "node1's pods and node3's pods are cut off, nothing else" udp 8081
check "n1-web -> n3-web ping fails" fails probe "$P-n1-web" ping "${IP[n3-web]}" --count 1 --timeout 500
check "Node node3 re-applied to node1's agent" bash -c \
	"'$BUILD/sluicectl' --socket '$(mn_sock "$P" 1)' apply -f - >/dev/null <<<'$(mn_node_json 3)'"
check "node1's agent lists node1..3 again" nodes_are 1 node1 node2 node3
[ "$MODE" = native ] && check "node1 routes $(mn_pod_cidr 3) again" route_to 1 3
expect_all true
matrix "node1 and node3 reach each other's pods again" tcp 8080
matrix "node1 and node3 reach each other's pods again" udp 8081
check "n1-web -> n3-web ping" probe "$P-n1-web" ping "${IP[n3-web]}" --count 1 --timeout 1000
check "no agent was restarted" agents_alive

echo "== e) the outside world: masquerade"
# A "world" host on the physical network, with no route to any pod CIDR:
# a pod's connection there can only come back if it left with its node's
# address.
netns_add "$P-world"
ip -n "$P-phys" link add world0 mtu "$MN_MTU" type veth peer name eth0 mtu "$MN_MTU" netns "$P-world"
ip -n "$P-phys" link set world0 master br0 up
ip -n "$P-world" addr add 10.200.0.100/24 dev eth0
ip -n "$P-world" link set eth0 up
serve "$P-world" --tcp 8080 --udp 8081 || not_ok "echo server in the world namespace"
check "the world has no route to pods" bash -c "! ip -n '$P-world' route get 10.210.1.2 2>/dev/null | grep -q via"
for pod in n1-web n2-db n3-cache; do
	check "$pod -> world TCP (masqueraded)" probe "$P-$pod" tcp 10.200.0.100 8080 --timeout 1000
	check "$pod -> world UDP (masqueraded)" probe "$P-$pod" udp 10.200.0.100 8081 --timeout 1000
	check "$pod -> world ping (masqueraded)" probe "$P-$pod" ping 10.200.0.100 --count 1 --timeout 1000
done
check "node1 counted masqueraded packets and replies" bash -c "
	'$BUILD/sluicectl' --socket '$(mn_sock "$P" 1)' metrics -o json |
		jq -e '[.metrics[] | select(.reason == \"masquerade\" or .reason == \"masquerade-reply\")] | length == 2'"
check "pod-to-pod across nodes is not masqueraded (no masquerade counted on node2 for pod traffic)" bash -c "
	before=\$('$BUILD/sluicectl' --socket '$(mn_sock "$P" 2)' metrics -o json | jq '[.metrics[] | select(.reason == \"masquerade\") | .packets] | add // 0');
	ip netns exec '$P-n2-cache' '$BUILD/sluice-probe' tcp '${IP[n1-web]}' 8080 --timeout 1000 >/dev/null || exit 1;
	after=\$('$BUILD/sluicectl' --socket '$(mn_sock "$P" 2)' metrics -o json | jq '[.metrics[] | select(.reason == \"masquerade\") | .packets] | add // 0');
	[ \"\$before\" = \"\$after\" ]"

echo "== f) a bulk TCP transfer stays on the fast path (GSO packets included)"
# iperf3 sends 64 KB GSO packets; each must take sluice's own path, not the
# host's forwarding (which would also mark the flow as the stack's for good).
# In overlay mode, from_pod builds the VXLAN headers of every one itself.
FAST_REASON=$([ "$MODE" = overlay ] && echo overlay-encap || echo forward-native)
bulk_fast() {
	local p0 b0 p1 b1 s0 s1 d0 d1
	read -r p0 b0 <<<"$(node_counter 1 "$FAST_REASON" egress)"
	read -r _ s0 <<<"$(node_counter 1 to-stack-flow egress)"
	d0=$(node_metric 2 forward-remote ingress)
	ip netns exec "$P-n2-cache" iperf3 -s -1 -D -B "${IP[n2-cache]}" >/dev/null 2>&1 || return 1
	sleep 0.3
	ip netns exec "$P-n1-web" timeout 20 iperf3 -c "${IP[n2-cache]}" -n 300M >/dev/null 2>&1 ||
		{ echo "iperf3 failed"; return 1; }
	read -r p1 b1 <<<"$(node_counter 1 "$FAST_REASON" egress)"
	read -r _ s1 <<<"$(node_counter 1 to-stack-flow egress)"
	d1=$(node_metric 2 forward-remote ingress)
	echo "$FAST_REASON: +$((p1 - p0)) packets, +$((b1 - b0)) bytes; to-stack-flow: +$((s1 - s0)) bytes; node2 forward-remote: +$((d1 - d0)) packets"
	# node2 delivered them straight to the pod, not through its stack
	[ $((d1 - d0)) -gt $(((p1 - p0) / 2)) ] || return 1
	# (a few stray packets of earlier stack flows may pass meanwhile)
	[ $((s1 - s0)) -lt 1000000 ] || return 1
	[ $((b1 - b0)) -gt $((250 * 1024 * 1024)) ] || return 1 # most of it (iperf3 counts its own way)
	[ $(((b1 - b0) / (p1 - p0))) -gt "$MN_MTU" ] # GSO packets went this way
}
if command -v iperf3 >/dev/null; then
	check "n1-web -> n2-cache 300 MB over TCP: through $FAST_REASON in GSO packets, not via the stack" bulk_fast
else
	not_ok "iperf3 missing (make deps)"
fi

echo "== g) a pod that routes: forwarded GSO packets are tunnelled whole"
# n2-cache DNATs TCP 5201 to n3-cache and masquerades: a router or NAT pod.
# Node 2 must send what it forwards on through its own path (FAST_REASON)
# in GSO packets. In overlay mode those packets came in through the
# tunnel: one that kept the kernel's tunnel state from its way in would be
# refused BPF encapsulation and cut into MTU-sized pieces on its way
# through the vxlan device.
routed_bulk() {
	local p0 b0 p1 b1 ns=$P-n2-cache
	ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1 &&
		ip netns exec "$ns" iptables -t nat -A PREROUTING -p tcp --dport 5201 \
			-j DNAT --to-destination "${IP[n3-cache]}" &&
		ip netns exec "$ns" iptables -t nat -A POSTROUTING -d "${IP[n3-cache]}" -j MASQUERADE ||
		{ echo "cannot set up the routing pod"; return 1; }
	read -r p0 b0 <<<"$(node_counter 2 "$FAST_REASON" egress)"
	ip netns exec "$P-n3-cache" iperf3 -s -1 -D -B "${IP[n3-cache]}" >/dev/null 2>&1 || return 1
	sleep 0.3
	ip netns exec "$P-n1-web" timeout 20 iperf3 -c "${IP[n2-cache]}" -n 100M >/dev/null 2>&1 ||
		{ echo "iperf3 through the routing pod failed"; return 1; }
	read -r p1 b1 <<<"$(node_counter 2 "$FAST_REASON" egress)"
	echo "node2 $FAST_REASON: +$((p1 - p0)) packets, +$((b1 - b0)) bytes"
	[ $((b1 - b0)) -gt $((80 * 1024 * 1024)) ] || return 1
	[ $(((b1 - b0) / (p1 - p0))) -gt "$MN_MTU" ]
}
if command -v iperf3 >/dev/null && command -v iptables >/dev/null; then
	check "n1-web -> n2-cache (DNAT) -> n3-cache 100 MB: node2 tunnels the forwarded stream in GSO packets" routed_bulk
else
	not_ok "iperf3 or iptables missing (make deps)"
fi

echo "== DEL: every pod"
for pod in "${PODS[@]}"; do
	check "DEL $pod" mn_pod_del "$P" "$(node_of "$pod")" "$pod" "$NS"
done

log "done in $(($(date +%s) - started)) s"
summary
