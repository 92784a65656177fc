# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
#
# Several sluice "nodes" on one machine, for tests/multinode/run.sh and
# bench/multinode.sh. A cluster is a set of network namespaces named after a
# prefix P:
#
#   P-phys            the physical network: a Linux bridge, br0
#   P-node1 .. nodeN  one per node; its uplink0 (a veth whose other end,
#                     portN, is a port of br0) has 10.200.0.1N/24, MTU 1500,
#                     GRO on
#   P-NAME            one per pod, wired up by the real sluice-cni
#
# Node N's pod CIDR is 10.210.N.0/24 and its agent runs with
# --node-name nodeN --device uplink0 --routing MODE, with its socket, state
# and log under MN_DIR/P/nodeN and its pins under /sys/fs/bpf/P-nodeN.
# Nothing here has a route to any address outside these namespaces.
#
# Sourced after tests/lib/common.sh (netns_add, cni, serve, CLEANUP_*); the
# caller sets MN_DIR to a directory it cleans up.

MN_MTU=1500

mn_node_ip() { printf '10.200.0.%d' $((10 + $1)); }
mn_pod_cidr() { printf '10.210.%d.0/24' "$1"; }
mn_router() { printf '10.210.%d.1' "$1"; }
mn_node_dir() { printf '%s/%s/node%d' "$MN_DIR" "$1" "$2"; }
mn_sock() { printf '%s/agent.sock' "$(mn_node_dir "$1" "$2")"; }

# mn_ctl P N ARGS...: sluicectl against node N's agent of cluster P.
mn_ctl() {
	local p=$1 n=$2
	shift 2
	"$BUILD/sluicectl" --socket "$(mn_sock "$p" "$n")" "$@"
}

# mn_conf P N: the CNI network configuration a runtime on node N reads.
mn_conf() {
	printf '{"cniVersion":"1.1.0","name":"sluice","type":"sluice-cni","socket":"%s"}' \
		"$(mn_sock "$1" "$2")"
}

# mn_topology P NODES: the physical network and NODES bare node namespaces,
# addressed and up, no agent.
mn_topology() {
	local p=$1 nodes=$2 i
	netns_add "$p-phys" || return 1
	ip -n "$p-phys" link add br0 mtu "$MN_MTU" type bridge || return 1
	ip -n "$p-phys" link set br0 up || return 1
	for i in $(seq "$nodes"); do
		netns_add "$p-node$i" || return 1
		ip -n "$p-phys" link add "port$i" mtu "$MN_MTU" type veth \
			peer name uplink0 mtu "$MN_MTU" netns "$p-node$i" || return 1
		ip -n "$p-phys" link set "port$i" master br0 up || return 1
		ip -n "$p-node$i" addr add "$(mn_node_ip "$i")/24" dev uplink0 || return 1
		# GRO on, as a NIC driver has it (veth has it off): with the
		# agent's XDP program on uplink0 the veth gets MTU-sized frames
		# (its peer loses GSO), which GRO aggregates again after XDP,
		# tunnel packets included, as on a real node.
		ip netns exec "$p-node$i" ethtool -K uplink0 gro on >/dev/null || return 1
		ip -n "$p-node$i" link set uplink0 up || return 1
	done
}

# mn_start_agent P N MODE: node N's agent, in its node namespace (nsenter,
# not 'ip netns exec', which would hide /sys/fs/bpf); waits for its socket.
# MN_AGENT_ARGS is added to the command line. Sets MN_AGENT_PID.
mn_start_agent() {
	local p=$1 n=$2 mode=$3 dir
	dir=$(mn_node_dir "$p" "$n")
	mkdir -p "$dir"
	CLEANUP_PATHS+=("/sys/fs/bpf/$p-node$n")
	# shellcheck disable=SC2086 # MN_AGENT_ARGS is a list of words
	nsenter --net="/run/netns/$p-node$n" "$BUILD/sluice-agent" \
		--node-name "node$n" --pod-cidr "$(mn_pod_cidr "$n")" \
		--device uplink0 --routing "$mode" \
		--socket "$dir/agent.sock" --state-dir "$dir/state" \
		--bpffs "/sys/fs/bpf/$p-node$n" ${MN_AGENT_ARGS:-} >>"$dir/agent.log" 2>&1 &
	MN_AGENT_PID=$!
	CLEANUP_PIDS+=("$MN_AGENT_PID")
	wait_for_socket "$dir/agent.sock"
}

# mn_node_json N: node N as the API server has it (v1 Node).
mn_node_json() {
	jq -cn --arg name "node$1" --arg cidr "$(mn_pod_cidr "$1")" --arg ip "$(mn_node_ip "$1")" '
		{apiVersion: "v1", kind: "Node",
		 metadata: {name: $name, labels: {"kubernetes.io/hostname": $name}},
		 spec: {podCIDR: $cidr, podCIDRs: [$cidr]},
		 status: {addresses: [{type: "InternalIP", address: $ip},
				      {type: "Hostname", address: $name}]}}'
}

# mn_pod_json NAMESPACE NAME NODE IP APP: a running v1 Pod with label
# app=APP, scheduled on node NODE, with address IP and one container serving
# TCP 8080 (named http) and UDP 8081 (named dns).
mn_pod_json() {
	jq -cn --arg ns "$1" --arg name "$2" --arg node "node$3" --arg ip "$4" --arg app "$5" \
		--arg hostip "$(mn_node_ip "$3")" '
		{apiVersion: "v1", kind: "Pod",
		 metadata: {namespace: $ns, name: $name, labels: {app: $app}},
		 spec: {nodeName: $node,
			containers: [{name: "probe", image: "sluice-probe",
				      ports: [{name: "http", containerPort: 8080, protocol: "TCP"},
					      {name: "dns", containerPort: 8081, protocol: "UDP"}]}]},
		 status: {phase: "Running", hostIP: $hostip, podIP: $ip, podIPs: [{ip: $ip}]}}'
}

# mn_list: the JSON documents on stdin as one v1 List.
mn_list() { jq -cs '{apiVersion: "v1", kind: "List", items: .}'; }

# mn_apply_all P NODES: sluicectl apply -f - (stdin) to every agent of P.
mn_apply_all() {
	local p=$1 nodes=$2 i doc rc=0
	doc=$(cat)
	for i in $(seq "$nodes"); do
		mn_ctl "$p" "$i" apply -f - <<<"$doc" >/dev/null || rc=1
	done
	return "$rc"
}

# mn_pod_add P N NAME [NAMESPACE]: a pod on node N through sluice-cni, as a
# runtime creates it (K8S_POD_NAMESPACE / K8S_POD_NAME), in the network
# namespace P-NAME, which the caller created (netns_add, not in a $(...)
# subshell, so that it is cleaned up). Prints the CNI result.
mn_pod_add() {
	local p=$1 n=$2 name=$3
	POD_NAMESPACE=${4:-default} cni ADD "$name" "/run/netns/$p-$name" "$(mn_conf "$p" "$n")"
}

mn_pod_del() {
	local p=$1 n=$2 name=$3
	POD_NAMESPACE=${4:-default} cni DEL "$name" "/run/netns/$p-$name" "$(mn_conf "$p" "$n")"
}

# mn_mode NAME VAR SCRIPT [MODE]: a suite's routing mode. Without MODE,
# SCRIPT runs once per mode (mn_each_mode) and the caller exits with the
# result; with it, MODE is checked and set.
mn_mode() {
	local name=$1 var=$2 script=$3
	shift 3
	if [ $# -eq 0 ]; then
		mn_each_mode "$name" "$var" "$script"
		exit
	fi
	if [ $# -ne 1 ] || { [ "$1" != overlay ] && [ "$1" != native ]; }; then
		echo "usage: $script [overlay|native]" >&2
		exit 2
	fi
	# shellcheck disable=SC2034 # the caller's setting
	MODE=$1
}

# mn_each_mode NAME VAR SCRIPT: run SCRIPT once per routing mode (overlay,
# then native), each in its own process so that each cleans up after itself,
# with VAR="NAME MODE" as its test name; count what they report and print
# the summary (its status is the result).
mn_each_mode() {
	local name=$1 var=$2 script=$3 mode out line p f
	for mode in overlay native; do
		echo "=== $mode"
		out=$(mktemp "/tmp/sluice-$name-out.XXXXXX")
		CLEANUP_PATHS+=("$out")
		env "$var=$name $mode" "$script" "$mode" | tee "$out"
		line=$(grep -E "^$name $mode: [0-9]+ passed, [0-9]+ failed$" "$out" | tail -n 1)
		if [ -z "$line" ]; then
			not_ok "$mode: the suite did not finish (see above)"
			continue
		fi
		read -r p f <<<"$(sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed/\1 \2/' <<<"$line")"
		PASS=$((PASS + p))
		FAIL=$((FAIL + f))
	done
	summary
}
