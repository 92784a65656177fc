# SPDX-License-Identifier: Apache-2.0
# Shared helpers for sluice's shell tests: counters, a node namespace with an
# agent in it, pods created through the real sluice-cni binary, and a
# cleanup that always runs. Source it; set TEST_NAME first.

ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BUILD=${BUILD:-$ROOT/build}
PASS=0
FAIL=0
CLEANUP_NETNS=()
CLEANUP_PIDS=()
CLEANUP_PATHS=()

log() { printf '%s: %s\n' "$TEST_NAME" "$*" >&2; }

ok() { PASS=$((PASS + 1)); printf '  ok   %s\n' "$*"; }
not_ok() { FAIL=$((FAIL + 1)); printf '  FAIL %s\n' "$*"; }

# check DESCRIPTION CMD...: run CMD, count the outcome.
check() {
	local desc=$1
	shift
	if "$@" >/tmp/sluice-check.$$ 2>&1; then
		ok "$desc"
	else
		not_ok "$desc"
		sed 's/^/       /' /tmp/sluice-check.$$ | tail -n 15
	fi
	rm -f /tmp/sluice-check.$$
}

summary() {
	printf '%s: %d passed, %d failed\n' "$TEST_NAME" "$PASS" "$FAIL"
	[ "$FAIL" -eq 0 ]
}

cleanup() {
	local rc=$?
	set +e
	for p in "${CLEANUP_PIDS[@]}"; do
		kill -9 "$p" 2>/dev/null
	done
	for p in "${CLEANUP_PIDS[@]}"; do
		wait "$p" 2>/dev/null
	done
	for ns in "${CLEANUP_NETNS[@]}"; do
		# processes still inside the namespace (servers, streams)
		ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
		ip netns del "$ns" 2>/dev/null
	done
	for p in "${CLEANUP_PATHS[@]}"; do
		rm -rf "$p"
	done
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

need_root() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "$TEST_NAME: needs root (network namespaces, BPF)" >&2
		exit 77
	fi
}

netns_add() {
	ip netns add "$1"
	CLEANUP_NETNS+=("$1")
	ip -n "$1" link set lo up
}

# start_agent NODE_NS CIDR DIR: run sluice-agent inside NODE_NS. nsenter, not
# 'ip netns exec', so that /sys/fs/bpf stays visible to it.
start_agent() {
	local ns=$1 cidr=$2 dir=$3
	mkdir -p "$dir"
	nsenter --net="/run/netns/$ns" "$BUILD/sluice-agent" --pod-cidr "$cidr" \
		--node-name "$ns" --socket "$dir/agent.sock" --state-dir "$dir/state" \
		--bpffs "$BPFFS" ${AGENT_ARGS:-} >>"$dir/agent.log" 2>&1 &
	AGENT_PID=$!
	CLEANUP_PIDS+=("$AGENT_PID")
	wait_for_socket "$dir/agent.sock"
}

# wait_for_socket SOCK: the agent answers on SOCK within AGENT_START_TIMEOUT
# seconds (default 30: make test runs two suites side by side on two cores,
# and a loaded machine verifies the BPF programs several times slower; an
# agent that comes up returns at once).
wait_for_socket() {
	for _ in $(seq $((${AGENT_START_TIMEOUT:-30} * 20))); do
		"$BUILD/sluicectl" --socket "$1" status >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	log "agent did not come up on $1"
	cat "$(dirname "$1")/agent.log" >&2
	return 1
}

# cni COMMAND CONTAINER_ID NETNS_PATH CONFIG: the real plugin, as a runtime runs it.
cni() {
	local cmd=$1 id=$2 netns=$3 conf=$4
	CNI_COMMAND=$cmd CNI_CONTAINERID=$id CNI_NETNS=$netns CNI_IFNAME=${CNI_IFNAME:-eth0} \
		CNI_PATH=$BUILD CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=${POD_NAMESPACE:-default};K8S_POD_NAME=$id" \
		"$BUILD/sluice-cni" <<<"$conf"
}

# serve NETNS [PROBE-SERVE-ARGS...]: echo servers inside NETNS (default TCP
# 8080 and UDP 8081).
serve() {
	local ns=$1 out
	shift
	[ $# -gt 0 ] || set -- --tcp 8080 --udp 8081
	out=$(mktemp)
	ip netns exec "$ns" "$BUILD/sluice-probe" serve "$@" >"$out" 2>&1 &
	CLEANUP_PIDS+=($!)
	for _ in $(seq 100); do
		grep -q ready "$out" && { rm -f "$out"; return 0; }
		sleep 0.02
	done
	cat "$out" >&2
	rm -f "$out"
	return 1
}

probe() { local ns=$1; shift; ip netns exec "$ns" "$BUILD/sluice-probe" "$@"; }

# eventually SECONDS CMD...: CMD succeeds within SECONDS (tried every 0.1 s).
eventually() {
	local t=$1 end
	shift
	end=$(($(date +%s%N) / 1000000 + t * 1000))
	while :; do
		"$@" && return 0
		[ $(($(date +%s%N) / 1000000)) -lt "$end" ] || return 1
		sleep 0.1
	done
}

# median: the median of the numbers on stdin, one a line (benchmarks).
median() { sort -g | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
