#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# What saving the agent's objects costs per change (issue 17): bench-persist
# (bench/persist.c) built against this tree's store and against BASE's
# (default 20c61b0, the store that rewrote objects.json after every change),
# run one after the other on one generated cluster of PODS pods
# (bench/controlplane_gen.py, default 50000: with its policies, Services,
# slices, namespaces and nodes) in a state directory under STATE_ROOT
# (default /var/tmp: a disk, so fsync costs what it costs). Per build: the
# bytes and time of a save after one pod's relabel (mean, p50, p99 over
# CHANGES, default 200), the first, full save, and an open of the state
# left at the end. The last lines give this tree against the baseline.
#
#   PODS=50000 CHANGES=200 BASE=20c61b0 bench/persist.sh
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
PODS=${PODS:-50000}
CHANGES=${CHANGES:-200}
BASE=${BASE:-20c61b0}
CC=${CC:-gcc}
SRCS="agent/store.c agent/service.c agent/policy.c agent/policy_parse.c agent/selector.c
	agent/cidr.c lib/log.c"
# Files only later trees have (linked when the tree holds them).
LATER_SRCS="agent/prefilter.c lib/manifest.c lib/statefile.c"
for tool in /usr/bin/python3 git "$CC"; do
	command -v "$tool" >/dev/null || { echo "bench-persist: $tool missing (make deps)" >&2; exit 1; }
done

DIR=$(mktemp -d "${STATE_ROOT:-/var/tmp}/sluice-bench-persist.XXXXXX")
trap 'rm -rf "$DIR"' EXIT
mkdir "$DIR/base"
git -C "$ROOT" archive "$BASE" agent lib include | tar -x -C "$DIR/base" ||
	{ echo "bench-persist: cannot read $BASE from git" >&2; exit 1; }
build() { # TREE OUT
	local src=() f
	for f in $SRCS; do src+=("$1/$f"); done
	for f in $LATER_SRCS; do [ -e "$1/$f" ] && src+=("$1/$f"); done
	"$CC" -O2 -g -std=gnu11 -D_GNU_SOURCE -I"$1/include" -I"$1/lib" -I"$1/agent" \
		-o "$2" "$HERE/persist.c" "${src[@]}" -ljansson -lyaml -lz
}
build "$DIR/base" "$DIR/bench-base"
build "$ROOT" "$DIR/bench-new"
echo "bench-persist: generating $PODS pods" >&2
/usr/bin/python3 "$HERE/controlplane_gen.py" "$PODS" >"$DIR/list.json"

declare -A R
for which in base new; do
	echo "bench-persist: $which: $CHANGES single-pod changes" >&2
	mkdir "$DIR/state-$which"
	out=$("$DIR/bench-$which" "$DIR/list.json" "$DIR/state-$which" "$CHANGES")
	rev=$BASE
	[ "$which" = new ] && rev=$(git -C "$ROOT" describe --always --dirty)
	echo "== $which ($rev)"
	echo "$out"
	echo "   on disk: $(du -b "$DIR/state-$which"/* | awk '{printf "%s %s B  ", $2, $1}' | sed "s|$DIR/state-$which/||g")"
	for k in bytes_per_change ms_per_change_mean p50 p99 full_save_bytes full_save_ms open_ms; do
		R[$which.$k]=$(tr ' ' '\n' <<<"$out" | awk -v k="$k" 'f {print; exit} $0 == k {f=1}')
	done
done
echo "== per single-pod change at $PODS pods: this tree / $BASE"
for k in bytes_per_change ms_per_change_mean p50 p99 open_ms; do
	awk -v k="$k" -v b="${R[base.$k]}" -v n="${R[new.$k]}" \
		'BEGIN {printf "%-20s %12s -> %12s  (x %.4f)\n", k, b, n, (b > 0 ? n / b : 0)}'
done
