#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Services for the node's own sockets (--kube-proxy-replacement on): the
# cgroup connect4/sendmsg4/recvmsg4/getpeername4 hooks (bpf/sock.bpf.c),
# over two nodes (tests/multinode/lib.sh) whose agents all attach to the
# same cgroup v2 root, per routing mode, with no kube-proxy rule anywhere:
#
#   a) from node 1's network namespace (a node process): TCP, connected UDP
#      and unconnected UDP to the ClusterIP reach both backends (one local,
#      one remote), and the application sees the ClusterIP as its peer
#      (getpeername) and as the answers' source (recvfrom); the same for
#      the Service's externalIP (TCP) and its load-balancer address (UDP);
#   b) node address:nodePort and 127.0.0.1:nodePort (TCP, UDP) reach both
#      backends, seen from the address the application used (the agent
#      writes the NodePort entries: key the node's address and the
#      nodePort, flag NODEPORT); with the frontend's rev-NAT entry gone,
#      answers show their real source;
#   c) a Service without endpoints: connect() and sendto() fail at once
#      with ECONNREFUSED; the untranslated addresses are left alone (a
#      backend's own address answers as itself);
#   d) node 2's hooks, on the same cgroup, leave node 1's sockets alone, and
#      node 1's leave a pod's: the pod is translated once, by from_pod;
#   e) node 1's agent stopped: a TCP connection through the ClusterIP keeps
#      going, new connections are still translated (the links are pinned),
#      and the restarted agent swaps its programs into the same links;
#   f) --kube-proxy-replacement off (node 2) and scripts/node-cleanup.sh
#      (node 1) leave no sluice program on the cgroup.
#
#   tests/e2e/services-host.sh             overlay, then native
#   tests/e2e/services-host.sh overlay     one mode (or native)
#
# Last line: "services-host: N passed, M failed".
# shellcheck source-path=SCRIPTDIR
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TEST_NAME=${SVC_TEST_NAME:-services-host}
# shellcheck source=../lib/common.sh
source "$HERE/../lib/common.sh"
# shellcheck source=../multinode/lib.sh
source "$HERE/../multinode/lib.sh"
# shellcheck source=svc_lib.sh
source "$HERE/svc_lib.sh"

mn_mode services-host SVC_TEST_NAME "$0" "$@"

need_root
svc_need_bins
svc_need bpftool
svc_need_flag --cgroup-root "node-socket hooks"

ID=slhs$$
P=$ID
MN_DIR=$(mktemp -d /tmp/sluice-services-host.XXXXXX)
CLEANUP_PATHS+=("$MN_DIR")
NS=shop
CIP=10.96.20.10
EIP=10.97.20.10		# web's externalIP
LBIP=10.98.20.10	# web's load-balancer ingress address
EMPTY=10.96.20.11
NPT=30080	# nodePort, TCP
NPU=30053	# nodePort, UDP
N=12	# probes per check
PODS=(n1-be n2-be n1-client)
declare -A IP=() AGENT=()
ctl() { mn_ctl "$P" "$@"; }
node_of() { printf '%s' "${1:1:1}"; }
app_of() { local a=${1#*-}; printf '%s' "$a"; }
NODE1=$(mn_node_ip 1)

# The agent mounts cgroup2 on /run/sluice/cgroupv2 when the machine has
# none: unmounted again at the end if this test made the agent do it.
CGROOT=$(awk '$0 ~ / - cgroup2 / { print $5; exit }' /proc/self/mountinfo)
CG_MOUNTED_HERE=0
if [ -z "$CGROOT" ]; then
	CGROOT=/run/sluice/cgroupv2
	CG_MOUNTED_HERE=1
fi
# Node 2's agent is given --cgroup-root on an empty directory, where it
# mounts cgroup2 itself (the same hierarchy, so the same root cgroup). Not
# under MN_DIR: a mount left there would meet cleanup's rm -rf.
CG2=/run/sluice-test-$ID/cgroup2
hs_cleanup() {
	if [ "$CG_MOUNTED_HERE" = 1 ]; then
		umount "$CGROOT" 2>/dev/null && rmdir "$CGROOT" /run/sluice 2>/dev/null
	fi
	if [ -d "$CG2" ]; then
		umount "$CG2" 2>/dev/null
		rmdir "$CG2" "${CG2%/*}" 2>/dev/null	# fails while still mounted: nothing removed
	fi
}
trap 'rc=$?; hs_cleanup; (exit $rc); cleanup' EXIT

node_metric() { svc_metric "$P" "$@"; } # N REASON DIRECTION

on_node() { local n=$1; shift; nsenter --net="/run/netns/$P-node$n" "$BUILD/sluice-probe" "$@"; }

# who N|POD PROTO ADDR PORT [ARGS]: N probes with --who from node N's
# namespace (a digit) or from pod POD; one line each, "fail" for none.
who() {
	local from=$1 proto=$2 addr=$3 port=$4 i
	shift 4
	for i in $(seq "$N"); do
		if [[ $from == [0-9] ]]; then
			on_node "$from" "$proto" "$addr" "$port" --timeout 1000 --who "$@" 2>/dev/null
		else
			probe "$P-$from" "$proto" "$addr" "$port" --timeout 1000 --who "$@" 2>/dev/null
		fi || echo fail
	done
}

# served FROM PROTO ADDR PORT [ARGS]: every answer seen from ADDR:PORT, both backends.
served() {
	local out
	out=$(who "$@")
	if [ "$(grep -c "^peer=$3:$4 server=n[12]-be client=" <<<"$out")" = "$N" ] &&
		grep -q 'server=n1-be' <<<"$out" && grep -q 'server=n2-be' <<<"$out"; then
		return 0
	fi
	sort <<<"$out" | uniq -c | sed 's/^/       /'
	return 1
}

# refused N PROTO ADDR PORT: the call fails with "connection refused" at
# once (well within the probe's 3 s timeout).
refused() {
	local out t0 t1
	t0=$(date +%s%N)
	out=$(on_node "$@" --timeout 3000 --who 2>&1) && { echo "answered: $out"; return 1; }
	t1=$(date +%s%N)
	echo "$out"
	grep -qi 'refused' <<<"$out" && [ $(((t1 - t0) / 1000000)) -lt 1500 ]
}

# The pinned cgroup links of node N: "ID PROG_ID" per line.
links_of() {
	local f
	for f in /sys/fs/bpf/"$P-node$1"/links/cgroup_*; do
		[ -e "$f" ] || continue
		bpftool -j link show pinned "$f" | jq -r '"\(.id) \(.prog_id)"'
	done
}
# Program ids attached to the cgroup root (any owner).
cgroup_progs() { bpftool -j cgroup show "$CGROOT" | jq -r '.[].id'; }
links_attached() { # N: node N's 4 links exist and their programs are on the cgroup
	local l lines progs
	lines=$(links_of "$1")
	[ "$(wc -l <<<"$lines")" = 4 ] || { echo "links: $lines"; return 1; }
	progs=$(cgroup_progs)
	while read -r l; do
		grep -qx "${l#* }" <<<"$progs" || { echo "prog ${l#* } not on $CGROOT: $progs"; return 1; }
	done <<<"$lines"
}
none_attached() { # IDS...: none of these program ids is on the cgroup any more
	local progs id
	progs=$(cgroup_progs)
	for id in "$@"; do
		grep -qx "$id" <<<"$progs" && { echo "prog $id still on $CGROOT"; return 1; }
	done
	return 0
}

# slot0 N ADDR PORT PROTO: "count flags rev_nat" of node N's slot 0 for
# the frontend (ADDR, PORT, PROTO number), nothing when there is none.
slot0() {
	bpftool -j map dump pinned "/sys/fs/bpf/$P-node$1/sluice_svc4_v1" | python3 -c '
import json, socket, struct, sys
addr, port, proto = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
want = socket.inet_aton(addr) + struct.pack("!H", port) + bytes([proto, 0]) + struct.pack("=HH", 0, 0)
for e in json.load(sys.stdin):
    if bytes(int(v, 16) for v in e["key"]) == want:
        v = bytes(int(x, 16) for x in e["value"])
        count, rn = struct.unpack("=HH", v[4:8])
        print(count, struct.unpack("=H", v[12:14])[0], rn)
' "$2" "$3" "$4"
}
nodeport_written() { # N PORT PROTO: a NodePort entry with 2 backends and flag NODEPORT (1)
	local got
	got=$(slot0 "$1" "$(mn_node_ip "$1")" "$2" "$3")
	echo "slot 0: ${got:-none}"
	[ "${got% *}" = "2 1" ]
}

echo "== two nodes (--routing $MODE), agents with --kube-proxy-replacement on, one cgroup"
mn_topology "$P" 2 || { log "could not build the topology"; exit 1; }
mkdir -p "$CG2"
for n in 1 2; do
	args="--kube-proxy-replacement on"
	[ "$n" = 2 ] && args+=" --cgroup-root $CG2"
	MN_AGENT_ARGS=$args mn_start_agent "$P" "$n" "$MODE" ||
		{ log "node$n's agent did not start"; exit 1; }
	AGENT[$n]=$MN_AGENT_PID
	check "node$n: its 4 cgroup links are pinned and attached to $CGROOT" links_attached "$n"
done
check "node1's log names the cgroup it found ($CGROOT)" \
	grep -q "hooks attached to the cgroup $CGROOT\$" "$(mn_node_dir "$P" 1)/agent.log"
check "node2 (--cgroup-root on an empty directory) mounted cgroup2 there and says so" bash -c "
	grep -q 'mounted cgroup2 on $CG2' '$(mn_node_dir "$P" 2)/agent.log' &&
	grep -q 'hooks attached to the cgroup $CG2\$' '$(mn_node_dir "$P" 2)/agent.log'"
svc_apply_nodes
svc_add_pods --tcp 8080 --udp 8081
svc_apply_pods
check "Services web (two backends) and empty (none) applied to both agents" mn_apply_all "$P" 2 <<YAML
apiVersion: v1
kind: Service
metadata: {namespace: $NS, name: web}
spec:
  type: LoadBalancer
  clusterIP: $CIP
  externalIPs: [$EIP]
  ports:
  - {name: http, protocol: TCP, port: 80, targetPort: http, nodePort: $NPT}
  - {name: dns, protocol: UDP, port: 53, targetPort: dns, nodePort: $NPU}
status: {loadBalancer: {ingress: [{ip: $LBIP}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {namespace: $NS, name: web-1, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, protocol: TCP, port: 8080}, {name: dns, protocol: UDP, port: 8081}]
endpoints:
- {addresses: [${IP[n1-be]}], nodeName: node1, conditions: {ready: true}}
- {addresses: [${IP[n2-be]}], nodeName: node2, conditions: {ready: true}}
---
apiVersion: v1
kind: Service
metadata: {namespace: $NS, name: empty}
spec:
  clusterIP: $EMPTY
  ports:
  - {name: http, protocol: TCP, port: 80, targetPort: 8080}
  - {name: dns, protocol: UDP, port: 53, targetPort: 8081}
YAML

echo "== a) node 1's own sockets to the ClusterIP, the externalIP and the LB address"
s0=$(node_metric 1 lb-sock-translated egress)
o0=$(node_metric 2 lb-sock-translated egress)
check "node1 -> $CIP:80/TCP x$N: both backends, getpeername() is the ClusterIP" served 1 tcp "$CIP" 80
check "node1 -> $CIP:53/UDP unconnected x$N: both backends, recvfrom() source is the ClusterIP" \
	served 1 udp "$CIP" 53
check "node1 -> $CIP:53/UDP connected x$N: both backends, getpeername() is the ClusterIP" \
	served 1 udp "$CIP" 53 --connected
check "node1 -> externalIP $EIP:80/TCP x$N: both backends, getpeername() is the externalIP" \
	served 1 tcp "$EIP" 80
check "node1 -> LB address $LBIP:53/UDP unconnected x$N: both backends, from the LB address" \
	served 1 udp "$LBIP" 53
s1=$(node_metric 1 lb-sock-translated egress)
check "node1 counted its sockets' translations (lb-sock-translated $s0 -> $s1)" \
	test "$s1" -ge "$((s0 + 5 * N))"

echo "== b) NodePort: $NODE1:$NPT/$NPU and 127.0.0.1"
check "node1's agent wrote $NODE1:$NPT/TCP: 2 backends, flag NODEPORT" nodeport_written 1 "$NPT" 6
check "node1's agent wrote $NODE1:$NPU/UDP: 2 backends, flag NODEPORT" nodeport_written 1 "$NPU" 17
check "node1 -> $NODE1:$NPT/TCP x$N: both backends, seen as $NODE1:$NPT" served 1 tcp "$NODE1" "$NPT"
check "node1 -> 127.0.0.1:$NPT/TCP x$N: both backends, seen as 127.0.0.1:$NPT" served 1 tcp 127.0.0.1 "$NPT"
check "node1 -> 127.0.0.1:$NPU/UDP unconnected x$N: both backends, from 127.0.0.1:$NPU" \
	served 1 udp 127.0.0.1 "$NPU"
check "node1 -> 127.0.0.1:$NPU/UDP connected x$N: both backends" served 1 udp 127.0.0.1 "$NPU" --connected
# The frontend's rev-NAT entry gone (its Service deleted, as the agent
# does it: slot 0 first, the rev-NAT entry after): answers are no longer
# dressed up as the frontend, even for a socket that sent to it.
stale_answer() {
	local out
	out=$(on_node 1 udp 127.0.0.1 "$NPU" --timeout 1000 --who 2>&1) && { echo "$out"; return 1; }
	echo "$out"
	grep -q "the answer came from 10\.210\.[12]\.2:8081" <<<"$out"
}
rn=$(slot0 1 "$NODE1" "$NPU" 17 | cut -d' ' -f3)
check "rev-NAT entry ${rn:-?} of $NODE1:$NPU/UDP deleted" \
	bpftool map delete pinned "/sys/fs/bpf/$P-node1/sluice_lbrn4_v1" key $((rn & 255)) $((rn >> 8)) 0 0
check "node1 -> 127.0.0.1:$NPU/UDP: the answer shows the backend, not a frontend whose Service is gone" \
	stale_answer
check "node1 -> 127.0.0.1:80/TCP (the ClusterIP's port, not a NodePort): not translated" \
	bash -c "! nsenter --net=/run/netns/$P-node1 '$BUILD/sluice-probe' tcp 127.0.0.1 80 --timeout 500"

echo "== c) no backend, and addresses that are no frontend"
n0=$(node_metric 1 lb-sock-no-backend egress)
check "node1 -> $EMPTY:80/TCP (no endpoints): connect() fails with ECONNREFUSED at once" refused 1 tcp "$EMPTY" 80
check "node1 -> $EMPTY:53/UDP unconnected: sendto() fails with ECONNREFUSED" refused 1 udp "$EMPTY" 53
check "node1 -> $EMPTY:53/UDP connected: connect() fails with ECONNREFUSED" \
	refused 1 udp "$EMPTY" 53 --connected
check "node1 counted the refusals (lb-sock-no-backend)" \
	test "$(node_metric 1 lb-sock-no-backend egress)" -ge "$((n0 + 3))"
check "node1 -> n2-be's own address ${IP[n2-be]}:8081/UDP: answered as itself, not as a frontend" \
	bash -c "nsenter --net=/run/netns/$P-node1 '$BUILD/sluice-probe' udp ${IP[n2-be]} 8081 --who |
		grep -q '^peer=${IP[n2-be]}:8081 server=n2-be'"

echo "== d) one translation per socket, by the hooks of its own node only"
check "node2's hooks translated none of node1's sockets (its lb-sock-translated stays $o0)" \
	test "$(node_metric 2 lb-sock-translated egress)" = "$o0"
s0=$(node_metric 1 lb-sock-translated egress)
t0=$(node_metric 1 lb-translated egress)
check "pod n1-client -> $CIP:80/TCP x$N: both backends, from the ClusterIP" served n1-client tcp "$CIP" 80
check "pod n1-client -> $CIP:53/UDP x$N: both backends" served n1-client udp "$CIP" 53
check "pod n1-client -> $NODE1:$NPT/TCP x$N: both backends, from $NODE1:$NPT (from_pod, the same NodePort entry)" \
	served n1-client tcp "$NODE1" "$NPT"
check "the pod's flows were translated by from_pod (lb-translated $t0 -> $(node_metric 1 lb-translated egress))" \
	test "$(node_metric 1 lb-translated egress)" -ge "$((t0 + 3 * N))"
check "and not by the cgroup hooks (lb-sock-translated stays $s0)" \
	test "$(node_metric 1 lb-sock-translated egress)" = "$s0"
s0=$(node_metric 2 lb-sock-translated egress)
check "node2 -> $CIP:80/TCP x$N: node 2's own hooks translate its sockets" served 2 tcp "$CIP" 80
check "node2 counted them" test "$(node_metric 2 lb-sock-translated egress)" -ge "$((s0 + N))"

echo "== e) node 1's agent restarted under a running connection"
before=$(links_of 1)
stream_out=$MN_DIR/stream.json
nsenter --net="/run/netns/$P-node1" "$BUILD/sluice-probe" stream "$CIP" 80 --seconds 6 \
	--interval-ms 50 >"$stream_out" 2>"$MN_DIR/stream.err" &
STREAM=$!
CLEANUP_PIDS+=("$STREAM")
sleep 1
kill "${AGENT[1]}" 2>/dev/null
wait "${AGENT[1]}" 2>/dev/null
rm -f "$(mn_sock "$P" 1)"
check "agent stopped: node1 -> $CIP:80/TCP x$N still translated (pinned links)" served 1 tcp "$CIP" 80
MN_AGENT_ARGS="--kube-proxy-replacement on" mn_start_agent "$P" 1 "$MODE" ||
	{ log "node1's agent did not restart"; exit 1; }
AGENT[1]=$MN_AGENT_PID
after=$(links_of 1)
check "restarted: the same 4 links, now with the new agent's programs" bash -c "
	[ \"\$(cut -d' ' -f1 <<<'$before')\" = \"\$(cut -d' ' -f1 <<<'$after')\" ] &&
	[ -z \"\$(comm -12 <(cut -d' ' -f2 <<<'$before' | sort) <(cut -d' ' -f2 <<<'$after' | sort))\" ]"
check "restarted: node1 -> $CIP:53/UDP unconnected x$N" served 1 udp "$CIP" 53
wait "$STREAM"
check "the TCP stream through $CIP:80 ran through the restart without a loss" \
	jq -e '.broken == false and .errors == 0 and .messages > 50 and .echoed == .messages' "$stream_out"

echo "== f) hooks removed: --kube-proxy-replacement off (node2), node-cleanup.sh (node1)"
progs2=$(links_of 2 | cut -d' ' -f2)
kill "${AGENT[2]}" 2>/dev/null
wait "${AGENT[2]}" 2>/dev/null
rm -f "$(mn_sock "$P" 2)"
MN_AGENT_ARGS="--kube-proxy-replacement off" mn_start_agent "$P" 2 "$MODE" ||
	{ log "node2's agent did not restart"; exit 1; }
AGENT[2]=$MN_AGENT_PID
node2_off() {
	[ -z "$(links_of 2)" ] || { echo "link pins left: $(links_of 2)"; return 1; }
	# shellcheck disable=SC2086 # a list of ids
	none_attached $progs2
}
check "node2 with --kube-proxy-replacement off: no link pin, its programs off the cgroup" node2_off
check "node2's sockets are no longer translated: $CIP:80 does not answer" \
	bash -c "! nsenter --net=/run/netns/$P-node2 '$BUILD/sluice-probe' tcp $CIP 80 --timeout 500"
check "node1's hooks still there" links_attached 1
progs1=$(links_of 1 | cut -d' ' -f2)
kill "${AGENT[1]}" 2>/dev/null
wait "${AGENT[1]}" 2>/dev/null
rm -f "$(mn_sock "$P" 1)"
mkdir -p "$MN_DIR/cni-bin" "$MN_DIR/cni-conf"
check "scripts/node-cleanup.sh for node1" "$ROOT/scripts/node-cleanup.sh" --netns "$P-node1" \
	--bpffs "/sys/fs/bpf/$P-node1" --state-dir "$(mn_node_dir "$P" 1)/state" \
	--socket "$(mn_sock "$P" 1)" --cni-bin-dir "$MN_DIR/cni-bin" --cni-conf-dir "$MN_DIR/cni-conf"
# shellcheck disable=SC2086 # a list of ids
check "after node-cleanup.sh: none of node1's programs on the cgroup" none_attached $progs1

summary
