#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The node side of the install: scripts/install-cni.sh installs atomically;
# the agent runs with exactly the capabilities deploy/sluice.yaml grants (and
# not with fewer); scripts/node-cleanup.sh removes a stopped sluice node
# (tc attach with overlay routing, tcx attach with native routing; the
# uplink's XDP program in both) down to
# the last pin, leaves foreign look-alikes alone, refuses while the agent
# runs, changes nothing with --dry-run, and has nothing to do the second
# time. Run by tests/deploy/run.sh; usable alone.
set -uo pipefail
TEST_NAME=${TEST_NAME:-deploy-node}
source "$(dirname "$0")/../lib/common.sh"
need_root

ID=sld$$
DIR=$(mktemp -d /tmp/sluice-deploy.XXXXXX)
CLEANUP_PATHS+=("$DIR")
CLEANUP_SCRIPT=$ROOT/scripts/node-cleanup.sh
INSTALL_SCRIPT=$ROOT/scripts/install-cni.sh

for tool in jq bpftool setpriv strace; do
	if ! command -v "$tool" >/dev/null; then
		not_ok "$tool is installed (make deps)"
		summary
		exit 1
	fi
done

# The agent container's capabilities, as setpriv's bounding set.
CAPS=$(/usr/bin/python3 - "$ROOT/deploy/sluice.yaml" <<'EOF'
import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d.get("kind") == "DaemonSet":
        for c in d["spec"]["template"]["spec"]["containers"]:
            if c["name"] == "agent":
                add = c["securityContext"]["capabilities"]["add"]
                print(",".join("+" + a.lower() for a in add))
EOF
)
[ -n "$CAPS" ] || { not_ok "the DaemonSet's agent container lists capabilities"; summary; exit 1; }

echo "== install-cni.sh: atomic installs"
inst() {
	"$INSTALL_SCRIPT" --cni-bin-dir "$DIR/ibin" --cni-conf-dir "$DIR/iconf" \
		--plugin "$BUILD/sluice-cni" --conflist "$ROOT/deploy/cni/10-sluice.conflist" "$@"
}
mkdir -p "$DIR/ibin" "$DIR/iconf"
check "install-cni.sh installs plugin and conflist" inst --socket /run/sluice-a.sock
check "the plugin is executable and identical to build/sluice-cni" \
	bash -c "test -x '$DIR/ibin/sluice-cni' && cmp '$DIR/ibin/sluice-cni' '$BUILD/sluice-cni'"
check "the conflist carries --socket and is otherwise the repository's" \
	bash -c "jq -e '.plugins[0].socket == \"/run/sluice-a.sock\"' '$DIR/iconf/10-sluice.conflist' &&
		diff <(jq 'del(.plugins[0].socket)' '$ROOT/deploy/cni/10-sluice.conflist') \
		     <(jq 'del(.plugins[0].socket)' '$DIR/iconf/10-sluice.conflist')"
check "without --socket the conflist is the repository's byte for byte" \
	bash -c "'$INSTALL_SCRIPT' --cni-bin-dir '$DIR/ibin' --cni-conf-dir '$DIR/iconf' --plugin '$BUILD/sluice-cni' \
		--conflist '$ROOT/deploy/cni/10-sluice.conflist' >/dev/null && cmp '$DIR/iconf/10-sluice.conflist' '$ROOT/deploy/cni/10-sluice.conflist'"
# Every write goes to a temporary file in the destination directory and
# reaches its final name only by rename: strace shows each open for writing
# and each rename.
strace -f -qq -e trace=openat,open,creat,rename,renameat,renameat2 -o "$DIR/strace" \
	"$INSTALL_SCRIPT" --cni-bin-dir "$DIR/ibin" --cni-conf-dir "$DIR/iconf" --plugin "$BUILD/sluice-probe" \
	--conflist "$ROOT/deploy/cni/10-sluice.conflist" --socket /run/sluice-b.sock >/dev/null 2>&1
check "no file is opened for writing under its final name" \
	bash -c "! grep -E 'open.*\"$DIR/i(bin/sluice-cni|conf/10-sluice.conflist)\".*O_(WRONLY|RDWR|CREAT|TRUNC)' '$DIR/strace'"
check "the plugin arrives by rename from a temporary file beside it" \
	grep -qE "rename.*\"$DIR/ibin/\.sluice-cni\.[A-Za-z0-9]+\".*\"$DIR/ibin/sluice-cni\"" "$DIR/strace"
check "the conflist arrives by rename from a temporary file beside it" \
	grep -qE "rename.*\"$DIR/iconf/\.10-sluice\.conflist\.[A-Za-z0-9]+\".*\"$DIR/iconf/10-sluice.conflist\"" "$DIR/strace"
check "no temporary file is left behind" test -z "$(ls -A "$DIR/ibin" "$DIR/iconf" | grep '^\.')"
# A reader racing 100 rewrites always sees a whole, valid conflist.
(
	for i in $(seq 100); do
		inst --socket "/run/sluice-$((i % 2)).sock" >/dev/null || exit 1
	done
) &
writer=$!
torn=0
while kill -0 "$writer" 2>/dev/null; do
	jq -e '.plugins[0].type == "sluice-cni"' "$DIR/iconf/10-sluice.conflist" >/dev/null 2>&1 || torn=$((torn + 1))
done
wait "$writer"
check "a reader racing 100 rewrites never sees a partial conflist (torn reads: $torn)" test "$torn" -eq 0
check "install-cni.sh fails on a missing destination directory" \
	bash -c "! '$INSTALL_SCRIPT' --cni-bin-dir '$DIR/nonexistent' --plugin '$BUILD/sluice-cni' \
		--conflist '$ROOT/deploy/cni/10-sluice.conflist' 2>/dev/null"

# ---- a node ------------------------------------------------------------
# node_up N ROUTING ATTACH: node namespace with an uplink, CNI installed into
# temporary directories, an agent with the DaemonSet's capabilities, two pods
# added through the installed plugin and conflist.
node_up() {
	local n=$1 routing=$2 attach=$3
	NODE=$ID-n$n
	D=$DIR/n$n
	BPFFS=/sys/fs/bpf/$ID-n$n
	CLEANUP_PATHS+=("$BPFFS")
	SOCK=$D/run/sluice/sluice.sock
	mkdir -p "$D/cnibin" "$D/cniconf" "$D/run"
	netns_add "$NODE"
	netns_add "$ID-w$n"
	ip -n "$NODE" link add up0 type veth peer name wire0 netns "$ID-w$n"
	ip -n "$NODE" addr add 192.0.2.10/24 dev up0
	ip -n "$NODE" link set up0 up
	ip -n "$ID-w$n" addr add 192.0.2.20/24 dev wire0
	ip -n "$ID-w$n" link set wire0 up
	"$INSTALL_SCRIPT" --cni-bin-dir "$D/cnibin" --cni-conf-dir "$D/cniconf" --plugin "$BUILD/sluice-cni" \
		--conflist "$ROOT/deploy/cni/10-sluice.conflist" --socket "$SOCK" >/dev/null || return 1
	nsenter --net="/run/netns/$NODE" setpriv --bounding-set=-all,"$CAPS" \
		"$BUILD/sluice-agent" --pod-cidr 10.249.$n.0/24 --node-name "$NODE" --socket "$SOCK" \
		--state-dir "$D/state" --bpffs "$BPFFS" --device up0 --routing "$routing" \
		--attach-mode "$attach" --xdp native --kubernetes off >>"$D/agent.log" 2>&1 &
	AGENT_PID=$!
	CLEANUP_PIDS+=("$AGENT_PID")
	wait_for_socket "$SOCK" 2>/dev/null || { cat "$D/agent.log" >&2; return 1; }
}

# pod_add NAME: ADD through the installed plugin, with the installed
# conflist turned into the plugin's configuration as libcni does; prints the
# address. The caller creates the namespace (not in a subshell, so that the
# cleanup knows it).
pod_add() {
	local pod=$ID-$1 conf
	conf=$(jq -c '.plugins[0] + {name, cniVersion}' "$D/cniconf/10-sluice.conflist")
	CNI_COMMAND=ADD CNI_CONTAINERID=c$pod CNI_NETNS=/run/netns/$pod CNI_IFNAME=eth0 \
		CNI_PATH=$D/cnibin CNI_ARGS="K8S_POD_NAMESPACE=default;K8S_POD_NAME=$1" \
		"$D/cnibin/sluice-cni" <<<"$conf" | jq -r '.ips[0].address // empty' | cut -d/ -f1
}

# What the cleanup is about; compared before and after.
snapshot() {
	echo "links: $(ip -n "$NODE" -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' | sort | tr '\n' ' ')"
	echo "up0 ingress: $(tc -n "$NODE" filter show dev up0 ingress | tr '\n' ' ')"
	echo "up0 egress: $(tc -n "$NODE" filter show dev up0 egress | tr '\n' ' ')"
	echo "up0 qdisc: $(tc -n "$NODE" qdisc show dev up0 | tr '\n' ' ')"
	echo "routes: $(ip -n "$NODE" -4 route show table all | sort | tr '\n' ' ')"
	echo "pins: $(find "$BPFFS" 2>/dev/null | sort | tr '\n' ' ')"
	echo "files: $(find "$D" -path "$D/agent.log" -prune -o -print | sort | tr '\n' ' ')"
}

# Objects that look like sluice's but are not: all must survive.
add_lookalikes() {
	ip -n "$NODE" link add lxc0123456789a type veth peer name notsluice0
	ip -n "$NODE" route add 198.51.100.0/24 dev up0 proto static
	printf '{"cniVersion":"1.0.0","name":"other","plugins":[{"type":"bridge"}]}\n' >"$D/cniconf/05-other.conflist"
	printf '#!/bin/sh\n' >"$D/cnibin/bridge"
}
lookalikes_intact() {
	ip -n "$NODE" link show lxc0123456789a >/dev/null &&
		ip -n "$NODE" route show proto static | grep -q '^198.51.100.0/24' &&
		test -f "$D/cniconf/05-other.conflist" && test -f "$D/cnibin/bridge"
}

# exited_saying RC REGEX ACTUAL_RC OUTPUT
exited_saying() {
	[ "$3" -eq "$1" ] && grep -qE -- "$2" <<<"$4" && return 0
	echo "exit $3, output:"
	printf '%s\n' "$4"
	return 1
}

cleanup_node() {
	SLUICE_SOCKET=$SOCK "$CLEANUP_SCRIPT" --netns "$NODE" --state-dir "$D/state" --bpffs "$BPFFS" \
		--cni-bin-dir "$D/cnibin" --cni-conf-dir "$D/cniconf" "$@"
}

# scenario N ROUTING ATTACH
scenario() {
	local n=$1 routing=$2 attach=$3 ip1 ip2 before out rc links=()
	echo "== a node with $routing routing and $attach attach, then node-cleanup.sh"
	node_up "$n" "$routing" "$attach" || { not_ok "node $n comes up"; return; }
	# Another node: in native mode its pod CIDR gets a protocol-83 route.
	cat >"$D/other-node.yaml" <<-EOF
	apiVersion: v1
	kind: Node
	metadata: {name: $ID-other}
	spec: {podCIDR: 10.249.100.0/24}
	status: {addresses: [{type: InternalIP, address: 192.0.2.20}]}
	EOF
	check "the agent takes another Node object" "$BUILD/sluicectl" --socket "$SOCK" apply -f "$D/other-node.yaml"
	netns_add "$ID-a$n"
	netns_add "$ID-b$n"
	ip1=$(pod_add a$n)
	ip2=$(pod_add b$n)
	check "two pods ADDed through the installed plugin and conflist ($ip1, $ip2)" test -n "$ip1" -a -n "$ip2"
	check "pod a reaches pod b (agent with capabilities $CAPS)" \
		probe "$ID-a$n" ping "$ip2" --count 1 --timeout 1000
	check "sluice's objects exist: router veth, pod veths, pins" \
		bash -c "ip -n '$NODE' link show sluice_host && ip -n '$NODE' -o link | grep -c ': lxc[0-9a-f]\{11\}@' | grep -qx 2 && ls '$BPFFS'/sluice_ep_v2"
	if [ "$routing" = overlay ]; then
		check "overlay: sluice_vxlan exists" ip -n "$NODE" link show sluice_vxlan
	else
		check "native: a protocol-83 route to the other node's pods" \
			bash -c "ip -n '$NODE' route show proto 83 | grep -q '^10.249.100.0/24 via 192.0.2.20'"
	fi
	if [ "$attach" = tc ]; then
		check "tc: from_netdev and to_netdev on the uplink" \
			bash -c "tc -n '$NODE' filter show dev up0 ingress | grep -q 'name from_netdev' &&
				tc -n '$NODE' filter show dev up0 egress | grep -q 'name to_netdev'"
		# A foreign classic-BPF filter on the same hook, same handle,
		# another priority: it and the clsact qdisc must stay.
		tc -n "$NODE" filter add dev up0 ingress pref 7 handle 1 bpf bytecode '1,6 0 0 0,'
	else
		for f in up0_ingress up0_egress; do
			links+=("$(bpftool -j link show pinned "$BPFFS/links/$f" | jq -r .id)")
		done
		check "tcx: the uplink's links are pinned (ids ${links[*]})" test -n "${links[0]}" -a -n "${links[1]}"
	fi
	check "the uplink's XDP program (--xdp native on the veth), its link pinned" \
		bash -c "ip -n '$NODE' -j -d link show up0 | jq -e '.[0].xdp.mode == 1 and .[0].xdp.prog.name == \"from_netdev_xdp\"' &&
			test -e '$BPFFS/links/up0_xdp'"
	add_lookalikes

	before=$(snapshot)
	out=$(cleanup_node 2>&1)
	rc=$?
	check "refused while the agent runs (exit 1, says why)" exited_saying 1 'still runs' "$rc" "$out"
	check "nothing changed by the refused run" test "$(snapshot)" = "$before"

	kill -TERM "$AGENT_PID"
	wait "$AGENT_PID" 2>/dev/null
	check "pods keep talking with the agent stopped" probe "$ID-a$n" ping "$ip2" --count 1 --timeout 1000
	before=$(snapshot)
	out=$(cleanup_node --dry-run 2>&1)
	rc=$?
	check "--dry-run exits 0 and lists what it would remove" \
		exited_saying 0 'would remove pod veth .*would remove pinned map' "$rc" "$(tr '\n' ' ' <<<"$out")"
	check "--dry-run changes nothing" test "$(snapshot)" = "$before"

	out=$(cleanup_node 2>&1)
	rc=$?
	printf '%s\n' "$out" >"$D/cleanup.out"
	check "node-cleanup.sh exits 0" test "$rc" -eq 0
	[ "$rc" -eq 0 ] || sed 's/^/       /' "$D/cleanup.out"
	check "no sluice device left (sluice_*, sluice's lxc veths)" \
		bash -c "! ip -n '$NODE' -o link show | grep -E ': (sluice_|lxc[0-9a-f]{11}@if)'"
	check "the pods lost their sluice interface" \
		bash -c "! ip -n '$ID-a$n' link show eth0 2>/dev/null && ! ip -n '$ID-b$n' link show eth0 2>/dev/null"
	check "no sluice tc filter left on the uplink" \
		bash -c "! tc -n '$NODE' filter show dev up0 ingress | grep -q 'name from_netdev' &&
			! tc -n '$NODE' filter show dev up0 egress | grep -q ."
	check "no XDP program left on the uplink (its link pin removed by name)" \
		bash -c "ip -n '$NODE' -j -d link show up0 | jq -e '.[0].xdp == null' &&
			grep -q 'removed XDP link pin .*up0_xdp' '$D/cleanup.out'"
	check "no protocol-83 route left" test -z "$(ip -n "$NODE" route show table all proto 83)"
	check "no pins left: $BPFFS is gone" test ! -e "$BPFFS"
	check "state directory, socket and its directory are gone" \
		bash -c "test ! -e '$D/state' -a ! -e '$SOCK' -a ! -e '$D/run/sluice'"
	check "CNI plugin and conflist are gone" test ! -e "$D/cnibin/sluice-cni" -a ! -e "$D/cniconf/10-sluice.conflist"
	check "look-alikes survive: lxc-named veth, static route, other CNI files" lookalikes_intact
	if [ "$attach" = tc ]; then
		check "the foreign filter and its clsact qdisc survive" \
			bash -c "tc -n '$NODE' filter show dev up0 ingress | grep -q 'pref 7 .*bytecode' &&
				tc -n '$NODE' qdisc show dev up0 | grep -q clsact"
	else
		check "the uplink's tcx links are gone (ids ${links[*]})" \
			bash -c "for _ in \$(seq 50); do bpftool link show id ${links[0]} >/dev/null 2>&1 ||
				bpftool link show id ${links[1]} >/dev/null 2>&1 || exit 0; sleep 0.05; done; exit 1"
	fi
	out=$(cleanup_node 2>&1)
	rc=$?
	check "a second run has nothing to do" exited_saying 0 "nothing of sluice's left" "$rc" "$out"
}

scenario 1 overlay tc
scenario 2 native tcx

echo "== the DaemonSet's capabilities are needed"
# cap_run CAPS N: start an agent with CAPS in node N (made by the caller, as
# cap_run runs in a subshell), ADD one pod.
cap_run() {
	local caps=$1 node=$ID-cap$2 d=$DIR/cap$2 pid out
	mkdir -p "$d"
	nsenter --net="/run/netns/$node" setpriv --bounding-set=-all,"$caps" "$BUILD/sluice-agent" \
		--pod-cidr 10.249.200.0/24 --node-name "$node" --socket "$d/s.sock" --state-dir "$d/state" \
		--bpffs "/sys/fs/bpf/$node" --kubernetes off >"$d/log" 2>&1 &
	pid=$!
	for _ in $(seq 40); do
		"$BUILD/sluicectl" --socket "$d/s.sock" status >/dev/null 2>&1 && break
		kill -0 "$pid" 2>/dev/null || { echo "agent exited: $(tail -1 "$d/log")"; return; }
		sleep 0.05
	done
	out=$(CNI_COMMAND=ADD CNI_CONTAINERID=c$node CNI_NETNS=/run/netns/$node-p CNI_IFNAME=eth0 CNI_PATH=$BUILD \
		"$BUILD/sluice-cni" <<<"{\"cniVersion\":\"1.1.0\",\"name\":\"sluice\",\"type\":\"sluice-cni\",\"socket\":\"$d/s.sock\"}" 2>/dev/null)
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	jq -r 'if .ips then "ADD ok" else "ADD failed: " + .msg end' <<<"$out"
}
for i in 1 2; do
	netns_add "$ID-cap$i"
	netns_add "$ID-cap$i-p"
	CLEANUP_PATHS+=("/sys/fs/bpf/$ID-cap$i")
done
out=$(cap_run "${CAPS//+net_admin/-net_admin}" 1)
check "without NET_ADMIN the agent does not start ($out)" grep -q '^agent exited' <<<"$out"
# BPF and PERFMON in its place: the datapath loads, entering a pod's netns
# does not.
out=$(cap_run "${CAPS//+sys_admin/+bpf,+perfmon}" 2)
check "with BPF and PERFMON instead of SYS_ADMIN an ADD fails ($out)" grep -q '^ADD failed' <<<"$out"

summary
