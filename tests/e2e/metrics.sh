#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The agent's Prometheus endpoint end to end: an agent in a node namespace,
# pods through the real CNI plugin, traffic between them; /metrics scraped
# with curl inside the namespace and read by prometheus_client's own parser
# (tests/e2e/promparse.py). Every family is there with its type; packet,
# drop and CNI counters move with what the test did; only GET/HEAD
# /metrics is served; --metrics-address off serves nothing; a port in use
# stops start-up with an error naming the address and the flag.
set -uo pipefail
TEST_NAME=metrics
source "$(dirname "$0")/../lib/common.sh"
need_root

PY=/usr/bin/python3	# Debian's, where python3-prometheus-client is
for t in curl jq; do
	command -v $t >/dev/null || { log "$t missing: make deps"; exit 1; }
done
$PY -c 'import prometheus_client' 2>/dev/null ||
	{ log "python3-prometheus-client missing: make deps"; exit 1; }

ID=slmet$$
NODE=$ID-node
DIR=$(mktemp -d /tmp/sluice-metrics.XXXXXX)
BPFFS=/sys/fs/bpf/$ID
CIDR=10.243.0.0/24
SOCK=$DIR/agent.sock
CLEANUP_PATHS+=("$DIR" "$BPFFS" "$BPFFS-2" "$BPFFS-3")
CONF=$(printf '{"cniVersion":"1.1.0","name":"sluice","type":"sluice-cni","socket":"%s"}' "$SOCK")
ctl() { "$BUILD/sluicectl" --socket "$SOCK" "$@"; }
AGENT_ARGS="${AGENT_ARGS:-} --kube-proxy-replacement off --kubernetes off --flow-idle-timeout 1"
declare -A IP

pod_add() { # NS NAME
	local ns=$1 name=$2
	netns_add "$ID-$ns-$name"
	IP[$ns/$name]=$(POD_NAMESPACE=$ns cni ADD "$name" "/run/netns/$ID-$ns-$name" "$CONF" |
		jq -r '.ips[0].address' | cut -d/ -f1)
	serve "$ID-$ns-$name" --tcp 8080 --udp 8081
}

# scrape NAME [NETNS]: /metrics into $DIR/NAME.txt, parsed into $DIR/NAME.json.
scrape() {
	local ns=${2:-$NODE}
	nsenter --net="/run/netns/$ns" curl -sS --max-time 5 -o "$DIR/$1.txt" \
		-w '%{http_code} %{time_total} %{content_type}\n' http://127.0.0.1:9962/metrics \
		>"$DIR/$1.http" || return 1
	$PY "$ROOT/tests/e2e/promparse.py" "$DIR/$1.txt" >"$DIR/$1.json"
}
# val NAME FAMILY SAMPLE [LABEL=VALUE...]: the sum of the matching samples.
val() {
	local f=$1 fam=$2 sample=$3 sel='true'
	shift 3
	for kv in "$@"; do
		sel="$sel and .labels[\"${kv%%=*}\"] == \"${kv#*=}\""
	done
	jq -r --arg f "$fam" --arg s "$sample" \
		"[.[\$f].samples[] | select(.name == \$s and $sel) | .value] | add // 0" "$DIR/$f.json"
}
gt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a > b) }'; }

netns_add "$NODE"
start_agent "$NODE" "$CIDR" "$DIR" || exit 1

echo "== every family, with its type"
if scrape s0; then
	ok "GET /metrics parsed by prometheus_client ($(cut -d' ' -f2 "$DIR/s0.http") s)"
else
	not_ok "GET /metrics parsed by prometheus_client"
	cat "$DIR/s0.txt" "$DIR/agent.log" | tail -20
fi
check "status 200, Content-Type text/plain; version=0.0.4" \
	grep -q '^200 [0-9.]* text/plain; version=0.0.4' "$DIR/s0.http"
FAMILIES=(
	sluice_datapath_packets_total:counter sluice_datapath_bytes_total:counter
	sluice_drops_total:counter sluice_xdp_fallthrough_packets_total:counter
	sluice_map_insert_failures_total:counter
	sluice_prefilter_drops_total:counter sluice_prefilter_dropped_bytes_total:counter
	sluice_map_entries:gauge sluice_map_max_entries:gauge sluice_map_fill_ratio:gauge
	sluice_map_count_duration_seconds:gauge sluice_endpoints:gauge
	sluice_cni_operation_duration_seconds:histogram
	sluice_policy_sync_duration_seconds:histogram sluice_policy_sync_failures_total:counter
	sluice_policy_sync_entries_written_total:counter
	sluice_policy_sync_entries_removed_total:counter sluice_policy_sync_entries:gauge
	sluice_policies:gauge sluice_policies_not_enforced:gauge sluice_identities:gauge
	sluice_kube_watch_events_total:counter sluice_kube_lists_total:counter
	sluice_kube_relists_total:counter sluice_kube_errors_total:counter
	sluice_kube_synced:gauge sluice_kube_watch_lag_seconds:histogram
	sluice_flow_records_total:counter sluice_flow_export_lost_total:counter
	sluice_flows_total:counter sluice_policy_verdicts_total:counter
	sluice_flow_buffer_entries:gauge sluice_flow_rtt_seconds:histogram
	sluice_flow_tcp_retransmits_total:counter sluice_flow_rtt_pairs_overflow_total:counter
	sluice_agent_resident_memory_bytes:gauge sluice_agent_start_time_seconds:gauge
	sluice_build_info:gauge
)
missing=()
for ft in "${FAMILIES[@]}"; do
	jq -e --arg f "${ft%%:*}" --arg t "${ft#*:}" '.[$f].type == $t' "$DIR/s0.json" >/dev/null ||
		missing+=("$ft")
done
check "all ${#FAMILIES[@]} families present with their types (missing: ${missing[*]:-none})" \
	test ${#missing[@]} -eq 0
check "every family is named sluice_*" \
	bash -c "jq -e 'keys | all(startswith(\"sluice_\"))' '$DIR/s0.json'"
NREASONS=$(grep -cE 'X\(SLUICE_[A-Z0-9_]+, *[0-9]+, [01], "' "$ROOT/include/sluice/datapath.h")
check "one series per reason and direction ($NREASONS reasons in datapath.h x 2)" \
	bash -c "[ $NREASONS -gt 50 ] && [ \$(jq '.sluice_datapath_packets_total.samples | length' '$DIR/s0.json') -eq $((NREASONS * 2)) ]"
now=$(date +%s)
check "start time: within the last 10 minutes" \
	bash -c "st=$(val s0 sluice_agent_start_time_seconds sluice_agent_start_time_seconds); awk -v s=\$st -v n=$now 'BEGIN { exit !(s <= n && s > n - 600) }'"
check "RSS above 1 MiB" gt "$(val s0 sluice_agent_resident_memory_bytes sluice_agent_resident_memory_bytes)" 1048576
check "build info: 1 with a version label" \
	bash -c "jq -e '.sluice_build_info.samples[0] | .value == 1 and (.labels.version | length > 0)' '$DIR/s0.json'"
check "map capacities: conntrack, ipcache, policy_allow known" bash -c "
	for m in conntrack ipcache policy_allow flows; do
		v=\$(jq -r --arg m \$m '[.sluice_map_max_entries.samples[] | select(.labels.map == \$m) | .value][0] // 0' '$DIR/s0.json')
		awk -v v=\$v 'BEGIN { exit !(v > 0) }' || exit 1
	done"
check "no pods yet: 0 endpoints, 0 CNI ADDs" bash -c "
	[ \"$(val s0 sluice_endpoints sluice_endpoints)\" = 0 ] &&
	[ \"$(val s0 sluice_cni_operation_duration_seconds sluice_cni_operation_duration_seconds_count command=ADD)\" = 0 ]"

echo "== values move with pods and traffic"
pod_add x a
pod_add x b
pod_add y c
check "three pods added" test -n "${IP[x/a]}" -a -n "${IP[x/b]}" -a -n "${IP[y/c]}"
for _ in 1 2 3 4 5; do
	probe "$ID-x-a" tcp "${IP[x/b]}" 8080 --timeout 1000 >/dev/null 2>&1
	probe "$ID-y-c" udp "${IP[x/a]}" 8081 --timeout 1000 >/dev/null 2>&1
done
scrape s1
check "CNI ADD ok count = 3, the pods added" \
	test "$(val s1 sluice_cni_operation_duration_seconds sluice_cni_operation_duration_seconds_count command=ADD result=ok)" = 3
check "CNI ADD: +Inf bucket = count, sum > 0" bash -c "
	[ \"$(val s1 sluice_cni_operation_duration_seconds sluice_cni_operation_duration_seconds_bucket command=ADD result=ok le=+Inf)\" = 3 ] &&
	awk -v s=$(val s1 sluice_cni_operation_duration_seconds sluice_cni_operation_duration_seconds_sum command=ADD result=ok) 'BEGIN { exit !(s > 0) }'"
check "CNI ADD buckets cumulative" bash -c "
	jq -e '[.sluice_cni_operation_duration_seconds.samples[] | select(.name | endswith(\"_bucket\")) | select(.labels.command == \"ADD\" and .labels.result == \"ok\") | .value] as \$v | [range(1; \$v | length) | \$v[.] >= \$v[. - 1]] | all' '$DIR/s1.json'"
check "3 endpoints" test "$(val s1 sluice_endpoints sluice_endpoints)" = 3
p0=$(val s0 sluice_datapath_packets_total sluice_datapath_packets_total reason=forward-local)
p1=$(val s1 sluice_datapath_packets_total sluice_datapath_packets_total reason=forward-local)
check "forward-local packets went up with the traffic ($p0 -> $p1, at least 20)" gt "$p1" "$((${p0%.*} + 19))"
b1=$(val s1 sluice_datapath_bytes_total sluice_datapath_bytes_total reason=forward-local)
check "and their bytes ($b1)" gt "$b1" "$(val s0 sluice_datapath_bytes_total sluice_datapath_bytes_total reason=forward-local)"
check "policy syncs timed (count went up)" gt \
	"$(val s1 sluice_policy_sync_duration_seconds sluice_policy_sync_duration_seconds_count)" \
	"$(val s0 sluice_policy_sync_duration_seconds sluice_policy_sync_duration_seconds_count)"
check "the CNI STATUS/sluicectl status requests are timed too" gt \
	"$(val s1 sluice_cni_operation_duration_seconds sluice_cni_operation_duration_seconds_count command=STATUS)" 0
# Entries are counted at most every 5 s: the first scrape's counts stand until then.
conntrack_seen() {
	scrape s2 && gt "$(val s2 sluice_map_entries sluice_map_entries map=conntrack)" 0 &&
		test "$(val s2 sluice_map_entries sluice_map_entries map=endpoints)" = 3
}
check "map entries recounted: conntrack > 0, 3 endpoints (within 7 s)" eventually 7 conntrack_seen
check "fill ratio = entries / max_entries" bash -c "
	e=$(val s2 sluice_map_entries sluice_map_entries map=endpoints); m=$(val s2 sluice_map_max_entries sluice_map_max_entries map=endpoints)
	r=$(val s2 sluice_map_fill_ratio sluice_map_fill_ratio map=endpoints)
	awk -v e=\$e -v m=\$m -v r=\$r 'BEGIN { d = e / m - r; exit !(m > 0 && d < 1e-12 && d > -1e-12) }'"

echo "== flows: a flow's round trip and retransmissions"
# A flow entry as the datapath keeps it (struct sluice_flow4_value), idle
# since boot: the agent's idle scan (--flow-idle-timeout 1) ends it with an
# END record, which carries its smoothed RTT and retransmissions (2 + 1)
# into the flow buffer's histograms. Its RTT, 3 s, is one no flow between
# two veths has: whatever real flows add, the 2-4 s bucket is this one's.
flow_hex() {
	$PY - "$@" <<'PY'
import socket, struct, sys
src, dst = sys.argv[1], sys.argv[2]
key = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", 40000, 8080) + bytes([6, 0, 0, 0])
val = struct.pack("<3Q2Q2Q5IH2BHBBIII2I2Q2I2IIII2II",
                  1, 0, 0, 10, 9, 1000, 900,        # first/last seen, last report, packets, bytes
                  0, 0, 0, 0, 0, 8080,              # identities, rule, ifindex, svc addr, svc port
                  0x1b, 0x1b, 10, 1, 0, 0, 0, 0,     # tcp flags, reason, verdict, dir, flags, drops
                  0, 0, 0, 0, 0, 0,                 # ts_val, ts_time, seq_next
                  2, 1, 2900000, 3000000, 4,        # retrans, rtt min/srtt (us), samples
                  0, 0, 0)                          # the halves, pad
assert len(key) == 16 and len(val) == 160, (len(key), len(val))
print("key hex", " ".join(f"{b:02x}" for b in key), "value hex", " ".join(f"{b:02x}" for b in val))
PY
}
# in_2_4s NAME: samples between 2.097152 s and 4.194304 s
in_2_4s() {
	awk -v a="$(val "$1" sluice_flow_rtt_seconds sluice_flow_rtt_seconds_bucket le=4.194304)" \
		-v b="$(val "$1" sluice_flow_rtt_seconds sluice_flow_rtt_seconds_bucket le=2.097152)" \
		'BEGIN { print a - b }'
}
scrape sb
f0=$(val sb sluice_flow_records_total sluice_flow_records_total)
# shellcheck disable=SC2046
bpftool map update pinned "$BPFFS/sluice_flow4_v1" $(flow_hex "${IP[x/a]}" "${IP[x/b]}")
rtt_seen() { scrape sf && [ "$(in_2_4s sf)" = "$(($(in_2_4s sb) + 1))" ]; }
check "the flow's END record reached the RTT histogram: 2-4 s bucket +1 (within 8 s)" eventually 8 rtt_seen
check "flow records counted (sluice_flow_records_total $f0 -> $(val sf sluice_flow_records_total sluice_flow_records_total))" \
	gt "$(val sf sluice_flow_records_total sluice_flow_records_total)" "$f0"
check "RTT sum up by 3 s, count by at least 1, +Inf bucket = count" bash -c "
	awk -v a=$(val sb sluice_flow_rtt_seconds sluice_flow_rtt_seconds_sum) -v b=$(val sf sluice_flow_rtt_seconds sluice_flow_rtt_seconds_sum) \
	    'BEGIN { d = b - a; exit !(d >= 3 && d < 3.1) }' &&
	[ $(val sf sluice_flow_rtt_seconds sluice_flow_rtt_seconds_count) -gt $(val sb sluice_flow_rtt_seconds sluice_flow_rtt_seconds_count) ] &&
	[ \"$(val sf sluice_flow_rtt_seconds sluice_flow_rtt_seconds_bucket le=+Inf)\" = \"$(val sf sluice_flow_rtt_seconds sluice_flow_rtt_seconds_count)\" ]"
check "retransmissions: up by 3" bash -c "[ \$(( $(val sf sluice_flow_tcp_retransmits_total sluice_flow_tcp_retransmits_total) - $(val sb sluice_flow_tcp_retransmits_total sluice_flow_tcp_retransmits_total) )) -ge 3 ]"
check "export losses by stage agree with sluicectl status" bash -c "
	st=\$('$BUILD/sluicectl' --socket '$SOCK' status -o json)
	[ \"\$(jq '.flows.lost.overwritten' <<<\"\$st\")\" = \"$(val sf sluice_flow_export_lost_total sluice_flow_export_lost_total stage=buffer-overwritten)\" ] &&
	[ \"\$(jq '.flows.lost.ringBufferFull' <<<\"\$st\")\" = \"$(val sf sluice_flow_export_lost_total sluice_flow_export_lost_total stage=ring-buffer-full)\" ] &&
	[ \$(jq '[.sluice_flow_export_lost_total.samples[].labels.stage] | length' '$DIR/sf.json') -eq 5 ]"

echo "== drops by reason"
ctl apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Namespace
metadata: {name: x}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: x, name: isolate-b}
spec: {podSelector: {}, policyTypes: [Ingress]}
YAML
for _ in 1 2 3; do
	probe "$ID-y-c" tcp "${IP[x/b]}" 8080 --timeout 300 >/dev/null 2>&1
done
scrape s3
check "drop-policy drops counted (sluice_drops_total{reason=drop-policy} > 0)" \
	gt "$(val s3 sluice_drops_total sluice_drops_total reason=drop-policy)" 0
check "and in the packets by reason" \
	gt "$(val s3 sluice_datapath_packets_total sluice_datapath_packets_total reason=drop-policy)" 0
# The flows those drops were: new flows by verdict, and the policy verdict
# by namespace (the isolating policy's, x).
policy_denied_seen() {
	scrape s3f && gt "$(val s3f sluice_flows_total sluice_flows_total verdict=dropped)" 0 &&
		gt "$(val s3f sluice_policy_verdicts_total sluice_policy_verdicts_total namespace=x verdict=denied)" 0
}
check "dropped flows counted: sluice_flows_total{verdict=dropped}, sluice_policy_verdicts_total{namespace=x,verdict=denied} (within 3 s)" \
	eventually 3 policy_denied_seen
check "forwarded flows counted: sluice_flows_total{verdict=forwarded} > 0" \
	gt "$(val s3f sluice_flows_total sluice_flows_total verdict=forwarded)" 0
check "no namespace denied that had no policy: y has no denied verdicts" \
	test "$(val s3f sluice_policy_verdicts_total sluice_policy_verdicts_total namespace=y verdict=denied)" = 0
check "a policy compiled: sluice_policies = 1" test "$(val s3 sluice_policies sluice_policies)" = 1
check "entries written by policy syncs > 0" \
	gt "$(val s3 sluice_policy_sync_entries_written_total sluice_policy_sync_entries_written_total)" 0
# The policy and ipcache counts come from the last policy sync, the others
# from walking the maps: both must be what the maps hold.
maps_agree() {
	local m pin got want
	scrape s3m || return 1
	for m in ipcache:sluice_ipc_v2 policy_allow:sluice_pol_v1 policy_deny:sluice_deny_v1 \
		conntrack:sluice_ct4_v1 endpoints:sluice_ep_v2; do
		pin=${m#*:}
		want=$(bpftool -j map dump pinned "$BPFFS/$pin" | jq length)
		got=$(val s3m sluice_map_entries sluice_map_entries map="${m%%:*}")
		[ "$got" = "$want" ] || { echo "${m%%:*}: /metrics $got, map $want"; return 1; }
	done
}
check "map entries as the maps hold them (ipcache, policy, conntrack, endpoints; within 7 s)" \
	eventually 7 maps_agree
POD_NAMESPACE=y cni DEL c "/run/netns/$ID-y-c" "$CONF" >/dev/null
scrape s4
check "CNI DEL counted once, 2 endpoints left" bash -c "
	[ \"$(val s4 sluice_cni_operation_duration_seconds sluice_cni_operation_duration_seconds_count command=DEL result=ok)\" = 1 ] &&
	[ \"$(val s4 sluice_endpoints sluice_endpoints)\" = 2 ]"
check "counters never go down between scrapes" bash -c "
	jq -n --slurpfile a '$DIR/s1.json' --slurpfile b '$DIR/s4.json' '
	  [\$a[0] | to_entries[] | select(.value.type == \"counter\") | .key as \$f | .value.samples[] |
	   . as \$s | (\$b[0][\$f].samples[] | select(.labels == \$s.labels) | .value) >= \$s.value] | all' | grep -q true"

echo "== HTTP: paths and methods"
code() { nsenter --net="/run/netns/$NODE" curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@"; }
check "GET /other: 404" test "$(code http://127.0.0.1:9962/other)" = 404
check "GET /: 404" test "$(code http://127.0.0.1:9962/)" = 404
check "GET /metrics/x: 404" test "$(code http://127.0.0.1:9962/metrics/x)" = 404
check "POST /metrics: 405" test "$(code -X POST -d x=1 http://127.0.0.1:9962/metrics)" = 405
check "HEAD /metrics: 200" test "$(code -I http://127.0.0.1:9962/metrics)" = 200
# A scraper that connects and sends nothing does not hold the agent up.
nsenter --net="/run/netns/$NODE" bash -c 'exec 3<>/dev/tcp/127.0.0.1/9962; sleep 3' &
IDLE=$!
CLEANUP_PIDS+=("$IDLE")
sleep 0.3
t0=$(date +%s%N)
check "a silent connection does not block the API or other scrapes" bash -c \
	"ctl() { '$BUILD/sluicectl' --socket '$SOCK' \"\$@\"; }; ctl status >/dev/null && nsenter --net=/run/netns/$NODE curl -sf --max-time 2 -o /dev/null http://127.0.0.1:9962/metrics"
echo "  (status + scrape with an idle connection open: $((($(date +%s%N) - t0) / 1000000)) ms)"
kill "$IDLE" 2>/dev/null

echo "== --metrics-address off, a port in use, a bad address"
netns_add "$NODE-2"
mkdir -p "$DIR/2"
BPFFS=$BPFFS-2 AGENT_ARGS="$AGENT_ARGS --metrics-address off" start_agent "$NODE-2" 10.243.1.0/24 "$DIR/2" || true
check "agent with --metrics-address off runs" "$BUILD/sluicectl" --socket "$DIR/2/agent.sock" status
check "and nothing listens on 9962 in its namespace" bash -c \
	"! nsenter --net=/run/netns/$NODE-2 curl -s --max-time 2 http://127.0.0.1:9962/metrics"
check "nor on any TCP port" bash -c "[ -z \"\$(ip netns exec $NODE-2 ss -Hltn)\" ]"
out=$(nsenter --net="/run/netns/$NODE" "$BUILD/sluice-agent" --pod-cidr 10.243.2.0/24 --node-name n3 \
	--socket "$DIR/3.sock" --state-dir "$DIR/3" --bpffs "$BPFFS-3" $AGENT_ARGS 2>&1)
rc=$?
check "a second agent on port 9962 fails start-up" test $rc -ne 0
check "naming the address, the flag and the cause" bash -c \
	"grep -q -- '--metrics-address :9962' <<<'$out' && grep -q 'in use' <<<'$out'"
check "before touching the datapath (no pins)" test ! -e "$BPFFS-3"
out=$(nsenter --net="/run/netns/$NODE" "$BUILD/sluice-agent" --pod-cidr 10.243.2.0/24 --node-name n3 \
	--socket "$DIR/3.sock" --state-dir "$DIR/3" --bpffs "$BPFFS-3" $AGENT_ARGS \
	--metrics-address 127.0.0.1:9962 2>&1)
check "the same with HOST:PORT, naming that address" bash -c \
	"grep -q -- '--metrics-address 127.0.0.1:9962: the port is in use' <<<'$out'"
out=$(nsenter --net="/run/netns/$NODE-2" "$BUILD/sluice-agent" --pod-cidr 10.243.2.0/24 --node-name n3 \
	--socket "$DIR/3.sock" --state-dir "$DIR/3" --bpffs "$BPFFS-3" $AGENT_ARGS --metrics-address 9962 2>&1)
check "a bad address is refused, saying what it takes" bash -c \
	"grep -q 'takes HOST:PORT' <<<'$out'"
check "SLUICE_METRICS_ADDRESS from the environment" bash -c "
	SLUICE_METRICS_ADDRESS=nonsense nsenter --net=/run/netns/$NODE-2 '$BUILD/sluice-agent' --pod-cidr 10.243.2.0/24 \
	  --socket '$DIR/3.sock' --state-dir '$DIR/3' --bpffs '$BPFFS-3' $AGENT_ARGS 2>&1 | grep -q \"takes HOST:PORT.*'nonsense'\""

echo "== the Grafana dashboard"
DASH=$ROOT/deploy/grafana/sluice-dashboard.json
check "valid JSON with a Prometheus datasource variable" \
	jq -e '[.templating.list[] | select(.type == "datasource" and .query == "prometheus")] | length == 1' "$DASH"
used=$(jq -r '.. | .expr? // empty' "$DASH" | grep -o 'sluice_[a-z0-9_]*' |
	sed -E 's/_(bucket|sum|count)$//' | sort -u)
unknown=$(for m in $used; do jq -e --arg m "$m" 'has($m)' "$DIR/s0.json" >/dev/null || echo "$m"; done)
check "every metric its panels query is one the agent serves (unknown: ${unknown:-none})" test -z "$unknown"
check "it has panels for all it should show" bash -c "
	for m in sluice_datapath_packets_total sluice_drops_total sluice_cni_operation_duration_seconds \
	    sluice_policy_sync_duration_seconds sluice_map_fill_ratio sluice_kube_watch_events_total \
	    sluice_kube_watch_lag_seconds sluice_agent_resident_memory_bytes sluice_flow_export_lost_total \
	    sluice_flow_rtt_seconds; do grep -q \"\$m\" <<<'$used' || { echo \"no panel for \$m\"; exit 1; }; done"

check "the agent's log has no error" bash -c "! grep -q ' error: ' '$DIR/agent.log'"
summary
