#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Services benchmark (issue 11), one run, baselines measured alongside. Two
# two-node clusters (tests/multinode/lib.sh, --routing $ROUTING), alike but
# for who translates Services:
#   S: agents with --kube-proxy-replacement on: sluice translates;
#   K: agents with --kube-proxy-replacement off and kube-proxy's iptables
#      rules (iptables mode, the shape tests/kubeproxy/run.sh installs) for
#      the same Services in each node namespace.
# Each has a client pod and two backend pods on node 1 and one backend pod on
# node 2.
#
# 1. Pod -> ClusterIP -> pod on the same node and across nodes, next to pod
#    -> pod IP directly (cluster S) and to kube-proxy's rules (cluster K):
#    TCP throughput, 1 stream (iperf3, cubic; server on another CPU than the
#    client, and on the client's: through a sluice Service the first breaks
#    off, see docs/BENCHMARKS.md), UDP request/response latency p50
#    (sockperf ping-pong, client and server on one CPU), and TCP
#    connections per second (bench-connrate: connect, echo 8 bytes, close,
#    one at a time). Targets: Service >= 0.95x the direct connection rate
#    and <= 1.05x its latency.
# 2. Service count scaling: connection rate and median connect() time (the
#    first packet's round trip) to the last of 1, 1 000 and 10 000 Services
#    (SVC_BENCH_COUNTS), each with two backends, sluice next to kube-proxy's
#    KUBE-SERVICES / KUBE-SVC-* / KUBE-SEP-* chains for the same Services
#    (the Service hit is the last rule of KUBE-SERVICES: the longest chain
#    walk). Targets: sluice flat (<= 1.1x from the first count to the last)
#    and >= 2x kube-proxy's connection rate at 10 000.
# 3. A fresh agent: the time from `sluicectl apply` of the largest count of
#    Services (+ EndpointSlices, in chunks of SVC_APPLY_CHUNK: the agent's API
#    takes messages up to 4 MiB) until `sluicectl status` counts them all
#    programmed, the time for one endpoint change among them, and the
#    agent's resident memory (VmRSS, VmHWM; goal <= 30 MiB). Twice: with
#    ClusterIP Services, then (another fresh agent) with every other one
#    with an externalIP too (its INT entry and its EXT twin: 60 000 of
#    sluice_svc4_v1's 65 536 entries with 10 000 Services).
# SVC_BENCH_SECTIONS="2 3" runs only those sections (default "1 2 3").
#
# Every round measures every pair, in alternating order; the ratios are the
# median of the per-round ratios, so that drift cancels. The CPU may be
# shared: absolute numbers are noisy, ratios measured in the same run are
# what counts.
set -uo pipefail
TEST_NAME=bench-services
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../tests/lib/common.sh
source "$HERE/../tests/lib/common.sh"
# shellcheck source=../tests/multinode/lib.sh
source "$HERE/../tests/multinode/lib.sh"
# shellcheck source=../tests/lib/kubeproxy.sh
source "$HERE/../tests/lib/kubeproxy.sh"
need_root

ROUNDS=${ROUNDS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-3}
TCP_CC=${TCP_CC:-cubic}
ROUTING=${ROUTING:-native}
read -r -a COUNTS <<<"${SVC_BENCH_COUNTS:-1 1000 10000}" # SVC_BENCH_COUNTS="1 100": quicker
SECTIONS=" ${SVC_BENCH_SECTIONS:-1 2 3} "
section() { [[ $SECTIONS == *" $1 "* ]]; }
SVC_APPLY_CHUNK=${SVC_APPLY_CHUNK:-2000}
ID=slbs$$
MN_DIR=$(mktemp -d /tmp/sluice-bench-services.XXXXXX)
CLEANUP_PATHS+=("$MN_DIR")
NS=bench
CLUSTER_CIDR=10.210.0.0/16
# Frontends: the measured Services; the scaling fillers take 10.100.0.0/16
# and their backends (never sent to) 10.211.0.0/16.
VIP_SAME=10.96.1.1
VIP_CROSS=10.96.1.2
VIP_LAST=10.96.1.3

for tool in iperf3 sockperf jq bc iptables iptables-restore; do
	command -v $tool >/dev/null || { echo "$TEST_NAME: $tool missing: run 'make deps'" >&2; exit 1; }
done
for bin in sluice-agent sluice-cni sluicectl sluice-probe bench-connrate; do
	[ -x "$BUILD/$bin" ] || { echo "$TEST_NAME: $BUILD/$bin missing: run make bench" >&2; exit 1; }
done
if ! "$BUILD/sluice-agent" --help 2>&1 | grep -q -- --kube-proxy-replacement; then
	echo "$TEST_NAME: $BUILD/sluice-agent has no --kube-proxy-replacement (run make)" >&2
	exit 1
fi
for c in "${COUNTS[@]}"; do
	if ! [[ $c =~ ^[1-9][0-9]*$ ]] || [ "$c" -gt 30000 ]; then
		echo "$TEST_NAME: SVC_BENCH_COUNTS: '$c' is not a count 1-30000" >&2
		exit 1
	fi
done
MAXCOUNT=$(printf '%s\n' "${COUNTS[@]}" | sort -n | tail -n 1)
started=$(date +%s)

# ---- objects ---------------------------------------------------------------------

# The ports. A client reaches a backend pod directly on 5201 and 5211
# (iperf3, its server on another CPU than the client and on the client's),
# 11111 (sockperf, UDP) and 8080 (echo); through a Service on the same
# Service ports, which lead to other target ports on the pod: 5202, 5212,
# 11112, 8081 ("same", "cross"), 8082 ("last"). Separate target ports keep the direct
# and the translated flows from ever sharing a tracking entry on the
# backend's side: the client reuses its source ports within seconds at these
# rates, and a connection whose 5-tuple towards the backend is that of an
# earlier direct connection (or the other way round) finds that entry still
# there (see docs/BENCHMARKS.md).
# svc_json NAME VIP ECHO-TARGET BACKEND-IP...: a ClusterIP Service with ports
# iperf (TCP 5201 -> 5202), iperf1 (TCP 5211 -> 5212), rr (UDP 11111 ->
# 11112) and echo (TCP 8080 -> ECHO-TARGET), and its EndpointSlice with the
# backends, all ready.
svc_json() {
	local name=$1 vip=$2 echo_target=$3
	shift 3
	jq -cn --arg ns "$NS" --arg name "$name" --arg vip "$vip" --argjson et "$echo_target" --args '
		[{name: "iperf", protocol: "TCP", port: 5201, targetPort: 5202},
		 {name: "iperf1", protocol: "TCP", port: 5211, targetPort: 5212},
		 {name: "rr", protocol: "UDP", port: 11111, targetPort: 11112},
		 {name: "echo", protocol: "TCP", port: 8080, targetPort: $et}] as $ports |
		{apiVersion: "v1", kind: "Service", metadata: {namespace: $ns, name: $name},
		 spec: {clusterIP: $vip, ports: $ports}},
		{apiVersion: "discovery.k8s.io/v1", kind: "EndpointSlice",
		 metadata: {namespace: $ns, name: "\($name)-1", labels: {"kubernetes.io/service-name": $name}},
		 addressType: "IPv4", ports: [$ports[] | {name, protocol, port: .targetPort}],
		 endpoints: [$ARGS.positional[] | {addresses: [.], conditions: {ready: true}}]}' "$@"
}

# fillers FROM TO [ext]: Services f<FROM>..f<TO-1>, TCP 80 -> 8080, two
# backends each, as one List; with ext, every other one (even i) with an
# externalIP in 10.101.0.0/16 too (all of them would need 9 entries of
# sluice_svc4_v1 each: 90 000 for 10 000, over its 65 536). Their addresses carry no traffic: they are there to be
# looked past.
filler_ip() { printf '%s.%d.%d' "$1" $(($2 / 256 % 256)) $(($2 % 256)); }
fillers() {
	jq -cn --arg ns "$NS" --argjson from "$1" --argjson to "$2" --argjson ext "$([ "${3:-}" = ext ] && echo true || echo false)" '
		def ip($net; $i): "\($net).\(($i / 256 | floor) % 256).\($i % 256)";
		{apiVersion: "v1", kind: "List", items: [range($from; $to) as $i |
		 ({apiVersion: "v1", kind: "Service", metadata: {namespace: $ns, name: "f\($i)"},
		   spec: ({clusterIP: ip("10.100"; $i),
			  ports: [{name: "http", protocol: "TCP", port: 80, targetPort: 8080}]} +
			 if $ext and $i % 2 == 0 then {externalIPs: [ip("10.101"; $i)]} else {} end)},
		  {apiVersion: "discovery.k8s.io/v1", kind: "EndpointSlice",
		   metadata: {namespace: $ns, name: "f\($i)-1", labels: {"kubernetes.io/service-name": "f\($i)"}},
		   addressType: "IPv4", ports: [{name: "http", protocol: "TCP", port: 8080}],
		   endpoints: [{addresses: [ip("10.211"; 2 * $i)], conditions: {ready: true}},
			       {addresses: [ip("10.211"; 2 * $i + 1)], conditions: {ready: true}}]})]}'
}

# apply_fillers P N FROM TO: the fillers FROM..TO-1 to node N of cluster P,
# SVC_APPLY_CHUNK Services per apply.
apply_fillers() {
	local p=$1 n=$2 from=$3 to=$4 f
	for ((f = from; f < to; f += SVC_APPLY_CHUNK)); do
		fillers "$f" $((f + SVC_APPLY_CHUNK < to ? f + SVC_APPLY_CHUNK : to)) |
			mn_ctl "$p" "$n" apply -f - >/dev/null || return 1
	done
}

# ---- kube-proxy's rules (iptables mode) ---------------------------------------------

# kp_restore: iptables-restore --noflush input for the Service ports on stdin,
# one a line: "NAMESPACE/NAME:PORTNAME PROTO PORT TARGETPORT VIP BACKEND..."
# in KUBE-SERVICES order. As kube-proxy writes them: a KUBE-SERVICES rule per
# Service port, a KUBE-SVC chain marking off-cluster clients for masquerade
# and picking a KUBE-SEP chain with statistic random probabilities (1/n,
# 1/(n-1), ..., the last unconditional), each KUBE-SEP DNATing. Chain names
# are KUBE-SVC-/KUBE-SEP- and 16 characters, as kube-proxy's (which hash the
# names: the names' content costs nothing at packet time).
kp_restore() {
	awk -v cidr="$CLUSTER_CIDR" '
	function name(prefix, n,   s, i, alpha) {
		alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
		s = ""
		for (i = 0; i < 16; i++) { s = s substr(alpha, n % 32 + 1, 1); n = int(n / 32) }
		return prefix s
	}
	BEGIN {
		print "*filter"
		print ":KUBE-EXTERNAL-SERVICES - [0:0]"; print ":KUBE-FORWARD - [0:0]"
		print ":KUBE-NODEPORTS - [0:0]"; print ":KUBE-PROXY-FIREWALL - [0:0]"
		print ":KUBE-SERVICES - [0:0]"
		print "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP"
		print "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding rules\" -m mark --mark 0x4000/0x4000 -j ACCEPT"
		print "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding conntrack rule\" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
		print "COMMIT"
		print "*nat"
		print ":KUBE-MARK-MASQ - [0:0]"; print ":KUBE-NODEPORTS - [0:0]"
		print ":KUBE-POSTROUTING - [0:0]"; print ":KUBE-SERVICES - [0:0]"
		print "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN"
		print "-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000"
		print "-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully"
		print "-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000"
	}
	{
		svc = name("KUBE-SVC-", NR * 7919)
		chains[++nc] = svc
		port_name = $1; proto = $2; port = $3; target = $4; vip = $5
		rules[++nr] = sprintf("-A KUBE-SERVICES -d %s/32 -p %s -m comment --comment \"%s cluster IP\" -m %s --dport %d -j %s", vip, proto, port_name, proto, port, svc)
		rules[++nr] = sprintf("-A %s ! -s %s -d %s/32 -p %s -m comment --comment \"%s cluster IP\" -m %s --dport %d -j KUBE-MARK-MASQ", svc, cidr, vip, proto, port_name, proto, port)
		nbe = NF - 5
		for (i = 6; i <= NF; i++) {
			sep = name("KUBE-SEP-", NR * 7919 + i * 104729 + 1)
			chains[++nc] = sep
			left = NF - i + 1
			prob = left > 1 ? sprintf("-m statistic --mode random --probability %.11f ", 1 / left) : ""
			rules[++nr] = sprintf("-A %s -m comment --comment \"%s -> %s:%d\" %s-j %s", svc, port_name, $i, target, prob, sep)
			seprules[++ns] = sprintf("-A %s -s %s/32 -m comment --comment \"%s\" -j KUBE-MARK-MASQ", sep, $i, port_name)
			seprules[++ns] = sprintf("-A %s -p %s -m comment --comment \"%s\" -m %s -j DNAT --to-destination %s:%d", sep, proto, port_name, proto, $i, target)
		}
	}
	END {
		for (i = 1; i <= nc; i++) print ":" chains[i] " - [0:0]"
		for (i = 1; i <= nr; i++) print rules[i]
		for (i = 1; i <= ns; i++) print seprules[i]
		print "-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS"
		print "COMMIT"
	}'
}

# kp_ports FILLERS: the Service ports of the measured Services, FILLERS
# filler Services, then the last Service: kp_restore's input.
kp_ports() {
	local fill=$1 p
	for p in "iperf tcp 5201 5202" "iperf1 tcp 5211 5212" "rr udp 11111 11112" "echo tcp 8080 8081"; do
		# shellcheck disable=SC2086 # p is a list of words
		set -- $p
		echo "$NS/same:$1 $2 $3 $4 $VIP_SAME ${IP[k.be1]}"
		echo "$NS/cross:$1 $2 $3 $4 $VIP_CROSS ${IP[k.be2]}"
	done
	awk -v n="$fill" -v ns="$NS" 'BEGIN {
		for (i = 0; i < n; i++)
			printf "%s/f%d:http tcp 80 8080 10.100.%d.%d 10.211.%d.%d 10.211.%d.%d\n", ns, i,
				int(i / 256) % 256, i % 256, int(2 * i / 256) % 256, (2 * i) % 256,
				int((2 * i + 1) / 256) % 256, (2 * i + 1) % 256
	}'
	echo "$NS/last:echo tcp 8080 8082 $VIP_LAST ${IP[k.be1]} ${IP[k.be1b]}"
}

# kp_load FILLERS: kube-proxy's rules for FILLERS fillers on both of K's
# nodes (a full resync: every chain declared again, so flushed first).
kp_load() {
	local n
	kp_ports "$1" | kp_restore >"$MN_DIR/kp.rules"
	for n in 1 2; do
		ip netns exec "$ID-k-node$n" iptables-restore -w --noflush <"$MN_DIR/kp.rules" || return 1
	done
}

# ---- the clusters ------------------------------------------------------------------

declare -A IP=()
PODS=(client:1 be1:1 be1b:1 be2:2)
for c in s k; do
	p=$ID-$c
	kpr=on
	[ "$c" = k ] && kpr=off
	echo "$TEST_NAME: cluster $c: two nodes (--routing $ROUTING, --kube-proxy-replacement $kpr)" >&2
	mn_topology "$p" 2 || exit 1
	for n in 1 2; do
		MN_AGENT_ARGS="--kube-proxy-replacement $kpr" mn_start_agent "$p" "$n" "$ROUTING" || exit 1
	done
	{
		jq -cn --arg ns "$NS" '{apiVersion: "v1", kind: "Namespace", metadata: {name: $ns}}'
		for n in 1 2; do mn_node_json "$n"; done
	} | mn_list | mn_apply_all "$p" 2 || exit 1
	for pn in "${PODS[@]}"; do
		pod=${pn%:*} n=${pn#*:}
		netns_add "$p-$pod"
		out=$(mn_pod_add "$p" "$n" "$pod" "$NS") || { echo "$out" >&2; exit 1; }
		IP[$c.$pod]=$(jq -r '.ips[0].address' <<<"$out" | cut -d/ -f1)
	done
	for pn in "${PODS[@]}"; do
		pod=${pn%:*} n=${pn#*:}
		mn_pod_json "$NS" "$pod" "$n" "${IP[$c.$pod]}" "$pod"
	done | mn_list | mn_apply_all "$p" 2 || exit 1
done
for n in 1 2; do kp_jumps "$ID-k-node$n" || { echo "$TEST_NAME: kube-proxy's jumps" >&2; exit 1; }; done
kp_load 0 || { echo "$TEST_NAME: kube-proxy's rules did not load" >&2; exit 1; }
{
	svc_json same "$VIP_SAME" 8081 "${IP[s.be1]}"
	svc_json cross "$VIP_CROSS" 8081 "${IP[s.be2]}"
	svc_json last "$VIP_LAST" 8082 "${IP[s.be1]}" "${IP[s.be1b]}"
} | mn_list | mn_apply_all "$ID-s" 2 || { echo "$TEST_NAME: the Services did not apply" >&2; exit 1; }

# Pinned as bench/run.sh: clients on the first CPU, the throughput and echo
# servers on the last, the latency server on the client's CPU.
SERVER_CPU=$(($(nproc) - 1))
CLIENT_CPU=0
for c in s k; do
	for pod in be1 be1b be2; do
		ns=$ID-$c-$pod ip=${IP[$c.$pod]}
		for port in 5201 5202 5211 5212; do
			cpu=$SERVER_CPU
			[ "$port" -gt 5210 ] && cpu=$CLIENT_CPU
			ip netns exec "$ns" taskset -c "$cpu" iperf3 -s -B "$ip" -p "$port" -D \
				-I "$MN_DIR/iperf-$c-$pod-$port.pid" >/dev/null 2>&1
		done
		for port in 11111 11112; do
			ip netns exec "$ns" taskset -c "$CLIENT_CPU" sockperf server -i "$ip" -p "$port" >/dev/null 2>&1 &
			CLEANUP_PIDS+=($!)
		done
		ip netns exec "$ns" taskset -c "$SERVER_CPU" "$BUILD/sluice-probe" serve --tcp 8080 --tcp 8081 \
			--tcp 8082 >/dev/null 2>&1 &
		CLEANUP_PIDS+=($!)
	done
done
sleep 0.5
for c in s k; do
	for pod in be1 be1b be2; do
		for port in 5201 5202 5211 5212; do
			CLEANUP_PIDS+=("$(cat "$MN_DIR/iperf-$c-$pod-$port.pid")")
		done
	done
done

# Pairs: CLIENT_NS and DST per setup name.
declare -A CLIENT_NS=() DST=()
CLIENT_NS[same.direct]=$ID-s-client DST[same.direct]=${IP[s.be1]}
CLIENT_NS[same.sluice]=$ID-s-client DST[same.sluice]=$VIP_SAME
CLIENT_NS[same.kp]=$ID-k-client DST[same.kp]=$VIP_SAME
CLIENT_NS[cross.direct]=$ID-s-client DST[cross.direct]=${IP[s.be2]}
CLIENT_NS[cross.sluice]=$ID-s-client DST[cross.sluice]=$VIP_CROSS
CLIENT_NS[cross.kp]=$ID-k-client DST[cross.kp]=$VIP_CROSS
CLIENT_NS[last.sluice]=$ID-s-client DST[last.sluice]=$VIP_LAST
CLIENT_NS[last.kp]=$ID-k-client DST[last.kp]=$VIP_LAST

reaches() { timeout 5 ip netns exec "$1" "$BUILD/bench-connrate" "$2" 8080 0.1 >/dev/null 2>&1; }
for s in "${!CLIENT_NS[@]}"; do
	if ! eventually 10 reaches "${CLIENT_NS[$s]}" "${DST[$s]}"; then
		echo "$TEST_NAME: $s: ${CLIENT_NS[$s]} cannot reach ${DST[$s]}:8080" >&2
		exit 1
	fi
done
# Nothing that should be translated by sluice went through kube-proxy's
# rules, and the other way round.
if ip netns exec "$ID-s-node1" iptables-save 2>/dev/null | grep -q KUBE-; then
	echo "$TEST_NAME: cluster s has kube-proxy rules" >&2
	exit 1
fi
if [ "$(mn_ctl "$ID-s" 1 status -o json | jq '.services.frontends')" != 12 ] ||
	[ "$(mn_ctl "$ID-k" 1 status -o json | jq '.services.kubeProxyReplacement')" != false ]; then
	echo "$TEST_NAME: cluster s does not translate the 12 frontends, or cluster k does" >&2
	exit 1
fi

throughput() { # SETUP [PORT] -> Gbit/s, or "fail" when the test broke off
	timeout $((SECONDS_PER_RUN + 15)) ip netns exec "${CLIENT_NS[$1]}" taskset -c "$CLIENT_CPU" \
		iperf3 -c "${DST[$1]}" -p "${2:-5201}" -t "$SECONDS_PER_RUN" -C "$TCP_CC" -J 2>/dev/null |
		jq -r 'if .error or (.end.sum_received.bits_per_second // 0) == 0 then "fail"
		       else .end.sum_received.bits_per_second / 1e9 end' 2>/dev/null | grep . || echo fail
}
latency() { # SETUP -> p50 usec, one CPU
	ip netns exec "${CLIENT_NS[$1]}" taskset -c "$CLIENT_CPU" \
		sockperf ping-pong -i "${DST[$1]}" -p 11111 -t "$SECONDS_PER_RUN" 2>&1 |
		sed -n 's/.*percentile 50.000 = *\([0-9.]*\).*/\1/p'
}
# connrate SETUP -> "conn/s connect-p50-us"; the connections that failed
# (no answer within 1 s) are added up in $MN_DIR/failed.SETUP
connrate() {
	local out
	out=$(timeout $((SECONDS_PER_RUN + 10)) ip netns exec "${CLIENT_NS[$1]}" taskset -c "$CLIENT_CPU" \
		"$BUILD/bench-connrate" "${DST[$1]}" 8080 "$SECONDS_PER_RUN" --connect-p50 2>"$MN_DIR/cr.err")
	sed -n 's/^bench-connrate: \([0-9]*\) connections failed$/\1/p' "$MN_DIR/cr.err" >>"$MN_DIR/failed.$1"
	[ -n "$out" ] && echo "$out" || echo "fail fail"
}
# failed_total SETUP...: how many connections those setups' runs lost
failed_total() {
	local s n=0
	for s in "$@"; do
		[ -s "$MN_DIR/failed.$s" ] && n=$((n + $(paste -sd+ "$MN_DIR/failed.$s" | bc)))
	done
	echo "$n"
}
# failed_conns SETUP...: " (N connections got no answer within 1 s)", or nothing
failed_conns() {
	local n
	n=$(failed_total "$@")
	[ "$n" = 0 ] || printf ' (%s connections got no answer within 1 s)' "$n"
}
ratio() { # A B -> A / B, or "fail" when either is
	if [ "$1" = fail ] || [ "$2" = fail ]; then echo fail; return; fi
	echo "scale=4; $1 / $2" | bc -l | sed 's/^\./0./'
}
# verdict VALUE OP TARGET: "met" or "MISSED" ("n/a" without a value)
verdict() {
	[[ $1 =~ ^[0-9.]+$ ]] || { echo n/a; return; }
	[ "$(echo "$1 $2 $3" | bc -l)" = 1 ] && echo met || echo MISSED
}
# med FILE: the median of FILE's numbers ("fail" lines left out), or "-"
med() {
	local m
	m=$(grep -v '^fail$' "$MN_DIR/$1")
	[ -n "$m" ] && printf '%.3f' "$(median <<<"$m")" || printf -- '-'
}
# fails FILE LABEL: " (LABEL: N of M runs broke off)" when some did
fails() {
	local n
	n=$(grep -c '^fail$' "$MN_DIR/$1")
	[ "$n" = 0 ] || printf ' (%s: %s of %s runs broke off)' "$2" "$n" "$(wc -l <"$MN_DIR/$1")"
}
# num FORMAT VALUE: VALUE in FORMAT, "-" as it is
# shellcheck disable=SC2059 # the format is the caller's
num() { if [ "$2" = - ]; then printf -- '-'; else printf "$1" "$2"; fi; }

# ---- 1. pod -> ClusterIP -> pod, next to pod -> pod and kube-proxy -----------------------

if section 1; then
echo "$TEST_NAME: 1. $ROUNDS rounds of ${SECONDS_PER_RUN}s per measurement" >&2
VARIANTS=(direct sluice kp)
for r in $(seq "$ROUNDS"); do
	echo "$TEST_NAME: round $r/$ROUNDS" >&2
	# Each round starts one variant later: none always runs first.
	k=$(((r - 1) % 3))
	order=("${VARIANTS[@]:$k}" "${VARIANTS[@]:0:$k}")
	for path in same cross; do
		for v in "${order[@]}"; do throughput "$path.$v" >"$MN_DIR/cur.t.$v"; done
		for v in "${order[@]}"; do throughput "$path.$v" 5211 >"$MN_DIR/cur.u.$v"; done
		for v in "${order[@]}"; do latency "$path.$v" >"$MN_DIR/cur.l.$v"; done
		for v in "${order[@]}"; do connrate "$path.$v" >"$MN_DIR/cur.c.$v"; done
		for v in "${VARIANTS[@]}"; do
			cat "$MN_DIR/cur.t.$v" >>"$MN_DIR/t.$path.$v"
			cat "$MN_DIR/cur.u.$v" >>"$MN_DIR/u.$path.$v"
			cat "$MN_DIR/cur.l.$v" >>"$MN_DIR/l.$path.$v"
			cut -d' ' -f1 "$MN_DIR/cur.c.$v" >>"$MN_DIR/c.$path.$v"
		done
		for v in sluice kp; do
			for m in t u l; do
				ratio "$(cat "$MN_DIR/cur.$m.$v")" "$(cat "$MN_DIR/cur.$m.direct")" >>"$MN_DIR/$m.$path.$v-direct"
			done
			ratio "$(cut -d' ' -f1 "$MN_DIR/cur.c.$v")" "$(cut -d' ' -f1 "$MN_DIR/cur.c.direct")" \
				>>"$MN_DIR/c.$path.$v-direct"
		done
	done
done
fi

# ---- 2. Service count scaling --------------------------------------------------------

if section 2; then
# The count includes "last", the Service hit: FILLERS = count - 1 before it.
applied=0
for count in "${COUNTS[@]}"; do
	fill=$((count - 1))
	echo "$TEST_NAME: 2. $count Services: sluice and kube-proxy's rules" >&2
	if [ "$fill" -gt "$applied" ]; then
		apply_fillers "$ID-s" 1 "$applied" "$fill" || { echo "$TEST_NAME: fillers did not apply" >&2; exit 1; }
	elif [ "$fill" -lt "$applied" ]; then
		fillers "$fill" "$applied" | mn_ctl "$ID-s" 1 delete -f - >/dev/null ||
			{ echo "$TEST_NAME: fillers did not delete" >&2; exit 1; }
	fi
	applied=$fill
	kp_load "$fill" || { echo "$TEST_NAME: kube-proxy's rules for $count Services did not load" >&2; exit 1; }
	fe=$(mn_ctl "$ID-s" 1 status -o json | jq '.services.frontends')
	# "same", "cross", "last": 4 ports each; a filler: 1.
	if [ "$fe" != $((12 + fill)) ]; then
		echo "$TEST_NAME: node1 of cluster s programs $fe frontends, not $((12 + fill))" >&2
		exit 1
	fi
	kpn=$(ip netns exec "$ID-k-node1" iptables -w -t nat -S KUBE-SERVICES | grep -c -- '-j KUBE-SVC-')
	if [ "$kpn" != $((8 + fill + 1)) ]; then
		echo "$TEST_NAME: KUBE-SERVICES on node1 of cluster k has $kpn Service rules, not $((8 + fill + 1))" >&2
		exit 1
	fi
	for r in $(seq "$ROUNDS"); do
		order=(sluice kp)
		[ $((r % 2)) -eq 0 ] && order=(kp sluice)
		for v in "${order[@]}"; do connrate "last.$v" >"$MN_DIR/cur.n.$v"; done
		for v in sluice kp; do
			cut -d' ' -f1 "$MN_DIR/cur.n.$v" >>"$MN_DIR/n.$count.$v"
			cut -d' ' -f2 "$MN_DIR/cur.n.$v" >>"$MN_DIR/p.$count.$v"
		done
		ratio "$(cut -d' ' -f1 "$MN_DIR/cur.n.sluice")" "$(cut -d' ' -f1 "$MN_DIR/cur.n.kp")" \
			>>"$MN_DIR/n.$count.sluice-kp"
	done
done
fi

# ---- 3. apply to programmed, one endpoint change, memory -------------------------------

# fresh_agent VARIANT (clusterip or ext): section 3 on a fresh agent of
# its own; sets APPLY_S, CHANGE_MS, NOOP_MS, RSS0, RSS, HWM, EXTN.
fresh_agent() {
	local var=$1 p=$ID-a$1 f t0 t1 mid ext=""
	[ "$var" = ext ] && ext=ext
	echo "$TEST_NAME: 3. a fresh agent: $MAXCOUNT Services applied ($var)" >&2
	mn_topology "$p" 1 || exit 1
	MN_AGENT_ARGS="--kube-proxy-replacement on" mn_start_agent "$p" 1 "$ROUTING" || exit 1
	APID=$MN_AGENT_PID
	{
		jq -cn --arg ns "$NS" '{apiVersion: "v1", kind: "Namespace", metadata: {name: $ns}}'
		mn_node_json 1
	} | mn_list | mn_ctl "$p" 1 apply -f - >/dev/null || exit 1
	RSS0=$(awk '/^VmRSS/ {print $2}' "/proc/$APID/status")
	# The documents are made first: what is timed is the agent (and sluicectl).
	for ((f = 0; f < MAXCOUNT; f += SVC_APPLY_CHUNK)); do
		fillers "$f" $((f + SVC_APPLY_CHUNK < MAXCOUNT ? f + SVC_APPLY_CHUNK : MAXCOUNT)) $ext \
			>"$MN_DIR/chunk.$f"
	done
	# INT entries: a clusterIP each, and with ext an externalIP for every
	# other one.
	WANT=$MAXCOUNT
	[ -n "$ext" ] && WANT=$((MAXCOUNT + (MAXCOUNT + 1) / 2))
	t0=$EPOCHREALTIME
	for ((f = 0; f < MAXCOUNT; f += SVC_APPLY_CHUNK)); do
		mn_ctl "$p" 1 apply -f "$MN_DIR/chunk.$f" >/dev/null || { echo "$TEST_NAME: apply failed" >&2; exit 1; }
	done
	PA=$p
	programmed() { [ "$(mn_ctl "$PA" 1 status -o json | jq '.services.frontends')" = "$WANT" ]; }
	eventually 60 programmed || { echo "$TEST_NAME: $MAXCOUNT Services never programmed" >&2; exit 1; }
	t1=$EPOCHREALTIME
	APPLY_S=$(echo "$t1 - $t0" | bc -l)
	BE0=$(mn_ctl "$p" 1 status -o json | jq '.services.backends')
	EXTN=$(mn_ctl "$p" 1 status -o json | jq '.services.extEntries')
	# One endpoint change in the middle: the second backend of f<MAXCOUNT/2> goes.
	mid=$((MAXCOUNT / 2))
	jq -cn --arg ns "$NS" --arg name "f$mid" --arg ip "$(filler_ip 10.211 $((2 * mid)))" '
		{apiVersion: "discovery.k8s.io/v1", kind: "EndpointSlice",
		 metadata: {namespace: $ns, name: "\($name)-1", labels: {"kubernetes.io/service-name": $name}},
		 addressType: "IPv4", ports: [{name: "http", protocol: "TCP", port: 8080}],
		 endpoints: [{addresses: [$ip], conditions: {ready: true}}]}' >"$MN_DIR/change.json"
	changed() { [ "$(mn_ctl "$PA" 1 status -o json | jq '.services.backends')" = $((BE0 - 1)) ]; }
	t0=$EPOCHREALTIME
	mn_ctl "$p" 1 apply -f "$MN_DIR/change.json" >/dev/null || { echo "$TEST_NAME: the change failed" >&2; exit 1; }
	eventually 30 changed || { echo "$TEST_NAME: the endpoint change was never programmed" >&2; exit 1; }
	t1=$EPOCHREALTIME
	CHANGE_MS=$(echo "($t1 - $t0) * 1000" | bc -l)
	# The same call with nothing to change: what sluicectl and the status poll
	# cost around the agent's work.
	t0=$EPOCHREALTIME
	mn_ctl "$p" 1 apply -f "$MN_DIR/change.json" >/dev/null
	changed
	t1=$EPOCHREALTIME
	NOOP_MS=$(echo "($t1 - $t0) * 1000" | bc -l)
	RSS=$(awk '/^VmRSS/ {print $2}' "/proc/$APID/status")
	HWM=$(awk '/^VmHWM/ {print $2}' "/proc/$APID/status")
}

# section3_table VARIANT: the numbers fresh_agent set.
section3_table() {
	printf '\n3. a fresh agent, %s Services of 2 backends (+ %s EndpointSlices), %s per apply%s\n' \
		"$MAXCOUNT" "$MAXCOUNT" "$SVC_APPLY_CHUNK" \
		"$([ "$1" = ext ] && echo ", every other one with an externalIP ($EXTN EXT entries)")"
	printf '%-58s %10.2f\n' "apply until all programmed (s)" "$APPLY_S"
	printf '%-58s %10.1f\n' "one endpoint change among them, apply until programmed (ms)" "$CHANGE_MS"
	printf '%-58s %10.1f\n' "  the same apply with nothing to change (ms)" "$NOOP_MS"
	printf '%-58s %10.1f\n' "agent VmRSS before the Services (MiB)" "$(echo "$RSS0 / 1024" | bc -l)"
	printf '%-58s %10.1f %s\n' "agent VmRSS with them (MiB)" "$(echo "$RSS / 1024" | bc -l)" \
		"(goal <= 30: $(verdict "$RSS" '<=' $((30 * 1024))))"
	printf '%-58s %10.1f\n' "agent VmHWM, its peak (MiB)" "$(echo "$HWM / 1024" | bc -l)"
}

if section 3; then
	fresh_agent clusterip
	S3_CLUSTERIP=$(section3_table clusterip)
	fresh_agent ext
	S3_EXT=$(section3_table ext)
fi

# ---- the table -------------------------------------------------------------------------

if section 1; then
printf '\n1. pod -> ClusterIP -> pod (%s routing), medians; ratios: median of per-round ratios\n' "$ROUTING"
printf '%-38s %9s %9s %9s %10s %10s %s\n' "measurement" "pod IP" "sluice" "k-proxy" "sluice/ip" \
	"kproxy/ip" "target (sluice/ip)"
for path in same cross; do
	label=$([ "$path" = same ] && echo "same node" || echo "cross-node")
	printf '%-38s %9s %9s %9s %10s %10s %s\n' "$label: TCP throughput (Gbit/s)" \
		"$(num %.2f "$(med "t.$path.direct")")" "$(num %.2f "$(med "t.$path.sluice")")" \
		"$(num %.2f "$(med "t.$path.kp")")" \
		"$(med "t.$path.sluice-direct")" "$(med "t.$path.kp-direct")" \
		"-$(fails "t.$path.sluice" sluice)$(fails "t.$path.kp" kube-proxy)"
	printf '%-38s %9s %9s %9s %10s %10s %s\n' "$label: TCP throughput, one CPU" \
		"$(num %.2f "$(med "u.$path.direct")")" "$(num %.2f "$(med "u.$path.sluice")")" \
		"$(num %.2f "$(med "u.$path.kp")")" \
		"$(med "u.$path.sluice-direct")" "$(med "u.$path.kp-direct")" \
		"-$(fails "u.$path.sluice" sluice)$(fails "u.$path.kp" kube-proxy)"
	printf '%-38s %9s %9s %9s %10s %10s %s\n' "$label: UDP req/resp p50 (us)" \
		"$(num %.2f "$(med "l.$path.direct")")" "$(num %.2f "$(med "l.$path.sluice")")" \
		"$(num %.2f "$(med "l.$path.kp")")" \
		"$(med "l.$path.sluice-direct")" "$(med "l.$path.kp-direct")" \
		"<= 1.05: $(verdict "$(med "l.$path.sluice-direct")" '<=' 1.05)"
	printf '%-38s %9s %9s %9s %10s %10s %s\n' "$label: TCP connections/s" \
		"$(num %.0f "$(med "c.$path.direct")")" "$(num %.0f "$(med "c.$path.sluice")")" \
		"$(num %.0f "$(med "c.$path.kp")")" \
		"$(med "c.$path.sluice-direct")" "$(med "c.$path.kp-direct")" \
		">= 0.95: $(verdict "$(med "c.$path.sluice-direct")" '>=' 0.95)$(failed_conns "$path.sluice")"
done
fi

if section 2; then
printf '\n2. Service count scaling: the last Service (2 backends, same node), medians\n'
printf '%-10s %14s %14s %14s %14s %12s\n' "Services" "sluice conn/s" "kproxy conn/s" "sluice conn us" \
	"kproxy conn us" "sluice/kproxy"
for count in "${COUNTS[@]}"; do
	printf '%-10s %14s %14s %14s %14s %12s\n' "$count" "$(num %.0f "$(med "n.$count.sluice")")" \
		"$(num %.0f "$(med "n.$count.kp")")" "$(num %.1f "$(med "p.$count.sluice")")" \
		"$(num %.1f "$(med "p.$count.kp")")" "$(med "n.$count.sluice-kp")"
done
first=${COUNTS[0]}
flat=$(ratio "$(med "n.$first.sluice")" "$(med "n.$MAXCOUNT.sluice")")
kpflat=$(ratio "$(med "n.$first.kp")" "$(med "n.$MAXCOUNT.kp")")
printf 'sluice: connection rate at %s / at %s Services: %s (target <= 1.1: %s); kube-proxy: %s\n' \
	"$first" "$MAXCOUNT" "$flat" "$(verdict "$flat" '<=' 1.1)" "$kpflat"
printf 'sluice / kube-proxy connection rate at %s Services: %s (target >= 2: %s)\n' "$MAXCOUNT" \
	"$(med "n.$MAXCOUNT.sluice-kp")" "$(verdict "$(med "n.$MAXCOUNT.sluice-kp")" '>=' 2)"
printf 'connections that got no answer within 1 s (counted as failed): sluice %s, kube-proxy %s, pod IP %s\n' \
	"$(failed_total last.sluice same.sluice cross.sluice)" "$(failed_total last.kp same.kp cross.kp)" \
	"$(failed_total same.direct cross.direct)"
fi

if section 3; then
	printf '%s\n' "$S3_CLUSTERIP" "$S3_EXT"
fi

printf '\nmachine: %s, %s cores, %s, kernel %s; %s\n' "$(lscpu | sed -n 's/^Model name: *//p')" "$(nproc)" \
	"$(free -g | awk '/Mem:/ {print $2 " GiB"}')" "$(uname -r)" "$(iptables -V)"
printf 'rounds: %s x %ss; TCP congestion control: %s; commit %s; %s s in all\n' "$ROUNDS" \
	"$SECONDS_PER_RUN" "$TCP_CC" "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)" \
	"$(($(date +%s) - started))"
for f in "$MN_DIR"/[tulcnp].*; do
	printf '  raw %-26s %s\n' "$(basename "$f")" "$(paste -sd' ' "$f")"
done
