#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# containerd CRI interop: pod sandboxes created the way kubelet creates them
# (RunPodSandbox with metadata, hostname, port mappings, annotations and
# namespace options; StopPodSandbox; RemovePodSandbox) on a private
# containerd whose CNI network is sluice-cni, alone and with the reference
# meta plugins chained after it (portmap, tuning, firewall, bandwidth), in
# every attach mode of the agent.
#
#   tests/cri/run.sh            tc and tcx (every case), auto (the chain once)
#   tests/cri/run.sh MODE...    only these attach modes
#
# The node is a network namespace: the agent, containerd and so every CNI
# plugin (and portmap's and firewall's iptables rules) live in it; an
# "outside" namespace routed to it plays a client beyond the node.
# containerd gets its own config, root, state, sockets and CNI directories
# under one mktemp dir, and a pause image this script builds (a static C
# binary, tests/cri/pause.c) and imports: no registry, no internet. See
# tests/cri/README.md for the containerd settings this machine needs.
#
# Exit: 0 all checks passed, 1 a check failed, 77 skipped (not root, or
# containerd, runc, the reference plugins, python3-grpcio or a static libc
# missing).
set -uo pipefail
TEST_NAME=cri
source "$(dirname "$0")/../lib/common.sh"
need_root

skip() { echo "$TEST_NAME: SKIP: $*"; exit 77; }
for c in containerd ctr runc gcc iptables-save jq; do
	command -v "$c" >/dev/null 2>&1 || skip "$c is not installed (make deps)"
done
PLUGINS=/usr/lib/cni
for p in portmap tuning firewall bandwidth loopback; do
	[ -x "$PLUGINS/$p" ] || skip "$PLUGINS/$p missing (apt-get install containernetworking-plugins)"
done
/usr/bin/python3 -c 'import grpc' 2>/dev/null || skip "python3-grpcio is not installed"
for b in sluice-agent sluice-cni sluicectl sluice-probe; do
	[ -x "$BUILD/$b" ] || { echo "$TEST_NAME: $BUILD/$b is missing: run make first" >&2; exit 1; }
done

MODES=("$@")
[ ${#MODES[@]} -gt 0 ] || MODES=(tc tcx auto)
ID=slc$$
TMP=$(mktemp -d /tmp/sluice-cri.XXXXXX) || exit 1
chmod 700 "$TMP"
BPFFS=/sys/fs/bpf/$ID
CGROUP=/$ID			# the pods' cgroup parent, as kubelet gives one
IMAGE=localhost/sluice-pause:test
CIDR=10.249.0.0/24
NODE_IP=192.168.249.1		# the node's address towards the outside netns
OUT_IP=192.168.249.2
CRI=("/usr/bin/python3" "$ROOT/tests/tools/cri.py")
CTRD_PID=
SANDBOXES=()
# Global directories containerd, its shims and libcni create on first use:
# removed again at the end only if this run created them and they are empty.
GLOBAL_DIRS=(/run/containerd/s /run/containerd /var/lib/cni/results /var/lib/cni)
declare -A PREEXISTING=()
for d in "${GLOBAL_DIRS[@]}"; do [ -e "$d" ] && PREEXISTING[$d]=1; done

cri() { "${CRI[@]}" --socket "$TMP/$MODE/containerd.sock" "$@"; }
ctl() { "$BUILD/sluicectl" --socket "$SOCK" "$@"; }

# stop_containerd: pods first (their DEL needs the agent), then containerd,
# then shims still running for our state dir (found by that unique path).
stop_containerd() {
	local id p
	for id in "${SANDBOXES[@]}"; do
		cri stopp "$id" >/dev/null 2>&1
		cri rmp "$id" >/dev/null 2>&1
	done
	SANDBOXES=()
	if [ -n "$CTRD_PID" ]; then
		kill -TERM "$CTRD_PID" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$CTRD_PID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$CTRD_PID" 2>/dev/null
		wait "$CTRD_PID" 2>/dev/null
		CTRD_PID=
	fi
	for p in $(pgrep -f -- "-address $TMP/" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
	findmnt -rn -o TARGET 2>/dev/null | grep "^$TMP/" | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null; done
}

cri_cleanup() {
	local rc=$? d
	set +e
	trap - EXIT
	stop_containerd
	for d in /sys/fs/cgroup/*"$CGROUP"; do [ -d "$d" ] && rmdir "$d" 2>/dev/null; done
	for d in "${GLOBAL_DIRS[@]}"; do
		[ -n "${PREEXISTING[$d]:-}" ] || rmdir "$d" 2>/dev/null
	done
	CLEANUP_PATHS+=("$TMP" "$BPFFS")
	(exit "$rc")
	cleanup
}
trap cri_cleanup EXIT

# ---- the pause image (once) ----------------------------------------------
gcc -static -Os -s -Wall -Wextra -Werror -o "$TMP/pause" "$ROOT/tests/cri/pause.c" ||
	skip "cannot link a static binary (libc6-dev's libc.a)"
/usr/bin/python3 "$ROOT/tests/cri/mkimage.py" "$TMP/pause" "$IMAGE" "$TMP/pause.tar" || exit 1

# ---- per attach mode: node netns, agent, containerd -----------------------
# start_node MODE: fresh node and outside namespaces, agent, containerd.
start_node() {
	local d=$TMP/$MODE
	NODE=$ID-$MODE
	OUTSIDE=$ID-o$MODE
	SOCK=$d/agent/agent.sock
	CONFDIR=$d/net.d
	mkdir -p "$d"/{root,state,runc,cni-bin,net.d,agent}
	netns_add "$NODE"
	netns_add "$OUTSIDE"
	ip link add up0 netns "$NODE" type veth peer name eth0 netns "$OUTSIDE" &&
		ip -n "$NODE" addr add "$NODE_IP/24" dev up0 && ip -n "$NODE" link set up0 up &&
		ip -n "$OUTSIDE" addr add "$OUT_IP/24" dev eth0 && ip -n "$OUTSIDE" link set eth0 up &&
		ip -n "$OUTSIDE" route add default via "$NODE_IP" || return 1
	ip netns exec "$NODE" sysctl -qw net.ipv4.ip_forward=1 || return 1
	for p in portmap tuning firewall bandwidth loopback; do
		ln -s "$PLUGINS/$p" "$d/cni-bin/$p"
	done
	ln -s "$BUILD/sluice-cni" "$d/cni-bin/sluice-cni"
	rm -rf "$BPFFS"
	AGENT_ARGS="--attach-mode $MODE --cni-conf-dir $CONFDIR" \
		start_agent "$NODE" "$CIDR" "$d/agent" || return 1
	cat >"$d/config.toml" <<EOF
version = 2
root = "$d/root"
state = "$d/state"
# opt creates /opt/containerd; the others are snapshotters this test does not use
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.overlayfs"]
[grpc]
  address = "$d/containerd.sock"
[ttrpc]
  address = "$d/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$IMAGE"
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$d/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$d/cni-bin"
    conf_dir = "$CONFDIR"
    max_conf_num = 1
EOF
	nsenter --net="/run/netns/$NODE" containerd --config "$d/config.toml" \
		>"$d/containerd.log" 2>&1 &
	CTRD_PID=$!
	for _ in $(seq 100); do
		cri version >/dev/null 2>&1 && break
		kill -0 "$CTRD_PID" 2>/dev/null || break
		sleep 0.1
	done
	cri version >/dev/null 2>&1 || { tail -n 20 "$d/containerd.log" >&2; return 1; }
	ctr --address "$d/containerd.sock" -n k8s.io images import --snapshotter native "$TMP/pause.tar" >/dev/null
}

stop_node() {
	stop_containerd
	kill -TERM "$AGENT_PID" 2>/dev/null
	for _ in $(seq 100); do kill -0 "$AGENT_PID" 2>/dev/null || break; sleep 0.1; done
	ip netns del "$NODE" 2>/dev/null
	ip netns del "$OUTSIDE" 2>/dev/null
	rm -rf "$BPFFS"
}

# conflist NAME PLUGIN-JSON...: the only network in the CRI's conf_dir.
# Written in place (containerd reloads on the create and write events it
# sees there, not on a rename into the directory), then a second for the
# reload.
conflist() {
	local name=$1 plugins
	shift
	plugins=$(printf '%s,' "$@")
	rm -f "$CONFDIR"/*
	CONFFILE=$CONFDIR/10-$name.conflist
	printf '{"cniVersion":"1.0.0","name":"%s","plugins":[%s]}\n' "$name" "${plugins%,}" \
		>"$CONFFILE"
	sleep 1
}
SLUICE() { printf '{"type":"sluice-cni","socket":"%s","capabilities":{"bandwidth":true}}' "$SOCK"; }
PORTMAP='{"type":"portmap","capabilities":{"portMappings":true}}'
BANDWIDTH='{"type":"bandwidth"}'
BANDWIDTH_CAP='{"type":"bandwidth","capabilities":{"bandwidth":true}}'

# runp NAME [cri.py runp args]: a pod sandbox as kubelet asks for it; sets
# SBX (its id) or returns 1 with the runtime's error in RUNP_ERR.
runp() {
	local name=$1
	shift
	SBX=
	SBX=$(cri runp --name "$name" --namespace default --uid "uid-$ID-$name" \
		--hostname "$name" --cgroup-parent "$CGROUP" "$@" 2>"$TMP/runp.err")
	local rc=$?
	RUNP_ERR=$(cat "$TMP/runp.err")
	[ $rc = 0 ] || SBX=
	[ -z "$SBX" ] || SANDBOXES+=("$SBX")
	return $rc
}
remove() {
	cri stopp "$1" && cri rmp "$1" || return 1
	local keep=() s
	for s in "${SANDBOXES[@]}"; do [ "$s" = "$1" ] || keep+=("$s"); done
	SANDBOXES=("${keep[@]}")
}
in_pod() { local ns=$1; shift; nsenter --net="$ns" "$@"; }

# Host state a pod may leave behind, as one comparable text: veths, IFBs,
# non-clsact qdiscs, iptables rules naming a pod address or CNI-DN chain,
# endpoints and IPAM reservations.
host_state() {
	ip -n "$NODE" -o link show type veth | awk -F': ' '{print "veth", $2}' | cut -d@ -f1
	ip -n "$NODE" -o link show type ifb | awk -F': ' '{print "ifb", $2}'
	tc -n "$NODE" qdisc show | grep -v -e '^qdisc noqueue' -e '^qdisc clsact' \
		-e '^qdisc noop' | sed 's/^/qdisc /'
	ip netns exec "$NODE" iptables-save | grep -e '10\.249\.0\.' -e 'CNI-DN-' \
		-e '^-A CNI-FORWARD -[sd]' | sed 's/^/iptables /'
	ctl get endpoints -o json | jq -r '.endpoints[] | "endpoint \(.containerId) \(.ip)"'
	ctl status -o json | jq -r '"ipam used \(.ipam.used)"'
}

# ---- cases ---------------------------------------------------------------
# alone: sluice-cni is the whole network.
case_alone() {
	local a= b= ipa ipb nsa nsb before
	echo "== $MODE: sluice-cni alone"
	before=$(host_state)
	conflist sluice "$(SLUICE)"
	runp "alone-a"; a=$SBX
	check "$MODE alone: sandbox alone-a starts" test -n "${a:-}"
	[ -n "$a" ] || { echo "       $RUNP_ERR"; return; }
	runp "alone-b"; b=$SBX
	check "$MODE alone: sandbox alone-b starts" test -n "${b:-}"
	[ -n "$b" ] || { echo "       $RUNP_ERR"; return; }
	ipa=$(cri ip "$a"); ipb=$(cri ip "$b")
	nsa=$(cri netns "$a"); nsb=$(cri netns "$b")
	check "$MODE alone: the runtime reports both addresses ($ipa, $ipb), the agent lists them" \
		bash -c "'$BUILD/sluicectl' --socket '$SOCK' get endpoints -o json |
			jq -e '[.endpoints[].ip] | sort == ([\"$ipa\", \"$ipb\"] | sort)'"
	nsenter --net="$nsa" "$BUILD/sluice-probe" serve --tcp 8080 >/dev/null 2>&1 &
	CLEANUP_PIDS+=($!)
	check "$MODE alone: tcp alone-b -> alone-a:8080" \
		eventually 3 in_pod "$nsb" "$BUILD/sluice-probe" tcp "$ipa" 8080 --timeout 1000
	kill "${CLEANUP_PIDS[-1]}" 2>/dev/null
	check "$MODE alone: Stop/Remove alone-a" remove "$a"
	check "$MODE alone: Stop/Remove alone-b" remove "$b"
	check "$MODE alone: nothing left behind (veth, qdisc, IFB, rule, endpoint, address)" \
		diff <(echo "$before") <(host_state)
}

# chain: the sample deploy/cni/examples/20-sluice-chained.conflist (sluice-cni
# with the bandwidth capability, portmap, tuning, firewall) with this node's
# socket, plus the reference bandwidth plugin without capability or rates.
case_chain() {
	local a= b= ipa nsa nsb before sample
	echo "== $MODE: sluice-cni + portmap + tuning + firewall + bandwidth"
	before=$(host_state)
	mapfile -t sample < <(jq -c --arg s "$SOCK" '.plugins[] | if .type == "sluice-cni" then
		.socket = $s else . end' "$ROOT/deploy/cni/examples/20-sluice-chained.conflist")
	conflist sluice "${sample[@]}" "$BANDWIDTH"
	runp "chain-a" --port 8080:8080/tcp --annotation kubernetes.io/egress-bandwidth=20M \
		--annotation kubernetes.io/ingress-bandwidth=10M; a=$SBX
	check "$MODE chain: sandbox chain-a (hostPort 8080, bandwidth annotations) starts" \
		test -n "${a:-}"
	[ -n "$a" ] || { echo "       $RUNP_ERR"; return; }
	runp "chain-b"; b=$SBX
	check "$MODE chain: sandbox chain-b starts" test -n "${b:-}"
	[ -n "$b" ] || { echo "       $RUNP_ERR"; return; }
	ipa=$(cri ip "$a"); nsa=$(cri netns "$a"); nsb=$(cri netns "$b")
	check "$MODE chain: tuning set net.ipv4.conf.eth0.accept_redirects=0 in the pod" \
		test "$(in_pod "$nsa" cat /proc/sys/net/ipv4/conf/eth0/accept_redirects)" = 0
	check "$MODE chain: firewall accepts the pod's forwarded traffic" \
		bash -c "ip netns exec '$NODE' iptables-save | grep -q -- '-A CNI-FORWARD -s $ipa/32 -j ACCEPT'"
	nsenter --net="$nsa" "$BUILD/sluice-probe" serve --tcp 8080 >/dev/null 2>&1 &
	CLEANUP_PIDS+=($!)
	check "$MODE chain: hostPort $NODE_IP:8080 from outside the node reaches chain-a" \
		eventually 3 probe "$OUTSIDE" tcp "$NODE_IP" 8080 --timeout 1000
	check "$MODE chain: hostPort $NODE_IP:8080 from chain-b reaches chain-a" \
		eventually 3 in_pod "$nsb" "$BUILD/sluice-probe" tcp "$NODE_IP" 8080 --timeout 1000
	kill "${CLEANUP_PIDS[-1]}" 2>/dev/null
	check "$MODE chain: the bandwidth plugin installed no qdisc or IFB of its own" \
		bash -c "! ip -n '$NODE' -o link show type ifb | grep -q . &&
			! tc -n '$NODE' qdisc show | grep -qE '^qdisc (tbf|ingress)'"
	check "$MODE chain: the annotations are chain-a's limits in sluice (egress 20M, ingress 10M)" \
		bash -c "'$BUILD/sluicectl' --socket '$SOCK' get endpoints -o json | jq -e --arg ip '$ipa' '
			.endpoints[] | select(.ip == \$ip) | .bandwidth |
			.egressRate == 20000000 and .ingressRate == 10000000'"
	check "$MODE chain: Stop/Remove chain-a" remove "$a"
	check "$MODE chain: Stop/Remove chain-b" remove "$b"
	check "$MODE chain: nothing left behind (veth, qdisc, IFB, rule, endpoint, address)" \
		diff <(echo "$before") <(host_state)
}

# conflict: the reference bandwidth plugin with capabilities.bandwidth.
case_conflict() {
	local a= b= before
	echo "== $MODE: bandwidth plugin with capabilities.bandwidth chained"
	before=$(host_state)
	conflist sluice "$(SLUICE)" "$PORTMAP" "$BANDWIDTH_CAP"
	check "$MODE conflict: sluicectl status names the chained bandwidth plugin" \
		bash -c "'$BUILD/sluicectl' --socket '$SOCK' status -o json | jq -e --arg f '$CONFFILE' '
			.conditions | any(.type == \"ChainedBandwidthPlugin\" and (.message | contains(\$f)))' &&
			'$BUILD/sluicectl' --socket '$SOCK' status | grep -q 'ChainedBandwidthPlugin'"
	touch "$CONFFILE"	# re-read at the next ADD, the same plugin found again
	runp "conf-b"; b=$SBX
	check "$MODE conflict: a sandbox without limits starts" test -n "$b"
	[ -n "$b" ] || echo "       $RUNP_ERR"
	if [ "$(ctl status -o json | jq -r .attachMode)" = tc ]; then
		runp "conf-a" --annotation kubernetes.io/egress-bandwidth=20M; a=$SBX
		check "$MODE conflict: the sandbox with limits is refused" test -z "$a"
		check "$MODE conflict: with sluice's message (file, plugin, fix), not the plugin's" \
			bash -c "grep -q 'plugin type=\"sluice-cni\" failed (add): pod bandwidth limits' <<<\"\$1\" &&
				grep -q -- '$CONFFILE chains the bandwidth plugin (plugins\[2\]' <<<\"\$1\" &&
				grep -q 'remove the bandwidth plugin' <<<\"\$1\" &&
				grep -q 'attach-mode tcx' <<<\"\$1\" &&
				! grep -q 'plugin type=\"bandwidth\"' <<<\"\$1\"" _ "$RUNP_ERR"
	else
		runp "conf-a" --annotation kubernetes.io/egress-bandwidth=20M; a=$SBX
		check "$MODE conflict: the sandbox with limits starts" test -n "$a"
		[ -n "$a" ] || echo "       $RUNP_ERR"
		# The plugin shaped it its way: an IFB for the pod's egress.
		check "$MODE conflict: the bandwidth plugin set up its IFB next to sluice's tcx programs" \
			bash -c "ip -n '$NODE' -o link show type ifb | grep -q ."
		[ -n "$a" ] && check "$MODE conflict: Stop/Remove it" remove "$a"
	fi
	[ -n "$b" ] && check "$MODE conflict: Stop/Remove the sandbox without limits" remove "$b"
	# Read at the status, re-read at the ADD after the touch: warned once.
	check "$MODE conflict: the agent warned once about the chained plugin" \
		test "$(grep -c 'sluice enforces pod bandwidth limits itself and the plugin cannot' \
			"$TMP/$MODE/agent/agent.log")" = 1
	check "$MODE conflict: nothing left behind (veth, qdisc, IFB, rule, endpoint, address)" \
		diff <(echo "$before") <(host_state)
}

T0=$(date +%s)
for MODE in "${MODES[@]}"; do
	echo "== attach mode $MODE"
	if ! start_node; then
		not_ok "$MODE: node, agent and containerd start"
		continue
	fi
	ok "$MODE: node $NODE, agent and containerd $(cri version | cut -d' ' -f2) running"
	if [ "$MODE" = auto ]; then
		case_chain
	else
		case_alone
		case_chain
		case_conflict
	fi
	stop_node
done
echo "$TEST_NAME: ${MODES[*]} in $(($(date +%s) - T0)) s"
summary
