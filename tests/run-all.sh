#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Every sluice test suite: unit tests under sanitizers, BPF program tests,
# fuzz regression, end to end in network namespaces, multi-node, Services,
# security, Kubernetes, install. Two lanes run side by side, then the suites
# that must run alone. Prints each suite's output whole, its result and
# duration, and a final "N passed, N failed" line.
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}

suites=0
failed=0
names=()
run_suite() {
	local name=$1
	shift
	echo
	echo "=== $name"
	suites=$((suites + 1))
	local t0=$SECONDS
	"$@"
	local rc=$? took=$((SECONDS - t0))
	if [ $rc -eq 77 ]; then
		echo "=== $name: skipped"
		names+=("$name: SKIPPED (${took} s)")
	elif [ $rc -ne 0 ]; then
		failed=$((failed + 1))
		names+=("$name: FAILED (exit $rc, ${took} s)")
	else
		names+=("$name: ok (${took} s)")
	fi
}

if [ "$(id -u)" -ne 0 ]; then
	echo "make test needs root: network namespaces, BPF programs, podman" >&2
	exit 1
fi

# Everything the suites run is built first, once: the lanes below must not
# run make on the same build directory at the same time.
echo "=== building the test binaries"
make -s -j"$(nproc)" test-build >/dev/null || exit 1
# Every agent the suites start compares its incremental policy state with a
# full recompute after each sync, and aborts on a difference.
export SLUICE_COMPILE_CHECK=1

# Two lanes of suites run side by side: every suite has its own network
# namespaces, bpffs pins, sockets and state (ids from its pid) and most of
# their time is waiting, so two share the 2 cores without changing what they
# check. Each suite's output is kept and printed whole when it ends.
LANE1=(
	"unit tests (ASan+UBSan)|make -s test-unit"
	"BPF program tests (BPF_PROG_TEST_RUN; 10^6 fuzzed packets against a policy oracle)|make -s test-bpf"
	"fuzz regression (libFuzzer targets over their committed corpora)|make -s test-fuzz"
	"end to end, tc attach|tests/e2e/run.sh"
	"end to end, tcx attach|env AGENT_ARGS=--attach-mode\ tcx tests/e2e/run.sh"
	"policy end to end|tests/e2e/policy.sh"
	"DEL while the agent is down (queued, replayed before serving)|tests/e2e/delqueue.sh"
	"crash-consistent state (power cut, full and read-only state dir)|tests/e2e/crash.sh"
	"a pod whose programs a restarted agent cannot attach is cut off, not left open|tests/e2e/recover-attach.sh"
	"churn: 200 ADD/DEL x16, nothing left|tests/e2e/churn.sh"
	"churn with the agent killed (SIGKILL) every 100 cycles|env CYCLES=400 KILLS=1 tests/e2e/churn.sh"
	"Prometheus metrics (/metrics parsed by prometheus_client)|tests/e2e/metrics.sh"
	"flows end to end (observe, drops named, --follow, losses)|tests/e2e/flows.sh"
	"flow records from the datapath|tests/e2e/flows-datapath.sh"
	"upgrade over an older agent's pins|tests/e2e/upgrade.sh"
	"NetworkPolicy matrix (upstream e2e scenarios)|tests/netpol/run.sh"
	"three nodes, overlay routing|tests/multinode/run.sh overlay"
	"three nodes, native routing|tests/multinode/run.sh native"
	"XDP on the uplink (prefilter, sanity drops, modes), both routing modes|tests/xdp/xdp.sh"
	"Services translated in eBPF (pod clients), both routing modes|tests/e2e/services.sh"
	"Services: backend selection (Maglev, affinity), refusal without endpoints|tests/e2e/services-select.sh"
	"Services from outside the cluster (NodePort, externalIP, LB IP, traffic policies; --xdp native, then off)|tests/e2e/services-ns.sh"
	"SluicePrefilter: refusals, status, maps, restart, drops on the uplink|tests/prefilter/prefilter.sh"
	"next to kube-proxy, overlay routing|tests/kubeproxy/run.sh overlay"
	"next to kube-proxy, native routing|tests/kubeproxy/run.sh native"
)
LANE2=(
	"security: attackers against policy, both routing modes|tests/security/run.sh"
	"Kubernetes API test server (real kubectl)|tests/kube/selftest.sh"
	"Services: Kubernetes' e2e Service scenarios, both routing modes|tests/e2e/services-upstream.sh"
	"Services: hairpin, hostPort, endpoint states, ICMP errors|tests/e2e/services-misc.sh"
	"agents fed by the Kubernetes API|tests/kube/run.sh"
	"agents fed by the Kubernetes API, ThreadSanitizer build|tests/kube/tsan.sh"
	"reference plugins chained after sluice-cni: ADD, CHECK, DEL as libcni runs them (tc, tcx)|tests/e2e/chain.sh"
	"sluicectl's kubectl verbs (get/describe/delete, -n/-A/-l/-o/-w, errors)|tests/e2e/cli.sh"
	"sluicectl dry runs, diff, version, completion against an agent|tests/e2e/cli-apply.sh"
	"kubectl sluice: real kubectl, test API server, exec answered by per-node agents|tests/kube/plugin.sh"
)
# Alone, after the lanes: suites that measure time, rates or loss (a round
# trip within 10 %, ADD latency bounds, zero loss at 2000 datagrams/s, pod
# bandwidth limits within 10 %), attach at
# the root cgroup, or touch the host's own configuration (podman, install).
ALONE=(
	"flows: a round trip imposed by the test measured, a lost segment counted|tests/e2e/flows-rtt.sh"
	"API socket load (100 ADDs at once, a large apply, stalled clients)|tests/e2e/apiload.sh"
	"upgrades under traffic: restarts, a changed conntrack layout, downgrade; loss counted (tc, tcx)|tests/e2e/upgrade-live.sh"
	"Services for the node's own sockets (cgroup hooks)|tests/e2e/services-host.sh"
	"pod bandwidth limits: 100/50 Mbit/s within 10 %, re-ADD, restart, DEL, bad input|tests/e2e/bandwidth.sh"
	"pod bandwidth limits across two nodes, overlay and native|tests/multinode/bandwidth.sh"
	"podman interop|tests/podman/run.sh"
	"containerd CRI interop, chained plugins (tc, tcx, auto)|tests/cri/run.sh"
	"install: manifests, CNI install, node cleanup, kubectl apply|tests/deploy/run.sh"
)

OUT=$(mktemp -d /tmp/sluice-run-all.XXXXXX)
trap 'rm -rf "$OUT"' EXIT

# run_lane NAME ENTRIES...: each suite in turn, its output in
# $OUT/<name>.<n>.log, its exit code and seconds in $OUT/<name>.<n>.res.
run_lane() {
	local lane=$1 n=0 entry name cmd t0 rc
	shift
	for entry in "$@"; do
		name=${entry%%|*}
		cmd=${entry#*|}
		t0=$SECONDS
		echo "--- started: $name" >&2
		(eval "$cmd") >"$OUT/$lane.$n.log" 2>&1 </dev/null
		rc=$?
		echo "$rc $((SECONDS - t0))" >"$OUT/$lane.$n.res"
		echo "--- done ($rc, $((SECONDS - t0)) s): $name" >&2
		n=$((n + 1))
	done
}

# report NAME LOG RES: print a lane suite's output and count its result.
report() {
	local name=$1 rc took
	echo
	echo "=== $name"
	cat "$2"
	read -r rc took <"$3"
	suites=$((suites + 1))
	if [ "$rc" -eq 77 ]; then
		echo "=== $name: skipped"
		names+=("$name: SKIPPED (${took} s)")
	elif [ "$rc" -ne 0 ]; then
		failed=$((failed + 1))
		names+=("$name: FAILED (exit $rc, ${took} s)")
	else
		names+=("$name: ok (${took} s)")
	fi
}

run_lane 1 "${LANE1[@]}" &
lane1=$!
run_lane 2 "${LANE2[@]}" &
lane2=$!
wait "$lane1" "$lane2"
for lane in 1 2; do
	if [ "$lane" = 1 ]; then set -- "${LANE1[@]}"; else set -- "${LANE2[@]}"; fi
	n=0
	for entry in "$@"; do
		report "${entry%%|*}" "$OUT/$lane.$n.log" "$OUT/$lane.$n.res"
		n=$((n + 1))
	done
done
for entry in "${ALONE[@]}"; do
	eval "run_suite \"\${entry%%|*}\" ${entry#*|}"
done

echo
echo "=== summary"
printf '  %s\n' "${names[@]}"
echo "suites: $((suites - failed)) passed, $failed failed, $SECONDS s in all"
[ "$failed" -eq 0 ]
