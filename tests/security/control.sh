#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The control plane as an attacker sees it: objects the Kubernetes API
# accepts but sluice cannot fully represent, Node objects that claim other
# nodes' ranges, and clients that hold the agent's socket.
#
#   tests/security/control.sh [overlay|native]     (default overlay; one mode:
#                                                   nothing here depends on it)
#
# Two node namespaces on a bridge (tests/multinode/lib.sh), the test API
# server (tests/kube/apiserver.py) at 10.200.0.1:6443, agents fed by it
# alone, every object created with the real kubectl. Pods (namespace shop):
#
#   node1: victim (app=victim), neighbour (app=stranger)
#   node2: friend (app=friend), other (app=other), stranger (app=stranger)
#
# a. a NetworkPolicy allowing ipBlock ::/0 (all IPv6) plus the friend: only
#    the friend reaches the victim (it used to be skipped: everyone did)
# b. an ipBlock with host bits (the friend's /31 written with its odd
#    address) is read as the masked block: the friend reaches, no one else
# c. an IPv4-mapped IPv6 except (accepted by the API server, ambiguous for
#    IPv4) isolates with no allow from that peer and is reported by
#    sluicectl get policies / status; a SluiceNetworkPolicy Deny rule with a
#    CIDR sluice cannot read denies everything rather than vanishing
# d. Node objects with podCIDR 0.0.0.0/0 and with a /32 inside node2's range
#    (pointing at an attacker's namespace) are refused: no route, no tunnel,
#    nothing reaches the attacker, pods still reach each other
# e. API clients that trickle, stall or never read, several in a row, do not
#    delay a CNI ADD beyond a few seconds; a non-root client is answered
#    "permission denied" and holds nothing
# f. a socket directory others can write to is refused at start
#
# Each attack counts what reaches the victim (forge.py listen) and checks
# that legitimate traffic in the same setup still works.
# shellcheck source-path=SCRIPTDIR
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TEST_NAME=control
# shellcheck source=../lib/common.sh
source "$HERE/../lib/common.sh"
# shellcheck source=../multinode/lib.sh
source "$HERE/../multinode/lib.sh"

usage() { echo "usage: $0 [overlay|native]" >&2; exit 2; }
MODE=${1:-overlay}
case $MODE in overlay | native) ;; *) usage ;; esac

need_root
for bin in sluice-agent sluice-cni sluicectl sluice-probe; do
	[ -x "$BUILD/$bin" ] || { log "$BUILD/$bin missing (run make)"; exit 1; }
done
for tool in kubectl /usr/bin/python3 openssl jq nsenter timeout; do
	command -v "$tool" >/dev/null || { log "$tool missing (run make deps)"; exit 77; }
done

P=slc$$
MN_DIR=$(mktemp -d /tmp/sluice-control.XXXXXX)
CLEANUP_PATHS+=("$MN_DIR")
KUBE=$ROOT/tests/kube
FORGE=$ROOT/tests/tools/forge.py
API_IP=10.200.0.1
API=$API_IP:6443
CERTS=$MN_DIR/certs
NS=shop
NODES=(1 2)
EVIL_IP=10.200.0.99
EVIL_FAR=10.77.0.1
declare -A IP=()

# ---- helpers (as tests/kube/run.sh) -------------------------------------------

kctl() {
	ip netns exec "$P-phys" kubectl --kubeconfig "$CERTS/kubeconfig-cert" \
		--cache-dir "$MN_DIR/kubectl-cache" "$@"
}

start_apiserver() {
	ip netns exec "$P-phys" /usr/bin/python3 "$KUBE/apiserver.py" \
		--listen "$API" --cert "$CERTS/server.crt" --key "$CERTS/server.key" \
		--token-file "$CERTS/tokens" --client-ca "$CERTS/ca.crt" \
		--state "$MN_DIR/apiserver.state" \
		--crd "$ROOT/deploy/crds/sluice-policy-crds.yaml" \
		>>"$MN_DIR/apiserver.log" 2>&1 &
	CLEANUP_PIDS+=($!)
	for _ in $(seq 100); do
		kctl get --raw /version >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	log "the API server did not come up"
	tail -n 20 "$MN_DIR/apiserver.log" >&2
	return 1
}

start_kube_agent() {
	local n=$1 dir
	dir=$(mn_node_dir "$P" "$n")
	mkdir -p "$dir"
	CLEANUP_PATHS+=("/sys/fs/bpf/$P-node$n")
	SLUICE_NODE_NAME="node$n" nsenter --net="/run/netns/$P-node$n" \
		"$BUILD/sluice-agent" --routing "$MODE" --kubeconfig "$CERTS/kubeconfig-cert" \
		--socket "$dir/agent.sock" --state-dir "$dir/state" \
		--bpffs "/sys/fs/bpf/$P-node$n" >>"$dir/agent.log" 2>&1 &
	CLEANUP_PIDS+=($!)
}

ctl() { mn_ctl "$P" "$@"; }
ready() { ctl "$1" status >/dev/null 2>&1; }
all_agents() { local n; for n in "${NODES[@]}"; do "$@" "$n" || return 1; done; }


reaches() { probe "$P-$1" tcp "${IP[$2]}" 8080 --timeout 500 >/dev/null 2>&1; }
blocked() { ! reaches "$@"; }

# policy_field NAME JQ N: node N's agent has policy NAME and JQ holds for it.
policy_field() {
	ctl "$3" get policies -A -o json 2>/dev/null |
		jq -e --arg n "$1" "[.items[] | select(.name == \$n)] | length == 1 and (.[0] | $2)" \
			>/dev/null
}
has_policy() { policy_field "$1" true "$2"; }
lacks_policy() { ! has_policy "$@"; }

# listen NS FILE ARGS...: forge.py listen in NS, counting into FILE.
listen() {
	local ns=$1 out=$2
	shift 2
	ip netns exec "$ns" /usr/bin/python3 "$FORGE" listen "$@" --out "$out" \
		>>"$MN_DIR/listen.log" 2>&1 &
	CLEANUP_PIDS+=($!)
	for _ in $(seq 100); do
		[ -s "$out" ] && return 0
		sleep 0.05
	done
	return 1
}
count() { jq -r '.udp' "$1" 2>/dev/null || echo -1; }

# flood FROM TO_IP PORT N: N UDP datagrams from pod FROM (its own address).
flood() {
	ip netns exec "$P-$1" /usr/bin/python3 "$FORGE" send --proto udp --src "${IP[$1]}" \
		--dst "$2" --dport "$3" --count "$4" --interval-ms 2 >/dev/null 2>&1
}

# received FILE BEFORE WANT: FILE's UDP count is BEFORE + WANT (after a moment).
received() {
	sleep 0.5
	local got
	got=$(count "$1")
	[ "$got" -eq $(($2 + $3)) ] || { echo "received $((got - $2)) datagrams, want $3"; return 1; }
}

# attack_victim DESC: strangers (local and remote) flood the victim and nothing
# arrives; the friend's datagrams do.
attack_victim() {
	local before
	before=$(count "$MN_DIR/victim.json")
	flood stranger "${IP[victim]}" 9000 20
	flood neighbour "${IP[victim]}" 9000 20
	check "$1: 40 datagrams from the strangers (node1 and node2): none reaches the victim" \
		received "$MN_DIR/victim.json" "$before" 0
	before=$(count "$MN_DIR/victim.json")
	flood friend "${IP[victim]}" 9000 5
	check "$1: the friend's 5 datagrams all arrive" received "$MN_DIR/victim.json" "$before" 5
}

# ---- set-up --------------------------------------------------------------------

mn_topology "$P" 2 || exit 1
ip -n "$P-phys" addr add "$API_IP/24" dev br0 || exit 1
"$KUBE/certs.sh" "$CERTS" "$API" >"$MN_DIR/certs.log" 2>&1 || {
	cat "$MN_DIR/certs.log" >&2
	exit 1
}
start_apiserver || exit 1
for n in "${NODES[@]}"; do
	mn_node_json "$n" | jq 'del(.status)' | kctl create -f - >/dev/null || exit 1
	kctl patch node "node$n" --subresource=status --type=merge \
		-p "$(mn_node_json "$n" | jq -c '{status: .status}')" >/dev/null || exit 1
done
kctl create namespace "$NS" >/dev/null || exit 1
for n in "${NODES[@]}"; do start_kube_agent "$n"; done
check "agents ready from the API alone ($MODE routing)" eventually 20 all_agents ready

# pod_object_create NAME N APP / pod_object_status NAME N APP: the Pod object
# as kubelet makes it: created before its sandbox's CNI ADD (which waits for
# it), its status with the address after.
pod_object_create() {
	mn_pod_json "$NS" "$1" "$2" "" "$3" | jq 'del(.status)' | kctl create -f - >/dev/null
}
pod_object_status() {
	kctl -n "$NS" patch pod "$1" --subresource=status --type=merge \
		-p "$(mn_pod_json "$NS" "$1" "$2" "${IP[$1]}" "$3" | jq -c '{status: .status}')" >/dev/null
}

# name:node:app, in this order (node2's addresses: friend, other, stranger)
PODSPEC=(victim:1:victim neighbour:1:stranger friend:2:friend other:2:other stranger:2:stranger)
for spec in "${PODSPEC[@]}"; do
	IFS=: read -r name n app <<<"$spec"
	netns_add "$P-$name" || exit 1
	pod_object_create "$name" "$n" "$app" || exit 1
	res=$(mn_pod_add "$P" "$n" "$name" "$NS") || { log "CNI ADD $name failed: $res"; exit 1; }
	IP[$name]=$(jq -r '.ips[0].address | split("/")[0]' <<<"$res")
	serve "$P-$name" || exit 1
	pod_object_status "$name" "$n" "$app" || exit 1
done
listen "$P-victim" "$MN_DIR/victim.json" --udp 9000 || { log "listener did not start"; exit 1; }
pods_known() {
	ctl "$1" get pods -A -o json | jq -e '[.items[] | select(.ip != "")] | length >= 5' >/dev/null
}
check "every agent knows every pod from the API" eventually 10 all_agents pods_known
check "before any policy: the stranger reaches the victim" eventually 10 reaches stranger victim
check "before any policy: the friend reaches the victim" reaches friend victim

# The friend's /31 written with its odd address: host bits set. The block
# must not hold the stranger (the pods' order above sees to it).
HOSTBITS=$(python3 -c '
import ipaddress, sys
f = ipaddress.IPv4Address(sys.argv[1]); s = ipaddress.IPv4Address(sys.argv[2])
net = ipaddress.IPv4Network("%s/31" % f, strict=False)
assert s not in net, "stranger inside the /31"
print("%s/31" % (net.network_address + 1))' "${IP[friend]}" "${IP[stranger]}") || exit 1

# ---- a. IPv6 ipBlock -------------------------------------------------------------

echo "--- a. a NetworkPolicy allowing ::/0 and the friend"
kctl apply -f - >/dev/null <<EOF || exit 1
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: $NS, name: v6-and-friend}
spec:
  podSelector: {matchLabels: {app: victim}}
  ingress:
  - from: [{ipBlock: {cidr: "::/0"}}]
  - from: [{podSelector: {matchLabels: {app: friend}}}]
EOF
check "node1 enforces it, status OK (IPv6 peers are exact: they match no IPv4)" \
	eventually 10 policy_field v6-and-friend '.status == "Enforced" and (.note | test("IPv6"))' 1
check "the stranger (node2) no longer reaches the victim" eventually 10 blocked stranger victim
check "the neighbour (node1) does not reach the victim" blocked neighbour victim
check "the friend still reaches the victim" reaches friend victim
attack_victim "::/0"
kctl -n "$NS" delete networkpolicy v6-and-friend >/dev/null
check "deleted: the stranger reaches the victim again" eventually 10 reaches stranger victim

# ---- b. host bits ----------------------------------------------------------------

echo "--- b. an ipBlock with host bits ($HOSTBITS) holding the friend"
kctl apply -f - >/dev/null <<EOF || exit 1
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: $NS, name: host-bits}
spec:
  podSelector: {matchLabels: {app: victim}}
  ingress:
  - from: [{ipBlock: {cidr: "$HOSTBITS"}}]
EOF
check "node1 enforces it as the masked block" \
	eventually 10 policy_field host-bits '.status == "Enforced" and (.note | test("read as"))' 1
check "the stranger no longer reaches the victim" eventually 10 blocked stranger victim
check "the neighbour does not reach the victim" blocked neighbour victim
check "the friend (inside the masked block) reaches the victim" reaches friend victim
attack_victim "host bits"
kctl -n "$NS" delete networkpolicy host-bits >/dev/null
check "deleted: the stranger reaches the victim again" eventually 10 reaches stranger victim

echo "--- a/b through sluicectl apply: the same reading"
v6doc() {
	cat <<EOF
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: applied, name: $1}
spec:
  podSelector: {}
  ingress: [{from: [{ipBlock: {cidr: "$2"$3}}]}]
EOF
}
check "apply takes an IPv6 ipBlock" bash -c "$(declare -f v6doc); v6doc a '::/0' '' |
	'$BUILD/sluicectl' --socket '$(mn_sock "$P" 2)' apply -f -"
check "apply takes a CIDR with host bits, read as the API server reads it" \
	bash -c "$(declare -f v6doc); v6doc b '$HOSTBITS' '' |
	'$BUILD/sluicectl' --socket '$(mn_sock "$P" 2)' apply -f - &&
	'$BUILD/sluicectl' --socket '$(mn_sock "$P" 2)' get policies -A -o json |
	jq -e '.items[] | select(.name == \"b\") | .note | test(\"read as\")'"
out=$(v6doc c 10.0.0.0/8 ', except: ["::ffff:10.210.2.0/120"]' |
	ctl 2 apply -f - 2>&1)
check "apply refuses an IPv4-mapped except, naming the field" \
	grep -q "ipBlock.except\[0\]: '::ffff:10.210.2.0/120' is an IPv4-mapped" <<<"$out"
printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: applied}\n' | ctl 2 apply -f - >/dev/null
ctl 2 delete --ignore-not-found -f - >/dev/null <<EOF
$(v6doc a '::/0' '')
---
$(v6doc b "$HOSTBITS" '')
---
apiVersion: v1
kind: Namespace
metadata: {name: applied}
EOF

# ---- c. what cannot be represented -----------------------------------------------

echo "--- c. an IPv4-mapped except: isolates, no allow from that peer, reported"
kctl apply -f - >/dev/null <<EOF || exit 1
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: $NS, name: mapped-except}
spec:
  podSelector: {matchLabels: {app: victim}}
  ingress:
  - from: [{ipBlock: {cidr: 10.0.0.0/8, except: ["::ffff:10.210.2.0/120"]}}]
  - from: [{podSelector: {matchLabels: {app: friend}}}]
EOF
check "node1 has it, status Degraded with the field and the reason" \
	eventually 10 policy_field mapped-except \
	'.status == "Degraded" and (.reason | test("except\\[0\\]: .::ffff:10.210.2.0/120. is an IPv4-mapped"))' 1
check "sluicectl get policies shows it in the STATUS column" \
	bash -c "'$BUILD/sluicectl' --socket '$(mn_sock "$P" 1)' get policies -A |
		grep mapped-except | grep -q 'Degraded: spec.ingress\[0\].from\[0\].ipBlock.except\[0\]'"
check "sluicectl status counts it (degradedPolicies)" \
	bash -c "'$BUILD/sluicectl' --socket '$(mn_sock "$P" 1)' status -o json | jq -e '.degradedPolicies == 1'"
check "sluicectl status says so in words" \
	bash -c "'$BUILD/sluicectl' --socket '$(mn_sock "$P" 1)' status | grep -q '^degraded: *1 polic'"
check "the agent logged it with the object's name" \
	grep -q "NetworkPolicy $NS/mapped-except cannot be fully represented" \
	"$(mn_node_dir "$P" 1)/agent.log"
check "the stranger (inside 10.0.0.0/8) does not reach the victim" \
	eventually 10 blocked stranger victim
check "the neighbour does not reach the victim" blocked neighbour victim
check "the friend (the readable rule) reaches the victim" reaches friend victim
attack_victim "mapped except"
kctl -n "$NS" delete networkpolicy mapped-except >/dev/null

echo "--- c. a SluiceNetworkPolicy Deny sluice cannot read denies everything"
kctl apply -f - >/dev/null <<EOF || exit 1
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: $NS, name: victim-open}
spec:
  podSelector: {matchLabels: {app: victim}}
  ingress: [{}]
---
apiVersion: sluice.io/v1alpha1
kind: SluiceNetworkPolicy
metadata: {namespace: $NS, name: deny-strangers}
spec:
  podSelector: {matchLabels: {app: victim}}
  ingress:
  - action: Deny
    from: [{ipBlock: {cidr: "10.210.0.0/33"}}]
EOF
check "node1 has it, Degraded" eventually 10 policy_field deny-strangers '.status == "Degraded"' 1
check "the stranger does not reach the victim (the Deny did not vanish)" \
	eventually 10 blocked stranger victim
check "nor does anyone else: the Deny covers everything it might have" blocked friend victim
before=$(count "$MN_DIR/victim.json")
flood stranger "${IP[victim]}" 9000 20
flood neighbour "${IP[victim]}" 9000 20
check "Deny: 40 datagrams from the strangers, none arrives" \
	received "$MN_DIR/victim.json" "$before" 0
check "pods the policy does not select still talk (neighbour -> friend)" reaches neighbour friend
kctl -n "$NS" delete sluicenetworkpolicy deny-strangers >/dev/null
kctl -n "$NS" delete networkpolicy victim-open >/dev/null
check "both deleted: status counts no degraded policy" \
	eventually 10 bash -c "'$BUILD/sluicectl' --socket '$(mn_sock "$P" 1)' status -o json |
		jq -e '.degradedPolicies == 0'"
check "and the stranger reaches the victim again" eventually 10 reaches stranger victim

# ---- d. Node objects -------------------------------------------------------------

echo "--- d. Nodes claiming a range: 0.0.0.0/0, and the friend's /32 (node2's range)"
# The attacker: a namespace on the bridge that would receive what a forged
# Node routes or tunnels to it, holding the friend's address and a far one.
netns_add "$P-evil" || exit 1
ip -n "$P-phys" link add portE type veth peer name uplink0 netns "$P-evil" || exit 1
ip -n "$P-phys" link set portE master br0 up || exit 1
ip -n "$P-evil" addr add "$EVIL_IP/24" dev uplink0 || exit 1
ip -n "$P-evil" addr add "${IP[friend]}/32" dev uplink0 || exit 1
ip -n "$P-evil" addr add "$EVIL_FAR/32" dev uplink0 || exit 1
ip -n "$P-evil" link set uplink0 up || exit 1
listen "$P-evil" "$MN_DIR/evil.json" --udp 8472 --udp 8081 || { log "evil listener"; exit 1; }
evil_node() {
	jq -cn --arg name "$1" --arg cidr "$2" --arg ip "$EVIL_IP" '
		{apiVersion: "v1", kind: "Node", metadata: {name: $name},
		 spec: {podCIDR: $cidr, podCIDRs: [$cidr]},
		 status: {addresses: [{type: "InternalIP", address: $ip}]}}'
}
for spec in "aaa-evil:${IP[friend]}/32" "evil-all:0.0.0.0/0"; do
	IFS=: read -r name cidr <<<"$spec"
	evil_node "$name" "$cidr" | jq 'del(.status)' | kctl create -f - >/dev/null || exit 1
	kctl patch node "$name" --subresource=status --type=merge \
		-p "$(evil_node "$name" "$cidr" | jq -c '{status: .status}')" >/dev/null || exit 1
done
node_state() {
	ctl 1 get nodes -o json | jq -e --arg n "$1" --arg re "$2" \
		'.items[] | select(.name == $n) | .state | test($re)' >/dev/null
}
check "node1: aaa-evil refused, naming node2 (older) whose range it overlaps" \
	eventually 10 node_state aaa-evil "^refused: spec.podCIDR ${IP[friend]}/32 overlaps the pod CIDR 10.210.2.0/24 of Node node2"
check "node1: evil-all refused: 0.0.0.0/0 covers every address" \
	eventually 10 node_state evil-all '^refused: spec.podCIDR 0.0.0.0/0 covers every address'
check "node1: node2 is still trusted" node_state node2 '^(tunnel|route)$'
check "sluicectl status counts them (refusedNodes)" \
	bash -c "'$BUILD/sluicectl' --socket '$(mn_sock "$P" 1)' status -o json | jq -e '.refusedNodes == 2'"
no_evil_routes() {
	! ip -n "$P-node1" route show | grep -E "^(default|${IP[friend]} )"
}
check "node1 has no route for the friend's /32 nor a default route" no_evil_routes
before=$(count "$MN_DIR/evil.json")
for _ in 1 2 3 4 5; do
	probe "$P-victim" udp "${IP[friend]}" 8081 --timeout 300 >/dev/null 2>&1
	probe "$P-victim" udp "$EVIL_FAR" 8081 --timeout 100 >/dev/null 2>&1
done
check "victim -> friend and victim -> $EVIL_FAR: nothing reaches the attacker" \
	received "$MN_DIR/evil.json" "$before" 0
check "the victim still reaches the friend (TCP)" reaches victim friend
check "the victim still reaches the friend (UDP)" \
	probe "$P-victim" udp "${IP[friend]}" 8081 --timeout 1000
out=$(evil_node applied-evil 0.0.0.0/0 | ctl 1 apply -f - 2>&1)
check "sluicectl apply refuses such a Node, naming it and why" \
	grep -q "Node applied-evil: spec.podCIDR 0.0.0.0/0 covers every address" <<<"$out"
out=$(evil_node applied-evil "10.210.1.128/25" | ctl 1 apply -f - 2>&1)
check "sluicectl apply refuses a Node overlapping this node's range" \
	grep -q "Node applied-evil: spec.podCIDR 10.210.1.128/25 overlaps the pod CIDR 10.210.1.0/24 of this node (node1)" <<<"$out"
kctl delete node aaa-evil evil-all >/dev/null

# ---- e. stuck API clients --------------------------------------------------------

echo "--- e. API clients that trickle, stall or never read, then a CNI ADD"
# stuck MODE: connect to node1's socket and hold it (trickle: a byte every
# 0.3 s; stall: nothing; noread: a whole request, then never read).
stuck() {
	python3 - "$(mn_sock "$P" 1)" "$1" "$MN_DIR/stuck.ready" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
mode = sys.argv[2]
with open(sys.argv[3], "a") as f:
    f.write(mode + "\n")
end = time.time() + 20
try:
    if mode == "noread":
        s.sendall(b'{"op":"list"}')
        s.shutdown(socket.SHUT_WR)
    while time.time() < end:
        if mode == "trickle":
            s.send(b" ")
        time.sleep(0.3)
except OSError:
    pass
PY
	STUCK+=($!)
	CLEANUP_PIDS+=($!)
}
STUCK=()
for m in trickle trickle stall trickle stall noread trickle stall; do stuck "$m"; done
all_stuck() { [ -e "$MN_DIR/stuck.ready" ] && [ "$(wc -l <"$MN_DIR/stuck.ready")" -eq 8 ]; }
eventually 10 all_stuck || { log "the stuck clients did not connect"; exit 1; }
netns_add "$P-late" || exit 1
pod_object_create late 1 other || exit 1
t0=$(date +%s%N)
res=$(mn_pod_add "$P" 1 late "$NS")
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
IP[late]=$(jq -r '.ips[0].address | split("/")[0]' <<<"$res" 2>/dev/null)
pod_object_status late 1 other >/dev/null 2>&1
echo "  CNI ADD behind 8 stuck clients took $ms ms"
grep "add late/" "$(mn_node_dir "$P" 1)/agent.log" | sed 's/^/  agent: /'
check "the CNI ADD succeeded" test "$rc" -eq 0
check "within 3 s (it took $ms ms)" test "$ms" -lt 3000
t0=$(date +%s%N)
ctl 1 status >/dev/null 2>&1
ms=$((($(date +%s%N) - t0) / 1000000))
check "sluicectl status answers within 3 s too ($ms ms)" test "$ms" -lt 3000
check "the agent cut the trickling clients off at the deadline" \
	eventually 5 grep -q "sent no complete request within 2000 ms" "$(mn_node_dir "$P" 1)/agent.log"
serve "$P-late" || exit 1
check "the new pod works: it reaches the friend" reaches late friend
for p in "${STUCK[@]}"; do kill "$p" 2>/dev/null; done

# A non-root client gets "permission denied" (SO_PEERCRED), not a reset,
# and holds nothing: the socket opened to it for the test only.
if command -v setpriv >/dev/null; then
	chmod 0711 "$MN_DIR"
	chmod 0666 "$(mn_sock "$P" 1)"
	out=$(setpriv --reuid 65534 --regid 65534 --clear-groups \
		"$BUILD/sluicectl" --socket "$(mn_sock "$P" 1)" status 2>&1)
	rc=$?
	chmod 0600 "$(mn_sock "$P" 1)"
	chmod 0700 "$MN_DIR"
	check "a non-root client is answered 'permission denied' (exit $rc)" \
		bash -c "[ $rc -ne 0 ] && grep -q 'permission denied' <<<\"\$1\"" _ "$out"
	check "and root is still served" ready 1
fi

# ---- f. the socket's directory ---------------------------------------------------

echo "--- f. a socket directory others can write to"
netns_add "$P-sock" || exit 1
CLEANUP_PATHS+=("/sys/fs/bpf/$P-sock")
for how in "0777 root" "0755 nobody"; do
	read -r mode owner <<<"$how"
	d=$MN_DIR/sock-$mode
	mkdir -p "$d/run" && chmod "$mode" "$d/run" && chown "$owner" "$d/run"
	out=$(timeout 10 nsenter --net="/run/netns/$P-sock" "$BUILD/sluice-agent" \
		--node-name sock --pod-cidr 10.230.0.0/24 --routing native --kubernetes off \
		--socket "$d/run/agent.sock" --state-dir "$d/state" \
		--bpffs "/sys/fs/bpf/$P-sock" 2>&1)
	rc=$?
	refused_start() {
		[ "$1" -ne 0 ] && [ "$1" -ne 124 ] &&
			grep -q "$2, above the socket .* with mode $3" <<<"$4"
	}
	check "mode $mode, owner $owner: the agent refuses to start (exit $rc), naming the directory" \
		refused_start "$rc" "$d/run" "$mode" "$out"
	check "mode $mode, owner $owner: and creates no socket" test ! -e "$d/run/agent.sock"
done

if [ "$FAIL" -gt 0 ]; then
	for n in "${NODES[@]}"; do
		echo "--- node$n agent log (tail)"
		tail -n 20 "$(mn_node_dir "$P" "$n")/agent.log"
	done
fi
summary
