#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Backend selection, session affinity and the refusal of a Service without
# endpoints, translated by sluice (--kube-proxy-replacement on,
# --lb-algorithm maglev), pod clients on two nodes (tests/multinode/lib.sh),
# per routing mode, with no kube-proxy rule anywhere:
#
#   a) Maglev: a Service with three backends; both nodes hold the same
#      table for it, and every connection of a client pod on either node
#      lands on the backend its node's table gives the flow's hash
#      (tests/tools/lbhash.py computes the hash as the datapath does);
#   b) sessionAffinity ClientIP: many connections of one client, one
#      backend; switched to None, they spread over the backends again;
#   c) a Service without endpoints: a TCP connection is refused at once
#      (RST from the frontend, "connection refused" well before the probe's
#      timeout), a UDP datagram gets ICMP port unreachable (the connected
#      socket reports "connection refused"), and each node counts it.
#
#   tests/e2e/services-select.sh           overlay, then native
#   tests/e2e/services-select.sh overlay   one mode (or native)
#
# Last line: "services-select: N passed, M failed".
# shellcheck source-path=SCRIPTDIR
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TEST_NAME=${SVC_TEST_NAME:-services-select}
# shellcheck source=../lib/common.sh
source "$HERE/../lib/common.sh"
# shellcheck source=../multinode/lib.sh
source "$HERE/../multinode/lib.sh"
# shellcheck source=svc_lib.sh
source "$HERE/svc_lib.sh"

mn_mode services-select SVC_TEST_NAME "$0" "$@"

need_root
svc_need_bins
svc_need bpftool jq python3
svc_need_flag --lb-algorithm "backend selection"
LBHASH=$HERE/../tools/lbhash.py
python3 "$LBHASH" --self-test || { log "tests/tools/lbhash.py disagrees with the C hash"; exit 1; }

ID=slsel$$
P=$ID
MN_DIR=$(mktemp -d /tmp/sluice-services-select.XXXXXX)
CLEANUP_PATHS+=("$MN_DIR")
NS=shop
CIP=10.96.20.10
EMPTY=10.96.20.11
M=1021	# --lb-maglev-table-size: small, so the tables dump quickly
N=24	# connections per client
PODS=(n1-be n2-be n1-be3 n1-c n2-c)
declare -A IP=()
ctl() { mn_ctl "$P" "$@"; }
node_of() { printf '%s' "${1:1:1}"; }
app_of() { case $1 in *-be|*-be3) echo be ;; *) echo client ;; esac; }

node_metric() { svc_metric "$P" "$@"; } # N REASON DIRECTION

# who POD: N TCP connections to CIP:80 with --who, one line each.
who() {
	local i
	for i in $(seq "$N"); do
		probe "$P-$1" tcp "$CIP" 80 --timeout 1000 --who 2>/dev/null || echo fail
	done
}

# dump N MAP: node N's pinned map MAP as bpftool JSON.
dump() { bpftool -j map dump pinned "/sys/fs/bpf/$P-node$1/$2"; }

# table N: node N's one Maglev table, "index backend-address" per line,
# the backend ids resolved through its sluice_be4_v1.
table() {
	local outer inner be
	outer=$(dump "$1" sluice_mgl4_v1) || return 1
	be=$(dump "$1" sluice_be4_v1) || return 1
	inner=$(python3 -c '
import json, sys
e = json.loads(sys.argv[1])
if len(e) != 1:
    sys.exit("want one Maglev table, the map has %d" % len(e))
v = e[0].get("value")
if isinstance(v, list):
    v = int.from_bytes(bytes(int(x, 16) for x in v), "little")
elif isinstance(v, dict) or v is None:
    v = e[0]["formatted"]["value"]
print(v)' "$outer") || return 1
	bpftool -j map dump id "$inner" | python3 -c '
import json, sys, ipaddress
def raw(x):
    return bytes(int(b, 16) for b in x)
be = {}
for e in json.loads(sys.argv[1]):
    k, v = raw(e["key"]), raw(e["value"])
    be[int.from_bytes(k, "little")] = str(ipaddress.IPv4Address(v[:4]))
for e in json.load(sys.stdin):
    i = int.from_bytes(raw(e["key"]), "little")
    b = int.from_bytes(raw(e["value"]), "little")
    print(i, be.get(b, "none"))' "$be"
}

# by_table N POD: every --who answer of POD's connections came from the
# backend node N's table gives the flow (client address and port, CIP:80).
by_table() {
	local n=$1 pod=$2 t out
	t=$(table "$n") || return 1
	[ "$(wc -l <<<"$t")" = "$M" ] || { echo "table of $(wc -l <<<"$t") entries, not $M"; return 1; }
	out=$(who "$pod")
	python3 - "$LBHASH" "$CIP" "$M" <<PY
import importlib.util, re, sys
spec = importlib.util.spec_from_file_location("lbhash", sys.argv[1])
lb = importlib.util.module_from_spec(spec); spec.loader.exec_module(lb)
cip, m = sys.argv[2], int(sys.argv[3])
table = {}
for line in """$t""".splitlines():
    i, a = line.split()
    table[int(i)] = a
ips = {$(for p in "${PODS[@]}"; do printf '"%s": "%s", ' "$p" "${IP[$p]}"; done)}
bad = n = 0
for line in """$out""".splitlines():
    mt = re.match(r"peer=\S+ server=(\S+) client=([\d.]+):(\d+)$", line)
    if not mt:
        print("no answer:", line); bad += 1; continue
    server, caddr, cport = mt.group(1), mt.group(2), int(mt.group(3))
    want = table[lb.flow_hash4(caddr, cip, cport, 80, 6) % m]
    n += 1
    if ips[server] != want:
        print("client port %d: served by %s (%s), the table says %s" % (cport, server, ips[server], want))
        bad += 1
print("%d connections, %d off the table" % (n, bad))
sys.exit(1 if bad or n == 0 else 0)
PY
}

same_tables() {
	local a b
	a=$(table 1) && b=$(table 2) || return 1
	[ "$(wc -l <<<"$a")" = "$M" ] || { echo "table of $(wc -l <<<"$a") entries"; return 1; }
	[ "$a" = "$b" ] || { diff <(echo "$a") <(echo "$b") | head; return 1; }
}

# servers POD: the distinct backends that answered POD's N connections.
servers() { who "$1" | sed -n 's/.* server=\([^ ]*\) .*/\1/p' | sort -u | tr '\n' ' '; }

one_server() { local s; s=$(servers "$1"); echo "servers: $s"; [ "$(wc -w <<<"$s")" = 1 ]; }
spread() { local s; s=$(servers "$1"); echo "servers: $s"; [ "$(wc -w <<<"$s")" -ge 2 ]; }

# refused_fast POD PROTO PORT: the probe to EMPTY:PORT fails with
# "connection refused" in well under its 3 s timeout.
refused_fast() {
	local t0 t1 err
	t0=$(date +%s%N)
	err=$(probe "$P-$1" "$2" "$EMPTY" "$3" --timeout 3000 2>&1 >/dev/null) && {
		echo "answered"
		return 1
	}
	t1=$(date +%s%N)
	echo "$err ($(((t1 - t0) / 1000000)) ms)"
	grep -q "connection refused" <<<"$err" && [ $(((t1 - t0) / 1000000)) -lt 1500 ]
}

service() { # AFFINITY: the Service web (3 backends) and the Service empty
	cat <<EOF
apiVersion: v1
kind: Service
metadata: {namespace: $NS, name: web}
spec:
  clusterIP: $CIP
  sessionAffinity: $1
  ports:
  - {name: http, protocol: TCP, port: 80, targetPort: http}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {namespace: $NS, name: web-1, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, protocol: TCP, port: 8080}]
endpoints:
- {addresses: [${IP[n1-be]}], nodeName: node1, conditions: {ready: true}}
- {addresses: [${IP[n2-be]}], nodeName: node2, conditions: {ready: true}}
- {addresses: [${IP[n1-be3]}], nodeName: node1, conditions: {ready: true}}
---
apiVersion: v1
kind: Service
metadata: {namespace: $NS, name: empty}
spec:
  clusterIP: $EMPTY
  ports:
  - {name: http, protocol: TCP, port: 80}
  - {name: dns, protocol: UDP, port: 53}
EOF
}

echo "== two nodes (--routing $MODE), --kube-proxy-replacement on --lb-algorithm maglev"
mn_topology "$P" 2 || { log "could not build the topology"; exit 1; }
svc_start_agents "--kube-proxy-replacement on --lb-algorithm maglev --lb-maglev-table-size $M"
svc_apply_nodes
svc_add_pods --tcp 8080
svc_apply_pods

echo "== a) Maglev: the same table on both nodes, each connection on its table entry"
check "Services web (3 backends) and empty (none) applied to both agents" \
	mn_apply_all "$P" 2 < <(service None)
check "both nodes hold the same $M-entry table for web" same_tables
for client in n1-c n2-c; do
	n=$(node_of "$client")
	check "$client -> $CIP:80/TCP x$N: each connection served by node$n's table entry for its hash" \
		by_table "$n" "$client"
	check "$client: the connections spread over the backends (affinity None)" spread "$client"
done

echo "== b) sessionAffinity ClientIP, then None again"
check "web switched to sessionAffinity ClientIP" mn_apply_all "$P" 2 < <(service ClientIP)
for client in n1-c n2-c; do
	check "$client -> $CIP:80/TCP x$N: one backend for all" one_server "$client"
done
h=$(node_metric 1 lb-affinity-hit egress)
check "node1 counted affinity hits (lb-affinity-hit $h)" test "$h" -ge "$((N - 1))"
check "web back to sessionAffinity None" mn_apply_all "$P" 2 < <(service None)
for client in n1-c n2-c; do
	check "$client -> $CIP:80/TCP x$N: spread over the backends again" spread "$client"
done

echo "== c) a Service without endpoints refuses at once"
for client in n1-c n2-c; do
	n=$(node_of "$client")
	r0=$(node_metric "$n" lb-reject-tcp egress)
	u0=$(node_metric "$n" lb-reject-udp egress)
	check "$client -> $EMPTY:80/TCP: connection refused, fast" refused_fast "$client" tcp 80
	check "$client -> $EMPTY:53/UDP: ICMP port unreachable (connection refused), fast" \
		refused_fast "$client" udp 53
	check "node$n counted the refusals (lb-reject-tcp, lb-reject-udp)" bash -c "
		[ $(node_metric "$n" lb-reject-tcp egress) -gt $r0 ] &&
		[ $(node_metric "$n" lb-reject-udp egress) -gt $u0 ]"
done
for n in 1 2; do
	check "node$n: still no kube-proxy rules" svc_no_kube_proxy "$P-node$n"
done

summary
