#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Remove what sluice leaves on a node once its DaemonSet is deleted: the CNI
# plugin and configuration, the agent's state and socket, pinned maps and
# links, its devices, the pods' host veths, its tc filters on other devices
# and its routes. Idempotent; --dry-run shows what it would do. It only
# removes objects it can tell are sluice's (names, program names, route
# protocol, marker files), and refuses while an agent still runs.
# What each object is and where it comes from: docs/INSTALL.md, "Uninstall".
set -euo pipefail

STATE_DIR=${SLUICE_STATE_DIR:-/var/lib/sluice}
BPFFS=${SLUICE_BPFFS:-/sys/fs/bpf/sluice}
SOCKET=${SLUICE_SOCKET:-/run/sluice/sluice.sock}
CNI_BIN_DIR=${CNI_BIN_DIR:-/opt/cni/bin}
CNI_CONF_DIR=${CNI_CONF_DIR:-/etc/cni/net.d}
NETNS=
DRY=0

# Names fixed in the agent's code (agent/endpoint.h, agent/node.h,
# agent/netlink.h, bpf/lxc.bpf.c, bpf/host.bpf.c, bpf/overlay.bpf.c,
# agent/loader.c).
ROUTER_IFNAME=sluice_host
ROUTER_PEER_IFNAME=sluice_net
VXLAN_IFNAME=sluice_vxlan
POD_VETH_RE='^lxc[0-9a-f]{11}$'
RTPROT_SLUICE=83
PROGS_RE='^(from_pod|to_pod|from_overlay|to_overlay|from_netdev|to_netdev)$'
TC_PREF=1
TC_HANDLE=0x1

usage() {
	cat <<EOF
Usage: node-cleanup.sh [--dry-run] [options]

Removes sluice from this node after 'kubectl delete -f deploy/sluice.yaml':
  - CNI_CONF_DIR/10-sluice.conflist and CNI_BIN_DIR/sluice-cni
  - pods' host veths (lxc + 11 hex digits) the agent created: those named in
    its state, with its programs attached, or with its link pins; their pod
    ends go with them, so pods still running lose their network
  - the devices sluice_host/sluice_net and sluice_vxlan
  - the uplink's XDP program (from_netdev_xdp): its link pin
    (links/DEV_xdp), or the program itself when attached otherwise
  - sluice's tc filters (pref 1, handle 1, programs from_netdev, to_netdev,
    from_overlay, from_pod, to_pod) on any other device, e.g. the uplink,
    and the clsact qdisc when no filter is left on it
  - routes with protocol 83 (native routing's routes to other nodes)
  - pinned maps (sluice_*) and link pins under the bpffs directory: tcx
    links and the cgroup links of the node sockets' Service hooks
    (links/cgroup_*), which their removal detaches from the cgroup
  - the state directory (recognised by its agent.lock), the socket and
    the DEL queue next to it (del-queue/)
Left alone: net.ipv4.ip_forward, the bpffs mount, other CNI files, and
anything not recognisably sluice's (reported).

Options (environment variable in brackets; the option wins):
  --dry-run            print what would be removed, remove nothing
  --netns NAME|PATH    work on the devices and routes of this network
                       namespace (/run/netns/NAME) instead of the current one
  --state-dir DIR      [SLUICE_STATE_DIR] (default /var/lib/sluice)
  --bpffs DIR          [SLUICE_BPFFS] (default /sys/fs/bpf/sluice)
  --socket PATH        [SLUICE_SOCKET] (default /run/sluice/sluice.sock)
  --cni-bin-dir DIR    [CNI_BIN_DIR] (default /opt/cni/bin)
  --cni-conf-dir DIR   [CNI_CONF_DIR] (default /etc/cni/net.d)
  -h, --help           this help

Exit status: 0 done (or nothing to do), 1 an agent still runs or a removal
failed, 2 usage error.
EOF
}

while [ $# -gt 0 ]; do
	case $1 in
	--dry-run) DRY=1; shift ;;
	--netns) NETNS=${2:?--netns needs a value}; shift 2 ;;
	--state-dir) STATE_DIR=${2:?}; shift 2 ;;
	--bpffs) BPFFS=${2:?}; shift 2 ;;
	--socket) SOCKET=${2:?}; shift 2 ;;
	--cni-bin-dir) CNI_BIN_DIR=${2:?}; shift 2 ;;
	--cni-conf-dir) CNI_CONF_DIR=${2:?}; shift 2 ;;
	-h|--help) usage; exit 0 ;;
	*) echo "node-cleanup: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
	esac
done

if [ -n "$NETNS" ] && [ "${NETNS#/}" = "$NETNS" ]; then
	NETNS=/run/netns/$NETNS
fi
if [ -n "$NETNS" ] && [ ! -e "$NETNS" ]; then
	echo "node-cleanup: network namespace $NETNS does not exist" >&2
	exit 2
fi
for tool in ip tc flock; do
	command -v "$tool" >/dev/null || { echo "node-cleanup: needs $tool (iproute2, util-linux)" >&2; exit 1; }
done

say() { printf 'node-cleanup: %s\n' "$*"; }
REMOVED=0
FAILED=0

# net CMD...: run CMD in the chosen network namespace.
net() {
	if [ -n "$NETNS" ]; then
		nsenter --net="$NETNS" "$@"
	else
		"$@"
	fi
}

# act DESCRIPTION CMD...: do CMD (or only say it with --dry-run).
act() {
	local what=$1
	shift
	if [ "$DRY" = 1 ]; then
		say "would remove $what"
		REMOVED=$((REMOVED + 1))
		return 0
	fi
	if "$@"; then
		say "removed $what"
		REMOVED=$((REMOVED + 1))
	else
		say "FAILED to remove $what"
		FAILED=$((FAILED + 1))
	fi
}

# ---- is an agent still running? -----------------------------------------
# The agent holds an exclusive flock on <state-dir>/agent.lock for its whole
# life; its DaemonSet pod must be gone before anything is removed.
if [ -f "$STATE_DIR/agent.lock" ] && ! flock -n "$STATE_DIR/agent.lock" true; then
	say "a sluice-agent still runs on this node (it holds $STATE_DIR/agent.lock):"
	say "delete the DaemonSet first (kubectl delete -f deploy/sluice.yaml) and wait for its pod to stop"
	exit 1
fi

# ---- CNI: configuration first, so the runtime stops choosing sluice -----
conf=$CNI_CONF_DIR/10-sluice.conflist
if [ -f "$conf" ]; then
	if grep -q '"sluice-cni"' "$conf"; then
		act "CNI configuration $conf" rm -f "$conf"
	else
		say "leaving $conf: it does not name the sluice-cni plugin"
	fi
fi
for f in "$CNI_CONF_DIR"/.10-sluice.conflist.* "$CNI_BIN_DIR"/.sluice-cni.*; do
	[ -f "$f" ] && act "install-cni temporary file $f" rm -f "$f"
done
[ -f "$CNI_BIN_DIR/sluice-cni" ] && act "CNI plugin $CNI_BIN_DIR/sluice-cni" rm -f "$CNI_BIN_DIR/sluice-cni"
if [ -d "$CNI_CONF_DIR" ]; then
	other=$(grep -l '"sluice-cni"' "$CNI_CONF_DIR"/* 2>/dev/null || true)
	[ -z "$other" ] || say "leaving other files that name sluice-cni (not installed by sluice): $other"
fi

# ---- devices --------------------------------------------------------------
links=$(net ip -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }')
pinned=$(ls "$BPFFS/links" 2>/dev/null || true)
in_state=$(cat "$STATE_DIR"/endpoints/*.json 2>/dev/null | grep -o '"hostIfname": *"[^"]*"' | sed 's/.*"\([^"]*\)"$/\1/' || true)

# has_sluice_filter DEV DIR: true if sluice's filter (pref 1, handle 1, one of its
# program names) sits on DEV's DIR hook.
has_sluice_filter() {
	net tc filter show dev "$1" "$2" 2>/dev/null |
		awk -v pref="$TC_PREF" -v handle="$TC_HANDLE" -v re="$PROGS_RE" '
			$0 ~ "pref " pref " " && $0 ~ "handle " handle " " {
				for (i = 1; i < NF; i++) if ($i == "name" && $(i + 1) ~ re) found = 1
			}
			END { exit !found }'
}

for dev in $links; do
	[[ $dev =~ $POD_VETH_RE ]] || continue
	why=
	if grep -qx "$dev" <<<"$in_state"; then
		why="named in $STATE_DIR/endpoints"
	elif grep -qxE "${dev}_(ingress|egress)" <<<"$pinned"; then
		why="tcx link pinned in $BPFFS/links"
	elif has_sluice_filter "$dev" ingress; then
		why="sluice's from_pod attached"
	fi
	if [ -n "$why" ]; then
		act "pod veth $dev ($why)" net ip link del "$dev"
	else
		say "leaving $dev: named like a sluice veth but not sluice's"
	fi
done

if grep -qx "$VXLAN_IFNAME" <<<"$links"; then
	if net ip -d link show "$VXLAN_IFNAME" | grep -q 'vxlan'; then
		act "overlay device $VXLAN_IFNAME" net ip link del "$VXLAN_IFNAME"
	else
		say "leaving $VXLAN_IFNAME: not a vxlan device"
	fi
fi
for dev in "$ROUTER_IFNAME" "$ROUTER_PEER_IFNAME"; do
	# Deleting one end of the veth pair deletes the other.
	if net ip -d link show "$dev" 2>/dev/null | grep -q 'veth'; then
		act "router device $dev (and its peer)" net ip link del "$dev"
	fi
done

# The uplink's XDP program (from_netdev_xdp, agent --xdp): its link pin
# (links/DEV_xdp) is the link's last reference, so removing it detaches the
# program; one attached some other way goes with ip link set ... off.
xdp_prog_of() { # DEV: "MODE NAME" of the XDP program on DEV, nothing when none
	net ip -d link show dev "$1" 2>/dev/null | awk '
		/ xdpgeneric / { mode = "xdpgeneric" }
		/ xdp / && !mode { mode = "xdpdrv" }
		/prog\/xdp / { for (i = 1; i < NF; i++) if ($i == "name") name = $(i + 1) }
		END { if (name != "") print mode, name }'
}
for dev in $(net ip -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }'); do
	if grep -qx "${dev}_xdp" <<<"$pinned"; then
		act "XDP link pin $BPFFS/links/${dev}_xdp (detaches the XDP program of $dev)" \
			rm -f "$BPFFS/links/${dev}_xdp"
		[ "$DRY" = 0 ] || continue # the pin's removal is what detaches it
	fi
	read -r mode name <<<"$(xdp_prog_of "$dev")"
	if [ "${name:-}" = from_netdev_xdp ]; then
		act "XDP program $name on $dev ($mode)" net ip link set dev "$dev" "$mode" off
	fi
done

# Filters on devices sluice does not own: the uplink (from_netdev,
# to_netdev), or any device an earlier agent was pointed at.
for dev in $(net ip -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }'); do
	touched=0
	for dir in ingress egress; do
		if has_sluice_filter "$dev" "$dir"; then
			act "tc $dir filter of sluice on $dev" \
				net tc filter del dev "$dev" "$dir" pref "$TC_PREF" handle "$TC_HANDLE" bpf
			touched=1
		fi
	done
	[ "$touched" = 1 ] || continue
	# The agent created clsact if it was missing; remove it when empty.
	if [ "$DRY" = 0 ] && [ -z "$(net tc filter show dev "$dev" ingress)" ] &&
		[ -z "$(net tc filter show dev "$dev" egress)" ] &&
		net tc qdisc show dev "$dev" | grep -q '^qdisc clsact'; then
		act "empty clsact qdisc on $dev" net tc qdisc del dev "$dev" clsact
	fi
done

# ---- routes ------------------------------------------------------------
# Protocol 83 is sluice's tag (agent/netlink.h NL_RTPROT_SLUICE).
while read -r route; do
	[ -n "$route" ] || continue
	# shellcheck disable=SC2086 # the route's words are ip's arguments
	act "route $route" net ip -4 route del $route
done < <(net ip -4 route show table all proto "$RTPROT_SLUICE" 2>/dev/null | sed 's/ *$//')

# ---- bpffs -------------------------------------------------------------
# Only sluice's own pins: maps named sluice_*, link pins under links/.
# Unpinning a tcx or cgroup link drops its last reference, which detaches it.
if [ -d "$BPFFS" ]; then
	if [ -d "$BPFFS/links" ]; then
		for f in "$BPFFS"/links/*; do
			[ -e "$f" ] && act "link pin $f" rm -f "$f"
		done
		[ "$DRY" = 1 ] || rmdir "$BPFFS/links" 2>/dev/null || true
	fi
	for f in "$BPFFS"/sluice_*; do
		[ -e "$f" ] && act "pinned map $f" rm -f "$f"
	done
	if [ "$DRY" = 0 ]; then
		if rmdir "$BPFFS" 2>/dev/null; then
			say "removed directory $BPFFS"
		else
			say "leaving $BPFFS: it holds pins that are not sluice's: $(ls -A "$BPFFS" | tr '\n' ' ')"
		fi
	fi
fi

# ---- state and socket --------------------------------------------------
if [ -d "$STATE_DIR" ]; then
	if [ -f "$STATE_DIR/agent.lock" ]; then
		act "state directory $STATE_DIR" rm -rf --one-file-system "$STATE_DIR"
	elif [ -z "$(ls -A "$STATE_DIR")" ]; then
		act "empty state directory $STATE_DIR" rmdir "$STATE_DIR"
	else
		say "leaving $STATE_DIR: no agent.lock in it, so it may not be sluice's"
	fi
fi
if [ -S "$SOCKET" ]; then
	act "socket $SOCKET" rm -f "$SOCKET"
fi
sockdir=$(dirname "$SOCKET")
# The DELs sluice-cni queued for an agent that will not come back: the
# state they would have removed is gone above (docs/CNI.md).
if [ -d "$sockdir/del-queue" ] && [ ! -L "$sockdir/del-queue" ]; then
	act "DEL queue $sockdir/del-queue" rm -rf --one-file-system "$sockdir/del-queue"
fi
# /run/sluice is the agent's alone: removed once nothing but the socket was
# in it. A socket elsewhere leaves its directory.
if [ -d "$sockdir" ] && [ "$(basename "$sockdir")" = sluice ] &&
	[ -z "$(ls -A "$sockdir" | grep -vx "$(basename "$SOCKET")")" ]; then
	act "socket directory $sockdir" rmdir "$sockdir"
fi

if [ "$FAILED" -gt 0 ]; then
	say "$FAILED removal(s) failed"
	exit 1
fi
if [ "$REMOVED" = 0 ]; then
	say "nothing of sluice's left on this node"
elif [ "$DRY" = 1 ]; then
	say "dry run: $REMOVED object(s) would be removed"
else
	say "done: $REMOVED object(s) removed"
fi
