#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Services translated by sluice (--kube-proxy-replacement on, no
# kube-proxy rule anywhere), over two nodes (tests/multinode/lib.sh), per
# routing mode: the cases beside plain load balancing.
#
#   a) hairpin: a backend pod reaching its own Service many times over TCP
#      and UDP gets both its own answers (which saw the hairpin address
#      169.254.42.1 as the client) and the other backend's (which saw the
#      pod's own address), every one from the ClusterIP;
#   b) hostPort: a pod ADDed with runtimeConfig.portMappings is reached at
#      node1's address and the hostPort from another pod on node 1 (TCP,
#      UDP); from node 2's pod (EXT scope, translated by node 1); after
#      an agent restart still; a second pod asking for the same hostPort is
#      refused at ADD, naming the holder, and so are an SCTP hostPort and a
#      hostIP that is not the node's; DEL removes it (then nothing answers)
#      and the second pod gets it; that pod reaches its own hostPort (a
#      hairpin);
#   c) endpoint states: only ready:false serving:true terminating:true
#      endpoints -> they still answer (kube-proxy's fallback); a ready one
#      appears -> only it gets new flows; a TCP connection to an endpoint
#      that becomes terminating keeps working, and stops once the endpoint
#      is removed;
#      publishNotReadyAddresses: an endpoint neither ready nor serving
#      answers;
#   d) ICMP errors: a client's UDP to a Service port where the backend
#      (same node, other node) listens on nothing gets the port unreachable
#      on its socket (the quote rewritten to the frontend);
#   e) hairpin under a NetworkPolicy admitting nothing to the backends: a
#      backend still reaches itself through the Service, not the other.
#
#   tests/e2e/services-misc.sh             overlay, then native
#   tests/e2e/services-misc.sh overlay     one mode (or native)
#
# Last line: "services-misc: N passed, M failed".
# shellcheck source-path=SCRIPTDIR
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TEST_NAME=${SVCM_TEST_NAME:-services-misc}
# shellcheck source=../lib/common.sh
source "$HERE/../lib/common.sh"
# shellcheck source=../multinode/lib.sh
source "$HERE/../multinode/lib.sh"
# shellcheck source=svc_lib.sh
source "$HERE/svc_lib.sh"

mn_mode services-misc SVCM_TEST_NAME "$0" "$@"

need_root
svc_need_bins
svc_need_flag --kube-proxy-replacement "Service datapath"

ID=slsvm$$
P=$ID
MN_DIR=$(mktemp -d /tmp/sluice-services-misc.XXXXXX)
CLEANUP_PATHS+=("$MN_DIR")
NS=shop
CIP=10.96.20.10		# web: n1-be, n2-be
TIP=10.96.20.11		# term: the endpoint-state cases
RIP=10.96.20.13		# ready-or-not: publishNotReadyAddresses
HAIRPIN=169.254.42.1
N=20	# probes per client and protocol
NODE1=$(mn_node_ip 1)
HP=18080		# the hostPort (TCP; UDP on HP+1)
# The number after n is the node; after the dash, the app label.
PODS=(n1-be n2-be n1-client n2-client)
declare -A IP=() AGENT=()
ctl() { mn_ctl "$P" "$@"; }
node_of() { printf '%s' "${1:1:1}"; }
app_of() { local a=${1#*-}; printf '%s' "$a"; }

node_metric() { svc_metric "$P" "$@"; } # N REASON DIRECTION
who() { svc_who "$P-$1" "${@:2}"; }       # POD PROTO ADDR PORT

# hairpin POD PROTO ADDR PORT OTHER: every answer from ADDR:PORT; POD's
# own answers saw the hairpin address as the client, OTHER's saw POD's own
# address; both among the servers.
hairpin() {
	local pod=$1 proto=$2 addr=$3 port=$4 other=$5 out self them
	out=$(who "$pod" "$proto" "$addr" "$port")
	self=$(grep -c "^peer=$addr:$port server=$pod client=$HAIRPIN:[0-9]*$" <<<"$out")
	them=$(grep -c "^peer=$addr:$port server=$other client=${IP[$pod]}:[0-9]*$" <<<"$out")
	[ "$((self + them))" = "$N" ] && [ "$self" -gt 0 ] && [ "$them" -gt 0 ] && return 0
	sort <<<"$out" | uniq -c | sed 's/^/       /'
	return 1
}

# only_from POD PROTO ADDR PORT SERVER: every answer from ADDR:PORT, by
# SERVER, which saw POD's own address.
only_from() {
	local out
	out=$(who "$1" "$2" "$3" "$4")
	[ "$(grep -c "^peer=$3:$4 server=$5 client=${IP[$1]}:[0-9]*$" <<<"$out")" = "$N" ] && return 0
	sort <<<"$out" | uniq -c | sed 's/^/       /'
	return 1
}

refused() { svc_refused "$P-$1" "${@:2}"; } # POD PROTO ADDR PORT

# conf_ports N JSON: node N's network configuration with portMappings JSON.
conf_ports() {
	mn_conf "$P" "$1" | jq -c --argjson pm "$2" '. + {runtimeConfig: {portMappings: $pm}}'
}

# slice NAME SERVICE ENDPOINTS...: an EndpointSlice (TCP http $TCP_PORT,
# UDP dns $UDP_PORT, default 8080, 8081); each endpoint
# POD:READY:SERVING:TERMINATING.
slice() {
	local name=$1 svc=$2 e pod r s t
	shift 2
	printf 'apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n'
	printf 'metadata: {namespace: %s, name: %s, labels: {kubernetes.io/service-name: %s}}\n' \
		"$NS" "$name" "$svc"
	printf 'addressType: IPv4\n'
	printf 'ports: [{name: http, protocol: TCP, port: %s}, {name: dns, protocol: UDP, port: %s}]\n' \
		"${TCP_PORT:-8080}" "${UDP_PORT:-8081}"
	printf 'endpoints:\n'
	[ $# -gt 0 ] || printf '[]\n'
	for e in "$@"; do
		IFS=: read -r pod r s t <<<"$e"
		printf -- '- {addresses: [%s], nodeName: node%s, conditions: {ready: %s, serving: %s, terminating: %s}}\n' \
			"${IP[$pod]}" "$(node_of "$pod")" "$r" "$s" "$t"
	done
}

service() { # NAME CLUSTERIP
	printf 'apiVersion: v1\nkind: Service\nmetadata: {namespace: %s, name: %s}\n' "$NS" "$1"
	printf 'spec:\n  clusterIP: %s\n  ports:\n' "$2"
	printf '  - {name: http, protocol: TCP, port: 80, targetPort: http}\n'
	printf '  - {name: dns, protocol: UDP, port: 53, targetPort: dns}\n'
}

echo "== two nodes (--routing $MODE), agents with --kube-proxy-replacement on"
mn_topology "$P" 2 || { log "could not build the topology"; exit 1; }
svc_start_agents "--kube-proxy-replacement on"
svc_apply_nodes
# 9080, 9081: term's, so that its backends are its own (a backend shared
# with web would outlive term's endpoint)
svc_add_pods --tcp 8080 --udp 8081 --tcp 9080 --udp 9081
svc_apply_pods

echo "== a) hairpin: a backend reaching its own Service"
check "Service web ($CIP) with n1-be and n2-be applied to both agents" mn_apply_all "$P" 2 < <(
	service web "$CIP"
	echo ---
	slice web-1 web n1-be:true:true:false n2-be:true:true:false)
h0=$(node_metric 1 lb-hairpin egress)
check "n1-be -> $CIP:80/TCP x$N: its own answers (client $HAIRPIN) and n2-be's (client n1-be), all from the ClusterIP" \
	hairpin n1-be tcp "$CIP" 80 n2-be
check "n1-be -> $CIP:53/UDP x$N: the same over UDP" hairpin n1-be udp "$CIP" 53 n2-be
check "n2-be -> $CIP:80/TCP x$N: the same on node 2" hairpin n2-be tcp "$CIP" 80 n1-be
check "node1 counted hairpin flows (lb-hairpin)" test "$(node_metric 1 lb-hairpin egress)" -gt "$h0"

echo "== b) hostPort"
# hp_add NAME N PORTMAPPINGS: ADD pod NAME on node N with those mappings;
# prints the plugin's answer, fails as the plugin does.
hp_add() {
	POD_NAMESPACE=$NS cni ADD "$1" "/run/netns/$P-$1" "$(conf_ports "$2" "$3")"
}
TCP_UDP="[{\"hostPort\":$HP,\"containerPort\":8080,\"protocol\":\"tcp\"},{\"hostPort\":$((HP + 1)),\"containerPort\":8081,\"protocol\":\"udp\"}]"
TCP_ONLY="[{\"hostPort\":$HP,\"containerPort\":8080,\"protocol\":\"TCP\"}]"
# refused_add NAME N: ADD is refused, naming n1-hp as the holder.
refused_add() {
	local out rc
	out=$(hp_add "$1" "$2" "$TCP_ONLY")
	rc=$?
	echo "rc=$rc $out"
	[ "$rc" -ne 0 ] && grep -q "held on this node by pod $NS/n1-hp " <<<"$out"
}
added() { hp_add "$@" | jq -e '.ips[0].address'; }

netns_add "$P-n1-hp"
out=$(hp_add n1-hp 1 "$TCP_UDP")
IP[n1-hp]=$(jq -r '.ips[0].address // empty' <<<"$out" 2>/dev/null | cut -d/ -f1)
[ -n "${IP[n1-hp]}" ] || { log "no address for n1-hp: $out"; exit 1; }
serve "$P-n1-hp" --tcp 8080 --udp 8081 --name n1-hp || { log "servers in n1-hp"; exit 1; }
check "n1-client -> $NODE1:$HP/TCP x$N: n1-hp answers from the hostPort" \
	only_from n1-client tcp "$NODE1" "$HP" n1-hp
check "n1-client -> $NODE1:$((HP + 1))/UDP x$N: n1-hp answers from the hostPort" \
	only_from n1-client udp "$NODE1" "$((HP + 1))" n1-hp
check "node1 counted hostPort translations (lb-hostport)" test "$(node_metric 1 lb-hostport egress)" -gt 0
check "n2-client -> $NODE1:$HP/TCP x$N: n1-hp answers (another node's pod, EXT scope)" \
	only_from n2-client tcp "$NODE1" "$HP" n1-hp
netns_add "$P-n1-hp2"
check "a second pod asking for $HP/TCP on node 1 is refused at ADD, naming the holder" \
	refused_add n1-hp2 1
# add_refused NAME N PORTMAPPINGS WORDS: ADD refused with WORDS in the error.
add_refused() {
	local out rc
	out=$(hp_add "$1" "$2" "$3")
	rc=$?
	echo "rc=$rc $out"
	[ "$rc" -ne 0 ] && grep -q "$4" <<<"$out"
}
netns_add "$P-n1-bad"
check "an SCTP hostPort is refused at ADD" add_refused n1-bad 1 \
	'[{"hostPort":19000,"containerPort":9000,"protocol":"SCTP"}]' "TCP and UDP host ports only"
check "a hostIP that is not node1's is refused at ADD" add_refused n1-bad 1 \
	"[{\"hostPort\":19000,\"containerPort\":9000,\"hostIP\":\"$(mn_node_ip 2)\"}]" \
	"is no address of this node"
netns_add "$P-n2-hp"
check "the same hostPort on node 2 is no conflict" added n2-hp 2 "$TCP_ONLY"
kill "${AGENT[1]}" 2>/dev/null
wait "${AGENT[1]}" 2>/dev/null
rm -f "$(mn_sock "$P" 1)"
svc_start_agent 1 "--kube-proxy-replacement on"
check "after node1's agent restarted: n1-client -> $NODE1:$HP/TCP x$N still reaches n1-hp" \
	only_from n1-client tcp "$NODE1" "$HP" n1-hp
check "DEL n1-hp" mn_pod_del "$P" 1 n1-hp "$NS"
check "n1-client -> $NODE1:$HP/TCP: nothing answers any more" refused n1-client tcp "$NODE1" "$HP"
check "node1's maps hold web's 2 frontends only" bash -c "
	'$BUILD/sluicectl' --socket '$(mn_sock "$P" 1)' status -o json | jq -e '.services.frontends == 2'"
check "the second pod gets $HP/TCP now" added n1-hp2 1 "$TCP_ONLY"
serve "$P-n1-hp2" --tcp 8080 --name n1-hp2 || { log "servers in n1-hp2"; exit 1; }
check "n1-client -> $NODE1:$HP/TCP x$N: n1-hp2 answers" only_from n1-client tcp "$NODE1" "$HP" n1-hp2
# own_hostport POD: POD reaches its own hostPort (a hairpin): it answers
# itself, from the hostPort, seeing the hairpin address as the client.
own_hostport() {
	local out
	out=$(probe "$P-$1" tcp "$NODE1" "$HP" --who --timeout 1000 2>&1)
	echo "$out"
	grep -q "^peer=$NODE1:$HP server=$1 client=$HAIRPIN:[0-9]*$" <<<"$out"
}
check "n1-hp2 -> its own hostPort $NODE1:$HP/TCP: it answers itself (hairpin)" own_hostport n1-hp2

echo "== c) endpoint states"
check "Service term ($TIP): only n1-be, ready:false serving:true terminating:true" mn_apply_all "$P" 2 < <(
	service term "$TIP"
	echo ---
	TCP_PORT=9080 UDP_PORT=9081 slice term-1 term n1-be:false:true:true)
t0=$(node_metric 2 lb-terminating egress)
check "n2-client -> $TIP:80/TCP x$N: the terminating endpoint still answers (fallback)" \
	only_from n2-client tcp "$TIP" 80 n1-be
check "node2 counted new flows to a terminating backend (lb-terminating)" \
	test "$(node_metric 2 lb-terminating egress)" -ge "$((t0 + N))"
check "n2-be appears ready" mn_apply_all "$P" 2 < <(
	TCP_PORT=9080 UDP_PORT=9081 slice term-1 term n1-be:false:true:true n2-be:true:true:false)
check "n1-client -> $TIP:80/TCP x$N: only the ready one gets new flows" \
	only_from n1-client tcp "$TIP" 80 n2-be
check "n1-client -> $TIP:53/UDP x$N: the same over UDP" only_from n1-client udp "$TIP" 53 n2-be

check "term: n1-be alone, ready" mn_apply_all "$P" 2 < <(TCP_PORT=9080 UDP_PORT=9081 slice term-1 term n1-be:true:true:false)
stream=$MN_DIR/stream.json
probe "$P-n2-client" stream "$TIP" 80 --seconds 8 --interval-ms 50 >"$stream" 2>"$stream.err" &
SPID=$!
CLEANUP_PIDS+=("$SPID")
sleep 2
check "n1-be starts terminating, n2-be ready" mn_apply_all "$P" 2 < <(
	TCP_PORT=9080 UDP_PORT=9081 slice term-1 term n1-be:false:true:true n2-be:true:true:false)
sleep 1
check "meanwhile new flows go to n2-be only" only_from n1-client tcp "$TIP" 80 n2-be
sleep 2
check "n1-be removed" mn_apply_all "$P" 2 < <(TCP_PORT=9080 UDP_PORT=9081 slice term-1 term n2-be:true:true:false)
wait "$SPID"
cat "$stream" "$stream.err"
# 50 ms apart: about 100 messages before the removal (at ~5 s).
check "the established connection worked while its endpoint was terminating (>= 60 echoed)" \
	jq -e '.echoed >= 60' "$stream"
check "and stopped once the endpoint was removed" jq -e '.broken == true or .errors > 0' "$stream"

check "Service ready-or-not ($RIP) with publishNotReadyAddresses: n2-be ready:false serving:false" \
	mn_apply_all "$P" 2 < <(
	service ready-or-not "$RIP"
	echo '  publishNotReadyAddresses: true'
	echo ---
	slice ron-1 ready-or-not n2-be:false:false:false)
check "n1-client -> $RIP:80/TCP x$N: n2-be answers all the same" only_from n1-client tcp "$RIP" 80 n2-be

echo "== d) ICMP errors about a translated flow"
CLOSED=10.96.20.12	# closed: UDP 53 -> n1-be:9999, where nothing listens
check "Service closed ($CLOSED): n1-be on a UDP port nothing listens on" mn_apply_all "$P" 2 < <(
	service closed "$CLOSED"
	echo ---
	TCP_PORT=9998 UDP_PORT=9999 slice closed-1 closed n1-be:true:true:false)
# port_unreachable POD: POD's UDP to $CLOSED:53 fails with "connection
# refused", which its connected socket only gets when the error quotes the
# frontend: without the rewrite it would wait for its timeout.
port_unreachable() {
	local out
	out=$(probe "$P-$1" udp "$CLOSED" 53 --timeout 3000 2>&1)
	echo "$out"
	grep -q 'connection refused' <<<"$out"
}
e0=$(( $(node_metric 1 lb-icmp-error egress) + $(node_metric 2 lb-icmp-error ingress) ))
check "n1-client (backend on its node): port unreachable reaches its socket" port_unreachable n1-client
check "n2-client (backend on the other node): the same" port_unreachable n2-client
check "the nodes counted the rewritten errors (lb-icmp-error)" \
	test "$(( $(node_metric 1 lb-icmp-error egress) + $(node_metric 2 lb-icmp-error ingress) ))" -ge "$((e0 + 2))"

echo "== e) hairpin under a NetworkPolicy that admits nothing to the backends"
check "NetworkPolicy deny-be: app=be admits no ingress" mn_apply_all "$P" 2 <<'YAML'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: shop, name: deny-be}
spec:
  podSelector: {matchLabels: {app: be}}
  policyTypes: [Ingress]
YAML
# self_only POD: POD's probes of web are answered by POD itself (hairpin:
# a pod may always reach itself) or not at all (the other backend keeps
# it out); at least one of each.
self_only() {
	local out self fails
	out=$(TIMEOUT=500 who "$1" tcp "$CIP" 80)
	self=$(grep -c "^peer=$CIP:80 server=$1 client=$HAIRPIN:[0-9]*$" <<<"$out")
	fails=$(grep -c '^fail$' <<<"$out")
	[ "$((self + fails))" = "$N" ] && [ "$self" -gt 0 ] && [ "$fails" -gt 0 ] && return 0
	sort <<<"$out" | uniq -c | sed 's/^/       /'
	return 1
}
check "n1-be -> $CIP:80/TCP x$N: its own answers only; n2-be keeps it out" self_only n1-be
check "n1-client -> $CIP:80/TCP: kept out by both backends" refused n1-client tcp "$CIP" 80

summary
