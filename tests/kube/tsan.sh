#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# tests/kube/run.sh with every binary built under ThreadSanitizer: the agent's
# watcher threads hand objects to its main thread, and a data race there
# (a shared jansson reference, an unguarded counter) would pass the plain
# run by luck. Fails on any ThreadSanitizer report from any process.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TSAN_BUILD=${TSAN_BUILD:-$ROOT/build/tsan}
reports=$(mktemp -d /tmp/sluice-tsan.XXXXXX)
trap 'rm -rf "$reports"' EXIT

echo "kube-tsan: building into $TSAN_BUILD"
CFLAGS="-O1 -g -fsanitize=thread" make -s -C "$ROOT" BUILD="$TSAN_BUILD" \
	"$TSAN_BUILD/sluice-agent" "$TSAN_BUILD/sluice-cni" "$TSAN_BUILD/sluicectl" \
	"$TSAN_BUILD/sluice-probe" || exit 1
BUILD=$TSAN_BUILD TSAN_OPTIONS="halt_on_error=0 log_path=$reports/report" "$HERE/run.sh"
rc=$?
n=$(cat "$reports"/report* 2>/dev/null | grep -c "WARNING: ThreadSanitizer")
if [ "$n" -gt 0 ]; then
	echo "kube-tsan: $n ThreadSanitizer report(s):"
	cat "$reports"/report*
	exit 1
fi
echo "kube-tsan: no ThreadSanitizer reports"
exit "$rc"
