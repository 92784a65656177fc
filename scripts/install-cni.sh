#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Install sluice-cni and its network configuration on a node: the DaemonSet's
# install-cni init container runs it (deploy/sluice.yaml), and so can a person.
# Each file is written under a temporary name in its destination directory,
# flushed, and renamed over the old one: a runtime that reads the directory
# at any moment sees the old file or the new one, never a partial one.
# POSIX sh and coreutils only: it runs in the slim runtime image.
set -eu

CNI_BIN_DIR=${CNI_BIN_DIR:-/opt/cni/bin}
CNI_CONF_DIR=${CNI_CONF_DIR:-/etc/cni/net.d}
PLUGIN=${SLUICE_CNI_PLUGIN:-/usr/local/bin/sluice-cni}
CONFLIST=${SLUICE_CNI_CONFLIST:-/usr/local/share/sluice/10-sluice.conflist}
SOCKET=${SLUICE_SOCKET:-}

usage() {
	cat <<EOF
Usage: install-cni.sh [options]

Installs the sluice CNI plugin as CNI_BIN_DIR/sluice-cni and its network
configuration as CNI_CONF_DIR/10-sluice.conflist, each atomically (temporary
file in the same directory, then rename). A file that is already identical is
left alone.

Options (environment variable in brackets; the option wins):
  --cni-bin-dir DIR    plugin directory [CNI_BIN_DIR] (default /opt/cni/bin)
  --cni-conf-dir DIR   configuration directory [CNI_CONF_DIR]
                       (default /etc/cni/net.d)
  --plugin FILE        the sluice-cni binary to install [SLUICE_CNI_PLUGIN]
                       (default /usr/local/bin/sluice-cni)
  --conflist FILE      the conflist to install [SLUICE_CNI_CONFLIST]
                       (default /usr/local/share/sluice/10-sluice.conflist)
  --socket PATH        write PATH as the plugin's "socket" [SLUICE_SOCKET]
                       (default: keep the conflist's, /run/sluice/sluice.sock)
  -h, --help           this help
EOF
}

die() {
	echo "install-cni: $*" >&2
	exit 1
}

while [ $# -gt 0 ]; do
	case $1 in
	--cni-bin-dir) CNI_BIN_DIR=${2:?}; shift 2 ;;
	--cni-conf-dir) CNI_CONF_DIR=${2:?}; shift 2 ;;
	--plugin) PLUGIN=${2:?}; shift 2 ;;
	--conflist) CONFLIST=${2:?}; shift 2 ;;
	--socket) SOCKET=${2:?}; shift 2 ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; die "unknown argument '$1'" ;;
	esac
done

[ -f "$PLUGIN" ] || die "plugin $PLUGIN not found"
[ -f "$CONFLIST" ] || die "conflist $CONFLIST not found"
[ -d "$CNI_BIN_DIR" ] || die "CNI plugin directory $CNI_BIN_DIR does not exist"
[ -d "$CNI_CONF_DIR" ] || die "CNI configuration directory $CNI_CONF_DIR does not exist"
case $SOCKET in
*'"'*|*'\'*|*'|'*) die "socket path '$SOCKET' must not contain \", \\ or |" ;;
esac

TMP=
trap '[ -z "$TMP" ] || rm -f "$TMP"' EXIT

# install_atomic SRC DEST_DIR NAME MODE: copy SRC to DEST_DIR/NAME via a
# temporary file in DEST_DIR (a rename is atomic only within one filesystem).
install_atomic() {
	src=$1 dir=$2 name=$3 mode=$4
	if cmp -s "$src" "$dir/$name"; then
		echo "install-cni: $dir/$name is up to date"
		return 0
	fi
	TMP=$(mktemp "$dir/.$name.XXXXXX")
	cat "$src" >"$TMP"
	chmod "$mode" "$TMP"
	sync "$TMP"
	mv -f "$TMP" "$dir/$name"
	TMP=
	echo "install-cni: installed $dir/$name"
}

install_atomic "$PLUGIN" "$CNI_BIN_DIR" sluice-cni 0755

src=$CONFLIST
if [ -n "$SOCKET" ]; then
	grep -q '"socket": *"[^"]*"' "$CONFLIST" || die "$CONFLIST has no \"socket\" to set"
	src=$(mktemp)
	trap 'rm -f "$src"; [ -z "$TMP" ] || rm -f "$TMP"' EXIT
	sed 's|"socket": *"[^"]*"|"socket": "'"$SOCKET"'"|' "$CONFLIST" >"$src"
fi
install_atomic "$src" "$CNI_CONF_DIR" 10-sluice.conflist 0644
