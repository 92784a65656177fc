#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# sluicectl's kubectl verbs and flags against a running agent: get KIND
# [NAME|NS/NAME] with -n/-A (kubectl's "default" namespace otherwise), -l
# label selectors, -o json|yaml|wide|name, --no-headers and --watch;
# describe of a policy (the pods it selects, each rule's pods), a pod (the
# policies per direction, its endpoint) and a node; delete KIND NAME; the
# errors for a misplaced or mistyped word; the help. Output formats against
# fixed answers are tests/unit/test_cli_output.c.
set -uo pipefail
TEST_NAME=cli
source "$(dirname "$0")/../lib/common.sh"
need_root

ID=slcli$$
NODE=$ID-node
DIR=$(mktemp -d /tmp/sluice-cli.XXXXXX)
BPFFS=/sys/fs/bpf/$ID
SOCK=$DIR/agent.sock
CLEANUP_PATHS+=("$DIR" "$BPFFS")
CONF=$(printf '{"cniVersion":"1.1.0","name":"sluice","type":"sluice-cni","socket":"%s"}' "$SOCK")
ctl() { "$BUILD/sluicectl" --socket "$SOCK" "$@"; }
export -f ctl; export BUILD SOCK
# usage_error WANT ARGS...: exit status 2 and WANT (a grep -E pattern) on stderr
usage_error() {
	local want=$1 err rc
	shift
	err=$(ctl "$@" 2>&1 >/dev/null); rc=$?
	echo "exit $rc: $err"
	[ "$rc" = 2 ] && grep -qE -- "$want" <<<"$err"
}

netns_add "$NODE"
AGENT_ARGS="${AGENT_ARGS:-} --kube-proxy-replacement off"
start_agent "$NODE" 10.243.0.0/24 "$DIR" || exit 1

ctl apply -f - >/dev/null <<'YAML' || { log "apply failed"; exit 1; }
apiVersion: v1
kind: Namespace
metadata: {name: default}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {team: red}}
---
apiVersion: v1
kind: Pod
metadata: {namespace: shop, name: web, labels: {app: web, tier: front}}
---
apiVersion: v1
kind: Pod
metadata: {namespace: shop, name: web-test, labels: {app: web, tier: test}}
---
apiVersion: v1
kind: Pod
metadata: {namespace: shop, name: db, labels: {app: db}}
---
apiVersion: v1
kind: Pod
metadata: {namespace: default, name: tool, labels: {app: tool}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: shop, name: db-from-web}
spec:
  podSelector: {matchLabels: {app: db}}
  policyTypes: [Ingress]
  ingress:
  - from: [{podSelector: {matchLabels: {app: web}}}]
    ports: [{protocol: TCP, port: 5432}]
---
apiVersion: sluice.io/v1alpha1
kind: SluiceNetworkPolicy
metadata: {namespace: shop, name: audit-web}
spec:
  mode: Audit
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Egress]
  egress: []
YAML
ctl apply -f - >/dev/null <<YAML || { log "apply of the Node failed"; exit 1; }
apiVersion: v1
kind: Node
metadata: {name: $NODE}
spec: {podCIDR: 10.243.0.0/24}
status: {addresses: [{type: InternalIP, address: 192.0.2.10}]}
YAML
# one pod with an endpoint on this node, for describe pod and get endpoints
netns_add "$ID-db"
POD_NAMESPACE=shop cni ADD db "/run/netns/$ID-db" "$CONF" >/dev/null || { log "CNI ADD failed"; exit 1; }

echo "== get: namespaces, names, selectors"
check "get pods without -n: kubectl's default namespace only" \
	bash -c "out=\$(ctl get pods); echo \"\$out\"; grep -q tool <<<\"\$out\" && ! grep -q web <<<\"\$out\""
check "get pods -n shop: that namespace's three" \
	bash -c "ctl get pods -n shop -o json | jq -e '[.items[].name] | sort == [\"db\", \"web\", \"web-test\"]'"
check "get po -A: every namespace" \
	bash -c "ctl get po -A -o json | jq -e '[.items[].name] | sort == [\"db\", \"tool\", \"web\", \"web-test\"]'"
check "get pods -A --no-headers: no header line" \
	bash -c "out=\$(ctl get pods -A --no-headers); echo \"\$out\"; [ \$(wc -l <<<\"\$out\") = 4 ] && ! grep -q NAMESPACE <<<\"\$out\""
check "-l 'app in (web,db),tier!=test' -o name: pod/web and pod/db" \
	bash -c "out=\$(ctl get pods -n shop -l 'app in (web,db),tier!=test' -o name); echo \"\$out\"; [ \"\$out\" = \$'pod/db\npod/web' ]"
check "-l '!tier': the pod without the label" \
	bash -c "[ \"\$(ctl get pods -n shop -l '!tier' -o name)\" = pod/db ]"
check "-l app==web,tier: both web pods" \
	bash -c "[ \"\$(ctl get pods -n shop --selector app==web,tier -o name | wc -l)\" = 2 ]"
check "-l on namespaces: team=red" \
	bash -c "[ \"\$(ctl get ns -l team=red -o name)\" = namespace/shop ]"
check "get pod NAME -n NS -o json: the object itself" \
	bash -c "ctl get pod web -n shop -o json | jq -e '.name == \"web\" and .labels.tier == \"front\"'"
check "get pod NS/NAME -o yaml: the object as YAML" \
	bash -c "ctl get pod shop/web -o yaml | python3 -c 'import sys, yaml; d = yaml.safe_load(sys.stdin); assert d[\"name\"] == \"web\" and d[\"labels\"][\"app\"] == \"web\", d'"
check "get pods -A -o yaml: a list kubectl's reader reads" \
	bash -c "ctl get pods -A -o yaml | python3 -c 'import sys, yaml; d = yaml.safe_load(sys.stdin); assert len(d[\"items\"]) == 4, d'"
check "get policy shop/db-from-web (NS/NAME)" \
	bash -c "out=\$(ctl get policy shop/db-from-web); echo \"\$out\"; grep -q 'db-from-web.*shop/db' <<<\"\$out\""
check "get netpol -n shop: NetworkPolicies only; snp: SluiceNetworkPolicies only" \
	bash -c "[ \"\$(ctl get netpol -n shop -o name)\" = networkpolicy.networking.k8s.io/db-from-web ] &&
		[ \"\$(ctl get snp -n shop -o name)\" = sluicenetworkpolicy.sluice.io/audit-web ]"
check "get pod/web -n shop (kubectl's KIND/NAME)" \
	bash -c "ctl get pod/web -n shop --no-headers | grep -q '^shop *web '"
check "get pods -n shop db nothere: db printed, nothere named, exit 1" \
	bash -c "out=\$(ctl get pods -n shop db nothere 2>&1); rc=\$?; echo \"\$out\"; [ \$rc = 1 ] && grep -q '^shop *db' <<<\"\$out\" && grep -q 'pods \"nothere\" not found in namespace shop' <<<\"\$out\""
check "get ep -o wide: this node's endpoint, whatever -n default says" \
	bash -c "ctl get ep -o wide | grep -q '^db *shop/db *eth0 .* ready'"
check "get endpoints -o json keeps its list key" \
	bash -c "ctl get endpoints -o json | jq -e '.endpoints | length == 1'"
check "nothing found: says which namespace and -A" \
	bash -c "ctl get svc 2>&1 | grep -q 'No resources found in default namespace (-A'"

echo "== describe"
out=$(ctl describe policy shop/db-from-web 2>&1)
echo "$out" | sed 's/^/       /'
check "describe policy: what it selects" grep -q '^Selects: *shop/db$' <<<"$out"
check "describe policy: the rule in words" grep -q 'allow from pods app=web in namespace shop, on TCP/5432' <<<"$out"
check "describe policy: the pods the rule admits" grep -q 'admits: *shop/web, shop/web-test$' <<<"$out"
check "describe policy: enforced" grep -q '^Mode: *Enforce' <<<"$out"
check "describe snp: audit, no egress rule" \
	bash -c "out=\$(ctl describe snp -n shop audit-web); echo \"\$out\"; grep -q '^Mode: *Audit' <<<\"\$out\" && grep -q 'none: every egress' <<<\"\$out\""
out=$(ctl describe pod -n shop db 2>&1)
echo "$out" | sed 's/^/       /'
check "describe pod: the ingress policy that selects it" grep -q 'Ingress: *NetworkPolicy shop/db-from-web (Enforce)' <<<"$out"
check "describe pod: not isolated for egress" grep -q 'Egress: *none' <<<"$out"
check "describe pod: its endpoint" grep -q '^Endpoint: *container db, eth0' <<<"$out"
check "describe node: its pods here" \
	bash -c "ctl describe node $NODE | grep -q '^Pods here: *shop/db'"

echo "== --watch"
ctl get pods -n shop -w >"$DIR/watch" 2>&1 &
WATCH=$!
CLEANUP_PIDS+=("$WATCH")
# a watch of a namespace with no pod yet
ctl get pods -n later --watch >"$DIR/watch-later" 2>/dev/null &
WATCH_LATER=$!
CLEANUP_PIDS+=("$WATCH_LATER")
sleep 0.5
ctl apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Pod
metadata: {namespace: shop, name: web-test, labels: {app: web, tier: canary}}
---
apiVersion: v1
kind: Pod
metadata: {namespace: later, name: new, labels: {app: new}}
YAML
check "get -w prints the changed row within the interval" \
	eventually 3 grep -q 'web-test.*tier=canary' "$DIR/watch"
check "get -w of an empty namespace: the header, then the new pod's row" \
	eventually 3 bash -c "grep -q '^NAMESPACE' '$DIR/watch-later' && grep -q '^later *new ' '$DIR/watch-later'"
kill "$WATCH" "$WATCH_LATER" 2>/dev/null
check "get -w: the header once, the unchanged rows once" \
	bash -c "cat '$DIR/watch'; [ \$(grep -c NAMESPACE '$DIR/watch') = 1 ] && [ \$(grep -c '^shop *db ' '$DIR/watch') = 1 ]"

echo "== delete KIND NAME"
check "delete netpol NS/NAME" \
	bash -c "[ \"\$(ctl delete netpol shop/db-from-web)\" = 'networkpolicy shop/db-from-web deleted' ] && ! ctl get netpol -n shop -o name | grep -q ."
check "delete policy NAME -n NS finds its kind" \
	bash -c "[ \"\$(ctl delete policy audit-web -n shop)\" = 'sluicenetworkpolicy shop/audit-web deleted' ]"
check "delete pod of a missing name: exit 1, nothing deleted" \
	bash -c "! ctl delete pod -n shop web nothere && ctl get pod -n shop web >/dev/null"
check "delete --ignore-not-found of a missing name: exit 0" \
	ctl delete pod -n shop nothere --ignore-not-found

echo "== errors and help"
check "a kind as the command: did you mean get" usage_error "unknown command 'pods'; did you mean 'get pods'" pods
check "policy NS/NAME: did you mean get policy" usage_error "did you mean 'get policy shop/x'" policy shop/x
check "an unknown kind: the closest and the list" usage_error "unknown kind 'polcy'; did you mean 'policy'.*namespaces \(ns\)" get polcy
check "a typo'd command: the closest" usage_error "did you mean 'describe'" descrbe
check "a bad selector: where and what" usage_error "at character 8: expected ',' or '\)'" get pods -l 'a in (b'
check "-o yaml is for get" usage_error "-o yaml, wide and name are for get" status -o yaml
check "--help fits a screen and points to COMMAND --help" \
	bash -c "[ \$(ctl --help | wc -l) -le 45 ] && ctl --help | grep -q 'sluicectl COMMAND --help'"
check "get --help lists the flags with an example" \
	bash -c "ctl get --help | grep -q -- '--selector' && ctl get --help | grep -q 'sluicectl get po -n shop'"
check "observe, top, metrics and status still answer" \
	bash -c "ctl observe --last 1 >/dev/null && ctl top pods >/dev/null && ctl metrics >/dev/null && ctl status >/dev/null"

summary
