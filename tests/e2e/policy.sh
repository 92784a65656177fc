#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Policy end to end on one node, through sluicectl and the real CNI plugin:
# apply semantics (created/configured/unchanged, all or nothing, delete),
# enforcement in place before a new pod's first packet, label updates,
# connection tracking (established flows kept, replies never dropped),
# sluice's CRDs (Deny precedence, ICMP, Audit), explain, and policy that
# survives an agent restart; Services and EndpointSlices applied, shown by
# get services and deleted (read only: not translated yet). The
# NetworkPolicy semantics matrix is tests/netpol.
set -uo pipefail
TEST_NAME=policy
source "$(dirname "$0")/../lib/common.sh"
need_root

ID=slpol$$
NODE=$ID-node
DIR=$(mktemp -d /tmp/sluice-policy.XXXXXX)
BPFFS=/sys/fs/bpf/$ID
CIDR=10.242.0.0/24
SOCK=$DIR/agent.sock
CLEANUP_PATHS+=("$DIR" "$BPFFS")
CONF=$(printf '{"cniVersion":"1.1.0","name":"sluice","type":"sluice-cni","socket":"%s"}' "$SOCK")
ctl() { "$BUILD/sluicectl" --socket "$SOCK" "$@"; }
apply() { ctl apply -f - ; }
raw_call() { # REQUEST: one exchange on the socket, as an old client would
	python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.argv[2].encode())
s.shutdown(socket.SHUT_WR); print(b"".join(iter(lambda: s.recv(65536), b"")).decode())' "$SOCK" "$1"
}
export -f raw_call; export SOCK
declare -A IP
# Services are read and shown here, not translated (tests/e2e/services.sh
# translates them): the agent runs with the replacement off, which is no
# longer the default.
AGENT_ARGS="${AGENT_ARGS:-} --kube-proxy-replacement off"

pod_add() { # NS NAME: a pod through the CNI plugin, with echo servers
	local ns=$1 name=$2
	netns_add "$ID-$ns-$name"
	IP[$ns/$name]=$(POD_NAMESPACE=$ns cni ADD "$name" "/run/netns/$ID-$ns-$name" "$CONF" |
		jq -r '.ips[0].address' | cut -d/ -f1)
	serve "$ID-$ns-$name" --tcp 8080 --tcp 8081 --udp 8080 --udp 8081
}
reach() { probe "$ID-${1%/*}-${1#*/}" "${4:-tcp}" "${IP[$2]}" "$3" --timeout 400 >/dev/null 2>&1; }
blocked() { ! reach "$@"; }

netns_add "$NODE"
start_agent "$NODE" "$CIDR" "$DIR" || exit 1

echo "== objects: created, unchanged, configured"
out=$(apply <<'YAML'
apiVersion: v1
kind: Namespace
metadata: {name: x, labels: {team: red}}
---
apiVersion: v1
kind: Namespace
metadata: {name: "y", labels: {team: blue}}
---
apiVersion: v1
kind: Pod
metadata: {namespace: x, name: a, labels: {app: web}}
---
apiVersion: v1
kind: Pod
metadata: {namespace: x, name: b, labels: {app: db}}
spec:
  containers:
  - name: db
    ports: [{name: sql, containerPort: 8080}]
YAML
)
check "apply says what it created" test "$out" = "$(printf 'namespace x created\nnamespace y created\npod x/a created\npod x/b created')"
pod_add x a
pod_add x b
pod_add y c
check "the Pod objects joined their endpoints" \
	bash -c "'$BUILD/sluicectl' --socket '$SOCK' get pods -A -o json | jq -e '[.items[] | select(.local and .namespace == \"x\") | .labels.app] | sort == [\"db\", \"web\"]'"
out=$(apply <<'YAML'
apiVersion: v1
kind: Namespace
metadata: {name: x, labels: {team: red}}
YAML
)
check "re-applying the same object: unchanged" test "$out" = "namespace x unchanged"

echo "== all or nothing"
out=$(apply 2>&1 <<'YAML'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: x, name: fine}
spec: {podSelector: {}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: x, name: broken}
spec:
  podSelector: {}
  ingress: [{ports: [{port: 70000}]}]
YAML
)
check "a bad document is refused, naming document and field" \
	bash -c "grep -q 'document 2' <<<'$out' && grep -q 'ports\[0\].port' <<<'$out'"
check "and nothing of the file was applied" \
	bash -c "'$BUILD/sluicectl' --socket '$SOCK' get policies -A -o json | jq -e '.items | length == 0'"

echo "== field validation: an unknown field refuses the file (kubectl's --validate)"
# The typo leaves a policy with no rules: applied, it would isolate x/a
# with nothing allowed, an outage without a word.
cat >"$DIR/typo.yaml" <<'YAML'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: x, name: web-typo}
spec:
  podSelector: {matchLabels: {app: web}}
  ingres:
  - from: [{podSelector: {}}]
YAML
TYPO="$DIR/typo.yaml: document 1: NetworkPolicy x/web-typo: spec.ingres: unknown field; did you mean spec.ingress?"
ctl apply -f "$DIR/typo.yaml" >"$DIR/out" 2>"$DIR/err"
rc=$?
check "strict (the default): refused, exit status 1" test "$rc" -eq 1
check "the error names the file, document, object and field, and suggests spec.ingress" \
	grep -qxF "sluicectl: $TYPO; nothing was applied" "$DIR/err"
check "nothing was applied: no policy" \
	bash -c "'$BUILD/sluicectl' --socket '$SOCK' get policies -A -o json | jq -e '.items | length == 0'"
check "x/a is still open: x/b -> x/a:8080" reach x/b x/a 8080
out=$(raw_call '{"op":"apply","objects":[{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"namespace":"x","name":"web-typo"},"spec":{"podSelector":{},"ingres":[]}}]}')
check "an API request without \"validate\" is strict too (code 7, the field named)" \
	jq -e '.ok == false and .error.code == 7 and (.error.msg | contains("object 1: NetworkPolicy x/web-typo: spec.ingres: unknown field"))' <<<"$out"
ctl apply -f "$DIR/typo.yaml" --validate=warn >"$DIR/out" 2>"$DIR/err"
rc=$?
check "--validate=warn applies it" bash -c "test $rc -eq 0 && grep -qxF 'networkpolicy x/web-typo created' '$DIR/out'"
check "and prints the unknown field as a warning on stderr" grep -qxF "Warning: $TYPO" "$DIR/err"
check "what strict mode prevents: x/a is isolated with nothing allowed" blocked x/b x/a 8080
ctl apply -f "$DIR/typo.yaml" --validate=ignore >"$DIR/out" 2>"$DIR/err"
rc=$?
check "--validate=ignore: applied without a word" \
	bash -c "test $rc -eq 0 && grep -qxF 'networkpolicy x/web-typo unchanged' '$DIR/out' && test ! -s '$DIR/err'"
ctl delete -f "$DIR/typo.yaml" >/dev/null
check "deleted: x/a open again" reach x/b x/a 8080

echo "== a NetworkPolicy is enforced when apply returns"
apply >/dev/null <<'YAML'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: x, name: db-from-web}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: web}}}]
    ports: [{port: sql}]
YAML
check "x/a (web) -> x/b:8080 allowed (named port)" reach x/a x/b 8080
check "x/a -> x/b:8081 dropped" blocked x/a x/b 8081
check "x/a -> x/b UDP 8081 dropped" blocked x/a x/b 8081 udp
check "y/c -> x/b:8080 dropped" blocked y/c x/b 8080
check "x/b -> x/a still open (x/a not isolated)" reach x/b x/a 8080
check "the node reaches x/b, even on a port no rule opens" probe "$NODE" tcp "${IP[x/b]}" 8081 --timeout 400
check "drops are counted as drop-policy" \
	bash -c "'$BUILD/sluicectl' --socket '$SOCK' metrics -o json | jq -e '[.metrics[] | select(.reason == \"drop-policy\")] | length > 0'"

echo "== explain"
out=$(ctl policy explain --from y/c --to x/b --port 8080/TCP)
rc=$?
check "explain: DENIED, exit 1, names the isolating policy" \
	bash -c "[ $rc -eq 1 ] && grep -q DENIED <<<'$out' && grep -q 'x/db-from-web' <<<'$out'"
out=$(ctl policy explain --from x/a --to x/b --port 8080/TCP)
rc=$?
check "explain: ALLOWED, exit 0, names the rule" \
	bash -c "[ $rc -eq 0 ] && grep -q ALLOWED <<<'$out' && grep -q 'rule 0' <<<'$out'"
check "explain: the datapath agrees" \
	bash -c "'$BUILD/sluicectl' --socket '$SOCK' -o json policy explain --from y/c --to x/b --port 8080/TCP | jq -e '.datapath.allowed == false and .allowed == false'"

echo "== connection tracking: established flows are kept, replies pass"
probe "$ID-x-a" stream "${IP[x/b]}" 8080 --seconds 3 --interval-ms 20 >"$DIR/stream.json" 2>&1 &
STREAM=$!
sleep 0.7
apply >/dev/null <<'YAML'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: x, name: db-from-web}
spec:
  podSelector: {matchLabels: {app: db}}
  policyTypes: [Ingress, Egress]
YAML
check "after deny-all, a new connection x/a -> x/b is dropped" blocked x/a x/b 8080
wait "$STREAM"
rc=$?
check "the established connection lived on, replies included" \
	bash -c "[ $rc -eq 0 ] && jq -e '.broken == false and .errors == 0' '$DIR/stream.json'"

echo "== a pod created after the policy is isolated from its first packet"
apply >/dev/null <<'YAML'
apiVersion: v1
kind: Pod
metadata: {namespace: "y", name: d, labels: {app: locked}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: "y", name: locked-down}
spec:
  podSelector: {matchLabels: {app: locked}}
  policyTypes: [Egress]
YAML
pod_add y d
check "y/d's very first connection is dropped" blocked y/d x/a 8080
check "y/c (same namespace, other labels) is free" reach y/c x/a 8080

echo "== label changes take effect without re-applying the policy"
apply >/dev/null <<'YAML'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: x, name: db-from-web}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {team: blue}}}]
YAML
check "y/c (namespace team=blue) -> x/b allowed" reach y/c x/b 8080
apply >/dev/null <<'YAML'
apiVersion: v1
kind: Namespace
metadata: {name: "y", labels: {team: green}}
YAML
check "namespace relabelled: y/c -> x/b dropped" blocked y/c x/b 8080
apply >/dev/null <<'YAML'
apiVersion: v1
kind: Pod
metadata: {namespace: "y", name: d, labels: {app: free}}
YAML
check "pod relabelled out of locked-down: y/d reaches x/a" reach y/d x/a 8080

echo "== sluice CRDs: Deny wins, ICMP rules, Audit mode"
apply >/dev/null <<'YAML'
apiVersion: sluice.io/v1alpha1
kind: SluiceNetworkPolicy
metadata: {namespace: x, name: web-guard}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - action: Deny
    from: [{namespaceSelector: {matchLabels: {team: green}}}]
    ports: [{port: 8081}]
  - action: Allow
    ports: [{port: 8080}, {port: 8081}]
  - icmp: [{type: 8}]
YAML
check "Deny wins over Allow: y/c -> x/a:8081 dropped" blocked y/c x/a 8081
check "y/c -> x/a:8080 allowed" reach y/c x/a 8080
check "ICMP echo allowed by the icmp rule" probe "$ID-y-c" ping "${IP[x/a]}" --count 1 --timeout 400
check "UDP not covered: dropped" blocked y/c x/a 8081 udp
check "explicit denies are counted as drop-policy-deny" \
	bash -c "'$BUILD/sluicectl' --socket '$SOCK' metrics -o json | jq -e '[.metrics[] | select(.reason == \"drop-policy-deny\")] | length > 0'"
apply >/dev/null <<'YAML'
apiVersion: sluice.io/v1alpha1
kind: SluiceClusterNetworkPolicy
metadata: {name: audit-y}
spec:
  mode: Audit
  namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: "y"}}
  podSelector: {}
  policyTypes: [Egress]
YAML
check "Audit mode drops nothing" reach y/c x/a 8080
check "Audit mode counts what it would drop" \
	bash -c "'$BUILD/sluicectl' --socket '$SOCK' metrics -o json | jq -e '[.metrics[] | select(.reason == \"audit-would-drop\")] | length > 0'"

echo "== delete"
out=$(ctl delete -f - 2>&1 <<'YAML'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: x, name: never-existed}
YAML
)
check "deleting a missing object is an error naming it" grep -q 'never-existed' <<<"$out"
check "with --ignore-not-found it is not" ctl delete --ignore-not-found -f - <<'YAML'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: x, name: never-existed}
YAML
out=$(ctl delete -f - <<'YAML'
apiVersion: sluice.io/v1alpha1
kind: SluiceNetworkPolicy
metadata: {namespace: x, name: web-guard}
YAML
)
check "delete says what it deleted" test "$out" = "sluicenetworkpolicy x/web-guard deleted"
check "after the delete, y/c -> x/a:8081 is open again" reach y/c x/a 8081

echo "== Services and EndpointSlices: read, shown, not translated yet"
svc_json() { ctl get services -A -o json; }
out=$(apply 2>&1 <<YAML
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {namespace: x, name: db-1, labels: {kubernetes.io/service-name: db}}
addressType: IPv4
ports: [{name: pg, port: 8080}]
endpoints:
- {addresses: [${IP[x/b]}], nodeName: $NODE}
- {addresses: [10.243.0.200], nodeName: other, conditions: {ready: false, serving: true, terminating: true}}
---
apiVersion: v1
kind: Service
metadata: {namespace: x, name: db}
spec:
  type: NodePort
  clusterIP: 10.96.7.1
  ports: [{name: pg, port: 5432, targetPort: pg, nodePort: 30432}]
YAML
)
check "a Service and its slice are applied" \
	bash -c "grep -qx 'service x/db created' <<<'$out' && grep -qx 'endpointslice x/db-1 created' <<<'$out'"
check "get services -o json: the frontends" \
	bash -c "'$BUILD/sluicectl' --socket '$SOCK' get services -A -o json | jq -e '.items[] | select(.name == \"db\") | [.frontends[].frontend] == [\"10.96.7.1:5432/TCP\", \"*:30432/TCP\"]'"
check "get services -o json: the backends with target port, state and locality" \
	bash -c "'$BUILD/sluicectl' --socket '$SOCK' get services -A -o json | jq -e '[.items[] | select(.name == \"db\") | .ports[0].backends[] | \"\\(.address):\\(.port) \\(.state) \\(.local)\"] == [\"${IP[x/b]}:8080 ready true\", \"10.243.0.200:8080 terminating false\"]'"
check "get services says Services are not translated (--kube-proxy-replacement off)" \
	bash -c "'$BUILD/sluicectl' --socket '$SOCK' get services -A | grep -q 'does not translate Services' && '$BUILD/sluicectl' --socket '$SOCK' get services -A -o json | jq -e '.translated == false and ([.items[].translated] | all(. == false))'"
out=$(apply 2>&1 <<'YAML'
apiVersion: v1
kind: Service
metadata: {namespace: "y", name: thief}
spec:
  clusterIP: 10.96.7.2
  externalIPs: [10.96.7.1]
  ports: [{port: 5432}]
YAML
)
check "a second Service on the same frontend is refused, naming both and the field" \
	bash -c "grep -q 'Service y/thief: spec.externalIPs: frontend 10.96.7.1:5432/TCP is the frontend of Service x/db already; nothing was applied' <<<'$out'"
out=$(apply 2>&1 <<'YAML'
apiVersion: v1
kind: Service
metadata: {namespace: "y", name: bad}
spec:
  type: NodePort
  clusterIP: 10.96.7.3
  ports: [{port: 80, nodePort: 70000}]
YAML
)
check "a nodePort outside 1-65535 is refused, naming object and field" \
	bash -c "grep -q 'Service y/bad: spec.ports\[0\].nodePort: 70000 is outside 1-65535' <<<'$out'"
check "and neither was stored" \
	bash -c "'$BUILD/sluicectl' --socket '$SOCK' get services -A -o json | jq -e '[.items[].name] == [\"db\"]'"
out=$(ctl delete -f - <<'YAML'
apiVersion: v1
kind: Service
metadata: {namespace: x, name: db}
YAML
)
check "delete service says so" test "$out" = "service x/db deleted"
check "the slice without its Service stays, and shows nothing" \
	bash -c "'$BUILD/sluicectl' --socket '$SOCK' get services -A -o json | jq -e '.items == []'"
out=$(apply <<'YAML'
apiVersion: v1
kind: Service
metadata: {namespace: x, name: db}
spec:
  type: NodePort
  clusterIP: 10.96.7.1
  ports: [{name: pg, port: 5432, targetPort: pg, nodePort: 30432}]
YAML
)
check "applied again, it joins its kept slice" \
	bash -c "'$BUILD/sluicectl' --socket '$SOCK' get services -A -o json | jq -e '.items[0].ports[0].backends | length == 2'"

echo "== policy survives an agent restart"
{ kill -9 "$AGENT_PID"; wait "$AGENT_PID"; } 2>/dev/null
check "with no agent, x/b still only takes team=blue namespaces" blocked y/c x/b 8080
start_agent "$NODE" "$CIDR" "$DIR" || exit 1
check "the restarted agent has the policies" \
	bash -c "'$BUILD/sluicectl' --socket '$SOCK' get policies -A -o json | jq -e '[.items[].name] | sort == [\"audit-y\", \"db-from-web\", \"locked-down\"]'"
check "and enforces them" blocked y/c x/b 8080
check "the restarted agent has the Service and its backends" \
	bash -c "'$BUILD/sluicectl' --socket '$SOCK' get services -A -o json | jq -e '.items[0].ports[0].backends | length == 2'"
check "identities are listed with their pods" \
	bash -c "'$BUILD/sluicectl' --socket '$SOCK' get identities -A -o json | jq -e '[.items[] | select(.pods | index(\"x/b\"))] | length == 1'"

echo "== answers of any size: get in pages, status of the control plane"
# 3000 pods with 24 long labels each: some 4.8 MB of get pods JSON, more
# than the 4 MiB an answer may be. Applied in three requests (each must be
# under 4 MiB too), with a policy selecting them all.
before=$(ctl get pods -A -o json | jq '.items | length')
big_pods() { # FROM TO: Pod objects big/p-FROM … big/p-TO, as a JSON list
	jq -n --argjson from "$1" --argjson to "$2" '{apiVersion: "v1", kind: "List", items: [
		range($from; $to + 1) as $i | {apiVersion: "v1", kind: "Pod",
		metadata: {namespace: "big", name: "p-\($i)", labels: ([range(24) as $k |
		{key: "label-\($k).example.com", value: "value-\($k)-of-pod-\($i)-padded-to-be-long"}]
		| from_entries)}}]}'
}
export -f big_pods
check "3000 pods applied in three requests" bash -c "
	for r in '1 1000' '1001 2000' '2001 3000'; do
		big_pods \$r | '$BUILD/sluicectl' --socket '$SOCK' apply -f - >/dev/null || exit 1
	done"
apply >/dev/null <<'YAML'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: big, name: all-big}
spec:
  podSelector: {}
YAML
check "the whole list is larger than an answer may be" \
	bash -c "test \$('$BUILD/sluicectl' --socket '$SOCK' get pods -A -o json | wc -c) -gt $((4 << 20))"
out=$(ctl get pods -A -o json --chunk-size 0 2>&1)
check "asked in one answer, the agent refuses, naming --chunk-size" \
	bash -c "grep -q 'more than the 4 MiB an answer may be' <<<'$out' && grep -q -- '--chunk-size' <<<'$out'"
check "in pages (the default 500), every pod once, in (namespace, name) order" \
	bash -c "'$BUILD/sluicectl' --socket '$SOCK' get pods -A -o json | jq -e --argjson n $((before + 3000)) \
		'[.items[] | [.namespace, .name]] as \$k | (\$k | length) == \$n and (\$k | unique) == \$k'"
check "pages of 7 give the same list" \
	bash -c "diff <('$BUILD/sluicectl' --socket '$SOCK' get pods -A -o json --chunk-size 7 | jq -c '.items[]') \
		<('$BUILD/sluicectl' --socket '$SOCK' get pods -A -o json | jq -c '.items[]')"
check "the table has one header and a row per pod" \
	bash -c "test \$('$BUILD/sluicectl' --socket '$SOCK' get pods -A --chunk-size 1000 | wc -l) = $((before + 3001))"
check "policies in pages of one: all of them, the new one selecting its pods (the first 1000 named, all counted)" \
	bash -c "'$BUILD/sluicectl' --socket '$SOCK' get policies -A -o json --chunk-size 1 | jq -e \
		'(.items | length) == 4 and ([.items[] | select(.name == \"all-big\")][0] |
		 (.selectedPods | length) == 1000 and .selectedPodsCount == 3000 and
		 .selectedPods == (.selectedPods | sort_by(split(\"/\")))) '"
check "the table says how many pods a policy selects in all" \
	bash -c "'$BUILD/sluicectl' --socket '$SOCK' get policies -A | grep all-big | grep -q '(3000 in all)'"
check "get identities lists every pod once, under the identity get pods gives it" \
	bash -c "diff <('$BUILD/sluicectl' --socket '$SOCK' get pods -A -o json |
			jq -c '[.items[] | \"\\(.namespace)/\\(.name) \\(.identity)\"] | sort') \
		<('$BUILD/sluicectl' --socket '$SOCK' get identities -A -o json |
			jq -c '[.items[] | .id as \$i | (.pods // [])[] | \"\\(.) \\(\$i)\"] | sort')"
check "a continue token of another kind is refused, saying how to start again" \
	bash -c "'$BUILD/sluicectl' --socket '$SOCK' get services -A --chunk-size 1 -o json >/dev/null &&
		raw_call '{\"op\":\"get\",\"what\":\"pods\",\"limit\":5,\"continue\":\"policies:x/y/0\"}' |
		jq -e '.ok == false and (.error.details | test(\"start again without it\"))'"
check "an old client (no limit) gets the whole list when it fits" \
	bash -c "raw_call '{\"op\":\"get\",\"what\":\"policies\"}' | jq -e '(.result.items | length) == 4 and (.result | has(\"continue\") | not)'"
st=$(ctl status -o json)
check "status counts the objects per kind" \
	jq -e --argjson n $((before + 3000 - 4)) '.controlPlane.objects.Pod >= $n and .controlPlane.objects.NetworkPolicy >= 2 and .controlPlane.objectCount > 3000' <<<"$st"
check "status gives the bytes the store holds and the agent's memory" \
	jq -e '.controlPlane.storeBytes > 4000000 and .controlPlane.memory.vmRSS > 0 and .controlPlane.memory.vmHWM >= .controlPlane.memory.vmRSS' <<<"$st"
check "status gives the last policy sync: when, how long, how many entries" \
	jq -e '.controlPlane.lastPolicySync | .ok and .durationMs > 0 and .entries > 0 and (.at | test("^20[0-9-]+T"))' <<<"$st"
check "status counts the policy and Services syncs" \
	jq -e '.controlPlane.policySyncs > 0 and .controlPlane.servicesSyncs > 0' <<<"$st"
check "status gives the last Services sync" \
	jq -e '.controlPlane.lastServicesSync | .ok and .durationMs >= 0' <<<"$st"
check "the text status shows them" \
	bash -c "'$BUILD/sluicectl' --socket '$SOCK' status | grep -E '^objects: +[0-9]+ \\(.*Pod [0-9]+' &&
		'$BUILD/sluicectl' --socket '$SOCK' status | grep -E '^memory: .*resident' &&
		'$BUILD/sluicectl' --socket '$SOCK' status | grep -E '^policy sync: done at' &&
		'$BUILD/sluicectl' --socket '$SOCK' status | grep -E '^syncs: +[1-9][0-9]* policy, [1-9]'"
check "the big pods and their policy deleted" bash -c "
	for r in '1 1000' '1001 2000' '2001 3000'; do
		big_pods \$r | '$BUILD/sluicectl' --socket '$SOCK' delete -f - >/dev/null || exit 1
	done
	printf 'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {namespace: big, name: all-big}\n' |
		'$BUILD/sluicectl' --socket '$SOCK' delete -f - >/dev/null"

echo "== DEL removes the pods' policy state"
for p in x/a x/b y/c y/d; do cni DEL "${p#*/}" "/run/netns/$ID-${p%/*}-${p#*/}" "$CONF"; done
check "no policy entries left for deleted endpoints" \
	test "$(bpftool map dump pinned "$BPFFS/sluice_pol_v1" -j | jq length)" = 0
check "the ipcache holds only the node's router address" \
	test "$(bpftool map dump pinned "$BPFFS/sluice_ipc_v2" -j | jq length)" = 1

summary
