#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Every sluice test suite, in order: unit tests under sanitizers, BPF program
# tests, end to end in network namespaces (both attach modes), podman interop.
# Prints each suite's result and a final "N passed, N failed" line.
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

make -s "$BUILD/sluice-agent" >/dev/null || exit 1
# Every agent the suites start compares its incremental policy state with a
# full recompute after each sync, and aborts on a difference.
export SLUICE_COMPILE_CHECK=1
run_suite "unit tests (ASan+UBSan)" make -s test-unit
run_suite "BPF program tests (BPF_PROG_TEST_RUN; 10^6 fuzzed packets against a policy oracle)" make -s test-bpf
run_suite "fuzz regression (libFuzzer targets over their committed corpora)" make -s test-fuzz
run_suite "end to end, tc attach" tests/e2e/run.sh
run_suite "end to end, tcx attach" env AGENT_ARGS="--attach-mode tcx" tests/e2e/run.sh
run_suite "policy end to end" tests/e2e/policy.sh
run_suite "DEL while the agent is down (queued, replayed before serving)" tests/e2e/delqueue.sh
run_suite "crash-consistent state (power cut, full and read-only state dir)" tests/e2e/crash.sh
run_suite "churn: 200 ADD/DEL x16, nothing left" tests/e2e/churn.sh
run_suite "churn with the agent killed (SIGKILL) every 100 cycles" env CYCLES=400 KILLS=1 tests/e2e/churn.sh
run_suite "API socket load (100 ADDs at once, a large apply, stalled clients)" tests/e2e/apiload.sh
run_suite "Prometheus metrics (/metrics parsed by prometheus_client)" tests/e2e/metrics.sh
run_suite "flows end to end (observe, drops named, --follow, losses)" tests/e2e/flows.sh
run_suite "flow records from the datapath" tests/e2e/flows-datapath.sh
run_suite "flows: a round trip imposed by the test measured, a lost segment counted" tests/e2e/flows-rtt.sh
run_suite "upgrade over an older agent's pins" tests/e2e/upgrade.sh
run_suite "upgrades under traffic: restarts, a changed conntrack layout, downgrade; loss counted (tc, tcx)" tests/e2e/upgrade-live.sh
run_suite "NetworkPolicy matrix (upstream e2e scenarios)" tests/netpol/run.sh
run_suite "three nodes, overlay routing" tests/multinode/run.sh overlay
run_suite "three nodes, native routing" tests/multinode/run.sh native
run_suite "XDP on the uplink (prefilter, sanity drops, modes), both routing modes" tests/xdp/xdp.sh
run_suite "Services translated in eBPF (pod clients), both routing modes" tests/e2e/services.sh
run_suite "Services: backend selection (Maglev, affinity), refusal without endpoints" tests/e2e/services-select.sh
run_suite "Services from outside the cluster (NodePort, externalIP, LB IP, traffic policies; --xdp native, then off)" tests/e2e/services-ns.sh
run_suite "Services for the node's own sockets (cgroup hooks)" tests/e2e/services-host.sh
run_suite "Services: hairpin, hostPort, endpoint states, ICMP errors" tests/e2e/services-misc.sh
run_suite "Services: Kubernetes' e2e Service scenarios, both routing modes" tests/e2e/services-upstream.sh
run_suite "SluicePrefilter: refusals, status, maps, restart, drops on the uplink" tests/prefilter/prefilter.sh
run_suite "next to kube-proxy, overlay routing" tests/kubeproxy/run.sh overlay
run_suite "next to kube-proxy, native routing" tests/kubeproxy/run.sh native
run_suite "security: attackers against policy, both routing modes" tests/security/run.sh
run_suite "podman interop" tests/podman/run.sh
run_suite "Kubernetes API test server (real kubectl)" tests/kube/selftest.sh
run_suite "agents fed by the Kubernetes API" tests/kube/run.sh
run_suite "agents fed by the Kubernetes API, ThreadSanitizer build" tests/kube/tsan.sh
run_suite "install: manifests, CNI install, node cleanup, kubectl apply" tests/deploy/run.sh

echo
echo "=== summary"
printf '  %s\n' "${names[@]}"
echo "suites: $((suites - failed)) passed, $failed failed, $SECONDS s in all"
[ "$failed" -eq 0 ]
