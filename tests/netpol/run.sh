#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# NetworkPolicy end to end, after Kubernetes' e2e netpol suite: one node, nine
# pods (namespaces x, y, z; pods a, b, c) wired by the real sluice-cni, and
# one scenario per file in scenarios/: the policies applied with sluicectl,
# the expected reachability written as upstream writes it, and the whole 9x9
# matrix probed at once (sluice-probe matrix) and compared.
#
#   tests/netpol/run.sh            every scenario
#   tests/netpol/run.sh 03 17      the baseline (00) and scenarios 03 and 17
#   tests/netpol/run.sh --list     number, name and upstream test of each
#
# PROBE_TIMEOUT_MS (default 500) is the per-probe timeout; AGENT_ARGS is
# passed to the agent. Prints one line per scenario and, for a failure, why
# (with expected, observed and comparison tables); the last line is
# "netpol: N passed, M failed".
# shellcheck source-path=SCRIPTDIR
set -uo pipefail
TEST_NAME=netpol
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib/common.sh
source "$HERE/../lib/common.sh"
# shellcheck source=lib.sh
source "$HERE/lib.sh"

scenario_title() { sed -n 's/^# \(Upstream\|Sluice\): //p' "$1" | head -n 1; }

if [ "${1:-}" = --list ]; then
	for f in "$HERE"/scenarios/[0-9][0-9]-*.sh; do
		name=$(basename "$f" .sh)
		printf '%s  %-38s %s\n' "${name%%-*}" "${name#*-}" "$(scenario_title "$f")"
	done
	exit 0
fi

need_root

# Which scenarios: the baseline always (it checks the setup), then the ones
# asked for, or all.
files=("$HERE"/scenarios/00-*.sh)
if [ $# -gt 0 ]; then
	for nn in "$@"; do
		[[ $nn =~ ^[0-9]{1,2}$ ]] || { echo "netpol: '$nn' is not a scenario number" >&2; exit 2; }
		nn=$(printf '%02d' "$((10#$nn))")
		[ "$nn" = 00 ] && continue
		match=("$HERE"/scenarios/"$nn"-*.sh)
		[ -e "${match[0]}" ] || { echo "netpol: no scenario $nn (see --list)" >&2; exit 2; }
		files+=("${match[@]}")
	done
else
	for f in "$HERE"/scenarios/[0-9][0-9]-*.sh; do
		[[ $(basename "$f") == 00-* ]] || files+=("$f")
	done
fi

for bin in sluice-agent sluice-cni sluicectl sluice-probe; do
	[ -x "$BUILD/$bin" ] || { echo "netpol: $BUILD/$bin missing (run make)" >&2; exit 1; }
done

ID=slnp$$
NODE=$ID-node
DIR=$(mktemp -d /tmp/sluice-netpol.XXXXXX)
BPFFS=/sys/fs/bpf/$ID
CIDR=10.252.0.0/24
SOCK=$DIR/agent.sock
CLEANUP_PATHS+=("$DIR" "$BPFFS")
started=$(date +%s)

echo "== matrix probe self-check (two namespaces)"
if ! "$HERE/matrix-check.sh"; then
	echo "netpol: the matrix probe does not work; not running the suite" >&2
	exit 1
fi

echo "== setup: agent, 9 pods through sluice-cni, echo servers, model objects"
if ! np_setup; then
	echo "netpol: setup failed; agent log:" >&2
	tail -n 30 "$DIR/agent.log" >&2
	exit 1
fi
for pod in "${NP_PODS[@]}"; do printf '%s=%s ' "$pod" "${NP_IP[$pod]}"; done
echo
[ "$NP_MODEL_APPLIED" = 1 ] || echo "   (model objects not applied: scenarios that apply policies will fail)"

echo "== scenarios (probe timeout ${PROBE_TIMEOUT_MS} ms)"
for f in "${files[@]}"; do
	name=$(basename "$f" .sh)
	SCEN_DIR=$DIR/$name
	mkdir -p "$SCEN_DIR"
	# A subshell per scenario: its expectations and any fatal exit stay in
	# it; the store is reset here afterwards whatever happened.
	(
		# shellcheck source=/dev/null
		source "$f"
		[ "$SCEN_VALIDATIONS" -gt 0 ] || fatal "the scenario probed nothing"
		[ "$SCEN_WRONG" -eq 0 ]
	) >"$SCEN_DIR/out" 2>&1
	rc=$?
	if [ -e "$SCEN_DIR/touched" ] && ! np_reset >>"$SCEN_DIR/out" 2>&1; then
		rc=1
	fi
	if [ "$rc" -eq 0 ]; then
		ok "${name%%-*} ${name#*-}"
	else
		not_ok "${name%%-*} ${name#*-}"
		printf '       %s\n' "$(scenario_title "$f")"
		sed 's/^/       /' "$SCEN_DIR/out"
	fi
done

np_teardown
echo "netpol: $(($(date +%s) - started)) s"
summary
