#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Services translated by sluice itself (--kube-proxy-replacement on), pod
# clients, over two nodes (tests/multinode/lib.sh), per routing mode; a) and
# b) with no kube-proxy rule anywhere:
#
#   a) a Service (clusterIP, an externalIP, TCP 80 -> http, UDP 53 -> dns)
#      with one backend pod on each node, applied with sluicectl as Service
#      + EndpointSlice: a client pod on each node reaches it many times over
#      TCP and UDP, both backends answer, each backend sees the client pod's
#      own address, and the answers come from the frontend;
#   a2) bulk TCP (iperf3, unpaced, client and server pinned to different
#      CPUs) through a ClusterIP from the same node and the other node;
#   a3) from one client port, connections closed with a RST, in turn direct
#      to a backend pod:port and through two Services to that same
#      pod:port (same node, other node): each one connects at once; and
#      short connections in turn to the pod and the two Services from a
#      client whose port range is 20 ports wide (ports reused by chance);
#   b) a NetworkPolicy on the backends admitting only app=trusted: a trusted
#      client still gets in, an untrusted one (same node and other node) does
#      not: decided on the real client identity, after translation;
#   b2) an egress policy on the trusted clients: to app=be pods only, the
#      ClusterIP still answers (egress judges the backend, not the
#      ClusterIP, which is no pod); to one backend's address only, every
#      answer comes from that backend and the flows that chose the other
#      one are dropped by the client's egress policy;
#   c) next to a kube-proxy DNAT rule for the ClusterIP on node 1 (to n2-be
#      only), installed now: sluice translates first, the rule sees nothing;
#   d) with --kube-proxy-replacement off (node 1's agent restarted) nothing
#      is translated: the counter stays, and the ClusterIP answers only
#      through kube-proxy's rule (n2-be), or not at all without iptables;
#      bulk TCP through a DNAT rule with an INVALID drop in FORWARD holds.
#
#   tests/e2e/services.sh             overlay, then native
#   tests/e2e/services.sh overlay     one mode (or native)
#
# Last line: "services: N passed, M failed".
# shellcheck source-path=SCRIPTDIR
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TEST_NAME=${SVC_TEST_NAME:-services}
# shellcheck source=../lib/common.sh
source "$HERE/../lib/common.sh"
# shellcheck source=../multinode/lib.sh
source "$HERE/../multinode/lib.sh"
# shellcheck source=svc_lib.sh
source "$HERE/svc_lib.sh"

mn_mode services SVC_TEST_NAME "$0" "$@"

need_root
svc_need_bins
svc_need_flag --kube-proxy-replacement "Service datapath"

ID=slsvc$$
P=$ID
MN_DIR=$(mktemp -d /tmp/sluice-services.XXXXXX)
CLEANUP_PATHS+=("$MN_DIR")
NS=shop
CIP=10.96.10.10
EIP=10.97.0.10
N=20	# probes per client and protocol
# The number after n is the node; after the dash, the app label.
PODS=(n1-be n2-be n1-trusted n2-trusted n1-other n2-other)
declare -A IP=() AGENT=()
ctl() { mn_ctl "$P" "$@"; }
node_of() { printf '%s' "${1:1:1}"; }
app_of() { local a=${1#*-}; printf '%s' "$a"; }

node_metric() { svc_metric "$P" "$@"; } # N REASON DIRECTION
who() { svc_who "$P-$1" "${@:2}"; }       # POD PROTO ADDR PORT

# served POD PROTO ADDR PORT: every answer from ADDR:PORT, the client seen
# as POD's own address, and both backends among the servers.
served() {
	local pod=$1 proto=$2 addr=$3 port=$4 out
	out=$(who "$pod" "$proto" "$addr" "$port")
	if [ "$(grep -c "^peer=$addr:$port server=n[12]-be client=${IP[$pod]}:[0-9]*$" <<<"$out")" = "$N" ] &&
		grep -q 'server=n1-be' <<<"$out" && grep -q 'server=n2-be' <<<"$out"; then
		return 0
	fi
	sort <<<"$out" | uniq -c | sed 's/^/       /'
	return 1
}

refused() { svc_refused "$P-$1" "${@:2}"; } # POD PROTO ADDR PORT

# only_from POD PROTO ADDR PORT SERVER: every answer from ADDR:PORT, by SERVER.
only_from() {
	local out
	out=$(who "$1" "$2" "$3" "$4")
	[ "$(grep -c "^peer=$3:$4 server=$5 client=${IP[$1]}:[0-9]*$" <<<"$out")" = "$N" ] && return 0
	sort <<<"$out" | uniq -c | sed 's/^/       /'
	return 1
}

rule_packets() { # N: packets node N's kube-proxy DNAT rule for the ClusterIP matched
	ip netns exec "$P-node$1" iptables -w -t nat -L PREROUTING -v -n -x 2>/dev/null |
		awk -v cip="$CIP" '$3 == "DNAT" && index($0, cip) { print $1; found = 1 } END { if (!found) print -1 }'
}

echo "== two nodes (--routing $MODE), agents with --kube-proxy-replacement on"
mn_topology "$P" 2 || { log "could not build the topology"; exit 1; }
svc_start_agents "--kube-proxy-replacement on"
svc_apply_nodes
svc_add_pods --tcp 8080 --udp 8081
svc_apply_pods

SERVICE="apiVersion: v1
kind: Service
metadata: {namespace: $NS, name: web}
spec:
  clusterIP: $CIP
  externalIPs: [$EIP]
  ports:
  - {name: http, protocol: TCP, port: 80, targetPort: http}
  - {name: dns, protocol: UDP, port: 53, targetPort: dns}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {namespace: $NS, name: web-1, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, protocol: TCP, port: 8080}, {name: dns, protocol: UDP, port: 8081}]
endpoints:
- {addresses: [${IP[n1-be]}], nodeName: node1, conditions: {ready: true}}
- {addresses: [${IP[n2-be]}], nodeName: node2, conditions: {ready: true}}"

echo "== a) the Service from a client pod on each node"
check "Service and EndpointSlice applied to both agents" mn_apply_all "$P" 2 <<<"$SERVICE"
for n in 1 2; do
	check "node$n: get services says web is translated, and the node translates" bash -c "
		'$BUILD/sluicectl' --socket '$(mn_sock "$P" "$n")' get services -A -o json |
			jq -e '.translated == true and ([.items[] | select(.name == \"web\") | .translated] == [true])'"
done
check "node1: status counts 4 frontends (2 addresses x TCP, UDP), 2 backends per protocol, 2 EXT entries (the externalIP), no health check" bash -c "
	'$BUILD/sluicectl' --socket '$(mn_sock "$P" 1)' status -o json |
		jq -e '.services == {kubeProxyReplacement: true, frontends: 4, backends: 4, extEntries: 2, healthChecks: []}'"
t0=$(node_metric 1 lb-translated egress)
for client in n1-trusted n2-trusted; do
	check "$client -> $CIP:80/TCP x$N: both backends answer, from the ClusterIP, to the client's own address" \
		served "$client" tcp "$CIP" 80
	check "$client -> $CIP:53/UDP x$N: both backends answer, from the ClusterIP, to the client's own address" \
		served "$client" udp "$CIP" 53
done
check "n1-other -> externalIP $EIP:80/TCP x$N: both backends, from the externalIP" served n1-other tcp "$EIP" 80
t1=$(node_metric 1 lb-translated egress)
check "node1 counted its translations (lb-translated $t0 -> $t1)" test "$t1" -ge "$((t0 + 2 * N + N))"
check "node2 counted its reverse translations (lb-reverse)" \
	test "$(( $(node_metric 2 lb-reverse egress) + $(node_metric 2 lb-reverse ingress) ))" -gt 0

# bulk CLIENT: 3 s of unpaced iperf3 from CLIENT (pinned to CPU 0) to the
# bulk Service (its server pinned to CPU 1): both directions of the flow
# refresh its tracking entries at once on two CPUs. The stream must last
# and carry data: a reply taken for a new flow would reach the client from
# the backend's address, and the client's RST would end it.
bulk() {
	local out
	out=$(ip netns exec "$P-$1" taskset -c 0 timeout 15 iperf3 -c "$BULK_CIP" -p 5201 -t 3 -J 2>&1)
	jq -e '(.error == null) and (.end.sum_received.bytes > 10000000)' <<<"$out" >/dev/null && return 0
	jq -c '{error, received: .end.sum_received.bytes}' <<<"$out" 2>/dev/null | sed 's/^/       /' ||
		head -5 <<<"$out" | sed 's/^/       /'
	return 1
}

if command -v iperf3 >/dev/null && command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
	echo "== a2) bulk TCP through a ClusterIP, client and server on different CPUs"
	BULK_CIP=10.96.10.11
	ip netns exec "$P-n1-be" taskset -c 1 iperf3 -s -B "${IP[n1-be]}" -p 5201 >/dev/null 2>&1 &
	CLEANUP_PIDS+=($!)
	check "bulk Service $BULK_CIP:5201 -> n1-be:5201 applied to both agents" mn_apply_all "$P" 2 <<EOF
apiVersion: v1
kind: Service
metadata: {namespace: $NS, name: bulk}
spec:
  clusterIP: $BULK_CIP
  ports: [{name: iperf, protocol: TCP, port: 5201, targetPort: 5201}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {namespace: $NS, name: bulk-1, labels: {kubernetes.io/service-name: bulk}}
addressType: IPv4
ports: [{name: iperf, protocol: TCP, port: 5201}]
endpoints:
- {addresses: [${IP[n1-be]}], nodeName: node1, conditions: {ready: true}}
EOF
	sleep 0.3
	check "n1-trusted (same node) -> $BULK_CIP:5201: 3 s of bulk TCP hold" bulk n1-trusted
	check "n2-trusted (other node) -> $BULK_CIP:5201: 3 s of bulk TCP hold" bulk n2-trusted
else
	log "no iperf3, taskset or second CPU: the bulk check is skipped"
fi

# reuse CLIENT SPORT TARGET...: from CLIENT's port SPORT, one TCP echo round
# trip to each TARGET (ADDR:PORT) in turn, each connection closed with a RST
# (SO_LINGER 0) before the next; every connect and echo within 3 s.
reuse() {
	local pod=$1 sport=$2
	shift 2
	ip netns exec "$P-$pod" python3 - "$sport" "$@" <<'PY'
import socket, struct, sys
sport = int(sys.argv[1])
for t in sys.argv[2:]:
    addr, port = t.rsplit(":", 1)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("", sport))
    s.settimeout(3)
    try:
        s.connect((addr, int(port)))
        s.sendall(b"reuse-token")
        got = b""
        while len(got) < 11:
            chunk = s.recv(64)
            if not chunk:
                break
            got += chunk
        if got != b"reuse-token":
            raise OSError("echo " + repr(got))
    except OSError as e:
        print("       %s from port %d: %s" % (t, sport, e))
        sys.exit(1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
PY
}

if command -v python3 >/dev/null; then
	echo "== a3) one client port: direct, then through a Service, to the same pod:port"
	REUSE_CIP=10.96.10.12
	REUSE2_CIP=10.96.10.13
	check "Services reuse ($REUSE_CIP:80) and reuse2 ($REUSE2_CIP:80), both -> n1-be:8080, applied" \
		mn_apply_all "$P" 2 <<EOF
apiVersion: v1
kind: Service
metadata: {namespace: $NS, name: reuse}
spec:
  clusterIP: $REUSE_CIP
  ports: [{name: http, protocol: TCP, port: 80, targetPort: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {namespace: $NS, name: reuse-1, labels: {kubernetes.io/service-name: reuse}}
addressType: IPv4
ports: [{name: http, protocol: TCP, port: 8080}]
endpoints:
- {addresses: [${IP[n1-be]}], nodeName: node1, conditions: {ready: true}}
---
apiVersion: v1
kind: Service
metadata: {namespace: $NS, name: reuse2}
spec:
  clusterIP: $REUSE2_CIP
  ports: [{name: http, protocol: TCP, port: 80, targetPort: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {namespace: $NS, name: reuse2-1, labels: {kubernetes.io/service-name: reuse2}}
addressType: IPv4
ports: [{name: http, protocol: TCP, port: 8080}]
endpoints:
- {addresses: [${IP[n1-be]}], nodeName: node1, conditions: {ready: true}}
EOF
	sleep 0.3
	BE=${IP[n1-be]}:8080
	for client in n1-trusted n2-trusted; do
		check "$client, one port: direct, Service, direct, Service, other Service (RST between)" \
			reuse "$client" 47011 "$BE" "$REUSE_CIP:80" "$BE" "$REUSE_CIP:80" "$REUSE2_CIP:80"
	done
	# Ephemeral ports reused by chance (a loop of short connections to a
	# pod and to Services that share it): a narrow port range makes the
	# kernel reuse ports across the three destinations at once.
	ROUNDS=15
	for client in n1-trusted n2-trusted; do
		old=$(ip netns exec "$P-$client" sysctl -n net.ipv4.ip_local_port_range | tr -s '\t ' ' ')
		ip netns exec "$P-$client" sysctl -qw net.ipv4.ip_local_port_range="40100 40119"
		out=$(for _ in $(seq "$ROUNDS"); do
			for dst in "${IP[n1-be]} 8080" "$REUSE_CIP 80" "$REUSE2_CIP 80"; do
				# shellcheck disable=SC2086
				probe "$P-$client" tcp $dst --timeout 3000 >/dev/null 2>&1 && echo ok || echo "fail $dst"
			done
		done)
		ip netns exec "$P-$client" sysctl -qw net.ipv4.ip_local_port_range="$old"
		check "$client, ports 40100-40119: $((3 * ROUNDS)) connections, in turn to n1-be:8080 and the two ClusterIPs, all answered" \
			test "$(grep -c '^ok$' <<<"$out")" = $((3 * ROUNDS))
		grep '^fail' <<<"$out" | sort | uniq -c | sed 's/^/       /'
	done
else
	log "no python3: the port reuse check is skipped"
fi

echo "== b) NetworkPolicy on the backends: only app=trusted, judged after translation"
check "the policy applied to both agents" mn_apply_all "$P" 2 <<'YAML'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: shop, name: be-from-trusted}
spec:
  podSelector: {matchLabels: {app: be}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: trusted}}}]
YAML
for client in n1-trusted n2-trusted; do
	check "$client (app=trusted) -> $CIP:80/TCP: still both backends" served "$client" tcp "$CIP" 80
done
for client in n1-other n2-other; do
	check "$client (app=other) -> $CIP:80/TCP: kept out by both backends" refused "$client" tcp "$CIP" 80
	check "$client (app=other) -> $CIP:53/UDP: kept out" refused "$client" udp "$CIP" 53
done

echo "== b2) the client's egress policy judges the backend, not the ClusterIP"
EGRESS_BE='apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: shop, name: trusted-egress}
spec:
  podSelector: {matchLabels: {app: trusted}}
  policyTypes: [Egress]
  egress:
  - to: [{podSelector: {matchLabels: {app: be}}}]'
check "egress of app=trusted: to app=be pods only" mn_apply_all "$P" 2 <<<"$EGRESS_BE"
check "n1-trusted -> $CIP:80/TCP: still both backends (egress sees the backend pods)" \
	served n1-trusted tcp "$CIP" 80
check "n2-trusted -> $CIP:53/UDP: still both backends" served n2-trusted udp "$CIP" 53
# part_from POD PROTO ADDR PORT SERVER: some probes answered, all of them
# by SERVER from ADDR:PORT, and some not answered at all.
part_from() {
	local out
	out=$(TIMEOUT=500 who "$1" "$2" "$3" "$4")
	grep -q '^fail$' <<<"$out" &&
		grep -q "^peer=$3:$4 server=$5 " <<<"$out" &&
		! grep -v '^fail$' <<<"$out" | grep -vq "^peer=$3:$4 server=$5 client=${IP[$1]}:[0-9]*$" &&
		return 0
	sort <<<"$out" | uniq -c | sed 's/^/       /'
	return 1
}
d0=$(node_metric 1 drop-policy egress)
check "egress of app=trusted: to ${IP[n2-be]}/32 only" mn_apply_all "$P" 2 \
	<<<"${EGRESS_BE/"{podSelector: {matchLabels: {app: be}}}"/"{ipBlock: {cidr: ${IP[n2-be]}/32}}"}"
check "n1-trusted -> $CIP:80/TCP x$N: only n2-be answers; flows that chose n1-be are dropped" \
	part_from n1-trusted tcp "$CIP" 80 n2-be
check "node1 counted the client's egress drops (drop-policy egress)" \
	test "$(node_metric 1 drop-policy egress)" -gt "$d0"
for n in 1 2; do
	check "node$n: the egress policy deleted" ctl "$n" delete -f - <<<"$EGRESS_BE"
done

KP=0
if command -v iptables >/dev/null && ip netns exec "$P-node1" iptables -w -t nat -L >/dev/null 2>&1; then
	KP=1
	echo "== c) next to kube-proxy's DNAT rule for the ClusterIP on node 1"
	check "node1: a DNAT rule for $CIP:80/TCP to n2-be (as kube-proxy's)" \
		ip netns exec "$P-node1" iptables -w -t nat -A PREROUTING -d "$CIP" -p tcp --dport 80 \
		-j DNAT --to-destination "${IP[n2-be]}:8080"
	check "n1-trusted -> $CIP:80/TCP x$N: sluice translates first (both backends)" \
		served n1-trusted tcp "$CIP" 80
	check "kube-proxy's rule saw no packet" test "$(rule_packets 1)" = 0
else
	log "no iptables: the check next to kube-proxy's rule is skipped"
fi

echo "== d) --kube-proxy-replacement off on node 1: nothing translated"
kill "${AGENT[1]}" 2>/dev/null
wait "${AGENT[1]}" 2>/dev/null
rm -f "$(mn_sock "$P" 1)"
MN_AGENT_ARGS="--kube-proxy-replacement off" mn_start_agent "$P" 1 "$MODE" ||
	{ log "node1's agent did not restart"; exit 1; }
AGENT[1]=$MN_AGENT_PID
check "node1: get services says nothing is translated" bash -c "
	'$BUILD/sluicectl' --socket '$(mn_sock "$P" 1)' get services -A -o json |
		jq -e '.translated == false and ([.items[].translated] | all(. == false))'"
t0=$(node_metric 1 lb-translated egress)
if [ "$KP" = 1 ]; then
	check "n1-trusted -> $CIP:80/TCP x$N: only kube-proxy's rule answers (n2-be)" \
		only_from n1-trusted tcp "$CIP" 80 n2-be
	check "kube-proxy's rule matched the flows" test "$(rule_packets 1)" -ge "$N"
	if [ -n "${BULK_CIP:-}" ]; then
		# kube-proxy's KUBE-FORWARD drops what the node's conntrack
		# finds INVALID: a flow's packet that skipped the stack (a reply
		# taken for a new flow and sent straight to the client) leaves
		# its window tracking behind and later packets are INVALID.
		check "node1: a DNAT rule for $BULK_CIP:5201 to n1-be and an INVALID drop in FORWARD (as kube-proxy's)" \
			bash -c "ip netns exec '$P-node1' iptables -w -t nat -A PREROUTING -d '$BULK_CIP' -p tcp --dport 5201 \
				-j DNAT --to-destination '${IP[n1-be]}:5201' &&
				ip netns exec '$P-node1' iptables -w -I FORWARD -m conntrack --ctstate INVALID -j DROP"
		check "n1-trusted -> $BULK_CIP:5201 through kube-proxy's rule: 3 s of bulk TCP hold" bulk n1-trusted
		check "the INVALID rule dropped nothing" test "$(ip netns exec "$P-node1" iptables -w -L FORWARD -v -n -x |
			awk '/INVALID/ { print $1; exit }')" = 0
	fi
else
	check "n1-trusted -> $CIP:80/TCP: no answer (no kube-proxy, no translation)" \
		refused n1-trusted tcp "$CIP" 80
fi
check "n1-trusted -> $CIP:53/UDP: no answer (no rule for it, no translation)" \
	refused n1-trusted udp "$CIP" 53
check "node1 translated nothing (lb-translated stays $t0)" test "$(node_metric 1 lb-translated egress)" = "$t0"
check "n2-trusted -> $CIP:80/TCP: node 2 still translates" served n2-trusted tcp "$CIP" 80

summary
