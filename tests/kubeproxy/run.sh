#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# sluice next to kube-proxy in iptables mode. Two nodes on one machine
# (tests/multinode/lib.sh), an agent each with --routing overlay or native,
# and in each node namespace the rules kube-proxy writes for one ClusterIP
# Service, 10.96.0.10, TCP 80 -> 8080 and UDP 53 -> 8081, with two
# backends, n1-be on node 1 and n2-be on node 2: KUBE-SERVICES from
# PREROUTING and OUTPUT, KUBE-SVC-<hash> picking a KUBE-SEP-<hash> with
# statistic, each KUBE-SEP DNATing (and marking its own backend's hairpin
# for masquerade), KUBE-POSTROUTING masquerading marked packets, and the
# filter table's KUBE-FORWARD, which drops what conntrack finds INVALID (a
# TCP flow whose replies bypass the node's conntrack).
#
#   a) pods on both nodes reach the ClusterIP over TCP and UDP, again and
#      again; both backends answer (one on the client's node, one on the
#      other), and the answer comes from the ClusterIP; a 1 s TCP stream
#      through it holds; a backend reaches its own Service (hairpin);
#   b) the host stack's flows are counted (to-stack-flow), while pod to pod
#      on one node stays on the fast path (forward-local, nothing to-stack),
#      and so does pod to pod across nodes while a next hop's MAC is being
#      resolved (native);
#   c) a NetworkPolicy on the backends admitting only app=trusted: the
#      client pods' ClusterIP connections fail, on both backends' nodes, and
#      a trusted pod's still reach both backends;
#   d) the node reaches the other node's pods (in overlay mode: through the
#      tunnel, from its router address), and pods reach a host outside the
#      cluster (masqueraded) with kube-proxy's INVALID drop in place.
#
#   tests/kubeproxy/run.sh             overlay, then native
#   tests/kubeproxy/run.sh overlay     one mode (or native)
#
# The last line is "kubeproxy: N passed, M failed".
# shellcheck source-path=SCRIPTDIR
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TEST_NAME=${KP_TEST_NAME:-kubeproxy}
# shellcheck source=../lib/common.sh
source "$HERE/../lib/common.sh"
# shellcheck source=../multinode/lib.sh
source "$HERE/../multinode/lib.sh"
# shellcheck source=../lib/kubeproxy.sh
source "$HERE/../lib/kubeproxy.sh"

# Both modes: one process each, so each cleans up after itself.
mn_mode kubeproxy KP_TEST_NAME "$0" "$@"

need_root
for bin in sluice-agent sluice-cni sluicectl sluice-probe; do
	[ -x "$BUILD/$bin" ] || { log "$BUILD/$bin missing (run make)"; exit 1; }
done
for tool in iptables iptables-restore jq; do
	command -v "$tool" >/dev/null || { log "$tool missing (make deps)"; exit 1; }
done
if ! "$BUILD/sluice-probe" --help | grep -q -- --who; then
	log "$BUILD/sluice-probe has no --who (rebuild)"
	exit 1
fi

P=slkp$$
MN_DIR=$(mktemp -d /tmp/sluice-kubeproxy.XXXXXX)
CLEANUP_PATHS+=("$MN_DIR")
NS=shop
NODES=(1 2)
VIP=10.96.0.10
CLUSTER_CIDR=10.210.0.0/16
WORLD=10.200.0.100
# name app node
PODS=(n1-client n1-trusted n1-be n2-be n2-client)
declare -A IP=() APP=([n1-client]=client [n2-client]=client [n1-trusted]=trusted
	[n1-be]=backend [n2-be]=backend)
started=$(date +%s)

node_of() { printf '%s' "${1:1:1}"; }
ctl() { mn_ctl "$P" "$@"; }
fails() { ! "$@"; }

# metric N REASON [DIRECTION]: node N's packet count for REASON.
metric() {
	ctl "$1" metrics -o json | jq --arg r "$2" --arg d "${3:-}" \
		'[.metrics[] | select(.reason == $r and ($d == "" or .direction == $d)) | .packets] | add // 0'
}

diag() {
	local n
	{
		for n in "${NODES[@]}"; do
			echo "--- node$n: sluicectl metrics"
			ctl "$n" metrics 2>&1
			echo "--- node$n: ip route"
			ip -n "$P-node$n" route 2>&1
			echo "--- node$n: kube-proxy's chains (packet counts)"
			ip netns exec "$P-node$n" iptables-save -c 2>&1 | grep -E 'KUBE-(SEP|SVC|FORWARD|POSTROUTING)' |
				grep -v '^:'
		done
	} | sed 's/^/       /'
}

# ---- kube-proxy's rules ------------------------------------------------------

# kube-proxy's chain names: KUBE-SVC- and KUBE-SEP- and the first 16
# characters of the base32 of the SHA-256 of the service port name, the
# protocol and (for an endpoint) the endpoint.
kp_hash() {
	# shellcheck disable=SC2059 # the format is the digest's bytes as \xHH escapes
	printf "$(printf '%s' "$1" | sha256sum | cut -c1-64 | sed 's/../\\x&/g')" | base32 -w0 | cut -c1-16
}

# kp_rules: what kube-proxy (iptables mode, --cluster-cidr $CLUSTER_CIDR)
# hands iptables-restore --noflush for Service $NS/echo with the two backends.
kp_rules() {
	local port proto name svcport target svc sep ep seps=() probs=() i
	echo '*filter'
	for c in KUBE-EXTERNAL-SERVICES KUBE-FORWARD KUBE-NODEPORTS KUBE-PROXY-FIREWALL KUBE-SERVICES; do
		echo ":$c - [0:0]"
	done
	echo '-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP'
	echo '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT'
	echo '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT'
	echo 'COMMIT'
	echo '*nat'
	for c in KUBE-MARK-MASQ KUBE-NODEPORTS KUBE-POSTROUTING KUBE-SERVICES; do echo ":$c - [0:0]"; done
	for svcport in "tcp 80 8080 http" "udp 53 8081 dns"; do
		read -r proto port target name <<<"$svcport"
		svc=KUBE-SVC-$(kp_hash "$NS/echo:$name$proto")
		echo ":$svc - [0:0]"
		for ep in "${IP[n1-be]}" "${IP[n2-be]}"; do
			echo ":KUBE-SEP-$(kp_hash "$NS/echo:$name$proto$ep:$target") - [0:0]"
		done
	done
	echo '-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN'
	echo '-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000'
	echo '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully'
	echo '-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000'
	for svcport in "tcp 80 8080 http" "udp 53 8081 dns"; do
		read -r proto port target name <<<"$svcport"
		svc=KUBE-SVC-$(kp_hash "$NS/echo:$name$proto")
		echo "-A KUBE-SERVICES -m comment --comment \"$NS/echo:$name cluster IP\" -m $proto -p $proto -d $VIP --dport $port -j $svc"
		echo "-A $svc -m comment --comment \"$NS/echo:$name cluster IP\" -m $proto -p $proto -d $VIP --dport $port ! -s $CLUSTER_CIDR -j KUBE-MARK-MASQ"
		seps=()
		for ep in "${IP[n1-be]}" "${IP[n2-be]}"; do
			seps+=("$ep KUBE-SEP-$(kp_hash "$NS/echo:$name$proto$ep:$target")")
		done
		probs=("-m statistic --mode random --probability 0.5000000000 " "")
		for i in 0 1; do
			read -r ep sep <<<"${seps[$i]}"
			echo "-A $svc -m comment --comment \"$NS/echo:$name -> $ep:$target\" ${probs[$i]}-j $sep"
		done
		for i in 0 1; do
			read -r ep sep <<<"${seps[$i]}"
			echo "-A $sep -m comment --comment \"$NS/echo:$name\" -s $ep -j KUBE-MARK-MASQ"
			echo "-A $sep -m comment --comment \"$NS/echo:$name\" -m $proto -p $proto -j DNAT --to-destination $ep:$target"
		done
	done
	echo '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS'
	echo 'COMMIT'
}

# kp_install N: kube-proxy's start on node N: the jumps from the built-in
# chains (tests/lib/kubeproxy.sh), then its chains and rules through
# iptables-restore --noflush.
kp_install() {
	local ns=$P-node$1
	kp_jumps "$ns" || return 1
	kp_rules | ip netns exec "$ns" iptables-restore -w --noflush --counters
}

# ---- Service calls -------------------------------------------------------------

svc_port() { [ "$1" = tcp ] && echo 80 || echo 53; }

# calls FROM PROTO N [hairpin]: N calls from pod FROM to the ClusterIP, each
# asking the backend who it is (sluice-probe --who). Every call must be
# answered, from the ClusterIP's address and port; both backends must
# answer some; each must have seen the client's own address (not with
# hairpin: a backend that reaches itself is masqueraded).
calls() {
	local from=$1 proto=$2 n=$3 hairpin=${4:-} port out i seen=""
	port=$(svc_port "$proto")
	for i in $(seq "$n"); do
		if ! out=$(probe "$P-$from" "$proto" "$VIP" "$port" --who --timeout 2000 2>&1); then
			echo "call $i of $n failed: $out"
			return 1
		fi
		case $out in
		"peer=$VIP:$port server="*) ;;
		*) echo "call $i: the answer did not come from $VIP:$port: $out"; return 1 ;;
		esac
		if [ -z "$hairpin" ] && [[ $out != *" client=${IP[$from]}:"* ]]; then
			echo "call $i: the backend did not see ${IP[$from]}: $out"
			return 1
		fi
		seen+=" ${out#* server=}"
	done
	for be in n1-be n2-be; do
		[[ $seen == *" $be "* ]] || { echo "$be never answered in $n calls:$seen"; return 1; }
	done
}

# all_fail FROM... : 8 TCP and 8 UDP calls from each pod to the ClusterIP,
# all at once; none may succeed.
all_fail() {
	local from i proto res bad=0
	while read -r id res; do
		[ "$res" = fail ] || { echo "$id: $res"; bad=1; }
	done < <(for from in "$@"; do
		for proto in tcp udp; do
			for i in $(seq 8); do
				printf '%s-%s-%d /run/netns/%s-%s %s %s %s\n' "$from" "$proto" "$i" "$P" "$from" \
					"$proto" "$VIP" "$(svc_port "$proto")"
			done
		done
	done | "$BUILD/sluice-probe" matrix --timeout 1000 --parallel 64 2>&1)
	return "$bad"
}

# stream FROM DST PORT: a 1 s TCP echo stream that must hold.
stream_holds() {
	local out
	out=$(probe "$P-$1" stream "$2" "$3" --seconds 1 --interval-ms 20 --timeout 2000 2>&1)
	jq -e '.broken == false and .errors == 0 and .messages > 10 and .echoed == .messages' \
		<<<"$out" >/dev/null 2>&1 && return 0
	echo "$out"
	return 1
}

# ---- the cluster ---------------------------------------------------------------

echo "== two nodes (--routing $MODE), kube-proxy's rules for $NS/echo ($VIP) on each"
mn_topology "$P" "${#NODES[@]}" || { log "could not build the topology"; exit 1; }
# kube-proxy does the Services here (the point of this suite): sluice
# leaves them alone.
for n in "${NODES[@]}"; do
	MN_AGENT_ARGS="${MN_AGENT_ARGS:-} --kube-proxy-replacement off" mn_start_agent "$P" "$n" "$MODE" ||
		{ log "node$n's agent did not start"; exit 1; }
done
check "the Node objects and Namespace $NS applied to both agents" mn_apply_all "$P" 2 < <(
	{
		jq -cn --arg ns "$NS" '{apiVersion: "v1", kind: "Namespace", metadata: {name: $ns}}'
		for n in "${NODES[@]}"; do mn_node_json "$n"; done
	} | mn_list)
for pod in "${PODS[@]}"; do
	n=$(node_of "$pod")
	netns_add "$P-$pod"
	out=$(mn_pod_add "$P" "$n" "$pod" "$NS")
	IP[$pod]=$(jq -r '.ips[0].address // empty' <<<"$out" 2>/dev/null | cut -d/ -f1)
	[ -n "${IP[$pod]}" ] || { log "no address for $pod: $out"; exit 1; }
	serve "$P-$pod" --tcp 8080 --udp 8081 --name "$pod" || { log "echo servers in $pod"; exit 1; }
done
check "the Pod objects applied to both agents" mn_apply_all "$P" 2 < <(
	for pod in "${PODS[@]}"; do
		mn_pod_json "$NS" "$pod" "$(node_of "$pod")" "${IP[$pod]}" "${APP[$pod]}"
	done | mn_list)
for n in "${NODES[@]}"; do
	check "node$n: kube-proxy's chains and rules installed" kp_install "$n"
done
if [ "$MODE" = overlay ]; then
	for n in "${NODES[@]}"; do
		m=$((3 - n))
		check "node$n routes $(mn_pod_cidr "$m") into sluice_vxlan from $(mn_router "$n")" bash -c "
			ip -n '$P-node$n' -j route show '$(mn_pod_cidr "$m")' | jq -e '
				length == 1 and .[0].dev == \"sluice_vxlan\" and .[0].prefsrc == \"$(mn_router "$n")\" and
				.[0].protocol == \"83\"' >/dev/null || { ip -n '$P-node$n' route; exit 1; }"
	done
fi

echo "== a) pods reach the ClusterIP; both backends answer, from the ClusterIP"
for from in n1-client n2-client; do
	for proto in tcp udp; do
		check "$from -> $VIP:$(svc_port $proto)/${proto^^} x16: answered from $VIP by n1-be and n2-be, who see $from" \
			calls "$from" "$proto" 16
	done
done
check "n1-client -> $VIP:80: a 1 s TCP stream holds" stream_holds n1-client "$VIP" 80
check "n2-client -> $VIP:80: a 1 s TCP stream holds" stream_holds n2-client "$VIP" 80
check "n1-be -> $VIP:80/TCP x16, itself included (hairpin, masqueraded)" calls n1-be tcp 16 hairpin
check "n2-be -> $VIP:53/UDP x16, itself included (hairpin, masqueraded)" calls n2-be udp 16 hairpin

echo "== b) the host's flows stay on the host; pod to pod on a node stays fast"
for n in "${NODES[@]}"; do
	check "node$n counted to-stack-flow packets" test "$(metric "$n" to-stack-flow)" -gt 0
done
fast=$(metric 1 forward-local)
stack=$(metric 1 to-stack-flow)
check "n1-client -> n1-be TCP, straight" probe "$P-n1-client" tcp "${IP[n1-be]}" 8080 --timeout 1000
check "n1-client -> n1-be UDP, straight" probe "$P-n1-client" udp "${IP[n1-be]}" 8081 --timeout 1000
check "node1: those went pod to pod (forward-local counted)" test "$(metric 1 forward-local)" -ge $((fast + 4))
check "node1: none of them went through the stack (to-stack-flow unchanged)" \
	test "$(metric 1 to-stack-flow)" -eq "$stack"
if [ "$MODE" = native ]; then
	# Node 1 must resolve node 2's MAC for n1-be's replies (bpf_redirect_neigh):
	# through the stack, the SYN-ACK of a flow it never saw start is INVALID.
	ip -n "$P-node1" neigh flush dev uplink0
	fast=$(metric 1 forward-native)
	for proto in tcp udp; do
		port=$([ "$proto" = tcp ] && echo 8080 || echo 8081)
		check "node1's neighbours flushed: n2-client -> n1-be ${proto^^}, straight both ways" \
			probe "$P-n2-client" "$proto" "${IP[n1-be]}" "$port" --timeout 2000
	done
	check "node1: n1-be's replies were routed by BPF (forward-native counted)" \
		test "$(metric 1 forward-native)" -gt "$fast"
	check "node1: and not through the stack (to-stack-flow unchanged)" \
		test "$(metric 1 to-stack-flow)" -eq "$stack"
fi

echo "== c) NetworkPolicy on the backends: only app=trusted"
POLICY="apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: $NS, name: backend-from-trusted}
spec:
  podSelector: {matchLabels: {app: backend}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: trusted}}}]"
check "the policy applied to both agents" mn_apply_all "$P" 2 <<<"$POLICY"
drops1=$(metric 1 drop-policy ingress)
drops2=$(metric 2 drop-policy ingress)
check "n1-client and n2-client -> $VIP, 8 calls each over TCP and UDP: all fail" \
	all_fail n1-client n2-client
check "node1 dropped them at n1-be (drop-policy, ingress)" test "$(metric 1 drop-policy ingress)" -gt "$drops1"
check "node2 dropped them at n2-be (drop-policy, ingress)" test "$(metric 2 drop-policy ingress)" -gt "$drops2"
for proto in tcp udp; do
	check "n1-trusted -> $VIP:$(svc_port $proto)/${proto^^} x16: answered from $VIP by n1-be and n2-be" \
		calls n1-trusted "$proto" 16
done

# A backend reaching its own Service is masqueraded to its node's address on
# the uplink, which has the node's identity: admitted although isolated.
hairpin_self() {
	local out
	for _ in $(seq 24); do
		out=$(probe "$P-n1-be" tcp "$VIP" 80 --who --timeout 400 2>&1) || continue
		[[ $out == *" server=n1-be "* ]] && return 0
	done
	echo "n1-be never answered itself through $VIP: $out"
	return 1
}
check "n1-be -> $VIP:80/TCP reaches itself (hairpin: masqueraded to the node's address, node identity)" \
	hairpin_self

check "the policy deleted from both agents" bash -c "
	for n in 1 2; do
		'$BUILD/sluicectl' --socket '$MN_DIR/$P/node'\$n/agent.sock delete -f - <<<'$POLICY' >/dev/null || exit 1
	done"
check "n1-client -> $VIP:80/TCP x16 again: answered by n1-be and n2-be" calls n1-client tcp 16

echo "== d) the node reaches the other node's pods; pods reach the outside world"
for n in "${NODES[@]}"; do
	m=$((3 - n))
	if [ "$MODE" = overlay ]; then want=$(mn_router "$n"); else want=$(mn_node_ip "$n"); fi
	check "node$n -> n$m-be ping" probe "$P-node$n" ping "${IP[n$m-be]}" --count 1 --timeout 1000
	check "node$n -> n$m-be TCP, seen from $want" bash -c "
		ip netns exec '$P-node$n' '$BUILD/sluice-probe' tcp '${IP[n$m-be]}' 8080 --who --timeout 1000 |
			grep -q ' client=$want:'"
	check "node$n -> n$m-be UDP" probe "$P-node$n" udp "${IP[n$m-be]}" 8081 --timeout 1000
done
# A host on the physical network with no route to pods: only masqueraded
# connections get answers; kube-proxy's INVALID drop sees every packet.
netns_add "$P-world"
ip -n "$P-phys" link add world0 mtu "$MN_MTU" type veth peer name eth0 mtu "$MN_MTU" netns "$P-world"
ip -n "$P-phys" link set world0 master br0 up
ip -n "$P-world" addr add "$WORLD/24" dev eth0
ip -n "$P-world" link set eth0 up
serve "$P-world" --tcp 8080 --udp 8081 --name world || not_ok "echo server in the world namespace"
for from in n1-client n2-client; do
	check "$from -> world: a 1 s TCP stream holds (masqueraded)" stream_holds "$from" "$WORLD" 8080
	check "$from -> world UDP (masqueraded)" probe "$P-$from" udp "$WORLD" 8081 --timeout 1000
done

if [ "$FAIL" -gt 0 ]; then
	diag
fi
echo "== DEL: every pod"
for pod in "${PODS[@]}"; do
	check "DEL $pod" mn_pod_del "$P" "$(node_of "$pod")" "$pod" "$NS"
done
log "done in $(($(date +%s) - started)) s"
summary
