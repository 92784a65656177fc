#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The security suite (docs/SECURITY.md): every script here plays one kind of
# attacker against a multi-node setup and asserts that nothing reaches the
# victim while legitimate traffic in the same setup still works. Each script
# runs both routing modes itself; this runner runs them all, adds up their
# "NAME: N passed, M failed" lines and prints the total.
#
#   tests/security/run.sh              every script, both modes
#   tests/security/run.sh tunnel masq  only these
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TEST_NAME=security
# shellcheck source=../lib/common.sh
source "$HERE/../lib/common.sh"
need_root

scripts=()
if [ $# -gt 0 ]; then
	for name in "$@"; do scripts+=("$HERE/$name.sh"); done
else
	for f in "$HERE"/*.sh; do
		[ "$(basename "$f")" = run.sh ] || scripts+=("$f")
	done
fi
for f in "${scripts[@]}"; do
	name=$(basename "$f" .sh)
	if [ ! -x "$f" ]; then
		not_ok "$name: no such script"
		continue
	fi
	echo "=== $name"
	out=$(mktemp "/tmp/sluice-security-$name.XXXXXX")
	CLEANUP_PATHS+=("$out")
	"$f" | tee "$out"
	rc=${PIPESTATUS[0]}
	if [ "$rc" -eq 77 ]; then
		echo "=== $name: skipped"
		continue
	fi
	# The script's own total: its last "NAME: N passed, M failed" line.
	line=$(grep -E "^$name: [0-9]+ passed, [0-9]+ failed$" "$out" | tail -n 1)
	if [ -z "$line" ]; then
		not_ok "$name: did not finish (exit $rc)"
		continue
	fi
	read -r p f <<<"$(sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed/\1 \2/' <<<"$line")"
	PASS=$((PASS + p))
	FAIL=$((FAIL + f))
	[ "$rc" -eq 0 ] || [ "$f" -gt 0 ] || not_ok "$name: exit $rc with no failed check"
done
summary
