#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The install: deploy/sluice.yaml is current with its parts; the manifests
# agree with the code (check_manifests.py); install-cni.sh, the DaemonSet's
# capabilities and node-cleanup.sh on namespaced nodes (node.sh); kubectl
# apply against the test API server and the agent run as the DaemonSet runs
# it (kube.sh). Prints ok/FAIL per check and "deploy: N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BUILD=${BUILD:-$ROOT/build}
export ROOT BUILD
if [ "$(id -u)" -ne 0 ]; then
	echo "deploy: needs root (network namespaces, BPF)" >&2
	exit 77
fi
for b in sluice-agent sluice-cni sluicectl sluice-probe; do
	[ -x "$BUILD/$b" ] || { echo "deploy: $BUILD/$b missing: run make" >&2; exit 1; }
done

PASS=0
FAIL=0
# part CMD...: run one part, show its lines, add up its ok and FAIL lines.
part() {
	local out rc
	out=$("$@" 2>&1)
	rc=$?
	printf '%s\n' "$out" | grep -v -E '^[a-z-]+: [0-9]+ passed, [0-9]+ failed$'
	PASS=$((PASS + $(grep -c '^  ok ' <<<"$out")))
	FAIL=$((FAIL + $(grep -c '^  FAIL ' <<<"$out")))
	if [ "$rc" -ne 0 ] && ! grep -q '^  FAIL ' <<<"$out"; then
		echo "  FAIL $1 exited $rc"
		FAIL=$((FAIL + 1))
	fi
}

echo "== deploy/sluice.yaml is what deploy/parts/generate.sh makes"
if out=$(deploy/parts/generate.sh --check 2>&1); then
	echo "  ok   deploy/sluice.yaml is up to date"
	PASS=$((PASS + 1))
else
	echo "  FAIL deploy/sluice.yaml is up to date"
	printf '%s\n' "$out" | tail -n 20 | sed 's/^/       /'
	FAIL=$((FAIL + 1))
fi
part /usr/bin/python3 tests/deploy/check_manifests.py "$ROOT" "$BUILD"
part tests/deploy/node.sh
part tests/deploy/kube.sh

echo "deploy: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
