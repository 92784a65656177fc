#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The control plane at cluster scale (issue 17): an agent in Kubernetes mode
# against the test API server (tests/kube/apiserver.py) holding a generated
# cluster (bench/controlplane_gen.py) of N pods, for each N in CP_PODS
# (default "1000 10000 50000 100000"; the first is the baseline). Per N:
#
#   - agent start -> ready (sluicectl status exits 0: every kind listed,
#     applied and compiled into the maps);
#   - VmRSS and VmHWM (peak) after ready and after a forced relist;
#   - CNI ADD of 20 pods on the agent's node through sluice-cni, p50/p99;
#   - one label change -> datapath: the pod 'probe' relabelled between a
#     tier a policy admits and one none admits, until the agent's verdict
#     for probe -> a cni pod flips (p50/p99 over 2 x ROUNDS changes);
#   - one new NetworkPolicy -> datapath: a policy admitting probe created
#     until the verdict flips (p50/p99 over ROUNDS; deleted between rounds);
#   - a burst of BURST (default 1000) label changes of probe, 1 ms apart:
#     until the verdict for the last one, and the policy syncs they cost;
#   - reads: `sluicectl get policies`, `get pods` and `get identities`, all
#     pages as JSON: wall time and the agent's CPU for it (p50 over ROUNDS;
#     and the verdict probe below: one `policy explain`); CP_READS limits
#     the kinds (default "policies pods identities");
#   - a forced relist (watches cut, history compacted: 410): wall time to
#     every kind relisted, and the agent's CPU (user+sys) for it.
#
# CP_PERF=DIR records the agent's perf profiles there; CP_LOGS=DIR keeps the
# agent's -v log (its per-sync timings) and the CNI ADD times of each N.
#
# "-> datapath" is the agent answering `policy explain` with the new verdict:
# the agent applies an event and writes the maps on its one thread before it
# serves the next request. The baseline is the smallest N, measured in the
# same run: the table gives each figure's ratio to it, and the issue's target.
set -uo pipefail
TEST_NAME=bench-controlplane
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../tests/lib/common.sh
source "$HERE/../tests/lib/common.sh"
need_root

CP_PODS=${CP_PODS:-1000 10000 50000 100000}
CP_READS=${CP_READS:-policies pods identities}
ROUNDS=${ROUNDS:-10}
CNI_PODS=20
BURST=${BURST:-1000}
for tool in kubectl /usr/bin/python3 openssl jq curl; do
	command -v "$tool" >/dev/null || { echo "$TEST_NAME: $tool missing (make deps)" >&2; exit 1; }
done
for bin in sluice-agent sluice-cni sluicectl; do
	[ -x "$BUILD/$bin" ] || { echo "$TEST_NAME: $BUILD/$bin missing (make)" >&2; exit 1; }
done

P=slcp$$
DIR=$(mktemp -d /tmp/sluice-bench-cp.XXXXXX)
CLEANUP_PATHS+=("$DIR")
"$ROOT/tests/kube/certs.sh" "$DIR/c" 127.0.0.1:6443 >/dev/null 2>&1 || exit 1
TOKEN=$(cat "$DIR/c/token")

now_ms() { echo $(($(date +%s%N) / 1000000)); }
# percentile P of the numbers on stdin (nearest rank)
percentile() { sort -g | awk -v p="$1" '{a[NR]=$1} END {i=int((p/100)*NR + 0.999999); if (i<1) i=1; print a[i]}'; }
kb() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }
# cpu_ms PID: user+sys time of PID so far
cpu_ms() {
	local hz
	hz=$(getconf CLK_TCK)
	# the fields after "(comm)": utime and stime are the 12th and 13th
	sed 's/^.*) //' "/proc/$1/stat" | awk -v hz="$hz" '{print int(($12 + $13) * 1000 / hz)}'
}

# phases LOG: where the agent's start-up went (its -v log: the time each
# kind was synced and ready, from the first line; the policy syncs and their
# summed time before ready and in all)
phases() {
	awk '
	function ms(t,  a) { split(t, a, ":"); return (a[1] * 3600 + a[2] * 60 + a[3]) * 1000 }
	function at(what) { printf "%+8.0f ms  %s\n", ms($1) - t0, what }
	NR == 1 { t0 = ms($1) }
	/policy sync:/ { n++; for (i = 1; i <= NF; i++) {
			if ($i == "in") { s += $(i + 1); d[n] = $(i + 1) }
			if ($i == "view") v[n] = $(i + 1)
			if ($i == "whole") w[n] = $(i + 1)
		}
		tt[n] = ms($1) - t0 }
	/ node .* ready: / { at("datapath loaded (node ready)") }
	/kubernetes: watching/ { at("kubernetes client started") }
	/kubernetes: .* synced \(/ { sn = n; ss = s; l = $0; sub(/.*kubernetes: /, "", l); at(l) }
	END { if (sn < n) printf "%+8.0f ms  first policy sync after the lists: %.1f ms\n", tt[sn + 1], d[sn + 1]
		printf "policy syncs (maps written) in the whole run: %d, %.0f ms in all\n", n, s
		# after the first one after the lists: each part, median and largest
		k = 0
		for (i = sn + 2; i <= n; i++) { k++; c1[k] = d[i]; c2[k] = v[i]; c3[k] = w[i] }
		if (k) printf "later syncs (%d), median / largest ms: compile %.1f / %.1f, view %.1f / %.1f, whole %.1f / %.1f\n", k, med(c1, k), mx(c1, k), med(c2, k), mx(c2, k), med(c3, k), mx(c3, k) }
	function med(a, k,  i, j, t, b) { for (i = 1; i <= k; i++) b[i] = a[i] + 0
		for (i = 2; i <= k; i++) for (j = i; j > 1 && b[j - 1] > b[j]; j--) { t = b[j]; b[j] = b[j - 1]; b[j - 1] = t }
		return b[int((k + 1) / 2)] }
	function mx(a, k,  i, m) { m = 0; for (i = 1; i <= k; i++) if (a[i] + 0 > m) m = a[i] + 0; return m }
	' "$1"
}

# run_size N: one generated cluster, one agent; appends a line to $DIR/results
run_size() {
	local n=$1 ns=$P-$1 d=$DIR/$1
	mkdir -p "$d"
	netns_add "$ns" || return 1
	CLEANUP_PATHS+=("/sys/fs/bpf/$ns")
	local conf
	conf=$(printf '{"cniVersion":"1.1.0","name":"sluice","type":"sluice-cni","socket":"%s"}' "$d/agent.sock")
	kctl() { ip netns exec "$ns" kubectl --kubeconfig "$DIR/c/kubeconfig-token" --cache-dir "$d/kcache" "$@"; }
	ctl() { "$BUILD/sluicectl" --socket "$d/agent.sock" "$@"; }
	# req METHOD PATH [BODY [CONTENT-TYPE]]: one request, as a controller makes it
	# (curl: a few ms of process start and TLS, not kubectl's ~50 ms)
	req() {
		ip netns exec "$ns" curl -sf --cacert "$DIR/c/ca.crt" -H "Authorization: Bearer $TOKEN" \
			-X "$1" ${3:+-H "Content-Type: ${4:-application/json}" --data-binary "$3"} \
			"https://127.0.0.1:6443$2" >/dev/null
	}
	api() { req POST "$1"; }
	label() {
		req PATCH /api/v1/namespaces/ns0/pods/probe "{\"metadata\":{\"labels\":{\"tier\":\"$1\"}}}" \
			application/merge-patch+json
	}

	local t0
	t0=$(now_ms)
	/usr/bin/python3 "$HERE/controlplane_gen.py" "$n" >"$d/objects.json" || return 1
	ip netns exec "$ns" /usr/bin/python3 "$ROOT/tests/kube/apiserver.py" --listen 127.0.0.1:6443 \
		--cert "$DIR/c/server.crt" --key "$DIR/c/server.key" --token-file "$DIR/c/tokens" \
		--crd "$ROOT/deploy/crds/sluice-policy-crds.yaml" --load "$d/objects.json" \
		>"$d/api.log" 2>&1 &
	local apipid=$!
	CLEANUP_PIDS+=("$apipid")
	until kctl get --raw /version >/dev/null 2>&1; do
		kill -0 "$apipid" 2>/dev/null || { tail -n 20 "$d/api.log" >&2; return 1; }
		sleep 0.2
	done
	log "N=$n: API server loaded in $((($(now_ms) - t0) / 1000)) s, RSS $(($(kb "$apipid" VmRSS) / 1024)) MiB"

	# ---- start -> ready
	t0=$(now_ms)
	nsenter --net="/run/netns/$ns" "$BUILD/sluice-agent" --node-name node0 --pod-cidr 10.64.0.0/24 \
		--kubeconfig "$DIR/c/kubeconfig-token" --socket "$d/agent.sock" --state-dir "$d/state" \
		--bpffs "/sys/fs/bpf/$ns" -v >"$d/agent.log" 2>&1 &
	local agent=$!
	CLEANUP_PIDS+=("$agent")
	until ctl status >/dev/null 2>&1; do
		kill -0 "$agent" 2>/dev/null || { tail -n 20 "$d/agent.log" >&2; return 1; }
		sleep 0.01
	done
	local ready_ms=$(($(now_ms) - t0)) ready_cpu
	# the agent's own CPU to ready: the part of the wall time the shared
	# machine does not blur
	ready_cpu=$(cpu_ms "$agent")
	grep -q "kubernetes: Pod synced ($n object" "$d/agent.log" ||
		{ log "N=$n: the agent did not list $n pods"; grep synced "$d/agent.log" >&2; return 1; }
	local rss1 hwm1
	rss1=$(kb "$agent" VmRSS)
	hwm1=$(kb "$agent" VmHWM)
	log "N=$n: ready in $ready_ms ms (agent CPU $ready_cpu ms), RSS $((rss1 / 1024)) MiB, peak $((hwm1 / 1024)) MiB;" \
		"$(ctl status -o json | jq -r '.controlPlane | "heap in use \(.memory.heapInUse / 1048576 | floor) MiB, free \(.memory.heapFree / 1048576 | floor) MiB, store \(.storeBytes / 1048576 | floor) MiB"')"

	# CP_PERF=DIR: the agent's profile from ready to the relist, into
	# DIR/perf-N.data (for `perf report -i`), and the relist's into
	# DIR/perf-relist-N.data
	local perfpid=
	if [ -n "${CP_PERF:-}" ]; then
		perf record -F 499 --call-graph dwarf,16384 -p "$agent" -o "$CP_PERF/perf-$n.data" >/dev/null 2>&1 &
		perfpid=$!
		CLEANUP_PIDS+=("$perfpid")
		sleep 0.5
	fi

	# ---- CNI ADD of the cni pods (their Pod objects are in the API)
	: >"$d/add.ms"
	local j
	for j in $(seq 0 $((CNI_PODS - 1))); do
		netns_add "$ns-c$j" || return 1
		t0=$(now_ms)
		POD_NAMESPACE=ns0 cni ADD "cni$j" "/run/netns/$ns-c$j" "$conf" >"$d/add.$j" 2>&1 ||
			{ log "CNI ADD cni$j failed: $(cat "$d/add.$j")"; return 1; }
		echo $(($(now_ms) - t0)) >>"$d/add.ms"
	done
	log "N=$n: $CNI_PODS CNI ADDs done"

	# verdict: probe -> cni0 on port 80 (exit 0 allowed, 1 denied)
	allowed() { ctl policy explain --from ns0/probe --to ns0/cni0 --port 80 >/dev/null 2>&1; }
	# flip WANT T0 FILE: wait for the verdict WANT (allowed/denied), record ms since T0
	flip() {
		local want=$1 start=$2
		while :; do
			if allowed; then [ "$want" = allowed ] && break; else [ "$want" = denied ] && break; fi
			[ $(($(now_ms) - start)) -lt 120000 ] || { log "N=$n: no $want verdict in 120 s"; return 1; }
			sleep 0.002
		done
		echo $(($(now_ms) - start)) >>"$3"
	}
	allowed || { log "N=$n: probe -> cni0 is not allowed at the start"; ctl policy explain --from ns0/probe --to ns0/cni0 --port 80 >&2; return 1; }

	# ---- the probes' own cost: a GET of the pod (the client's round trip,
	# which the figures below include) and one verdict (polled every 2 ms
	# below, on the agent's one thread: a slow one delays what it measures)
	: >"$d/get.ms"
	: >"$d/explain.ms"
	local r
	for r in $(seq "$ROUNDS"); do
		t0=$(now_ms)
		req GET /api/v1/namespaces/ns0/pods/probe || return 1
		echo $(($(now_ms) - t0)) >>"$d/get.ms"
		t0=$(now_ms)
		allowed
		echo $(($(now_ms) - t0)) >>"$d/explain.ms"
	done

	# ---- reads: every policy, pod and identity through sluicectl (pages of
	# 500), as JSON, ROUNDS times (medians); each answer's items counted,
	# so a failed or short listing is an error, not a fast figure. The
	# agent's CPU for a listing is what it spent answering, between events.
	local got c0 what
	for what in policies pods identities; do
		# CP_READS: the kinds to time (an old build may hold the agent
		# past sluicectl's 10 s on one of them)
		case " $CP_READS " in *" $what "*) ;; *) echo - >"$d/get$what.ms"; echo - >"$d/get$what.cpu"; continue ;; esac
		: >"$d/get$what.ms"
		: >"$d/get$what.cpu"
		for r in $(seq "$ROUNDS"); do
			c0=$(cpu_ms "$agent")
			t0=$(now_ms)
			got=$(ctl get "$what" -A -o json | jq '.items | length') || return 1
			echo $(($(now_ms) - t0)) >>"$d/get$what.ms"
			echo $(($(cpu_ms "$agent") - c0)) >>"$d/get$what.cpu"
			# every policy; every pod (and the agent's own); an
			# identity at least for each namespace's pods
			if { [ "$what" = policies ] && [ "$got" != $((n / 10)) ]; } ||
				{ [ "$what" = pods ] && [ "$got" -lt "$n" ]; } ||
				{ [ "$what" = identities ] && [ "$got" -lt $((n / 100)) ]; }; then
				log "N=$n: get $what listed $got"
				return 1
			fi
		done
		log "N=$n: get $what -o json in $(percentile 50 <"$d/get$what.ms") ms (agent CPU" \
			"$(percentile 50 <"$d/get$what.cpu") ms), median of $ROUNDS"
	done

	# ---- one label change -> datapath (two changes a round)
	: >"$d/label.ms"
	for r in $(seq "$ROUNDS"); do
		t0=$(now_ms)
		label t3 || return 1
		flip denied "$t0" "$d/label.ms" || return 1
		t0=$(now_ms)
		label t0 || return 1
		flip allowed "$t0" "$d/label.ms" || return 1
	done
	label t3 || return 1
	flip denied "$(now_ms)" /dev/null || return 1

	# ---- a burst: BURST label changes of probe, 1 ms apart (t0-0, t0-1,
	# ... denied; t0 last, allowed), as a rollout relabels its pods: from
	# the first change until the verdict flips, and the policy syncs it
	# took (status controlPlane.policySyncs)
	syncs() { ctl status -o json | jq '.controlPlane.policySyncs'; }
	local s0 burst_ms burst_tail t1
	s0=$(syncs)
	t0=$(now_ms)
	api "/_test/relabel?namespace=ns0&name=probe&key=tier&value=t0&count=$BURST&interval=1" ||
		return 1
	t1=$(now_ms)
	flip allowed "$t1" "$d/burst.ms" || return 1
	burst_tail=$(cat "$d/burst.ms")
	burst_ms=$((t1 - t0 + burst_tail))
	local burst_syncs=$(($(syncs) - s0))
	log "N=$n: $BURST label changes converged in $burst_ms ms ($burst_tail after the last), $burst_syncs policy syncs"
	label t3 || return 1
	flip denied "$(now_ms)" /dev/null || return 1

	# ---- one new policy -> datapath
	: >"$d/policy.ms"
	local newpol='{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
 "metadata": {"name": "bench-new", "namespace": "ns0"},
 "spec": {"podSelector": {"matchLabels": {"app": "a0"}},
          "ingress": [{"from": [{"podSelector": {"matchLabels": {"tier": "t3"}}}]}]}}'
	for r in $(seq "$ROUNDS"); do
		t0=$(now_ms)
		req POST /apis/networking.k8s.io/v1/namespaces/ns0/networkpolicies "$newpol" || return 1
		flip allowed "$t0" "$d/policy.ms" || return 1
		req DELETE /apis/networking.k8s.io/v1/namespaces/ns0/networkpolicies/bench-new || return 1
		flip denied "$(now_ms)" /dev/null || return 1
	done

	if [ -n "$perfpid" ]; then
		kill -INT "$perfpid" 2>/dev/null
		wait "$perfpid" 2>/dev/null || true
	fi

	# ---- forced relist (410)
	# Done when every kind has been listed again (the agent's -v log says
	# "listed" once a list's last page is in) and applied: the agent's one
	# thread applies queued lists before it answers a request that came
	# after them (a second status, the first may share a loop turn with them).
	relists() { ctl status -o json | jq '[.kubernetes.resources[].relists] | add'; }
	listed() { grep -c 'kubernetes: listed ' "$d/agent.log"; }
	local kinds before cpu0 cpu1 lbefore
	kinds=$(ctl status -o json | jq '[.kubernetes.resources[] | select(.installed)] | length')
	before=$(relists)
	lbefore=$(listed)
	kill -STOP "$agent"
	api /_test/drop-watches
	# a change no watcher sees, then the history compacted past it
	kctl create configmap bump >/dev/null
	api /_test/compact
	# CP_PERF: the relist's own profile too, into DIR/perf-relist-N.data
	if [ -n "${CP_PERF:-}" ]; then
		perf record -F 499 --call-graph dwarf,16384 -p "$agent" -o "$CP_PERF/perf-relist-$n.data" >/dev/null 2>&1 &
		perfpid=$!
		CLEANUP_PIDS+=("$perfpid")
		sleep 0.5
	fi
	cpu0=$(cpu_ms "$agent")
	t0=$(now_ms)
	kill -CONT "$agent"
	until [ "$(listed)" -ge $((lbefore + kinds)) ]; do
		kill -0 "$agent" 2>/dev/null || { log "N=$n: the agent died"; return 1; }
		[ $(($(now_ms) - t0)) -lt 600000 ] || { log "N=$n: no relist in 600 s"; ctl status >&2; return 1; }
		sleep 0.01
	done
	ctl status >/dev/null 2>&1
	until ctl status >/dev/null 2>&1; do sleep 0.01; done
	r=$(relists)
	[ "$r" -ge $((before + kinds)) ] || { log "N=$n: $((r - before)) kinds relisted after the 410, want $kinds"; return 1; }
	local relist_ms=$(($(now_ms) - t0))
	cpu1=$(cpu_ms "$agent")
	local rss2 hwm2
	rss2=$(kb "$agent" VmRSS)
	hwm2=$(kb "$agent" VmHWM)
	log "N=$n: relist of $kinds kinds in $relist_ms ms, CPU $((cpu1 - cpu0)) ms"
	if [ -n "${CP_PERF:-}" ]; then
		kill -INT "$perfpid" 2>/dev/null
		wait "$perfpid" 2>/dev/null || true
	fi

	printf '%s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s\n' "$n" "$ready_ms" \
		"$(echo "$rss1 / 1024" | bc -l)" "$(echo "$hwm1 / 1024" | bc -l)" \
		"$(echo "$rss2 / 1024" | bc -l)" "$(echo "$hwm2 / 1024" | bc -l)" \
		"$(percentile 50 <"$d/add.ms")" "$(percentile 99 <"$d/add.ms")" \
		"$(percentile 50 <"$d/label.ms")" "$(percentile 99 <"$d/label.ms")" \
		"$(percentile 50 <"$d/policy.ms")" "$(percentile 99 <"$d/policy.ms")" \
		"$relist_ms" "$((cpu1 - cpu0))" "$(percentile 50 <"$d/get.ms")" \
		"$(percentile 50 <"$d/explain.ms")" "$burst_ms" "$burst_tail" "$burst_syncs" \
		"$(percentile 50 <"$d/getpolicies.ms")" "$(percentile 50 <"$d/getpolicies.cpu")" \
		"$(percentile 50 <"$d/getpods.ms")" "$(percentile 50 <"$d/getpods.cpu")" \
		"$(percentile 50 <"$d/getidentities.ms")" "$(percentile 50 <"$d/getidentities.cpu")" \
		>>"$DIR/results"
	phases "$d/agent.log" | sed "s/^/  N=$n agent: /" >&2
	# CP_LOGS=DIR: keep the agent's log and the CNI ADD times (DIR/N.agent.log,
	# DIR/N.add.ms; the run's own directory goes on exit)
	if [ -n "${CP_LOGS:-}" ]; then
		cp "$d/agent.log" "$CP_LOGS/$n.agent.log"
		cp "$d/add.ms" "$CP_LOGS/$n.add.ms"
	fi

	# this size's agent, server and namespaces go before the next size
	kill -9 "$agent" "$apipid" 2>/dev/null
	wait "$agent" "$apipid" 2>/dev/null
	for j in $(seq 0 $((CNI_PODS - 1))); do ip netns del "$ns-c$j" 2>/dev/null; done
	ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
	ip netns del "$ns" 2>/dev/null
	rm -rf "/sys/fs/bpf/$ns" "$d/objects.json"
}

for n in $CP_PODS; do
	log "N=$n: $n pods, $((n / 10)) policies, $((n / 100)) namespaces and nodes, $((n / 20)) Services"
	t=$(now_ms)
	run_size "$n" || { log "N=$n failed (logs in $DIR/$n, removed on exit)"; tail -n 5 "$DIR/$n/agent.log" >&2; exit 1; }
	log "N=$n: done in $((($(now_ms) - t) / 1000)) s"
done

# ---- the table: each N, the issue's target, the ratio to the smallest N
names=("agent start -> ready (ms)" "RSS after ready (MiB)" "peak (VmHWM) after ready (MiB)"
	"RSS after a relist (MiB)" "peak after a relist (MiB)" "CNI ADD p50 (ms)" "CNI ADD p99 (ms)"
	"label change -> datapath p50 (ms)" "label change -> datapath p99 (ms)"
	"new policy -> datapath p50 (ms)" "new policy -> datapath p99 (ms)"
	"relist, wall (ms)" "relist, agent CPU user+sys (ms)"
	"(the client's own GET round trip, median, ms)"
	"(one verdict probe: policy explain, median, ms)"
	"burst of label changes -> converged (ms)" "  of which after the last change (ms)"
	"policy syncs for the burst"
	"sluicectl get policies -o json, all, p50 (ms)" "  the agent's CPU for it, p50 (ms)"
	"sluicectl get pods -o json, all, p50 (ms)" "  the agent's CPU for it, p50 (ms)"
	"sluicectl get identities -o json, all, p50 (ms)" "  the agent's CPU for it, p50 (ms)")
targets=("<= 5000" "<= 100" "<= 150" "<= 100" "<= 150" "-" "<= 10, <= 1.2x" "-" "<= 50" "-" "<= 50"
	"-" "<= 3000" "-" "-" "-" "-" "-" "-" "-" "-" "-" "-" "-")
mapfile -t rows <"$DIR/results"
printf '\n%-46s %-15s' "pods in the cluster" "target (100k)"
for row in "${rows[@]}"; do printf ' %16s' "${row%% *}"; done
printf '\n'
for i in "${!names[@]}"; do
	printf '%-46s %-15s' "${names[$i]}" "${targets[$i]}"
	base=$(awk -v c=$((i + 2)) '{print $c; exit}' "$DIR/results")
	for row in "${rows[@]}"; do
		v=$(awk -v c=$((i + 2)) '{print $c}' <<<"$row")
		if [ "$v" = - ]; then # not measured (CP_READS)
			printf ' %16s' -
		elif [ "$row" = "${rows[0]}" ]; then
			printf ' %16.1f' "$v"
		else
			printf ' %8.1f %6sx' "$v" "$(awk -v a="$v" -v b="$base" 'BEGIN {printf (b > 0 ? "%.1f" : "-"), (b > 0 ? a / b : 0)}')"
		fi
	done
	printf '\n'
done
printf '\nratios (x) against the first size, measured in the same run. CNI ADD over %d pods;\n' "$CNI_PODS"
printf 'label changes: %s, new policies: %s (p99 of so few samples is the largest).\n' \
	"$((2 * ROUNDS))" "$ROUNDS"
printf 'the event figures include the client GET round trip (curl, TLS) and up to one\n'
printf 'verdict probe (sluicectl policy explain; the two rows in brackets).\n'
printf 'burst: %s changes of one pod'"'"'s label, 1 ms apart (at least %s ms of events).\n' \
	"$BURST" "$BURST"
printf 'machine: %s cores (shared with other work), %s MiB memory, kernel %s\n' \
	"$(nproc)" "$(free -m | awk '/^Mem:/ {print $2}')" "$(uname -r)"
