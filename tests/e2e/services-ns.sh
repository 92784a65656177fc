#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# North-south Services translated by sluice (--kube-proxy-replacement on),
# two nodes (tests/multinode/lib.sh), per routing mode, no kube-proxy rule
# anywhere. An outside client (namespace P-ext on the physical bridge, an
# address of 10.200.0.0/24 that is no node's, routes to the externalIP and
# the LB address through node 1 and node 2) and pods on both nodes:
#
#   a) Service web (LoadBalancer, externalTrafficPolicy Cluster, backends on
#      both nodes): the outside client reaches the NodePort on each node,
#      the externalIP and the LB address, TCP and UDP, every answer from the
#      address and port it asked, both backends among them; the local
#      backend sees the client's own address, the other node's backend the
#      translating node's (SNAT); a pod reaches its own node's NodePort;
#   b) Service loc (externalTrafficPolicy Local, backends on both nodes):
#      each node's NodePort answers only from its own backend, which sees the
#      client's own address; Service one (Local, a backend on node 1 only):
#      node 2's NodePort does not answer; the health check node port answers
#      200 with localEndpoints 1 on node 1 and 503 with 0 on node 2, in
#      kube-proxy's JSON shape; the answer follows the endpoints, and the
#      listener goes with the Service;
#   c) Service itl (internalTrafficPolicy Local): a pod's flows to the
#      clusterIP go only to its own node's backend;
#   d) a NetworkPolicy on the backends admitting only an ipBlock without the
#      outside client keeps it out (eTP Local: the client address is kept),
#      while pods still get in;
#   e) Service none (LoadBalancer, an externalIP, no endpoint at all): the
#      outside client is refused at once on node 1's NodePort and the
#      externalIP, TCP (RST) and UDP (port unreachable), counted
#      lb-ext-reject; eTP Local without a local backend (b, node 2) got no
#      answer at all and was counted drop-lb-ext-no-local;
#   f) a pod on node 1 reaches node 2's NodePort (node 2 translates it:
#      overlay routing brings it through the tunnel), TCP and UDP;
#   g) node 2's backend's ICMP port unreachable about a flow node 1 SNATed
#      reaches the outside client as its own socket's error (refused);
#   a2) the agents restarted with --xdp off: a)'s north-south flows again,
#      all at tc, with the same results;
#   a3) a NodePort whose one backend is on node 2: its replies (plain with
#      native routing, tunnelled with overlay routing) are un-SNATed at XDP
#      too (xdp-pass hardly moves while lb-snat-reverse counts them).
#
# The agents run --xdp native (part a: the other node's backend's flows
# are sent by the XDP program itself, bpf/lib/nodeport_xdp.h, its xdp-tx
# counter and fall-through causes prove it). The outside client checksums
# its own frames (tx offload off), as a host across a wire does, and so do
# the backends: a veth
# peer would leave them to offload, which XDP cannot finish (csum-partial,
# left to tc).
#
#   tests/e2e/services-ns.sh             overlay, then native
#   tests/e2e/services-ns.sh overlay     one mode (or native)
#
# Last line: "services-ns: N passed, M failed".
# shellcheck source-path=SCRIPTDIR
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TEST_NAME=${SVCNS_TEST_NAME:-services-ns}
# shellcheck source=../lib/common.sh
source "$HERE/../lib/common.sh"
# shellcheck source=../multinode/lib.sh
source "$HERE/../multinode/lib.sh"
# shellcheck source=svc_lib.sh
source "$HERE/svc_lib.sh"

mn_mode services-ns SVCNS_TEST_NAME "$0" "$@"

need_root
svc_need_bins
command -v curl >/dev/null || { log "curl is needed for the health check"; exit 1; }

ID=slns$$
P=$ID
MN_DIR=$(mktemp -d /tmp/sluice-services-ns.XXXXXX)
CLEANUP_PATHS+=("$MN_DIR")
NS=shop
CIP=10.96.20.10
CIP_ITL=10.96.20.20
EIP=10.97.0.20
LBIP=10.98.0.20
EIP_NONE=10.97.0.21
EXT=10.200.0.50	# the outside client: on the node network, no node
N=20	# probes per check
PODS=(n1-be n2-be n1-cl n2-cl)
declare -A IP=()
NODE1=$(mn_node_ip 1)
NODE2=$(mn_node_ip 2)
ctl() { mn_ctl "$P" "$@"; }
node_of() { printf '%s' "${1:1:1}"; }
app_of() { local a=${1#*-}; printf '%s' "$a"; }

node_metric() { svc_metric "$P" "$@"; } # N REASON DIRECTION

# answers NS PROTO ADDR PORT SERVERS CLIENT_RE: every one of N answers comes
# from ADDR:PORT, by one of SERVERS (a regex), the server seeing a client
# matching CLIENT_RE (address:port); with SERVERS "both", both backends
# answer, each seeing the client as CLIENT_n1 / CLIENT_n2 (regexes).
answers() {
	local ns=$1 proto=$2 addr=$3 port=$4 servers=$5 out
	out=$(svc_who "$ns" "$proto" "$addr" "$port")
	if [ "$servers" = both ]; then
		if [ "$(grep -cE "^peer=$addr:$port server=(n1-be client=${CLIENT_n1}|n2-be client=${CLIENT_n2}):[0-9]+$" <<<"$out")" = "$N" ] &&
			grep -q 'server=n1-be' <<<"$out" && grep -q 'server=n2-be' <<<"$out"; then
			return 0
		fi
	elif [ "$(grep -cE "^peer=$addr:$port server=$servers client=$6:[0-9]+$" <<<"$out")" = "$N" ]; then
		return 0
	fi
	sort <<<"$out" | sed -E 's/:[0-9]+$//' | uniq -c | sed 's/^/       /'
	return 1
}

# refused_fast NS PROTO ADDR PORT: the probe fails with "connection
# refused" (a RST, an ICMP port unreachable) well within its 3 s timeout.
refused_fast() {
	local t0 t1 err
	t0=$(date +%s%N)
	err=$(probe "$1" "$2" "$3" "$4" --timeout 3000 2>&1 >/dev/null) && {
		echo "answered"
		return 1
	}
	t1=$(date +%s%N)
	echo "$err ($(((t1 - t0) / 1000000)) ms)"
	grep -q "connection refused" <<<"$err" && [ $(((t1 - t0) / 1000000)) -lt 1500 ]
}

# not_refused NS PROTO ADDR PORT: the probe times out, nothing answers.
not_refused() {
	local err
	err=$(probe "$1" "$2" "$3" "$4" --timeout 1000 2>&1 >/dev/null) && {
		echo "answered"
		return 1
	}
	echo "$err"
	! grep -q "connection refused" <<<"$err"
}

# health NODE PORT CODE COUNT SERVICE: node NODE's health check on PORT, from
# the outside client: HTTP CODE, kube-proxy's JSON with COUNT local endpoints.
health() {
	local addr out code body
	addr=$(mn_node_ip "$1")
	out=$(ip netns exec "$P-ext" curl -s -m 3 -w '\n%{http_code}' "http://$addr:$2/healthz") ||
		{ echo "no answer from $addr:$2"; return 1; }
	code=$(tail -n 1 <<<"$out")
	body=$(sed '$d' <<<"$out")
	echo "HTTP $code: $body"
	[ "$code" = "$3" ] &&
		jq -e --arg ns "$NS" --arg name "$5" --argjson n "$4" \
			'.service == {namespace: $ns, name: $name} and .localEndpoints == $n' <<<"$body" >/dev/null
}

echo "== two nodes (--routing $MODE), agents with --kube-proxy-replacement on, an outside client"
mn_topology "$P" 2 || { log "could not build the topology"; exit 1; }
mn_switch_xdp "$P" 2 || { log "could not put XDP_PASS on the switch ports"; exit 1; }
netns_add "$P-ext"
if ! { ip -n "$P-phys" link add portx mtu "$MN_MTU" type veth peer name eth0 netns "$P-ext" &&
	ip -n "$P-phys" link set portx master br0 up &&
	ip -n "$P-ext" addr add "$EXT/24" dev eth0 &&
	ip -n "$P-ext" link set eth0 up &&
	ip netns exec "$P-ext" ethtool -K eth0 tx off >/dev/null &&
	ip -n "$P-ext" route add "$EIP/32" via "$NODE1" &&
	ip -n "$P-ext" route add "$LBIP/32" via "$NODE2" &&
	ip -n "$P-ext" route add "$EIP_NONE/32" via "$NODE1"; }; then
	log "could not wire up the outside client"
	exit 1
fi
svc_start_agents "--kube-proxy-replacement on --xdp native"
check "the outside client: no kube-proxy rules" svc_no_kube_proxy "$P-ext"
svc_apply_nodes
svc_add_pods --tcp 8080 --udp 8081
# The backends checksum their own answers too (a3: native routing's
# replies, full checksums, are XDP's to un-SNAT; a veth would hand XDP
# the offloaded ones, which it leaves to tc: csum-partial).
for pod in n1-be n2-be; do
	ip netns exec "$P-$pod" ethtool -K eth0 tx off >/dev/null ||
		{ log "cannot switch tx checksum offload off in $pod"; exit 1; }
done
svc_apply_pods

# slice NAME SERVICE PODS...: an EndpointSlice of SERVICE with PODS ready.
slice() {
	local name=$1 svc=$2 pod
	shift 2
	printf 'apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n'
	printf 'metadata: {namespace: %s, name: %s, labels: {kubernetes.io/service-name: %s}}\n' \
		"$NS" "$name" "$svc"
	printf 'addressType: IPv4\n'
	printf 'ports: [{name: http, protocol: TCP, port: 8080}, {name: dns, protocol: UDP, port: 8081}]\n'
	printf 'endpoints:\n'
	for pod in "$@"; do
		printf -- '- {addresses: [%s], nodeName: node%s, conditions: {ready: true}}\n' \
			"${IP[$pod]}" "$(node_of "$pod")"
	done
}

SERVICES="apiVersion: v1
kind: Service
metadata: {namespace: $NS, name: web}
spec:
  type: LoadBalancer
  clusterIP: $CIP
  externalIPs: [$EIP]
  externalTrafficPolicy: Cluster
  ports:
  - {name: http, protocol: TCP, port: 80, targetPort: http, nodePort: 30080}
  - {name: dns, protocol: UDP, port: 53, targetPort: dns, nodePort: 30053}
status:
  loadBalancer: {ingress: [{ip: $LBIP}]}
---
$(slice web-1 web n1-be n2-be)
---
apiVersion: v1
kind: Service
metadata: {namespace: $NS, name: loc}
spec:
  type: NodePort
  clusterIP: 10.96.20.11
  externalTrafficPolicy: Local
  healthCheckNodePort: 32081
  ports:
  - {name: http, protocol: TCP, port: 80, targetPort: http, nodePort: 30081}
  - {name: dns, protocol: UDP, port: 53, targetPort: dns, nodePort: 30054}
---
$(slice loc-1 loc n1-be n2-be)
---
apiVersion: v1
kind: Service
metadata: {namespace: $NS, name: one}
spec:
  type: LoadBalancer
  clusterIP: 10.96.20.12
  externalTrafficPolicy: Local
  healthCheckNodePort: 32082
  ports:
  - {name: http, protocol: TCP, port: 80, targetPort: http, nodePort: 30082}
---
$(slice one-1 one n1-be)
---
apiVersion: v1
kind: Service
metadata: {namespace: $NS, name: itl}
spec:
  clusterIP: $CIP_ITL
  internalTrafficPolicy: Local
  ports:
  - {name: http, protocol: TCP, port: 80, targetPort: http}
  - {name: dns, protocol: UDP, port: 53, targetPort: dns}
---
$(slice itl-1 itl n1-be n2-be)"

# xdp_ft N CAUSE: node N's packets its XDP program left to tc for CAUSE.
xdp_ft() {
	mn_ctl "$P" "$1" metrics -o json |
		jq -r --arg c "$2" '[.xdpFallThrough[] | select(.cause == $c) | .packets] | add // 0'
}

# xdp_mode N: the XDP mode node N's agent has on its uplink (status).
xdp_mode() { mn_ctl "$P" "$1" status -o json | jq -r '.xdp[0].mode'; }

# no_xdp N: node N's agent says XDP is off, and its uplink has no program.
no_xdp() {
	[ "$(xdp_mode "$1")" = off ] && ! ip -n "$P-node$1" link show uplink0 | grep -q ' xdp'
}

# cluster_answers: an outside client to web (eTP Cluster) on each node's
# NodePort, the externalIP and the LB address, TCP and UDP.
cluster_answers() {
	local n addr
	for n in 1 2; do
		addr=$(mn_node_ip "$n")
		# The local backend sees the client, the other node's the translating node.
		if [ "$n" = 1 ]; then CLIENT_n1=$EXT CLIENT_n2=$NODE1; else CLIENT_n1=$NODE2 CLIENT_n2=$EXT; fi
		check "outside -> node$n $addr:30080/TCP x$N: both backends, from the NodePort" \
			answers "$P-ext" tcp "$addr" 30080 both
		check "outside -> node$n $addr:30053/UDP x$N: both backends, from the NodePort" \
			answers "$P-ext" udp "$addr" 30053 both
	done
	CLIENT_n1=$EXT CLIENT_n2=$NODE1
	check "outside -> externalIP $EIP:80/TCP (via node1) x$N: both backends" answers "$P-ext" tcp "$EIP" 80 both
	check "outside -> externalIP $EIP:53/UDP (via node1) x$N: both backends" answers "$P-ext" udp "$EIP" 53 both
	CLIENT_n1=$NODE2 CLIENT_n2=$EXT
	check "outside -> LB address $LBIP:80/TCP (via node2) x$N: both backends" answers "$P-ext" tcp "$LBIP" 80 both
	check "outside -> LB address $LBIP:53/UDP (via node2) x$N: both backends" answers "$P-ext" udp "$LBIP" 53 both
}

echo "== a) eTP Cluster: NodePort on each node, externalIP, LB address; TCP and UDP (--xdp native)"
check "the Services and EndpointSlices applied to both agents" mn_apply_all "$P" 2 <<<"$SERVICES"
for n in 1 2; do
	check "node$n: XDP in native mode on its uplink" test "$(xdp_mode "$n")" = native
done
t0=$(node_metric 1 lb-ext-translated ingress)
s0=$(node_metric 1 lb-snat ingress)
x0=$(node_metric 1 xdp-tx ingress)
l0=$(xdp_ft 1 local-backend)
cluster_answers
check "node1 counted external translations (lb-ext-translated)" \
	test "$(node_metric 1 lb-ext-translated ingress)" -ge "$((t0 + 4 * N))"
# Node 1 got 4 x N new flows (its NodePort, the externalIP; TCP and UDP),
# about half for node 2's backend: those went at XDP, the rest to tc.
check "node1's XDP program sent node2's backend's flows itself (xdp-tx)" \
	test "$(node_metric 1 xdp-tx ingress)" -ge "$((x0 + N))"
check "node1's XDP program left its own backend's flows to tc (fall-through local-backend)" \
	test "$(xdp_ft 1 local-backend)" -gt "$l0"
check "node1: sluicectl status counts both (sent at XDP, left to tc)" bash -c \
	"'$BUILD/sluicectl' --socket '$(mn_sock "$P" 1)' status -o json |
		jq -e '.xdp[0].services.sent >= $N and .xdp[0].services.leftToTc > 0' >/dev/null &&
	'$BUILD/sluicectl' --socket '$(mn_sock "$P" 1)' status |
		grep -E '^xdp: +north-south Services: [1-9][0-9]* packets sent at XDP, [1-9][0-9]* left to tc'"
# The same fall-through counters in /metrics, as Prometheus parses them.
prom_ft() {
	local want
	want=$(xdp_ft 1 local-backend)
	nsenter --net="/run/netns/$P-node1" curl -sf --max-time 5 http://127.0.0.1:9962/metrics |
		/usr/bin/python3 "$ROOT/tests/e2e/promparse.py" |
		jq -e --argjson w "$want" '$w > 0 and [.sluice_xdp_fallthrough_packets_total.samples[] |
			select(.labels.cause == "local-backend") | .value] == [$w]'
}
check "node1's /metrics: sluice_xdp_fallthrough_packets_total{cause=\"local-backend\"} as sluicectl metrics says" prom_ft
check "node1 counted SNATs for node2's backend (lb-snat)" test "$(node_metric 1 lb-snat ingress)" -gt "$s0"
check "node1 counted the SNATed replies (lb-snat-reverse)" test "$(node_metric 1 lb-snat-reverse ingress)" -gt 0
CLIENT_n1=${IP[n1-cl]} CLIENT_n2=${IP[n1-cl]}
check "pod n1-cl -> its node's $NODE1:30080/TCP x$N: both backends, the pod's own address" \
	answers "$P-n1-cl" tcp "$NODE1" 30080 both

echo "== a3) node2's backend's replies un-SNATed at XDP too (native: plain; overlay: out of the tunnel)"
{
	check "Service far (NodePort, a backend on node2 only) applied to both agents" \
		mn_apply_all "$P" 2 <<YAML
apiVersion: v1
kind: Service
metadata: {namespace: $NS, name: far}
spec:
  type: NodePort
  clusterIP: 10.96.20.15
  ports:
  - {name: http, protocol: TCP, port: 80, targetPort: http, nodePort: 30093}
  - {name: dns, protocol: UDP, port: 53, targetPort: dns, nodePort: 30094}
---
$(slice far-1 far n2-be)
YAML
	r0=$(node_metric 1 lb-snat-reverse ingress)
	p0=$(node_metric 1 xdp-pass ingress)
	check "outside -> node1 $NODE1:30093/TCP x$N: n2-be, which sees node1" \
		answers "$P-ext" tcp "$NODE1" 30093 n2-be "$NODE1"
	check "outside -> node1 $NODE1:30094/UDP x$N: n2-be, which sees node1" \
		answers "$P-ext" udp "$NODE1" 30094 n2-be "$NODE1"
	check "node1 un-SNATed n2-be's replies (lb-snat-reverse)" \
		test "$(node_metric 1 lb-snat-reverse ingress)" -ge "$((r0 + 2 * N))"
	# Both ways at XDP: nearly nothing of these flows reached tc.
	check "node1's tc path saw almost none of it (xdp-pass grew by less than $N)" \
		test "$(node_metric 1 xdp-pass ingress)" -lt "$((p0 + N))"
}

echo "== b) eTP Local: only local backends, the client address kept; health checks"
check "outside -> node1 $NODE1:30081/TCP x$N: only n1-be, which sees the outside client" \
	answers "$P-ext" tcp "$NODE1" 30081 n1-be "$EXT"
check "outside -> node2 $NODE2:30081/TCP x$N: only n2-be, which sees the outside client" \
	answers "$P-ext" tcp "$NODE2" 30081 n2-be "$EXT"
check "outside -> node1 $NODE1:30054/UDP x$N: only n1-be, the outside client's address" \
	answers "$P-ext" udp "$NODE1" 30054 n1-be "$EXT"
check "outside -> node2 $NODE2:30054/UDP x$N: only n2-be, the outside client's address" \
	answers "$P-ext" udp "$NODE2" 30054 n2-be "$EXT"
check "outside -> node1 $NODE1:30082/TCP (one: a backend on node1) x$N: n1-be" \
	answers "$P-ext" tcp "$NODE1" 30082 n1-be "$EXT"
d0=$(node_metric 2 drop-lb-ext-no-local ingress)
check "outside -> node2 $NODE2:30082/TCP (one: no backend on node2): no answer" \
	svc_refused "$P-ext" tcp "$NODE2" 30082
check "outside -> node2 $NODE2:30082/TCP: not refused either (dropped, as kube-proxy does)" \
	not_refused "$P-ext" tcp "$NODE2" 30082
check "node2 counted the drops (drop-lb-ext-no-local)" \
	test "$(node_metric 2 drop-lb-ext-no-local ingress)" -ge "$((d0 + 7))"
check "health check of one on node1 ($NODE1:32082): 200, localEndpoints 1" health 1 32082 200 1 one
check "health check of one on node2 ($NODE2:32082): 503, localEndpoints 0" health 2 32082 503 0 one
check "health check of loc on node2 ($NODE2:32081): 200, localEndpoints 1" health 2 32081 200 1 loc
check "node1: status lists the health checks (one: 32082, listening, 1 local endpoint) and the EXT entries" \
	bash -c "'$BUILD/sluicectl' --socket '$(mn_sock "$P" 1)' status -o json | jq -e '
		(.services.healthChecks | map(select(.namespace == \"$NS\")) |
			map({name, port, listening, localEndpoints})) ==
		[{name: \"loc\", port: 32081, listening: true, localEndpoints: 1},
		 {name: \"one\", port: 32082, listening: true, localEndpoints: 1}]
		and .services.extEntries >= 9'"
check "node2: sluicectl status says so in words" bash -c \
	"'$BUILD/sluicectl' --socket '$(mn_sock "$P" 2)' status | grep -F 'health:      $NS/one on port 32082: listening, 0 local endpoints'"
check "the health check of web (eTP Cluster) is not served" bash -c \
	"! ip netns exec '$P-ext' curl -s -m 2 'http://$NODE1:32080/healthz' >/dev/null"

echo "== b2) health checks follow the Services and their endpoints"
check "one gets a backend on node2 too" mn_apply_all "$P" 2 <<<"$(slice one-1 one n1-be n2-be)"
check "health check of one on node2: now 200, localEndpoints 1" health 2 32082 200 1 one
check "outside -> node2 $NODE2:30082/TCP x$N: now n2-be" answers "$P-ext" tcp "$NODE2" 30082 n2-be "$EXT"
delete_one() {
	local n
	for n in 1 2; do
		mn_ctl "$P" "$n" delete -f - >/dev/null <<<"apiVersion: v1
kind: Service
metadata: {namespace: $NS, name: one}" || return 1
	done
}
check "Service one deleted on both agents" delete_one
for n in 1 2; do
	check "node$n: the health check port 32082 is closed with the Service" bash -c \
		"! ip netns exec '$P-ext' curl -s -m 2 'http://$(mn_node_ip "$n"):32082/healthz' >/dev/null"
done
check "health check of loc on node1 still 200" health 1 32081 200 1 loc

echo "== c) iTP Local: pods reach only their own node's backend"
check "n1-cl -> $CIP_ITL:80/TCP x$N: only n1-be" answers "$P-n1-cl" tcp "$CIP_ITL" 80 n1-be "${IP[n1-cl]}"
check "n2-cl -> $CIP_ITL:80/TCP x$N: only n2-be" answers "$P-n2-cl" tcp "$CIP_ITL" 80 n2-be "${IP[n2-cl]}"
check "n2-cl -> $CIP_ITL:53/UDP x$N: only n2-be" answers "$P-n2-cl" udp "$CIP_ITL" 53 n2-be "${IP[n2-cl]}"

echo "== e) no endpoint at all: refused at once, back out of the uplink"
check "Service none (no endpoint) applied to both agents" mn_apply_all "$P" 2 <<YAML
apiVersion: v1
kind: Service
metadata: {namespace: $NS, name: none}
spec:
  type: NodePort
  clusterIP: 10.96.20.13
  externalIPs: [$EIP_NONE]
  ports:
  - {name: http, protocol: TCP, port: 80, targetPort: http, nodePort: 30090}
  - {name: dns, protocol: UDP, port: 53, targetPort: dns, nodePort: 30091}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {namespace: $NS, name: none-1, labels: {kubernetes.io/service-name: none}}
addressType: IPv4
ports: [{name: http, protocol: TCP, port: 8080}, {name: dns, protocol: UDP, port: 8081}]
endpoints: []
YAML
r0=$(node_metric 1 lb-ext-reject ingress)
check "outside -> node1 $NODE1:30090/TCP: connection refused, fast" \
	refused_fast "$P-ext" tcp "$NODE1" 30090
check "outside -> node1 $NODE1:30091/UDP: port unreachable, fast" \
	refused_fast "$P-ext" udp "$NODE1" 30091
check "outside -> externalIP $EIP_NONE:80/TCP: connection refused, fast" \
	refused_fast "$P-ext" tcp "$EIP_NONE" 80
check "outside -> externalIP $EIP_NONE:53/UDP: port unreachable, fast" \
	refused_fast "$P-ext" udp "$EIP_NONE" 53
check "node1 answered them itself (lb-ext-reject)" \
	test "$(node_metric 1 lb-ext-reject ingress)" -ge "$((r0 + 4))"

echo "== f) a pod on node1 reaches node2's NodePort (node2 translates it)"
CLIENT_n1=$NODE2 CLIENT_n2=${IP[n1-cl]}
t2=$(node_metric 2 lb-ext-translated ingress)
check "pod n1-cl -> node2 $NODE2:30080/TCP x$N: both backends, from the NodePort" \
	answers "$P-n1-cl" tcp "$NODE2" 30080 both
check "pod n1-cl -> node2 $NODE2:30053/UDP x$N: both backends, from the NodePort" \
	answers "$P-n1-cl" udp "$NODE2" 30053 both
check "node2 translated them (lb-ext-translated)" \
	test "$(node_metric 2 lb-ext-translated ingress)" -ge "$((t2 + 2 * N))"

echo "== g) an ICMP error about an SNATed flow reaches the outside client"
check "Service deaf (UDP to a port n2-be does not serve) applied to both agents" \
	mn_apply_all "$P" 2 <<YAML
apiVersion: v1
kind: Service
metadata: {namespace: $NS, name: deaf}
spec:
  type: NodePort
  clusterIP: 10.96.20.14
  ports:
  - {name: deaf, protocol: UDP, port: 53, targetPort: 9999, nodePort: 30092}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {namespace: $NS, name: deaf-1, labels: {kubernetes.io/service-name: deaf}}
addressType: IPv4
ports: [{name: deaf, protocol: UDP, port: 9999}]
endpoints:
- {addresses: [${IP[n2-be]}], nodeName: node2, conditions: {ready: true}}
YAML
i0=$(node_metric 1 lb-ext-icmp-error ingress)
check "outside -> node1 $NODE1:30092/UDP (n2-be, SNATed): n2-be's port unreachable refuses it, fast" \
	refused_fast "$P-ext" udp "$NODE1" 30092
check "node1 rewrote the error for the client (lb-ext-icmp-error)" \
	test "$(node_metric 1 lb-ext-icmp-error ingress)" -gt "$i0"

echo "== a2) the same north-south flows with --xdp off: all at tc, alike"
for n in 1 2; do
	kill "${AGENT[$n]}" 2>/dev/null
	wait "${AGENT[$n]}" 2>/dev/null
	rm -f "$(mn_sock "$P" "$n")"
	svc_start_agent "$n" "--kube-proxy-replacement on --xdp off"
	check "node$n: no XDP program on its uplink (--xdp off)" no_xdp "$n"
done
x0=$(node_metric 1 xdp-tx ingress)
t0=$(node_metric 1 lb-ext-translated ingress)
cluster_answers
check "node1 translated them at tc (lb-ext-translated)" \
	test "$(node_metric 1 lb-ext-translated ingress)" -ge "$((t0 + 4 * N))"
check "node1's xdp-tx did not move" test "$(node_metric 1 xdp-tx ingress)" = "$x0"

echo "== d) NetworkPolicy on the backends: only the pod network's ipBlock"
check "the policy applied to both agents" mn_apply_all "$P" 2 <<YAML
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: $NS, name: be-from-pods}
spec:
  podSelector: {matchLabels: {app: be}}
  ingress:
  - from: [{ipBlock: {cidr: 10.210.0.0/16}}]
YAML
for n in 1 2; do
	check "outside -> node$n $(mn_node_ip "$n"):30081/TCP (eTP Local): kept out" \
		svc_refused "$P-ext" tcp "$(mn_node_ip "$n")" 30081
done
check "outside -> node1 $NODE1:30054/UDP (eTP Local): kept out" svc_refused "$P-ext" udp "$NODE1" 30054
check "n2-cl -> $CIP_ITL:80/TCP: a pod still gets in" answers "$P-n2-cl" tcp "$CIP_ITL" 80 n2-be "${IP[n2-cl]}"

summary
