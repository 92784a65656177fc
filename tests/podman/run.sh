#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Podman interop test: two podman containers on a CNI network served by
# sluice-cni + sluice-agent reach each other (ICMP, TCP, UDP), and removing
# them (CNI DEL) leaves no endpoint behind.
#
#   tests/podman/run.sh              the real test (needs `make` first)
#   tests/podman/run.sh --fake-cni   self-test of the rig: a throwaway shell
#                                    CNI plugin (veth + bridge in the node
#                                    netns) stands in for sluice-cni/agent
#
# Everything is private and temporary: podman runs with its own
# containers.conf/storage.conf (CONTAINERS_CONF, CONTAINERS_STORAGE_CONF)
# under a mktemp dir; the agent lives in its own network namespace
# slp-node-$$; pod addresses come from 10.251.0.0/16. All of it is removed
# on exit, also on failure. See tests/podman/README.md for the podman
# settings this machine needs and why.
#
# Exit: 0 all checks passed, 1 a check failed, 77 skipped (no podman, not
# root, no static busybox).
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-$REPO/build}
BUILD=$(cd "$BUILD" 2>/dev/null && pwd || echo "$BUILD")
POD_CIDR=${SLUICE_PODMAN_CIDR:-10.251.100.0/24}
FAKE=0
LABEL="podman interop"

for a in "$@"; do
	case $a in
	--fake-cni) FAKE=1; LABEL="podman interop (fake CNI)" ;;
	-h|--help) sed -n '3,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "$0: unknown argument '$a'" >&2; exit 2 ;;
	esac
done

skip() { echo "$LABEL: SKIP: $*"; exit 77; }

command -v podman >/dev/null 2>&1 || skip "podman is not installed (apt-get install podman)"
command -v runc >/dev/null 2>&1 || skip "runc is not installed (apt-get install runc)"
command -v conmon >/dev/null 2>&1 || skip "conmon is not installed"
[ "$(id -u)" = 0 ] || skip "needs root"
BUSYBOX=$(command -v busybox 2>/dev/null || true)
[ -n "$BUSYBOX" ] || skip "busybox is not installed (apt-get install busybox-static)"
if ldd "$BUSYBOX" >/dev/null 2>&1; then
	skip "$BUSYBOX is dynamically linked; the container rootfs needs busybox-static"
fi

need=("$BUILD/sluice-probe")
[ $FAKE = 1 ] || need+=("$BUILD/sluice-agent" "$BUILD/sluice-cni" "$BUILD/sluicectl")
for b in "${need[@]}"; do
	if [ ! -x "$b" ]; then
		echo "$LABEL: $b is missing: run 'make' first" >&2
		echo "$LABEL: 0 passed, 1 failed"
		exit 1
	fi
done

# ---- state and cleanup ---------------------------------------------------
NODE=slp-node-$$
BPFFS=/sys/fs/bpf/sluice-podman-$$
TMP=
AGENT_PID=
CTRS=()
GLOBAL_DIRS=(/var/lib/cni/results /var/lib/cni /run/runc)
declare -A PREEXISTING=()
for d in "${GLOBAL_DIRS[@]}"; do [ -e "$d" ] && PREEXISTING[$d]=1; done
PASS=0
FAIL=0

log() { echo "$LABEL: $*"; }

pm() { timeout 120 podman "$@"; }

cleanup() {
	local rc=$? c d
	set +e
	trap - EXIT INT TERM
	if [ -n "$TMP" ] && [ -e "$TMP/containers.conf" ]; then
		export CONTAINERS_CONF=$TMP/containers.conf
		export CONTAINERS_STORAGE_CONF=$TMP/storage.conf
		# Containers first, while the agent still answers CNI DEL.
		for c in "${CTRS[@]}"; do
			timeout 60 podman rm -f -t 0 "$c" >/dev/null 2>&1
		done
		timeout 60 podman rm -a -f -t 0 >/dev/null 2>&1
	fi
	if [ -n "$AGENT_PID" ] && kill -0 "$AGENT_PID" 2>/dev/null; then
		kill -TERM "$AGENT_PID" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$AGENT_PID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$AGENT_PID" 2>/dev/null
		wait "$AGENT_PID" 2>/dev/null
	fi
	# Global directories podman/libcni/runc create on first use (CNI result
	# cache, runc state): removed again only if this run created them and
	# they are empty. (`podman system reset` is avoided on purpose: it
	# creates ~/.config/containers/podman.)
	for d in "${GLOBAL_DIRS[@]}"; do
		[ -n "${PREEXISTING[$d]:-}" ] || rmdir "$d" 2>/dev/null
	done
	ip netns del "$NODE" 2>/dev/null
	if [ -e "$BPFFS" ]; then
		mountpoint -q "$BPFFS" 2>/dev/null && umount "$BPFFS" 2>/dev/null
		rm -rf "$BPFFS"
	fi
	if [ -n "$TMP" ] && [ -d "$TMP" ]; then
		# storage drivers may leave mounts below graphroot/runroot
		findmnt -rn -o TARGET 2>/dev/null | grep "^$TMP/" | sort -r |
			while read -r m; do umount -l "$m" 2>/dev/null; done
		rm -rf "$TMP"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

pass() { PASS=$((PASS + 1)); echo "  ok   $*"; }
fail() { FAIL=$((FAIL + 1)); echo "  FAIL $*"; }

# check NAME CMD...: run CMD (output kept), count pass/fail.
check() {
	local name=$1 out
	shift
	out=$("$@" 2>&1)
	local rc=$?
	if [ $rc = 0 ]; then
		pass "$name"
	else
		fail "$name (exit $rc)"
		[ -n "$out" ] && printf '%s\n' "$out" | tail -n 8 | sed 's/^/       | /'
	fi
	return $rc
}

finish() {
	echo "$LABEL: $PASS passed, $FAIL failed"
	[ $FAIL = 0 ] && [ $PASS -gt 0 ]
	exit $?
}

# abort NAME: a step later checks depend on failed; report and stop.
abort() {
	fail "$*"
	if [ -n "$AGENT_PID" ] && [ -s "$TMP/agent.log" ]; then
		echo "  --- agent log (tail) ---"
		tail -n 20 "$TMP/agent.log" | sed 's/^/       | /'
	fi
	finish
}

TMP=$(mktemp -d /tmp/sluice-podman.XXXXXX) || { echo "mktemp failed" >&2; exit 1; }
chmod 700 "$TMP"
mkdir -p "$TMP"/{net,storage,run,tmp,agent,plugins}
# podman would otherwise create ~/.config/containers and friends
export XDG_CONFIG_HOME=$TMP/xdg/config XDG_DATA_HOME=$TMP/xdg/data
SOCK=$TMP/agent/sluice.sock
STATE=$TMP/agent/state

# ---- private podman configuration ----------------------------------------
# runc, not crun: cgroups v1 hybrid here. cgroupfs: no systemd. file events:
# no journald. file locks: no shared /dev/shm/libpod_lock with other
# podman users. Explicit ulimits: podman's defaults (nofile 1048576, nproc
# 4194304) need CAP_SYS_RESOURCE, and podman caps its own RLIMIT_NPROC at
# 32768, which the container's hard limit may not exceed.
hn=$(ulimit -Hn); [ "$hn" = unlimited ] && hn=1048576
[ "$hn" -gt 1048576 ] && hn=1048576
hu=$(ulimit -Hu); [ "$hu" = unlimited ] && hu=32768
[ "$hu" -gt 32768 ] && hu=32768
if [ $FAKE = 1 ]; then PLUGIN_DIR=$TMP/plugins; else PLUGIN_DIR=$BUILD; fi

cat >"$TMP/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$hn:$hn", "nproc=$hu:$hu"]
log_driver = "k8s-file"

[network]
network_backend = "cni"
cni_plugin_dirs = ["$PLUGIN_DIR"]
network_config_dir = "$TMP/net"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
lock_type = "file"
tmp_dir = "$TMP/tmp"
volume_path = "$TMP/storage/volumes"
EOF
cat >"$TMP/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$TMP/storage"
runroot = "$TMP/run"
EOF
export CONTAINERS_CONF=$TMP/containers.conf
export CONTAINERS_STORAGE_CONF=$TMP/storage.conf
unset CONTAINERS_REGISTRIES_CONF CONTAINER_HOST CONTAINER_CONNECTION

# ---- container root filesystems (no image pulls) -------------------------
# busybox-static plus sluice-probe and the shared libraries it needs.
mkrootfs() {
	local d=$1 a lib
	mkdir -p "$d"/{bin,etc,proc,sys,dev,tmp,run,root}
	cp "$BUSYBOX" "$d/bin/busybox"
	for a in $("$d/bin/busybox" --list); do
		[ "$a" = busybox ] || ln -s busybox "$d/bin/$a"
	done
	cp "$BUILD/sluice-probe" "$d/bin/sluice-probe"
	for lib in $(ldd "$BUILD/sluice-probe" | grep -o '/[^ ]*'); do
		cp -L --parents "$lib" "$d/"
	done
	echo 'root:x:0:0:root:/root:/bin/sh' >"$d/etc/passwd"
	echo 'root:x:0:' >"$d/etc/group"
	chmod 1777 "$d/tmp"
}
mkrootfs "$TMP/rootfs-a" || abort "build rootfs"
cp -a "$TMP/rootfs-a" "$TMP/rootfs-b" || abort "build rootfs"

# ---- the fake plugin (--fake-cni only) ---------------------------------------
# Same type name and conflist as the real one; does the veth work itself and
# plugs host ends into bridge br0 in the node netns.
write_fake_plugin() {
	local prefix=${POD_CIDR%.*}
	cat >"$TMP/plugins/sluice-cni" <<EOF
#!/bin/bash
# fake sluice-cni for the podman rig self-test
NODE=$NODE
PREFIX=$prefix
STATE=$TMP/fake-state
EOF
	cat >>"$TMP/plugins/sluice-cni" <<'EOF'
set -u
err() { printf '{"cniVersion":"1.0.0","code":999,"msg":"%s"}\n' "$*"; exit 1; }
cat >/dev/null
mkdir -p "$STATE"
hv="fk${CNI_CONTAINERID:0:10}"
in_pod() { nsenter --net="$CNI_NETNS" "$@"; }
case ${CNI_COMMAND:-} in
VERSION)
	echo '{"cniVersion":"1.0.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0"]}' ;;
ADD)
	exec 9>"$STATE/lock"; flock 9
	n=$(cat "$STATE/next" 2>/dev/null || echo 2); echo $((n + 1)) >"$STATE/next"
	in_pod ip link add "$CNI_IFNAME" type veth peer name "$hv" || err "veth"
	in_pod ip link set "$hv" netns "$NODE" || err "move veth"
	ip -n "$NODE" link set "$hv" master br0 up || err "bridge"
	in_pod ip addr add "$PREFIX.$n/24" dev "$CNI_IFNAME" || err "addr"
	in_pod ip link set "$CNI_IFNAME" up
	in_pod ip link set lo up
	hmac=$(ip -n "$NODE" -o link show "$hv" | grep -o 'link/ether [^ ]*' | cut -d' ' -f2)
	pmac=$(in_pod ip -o link show "$CNI_IFNAME" | grep -o 'link/ether [^ ]*' | cut -d' ' -f2)
	printf '{"cniVersion":"1.0.0","interfaces":[{"name":"%s","mac":"%s"},{"name":"%s","mac":"%s","sandbox":"%s"}],"ips":[{"address":"%s/24","interface":1}]}\n' \
		"$hv" "$hmac" "$CNI_IFNAME" "$pmac" "$CNI_NETNS" "$PREFIX.$n"
	echo "$CNI_CONTAINERID" >>"$STATE/added" ;;
DEL)
	ip -n "$NODE" link del "$hv" 2>/dev/null
	echo "$CNI_CONTAINERID" >>"$STATE/deleted" ;;
*) ;;
esac
exit 0
EOF
	chmod 755 "$TMP/plugins/sluice-cni"
}

# ---- node network namespace and agent -----------------------------------
log "node netns $NODE, pod CIDR $POD_CIDR, work dir $TMP"
ip netns add "$NODE" || abort "create netns $NODE"
ip -n "$NODE" link set lo up

if [ $FAKE = 1 ]; then
	write_fake_plugin
	ip -n "$NODE" link add br0 type bridge &&
		ip -n "$NODE" addr add "${POD_CIDR%.*}.1/24" dev br0 &&
		ip -n "$NODE" link set br0 up || abort "fake node bridge"
	pass "fake CNI plugin and node bridge ready"
else
	# nsenter --net only (not `ip netns exec`, which remounts /sys and so
	# hides /sys/fs/bpf from the agent).
	nsenter --net="/run/netns/$NODE" -- "$BUILD/sluice-agent" \
		--pod-cidr "$POD_CIDR" --node-name "$NODE" --socket "$SOCK" \
		--state-dir "$STATE" --bpffs "$BPFFS" >"$TMP/agent.log" 2>&1 &
	AGENT_PID=$!
	for _ in $(seq 100); do
		[ -S "$SOCK" ] && "$BUILD/sluicectl" --socket "$SOCK" get endpoints -o json \
			>/dev/null 2>&1 && break
		kill -0 "$AGENT_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$AGENT_PID" 2>/dev/null || abort "agent exited at startup"
	[ -S "$SOCK" ] || abort "agent socket $SOCK did not appear within 10 s"
	pass "agent running in $NODE, socket $SOCK"
fi

veths_before=$(ip -n "$NODE" -o link show type veth 2>/dev/null | wc -l)

cat >"$TMP/net/sluice.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "sluice",
  "plugins": [
    {"type": "sluice-cni", "socket": "$SOCK"}
  ]
}
EOF
check "podman sees network 'sluice'" \
	sh -c 'podman network ls --format "{{.Name}}" | grep -qx sluice'

# ---- two containers ------------------------------------------------------
A=slp-a-$$
B=slp-b-$$
start_ctr() {
	local name=$1 rootfs=$2
	CTRS+=("$name")
	pm run -d --name "$name" --hostname "$name" --network sluice \
		--cap-add NET_RAW --rootfs "$rootfs" sleep 3600
}
check "container $A started on --network sluice" start_ctr "$A" "$TMP/rootfs-a" ||
	abort "cannot continue without container $A"
check "container $B started on --network sluice" start_ctr "$B" "$TMP/rootfs-b" ||
	abort "cannot continue without container $B"

ip_of() { pm inspect -f '{{.NetworkSettings.Networks.sluice.IPAddress}}' "$1" 2>/dev/null; }
IPA=$(ip_of "$A")
IPB=$(ip_of "$B")
in_cidr() {
	# same /24 (or whatever prefix) as POD_CIDR: compare as integers
	local ip=$1 net=${POD_CIDR%/*} len=${POD_CIDR#*/} a b c d n1 n2
	IFS=. read -r a b c d <<<"$ip" || return 1
	n1=$(( (a << 24) | (b << 16) | (c << 8) | d ))
	IFS=. read -r a b c d <<<"$net"
	n2=$(( (a << 24) | (b << 16) | (c << 8) | d ))
	[ $(( n1 >> (32 - len) )) = $(( n2 >> (32 - len) )) ]
}
if [ -n "$IPA" ] && [ -n "$IPB" ] && [ "$IPA" != "$IPB" ] &&
	in_cidr "$IPA" && in_cidr "$IPB"; then
	pass "addresses from $POD_CIDR: $A=$IPA $B=$IPB"
else
	abort "container addresses: $A='$IPA' $B='$IPB' (want two distinct in $POD_CIDR)"
fi
check "$A has $IPA on eth0" sh -c "podman exec $A ip -4 -o addr show dev eth0 | grep -q ' $IPA/'"
check "$B has $IPB on eth0" sh -c "podman exec $B ip -4 -o addr show dev eth0 | grep -q ' $IPB/'"

# endpoints as the agent sees them: count, and whether IPs appear.
endpoints_json() { "$BUILD/sluicectl" --socket "$SOCK" get endpoints -o json; }
count_endpoints() {
	# stdin: JSON; prints the number of endpoints ({"endpoints":[...]} or [...])
	if command -v python3 >/dev/null 2>&1; then
		python3 -c 'import json,sys
d=json.load(sys.stdin)
if isinstance(d,dict):
    d=d.get("endpoints", d.get("result", {}).get("endpoints", []) if isinstance(d.get("result"), dict) else [])
print(len(d))'
	else
		grep -o '"containerId"' | wc -l
	fi
}
if [ $FAKE = 0 ]; then
	out=$(endpoints_json 2>&1)
	n=$(printf '%s' "$out" | count_endpoints 2>&1)
	if [ "$n" = 2 ] && printf '%s' "$out" | grep -q "\"$IPA\"" &&
		printf '%s' "$out" | grep -q "\"$IPB\""; then
		pass "agent lists both endpoints"
	else
		fail "agent lists both endpoints (counted '$n')"
		printf '%s\n' "$out" | head -n 20 | sed 's/^/       | /'
	fi
fi

# ---- connectivity --------------------------------------------------------
check "ping $A -> $B" pm exec "$A" ping -c 3 -W 2 "$IPB"
check "ping $B -> $A" pm exec "$B" ping -c 3 -W 2 "$IPA"

# TCP with busybox nc: listener in A writes what it got to a file.
TOKEN="sluice-podman-$$-$RANDOM"
pm exec -d "$A" sh -c 'nc -l -p 8080 >/tmp/nc.got' >/dev/null
sleep 0.3
tcp_nc() {
	pm exec "$B" sh -c "echo $TOKEN | nc -w 3 $IPA 8080" || return 1
	for _ in $(seq 20); do
		pm exec "$A" grep -qx "$TOKEN" /tmp/nc.got 2>/dev/null && return 0
		sleep 0.1
	done
	echo "listener in $A did not receive the token"
	return 1
}
check "tcp $B -> $A:8080 (busybox nc)" tcp_nc

# TCP/UDP echo with sluice-probe: server in B, client in A, and back.
pm exec -d "$B" sh -c 'sluice-probe serve --tcp 9000 --udp 9000 >/tmp/probe.ready 2>&1' >/dev/null
pm exec -d "$A" sh -c 'sluice-probe serve --tcp 9000 --udp 9000 >/tmp/probe.ready 2>&1' >/dev/null
for _ in $(seq 50); do
	pm exec "$A" grep -q ready /tmp/probe.ready 2>/dev/null &&
		pm exec "$B" grep -q ready /tmp/probe.ready 2>/dev/null && break
	sleep 0.1
done
check "tcp $A -> $B:9000 (sluice-probe)" pm exec "$A" sluice-probe tcp "$IPB" 9000 --timeout 3000
check "udp $A -> $B:9000 (sluice-probe)" pm exec "$A" sluice-probe udp "$IPB" 9000 --timeout 3000
check "tcp $B -> $A:9000 (sluice-probe)" pm exec "$B" sluice-probe tcp "$IPA" 9000 --timeout 3000
check "udp $B -> $A:9000 (sluice-probe)" pm exec "$B" sluice-probe udp "$IPA" 9000 --timeout 3000
check "tcp stream $A -> $B:9000, 2 s" pm exec "$A" sluice-probe stream "$IPB" 9000 --seconds 2

# ---- teardown: CNI DEL ---------------------------------------------------
check "podman rm -f $A $B (CNI DEL)" pm rm -f -t 0 "$A" "$B"
check "no containers left" sh -c '[ -z "$(podman ps -aq)" ]'
if [ $FAKE = 0 ]; then
	left=$(endpoints_json 2>&1 | count_endpoints 2>&1)
	if [ "$left" = 0 ]; then
		pass "agent lists no endpoints after DEL"
	else
		fail "agent still lists endpoints after DEL ($left)"
		endpoints_json 2>&1 | head -n 20 | sed 's/^/       | /'
	fi
else
	check "fake plugin saw ADD and DEL for both" sh -c "
		[ \$(sort -u '$TMP/fake-state/added' | wc -l) = 2 ] &&
		[ \$(sort -u '$TMP/fake-state/deleted' | wc -l) = 2 ]"
fi
veths_after=$(ip -n "$NODE" -o link show type veth 2>/dev/null | wc -l)
if [ "$veths_after" = "$veths_before" ]; then
	pass "no veth left in $NODE ($veths_after before and after)"
else
	fail "veths in $NODE: $veths_before before the containers, $veths_after after DEL"
	ip -n "$NODE" -o link show type veth | sed 's/^/       | /'
fi

if [ $FAKE = 0 ]; then
	if kill -0 "$AGENT_PID" 2>/dev/null; then
		kill -TERM "$AGENT_PID"
		for _ in $(seq 100); do kill -0 "$AGENT_PID" 2>/dev/null || break; sleep 0.1; done
		if kill -0 "$AGENT_PID" 2>/dev/null; then
			fail "agent still running 10 s after SIGTERM"
		else
			wait "$AGENT_PID"
			rc=$?
			AGENT_PID=
			if [ $rc = 0 ]; then pass "agent stopped on SIGTERM"; else fail "agent exit status $rc after SIGTERM"; fi
		fi
	else
		fail "agent died during the test"
		tail -n 20 "$TMP/agent.log" | sed 's/^/       | /'
	fi
fi

finish
